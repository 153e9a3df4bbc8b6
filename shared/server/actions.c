/* actions: server-side actions (see actions.h). */
#include "server/actions.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/util.h"
#include "proto/json.h"
#include "proto/sio_parser.h"
#include "server/rooms.h"
#include "server/session.h"
#include "server/socketio.h"
#include "store/inbox.h"

static int usage(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int usage(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && n) vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return ACTIONS_EUSAGE;
}

static int check_room(const char *r, char *err, size_t n) {
    size_t l = strlen(r);
    if (l == 0 || l > STORE_ROOM_MAX)
        return usage(err, n, "room names are 1 to %d bytes", STORE_ROOM_MAX);
    return 0;
}

/* Resolves the namespace and the effective broadcast of a target. */
typedef struct resolved {
    char nsp[SIO_NSP_MAX + 1];
    bcast b;
    const char *to[ACTIONS_MAX_TARGETS];
    const char *except[ACTIONS_MAX_TARGETS + 1];
} resolved;

static int resolve(server *srv, store_txn *t, const actions_target *to, resolved *r, char *err,
                   size_t n) {
    memset(r, 0, sizeof *r);
    if (to->nto > ACTIONS_MAX_TARGETS || to->nexcept > ACTIONS_MAX_TARGETS)
        return usage(err, n, "too many rooms (max %d)", ACTIONS_MAX_TARGETS);
    store_socket s;
    if (to->nsp) {
        snprintf(r->nsp, sizeof r->nsp, "%s", to->nsp);
    } else if (to->self && store_socket_get(t, to->self, &s) == 0) {
        snprintf(r->nsp, sizeof r->nsp, "%s", s.nsp);
    } else {
        strcpy(r->nsp, "/");
        for (size_t i = 0; i < to->nto; i++)
            if (util_is_id(to->to[i], strlen(to->to[i])) && store_socket_get(t, to->to[i], &s) == 0) {
                snprintf(r->nsp, sizeof r->nsp, "%s", s.nsp);
                break;
            }
    }
    if (r->nsp[0] != '/' || strchr(r->nsp, ',') || (to->nsp && strlen(to->nsp) > SIO_NSP_MAX))
        return usage(err, n, "bad namespace '%s' (it starts with '/' and has no ',')", r->nsp);
    if (!cfg_nsp_find(&srv->cfg, r->nsp)) return usage(err, n, "unknown namespace '%s'", r->nsp);
    for (size_t i = 0; i < to->nto; i++) {
        if (check_room(to->to[i], err, n)) return ACTIONS_EUSAGE;
        r->to[i] = to->to[i];
    }
    for (size_t i = 0; i < to->nexcept; i++) {
        if (check_room(to->except[i], err, n)) return ACTIONS_EUSAGE;
        r->except[i] = to->except[i];
    }
    size_t nto = to->nto, nex = to->nexcept;
    if (to->self) {
        if (to->broadcast) r->except[nex++] = to->self;           /* socket.broadcast */
        else if (nto == 0 && !to->everyone) r->to[nto++] = to->self; /* socket.emit */
    } else if (to->broadcast) {
        return usage(err, n, "--broadcast needs a socket (run inside a handler, or give --socket)");
    }
    r->b = (bcast){r->nsp, r->to, nto, r->except, nex,
                   (to->local ? LOGREC_F_LOCAL : 0) | (to->is_volatile ? LOGREC_F_VOLATILE : 0)};
    return 0;
}

int actions_sockets(server *srv, store_txn *t, const actions_target *to,
                    int (*cb)(void *, const store_socket *), void *arg, char *err, size_t errlen) {
    resolved r;
    int rc = resolve(srv, t, to, &r, err, errlen);
    if (rc) return rc;
    return rooms_sockets(t, &r.b, 0, cb, arg);
}

static int count_cb(void *arg, const store_socket *s) {
    (void)s;
    (*(size_t *)arg)++;
    return 0;
}

int actions_next_ack_id(store_txn *t, long long *id) {
    const void *d;
    size_t len;
    uint64_t next = 0;
    if (store_meta_get(t, "ack_next", &d, &len) == 0 && len == 8) memcpy(&next, d, 8);
    *id = (long long)next;
    next++;
    if (next > 999999999999999ULL) next = 0; /* ack ids stay within 15 digits */
    return store_meta_put(t, "ack_next", &next, 8);
}

int actions_emit(server *srv, store_txn *t, const actions_target *to, const char *event,
                 const cJSON *args, long long ack_id, uint64_t *seq, size_t *count, char *err,
                 size_t errlen) {
    if (!event || !*event) return usage(err, errlen, "the event name is empty");
    if (sio_reserved_event(event)) return usage(err, errlen, "'%s' is a reserved event name", event);
    if (args && !cJSON_IsArray(args)) return usage(err, errlen, "args must be an array");
    resolved r;
    int rc = resolve(srv, t, to, &r, err, errlen);
    if (rc) return rc;
    if (ack_id >= 0) r.b.flags |= LOGREC_F_LOCAL;
    sio_packet p = {.type = SIO_EVENT, .id = ack_id >= 0 ? ack_id : -1};
    strcpy(p.nsp, r.nsp);
    p.data = cJSON_CreateArray();
    if (!p.data) return -ENOMEM;
    cJSON_AddItemToArray(p.data, cJSON_CreateString(event));
    const cJSON *a;
    if (args) cJSON_ArrayForEach(a, args) cJSON_AddItemToArray(p.data, cJSON_Duplicate(a, 1));
    rc = socketio_emit(srv, t, &r.b, &p, seq);
    sio_packet_clear(&p);
    if (rc == -EINVAL) return usage(err, errlen, "bad binary argument (expected {\"$binary\":\"<base64>\"})");
    if (rc == -E2BIG) return usage(err, errlen, "too many binary arguments (max %d)", SIO_MAX_ATTACHMENTS);
    if (rc) return rc;
    if (count) {
        *count = 0;
        rc = rooms_sockets(t, &r.b, 0, count_cb, count);
    }
    return rc;
}

typedef struct join_ctx {
    store_txn *t;
    const char *const *rooms;
    size_t nrooms;
    int leave;
    size_t count;
} join_ctx;

static int join_cb(void *arg, const store_socket *s) {
    join_ctx *j = arg;
    for (size_t i = 0; i < j->nrooms; i++) {
        int rc = j->leave ? rooms_leave(j->t, s, j->rooms[i]) : rooms_join(j->t, s, j->rooms[i]);
        if (rc) return rc;
    }
    j->count++;
    return 0;
}

typedef struct limit_ctx {
    store_txn *t;
    const char *const *rooms;
    size_t nrooms;
    long max;
    char *err;
    size_t errlen;
} limit_ctx;

/* ACTIONS_ELIMIT when joining the rooms would put s in more than
 * max_rooms_per_socket rooms. */
static int limit_cb(void *arg, const store_socket *s) {
    limit_ctx *l = arg;
    size_t in = 0, add = 0;
    int rc = store_socket_room_count(l->t, s->id, &in);
    for (size_t i = 0; !rc && i < l->nrooms; i++) {
        rc = store_room_has(l->t, s->nsp, l->rooms[i], strlen(l->rooms[i]), s->id, NULL);
        if (rc == STORE_NOTFOUND) rc = 0, add++;
    }
    if (rc) return rc;
    if (in + add <= (size_t)l->max) return 0;
    if (l->err && l->errlen)
        snprintf(l->err, l->errlen, "socket %s is in %zu room(s): joining %zu more would pass "
                 "max_rooms_per_socket (%ld); nothing was joined", s->id, in, add, l->max);
    return ACTIONS_ELIMIT;
}

int actions_join(server *srv, store_txn *t, const actions_target *to, const char *const *rooms,
                 size_t nrooms, int leave, size_t *count, char *err, size_t errlen) {
    if (nrooms == 0) return usage(err, errlen, "%s needs at least one ROOM", leave ? "leave" : "join");
    for (size_t i = 0; i < nrooms; i++)
        if (check_room(rooms[i], err, errlen)) return ACTIONS_EUSAGE;
    resolved r;
    int rc = resolve(srv, t, to, &r, err, errlen);
    if (rc) return rc;
    if (!leave) { /* every socket first: all or nothing */
        limit_ctx l = {t, rooms, nrooms, srv->cfg.max_rooms_per_socket, err, errlen};
        if ((rc = rooms_sockets(t, &r.b, 1, limit_cb, &l))) return rc;
    }
    join_ctx j = {t, rooms, nrooms, leave, 0};
    rc = rooms_sockets(t, &r.b, 1, join_cb, &j);
    if (count) *count = j.count;
    return rc;
}

typedef struct disc_ctx {
    store_txn *t;
    int close;
    uint64_t *seq;
    size_t count;
} disc_ctx;

static int disc_cb(void *arg, const store_socket *s) {
    disc_ctx *d = arg;
    char sid[UTIL_ID_LEN + 1];
    strcpy(sid, s->sid);
    int rc = socketio_remove(d->t, s, 1, "server namespace disconnect", d->seq);
    if (!rc && d->close) {
        store_session ss;
        if (store_session_get(d->t, sid, &ss) == 0)
            rc = session_close(d->t, sid, &ss, SESSION_CLOSE_SERVER);
    }
    if (!rc) d->count++;
    return rc;
}

int actions_disconnect(server *srv, store_txn *t, const actions_target *to, int close,
                       uint64_t *seq, size_t *count, char *err, size_t errlen) {
    resolved r;
    int rc = resolve(srv, t, to, &r, err, errlen);
    if (rc) return rc;
    disc_ctx d = {t, close, seq, 0};
    rc = rooms_sockets(t, &r.b, 1, disc_cb, &d);
    if (count) *count = d.count;
    return rc;
}

int actions_ack(store_txn *t, const char *socket_id, long long ack_id, const cJSON *args,
                uint64_t *seq, char *err, size_t errlen) {
    if (!socket_id || ack_id < 0) return usage(err, errlen, "ack needs a socket and an ack id");
    if (args && !cJSON_IsArray(args)) return usage(err, errlen, "args must be an array");
    store_socket s;
    int rc = store_socket_get(t, socket_id, &s);
    if (rc == STORE_NOTFOUND) return usage(err, errlen, "no socket %s", socket_id);
    if (rc) return rc;
    sio_packet p = {.type = SIO_ACK, .id = ack_id};
    strcpy(p.nsp, s.nsp);
    p.data = args ? cJSON_Duplicate(args, 1) : cJSON_CreateArray();
    if (!p.data) return -ENOMEM;
    char sid[UTIL_ID_LEN + 1];
    strcpy(sid, s.sid);
    rc = socketio_send(t, sid, &p, seq);
    sio_packet_clear(&p);
    if (rc == -EINVAL) return usage(err, errlen, "bad binary argument");
    return rc;
}

int actions_server_ack(store_txn *t, long long ack_id, const cJSON *args, char *err, size_t errlen) {
    if (ack_id < 0) return usage(err, errlen, "a server-side ack needs an ack id");
    if (args && !cJSON_IsArray(args)) return usage(err, errlen, "args must be an array");
    cJSON *o = cJSON_CreateObject();
    if (!o) return -ENOMEM;
    cJSON_AddStringToObject(o, "type", "serverSideAck");
    cJSON_AddNumberToObject(o, "id", (double)ack_id);
    cJSON_AddItemToObject(o, "args", args ? cJSON_Duplicate(args, 1) : cJSON_CreateArray());
    return inbox_append(t, o, NULL);
}

int actions_send(store_txn *t, const char *sid, const cJSON *data, uint64_t *seq, char *err,
                 size_t errlen) {
    store_session s;
    if (!sid || store_session_get(t, sid, &s) || s.state == STORE_S_CLOSED)
        return usage(err, errlen, "no session %s", sid ? sid : "(none)");
    logrec_frame f;
    uint8_t *bin = NULL;
    const cJSON *b64 = cJSON_IsObject(data) ? cJSON_GetObjectItemCaseSensitive(data, SIO_BINARY_KEY) : NULL;
    if (cJSON_IsString(data)) { /* its raw bytes, NUL included (proto/json.h) */
        bin = malloc(strlen(data->valuestring) + 1);
        if (!bin) return -ENOMEM;
        f = (logrec_frame){0, bin, json_bytes(data->valuestring, (char *)bin)};
    } else if (cJSON_IsString(b64)) {
        size_t l = strlen(b64->valuestring);
        bin = malloc(b64_decoded_max(l) + 1);
        if (!bin) return -ENOMEM;
        long n = b64_decode(bin, b64->valuestring, l);
        if (n < 0) { free(bin); return usage(err, errlen, "bad base64 in $binary"); }
        f = (logrec_frame){1, bin, (size_t)n};
    } else {
        return usage(err, errlen, "data must be a string or {\"$binary\":\"<base64>\"}");
    }
    int rc = logrec_append_session(t, sid, &f, 1, seq);
    free(bin);
    return rc;
}

/* ---- the JSON form -------------------------------------------------------- */

static int strings_of(const cJSON *arr, const char **out, size_t max, size_t *n, const char *what,
                      char *err, size_t errlen) {
    *n = 0;
    if (!arr) return 0;
    if (cJSON_IsString(arr)) { out[(*n)++] = arr->valuestring; return 0; }
    if (!cJSON_IsArray(arr)) return usage(err, errlen, "\"%s\" must be an array of strings", what);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) return usage(err, errlen, "\"%s\" must be an array of strings", what);
        if (*n >= max) return usage(err, errlen, "too many entries in \"%s\"", what);
        out[(*n)++] = it->valuestring;
    }
    return 0;
}

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int actions_apply_json(server *srv, store_txn *t, const cJSON *a, const char *self_socket,
                       uint64_t *seq, char *err, size_t errlen) {
    if (!cJSON_IsObject(a)) return usage(err, errlen, "an action is a JSON object");
    const char *action = str_of(a, "action");
    if (!action) return usage(err, errlen, "missing \"action\"");
    actions_target to;
    memset(&to, 0, sizeof to);
    to.nsp = str_of(a, "nsp");
    to.self = str_of(a, "socket");
    if (!to.self) to.self = self_socket;
    to.broadcast = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "broadcast"));
    to.local = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "local"));
    to.is_volatile = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "volatile"));
    int rc = strings_of(cJSON_GetObjectItemCaseSensitive(a, "to"), to.to, ACTIONS_MAX_TARGETS, &to.nto, "to", err, errlen);
    if (!rc) rc = strings_of(cJSON_GetObjectItemCaseSensitive(a, "except"), to.except, ACTIONS_MAX_TARGETS, &to.nexcept, "except", err, errlen);
    if (rc) return rc;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(a, "args");
    if (!strcmp(action, "emit")) {
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(a, "ack");
        long long ack = -1;
        json_integer(idv, &ack);
        return actions_emit(srv, t, &to, str_of(a, "event"), args, ack, seq, NULL, err, errlen);
    }
    if (!strcmp(action, "join") || !strcmp(action, "leave")) {
        const char *rooms[ACTIONS_MAX_TARGETS];
        size_t n;
        rc = strings_of(cJSON_GetObjectItemCaseSensitive(a, "rooms"), rooms, ACTIONS_MAX_TARGETS, &n, "rooms", err, errlen);
        if (rc) return rc;
        return actions_join(srv, t, &to, rooms, n, action[0] == 'l', NULL, err, errlen);
    }
    if (!strcmp(action, "disconnect"))
        return actions_disconnect(srv, t, &to, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "close")),
                              seq, NULL, err, errlen);
    if (!strcmp(action, "ack")) {
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(a, "id");
        long long id;
        if (!json_integer(idv, &id)) return usage(err, errlen, "ack needs a numeric \"id\"");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "serverSide")))
            return actions_server_ack(t, id, args, err, errlen);
        return actions_ack(t, to.self, id, args, seq, err, errlen);
    }
    if (!strcmp(action, "accept") || !strcmp(action, "refuse")) {
        const char *sid = str_of(a, "sid"), *nsp = str_of(a, "nsp");
        if (!sid || !nsp) return usage(err, errlen, "%s needs \"sid\" and \"nsp\"", action);
        if (nsp[0] != '/' || strchr(nsp, ',') || strlen(nsp) > SIO_NSP_MAX)
            return usage(err, errlen, "%s: bad namespace", action);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(a, "data");
        if (action[0] == 'a')
            return socketio_accept(srv, t, sid, nsp, to.self, cJSON_GetObjectItemCaseSensitive(a, "auth"), data, seq);
        const char *msg = str_of(a, "message");
        return socketio_refuse(t, sid, nsp, msg ? msg : "unauthorized", data, seq);
    }
    if (!strcmp(action, "send"))
        return actions_send(t, str_of(a, "sid"), cJSON_GetObjectItemCaseSensitive(a, "data"), seq, err, errlen);
    return usage(err, errlen, "unknown action '%s'", action);
}

cJSON *actions_parse_arg(const char *arg, char *err, size_t errlen) {
    cJSON *j = json_parse_str(arg);
    if (j) return j;
    const char *p = arg;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (*p == '{' || *p == '[' || *p == '"') {
        usage(err, errlen, "not valid JSON: %s", arg);
        return NULL;
    }
    return json_string(arg, strlen(arg));
}

/* admin: the Admin UI thread of stated (see admin.h).
 *
 * One poll() loop.  Each turn: (1) in one read transaction, the new inbox
 * records, the packet log's new event records (development mode) and, when
 * due, the sockets table compared with the last snapshot become a list of
 * emits, and when due the figures of server_stats (metrics_collect, in a
 * transaction of its own) are added; (2) without a transaction, the
 * logins are checked (bcrypt is slow); (3) in one write transaction, the
 * logins are answered, the UI's actions applied, the emits appended and
 * the inbox position saved; then one wake-up. */
#include "admin.h"

#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "notify/notify.h"
#include "proto/json.h"
#include "proto/sio_parser.h"
#include "base/stats.h"
#include "server/actions.h"
#include "server/metrics.h"
#include "server/reader.h"
#include "server/rooms.h"
#include "server/socketio.h"
#include "store/inbox.h"
#include "store/logrec.h"

#define INBOX_BATCH 1000         /* inbox records per turn */
#define LOG_BATCH 2000           /* packet log records looked at per turn */
#define LOG_SKIP 20000           /* further behind than this: event_sent skips ahead */
#define EVENT_SENT_MAX 1000      /* event_sent emits per turn (the rest are dropped) */
#define ALL_SOCKETS_MAX 10000    /* sockets in one all_sockets (one log record) */
#define SESSIONS_MAX 1000        /* login sessions kept (oldest dropped) */
#define SESSIONS_KEY "admin.sessions"
#define SAVE_EVERY_MS 20

/* ---- what one turn emits -------------------------------------------------------- */

typedef struct emit {
    char to[UTIL_ID_LEN + 1]; /* one admin socket, or "" for the whole namespace */
    const char *event;        /* a literal */
    cJSON *args;              /* owned */
} emit;

/* A login waiting for its answer. */
typedef struct login {
    char sid[UTIL_ID_LEN + 1], socket[UTIL_ID_LEN + 1];
    cJSON *auth;   /* the CONNECT payload (owned) */
    int ok;        /* accepted */
    int new_id;    /* a password login: a new session id to save and send */
    char session[UTIL_ID_LEN + 1];
} login;

/* A UI action from an admin socket's "event" record. */
typedef struct uiact {
    char *event;
    cJSON *args; /* owned */
} uiact;

/* One socket as development mode last reported it. */
typedef struct snap {
    char id[UTIL_ID_LEN + 1];
    char nsp[SIO_NSP_MAX + 1];
    int transport;
    char *data;    /* its data as JSON text (owned) */
    char **rooms;  /* sorted as the store keeps them (owned) */
    size_t nrooms;
} snap;

typedef struct snaps {
    snap *v;
    size_t n, cap;
} snaps;

/* aggregatedEvents: counts per (second, type, subType). */
typedef struct agg {
    int64_t second;
    const char *type;
    char sub[48];
    double count;
} agg;

struct admin {
    server *srv;
    const cfg_admin *cf;
    pthread_t th;
    int stop_fd;
    volatile int stopping;
    notify_sub *sub;
    reader_id in_id;
    uint64_t in_cursor, in_saved;
    int64_t saved_at;
    uint64_t log_cursor; /* event_sent: in memory only */
    int64_t started_ms, next_stats, next_scan;
    char server_id[300], hostname[256];
    size_t nadmins;      /* admin sockets at the last count (+ those seen since) */
    struct crypt_data *cd;
    snaps snap;
    int snap_valid;
    agg *agg;
    size_t nagg, aggcap;
    uint64_t prev[STATS_NCOUNTERS]; /* the counters at the last figures */
    int64_t prev_ms;
    int have_prev;
    /* this turn */
    store_txn *t; /* its read transaction */
    int saw_connection;
    emit *em;
    size_t nem, emcap, nsent;
    login *lg;
    size_t nlg, lgcap;
    uiact *ua;
    size_t nua, uacap;
};

static void add_emit(admin *a, const char *to, const char *event, cJSON *args) {
    if (!args) return;
    if (util_grow(&a->em, &a->emcap, a->nem + 1, sizeof *a->em, 16)) {
        cJSON_Delete(args);
        return;
    }
    emit *e = &a->em[a->nem++];
    snprintf(e->to, sizeof e->to, "%s", to ? to : "");
    e->event = event;
    e->args = args;
}

/* A JSON array of the items given (taking them), NULL-terminated. */
static cJSON *arr(cJSON *first, ...) {
    cJSON *x = cJSON_CreateArray();
    va_list ap;
    va_start(ap, first);
    for (cJSON *it = first; it; it = va_arg(ap, cJSON *)) cJSON_AddItemToArray(x, it);
    va_end(ap);
    return x;
}

/* `new Date()` as JSON.stringify writes it. */
static cJSON *iso_date(int64_t ms) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[64], out[80];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof out, "%s.%03dZ", b, (int)(ms % 1000));
    return cJSON_CreateString(out);
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- bcrypt ---------------------------------------------------------------------- */

static int password_check(struct crypt_data *cd, const char *password, const char *hash) {
    memset(cd, 0, sizeof *cd);
    const char *h = crypt_r(password, hash, cd);
    size_t n = strlen(hash);
    if (!h || strlen(h) != n) return 0;
    unsigned diff = 0; /* the same time whatever matches */
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)h[i] ^ (unsigned char)hash[i];
    return diff == 0;
}

int admin_password_ok(const char *password, const char *hash) {
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd) return 0;
    int ok = password_check(cd, password, hash);
    free(cd);
    return ok;
}

/* ---- sockets as the UI shows them ----------------------------------------------- */

/* Node's socket.handshake from ours ({address, headers, query, time, url}). */
static cJSON *handshake_json(const cJSON *hs) {
    cJSON *o = cJSON_CreateObject();
    const cJSON *headers = cJSON_GetObjectItemCaseSensitive(hs, "headers");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(hs, "query");
    const char *addr = jstr(headers, "cf-connecting-ip");
    if (!addr) addr = jstr(headers, "x-forwarded-for");
    if (!addr) addr = jstr(hs, "address");
    cJSON_AddStringToObject(o, "address", addr ? addr : "");
    cJSON_AddItemToObject(o, "headers", cJSON_IsObject(headers) ? cJSON_Duplicate(headers, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "query", cJSON_IsObject(query) ? cJSON_Duplicate(query, 1) : cJSON_CreateObject());
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(hs, "time");
    int64_t ms = cJSON_IsNumber(tm) ? (int64_t)tm->valuedouble : 0;
    cJSON_AddNumberToObject(o, "issued", (double)ms);
    const char *proto = jstr(headers, "x-forwarded-proto");
    cJSON_AddBoolToObject(o, "secure", proto && !strcmp(proto, "https"));
    time_t s = (time_t)(ms / 1000);
    struct tm t;
    gmtime_r(&s, &t);
    char b[96];
    strftime(b, sizeof b, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &t);
    cJSON_AddStringToObject(o, "time", b);
    const char *url = jstr(hs, "url");
    cJSON_AddStringToObject(o, "url", url ? url : "");
    cJSON_AddBoolToObject(o, "xdomain", jstr(headers, "origin") != NULL);
    return o;
}

static int room_add_cb(void *arg, const char *room, size_t len) {
    cJSON_AddItemToArray(arg, json_string(room, len));
    return 0;
}

/* The `data` of a socket: what its auth gave (our socket record keeps
 * {"auth", "data"}), {} when nothing. */
static cJSON *data_of(const char *text, size_t len) {
    cJSON *d = len ? json_parse(text, len) : NULL;
    cJSON *data = cJSON_DetachItemFromObject(d, "data");
    cJSON_Delete(d);
    if (!cJSON_IsObject(data)) {
        cJSON_Delete(data);
        data = cJSON_CreateObject();
    }
    return data;
}

/* Node's serialize(socket): {id, clientId, transport, nsp, data, handshake,
 * rooms}.  hs (borrowed, may be NULL): the handshake when the record
 * carries it, else read from the store. */
static cJSON *socket_json(store_txn *t, const store_socket *s, const cJSON *hs) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", s->id);
    char client[13]; /* Node: the first 12 characters of the Engine.IO id */
    memcpy(client, s->sid, 12);
    client[12] = 0;
    cJSON_AddStringToObject(o, "clientId", client);
    store_session ss;
    int have = store_session_get(t, s->sid, &ss) == 0;
    cJSON_AddStringToObject(o, "transport", have && ss.transport == STORE_T_WEBSOCKET ? "websocket" : "polling");
    cJSON_AddStringToObject(o, "nsp", s->nsp);
    cJSON_AddItemToObject(o, "data", data_of(s->data, s->data_len));
    cJSON *own = NULL;
    if (!hs) {
        const char *j;
        size_t n;
        if (store_handshake_get(t, s->sid, &j, &n) == 0) own = json_parse(j, n);
        hs = own;
    }
    cJSON_AddItemToObject(o, "handshake", handshake_json(hs));
    cJSON_Delete(own);
    cJSON *rooms = cJSON_CreateArray();
    store_socket_rooms(t, s->id, room_add_cb, rooms);
    cJSON_AddItemToObject(o, "rooms", rooms);
    return o;
}

typedef struct all_ctx {
    store_txn *t;
    cJSON *arr;
    size_t n;
} all_ctx;

static int all_cb(void *arg, const store_socket *s) {
    all_ctx *c = arg;
    if (s->detached_ms) return 0;
    if (c->n++ >= ALL_SOCKETS_MAX) return 1;
    cJSON_AddItemToArray(c->arr, socket_json(c->t, s, NULL));
    return 0;
}

/* ---- development mode: the sockets table against the last snapshot ---------------- */

static void snap_clear(snap *s) {
    free(s->data);
    for (size_t i = 0; i < s->nrooms; i++) free(s->rooms[i]);
    free(s->rooms);
}

static void snaps_free(snaps *ss) {
    for (size_t i = 0; i < ss->n; i++) snap_clear(&ss->v[i]);
    free(ss->v);
    memset(ss, 0, sizeof *ss);
}

typedef struct scan_ctx {
    store_txn *t;
    snaps *out;
    snap *cur;
    size_t rcap;
} scan_ctx;

static int snap_room_cb(void *arg, const char *room, size_t len) {
    scan_ctx *c = arg;
    if (util_grow(&c->cur->rooms, &c->rcap, c->cur->nrooms + 1, sizeof *c->cur->rooms, 4)) return -ENOMEM;
    char *r = malloc(len + 1);
    if (!r) return -ENOMEM;
    memcpy(r, room, len);
    r[len] = 0;
    c->cur->rooms[c->cur->nrooms++] = r;
    return 0;
}

static int snap_cb(void *arg, const store_socket *s) {
    scan_ctx *c = arg;
    if (s->detached_ms) return 0;
    if (util_grow(&c->out->v, &c->out->cap, c->out->n + 1, sizeof *c->out->v, 64)) return -ENOMEM;
    snap *e = &c->out->v[c->out->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", s->id);
    snprintf(e->nsp, sizeof e->nsp, "%s", s->nsp);
    store_session ss;
    e->transport = store_session_get(c->t, s->sid, &ss) == 0 ? ss.transport : STORE_T_POLLING;
    cJSON *d = data_of(s->data, s->data_len);
    e->data = json_print(d);
    cJSON_Delete(d);
    c->cur = e;
    c->rcap = 0;
    return store_socket_rooms(c->t, s->id, snap_room_cb, c);
}

static void room_event(admin *a, const char *event, const snap *s, const char *room, cJSON *date) {
    add_emit(a, NULL, event,
             arr(cJSON_CreateString(s->nsp), cJSON_CreateString(room), cJSON_CreateString(s->id),
                 cJSON_Duplicate(date, 1), NULL));
}

/* Emits what changed between two snapshots of one socket. */
static void snap_diff(admin *a, const snap *o, const snap *n, cJSON *date) {
    if (o->transport != n->transport) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "id", n->id);
        cJSON_AddStringToObject(u, "nsp", n->nsp);
        cJSON_AddStringToObject(u, "transport", n->transport == STORE_T_WEBSOCKET ? "websocket" : "polling");
        add_emit(a, NULL, "socket_updated", arr(u, NULL));
    }
    if (o->data && n->data && strcmp(o->data, n->data)) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "id", n->id);
        cJSON_AddStringToObject(u, "nsp", n->nsp);
        cJSON_AddItemToObject(u, "data", json_parse_str(n->data));
        add_emit(a, NULL, "socket_updated", arr(u, NULL));
    }
    size_t i = 0, j = 0; /* both sorted by the store's order (memcmp, then length) */
    while (i < o->nrooms || j < n->nrooms) {
        int c = i == o->nrooms ? 1 : j == n->nrooms ? -1 : strcmp(o->rooms[i], n->rooms[j]);
        if (c == 0) i++, j++;
        else if (c < 0) room_event(a, "room_left", o, o->rooms[i++], date);
        else room_event(a, "room_joined", n, n->rooms[j++], date);
    }
}

/* Reads the sockets table and emits room_joined / room_left / socket_updated
 * for the sockets that were in the last snapshot too (new and gone ones are
 * told by the inbox: socket_connected / socket_disconnected). */
static int scan_sockets(admin *a, store_txn *t) {
    snaps fresh = {0};
    scan_ctx c = {t, &fresh, NULL, 0};
    int rc = store_socket_each(t, snap_cb, &c);
    if (rc) {
        snaps_free(&fresh);
        return rc;
    }
    if (a->snap_valid) {
        cJSON *date = iso_date(util_now_ms());
        size_t i = 0, j = 0; /* both in the table's key order */
        while (i < a->snap.n && j < fresh.n) {
            int cmp = strcmp(a->snap.v[i].id, fresh.v[j].id);
            if (cmp == 0) snap_diff(a, &a->snap.v[i++], &fresh.v[j++], date);
            else if (cmp < 0) i++;
            else j++;
        }
        cJSON_Delete(date);
    }
    snaps_free(&a->snap);
    a->snap = fresh;
    a->snap_valid = 1;
    return 0;
}

/* ---- aggregatedEvents ------------------------------------------------------------ */

static void agg_add(admin *a, int64_t ms, const char *type, const char *sub, double n) {
    int64_t sec = ms / 1000 * 1000;
    for (size_t i = 0; i < a->nagg; i++) {
        agg *g = &a->agg[i];
        if (g->second == sec && g->type == type && !strcmp(g->sub, sub ? sub : "")) {
            g->count += n;
            return;
        }
    }
    if (util_grow(&a->agg, &a->aggcap, a->nagg + 1, sizeof *a->agg, 16)) return;
    agg *g = &a->agg[a->nagg++];
    g->second = sec;
    g->type = type;
    snprintf(g->sub, sizeof g->sub, "%s", sub ? sub : "");
    g->count = n;
}

static cJSON *agg_take(admin *a) {
    cJSON *x = cJSON_CreateArray();
    for (size_t i = 0; i < a->nagg; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "timestamp", (double)a->agg[i].second);
        cJSON_AddStringToObject(o, "type", a->agg[i].type);
        if (a->agg[i].sub[0]) cJSON_AddStringToObject(o, "subType", a->agg[i].sub);
        cJSON_AddNumberToObject(o, "count", a->agg[i].count);
        cJSON_AddItemToArray(x, o);
    }
    a->nagg = 0;
    return x;
}

/* ---- server_stats ------------------------------------------------------------- */

/* A counter's growth since the last figures, spread over the whole seconds
 * of that time (Node counts per second): whole numbers, the first seconds
 * getting the remainder. */
static void agg_spread(admin *a, int64_t from_ms, int64_t to_ms, const char *type, const char *sub,
                       uint64_t delta) {
    if (!delta) return;
    int64_t first = from_ms / 1000 + 1, last = to_ms / 1000;
    if (first > last) first = last;
    uint64_t k = (uint64_t)(last - first + 1), each = delta / k, rest = delta % k;
    for (int64_t sec = first; sec <= last; sec++) {
        uint64_t n = each + (rest ? 1 : 0);
        if (rest) rest--;
        if (n) agg_add(a, sec * 1000, type, sub, (double)n);
    }
}

static uint64_t sum(const uint64_t *c, int first, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v += c[first + i];
    return v;
}

/* aggregatedEvents from the counters every process of the node shares
 * (base/stats.h): what grew since the last sample. */
static void agg_counters(admin *a, const uint64_t *c, int64_t now) {
    if (a->have_prev) {
        const uint64_t *p = a->prev;
        static const struct { const char *type; int first; } per_transport[] = {
            {"rawConnection", STATS_HANDSHAKES}, {"packetsIn", STATS_PACKETS_IN},
            {"packetsOut", STATS_PACKETS_OUT}, {"bytesIn", STATS_BYTES_IN}, {"bytesOut", STATS_BYTES_OUT}};
        for (size_t i = 0; i < sizeof per_transport / sizeof per_transport[0]; i++) {
            int f = per_transport[i].first;
            uint64_t now_v = sum(c, f, STATS_NTRANSPORTS), was = sum(p, f, STATS_NTRANSPORTS);
            agg_spread(a, a->prev_ms, now, per_transport[i].type, NULL, now_v > was ? now_v - was : 0);
        }
        for (int r = 0; r < STATS_NREASONS; r++) {
            uint64_t now_v = c[STATS_SESSION_CLOSES + r], was = p[STATS_SESSION_CLOSES + r];
            agg_spread(a, a->prev_ms, now, "rawDisconnection", stats_reason_name(r), now_v > was ? now_v - was : 0);
        }
    }
    memcpy(a->prev, c, sizeof a->prev);
    a->prev_ms = now;
    a->have_prev = 1;
}

/* The figures of the node, as Node's emitStats() gives them. */
static int stats(admin *a, int64_t now) {
    metrics_snap m;
    int rc = metrics_collect(a->srv, &m);
    if (rc) {
        metrics_free(&m);
        return rc;
    }
    if (m.counters_ok) agg_counters(a, m.counters, now);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "serverId", a->server_id);
    cJSON_AddStringToObject(o, "hostname", a->hostname);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddNumberToObject(o, "uptime", (double)(now - a->started_ms) / 1000.0);
    cJSON_AddNumberToObject(o, "clientsCount", (double)(m.clients[STATS_T_POLLING] + m.clients[STATS_T_WEBSOCKET]));
    cJSON_AddNumberToObject(o, "pollingClientsCount", (double)m.clients[STATS_T_POLLING]);
    cJSON_AddItemToObject(o, "aggregatedEvents", agg_take(a));
    cJSON *ns = cJSON_AddArrayToObject(o, "namespaces");
    a->nadmins = 0;
    for (size_t i = 0; i < m.nnsp; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", m.nsps[i].name);
        cJSON_AddNumberToObject(e, "socketsCount", (double)m.nsps[i].sockets);
        cJSON_AddItemToArray(ns, e);
        if (cfg_is_admin_nsp(&a->srv->cfg, m.nsps[i].name)) a->nadmins = m.nsps[i].sockets;
    }
    metrics_free(&m);
    add_emit(a, NULL, "server_stats", arr(o, NULL));
    return 0;
}

/* ---- the inbox ----------------------------------------------------------------- */

/* Someone to tell: admin sockets here, or maybe on other nodes. */
static int listened(const admin *a) { return a->nadmins > 0 || a->srv->cfg.redis_url; }

static cJSON *features(const admin *a) {
    cJSON *f = cJSON_CreateArray();
    if (!a->cf->readonly) {
        static const char *const all[] = {"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cJSON_AddItemToArray(f, cJSON_CreateString(all[i]));
    }
    cJSON_AddItemToArray(f, cJSON_CreateString("AGGREGATED_EVENTS"));
    if (a->cf->development) cJSON_AddItemToArray(f, cJSON_CreateString("ALL_EVENTS"));
    return f;
}

/* A record of the admin namespace. */
static void admin_record(admin *a, store_txn *t, const cJSON *o, const char *type, const char *socket) {
    const char *sid = jstr(o, "sid");
    if (!strcmp(type, "connect")) {
        if (!sid || strlen(sid) != UTIL_ID_LEN || strlen(socket) != UTIL_ID_LEN ||
            util_grow(&a->lg, &a->lgcap, a->nlg + 1, sizeof *a->lg, 4))
            return;
        login *l = &a->lg[a->nlg++];
        memset(l, 0, sizeof *l);
        strcpy(l->sid, sid);
        strcpy(l->socket, socket);
        const cJSON *auth = cJSON_GetObjectItemCaseSensitive(o, "auth");
        l->auth = cJSON_IsObject(auth) ? cJSON_Duplicate(auth, 1) : cJSON_CreateObject();
    } else if (!strcmp(type, "connection")) {
        a->nadmins++;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToObject(c, "supportedFeatures", features(a));
        add_emit(a, socket, "config", arr(c, NULL));
        if (a->cf->development) {
            all_ctx ac = {t, cJSON_CreateArray(), 0};
            if (store_socket_each(t, all_cb, &ac) == 1)
                log_warn("admin: all_sockets lists the first %d sockets only", ALL_SOCKETS_MAX);
            add_emit(a, socket, "all_sockets", arr(ac.arr, NULL));
        }
    } else if (!strcmp(type, "event") && !a->cf->readonly) {
        const char *ev = jstr(o, "event");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args");
        if (!ev || !cJSON_IsArray(args) || util_grow(&a->ua, &a->uacap, a->nua + 1, sizeof *a->ua, 4))
            return;
        a->ua[a->nua].event = strdup(ev);
        a->ua[a->nua].args = cJSON_Duplicate(args, 1);
        a->nua++;
    }
}

/* Development mode: what a record of any namespace tells the UI. */
static void dev_record(admin *a, store_txn *t, const cJSON *o, const char *type, const char *nsp,
                       const char *socket, int is_admin) {
    cJSON *date = iso_date(util_now_ms());
    if (!strcmp(type, "connection")) {
        store_socket s;
        if (store_socket_get(t, socket, &s) == 0) {
            add_emit(a, NULL, "socket_connected",
                     arr(socket_json(t, &s, cJSON_GetObjectItemCaseSensitive(o, "handshake")), date, NULL));
            date = NULL;
        }
    } else if (!strcmp(type, "disconnect")) {
        const char *reason = jstr(o, "reason");
        add_emit(a, NULL, "socket_disconnected",
                 arr(cJSON_CreateString(nsp), cJSON_CreateString(socket),
                     cJSON_CreateString(reason ? reason : "transport close"), date, NULL));
        date = NULL;
    } else if (!strcmp(type, "event") && !is_admin) { /* Node leaves out the admin namespace */
        const char *ev = jstr(o, "event");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args");
        cJSON *all = cJSON_CreateArray();
        cJSON_AddItemToArray(all, cJSON_CreateString(ev ? ev : ""));
        const cJSON *x;
        cJSON_ArrayForEach(x, args) cJSON_AddItemToArray(all, cJSON_Duplicate(x, 1));
        add_emit(a, NULL, "event_received",
                 arr(cJSON_CreateString(nsp), cJSON_CreateString(socket), all, date, NULL));
        date = NULL;
    }
    cJSON_Delete(date);
}

typedef struct inbox_ctx {
    admin *a;
    store_txn *t;
    size_t n;
} inbox_ctx;

static int inbox_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    inbox_ctx *c = arg;
    admin *a = c->a;
    a->in_cursor = seq;
    cJSON *o = json_parse(rec, len);
    const char *type = jstr(o, "type"), *nsp = jstr(o, "nsp"), *socket = jstr(o, "socket");
    if (type && nsp && socket) {
        int is_admin = cfg_is_admin_nsp(&a->srv->cfg, nsp);
        if (is_admin) admin_record(a, c->t, o, type, socket);
        if (!strcmp(type, "connection")) a->saw_connection = 1;
        if (a->cf->development && listened(a)) dev_record(a, c->t, o, type, nsp, socket, is_admin);
    }
    cJSON_Delete(o);
    return ++c->n >= INBOX_BATCH;
}

/* ---- the packet log: event_sent ------------------------------------------------- */

typedef struct sent_ctx {
    admin *a;
    cJSON *args; /* [event, ...args] of the record */
    const char *nsp;
} sent_ctx;

static int sent_cb(void *arg, const store_socket *s) {
    sent_ctx *c = arg;
    admin *a = c->a;
    if (a->nsent >= EVENT_SENT_MAX) return 1;
    a->nsent++;
    add_emit(a, NULL, "event_sent",
             arr(cJSON_CreateString(c->nsp), cJSON_CreateString(s->id), cJSON_Duplicate(c->args, 1),
                 iso_date(util_now_ms()), NULL));
    return 0;
}

#define SENT_ROOMS_MAX 64

static int log_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    admin *a = arg;
    a->log_cursor = seq;
    logrec r;
    if (logrec_parse(rec, len, &r) || r.kind != LOGREC_BROADCAST || r.nframes == 0 ||
        r.nrooms > SENT_ROOMS_MAX || r.nexcept > SENT_ROOMS_MAX || r.nsp_len > SIO_NSP_MAX)
        return 0;
    char nsp[SIO_NSP_MAX + 1];
    memcpy(nsp, r.nsp, r.nsp_len);
    nsp[r.nsp_len] = 0;
    if (cfg_is_admin_nsp(&a->srv->cfg, nsp)) return 0; /* our own emits */
    size_t pos = 0;
    logrec_frame f;
    if (!logrec_frame_next(&r, &pos, &f) || f.binary || a->nsent >= EVENT_SENT_MAX) return 0;
    sio_packet p;
    if (sio_decode((const char *)f.data, f.len, &p)) return 0;
    if ((p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT) && cJSON_IsArray(p.data)) {
        char names[2][SENT_ROOMS_MAX][STORE_ROOM_MAX + 1];
        const char *ptr[2][SENT_ROOMS_MAX];
        for (int ex = 0; ex < 2; ex++) {
            size_t rp = 0, k = 0;
            logrec_room rm;
            while (k < SENT_ROOMS_MAX && logrec_room_next(&r, ex, &rp, &rm) && rm.len <= STORE_ROOM_MAX) {
                memcpy(names[ex][k], rm.name, rm.len);
                names[ex][k][rm.len] = 0;
                ptr[ex][k] = names[ex][k];
                k++;
            }
        }
        bcast to = {nsp, ptr[0], r.nrooms, ptr[1], r.nexcept, 0};
        sent_ctx c = {a, p.data, nsp};
        rooms_sockets(a->t, &to, 0, sent_cb, &c);
    }
    sio_packet_clear(&p);
    return 0;
}

/* ---- logins and the UI's actions ------------------------------------------------- */

/* The saved login sessions: {id: when} (the caller owns it). */
static cJSON *sessions_read(store_txn *t) {
    const void *d;
    size_t n;
    cJSON *o = store_meta_get(t, SESSIONS_KEY, &d, &n) == 0 ? json_parse(d, n) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = cJSON_CreateObject();
    }
    return o;
}

/* Node's middleware: a saved {sessionId}, else {username, password}. */
static void check_login(admin *a, login *l, const cJSON *sessions) {
    const char *sess = jstr(l->auth, "sessionId");
    if (sess && cJSON_GetObjectItemCaseSensitive(sessions, sess)) {
        l->ok = 1;
        return;
    }
    const char *user = jstr(l->auth, "username"), *pass = jstr(l->auth, "password");
    if (user && pass && !strcmp(user, a->cf->username) && password_check(a->cd, pass, a->cf->password_hash)) {
        l->ok = l->new_id = 1;
        char id[UTIL_ID_LEN + 1];
        util_random_id(id);
        snprintf(l->session, sizeof l->session, "%.16s", id);
    }
}

/* Saves the new session ids, keeping the SESSIONS_MAX newest. */
static int sessions_save(admin *a, store_txn *t) {
    cJSON *o = sessions_read(t);
    int64_t now = util_now_ms();
    for (size_t i = 0; i < a->nlg; i++)
        if (a->lg[i].new_id) cJSON_AddNumberToObject(o, a->lg[i].session, (double)now);
    while (cJSON_GetArraySize(o) > SESSIONS_MAX) {
        cJSON *oldest = NULL, *x;
        cJSON_ArrayForEach(x, o) if (!oldest || x->valuedouble < oldest->valuedouble) oldest = x;
        cJSON_Delete(cJSON_DetachItemViaPointer(o, oldest));
    }
    char *text = json_print(o);
    cJSON_Delete(o);
    int rc = text ? store_meta_put(t, SESSIONS_KEY, text, strlen(text)) : -ENOMEM;
    free(text);
    return rc;
}

static int answer_login(admin *a, store_txn *t, login *l, uint64_t *seq) {
    const char *nsp = a->cf->nsp;
    if (!l->ok) return socketio_refuse(t, l->sid, nsp, "invalid credentials", NULL, seq);
    /* The socket keeps the login's name, never its password or session id. */
    cJSON *kept = cJSON_CreateObject();
    const char *user = jstr(l->auth, "username");
    if (user) cJSON_AddStringToObject(kept, "username", user);
    int rc = socketio_accept(a->srv, t, l->sid, nsp, l->socket, kept, NULL, seq);
    cJSON_Delete(kept);
    if (!rc && l->new_id) add_emit(a, l->socket, "session", arr(cJSON_CreateString(l->session), NULL));
    return rc;
}

/* emit(nsp, filter, ev, ...args), join/leave(nsp, room, filter),
 * _disconnect(nsp, close, filter): what the UI's buttons send. */
static int apply_ui(admin *a, store_txn *t, const uiact *u, uint64_t *seq) {
    const cJSON *args = u->args;
    const cJSON *nsp = cJSON_GetArrayItem(args, 0);
    int is_emit = !strcmp(u->event, "emit");
    const cJSON *filter = cJSON_GetArrayItem(args, is_emit ? 1 : 2);
    if (!cJSON_IsString(nsp)) return 0;
    actions_target tg = {.nsp = nsp->valuestring, .everyone = 1};
    if (cJSON_IsString(filter) && filter->valuestring[0]) tg.to[tg.nto++] = filter->valuestring;
    char err[256] = "";
    int rc = 0;
    uint64_t s = 0;
    if (is_emit) {
        const cJSON *ev = cJSON_GetArrayItem(args, 2);
        if (!cJSON_IsString(ev)) return 0;
        cJSON *rest = cJSON_CreateArray();
        for (int i = 3; i < cJSON_GetArraySize(args); i++)
            cJSON_AddItemToArray(rest, cJSON_Duplicate(cJSON_GetArrayItem(args, i), 1));
        rc = actions_emit(a->srv, t, &tg, ev->valuestring, rest, -1, &s, NULL, err, sizeof err);
        cJSON_Delete(rest);
    } else if (!strcmp(u->event, "join") || !strcmp(u->event, "leave")) {
        const cJSON *room = cJSON_GetArrayItem(args, 1);
        if (!cJSON_IsString(room)) return 0;
        const char *rooms[1] = {room->valuestring};
        rc = actions_join(a->srv, t, &tg, rooms, 1, !strcmp(u->event, "leave"), NULL, err, sizeof err);
    } else if (!strcmp(u->event, "_disconnect")) {
        rc = actions_disconnect(a->srv, t, &tg, cJSON_IsTrue(cJSON_GetArrayItem(args, 1)), &s, NULL, err,
                                sizeof err);
    }
    if (rc > 0) log_warn("admin: %s refused: %s", u->event, err), rc = 0;
    if (s > *seq) *seq = s;
    return rc;
}

static int append_emits(admin *a, store_txn *t, uint64_t *seq) {
    for (size_t i = 0; i < a->nem; i++) {
        emit *e = &a->em[i];
        actions_target tg = {.nsp = a->cf->nsp, .everyone = 1};
        if (e->to[0]) tg.to[tg.nto++] = e->to, tg.local = 1;
        char err[256];
        uint64_t s = 0;
        int rc = actions_emit(a->srv, t, &tg, e->event, e->args, -1, &s, NULL, err, sizeof err);
        if (rc < 0) return rc;
        if (rc > 0) log_warn("admin: %s: %s", e->event, err);
        if (s > *seq) *seq = s;
    }
    return 0;
}

static void turn_clear(admin *a) {
    for (size_t i = 0; i < a->nem; i++) cJSON_Delete(a->em[i].args);
    for (size_t i = 0; i < a->nlg; i++) cJSON_Delete(a->lg[i].auth);
    for (size_t i = 0; i < a->nua; i++) free(a->ua[i].event), cJSON_Delete(a->ua[i].args);
    a->nem = a->nlg = a->nua = a->nsent = 0;
    a->saw_connection = 0;
}

/* ---- one turn ------------------------------------------------------------------- */

/* The read phase: 1 when the inbox has more records than one batch. */
static int gather(admin *a, int64_t now, cJSON **sessions) {
    store_txn *t;
    int rc = store_begin(a->srv->st, 0, &t);
    if (rc) {
        log_error("admin: cannot read the store: %s", store_strerror(rc));
        return 0;
    }
    a->t = t;
    uint64_t first = 0, head = 0;
    int more = 0;
    rc = store_inbox_bounds(t, &first, &head);
    if (!rc && first > a->in_cursor + 1 && first <= head) a->in_cursor = first - 1; /* trimmed */
    if (!rc && head > a->in_cursor) {
        inbox_ctx c = {a, t, 0};
        rc = store_inbox_scan(t, a->in_cursor, head, inbox_cb, &c);
        more = c.n >= INBOX_BATCH && a->in_cursor < head;
        if (rc > 0) rc = 0;
    }
    /* event_sent: the packet log */
    if (!rc) rc = store_log_bounds(t, &first, &head);
    if (!rc && a->cf->development && listened(a)) {
        if (a->log_cursor + 1 < first) a->log_cursor = first - 1;
        if (head > a->log_cursor + LOG_SKIP) a->log_cursor = head - LOG_SKIP;
        uint64_t until = head < a->log_cursor + LOG_BATCH ? head : a->log_cursor + LOG_BATCH;
        if (until > a->log_cursor) rc = store_log_scan(t, a->log_cursor, until, log_cb, a);
        if (until < head) more = 1;
    } else if (!rc) {
        a->log_cursor = head;
    }
    if (!rc && a->cf->development && a->nadmins > 0 && (a->saw_connection || now >= a->next_scan)) {
        rc = scan_sockets(a, t);
        a->next_scan = now + ADMIN_SCAN_MS;
    } else if (a->nadmins == 0 && a->snap_valid) {
        snaps_free(&a->snap);
        a->snap_valid = 0;
    }
    if (a->nlg) *sessions = sessions_read(t);
    if (rc < 0) log_error("admin: reading the store failed: %s", store_strerror(rc));
    a->t = NULL;
    store_abort(t);
    if (now >= a->next_stats) { /* its own read transaction (server/metrics.h) */
        size_t before = a->nem;
        rc = stats(a, now);
        a->next_stats = now + ADMIN_STATS_MS;
        if (rc) log_error("admin: server_stats: %s", store_strerror(rc));
        else if (!listened(a)) { /* no one to tell */
            cJSON_Delete(a->em[before].args);
            a->nem = before;
        }
    }
    return more;
}

/* The write phase. */
static int apply(admin *a, int64_t now) {
    store_txn *t;
    int rc = store_begin(a->srv->st, 1, &t);
    if (rc) return rc;
    uint64_t seq = 0;
    int new_ids = 0;
    for (size_t i = 0; !rc && i < a->nlg; i++) {
        rc = answer_login(a, t, &a->lg[i], &seq);
        new_ids |= a->lg[i].new_id;
    }
    if (!rc && new_ids) rc = sessions_save(a, t);
    for (size_t i = 0; !rc && i < a->nua; i++) rc = apply_ui(a, t, &a->ua[i], &seq);
    if (!rc) rc = append_emits(a, t, &seq);
    if (!rc && a->in_cursor != a->in_saved) rc = reader_put(t, &a->in_id, a->in_cursor);
    if (rc) {
        store_abort(t);
        return rc;
    }
    rc = store_commit(t);
    if (rc) return rc;
    a->in_saved = a->in_cursor;
    a->saved_at = now;
    if (seq) notify_sub_publish(a->sub, seq);
    return 0;
}

/* Returns when the next turn is due. */
static int64_t turn(admin *a) {
    int64_t now = util_now_ms();
    uint64_t in_before = a->in_cursor, log_before = a->log_cursor;
    cJSON *sessions = NULL;
    int more = gather(a, now, &sessions);
    for (size_t i = 0; i < a->nlg; i++) check_login(a, &a->lg[i], sessions); /* no transaction held */
    cJSON_Delete(sessions);
    int rc = 0;
    if (a->nlg || a->nua || a->nem || (a->in_cursor != a->in_saved && now >= a->saved_at + SAVE_EVERY_MS))
        rc = apply(a, now);
    turn_clear(a);
    if (rc) { /* read again next time */
        log_error("admin: writing to the store failed: %s", store_strerror(rc));
        a->in_cursor = in_before;
        a->log_cursor = log_before;
        return now + 1000;
    }
    if (more) return now;
    int64_t next = a->next_stats;
    if (a->cf->development && a->nadmins > 0 && a->next_scan < next) next = a->next_scan;
    if (a->in_cursor != a->in_saved && a->saved_at + SAVE_EVERY_MS < next) next = a->saved_at + SAVE_EVERY_MS;
    return next;
}

static void *loop(void *arg) {
    admin *a = arg;
    while (!a->stopping) {
        int64_t next = turn(a);
        struct pollfd fds[2] = {{notify_sub_eventfd(a->sub), POLLIN, 0}, {a->stop_fd, POLLIN, 0}};
        int64_t timeout = next - util_now_ms();
        if (poll(fds, 2, timeout < 0 ? 0 : (int)timeout) < 0 && errno != EINTR) usleep(10000);
        if (fds[0].revents) notify_sub_ack(a->sub);
    }
    return NULL;
}

/* ---- start / stop ----------------------------------------------------------------- */

/* Without [admin], the thread's inbox position would pin the inbox. */
static void forget_position(server *srv) {
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return;
    reader_id id = reader_self(READER_ADMIN);
    if (reader_del(t, &id)) store_abort(t);
    else store_commit(t);
}

static int load_position(admin *a) {
    store_txn *t;
    int rc = store_begin(a->srv->st, 1, &t);
    if (rc) return rc;
    uint64_t first, head, lfirst, lhead;
    rc = store_inbox_bounds(t, &first, &head);
    if (!rc) rc = store_log_bounds(t, &lfirst, &lhead);
    if (!rc && (rc = reader_get(t, &a->in_id, &a->in_cursor)) == STORE_NOTFOUND) {
        a->in_cursor = head; /* from now on */
        rc = reader_put(t, &a->in_id, a->in_cursor);
    }
    a->log_cursor = lhead;
    a->in_saved = a->in_cursor;
    if (rc) {
        store_abort(t);
        return rc;
    }
    return store_commit(t);
}

static void admin_free(admin *a) {
    if (a->sub) notify_sub_stop(a->sub);
    if (a->stop_fd >= 0) close(a->stop_fd);
    turn_clear(a);
    snaps_free(&a->snap);
    free(a->em);
    free(a->lg);
    free(a->ua);
    free(a->agg);
    free(a->cd);
    free(a);
}

int admin_start(server *srv, admin **out) {
    *out = NULL;
    if (!srv->cfg.admin.enabled) {
        forget_position(srv);
        return 0;
    }
    admin *a = calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    a->srv = srv;
    a->cf = &srv->cfg.admin;
    a->stop_fd = -1;
    a->in_id = reader_self(READER_ADMIN);
    a->started_ms = a->next_stats = a->next_scan = util_now_ms();
    if (gethostname(a->hostname, sizeof a->hostname - 1)) snprintf(a->hostname, sizeof a->hostname, "localhost");
    /* Node: the hostname (HOSTNAME#PID in a cluster worker); here the pid of
     * stated, so that nodes on one host differ too. */
    if (a->cf->server_id) snprintf(a->server_id, sizeof a->server_id, "%s", a->cf->server_id);
    else snprintf(a->server_id, sizeof a->server_id, "%s#%d", a->hostname, (int)getpid());
    int rc = (a->cd = calloc(1, sizeof *a->cd)) ? 0 : -ENOMEM;
    if (!rc) rc = load_position(a);
    if (!rc) rc = (a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ? -errno : 0;
    if (!rc) rc = notify_sub_start(srv->dir, &a->sub);
    if (!rc) rc = -pthread_create(&a->th, NULL, loop, a);
    if (rc) {
        admin_free(a);
        return rc;
    }
    log_info("admin: the Admin UI namespace %s (%s mode, %s) as server %s", a->cf->nsp,
             a->cf->development ? "development" : "production",
             a->cf->auth_none ? "no authentication" : "password", a->server_id);
    *out = a;
    return 0;
}

void admin_stop(admin *a) {
    if (!a) return;
    a->stopping = 1;
    uint64_t one = 1;
    ssize_t w = write(a->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(a->th, NULL);
    store_txn *t;
    if (a->in_cursor != a->in_saved && store_begin(a->srv->st, 1, &t) == 0) {
        if (reader_put(t, &a->in_id, a->in_cursor)) store_abort(t);
        else store_commit(t);
    }
    admin_free(a);
}

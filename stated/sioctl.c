/* sioctl: the command line.  It acts on the store directly, through the very
 * same library calls the servers use (srv_emit, adapter_join, ...), and
 * wakes the servers through the notify hub.  No web server is involved.
 *
 *   sioctl [--state DIR] [--json] COMMAND [options]
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (bad option, bad JSON,
 * unknown namespace, no such socket), 3 the stack is not running. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adapter.h"
#include "engine.h"
#include "log.h"
#include "sio.h"
#include "srv.h"
#include "util.h"

#define MAX_TARGETS 256

static const char *usage_text =
    "usage: sioctl [--state DIR] [--json] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  emit [--nsp NS] [--to ROOM]... [--except ROOM]... EVENT [ARG...]\n"
    "      send EVENT to every socket of NS (default /), or to the union of the\n"
    "      --to rooms, minus the --except rooms; each socket gets it once.\n"
    "      A socket id is a room too.  ARG is JSON (42, true, {\"a\":1}, \"text\")\n"
    "      or else a plain string; binary: {\"$binary\":\"<base64>\"}.\n"
    "  rooms [--nsp NS] [--all]\n"
    "      rooms of NS with their members (--all includes each socket's own room).\n"
    "  sockets [--nsp NS] [--room ROOM]\n"
    "      sockets with their namespace and rooms.\n"
    "  join [--nsp NS] [--to ROOM]... [--except ROOM]... ROOM...\n"
    "  leave [--nsp NS] [--to ROOM]... [--except ROOM]... ROOM...\n"
    "      make the targeted sockets (all of NS without --to) join / leave rooms.\n"
    "  disconnect [--nsp NS] [--to ROOM]... [--except ROOM]... [--close]\n"
    "      disconnect the targeted sockets (they get a DISCONNECT packet);\n"
    "      --close also closes their Engine.IO connections.\n"
    "\n"
    "When --nsp is not given and a --to names a socket id, its namespace is used.\n"
    "env: SIO_STATE_DIR (the stack's state directory), SIO_CONFIG.\n"
    "exit: 0 ok, 1 failure, 2 usage error, 3 the stack is not running.\n";

typedef struct opts {
    const char *nsp;
    const char *to[MAX_TARGETS];
    size_t nto;
    const char *except[MAX_TARGETS];
    size_t nexcept;
    const char *room; /* sockets --room */
    int all, close, json;
    char **args;
    int nargs;
} opts;

static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sioctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* Parses the options shared by the commands; positional arguments are kept.
 * Returns 0 or an exit code. */
static int parse_opts(int argc, char **argv, opts *o) {
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    int positional_only = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (positional_only || a[0] != '-' || !strcmp(a, "-")) {
            o->args[o->nargs++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) { positional_only = 1; continue; }
        if (!strcmp(a, "--all")) { o->all = 1; continue; }
        if (!strcmp(a, "--close")) { o->close = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!v) return die(2, "option %s needs a value", a);
        if (!strcmp(a, "--nsp")) o->nsp = v;
        else if (!strcmp(a, "--room")) o->room = v;
        else if (!strcmp(a, "--to") || !strcmp(a, "--in")) {
            if (o->nto >= MAX_TARGETS) return die(2, "too many --to rooms (max %d)", MAX_TARGETS);
            o->to[o->nto++] = v;
        } else if (!strcmp(a, "--except")) {
            if (o->nexcept >= MAX_TARGETS) return die(2, "too many --except rooms (max %d)", MAX_TARGETS);
            o->except[o->nexcept++] = v;
        } else {
            return die(2, "unknown option %s (see sioctl --help)", a);
        }
        i++;
    }
    return 0;
}

static int check_room(const char *r) {
    size_t l = strlen(r);
    if (l == 0 || l > STORE_ROOM_MAX) return die(2, "room names are 1 to %d bytes", STORE_ROOM_MAX);
    return 0;
}

/* Resolves the namespace: --nsp, else the namespace of a socket id given in
 * --to, else "/".  It must be a configured namespace. */
static int resolve_nsp(engine *e, store_txn *t, opts *o, char *nsp, size_t n) {
    if (o->nsp) {
        snprintf(nsp, n, "%s", o->nsp);
    } else {
        snprintf(nsp, n, "/");
        for (size_t i = 0; i < o->nto; i++) {
            store_socket s;
            if (util_is_id(o->to[i], strlen(o->to[i])) && store_socket_get(t, o->to[i], &s) == 0) {
                snprintf(nsp, n, "%s", s.nsp);
                break;
            }
        }
    }
    if (nsp[0] != '/' || strlen(nsp) > SIO_NSP_MAX)
        return die(2, "bad namespace '%s' (it starts with '/')", nsp);
    if (!cfg_nsp_find(&e->cfg, nsp)) return die(2, "unknown namespace '%s'", nsp);
    for (size_t i = 0; i < o->nto; i++)
        if (check_room(o->to[i])) return 2;
    for (size_t i = 0; i < o->nexcept; i++)
        if (check_room(o->except[i])) return 2;
    return 0;
}

/* ARG: JSON when it parses as JSON, else a plain string; text that looks like
 * JSON ({, [ or ") but does not parse is an error. */
static cJSON *parse_arg(const char *a, int idx) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(a, &end, 1);
    if (j) return j;
    const char *p = a;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (*p == '{' || *p == '[' || *p == '"') {
        die(2, "argument %d is not valid JSON: %s", idx, a);
        return NULL;
    }
    return cJSON_CreateString(a);
}

static int cmd_emit(engine *e, store_txn *t, opts *o, uint64_t *seq) {
    if (o->nargs < 1) return die(2, "emit needs an EVENT name");
    char nsp[SIO_NSP_MAX + 1];
    int rc = resolve_nsp(e, t, o, nsp, sizeof nsp);
    if (rc) return rc;
    const char *ev = o->args[0];
    if (!*ev) return die(2, "the event name is empty");
    if (sio_reserved_event(ev)) return die(2, "'%s' is a reserved event name", ev);
    sio_packet p = {.type = SIO_EVENT, .id = -1};
    strcpy(p.nsp, nsp);
    p.data = cJSON_CreateArray();
    cJSON_AddItemToArray(p.data, cJSON_CreateString(ev));
    for (int i = 1; i < o->nargs; i++) {
        cJSON *a = parse_arg(o->args[i], i);
        if (!a) { sio_packet_clear(&p); return 2; }
        cJSON_AddItemToArray(p.data, a);
    }
    bcast to = {nsp, o->to, o->nto, o->except, o->nexcept};
    rc = srv_emit(e, t, &to, &p, seq);
    sio_packet_clear(&p);
    if (rc == -EINVAL) return die(2, "bad binary argument (expected {\"$binary\":\"<base64>\"})");
    if (rc == -E2BIG) return die(2, "too many binary arguments (max %d)", SIO_MAX_ATTACHMENTS);
    if (rc) return die(1, "emit failed: %s", store_strerror(rc));
    if (o->json) printf("{\"seq\":%llu}\n", (unsigned long long)*seq);
    return 0;
}

/* ---- rooms ---------------------------------------------------------------- */

typedef struct rooms_ctx {
    store_txn *t;
    const char *nsp;
    int all, json, first;
    cJSON *arr;
} rooms_ctx;

static int print_member(void *arg, const char *id, uint64_t js) {
    (void)js;
    cJSON *members = arg;
    cJSON_AddItemToArray(members, cJSON_CreateString(id));
    return 0;
}

static int room_cb(void *arg, const char *room, size_t len, size_t count) {
    rooms_ctx *c = arg;
    char name[STORE_ROOM_MAX + 1];
    memcpy(name, room, len);
    name[len] = 0;
    store_socket s;
    /* a socket's private room (its own id) is shown only with --all */
    if (!c->all && util_is_id(name, len) && store_socket_get(c->t, name, &s) == 0) return 0;
    cJSON *members = cJSON_CreateArray();
    store_room_members(c->t, c->nsp, room, len, print_member, members);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "room", name);
        cJSON_AddNumberToObject(o, "size", (double)count);
        cJSON_AddItemToObject(o, "members", members);
        cJSON_AddItemToArray(c->arr, o);
    } else {
        printf("%s\t%zu\t", name, count);
        int i = 0;
        cJSON *m;
        cJSON_ArrayForEach(m, members) printf("%s%s", i++ ? "," : "", m->valuestring);
        printf("\n");
        cJSON_Delete(members);
    }
    return 0;
}

static int cmd_rooms(engine *e, store_txn *t, opts *o) {
    char nsp[SIO_NSP_MAX + 1];
    int rc = resolve_nsp(e, t, o, nsp, sizeof nsp);
    if (rc) return rc;
    rooms_ctx c = {t, nsp, o->all, o->json, 1, cJSON_CreateArray()};
    rc = store_room_each(t, nsp, room_cb, &c);
    if (rc) { cJSON_Delete(c.arr); return die(1, "reading rooms failed: %s", store_strerror(rc)); }
    if (o->json) {
        char *s = cJSON_PrintUnformatted(c.arr);
        printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(c.arr);
    return 0;
}

/* ---- sockets --------------------------------------------------------------- */

typedef struct sockets_ctx {
    store_txn *t;
    const char *nsp; /* NULL: every namespace */
    int json;
    cJSON *arr;
} sockets_ctx;

static int sock_room_cb(void *arg, const char *room, size_t len) {
    cJSON *rooms = arg;
    char name[STORE_ROOM_MAX + 1];
    memcpy(name, room, len);
    name[len] = 0;
    cJSON_AddItemToArray(rooms, cJSON_CreateString(name));
    return 0;
}

static int sockets_cb(void *arg, const store_socket *s) {
    sockets_ctx *c = arg;
    if (c->nsp && strcmp(c->nsp, s->nsp)) return 0;
    cJSON *rooms = cJSON_CreateArray();
    cJSON *data = s->data_len ? cJSON_ParseWithLength(s->data, s->data_len) : NULL;
    store_socket_rooms(c->t, s->id, sock_room_cb, rooms);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", s->id);
        cJSON_AddStringToObject(o, "nsp", s->nsp);
        cJSON_AddItemToObject(o, "rooms", rooms);
        store_session ss;
        if (store_session_get(c->t, s->sid, &ss) == 0) {
            cJSON_AddStringToObject(o, "transport", ss.transport == STORE_T_WEBSOCKET ? "websocket" : "polling");
            cJSON_AddStringToObject(o, "address", ss.remote);
        }
        cJSON_AddNumberToObject(o, "connectedAt", (double)s->created_ms);
        if (data) cJSON_AddItemToObject(o, "data", data), data = NULL;
        cJSON_AddItemToArray(c->arr, o);
    } else {
        printf("%s\t%s\t", s->id, s->nsp);
        int i = 0;
        cJSON *r;
        cJSON_ArrayForEach(r, rooms) printf("%s%s", i++ ? "," : "", r->valuestring);
        printf("\n");
        cJSON_Delete(rooms);
    }
    cJSON_Delete(data);
    return 0;
}

static int cmd_sockets(engine *e, store_txn *t, opts *o) {
    sockets_ctx c = {t, NULL, o->json, cJSON_CreateArray()};
    char nsp[SIO_NSP_MAX + 1];
    int rc = 0;
    if (o->nsp || o->room) {
        if (o->room) {
            o->to[o->nto++] = o->room;
        }
        rc = resolve_nsp(e, t, o, nsp, sizeof nsp);
        if (rc) { cJSON_Delete(c.arr); return rc; }
        c.nsp = nsp;
    }
    if (o->room) {
        bcast to = {nsp, o->to, o->nto, o->except, o->nexcept};
        rc = adapter_sockets(t, &to, sockets_cb, &c);
    } else {
        rc = store_socket_each(t, sockets_cb, &c);
    }
    if (rc) { cJSON_Delete(c.arr); return die(1, "reading sockets failed: %s", store_strerror(rc)); }
    if (o->json) {
        char *s = cJSON_PrintUnformatted(c.arr);
        printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(c.arr);
    return 0;
}

/* ---- join / leave / disconnect ------------------------------------------- */

typedef struct act_ctx {
    engine *e;
    store_txn *t;
    opts *o;
    int what; /* 'j', 'l', 'd' */
    size_t count;
    uint64_t seq;
    int err;
} act_ctx;

static int act_cb(void *arg, const store_socket *s) {
    act_ctx *a = arg;
    int rc = 0;
    if (a->what == 'j' || a->what == 'l') {
        for (int i = 0; !rc && i < a->o->nargs; i++)
            rc = a->what == 'j' ? adapter_join(a->t, s, a->o->args[i])
                                : adapter_leave(a->t, s, a->o->args[i]);
    } else {
        char sid[UTIL_ID_LEN + 1];
        strcpy(sid, s->sid);
        rc = srv_socket_remove(a->e, a->t, s, 1, &a->seq);
        if (!rc && a->o->close) {
            store_session ss;
            if (store_session_get(a->t, sid, &ss) == 0)
                rc = engine_session_close(a->e, a->t, sid, &ss, ENGINE_CLOSE_SERVER);
        }
    }
    if (rc) { a->err = rc; return 1; }
    a->count++;
    return 0;
}

static int cmd_act(engine *e, store_txn *t, opts *o, int what, uint64_t *seq) {
    if ((what == 'j' || what == 'l') && o->nargs < 1)
        return die(2, "%s needs at least one ROOM", what == 'j' ? "join" : "leave");
    if (what == 'd' && o->nargs > 0) return die(2, "disconnect takes no positional argument");
    for (int i = 0; i < o->nargs; i++)
        if (check_room(o->args[i])) return 2;
    char nsp[SIO_NSP_MAX + 1];
    int rc = resolve_nsp(e, t, o, nsp, sizeof nsp);
    if (rc) return rc;
    bcast to = {nsp, o->to, o->nto, o->except, o->nexcept};
    act_ctx a = {e, t, o, what, 0, 0, 0};
    rc = adapter_sockets(t, &to, act_cb, &a);
    if (rc < 0 || a.err) return die(1, "failed: %s", store_strerror(a.err ? a.err : rc));
    *seq = a.seq;
    if (o->json) printf("{\"sockets\":%zu}\n", a.count);
    else if (a.count == 0) fprintf(stderr, "sioctl: no socket matched\n");
    return 0;
}

int main(int argc, char **argv) {
    log_init("sioctl");
    const char *dir = NULL;
    int json = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage_text, stdout); return 0; }
        else { fputs(usage_text, stderr); return 2; }
    }
    if (i >= argc) { fputs(usage_text, stderr); return 2; }
    const char *cmd = argv[i++];
    opts o = {0};
    o.json = json;
    int rc = parse_opts(argc - i, argv + i, &o);
    if (rc) { free(o.args); return rc; }
    int write = 1;
    if (!strcmp(cmd, "rooms") || !strcmp(cmd, "sockets")) write = 0;
    else if (strcmp(cmd, "emit") && strcmp(cmd, "join") && strcmp(cmd, "leave") && strcmp(cmd, "disconnect")) {
        free(o.args);
        return die(2, "unknown command '%s' (see sioctl --help)", cmd);
    }

    engine e;
    char err[1024];
    if (engine_open(&e, dir, NULL, 0, err, sizeof err)) {
        free(o.args);
        return die(3, "%s", err);
    }
    if (notify_probe(e.dir)) {
        engine_close(&e);
        free(o.args);
        return die(3, "stated is not running for %s (no answer on %s/%s)", e.dir, e.dir, NOTIFY_SOCK);
    }
    store_txn *t;
    rc = store_begin(e.st, write, &t);
    if (rc) {
        engine_close(&e);
        free(o.args);
        return die(1, "cannot read the store: %s", store_strerror(rc));
    }
    uint64_t seq = 0;
    if (!strcmp(cmd, "emit")) rc = cmd_emit(&e, t, &o, &seq);
    else if (!strcmp(cmd, "rooms")) rc = cmd_rooms(&e, t, &o);
    else if (!strcmp(cmd, "sockets")) rc = cmd_sockets(&e, t, &o);
    else rc = cmd_act(&e, t, &o, cmd[0], &seq);
    if (rc == 0 && write) {
        int c = store_commit(t);
        if (c) rc = die(1, "commit failed: %s", store_strerror(c));
        else engine_notify(&e, seq);
    } else {
        store_abort(t);
    }
    engine_close(&e);
    free(o.args);
    return rc;
}

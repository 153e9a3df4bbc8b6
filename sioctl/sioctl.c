/* sioctl: the command line.  It acts on the store directly, through the
 * very same library calls the servers and the handler dispatcher use
 * (server/actions.h), and wakes the servers through the notify hub.  No web
 * server is involved.
 *
 *   sioctl [--state DIR] [--json] COMMAND [options]
 *
 * Inside a handler (SIO_SOCKET set by the dispatcher) commands act on the
 * handler's socket by default, like `socket.emit`, `socket.join`, ...
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (bad option, bad JSON,
 * unknown namespace, no such socket), 3 the stack is not running, 4 an
 * `emit --ack` timed out before every targeted client answered. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/sio_parser.h"
#include "server/actions.h"
#include "server/reader.h"
#include "store/inbox.h"

static const char *usage_text =
    "usage: sioctl [--state DIR] [--json] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  emit [--nsp NS] [--to ROOM]... [--except ROOM]... [--broadcast] [--all]\n"
    "       [--ack [--timeout MS]] EVENT [ARG...]\n"
    "      send EVENT to every socket of NS (default /), or to the union of the\n"
    "      --to rooms, minus the --except rooms; each socket gets it once.\n"
    "      A socket id is a room too.  ARG is JSON (42, true, {\"a\":1}, \"text\")\n"
    "      or else a plain string; binary: {\"$binary\":\"<base64>\"}.\n"
    "      --ack waits for every targeted client's acknowledgement (up to\n"
    "      --timeout MS, default 5000) and prints the answers.\n"
    "  rooms [--nsp NS] [--all]\n"
    "      rooms of NS with their members (--all includes each socket's own room).\n"
    "  sockets [--nsp NS] [--room ROOM]\n"
    "      sockets with their namespace, rooms and data.\n"
    "  join [--nsp NS] [--to ROOM]... [--except ROOM]... ROOM...\n"
    "  leave [--nsp NS] [--to ROOM]... [--except ROOM]... ROOM...\n"
    "      make the targeted sockets (all of NS without --to) join / leave rooms.\n"
    "  disconnect [--nsp NS] [--to ROOM]... [--except ROOM]... [--close]\n"
    "      disconnect the targeted sockets (they get a DISCONNECT packet);\n"
    "      --close also closes their Engine.IO connections.\n"
    "  ack [--socket ID --id N] [ARG...]\n"
    "      answer a client event that asked for an acknowledgement.\n"
    "  listen [--nsp NS] [--from-start] [EVENT...]\n"
    "      print client events (connections, events, acks, disconnects) as JSON\n"
    "      lines as they arrive; with EVENT names, only those events.\n"
    "  send --sid SID DATA\n"
    "      send DATA (a string, or {\"$binary\":...}) on a bare Engine.IO session.\n"
    "\n"
    "options: --socket ID acts as that socket (default $SIO_SOCKET inside a\n"
    "handler): without --to, emit/join/leave/disconnect target it; --broadcast\n"
    "excludes it; --all targets the whole namespace.\n"
    "When --nsp is not given, the namespace of the acting socket or of a socket\n"
    "id in --to is used, else /.\n"
    "env: SIO_STATE_DIR (the stack's state directory), SIO_CONFIG, and in\n"
    "handlers SIO_SOCKET, SIO_ACK_ID.\n"
    "exit: 0 ok, 1 failure, 2 usage error, 3 the stack is not running, 4 ack timeout.\n";

typedef struct opts {
    actions_target tg;
    const char *room; /* sockets --room */
    const char *sid;  /* send --sid */
    long long ack_id; /* ack --id */
    long timeout_ms;
    int all, close, json, want_ack, from_start;
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

/* Parses the options shared by the commands; positional arguments are kept. */
static int parse_opts(int argc, char **argv, opts *o) {
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    o->ack_id = -1;
    o->timeout_ms = 5000;
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
        if (!strcmp(a, "--broadcast")) { o->tg.broadcast = 1; continue; }
        if (!strcmp(a, "--ack")) { o->want_ack = 1; continue; }
        if (!strcmp(a, "--from-start")) { o->from_start = 1; continue; }
        if (!v) return die(2, "option %s needs a value", a);
        if (!strcmp(a, "--nsp")) o->tg.nsp = v;
        else if (!strcmp(a, "--room")) o->room = v;
        else if (!strcmp(a, "--socket")) o->tg.self = v;
        else if (!strcmp(a, "--sid")) o->sid = v;
        else if (!strcmp(a, "--id")) {
            long x;
            if (util_parse_long(v, 0, 2147483647L, &x)) return die(2, "bad --id '%s'", v);
            o->ack_id = x;
        } else if (!strcmp(a, "--timeout")) {
            if (util_parse_long(v, 1, 3600000, &o->timeout_ms)) return die(2, "bad --timeout '%s' (ms)", v);
        } else if (!strcmp(a, "--to") || !strcmp(a, "--in")) {
            if (o->tg.nto >= ACTIONS_MAX_TARGETS) return die(2, "too many --to rooms (max %d)", ACTIONS_MAX_TARGETS);
            o->tg.to[o->tg.nto++] = v;
        } else if (!strcmp(a, "--except")) {
            if (o->tg.nexcept >= ACTIONS_MAX_TARGETS) return die(2, "too many --except rooms (max %d)", ACTIONS_MAX_TARGETS);
            o->tg.except[o->tg.nexcept++] = v;
        } else {
            return die(2, "unknown option %s (see sioctl --help)", a);
        }
        i++;
    }
    return 0;
}

/* A failed op: ACTIONS_EUSAGE -> exit 2 with err, else a store failure. */
static int op_failed(int rc, const char *err) {
    if (rc == ACTIONS_EUSAGE) return die(2, "%s", err);
    return die(1, "failed: %s", store_strerror(rc));
}

static cJSON *args_array(opts *o, int from) {
    cJSON *arr = cJSON_CreateArray();
    char err[512];
    for (int i = from; i < o->nargs; i++) {
        cJSON *a = actions_parse_arg(o->args[i], err, sizeof err);
        if (!a) {
            die(2, "argument %d is %s", i - from + 1, err);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, a);
    }
    return arr;
}

static void print_json(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    free(s);
}

/* ---- rooms / sockets ---------------------------------------------------- */

typedef struct rooms_ctx {
    store_txn *t;
    const char *nsp;
    int all, json;
    cJSON *arr;
} rooms_ctx;

static int add_member(void *arg, const char *id, uint64_t js) {
    (void)js;
    cJSON_AddItemToArray(arg, cJSON_CreateString(id));
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
    store_room_members(c->t, c->nsp, room, len, add_member, members);
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

static int cmd_rooms(server *e, store_txn *t, opts *o) {
    const char *nsp = o->tg.nsp ? o->tg.nsp : "/";
    if (!cfg_nsp_find(&e->cfg, nsp)) return die(2, "unknown namespace '%s'", nsp);
    rooms_ctx c = {t, nsp, o->all, o->json, cJSON_CreateArray()};
    int rc = store_room_each(t, nsp, room_cb, &c);
    if (!rc && o->json) print_json(c.arr);
    cJSON_Delete(c.arr);
    return rc ? die(1, "reading rooms failed: %s", store_strerror(rc)) : 0;
}

typedef struct sockets_ctx {
    store_txn *t;
    const char *nsp; /* NULL: every namespace */
    int json;
    cJSON *arr;
} sockets_ctx;

static int sock_room_cb(void *arg, const char *room, size_t len) {
    char name[STORE_ROOM_MAX + 1];
    memcpy(name, room, len);
    name[len] = 0;
    cJSON_AddItemToArray(arg, cJSON_CreateString(name));
    return 0;
}

static int sockets_cb(void *arg, const store_socket *s) {
    sockets_ctx *c = arg;
    if (c->nsp && strcmp(c->nsp, s->nsp)) return 0;
    cJSON *rooms = cJSON_CreateArray();
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
        cJSON *d = s->data_len ? cJSON_ParseWithLength(s->data, s->data_len) : NULL;
        cJSON *auth = cJSON_DetachItemFromObject(d, "auth");
        cJSON *data = cJSON_DetachItemFromObject(d, "data");
        cJSON_AddItemToObject(o, "auth", auth ? auth : cJSON_CreateObject());
        cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateNull());
        cJSON_Delete(d);
        cJSON_AddItemToArray(c->arr, o);
    } else {
        printf("%s\t%s\t", s->id, s->nsp);
        int i = 0;
        cJSON *r;
        cJSON_ArrayForEach(r, rooms) printf("%s%s", i++ ? "," : "", r->valuestring);
        printf("\n");
        cJSON_Delete(rooms);
    }
    return 0;
}

static int cmd_sockets(server *e, store_txn *t, opts *o) {
    sockets_ctx c = {t, NULL, o->json, cJSON_CreateArray()};
    int rc;
    char err[512] = "";
    if (o->room || o->tg.nsp) {
        actions_target tg = o->tg;
        tg.self = NULL;
        tg.everyone = 1;
        if (o->room) {
            if (tg.nto >= ACTIONS_MAX_TARGETS) {
                cJSON_Delete(c.arr);
                return die(2, "too many --to rooms with --room (max %d)", ACTIONS_MAX_TARGETS);
            }
            tg.to[tg.nto++] = o->room;
        }
        rc = actions_sockets(e, t, &tg, sockets_cb, &c, err, sizeof err);
    } else {
        rc = store_socket_each(t, sockets_cb, &c);
    }
    if (!rc && o->json) print_json(c.arr);
    cJSON_Delete(c.arr);
    return rc ? op_failed(rc, err) : 0;
}

/* ---- waiting on the inbox (emit --ack, listen) ------------------------- */

typedef struct inbox_wait {
    uint64_t after;
    int (*on)(void *arg, cJSON *ev); /* non-zero: stop */
    void *arg;
    int stop;
} inbox_wait;

static int inbox_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    inbox_wait *w = arg;
    w->after = seq;
    cJSON *ev = inbox_parse(seq, rec, len);
    if (!ev) return 0;
    int r = w->on(w->arg, ev);
    cJSON_Delete(ev);
    if (r) w->stop = 1;
    return r;
}

/* Feeds inbox records after w->after to w->on until it says stop or the
 * deadline (0: none) passes.  Returns 0 when stopped by on, 1 on timeout. */
static int follow_inbox(server *e, inbox_wait *w, int64_t deadline) {
    for (;;) {
        uint64_t gen = notify_sub_gen(e->sub);
        store_txn *t;
        if (store_begin(e->st, 0, &t) == 0) {
            store_inbox_scan(t, w->after, UINT64_MAX, inbox_cb, w);
            store_abort(t);
        }
        fflush(stdout);
        if (w->stop) return 0;
        int64_t now = util_now_ms();
        if (deadline && now >= deadline) return 1;
        notify_sub_wait(e->sub, gen, deadline ? deadline : now + 60000);
    }
}

typedef struct ack_ctx {
    long long id;
    size_t want, got;
    cJSON *answers; /* socket id -> args */
} ack_ctx;

static int ack_on(void *arg, cJSON *ev) {
    ack_ctx *a = arg;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
    const cJSON *sock = cJSON_GetObjectItemCaseSensitive(ev, "socket");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "ack") || !cJSON_IsNumber(id) ||
        (long long)id->valuedouble != a->id || !cJSON_IsString(sock))
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(a->answers, sock->valuestring)) return 0;
    cJSON *args = cJSON_DetachItemFromObject(ev, "args");
    cJSON_AddItemToObject(a->answers, sock->valuestring, args ? args : cJSON_CreateArray());
    return ++a->got >= a->want;
}

static int cmd_emit(server *e, opts *o) {
    if (o->nargs < 1) return die(2, "emit needs an EVENT name");
    cJSON *args = args_array(o, 1);
    if (!args) return 2;
    o->tg.everyone = o->all;
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) { cJSON_Delete(args); return die(1, "cannot write the store: %s", store_strerror(rc)); }
    long long ack = -1;
    if (o->want_ack && (rc = actions_next_ack_id(t, &ack))) { store_abort(t); cJSON_Delete(args); return op_failed(rc, ""); }
    uint64_t seq = 0, head = 0;
    size_t count = 0;
    char err[512] = "";
    store_inbox_bounds(t, NULL, &head);
    rc = actions_emit(e, t, &o->tg, o->args[0], args, ack, &seq, &count, err, sizeof err);
    cJSON_Delete(args);
    if (rc) { store_abort(t); return op_failed(rc, err); }
    if ((rc = store_commit(t))) return die(1, "commit failed: %s", store_strerror(rc));
    server_notify(e, seq);
    if (!o->want_ack) {
        if (o->json) printf("{\"seq\":%llu,\"sockets\":%zu}\n", (unsigned long long)seq, count);
        return 0;
    }
    ack_ctx a = {ack, count, 0, cJSON_CreateObject()};
    inbox_wait w = {head, ack_on, &a, 0};
    int timed_out = count > 0 && follow_inbox(e, &w, util_now_ms() + o->timeout_ms);
    if (o->json) {
        print_json(a.answers);
    } else {
        cJSON *it;
        cJSON_ArrayForEach(it, a.answers) {
            char *s = cJSON_PrintUnformatted(it);
            printf("%s\t%s\n", it->string, s);
            free(s);
        }
    }
    cJSON_Delete(a.answers);
    if (timed_out)
        return die(4, "timeout: %zu of %zu client(s) acknowledged within %ld ms", a.got, a.want, o->timeout_ms);
    return 0;
}

typedef struct listen_ctx {
    const char *nsp;
    char **events;
    int nevents;
} listen_ctx;

static int listen_on(void *arg, cJSON *ev) {
    listen_ctx *l = arg;
    const cJSON *nsp = cJSON_GetObjectItemCaseSensitive(ev, "nsp");
    if (l->nsp && (!cJSON_IsString(nsp) || strcmp(nsp->valuestring, l->nsp))) return 0;
    if (l->nevents) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "event");
        int keep = 0;
        for (int i = 0; !keep && i < l->nevents; i++)
            keep = cJSON_IsString(name) && !strcmp(name->valuestring, l->events[i]);
        if (!keep) return 0;
    }
    print_json(ev);
    return 0;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static int cmd_listen(server *e, opts *o) {
    if (o->tg.nsp && !cfg_nsp_find(&e->cfg, o->tg.nsp)) return die(2, "unknown namespace '%s'", o->tg.nsp);
    store_txn *t;
    uint64_t head = 0, first = 0;
    reader_id me = reader_self(READER_LISTEN);
    int rc = store_begin(e->st, 1, &t);
    if (!rc) {
        store_inbox_bounds(t, &first, &head);
        /* registered as an inbox reader: stated does not trim what we still read */
        rc = reader_put(t, &me, o->from_start ? first - 1 : head);
        if (!rc) rc = store_commit(t); else store_abort(t);
    }
    if (rc) return die(1, "cannot read the store: %s", store_strerror(rc));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, on_signal);
    listen_ctx l = {o->tg.nsp, o->args, o->nargs};
    inbox_wait w = {o->from_start ? first - 1 : head, listen_on, &l, 0};
    uint64_t saved = w.after;
    while (!g_stop && !ferror(stdout)) {
        follow_inbox(e, &w, util_now_ms() + 1000);
        if (w.after != saved && store_begin(e->st, 1, &t) == 0) {
            reader_put(t, &me, w.after);
            if (store_commit(t) == 0) saved = w.after;
        }
    }
    if (store_begin(e->st, 1, &t) == 0) {
        reader_del(t, &me);
        store_commit(t);
    }
    return 0;
}

/* ---- the writing commands ------------------------------------------------ */

static int cmd_write(server *e, const char *cmd, opts *o) {
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return die(1, "cannot write the store: %s", store_strerror(rc));
    uint64_t seq = 0;
    size_t count = 0;
    char err[512] = "";
    cJSON *args = NULL;
    if (!strcmp(cmd, "join") || !strcmp(cmd, "leave")) {
        o->tg.everyone = o->all;
        rc = actions_join(e, t, &o->tg, (const char *const *)o->args, (size_t)o->nargs, cmd[0] == 'l',
                      &count, err, sizeof err);
    } else if (!strcmp(cmd, "disconnect")) {
        if (o->nargs) { store_abort(t); return die(2, "disconnect takes no positional argument"); }
        o->tg.everyone = o->all;
        rc = actions_disconnect(e, t, &o->tg, o->close, &seq, &count, err, sizeof err);
    } else if (!strcmp(cmd, "ack")) {
        long long id = o->ack_id;
        const char *env = getenv("SIO_ACK_ID");
        long x;
        if (id < 0 && env && util_parse_long(env, 0, 2147483647L, &x) == 0) id = x;
        if (id < 0) { store_abort(t); return die(2, "ack needs --id N (or SIO_ACK_ID, set in handlers of events that want an ack)"); }
        if (!(args = args_array(o, 0))) { store_abort(t); return 2; }
        rc = actions_ack(t, o->tg.self, id, args, &seq, err, sizeof err);
        count = 1;
    } else { /* send */
        if (o->nargs != 1) { store_abort(t); return die(2, "send needs --sid SID and one DATA argument"); }
        if (!(args = actions_parse_arg(o->args[0], err, sizeof err))) { store_abort(t); return die(2, "%s", err); }
        rc = actions_send(t, o->sid, args, &seq, err, sizeof err);
        count = 1;
    }
    cJSON_Delete(args);
    if (rc) { store_abort(t); return op_failed(rc, err); }
    if ((rc = store_commit(t))) return die(1, "commit failed: %s", store_strerror(rc));
    server_notify(e, seq);
    if (o->json) printf("{\"sockets\":%zu}\n", count);
    else if (count == 0) fprintf(stderr, "sioctl: no socket matched\n");
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
    static const char *const cmds[] = {"emit", "rooms", "sockets", "join", "leave", "disconnect",
                                       "ack", "listen", "send", NULL};
    int known = 0;
    for (int k = 0; cmds[k]; k++) known |= !strcmp(cmd, cmds[k]);
    if (!known) return die(2, "unknown command '%s' (see sioctl --help)", cmd);
    opts o;
    memset(&o, 0, sizeof o);
    o.json = json;
    int rc = parse_opts(argc - i, argv + i, &o);
    if (rc) { free(o.args); return rc; }
    /* Inside a handler the acting socket comes from the environment. */
    const char *self = getenv("SIO_SOCKET");
    if (!o.tg.self && self && *self && strcmp(cmd, "rooms") && strcmp(cmd, "sockets")) o.tg.self = self;

    server e;
    char err[1024];
    int need_sub = !strcmp(cmd, "listen") || (!strcmp(cmd, "emit") && o.want_ack);
    if (server_open(&e, dir, NULL, need_sub ? SERVER_SUBSCRIBE : 0, err, sizeof err)) {
        free(o.args);
        return die(3, "%s", err);
    }
    if (notify_probe(e.dir)) {
        server_close(&e);
        free(o.args);
        return die(3, "stated is not running for %s (no answer on %s/%s)", e.dir, e.dir, NOTIFY_SOCK);
    }
    if (!strcmp(cmd, "emit")) rc = cmd_emit(&e, &o);
    else if (!strcmp(cmd, "listen")) rc = cmd_listen(&e, &o);
    else if (!strcmp(cmd, "rooms") || !strcmp(cmd, "sockets")) {
        store_txn *t;
        rc = store_begin(e.st, 0, &t);
        if (rc) rc = die(1, "cannot read the store: %s", store_strerror(rc));
        else {
            rc = cmd[0] == 'r' ? cmd_rooms(&e, t, &o) : cmd_sockets(&e, t, &o);
            store_abort(t);
        }
    } else {
        rc = cmd_write(&e, cmd, &o);
    }
    server_close(&e);
    free(o.args);
    return rc;
}

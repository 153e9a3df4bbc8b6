/* sioctl/local.c: the commands on this node's store (see sioctl.h). */
#include "proto/json.h"
#include "sioctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/sio_parser.h"
#include "server/metrics.h"
#include "server/reader.h"
#include "server/rooms.h"
#include "store/inbox.h"

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
    /* a socket's private room (its own id) is shown only with --all */
    if (!c->all && rooms_is_own(c->t, room, len)) return 0;
    cJSON *members = cJSON_CreateArray();
    store_room_members(c->t, c->nsp, room, len, 0, add_member, members);
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

static int rooms_in(server *e, store_txn *t, opts *o) {
    const char *nsp = o->tg.nsp ? o->tg.nsp : "/";
    if (!cfg_nsp_find(&e->cfg, nsp)) return die(EXIT_USAGE, "unknown namespace '%s'", nsp);
    rooms_ctx c = {t, nsp, o->all, o->json, cJSON_CreateArray()};
    int rc = store_room_each(t, nsp, room_cb, &c);
    if (!rc && o->json) print_json(c.arr);
    cJSON_Delete(c.arr);
    return rc ? die(EXIT_FAIL, "reading rooms failed: %s", store_strerror(rc)) : 0;
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
    if ((c->nsp && strcmp(c->nsp, s->nsp)) || s->detached_ms) return 0; /* connected ones only */
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
        cJSON *d = s->data_len ? json_parse(s->data, s->data_len) : NULL;
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

static int sockets_in(server *e, store_txn *t, opts *o) {
    sockets_ctx c = {t, NULL, o->json, cJSON_CreateArray()};
    int rc;
    char err[512] = "";
    if (o->room || o->tg.nsp) {
        actions_target tg = {.nsp = o->tg.nsp, .everyone = 1}; /* sockets takes --nsp and --room only */
        if (o->room) tg.to[tg.nto++] = o->room;
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
    long long n;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "ack") || !json_integer(id, &n) || n != a->id ||
        !cJSON_IsString(sock))
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(a->answers, sock->valuestring)) return 0;
    cJSON *args = cJSON_DetachItemFromObject(ev, "args");
    cJSON_AddItemToObject(a->answers, sock->valuestring, args ? args : cJSON_CreateArray());
    return ++a->got >= a->want;
}

int cmd_emit(server *e, opts *o) {
    if (o->nargs < 1) return die(EXIT_USAGE, "emit needs an EVENT name");
    cJSON *args = args_array(o, 1);
    if (!args) return EXIT_USAGE;
    o->tg.everyone = o->all;
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) { cJSON_Delete(args); return store_failed(rc, "cannot write the store"); }
    long long ack = -1;
    if (o->want_ack && (rc = actions_next_ack_id(t, &ack))) { store_abort(t); cJSON_Delete(args); return op_failed(rc, ""); }
    uint64_t seq = 0, head = 0;
    size_t count = 0;
    char err[512] = "";
    store_inbox_bounds(t, NULL, &head);
    rc = actions_emit(e, t, &o->tg, o->args[0], args, ack, &seq, &count, err, sizeof err);
    cJSON_Delete(args);
    if (rc) { store_abort(t); return op_failed(rc, err); }
    if ((rc = store_commit(t))) return store_failed(rc, "commit failed");
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
            char *s = json_print(it);
            printf("%s\t%s\n", it->string, s);
            free(s);
        }
    }
    cJSON_Delete(a.answers);
    if (timed_out)
        return die(EXIT_TIMEOUT, "timeout: %zu of %zu client(s) acknowledged within %ld ms", a.got, a.want, o->timeout_ms);
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

int cmd_listen(server *e, opts *o) {
    if (o->tg.nsp && !cfg_nsp_find(&e->cfg, o->tg.nsp)) return die(EXIT_USAGE, "unknown namespace '%s'", o->tg.nsp);
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
    if (rc) return die(EXIT_FAIL, "cannot read the store: %s", store_strerror(rc));
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

int cmd_write(server *e, opts *o) {
    const char *cmd = o->cmd;
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return store_failed(rc, "cannot write the store");
    uint64_t seq = 0;
    size_t count = 0;
    char err[512] = "";
    cJSON *args = NULL;
    if (!strcmp(cmd, "join") || !strcmp(cmd, "leave")) {
        o->tg.everyone = o->all;
        rc = actions_join(e, t, &o->tg, (const char *const *)o->args, (size_t)o->nargs, cmd[0] == 'l',
                      &count, err, sizeof err);
    } else if (!strcmp(cmd, "disconnect")) {
        if (o->nargs) { store_abort(t); return die(EXIT_USAGE, "disconnect takes no positional argument"); }
        o->tg.everyone = o->all;
        rc = actions_disconnect(e, t, &o->tg, o->close, &seq, &count, err, sizeof err);
    } else if (!strcmp(cmd, "ack")) {
        long long id = o->ack_id;
        const char *env = getenv("SIO_ACK_ID");
        long x;
        if (id < 0 && env && util_parse_long(env, 0, 2147483647L, &x) == 0) id = x;
        if (id < 0) { store_abort(t); return die(EXIT_USAGE, "ack needs --id N (or SIO_ACK_ID, set in handlers of events that want an ack)"); }
        if (!(args = args_array(o, 0))) { store_abort(t); return EXIT_USAGE; }
        /* a server_event handler has no socket: it answers a serverSideEmit */
        const char *type = getenv("SIO_TYPE");
        if (o->server_side || (!o->tg.self && type && !strcmp(type, "serverSideEmit")))
            rc = actions_server_ack(t, id, args, err, sizeof err);
        else
            rc = actions_ack(t, o->tg.self, id, args, &seq, err, sizeof err);
        count = 1;
    } else { /* send */
        if (o->nargs != 1) { store_abort(t); return die(EXIT_USAGE, "send needs --sid SID and one DATA argument"); }
        if (!(args = actions_parse_arg(o->args[0], err, sizeof err))) { store_abort(t); return die(EXIT_USAGE, "%s", err); }
        rc = actions_send(t, o->sid, args, &seq, err, sizeof err);
        count = 1;
    }
    cJSON_Delete(args);
    if (rc) { store_abort(t); return op_failed(rc, err); }
    if ((rc = store_commit(t))) return store_failed(rc, "commit failed");
    server_notify(e, seq);
    if (o->json) printf("{\"sockets\":%zu}\n", count);
    else if (count == 0) fprintf(stderr, "sioctl: no socket matched\n");
    return 0;
}

/* ---- reading commands ------------------------------------------------------ */

/* Runs fn in a read transaction. */
static int in_read(server *srv, opts *o, int (*fn)(server *, store_txn *, opts *)) {
    store_txn *t;
    int rc = store_begin(srv->st, 0, &t);
    if (rc) return die(EXIT_FAIL, "cannot read the store: %s", store_strerror(rc));
    rc = fn(srv, t, o);
    store_abort(t);
    return rc;
}

int cmd_rooms(server *srv, opts *o) { return in_read(srv, o, rooms_in); }
int cmd_sockets(server *srv, opts *o) { return in_read(srv, o, sockets_in); }

/* ---- status -------------------------------------------------------------------------- */

static void print_cluster(const cJSON *cl) {
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(cl, "state");
    if (!cJSON_IsString(state)) {
        printf("cluster     off (no redis_url)\n");
        return;
    }
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(cl, "uid"), *url = cJSON_GetObjectItemCaseSensitive(cl, "url");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cl, "servers"), *err = cJSON_GetObjectItemCaseSensitive(cl, "error");
    if (!strcmp(state->valuestring, "up"))
        printf("cluster     in the cluster as server %s, %d server(s), %s\n",
               cJSON_IsString(uid) ? uid->valuestring : "?", cJSON_IsNumber(n) ? n->valueint : 0,
               cJSON_IsString(url) ? url->valuestring : "");
    else
        printf("cluster     NOT in the cluster (%s): %s\n", cJSON_IsString(url) ? url->valuestring : "",
               cJSON_IsString(err) ? err->valuestring : "its bridge is down");
}

/* A JSON number member (0 when missing). */
static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Bytes in MB, for people. */
static double mb(double bytes) { return bytes / (1024.0 * 1024.0); }

/* One screen: what runs, who is connected, how far the logs and readers
 * are, how full the store is, and the config in force. */
static void print_status(const server *srv, const cJSON *s) {
    const cJSON *it, *ses = cJSON_GetObjectItemCaseSensitive(s, "sessions");
    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(s, "log"), *in = cJSON_GetObjectItemCaseSensitive(s, "inbox");
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(s, "rooms"), *st = cJSON_GetObjectItemCaseSensitive(s, "store");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(s, "settings");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(s, "stated");
    printf("state       %s (stated %s", srv->dir,
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sd, "running")) ? "running" : "NOT running");
    if (num(sd, "pid") > 0) printf(", pid %.0f", num(sd, "pid"));
    printf(")\nconfig      %s\n", cJSON_GetObjectItemCaseSensitive(s, "config")->valuestring);
    printf("processes  ");
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "processes"))
        printf("%s %s %d", n++ ? "," : "", cJSON_GetObjectItemCaseSensitive(it, "program")->valuestring,
               (int)num(it, "pid"));
    printf("%s\n", n ? "" : " (none counted)");
    printf("sessions    %.0f polling, %.0f websocket\n", num(ses, "polling"), num(ses, "websocket"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "namespaces"))
        printf("sockets     %s: %d (%.0f rooms)\n", it->string, it->valueint, num(rooms, it->string));
    if (num(s, "waiting") > 0)
        printf("sockets     %.0f waiting for their client (connection state recovery)\n", num(s, "waiting"));
    printf("packet log  records %.0f..%.0f, %.0f bytes\ninbox       records %.0f..%.0f\n", num(lg, "first"),
           num(lg, "head"), num(lg, "bytes"), num(in, "first"), num(in, "head"));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(s, "handler_queue");
    if (cJSON_IsNumber(q)) printf("handlers    %.0f inbox records not read yet\n", q->valuedouble);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "readers"))
        printf("reader      %s: %s at %.0f (%.0f behind)%s\n", cJSON_GetObjectItemCaseSensitive(it, "name")->valuestring,
               cJSON_GetObjectItemCaseSensitive(it, "log")->valuestring, num(it, "position"), num(it, "behind"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "alive")) ? "" : ", its process is gone");
    double map = num(st, "map_bytes"), used = num(st, "used_bytes");
    printf("store       %.1f MB of %.0f MB used (%.0f%%)\n", mb(used), mb(map), map > 0 ? 100.0 * used / map : 0);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "counters");
    if (cJSON_IsObject(c)) {
        const cJSON *hs = cJSON_GetObjectItemCaseSensitive(c, "handshakes");
        const cJSON *pi = cJSON_GetObjectItemCaseSensitive(c, "packets_in"), *po = cJSON_GetObjectItemCaseSensitive(c, "packets_out");
        printf("since start %.0f handshakes, %.0f packets in, %.0f out, %.0f broadcasts, %.0f handler failures\n",
               num(hs, "polling") + num(hs, "websocket"), num(pi, "polling") + num(pi, "websocket"),
               num(po, "polling") + num(po, "websocket"), num(c, "broadcasts"), num(c, "handler_failures"));
    }
    printf("settings    path %s, transports %s, ping %.0f/%.0f ms, durability %s%s%s\n",
           cJSON_GetObjectItemCaseSensitive(set, "path")->valuestring,
           cJSON_GetObjectItemCaseSensitive(set, "transports")->valuestring, num(set, "ping_interval"),
           num(set, "ping_timeout"), cJSON_GetObjectItemCaseSensitive(set, "durability")->valuestring,
           srv->cfg.metrics_path ? ", metrics at " : "", srv->cfg.metrics_path ? srv->cfg.metrics_path : "");
    print_cluster(cJSON_GetObjectItemCaseSensitive(s, "cluster"));
}

/* status and metrics: one snapshot (server/metrics.h), three renderings. */
static int snapshot(server *srv, opts *o, int prometheus) {
    metrics_snap m;
    int rc = metrics_collect(srv, &m);
    if (rc) {
        metrics_free(&m);
        return die(EXIT_FAIL, "cannot read the store: %s", store_strerror(rc));
    }
    for (int i = 0; i < m.nprocs; i++) /* this sioctl is no part of the stack */
        if (m.procs[i].pid == getpid()) m.procs[i--] = m.procs[--m.nprocs];
    if (prometheus) {
        buf b = BUF_INIT;
        metrics_text(srv, &m, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    } else {
        cJSON *s = metrics_json(srv, &m);
        if (o->json) print_json(s);
        else print_status(srv, s);
        cJSON_Delete(s);
    }
    metrics_free(&m);
    return 0;
}

int cmd_status(server *srv, opts *o) { return snapshot(srv, o, 0); }
int cmd_metrics(server *srv, opts *o) { return snapshot(srv, o, 1); }


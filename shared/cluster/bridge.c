/* bridge: this node's link to the Redis cluster (see bridge.h).
 *
 * One thread, one poll() loop over: the notify eventfd (new records in the
 * packet log or the inbox), a stop eventfd, and two Redis connections in
 * non-blocking mode: `rsub` (PSUBSCRIBE PREFIX#*, SUBSCRIBE the request
 * channel of each namespace) and `rpub` (PUBLISH, pipelined; its replies
 * are integers, but for the array of PUBSUB NUMSUB: the server count). */
#include "cluster/bridge.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include "base/log.h"
#include "base/util.h"
#include "cluster/rconn.h"
#include "cluster/wire.h"
#include "proto/json.h"
#include "proto/mpack.h"
#include "proto/sio_parser.h"
#include "server/actions.h"
#include "server/reader.h"
#include "server/rooms.h"
#include "server/socketio.h"
#include "store/inbox.h"

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define STATUS_EVERY_MS 2000
#define SAVE_EVERY_MS 100
#define SCAN_MAX_RECORDS 4096         /* per pass over a log */
#define PUB_MAX_PENDING (16u << 20)   /* bytes waiting for Redis before publishes are dropped */
#define REQUEST_TIMEOUT_MS 5000       /* the adapter's requestsTimeout */
#define MAX_PENDING 65536             /* acks waited for at once */
#define MAX_NSPS 4096                 /* namespaces whose requests we answer */

enum { DOWN = 0, UP = 1 };

/* A local ack id waited for on behalf of another server. */
typedef struct pending {
    long long id;
    int kind;                 /* WIRE_BROADCAST (client acks) or WIRE_SERVER_SIDE_EMIT */
    char request_id[64];
    char nsp[SIO_NSP_MAX + 1];
    int64_t deadline;
} pending;

struct bridge {
    server *srv;
    redis_url url;
    char url_text[320];
    char uid[16];
    pthread_t th;
    int stop_fd;
    volatile int stopping;
    notify_sub *sub;
    redisContext *rsub, *rpub;
    int state;
    int64_t since, retry_at, backoff_ms, status_at;
    char error[256];          /* the last failure, logged once */
    long servers;             /* PUBSUB NUMSUB of the "/" request channel */
    /* positions in the two logs */
    reader_id log_id, in_id;
    uint64_t log_cursor, log_saved, in_cursor, in_saved;
    int64_t saved_at;
    /* namespaces whose request channel rsub is subscribed to */
    char (*nsps)[SIO_NSP_MAX + 1];
    size_t nnsp, capnsp;
    pending *pend;
    size_t npend, cappend;
    uint64_t published, dropped, received;
};

/* ---- state and status ---------------------------------------------------------------- */

/* Logs a failure once per distinct message. */
static void failed(bridge *b, const char *what, const char *why) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    if (strcmp(msg, b->error)) log_warn("cluster: %s (%s); local delivery goes on, retrying", msg, b->url_text);
    snprintf(b->error, sizeof b->error, "%s", msg);
}

/* Writes the bridge's state into the store for `sioctl status`. */
static void write_status(bridge *b) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "state", b->state == UP ? "up" : "down");
    cJSON_AddStringToObject(o, "uid", b->uid);
    cJSON_AddStringToObject(o, "url", b->url_text);
    cJSON_AddStringToObject(o, "prefix", b->srv->cfg.redis_prefix);
    cJSON_AddNumberToObject(o, "servers", b->state == UP ? (double)b->servers : 0);
    cJSON_AddNumberToObject(o, "since", (double)b->since);
    cJSON_AddNumberToObject(o, "updated", (double)util_now_ms());
    cJSON_AddNumberToObject(o, "published", (double)b->published);
    cJSON_AddNumberToObject(o, "received", (double)b->received);
    cJSON_AddNumberToObject(o, "dropped", (double)b->dropped);
    if (b->state != UP && b->error[0]) cJSON_AddStringToObject(o, "error", b->error);
    char *txt = json_print(o);
    cJSON_Delete(o);
    store_txn *t;
    if (txt && store_begin(b->srv->st, 1, &t) == 0) {
        int rc = store_meta_put(t, "cluster", txt, strlen(txt));
        const char *u = b->srv->cfg.redis_url;
        if (!rc) rc = store_meta_put(t, "cluster_url", u, strlen(u));
        if (!rc) store_commit(t);
        else store_abort(t);
    }
    free(txt);
}

/* ---- the publish pipeline ------------------------------------------------------------ */

/* Queues a PUBLISH on rpub; 0, or -1 when Redis is down or too far behind. */
static int publish(bridge *b, const char *ch, size_t chlen, const void *msg, size_t len) {
    if (b->state != UP || sdslen(b->rpub->obuf) > PUB_MAX_PENDING) {
        b->dropped++;
        return -1;
    }
    if (redisAppendCommand(b->rpub, "PUBLISH %b %b", ch, chlen, msg, len) != REDIS_OK) {
        b->dropped++;
        return -1;
    }
    b->published++;
    return 0;
}

/* A JSON response on the namespace's response channel (with our uid, which
 * the Node adapter ignores and `sioctl --cluster` reports). */
static void respond(bridge *b, const char *nsp, cJSON *resp) {
    cJSON_AddStringToObject(resp, "uid", b->uid);
    char *txt = json_print(resp);
    cJSON_Delete(resp);
    buf ch = BUF_INIT;
    if (txt && !wire_channel(&ch, b->srv->cfg.redis_prefix, WIRE_CH_RESPONSE, nsp, NULL))
        publish(b, ch.data, ch.len, txt, strlen(txt));
    free(txt);
    buf_free(&ch);
}

static cJSON *response_for(const cJSON *req) {
    cJSON *o = cJSON_CreateObject();
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "requestId");
    if (o && id) cJSON_AddItemToObject(o, "requestId", cJSON_Duplicate(id, 1));
    return o;
}

/* ---- connecting ------------------------------------------------------------------------ */

static void disconnect(bridge *b, const char *reason) {
    char why[256];
    snprintf(why, sizeof why, "%s", reason); /* reason may be a context's errstr, freed here */
    if (b->rsub) redisFree(b->rsub);
    if (b->rpub) redisFree(b->rpub);
    b->rsub = b->rpub = NULL;
    if (b->state == UP) {
        log_warn("cluster: lost Redis at %s (%s): this node is out of the cluster until it is back; local delivery goes on",
                 b->url_text, why);
        snprintf(b->error, sizeof b->error, "%s", why);
        b->state = DOWN;
        b->since = util_now_ms();
        b->backoff_ms = BACKOFF_MIN_MS;
        write_status(b);
    }
    b->retry_at = util_now_ms() + b->backoff_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
}

/* SUBSCRIBEs the request channel of nsp on rsub (written by the loop), and
 * our own response channel there, by which other servers can list us. */
static int subscribe_nsp(bridge *b, const char *nsp) {
    buf req = BUF_INIT, own = BUF_INIT;
    int rc = wire_channel(&req, b->srv->cfg.redis_prefix, WIRE_CH_REQUEST, nsp, NULL);
    if (!rc) rc = wire_channel(&own, b->srv->cfg.redis_prefix, WIRE_CH_RESPONSE, nsp, b->uid);
    if (!rc && redisAppendCommand(b->rsub, "SUBSCRIBE %b %b", req.data, req.len, own.data, own.len) != REDIS_OK)
        rc = -EIO;
    buf_free(&req);
    buf_free(&own);
    return rc;
}

/* Remembers a namespace (and subscribes to its requests when up). */
static void learn_nsp(bridge *b, const char *nsp) {
    for (size_t i = 0; i < b->nnsp; i++)
        if (!strcmp(b->nsps[i], nsp)) return;
    if (b->nnsp >= MAX_NSPS || strlen(nsp) > SIO_NSP_MAX ||
        util_grow(&b->nsps, &b->capnsp, b->nnsp, sizeof *b->nsps, 16))
        return;
    strcpy(b->nsps[b->nnsp++], nsp);
    if (b->state == UP) subscribe_nsp(b, nsp);
}

static void try_connect(bridge *b) {
    char err[256];
    if (rconn_open(&b->url, CONNECT_TIMEOUT_MS, &b->rsub, err, sizeof err) ||
        rconn_open(&b->url, CONNECT_TIMEOUT_MS, &b->rpub, err, sizeof err)) {
        if (b->rsub) redisFree(b->rsub);
        b->rsub = NULL;
        failed(b, "cannot reach Redis", err);
        disconnect(b, err);
        return;
    }
    rconn_nonblock(b->rsub);
    rconn_nonblock(b->rpub);
    buf pat = BUF_INIT;
    buf_printf(&pat, "%s#*", b->srv->cfg.redis_prefix);
    redisAppendCommand(b->rsub, "PSUBSCRIBE %b", pat.data, pat.len);
    buf_free(&pat);
    b->state = UP;
    for (size_t i = 0; i < b->nnsp; i++) subscribe_nsp(b, b->nsps[i]);
    b->since = util_now_ms();
    b->backoff_ms = BACKOFF_MIN_MS;
    b->error[0] = 0;
    b->status_at = 0; /* count the servers now */
    log_info("cluster: connected to Redis at %s as server %s (prefix %s)", b->url_text, b->uid,
             b->srv->cfg.redis_prefix);
}

/* ---- outbound: the packet log ----------------------------------------------------------- */

typedef struct out_scan {
    bridge *b;
    buf msg, ch;
} out_scan;

static int out_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    out_scan *o = arg;
    bridge *b = o->b;
    logrec r;
    b->log_cursor = seq;
    if (logrec_parse(data, len, &r) || r.kind != LOGREC_BROADCAST ||
        (r.flags & (LOGREC_F_LOCAL | LOGREC_F_REMOTE)))
        return 0;
    buf_reset(&o->msg);
    buf_reset(&o->ch);
    if (b->state != UP) {
        b->dropped++;
        return 0;
    }
    if (wire_broadcast_encode(&o->msg, &o->ch, b->srv->cfg.redis_prefix, b->uid, &r) == 0)
        publish(b, o->ch.data, o->ch.len, o->msg.data, o->msg.len);
    return 0;
}

/* Publishes what the log gained since the cursor (a bounded pass). */
static int scan_log(bridge *b) {
    store_txn *t;
    if (store_begin(b->srv->st, 0, &t)) return 0;
    uint64_t first = 0, head = 0;
    store_log_bounds(t, &first, &head);
    if (b->log_cursor + 1 < first) b->log_cursor = first - 1; /* trimmed meanwhile */
    uint64_t until = head - b->log_cursor > SCAN_MAX_RECORDS ? b->log_cursor + SCAN_MAX_RECORDS : head;
    out_scan o = {b, BUF_INIT, BUF_INIT};
    if (until > b->log_cursor) store_log_scan(t, b->log_cursor, until, out_cb, &o);
    store_abort(t);
    buf_free(&o.msg);
    buf_free(&o.ch);
    return until < head; /* more to do */
}

/* ---- inbound broadcasts ------------------------------------------------------------------ */

/* 1 when someone on this node is in room (of nsp). */
static int member_cb(void *arg, const char *id, uint64_t js) {
    (void)arg, (void)id, (void)js;
    return 1;
}

static int room_here(store_txn *t, const char *nsp, const char *room) {
    return store_room_members(t, nsp, room, strlen(room), 0, member_cb, NULL) == 1;
}

/* Appends one broadcast of another server to the log (in t). */
static int apply_broadcast(bridge *b, store_txn *t, const char *ch, size_t chlen,
                           const wire_bcast *w, uint64_t *seq) {
    if (!strcmp(w->uid, b->uid) || w->local || !cfg_nsp_find(&b->srv->cfg, w->nsp)) return 0;
    char room[STORE_ROOM_MAX + 1];
    int where = wire_broadcast_room(b->srv->cfg.redis_prefix, w->nsp, ch, chlen, room, sizeof room);
    if (!where || (where == 2 && !room_here(t, w->nsp, room))) return 0;
    sio_packet p = {.type = SIO_EVENT, .id = -1, .data = w->data};
    snprintf(p.nsp, sizeof p.nsp, "%s", w->nsp);
    bcast to = {w->nsp, w->rooms, w->nrooms, w->except, w->nexcept,
                LOGREC_F_REMOTE | (w->volatile_ ? LOGREC_F_VOLATILE : 0)};
    int rc = socketio_emit(b->srv, t, &to, &p, seq);
    b->received++;
    return rc == -EINVAL || rc == -E2BIG ? 0 : rc; /* a packet we cannot encode: skipped */
}

/* A batch of broadcasts read from rsub, applied in one transaction. */
typedef struct inbatch {
    redisReply **msgs;
    size_t n, cap;
} inbatch;

static void apply_batch(bridge *b, inbatch *in) {
    if (!in->n) return;
    store_txn *t;
    uint64_t seq = 0;
    int rc = store_begin(b->srv->st, 1, &t);
    for (size_t i = 0; !rc && i < in->n; i++) {
        redisReply *m = in->msgs[i];
        wire_bcast w;
        if (wire_broadcast_decode(m->element[3]->str, m->element[3]->len, &w)) continue;
        rc = apply_broadcast(b, t, m->element[2]->str, m->element[2]->len, &w, &seq);
        wire_bcast_clear(&w);
    }
    if (!rc) rc = store_commit(t);
    else if (t) store_abort(t);
    if (rc) log_error("cluster: cannot store %zu broadcast(s) from other servers: %s", in->n,
                      store_strerror(rc));
    else if (seq) notify_sub_publish(b->sub, seq); /* through our own hub connection */
    for (size_t i = 0; i < in->n; i++) freeReplyObject(in->msgs[i]);
    in->n = 0;
}

/* ---- pending acks ------------------------------------------------------------------------ */

static int pend_add(bridge *b, long long id, int kind, const cJSON *request_id, const char *nsp,
                    int64_t timeout_ms) {
    if (b->npend >= MAX_PENDING || !cJSON_IsString(request_id) ||
        util_grow(&b->pend, &b->cappend, b->npend, sizeof *b->pend, 64))
        return -1;
    pending *p = &b->pend[b->npend++];
    p->id = id;
    p->kind = kind;
    snprintf(p->request_id, sizeof p->request_id, "%s", request_id->valuestring);
    snprintf(p->nsp, sizeof p->nsp, "%s", nsp);
    p->deadline = util_now_ms() + timeout_ms;
    return 0;
}

static pending *pend_find(bridge *b, long long id, int kind) {
    for (size_t i = 0; i < b->npend; i++)
        if (b->pend[i].id == id && b->pend[i].kind == kind) return &b->pend[i];
    return NULL;
}

static void pend_del(bridge *b, pending *p) { *p = b->pend[--b->npend]; }

static int64_t pend_expire(bridge *b, int64_t now) {
    int64_t next = now + 1000;
    for (size_t i = 0; i < b->npend;) {
        if (b->pend[i].deadline <= now) {
            pend_del(b, &b->pend[i]);
            continue;
        }
        if (b->pend[i].deadline < next) next = b->pend[i].deadline;
        i++;
    }
    return next;
}


/* ---- requests of other servers ------------------------------------------------------------ */

/* The sockets a request's opts ({rooms, except}) reach, as actions see
 * them.  -EINVAL when the rooms are malformed or too many. */
static int opts_target(const char *nsp, const cJSON *opts, actions_target *to) {
    const char **rooms, **except;
    size_t nr, ne;
    if (wire_opts(opts, &rooms, &nr, &except, &ne)) return -EINVAL;
    int rc = nr > ACTIONS_MAX_TARGETS || ne > ACTIONS_MAX_TARGETS ? -EINVAL : 0;
    memset(to, 0, sizeof *to);
    to->nsp = nsp;
    to->everyone = 1;
    for (size_t i = 0; !rc && i < nr; i++) to->to[to->nto++] = rooms[i];
    for (size_t i = 0; !rc && i < ne; i++) to->except[to->nexcept++] = except[i];
    free(rooms);
    free(except);
    return rc;
}

/* `new Date() + ""` of JavaScript, in UTC. */
static void js_date(int64_t ms, char *out, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
}

/* socket.handshake as Node builds it, from the session's stored request. */
static cJSON *node_handshake(store_txn *t, const char *sid, cJSON *auth) {
    const char *j;
    size_t n;
    cJSON *hs = store_handshake_get(t, sid, &j, &n) == 0 ? json_parse(j, n) : NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *headers = cJSON_DetachItemFromObject(hs, "headers");
    cJSON *time = cJSON_GetObjectItemCaseSensitive(hs, "time");
    long long ms = util_now_ms();
    json_integer(time, &ms);
    char date[96];
    js_date(ms, date, sizeof date);
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(hs, "address");
    cJSON_AddItemToObject(o, "headers", headers ? headers : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "time", date);
    cJSON_AddStringToObject(o, "address", cJSON_IsString(addr) ? addr->valuestring : "");
    cJSON_AddBoolToObject(o, "xdomain", cJSON_GetObjectItemCaseSensitive(headers, "origin") != NULL);
    cJSON_AddBoolToObject(o, "secure", 0);
    cJSON_AddNumberToObject(o, "issued", (double)ms);
    cJSON *url = cJSON_DetachItemFromObject(hs, "url"), *query = cJSON_DetachItemFromObject(hs, "query");
    cJSON_AddItemToObject(o, "url", url ? url : cJSON_CreateString(""));
    cJSON_AddItemToObject(o, "query", query ? query : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "auth", auth ? auth : cJSON_CreateObject());
    cJSON_Delete(hs);
    return o;
}

typedef struct fetch_ctx {
    store_txn *t;
    cJSON *out;    /* array */
    int details;   /* REMOTE_FETCH: {id, handshake, rooms, data}; else ids */
} fetch_ctx;

static int room_name_cb(void *arg, const char *room, size_t len) {
    char name[STORE_ROOM_MAX + 1];
    memcpy(name, room, len);
    name[len] = 0;
    cJSON_AddItemToArray(arg, cJSON_CreateString(name));
    return 0;
}

static int fetch_cb(void *arg, const store_socket *s) {
    fetch_ctx *f = arg;
    if (!f->details) {
        cJSON_AddItemToArray(f->out, cJSON_CreateString(s->id));
        return 0;
    }
    cJSON *d = s->data_len ? json_parse(s->data, s->data_len) : NULL;
    cJSON *o = cJSON_CreateObject(), *rooms = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddItemToObject(o, "handshake", node_handshake(f->t, s->sid, cJSON_DetachItemFromObject(d, "auth")));
    store_socket_rooms(f->t, s->id, room_name_cb, rooms);
    cJSON_AddItemToObject(o, "rooms", rooms);
    cJSON *data = cJSON_DetachItemFromObject(d, "data");
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateObject());
    cJSON_Delete(d);
    cJSON_AddItemToArray(f->out, o);
    return 0;
}

static int all_rooms_cb(void *arg, const char *room, size_t len, size_t members) {
    (void)members;
    return room_name_cb(arg, room, len);
}

/* SOCKETS, REMOTE_FETCH and ALL_ROOMS: answered from a read transaction. */
static void answer_query(bridge *b, const char *nsp, const cJSON *req, int type) {
    store_txn *t;
    if (store_begin(b->srv->st, 0, &t)) return;
    cJSON *resp = response_for(req), *arr = cJSON_CreateArray();
    int rc = 0;
    if (type == WIRE_ALL_ROOMS) {
        rc = store_room_each(t, nsp, all_rooms_cb, arr);
    } else {
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(req, "opts");
        cJSON *legacy = NULL;
        if (type == WIRE_SOCKETS) { /* {rooms} at the top */
            legacy = cJSON_CreateObject();
            cJSON_AddItemToObject(legacy, "rooms", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "rooms"), 1));
            opts = legacy;
        }
        const char **rooms = NULL, **except = NULL;
        size_t nr = 0, ne = 0;
        rc = wire_opts(opts, &rooms, &nr, &except, &ne);
        if (!rc) {
            bcast to = {nsp, rooms, nr, except, ne, 0};
            fetch_ctx f = {t, arr, type == WIRE_REMOTE_FETCH};
            rc = rooms_sockets(t, &to, 0, fetch_cb, &f);
        }
        free(rooms);
        free(except);
        cJSON_Delete(legacy);
    }
    store_abort(t);
    if (rc) {
        cJSON_Delete(resp);
        cJSON_Delete(arr);
        return;
    }
    cJSON_AddItemToObject(resp, type == WIRE_ALL_ROOMS ? "rooms" : "sockets", arr);
    respond(b, nsp, resp);
}

/* Runs fn in a write transaction and wakes readers; returns what fn did. */
static int in_write(bridge *b, int (*fn)(bridge *, store_txn *, void *, uint64_t *), void *arg) {
    store_txn *t;
    uint64_t seq = 0;
    int rc = store_begin(b->srv->st, 1, &t);
    if (rc) return rc;
    rc = fn(b, t, arg, &seq);
    if (rc < 0) {
        store_abort(t);
        return rc;
    }
    int c = store_commit(t);
    if (c) return c;
    notify_sub_publish(b->sub, seq);
    return rc;
}

typedef struct act {
    const char *nsp;
    const cJSON *req;
    int type;
    long long ack;       /* BROADCAST / SERVER_SIDE_EMIT: the local ack id */
    size_t count;        /* BROADCAST: clients reached */
} act;

/* REMOTE_JOIN / LEAVE / DISCONNECT, by opts or (older adapters) by sid. */
static int do_remote(bridge *b, store_txn *t, void *arg, uint64_t *seq) {
    act *a = arg;
    char err[256];
    actions_target to;
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(a->req, "opts");
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(a->req, "sid");
    if (opts) {
        if (opts_target(a->nsp, opts, &to)) return 0;
    } else if (cJSON_IsString(sid) && util_is_id(sid->valuestring, strlen(sid->valuestring))) {
        store_socket s;
        if (store_socket_get(t, sid->valuestring, &s) || strcmp(s.nsp, a->nsp)) return 0;
        memset(&to, 0, sizeof to);
        to.nsp = a->nsp;
        to.to[to.nto++] = sid->valuestring;
        a->count = 1; /* answered: a legacy request waits for its response */
    } else {
        return 0;
    }
    if (a->type == WIRE_REMOTE_DISCONNECT) {
        int close = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->req, "close"));
        return actions_disconnect(b->srv, t, &to, close, seq, NULL, err, sizeof err) < 0 ? -EIO : 0;
    }
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(a->req, opts ? "rooms" : "room");
    const char *rooms[ACTIONS_MAX_TARGETS];
    size_t nr = 0;
    const cJSON *it;
    if (cJSON_IsString(rl)) rooms[nr++] = rl->valuestring;
    else if (cJSON_IsArray(rl)) cJSON_ArrayForEach(it, rl) if (cJSON_IsString(it) && nr < ACTIONS_MAX_TARGETS) rooms[nr++] = it->valuestring;
    if (!nr) return 0;
    int rc = actions_join(b->srv, t, &to, rooms, nr, a->type == WIRE_REMOTE_LEAVE, NULL, err, sizeof err);
    return rc < 0 ? rc : 0;
}

/* SERVER_SIDE_EMIT: an inbox record for the namespace's handlers. */
static int do_server_side(bridge *b, store_txn *t, void *arg, uint64_t *seq) {
    (void)b, (void)seq; /* in_write's callback: the record is for the inbox */
    act *a = arg;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(a->req, "data");
    const cJSON *ev = cJSON_GetArrayItem(data, 0);
    if (!cJSON_IsArray(data) || !cJSON_IsString(ev)) return 0;
    cJSON *rec = cJSON_CreateObject(), *args = cJSON_Duplicate(data, 1);
    if (!rec || !args) {
        cJSON_Delete(rec);
        cJSON_Delete(args);
        return -ENOMEM;
    }
    cJSON_DeleteItemFromArray(args, 0);
    cJSON_AddStringToObject(rec, "type", "serverSideEmit");
    cJSON_AddStringToObject(rec, "nsp", a->nsp);
    cJSON_AddStringToObject(rec, "event", ev->valuestring);
    cJSON_AddItemToObject(rec, "args", args);
    a->ack = -1;
    if (cJSON_GetObjectItemCaseSensitive(a->req, "requestId")) {
        int rc = actions_next_ack_id(t, &a->ack);
        if (rc) {
            cJSON_Delete(rec);
            return rc;
        }
        cJSON_AddNumberToObject(rec, "ack", (double)a->ack);
    }
    return inbox_append(t, rec, NULL);
}

/* BROADCAST (with acks): emit to our clients with a local ack id. */
static int do_broadcast(bridge *b, store_txn *t, void *arg, uint64_t *seq) {
    act *a = arg;
    const cJSON *packet = cJSON_GetObjectItemCaseSensitive(a->req, "packet");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(packet, "data");
    const cJSON *ev = cJSON_GetArrayItem(data, 0);
    actions_target to;
    if (!cJSON_IsString(ev) || opts_target(a->nsp, cJSON_GetObjectItemCaseSensitive(a->req, "opts"), &to))
        return 0;
    cJSON *args = cJSON_Duplicate(data, 1);
    if (!args) return -ENOMEM;
    cJSON_DeleteItemFromArray(args, 0);
    char err[256];
    int rc = actions_next_ack_id(t, &a->ack);
    if (!rc) rc = actions_emit(b->srv, t, &to, ev->valuestring, args, a->ack, seq, &a->count, err, sizeof err);
    cJSON_Delete(args);
    if (rc == ACTIONS_EUSAGE) {
        a->ack = -1;
        return 0;
    }
    return rc;
}

static void handle_request(bridge *b, const char *nsp, const cJSON *req) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(req, "type");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(req, "uid");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(req, "requestId");
    if (!cJSON_IsNumber(type)) return;
    act a = {nsp, req, type->valueint, -1, 0};
    switch (a.type) {
    case WIRE_SOCKETS:
    case WIRE_ALL_ROOMS:
    case WIRE_REMOTE_FETCH:
        answer_query(b, nsp, req, a.type);
        break;
    case WIRE_REMOTE_JOIN:
    case WIRE_REMOTE_LEAVE:
    case WIRE_REMOTE_DISCONNECT:
        if (in_write(b, do_remote, &a) == 0 && a.count && rid) respond(b, nsp, response_for(req));
        break;
    case WIRE_SERVER_SIDE_EMIT:
        if (cJSON_IsString(uid) && !strcmp(uid->valuestring, b->uid)) break; /* our own */
        if (in_write(b, do_server_side, &a) == 0 && a.ack >= 0)
            pend_add(b, a.ack, WIRE_SERVER_SIDE_EMIT, rid, nsp, REQUEST_TIMEOUT_MS);
        break;
    case WIRE_BROADCAST: {
        if (in_write(b, do_broadcast, &a) || a.ack < 0) break;
        const cJSON *flags = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "opts"), "flags");
        const cJSON *tmo = cJSON_GetObjectItemCaseSensitive(flags, "timeout");
        long long timeout = REQUEST_TIMEOUT_MS;
        if (!json_integer(tmo, &timeout) || timeout <= 0) timeout = REQUEST_TIMEOUT_MS;
        pend_add(b, a.ack, WIRE_BROADCAST, rid, nsp, timeout);
        cJSON *resp = response_for(req);
        cJSON_AddNumberToObject(resp, "type", WIRE_BROADCAST_CLIENT_COUNT);
        cJSON_AddNumberToObject(resp, "clientCount", (double)a.count);
        respond(b, nsp, resp);
        break;
    }
    default:
        break;
    }
}

/* ---- the inbox: acks for other servers -------------------------------------------------- */

/* A client's ack of a broadcast another server asked for: BROADCAST_ACK
 * (msgpack) with the first argument. */
static void forward_ack(bridge *b, const pending *p, const cJSON *args) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "type", WIRE_BROADCAST_ACK);
    cJSON_AddStringToObject(o, "requestId", p->request_id);
    const cJSON *first = cJSON_GetArrayItem(args, 0);
    cJSON_AddItemToObject(o, "packet", first ? cJSON_Duplicate(first, 1) : cJSON_CreateNull());
    buf msg = BUF_INIT, ch = BUF_INIT;
    if (!mpack_encode(&msg, o) && !wire_channel(&ch, b->srv->cfg.redis_prefix, WIRE_CH_RESPONSE, p->nsp, NULL))
        publish(b, ch.data, ch.len, msg.data, msg.len);
    buf_free(&msg);
    buf_free(&ch);
    cJSON_Delete(o);
}

static int starts(const char *rec, size_t len, const char *prefix) {
    size_t l = strlen(prefix);
    return len >= l && !memcmp(rec, prefix, l);
}

static int in_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    bridge *b = arg;
    b->in_cursor = seq;
    const char *rec = data;
    int ack = starts(rec, len, "{\"type\":\"ack\""), sse = starts(rec, len, "{\"type\":\"serverSideAck\"");
    int conn = starts(rec, len, "{\"type\":\"connection\"");
    if (!ack && !sse && !conn) return 0;
    cJSON *o = json_parse(rec, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"), *nsp = cJSON_GetObjectItemCaseSensitive(o, "nsp");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args");
    long long idn;
    pending *p = json_integer(id, &idn) ? pend_find(b, idn, ack ? WIRE_BROADCAST : WIRE_SERVER_SIDE_EMIT) : NULL;
    if (conn && cJSON_IsString(nsp)) {
        learn_nsp(b, nsp->valuestring);
    } else if (p && ack) {
        forward_ack(b, p, args); /* more clients may answer the same id: kept until its deadline */
    } else if (p) {
        cJSON *resp = cJSON_CreateObject();
        cJSON_AddNumberToObject(resp, "type", WIRE_SERVER_SIDE_EMIT);
        cJSON_AddStringToObject(resp, "requestId", p->request_id);
        const cJSON *first = cJSON_GetArrayItem(args, 0);
        cJSON_AddItemToObject(resp, "data", first ? cJSON_Duplicate(first, 1) : cJSON_CreateNull());
        char pnsp[SIO_NSP_MAX + 1];
        snprintf(pnsp, sizeof pnsp, "%s", p->nsp);
        pend_del(b, p);
        respond(b, pnsp, resp);
    }
    cJSON_Delete(o);
    return 0;
}

static int scan_inbox(bridge *b) {
    store_txn *t;
    if (store_begin(b->srv->st, 0, &t)) return 0;
    uint64_t first = 0, head = 0;
    store_inbox_bounds(t, &first, &head);
    if (b->in_cursor + 1 < first) b->in_cursor = first - 1;
    uint64_t until = head - b->in_cursor > SCAN_MAX_RECORDS ? b->in_cursor + SCAN_MAX_RECORDS : head;
    if (until > b->in_cursor) store_inbox_scan(t, b->in_cursor, until, in_cb, b);
    store_abort(t);
    return until < head;
}

/* ---- reading Redis ---------------------------------------------------------------------- */

#define BATCH_MAX 1024 /* broadcasts applied in one transaction */

/* A message on a request channel (responses are for requesters, not us). */
static void on_message(bridge *b, const redisReply *ch, const redisReply *payload) {
    char nsp[SIO_NSP_MAX + 1];
    if (ch->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING ||
        wire_request_nsp(b->srv->cfg.redis_prefix, ch->str, ch->len, nsp, sizeof nsp) ||
        !cfg_nsp_find(&b->srv->cfg, nsp))
        return;
    cJSON *req = wire_decode(payload->str, payload->len);
    if (req) handle_request(b, nsp, req);
    cJSON_Delete(req);
}

/* Everything rsub has: broadcasts in batches, requests in order with them.
 * 0, or -1 when the connection failed. */
static int read_sub(bridge *b) {
    if (redisBufferRead(b->rsub) != REDIS_OK) return -1;
    inbatch in = {0};
    void *r;
    int rc = 0;
    while ((rc = redisGetReplyFromReader(b->rsub, &r)) == REDIS_OK && r) {
        redisReply *m = r;
        int pmsg = m->type == REDIS_REPLY_ARRAY && m->elements == 4 && m->element[0]->type == REDIS_REPLY_STRING &&
                   !strcmp(m->element[0]->str, "pmessage") && m->element[2]->type == REDIS_REPLY_STRING &&
                   m->element[3]->type == REDIS_REPLY_STRING;
        int msg = m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->type == REDIS_REPLY_STRING &&
                  !strcmp(m->element[0]->str, "message");
        if (pmsg && !util_grow(&in.msgs, &in.cap, in.n, sizeof *in.msgs, 64)) {
            in.msgs[in.n++] = m;
            if (in.n >= BATCH_MAX) apply_batch(b, &in);
            continue;
        }
        if (msg) {
            apply_batch(b, &in); /* keep the order of broadcasts and requests */
            on_message(b, m->element[1], m->element[2]);
        }
        freeReplyObject(m);
    }
    apply_batch(b, &in);
    free(in.msgs);
    return rc == REDIS_OK ? 0 : -1;
}

/* rpub's replies: integers for PUBLISH, [channel, count] for NUMSUB. */
static int read_pub(bridge *b) {
    if (redisBufferRead(b->rpub) != REDIS_OK) return -1;
    void *r;
    int rc;
    while ((rc = redisGetReplyFromReader(b->rpub, &r)) == REDIS_OK && r) {
        redisReply *m = r;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 2 && m->element[1]->type == REDIS_REPLY_INTEGER)
            b->servers = (long)m->element[1]->integer;
        else if (m->type == REDIS_REPLY_ERROR)
            failed(b, "Redis refused a command", m->str);
        freeReplyObject(m);
    }
    return rc == REDIS_OK ? 0 : -1;
}

/* Writes what the connections have queued; 0, or -1 on failure. */
static int flush(redisContext *c) {
    int done = 0;
    while (sdslen(c->obuf) && !done)
        if (redisBufferWrite(c, &done) != REDIS_OK) return -1;
        else if (!done) break; /* the socket is full: when POLLOUT */
    return 0;
}

/* ---- positions ---------------------------------------------------------------------------- */

static void save_positions(bridge *b, int force) {
    if (b->log_cursor == b->log_saved && b->in_cursor == b->in_saved) return;
    if (!force && util_now_ms() - b->saved_at < SAVE_EVERY_MS) return;
    store_txn *t;
    int rc = store_begin(b->srv->st, 1, &t);
    if (!rc) rc = reader_put(t, &b->log_id, b->log_cursor);
    if (!rc) rc = reader_put(t, &b->in_id, b->in_cursor);
    if (!rc) rc = store_commit(t);
    else if (t) store_abort(t);
    if (rc) {
        log_error("cluster: cannot save the bridge's positions: %s", store_strerror(rc));
        return;
    }
    b->log_saved = b->log_cursor;
    b->in_saved = b->in_cursor;
    b->saved_at = util_now_ms();
}

/* Resumes the packet log where the bridge stopped (what was appended while
 * stated was down is published then); the inbox from its head. */
static int load_positions(bridge *b) {
    store_txn *t;
    int rc = store_begin(b->srv->st, 1, &t);
    if (rc) return rc;
    uint64_t head = 0;
    rc = store_log_bounds(t, NULL, &head);
    if (!rc && (rc = reader_get(t, &b->log_id, &b->log_cursor)) == STORE_NOTFOUND) {
        b->log_cursor = head;
        rc = 0;
    }
    if (!rc) rc = store_inbox_bounds(t, NULL, &b->in_cursor);
    if (!rc) rc = reader_put(t, &b->log_id, b->log_cursor);
    if (!rc) rc = reader_put(t, &b->in_id, b->in_cursor);
    if (!rc) rc = store_commit(t);
    else store_abort(t);
    b->log_saved = b->log_cursor;
    b->in_saved = b->in_cursor;
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* One turn's work; returns when the loop must look again at the latest. */
static int64_t work(bridge *b, int64_t now, int *busy) {
    if (b->state == DOWN && now >= b->retry_at) try_connect(b);
    if (b->state == UP && now >= b->status_at) {
        buf ch = BUF_INIT;
        wire_channel(&ch, b->srv->cfg.redis_prefix, WIRE_CH_REQUEST, "/", NULL);
        redisAppendCommand(b->rpub, "PUBSUB NUMSUB %b", ch.data, ch.len);
        buf_free(&ch);
        write_status(b);
        b->status_at = now + STATUS_EVERY_MS;
    }
    *busy = scan_log(b) | scan_inbox(b);
    save_positions(b, 0);
    int64_t next = pend_expire(b, now);
    if (b->state == DOWN && b->retry_at < next) next = b->retry_at;
    if (b->state == UP && b->status_at < next) next = b->status_at;
    if ((b->log_cursor != b->log_saved || b->in_cursor != b->in_saved) && b->saved_at + SAVE_EVERY_MS < next)
        next = b->saved_at + SAVE_EVERY_MS;
    if (b->state == UP && (flush(b->rpub) || flush(b->rsub))) disconnect(b, "write failed");
    return next;
}

static void *loop(void *arg) {
    bridge *b = arg;
    while (!b->stopping) {
        int busy = 0;
        int64_t now = util_now_ms(), next = work(b, now, &busy);
        struct pollfd fds[4] = {{notify_sub_eventfd(b->sub), POLLIN, 0}, {b->stop_fd, POLLIN, 0}, {-1, 0, 0}, {-1, 0, 0}};
        if (b->state == UP) {
            fds[2] = (struct pollfd){b->rsub->fd, (short)(POLLIN | (sdslen(b->rsub->obuf) ? POLLOUT : 0)), 0};
            fds[3] = (struct pollfd){b->rpub->fd, (short)(POLLIN | (sdslen(b->rpub->obuf) ? POLLOUT : 0)), 0};
        }
        int timeout = busy ? 0 : (int)(next - util_now_ms());
        if (poll(fds, 4, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR) usleep(10000);
        if (fds[0].revents) notify_sub_ack(b->sub);
        if (b->state != UP) continue;
        if ((fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && read_sub(b))
            disconnect(b, b->rsub->errstr[0] ? b->rsub->errstr : "connection closed");
        else if (b->state == UP && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) && read_pub(b))
            disconnect(b, b->rpub->errstr[0] ? b->rpub->errstr : "connection closed");
    }
    save_positions(b, 1);
    return NULL;
}

/* ---- start / stop --------------------------------------------------------------------------- */

/* Without a cluster, the bridge's reader entries would pin both logs. */
static void forget_positions(server *srv) {
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return;
    reader_id log_id = reader_self(READER_BRIDGE), in_id = reader_self(READER_BRIDGE_INBOX);
    if (reader_del(t, &log_id) || reader_del(t, &in_id) || store_meta_put(t, "cluster", "", 0))
        store_abort(t);
    else
        store_commit(t);
}

static void bridge_free(bridge *b) {
    if (b->sub) notify_sub_stop(b->sub);
    if (b->stop_fd >= 0) close(b->stop_fd);
    if (b->rsub) redisFree(b->rsub);
    if (b->rpub) redisFree(b->rpub);
    free(b->nsps);
    free(b->pend);
    free(b);
}

int bridge_start(server *srv, bridge **out) {
    *out = NULL;
    if (!srv->cfg.redis_url) {
        forget_positions(srv);
        return 0;
    }
    bridge *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    b->srv = srv;
    b->stop_fd = -1;
    char err[200], id[UTIL_ID_LEN + 1];
    if (redis_url_parse(srv->cfg.redis_url, &b->url, err, sizeof err)) {
        log_error("cluster: redis_url: %s", err);
        free(b);
        return -EINVAL;
    }
    redis_url_text(&b->url, b->url_text, sizeof b->url_text);
    util_random_id(id);
    snprintf(b->uid, sizeof b->uid, "%.10s", id);
    b->log_id = reader_self(READER_BRIDGE);
    b->in_id = reader_self(READER_BRIDGE_INBOX);
    b->backoff_ms = BACKOFF_MIN_MS;
    b->since = util_now_ms();
    for (size_t i = 0; i < srv->cfg.nnsp; i++)
        if (!srv->cfg.nsps[i].is_pattern) learn_nsp(b, srv->cfg.nsps[i].name);
    int rc = load_positions(b);
    if (!rc) rc = (b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ? -errno : 0;
    if (!rc) rc = notify_sub_start(srv->dir, &b->sub);
    if (!rc) rc = -pthread_create(&b->th, NULL, loop, b);
    if (rc) {
        bridge_free(b);
        return rc;
    }
    write_status(b);
    log_info("cluster: joining the cluster on %s as server %s", b->url_text, b->uid);
    *out = b;
    return 0;
}

void bridge_stop(bridge *b) {
    if (!b) return;
    b->stopping = 1;
    uint64_t one = 1;
    ssize_t w = write(b->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(b->th, NULL);
    if (b->state == UP) flush(b->rpub); /* what was published last */
    b->state = DOWN;
    snprintf(b->error, sizeof b->error, "stopped");
    write_status(b);
    bridge_free(b);
}

/* polling: HTTP long-polling (see polling.h). */
#include "server/polling.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/stats.h"
#include "proto/eio_parser.h"
#include "server/access.h"
#include "server/reader.h"
#include "server/session.h"

#define UPGRADE_GET_WAIT_MS 100 /* a GET during an upgrade waits this long for the '5' */
#define CLOSE_GET_GRACE_MS 1000 /* a GET that the client's own close overtook */

/* This process's id, asked once (a system call each time otherwise, and a
 * look at a held GET compares it).  The gateways do not fork after their
 * start without exec'ing. */
static int self_pid(void) {
    static _Atomic int pid;
    int v = atomic_load_explicit(&pid, memory_order_relaxed);
    if (!v) atomic_store_explicit(&pid, v = (int)getpid(), memory_order_relaxed);
    return v;
}

/* A token for a GET this process claims: from a random start (a restarted
 * process that got the same pid does not take the old one's tokens for its
 * own), then counting by two (no system call; odd, so never 0). */
static uint32_t next_token(void) {
    static _Atomic uint32_t last;
    uint32_t v = atomic_load(&last);
    if (!v) {
        uint32_t seed = util_random_u32() | 1;
        if (atomic_compare_exchange_strong(&last, &v, seed)) v = seed;
    }
    return atomic_fetch_add(&last, 2) + 2; /* odd: never 0 */
}

/* ---- handshake ---------------------------------------------------------------- */

static void handshake(server *srv, const http_req *req, http_resp *resp) {
    char sid[UTIL_ID_LEN + 1];
    uint64_t cursor;
    char msg[256];
    if (access_handshake(srv, req, "polling", msg, sizeof msg) != ACCESS_ALLOW) {
        access_forbidden(resp, msg);
        return;
    }
    int rc = session_create(srv, req, STORE_T_POLLING, sid, &cursor);
    if (rc == -EBUSY) {
        http_resp_unavailable(resp, "Too many sessions");
        return;
    }
    if (store_full(rc)) {
        server_warn_full("a handshake", rc);
        http_resp_store_error(resp, rc);
        return;
    }
    if (rc) {
        log_error("handshake failed: %s", store_strerror(rc));
        http_resp_set(resp, 500, NULL, "", 0);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=UTF-8";
    buf_reset(&resp->body);
    eio_encode_open(&resp->body, sid, srv->cfg.allow_websocket ? "websocket" : NULL,
                    srv->cfg.ping_interval, srv->cfg.ping_timeout, srv->cfg.max_http_buffer_size);
}

/* ---- begin -------------------------------------------------------------------- */

/* A store transaction of a request on session sid failed with rc: 503 when
 * the store is full (logged at most once a second), else 500. */
static void request_failed(const char *what, const char *sid, int rc, http_resp *resp) {
    if (store_full(rc)) {
        char w[64];
        snprintf(w, sizeof w, "%s on session %s", what, sid);
        server_warn_full(w, rc);
    } else {
        log_error("%s on session %s failed: %s", what, sid, store_strerror(rc));
    }
    http_resp_store_error(resp, rc);
}

/* Closes the session in t (which it ends) and wakes readers. */
static int close_and_commit(server *srv, store_txn *t, const char *sid, store_session *s,
                            int reason) {
    int rc = session_close(t, sid, s, reason);
    if (!rc) rc = store_commit(t);
    else store_abort(t);
    if (!rc) server_notify(srv, 0);
    return rc;
}

/* A POST of a session that exists (t is a read transaction, ended here). */
static int begin_post(server *srv, const http_req *req, polling_req *p, store_txn *t,
                      http_resp *resp) {
    store_abort(t);
    if (req->content_type && !strcmp(req->content_type, "application/octet-stream")) {
        /* v4 payloads are text: Node closes the session */
        store_session s;
        int rc = store_begin(srv->st, 1, &t);
        if (!rc && store_session_get(t, p->sid, &s) == 0)
            close_and_commit(srv, t, p->sid, &s, SESSION_CLOSE_TRANSPORT);
        else if (!rc)
            store_abort(t);
        http_resp_set(resp, 400, NULL, "", 0);
        return POLLING_DONE;
    }
    if (req->content_length > srv->cfg.max_http_buffer_size) {
        http_resp_set(resp, 413, NULL, "", 0);
        return POLLING_DONE;
    }
    return POLLING_READ_BODY;
}

/* The client's '1' overtook the GET it sent with it (another worker served
 * it first): that GET gets the noop it would have got. */
static int close_overtook(const store_session *s, int64_t now) {
    return s->state == STORE_S_CLOSED && s->close_reason == SESSION_CLOSE_CLIENT && !s->close_sent &&
           !session_holder_alive(s) && now - s->closed_ms < CLOSE_GET_GRACE_MS;
}

/* A request for session p->sid.  A GET goes to its claim (at once, or
 * later with others when defer is set: POLLING_CLAIM), which checks the
 * session in the write transaction that claims it; a POST is looked up and
 * validated here (a read transaction) and written by polling_post, so
 * neither takes the writer lock twice. */
static int begin_session(server *srv, const http_req *req, const http_query *q, polling_req *p,
                         http_resp *resp, int defer) {
    if (!strcmp(req->method, "GET")) {
        p->bare = req->bare ? 1 : 0;
        p->bad_query = strcmp(q->transport, "polling") || !http_query_v4(q);
        if (defer) return POLLING_CLAIM;
        polling_req *one = p;
        int rc = 0;
        int64_t deadline = 0;
        polling_claim_many(srv, &one, 1, resp, &rc, &deadline);
        return rc;
    }
    store_txn *t;
    int rc = store_begin(srv->st, 0, &t);
    if (rc) goto fail;
    store_session s;
    rc = store_session_get(t, p->sid, &s);
    if (rc == STORE_NOTFOUND || (rc == 0 && (s.state == STORE_S_CLOSED || session_expired(srv, &s, util_now_ms())))) {
        /* (an expired one: stated's reaper closes it within a second) */
        store_abort(t);
        http_resp_error(resp, 1);
        return POLLING_DONE;
    }
    if (rc) { store_abort(t); goto fail; }
    if (strcmp(q->transport, "polling") || s.transport != STORE_T_POLLING || !http_query_v4(q) ||
        s.bare != (req->bare ? 1 : 0)) {
        store_abort(t);
        http_resp_error(resp, 3);
        return POLLING_DONE;
    }
    if (!strcmp(req->method, "POST")) return begin_post(srv, req, p, t, resp);
    store_abort(t);
    http_resp_set(resp, 500, NULL, "", 0);
    return POLLING_DONE;
fail:
    request_failed("a request", p->sid, rc, resp);
    return POLLING_DONE;
}

/* 1 when session sid exists and is not closed. */
static int session_known(server *srv, const char *sid) {
    store_txn *t;
    store_session s;
    if (store_begin(srv->st, 0, &t)) return 0;
    int rc = store_session_get(t, sid, &s);
    store_abort(t);
    return rc == 0 && s.state != STORE_S_CLOSED;
}

/* A request Node's HTTP server hands to its upgrade path (Connection:
 * upgrade) with an Upgrade that is not websocket: Engine.IO's checks, then
 * Node's ws package refuses it; every answer is written as a refused
 * WebSocket handshake is (text/html, the message, Connection: close). */
static void upgrade_other(server *srv, const http_req *req, const http_query *q, http_resp *resp) {
    int code = -1;
    if (!http_transport_allowed(srv, q)) code = 0;
    else if (http_origin_invalid(req->origin)) code = 3;
    else if (q->has_sid == 1 && util_is_id(q->sid, strlen(q->sid))) code = session_known(srv, q->sid) ? -1 : 1;
    else if (q->has_sid) code = 1;
    else if (strcmp(req->method, "GET")) code = 2;
    const char *msg = code >= 0 ? http_error_message(code)
                      : strcmp(req->method, "GET") ? "Invalid HTTP method" : "Invalid Upgrade header";
    http_resp_set(resp, code < 0 && strcmp(req->method, "GET") ? 405 : 400, "text/html", msg, strlen(msg));
    buf_puts(&resp->headers, "Connection: close\r\n");
}

static int begin(server *srv, const http_req *req, polling_req *p, http_resp *resp, int defer) {
    memset(p, 0, sizeof *p);
    http_query q;
    http_parse_query(req->query, &q);
    http_cors(srv, req, resp);
    if (srv->cfg.cors_origin && !strcmp(req->method, "OPTIONS")) {
        http_resp_set(resp, 204, NULL, "", 0);
        buf_puts(&resp->headers, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
        return POLLING_DONE;
    }
    if (req->upgrade_other) {
        upgrade_other(srv, req, &q, resp);
        return POLLING_DONE;
    }
    if (!http_transport_allowed(srv, &q)) {
        http_resp_error(resp, 0);
        return POLLING_DONE;
    }
    if (http_origin_invalid(req->origin)) {
        http_resp_error(resp, 3);
        return POLLING_DONE;
    }
    if (!q.has_sid) {
        if (strcmp(req->method, "GET")) http_resp_error(resp, 2);
        else if (!strcmp(q.transport, "websocket") || req->upgrade) http_resp_error(resp, 3);
        else if (!http_query_v4(&q)) http_resp_error(resp, 5);
        else handshake(srv, req, resp);
        return POLLING_DONE;
    }
    if (q.has_sid != 1 || !util_is_id(q.sid, strlen(q.sid))) {
        http_resp_error(resp, 1);
        return POLLING_DONE;
    }
    strcpy(p->sid, q.sid);
    return begin_session(srv, req, &q, p, resp, defer);
}

int polling_begin(server *srv, const http_req *req, polling_req *p, http_resp *resp) {
    return begin(srv, req, p, resp, 0);
}

int polling_begin_deferred(server *srv, const http_req *req, polling_req *p, http_resp *resp) {
    return begin(srv, req, p, resp, 1);
}

/* ---- POST ------------------------------------------------------------------------ */

void polling_post(server *srv, polling_req *p, uint8_t *body, size_t len, int too_big,
                  http_resp *resp) {
    if (too_big) {
        http_resp_set(resp, 413, NULL, "", 0);
        return;
    }
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) goto fail;
    store_session s;
    rc = store_session_get(t, p->sid, &s);
    if (rc == STORE_NOTFOUND || (rc == 0 && s.state == STORE_S_CLOSED) ||
        (rc == 0 && session_expired(srv, &s, util_now_ms()))) {
        store_abort(t);
        http_resp_error(resp, 1);
        return;
    }
    if (rc) { store_abort(t); goto fail; }
    if (log_enabled(LOG_DEBUG)) {
        char esc[256];
        log_debug("POST %s: %s", p->sid, log_escape(esc, sizeof esc, (const char *)body, len));
    }
    uint64_t seq = 0;
    int close = 0;
    eio_reader r;
    eio_reader_init(&r, body, len);
    eio_packet pk;
    int n;
    uint64_t npk = 0;
    while (!close && (n = eio_reader_next(&r, &pk)) == 1) {
        rc = session_packet(srv, t, p->sid, &s, &pk, &seq);
        if (rc < 0) goto abort;
        close = rc;
        npk++;
    }
    if (!close && n < 0) close = SESSION_CLOSE_PARSE_ERROR;
    rc = close ? session_close(t, p->sid, &s, close) : store_session_put(t, p->sid, &s);
    if (rc) goto abort;
    if ((rc = store_commit(t))) goto fail;
    stats_add(STATS_PACKETS_IN + STATS_T_POLLING, npk);
    stats_add(STATS_BYTES_IN + STATS_T_POLLING, len);
    server_notify(srv, seq);
    http_resp_set(resp, 200, "text/html", "ok", 2);
    return;
abort:
    store_abort(t);
fail:
    /* Nothing of the POST was kept (the transaction is undone): the client
     * sees its request fail, as with any 5xx, and reconnects. */
    request_failed("a POST", p->sid, rc, resp);
}

void polling_post_broken(server *srv, polling_req *p) {
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return;
    store_session s;
    int rc = store_session_get(t, p->sid, &s);
    if (rc == 0 && s.state != STORE_S_CLOSED && s.transport == STORE_T_POLLING) {
        if (close_and_commit(srv, t, p->sid, &s, SESSION_CLOSE_TRANSPORT) == 0)
            log_debug("session %s closed: its POST broke off", p->sid);
        return;
    }
    store_abort(t);
}

void polling_overlap_answer(http_resp *resp) { http_resp_set(resp, 400, NULL, "", 0); }

/* ---- GET ---------------------------------------------------------------------------- */

static int payload_frame_cb(void *arg, const logrec_frame *f) {
    int rc = eio_payload_add(arg, EIO_MESSAGE, f->binary, f->data, f->len);
    if (rc == -EINVAL) { /* text holding 0x1e cannot travel in a polling payload */
        log_warn("dropped a %zu-byte message that cannot be sent over polling (it contains 0x1e)", f->len);
        return 0;
    }
    return rc;
}

static void release_holder(server *srv, polling_req *p, int delete_session) {
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return;
    store_session s;
    if (store_session_get(t, p->sid, &s) == 0 && s.poll_token == p->token &&
        s.poll_pid == self_pid()) {
        if (delete_session) {
            store_session_del(t, p->sid);
        } else {
            s.poll_pid = 0;
            s.poll_token = 0;
            store_session_put(t, p->sid, &s);
        }
        store_commit(t);
    } else {
        store_abort(t);
    }
    p->held = 0;
}

void polling_abandon(server *srv, polling_req *p) {
    if (p->held) release_holder(srv, p, 0);
}

/* The client's poll of session sid broke off: the session closes, as Node
 * closes it ("transport error"). */
static void close_dropped(server *srv, polling_req *p) {
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return;
    store_session s;
    int rc = store_session_get(t, p->sid, &s);
    if (rc == 0 && s.state != STORE_S_CLOSED && s.transport == STORE_T_POLLING) {
        if (close_and_commit(srv, t, p->sid, &s, SESSION_CLOSE_POLL_DROPPED) == 0)
            log_debug("session %s closed: the client dropped its held GET", p->sid);
        return;
    }
    store_abort(t);
}

void polling_dropped(server *srv, polling_req *p) {
    int held = p->held;
    polling_abandon(srv, p);
    if (held) close_dropped(srv, p);
}

void polling_answer_lost(server *srv, polling_req *p) { close_dropped(srv, p); }

/* A GET that arrived while the session was upgrading (not its holder). */
static int upgrade_wait_step(server *srv, polling_req *p, http_resp *resp, int64_t *deadline_ms) {
    p->gen = srv->sub ? notify_sub_gen(srv->sub) : 0;
    store_txn *t;
    store_session s;
    int rc = store_begin(srv->st, 0, &t);
    if (!rc) {
        rc = store_session_get(t, p->sid, &s);
        store_abort(t);
    }
    if (rc || s.state == STORE_S_CLOSED) {
        http_resp_error(resp, 1);
        return POLLING_DONE;
    }
    if (s.transport != STORE_T_POLLING) { /* upgraded meanwhile */
        http_resp_error(resp, 3);
        return POLLING_DONE;
    }
    if (s.state == STORE_S_UPGRADING && util_now_ms() < p->upgrade_wait) {
        *deadline_ms = p->upgrade_wait;
        return POLLING_WAIT;
    }
    http_resp_text(resp, "6");
    return POLLING_DONE;
}

/* What a look at the held GET found, in a read transaction. */
typedef struct look {
    store_session s;  /* the session as read */
    int end;          /* LOOK_* other than LOOK_GO: the request is over (see look_end) */
    int why;          /* a close reason it reached */
    int ping;         /* a ping is due */
    buf out;          /* the payload collected */
    uint64_t upto;    /* the cursor after it */
} look;

enum {
    LOOK_GO = 0,       /* held and open: answer or wait (why, ping, out) */
    LOOK_GONE = 1,     /* reaped under us: '1' */
    LOOK_CLOSED = 2,   /* closed: '6' or '1', and the record goes */
    LOOK_TAKEN = 3,    /* another request took over the session: '6' */
    LOOK_UPGRADED = 4, /* upgrading or upgraded: '6', and the hold is released */
};

static int look_log(server *srv, store_txn *t, polling_req *p, look *l, int64_t now);

/* Reads the session and what is queued for it in t (a read transaction).
 * 0 with l filled (l->end says whether the request is over), <0 on a store
 * error.  Writes nothing. */
static int look_in(server *srv, store_txn *t, polling_req *p, look *l, int64_t now) {
    int rc = store_session_get(t, p->sid, &l->s);
    if (rc == STORE_NOTFOUND) {
        l->end = LOOK_GONE;
        return 0;
    }
    if (rc) return rc;
    store_session *s = &l->s;
    if (s->state == STORE_S_CLOSED) l->end = LOOK_CLOSED;
    else if (s->poll_pid != self_pid() || s->poll_token != p->token) l->end = LOOK_TAKEN;
    else if (s->state == STORE_S_UPGRADING || s->transport != STORE_T_POLLING) l->end = LOOK_UPGRADED;
    return l->end ? 0 : look_log(srv, t, p, l, now);
}

/* look_in's second half, on the session in l->s: its close reason, what is
 * queued for it, a ping due. */
static int look_log(server *srv, store_txn *t, polling_req *p, look *l, int64_t now) {
    store_session *s = &l->s;
    int rc = 0;
    l->why = session_expired(srv, s, now);
    uint64_t first = 0, head = 0;
    if (!l->why) rc = store_log_bounds(t, &first, &head);
    /* Records up to p->scanned were already found to hold nothing for us:
     * only a trim past what we have not looked at yet loses something. */
    uint64_t from = p->scanned > s->cursor ? p->scanned : s->cursor;
    if (!rc && !l->why && from + 1 < first) l->why = SESSION_CLOSE_LAGGING;
    l->upto = from;
    if (!rc && !l->why && head > from)
        rc = reader_collect(t, p->sid, from, UINT64_MAX, (size_t)srv->cfg.max_http_buffer_size,
                            payload_frame_cb, &l->out, &l->upto);
    l->ping = !l->why && now >= s->ping_at_ms && s->ping_sent_ms != s->ping_at_ms;
    return rc < 0 ? rc : 0;
}

/* A look that found the request over (l->end): its answer, and what that
 * releases in the store (its own write transaction; no transaction open). */
static int look_end(server *srv, polling_req *p, look *l, http_resp *resp) {
    switch (l->end) {
    case LOOK_GONE:
        p->held = 0;
        http_resp_text(resp, "1");
        break;
    case LOOK_CLOSED:
        http_resp_text(resp, l->s.close_reason == SESSION_CLOSE_CLIENT ? "6" : "1");
        release_holder(srv, p, 1);
        break;
    case LOOK_TAKEN: /* stand down */
        p->held = 0;
        http_resp_text(resp, "6");
        break;
    default:
        http_resp_text(resp, "6");
        release_holder(srv, p, 0);
        break;
    }
    return POLLING_DONE;
}

/* Reads the session and what is queued for it.  POLLING_DONE with resp
 * filled when the request is over without a write, 1 to go on, <0 on a
 * store error. */
static int look_at(server *srv, polling_req *p, look *l, http_resp *resp) {
    store_txn *t;
    int rc = store_begin(srv->st, 0, &t);
    if (rc) return rc;
    rc = look_in(srv, t, p, l, util_now_ms());
    store_abort(t);
    if (rc) return rc;
    return l->end ? look_end(srv, p, l, resp) : 1;
}

/* Counts the packets of a payload going out (separated by 0x1e, which
 * no packet holds). */
static void count_out(const buf *payload) {
    if (!payload->len) return;
    uint64_t n = 1;
    for (const char *p = payload->data, *end = p + payload->len; (p = memchr(p, 0x1e, (size_t)(end - p))); p++)
        n++;
    stats_add(STATS_PACKETS_OUT + STATS_T_POLLING, n);
    stats_add(STATS_BYTES_OUT + STATS_T_POLLING, payload->len);
}

/* Records in t what the look found, on w (the session as t has it, not
 * held by anyone now): 0 or <0 on a store error. */
static int settle(store_txn *t, polling_req *p, store_session *w, look *l) {
    if (l->why) {
        int rc = session_close(t, p->sid, w, l->why);
        return rc ? rc : store_session_del(t, p->sid);
    }
    if (l->ping) {
        eio_payload_add(&l->out, EIO_PING, 0, NULL, 0);
        w->ping_sent_ms = w->ping_at_ms;
    }
    w->cursor = l->upto;
    w->poll_pid = 0;
    w->poll_token = 0;
    return store_session_put(t, p->sid, w);
}

/* Records in t (a write transaction) what the look found: 0 when written
 * (answered once t commits: answered()), 1 when the session changed
 * meanwhile (look again), <0 on a store error. */
static int answer_in(store_txn *t, polling_req *p, look *l) {
    store_session w;
    int rc = store_session_get(t, p->sid, &w);
    if (rc || w.poll_token != p->token || w.state != STORE_S_OPEN || w.cursor != l->s.cursor ||
        w.ping_at_ms != l->s.ping_at_ms)
        return 1; /* changed meanwhile: look again */
    return settle(t, p, &w, l);
}

/* What answer_in wrote is committed: the answer (the payload moves from l
 * to resp). */
static void answered(polling_req *p, look *l, http_resp *resp) {
    p->held = 0;
    if (l->why) {
        http_resp_text(resp, "1");
        return;
    }
    count_out(&l->out);
    resp->status = 200;
    resp->content_type = "text/plain; charset=UTF-8";
    buf_free(&resp->body);
    resp->body = l->out;
    l->out = (buf)BUF_INIT;
}

/* Records what the look found and answers.  POLLING_DONE, 1 when the
 * session changed meanwhile (look again), <0 on a store error. */
static int answer(server *srv, polling_req *p, look *l, http_resp *resp) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    rc = answer_in(t, p, l);
    if (rc) {
        store_abort(t);
        return rc;
    }
    if ((rc = store_commit(t))) return rc;
    if (l->why) server_notify(srv, 0);
    answered(p, l, resp);
    return POLLING_DONE;
}

int polling_step(server *srv, polling_req *p, http_resp *resp, int64_t *deadline_ms) {
    if (p->upgrade_wait) return upgrade_wait_step(srv, p, resp, deadline_ms);
    for (int attempt = 0; attempt < 16; attempt++) {
        p->gen = srv->sub ? notify_sub_gen(srv->sub) : 0;
        look l = {.out = BUF_INIT};
        int rc = look_at(srv, p, &l, resp);
        if (rc == 1 && !l.why && !l.ping && l.out.len == 0) {
            p->scanned = l.upto;
            *deadline_ms = session_deadline(srv, &l.s);
            rc = POLLING_WAIT;
        } else if (rc == 1) {
            rc = answer(srv, p, &l, resp);
        }
        buf_free(&l.out);
        if (rc == 1) continue;
        if (rc >= 0) return rc;
        if (p->held) release_holder(srv, p, 0);
        request_failed("a GET", p->sid, rc, resp);
        return POLLING_DONE;
    }
    return POLLING_WAIT; /* very busy: try again after a wake */
}

/* polling_step_many's marks for a request between its passes */
enum { MANY_ALONE = -1, MANY_END = -2, MANY_ANSWER = -3 };

void polling_step_many(server *srv, polling_req *const *ps, size_t n, http_resp *resps, int *rcs,
                       int64_t *deadlines) {
    look *ls = n ? calloc(n, sizeof *ls) : NULL; /* zeroed: empty payloads (BUF_INIT) */
    /* the generation before the snapshot: a commit after it wakes us again */
    uint64_t gen = srv->sub ? notify_sub_gen(srv->sub) : 0;
    store_txn *t = NULL;
    int rc = ls ? store_begin(srv->st, 0, &t) : -ENOMEM;
    int64_t now = util_now_ms();
    size_t nanswer = 0;
    for (size_t i = 0; i < n; i++) {
        polling_req *p = ps[i];
        rcs[i] = MANY_ALONE;
        if (rc || p->upgrade_wait) continue;
        p->gen = gen;
        look *l = &ls[i];
        if (look_in(srv, t, p, l, now)) { /* a store error: on its own, below */
            buf_free(&l->out);
            memset(l, 0, sizeof *l);
        } else if (l->end) {
            rcs[i] = MANY_END;
        } else if (!l->why && !l->ping && l->out.len == 0) {
            p->scanned = l->upto;
            deadlines[i] = session_deadline(srv, &l->s);
            rcs[i] = POLLING_WAIT;
        } else {
            rcs[i] = MANY_ANSWER;
            nanswer++;
        }
    }
    if (t) store_abort(t);
    /* the answers, in one write transaction: all of them or none */
    if (nanswer) {
        int wrc = store_begin(srv->st, 1, &t);
        for (size_t i = 0; i < n && !wrc; i++) {
            if (rcs[i] != MANY_ANSWER) continue;
            int r = answer_in(t, ps[i], &ls[i]);
            if (r == 1) rcs[i] = MANY_ALONE; /* changed meanwhile: looked at again below */
            else if (r) wrc = r;
        }
        if (!wrc) wrc = store_commit(t);
        else store_abort(t);
        int notify = 0;
        for (size_t i = 0; i < n; i++) {
            if (rcs[i] != MANY_ANSWER) continue;
            if (wrc) { /* nothing was written: each on its own, below */
                rcs[i] = MANY_ALONE;
                continue;
            }
            notify |= ls[i].why != 0;
            answered(ps[i], &ls[i], &resps[i]);
            rcs[i] = POLLING_DONE;
        }
        if (notify) server_notify(srv, 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == MANY_END) rcs[i] = look_end(srv, ps[i], &ls[i], &resps[i]);
        else if (rcs[i] == MANY_ALONE) rcs[i] = polling_step(srv, ps[i], &resps[i], &deadlines[i]);
        if (ls) buf_free(&ls[i].out);
    }
    free(ls);
}

/* ---- claims ------------------------------------------------------------------------- */

enum { CLAIM_ANSWER = 3 }; /* claim_in: settled, answered once t commits */

/* One GET's claim in t (a write transaction): the session is looked up
 * and checked as Node checks a GET; then the session's poll is
 * claimed, or, when something is queued for it already (or a ping is due),
 * answered at once in the same transaction.  POLLING_DONE (resp filled),
 * POLLING_WAIT (held, or waiting out an upgrade: *deadline_ms),
 * CLAIM_ANSWER (l holds the answer) or <0 on a store error; *notify is set
 * when what it wrote must wake readers. */
static int claim_in(server *srv, store_txn *t, polling_req *p, int64_t now, look *l, http_resp *resp,
                    int64_t *deadline_ms, int *notify) {
    store_session *s = &l->s;
    int rc = store_session_get(t, p->sid, s);
    if (rc == STORE_NOTFOUND || (rc == 0 && s->state == STORE_S_CLOSED && !close_overtook(s, now))) {
        http_resp_error(resp, 1);
        return POLLING_DONE;
    }
    if (rc) return rc;
    if (s->state == STORE_S_CLOSED) {
        s->close_sent = 1;
        if ((rc = store_session_put(t, p->sid, s))) return rc;
        http_resp_text(resp, "6");
        return POLLING_DONE;
    }
    int why = session_expired(srv, s, now);
    if (why) {
        if ((rc = session_close(t, p->sid, s, why))) return rc;
        *notify = 1;
        http_resp_error(resp, 1);
        return POLLING_DONE;
    }
    if (p->bad_query || s->transport != STORE_T_POLLING || s->bare != p->bare) {
        http_resp_error(resp, 3);
        return POLLING_DONE;
    }
    if (s->state == STORE_S_UPGRADING) {
        /* The client may have sent '5' on its WebSocket already, through
         * another process: wait a moment for that to land (then 400, as for
         * any poll after the upgrade), else release it with a noop. */
        p->upgrade_wait = now + UPGRADE_GET_WAIT_MS;
        *deadline_ms = p->upgrade_wait;
        return POLLING_WAIT;
    }
    if (session_holder_alive(s)) {
        /* overlapping polls: Node answers 400, closes, and the held GET gets '1' */
        if ((rc = session_close(t, p->sid, s, SESSION_CLOSE_OVERLAP))) return rc;
        *notify = 1;
        http_resp_set(resp, 400, NULL, "", 0);
        return POLLING_DONE;
    }
    store_session w = *s;
    w.acked = w.cursor; /* a client sends its next GET once it has read the last answer */
    p->token = next_token();
    w.poll_pid = self_pid();
    w.poll_token = p->token;
    w.poll_since_ms = now;
    /* what is queued for it already: read in t itself */
    if ((rc = look_log(srv, t, p, l, now))) return rc;
    if (l->why || l->ping || l->out.len) {
        if (l->why) *notify = 1;
        return (rc = settle(t, p, &w, l)) ? rc : CLAIM_ANSWER;
    }
    p->scanned = l->upto;
    *deadline_ms = session_deadline(srv, &w);
    return (rc = store_session_put(t, p->sid, &w)) ? rc : POLLING_WAIT;
}

void polling_claim_many(server *srv, polling_req *const *ps, size_t n, http_resp *resps, int *rcs,
                        int64_t *deadlines) {
    look one, *ls = n > 1 ? calloc(n, sizeof *ls) : &one;
    if (!ls) { /* one at a time */
        for (size_t i = 0; i < n; i++) polling_claim_many(srv, &ps[i], 1, &resps[i], &rcs[i], &deadlines[i]);
        return;
    }
    memset(ls, 0, n * sizeof *ls);
    /* the generation before the transaction: a commit after it wakes us again */
    uint64_t gen = srv->sub ? notify_sub_gen(srv->sub) : 0;
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t), notify = 0, begun = rc == 0;
    int64_t now = util_now_ms();
    for (size_t i = 0; i < n && !rc; i++) {
        ps[i]->gen = gen;
        rcs[i] = claim_in(srv, t, ps[i], now, &ls[i], &resps[i], &deadlines[i], &notify);
        if (rcs[i] < 0) rc = rcs[i];
    }
    if (!rc) rc = store_commit(t);
    else if (begun) store_abort(t);
    if (rc && n > 1) { /* nothing was written: each on its own, so that one failure fails one GET */
        for (size_t i = 0; i < n; i++) {
            buf_free(&ls[i].out);
            ps[i]->upgrade_wait = 0;
            polling_claim_many(srv, &ps[i], 1, &resps[i], &rcs[i], &deadlines[i]);
        }
        free(ls);
        return;
    }
    if (rc) {
        rcs[0] = POLLING_DONE;
        ps[0]->token = 0;
        ps[0]->upgrade_wait = 0;
        request_failed("a GET", ps[0]->sid, rc, &resps[0]);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (rcs[i] == POLLING_WAIT) ps[i]->held = ps[i]->upgrade_wait == 0;
        if (rcs[i] == CLAIM_ANSWER) {
            answered(ps[i], &ls[i], &resps[i]);
            rcs[i] = POLLING_DONE;
        }
    }
    if (!rc && notify) server_notify(srv, 0);
    for (size_t i = 0; i < n; i++) buf_free(&ls[i].out);
    if (ls != &one) free(ls);
}

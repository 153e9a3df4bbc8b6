/* websocket: the WebSocket transport's session calls (see websocket.h). */
#include "server/websocket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/access.h"
#include "server/session.h"

/* A Sec-WebSocket-Key: the base64 of 16 bytes (22 characters and "=="). */
static int key_valid(const char *k) {
    if (!k || strlen(k) != 24 || strcmp(k + 22, "==")) return 0;
    for (int i = 0; i < 22; i++) {
        char c = k[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '/'))
            return 0;
    }
    return 1;
}

/* Sec-WebSocket-Version 13 or 8, read as JavaScript's unary + reads it
 * (surrounding whitespace allowed). */
static int version_valid(const char *v) {
    if (!v) return 0;
    while (*v == ' ' || *v == '\t') v++;
    long n;
    char *end;
    n = strtol(v, &end, 10);
    if (end == v) return 0;
    while (*end == ' ' || *end == '\t') end++;
    return !*end && (n == 13 || n == 8);
}

int websocket_handshake_error(const http_req *req, const char **msg, const char **extra) {
    *extra = NULL;
    if (req->method && strcmp(req->method, "GET")) {
        *msg = "Invalid HTTP method";
        return 405;
    }
    if (!key_valid(req->ws_key)) {
        *msg = "Missing or invalid Sec-WebSocket-Key header";
        return 400;
    }
    if (!version_valid(req->ws_version)) {
        *msg = "Missing or invalid Sec-WebSocket-Version header";
        *extra = "Sec-WebSocket-Version: 13, 8\r\n";
        return 400;
    }
    return 0;
}

int websocket_accept(server *srv, const http_req *req, char sid[UTIL_ID_LEN + 1],
                     buf *open, uint64_t *cursor, int *code) {
    http_query q;
    http_parse_query(req->query, &q);
    *code = 3;
    if (!http_transport_allowed(srv, &q)) {
        *code = 0;
        return WEBSOCKET_REJECT;
    }
    if (http_origin_invalid(req->origin)) return WEBSOCKET_REJECT;
    int polling = strcmp(q.transport, "websocket") != 0; /* an upgrade with transport=polling */
    const char *msg, *extra;
    if (!q.has_sid) {
        if (req->method && strcmp(req->method, "GET")) {
            *code = 2;
            return WEBSOCKET_REJECT;
        }
        if (polling) return WEBSOCKET_REJECT;
        if (!http_query_v4(&q)) {
            *code = 5;
            return WEBSOCKET_REJECT;
        }
        char amsg[256];
        if (access_handshake(srv, req, "websocket", amsg, sizeof amsg) != ACCESS_ALLOW) {
            http_resp r = {0};
            access_forbidden(&r, amsg);
            buf_reset(open);
            buf_append(open, r.body.data, r.body.len);
            http_resp_free(&r);
            *code = WEBSOCKET_FORBIDDEN;
            return WEBSOCKET_REJECT;
        }
        if (websocket_handshake_error(req, &msg, &extra)) {
            *code = WEBSOCKET_BAD_HANDSHAKE;
            return WEBSOCKET_REJECT;
        }
        int rc = session_create(srv, req, STORE_T_WEBSOCKET, sid, cursor);
        if (rc) {
            *code = rc == -EBUSY ? 4 : store_full(rc) ? WEBSOCKET_FULL : 3;
            if (store_full(rc)) server_warn_full("a WebSocket handshake", rc);
            return WEBSOCKET_REJECT;
        }
        buf_reset(open);
        eio_encode_open(open, sid, NULL, srv->cfg.ping_interval, srv->cfg.ping_timeout,
                        srv->cfg.max_http_buffer_size);
        return WEBSOCKET_NEW;
    }
    if (q.has_sid != 1 || !util_is_id(q.sid, strlen(q.sid))) {
        *code = 1;
        return WEBSOCKET_REJECT;
    }
    if (!http_query_v4(&q)) return WEBSOCKET_REJECT;
    store_txn *t;
    if (store_begin(srv->st, 1, &t)) return WEBSOCKET_REJECT;
    store_session s;
    int rc = store_session_get(t, q.sid, &s);
    int64_t now = util_now_ms();
    if (rc || s.state == STORE_S_CLOSED || session_expired(srv, &s, now)) {
        store_abort(t);
        *code = 1;
        return WEBSOCKET_REJECT;
    }
    if (websocket_handshake_error(req, &msg, &extra)) {
        store_abort(t);
        *code = WEBSOCKET_BAD_HANDSHAKE;
        return WEBSOCKET_REJECT;
    }
    /* Only a polling session that is not already upgrading can upgrade. */
    if (polling || s.transport != STORE_T_POLLING || s.state != STORE_S_OPEN ||
        (s.upgrade_ms && now < s.upgrade_ms + srv->cfg.upgrade_timeout)) {
        store_abort(t);
        return WEBSOCKET_REJECT;
    }
    s.upgrade_ms = now;
    rc = store_session_put(t, q.sid, &s);
    if (!rc) rc = store_commit(t); else store_abort(t);
    if (rc) return WEBSOCKET_REJECT;
    strcpy(sid, q.sid);
    *cursor = s.cursor;
    return WEBSOCKET_UPGRADE;
}

/* Runs fn on the session inside a write transaction and commits; notifies. */
static int with_session(server *srv, const char *sid,
                        int (*fn)(server *, store_txn *, const char *, store_session *, void *),
                        void *arg) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    store_session s;
    rc = store_session_get(t, sid, &s);
    if (!rc && s.state == STORE_S_CLOSED) rc = STORE_NOTFOUND;
    if (!rc) rc = fn(srv, t, sid, &s, arg);
    if (rc < 0) {
        store_abort(t);
        return rc;
    }
    int c = store_commit(t);
    if (c) return c;
    server_notify(srv, 0);
    return rc;
}

static int do_probe(server *srv, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)srv, (void)arg;
    if (s->transport != STORE_T_POLLING) return -EINVAL;
    s->state = STORE_S_UPGRADING;
    return store_session_put(t, sid, s);
}

int websocket_probe(server *srv, const char *sid) { return with_session(srv, sid, do_probe, NULL); }

static int do_upgraded(server *srv, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)srv;
    if (s->transport != STORE_T_POLLING) return -EINVAL;
    s->transport = STORE_T_WEBSOCKET;
    s->state = STORE_S_OPEN;
    s->owner_pid = getpid();
    s->poll_pid = 0;
    s->poll_token = 0;
    s->upgrade_ms = 0;
    *(uint64_t *)arg = s->cursor;
    return store_session_put(t, sid, s);
}

int websocket_upgraded(server *srv, const char *sid, uint64_t *cursor) {
    return with_session(srv, sid, do_upgraded, cursor);
}

static int do_upgrade_abort(server *srv, store_txn *t, const char *sid, store_session *s,
                            void *arg) {
    (void)srv, (void)arg;
    if (s->transport != STORE_T_POLLING) return 0;
    s->state = STORE_S_OPEN;
    s->upgrade_ms = 0;
    return store_session_put(t, sid, s);
}

void websocket_upgrade_abort(server *srv, const char *sid) {
    with_session(srv, sid, do_upgrade_abort, NULL);
}

typedef struct ws_pkt_arg {
    const eio_packet *pk;
    uint64_t seq;
} ws_pkt_arg;

static int do_packet(server *srv, store_txn *t, const char *sid, store_session *s, void *arg) {
    ws_pkt_arg *a = arg;
    store_session before = *s;
    int rc = session_packet(srv, t, sid, s, a->pk, &a->seq);
    if (rc < 0) return rc;
    /* Most messages leave the record as it was (or as the handler's actions
     * wrote it, which s was reloaded from): writing it again would dirty the
     * sessions tree's pages in every commit for nothing. */
    if (!memcmp(&before, s, sizeof before)) return rc;
    int c = store_session_put(t, sid, s);
    return c ? c : rc;
}

int websocket_packet(server *srv, const char *sid, const eio_packet *pk) {
    ws_pkt_arg a = {pk, 0};
    return with_session(srv, sid, do_packet, &a);
}

typedef struct closed_arg {
    int reason;
    uint64_t acked;
} closed_arg;

static int do_closed(server *srv, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)srv;
    closed_arg *a = arg;
    if (a->acked > s->acked) s->acked = a->acked;
    int rc = session_close(t, sid, s, a->reason);
    if (!rc) rc = store_session_del(t, sid);
    return rc;
}

int websocket_closed(server *srv, const char *sid, int reason, uint64_t acked) {
    closed_arg a = {reason, acked};
    return with_session(srv, sid, do_closed, &a);
}

int websocket_acked(server *srv, const char (*sids)[UTIL_ID_LEN + 1], const uint64_t *acked,
                    size_t n) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < n; i++) {
        store_session s;
        if (store_session_get(t, sids[i], &s) || s.state == STORE_S_CLOSED || acked[i] <= s.acked)
            continue;
        s.acked = acked[i];
        rc = store_session_put(t, sids[i], &s);
    }
    if (rc) {
        store_abort(t);
        return rc;
    }
    return store_commit(t);
}


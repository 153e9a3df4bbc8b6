/* session: Engine.IO sessions in the store (see session.h). */
#include "server/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/stats.h"
#include "server/access.h"
#include "server/socketio.h"
#include "store/inbox.h"

int session_holder_alive(const store_session *s) {
    if (!s->poll_pid) return 0;
    if (s->poll_pid == getpid()) return 1;
    return util_pid_alive(s->poll_pid);
}

int session_close(store_txn *t, const char *sid, store_session *s, int reason) {
    if (s->state == STORE_S_CLOSED) return 0;
    int rc = socketio_session_drop(t, sid, reason, s->acked);
    if (!rc) rc = store_partial_del(t, sid);
    if (rc) return rc;
    s->state = STORE_S_CLOSED;
    s->close_reason = (uint8_t)reason;
    s->closed_ms = util_now_ms();
    s->nsockets = 0;
    stats_add(STATS_SESSION_CLOSES + stats_reason_of(socketio_disconnect_reason(reason)), 1);
    log_debug("session %s closed: %s", sid, server_close_reason(reason));
    return store_session_put(t, sid, s);
}

int session_expired(const server *srv, const store_session *s, int64_t now) {
    if (s->state == STORE_S_CLOSED || s->transport != STORE_T_POLLING) return 0;
    if (now >= s->ping_at_ms + srv->cfg.ping_timeout) return SESSION_CLOSE_PING_TIMEOUT;
    if (!s->ever_connected && now >= s->created_ms + srv->cfg.connect_timeout)
        return SESSION_CLOSE_CONNECT_TIMEOUT;
    return 0;
}

int64_t session_expiry(const server *srv, const store_session *s) {
    int64_t d = s->ping_at_ms + srv->cfg.ping_timeout;
    if (!s->ever_connected && s->created_ms + srv->cfg.connect_timeout < d)
        d = s->created_ms + srv->cfg.connect_timeout;
    return d;
}

int64_t session_deadline(const server *srv, const store_session *s) {
    int64_t d = session_expiry(srv, s);
    if (s->ping_sent_ms != s->ping_at_ms && s->ping_at_ms < d) d = s->ping_at_ms;
    return d;
}

int session_create(server *srv, const http_req *req, int transport, char sid[UTIL_ID_LEN + 1],
                   uint64_t *cursor) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    size_t n = 0;
    if ((rc = store_session_count(t, &n)) == 0 && n >= (size_t)srv->cfg.max_sessions) {
        store_abort(t);
        log_warn("refusing a handshake: max_sessions (%ld) reached", srv->cfg.max_sessions);
        return -EBUSY;
    }
    store_session s;
    memset(&s, 0, sizeof s);
    if (!rc) rc = util_random_id(sid);
    int64_t now = util_now_ms();
    s.version = STORE_SESSION_VERSION;
    s.eio = 4;
    s.transport = (uint8_t)transport;
    s.state = STORE_S_OPEN;
    s.created_ms = now;
    s.ping_at_ms = now + srv->cfg.ping_interval;
    if (transport == STORE_T_WEBSOCKET) s.owner_pid = getpid();
    s.bare = req->bare ? 1 : 0;
    http_req r = *req; /* the address as trusted_proxies lets us see it */
    char addr[sizeof s.remote];
    r.remote_addr = access_client_addr(srv, req, addr, sizeof addr);
    snprintf(s.remote, sizeof s.remote, "%s", addr);
    if (!rc) rc = store_log_bounds(t, NULL, &s.cursor);
    s.acked = s.cursor; /* nothing before it is for this session */
    if (!rc) rc = store_session_put(t, sid, &s);
    if (!rc) {
        char *hs = http_handshake_json(&r, now);
        rc = hs ? store_handshake_put(t, sid, hs, strlen(hs)) : -ENOMEM;
        free(hs);
    }
    if (rc) {
        store_abort(t);
        return rc;
    }
    *cursor = s.cursor;
    if ((rc = store_commit(t)) == 0) stats_add(STATS_HANDSHAKES + stats_tr(transport == STORE_T_WEBSOCKET), 1);
    return rc;
}

int session_packet(server *srv, store_txn *t, const char *sid, store_session *s,
                   const eio_packet *pk, uint64_t *seq) {
    switch (pk->type) {
    case EIO_PONG:
        s->ping_at_ms = util_now_ms() + srv->cfg.ping_interval;
        return 0;
    case EIO_CLOSE:
        return SESSION_CLOSE_CLIENT;
    case EIO_MESSAGE:
        if (s->bare) return inbox_message(t, sid, pk->data, pk->len, pk->binary, NULL);
        return socketio_on_message(srv, t, sid, s, pk->data, pk->len, pk->binary, seq);
    case EIO_PING: /* v4 clients do not ping: wrong heartbeat direction */
        return SESSION_CLOSE_PARSE_ERROR;
    default: /* open, upgrade, noop: nothing to do */
        return 0;
    }
}


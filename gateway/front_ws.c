/* front_ws: the Engine.IO WebSocket transport of sio-front.
 *
 * A connection is a ws_conn (the wsi's opaque user data, which survives
 * lws's protocol rebinding during the upgrade):
 *   - GET ?EIO=4&transport=websocket          -> WEBSOCKET_NEW: WS_OPEN at
 *     once, first frame the open packet;
 *   - GET ?...&transport=websocket&sid=S      -> WEBSOCKET_UPGRADE:
 *     WS_PROBING until '2probe' / '5', then WS_OPEN;
 *   - rejected                                -> HTTP 400, body the message.
 * The heartbeat lives here, in memory: '2' every ping_interval after the
 * last pong, close when no '3' within ping_timeout.  Everything else that
 * changes shared state goes through server/websocket.h.
 *
 * Send path: a ring of refcounted messages per connection, bounded in bytes
 * (--max-queue, front_conn.h).  Written in LWS_CALLBACK_SERVER_WRITEABLE while the socket
 * takes it; big messages go out in 64 KiB fragments so lws never has to
 * copy more than one fragment of a slow client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "front_ws.h"

#include "front_guard.h"

#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"
#include "proto/eio_parser.h"
#include "server/websocket.h"

#define WS_CHUNK 65536              /* payload bytes per lws_write */
#define WS_BUDGET_BYTES (512 * 1024) /* per writeable callback */
#define WS_BUDGET_MSGS 256
/* lws' private opcode for a close frame (lib/roles/ws/private-lib-roles-ws.h):
 * lws_close_reason() always writes a status code, and Node closes without. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)
/* RFC 6455's registry: "Try Again Later" (lws has no name for it). */
#define WS_CLOSE_TRY_AGAIN_LATER 1013
#define RETRY_CLOSE_MS 1000

/* A session whose end could not be written (the store was full): its
 * record would stay, owned by this live process, with its sockets in their
 * rooms; the front writes it again every RETRY_CLOSE_MS until it lands. */
typedef struct pending_close {
    char sid[UTIL_ID_LEN + 1];
    int reason;
    uint64_t acked;
} pending_close;

struct ws_front {
    server *srv;
    ftimers *timers;
    ftimer t_acked;      /* connection state recovery: saves what reached clients */
    deliver *dl;
    fconns *pool;
    int deflate;         /* permessage-deflate is on: one message per write */
    int stopping;        /* new WebSockets are refused */
    ws_conn *all;        /* every WebSocket connection, any state */
    size_t nall;
    pending_close *pend; /* ends not written yet */
    size_t npend, cappend;
    ftimer t_pend;
    fmsg ping;           /* the '2' every connection is sent (static) */
    unsigned char ping_buf[LWS_PRE + 2];
    unsigned char scratch[LWS_PRE + WS_CHUNK];
};

/* ---- what reached the clients (connection state recovery) ------------------------
 * A pong answers a ping queued after everything the connection had been
 * given: what was for it up to the delivery position at that ping reached
 * the client.  Saved in the session records once a second, so that a
 * socket recovered after this front died needs nothing older from the log. */

#define ACKED_SAVE_MS 1000

static void acked_cb(ftimer *ft) {
    ws_front *w = lws_container_of(ft, ws_front, t_acked);
    char (*sids)[UTIL_ID_LEN + 1] = NULL;
    uint64_t *acked = NULL;
    size_t n = 0, cap = 0, capa = 0;
    for (ws_conn *c = w->all; c; c = c->anext) {
        if (!c->acked_dirty || c->state != WS_OPEN) continue;
        if (util_grow(&sids, &cap, n, sizeof *sids, 64) || util_grow(&acked, &capa, n, sizeof *acked, 64))
            break;
        strcpy(sids[n], c->sid);
        acked[n++] = c->acked;
        c->acked_dirty = 0;
    }
    int rc = n ? websocket_acked(w->srv, sids, acked, n) : 0;
    if (rc) log_warn("cannot record what reached %zu WebSocket client(s): %s", n, store_strerror(rc));
    free(sids);
    free(acked);
    if (!w->stopping) ftimer_set(w->timers, &w->t_acked, acked_cb, ACKED_SAVE_MS);
}

ws_front *ws_new(server *srv, ftimers *timers, deliver *dl, fconns *pool, int deflate) {
    ws_front *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->srv = srv;
    w->timers = timers;
    w->dl = dl;
    w->pool = pool;
    w->deflate = deflate;
    pool->direct = !deflate; /* compressed writes stay in lws's writeable callback */
    w->ping = (fmsg){UINT32_MAX, 0, 1, w->ping_buf + LWS_PRE};
    w->ping.data[0] = '2';
    if (srv->cfg.connection_state_recovery) ftimer_set(timers, &w->t_acked, acked_cb, ACKED_SAVE_MS);
    return w;
}

void ws_free(ws_front *w) {
    if (!w) return;
    ftimer_cancel(w->timers, &w->t_acked);
    ftimer_cancel(w->timers, &w->t_pend);
    free(w->pool->pending);
    w->pool->pending = NULL;
    w->pool->npending = w->pool->cappending = 0;
    free(w->pend);
    free(w);
}

size_t ws_count(const ws_front *w) { return w->nall; }

static void link_all(ws_front *w, ws_conn *c) {
    c->anext = w->all;
    c->aprev = NULL;
    if (w->all) w->all->aprev = c;
    w->all = c;
    w->nall++;
}

static void unlink_all(ws_front *w, ws_conn *c) {
    if (c->aprev) c->aprev->anext = c->anext;
    else if (w->all == c) w->all = c->anext;
    else return;
    if (c->anext) c->anext->aprev = c->aprev;
    c->aprev = c->anext = NULL;
    w->nall--;
}

/* ---- closing ---------------------------------------------------------------- */

static void pend_cb(ftimer *ft) {
    ws_front *w = lws_container_of(ft, ws_front, t_pend);
    size_t kept = 0;
    for (size_t i = 0; i < w->npend; i++) {
        int rc = websocket_closed(w->srv, w->pend[i].sid, w->pend[i].reason, w->pend[i].acked);
        if (rc && rc != STORE_NOTFOUND) w->pend[kept++] = w->pend[i];
        else log_info("session %s: its end is written now", w->pend[i].sid);
    }
    w->npend = kept;
    if (kept) ftimer_set(w->timers, &w->t_pend, pend_cb, RETRY_CLOSE_MS);
}

/* Ends session sid in the store; when that cannot be written now, again
 * later (pend_cb). */
static void end_session(ws_front *w, const char *sid, int reason, uint64_t acked) {
    int rc = websocket_closed(w->srv, sid, reason, acked);
    if (!rc || rc == STORE_NOTFOUND) return;
    log_warn("session %s: cannot write its end (%s): trying again every %d ms", sid,
             store_strerror(rc), RETRY_CLOSE_MS);
    if (util_grow(&w->pend, &w->cappend, w->npend, sizeof *w->pend, 16)) return;
    strcpy(w->pend[w->npend].sid, sid);
    w->pend[w->npend].reason = reason;
    w->pend[w->npend++].acked = acked;
    if (!w->t_pend.slot) ftimer_set(w->timers, &w->t_pend, pend_cb, RETRY_CLOSE_MS);
}

/* Tells the server the connection is over (once) and takes it out of the
 * delivery and reader bookkeeping. */
static void release(ws_conn *c, int reason) {
    if (c->state == WS_CLOSING) return;
    if (!c->server_done) {
        c->server_done = 1;
        if (c->state == WS_PROBING) websocket_upgrade_abort(c->owner->srv, c->sid);
        else end_session(c->owner, c->sid, reason, c->acked);
    }
    if (c->state == WS_PROBING) deliver_unhold(c->owner->dl, c->accept_cursor);
    else deliver_remove(c->owner->dl, c);
    ftimer_cancel(c->owner->timers, &c->t_ping);
    ftimer_cancel(c->owner->timers, &c->t_connect);
    ftimer_cancel(c->owner->timers, &c->t_upgrade);
    c->state = WS_CLOSING;
}

void ws_close(ws_conn *c, int reason) {
    if (c->state == WS_CLOSING) return;
    int was = c->state;
    release(c, reason);
    if (was == WS_OPEN && reason != SESSION_CLOSE_SERVER)
        log_debug("session %s closed: %s", c->sid, server_close_reason(reason));
    if (!c->established || reason == SESSION_CLOSE_LAGGING || reason == SESSION_CLOSE_TRANSPORT) {
        conn_clear(c);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    /* The server's own close lets queued packets (its DISCONNECT) go first. */
    if (reason != SESSION_CLOSE_SERVER) conn_clear(c);
    c->close_frame = 1;
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void ws_shutdown_all(ws_front *w) {
    w->stopping = 1;
    for (ws_conn *c = w->all; c; c = c->anext) ws_close(c, SESSION_CLOSE_SERVER);
}

void ws_destroy(ws_conn *c) {
    if (c->established) fguard_attach(c->fd, NULL);
    if (c->state != WS_CLOSING) {
        if (c->state == WS_OPEN)
            log_debug("session %s: WebSocket gone (%s)", c->sid,
                      c->peer_closed ? "closed by the client" : "connection lost");
        release(c, c->peer_closed ? SESSION_CLOSE_CLIENT : SESSION_CLOSE_TRANSPORT);
    }
    conn_clear(c);
    conn_forget(c);
    free(c->q);
    buf_free(&c->rx);
    free(c->socks);
    unlink_all(c->owner, c);
    free(c);
}

/* ---- timers ---------------------------------------------------------------- */

/* 1 when c's session record is gone or closed (the server closed it). */
static int session_gone(ws_conn *c, store_session *out) {
    store_txn *t;
    if (store_begin(c->owner->srv->st, 0, &t)) return 0;
    store_session s;
    int rc = store_session_get(t, c->sid, &s);
    store_abort(t);
    if (rc == 0 && out) *out = s;
    return rc == STORE_NOTFOUND || (rc == 0 && s.state == STORE_S_CLOSED);
}

static void ping_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_ping);
    if (c->state != WS_OPEN) return;
    if (c->awaiting_pong) {
        ws_close(c, SESSION_CLOSE_PING_TIMEOUT);
        return;
    }
    if (session_gone(c, NULL)) { /* closed by the server without a record for it */
        c->server_done = 1;
        ws_close(c, SESSION_CLOSE_SERVER);
        return;
    }
    deliver_invalidate(c); /* reload its sockets now and then */
    c->ping_cursor = deliver_cursor(c->owner->dl); /* queued before the ping */
    if (conn_queue(c, &c->owner->ping)) {
        log_warn("session %s dropped: %s (send queue %zu bytes, limit %zu)", c->sid,
                 server_close_reason(SESSION_CLOSE_LAGGING), c->qbytes, c->pool->max_queue);
        ws_close(c, SESSION_CLOSE_LAGGING);
        return;
    }
    c->awaiting_pong = 1;
    ftimer_set(c->owner->timers, &c->t_ping, ping_cb, c->owner->srv->cfg.ping_timeout);
}

static void connect_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_connect);
    if (c->state != WS_OPEN) return;
    store_session s;
    if (session_gone(c, &s)) {
        c->server_done = 1;
        ws_close(c, SESSION_CLOSE_SERVER);
    } else if (!s.ever_connected) {
        ws_close(c, SESSION_CLOSE_CONNECT_TIMEOUT);
    }
}

static void upgrade_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_upgrade);
    if (c->state != WS_PROBING) return;
    log_info("session %s: no upgrade packet within %ld ms: closing the probing WebSocket", c->sid,
             c->owner->srv->cfg.upgrade_timeout);
    ws_close(c, 0);
}

/* ---- accepting ---------------------------------------------------------------- */

/* A WebSocket for a session that already has one (or is getting one)? */
static int second_websocket(server *srv, struct lws *wsi) {
    char sid[64];
    const char *v = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof sid);
    if (!v || !util_is_id(v, strlen(v))) return 0;
    store_txn *t;
    if (store_begin(srv->st, 0, &t)) return 0;
    store_session s;
    int rc = store_session_get(t, v, &s);
    store_abort(t);
    return rc == 0 && s.state != STORE_S_CLOSED &&
           (s.transport == STORE_T_WEBSOCKET || s.state == STORE_S_UPGRADING || s.upgrade_ms);
}

/* A new connection record for wsi, linked and set as its user data. */
static ws_conn *conn_new(ws_front *w, struct lws *wsi, int state) {
    ws_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = OBJ_WS;
    c->wsi = wsi;
    c->owner = w;
    c->pool = w->pool;
    c->state = state;
    link_all(w, c);
    lws_set_opaque_user_data(wsi, c);
    return c;
}

/* The answer to an invalid WebSocket handshake (see websocket_handshake_error). */
typedef struct ws_refusal {
    int status;
    const char *msg, *extra;
} ws_refusal;

/* Asks the server to accept the Upgrade request: WEBSOCKET_NEW,
 * WEBSOCKET_UPGRADE (sid, open, *cursor set) or WEBSOCKET_REJECT (*code;
 * *second: the session has a WebSocket already; *hs the answer when *code
 * is WEBSOCKET_BAD_HANDSHAKE). */
static int accept_request(ws_front *w, struct lws *wsi, int route, const char *method,
                          const char *remote, char sid[UTIL_ID_LEN + 1], buf *open, uint64_t *cursor,
                          int *code, int *second, ws_refusal *hs) {
    char origin[512] = "", key[64], version[32];
    char *query = flws_query(wsi), *url = flws_url(wsi, query);
    int qok = query && url;
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0) origin[0] = 0;
    int has_key = lws_hdr_copy(wsi, key, sizeof key, WSI_TOKEN_KEY) >= 0 && lws_hdr_total_length(wsi, WSI_TOKEN_KEY);
    int has_version = lws_hdr_copy(wsi, version, sizeof version, WSI_TOKEN_VERSION) >= 0 &&
                      lws_hdr_total_length(wsi, WSI_TOKEN_VERSION);
    flws_hdrs hdrs;
    flws_hdrs_load(wsi, &hdrs);
    http_req req = {.method = method,
                    .query = qok ? query : "",
                    .origin = origin[0] ? origin : NULL,
                    .remote_addr = remote,
                    .content_length = -1,
                    .upgrade = 1,
                    .bare = route == 2,
                    .url = qok ? url : "",
                    .headers = hdrs.kv,
                    .ws_key = has_key ? key : NULL,
                    .ws_version = has_version ? version : NULL};
    *code = 3;
    int kind = qok ? websocket_accept(w->srv, &req, sid, open, cursor, code) : WEBSOCKET_REJECT;
    flws_hdrs_free(&hdrs);
    *second = kind == WEBSOCKET_REJECT && *code == 3 && second_websocket(w->srv, wsi);
    if (kind == WEBSOCKET_REJECT && !*second && *code != WEBSOCKET_FORBIDDEN) {
        char esc[256];
        const char *why = http_error_message(*code);
        if (*code == WEBSOCKET_BAD_HANDSHAKE) {
            hs->status = websocket_handshake_error(&req, &hs->msg, &hs->extra);
            why = hs->msg;
        }
        log_info("refused a WebSocket from %s: %s (query \"%s\")", remote, why,
                 log_escape(esc, sizeof esc, req.query, strlen(req.query)));
    }
    free(query);
    free(url);
    return kind;
}

int ws_confirm_upgrade(ws_front *w, struct lws *wsi) {
    server *e = w->srv;
    char uri[1024], remote[64] = "", *uptr = NULL;
    int route = 0, ulen = 0;
    /* any method: a POST with Upgrade headers is refused as Node refuses it */
    int meth = lws_http_get_uri_and_method(wsi, &uptr, &ulen);
    if (meth < 0 || !uptr || ulen <= 0 || (size_t)ulen >= sizeof uri) ulen = 0;
    memcpy(uri, uptr ? uptr : "", (size_t)ulen);
    uri[ulen] = 0;
    if (!ulen || !(route = http_route(e, uri))) {
        flws_respond(wsi, 404, "text/plain", "Not Found", 9, NULL);
        return 1;
    }
    lws_get_peer_simple(wsi, remote, sizeof remote);
    if (w->stopping) {
        flws_respond(wsi, 503, "text/plain", "Shutting down", 13, NULL);
        return 1;
    }
    char sid[UTIL_ID_LEN + 1];
    buf open = BUF_INIT;
    uint64_t cursor = 0;
    int code, second;
    ws_refusal hs = {0};
    int kind = accept_request(w, wsi, route, flws_method_name(meth), remote, sid, &open, &cursor, &code,
                              &second, &hs);
    if (second) {
        /* Node accepts a second WebSocket for a session that is upgrading or
         * upgraded, and closes it at once (clients expect a close, not an
         * HTTP error); the first one is untouched. */
        buf_free(&open);
        ws_conn *c = conn_new(w, wsi, WS_CLOSING);
        if (!c) return -1;
        c->server_done = 1;
        c->close_frame = 1;
        return 0;
    }
    if (kind == WEBSOCKET_REJECT && code == WEBSOCKET_FULL) { /* as polling answers */
        static const char full[] = "{\"code\":4,\"message\":\"Store full\"}";
        buf_free(&open);
        flws_respond(wsi, 503, "application/json", full, sizeof full - 1, NULL);
        return 1;
    }
    if (kind == WEBSOCKET_REJECT && code == WEBSOCKET_FORBIDDEN) { /* body in open */
        int rc = flws_respond(wsi, 403, "application/json", open.data, open.len, NULL);
        buf_free(&open);
        (void)rc;
        return 1;
    }
    if (kind == WEBSOCKET_REJECT && code == WEBSOCKET_BAD_HANDSHAKE) { /* as Node's ws package answers */
        buf_free(&open);
        flws_respond(wsi, hs.status, "text/html", hs.msg, strlen(hs.msg), hs.extra);
        return 1;
    }
    if (kind == WEBSOCKET_REJECT) {
        const char *msg = http_error_message(code);
        buf_free(&open);
        flws_respond(wsi, code == 4 ? 403 : 400, "text/html", msg, strlen(msg), NULL);
        return 1;
    }
    ws_conn *c = conn_new(w, wsi, kind == WEBSOCKET_NEW ? WS_OPEN : WS_PROBING);
    if (!c) {
        if (kind == WEBSOCKET_NEW) websocket_closed(e, sid, SESSION_CLOSE_TRANSPORT, 0);
        else websocket_upgrade_abort(e, sid);
        buf_free(&open);
        return -1;
    }
    strcpy(c->sid, sid);
    c->rx.limit = (size_t)e->cfg.max_http_buffer_size + 1;
    if (kind == WEBSOCKET_NEW) {
        c->cursor = cursor;
        conn_queue_own(c, fmsg_text(0, open.data, open.len));
    } else {
        c->accept_cursor = cursor;
        deliver_hold(w->dl, cursor);
    }
    buf_free(&open);
    return 0;
}

int ws_established(struct lws *wsi, ws_conn *c) {
    server *e = c->owner->srv;
    c->established = 1;
    c->fd = lws_get_socket_fd(wsi);
    fguard_attach(c->fd, c);
    if (c->state == WS_CLOSING) { /* accepted only to be closed */
        lws_callback_on_writable(wsi);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5);
        return 0;
    }
    if (c->state == WS_OPEN) {
        deliver_add(c->owner->dl, c);
        ftimer_set(c->owner->timers, &c->t_ping, ping_cb, e->cfg.ping_interval);
        ftimer_set(c->owner->timers, &c->t_connect, connect_cb, e->cfg.connect_timeout);
        log_debug("session %s: new WebSocket session", c->sid);
    } else if (c->state == WS_PROBING) {
        ftimer_set(c->owner->timers, &c->t_upgrade, upgrade_cb, e->cfg.upgrade_timeout);
    }
    if (c->qlen) lws_callback_on_writable(wsi);
    return 0;
}

/* ---- receiving ------------------------------------------------------------------- */

/* Ends the session and closes the WebSocket with a status code (a close
 * frame with it and a reason, then the connection). */
static void close_with_status(ws_conn *c, int status) {
    release(c, SESSION_CLOSE_TRANSPORT);
    conn_clear(c);
    buf_free(&c->rx);
    /* Read no more; the close frame goes out when writable (lws would kill
     * the connection without it if more data came first). */
    c->close_code = status;
    lws_rx_flow_control(c->wsi, 0);
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void ws_close_status(ws_conn *c, int status) {
    if (c->close_sent || c->close_code) return;
    if (status == LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE)
        log_warn("session %s: message over max_http_buffer_size (%ld bytes): closing with 1009", c->sid,
                 c->owner->srv->cfg.max_http_buffer_size);
    else
        log_info("session %s: WebSocket protocol error from the client: closing with %d", c->sid, status);
    close_with_status(c, status);
}

static void upgrade_done(ws_conn *c) {
    server *e = c->owner->srv;
    uint64_t cur = 0;
    int rc = websocket_upgraded(e, c->sid, &cur);
    if (rc) {
        log_info("session %s: upgrade failed (%s): closing the WebSocket", c->sid,
                 rc == STORE_NOTFOUND ? "session closed meanwhile" : store_strerror(rc));
        c->server_done = 1; /* nothing to undo */
        ws_close(c, 0);
        return;
    }
    /* From here the session is ours. */
    ftimer_cancel(c->owner->timers, &c->t_upgrade);
    deliver_unhold(c->owner->dl, c->accept_cursor);
    c->state = WS_OPEN;
    store_session ss;
    rc = deliver_upgraded(c->owner->dl, c, cur, &ss);
    if (rc) {
        if (rc == SESSION_CLOSE_LAGGING)
            log_warn("session %s dropped at upgrade: %s", c->sid, server_close_reason(rc));
        ws_close(c, rc);
        return;
    }
    deliver_add(c->owner->dl, c);
    int64_t now = util_now_ms(), due;
    if (ss.ping_sent_ms == ss.ping_at_ms) { /* a ping went out over polling */
        c->awaiting_pong = 1;
        due = ss.ping_at_ms + e->cfg.ping_timeout;
    } else {
        due = ss.ping_at_ms;
    }
    ftimer_set(c->owner->timers, &c->t_ping, ping_cb, due - now);
    if (!ss.ever_connected)
        ftimer_set(c->owner->timers, &c->t_connect, connect_cb, ss.created_ms + e->cfg.connect_timeout - now);
    log_debug("session %s upgraded to WebSocket (cursor %llu)", c->sid, (unsigned long long)c->cursor);
}

static void on_message(ws_conn *c, const uint8_t *data, size_t len, int binary) {
    server *e = c->owner->srv;
    eio_packet pk;
    stats_add(STATS_PACKETS_IN + STATS_T_WEBSOCKET, 1);
    stats_add(STATS_BYTES_IN + STATS_T_WEBSOCKET, len);
    if (binary) {
        pk = (eio_packet){EIO_MESSAGE, 1, data, len};
    } else if (eio_decode_text(data, len, &pk)) {
        char esc[64];
        log_info("session %s: invalid packet \"%s\": closing", c->sid,
                 log_escape(esc, sizeof esc, (const char *)data, len));
        ws_close(c, SESSION_CLOSE_PARSE_ERROR);
        return;
    }
    if (c->state == WS_PROBING) {
        if (!binary && pk.type == EIO_PING && pk.len == 5 && !memcmp(pk.data, "probe", 5)) {
            int rc = websocket_probe(e, c->sid);
            if (rc) {
                log_info("session %s: probe refused (%s)", c->sid, store_strerror(rc));
                c->server_done = rc == STORE_NOTFOUND;
                ws_close(c, 0);
            } else {
                conn_queue_own(c, fmsg_text('3', "probe", 5));
            }
        } else if (!binary && pk.type == EIO_UPGRADE) {
            upgrade_done(c);
        } else {
            log_info("session %s: unexpected packet on the probing WebSocket: closing it", c->sid);
            ws_close(c, 0);
        }
        return;
    }
    if (c->state != WS_OPEN) return;
    if (pk.type == EIO_PONG) {
        if (c->awaiting_pong) {
            c->awaiting_pong = 0;
            if (c->ping_cursor > c->acked) {
                c->acked = c->ping_cursor;
                c->acked_dirty = 1;
            }
            ftimer_set(c->owner->timers, &c->t_ping, ping_cb, e->cfg.ping_interval);
        }
        return;
    }
    if (pk.type == EIO_CLOSE) {
        ws_close(c, SESSION_CLOSE_CLIENT);
        return;
    }
    int rc = websocket_packet(e, c->sid, &pk);
    deliver_invalidate(c); /* CONNECT / DISCONNECT change its sockets */
    if (rc > 0) {
        if (rc == SESSION_CLOSE_PARSE_ERROR) log_info("session %s: protocol violation: closing", c->sid);
        ws_close(c, rc);
    } else if (rc == STORE_NOTFOUND) { /* the server closed it */
        c->server_done = 1;
        ws_close(c, SESSION_CLOSE_SERVER);
    } else if (store_full(rc)) {
        /* No room for the packet: nothing of it was kept.  Dropping it
         * quietly would leave the client sending into a void; closing with
         * 1013 (Try Again Later) tells it: it reconnects with its backoff,
         * its handshakes get 503 until stated has made room, and what its
         * application emits meanwhile waits in the client's buffer instead
         * of being lost one packet after another.  As a polling client
         * whose POST got 503 does. */
        char w[96];
        snprintf(w, sizeof w, "a WebSocket message of session %s (closing it: 1013)", c->sid);
        server_warn_full(w, rc);
        close_with_status(c, WS_CLOSE_TRY_AGAIN_LATER);
    } else if (rc < 0) {
        log_error("session %s: packet failed: %s", c->sid, store_strerror(rc));
        ws_close(c, SESSION_CLOSE_TRANSPORT);
    }
}

int ws_receive(struct lws *wsi, ws_conn *c, const void *in, size_t len) {
    if (c->state == WS_CLOSING) return 0;
    size_t max = (size_t)c->owner->srv->cfg.max_http_buffer_size;
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    if (first) {
        buf_reset(&c->rx);
        c->rx_binary = lws_frame_is_binary(wsi);
    }
    size_t have = first ? 0 : c->rx.len;
    if (have + len + lws_remaining_packet_payload(wsi) > max) {
        char remote[64] = "";
        lws_get_peer_simple(wsi, remote, sizeof remote);
        log_warn("session %s (%s): message over max_http_buffer_size (%zu bytes): closing with 1009",
                 c->sid, remote, max);
        close_with_status(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        return 0;
    }
    if (first && final) {
        on_message(c, in, len, c->rx_binary);
        return 0;
    }
    if (buf_append(&c->rx, in, len)) {
        log_error("session %s: out of memory reassembling a message", c->sid);
        ws_close(c, SESSION_CLOSE_TRANSPORT);
        return 0;
    }
    if (!final) return 0;
    on_message(c, (const uint8_t *)c->rx.data, c->rx.len, c->rx_binary);
    buf_free(&c->rx); /* an idle connection keeps no buffer */
    return 0;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Writes our close frame: empty (the client sees 1005, no status, as with
 * Node) or with c->close_code and a reason.  Then, like Node, read and drop
 * whatever still comes until the client closes too (its close frame ends
 * it, see ws_peer_close) or a short timeout: hanging up on a client that is
 * still sending would reset the connection and lose the close frame. */
static int send_close(struct lws *wsi, ws_conn *c) {
    /* 1009 and 1002 go without a reason, as Node's ws sends them */
    const char *why = c->close_code == WS_CLOSE_TRY_AGAIN_LATER ? "Store full" : "";
    unsigned char *p = c->owner->scratch + LWS_PRE;
    size_t n = 0;
    if (c->close_code) {
        p[0] = (unsigned char)(c->close_code >> 8);
        p[1] = (unsigned char)c->close_code;
        memcpy(p + 2, why, strlen(why));
        n = 2 + strlen(why);
    }
    int error = c->close_code && c->close_code != WS_CLOSE_TRY_AGAIN_LATER;
    c->close_code = 0;
    c->close_frame = 0;
    c->close_sent = 1;
    conn_clear(c);
    if (lws_write(wsi, p, n, WS_WRITE_CLOSE) < 0) return -1;
    /* A protocol error (1002, 1009): like Node's ws, end our side at once
     * (FIN after the close frame) while what the client still sends is read
     * and dropped (front_guard.c) */
    if (error) shutdown(lws_get_socket_fd(wsi), SHUT_WR);
    lws_rx_flow_control(wsi, 1);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 3);
    return 0;
}

/* An unmasked, final frame header; returns its length (2, 4 or 10). */
static size_t frame_header(unsigned char *h, int binary, size_t len) {
    h[0] = binary ? 0x82 : 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

int ws_peer_close(ws_conn *c) {
    c->peer_closed = 1;
    return c->close_sent ? -1 : 0; /* our close was first: this is the answer */
}

/* Writes what this loop turn queued, now: one poll() turn less per
 * message than waiting for lws's writeable callback.  A connection whose
 * socket still holds an unsent part (lws_partial_buffered) or that is
 * closing goes through the callback as before; so does what is left over
 * after one writeable's budget (ws_writeable asks for it).  Outside any lws
 * callback: a failed write kills the connection asynchronously. */
void ws_flush(ws_front *w) {
    fconns *p = w->pool;
    for (size_t i = 0; i < p->npending; i++) {
        ws_conn *c = p->pending[i];
        if (!c || !c->qlen) continue;
        if (c->state == WS_CLOSING || c->close_code || c->close_frame || c->close_sent || c->peer_closed ||
            lws_partial_buffered(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            continue;
        }
        if (ws_writeable(c->wsi, c) < 0) {
            conn_clear(c);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    p->npending = 0;
}

int ws_writeable(struct lws *wsi, ws_conn *c) {
    size_t bytes = 0, sent = 0;
    int n = 0, done = 0;
    if (c->close_sent) return 0; /* draining: waiting for the client to go */
    if (c->close_code) return send_close(wsi, c);
    while (c->qlen) {
        if (n && (n >= WS_BUDGET_MSGS || bytes >= WS_BUDGET_BYTES || c->owner->deflate ||
                  lws_send_pipe_choked(wsi)))
            break;
        fmsg *m = c->q[c->qhead];
        if (!c->owner->deflate && !c->qoff && m->len + 10 <= WS_CHUNK) {
            /* Small messages: frame them ourselves, many per write (one
             * send() for a batch instead of one per message).  Without an
             * extension a server frame is just header + payload. */
            unsigned char *b = c->owner->scratch + LWS_PRE;
            size_t o = 0;
            while (c->qlen && !c->qoff) {
                m = c->q[c->qhead];
                if (m->len + 10 > WS_CHUNK - o) break;
                o += frame_header(b + o, m->binary, m->len);
                memcpy(b + o, m->data, m->len);
                o += m->len;
                sent += m->len;
                conn_pop(c);
                n++;
                done++;
            }
            if (lws_write(wsi, b, o, LWS_WRITE_RAW) < 0) return -1;
            bytes += o;
            continue;
        }
        size_t rem = m->len - c->qoff;
        size_t chunk = rem > WS_CHUNK ? WS_CHUNK : rem;
        int last = chunk == rem;
        unsigned char *p = m->data + c->qoff;
        if (c->qoff) { /* the bytes before p belong to the message: use the scratch */
            memcpy(c->owner->scratch + LWS_PRE, p, chunk);
            p = c->owner->scratch + LWS_PRE;
        }
        int flags = c->qoff ? LWS_WRITE_CONTINUATION : m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
        if (!last) flags |= LWS_WRITE_NO_FIN;
        if (lws_write(wsi, p, chunk, (enum lws_write_protocol)flags) < 0) return -1;
        n++;
        bytes += chunk;
        sent += chunk;
        if (last) conn_pop(c), done++;
        else c->qoff += chunk, c->progress_ms = util_now_ms(); /* taking bytes (flow control) */
    }
    stats_add(STATS_PACKETS_OUT + STATS_T_WEBSOCKET, (uint64_t)done);
    stats_add(STATS_BYTES_OUT + STATS_T_WEBSOCKET, sent);
    if (c->qlen) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->state == WS_CLOSING && c->close_frame) return send_close(wsi, c);
    return 0;
}

/* front_ws: the Engine.IO WebSocket transport of sio-front.
 *
 * A connection is a ws_conn (the wsi's opaque user data, which survives
 * lws's protocol rebinding during the upgrade):
 *   - GET ?EIO=4&transport=websocket          -> ENGINE_WS_NEW: WS_OPEN at
 *     once, first frame the open packet;
 *   - GET ?...&transport=websocket&sid=S      -> ENGINE_WS_UPGRADE:
 *     WS_PROBING until '2probe' / '5', then WS_OPEN;
 *   - rejected                                -> HTTP 400, body the message.
 * The heartbeat lives here, in memory: '2' every ping_interval after the
 * last pong, close when no '3' within ping_timeout.  Everything else that
 * changes shared state goes through engine_ws_*.
 *
 * Send path: a ring of refcounted messages per connection, bounded in bytes
 * (--max-queue).  Written in LWS_CALLBACK_SERVER_WRITEABLE while the socket
 * takes it; big messages go out in 64 KiB fragments so lws never has to
 * copy more than one fragment of a slow client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/eio_parser.h"
#include "front.h"
#include "base/log.h"
#include "base/util.h"

#define WS_CHUNK 65536              /* payload bytes per lws_write */
#define WS_BUDGET_BYTES (512 * 1024) /* per writeable callback */
#define WS_BUDGET_MSGS 256
/* lws' private opcode for a close frame (lib/roles/ws/private-lib-roles-ws.h):
 * lws_close_reason() always writes a status code, and Node closes without. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

static ws_conn *g_all; /* every WebSocket connection, any state */
static size_t g_nall;
static unsigned char g_scratch[LWS_PRE + WS_CHUNK];
static unsigned char g_ping_buf[LWS_PRE + 2];
static fmsg g_ping = {UINT32_MAX, 0, 1, NULL};

size_t ws_count(void) { return g_nall; }

static engine *E(void) { return &g_front.e; }

static void link_all(ws_conn *c) {
    c->anext = g_all;
    c->aprev = NULL;
    if (g_all) g_all->aprev = c;
    g_all = c;
    g_nall++;
}

static void unlink_all(ws_conn *c) {
    if (c->aprev) c->aprev->anext = c->anext;
    else if (g_all == c) g_all = c->anext;
    else return;
    if (c->anext) c->anext->aprev = c->aprev;
    c->aprev = c->anext = NULL;
    g_nall--;
}

/* ---- the send queue ---------------------------------------------------------- */

static void queue_pop(ws_conn *c) {
    fmsg *m = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->qbytes -= m->len;
    c->qoff = 0;
    fmsg_unref(m);
    c->progress_ms = util_now_ms();
    deliver_account(c);
    deliver_drained(c);
}

static void queue_clear(ws_conn *c) {
    while (c->qlen) queue_pop(c);
}

int ws_queue(ws_conn *c, fmsg *m) {
    if (c->state == WS_CLOSING) return 0;
    if (c->qlen && c->qbytes + m->len > g_front.o.max_queue) return -1;
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 8;
        fmsg **q = malloc(cap * sizeof *q);
        if (!q) return -1;
        for (size_t i = 0; i < c->qlen; i++) q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    if (m->refs != UINT32_MAX) m->refs++;
    c->q[(c->qhead + c->qlen) % c->qcap] = m;
    if (c->qlen == 0) c->progress_ms = util_now_ms();
    c->qlen++;
    c->qbytes += m->len;
    deliver_account(c);
    if (c->established && c->qlen == 1) lws_callback_on_writable(c->wsi);
    return 0;
}

/* Queues a message built for this connection only (drops our reference). */
static int queue_own(ws_conn *c, fmsg *m) {
    if (!m) return -1;
    int rc = ws_queue(c, m);
    fmsg_unref(m);
    return rc;
}

/* ---- closing ---------------------------------------------------------------- */

/* Tells the engine the connection is over (once) and takes it out of the
 * delivery and reader bookkeeping. */
static void release(ws_conn *c, int reason) {
    if (c->state == WS_CLOSING) return;
    if (!c->engine_done) {
        c->engine_done = 1;
        if (c->state == WS_PROBING) engine_ws_upgrade_abort(E(), c->sid);
        else engine_ws_closed(E(), c->sid, reason);
    }
    if (c->state == WS_PROBING) deliver_unhold(c->accept_cursor);
    else deliver_remove(c);
    ftimer_cancel(&c->t_ping);
    ftimer_cancel(&c->t_connect);
    ftimer_cancel(&c->t_upgrade);
    c->state = WS_CLOSING;
}

void ws_close(ws_conn *c, int reason) {
    if (c->state == WS_CLOSING) return;
    int was = c->state;
    release(c, reason);
    if (was == WS_OPEN && reason != ENGINE_CLOSE_SERVER)
        log_debug("session %s closed: %s", c->sid, engine_close_reason(reason));
    if (!c->established || reason == ENGINE_CLOSE_LAGGING || reason == ENGINE_CLOSE_TRANSPORT) {
        queue_clear(c);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    /* The server's own close lets queued packets (its DISCONNECT) go first. */
    if (reason != ENGINE_CLOSE_SERVER) queue_clear(c);
    c->close_frame = 1;
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void ws_shutdown_all(void) {
    for (ws_conn *c = g_all; c; c = c->anext) ws_close(c, ENGINE_CLOSE_SERVER);
}

void ws_destroy(ws_conn *c) {
    if (c->state != WS_CLOSING) {
        if (c->state == WS_OPEN)
            log_debug("session %s: WebSocket gone (%s)", c->sid,
                      c->peer_closed ? "closed by the client" : "connection lost");
        release(c, c->peer_closed ? ENGINE_CLOSE_CLIENT : ENGINE_CLOSE_TRANSPORT);
    }
    queue_clear(c);
    free(c->q);
    buf_free(&c->rx);
    free(c->socks);
    unlink_all(c);
    free(c);
}

/* ---- timers ---------------------------------------------------------------- */


/* 1 when the session record is gone or closed (the server closed it). */
static int session_gone(const char *sid, store_session *out) {
    store_txn *t;
    if (store_begin(E()->st, 0, &t)) return 0;
    store_session s;
    int rc = store_session_get(t, sid, &s);
    store_abort(t);
    if (rc == 0 && out) *out = s;
    return rc == STORE_NOTFOUND || (rc == 0 && s.state == STORE_S_CLOSED);
}

static void ping_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_ping);
    if (c->state != WS_OPEN) return;
    if (c->awaiting_pong) {
        ws_close(c, ENGINE_CLOSE_PING_TIMEOUT);
        return;
    }
    if (session_gone(c->sid, NULL)) { /* closed by the server without a record for it */
        c->engine_done = 1;
        ws_close(c, ENGINE_CLOSE_SERVER);
        return;
    }
    deliver_invalidate(c); /* reload its sockets now and then */
    if (ws_queue(c, &g_ping)) {
        log_warn("session %s dropped: %s (send queue %zu bytes, limit %zu)", c->sid,
                 engine_close_reason(ENGINE_CLOSE_LAGGING), c->qbytes, g_front.o.max_queue);
        ws_close(c, ENGINE_CLOSE_LAGGING);
        return;
    }
    c->awaiting_pong = 1;
    ftimer_set(&c->t_ping, ping_cb, E()->cfg.ping_timeout);
}

static void connect_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_connect);
    if (c->state != WS_OPEN) return;
    store_session s;
    if (session_gone(c->sid, &s)) {
        c->engine_done = 1;
        ws_close(c, ENGINE_CLOSE_SERVER);
    } else if (!s.ever_connected) {
        ws_close(c, ENGINE_CLOSE_CONNECT_TIMEOUT);
    }
}

static void upgrade_cb(ftimer *ft) {
    ws_conn *c = lws_container_of(ft, ws_conn, t_upgrade);
    if (c->state != WS_PROBING) return;
    log_info("session %s: no upgrade packet within %ld ms: closing the probing WebSocket", c->sid,
             E()->cfg.upgrade_timeout);
    ws_close(c, 0);
}

/* ---- accepting ---------------------------------------------------------------- */

/* A WebSocket for a session that already has one (or is getting one)? */
static int second_websocket(struct lws *wsi) {
    char sid[64];
    const char *v = lws_get_urlarg_by_name(wsi, "sid=", sid, sizeof sid);
    if (!v || !util_is_id(v, strlen(v))) return 0;
    store_txn *t;
    if (store_begin(E()->st, 0, &t)) return 0;
    store_session s;
    int rc = store_session_get(t, v, &s);
    store_abort(t);
    return rc == 0 && s.state != STORE_S_CLOSED &&
           (s.transport == STORE_T_WEBSOCKET || s.state == STORE_S_UPGRADING || s.upgrade_ms);
}

int ws_confirm_upgrade(struct lws *wsi) {
    engine *e = E();
    char uri[1024], query[2048], origin[512] = "", remote[64] = "", url[3200];
    int route = 0;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || !(route = front_route(uri))) {
        front_simple_response(wsi, 404, "text/plain", "Not Found", 9, NULL);
        return 1;
    }
    lws_get_peer_simple(wsi, remote, sizeof remote);
    if (g_front.stopping) {
        front_simple_response(wsi, 503, "text/plain", "Shutting down", 13, NULL);
        return 1;
    }
    int qok = front_query(wsi, query, sizeof query) == 0;
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0) origin[0] = 0;
    front_hdrs hdrs;
    front_hdrs_load(wsi, &hdrs);
    front_url(wsi, qok ? query : "", url, sizeof url);
    engine_http_req req = {.method = "GET",
                           .query = qok ? query : "",
                           .origin = origin[0] ? origin : NULL,
                           .remote_addr = remote,
                           .content_length = -1,
                           .upgrade = 1,
                           .bare = route == 2,
                           .url = url,
                           .headers = hdrs.kv};
    char sid[UTIL_ID_LEN + 1];
    buf open = BUF_INIT;
    uint64_t cursor = 0;
    int code = 3;
    int kind = qok ? engine_ws_accept(e, &req, sid, &open, &cursor, &code) : ENGINE_WS_REJECT;
    front_hdrs_free(&hdrs);
    if (kind == ENGINE_WS_REJECT && code == 3 && second_websocket(wsi)) {
        /* Node accepts a second WebSocket for a session that is upgrading or
         * upgraded, and closes it at once (clients expect a close, not an
         * HTTP error); the first one is untouched. */
        ws_conn *c = calloc(1, sizeof *c);
        buf_free(&open);
        if (!c) return -1;
        c->kind = OBJ_WS;
        c->wsi = wsi;
        c->state = WS_CLOSING;
        c->engine_done = 1;
        c->close_frame = 1;
        link_all(c);
        lws_set_opaque_user_data(wsi, c);
        return 0;
    }
    if (kind == ENGINE_WS_REJECT) {
        const char *msg = engine_error_message(code);
        char esc[256];
        log_info("refused a WebSocket from %s: %s (query \"%s\")", remote, msg,
                 log_escape(esc, sizeof esc, req.query, strlen(req.query)));
        buf_free(&open);
        front_simple_response(wsi, code == 4 ? 403 : 400, "text/html", msg, strlen(msg), NULL);
        return 1;
    }
    ws_conn *c = calloc(1, sizeof *c);
    if (!c) {
        if (kind == ENGINE_WS_NEW) engine_ws_closed(e, sid, ENGINE_CLOSE_TRANSPORT);
        else engine_ws_upgrade_abort(e, sid);
        buf_free(&open);
        return -1;
    }
    c->kind = OBJ_WS;
    c->wsi = wsi;
    strcpy(c->sid, sid);
    c->rx.limit = (size_t)e->cfg.max_http_buffer_size + 1;
    link_all(c);
    lws_set_opaque_user_data(wsi, c);
    if (kind == ENGINE_WS_NEW) {
        c->state = WS_OPEN;
        c->cursor = cursor;
        queue_own(c, fmsg_text(0, open.data, open.len));
    } else {
        c->state = WS_PROBING;
        c->accept_cursor = cursor;
        deliver_hold(cursor);
    }
    buf_free(&open);
    return 0;
}

int ws_established(struct lws *wsi, ws_conn *c) {
    engine *e = E();
    c->established = 1;
    if (c->state == WS_CLOSING) { /* accepted only to be closed */
        lws_callback_on_writable(wsi);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5);
        return 0;
    }
    if (!g_ping.data) {
        g_ping.data = g_ping_buf + LWS_PRE;
        g_ping.data[0] = '2';
    }
    if (c->state == WS_OPEN) {
        deliver_add(c);
        ftimer_set(&c->t_ping, ping_cb, e->cfg.ping_interval);
        ftimer_set(&c->t_connect, connect_cb, e->cfg.connect_timeout);
        log_debug("session %s: new WebSocket session", c->sid);
    } else if (c->state == WS_PROBING) {
        ftimer_set(&c->t_upgrade, upgrade_cb, e->cfg.upgrade_timeout);
    }
    if (c->qlen) lws_callback_on_writable(wsi);
    return 0;
}

/* ---- receiving ------------------------------------------------------------------- */

static void upgrade_done(ws_conn *c) {
    engine *e = E();
    uint64_t cur = 0;
    int rc = engine_ws_upgraded(e, c->sid, &cur);
    if (rc) {
        log_info("session %s: upgrade failed (%s): closing the WebSocket", c->sid,
                 rc == STORE_NOTFOUND ? "session closed meanwhile" : store_strerror(rc));
        c->engine_done = 1; /* nothing to undo */
        ws_close(c, 0);
        return;
    }
    /* From here the session is ours. */
    ftimer_cancel(&c->t_upgrade);
    deliver_unhold(c->accept_cursor);
    c->state = WS_OPEN;
    store_session ss;
    rc = deliver_upgraded(c, cur, &ss);
    if (rc) {
        if (rc == ENGINE_CLOSE_LAGGING)
            log_warn("session %s dropped at upgrade: %s", c->sid, engine_close_reason(rc));
        ws_close(c, rc);
        return;
    }
    deliver_add(c);
    int64_t now = util_now_ms(), due;
    if (ss.ping_sent_ms == ss.ping_at_ms) { /* a ping went out over polling */
        c->awaiting_pong = 1;
        due = ss.ping_at_ms + e->cfg.ping_timeout;
    } else {
        due = ss.ping_at_ms;
    }
    ftimer_set(&c->t_ping, ping_cb, due - now);
    if (!ss.ever_connected)
        ftimer_set(&c->t_connect, connect_cb, ss.created_ms + e->cfg.connect_timeout - now);
    log_debug("session %s upgraded to WebSocket (cursor %llu)", c->sid, (unsigned long long)c->cursor);
}

static void on_message(ws_conn *c, const uint8_t *data, size_t len, int binary) {
    engine *e = E();
    eio_packet pk;
    if (binary) {
        pk = (eio_packet){EIO_MESSAGE, 1, data, len};
    } else if (eio_decode_text(data, len, &pk)) {
        char esc[64];
        log_info("session %s: invalid packet \"%s\": closing", c->sid,
                 log_escape(esc, sizeof esc, (const char *)data, len));
        ws_close(c, ENGINE_CLOSE_PARSE_ERROR);
        return;
    }
    if (c->state == WS_PROBING) {
        if (!binary && pk.type == EIO_PING && pk.len == 5 && !memcmp(pk.data, "probe", 5)) {
            int rc = engine_ws_probe(e, c->sid);
            if (rc) {
                log_info("session %s: probe refused (%s)", c->sid, store_strerror(rc));
                c->engine_done = rc == STORE_NOTFOUND;
                ws_close(c, 0);
            } else {
                queue_own(c, fmsg_text('3', "probe", 5));
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
            ftimer_set(&c->t_ping, ping_cb, e->cfg.ping_interval);
        }
        return;
    }
    if (pk.type == EIO_CLOSE) {
        ws_close(c, ENGINE_CLOSE_CLIENT);
        return;
    }
    int rc = engine_ws_packet(e, c->sid, &pk);
    deliver_invalidate(c); /* CONNECT / DISCONNECT change its sockets */
    if (rc > 0) {
        if (rc == ENGINE_CLOSE_PARSE_ERROR) log_info("session %s: protocol violation: closing", c->sid);
        ws_close(c, rc);
    } else if (rc == STORE_NOTFOUND) { /* the server closed it */
        c->engine_done = 1;
        ws_close(c, ENGINE_CLOSE_SERVER);
    } else if (rc < 0) {
        log_error("session %s: packet failed: %s", c->sid, store_strerror(rc));
        ws_close(c, ENGINE_CLOSE_TRANSPORT);
    }
}

int ws_receive(struct lws *wsi, ws_conn *c, const void *in, size_t len) {
    if (c->state == WS_CLOSING) return 0;
    size_t max = (size_t)E()->cfg.max_http_buffer_size;
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
        release(c, ENGINE_CLOSE_TRANSPORT);
        queue_clear(c);
        buf_free(&c->rx);
        /* Read no more of it; the close frame goes out when writable (lws
         * would kill the connection without it if more data came first). */
        c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        lws_rx_flow_control(wsi, 0);
        lws_callback_on_writable(wsi);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5);
        return 0;
    }
    if (first && final) {
        on_message(c, in, len, c->rx_binary);
        return 0;
    }
    if (buf_append(&c->rx, in, len)) {
        log_error("session %s: out of memory reassembling a message", c->sid);
        ws_close(c, ENGINE_CLOSE_TRANSPORT);
        return 0;
    }
    if (!final) return 0;
    on_message(c, (const uint8_t *)c->rx.data, c->rx.len, c->rx_binary);
    if (c->rx.cap > WS_RX_KEEP) buf_free(&c->rx); /* do not keep big buffers around */
    else buf_reset(&c->rx);
    return 0;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Writes our close frame: empty (the client sees 1005, no status, as with
 * Node) or with c->close_code and a reason.  Then, like Node, read and drop
 * whatever still comes until the client closes too (its close frame ends
 * it, see ws_peer_close) or a short timeout: hanging up on a client that is
 * still sending would reset the connection and lose the close frame. */
static int send_close(struct lws *wsi, ws_conn *c) {
    static const char why[] = "Max payload size exceeded";
    unsigned char *p = g_scratch + LWS_PRE;
    size_t n = 0;
    if (c->close_code) {
        p[0] = (unsigned char)(c->close_code >> 8);
        p[1] = (unsigned char)c->close_code;
        memcpy(p + 2, why, sizeof why - 1);
        n = 2 + sizeof why - 1;
    }
    c->close_code = 0;
    c->close_frame = 0;
    c->close_sent = 1;
    queue_clear(c);
    if (lws_write(wsi, p, n, WS_WRITE_CLOSE) < 0) return -1;
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

int ws_writeable(struct lws *wsi, ws_conn *c) {
    size_t bytes = 0;
    int n = 0;
    if (c->close_sent) return 0; /* draining: waiting for the client to go */
    if (c->close_code) return send_close(wsi, c);
    while (c->qlen) {
        if (n && (n >= WS_BUDGET_MSGS || bytes >= WS_BUDGET_BYTES || g_front.o.deflate ||
                  lws_send_pipe_choked(wsi)))
            break;
        fmsg *m = c->q[c->qhead];
        if (!g_front.o.deflate && !c->qoff && m->len + 10 <= WS_CHUNK) {
            /* Small messages: frame them ourselves, many per write (one
             * send() for a batch instead of one per message).  Without an
             * extension a server frame is just header + payload. */
            unsigned char *b = g_scratch + LWS_PRE;
            size_t o = 0;
            while (c->qlen && !c->qoff) {
                m = c->q[c->qhead];
                if (m->len + 10 > WS_CHUNK - o) break;
                o += frame_header(b + o, m->binary, m->len);
                memcpy(b + o, m->data, m->len);
                o += m->len;
                queue_pop(c);
                n++;
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
            memcpy(g_scratch + LWS_PRE, p, chunk);
            p = g_scratch + LWS_PRE;
        }
        int flags = c->qoff ? LWS_WRITE_CONTINUATION : m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
        if (!last) flags |= LWS_WRITE_NO_FIN;
        if (lws_write(wsi, p, chunk, (enum lws_write_protocol)flags) < 0) return -1;
        n++;
        bytes += chunk;
        if (last) queue_pop(c);
        else c->qoff += chunk;
    }
    if (c->qlen) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->state == WS_CLOSING && c->close_frame) return send_close(wsi, c);
    return 0;
}

/* fuzz_ws: a WebSocket connection through sio-front after libwebsockets
 * has done the framing: the Upgrade request and then a stream of messages,
 * handled as gateway/front_ws.c handles them (ws_confirm_upgrade,
 * ws_receive's size limit, on_message, release), on the calls the front
 * makes into shared/server/websocket.c: websocket_accept, then per message
 * eio_decode_text, websocket_probe / websocket_upgraded while probing,
 * websocket_packet once open, websocket_upgrade_abort / websocket_closed
 * when the connection ends.  Polling requests on the same session can be
 * interleaved (an upgrade with a GET held, POSTs racing the upgrade).
 * lws itself is not in the loop: its frame parser is its own and tested by
 * its project; what the front does with each message is ours.
 *
 * Input: a flags byte (bit 0: upgrade the fixture's polling session,
 * reachable as "$A", else a new WebSocket session; bit 1: at engine_path, a
 * bare Engine.IO session; bit 2: without Sec-WebSocket-Key, which ws
 * refuses), the query string up to '\n' ("$A" is replaced by
 * the polling session's sid), then messages, each a header byte (bit 0:
 * binary; bit 1: a polling request instead: bit 2 POST of the payload, else
 * a GET, dropped by the client when bit 3 is set), a 16-bit little endian
 * length and the payload.  Checked: the calls return what websocket.h
 * allows, the front's state moves as it would, and every text frame a
 * Socket.IO session receives decodes as a Socket.IO packet.  The store is
 * reset after each input. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_srv.h"
#include "proto/sio_parser.h"
#include "server/polling.h"
#include "server/reader.h"
#include "server/websocket.h"

enum { WS_PROBING = 1, WS_OPEN = 2, WS_CLOSING = 3 }; /* as front_conn.h */

static server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fsrv_open(&srv, "engine_path = /engine.io/\nmax_http_buffer_size = 1024\n[namespace /chat]\n");
    return 0;
}

typedef struct conn {
    char sid[UTIL_ID_LEN + 1];
    int state;
    int server_done;
    uint64_t cursor;
} conn;

/* front_ws.c release(): tells the server the connection is over, once. */
static void release(conn *c, int reason) {
    if (c->state == WS_CLOSING) return;
    if (!c->server_done) {
        c->server_done = 1;
        if (c->state == WS_PROBING) {
            websocket_upgrade_abort(&srv, c->sid);
        } else {
            int rc = websocket_closed(&srv, c->sid, reason, 0);
            CHECK(rc == 0 || rc == STORE_NOTFOUND);
        }
    }
    c->state = WS_CLOSING;
}

/* front_ws.c on_message(). */
static void on_message(conn *c, const uint8_t *data, size_t len, int binary) {
    eio_packet pk;
    if (binary) {
        pk = (eio_packet){EIO_MESSAGE, 1, data, len};
    } else if (eio_decode_text(data, len, &pk)) {
        release(c, SESSION_CLOSE_PARSE_ERROR);
        return;
    }
    if (c->state == WS_PROBING) {
        if (!binary && pk.type == EIO_PING && pk.len == 5 && !memcmp(pk.data, "probe", 5)) {
            int rc = websocket_probe(&srv, c->sid);
            CHECK(rc <= 0);
            if (rc) {
                c->server_done = rc == STORE_NOTFOUND;
                release(c, 0);
            }
        } else if (!binary && pk.type == EIO_UPGRADE) {
            int rc = websocket_upgraded(&srv, c->sid, &c->cursor);
            CHECK(rc <= 0);
            if (rc) {
                c->server_done = 1;
                release(c, 0);
            } else {
                c->state = WS_OPEN;
            }
        } else {
            release(c, 0);
        }
        return;
    }
    if (c->state != WS_OPEN) return;
    if (pk.type == EIO_PONG) return;
    if (pk.type == EIO_CLOSE) {
        release(c, SESSION_CLOSE_CLIENT);
        return;
    }
    int rc = websocket_packet(&srv, c->sid, &pk);
    CHECK(rc == 0 || (rc > 0 && rc <= SESSION_CLOSE_POLL_DROPPED) || rc == STORE_NOTFOUND);
    if (rc > 0) {
        release(c, rc);
    } else if (rc == STORE_NOTFOUND) {
        c->server_done = 1;
        release(c, SESSION_CLOSE_SERVER);
    }
}

/* A polling request on sid, as front_http.c makes it. */
static void polling(const char *sid, int post, int drop, const uint8_t *data, size_t len) {
    char query[128];
    snprintf(query, sizeof query, "EIO=4&transport=polling&sid=%s", sid);
    http_req req = {.method = post ? "POST" : "GET",
                    .query = query,
                    .remote_addr = "192.0.2.1",
                    .content_length = post ? (long)len : -1,
                    .url = "/socket.io/"};
    polling_req p;
    http_resp resp = {0};
    int rc = polling_begin(&srv, &req, &p, &resp);
    if (rc == POLLING_READ_BODY) {
        uint8_t *body = malloc(len ? len : 1);
        CHECK(body != NULL);
        memcpy(body, data, len);
        polling_post(&srv, &p, body, len, 0, &resp);
        free(body);
    } else if (rc == POLLING_WAIT) {
        int64_t deadline = util_now_ms() + 1000;
        if (polling_step(&srv, &p, &resp, &deadline) == POLLING_WAIT) {
            if (drop) polling_dropped(&srv, &p);
            else polling_abandon(&srv, &p);
        }
    }
    CHECK(resp.status == 0 || (resp.status >= 200 && resp.status <= 599));
    http_resp_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    char psid[UTIL_ID_LEN + 1], sock[UTIL_ID_LEN + 1];
    fsrv_session(&srv, psid);
    fsrv_socket(&srv, psid, "/", sock);

    /* the Upgrade request */
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *qe = nl ? nl : end;
    buf q = BUF_INIT;
    for (const uint8_t *s = p; s < qe; s++) {
        if (*s == '$' && s + 1 < qe && s[1] == 'A') {
            buf_puts(&q, psid);
            s++;
        } else {
            buf_putc(&q, (char)*s);
        }
    }
    buf_putc(&q, 0);
    p = nl ? nl + 1 : end;
    if (flags & 1) { /* the client upgrades its polling session */
        buf_reset(&q);
        buf_printf(&q, "EIO=4&transport=websocket&sid=%s", psid);
    }
    static const char *const headers[] = {"host", "127.0.0.1", "upgrade", "websocket", NULL};
    http_req req = {.method = "GET",
                    .query = q.data,
                    .remote_addr = "192.0.2.1",
                    .content_length = -1,
                    .upgrade = 1,
                    .bare = (flags & 2) != 0,
                    .url = "/socket.io/",
                    .headers = headers,
                    /* bit 2: a handshake ws refuses (no Sec-WebSocket-Key) */
                    .ws_key = (flags & 4) ? NULL : "dGhlIHNhbXBsZSBub25jZQ==",
                    .ws_version = "13"};
    conn c = {0};
    buf open = BUF_INIT;
    int code = 3;
    int kind = websocket_accept(&srv, &req, c.sid, &open, &c.cursor, &code);
    CHECK(kind == WEBSOCKET_REJECT || kind == WEBSOCKET_NEW || kind == WEBSOCKET_UPGRADE);
    if (kind == WEBSOCKET_REJECT) {
        CHECK(code == WEBSOCKET_FULL || (code >= 0 && code <= 5) ||
              (code == WEBSOCKET_BAD_HANDSHAKE && (flags & 4)));
    } else {
        CHECK(util_is_id(c.sid, strlen(c.sid)));
        if (kind == WEBSOCKET_NEW) CHECK(open.len > 1 && open.data[0] == '0');
        c.state = kind == WEBSOCKET_NEW ? WS_OPEN : WS_PROBING;
        uint64_t start = c.cursor;
        /* the messages */
        while (end - p >= 3) {
            uint8_t h = p[0];
            size_t len = (size_t)p[1] | (size_t)p[2] << 8;
            p += 3;
            if (len > (size_t)(end - p)) len = (size_t)(end - p);
            if (h & 2) {
                polling(psid, (h & 4) != 0, (h & 8) != 0, p, len);
            } else if (c.state != WS_CLOSING) {
                if (len > (size_t)srv.cfg.max_http_buffer_size) release(&c, SESSION_CLOSE_TRANSPORT); /* 1009 */
                else on_message(&c, p, len, h & 1);
            }
            p += len;
        }
        /* what the client would have received */
        if (!req.bare) {
            store_txn *t;
            CHECK(store_begin(srv.st, 0, &t) == 0);
            uint64_t upto = 0;
            CHECK(reader_collect(t, c.sid, start, UINT64_MAX, SIZE_MAX, fsrv_sio_frame, NULL, &upto) == 0);
            store_abort(t);
        }
        release(&c, SESSION_CLOSE_TRANSPORT); /* ws_destroy */
    }
    buf_free(&open);
    buf_free(&q);
    fsrv_reset(&srv, NULL, 0);
    return 0;
}

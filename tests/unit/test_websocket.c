/* websocket_handshake_error: the WebSocket checks of an Upgrade request, as
 * Node's ws package makes them (RFC 6455 4.2.1). */
#include "unit.h"

#include "server/websocket.h"

static int check(const char *method, const char *key, const char *version, const char **msg,
                 const char **extra) {
    http_req r = {.method = method, .ws_key = key, .ws_version = version};
    return websocket_handshake_error(&r, msg, extra);
}

TEST(valid_handshakes) {
    const char *msg, *extra;
    ASSERT_EQ_INT(check("GET", "dGhlIHNhbXBsZSBub25jZQ==", "13", &msg, &extra), 0);
    ASSERT_EQ_INT(check("GET", "AAAAAAAAAAAAAAAAAAAA+/==", "8", &msg, &extra), 0);
    ASSERT_EQ_INT(check("GET", "dGhlIHNhbXBsZSBub25jZQ==", " 13 ", &msg, &extra), 0);
}

TEST(refusals_as_ws) {
    static const struct {
        const char *method, *key, *version;
        int status;
        const char *msg;
        int extra;
    } rows[] = {
        {"POST", "dGhlIHNhbXBsZSBub25jZQ==", "13", 405, "Invalid HTTP method", 0},
        {"GET", NULL, "13", 400, "Missing or invalid Sec-WebSocket-Key header", 0},
        {"GET", "abc", "13", 400, "Missing or invalid Sec-WebSocket-Key header", 0},
        {"GET", "dGhlIHNhbXBsZSBub25jZQ=", "13", 400, "Missing or invalid Sec-WebSocket-Key header", 0},
        {"GET", "dGhlIHNhbXBsZSBub25jZ*==", "13", 400, "Missing or invalid Sec-WebSocket-Key header", 0},
        {"GET", "dGhlIHNhbXBsZSBub25jZQ==", NULL, 400, "Missing or invalid Sec-WebSocket-Version header", 1},
        {"GET", "dGhlIHNhbXBsZSBub25jZQ==", "12", 400, "Missing or invalid Sec-WebSocket-Version header", 1},
        {"GET", "dGhlIHNhbXBsZSBub25jZQ==", "13x", 400, "Missing or invalid Sec-WebSocket-Version header", 1},
        {"GET", "dGhlIHNhbXBsZSBub25jZQ==", "", 400, "Missing or invalid Sec-WebSocket-Version header", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        UNIT_CTX("row %zu", i);
        const char *msg = NULL, *extra = NULL;
        ASSERT_EQ_INT(check(rows[i].method, rows[i].key, rows[i].version, &msg, &extra), rows[i].status);
        ASSERT_EQ_STR(msg, rows[i].msg);
        if (rows[i].extra) ASSERT_EQ_STR(extra, "Sec-WebSocket-Version: 13, 8\r\n");
        else ASSERT_TRUE(extra == NULL);
    }
}

UNIT_MAIN()

/* Unit tests for shared/eio.c. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/eio_parser.h"
#include "unit.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

/* ---- eio_decode_text --------------------------------------------------- */

TEST(decode_text_types) {
    static const char *in[] = {"0{}", "1", "2", "3probe", "4hello", "5", "6"};
    for (int t = 0; t <= 6; t++) {
        UNIT_CTX("type %d", t);
        eio_packet p;
        ASSERT_EQ_INT(eio_decode_text((const uint8_t *)in[t], strlen(in[t]), &p), 0);
        ASSERT_EQ_INT(p.type, t);
        ASSERT_EQ_INT(p.binary, 0);
        ASSERT_TRUE(p.data == (const uint8_t *)in[t] + 1);
        ASSERT_MEM(p.data, p.len, in[t] + 1, strlen(in[t]) - 1);
    }
}

TEST(decode_text_keeps_any_bytes) {
    eio_packet p;
    ASSERT_EQ_INT(eio_decode_text(LIT("4a\0b\xff"), &p), 0);
    ASSERT_EQ_INT(p.type, EIO_MESSAGE);
    ASSERT_MEM(p.data, p.len, "a\0b\xff", 4);
}

TEST(decode_text_rejects) {
    static const char *bad[] = {"", "7", "9", "a", "abc", "/", ":", " 4", "bAQIDBA==", "\xb4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("case %zu: %s", i, bad[i]);
        eio_packet p;
        ASSERT_EQ_INT(eio_decode_text((const uint8_t *)bad[i], strlen(bad[i]), &p), -EINVAL);
    }
}

/* ---- the payload reader ------------------------------------------------- */

typedef struct {
    int type, binary;
    const char *data;
    size_t len;
} want_pkt;

#define TXT(t, s) {t, 0, s, sizeof(s) - 1}
#define BIN(s) {EIO_MESSAGE, 1, s, sizeof(s) - 1}
#define P(s) s, sizeof(s) - 1

static const struct {
    const char *in;
    size_t len;
    int npkt;      /* packets returned before the end or the error */
    int error;     /* 1: the call after them returns -EINVAL */
    want_pkt pkt[4];
} payloads[] = {
    {P("4hello"), 1, 0, {TXT(4, "hello")}},
    {P("4test1\x1e" "4test2\x1e" "4test3"), 3, 0,
     {TXT(4, "test1"), TXT(4, "test2"), TXT(4, "test3")}},
    {P("4hello\x1e" "bAQIDBA=="), 2, 0, {TXT(4, "hello"), BIN("\x01\x02\x03\x04")}},
    {P("2"), 1, 0, {TXT(2, "")}},
    {P("3"), 1, 0, {TXT(3, "")}},
    {P("1"), 1, 0, {TXT(1, "")}},
    {P("6\x1e" "6"), 2, 0, {TXT(6, ""), TXT(6, "")}},
    {P("3probe\x1e" "5"), 2, 0, {TXT(3, "probe"), TXT(5, "")}},
    {P("b"), 1, 0, {BIN("")}},
    {P("bAA=="), 1, 0, {BIN("\0")}},
    {P("4\x1e" "b\x1e" "4"), 3, 0, {TXT(4, ""), BIN(""), TXT(4, "")}},
    {P("452-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]"
         "\x1e" "bAQID\x1e" "bBA=="),
     3, 0,
     {TXT(4, "52-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]"),
      BIN("\x01\x02\x03"), BIN("\x04")}},
    {P("4a\0b"), 1, 0, {TXT(4, "a\0b")}},
    {P("4\xe2\x82\xac"), 1, 0, {TXT(4, "\xe2\x82\xac")}},
    /* malformed */
    {P(""), 0, 1, {{0}}},
    {P("\x1e"), 0, 1, {{0}}},
    {P("\x1e" "4a"), 0, 1, {{0}}},
    {P("4a\x1e"), 1, 1, {TXT(4, "a")}},
    {P("4a\x1e\x1e" "4b"), 1, 1, {TXT(4, "a")}},
    {P("abc"), 0, 1, {{0}}},
    {P("9"), 0, 1, {{0}}},
    {P("7hello"), 0, 1, {{0}}},
    {P("4a\x1e" "7"), 1, 1, {TXT(4, "a")}},
    {P("4a\x1e" "x\x1e" "4b"), 1, 1, {TXT(4, "a")}},
    {P("bAQI"), 0, 1, {{0}}},
    {P("bAQID="), 0, 1, {{0}}},
    {P("b===="), 0, 1, {{0}}},
    {P("b AQID"), 0, 1, {{0}}},
    {P("bAQ-D"), 0, 1, {{0}}},
    {P("4a\x1e" "bZg"), 1, 1, {TXT(4, "a")}},
    {P("bAQID\x1e" "bAQ\x1e" "4x"), 1, 1, {BIN("\x01\x02\x03")}},
    {P("B" "AQID"), 0, 1, {{0}}},
};

TEST(reader_table) {
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        UNIT_CTX("payload %zu", i);
        size_t len = payloads[i].len;
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
        memcpy(copy, payloads[i].in, len);
        eio_reader r;
        eio_reader_init(&r, copy, len);
        eio_packet p;
        for (int k = 0; k < payloads[i].npkt; k++) {
            const want_pkt *w = &payloads[i].pkt[k];
            UNIT_CTX("payload %zu packet %d", i, k);
            ASSERT_EQ_INT(eio_reader_next(&r, &p), 1);
            ASSERT_EQ_INT(p.type, w->type);
            ASSERT_EQ_INT(p.binary, w->binary);
            ASSERT_MEM(p.data, p.len, w->data, w->len);
            ASSERT_TRUE(p.data >= copy && p.data + p.len <= copy + len); /* in place */
        }
        UNIT_CTX("payload %zu end", i);
        int want = payloads[i].error ? -EINVAL : 0;
        ASSERT_EQ_INT(eio_reader_next(&r, &p), want);
        ASSERT_EQ_INT(eio_reader_next(&r, &p), want); /* the end and errors stick */
        free(copy);
    }
}

TEST(reader_packets_stay_valid) {
    /* Earlier packets are not overwritten when later records are decoded. */
    uint8_t body[] = "bAQIDBA==\x1e" "4hi\x1e" "bBQY=";
    eio_reader r;
    eio_packet p[3];
    eio_reader_init(&r, body, sizeof body - 1);
    for (int k = 0; k < 3; k++) ASSERT_EQ_INT(eio_reader_next(&r, &p[k]), 1);
    eio_packet end;
    ASSERT_EQ_INT(eio_reader_next(&r, &end), 0);
    ASSERT_MEM(p[0].data, p[0].len, "\x01\x02\x03\x04", 4);
    ASSERT_MEM(p[1].data, p[1].len, "hi", 2);
    ASSERT_MEM(p[2].data, p[2].len, "\x05\x06", 2);
}

TEST(reader_null_empty) {
    eio_reader r;
    eio_packet p;
    eio_reader_init(&r, NULL, 0);
    ASSERT_EQ_INT(eio_reader_next(&r, &p), -EINVAL);
}

/* ---- building payloads -------------------------------------------------- */

TEST(payload_add_builds_suite_body) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "hello", 5), 0);
    ASSERT_EQ_STR(b.data, "4hello");
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 1, "\x01\x02\x03\x04", 4), 0);
    ASSERT_EQ_STR(b.data, "4hello\x1e" "bAQIDBA==");
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_PING, 0, NULL, 0), 0);
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_NOOP, 0, "", 0), 0);
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 1, "", 0), 0);
    ASSERT_EQ_STR(b.data, "4hello\x1e" "bAQIDBA==\x1e" "2\x1e" "6\x1e" "b");
    buf_free(&b);
}

TEST(payload_add_rejects) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "x", 1), 0);
    ASSERT_EQ_INT(eio_payload_add(&b, 7, 0, "x", 1), -EINVAL);
    ASSERT_EQ_INT(eio_payload_add(&b, -1, 0, "x", 1), -EINVAL);
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_PING, 1, "x", 1), -EINVAL);  /* only messages are binary */
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "a\x1e" "b", 3), -EINVAL);
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 1, "a\x1e" "b", 3), 0); /* base64 hides it */
    ASSERT_EQ_STR(b.data, "4x\x1e" "bYR5i");
    buf_free(&b);
}

TEST(payload_add_nomem_keeps_content) {
    buf b = BUF_INIT;
    b.limit = 10;
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "hello", 5), 0);      /* 6 bytes */
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "abc", 3), -ENOMEM);  /* would be 11 */
    ASSERT_EQ_STR(b.data, "4hello");
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 1, "abc", 3), -ENOMEM);  /* 6+1+1+4 */
    ASSERT_EQ_STR(b.data, "4hello");
    ASSERT_EQ_INT(eio_payload_add(&b, EIO_MESSAGE, 0, "ab", 2), 0);        /* exactly 10 */
    ASSERT_EQ_STR(b.data, "4hello\x1e" "4ab");
    buf_free(&b);
}

TEST(payload_round_trip) {
    static const struct {
        int type, binary;
        const char *data;
        size_t len;
    } pk[] = {
        {EIO_MESSAGE, 0, "hello", 5}, {EIO_MESSAGE, 1, "\x00\xff\x1e\x01", 4},
        {EIO_PING, 0, "", 0},         {EIO_MESSAGE, 1, "", 0},
        {EIO_CLOSE, 0, "", 0},        {EIO_MESSAGE, 0, "2[\"a\",\"\xc3\xa9\"]", 11},
        {EIO_MESSAGE, 1, "xy", 2},    {EIO_NOOP, 0, "", 0},
    };
    size_t n = sizeof pk / sizeof pk[0];
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(eio_payload_add(&b, pk[i].type, pk[i].binary, pk[i].data, pk[i].len), 0);
    eio_reader r;
    eio_reader_init(&r, (uint8_t *)b.data, b.len);
    for (size_t i = 0; i < n; i++) {
        UNIT_CTX("packet %zu", i);
        eio_packet p;
        ASSERT_EQ_INT(eio_reader_next(&r, &p), 1);
        ASSERT_EQ_INT(p.type, pk[i].type);
        ASSERT_EQ_INT(p.binary, pk[i].binary);
        ASSERT_MEM(p.data, p.len, pk[i].data, pk[i].len);
    }
    eio_packet p;
    ASSERT_EQ_INT(eio_reader_next(&r, &p), 0);
    buf_free(&b);
}

TEST(encode_text) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(eio_encode_text(&b, EIO_MESSAGE, "hello", 5), 0);
    ASSERT_EQ_STR(b.data, "4hello");
    buf_reset(&b);
    ASSERT_EQ_INT(eio_encode_text(&b, EIO_PONG, "probe", 5), 0);
    ASSERT_EQ_STR(b.data, "3probe");
    buf_reset(&b);
    ASSERT_EQ_INT(eio_encode_text(&b, EIO_PING, NULL, 0), 0);
    ASSERT_EQ_STR(b.data, "2");
    ASSERT_EQ_INT(eio_encode_text(&b, 7, "x", 1), -EINVAL);
    ASSERT_EQ_INT(eio_encode_text(&b, -1, "x", 1), -EINVAL);
    ASSERT_EQ_STR(b.data, "2");
    ASSERT_EQ_INT(eio_encode_text(&b, EIO_MESSAGE, "a\0b", 3), 0);
    ASSERT_MEM(b.data, b.len, "24a\0b", 5);
    buf_free(&b);
}

/* ---- the open packet ---------------------------------------------------- */

TEST(encode_open_polling) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(eio_encode_open(&b, "lv_VI97HAXpY6yYWAAAC", "websocket", 25000, 20000, 1000000), 0);
    ASSERT_EQ_STR(b.data, "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
                          "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
    buf_free(&b);
}

TEST(encode_open_websocket_suite_values) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(eio_encode_open(&b, "abc", NULL, 300, 200, 1000000), 0);
    ASSERT_EQ_STR(b.data, "0{\"sid\":\"abc\",\"upgrades\":[],"
                          "\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":1000000}");
    /* exactly the five keys, in order, with the right JSON types */
    cJSON *j = cJSON_Parse(b.data + 1);
    ASSERT_TRUE(j != NULL);
    static const char *keys[] = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"};
    int k = 0;
    for (cJSON *c = j->child; c; c = c->next, k++) {
        ASSERT_TRUE(k < 5);
        ASSERT_EQ_STR(c->string, keys[k]);
    }
    ASSERT_EQ_INT(k, 5);
    ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(j, "sid")));
    ASSERT_TRUE(cJSON_IsArray(cJSON_GetObjectItem(j, "upgrades")));
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "upgrades")), 0);
    ASSERT_EQ_INT(cJSON_GetObjectItem(j, "maxPayload")->valuedouble, 1000000);
    cJSON_Delete(j);
    buf_free(&b);
}

TEST(encode_open_escapes_sid_and_appends) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(buf_puts(&b, "x"), 0);
    ASSERT_EQ_INT(eio_encode_open(&b, "a\"b\\c", "websocket", 1, 2, 3), 0);
    ASSERT_EQ_STR(b.data, "x0{\"sid\":\"a\\\"b\\\\c\",\"upgrades\":[\"websocket\"],"
                          "\"pingInterval\":1,\"pingTimeout\":2,\"maxPayload\":3}");
    buf_free(&b);
}

TEST(encode_open_nomem_keeps_content) {
    buf b = BUF_INIT;
    b.limit = 60;
    ASSERT_EQ_INT(buf_puts(&b, "keep"), 0);
    ASSERT_EQ_INT(eio_encode_open(&b, "abc", NULL, 300, 200, 1000000), -ENOMEM);
    ASSERT_EQ_STR(b.data, "keep");
    ASSERT_EQ_INT(b.len, 4);
    buf_free(&b);
}

UNIT_MAIN()

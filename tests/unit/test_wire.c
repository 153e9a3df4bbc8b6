/* Unit tests for cluster/wire.c: the @socket.io/redis-adapter messages and
 * channel names. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "proto/mpack.h"
#include "unit.h"
#include "emitter_msg.h"
#include "fixture.h"

/* ---- helpers ------------------------------------------------------------------------ */

static char *show(const cJSON *j) { return j ? cJSON_PrintUnformatted(j) : strdup("NULL"); }

#define ASSERT_JSON_TEXT(node, want)                                          \
    do {                                                                      \
        char *s_ = show(node);                                                \
        int ok_ = strcmp(s_, want) == 0;                                      \
        if (!ok_) ASSERT_EQ_STR(s_, want);                                    \
        free(s_);                                                             \
    } while (0)

static cJSON *json(const char *text) {
    cJSON *j = cJSON_Parse(text);
    if (!j) unit_fail(__FILE__, __LINE__, "bad test JSON %s", text);
    return j;
}

/* The msgpack form of a JSON text (binary markers become bin), in out. */
static void pack_json(buf *out, const char *text) {
    cJSON *j = json(text);
    int rc = mpack_encode(out, j);
    cJSON_Delete(j);
    ASSERT_EQ_INT(rc, 0);
}

/* wire_broadcast_decode over an exact-size heap copy. */
static int bdecode(const void *p, size_t len, wire_bcast *b) {
    void *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    int rc = wire_broadcast_decode(copy, len, b);
    free(copy);
    return rc;
}

static int bdecode_json(const char *text, wire_bcast *b) {
    buf m = BUF_INIT;
    pack_json(&m, text);
    int rc = bdecode(m.data, m.len, b);
    buf_free(&m);
    return rc;
}

static void expect_bad_bcast(const char *text) {
    UNIT_CTX("%.200s", text);
    wire_bcast b;
    memset(&b, 0x5a, sizeof b);
    ASSERT_EQ_INT(bdecode_json(text, &b), -EINVAL);
    /* cleared: nothing to free, clear is harmless */
    ASSERT_TRUE(b.msg == NULL && b.rooms == NULL && b.except == NULL && b.uid == NULL);
    ASSERT_EQ_INT(b.nrooms + b.nexcept, 0);
    wire_bcast_clear(&b);
    UNIT_CTX("%s", "");
}

/* ---- channels -------------------------------------------------------------------------- */

static void channel_is(const char *prefix, int kind, const char *nsp, const char *last,
                       const char *want) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(wire_channel(&b, prefix, kind, nsp, last), 0);
    char got[512];
    snprintf(got, sizeof got, "%s", b.data ? b.data : "");
    size_t len = b.len;
    buf_free(&b);
    ASSERT_EQ_INT(len, strlen(want));
    ASSERT_EQ_STR(got, want);
}

TEST(channel_names) {
    channel_is("socket.io", WIRE_CH_BROADCAST, "/", NULL, "socket.io#/#");
    channel_is("socket.io", WIRE_CH_BROADCAST, "/", "room1", "socket.io#/#room1#");
    channel_is("socket.io", WIRE_CH_BROADCAST, "/chat", "r", "socket.io#/chat#r#");
    channel_is("socket.io", WIRE_CH_REQUEST, "/", NULL, "socket.io-request#/#");
    channel_is("socket.io", WIRE_CH_REQUEST, "/admin", NULL, "socket.io-request#/admin#");
    channel_is("socket.io", WIRE_CH_RESPONSE, "/", NULL, "socket.io-response#/#");
    channel_is("socket.io", WIRE_CH_RESPONSE, "/", "abc123", "socket.io-response#/#abc123#");
    channel_is("myapp", WIRE_CH_BROADCAST, "/", NULL, "myapp#/#");
    channel_is("myapp", WIRE_CH_BROADCAST, "/x", "y", "myapp#/x#y#");
    channel_is("myapp", WIRE_CH_REQUEST, "/x", NULL, "myapp-request#/x#");
    channel_is("myapp", WIRE_CH_RESPONSE, "/x", "uid", "myapp-response#/x#uid#");
}

TEST(channel_appends) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(buf_puts(&b, "pre:"), 0);
    ASSERT_EQ_INT(wire_channel(&b, "socket.io", WIRE_CH_BROADCAST, "/", "r"), 0);
    char got[64];
    snprintf(got, sizeof got, "%s", b.data);
    buf_free(&b);
    ASSERT_EQ_STR(got, "pre:socket.io#/#r#");
}

static int req_nsp(const char *prefix, const char *ch, char *nsp, size_t n) {
    return wire_request_nsp(prefix, ch, strlen(ch), nsp, n);
}

TEST(request_namespace) {
    char nsp[64];
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/#", nsp, sizeof nsp), 0);
    ASSERT_EQ_STR(nsp, "/");
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/chat#", nsp, sizeof nsp), 0);
    ASSERT_EQ_STR(nsp, "/chat");
    ASSERT_EQ_INT(req_nsp("app", "app-request#/a/b#", nsp, sizeof nsp), 0);
    ASSERT_EQ_STR(nsp, "/a/b");
    /* only the channel's len bytes count */
    const char *ch = "socket.io-request#/x#GARBAGE";
    ASSERT_EQ_INT(wire_request_nsp("socket.io", ch, strlen("socket.io-request#/x#"), nsp, sizeof nsp), 0);
    ASSERT_EQ_STR(nsp, "/x");
    /* wrong prefix or kind */
    ASSERT_EQ_INT(req_nsp("socket.io", "other-request#/#", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-response#/#", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io#/#", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("app", "socket.io-request#/#", nsp, sizeof nsp), -EINVAL);
    /* no trailing '#', empty namespace, too short */
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/chat", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request##", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#", nsp, sizeof nsp), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "", nsp, sizeof nsp), -EINVAL);
    /* a namespace that does not fit: "/chat" needs 6 bytes */
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/chat#", nsp, 5), -EINVAL);
    ASSERT_EQ_INT(req_nsp("socket.io", "socket.io-request#/chat#", nsp, 6), 0);
    ASSERT_EQ_STR(nsp, "/chat");
}

static int broom(const char *prefix, const char *nsp, const char *ch, char *room, size_t n) {
    return wire_broadcast_room(prefix, nsp, ch, strlen(ch), room, n);
}

TEST(broadcast_room) {
    char room[300];
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#", room, sizeof room), 1);
    strcpy(room, "untouched");
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#", room, sizeof room), 1);
    ASSERT_EQ_STR(room, "untouched");
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#room1#", room, sizeof room), 2);
    ASSERT_EQ_STR(room, "room1");
    ASSERT_EQ_INT(broom("socket.io", "/chat", "socket.io#/chat#r#", room, sizeof room), 2);
    ASSERT_EQ_STR(room, "r");
    ASSERT_EQ_INT(broom("app", "/chat", "app#/chat#", room, sizeof room), 1);
    /* another namespace, another prefix, another kind */
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/chat#", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/chat", "socket.io#/#", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "app#/#", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io-request#/#", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "", room, sizeof room), 0);
    /* a namespace that is a prefix of another */
    ASSERT_EQ_INT(broom("socket.io", "/a", "socket.io#/ab#", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/a", "socket.io#/ab#r#", room, sizeof room), 0);
    /* a room channel without its closing '#', or an empty room */
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#room1", room, sizeof room), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/##", room, sizeof room), 0);
    /* a room that does not fit: "room1" needs 6 bytes */
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#room1#", room, 5), 0);
    ASSERT_EQ_INT(broom("socket.io", "/", "socket.io#/#room1#", room, 6), 2);
    ASSERT_EQ_STR(room, "room1");
}

/* ---- inbound broadcasts ------------------------------------------------------------------ */

TEST(decode_emitter_message) {
    wire_bcast b;
    ASSERT_EQ_INT(bdecode(emitter_msg, EMITTER_LEN, &b), 0);
    ASSERT_TRUE(b.msg != NULL);
    ASSERT_EQ_STR(b.uid, "emitter");
    ASSERT_EQ_STR(b.nsp, "/");
    ASSERT_JSON_TEXT(b.data, "[\"hello\",\"world\"]");
    ASSERT_EQ_INT(b.nrooms, 1);
    ASSERT_EQ_STR(b.rooms[0], "room1");
    ASSERT_EQ_INT(b.nexcept, 0);
    ASSERT_TRUE(b.except == NULL);
    ASSERT_EQ_INT(b.local, 0);
    ASSERT_EQ_INT(b.volatile_, 0);
    wire_bcast_clear(&b);
    ASSERT_TRUE(b.msg == NULL && b.rooms == NULL);
    /* every truncation is refused */
    for (size_t cut = 0; cut < EMITTER_LEN; cut++) {
        UNIT_CTX("cut at %zu", cut);
        ASSERT_EQ_INT(bdecode(emitter_msg, cut, &b), -EINVAL);
        ASSERT_TRUE(b.msg == NULL);
    }
}

TEST(decode_defaults_namespace) {
    wire_bcast b;
    ASSERT_EQ_INT(bdecode_json("[\"u1\",{\"type\":2,\"data\":[\"ev\",1,{\"a\":null}]},"
                               "{\"rooms\":[],\"except\":[\"x\",\"y\"],\"flags\":{}}]",
                               &b),
                  0);
    ASSERT_EQ_STR(b.uid, "u1");
    ASSERT_EQ_STR(b.nsp, "/");
    ASSERT_JSON_TEXT(b.data, "[\"ev\",1,{\"a\":null}]");
    ASSERT_EQ_INT(b.nrooms, 0);
    ASSERT_TRUE(b.rooms == NULL);
    ASSERT_EQ_INT(b.nexcept, 2);
    ASSERT_EQ_STR(b.except[0], "x");
    ASSERT_EQ_STR(b.except[1], "y");
    wire_bcast_clear(&b);
    /* another namespace, opts without rooms or flags, extra elements ignored */
    ASSERT_EQ_INT(bdecode_json("[\"u2\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/chat\"},{},\"extra\"]", &b), 0);
    ASSERT_EQ_STR(b.nsp, "/chat");
    ASSERT_EQ_INT(b.nrooms + b.nexcept, 0);
    ASSERT_EQ_INT(b.local + b.volatile_, 0);
    wire_bcast_clear(&b);
}

TEST(decode_flags) {
    wire_bcast b;
    ASSERT_EQ_INT(bdecode_json("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},"
                               "{\"rooms\":[],\"except\":[],\"flags\":{\"local\":true}}]",
                               &b),
                  0);
    ASSERT_EQ_INT(b.local, 1);
    ASSERT_EQ_INT(b.volatile_, 0);
    wire_bcast_clear(&b);
    ASSERT_EQ_INT(bdecode_json("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},"
                               "{\"rooms\":[],\"except\":[],\"flags\":{\"volatile\":true,\"compress\":true}}]",
                               &b),
                  0);
    ASSERT_EQ_INT(b.local, 0);
    ASSERT_EQ_INT(b.volatile_, 1);
    wire_bcast_clear(&b);
    ASSERT_EQ_INT(bdecode_json("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},"
                               "{\"flags\":{\"local\":true,\"volatile\":true}}]",
                               &b),
                  0);
    ASSERT_EQ_INT(b.local, 1);
    ASSERT_EQ_INT(b.volatile_, 1);
    wire_bcast_clear(&b);
    /* only true counts */
    ASSERT_EQ_INT(bdecode_json("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},"
                               "{\"flags\":{\"local\":1,\"volatile\":false}}]",
                               &b),
                  0);
    ASSERT_EQ_INT(b.local, 0);
    ASSERT_EQ_INT(b.volatile_, 0);
    wire_bcast_clear(&b);
}

TEST(decode_binary_arguments) {
    /* the adapter writes Buffers as msgpack bin, type stays 2 */
    static const char msg[] =
        "\x93\xa4node"
        "\x83\xa4type\x02\xa4" "data" "\x93\xa3" "bin" "\xc4\x03\x01\x02\x03\x91\xc4\x00"
        "\xa3nsp\xa1/"
        "\x83\xa5rooms\x90\xa6" "except" "\x90\xa5" "flags" "\x80";
    wire_bcast b;
    ASSERT_EQ_INT(bdecode(msg, sizeof msg - 1, &b), 0);
    ASSERT_EQ_STR(b.uid, "node");
    ASSERT_JSON_TEXT(b.data, "[\"bin\",{\"$binary\":\"AQID\"},[{\"$binary\":\"\"}]]");
    wire_bcast_clear(&b);
    /* a BINARY_EVENT type is taken too */
    ASSERT_EQ_INT(bdecode_json("[\"u\",{\"type\":5,\"data\":[\"e\",{\"$binary\":\"BA==\"}],\"nsp\":\"/\"},{}]", &b), 0);
    ASSERT_JSON_TEXT(b.data, "[\"e\",{\"$binary\":\"BA==\"}]");
    wire_bcast_clear(&b);
}

TEST(decode_rejections) {
    char room257[300], big[64 * 1024];
    memset(room257, 'r', 257);
    room257[257] = 0;
    /* wrong types */
    expect_bad_bcast("[\"u\",{\"type\":3,\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":0,\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":\"2\",\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    /* data */
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":\"e\",\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":{\"0\":\"e\"},\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[1,\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[{\"$binary\":\"AQID\"}],\"nsp\":\"/\"},{}]");
    /* namespace */
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"chat\"},{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"\"},{}]");
    /* rooms */
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":\"r\"}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":{\"r\":1}}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":[\"a\",1]}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":[\"\"]}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"except\":\"x\"}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":[\"a\"],\"except\":[null]}]");
    /* the opts element itself */
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},[]]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},5]");
    /* uid, packet, shape */
    expect_bad_bcast("[1,{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[null,{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    expect_bad_bcast("[\"u\",[2,[\"e\"]],{}]");
    expect_bad_bcast("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"}]");
    expect_bad_bcast("[\"u\"]");
    expect_bad_bcast("[]");
    expect_bad_bcast("{\"uid\":\"u\"}");
    expect_bad_bcast("\"u\"");
    /* a room of 257 bytes (256 is the longest) */
    snprintf(big, sizeof big, "[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":[\"%s\"]}]", room257);
    expect_bad_bcast(big);
    snprintf(big, sizeof big, "[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"except\":[\"%s\"]}]", room257);
    expect_bad_bcast(big);
    room257[256] = 0;
    wire_bcast b;
    snprintf(big, sizeof big, "[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{\"rooms\":[\"%s\"]}]", room257);
    ASSERT_EQ_INT(bdecode_json(big, &b), 0);
    ASSERT_EQ_INT(strlen(b.rooms[0]), 256);
    wire_bcast_clear(&b);
    /* a namespace of 129 bytes (128 is the longest) */
    char nsp[140];
    nsp[0] = '/';
    memset(nsp + 1, 'n', 128);
    nsp[129] = 0;
    snprintf(big, sizeof big, "[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"%s\"},{}]", nsp);
    expect_bad_bcast(big);
    nsp[128] = 0;
    snprintf(big, sizeof big, "[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"%s\"},{}]", nsp);
    ASSERT_EQ_INT(bdecode_json(big, &b), 0);
    ASSERT_EQ_INT(strlen(b.nsp), 128);
    wire_bcast_clear(&b);
    /* garbage and empty input */
    ASSERT_EQ_INT(bdecode("", 0, &b), -EINVAL);
    ASSERT_EQ_INT(bdecode("\xc1", 1, &b), -EINVAL);
    ASSERT_EQ_INT(bdecode("[\"u\"]", 5, &b), -EINVAL);
}

/* "[\"u\",{...},{\"rooms\":[\"r0\",...]}]" with n rooms */
static char *many_rooms(int n, const char *key) {
    cJSON *m = json("[\"u\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},{}]");
    cJSON *a = cJSON_AddArrayToObject(cJSON_GetArrayItem(m, 2), key);
    for (int i = 0; i < n; i++) {
        char r[16];
        snprintf(r, sizeof r, "r%d", i);
        cJSON_AddItemToArray(a, cJSON_CreateString(r));
    }
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return s;
}

TEST(decode_room_count_limit) {
    wire_bcast b;
    char *s = many_rooms(LOGREC_MAX_ROOMS, "rooms");
    int rc = bdecode_json(s, &b);
    free(s);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(b.nrooms, 1024);
    ASSERT_EQ_STR(b.rooms[1023], "r1023");
    wire_bcast_clear(&b);
    s = many_rooms(LOGREC_MAX_ROOMS + 1, "rooms");
    expect_bad_bcast(s);
    free(s);
    s = many_rooms(LOGREC_MAX_ROOMS + 1, "except");
    expect_bad_bcast(s);
    free(s);
}

/* ---- outbound broadcasts ------------------------------------------------------------------- */

typedef struct enc {
    int rc;
    char ch[512];
    char json[4096];
    uint8_t bytes[4096];
    size_t len;
} enc;

/* Appends a record (a broadcast with to, or for a session when to is NULL),
 * reads it back and encodes it with uid "node1". */
static enc encode_record(const bcast *to, const logrec_frame *f, size_t nf) {
    enc e;
    memset(&e, 0, sizeof e);
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    if (to) ASSERT_EQ_INT(logrec_append_broadcast(t, to, f, nf, NULL), 0);
    else ASSERT_EQ_INT(logrec_append_session(t, SID1, f, nf, NULL), 0);
    grabbed got = {0};
    ASSERT_EQ_INT(store_log_scan(t, 0, UINT64_MAX, grab, &got), 0);
    logrec r;
    ASSERT_EQ_INT(logrec_parse(got.p, got.l, &r), 0);
    buf out = BUF_INIT, ch = BUF_INIT;
    e.rc = wire_broadcast_encode(&out, &ch, "socket.io", "node1", &r);
    store_abort(t);
    drop(s);
    if (e.rc) {
        /* nothing written on failure */
        size_t ol = out.len, cl = ch.len;
        buf_free(&out);
        buf_free(&ch);
        ASSERT_EQ_INT(ol, 0);
        ASSERT_EQ_INT(cl, 0);
        return e;
    }
    snprintf(e.ch, sizeof e.ch, "%s", ch.data ? ch.data : "");
    ASSERT_TRUE(out.len <= sizeof e.bytes);
    memcpy(e.bytes, out.data, out.len);
    e.len = out.len;
    cJSON *m = mpack_decode(out.data, out.len);
    buf_free(&out);
    buf_free(&ch);
    char *js = show(m);
    cJSON_Delete(m);
    snprintf(e.json, sizeof e.json, "%s", js);
    free(js);
    return e;
}

#define TEXT_FRAME(s) {0, (const uint8_t *)(s), sizeof(s) - 1}

TEST(encode_to_namespace) {
    bcast to = {"/", NULL, 0, NULL, 0, 0};
    logrec_frame f[] = {TEXT_FRAME("2[\"hello\",\"world\"]")};
    enc e = encode_record(&to, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"hello\",\"world\"],\"nsp\":\"/\"},"
                          "{\"rooms\":[],\"except\":[],\"flags\":{}}]");
    static const char want[] =
        "\x93\xa5node1"
        "\x83\xa4type\x02\xa4" "data" "\x92\xa5hello\xa5world\xa3nsp\xa1/"
        "\x83\xa5rooms\x90\xa6" "except" "\x90\xa5" "flags" "\x80";
    ASSERT_MEM(e.bytes, e.len, want, sizeof want - 1);
    /* and it reads back as a broadcast */
    wire_bcast b;
    ASSERT_EQ_INT(bdecode(e.bytes, e.len, &b), 0);
    ASSERT_EQ_STR(b.uid, "node1");
    ASSERT_EQ_STR(b.nsp, "/");
    ASSERT_JSON_TEXT(b.data, "[\"hello\",\"world\"]");
    ASSERT_EQ_INT(b.nrooms + b.nexcept, 0);
    wire_bcast_clear(&b);
}

TEST(encode_to_one_room) {
    const char *rooms[] = {"r1"};
    bcast to = {"/", rooms, 1, NULL, 0, 0};
    logrec_frame f[] = {TEXT_FRAME("2[\"e\",1,true]")};
    enc e = encode_record(&to, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#r1#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\",1,true],\"nsp\":\"/\"},"
                          "{\"rooms\":[\"r1\"],\"except\":[],\"flags\":{}}]");
}

TEST(encode_to_two_rooms) {
    const char *rooms[] = {"r1", "r2"};
    bcast to = {"/", rooms, 2, NULL, 0, 0};
    logrec_frame f[] = {TEXT_FRAME("2[\"e\"]")};
    enc e = encode_record(&to, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\"],\"nsp\":\"/\"},"
                          "{\"rooms\":[\"r1\",\"r2\"],\"except\":[],\"flags\":{}}]");
}

TEST(encode_with_except) {
    const char *rooms[] = {"r1"}, *except[] = {"x1", "x2"};
    bcast to = {"/", rooms, 1, except, 2, 0};
    logrec_frame f[] = {TEXT_FRAME("2[\"e\",{\"k\":null}]")};
    enc e = encode_record(&to, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#r1#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\",{\"k\":null}],\"nsp\":\"/\"},"
                          "{\"rooms\":[\"r1\"],\"except\":[\"x1\",\"x2\"],\"flags\":{}}]");
    /* except only: the namespace channel */
    bcast to2 = {"/", NULL, 0, except, 1, 0};
    e = encode_record(&to2, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\",{\"k\":null}],\"nsp\":\"/\"},"
                          "{\"rooms\":[],\"except\":[\"x1\"],\"flags\":{}}]");
}

TEST(encode_other_namespace) {
    bcast to = {"/chat", NULL, 0, NULL, 0, 0};
    logrec_frame f[] = {TEXT_FRAME("2/chat,[\"msg\",\"hi\"]")};
    enc e = encode_record(&to, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/chat#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"msg\",\"hi\"],\"nsp\":\"/chat\"},"
                          "{\"rooms\":[],\"except\":[],\"flags\":{}}]");
    const char *rooms[] = {"lobby"};
    bcast to2 = {"/chat", rooms, 1, NULL, 0, 0};
    e = encode_record(&to2, f, 1);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/chat#lobby#");
}

TEST(encode_binary_event) {
    bcast to = {"/", NULL, 0, NULL, 0, 0};
    logrec_frame f[] = {TEXT_FRAME("51-[\"e\",{\"_placeholder\":true,\"num\":0}]"),
                        {1, (const uint8_t *)"\x01\x02\x03", 3}};
    enc e = encode_record(&to, f, 2);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\",{\"$binary\":\"AQID\"}],\"nsp\":\"/\"},"
                          "{\"rooms\":[],\"except\":[],\"flags\":{}}]");
    /* the attachment travels as msgpack bin 01 02 03 */
    static const char data[] = "\xa4" "data" "\x92\xa1" "e" "\xc4\x03\x01\x02\x03";
    ASSERT_TRUE(memmem(e.bytes, e.len, data, sizeof data - 1) != NULL);
    /* two attachments in a namespace */
    bcast to2 = {"/b", NULL, 0, NULL, 0, 0};
    logrec_frame g[] = {TEXT_FRAME("52-/b,[\"e\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]"),
                        {1, (const uint8_t *)"\x0a", 1},
                        {1, (const uint8_t *)"", 0}};
    e = encode_record(&to2, g, 3);
    ASSERT_EQ_INT(e.rc, 0);
    ASSERT_EQ_STR(e.ch, "socket.io#/b#");
    ASSERT_EQ_STR(e.json, "[\"node1\",{\"type\":2,\"data\":[\"e\",{\"$binary\":\"\"},{\"$binary\":\"Cg==\"}],"
                          "\"nsp\":\"/b\"},{\"rooms\":[],\"except\":[],\"flags\":{}}]");
}

TEST(encode_refuses_what_is_not_an_event) {
    bcast to = {"/", NULL, 0, NULL, 0, 0};
    logrec_frame connect[] = {TEXT_FRAME("0")};
    ASSERT_EQ_INT(encode_record(&to, connect, 1).rc, -EINVAL);
    logrec_frame ack[] = {TEXT_FRAME("31[\"x\"]")};
    ASSERT_EQ_INT(encode_record(&to, ack, 1).rc, -EINVAL);
    logrec_frame disconnect[] = {TEXT_FRAME("1")};
    ASSERT_EQ_INT(encode_record(&to, disconnect, 1).rc, -EINVAL);
    logrec_frame garbage[] = {TEXT_FRAME("2[")};
    ASSERT_EQ_INT(encode_record(&to, garbage, 1).rc, -EINVAL);
    /* no frames, or a binary frame first */
    ASSERT_EQ_INT(encode_record(&to, connect, 0).rc, -EINVAL);
    logrec_frame bin_first[] = {{1, (const uint8_t *)"2[\"e\"]", 6}};
    ASSERT_EQ_INT(encode_record(&to, bin_first, 1).rc, -EINVAL);
    /* a binary event whose attachment is missing */
    logrec_frame missing[] = {TEXT_FRAME("51-[\"e\",{\"_placeholder\":true,\"num\":0}]")};
    ASSERT_EQ_INT(encode_record(&to, missing, 1).rc, -EINVAL);
    /* an event for one session is not a broadcast */
    logrec_frame ev[] = {TEXT_FRAME("2[\"e\"]")};
    ASSERT_EQ_INT(encode_record(NULL, ev, 1).rc, -EINVAL);
}

/* ---- requests and responses ----------------------------------------------------------------- */

static cJSON *wdecode(const void *p, size_t len) {
    void *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    cJSON *j = wire_decode(copy, len);
    free(copy);
    return j;
}

TEST(decode_requests) {
    const char *req = "{\"uid\":\"x\",\"requestId\":\"y\",\"type\":5,\"opts\":{\"rooms\":[\"a\"],\"except\":[]}}";
    cJSON *j = wdecode(req, strlen(req));
    ASSERT_JSON_TEXT(j, req);
    cJSON_Delete(j);
    /* msgpack: a BROADCAST request */
    buf m = BUF_INIT;
    pack_json(&m, "{\"uid\":\"x\",\"requestId\":\"r1\",\"type\":7,\"packet\":{\"type\":2,"
                  "\"data\":[\"e\",{\"$binary\":\"AQID\"}],\"nsp\":\"/\"},\"opts\":{\"rooms\":[],"
                  "\"except\":[],\"flags\":{}}}");
    ASSERT_EQ_INT(((const uint8_t *)m.data)[0], 0x85);
    j = wdecode(m.data, m.len);
    buf_free(&m);
    ASSERT_JSON_TEXT(j, "{\"uid\":\"x\",\"requestId\":\"r1\",\"type\":7,\"packet\":{\"type\":2,"
                        "\"data\":[\"e\",{\"$binary\":\"AQID\"}],\"nsp\":\"/\"},\"opts\":{\"rooms\":[],"
                        "\"except\":[],\"flags\":{}}}");
    cJSON_Delete(j);
    /* only the first len bytes count */
    j = wdecode("{\"a\":1}", 7);
    ASSERT_JSON_TEXT(j, "{\"a\":1}");
    cJSON_Delete(j);
    /* not objects, or not well formed */
    ASSERT_TRUE(wdecode("[1,2]", 5) == NULL);
    ASSERT_TRUE(wdecode("\"s\"", 3) == NULL);
    ASSERT_TRUE(wdecode("{\"a\":", 5) == NULL);
    ASSERT_TRUE(wdecode("{\"a\":1}xyz", 10) == NULL); /* one object and nothing after it */
    ASSERT_TRUE(wdecode("{\"a\":1}{}", 9) == NULL);
    j = wdecode("{\"a\":1}\n", 8); /* trailing white space is fine */
    ASSERT_JSON_TEXT(j, "{\"a\":1}");
    cJSON_Delete(j);
    ASSERT_TRUE(wdecode("{", 1) == NULL);
    ASSERT_TRUE(wdecode("", 0) == NULL);
    ASSERT_TRUE(wdecode("garbage", 7) == NULL);
    ASSERT_TRUE(wdecode("\x92\x01\x02", 3) == NULL); /* msgpack array */
    ASSERT_TRUE(wdecode("\x81\xa1" "a", 3) == NULL); /* truncated msgpack map */
    ASSERT_TRUE(wdecode("\xc1", 1) == NULL);
    ASSERT_TRUE(wdecode(emitter_msg, EMITTER_LEN) == NULL); /* a broadcast, not a request */
    /* a msgpack map */
    j = wdecode("\x81\xa4type\x00", 7);
    ASSERT_JSON_TEXT(j, "{\"type\":0}");
    cJSON_Delete(j);
}

TEST(opts_rooms_and_except) {
    cJSON *o = json("{\"rooms\":[\"a\",\"b\"],\"except\":[\"c\"]}");
    const char **rooms = NULL, **except = NULL;
    size_t nr = 99, ne = 99;
    ASSERT_EQ_INT(wire_opts(o, &rooms, &nr, &except, &ne), 0);
    ASSERT_EQ_INT(nr, 2);
    ASSERT_EQ_INT(ne, 1);
    ASSERT_EQ_STR(rooms[0], "a");
    ASSERT_EQ_STR(rooms[1], "b");
    ASSERT_EQ_STR(except[0], "c");
    /* borrowed from opts */
    ASSERT_TRUE(rooms[0] == cJSON_GetArrayItem(cJSON_GetObjectItem(o, "rooms"), 0)->valuestring);
    free(rooms);
    free(except);
    cJSON_Delete(o);
    /* empty arrays, null, absent members, absent opts: none */
    static const char *const none[] = {"{\"rooms\":[],\"except\":[]}", "{\"rooms\":null}", "{}"};
    for (size_t i = 0; i < 3; i++) {
        UNIT_CTX("%s", none[i]);
        o = json(none[i]);
        rooms = except = (const char **)o; /* must be overwritten */
        nr = ne = 99;
        ASSERT_EQ_INT(wire_opts(o, &rooms, &nr, &except, &ne), 0);
        cJSON_Delete(o);
        ASSERT_TRUE(rooms == NULL && except == NULL);
        ASSERT_EQ_INT(nr + ne, 0);
    }
    UNIT_CTX("%s", "absent");
    rooms = except = (const char **)&nr;
    nr = ne = 99;
    ASSERT_EQ_INT(wire_opts(NULL, &rooms, &nr, &except, &ne), 0);
    ASSERT_TRUE(rooms == NULL && except == NULL);
    ASSERT_EQ_INT(nr + ne, 0);
}

TEST(opts_rejections) {
    static const char *const bad[] = {
        "{\"rooms\":\"a\"}",
        "{\"rooms\":{\"a\":true}}",
        "{\"rooms\":[\"a\",2]}",
        "{\"rooms\":[\"\"]}",
        "{\"except\":5}",
        "{\"rooms\":[\"a\"],\"except\":\"b\"}", /* rooms were fine: freed again */
        "{\"rooms\":[\"a\"],\"except\":[\"b\",[]]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("%s", bad[i]);
        cJSON *o = json(bad[i]);
        const char **rooms = NULL, **except = NULL;
        size_t nr = 99, ne = 99;
        int rc = wire_opts(o, &rooms, &nr, &except, &ne);
        cJSON_Delete(o);
        ASSERT_EQ_INT(rc, -EINVAL);
        ASSERT_TRUE(rooms == NULL && except == NULL);
        ASSERT_EQ_INT(nr + ne, 0);
    }
    UNIT_CTX("%s", "opts not an object");
    cJSON *o = json("[\"a\"]");
    const char **rooms = NULL, **except = NULL;
    size_t nr = 0, ne = 0;
    ASSERT_EQ_INT(wire_opts(o, &rooms, &nr, &except, &ne), -EINVAL);
    cJSON_Delete(o);
    ASSERT_TRUE(rooms == NULL && except == NULL);
    /* too many rooms */
    char *s = many_rooms(LOGREC_MAX_ROOMS + 1, "rooms");
    cJSON *m = json(s);
    free(s);
    ASSERT_EQ_INT(wire_opts(cJSON_GetArrayItem(m, 2), &rooms, &nr, &except, &ne), -EINVAL);
    cJSON_Delete(m);
    ASSERT_TRUE(rooms == NULL);
}

UNIT_MAIN()

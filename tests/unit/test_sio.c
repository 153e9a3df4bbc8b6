/* Unit tests for shared/sio.c (and its use with shared/eio.c). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/eio_parser.h"
#include "proto/sio_parser.h"
#include "unit.h"

#define PH0 "{\"_placeholder\":true,\"num\":0}"
#define PH1 "{\"_placeholder\":true,\"num\":1}"
#define PH2 "{\"_placeholder\":true,\"num\":2}"

/* Decodes from an exact-size heap copy, so ASan sees any read past len. */
static int decode(const char *s, size_t len, sio_packet *p) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, s, len);
    int rc = sio_decode(copy, len, p);
    free(copy);
    return rc;
}

static int decode_str(const char *s, sio_packet *p) { return decode(s, strlen(s), p); }

/* Compact JSON of a node (cJSON's printer), or "(none)". Caller frees. */
static char *show(const cJSON *j) {
    return j ? cJSON_PrintUnformatted(j) : strdup("(none)");
}

#define ASSERT_JSON(node, want_text)                                         \
    do {                                                                     \
        char *got_ = show(node);                                             \
        cJSON *w_ = (want_text) ? cJSON_Parse(want_text) : NULL;             \
        char *want_ = show(w_);                                              \
        int same_ = strcmp(got_, want_) == 0;                                \
        if (!same_) ASSERT_EQ_STR(got_, want_);                              \
        free(got_);                                                          \
        free(want_);                                                         \
        cJSON_Delete(w_);                                                    \
    } while (0)

/* Encodes p, expecting success, into a fresh string (caller frees). */
static char *encode(const sio_packet *p) {
    buf out = BUF_INIT;
    size_t n = 99;
    int rc = sio_encode(&out, p, NULL, NULL, 0, &n);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(n, 0);
    return buf_take(&out, NULL);
}

static sio_packet packet(int type, const char *nsp, long long id, const char *json) {
    sio_packet p;
    memset(&p, 0, sizeof p);
    p.type = type;
    snprintf(p.nsp, sizeof p.nsp, "%s", nsp);
    p.id = id;
    p.data = json ? cJSON_Parse(json) : NULL;
    if (json && !p.data) unit_fail(__FILE__, __LINE__, "bad test JSON %s", json);
    return p;
}

/* ---- decoding: accepted packets ----------------------------------------- */

static const struct {
    const char *in;
    int type, attachments;
    const char *nsp;
    long long id;
    const char *data; /* JSON, NULL for no payload */
} accepted[] = {
    /* PROTOCOL.md 2.2 examples */
    {"2[\"foo\"]", SIO_EVENT, 0, "/", -1, "[\"foo\"]"},
    {"2/admin,[\"bar\"]", SIO_EVENT, 0, "/admin", -1, "[\"bar\"]"},
    {"212[\"foo\"]", SIO_EVENT, 0, "/", 12, "[\"foo\"]"},
    {"3/admin,13[\"bar\"]", SIO_ACK, 0, "/admin", 13, "[\"bar\"]"},
    {"1/admin,", SIO_DISCONNECT, 0, "/admin", -1, NULL},
    {"0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, 0, "/admin", -1,
     "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"},
    /* the socket suite (section 5), without the Engine.IO '4' */
    {"0", SIO_CONNECT, 0, "/", -1, NULL},
    {"0{\"token\":\"123\"}", SIO_CONNECT, 0, "/", -1, "{\"token\":\"123\"}"},
    {"0/custom,", SIO_CONNECT, 0, "/custom", -1, NULL},
    {"0/custom,{\"token\":\"abc\"}", SIO_CONNECT, 0, "/custom", -1, "{\"token\":\"abc\"}"},
    {"0/random", SIO_CONNECT, 0, "/random", -1, NULL},
    {"0/custom", SIO_CONNECT, 0, "/custom", -1, NULL},
    {"1", SIO_DISCONNECT, 0, "/", -1, NULL},
    {"1/custom", SIO_DISCONNECT, 0, "/custom", -1, NULL},
    {"2[\"message\",\"message to main namespace\"]", SIO_EVENT, 0, "/", -1,
     "[\"message\",\"message to main namespace\"]"},
    {"2[\"message\",1,\"2\",{\"3\":[true]}]", SIO_EVENT, 0, "/", -1,
     "[\"message\",1,\"2\",{\"3\":[true]}]"},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, 0, "/", 456,
     "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]"},
    {"3456[1,\"2\",{\"3\":[false]}]", SIO_ACK, 0, "/", 456, "[1,\"2\",{\"3\":[false]}]"},
    {"52-[\"message\"," PH0 "," PH1 "]", SIO_BINARY_EVENT, 2, "/", -1,
     "[\"message\"," PH0 "," PH1 "]"},
    {"52-789[\"message-with-ack\"," PH0 "," PH1 "]", SIO_BINARY_EVENT, 2, "/", 789,
     "[\"message-with-ack\"," PH0 "," PH1 "]"},
    {"62-789[" PH0 "," PH1 "]", SIO_BINARY_ACK, 2, "/", 789, "[" PH0 "," PH1 "]"},
    {"4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, 0, "/random", -1,
     "{\"message\":\"Invalid namespace\"}"},
    {"52-[\"bin\"," PH0 ",{\"x\":" PH1 "}]", SIO_BINARY_EVENT, 2, "/", -1,
     "[\"bin\"," PH0 ",{\"x\":" PH1 "}]"},
    /* payload shapes */
    {"4\"not authorized\"", SIO_CONNECT_ERROR, 0, "/", -1, "\"not authorized\""},
    {"4/nsp,\"not authorized\"", SIO_CONNECT_ERROR, 0, "/nsp", -1, "\"not authorized\""},
    {"4{\"message\":\"x\",\"data\":{\"a\":1}}", SIO_CONNECT_ERROR, 0, "/", -1,
     "{\"message\":\"x\",\"data\":{\"a\":1}}"},
    {"2[1]", SIO_EVENT, 0, "/", -1, "[1]"},
    {"2[-1.5e3,\"x\"]", SIO_EVENT, 0, "/", -1, "[-1500,\"x\"]"},
    {"2[\"disconnected\"]", SIO_EVENT, 0, "/", -1, "[\"disconnected\"]"},
    {"2[\"Connect\"]", SIO_EVENT, 0, "/", -1, "[\"Connect\"]"},
    {"2[\"\"]", SIO_EVENT, 0, "/", -1, "[\"\"]"},
    {"3[]", SIO_ACK, 0, "/", -1, "[]"},
    {"3[null]", SIO_ACK, 0, "/", -1, "[null]"},
    {"0{}", SIO_CONNECT, 0, "/", -1, "{}"},
    /* attachment counts */
    {"510-[\"a\"]", SIO_BINARY_EVENT, 10, "/", -1, "[\"a\"]"},
    {"5010-[\"a\"]", SIO_BINARY_EVENT, 10, "/", -1, "[\"a\"]"},
    {"51-/admin,7[\"a\"," PH0 "]", SIO_BINARY_EVENT, 1, "/admin", 7, "[\"a\"," PH0 "]"},
    /* namespaces */
    {"0/", SIO_CONNECT, 0, "/", -1, NULL},
    {"0/,{}", SIO_CONNECT, 0, "/", -1, "{}"},
    {"2/a/b,[\"x\"]", SIO_EVENT, 0, "/a/b", -1, "[\"x\"]"},
    {"2/a b[,[\"x\"]", SIO_EVENT, 0, "/a b[", -1, "[\"x\"]"},
    {"0/nsp?key=val,", SIO_CONNECT, 0, "/nsp?key=val", -1, NULL},
    {"2/nsp,5[\"a\"]", SIO_EVENT, 0, "/nsp", 5, "[\"a\"]"},
    {"2/\xc3\xa9,[\"x\"]", SIO_EVENT, 0, "/\xc3\xa9", -1, "[\"x\"]"},
    /* ack ids */
    {"20[\"a\"]", SIO_EVENT, 0, "/", 0, "[\"a\"]"},
    {"2007[\"a\"]", SIO_EVENT, 0, "/", 7, "[\"a\"]"},
    {"29007199254740991[\"a\"]", SIO_EVENT, 0, "/", 9007199254740991LL, "[\"a\"]"},
    {"0/admin,12{}", SIO_CONNECT, 0, "/admin", 12, "{}"},
    {"15", SIO_DISCONNECT, 0, "/", 5, NULL},
    {"35[]", SIO_ACK, 0, "/", 5, "[]"},
    /* an ACK whose id does not fit: one never asked for (ignored, as in Node) */
    {"39007199254740992[]", SIO_ACK, 0, "/", SIO_ID_UNASKED, "[]"},
    {"3/nsp,184467440737095516161844674407370955161[1]", SIO_ACK, 0, "/nsp", SIO_ID_UNASKED, "[1]"},
    {"61-99999999999999999999999[" PH0 "]", SIO_BINARY_ACK, 1, "/", SIO_ID_UNASKED, "[" PH0 "]"},
    /* JSON details */
    {"2[\"a\"] ", SIO_EVENT, 0, "/", -1, "[\"a\"]"},
    {"2[\"a\"]\r\n\t ", SIO_EVENT, 0, "/", -1, "[\"a\"]"},
    {"2[ \"a\" , 1 ,{ \"k\" : [ ] } ]", SIO_EVENT, 0, "/", -1, "[\"a\",1,{\"k\":[]}]"},
    {"0{\"a\":{\"b\":[null,true,false,-0,1e5,0.5,-0.0e-0,1E+2]}}", SIO_CONNECT, 0, "/", -1,
     "{\"a\":{\"b\":[null,true,false,-0,100000,0.5,-0,100]}}"},
    {"2[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"]", SIO_EVENT, 0, "/", -1,
     "[\"\\\"\\\\/\\b\\f\\n\\r\\t\xc3\xa9\xf0\x9f\x98\x80\"]"},
    {"2[\"\xc3\xa9\xf0\x9f\x98\x80\"]", SIO_EVENT, 0, "/", -1, "[\"\xc3\xa9\xf0\x9f\x98\x80\"]"},
    {"2[\"a\",1e400]", SIO_EVENT, 0, "/", -1, "[\"a\",1e400]"},
};

TEST(decode_accepts) {
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        UNIT_CTX("%s", accepted[i].in);
        sio_packet p;
        ASSERT_EQ_INT(decode_str(accepted[i].in, &p), 0);
        ASSERT_EQ_INT(p.type, accepted[i].type);
        ASSERT_EQ_INT(p.attachments, accepted[i].attachments);
        ASSERT_EQ_STR(p.nsp, accepted[i].nsp);
        ASSERT_EQ_INT(p.id, accepted[i].id);
        ASSERT_JSON(p.data, accepted[i].data);
        sio_packet_clear(&p);
    }
}

/* ---- decoding: rejected packets ----------------------------------------- */

#define LIT(s) {s, sizeof(s) - 1}
static const struct {
    const char *in;
    size_t len;
} rejected[] = {
    /* type */
    LIT(""), LIT("7"), LIT("9[\"a\"]"), LIT("a"), LIT("abc"), LIT(" 2[\"a\"]"), LIT("-"),
    LIT("/"), LIT("\x00"), LIT("\xd9\xa2[\"a\"]"),
    /* the socket suite's invalid formats (4abc, 42{}, 42abc[...]) */
    LIT("abc"), LIT("2{}"), LIT("2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]"),
    /* payload missing where one is needed */
    LIT("2"), LIT("2/nsp,"), LIT("212"), LIT("3"), LIT("3/nsp,4"), LIT("4"), LIT("4/nsp,"),
    LIT("52-"), LIT("62-1"), LIT("50-"),
    /* payload of the wrong kind */
    LIT("0[]"), LIT("0\"x\""), LIT("0null"), LIT("01[]"), LIT("0/admin,1[]"),
    LIT("1{}"), LIT("1[]"), LIT("1\"x\""), LIT("1null"), LIT("1/admin,{}"),
    LIT("2[]"), LIT("2[{}]"), LIT("2[null]"), LIT("2[true]"), LIT("2[[\"a\"]]"),
    LIT("2\"a\""), LIT("2null"), LIT("21{}"),
    LIT("3{}"), LIT("3\"x\""), LIT("3null"), LIT("31"),
    LIT("4[]"), LIT("4null"), LIT("41"), LIT("4true"), LIT("4[\"x\"]"),
    LIT("5" "1-{}"), LIT("61-{}"), LIT("51-[" PH0 "]"),
    /* reserved event names */
    LIT("2[\"connect\"]"), LIT("2[\"connect_error\"]"), LIT("2[\"disconnect\"]"),
    LIT("2[\"disconnecting\"]"), LIT("2[\"newListener\"]"), LIT("2[\"removeListener\"]"),
    LIT("2/nsp,1[\"disconnect\",1]"), LIT("51-[\"connect\"," PH0 "]"),
    LIT("2[\"\\u0063onnect\"]"),
    /* attachment counts */
    LIT("5"), LIT("5[\"a\"]"), LIT("5-[\"a\"]"), LIT("511-[\"a\"]"), LIT("5100-[\"a\"]"),
    LIT("5a-[\"a\"]"), LIT("5 1-[\"a\"]"), LIT("51 -[\"a\"]"), LIT("5+1-[\"a\"]"),
    LIT("50x1-[\"a\"]"), LIT("51e0-[\"a\"]"), LIT("51.0-[\"a\"]"), LIT("51"), LIT("6"),
    LIT("599999999999999999999999-[\"a\"]"), LIT("5-1-[\"a\"]"), LIT("6-[]"),
    LIT("50-[\"a\"]"), LIT("60-[]"), LIT("500-[\"a\"]"), /* zero: refused since parser 4.2.7 */
    /* ack ids */
    LIT("29007199254740992[\"a\"]"), LIT("299999999999999999999[\"a\"]"),
    LIT("2 [\"a\"]"), LIT("2\t[\"a\"]"), LIT("21 [\"a\"]"), LIT("2/nsp, [\"a\"]"),
    LIT("21\n2[\"a\"]"), LIT("2-1[\"a\"]"), LIT("2+1[\"a\"]"),
    /* namespaces */
    LIT("2/a\x00" "b,[\"x\"]"), LIT("2/nsp[\"a\"]"),
    /* JSON syntax JSON.parse refuses but cJSON would take */
    LIT("2[\"a\",+1]"), LIT("2[\"a\",01]"), LIT("2[\"a\",-01]"), LIT("2[\"a\",1.]"),
    LIT("2[\"a\",.5]"), LIT("2[\"a\",-.5]"), LIT("2[\"a\",-]"), LIT("2[\"a\",1e]"),
    LIT("2[\"a\",1e+]"), LIT("2[\"a\",0x1]"), LIT("2[\"a\",NaN]"), LIT("2[\"a\",Infinity]"),
    LIT("2[\"a\",-Infinity]"), LIT("2[\"a\tb\"]"), LIT("2[\"a\x01\"]"), LIT("2[\"a\x1f\"]"),
    LIT("2[\"a\"]\x01"), LIT("2[\"a\"]\x0b"), LIT("2[\"a\"]\x0c"), LIT("2[\"a\",\x0c" "1]"),
    LIT("2\xef\xbb\xbf[\"a\"]"), LIT("2[\"a\"]\x00"), LIT("2[\"a\"\x00]"), LIT("2[\"a\x00\"]"),
    LIT("2[\"a\"]\xc2\xa0"),
    /* other JSON errors */
    LIT("2['a']"), LIT("2[\"a\",]"), LIT("2[\"a\""), LIT("2[\"a\" 1]"), LIT("2[\"a\"]]"),
    LIT("2[\"a\"][]"), LIT("2[\"a\"]x"), LIT("2[\"a\"] x"), LIT("2[\"a\" \"b\"]"),
    LIT("2[\"a"), LIT("2[\"a\\"), LIT("2[\"a\\\"]"), LIT("2[\"\\x41\"]"), LIT("2[\"\\u12\"]"),
    LIT("2[\"\\u12g4\"]"), LIT("2[\"\\U0041\"]"), LIT("2[\"\\'\"]"), LIT("2[tru]"),
    LIT("2[nul]"), LIT("2[True]"), LIT("2[\"a\",undefined]"), LIT("2[,]"), LIT("2[,\"a\"]"),
    LIT("0{a:1}"), LIT("0{\"a\" 1}"), LIT("0{\"a\":1,}"), LIT("0{\"a\":}"), LIT("0{,}"),
    LIT("0{\"a\"}"), LIT("0{1:1}"), LIT("0{\"a\":1"), LIT("0{\"a\":1}}"), LIT("0{{}}"),
    LIT("0 {}"), LIT("0\n{}"), LIT("0/admin, {}"),
};

TEST(decode_rejects) {
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        UNIT_CTX("case %zu: %.*s", i, (int)rejected[i].len, rejected[i].in);
        sio_packet p;
        p.data = (cJSON *)1; /* not freed: sio_decode overwrites out */
        ASSERT_EQ_INT(decode(rejected[i].in, rejected[i].len, &p), -EINVAL);
        /* out is left cleared */
        ASSERT_TRUE(p.data == NULL);
        ASSERT_EQ_STR(p.nsp, "/");
        ASSERT_EQ_INT(p.id, -1);
        ASSERT_EQ_INT(p.attachments, 0);
    }
}

TEST(decode_respects_len) {
    /* The text is not NUL-terminated: only len bytes count. */
    sio_packet p;
    ASSERT_EQ_INT(sio_decode("2[\"a\"]xyz", 6, &p), 0);
    ASSERT_JSON(p.data, "[\"a\"]");
    sio_packet_clear(&p);
    ASSERT_EQ_INT(sio_decode("2[\"a\"]", 5, &p), -EINVAL);
    ASSERT_EQ_INT(sio_decode("0/admin,{}", 7, &p), 0);
    ASSERT_EQ_STR(p.nsp, "/admin");
    ASSERT_TRUE(p.data == NULL);
    ASSERT_EQ_INT(sio_decode("212[\"a\"]", 3, &p), -EINVAL); /* "212": event, no data */
    ASSERT_EQ_INT(sio_decode("15[\"a\"]", 2, &p), 0);
    ASSERT_EQ_INT(p.id, 5);
    ASSERT_EQ_INT(sio_decode("52-[\"a\"]", 2, &p), -EINVAL);
    ASSERT_EQ_INT(sio_decode("2", 0, &p), -EINVAL);
}

static char *repeat_nsp(size_t n, const char *tail) {
    char *s = malloc(n + strlen(tail) + 2);
    s[0] = '2';
    s[1] = '/';
    memset(s + 2, 'n', n - 1);
    strcpy(s + 1 + n, tail);
    return s;
}

TEST(decode_nsp_length_limit) {
    sio_packet p;
    char *s = repeat_nsp(SIO_NSP_MAX, ",[\"a\"]");
    ASSERT_EQ_INT(decode_str(s, &p), 0);
    ASSERT_EQ_INT(strlen(p.nsp), SIO_NSP_MAX);
    ASSERT_EQ_INT(p.nsp[0], '/');
    sio_packet_clear(&p);
    free(s);
    s = repeat_nsp(SIO_NSP_MAX + 1, ",[\"a\"]");
    ASSERT_EQ_INT(decode_str(s, &p), -EINVAL);
    free(s);
    s = repeat_nsp(SIO_NSP_MAX + 1, ""); /* running to the end of the string */
    s[0] = '0';
    ASSERT_EQ_INT(decode_str(s, &p), -EINVAL);
    free(s);
    s = repeat_nsp(SIO_NSP_MAX, "");
    s[0] = '0';
    ASSERT_EQ_INT(decode_str(s, &p), 0);
    ASSERT_EQ_INT(strlen(p.nsp), SIO_NSP_MAX);
    free(s);
}

/* "3" followed by depth '[' and depth ']'. */
static char *nested(int depth) {
    char *s = malloc((size_t)depth * 2 + 2);
    s[0] = '3';
    memset(s + 1, '[', (size_t)depth);
    memset(s + 1 + depth, ']', (size_t)depth);
    s[1 + 2 * depth] = 0;
    return s;
}

TEST(decode_depth_limit) {
    sio_packet p;
    char *s = nested(CJSON_NESTING_LIMIT);
    ASSERT_EQ_INT(decode_str(s, &p), 0);
    ASSERT_EQ_INT(p.type, SIO_ACK);
    /* and it can be written back */
    char *e = encode(&p);
    ASSERT_EQ_STR(e, s);
    free(e);
    sio_packet_clear(&p);
    free(s);
    s = nested(CJSON_NESTING_LIMIT + 1);
    ASSERT_EQ_INT(decode_str(s, &p), -EINVAL);
    free(s);
}

TEST(decode_large_payload) {
    /* A 1 MB string argument (the default maxPayload). */
    size_t n = 1000000;
    char *s = malloc(n + 16);
    strcpy(s, "2[\"big\",\"");
    memset(s + 9, 'x', n);
    strcpy(s + 9 + n, "\"]");
    sio_packet p;
    ASSERT_EQ_INT(decode_str(s, &p), 0);
    ASSERT_EQ_INT(strlen(cJSON_GetArrayItem(p.data, 1)->valuestring), n);
    char *e = encode(&p);
    ASSERT_EQ_STR(e, s);
    free(e);
    sio_packet_clear(&p);
    free(s);
}

TEST(reserved_event_names) {
    static const char *yes[] = {"connect", "connect_error", "disconnect",
                                "disconnecting", "newListener", "removeListener"};
    static const char *no[] = {"message", "", "Connect", "connect ", "connec", "newlistener",
                               "error", "connection", "ping"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        UNIT_CTX("%s", yes[i]);
        ASSERT_EQ_INT(sio_reserved_event(yes[i]), 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        UNIT_CTX("%s", no[i]);
        ASSERT_EQ_INT(sio_reserved_event(no[i]), 0);
    }
    ASSERT_EQ_INT(sio_reserved_event(NULL), 0);
}

TEST(packet_clear) {
    sio_packet p;
    ASSERT_EQ_INT(decode_str("52-/x,3[\"a\"," PH0 "," PH1 "]", &p), 0);
    sio_packet_clear(&p);
    ASSERT_TRUE(p.data == NULL);
    ASSERT_EQ_STR(p.nsp, "/");
    ASSERT_EQ_INT(p.id, -1);
    ASSERT_EQ_INT(p.attachments, 0);
    sio_packet_clear(&p); /* twice is fine */
    sio_packet_clear(NULL);
}

/* ---- encoding ----------------------------------------------------------- */

static const struct {
    int type;
    const char *nsp;
    long long id;
    const char *data;
    const char *want;
} encoded[] = {
    {SIO_CONNECT, "/", -1, "{\"sid\":\"abc\"}", "0{\"sid\":\"abc\"}"},
    {SIO_CONNECT, "/custom", -1, "{\"sid\":\"x\"}", "0/custom,{\"sid\":\"x\"}"},
    {SIO_CONNECT, "/", -1, NULL, "0"},
    {SIO_CONNECT_ERROR, "/random", -1, "{\"message\":\"Invalid namespace\"}",
     "4/random,{\"message\":\"Invalid namespace\"}"},
    {SIO_CONNECT_ERROR, "/nsp", -1, "\"not authorized\"", "4/nsp,\"not authorized\""},
    {SIO_DISCONNECT, "/admin", -1, NULL, "1/admin,"},
    {SIO_DISCONNECT, "/", -1, NULL, "1"},
    {SIO_EVENT, "/", -1, "[\"auth\",{}]", "2[\"auth\",{}]"},
    {SIO_EVENT, "/custom", -1, "[\"auth\",{\"token\":\"abc\"}]",
     "2/custom,[\"auth\",{\"token\":\"abc\"}]"},
    {SIO_EVENT, "/", -1, "[\"message-back\",1,\"2\",{\"3\":[true]}]",
     "2[\"message-back\",1,\"2\",{\"3\":[true]}]"},
    {SIO_ACK, "/", 456, "[1,\"2\",{\"3\":[false]}]", "3456[1,\"2\",{\"3\":[false]}]"},
    {SIO_EVENT, "/", 0, "[\"question\",1]", "20[\"question\",1]"},
    {SIO_ACK, "/admin", 13, "[\"bar\"]", "3/admin,13[\"bar\"]"},
    {SIO_ACK, "/", 9007199254740991LL, "[]", "39007199254740991[]"},
    {SIO_EVENT, "", -1, "[\"a\"]", "2[\"a\"]"}, /* empty nsp = main */
    {SIO_EVENT, "/", -1, "null", "2"},          /* null data is not written, as in Node */
    {SIO_BINARY_EVENT, "/", -1, "[\"a\"," PH0 "]", "2[\"a\"," PH0 "]"}, /* no markers */
    {SIO_BINARY_ACK, "/", 3, "[]", "33[]"},
    {SIO_CONNECT, "/", -1, "{\"$binary\":\"AQID\"}", "0{\"$binary\":\"AQID\"}"},
    {SIO_CONNECT_ERROR, "/", -1, "{\"data\":{\"$binary\":\"AQID\"}}",
     "4{\"data\":{\"$binary\":\"AQID\"}}"},
    {SIO_EVENT, "/", -1, "[\"a\",{\"$binary\":\"AQID\",\"x\":1},{\"$binary\":1},{\"$binary\":null},"
                          "{\"$Binary\":\"AQID\"},{\"binary\":\"AQID\"},{},[{\"$binary\":[]}]]",
     "2[\"a\",{\"$binary\":\"AQID\",\"x\":1},{\"$binary\":1},{\"$binary\":null},"
     "{\"$Binary\":\"AQID\"},{\"binary\":\"AQID\"},{},[{\"$binary\":[]}]]"},
};

TEST(encode_table) {
    for (size_t i = 0; i < sizeof encoded / sizeof encoded[0]; i++) {
        UNIT_CTX("case %zu: %s", i, encoded[i].want);
        sio_packet p = packet(encoded[i].type, encoded[i].nsp, encoded[i].id, encoded[i].data);
        char *e = encode(&p);
        ASSERT_EQ_STR(e, encoded[i].want);
        free(e);
        sio_packet_clear(&p);
    }
}

TEST(encode_appends_and_keeps_data) {
    sio_packet p = packet(SIO_EVENT, "/", -1, "[\"a\",{\"$binary\":\"AQID\"},{\"k\":[1,2]}]");
    char *before = cJSON_PrintUnformatted(p.data);
    buf out = BUF_INIT, att = BUF_INIT;
    size_t off[4], n = 0;
    ASSERT_EQ_INT(buf_puts(&out, "4"), 0);
    ASSERT_EQ_INT(buf_puts(&att, "zz"), 0);
    ASSERT_EQ_INT(sio_encode(&out, &p, &att, off, 3, &n), 0);
    ASSERT_EQ_STR(out.data, "451-[\"a\"," PH0 ",{\"k\":[1,2]}]");
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(off[0], 2);
    ASSERT_EQ_INT(off[1], 5);
    ASSERT_MEM(att.data, att.len, "zz\x01\x02\x03", 5);
    char *after = cJSON_PrintUnformatted(p.data);
    ASSERT_EQ_STR(after, before); /* p->data untouched */
    free(before);
    free(after);
    buf_free(&out);
    buf_free(&att);
    sio_packet_clear(&p);
}

/* Encodes p with room for 8 attachments and checks text and chunks. */
static void check_binary(const sio_packet *p, const char *want, size_t nwant,
                         const char *const *chunks, const size_t *lens) {
    buf out = BUF_INIT, att = BUF_INIT;
    size_t off[9], n = 99;
    ASSERT_EQ_INT(sio_encode(&out, p, &att, off, 8, &n), 0);
    ASSERT_EQ_STR(out.data, want);
    ASSERT_EQ_INT(n, nwant);
    ASSERT_EQ_INT(off[0], 0);
    for (size_t i = 0; i < n; i++) {
        UNIT_CTX("%s: attachment %zu", want, i);
        ASSERT_MEM(att.data + off[i], off[i + 1] - off[i], chunks[i], lens[i]);
    }
    ASSERT_EQ_INT(att.len, off[n]);
    buf_free(&out);
    buf_free(&att);
}

TEST(encode_binary_suite_replies) {
    /* suite test 27: the echo of two buffers */
    sio_packet p = packet(SIO_EVENT, "/", -1,
                          "[\"message-back\",{\"$binary\":\"AQID\"},{\"$binary\":\"BAUG\"}]");
    static const char *const ch[] = {"\x01\x02\x03", "\x04\x05\x06"};
    static const size_t len[] = {3, 3};
    check_binary(&p, "52-[\"message-back\"," PH0 "," PH1 "]", 2, ch, len);
    sio_packet_clear(&p);
    /* suite test 29: the ack */
    p = packet(SIO_ACK, "/", 789, "[{\"$binary\":\"AQID\"},{\"$binary\":\"BAUG\"}]");
    check_binary(&p, "62-789[" PH0 "," PH1 "]", 2, ch, len);
    sio_packet_clear(&p);
    /* already typed binary: same result */
    p = packet(SIO_BINARY_ACK, "/custom", 1, "[{\"$binary\":\"AQID\"}]");
    check_binary(&p, "61-/custom,1[" PH0 "]", 1, ch, len);
    sio_packet_clear(&p);
}

TEST(encode_binary_depth_first) {
    sio_packet p = packet(SIO_EVENT, "/", -1,
                          "[\"bin\",{\"a\":[{\"$binary\":\"AA==\"}],\"b\":{\"$binary\":\"AQ==\"}},"
                          "{\"$binary\":\"\"},[[{\"$binary\":\"Ag==\"}]]]");
    static const char *const ch[] = {"\x00", "\x01", "", "\x02"};
    static const size_t len[] = {1, 1, 0, 1};
    check_binary(&p, "54-[\"bin\",{\"a\":[" PH0 "],\"b\":" PH1 "}," PH2 ",[[{\"_placeholder\":true,\"num\":3}]]]",
                 4, ch, len);
    sio_packet_clear(&p);
}

TEST(encode_binary_polling_example) {
    /* PROTOCOL.md 2.3: the server's polling payload for a binary event. */
    sio_packet p = packet(SIO_EVENT, "/", -1,
                          "[\"bin\",{\"$binary\":\"AQID\"},{\"x\":{\"$binary\":\"BA==\"}}]");
    buf text = BUF_INIT, att = BUF_INIT, body = BUF_INIT;
    size_t off[SIO_MAX_ATTACHMENTS + 1], n;
    ASSERT_EQ_INT(sio_encode(&text, &p, &att, off, SIO_MAX_ATTACHMENTS, &n), 0);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(eio_payload_add(&body, EIO_MESSAGE, 0, text.data, text.len), 0);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(eio_payload_add(&body, EIO_MESSAGE, 1, att.data + off[i], off[i + 1] - off[i]), 0);
    ASSERT_EQ_STR(body.data, "452-[\"bin\"," PH0 ",{\"x\":" PH1 "}]\x1e" "bAQID\x1e" "bBA==");
    buf_free(&text);
    buf_free(&att);
    buf_free(&body);
    sio_packet_clear(&p);
}

TEST(encode_binary_errors_leave_buffers) {
    static const struct {
        const char *data;
        size_t max;
        int rc;
    } cases[] = {
        {"[\"a\",{\"$binary\":\"AQI\"}]", 4, -EINVAL},         /* bad base64 */
        {"[\"a\",{\"$binary\":\"AQ D\"}]", 4, -EINVAL},
        {"[\"a\",{\"$binary\":\"AQID\"},{\"$binary\":\"*\"}]", 4, -EINVAL},
        {"[\"a\",{\"$binary\":\"AQID\"},{\"$binary\":\"AQID\"}]", 1, -E2BIG},
        {"[\"a\",{\"$binary\":\"AQID\"}]", 0, -E2BIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        UNIT_CTX("case %zu", i);
        sio_packet p = packet(SIO_EVENT, "/", -1, cases[i].data);
        buf out = BUF_INIT, att = BUF_INIT;
        size_t off[5], n = 99;
        ASSERT_EQ_INT(buf_puts(&out, "keep"), 0);
        ASSERT_EQ_INT(buf_puts(&att, "att"), 0);
        ASSERT_EQ_INT(sio_encode(&out, &p, &att, off, cases[i].max, &n), cases[i].rc);
        ASSERT_EQ_STR(out.data, "keep");
        ASSERT_EQ_STR(att.data, "att");
        ASSERT_EQ_INT(n, 0);
        buf_free(&out);
        buf_free(&att);
        sio_packet_clear(&p);
    }
    /* no attachment buffer at all */
    sio_packet p = packet(SIO_EVENT, "/", -1, "[\"a\",{\"$binary\":\"AQID\"}]");
    buf out = BUF_INIT;
    size_t n = 99;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 5, &n), -E2BIG);
    ASSERT_EQ_INT(out.len, 0);
    ASSERT_EQ_INT(n, 0);
    buf_free(&out);
    sio_packet_clear(&p);
}

TEST(encode_rejects_bad_packets) {
    buf out = BUF_INIT;
    size_t n;
    sio_packet p = packet(7, "/", -1, NULL);
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    p.type = -1;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    p = packet(SIO_EVENT, "admin", -1, "[\"a\"]");
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL); /* no leading '/' */
    sio_packet_clear(&p);
    p = packet(SIO_EVENT, "/a,b", -1, "[\"a\"]");
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL); /* would split */
    sio_packet_clear(&p);
    p = packet(SIO_EVENT, "/", -1, NULL);
    memset(p.nsp, 'a', sizeof p.nsp); /* not terminated */
    p.nsp[0] = '/';
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    /* malformed trees */
    p = packet(SIO_EVENT, "/", -1, "[\"a\",{\"k\":1}]");
    cJSON *k = cJSON_GetArrayItem(p.data, 1)->child;
    char *name = k->string;
    k->string = NULL;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    k->string = name;
    k->type = cJSON_Invalid;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    k->type = cJSON_String; /* with valuestring NULL */
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    k->type = cJSON_Number;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), 0);
    ASSERT_EQ_STR(out.data, "2[\"a\",{\"k\":1}]");
    sio_packet_clear(&p);
    buf_free(&out);
}

TEST(encode_depth_limit) {
    cJSON *root = cJSON_CreateArray(), *cur = root;
    for (int d = 1; d < CJSON_NESTING_LIMIT; d++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, a);
        cur = a;
    }
    sio_packet p = packet(SIO_ACK, "/", -1, NULL);
    p.data = root;
    buf out = BUF_INIT;
    size_t n;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), 0);
    ASSERT_EQ_INT(out.len, 1 + 2 * CJSON_NESTING_LIMIT);
    cJSON_AddItemToArray(cur, cJSON_CreateArray());
    buf_reset(&out);
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    ASSERT_EQ_INT(out.len, 0);
    p.type = SIO_CONNECT_ERROR; /* the same limit without the marker scan */
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -EINVAL);
    buf_free(&out);
    sio_packet_clear(&p);
}

TEST(encode_nomem_keeps_content) {
    sio_packet p = packet(SIO_EVENT, "/custom", 12, "[\"a\",\"0123456789\"]");
    buf out = BUF_INIT;
    size_t n;
    out.limit = 20;
    ASSERT_EQ_INT(buf_puts(&out, "keep"), 0);
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), -ENOMEM);
    ASSERT_EQ_STR(out.data, "keep");
    out.limit = 0;
    ASSERT_EQ_INT(sio_encode(&out, &p, NULL, NULL, 0, &n), 0);
    ASSERT_EQ_STR(out.data, "keep2/custom,12[\"a\",\"0123456789\"]");
    buf_free(&out);
    sio_packet_clear(&p);
}

/* ---- JSON output as JSON.stringify writes it ------------------------------ */

/* Values and their JSON.stringify text, taken from Node 20. */
static const struct {
    uint64_t bits;
    const char *js;
} numbers[] = {
    {0x0000000000000000ULL, "0"},
    {0x8000000000000000ULL, "0"}, /* -0 */
    {0x3ff0000000000000ULL, "1"},
    {0xbff0000000000000ULL, "-1"},
    {0x3ff8000000000000ULL, "1.5"},
    {0xbff8000000000000ULL, "-1.5"},
    {0x3fb999999999999aULL, "0.1"},
    {0x3fe0000000000000ULL, "0.5"},
    {0x444b1ae4d6e2ef50ULL, "1e+21"},
    {0x4415af1d78b58c40ULL, "100000000000000000000"},
    {0xc415af1d78b58c40ULL, "-100000000000000000000"},
    {0x441ac53a7e04bcdaULL, "123456789012345680000"},
    {0x3e7ad7f29abcaf48ULL, "1e-7"},
    {0x3e8421f5f40d8376ULL, "1.5e-7"},
    {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
    {0x3eb4b6231abfd271ULL, "0.0000012345"},
    {0x0000000000000001ULL, "5e-324"},
    {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
    {0x4340000000000000ULL, "9007199254740992"},
    {0xc340000000000000ULL, "-9007199254740992"},
    {0x4340000000000001ULL, "9007199254740994"},
    {0x41e0000000000000ULL, "2147483648"},
    {0x41dfffffffc00000ULL, "2147483647"},
    {0xc1e0000000000000ULL, "-2147483648"},
    {0x3fd3333333333334ULL, "0.30000000000000004"},
    {0x405edd2f1a9fbe77ULL, "123.456"},
    {0xbe4a8310bc7a31bfULL, "-1.23456e-8"},
    {0x54b249ad2594c37dULL, "1e+100"},
    {0x7e41eb2d66005835ULL, "1.5e+300"},
    {0x4011666666666666ULL, "4.35"},
    {0x13e0000000000000ULL, "5.940911144672375e-213"}, /* power of two: lopsided rounding */
    {0x1480000000000000ULL, "6.083493012144512e-210"},
    {0x3f1a36e2eb1c432dULL, "0.0001"},
    {0x4059000000000000ULL, "100"},
    {0x430c6bf526340000ULL, "1000000000000000"},
    {0x4341c37937e08000ULL, "10000000000000000"},
    {0x41678c29dccccccdULL, "12345678.9"},
    {0x7ff8000000000000ULL, "null"}, /* NaN */
    {0x7ff0000000000000ULL, "null"}, /* Infinity */
    {0xfff0000000000000ULL, "null"},
};

TEST(json_numbers_like_javascript) {
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        UNIT_CTX("%s", numbers[i].js);
        double d;
        memcpy(&d, &numbers[i].bits, sizeof d);
        sio_packet p = packet(SIO_ACK, "/", -1, "[]");
        cJSON_AddItemToArray(p.data, cJSON_CreateNumber(d));
        char *e = encode(&p);
        char want[64];
        snprintf(want, sizeof want, "3[%s]", numbers[i].js);
        ASSERT_EQ_STR(e, want);
        free(e);
        sio_packet_clear(&p);
    }
}

TEST(json_strings_like_javascript) {
    /* JSON.stringify("\b\f\n\r\t\"\\/\x01\x1f\x7f\u00e9\u2028\u{1F600}") */
    sio_packet p = packet(SIO_ACK, "/", -1, "[]");
    cJSON_AddItemToArray(p.data, cJSON_CreateString("\b\f\n\r\t\"\\/\x01\x1f\x7f\xc3\xa9"
                                                    "\xe2\x80\xa8\xf0\x9f\x98\x80"));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "k\n\"", cJSON_CreateTrue());
    cJSON_AddItemToArray(p.data, o);
    char *e = encode(&p);
    ASSERT_EQ_STR(e, "3[\"\\b\\f\\n\\r\\t\\\"\\\\/\\u0001\\u001f\x7f\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\","
                     "{\"k\\n\\\"\":true}]");
    free(e);
    sio_packet_clear(&p);
}

TEST(json_raw_written_verbatim) {
    sio_packet p = packet(SIO_ACK, "/", -1, "[]");
    cJSON_AddItemToArray(p.data, cJSON_CreateRaw("{\"pre\":1}"));
    /* a raw value under "$binary" is not a marker (the value must be a string) */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, SIO_BINARY_KEY, cJSON_CreateRaw("\"AQID\""));
    cJSON_AddItemToArray(p.data, o);
    char *e = encode(&p);
    ASSERT_EQ_STR(e, "3[{\"pre\":1},{\"$binary\":\"AQID\"}]");
    free(e);
    sio_packet_clear(&p);
}

/* Text that JSON.stringify wrote must come back byte for byte. */
static const char *const round_trips[] = {
    ("2[\"x\",{\"a\":[1,2.5,-3e-7,\"\\u0001\\n\"],\"b\":null,\"c\":true,\"d\":false},\"\",1e+21,"
     "12345678.9,[],{},[[]],{\"\":\"\"},\"\xc3\xa9\xf0\x9f\x98\x80\",-0.0005,1e-7]"),
    "2/custom,99[\"message\",1,\"2\",{\"3\":[true]}]",
    "3456[1,\"2\",{\"3\":[false]}]",
    "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\",\"pid\":\"x\"}",
    "4{\"message\":\"Invalid namespace\",\"data\":{\"code\":4,\"n\":[0.1,0.2,0.30000000000000004]}}",
    "4\"not authorized\"",
    "1/admin,",
    "0",
    "2[\"a\",\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0002x\\u001f\"]",
    "2[\"a\",9007199254740991,-9007199254740991,1.7976931348623157e+308,5e-324]",
    "2[\"a\",{\"nested\":{\"deeper\":{\"deepest\":[[[\"z\"]]]}}}]",
    "2[42,\"numeric event name\"]",
    /* what cJSON cannot hold as it is: NUL and unpaired surrogates (json.h) */
    "2[\"\\u0000\"]", "2[\"a\\u0000b\",\"x\\u0000\\u0000\"]", "2[\"\\ud800\"]",
    "2[\"\\udc00\"]", "2[\"\\ud800x\"]", "2[\"\\ud800A\"]", "2[\"\\ud800\\ud800\"]",
    "0{\"\\u0000\":1,\"k\\u0000\":\"\\udbff\"}", "2[\"e\\u0000vent\",\"\xf0\x9f\x98\x80\"]",
};

TEST(round_trip_javascript_text) {
    for (size_t i = 0; i < sizeof round_trips / sizeof round_trips[0]; i++) {
        const char *s = round_trips[i];
        UNIT_CTX("%s", s);
        sio_packet p;
        ASSERT_EQ_INT(decode_str(s, &p), 0);
        char *e = encode(&p);
        ASSERT_EQ_STR(e, s);
        free(e);
        sio_packet_clear(&p);
    }
}

/* ---- attachments ---------------------------------------------------------- */

static const sio_bin bins123_456[] = {{(const uint8_t *)"\x01\x02\x03", 3},
                                      {(const uint8_t *)"\x04\x05\x06", 3}};

TEST(attach_suite_event) {
    sio_packet p;
    ASSERT_EQ_INT(decode_str("52-[\"message\"," PH0 "," PH1 "]", &p), 0);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), 0);
    ASSERT_EQ_INT(p.type, SIO_EVENT);
    ASSERT_EQ_INT(p.attachments, 0);
    ASSERT_JSON(p.data, "[\"message\",{\"$binary\":\"AQID\"},{\"$binary\":\"BAUG\"}]");
    /* the echo of suite test 27 */
    cJSON_ReplaceItemInArray(p.data, 0, cJSON_CreateString("message-back"));
    static const char *const ch[] = {"\x01\x02\x03", "\x04\x05\x06"};
    static const size_t len[] = {3, 3};
    check_binary(&p, "52-[\"message-back\"," PH0 "," PH1 "]", 2, ch, len);
    sio_packet_clear(&p);
}

TEST(attach_suite_ack) {
    sio_packet p;
    ASSERT_EQ_INT(decode_str("52-789[\"message-with-ack\"," PH0 "," PH1 "]", &p), 0);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), 0);
    ASSERT_EQ_INT(p.type, SIO_EVENT);
    ASSERT_EQ_INT(p.id, 789);
    /* the reply of suite test 29: the same args, minus the event name */
    sio_packet r = packet(SIO_ACK, "/", p.id, "[]");
    cJSON_AddItemToArray(r.data, cJSON_DetachItemFromArray(p.data, 1));
    cJSON_AddItemToArray(r.data, cJSON_DetachItemFromArray(p.data, 1));
    static const char *const ch[] = {"\x01\x02\x03", "\x04\x05\x06"};
    static const size_t len[] = {3, 3};
    check_binary(&r, "62-789[" PH0 "," PH1 "]", 2, ch, len);
    sio_packet_clear(&r);
    sio_packet_clear(&p);

    ASSERT_EQ_INT(decode_str("62-789[" PH1 "," PH0 "]", &p), 0);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), 0);
    ASSERT_EQ_INT(p.type, SIO_ACK);
    ASSERT_JSON(p.data, "[{\"$binary\":\"BAUG\"},{\"$binary\":\"AQID\"}]");
    sio_packet_clear(&p);
}

TEST(attach_nested_and_node_quirks) {
    sio_packet p;
    /* nested; a num used twice; extra keys and duplicate keys as JS sees them */
    ASSERT_EQ_INT(decode_str("53-[\"x\",{\"a\":{\"b\":[" PH2 "]}},"
                             "{\"_placeholder\":true,\"num\":0,\"extra\":1},"
                             "{\"_placeholder\":false,\"_placeholder\":true,\"num\":9,\"num\":1},"
                             PH0 ",{\"_placeholder\":false,\"num\":0},{\"_placeholder\":\"true\",\"num\":0},"
                             "{\"_placeholder\":1,\"num\":0}]",
                             &p),
                  0);
    sio_bin b[3] = {{(const uint8_t *)"A", 1}, {(const uint8_t *)"", 0}, {(const uint8_t *)"\xff\xfe", 2}};
    ASSERT_EQ_INT(sio_attach(&p, b, 3), 0);
    ASSERT_JSON(p.data, "[\"x\",{\"a\":{\"b\":[{\"$binary\":\"//4=\"}]}},{\"$binary\":\"QQ==\"},"
                        "{\"$binary\":\"\"},{\"$binary\":\"QQ==\"},{\"_placeholder\":false,\"num\":0},"
                        "{\"_placeholder\":\"true\",\"num\":0},{\"_placeholder\":1,\"num\":0}]");
    sio_packet_clear(&p);
}

TEST(attach_rejects_bad_placeholders) {
    static const char *bad[] = {
        "52-[\"a\"," PH0 "," PH2 "]",                                 /* num = n */
        "52-[\"a\",{\"_placeholder\":true,\"num\":-1}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":0.5}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":\"0\"}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":null}]",
        "52-[\"a\",{\"_placeholder\":true}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":1e300}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":[0]}]",
        "52-[\"a\",{\"k\":[{\"_placeholder\":true,\"num\":7}]}]",
        "52-[\"a\"," PH0 ",{\"_placeholder\":true,\"num\":0,\"num\":5}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("%s", bad[i]);
        sio_packet p;
        ASSERT_EQ_INT(decode_str(bad[i], &p), 0);
        char *before = cJSON_PrintUnformatted(p.data);
        ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), -EINVAL);
        char *after = cJSON_PrintUnformatted(p.data);
        ASSERT_EQ_STR(after, before); /* nothing replaced */
        ASSERT_EQ_INT(p.type, SIO_BINARY_EVENT);
        ASSERT_EQ_INT(p.attachments, 2);
        free(before);
        free(after);
        sio_packet_clear(&p);
    }
}

TEST(attach_count_must_match) {
    sio_packet p;
    ASSERT_EQ_INT(decode_str("52-[\"a\"," PH0 "]", &p), 0);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 1), -EINVAL);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 3), -EINVAL);
    ASSERT_EQ_INT(sio_attach(&p, NULL, 2), -EINVAL);
    ASSERT_EQ_INT(p.type, SIO_BINARY_EVENT);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), 0); /* an unused attachment is fine */
    ASSERT_EQ_INT(p.type, SIO_EVENT);
    sio_packet_clear(&p);

    /* zero attachments (never decoded, but a caller may build one) */
    p = packet(SIO_BINARY_ACK, "/x", 4, "[]");
    p.attachments = 0;
    ASSERT_EQ_INT(sio_attach(&p, NULL, 0), 0);
    ASSERT_EQ_INT(p.type, SIO_ACK);
    ASSERT_EQ_STR(p.nsp, "/x");
    ASSERT_EQ_INT(p.id, 4);
    sio_packet_clear(&p);

    /* not a binary packet: placeholders are plain data there (as in Node) */
    ASSERT_EQ_INT(decode_str("2[\"a\"," PH0 "]", &p), 0);
    ASSERT_EQ_INT(sio_attach(&p, bins123_456, 1), -EINVAL);
    ASSERT_EQ_INT(sio_attach(&p, NULL, 0), 0);
    ASSERT_EQ_INT(p.type, SIO_EVENT);
    ASSERT_JSON(p.data, "[\"a\"," PH0 "]");
    sio_packet_clear(&p);
}

TEST(attach_then_encode_round_trip) {
    static const char *in[] = {
        "52-[\"message\"," PH0 "," PH1 "]",
        "52-/admin,789[\"x\",{\"a\":[" PH1 "]}," PH0 "]",
        "62-3[" PH0 ",\"s\"," PH1 "]",
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        UNIT_CTX("%s", in[i]);
        sio_packet p;
        ASSERT_EQ_INT(decode_str(in[i], &p), 0);
        ASSERT_EQ_INT(sio_attach(&p, bins123_456, 2), 0);
        buf out = BUF_INIT, att = BUF_INIT;
        size_t off[3], n;
        ASSERT_EQ_INT(sio_encode(&out, &p, &att, off, 2, &n), 0);
        ASSERT_EQ_INT(n, 2);
        /* placeholders are renumbered in depth-first order */
        sio_packet q;
        ASSERT_EQ_INT(sio_decode(out.data, out.len, &q), 0);
        ASSERT_EQ_INT(q.type, p.type + 3);
        ASSERT_EQ_INT(q.id, p.id);
        ASSERT_EQ_STR(q.nsp, p.nsp);
        sio_bin b[2] = {{(const uint8_t *)att.data + off[0], off[1] - off[0]},
                        {(const uint8_t *)att.data + off[1], off[2] - off[1]}};
        ASSERT_EQ_INT(sio_attach(&q, b, 2), 0);
        ASSERT_TRUE(cJSON_Compare(p.data, q.data, 1));
        sio_packet_clear(&q);
        sio_packet_clear(&p);
        buf_free(&out);
        buf_free(&att);
    }
}

UNIT_MAIN()

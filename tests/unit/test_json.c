/* Unit tests for shared/proto/json.c: the internal form of NUL and unpaired
 * surrogates (modified WTF-8) in and out, bytes that are not UTF-8, raw
 * bytes to strings and back, and JSON.stringify's output.  The grammar
 * itself is covered by test_sio.c (decode_accepts / decode_rejects). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "unit.h"

/* json_print of json_parse of in. */
static char *again(const char *in, size_t len) {
    cJSON *v = json_parse(in, len);
    if (!v) return NULL;
    char *out = json_print(v);
    cJSON_Delete(v);
    return out;
}

#define ASSERT_AGAIN(in, want)                                                \
    do {                                                                      \
        char *got_ = again((in), sizeof(in) - 1);                            \
        ASSERT_TRUE(got_ != NULL);                                            \
        ASSERT_EQ_STR(got_, (want));                                          \
        free(got_);                                                           \
    } while (0)

TEST(nul_and_lone_surrogates_have_an_internal_form) {
    cJSON *v = json_parse_str("[\"a\\u0000b\",\"\\ud800\",\"\\udfff!\",{\"k\\u0000\":0}]");
    ASSERT_TRUE(v != NULL);
    ASSERT_MEM(cJSON_GetArrayItem(v, 0)->valuestring, 4, "a\xc0\x80" "b", 4);
    ASSERT_EQ_STR(cJSON_GetArrayItem(v, 1)->valuestring, "\xed\xa0\x80");
    ASSERT_EQ_STR(cJSON_GetArrayItem(v, 2)->valuestring, "\xed\xbf\xbf!");
    ASSERT_MEM(cJSON_GetArrayItem(v, 3)->child->string, 3, "k\xc0\x80", 3);
    char *s = json_print(v);
    ASSERT_EQ_STR(s, "[\"a\\u0000b\",\"\\ud800\",\"\\udfff!\",{\"k\\u0000\":0}]");
    free(s);
    cJSON_Delete(v);
    /* a pair is one character, written as itself */
    ASSERT_AGAIN("[\"\\ud83d\\ude00\"]", "[\"\xf0\x9f\x98\x80\"]");
    ASSERT_AGAIN("[\"\\uD800\\uDC00\"]", "[\"\xf0\x90\x80\x80\"]");
    /* two highs, a low then a high: four lone halves */
    ASSERT_AGAIN("[\"\\ud800\\ud800\\udc00\\ud800\"]", "[\"\\ud800\xf0\x90\x80\x80\\ud800\"]");
    ASSERT_AGAIN("\"\\u0000\\u0000\"", "\"\\u0000\\u0000\"");
}

TEST(bytes_that_are_not_utf8_become_replacement_characters) {
    /* what a JavaScript peer decoding them would see */
    ASSERT_AGAIN("[\"a\xff" "b\"]", "[\"a\xef\xbf\xbd" "b\"]");
    ASSERT_AGAIN("[\"\xc0\x80\"]", "[\"\xef\xbf\xbd\xef\xbf\xbd\"]"); /* never a NUL */
    ASSERT_AGAIN("[\"\xed\xa0\x80\"]", "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]");
    ASSERT_AGAIN("[\"\xe2\x82\"]", "[\"\xef\xbf\xbd\xef\xbf\xbd\"]"); /* cut short */
    ASSERT_AGAIN("[\"\xf4\x90\x80\x80\"]", "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]");
    ASSERT_AGAIN("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]");
    /* outside strings only JSON's own bytes */
    ASSERT_TRUE(json_parse("[1]\xff", 4) == NULL);
    ASSERT_TRUE(json_parse("\xef\xbb\xbf[1]", 6) == NULL);
}

TEST(raw_bytes_to_strings_and_back) {
    const char raw[] = "a\0b\xff\xc0\x80z";
    cJSON *v = json_string(raw, sizeof raw - 1);
    ASSERT_TRUE(v != NULL);
    ASSERT_EQ_STR(v->valuestring, "a\xc0\x80" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
    char out[64];
    size_t n = json_bytes(v->valuestring, out);
    ASSERT_MEM(out, n, "a\0b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz", 13);
    char *s = json_print(v);
    ASSERT_EQ_STR(s, "\"a\\u0000b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\"");
    free(s);
    /* in place */
    n = json_bytes(v->valuestring, v->valuestring);
    ASSERT_EQ_INT(n, 13);
    cJSON_Delete(v);
    /* an unpaired surrogate has no UTF-8 form: U+FFFD, as Buffer.from writes */
    v = json_parse_str("\"\\ud800x\\udfff\\ud83d\\ude00\"");
    n = json_bytes(v->valuestring, out);
    ASSERT_MEM(out, n, "\xef\xbf\xbdx\xef\xbf\xbd\xf0\x9f\x98\x80", 11);
    cJSON_Delete(v);
    v = json_string("", 0);
    ASSERT_EQ_STR(v->valuestring, "");
    cJSON_Delete(v);
}

TEST(written_as_json_stringify_writes) {
    ASSERT_AGAIN(" {\"a\" : [ 1 , 2.50, -0, 1E3, 1e-7 ], \"b\":\"\\/\\u00e9\\u001f\"} ",
                 "{\"a\":[1,2.5,0,1000,1e-7],\"b\":\"/\xc3\xa9\\u001f\"}");
    cJSON *v = cJSON_CreateArray();
    cJSON_AddItemToArray(v, cJSON_CreateNumber(1.0 / 0.0));
    cJSON_AddItemToArray(v, cJSON_CreateRaw("{\"raw\":1}"));
    char *s = json_print(v);
    ASSERT_EQ_STR(s, "[null,{\"raw\":1}]");
    free(s);
    cJSON_Delete(v);
    /* nesting: JSON_MAX_DEPTH containers read and written, one more not */
    char deep[2 * JSON_MAX_DEPTH + 3];
    size_t k = 0;
    for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[k++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[k++] = ']';
    cJSON *d = json_parse(deep, k);
    ASSERT_TRUE(d != NULL);
    buf b = BUF_INIT;
    ASSERT_EQ_INT(json_write(&b, d, NULL, NULL), 0);
    ASSERT_EQ_INT(b.len, k);
    cJSON *in = d;
    while (in->child) in = in->child;
    cJSON_AddItemToArray(in, cJSON_CreateArray());
    buf_reset(&b);
    ASSERT_EQ_INT(json_write(&b, d, NULL, NULL), -EINVAL);
    ASSERT_EQ_INT(b.len, 0);
    buf_free(&b);
    cJSON_Delete(d);
    memmove(deep + 1, deep, k);
    deep[0] = '[';
    deep[++k] = ']';
    ASSERT_TRUE(json_parse(deep, k + 1) == NULL);
}

/* Found by fuzz_records: ack ids and seqs of records were cast from any
 * double (1e30, -1e300: undefined behaviour). */
TEST(integer_only_when_exact) {
    static const struct {
        const char *text;
        int ok;
        long long v;
    } rows[] = {{"0", 1, 0}, {"-7", 1, -7}, {"9007199254740992", 1, 9007199254740992LL},
                {"-9007199254740992", 1, -9007199254740992LL}, {"9007199254740994", 0, 0},
                {"1e300", 0, 0}, {"-1e30", 0, 0}, {"1.5", 0, 0}, {"\"3\"", 0, 0}, {"null", 0, 0}};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        UNIT_CTX("%s", rows[i].text);
        cJSON *v = json_parse_str(rows[i].text);
        ASSERT_TRUE(v != NULL);
        long long out = 99;
        ASSERT_EQ_INT(json_integer(v, &out), rows[i].ok);
        ASSERT_TRUE(out == (rows[i].ok ? rows[i].v : 99));
        cJSON_Delete(v);
    }
}

UNIT_MAIN()

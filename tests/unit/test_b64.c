/* Unit tests for shared/b64.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/b64.h"
#include "unit.h"

/* RFC 4648 section 10, plus the Engine.IO example. */
static const struct {
    const char *raw;
    size_t len;
    const char *b64;
} vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    {"\x01\x02\x03\x04", 4, "AQIDBA=="},
    {"\x01\x02\x03", 3, "AQID"},
    {"\x04", 1, "BA=="},
    {"\x00", 1, "AA=="},
    {"\xfb\xff\xbf", 3, "+/+/"},
    {"\x00\x00\x00\x00\x00", 5, "AAAAAAA="},
};
#define NVEC (sizeof vectors / sizeof vectors[0])

TEST(encode_vectors) {
    for (size_t i = 0; i < NVEC; i++) {
        UNIT_CTX("vector %zu", i);
        buf b = BUF_INIT;
        ASSERT_EQ_INT(b64_encode(&b, vectors[i].raw, vectors[i].len), 0);
        ASSERT_MEM(b.data, b.len, vectors[i].b64, strlen(vectors[i].b64));
        ASSERT_EQ_INT(b.data[b.len], 0);
        buf_free(&b);
    }
}

TEST(encode_appends) {
    buf b = BUF_INIT;
    ASSERT_EQ_INT(buf_puts(&b, "b"), 0);
    ASSERT_EQ_INT(b64_encode(&b, "\x01\x02\x03\x04", 4), 0);
    ASSERT_EQ_STR(b.data, "bAQIDBA==");
    buf_free(&b);
}

TEST(encode_respects_limit) {
    buf b = BUF_INIT;
    b.limit = 7;
    ASSERT_EQ_INT(buf_puts(&b, "xyz"), 0);
    ASSERT_EQ_INT(b64_encode(&b, "abcd", 4), -ENOMEM); /* needs 8 more */
    ASSERT_EQ_STR(b.data, "xyz");
    ASSERT_EQ_INT(b64_encode(&b, "abc", 3), 0); /* exactly 7 */
    ASSERT_EQ_STR(b.data, "xyzYWJj");
    buf_free(&b);
}

TEST(decode_vectors) {
    for (size_t i = 0; i < NVEC; i++) {
        UNIT_CTX("vector %zu", i);
        const char *s = vectors[i].b64;
        uint8_t out[16];
        ASSERT_TRUE(b64_decoded_max(strlen(s)) <= sizeof out);
        long n = b64_decode(out, s, strlen(s));
        ASSERT_EQ_INT(n, (long)vectors[i].len);
        ASSERT_MEM(out, (size_t)n, vectors[i].raw, vectors[i].len);
    }
}

TEST(decode_in_place) {
    for (size_t i = 0; i < NVEC; i++) {
        UNIT_CTX("vector %zu", i);
        char tmp[16];
        size_t len = strlen(vectors[i].b64);
        memcpy(tmp, vectors[i].b64, len);
        long n = b64_decode((uint8_t *)tmp, tmp, len);
        ASSERT_EQ_INT(n, (long)vectors[i].len);
        ASSERT_MEM(tmp, (size_t)n, vectors[i].raw, vectors[i].len);
    }
}

TEST(all_bytes_round_trip) {
    uint8_t raw[256], back[256];
    for (int i = 0; i < 256; i++) raw[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len += (len < 10 ? 1 : 37)) {
        UNIT_CTX("len %zu", len);
        buf b = BUF_INIT;
        ASSERT_EQ_INT(b64_encode(&b, raw, len), 0);
        ASSERT_EQ_INT(b.len, (len + 2) / 3 * 4);
        ASSERT_TRUE(b64_decoded_max(b.len) >= len);
        ASSERT_TRUE(b64_decoded_max(b.len) <= sizeof back);
        ASSERT_EQ_INT(b64_decode(back, b.data, b.len), (long)len);
        ASSERT_MEM(back, len, raw, len);
        buf_free(&b);
    }
}

/* A string literal with its length, NUL bytes included. */
#define LIT(s) {s, sizeof(s) - 1}

TEST(decode_rejects) {
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        /* length not a multiple of 4 */
        LIT("Z"), LIT("Zg"), LIT("Zg="), LIT("Zm9vY"),
        {"Zm9vYmFy", 5}, {"Zm9vYmFy", 7}, {"Zm9vYg==", 6}, {"Zm9v", 2},
        /* padding not at the end */
        LIT("Zg==Zg=="), LIT("Zm8=Zm9v"), LIT("=Zg="),
        /* malformed padding */
        LIT("Z==="), LIT("Zg=A"), LIT("===="), LIT("Z=g="), LIT("Zm9v===="),
        LIT("Zg.="), LIT("Zg-="), LIT("Zg\x00="),
        /* whitespace */
        LIT("Zm9v YQ="), LIT("Zm9v\nYQ="), LIT(" Zm9"), LIT("Zm9 "), LIT("Zm9v\r\n"),
        /* other alphabets and bytes */
        LIT("Zm-v"), LIT("Zm_v"), LIT("Zm.v"), LIT("Zm9\x80"), LIT("Zm\x00v"),
        LIT("Zm9vYg=\x00"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("case %zu", i);
        uint8_t out[16];
        char *exact = malloc(bad[i].len + 1); /* ASan catches reads past len */
        memcpy(exact, bad[i].s, bad[i].len);
        long rc = b64_decode(out, exact, bad[i].len);
        free(exact);
        ASSERT_EQ_INT(rc, -EINVAL);
    }
}

TEST(decode_accepts_nonzero_pad_bits) {
    /* "Zh==" carries bits past the last byte; like Node we ignore them. */
    uint8_t out[4];
    ASSERT_EQ_INT(b64_decode(out, "Zh==", 4), 1);
    ASSERT_EQ_INT(out[0], 'f');
    ASSERT_EQ_INT(b64_decode(out, "Zm9=", 4), 2);
    ASSERT_MEM(out, 2, "fo", 2);
}

TEST(decoded_max) {
    ASSERT_EQ_INT(b64_decoded_max(0), 0);
    ASSERT_EQ_INT(b64_decoded_max(4), 3);
    ASSERT_EQ_INT(b64_decoded_max(8), 6);
    ASSERT_EQ_INT(b64_decoded_max(7), 3);
}

TEST(url_encode) {
    static const struct {
        const char *raw;
        size_t len;
        const char *want;
    } v[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\xfb\xff", 2, "-_8"},
        {"\x01\x02\x03\x04", 4, "AQIDBA"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        UNIT_CTX("case %zu", i);
        char dst[16];
        size_t need = (v[i].len * 4 + 2) / 3 + 1;
        memset(dst, 'X', sizeof dst);
        b64url_encode(dst, v[i].raw, v[i].len);
        ASSERT_EQ_STR(dst, v[i].want);
        ASSERT_EQ_INT(strlen(dst) + 1, need); /* the documented size is exact */
    }
}

TEST(url_encode_15_bytes_is_20_chars) {
    /* Engine.IO sids: 15 random bytes give 20 characters. */
    uint8_t raw[15];
    char dst[(15 * 4 + 2) / 3 + 1];
    for (int i = 0; i < 15; i++) raw[i] = (uint8_t)(i * 37 + 250);
    b64url_encode(dst, raw, sizeof raw);
    ASSERT_EQ_INT(strlen(dst), 20);
    ASSERT_TRUE(strspn(dst, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 20);
}

UNIT_MAIN()

/* libFuzzer driver for the JSON reader and writer (shared/proto/json.c).
 *
 * json_parse the input; when it is accepted:
 *  - every string and key in the tree is in the internal form (UTF-8, plus
 *    C0 80 for NUL and ED A0..BF xx for unpaired surrogates, nothing else);
 *  - json_print succeeds, its output is accepted again, prints to the same
 *    bytes (the writer is a fixed point) and is plain JSON text: printable
 *    ASCII outside strings, no raw control characters;
 *  - json_bytes of every string gives well-formed UTF-8 (and NULs), no
 *    longer than the string.
 * Any input: json_string of the raw bytes gives an internal-form string;
 * for ASCII input (NULs included) json_bytes gives the input back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/json.h"

/* 1 when s is UTF-8 apart from C0 80 and encoded surrogates (internal). */
static int internal_form(const unsigned char *s, int allow_internal) {
    while (*s) {
        unsigned char c = *s;
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (allow_internal && c == 0xC0 && s[1] == 0x80) {
            s += 2;
            continue;
        }
        if (!n) return 0;
        for (size_t k = 1; k < n; k++)
            if (s[k] < 0x80 || s[k] > 0xBF) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] >= 0xA0 && !allow_internal) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] > 0x8F) return 0;
        s += n;
    }
    return 1;
}

static void check_strings(const cJSON *v) {
    if (v->string) CHECK(internal_form((const unsigned char *)v->string, 1));
    if (cJSON_IsString(v)) {
        CHECK(internal_form((const unsigned char *)v->valuestring, 1));
        size_t l = strlen(v->valuestring);
        char *raw = malloc(l + 1);
        CHECK(raw);
        size_t n = json_bytes(v->valuestring, raw);
        CHECK(n <= l);
        raw[n] = 0;
        for (size_t i = 0; i < n; i++)
            if (!raw[i]) raw[i] = 'Z'; /* NUL is fine in the bytes; check the rest */
        CHECK(internal_form((const unsigned char *)raw, 0));
        free(raw);
    }
    for (const cJSON *c = v->child; c; c = c->next) check_strings(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *v = json_parse((const char *)data, size);
    if (v) {
        check_strings(v);
        char *a = json_print(v);
        CHECK(a);
        for (const char *p = a; *p; p++) CHECK((unsigned char)*p >= 0x20);
        CHECK(internal_form((const unsigned char *)a, 0)); /* plain UTF-8 JSON text */
        cJSON *w = json_parse(a, strlen(a));
        CHECK(w);
        char *b = json_print(w);
        CHECK(b && strcmp(a, b) == 0);
        free(a);
        free(b);
        cJSON_Delete(w);
        cJSON_Delete(v);
    }
    cJSON *s = json_string(data, size);
    CHECK(s);
    CHECK(internal_form((const unsigned char *)s->valuestring, 1));
    size_t l = strlen(s->valuestring);
    char *raw = malloc(l + 1);
    CHECK(raw);
    size_t n = json_bytes(s->valuestring, raw);
    int ascii = 1; /* NULs included: they must come back as they were */
    for (size_t i = 0; i < size && ascii; i++) ascii = data[i] < 0x80;
    if (ascii) CHECK(n == size && memcmp(raw, data, size) == 0);
    free(raw);
    cJSON_Delete(s);
    return 0;
}

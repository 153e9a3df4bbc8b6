/* libFuzzer driver for the MessagePack codec (shared/proto/mpack.c).
 *
 * mpack_decode the input; when it is accepted:
 *  - the value nests at most MPACK_MAX_DEPTH containers deep;
 *  - no proper prefix of the input, and not the input with a byte more,
 *    decodes (msgpack values are self-delimiting; trailing bytes are an
 *    error);
 *  - mpack_encode of the value succeeds, except with -EINVAL (and nothing
 *    appended) when the input held a map {"$binary": <not base64>}, which
 *    reads as a bad binary marker;
 *  - its output decodes again to an equal value (cJSON_Compare; numbers
 *    by value with NaN equal to NaN, markers by the bytes they stand for),
 *    and encodes again to the very same bytes. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "base/b64.h"
#include "proto/mpack.h"
#include "proto/sio_parser.h"

static const cJSON *marker(const cJSON *v);

/* Containers nested in v (a scalar or a binary marker, which was one bin
 * value on the wire: 0). */
static int depth(const cJSON *v) {
    if ((!cJSON_IsArray(v) && !cJSON_IsObject(v)) || marker(v)) return 0;
    int d = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        int cd = depth(c);
        if (cd > d) d = cd;
    }
    return d + 1;
}

/* What mpack_encode takes for a binary marker: an object whose only member
 * is "$binary" with a string. */
static const cJSON *marker(const cJSON *v) {
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 1) return NULL;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, SIO_BINARY_KEY);
    return cJSON_IsString(b) ? b : NULL;
}

/* The bytes of a marker (malloc'ed, *n), or NULL when it is not base64. */
static uint8_t *marker_bytes(const cJSON *b, long *n) {
    size_t l = strlen(b->valuestring);
    uint8_t *out = malloc(b64_decoded_max(l) + 1);
    CHECK(out);
    *n = b64_decode(out, b->valuestring, l);
    if (*n < 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int has_bad_marker(const cJSON *v) {
    const cJSON *b = marker(v);
    if (b) {
        long n;
        uint8_t *bytes = marker_bytes(b, &n);
        free(bytes);
        return bytes == NULL;
    }
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        for (const cJSON *c = v->child; c; c = c->next)
            if (has_bad_marker(c)) return 1;
    return 0;
}

/* Markers, or numbers cJSON_Compare cannot compare (NaN, infinities). */
static int needs_own_compare(const cJSON *v) {
    if (cJSON_IsNumber(v)) return !isfinite(v->valuedouble);
    if (marker(v)) return 1;
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        for (const cJSON *c = v->child; c; c = c->next)
            if (needs_own_compare(c)) return 1;
    return 0;
}

/* Equal values: same types, member order and keys; numbers by value (NaN
 * equals NaN); markers by their bytes. */
static int same(const cJSON *a, const cJSON *b) {
    if ((a->type & 0xFF) != (b->type & 0xFF)) return 0;
    const cJSON *ma = marker(a), *mb = marker(b);
    if (ma || mb) {
        if (!ma || !mb) return 0;
        long na, nb;
        uint8_t *ba = marker_bytes(ma, &na), *bb = marker_bytes(mb, &nb);
        int eq = ba && bb && na == nb && memcmp(ba, bb, (size_t)na) == 0;
        free(ba);
        free(bb);
        return eq;
    }
    switch (a->type & 0xFF) {
    case cJSON_Number:
        return a->valuedouble == b->valuedouble || (isnan(a->valuedouble) && isnan(b->valuedouble));
    case cJSON_String: return strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array:
    case cJSON_Object: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            if ((x->string == NULL) != (y->string == NULL)) return 0;
            if (x->string && strcmp(x->string, y->string) != 0) return 0;
            if (!same(x, y)) return 0;
        }
        return !x && !y;
    }
    default: return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *v = mpack_decode(data, size);
    if (!v) return 0;
    CHECK(size > 0);
    CHECK(depth(v) <= MPACK_MAX_DEPTH);

    /* self-delimiting: no proper prefix decodes, nor the input plus a byte */
    cJSON *p = mpack_decode(data, size - 1);
    CHECK(p == NULL);
    uint8_t *longer = malloc(size + 1);
    CHECK(longer);
    memcpy(longer, data, size);
    longer[size] = 0xc0;
    p = mpack_decode(longer, size + 1);
    free(longer);
    CHECK(p == NULL);

    buf out = BUF_INIT;
    int rc = mpack_encode(&out, v);
    if (has_bad_marker(v)) {
        CHECK(rc == -EINVAL);
        CHECK(out.len == 0);
        buf_free(&out);
        cJSON_Delete(v);
        return 0;
    }
    CHECK(rc == 0);
    CHECK(out.len > 0);

    cJSON *w = mpack_decode(out.data, out.len);
    CHECK(w != NULL);
    if (!needs_own_compare(v)) CHECK(cJSON_Compare(v, w, 1));
    CHECK(same(v, w));

    buf again = BUF_INIT;
    CHECK(mpack_encode(&again, w) == 0);
    CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);

    buf_free(&again);
    buf_free(&out);
    cJSON_Delete(w);
    cJSON_Delete(v);
    return 0;
}

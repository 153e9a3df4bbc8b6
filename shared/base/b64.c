/* b64: standard and base64url encoders, strict standard decoder (see b64.h). */
#include "base/b64.h"

#include <errno.h>
#include <limits.h>

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes the base64 of len bytes into dst with the given alphabet; pads with
 * '=' when pad is set.  Returns the number of chars written (no NUL). */
static size_t encode_into(char *dst, const uint8_t *s, size_t len,
                          const char *alpha, int pad) {
    char *d = dst;
    size_t i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *d++ = alpha[v >> 18];
        *d++ = alpha[(v >> 12) & 63];
        *d++ = alpha[(v >> 6) & 63];
        *d++ = alpha[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *d++ = alpha[v >> 18];
        *d++ = alpha[(v >> 12) & 63];
        if (pad) {
            *d++ = '=';
            *d++ = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *d++ = alpha[v >> 18];
        *d++ = alpha[(v >> 12) & 63];
        *d++ = alpha[(v >> 6) & 63];
        if (pad) *d++ = '=';
    }
    return (size_t)(d - dst);
}

int b64_encode(buf *out, const void *data, size_t len) {
    if (len / 3 >= SIZE_MAX / 4 - 1) return -ENOMEM;
    size_t n = (len + 2) / 3 * 4;
    int rc = buf_reserve(out, n);
    if (rc) return rc;
    out->len += encode_into(out->data + out->len, data, len, std_alpha, 1);
    out->data[out->len] = 0;
    return 0;
}

void b64url_encode(char *dst, const void *data, size_t len) {
    dst[encode_into(dst, data, len, url_alpha, 0)] = 0;
}

/* Value of one standard-alphabet char, or -1. */
static int dec(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long b64_decode(uint8_t *dst, const char *src, size_t len) {
    if (len % 4 || b64_decoded_max(len) > (size_t)LONG_MAX) return -EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        /* Read the whole quad before writing: dst may alias src. */
        int a = dec((unsigned char)src[i]);
        int b = dec((unsigned char)src[i + 1]);
        int c = dec((unsigned char)src[i + 2]);
        int d = dec((unsigned char)src[i + 3]);
        int last = i + 4 == len;
        if (a < 0 || b < 0) return -EINVAL;
        if (c < 0 || d < 0) {
            /* Only the final quad may be padded: "xx==" or "xxx=". */
            if (!last || src[i + 3] != '=') return -EINVAL;
            if (c < 0 && src[i + 2] != '=') return -EINVAL;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 |
                     (uint32_t)(c < 0 ? 0 : c) << 6 | (uint32_t)(d < 0 ? 0 : d);
        dst[o++] = (uint8_t)(v >> 16);
        if (c >= 0) dst[o++] = (uint8_t)(v >> 8);
        if (d >= 0) dst[o++] = (uint8_t)v;
    }
    return (long)o;
}

/* util: clock, random ids, default paths (see util.h). */
#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/b64.h"

int util_grow(void *items, size_t *cap, size_t n, size_t elem, size_t min) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : min;
    if (c <= n) c = n + 1;
    if (elem && c > SIZE_MAX / elem) return -ENOMEM;
    void **p = items;
    void *np = realloc(*p, c * elem);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

int64_t util_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fill_random(void *p, size_t n) {
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

int util_random_id(char out[UTIL_ID_LEN + 1]) {
    uint8_t raw[15];
    int rc = fill_random(raw, sizeof raw);
    if (rc) return rc;
    b64url_encode(out, raw, sizeof raw);
    return 0;
}

uint32_t util_random_u32(void) {
    uint32_t v = 0;
    if (fill_random(&v, sizeof v)) v = (uint32_t)getpid() ^ (uint32_t)util_now_ms();
    return v;
}

int util_is_id(const char *s, size_t len) {
    if (len != UTIL_ID_LEN) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int util_parse_long(const char *s, long min, long max, long *out) {
    if (!s || !*s) return -EINVAL;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -EINVAL;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -EINVAL;
    *out = v;
    return 0;
}

/* netaddr: IP addresses and CIDR ranges of the config (see netaddr.h). */
#include "base/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and its prefix in bits
 * over those 16 bytes. */
typedef struct netaddr {
    unsigned char b[16];
    int bits;
} netaddr;

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses "ADDR" or "ADDR/PREFIX" (len bytes of s); 0 or -EINVAL. */
static int parse(const char *s, size_t len, int allow_prefix, netaddr *out) {
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *slash = strchr(tmp, '/');
    long prefix = -1;
    if (slash) {
        if (!allow_prefix || !slash[1]) return -EINVAL;
        char *end;
        prefix = strtol(slash + 1, &end, 10);
        if (*end || prefix < 0) return -EINVAL;
        *slash = 0;
    }
    if (inet_pton(AF_INET, tmp, out->b + 12) == 1) {
        if (prefix > 32) return -EINVAL;
        memcpy(out->b, v4_mapped, 12);
        out->bits = 96 + (int)(prefix < 0 ? 32 : prefix);
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, out->b) == 1) {
        if (prefix > 128) return -EINVAL;
        out->bits = (int)(prefix < 0 ? 128 : prefix);
        return 0;
    }
    return -EINVAL;
}

static int contains(const netaddr *range, const netaddr *a) {
    int full = range->bits / 8, rest = range->bits % 8;
    if (memcmp(range->b, a->b, (size_t)full)) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (range->b[full] & mask) == (a->b[full] & mask);
}

/* Calls fn on each entry of list; stops at a non-zero return. */
static int each(const char *list, int (*fn)(void *arg, const char *s, size_t len), void *arg) {
    for (const char *p = list; p && *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n) {
            int rc = fn(arg, p, n);
            if (rc) return rc;
        }
        p += n;
    }
    return 0;
}

typedef struct check_ctx {
    char *err;
    size_t errlen;
} check_ctx;

static int check_one(void *arg, const char *s, size_t len) {
    check_ctx *c = arg;
    netaddr a;
    if (parse(s, len, 1, &a) == 0) return 0;
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "'%.*s' is not an address or ADDRESS/PREFIX", (int)(len > 64 ? 64 : len), s);
    return -EINVAL;
}

int netaddr_list_check(const char *list, char *err, size_t errlen) {
    check_ctx c = {err, errlen};
    return each(list, check_one, &c);
}

static int match_one(void *arg, const char *s, size_t len) {
    netaddr r;
    return parse(s, len, 1, &r) == 0 && contains(&r, arg);
}

int netaddr_in_list(const char *list, const char *addr) {
    netaddr a;
    if (!list || !addr || parse(addr, strlen(addr), 0, &a)) return 0;
    return each(list, match_one, &a) > 0;
}

int netaddr_valid(const char *addr) {
    netaddr a;
    return addr && parse(addr, strlen(addr), 0, &a) == 0;
}

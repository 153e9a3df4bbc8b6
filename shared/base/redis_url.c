/* redis_url: Redis server URLs (see redis_url.h). */
#include "base/redis_url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t n, const char *why) {
    if (err && n) snprintf(err, n, "%s", why);
    return -EINVAL;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (size n); -1 when it does not fit or a
 * %XX is malformed or decodes to NUL. */
static int decode(char *out, size_t n, const char *s, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return -1;
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            if (!c) return -1;
            i += 2;
        }
        if (o + 1 >= n) return -1;
        out[o++] = c;
    }
    out[o] = 0;
    return 0;
}

static int number(const char *s, size_t len, long max, long *out) {
    if (!len || len > 10) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return -1;
    *out = v;
    return 0;
}

/* [[USER]:PASSWORD@] at the start of *p, before end (the end of the
 * authority); the last '@' ends it, as URL parsers read it.  Advances *p. */
static int userinfo(const char **p, const char *end, redis_url *u, char *err, size_t n) {
    const char *at = NULL;
    for (const char *q = *p; q < end; q++)
        if (*q == '@') at = q;
    if (!at) return 0;
    const char *colon = memchr(*p, ':', (size_t)(at - *p));
    if (!colon) return bad(err, n, "the user needs ':PASSWORD' before '@'");
    if (decode(u->user, sizeof u->user, *p, (size_t)(colon - *p)) ||
        decode(u->password, sizeof u->password, colon + 1, (size_t)(at - colon - 1)))
        return bad(err, n, "bad user or password (percent-encode special characters)");
    u->has_password = 1;
    *p = at + 1;
    return 0;
}

static int parse_tcp(const char *p, redis_url *u, char *err, size_t n) {
    const char *end = p + strlen(p);
    if (strpbrk(p, "?#")) return bad(err, n, "no query or fragment in a redis:// URL (the database is /DB)");
    const char *auth_end = memchr(p, '/', (size_t)(end - p));
    if (userinfo(&p, auth_end ? auth_end : end, u, err, n)) return -EINVAL;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end, *port = NULL;
    if (*p == '[') { /* [IPv6] */
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb || rb - p - 1 >= (long)sizeof u->host || rb == p + 1) return bad(err, n, "bad [IPv6] host");
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        if (rb + 1 < hend) {
            if (rb[1] != ':') return bad(err, n, "bad [IPv6] host");
            port = rb + 2;
        }
    } else {
        port = memchr(p, ':', (size_t)(hend - p));
        const char *he = port ? port : hend;
        if (he == p || he - p >= (long)sizeof u->host) return bad(err, n, "a host is needed");
        memcpy(u->host, p, (size_t)(he - p));
        if (port) port++;
    }
    long v;
    if (port) {
        if (number(port, (size_t)(hend - port), 65535, &v) || v == 0) return bad(err, n, "bad port");
        u->port = (int)v;
    }
    if (slash && slash + 1 < end) {
        if (number(slash + 1, (size_t)(end - slash - 1), 1000000, &v)) return bad(err, n, "bad database number");
        u->db = v;
    }
    return 0;
}

static int parse_unix(const char *p, redis_url *u, char *err, size_t n) {
    const char *end = p + strlen(p);
    const char *path = memchr(p, '/', (size_t)(end - p)); /* the userinfo comes before it */
    if (userinfo(&p, path ? path : end, u, err, n)) return -EINVAL;
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end;
    if (*p != '/' || pend - p >= (long)sizeof u->path) return bad(err, n, "unix:// needs an absolute socket path");
    memcpy(u->path, p, (size_t)(pend - p));
    if (q) {
        long v;
        if (strncmp(q, "?db=", 4) || number(q + 4, (size_t)(end - q - 4), 1000000, &v))
            return bad(err, n, "the only query is ?db=N");
        u->db = v;
    }
    return 0;
}

int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    for (const char *s = url; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f) return bad(err, errlen, "spaces or control characters in the URL");
    if (!strncmp(url, "redis://", 8)) return parse_tcp(url + 8, out, err, errlen);
    if (!strncmp(url, "unix://", 7)) return parse_unix(url + 7, out, err, errlen);
    return bad(err, errlen, "expected redis://HOST[:PORT][/DB] or unix:///PATH");
}

const char *redis_url_text(const redis_url *u, char *out, size_t n) {
    const char *auth = u->has_password ? "***@" : "";
    char user[160] = "";
    if (u->has_password) snprintf(user, sizeof user, "%s:", u->user);
    if (u->path[0]) snprintf(out, n, "unix://%s%s%s?db=%ld", user, auth, u->path, u->db);
    else if (strchr(u->host, ':')) snprintf(out, n, "redis://%s%s[%s]:%d/%ld", user, auth, u->host, u->port, u->db);
    else snprintf(out, n, "redis://%s%s%s:%d/%ld", user, auth, u->host, u->port, u->db);
    return out;
}

/* json: JSON text in and out, binary-safe (see json.h). */
#include "proto/json.h"

#include <errno.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* ---- UTF-8 ------------------------------------------------------------------ */

/* The length of the well-formed UTF-8 sequence at p (avail bytes there),
 * or 0 when p does not start one (encoded surrogates included). */
static size_t utf8_len(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

static const char FFFD[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
static const char NUL_FORM[2] = {(char)0xC0, (char)0x80};

/* The internal form of code unit u (a surrogate, or 0) into out. */
static int put_unit(buf *out, long u) {
    if (u == 0) return buf_append(out, NUL_FORM, 2);
    char e[3] = {(char)0xED, (char)(0x80 | ((u >> 6) & 0x3F)), (char)(0x80 | (u & 0x3F))};
    return buf_append(out, e, 3);
}

/* ---- reading: a strict check, then cJSON ---------------------------------------
 * cJSON accepts more than JSON.parse does (leading '+' or '0' in numbers,
 * "1.", raw control characters in strings, any byte <= 0x20 as whitespace),
 * so the text is first checked against the JSON grammar.  The check also
 * notes what cJSON cannot read as it is (\u0000, unpaired surrogate escapes,
 * bytes that are not UTF-8): such a text is rewritten into the internal form
 * first (normalize). */

typedef struct {
    const unsigned char *s;
    size_t len, i;
    int rewrite; /* the text needs normalize() */
} jscan;

static int is_json_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(jscan *j) {
    while (j->i < j->len && is_json_ws(j->s[j->i])) j->i++;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads "XXXX" (after a \u) at *i. */
static long read_hex4(const unsigned char *s, size_t len, size_t *i) {
    if (len - *i < 4) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[*i + (size_t)k]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    *i += 4;
    return v;
}

/* A high surrogate escape at *i followed by \u + a low one: the pair. */
static int low_follows(const unsigned char *s, size_t len, size_t i) {
    if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return 0;
    i += 2;
    long lo = read_hex4(s, len, &i);
    return lo >= 0xDC00 && lo <= 0xDFFF;
}

static int check_string(jscan *j) {
    j->i++; /* the opening quote */
    while (j->i < j->len) {
        unsigned char c = j->s[j->i];
        if (c == '"') {
            j->i++;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c >= 0x80) {
            size_t n = utf8_len(j->s + j->i, j->len - j->i);
            if (!n) j->rewrite = 1, n = 1;
            j->i += n;
            continue;
        }
        j->i++;
        if (c != '\\') continue;
        if (j->i >= j->len) return -1;
        switch (j->s[j->i++]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
        case 'u': {
            long u = read_hex4(j->s, j->len, &j->i);
            if (u < 0) return -1;
            if (u >= 0xD800 && u <= 0xDBFF && low_follows(j->s, j->len, j->i)) j->i += 6;
            else if (u == 0 || (u >= 0xD800 && u <= 0xDFFF)) j->rewrite = 1;
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

static size_t digits_at(const jscan *j, size_t i) {
    size_t n = 0;
    while (i + n < j->len && is_digit(j->s[i + n])) n++;
    return n;
}

static int check_number(jscan *j) {
    if (j->s[j->i] == '-') j->i++;
    size_t n = digits_at(j, j->i);
    if (n == 0 || (n > 1 && j->s[j->i] == '0')) return -1;
    j->i += n;
    if (j->i < j->len && j->s[j->i] == '.') {
        n = digits_at(j, ++j->i);
        if (n == 0) return -1;
        j->i += n;
    }
    if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        n = digits_at(j, j->i);
        if (n == 0) return -1;
        j->i += n;
    }
    return 0;
}

static int check_literal(jscan *j, const char *lit) {
    size_t n = strlen(lit);
    if (j->len - j->i < n || memcmp(j->s + j->i, lit, n) != 0) return -1;
    j->i += n;
    return 0;
}

static int check_value(jscan *j, int depth);

/* An array or object at j->i; close is ']' or '}'. */
static int check_container(jscan *j, int depth, unsigned char close) {
    if (depth >= JSON_MAX_DEPTH) return -1;
    j->i++;
    skip_ws(j);
    if (j->i < j->len && j->s[j->i] == close) {
        j->i++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(j);
            if (j->i >= j->len || j->s[j->i] != '"' || check_string(j)) return -1;
            skip_ws(j);
            if (j->i >= j->len || j->s[j->i] != ':') return -1;
            j->i++;
        }
        if (check_value(j, depth + 1)) return -1;
        skip_ws(j);
        if (j->i >= j->len) return -1;
        unsigned char c = j->s[j->i++];
        if (c == close) return 0;
        if (c != ',') return -1;
    }
}

static int check_value(jscan *j, int depth) {
    skip_ws(j);
    if (j->i >= j->len) return -1;
    unsigned char c = j->s[j->i];
    switch (c) {
    case '[': return check_container(j, depth, ']');
    case '{': return check_container(j, depth, '}');
    case '"': return check_string(j);
    case 't': return check_literal(j, "true");
    case 'f': return check_literal(j, "false");
    case 'n': return check_literal(j, "null");
    default:
        if (c == '-' || is_digit(c)) return check_number(j);
        return -1;
    }
}

/* The checked text s in the internal form: \u0000 and unpaired surrogate
 * escapes become their bytes, bytes that are not UTF-8 become U+FFFD. */
static int normalize(const unsigned char *s, size_t len, buf *out) {
    int rc = 0, in_string = 0;
    size_t i = 0, run = 0;
    while (!rc && i < len) {
        unsigned char c = s[i];
        if (!in_string) {
            in_string = c == '"';
            i++;
            continue;
        }
        if (c == '"') {
            in_string = 0;
            i++;
        } else if (c >= 0x80) {
            size_t n = utf8_len(s + i, len - i);
            if (n) {
                i += n;
                continue;
            }
            rc = buf_append(out, s + run, i - run);
            if (!rc) rc = buf_append(out, FFFD, 3);
            run = ++i;
        } else if (c == '\\' && s[i + 1] == 'u') {
            size_t at = i + 2;
            long u = read_hex4(s, len, &at);
            if (u >= 0xD800 && u <= 0xDBFF && low_follows(s, len, at)) {
                i = at + 6; /* a pair: cJSON reads it */
            } else if (u == 0 || (u >= 0xD800 && u <= 0xDFFF)) {
                rc = buf_append(out, s + run, i - run);
                if (!rc) rc = put_unit(out, u);
                run = i = at;
            } else {
                i = at;
            }
        } else {
            i += c == '\\' ? 2 : 1;
        }
    }
    if (!rc) rc = buf_append(out, s + run, len - run);
    return rc;
}

cJSON *json_parse(const char *s, size_t len) {
    jscan j = {(const unsigned char *)s, len, 0, 0};
    if (check_value(&j, 0)) return NULL;
    skip_ws(&j);
    if (j.i != len) return NULL;
    buf norm = BUF_INIT;
    if (j.rewrite) {
        if (normalize((const unsigned char *)s, len, &norm)) {
            buf_free(&norm);
            return NULL;
        }
        s = norm.data;
        len = norm.len;
    }
    /* The text is not NUL-terminated, so cJSON's require_null_terminated
     * cannot be used (with a length it demands a NUL inside that length);
     * the end is checked here instead. */
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (v) {
        jscan t = {(const unsigned char *)s, len, (size_t)(end - s), 0};
        skip_ws(&t);
        if (t.i != len) {
            cJSON_Delete(v);
            v = NULL;
        }
    }
    buf_free(&norm);
    return v;
}

cJSON *json_parse_str(const char *s) { return s ? json_parse(s, strlen(s)) : NULL; }

/* ---- writing, as JSON.stringify writes ------------------------------------------------- */

int json_quote(buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len;
    int rc = buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    while (rc == 0 && p < end) {
        unsigned char c = *p;
        size_t skip = 1, left = (size_t)(end - p);
        char e[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
        if (c == 0xC0 && left > 1 && p[1] == 0x80) {
            memcpy(e, "\\u0000", 6), n = 6, skip = 2;
        } else if (c == 0xED && left > 2 && p[1] >= 0xA0 && p[1] <= 0xBF && p[2] >= 0x80 && p[2] <= 0xBF) {
            unsigned u = 0xD000u | (unsigned)(p[1] & 0x3F) << 6 | (unsigned)(p[2] & 0x3F);
            e[1] = 'u', e[2] = hex[u >> 12], e[3] = hex[(u >> 8) & 15], e[4] = hex[(u >> 4) & 15],
            e[5] = hex[u & 15], n = 6, skip = 3;
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            p++;
            continue;
        } else {
            switch (c) {
            case '"': case '\\': break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            default:
                e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
                n = 6;
            }
        }
        rc = buf_append(b, run, (size_t)(p - run));
        if (!rc) rc = buf_append(b, e, n);
        p += skip;
        run = p;
    }
    if (rc == 0) rc = buf_append(b, run, (size_t)(p - run));
    if (rc == 0) rc = buf_putc(b, '"');
    if (rc && b->data) b->data[b->len = start] = 0;
    return rc;
}

static int put_string(buf *b, const char *s) { return json_quote(b, s, strlen(s)); }

/* Looks for the p-digit decimal closest to a (finite, > 0) that reads back
 * as a.  printf rounds exactly, so m below is the closest p-digit decimal;
 * when it misses, the other neighbour of a (m+1 or m-1) may still hit, the
 * rounding interval of a power of two being lopsided.  On success sets
 * *best and *e (a ~ best x 10^*e) and returns 1. */
static int try_digits(double a, int p, unsigned long long *best, int *e) {
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, a);
    unsigned long long m = 0;
    const char *q = tmp;
    for (; *q && *q != 'e'; q++)
        if (is_digit((unsigned char)*q)) m = m * 10 + (unsigned long long)(*q - '0');
    int ex = atoi(q + 1) - (p - 1);
    const unsigned long long cand[3] = {m, m + 1, m - 1};
    for (int c = 0; c < 3; c++) {
        char chk[48];
        snprintf(chk, sizeof chk, "%llue%d", cand[c], ex);
        if (cand[c] && strtod(chk, NULL) == a) {
            *best = cand[c];
            *e = ex;
            return 1;
        }
    }
    return 0;
}

/* Shortest decimal digits that read back as a (finite, > 0), the closest
 * to a among those: digits without trailing zeros into dig, and the
 * exponent of the first digit (a ~ d1.d2d3... x 10^exp10).  When a p-digit
 * decimal reads back as a, a (p+1)-digit one does too (a neighbour of a at
 * least as close), hence the binary search over p; 17 digits always do. */
static void shortest_digits(double a, char *dig, int *exp10) {
    unsigned long long best = 0, cand;
    int lo = 1, hi = 17, e = 0, ce;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (try_digits(a, mid, &cand, &ce)) {
            hi = mid;
            best = cand;
            e = ce;
        } else {
            lo = mid + 1;
        }
    }
    if (!best) try_digits(a, 17, &best, &e);
    int nd = snprintf(dig, 24, "%llu", best);
    *exp10 = e + nd - 1;
    while (nd > 1 && dig[nd - 1] == '0') dig[--nd] = 0;
}

/* Number::toString as JavaScript defines it; NaN and infinities are null. */
static int put_number(buf *b, double d) {
    if (isnan(d) || isinf(d)) return buf_puts(b, "null");
    /* Integers below 2^53 print as themselves (and -0 as 0). */
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d)
        return buf_printf(b, "%lld", (long long)d);
    char dig[24], out[64];
    int e;
    shortest_digits(d < 0 ? -d : d, dig, &e);
    int k = (int)strlen(dig), n = e + 1;
    char *o = out;
    if (d < 0) *o++ = '-';
    if (k <= n && n <= 21) {
        o += sprintf(o, "%s%.*s", dig, n - k, "000000000000000000000");
    } else if (0 < n && n <= 21) {
        o += sprintf(o, "%.*s.%s", n, dig, dig + n);
    } else if (-6 < n && n <= 0) {
        o += sprintf(o, "0.%.*s%s", -n, "000000", dig);
    } else {
        *o++ = dig[0];
        if (k > 1) o += sprintf(o, ".%s", dig + 1);
        o += sprintf(o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return buf_append(b, out, (size_t)(o - out));
}

static int put_value(buf *b, const cJSON *v, int depth, json_hook hook, void *arg) {
    int rc = 0;
    switch (v->type & 0xFF) {
    case cJSON_False: return buf_puts(b, "false");
    case cJSON_True: return buf_puts(b, "true");
    case cJSON_NULL: return buf_puts(b, "null");
    case cJSON_Number: return put_number(b, v->valuedouble);
    case cJSON_String: return v->valuestring ? put_string(b, v->valuestring) : -EINVAL;
    case cJSON_Raw: return v->valuestring ? buf_puts(b, v->valuestring) : -EINVAL;
    case cJSON_Array:
    case cJSON_Object: {
        if (hook && (rc = hook(arg, b, v))) return rc < 0 ? rc : 0;
        if (depth >= JSON_MAX_DEPTH) return -EINVAL;
        int obj = (v->type & 0xFF) == cJSON_Object;
        rc = buf_putc(b, obj ? '{' : '[');
        for (const cJSON *c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child) rc = buf_putc(b, ',');
            if (rc == 0 && obj) {
                rc = c->string ? put_string(b, c->string) : -EINVAL;
                if (rc == 0) rc = buf_putc(b, ':');
            }
            if (rc == 0) rc = put_value(b, c, depth + 1, hook, arg);
        }
        return rc ? rc : buf_putc(b, obj ? '}' : ']');
    }
    }
    return -EINVAL;
}

int json_write(buf *out, const cJSON *v, json_hook hook, void *arg) {
    size_t start = out->len;
    int rc = v ? put_value(out, v, 0, hook, arg) : -EINVAL;
    if (rc && out->data) out->data[out->len = start] = 0;
    return rc;
}

char *json_print(const cJSON *v) {
    buf b = BUF_INIT;
    if (json_write(&b, v, NULL, NULL)) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* ---- raw bytes ----------------------------------------------------------------------- */

cJSON *json_string(const void *bytes, size_t len) {
    const unsigned char *s = bytes;
    buf b = BUF_INIT;
    int rc = buf_reserve(&b, len + 1);
    size_t run = 0;
    for (size_t i = 0; !rc && i < len;) {
        size_t n = s[i] ? utf8_len(s + i, len - i) : 0;
        if (n) {
            i += n;
            continue;
        }
        rc = buf_append(&b, s + run, i - run);
        if (!rc) rc = s[i] ? buf_append(&b, FFFD, 3) : buf_append(&b, NUL_FORM, 2);
        run = ++i;
    }
    if (!rc) rc = buf_append(&b, s + run, len - run);
    cJSON *v = rc ? NULL : cJSON_CreateString(b.data ? b.data : "");
    buf_free(&b);
    return v;
}

size_t json_bytes(const char *s, char *out) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (p[0] == 0xC0 && p[1] == 0x80) {
            out[o++] = 0;
            p++;
        } else if (p[0] == 0xED && p[1] >= 0xA0 && p[1] <= 0xBF && p[2] >= 0x80 && p[2] <= 0xBF) {
            memcpy(out + o, FFFD, 3); /* same length: in place is fine */
            o += 3;
            p += 2;
        } else {
            out[o++] = (char)*p;
        }
    }
    return o;
}

int json_integer(const cJSON *v, long long *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(long long)d) return 0;
    *out = (long long)d;
    return 1;
}

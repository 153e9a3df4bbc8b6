/* sio: Socket.IO v5 packet codec (see sio.h).
 *
 * Decoding follows the accept/reject rules of the Node reference parser
 * (socket.io-parser 4.x, decodeString + isPayloadValid).  Where Node is more
 * lenient only through an accident of JavaScript (whitespace counted as a
 * digit, Number("") being 0, ...) we are stricter; the rules are listed at
 * sio_decode below.
 *
 * Encoding writes JSON the way JavaScript's JSON.stringify does (compact,
 * same number formatting, same string escapes), so data that came from a JS
 * peer goes back out byte for byte. */
#include "proto/sio_parser.h"

#include <errno.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"

/* Largest ack id we accept: the largest integer a JavaScript peer holds
 * exactly (Number.MAX_SAFE_INTEGER). */
#define SIO_ID_MAX 9007199254740991LL
/* Deepest nesting of arrays/objects we parse or write: cJSON's own limit. */
#define SIO_JSON_DEPTH CJSON_NESTING_LIMIT

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int sio_reserved_event(const char *name) {
    static const char *const reserved[] = {
        "connect",       "connect_error",  "disconnect",
        "disconnecting", "newListener",    "removeListener",
    };
    if (!name) return 0;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(name, reserved[i]) == 0) return 1;
    return 0;
}

void sio_packet_clear(sio_packet *p) {
    if (!p) return;
    cJSON_Delete(p->data);
    p->data = NULL;
    p->type = SIO_CONNECT;
    p->attachments = 0;
    p->nsp[0] = '/';
    p->nsp[1] = 0;
    p->id = -1;
}

/* ---- strict JSON syntax check ------------------------------------------
 * cJSON accepts more than JSON.parse does (leading '+' or '0' in numbers,
 * "1.", raw control characters in strings, any byte <= 0x20 as whitespace),
 * so the text is first checked against the JSON grammar.  Two things
 * JSON.parse accepts are refused here because cJSON cannot hold them: the
 * escape \u0000 (cJSON strings end at NUL) and unpaired surrogate escapes. */

typedef struct {
    const unsigned char *s;
    size_t len, i;
} jscan;

static int is_json_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(jscan *j) {
    while (j->i < j->len && is_json_ws(j->s[j->i])) j->i++;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads "XXXX" (after a \u) at j->i. */
static long read_hex4(jscan *j) {
    if (j->len - j->i < 4) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->s[j->i + (size_t)k]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    j->i += 4;
    return v;
}

static int check_string(jscan *j) {
    j->i++; /* the opening quote */
    while (j->i < j->len) {
        unsigned char c = j->s[j->i++];
        if (c == '"') return 0;
        if (c < 0x20) return -1;
        if (c != '\\') continue;
        if (j->i >= j->len) return -1;
        switch (j->s[j->i++]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
        case 'u': {
            long u = read_hex4(j);
            if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF)) return -1;
            if (u >= 0xD800 && u <= 0xDBFF) { /* must be followed by a low half */
                if (j->len - j->i < 2 || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') return -1;
                j->i += 2;
                long lo = read_hex4(j);
                if (lo < 0xDC00 || lo > 0xDFFF) return -1;
            }
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
    while (i + n < j->len && is_digit((char)j->s[i + n])) n++;
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
    if (depth >= SIO_JSON_DEPTH) return -1;
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
        if (c == '-' || is_digit((char)c)) return check_number(j);
        return -1;
    }
}

/* Parses exactly one JSON text (optionally followed by whitespace). */
static cJSON *parse_json(const char *s, size_t len) {
    jscan j = {(const unsigned char *)s, len, 0};
    if (check_value(&j, 0)) return NULL;
    skip_ws(&j);
    if (j.i != len) return NULL;
    /* The text is not NUL-terminated, so cJSON's require_null_terminated
     * cannot be used (with a length it demands a NUL inside that length);
     * the end is checked here instead. */
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (!v) return NULL;
    jscan t = {(const unsigned char *)s, len, (size_t)(end - s)};
    skip_ws(&t);
    if (t.i != len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* ---- decoding ----------------------------------------------------------- */

static int payload_valid(int type, const cJSON *d) {
    switch (type) {
    case SIO_CONNECT:
        return !d || cJSON_IsObject(d);
    case SIO_DISCONNECT:
        return !d;
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        const cJSON *first = cJSON_IsArray(d) ? d->child : NULL;
        if (!first) return 0;
        return cJSON_IsNumber(first) ||
               (cJSON_IsString(first) && !sio_reserved_event(first->valuestring));
    }
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return cJSON_IsArray(d);
    case SIO_CONNECT_ERROR:
        return cJSON_IsString(d) || cJSON_IsObject(d);
    }
    return 0;
}

/* Rules (Node's behaviour in brackets where we differ on purpose):
 *  - type: one digit 0-6 [Node reads Number(charAt(0)), so "" and " " are
 *    CONNECT];
 *  - types 5/6: one or more decimal digits, then '-', a count from 1 to
 *    SIO_MAX_ATTACHMENTS [Node takes anything Number() parses: " 2", "0x2",
 *    "1e1"; 4.2.7 refuses 0 as we do, older releases took "0" and ""];
 *  - namespace: from a '/' right there to the next ',' (consumed) or the end
 *    of the string; at most SIO_NSP_MAX bytes and no NUL byte;
 *  - ack id: a run of decimal digits, at most SIO_ID_MAX [Node also counts
 *    whitespace as digits: "2 [..]" gets ack id 0];
 *  - the rest is one JSON text (strict grammar, no leading whitespace since
 *    Node would have taken it as an ack id), valid for the type.  A missing
 *    payload is only valid for CONNECT and DISCONNECT [Node skips the type
 *    check when there is no payload, so "2" is an EVENT without data]. */
int sio_decode(const char *s, size_t len, sio_packet *out) {
    out->data = NULL;
    sio_packet_clear(out);
    if (len == 0 || s[0] < '0' || s[0] > '0' + SIO_BINARY_ACK) goto bad;
    out->type = s[0] - '0';
    size_t i = 1;

    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        size_t j = i;
        int n = 0;
        for (; j < len && is_digit(s[j]); j++) {
            n = n * 10 + (s[j] - '0');
            if (n > SIO_MAX_ATTACHMENTS) goto bad;
        }
        if (j == i || j >= len || s[j] != '-' || n == 0) goto bad;
        out->attachments = n;
        i = j + 1;
    }

    if (i < len && s[i] == '/') {
        /* no need to look further than the longest namespace */
        size_t scan = len - i < SIO_NSP_MAX + 1 ? len - i : SIO_NSP_MAX + 1;
        const char *comma = memchr(s + i, ',', scan);
        size_t end = comma ? (size_t)(comma - s) : len;
        size_t n = end - i;
        if (n > SIO_NSP_MAX || memchr(s + i, 0, n)) goto bad;
        memcpy(out->nsp, s + i, n);
        out->nsp[n] = 0;
        i = comma ? end + 1 : len;
    }

    if (i < len && is_digit(s[i])) {
        long long id = 0;
        for (; i < len && is_digit(s[i]); i++) {
            id = id * 10 + (s[i] - '0');
            if (id > SIO_ID_MAX) goto bad;
        }
        out->id = id;
    }

    if (i < len) {
        if (is_json_ws((unsigned char)s[i])) goto bad;
        out->data = parse_json(s + i, len - i);
        if (!out->data) goto bad;
    }
    if (!payload_valid(out->type, out->data)) goto bad;
    return 0;
bad:
    sio_packet_clear(out);
    return -EINVAL;
}

/* ---- JSON output, as JSON.stringify writes it --------------------------- */

static int put_js_string(buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len;
    int rc = buf_putc(b, '"');
    const char *run = s;
    for (const char *p = s; rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc = buf_append(b, run, (size_t)(p - run));
        if (rc || c == 0) break;
        run = p + 1;
        char e[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
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
        rc = buf_append(b, e, n);
    }
    if (rc == 0) rc = buf_putc(b, '"');
    if (rc && b->data) b->data[b->len = start] = 0;
    return rc;
}

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
        if (is_digit(*q)) m = m * 10 + (unsigned long long)(*q - '0');
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
static int put_js_number(buf *b, double d) {
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

/* {"$binary":"<string>"} and nothing else. */
static const cJSON *marker_value(const cJSON *v) {
    if (!cJSON_IsObject(v)) return NULL;
    const cJSON *c = v->child;
    if (!c || c->next || !c->string || strcmp(c->string, SIO_BINARY_KEY) != 0) return NULL;
    return cJSON_IsString(c) && c->valuestring ? c : NULL;
}

static int count_markers(const cJSON *v, int depth, size_t *n) {
    if (marker_value(v)) {
        (*n)++;
        return 0;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return 0;
    if (depth >= SIO_JSON_DEPTH) return -EINVAL;
    for (const cJSON *c = v->child; c; c = c->next) {
        int rc = count_markers(c, depth + 1, n);
        if (rc) return rc;
    }
    return 0;
}

typedef struct {
    buf *out;
    int binary;  /* markers become placeholders + attachments */
    buf *att;
    size_t *off;
    size_t n;    /* attachments written so far */
} writer;

static int put_attachment(writer *w, const char *b64) {
    size_t len = strlen(b64);
    int rc = buf_reserve(w->att, b64_decoded_max(len));
    if (rc) return rc;
    long m = b64_decode((uint8_t *)w->att->data + w->att->len, b64, len);
    if (m < 0) return -EINVAL;
    w->att->len += (size_t)m;
    w->att->data[w->att->len] = 0;
    w->off[++w->n] = w->att->len;
    return buf_printf(w->out, "{\"_placeholder\":true,\"num\":%zu}", w->n - 1);
}

static int put_value(writer *w, const cJSON *v, int depth) {
    int rc = 0;
    switch (v->type & 0xFF) {
    case cJSON_False: return buf_puts(w->out, "false");
    case cJSON_True: return buf_puts(w->out, "true");
    case cJSON_NULL: return buf_puts(w->out, "null");
    case cJSON_Number: return put_js_number(w->out, v->valuedouble);
    case cJSON_String: return v->valuestring ? put_js_string(w->out, v->valuestring) : -EINVAL;
    case cJSON_Raw: return v->valuestring ? buf_puts(w->out, v->valuestring) : -EINVAL;
    case cJSON_Array:
    case cJSON_Object: {
        int obj = (v->type & 0xFF) == cJSON_Object;
        const cJSON *m = w->binary ? marker_value(v) : NULL;
        if (m) return put_attachment(w, m->valuestring);
        if (depth >= SIO_JSON_DEPTH) return -EINVAL;
        rc = buf_putc(w->out, obj ? '{' : '[');
        for (const cJSON *c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child) rc = buf_putc(w->out, ',');
            if (rc == 0 && obj) {
                rc = c->string ? put_js_string(w->out, c->string) : -EINVAL;
                if (rc == 0) rc = buf_putc(w->out, ':');
            }
            if (rc == 0) rc = put_value(w, c, depth + 1);
        }
        return rc ? rc : buf_putc(w->out, obj ? '}' : ']');
    }
    }
    return -EINVAL;
}

int sio_encode(buf *out, const sio_packet *p, buf *attachments, size_t *off,
               size_t max_attach, size_t *nattach) {
    if (nattach) *nattach = 0;
    if (p->type < SIO_CONNECT || p->type > SIO_BINARY_ACK) return -EINVAL;
    size_t nl = strnlen(p->nsp, sizeof p->nsp);
    if (nl > SIO_NSP_MAX) return -EINVAL;
    int put_nsp = nl > 0 && strcmp(p->nsp, "/") != 0;
    if (put_nsp && (p->nsp[0] != '/' || memchr(p->nsp, ',', nl))) return -EINVAL;

    /* Binary-ness comes from the data: 5/6 without markers are sent as 2/3. */
    int type = p->type;
    if (type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) type -= 3;
    const cJSON *data = cJSON_IsNull(p->data) ? NULL : p->data;
    size_t nmark = 0;
    if (data && (type == SIO_EVENT || type == SIO_ACK)) {
        int rc = count_markers(data, 0, &nmark);
        if (rc) return rc;
    }
    if (nmark) {
        if (!attachments || !off || nmark > max_attach) return -E2BIG;
        type += 3;
    }

    size_t out0 = out->len, att0 = attachments ? attachments->len : 0;
    writer w = {out, nmark > 0, attachments, off, 0};
    if (nmark) off[0] = att0;
    int rc = buf_putc(out, (char)('0' + type));
    if (rc == 0 && nmark) rc = buf_printf(out, "%zu-", nmark);
    if (rc == 0 && put_nsp) rc = buf_append(out, p->nsp, nl);
    if (rc == 0 && put_nsp) rc = buf_putc(out, ',');
    if (rc == 0 && p->id >= 0) rc = buf_printf(out, "%lld", p->id);
    if (rc == 0 && data) rc = put_value(&w, data, 0);
    if (rc) {
        if (out->data) out->data[out->len = out0] = 0;
        if (attachments && attachments->data) attachments->data[attachments->len = att0] = 0;
        return rc;
    }
    if (nattach) *nattach = nmark;
    return 0;
}

/* ---- attachments -------------------------------------------------------- */

/* The last member called key, as JavaScript sees duplicate keys. */
static const cJSON *last_member(const cJSON *o, const char *key) {
    const cJSON *hit = NULL;
    for (const cJSON *c = o->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0) hit = c;
    return hit;
}

/* Node's test: an object whose _placeholder is true. */
static int is_placeholder(const cJSON *v) {
    return cJSON_IsObject(v) && cJSON_IsTrue(last_member(v, "_placeholder"));
}

/* Checks every placeholder's num (all must be valid before anything is
 * replaced, so a bad packet is left as it was). */
static int check_placeholders(const cJSON *v, size_t n, int depth) {
    if (is_placeholder(v)) {
        const cJSON *num = last_member(v, "num");
        if (!cJSON_IsNumber(num)) return -EINVAL;
        double d = num->valuedouble;
        return d >= 0 && d < (double)n && d == (double)(size_t)d ? 0 : -EINVAL;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return 0;
    if (depth >= SIO_JSON_DEPTH) return -EINVAL;
    for (const cJSON *c = v->child; c; c = c->next) {
        int rc = check_placeholders(c, n, depth + 1);
        if (rc) return rc;
    }
    return 0;
}

static int fill_placeholders(cJSON *v, const sio_bin *bins) {
    if (is_placeholder(v)) {
        const sio_bin *b = &bins[(size_t)last_member(v, "num")->valuedouble];
        buf enc = BUF_INIT;
        cJSON *m = NULL;
        int rc = b64_encode(&enc, b->data, b->len);
        if (rc == 0) m = cJSON_CreateObject();
        if (m && !cJSON_AddStringToObject(m, SIO_BINARY_KEY, enc.data ? enc.data : "")) {
            cJSON_Delete(m);
            m = NULL;
        }
        buf_free(&enc);
        if (!m) return -ENOMEM;
        /* Swap the members: v becomes the marker where it stands. */
        cJSON *old = v->child;
        v->child = m->child;
        m->child = old;
        cJSON_Delete(m);
        return 0;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return 0;
    for (cJSON *c = v->child; c; c = c->next) {
        int rc = fill_placeholders(c, bins);
        if (rc) return rc;
    }
    return 0;
}

int sio_attach(sio_packet *p, const sio_bin *bins, size_t n) {
    if (p->attachments < 0 || n != (size_t)p->attachments) return -EINVAL;
    if (p->type != SIO_BINARY_EVENT && p->type != SIO_BINARY_ACK) return n ? -EINVAL : 0;
    if (n && !bins) return -EINVAL;
    if (p->data) {
        int rc = check_placeholders(p->data, n, 0);
        if (rc == 0) rc = fill_placeholders(p->data, bins);
        if (rc) return rc;
    }
    p->type -= 3;
    p->attachments = 0;
    return 0;
}

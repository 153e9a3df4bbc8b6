/* sio: Socket.IO v5 packet codec (see sio.h).
 *
 * Decoding follows the accept/reject rules of the Node reference parser
 * (socket.io-parser 4.x, decodeString + isPayloadValid).  Where Node is more
 * lenient only through an accident of JavaScript (whitespace counted as a
 * digit, Number("") being 0, ...) we are stricter; the rules are listed at
 * sio_decode below.
 *
 * JSON is read and written by proto/json.h: strictly, binary-safe, and the
 * way JavaScript's JSON.stringify writes it, so data that came from a JS
 * peer goes back out byte for byte. */
#include "proto/sio_parser.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "proto/json.h"

#define SIO_JSON_DEPTH JSON_MAX_DEPTH

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
 *    whitespace as digits: "2 [..]" gets ack id 0]; in an ACK or BINARY_ACK
 *    a longer run is SIO_ID_UNASKED, an id the server never gave out: Node
 *    reads it as a (rounded) Number, finds no callback and ignores the ack;
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
        int ack = out->type == SIO_ACK || out->type == SIO_BINARY_ACK;
        for (; i < len && is_digit(s[i]); i++) {
            if (id > SIO_ID_MAX) continue; /* an ACK's over-long id: skip the digits */
            id = id * 10 + (s[i] - '0');
            if (id > SIO_ID_MAX && !ack) goto bad;
        }
        if (id > SIO_ID_MAX) id = SIO_ID_UNASKED;
        out->id = id;
    }

    if (i < len) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') goto bad; /* JSON whitespace */
        out->data = json_parse(s + i, len - i);
        if (!out->data) goto bad;
    }
    if (!payload_valid(out->type, out->data)) goto bad;
    return 0;
bad:
    sio_packet_clear(out);
    return -EINVAL;
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
    buf *att;
    size_t *off;
    size_t n; /* attachments written so far */
} writer;

/* json_write's hook for binary packets: a marker becomes a placeholder and
 * its bytes an attachment. */
static int put_attachment(void *arg, buf *out, const cJSON *v) {
    writer *w = arg;
    const cJSON *m = marker_value(v);
    if (!m) return 0;
    const char *b64 = m->valuestring;
    size_t len = strlen(b64);
    int rc = buf_reserve(w->att, b64_decoded_max(len));
    if (rc) return rc;
    long n = b64_decode((uint8_t *)w->att->data + w->att->len, b64, len);
    if (n < 0) return -EINVAL;
    w->att->len += (size_t)n;
    w->att->data[w->att->len] = 0;
    w->off[++w->n] = w->att->len;
    rc = buf_printf(out, "{\"_placeholder\":true,\"num\":%zu}", w->n - 1);
    return rc ? rc : 1;
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
    writer w = {attachments, off, 0};
    if (nmark) off[0] = att0;
    int rc = buf_putc(out, (char)('0' + type));
    if (rc == 0 && nmark) rc = buf_printf(out, "%zu-", nmark);
    if (rc == 0 && put_nsp) rc = buf_append(out, p->nsp, nl);
    if (rc == 0 && put_nsp) rc = buf_putc(out, ',');
    if (rc == 0 && p->id >= 0) rc = buf_printf(out, "%lld", p->id);
    if (rc == 0 && data) rc = json_write(out, data, nmark ? put_attachment : NULL, &w);
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

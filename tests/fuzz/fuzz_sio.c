/* libFuzzer driver for the Socket.IO codec (shared/sio.c).
 *
 * sio_decode the input; when it is accepted:
 *  - the packet's fields are within their documented ranges;
 *  - sio_encode succeeds (it may only fail on {"$binary":...} markers the
 *    input carried), leaves p->data as it was, and its output decodes again
 *    with the same type, namespace, ack id and data (after sio_attach with
 *    the attachments it produced), and re-encodes to the same bytes;
 *  - for a binary packet, sio_attach with attachments cut from the input
 *    either fails cleanly (nothing changed) or yields markers that survive
 *    an encode/decode/attach round trip. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/sio_parser.h"

static char *print(const cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : strdup("(none)");
    CHECK(s);
    return s;
}

/* An object sio_attach would take for a placeholder ("_placeholder" true,
 * the last such member counting). */
static int has_placeholder(const cJSON *v) {
    if (cJSON_IsObject(v)) {
        const cJSON *last = NULL;
        for (const cJSON *c = v->child; c; c = c->next)
            if (c->string && strcmp(c->string, "_placeholder") == 0) last = c;
        if (cJSON_IsTrue(last)) return 1;
    }
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        for (const cJSON *c = v->child; c; c = c->next)
            if (has_placeholder(c)) return 1;
    return 0;
}

/* Same JSON value, member order and duplicate keys included; numbers by
 * value.  As JSON.stringify writes them, -0 reads back as 0 and a number too
 * large for a double (parsed as infinity) as null. */
static int same_tree(const cJSON *a, const cJSON *b) {
    if (!a || !b) return a == b;
    if ((a->string == NULL) != (b->string == NULL)) return 0;
    if (a->string && strcmp(a->string, b->string) != 0) return 0;
    if (cJSON_IsNumber(a) && isinf(a->valuedouble)) return cJSON_IsNull(b);
    if ((a->type & 0xFF) != (b->type & 0xFF)) return 0;
    switch (a->type & 0xFF) {
    case cJSON_Number: return a->valuedouble == b->valuedouble;
    case cJSON_String: return strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array:
    case cJSON_Object: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!same_tree(x, y)) return 0;
        return !x && !y;
    }
    default: return 1;
    }
}

/* A number JSON cannot write (it goes out as null, as in JavaScript). */
static int has_inf(const cJSON *v) {
    if (cJSON_IsNumber(v)) return isinf(v->valuedouble);
    for (const cJSON *c = (cJSON_IsArray(v) || cJSON_IsObject(v)) ? v->child : NULL; c; c = c->next)
        if (has_inf(c)) return 1;
    return 0;
}

static int plain_type(int t) { return t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK ? t - 3 : t; }

static void check_fields(const sio_packet *p) {
    CHECK(p->type >= SIO_CONNECT && p->type <= SIO_BINARY_ACK);
    if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK)
        CHECK(p->attachments >= 1 && p->attachments <= SIO_MAX_ATTACHMENTS);
    else
        CHECK(p->attachments == 0);
    size_t nl = strnlen(p->nsp, sizeof p->nsp);
    CHECK(nl >= 1 && nl <= SIO_NSP_MAX && p->nsp[0] == '/' && !memchr(p->nsp, ',', nl));
    CHECK((p->id >= -1 && p->id <= SIO_ID_MAX) ||
          (p->id == SIO_ID_UNASKED && (p->type == SIO_ACK || p->type == SIO_BINARY_ACK)));
}

/* Encodes p; on success decodes the text again, attaches the produced
 * attachments and checks that the result matches p and re-encodes to the
 * same bytes.  Returns sio_encode's result. */
static int round_trip(const sio_packet *p) {
    char *before = print(p->data);
    buf out = BUF_INIT, att = BUF_INIT;
    size_t off[SIO_MAX_ATTACHMENTS + 1], n = 99;
    int rc = sio_encode(&out, p, &att, off, SIO_MAX_ATTACHMENTS, &n);
    char *after = print(p->data);
    CHECK(strcmp(before, after) == 0); /* p->data untouched */
    free(after);
    if (rc) {
        CHECK(rc == -EINVAL || rc == -E2BIG);
        CHECK(out.len == 0 && att.len == 0 && n == 0);
        buf_free(&out);
        buf_free(&att);
        free(before);
        return rc;
    }
    CHECK(n <= SIO_MAX_ATTACHMENTS);
    CHECK(n == 0 || off[0] == 0);

    sio_packet q;
    if (sio_decode(out.data, out.len, &q) != 0) {
        /* only when an infinity became null, e.g. 2[1e999] -> 2[null] */
        CHECK(has_inf(p->data));
        goto done;
    }
    check_fields(&q);
    CHECK(plain_type(q.type) == plain_type(p->type));
    CHECK((size_t)q.attachments == n);
    CHECK(q.id == p->id || (p->id < 0 && q.id == -1));
    CHECK(strcmp(q.nsp, p->nsp) == 0 || (p->nsp[0] == 0 && strcmp(q.nsp, "/") == 0));
    if (n > 0 && has_placeholder(p->data)) {
        /* Data that already looks like a placeholder next to real binary is
         * ambiguous on the wire (in Node too): the receiver takes both for
         * attachments.  Nothing more to compare. */
        sio_packet_clear(&q);
        goto done;
    }
    sio_bin bins[SIO_MAX_ATTACHMENTS];
    for (size_t i = 0; i < n; i++) {
        CHECK(off[i] <= off[i + 1] && off[i + 1] <= att.len);
        bins[i].data = (const uint8_t *)att.data + off[i];
        bins[i].len = off[i + 1] - off[i];
    }
    CHECK(sio_attach(&q, bins, n) == 0);
    if (n == 0) CHECK(same_tree(p->data, q.data)); /* no markers: the very same tree */
    /* stable: encoding the decoded packet gives the same bytes */
    buf out2 = BUF_INIT, att2 = BUF_INIT;
    size_t off2[SIO_MAX_ATTACHMENTS + 1], n2;
    CHECK(sio_encode(&out2, &q, &att2, off2, SIO_MAX_ATTACHMENTS, &n2) == 0);
    CHECK(n2 == n && out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
    CHECK(att2.len == att.len && (att.len == 0 || memcmp(att2.data, att.data, att.len) == 0));
    buf_free(&out2);
    buf_free(&att2);
    sio_packet_clear(&q);
done:
    buf_free(&out);
    buf_free(&att);
    free(before);
    return 0;
}

static void check_attach(sio_packet *p, const uint8_t *data, size_t size) {
    size_t n = (size_t)p->attachments;
    sio_bin bins[SIO_MAX_ATTACHMENTS];
    for (size_t i = 0; i < n; i++) { /* slices of the input, of varied lengths */
        bins[i].data = data;
        bins[i].len = size * i / SIO_MAX_ATTACHMENTS;
    }
    CHECK(sio_attach(p, bins, n + 1) == -EINVAL); /* wrong count */
    char *before = print(p->data);
    int type = p->type;
    int rc = sio_attach(p, bins, n);
    if (rc) {
        CHECK(rc == -EINVAL);
        char *after = print(p->data);
        CHECK(strcmp(before, after) == 0 && p->type == type && (size_t)p->attachments == n);
        free(after);
    } else {
        CHECK(p->type == type - 3 && p->attachments == 0);
        round_trip(p);
    }
    free(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sio_packet p;
    int rc = sio_decode((const char *)data, size, &p);
    if (rc) {
        CHECK(rc == -EINVAL);
        CHECK(p.data == NULL && p.id == -1 && p.attachments == 0 && strcmp(p.nsp, "/") == 0);
        return 0;
    }
    check_fields(&p);
    round_trip(&p);
    if (p.type == SIO_BINARY_EVENT || p.type == SIO_BINARY_ACK)
        check_attach(&p, data, size);
    else
        CHECK(sio_attach(&p, NULL, 0) == 0 && sio_attach(&p, NULL, 1) == -EINVAL);
    sio_packet_clear(&p);
    return 0;
}

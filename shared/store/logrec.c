/* logrec: the packet log's record format (see logrec.h). */
#include "store/logrec.h"

#include <errno.h>
#include <string.h>

#include "base/buf.h"

#define HDR_LEN (1 + 1 + 2 + 2 + 2 + 4 + UTIL_ID_LEN)
#define NSP_MAX 128

static int put16(buf *b, size_t v) {
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return buf_append(b, p, 2);
}
static int put32(buf *b, size_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return buf_append(b, p, 4);
}
static size_t get16(const uint8_t *p) { return (size_t)p[0] | (size_t)p[1] << 8; }
static size_t get32(const uint8_t *p) {
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

static int build(buf *b, int kind, const char *target, const bcast *to,
                 const logrec_frame *frames, size_t nframes) {
    size_t nsp_len = to ? strlen(to->nsp) : 0;
    size_t nr = to ? to->nrooms : 0, ne = to ? to->nexcept : 0;
    if (nsp_len > NSP_MAX || nr > LOGREC_MAX_ROOMS || ne > LOGREC_MAX_ROOMS) return -EINVAL;
    char tgt[UTIL_ID_LEN] = {0};
    if (target) memcpy(tgt, target, strnlen(target, UTIL_ID_LEN));
    uint8_t k[2] = {(uint8_t)kind, (uint8_t)(to ? to->flags : 0)};
    int rc = buf_append(b, k, 2);
    if (!rc) rc = put16(b, nsp_len);
    if (!rc) rc = put16(b, nr);
    if (!rc) rc = put16(b, ne);
    if (!rc) rc = put32(b, nframes);
    if (!rc) rc = buf_append(b, tgt, UTIL_ID_LEN);
    if (!rc && nsp_len) rc = buf_append(b, to->nsp, nsp_len);
    for (size_t i = 0; !rc && i < nr + ne; i++) {
        const char *room = i < nr ? to->rooms[i] : to->except[i - nr];
        size_t l = strlen(room);
        if (l == 0 || l > STORE_ROOM_MAX) return -EINVAL;
        rc = put16(b, l);
        if (!rc) rc = buf_append(b, room, l);
    }
    for (size_t i = 0; !rc && frames && i < nframes; i++) { /* no frames: the caller appends them */
        if (frames[i].len > UINT32_MAX) return -E2BIG;
        uint8_t bin = frames[i].binary ? 1 : 0;
        rc = buf_append(b, &bin, 1);
        if (!rc) rc = put32(b, frames[i].len);
        if (!rc) rc = buf_append(b, frames[i].data, frames[i].len);
    }
    return rc;
}

static int append(store_txn *t, int kind, const char *target, const bcast *to,
                  const logrec_frame *frames, size_t nframes, uint64_t *seq) {
    buf b = BUF_INIT;
    int rc = build(&b, kind, target, to, frames, nframes);
    if (!rc) rc = store_log_append(t, b.data, b.len, seq);
    buf_free(&b);
    return rc;
}

int logrec_append_broadcast(store_txn *t, const bcast *to, const logrec_frame *frames,
                            size_t nframes, uint64_t *seq) {
    return append(t, LOGREC_BROADCAST, NULL, to, frames, nframes, seq);
}

int logrec_append_session(store_txn *t, const char *sid, const logrec_frame *frames,
                          size_t nframes, uint64_t *seq) {
    return append(t, LOGREC_TO_SESSION, sid, NULL, frames, nframes, seq);
}

int logrec_append_session_frames(store_txn *t, const char *sid, const void *frames, size_t len,
                                 size_t nframes, uint64_t *seq) {
    if (nframes > UINT32_MAX) return -E2BIG;
    buf b = BUF_INIT;
    int rc = build(&b, LOGREC_TO_SESSION, sid, NULL, NULL, nframes);
    if (!rc) rc = buf_append(&b, frames, len);
    if (!rc) rc = store_log_append(t, b.data, b.len, seq);
    buf_free(&b);
    return rc;
}

/* Skips n length-prefixed entries (prefix of `width` bytes) at *p; 0 or -EINVAL. */
static int skip_entries(const uint8_t **p, const uint8_t *end, size_t n, int width) {
    for (size_t i = 0; i < n; i++) {
        size_t head = width == 2 ? 2 : 5; /* rooms: u16 len; frames: u8 binary + u32 len */
        if ((size_t)(end - *p) < head) return -EINVAL;
        size_t l = width == 2 ? get16(*p) : get32(*p + 1);
        *p += head;
        if ((size_t)(end - *p) < l) return -EINVAL;
        *p += l;
    }
    return 0;
}

int logrec_parse(const void *data, size_t len, logrec *out) {
    const uint8_t *p = data, *end = p + len;
    if (len < HDR_LEN) return -EINVAL;
    memset(out, 0, sizeof *out);
    out->kind = p[0];
    out->flags = p[1];
    out->nsp_len = get16(p + 2);
    out->nrooms = get16(p + 4);
    out->nexcept = get16(p + 6);
    out->nframes = get32(p + 8);
    memcpy(out->target, p + 12, UTIL_ID_LEN);
    out->target[UTIL_ID_LEN] = 0;
    p += HDR_LEN;
    if ((size_t)(end - p) < out->nsp_len) return -EINVAL;
    out->nsp = (const char *)p;
    p += out->nsp_len;
    out->rooms = p;
    if (skip_entries(&p, end, out->nrooms, 2)) return -EINVAL;
    out->except = p;
    if (skip_entries(&p, end, out->nexcept, 2)) return -EINVAL;
    out->frames = p;
    if (skip_entries(&p, end, out->nframes, 4)) return -EINVAL;
    out->end = end;
    return p == end && (out->kind == LOGREC_TO_SESSION || out->kind == LOGREC_BROADCAST) ? 0
                                                                                         : -EINVAL;
}

int logrec_frame_next(const logrec *r, size_t *pos, logrec_frame *out) {
    const uint8_t *p = r->frames + *pos;
    if (p >= r->end) return 0;
    out->binary = p[0];
    out->len = get32(p + 1);
    out->data = p + 5;
    *pos += 5 + out->len;
    return 1;
}

int logrec_room_next(const logrec *r, int except, size_t *pos, logrec_room *out) {
    const uint8_t *start = except ? r->except : r->rooms, *stop = except ? r->frames : r->except;
    const uint8_t *p = start + *pos;
    if (p >= stop) return 0;
    out->len = get16(p);
    out->name = (const char *)p + 2;
    *pos += 2 + out->len;
    return 1;
}

int logrec_same_target(const logrec *a, const logrec *b) {
    size_t la = (size_t)(a->frames - (const uint8_t *)a->nsp);
    size_t lb = (size_t)(b->frames - (const uint8_t *)b->nsp);
    return a->kind == LOGREC_BROADCAST && b->kind == LOGREC_BROADCAST && a->nsp_len == b->nsp_len &&
           a->nrooms == b->nrooms && a->nexcept == b->nexcept && la == lb &&
           memcmp(a->nsp, b->nsp, la) == 0;
}

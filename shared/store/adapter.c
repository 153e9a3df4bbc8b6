/* adapter: delivery records, membership and broadcast (see adapter.h). */
#include "store/adapter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HDR_LEN (1 + 1 + 2 + 2 + 2 + 4 + UTIL_ID_LEN)

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
                 const adapter_frame *frames, size_t nframes) {
    size_t nsp_len = to ? strlen(to->nsp) : 0;
    size_t nr = to ? to->nrooms : 0, ne = to ? to->nexcept : 0;
    if (nsp_len > 128 || nr > ADAPTER_MAX_ROOMS || ne > ADAPTER_MAX_ROOMS) return -EINVAL;
    char tgt[UTIL_ID_LEN] = {0};
    if (target) memcpy(tgt, target, strnlen(target, UTIL_ID_LEN));
    uint8_t k[2] = {(uint8_t)kind, 0};
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
    for (size_t i = 0; !rc && i < nframes; i++) {
        if (frames[i].len > UINT32_MAX) return -E2BIG;
        uint8_t bin = frames[i].binary ? 1 : 0;
        rc = buf_append(b, &bin, 1);
        if (!rc) rc = put32(b, frames[i].len);
        if (!rc) rc = buf_append(b, frames[i].data, frames[i].len);
    }
    return rc;
}

int adapter_emit(store_txn *t, const bcast *to, const adapter_frame *frames, size_t nframes,
                 uint64_t *seq) {
    buf b = BUF_INIT;
    int rc = build(&b, ADAPTER_BCAST, NULL, to, frames, nframes);
    if (!rc) rc = store_log_append(t, b.data, b.len, seq);
    buf_free(&b);
    return rc;
}

int adapter_send_session(store_txn *t, const char *sid, const adapter_frame *frames,
                         size_t nframes, uint64_t *seq) {
    buf b = BUF_INIT;
    int rc = build(&b, ADAPTER_TO_SESSION, sid, NULL, frames, nframes);
    if (!rc) rc = store_log_append(t, b.data, b.len, seq);
    buf_free(&b);
    return rc;
}

int adapter_rec_parse(const void *data, size_t len, adapter_rec *out) {
    const uint8_t *p = data, *end = p + len;
    if (len < HDR_LEN) return -EINVAL;
    memset(out, 0, sizeof *out);
    out->kind = p[0];
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
    for (size_t i = 0; i < out->nrooms + out->nexcept; i++) {
        if (end - p < 2) return -EINVAL;
        size_t l = get16(p);
        p += 2;
        if ((size_t)(end - p) < l) return -EINVAL;
        p += l;
    }
    out->frames = p;
    for (size_t i = 0; i < out->nframes; i++) {
        if (end - p < 5) return -EINVAL;
        size_t l = get32(p + 1);
        p += 5;
        if ((size_t)(end - p) < l) return -EINVAL;
        p += l;
    }
    out->end = end;
    return p == end && (out->kind == ADAPTER_TO_SESSION || out->kind == ADAPTER_BCAST) ? 0
                                                                                       : -EINVAL;
}

int adapter_rec_frame(const adapter_rec *r, size_t *pos, adapter_frame *out) {
    const uint8_t *p = r->frames + *pos;
    if (p >= r->end) return 0;
    out->binary = p[0];
    out->len = get32(p + 1);
    out->data = p + 5;
    *pos += 5 + out->len;
    return 1;
}

/* The join sequence of socket s in the room at *p (which is advanced), or
 * UINT64_MAX when it is not a member. */
static int room_join_seq(store_txn *t, const store_socket *s, const uint8_t **p, uint64_t *js) {
    size_t l = get16(*p);
    const char *room = (const char *)*p + 2;
    *p += 2 + l;
    int rc = store_room_has(t, s->nsp, room, l, s->id, js);
    if (rc == STORE_NOTFOUND) {
        *js = UINT64_MAX;
        return 0;
    }
    return rc;
}

int adapter_window(store_txn *t, const adapter_rec *r, const store_socket *s, uint64_t *lo,
                   uint64_t *hi) {
    if (r->kind != ADAPTER_BCAST) return 0;
    if (r->nsp_len != strlen(s->nsp) || memcmp(r->nsp, s->nsp, r->nsp_len)) return 0;
    const uint8_t *p = r->rooms;
    uint64_t from = s->created_seq, until = UINT64_MAX, js;
    if (r->nrooms) { /* a member of any room of the union, from its earliest join */
        uint64_t first = UINT64_MAX;
        for (size_t i = 0; i < r->nrooms; i++) {
            int rc = room_join_seq(t, s, &p, &js);
            if (rc) return rc;
            if (js < first) first = js;
        }
        if (first == UINT64_MAX) return 0;
        if (first > from) from = first;
    }
    for (size_t i = 0; i < r->nexcept; i++) { /* until it joined an except room */
        int rc = room_join_seq(t, s, &p, &js);
        if (rc) return rc;
        if (js < until) until = js;
    }
    if (from >= until) return 0;
    *lo = from;
    *hi = until;
    return 1;
}

int adapter_match(store_txn *t, const adapter_rec *r, uint64_t seq, const store_socket *s) {
    if (r->kind == ADAPTER_TO_SESSION) return strcmp(r->target, s->sid) == 0;
    uint64_t lo, hi;
    int rc = adapter_window(t, r, s, &lo, &hi);
    if (rc <= 0) return rc;
    return lo < seq && seq <= hi;
}

int adapter_same_target(const adapter_rec *a, const adapter_rec *b) {
    size_t la = (size_t)(a->frames - (const uint8_t *)a->nsp);
    size_t lb = (size_t)(b->frames - (const uint8_t *)b->nsp);
    return a->kind == ADAPTER_BCAST && b->kind == ADAPTER_BCAST && a->nsp_len == b->nsp_len &&
           a->nrooms == b->nrooms && a->nexcept == b->nexcept && la == lb &&
           memcmp(a->nsp, b->nsp, la) == 0;
}

/* ---- fetchSockets --------------------------------------------------------- */

typedef struct seen_set {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap;
} seen_set;

static int seen_add(seen_set *s, const char *id) { /* duplicates removed by seen_unique */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        void *p = realloc(s->ids, cap * sizeof *s->ids);
        if (!p) return -ENOMEM;
        s->ids = p;
        s->cap = cap;
    }
    strcpy(s->ids[s->n++], id);
    return 1;
}

typedef struct fetch_ctx {
    const char *nsp;
    seen_set ids;
    int err;
} fetch_ctx;

static int collect_all_cb(void *arg, const store_socket *s) {
    fetch_ctx *f = arg;
    if (strcmp(s->nsp, f->nsp)) return 0;
    int n = seen_add(&f->ids, s->id);
    return n < 0 ? n : 0;
}

static int collect_member_cb(void *arg, const char *id, uint64_t join_seq) {
    (void)join_seq;
    fetch_ctx *f = arg;
    int n = seen_add(&f->ids, id);
    return n < 0 ? n : 0;
}

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

static void seen_unique(seen_set *s) {
    if (s->n < 2) return;
    qsort(s->ids, s->n, sizeof *s->ids, id_cmp);
    size_t o = 1;
    for (size_t i = 1; i < s->n; i++)
        if (strcmp(s->ids[i], s->ids[o - 1])) memcpy(s->ids[o++], s->ids[i], sizeof *s->ids);
    s->n = o;
}

int adapter_sockets(store_txn *t, const bcast *to, int (*cb)(void *, const store_socket *),
                    void *arg) {
    /* Collect the ids first, so that callbacks may change rooms and sockets. */
    fetch_ctx f = {to->nsp, {0}, 0};
    int rc = 0;
    if (to->nrooms == 0) rc = store_socket_each(t, collect_all_cb, &f);
    for (size_t i = 0; !rc && i < to->nrooms; i++)
        rc = store_room_members(t, to->nsp, to->rooms[i], strlen(to->rooms[i]),
                                collect_member_cb, &f);
    seen_unique(&f.ids);
    for (size_t i = 0; !rc && i < f.ids.n; i++) {
        const char *id = f.ids.ids[i];
        int skip = 0;
        for (size_t e = 0; !skip && e < to->nexcept; e++)
            skip = store_room_has(t, to->nsp, to->except[e], strlen(to->except[e]), id, NULL) == 0;
        store_socket s;
        if (skip || store_socket_get(t, id, &s)) continue;
        rc = cb(arg, &s);
    }
    free(f.ids.ids);
    return rc;
}

int adapter_join(store_txn *t, const store_socket *s, const char *room) {
    uint64_t head;
    int rc = store_log_bounds(t, NULL, &head);
    if (rc) return rc;
    return store_room_join(t, s->nsp, room, s->id, head);
}

int adapter_leave(store_txn *t, const store_socket *s, const char *room) {
    int rc = store_room_leave(t, s->nsp, room, s->id);
    return rc == STORE_NOTFOUND ? 0 : rc;
}

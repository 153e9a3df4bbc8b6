/* rooms: room membership and fetchSockets (see rooms.h). */
#include "server/rooms.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- fetchSockets --------------------------------------------------------- */

typedef struct seen_set {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap;
} seen_set;

static int seen_add(seen_set *s, const char *id) { /* duplicates removed by seen_unique */
    if (util_grow(&s->ids, &s->cap, s->n, sizeof *s->ids, 64)) return -ENOMEM;
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

int rooms_sockets(store_txn *t, const bcast *to, int detached,
                  int (*cb)(void *, const store_socket *), void *arg) {
    /* Collect the ids first, so that callbacks may change rooms and sockets. */
    fetch_ctx f = {to->nsp, {0}, 0};
    int rc = 0;
    if (to->nrooms == 0) rc = store_socket_each(t, collect_all_cb, &f);
    for (size_t i = 0; !rc && i < to->nrooms; i++)
        rc = store_room_members(t, to->nsp, to->rooms[i], strlen(to->rooms[i]), 0,
                                collect_member_cb, &f);
    seen_unique(&f.ids);
    for (size_t i = 0; !rc && i < f.ids.n; i++) {
        const char *id = f.ids.ids[i];
        int skip = 0;
        for (size_t e = 0; !skip && e < to->nexcept; e++)
            skip = store_room_has(t, to->nsp, to->except[e], strlen(to->except[e]), id, NULL) == 0;
        store_socket s;
        if (skip || store_socket_get(t, id, &s) || (s.detached_ms && !detached)) continue;
        rc = cb(arg, &s);
    }
    free(f.ids.ids);
    return rc;
}

int rooms_join(store_txn *t, const store_socket *s, const char *room) {
    uint64_t head;
    int rc = store_log_bounds(t, NULL, &head);
    if (rc) return rc;
    return store_room_join(t, s->nsp, room, s->id, head);
}

int rooms_leave(store_txn *t, const store_socket *s, const char *room) {
    uint64_t head;
    int rc = store_log_bounds(t, NULL, &head);
    if (!rc) rc = store_room_leave(t, s->nsp, room, s->id, head);
    return rc == STORE_NOTFOUND ? 0 : rc;
}

int rooms_is_own(store_txn *t, const char *room, size_t len) {
    if (!util_is_id(room, len)) return 0;
    char id[UTIL_ID_LEN + 1];
    memcpy(id, room, len);
    id[len] = 0;
    store_socket s;
    return store_socket_get(t, id, &s) == 0;
}

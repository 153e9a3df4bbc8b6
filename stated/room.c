/* room: dropping the oldest packet-log records when the map runs low (see room.h). */
#include "room.h"

#include "base/log.h"
#include "base/util.h"

#define LOW_DIV 16   /* under map/16 free: make room */
#define HIGH_DIV 8   /* ... until map/8 is free */
#define BATCH_FIRST 64
#define BATCH_MAX 4096

/* One episode of low room, from the first warning until room is back. */
static struct {
    int on;      /* warned that the store runs low */
    int starved; /* warned that the log is empty and room still short */
} episode;

/* One transaction dropping up to n of the oldest log records.  0, 1 when
 * the log is empty, or <0. */
static int drop_oldest(server *srv, uint64_t n, uint64_t *records, uint64_t *bytes) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    uint64_t first = 0, head = 0;
    size_t freed = 0;
    rc = store_log_bounds(t, &first, &head);
    if (!rc && first > head) {
        store_abort(t);
        return 1;
    }
    uint64_t upto = head - first + 1 > n ? first + n - 1 : head;
    if (!rc) rc = store_log_trim(t, upto, &freed);
    if (!rc) rc = store_commit(t);
    else store_abort(t);
    if (rc) return rc;
    *records += upto - first + 1;
    *bytes += freed;
    return 0;
}

/* LMDB reuses the pages a commit frees from the commit after next on (a
 * reader may start on the last snapshot but one): one small write after
 * the trims makes what they freed usable by the next writer. */
static int bump(server *srv) {
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    int64_t now = util_now_ms();
    rc = store_meta_put(t, "room_made_ms", &now, sizeof now);
    if (!rc) return store_commit(t);
    store_abort(t);
    return rc;
}

int room_make(server *srv, int full) {
    uint64_t avail = 0, map = 0;
    int rc = store_space(srv->st, &avail, &map);
    if (rc) return rc;
    if (!full && avail >= map / LOW_DIV) {
        if (avail >= map / HIGH_DIV) episode.on = episode.starved = 0;
        return 0;
    }
    uint64_t target = map / HIGH_DIV;
    if (full && target < avail + map / LOW_DIV) target = avail + map / LOW_DIV;
    if (!episode.on)
        log_warn("the store is %s (%llu of %llu MB free, map_size_mb): dropping the oldest packet-log records until %llu MB are free; readers that still needed them will be disconnected",
                 full ? "full" : "nearly full", (unsigned long long)(avail >> 20),
                 (unsigned long long)(map >> 20), (unsigned long long)(target >> 20));
    episode.on = 1;
    uint64_t records = 0, bytes = 0, batch = BATCH_FIRST;
    int empty = 0;
    while (avail < target) {
        rc = drop_oldest(srv, batch, &records, &bytes);
        if (rc == 1) {
            empty = 1;
            rc = 0;
            break;
        }
        if (rc == STORE_EFULL && batch > 1) {
            batch /= 2;
            continue;
        }
        if (rc) break;
        if (batch < BATCH_MAX) batch *= 2;
        if ((rc = store_space(srv->st, &avail, &map))) break;
    }
    if (records && !rc) rc = bump(srv);
    if (records) {
        log_info("made room in the store: dropped the %llu oldest packet-log records (%llu bytes); %llu of %llu MB free",
                 (unsigned long long)records, (unsigned long long)bytes,
                 (unsigned long long)(avail >> 20), (unsigned long long)(map >> 20));
        server_notify(srv, 0); /* readers left behind find out now */
    }
    if (rc) {
        log_error("cannot make room in the store: %s", store_strerror(rc));
        return rc;
    }
    if (empty && avail < target && !episode.starved) {
        episode.starved = 1;
        log_error("the store is %s and its packet log is empty (%llu of %llu MB free): sessions, sockets, rooms and the inbox fill it; raise map_size_mb",
                  full ? "full" : "nearly full", (unsigned long long)(avail >> 20),
                  (unsigned long long)(map >> 20));
    }
    return (int)(records > INT32_MAX ? INT32_MAX : records);
}

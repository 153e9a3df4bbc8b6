/* front_deliver: the front's reader of the packet log (see front_deliver.h).
 *
 * For each record of a scan:
 *   - LOGREC_TO_SESSION: the connection of that sid (a hash lookup);
 *   - LOGREC_BROADCAST: every delivering connection having a socket the
 *     record is for: through the member lists of small rooms, else through
 *     a per-pass target cache.
 * A connection's sockets are cached and reloaded (inside the scan's
 * transaction) after anything that may have changed them: a record for its
 * session (CONNECT replies and server DISCONNECTs are such records), a
 * packet from the client, a ping period.  The cursor is saved at most every
 * 100 ms. */
#include "front_deliver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#define SCAN_MAX_RECORDS CONN_FLOW_PACKETS /* per pass; the rest on the next loop turn */
#define PERSIST_EVERY_MS 100
#define RELEASE_EVERY_MS 1000 /* the store's pages this process touched: unmapped */
#define TCACHE_SIZE 8
#define STALL_MS 5000         /* a busy connection taking nothing this long is dropped */
#define FLOW_GRACE_MS 1000    /* ... and no longer pauses the reader after this long */
#define MAX_DEAD_FRONTS 64    /* reader entries of gone fronts removed at start */

/* The target cache (see "target cache" below). */
typedef struct tgt {
    ws_conn *c;
    uint64_t lo, hi;
    size_t sock; /* per_record: which of c->socks */
    int per_record; /* ended memberships: reader_match decides each record */
} tgt;

typedef struct tcache_ent {
    logrec rec; /* borrows the transaction's record bytes */
    tgt *t;
    size_t n, cap;
} tcache_ent;

/* Member ids of a small room, reused from pass to pass. */
typedef struct members {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap, max;
} members;

struct deliver {
    server *srv;
    struct lws_context *ctx;
    fconns *pool;
    void (*close)(ws_conn *c, int reason);
    reader_id id;
    int stopping;
    uint64_t cursor;
    uint64_t persisted; /* UINT64_MAX: no entry saved */
    int64_t persist_at;
    lws_sorted_usec_list_t sul_persist, sul_rescan, sul_release;
    int paused; /* flow control: waiting for queues to drain */
    /* delivering connections: a list (for broadcasts) and a sid hash */
    ws_conn *head;
    size_t count;
    ws_conn **hash;
    size_t hcap;
    /* reader holds of probing upgrades (a small multiset) */
    uint64_t *holds;
    size_t nholds, capholds;
    tcache_ent tc[TCACHE_SIZE];
    size_t ntc, tc_next;
    members m;
};

/* ---- the connection registry --------------------------------------------- */

static size_t sid_hash(const char *sid) {
    size_t h = 1469598103934665603ULL;
    for (; *sid; sid++) h = (h ^ (unsigned char)*sid) * 1099511628211ULL;
    return h;
}

static void hash_grow(deliver *d) {
    size_t cap = d->hcap ? d->hcap * 2 : 1024;
    ws_conn **nh = calloc(cap, sizeof *nh);
    if (!nh) return; /* keep the old table: chains just get longer */
    for (size_t i = 0; i < d->hcap; i++) {
        ws_conn *c = d->hash[i];
        while (c) {
            ws_conn *n = c->hnext;
            size_t b = sid_hash(c->sid) & (cap - 1);
            c->hnext = nh[b];
            nh[b] = c;
            c = n;
        }
    }
    free(d->hash);
    d->hash = nh;
    d->hcap = cap;
}

void deliver_add(deliver *d, ws_conn *c) {
    if (d->count + 1 > d->hcap) hash_grow(d);
    if (!d->hcap) return;
    size_t b = sid_hash(c->sid) & (d->hcap - 1);
    c->hnext = d->hash[b];
    d->hash[b] = c;
    c->prev = NULL;
    c->next = d->head;
    if (d->head) d->head->prev = c;
    d->head = c;
    d->count++;
}

void deliver_remove(deliver *d, ws_conn *c) {
    if (!d->hcap) return;
    size_t b = sid_hash(c->sid) & (d->hcap - 1);
    ws_conn **pp = &d->hash[b];
    while (*pp && *pp != c) pp = &(*pp)->hnext;
    if (!*pp) return; /* not registered */
    *pp = c->hnext;
    c->hnext = NULL;
    if (c->prev) c->prev->next = c->next;
    else d->head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    d->count--;
}

ws_conn *deliver_find(deliver *d, const char *sid) {
    if (!d->hcap) return NULL;
    for (ws_conn *c = d->hash[sid_hash(sid) & (d->hcap - 1)]; c; c = c->hnext)
        if (!strcmp(c->sid, sid)) return c;
    return NULL;
}

uint64_t deliver_cursor(const deliver *d) { return d->cursor; }

const reader_id *deliver_reader(const deliver *d) { return &d->id; }

void deliver_invalidate(ws_conn *c) { c->socks_valid = 0; }

/* ---- the reader entry ------------------------------------------------------- */

static uint64_t reader_position(const deliver *d) {
    uint64_t pos = d->cursor;
    for (size_t i = 0; i < d->nholds; i++)
        if (d->holds[i] < pos) pos = d->holds[i];
    return pos;
}

void deliver_persist(deliver *d, int del) {
    store_txn *t;
    int rc = store_begin(d->srv->st, 1, &t);
    if (rc) goto fail;
    uint64_t pos = reader_position(d);
    rc = del ? reader_del(t, &d->id) : reader_put(t, &d->id, pos);
    if (rc) {
        store_abort(t);
        goto fail;
    }
    if ((rc = store_commit(t))) goto fail;
    d->persisted = del ? UINT64_MAX : pos;
    d->persist_at = util_now_ms();
    return;
fail:;
    char name[64], what[128];
    reader_name(&d->id, name, sizeof name);
    d->persist_at = util_now_ms(); /* the next try waits its turn */
    if (store_full(rc)) {
        snprintf(what, sizeof what, "writing the reader entry %s (kept in memory)", name);
        server_warn_full(what, rc);
    } else {
        log_error("cannot %s the reader entry %s: %s", del ? "delete" : "write", name, store_strerror(rc));
    }
}

static void persist_cb(lws_sorted_usec_list_t *sul) {
    deliver *d = lws_container_of(sul, deliver, sul_persist);
    if (!d->stopping && reader_position(d) != d->persisted) deliver_persist(d, 0);
}

/* Persists now, or schedules it so that it happens at most every 100 ms. */
static void persist_soon(deliver *d) {
    if (d->stopping || reader_position(d) == d->persisted) return;
    int64_t wait = d->persist_at + PERSIST_EVERY_MS - util_now_ms();
    if (wait <= 0) {
        deliver_persist(d, 0);
        return;
    }
    if (!d->sul_persist.list.owner)
        lws_sul_schedule(d->ctx, 0, &d->sul_persist, persist_cb, (lws_usec_t)wait * 1000);
}

void deliver_hold(deliver *d, uint64_t seq) {
    if (util_grow(&d->holds, &d->capholds, d->nholds, sizeof *d->holds, 16)) return;
    d->holds[d->nholds++] = seq;
    if (d->stopping) return;
    /* now, not later: once the session says "websocket", its polling cursor
     * no longer protects the records the upgrade will collect */
    if (reader_position(d) < d->persisted || d->persisted == UINT64_MAX) deliver_persist(d, 0);
}

void deliver_unhold(deliver *d, uint64_t seq) {
    for (size_t i = 0; i < d->nholds; i++)
        if (d->holds[i] == seq) {
            d->holds[i] = d->holds[--d->nholds];
            break;
        }
    persist_soon(d);
}

static void drained_cb(void *arg, ws_conn *c);

/* Every second: the log pages a scan read, the session records a ramp of
 * connections wrote, leave this process's resident memory (the page cache
 * keeps them once for all processes; store_release_pages), and so do the
 * free pages of the heap (a ramp's request heads, a burst's queues). */
static void release_cb(lws_sorted_usec_list_t *sul) {
    deliver *d = lws_container_of(sul, deliver, sul_release);
    if (d->stopping) return;
    server_release_memory(d->srv);
    lws_sul_schedule(d->ctx, 0, &d->sul_release, release_cb, RELEASE_EVERY_MS * LWS_US_PER_MS);
}

/* Removes the entries of fronts that are gone (a crash leaves them) and
 * registers ours at the log head. */
static int register_reader(deliver *d) {
    store_txn *t;
    int rc = store_begin(d->srv->st, 1, &t);
    if (rc) return rc;
    reader_id dead[MAX_DEAD_FRONTS];
    int n = reader_find_dead(t, READER_FRONT, dead, MAX_DEAD_FRONTS);
    rc = n < 0 ? n : 0;
    for (int i = 0; !rc && i < n; i++) {
        char name[64];
        if (!(rc = reader_del(t, &dead[i])))
            log_info("removed the reader entry %s of a front that is gone",
                     reader_name(&dead[i], name, sizeof name));
    }
    if (!rc) rc = store_log_bounds(t, NULL, &d->cursor);
    if (!rc) rc = reader_put(t, &d->id, d->cursor);
    if (rc) {
        store_abort(t);
        return rc;
    }
    rc = store_commit(t);
    if (!rc) {
        d->persisted = d->cursor;
        d->persist_at = util_now_ms();
    }
    return rc;
}

int deliver_new(server *srv, struct lws_context *ctx, fconns *pool,
                void (*close)(ws_conn *c, int reason), deliver **out) {
    deliver *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->srv = srv;
    d->ctx = ctx;
    d->pool = pool;
    d->close = close;
    d->id = reader_self(READER_FRONT);
    d->persisted = UINT64_MAX;
    int rc = register_reader(d);
    if (rc) {
        free(d);
        return rc;
    }
    pool->drained = drained_cb;
    pool->drained_arg = d;
    lws_sul_schedule(ctx, 0, &d->sul_release, release_cb, RELEASE_EVERY_MS * LWS_US_PER_MS);
    *out = d;
    return 0;
}

void deliver_stop(deliver *d) {
    d->stopping = 1;
    lws_sul_cancel(&d->sul_persist);
    lws_sul_cancel(&d->sul_rescan);
    lws_sul_cancel(&d->sul_release);
}

void deliver_free(deliver *d) {
    if (!d) return;
    for (size_t i = 0; i < TCACHE_SIZE; i++) free(d->tc[i].t);
    free(d->m.ids);
    free(d->holds);
    free(d->hash);
    free(d);
}

/* ---- scanning ---------------------------------------------------------------- */

typedef struct scan {
    deliver *d;
    store_txn *t;
    size_t records;
    size_t bytes; /* record bytes of this pass */
    uint64_t last;
    int err;
    /* the current record's messages, built on its first target */
    fmsg *stack_msgs[16];
    fmsg **msgs;
    size_t nmsgs;
    int built;
    /* connections to drop after the transaction */
    ws_conn **drop;
    size_t ndrop, capdrop;
    ws_conn **check;
    size_t ncheck, capcheck;
} scan;

/* Appends c (callers keep each connection in at most once by a flag). */
static void push(ws_conn ***arr, size_t *n, size_t *cap, ws_conn *c) {
    if (util_grow(arr, cap, *n, sizeof **arr, 16)) return;
    (*arr)[(*n)++] = c;
}

static int sock_cb(void *arg, const store_socket *s) {
    ws_conn *c = arg;
    /* room for exactly as many as it has (most have one): a store_socket is big */
    store_socket *p = realloc(c->socks, (c->nsocks + 1) * sizeof *p);
    if (!p) return -ENOMEM;
    c->socks = p;
    c->socks[c->nsocks] = *s;
    c->socks[c->nsocks].data = NULL;
    c->socks[c->nsocks].data_len = 0;
    c->nsocks++;
    return 0;
}

static int load_socks(store_txn *t, ws_conn *c) {
    c->nsocks = 0;
    int rc = store_session_sockets(t, c->sid, sock_cb, c);
    if (rc == STORE_NOTFOUND) rc = 0;
    if (!rc) c->socks_valid = 1;
    return rc;
}

static int build_msgs(scan *s, const logrec *r) {
    s->msgs = r->nframes <= 16 ? s->stack_msgs : calloc(r->nframes, sizeof *s->msgs);
    if (!s->msgs) return -ENOMEM;
    size_t pos = 0;
    logrec_frame f;
    s->nmsgs = 0;
    while (s->nmsgs < r->nframes && logrec_frame_next(r, &pos, &f)) {
        fmsg *m = f.binary ? fmsg_binary(f.data, f.len) : fmsg_text('4', f.data, f.len);
        if (!m) return -ENOMEM;
        s->msgs[s->nmsgs++] = m;
    }
    s->built = 1;
    return 0;
}

static void release_msgs(scan *s) {
    for (size_t i = 0; i < s->nmsgs; i++) fmsg_unref(s->msgs[i]);
    if (s->msgs && s->msgs != s->stack_msgs) free(s->msgs);
    s->msgs = NULL;
    s->nmsgs = 0;
    s->built = 0;
}

static void give(scan *s, const logrec *r, ws_conn *c) {
    if (!s->built && build_msgs(s, r)) {
        s->err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < s->nmsgs; i++)
        if (conn_queue(c, s->msgs[i])) {
            push(&s->drop, &s->ndrop, &s->capdrop, c);
            c->dropping = 1; /* stop queueing; dropped after the scan */
            return;
        }
}

/* ---- small rooms -------------------------------------------------------------
 * When the rooms have far fewer members than this front has connections,
 * walk the members (socket -> session -> local connection) instead of
 * every connection. */

static int member_cb(void *arg, const char *id) {
    members *m = arg;
    if (m->n >= m->max) return 1; /* too many: walking the connections is cheaper */
    if (util_grow(&m->ids, &m->cap, m->n, sizeof *m->ids, 64)) return -ENOMEM;
    snprintf(m->ids[m->n++], UTIL_ID_LEN + 1, "%s", id);
    return 0;
}

/* Returns 1 when it did the job (the rooms are small), else 0. */
static int by_members(scan *s, const logrec *r, uint64_t seq) {
    deliver *d = s->d;
    members *m = &d->m;
    m->n = 0;
    m->max = d->count / 4; /* bigger rooms: the per-pass target cache is cheaper */
    int rc = reader_members(s->t, r, member_cb, m);
    if (rc) {
        if (rc < 0) s->err = rc;
        return rc < 0; /* > 0: too many members */
    }
    for (size_t i = 0; i < m->n && !s->err; i++) {
        store_socket so;
        if (store_socket_get(s->t, m->ids[i], &so)) continue;
        ws_conn *c = deliver_find(d, so.sid);
        if (!c || c->state != WS_OPEN || c->dropping || seq <= c->cursor || c->given == seq) continue;
        int hit = reader_match(s->t, r, seq, &so);
        if (hit < 0) s->err = hit;
        else if (hit) {
            c->given = seq;
            give(s, r, c);
        }
    }
    return 1;
}

/* ---- target cache ------------------------------------------------------------------
 * Within one pass (one read transaction) the rooms do not change, so the
 * connections a broadcast target reaches, with each one's delivery window
 * (reader_window), are computed once per distinct target and reused for
 * every record with that target: a flood to a room costs one lookup per
 * connection per pass, not per record.  Cleared at each pass (connections
 * are only freed between passes) and whenever a record for one session may
 * have changed that session's sockets. */

static void tcache_clear(deliver *d) {
    for (size_t i = 0; i < d->ntc; i++) d->tc[i].n = 0;
    d->ntc = 0;
    d->tc_next = 0;
}

static int tcache_add(tcache_ent *e, ws_conn *c, uint64_t lo, uint64_t hi, size_t sock,
                      int per_record) {
    if (util_grow(&e->t, &e->cap, e->n, sizeof *e->t, 64)) return -ENOMEM;
    e->t[e->n++] = (tgt){c, lo, hi, sock, per_record};
    return 0;
}

static tcache_ent *tcache_build(scan *s, const logrec *r) {
    deliver *d = s->d;
    tcache_ent *e;
    if (d->ntc < TCACHE_SIZE) e = &d->tc[d->ntc++];
    else e = &d->tc[d->tc_next++ % TCACHE_SIZE];
    e->rec = *r;
    e->n = 0;
    for (ws_conn *c = d->head; c && !s->err; c = c->next) {
        if (c->state != WS_OPEN || c->dropping) continue;
        if (!c->socks_valid && (s->err = load_socks(s->t, c))) break;
        for (size_t i = 0; i < c->nsocks; i++) {
            uint64_t lo = 0, hi = 0;
            int m = reader_window(s->t, r, &c->socks[i], &lo, &hi);
            if (m < 0) { s->err = m; break; }
            if (!m) continue;
            if ((s->err = tcache_add(e, c, lo, hi, i, m == READER_PER_RECORD))) break;
            break; /* one socket per namespace per session */
        }
    }
    return e;
}

static tcache_ent *tcache_find(deliver *d, const logrec *r) {
    for (size_t i = 0; i < d->ntc; i++)
        if (logrec_same_target(&d->tc[i].rec, r)) return &d->tc[i];
    return NULL;
}

/* ---- one record --------------------------------------------------------------------- */

static void to_session(scan *s, const logrec *r, uint64_t seq) {
    ws_conn *c = deliver_find(s->d, r->target);
    if (!c || c->state != WS_OPEN || c->dropping || seq <= c->cursor) return;
    give(s, r, c);
    c->socks_valid = 0; /* CONNECT replies and DISCONNECTs travel this way */
    tcache_clear(s->d);
    if (!c->checking) {
        c->checking = 1;
        push(&s->check, &s->ncheck, &s->capcheck, c);
    }
}

static void broadcast(scan *s, const logrec *r, uint64_t seq) {
    tcache_ent *e = tcache_find(s->d, r);
    if (!e && r->nrooms && by_members(s, r, seq)) return; /* a small room: done */
    if (!e) e = tcache_build(s, r);
    for (size_t i = 0; i < e->n && !s->err; i++) {
        tgt *g = &e->t[i];
        ws_conn *c = g->c;
        if (!c || c->state != WS_OPEN || c->dropping || seq <= c->cursor) continue;
        int hit = g->per_record ? reader_match(s->t, r, seq, &c->socks[g->sock])
                                : g->lo < seq && seq <= g->hi;
        if (hit < 0) s->err = hit;
        else if (hit) give(s, r, c);
    }
}

static int scan_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    scan *s = arg;
    logrec r;
    s->last = seq;
    s->records++;
    s->bytes += len;
    if (logrec_parse(data, len, &r)) {
        log_warn("log record %llu is malformed: skipped", (unsigned long long)seq);
        return s->records >= SCAN_MAX_RECORDS;
    }
    if (r.kind == LOGREC_TO_SESSION) to_session(s, &r, seq);
    else broadcast(s, &r, seq);
    release_msgs(s);
    if (s->err) return 1;
    /* a pass queues at most a quarter of a connection's limit, and about
     * the flow threshold: the busy check runs again before anyone can
     * overflow, and a queue grows at most about twice that threshold */
    fconns *p = s->d->pool;
    return s->records >= SCAN_MAX_RECORDS || s->bytes >= p->max_queue / 4 ||
           s->bytes >= CONN_FLOW_BYTES;
}

/* ---- flow control ---------------------------------------------------------------
 * When at least a quarter of the open connections that are taking bytes are
 * busy (their queue is over the flow threshold, front_conn.h), the
 * producers are faster than the clients: the front stops reading the log
 * (its cursor, which producers watch, stops) until queues drain.  So the
 * backlog of a flood stays in the log, once, not in every queue.  A small
 * minority of slow clients cannot pause it: they fill their queue to
 * max_queue_bytes / max_queue_packets and are dropped, while the others go
 * on.  A busy connection that has taken nothing for FLOW_GRACE_MS no longer
 * holds the front (it fills up and is dropped the same way), and one that
 * takes nothing for STALL_MS is dropped in any case. */

static void rescan_cb(lws_sorted_usec_list_t *sul) {
    deliver_scan(lws_container_of(sul, deliver, sul_rescan));
}

static int too_busy(deliver *d) {
    if (d->pool->busy == 0) return 0; /* the common case, without walking anyone */
    size_t open = 0, busy = 0, nstalled = 0;
    ws_conn *stalled[64];
    int64_t now = util_now_ms();
    for (ws_conn *c = d->head; c; c = c->next) {
        if (c->state != WS_OPEN || c->dropping) continue;
        if (!c->busy) {
            open++;
            continue;
        }
        int64_t idle = now - c->progress_ms;
        if (idle > STALL_MS && nstalled < 64) stalled[nstalled++] = c;
        else if (idle <= FLOW_GRACE_MS) open++, busy++;
    }
    for (size_t i = 0; i < nstalled; i++) {
        log_warn("session %s dropped: %s (send queue %zu bytes, no progress for %d ms)",
                 stalled[i]->sid, server_close_reason(SESSION_CLOSE_LAGGING), stalled[i]->qbytes,
                 STALL_MS);
        d->close(stalled[i], SESSION_CLOSE_LAGGING);
    }
    return busy > 0 && busy * 4 >= open;
}

static void drained_cb(void *arg, ws_conn *c) {
    (void)c;
    deliver *d = arg;
    if (!d->paused) return;
    d->paused = 0;
    lws_sul_schedule(d->ctx, 0, &d->sul_rescan, rescan_cb, 1);
}

/* ---- a pass -------------------------------------------------------------------------- */

/* The log was trimmed past the cursor (max_log_bytes): whoever needed those
 * records missed them. */
static void fell_behind(scan *s, uint64_t first) {
    deliver *d = s->d;
    size_t n = 0;
    for (ws_conn *c = d->head; c; c = c->next)
        if (c->state == WS_OPEN && c->cursor + 1 < first) {
            push(&s->drop, &s->ndrop, &s->capdrop, c);
            c->dropping = 1;
            n++;
        }
    log_warn("delivery fell behind the trimmed log (cursor %llu, first %llu): dropping %zu connection(s)",
             (unsigned long long)d->cursor, (unsigned long long)first, n);
    d->cursor = first - 1;
}

/* After the transaction: drops what overflowed, closes what the server
 * closed. */
static void finish(scan *s) {
    deliver *d = s->d;
    for (size_t i = 0; i < s->ndrop; i++) {
        ws_conn *c = s->drop[i];
        log_warn("session %s dropped: %s (send queue %zu bytes in %zu messages; limits "
                 "max_queue_bytes %zu, max_queue_packets %zu)", c->sid,
                 server_close_reason(SESSION_CLOSE_LAGGING), c->qbytes, (size_t)c->qlen, d->pool->max_queue,
                 d->pool->max_packets);
        d->close(c, SESSION_CLOSE_LAGGING);
    }
    for (size_t i = 0; i < s->ncheck; i++) {
        ws_conn *c = s->check[i];
        if (c->check_state && c->state == WS_OPEN) {
            c->check_state = 0;
            d->close(c, SESSION_CLOSE_SERVER);
        }
    }
    free(s->drop);
    free(s->check);
}

void deliver_scan(deliver *d) {
    if (d->stopping) return;
    if (too_busy(d)) {
        /* resumed by drained_cb, or by this timer if nothing drains */
        d->paused = 1;
        lws_sul_schedule(d->ctx, 0, &d->sul_rescan, rescan_cb, 50 * LWS_US_PER_MS);
        return;
    }
    store_txn *t;
    int rc = store_begin(d->srv->st, 0, &t);
    if (rc) {
        log_error("delivery: cannot read the store: %s", store_strerror(rc));
        return;
    }
    uint64_t first = 0, head = 0;
    rc = store_log_bounds(t, &first, &head);
    if (rc || head <= d->cursor) {
        store_abort(t);
        return;
    }
    scan s;
    memset(&s, 0, sizeof s);
    s.d = d;
    s.t = t;
    if (d->cursor + 1 < first) fell_behind(&s, first);
    s.last = d->cursor;
    tcache_clear(d);
    rc = store_log_scan(t, d->cursor, head, scan_cb, &s);
    tcache_clear(d); /* it borrowed the transaction's records */
    if (rc < 0 && !s.err) s.err = rc;
    release_msgs(&s);
    /* Sessions that got a record may have been closed by the server. */
    for (size_t i = 0; i < s.ncheck; i++) {
        ws_conn *c = s.check[i];
        c->checking = 0;
        if (c->state != WS_OPEN) continue;
        store_session ss;
        int g = store_session_get(t, c->sid, &ss);
        if (g == STORE_NOTFOUND || (g == 0 && ss.state == STORE_S_CLOSED)) c->check_state = 1;
    }
    store_abort(t);
    if (s.err) log_error("delivery scan failed at record %llu: %s", (unsigned long long)s.last,
                         store_strerror(s.err));
    d->cursor = s.last;
    finish(&s);
    persist_soon(d);
    if (d->cursor < head && !s.err) lws_sul_schedule(d->ctx, 0, &d->sul_rescan, rescan_cb, 1);
}

/* ---- upgrades ------------------------------------------------------------------ */

static int collect_cb(void *arg, const logrec_frame *f) {
    ws_conn *c = arg;
    fmsg *m = f->binary ? fmsg_binary(f->data, f->len) : fmsg_text('4', f->data, f->len);
    return conn_queue_own(c, m) ? SESSION_CLOSE_LAGGING : 0;
}

int deliver_upgraded(deliver *d, ws_conn *c, uint64_t session_cursor, store_session *ss) {
    store_txn *t;
    int rc = store_begin(d->srv->st, 0, &t);
    if (rc) return SESSION_CLOSE_TRANSPORT;
    uint64_t first = 0, head = 0, upto = session_cursor;
    rc = store_log_bounds(t, &first, &head);
    if (!rc && session_cursor + 1 < first) rc = SESSION_CLOSE_LAGGING;
    if (!rc && session_cursor < d->cursor)
        rc = reader_collect(t, c->sid, session_cursor, d->cursor, SIZE_MAX, collect_cb, c, &upto);
    if (!rc && store_session_get(t, c->sid, ss)) rc = SESSION_CLOSE_SERVER;
    store_abort(t);
    if (rc < 0) {
        log_error("upgrade of session %s: cannot collect its queue: %s", c->sid, store_strerror(rc));
        return SESSION_CLOSE_TRANSPORT;
    }
    if (rc) return rc;
    c->cursor = session_cursor > d->cursor ? session_cursor : d->cursor;
    return 0;
}

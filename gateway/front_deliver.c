/* front_deliver: the front's single reader cursor over the packet log.
 *
 * On every notify wake the loop calls deliver_scan(): one read transaction,
 * store_log_scan from the cursor, and for each delivery record the local
 * WebSocket connections it is for:
 *   - ADAPTER_TO_SESSION: the connection of that sid (a hash lookup);
 *   - ADAPTER_BCAST: every delivering connection having a socket that
 *     adapter_match accepts (membership as of the record's seq).
 * The frames of a record are encoded once into refcounted messages and the
 * same bytes are queued on every target, so every connection receives
 * packets in log order.  A connection whose queue passes the limit is
 * dropped (ENGINE_CLOSE_LAGGING).
 *
 * A connection's sockets are cached and reloaded (inside the scan's
 * transaction) after anything that may have changed them: a record for its
 * session (CONNECT replies and server DISCONNECTs are such records), a
 * packet from the client, a ping period.
 *
 * The cursor is persisted in the store's readers table as "front-<pid>", at
 * most every 100 ms, so stated trims the log only below what this front
 * still needs.  Probing upgrades hold it lower: their session's polling
 * cursor may be behind ours, and the gap is collected at upgrade time. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "base/log.h"
#include "proto/sio_parser.h"
#include "base/util.h"

#define SCAN_MAX_RECORDS 4096 /* per pass; the rest on the next loop turn */
#define PERSIST_EVERY_MS 100

static uint64_t g_cursor;
static uint64_t g_persisted = UINT64_MAX;
static int64_t g_persist_at;
static lws_sorted_usec_list_t g_sul_persist, g_sul_rescan;

/* Delivering connections: a list (for broadcasts) and a sid hash. */
static ws_conn *g_head;
static size_t g_count;
static ws_conn **g_hash;
static size_t g_hcap;

/* Reader holds of probing upgrades (a small multiset). */
static uint64_t *g_holds;
static size_t g_nholds, g_capholds;

/* ---- messages ------------------------------------------------------------- */

static fmsg *fmsg_new(int binary, const void *a, size_t alen, const void *b, size_t blen) {
    fmsg *m = malloc(sizeof *m + LWS_PRE + alen + blen + 1);
    if (!m) return NULL;
    m->refs = 1;
    m->binary = (uint8_t)binary;
    m->len = alen + blen;
    m->data = (unsigned char *)(m + 1) + LWS_PRE;
    if (alen) memcpy(m->data, a, alen);
    if (blen) memcpy(m->data + alen, b, blen);
    m->data[m->len] = 0;
    return m;
}

fmsg *fmsg_text(char type, const void *data, size_t len) {
    if (!type) return fmsg_new(0, data, len, NULL, 0);
    return fmsg_new(0, &type, 1, data, len);
}

fmsg *fmsg_binary(const void *data, size_t len) { return fmsg_new(1, data, len, NULL, 0); }

void fmsg_unref(fmsg *m) {
    if (!m || m->refs == UINT32_MAX) return;
    if (--m->refs == 0) free(m);
}

/* ---- the connection registry --------------------------------------------- */

static size_t sid_hash(const char *sid) {
    size_t h = 1469598103934665603ULL;
    for (; *sid; sid++) h = (h ^ (unsigned char)*sid) * 1099511628211ULL;
    return h;
}

static void hash_grow(void) {
    size_t cap = g_hcap ? g_hcap * 2 : 1024;
    ws_conn **nh = calloc(cap, sizeof *nh);
    if (!nh) return; /* keep the old table: chains just get longer */
    for (size_t i = 0; i < g_hcap; i++) {
        ws_conn *c = g_hash[i];
        while (c) {
            ws_conn *n = c->hnext;
            size_t b = sid_hash(c->sid) & (cap - 1);
            c->hnext = nh[b];
            nh[b] = c;
            c = n;
        }
    }
    free(g_hash);
    g_hash = nh;
    g_hcap = cap;
}

void deliver_add(ws_conn *c) {
    if (g_count + 1 > g_hcap) hash_grow();
    if (!g_hcap) return;
    size_t b = sid_hash(c->sid) & (g_hcap - 1);
    c->hnext = g_hash[b];
    g_hash[b] = c;
    c->prev = NULL;
    c->next = g_head;
    if (g_head) g_head->prev = c;
    g_head = c;
    g_count++;
}

void deliver_remove(ws_conn *c) {
    if (!g_hcap) return;
    size_t b = sid_hash(c->sid) & (g_hcap - 1);
    ws_conn **pp = &g_hash[b];
    while (*pp && *pp != c) pp = &(*pp)->hnext;
    if (!*pp) return; /* not registered */
    *pp = c->hnext;
    c->hnext = NULL;
    if (c->prev) c->prev->next = c->next;
    else g_head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    g_count--;
}

ws_conn *deliver_find(const char *sid) {
    if (!g_hcap) return NULL;
    for (ws_conn *c = g_hash[sid_hash(sid) & (g_hcap - 1)]; c; c = c->hnext)
        if (!strcmp(c->sid, sid)) return c;
    return NULL;
}

uint64_t deliver_cursor(void) { return g_cursor; }

void deliver_invalidate(ws_conn *c) { c->socks_valid = 0; }

/* ---- the reader entry ------------------------------------------------------- */

static uint64_t reader_position(void) {
    uint64_t pos = g_cursor;
    for (size_t i = 0; i < g_nholds; i++)
        if (g_holds[i] < pos) pos = g_holds[i];
    return pos;
}

void deliver_persist(int del) {
    engine *e = &g_front.e;
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) goto fail;
    uint64_t pos = reader_position();
    rc = del ? store_reader_del(t, g_front.reader_name) : store_reader_put(t, g_front.reader_name, pos);
    if (rc == STORE_NOTFOUND) rc = 0;
    if (rc) {
        store_abort(t);
        goto fail;
    }
    if ((rc = store_commit(t))) goto fail;
    g_persisted = del ? UINT64_MAX : pos;
    g_persist_at = util_now_ms();
    return;
fail:
    log_error("cannot %s the reader entry %s: %s", del ? "delete" : "write", g_front.reader_name,
              store_strerror(rc));
}

static void persist_cb(lws_sorted_usec_list_t *sul) {
    (void)sul;
    if (!g_front.stopping && reader_position() != g_persisted) deliver_persist(0);
}

/* Persists now, or schedules it so that it happens at most every 100 ms. */
static void persist_soon(void) {
    if (g_front.stopping || reader_position() == g_persisted) return;
    int64_t wait = g_persist_at + PERSIST_EVERY_MS - util_now_ms();
    if (wait <= 0) {
        deliver_persist(0);
        return;
    }
    if (!g_sul_persist.list.owner)
        lws_sul_schedule(g_front.ctx, 0, &g_sul_persist, persist_cb, (lws_usec_t)wait * 1000);
}

void deliver_hold(uint64_t seq) {
    if (g_nholds == g_capholds) {
        size_t cap = g_capholds ? g_capholds * 2 : 16;
        uint64_t *p = realloc(g_holds, cap * sizeof *p);
        if (!p) return;
        g_holds = p;
        g_capholds = cap;
    }
    g_holds[g_nholds++] = seq;
    if (g_front.stopping) return;
    /* now, not later: once the session says "websocket", its polling cursor
     * no longer protects the records the upgrade will collect */
    if (reader_position() < g_persisted || g_persisted == UINT64_MAX) deliver_persist(0);
}

void deliver_unhold(uint64_t seq) {
    for (size_t i = 0; i < g_nholds; i++)
        if (g_holds[i] == seq) {
            g_holds[i] = g_holds[--g_nholds];
            break;
        }
    persist_soon();
}

/* Deletes reader entries of fronts that are gone (a crash leaves them). */
static int stale_cb(void *arg, const char *name, uint64_t seq) {
    (void)seq;
    char (*names)[32] = arg;
    if (strncmp(name, "front-", 6)) return 0;
    long pid;
    if (util_parse_long(name + 6, 1, 1L << 30, &pid)) return 0;
    if (pid == getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM) return 0;
    for (int i = 0; i < 64; i++)
        if (!names[i][0]) {
            snprintf(names[i], sizeof names[i], "%s", name);
            break;
        }
    return 0;
}

int deliver_init(void) {
    engine *e = &g_front.e;
    snprintf(g_front.reader_name, sizeof g_front.reader_name, "front-%d", (int)getpid());
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return rc;
    char stale[64][32];
    memset(stale, 0, sizeof stale);
    rc = store_reader_each(t, stale_cb, stale);
    for (int i = 0; !rc && i < 64 && stale[i][0]; i++) {
        rc = store_reader_del(t, stale[i]);
        if (rc == STORE_NOTFOUND) rc = 0;
        if (!rc) log_info("removed the reader entry %s of a front that is gone", stale[i]);
    }
    if (!rc) rc = store_log_bounds(t, NULL, &g_cursor);
    if (!rc) rc = store_reader_put(t, g_front.reader_name, g_cursor);
    if (rc) {
        store_abort(t);
        return rc;
    }
    rc = store_commit(t);
    if (!rc) {
        g_persisted = g_cursor;
        g_persist_at = util_now_ms();
    }
    return rc;
}

/* ---- scanning ---------------------------------------------------------------- */

typedef struct scan {
    store_txn *t;
    size_t records;
    size_t bytes;   /* record bytes of this pass */
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
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        ws_conn **p = realloc(*arr, nc * sizeof *p);
        if (!p) return;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = c;
}

static int sock_cb(void *arg, const store_socket *s) {
    ws_conn *c = arg;
    if (c->nsocks % 4 == 0) {
        store_socket *p = realloc(c->socks, (c->nsocks + 4) * sizeof *p);
        if (!p) return -ENOMEM;
        c->socks = p;
    }
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

static int build_msgs(scan *s, const adapter_rec *r) {
    s->msgs = r->nframes <= 16 ? s->stack_msgs : calloc(r->nframes, sizeof *s->msgs);
    if (!s->msgs) return -ENOMEM;
    size_t pos = 0;
    adapter_frame f;
    s->nmsgs = 0;
    while (s->nmsgs < r->nframes && adapter_rec_frame(r, &pos, &f)) {
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

static void give(scan *s, const adapter_rec *r, ws_conn *c) {
    if (!s->built && build_msgs(s, r)) {
        s->err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < s->nmsgs; i++)
        if (ws_queue(c, s->msgs[i])) {
            push(&s->drop, &s->ndrop, &s->capdrop, c);
            c->dropping = 1; /* stop queueing; dropped after the scan */
            return;
        }
}

/* Room broadcasts: when the rooms have far fewer members than this front has
 * connections, walk the members (socket -> session -> local connection)
 * instead of every connection.  Returns 1 when it did the job. */
typedef struct members {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap, max;
} members;

static int member_cb(void *arg, const char *id, uint64_t join_seq) {
    (void)join_seq;
    members *m = arg;
    if (m->n >= m->max) return 1; /* too many: walking the connections is cheaper */
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        void *p = realloc(m->ids, cap * sizeof *m->ids);
        if (!p) return -ENOMEM;
        m->ids = p;
        m->cap = cap;
    }
    snprintf(m->ids[m->n++], UTIL_ID_LEN + 1, "%s", id);
    return 0;
}

static int by_members(scan *s, const adapter_rec *r, uint64_t seq) {
    static members m;
    m.n = 0;
    m.max = g_count / 4; /* bigger rooms: the per-pass target cache is cheaper */
    char nsp[SIO_NSP_MAX + 1];
    if (r->nsp_len > SIO_NSP_MAX) return 0;
    memcpy(nsp, r->nsp, r->nsp_len);
    nsp[r->nsp_len] = 0;
    const uint8_t *p = r->rooms;
    for (size_t i = 0; i < r->nrooms; i++) {
        size_t l = (size_t)p[0] | (size_t)p[1] << 8;
        int rc = store_room_members(s->t, nsp, (const char *)p + 2, l, member_cb, &m);
        p += 2 + l;
        if (rc == STORE_NOTFOUND) continue;
        if (rc) {
            if (rc < 0) s->err = rc;
            return rc < 0; /* > 0: too many members */
        }
    }
    for (size_t i = 0; i < m.n && !s->err; i++) {
        store_socket so;
        if (store_socket_get(s->t, m.ids[i], &so)) continue;
        ws_conn *c = deliver_find(so.sid);
        if (!c || c->state != WS_OPEN || c->dropping || seq <= c->cursor || c->given == seq) continue;
        int hit = adapter_match(s->t, r, seq, &so);
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
 * (adapter_window), are computed once per distinct target and reused for
 * every record with that target: a flood to a room costs one lookup per
 * connection per pass, not per record.  Cleared at each pass (connections
 * are only freed between passes) and whenever a record for one session may
 * have changed that session's sockets. */

typedef struct tgt {
    ws_conn *c;
    uint64_t lo, hi;
} tgt;

typedef struct tcache_ent {
    adapter_rec rec; /* borrows the transaction's record bytes */
    tgt *t;
    size_t n, cap;
} tcache_ent;

#define TCACHE_SIZE 8
static tcache_ent g_tc[TCACHE_SIZE];
static size_t g_ntc, g_tc_next;

static void tcache_clear(void) {
    for (size_t i = 0; i < g_ntc; i++) g_tc[i].n = 0;
    g_ntc = 0;
    g_tc_next = 0;
}

static tcache_ent *tcache_build(scan *s, const adapter_rec *r) {
    tcache_ent *e;
    if (g_ntc < TCACHE_SIZE) e = &g_tc[g_ntc++];
    else e = &g_tc[g_tc_next++ % TCACHE_SIZE];
    e->rec = *r;
    e->n = 0;
    for (ws_conn *c = g_head; c && !s->err; c = c->next) {
        if (c->state != WS_OPEN || c->dropping) continue;
        if (!c->socks_valid && (s->err = load_socks(s->t, c))) break;
        for (size_t i = 0; i < c->nsocks; i++) {
            uint64_t lo, hi;
            int m = adapter_window(s->t, r, &c->socks[i], &lo, &hi);
            if (m < 0) { s->err = m; break; }
            if (!m) continue;
            if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 64;
                tgt *p = realloc(e->t, cap * sizeof *p);
                if (!p) { s->err = -ENOMEM; break; }
                e->t = p;
                e->cap = cap;
            }
            e->t[e->n++] = (tgt){c, lo, hi};
            break; /* one socket per namespace per session */
        }
    }
    return e;
}

static tcache_ent *tcache_find(const adapter_rec *r) {
    for (size_t i = 0; i < g_ntc; i++)
        if (adapter_same_target(&g_tc[i].rec, r)) return &g_tc[i];
    return NULL;
}

static int scan_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    scan *s = arg;
    adapter_rec r;
    s->last = seq;
    s->records++;
    s->bytes += len;
    if (adapter_rec_parse(data, len, &r)) {
        log_warn("log record %llu is malformed: skipped", (unsigned long long)seq);
        return s->records >= SCAN_MAX_RECORDS;
    }
    if (r.kind == ADAPTER_TO_SESSION) {
        ws_conn *c = deliver_find(r.target);
        if (c && c->state == WS_OPEN && !c->dropping && seq > c->cursor) {
            give(s, &r, c);
            c->socks_valid = 0; /* CONNECT replies and DISCONNECTs travel this way */
            tcache_clear();
            if (!c->checking) {
                c->checking = 1;
                push(&s->check, &s->ncheck, &s->capcheck, c);
            }
        }
    } else {
        tcache_ent *e = tcache_find(&r);
        if (!e && r.nrooms && by_members(s, &r, seq)) {
            /* a small room: done from its member list */
        } else {
            if (!e) e = tcache_build(s, &r);
            for (size_t i = 0; i < e->n && !s->err; i++) {
                ws_conn *c = e->t[i].c;
                if (!c || c->state != WS_OPEN || c->dropping || seq <= c->cursor) continue;
                if (e->t[i].lo < seq && seq <= e->t[i].hi) give(s, &r, c);
            }
        }
    }
    release_msgs(s);
    if (s->err) return 1;
    /* a pass queues at most a quarter of a connection's limit: the busy check
     * below runs again before anyone can overflow */
    return s->records >= SCAN_MAX_RECORDS || s->bytes >= g_front.o.max_queue / 4;
}

/* ---- flow control ---------------------------------------------------------------
 * When at least a quarter of the open connections hold more than half of
 * their queue limit, the producers are faster than the clients: the front
 * stops reading the log (its cursor, which producers watch, stops) until
 * queues drain.  A small minority of slow clients cannot pause it: they fill
 * their queue and are dropped, while the others go on.  A connection that stays busy
 * without taking a byte for STALL_MS is dropped too, so a stalled client
 * never holds the front. */

#define STALL_MS 5000

static int g_paused;
static void rescan_cb(lws_sorted_usec_list_t *sul);

void deliver_account(ws_conn *c) {
    int busy = c->qbytes > g_front.o.max_queue / 2;
    if (busy != c->busy) {
        c->busy = busy;
        if (busy) g_front.busy++;
        else g_front.busy--;
    }
}

static int too_busy(void) {
    if (g_front.busy == 0) return 0; /* the common case, without walking anyone */
    size_t open = 0, busy = 0, nstalled = 0;
    ws_conn *stalled[64];
    int64_t now = util_now_ms();
    for (ws_conn *c = g_head; c; c = c->next) {
        if (c->state != WS_OPEN || c->dropping) continue;
        open++;
        if (c->qbytes <= g_front.o.max_queue / 2) continue;
        if (now - c->progress_ms > STALL_MS && nstalled < 64) stalled[nstalled++] = c;
        else busy++;
    }
    for (size_t i = 0; i < nstalled; i++) {
        log_warn("session %s dropped: %s (send queue %zu bytes, no progress for %d ms)",
                 stalled[i]->sid, engine_close_reason(ENGINE_CLOSE_LAGGING), stalled[i]->qbytes,
                 STALL_MS);
        ws_close(stalled[i], ENGINE_CLOSE_LAGGING);
    }
    return busy > 0 && busy * 4 >= open - nstalled;
}

void deliver_drained(ws_conn *c) {
    if (g_paused && c->qbytes <= g_front.o.max_queue / 4) {
        g_paused = 0;
        lws_sul_schedule(g_front.ctx, 0, &g_sul_rescan, rescan_cb, 1);
    }
}

static void rescan_cb(lws_sorted_usec_list_t *sul) {
    (void)sul;
    deliver_scan();
}

void deliver_scan(void) {
    engine *e = &g_front.e;
    if (g_front.stopping) return;
    if (too_busy()) {
        /* resumed by deliver_drained, or by this timer if nothing drains */
        g_paused = 1;
        lws_sul_schedule(g_front.ctx, 0, &g_sul_rescan, rescan_cb, 50 * LWS_US_PER_MS);
        return;
    }
    store_txn *t;
    int rc = store_begin(e->st, 0, &t);
    if (rc) {
        log_error("delivery: cannot read the store: %s", store_strerror(rc));
        return;
    }
    uint64_t first = 0, head = 0;
    rc = store_log_bounds(t, &first, &head);
    if (rc || head <= g_cursor) {
        store_abort(t);
        return;
    }
    scan s;
    memset(&s, 0, sizeof s);
    s.t = t;
    if (g_cursor + 1 < first) {
        /* The log was trimmed past us (max_log_bytes): whoever needed those
         * records missed them. */
        size_t n = 0;
        for (ws_conn *c = g_head; c; c = c->next)
            if (c->state == WS_OPEN && c->cursor + 1 < first) {
                push(&s.drop, &s.ndrop, &s.capdrop, c);
                c->dropping = 1;
                n++;
            }
        log_warn("delivery fell behind the trimmed log (cursor %llu, first %llu): dropping %zu connection(s)",
                 (unsigned long long)g_cursor, (unsigned long long)first, n);
        g_cursor = first - 1;
    }
    s.last = g_cursor;
    tcache_clear();
    rc = store_log_scan(t, g_cursor, head, scan_cb, &s);
    tcache_clear(); /* it borrowed the transaction's records */
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
    g_cursor = s.last;
    for (size_t i = 0; i < s.ndrop; i++) {
        ws_conn *c = s.drop[i];
        log_warn("session %s dropped: %s (send queue %zu bytes, limit %zu)", c->sid,
                 engine_close_reason(ENGINE_CLOSE_LAGGING), c->qbytes, g_front.o.max_queue);
        ws_close(c, ENGINE_CLOSE_LAGGING);
    }
    for (size_t i = 0; i < s.ncheck; i++) {
        ws_conn *c = s.check[i];
        if (c->check_state && c->state == WS_OPEN) {
            c->check_state = 0;
            ws_close(c, ENGINE_CLOSE_SERVER);
        }
    }
    free(s.drop);
    free(s.check);
    persist_soon();
    if (g_cursor < head && !s.err)
        lws_sul_schedule(g_front.ctx, 0, &g_sul_rescan, rescan_cb, 1);
}

/* ---- upgrades ------------------------------------------------------------------ */

static int collect_cb(void *arg, const adapter_frame *f) {
    ws_conn *c = arg;
    fmsg *m = f->binary ? fmsg_binary(f->data, f->len) : fmsg_text('4', f->data, f->len);
    if (!m) return -ENOMEM;
    int rc = ws_queue(c, m);
    fmsg_unref(m);
    return rc ? ENGINE_CLOSE_LAGGING : 0;
}

int deliver_upgraded(ws_conn *c, uint64_t session_cursor, store_session *ss) {
    engine *e = &g_front.e;
    store_txn *t;
    int rc = store_begin(e->st, 0, &t);
    if (rc) return ENGINE_CLOSE_TRANSPORT;
    uint64_t first = 0, head = 0, upto = session_cursor;
    rc = store_log_bounds(t, &first, &head);
    if (!rc && session_cursor + 1 < first) rc = ENGINE_CLOSE_LAGGING;
    if (!rc && session_cursor < g_cursor)
        rc = engine_collect(t, c->sid, session_cursor, g_cursor, SIZE_MAX, collect_cb, c, &upto);
    if (!rc && store_session_get(t, c->sid, ss)) rc = ENGINE_CLOSE_SERVER;
    store_abort(t);
    if (rc < 0) {
        log_error("upgrade of session %s: cannot collect its queue: %s", c->sid, store_strerror(rc));
        return ENGINE_CLOSE_TRANSPORT;
    }
    if (rc) return rc;
    c->cursor = session_cursor > g_cursor ? session_cursor : g_cursor;
    return 0;
}

/* reaper: stated's housekeeping (see reaper.h). */
#include "reaper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/reader.h"
#include "server/session.h"

#define CLOSED_LINGER_MS 10000       /* a closed session's record waits for its held GET */
#define INBOX_KEEP_MAX 1000000ull    /* inbox records kept for a lagging reader */

/* ---- sessions --------------------------------------------------------------------- */

enum { REAP_CLOSE = 1, REAP_DELETE = 2, REAP_END_UPGRADE = 3 };

typedef struct reap_item {
    char sid[UTIL_ID_LEN + 1];
    int action; /* REAP_* */
    int reason;
} reap_item;

/* Owner processes seen in one pass: a handful of fronts own every
 * WebSocket session, so one kill(pid, 0) each per pass, not one per session
 * (100,000 of them took ~0.3 s a second of stated's write lock). */
#define REAP_PIDS 64

typedef struct reap_ctx {
    server *srv;
    int64_t now, next;
    reap_item *items;
    size_t n, cap;
    uint64_t min_cursor; /* the lowest polling cursor */
    struct {
        int pid, alive;
    } pids[REAP_PIDS];
    size_t npids;
} reap_ctx;

/* util_pid_alive, asked once a pass for each pid. */
static int reap_pid_alive(reap_ctx *r, int pid) {
    for (size_t i = 0; i < r->npids; i++)
        if (r->pids[i].pid == pid) return r->pids[i].alive;
    int alive = util_pid_alive(pid);
    if (r->npids < REAP_PIDS) {
        r->pids[r->npids].pid = pid;
        r->pids[r->npids++].alive = alive;
    }
    return alive;
}

/* What a session needs now: REAP_* (with *reason), or 0 (and the deadlines
 * and cursor it holds are noted). */
static int reap_decide(reap_ctx *r, const store_session *s, int *reason) {
    if (s->state == STORE_S_CLOSED) {
        if (!session_holder_alive(s) || r->now - s->closed_ms > CLOSED_LINGER_MS) return REAP_DELETE;
        if (s->closed_ms + CLOSED_LINGER_MS < r->next) r->next = s->closed_ms + CLOSED_LINGER_MS;
        return 0;
    }
    if (s->transport == STORE_T_POLLING) {
        if ((*reason = session_expired(r->srv, s, r->now))) return REAP_CLOSE;
        if (s->upgrade_ms && r->now > s->upgrade_ms + r->srv->cfg.upgrade_timeout)
            return REAP_END_UPGRADE;
        int64_t d = session_expiry(r->srv, s);
        if (d < r->next) r->next = d;
        if (s->cursor < r->min_cursor) r->min_cursor = s->cursor;
        return 0;
    }
    if (s->owner_pid && !reap_pid_alive(r, s->owner_pid)) {
        *reason = SESSION_CLOSE_TRANSPORT; /* its WebSocket front is gone */
        return REAP_CLOSE;
    }
    return 0;
}

static int reap_cb(void *arg, const char *sid, const store_session *s) {
    reap_ctx *r = arg;
    int reason = 0, action = reap_decide(r, s, &reason);
    if (!action) return 0;
    if (util_grow(&r->items, &r->cap, r->n, sizeof *r->items, 64)) return -ENOMEM;
    strcpy(r->items[r->n].sid, sid);
    r->items[r->n].action = action;
    r->items[r->n].reason = reason;
    r->n++;
    return 0;
}

/* 1 when done, 0 when the session is gone meanwhile, or <0. */
static int reap_apply(store_txn *t, const reap_item *it) {
    store_session s;
    int rc;
    if (store_session_get(t, it->sid, &s)) return 0;
    if (it->action == REAP_DELETE) {
        rc = store_session_del(t, it->sid);
    } else if (it->action == REAP_END_UPGRADE) {
        s.state = STORE_S_OPEN;
        s.upgrade_ms = 0;
        rc = store_session_put(t, it->sid, &s);
    } else {
        rc = session_close(t, it->sid, &s, it->reason);
        log_info("session %s closed: %s", it->sid, server_close_reason(it->reason));
    }
    return rc ? rc : 1;
}

/* ---- detached sockets -------------------------------------------------------------- */

typedef struct expire_ctx {
    server *srv;
    int64_t now, next;
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap;
} expire_ctx;

static int expire_cb(void *arg, const char *id, int64_t detached_ms) {
    expire_ctx *x = arg;
    int64_t end = detached_ms + x->srv->cfg.max_disconnection_duration;
    if (x->srv->cfg.connection_state_recovery && x->now <= end) {
        if (end + 1 < x->next) x->next = end + 1;
        return 0;
    }
    if (util_grow(&x->ids, &x->cap, x->n, sizeof *x->ids, 64)) return -ENOMEM;
    strcpy(x->ids[x->n++], id);
    return 0;
}

/* Deletes the detached sockets whose client did not come back in time (or
 * all of them once recovery is off): they leave every room. */
static int expire_detached(server *srv, store_txn *t, int64_t now, int64_t *next) {
    expire_ctx x = {srv, now, *next, NULL, 0, 0};
    int rc = store_detached_each(t, expire_cb, &x);
    for (size_t i = 0; !rc && i < x.n; i++) {
        rc = store_socket_del(t, x.ids[i]);
        if (rc == STORE_NOTFOUND) rc = 0;
        else if (!rc) log_debug("socket %s: not recovered in time, removed", x.ids[i]);
    }
    free(x.ids);
    *next = x.next;
    return rc;
}

/* ---- the packet log --------------------------------------------------------------- */

/* What connection state recovery keeps: samples of (time, log head), so
 * that records younger than max_disconnection_duration are not trimmed.
 * stated's memory only: after a restart everything in the log counts as
 * young (kept one window longer at worst). */
#define RETAIN_SAMPLES 256

static struct {
    int64_t ms[RETAIN_SAMPLES];
    uint64_t head[RETAIN_SAMPLES];
    size_t n, next;
} retain;

/* The highest seq older than the window (0: none), sampling the head. */
static uint64_t retain_floor(server *srv, int64_t now, uint64_t head) {
    int64_t window = srv->cfg.max_disconnection_duration, every = window / (RETAIN_SAMPLES / 2);
    size_t last = (retain.next + RETAIN_SAMPLES - 1) % RETAIN_SAMPLES;
    if (!retain.n || now - retain.ms[last] >= (every > 100 ? every : 100)) {
        retain.ms[retain.next] = now;
        retain.head[retain.next] = head;
        retain.next = (retain.next + 1) % RETAIN_SAMPLES;
        if (retain.n < RETAIN_SAMPLES) retain.n++;
    }
    uint64_t floor = 0;
    for (size_t i = 0; i < retain.n; i++)
        if (now - retain.ms[i] > window && retain.head[i] > floor) floor = retain.head[i];
    return floor;
}

/* Trims the log below upto (every reader's position), then past
 * max_log_bytes in any case. */
static int trim_log(server *srv, store_txn *t, uint64_t upto) {
    uint64_t first = 0, head = 0, bytes = 0;
    int rc = store_log_bounds(t, &first, &head);
    if (!rc && upto == UINT64_MAX) upto = head;
    if (!rc && srv->cfg.connection_state_recovery) {
        uint64_t floor = retain_floor(srv, util_now_ms(), head);
        if (floor < upto) upto = floor;
    }
    if (!rc && upto >= first) rc = store_log_trim(t, upto, NULL);
    if (!rc) rc = store_log_size(t, &bytes);
    while (!rc && bytes > (uint64_t)srv->cfg.max_log_bytes) {
        if ((rc = store_log_bounds(t, &first, &head)) || first > head) break;
        uint64_t step = (head - first) / 8 + 1;
        log_warn("packet log over max_log_bytes (%llu bytes): dropping %llu records; lagging readers will be disconnected",
                 (unsigned long long)bytes, (unsigned long long)step);
        rc = store_log_trim(t, first + step - 1, NULL);
        if (!rc) rc = store_log_size(t, &bytes);
    }
    /* memberships that ended before every record left cannot decide any */
    if (!rc) rc = store_log_bounds(t, &first, &head);
    if (!rc && first > 1) rc = store_room_gc(t, first - 1, NULL);
    return rc;
}

int reaper_run(server *srv, int64_t now, int64_t *next_ms) {
    reap_ctx r = {.srv = srv, .now = now, .next = now + 1000, .min_cursor = UINT64_MAX};
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    uint64_t readers = UINT64_MAX;
    rc = store_session_each(t, reap_cb, &r);
    if (!rc) rc = reader_min(t, READER_LOG_PACKETS, 0, &readers, NULL);
    int done = 0;
    for (size_t i = 0; !rc && i < r.n; i++) {
        rc = reap_apply(t, &r.items[i]);
        if (rc > 0) done++, rc = 0;
    }
    if (!rc) rc = expire_detached(srv, t, now, &r.next);
    if (!rc) rc = trim_log(srv, t, readers < r.min_cursor ? readers : r.min_cursor);
    if (!rc) rc = store_commit(t); else store_abort(t);
    free(r.items);
    if (rc) return rc;
    if (done) server_notify(srv, 0);
    *next_ms = r.next;
    return done;
}

/* ---- the inbox ------------------------------------------------------------------------ */

/* Where to trim the inbox: below the slowest live reader, and past
 * INBOX_KEEP_MAX records in any case (*forced set then). */
static int inbox_upto(store_txn *t, uint64_t *upto, uint64_t *first, uint64_t *head, int *forced) {
    uint64_t min;
    size_t n;
    int rc = reader_min(t, READER_LOG_INBOX, 1, &min, &n);
    if (!rc) rc = store_inbox_bounds(t, first, head);
    if (rc) return rc;
    *upto = n ? min : 0;
    *forced = *head > INBOX_KEEP_MAX && *upto < *head - INBOX_KEEP_MAX;
    if (*forced) *upto = *head - INBOX_KEEP_MAX;
    return 0;
}

int reaper_trim_inbox(server *srv) {
    reader_id dead[64];
    uint64_t first = 0, head = 0, upto = 0;
    int forced = 0;
    store_txn *t;
    /* Look first: most of the time there is nothing to do. */
    int rc = store_begin(srv->st, 0, &t);
    if (rc) return rc;
    int ndead = reader_find_dead(t, READER_LISTEN, dead, 64);
    rc = ndead < 0 ? ndead : inbox_upto(t, &upto, &first, &head, &forced);
    store_abort(t);
    if (rc) return rc;
    if (ndead == 0 && (upto < first || first > head)) return 0;

    rc = store_begin(srv->st, 1, &t);
    if (rc) return rc;
    ndead = reader_find_dead(t, READER_LISTEN, dead, 64);
    rc = ndead < 0 ? ndead : 0;
    for (int i = 0; !rc && i < ndead; i++) rc = reader_del(t, &dead[i]);
    if (!rc) rc = inbox_upto(t, &upto, &first, &head, &forced);
    if (!rc && upto >= first && first <= head) rc = store_inbox_trim(t, upto);
    if (!rc) rc = store_commit(t);
    else store_abort(t);
    if (rc) return rc;
    for (int i = 0; i < ndead; i++) {
        char name[64];
        log_info("removed the inbox reader %s (its process is gone)",
                 reader_name(&dead[i], name, sizeof name));
    }
    if (forced)
        log_warn("inbox over %llu records: trimmed up to %llu; a lagging inbox reader lost records",
                 INBOX_KEEP_MAX, (unsigned long long)upto);
    return ndead;
}

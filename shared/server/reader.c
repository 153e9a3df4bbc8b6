/* reader: readers of the packet log and the inbox (see reader.h). */
#include "server/reader.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

/* ---- identities ------------------------------------------------------------------
 * Their names in the store's readers table (part of the store's format):
 * "front-<pid>", "in:dispatcher", "in:listen-<pid>", "bridge", "in:bridge",
 * "in:admin";
 * "in:" marks the inbox. */

#define NAME_FRONT "front-"
#define NAME_DISPATCHER "in:dispatcher"
#define NAME_LISTEN "in:listen-"
#define NAME_BRIDGE "bridge"
#define NAME_BRIDGE_INBOX "in:bridge"
#define NAME_ADMIN "in:admin"

/* stated's own readers: one per store, not tied to a pid. */
static int per_store(reader_kind kind) {
    return kind == READER_DISPATCHER || kind == READER_BRIDGE || kind == READER_BRIDGE_INBOX ||
           kind == READER_ADMIN;
}

reader_id reader_self(reader_kind kind) {
    return (reader_id){kind, per_store(kind) ? 0 : (int)getpid()};
}

reader_log reader_log_of(reader_kind kind) {
    return kind == READER_FRONT || kind == READER_BRIDGE ? READER_LOG_PACKETS : READER_LOG_INBOX;
}

int reader_alive(const reader_id *id) {
    if (id->pid <= 0 || id->pid == getpid()) return 1;
    return util_pid_alive((int)id->pid);
}

const char *reader_name(const reader_id *id, char *out, size_t n) {
    switch (id->kind) {
    case READER_FRONT: snprintf(out, n, NAME_FRONT "%d", id->pid); break;
    case READER_DISPATCHER: snprintf(out, n, NAME_DISPATCHER); break;
    case READER_LISTEN: snprintf(out, n, NAME_LISTEN "%d", id->pid); break;
    case READER_BRIDGE: snprintf(out, n, NAME_BRIDGE); break;
    case READER_BRIDGE_INBOX: snprintf(out, n, NAME_BRIDGE_INBOX); break;
    case READER_ADMIN: snprintf(out, n, NAME_ADMIN); break;
    default: snprintf(out, n, "?"); break;
    }
    return out;
}

/* 0 and *out when name is one of ours, else -EINVAL. */
static int parse_name(const char *name, reader_id *out) {
    long pid;
    static const struct { const char *name; reader_kind kind; } fixed[] = {
        {NAME_DISPATCHER, READER_DISPATCHER}, {NAME_BRIDGE, READER_BRIDGE},
        {NAME_BRIDGE_INBOX, READER_BRIDGE_INBOX}, {NAME_ADMIN, READER_ADMIN}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i].name)) {
            *out = (reader_id){fixed[i].kind, 0};
            return 0;
        }
    if (!strncmp(name, NAME_FRONT, strlen(NAME_FRONT)) &&
        util_parse_long(name + strlen(NAME_FRONT), 1, INT_MAX, &pid) == 0) {
        *out = (reader_id){READER_FRONT, (int)pid};
        return 0;
    }
    if (!strncmp(name, NAME_LISTEN, strlen(NAME_LISTEN)) &&
        util_parse_long(name + strlen(NAME_LISTEN), 1, INT_MAX, &pid) == 0) {
        *out = (reader_id){READER_LISTEN, (int)pid};
        return 0;
    }
    return -EINVAL;
}

int reader_put(store_txn *t, const reader_id *id, uint64_t seq) {
    char name[64];
    return store_reader_put(t, reader_name(id, name, sizeof name), seq);
}

int reader_get(store_txn *t, const reader_id *id, uint64_t *seq) {
    char name[64];
    return store_reader_get(t, reader_name(id, name, sizeof name), seq);
}

int reader_del(store_txn *t, const reader_id *id) {
    char name[64];
    int rc = store_reader_del(t, reader_name(id, name, sizeof name));
    return rc == STORE_NOTFOUND ? 0 : rc;
}

typedef struct each_ctx {
    int (*cb)(void *arg, const reader_id *id, uint64_t seq);
    void *arg;
} each_ctx;

static int each_cb(void *arg, const char *name, uint64_t seq) {
    each_ctx *c = arg;
    reader_id id;
    if (parse_name(name, &id)) return 0;
    return c->cb(c->arg, &id, seq);
}

int reader_each(store_txn *t, int (*cb)(void *arg, const reader_id *id, uint64_t seq), void *arg) {
    each_ctx c = {cb, arg};
    return store_reader_each(t, each_cb, &c);
}

typedef struct min_ctx {
    reader_log log;
    int live_only;
    uint64_t min;
    size_t count;
} min_ctx;

static int min_cb(void *arg, const reader_id *id, uint64_t seq) {
    min_ctx *c = arg;
    if (reader_log_of(id->kind) != c->log || (c->live_only && !reader_alive(id))) return 0;
    c->count++;
    if (seq < c->min) c->min = seq;
    return 0;
}

int reader_min(store_txn *t, reader_log log, int live_only, uint64_t *min, size_t *count) {
    min_ctx c = {log, live_only, UINT64_MAX, 0};
    int rc = reader_each(t, min_cb, &c);
    *min = c.min;
    if (count) *count = c.count;
    return rc;
}

typedef struct dead_ctx {
    reader_kind kind;
    reader_id *out;
    size_t max, n;
} dead_ctx;

static int dead_cb(void *arg, const reader_id *id, uint64_t seq) {
    (void)seq;
    dead_ctx *c = arg;
    if (id->kind != c->kind || reader_alive(id)) return 0;
    if (c->n < c->max) c->out[c->n++] = *id;
    return 0;
}

int reader_find_dead(store_txn *t, reader_kind kind, reader_id *out, size_t max) {
    dead_ctx c = {kind, out, max, 0};
    int rc = reader_each(t, dead_cb, &c);
    return rc < 0 ? rc : (int)c.n;
}

/* ---- matching -------------------------------------------------------------------- */

/* What one room's intervals say for a socket: its current membership (the
 * open interval's join), whether ended intervals are kept, and whether seq
 * falls in one of them. */
typedef struct room_state {
    uint64_t seq;        /* the record to test (0: none) */
    uint64_t open_join;  /* UINT64_MAX: not a member now */
    int ended;           /* ended intervals are kept */
    int hit;             /* seq is in an interval */
} room_state;

static int room_state_cb(void *arg, uint64_t join, uint64_t leave) {
    room_state *st = arg;
    if (leave == STORE_SEQ_OPEN) st->open_join = join;
    else st->ended = 1;
    if (join < st->seq && st->seq <= leave) st->hit = 1;
    return 0;
}

static int room_state_of(store_txn *t, const store_socket *s, const logrec_room *room, uint64_t seq,
                         room_state *st) {
    *st = (room_state){seq, UINT64_MAX, 0, 0};
    return store_room_intervals(t, s->nsp, room->name, room->len, s->id, room_state_cb, st);
}

static int same_nsp(const logrec *r, const store_socket *s) {
    return r->kind == LOGREC_BROADCAST && r->nsp_len == strlen(s->nsp) &&
           memcmp(r->nsp, s->nsp, r->nsp_len) == 0;
}

static uint64_t live_from(const store_socket *s) {
    return s->attach_seq > s->created_seq ? s->attach_seq : s->created_seq;
}

int reader_window(store_txn *t, const logrec *r, const store_socket *s, uint64_t *lo, uint64_t *hi) {
    if (!same_nsp(r, s)) return 0;
    uint64_t from = live_from(s), until = UINT64_MAX;
    room_state st;
    logrec_room room;
    size_t pos = 0;
    if (r->nrooms) { /* a member of any room of the union, from its earliest join */
        uint64_t first = UINT64_MAX;
        int ended = 0;
        while (logrec_room_next(r, 0, &pos, &room)) {
            int rc = room_state_of(t, s, &room, 0, &st);
            if (rc) return rc;
            if (st.open_join < first) first = st.open_join;
            ended |= st.ended;
        }
        if (ended) return READER_PER_RECORD;
        if (first == UINT64_MAX) return 0;
        if (first > from) from = first;
    }
    pos = 0;
    while (logrec_room_next(r, 1, &pos, &room)) { /* until it joined an except room */
        int rc = room_state_of(t, s, &room, 0, &st);
        if (rc) return rc;
        if (st.ended) return READER_PER_RECORD;
        if (st.open_join < until) until = st.open_join;
    }
    if (from >= until) return 0;
    *lo = from;
    *hi = until;
    return 1;
}

/* Whether a broadcast record with sequence seq reaches socket s, which
 * exists from log position `from` on: membership as of seq, exactly. */
static int match_from(store_txn *t, const logrec *r, uint64_t seq, const store_socket *s,
                      uint64_t from) {
    if (!same_nsp(r, s) || seq <= from) return 0;
    room_state st;
    logrec_room room;
    size_t pos = 0;
    int in = r->nrooms == 0;
    while (!in && logrec_room_next(r, 0, &pos, &room)) {
        int rc = room_state_of(t, s, &room, seq, &st);
        if (rc) return rc;
        in = st.hit;
    }
    pos = 0;
    while (in && logrec_room_next(r, 1, &pos, &room)) {
        int rc = room_state_of(t, s, &room, seq, &st);
        if (rc) return rc;
        in = !st.hit;
    }
    return in;
}

int reader_match(store_txn *t, const logrec *r, uint64_t seq, const store_socket *s) {
    if (r->kind == LOGREC_TO_SESSION) return strcmp(r->target, s->sid) == 0;
    return match_from(t, r, seq, s, live_from(s));
}

typedef struct members_ctx {
    int (*cb)(void *arg, const char *id);
    void *arg;
} members_ctx;

static int member_cb(void *arg, const char *id, uint64_t join_seq) {
    (void)join_seq;
    members_ctx *m = arg;
    return m->cb(m->arg, id);
}

int reader_members(store_txn *t, const logrec *r, int (*cb)(void *arg, const char *id), void *arg) {
    char nsp[sizeof ((store_socket *)0)->nsp];
    if (r->kind != LOGREC_BROADCAST || r->nsp_len >= sizeof nsp) return 0;
    memcpy(nsp, r->nsp, r->nsp_len);
    nsp[r->nsp_len] = 0;
    members_ctx m = {cb, arg};
    logrec_room room;
    size_t pos = 0;
    while (logrec_room_next(r, 0, &pos, &room)) {
        int rc = store_room_members(t, nsp, room.name, room.len, 1, member_cb, &m);
        if (rc && rc != STORE_NOTFOUND) return rc;
    }
    return 0;
}

/* ---- recovery ------------------------------------------------------------------- */

typedef struct missed_ctx {
    store_txn *t;
    const store_socket *s;
    int (*cb)(void *arg, uint64_t seq, const logrec *r);
    void *arg;
    int err;
} missed_ctx;

static int missed_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    missed_ctx *m = arg;
    logrec r;
    if (logrec_parse(data, len, &r) || !(r.flags & LOGREC_F_OFFSET)) return 0;
    int hit = match_from(m->t, &r, seq, m->s, m->s->created_seq);
    if (hit < 0) {
        m->err = hit;
        return 1;
    }
    return hit ? m->cb(m->arg, seq, &r) : 0;
}

int reader_missed(store_txn *t, const store_socket *s, uint64_t after, uint64_t until,
                  int (*cb)(void *arg, uint64_t seq, const logrec *r), void *arg) {
    missed_ctx m = {t, s, cb, arg, 0};
    int rc = store_log_scan(t, after, until, missed_cb, &m);
    return m.err ? m.err : rc;
}

/* ---- one session ---------------------------------------------------------------- */

#define MAX_SOCKS 64 /* namespaces of one session (socketio.h) */

typedef struct collect {
    store_txn *t;
    const char *sid;
    store_socket socks[MAX_SOCKS];
    size_t nsocks;
    reader_frame_cb cb;
    void *arg;
    size_t limit, bytes;
    uint64_t upto;   /* last seq looked at */
    size_t records;  /* records handed out */
    int err;
} collect;

static int collect_sock_cb(void *arg, const store_socket *s) {
    collect *c = arg;
    if (c->nsocks < MAX_SOCKS) {
        c->socks[c->nsocks] = *s;
        c->socks[c->nsocks].data = NULL;
        c->socks[c->nsocks].data_len = 0;
        c->nsocks++;
    }
    return 0;
}

static int collect_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    collect *c = arg;
    logrec r;
    if (logrec_parse(data, len, &r) == 0) {
        int match = r.kind == LOGREC_TO_SESSION && !strcmp(r.target, c->sid);
        for (size_t i = 0; r.kind == LOGREC_BROADCAST && !match && i < c->nsocks; i++) {
            match = reader_match(c->t, &r, seq, &c->socks[i]);
            if (match < 0) { c->err = match; return 1; }
        }
        if (match) {
            if (c->records && c->bytes + len > c->limit) return 1; /* the rest next time */
            size_t pos = 0;
            logrec_frame f;
            while (logrec_frame_next(&r, &pos, &f))
                if ((c->err = c->cb(c->arg, &f))) return 1;
            c->records++;
            c->bytes += len;
        }
    }
    c->upto = seq;
    return 0;
}

int reader_collect(store_txn *t, const char *sid, uint64_t after, uint64_t until, size_t limit,
                   reader_frame_cb cb, void *arg, uint64_t *upto) {
    collect c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.sid = sid;
    c.cb = cb;
    c.arg = arg;
    c.limit = limit;
    c.upto = after;
    int rc = store_session_sockets(t, sid, collect_sock_cb, &c);
    if (!rc) rc = store_log_scan(t, after, until, collect_cb, &c);
    if (rc > 0) rc = 0; /* collect_cb stopped the walk: the limit, or c.err */
    if (!rc) rc = c.err;
    *upto = c.upto;
    return rc;
}

/* ---- flow control ----------------------------------------------------------------- */

static int front_min_cb(void *arg, const reader_id *id, uint64_t seq) {
    uint64_t *min = arg;
    if (id->kind == READER_FRONT && seq < *min && reader_alive(id)) *min = seq;
    return 0;
}

int reader_backlog_wait(server *s, uint64_t max_records, int64_t deadline_ms) {
    for (;;) {
        uint64_t gen = s->sub ? notify_sub_gen(s->sub) : 0, head = 0, min = UINT64_MAX;
        store_txn *t;
        if (store_begin(s->st, 0, &t)) return 0;
        store_log_bounds(t, NULL, &head);
        reader_each(t, front_min_cb, &min);
        store_abort(t);
        if (min == UINT64_MAX || head <= min || head - min <= max_records) return 0;
        int64_t now = util_now_ms();
        if (now >= deadline_ms) return 1;
        /* fronts save their cursor every ~100 ms without a wake-up: look again soon */
        if (s->sub) notify_sub_wait(s->sub, gen, now + 10);
        else usleep(10000);
    }
}

/* Unit tests for server/reader.c: which records reach which sockets, and
 * the rooms they are matched against (server/rooms.c).
 *
 * Covers: matching by rooms, except rooms and sequence; rooms_sockets;
 * reader_window (lo, hi] for late joins of union rooms and joins of except
 * rooms; joins at exact log positions (and the socket's creation); leaves
 * as they work today (a record of a room no longer reaches a socket that
 * left it, even one written before the leave: README "Known differences");
 * other namespaces; reader_collect for one session with a byte limit, an
 * upper bound and a callback that stops; reader identities: put/get/del,
 * reader_each, reader_min (with and without live_only), reader_find_dead
 * (a child that has exited, never this process) and reader_name. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/reader.h"
#include "server/rooms.h"
#include "unit.h"
#include "fixture.h"

static logrec rec_for(store_txn *t, const bcast *to, uint64_t *seq) {
    logrec_frame f = {0, (const uint8_t *)"2[\"e\"]", 6};
    ASSERT_EQ_INT(logrec_append_broadcast(t, to, &f, 1, seq), 0);
    grabbed got = {0};
    ASSERT_EQ_INT(store_log_scan(t, *seq - 1, *seq, grab, &got), 0);
    logrec r;
    ASSERT_EQ_INT(logrec_parse(got.p, got.l, &r), 0);
    return r;
}

TEST(match_rooms_union_except_and_sequence) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID2, "/", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(rooms_join(t, &a, "r1"), 0);
    ASSERT_EQ_INT(rooms_join(t, &a, "r2"), 0);
    ASSERT_EQ_INT(rooms_join(t, &b, "r2"), 0);
    ASSERT_EQ_INT(rooms_join(t, &b, SK2), 0);
    uint64_t seq;
    const char *r12[] = {"r1", "r2"}, *exb[] = {SK2}, *r3[] = {"r3"};
    bcast all = {"/", NULL, 0, NULL, 0, 0}, u = {"/", r12, 2, NULL, 0, 0}, ex = {"/", r12, 2, exb, 1, 0},
          other = {"/chat", NULL, 0, NULL, 0, 0}, none = {"/", r3, 1, NULL, 0, 0};
    logrec r = rec_for(t, &all, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &b), 1);
    r = rec_for(t, &u, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &b), 1);
    r = rec_for(t, &ex, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &b), 0);
    r = rec_for(t, &other, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 0);
    r = rec_for(t, &none, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 0);
    /* a record written before a join does not reach the late joiner */
    uint64_t before_seq;
    logrec early = rec_for(t, &none, &before_seq);
    ASSERT_EQ_INT(rooms_join(t, &a, "r3"), 0);
    ASSERT_EQ_INT(reader_match(t, &early, before_seq, &a), 0);
    r = rec_for(t, &none, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 1);
    /* nor a socket created after it */
    store_socket late = mksock(SK3, SID2, "/", seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &late), 0);
    /* a session record goes to its session only */
    logrec_frame f = {0, (const uint8_t *)"0{}", 3};
    ASSERT_EQ_INT(logrec_append_session(t, SID1, &f, 1, &seq), 0);
    grabbed got = {0};
    ASSERT_EQ_INT(store_log_scan(t, seq - 1, seq, grab, &got), 0);
    ASSERT_EQ_INT(logrec_parse(got.p, got.l, &r), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &b), 0);
    store_abort(t);
    drop(s);
}

static int collect_ids(void *arg, const store_socket *so) {
    char *out = arg;
    strcat(out, so->id);
    strcat(out, ";");
    return 0;
}

TEST(rooms_sockets_is_a_deduplicated_union_minus_except) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID2, "/", 0), c = mksock(SK3, SID2, "/x", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(store_socket_put(t, &c), 0);
    ASSERT_EQ_INT(rooms_join(t, &a, "r1"), 0);
    ASSERT_EQ_INT(rooms_join(t, &a, "r2"), 0);
    ASSERT_EQ_INT(rooms_join(t, &b, "r2"), 0);
    const char *r12[] = {"r1", "r2"}, *exa[] = {"r1"};
    char out[256] = "";
    bcast u = {"/", r12, 2, NULL, 0, 0};
    ASSERT_EQ_INT(rooms_sockets(t, &u, 0, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK1 ";" SK2 ";");
    out[0] = 0;
    bcast e = {"/", r12, 2, exa, 1, 0};
    ASSERT_EQ_INT(rooms_sockets(t, &e, 0, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK2 ";");
    out[0] = 0;
    bcast all = {"/", NULL, 0, NULL, 0, 0};
    ASSERT_EQ_INT(rooms_sockets(t, &all, 0, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK1 ";" SK2 ";");
    store_abort(t);
    drop(s);
}

/* ---- windows and exact positions ---------------------------------------- */

/* Appends n records for a session nobody here has: moves the log head. */
static void filler(store_txn *t, int n) {
    logrec_frame f = {0, (const uint8_t *)"x", 1};
    for (int i = 0; i < n; i++) ASSERT_EQ_INT(logrec_append_session(t, "ZZZZZZZZZZZZZZZZZZZZ", &f, 1, NULL), 0);
}

static uint64_t head_of(store_txn *t) {
    uint64_t h = 0;
    ASSERT_EQ_INT(store_log_bounds(t, NULL, &h), 0);
    return h;
}

TEST(window_of_a_late_union_join_and_an_except_join) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    filler(t, 3);
    store_socket a = mksock(SK1, SID1, "/", head_of(t)); /* created at 3 */
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    filler(t, 2);
    ASSERT_EQ_INT(rooms_join(t, &a, "u"), 0); /* joined u at 5 */
    const char *u[] = {"u"}, *x[] = {"x"}, *ux[] = {"u", "other"};
    bcast all = {"/", NULL, 0, NULL, 0, 0}, to_u = {"/", u, 1, NULL, 0, 0}, all_but_x = {"/", NULL, 0, x, 1, 0},
          u_but_x = {"/", ux, 2, x, 1, 0};
    uint64_t seq, lo = 0, hi = 0;
    logrec r = rec_for(t, &to_u, &seq);
    ASSERT_EQ_INT(seq, 6);
    ASSERT_EQ_INT(reader_window(t, &r, &a, &lo, &hi), 1);
    ASSERT_EQ_INT(lo, 5);
    ASSERT_TRUE(hi == UINT64_MAX);
    r = rec_for(t, &all, &seq);
    ASSERT_EQ_INT(reader_window(t, &r, &a, &lo, &hi), 1);
    ASSERT_EQ_INT(lo, 3);
    ASSERT_TRUE(hi == UINT64_MAX);
    filler(t, 1);
    ASSERT_EQ_INT(head_of(t), 8);
    ASSERT_EQ_INT(rooms_join(t, &a, "x"), 0); /* joined the except room at 8 */

    r = rec_for(t, &all_but_x, &seq);
    ASSERT_EQ_INT(seq, 9);
    ASSERT_EQ_INT(reader_window(t, &r, &a, &lo, &hi), 1);
    ASSERT_EQ_INT(lo, 3);
    ASSERT_EQ_INT(hi, 8);
    /* (lo, hi]: records after the except join are not delivered */
    static const struct {
        uint64_t seq;
        int match;
    } at[] = {{3, 0}, {4, 1}, {7, 1}, {8, 1}, {9, 0}, {100, 0}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        UNIT_CTX("all but x, seq %llu", (unsigned long long)at[i].seq);
        ASSERT_EQ_INT(reader_match(t, &r, at[i].seq, &a), at[i].match);
    }
    r = rec_for(t, &u_but_x, &seq);
    ASSERT_EQ_INT(reader_window(t, &r, &a, &lo, &hi), 1);
    ASSERT_EQ_INT(lo, 5);
    ASSERT_EQ_INT(hi, 8);
    UNIT_CTX("u but x");
    ASSERT_EQ_INT(reader_match(t, &r, seq, &a), 0);
    ASSERT_EQ_INT(reader_match(t, &r, 5, &a), 0);
    ASSERT_EQ_INT(reader_match(t, &r, 6, &a), 1);

    /* a socket that joined the except room before the union room: never */
    store_socket b = mksock(SK2, SID2, "/", head_of(t));
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(rooms_join(t, &b, "x"), 0);
    filler(t, 1);
    ASSERT_EQ_INT(rooms_join(t, &b, "u"), 0);
    r = rec_for(t, &u_but_x, &seq);
    UNIT_CTX("b");
    ASSERT_EQ_INT(reader_window(t, &r, &b, &lo, &hi), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &b), 0);
    /* a socket in none of the union's rooms: never */
    store_socket c = mksock(SK3, SID2, "/", 0);
    ASSERT_EQ_INT(store_socket_put(t, &c), 0);
    r = rec_for(t, &to_u, &seq);
    ASSERT_EQ_INT(reader_window(t, &r, &c, &lo, &hi), 0);
    /* a record for a session has no window */
    logrec_frame f = {0, (const uint8_t *)"0{}", 3};
    ASSERT_EQ_INT(logrec_append_session(t, SID1, &f, 1, &seq), 0);
    grabbed g = {0};
    ASSERT_EQ_INT(store_log_scan(t, seq - 1, seq, grab, &g), 0);
    ASSERT_EQ_INT(logrec_parse(g.p, g.l, &r), 0);
    ASSERT_EQ_INT(reader_window(t, &r, &a, &lo, &hi), 0);
    store_abort(t);
    drop(s);
}

TEST(joins_and_creation_are_exact_positions) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    filler(t, 2);
    const char *j[] = {"j"};
    bcast to_j = {"/", j, 1, NULL, 0, 0}, all = {"/", NULL, 0, NULL, 0, 0};
    uint64_t seq_all_before, seq_before, seq_after;
    logrec all_before = rec_for(t, &all, &seq_all_before); /* 3 */
    store_socket a = mksock(SK1, SID1, "/", head_of(t));  /* created at 3 */
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    logrec before = rec_for(t, &to_j, &seq_before); /* 4: appended just before the join */
    ASSERT_EQ_INT(rooms_join(t, &a, "j"), 0);
    uint64_t js = 0;
    ASSERT_EQ_INT(store_room_has(t, "/", "j", 1, SK1, &js), 0);
    ASSERT_EQ_INT(js, seq_before);
    logrec after = rec_for(t, &to_j, &seq_after); /* 5: just after */
    ASSERT_EQ_INT(seq_after, seq_before + 1);
    ASSERT_EQ_INT(reader_match(t, &before, seq_before, &a), 0);
    ASSERT_EQ_INT(reader_match(t, &after, seq_after, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &all_before, seq_all_before, &a), 0);
    logrec all_after = rec_for(t, &all, &seq_after);
    ASSERT_EQ_INT(reader_match(t, &all_after, seq_after, &a), 1);
    /* joining again keeps the first join */
    filler(t, 3);
    ASSERT_EQ_INT(rooms_join(t, &a, "j"), 0);
    ASSERT_EQ_INT(store_room_has(t, "/", "j", 1, SK1, &js), 0);
    ASSERT_EQ_INT(js, seq_before);
    ASSERT_EQ_INT(reader_match(t, &after, seq_before + 1, &a), 1);
    store_abort(t);
    drop(s);
}

TEST(leaves_apply_to_records_read_after_them) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID2, "/", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(rooms_join(t, &a, "L"), 0);
    ASSERT_EQ_INT(rooms_join(t, &b, "L"), 0);
    const char *l[] = {"L"};
    bcast to_l = {"/", l, 1, NULL, 0, 0}, but_l = {"/", NULL, 0, l, 1, 0};
    uint64_t s1, s2, s3, sx;
    logrec r1 = rec_for(t, &to_l, &s1);
    logrec rx = rec_for(t, &but_l, &sx);
    ASSERT_EQ_INT(reader_match(t, &r1, s1, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &rx, sx, &a), 0);
    ASSERT_EQ_INT(rooms_leave(t, &a, "L"), 0);
    /* written before the leave, read after it: still delivered (membership
     * as of the record), and so is b's copy */
    ASSERT_EQ_INT(reader_match(t, &r1, s1, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r1, s1, &b), 1);
    /* the broadcast to all but L written while a was in L still excludes it */
    ASSERT_EQ_INT(reader_match(t, &rx, sx, &a), 0);
    logrec r2 = rec_for(t, &to_l, &s2);
    ASSERT_EQ_INT(reader_match(t, &r2, s2, &a), 0);
    logrec rx2 = rec_for(t, &but_l, &sx);
    ASSERT_EQ_INT(reader_match(t, &rx2, sx, &a), 1); /* out of L now */
    ASSERT_EQ_INT(reader_match(t, &rx2, sx, &b), 0);
    ASSERT_EQ_INT(rooms_leave(t, &a, "L"), 0); /* not a member: not an error */
    ASSERT_EQ_INT(rooms_leave(t, &a, "never"), 0);
    /* joining again starts at the new join; the gap stays a gap */
    ASSERT_EQ_INT(rooms_join(t, &a, "L"), 0);
    ASSERT_EQ_INT(reader_match(t, &r1, s1, &a), 1);
    ASSERT_EQ_INT(reader_match(t, &r2, s2, &a), 0);
    logrec r3 = rec_for(t, &to_l, &s3);
    ASSERT_EQ_INT(reader_match(t, &r3, s3, &a), 1);
    /* two intervals are not one window: readers ask record by record */
    uint64_t lo, hi;
    ASSERT_EQ_INT(reader_window(t, &r3, &a, &lo, &hi), READER_PER_RECORD);
    ASSERT_EQ_INT(reader_window(t, &r3, &b, &lo, &hi), 1);
    /* once the log is past the leave, the ended interval is dropped and a's
     * window is one again */
    size_t n = 0;
    ASSERT_EQ_INT(store_room_gc(t, s1, &n), 0);
    ASSERT_EQ_INT(n, 0); /* the leave came after s1 */
    ASSERT_EQ_INT(store_room_gc(t, s2, &n), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(reader_window(t, &r3, &a, &lo, &hi), 1);
    ASSERT_EQ_INT(lo, sx); /* the join after rx2 */
    ASSERT_EQ_INT(reader_match(t, &r3, s3, &a), 1);
    /* a leave with nothing written since the join leaves no interval */
    ASSERT_EQ_INT(rooms_join(t, &b, "M"), 0);
    ASSERT_EQ_INT(rooms_leave(t, &b, "M"), 0);
    ASSERT_EQ_INT(store_room_gc(t, UINT64_MAX - 1, &n), 0);
    ASSERT_EQ_INT(n, 0);
    store_abort(t);
    drop(s);
}

TEST(records_of_another_namespace_never_match) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket root = mksock(SK1, SID1, "/", 0), chat = mksock(SK2, SID1, "/chat", 0),
                 cha = mksock(SK3, SID2, "/cha", 0);
    ASSERT_EQ_INT(store_socket_put(t, &root), 0);
    ASSERT_EQ_INT(store_socket_put(t, &chat), 0);
    ASSERT_EQ_INT(store_socket_put(t, &cha), 0);
    ASSERT_EQ_INT(rooms_join(t, &root, "r"), 0);
    ASSERT_EQ_INT(rooms_join(t, &chat, "r"), 0);
    ASSERT_EQ_INT(rooms_join(t, &cha, "r"), 0);
    const char *r_[] = {"r"};
    bcast chat_r = {"/chat", r_, 1, NULL, 0, 0}, chat_all = {"/chat", NULL, 0, NULL, 0, 0},
          root_all = {"/", NULL, 0, NULL, 0, 0};
    uint64_t seq, lo, hi;
    logrec r = rec_for(t, &chat_r, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &root), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &cha), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &chat), 1);
    ASSERT_EQ_INT(reader_window(t, &r, &root, &lo, &hi), 0);
    r = rec_for(t, &chat_all, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &root), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &cha), 0);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &chat), 1);
    r = rec_for(t, &root_all, &seq);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &root), 1);
    ASSERT_EQ_INT(reader_match(t, &r, seq, &chat), 0);
    store_abort(t);
    drop(s);
}

/* ---- reader_collect ------------------------------------------------------- */

typedef struct texts {
    char s[512];
    int calls, stop_at; /* stop_at > 0: return 7 from that call */
} texts;

static int texts_cb(void *arg, const logrec_frame *f) {
    texts *x = arg;
    x->calls++;
    if (x->stop_at && x->calls == x->stop_at) return 7;
    size_t l = strlen(x->s);
    snprintf(x->s + l, sizeof x->s - l, "%s%s%.*s", l ? "," : "", f->binary ? "bin:" : "",
             (int)f->len, (const char *)f->data);
    return 0;
}

static size_t rec_len(store_txn *t, uint64_t seq) {
    grabbed g = {0};
    ASSERT_EQ_INT(store_log_scan(t, seq - 1, seq, grab, &g), 0);
    return g.l;
}

TEST(collect_for_a_session_with_a_byte_limit) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    logrec_frame a1 = {0, (const uint8_t *)"a1", 2}, a2 = {0, (const uint8_t *)"a2", 2},
                 bb = {0, (const uint8_t *)"bb", 2}, a3[2] = {{0, (const uint8_t *)"a3", 2}, {1, (const uint8_t *)"B", 1}};
    bcast all = {"/", NULL, 0, NULL, 0, 0};
    uint64_t s1, s2, s3, s4, s5;
    ASSERT_EQ_INT(logrec_append_session(t, SID1, &a1, 1, &s1), 0);
    ASSERT_EQ_INT(logrec_append_session(t, SID2, &bb, 1, &s2), 0);
    ASSERT_EQ_INT(logrec_append_session(t, SID1, &a2, 1, &s3), 0);
    ASSERT_EQ_INT(logrec_append_broadcast(t, &all, a3, 2, &s4), 0);
    ASSERT_EQ_INT(logrec_append_session(t, SID2, &bb, 1, &s5), 0);
    ASSERT_EQ_INT(s5, 5);
    size_t L = rec_len(t, s1), B = rec_len(t, s4);
    ASSERT_EQ_INT(rec_len(t, s3), L);
    ASSERT_TRUE(B > L);

    /* limit L: one session record per call; the broadcast alone is over it
     * but is handed out (at least one record) */
    static const struct {
        size_t limit_extra; /* limit = L + this */
        uint64_t after, want_upto;
        const char *want;
    } steps[] = {
        {0, 0, 2, "a1"},        /* stops before s3: upto is s2, looked at */
        {0, 2, 3, "a2"},        /* stops before s4 */
        {0, 3, 5, "a3,bin:B"},  /* over the limit but the first; s5 not ours */
        {0, 5, 5, ""},          /* nothing more */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        UNIT_CTX("step %zu", i);
        texts x = {"", 0, 0};
        uint64_t upto = 999;
        ASSERT_EQ_INT(reader_collect(t, SID1, steps[i].after, UINT64_MAX, L + steps[i].limit_extra,
                                     texts_cb, &x, &upto), 0);
        ASSERT_EQ_STR(x.s, steps[i].want);
        ASSERT_EQ_INT(upto, steps[i].want_upto);
    }
    UNIT_CTX("limit 0");
    texts x = {"", 0, 0};
    uint64_t upto = 0;
    ASSERT_EQ_INT(reader_collect(t, SID1, 0, UINT64_MAX, 0, texts_cb, &x, &upto), 0);
    ASSERT_EQ_STR(x.s, "a1");
    ASSERT_EQ_INT(upto, 2);
    UNIT_CTX("limit 2L: two session records");
    x = (texts){"", 0, 0};
    ASSERT_EQ_INT(reader_collect(t, SID1, 0, UINT64_MAX, 2 * L, texts_cb, &x, &upto), 0);
    ASSERT_EQ_STR(x.s, "a1,a2");
    ASSERT_EQ_INT(upto, 3);
    UNIT_CTX("no limit");
    x = (texts){"", 0, 0};
    ASSERT_EQ_INT(reader_collect(t, SID1, 0, UINT64_MAX, SIZE_MAX, texts_cb, &x, &upto), 0);
    ASSERT_EQ_STR(x.s, "a1,a2,a3,bin:B");
    ASSERT_EQ_INT(upto, 5);
    UNIT_CTX("until");
    x = (texts){"", 0, 0};
    ASSERT_EQ_INT(reader_collect(t, SID1, 0, 3, SIZE_MAX, texts_cb, &x, &upto), 0);
    ASSERT_EQ_STR(x.s, "a1,a2");
    ASSERT_EQ_INT(upto, 3);
    UNIT_CTX("the other session");
    x = (texts){"", 0, 0};
    ASSERT_EQ_INT(reader_collect(t, SID2, 0, UINT64_MAX, SIZE_MAX, texts_cb, &x, &upto), 0);
    ASSERT_EQ_STR(x.s, "bb,bb"); /* SID2 has no socket: not the broadcast */
    ASSERT_EQ_INT(upto, 5);
    UNIT_CTX("a callback that stops");
    x = (texts){"", 0, 2};
    ASSERT_EQ_INT(reader_collect(t, SID1, 0, UINT64_MAX, SIZE_MAX, texts_cb, &x, &upto), 7);
    ASSERT_EQ_STR(x.s, "a1");
    ASSERT_EQ_INT(upto, 2); /* s3, whose frame was refused, is not counted as read */
    store_abort(t);
    drop(s);
}

/* ---- identities ------------------------------------------------------------ */

/* A pid that existed and has exited (reaped). */
static int dead_pid(void) {
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) _exit(0);
    int st;
    ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
    return (int)pid;
}

TEST(reader_names) {
    char buf[64];
    reader_id f = {READER_FRONT, 123}, d = {READER_DISPATCHER, 0}, l = {READER_LISTEN, 4567},
              bad = {(reader_kind)9, 1};
    ASSERT_EQ_STR(reader_name(&f, buf, sizeof buf), "front-123");
    ASSERT_EQ_STR(reader_name(&d, buf, sizeof buf), "in:dispatcher");
    ASSERT_EQ_STR(reader_name(&l, buf, sizeof buf), "in:listen-4567");
    ASSERT_EQ_STR(reader_name(&bad, buf, sizeof buf), "?");
    reader_id me = reader_self(READER_FRONT);
    char want[64];
    snprintf(want, sizeof want, "front-%d", (int)getpid());
    ASSERT_EQ_STR(reader_name(&me, buf, sizeof buf), want);
    me = reader_self(READER_LISTEN);
    snprintf(want, sizeof want, "in:listen-%d", (int)getpid());
    ASSERT_EQ_STR(reader_name(&me, buf, sizeof buf), want);
    me = reader_self(READER_DISPATCHER);
    ASSERT_EQ_INT(me.pid, 0);
    ASSERT_EQ_STR(reader_name(&me, buf, sizeof buf), "in:dispatcher");
    ASSERT_EQ_INT(reader_log_of(READER_FRONT), READER_LOG_PACKETS);
    ASSERT_EQ_INT(reader_log_of(READER_DISPATCHER), READER_LOG_INBOX);
    ASSERT_EQ_INT(reader_log_of(READER_LISTEN), READER_LOG_INBOX);
}

TEST(reader_put_get_del_round_trip) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    static const reader_kind kinds[] = {READER_FRONT, READER_DISPATCHER, READER_LISTEN};
    for (size_t i = 0; i < 3; i++) {
        UNIT_CTX("kind %d", (int)kinds[i]);
        reader_id id = reader_self(kinds[i]);
        uint64_t seq = 77;
        ASSERT_EQ_INT(reader_get(t, &id, &seq), STORE_NOTFOUND);
        ASSERT_EQ_INT(reader_put(t, &id, 10 + i), 0);
        ASSERT_EQ_INT(reader_get(t, &id, &seq), 0);
        ASSERT_EQ_INT(seq, 10 + i);
        ASSERT_EQ_INT(reader_put(t, &id, 100 + i), 0); /* overwrites */
        ASSERT_EQ_INT(reader_get(t, &id, &seq), 0);
        ASSERT_EQ_INT(seq, 100 + i);
        /* the store's table holds it under its name */
        char name[64];
        ASSERT_EQ_INT(store_reader_get(t, reader_name(&id, name, sizeof name), &seq), 0);
        ASSERT_EQ_INT(seq, 100 + i);
    }
    for (size_t i = 0; i < 3; i++) {
        UNIT_CTX("del kind %d", (int)kinds[i]);
        reader_id id = reader_self(kinds[i]);
        uint64_t seq;
        ASSERT_EQ_INT(reader_del(t, &id), 0);
        ASSERT_EQ_INT(reader_get(t, &id, &seq), STORE_NOTFOUND);
        ASSERT_EQ_INT(reader_del(t, &id), 0); /* gone already: not an error */
    }
    /* the same kind with another pid is another reader */
    reader_id f1 = {READER_FRONT, 1001}, f2 = {READER_FRONT, 1002};
    uint64_t seq;
    ASSERT_EQ_INT(reader_put(t, &f1, 5), 0);
    ASSERT_EQ_INT(reader_get(t, &f2, &seq), STORE_NOTFOUND);
    store_abort(t);
    drop(s);
}

static int each_cb(void *arg, const reader_id *id, uint64_t seq) {
    char *out = arg, name[64];
    size_t l = strlen(out);
    snprintf(out + l, 512 - l, "%s=%llu;", reader_name(id, name, sizeof name), (unsigned long long)seq);
    return 0;
}

TEST(reader_min_per_log_and_live_only) {
    int gone = dead_pid(); /* before the store is open: the child holds nothing */
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    uint64_t min = 0;
    size_t count = 9;
    ASSERT_EQ_INT(reader_min(t, READER_LOG_PACKETS, 0, &min, &count), 0);
    ASSERT_TRUE(min == UINT64_MAX);
    ASSERT_EQ_INT(count, 0);
    ASSERT_EQ_INT(reader_min(t, READER_LOG_INBOX, 1, &min, NULL), 0);
    ASSERT_TRUE(min == UINT64_MAX);

    reader_id me_front = reader_self(READER_FRONT), dead_front = {READER_FRONT, gone},
              disp = reader_self(READER_DISPATCHER), me_listen = reader_self(READER_LISTEN),
              dead_listen = {READER_LISTEN, gone};
    ASSERT_EQ_INT(reader_put(t, &me_front, 10), 0);
    ASSERT_EQ_INT(reader_put(t, &dead_front, 5), 0);
    ASSERT_EQ_INT(reader_put(t, &disp, 7), 0);
    ASSERT_EQ_INT(reader_put(t, &me_listen, 20), 0);
    ASSERT_EQ_INT(reader_put(t, &dead_listen, 3), 0);
    ASSERT_EQ_INT(store_reader_put(t, "not-a-reader", 1), 0); /* unknown names are skipped */
    ASSERT_EQ_INT(store_reader_put(t, "front-abc", 1), 0);

    ASSERT_EQ_INT(reader_min(t, READER_LOG_PACKETS, 0, &min, &count), 0);
    ASSERT_EQ_INT(min, 5);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_INT(reader_min(t, READER_LOG_PACKETS, 1, &min, &count), 0);
    ASSERT_EQ_INT(min, 10);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_INT(reader_min(t, READER_LOG_INBOX, 0, &min, &count), 0);
    ASSERT_EQ_INT(min, 3);
    ASSERT_EQ_INT(count, 3);
    ASSERT_EQ_INT(reader_min(t, READER_LOG_INBOX, 1, &min, &count), 0);
    ASSERT_EQ_INT(min, 7); /* the dispatcher (pid 0) counts as alive */
    ASSERT_EQ_INT(count, 2);

    /* reader_each: the five, each once, under its name */
    char all[512] = "";
    ASSERT_EQ_INT(reader_each(t, each_cb, all), 0);
    char want[5][64];
    snprintf(want[0], 64, "front-%d=10;", (int)getpid());
    snprintf(want[1], 64, "front-%d=5;", gone);
    snprintf(want[2], 64, "in:dispatcher=7;");
    snprintf(want[3], 64, "in:listen-%d=20;", (int)getpid());
    snprintf(want[4], 64, "in:listen-%d=3;", gone);
    size_t total = 0;
    for (int i = 0; i < 5; i++) {
        UNIT_CTX("each: %s in %s", want[i], all);
        const char *at = strstr(all, want[i]);
        ASSERT_TRUE(at != NULL && (at == all || at[-1] == ';'));
        total += strlen(want[i]);
    }
    UNIT_CTX("each: %s", all);
    ASSERT_EQ_INT(strlen(all), total);
    ASSERT_TRUE(strstr(all, "not-a-reader") == NULL);
    ASSERT_TRUE(strstr(all, "abc") == NULL);
    store_abort(t);
    drop(s);
}

TEST(reader_find_dead_finds_exited_processes_only) {
    int gone = dead_pid(), gone2 = dead_pid(); /* before the store is open */
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    reader_id me_front = reader_self(READER_FRONT), dead_front = {READER_FRONT, gone},
              dead_front2 = {READER_FRONT, gone2}, disp = reader_self(READER_DISPATCHER),
              me_listen = reader_self(READER_LISTEN), dead_listen = {READER_LISTEN, gone},
              init_front = {READER_FRONT, 1}; /* pid 1 exists (EPERM counts as alive) */
    ASSERT_EQ_INT(reader_alive(&me_front), 1);
    ASSERT_EQ_INT(reader_alive(&disp), 1);
    ASSERT_EQ_INT(reader_alive(&dead_front), 0);
    ASSERT_EQ_INT(reader_alive(&init_front), 1);
    reader_id out[8];
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 8), 0);
    ASSERT_EQ_INT(reader_put(t, &me_front, 1), 0);
    ASSERT_EQ_INT(reader_put(t, &disp, 1), 0);
    ASSERT_EQ_INT(reader_put(t, &me_listen, 1), 0);
    ASSERT_EQ_INT(reader_put(t, &init_front, 1), 0);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 8), 0); /* never our own entry */
    ASSERT_EQ_INT(reader_find_dead(t, READER_LISTEN, out, 8), 0);
    ASSERT_EQ_INT(reader_find_dead(t, READER_DISPATCHER, out, 8), 0);
    ASSERT_EQ_INT(reader_put(t, &dead_front, 1), 0);
    ASSERT_EQ_INT(reader_put(t, &dead_listen, 1), 0);
    memset(out, 0, sizeof out);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 8), 1);
    ASSERT_EQ_INT(out[0].kind, READER_FRONT);
    ASSERT_EQ_INT(out[0].pid, gone);
    ASSERT_EQ_INT(reader_find_dead(t, READER_LISTEN, out, 8), 1);
    ASSERT_EQ_INT(out[0].kind, READER_LISTEN);
    ASSERT_EQ_INT(out[0].pid, gone);
    ASSERT_EQ_INT(reader_put(t, &dead_front2, 1), 0);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 8), 2);
    ASSERT_TRUE((out[0].pid == gone && out[1].pid == gone2) || (out[0].pid == gone2 && out[1].pid == gone));
    /* at most max */
    memset(out, 0, sizeof out);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 1), 1);
    ASSERT_TRUE(out[0].pid == gone || out[0].pid == gone2);
    ASSERT_EQ_INT(out[1].pid, 0);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 0), 0);
    /* once removed, not found again */
    ASSERT_EQ_INT(reader_del(t, &dead_front), 0);
    ASSERT_EQ_INT(reader_del(t, &dead_front2), 0);
    ASSERT_EQ_INT(reader_find_dead(t, READER_FRONT, out, 8), 0);
    store_abort(t);
    drop(s);
}

UNIT_MAIN()

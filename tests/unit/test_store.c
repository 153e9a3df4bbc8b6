/* Unit tests for store.c and adapter.c on a real LMDB environment in a
 * temporary directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/adapter.h"
#include "store/store.h"
#include "unit.h"

static store *open_tmp(void) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    ASSERT_TRUE(d != NULL);
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 64 << 20};
    ASSERT_EQ_INT(store_open(&s, d, &o), 0);
    return s;
}

static void drop(store *s) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir(s));
    store_close(s);
    if (system(cmd)) {
    }
}

static store_socket mksock(const char *id, const char *sid, const char *nsp, uint64_t seq) {
    store_socket so;
    memset(&so, 0, sizeof so);
    strcpy(so.id, id);
    strcpy(so.sid, sid);
    strcpy(so.nsp, nsp);
    so.created_seq = seq;
    so.data = "{\"auth\":{}}";
    so.data_len = strlen(so.data);
    return so;
}

#define SID1 "AAAAAAAAAAAAAAAAAAA1"
#define SID2 "AAAAAAAAAAAAAAAAAAA2"
#define SK1 "SSSSSSSSSSSSSSSSSSS1"
#define SK2 "SSSSSSSSSSSSSSSSSSS2"
#define SK3 "SSSSSSSSSSSSSSSSSSS3"

TEST(open_requires_existing_store_without_create) {
    store *s = NULL;
    store_opts o = {0};
    ASSERT_EQ_INT(store_open(&s, "/tmp/sio-unit-does-not-exist", &o), -ENOENT);
}

TEST(sessions_round_trip_and_count) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_session a = {.version = STORE_SESSION_VERSION, .eio = 4, .cursor = 7};
    strcpy(a.remote, "127.0.0.1");
    ASSERT_EQ_INT(store_session_put(t, SID1, &a), 0);
    ASSERT_EQ_INT(store_session_put(t, SID2, &a), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    store_session b;
    ASSERT_EQ_INT(store_session_get(t, SID1, &b), 0);
    ASSERT_EQ_INT((int)b.cursor, 7);
    ASSERT_EQ_STR(b.remote, "127.0.0.1");
    size_t n = 0;
    ASSERT_EQ_INT(store_session_count(t, &n), 0);
    ASSERT_EQ_INT((int)n, 2);
    ASSERT_EQ_INT(store_session_get(t, "nope", &b), STORE_NOTFOUND);
    store_abort(t);
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    ASSERT_EQ_INT(store_session_del(t, SID1), 0);
    ASSERT_EQ_INT(store_session_get(t, SID1, &b), STORE_NOTFOUND);
    store_abort(t); /* aborted: the delete is not kept */
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    ASSERT_EQ_INT(store_session_get(t, SID1, &b), 0);
    store_abort(t);
    drop(s);
}

static int count_member(void *arg, const char *id, uint64_t js) {
    (void)id, (void)js;
    (*(int *)arg)++;
    return 0;
}
static int count_room(void *arg, const char *room, size_t len, size_t members) {
    (void)room, (void)len;
    *(int *)arg += (int)members;
    return 0;
}
static int count_sock(void *arg, const store_socket *so) {
    (void)so;
    (*(int *)arg)++;
    return 0;
}

TEST(rooms_both_ways_and_socket_delete_leaves_all) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID1, "/chat", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(store_room_join(t, "/", "r1", SK1, 5), 0);
    ASSERT_EQ_INT(store_room_join(t, "/", "r1", SK1, 9), 0); /* twice keeps the first */
    ASSERT_EQ_INT(store_room_join(t, "/", "r2", SK1, 6), 0);
    ASSERT_EQ_INT(store_room_join(t, "/chat", "r1", SK2, 6), 0);
    uint64_t js = 0;
    ASSERT_EQ_INT(store_room_has(t, "/", "r1", 2, SK1, &js), 0);
    ASSERT_EQ_INT((int)js, 5);
    ASSERT_EQ_INT(store_room_has(t, "/", "r1", 2, SK2, NULL), STORE_NOTFOUND); /* other nsp */
    int n = 0;
    ASSERT_EQ_INT(store_room_each(t, "/", count_room, &n), 0);
    ASSERT_EQ_INT(n, 2);
    n = 0;
    ASSERT_EQ_INT(store_session_sockets(t, SID1, count_sock, &n), 0);
    ASSERT_EQ_INT(n, 2);
    /* deleting a socket removes every membership and the session link */
    ASSERT_EQ_INT(store_socket_del(t, SK1), 0);
    n = 0;
    ASSERT_EQ_INT(store_room_members(t, "/", "r1", 2, count_member, &n), 0);
    ASSERT_EQ_INT(n, 0);
    n = 0;
    ASSERT_EQ_INT(store_room_each(t, "/", count_room, &n), 0);
    ASSERT_EQ_INT(n, 0);
    n = 0;
    ASSERT_EQ_INT(store_session_sockets(t, SID1, count_sock, &n), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(store_room_has(t, "/chat", "r1", 2, SK2, NULL), 0);
    ASSERT_EQ_INT(store_room_leave(t, "/chat", "r1", SK2), 0);
    ASSERT_EQ_INT(store_room_has(t, "/chat", "r1", 2, SK2, NULL), STORE_NOTFOUND);
    /* limits */
    char big[STORE_ROOM_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ASSERT_EQ_INT(store_room_join(t, "/chat", big, SK2, 1), -EINVAL);
    big[STORE_ROOM_MAX] = 0;
    ASSERT_EQ_INT(store_room_join(t, "/chat", big, SK2, 1), 0);
    ASSERT_EQ_INT(store_room_join(t, "/chat", "", SK2, 1), -EINVAL);
    store_abort(t);
    drop(s);
}

typedef struct scan_ctx {
    uint64_t seqs[16];
    int n;
} scan_ctx;
static int scan_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    (void)rec, (void)len;
    scan_ctx *c = arg;
    c->seqs[c->n++] = seq;
    return 0;
}

TEST(log_append_scan_trim) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    uint64_t first = 0, head = 0, seq = 0, bytes = 0;
    ASSERT_EQ_INT(store_log_bounds(t, &first, &head), 0);
    ASSERT_EQ_INT((int)head, 0);
    ASSERT_EQ_INT((int)first, 1);
    for (int i = 0; i < 5; i++) ASSERT_EQ_INT(store_log_append(t, "abcd", 4, &seq), 0);
    ASSERT_EQ_INT((int)seq, 5);
    ASSERT_EQ_INT(store_log_size(t, &bytes), 0);
    ASSERT_EQ_INT((int)bytes, 20);
    scan_ctx c = {0};
    ASSERT_EQ_INT(store_log_scan(t, 2, 4, scan_cb, &c), 0);
    ASSERT_EQ_INT(c.n, 2);
    ASSERT_EQ_INT((int)c.seqs[0], 3);
    ASSERT_EQ_INT((int)c.seqs[1], 4);
    size_t freed = 0;
    ASSERT_EQ_INT(store_log_trim(t, 3, &freed), 0);
    ASSERT_EQ_INT((int)freed, 12);
    ASSERT_EQ_INT(store_log_bounds(t, &first, &head), 0);
    ASSERT_EQ_INT((int)first, 4);
    ASSERT_EQ_INT((int)head, 5);
    ASSERT_EQ_INT(store_log_trim(t, 100, NULL), 0);
    ASSERT_EQ_INT(store_log_bounds(t, &first, &head), 0);
    ASSERT_EQ_INT((int)first, 6); /* empty: head + 1 */
    ASSERT_EQ_INT(store_log_append(t, "x", 1, &seq), 0);
    ASSERT_EQ_INT((int)seq, 6); /* numbering continues after a trim */
    ASSERT_EQ_INT(store_commit(t), 0);
    drop(s);
}

static int grab(void *arg, uint64_t sq, const void *r, size_t l) {
    (void)sq;
    struct { const void *p; size_t l; } *g = arg;
    g->p = r;
    g->l = l;
    return 0;
}

TEST(adapter_record_round_trip_and_truncation) {
    const char *rooms[] = {"r1", "r2"}, *except[] = {"x"};
    bcast to = {"/chat", rooms, 2, except, 1};
    adapter_frame f[2] = {{0, (const uint8_t *)"2[\"a\"]", 6}, {1, (const uint8_t *)"\x01\x02", 2}};
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    uint64_t seq;
    ASSERT_EQ_INT(adapter_emit(t, &to, f, 2, &seq), 0);
    struct { const void *p; size_t l; } got = {0};
    ASSERT_EQ_INT(store_log_scan(t, 0, UINT64_MAX, grab, &got), 0);
    adapter_rec r;
    ASSERT_EQ_INT(adapter_rec_parse(got.p, got.l, &r), 0);
    ASSERT_EQ_INT(r.kind, ADAPTER_BCAST);
    ASSERT_MEM(r.nsp, r.nsp_len, "/chat", 5);
    ASSERT_EQ_INT((int)r.nrooms, 2);
    ASSERT_EQ_INT((int)r.nexcept, 1);
    size_t pos = 0;
    adapter_frame g;
    ASSERT_EQ_INT(adapter_rec_frame(&r, &pos, &g), 1);
    ASSERT_MEM(g.data, g.len, "2[\"a\"]", 6);
    ASSERT_EQ_INT(g.binary, 0);
    ASSERT_EQ_INT(adapter_rec_frame(&r, &pos, &g), 1);
    ASSERT_EQ_INT(g.binary, 1);
    ASSERT_EQ_INT(adapter_rec_frame(&r, &pos, &g), 0);
    for (size_t cut = 0; cut < got.l; cut++) {
        UNIT_CTX("cut at %zu", cut);
        ASSERT_EQ_INT(adapter_rec_parse(got.p, cut, &r), -EINVAL);
    }
    store_abort(t);
    drop(s);
}

static adapter_rec rec_for(store_txn *t, const bcast *to, uint64_t *seq) {
    adapter_frame f = {0, (const uint8_t *)"2[\"e\"]", 6};
    ASSERT_EQ_INT(adapter_emit(t, to, &f, 1, seq), 0);
    struct { const void *p; size_t l; } got = {0};
    ASSERT_EQ_INT(store_log_scan(t, *seq - 1, *seq, grab, &got), 0);
    adapter_rec r;
    ASSERT_EQ_INT(adapter_rec_parse(got.p, got.l, &r), 0);
    return r;
}

TEST(adapter_match_rooms_union_except_and_sequence) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID2, "/", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(adapter_join(t, &a, "r1"), 0);
    ASSERT_EQ_INT(adapter_join(t, &a, "r2"), 0);
    ASSERT_EQ_INT(adapter_join(t, &b, "r2"), 0);
    ASSERT_EQ_INT(adapter_join(t, &b, SK2), 0);
    uint64_t seq;
    const char *r12[] = {"r1", "r2"}, *exb[] = {SK2}, *r3[] = {"r3"};
    bcast all = {"/", NULL, 0, NULL, 0}, u = {"/", r12, 2, NULL, 0}, ex = {"/", r12, 2, exb, 1},
          other = {"/chat", NULL, 0, NULL, 0}, none = {"/", r3, 1, NULL, 0};
    adapter_rec r = rec_for(t, &all, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &b), 1);
    r = rec_for(t, &u, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &b), 1);
    r = rec_for(t, &ex, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &b), 0);
    r = rec_for(t, &other, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 0);
    r = rec_for(t, &none, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 0);
    /* a record written before a join does not reach the late joiner */
    uint64_t before_seq;
    adapter_rec early = rec_for(t, &none, &before_seq);
    ASSERT_EQ_INT(adapter_join(t, &a, "r3"), 0);
    ASSERT_EQ_INT(adapter_match(t, &early, before_seq, &a), 0);
    r = rec_for(t, &none, &seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 1);
    /* nor a socket created after it */
    store_socket late = mksock(SK3, SID2, "/", seq);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &late), 0);
    /* a session record goes to its session only */
    adapter_frame f = {0, (const uint8_t *)"0{}", 3};
    ASSERT_EQ_INT(adapter_send_session(t, SID1, &f, 1, &seq), 0);
    struct { const void *p; size_t l; } got = {0};
    ASSERT_EQ_INT(store_log_scan(t, seq - 1, seq, grab, &got), 0);
    ASSERT_EQ_INT(adapter_rec_parse(got.p, got.l, &r), 0);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &a), 1);
    ASSERT_EQ_INT(adapter_match(t, &r, seq, &b), 0);
    store_abort(t);
    drop(s);
}

static int collect_ids(void *arg, const store_socket *so) {
    char *out = arg;
    strcat(out, so->id);
    strcat(out, ";");
    return 0;
}

TEST(adapter_sockets_is_a_deduplicated_union_minus_except) {
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_socket a = mksock(SK1, SID1, "/", 0), b = mksock(SK2, SID2, "/", 0), c = mksock(SK3, SID2, "/x", 0);
    ASSERT_EQ_INT(store_socket_put(t, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &b), 0);
    ASSERT_EQ_INT(store_socket_put(t, &c), 0);
    ASSERT_EQ_INT(adapter_join(t, &a, "r1"), 0);
    ASSERT_EQ_INT(adapter_join(t, &a, "r2"), 0);
    ASSERT_EQ_INT(adapter_join(t, &b, "r2"), 0);
    const char *r12[] = {"r1", "r2"}, *exa[] = {"r1"};
    char out[256] = "";
    bcast u = {"/", r12, 2, NULL, 0};
    ASSERT_EQ_INT(adapter_sockets(t, &u, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK1 ";" SK2 ";");
    out[0] = 0;
    bcast e = {"/", r12, 2, exa, 1};
    ASSERT_EQ_INT(adapter_sockets(t, &e, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK2 ";");
    out[0] = 0;
    bcast all = {"/", NULL, 0, NULL, 0};
    ASSERT_EQ_INT(adapter_sockets(t, &all, collect_ids, out), 0);
    ASSERT_EQ_STR(out, SK1 ";" SK2 ";");
    store_abort(t);
    drop(s);
}

UNIT_MAIN()

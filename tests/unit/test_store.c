/* Unit tests for store/store.c on a real LMDB environment in a temporary
 * directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "unit.h"
#include "fixture.h"

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
    ASSERT_EQ_INT(store_room_members(t, "/", "r1", 2, 0, count_member, &n), 0);
    ASSERT_EQ_INT(n, 0);
    n = 0;
    ASSERT_EQ_INT(store_room_each(t, "/", count_room, &n), 0);
    ASSERT_EQ_INT(n, 0);
    n = 0;
    ASSERT_EQ_INT(store_session_sockets(t, SID1, count_sock, &n), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(store_room_has(t, "/chat", "r1", 2, SK2, NULL), 0);
    ASSERT_EQ_INT(store_room_leave(t, "/chat", "r1", SK2, 9), 0);
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

UNIT_MAIN()

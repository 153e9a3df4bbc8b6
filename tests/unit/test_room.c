/* Unit tests for stated/room.c (included, as h2o's unit tests include the
 * code they test): a full map gets room back by dropping the oldest
 * packet-log records in short transactions, and nothing else is touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "fixture.h"
#include "srv_fixture.h"

#include "../../stated/room.c"

/* Appends 200-byte records until the map is full; returns how many. */
static uint64_t fill(server *srv) {
    uint64_t n = 0;
    ASSERT_EQ_INT(fill_log(srv->st, 200, 50, &n), STORE_EFULL);
    return n;
}

static void bounds(server *srv, uint64_t *first, uint64_t *head) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    ASSERT_EQ_INT(store_log_bounds(t, first, head), 0);
    store_abort(t);
}

TEST(enough_room_is_left_alone) {
    server srv;
    srv_tmp(&srv, "map_size_mb = 16\n");
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(store_log_append(t, "x", 1, NULL), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(room_make(&srv, 0), 0);
    uint64_t first = 0, head = 0;
    bounds(&srv, &first, &head);
    ASSERT_EQ_INT((int)first, 1);
    ASSERT_EQ_INT((int)head, 1);
    srv_drop(&srv);
}

TEST(a_full_map_gets_room_from_the_oldest_records_only) {
    server srv;
    srv_tmp(&srv, "map_size_mb = 16\n");
    tsess a;
    sess_new(&srv, &a, 0);
    FEED(&srv, &a, "0");
    uint64_t n = fill(&srv), first = 0, head = 0, avail = 0, map = 0;
    ASSERT_TRUE(n > 10000);
    uint64_t head0;
    bounds(&srv, &first, &head0);
    /* nearly full without any failure of its own: stated's check finds it */
    int dropped = room_make(&srv, 0);
    ASSERT_TRUE(dropped > 0);
    ASSERT_EQ_INT(store_space(srv.st, &avail, &map), 0);
    ASSERT_TRUE(avail >= map / HIGH_DIV);
    bounds(&srv, &first, &head);
    ASSERT_EQ_INT((long long)first, (long long)(1 + (uint64_t)dropped)); /* the oldest went */
    ASSERT_EQ_INT((long long)head, (long long)head0);                /* the rest stayed */
    /* the session and its socket are still there */
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 1);
    /* and room is there for new records */
    ASSERT_TRUE(fill(&srv) > 1000);
    srv_drop(&srv);
}

TEST(records_of_400_kb_fit_again_once_room_is_made) {
    server srv;
    srv_tmp(&srv, "map_size_mb = 16\n");
    /* big records: their pages must be contiguous, and deleting them all in
     * one transaction fails with MAP_FULL (the list of freed pages needs
     * pages itself) */
    uint64_t n = 0, more = 0;
    ASSERT_EQ_INT(fill_log(srv.st, 400000, 1, &n), STORE_EFULL);
    ASSERT_TRUE(n > 20);
    ASSERT_TRUE(room_make(&srv, 1) > 0);
    ASSERT_EQ_INT(fill_log(srv.st, 400000, 1, &more), STORE_EFULL);
    ASSERT_TRUE(more > 0);
    srv_drop(&srv);
}

TEST(after_a_map_full_it_drops_records_even_when_the_free_count_looks_fine) {
    /* MAP_FULL can come with free pages left: a big record needs them
     * contiguous.  Told so, room_make drops records anyway. */
    server srv;
    srv_tmp(&srv, "map_size_mb = 16\n");
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    for (int i = 0; i < 100; i++) ASSERT_EQ_INT(store_log_append(t, "abc", 3, NULL), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(room_make(&srv, 0), 0);
    ASSERT_EQ_INT(room_make(&srv, 1), 100);
    uint64_t first = 0, head = 0;
    bounds(&srv, &first, &head);
    ASSERT_EQ_INT((int)first, 101);
    srv_drop(&srv);
}

UNIT_MAIN()

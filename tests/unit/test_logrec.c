/* Unit tests for store/logrec.c: the packet log's record format. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/logrec.h"
#include "unit.h"
#include "fixture.h"

TEST(record_round_trip_and_truncation) {
    const char *rooms[] = {"r1", "r2"}, *except[] = {"x"};
    bcast to = {"/chat", rooms, 2, except, 1, 0};
    logrec_frame f[2] = {{0, (const uint8_t *)"2[\"a\"]", 6}, {1, (const uint8_t *)"\x01\x02", 2}};
    store *s = open_tmp();
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    uint64_t seq;
    ASSERT_EQ_INT(logrec_append_broadcast(t, &to, f, 2, &seq), 0);
    grabbed got = {0};
    ASSERT_EQ_INT(store_log_scan(t, 0, UINT64_MAX, grab, &got), 0);
    logrec r;
    ASSERT_EQ_INT(logrec_parse(got.p, got.l, &r), 0);
    ASSERT_EQ_INT(r.kind, LOGREC_BROADCAST);
    ASSERT_MEM(r.nsp, r.nsp_len, "/chat", 5);
    ASSERT_EQ_INT((int)r.nrooms, 2);
    ASSERT_EQ_INT((int)r.nexcept, 1);
    size_t pos = 0;
    logrec_frame g;
    ASSERT_EQ_INT(logrec_frame_next(&r, &pos, &g), 1);
    ASSERT_MEM(g.data, g.len, "2[\"a\"]", 6);
    ASSERT_EQ_INT(g.binary, 0);
    ASSERT_EQ_INT(logrec_frame_next(&r, &pos, &g), 1);
    ASSERT_EQ_INT(g.binary, 1);
    ASSERT_EQ_INT(logrec_frame_next(&r, &pos, &g), 0);
    for (size_t cut = 0; cut < got.l; cut++) {
        UNIT_CTX("cut at %zu", cut);
        ASSERT_EQ_INT(logrec_parse(got.p, cut, &r), -EINVAL);
    }
    store_abort(t);
    drop(s);
}

UNIT_MAIN()

/* Unit tests for store/store.c on a real LMDB environment in a temporary
 * directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <sys/stat.h>

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

TEST(inbox_commits_counts_committed_inbox_appends_only) {
    store *s = open_tmp();
    store_txn *t;
    uint64_t seq = 0;
    ASSERT_EQ_INT((int)store_inbox_commits(s), 0);
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0); /* the log only */
    ASSERT_EQ_INT(store_log_append(t, "a", 1, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT((int)store_inbox_commits(s), 0);
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0); /* the inbox, aborted */
    ASSERT_EQ_INT(store_inbox_append(t, "b", 1, &seq), 0);
    store_abort(t);
    ASSERT_EQ_INT((int)store_inbox_commits(s), 0);
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0); /* two records, one commit */
    ASSERT_EQ_INT(store_inbox_append(t, "c", 1, &seq), 0);
    ASSERT_EQ_INT(store_inbox_append(t, "d", 1, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT((int)store_inbox_commits(s), 1);
    drop(s);
}

/* ---- faults: a full map, durability modes ------------------------------------ */

static store *open_dir(const char *dir, int create, size_t map, int durability) {
    store *s = NULL;
    store_opts o = {.create = create, .map_size = map, .durability = durability};
    int rc = store_open(&s, dir, &o);
    if (rc) unit_fail(__FILE__, __LINE__, "store_open(%s): %s", dir, store_strerror(rc));
    return s;
}

/* A new store in a new temp dir (tmpl, filled in). */
static store *new_store(char *tmpl, size_t map, int durability) {
    ASSERT_TRUE(mkdtemp(tmpl) != NULL);
    return open_dir(tmpl, 1, map, durability);
}

static void put_state(store *s) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_session a = {.version = STORE_SESSION_VERSION, .eio = 4, .cursor = 3};
    store_socket so = mksock(SK1, SID1, "/", 0);
    ASSERT_EQ_INT(store_session_put(t, SID1, &a), 0);
    ASSERT_EQ_INT(store_socket_put(t, &so), 0);
    ASSERT_EQ_INT(store_room_join(t, "/", "r1", SK1, 1), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
}

static void check_state(store *s) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    store_session a;
    store_socket so;
    ASSERT_EQ_INT(store_session_get(t, SID1, &a), 0);
    ASSERT_EQ_INT((int)a.cursor, 3);
    ASSERT_EQ_INT(store_socket_get(t, SK1, &so), 0);
    ASSERT_EQ_STR(so.sid, SID1);
    ASSERT_EQ_INT(store_room_has(t, "/", "r1", 2, SK1, NULL), 0);
    store_abort(t);
}

/* A 16 MiB store with put_state's records, its log filled with 200-byte
 * records until the map is full; *stored: how many. */
static store *full_store(char *tmpl, uint64_t *stored) {
    store *s = new_store(tmpl, 16 << 20, STORE_FAST);
    put_state(s);
    *stored = 0;
    ASSERT_EQ_INT(fill_log(s, 200, 50, stored), STORE_EFULL);
    ASSERT_TRUE(*stored > 10000);
    return s;
}

TEST(map_full_refuses_the_write_and_keeps_what_was_stored) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    uint64_t stored = 0, first = 0, head = 0, bytes = 0, avail = 0, map = 0;
    store *s = full_store(tmpl, &stored);
    ASSERT_TRUE(store_full(STORE_EFULL) && store_full(-ENOSPC) && !store_full(STORE_EIO));
    /* the failed transactions left nothing behind, and took nothing away */
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    ASSERT_EQ_INT(store_log_bounds(t, &first, &head), 0);
    ASSERT_EQ_INT(store_log_size(t, &bytes), 0);
    store_abort(t);
    ASSERT_EQ_INT((long long)first, 1);
    ASSERT_EQ_INT((long long)head, (long long)stored);
    ASSERT_EQ_INT((long long)bytes, (long long)stored * 200);
    check_state(s);
    ASSERT_EQ_INT(store_space(s, &avail, &map), 0);
    ASSERT_EQ_INT((long long)map, 16 << 20);
    ASSERT_TRUE(avail < map / 16);
    /* a record of 100 KB needs contiguous pages: no room either */
    uint64_t more = 0;
    ASSERT_EQ_INT(fill_log(s, 100000, 1, &more), STORE_EFULL);
    ASSERT_EQ_INT((long long)more, 0);
    drop(s);
}

TEST(map_full_short_trims_still_work_and_free_room) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    uint64_t stored = 0, avail0 = 0, avail = 0, map = 0, first = 0, head = 0;
    store *s = full_store(tmpl, &stored);
    ASSERT_EQ_INT(store_space(s, &avail0, &map), 0);
    /* a delete needs pages too (copy-on-write), but one short transaction
     * at a time finds them: what stated's room.c relies on */
    for (int i = 0; i < 200; i++) {
        store_txn *t;
        ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
        ASSERT_EQ_INT(store_log_bounds(t, &first, &head), 0);
        ASSERT_EQ_INT(store_log_trim(t, first + 99, NULL), 0);
        ASSERT_EQ_INT(store_commit(t), 0);
    }
    ASSERT_EQ_INT(store_space(s, &avail, &map), 0);
    ASSERT_TRUE(avail > avail0 + 200 * 100 * 200 / 2);
    uint64_t more = 0;
    ASSERT_EQ_INT(fill_log(s, 200, 50, &more), STORE_EFULL); /* the room is usable */
    ASSERT_TRUE(more > 10000);
    check_state(s);
    drop(s);
}

TEST(space_of_a_fresh_store_is_nearly_all_the_map) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    store *s = new_store(tmpl, 32 << 20, STORE_FAST);
    uint64_t avail = 0, map = 0;
    ASSERT_EQ_INT(store_space(s, &avail, &map), 0);
    ASSERT_EQ_INT((long long)map, 32 << 20);
    ASSERT_TRUE(avail > map - map / 64 && avail <= map);
    ASSERT_EQ_INT((long long)store_map_size(s), 32 << 20);
    drop(s);
}

TEST(safe_durability_is_recorded_and_other_processes_follow_it) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    store *s = new_store(tmpl, 32 << 20, STORE_SAFE);
    ASSERT_EQ_INT(store_mode(s), STORE_MODE_SAFE);
    ASSERT_EQ_STR(store_mode_name(store_mode(s)), "safe");
    ASSERT_TRUE(store_mode_note(s) == NULL);
    put_state(s);
    store_close(s);
    /* a gateway with another config: stated's mode and map size win */
    s = open_dir(tmpl, 0, 64 << 20, STORE_FAST);
    ASSERT_EQ_INT(store_mode(s), STORE_MODE_SAFE);
    ASSERT_EQ_INT((long long)store_map_size(s), 32 << 20);
    check_state(s);
    drop(s);
}

TEST(fast_durability_reserves_the_map_and_the_reader_table) {
    char tmpl[] = "/tmp/sio-unit-store-XXXXXX";
    store *s = new_store(tmpl, 32 << 20, STORE_FAST);
    char p[PATH_MAX];
    struct stat st;
    if (store_mode(s) == STORE_MODE_FAST_PWRITE) { /* /tmp cannot reserve: said why */
        ASSERT_TRUE(store_mode_note(s) != NULL);
    } else {
        ASSERT_EQ_INT(store_mode(s), STORE_MODE_FAST);
        snprintf(p, sizeof p, "%s/data.mdb", tmpl);
        ASSERT_EQ_INT(stat(p, &st), 0);
        ASSERT_TRUE((long long)st.st_blocks * 512 >= 32 << 20);
        snprintf(p, sizeof p, "%s/lock.mdb", tmpl);
        ASSERT_EQ_INT(stat(p, &st), 0);
        ASSERT_TRUE((long long)st.st_blocks * 512 >= 4096 * 64);
    }
    int mode = store_mode(s);
    store_close(s);
    s = open_dir(tmpl, 0, 0, STORE_SAFE);
    ASSERT_EQ_INT(store_mode(s), mode);
    drop(s);
}

/* ---- resident memory ------------------------------------------------------------- */

/* kB of data.mdb (in dir) resident in this process, from /proc/self/smaps. */
static long map_rss_kb(const char *dir) {
    char want[PATH_MAX], line[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s/data.mdb", dir);
    FILE *f = fopen("/proc/self/smaps", "r");
    ASSERT_TRUE(f != NULL);
    long kb = -1, v;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line), wl = strlen(want);
        if (n > wl && !strncmp(line + n - 1 - wl, want, wl)) in = 1; /* its mapping's first line */
        else if (in && sscanf(line, "Rss: %ld kB", &v) == 1) kb = (kb < 0 ? 0 : kb) + v, in = 0;
    }
    fclose(f);
    return kb;
}

typedef struct big_ctx {
    int n, bad;
} big_ctx;
static int big_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    big_ctx *c = arg;
    unsigned char want = (unsigned char)seq;
    for (size_t i = 0; i < len; i++) c->bad += ((const unsigned char *)rec)[i] != want;
    c->n++;
    return 0;
}

TEST(release_pages_unmaps_what_was_touched_and_keeps_every_byte) {
    char dir[] = "/tmp/sio-store-rss-XXXXXX";
    store *s = new_store(dir, 64 << 20, STORE_FAST);
    store_txn *t;
    unsigned char rec[1000];
    uint64_t seq = 0;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    for (int i = 1; i <= 4000; i++) { /* 4 MB of log */
        memset(rec, i & 0xff, sizeof rec);
        ASSERT_EQ_INT(store_log_append(t, rec, sizeof rec, &seq), 0);
    }
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    big_ctx c = {0};
    ASSERT_EQ_INT(store_log_scan(t, 0, seq, big_cb, &c), 0);
    ASSERT_EQ_INT(c.n, 4000);
    long before = map_rss_kb(dir);
    ASSERT_TRUE(before >= 3000); /* every record was read: resident */
    /* with a read transaction open on those pages */
    ASSERT_EQ_INT(store_release_pages(s), 0);
    long after = map_rss_kb(dir);
    UNIT_CTX("resident %ld kB before, %ld kB after", before, after);
    ASSERT_TRUE(after >= 0 && after < before / 8);
    c = (big_ctx){0};
    ASSERT_EQ_INT(store_log_scan(t, 0, seq, big_cb, &c), 0); /* faulted in again, intact */
    ASSERT_EQ_INT(c.n, 4000);
    ASSERT_EQ_INT(c.bad, 0);
    store_abort(t);
    /* a write transaction across a release commits what it wrote */
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    memset(rec, 0xab, sizeof rec);
    ASSERT_EQ_INT(store_log_append(t, rec, sizeof rec, &seq), 0);
    ASSERT_EQ_INT(store_release_pages(s), 0);
    memset(rec, (int)((seq + 1) & 0xff), sizeof rec); /* the next record's number */
    ASSERT_EQ_INT(store_log_append(t, rec, sizeof rec, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(store_release_pages(s), 0);
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    c = (big_ctx){0};
    ASSERT_EQ_INT(store_log_scan(t, seq - 1, seq, big_cb, &c), 0);
    ASSERT_EQ_INT(c.n, 1);
    ASSERT_EQ_INT(c.bad, 0);
    store_abort(t);
    drop(s);
}

UNIT_MAIN()

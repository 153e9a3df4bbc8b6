/* Unit tests for store/recover.c: stores that cannot be used (garbage, a
 * truncated file, another format) are found by the check, refused by
 * store_open, and moved aside by recover_open, which starts a fresh one. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/recover.h"
#include "store/store.h"
#include "unit.h"
#include "fixture.h"

/* A store in a new temp dir holding a session and records of `bytes` in
 * all, closed again. */
static void make_store(char *dir, size_t bytes) {
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 32 << 20};
    ASSERT_EQ_INT(store_open(&s, dir, &o), 0);
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    store_session a = {.version = STORE_SESSION_VERSION, .eio = 4};
    ASSERT_EQ_INT(store_session_put(t, SID1, &a), 0);
    static char rec[1000];
    for (size_t n = 0; n < bytes; n += sizeof rec) ASSERT_EQ_INT(store_log_append(t, rec, sizeof rec, NULL), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    store_close(s);
}

static void path_in(char *out, const char *dir, const char *name) {
    snprintf(out, PATH_MAX, "%.4000s/%s", dir, name);
}

static void rm_rf(const char *dir) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* Opening as a gateway would: the files stay where they are. */
static void others_refuse(const char *dir, int want) {
    store *s = NULL;
    store_opts o = {0};
    char p[PATH_MAX];
    struct stat st;
    ASSERT_EQ_INT(store_open(&s, dir, &o), want);
    path_in(p, dir, "data.mdb");
    ASSERT_EQ_INT(stat(p, &st), 0);
}

/* recover_open moves it aside and opens a fresh, empty store; returns the
 * size of the data.mdb that was moved. */
static long long recover_fresh(const char *dir, const char *why_has) {
    char moved[PATH_MAX], why[512], p[PATH_MAX];
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 32 << 20};
    ASSERT_EQ_INT(recover_open(&s, dir, &o, moved, sizeof moved, why, sizeof why), 0);
    ASSERT_TRUE(strstr(moved, "/broken-") != NULL);
    if (!strstr(why, why_has)) unit_fail(__FILE__, __LINE__, "why \"%s\" lacks \"%s\"", why, why_has);
    struct stat st;
    path_in(p, moved, "data.mdb");
    ASSERT_EQ_INT(stat(p, &st), 0);
    store_txn *t;
    size_t n = 9;
    ASSERT_EQ_INT(store_begin(s, 0, &t), 0);
    ASSERT_EQ_INT(store_session_count(t, &n), 0);
    store_abort(t);
    ASSERT_EQ_INT((int)n, 0);
    store_close(s);
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), 0); /* the new one is sound */
    return (long long)st.st_size;
}

TEST(check_passes_a_sound_store_and_a_missing_one) {
    char dir[] = "/tmp/sio-unit-recover-XXXXXX";
    make_store(dir, 3 << 20);
    char why[512], p[PATH_MAX];
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), 0);
    path_in(p, dir, "data.mdb");
    ASSERT_EQ_INT(unlink(p), 0);
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), 0);
    char moved[PATH_MAX];
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 32 << 20};
    ASSERT_EQ_INT(recover_open(&s, dir, &o, moved, sizeof moved, why, sizeof why), 0);
    ASSERT_EQ_STR(moved, ""); /* nothing to move: just created */
    store_close(s);
    rm_rf(dir);
}

TEST(garbage_is_refused_then_moved_aside) {
    char dir[] = "/tmp/sio-unit-recover-XXXXXX";
    make_store(dir, 0);
    char p[PATH_MAX], why[512];
    path_in(p, dir, "data.mdb");
    FILE *f = fopen(p, "w");
    ASSERT_TRUE(f != NULL);
    for (int i = 0; i < 65536; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), STORE_EBROKEN);
    ASSERT_TRUE(strstr(why, "MDB_INVALID") != NULL);
    others_refuse(dir, STORE_EBROKEN);
    ASSERT_EQ_INT(recover_fresh(dir, "MDB_INVALID"), 65536);
    rm_rf(dir);
}

TEST(a_truncated_file_is_refused_then_moved_aside) {
    char dir[] = "/tmp/sio-unit-recover-XXXXXX";
    make_store(dir, 3 << 20);
    char p[PATH_MAX], why[512];
    path_in(p, dir, "data.mdb");
    ASSERT_EQ_INT(truncate(p, 100000), 0);
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), STORE_EBROKEN);
    ASSERT_TRUE(strstr(why, "truncated") != NULL);
    ASSERT_EQ_INT(recover_fresh(dir, "truncated"), 100000);
    rm_rf(dir);
}

TEST(another_format_is_refused_then_moved_aside) {
    char dir[] = "/tmp/sio-unit-recover-XXXXXX";
    make_store(dir, 0);
    store *s = NULL;
    store_opts o = {0};
    ASSERT_EQ_INT(store_open(&s, dir, &o), 0);
    store_txn *t;
    ASSERT_EQ_INT(store_begin(s, 1, &t), 0);
    ASSERT_EQ_INT(store_meta_put(t, "format", "sio-store-0", 11), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    store_close(s);
    char why[512];
    ASSERT_EQ_INT(recover_check(dir, why, sizeof why), -EPROTO);
    ASSERT_TRUE(strstr(why, "\"sio-store-0\"") != NULL);
    others_refuse(dir, -EPROTO);
    recover_fresh(dir, "sio-store-0");
    rm_rf(dir);
}

TEST(moving_aside_twice_in_a_second_does_not_collide) {
    char dir[] = "/tmp/sio-unit-recover-XXXXXX";
    make_store(dir, 0);
    char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX];
    struct stat st;
    ASSERT_EQ_INT(recover_move_aside(dir, a, sizeof a), 0);
    store *s = NULL;
    store_opts o = {.create = 1, .map_size = 32 << 20};
    ASSERT_EQ_INT(store_open(&s, dir, &o), 0);
    store_close(s);
    ASSERT_EQ_INT(recover_move_aside(dir, b, sizeof b), 0);
    ASSERT_TRUE(strcmp(a, b) != 0);
    path_in(p, a, "data.mdb");
    ASSERT_EQ_INT(stat(p, &st), 0);
    path_in(p, b, "lock.mdb");
    ASSERT_EQ_INT(stat(p, &st), 0);
    path_in(p, dir, "data.mdb");
    ASSERT_TRUE(stat(p, &st) != 0);
    rm_rf(dir);
}

UNIT_MAIN()

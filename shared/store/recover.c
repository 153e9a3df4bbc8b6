/* recover: checking a store and moving a damaged one aside (see recover.h). */
#include "store/recover.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's exit codes (1 is left out: sanitizers exit with it). */
enum { CHECK_OK = 0, CHECK_BROKEN = 11, CHECK_FORMAT = 12, CHECK_ERROR = 13 };

static volatile unsigned char touched;

/* Reads the first and the last byte of a key or value: a length that runs
 * off the map, or a page past the end of the file, faults here. */
static void touch(const MDB_val *v) {
    if (!v->mv_size) return;
    const volatile unsigned char *p = v->mv_data;
    touched ^= p[0] ^ p[v->mv_size - 1];
}

/* What an LMDB error says about the file (more tables than ours: not ours). */
static int verdict(int rc) {
    return store_lmdb_rc(rc) == STORE_EBROKEN || rc == MDB_DBS_FULL ? CHECK_BROKEN : CHECK_ERROR;
}

/* Walks every record of one table. */
static int walk(MDB_txn *txn, MDB_dbi dbi) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc) return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        touch(&k);
        touch(&v);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Our format record, then every table (the main table lists them). */
static int check_txn(MDB_txn *txn, char *why, size_t n) {
    MDB_dbi dbi, main;
    MDB_val k = {6, "format"}, v;
    int rc = mdb_dbi_open(txn, "meta", 0, &dbi);
    if (!rc) rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        snprintf(why, n, "it holds no format record: not a store of this server");
        return CHECK_FORMAT;
    }
    const char *want = store_format();
    if (!rc && (v.mv_size != strlen(want) || memcmp(v.mv_data, want, v.mv_size))) {
        snprintf(why, n, "its format is \"%.*s\", this server reads \"%s\"",
                 (int)(v.mv_size < 64 ? v.mv_size : 64), (const char *)v.mv_data, want);
        return CHECK_FORMAT;
    }
    MDB_cursor *c;
    if (!rc) rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (!rc) rc = mdb_cursor_open(txn, main, &c);
    if (rc) {
        snprintf(why, n, "reading it: %s", mdb_strerror(rc));
        return verdict(rc);
    }
    int r;
    for (r = mdb_cursor_get(c, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char name[256];
        if (k.mv_size >= sizeof name) {
            rc = MDB_INCOMPATIBLE;
            snprintf(why, n, "a table name of %zu bytes", k.mv_size);
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        if ((rc = mdb_dbi_open(txn, name, 0, &dbi)) || (rc = walk(txn, dbi))) {
            snprintf(why, n, "reading table \"%s\": %s", name, mdb_strerror(rc));
            break;
        }
    }
    mdb_cursor_close(c);
    if (!rc && r != MDB_NOTFOUND) {
        rc = r;
        snprintf(why, n, "listing its tables: %s", mdb_strerror(rc));
    }
    return rc ? verdict(rc) : CHECK_OK;
}

/* The check proper, in the child: CHECK_*, the reason in why. */
static int check(const char *dir, char *why, size_t n) {
    char path[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/data.mdb", dir) >= (int)sizeof path) {
        snprintf(why, n, "path too long");
        return CHECK_ERROR;
    }
    if (stat(path, &st)) {
        if (errno == ENOENT) return CHECK_OK;
        snprintf(why, n, "%.300s: %s", path, strerror(errno));
        return CHECK_ERROR;
    }
    if (st.st_size == 0) return CHECK_OK; /* LMDB makes a new store of an empty file */
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) {
        snprintf(why, n, "%s", mdb_strerror(rc));
        return CHECK_ERROR;
    }
    mdb_env_set_maxdbs(env, 64);
    rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0660);
    int v = CHECK_OK;
    if (rc) {
        snprintf(why, n, "LMDB cannot open it: %s", mdb_strerror(rc));
        v = verdict(rc);
    } else {
        MDB_envinfo ei;
        MDB_stat ms;
        mdb_env_info(env, &ei);
        mdb_env_stat(env, &ms);
        uint64_t used = ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize;
        MDB_txn *txn;
        if ((uint64_t)st.st_size < used) {
            /* reading those pages would be SIGBUS (or zeros, with a writable map) */
            snprintf(why, n, "data.mdb is %lld bytes but its pages reach %llu: it was truncated",
                     (long long)st.st_size, (unsigned long long)used);
            v = CHECK_BROKEN;
        } else if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) {
            snprintf(why, n, "%s", mdb_strerror(rc));
            v = verdict(rc);
        } else {
            v = check_txn(txn, why, n);
            mdb_txn_abort(txn);
        }
    }
    mdb_env_close(env);
    return v;
}

int recover_check(const char *dir, char *why, size_t whylen) {
    int fds[2];
    why[0] = 0;
    if (pipe2(fds, O_CLOEXEC)) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        /* A fault is the verdict: die of it (a sanitizer would report it
         * as a bug and exit 1 instead). */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        close(fds[0]);
        char text[512] = "";
        int v = check(dir, text, sizeof text);
        ssize_t w = write(fds[1], text, strlen(text));
        (void)w;
        _exit(v);
    }
    close(fds[1]);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], why + got, whylen - 1 - got);
        if (r > 0 && (got += (size_t)r) < whylen - 1) continue;
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    why[got] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -errno;
    if (WIFSIGNALED(status)) {
        snprintf(why, whylen, "reading it crashed the check (%s): the file is damaged or truncated",
                 strsignal(WTERMSIG(status)));
        return STORE_EBROKEN;
    }
    switch (WIFEXITED(status) ? WEXITSTATUS(status) : -1) {
    case CHECK_OK: return 0;
    case CHECK_FORMAT: return -EPROTO;
    case CHECK_ERROR: return -EIO;
    case CHECK_BROKEN: return STORE_EBROKEN;
    }
    snprintf(why, whylen, "the check died (status %d) reading it: the file is damaged", status);
    return STORE_EBROKEN;
}

int recover_move_aside(const char *dir, char *moved, size_t movedlen) {
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int i = 1;; i++) {
        int n = i == 1 ? snprintf(moved, movedlen, "%s/broken-%s", dir, stamp)
                       : snprintf(moved, movedlen, "%s/broken-%s-%d", dir, stamp, i);
        if (n >= (int)movedlen) return -ENAMETOOLONG;
        if (mkdir(moved, 0770) == 0) break;
        if (errno != EEXIST || i >= 100) return -errno;
    }
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < 2; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        if (snprintf(from, sizeof from, "%s/%s", dir, files[i]) >= (int)sizeof from ||
            snprintf(to, sizeof to, "%s/%s", moved, files[i]) >= (int)sizeof to)
            return -ENAMETOOLONG;
        if (rename(from, to) && errno != ENOENT) return -errno;
    }
    return 0;
}

/* Moves the store aside after rc said why (the reason text in why). */
static int set_aside(const char *dir, char *moved, size_t movedlen) {
    int rc = recover_move_aside(dir, moved, movedlen);
    if (rc) moved[0] = 0;
    return rc;
}

int recover_open(store **out, const char *dir, const store_opts *opts, char *moved,
                 size_t movedlen, char *why, size_t whylen) {
    moved[0] = 0;
    int rc = recover_check(dir, why, whylen);
    if (rc == STORE_EBROKEN || rc == -EPROTO) {
        if ((rc = set_aside(dir, moved, movedlen))) return rc;
    }
    /* A check that could not run proves nothing: the open decides. */
    rc = store_open(out, dir, opts);
    if ((rc == STORE_EBROKEN || rc == -EPROTO) && !moved[0]) {
        snprintf(why, whylen, "%s", store_strerror(rc));
        if (set_aside(dir, moved, movedlen) == 0) rc = store_open(out, dir, opts);
    }
    return rc;
}

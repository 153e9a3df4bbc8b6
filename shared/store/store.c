/* store: LMDB-backed shared state (see store.h for the layout). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#define STORE_FORMAT "sio-store-2" /* 2: recovery fields in sockets, membership intervals */

struct store {
    MDB_env *env;
    MDB_dbi meta, sessions, partials, sockets, sess_socks, pids, detached, rooms, leaves, sock_rooms,
        log, readers, inbox, handshakes;
    char dir[PATH_MAX];
    int mode;       /* STORE_MODE_* */
    int keeper;     /* stated (opened with create): may use the reserve */
    char note[320]; /* why fast mode runs without the map */
    _Atomic uint64_t inbox_commits; /* store_inbox_commits */
    pthread_mutex_t map_lock;       /* the map does not move during store_release_pages */
};

struct store_txn {
    store *s;
    MDB_txn *txn;
    int write;
    int inbox; /* appended to the inbox */
};

static int rc_of(int rc) {
    if (rc == 0 || rc == MDB_NOTFOUND || rc == MDB_MAP_FULL) return rc;
    if (rc > 0) return -rc; /* errno */
    return STORE_EIO;
}

const char *store_strerror(int rc) {
    if (rc == STORE_EIO) return "store failure";
    if (rc == STORE_NOTFOUND) return "not found";
    if (rc == STORE_EFULL) return "store is full (map_size_mb)";
    if (rc == STORE_EBROKEN) return "the store is damaged, or was written by another LMDB version";
    if (rc == -EPROTO) return "the store was written by another version of this server (its format differs)";
    if (rc < 0) return strerror(-rc);
    return mdb_strerror(rc);
}

const char *store_dir(const store *s) { return s->dir; }
const char *store_format(void) { return STORE_FORMAT; }

static int mkdirs(const char *dir) {
    char tmp[PATH_MAX];
    if (strlen(dir) >= sizeof tmp) return -ENAMETOOLONG;
    strcpy(tmp, dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0770) && errno != EEXIST) return -errno;
    return 0;
}

/* ---- how the environment is opened (store.h: Durability) ------------------ */

static const char *const mode_names[] = {"fast", "fast-pwrite", "safe"};

const char *store_mode_name(int mode) {
    return mode >= 0 && mode <= STORE_MODE_SAFE ? mode_names[mode] : "?";
}
int store_mode(const store *s) { return s->mode; }
const char *store_mode_note(const store *s) { return s->note[0] ? s->note : NULL; }

static unsigned mode_flags(int mode) {
    if (mode == STORE_MODE_FAST) return MDB_NOSYNC | MDB_WRITEMAP;
    if (mode == STORE_MODE_FAST_PWRITE) return MDB_NOSYNC;
    return 0;
}

int store_lmdb_rc(int rc) {
    switch (rc) {
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
    case MDB_PANIC:
    case MDB_CURSOR_FULL: /* a tree deeper than LMDB builds */
        return STORE_EBROKEN;
    case MDB_NOTFOUND:
        return -ENOENT;
    }
    return rc_of(rc);
}

/* 1 when the data file is shorter than the pages its meta page says are in
 * use (a truncated copy, a file cut short): LMDB would read past its end. */
static int truncated(MDB_env *env) {
    int fd;
    struct stat st;
    MDB_envinfo ei;
    MDB_stat ms;
    if (mdb_env_get_fd(env, &fd) || fstat(fd, &st) || mdb_env_info(env, &ei) || mdb_env_stat(env, &ms))
        return 0;
    return (uint64_t)st.st_size < ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize;
}

/* How stated opened the store, from meta "open" ("MODE MAP_BYTES"), read
 * through a read-only environment closed again at once: a process must know
 * it before opening the store for good.  Without the record (an older
 * store) *mode and *map_size are left alone. */
static int peek_open(const char *dir, int *mode, size_t *map_size) {
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc) return rc_of(rc);
    mdb_env_set_maxdbs(env, 24);
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {4, "open"}, v;
    rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0660);
    if (!rc && truncated(env)) rc = MDB_CORRUPTED; /* reading it would be SIGBUS */
    if (!rc) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "meta", 0, &dbi);
    if (!rc) rc = mdb_get(txn, dbi, &k, &v);
    if (!rc) {
        char text[64], name[16];
        unsigned long long bytes;
        size_t n = v.mv_size < sizeof text - 1 ? v.mv_size : sizeof text - 1;
        memcpy(text, v.mv_data, n);
        text[n] = 0;
        if (sscanf(text, "%15s %llu", name, &bytes) == 2) {
            for (int m = 0; m <= STORE_MODE_SAFE; m++)
                if (!strcmp(name, mode_names[m])) *mode = m;
            *map_size = (size_t)bytes;
        }
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc ? store_lmdb_rc(rc) : 0;
}

/* Reserves the lock file's blocks (best effort, before the environment is
 * opened: closing another descriptor of it later would drop LMDB's locks).
 * Its reader table is a shared map in every mode, and a reader slot in a
 * hole of it on a full disk would be SIGBUS. */
static void reserve_lock_file(const char *dir, unsigned maxreaders) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/lock.mdb", dir) >= (int)sizeof p) return;
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0) return;
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)maxreaders * 64 + 4096)) {
        /* best effort: the table's first pages are written at once anyway */
    }
    close(fd);
}

#define BTRFS_MAGIC 0x9123683EUL
#define ZFS_MAGIC 0x2FC12FC1UL

/* Reserves the whole map on disk (fast mode; see store.h): 0, or -errno
 * with the reason in why. */
static int reserve_map(MDB_env *env, const char *dir, char *why, size_t n) {
    int fd;
    MDB_envinfo ei;
    mdb_env_get_fd(env, &fd);
    mdb_env_info(env, &ei);
    size_t mb = ei.me_mapsize >> 20;
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0 && ((unsigned long)sf.f_type == BTRFS_MAGIC ||
                                  (unsigned long)sf.f_type == ZFS_MAGIC)) {
        snprintf(why, n, "%s is on a copy-on-write filesystem, where reserving blocks does not make later writes fit", dir);
        return -EOPNOTSUPP;
    }
    struct stat st;
    struct statvfs vf;
    if (fstat(fd, &st) == 0 && fstatvfs(fd, &vf) == 0) {
        uint64_t have = (uint64_t)st.st_blocks * 512;
        uint64_t need = ei.me_mapsize > have ? ei.me_mapsize - have : 0;
        uint64_t avail = (uint64_t)vf.f_bavail * vf.f_frsize, total = (uint64_t)vf.f_blocks * vf.f_frsize;
        if (need && avail < need + total / 16) {
            snprintf(why, n, "reserving map_size_mb (%zu MB) in %s needs %llu MB more of disk, %llu MB are free (and 1/16 of the filesystem is left free)",
                     mb, dir, (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20));
            return -ENOSPC;
        }
    }
    if (fallocate(fd, 0, 0, (off_t)ei.me_mapsize)) {
        int e = errno;
        snprintf(why, n, "cannot reserve map_size_mb (%zu MB) in %s: %s", mb, dir, strerror(e));
        return -e;
    }
    return 0;
}

/* A new environment handle for s, sized by o. */
static int env_new(store *s, const store_opts *o) {
    int rc = mdb_env_create(&s->env);
    if (rc) {
        s->env = NULL;
        return rc;
    }
    mdb_env_set_maxdbs(s->env, 24);
    mdb_env_set_maxreaders(s->env, o->maxreaders);
    mdb_env_set_mapsize(s->env, o->map_size);
    return 0;
}

/* Opens s->env the way mode says.  stated (o->create) reserves the map in
 * fast mode first, and opens without it when it cannot (s->note: why). */
static int open_env(store *s, const char *dir, const store_opts *o, int mode) {
    s->mode = mode;
    int rc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NORDAHEAD | mode_flags(mode), 0660);
    if (rc || mode != STORE_MODE_FAST || !o->create) return rc;
    if (reserve_map(s->env, dir, s->note, sizeof s->note) == 0) return 0;
    mdb_env_close(s->env);
    if ((rc = env_new(s, o))) return rc;
    s->mode = STORE_MODE_FAST_PWRITE;
    return mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NORDAHEAD | mode_flags(s->mode), 0660);
}

/* stated records how it opened the store (peek_open reads it). */
static int put_open(MDB_txn *txn, store *s) {
    MDB_envinfo ei;
    mdb_env_info(s->env, &ei);
    char text[64];
    int n = snprintf(text, sizeof text, "%s %zu", mode_names[s->mode], ei.me_mapsize);
    MDB_val k = {4, "open"}, v = {(size_t)n, text};
    return mdb_put(txn, s->meta, &k, &v, 0);
}

size_t store_map_size(const store *s) {
    MDB_envinfo ei;
    mdb_env_info(s->env, &ei);
    return ei.me_mapsize;
}

int store_space(store *s, uint64_t *free_bytes, uint64_t *map_bytes) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc) return rc_of(rc);
    MDB_envinfo ei;
    MDB_stat st;
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &st);
    /* The free list (DBI 0): txn id -> page numbers, the count first. */
    uint64_t freepages = 0;
    MDB_cursor *c;
    rc = mdb_cursor_open(txn, 0, &c);
    if (!rc) {
        MDB_val k, v;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            size_t count;
            if (v.mv_size < sizeof count) continue;
            memcpy(&count, v.mv_data, sizeof count);
            freepages += count;
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    mdb_txn_abort(txn);
    uint64_t maxpg = ei.me_mapsize / st.ms_psize, used = (uint64_t)ei.me_last_pgno + 1;
    *free_bytes = ((maxpg > used ? maxpg - used : 0) + freepages) * st.ms_psize;
    *map_bytes = ei.me_mapsize;
    return rc_of(rc);
}

int store_open(store **out, const char *dir, const store_opts *opts) {
    store_opts o = {0};
    if (opts) o = *opts;
    if (!o.map_size && o.create) o.map_size = (size_t)4 << 30;
    if (!o.maxreaders) o.maxreaders = 4096;
    *out = NULL;
    struct stat st;
    if (o.create) {
        int rc = mkdirs(dir);
        if (rc) return rc;
    } else {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/data.mdb", dir) >= (int)sizeof p) return -ENAMETOOLONG;
        if (stat(p, &st)) return -errno;
    }
    int mode = o.durability == STORE_SAFE ? STORE_MODE_SAFE : STORE_MODE_FAST;
    if (!o.create) {
        o.map_size = 0; /* stated's, below; else the store's own */
        int prc = peek_open(dir, &mode, &o.map_size);
        if (prc) return prc;
    } else {
        reserve_lock_file(dir, o.maxreaders);
    }
    store *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    pthread_mutex_init(&s->map_lock, NULL);
    s->keeper = o.create;
    int rc = env_new(s, &o);
    if (rc) { free(s); return rc_of(rc); }
    rc = open_env(s, dir, &o, mode);
    if (rc) goto fail;
    int dead;
    mdb_reader_check(s->env, &dead);

    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, o.create ? 0 : MDB_RDONLY, &txn);
    if (rc) goto fail;
    unsigned c = o.create ? MDB_CREATE : 0;
    struct { const char *name; unsigned flags; MDB_dbi *dbi; } dbs[] = {
        {"meta", 0, &s->meta},
        {"sessions", 0, &s->sessions},
        {"partials", 0, &s->partials},
        {"sockets", 0, &s->sockets},
        {"sess_socks", MDB_DUPSORT, &s->sess_socks},
        {"pids", 0, &s->pids},
        {"detached", 0, &s->detached},
        {"rooms", MDB_DUPSORT, &s->rooms},
        {"leaves", MDB_INTEGERKEY | MDB_DUPSORT, &s->leaves},
        {"sock_rooms", MDB_DUPSORT, &s->sock_rooms},
        {"log", MDB_INTEGERKEY, &s->log},
        {"readers", 0, &s->readers},
        {"inbox", MDB_INTEGERKEY, &s->inbox},
        {"handshakes", 0, &s->handshakes},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | c, dbs[i].dbi);
        if (rc) { mdb_txn_abort(txn); goto fail; }
    }
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && o.create) {
        v.mv_data = STORE_FORMAT;
        v.mv_size = strlen(STORE_FORMAT);
        rc = mdb_put(txn, s->meta, &k, &v, 0);
    } else if (rc == 0 && (v.mv_size != strlen(STORE_FORMAT) ||
                           memcmp(v.mv_data, STORE_FORMAT, v.mv_size))) {
        rc = EPROTO;
    }
    if (!rc && o.create) rc = put_open(txn, s);
    if (rc) { mdb_txn_abort(txn); goto fail; }
    rc = mdb_txn_commit(txn); /* also for a read txn: keeps the dbi handles */
    if (rc) goto fail;
    *out = s;
    return 0;
fail:
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->map_lock);
    free(s);
    return store_lmdb_rc(rc);
}

void store_close(store *s) {
    if (!s) return;
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->map_lock);
    free(s);
}

int store_reader_check(store *s) {
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    return dead;
}

int store_sync(store *s) { return rc_of(mdb_env_sync(s->env, 1)); }

/* This process's mapping of data.mdb (LMDB tells its address only for a
 * fixed map): from /proc/self/maps, by inode.  Called under map_lock. */
static int find_map(store *s, void **addr, size_t *len) {
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &st)) return -EINVAL;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return -errno;
    char line[PATH_MAX + 128];
    *addr = NULL;
    while (!*addr && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %*s %lu", &lo, &hi, perms, &off, &ino) == 5 &&
            ino == (unsigned long)st.st_ino && off == 0 && perms[3] == 's') {
            *addr = (void *)lo;
            *len = hi - lo;
        }
    }
    fclose(f);
    return *addr ? 0 : -ENOENT;
}
int store_release_pages(store *s) {
    void *addr;
    size_t len;
    /* looked up each time, under the lock that store_begin takes to move
     * the map: never an address that is something else by now */
    pthread_mutex_lock(&s->map_lock);
    int rc = find_map(s, &addr, &len);
    /* MADV_DONTNEED on a shared file mapping drops page table entries, never
     * data: a page in use by a transaction is simply faulted in again */
    if (!rc && madvise(addr, len, MADV_DONTNEED)) rc = -errno;
    pthread_mutex_unlock(&s->map_lock);
    return rc;
}

/* The last pages of the map are stated's: a delete needs free pages too
 * (LMDB copies every page it changes), so a map filled to the last page by
 * the gateways and sioctl could not even be trimmed.  Their write
 * transactions are refused (STORE_EFULL) once less than this is free. */
static uint64_t reserve_bytes(uint64_t map) {
    uint64_t r = map / 16;
    return r < (8u << 20) ? r : (8u << 20);
}

/* 0, or STORE_EFULL when a process other than stated starts a write
 * transaction inside the reserve.  Called under the writer lock (the write
 * transaction begun), so that writers starting together cannot all pass;
 * each may still use the pages one transaction needs.  Cheap while the map
 * has room past its last page; near the end the free list is counted, in a
 * read transaction (LMDB reads it only there). */
static int check_reserve(store *s) {
    MDB_envinfo ei;
    MDB_stat st;
    if (mdb_env_info(s->env, &ei) || mdb_env_stat(s->env, &st)) return 0;
    uint64_t reserve = reserve_bytes(ei.me_mapsize), used = ((uint64_t)ei.me_last_pgno + 1) * st.ms_psize;
    if (ei.me_mapsize > used && ei.me_mapsize - used >= reserve) return 0;
    uint64_t avail = 0, map = 0;
    if (store_space(s, &avail, &map)) return 0;
    return avail < reserve ? STORE_EFULL : 0;
}

int store_begin(store *s, int write, store_txn **out) {
    store_txn *t = malloc(sizeof *t);
    if (!t) return -ENOMEM;
    t->s = s;
    t->write = write;
    t->inbox = 0;
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc == MDB_MAP_RESIZED) {
        pthread_mutex_lock(&s->map_lock);
        mdb_env_set_mapsize(s->env, 0);
        pthread_mutex_unlock(&s->map_lock);
        rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    }
    if (!rc && write && !s->keeper && (rc = check_reserve(s))) mdb_txn_abort(t->txn);
    if (rc) {
        free(t);
        return rc_of(rc);
    }
    *out = t;
    return 0;
}

int store_commit(store_txn *t) {
    int rc = t->write ? mdb_txn_commit(t->txn) : (mdb_txn_abort(t->txn), 0);
    if (!rc && t->inbox) atomic_fetch_add(&t->s->inbox_commits, 1);
    free(t);
    return rc_of(rc);
}

uint64_t store_inbox_commits(store *s) { return atomic_load(&s->inbox_commits); }

void store_abort(store_txn *t) {
    if (!t) return;
    mdb_txn_abort(t->txn);
    free(t);
}

static MDB_val sval(const char *s) { return (MDB_val){strlen(s), (void *)s}; }

/* ---- meta --------------------------------------------------------------- */

int store_meta_get(store_txn *t, const char *key, const void **data, size_t *len) {
    MDB_val k = sval(key), v;
    int rc = mdb_get(t->txn, t->s->meta, &k, &v);
    if (rc) return rc_of(rc);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int store_meta_put(store_txn *t, const char *key, const void *data, size_t len) {
    MDB_val k = sval(key), v = {len, (void *)data};
    return rc_of(mdb_put(t->txn, t->s->meta, &k, &v, 0));
}

/* ---- sessions ---------------------------------------------------------- */

int store_session_get(store_txn *t, const char *sid, store_session *out) {
    MDB_val k = sval(sid), v;
    int rc = mdb_get(t->txn, t->s->sessions, &k, &v);
    if (rc) return rc_of(rc);
    if (v.mv_size != sizeof *out) return STORE_EIO;
    memcpy(out, v.mv_data, sizeof *out);
    if (out->version != STORE_SESSION_VERSION) return STORE_EIO;
    return 0;
}

int store_session_put(store_txn *t, const char *sid, const store_session *s) {
    MDB_val k = sval(sid), v = {sizeof *s, (void *)s};
    return rc_of(mdb_put(t->txn, t->s->sessions, &k, &v, 0));
}

int store_session_del(store_txn *t, const char *sid) {
    MDB_val k = sval(sid);
    int rc = mdb_del(t->txn, t->s->sessions, &k, NULL);
    mdb_del(t->txn, t->s->partials, &k, NULL);
    mdb_del(t->txn, t->s->handshakes, &k, NULL);
    return rc_of(rc);
}

int store_session_each(store_txn *t, int (*cb)(void *, const char *, const store_session *),
                       void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->sessions, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size != sizeof(store_session) || k.mv_size > UTIL_ID_LEN) continue;
        store_session s;
        memcpy(&s, v.mv_data, sizeof s);
        char sid[UTIL_ID_LEN + 1];
        memcpy(sid, k.mv_data, k.mv_size);
        sid[k.mv_size] = 0;
        if ((ret = cb(arg, sid, &s))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_session_count(store_txn *t, size_t *out) {
    MDB_stat st;
    int rc = mdb_stat(t->txn, t->s->sessions, &st);
    if (rc) return rc_of(rc);
    *out = st.ms_entries;
    return 0;
}

int store_partial_get(store_txn *t, const char *sid, const void **data, size_t *len) {
    MDB_val k = sval(sid), v;
    int rc = mdb_get(t->txn, t->s->partials, &k, &v);
    if (rc) return rc_of(rc);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int store_partial_put(store_txn *t, const char *sid, const void *data, size_t len) {
    MDB_val k = sval(sid), v = {len, (void *)data};
    return rc_of(mdb_put(t->txn, t->s->partials, &k, &v, 0));
}

int store_partial_del(store_txn *t, const char *sid) {
    MDB_val k = sval(sid);
    int rc = mdb_del(t->txn, t->s->partials, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

/* ---- sockets ----------------------------------------------------------- */
/* Value: header, then nsp bytes, then data bytes. */
typedef struct sock_hdr {
    char sid[UTIL_ID_LEN];
    char pid[UTIL_ID_LEN]; /* zeros: none */
    uint64_t created_seq;
    uint64_t attach_seq;
    uint64_t delivered_seq;
    int64_t created_ms;
    int64_t detached_ms;
    uint32_t nsp_len;
    uint32_t data_len;
} sock_hdr;

static int sock_decode(const MDB_val *k, const MDB_val *v, store_socket *out) {
    sock_hdr h;
    if (k->mv_size != UTIL_ID_LEN || v->mv_size < sizeof h) return STORE_EIO;
    memcpy(&h, v->mv_data, sizeof h);
    if (h.nsp_len > 128 || sizeof h + h.nsp_len + (size_t)h.data_len != v->mv_size) return STORE_EIO;
    memcpy(out->id, k->mv_data, UTIL_ID_LEN);
    out->id[UTIL_ID_LEN] = 0;
    memcpy(out->sid, h.sid, UTIL_ID_LEN);
    out->sid[UTIL_ID_LEN] = 0;
    memcpy(out->pid, h.pid, UTIL_ID_LEN);
    out->pid[h.pid[0] ? UTIL_ID_LEN : 0] = 0;
    const char *p = (const char *)v->mv_data + sizeof h;
    memcpy(out->nsp, p, h.nsp_len);
    out->nsp[h.nsp_len] = 0;
    out->created_seq = h.created_seq;
    out->attach_seq = h.attach_seq;
    out->delivered_seq = h.delivered_seq;
    out->created_ms = h.created_ms;
    out->detached_ms = h.detached_ms;
    out->data = p + h.nsp_len;
    out->data_len = h.data_len;
    return 0;
}

static int link_put(store_txn *t, const char *sid, const char *id) {
    MDB_val sk = {UTIL_ID_LEN, (void *)sid}, sv = {UTIL_ID_LEN, (void *)id};
    int rc = mdb_put(t->txn, t->s->sess_socks, &sk, &sv, MDB_NODUPDATA);
    return rc == MDB_KEYEXIST ? 0 : rc_of(rc);
}

static int del_missing_ok(store_txn *t, MDB_dbi dbi, const void *key, size_t klen, const void *val,
                          size_t vlen) {
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_del(t->txn, dbi, &k, val ? &v : NULL);
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_socket_put(store_txn *t, const store_socket *s) {
    sock_hdr h;
    memset(&h, 0, sizeof h);
    size_t nl = strlen(s->nsp), pl = strlen(s->pid);
    if (strlen(s->id) != UTIL_ID_LEN || strlen(s->sid) != UTIL_ID_LEN || nl > 128 ||
        (pl && pl != UTIL_ID_LEN) || s->detached_ms)
        return -EINVAL;
    if (s->data_len > UINT32_MAX) return -E2BIG;
    memcpy(h.sid, s->sid, UTIL_ID_LEN);
    memcpy(h.pid, s->pid, pl);
    h.created_seq = s->created_seq;
    h.attach_seq = s->attach_seq;
    h.delivered_seq = s->delivered_seq;
    h.created_ms = s->created_ms;
    h.nsp_len = (uint32_t)nl;
    h.data_len = (uint32_t)s->data_len;
    MDB_val k = {UTIL_ID_LEN, (void *)s->id}, v = {sizeof h + nl + s->data_len, NULL};
    int rc = mdb_put(t->txn, t->s->sockets, &k, &v, MDB_RESERVE);
    if (rc) return rc_of(rc);
    char *p = v.mv_data;
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, s->nsp, nl);
    if (s->data_len) memcpy(p + sizeof h + nl, s->data, s->data_len);
    if (pl) {
        MDB_val pk = {UTIL_ID_LEN, (void *)s->pid}, pv = {UTIL_ID_LEN, (void *)s->id};
        if ((rc = mdb_put(t->txn, t->s->pids, &pk, &pv, 0))) return rc_of(rc);
    }
    return link_put(t, s->sid, s->id);
}

int store_socket_get(store_txn *t, const char *id, store_socket *out) {
    MDB_val k = sval(id), v;
    int rc = mdb_get(t->txn, t->s->sockets, &k, &v);
    if (rc) return rc_of(rc);
    return sock_decode(&k, &v, out);
}

/* Rewrites the header of socket id with fn (the value is copied first: the
 * record moves when it is written back). *old gets the header before. */
static int sock_rewrite(store_txn *t, const char *id, sock_hdr *old,
                        void (*fn)(sock_hdr *h, const void *arg), const void *arg) {
    MDB_val k = {UTIL_ID_LEN, (void *)id}, v;
    if (strlen(id) != UTIL_ID_LEN) return STORE_NOTFOUND;
    int rc = mdb_get(t->txn, t->s->sockets, &k, &v);
    if (rc) return rc_of(rc);
    if (v.mv_size < sizeof *old) return STORE_EIO;
    char *copy = malloc(v.mv_size);
    if (!copy) return -ENOMEM;
    memcpy(copy, v.mv_data, v.mv_size);
    memcpy(old, copy, sizeof *old);
    sock_hdr h = *old;
    fn(&h, arg);
    memcpy(copy, &h, sizeof h);
    v.mv_data = copy;
    rc = rc_of(mdb_put(t->txn, t->s->sockets, &k, &v, 0));
    free(copy);
    return rc;
}

typedef struct detach_arg {
    int64_t ms;
    uint64_t acked;
} detach_arg;

static void set_detached(sock_hdr *h, const void *arg) {
    const detach_arg *a = arg;
    h->detached_ms = a->ms;
    if (a->acked >= h->attach_seq && a->acked > h->delivered_seq) h->delivered_seq = a->acked;
}

int store_socket_detach(store_txn *t, const char *id, int64_t detached_ms, uint64_t acked) {
    if (detached_ms <= 0) return -EINVAL;
    detach_arg a = {detached_ms, acked};
    sock_hdr old;
    int rc = sock_rewrite(t, id, &old, set_detached, &a);
    if (!rc && !old.detached_ms) rc = del_missing_ok(t, t->s->sess_socks, old.sid, UTIL_ID_LEN, id, UTIL_ID_LEN);
    MDB_val k = {UTIL_ID_LEN, (void *)id}, v = {sizeof detached_ms, &detached_ms};
    if (!rc) rc = rc_of(mdb_put(t->txn, t->s->detached, &k, &v, 0));
    return rc;
}

typedef struct attach_arg {
    const char *sid;
    uint64_t seq;
} attach_arg;

static void set_attached(sock_hdr *h, const void *arg) {
    const attach_arg *a = arg;
    memcpy(h->sid, a->sid, UTIL_ID_LEN);
    h->attach_seq = a->seq;
    h->detached_ms = 0;
}

int store_socket_attach(store_txn *t, const char *id, const char *sid, uint64_t attach_seq) {
    if (strlen(sid) != UTIL_ID_LEN) return -EINVAL;
    attach_arg a = {sid, attach_seq};
    sock_hdr old;
    int rc = sock_rewrite(t, id, &old, set_attached, &a);
    if (rc) return rc;
    rc = old.detached_ms ? del_missing_ok(t, t->s->detached, id, UTIL_ID_LEN, NULL, 0)
                         : del_missing_ok(t, t->s->sess_socks, old.sid, UTIL_ID_LEN, id, UTIL_ID_LEN);
    return rc ? rc : link_put(t, sid, id);
}

int store_pid_socket(store_txn *t, const char *pid, char id[UTIL_ID_LEN + 1]) {
    if (strlen(pid) != UTIL_ID_LEN) return STORE_NOTFOUND;
    MDB_val k = {UTIL_ID_LEN, (void *)pid}, v;
    int rc = mdb_get(t->txn, t->s->pids, &k, &v);
    if (rc) return rc_of(rc);
    if (v.mv_size != UTIL_ID_LEN) return STORE_EIO;
    memcpy(id, v.mv_data, UTIL_ID_LEN);
    id[UTIL_ID_LEN] = 0;
    return 0;
}

int store_detached_each(store_txn *t, int (*cb)(void *, const char *, int64_t), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->detached, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != UTIL_ID_LEN || v.mv_size != 8) continue;
        char id[UTIL_ID_LEN + 1];
        memcpy(id, k.mv_data, UTIL_ID_LEN);
        id[UTIL_ID_LEN] = 0;
        int64_t ms;
        memcpy(&ms, v.mv_data, 8);
        if ((ret = cb(arg, id, ms))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

static size_t room_key(char *key, const char *nsp, const char *room, size_t room_len) {
    size_t nl = strlen(nsp);
    memcpy(key, nsp, nl);
    key[nl] = 0;
    memcpy(key + nl + 1, room, room_len);
    return nl + 1 + room_len;
}

static int room_del_open(store_txn *t, const char *nsp, const char *room, size_t room_len,
                         const char *id, uint64_t leave_seq);

int store_socket_del(store_txn *t, const char *id) {
    store_socket s;
    int rc = store_socket_get(t, id, &s);
    if (rc) return rc;
    char nsp[129], sid[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    strcpy(nsp, s.nsp);
    strcpy(sid, s.sid);
    strcpy(pid, s.pid);
    int detached = s.detached_ms != 0;
    /* Leave every room (the memberships go: nothing reads for it any more). */
    MDB_cursor *c;
    rc = mdb_cursor_open(t->txn, t->s->sock_rooms, &c);
    if (rc) return rc_of(rc);
    MDB_val k = {UTIL_ID_LEN, (void *)id}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size > STORE_ROOM_MAX) continue;
        int r = room_del_open(t, nsp, v.mv_data, v.mv_size, id, 0);
        if (r && r != STORE_NOTFOUND) { mdb_cursor_close(c); return r; }
    }
    mdb_cursor_close(c);
    k = (MDB_val){UTIL_ID_LEN, (void *)id};
    rc = mdb_del(t->txn, t->s->sock_rooms, &k, NULL);
    if (rc && rc != MDB_NOTFOUND) return rc_of(rc);
    if (!detached && (rc = del_missing_ok(t, t->s->sess_socks, sid, UTIL_ID_LEN, id, UTIL_ID_LEN)))
        return rc;
    if (detached && (rc = del_missing_ok(t, t->s->detached, id, UTIL_ID_LEN, NULL, 0))) return rc;
    if (pid[0] && (rc = del_missing_ok(t, t->s->pids, pid, UTIL_ID_LEN, NULL, 0))) return rc;
    return rc_of(mdb_del(t->txn, t->s->sockets, &k, NULL));
}

int store_session_sockets(store_txn *t, const char *sid,
                          int (*cb)(void *, const store_socket *), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->sess_socks, &c);
    if (rc) return rc_of(rc);
    MDB_val k = sval(sid), v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        MDB_val sk = v, sv;
        store_socket s;
        if (mdb_get(t->txn, t->s->sockets, &sk, &sv) || sock_decode(&sk, &sv, &s)) continue;
        if ((ret = cb(arg, &s))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_socket_each(store_txn *t, int (*cb)(void *, const store_socket *), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->sockets, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        store_socket s;
        if (sock_decode(&k, &v, &s)) continue;
        if ((ret = cb(arg, &s))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

/* ---- rooms ------------------------------------------------------------- */
/* A membership: socket id + join seq + leave seq (big endian, so that the
 * intervals of one id sort oldest first). */
#define MEMBER_LEN (UTIL_ID_LEN + 16)
#define ROOM_KEY_MAX (128 + 1 + STORE_ROOM_MAX)

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) p[i] = (unsigned char)v, v >>= 8;
}
static uint64_t get_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static void member_make(unsigned char *m, const char *id, uint64_t join, uint64_t leave) {
    memcpy(m, id, UTIL_ID_LEN);
    put_be64(m + UTIL_ID_LEN, join);
    put_be64(m + UTIL_ID_LEN + 8, leave);
}

/* Walks the intervals of id in the room at key (a cursor on rooms, left on
 * the last one looked at): cb returns non-zero to stop (returned). */
typedef int (*interval_cb)(void *arg, MDB_cursor *c, uint64_t join, uint64_t leave);

static int intervals_walk(store_txn *t, const char *nsp, const char *room, size_t room_len,
                          const char *id, interval_cb cb, void *arg) {
    if (room_len > STORE_ROOM_MAX || strlen(nsp) > 128 || strlen(id) != UTIL_ID_LEN)
        return STORE_NOTFOUND;
    char key[ROOM_KEY_MAX];
    MDB_val k = {room_key(key, nsp, room, room_len), key}, v = {UTIL_ID_LEN, (void *)id};
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->rooms, &c);
    if (rc) return rc_of(rc);
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != MEMBER_LEN || memcmp(v.mv_data, id, UTIL_ID_LEN)) break;
        const unsigned char *m = v.mv_data;
        if ((ret = cb(arg, c, get_be64(m + UTIL_ID_LEN), get_be64(m + UTIL_ID_LEN + 8)))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

typedef struct open_find {
    uint64_t join;
    int found;
} open_find;

static int find_open_cb(void *arg, MDB_cursor *c, uint64_t join, uint64_t leave) {
    (void)c;
    open_find *f = arg;
    if (leave != STORE_SEQ_OPEN) return 0;
    f->join = join;
    f->found = 1;
    return 1;
}

int store_room_has(store_txn *t, const char *nsp, const char *room, size_t room_len,
                   const char *id, uint64_t *join_seq) {
    open_find f = {0, 0};
    int rc = intervals_walk(t, nsp, room, room_len, id, find_open_cb, &f);
    if (rc < 0) return rc;
    if (!f.found) return STORE_NOTFOUND;
    if (join_seq) *join_seq = f.join;
    return 0;
}

typedef struct ival_ctx {
    int (*cb)(void *arg, uint64_t join, uint64_t leave);
    void *arg;
} ival_ctx;

static int ival_cb(void *arg, MDB_cursor *c, uint64_t join, uint64_t leave) {
    (void)c;
    ival_ctx *x = arg;
    return x->cb(x->arg, join, leave);
}

int store_room_intervals(store_txn *t, const char *nsp, const char *room, size_t room_len,
                         const char *id, int (*cb)(void *, uint64_t, uint64_t), void *arg) {
    ival_ctx x = {cb, arg};
    int rc = intervals_walk(t, nsp, room, room_len, id, ival_cb, &x);
    return rc == STORE_NOTFOUND ? 0 : rc;
}

int store_room_join(store_txn *t, const char *nsp, const char *room, const char *id,
                    uint64_t join_seq) {
    size_t rl = strlen(room);
    if (rl == 0 || rl > STORE_ROOM_MAX) return -EINVAL;
    if (strlen(nsp) > 128 || strlen(id) != UTIL_ID_LEN) return -EINVAL;
    int rc = store_room_has(t, nsp, room, rl, id, NULL);
    if (rc == 0) return 0;
    if (rc != STORE_NOTFOUND) return rc;
    char key[ROOM_KEY_MAX];
    unsigned char val[MEMBER_LEN];
    member_make(val, id, join_seq, STORE_SEQ_OPEN);
    MDB_val k = {room_key(key, nsp, room, rl), key}, v = {sizeof val, val};
    rc = mdb_put(t->txn, t->s->rooms, &k, &v, MDB_NODUPDATA);
    if (rc && rc != MDB_KEYEXIST) return rc_of(rc);
    MDB_val sk = {UTIL_ID_LEN, (void *)id}, sv = {rl, (void *)room};
    rc = mdb_put(t->txn, t->s->sock_rooms, &sk, &sv, MDB_NODUPDATA);
    return rc == MDB_KEYEXIST ? 0 : rc_of(rc);
}

typedef struct close_ctx {
    uint64_t join;
    int found;
} close_ctx;

static int del_open_cb(void *arg, MDB_cursor *c, uint64_t join, uint64_t leave) {
    close_ctx *x = arg;
    if (leave != STORE_SEQ_OPEN) return 0;
    x->join = join;
    x->found = 1;
    int rc = mdb_cursor_del(c, 0);
    return rc ? rc_of(rc) : 1;
}

/* Removes the open membership of id in room; with leave_seq > its join, an
 * ended interval (join, leave_seq] takes its place (and goes in leaves). */
static int room_del_open(store_txn *t, const char *nsp, const char *room, size_t room_len,
                         const char *id, uint64_t leave_seq) {
    close_ctx x = {0, 0};
    int rc = intervals_walk(t, nsp, room, room_len, id, del_open_cb, &x);
    if (rc < 0) return rc;
    if (!x.found) return STORE_NOTFOUND;
    if (leave_seq <= x.join) return 0; /* no record could have reached it */
    char key[ROOM_KEY_MAX + MEMBER_LEN];
    unsigned char val[MEMBER_LEN];
    member_make(val, id, x.join, leave_seq);
    size_t kl = room_key(key, nsp, room, room_len);
    MDB_val k = {kl, key}, v = {sizeof val, val};
    rc = mdb_put(t->txn, t->s->rooms, &k, &v, MDB_NODUPDATA);
    if (rc && rc != MDB_KEYEXIST) return rc_of(rc);
    /* leaves: leave seq -> room key + '\0' + id + join */
    key[kl] = 0;
    memcpy(key + kl + 1, val, UTIL_ID_LEN + 8);
    MDB_val lk = {sizeof leave_seq, &leave_seq}, lv = {kl + 1 + UTIL_ID_LEN + 8, key};
    rc = mdb_put(t->txn, t->s->leaves, &lk, &lv, MDB_NODUPDATA);
    return rc == MDB_KEYEXIST ? 0 : rc_of(rc);
}

int store_room_leave(store_txn *t, const char *nsp, const char *room, const char *id,
                     uint64_t leave_seq) {
    size_t rl = strlen(room);
    if (rl == 0 || rl > STORE_ROOM_MAX || strlen(nsp) > 128) return STORE_NOTFOUND;
    int rc = room_del_open(t, nsp, room, rl, id, leave_seq);
    if (rc) return rc;
    MDB_val sk = {UTIL_ID_LEN, (void *)id}, sv = {rl, (void *)room};
    rc = mdb_del(t->txn, t->s->sock_rooms, &sk, &sv);
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_room_gc(store_txn *t, uint64_t upto, size_t *n) {
    MDB_cursor *c;
    size_t done = 0;
    int rc = mdb_cursor_open(t->txn, t->s->leaves, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) {
        uint64_t leave;
        if (k.mv_size != 8) break;
        memcpy(&leave, k.mv_data, 8);
        if (leave > upto) break;
        /* v: room key '\0' id join */
        if (v.mv_size > UTIL_ID_LEN + 9) {
            size_t kl = v.mv_size - UTIL_ID_LEN - 9;
            unsigned char m[MEMBER_LEN];
            memcpy(m, (const char *)v.mv_data + kl + 1, UTIL_ID_LEN + 8);
            put_be64(m + UTIL_ID_LEN + 8, leave);
            MDB_val rk = {kl, v.mv_data}, rv = {sizeof m, m};
            int d = mdb_del(t->txn, t->s->rooms, &rk, &rv);
            if (d && d != MDB_NOTFOUND) { rc = d; break; }
        }
        if ((rc = mdb_cursor_del(c, 0))) break;
        done++;
    }
    mdb_cursor_close(c);
    if (n) *n = done;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_room_members(store_txn *t, const char *nsp, const char *room, size_t room_len, int past,
                       int (*cb)(void *, const char *, uint64_t), void *arg) {
    if (room_len > STORE_ROOM_MAX || strlen(nsp) > 128) return 0;
    char key[ROOM_KEY_MAX];
    MDB_val k = {room_key(key, nsp, room, room_len), key}, v;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->rooms, &c);
    if (rc) return rc_of(rc);
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != MEMBER_LEN) continue;
        const unsigned char *m = v.mv_data;
        if (!past && get_be64(m + UTIL_ID_LEN + 8) != STORE_SEQ_OPEN) continue;
        char id[UTIL_ID_LEN + 1];
        memcpy(id, m, UTIL_ID_LEN);
        id[UTIL_ID_LEN] = 0;
        if ((ret = cb(arg, id, get_be64(m + UTIL_ID_LEN)))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_room_each(store_txn *t, const char *nsp,
                    int (*cb)(void *, const char *, size_t, size_t), void *arg) {
    size_t nl = strlen(nsp);
    if (nl > 128) return 0;
    char prefix[130];
    memcpy(prefix, nsp, nl);
    prefix[nl] = 0;
    MDB_val k = {nl + 1, prefix}, v;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->rooms, &c);
    if (rc) return rc_of(rc);
    int ret = 0;
    char cur[ROOM_KEY_MAX];
    size_t curlen = 0, count = 0;
    /* Every membership of the namespace in key order; a room is reported
     * once its entries are counted (current members only). */
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < nl + 1 || memcmp(k.mv_data, prefix, nl + 1) || k.mv_size > sizeof cur) break;
        if (k.mv_size != curlen || memcmp(k.mv_data, cur, curlen)) {
            if (count && (ret = cb(arg, cur + nl + 1, curlen - nl - 1, count))) break;
            memcpy(cur, k.mv_data, k.mv_size);
            curlen = k.mv_size;
            count = 0;
        }
        if (v.mv_size == MEMBER_LEN &&
            get_be64((const unsigned char *)v.mv_data + UTIL_ID_LEN + 8) == STORE_SEQ_OPEN)
            count++;
    }
    if (!ret && count) ret = cb(arg, cur + nl + 1, curlen - nl - 1, count);
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc_of(rc);
}

int store_socket_rooms(store_txn *t, const char *id,
                       int (*cb)(void *, const char *, size_t), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->sock_rooms, &c);
    if (rc) return rc_of(rc);
    MDB_val k = sval(id), v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP))
        if ((ret = cb(arg, v.mv_data, v.mv_size))) break;
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_socket_room_count(store_txn *t, const char *id, size_t *n) {
    MDB_cursor *c;
    *n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->sock_rooms, &c);
    if (rc) return rc_of(rc);
    MDB_val k = sval(id), v;
    size_t cnt = 0;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    if (rc == 0) rc = mdb_cursor_count(c, &cnt);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) return 0;
    *n = (size_t)cnt;
    return rc_of(rc);
}

/* ---- log --------------------------------------------------------------- */

static int meta_u64(store_txn *t, const char *key, uint64_t *out) {
    MDB_val k = sval(key), v;
    int rc = mdb_get(t->txn, t->s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) { *out = 0; return 0; }
    if (rc) return rc_of(rc);
    if (v.mv_size != 8) return STORE_EIO;
    memcpy(out, v.mv_data, 8);
    return 0;
}

static int meta_put_u64(store_txn *t, const char *key, uint64_t val) {
    MDB_val k = sval(key), v = {8, &val};
    return rc_of(mdb_put(t->txn, t->s->meta, &k, &v, 0));
}

/* The out log and the inbox share one implementation: a DB of uint64 keys,
 * with its head and byte count in meta. */
typedef struct log_id {
    MDB_dbi dbi;
    const char *head_key, *bytes_key;
} log_id;

static log_id out_log(store_txn *t) { return (log_id){t->s->log, "log_head", "log_bytes"}; }
static log_id in_log(store_txn *t) { return (log_id){t->s->inbox, "inbox_head", "inbox_bytes"}; }

static int log_append(store_txn *t, log_id l, const void *rec, size_t len, uint64_t *seq) {
    uint64_t head, bytes;
    int rc = meta_u64(t, l.head_key, &head);
    if (!rc) rc = meta_u64(t, l.bytes_key, &bytes);
    if (rc) return rc;
    uint64_t s = head + 1;
    MDB_val k = {sizeof s, &s}, v = {len, (void *)rec};
    rc = rc_of(mdb_put(t->txn, l.dbi, &k, &v, MDB_APPEND));
    if (!rc) rc = meta_put_u64(t, l.head_key, s);
    if (!rc) rc = meta_put_u64(t, l.bytes_key, bytes + len);
    if (!rc && seq) *seq = s;
    return rc;
}

static int log_bounds(store_txn *t, log_id l, uint64_t *first, uint64_t *head) {
    uint64_t h;
    int rc = meta_u64(t, l.head_key, &h);
    if (rc) return rc;
    if (head) *head = h;
    if (first) {
        MDB_cursor *c;
        rc = mdb_cursor_open(t->txn, l.dbi, &c);
        if (rc) return rc_of(rc);
        MDB_val k, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        if (rc == 0 && k.mv_size == 8) memcpy(first, k.mv_data, 8);
        else *first = h + 1;
        mdb_cursor_close(c);
    }
    return 0;
}

static int log_scan(store_txn *t, log_id l, uint64_t after, uint64_t until,
                    int (*cb)(void *, uint64_t, const void *, size_t), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, l.dbi, &c);
    if (rc) return rc_of(rc);
    uint64_t from = after + 1;
    MDB_val k = {8, &from}, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        memcpy(&seq, k.mv_data, 8);
        if (seq > until) break;
        if ((ret = cb(arg, seq, v.mv_data, v.mv_size))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

static int log_trim(store_txn *t, log_id l, uint64_t upto, size_t *freed) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, l.dbi, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    size_t total = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        memcpy(&seq, k.mv_data, 8);
        if (seq > upto) break;
        total += v.mv_size;
        if ((rc = mdb_cursor_del(c, 0))) break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) return rc_of(rc);
    uint64_t bytes;
    rc = meta_u64(t, l.bytes_key, &bytes);
    if (!rc) rc = meta_put_u64(t, l.bytes_key, bytes > total ? bytes - total : 0);
    if (freed) *freed = total;
    return rc;
}

int store_log_append(store_txn *t, const void *rec, size_t len, uint64_t *seq) {
    return log_append(t, out_log(t), rec, len, seq);
}
int store_log_bounds(store_txn *t, uint64_t *first, uint64_t *head) {
    return log_bounds(t, out_log(t), first, head);
}
int store_log_scan(store_txn *t, uint64_t after, uint64_t until,
                   int (*cb)(void *, uint64_t, const void *, size_t), void *arg) {
    return log_scan(t, out_log(t), after, until, cb, arg);
}
int store_log_trim(store_txn *t, uint64_t upto, size_t *freed) {
    return log_trim(t, out_log(t), upto, freed);
}
int store_log_size(store_txn *t, uint64_t *bytes) { return meta_u64(t, "log_bytes", bytes); }

int store_inbox_append(store_txn *t, const void *rec, size_t len, uint64_t *seq) {
    t->inbox = 1;
    return log_append(t, in_log(t), rec, len, seq);
}
int store_inbox_bounds(store_txn *t, uint64_t *first, uint64_t *head) {
    return log_bounds(t, in_log(t), first, head);
}
int store_inbox_scan(store_txn *t, uint64_t after, uint64_t until,
                     int (*cb)(void *, uint64_t, const void *, size_t), void *arg) {
    return log_scan(t, in_log(t), after, until, cb, arg);
}
int store_inbox_trim(store_txn *t, uint64_t upto) { return log_trim(t, in_log(t), upto, NULL); }

/* ---- handshakes -------------------------------------------------------------- */

int store_handshake_put(store_txn *t, const char *sid, const char *json, size_t len) {
    MDB_val k = sval(sid), v = {len, (void *)json};
    return rc_of(mdb_put(t->txn, t->s->handshakes, &k, &v, 0));
}

int store_handshake_get(store_txn *t, const char *sid, const char **json, size_t *len) {
    MDB_val k = sval(sid), v;
    int rc = mdb_get(t->txn, t->s->handshakes, &k, &v);
    if (rc) return rc_of(rc);
    *json = v.mv_data;
    *len = v.mv_size;
    return 0;
}

/* ---- readers ----------------------------------------------------------- */

int store_reader_put(store_txn *t, const char *name, uint64_t seq) {
    MDB_val k = sval(name), v = {8, &seq};
    return rc_of(mdb_put(t->txn, t->s->readers, &k, &v, 0));
}

int store_reader_get(store_txn *t, const char *name, uint64_t *seq) {
    MDB_val k = sval(name), v;
    int rc = mdb_get(t->txn, t->s->readers, &k, &v);
    if (rc) return rc_of(rc);
    if (v.mv_size != 8) return STORE_EIO;
    memcpy(seq, v.mv_data, 8);
    return 0;
}

int store_reader_del(store_txn *t, const char *name) {
    MDB_val k = sval(name);
    int rc = mdb_del(t->txn, t->s->readers, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

int store_reader_each(store_txn *t, int (*cb)(void *, const char *, uint64_t), void *arg) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->s->readers, &c);
    if (rc) return rc_of(rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char name[256];
        if (k.mv_size >= sizeof name || v.mv_size != 8) continue;
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        uint64_t seq;
        memcpy(&seq, v.mv_data, 8);
        if ((ret = cb(arg, name, seq))) break;
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    return rc == MDB_NOTFOUND ? 0 : rc_of(rc);
}

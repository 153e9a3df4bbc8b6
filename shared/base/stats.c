/* stats: the counters shared by every process, in a mapped file (see
 * stats.h). */
#include "base/stats.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATS_MAGIC 0x31535453206f6973ULL /* "sio STS1" */
#define STATS_VERSION 1
#define STATS_SLOTS 255 /* processes at once; more count into the base slot */

/* The file: a header, the base slot (0), then the process slots. */
typedef struct stats_slot {
    _Atomic int32_t pid; /* 0: free (always 0 for the base slot) */
    uint32_t pad;
    char name[16];       /* the program's name, for status */
    char pad2[40];
    _Atomic uint64_t c[STATS_NCOUNTERS];
} __attribute__((aligned(64))) stats_slot;

typedef struct stats_hdr {
    uint64_t magic;
    uint32_t version, ncounters, nslots, slot_size;
    /* Odd while a fold moves counts into the base slot: readers retry. */
    _Atomic uint64_t gen;
} __attribute__((aligned(64))) stats_hdr;

typedef struct stats_map {
    stats_hdr h;
    stats_slot slot[STATS_SLOTS + 1];
} stats_map;

static _Atomic uint64_t dummy[STATS_NCOUNTERS];
_Atomic uint64_t *stats_mine_ = dummy;

static stats_map *map;
static int map_fd = -1;
static stats_slot *mine;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const reason_names[STATS_NREASONS] = {
    "transport close", "transport error", "ping timeout", "parse error", "forced close",
    "client namespace disconnect", "server namespace disconnect", "server shutting down", "other",
};

const char *stats_reason_name(int r) {
    return r >= 0 && r < STATS_NREASONS ? reason_names[r] : "other";
}

int stats_reason_of(const char *name) {
    for (int r = 0; name && r < STATS_NREASONS; r++)
        if (!strcmp(name, reason_names[r])) return r;
    return STATS_R_OTHER;
}

const char *stats_transport_name(int t) { return t == STATS_T_WEBSOCKET ? "websocket" : "polling"; }

/* Moves slot s's counts into the base slot (file lock held). */
static void fold(stats_slot *s) {
    atomic_fetch_add_explicit(&map->h.gen, 1, memory_order_acq_rel);
    for (int c = 0; c < STATS_NCOUNTERS; c++) {
        uint64_t v = atomic_exchange_explicit(&s->c[c], 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&map->slot[0].c[c], v, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&map->h.gen, 1, memory_order_acq_rel);
}

/* Folds and frees the slots of dead processes (file lock held). */
static int fold_dead_locked(void) {
    int n = 0;
    for (int i = 1; i <= STATS_SLOTS; i++) {
        stats_slot *s = &map->slot[i];
        int pid = atomic_load(&s->pid);
        if (!pid || pid == getpid() || util_pid_alive(pid)) continue;
        fold(s);
        atomic_store(&s->pid, 0);
        n++;
    }
    return n;
}

/* Maps the file at fd, giving it our layout when it has another (file lock
 * held). */
static int map_file(int fd) {
    struct stat st;
    if (fstat(fd, &st)) return -errno;
    int fresh = st.st_size != (off_t)sizeof(stats_map);
    if (fresh && (ftruncate(fd, 0) || ftruncate(fd, sizeof(stats_map)))) return -errno;
    void *p = mmap(NULL, sizeof(stats_map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -errno;
    stats_map *m = p;
    if (!fresh && (m->h.magic != STATS_MAGIC || m->h.version != STATS_VERSION ||
                   m->h.ncounters != STATS_NCOUNTERS || m->h.nslots != STATS_SLOTS ||
                   m->h.slot_size != sizeof(stats_slot))) {
        memset(m, 0, sizeof *m); /* another layout: start again */
        fresh = 1;
    }
    if (fresh) {
        m->h.ncounters = STATS_NCOUNTERS;
        m->h.nslots = STATS_SLOTS;
        m->h.slot_size = sizeof(stats_slot);
        m->h.version = STATS_VERSION;
        m->h.magic = STATS_MAGIC;
    }
    map = m;
    return 0;
}

int stats_open(const char *dir) {
    pthread_mutex_lock(&open_lock);
    if (map) {
        pthread_mutex_unlock(&open_lock);
        return 0;
    }
    char path[PATH_MAX];
    int rc = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, STATS_FILE) >= (int)sizeof path) rc = -ENAMETOOLONG;
    int fd = rc ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (!rc && fd < 0) rc = -errno;
    if (!rc && flock(fd, LOCK_EX)) rc = -errno;
    if (!rc) rc = map_file(fd);
    if (!rc) {
        fold_dead_locked();
        stats_slot *got = NULL;
        for (int i = 1; i <= STATS_SLOTS && !got; i++) /* ours from an earlier life of this pid? */
            if (atomic_load(&map->slot[i].pid) == getpid()) got = &map->slot[i];
        for (int i = 1; i <= STATS_SLOTS && !got; i++) {
            int32_t zero = 0;
            if (atomic_compare_exchange_strong(&map->slot[i].pid, &zero, (int32_t)getpid()))
                got = &map->slot[i];
        }
        if (got) {
            snprintf(got->name, sizeof got->name, "%s", program_invocation_short_name);
            mine = got;
        }
        stats_mine_ = got ? got->c : map->slot[0].c;
    }
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        if (rc) close(fd);
        else map_fd = fd;
    }
    pthread_mutex_unlock(&open_lock);
    return rc;
}

void stats_close(void) {
    pthread_mutex_lock(&open_lock);
    if (map && mine && !flock(map_fd, LOCK_EX)) {
        /* The mapping stays: a thread still counting lands in the freed
         * slot, which the next process to claim it keeps (still summed). */
        stats_mine_ = map->slot[0].c;
        fold(mine);
        atomic_store(&mine->pid, 0);
        mine = NULL;
        flock(map_fd, LOCK_UN);
    }
    pthread_mutex_unlock(&open_lock);
}

int stats_fold_dead(void) {
    if (!map) return -EBADF;
    pthread_mutex_lock(&open_lock);
    int n = flock(map_fd, LOCK_EX) ? -errno : fold_dead_locked();
    if (n >= 0) flock(map_fd, LOCK_UN);
    pthread_mutex_unlock(&open_lock);
    return n;
}

int stats_read(uint64_t out[STATS_NCOUNTERS]) {
    if (!map) return -EBADF;
    for (;;) {
        uint64_t g = atomic_load_explicit(&map->h.gen, memory_order_acquire);
        if (g & 1) {
            sched_yield();
            continue;
        }
        memset(out, 0, sizeof(uint64_t) * STATS_NCOUNTERS);
        for (int i = 0; i <= STATS_SLOTS; i++) {
            stats_slot *s = &map->slot[i]; /* free slots too: a late add lands there */
            for (int c = 0; c < STATS_NCOUNTERS; c++)
                out[c] += atomic_load_explicit(&s->c[c], memory_order_relaxed);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&map->h.gen, memory_order_relaxed) == g) return 0;
    }
}

int stats_processes(stats_proc *out, int max) {
    if (!map) return 0;
    int n = 0;
    for (int i = 1; i <= STATS_SLOTS; i++) {
        stats_slot *s = &map->slot[i];
        int pid = atomic_load(&s->pid);
        if (!pid || !util_pid_alive(pid)) continue;
        if (n < max) {
            out[n].pid = pid;
            memcpy(out[n].name, s->name, sizeof out[n].name);
            out[n].name[sizeof out[n].name - 1] = 0;
        }
        n++;
    }
    return n;
}

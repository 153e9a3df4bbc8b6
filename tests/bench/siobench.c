/* siobench: the load generator of `make bench` (tests/bench/run).
 *
 * Speaks Engine.IO v4 / Socket.IO v5 directly: its own WebSocket client
 * (RFC 6455 handshake with the Sec-WebSocket-Accept check, masked frames,
 * fragments, control frames) and its own HTTP/1.1 keep-alive long-polling
 * client (Content-Length, chunked, or read-until-close bodies).  epoll, one
 * event loop per worker thread (-t, default 1), and for `conn` one process
 * per share of the clients (--procs) because of the per-process fd limit.
 * The servers under test implement the bench protocol (tests/bench/README.md).
 *
 *   siobench fanout -c N -d S     N WebSocket clients; client 0 sends
 *                                 bench:start; deliveries/s after the warm-up
 *                                 and missing = sent x clients - received;
 *                                 --trigger-port P: client 0 on another
 *                                 server of a cluster than the rest
 *   siobench echo -c K -d S [--rate R]
 *                                 42<id>["echo",<t>] -> 43<id>[<t>]: acks/s in
 *                                 closed loop (--window in flight per client),
 *                                 or R msgs/s in total; p50/p99/max round trip
 *   siobench conn -c N [--src-ips A,B,..] [--procs P]
 *                                 connects/s of N clients, hold, then the RSS
 *                                 of the server processes minus their idle RSS
 *   siobench poll -c N -d S [--rate R] [--stamp]
 *                                 fanout to N long-polling clients (two
 *                                 keep-alive connections each: a held GET and
 *                                 a POST); --stamp: latency from the "t" field
 *   siobench emit-latency -c N (--sioctl PATH [--state DIR] | --emit-cmd CMD)
 *                                 N WebSocket clients; runs `sioctl emit
 *                                 bench:emit <wall-clock us>` (or CMD with {ts}
 *                                 replaced) --count times; emit-to-delivery
 *                                 p50/p99 over every delivery
 *   siobench soak -c N -d S --sioctl PATH --state DIR -r EMITS/S --churn R [--polling P]
 *                                 N clients (P of them polling) follow the
 *                                 stream of `sioctl emit soak I` while R a
 *                                 second break (and recover), leave or
 *                                 abandon their socket; counts lost,
 *                                 duplicated and reordered deliveries and
 *                                 sockets not recovered (see run_soak)
 *
 * Each mode prints ONE result line of key=value pairs on stdout, with
 * client_cpu_pct (this process, 100 = one core) and, with --pid/--pid-tree,
 * server_cpu_pct and server_rss_kb summed over the server's processes;
 * progress goes to stderr (-q: none).  Every wait is bounded, and a watchdog
 * ends the run if something still hangs. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- options ------------------------------------------------------------- */

enum { M_FANOUT = 1, M_ECHO, M_CONN, M_POLL, M_EMIT, M_SOAK, M_SELFTEST };

#define MAX_PIDS 64
#define MAX_SRC 64

static struct {
    int mode;
    const char *mode_name;
    const char *host;
    int port;
    int trigger_port; /* fanout: client 0 (it sends bench:start) connects here (a cluster) */
    int port2;        /* clients with an odd index connect here (two web servers, one backend) */
    int post_close;   /* poll: POSTs say "Connection: close" (one descriptor per client) */
    const char *path;
    const char *nsp;
    int clients, threads, procs, pending, window, size, batch, count, quiet, stamp, search, max_steps;
    int polling; /* soak: clients on long-polling */
    double duration, warmup, hold, timeout, rate, conn_rate, interval, growth, max_ramp;
    double churn, report, drain; /* soak */
    pid_t pids[MAX_PIDS];
    int npids;
    pid_t trees[MAX_PIDS];
    int ntrees;
    struct in_addr src[MAX_SRC];
    int nsrc;
    struct in_addr dst;
    const char *sioctl, *state, *emit_cmd, *tag;
} O = {
    .host = "127.0.0.1", .port = 3000, .path = "/socket.io/", .nsp = "/", .clients = 100,
    .threads = 1, .pending = 256, .window = 1, .size = 32, .batch = 1, .count = 100, .max_steps = 30,
    .duration = 10, .warmup = 2, .hold = 5, .timeout = 10, .interval = 0.05, .growth = 1.25,
    .report = 10, .drain = 60,
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "siobench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
    if (O.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", O.mode_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- time, randomness ------------------------------------------------------ */

static int64_t mono_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int64_t wall_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void sleep_us(int64_t us) {
    if (us <= 0) return;
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&t, &t) < 0 && errno == EINTR) {
    }
}

static _Thread_local uint64_t rng_state;

static uint64_t rng64(void) {
    if (!rng_state) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state)
            rng_state = (uint64_t)wall_us() ^ (uint64_t)pthread_self();
        rng_state |= 1;
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* ---- SHA-1 and base64 (for Sec-WebSocket-Accept) ---------------------------- */

static uint32_t rol32(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol32(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const void *data, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; p += 64, left -= 64) sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128) sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static size_t b64_encode(const uint8_t *in, size_t n, char *out) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? (uint32_t)in[i + 2] : 0);
        out[o++] = T[v >> 18 & 63];
        out[o++] = T[v >> 12 & 63];
        out[o++] = i + 1 < n ? T[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? T[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static void ws_accept_for(const char *key_b64, char out[29]) {
    char cat[128];
    int n = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key_b64);
    uint8_t d[20];
    sha1(cat, (size_t)n, d);
    b64_encode(d, 20, out);
}

/* ---- buffers and samples ----------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    uint32_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t extra) {
    size_t need = (size_t)b->len + extra;
    if (need <= b->cap) return;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < need) nc *= 2;
    if (nc > UINT32_MAX) die("buffer too large");
    uint8_t *n = realloc(b->p, nc);
    if (!n) die("out of memory");
    b->p = n;
    b->cap = (uint32_t)nc;
}

static void buf_add(buf *b, const void *d, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += (uint32_t)n;
}

static void buf_consume(buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= (uint32_t)n;
}

static void buf_free(buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

#define SAMPLES_MAX (16u << 20)

typedef struct samples {
    uint32_t *v;
    size_t n, cap;
} samples;

static void sample_add(samples *s, int64_t x) {
    if (x < 0) x = 0;
    if (x > (int64_t)UINT32_MAX) x = UINT32_MAX;
    if (s->n == s->cap) {
        if (s->cap >= SAMPLES_MAX) return;
        size_t nc = s->cap ? s->cap * 2 : 4096;
        uint32_t *n = realloc(s->v, nc * sizeof *n);
        if (!n) return;
        s->v = n;
        s->cap = nc;
    }
    s->v[s->n++] = (uint32_t)x;
}

static void samples_merge(samples *dst, const samples *src) {
    for (size_t i = 0; i < src->n; i++) sample_add(dst, src->v[i]);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void samples_sort(samples *s) {
    if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_u32);
}

/* p in [0,1] of sorted samples: the smallest value with at least p of them at or below. */
static double pct(const samples *s, double p) {
    if (!s->n) return 0;
    size_t i = (size_t)(p * (double)s->n + 0.999999);
    if (i > 0) i--;
    if (i >= s->n) i = s->n - 1;
    return s->v[i];
}

/* ---- the server's processes: CPU and RSS ---------------------------------------- */

typedef struct srv_snap {
    double cpu_s; /* utime + stime of the processes now in the set */
    long rss_kb;
    int nproc;
    int64_t t;
    double box_busy, box_total; /* /proc/stat jiffies */
} srv_snap;

static int read_file(const char *path, char *out, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, out, n - 1);
    close(fd);
    if (r < 0) return -1;
    out[r] = 0;
    return (int)r;
}

/* From /proc/PID/stat: comm, ppid, utime + stime (ticks). */
static int proc_stat(pid_t pid, char comm[32], pid_t *ppid, unsigned long long *ticks) {
    char path[64], b[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_file(path, b, sizeof b) < 0) return -1;
    char *l = strchr(b, '('), *r = strrchr(b, ')');
    if (!l || !r || r < l) return -1;
    size_t cl = (size_t)(r - l - 1);
    if (cl > 31) cl = 31;
    memcpy(comm, l + 1, cl);
    comm[cl] = 0;
    char st;
    int pp;
    unsigned long long ut = 0, stt = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(r + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &st, &pp, &ut, &stt) != 4)
        return -1;
    if (st == 'Z' || st == 'X') return -1;
    *ppid = pp;
    *ticks = ut + stt;
    return 0;
}

static long proc_rss_kb(pid_t pid) {
    char path[64], b[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_file(path, b, sizeof b) < 0) return -1;
    char *p = strstr(b, "\nVmRSS:");
    return p ? strtol(p + 7, NULL, 10) : -1;
}

/* Supervisor processes of a tree (shell scripts around the server) are not
 * the server: their RSS and CPU are left out. */
static int supervisor_comm(const char *c) {
    return !strcmp(c, "bash") || !strcmp(c, "sh") || !strcmp(c, "dash") || !strcmp(c, "sleep") ||
           !strcmp(c, "setsid") || !strcmp(c, "timeout");
}

#define MAX_SET 4096

/* The server set: --pid PIDs, plus each --pid-tree PID and its descendants
 * (found now: handler processes may start late). */
static int server_set(pid_t *set, int max) {
    int n = 0;
    for (int i = 0; i < O.npids && n < max; i++) set[n++] = O.pids[i];
    if (!O.ntrees) return n;
    static pid_t pid[32768], par[32768];
    int np = 0;
    DIR *d = opendir("/proc");
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d)) && np < 32768) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        pid_t p = (pid_t)atoi(e->d_name), pp;
        char comm[32];
        unsigned long long t;
        if (proc_stat(p, comm, &pp, &t) < 0) continue;
        pid[np] = p;
        par[np++] = pp;
    }
    closedir(d);
    int start = n;
    for (int i = 0; i < O.ntrees && n < max; i++) set[n++] = O.trees[i];
    for (int k = start; k < n; k++) /* breadth first over the growing set */
        for (int j = 0; j < np && n < max; j++)
            if (par[j] == set[k]) set[n++] = pid[j];
    return n;
}

static void box_jiffies(double *busy, double *total) {
    char b[512];
    unsigned long long v[8] = {0};
    *busy = *total = 0;
    if (read_file("/proc/stat", b, sizeof b) < 0) return;
    if (sscanf(b, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) < 4)
        return;
    for (int i = 0; i < 8; i++) *total += (double)v[i];
    *busy = *total - (double)v[3] - (double)v[4];
}

static srv_snap server_snap(void) {
    srv_snap s = {0};
    s.t = mono_us();
    box_jiffies(&s.box_busy, &s.box_total);
    if (!O.npids && !O.ntrees) return s;
    pid_t set[MAX_SET];
    int n = server_set(set, MAX_SET);
    double hz = (double)sysconf(_SC_CLK_TCK);
    for (int i = 0; i < n; i++) {
        char comm[32];
        pid_t pp;
        unsigned long long t;
        if (proc_stat(set[i], comm, &pp, &t) < 0) continue;
        if (supervisor_comm(comm)) continue;
        long r = proc_rss_kb(set[i]);
        if (r > 0) s.rss_kb += r;
        s.cpu_s += (double)t / hz;
        s.nproc++;
    }
    return s;
}

static double self_cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

/* " client_cpu_pct=.. [server_cpu_pct=.. server_procs=..] box_idle_pct=.." over [a, b]. */
static int fmt_cpu(char *out, size_t n, const srv_snap *a, const srv_snap *b, double self_a,
                   double self_b) {
    double dt = (double)(b->t - a->t) / 1e6;
    if (dt <= 0) dt = 1e-9;
    int k = snprintf(out, n, " client_cpu_pct=%.1f", (self_b - self_a) / dt * 100);
    if (O.npids || O.ntrees) {
        double d = b->cpu_s - a->cpu_s;
        k += snprintf(out + k, n - (size_t)k, " server_cpu_pct=%.1f server_procs=%d",
                      d > 0 ? d / dt * 100 : 0, b->nproc);
    }
    double tot = b->box_total - a->box_total, busy = b->box_busy - a->box_busy;
    k += snprintf(out + k, n - (size_t)k, " box_idle_pct=%.1f", tot > 0 ? 100 * (1 - busy / tot) : 0);
    return k;
}

/* ---- clients, sockets, workers ---------------------------------------------------- */

enum { K_WS = 1, K_GET, K_POST, K_WAKE };
enum { S_CLOSED = 0, S_CONNECTING, S_UPGRADING, S_OPEN };
enum { C_NEW = 0, C_HANDSHAKE, C_READY, C_DEAD, C_WAIT /* soak: waits to reconnect */ };
enum { PH_CONNECT = 0, PH_RUN, PH_STOP, PH_QUIT };

struct client;

typedef struct sock {
    int fd;
    uint8_t kind, st, epout, busy; /* busy: an HTTP request is waiting for its response */
    uint8_t got, reused, retried;   /* HTTP: response bytes seen, request on a kept-alive connection, resent */
    struct client *c;
    buf in, out;
    buf req; /* HTTP: the request in flight, kept for one resend */
} sock;

/* soak: the socket a client follows through the stream (see run_soak). */
typedef struct soak_state {
    char id[48], pid[48], off[24]; /* the socket followed, its pid, the last offset */
    int64_t last;                  /* the last number received, 0: none yet */
    int64_t from;                  /* every accepted number from here on must arrive */
    int64_t leave_at;              /* leaving since (us) */
    uint8_t recover, leaving, attempts;
} soak_state;

typedef struct client {
    sock s;        /* the WebSocket, or the polling GET connection */
    sock *post;    /* polling: the POST connection (made on first use) */
    uint32_t idx;  /* global client number */
    uint8_t state, eio_open, frag_op;
    uint32_t inflight; /* echo acks awaited */
    uint32_t next_id;
    int64_t t0; /* when its first connect started */
    uint64_t msgs;
    uint8_t nonce[16];
    buf frag; /* a fragmented WebSocket message */
    char *sid; /* polling */
    buf postq; /* polling: packets waiting for a POST */
    soak_state *soak; /* soak mode only */
} client;

/* Counters: written by their worker only, read by the controller. */
#define CTR(x) _Atomic uint64_t x
#define INC(x, d) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (d), \
                                        memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

typedef struct worker {
    int id, ep, wakefd, ctlfd;
    pthread_t tid;
    client *cl;
    int ncl, next_open, hs_inflight, pending_max;
    uint8_t *rb;
    size_t rbcap;
    buf scratch;
    sock wake;
    CTR(opened);
    CTR(connected);
    CTR(failed);
    CTR(dropped);
    CTR(deliveries);
    CTR(deliv_bytes);
    CTR(echo_sent);
    CTR(acks);
    CTR(emits);
    CTR(other);
    _Atomic int cmd; /* 1: bench:start, 2: bench:stop (worker 0, client 0) */
    int64_t t_first, t_last_ready;
    int echo_started;
    int64_t rate_t0;
    uint64_t rate_sent;
    uint32_t rr;
    int64_t last_scan;
    samples conn_lat, lat;
    char err[160];
    /* soak */
    CTR(so_lost);
    CTR(so_dup);
    CTR(so_behind);
    CTR(so_breaks);
    CTR(so_recovered);
    CTR(so_not_recovered);
    CTR(so_leaves);
    CTR(so_abandons);
    CTR(so_unplanned);
    CTR(so_connfail);
    CTR(so_short);
    _Atomic int so_ready, so_drained; /* counted once a second (ten times in PH_STOP) */
    client **rq;                       /* clients waiting to reconnect, and when */
    int64_t *rq_at;
    int rq_n, rq_cap;
    int64_t so_t0, so_scan;
    uint64_t so_churned;
    char so_first_loss[200];
} worker;

static worker *W;
static int NW;
static _Atomic int g_phase;
static _Atomic int g_measure;
static _Atomic int64_t g_server_sent = -1;
static double g_rate; /* the rate bench:start asks for (set before the command) */

#define SUM(field)                                                  \
    ({                                                              \
        uint64_t s_ = 0;                                            \
        for (int i_ = 0; i_ < NW; i_++) s_ += GET(W[i_].field);     \
        s_;                                                         \
    })

static void wake_workers(void) {
    uint64_t one = 1;
    for (int i = 0; i < NW; i++)
        if (write(W[i].wakefd, &one, sizeof one) < 0) {
        }
}

static void set_phase(int ph) {
    atomic_store(&g_phase, ph);
    wake_workers();
}

static void note_err(worker *w, const char *what) {
    if (!w->err[0]) snprintf(w->err, sizeof w->err, "%s", what);
}

static void sock_close(worker *w, sock *s, int abortive) {
    if (s->fd < 0) return;
    if (abortive) {
        struct linger l = {1, 0}; /* RST: no TIME_WAIT left behind on the client side */
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    epoll_ctl(w->ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    s->st = S_CLOSED;
    s->epout = 0;
    s->busy = 0;
    s->in.len = 0;
    s->out.len = 0;
}

/* The client's connection is no more: what is left of its input is stale. */
static int gone(const client *c) { return c->state == C_DEAD || c->state == C_WAIT; }

static void soak_broken(worker *w, client *c, const char *why);

static void client_down(worker *w, client *c, const char *why) {
    if (gone(c)) return;
    if (O.mode == M_SOAK && atomic_load(&g_phase) < PH_QUIT) {
        soak_broken(w, c, why); /* it comes back */
        return;
    }
    if (c->state == C_READY) {
        INC(w->dropped, 1);
        if (atomic_load(&g_phase) < PH_QUIT) note_err(w, why);
    } else {
        INC(w->failed, 1);
        w->hs_inflight--;
        note_err(w, why);
    }
    c->state = C_DEAD;
    sock_close(w, &c->s, 1);
    if (c->post) sock_close(w, c->post, 1);
}

static void sock_want_out(worker *w, sock *s, int on) {
    if (s->epout == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = s};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->epout = (uint8_t)on;
}

/* Writes what is queued. -1: the connection failed (the caller closes). */
static int sock_flush(worker *w, sock *s) {
    while (s->out.len) {
        ssize_t r = send(s->fd, s->out.p, s->out.len, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        buf_consume(&s->out, (size_t)r);
    }
    sock_want_out(w, s, s->out.len > 0);
    return 0;
}

static int http_retry(worker *w, sock *s);

static void sock_send(worker *w, sock *s, const void *d, size_t n) {
    if (s->fd < 0) return;
    if (s->st == S_CONNECTING || s->out.len) {
        buf_add(&s->out, d, n);
        return;
    }
    ssize_t r;
    do r = send(s->fd, d, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != EAGAIN) {
            if (!http_retry(w, s)) client_down(w, s->c, "send failed");
            return;
        }
        r = 0;
    }
    if ((size_t)r < n) {
        buf_add(&s->out, (const uint8_t *)d + r, n - (size_t)r);
        sock_want_out(w, s, 1);
    }
}

static int sock_open(worker *w, sock *s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (O.nsrc) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = O.src[s->c->idx % (uint32_t)O.nsrc]};
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    int port = s->c->idx == 0 && O.trigger_port ? O.trigger_port : O.port2 && (s->c->idx & 1) ? O.port2 : O.port;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = O.dst};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    s->fd = fd;
    s->st = S_CONNECTING;
    s->epout = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        close(fd);
        s->fd = -1;
        return -e;
    }
    return 0;
}

/* ---- sending Engine.IO packets -------------------------------------------------- */

static void ws_frame(worker *w, client *c, int op, const void *data, size_t n) {
    uint8_t stack[1024], *f = n + 14 <= sizeof stack ? stack : malloc(n + 14);
    if (!f) die("out of memory");
    size_t h = 0;
    f[h++] = (uint8_t)(0x80 | op);
    if (n < 126) {
        f[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint32_t mk = (uint32_t)rng64();
    uint8_t *m = f + h;
    memcpy(m, &mk, 4);
    h += 4;
    const uint8_t *d = data;
    for (size_t i = 0; i < n; i++) f[h + i] = d[i] ^ m[i & 3];
    sock_send(w, &c->s, f, h + n);
    if (f != stack) free(f);
}

static void post_flush(worker *w, client *c);

static void send_packet(worker *w, client *c, const char *p, size_t n) {
    if (gone(c)) return;
    if (c->s.kind == K_WS) {
        ws_frame(w, c, 1, p, n);
        return;
    }
    if (c->postq.len) buf_add(&c->postq, "\x1e", 1);
    buf_add(&c->postq, p, n);
    post_flush(w, c);
}

static int soak_auth(const client *c, char *out, size_t cap);

static void send_connect(worker *w, client *c) {
    char p[320];
    int n = strcmp(O.nsp, "/") ? snprintf(p, sizeof p, "40%s,", O.nsp) : snprintf(p, sizeof p, "40");
    if (O.mode == M_SOAK) n += soak_auth(c, p + n, sizeof p - (size_t)n);
    send_packet(w, c, p, (size_t)n);
}

static void send_echo(worker *w, client *c) {
    char p[96];
    int n = snprintf(p, sizeof p, "42%s%s%" PRIu32 "[\"echo\",%" PRId64 "]",
                     strcmp(O.nsp, "/") ? O.nsp : "", strcmp(O.nsp, "/") ? "," : "", c->next_id++,
                     mono_us());
    send_packet(w, c, p, (size_t)n);
    c->inflight++;
    INC(w->echo_sent, 1);
}

/* ---- receiving ----------------------------------------------------------------- */

static int64_t parse_i64(const char *p, const char *end, const char **after) {
    int neg = 0;
    int64_t v = 0;
    if (p < end && *p == '-') neg = 1, p++;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    if (after) *after = p;
    return neg ? -v : v;
}

static void client_ready(worker *w, client *c) {
    if (c->state == C_READY || gone(c)) return;
    c->state = C_READY;
    w->hs_inflight--;
    int64_t now = mono_us();
    sample_add(&w->conn_lat, now - c->t0);
    w->t_last_ready = now;
    INC(w->connected, 1);
}

static void soak_event(worker *w, client *c, const char *p, const char *end);
static void soak_connected(worker *w, client *c, const char *m, size_t n);

static void on_event(worker *w, client *c, const char *m, size_t n, size_t whole) {
    const char *end = m + n;
    while (m < end && *m >= '0' && *m <= '9') m++; /* an ack id the server wants: none used */
    n = (size_t)(end - m);
    if (n > 12 && !memcmp(m, "[\"bench:msg\"", 12)) {
        c->msgs++;
        INC(w->deliveries, 1);
        INC(w->deliv_bytes, whole);
        if (O.stamp && atomic_load_explicit(&g_measure, memory_order_relaxed)) {
            const char *t = memmem(m, n, "\"t\":", 4);
            if (t) sample_add(&w->lat, wall_us() - parse_i64(t + 4, end, NULL));
        }
    } else if (n > 13 && !memcmp(m, "[\"bench:done\"", 13)) {
        const char *s = memmem(m, n, "\"sent\":", 7);
        if (s) atomic_store(&g_server_sent, parse_i64(s + 7, end, NULL));
    } else if (O.mode == M_SOAK && n > 8 && !memcmp(m, "[\"soak\",", 8)) {
        soak_event(w, c, m + 8, end);
    } else if (n > 13 && !memcmp(m, "[\"bench:emit\",", 14)) {
        int64_t t = parse_i64(m + 14, end, NULL);
        sample_add(&w->lat, wall_us() - t);
        INC(w->emits, 1);
    } else {
        INC(w->other, 1);
    }
}

static void on_ack(worker *w, client *c, const char *m, size_t n) {
    const char *end = m + n, *p;
    parse_i64(m, end, &p); /* the id */
    if (p >= end || *p != '[') return;
    int64_t t = parse_i64(p + 1, end, NULL);
    if (c->inflight) c->inflight--;
    INC(w->acks, 1);
    if (atomic_load_explicit(&g_measure, memory_order_relaxed)) sample_add(&w->lat, mono_us() - t);
    if (O.rate == 0 && atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_RUN) send_echo(w, c);
}

static void sio_packet(worker *w, client *c, const char *m, size_t n, size_t whole) {
    if (!n) return;
    char t = m[0];
    m++, n--;
    if (n && m[0] == '/') { /* namespace */
        const char *comma = memchr(m, ',', n);
        if (!comma) return;
        n -= (size_t)(comma + 1 - m);
        m = comma + 1;
    }
    switch (t) {
    case '0':
        if (O.mode == M_SOAK) soak_connected(w, c, m, n);
        client_ready(w, c);
        break;
    case '4': client_down(w, c, "CONNECT_ERROR from the server"); break;
    case '1': client_down(w, c, "DISCONNECT from the server"); break;
    case '2': on_event(w, c, m, n, whole); break;
    case '3': on_ack(w, c, m, n); break;
    default: INC(w->other, 1);
    }
}

static void eio_packet(worker *w, client *c, const char *m, size_t n) {
    if (!n) return;
    switch (m[0]) {
    case '0':
        if (c->eio_open) break;
        c->eio_open = 1;
        if (c->s.kind == K_GET) {
            const char *s = memmem(m, n, "\"sid\":\"", 7);
            const char *e = s ? memchr(s + 7, '"', (size_t)(m + n - s - 7)) : NULL;
            if (!e || e - s - 7 > 100) {
                client_down(w, c, "handshake without sid");
                return;
            }
            c->sid = strndup(s + 7, (size_t)(e - s - 7));
        }
        send_connect(w, c);
        break;
    case '2': send_packet(w, c, "3", 1); break;
    case '1': client_down(w, c, "Engine.IO close"); break;
    case '4': sio_packet(w, c, m + 1, n - 1, n); break;
    case '6': break; /* noop */
    default: INC(w->other, 1);
    }
}

/* ---- WebSocket ---------------------------------------------------------------- */

static void ws_request(worker *w, client *c) {
    uint8_t r[16];
    uint64_t a = rng64(), b = rng64();
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
    memcpy(c->nonce, r, 16);
    char key[32], req[512];
    b64_encode(r, 16, key);
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     O.path, O.host, O.port, key);
    sock_send(w, &c->s, req, (size_t)n);
}

/* The value of header `name` (lower case, with the colon) in a header block, or NULL. */
static const char *hdr_value(const char *h, size_t n, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *p = memchr(h, '\n', n), *end = h + n;
    while (p && p < end) {
        p++;
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) break;
        if ((size_t)(le - p) > nl && !strncasecmp(p, name, nl)) {
            const char *v = p + nl;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = le;
    }
    return NULL;
}

static int ws_check_upgrade(client *c, const char *h, size_t n) {
    if (n < 12 || memcmp(h, "HTTP/1.1 101", 12)) return -1;
    char key[32], want[32];
    b64_encode(c->nonce, 16, key);
    ws_accept_for(key, want);
    size_t vl;
    const char *v = hdr_value(h, n, "sec-websocket-accept:", &vl);
    if (!v || vl != strlen(want) || memcmp(v, want, vl)) return -2;
    return 0;
}

#define RB_CHUNK (256u << 10)
#define WS_MSG_MAX (64u << 20)

static void ws_message(worker *w, client *c, int op, uint8_t *p, size_t n) {
    if (op == 1) eio_packet(w, c, (const char *)p, n);
    else INC(w->other, 1); /* binary: not part of the bench protocol */
}

static void ws_readable(worker *w, sock *s) {
    client *c = s->c;
    size_t have = s->in.len;
    if (w->rbcap < have + RB_CHUNK) {
        free(w->rb);
        w->rbcap = have + RB_CHUNK;
        w->rb = malloc(w->rbcap);
        if (!w->rb) die("out of memory");
    }
    if (have) memcpy(w->rb, s->in.p, have);
    ssize_t r = read(s->fd, w->rb + have, RB_CHUNK);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        client_down(w, c, r == 0 ? "connection closed by the server" : "read error");
        return;
    }
    s->in.len = 0;
    size_t n = have + (size_t)r, off = 0;
    uint8_t *b = w->rb;
    if (s->st == S_UPGRADING) {
        uint8_t *e = memmem(b, n, "\r\n\r\n", 4);
        if (!e) {
            if (n > 16384) client_down(w, c, "upgrade response too long");
            else buf_add(&s->in, b, n);
            return;
        }
        off = (size_t)(e + 4 - b);
        int rc = ws_check_upgrade(c, (const char *)b, off);
        if (rc < 0) {
            client_down(w, c, rc == -1 ? "upgrade refused (no 101)" : "bad Sec-WebSocket-Accept");
            return;
        }
        s->st = S_OPEN;
    }
    while (off + 2 <= n) {
        uint8_t *f = b + off;
        size_t avail = n - off, h = 2;
        int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
        uint64_t len = f[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) break;
            len = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | f[2 + i];
            h = 10;
        }
        if (masked) h += 4;
        if (len > WS_MSG_MAX) {
            client_down(w, c, "frame too large");
            return;
        }
        if (avail < h + len) break;
        uint8_t *pl = f + h;
        if (masked)
            for (size_t i = 0; i < len; i++) pl[i] ^= f[h - 4 + (i & 3)];
        off += h + (size_t)len;
        if (op == 8) {
            client_down(w, c, "WebSocket close from the server");
            return;
        } else if (op == 9) {
            ws_frame(w, c, 10, pl, (size_t)len);
        } else if (op == 10) {
        } else if (op == 0 || op == 1 || op == 2) {
            if (op != 0 && fin && !c->frag.len) {
                ws_message(w, c, op, pl, (size_t)len);
            } else {
                if (op != 0) c->frag_op = (uint8_t)op, c->frag.len = 0;
                buf_add(&c->frag, pl, (size_t)len);
                if (fin) {
                    ws_message(w, c, c->frag_op, c->frag.p, c->frag.len);
                    c->frag.len = 0;
                }
            }
        } else {
            client_down(w, c, "bad WebSocket opcode");
            return;
        }
        if (gone(c)) return;
    }
    if (off < n) buf_add(&s->in, b + off, n - off);
}

/* ---- long-polling over HTTP/1.1 ------------------------------------------------ */

static void http_request(worker *w, sock *s, const char *req, size_t n, const void *body, size_t bl) {
    int reused = s->fd >= 0;
    if (!reused) {
        int rc = sock_open(w, s);
        if (rc < 0) {
            client_down(w, s->c, "connect failed");
            return;
        }
    }
    s->busy = 1;
    s->got = 0;
    s->retried = 0;
    s->reused = (uint8_t)reused;
    s->req.len = 0;
    buf_add(&s->req, req, n);
    if (bl) buf_add(&s->req, body, bl);
    sock_send(w, s, s->req.p, s->req.len);
}

/* A request sent on a kept-alive connection that the server was closing at
 * that moment (Node closes idle ones after 5 s) fails with no response byte:
 * like a browser, reconnect and send it once more.  1 when resent. */
static int http_retry(worker *w, sock *s) {
    if (s->kind == K_WS || !s->busy || s->got || !s->reused || s->retried || !s->req.len) return 0;
    buf req = s->req;
    s->req = (buf){0};
    sock_close(w, s, 0);
    if (sock_open(w, s) < 0) {
        buf_free(&req);
        return 0;
    }
    s->busy = 1;
    s->retried = 1;
    s->reused = 0;
    s->got = 0;
    s->req = req;
    sock_send(w, s, s->req.p, s->req.len);
    return 1;
}

static void poll_get(worker *w, client *c) {
    char req[512];
    int n;
    if (c->sid)
        n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
                     O.path, c->sid, O.host, O.port);
    else
        n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=polling HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
                     O.path, O.host, O.port);
    http_request(w, &c->s, req, (size_t)n, NULL, 0);
}

static void post_flush(worker *w, client *c) {
    if (!c->sid || !c->postq.len) return;
    if (!c->post) {
        c->post = calloc(1, sizeof *c->post);
        if (!c->post) die("out of memory");
        c->post->fd = -1;
        c->post->kind = K_POST;
        c->post->c = c;
    }
    if (c->post->busy) return;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Accept: */*\r\nConnection: %s\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %" PRIu32 "\r\n\r\n",
                     O.path, c->sid, O.host, O.port, O.post_close ? "close" : "keep-alive", c->postq.len);
    buf body = c->postq;
    c->postq = (buf){0};
    if (O.mode == M_SOAK && c->soak->leaving == 1) c->soak->leaving = 2; /* this POST carries the leave */
    http_request(w, c->post, req, (size_t)n, body.p, body.len);
    buf_free(&body);
}

/* 1: a whole response (body in w->scratch), 0: need more, -1: malformed. */
static int http_parse(worker *w, sock *s, int eof, int *status, size_t *consumed, int *conn_close) {
    const char *p = (const char *)s->in.p;
    size_t n = s->in.len;
    const char *e = n ? memmem(p, n, "\r\n\r\n", 4) : NULL;
    if (!e) return n > 65536 ? -1 : 0;
    size_t hl = (size_t)(e + 4 - p);
    if (hl < 12 || memcmp(p, "HTTP/1.", 7)) return -1;
    *status = atoi(p + 9);
    size_t vl;
    const char *v;
    long cl = -1;
    int chunked = 0;
    *conn_close = p[7] == '0';
    if ((v = hdr_value(p, hl, "content-length:", &vl))) cl = strtol(v, NULL, 10);
    if ((v = hdr_value(p, hl, "transfer-encoding:", &vl)) && memmem(v, vl, "chunked", 7)) chunked = 1;
    if ((v = hdr_value(p, hl, "connection:", &vl))) {
        if (memmem(v, vl, "close", 5)) *conn_close = 1;
        else if (memmem(v, vl, "eep-alive", 9)) *conn_close = 0;
    }
    w->scratch.len = 0;
    if (chunked) {
        size_t off = hl;
        for (;;) {
            const char *le = memmem(p + off, n - off, "\r\n", 2);
            if (!le) return 0;
            unsigned long sz = strtoul(p + off, NULL, 16);
            size_t d = (size_t)(le + 2 - p);
            if (sz == 0) {
                const char *te = memmem(p + off, n - off, "\r\n\r\n", 4); /* end of trailers */
                if (!te) return 0;
                *consumed = (size_t)(te + 4 - p);
                return 1;
            }
            if (n < d + sz + 2) return 0;
            buf_add(&w->scratch, p + d, sz);
            off = d + sz + 2;
        }
    }
    if (cl >= 0) {
        if (n - hl < (size_t)cl) return 0;
        buf_add(&w->scratch, p + hl, (size_t)cl);
        *consumed = hl + (size_t)cl;
        return 1;
    }
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) {
        *consumed = hl;
        return 1;
    }
    if (!eof) return 0;
    buf_add(&w->scratch, p + hl, n - hl);
    *consumed = n;
    *conn_close = 1;
    return 1;
}

static int soak_left(worker *w, client *c);

static void poll_response(worker *w, client *c, sock *s, int status) {
    char what[64];
    if (status != 200) {
        snprintf(what, sizeof what, "polling %s answered HTTP %d", s->kind == K_GET ? "GET" : "POST",
                 status);
        client_down(w, c, what);
        return;
    }
    if (s->kind == K_POST) {
        if (O.mode == M_SOAK && c->soak->leaving == 2 && soak_left(w, c)) return;
        post_flush(w, c);
        return;
    }
    const char *b = (const char *)w->scratch.p, *end = b + w->scratch.len;
    while (b < end) {
        const char *sep = memchr(b, 0x1e, (size_t)(end - b));
        const char *pe = sep ? sep : end;
        if (pe > b && *b != 'b') eio_packet(w, c, b, (size_t)(pe - b));
        if (gone(c)) return;
        b = sep ? sep + 1 : end;
    }
    if (c->sid && atomic_load(&g_phase) < PH_QUIT) poll_get(w, c);
}

static void http_readable(worker *w, sock *s) {
    client *c = s->c;
    buf_reserve(&s->in, 65536);
    ssize_t r = read(s->fd, s->in.p + s->in.len, s->in.cap - s->in.len);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (!http_retry(w, s)) client_down(w, c, "read error");
        return;
    }
    if (r > 0) s->in.len += (uint32_t)r, s->got = 1;
    int eof = r == 0;
    while (s->busy && s->in.len) {
        int status = 0, cclose = 0;
        size_t used = 0;
        int rc = http_parse(w, s, eof, &status, &used, &cclose);
        if (rc == 0) break;
        if (rc < 0) {
            client_down(w, c, "malformed HTTP response");
            return;
        }
        buf_consume(&s->in, used);
        s->busy = 0;
        if (cclose || eof) sock_close(w, s, 0); /* the next request reconnects */
        poll_response(w, c, s, status);
        if (gone(c) || s->fd < 0) return;
    }
    if (eof && s->fd >= 0) {
        if (!s->busy) sock_close(w, s, 0);
        else if (!http_retry(w, s)) client_down(w, c, "connection closed before the response");
    }
}

/* ---- the event loop ---------------------------------------------------------------- */

static void open_client(worker *w, client *c) {
    c->state = C_HANDSHAKE;
    c->t0 = mono_us();
    if (!w->t_first) w->t_first = c->t0;
    w->hs_inflight++;
    INC(w->opened, 1);
    if (c->s.kind == K_WS) {
        int rc = sock_open(w, &c->s);
        if (rc < 0) {
            char e[96];
            snprintf(e, sizeof e, "connect: %s", strerror(-rc));
            client_down(w, c, e);
            return;
        }
        c->s.st = S_CONNECTING;
        ws_request(w, c);
    } else {
        poll_get(w, c);
    }
}

static void open_more(worker *w) {
    int64_t allowed = w->ncl;
    if (O.conn_rate > 0 && w->t_first) {
        double per = O.conn_rate / NW;
        allowed = (int64_t)((double)(mono_us() - w->t_first) / 1e6 * per) + 1;
    }
    while (w->next_open < w->ncl && w->hs_inflight < w->pending_max && w->next_open < allowed)
        open_client(w, &w->cl[w->next_open++]);
}

static void scan_timeouts(worker *w) {
    int64_t now = mono_us(), lim = (int64_t)(O.timeout * 1e6);
    for (int i = 0; i < w->next_open; i++) {
        client *c = &w->cl[i];
        if (c->state == C_HANDSHAKE && now - c->t0 > lim) client_down(w, c, "handshake timeout");
    }
}

static void on_sock(worker *w, sock *s, uint32_t ev) {
    if (s->fd < 0) return;
    if (s->st == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            char e[96];
            snprintf(e, sizeof e, "connect: %s", strerror(err ? err : ECONNRESET));
            client_down(w, s->c, e);
            return;
        }
        if (!(ev & EPOLLOUT)) return;
        s->st = s->kind == K_WS ? S_UPGRADING : S_OPEN;
    }
    if ((ev & EPOLLOUT) && sock_flush(w, s) < 0) {
        client_down(w, s->c, "write error");
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (s->kind == K_WS) ws_readable(w, s);
        else http_readable(w, s);
    }
}

static client *first_ready(worker *w) {
    for (int i = 0; i < w->ncl; i++)
        if (w->cl[i].state == C_READY) return &w->cl[i];
    return NULL;
}

static void do_cmd(worker *w) {
    int cmd = atomic_exchange(&w->cmd, 0);
    if (!cmd) return;
    client *c = first_ready(w);
    if (!c) return;
    char p[256];
    const char *ns = strcmp(O.nsp, "/") ? O.nsp : "", *comma = strcmp(O.nsp, "/") ? "," : "";
    int n;
    if (cmd == 1) {
        long ms = (long)((O.warmup + O.duration + 10) * 1000);
        n = snprintf(p, sizeof p,
                     "42%s%s[\"bench:start\",{\"size\":%d,\"batch\":%d,\"rate\":%g,\"ms\":%ld%s}]", ns,
                     comma, O.size, O.batch, g_rate, ms, O.stamp ? ",\"stamp\":true" : "");
    } else {
        n = snprintf(p, sizeof p, "42%s%s[\"bench:stop\"]", ns, comma);
    }
    send_packet(w, c, p, (size_t)n);
}

static void echo_pump(worker *w, int ph) {
    if (ph != PH_RUN) return;
    if (O.rate == 0) {
        if (w->echo_started) return;
        w->echo_started = 1;
        for (int i = 0; i < w->ncl; i++)
            for (int k = 0; k < O.window && w->cl[i].state == C_READY; k++) send_echo(w, &w->cl[i]);
        return;
    }
    int64_t now = mono_us();
    if (!w->rate_t0) w->rate_t0 = now;
    uint64_t due = (uint64_t)((double)(now - w->rate_t0) / 1e6 * (O.rate / NW)) + 1;
    for (int guard = 0; w->rate_sent < due && guard < w->ncl; guard++) {
        client *c = &w->cl[w->rr++ % (uint32_t)w->ncl];
        if (c->state != C_READY || c->inflight >= 1000) continue;
        send_echo(w, c);
        w->rate_sent++;
        guard = -1;
    }
}

static void soak_pump(worker *w, int ph);
static void soak_finish(worker *w);

static void *worker_main(void *arg) {
    worker *w = arg;
    struct epoll_event ev[512];
    for (;;) {
        int ph = atomic_load(&g_phase);
        if (ph == PH_QUIT) break;
        open_more(w);
        do_cmd(w);
        if (O.mode == M_ECHO) echo_pump(w, ph);
        if (O.mode == M_SOAK) soak_pump(w, ph);
        int timeout = 50;
        if ((O.mode == M_ECHO && O.rate > 0 && ph == PH_RUN) || O.conn_rate > 0) timeout = 1;
        int k = epoll_wait(w->ep, ev, 512, timeout);
        for (int i = 0; i < k; i++) {
            sock *s = ev[i].data.ptr;
            if (s == &w->wake) {
                uint64_t v;
                if (read(w->wakefd, &v, sizeof v) < 0) {
                }
                continue;
            }
            if (!s) { /* the control pipe of a conn child: the parent says stop */
                atomic_store(&g_phase, PH_QUIT);
                continue;
            }
            on_sock(w, s, ev[i].events);
        }
        int64_t now = mono_us();
        if (now - w->last_scan > 250000) {
            w->last_scan = now;
            if (w->hs_inflight > 0) scan_timeouts(w);
        }
    }
    if (O.mode == M_SOAK) soak_finish(w);
    for (int i = 0; i < w->ncl; i++) {
        sock_close(w, &w->cl[i].s, 1);
        if (w->cl[i].post) sock_close(w, w->cl[i].post, 1);
    }
    return NULL;
}

static void worker_init(worker *w, int id, client *cl, int ncl, int pending) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->cl = cl;
    w->ncl = ncl;
    w->pending_max = pending > 0 ? pending : 1;
    w->ctlfd = -1;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ep < 0 || w->wakefd < 0) die("epoll/eventfd: %s", strerror(errno));
    w->wake.kind = K_WAKE;
    w->wake.fd = w->wakefd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wakefd, &ev);
}

static client *make_clients(int n, uint32_t first_idx, int kind) {
    client *cl = calloc((size_t)(n ? n : 1), sizeof *cl);
    if (!cl) die("out of memory");
    for (int i = 0; i < n; i++) {
        cl[i].idx = first_idx + (uint32_t)i;
        cl[i].s.fd = -1;
        cl[i].s.kind = (uint8_t)kind;
        cl[i].s.c = &cl[i];
    }
    return cl;
}

static void soak_setup(client *all, int n);

/* Threads for fanout/echo/poll/emit-latency/soak: clients split evenly. */
static void start_workers(int kind) {
    NW = O.threads;
    if (NW > O.clients) NW = O.clients > 0 ? O.clients : 1;
    W = calloc((size_t)NW, sizeof *W);
    client *all = make_clients(O.clients, 0, kind);
    if (O.mode == M_SOAK) soak_setup(all, O.clients);
    for (int i = 0; i < NW; i++) {
        int a = (int)((int64_t)O.clients * i / NW), b = (int)((int64_t)O.clients * (i + 1) / NW);
        worker_init(&W[i], i, all + a, b - a, O.pending / NW);
    }
    for (int i = 0; i < NW; i++)
        if (pthread_create(&W[i].tid, NULL, worker_main, &W[i])) die("pthread_create failed");
}

static void stop_workers(void) {
    set_phase(PH_QUIT);
    for (int i = 0; i < NW; i++) pthread_join(W[i].tid, NULL);
}

static const char *first_err(void) {
    for (int i = 0; i < NW; i++)
        if (W[i].err[0]) return W[i].err;
    return NULL;
}

/* Waits until every client is connected or has failed; returns the connected count. */
static uint64_t wait_connected(void) {
    int64_t t0 = mono_us(), last = t0;
    int64_t lim = (int64_t)((O.timeout + 5 + O.clients / 200.0) * 1e6);
    for (;;) {
        uint64_t ok = SUM(connected), bad = SUM(failed);
        if (ok + bad >= (uint64_t)O.clients) return ok;
        int64_t now = mono_us();
        if (now - t0 > lim) {
            progress("connect phase timed out: %" PRIu64 " connected, %" PRIu64 " failed\n", ok, bad);
            return ok;
        }
        if (now - last >= 1000000) {
            last = now;
            progress("%" PRIu64 "/%d connected, %" PRIu64 " failed\n", ok, O.clients, bad);
        }
        sleep_us(5000);
    }
}

static void merge_lat(samples *out) {
    for (int i = 0; i < NW; i++) samples_merge(out, &W[i].lat);
    samples_sort(out);
}

static void print_result(char *line, size_t cap, int k) {
    const char *e = first_err();
    if (e && (SUM(failed) || SUM(dropped))) {
        k += snprintf(line + k, cap - (size_t)k, " first_error=\"");
        for (; *e && (size_t)k < cap - 3; e++) line[k++] = *e == '"' ? '\'' : *e;
        line[k++] = '"';
        line[k] = 0;
    }
    if (O.tag) snprintf(line + k, cap - (size_t)k, " %s", O.tag);
    printf("%s\n", line);
    fflush(stdout);
}

/* ---- fanout and poll ------------------------------------------------------------- */

/* One broadcast run on the connected clients: bench:start at `rate`, warm-up,
 * the measured window, bench:stop, then the drain. */
typedef struct step {
    double rate, dps, minps, maxps, mbps, dt;
    int64_t sent; /* -1: no bench:done */
    uint64_t received, dropped, alive;
    int64_t missing;
    double drain, run_s; /* run_s: from bench:start sent to bench:stop sent */
    int64_t quiet_after; /* us from bench:stop until the deliveries stopped */
    srv_snap s0, s1;
    double c0, c1;
} step;


static int fanout_step(double rate, step *r) {
    memset(r, 0, sizeof *r);
    r->rate = rate;
    atomic_store(&g_server_sent, -1);
    uint64_t base = SUM(deliveries), drop0 = SUM(dropped);
    g_rate = rate;
    atomic_store(&W[0].cmd, 1);
    wake_workers();
    int64_t t = mono_us(), t_start = t;
    while (SUM(deliveries) == base) {
        if (mono_us() - t > 10000000) return -1;
        sleep_us(1000);
    }
    sleep_us((int64_t)(O.warmup * 1e6));
    r->c0 = self_cpu_s();
    r->s0 = server_snap();
    uint64_t d0 = SUM(deliveries), b0 = SUM(deliv_bytes);
    atomic_store(&g_measure, 1);
    double minps = -1, maxps = 0;
    uint64_t prev = d0;
    int64_t tick = r->s0.t, end = r->s0.t + (int64_t)(O.duration * 1e6);
    while (mono_us() < end) {
        int64_t next = tick + 1000000 < end ? tick + 1000000 : end;
        sleep_us(next - mono_us());
        uint64_t d = SUM(deliveries);
        int64_t now = mono_us();
        double ps = (double)(d - prev) * 1e6 / (double)(now - tick);
        if (now - tick >= 500000) {
            if (minps < 0 || ps < minps) minps = ps;
            if (ps > maxps) maxps = ps;
        }
        progress("rate=%g deliveries/s=%.0f\n", rate, ps);
        prev = d;
        tick = now;
    }
    atomic_store(&g_measure, 0);
    r->s1 = server_snap();
    r->c1 = self_cpu_s();
    uint64_t d1 = SUM(deliveries), b1 = SUM(deliv_bytes);

    /* Stop, then wait for bench:done and for the deliveries to settle. */
    atomic_store(&W[0].cmd, 2);
    wake_workers();
    int64_t ds = mono_us(), quiet_since = ds;
    r->run_s = (double)(ds - t_start) / 1e6;
    uint64_t last = SUM(deliveries);
    for (;;) {
        sleep_us(20000);
        uint64_t d = SUM(deliveries);
        int64_t now = mono_us(), sent = atomic_load(&g_server_sent);
        if (d != last) last = d, quiet_since = now;
        uint64_t alive = SUM(connected) - SUM(dropped);
        if (sent >= 0 && d - base >= (uint64_t)sent * alive) break;
        if (sent >= 0 && now - quiet_since > 2000000) break;
        if (now - quiet_since > 5000000 || now - ds > 15000000) break; /* a backlog that long: give up */
    }
    r->drain = (double)(mono_us() - ds) / 1e6;
    r->quiet_after = quiet_since - ds;
    r->received = SUM(deliveries) - base;
    r->sent = atomic_load(&g_server_sent);
    r->dropped = SUM(dropped) - drop0;
    r->alive = SUM(connected) - SUM(dropped);
    r->missing = r->sent >= 0 ? (int64_t)((uint64_t)r->sent * r->alive) - (int64_t)r->received : -1;
    r->dt = (double)(r->s1.t - r->s0.t) / 1e6;
    r->dps = (double)(d1 - d0) / r->dt;
    r->minps = minps < 0 ? 0 : minps;
    r->maxps = maxps;
    r->mbps = (double)(b1 - b0) / r->dt / 1e6;
    return 0;
}

/* Did the server keep up with the offered rate, losing nothing?  Counted
 * on the server's side (sent over the whole step against rate x time) and
 * by the backlog (deliveries still arriving a second after bench:stop), not
 * from the measured window, where a few broadcasts of 1,000 deliveries each
 * around its edges make several percent. */
static const char *step_fault(const step *r) {
    if (r->sent < 0) return "no bench:done";
    if (r->dropped) return "clients dropped";
    if (r->missing) return "messages missing";
    if (r->rate > 0 && (double)r->sent < 0.95 * r->rate * r->run_s) return "the server sent under 95% of the rate";
    if (r->quiet_after > 1000000) return "a backlog (deliveries went on > 1 s after the stop)";
    return NULL;
}

static int run_fanout(void) {
    int polling = O.mode == M_POLL;
    start_workers(polling ? K_GET : K_WS);
    uint64_t ok = wait_connected();
    if (!ok) die("no client connected%s%s", first_err() ? ": " : "", first_err() ? first_err() : "");
    progress("%" PRIu64 " clients connected\n", ok);
    set_phase(PH_RUN);
    char line[8192];
    int k;
    if (O.search) {
        /* Offered rate up by --growth a step from --rate until a step loses
         * messages, drops clients or falls short: the best step is the
         * highest delivery rate the server sustains without loss. */
        step best = {0}, cur;
        int nsteps = 0, have_best = 0;
        const char *fault = NULL;
        char steps[4096];
        size_t sl = 0;
        steps[0] = 0;
        double rate = O.rate > 0 ? O.rate : 10;
        for (; nsteps < O.max_steps; nsteps++, rate = (double)(long long)(rate * O.growth + 0.999)) {
            if (fanout_step(rate, &cur) < 0) {
                fault = "no bench:msg within 10 s";
                break;
            }
            fault = step_fault(&cur);
            sl += (size_t)snprintf(steps + sl, sizeof steps - sl, "%s%g:%.0f:%" PRId64, sl ? "," : "", rate,
                                   cur.dps, cur.missing);
            if (sl >= sizeof steps) sl = sizeof steps - 1;
            if (fault) break;
            best = cur;
            have_best = 1;
            if (SUM(connected) - SUM(dropped) == 0) break;
        }
        stop_workers();
        k = snprintf(line, sizeof line,
                     "mode=%s-search transport=%s clients=%d connected=%" PRIu64 " failed=%" PRIu64
                     " dropped=%" PRIu64 " size=%d steps=%d",
                     O.mode_name, polling ? "polling" : "websocket", O.clients, ok, SUM(failed),
                     SUM(dropped), O.size, nsteps + (fault ? 1 : 0));
        if (have_best) {
            k += snprintf(line + k, sizeof line - (size_t)k,
                          " best_rate=%g best_deliveries_per_s=%.0f best_missing=%" PRId64, best.rate,
                          best.dps, best.missing);
            k += fmt_cpu(line + k, sizeof line - (size_t)k, &best.s0, &best.s1, best.c0, best.c1);
        } else {
            k += snprintf(line + k, sizeof line - (size_t)k, " best_deliveries_per_s=none");
        }
        k += snprintf(line + k, sizeof line - (size_t)k, " stopped_by=\"%s at rate %g\" log=%s",
                      fault ? fault : "step limit", rate, steps);
        print_result(line, sizeof line, k);
        return have_best ? 0 : 1;
    }

    step r;
    if (fanout_step(O.rate, &r) < 0) die("no bench:msg within 10 s: does the server implement the bench protocol?");
    stop_workers();
    uint64_t shortc = 0;
    if (r.sent >= 0)
        for (int i = 0; i < NW; i++)
            for (int j = 0; j < W[i].ncl; j++)
                if (W[i].cl[j].state == C_READY && W[i].cl[j].msgs < (uint64_t)r.sent) shortc++;
    samples lat = {0};
    merge_lat(&lat);
    k = snprintf(line, sizeof line,
                 "mode=%s transport=%s clients=%d connected=%" PRIu64 " failed=%" PRIu64
                 " dropped=%" PRIu64 " seconds=%.1f deliveries_per_s=%.0f broadcasts_per_s=%.1f"
                 " min_per_s=%.0f max_per_s=%.0f mbytes_per_s=%.2f size=%d batch=%d rate=%g",
                 O.mode_name, polling ? "polling" : "websocket", O.clients, ok, SUM(failed), SUM(dropped),
                 r.dt, r.dps, r.dps / (double)ok, r.minps, r.maxps, r.mbps, O.size, O.batch, O.rate);
    k += fmt_cpu(line + k, sizeof line - (size_t)k, &r.s0, &r.s1, r.c0, r.c1);
    if (O.npids || O.ntrees) k += snprintf(line + k, sizeof line - (size_t)k, " server_rss_kb=%ld", r.s1.rss_kb);
    if (r.sent >= 0)
        k += snprintf(line + k, sizeof line - (size_t)k,
                      " server_sent=%" PRId64 " received=%" PRIu64 " missing=%" PRId64
                      " clients_short=%" PRIu64 " drain_s=%.1f",
                      r.sent, r.received, r.missing, shortc, r.drain);
    else
        k += snprintf(line + k, sizeof line - (size_t)k,
                      " server_sent=unknown received=%" PRIu64 " missing=unknown", r.received);
    if (O.stamp)
        k += snprintf(line + k, sizeof line - (size_t)k,
                      " lat_p50_us=%.0f lat_p99_us=%.0f lat_max_us=%.0f lat_samples=%zu", pct(&lat, .5),
                      pct(&lat, .99), pct(&lat, 1), lat.n);
    print_result(line, sizeof line, k);
    free(lat.v);
    return r.sent >= 0 ? 0 : 1;
}

/* ---- echo --------------------------------------------------------------------------- */

static int run_echo(void) {
    start_workers(K_WS);
    uint64_t ok = wait_connected();
    if (!ok) die("no client connected%s%s", first_err() ? ": " : "", first_err() ? first_err() : "");
    progress("%" PRIu64 " clients connected, echo %s\n", ok, O.rate > 0 ? "at a fixed rate" : "closed loop");
    set_phase(PH_RUN);
    sleep_us((int64_t)(O.warmup * 1e6));
    double c0 = self_cpu_s();
    srv_snap s0 = server_snap();
    uint64_t a0 = SUM(acks), e0 = SUM(echo_sent);
    atomic_store(&g_measure, 1);
    int64_t end = s0.t + (int64_t)(O.duration * 1e6);
    uint64_t prev = a0;
    while (mono_us() < end) {
        int64_t t = mono_us();
        sleep_us(end - t < 1000000 ? end - t : 1000000);
        uint64_t a = SUM(acks);
        progress("acks/s=%.0f\n", (double)(a - prev) * 1e6 / (double)(mono_us() - t));
        prev = a;
    }
    atomic_store(&g_measure, 0);
    srv_snap s1 = server_snap();
    double c1 = self_cpu_s();
    uint64_t a1 = SUM(acks), e1 = SUM(echo_sent);
    set_phase(PH_STOP);
    int64_t t = mono_us();
    while (SUM(acks) < SUM(echo_sent) && mono_us() - t < 3000000) sleep_us(10000);
    uint64_t unacked = SUM(echo_sent) - SUM(acks);
    stop_workers();
    samples lat = {0};
    merge_lat(&lat);
    double dt = (double)(s1.t - s0.t) / 1e6;
    char line[4096];
    int k = snprintf(line, sizeof line,
                     "mode=echo clients=%d connected=%" PRIu64 " failed=%" PRIu64 " dropped=%" PRIu64
                     " seconds=%.1f rate=%g window=%d sent_per_s=%.0f acks_per_s=%.0f rtt_p50_us=%.0f"
                     " rtt_p90_us=%.0f rtt_p99_us=%.0f rtt_max_us=%.0f samples=%zu unacked=%" PRIu64,
                     O.clients, ok, SUM(failed), SUM(dropped), dt, O.rate, O.window,
                     (double)(e1 - e0) / dt, (double)(a1 - a0) / dt, pct(&lat, .5), pct(&lat, .9),
                     pct(&lat, .99), pct(&lat, 1), lat.n, unacked);
    k += fmt_cpu(line + k, sizeof line - (size_t)k, &s0, &s1, c0, c1);
    if (O.npids || O.ntrees) k += snprintf(line + k, sizeof line - (size_t)k, " server_rss_kb=%ld", s1.rss_kb);
    print_result(line, sizeof line, k);
    free(lat.v);
    return 0;
}

/* ---- emit-latency ---------------------------------------------------------------------- */

/* Runs `sioctl [--state DIR] emit EVENT ARG` (or --emit-cmd with {ts}: ARG). */
static pid_t spawn_emit(const char *event, int64_t arg) {
    char tsbuf[32];
    snprintf(tsbuf, sizeof tsbuf, "%" PRId64, arg);
    char *argv[64];
    int n = 0;
    static char words[64][512];
    if (O.sioctl) {
        argv[n++] = (char *)O.sioctl;
        if (O.state) argv[n++] = "--state", argv[n++] = (char *)O.state;
        argv[n++] = "emit";
        argv[n++] = (char *)event;
        argv[n++] = tsbuf;
    } else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", O.emit_cmd);
        for (char *sv, *tok = strtok_r(tmp, " ", &sv); tok && n < 63; tok = strtok_r(NULL, " ", &sv)) {
            char *o = words[n];
            size_t ol = 0;
            for (const char *p = tok; *p && ol < sizeof words[0] - 32; p++) {
                if (!strncmp(p, "{ts}", 4)) {
                    ol += (size_t)snprintf(o + ol, sizeof words[0] - ol, "%s", tsbuf);
                    p += 3;
                } else {
                    o[ol++] = *p;
                }
            }
            o[ol] = 0;
            argv[n] = o;
            n++;
        }
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) die("cannot run %s: %s", argv[0], strerror(rc));
    return pid;
}

static int run_emit(void) {
    if (!O.sioctl && !O.emit_cmd) die("emit-latency needs --sioctl PATH or --emit-cmd CMD");
    start_workers(K_WS);
    uint64_t ok = wait_connected();
    if (!ok) die("no client connected%s%s", first_err() ? ": " : "", first_err() ? first_err() : "");
    set_phase(PH_RUN);
    sleep_us(500000);
    progress("%" PRIu64 " clients connected, %d emits\n", ok, O.count);
    double c0 = self_cpu_s();
    srv_snap s0 = server_snap();
    samples cmd = {0}, last = {0};
    int fails = 0, done = 0;
    for (int i = 0; i < O.count; i++) {
        uint64_t before = SUM(emits);
        int64_t ts = wall_us(), m0 = mono_us();
        pid_t pid = spawn_emit("bench:emit", ts);
        int st = 0;
        uint64_t alive = SUM(connected) - SUM(dropped);
        int exited = 0;
        int64_t got_all = 0;
        while (mono_us() - m0 < 5000000) {
            if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
                exited = 1;
                sample_add(&cmd, mono_us() - m0);
                if (!WIFEXITED(st) || WEXITSTATUS(st)) fails++;
            }
            if (!got_all && SUM(emits) - before >= alive) got_all = mono_us();
            if (exited && got_all) break;
            sleep_us(200);
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fails++;
        }
        if (got_all) sample_add(&last, got_all - m0);
        done++;
        if (fails >= 3) {
            progress("the emit command failed %d times: stopping\n", fails);
            break;
        }
        if ((i + 1) % 20 == 0) progress("%d emits\n", i + 1);
        sleep_us(m0 + (int64_t)(O.interval * 1e6) - mono_us());
    }
    sleep_us(200000);
    srv_snap s1 = server_snap();
    double c1 = self_cpu_s();
    struct rusage ch;
    getrusage(RUSAGE_CHILDREN, &ch);
    double chs = (double)ch.ru_utime.tv_sec + (double)ch.ru_stime.tv_sec +
                 ((double)ch.ru_utime.tv_usec + (double)ch.ru_stime.tv_usec) / 1e6;
    uint64_t got = SUM(emits), alive = SUM(connected) - SUM(dropped);
    stop_workers();
    samples lat = {0};
    merge_lat(&lat);
    samples_sort(&cmd);
    samples_sort(&last);
    double dt = (double)(s1.t - s0.t) / 1e6;
    char line[4096];
    int k = snprintf(line, sizeof line,
                     "mode=emit-latency clients=%d connected=%" PRIu64 " failed=%" PRIu64
                     " dropped=%" PRIu64 " emits=%d cmd_failed=%d deliveries=%" PRIu64
                     " missing=%" PRId64 " lat_p50_us=%.0f lat_p99_us=%.0f lat_max_us=%.0f"
                     " last_client_p50_us=%.0f last_client_p99_us=%.0f cmd_p50_us=%.0f"
                     " cmd_p99_us=%.0f emitter_cpu_pct=%.1f",
                     O.clients, ok, SUM(failed), SUM(dropped), done, fails, got,
                     (int64_t)((uint64_t)done * alive) - (int64_t)got, pct(&lat, .5), pct(&lat, .99),
                     pct(&lat, 1), pct(&last, .5), pct(&last, .99), pct(&cmd, .5), pct(&cmd, .99),
                     dt > 0 ? chs / dt * 100 : 0);
    k += fmt_cpu(line + k, sizeof line - (size_t)k, &s0, &s1, c0, c1);
    print_result(line, sizeof line, k);
    free(lat.v);
    free(cmd.v);
    free(last.v);
    return fails ? 1 : 0;
}

/* ---- soak: churn, recovery and a numbered stream for a long time ------------------------ */

/* Every client follows one Socket.IO socket at a time through the stream of
 * `sioctl emit soak I` (I = 1, 2, ...: run here, one at a time, --rate a
 * second) and checks that it gets every accepted I once, in order, from the
 * first one emitted after its socket existed: across recoveries too.  Churn
 * (--churn a second, over all clients) picks a connected client and, half
 * the time, breaks its connection (a RST, no goodbye) and reconnects with
 * its pid and offset: the same socket must come back with what it missed;
 * a quarter of the time it leaves (41, then the Engine.IO close) and
 * connects a new socket; a quarter of the time it breaks and connects a new
 * socket, leaving the old one to wait for max_disconnection_duration.  A
 * connection that breaks by itself (unplanned) reconnects with recovery
 * after a back-off. */

enum { E_PENDING = 0, E_OK, E_REFUSED };

static _Atomic uint8_t *g_emit_st; /* E_* of emit I */
static int64_t g_emit_cap;
static _Atomic int64_t g_next_emit = 1; /* emits from this number on were not started yet */
static _Atomic int64_t g_final;         /* PH_STOP: the last accepted emit */

/* Accepted emits in [lo, hi). */
static uint64_t count_ok(int64_t lo, int64_t hi) {
    uint64_t n = 0;
    if (lo < 1) lo = 1;
    if (hi > g_emit_cap) hi = g_emit_cap;
    for (int64_t m = lo; m < hi; m++) n += atomic_load_explicit(&g_emit_st[m], memory_order_relaxed) == E_OK;
    return n;
}

static const char *soak_kind(const client *c) { return c->s.kind == K_WS ? "websocket" : "polling"; }

static void soak_setup(client *all, int n) {
    soak_state *st = calloc((size_t)n, sizeof *st);
    if (!st) die("out of memory");
    for (int i = 0; i < n; i++) {
        all[i].soak = &st[i];
        /* --polling of them, spread evenly */
        if ((uint64_t)i * (uint64_t)O.polling / (uint64_t)n != (uint64_t)(i + 1) * (uint64_t)O.polling / (uint64_t)n)
            all[i].s.kind = K_GET;
    }
}

/* The CONNECT's auth: {"pid","offset"} when it recovers its socket. */
static int soak_auth(const client *c, char *out, size_t cap) {
    const soak_state *k = c->soak;
    if (!k->recover || !k->pid[0]) return 0;
    if (!k->off[0]) return snprintf(out, cap, "{\"pid\":\"%s\"}", k->pid);
    return snprintf(out, cap, "{\"pid\":\"%s\",\"offset\":\"%s\"}", k->pid, k->off);
}

/* Copies the JSON string after `key` ("name":") in [m, m + n) to out. */
static void json_str(const char *m, size_t n, const char *key, char *out, size_t cap) {
    out[0] = 0;
    const char *s = memmem(m, n, key, strlen(key));
    if (!s) return;
    s += strlen(key);
    const char *e = memchr(s, '"', (size_t)(m + n - s));
    if (!e || (size_t)(e - s) >= cap) return;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = 0;
}

/* A new socket to follow: numbers from those not started yet must arrive. */
static void soak_follow(soak_state *k, const char *id, const char *pid) {
    snprintf(k->id, sizeof k->id, "%s", id);
    snprintf(k->pid, sizeof k->pid, "%s", pid);
    k->off[0] = 0;
    k->last = 0;
    k->from = atomic_load(&g_next_emit);
}

static void soak_connected(worker *w, client *c, const char *m, size_t n) {
    soak_state *k = c->soak;
    char id[48], pid[48];
    json_str(m, n, "\"sid\":\"", id, sizeof id);
    json_str(m, n, "\"pid\":\"", pid, sizeof pid);
    if (k->recover) {
        if (!strcmp(id, k->id)) {
            INC(w->so_recovered, 1);
        } else {
            INC(w->so_not_recovered, 1);
            if (!w->so_first_loss[0])
                snprintf(w->so_first_loss, sizeof w->so_first_loss,
                         "client %u (%s): socket %s not recovered (got %s)", c->idx, soak_kind(c), k->id, id);
            soak_follow(k, id, pid);
        }
    } else {
        soak_follow(k, id, pid);
    }
    k->recover = 0;
    k->attempts = 0;
}

/* ["soak",I,"OFFSET"] (p is after "[\"soak\","). */
static void soak_event(worker *w, client *c, const char *p, const char *end) {
    soak_state *k = c->soak;
    const char *q;
    int64_t x = parse_i64(p, end, &q);
    INC(w->deliveries, 1);
    if (k->last && x <= k->last) {
        if (x == k->last) INC(w->so_dup, 1);
        else INC(w->so_behind, 1);
        return;
    }
    int64_t lo = k->last ? k->last + 1 : k->from;
    uint64_t lost = count_ok(lo, x);
    if (lost) {
        INC(w->so_lost, lost);
        if (!w->so_first_loss[0])
            snprintf(w->so_first_loss, sizeof w->so_first_loss,
                     "client %u (%s): %" PRIu64 " accepted emit(s) in %" PRId64 "..%" PRId64 " missing before %" PRId64,
                     c->idx, soak_kind(c), lost, lo, x - 1, x);
    }
    k->last = x;
    if (q < end && *q == ',' && q + 1 < end && q[1] == '"') { /* the offset: the last argument */
        const char *s = q + 2, *e = memchr(s, '"', (size_t)(end - s));
        if (e && (size_t)(e - s) < sizeof k->off) {
            memcpy(k->off, s, (size_t)(e - s));
            k->off[e - s] = 0;
        }
    }
}

/* Closes the client's connections (RST) and forgets its Engine.IO session. */
static void soak_reset(worker *w, client *c) {
    if (c->state == C_HANDSHAKE) w->hs_inflight--;
    sock_close(w, &c->s, 1);
    if (c->post) sock_close(w, c->post, 1);
    free(c->sid);
    c->sid = NULL;
    c->eio_open = 0;
    c->frag.len = 0;
    c->postq.len = 0;
    c->state = C_WAIT;
}

static void soak_later(worker *w, client *c, int64_t delay_us) {
    if (w->rq_n == w->rq_cap) {
        int nc = w->rq_cap ? 2 * w->rq_cap : 256;
        client **q = realloc(w->rq, (size_t)nc * sizeof *q);
        int64_t *at = q ? realloc(w->rq_at, (size_t)nc * sizeof *at) : NULL;
        if (!q || !at) die("out of memory");
        w->rq = q, w->rq_at = at, w->rq_cap = nc;
    }
    w->rq[w->rq_n] = c;
    w->rq_at[w->rq_n++] = mono_us() + delay_us;
}

/* 50..500 ms, as a client that reconnects at once after a jitter. */
static int64_t soak_soon(void) { return 50000 + (int64_t)(rng64() % 450000); }

static void soak_forget(soak_state *k) {
    k->id[0] = k->pid[0] = k->off[0] = 0;
    k->recover = k->leaving = 0;
}

/* A leave is done (its POST answered, or the server closed): a new socket next. */
static int soak_left(worker *w, client *c) {
    if (!c->soak->leaving) return 0; /* 1: asked, 2: POSTed (polling) */
    soak_forget(c->soak);
    soak_reset(w, c);
    soak_later(w, c, soak_soon());
    return 1;
}

/* The connection ended without our asking (client_down while running): come
 * back with recovery after a back-off (0.25 s doubling up to 4 s). */
static void soak_broken(worker *w, client *c, const char *why) {
    soak_state *k = c->soak;
    if (soak_left(w, c)) return;
    if (c->state == C_READY) {
        INC(w->so_unplanned, 1);
        note_err(w, why);
        k->recover = k->id[0] != 0;
    } else {
        INC(w->so_connfail, 1);
        note_err(w, why);
    }
    soak_reset(w, c);
    int a = k->attempts < 4 ? k->attempts : 4;
    k->attempts++;
    soak_later(w, c, (250000LL << a) / 2 + (int64_t)(rng64() % (uint64_t)(250000LL << a)));
}

static void soak_churn(worker *w) {
    client *c = NULL;
    for (int t = 0; t < 16 && !c; t++) {
        client *x = &w->cl[rng64() % (uint64_t)w->ncl];
        if (x->state == C_READY && !x->soak->leaving) c = x;
    }
    if (!c) return;
    soak_state *k = c->soak;
    unsigned r = (unsigned)(rng64() % 4);
    if (r < 2) { /* break, and recover */
        INC(w->so_breaks, 1);
        k->recover = k->id[0] != 0;
        soak_reset(w, c);
        soak_later(w, c, soak_soon());
    } else if (r == 2) { /* leave, and connect a new socket */
        INC(w->so_leaves, 1);
        k->leaving = 1;
        k->leave_at = mono_us();
        char p[160];
        int n = strcmp(O.nsp, "/") ? snprintf(p, sizeof p, "41%s,", O.nsp) : snprintf(p, sizeof p, "41");
        send_packet(w, c, p, (size_t)n);
        if (c->s.kind == K_WS) ws_frame(w, c, 8, "\x03\xe8", 2); /* close 1000: the server answers */
        else send_packet(w, c, "1", 1); /* the Engine.IO close, POSTed after the 41 */
    } else { /* break, and connect a new socket: the old one waits in vain */
        INC(w->so_abandons, 1);
        soak_forget(k);
        soak_reset(w, c);
        soak_later(w, c, soak_soon());
    }
}

/* All the accepted numbers up to final arrived (or nothing is expected). */
static int soak_caught_up(const client *c, int64_t final) {
    const soak_state *k = c->soak;
    if (!k->id[0]) return 1;
    return count_ok(k->last ? k->last + 1 : k->from, final + 1) == 0;
}

static void soak_pump(worker *w, int ph) {
    int64_t now = mono_us();
    int j = 0;
    for (int i = 0; i < w->rq_n; i++) {
        client *c = w->rq[i];
        if (w->rq_at[i] <= now && w->hs_inflight < w->pending_max) {
            open_client(w, c);
            continue;
        }
        w->rq[j] = c;
        w->rq_at[j++] = w->rq_at[i];
    }
    w->rq_n = j;
    if (ph == PH_RUN && O.churn > 0) {
        if (!w->so_t0) w->so_t0 = now;
        uint64_t due = (uint64_t)((double)(now - w->so_t0) / 1e6 * O.churn / NW);
        while (w->so_churned < due) {
            soak_churn(w);
            w->so_churned++;
        }
    }
    if (now - w->so_scan < (ph == PH_STOP ? 100000 : 1000000)) return;
    w->so_scan = now;
    int64_t final = atomic_load(&g_final);
    int ready = 0, drained = 0;
    for (int i = 0; i < w->ncl; i++) {
        client *c = &w->cl[i];
        if (c->soak->leaving && now - c->soak->leave_at > 10000000) {
            INC(w->so_unplanned, 1);
            note_err(w, "a leave not answered within 10 s");
            soak_left(w, c);
        }
        if (c->state != C_READY) continue;
        ready++;
        if (ph == PH_STOP && soak_caught_up(c, final)) drained++;
    }
    atomic_store(&w->so_ready, ready);
    atomic_store(&w->so_drained, drained);
}

/* The end: what a client still lacks is lost. */
static void soak_finish(worker *w) {
    int64_t final = atomic_load(&g_final);
    for (int i = 0; i < w->ncl; i++) {
        client *c = &w->cl[i];
        const soak_state *k = c->soak;
        if (!k->id[0] || soak_caught_up(c, final)) continue;
        uint64_t n = count_ok(k->last ? k->last + 1 : k->from, final + 1);
        INC(w->so_lost, n);
        INC(w->so_short, 1);
        if (!w->so_first_loss[0])
            snprintf(w->so_first_loss, sizeof w->so_first_loss,
                     "client %u (%s, %s): %" PRIu64 " accepted emit(s) up to %" PRId64 " never came", c->idx,
                     soak_kind(c), c->state == C_READY ? "connected" : "not connected", n, final);
    }
}

#define ISUM(field)                                                 \
    ({                                                              \
        int s_ = 0;                                                 \
        for (int i_ = 0; i_ < NW; i_++) s_ += atomic_load(&W[i_].field); \
        s_;                                                         \
    })

static void soak_progress(int64_t t0, int64_t emits, int64_t refused) {
    progress("t=%.0fs ready=%d deliveries=%" PRIu64 " lost=%" PRIu64 " duplicated=%" PRIu64
             " behind=%" PRIu64 " emits=%" PRId64 " refused=%" PRId64 " breaks=%" PRIu64
             " recovered=%" PRIu64 " not_recovered=%" PRIu64 " leaves=%" PRIu64 " abandons=%" PRIu64
             " unplanned=%" PRIu64 " connect_failures=%" PRIu64 "\n",
             (double)(mono_us() - t0) / 1e6, ISUM(so_ready), SUM(deliveries),
             SUM(so_lost), SUM(so_dup), SUM(so_behind), emits, refused, SUM(so_breaks), SUM(so_recovered),
             SUM(so_not_recovered), SUM(so_leaves), SUM(so_abandons), SUM(so_unplanned), SUM(so_connfail));
}

static int run_soak(void) {
    if (!O.sioctl) die("soak needs --sioctl PATH (and --state DIR)");
    if (O.rate <= 0) die("soak needs --rate > 0 (emits a second)");
    if (O.polling < 0 || O.polling > O.clients) die("bad --polling");
    g_emit_cap = (int64_t)(O.rate * O.duration) + 16;
    g_emit_st = calloc((size_t)g_emit_cap, 1);
    if (!g_emit_st) die("out of memory");
    start_workers(K_WS);
    int64_t t0 = mono_us(), lim = (int64_t)((O.timeout + 30 + O.clients / 200.0) * 1e6), last = t0;
    while (SUM(connected) < (uint64_t)O.clients) {
        if (mono_us() - t0 > lim) die("only %" PRIu64 " of %d clients connected in %.0f s%s%s", SUM(connected),
                                      O.clients, (double)lim / 1e6, first_err() ? ": " : "",
                                      first_err() ? first_err() : "");
        if (mono_us() - last >= 1000000) {
            last = mono_us();
            progress("%" PRIu64 "/%d connected\n", SUM(connected), O.clients);
        }
        sleep_us(20000);
    }
    progress("%d clients connected (%d polling) in %.1f s; %g emits/s, %g churns/s for %.0f s\n", O.clients,
             O.polling, (double)(mono_us() - t0) / 1e6, O.rate, O.churn, O.duration);
    double c0 = self_cpu_s();
    srv_snap s0 = server_snap();
    set_phase(PH_RUN);
    int64_t start = mono_us(), end = start + (int64_t)(O.duration * 1e6), report = start;
    int64_t emits = 0, refused = 0, final = 0;
    for (int64_t i = 1; i < g_emit_cap && mono_us() < end; i++) {
        sleep_us(start + (int64_t)((double)(i - 1) / O.rate * 1e6) - mono_us());
        atomic_store(&g_next_emit, i + 1); /* before it starts: see soak_follow */
        pid_t pid = spawn_emit("soak", i);
        int st = 0, exited = 0;
        for (int64_t m0 = mono_us(); mono_us() - m0 < 30000000;) {
            if (waitpid(pid, &st, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            sleep_us(1000);
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        int ok = exited && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        atomic_store(&g_emit_st[i], ok ? E_OK : E_REFUSED);
        emits++;
        if (ok) final = i;
        else refused++;
        if (mono_us() - report >= (int64_t)(O.report * 1e6)) {
            report = mono_us();
            soak_progress(start, emits, refused);
        }
    }
    srv_snap s1 = server_snap();
    double c1 = self_cpu_s();
    atomic_store(&g_final, final);
    set_phase(PH_STOP);
    int64_t ds = mono_us();
    while (ISUM(so_drained) < O.clients && mono_us() - ds < (int64_t)(O.drain * 1e6))
        sleep_us(100000);
    double drain = (double)(mono_us() - ds) / 1e6;
    soak_progress(start, emits, refused);
    stop_workers();
    const char *loss = NULL;
    for (int i = 0; i < NW && !loss; i++)
        if (W[i].so_first_loss[0]) loss = W[i].so_first_loss;
    uint64_t bad = SUM(so_lost) + SUM(so_dup) + SUM(so_behind) + SUM(so_not_recovered);
    char line[4096];
    int k = snprintf(line, sizeof line,
                     "mode=soak clients=%d polling=%d seconds=%.0f rate=%g churn=%g emits=%" PRId64
                     " refused=%" PRId64 " deliveries=%" PRIu64 " lost=%" PRIu64 " duplicated=%" PRIu64
                     " behind=%" PRIu64 " breaks=%" PRIu64 " recovered=%" PRIu64 " not_recovered=%" PRIu64
                     " leaves=%" PRIu64 " abandons=%" PRIu64 " unplanned=%" PRIu64 " connect_failures=%" PRIu64
                     " clients_short=%" PRIu64 " drain_s=%.1f",
                     O.clients, O.polling, (double)(s1.t - s0.t) / 1e6, O.rate, O.churn, emits, refused,
                     SUM(deliveries), SUM(so_lost), SUM(so_dup), SUM(so_behind), SUM(so_breaks),
                     SUM(so_recovered), SUM(so_not_recovered), SUM(so_leaves), SUM(so_abandons),
                     SUM(so_unplanned), SUM(so_connfail), SUM(so_short), drain);
    k += fmt_cpu(line + k, sizeof line - (size_t)k, &s0, &s1, c0, c1);
    if (loss) k += snprintf(line + k, sizeof line - (size_t)k, " first_loss=\"%s\"", loss);
    const char *e = first_err();
    if (e && SUM(so_unplanned) + SUM(so_connfail))
        k += snprintf(line + k, sizeof line - (size_t)k, " first_error=\"%s\"", e);
    if (O.tag) k += snprintf(line + k, sizeof line - (size_t)k, " %s", O.tag);
    printf("%s\n", line);
    fflush(stdout);
    return bad || refused ? 1 : 0;
}

/* ---- conn: one process per share ------------------------------------------------------ */

typedef struct child_res {
    _Atomic int done;
    uint64_t ok, failed, dropped;
    int64_t t_first, t_last;
    double cpu_s;
    uint32_t nlat;
    char err[160];
} child_res;

static void conn_report(worker *w, child_res *res, uint32_t *lat, uint32_t cap, double c0) {
    res->ok = GET(w->connected);
    res->failed = GET(w->failed);
    res->t_first = w->t_first;
    res->t_last = w->t_last_ready;
    res->cpu_s = self_cpu_s() - c0;
    uint32_t n = (uint32_t)(w->conn_lat.n < cap ? w->conn_lat.n : cap);
    if (n) memcpy(lat, w->conn_lat.v, n * sizeof *lat);
    res->nlat = n;
    snprintf(res->err, sizeof res->err, "%s", w->err);
}

/* A conn client process: opens its share, reports when every client is
 * connected or failed, answers pings until the parent closes the control
 * pipe, then reports again (what the ramp had reached if it never ended). */
static void conn_child(int a, int b, child_res *res, uint32_t *lat, int ctl) {
    NW = 1;
    W = calloc(1, sizeof *W);
    worker *w = &W[0];
    worker_init(w, 0, make_clients(b - a, (uint32_t)a, K_WS), b - a, O.pending / (O.procs ? O.procs : 1));
    w->ctlfd = ctl;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, ctl, &ev);
    double c0 = self_cpu_s();
    struct epoll_event evs[512];
    while (atomic_load(&g_phase) != PH_QUIT) {
        open_more(w);
        int k = epoll_wait(w->ep, evs, 512, O.conn_rate > 0 ? 1 : 50);
        for (int i = 0; i < k; i++) {
            sock *s = evs[i].data.ptr;
            if (!s) atomic_store(&g_phase, PH_QUIT);
            else if (s != &w->wake) on_sock(w, s, evs[i].events);
        }
        int64_t now = mono_us();
        if (now - w->last_scan > 250000) {
            w->last_scan = now;
            if (w->hs_inflight > 0) scan_timeouts(w);
        }
        if (!atomic_load(&res->done) && GET(w->connected) + GET(w->failed) >= (uint64_t)w->ncl) {
            conn_report(w, res, lat, (uint32_t)(b - a), c0);
            atomic_store(&res->done, 1);
        }
    }
    if (!atomic_load(&res->done)) {
        /* the parent gave up on the ramp: what is still connecting failed */
        for (int i = 0; i < w->ncl; i++)
            if (w->cl[i].state != C_READY && w->cl[i].state != C_DEAD) {
                if (w->cl[i].state == C_NEW) w->hs_inflight++; /* never opened */
                client_down(w, &w->cl[i], "not connected when the ramp time ran out");
            }
        conn_report(w, res, lat, (uint32_t)(b - a), c0);
    }
    res->dropped = GET(w->dropped);
    for (int i = 0; i < w->ncl; i++) sock_close(w, &w->cl[i].s, 1);
    _exit(0);
}

/* One blocking Socket.IO connection (to check the server and to warm it up). */
static int probe_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {(time_t)O.timeout, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port), .sin_addr = O.dst};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    uint8_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (uint8_t)rng64();
    char key[32], want[32], req[512], in[8192];
    b64_encode(r, 16, key);
    ws_accept_for(key, want);
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     O.path, O.host, O.port, key);
    if (write(fd, req, (size_t)n) != n) goto fail;
    size_t have = 0;
    int stage = 0; /* 0: 101, 1: open, 2: CONNECT reply */
    while (stage < 3) {
        ssize_t k = read(fd, in + have, sizeof in - 1 - have);
        if (k <= 0) goto fail;
        have += (size_t)k;
        for (;;) {
            if (stage == 0) {
                char *e = memmem(in, have, "\r\n\r\n", 4);
                if (!e) break;
                size_t hl = (size_t)(e + 4 - in), vl;
                const char *v = hdr_value(in, hl, "sec-websocket-accept:", &vl);
                if (memcmp(in, "HTTP/1.1 101", 12) || !v || vl != 28 || memcmp(v, want, 28)) goto fail;
                memmove(in, in + hl, have - hl);
                have -= hl;
                stage = 1;
                continue;
            }
            if (have < 2) break;
            size_t len = in[1] & 0x7f, h = 2;
            if (len == 126) {
                if (have < 4) break;
                len = (size_t)(uint8_t)in[2] << 8 | (uint8_t)in[3];
                h = 4;
            } else if (len == 127) {
                goto fail;
            }
            if (have < h + len) break;
            if (stage == 1 && len && in[h] == '0') {
                char p[160];
                int pl = strcmp(O.nsp, "/") ? snprintf(p, sizeof p, "40%s,", O.nsp) : snprintf(p, sizeof p, "40");
                uint8_t f[200];
                f[0] = 0x81, f[1] = (uint8_t)(0x80 | pl);
                memset(f + 2, 0, 4); /* mask key 0: allowed, the server must unmask anyway */
                memcpy(f + 6, p, (size_t)pl);
                if (write(fd, f, (size_t)pl + 6) != pl + 6) goto fail;
                stage = 2;
            } else if (stage == 2 && len >= 2 && in[h] == '4' && in[h + 1] == '0') {
                stage = 3;
            }
            memmove(in, in + h + len, have - h - len);
            have -= h + len;
            if (stage == 3) break;
        }
    }
    tv.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
fail:
    close(fd);
    return -1;
}

static int run_conn(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long per = (long)rl.rlim_cur - 64;
    if (per < 16) die("fd limit too low (%ld)", (long)rl.rlim_cur);
    int procs = O.procs > 0 ? O.procs : (int)((O.clients + per - 1) / per);
    if (procs < 1) procs = 1;
    if ((O.clients + procs - 1) / procs > per)
        die("%d clients over %d processes exceed the fd limit %ld: raise --procs", O.clients, procs,
            (long)rl.rlim_cur);
    O.procs = procs;
    int lo = 32768, hi = 60999;
    char b[64];
    if (read_file("/proc/sys/net/ipv4/ip_local_port_range", b, sizeof b) > 0) sscanf(b, "%d %d", &lo, &hi);
    int nsrc = O.nsrc ? O.nsrc : 1;
    if (O.clients / nsrc > hi - lo - 500)
        progress("warning: %d clients over %d source address(es) exceed the %d ephemeral ports: add --src-ips\n",
                 O.clients, nsrc, hi - lo + 1);
    size_t shsz = sizeof(child_res) * (size_t)procs + sizeof(uint32_t) * (size_t)O.clients;
    void *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) die("mmap: %s", strerror(errno));
    child_res *res = sh;
    uint32_t *lat = (uint32_t *)(res + procs);

    int probe = probe_connect();
    if (probe < 0) die("the server does not answer a Socket.IO connection on %s:%d", O.host, O.port);
    sleep_us(500000);
    srv_snap s0 = server_snap();
    long rss0 = s0.rss_kb;
    progress("%d clients in %d process(es), %d source address(es); server RSS idle %ld kB\n", O.clients,
             procs, nsrc, rss0);
    double cpu0 = self_cpu_s();
    pid_t kids[256];
    int ctl[256];
    if (procs > 256) die("too many processes");
    fflush(NULL);
    for (int i = 0; i < procs; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
        int a = (int)((int64_t)O.clients * i / procs), e = (int)((int64_t)O.clients * (i + 1) / procs);
        pid_t k = fork();
        if (k < 0) die("fork: %s", strerror(errno));
        if (k == 0) {
            close(p[1]);
            for (int j = 0; j < i; j++) close(ctl[j]);
            close(probe);
            conn_child(a, e, &res[i], lat + a, p[0]);
        }
        close(p[0]);
        kids[i] = k;
        ctl[i] = p[1];
    }
    int64_t t0 = mono_us(), last = t0;
    int64_t lim = (int64_t)((O.max_ramp > 0 ? O.max_ramp : O.timeout + 10 + O.clients / 200.0) * 1e6);
    int ramp_cut = 0;
    for (;;) {
        int done = 0;
        for (int i = 0; i < procs; i++) {
            done += atomic_load(&res[i].done);
            int st;
            if (waitpid(kids[i], &st, WNOHANG) == kids[i]) die("a client process died");
        }
        if (done == procs) break;
        int64_t now = mono_us();
        if (now - t0 > lim) {
            progress("the ramp did not end within %.0f s: giving up on the clients still connecting\n",
                     (double)lim / 1e6);
            ramp_cut = 1;
            break;
        }
        if (now - last >= 1000000) {
            last = now;
            progress("%d/%d processes done\n", done, procs);
        }
        sleep_us(5000);
    }
    srv_snap s1 = server_snap();
    long rss1 = s1.rss_kb;
    progress("ramp done; holding %.0f s\n", O.hold);
    sleep_us((int64_t)(O.hold * 1e6));
    srv_snap s2 = server_snap();
    for (int i = 0; i < procs; i++) close(ctl[i]); /* EOF: the children close and exit */
    uint64_t ok = 0, failed = 0, dropped = 0;
    int64_t first = 0, lastc = 0;
    double ccpu = 0;
    samples cl = {0};
    const char *err = NULL;
    for (int i = 0; i < procs; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        ok += res[i].ok;
        failed += res[i].failed;
        dropped += res[i].dropped;
        if (res[i].t_first && (!first || res[i].t_first < first)) first = res[i].t_first;
        if (res[i].t_last > lastc) lastc = res[i].t_last;
        ccpu += res[i].cpu_s;
        int a = (int)((int64_t)O.clients * i / procs);
        for (uint32_t j = 0; j < res[i].nlat; j++) sample_add(&cl, lat[a + (int)j]);
        if (!err && res[i].err[0]) err = res[i].err;
    }
    close(probe);
    samples_sort(&cl);
    double ramp = lastc > first ? (double)(lastc - first) / 1e6 : 0;
    double srv_dt = (double)(s1.t - s0.t) / 1e6;
    char line[4096];
    int k = snprintf(line, sizeof line,
                     "mode=conn clients=%d connected=%" PRIu64 " failed=%" PRIu64 " dropped=%" PRIu64
                     " procs=%d src_ips=%d ramp_s=%.3f connects_per_s=%.1f connect_p50_ms=%.2f"
                     " connect_p99_ms=%.2f connect_max_ms=%.2f ramp_cut=%d hold_s=%.0f client_cpu_pct=%.1f",
                     O.clients, ok, failed, dropped, procs, nsrc, ramp, ramp > 0 ? (double)ok / ramp : 0,
                     pct(&cl, .5) / 1e3, pct(&cl, .99) / 1e3, pct(&cl, 1) / 1e3, ramp_cut, O.hold,
                     ramp > 0 ? (ccpu + self_cpu_s() - cpu0) / ramp * 100 : 0);
    if (O.npids || O.ntrees) {
        double d = s1.cpu_s - s0.cpu_s;
        k += snprintf(line + k, sizeof line - (size_t)k,
                      " server_cpu_pct=%.1f server_procs=%d server_rss_kb_idle=%ld server_rss_kb_ramped=%ld"
                      " server_rss_kb=%ld server_bytes_per_conn=%.0f",
                      srv_dt > 0 && d > 0 ? d / srv_dt * 100 : 0, s2.nproc, rss0, rss1, s2.rss_kb,
                      ok ? (double)(s2.rss_kb - rss0) * 1024 / (double)ok : 0);
    }
    double tot = s1.box_total - s0.box_total, busy = s1.box_busy - s0.box_busy;
    k += snprintf(line + k, sizeof line - (size_t)k, " box_idle_pct=%.1f", tot > 0 ? 100 * (1 - busy / tot) : 0);
    if (err && (failed || dropped)) {
        k += snprintf(line + k, sizeof line - (size_t)k, " first_error=\"%s\"", err);
    }
    if (O.tag) k += snprintf(line + k, sizeof line - (size_t)k, " %s", O.tag);
    printf("%s\n", line);
    fflush(stdout);
    free(cl.v);
    return ok ? 0 : 1;
}

/* ---- selftest: known answers, no server ------------------------------------------- */

static int run_selftest(void) {
    char acc[32];
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", acc); /* RFC 6455, section 1.3 */
    int bad = strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0;
    uint8_t d[20];
    char hex[41];
    sha1("abc", 3, d);
    for (int i = 0; i < 20; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    bad |= strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") != 0;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: 2 tail blocks */
    sha1(m, strlen(m), d);
    for (int i = 0; i < 20; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    bad |= strcmp(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") != 0;
    char b64[16];
    b64_encode((const uint8_t *)"\x01\x02\x03\x04", 4, b64);
    bad |= strcmp(b64, "AQIDBA==") != 0;
    samples s = {0};
    for (int i = 100; i >= 1; i--) sample_add(&s, i);
    samples_sort(&s);
    bad |= pct(&s, .5) != 50 || pct(&s, .99) != 99 || pct(&s, 1) != 100;
    free(s.v);
    printf("mode=selftest result=%s\n", bad ? "FAIL" : "ok");
    return bad;
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: siobench MODE [options]   MODE = fanout | echo | conn | poll | emit-latency | soak | selftest\n"
            "  -H, --host ADDR      server address (127.0.0.1)\n"
            "  -p, --port PORT      server port (3000)\n"
            "      --trigger-port P fanout: client 0, which starts the broadcasts, connects to P\n"
            "                       (another server of a cluster) and the others to --port\n"
            "      --path PATH      Engine.IO path (/socket.io/)\n"
            "  -n, --nsp NSP        Socket.IO namespace (/)\n"
            "  -c, --clients N      clients (100)\n"
            "  -t, --threads N      event-loop threads (1)\n"
            "      --procs N        conn: client processes (enough for the fd limit)\n"
            "      --pending N      handshakes in flight (256)\n"
            "      --conn-rate R    connects per second (0: as fast as --pending allows)\n"
            "      --src-ips LIST   source addresses, comma separated (127.0.0.1,127.0.0.2,...)\n"
            "      --port2 P        every other client connects to port P (two web servers)\n"
            "      --post-close     poll: each POST on a connection closed after its answer\n"
            "                       (one descriptor per client instead of two)\n"
            "  -d, --duration S     measured seconds (10)\n"
            "  -w, --warmup S       seconds before measuring (2)\n"
            "      --hold S         conn: seconds to hold before the RSS reading (5)\n"
            "      --max-ramp S     conn: give up on clients not connected after S seconds\n"
            "      --timeout S      handshake timeout (10)\n"
            "  -s, --size B         fanout/poll: pad bytes (32)\n"
            "      --batch N        fanout/poll: broadcasts per server turn (1)\n"
            "  -r, --rate R         echo: msgs/s in total; fanout/poll: broadcasts/s (0: flat out)\n"
            "      --window N       echo closed loop: messages in flight per client (1)\n"
            "      --stamp          fanout/poll: ask for \"t\" in bench:msg and report latency\n"
            "      --search         fanout/poll: raise the rate a step at a time from --rate\n"
            "                       (broadcasts/s) until a step loses messages, drops clients, sends\n"
            "                       under 95%% of the rate or leaves a backlog over 1 s; report the\n"
            "                       best step's deliveries/s\n"
            "      --growth F       --search: rate factor per step (1.25)\n"
            "      --max-steps N    --search: at most N steps (30)\n"
            "      --sioctl PATH    emit-latency: run PATH [--state DIR] emit bench:emit <us>\n"
            "      --state DIR      emit-latency: sioctl's state directory\n"
            "      --emit-cmd CMD   emit-latency: run CMD instead ({ts}: the wall clock in us)\n"
            "      --count N        emit-latency: emits (100)\n"
            "      --interval S     emit-latency: seconds between emits (0.05)\n"
            "  (soak: -r is emits/s, run with --sioctl/--state; -d the seconds of emitting)\n"
            "      --polling N      soak: clients on long-polling, the rest on WebSocket (0)\n"
            "      --churn R        soak: connected clients a second that break (and recover),\n"
            "                       leave, or abandon their socket: 2:1:1 (0)\n"
            "      --report S       soak: seconds between progress lines (10)\n"
            "      --drain S        soak: at most S seconds for the last emits to arrive (60)\n"
            "      --pid PID        a server process (repeatable): CPU and RSS\n"
            "      --pid-tree PID   PID and all its descendants, shells excluded (repeatable)\n"
            "      --tag TEXT       appended to the result line\n"
            "  -q, --quiet          no progress on stderr\n");
    exit(rc);
}

static void watchdog(int sig) {
    (void)sig;
    static const char m[] = "siobench: watchdog: the run took too long, giving up\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    _exit(3);
}

int main(int argc, char **argv) {
    if (argc < 2) usage(2);
    const char *mode = argv[1];
    static const struct {
        const char *n;
        int m;
    } modes[] = {{"fanout", M_FANOUT}, {"echo", M_ECHO}, {"conn", M_CONN}, {"poll", M_POLL},
                 {"emit-latency", M_EMIT}, {"soak", M_SOAK}, {"selftest", M_SELFTEST}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(mode, modes[i].n)) O.mode = modes[i].m, O.mode_name = modes[i].n;
    if (!strcmp(mode, "-h") || !strcmp(mode, "--help")) usage(0);
    if (!O.mode) usage(2);
    enum { OPT_PATH = 256, OPT_PROCS, OPT_PENDING, OPT_CRATE, OPT_SRC, OPT_HOLD, OPT_TMO, OPT_BATCH, OPT_WIN, OPT_STAMP,
           OPT_SIOCTL, OPT_STATE, OPT_ECMD, OPT_COUNT, OPT_IVL, OPT_PID, OPT_TREE, OPT_TAG, OPT_SEARCH, OPT_STEPS, OPT_GROWTH, OPT_MAXRAMP,
           OPT_TRIGGER, OPT_PORT2, OPT_POSTCLOSE, OPT_POLLING, OPT_CHURN, OPT_REPORT, OPT_DRAIN };
    static const struct option lo[] = {
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"path", 1, 0, OPT_PATH}, {"nsp", 1, 0, 'n'},
        {"clients", 1, 0, 'c'}, {"threads", 1, 0, 't'}, {"procs", 1, 0, OPT_PROCS},
        {"pending", 1, 0, OPT_PENDING}, {"conn-rate", 1, 0, OPT_CRATE}, {"src-ips", 1, 0, OPT_SRC},
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {"hold", 1, 0, OPT_HOLD},
        {"timeout", 1, 0, OPT_TMO}, {"size", 1, 0, 's'}, {"batch", 1, 0, OPT_BATCH}, {"rate", 1, 0, 'r'},
        {"window", 1, 0, OPT_WIN}, {"stamp", 0, 0, OPT_STAMP}, {"sioctl", 1, 0, OPT_SIOCTL},
        {"state", 1, 0, OPT_STATE}, {"emit-cmd", 1, 0, OPT_ECMD}, {"count", 1, 0, OPT_COUNT},
        {"interval", 1, 0, OPT_IVL}, {"pid", 1, 0, OPT_PID}, {"pid-tree", 1, 0, OPT_TREE},
        {"tag", 1, 0, OPT_TAG}, {"search", 0, 0, OPT_SEARCH}, {"max-steps", 1, 0, OPT_STEPS},
        {"growth", 1, 0, OPT_GROWTH}, {"max-ramp", 1, 0, OPT_MAXRAMP}, {"trigger-port", 1, 0, OPT_TRIGGER},
        {"port2", 1, 0, OPT_PORT2}, {"post-close", 0, 0, OPT_POSTCLOSE},
        {"polling", 1, 0, OPT_POLLING}, {"churn", 1, 0, OPT_CHURN}, {"report", 1, 0, OPT_REPORT},
        {"drain", 1, 0, OPT_DRAIN}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:n:c:t:d:w:s:r:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': O.host = optarg; break;
        case 'p': O.port = atoi(optarg); break;
        case OPT_TRIGGER: O.trigger_port = atoi(optarg); break;
        case OPT_PORT2: O.port2 = atoi(optarg); break;
        case OPT_POSTCLOSE: O.post_close = 1; break;
        case OPT_PATH: O.path = optarg; break;
        case 'n': O.nsp = optarg; break;
        case 'c': O.clients = atoi(optarg); break;
        case 't': O.threads = atoi(optarg); break;
        case OPT_PROCS: O.procs = atoi(optarg); break;
        case OPT_PENDING: O.pending = atoi(optarg); break;
        case OPT_CRATE: O.conn_rate = atof(optarg); break;
        case OPT_SRC: {
            char tmp[2048];
            snprintf(tmp, sizeof tmp, "%s", optarg);
            for (char *sv, *t = strtok_r(tmp, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
                if (O.nsrc == MAX_SRC) die("too many --src-ips");
                if (inet_pton(AF_INET, t, &O.src[O.nsrc]) != 1) die("bad address in --src-ips: %s", t);
                O.nsrc++;
            }
            break;
        }
        case 'd': O.duration = atof(optarg); break;
        case 'w': O.warmup = atof(optarg); break;
        case OPT_HOLD: O.hold = atof(optarg); break;
        case OPT_TMO: O.timeout = atof(optarg); break;
        case 's': O.size = atoi(optarg); break;
        case OPT_BATCH: O.batch = atoi(optarg); break;
        case 'r': O.rate = atof(optarg); break;
        case OPT_WIN: O.window = atoi(optarg); break;
        case OPT_STAMP: O.stamp = 1; break;
        case OPT_SIOCTL: O.sioctl = optarg; break;
        case OPT_STATE: O.state = optarg; break;
        case OPT_ECMD: O.emit_cmd = optarg; break;
        case OPT_COUNT: O.count = atoi(optarg); break;
        case OPT_IVL: O.interval = atof(optarg); break;
        case OPT_PID:
            if (O.npids == MAX_PIDS) die("too many --pid");
            O.pids[O.npids++] = (pid_t)atoi(optarg);
            break;
        case OPT_TREE:
            if (O.ntrees == MAX_PIDS) die("too many --pid-tree");
            O.trees[O.ntrees++] = (pid_t)atoi(optarg);
            break;
        case OPT_TAG: O.tag = optarg; break;
        case OPT_SEARCH: O.search = 1; break;
        case OPT_STEPS: O.max_steps = atoi(optarg); break;
        case OPT_GROWTH: O.growth = atof(optarg); break;
        case OPT_MAXRAMP: O.max_ramp = atof(optarg); break;
        case OPT_POLLING: O.polling = atoi(optarg); break;
        case OPT_CHURN: O.churn = atof(optarg); break;
        case OPT_REPORT: O.report = atof(optarg); break;
        case OPT_DRAIN: O.drain = atof(optarg); break;
        case 'q': O.quiet = 1; break;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (optind != argc) usage(2);
    if (O.mode == M_SELFTEST) return run_selftest();
    if (O.clients < 1 || O.clients > 10000000) die("bad --clients");
    if (O.threads < 1 || O.threads > 64) die("bad --threads");
    if (O.port < 1 || O.port > 65535) die("bad --port");
    if (O.window < 1) O.window = 1;
    if (O.mode == M_SOAK && (O.report <= 0 || O.drain < 0 || O.churn < 0)) die("bad --report, --drain or --churn");
    if (O.growth < 1.01 || O.growth > 10) die("bad --growth");
    if (O.nsp[0] != '/' || strlen(O.nsp) > 128 || strpbrk(O.nsp, ",\"\\")) die("bad --nsp");
    if (strlen(O.path) > 200 || strpbrk(O.path, " \r\n?")) die("bad --path");
    if (inet_pton(AF_INET, O.host, &O.dst) != 1) die("--host must be an IPv4 address");
    for (int i = 0; i < O.npids; i++)
        if (kill(O.pids[i], 0) < 0) die("--pid %d: no such process", (int)O.pids[i]);
    for (int i = 0; i < O.ntrees; i++)
        if (kill(O.trees[i], 0) < 0) die("--pid-tree %d: no such process", (int)O.trees[i]);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (O.mode != M_CONN) {
        long need = (long)O.clients * (O.mode == M_POLL && !O.post_close ? 2 : 1) + (O.mode == M_SOAK ? O.polling : 0) + 64;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (long)rl.rlim_cur < need)
            die("%d clients need %ld descriptors; the limit is %ld", O.clients, need, (long)rl.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, watchdog);
    double budget = O.warmup + O.duration + O.hold + 3 * O.timeout + O.clients / 100.0 + 120;
    if (O.mode == M_EMIT) budget += O.count * (O.interval + 5.5);
    if (O.search) budget += O.max_steps * (O.warmup + O.duration + 25);
    if (O.mode == M_SOAK) budget += O.drain + 60;
    alarm((unsigned)budget);
    switch (O.mode) {
    case M_FANOUT:
    case M_POLL: return run_fanout();
    case M_ECHO: return run_echo();
    case M_CONN: return run_conn();
    case M_EMIT: return run_emit();
    case M_SOAK: return run_soak();
    }
    return 2;
}

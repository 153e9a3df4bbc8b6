/* dispatch: the handler dispatcher (see dispatch.h).
 *
 * One thread, one poll() loop.  Records read from the inbox get a slot in a
 * ring (in seq order) with a count of the handlers still working on them;
 * the cursor saved in the store is the seq before the oldest slot whose
 * count is not zero.  Commands are queued per socket ("lanes"): a lane runs
 * one command at a time; lanes with work wait in a FIFO for one of the
 * max_procs process slots.  Process handlers are fed through a bounded
 * queue and their stdout is applied with actions_apply_json. */
#include "dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/paths.h"
#include "notify/notify.h"
#include "proto/json.h"
#include "server/actions.h"
#include "server/reader.h"
#include "proto/sio_parser.h"
#include "base/stats.h"
#include "base/util.h"

#define LINE_MAX_BYTES (1u << 20)       /* a handler's output line */
#define AUTH_OUT_MAX (1u << 20)         /* an auth command's stdout */
#define STDERR_LOG_MAX (64u << 10)      /* stderr logged per command run */
#define STDOUT_DEBUG_MAX 4096           /* stdout of a command shown at debug */
#define READ_CHUNK 65536
#define PROC_READ_MAX (4u << 20)        /* stdout read from a process per turn */
#define SAVE_EVERY_MS 20
#define STOP_GRACE_MS 2000
#define PROC_STOP_GRACE_MS 1000
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 10000
#define NBUCKETS 4096
#define NO_SLOT UINT64_MAX              /* a queued line that pins nothing */

/* ---- records in flight ---------------------------------------------------- */

typedef struct ring {
    uint64_t *seq;
    uint32_t *refs;
    size_t cap;
    uint64_t head, tail; /* slot numbers: [head, tail) are in flight */
} ring;

/* ---- commands ----------------------------------------------------------- */

enum { JOB_CMD = 0, JOB_AUTH = 1 };

typedef struct job {
    struct job *next;
    uint64_t slot, seq;
    int kind;
    const cfg_nsp *sec;
    const char *cmd;  /* borrowed from the config */
    char key[320];    /* config key, for logs */
    long timeout_ms;
    char *input;      /* stdin */
    size_t input_len;
    char type[16];
    char nsp[SIO_NSP_MAX + 1];
    char socket[UTIL_ID_LEN + 1];
    char sid[UTIL_ID_LEN + 1];
    char *event;      /* event name, or NULL */
    long long ack;    /* ack id the client wants, or -1 */
    cJSON *auth;      /* JOB_AUTH: the client's auth object */
} job;

typedef struct lane {
    char key[UTIL_ID_LEN + 4];
    job *head, *tail;
    size_t n;
    int running, queued, dropping;
    struct lane *hnext, *rnext;
} lane;

typedef struct run {
    job *j;
    lane *l;
    pid_t pid;
    int pidfd;
    int fd_in, fd_out, fd_err;
    size_t in_off;
    buf out, err;
    size_t err_logged, out_total;
    int64_t start_ms, deadline_ms;
    int timed_out, exited, status;
    int stopped; /* killed at shutdown: its record is handled again at the next start */
} run;

/* ---- process handlers ----------------------------------------------------- */

typedef struct pmark {
    size_t start, end; /* the record's line in q: [start, end) */
    uint64_t slot;
} pmark;

typedef struct pconn {
    struct pconn *next;
    char sid[UTIL_ID_LEN + 1];
    char nsp[SIO_NSP_MAX + 1];
    char socket[UTIL_ID_LEN + 1];
    int64_t deadline;
} pconn;

typedef struct phandler {
    struct phandler *next;
    const cfg_nsp *sec;
    const char *cmd;
    char name[SIO_NSP_MAX + 16];
    long timeout_ms;
    pid_t pid;
    int pidfd, fd_in, fd_out, fd_err;
    buf q;          /* stdin queue: bytes [q_off, q.len) not yet written */
    size_t q_off;
    pmark *marks;   /* records in q, in order: [mhead, nmarks) */
    size_t nmarks, mhead, mcap;
    buf line;       /* partial stdout line */
    int skipping;   /* discarding the rest of an over-long line */
    buf err;
    int64_t started_ms, restart_at;
    int64_t progress_ms;   /* last write to its stdin (or when data became pending) */
    int unpinned_logged;
    int fails;
    size_t dropped;
    int64_t drop_logged_ms;
    pconn *pending;
} phandler;

struct dispatch {
    server *srv;
    dispatch_opts o;
    pthread_t th;
    int stop_fd;
    volatile int stopping;
    notify_sub *sub;
    ring r;
    uint64_t scanned, saved;
    int64_t last_save;
    int more;               /* the inbox has records we did not read yet */
    lane *buckets[NBUCKETS];
    lane *ready_head, *ready_tail;
    run **runs;
    size_t nrun;
    phandler *procs;
    char **base_env;
    size_t nbase_env;
    char *cwd;
};

/* ---- small helpers ---------------------------------------------------------- */

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static const char *esc(char *out, size_t n, const char *s) {
    return log_escape(out, n, s ? s : "", s ? strlen(s) : 0);
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_str(char *dst, size_t n, const char *s) {
    snprintf(dst, n, "%s", s ? s : "");
}

static long section_timeout(const dispatch *d, const cfg_nsp *sec) {
    const char *t = cfg_nsp_get(sec, "timeout");
    long v;
    if (t && util_parse_long(t, 1, 3600000, &v) == 0) return v;
    return d->o.default_timeout_ms;
}

static const char *sec_name(const dispatch *d, const cfg_nsp *sec) {
    if (sec == &d->srv->cfg.engine) return "[engine]";
    return sec->name;
}

/* ---- the ring ------------------------------------------------------------ */

static int ring_init(ring *r, size_t cap) {
    r->seq = calloc(cap, sizeof *r->seq);
    r->refs = calloc(cap, sizeof *r->refs);
    r->cap = cap;
    r->head = r->tail = 0;
    return r->seq && r->refs ? 0 : -ENOMEM;
}

static void ring_free(ring *r) {
    free(r->seq);
    free(r->refs);
}

static int ring_full(const ring *r) { return r->tail - r->head >= r->cap; }

static uint64_t ring_push(ring *r, uint64_t seq) {
    uint64_t slot = r->tail++;
    r->seq[slot % r->cap] = seq;
    r->refs[slot % r->cap] = 0;
    return slot;
}

static void ring_ref(ring *r, uint64_t slot) { r->refs[slot % r->cap]++; }

static void ring_release(ring *r, uint64_t slot) {
    if (r->refs[slot % r->cap] > 0) r->refs[slot % r->cap]--;
}

/* The last seq such that every record up to it is handled. */
static uint64_t watermark(dispatch *d) {
    ring *r = &d->r;
    while (r->head < r->tail && r->refs[r->head % r->cap] == 0) r->head++;
    if (r->head < r->tail) return r->seq[r->head % r->cap] - 1;
    return d->scanned;
}

/* ---- applying actions -------------------------------------------------------- */

/* Saves the cursor inside t when it moved. */
static int put_cursor(dispatch *d, store_txn *t, uint64_t *saving) {
    uint64_t w = watermark(d);
    *saving = w;
    if (w == d->saved) return 0;
    reader_id me = reader_self(READER_DISPATCHER);
    return reader_put(t, &me, w);
}

static void cursor_saved(dispatch *d, uint64_t w) {
    d->saved = w;
    d->last_save = util_now_ms();
}

/* Applies n actions in one write transaction (and saves the cursor).  When
 * the transaction fails as a whole, each action is retried alone once.
 * who: for logs. */
/* Producers wait while the fronts are this many records behind the log. */
#define BACKLOG_MAX_RECORDS 10000
#define BACKLOG_MAX_WAIT_MS 10000

static void apply_actions(dispatch *d, cJSON **acts, size_t n, const char *self, const char *who) {
    if (n == 0) return;
    if (reader_backlog_wait(d->srv, BACKLOG_MAX_RECORDS, util_now_ms() + BACKLOG_MAX_WAIT_MS))
        log_warn("handler output applied although a WebSocket front is %d records behind for %d ms",
                 BACKLOG_MAX_RECORDS, BACKLOG_MAX_WAIT_MS);
    char err[512], e1[200], e2[300], e3[600];
    for (int pass = 0; pass < 2; pass++) {
        size_t per = pass == 0 ? n : 1;
        for (size_t i = 0; i < n; i += per) {
            store_txn *t;
            int rc = store_begin(d->srv->st, 1, &t);
            if (rc) {
                log_error("handler actions from %s: cannot begin a transaction: %s",
                          esc(e1, sizeof e1, who), store_strerror(rc));
                return;
            }
            uint64_t seq = 0, maxseq = 0, saving = 0;
            for (size_t k = i; k < i + per && k < n && rc >= 0; k++) {
                err[0] = 0;
                seq = 0;
                rc = actions_apply_json(d->srv, t, acts[k], self, &seq, err, sizeof err);
                if (seq > maxseq) maxseq = seq;
                if (rc == ACTIONS_EUSAGE || rc == ACTIONS_ELIMIT) {
                    char *txt = json_print(acts[k]);
                    log_warn("handler %s: action refused (%s): %s", esc(e1, sizeof e1, who),
                             esc(e2, sizeof e2, err), esc(e3, sizeof e3, txt));
                    free(txt);
                    rc = 0;
                }
            }
            if (rc >= 0) rc = put_cursor(d, t, &saving);
            if (rc >= 0) rc = store_commit(t);
            else store_abort(t);
            if (rc >= 0) {
                cursor_saved(d, saving);
                server_notify(d->srv, maxseq);
                continue;
            }
            if (pass == 0 && n > 1) {
                log_warn("handler %s: a batch of %zu actions failed (%s): retrying one by one",
                         esc(e1, sizeof e1, who), n, store_strerror(rc));
                goto retry;
            }
            log_error("handler %s: action failed: %s", esc(e1, sizeof e1, who), store_strerror(rc));
        }
        return;
    retry:;
    }
}

static void apply_one(dispatch *d, cJSON *act, const char *self, const char *who) {
    apply_actions(d, &act, 1, self, who);
}

static cJSON *refuse_action(const char *sid, const char *nsp, const char *socket,
                            const char *message, const cJSON *data) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "action", "refuse");
    cJSON_AddStringToObject(a, "sid", sid);
    cJSON_AddStringToObject(a, "nsp", nsp);
    if (socket && *socket) cJSON_AddStringToObject(a, "socket", socket);
    cJSON_AddStringToObject(a, "message", message);
    if (data) cJSON_AddItemToObject(a, "data", cJSON_Duplicate(data, 1));
    return a;
}

static cJSON *accept_action(const char *sid, const char *nsp, const char *socket,
                            const cJSON *auth, const cJSON *data) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "action", "accept");
    cJSON_AddStringToObject(a, "socket", socket);
    cJSON_AddStringToObject(a, "sid", sid);
    cJSON_AddStringToObject(a, "nsp", nsp);
    if (auth) cJSON_AddItemToObject(a, "auth", cJSON_Duplicate(auth, 1));
    if (data) cJSON_AddItemToObject(a, "data", cJSON_Duplicate(data, 1));
    return a;
}

/* ---- spawning ------------------------------------------------------------------ */

/* Runs `/bin/sh -c cmd` in a new process group with stdin/stdout/stderr on
 * pipes (our ends non-blocking).  extra: NULL-terminated "K=V" strings added
 * to the base environment. */
static int spawn_sh(dispatch *d, const char *cmd, char *const *extra, pid_t *pid, int *pidfd,
                    int *fd_in, int *fd_out, int *fd_err) {
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        int e = -errno;
        close_fd(&pin[0]), close_fd(&pin[1]), close_fd(&pout[0]), close_fd(&pout[1]);
        close_fd(&perr[0]), close_fd(&perr[1]);
        return e;
    }
    size_t nextra = 0;
    while (extra && extra[nextra]) nextra++;
    char **envp = calloc(d->nbase_env + nextra + 1, sizeof *envp);
    if (!envp) {
        close_fd(&pin[0]), close_fd(&pin[1]), close_fd(&pout[0]), close_fd(&pout[1]);
        close_fd(&perr[0]), close_fd(&perr[1]);
        return -ENOMEM;
    }
    memcpy(envp, d->base_env, d->nbase_env * sizeof *envp);
    for (size_t i = 0; i < nextra; i++) envp[d->nbase_env + i] = extra[i];

    int fds[3] = {pin[0], pout[1], perr[1]}, p = 0;
    int rc = util_spawn_sh(cmd, envp, d->cwd, fds, &p);
    *pid = p;
    free(envp);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    if (rc) {
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        return rc;
    }
    set_nonblock(pin[1]);
    set_nonblock(pout[0]);
    set_nonblock(perr[0]);
    *fd_in = pin[1];
    *fd_out = pout[0];
    *fd_err = perr[0];
    *pidfd = util_pidfd_open(*pid);
    return 0;
}

/* Logs the complete lines of an stderr buffer (all of it when final). */
static void log_stderr(buf *b, size_t *logged, const char *who, int final) {
    char e1[200], e2[1100];
    size_t start = 0;
    for (;;) {
        char *nl = b->len > start ? memchr(b->data + start, '\n', b->len - start) : NULL;
        size_t end = nl ? (size_t)(nl - b->data) : b->len;
        if (!nl && !(final && end > start)) break;
        if (!logged || *logged < STDERR_LOG_MAX) {
            log_warn("handler %s stderr: %s", esc(e1, sizeof e1, who),
                     log_escape(e2, sizeof e2, b->data + start, end - start));
            if (logged) {
                *logged += end - start + 1;
                if (*logged >= STDERR_LOG_MAX)
                    log_warn("handler %s: more stderr not logged", esc(e1, sizeof e1, who));
            }
        }
        start = nl ? end + 1 : end;
        if (!nl) break;
    }
    if (start) {
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
        if (b->data) b->data[b->len] = 0;
    }
    /* One line longer than we keep: log what we have. */
    if (b->len >= 8192) {
        if (!logged || *logged < STDERR_LOG_MAX)
            log_warn("handler %s stderr: %s", esc(e1, sizeof e1, who),
                     log_escape(e2, sizeof e2, b->data, b->len));
        if (logged) *logged += b->len;
        buf_reset(b);
    }
}

/* Reads what is available on fd into b (up to cap bytes in b; the rest is
 * read and counted in *dropped).  Returns 1 at EOF, 0 otherwise. */
static int drain(int fd, buf *b, size_t cap, size_t *total, size_t max_read) {
    char chunk[READ_CHUNK];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0) return 1;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            return 1;
        }
        if (total) *total += (size_t)n;
        size_t keep = b->len < cap ? cap - b->len : 0;
        if (keep > (size_t)n) keep = (size_t)n;
        if (keep) buf_append(b, chunk, keep);
        got += (size_t)n;
        if (got >= max_read) return 0;
    }
}

/* ---- lanes ------------------------------------------------------------------- */

static unsigned lane_hash(const char *k) {
    unsigned h = 2166136261u;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h % NBUCKETS;
}

static lane *lane_get(dispatch *d, const char *key, int create) {
    unsigned h = lane_hash(key);
    for (lane *l = d->buckets[h]; l; l = l->hnext)
        if (!strcmp(l->key, key)) return l;
    if (!create) return NULL;
    lane *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    copy_str(l->key, sizeof l->key, key);
    l->hnext = d->buckets[h];
    d->buckets[h] = l;
    return l;
}

static void lane_drop(dispatch *d, lane *l) {
    unsigned h = lane_hash(l->key);
    for (lane **p = &d->buckets[h]; *p; p = &(*p)->hnext)
        if (*p == l) { *p = l->hnext; break; }
    free(l);
}

static void lane_ready(dispatch *d, lane *l) {
    if (l->queued || l->running || !l->head) return;
    l->queued = 1;
    l->rnext = NULL;
    if (d->ready_tail) d->ready_tail->rnext = l;
    else d->ready_head = l;
    d->ready_tail = l;
}

static void job_free(job *j) {
    if (!j) return;
    free(j->input);
    free(j->event);
    cJSON_Delete(j->auth);
    free(j);
}

/* ---- commands: start and finish --------------------------------------------- */

static void job_who(const dispatch *d, const job *j, char *out, size_t n) {
    snprintf(out, n, "%s %s (socket %s)", sec_name(d, j->sec), j->key,
             j->socket[0] ? j->socket : j->sid);
}

cJSON *dispatch_auth_action(const char *sid, const char *nsp, const char *socket,
                            const cJSON *auth, int exit_code, const char *out, size_t len,
                            int whole) {
    cJSON *act = NULL;
    /* stdout without surrounding whitespace */
    const char *o = out ? out : "";
    size_t ol = out ? len : 0;
    while (ol && (*o == ' ' || *o == '\t' || *o == '\n' || *o == '\r')) o++, ol--;
    while (ol && (o[ol - 1] == ' ' || o[ol - 1] == '\t' || o[ol - 1] == '\n' || o[ol - 1] == '\r')) ol--;
    cJSON *parsed = ol && whole ? json_parse(o, ol) : NULL;
    if (!cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        parsed = NULL;
    }
    if (exit_code == 0) {
        act = accept_action(sid, nsp, socket, auth, parsed);
    } else if (exit_code < 0) {
        act = refuse_action(sid, nsp, socket, "auth handler failed", NULL);
    } else {
        const char *m = parsed ? jstr(parsed, "message") : NULL;
        if (m) {
            act = refuse_action(sid, nsp, socket, m, cJSON_GetObjectItemCaseSensitive(parsed, "data"));
        } else {
            char msg[4096];
            size_t n = 0;
            while (n < ol && n < sizeof msg - 1 && o[n] != '\n' && o[n] != '\r') n++;
            memcpy(msg, o, n);
            msg[n] = 0;
            act = refuse_action(sid, nsp, socket, n ? msg : "unauthorized", NULL);
        }
    }
    cJSON_Delete(parsed);
    return act;
}

static void finish_auth(dispatch *d, run *r, const char *who) {
    job *j = r->j;
    int ok = !r->timed_out && WIFEXITED(r->status);
    int code = ok ? WEXITSTATUS(r->status) : -1;
    cJSON *act = dispatch_auth_action(j->sid, j->nsp, j->socket, j->auth, code, r->out.data,
                                      r->out.len, r->out_total <= AUTH_OUT_MAX);
    if (log_enabled(LOG_DEBUG)) {
        char e1[300];
        log_debug("handler %s: %s", esc(e1, sizeof e1, who), jstr(act, "action"));
    }
    apply_one(d, act, NULL, who);
    cJSON_Delete(act);
}

static void finish_run(dispatch *d, run *r) {
    job *j = r->j;
    char who[400], e1[500];
    job_who(d, j, who, sizeof who);
    /* What is left on the pipes. */
    if (r->fd_out >= 0) drain(r->fd_out, &r->out, j->kind == JOB_AUTH ? AUTH_OUT_MAX : STDOUT_DEBUG_MAX,
                              &r->out_total, 1u << 20);
    if (r->fd_err >= 0) drain(r->fd_err, &r->err, 16384, NULL, 1u << 20);
    log_stderr(&r->err, &r->err_logged, who, 1);
    close_fd(&r->fd_in);
    close_fd(&r->fd_out);
    close_fd(&r->fd_err);
    close_fd(&r->pidfd);
    int64_t took = util_now_ms() - r->start_ms;
    if (!r->stopped && (r->timed_out || WIFSIGNALED(r->status) ||
                        (WIFEXITED(r->status) && WEXITSTATUS(r->status) && j->kind != JOB_AUTH)))
        stats_add(STATS_HANDLER_FAILURES, 1);
    if (r->stopped) {
        /* said when it was killed (loop_stopping) */
    } else if (r->timed_out)
        log_warn("handler %s: killed after %ld ms (timeout)", esc(e1, sizeof e1, who), j->timeout_ms);
    else if (WIFSIGNALED(r->status))
        log_warn("handler %s: killed by signal %d", esc(e1, sizeof e1, who), WTERMSIG(r->status));
    else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) && j->kind != JOB_AUTH)
        log_warn("handler %s: exit status %d", esc(e1, sizeof e1, who), WEXITSTATUS(r->status));
    else if (WIFEXITED(r->status) && WEXITSTATUS(r->status))
        log_info("handler %s: exit status %d (refused)", esc(e1, sizeof e1, who), WEXITSTATUS(r->status));
    if (j->kind != JOB_AUTH && r->out.len && log_enabled(LOG_DEBUG)) {
        char e2[1100];
        log_debug("handler %s stdout: %s", esc(e1, sizeof e1, who),
                  log_escape(e2, sizeof e2, r->out.data, r->out.len));
    }
    log_debug("handler %s: done in %lld ms", esc(e1, sizeof e1, who), (long long)took);
    if (j->kind == JOB_AUTH && !r->stopped) finish_auth(d, r, who);
    if (!r->stopped) ring_release(&d->r, j->slot); /* else the saved cursor stays before it */
    lane *l = r->l;
    l->running = 0;
    job_free(j);
    buf_free(&r->out);
    buf_free(&r->err);
    free(r);
    if (l->head) lane_ready(d, l);
    else lane_drop(d, l);
}

static void fail_job(dispatch *d, lane *l, job *j, const char *why) {
    char who[400], e1[500];
    job_who(d, j, who, sizeof who);
    log_error("handler %s: cannot start: %s", esc(e1, sizeof e1, who), why);
    stats_add(STATS_HANDLER_FAILURES, 1);
    if (j->kind == JOB_AUTH) {
        cJSON *act = refuse_action(j->sid, j->nsp, j->socket, "auth handler failed", NULL);
        apply_one(d, act, NULL, who);
        cJSON_Delete(act);
    }
    ring_release(&d->r, j->slot);
    job_free(j);
    if (l->head) lane_ready(d, l);
    else lane_drop(d, l);
}

static void start_job(dispatch *d, lane *l) {
    job *j = l->head;
    l->head = j->next;
    if (!l->head) l->tail = NULL;
    l->n--;
    if (l->dropping && l->n < d->o.max_lane / 2) l->dropping = 0;

    char acks[32] = "";
    if (j->ack >= 0) snprintf(acks, sizeof acks, "%lld", j->ack);
    char *extra[8] = {0};
    size_t ne = 0;
    int bad = 0;
    bad |= asprintf(&extra[ne++], "SIO_TYPE=%s", j->type) < 0;
    bad |= asprintf(&extra[ne++], "SIO_SID=%s", j->sid) < 0;
    if (j->nsp[0]) bad |= asprintf(&extra[ne++], "SIO_NSP=%s", j->nsp) < 0;
    if (j->socket[0]) bad |= asprintf(&extra[ne++], "SIO_SOCKET=%s", j->socket) < 0;
    if (j->event) bad |= asprintf(&extra[ne++], "SIO_EVENT=%s", j->event) < 0;
    if (acks[0]) bad |= asprintf(&extra[ne++], "SIO_ACK_ID=%s", acks) < 0;
    run *r = bad ? NULL : calloc(1, sizeof *r);
    int rc = r ? spawn_sh(d, j->cmd, extra, &r->pid, &r->pidfd, &r->fd_in, &r->fd_out, &r->fd_err)
               : -ENOMEM;
    for (size_t i = 0; i < ne; i++) free(extra[i]);
    if (rc) {
        free(r);
        l->running = 0;
        fail_job(d, l, j, strerror(-rc));
        return;
    }
    r->j = j;
    r->l = l;
    r->start_ms = util_now_ms();
    r->deadline_ms = r->start_ms + j->timeout_ms;
    r->out.limit = 0;
    l->running = 1;
    d->runs[d->nrun++] = r;
    if (log_enabled(LOG_DEBUG)) {
        char who[400], e1[500];
        job_who(d, j, who, sizeof who);
        log_debug("handler %s: started pid %d", esc(e1, sizeof e1, who), (int)r->pid);
    }
}

static void start_ready(dispatch *d) {
    while (!d->stopping && d->nrun < d->o.max_procs && d->ready_head) {
        lane *l = d->ready_head;
        d->ready_head = l->rnext;
        if (!d->ready_head) d->ready_tail = NULL;
        l->queued = 0;
        if (l->running || !l->head) continue;
        start_job(d, l);
    }
}

/* Feeds stdin of a command; closes it when everything is written. */
static void run_write(run *r) {
    while (r->fd_in >= 0 && r->in_off < r->j->input_len) {
        ssize_t n = write(r->fd_in, r->j->input + r->in_off, r->j->input_len - r->in_off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            close_fd(&r->fd_in); /* EPIPE: it does not read its input */
            return;
        }
        r->in_off += (size_t)n;
    }
    if (r->fd_in >= 0 && r->in_off >= r->j->input_len) close_fd(&r->fd_in);
}

static void kill_group(pid_t pid) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* ---- process handlers ------------------------------------------------------- */

static phandler *proc_get(dispatch *d, const cfg_nsp *sec) {
    for (phandler *p = d->procs; p; p = p->next)
        if (p->sec == sec) return p;
    const char *cmd = cfg_nsp_get(sec, "process");
    if (!cmd) return NULL;
    phandler *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->sec = sec;
    p->cmd = cmd;
    snprintf(p->name, sizeof p->name, "%s process", sec_name(d, sec));
    p->timeout_ms = section_timeout(d, sec);
    p->pidfd = p->fd_in = p->fd_out = p->fd_err = -1;
    p->next = d->procs;
    d->procs = p;
    return p;
}

static void proc_release_marks(dispatch *d, phandler *p, size_t upto) {
    while (p->mhead < p->nmarks && p->marks[p->mhead].end <= upto) {
        if (p->marks[p->mhead].slot != NO_SLOT) ring_release(&d->r, p->marks[p->mhead].slot);
        p->mhead++;
    }
}

/* The process does not take its input (stuck, or down for a while): its
 * queued lines stop holding the inbox cursor back, so that the other
 * handlers never stall behind it.  They stay queued (bounded). */
static void proc_unpin(dispatch *d, phandler *p, const char *why) {
    size_t n = 0;
    for (size_t i = p->mhead; i < p->nmarks; i++) {
        if (p->marks[i].slot == NO_SLOT) continue;
        ring_release(&d->r, p->marks[i].slot);
        p->marks[i].slot = NO_SLOT;
        n++;
    }
    if (n && !p->unpinned_logged) {
        char e1[200];
        log_warn("handler %s: %s; %zu queued record(s) no longer hold the inbox cursor",
                 esc(e1, sizeof e1, p->name), why, n);
        p->unpinned_logged = 1;
    }
}

/* Drops written bytes from the front of the queue, never past the start
 * of a record that is partly written. */
static void proc_compact(phandler *p) {
    size_t off = p->q_off;
    if (p->mhead < p->nmarks && p->marks[p->mhead].start < off) off = p->marks[p->mhead].start;
    if (off == 0) return;
    if (off < p->q.len && off < (256u << 10)) return;
    memmove(p->q.data, p->q.data + off, p->q.len - off);
    p->q.len -= off;
    if (p->q.data) p->q.data[p->q.len] = 0;
    p->q_off -= off;
    size_t k = 0;
    for (size_t i = p->mhead; i < p->nmarks; i++) {
        p->marks[k] = p->marks[i];
        p->marks[k].start -= off;
        p->marks[k].end -= off;
        k++;
    }
    p->nmarks = k;
    p->mhead = 0;
}

/* Queues one record line (without newline) for process p. */
static void proc_feed(dispatch *d, phandler *p, const char *line, size_t len, uint64_t slot) {
    if (p->q.len - p->q_off + len + 1 > d->o.max_proc_queue) {
        p->dropped++;
        int64_t now = util_now_ms();
        if (now - p->drop_logged_ms >= 1000) {
            char e1[200];
            log_warn("handler %s: not reading its input fast enough: %zu record(s) dropped",
                     esc(e1, sizeof e1, p->name), p->dropped);
            p->drop_logged_ms = now;
            p->dropped = 0;
        }
        return;
    }
    if (p->q_off >= p->q.len) p->progress_ms = util_now_ms();
    if (p->nmarks == p->mcap) {
        proc_compact(p);
        if (util_grow(&p->marks, &p->mcap, p->nmarks, sizeof *p->marks, 64)) return;
    }
    size_t start = p->q.len;
    if (buf_append(&p->q, line, len) || buf_putc(&p->q, '\n')) {
        p->q.len = start;
        return;
    }
    /* While the ring is more than half full, queued lines pin nothing: a slow
     * process must not stop the inbox from being read for everyone else. */
    if (d->r.tail - d->r.head >= d->r.cap / 2) slot = NO_SLOT;
    p->marks[p->nmarks++] = (pmark){start, p->q.len, slot};
    if (slot != NO_SLOT) ring_ref(&d->r, slot);
}

static void proc_start(dispatch *d, phandler *p) {
    char e1[200];
    int rc = spawn_sh(d, p->cmd, NULL, &p->pid, &p->pidfd, &p->fd_in, &p->fd_out, &p->fd_err);
    if (rc) {
        p->pid = 0;
        p->fails++;
        long delay = 100L << (p->fails > 9 ? 9 : p->fails - 1);
        if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
        p->restart_at = util_now_ms() + delay;
        log_error("handler %s: cannot start: %s (next try in %ld ms)", esc(e1, sizeof e1, p->name),
                  strerror(-rc), delay);
        return;
    }
    p->started_ms = p->progress_ms = util_now_ms();
    buf_reset(&p->line);
    p->skipping = 0;
    log_info("handler %s: started (pid %d)", esc(e1, sizeof e1, p->name), (int)p->pid);
}

/* The process died (status from waitpid): close, drop the half-written
 * record, schedule the restart. */
static void proc_exited(dispatch *d, phandler *p, int status) {
    char e1[200];
    if (p->fd_err >= 0) drain(p->fd_err, &p->err, 16384, NULL, 1u << 20);
    log_stderr(&p->err, NULL, p->name, 1);
    close_fd(&p->fd_in);
    close_fd(&p->fd_out);
    close_fd(&p->fd_err);
    close_fd(&p->pidfd);
    int64_t now = util_now_ms();
    if (now - p->started_ms >= BACKOFF_RESET_MS) p->fails = 0;
    p->fails++;
    long delay = 100L << (p->fails > 9 ? 9 : p->fails - 1);
    if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
    if (d->stopping) delay = 0;
    if (!d->stopping) stats_add(STATS_HANDLER_FAILURES, 1);
    if (WIFSIGNALED(status))
        log_warn("handler %s: pid %d killed by signal %d%s", esc(e1, sizeof e1, p->name), (int)p->pid,
                 WTERMSIG(status), d->stopping ? "" : "; restarting");
    else
        log_warn("handler %s: pid %d exited with status %d%s", esc(e1, sizeof e1, p->name),
                 (int)p->pid, WEXITSTATUS(status), d->stopping ? "" : "; restarting");
    if (!d->stopping && delay > 100) log_info("handler %s: restart in %ld ms", esc(e1, sizeof e1, p->name), delay);
    p->pid = 0;
    p->restart_at = now + delay;
    /* A record cut in the middle is lost: the next process starts at a line. */
    if (p->mhead < p->nmarks && p->q_off > p->marks[p->mhead].start) {
        p->q_off = p->marks[p->mhead].end;
        proc_release_marks(d, p, p->q_off);
    }
    proc_compact(p);
}

static void proc_write(dispatch *d, phandler *p) {
    while (p->fd_in >= 0 && p->q_off < p->q.len) {
        size_t want = p->q.len - p->q_off;
        if (want > (1u << 20)) want = 1u << 20;
        ssize_t n = write(p->fd_in, p->q.data + p->q_off, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            char e1[200];
            log_warn("handler %s: its stdin is closed (%s): killing it", esc(e1, sizeof e1, p->name),
                     strerror(errno));
            close_fd(&p->fd_in);
            if (p->pid > 0) kill_group(p->pid);
            break;
        }
        p->q_off += (size_t)n;
        p->progress_ms = util_now_ms();
        p->unpinned_logged = 0;
        proc_release_marks(d, p, p->q_off);
    }
    proc_compact(p);
}

/* An accept/refuse from a process answers a pending connect. */
static void proc_answered(phandler *p, const cJSON *act) {
    const char *a = jstr(act, "action");
    if (!a || (strcmp(a, "accept") && strcmp(a, "refuse"))) return;
    const char *sid = jstr(act, "sid"), *nsp = jstr(act, "nsp"), *sock = jstr(act, "socket");
    for (pconn **pp = &p->pending; *pp; pp = &(*pp)->next) {
        pconn *c = *pp;
        if ((sock && !strcmp(sock, c->socket)) ||
            (sid && !strcmp(sid, c->sid) && (!nsp || !strcmp(nsp, c->nsp)))) {
            *pp = c->next;
            free(c);
            return;
        }
    }
}

cJSON *dispatch_action_line(const char *s, size_t l, int *blank) {
    while (l && (s[l - 1] == '\r' || s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
    size_t k = 0;
    while (k < l && (s[k] == ' ' || s[k] == '\t')) k++;
    *blank = l == k;
    if (*blank) return NULL;
    cJSON *a = json_parse(s + k, l - k);
    if (!cJSON_IsObject(a) || !jstr(a, "action")) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* Reads stdout lines of a process and applies them as one batch. */
static void proc_read(dispatch *d, phandler *p) {
    char chunk[READ_CHUNK], e1[200], e2[300];
    size_t got = 0;
    cJSON **acts = NULL;
    size_t nacts = 0, cap = 0;
    int eof = 0;
    while (got < PROC_READ_MAX) {
        ssize_t n = read(p->fd_out, chunk, sizeof chunk);
        if (n == 0) { eof = 1; break; }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) eof = 1;
            break;
        }
        got += (size_t)n;
        size_t i = 0;
        while (i < (size_t)n) {
            char *nl = memchr(chunk + i, '\n', (size_t)n - i);
            size_t end = nl ? (size_t)(nl - chunk) : (size_t)n;
            if (p->skipping) {
                if (nl) p->skipping = 0;
            } else if (p->line.len + (end - i) > LINE_MAX_BYTES) {
                log_error("handler %s: output line longer than 1 MiB: skipped", esc(e1, sizeof e1, p->name));
                buf_reset(&p->line);
                if (!nl) p->skipping = 1;
            } else {
                buf_append(&p->line, chunk + i, end - i);
                if (nl) {
                    const char *s = p->line.data ? p->line.data : "";
                    int blank = 0;
                    cJSON *a = dispatch_action_line(s, p->line.len, &blank);
                    if (!blank) {
                        if (!a) {
                            log_warn("handler %s: not an action line, skipped: %s",
                                     esc(e1, sizeof e1, p->name), log_escape(e2, sizeof e2, s, p->line.len));
                        } else {
                            if (util_grow(&acts, &cap, nacts, sizeof *acts, 16)) {
                                cJSON_Delete(a);
                                goto next;
                            }
                            proc_answered(p, a);
                            acts[nacts++] = a;
                        }
                    }
                next:
                    buf_reset(&p->line);
                }
            }
            i = nl ? end + 1 : (size_t)n;
        }
    }
    if (nacts) apply_actions(d, acts, nacts, NULL, p->name);
    for (size_t i = 0; i < nacts; i++) cJSON_Delete(acts[i]);
    free(acts);
    if (eof) close_fd(&p->fd_out);
}

/* Refuses connects that a process did not answer in time. */
static void proc_connect_timeouts(dispatch *d, phandler *p, int64_t now, int64_t *next) {
    for (pconn **pp = &p->pending; *pp;) {
        pconn *c = *pp;
        if (c->deadline > now) {
            if (c->deadline < *next) *next = c->deadline;
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        char e1[200];
        log_warn("handler %s: no accept/refuse for socket %s within %ld ms: refused",
                 esc(e1, sizeof e1, p->name), c->socket, p->timeout_ms);
        cJSON *act = refuse_action(c->sid, c->nsp, c->socket, "auth handler failed", NULL);
        apply_one(d, act, NULL, p->name);
        cJSON_Delete(act);
        free(c);
    }
}

static void proc_free(phandler *p) {
    for (pconn *c = p->pending, *n; c; c = n) n = c->next, free(c);
    buf_free(&p->q);
    buf_free(&p->line);
    buf_free(&p->err);
    free(p->marks);
    free(p);
}

/* ---- reading the inbox --------------------------------------------------------- */

typedef struct scan_ctx {
    dispatch *d;
    store_txn *t;
    cJSON **now_acts; /* actions decided while reading (accept/refuse without handler) */
    size_t nnow, capnow;
} scan_ctx;

static void add_now(scan_ctx *c, cJSON *a) {
    if (!a) return;
    if (util_grow(&c->now_acts, &c->capnow, c->nnow, sizeof *c->now_acts, 8)) {
        cJSON_Delete(a);
        return;
    }
    c->now_acts[c->nnow++] = a;
}

/* Adds what a stateless command needs to know about the socket: its auth,
 * data and handshake, when the record does not carry them. */
static void enrich(store_txn *t, cJSON *o, const char *socket, const char *sid) {
    if (socket && *socket) {
        store_socket so;
        if (store_socket_get(t, socket, &so) == 0 && so.data && so.data_len) {
            cJSON *sd = json_parse(so.data, so.data_len);
            if (cJSON_IsObject(sd)) {
                static const char *const keys[] = {"auth", "data", "handshake"};
                for (size_t i = 0; i < 3; i++) {
                    cJSON *v = cJSON_GetObjectItemCaseSensitive(sd, keys[i]);
                    if (v && !cJSON_GetObjectItemCaseSensitive(o, keys[i]))
                        cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 1));
                }
            }
            cJSON_Delete(sd);
        }
    }
    if (sid && *sid && !cJSON_GetObjectItemCaseSensitive(o, "handshake")) {
        const char *hs;
        size_t hl;
        if (store_handshake_get(t, sid, &hs, &hl) == 0) {
            cJSON *h = json_parse(hs, hl);
            if (h) cJSON_AddItemToObject(o, "handshake", h);
        }
    }
}

/* The record as one line with "seq" first (records are compact JSON
 * objects; stray newlines are turned into spaces). */
static char *record_line(uint64_t seq, const char *rec, size_t len, size_t *out_len) {
    buf b = BUF_INIT;
    size_t i = 1;
    while (i < len && (rec[i] == ' ' || rec[i] == '\t' || rec[i] == '\n' || rec[i] == '\r')) i++;
    buf_printf(&b, "{\"seq\":%llu%s", (unsigned long long)seq, i < len && rec[i] == '}' ? "" : ",");
    size_t from = b.len;
    buf_append(&b, rec + 1, len - 1);
    for (size_t k = from; k < b.len; k++)
        if (b.data[k] == '\n' || b.data[k] == '\r') b.data[k] = ' ';
    return buf_take(&b, out_len);
}

static void enqueue_job(dispatch *d, const char *lane_key, job *j) {
    lane *l = lane_get(d, lane_key, 1);
    if (!l) {
        job_free(j);
        return;
    }
    if (l->n >= d->o.max_lane) {
        if (!l->dropping) {
            char e1[200];
            log_warn("handler %s %s: more than %u records pending for socket %s: dropping (record %llu)",
                     sec_name(d, j->sec), esc(e1, sizeof e1, j->key), d->o.max_lane,
                     j->socket[0] ? j->socket : j->sid, (unsigned long long)j->seq);
            l->dropping = 1;
        }
        job_free(j);
        if (!l->head && !l->running) lane_drop(d, l);
        return;
    }
    ring_ref(&d->r, j->slot);
    j->next = NULL;
    if (l->tail) l->tail->next = j;
    else l->head = j;
    l->tail = j;
    l->n++;
    lane_ready(d, l);
}

/* An inbox record and where it goes. */
typedef struct inrec {
    cJSON *o;
    const char *type, *nsp, *socket, *sid, *event;
    int is_msg;                 /* a bare Engine.IO message */
    const cfg_nsp *sec;         /* its config section */
    const char *key, *cmd;      /* the command's config key and command, or NULL */
    const char *proc_cmd;       /* the section's process handler, or NULL */
    char keybuf[64 + 256];
} inrec;

/* Parses a record and finds its handlers.  0, or -1 when it is skipped
 * (malformed: logged; or for no section: a connect is refused now). */
static int inrec_parse(scan_ctx *c, uint64_t seq, const char *rec, size_t len, inrec *r) {
    dispatch *d = c->d;
    memset(r, 0, sizeof *r);
    r->o = len ? json_parse(rec, len) : NULL;
    if (!cJSON_IsObject(r->o)) {
        log_warn("inbox record %llu is not a JSON object: skipped", (unsigned long long)seq);
        return -1;
    }
    r->type = jstr(r->o, "type"), r->nsp = jstr(r->o, "nsp"), r->socket = jstr(r->o, "socket");
    r->sid = jstr(r->o, "sid");
    int server_side = r->type && !strcmp(r->type, "serverSideEmit"); /* from the cluster: no client */
    if (server_side && !r->sid) r->sid = "";
    if (!r->type || !r->sid || strlen(r->sid) > UTIL_ID_LEN ||
        (r->socket && strlen(r->socket) > UTIL_ID_LEN) || (r->nsp && strlen(r->nsp) > SIO_NSP_MAX)) {
        log_warn("inbox record %llu lacks type/sid: skipped", (unsigned long long)seq);
        return -1;
    }
    /* stated's admin thread (admin.h) answers the admin namespace. */
    if (cfg_is_admin_nsp(&d->srv->cfg, r->nsp)) return -1;
    r->is_msg = !strcmp(r->type, "message");
    if (r->is_msg) r->sec = d->srv->cfg.engine_path ? &d->srv->cfg.engine : NULL;
    else r->sec = r->nsp ? cfg_nsp_find(&d->srv->cfg, r->nsp) : NULL;
    if (!r->sec) {
        if (!strcmp(r->type, "connect") && r->nsp)
            add_now(c, refuse_action(r->sid, r->nsp, r->socket, "Invalid namespace", NULL));
        return -1;
    }
    r->proc_cmd = cfg_nsp_get(r->sec, "process");
    if (!strcmp(r->type, "connect")) r->key = "auth";
    else if (!strcmp(r->type, "connection")) r->key = "connection";
    else if (!strcmp(r->type, "disconnect")) r->key = "disconnect";
    else if (r->is_msg) r->key = "message";
    else if (!strcmp(r->type, "event") && (r->event = jstr(r->o, "event"))) {
        snprintf(r->keybuf, sizeof r->keybuf, "event.%s", r->event);
        r->key = strlen(r->event) < 256 && cfg_nsp_get(r->sec, r->keybuf) ? r->keybuf : "any";
    } else if (server_side && (r->event = jstr(r->o, "event")) && strlen(r->event) < 256) {
        snprintf(r->keybuf, sizeof r->keybuf, "server_event.%s", r->event);
        r->key = r->keybuf;
    }
    r->cmd = r->key ? cfg_nsp_get(r->sec, r->key) : NULL;
    return 0;
}

/* Queues the record for the section's process handler; a connect it must
 * answer is remembered with its deadline. */
static void feed_process(dispatch *d, const inrec *r, uint64_t seq, const char *rec, size_t len,
                         uint64_t slot) {
    phandler *p = proc_get(d, r->sec);
    if (!p) return;
    size_t ll;
    char *line = record_line(seq, rec, len, &ll);
    if (line) proc_feed(d, p, line, ll, slot);
    free(line);
    if (strcmp(r->type, "connect") || r->cmd || !r->socket) return;
    pconn *pc = calloc(1, sizeof *pc);
    if (!pc) return;
    copy_str(pc->sid, sizeof pc->sid, r->sid);
    copy_str(pc->nsp, sizeof pc->nsp, r->nsp);
    copy_str(pc->socket, sizeof pc->socket, r->socket);
    pc->deadline = util_now_ms() + section_timeout(d, r->sec);
    pc->next = p->pending;
    p->pending = pc;
}

/* Queues a run of the record's command in its lane (one socket's records
 * run one after the other). */
static void queue_command(scan_ctx *c, inrec *r, uint64_t seq, uint64_t slot) {
    job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->slot = slot;
    j->seq = seq;
    j->kind = !strcmp(r->type, "connect") ? JOB_AUTH : JOB_CMD;
    j->sec = r->sec;
    j->cmd = r->cmd;
    copy_str(j->key, sizeof j->key, r->key);
    j->timeout_ms = section_timeout(c->d, r->sec);
    copy_str(j->type, sizeof j->type, r->type);
    copy_str(j->nsp, sizeof j->nsp, r->nsp);
    copy_str(j->socket, sizeof j->socket, r->socket);
    copy_str(j->sid, sizeof j->sid, r->sid);
    j->event = r->event ? strdup(r->event) : NULL;
    const cJSON *ack = cJSON_GetObjectItemCaseSensitive(r->o, "ack");
    j->ack = -1;
    long long id;
    if ((!strcmp(r->type, "event") || !strcmp(r->type, "serverSideEmit")) && json_integer(ack, &id) && id >= 0)
        j->ack = id;
    if (j->kind == JOB_AUTH) {
        const cJSON *auth = cJSON_GetObjectItemCaseSensitive(r->o, "auth");
        j->auth = auth ? cJSON_Duplicate(auth, 1) : NULL;
    }
    enrich(c->t, r->o, r->socket, r->sid);
    if (!cJSON_GetObjectItemCaseSensitive(r->o, "seq")) cJSON_AddNumberToObject(r->o, "seq", (double)seq);
    j->input = json_print(r->o);
    j->input_len = j->input ? strlen(j->input) : 0;
    char lk[UTIL_ID_LEN + 4];
    snprintf(lk, sizeof lk, "%c:%s", r->is_msg ? 'e' : 's', r->is_msg || !r->socket ? r->sid : r->socket);
    if (!j->input) {
        log_error("inbox record %llu: out of memory", (unsigned long long)seq);
        job_free(j);
    } else {
        enqueue_job(c->d, lk, j);
    }
}

static int scan_cb(void *arg, uint64_t seq, const void *recv, size_t len) {
    scan_ctx *c = arg;
    dispatch *d = c->d;
    if (ring_full(&d->r)) {
        d->more = 1;
        return 1;
    }
    d->scanned = seq;
    uint64_t slot = ring_push(&d->r, seq);
    inrec r;
    if (inrec_parse(c, seq, recv, len, &r) == 0) {
        if (r.proc_cmd) feed_process(d, &r, seq, recv, len, slot);
        if (!strcmp(r.type, "connect") && !r.cmd && !r.proc_cmd && r.socket) {
            /* No one to ask (the config changed): let it in. */
            add_now(c, accept_action(r.sid, r.nsp, r.socket,
                                     cJSON_GetObjectItemCaseSensitive(r.o, "auth"), NULL));
        }
        if (r.cmd) queue_command(c, &r, seq, slot);
        if (log_enabled(LOG_DEBUG)) {
            char e1[200];
            log_debug("inbox %llu: %s %s%s%s", (unsigned long long)seq, r.type,
                      esc(e1, sizeof e1, r.is_msg ? r.sid : r.nsp), r.cmd ? " -> command" : "",
                      r.proc_cmd ? " -> process" : "");
        }
    }
    cJSON_Delete(r.o);
    return 0;
}

static void read_inbox(dispatch *d) {
    store_txn *t;
    int rc = store_begin(d->srv->st, 0, &t);
    if (rc) {
        log_error("dispatcher: cannot read the inbox: %s", store_strerror(rc));
        return;
    }
    uint64_t first = 0, head = 0;
    rc = store_inbox_bounds(t, &first, &head);
    if (rc) {
        store_abort(t);
        log_error("dispatcher: cannot read the inbox bounds: %s", store_strerror(rc));
        return;
    }
    if (first > 0 && d->scanned + 1 < first && first <= head) {
        log_error("dispatcher: inbox records %llu..%llu were trimmed before they were handled",
                  (unsigned long long)d->scanned + 1, (unsigned long long)first - 1);
        d->scanned = first - 1;
    }
    d->more = 0;
    watermark(d); /* frees ring slots of handled records */
    scan_ctx c = {d, t, NULL, 0, 0};
    if (head > d->scanned) {
        rc = store_inbox_scan(t, d->scanned, head, scan_cb, &c);
        if (rc < 0) log_error("dispatcher: reading the inbox failed: %s", store_strerror(rc));
    }
    store_abort(t);
    if (c.nnow) apply_actions(d, c.now_acts, c.nnow, NULL, "dispatcher");
    for (size_t i = 0; i < c.nnow; i++) cJSON_Delete(c.now_acts[i]);
    free(c.now_acts);
}

/* ---- the cursor ------------------------------------------------------------------ */

static void save_cursor(dispatch *d, int force) {
    uint64_t w = watermark(d);
    if (w == d->saved) return;
    if (!force && util_now_ms() - d->last_save < SAVE_EVERY_MS) return;
    store_txn *t;
    reader_id me = reader_self(READER_DISPATCHER);
    int rc = store_begin(d->srv->st, 1, &t);
    if (!rc) rc = reader_put(t, &me, w);
    if (!rc) rc = store_commit(t);
    else if (t) store_abort(t);
    if (rc) log_error("dispatcher: cannot save the inbox cursor: %s", store_strerror(rc));
    else cursor_saved(d, w);
}

/* ---- the loop ---------------------------------------------------------------------- */

typedef struct pollset {
    struct pollfd *fds;
    size_t n, cap;
} pollset;

static size_t ps_add(pollset *ps, int fd, short ev) {
    if (util_grow(&ps->fds, &ps->cap, ps->n, sizeof *ps->fds, 64)) abort();
    ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = ev};
    return ps->n++;
}

static short ps_rev(const pollset *ps, int fd) {
    if (fd < 0) return 0;
    for (size_t i = 0; i < ps->n; i++)
        if (ps->fds[i].fd == fd) return ps->fds[i].revents;
    return 0;
}

/* Looks for the exit of a command (pidfd readable, or no pidfd: waitpid). */
static int check_exit(pid_t pid, int *status) {
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
        *status = st;
        return 1;
    }
    if (w < 0 && errno == ECHILD) {
        *status = 0;
        return 1;
    }
    return 0;
}

/* One turn's work: read the inbox, start and feed handlers, save the cursor. */
static void loop_work(dispatch *d, int64_t now, int *need_read, int64_t *next_fallback_read) {
    if (!d->stopping && (*need_read || d->more || now >= *next_fallback_read)) {
        read_inbox(d);
        *need_read = 0;
        *next_fallback_read = now + 1000;
    }
    /* Process handlers: start / restart, feed. */
    for (phandler *p = d->procs; p; p = p->next) {
        if (!d->stopping && p->pid == 0 && now >= p->restart_at) proc_start(d, p);
        if (p->pid > 0) proc_write(d, p);
        if (p->mhead < p->nmarks) {
            if (p->pid <= 0 && p->restart_at > now + 1000) proc_unpin(d, p, "it is down");
            else if (p->pid > 0 && now - p->progress_ms > p->timeout_ms)
                proc_unpin(d, p, "it has not read its input for a while");
        }
    }
    start_ready(d);
    for (size_t i = 0; i < d->nrun; i++) run_write(d->runs[i]);
    save_cursor(d, 0);
}

/* Stopping: process handlers got their stdin closed; past the grace time
 * everything still running is killed.  1 when nothing runs any more. */
static int loop_stopping(dispatch *d, int64_t now, int64_t *stop_deadline) {
    int busy = d->nrun > 0;
    for (phandler *p = d->procs; p; p = p->next) busy |= p->pid > 0;
    if (!busy) return 1;
    if (now >= *stop_deadline) {
        for (size_t i = 0; i < d->nrun; i++) {
            run *r = d->runs[i];
            if (!r->exited) {
                char who[400], e1[500];
                job_who(d, r->j, who, sizeof who);
                log_warn("handler %s: still running at shutdown: killed (it runs again at the next start)",
                         esc(e1, sizeof e1, who));
                r->stopped = 1;
                kill_group(r->pid);
            }
        }
        for (phandler *p = d->procs; p; p = p->next)
            if (p->pid > 0) kill_group(p->pid);
        *stop_deadline = now + 60000; /* now only waiting for the exits */
    } else if (now >= *stop_deadline - (STOP_GRACE_MS - PROC_STOP_GRACE_MS)) {
        for (phandler *p = d->procs; p; p = p->next)
            if (p->pid > 0) kill(-p->pid, SIGTERM);
    }
    return 0;
}

/* When the loop must look again at the latest (commands past their time
 * limit are killed on the way). */
static int64_t loop_next(dispatch *d, int64_t now, int64_t next_fallback_read) {
    int64_t next = now + (d->stopping ? 50 : 1000);
    int need_waitpid = 0;
    for (size_t i = 0; i < d->nrun; i++) {
        run *r = d->runs[i];
        if (!r->timed_out && now >= r->deadline_ms) {
            r->timed_out = 1;
            kill_group(r->pid);
        }
        if (!r->timed_out && r->deadline_ms < next) next = r->deadline_ms;
        if (r->pidfd < 0) need_waitpid = 1;
    }
    for (phandler *p = d->procs; p; p = p->next) {
        proc_connect_timeouts(d, p, now, &next);
        if (p->pid == 0 && !d->stopping && p->restart_at > now && p->restart_at < next)
            next = p->restart_at;
        if (p->pid > 0 && p->pidfd < 0) need_waitpid = 1;
    }
    if (d->saved != watermark(d) && d->last_save + SAVE_EVERY_MS < next)
        next = d->last_save + SAVE_EVERY_MS;
    if (need_waitpid && now + 20 < next) next = now + 20;
    if (next_fallback_read < next) next = next_fallback_read;
    return next;
}

/* Waits for any descriptor of the dispatcher (fds[0] the notify eventfd,
 * fds[1] the stop eventfd) or until next. */
static void loop_poll(dispatch *d, pollset *ps, int efd, int64_t next) {
    ps->n = 0;
    ps_add(ps, efd, POLLIN);
    ps_add(ps, d->stop_fd, POLLIN);
    for (size_t i = 0; i < d->nrun; i++) {
        run *r = d->runs[i];
        if (r->pidfd >= 0) ps_add(ps, r->pidfd, POLLIN);
        if (r->fd_in >= 0) ps_add(ps, r->fd_in, POLLOUT);
        if (r->fd_out >= 0) ps_add(ps, r->fd_out, POLLIN);
        if (r->fd_err >= 0) ps_add(ps, r->fd_err, POLLIN);
    }
    for (phandler *p = d->procs; p; p = p->next) {
        if (p->pid <= 0) continue;
        if (p->pidfd >= 0) ps_add(ps, p->pidfd, POLLIN);
        if (p->fd_in >= 0 && p->q_off < p->q.len) ps_add(ps, p->fd_in, POLLOUT);
        if (p->fd_out >= 0) ps_add(ps, p->fd_out, POLLIN);
        if (p->fd_err >= 0) ps_add(ps, p->fd_err, POLLIN);
    }
    int timeout = (int)(next - util_now_ms());
    if (timeout < 0) timeout = 0;
    int n = poll(ps->fds, ps->n, timeout);
    if (n < 0 && errno != EINTR) {
        log_error("dispatcher: poll: %s", strerror(errno));
        usleep(10000);
    }
}

/* Reads what commands wrote and finishes those that exited. */
static void loop_runs(dispatch *d, const pollset *ps) {
    for (size_t i = 0; i < d->nrun;) {
        run *r = d->runs[i];
        char who[400];
        if (ps_rev(ps, r->fd_out))
            if (drain(r->fd_out, &r->out, r->j->kind == JOB_AUTH ? AUTH_OUT_MAX : STDOUT_DEBUG_MAX,
                      &r->out_total, 1u << 20))
                close_fd(&r->fd_out);
        if (ps_rev(ps, r->fd_err)) {
            int eof = drain(r->fd_err, &r->err, 16384, NULL, 1u << 20);
            job_who(d, r->j, who, sizeof who);
            log_stderr(&r->err, &r->err_logged, who, 0);
            if (eof) close_fd(&r->fd_err);
        }
        if (!r->exited && (r->pidfd < 0 || ps_rev(ps, r->pidfd)))
            r->exited = check_exit(r->pid, &r->status);
        if (r->exited) {
            d->runs[i] = d->runs[--d->nrun];
            finish_run(d, r);
            continue;
        }
        i++;
    }
}

/* Reads what process handlers wrote and notices those that exited. */
static void loop_procs(dispatch *d, const pollset *ps) {
    for (phandler *p = d->procs; p; p = p->next) {
        if (p->pid <= 0) continue;
        if (ps_rev(ps, p->fd_out)) proc_read(d, p);
        if (ps_rev(ps, p->fd_err)) {
            int eof = drain(p->fd_err, &p->err, 16384, NULL, 1u << 20);
            log_stderr(&p->err, NULL, p->name, 0);
            if (eof) close_fd(&p->fd_err);
        }
        int st;
        if ((p->pidfd < 0 || ps_rev(ps, p->pidfd)) && check_exit(p->pid, &st)) {
            if (p->fd_out >= 0) proc_read(d, p); /* its last words */
            proc_exited(d, p, st);
        }
    }
}

static void *loop(void *arg) {
    dispatch *d = arg;
    pollset ps = {0};
    int efd = notify_sub_eventfd(d->sub);
    int64_t stop_deadline = 0, next_fallback_read = 0;
    int need_read = 1;
    for (;;) {
        int64_t now = util_now_ms();
        /* Read once: dispatch_stop sets it from another thread, and the grace
         * time must start before loop_stopping looks at it. */
        int stopping = __atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE);
        if (stopping && !stop_deadline) {
            stop_deadline = now + STOP_GRACE_MS;
            for (phandler *p = d->procs; p; p = p->next) close_fd(&p->fd_in);
            d->ready_head = d->ready_tail = NULL; /* queued commands are not started */
        }
        loop_work(d, now, &need_read, &next_fallback_read);
        if (stopping && loop_stopping(d, now, &stop_deadline)) break;
        loop_poll(d, &ps, efd, loop_next(d, now, next_fallback_read));
        if (ps.fds[0].revents) {
            notify_sub_ack(d->sub);
            need_read = 1;
        }
        if (ps.fds[1].revents) {
            uint64_t v;
            ssize_t rr = read(d->stop_fd, &v, sizeof v);
            (void)rr;
        }
        loop_runs(d, &ps);
        loop_procs(d, &ps);
    }
    save_cursor(d, 1);
    free(ps.fds);
    return NULL;
}

/* ---- start / stop ----------------------------------------------------------------- */

void dispatch_opts_env(dispatch_opts *o) {
    long v;
    const char *s = getenv("SIO_HANDLER_PROCS");
    if (s && util_parse_long(s, 1, 4096, &v) == 0) o->max_procs = (unsigned)v;
    s = getenv("SIO_HANDLER_QUEUE");
    if (s && util_parse_long(s, 1, 1000000, &v) == 0) o->max_lane = (unsigned)v;
}

static int add_env(dispatch *d, const char *k, const char *v) {
    char **n = realloc(d->base_env, (d->nbase_env + 2) * sizeof *n);
    if (!n) return -ENOMEM;
    d->base_env = n;
    if (asprintf(&d->base_env[d->nbase_env], "%s=%s", k, v) < 0) return -ENOMEM;
    d->nbase_env++;
    d->base_env[d->nbase_env] = NULL;
    return 0;
}

static void free_env(dispatch *d) {
    for (size_t i = 0; i < d->nbase_env; i++) free(d->base_env[i]);
    free(d->base_env);
    d->base_env = NULL;
    d->nbase_env = 0;
}

/* Makes sure fds 0-2 are open, so that pipes never take those numbers. */
static void ensure_std_fds(void) {
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) continue;
        int n = open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int dispatch_path(buf *out) {
    char exe[PATH_MAX];
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    if (paths_exe_dir(exe, sizeof exe) == 0) buf_printf(out, "%s:", exe);
    return buf_puts(out, path);
}

int dispatch_cwd(const server *srv, char *out, size_t n) {
    char cfgp[PATH_MAX];
    if (!srv->cfg.source || !realpath(srv->cfg.source, cfgp)) return -1;
    char *slash = strrchr(cfgp, '/');
    if (!slash) return -1;
    if (slash == cfgp) slash[1] = 0;
    else *slash = 0;
    return snprintf(out, n, "%s", cfgp) < (int)n ? 0 : -1;
}

static int setup_env(dispatch *d) {
    /* PATH: the directory of this program first (where sioctl lives). */
    buf p = BUF_INIT;
    int rc = dispatch_path(&p);
    if (!rc) rc = add_env(d, "PATH", p.data);
    buf_free(&p);
    char dir[PATH_MAX];
    if (!rc) rc = add_env(d, "SIO_STATE_DIR", realpath(d->srv->dir, dir) ? dir : d->srv->dir);
    if (!rc && d->srv->cfg.source) {
        char cfgp[PATH_MAX];
        rc = add_env(d, "SIO_CONFIG", realpath(d->srv->cfg.source, cfgp) ? cfgp : d->srv->cfg.source);
        if (!rc && dispatch_cwd(d->srv, dir, sizeof dir) == 0) d->cwd = strdup(dir);
    }
    /* Everything else of stated's environment is dropped (util_env_kept). */
    extern char **environ;
    for (char **e = environ; !rc && e && *e; e++)
        if (util_env_kept(*e) && strncmp(*e, "PATH=", 5)) {
            const char *eq = strchr(*e, '=');
            char key[256];
            if ((size_t)(eq - *e) < sizeof key)
                snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e), rc = add_env(d, key, eq + 1);
        }
    return rc;
}

/* Where to start: our saved cursor, else everything still stored. */
static int load_cursor(dispatch *d) {
    reader_id me = reader_self(READER_DISPATCHER);
    store_txn *t;
    int rc = store_begin(d->srv->st, 1, &t);
    if (rc) return rc;
    uint64_t first = 0, head = 0, cur = 0;
    rc = store_inbox_bounds(t, &first, &head);
    if (!rc && (rc = reader_get(t, &me, &cur)) == STORE_NOTFOUND) {
        cur = first ? first - 1 : 0;
        rc = 0;
    }
    if (!rc) {
        d->scanned = d->saved = cur;
        rc = reader_put(t, &me, cur);
    }
    if (!rc) rc = store_commit(t);
    else store_abort(t);
    if (!rc && cur < head)
        log_info("dispatcher: %llu inbox record(s) waiting since the last run",
                 (unsigned long long)(head - cur));
    return rc;
}

int dispatch_start(server *srv, const dispatch_opts *opts, dispatch **out) {
    *out = NULL;
    dispatch *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->srv = srv;
    d->stop_fd = -1;
    if (opts) d->o = *opts;
    if (!d->o.max_procs) d->o.max_procs = 32;
    if (!d->o.max_lane) d->o.max_lane = (unsigned)srv->cfg.max_handler_queue;
    if (!d->o.max_inflight) d->o.max_inflight = 65536;
    if (!d->o.max_proc_queue) d->o.max_proc_queue = 16u << 20;
    if (!d->o.default_timeout_ms) d->o.default_timeout_ms = 5000;
    ensure_std_fds();
    int rc = ring_init(&d->r, d->o.max_inflight);
    d->runs = calloc(d->o.max_procs, sizeof *d->runs);
    if (!rc && !d->runs) rc = -ENOMEM;
    if (!rc) rc = setup_env(d);
    if (!rc) rc = load_cursor(d);
    if (!rc) {
        d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->stop_fd < 0) rc = -errno;
    }
    /* It reads only the inbox: the hub leaves it asleep for commits that
     * appended nothing there (a plugin's answer, deliveries). */
    if (!rc) rc = notify_sub_start_for(srv->dir, NOTIFY_SUB_INBOX, &d->sub);
    if (!rc) {
        int prc = pthread_create(&d->th, NULL, loop, d);
        if (prc) rc = -prc;
    }
    if (rc) {
        if (d->sub) notify_sub_stop(d->sub);
        close_fd(&d->stop_fd);
        ring_free(&d->r);
        free(d->runs);
        free_env(d);
        free(d->cwd);
        free(d);
        return rc;
    }
    size_t ncmd = 0;
    for (size_t i = 0; i < srv->cfg.nnsp; i++) ncmd += srv->cfg.nsps[i].nkv;
    ncmd += srv->cfg.engine.nkv;
    log_info("dispatcher: started (%zu handler setting(s), up to %u commands at once, cursor %llu)",
             ncmd, d->o.max_procs, (unsigned long long)d->scanned);
    *out = d;
    return 0;
}

void dispatch_stop(dispatch *d) {
    if (!d) return;
    __atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t w = write(d->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(d->th, NULL);
    notify_sub_stop(d->sub);
    close_fd(&d->stop_fd);
    for (lane **b = d->buckets; b < d->buckets + NBUCKETS; b++) {
        for (lane *l = *b, *ln; l; l = ln) {
            ln = l->hnext;
            for (job *j = l->head, *jn; j; j = jn) jn = j->next, job_free(j);
            free(l);
        }
    }
    for (size_t i = 0; i < d->nrun; i++) {
        job_free(d->runs[i]->j);
        buf_free(&d->runs[i]->out);
        buf_free(&d->runs[i]->err);
        free(d->runs[i]);
    }
    for (phandler *p = d->procs, *pn; p; p = pn) pn = p->next, proc_free(p);
    ring_free(&d->r);
    free(d->runs);
    free_env(d);
    free(d->cwd);
    log_info("dispatcher: stopped (cursor %llu)", (unsigned long long)d->saved);
    free(d);
}

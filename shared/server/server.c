/* server: the per-process context (see server.h). */
#include "server/server.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/paths.h"
#include "base/stats.h"
#include "base/util.h"
#include "store/recover.h"

/* Reads a whole file into b (bounded). */
static int read_file(const char *path, buf *b) {
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    b->limit = 1 << 20;
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = buf_append(b, chunk, n);
    fclose(f);
    return rc;
}

/* stated's open: a store it cannot use is moved aside (loudly) and a fresh
 * one created; fast mode without a reserved map is said too. */
static int create_store(server *s, const store_opts *o) {
    char moved[PATH_MAX], why[512];
    int rc = recover_open(&s->st, s->dir, o, moved, sizeof moved, why, sizeof why);
    if (moved[0])
        log_error("the store in %s cannot be used (%s): moved data.mdb and lock.mdb to %s and started a new, empty store",
                  s->dir, why, moved);
    if (!rc && store_mode_note(s->st))
        log_warn("durability = fast without the shared map (slower commits; a full disk gives errors, not crashes): %s",
                 store_mode_note(s->st));
    return rc;
}

/* The answer to a user who may not use the state directory: whose it is. */
static void denied(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st)) {
        snprintf(err, errlen, "permission denied: cannot use the state directory %s: %s (run as the user "
                              "that owns it, or give this user access)", dir, strerror(errno));
        return;
    }
    struct group *g = getgrgid(st.st_gid);
    char gname[64];
    if (g) snprintf(gname, sizeof gname, "%s", g->gr_name);
    else snprintf(gname, sizeof gname, "%u", (unsigned)st.st_gid);
    snprintf(err, errlen, "permission denied: the state directory %s belongs to group %s (mode %o), "
                          "and this user (uid %u) is not in that group: run as a member of group %s",
             dir, gname, (unsigned)(st.st_mode & 07777), (unsigned)getuid(), gname);
}

/* Opens the store: stated with the map size and durability of the config
 * text; every other process the way stated opened it. */
static int open_store(server *s, const buf *text, const char *cfg_path, unsigned flags, char *err,
                      size_t errlen) {
    char cerr[512] = "";
    cfg pre;
    if (cfg_parse(&pre, text->data ? text->data : "", text->len, cerr, sizeof cerr)) {
        snprintf(err, errlen, "config %s: %s", cfg_path, cerr);
        cfg_free(&pre);
        return SERVER_ECONFIG;
    }
    store_opts o = {.create = (flags & SERVER_CREATE) != 0,
                    .map_size = (size_t)pre.map_size_mb << 20,
                    .durability = pre.durability == CFG_DURABILITY_SAFE ? STORE_SAFE : STORE_FAST};
    cfg_free(&pre);
    int rc = o.create ? create_store(s, &o) : store_open(&s->st, s->dir, &o);
    if (rc == -ENOENT)
        snprintf(err, errlen, "no store in %s: is stated running? (start it with: stated --state %s)",
                 s->dir, s->dir);
    else if (rc == -EACCES || rc == -EPERM)
        denied(s->dir, err, errlen);
    else if (rc == STORE_EBROKEN || rc == -EPROTO)
        snprintf(err, errlen, "cannot open the store in %s: %s (stated moves it aside and starts a new one when it starts)",
                 s->dir, store_strerror(rc));
    else if (rc)
        snprintf(err, errlen, "cannot open the store in %s: %s", s->dir, store_strerror(rc));
    return rc;
}

/* stated publishes the config text in the store; other processes without a
 * file of their own read it from there.  Then it is parsed into s->cfg. */
static int load_config(server *s, buf *text, const char *cfg_path, unsigned flags, char *err,
                       size_t errlen) {
    store_txn *t;
    int rc = store_begin(s->st, (flags & SERVER_CREATE) != 0, &t);
    if (!rc && (flags & SERVER_CREATE)) {
        rc = store_meta_put(t, "config", text->data ? text->data : "", text->len);
        if (!rc) rc = store_meta_put(t, "config_path", cfg_path ? cfg_path : "",
                                     cfg_path ? strlen(cfg_path) : 0);
        if (!rc) rc = store_commit(t); else store_abort(t);
    } else if (!rc) {
        const void *d;
        size_t len;
        if (!cfg_path && store_meta_get(t, "config", &d, &len) == 0) buf_append(text, d, len);
        store_abort(t);
    }
    if (rc) {
        snprintf(err, errlen, "cannot read the store in %s: %s", s->dir, store_strerror(rc));
        return rc;
    }
    char cerr[512] = "";
    rc = cfg_parse(&s->cfg, text->data ? text->data : "", text->len, cerr, sizeof cerr);
    if (rc) {
        snprintf(err, errlen, "config%s%s: %s", cfg_path ? " " : " published by stated",
                 cfg_path ? cfg_path : "", cerr);
        return SERVER_ECONFIG;
    }
    if (cfg_path) s->cfg.source = strdup(cfg_path);
    const char *url = getenv("SIO_REDIS_URL");
    if (url && *url && cfg_set_redis_url(&s->cfg, url, cerr, sizeof cerr)) {
        snprintf(err, errlen, "SIO_REDIS_URL: %s", cerr);
        return SERVER_ECONFIG;
    }
    return 0;
}

int server_open(server *s, const char *dir, const char *cfg_path, unsigned flags, char *err,
                size_t errlen) {
    memset(s, 0, sizeof *s);
    if (dir && *dir) {
        snprintf(s->dir, sizeof s->dir, "%s", dir);
    } else if (paths_state_dir(s->dir, sizeof s->dir)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    if (!cfg_path || !*cfg_path) cfg_path = getenv("SIO_CONFIG");
    if (cfg_path && !*cfg_path) cfg_path = NULL;
    buf text = BUF_INIT;
    int rc = cfg_path ? read_file(cfg_path, &text) : 0;
    if (rc) {
        snprintf(err, errlen, "cannot read config %s: %s", cfg_path,
                 rc == -ENOMEM ? "file too large" : strerror(-rc));
        buf_free(&text);
        return SERVER_ECONFIG;
    }
    rc = open_store(s, &text, cfg_path, flags, err, errlen);
    if (!rc && (rc = load_config(s, &text, cfg_path, flags, err, errlen))) {
        store_close(s->st);
        cfg_free(&s->cfg);
    }
    buf_free(&text);
    if (rc) return rc;
    if ((rc = stats_open(s->dir)) != 0) /* counting off, serving on */
        log_warn("cannot use %s/%s for the counters: %s (the metrics will not count this process)",
                 s->dir, STATS_FILE, strerror(-rc));
    if (flags & SERVER_SUBSCRIBE) {
        rc = notify_sub_start(s->dir, &s->sub);
        if (rc) {
            snprintf(err, errlen, "cannot start the notify subscriber: %s", strerror(-rc));
            server_close(s);
            return rc;
        }
    }
    return 0;
}

void server_close(server *s) {
    stats_close();
    notify_sub_stop(s->sub);
    store_close(s->st);
    cfg_free(&s->cfg);
    memset(s, 0, sizeof *s);
}

/* Publishes, saying whether the inbox may have grown since the last
 * wake-up this process published (the dispatcher sleeps through the rest).
 * Any thread: whoever publishes after an inbox commit returned says so. */
static void publish(server *s, uint64_t seq, unsigned flags) {
    if (!s->sub) { /* one-shot: says nothing, wakes everyone */
        notify_send(s->dir, seq);
        return;
    }
    uint64_t n = store_inbox_commits(s->st);
    if (atomic_exchange(&s->inbox_told, n) == n) flags |= NOTIFY_NO_INBOX;
    notify_sub_publish_as(s->sub, seq, flags);
}

void server_notify(server *s, uint64_t seq) {
    if (s->defer_hook) {
        if (seq > s->defer_seq) s->defer_seq = seq;
        if (!s->defer_pending) {
            s->defer_pending = 1;
            s->defer_hook(s->defer_arg);
        }
        return;
    }
    publish(s, seq, 0);
}

static int flush(server *s, int own) {
    if (!s->defer_pending) return 0;
    s->defer_pending = 0;
    uint64_t seq = s->defer_seq;
    s->defer_seq = 0;
    publish(s, seq, own ? NOTIFY_OWN : 0);
    return 1;
}

void server_notify_flush(server *s) { flush(s, 0); }

int server_notify_flush_own(server *s) { return flush(s, 1); }

void server_release_memory(server *s) {
    store_release_pages(s->st);
    malloc_trim(0);
}

void server_warn_full(const char *what, int rc) {
    static _Atomic int64_t last_ms;
    static _Atomic unsigned long skipped;
    int64_t now = util_now_ms(), last = atomic_load(&last_ms);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&last_ms, &last, now)) {
        atomic_fetch_add(&skipped, 1);
        return;
    }
    log_warn("refused %s: %s (%lu more refused since the last such line)", what,
             rc == STORE_EFULL ? "the store is full (map_size_mb)" : store_strerror(rc),
             atomic_exchange(&skipped, 0));
}

const char *server_close_reason(int reason) {
    switch (reason) {
    case SESSION_CLOSE_CLIENT: return "transport close";
    case SESSION_CLOSE_PING_TIMEOUT: return "ping timeout";
    case SESSION_CLOSE_PARSE_ERROR: return "parse error";
    case SESSION_CLOSE_OVERLAP: return "overlapping poll";
    case SESSION_CLOSE_SERVER: return "forced close";
    case SESSION_CLOSE_CONNECT_TIMEOUT: return "connect timeout";
    case SESSION_CLOSE_LAGGING: return "fell behind";
    case SESSION_CLOSE_TRANSPORT: return "transport error";
    case SESSION_CLOSE_POLL_DROPPED: return "poll connection closed prematurely";
    }
    return "unknown";
}


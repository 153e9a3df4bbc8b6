/* sio-fcgi: the FastCGI long-polling gateway.
 *
 * A thin main over server/polling.h: it turns each FastCGI request into an
 * http_req and writes the answer.  One thread accepts connections on the
 * listening socket and queues them; a few worker threads read each request
 * (libfcgi's FCGX_Accept_r on the accepted connection) and answer handshakes,
 * POSTs and bad requests; a GET of a live session is handed to the parking
 * loops (fcgi_park.h), which claim the GETs of one turn together, answer
 * those with packets queued at once and hold the others, any number of
 * them without a thread each (never in a store transaction).
 *
 * Where the socket comes from:
 *   - spawned by the web server (lighttpd bin-path, Apache mod_fcgid): fd 0;
 *   - --socket PATH: it binds a Unix socket itself (nginx, Apache
 *     mod_proxy_fcgi, lighttpd with "socket" only). */
#include <errno.h>
#include <fcgiapp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "handlers/plugin.h"
#include "server/metrics.h"
#include "server/polling.h"
#include "fcgi_park.h"

/* What the worker threads share. */
typedef struct gateway {
    server srv;
    int listen_fd;        /* 0 when spawned by the web server */
    fpark *park;          /* where held GETs wait */
    /* connections accepted, not yet taken by a worker (a ring, under mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *q;
    size_t qhead, qlen, qcap;
    int idle; /* workers waiting on cv */
} gateway;

static void write_resp(FCGX_Request *r, const http_resp *resp) {
    buf h = BUF_INIT;
    fpark_format(resp, &h);
    FCGX_PutStr(h.data, (int)h.len, r->out);
    buf_free(&h);
}

/* HTTP_USER_AGENT -> user-agent, for the handshake's headers. */
static int header_name(const char *var, char *out, size_t n) {
    if (strncmp(var, "HTTP_", 5)) return 0;
    size_t i = 0;
    for (const char *p = var + 5; *p && *p != '=' && i + 1 < n; p++)
        out[i++] = *p == '_' ? '-' : (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    out[i] = 0;
    return i > 0;
}

enum { MAX_HEADERS = 64 };

/* The FastCGI request as an http_req; the header pairs go into hv, their
 * names into names (req borrows both, and r's parameters). */
static void read_request(FCGX_Request *r, http_req *req, const char **hv, char (*names)[64]) {
    char **env = r->envp;
    memset(req, 0, sizeof *req);
    req->method = FCGX_GetParam("REQUEST_METHOD", env);
    if (!req->method) req->method = "GET";
    req->query = FCGX_GetParam("QUERY_STRING", env);
    req->content_type = FCGX_GetParam("CONTENT_TYPE", env);
    req->origin = FCGX_GetParam("HTTP_ORIGIN", env);
    req->remote_addr = FCGX_GetParam("REMOTE_ADDR", env);
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", env);
    req->content_length = cl && *cl ? strtol(cl, NULL, 10) : -1;
    const char *up = FCGX_GetParam("HTTP_UPGRADE", env);
    req->upgrade = up && !strcasecmp(up, "websocket");
    const char *conn = FCGX_GetParam("HTTP_CONNECTION", env);
    /* Apache passes no Connection header to FastCGI: then Upgrade alone counts */
    req->upgrade_other = up && *up && !req->upgrade && (!conn || strcasestr(conn, "upgrade"));
    req->url = FCGX_GetParam("REQUEST_URI", env);
    size_t nh = 0;
    for (char **p = env; *p && nh < MAX_HEADERS; p++)
        if (header_name(*p, names[nh], sizeof names[nh])) {
            const char *eq = strchr(*p, '=');
            hv[nh * 2] = names[nh];
            hv[nh * 2 + 1] = eq ? eq + 1 : "";
            nh++;
        }
    hv[nh * 2] = NULL;
    req->headers = hv;
}

/* Reads a POST body (bounded by max_http_buffer_size) and hands it over. */
static void post(server *srv, FCGX_Request *r, polling_req *p, http_resp *resp) {
    size_t max = (size_t)srv->cfg.max_http_buffer_size;
    buf body = BUF_INIT;
    int too_big = 0;
    char chunk[16384];
    int n;
    while ((n = FCGX_GetStr(chunk, sizeof chunk, r->in)) > 0) {
        if (body.len + (size_t)n > max) { too_big = 1; break; }
        if (buf_append(&body, chunk, (size_t)n)) { too_big = 1; break; }
    }
    polling_post(srv, p, (uint8_t *)(body.data ? body.data : ""), body.len, too_big, resp);
    buf_free(&body);
}

/* Hands a GET over to the parking loop, which claims it (with the others
 * of its turn) and holds it: its input is read to the end (the empty STDIN
 * record follows the parameters at once), then only the connection is
 * kept and r is made ready for the next accept.  0 when parked; -1 when
 * the connection broke (the caller finishes r). */
static int park(gateway *g, FCGX_Request *r, polling_req *p, http_resp *resp) {
    char chunk[512];
    while (FCGX_GetStr(chunk, sizeof chunk, r->in) > 0) {}
    if (FCGX_GetError(r->in)) return -1;
    int fd = r->ipcFd, id = r->requestId;
    FCGX_Free(r, 0); /* the streams and parameters; the connection stays open */
    FCGX_InitRequest(r, g->listen_fd, 0);
    fpark_add(g->park, fd, id, p, &resp->headers);
    return 0;
}

/* Answers r, or parks it (1: r is ready for the next accept). */
static int handle(gateway *g, FCGX_Request *r) {
    server *srv = &g->srv;
    http_req req;
    const char *hv[MAX_HEADERS * 2 + 1];
    char names[MAX_HEADERS][64];
    read_request(r, &req, hv, names);
    http_resp resp = {0};
    if (metrics_route(srv, req.url)) {
        metrics_answer(srv, req.method, &resp);
        write_resp(r, &resp);
        http_resp_free(&resp);
        return 0;
    }
    int route = http_route(srv, req.url);
    req.bare = route == 2;
    if (!route) {
        resp.status = 404;
        resp.content_type = "text/plain";
        buf_puts(&resp.body, "Not Found");
        write_resp(r, &resp);
        http_resp_free(&resp);
        return 0;
    }
    polling_req p;
    int rc = polling_begin_deferred(srv, &req, &p, &resp);
    if (rc == POLLING_READ_BODY) {
        post(srv, r, &p, &resp);
    } else if (rc == POLLING_CLAIM) {
        if (park(g, r, &p, &resp) == 0) {
            http_resp_free(&resp);
            return 1;
        }
        http_resp_free(&resp); /* broken before it was claimed: nothing to release */
        return 0;
    }
    write_resp(r, &resp);
    http_resp_free(&resp);
    return 0;
}

/* One thread takes connections off the listening socket as fast as they
 * come and queues them for the workers: a burst of polls (every client
 * polls again after a broadcast) waits here, not in the kernel's backlog,
 * where lighttpd answers 500 to a request whose connection finds it full. */
static void *acceptor(void *arg) {
    gateway *g = arg;
    for (;;) {
        int fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a listening socket handed over non-blocking */
                struct pollfd pf = {.fd = g->listen_fd, .events = POLLIN};
                poll(&pf, 1, -1);
                continue;
            }
            /* out of descriptors or memory: the web server's connects wait
             * in the backlog meanwhile */
            log_error("accept: %s", strerror(errno));
            usleep(100 * 1000);
            continue;
        }
        pthread_mutex_lock(&g->mu);
        if (g->qlen == g->qcap) {
            size_t cap = g->qcap ? g->qcap * 2 : 256;
            int *q = malloc(cap * sizeof *q);
            if (!q) {
                pthread_mutex_unlock(&g->mu);
                log_error("out of memory queueing a connection: closed");
                close(fd);
                continue;
            }
            for (size_t i = 0; i < g->qlen; i++) q[i] = g->q[(g->qhead + i) % g->qcap];
            free(g->q);
            g->q = q, g->qcap = cap, g->qhead = 0;
        }
        g->q[(g->qhead + g->qlen++) % g->qcap] = fd;
        /* a worker busy now takes it when done: wake one only if one waits
         * for it, and after unlocking (it needs the lock to go on) */
        int wake = g->idle > 0 && g->qlen <= (size_t)g->idle;
        pthread_mutex_unlock(&g->mu);
        if (wake) pthread_cond_signal(&g->cv);
    }
    return NULL;
}

static int next_connection(gateway *g) {
    pthread_mutex_lock(&g->mu);
    while (!g->qlen) {
        g->idle++;
        pthread_cond_wait(&g->cv, &g->mu);
        g->idle--;
    }
    int fd = g->q[g->qhead];
    g->qhead = (g->qhead + 1) % g->qcap;
    g->qlen--;
    pthread_mutex_unlock(&g->mu);
    return fd;
}

static void *worker(void *arg) {
    gateway *g = arg;
    FCGX_Request r;
    for (;;) {
        if (FCGX_InitRequest(&r, g->listen_fd, 0)) return NULL;
        /* libfcgi reads a request from a connection already open (ipcFd)
         * when it is marked as kept; it accepts itself only when that
         * connection turns out broken. */
        r.ipcFd = next_connection(g);
        r.keepConnection = 1;
        do {
            if (FCGX_Accept_r(&r) < 0) break;
            if (!handle(g, &r)) FCGX_Finish_r(&r);
        } while (r.ipcFd >= 0); /* the web server keeps it (FCGI_KEEP_CONN): its next request */
    }
    return NULL;
}

/* --socket PATH: a Unix socket of our own (libfcgi's FCGX_OpenSocket exits
 * the process with only "bind/listen: ..." when it fails), with mode (octal
 * text, default 0660) and group (a name or number; default the process's).
 * Created under umask 0177 so that nobody else can connect before its mode
 * is set.  A socket left at PATH by an earlier run is replaced; any other
 * file there is refused.  The listening fd, or -1 (logged, naming PATH), or
 * -2 for a bad mode or group. */
static int listen_socket(const char *path, const char *mode_s, const char *group) {
    long mode = 0660;
    if (mode_s) {
        char *end;
        mode = strtol(mode_s, &end, 8);
        if (!*mode_s || *end || mode < 0 || mode > 0777) {
            log_error("--socket-mode: an octal mode such as 0660, not '%s'", mode_s);
            return -2;
        }
    }
    unsigned gid = 0;
    if (group && util_group_id(group, &gid)) {
        log_error("--socket-group: no group named '%s'", group);
        return -2;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        log_error("cannot listen on %s: the path is too long for a Unix socket (at most %zu bytes)", path,
                  sizeof a.sun_path - 1);
        return -1;
    }
    strcpy(a.sun_path, path);
    char dir[sizeof a.sun_path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct stat st;
    if (stat(dir, &st)) {
        log_error("cannot listen on %s: the folder %s %s", path, dir,
                  errno == ENOENT || errno == ENOTDIR ? "does not exist" : strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_error("cannot listen on %s: %s is not a folder", path, dir);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("cannot listen on %s: a file that is not a socket is there (remove it, or choose another path)",
                      path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int rc = fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096) ? -errno : 0;
    umask(old);
    if (rc) {
        log_error("cannot listen on %s: %s", path, strerror(-rc));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (group && chown(path, (uid_t)-1, (gid_t)gid)) {
        log_error("cannot give %s to group %s: %s", path, group, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, (mode_t)mode)) {
        log_error("cannot chmod %lo %s: %s", mode, path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Every held poll keeps the web server's connection open: as many as the
 * hard limit allows (the soft limit is often 1024). */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: sio-fcgi [--socket PATH [--socket-mode MODE] [--socket-group GROUP]]\n"
            "                [--threads N] [--state DIR] [--config FILE] [--log LOGFILE]\n"
            "  Answers Engine.IO long-polling for a web server over FastCGI.\n"
            "  Without --socket it accepts on fd 0, as spawned by lighttpd (bin-path),\n"
            "  Apache mod_fcgid or systemd (a .socket unit, StandardInput=socket).\n"
            "  The socket gets MODE (octal, default 0660) and GROUP (default: this\n"
            "  process's group): give it the web server's group.\n"
            "  --log appends the log to LOGFILE instead of stderr; SIGHUP reopens it\n"
            "  (without --log SIGHUP stops it like SIGTERM).\n"
            "  --threads N: worker threads that accept and answer requests (default 8,\n"
            "  config fcgi_threads); held polls wait in one loop, not in a thread.\n"
            "  Env: SIO_STATE_DIR, SIO_CONFIG, SIO_FCGI_THREADS.\n");
}

int main(int argc, char **argv) {
    const char *sock = NULL, *sock_mode_s = NULL, *sock_group = NULL, *dir = NULL, *cfgp = NULL, *logp = NULL;
    const char *threads_s = getenv("SIO_FCGI_THREADS");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--socket") && v) sock = v, i++;
        else if (!strcmp(a, "--socket-mode") && v) sock_mode_s = v, i++;
        else if (!strcmp(a, "--socket-group") && v) sock_group = v, i++;
        else if (!strcmp(a, "--threads") && v) threads_s = v, i++;
        else if (!strcmp(a, "--state") && v) dir = v, i++;
        else if (!strcmp(a, "--config") && v) cfgp = v, i++;
        else if (!strcmp(a, "--log") && v) logp = v, i++;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else {
            fprintf(stderr, "sio-fcgi: %s %s\n",
                    util_word_in("--socket --socket-mode --socket-group --threads --state --config --log", a) ? "a value is needed after"
                                                                                     : "unknown option",
                    a);
            usage();
            return 2;
        }
    }
    if (threads_s && !*threads_s) threads_s = NULL; /* set empty: the default */
    log_init("sio-fcgi");
    int lrc = logp ? log_to_file(logp) : 0;
    if (lrc) {
        log_error("cannot open the log file %s: %s", logp, strerror(-lrc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    static gateway g = {.listen_fd = 0, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    if (FCGX_Init()) {
        log_error("FCGX_Init failed");
        return 1;
    }
    if ((sock_mode_s || sock_group) && !sock) {
        usage();
        return 2;
    }
    if (sock) {
        g.listen_fd = listen_socket(sock, sock_mode_s, sock_group);
        if (g.listen_fd < 0) return g.listen_fd == -2 ? 2 : 1;
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "sio-fcgi: stdin is not a FastCGI socket: start it from a web server "
                        "(lighttpd bin-path, Apache mod_fcgid) or with --socket PATH\n");
        return 2;
    }
    char err[512];
    server *srv = &g.srv;
    if (server_open(srv, dir, cfgp, SERVER_SUBSCRIBE, err, sizeof err) ||
        plugin_load(srv, err, sizeof err)) {
        log_error("%s", err);
        if (sock) unlink(sock);
        return 1;
    }
    raise_fd_limit();
    long nthreads = srv->cfg.fcgi_threads;
    if (threads_s && util_parse_long(threads_s, 1, 10000, &nthreads)) {
        log_error("bad thread count '%s' (1..10000)", threads_s);
        return 2;
    }
    /* libfcgi's own SIGTERM handler only sets a flag that threads blocked in
     * accept() never see: the stop signals are blocked in every thread and
     * the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    int prc = fpark_start(srv, &g.park);
    if (prc) {
        log_error("cannot start the loop that holds polls: %s", strerror(-prc));
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
    long started = 0;
    for (long i = 0; tids && i < nthreads; i++)
        if (pthread_create(&tids[i], &attr, worker, &g) == 0) started++;
    pthread_t acc;
    if (started && pthread_create(&acc, &attr, acceptor, &g)) started = 0;
    pthread_attr_destroy(&attr);
    if (started == 0) {
        log_error("could not start any worker thread");
        return 1;
    }
    log_info("serving %s with %ld threads, state %s%s%s", srv->cfg.path, started, srv->dir,
             sock ? ", socket " : "", sock ? sock : "");
    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP && log_sighup()) {}
    /* Held polls are simply dropped: their sessions name this process as the
     * holder, and a dead holder does not count, so the clients' next GET
     * goes through any other worker.  Committed state is in the store. */
    log_info("signal %d: stopping", sig);
    _exit(0);
}

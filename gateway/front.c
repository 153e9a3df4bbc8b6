/* sio-front: the embedded front.  One libwebsockets event loop serves
 *   - the Engine.IO WebSocket transport (new sessions and upgrades of
 *     polling sessions), front_ws.c, fed by one reader of the packet log
 *     for all connections, front_deliver.c;
 *   - Engine.IO long-polling over plain HTTP, the client bundle and the
 *     demo endpoints (with --demo only), front_http.c and front_demo.c;
 *   - static files from --www, and with an [admin] section the Admin UI
 *     (the @socket.io/admin-ui package's ui/dist) at /admin-ui/.
 *
 *   sio-front --port PORT [--host 127.0.0.1] [--www DIR] [--state DIR]
 *             [--config FILE] [--client-js FILE] [--admin-ui DIR] [--max-queue BYTES]
 *             [--per-message-deflate] [--reuse-port] [--demo]
 *
 * One lws context (its user pointer is the front), one vhost, one thread:
 *   protocol 0 "sio"     HTTP and WebSocket (Socket.IO clients send no
 *                        Sec-WebSocket-Protocol, so it must be the default);
 *   protocol 1 "sio-raw" adopted descriptors: the notify subscriber's
 *                        eventfd (a dup), a signalfd for SIGTERM/SIGINT,
 *                        and with --reuse-port our own listening socket.
 * Mounts: cfg.path, cfg.engine_path, cfg.metrics_path and (--demo) /demo go to the callback;
 * "/" serves --www, /admin-ui the Admin UI ([admin] only).  With --reuse-port the front listens itself (SO_REUSEPORT)
 * and hands accepted sockets to lws, so several fronts can share a port. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "front_conn.h"
#include "front_deliver.h"
#include "front_demo.h"
#include "front_guard.h"
#include "front_http.h"
#include "front_lws.h"
#include "front_timer.h"
#include "front_ws.h"
#include "handlers/plugin.h"
#include "server/server.h"

#define STOP_GRACE_MS 1500 /* connections get this long to close at a stop */
#define FRONT_MAX_HEAD (FGUARD_HEAD_MAX + 1024) /* lws's room for a head: front_guard answers 431 first */

typedef struct front_opts {
    const char *host;
    int port;
    const char *www;
    const char *client_js;
    const char *admin_ui; /* the Admin UI's folder (served with [admin] only) */
    const char *log; /* --log FILE, NULL: stderr */
    const char *state_dir;
    const char *config;
    size_t max_queue;    /* bytes queued per connection before it is dropped (0: config) */
    int deflate;         /* permessage-deflate offered (-1: config) */
    int reuse_port;      /* own listen socket with SO_REUSEPORT: several fronts, one port */
    int demo;            /* serve the demo page's endpoints (/demo/...): unauthenticated */
} front_opts;

/* The process: everything the callbacks reach through the context's user
 * pointer. */
typedef struct front {
    server srv;
    front_opts o;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int stopping;
    int64_t stop_deadline;
    lws_sorted_usec_list_t sul_stop;
    ftimers timers;
    ftimer t_panel; /* --demo: the demo page's live panel (front_demo.h) */
    demo_panel panel;
    fconns conns;
    deliver *dl;
    ws_front *ws;
    fhttp *http;
    int evfd, sigfd, listenfd;
    int notified; /* the hub woke us: read the log at the end of the turn */
    /* the opaque user data of the adopted descriptors: what each one is */
    int tag_notify, tag_signal, tag_listen;
    char www[PATH_MAX], client_js[PATH_MAX + 64], admin_ui[PATH_MAX + 64];
    char eio_mount[256], bare_mount[256], metrics_mount[260];
    struct lws_http_mount m_eio, m_bare, m_demo, m_metrics, m_www, m_admin;
} front;

static front *front_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

/* ---- the protocol callbacks ------------------------------------------------- */

static int sio_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
    void *o = lws_get_opaque_user_data(wsi);
    int kind = o ? *(int *)o : 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!in || strcasecmp((const char *)in, "websocket")) return -1;
        return ws_confirm_upgrade(front_of(wsi)->ws, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        if (kind != OBJ_WS) return -1;
        return ws_established(wsi, o);
    case LWS_CALLBACK_RECEIVE:
        if (kind != OBJ_WS) return -1;
        return ws_receive(wsi, o, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (kind != OBJ_WS) return 0;
        return ws_writeable(wsi, o);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (kind == OBJ_WS) return ws_peer_close(o);
        return 0;
    case LWS_CALLBACK_CLOSED:
        return 0;
    case LWS_CALLBACK_HTTP:
        return fhttp_request(front_of(wsi)->http, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        if (kind == OBJ_HTTP) return fhttp_body(wsi, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (kind == OBJ_HTTP) return fhttp_body_done(wsi);
        break;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (kind == OBJ_HTTP) return fhttp_writeable(wsi);
        break;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (kind == OBJ_HTTP) {
            fhttp_closed(wsi);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        fguard_open(lws_get_socket_fd(wsi));
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        fguard_close(lws_get_socket_fd(wsi));
        if (kind == OBJ_WS) ws_destroy(o);
        else if (kind == OBJ_HTTP) fhttp_closed(wsi);
        if (kind == OBJ_WS || kind == OBJ_HTTP) lws_set_opaque_user_data(wsi, NULL);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* A client broke the WebSocket framing (front_guard.h). */
static void guard_close(void *owner, int code) { ws_close_status(owner, code); }

/* server_notify defers while this is set; the main loop flushes each turn. */
static void defer_noop(void *arg) { (void)arg; }

static void stop_cb(lws_sorted_usec_list_t *sul) { (void)sul; }

static void start_stop(front *f, int signo) {
    if (f->stopping) return;
    f->stopping = 1;
    f->stop_deadline = util_now_ms() + STOP_GRACE_MS;
    lws_sul_schedule(f->ctx, 0, &f->sul_stop, stop_cb, (lws_usec_t)(STOP_GRACE_MS + 100) * 1000);
    log_info("signal %d: stopping (%zu WebSocket connection(s))", signo, ws_count(f->ws));
    deliver_stop(f->dl);
    ws_shutdown_all(f->ws);
    fhttp_shutdown_all(f->http);
    lws_cancel_service(f->ctx);
}

/* --reuse-port: takes what is waiting on our own listening socket. */
static void accept_all(front *f) {
    for (int i = 0; i < 64; i++) {
        int fd = accept4(f->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            break;
        }
        if (f->stopping) close(fd);
        else lws_adopt_socket_vhost(f->vh, fd); /* closes fd when it fails */
    }
}

static int raw_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
    (void)user, (void)in, (void)len;
    if (reason != LWS_CALLBACK_RAW_RX_FILE) return 0;
    const int *tag = lws_get_opaque_user_data(wsi);
    if (!tag) return 0;
    front *f = front_of(wsi);
    if (*tag == OBJ_RAW_NOTIFY) {
        notify_sub_ack(f->srv.sub);
        f->notified = 1; /* turn_end reads, outside lws_service: writes go out at once */
    } else if (*tag == OBJ_RAW_LISTEN) {
        accept_all(f);
    } else if (*tag == OBJ_RAW_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(f->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            if (si.ssi_signo != SIGHUP || !log_sighup()) start_stop(f, (int)si.ssi_signo);
    }
    return 0;
}

static const struct lws_protocols g_protocols[] = {
    {"sio", sio_cb, 0, WS_RX_CHUNK, 0, NULL, 65536 + 64},
    {"sio-raw", raw_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension g_exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static void lws_log_emit(int level, const char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    /* lws prefixes its own timestamp: keep only the text after "] " */
    const char *m = strstr(line, "] ");
    const char *txt = m && (size_t)(m - line) < n ? m + 2 : line;
    int tl = (int)(n - (size_t)(txt - line));
    if (level & LLL_ERR) log_error("lws: %.*s", tl, txt);
    else if (level & LLL_WARN) log_warn("lws: %.*s", tl, txt);
    else log_info("lws: %.*s", tl, txt);
}

/* ---- descriptors ------------------------------------------------------------------ */

/* A TCP socket bound to host:port (numeric host; SO_REUSEPORT when
 * reuse_port), listening when listen_too, or -1 (logged, naming the address;
 * *numeric 0 when host is not a numeric address: nothing was tried). */
static int bind_port(const char *host, int port, int reuse_port, int listen_too, int *numeric) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    int family;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        family = a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        family = a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof *a6;
    } else {
        *numeric = 0;
        return -1;
    }
    *numeric = 1;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) ||
        bind(fd, (struct sockaddr *)&ss, sl) || (listen_too && listen(fd, 1024))) {
        log_error("cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* --reuse-port: a listen socket with SO_REUSEPORT, so that several sio-front
 * processes share one port and the kernel spreads connections over them
 * (lws 4.1 sets SO_REUSEPORT only with several service threads). */
static int listen_reuseport(const char *host, int port) {
    int numeric, fd = bind_port(host, port, 1, 1, &numeric);
    if (!numeric) log_error("--reuse-port needs a numeric --host, not %s", host);
    return fd;
}

/* Before lws binds (it cannot say why, and leaks when it fails): is
 * host:port free?  0, or -1 logged with the reason. */
static int port_usable(const char *host, int port) {
    int numeric, fd = bind_port(host, port, 0, 0, &numeric);
    if (fd >= 0) close(fd);
    return fd >= 0 || !numeric ? 0 : -1;
}

static int adopt_fd(front *f, int fd, int *tag) {
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *w = lws_adopt_descriptor_vhost(f->vh, LWS_ADOPT_RAW_FILE_DESC, u, "sio-raw", NULL);
    if (!w) return -1;
    lws_set_opaque_user_data(w, tag);
    return 0;
}

/* Adds the notify eventfd, the signalfd and our listening socket to the loop. */
static int adopt_all(front *f) {
    f->evfd = dup(notify_sub_eventfd(f->srv.sub));
    if (f->o.reuse_port && (f->listenfd = listen_reuseport(f->o.host, f->o.port)) < 0) return -1;
    if (f->evfd < 0 || adopt_fd(f, f->evfd, &f->tag_notify) || f->sigfd < 0 ||
        adopt_fd(f, f->sigfd, &f->tag_signal) ||
        (f->listenfd >= 0 && adopt_fd(f, f->listenfd, &f->tag_listen))) {
        log_error("cannot add the notify/signal descriptors to the event loop");
        return -1;
    }
    return 0;
}

/* ---- start --------------------------------------------------------------------------- */

static void usage(FILE *out) {
    fprintf(out,
            "usage: sio-front --port PORT [--host ADDR] [--www DIR] [--state DIR] [--config FILE]\n"
            "                 [--client-js FILE] [--admin-ui DIR] [--max-queue BYTES] [--per-message-deflate]\n"
            "                 [--reuse-port] [--demo] [--log LOGFILE]\n"
            "  The Engine.IO/Socket.IO front: WebSocket and long-polling at the configured\n"
            "  path (default /socket.io/), /socket.io/socket.io.js and static files from\n"
            "  DIR (default <checkout>/www, or PREFIX/share/sio/www when installed).\n"
            "  --host        address to listen on (default 127.0.0.1)\n"
            "  --admin-ui    the Admin UI's files, served at /admin-ui/ when the config has\n"
            "                [admin] (default: the @socket.io/admin-ui package's ui/dist,\n"
            "                PREFIX/share/sio/admin-ui when installed)\n"
            "  --max-queue   bytes queued for one WebSocket before it is dropped\n"
            "                (default: config max_queue_bytes, 4 MiB)\n"
            "  --per-message-deflate  offer WebSocket compression (default: config\n"
            "                per_message_deflate, off)\n"
            "  --reuse-port  listen with SO_REUSEPORT: several sio-front processes on one port\n"
            "                share the connections (any front serves any session)\n"
            "  --demo        serve the demo page's endpoints (/demo/rooms, /demo/join,\n"
            "                /demo/leave): anyone who reaches the port can move sockets\n"
            "                between rooms with them, so it is off by default (404)\n"
            "  --log         append the log to LOGFILE instead of stderr; SIGHUP reopens it\n"
            "                (without --log SIGHUP stops the front like SIGTERM)\n"
            "  env: SIO_STATE_DIR, SIO_CONFIG, SIO_LOG_LEVEL, SIO_LWS_LOG (lws log bitmask).\n");
}

/* 0, or the exit code (2 usage, 0 --help printed: -1). */
static int parse_args(int argc, char **argv, front_opts *o) {
    o->host = "127.0.0.1";
    o->port = -1;
    o->deflate = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--port") && v) {
            if (util_parse_long(v, 0, 65535, &n)) { fprintf(stderr, "sio-front: bad port '%s'\n", v); return 2; }
            o->port = (int)n, i++;
        } else if (!strcmp(a, "--host") && v) o->host = v, i++;
        else if (!strcmp(a, "--www") && v) o->www = v, i++;
        else if (!strcmp(a, "--state") && v) o->state_dir = v, i++;
        else if (!strcmp(a, "--config") && v) o->config = v, i++;
        else if (!strcmp(a, "--client-js") && v) o->client_js = v, i++;
        else if (!strcmp(a, "--admin-ui") && v) o->admin_ui = v, i++;
        else if (!strcmp(a, "--log") && v) o->log = v, i++;
        else if (!strcmp(a, "--max-queue") && v) {
            if (util_parse_long(v, 1024, 1L << 40, &n)) {
                fprintf(stderr, "sio-front: bad --max-queue '%s' (1024 bytes or more)\n", v);
                return 2;
            }
            o->max_queue = (size_t)n, i++;
        } else if (!strcmp(a, "--per-message-deflate")) o->deflate = 1;
        else if (!strcmp(a, "--reuse-port")) o->reuse_port = 1;
        else if (!strcmp(a, "--demo")) o->demo = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return -1; }
        else {
            fprintf(stderr, "sio-front: %s %s\n",
                    util_word_in("--port --host --www --state --config --client-js --admin-ui --max-queue --log", a) ? "a value is needed after" : "unknown option",
                    a);
            usage(stderr);
            return 2;
        }
    }
    if (o->port < 0) {
        fprintf(stderr, "sio-front: --port is required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

/* The static directory and the client bundle: the options, else the
 * defaults of the program's layout (paths.h: a checkout or an install). */
static int resolve_paths(front *f) {
    char www[PATH_MAX];
    if (!f->o.www) {
        if (paths_default(PATHS_WWW, www, sizeof www)) www[0] = 0;
        f->o.www = www;
    }
    if (!realpath(f->o.www, f->www)) {
        log_error("static directory %s: %s", f->o.www, strerror(errno));
        return -1;
    }
    f->o.www = f->www;
    if (!f->o.client_js) {
        if (paths_default(PATHS_CLIENT_JS, f->client_js, sizeof f->client_js)) f->client_js[0] = 0;
        f->o.client_js = f->client_js;
    }
    if (!f->o.admin_ui) {
        if (paths_default(PATHS_ADMIN_UI, f->admin_ui, sizeof f->admin_ui)) f->admin_ui[0] = 0;
        f->o.admin_ui = f->admin_ui;
    }
    return 0;
}

/* A mount for the callback at path (a trailing slash dropped). */
static void callback_mount(struct lws_http_mount *m, char *out, size_t n, const char *path,
                           const struct lws_http_mount *next) {
    snprintf(out, n, "%s", path);
    size_t l = strlen(out);
    while (l > 1 && out[l - 1] == '/') out[--l] = 0;
    m->mountpoint = out;
    m->mountpoint_len = (unsigned char)l;
    m->origin = "sio";
    m->origin_protocol = LWSMPRO_CALLBACK;
    m->mount_next = next;
}

/* cfg.path (and cfg.engine_path, cfg.metrics_path) then, with --demo, /demo
 * to the callback; "/" to --www (without --demo, /demo/... is a missing file
 * there: 404). */
static const struct lws_http_mount *mounts(front *f) {
    f->m_www.mountpoint = "/";
    f->m_www.mountpoint_len = 1;
    f->m_www.origin = f->o.www;
    f->m_www.def = "index.html";
    f->m_www.origin_protocol = LWSMPRO_FILE;
    const struct lws_http_mount *next = &f->m_www;
    /* The Admin UI, as Node users get it from the package: only with [admin]
     * (lws answers /admin-ui with a redirect to /admin-ui/). */
    if (f->srv.cfg.admin.enabled && !access(f->o.admin_ui, R_OK)) {
        f->m_admin.mountpoint = "/admin-ui";
        f->m_admin.mountpoint_len = 9;
        f->m_admin.origin = f->o.admin_ui;
        f->m_admin.def = "index.html";
        f->m_admin.origin_protocol = LWSMPRO_FILE;
        f->m_admin.mount_next = next;
        next = &f->m_admin;
    }
    if (f->o.demo) {
        static char demo[] = "/demo";
        callback_mount(&f->m_demo, demo, sizeof demo, "/demo", next);
        next = &f->m_demo;
    }
    if (f->srv.cfg.metrics_path) { /* the Prometheus page (server/metrics.h) */
        callback_mount(&f->m_metrics, f->metrics_mount, sizeof f->metrics_mount, f->srv.cfg.metrics_path, next);
        next = &f->m_metrics;
    }
    if (f->srv.cfg.engine_path) { /* the bare Engine.IO endpoint */
        callback_mount(&f->m_bare, f->bare_mount, sizeof f->bare_mount, f->srv.cfg.engine_path,
                       next);
        next = &f->m_bare;
    }
    callback_mount(&f->m_eio, f->eio_mount, sizeof f->eio_mount, f->srv.cfg.path, next);
    return f->m_eio.mountpoint_len > 1 ? &f->m_eio : next;
}

static int create_context(front *f) {
    /* SIO_LWS_LOG: an lws log bitmask for debugging (LLL_INFO is 8, ...) */
    const char *ll = getenv("SIO_LWS_LOG");
    lws_set_log_level(ll && *ll ? atoi(ll) : LLL_ERR | LLL_WARN, lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = f->o.reuse_port ? CONTEXT_PORT_NO_LISTEN_SERVER : f->o.port;
    info.iface = f->o.host;
    info.protocols = g_protocols;
    info.mounts = mounts(f);
    info.extensions = f->o.deflate ? g_exts : NULL;
    info.gid = -1;
    info.uid = -1;
    info.user = f;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(f->o.host, ':')) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* No lws idle checks: the Engine.IO heartbeat is ours.  lws's default
     * policy (PING after 300 s idle) re-arms a timer on every received frame,
     * and its timer list is sorted with an O(connections) insert. */
    static const lws_retry_bo_t no_idle_policy = {0};
    info.retry_and_idle_policy = &no_idle_policy;
    info.pt_serv_buf_size = 32768;
    /* Request heads up to Node's limit (16 KB, --max-http-header-size): a
     * 10 KB sid gets its 400 like any unknown one.  lws holds this much per
     * connection only while it reads a head or answers a request. */
    info.max_http_header_data = FRONT_MAX_HEAD;
    info.keepalive_timeout = 60;
    /* A request head that never ends, a connection that says nothing: lws
     * closes them after this (whole seconds; see also front_http.c, bodies) */
    info.timeout_secs = (unsigned int)((f->srv.cfg.http_timeout + 999) / 1000);
    info.timeout_secs_ah_idle = (int)info.timeout_secs; /* a head in transit: counted once */
    info.vhost_name = "sio-front";
    info.server_string = "sio-front";
    f->ctx = lws_create_context(&info);
    if (!f->ctx) {
        log_error("cannot listen on %s:%d (in use, or a bad address?)", f->o.host, f->o.port);
        return -1;
    }
    f->vh = lws_get_vhost_by_name(f->ctx, "sio-front");
    return f->vh ? 0 : -1;
}

static void panel_cb(ftimer *t) {
    front *f = lws_container_of(t, front, t_panel);
    if (f->stopping) return;
    if (demo_panel_tick(&f->srv, &f->panel)) {
        deliver_scan(f->dl);
        fhttp_wake(f->http);
    }
    ftimer_set(&f->timers, &f->t_panel, panel_cb, DEMO_PANEL_MS);
}

/* The modules over the context: timers, delivery, WebSocket, HTTP. */
static int start_modules(front *f) {
    ftimers_init(&f->timers, f->ctx);
    f->conns.max_queue = f->o.max_queue;
    f->conns.max_packets = (size_t)f->srv.cfg.max_queue_packets;
    int rc = deliver_new(&f->srv, f->ctx, &f->conns, ws_close, &f->dl);
    if (rc) {
        log_error("cannot register the reader cursor: %s", store_strerror(rc));
        return -1;
    }
    f->ws = ws_new(&f->srv, &f->timers, f->dl, &f->conns, f->o.deflate);
    f->http = fhttp_new(&f->srv, &f->timers, f->o.client_js, f->o.demo);
    if (!f->ws || !f->http) {
        log_error("out of memory");
        return -1;
    }
    if (f->o.demo) ftimer_set(&f->timers, &f->t_panel, panel_cb, DEMO_PANEL_MS);
    return 0;
}

static void log_listening(front *f) {
    const cfg *c = &f->srv.cfg;
    char name[64];
    if (access(f->o.client_js, R_OK))
        log_warn("client bundle %s not found: %ssocket.io.js will answer 404 (scripts/install-deps or make install provide it; --client-js FILE)",
                 f->o.client_js, c->path);
    if (c->admin.enabled && access(f->o.admin_ui, R_OK))
        log_warn("the Admin UI %s not found: /admin-ui/ will answer 404 (scripts/install-deps or make install provide it; --admin-ui DIR)",
                 f->o.admin_ui);
    else if (c->admin.enabled)
        log_info("the Admin UI at /admin-ui/ (from %s), its namespace %s", f->o.admin_ui, c->admin.nsp);
    log_info("listening on http://%s:%d: Socket.IO at %s%s%s (%s%s%s), static files %s%s, "
             "state %s, reader %s at %llu, max queue %zu bytes%s",
             f->o.host, f->o.port, c->path, c->engine_path ? ", Engine.IO at " : "",
             c->engine_path ? c->engine_path : "", c->allow_websocket ? "WebSocket" : "",
             c->allow_websocket && c->allow_polling ? " and " : "",
             c->allow_polling ? "polling" : "", f->o.www, f->o.demo ? ", demo endpoints /demo/" : "", f->srv.dir,
             reader_name(deliver_reader(f->dl), name, sizeof name),
             (unsigned long long)deliver_cursor(f->dl), f->o.max_queue,
             f->o.deflate ? ", permessage-deflate on" : "");
    if (f->o.reuse_port) log_info("sharing port %d with other fronts (SO_REUSEPORT)", f->o.port);
}

/* Signals arrive through a signalfd in the loop: blocked before any thread
 * starts (the notify subscriber inherits the mask). */
static int signal_fd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Passes of own delivery per turn: a pass may commit again (a held poll
 * takes its packets); what is left then wakes the loop through the eventfd. */
#define OWN_PASSES 4

/* The end of a loop turn: one wake-up for everything the turn committed
 * (readers elsewhere, the dispatcher, other fronts, other processes' held
 * polls, take whole batches), and this front's own readers served at once
 * instead of on a later turn through the hub or its eventfd: the log scan
 * for the WebSocket connections, the held polls, then the writes. */
static void turn_end(front *f) {
    fguard_flush(guard_close);
    for (int i = 0; i < OWN_PASSES && (server_notify_flush_own(&f->srv) || f->notified); i++) {
        f->notified = 0;
        deliver_scan(f->dl);
        fhttp_wake(f->http);
    }
    server_notify_flush(&f->srv);
    ws_flush(f->ws);
}

/* Serves until a signal, then gives connections STOP_GRACE_MS to close. */
static void run(front *f) {
    deliver_scan(f->dl);
    f->srv.defer_hook = defer_noop;
    while (!f->stopping || (ws_count(f->ws) > 0 && util_now_ms() < f->stop_deadline)) {
        f->conns.in_service = 1;
        int rc = lws_service(f->ctx, 0);
        f->conns.in_service = 0;
        if (rc < 0) break;
        turn_end(f);
    }
    server_notify_flush(&f->srv);
    ws_flush(f->ws);
    f->srv.defer_hook = NULL;
}

int main(int argc, char **argv) {
    static front fr; /* large (mount buffers): not on the stack */
    front *f = &fr;
    f->evfd = f->sigfd = f->listenfd = -1;
    f->tag_notify = OBJ_RAW_NOTIFY, f->tag_signal = OBJ_RAW_SIGNAL, f->tag_listen = OBJ_RAW_LISTEN;
    int rc = parse_args(argc, argv, &f->o);
    if (rc) return rc < 0 ? 0 : rc;
    log_init("sio-front");
    if (f->o.log && (rc = log_to_file(f->o.log))) {
        log_error("cannot open the log file %s: %s", f->o.log, strerror(-rc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (resolve_paths(f)) return 1;
    f->sigfd = signal_fd();
    char err[1024];
    if (server_open(&f->srv, f->o.state_dir, f->o.config, SERVER_SUBSCRIBE, err, sizeof err)) {
        log_error("%s", err);
        return 1;
    }
    if (plugin_load(&f->srv, err, sizeof err)) {
        log_error("%s", err);
        server_close(&f->srv);
        return 1;
    }
    if (!f->o.max_queue) f->o.max_queue = (size_t)f->srv.cfg.max_queue_bytes;
    if (f->o.deflate < 0) f->o.deflate = f->srv.cfg.per_message_deflate;
    int ok = (f->o.reuse_port || port_usable(f->o.host, f->o.port) == 0) && create_context(f) == 0 &&
             start_modules(f) == 0 && adopt_all(f) == 0 && fguard_init(&f->srv, f->o.deflate) == 0;
    if (ok) {
        log_listening(f);
        run(f);
    }
    if (f->dl) deliver_stop(f->dl);
    if (f->ctx) lws_context_destroy(f->ctx); /* closes the adopted descriptors */
    if (f->dl) deliver_persist(f->dl, 1);
    deliver_free(f->dl);
    ws_free(f->ws);
    fhttp_free(f->http);
    fguard_free();
    ftimers_free(&f->timers);
    plugin_unload(&f->srv);
    server_close(&f->srv);
    if (ok) log_info("stopped");
    return ok ? 0 : 1;
}

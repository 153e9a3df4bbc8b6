/* sio-front: the WebSocket + embedded front (see front.h).
 *
 *   sio-front --port PORT [--host 127.0.0.1] [--www DIR] [--state DIR]
 *             [--config FILE] [--client-js FILE] [--max-queue BYTES]
 *             [--per-message-deflate] [--reuse-port]
 *
 * One libwebsockets context, one vhost, one event loop thread:
 *   protocol 0 "sio"     HTTP and WebSocket (Socket.IO clients send no
 *                        Sec-WebSocket-Protocol, so it must be the default);
 *   protocol 1 "sio-raw" adopted descriptors: the notify subscriber's
 *                        eventfd (a dup) and a signalfd for SIGTERM/SIGINT.
 * Mounts: cfg.path, cfg.engine_path and /demo go to the callback; "/"
 * serves --www.  With --reuse-port the front listens itself (SO_REUSEPORT)
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

#include "front.h"
#include "base/log.h"
#include "handlers/plugin.h"
#include "base/util.h"

front g_front;

static int g_evfd = -1, g_sigfd = -1, g_listenfd = -1;
static int64_t g_stop_deadline;
static char g_eio_mount[256];

/* ---- small helpers shared by the front files ------------------------------- */

int front_route(const char *uri) { return engine_route(&g_front.e, uri); }

void front_hdrs_load(struct lws *wsi, front_hdrs *h) {
    size_t n = 0, total = 0;
    int toks[FRONT_MAX_HEADERS], lens[FRONT_MAX_HEADERS];
    for (int t = 0; t < (int)WSI_TOKEN_COUNT && n < FRONT_MAX_HEADERS; t++) {
        const unsigned char *name = lws_token_to_string((enum lws_token_indexes)t);
        int len = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (!name || len <= 0 || name[0] == ':') continue;
        size_t nl = strlen((const char *)name);
        if (nl < 2 || nl > sizeof h->names[0] || name[nl - 1] != ':') continue; /* "get ", ... */
        for (size_t i = 0; i + 1 < nl; i++)
            h->names[n][i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        h->names[n][nl - 1] = 0;
        toks[n] = t;
        lens[n] = len;
        total += (size_t)len + 1;
        n++;
    }
    h->values = malloc(total + 1);
    size_t o = 0, k = 0;
    for (size_t i = 0; h->values && i < n; i++) {
        int got = lws_hdr_copy(wsi, h->values + o, lens[i] + 1, (enum lws_token_indexes)toks[i]);
        if (got < 0) continue;
        h->kv[k * 2] = h->names[i];
        h->kv[k * 2 + 1] = h->values + o;
        o += (size_t)got + 1;
        k++;
    }
    h->kv[k * 2] = NULL;
}

void front_hdrs_free(front_hdrs *h) {
    free(h->values);
    h->values = NULL;
    h->kv[0] = NULL;
}

void front_url(struct lws *wsi, const char *query, char *out, size_t n) {
    char *uri = NULL;
    int len = 0;
    out[0] = 0;
    if (lws_http_get_uri_and_method(wsi, &uri, &len) < 0 || !uri) return;
    snprintf(out, n, "%.*s%s%s", len, uri, query && *query ? "?" : "", query ? query : "");
}

int front_query(struct lws *wsi, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0;; i++) {
        size_t fl = (size_t)lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (o + fl + 2 > n) return -1;
        size_t at = o ? o + 1 : 0;
        int got = lws_hdr_copy_fragment(wsi, out + at, (int)(n - at), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (got < 0) break; /* no more */
        if (o) out[o] = '&';
        o = at + (size_t)got;
    }
    out[o] = 0;
    return 0;
}

int front_simple_response(struct lws *wsi, int status, const char *ctype, const char *body,
                          size_t len, const char *extra) {
    unsigned char hb[LWS_PRE + 2048];
    unsigned char *start = hb + LWS_PRE, *p = start, *end = hb + sizeof hb - 1;
    if (lws_add_http_header_status(wsi, (unsigned int)status, &p, end)) return -1;
    if (ctype && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                              (const unsigned char *)ctype, (int)strlen(ctype), &p, end))
        return -1;
    if (lws_add_http_header_content_length(wsi, len, &p, end)) return -1;
    char conn[64];
    if (lws_hdr_copy(wsi, conn, sizeof conn, WSI_TOKEN_CONNECTION) > 0 && strcasestr(conn, "close") &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (extra && *extra) {
        size_t el = strlen(extra);
        if ((size_t)(end - p) < el + 8) return -1;
        memcpy(p, extra, el); /* complete "Name: value\r\n" lines */
        p += el;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
    if (len) {
        unsigned char *b = malloc(LWS_PRE + len);
        if (!b) return -1;
        memcpy(b + LWS_PRE, body, len);
        int w = lws_write(wsi, b + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
        free(b);
        if (w < 0) return -1;
    }
    return 0;
}

/* ---- the protocol callbacks ------------------------------------------------- */

static int sio_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
    void *o = lws_get_opaque_user_data(wsi);
    int kind = o ? *(int *)o : 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!in || strcasecmp((const char *)in, "websocket")) return -1;
        return ws_confirm_upgrade(wsi);
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
        return http_request(wsi);
    case LWS_CALLBACK_HTTP_BODY:
        if (kind == OBJ_HTTP) return http_body(wsi, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (kind == OBJ_HTTP) return http_body_done(wsi);
        break;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (kind == OBJ_HTTP) return http_writeable(wsi);
        break;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (kind == OBJ_HTTP) {
            http_closed(wsi);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (kind == OBJ_WS) ws_destroy(o);
        else if (kind == OBJ_HTTP) http_closed(wsi);
        if (kind == OBJ_WS || kind == OBJ_HTTP) lws_set_opaque_user_data(wsi, NULL);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* engine_notify defers while this is set; the main loop flushes each turn. */
static void defer_noop(void *arg) { (void)arg; }

static lws_sorted_usec_list_t g_sul_stop;
static void stop_cb(lws_sorted_usec_list_t *sul) { (void)sul; }

static void start_stop(int signo) {
    if (g_front.stopping) return;
    g_front.stopping = 1;
    g_stop_deadline = util_now_ms() + 1500;
    lws_sul_schedule(g_front.ctx, 0, &g_sul_stop, stop_cb, (lws_usec_t)1600 * 1000);
    log_info("signal %d: stopping (%zu WebSocket connection(s))", signo, ws_count());
    ws_shutdown_all();
    http_shutdown_all();
    lws_cancel_service(g_front.ctx);
}

static int raw_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
    (void)user, (void)in, (void)len;
    if (reason != LWS_CALLBACK_RAW_RX_FILE) return 0;
    const int *tag = lws_get_opaque_user_data(wsi);
    if (!tag) return 0;
    if (*tag == OBJ_RAW_NOTIFY) {
        notify_sub_ack(g_front.e.sub);
        deliver_scan();
        http_wake();
    } else if (*tag == OBJ_RAW_LISTEN) { /* --reuse-port: our own listener */
        for (int i = 0; i < 64; i++) {
            int fd = accept4(g_listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                    log_warn("accept: %s", strerror(errno));
                break;
            }
            if (g_front.stopping) close(fd);
            else lws_adopt_socket_vhost(g_front.vh, fd); /* closes fd when it fails */
        }
    } else if (*tag == OBJ_RAW_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(g_sigfd, &si, sizeof si) == (ssize_t)sizeof si) start_stop((int)si.ssi_signo);
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

/* The opaque user data of an adopted descriptor: what it is (WSI_DESTROY of
 * every wsi reaches protocol 0, which looks at the tag). */
static int g_tag_notify = OBJ_RAW_NOTIFY, g_tag_signal = OBJ_RAW_SIGNAL, g_tag_listen = OBJ_RAW_LISTEN;

/* --reuse-port: a listen socket with SO_REUSEPORT, so that several sio-front
 * processes share one port and the kernel spreads connections over them
 * (lws 4.1 sets SO_REUSEPORT only with several service threads). */
static int listen_reuseport(const char *host, int port) {
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
        log_error("--reuse-port needs a numeric --host, not %s", host);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
        log_error("cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int adopt_fd(int fd, int *tag) {
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *w = lws_adopt_descriptor_vhost(g_front.vh, LWS_ADOPT_RAW_FILE_DESC, u, "sio-raw", NULL);
    if (!w) return -1;
    lws_set_opaque_user_data(w, tag);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: sio-front --port PORT [--host ADDR] [--www DIR] [--state DIR] [--config FILE]\n"
            "                 [--client-js FILE] [--max-queue BYTES] [--per-message-deflate]\n"
            "                 [--reuse-port]\n"
            "  The Engine.IO/Socket.IO front: WebSocket and long-polling at the configured\n"
            "  path (default /socket.io/), /socket.io/socket.io.js, the demo endpoints\n"
            "  (/demo/...) and static files from DIR (default <checkout>/www).\n"
            "  --host        address to listen on (default 127.0.0.1)\n"
            "  --max-queue   bytes queued for one WebSocket before it is dropped\n"
            "                (default: config max_queue_bytes, 4 MiB)\n"
            "  --per-message-deflate  offer WebSocket compression (default: config\n"
            "                per_message_deflate, off)\n"
            "  --reuse-port  listen with SO_REUSEPORT: several sio-front processes on one port\n"
            "                share the connections (any front serves any session)\n"
            "  env: SIO_STATE_DIR, SIO_CONFIG, SIO_LOG_LEVEL, SIO_LWS_LOG (lws log bitmask).\n");
}

/* The checkout: the executable is in <checkout>/bin or <checkout>/build/asan/bin. */
static void repo_dir(char *out, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf(out, n, ".");
        return;
    }
    exe[len] = 0;
    char *s = strrchr(exe, '/');
    if (s) *s = 0;
    size_t el = strlen(exe);
    const char *up = el >= 15 && !strcmp(exe + el - 15, "/build/asan/bin") ? "/../../.." : "/..";
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s%s", exe, up);
    if (!realpath(tmp, out)) {
        size_t l = strnlen(tmp, n - 1);
        memcpy(out, tmp, l);
        out[l] = 0;
    }
}

int main(int argc, char **argv) {
    front_opts *o = &g_front.o;
    o->host = "127.0.0.1";
    o->port = -1;
    o->max_queue = 0; /* 0: from the config (max_queue_bytes) */
    o->deflate = -1;  /* -1: from the config (per_message_deflate) */
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
        else if (!strcmp(a, "--max-queue") && v) {
            if (util_parse_long(v, 1024, 1L << 40, &n)) {
                fprintf(stderr, "sio-front: bad --max-queue '%s' (1024 bytes or more)\n", v);
                return 2;
            }
            o->max_queue = (size_t)n, i++;
        } else if (!strcmp(a, "--per-message-deflate")) o->deflate = 1;
        else if (!strcmp(a, "--reuse-port")) o->reuse_port = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if (o->port < 0) {
        usage(stderr);
        return 2;
    }
    log_init("sio-front");
    signal(SIGPIPE, SIG_IGN);

    char repo[PATH_MAX], www[PATH_MAX], cjs[PATH_MAX + 64];
    repo_dir(repo, sizeof repo);
    if (!o->www) {
        snprintf(cjs, sizeof cjs, "%s/www", repo);
        o->www = cjs;
    }
    if (!realpath(o->www, www)) {
        log_error("static directory %s: %s", o->www, strerror(errno));
        return 1;
    }
    o->www = www;
    static char cjs_default[PATH_MAX + 64];
    if (!o->client_js) {
        snprintf(cjs_default, sizeof cjs_default,
                 "%s/tests/node_modules/socket.io-client/dist/socket.io.min.js", repo);
        o->client_js = cjs_default;
    }

    /* Signals arrive through a signalfd in the loop: block them before any
     * thread starts (the notify subscriber inherits the mask). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    g_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    char err[1024];
    if (engine_open(&g_front.e, o->state_dir, o->config, ENGINE_SUBSCRIBE, err, sizeof err) ||
        plugin_load(&g_front.e, err, sizeof err)) {
        log_error("%s", err);
        return 1;
    }
    if (!o->max_queue) o->max_queue = (size_t)g_front.e.cfg.max_queue_bytes;
    if (o->deflate < 0) o->deflate = g_front.e.cfg.per_message_deflate;
    engine *e = &g_front.e;
    int rc = deliver_init();
    if (rc) {
        log_error("cannot register the reader cursor: %s", store_strerror(rc));
        engine_close(e);
        return 1;
    }

    /* SIO_LWS_LOG: an lws log bitmask for debugging (LLL_INFO is 8, ...) */
    const char *ll = getenv("SIO_LWS_LOG");
    lws_set_log_level(ll && *ll ? atoi(ll) : LLL_ERR | LLL_WARN, lws_log_emit);
    /* cfg.path "/socket.io/" -> mount "/socket.io" */
    snprintf(g_eio_mount, sizeof g_eio_mount, "%s", e->cfg.path);
    size_t ml = strlen(g_eio_mount);
    while (ml > 1 && g_eio_mount[ml - 1] == '/') g_eio_mount[--ml] = 0;

    static struct lws_http_mount m_eio, m_bare, m_demo, m_www;
    static char bare_mount[256];
    m_www.mountpoint = "/";
    m_www.mountpoint_len = 1;
    m_www.origin = o->www;
    m_www.def = "index.html";
    m_www.origin_protocol = LWSMPRO_FILE;
    m_demo.mountpoint = "/demo";
    m_demo.mountpoint_len = 5;
    m_demo.origin = "sio";
    m_demo.origin_protocol = LWSMPRO_CALLBACK;
    m_demo.mount_next = &m_www;
    m_eio.mountpoint = g_eio_mount;
    m_eio.mountpoint_len = (unsigned char)ml;
    m_eio.origin = "sio";
    m_eio.origin_protocol = LWSMPRO_CALLBACK;
    m_eio.mount_next = &m_demo;
    if (e->cfg.engine_path) { /* the bare Engine.IO endpoint */
        snprintf(bare_mount, sizeof bare_mount, "%s", e->cfg.engine_path);
        size_t bl = strlen(bare_mount);
        while (bl > 1 && bare_mount[bl - 1] == '/') bare_mount[--bl] = 0;
        m_bare.mountpoint = bare_mount;
        m_bare.mountpoint_len = (unsigned char)bl;
        m_bare.origin = "sio";
        m_bare.origin_protocol = LWSMPRO_CALLBACK;
        m_bare.mount_next = &m_demo;
        m_eio.mount_next = &m_bare;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = o->reuse_port ? CONTEXT_PORT_NO_LISTEN_SERVER : o->port;
    info.iface = o->host;
    info.protocols = g_protocols;
    info.mounts = ml > 1 ? &m_eio : &m_demo;
    info.extensions = o->deflate ? g_exts : NULL;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(o->host, ':')) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* No lws idle checks: the Engine.IO heartbeat is ours.  lws's default
     * policy (PING after 300 s idle) re-arms a timer on every received frame,
     * and its timer list is sorted with an O(connections) insert. */
    static const lws_retry_bo_t no_idle_policy = {0};
    info.retry_and_idle_policy = &no_idle_policy;
    info.pt_serv_buf_size = 32768;
    info.keepalive_timeout = 60;
    info.timeout_secs = 20;
    info.vhost_name = "sio-front";
    info.server_string = "sio-front";
    g_front.ctx = lws_create_context(&info);
    if (!g_front.ctx) {
        log_error("cannot listen on %s:%d (in use, or a bad address?)", o->host, o->port);
        deliver_persist(1);
        engine_close(e);
        return 1;
    }
    g_front.vh = lws_get_vhost_by_name(g_front.ctx, "sio-front");
    g_evfd = dup(notify_sub_eventfd(e->sub));
    if (o->reuse_port && (g_listenfd = listen_reuseport(o->host, o->port)) < 0) {
        lws_context_destroy(g_front.ctx);
        deliver_persist(1);
        engine_close(e);
        return 1;
    }
    if (!g_front.vh || g_evfd < 0 || adopt_fd(g_evfd, &g_tag_notify) || g_sigfd < 0 ||
        adopt_fd(g_sigfd, &g_tag_signal) || (g_listenfd >= 0 && adopt_fd(g_listenfd, &g_tag_listen))) {
        log_error("cannot add the notify/signal descriptors to the event loop");
        lws_context_destroy(g_front.ctx);
        deliver_persist(1);
        engine_close(e);
        return 1;
    }
    if (access(o->client_js, R_OK))
        log_warn("client bundle %s not found: %ssocket.io.js will answer 404 (run scripts/install-deps)",
                 o->client_js, e->cfg.path);
    log_info("listening on http://%s:%d: Socket.IO at %s%s%s (%s%s%s), static files %s, "
             "state %s, reader %s at %llu, max queue %zu bytes%s",
             o->host, o->port, e->cfg.path, e->cfg.engine_path ? ", Engine.IO at " : "",
             e->cfg.engine_path ? e->cfg.engine_path : "",
             e->cfg.allow_websocket ? "WebSocket" : "",
             e->cfg.allow_websocket && e->cfg.allow_polling ? " and " : "",
             e->cfg.allow_polling ? "polling" : "", o->www, e->dir, g_front.reader_name,
             (unsigned long long)deliver_cursor(), o->max_queue,
             o->deflate ? ", permessage-deflate on" : "");
    if (o->reuse_port) log_info("sharing port %d with other fronts (SO_REUSEPORT)", o->port);
    deliver_scan();

    /* One wake-up per loop turn for everything this turn committed: readers
     * (the dispatcher, other fronts, held polls) then take whole batches. */
    e->defer_hook = defer_noop;
    while (!g_front.stopping || (ws_count() > 0 && util_now_ms() < g_stop_deadline)) {
        if (lws_service(g_front.ctx, 0) < 0) break;
        engine_notify_flush(e);
    }
    engine_notify_flush(e);
    e->defer_hook = NULL;

    lws_context_destroy(g_front.ctx);
    deliver_persist(1);
    engine_close(e); /* lws closed the adopted descriptors */
    log_info("stopped");
    return 0;
}

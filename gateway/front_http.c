/* front_http: plain HTTP in sio-front (see front_http.h).
 *   - Engine.IO long-polling at cfg.path, driven like gateway/fcgi.c drives
 *     it (polling_begin / polling_post / polling_step) but without
 *     blocking: a held GET stays in a list, is re-stepped on every notify
 *     wake and at its deadline (a front timer), and is answered from
 *     LWS_CALLBACK_HTTP_WRITEABLE;
 *   - cfg.path + "socket.io.js": the client bundle (like serveClient);
 *   - the demo endpoints (front_demo.c);
 *   - cfg.metrics_path: the Prometheus metrics page (server/metrics.h).
 * A client that drops a held GET closes its session, as Node does. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front_http.h"

#include "base/log.h"
#include "base/util.h"
#include "front_demo.h"
#include "front_lws.h"
#include "proto/sio_parser.h"
#include "server/metrics.h"
#include "server/polling.h"

#define HTTP_CHUNK 65536

enum { R_EIO = 1 }; /* else a DEMO_* endpoint */

typedef struct fhttp_req {
    int kind; /* OBJ_HTTP */
    struct lws *wsi;
    fhttp *owner;
    int route;
    char method[12];
    char *query;           /* owned */
    char ctype[128], origin[512], remote[64];
    char *url;             /* owned */
    flws_hdrs hdrs;
    http_req req;
    polling_req poll;
    int listed;            /* in the held list */
    int reading;           /* a body is expected */
    int posting;           /* an Engine.IO POST whose body is arriving: in the posting list */
    int broken;            /* its session was closed by a second POST: answer "ok", as Node */
    buf body;
    int too_big;
    int drain;              /* answer already made: drop the body, then send it */
    http_resp resp;
    int ready;             /* resp is complete: write it */
    int hdr_sent;
    int conn_close;        /* the client asked for Connection: close */
    size_t off;
    ftimer timer;           /* the held GET's deadline */
    struct fhttp_req *prev, *next;
    struct fhttp_req *pprev, *pnext; /* the posting list */
} fhttp_req;

struct fhttp {
    server *srv;
    ftimers *timers;
    const char *client_js;
    int demo;            /* the demo endpoints are served (sio-front --demo) */
    int stopping;        /* held GETs are abandoned, not dropped */
    fhttp_req *held;     /* held GETs */
    fhttp_req *posting;  /* POSTs whose body is arriving */
    unsigned char scratch[LWS_PRE + HTTP_CHUNK];
};


fhttp *fhttp_new(server *srv, ftimers *timers, const char *client_js, int demo) {
    fhttp *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->srv = srv;
    h->timers = timers;
    h->client_js = client_js;
    h->demo = demo;
    return h;
}

void fhttp_free(fhttp *h) { free(h); }

static void list_add(fhttp_req *r) {
    if (r->listed) return;
    r->listed = 1;
    r->prev = NULL;
    r->next = r->owner->held;
    if (r->next) r->next->prev = r;
    r->owner->held = r;
}

static void list_del(fhttp_req *r) {
    if (!r->listed) return;
    r->listed = 0;
    if (r->prev) r->prev->next = r->next;
    else r->owner->held = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    ftimer_cancel(r->owner->timers, &r->timer);
}

static void posting_add(fhttp_req *r) {
    r->posting = 1;
    r->pprev = NULL;
    r->pnext = r->owner->posting;
    if (r->pnext) r->pnext->pprev = r;
    r->owner->posting = r;
}

static void posting_del(fhttp_req *r) {
    if (!r->posting) return;
    r->posting = 0;
    if (r->pprev) r->pprev->pnext = r->pnext;
    else r->owner->posting = r->pnext;
    if (r->pnext) r->pnext->pprev = r->pprev;
    r->pprev = r->pnext = NULL;
}

/* Another POST of session sid is still arriving: Node answers the new one
 * 400 and closes the session; the first one then gets "ok" for nothing. */
static int post_overlaps(fhttp *h, fhttp_req *r) {
    int found = 0;
    for (fhttp_req *o = h->posting; o; o = o->pnext)
        if (!strcmp(o->poll.sid, r->poll.sid)) o->broken = found = 1;
    if (!found) return 0;
    log_info("session %s: a second POST from %s while one is arriving: 400, session closed", r->poll.sid,
             r->remote);
    polling_post_broken(h->srv, &r->poll);
    polling_overlap_answer(&r->resp);
    return 1;
}

static void req_free(fhttp_req *r) {
    list_del(r);
    posting_del(r);
    ftimer_cancel(r->owner->timers, &r->timer);
    flws_hdrs_free(&r->hdrs);
    free(r->query);
    free(r->url);
    buf_free(&r->body);
    http_resp_free(&r->resp);
    free(r);
}

static void respond(fhttp_req *r) {
    list_del(r);
    r->ready = 1;
    lws_callback_on_writable(r->wsi);
}

/* ---- long-polling ---------------------------------------------------------- */

static void step_cb(ftimer *t);

static void step(fhttp_req *r) {
    int64_t deadline = util_now_ms() + 1000;
    int rc = polling_step(r->owner->srv, &r->poll, &r->resp, &deadline);
    if (rc == POLLING_DONE) {
        respond(r);
        return;
    }
    list_add(r);
    int64_t d = deadline - util_now_ms();
    if (d < 1) d = 1;
    ftimer_set(r->owner->timers, &r->timer, step_cb, d);
}

static void step_cb(ftimer *t) {
    fhttp_req *r = lws_container_of(t, fhttp_req, timer);
    if (r->listed && !r->ready) step(r);
}

void fhttp_wake(fhttp *h) {
    uint64_t gen = notify_sub_gen(h->srv->sub);
    fhttp_req *r = h->held;
    while (r) {
        fhttp_req *next = r->next; /* step may unlink r */
        if (r->poll.gen != gen) step(r);
        r = next;
    }
}

void fhttp_shutdown_all(fhttp *h) {
    h->stopping = 1;
    while (h->held) {
        fhttp_req *r = h->held;
        list_del(r);
        polling_abandon(h->srv, &r->poll); /* the session lives on in the store */
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

void fhttp_closed(struct lws *wsi) {
    fhttp_req *r = lws_get_opaque_user_data(wsi);
    if (!r || r->kind != OBJ_HTTP) return;
    lws_set_opaque_user_data(wsi, NULL);
    int abandoned = r->poll.held && !r->ready;
    if (r->posting && !r->broken && !r->owner->stopping) {
        /* the client went away in the middle of its POST: Node closes the session */
        log_info("session %s: POST from %s broken off: session closed", r->poll.sid, r->remote);
        polling_post_broken(r->owner->srv, &r->poll);
    }
    list_del(r);
    if (abandoned && !r->owner->stopping) polling_dropped(r->owner->srv, &r->poll);
    else if (r->poll.held) polling_abandon(r->owner->srv, &r->poll);
    req_free(r);
}

static void fill_req(struct lws *wsi, fhttp_req *r, int meth) {
    snprintf(r->method, sizeof r->method, "%s", flws_method_name(meth));
    r->query = flws_query(wsi);
    if (lws_hdr_copy(wsi, r->ctype, sizeof r->ctype, WSI_TOKEN_HTTP_CONTENT_TYPE) < 0) r->ctype[0] = 0;
    if (lws_hdr_copy(wsi, r->origin, sizeof r->origin, WSI_TOKEN_ORIGIN) < 0) r->origin[0] = 0;
    lws_get_peer_simple(wsi, r->remote, sizeof r->remote);
    char cl[32];
    long clen = -1;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        char *end;
        clen = strtol(cl, &end, 10);
        if (*end || clen < 0) clen = -1;
    }
    char conn[64];
    if (lws_hdr_copy(wsi, conn, sizeof conn, WSI_TOKEN_CONNECTION) > 0)
        r->conn_close = strcasestr(conn, "close") != NULL;
    r->req.method = r->method;
    r->req.query = r->query ? r->query : "";
    r->req.content_type = r->ctype[0] ? r->ctype : NULL;
    r->req.origin = r->origin[0] ? r->origin : NULL;
    r->req.remote_addr = r->remote;
    r->req.content_length = clen;
    r->req.upgrade = 0;
    r->url = flws_url(wsi, r->query);
    r->req.url = r->url ? r->url : "";
    flws_hdrs_load(wsi, &r->hdrs);
    r->req.headers = r->hdrs.kv;
}

/* Answers at once and closes the connection: for refusals made before a
 * request body was read (the unread body must not be parsed as a request). */
static int answer_and_close(struct lws *wsi, fhttp_req *r) {
    const char *ctype = r->resp.content_type;
    flws_respond(wsi, r->resp.status, ctype, r->resp.body.data ? r->resp.body.data : "",
                 r->resp.body.len, r->resp.headers.data);
    lws_set_opaque_user_data(wsi, NULL);
    req_free(r);
    return -1;
}

/* A request body must arrive within cfg.http_timeout (whole seconds for lws).
 * lws re-arms its timeout whenever a piece comes, so a body that trickles
 * would never end: the request's timer bounds the whole body too. */
static int body_timeout(const server *e) { return (int)((e->cfg.http_timeout + 999) / 1000); }

static void body_late_cb(ftimer *t) {
    fhttp_req *r = lws_container_of(t, fhttp_req, timer);
    if (!r->reading) return;
    log_info("request from %s: body not complete after http_timeout (%ld ms): closing", r->remote,
             r->owner->srv->cfg.http_timeout);
    lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Starts reading a body (dropped when drain) within cfg.http_timeout. */
static void read_body(struct lws *wsi, fhttp_req *r, int drain) {
    server *e = r->owner->srv;
    r->reading = 1;
    if (drain) r->drain = r->too_big = 1;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, body_timeout(e));
    ftimer_set(r->owner->timers, &r->timer, body_late_cb, e->cfg.http_timeout);
}

#define DRAIN_MAX(e) (16 * (e)->cfg.max_http_buffer_size)

static int eio_request(struct lws *wsi, fhttp_req *r) {
    server *e = r->owner->srv;
    r->route = R_EIO;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 && r->req.content_length < 0) {
        /* A chunked body: lws 4.1 cannot read one (it would parse the chunks
         * as the next request).  Refuse it before touching the session, and
         * hang up, as a server without chunked request bodies does. */
        char esc[64];
        log_info("POST from %s with a chunked body (no Content-Length): 411 (session %s untouched)",
                 r->remote, log_escape(esc, sizeof esc, r->req.query, strlen(r->req.query)));
        http_resp_set(&r->resp, 411, "text/plain", "Length Required\n", 16);
        return answer_and_close(wsi, r);
    }
    int rc = polling_begin(e, &r->req, &r->poll, &r->resp);
    int has_body = r->req.content_length > 0;
    switch (rc) {
    case POLLING_READ_BODY:
        if (!has_body) { /* nothing will come: an empty payload */
            polling_post(e, &r->poll, (uint8_t *)"", 0, 0, &r->resp);
            respond(r);
            return 0;
        }
        if (post_overlaps(r->owner, r)) return answer_and_close(wsi, r);
        posting_add(r);
        read_body(wsi, r, 0);
        return 0;
    case POLLING_WAIT:
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* held as long as polling_step says */
        step(r);
        return 0;
    default:
        /* Refused with a body on its way (413, 400...): read and drop it, then
         * answer, so that the client is not reset while still sending; a body
         * too big to be worth reading gets the answer and the connection closed. */
        if (has_body && r->req.content_length > DRAIN_MAX(e)) return answer_and_close(wsi, r);
        if (has_body) {
            read_body(wsi, r, 1);
            return 0;
        }
        respond(r);
        return 0;
    }
}

/* ---- the client bundle ------------------------------------------------------- */

static int serve_client(fhttp *h, struct lws *wsi, int map) {
    char mp[PATH_MAX];
    const char *path = h->client_js;
    if (map) { /* the bundle's source map, next to it */
        snprintf(mp, sizeof mp, "%s.map", path);
        path = mp;
    }
    if (access(path, R_OK)) {
        log_warn("client bundle %s missing (%s): 404 (run scripts/install-deps)", path, strerror(errno));
        static const char msg[] = "socket.io client bundle not installed\n";
        flws_respond(wsi, 404, "text/plain", msg, sizeof msg - 1, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    static const char hdrs[] = "cache-control: public, max-age=0\x0d\x0a";
    int n = lws_serve_http_file(wsi, path, map ? "application/json" : "application/javascript", hdrs,
                                (int)sizeof hdrs - 1);
    if (n < 0) return -1;
    if (n > 0 && lws_http_transaction_completed(wsi)) return -1;
    return 0;
}

/* ---- lws entry points --------------------------------------------------------- */

/* A demo endpoint: answered now, or once its body is read. */
static int demo_request(struct lws *wsi, fhttp_req *r, int route) {
    r->route = route;
    if (route == DEMO_ROOMS) {
        char nsp[SIO_NSP_MAX + 8], room[STORE_ROOM_MAX + 8];
        const char *n = lws_get_urlarg_by_name(wsi, "nsp=", nsp, sizeof nsp);
        const char *rm = lws_get_urlarg_by_name(wsi, "room=", room, sizeof room);
        demo_rooms(r->owner->srv, n, rm, &r->resp);
    } else if (r->req.content_length > 0) {
        read_body(wsi, r, 0);
        return 0;
    } else {
        demo_join(r->owner->srv, route == DEMO_LEAVE, NULL, 0, 0, &r->resp);
    }
    respond(r);
    return 0;
}

int fhttp_request(fhttp *h, struct lws *wsi) {
    char *uptr = NULL;
    int ulen = 0;
    int meth = lws_http_get_uri_and_method(wsi, &uptr, &ulen);
    char uri[1024];
    if (meth < 0 || !uptr || ulen <= 0 || (size_t)ulen >= sizeof uri) {
        flws_respond(wsi, 400, "text/plain", "Bad Request", 11, NULL);
        return -1;
    }
    memcpy(uri, uptr, (size_t)ulen);
    uri[ulen] = 0;
    const char *path = h->srv->cfg.path;
    size_t pl = strlen(path);
    if (!strncmp(uri, path, pl) &&
        (!strcmp(uri + pl, "socket.io.js") || !strcmp(uri + pl, "socket.io.min.js")))
        return serve_client(h, wsi, 0);
    if (!strncmp(uri, path, pl) &&
        (!strcmp(uri + pl, "socket.io.js.map") || !strcmp(uri + pl, "socket.io.min.js.map")))
        return serve_client(h, wsi, 1);

    fhttp_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->kind = OBJ_HTTP;
    r->wsi = wsi;
    r->owner = h;
    fill_req(wsi, r, meth);
    lws_set_opaque_user_data(wsi, r);

    if (metrics_route(h->srv, uri)) {
        metrics_answer(h->srv, r->method, &r->resp);
        if (r->req.content_length > 0) return answer_and_close(wsi, r);
        respond(r);
        return 0;
    }
    int route = http_route(h->srv, uri);
    if (route) {
        r->req.bare = route == 2;
        return eio_request(wsi, r);
    }
    if (h->demo && (route = demo_route(uri, r->method))) return demo_request(wsi, r, route);
    r->resp.status = 404;
    r->resp.content_type = "text/plain";
    buf_puts(&r->resp.body, "Not Found\n");
    if (r->req.content_length > 0) return answer_and_close(wsi, r);
    respond(r);
    return 0;
}

int fhttp_body(struct lws *wsi, const void *in, size_t len) {
    fhttp_req *r = lws_get_opaque_user_data(wsi);
    if (!r || !r->reading || r->too_big) return 0;
    size_t max = r->route == R_EIO ? (size_t)r->owner->srv->cfg.max_http_buffer_size : DEMO_BODY_MAX;
    if (r->body.len + len > max || buf_append(&r->body, in, len)) {
        r->too_big = 1; /* keep reading (and dropping) so that we can answer 413 */
        buf_free(&r->body);
    }
    return 0;
}

int fhttp_body_done(struct lws *wsi) {
    fhttp_req *r = lws_get_opaque_user_data(wsi);
    if (!r || !r->reading) return 0;
    r->reading = 0;
    posting_del(r);
    ftimer_cancel(r->owner->timers, &r->timer);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (r->drain) {
        respond(r);
        return 0;
    }
    if (r->route == R_EIO && r->broken) {
        http_resp_set(&r->resp, 200, "text/html", "ok", 2);
    } else if (r->route == R_EIO) {
        static uint8_t empty[1];
        uint8_t *b = r->body.data ? (uint8_t *)r->body.data : empty;
        polling_post(r->owner->srv, &r->poll, b, r->body.len, r->too_big, &r->resp);
        if (r->too_big) {
            char esc[64];
            log_warn("POST from %s on session %s over max_http_buffer_size (%ld bytes): 413", r->remote,
                     log_escape(esc, sizeof esc, r->poll.sid, strlen(r->poll.sid)),
                     r->owner->srv->cfg.max_http_buffer_size);
        }
    } else {
        demo_join(r->owner->srv, r->route == DEMO_LEAVE, r->body.data, r->body.len, r->too_big,
                  &r->resp);
    }
    buf_free(&r->body);
    respond(r);
    return 0;
}

/* Copies "Name: value\r\n" lines into lws header calls. */
static int add_extra_headers(struct lws *wsi, const buf *h, unsigned char **p, unsigned char *end) {
    const char *s = h->data, *e = s ? s + h->len : NULL;
    while (s && s < e) {
        const char *nl = memchr(s, '\n', (size_t)(e - s));
        const char *le = nl ? nl : e;
        const char *colon = memchr(s, ':', (size_t)(le - s));
        if (colon) {
            char name[128];
            size_t nlen = (size_t)(colon - s);
            if (nlen + 2 > sizeof name) return -1;
            for (size_t i = 0; i < nlen; i++) name[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
            name[nlen] = ':';
            name[nlen + 1] = 0;
            const char *v = colon + 1;
            while (v < le && *v == ' ') v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v,
                                            (int)(ve - v), p, end))
                return -1;
        }
        s = nl ? nl + 1 : e;
    }
    return 0;
}

int fhttp_writeable(struct lws *wsi) {
    fhttp_req *r = lws_get_opaque_user_data(wsi);
    if (!r || r->kind != OBJ_HTTP || !r->ready) return 0;
    http_resp *resp = &r->resp;
    if (!r->hdr_sent) {
        unsigned char hb[LWS_PRE + 4096];
        unsigned char *start = hb + LWS_PRE, *p = start, *end = hb + sizeof hb - 1;
        if (lws_add_http_header_status(wsi, (unsigned int)resp->status, &p, end)) return -1;
        if (resp->content_type &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)resp->content_type,
                                         (int)strlen(resp->content_type), &p, end))
            return -1;
        if (lws_add_http_header_content_length(wsi, resp->body.len, &p, end)) return -1;
        if (resp->status == 200 &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                         (const unsigned char *)"no-store", 8, &p, end))
            return -1;
        if (add_extra_headers(wsi, &resp->headers, &p, end)) return -1;
        /* lws will hang up after this response: say so, or a keep-alive
         * client (Node's http.Agent) may reuse the socket and lose a request */
        if (r->conn_close &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                         &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
        r->hdr_sent = 1;
        if (resp->body.len && lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (r->off < resp->body.len) {
        size_t chunk = resp->body.len - r->off;
        if (chunk > HTTP_CHUNK) chunk = HTTP_CHUNK;
        int last = r->off + chunk == resp->body.len;
        memcpy(r->owner->scratch + LWS_PRE, resp->body.data + r->off, chunk);
        if (lws_write(wsi, r->owner->scratch + LWS_PRE, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
            return -1;
        r->off += chunk;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    lws_set_opaque_user_data(wsi, NULL);
    req_free(r);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

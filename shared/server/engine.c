/* engine: Engine.IO sessions over the store (see engine.h). */
#include "server/engine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/adapter.h"
#include "proto/eio_parser.h"
#include "store/inbox.h"
#include "base/log.h"
#include "server/srv.h"
#include "base/util.h"

#define CLOSED_LINGER_MS 10000 /* a closed session's record waits for its held GET */
#define UPGRADE_GET_WAIT_MS 100 /* a GET during an upgrade waits this long for the '5' */
#define CLOSE_GET_GRACE_MS 1000 /* a GET that the client's own close overtook */

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

int engine_open(engine *e, const char *dir, const char *cfg_path, unsigned flags, char *err,
                size_t errlen) {
    memset(e, 0, sizeof *e);
    if (dir && *dir) {
        snprintf(e->dir, sizeof e->dir, "%s", dir);
    } else if (util_state_dir(e->dir, sizeof e->dir)) {
        snprintf(err, errlen, "state directory path too long");
        return -ENAMETOOLONG;
    }
    if (!cfg_path || !*cfg_path) cfg_path = getenv("SIO_CONFIG");
    if (cfg_path && !*cfg_path) cfg_path = NULL;
    buf text = BUF_INIT;
    char cerr[512] = "";
    int rc = 0;
    if (cfg_path && (rc = read_file(cfg_path, &text))) {
        snprintf(err, errlen, "cannot read config %s: %s", cfg_path,
                 rc == -ENOMEM ? "file too large" : strerror(-rc));
        buf_free(&text);
        return rc;
    }
    /* Open the store with the map size of the file's config, if any. */
    cfg pre;
    if (cfg_parse(&pre, text.data ? text.data : "", text.len, cerr, sizeof cerr)) {
        snprintf(err, errlen, "config %s: %s", cfg_path, cerr);
        buf_free(&text);
        return -EINVAL;
    }
    store_opts o = {.create = (flags & ENGINE_CREATE) != 0,
                    .map_size = (size_t)pre.map_size_mb << 20};
    cfg_free(&pre);
    rc = store_open(&e->st, e->dir, &o);
    if (rc) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "no store in %s: is stated running? (start it with: stated --state %s)",
                     e->dir, e->dir);
        else
            snprintf(err, errlen, "cannot open the store in %s: %s", e->dir, store_strerror(rc));
        buf_free(&text);
        return rc;
    }
    store_txn *t;
    rc = store_begin(e->st, (flags & ENGINE_CREATE) != 0, &t);
    if (!rc && (flags & ENGINE_CREATE)) {
        rc = store_meta_put(t, "config", text.data ? text.data : "", text.len);
        if (!rc) rc = store_meta_put(t, "config_path", cfg_path ? cfg_path : "",
                                     cfg_path ? strlen(cfg_path) : 0);
        if (!rc) rc = store_commit(t); else store_abort(t);
    } else if (!rc) {
        const void *d;
        size_t len;
        if (!cfg_path && store_meta_get(t, "config", &d, &len) == 0) buf_append(&text, d, len);
        store_abort(t);
    }
    if (!rc) {
        rc = cfg_parse(&e->cfg, text.data ? text.data : "", text.len, cerr, sizeof cerr);
        if (rc) snprintf(err, errlen, "config%s%s: %s", cfg_path ? " " : " published by stated",
                         cfg_path ? cfg_path : "", cerr);
        else if (cfg_path) e->cfg.source = strdup(cfg_path);
    } else {
        snprintf(err, errlen, "cannot read the store in %s: %s", e->dir, store_strerror(rc));
    }
    buf_free(&text);
    if (rc) {
        store_close(e->st);
        return rc;
    }
    if (flags & ENGINE_SUBSCRIBE) {
        rc = notify_sub_start(e->dir, &e->sub);
        if (rc) {
            snprintf(err, errlen, "cannot start the notify subscriber: %s", strerror(-rc));
            store_close(e->st);
            cfg_free(&e->cfg);
            return rc;
        }
    }
    return 0;
}

void engine_close(engine *e) {
    notify_sub_stop(e->sub);
    store_close(e->st);
    cfg_free(&e->cfg);
    memset(e, 0, sizeof *e);
}

void engine_notify(engine *e, uint64_t seq) {
    if (e->defer_hook) {
        if (seq > e->defer_seq) e->defer_seq = seq;
        if (!e->defer_pending) {
            e->defer_pending = 1;
            e->defer_hook(e->defer_arg);
        }
        return;
    }
    if (e->sub) notify_sub_publish(e->sub, seq);
    else notify_send(e->dir, seq);
}

void engine_notify_flush(engine *e) {
    if (!e->defer_pending) return;
    e->defer_pending = 0;
    uint64_t seq = e->defer_seq;
    e->defer_seq = 0;
    if (e->sub) notify_sub_publish(e->sub, seq);
    else notify_send(e->dir, seq);
}

const char *engine_close_reason(int reason) {
    switch (reason) {
    case ENGINE_CLOSE_CLIENT: return "transport close";
    case ENGINE_CLOSE_PING_TIMEOUT: return "ping timeout";
    case ENGINE_CLOSE_PARSE_ERROR: return "parse error";
    case ENGINE_CLOSE_OVERLAP: return "overlapping poll";
    case ENGINE_CLOSE_SERVER: return "forced close";
    case ENGINE_CLOSE_CONNECT_TIMEOUT: return "connect timeout";
    case ENGINE_CLOSE_LAGGING: return "fell behind";
    case ENGINE_CLOSE_TRANSPORT: return "transport error";
    case ENGINE_CLOSE_POLL_DROPPED: return "poll connection closed prematurely";
    }
    return "unknown";
}

void engine_resp_free(engine_http_resp *r) {
    buf_free(&r->body);
    buf_free(&r->headers);
}

/* ---- responses ---------------------------------------------------------- */

static void resp_set(engine_http_resp *r, int status, const char *ctype, const char *body,
                     size_t len) {
    r->status = status;
    r->content_type = ctype;
    buf_reset(&r->body);
    if (len) buf_append(&r->body, body, len);
}

/* Engine.IO error codes and messages, as the Node server sends them. */
const char *engine_error_message(int code) {
    static const char *msgs[] = {"Transport unknown", "Session ID unknown", "Bad handshake method",
                                 "Bad request", "Forbidden", "Unsupported protocol version"};
    return code >= 0 && code <= 5 ? msgs[code] : "Bad request";
}

static void resp_error(engine_http_resp *r, int code) {
    r->status = code == 4 ? 403 : 400;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_printf(&r->body, "{\"code\":%d,\"message\":\"%s\"}", code, engine_error_message(code));
}

static void resp_text(engine_http_resp *r, const char *s) {
    resp_set(r, 200, "text/plain; charset=UTF-8", s, strlen(s));
}

/* ---- query string -------------------------------------------------------- */

typedef struct query {
    char eio[8], transport[16], sid[32];
    int has_eio, has_transport, has_sid;
} query;

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies the percent-decoded value into out (truncating; *trunc set). */
static void qcopy(char *out, size_t n, const char *v, size_t len, int *trunc) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '+') c = ' ';
        else if (c == '%' && i + 2 < len + 0 && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
            c = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
            i += 2;
        }
        if (o + 1 >= n) { *trunc = 1; break; }
        out[o++] = c;
    }
    out[o] = 0;
}

static void parse_query(const char *q, query *out) {
    memset(out, 0, sizeof *out);
    if (!q) return;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t kl = eq ? (size_t)(eq - q) : len;
        const char *v = eq ? eq + 1 : q + len;
        size_t vl = eq ? len - kl - 1 : 0;
        int trunc = 0;
        /* the first occurrence wins, like Node's querystring for scalars */
        if (kl == 3 && !memcmp(q, "EIO", 3) && !out->has_eio) {
            qcopy(out->eio, sizeof out->eio, v, vl, &trunc);
            out->has_eio = trunc ? 2 : 1;
        } else if (kl == 9 && !memcmp(q, "transport", 9) && !out->has_transport) {
            qcopy(out->transport, sizeof out->transport, v, vl, &trunc);
            out->has_transport = trunc ? 2 : 1;
        } else if (kl == 3 && !memcmp(q, "sid", 3) && !out->has_sid) {
            qcopy(out->sid, sizeof out->sid, v, vl, &trunc);
            out->has_sid = trunc ? 2 : 1;
        }
        q += len;
        if (*q == '&') q++;
    }
}

/* The transport named in the query is known and enabled (Node: code 0). */
static int transport_allowed(const engine *e, const query *q) {
    if (q->has_transport != 1) return 0;
    if (!strcmp(q->transport, "polling")) return e->cfg.allow_polling;
    if (!strcmp(q->transport, "websocket")) return e->cfg.allow_websocket;
    return 0;
}

/* Node rejects Origin headers with characters outside HTTP's token set. */
static int origin_invalid(const char *o) {
    for (; o && *o; o++) {
        unsigned char c = (unsigned char)*o;
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 1;
    }
    return 0;
}

static int holder_alive(const store_session *s) {
    if (!s->poll_pid) return 0;
    if (s->poll_pid == getpid()) return 1;
    return kill(s->poll_pid, 0) == 0 || errno == EPERM;
}

static void cors_headers(engine *e, const engine_http_req *req, engine_http_resp *r) {
    if (!e->cfg.cors_origin) return;
    const char *o = e->cfg.cors_origin;
    if (!strcmp(o, "*") && req->origin && *req->origin && !origin_invalid(req->origin)) {
        buf_printf(&r->headers, "Access-Control-Allow-Origin: %s\r\n", req->origin);
        buf_puts(&r->headers, "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    } else {
        buf_printf(&r->headers, "Access-Control-Allow-Origin: %s\r\n", o);
    }
}

int engine_route(const engine *e, const char *uri) {
    if (!uri) return 1;
    size_t ul = strcspn(uri, "?");
    const char *paths[2] = {e->cfg.path, e->cfg.engine_path};
    for (int i = 0; i < 2; i++) {
        const char *p = paths[i];
        if (!p) continue;
        size_t pl = strlen(p);
        if ((ul >= pl && !strncmp(uri, p, pl)) || (ul == pl - 1 && !strncmp(uri, p, pl - 1)))
            return i + 1;
    }
    return 0;
}

/* {"address","headers","query","time","url"} of the request that opened a
 * session, for handlers (socket.handshake). */
static char *handshake_json(const engine_http_req *req, int64_t now) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "address", req->remote_addr ? req->remote_addr : "");
    cJSON *h = cJSON_AddObjectToObject(o, "headers");
    for (size_t i = 0; req->headers && req->headers[i] && req->headers[i + 1] && i < 200; i += 2)
        if (!cJSON_GetObjectItemCaseSensitive(h, req->headers[i]))
            cJSON_AddStringToObject(h, req->headers[i], req->headers[i + 1]);
    cJSON *q = cJSON_AddObjectToObject(o, "query");
    const char *qs = req->query ? req->query : "";
    while (*qs) {
        size_t len = strcspn(qs, "&");
        const char *eq = memchr(qs, '=', len);
        size_t kl = eq ? (size_t)(eq - qs) : len;
        char k[256], v[2048];
        int trunc = 0;
        qcopy(k, sizeof k, qs, kl, &trunc);
        qcopy(v, sizeof v, eq ? eq + 1 : qs + len, eq ? len - kl - 1 : 0, &trunc);
        if (*k && !cJSON_GetObjectItemCaseSensitive(q, k)) cJSON_AddStringToObject(q, k, v);
        qs += len;
        if (*qs == '&') qs++;
    }
    cJSON_AddNumberToObject(o, "time", (double)now);
    cJSON_AddStringToObject(o, "url", req->url ? req->url : "");
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* ---- closing ---------------------------------------------------------------- */

int engine_session_close(engine *e, store_txn *t, const char *sid, store_session *s, int reason) {
    if (s->state == STORE_S_CLOSED) return 0;
    int rc = srv_session_drop(e, t, sid, srv_disconnect_reason(reason));
    if (!rc) rc = store_partial_del(t, sid);
    if (rc) return rc;
    s->state = STORE_S_CLOSED;
    s->close_reason = (uint8_t)reason;
    s->closed_ms = util_now_ms();
    s->nsockets = 0;
    log_debug("session %s closed: %s", sid, engine_close_reason(reason));
    return store_session_put(t, sid, s);
}

/* The deadline check every request and the reaper share: returns the close
 * reason a session has reached at now, or 0. */
static int session_expired(engine *e, const store_session *s, int64_t now) {
    if (s->state == STORE_S_CLOSED || s->transport != STORE_T_POLLING) return 0;
    if (now >= s->ping_at_ms + e->cfg.ping_timeout) return ENGINE_CLOSE_PING_TIMEOUT;
    if (!s->ever_connected && now >= s->created_ms + e->cfg.connect_timeout)
        return ENGINE_CLOSE_CONNECT_TIMEOUT;
    return 0;
}

/* When session_expired will say so (ping timeout or connect timeout). */
static int64_t session_expiry(engine *e, const store_session *s) {
    int64_t d = s->ping_at_ms + e->cfg.ping_timeout;
    if (!s->ever_connected && s->created_ms + e->cfg.connect_timeout < d)
        d = s->created_ms + e->cfg.connect_timeout;
    return d;
}

/* When a held GET must look again: its expiry, or the next ping. */
static int64_t session_deadline(engine *e, const store_session *s) {
    int64_t d = session_expiry(e, s);
    if (s->ping_sent_ms != s->ping_at_ms && s->ping_at_ms < d) d = s->ping_at_ms;
    return d;
}

/* ---- handshake -------------------------------------------------------------- */

/* Creates a session; *code gets 503-style refusal as -EBUSY. */
static int session_create(engine *e, const engine_http_req *req, int transport,
                          char sid[UTIL_ID_LEN + 1], uint64_t *cursor) {
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return rc;
    size_t n = 0;
    if ((rc = store_session_count(t, &n)) == 0 && n >= (size_t)e->cfg.max_sessions) {
        store_abort(t);
        log_warn("refusing a handshake: max_sessions (%ld) reached", e->cfg.max_sessions);
        return -EBUSY;
    }
    store_session s;
    memset(&s, 0, sizeof s);
    if (!rc) rc = util_random_id(sid);
    int64_t now = util_now_ms();
    s.version = STORE_SESSION_VERSION;
    s.eio = 4;
    s.transport = (uint8_t)transport;
    s.state = STORE_S_OPEN;
    s.created_ms = now;
    s.ping_at_ms = now + e->cfg.ping_interval;
    if (transport == STORE_T_WEBSOCKET) s.owner_pid = getpid();
    s.bare = req->bare ? 1 : 0;
    if (req->remote_addr) snprintf(s.remote, sizeof s.remote, "%s", req->remote_addr);
    if (!rc) rc = store_log_bounds(t, NULL, &s.cursor);
    if (!rc) rc = store_session_put(t, sid, &s);
    if (!rc) {
        char *hs = handshake_json(req, now);
        rc = hs ? store_handshake_put(t, sid, hs, strlen(hs)) : -ENOMEM;
        free(hs);
    }
    if (rc) {
        store_abort(t);
        return rc;
    }
    *cursor = s.cursor;
    return store_commit(t);
}

static void handshake(engine *e, const engine_http_req *req, engine_http_resp *resp) {
    char sid[UTIL_ID_LEN + 1];
    uint64_t cursor;
    int rc = session_create(e, req, STORE_T_POLLING, sid, &cursor);
    if (rc == -EBUSY) {
        resp_set(resp, 503, "application/json", "{\"code\":4,\"message\":\"Too many sessions\"}", 41);
        return;
    }
    if (rc) {
        log_error("handshake failed: %s", store_strerror(rc));
        resp_set(resp, 500, NULL, "", 0);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=UTF-8";
    buf_reset(&resp->body);
    eio_encode_open(&resp->body, sid, e->cfg.allow_websocket ? "websocket" : NULL,
                    e->cfg.ping_interval, e->cfg.ping_timeout, e->cfg.max_http_buffer_size);
}

/* ---- begin -------------------------------------------------------------------- */

int engine_http_begin(engine *e, const engine_http_req *req, engine_poll *p,
                      engine_http_resp *resp) {
    memset(p, 0, sizeof *p);
    query q;
    parse_query(req->query, &q);
    cors_headers(e, req, resp);
    int is_get = !strcmp(req->method, "GET"), is_post = !strcmp(req->method, "POST");

    if (e->cfg.cors_origin && !strcmp(req->method, "OPTIONS")) {
        resp_set(resp, 204, NULL, "", 0);
        buf_puts(&resp->headers,
                 "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
        return ENGINE_DONE;
    }
    if (!transport_allowed(e, &q)) {
        resp_error(resp, 0);
        return ENGINE_DONE;
    }
    if (origin_invalid(req->origin)) {
        resp_error(resp, 3);
        return ENGINE_DONE;
    }
    if (!q.has_sid) {
        if (!is_get) resp_error(resp, 2);
        else if (!strcmp(q.transport, "websocket") || req->upgrade) resp_error(resp, 3);
        else if (q.has_eio != 1 || strcmp(q.eio, "4")) resp_error(resp, 5);
        else handshake(e, req, resp);
        return ENGINE_DONE;
    }
    if (q.has_sid != 1 || !util_is_id(q.sid, strlen(q.sid))) {
        resp_error(resp, 1);
        return ENGINE_DONE;
    }
    strcpy(p->sid, q.sid);

    /* A GET claims the session's poll (a write); a POST is only validated
     * here and written by engine_post, so it does not take the writer lock
     * twice. */
    int write = !is_post;
    store_txn *t;
    int rc = store_begin(e->st, write, &t);
    if (rc) goto fail;
    store_session s;
    rc = store_session_get(t, p->sid, &s);
    int64_t now = util_now_ms();
    if (rc == 0 && s.state == STORE_S_CLOSED && is_get && s.close_reason == ENGINE_CLOSE_CLIENT &&
        !s.close_sent && !holder_alive(&s) && now - s.closed_ms < CLOSE_GET_GRACE_MS) {
        /* The client's '1' overtook the GET it sent with it (another worker
         * served it first): that GET gets the noop it would have got. */
        s.close_sent = 1;
        rc = store_session_put(t, p->sid, &s);
        if (!rc) rc = store_commit(t); else store_abort(t);
        if (rc) goto fail;
        resp_text(resp, "6");
        return ENGINE_DONE;
    }
    if (rc == STORE_NOTFOUND || (rc == 0 && s.state == STORE_S_CLOSED)) {
        store_abort(t);
        resp_error(resp, 1);
        return ENGINE_DONE;
    }
    if (rc) { store_abort(t); goto fail; }
    int why = session_expired(e, &s, now);
    if (why && !write) { /* stated's reaper closes it within a second */
        store_abort(t);
        resp_error(resp, 1);
        return ENGINE_DONE;
    }
    if (why) {
        rc = engine_session_close(e, t, p->sid, &s, why);
        if (!rc) rc = store_commit(t); else store_abort(t);
        if (rc) goto fail;
        engine_notify(e, 0);
        resp_error(resp, 1);
        return ENGINE_DONE;
    }
    if (strcmp(q.transport, "polling") || s.transport != STORE_T_POLLING ||
        q.has_eio != 1 || strcmp(q.eio, "4") || s.bare != (req->bare ? 1 : 0)) {
        store_abort(t);
        resp_error(resp, 3);
        return ENGINE_DONE;
    }
    if (is_post) {
        store_abort(t);
        if (req->content_type && !strcmp(req->content_type, "application/octet-stream")) {
            /* v4 payloads are text: Node closes the session */
            rc = store_begin(e->st, 1, &t);
            if (!rc && store_session_get(t, p->sid, &s) == 0) {
                rc = engine_session_close(e, t, p->sid, &s, ENGINE_CLOSE_TRANSPORT);
                if (!rc) rc = store_commit(t); else store_abort(t);
                engine_notify(e, 0);
            } else if (!rc) {
                store_abort(t);
            }
            resp_set(resp, 400, NULL, "", 0);
            return ENGINE_DONE;
        }
        if (req->content_length > e->cfg.max_http_buffer_size) {
            resp_set(resp, 413, NULL, "", 0);
            return ENGINE_DONE;
        }
        return ENGINE_READ_BODY;
    }
    if (!is_get) {
        store_abort(t);
        resp_set(resp, 500, NULL, "", 0);
        return ENGINE_DONE;
    }
    /* A GET. */
    if (s.state == STORE_S_UPGRADING) {
        /* The client may have sent '5' on its WebSocket already, through
         * another process: wait a moment for that to land (then 400, as for
         * any poll after the upgrade), else release it with a noop. */
        store_abort(t);
        p->upgrade_wait = now + UPGRADE_GET_WAIT_MS;
        return ENGINE_WAIT;
    }
    if (holder_alive(&s)) {
        /* overlapping polls: Node answers 400, closes, and the held GET gets '1' */
        rc = engine_session_close(e, t, p->sid, &s, ENGINE_CLOSE_OVERLAP);
        if (!rc) rc = store_commit(t); else store_abort(t);
        if (rc) goto fail;
        engine_notify(e, 0);
        resp_set(resp, 400, NULL, "", 0);
        return ENGINE_DONE;
    }
    s.poll_pid = getpid();
    s.poll_token = util_random_u32() | 1;
    s.poll_since_ms = now;
    rc = store_session_put(t, p->sid, &s);
    if (!rc) rc = store_commit(t); else store_abort(t);
    if (rc) goto fail;
    p->token = s.poll_token;
    p->held = 1;
    resp->status = 0;
    return ENGINE_WAIT;
fail:
    log_error("request on session %s failed: %s", p->sid, store_strerror(rc));
    resp_set(resp, 500, NULL, "", 0);
    return ENGINE_DONE;
}

/* ---- client packets ------------------------------------------------------------ */

int engine_packet(engine *e, store_txn *t, const char *sid, store_session *s,
                  const eio_packet *pk, uint64_t *seq) {
    switch (pk->type) {
    case EIO_PONG:
        s->ping_at_ms = util_now_ms() + e->cfg.ping_interval;
        return 0;
    case EIO_CLOSE:
        return ENGINE_CLOSE_CLIENT;
    case EIO_MESSAGE:
        if (s->bare) return inbox_message(t, sid, pk->data, pk->len, pk->binary, NULL);
        return srv_on_message(e, t, sid, s, pk->data, pk->len, pk->binary, seq);
    case EIO_PING: /* v4 clients do not ping: wrong heartbeat direction */
        return ENGINE_CLOSE_PARSE_ERROR;
    default: /* open, upgrade, noop: nothing to do */
        return 0;
    }
}

/* ---- POST ------------------------------------------------------------------------ */

void engine_post(engine *e, engine_poll *p, const engine_http_req *req, uint8_t *body,
                 size_t len, int too_big, engine_http_resp *resp) {
    (void)req;
    if (too_big) {
        resp_set(resp, 413, NULL, "", 0);
        return;
    }
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) goto fail;
    store_session s;
    rc = store_session_get(t, p->sid, &s);
    if (rc == STORE_NOTFOUND || (rc == 0 && s.state == STORE_S_CLOSED) ||
        (rc == 0 && session_expired(e, &s, util_now_ms()))) {
        store_abort(t);
        resp_error(resp, 1);
        return;
    }
    if (rc) { store_abort(t); goto fail; }
    if (log_enabled(LOG_DEBUG)) {
        char esc[256];
        log_debug("POST %s: %s", p->sid, log_escape(esc, sizeof esc, (const char *)body, len));
    }
    uint64_t seq = 0;
    int close = 0;
    eio_reader r;
    eio_reader_init(&r, body, len);
    eio_packet pk;
    int n;
    while (!close && (n = eio_reader_next(&r, &pk)) == 1) {
        rc = engine_packet(e, t, p->sid, &s, &pk, &seq);
        if (rc < 0) goto abort;
        close = rc;
    }
    if (!close && n < 0) close = ENGINE_CLOSE_PARSE_ERROR;
    rc = close ? engine_session_close(e, t, p->sid, &s, close) : store_session_put(t, p->sid, &s);
    if (rc) goto abort;
    if ((rc = store_commit(t))) goto fail;
    engine_notify(e, seq);
    resp_set(resp, 200, "text/html", "ok", 2);
    return;
abort:
    store_abort(t);
fail:
    log_error("POST on session %s failed: %s", p->sid, store_strerror(rc));
    resp_set(resp, 500, NULL, "", 0);
}

/* ---- GET: collecting queued packets ----------------------------------------------- */

#define COLLECT_SOCKS SRV_MAX_NSP_PER_SESSION

typedef struct collect {
    store_txn *t;
    const char *sid;
    store_socket socks[COLLECT_SOCKS];
    size_t nsocks;
    engine_frame_cb cb;
    void *arg;
    size_t limit, bytes;
    uint64_t upto;   /* last seq looked at */
    size_t records;  /* records handed out */
    int err;
} collect;

static int collect_sock_cb(void *arg, const store_socket *s) {
    collect *c = arg;
    if (c->nsocks < COLLECT_SOCKS) {
        c->socks[c->nsocks] = *s;
        c->socks[c->nsocks].data = NULL;
        c->socks[c->nsocks].data_len = 0;
        c->nsocks++;
    }
    return 0;
}

static int collect_cb(void *arg, uint64_t seq, const void *data, size_t len) {
    collect *c = arg;
    adapter_rec r;
    if (adapter_rec_parse(data, len, &r) == 0) {
        int match = 0;
        if (r.kind == ADAPTER_TO_SESSION) {
            match = strcmp(r.target, c->sid) == 0;
        } else {
            for (size_t i = 0; !match && i < c->nsocks; i++) {
                int m = adapter_match(c->t, &r, seq, &c->socks[i]);
                if (m < 0) { c->err = m; return 1; }
                match = m;
            }
        }
        if (match) {
            if (c->records && c->bytes + len > c->limit) return 1; /* the rest next time */
            size_t pos = 0;
            adapter_frame f;
            while (adapter_rec_frame(&r, &pos, &f))
                if ((c->err = c->cb(c->arg, &f))) return 1;
            c->records++;
            c->bytes += len;
        }
    }
    c->upto = seq;
    return 0;
}

int engine_collect(store_txn *t, const char *sid, uint64_t after, uint64_t until, size_t limit,
                   engine_frame_cb cb, void *arg, uint64_t *upto) {
    collect c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.sid = sid;
    c.cb = cb;
    c.arg = arg;
    c.limit = limit;
    c.upto = after;
    int rc = store_session_sockets(t, sid, collect_sock_cb, &c);
    if (!rc) rc = store_log_scan(t, after, until, collect_cb, &c);
    if (rc > 0) rc = 0; /* collect_cb stopped the walk: the limit, or c.err */
    if (!rc) rc = c.err;
    *upto = c.upto;
    return rc;
}

static int payload_frame_cb(void *arg, const adapter_frame *f) {
    int rc = eio_payload_add(arg, EIO_MESSAGE, f->binary, f->data, f->len);
    if (rc == -EINVAL) { /* text holding 0x1e cannot travel in a polling payload */
        log_warn("dropped a %zu-byte message that cannot be sent over polling (it contains 0x1e)", f->len);
        return 0;
    }
    return rc;
}

static void release_holder(engine *e, engine_poll *p, int delete_session) {
    store_txn *t;
    if (store_begin(e->st, 1, &t)) return;
    store_session s;
    if (store_session_get(t, p->sid, &s) == 0 && s.poll_token == p->token &&
        s.poll_pid == getpid()) {
        if (delete_session) {
            store_session_del(t, p->sid);
        } else {
            s.poll_pid = 0;
            s.poll_token = 0;
            store_session_put(t, p->sid, &s);
        }
        store_commit(t);
    } else {
        store_abort(t);
    }
    p->held = 0;
}

void engine_poll_abandon(engine *e, engine_poll *p) {
    if (p->held) release_holder(e, p, 0);
}

void engine_poll_dropped(engine *e, engine_poll *p) {
    int held = p->held;
    engine_poll_abandon(e, p);
    if (!held) return;
    store_txn *t;
    if (store_begin(e->st, 1, &t)) return;
    store_session s;
    int rc = store_session_get(t, p->sid, &s);
    if (rc == 0 && s.state != STORE_S_CLOSED && s.transport == STORE_T_POLLING) {
        rc = engine_session_close(e, t, p->sid, &s, ENGINE_CLOSE_POLL_DROPPED);
        if (!rc && store_commit(t) == 0) {
            log_debug("session %s closed: the client dropped its held GET", p->sid);
            engine_notify(e, 0);
        }
        return;
    }
    store_abort(t);
}

/* A GET that arrived while the session was upgrading (not its holder). */
static int upgrade_wait_step(engine *e, engine_poll *p, engine_http_resp *resp,
                             int64_t *deadline_ms) {
    p->gen = e->sub ? notify_sub_gen(e->sub) : 0;
    store_txn *t;
    store_session s;
    int rc = store_begin(e->st, 0, &t);
    if (!rc) {
        rc = store_session_get(t, p->sid, &s);
        store_abort(t);
    }
    if (rc || s.state == STORE_S_CLOSED) {
        resp_error(resp, 1);
        return ENGINE_DONE;
    }
    if (s.transport != STORE_T_POLLING) { /* upgraded meanwhile */
        resp_error(resp, 3);
        return ENGINE_DONE;
    }
    if (s.state == STORE_S_UPGRADING && util_now_ms() < p->upgrade_wait) {
        *deadline_ms = p->upgrade_wait;
        return ENGINE_WAIT;
    }
    resp_text(resp, "6");
    return ENGINE_DONE;
}

int engine_poll_step(engine *e, engine_poll *p, engine_http_resp *resp, int64_t *deadline_ms) {
    if (p->upgrade_wait) return upgrade_wait_step(e, p, resp, deadline_ms);
    for (int attempt = 0; attempt < 16; attempt++) {
        p->gen = e->sub ? notify_sub_gen(e->sub) : 0;
        int64_t now = util_now_ms();
        store_txn *t;
        int rc = store_begin(e->st, 0, &t);
        if (rc) goto fail;
        store_session s;
        rc = store_session_get(t, p->sid, &s);
        if (rc == STORE_NOTFOUND) {
            /* reaped under us */
            store_abort(t);
            p->held = 0;
            resp_text(resp, "1");
            return ENGINE_DONE;
        }
        if (rc) { store_abort(t); goto fail; }
        int ours = s.poll_pid == getpid() && s.poll_token == p->token;
        if (s.state == STORE_S_CLOSED) {
            store_abort(t);
            resp_text(resp, s.close_reason == ENGINE_CLOSE_CLIENT ? "6" : "1");
            release_holder(e, p, 1);
            return ENGINE_DONE;
        }
        if (!ours) { /* another request took over the session: stand down */
            store_abort(t);
            p->held = 0;
            resp_text(resp, "6");
            return ENGINE_DONE;
        }
        if (s.state == STORE_S_UPGRADING || s.transport != STORE_T_POLLING) {
            store_abort(t);
            resp_text(resp, "6");
            release_holder(e, p, 0);
            return ENGINE_DONE;
        }
        int why = session_expired(e, &s, now);
        uint64_t first = 0, head = 0;
        if (!why) rc = store_log_bounds(t, &first, &head);
        if (rc) { store_abort(t); goto fail; }
        if (!why && s.cursor + 1 < first) why = ENGINE_CLOSE_LAGGING;
        buf out = BUF_INIT;
        /* Records up to p->scanned were already found to hold nothing for us. */
        uint64_t from = p->scanned > s.cursor ? p->scanned : s.cursor;
        uint64_t upto = from;
        if (!why && head > from)
            rc = engine_collect(t, p->sid, from, UINT64_MAX, (size_t)e->cfg.max_http_buffer_size,
                                payload_frame_cb, &out, &upto);
        store_abort(t);
        if (rc) { buf_free(&out); goto fail; }
        int ping = !why && now >= s.ping_at_ms && s.ping_sent_ms != s.ping_at_ms;
        if (!why && !ping && out.len == 0) {
            p->scanned = upto;
            buf_free(&out);
            *deadline_ms = session_deadline(e, &s);
            return ENGINE_WAIT;
        }
        /* Something to answer: record it. */
        rc = store_begin(e->st, 1, &t);
        if (rc) { buf_free(&out); goto fail; }
        store_session w;
        rc = store_session_get(t, p->sid, &w);
        if (rc || w.poll_token != p->token || w.state != STORE_S_OPEN || w.cursor != s.cursor ||
            w.ping_at_ms != s.ping_at_ms) {
            store_abort(t); /* changed meanwhile: look again */
            buf_free(&out);
            continue;
        }
        if (why) {
            rc = engine_session_close(e, t, p->sid, &w, why);
            if (!rc) rc = store_session_del(t, p->sid);
            if (!rc) rc = store_commit(t); else store_abort(t);
            buf_free(&out);
            if (rc) goto fail;
            engine_notify(e, 0);
            p->held = 0;
            resp_text(resp, "1");
            return ENGINE_DONE;
        }
        if (ping) {
            eio_payload_add(&out, EIO_PING, 0, NULL, 0);
            w.ping_sent_ms = w.ping_at_ms;
        }
        w.cursor = upto;
        w.poll_pid = 0;
        w.poll_token = 0;
        rc = store_session_put(t, p->sid, &w);
        if (!rc) rc = store_commit(t); else store_abort(t);
        if (rc) { buf_free(&out); goto fail; }
        p->held = 0;
        resp->status = 200;
        resp->content_type = "text/plain; charset=UTF-8";
        buf_free(&resp->body);
        resp->body = out;
        return ENGINE_DONE;
    }
    return ENGINE_WAIT; /* very busy: try again after a wake */
fail:
    log_error("poll on session %s failed", p->sid);
    if (p->held) release_holder(e, p, 0);
    resp_set(resp, 500, NULL, "", 0);
    return ENGINE_DONE;
}

/* ---- WebSocket ------------------------------------------------------------------------- */

int engine_ws_accept(engine *e, const engine_http_req *req, char sid[UTIL_ID_LEN + 1],
                     buf *open, uint64_t *cursor, int *code) {
    query q;
    parse_query(req->query, &q);
    *code = 3;
    if (!transport_allowed(e, &q)) {
        *code = 0;
        return ENGINE_WS_REJECT;
    }
    if (origin_invalid(req->origin)) return ENGINE_WS_REJECT;
    if (strcmp(q.transport, "websocket")) return ENGINE_WS_REJECT;
    if (!q.has_sid) {
        if (q.has_eio != 1 || strcmp(q.eio, "4")) {
            *code = 5;
            return ENGINE_WS_REJECT;
        }
        int rc = session_create(e, req, STORE_T_WEBSOCKET, sid, cursor);
        if (rc) {
            *code = rc == -EBUSY ? 4 : 3;
            return ENGINE_WS_REJECT;
        }
        buf_reset(open);
        eio_encode_open(open, sid, NULL, e->cfg.ping_interval, e->cfg.ping_timeout,
                        e->cfg.max_http_buffer_size);
        return ENGINE_WS_NEW;
    }
    if (q.has_sid != 1 || !util_is_id(q.sid, strlen(q.sid))) {
        *code = 1;
        return ENGINE_WS_REJECT;
    }
    if (q.has_eio != 1 || strcmp(q.eio, "4")) return ENGINE_WS_REJECT;
    store_txn *t;
    if (store_begin(e->st, 1, &t)) return ENGINE_WS_REJECT;
    store_session s;
    int rc = store_session_get(t, q.sid, &s);
    int64_t now = util_now_ms();
    if (rc || s.state == STORE_S_CLOSED || session_expired(e, &s, now)) {
        store_abort(t);
        *code = 1;
        return ENGINE_WS_REJECT;
    }
    /* Only a polling session that is not already upgrading can upgrade. */
    if (s.transport != STORE_T_POLLING || s.state != STORE_S_OPEN ||
        (s.upgrade_ms && now < s.upgrade_ms + e->cfg.upgrade_timeout)) {
        store_abort(t);
        return ENGINE_WS_REJECT;
    }
    s.upgrade_ms = now;
    rc = store_session_put(t, q.sid, &s);
    if (!rc) rc = store_commit(t); else store_abort(t);
    if (rc) return ENGINE_WS_REJECT;
    strcpy(sid, q.sid);
    *cursor = s.cursor;
    return ENGINE_WS_UPGRADE;
}

/* Runs fn on the session inside a write transaction and commits; notifies. */
static int with_session(engine *e, const char *sid,
                        int (*fn)(engine *, store_txn *, const char *, store_session *, void *),
                        void *arg) {
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return rc;
    store_session s;
    rc = store_session_get(t, sid, &s);
    if (!rc && s.state == STORE_S_CLOSED) rc = STORE_NOTFOUND;
    if (!rc) rc = fn(e, t, sid, &s, arg);
    if (rc < 0) {
        store_abort(t);
        return rc;
    }
    int c = store_commit(t);
    if (c) return c;
    engine_notify(e, 0);
    return rc;
}

static int do_probe(engine *e, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)e, (void)arg;
    if (s->transport != STORE_T_POLLING) return -EINVAL;
    s->state = STORE_S_UPGRADING;
    return store_session_put(t, sid, s);
}

int engine_ws_probe(engine *e, const char *sid) { return with_session(e, sid, do_probe, NULL); }

static int do_upgraded(engine *e, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)e;
    if (s->transport != STORE_T_POLLING) return -EINVAL;
    s->transport = STORE_T_WEBSOCKET;
    s->state = STORE_S_OPEN;
    s->owner_pid = getpid();
    s->poll_pid = 0;
    s->poll_token = 0;
    s->upgrade_ms = 0;
    *(uint64_t *)arg = s->cursor;
    return store_session_put(t, sid, s);
}

int engine_ws_upgraded(engine *e, const char *sid, uint64_t *cursor) {
    return with_session(e, sid, do_upgraded, cursor);
}

static int do_upgrade_abort(engine *e, store_txn *t, const char *sid, store_session *s, void *arg) {
    (void)e, (void)arg;
    if (s->transport != STORE_T_POLLING) return 0;
    s->state = STORE_S_OPEN;
    s->upgrade_ms = 0;
    return store_session_put(t, sid, s);
}

void engine_ws_upgrade_abort(engine *e, const char *sid) {
    with_session(e, sid, do_upgrade_abort, NULL);
}

typedef struct ws_pkt_arg {
    const eio_packet *pk;
    uint64_t seq;
} ws_pkt_arg;

static int do_ws_packet(engine *e, store_txn *t, const char *sid, store_session *s, void *arg) {
    ws_pkt_arg *a = arg;
    int rc = engine_packet(e, t, sid, s, a->pk, &a->seq);
    if (rc < 0) return rc;
    int c = store_session_put(t, sid, s);
    return c ? c : rc;
}

int engine_ws_packet(engine *e, const char *sid, const eio_packet *pk) {
    ws_pkt_arg a = {pk, 0};
    return with_session(e, sid, do_ws_packet, &a);
}

static int do_ws_closed(engine *e, store_txn *t, const char *sid, store_session *s, void *arg) {
    int rc = engine_session_close(e, t, sid, s, *(int *)arg);
    if (!rc) rc = store_session_del(t, sid);
    return rc;
}

void engine_ws_closed(engine *e, const char *sid, int reason) {
    with_session(e, sid, do_ws_closed, &reason);
}

/* ---- flow control ---------------------------------------------------------------- */

static int front_min_cb(void *arg, const char *name, uint64_t seq) {
    uint64_t *min = arg;
    long pid;
    if (strncmp(name, "front-", 6) || util_parse_long(name + 6, 1, 1L << 30, &pid)) return 0;
    if (kill((pid_t)pid, 0) && errno != EPERM) return 0; /* a dead front holds nothing back */
    if (seq < *min) *min = seq;
    return 0;
}

int engine_backlog_wait(engine *e, uint64_t max_records, int64_t deadline_ms) {
    for (;;) {
        uint64_t gen = e->sub ? notify_sub_gen(e->sub) : 0, head = 0, min = UINT64_MAX;
        store_txn *t;
        if (store_begin(e->st, 0, &t)) return 0;
        store_log_bounds(t, NULL, &head);
        store_reader_each(t, front_min_cb, &min);
        store_abort(t);
        if (min == UINT64_MAX || head <= min || head - min <= max_records) return 0;
        int64_t now = util_now_ms();
        if (now >= deadline_ms) return 1;
        /* fronts save their cursor every ~100 ms without a wake-up: look again soon */
        if (e->sub) notify_sub_wait(e->sub, gen, now + 10);
        else usleep(10000);
    }
}

/* ---- stated's housekeeping ------------------------------------------------------------ */

typedef struct reap_item {
    char sid[UTIL_ID_LEN + 1];
    int action; /* 1 close, 2 delete */
    int reason;
} reap_item;

typedef struct reap_ctx {
    engine *e;
    int64_t now, next;
    reap_item *items;
    size_t n, cap;
    uint64_t min_cursor;
} reap_ctx;

static int reap_cb(void *arg, const char *sid, const store_session *s) {
    reap_ctx *r = arg;
    int action = 0, reason = 0;
    if (s->state == STORE_S_CLOSED) {
        if (!holder_alive(s) || r->now - s->closed_ms > CLOSED_LINGER_MS) action = 2;
        else if (s->closed_ms + CLOSED_LINGER_MS < r->next) r->next = s->closed_ms + CLOSED_LINGER_MS;
    } else if (s->transport == STORE_T_POLLING) {
        reason = session_expired(r->e, s, r->now);
        if (reason) action = 1;
        else if (s->upgrade_ms && r->now > s->upgrade_ms + r->e->cfg.upgrade_timeout) action = 3;
        else {
            int64_t d = session_expiry(r->e, s);
            if (d < r->next) r->next = d;
            if (s->cursor < r->min_cursor) r->min_cursor = s->cursor;
        }
    } else if (s->owner_pid && kill(s->owner_pid, 0) && errno != EPERM) {
        action = 1; /* its WebSocket front is gone */
        reason = ENGINE_CLOSE_TRANSPORT;
    }
    if (!action) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        reap_item *p = realloc(r->items, cap * sizeof *p);
        if (!p) return -ENOMEM;
        r->items = p;
        r->cap = cap;
    }
    strcpy(r->items[r->n].sid, sid);
    r->items[r->n].action = action;
    r->items[r->n].reason = reason;
    r->n++;
    return 0;
}

static int reader_min_cb(void *arg, const char *name, uint64_t seq) {
    reap_ctx *r = arg;
    if (!strncmp(name, "in:", 3)) return 0; /* inbox readers: their cursor is in the inbox */
    if (seq < r->min_cursor) r->min_cursor = seq;
    return 0;
}

int engine_reap(engine *e, int64_t now, int64_t *next_ms) {
    reap_ctx r = {e, now, now + 1000, NULL, 0, 0, UINT64_MAX};
    store_txn *t;
    int rc = store_begin(e->st, 1, &t);
    if (rc) return rc;
    rc = store_session_each(t, reap_cb, &r);
    if (!rc) rc = store_reader_each(t, reader_min_cb, &r);
    int done = 0;
    for (size_t i = 0; !rc && i < r.n; i++) {
        store_session s;
        if (store_session_get(t, r.items[i].sid, &s)) continue;
        if (r.items[i].action == 2) {
            rc = store_session_del(t, r.items[i].sid);
        } else if (r.items[i].action == 3) { /* an upgrade that never finished */
            s.state = STORE_S_OPEN;
            s.upgrade_ms = 0;
            rc = store_session_put(t, r.items[i].sid, &s);
        } else {
            rc = engine_session_close(e, t, r.items[i].sid, &s, r.items[i].reason);
            log_info("session %s closed: %s", r.items[i].sid, engine_close_reason(r.items[i].reason));
        }
        done++;
    }
    /* Trim the log below every live reader, and past max_log_bytes anyway. */
    uint64_t first = 0, head = 0, bytes = 0;
    if (!rc) rc = store_log_bounds(t, &first, &head);
    if (!rc) {
        uint64_t upto = r.min_cursor == UINT64_MAX ? head : r.min_cursor;
        if (upto >= first) rc = store_log_trim(t, upto, NULL);
    }
    if (!rc) rc = store_log_size(t, &bytes);
    while (!rc && bytes > (uint64_t)e->cfg.max_log_bytes) {
        if ((rc = store_log_bounds(t, &first, &head)) || first > head) break;
        uint64_t step = (head - first) / 8 + 1;
        log_warn("packet log over max_log_bytes (%llu bytes): dropping %llu records; lagging readers will be disconnected",
                 (unsigned long long)bytes, (unsigned long long)step);
        rc = store_log_trim(t, first + step - 1, NULL);
        if (!rc) rc = store_log_size(t, &bytes);
    }
    if (!rc) rc = store_commit(t); else store_abort(t);
    free(r.items);
    if (rc) return rc;
    if (done) engine_notify(e, 0);
    *next_ms = r.next;
    return done;
}

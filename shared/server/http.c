/* http: requests, answers and query parameters of Engine.IO over HTTP (see http.h). */
#include "server/http.h"

#include "proto/json.h"
#include <string.h>

#include <cjson/cJSON.h>

void http_resp_free(http_resp *r) {
    buf_free(&r->body);
    buf_free(&r->headers);
}

/* ---- responses ---------------------------------------------------------- */

void http_resp_set(http_resp *r, int status, const char *ctype, const char *body, size_t len) {
    r->status = status;
    r->content_type = ctype;
    buf_reset(&r->body);
    if (len) buf_append(&r->body, body, len);
}

/* Engine.IO error codes and messages, as the Node server sends them. */
const char *http_error_message(int code) {
    static const char *msgs[] = {"Transport unknown", "Session ID unknown", "Bad handshake method",
                                 "Bad request", "Forbidden", "Unsupported protocol version"};
    return code >= 0 && code <= 5 ? msgs[code] : "Bad request";
}

void http_resp_error(http_resp *r, int code) {
    r->status = code == 4 ? 403 : 400;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_printf(&r->body, "{\"code\":%d,\"message\":\"%s\"}", code, http_error_message(code));
}

/* Node's error bodies are {"code":N,"message":"..."} with the Engine.IO
 * codes; none of them means "try again later".  Code 4 is the one Node sends
 * when the server refuses a request it understood (an allowRequest veto,
 * with the application's message); the status is 503, not 403, because the
 * refusal is temporary: a full store makes room within seconds. */
void http_resp_unavailable(http_resp *r, const char *message) {
    r->status = 503;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_printf(&r->body, "{\"code\":4,\"message\":\"%s\"}", message);
}

void http_resp_store_error(http_resp *r, int rc) {
    if (store_full(rc)) http_resp_unavailable(r, "Store full");
    else http_resp_set(r, 500, NULL, "", 0);
}

void http_resp_text(http_resp *r, const char *s) {
    http_resp_set(r, 200, "text/plain; charset=UTF-8", s, strlen(s));
}

/* ---- query string -------------------------------------------------------- */

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

void http_parse_query(const char *q, http_query *out) {
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

int http_transport_allowed(const server *s, const http_query *q) {
    if (q->has_transport != 1) return 0;
    if (!strcmp(q->transport, "polling")) return s->cfg.allow_polling;
    if (!strcmp(q->transport, "websocket")) return s->cfg.allow_websocket;
    return 0;
}

int http_origin_invalid(const char *o) {
    for (; o && *o; o++) {
        unsigned char c = (unsigned char)*o;
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 1;
    }
    return 0;
}

/* 1 when cors_origin (a list, comma or space separated) names origin or "*". */
static int origin_listed(const char *list, const char *origin, int *any) {
    *any = 0;
    size_t ol = origin ? strlen(origin) : 0;
    for (const char *p = list; p && *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 1 && *p == '*') *any = 1;
        else if (n && n == ol && !memcmp(p, origin, n)) return 1;
        p += n;
    }
    return *any;
}

int http_origin_allowed(const server *s, const char *origin) {
    int any;
    if (!s->cfg.cors_origin || !origin || !*origin) return 1;
    return origin_listed(s->cfg.cors_origin, origin, &any);
}

void http_cors(const server *s, const http_req *req, http_resp *r) {
    if (!s->cfg.cors_origin) return;
    int any = 0;
    const char *o = req->origin;
    int valid = o && *o && !http_origin_invalid(o);
    if (!valid) origin_listed(s->cfg.cors_origin, "", &any);
    else if (origin_listed(s->cfg.cors_origin, o, &any)) {
        buf_printf(&r->headers, "Access-Control-Allow-Origin: %s\r\n", o);
        buf_puts(&r->headers, "Access-Control-Allow-Credentials: true\r\n");
    }
    if (!valid && any) {
        buf_puts(&r->headers, "Access-Control-Allow-Origin: *\r\n");
    }
    buf_puts(&r->headers, "Vary: Origin\r\n");
}

int http_route(const server *s, const char *uri) {
    if (!uri) return 1;
    size_t ul = strcspn(uri, "?");
    const char *paths[2] = {s->cfg.path, s->cfg.engine_path};
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
char *http_handshake_json(const http_req *req, int64_t now) {
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
    char *txt = json_print(o);
    cJSON_Delete(o);
    return txt;
}

int http_query_v4(const http_query *q) { return q->has_eio == 1 && !strcmp(q->eio, "4"); }

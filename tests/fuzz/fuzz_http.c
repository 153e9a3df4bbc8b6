/* fuzz_http: HTTP requests as sio-front's plain HTTP path interprets them
 * (gateway/front_http.c fhttp_request): the route of the URI (http_route,
 * then the demo endpoints, front_demo.c), and for Engine.IO the same calls
 * the front makes: polling_begin with the request, then polling_post with
 * the body, or polling_step once for a held GET, which the client then
 * drops or the server abandons; shared/server/http.c under it (query
 * parameters, CORS, Origin checks, the handshake record with headers,
 * cookies and query).  On a real store with a fresh polling session per
 * input, connected to "/": "$A" in the input is its sid.
 *
 * Input: a flags byte (bit 0-1: cors_origin none / "*" / a fixed origin;
 * bit 2: websocket only; bit 3: the held GET is dropped, else abandoned;
 * bit 4: the body counts as over max_http_buffer_size), then a raw request:
 * "METHOD URI VERSION\r\n", header lines up to an empty line (names
 * lower-cased, as lws and FastCGI give them), the body.
 * Checked: every answer has a status in 200..599, Engine.IO's error answers
 * are its JSON bodies with a code, extra headers are complete "Name: value\r\n" lines
 * without control characters in them; the handshake record is JSON.  The
 * store is reset after each input. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "front_demo.h"
#include "fuzz_srv.h"
#include "proto/sio_parser.h"
#include "server/polling.h"

#define MAX_HEADERS 48

static server srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fsrv_open(&srv, "engine_path = /engine.io/\nmax_http_buffer_size = 2048\n[namespace /chat]\n");
    return 0;
}

/* The request's parts; strings point into the copy (NUL-terminated). */
typedef struct req_parts {
    char *method, *uri, *query, *path;
    const char *kv[MAX_HEADERS * 2 + 1];
    char *body;
    size_t body_len;
} req_parts;

static char *find_crlf(char *s, char *end) {
    for (char *p = s; p < end; p++)
        if (*p == '\n') return p;
    return NULL;
}

/* Splits the request; 0 when there is no request line. */
static int split(char *s, size_t len, req_parts *r) {
    memset(r, 0, sizeof *r);
    char *end = s + len;
    char *nl = find_crlf(s, end);
    if (!nl) return 0;
    *nl = 0;
    if (nl > s && nl[-1] == '\r') nl[-1] = 0;
    r->method = s;
    char *sp = strchr(s, ' ');
    if (!sp) return 0;
    *sp = 0;
    r->uri = sp + 1;
    sp = strchr(r->uri, ' ');
    if (sp) *sp = 0;
    size_t nh = 0;
    char *p = nl + 1;
    while (p < end) {
        nl = find_crlf(p, end);
        char *le = nl ? nl : end;
        if (nl) *nl = 0;
        if (le > p && le[-1] == '\r') *--le = 0;
        if (le == p) { /* the empty line */
            p = nl ? nl + 1 : end;
            break;
        }
        char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && nh < MAX_HEADERS) {
            *colon = 0;
            for (char *c = p; *c; c++) *c = (char)tolower((unsigned char)*c);
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            r->kv[2 * nh] = p;
            r->kv[2 * nh + 1] = v;
            nh++;
        }
        p = nl ? nl + 1 : end;
    }
    r->kv[2 * nh] = NULL;
    r->body = p;
    r->body_len = (size_t)(end - p);
    return 1;
}

static const char *header(const req_parts *r, const char *name) {
    for (size_t i = 0; r->kv[i]; i += 2)
        if (!strcmp(r->kv[i], name)) return r->kv[i + 1];
    return NULL;
}

/* An lws_get_urlarg_by_name lookalike: the value of name= in the query. */
static const char *urlarg(const char *query, const char *name, char *out, size_t n) {
    size_t nl = strlen(name);
    for (const char *q = query; q && *q;) {
        size_t len = strcspn(q, "&");
        if (len >= nl && !strncmp(q, name, nl)) {
            size_t vl = len - nl < n - 1 ? len - nl : n - 1;
            memcpy(out, q + nl, vl);
            out[vl] = 0;
            return out;
        }
        q += len;
        if (*q) q++;
    }
    return NULL;
}

static void check_resp(const http_resp *r, int eio) {
    CHECK(r->status >= 200 && r->status <= 599);
    if (eio && (r->status == 400 || r->status == 403) && r->content_type &&
        !strcmp(r->content_type, "application/json")) {
        cJSON *o = json_parse(r->body.data ? r->body.data : "", r->body.len);
        CHECK(cJSON_IsObject(o) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "code")));
        cJSON_Delete(o);
    }
    /* extra headers: "Name: value\r\n" lines, nothing that would split them */
    const char *h = r->headers.data, *e = h ? h + r->headers.len : NULL;
    while (h && h < e) {
        const char *crlf = strstr(h, "\r\n");
        CHECK(crlf != NULL && crlf < e);
        const char *colon = memchr(h, ':', (size_t)(crlf - h));
        CHECK(colon != NULL && colon > h);
        for (const char *c = h; c < crlf; c++)
            CHECK(((unsigned char)*c >= 0x20 && *c != 0x7f) || *c == '\t');
        h = crlf + 2;
    }
}

static void eio(const req_parts *rp, http_req *req, uint8_t flags, char *body, size_t blen) {
    polling_req p;
    http_resp resp = {0};
    int rc = polling_begin(&srv, req, &p, &resp);
    CHECK(rc == POLLING_DONE || rc == POLLING_READ_BODY || rc == POLLING_WAIT);
    if (rc == POLLING_READ_BODY) {
        polling_post(&srv, &p, (uint8_t *)body, blen, (flags & 16) != 0, &resp);
    } else if (rc == POLLING_WAIT) {
        int64_t deadline = util_now_ms() + 1000;
        rc = polling_step(&srv, &p, &resp, &deadline);
        CHECK(rc == POLLING_DONE || rc == POLLING_WAIT);
        if (rc == POLLING_WAIT) {
            if (flags & 8) polling_dropped(&srv, &p);
            else polling_abandon(&srv, &p);
        }
    }
    if (rc == POLLING_DONE) check_resp(&resp, 1);
    http_resp_free(&resp);
    (void)rp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t flags = data[0];
    static const char *const origins[] = {NULL, "*", "https://example.test", NULL};
    srv.cfg.cors_origin = (char *)origins[flags & 3];
    srv.cfg.allow_polling = !(flags & 4);
    srv.cfg.allow_websocket = 1;

    char sid[UTIL_ID_LEN + 1], sock[UTIL_ID_LEN + 1];
    fsrv_session(&srv, sid);
    fsrv_socket(&srv, sid, "/", sock);

    /* the request with $A as the session id and $S as its socket's id */
    buf b = BUF_INIT;
    for (size_t i = 1; i < size; i++) {
        if (data[i] == '$' && i + 1 < size && (data[i + 1] == 'A' || data[i + 1] == 'S')) {
            CHECK(buf_puts(&b, data[i + 1] == 'A' ? sid : sock) == 0);
            i++;
        } else {
            CHECK(buf_putc(&b, (char)data[i]) == 0);
        }
    }
    req_parts rp;
    if (split(b.data, b.len, &rp)) {
        /* the URI: its path and its query string, as lws splits them */
        char *q = strchr(rp.uri, '?');
        rp.path = rp.uri;
        char path[1024];
        snprintf(path, sizeof path, "%.*s", q ? (int)(q - rp.uri) : (int)strlen(rp.uri), rp.uri);
        rp.query = q ? q + 1 : (char *)"";
        const char *cl = header(&rp, "content-length");
        long clen = -1;
        if (cl) {
            char *end;
            clen = strtol(cl, &end, 10);
            if (*end || clen < 0) clen = -1;
        }
        http_req req = {.method = rp.method,
                        .query = rp.query,
                        .content_type = header(&rp, "content-type"),
                        .origin = header(&rp, "origin"),
                        .remote_addr = "192.0.2.1",
                        .content_length = clen,
                        .url = rp.uri,
                        .headers = rp.kv};
        if (req.origin && !*req.origin) req.origin = NULL;

        /* what http.c gives the server for this request */
        http_query hq;
        http_parse_query(req.query, &hq);
        CHECK(hq.has_eio <= 2 && hq.has_transport <= 2 && hq.has_sid <= 2);
        CHECK(strlen(hq.eio) < sizeof hq.eio && strlen(hq.sid) < sizeof hq.sid);
        char *hs = http_handshake_json(&req, 1733380000000);
        CHECK(hs != NULL);
        cJSON *ho = json_parse_str(hs);
        CHECK(cJSON_IsObject(ho));
        cJSON_Delete(ho);
        free(hs);

        int route = http_route(&srv, rp.uri);
        CHECK(route >= 0 && route <= 2);
        if (route) {
            req.bare = route == 2;
            eio(&rp, &req, flags, rp.body, rp.body_len);
        } else if ((route = demo_route(path, rp.method))) {
            http_resp resp = {0};
            if (route == DEMO_ROOMS) {
                char nsp[SIO_NSP_MAX + 8], room[STORE_ROOM_MAX + 8];
                demo_rooms(&srv, urlarg(rp.query, "nsp=", nsp, sizeof nsp),
                           urlarg(rp.query, "room=", room, sizeof room), &resp);
            } else {
                demo_join(&srv, route == DEMO_LEAVE, rp.body, rp.body_len, (flags & 16) != 0, &resp);
            }
            check_resp(&resp, 0);
            http_resp_free(&resp);
        }
    }
    buf_free(&b);
    fsrv_reset(&srv, NULL, 0);
    return 0;
}

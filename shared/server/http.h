/* http: the HTTP side of Engine.IO that both transports share.  A gateway
 * (sio-fcgi, sio-front) turns each request into an http_req; the server's
 * answer is an http_resp.  This module owns the query parameters Engine.IO
 * reads (EIO, transport, sid), which endpoint a path is, CORS headers, the
 * error answers (the Node server's status codes and JSON bodies) and the
 * handshake record handlers see (socket.handshake). */
#ifndef SIO_HTTP_H
#define SIO_HTTP_H

#include <stdint.h>

#include "base/buf.h"
#include "server/server.h"

typedef struct http_req {
    const char *method;         /* "GET", "POST", ... */
    const char *query;          /* raw query string, may be NULL */
    const char *content_type;   /* may be NULL */
    const char *origin;         /* may be NULL */
    const char *remote_addr;    /* may be NULL */
    long content_length;        /* -1 when unknown */
    int upgrade;                /* an Upgrade: websocket request */
    int upgrade_other;          /* Connection: upgrade with an Upgrade other than websocket */
    int bare;                   /* at cfg.engine_path: a bare Engine.IO session */
    const char *url;            /* request URI, may be NULL */
    const char *const *headers; /* name, value, name, value, ..., NULL; may be NULL */
    /* An Upgrade request's Sec-WebSocket-Key and Sec-WebSocket-Version
     * (NULL when absent), checked by websocket_accept. */
    const char *ws_key, *ws_version;
} http_req;

typedef struct http_resp {
    int status;               /* HTTP status */
    const char *content_type; /* static string, or NULL for none */
    buf body;                 /* owned; http_resp_free */
    buf headers;              /* extra "Name: value\r\n" lines; owned */
} http_resp;

void http_resp_free(http_resp *r);
/* Sets status, content type and body (copied). */
void http_resp_set(http_resp *r, int status, const char *ctype, const char *body, size_t len);
/* 200 text/plain with s. */
void http_resp_text(http_resp *r, const char *s);
/* The Engine.IO error `code` (0 Transport unknown, 1 Session ID unknown,
 * 2 Bad handshake method, 3 Bad request, 4 Forbidden, 5 Unsupported
 * protocol version): 400 (403 for 4) with {"code":N,"message":"..."}. */
void http_resp_error(http_resp *r, int code);
/* 503 with {"code":4,"message":message}: the server understood the request
 * but cannot take it now (max_sessions open, the store full). */
void http_resp_unavailable(http_resp *r, const char *message);
/* The answer to a request whose store transaction failed with rc: 503
 * "Store full" when it was for want of room (store_full), else 500. */
void http_resp_store_error(http_resp *r, int rc);
const char *http_error_message(int code);
/* The CORS headers of cfg.cors_origin for this request, appended to r: an
 * Origin the list names (or any, with "*") is reflected with
 * Access-Control-Allow-Credentials; another gets none (as Node's cors
 * middleware with a list); Vary: Origin either way. */
void http_cors(const server *s, const http_req *req, http_resp *r);
/* 1 when origin may connect: no cors_origin, no Origin header (not a
 * browser), "*", or an origin the list names.  WebSocket handshakes check it
 * (a browser does not apply CORS to them). */
int http_origin_allowed(const server *s, const char *origin);

/* Which endpoint a request path belongs to: 1 the Socket.IO path, 2 the bare
 * Engine.IO path (cfg.engine_path), 0 neither.  "/socket.io" without the
 * trailing slash counts. */
int http_route(const server *s, const char *uri);

/* The Engine.IO parameters of a query string (percent-decoded; the first
 * occurrence wins).  has_*: 0 absent, 1 present, 2 present but too long. */
typedef struct http_query {
    char eio[8], transport[16], sid[32];
    int has_eio, has_transport, has_sid;
} http_query;
void http_parse_query(const char *q, http_query *out);
/* The query asks for EIO=4. */
int http_query_v4(const http_query *q);
/* The transport named in the query is known and enabled (Node: code 0). */
int http_transport_allowed(const server *s, const http_query *q);
/* An Origin header Node would reject (control characters). */
int http_origin_invalid(const char *origin);

/* {"address","headers","query","time","url"} of a request, as JSON text
 * (malloc'ed; NULL on ENOMEM): the handshake handlers see. */
char *http_handshake_json(const http_req *req, int64_t now);

#endif

/* front_lws: small helpers over libwebsockets for the front's HTTP and
 * WebSocket modules: the request's query, headers and URL as the server
 * layer wants them (server/http.h), and a complete small response. */
#ifndef SIO_FRONT_LWS_H
#define SIO_FRONT_LWS_H

#include <libwebsockets.h>
#include <stddef.h>

/* What an lws wsi's opaque user data points to: a struct whose first
 * member is one of these. */
enum { OBJ_WS = 1, OBJ_HTTP = 2, OBJ_RAW_NOTIFY = 3, OBJ_RAW_SIGNAL = 4, OBJ_RAW_LISTEN = 5 };

/* The query string (its fragments joined by '&'), however long the head
 * allowed it to be: malloc'ed, NULL on ENOMEM. */
char *flws_query(struct lws *wsi);

/* The request headers lws knows by name, as http_req.headers wants them
 * (lower-case name, value, ..., NULL).  lws 4.1 cannot list headers it has
 * no token for, so custom X-... headers are not included. */
#define FLWS_MAX_HEADERS 48
typedef struct flws_hdrs {
    const char *kv[FLWS_MAX_HEADERS * 2 + 1];
    char names[FLWS_MAX_HEADERS][40];
    char *values; /* owned */
} flws_hdrs;
void flws_hdrs_load(struct lws *wsi, flws_hdrs *h);
void flws_hdrs_free(flws_hdrs *h);

/* The method's name for lws_http_get_uri_and_method's answer ("GET" for
 * one it does not know). */
const char *flws_method_name(int meth);

/* The request URI with its query string, as received (url for handlers):
 * malloc'ed, NULL on ENOMEM. */
char *flws_url(struct lws *wsi, const char *query);

/* Writes a complete small HTTP response (headers + body) from a callback
 * that may write.  extra: complete "Name: value\r\n" lines or NULL.
 * Returns 0 or -1. */
int flws_respond(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
                 const char *extra);

#endif

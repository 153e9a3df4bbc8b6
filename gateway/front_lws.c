/* front_lws: request helpers over libwebsockets (see front_lws.h). */
#include "front_lws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void flws_hdrs_load(struct lws *wsi, flws_hdrs *h) {
    size_t n = 0, total = 0;
    int toks[FLWS_MAX_HEADERS], lens[FLWS_MAX_HEADERS];
    for (int t = 0; t < (int)WSI_TOKEN_COUNT && n < FLWS_MAX_HEADERS; t++) {
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

void flws_hdrs_free(flws_hdrs *h) {
    free(h->values);
    h->values = NULL;
    h->kv[0] = NULL;
}

char *flws_url(struct lws *wsi, const char *query) {
    char *uri = NULL;
    int len = 0;
    if (lws_http_get_uri_and_method(wsi, &uri, &len) < 0 || !uri) len = 0;
    size_t ql = query ? strlen(query) : 0;
    char *out = malloc((size_t)len + ql + 2);
    if (out) snprintf(out, (size_t)len + ql + 2, "%.*s%s%s", len, uri ? uri : "", ql ? "?" : "", ql ? query : "");
    return out;
}

char *flws_query(struct lws *wsi) {
    int tl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS); /* fragments and separators */
    size_t cap = (size_t)(tl > 0 ? tl : 0) + 2;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    for (int i = 0;; i++) {
        size_t at = o ? o + 1 : 0;
        if (at + 1 >= cap) break;
        int got = lws_hdr_copy_fragment(wsi, out + at, (int)(cap - at), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (got < 0) break; /* no more */
        if (o) out[o] = '&';
        o = at + (size_t)got;
    }
    out[o] = 0;
    return out;
}

int flws_respond(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
                 const char *extra) {
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

const char *flws_method_name(int meth) {
    static const char *const names[] = {"GET", "POST", "OPTIONS", "PUT", "PATCH",
                                        "DELETE", "CONNECT", "HEAD", "GET"};
    return meth >= 0 && meth < (int)(sizeof names / sizeof *names) ? names[meth] : "GET";
}

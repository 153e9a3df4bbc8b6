/* front_guard: client bytes checked before libwebsockets parses them (see
 * front_guard.h).  One state per client socket, indexed by descriptor;
 * used from the lws thread only (recv() from other threads, the notify
 * subscriber's, passes straight through). */
#include "front_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "server/polling.h"

enum {
    G_HEAD = 0, /* reading a request head */
    G_BODY,     /* skipping a body of known length */
    G_FRAMES,   /* a WebSocket: checking frame headers */
    G_PASS,     /* no longer looked at (a chunked body: the front refuses it) */
    G_BROKEN,   /* a framing error: nothing more for lws until the front closes */
    G_EOF,      /* answered here: lws is told the client went away */
};

/* One per client socket for its whole life: small fields, kept together
 * (an idle WebSocket costs this too). */
typedef struct gconn {
    char *head;           /* the part of a head read so far (FGUARD_HEAD_MAX), or NULL */
    void *owner;
    uint64_t left;        /* G_BODY: body bytes; G_FRAMES: payload bytes of the frame */
    uint64_t msg;         /* bytes of the data message so far (its fragments) */
    uint32_t hlen;        /* <= FGUARD_HEAD_MAX */
    uint16_t code;        /* G_BROKEN: the close code */
    uint8_t state;
    uint8_t fhlen, fneed; /* of fh: read, needed */
    uint8_t in_msg;       /* a fragmented data message is under way */
    uint8_t pending, flushed; /* code not handed to the front yet / handed */
    unsigned char fh[14]; /* a frame header being read */
} gconn;

typedef struct guard {
    server *srv;
    int deflate;          /* permessage-deflate offered: RSV1 may be set */
    pthread_t thread;
    gconn **tab;
    size_t n;
    int *pend;            /* descriptors with a close code for the front */
    size_t npend, cappend;
} guard;

static guard *g;
/* Read by recv() in any thread before g is touched: only the lws thread
 * (g_thread, while g_on) ever looks at g, so fguard_free cannot race. */
static int g_on;
static pthread_t g_thread;

static ssize_t real_recv(int fd, void *data, size_t len, int flags) {
    return syscall(SYS_recvfrom, fd, data, len, flags, NULL, NULL);
}

static void write_all(int fd, const char *s, size_t len) {
    while (len) {
        ssize_t w = syscall(SYS_sendto, fd, s, len, MSG_NOSIGNAL, NULL, 0);
        if (w <= 0) return; /* a refusal: what does not fit is lost with the connection */
        s += w;
        len -= (size_t)w;
    }
}

int fguard_init(server *srv, int deflate) {
    struct rlimit rl;
    size_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 65536;
    if (n > (1u << 22)) n = 1u << 22;
    guard *x = calloc(1, sizeof *x);
    if (!x || !(x->tab = calloc(n, sizeof *x->tab))) {
        free(x);
        return -ENOMEM;
    }
    x->srv = srv;
    x->deflate = deflate;
    x->thread = pthread_self();
    x->n = n;
    g = x;
    g_thread = x->thread;
    __atomic_store_n(&g_on, 1, __ATOMIC_RELEASE);
    return 0;
}

static void conn_free(gconn *c) {
    if (!c) return;
    free(c->head);
    free(c);
}

void fguard_free(void) {
    if (!g) return;
    __atomic_store_n(&g_on, 0, __ATOMIC_RELEASE);
    for (size_t i = 0; i < g->n; i++) conn_free(g->tab[i]);
    free(g->tab);
    free(g->pend);
    free(g);
    g = NULL;
}

void fguard_open(int fd) {
    if (!g || fd < 0 || (size_t)fd >= g->n) return;
    conn_free(g->tab[fd]);
    g->tab[fd] = calloc(1, sizeof(gconn)); /* NULL: this one goes unguarded */
}

void fguard_close(int fd) {
    if (!g || fd < 0 || (size_t)fd >= g->n) return;
    conn_free(g->tab[fd]);
    g->tab[fd] = NULL;
}

/* fd has a close code for the front (fguard_flush). */
static void pend_add(int fd) {
    if (util_grow(&g->pend, &g->cappend, g->npend, sizeof *g->pend, 16)) return;
    g->pend[g->npend++] = fd;
}

void fguard_attach(int fd, void *owner) {
    if (!g || fd < 0 || (size_t)fd >= g->n || !g->tab[fd]) return;
    g->tab[fd]->owner = owner;
    if (owner && g->tab[fd]->pending) pend_add(fd); /* broken before it was established */
}

void fguard_flush(void (*cb)(void *owner, int code)) {
    if (!g || !g->npend) return;
    size_t n = g->npend;
    g->npend = 0;
    for (size_t i = 0; i < n; i++) {
        gconn *c = g->tab[g->pend[i]];
        if (c && c->pending && c->owner) {
            c->pending = 0;
            c->flushed = 1;
            cb(c->owner, c->code);
        }
    }
}

/* ---- request heads -------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of header name (lower-case, with ':') in head [h, e), or NULL;
 * *vl its length (trimmed), *line (if not NULL) where its line starts. */
static char *header_at(char *h, char *e, const char *name, size_t *vl, char **line) {
    size_t nl = strlen(name);
    for (char *l = memchr(h, '\n', (size_t)(e - h)); l && l + 1 < e; l = memchr(l + 1, '\n', (size_t)(e - l - 1))) {
        char *s = l + 1;
        if ((size_t)(e - s) < nl || strncasecmp(s, name, nl)) continue;
        char *v = s + nl, *ve = memchr(v, '\r', (size_t)(e - v));
        if (!ve) ve = e;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        *vl = (size_t)(ve - v);
        if (line) *line = s;
        return v;
    }
    return NULL;
}

static char *header(char *h, char *e, const char *name, size_t *vl) { return header_at(h, e, name, vl, NULL); }

/* An Upgrade other than websocket, asked for with Connection: upgrade:
 * Node's answer, written here (the connection then ends). */
static void refuse_upgrade(int fd, char *h, char *e) {
    char *sp1 = memchr(h, ' ', (size_t)(e - h));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1)) : NULL;
    char *q = sp2 ? memchr(sp1, '?', (size_t)(sp2 - sp1)) : NULL;
    char method[16], query[FGUARD_HEAD_MAX], origin[512];
    size_t ml = sp1 && (size_t)(sp1 - h) < sizeof method ? (size_t)(sp1 - h) : 0;
    memcpy(method, h, ml);
    method[ml] = 0;
    size_t ql = q ? (size_t)(sp2 - q - 1) : 0;
    memcpy(query, q ? q + 1 : "", ql);
    query[ql] = 0;
    size_t ol = 0;
    char *o = header(h, e, "origin:", &ol);
    if (ol >= sizeof origin) ol = sizeof origin - 1;
    memcpy(origin, o ? o : "", ol);
    origin[ol] = 0;
    http_req req = {.method = method, .query = query, .origin = o ? origin : NULL, .content_length = -1,
                    .upgrade_other = 1};
    http_resp resp = {0};
    polling_req p;
    polling_begin(g->srv, &req, &p, &resp);
    char top[160];
    int tl = snprintf(top, sizeof top, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/html\r\n"
                                       "Content-Length: %zu\r\n\r\n",
                      resp.status, resp.status == 405 ? "Method Not Allowed" : "Bad Request", resp.body.len);
    write_all(fd, top, (size_t)tl);
    write_all(fd, resp.body.data ? resp.body.data : "", resp.body.len);
    http_resp_free(&resp);
}

/* A complete head [h, e): rewrites what lws would refuse, answers what it
 * would answer otherwise than Node (returns G_EOF then), else the state for
 * what follows it. */
static int head_done(int fd, gconn *c, char *h, char *e) {
    (void)c;
    char *sp1 = memchr(h, ' ', (size_t)(e - h));
    char *t = sp1 ? sp1 + 1 : e;
    /* the request target: "%00" and malformed escapes, which lws drops or
     * forbids, become characters that decode to no valid sid, EIO or
     * transport ("%01", "_"), so the request gets its Engine.IO answer */
    for (; t < e && *t != ' ' && *t != '\r'; t++) {
        if (*t != '%') continue;
        if (t + 2 < e && hexval(t[1]) >= 0 && hexval(t[2]) >= 0) {
            if (t[1] == '0' && t[2] == '0') t[2] = '1';
            t += 2;
        } else {
            *t = '_';
        }
    }
    size_t ul = 0, cl = 0, tel = 0, nl = 0;
    char *upline = NULL;
    char *up = header_at(h, e, "upgrade:", &ul, &upline);
    char *conn = header(h, e, "connection:", &cl);
    if (up && !(ul == 9 && !strncasecmp(up, "websocket", 9))) {
        int asks = 0;
        for (char *s = conn; s && s + 7 <= conn + cl; s++)
            if (!strncasecmp(s, "upgrade", 7)) asks = 1;
        if (asks) {
            refuse_upgrade(fd, h, e);
            return G_EOF;
        }
        *upline = 'X'; /* "Xpgrade:": a plain request for lws */
        up = NULL;
    }
    if (up) return G_FRAMES;
    if (header(h, e, "transfer-encoding:", &tel)) return G_PASS;
    char *len = header(h, e, "content-length:", &nl);
    if (len) {
        c->left = strtoull(len, NULL, 10);
        if (c->left) return G_BODY;
    }
    return G_HEAD;
}

/* ---- frames ----------------------------------------------------------------------- */

/* Looks at frame header bytes in data [0, n); returns how many bytes lws
 * may have (all of them, or those before a bad frame: then c is G_BROKEN). */
static size_t frames(int fd, gconn *c, const unsigned char *data, size_t n) {
    size_t max = (size_t)g->srv->cfg.max_http_buffer_size, i = 0, start = 0;
    while (i < n) {
        if (c->left) {
            uint64_t k = n - i < c->left ? n - i : c->left;
            i += (size_t)k;
            c->left -= k;
            continue;
        }
        if (!c->fhlen) start = i;
        c->fh[c->fhlen++] = data[i++];
        if (c->fhlen == 2) {
            int fin = c->fh[0] & 0x80, op = c->fh[0] & 0x0f, mask = c->fh[1] & 0x80, l7 = c->fh[1] & 0x7f;
            int rsv = c->fh[0] & (g->deflate ? 0x30 : 0x70), known = op <= 2 || (op >= 8 && op <= 10);
            int code = 0;
            if (!mask || rsv || !known) code = 1002;
            else if (op >= 8 && (!fin || l7 > 125 || (op == 8 && l7 == 1))) code = 1002;
            else if ((op == 0 && !c->in_msg) || (op != 0 && op < 8 && c->in_msg)) code = 1002;
            if (op < 8 && !code) c->in_msg = !fin;
            if (code) {
                c->code = code;
                goto broken;
            }
            c->fneed = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
        }
        if (c->fhlen < 2 || c->fhlen < c->fneed) continue;
        int op = c->fh[0] & 0x0f, l7 = c->fh[1] & 0x7f;
        uint64_t len = (uint64_t)l7;
        if (l7 == 126) len = (uint64_t)c->fh[2] << 8 | c->fh[3];
        if (l7 == 127) {
            len = 0;
            for (int k = 0; k < 8; k++) len = len << 8 | c->fh[2 + k];
        }
        c->fhlen = 0;
        if (op < 8) c->msg = op == 0 ? c->msg + len : len;
        if ((l7 == 127 && (c->fh[2] & 0x80)) || len > max || (op < 8 && c->msg > max)) {
            c->code = 1009;
            goto broken;
        }
        c->left = len;
    }
    return n;
broken:
    c->state = G_BROKEN;
    c->pending = 1;
    if (c->owner) pend_add(fd);
    c->fhlen = 0;
    return start;
}

/* ---- recv -------------------------------------------------------------------------- */

/* Walks data [0, n) through c's states; returns what lws gets (a prefix),
 * or -1 with the tail from *hold on kept as the start of a head. */
static size_t walk(int fd, gconn *c, unsigned char *data, size_t n, size_t *hold, int *eof) {
    size_t i = 0;
    *hold = n;
    while (i < n) {
        switch (c->state) {
        case G_HEAD: {
            unsigned char *e = NULL;
            for (size_t k = i + 3; k < n && !e; k++)
                if (data[k] == '\n' && data[k - 1] == '\r' && data[k - 2] == '\n' && data[k - 3] == '\r') e = data + k + 1;
            if ((e ? (size_t)(e - data) : n) - i > FGUARD_HEAD_MAX) { /* Node: 431 */
                static const char too[] = "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n";
                write_all(fd, too, sizeof too - 1);
                c->state = G_EOF;
                *eof = 1;
                return 0;
            }
            if (!e) {
                *hold = i;
                return i;
            }
            c->state = head_done(fd, c, (char *)data + i, (char *)e);
            if (c->state == G_EOF) {
                *eof = 1;
                return 0;
            }
            i = (size_t)(e - data);
            break;
        }
        case G_BODY: {
            uint64_t k = n - i < c->left ? n - i : c->left;
            i += (size_t)k;
            if (!(c->left -= k)) c->state = G_HEAD;
            break;
        }
        case G_FRAMES:
            return i + frames(fd, c, data + i, n - i);
        default:
            return n;
        }
    }
    return n;
}

ssize_t recv(int fd, void *data, size_t len, int flags);
ssize_t recv(int fd, void *data, size_t len, int flags) {
    if (!__atomic_load_n(&g_on, __ATOMIC_ACQUIRE) || !pthread_equal(pthread_self(), g_thread))
        return real_recv(fd, data, len, flags);
    gconn *c = fd >= 0 && (size_t)fd < g->n ? g->tab[fd] : NULL;
    if (!c || c->state == G_PASS) return real_recv(fd, data, len, flags);
    if (c->state == G_EOF) return 0;
    if (c->state == G_BROKEN) {
        if (c->flushed) { /* the front sent its close frame: drop what comes until the client goes */
            ssize_t r = real_recv(fd, data, len, flags);
            if (r <= 0) return r;
        }
        errno = EAGAIN;
        return -1;
    }
    unsigned char *b = data;
    size_t held = c->hlen;
    if (held >= len) { /* cannot happen with lws's read sizes: stop looking */
        c->state = G_PASS;
        return real_recv(fd, data, len, flags);
    }
    if (held) memcpy(b, c->head, held);
    ssize_t r = real_recv(fd, b + held, len - held, flags);
    if (r <= 0) {
        if (r == 0 || held == 0) return r;
        errno = EAGAIN; /* keep what we have: the head goes on later */
        return -1;
    }
    size_t n = held + (size_t)r, hold;
    int eof = 0;
    c->hlen = 0;
    size_t give = walk(fd, c, b, n, &hold, &eof);
    if (eof) return 0;
    if (hold < n) { /* an incomplete head: keep it until it completes */
        if (!c->head && !(c->head = malloc(FGUARD_HEAD_MAX + 1))) {
            c->state = G_PASS;
            return (ssize_t)n;
        }
        memmove(c->head, b + hold, n - hold);
        c->hlen = n - hold;
    } else if (c->head) {
        free(c->head);
        c->head = NULL;
    }
    if (!give) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)give;
}

/* sio-front: the embedded front.  One libwebsockets event loop serves
 *   - the Engine.IO WebSocket transport (new sessions and upgrades of
 *     polling sessions), front_ws.c;
 *   - Engine.IO long-polling over plain HTTP, front_http.c (non-blocking:
 *     held GETs stay registered in the loop);
 *   - the demo endpoints (/demo/...), static files and the client bundle.
 * Delivery (front_deliver.c): the process has ONE reader cursor over the
 * store's packet log.  Each notify wake scans the log once and hands every
 * frame, encoded once and refcounted, to the bounded send queues of the
 * local WebSocket connections it is for.
 *
 * Everything runs on the loop thread; only the notify subscriber has a
 * thread of its own (it makes an eventfd readable, adopted into the loop). */
#ifndef SIO_FRONT_H
#define SIO_FRONT_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "store/adapter.h"
#include "server/engine.h"

/* ---- process-wide state ---------------------------------------------------- */

typedef struct front_opts {
    const char *host;
    int port;
    const char *www;
    const char *client_js;
    const char *state_dir;
    const char *config;
    size_t max_queue;    /* bytes queued per connection before it is dropped */
    int deflate;         /* permessage-deflate offered */
    int reuse_port;      /* own listen socket with SO_REUSEPORT: several fronts, one port */
} front_opts;

typedef struct front {
    engine e;
    front_opts o;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int stopping;
    char reader_name[32];     /* "front-<pid>" in the readers table */
    size_t busy;        /* open connections whose queue is over half full */
} front;

extern front g_front;

/* What an lws wsi's opaque user data points to. */
enum { OBJ_WS = 1, OBJ_HTTP = 2, OBJ_RAW_NOTIFY = 3, OBJ_RAW_SIGNAL = 4, OBJ_RAW_LISTEN = 5 };

/* ---- messages and send queues (front_deliver.c) ---------------------------- */

/* One encoded WebSocket message, shared by every connection it goes to.
 * data starts LWS_PRE bytes into the allocation so lws can put the frame
 * header in front of it without copying. */
typedef struct fmsg {
    uint32_t refs;      /* UINT32_MAX: static, never freed */
    uint8_t binary;
    size_t len;
    unsigned char *data;
} fmsg;

/* A text message: the packet type digit then data (type 0: data as is).
 * NULL on ENOMEM. */
fmsg *fmsg_text(char type, const void *data, size_t len);
fmsg *fmsg_binary(const void *data, size_t len);
void fmsg_unref(fmsg *m);

/* ---- WebSocket connections (front_ws.c) ------------------------------------ */

enum {
    WS_PROBING = 1,  /* an upgrade: waiting for 2probe / 5 */
    WS_OPEN = 2,     /* the session's transport: delivering */
    WS_CLOSING = 3,  /* closed in the engine; the socket is going */
};

/* ---- timers (front_timer.c) ----------------------------------------------------
 * One binary heap of deadlines for every connection's heartbeat, connect
 * and upgrade timers, with a single libwebsockets timer armed for the
 * earliest: lws keeps its own timers in a sorted list (O(n) per insert),
 * which tens of thousands of connections cannot afford. */
typedef struct ftimer ftimer;
typedef void (*ftimer_cb)(ftimer *t);
struct ftimer {
    int64_t at;    /* deadline, util_now_ms() */
    ftimer_cb cb;
    size_t slot;   /* heap index + 1; 0 when not armed */
};
void ftimer_set(ftimer *t, ftimer_cb cb, int64_t delay_ms);
void ftimer_cancel(ftimer *t);

/* The most of a WebSocket message lws hands over per RECEIVE callback: it
 * keeps a buffer of this size for every connection, so it is small (idle
 * memory); longer messages are reassembled in ws_conn.rx. */
#define WS_RX_CHUNK 512
/* A reassembly buffer up to this size is kept for the next message. */
#define WS_RX_KEEP 4096

typedef struct ws_conn {
    int kind;                       /* OBJ_WS */
    struct lws *wsi;
    int state;
    int established;                /* lws called ESTABLISHED: writes allowed */
    char sid[UTIL_ID_LEN + 1];
    uint64_t cursor;                /* records with seq <= cursor are not for us */
    uint64_t accept_cursor;         /* probing: the session's cursor at accept */
    int engine_done;                /* engine_ws_closed / upgrade_abort called */
    int close_frame;                /* closing: send an empty close frame first */
    int close_code;                 /* closing with a status code (1009) */
    int close_sent;                 /* our close frame is out: draining */

    /* send queue: a ring of messages; qoff = bytes of the head already sent */
    fmsg **q;
    size_t qhead, qlen, qcap, qbytes, qoff;
    int64_t progress_ms; /* when the queue last shrank (flow control) */
    int busy;            /* qbytes > max_queue / 2 (counted in g_front.busy) */

    /* receive: the message being reassembled */
    buf rx;
    int rx_binary;

    /* the session's sockets, loaded lazily (see front_deliver.c) */
    store_socket *socks;
    size_t nsocks;
    int socks_valid;
    int check_state;                /* the server closed the session */
    int checking;                   /* in the scan's list of sessions to look at */
    int dropping;                   /* over the queue limit: dropped after the scan */
    uint64_t given;                 /* last record queued (room broadcasts dedupe) */
    int peer_closed;                /* the client sent a close frame */

    /* heartbeat and deadlines (lws sorted-usec lists, loop thread only) */
    ftimer t_ping;       /* next ping, or the pong deadline */
    ftimer t_connect;
    ftimer t_upgrade;
    int awaiting_pong;

    struct ws_conn *hnext;          /* sid hash chain */
    struct ws_conn *prev, *next;    /* the list of delivering connections */
    struct ws_conn *aprev, *anext;  /* the list of all WebSocket connections */
} ws_conn;

/* lws callback pieces, called from front.c's protocol callback. */
int ws_confirm_upgrade(struct lws *wsi);
int ws_established(struct lws *wsi, ws_conn *c);
int ws_receive(struct lws *wsi, ws_conn *c, const void *in, size_t len);
int ws_writeable(struct lws *wsi, ws_conn *c);
/* The client sent a close frame: returns what the lws callback returns. */
int ws_peer_close(ws_conn *c);
void ws_destroy(ws_conn *c);
/* Closes the session in the engine (reason) and the socket: quietly for
 * lagging / errors, with an empty close frame otherwise. */
void ws_close(ws_conn *c, int reason);
/* Appends m to c's queue (takes a reference).  Returns 0, or -1 when the
 * queue limit was crossed (the caller then drops the connection). */
int ws_queue(ws_conn *c, fmsg *m);
/* Stop: closes every connection (engine first). */
void ws_shutdown_all(void);
size_t ws_count(void);

/* ---- delivery (front_deliver.c) -------------------------------------------- */

int deliver_init(void);
/* Scans the log from the front's cursor and queues what is due. */
void deliver_scan(void);
/* Keeps c->busy and g_front.busy in step with c->qbytes. */
void deliver_account(ws_conn *c);
/* A connection's queue shrank: resumes a delivery paused by flow control. */
void deliver_drained(ws_conn *c);
/* Registration of connections that receive the live stream. */
void deliver_add(ws_conn *c);
void deliver_remove(ws_conn *c);
ws_conn *deliver_find(const char *sid);
/* The front's cursor: records up to it were scanned. */
uint64_t deliver_cursor(void);
/* Probing connections hold back the reader position (their session's polling
 * cursor may be below ours); call when one starts or ends. */
void deliver_hold(uint64_t seq);
void deliver_unhold(uint64_t seq);
/* Persists the cursor now (clean exit: del=1 removes the entry). */
void deliver_persist(int del);
/* A WebSocket upgrade completed: queue what the session's polling cursor had
 * not delivered yet, then the live stream.  0, or an ENGINE_CLOSE_* reason. */
int deliver_upgraded(ws_conn *c, uint64_t session_cursor, store_session *ss);
/* The connection's sockets may have changed: reload them before matching. */
void deliver_invalidate(ws_conn *c);

/* ---- HTTP: long-polling, demo endpoints (front_http.c) --------------------- */

int http_request(struct lws *wsi);
int http_body(struct lws *wsi, const void *in, size_t len);
int http_body_done(struct lws *wsi);
int http_writeable(struct lws *wsi);
void http_closed(struct lws *wsi);
/* Re-steps every held GET (after a notify wake). */
void http_wake(void);
void http_shutdown_all(void);

/* Helpers shared by the files. */
int front_query(struct lws *wsi, char *out, size_t n); /* the raw-ish query string */
/* engine_route() of a request path: 1 Socket.IO (cfg.path), 2 bare Engine.IO
 * (cfg.engine_path), 0 neither. */
int front_route(const char *uri);

/* The request headers lws knows by name, as engine_http_req.headers wants
 * them (lower-case name, value, ..., NULL).  lws 4.1 cannot list headers it
 * has no token for, so custom X-... headers are not included. */
#define FRONT_MAX_HEADERS 48
typedef struct front_hdrs {
    const char *kv[FRONT_MAX_HEADERS * 2 + 1];
    char names[FRONT_MAX_HEADERS][40];
    char *values; /* owned */
} front_hdrs;
void front_hdrs_load(struct lws *wsi, front_hdrs *h);
void front_hdrs_free(front_hdrs *h);
/* The request URI with its query string, as received (url for handlers). */
void front_url(struct lws *wsi, const char *query, char *out, size_t n);
/* Writes a complete small HTTP response (headers + body) from a callback
 * that may write.  Returns 0 or -1. */
int front_simple_response(struct lws *wsi, int status, const char *ctype, const char *body,
                          size_t len, const char *extra_headers);

#endif

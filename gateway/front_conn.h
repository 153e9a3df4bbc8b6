/* front_conn: a WebSocket connection of the front, as every front module
 * sees it (ws_conn), the encoded messages it is sent (fmsg, refcounted:
 * one broadcast is encoded once and the same bytes are queued on every
 * target) and its bounded send queue.
 *
 * The fields are grouped by the module that owns them: the transport
 * (front_ws.c), delivery (front_deliver.c) and the queue (here). */
#ifndef SIO_FRONT_CONN_H
#define SIO_FRONT_CONN_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"
#include "front_lws.h"
#include "front_timer.h"
#include "store/store.h"

/* ---- messages -------------------------------------------------------------------- */

/* One encoded WebSocket message, shared by every connection it goes to.
 * data starts LWS_PRE bytes into the allocation so lws can put the frame
 * header in front of it without copying. */
typedef struct fmsg {
    uint32_t refs; /* UINT32_MAX: static, never freed */
    uint8_t binary;
    size_t len;
    unsigned char *data;
} fmsg;

/* A text message: the packet type digit then data (type 0: data as is).
 * NULL on ENOMEM.  The caller holds the one reference. */
fmsg *fmsg_text(char type, const void *data, size_t len);
fmsg *fmsg_binary(const void *data, size_t len);
void fmsg_unref(fmsg *m);

/* ---- connections ------------------------------------------------------------------ */

/* Flow control (front_deliver.c): a queue holding more than this many
 * bytes or messages (or half its limits, when those are lower) is busy,
 * and stops being busy at half of it.  While a quarter of the connections
 * that are taking bytes are busy, the front stops reading the log: what
 * clients have not taken stays in the log (shared, bounded by the
 * producers' backlog) instead of in every connection's queue. */
#define CONN_FLOW_BYTES (64 * 1024)
#define CONN_FLOW_PACKETS 1024

/* What the send queues of all connections share (flow control). */
typedef struct ws_conn ws_conn;
typedef struct fconns {
    size_t max_queue; /* bytes queued for one connection before it is dropped */
    size_t max_packets; /* messages queued for one connection before it is dropped */
    size_t busy;      /* connections whose queue is busy (see CONN_FLOW_BYTES) */
    /* Called when a queue stops being busy. */
    void (*drained)(void *arg, ws_conn *c);
    void *drained_arg;
    /* direct: a queue that becomes non-empty outside lws_service (the end
     * of a loop turn: the front's own delivery, front.c) is listed here, and
     * the loop writes it before the next poll() (ws_flush) instead of
     * waiting for a poll() turn to say the socket is writable.  Inside
     * lws_service (in_service) lws is asked for a writeable callback: a
     * timer runs there before lws's poll(), which would block with the
     * message unsent.  Entries may be NULL (conn_forget). */
    int direct, in_service;
    ws_conn **pending;
    size_t npending, cappending;
} fconns;

enum {
    WS_PROBING = 1, /* an upgrade: waiting for 2probe / 5 */
    WS_OPEN = 2,    /* the session's transport: delivering */
    WS_CLOSING = 3, /* closed in the server; the socket is going */
};

struct ws_front; /* front_ws.h */

struct ws_conn {
    int kind; /* OBJ_WS (front.c): what the wsi's opaque user data is */
    struct lws *wsi;
    struct ws_front *owner;
    fconns *pool;
    char sid[UTIL_ID_LEN + 1];
    /* (the flags of each group are bytes, kept together: an idle
     * connection costs what this struct costs) */

    /* the transport (front_ws.c) */
    uint8_t state;
    uint8_t established;     /* lws called ESTABLISHED: writes allowed */
    uint8_t server_done;     /* websocket_closed / upgrade_abort called */
    uint8_t close_frame;     /* closing: send an empty close frame first */
    uint8_t close_sent;      /* our close frame is out: draining */
    uint8_t peer_closed;     /* the client sent a close frame */
    uint8_t rx_binary;
    uint8_t awaiting_pong;
    uint8_t acked_dirty;     /* acked not yet in the session record */
    uint16_t close_code;     /* closing with a status code (1009, 1013) */
    int fd;                  /* its socket, once established (front_guard.h) */
    uint64_t accept_cursor;  /* probing: the session's cursor at accept */
    buf rx;                  /* the message being reassembled */
    ftimer t_ping;           /* next ping, or the pong deadline */
    union {                  /* never both armed: an upgrade's connect timer starts once it is done */
        ftimer t_connect;
        ftimer t_upgrade;
    };
    uint64_t ping_cursor;    /* the delivery position when the last ping was queued */
    uint64_t acked;          /* ... when the client answered it: what reached it */
    struct ws_conn *aprev, *anext; /* the list of all WebSocket connections */

    /* delivery (front_deliver.c) */
    uint8_t socks_valid;
    uint8_t check_state;     /* the server closed the session */
    uint8_t checking;        /* in the scan's list of sessions to look at */
    uint8_t dropping;        /* over the queue limit: dropped after the scan */
    uint32_t nsocks;
    uint64_t cursor;         /* records with seq <= cursor are not for us */
    store_socket *socks;     /* the session's sockets, loaded lazily */
    uint64_t given;          /* last record queued (room broadcasts dedupe) */
    struct ws_conn *hnext;       /* sid hash chain */
    struct ws_conn *prev, *next; /* the list of delivering connections */

    /* the send queue: a ring of messages; qoff = bytes of the head sent */
    fmsg **q;
    uint32_t qhead, qlen, qcap;
    uint8_t busy;        /* over the flow threshold (counted in pool->busy) */
    size_t qbytes, qoff;
    int64_t progress_ms; /* when the queue last shrank (flow control) */
};

/* Appends m to c's queue (takes a reference) and asks for a write.
 * Returns 0 (nothing on a closing connection), or -1 when the queue limit
 * was crossed (the caller then drops the connection) or on ENOMEM. */
int conn_queue(ws_conn *c, fmsg *m);
/* The same for a message built for this connection only: drops the
 * caller's reference (m may be NULL: ENOMEM, -1). */
int conn_queue_own(ws_conn *c, fmsg *m);
/* Removes the head message (sent). */
void conn_pop(ws_conn *c);
/* Drops everything queued. */
void conn_clear(ws_conn *c);
/* Takes c out of the pool's pending writes (it is being freed). */
void conn_forget(ws_conn *c);

#endif

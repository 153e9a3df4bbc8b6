/* engine: Engine.IO v4 sessions kept in the store, so that any worker of any
 * process can serve any request of any session (no sticky sessions).
 *
 * It owns the session life cycle (handshake, heartbeat, upgrade, close), the
 * HTTP long-polling rules and their error answers (the Node server's status
 * codes and JSON bodies), and the delivery of queued packets: a poll walks
 * the store's log from the session's cursor (see store.h and adapter.h).
 * Socket.IO packets found in client messages are handed to srv.
 *
 * It is transport neutral: the FastCGI gateway and the embedded front call
 * the same functions.  Deadlines (ping, ping timeout, connect timeout) are
 * wall-clock times in the session record and are checked lazily by every
 * request and by stated's reaper, so no process needs a timer per session.
 *
 * Threads: one engine per process, shared by all threads. */
#ifndef SIO_ENGINE_H
#define SIO_ENGINE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/cfg.h"
#include "notify/notify.h"
#include "store/adapter.h"
#include "store/store.h"

typedef struct engine {
    store *st;
    notify_sub *sub; /* NULL in short-lived tools: they notify one-shot */
    cfg cfg;
    char dir[PATH_MAX];
    /* Event loops coalesce wake-ups: with defer_hook set, engine_notify only
     * records that one is due and calls the hook the first time; the loop
     * then calls engine_notify_flush once per turn. */
    void (*defer_hook)(void *arg);
    void *defer_arg;
    int defer_pending;
    uint64_t defer_seq;
} engine;

enum {
    ENGINE_CREATE = 1,    /* create the store (stated only) */
    ENGINE_SUBSCRIBE = 2, /* start a notify subscriber (long-lived readers) */
};

/* Opens the store in the state directory (dir, else util_state_dir()) and
 * loads the config: cfg_path, else $SIO_CONFIG, else (without ENGINE_CREATE)
 * the config text stated published in the store, else the defaults.  With
 * ENGINE_CREATE (stated) the loaded config text is published.  On failure
 * returns <0 and writes a sentence for the user into err. */
int engine_open(engine *e, const char *dir, const char *cfg_path, unsigned flags, char *err,
                size_t errlen);
void engine_close(engine *e);
/* Wakes readers after a commit that queued packets or changed sessions. */
void engine_notify(engine *e, uint64_t seq);
/* Publishes the wake-up deferred by defer_hook, if any. */
void engine_notify_flush(engine *e);

/* Why a session closed. */
enum {
    ENGINE_CLOSE_NONE = 0,
    ENGINE_CLOSE_CLIENT = 1,      /* the client sent '1' */
    ENGINE_CLOSE_PING_TIMEOUT = 2,
    ENGINE_CLOSE_PARSE_ERROR = 3, /* malformed Engine.IO or Socket.IO packet */
    ENGINE_CLOSE_OVERLAP = 4,     /* a second GET while one was held */
    ENGINE_CLOSE_SERVER = 5,      /* closed by the server (sioctl) */
    ENGINE_CLOSE_CONNECT_TIMEOUT = 6,
    ENGINE_CLOSE_LAGGING = 7,     /* fell behind the trimmed log */
    ENGINE_CLOSE_TRANSPORT = 8,   /* transport error or bad content */
    ENGINE_CLOSE_POLL_DROPPED = 9,/* the client dropped its held GET */
};
const char *engine_close_reason(int reason);

/* ---- HTTP long-polling ------------------------------------------------- */

typedef struct engine_http_req {
    const char *method;       /* "GET", "POST", ... */
    const char *query;        /* raw query string, may be NULL */
    const char *content_type; /* may be NULL */
    const char *origin;       /* may be NULL */
    const char *remote_addr;  /* may be NULL */
    long content_length;      /* -1 when unknown */
    int upgrade;              /* an Upgrade: websocket request */
    int bare;                 /* at cfg.engine_path: a bare Engine.IO session */
    const char *url;          /* request URI, may be NULL */
    const char *const *headers; /* name, value, name, value, ..., NULL; may be NULL */
} engine_http_req;

typedef struct engine_http_resp {
    int status;               /* HTTP status */
    const char *content_type; /* static string, or NULL for none */
    buf body;                 /* owned; engine_resp_free */
    buf headers;              /* extra "Name: value\r\n" lines; owned */
} engine_http_resp;

void engine_resp_free(engine_http_resp *r);

/* Which endpoint a request path belongs to: 1 the Socket.IO path, 2 the bare
 * Engine.IO path (cfg.engine_path), 0 neither.  "/socket.io" without the
 * trailing slash counts. */
int engine_route(const engine *e, const char *uri);

/* The state of one polling request between calls. */
typedef struct engine_poll {
    char sid[UTIL_ID_LEN + 1];
    uint32_t token;  /* identifies this held GET in the session record */
    int held;        /* the session records us as its pending GET */
    uint64_t gen;    /* notify generation seen at the last look */
    uint64_t scanned;/* log records up to here hold nothing for this session */
    int64_t upgrade_wait; /* a GET during an upgrade: answer by then */
} engine_poll;

enum {
    ENGINE_DONE = 0,      /* resp is ready */
    ENGINE_READ_BODY = 1, /* a POST: read at most max_http_buffer_size bytes, then engine_post */
    ENGINE_WAIT = 2,      /* a GET is held: wait (notify or deadline), then engine_poll_step */
};

/* Validates a polling request and starts it.  Returns ENGINE_DONE with resp
 * filled (handshake, error), ENGINE_READ_BODY, or ENGINE_WAIT (a GET now
 * held: call engine_poll_step at once, it may have packets ready). */
int engine_http_begin(engine *e, const engine_http_req *req, engine_poll *p,
                      engine_http_resp *resp);
/* Handles a POST body (len bytes, writable: it is decoded in place).
 * too_big: the body exceeded the limit (answered 413).  Always fills resp. */
void engine_post(engine *e, engine_poll *p, const engine_http_req *req, uint8_t *body,
                 size_t len, int too_big, engine_http_resp *resp);
/* Looks at a held GET again.  ENGINE_DONE with resp filled, or ENGINE_WAIT
 * with *deadline_ms set: wait for notify_sub_wait(gen) or the deadline. */
int engine_poll_step(engine *e, engine_poll *p, engine_http_resp *resp, int64_t *deadline_ms);
/* The held GET went away without an answer (the server is stopping):
 * releases it; the session lives on. */
void engine_poll_abandon(engine *e, engine_poll *p);
/* The client dropped its held GET: releases it and closes the session, as
 * Node does ("transport error"). */
void engine_poll_dropped(engine *e, engine_poll *p);

/* ---- transport-neutral pieces ------------------------------------------- */

/* Applies one client packet to session s inside write transaction t (pong,
 * close, message -> srv).  Returns 0, an ENGINE_CLOSE_* reason when the
 * session must close, or a negative store error.  The caller stores s. */
struct eio_packet;
int engine_packet(engine *e, store_txn *t, const char *sid, store_session *s,
                  const struct eio_packet *pk, uint64_t *seq);

/* Hands every frame queued for session sid with after < seq <= until to cb,
 * in log order, stopping after about limit bytes (at least one record).
 * *upto gets the last seq looked at: the session's new cursor. */
typedef int (*engine_frame_cb)(void *arg, const adapter_frame *f);
int engine_collect(store_txn *t, const char *sid, uint64_t after, uint64_t until, size_t limit,
                   engine_frame_cb cb, void *arg, uint64_t *upto);

/* ---- WebSocket (the front) ------------------------------------------------
 * The front keeps heartbeats of its own connections in memory (it answers
 * nothing but pongs itself) and calls these for everything that changes the
 * shared state. */
enum { ENGINE_WS_REJECT = 0, ENGINE_WS_NEW = 1, ENGINE_WS_UPGRADE = 2 };
/* Checks an Upgrade request.  ENGINE_WS_NEW: a new session owned by this
 * process; open gets the open packet text and *cursor the log position to
 * deliver from.  ENGINE_WS_UPGRADE: a polling session sid starts upgrading
 * (probe expected).  ENGINE_WS_REJECT: *code is the Engine.IO error code and
 * the request is refused (HTTP 400, body = engine_error_message(code)). */
int engine_ws_accept(engine *e, const engine_http_req *req, char sid[UTIL_ID_LEN + 1],
                     buf *open, uint64_t *cursor, int *code);
const char *engine_error_message(int code);
/* '2probe' arrived: held GETs get a noop from now on.  0 or <0. */
int engine_ws_probe(engine *e, const char *sid);
/* '5' arrived: the session now belongs to this process's WebSocket;
 * *cursor: where its delivery continues from.  0 or <0. */
int engine_ws_upgraded(engine *e, const char *sid, uint64_t *cursor);
/* The probing WebSocket went away before '5': back to polling. */
void engine_ws_upgrade_abort(engine *e, const char *sid);
/* One packet from a WebSocket session (not pongs).  Returns 0, an
 * ENGINE_CLOSE_* reason (the front then calls engine_ws_closed), or <0. */
int engine_ws_packet(engine *e, const char *sid, const struct eio_packet *pk);
/* The WebSocket session is over: its sockets leave every room and the
 * record is removed. */
void engine_ws_closed(engine *e, const char *sid, int reason);

/* ---- shared by stated and the fronts ----------------------------------- */

/* Closes a session inside a write transaction: marks it closed (a held GET
 * will answer it), removes its sockets from every room.  *seq_out, when not
 * NULL, is set if anything was appended. */
int engine_session_close(engine *e, store_txn *t, const char *sid, store_session *s, int reason);
/* Flow control for producers: waits while the log holds more than
 * max_records that a live WebSocket front (reader "front-<pid>") has not read
 * yet, or until deadline_ms.  Returns 0, or 1 when it gave up at the
 * deadline (the producer goes on; a front that stays behind is disconnected
 * from the trimmed log later). */
int engine_backlog_wait(engine *e, uint64_t max_records, int64_t deadline_ms);

/* stated's housekeeping: expires sessions past their deadlines, deletes
 * closed sessions once answered, trims the log.  *next_ms gets the earliest
 * deadline seen.  Returns the number of sessions closed or removed. */
int engine_reap(engine *e, int64_t now, int64_t *next_ms);

#endif

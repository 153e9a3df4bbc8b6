/* server: the context every server-side module is given, explicitly: the
 * store, the config in force, the notify subscriber, and the hooks that
 * upper layers register (plugins).  One per process, shared by its threads;
 * the caller owns it (usually on the stack of main).
 *
 * Also the vocabulary the server modules share: why an Engine.IO session
 * closed (SESSION_CLOSE_*), which the session layer decides and the
 * Socket.IO layer turns into "disconnect" reasons.
 *
 * The server layer, lowest first (a module includes only those before it):
 *   server    this context
 *   http      the HTTP request/response of both transports, query, errors
 *   rooms     room membership, fetchSockets
 *   reader    readers of the packet log and the inbox: cursors, matching
 *   socketio  the Socket.IO layer: namespaces, sockets, acks, emit
 *   session   Engine.IO sessions: create, heartbeat deadlines, close
 *   polling   HTTP long-polling         websocket  the WebSocket transport
 *   actions   server-side actions (sioctl, handlers, plugins)
 *   metrics   a snapshot of the stack: Prometheus text, status JSON */
#ifndef SIO_SERVER_H
#define SIO_SERVER_H

#include <limits.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/cfg.h"
#include "notify/notify.h"
#include "store/store.h"

typedef struct server server;

/* An in-process handler for the events and acks of clients (plugins, see
 * handlers/plugin.h): called inside the write transaction t of the client's
 * packet with the record {type, the socket's fields, extra...} (see
 * store/inbox.h).  Returns 1 when handled (its actions are applied in t;
 * *seq: the last log record they appended), 0 to pass the event on to the
 * inbox, <0 on a store error (t is unusable). */
typedef int (*server_event_hook)(void *arg, server *srv, store_txn *t, const char *type,
                                 const store_socket *so, const cJSON *extra, uint64_t *seq);

struct server {
    store *st;
    notify_sub *sub; /* NULL in short-lived tools: they notify one-shot */
    cfg cfg;
    char dir[PATH_MAX];
    /* Event loops coalesce wake-ups: with defer_hook set, server_notify only
     * records that one is due and calls the hook the first time; the loop
     * then calls server_notify_flush once per turn. */
    void (*defer_hook)(void *arg);
    void *defer_arg;
    int defer_pending;
    uint64_t defer_seq;
    _Atomic uint64_t inbox_told; /* store_inbox_commits at the last wake-up */
    /* Registered by plugin_load; fn NULL: none. */
    server_event_hook on_event;
    void *on_event_arg;
};

enum {
    SERVER_CREATE = 1,    /* create the store (stated only) */
    SERVER_SUBSCRIBE = 2, /* start a notify subscriber (long-lived readers) */
};

/* server_open's failure when the config (a file, or the text stated
 * published) cannot be read or is invalid. */
#define SERVER_ECONFIG (-30900)

/* Opens the store in the state directory (dir, else util_state_dir()) and
 * loads the config: cfg_path, else $SIO_CONFIG, else (without SERVER_CREATE)
 * the config text stated published in the store, else the defaults.  With
 * SERVER_CREATE (stated) the loaded config text is published.  On failure
 * returns <0 and writes a sentence for the user, naming the path at fault,
 * into err: SERVER_ECONFIG for the config, -ENOENT when there is no store,
 * -EACCES when the user may not open it, else the store's error. */
int server_open(server *s, const char *dir, const char *cfg_path, unsigned flags, char *err,
                size_t errlen);
void server_close(server *s);
/* Wakes readers after a commit that queued packets or changed sessions. */
void server_notify(server *s, uint64_t seq);
/* Publishes the wake-up deferred by defer_hook, if any. */
void server_notify_flush(server *s);
/* The same for a loop that then reads its own commits at once (front.c):
 * other processes are woken, this one's eventfd is not (NOTIFY_OWN).  1
 * when there was a wake-up to publish: the caller delivers it now. */
int server_notify_flush_own(server *s);

/* Why a session closed. */
enum {
    SESSION_CLOSE_NONE = 0,
    SESSION_CLOSE_CLIENT = 1,       /* the client sent '1' */
    SESSION_CLOSE_PING_TIMEOUT = 2,
    SESSION_CLOSE_PARSE_ERROR = 3,  /* malformed Engine.IO or Socket.IO packet */
    SESSION_CLOSE_OVERLAP = 4,      /* a second GET while one was held */
    SESSION_CLOSE_SERVER = 5,       /* closed by the server (sioctl) */
    SESSION_CLOSE_CONNECT_TIMEOUT = 6,
    SESSION_CLOSE_LAGGING = 7,      /* fell behind the trimmed log */
    SESSION_CLOSE_TRANSPORT = 8,    /* transport error or bad content */
    SESSION_CLOSE_POLL_DROPPED = 9, /* the client dropped its held GET */
};
/* Logs (at most once a second per process) that a request was refused
 * because the store or its disk is full (store_full(rc)): what names the
 * request, e.g. "a POST on session X". */
void server_warn_full(const char *what, int rc);

/* What a long-running process calls about once a second: the store pages
 * it touched leave its resident memory (store_release_pages; the page cache
 * keeps them once for all processes), and so do the free pages of its
 * heaps (malloc_trim): a ramp's or a burst's memory is not kept. */
void server_release_memory(server *s);

/* The words for a close reason, for logs. */
const char *server_close_reason(int reason);

#endif

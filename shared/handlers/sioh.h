/* sioh: a small C API for handler processes (`process = CMD` in the
 * config).  The dispatcher writes one JSON record per line on the process's
 * stdin (see inbox.h: connect, connection, event, ack, disconnect, message)
 * and applies every JSON line the process writes on stdout as an action
 * (see server/actions.h).  sioh reads the records and writes the actions:
 *
 *   sioh_event ev = SIOH_EVENT_INIT;
 *   while (sioh_next(&ev) > 0) {
 *       if (!strcmp(ev.type, "connection")) sioh_join(ev.socket, "some room");
 *       else if (ev.event && !strcmp(ev.event, "ping") && ev.ack >= 0)
 *           sioh_ack(ev.socket, ev.ack, ev.args);
 *   }
 *   sioh_event_clear(&ev);
 *
 * Output is buffered and flushed when the process would wait for input
 * (sioh_next / sioh_wait find nothing pending), when the buffer is large,
 * or on sioh_flush: a burst of events gets its answers in one write, which
 * the dispatcher applies in one store transaction.
 *
 * Errors: functions return 0 (sioh_next: 1) on success and -errno on
 * failure (-EPIPE: the dispatcher is gone; exit).  Not thread safe: one
 * thread reads and writes.  Link with libsio.a and -lcjson. */
#ifndef SIO_SIOH_H
#define SIO_SIOH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SIOH_LINE_MAX (1u << 20) /* longest line either way (the dispatcher's limit) */

typedef struct sioh_event {
    cJSON *json;            /* the whole record; owned by the event */
    uint64_t seq;           /* its inbox sequence number */
    const char *type;       /* "connect", "connection", "event", "ack", "disconnect", "message",
                             * "serverSideEmit" (another server of the cluster) */
    const char *nsp;        /* NULL for "message" */
    const char *socket;     /* socket id (NULL for "message") */
    const char *sid;        /* Engine.IO session id */
    const char *event;      /* "event", "serverSideEmit": its name, else NULL */
    const cJSON *args;      /* "event" / "ack": the arguments (a JSON array), else NULL */
    long long ack;          /* "event": the ack id the client waits on, else -1;
                             * "serverSideEmit": the id to answer with sioh_server_ack;
                             * "ack": the id of the server emit being answered */
    const char *reason;     /* "disconnect": why, else NULL */
    const cJSON *auth;      /* "connect" / "connection": the CONNECT payload */
    const cJSON *data;      /* "connection": the socket's data; "message": the
                             * string or {"$binary":...}; else NULL */
    const cJSON *handshake; /* "connect" / "connection": the HTTP handshake */
} sioh_event;

#define SIOH_EVENT_INIT {0}

/* Reads the next record from stdin, blocking (output is flushed first when
 * no input is pending).  ev's previous content is freed.  Returns 1 with an
 * event, 0 at the end of input (the dispatcher closed it: exit), or <0
 * (-EIO on a read error).  Lines that are not JSON objects are skipped
 * with a message on stderr. */
int sioh_next(sioh_event *ev);
/* Frees what ev holds; it may be used again.  Safe on a cleared event. */
void sioh_event_clear(sioh_event *ev);
/* Waits up to timeout_ms (0: just look, <0: forever) for input; output is
 * flushed before waiting.  1 when sioh_next would not block (a record is
 * buffered, or the input ended), 0 on timeout.  Blank lines and lines that
 * are not JSON objects do not count: they are skipped. */
int sioh_wait(int timeout_ms);
/* Writes the buffered output. 0 or -errno. */
int sioh_flush(void);

/* ---- actions -------------------------------------------------------------
 * args is a JSON array of arguments or NULL (no arguments); it is borrowed
 * (copied into the output).  Binary arguments: sioh_binary(). */

/* socket.emit(event, ...args): to one socket. */
int sioh_emit(const char *socket, const char *event, const cJSON *args);
/* io.of(nsp).to(room).emit(...): every socket of nsp in room (room NULL:
 * the whole namespace). */
int sioh_emit_to(const char *nsp, const char *room, const char *event, const cJSON *args);
/* socket.broadcast.to(room).emit(...): like emit_to in the socket's
 * namespace, but not to socket itself (room NULL: socket.broadcast.emit). */
int sioh_broadcast_to(const char *socket, const char *room, const char *event, const cJSON *args);
/* socket.emit with an ack wanted: the client's answer arrives as an "ack"
 * record with this id (pick ids unique to your process, e.g. a counter
 * starting at 1e12 so they never meet sioctl's). */
int sioh_emit_ack(const char *socket, const char *event, const cJSON *args, long long ack_id);
int sioh_join(const char *socket, const char *room);
int sioh_leave(const char *socket, const char *room);
/* Answers the client's ack id (ev.ack of an "event" record) with args. */
int sioh_ack(const char *socket, long long ack_id, const cJSON *args);
/* Answers another server's serverSideEmit (ev.ack of a "serverSideEmit"
 * record); the first argument travels back. */
int sioh_server_ack(long long ack_id, const cJSON *args);
/* socket.disconnect(close). */
int sioh_disconnect(const char *socket, int close);
/* Answers a "connect" record: accept (data, may be NULL, becomes the
 * socket's data) or refuse (the client's connect_error gets message and
 * data; data may be NULL). */
int sioh_accept(const sioh_event *connect, const cJSON *data);
int sioh_refuse(const sioh_event *connect, const char *message, const cJSON *data);
/* Sends a message on a bare Engine.IO session ([engine] section). */
int sioh_send(const char *sid, const void *data, size_t len, int binary);
/* Writes any action object (see server/actions.h) as is. */
int sioh_action(const cJSON *action);
/* Writes one line of already-encoded JSON (no newline inside; len bytes). */
int sioh_write_line(const char *json, size_t len);

/* ---- in-process handlers (`plugin = FILE.so` in a [namespace]) ------------
 * A plugin is a shared object that defines sio_plugin_event().  The process
 * that receives a client's event or ack (sio-front, sio-fcgi) calls it with
 * the record, inside the transaction that would have queued the record for
 * the other handlers, and applies the actions it writes with the functions
 * above in that same transaction: no inbox, no dispatcher, no pipe.
 * Return 1 when the event is handled, 0 to pass it on to the namespace's
 * other handlers (event.NAME, any, process), <0 on error (logged; passed
 * on); the actions of a call that does not return 1 are dropped.  Calls never overlap (they hold the store's writer lock), but they
 * happen in every receiving process: keep state in the store (rooms,
 * emits), not in the plugin's memory.  Do not call sioh_next/sioh_wait/
 * sioh_flush from a plugin. */
int sio_plugin_event(const sioh_event *ev);

/* For the hosts of plugins: output goes to a buffer between begin and end
 * (not to stdout); end returns it (lines of JSON; valid until the next
 * begin).  sioh_event_from_json fills ev from a record, taking ownership of
 * o (sioh_event_clear frees it). */
void sioh_host_begin(void);
const char *sioh_host_end(size_t *len);
void sioh_event_from_json(sioh_event *ev, cJSON *o);
/* Hosted, sioh_ack keeps its answer as it is instead of writing a JSON
 * line (one print and one parse less per answer): the host applies the i-th
 * kept ack (0, 1, ...; NULL past the last) after the output bytes before
 * `at`, so that the order of the calls is kept.  Valid until the next
 * sioh_host_begin. */
typedef struct sioh_hosted_ack {
    size_t at;          /* output bytes written before it */
    const char *socket;
    long long id;
    const cJSON *args;  /* an array (a copy) */
} sioh_hosted_ack;
const sioh_hosted_ack *sioh_host_ack(size_t i);

/* A new {"$binary":"<base64>"} marker for len bytes (free with
 * cJSON_Delete, or let the array that holds it free it); NULL on ENOMEM. */
cJSON *sioh_binary(const void *data, size_t len);
/* The bytes of a marker: a malloc'ed copy in *out (caller frees), length in
 * *len.  0, -EINVAL (not a marker), -ENOMEM. */
int sioh_binary_get(const cJSON *marker, uint8_t **out, size_t *len);

#endif

/* front_deliver: the front's single reader of the packet log, for all its
 * WebSocket connections.  On every notify wake the loop calls deliver_scan:
 * one read transaction walks the log from the front's cursor and queues
 * each record's frames, encoded once (fmsg), on the connections it is for
 * (matching: server/reader.h), so every connection receives packets in log
 * order.  A connection whose queue passes the limit is dropped; when many
 * are half full the front stops reading until they drain (flow control).
 *
 * The cursor is saved in the store as this process's READER_FRONT entry,
 * so stated trims the log only below what this front still needs.  Probing
 * upgrades hold it lower: their session's polling cursor may be behind
 * ours, and the gap is collected at upgrade time (deliver_upgraded). */
#ifndef SIO_FRONT_DELIVER_H
#define SIO_FRONT_DELIVER_H

#include <libwebsockets.h>
#include <stdint.h>

#include "front_conn.h"
#include "server/reader.h"
#include "server/server.h"

typedef struct deliver deliver;

/* Registers the reader (removing the entries of fronts that are gone) at the
 * log head.  close(c, reason) is how delivery drops a connection (lagging,
 * stalled, closed by the server).  0 or a store error. */
int deliver_new(server *srv, struct lws_context *ctx, fconns *pool,
                void (*close)(ws_conn *c, int reason), deliver **out);
/* Frees it (the reader entry stays: deliver_persist(d, 1) removes it). */
void deliver_free(deliver *d);
/* The front is stopping: no more scans; the cursor is no longer saved. */
void deliver_stop(deliver *d);
const reader_id *deliver_reader(const deliver *d);
/* The front's cursor: records up to it were scanned. */
uint64_t deliver_cursor(const deliver *d);

/* Scans the log from the cursor and queues what is due. */
void deliver_scan(deliver *d);

/* Registration of connections that receive the live stream. */
void deliver_add(deliver *d, ws_conn *c);
void deliver_remove(deliver *d, ws_conn *c);
ws_conn *deliver_find(deliver *d, const char *sid);
/* The connection's sockets may have changed: reload them before matching. */
void deliver_invalidate(ws_conn *c);

/* Probing connections hold back the reader position (their session's
 * polling cursor may be below ours); call when one starts or ends. */
void deliver_hold(deliver *d, uint64_t seq);
void deliver_unhold(deliver *d, uint64_t seq);
/* Saves the position now (clean exit: del=1 removes the entry). */
void deliver_persist(deliver *d, int del);
/* A WebSocket upgrade completed: queue what the session's polling cursor
 * had not delivered yet, then the live stream; *ss gets the session.  0, or
 * a SESSION_CLOSE_* reason. */
int deliver_upgraded(deliver *d, ws_conn *c, uint64_t session_cursor, store_session *ss);

#endif

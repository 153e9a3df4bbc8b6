/* front_ws: the Engine.IO WebSocket transport of sio-front: accepting
 * WebSockets (new sessions and upgrades of polling sessions), reading
 * client messages, the heartbeat, and writing the send queue.  Called from
 * the lws protocol callback in front.c. */
#ifndef SIO_FRONT_WS_H
#define SIO_FRONT_WS_H

#include <libwebsockets.h>
#include <stddef.h>

#include "front_conn.h"
#include "front_deliver.h"
#include "front_timer.h"
#include "server/server.h"

/* The most of a WebSocket message lws hands over per RECEIVE callback: it
 * keeps a buffer of this size for every connection, so it is small (idle
 * memory); longer messages are reassembled in ws_conn.rx, which is freed
 * after each one.  lws also reads at most this much per loop turn from one
 * connection: 128 or 256 made a 1 MB message take seconds under ASan. */
#define WS_RX_CHUNK 512

typedef struct ws_front ws_front;

/* deflate: permessage-deflate is offered.  NULL on ENOMEM. */
ws_front *ws_new(server *srv, ftimers *timers, deliver *dl, fconns *pool, int deflate);
void ws_free(ws_front *w);
/* WebSocket connections open now (any state). */
size_t ws_count(const ws_front *w);

/* lws callback pieces; each returns what the callback returns. */
int ws_confirm_upgrade(ws_front *w, struct lws *wsi);
int ws_established(struct lws *wsi, ws_conn *c);
int ws_receive(struct lws *wsi, ws_conn *c, const void *in, size_t len);
int ws_writeable(struct lws *wsi, ws_conn *c);
/* Writes what was queued during this loop turn (fconns.direct), outside
 * any lws callback: called by the loop at the end of each turn. */
void ws_flush(ws_front *w);
/* The client sent a close frame. */
int ws_peer_close(ws_conn *c);
/* The wsi is going: frees c. */
void ws_destroy(ws_conn *c);

/* Closes the session in the server (reason) and the socket: quietly for
 * lagging / errors, with an empty close frame otherwise. */
void ws_close(ws_conn *c, int reason);
/* The client broke the WebSocket framing (front_guard.h): the session ends
 * and the connection closes with status (1002, 1009). */
void ws_close_status(ws_conn *c, int status);
/* Stop: refuses new WebSockets and closes every connection. */
void ws_shutdown_all(ws_front *w);

#endif

/* websocket: Engine.IO's WebSocket transport, as the front drives it.  The
 * front keeps the heartbeats of its own connections in memory (it answers
 * nothing but pongs itself) and calls these for everything that changes the
 * shared state: a new session, the upgrade of a polling session (probe,
 * then '5'), client packets, and the end of the connection. */
#ifndef SIO_WEBSOCKET_H
#define SIO_WEBSOCKET_H

#include <stdint.h>

#include "base/util.h"
#include "proto/eio_parser.h"
#include "server/http.h"
#include "server/server.h"

enum { WEBSOCKET_REJECT = 0, WEBSOCKET_NEW = 1, WEBSOCKET_UPGRADE = 2 };
/* *code of a refusal for want of room: HTTP 503 "Store full", as polling. */
#define WEBSOCKET_FULL (-1)
/* *code of a handshake access_handshake refused (server/access.h): HTTP 403
 * with the JSON body left in open ({"code":4,"message":...}). */
#define WEBSOCKET_FORBIDDEN (-2)
/* *code of a refusal of the WebSocket handshake itself (method, key,
 * version): answer what websocket_handshake_error says. */
#define WEBSOCKET_BAD_HANDSHAKE (-3)
/* The WebSocket checks of an Upgrade request, as Node's ws package makes
 * them once Engine.IO's checks have passed (RFC 6455 4.2.1): 0 when the
 * request is a valid handshake, else the HTTP status (405 a method other
 * than GET, 400 a missing or malformed Sec-WebSocket-Key, a
 * Sec-WebSocket-Version other than 13 or 8), with *msg the body and *extra
 * a header line to add ("Name: value\r\n") or NULL.  Static strings. */
int websocket_handshake_error(const http_req *req, const char **msg, const char **extra);
/* Checks an Upgrade request.  WEBSOCKET_NEW: a new session owned by this
 * process; open gets the open packet text and *cursor the log position to
 * deliver from.  WEBSOCKET_UPGRADE: a polling session sid starts upgrading
 * (probe expected); *cursor is its polling cursor.  WEBSOCKET_REJECT: *code
 * is the Engine.IO error code and the request is refused (HTTP 400, body =
 * http_error_message(code)), or WEBSOCKET_FULL, or WEBSOCKET_BAD_HANDSHAKE.
 * Node's order: transport, Origin, then the sid (unknown: code 1) or, for a
 * new session, the method (code 2) and EIO (code 5); then the handshake. */
int websocket_accept(server *srv, const http_req *req, char sid[UTIL_ID_LEN + 1], buf *open,
                     uint64_t *cursor, int *code);
/* '2probe' arrived: held GETs get a noop from now on.  0 or <0. */
int websocket_probe(server *srv, const char *sid);
/* '5' arrived: the session now belongs to this process's WebSocket;
 * *cursor: where its delivery continues from.  0 or <0. */
int websocket_upgraded(server *srv, const char *sid, uint64_t *cursor);
/* The probing WebSocket went away before '5': back to polling. */
void websocket_upgrade_abort(server *srv, const char *sid);
/* One packet from a WebSocket session (not pongs).  Returns 0, a
 * SESSION_CLOSE_* reason (the front then calls websocket_closed), or <0
 * (STORE_NOTFOUND: the session was closed by the server; store_full(rc):
 * no room, nothing of the packet was kept). */
int websocket_packet(server *srv, const char *sid, const eio_packet *pk);
/* The WebSocket session is over: its sockets leave every room (or wait for
 * recovery) and the record is removed.  acked: what reached the client for
 * sure (the front's position at the last ping the client answered).  0,
 * STORE_NOTFOUND when it was gone already, or <0 when that could not be
 * written (the store full: try again later). */
int websocket_closed(server *srv, const char *sid, int reason, uint64_t acked);
/* Records, for connection state recovery, what reached the clients of n
 * WebSocket sessions (store_session.acked), in one transaction.  0 or <0. */
int websocket_acked(server *srv, const char (*sids)[UTIL_ID_LEN + 1], const uint64_t *acked,
                    size_t n);

#endif

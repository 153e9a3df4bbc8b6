/* front_guard: looks at what clients send before libwebsockets parses it,
 * where lws 4.1 would answer otherwise than the Node server (or not at
 * all).  sio-front defines recv() (lws reads every client socket with it);
 * for the front's client connections, in the lws thread only, the bytes go
 * through a small state machine first:
 *   - a request head is read whole (at most FGUARD_HEAD_MAX bytes) before
 *     lws sees it: longer ones get Node's 431; an Upgrade other than
 *     websocket with "Connection: upgrade" gets Node's answer (Engine.IO's
 *     checks, then ws's 400 "Invalid Upgrade header"), without it the header
 *     is renamed so lws serves a plain request; "%00" and malformed
 *     %-escapes in the request target (which lws drops or forbids) are
 *     rewritten in place to characters that decode to no valid value;
 *   - request bodies with a Content-Length are skipped to the next head;
 *   - after an Upgrade: websocket head, WebSocket frame headers are checked
 *     as Node's ws checks them, before any payload is waited for: an
 *     unmasked frame, reserved bits or opcodes, a continuation without a
 *     message or a new message inside a fragmented one, a fragmented or
 *     longer than 125 bytes control frame, a close frame with a 1-byte
 *     payload are protocol errors (1002); a
 *     frame or message longer than max_http_buffer_size is 1009 at once.
 *     lws is handed the bytes before the bad frame; the connection is then
 *     closed with the code by the front (fguard_flush). */
#ifndef SIO_FRONT_GUARD_H
#define SIO_FRONT_GUARD_H

#include <stddef.h>

#include "server/server.h"

#define FGUARD_HEAD_MAX 16384 /* bytes of a request head, Node's default limit */

/* Starts guarding in the calling thread (the lws loop).  srv is borrowed
 * (max_http_buffer_size, and Engine.IO's checks of refused upgrades);
 * deflate: permessage-deflate is offered (RSV1 allowed).  0 or -ENOMEM. */
int fguard_init(server *srv, int deflate);
void fguard_free(void);
/* A client connection on fd begins (any earlier state of fd is dropped). */
void fguard_open(int fd);
/* The connection on fd is gone. */
void fguard_close(int fd);
/* The WebSocket on fd is established: owner is what fguard_flush hands
 * back for it. */
void fguard_attach(int fd, void *owner);
/* For each established WebSocket whose client broke the framing since the
 * last call: cb(owner, close code), once. */
void fguard_flush(void (*cb)(void *owner, int code));

#endif

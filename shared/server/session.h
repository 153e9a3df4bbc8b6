/* session: Engine.IO v4 sessions kept in the store, so that any worker of
 * any process can serve any request of any session (no sticky sessions).
 *
 * It owns what every transport shares of a session's life: creating it
 * (with the handshake record handlers see), its deadlines (ping timeout,
 * connect timeout: wall-clock times in the record, checked lazily by every
 * request and by stated's reaper, so no process needs a timer per session),
 * the client's Engine.IO packets (pong, close, messages, which go up to the
 * Socket.IO layer) and closing it (its sockets leave every room).  The
 * transports are server/polling.h and server/websocket.h. */
#ifndef SIO_SESSION_H
#define SIO_SESSION_H

#include <stdint.h>

#include "base/util.h"
#include "proto/eio_parser.h"
#include "server/http.h"
#include "server/server.h"
#include "store/store.h"

/* Creates a session for the request that opened it (transport STORE_T_*):
 * fills sid and *cursor (the log position its delivery starts after).
 * -EBUSY when max_sessions are open, else 0 or a store error. */
int session_create(server *srv, const http_req *req, int transport, char sid[UTIL_ID_LEN + 1],
                   uint64_t *cursor);

/* The close reason a polling session has reached at now (ping timeout,
 * connect timeout), or 0. */
int session_expired(const server *srv, const store_session *s, int64_t now);
/* When session_expired will say so. */
int64_t session_expiry(const server *srv, const store_session *s);
/* When a held GET must look again: its expiry, or the next ping. */
int64_t session_deadline(const server *srv, const store_session *s);
/* 1 while the process recorded as holding the session's GET exists. */
int session_holder_alive(const store_session *s);

/* Applies one client packet to session s inside write transaction t (pong,
 * close, message -> the Socket.IO layer, or the inbox for a bare Engine.IO
 * session).  Returns 0, a SESSION_CLOSE_* reason when the session must
 * close, or a negative store error.  The caller stores s. */
int session_packet(server *srv, store_txn *t, const char *sid, store_session *s,
                   const eio_packet *pk, uint64_t *seq);

/* Closes a session inside a write transaction: marks it closed (a held GET
 * will answer it), removes its sockets from every room and stores s. */
int session_close(store_txn *t, const char *sid, store_session *s, int reason);

#endif

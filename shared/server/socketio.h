/* socketio: the Socket.IO v5 server layer, on top of Engine.IO sessions.
 * Like the Node server's Client + Namespace + Socket: it turns client
 * messages into namespace connections (CONNECT, with the configured
 * namespaces and patterns), disconnections, events and acks; it creates
 * sockets (a random id, distinct from the Engine.IO sid, joined to the room
 * of its own id); and it encodes server packets once into one log record
 * (store/logrec.h).  Events and acks go to the server's event hook
 * (plugins) and else to the inbox (store/inbox.h) for the handlers.
 *
 * It knows nothing of transports: a session's packets come from
 * server/session.c.  Everything runs inside the caller's write
 * transaction. */
#ifndef SIO_SOCKETIO_H
#define SIO_SOCKETIO_H

#include <stdint.h>

#include "proto/sio_parser.h"
#include "server/server.h"
#include "store/logrec.h"

#define SOCKETIO_MAX_NSP_PER_SESSION 64

/* One client message (an Engine.IO message packet) for session sid, whose
 * record s the caller stores afterwards.  Returns 0, or a SESSION_CLOSE_*
 * reason when the session must close, or a negative store error.  *seq is
 * raised to the last log seq written. */
int socketio_on_message(server *srv, store_txn *t, const char *sid, store_session *s,
                        const uint8_t *data, size_t len, int binary, uint64_t *seq);

/* Encodes pkt once and appends it for every socket `to` reaches.  With
 * connection_state_recovery, an event without an ack that is not volatile
 * gets its offset (its seq, as a string) as its last argument, as Node
 * sends it, and LOGREC_F_OFFSET: recovery replays it (pkt->data gains and
 * loses the offset during the call). */
int socketio_emit(server *srv, store_txn *t, const bcast *to, const sio_packet *pkt, uint64_t *seq);
/* Encodes pkt and appends it for one session. */
int socketio_send(store_txn *t, const char *sid, const sio_packet *pkt, uint64_t *seq);

/* Removes a socket (it leaves every room).  With notify_client, the client
 * is told first with a DISCONNECT packet for its namespace.  Application
 * logic gets a "disconnect" event with reason. */
int socketio_remove(store_txn *t, const store_socket *s, int notify_client, const char *reason,
                    uint64_t *seq);
/* Removes every socket of a session (the session is closing for
 * close_reason, a SESSION_CLOSE_*): sockets that can be recovered are
 * detached instead, unless the reason is a protocol violation; acked is
 * the session's (store_session.acked). */
int socketio_session_drop(store_txn *t, const char *sid, int close_reason, uint64_t acked);

/* Completes a CONNECT: recovers the socket of auth's {pid, offset} when it
 * can (connection state recovery: same id, rooms and data, and the events
 * it missed), else creates the socket (id, or a fresh one when NULL), joins
 * it to its own room, answers `40[/nsp,]{"sid":id[,"pid":pid]}` and appends
 * a "connection" event (with "recovered":true for a recovered socket).
 * auth/data (may be NULL) are kept as the socket's data.  Nothing happens
 * when the session is gone or already has that namespace; past
 * SOCKETIO_MAX_NSP_PER_SESSION it is refused ("Too many namespaces"). */
int socketio_accept(server *srv, store_txn *t, const char *sid, const char *nsp, const char *id,
                    const cJSON *auth, const cJSON *data, uint64_t *seq);
/* Refuses a CONNECT: CONNECT_ERROR {"message":message,"data":data}. */
int socketio_refuse(store_txn *t, const char *sid, const char *nsp, const char *message,
                    const cJSON *data, uint64_t *seq);
/* The Node name of why a session ended, for "disconnect" events. */
const char *socketio_disconnect_reason(int session_close_reason);

#endif

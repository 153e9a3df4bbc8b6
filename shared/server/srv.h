/* srv: the Socket.IO v5 server layer, on top of engine sessions.  Like the
 * Node server's Client + Namespace + Socket: it turns client messages into
 * namespace connections (CONNECT, with the configured namespaces and
 * patterns), disconnections and events; it creates sockets (a random id,
 * distinct from the Engine.IO sid, joined to the room of its own id); and it
 * encodes server packets once and hands them to the adapter.
 *
 * Everything runs inside the caller's write transaction. */
#ifndef SIO_SRV_H
#define SIO_SRV_H

#include <stdint.h>

#include "store/adapter.h"
#include "server/engine.h"
#include "proto/sio_parser.h"

#define SRV_MAX_NSP_PER_SESSION 64

/* One client message (an Engine.IO message packet) for session sid.
 * Returns 0, or an ENGINE_CLOSE_* reason when the session must close, or a
 * negative store error.  *seq is raised to the last log seq written. */
int srv_on_message(engine *e, store_txn *t, const char *sid, store_session *s,
                   const uint8_t *data, size_t len, int binary, uint64_t *seq);

/* Encodes pkt once and appends it for every socket `to` reaches. */
int srv_emit(engine *e, store_txn *t, const bcast *to, const sio_packet *pkt, uint64_t *seq);
/* Encodes pkt and appends it for one session. */
int srv_send(engine *e, store_txn *t, const char *sid, const sio_packet *pkt, uint64_t *seq);

/* Removes a socket (it leaves every room).  With notify_client, the client
 * is told first with a DISCONNECT packet for its namespace.  Application
 * logic gets a "disconnect" event with reason. */
int srv_socket_remove(engine *e, store_txn *t, const store_socket *s, int notify_client,
                      const char *reason, uint64_t *seq);
/* Removes every socket of a session (the session is closing). */
int srv_session_drop(engine *e, store_txn *t, const char *sid, const char *reason);

/* Completes a CONNECT: creates the socket (id, or a fresh one when NULL),
 * joins it to its own room, answers `40[/nsp,]{"sid":id}` and appends a
 * "connection" event.  auth/data (may be NULL) are kept as the socket's data.
 * Nothing happens when the session is gone or already has that namespace. */
int srv_accept(engine *e, store_txn *t, const char *sid, const char *nsp, const char *id,
               const cJSON *auth, const cJSON *data, uint64_t *seq);
/* Refuses a CONNECT: CONNECT_ERROR {"message":message,"data":data}. */
int srv_refuse(engine *e, store_txn *t, const char *sid, const char *nsp, const char *message,
               const cJSON *data, uint64_t *seq);
/* The Node name of why a session ended, for "disconnect" events. */
const char *srv_disconnect_reason(int engine_close_reason);

#endif

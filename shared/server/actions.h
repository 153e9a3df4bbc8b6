/* actions: the server-side actions of Socket.IO (emit, join, leave,
 * disconnect, ack, accept/refuse a connection, send on a bare Engine.IO
 * session), for every caller that is not a client: sioctl, the handler
 * dispatcher that applies what handler processes answer, and plugins.  One
 * implementation: each builds an actions_target and arguments and calls
 * these, inside its own write transaction.  A new server-side action goes
 * here (and in its JSON form below).
 *
 * The JSON form of an action, as a handler writes it (one object per line;
 * see README "Handlers"):
 *   {"action":"emit","event":E,"args":[...], "nsp"?, "to"?:[...],
 *    "except"?:[...], "socket"?:ID, "broadcast"?:bool, "local"?:bool,
 *    "volatile"?:bool}
 *   {"action":"join"|"leave","rooms":[...], "nsp"?,"to"?,"except"?,"socket"?}
 *   {"action":"disconnect", "close"?:bool, "nsp"?,"to"?,"except"?,"socket"?}
 *   {"action":"ack","socket":ID,"id":N,"args":[...]}
 *   {"action":"ack","serverSide":true,"id":N,"args":[...]}   (a serverSideEmit)
 *   {"action":"accept","socket":ID,"sid":SID,"nsp":NS,"auth"?,"data"?}
 *   {"action":"refuse","sid":SID,"nsp":NS,"message":M,"data"?}
 *   {"action":"send","sid":SID,"data":STRING or {"$binary":...}}
 * "socket" is the socket the action is about (the handler's own socket):
 * with no "to", emit/join/leave/disconnect act on it; "broadcast" means
 * everyone targeted except it (socket.broadcast). */
#ifndef SIO_ACTIONS_H
#define SIO_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/server.h"

#define ACTIONS_MAX_TARGETS 256

typedef struct actions_target {
    const char *nsp;      /* NULL: the namespace of `self` or of a socket id in to, else "/" */
    const char *to[ACTIONS_MAX_TARGETS];
    size_t nto;
    const char *except[ACTIONS_MAX_TARGETS + 1];
    size_t nexcept;
    const char *self;     /* the acting socket, or NULL */
    int broadcast;        /* exclude self */
    int everyone;         /* no `to` means the whole namespace even with self */
    int local;            /* this node only: not published to the cluster */
    int is_volatile;      /* may be lost: never replayed by connection state recovery */
} actions_target;

/* Every action returns 0, ACTIONS_EUSAGE (a problem with the request: err
 * says what), or a negative store error.  *seq gets the last log seq
 * written (pass it to server_notify after the commit). */
#define ACTIONS_EUSAGE 1
/* A per-socket limit refuses the action (a join past max_rooms_per_socket):
 * err names the socket; nothing was written. */
#define ACTIONS_ELIMIT 2

/* emit: ack_id >= 0 asks the clients for an ack with that id (such an
 * emit stays on this node: the cluster collects acks with its own request);
 * *count gets the number of sockets targeted now (may be NULL). */
int actions_emit(server *srv, store_txn *t, const actions_target *to, const char *event,
                 const cJSON *args, long long ack_id, uint64_t *seq, size_t *count, char *err,
                 size_t errlen);
int actions_join(server *srv, store_txn *t, const actions_target *to, const char *const *rooms,
                 size_t nrooms, int leave, size_t *count, char *err, size_t errlen);
int actions_disconnect(server *srv, store_txn *t, const actions_target *to, int close,
                       uint64_t *seq, size_t *count, char *err, size_t errlen);
int actions_ack(store_txn *t, const char *socket_id, long long ack_id, const cJSON *args,
                uint64_t *seq, char *err, size_t errlen);
/* Answers a serverSideEmit of another server (the "ack" of its
 * serverSideEmit inbox record): a serverSideAck record the cluster bridge
 * sends on.  Only the first argument travels (as in Node). */
int actions_server_ack(store_txn *t, long long ack_id, const cJSON *args, char *err, size_t errlen);
int actions_send(store_txn *t, const char *sid, const cJSON *data, uint64_t *seq, char *err,
                 size_t errlen);
/* A fresh ack id, unique in this store. */
int actions_next_ack_id(store_txn *t, long long *id);
/* The sockets an actions_target reaches now, like fetchSockets() (not the
 * detached ones that wait for connection state recovery). */
int actions_sockets(server *srv, store_txn *t, const actions_target *to,
                    int (*cb)(void *arg, const store_socket *s), void *arg, char *err, size_t errlen);

/* Applies one action in its JSON form (above).  self_socket, when not NULL,
 * is the default "socket".  0, ACTIONS_EUSAGE or <0. */
int actions_apply_json(server *srv, store_txn *t, const cJSON *action, const char *self_socket,
                       uint64_t *seq, char *err, size_t errlen);

/* ARG on a command line: JSON when it parses, else a plain string; text that
 * starts like JSON but does not parse is an error (NULL, err set). */
cJSON *actions_parse_arg(const char *arg, char *err, size_t errlen);

#endif

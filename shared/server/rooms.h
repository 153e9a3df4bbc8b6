/* rooms: which sockets are in which rooms, as the Node server's in-memory
 * adapter keeps them (rooms -> sids, sid -> rooms), but in the store so that
 * every process sees the same: join, leave, and the sockets a broadcast
 * reaches now (fetchSockets, socketsJoin, disconnectSockets).  A socket's
 * own id is a room it joins when it connects.
 *
 * A join records the log head at the time: readers deliver a broadcast to
 * a member only when it was written after the join (server/reader.h). */
#ifndef SIO_ROOMS_H
#define SIO_ROOMS_H

#include "store/logrec.h"
#include "store/store.h"

/* Calls cb for each socket that a broadcast `to` would reach now (every
 * socket once, after collecting them all: cb may change rooms and
 * sockets); with `detached`, also those that wait for connection state
 * recovery (they keep their rooms).  A non-zero return from cb stops the
 * walk and is returned. */
int rooms_sockets(store_txn *t, const bcast *to, int detached,
                  int (*cb)(void *arg, const store_socket *s), void *arg);
/* Room membership for one socket; join uses the current log head as the
 * join sequence.  Room names: 1..STORE_ROOM_MAX bytes.  Leaving a room one
 * is not in is not an error. */
int rooms_join(store_txn *t, const store_socket *s, const char *room);
int rooms_leave(store_txn *t, const store_socket *s, const char *room);
/* 1 when room (len bytes) is a socket's own room (its id, a socket that
 * exists), which listings leave out, as Node's adapter does not. */
int rooms_is_own(store_txn *t, const char *room, size_t len);

#endif

/* wire: the messages of the Socket.IO Redis adapter (@socket.io/redis-adapter
 * 8.x) and emitter (@socket.io/redis-emitter 5.x), exactly as they travel
 * on Redis pub/sub, so that our nodes, Node servers and every emitter form
 * one cluster.  Pure: bytes in, values out.
 *
 * Channels (PREFIX is the adapter's `key`, "socket.io" by default):
 *   PREFIX#NSP#          broadcasts to a namespace (several rooms or none)
 *   PREFIX#NSP#ROOM#     broadcasts to exactly one room
 *   PREFIX-request#NSP#  requests between servers (every server subscribes:
 *                        PUBSUB NUMSUB of it is the number of servers)
 *   PREFIX-response#NSP# [UID#]  their answers
 * A broadcast is msgpack [uid, {type, data, nsp}, {rooms, except, flags}];
 * the emitter's uid is "emitter".  Requests and responses are JSON, except
 * BROADCAST and BROADCAST_ACK which are msgpack (a message whose first byte
 * is '{' is JSON).  Binary arguments are msgpack bin, and
 * {"$binary":"<base64>"} markers in our JSON values (proto/mpack.h). */
#ifndef SIO_WIRE_H
#define SIO_WIRE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "store/logrec.h"

enum wire_type {
    WIRE_SOCKETS = 0,
    WIRE_ALL_ROOMS = 1,
    WIRE_REMOTE_JOIN = 2,
    WIRE_REMOTE_LEAVE = 3,
    WIRE_REMOTE_DISCONNECT = 4,
    WIRE_REMOTE_FETCH = 5,
    WIRE_SERVER_SIDE_EMIT = 6,
    WIRE_BROADCAST = 7,
    WIRE_BROADCAST_CLIENT_COUNT = 8,
    WIRE_BROADCAST_ACK = 9,
};

enum { WIRE_CH_BROADCAST = 1, WIRE_CH_REQUEST = 2, WIRE_CH_RESPONSE = 3 };

/* Appends a channel name to out: kind WIRE_CH_*, the namespace, and an
 * optional last part (the room of a broadcast, the uid of a response).
 * 0 or -ENOMEM. */
int wire_channel(buf *out, const char *prefix, int kind, const char *nsp, const char *last);
/* The namespace of a request channel ("PREFIX-request#NSP#") into nsp
 * (size n).  0 or -EINVAL. */
int wire_request_nsp(const char *prefix, const char *ch, size_t len, char *nsp, size_t n);
/* For a broadcast received on channel ch for namespace nsp: 0 when ch is
 * not a broadcast channel of nsp, 1 for the namespace channel, 2 for a room
 * channel (the room into room, size n). */
int wire_broadcast_room(const char *prefix, const char *nsp, const char *ch, size_t len,
                        char *room, size_t n);

/* ---- broadcasts ---------------------------------------------------------------------- */

/* The adapter message for a broadcast record of the packet log (the event
 * packet decoded from its frames: proto/sio_parser.h), appended to out.
 * *channel gets the channel to publish on.  -EINVAL when the record is not
 * a broadcast of an event; 0 or -ENOMEM. */
int wire_broadcast_encode(buf *out, buf *channel, const char *prefix, const char *uid,
                          const logrec *r);

/* A broadcast as received.  Pointers borrow msg, which the struct owns. */
typedef struct wire_bcast {
    cJSON *msg;
    const char *uid;
    const char *nsp;
    cJSON *data;                /* [event, ...args], binary as markers */
    const char **rooms, **except;
    size_t nrooms, nexcept;
    int local, volatile_;       /* flags.local, flags.volatile */
} wire_bcast;

/* 0, or -EINVAL when the message is not a well-formed event broadcast (a
 * wrong shape, a name too long, too many rooms). */
int wire_broadcast_decode(const void *data, size_t len, wire_bcast *out);
void wire_bcast_clear(wire_bcast *b);

/* ---- requests and responses --------------------------------------------------------- */

/* A request or response: JSON when it starts with '{', else msgpack.  A new
 * object (the caller frees it), or NULL when malformed. */
cJSON *wire_decode(const void *data, size_t len);
/* The rooms of a request's "opts" ({rooms, except}) as arrays of strings
 * borrowed from it (the arrays are malloc'ed: free them); -EINVAL when they
 * are not arrays of room names. */
int wire_opts(const cJSON *opts, const char ***rooms, size_t *nrooms, const char ***except,
              size_t *nexcept);

#endif

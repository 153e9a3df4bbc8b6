/* bridge: a node's link to the cluster, a thread of stated.  With
 * `redis_url` configured it makes this node one server of a Socket.IO
 * cluster on Redis, in the wire format of @socket.io/redis-adapter
 * (cluster/wire.h), beside Node servers and emitters:
 *
 *   - outbound: it reads the packet log with its own cursor (READER_BRIDGE)
 *     and publishes every broadcast that is not LOGREC_F_LOCAL (this node
 *     only) or LOGREC_F_REMOTE (came from the cluster), pipelined: a
 *     producer never waits for Redis;
 *   - inbound: it PSUBSCRIBEs PREFIX#* and appends every broadcast of
 *     another server to the packet log (marked LOGREC_F_REMOTE), in one
 *     transaction per batch;
 *   - requests: it answers the adapter's requests on PREFIX-request#NSP#
 *     (fetchSockets, allRooms, socketsJoin/Leave, disconnectSockets,
 *     serverSideEmit, broadcasts with acks), reading client acks and
 *     handlers' answers from the inbox (READER_BRIDGE_INBOX).
 *
 * Redis going away never stops local delivery: the bridge logs each change
 * of state once, reconnects with backoff and resubscribes; what is
 * published while it is down does not reach other servers (pub/sub).  Its
 * state is in the store's meta "cluster" (JSON: state, uid, url, servers,
 * since, error) for `sioctl status`, and the URL with its password in
 * "cluster_url" for `sioctl --cluster`. */
#ifndef SIO_BRIDGE_H
#define SIO_BRIDGE_H

#include "server/server.h"

typedef struct bridge bridge;

/* Starts the bridge thread when srv->cfg.redis_url is set (else *out is
 * NULL).  srv must outlive bridge_stop.  0 or <0 (-errno). */
int bridge_start(server *srv, bridge **out);
/* Stops it: closes the Redis connections and saves its positions.  NULL is
 * safe. */
void bridge_stop(bridge *b);

#endif

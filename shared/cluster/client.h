/* client: asking the whole cluster, for tools (`sioctl --cluster`).  A
 * short-lived pair of Redis connections publishes one request of the
 * adapter's protocol (cluster/wire.h) as this node's server (the uid of its
 * bridge, so that "every other server" excludes this node exactly where the
 * Node adapter excludes itself) and collects the answers of every server,
 * this node's bridge included.  Blocking, with a deadline. */
#ifndef SIO_CLIENT_H
#define SIO_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "server/server.h"

typedef struct cluster_client cluster_client;

/* Connects to the cluster this node is in (cfg.redis_url, else the URL its
 * bridge publishes) and subscribes to nsp's response channels.  0, or -1
 * with a sentence in err: no cluster configured, this node's bridge is not
 * connected, Redis cannot be reached. */
int cluster_open(server *srv, const char *nsp, cluster_client **out, char *err, size_t errlen);
void cluster_close(cluster_client *c);
/* This node's server id. */
const char *cluster_uid(const cluster_client *c);
/* The servers of the cluster now (PUBSUB NUMSUB of nsp's request channel,
 * the count the Node adapter uses), or -1; names (may be NULL) gets the ids
 * of the servers that announce one (a JSON array of strings; free it). */
long cluster_servers(cluster_client *c, cJSON **names);

/* Publishes req (a JSON object: "uid" and a fresh "requestId" are added;
 * sent as msgpack when msgpack is set) on nsp's request channel.  Then,
 * unless done is NULL, hands every response with that requestId to done
 * until done returns 1 or timeout_ms pass.  Returns 0 when done said so,
 * 1 on timeout, -1 when Redis failed (err says why). */
int cluster_ask(cluster_client *c, cJSON *req, int msgpack,
                int (*done)(void *arg, const cJSON *response), void *arg, int timeout_ms,
                char *err, size_t errlen);

#endif

/* rconn: opening a connection to the cluster's Redis (hiredis): TCP or a
 * Unix socket, with AUTH and SELECT as the URL says (base/redis_url.h), and
 * switching it to non-blocking for an event loop. */
#ifndef SIO_RCONN_H
#define SIO_RCONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "base/redis_url.h"

/* Connects (blocking, at most timeout_ms for the connect and each reply),
 * authenticates and selects the database.  0 and *out (redisFree it), or
 * -1 with the reason in err. */
int rconn_open(const redis_url *u, int timeout_ms, redisContext **out, char *err, size_t errlen);
/* From now on reads and writes never block: use redisBufferRead,
 * redisBufferWrite and redisGetReplyFromReader when poll() says so. */
int rconn_nonblock(redisContext *c);

#endif

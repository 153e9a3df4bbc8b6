/* rconn: connections to Redis (see rconn.h). */
#include "cluster/rconn.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

/* Runs one command; 0 when its reply is not an error, else -1 with err. */
static int command(redisContext *c, char *err, size_t n, const char *what, int argc,
                   const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) {
        snprintf(err, n, "%s: %s", what, c->errstr[0] ? c->errstr : "no reply");
        return -1;
    }
    int bad = r->type == REDIS_REPLY_ERROR;
    if (bad) snprintf(err, n, "%s: %.*s", what, (int)r->len, r->str);
    freeReplyObject(r);
    return bad ? -1 : 0;
}

int rconn_open(const redis_url *u, int timeout_ms, redisContext **out, char *err, size_t errlen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    if (u->path[0] == 0) redisEnableKeepAlive(c);
    char db[24];
    snprintf(db, sizeof db, "%ld", u->db);
    const char *auth[] = {"AUTH", u->user, u->password}, *select[] = {"SELECT", db};
    int rc = 0;
    if (u->has_password)
        rc = u->user[0] ? command(c, err, errlen, "AUTH", 3, auth)
                        : command(c, err, errlen, "AUTH", 2, (const char *[]){"AUTH", u->password});
    if (!rc && u->db) rc = command(c, err, errlen, "SELECT", 2, select);
    if (rc) {
        redisFree(c);
        return -1;
    }
    *out = c;
    return 0;
}

int rconn_nonblock(redisContext *c) {
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK)) return -1;
    c->flags &= ~REDIS_BLOCK;
    return 0;
}

/* redis_url: where a Redis server is, from the URL forms the Redis tools
 * use:
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]     (PORT 6379, DB 0)
 *   unix://[[USER]:PASSWORD@]/PATH[?db=DB]
 * HOST may be an [IPv6] literal; USER and PASSWORD may be percent-encoded.
 * Pure parsing: no I/O. */
#ifndef SIO_REDIS_URL_H
#define SIO_REDIS_URL_H

#include <stddef.h>

typedef struct redis_url {
    char host[256];  /* empty for a Unix socket */
    int port;
    char path[256];  /* the Unix socket, or empty */
    char user[128];  /* empty: none */
    char password[256];
    int has_password;
    long db;
} redis_url;

/* 0, or -EINVAL with a reason in err. */
int redis_url_parse(const char *url, redis_url *out, char *err, size_t errlen);
/* The URL for logs: the password replaced by "***". */
const char *redis_url_text(const redis_url *u, char *out, size_t n);

#endif

/* cfg: the configuration file and its defaults.
 *
 * Format: lines of `key = value`; `#` starts a comment; a `[namespace NAME]`
 * line opens a section for a namespace that clients may connect to.  NAME is
 * an exact name starting with '/', or '~' followed by a POSIX extended regular
 * expression matched against the whole name (the Node server's dynamic
 * namespaces).  `/` always exists.  Keys before the first section are server
 * options (see cfg_keys in cfg.c and the README for the list and limits).
 * An `[admin]` section turns on the Admin UI namespace (cfg_admin). */
#ifndef SIO_CFG_H
#define SIO_CFG_H

#include <regex.h>
#include <stddef.h>

typedef struct cfg_kv {
    char *key;
    char *value;
    int line;         /* of the config text, for messages */
} cfg_kv;

typedef struct cfg_nsp {
    char *name;       /* exact name, or the pattern text without '~' */
    int is_pattern;
    regex_t re;       /* compiled when is_pattern */
    cfg_kv *kv;       /* the section's own settings */
    size_t nkv;
} cfg_nsp;

/* The [admin] section: the Admin UI protocol of @socket.io/admin-ui on a
 * namespace (stated/admin.h).  Without the section, enabled is 0 and no
 * admin namespace exists. */
typedef struct cfg_admin {
    int enabled;
    char *nsp;           /* `namespace`, "/admin" */
    int auth_none;       /* auth = none: anyone who reaches the namespace */
    char *username;      /* else both of these */
    char *password_hash; /* a bcrypt hash ($2a$, $2b$, $2y$), checked with crypt(3) */
    int development;     /* mode = development (default) | production */
    int readonly;        /* readonly = true: no emit/join/leave/disconnect from the UI */
    char *server_id;     /* server_id: the serverId reported, NULL = "HOSTNAME#PID" of stated */
    int line;            /* of the [admin] line, for messages */
} cfg_admin;

/* durability = fast | safe (store/store.h says what each costs). */
enum { CFG_DURABILITY_FAST = 0, CFG_DURABILITY_SAFE = 1 };

typedef struct cfg {
    long ping_interval;        /* ms */
    long ping_timeout;         /* ms */
    long connect_timeout;      /* ms */
    long upgrade_timeout;      /* ms */
    long http_timeout;         /* ms: sio-front's limit on a request head or body in transit */
    long max_http_buffer_size; /* bytes: POST body, WebSocket message, maxPayload */
    long max_sessions;         /* Engine.IO sessions held at once */
    long max_log_bytes;        /* packet log kept for readers that lag */
    long map_size_mb;          /* LMDB map size */
    long fcgi_threads;         /* worker threads of the FastCGI gateway (held polls need none) */
    long max_queue_bytes;      /* bytes queued for one WebSocket before it is dropped */
    long per_message_deflate;  /* 1: offer permessage-deflate (Node: perMessageDeflate) */
    long connection_state_recovery;  /* 1: connectionStateRecovery (server/socketio.h) */
    long max_disconnection_duration; /* ms a disconnected socket can be recovered */
    long recovery_skip_middlewares;  /* 1: a recovered socket skips the auth handler */
    long allow_request_timeout; /* ms the allow_request command may take (then: refused) */
    long max_rooms_per_socket; /* rooms one socket may be in (its own room included) */
    long max_queue_packets;    /* messages queued for one WebSocket before it is dropped */
    long max_handler_queue;    /* inbox records waiting for one socket's handlers */
    int durability;            /* CFG_DURABILITY_*: how stated opens the store */
    char *path;                /* "/socket.io/" */
    char *cors_origin;         /* allowed origins ("*", or a list: comma or space separated), NULL = none */
    char *trusted_proxies;     /* addresses/CIDRs whose X-Forwarded-For counts (base/netaddr.h), NULL = none */
    char *allow_request;       /* command run for each handshake (server/access.h), NULL = none */
    char *state_group;         /* group of the state directory and its files (stated), NULL = the directory's */
    char *engine_path;         /* bare Engine.IO endpoint, NULL = none */
    char *metrics_path;        /* Prometheus metrics page (server/metrics.h), NULL = none */
    char *redis_url;           /* the Redis cluster (base/redis_url.h), NULL = none */
    char *redis_prefix;        /* channel prefix, the adapter's `key` ("socket.io") */
    int allow_polling;         /* transports = polling,websocket (Node's option) */
    int allow_websocket;
    cfg_nsp engine;            /* its [engine] section (name = engine_path) */
    cfg_admin admin;           /* the [admin] section; its namespace is also in nsps */
    cfg_nsp *nsps;
    size_t nnsp;
    char *source;              /* file it came from, or NULL for defaults */
} cfg;

/* Fills c with the defaults (namespace "/" only). */
void cfg_defaults(cfg *c);
/* Parses text into c (which it first sets to defaults).  On error returns
 * -EINVAL and writes "line N: reason" into err. */
int cfg_parse(cfg *c, const char *text, size_t len, char *err, size_t errlen);
/* Reads and parses a file; -errno when it cannot be read. */
int cfg_load(cfg *c, const char *path, char *err, size_t errlen);
/* Sets redis_url (NULL or "" removes it), as $SIO_REDIS_URL does.  0, or
 * -EINVAL with the reason in err. */
int cfg_set_redis_url(cfg *c, const char *url, char *err, size_t errlen);
/* Loads $SIO_CONFIG (or path when not NULL) or the defaults when neither is
 * given.  Logs nothing; err explains failures. */
int cfg_load_default(cfg *c, const char *path, char *err, size_t errlen);
void cfg_free(cfg *c);

/* The namespace section that admits name: an exact name first, then the
 * patterns in file order.  NULL when the namespace does not exist. */
const cfg_nsp *cfg_nsp_find(const cfg *c, const char *name);
/* 1 when name is the admin namespace of an [admin] section. */
int cfg_is_admin_nsp(const cfg *c, const char *name);
/* The value of key in a namespace section, or NULL. */
const char *cfg_nsp_get(const cfg_nsp *n, const char *key);

#endif

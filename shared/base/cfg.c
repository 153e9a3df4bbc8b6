/* cfg: configuration parsing and lookup (see cfg.h). */
#include "base/cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/netaddr.h"
#include "base/redis_url.h"

typedef struct cfg_key {
    const char *name;
    size_t offset;
    long min, max;
} cfg_key;

#define K(n, f, lo, hi) {n, offsetof(cfg, f), lo, hi}
static const cfg_key cfg_keys[] = {
    K("ping_interval", ping_interval, 50, 3600000),
    K("ping_timeout", ping_timeout, 50, 3600000),
    K("connect_timeout", connect_timeout, 50, 3600000),
    K("upgrade_timeout", upgrade_timeout, 50, 3600000),
    K("http_timeout", http_timeout, 1000, 3600000),
    K("max_http_buffer_size", max_http_buffer_size, 1024, 100000000),
    K("max_sessions", max_sessions, 1, 10000000),
    K("max_log_bytes", max_log_bytes, 65536, 1L << 40),
    K("map_size_mb", map_size_mb, 16, 1L << 20),
    K("fcgi_threads", fcgi_threads, 1, 10000),
    K("max_queue_bytes", max_queue_bytes, 1024, 1L << 40),
    K("per_message_deflate", per_message_deflate, 0, 1),
    K("connection_state_recovery", connection_state_recovery, 0, 1),
    K("max_disconnection_duration", max_disconnection_duration, 0, 86400000),
    K("recovery_skip_middlewares", recovery_skip_middlewares, 0, 1),
    K("allow_request_timeout", allow_request_timeout, 1, 60000),
    K("max_rooms_per_socket", max_rooms_per_socket, 1, 10000000),
    K("max_queue_packets", max_queue_packets, 1, 100000000),
    K("max_handler_queue", max_handler_queue, 1, 1000000),
};
#undef K

/* Settings allowed inside a [namespace] / [engine] section. */
static const char *const cfg_nsp_keys[] = {"auth", "connection", "disconnect", "any", "process",
                                           "plugin", "timeout", NULL};
static const char *const cfg_engine_keys[] = {"message", "process", "timeout", NULL};

static int key_allowed(const char *const *keys, const char *key) {
    for (size_t i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key)) return 1;
    return 0;
}

static int nsp_key_allowed(const char *key) {
    if (!strncmp(key, "event.", 6) && key[6]) return 1;
    if (!strncmp(key, "server_event.", 13) && key[13]) return 1;
    return key_allowed(cfg_nsp_keys, key);
}

static char *xstrdup(const char *s) {
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

static void add_nsp(cfg *c, const char *name, int is_pattern) {
    cfg_nsp *n = realloc(c->nsps, (c->nnsp + 1) * sizeof *n);
    if (!n) abort();
    c->nsps = n;
    cfg_nsp *e = &c->nsps[c->nnsp++];
    memset(e, 0, sizeof *e);
    e->name = xstrdup(name);
    e->is_pattern = is_pattern;
}

void cfg_defaults(cfg *c) {
    memset(c, 0, sizeof *c);
    c->ping_interval = 25000;
    c->ping_timeout = 20000;
    c->connect_timeout = 45000;
    c->upgrade_timeout = 10000;
    c->http_timeout = 20000;
    c->max_http_buffer_size = 1000000;
    c->max_sessions = 100000;
    c->max_log_bytes = 256L << 20;
    c->map_size_mb = 4096;
    c->fcgi_threads = 8;
    c->max_queue_bytes = 4L << 20;
    c->per_message_deflate = 0;
    c->connection_state_recovery = 0;
    c->max_disconnection_duration = 120000;
    c->recovery_skip_middlewares = 1;
    c->allow_request_timeout = 2000;
    c->max_rooms_per_socket = 10000;
    c->max_queue_packets = 100000;
    c->max_handler_queue = 1000;
    c->path = xstrdup("/socket.io/");
    c->redis_prefix = xstrdup("socket.io");
    c->allow_polling = c->allow_websocket = 1;
    add_nsp(c, "/", 0);
}

static void nsp_free(cfg_nsp *n) {
    if (n->is_pattern) regfree(&n->re);
    for (size_t k = 0; k < n->nkv; k++) {
        free(n->kv[k].key);
        free(n->kv[k].value);
    }
    free(n->kv);
    free(n->name);
}

void cfg_free(cfg *c) {
    for (size_t i = 0; i < c->nnsp; i++) nsp_free(&c->nsps[i]);
    nsp_free(&c->engine);
    free(c->engine_path);
    free(c->metrics_path);
    free(c->nsps);
    free(c->path);
    free(c->cors_origin);
    free(c->trusted_proxies);
    free(c->allow_request);
    free(c->state_group);
    free(c->redis_url);
    free(c->redis_prefix);
    free(c->source);
    free(c->admin.nsp);
    free(c->admin.username);
    free(c->admin.password_hash);
    free(c->admin.server_id);
    memset(c, 0, sizeof *c);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = 0;
    return s;
}

static int fail(char *err, size_t errlen, int line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) snprintf(err, errlen, "line %d: %s", line, msg);
    return -EINVAL;
}

static int valid_nsp_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || s[0] != '/' || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == ',' || s[i] == 0x7f) return 0;
    return 1;
}

static int set_durability(cfg *c, const char *val, int line, char *err, size_t errlen) {
    if (!strcmp(val, "fast")) c->durability = CFG_DURABILITY_FAST;
    else if (!strcmp(val, "safe")) c->durability = CFG_DURABILITY_SAFE;
    else return fail(err, errlen, line, "durability must be fast or safe");
    return 0;
}

/* A string setting: "" removes it. */
static int set_string(char **slot, const char *val) {
    free(*slot);
    *slot = *val ? xstrdup(val) : NULL;
    return 0;
}

static int set_server_key(cfg *c, const char *key, const char *val, int line, char *err,
                          size_t errlen) {
    if (!strcmp(key, "path")) {
        size_t n = strlen(val);
        if (n < 2 || val[0] != '/' || val[n - 1] != '/')
            return fail(err, errlen, line, "path must start and end with '/'");
        free(c->path);
        c->path = xstrdup(val);
        return 0;
    }
    if (!strcmp(key, "transports")) {
        int p = 0, w = 0;
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%s", val);
        for (char *save = NULL, *tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            if (!strcmp(tok, "polling")) p = 1;
            else if (!strcmp(tok, "websocket")) w = 1;
            else return fail(err, errlen, line, "transports: unknown transport '%s'", tok);
        }
        if (!p && !w) return fail(err, errlen, line, "transports: name polling and/or websocket");
        c->allow_polling = p;
        c->allow_websocket = w;
        return 0;
    }
    if (!strcmp(key, "engine_path")) {
        size_t n = strlen(val);
        if (n < 2 || val[0] != '/' || val[n - 1] != '/')
            return fail(err, errlen, line, "engine_path must start and end with '/'");
        free(c->engine_path);
        c->engine_path = xstrdup(val);
        return 0;
    }
    if (!strcmp(key, "metrics_path")) {
        size_t n = strlen(val);
        if (n < 2 || n > 256 || val[0] != '/' || strpbrk(val, "?# \t"))
            return fail(err, errlen, line, "metrics_path must start with '/' (e.g. /metrics), up to 256 characters, no '?' or '#'");
        free(c->metrics_path);
        c->metrics_path = xstrdup(val);
        return 0;
    }
    if (!strcmp(key, "redis_url")) {
        char why[200];
        if (cfg_set_redis_url(c, val, why, sizeof why)) return fail(err, errlen, line, "redis_url: %s", why);
        return 0;
    }
    if (!strcmp(key, "redis_prefix")) {
        for (const char *p = val; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == '#' || *p == '*' || *p == 0x7f)
                return fail(err, errlen, line, "redis_prefix: no spaces, '#' or '*'");
        if (!*val || strlen(val) > 128) return fail(err, errlen, line, "redis_prefix: 1 to 128 characters");
        free(c->redis_prefix);
        c->redis_prefix = xstrdup(val);
        return 0;
    }
    if (!strcmp(key, "durability")) return set_durability(c, val, line, err, errlen);
    if (!strcmp(key, "cors_origin")) return set_string(&c->cors_origin, val);
    if (!strcmp(key, "allow_request")) return set_string(&c->allow_request, val);
    if (!strcmp(key, "trusted_proxies")) {
        char why[200];
        if (netaddr_list_check(val, why, sizeof why)) return fail(err, errlen, line, "trusted_proxies: %s", why);
        return set_string(&c->trusted_proxies, val);
    }
    if (!strcmp(key, "state_group")) {
        if (strlen(val) > 64 || strpbrk(val, " \t:,")) return fail(err, errlen, line, "state_group: a group name or number");
        return set_string(&c->state_group, val);
    }
    for (size_t i = 0; i < sizeof cfg_keys / sizeof cfg_keys[0]; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (strcmp(k->name, key)) continue;
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < k->min || v > k->max)
            return fail(err, errlen, line, "%s must be an integer in [%ld, %ld]", key, k->min,
                        k->max);
        *(long *)((char *)c + k->offset) = v;
        return 0;
    }
    return fail(err, errlen, line, "unknown setting '%s'", key);
}

/* glibc's regcomp copies the tree of a repeated expression once per
 * repetition it must spell out ("a{1,100}" is 100 copies, "a+" is "aa*"),
 * so nested repetitions ("a++++++++", "((a{99}){99}){99}") cost memory and
 * time exponential in their depth.  The product of the repetition counts
 * bounds that cost (generously: sequential ones only add up), for one
 * pattern and for all of a config's patterns together (hundreds of
 * patterns just under the bound took seconds to compile). */
#define CFG_PATTERN_MAX 256
#define CFG_PATTERN_COST_MAX 10000
static double pattern_cost(const char *p) {
    double cost = 1;
    for (; *p && cost <= CFG_PATTERN_COST_MAX; p++) {
        if (*p == '+') {
            cost *= 2;
        } else if (*p == '{') {
            char *end;
            double lo = strtod(p + 1, &end), hi = lo; /* huge counts saturate, never overflow */
            if (*end == ',') hi = end[1] == '}' ? lo + 1 : strtod(end + 1, &end);
            double m = lo > hi ? lo : hi;
            cost *= (m > 0 ? m : 0) + 1;
        }
    }
    return cost;
}

/* The cost of the patterns c holds so far. */
static double patterns_cost(const cfg *c) {
    double sum = 0;
    for (size_t i = 0; i < c->nnsp; i++)
        if (c->nsps[i].is_pattern) sum += pattern_cost(c->nsps[i].name);
    return sum;
}

/* ---- [admin] ---------------------------------------------------------------- */

static int admin_bool(const char *val, int *out) {
    if (!strcmp(val, "true") || !strcmp(val, "1")) *out = 1;
    else if (!strcmp(val, "false") || !strcmp(val, "0")) *out = 0;
    else return -1;
    return 0;
}

/* A bcrypt hash as crypt(3) reads it: $2a$, $2b$ or $2y$, a two-digit cost
 * 04..31, '$', then 53 characters of bcrypt's base64. */
static int valid_bcrypt(const char *h) {
    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$' ||
        h[6] != '$')
        return 0;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9') return 0;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31) return 0;
    for (const char *p = h + 7; *p; p++)
        if (!strchr("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", *p)) return 0;
    return 1;
}

static int set_admin_key(cfg *c, const char *key, const char *val, int line, char *err,
                         size_t errlen) {
    cfg_admin *a = &c->admin;
    if (!strcmp(key, "namespace")) {
        if (!valid_nsp_name(val) || !strcmp(val, "/"))
            return fail(err, errlen, line, "admin namespace must start with '/', not be '/', no ',' (max 128 bytes)");
        return set_string(&a->nsp, val);
    }
    if (!strcmp(key, "auth")) {
        if (strcmp(val, "none")) return fail(err, errlen, line, "auth: the only value is none (else username and password_hash)");
        a->auth_none = 1;
        return 0;
    }
    if (!strcmp(key, "username")) {
        if (!*val || strlen(val) > 256) return fail(err, errlen, line, "username: 1 to 256 bytes");
        return set_string(&a->username, val);
    }
    if (!strcmp(key, "password_hash")) {
        if (!valid_bcrypt(val))
            return fail(err, errlen, line, "password_hash must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)");
        return set_string(&a->password_hash, val);
    }
    if (!strcmp(key, "mode")) {
        if (!strcmp(val, "development")) a->development = 1;
        else if (!strcmp(val, "production")) a->development = 0;
        else return fail(err, errlen, line, "mode must be development or production");
        return 0;
    }
    if (!strcmp(key, "readonly")) {
        if (admin_bool(val, &a->readonly)) return fail(err, errlen, line, "readonly must be true or false");
        return 0;
    }
    if (!strcmp(key, "server_id")) {
        if (!*val || strlen(val) > 128) return fail(err, errlen, line, "server_id: 1 to 128 bytes");
        return set_string(&a->server_id, val);
    }
    return fail(err, errlen, line, "unknown admin setting '%s'", key);
}

/* After the file: the [admin] section is complete, and its namespace exists
 * (as an exact namespace without handlers: stated's admin thread serves it). */
static int admin_finish(cfg *c, char *err, size_t errlen) {
    cfg_admin *a = &c->admin;
    if (!a->enabled) return 0;
    int line = a->line;
    if (!a->nsp) a->nsp = xstrdup("/admin");
    if (a->auth_none && (a->username || a->password_hash))
        return fail(err, errlen, line, "[admin]: auth = none, or username and password_hash, not both");
    if (!a->auth_none && (!a->username || !a->password_hash))
        return fail(err, errlen, line, "[admin]: set auth = none, or both username and password_hash");
    for (size_t i = 0; i < c->nnsp; i++)
        if (!c->nsps[i].is_pattern && !strcmp(c->nsps[i].name, a->nsp))
            return fail(err, errlen, line, "[namespace %s] is the admin namespace: its handlers would never run", a->nsp);
    add_nsp(c, a->nsp, 0);
    return 0;
}

int cfg_is_admin_nsp(const cfg *c, const char *name) {
    return c->admin.enabled && name && !strcmp(c->admin.nsp, name);
}

/* The section a line belongs to. */
enum { SECT_NSP = 0, SECT_ENGINE = 1, SECT_ADMIN = 2 };

/* A section line "[...]" (s is trimmed); *cur and *sect follow it. */
static int parse_section(cfg *c, char *s, int line, cfg_nsp **cur, int *sect, char *err,
                         size_t errlen) {
    char *close = strrchr(s, ']');
    if (!close || close[1]) return fail(err, errlen, line, "bad section line");
    *close = 0;
    char *inner = trim(s + 1);
    *sect = !strcmp(inner, "engine") ? SECT_ENGINE : !strcmp(inner, "admin") ? SECT_ADMIN : SECT_NSP;
    if (*sect == SECT_ENGINE) {
        *cur = &c->engine;
        return 0;
    }
    if (*sect == SECT_ADMIN) {
        if (c->admin.enabled) return fail(err, errlen, line, "a second [admin] section");
        c->admin.enabled = 1;
        c->admin.line = line;
        c->admin.development = 1; /* Node's default (NODE_ENV unset) */
        *cur = NULL;
        return 0;
    }
    if (strncmp(inner, "namespace", 9) || (inner[9] != ' ' && inner[9] != '\t'))
        return fail(err, errlen, line, "unknown section (expected [namespace NAME], [engine] or [admin])");
    char *name = trim(inner + 9);
    if (*name == '~') {
        if (strlen(name + 1) > CFG_PATTERN_MAX || pattern_cost(name + 1) > CFG_PATTERN_COST_MAX)
            return fail(err, errlen, line, "namespace pattern too long or too complex");
        if (patterns_cost(c) + pattern_cost(name + 1) > CFG_PATTERN_COST_MAX)
            return fail(err, errlen, line, "namespace patterns too complex together");
        add_nsp(c, name + 1, 1);
        *cur = &c->nsps[c->nnsp - 1];
        char full[512];
        snprintf(full, sizeof full, "^(%s)$", name + 1);
        if (regcomp(&(*cur)->re, full, REG_EXTENDED | REG_NOSUB)) {
            free((*cur)->name);
            c->nnsp--;
            return fail(err, errlen, line, "bad namespace pattern");
        }
        return 0;
    }
    if (!valid_nsp_name(name))
        return fail(err, errlen, line, "namespace must start with '/', no ',' (max 128 bytes)");
    *cur = NULL;
    for (size_t i = 0; i < c->nnsp; i++)
        if (!c->nsps[i].is_pattern && !strcmp(c->nsps[i].name, name)) *cur = &c->nsps[i];
    if (!*cur) {
        add_nsp(c, name, 0);
        *cur = &c->nsps[c->nnsp - 1];
    }
    return 0;
}

/* A "key = value" line of a section (cur, or sect SECT_ADMIN) or of the
 * server (cur NULL). */
static int parse_setting(cfg *c, char *s, int line, cfg_nsp *cur, int sect, char *err,
                         size_t errlen) {
    char *eq = strchr(s, '=');
    if (!eq) return fail(err, errlen, line, "expected key = value");
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key) return fail(err, errlen, line, "empty key");
    if (sect == SECT_ADMIN) return set_admin_key(c, key, val, line, err, errlen);
    if (!cur) return set_server_key(c, key, val, line, err, errlen);
    int in_engine = sect == SECT_ENGINE;
    if (in_engine ? !key_allowed(cfg_engine_keys, key) : !nsp_key_allowed(key))
        return fail(err, errlen, line, "unknown %s setting '%s'", in_engine ? "engine" : "namespace", key);
    if (!strcmp(key, "timeout") && (strtol(val, NULL, 10) < 1 || strtol(val, NULL, 10) > 3600000))
        return fail(err, errlen, line, "timeout must be an integer in [1, 3600000] ms");
    cfg_kv *kv = realloc(cur->kv, (cur->nkv + 1) * sizeof *kv);
    if (!kv) abort();
    cur->kv = kv;
    cur->kv[cur->nkv].key = xstrdup(key);
    cur->kv[cur->nkv].value = xstrdup(val);
    cur->kv[cur->nkv].line = line;
    cur->nkv++;
    return 0;
}

int cfg_parse(cfg *c, const char *text, size_t len, char *err, size_t errlen) {
    cfg_defaults(c);
    buf copy = BUF_INIT;
    if (buf_append(&copy, text, len)) abort();
    int line = 0, rc = 0, sect = SECT_NSP;
    cfg_nsp *cur = NULL;
    char *start = copy.data ? copy.data : "";
    while (start && rc == 0) {
        char *nl = strchr(start, '\n');
        if (nl) *nl = 0;
        line++;
        char *s = start;
        start = nl ? nl + 1 : NULL;
        char *hash = strchr(s, '#');
        if (hash && (hash == s || hash[-1] == ' ' || hash[-1] == '\t')) *hash = 0;
        s = trim(s);
        if (!*s) continue;
        if (*s == '[') rc = parse_section(c, s, line, &cur, &sect, err, errlen);
        else rc = parse_setting(c, s, line, cur, sect, err, errlen);
    }
    buf_free(&copy);
    if (!rc) rc = admin_finish(c, err, errlen);
    if (!rc && c->engine_path) {
        free(c->engine.name);
        c->engine.name = xstrdup(c->engine_path);
    }
    if (rc) cfg_free(c), cfg_defaults(c);
    return rc;
}

int cfg_set_redis_url(cfg *c, const char *url, char *err, size_t errlen) {
    redis_url u;
    if (url && *url && redis_url_parse(url, &u, err, errlen)) return -EINVAL;
    free(c->redis_url);
    c->redis_url = url && *url ? xstrdup(url) : NULL;
    return 0;
}

int cfg_load(cfg *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (err) snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        cfg_defaults(c);
        return -e;
    }
    buf b = BUF_INIT;
    b.limit = 1 << 20;
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if ((rc = buf_append(&b, chunk, n))) break;
    fclose(f);
    if (rc) {
        if (err) snprintf(err, errlen, "%s: file too large", path);
        buf_free(&b);
        cfg_defaults(c);
        return -EFBIG;
    }
    char perr[256] = "";
    rc = cfg_parse(c, b.data ? b.data : "", b.len, perr, sizeof perr);
    buf_free(&b);
    if (rc) {
        if (err) snprintf(err, errlen, "%s: %s", path, perr);
        return rc;
    }
    c->source = xstrdup(path);
    return 0;
}

int cfg_load_default(cfg *c, const char *path, char *err, size_t errlen) {
    if (!path || !*path) path = getenv("SIO_CONFIG");
    if (!path || !*path) {
        cfg_defaults(c);
        return 0;
    }
    return cfg_load(c, path, err, errlen);
}

const cfg_nsp *cfg_nsp_find(const cfg *c, const char *name) {
    for (size_t i = 0; i < c->nnsp; i++)
        if (!c->nsps[i].is_pattern && !strcmp(c->nsps[i].name, name)) return &c->nsps[i];
    for (size_t i = 0; i < c->nnsp; i++)
        if (c->nsps[i].is_pattern && regexec(&c->nsps[i].re, name, 0, NULL, 0) == 0)
            return &c->nsps[i];
    return NULL;
}

const char *cfg_nsp_get(const cfg_nsp *n, const char *key) {
    for (size_t i = 0; n && i < n->nkv; i++)
        if (!strcmp(n->kv[i].key, key)) return n->kv[i].value;
    return NULL;
}

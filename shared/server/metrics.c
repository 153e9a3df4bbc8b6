/* metrics: one snapshot of a stack and its two renderings (see metrics.h). */
#include "server/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/json.h"
#include "server/reader.h"
#include "server/rooms.h"

/* ---- collecting ----------------------------------------------------------- */

static metrics_nsp *nsp_of(metrics_snap *m, const char *name) {
    for (size_t i = 0; i < m->nnsp; i++)
        if (!strcmp(m->nsps[i].name, name)) return &m->nsps[i];
    if (util_grow(&m->nsps, &m->nsp_cap, m->nnsp, sizeof *m->nsps, 8)) return NULL;
    char *copy = strdup(name);
    if (!copy) return NULL;
    m->nsps[m->nnsp] = (metrics_nsp){copy, 0, 0};
    return &m->nsps[m->nnsp++];
}

static int sess_cb(void *arg, const char *sid, const store_session *s) {
    (void)sid;
    metrics_snap *m = arg;
    if (s->state != STORE_S_CLOSED) m->clients[stats_tr(s->transport == STORE_T_WEBSOCKET)]++;
    return 0;
}

static int sock_cb(void *arg, const store_socket *s) {
    metrics_snap *m = arg;
    if (s->detached_ms) {
        m->detached++;
        return 0;
    }
    metrics_nsp *n = nsp_of(m, s->nsp);
    if (!n) return -ENOMEM;
    n->sockets++;
    return 0;
}

typedef struct room_ctx {
    store_txn *t;
    metrics_nsp *n;
} room_ctx;

/* A room that is not a socket's own room (its id). */
static int room_cb(void *arg, const char *room, size_t len, size_t members) {
    (void)members;
    room_ctx *c = arg;
    if (!rooms_is_own(c->t, room, len)) c->n->rooms++;
    return 0;
}

static int reader_cb(void *arg, const reader_id *id, uint64_t seq) {
    metrics_snap *m = arg;
    if (util_grow(&m->readers, &m->reader_cap, m->nreaders, sizeof *m->readers, 8)) return -ENOMEM;
    metrics_reader *r = &m->readers[m->nreaders++];
    memset(r, 0, sizeof *r);
    reader_name(id, r->name, sizeof r->name);
    r->inbox = reader_log_of(id->kind) == READER_LOG_INBOX;
    uint64_t head = r->inbox ? m->inbox_head : m->log_head;
    r->position = seq;
    r->behind = head > seq ? head - seq : 0;
    r->alive = reader_alive(id);
    if (id->kind == READER_DISPATCHER) {
        m->has_dispatcher = 1;
        m->handler_queue = r->behind;
    }
    return 0;
}

/* 1 while a stated holds stated.lock in dir (stated/stated.c takes it). */
static int stated_running(const char *dir) {
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/stated.lock", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

int metrics_collect(server *srv, metrics_snap *m) {
    memset(m, 0, sizeof *m);
    m->counters_ok = stats_read(m->counters) == 0;
    m->nprocs = stats_processes(m->procs, METRICS_MAX_PROCS);
    if (m->nprocs > METRICS_MAX_PROCS) m->nprocs = METRICS_MAX_PROCS;
    for (int i = 0; i < m->nprocs; i++)
        if (!strcmp(m->procs[i].name, "stated")) m->stated_pid = m->procs[i].pid;
    m->stated_up = stated_running(srv->dir);
    int rc = store_space(srv->st, &m->free_bytes, &m->map_bytes);
    store_txn *t;
    if (!rc) rc = store_begin(srv->st, 0, &t);
    if (rc) return rc;
    for (size_t i = 0; i < srv->cfg.nnsp && !rc; i++) /* the configured names, even when empty */
        if (!srv->cfg.nsps[i].is_pattern && !nsp_of(m, srv->cfg.nsps[i].name)) rc = -ENOMEM;
    if (!rc) rc = store_log_bounds(t, &m->log_first, &m->log_head);
    if (!rc) rc = store_inbox_bounds(t, &m->inbox_first, &m->inbox_head);
    if (!rc) rc = store_log_size(t, &m->log_bytes);
    if (!rc) rc = store_session_each(t, sess_cb, m);
    if (!rc) rc = store_socket_each(t, sock_cb, m);
    for (size_t i = 0; i < m->nnsp && !rc; i++) {
        room_ctx c = {t, &m->nsps[i]};
        rc = store_room_each(t, m->nsps[i].name, room_cb, &c);
    }
    if (!rc) rc = reader_each(t, reader_cb, m);
    const void *d;
    size_t len;
    if (!rc && store_meta_get(t, "cluster", &d, &len) == 0 && len)
        m->cluster = json_parse(d, len);
    store_abort(t);
    return rc;
}

void metrics_free(metrics_snap *m) {
    for (size_t i = 0; i < m->nnsp; i++) free(m->nsps[i].name);
    free(m->nsps);
    free(m->readers);
    cJSON_Delete(m->cluster);
    memset(m, 0, sizeof *m);
}

/* ---- Prometheus text ---------------------------------------------------------- */

static void head(buf *b, const char *name, const char *type, const char *help) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void label(buf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\') buf_puts(b, "\\\\");
        else if (*v == '"') buf_puts(b, "\\\"");
        else if (*v == '\n') buf_puts(b, "\\n");
        else buf_putc(b, *v);
    }
}

static void sample(buf *b, const char *name, const char *lname, const char *lvalue, uint64_t v) {
    buf_puts(b, name);
    if (lname) {
        buf_printf(b, "{%s=\"", lname);
        label(b, lvalue);
        buf_puts(b, "\"}");
    }
    buf_printf(b, " %llu\n", (unsigned long long)v);
}

/* A counter or gauge with one value per transport. */
static void per_transport(buf *b, const char *name, const char *type, const char *help, const uint64_t *v) {
    head(b, name, type, help);
    for (int t = 0; t < STATS_NTRANSPORTS; t++) sample(b, name, "transport", stats_transport_name(t), v[t]);
}

static void per_reason(buf *b, const char *name, const char *help, const uint64_t *v) {
    head(b, name, "counter", help);
    for (int r = 0; r < STATS_NREASONS; r++) sample(b, name, "reason", stats_reason_name(r), v[r]);
}

static void one(buf *b, const char *name, const char *type, const char *help, uint64_t v) {
    head(b, name, type, help);
    sample(b, name, NULL, NULL, v);
}

int metrics_text(const server *srv, const metrics_snap *m, buf *b) {
    uint64_t v[STATS_NTRANSPORTS];
    for (int t = 0; t < STATS_NTRANSPORTS; t++) v[t] = m->clients[t];
    per_transport(b, "sio_connected_clients", "gauge", "Engine.IO clients connected, by transport.", v);
    head(b, "sio_sockets", "gauge", "Socket.IO sockets connected, by namespace.");
    for (size_t i = 0; i < m->nnsp; i++) sample(b, "sio_sockets", "namespace", m->nsps[i].name, m->nsps[i].sockets);
    one(b, "sio_sockets_detached", "gauge",
        "Sockets whose client is gone, kept for connection state recovery.", m->detached);
    head(b, "sio_rooms", "gauge", "Rooms with members, by namespace (sockets' own rooms not counted).");
    for (size_t i = 0; i < m->nnsp; i++) sample(b, "sio_rooms", "namespace", m->nsps[i].name, m->nsps[i].rooms);
    const uint64_t *c = m->counters;
    per_transport(b, "sio_engine_connections_total", "counter", "Engine.IO handshakes, by transport.",
                  c + STATS_HANDSHAKES);
    per_reason(b, "sio_engine_disconnections_total", "Engine.IO sessions closed, by reason.",
               c + STATS_SESSION_CLOSES);
    one(b, "sio_socket_connections_total", "counter",
        "Socket.IO sockets connected to a namespace (recovered ones included).", c[STATS_CONNECTS]);
    per_reason(b, "sio_socket_disconnections_total", "Socket.IO sockets disconnected, by reason.",
               c + STATS_SOCKET_DISCONNECTS);
    per_transport(b, "sio_packets_received_total", "counter", "Engine.IO packets received from clients.",
                  c + STATS_PACKETS_IN);
    per_transport(b, "sio_packets_sent_total", "counter", "Engine.IO packets sent to clients.",
                  c + STATS_PACKETS_OUT);
    per_transport(b, "sio_received_bytes_total", "counter", "Bytes of Engine.IO packets received from clients.",
                  c + STATS_BYTES_IN);
    per_transport(b, "sio_sent_bytes_total", "counter", "Bytes of Engine.IO packets sent to clients.",
                  c + STATS_BYTES_OUT);
    one(b, "sio_broadcasts_total", "counter",
        "Broadcasts appended to the packet log (sioctl emit, handlers, plugins, the cluster).", c[STATS_BROADCASTS]);
    one(b, "sio_handler_failures_total", "counter",
        "Handler commands that failed: exit status, signal, timeout, or could not start.",
        c[STATS_HANDLER_FAILURES]);
    one(b, "sio_handler_queue_depth", "gauge", "Inbox records the handler dispatcher has not read yet.",
        m->handler_queue);
    one(b, "sio_packet_log_head", "gauge", "Position of the newest packet log record.", m->log_head);
    one(b, "sio_packet_log_trimmed", "gauge", "Position up to which the packet log was trimmed.",
        m->log_first ? m->log_first - 1 : m->log_head);
    one(b, "sio_packet_log_bytes", "gauge", "Bytes held by the packet log.", m->log_bytes);
    one(b, "sio_inbox_head", "gauge", "Position of the newest inbox record.", m->inbox_head);
    one(b, "sio_inbox_trimmed", "gauge", "Position up to which the inbox was trimmed.",
        m->inbox_first ? m->inbox_first - 1 : m->inbox_head);
    static const char *const rl[3] = {"sio_reader_position", "sio_reader_lag", "sio_reader_alive"};
    static const char *const rh[3] = {
        "Position a reader of the packet log or inbox has read up to.",
        "Records a reader is behind its log's head.",
        "1 while the reader's process exists.",
    };
    for (int k = 0; k < 3; k++) {
        head(b, rl[k], "gauge", rh[k]);
        for (size_t i = 0; i < m->nreaders; i++) {
            const metrics_reader *r = &m->readers[i];
            buf_printf(b, "%s{reader=\"", rl[k]);
            label(b, r->name);
            buf_printf(b, "\",log=\"%s\"} %llu\n", r->inbox ? "inbox" : "packets",
                       (unsigned long long)(k == 0 ? r->position : k == 1 ? r->behind : (uint64_t)r->alive));
        }
    }
    one(b, "sio_stated_up", "gauge", "1 while stated runs on the state directory.", (uint64_t)m->stated_up);
    one(b, "sio_store_map_size_bytes", "gauge", "Size of the store's map (its maximum size).", m->map_bytes);
    one(b, "sio_store_used_bytes", "gauge", "Bytes of the store's map in use.",
        m->map_bytes > m->free_bytes ? m->map_bytes - m->free_bytes : 0);
    head(b, "sio_processes", "gauge", "Processes of the stack counting events, by program.");
    for (int i = 0; i < m->nprocs; i++) {
        int first = 1, n = 0;
        for (int j = 0; j < m->nprocs; j++) {
            if (!strcmp(m->procs[j].name, m->procs[i].name)) {
                if (j < i) first = 0;
                n++;
            }
        }
        if (first) sample(b, "sio_processes", "program", m->procs[i].name, (uint64_t)n);
    }
    if (srv->cfg.redis_url || m->cluster) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(m->cluster, "state");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m->cluster, "servers");
        int up = cJSON_IsString(st) && !strcmp(st->valuestring, "up");
        one(b, "sio_cluster_up", "gauge", "1 while this node's Redis bridge is in the cluster.", (uint64_t)up);
        one(b, "sio_cluster_servers", "gauge", "Servers of the cluster this node sees (itself included).",
            up && cJSON_IsNumber(n) && n->valuedouble > 0 ? (uint64_t)n->valuedouble : 0);
    }
    return 0;
}

int metrics_route(const server *srv, const char *uri) {
    const char *p = srv->cfg.metrics_path;
    if (!p || !uri) return 0;
    size_t n = strcspn(uri, "?");
    return n == strlen(p) && !strncmp(uri, p, n);
}

void metrics_answer(server *srv, const char *method, http_resp *resp) {
    if (!method || (strcmp(method, "GET") && strcmp(method, "HEAD"))) {
        http_resp_set(resp, 405, "text/plain", "Method Not Allowed\n", 19);
        buf_puts(&resp->headers, "Allow: GET, HEAD\r\n");
        return;
    }
    metrics_snap m;
    int rc = metrics_collect(srv, &m);
    buf_free(&resp->body);
    if (!rc) rc = metrics_text(srv, &m, &resp->body);
    metrics_free(&m);
    if (rc) {
        log_warn("metrics page: cannot read the store: %s", store_strerror(rc));
        http_resp_set(resp, 500, "text/plain", "cannot read the store\n", 22);
        return;
    }
    resp->status = 200;
    resp->content_type = METRICS_CONTENT_TYPE;
}

/* ---- JSON ------------------------------------------------------------------- */

/* The Redis URL without its password. */
static void add_redis_url(cJSON *o, const char *url) {
    const char *at = strrchr(url, '@'), *sch = strstr(url, "://");
    if (!at || !sch || at < sch) {
        cJSON_AddStringToObject(o, "redis_url", url);
        return;
    }
    char out[600];
    snprintf(out, sizeof out, "%.*s://***%s", (int)(sch - url), url, at);
    cJSON_AddStringToObject(o, "redis_url", out);
}

static cJSON *config_json(const cfg *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", c->path);
    cJSON_AddStringToObject(o, "transports", c->allow_polling && c->allow_websocket ? "polling,websocket"
                                             : c->allow_polling ? "polling" : "websocket");
    const struct {
        const char *name;
        long v;
    } nums[] = {
        {"ping_interval", c->ping_interval}, {"ping_timeout", c->ping_timeout},
        {"connect_timeout", c->connect_timeout}, {"upgrade_timeout", c->upgrade_timeout},
        {"max_http_buffer_size", c->max_http_buffer_size}, {"max_sessions", c->max_sessions},
        {"max_log_bytes", c->max_log_bytes}, {"map_size_mb", c->map_size_mb},
        {"connection_state_recovery", c->connection_state_recovery},
        {"max_disconnection_duration", c->max_disconnection_duration},
        {"per_message_deflate", c->per_message_deflate},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) cJSON_AddNumberToObject(o, nums[i].name, (double)nums[i].v);
    cJSON_AddStringToObject(o, "durability", c->durability == CFG_DURABILITY_SAFE ? "safe" : "fast");
    if (c->metrics_path) cJSON_AddStringToObject(o, "metrics_path", c->metrics_path);
    if (c->engine_path) cJSON_AddStringToObject(o, "engine_path", c->engine_path);
    if (c->cors_origin) cJSON_AddStringToObject(o, "cors_origin", c->cors_origin);
    if (c->redis_url) add_redis_url(o, c->redis_url);
    cJSON *ns = cJSON_AddArrayToObject(o, "namespaces");
    for (size_t i = 0; i < c->nnsp; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s%s", c->nsps[i].is_pattern ? "~" : "", c->nsps[i].name);
        cJSON_AddItemToArray(ns, cJSON_CreateString(name));
    }
    return o;
}

static cJSON *per_transport_json(const uint64_t *v) {
    cJSON *o = cJSON_CreateObject();
    for (int t = 0; t < STATS_NTRANSPORTS; t++) cJSON_AddNumberToObject(o, stats_transport_name(t), (double)v[t]);
    return o;
}

static cJSON *per_reason_json(const uint64_t *v) {
    cJSON *o = cJSON_CreateObject();
    for (int r = 0; r < STATS_NREASONS; r++)
        if (v[r]) cJSON_AddNumberToObject(o, stats_reason_name(r), (double)v[r]);
    return o;
}

static cJSON *counters_json(const uint64_t *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "handshakes", per_transport_json(c + STATS_HANDSHAKES));
    cJSON_AddNumberToObject(o, "connects", (double)c[STATS_CONNECTS]);
    cJSON_AddItemToObject(o, "session_closes", per_reason_json(c + STATS_SESSION_CLOSES));
    cJSON_AddItemToObject(o, "disconnects", per_reason_json(c + STATS_SOCKET_DISCONNECTS));
    cJSON_AddItemToObject(o, "packets_in", per_transport_json(c + STATS_PACKETS_IN));
    cJSON_AddItemToObject(o, "packets_out", per_transport_json(c + STATS_PACKETS_OUT));
    cJSON_AddItemToObject(o, "bytes_in", per_transport_json(c + STATS_BYTES_IN));
    cJSON_AddItemToObject(o, "bytes_out", per_transport_json(c + STATS_BYTES_OUT));
    cJSON_AddNumberToObject(o, "broadcasts", (double)c[STATS_BROADCASTS]);
    cJSON_AddNumberToObject(o, "handler_failures", (double)c[STATS_HANDLER_FAILURES]);
    return o;
}

cJSON *metrics_json(const server *srv, const metrics_snap *m) {
    cJSON *o = cJSON_CreateObject(), *x;
    cJSON_AddStringToObject(o, "state", srv->dir);
    cJSON_AddStringToObject(o, "config", srv->cfg.source ? srv->cfg.source : "(published by stated)");
    cJSON_AddItemToObject(o, "settings", config_json(&srv->cfg));
    x = cJSON_AddObjectToObject(o, "stated");
    cJSON_AddBoolToObject(x, "running", m->stated_up);
    cJSON_AddItemToObject(x, "pid", m->stated_pid ? cJSON_CreateNumber(m->stated_pid) : cJSON_CreateNull());
    x = cJSON_AddArrayToObject(o, "processes");
    for (int i = 0; i < m->nprocs; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "pid", m->procs[i].pid);
        cJSON_AddStringToObject(p, "program", m->procs[i].name);
        cJSON_AddItemToArray(x, p);
    }
    x = cJSON_AddObjectToObject(o, "sessions");
    for (int t = 0; t < STATS_NTRANSPORTS; t++) cJSON_AddNumberToObject(x, stats_transport_name(t), (double)m->clients[t]);
    x = cJSON_AddObjectToObject(o, "namespaces");
    cJSON *rooms = cJSON_CreateObject();
    for (size_t i = 0; i < m->nnsp; i++) {
        cJSON_AddNumberToObject(x, m->nsps[i].name, (double)m->nsps[i].sockets);
        cJSON_AddNumberToObject(rooms, m->nsps[i].name, (double)m->nsps[i].rooms);
    }
    cJSON_AddItemToObject(o, "rooms", rooms);
    cJSON_AddNumberToObject(o, "waiting", (double)m->detached); /* connection state recovery */
    x = cJSON_AddObjectToObject(o, "log");
    cJSON_AddNumberToObject(x, "first", (double)m->log_first);
    cJSON_AddNumberToObject(x, "head", (double)m->log_head);
    cJSON_AddNumberToObject(x, "bytes", (double)m->log_bytes);
    x = cJSON_AddObjectToObject(o, "inbox");
    cJSON_AddNumberToObject(x, "first", (double)m->inbox_first);
    cJSON_AddNumberToObject(x, "head", (double)m->inbox_head);
    cJSON_AddItemToObject(o, "handler_queue", m->has_dispatcher ? cJSON_CreateNumber((double)m->handler_queue)
                                                                : cJSON_CreateNull());
    x = cJSON_AddArrayToObject(o, "readers");
    for (size_t i = 0; i < m->nreaders; i++) {
        const metrics_reader *r = &m->readers[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->name);
        cJSON_AddStringToObject(e, "log", r->inbox ? "inbox" : "packets");
        cJSON_AddNumberToObject(e, "position", (double)r->position);
        cJSON_AddNumberToObject(e, "behind", (double)r->behind);
        cJSON_AddBoolToObject(e, "alive", r->alive);
        cJSON_AddItemToArray(x, e);
    }
    x = cJSON_AddObjectToObject(o, "store");
    cJSON_AddNumberToObject(x, "map_bytes", (double)m->map_bytes);
    cJSON_AddNumberToObject(x, "used_bytes", (double)(m->map_bytes > m->free_bytes ? m->map_bytes - m->free_bytes : 0));
    cJSON_AddItemToObject(o, "counters", m->counters_ok ? counters_json(m->counters) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "cluster", m->cluster ? cJSON_Duplicate(m->cluster, 1) : cJSON_CreateNull());
    return o;
}

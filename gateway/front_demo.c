/* front_demo: the demo page's endpoints (see front_demo.h). */
#include "front_demo.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/json.h"
#include "server/actions.h"
#include "server/metrics.h"
#include "server/rooms.h"

static void json(http_resp *r, int status, const char *text) {
    r->status = status;
    r->content_type = "application/json";
    buf_reset(&r->body);
    buf_puts(&r->body, text);
}

int demo_route(const char *path, const char *method) {
    int post = !strcmp(method, "POST");
    if (!strcmp(path, "/demo/join") && post) return DEMO_JOIN;
    if (!strcmp(path, "/demo/leave") && post) return DEMO_LEAVE;
    if (!strcmp(path, "/demo/rooms") && !strcmp(method, "GET")) return DEMO_ROOMS;
    return DEMO_NONE;
}

static int members_cb(void *arg, const char *id, uint64_t join_seq) {
    (void)join_seq;
    cJSON_AddItemToArray(arg, cJSON_CreateString(id));
    return 0;
}

void demo_rooms(server *srv, const char *nsp, const char *room, http_resp *resp) {
    if (!nsp || !*nsp) nsp = "/";
    if (!room || !*room || strlen(room) > STORE_ROOM_MAX) {
        json(resp, 400, "{\"error\":\"room= is required\"}");
        return;
    }
    store_txn *t;
    cJSON *arr = cJSON_CreateArray();
    int rc = store_begin(srv->st, 0, &t);
    if (!rc) {
        rc = store_room_members(t, nsp, room, strlen(room), 0, members_cb, arr);
        if (rc == STORE_NOTFOUND) rc = 0;
        store_abort(t);
    }
    if (rc) {
        json(resp, 500, "{\"error\":\"store error\"}");
    } else {
        char *s = json_print(arr);
        json(resp, 200, s ? s : "[]");
        free(s);
    }
    cJSON_Delete(arr);
}

/* Moves the socket in t; fills resp on a refusal (returns 1), else 0 or <0. */
static int move(store_txn *t, int leave, const char *nsp, const char *id, const char *room,
                http_resp *resp) {
    store_socket s;
    int rc = store_socket_get(t, id, &s);
    if (rc == STORE_NOTFOUND || (rc == 0 && strcmp(s.nsp, nsp))) {
        json(resp, 404, "{\"error\":\"no such socket in that namespace\"}");
        return 1;
    }
    if (rc) return rc;
    return leave ? rooms_leave(t, &s, room) : rooms_join(t, &s, room);
}

void demo_join(server *srv, int leave, const char *body, size_t len, int too_big, http_resp *resp) {
    cJSON *j = too_big ? NULL : json_parse(body ? body : "", len);
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(j, "nsp");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "socket");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(j, "room");
    const char *nsp = cJSON_IsString(jn) ? jn->valuestring : "/";
    if (!cJSON_IsString(js) || !cJSON_IsString(jr) || !*jr->valuestring ||
        strlen(jr->valuestring) > STORE_ROOM_MAX || !util_is_id(js->valuestring, strlen(js->valuestring))) {
        json(resp, 400, "{\"error\":\"expected {\\\"nsp\\\":\\\"/\\\",\\\"socket\\\":\\\"<id>\\\",\\\"room\\\":\\\"<name>\\\"}\"}");
        cJSON_Delete(j);
        return;
    }
    store_txn *t;
    int rc = store_begin(srv->st, 1, &t);
    if (!rc) {
        rc = move(t, leave, nsp, js->valuestring, jr->valuestring, resp);
        if (!rc) rc = store_commit(t);
        else store_abort(t);
    }
    cJSON_Delete(j);
    if (rc == 1) return; /* refused: resp is set */
    if (rc) {
        log_error("demo %s failed: %s", leave ? "leave" : "join", store_strerror(rc));
        json(resp, 500, "{\"error\":\"store error\"}");
        return;
    }
    server_notify(srv, 0);
    json(resp, 200, "{\"ok\":true}");
}

/* ---- the live panel ------------------------------------------------------------ */

static int count_member(void *arg, const char *id, uint64_t join_seq) {
    (void)id, (void)join_seq;
    (*(size_t *)arg)++;
    return 0;
}

#define PANEL_ROOMS_MAX 12 /* rooms listed per namespace (all are counted) */

typedef struct panel_rooms {
    store_txn *t;
    cJSON *list;
    size_t n;
} panel_rooms;

static int panel_room_cb(void *arg, const char *room, size_t len, size_t members) {
    panel_rooms *c = arg;
    if (rooms_is_own(c->t, room, len) ||
        (len == sizeof DEMO_PANEL_ROOM - 1 && !memcmp(room, DEMO_PANEL_ROOM, len)))
        return 0;
    if (c->n++ >= PANEL_ROOMS_MAX) return 0;
    char name[STORE_ROOM_MAX + 1];
    memcpy(name, room, len);
    name[len] = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "room", name);
    cJSON_AddNumberToObject(o, "size", (double)members);
    cJSON_AddItemToArray(c->list, o);
    return 0;
}

/* Counter c (summed over transports when per_transport) now and its rate. */
static void panel_rate(cJSON *total, cJSON *rate, const char *name, const demo_panel *p,
                       const uint64_t *now, int c, int ntr, double secs) {
    uint64_t n = 0, was = 0;
    for (int i = 0; i < ntr; i++) n += now[c + i], was += p->last[c + i];
    cJSON_AddNumberToObject(total, name, (double)n);
    cJSON_AddNumberToObject(rate, name, secs > 0 && n >= was ? (double)(n - was) / secs : 0);
}

/* The panel's JSON: clients, namespaces with sockets and rooms, totals and
 * rates since the last tick. */
static cJSON *panel_json(const metrics_snap *m, store_txn *t, const demo_panel *p, int64_t now) {
    cJSON *o = cJSON_CreateObject(), *x;
    cJSON_AddNumberToObject(o, "at", (double)now);
    x = cJSON_AddObjectToObject(o, "clients");
    for (int i = 0; i < STATS_NTRANSPORTS; i++)
        cJSON_AddNumberToObject(x, stats_transport_name(i), (double)m->clients[i]);
    x = cJSON_AddArrayToObject(o, "namespaces");
    for (size_t i = 0; i < m->nnsp; i++) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "name", m->nsps[i].name);
        cJSON_AddNumberToObject(n, "sockets", (double)m->nsps[i].sockets);
        panel_rooms c = {t, cJSON_AddArrayToObject(n, "top"), 0};
        store_room_each(t, m->nsps[i].name, panel_room_cb, &c);
        cJSON_AddNumberToObject(n, "rooms", (double)c.n);
        cJSON_AddItemToArray(x, n);
    }
    double secs = p->last_ms ? (double)(now - p->last_ms) / 1000.0 : 0;
    cJSON *total = cJSON_AddObjectToObject(o, "total"), *rate = cJSON_AddObjectToObject(o, "rate");
    const uint64_t *c = m->counters;
    panel_rate(total, rate, "packetsIn", p, c, STATS_PACKETS_IN, STATS_NTRANSPORTS, secs);
    panel_rate(total, rate, "packetsOut", p, c, STATS_PACKETS_OUT, STATS_NTRANSPORTS, secs);
    panel_rate(total, rate, "bytesIn", p, c, STATS_BYTES_IN, STATS_NTRANSPORTS, secs);
    panel_rate(total, rate, "bytesOut", p, c, STATS_BYTES_OUT, STATS_NTRANSPORTS, secs);
    panel_rate(total, rate, "connections", p, c, STATS_HANDSHAKES, STATS_NTRANSPORTS, secs);
    panel_rate(total, rate, "disconnections", p, c, STATS_SESSION_CLOSES, STATS_NREASONS, secs);
    panel_rate(total, rate, "broadcasts", p, c, STATS_BROADCASTS, 1, secs);
    return o;
}

/* Remembers the counters for the next tick's rates. */
static void panel_remember(demo_panel *p, const uint64_t *c, int64_t now) {
    memcpy(p->last, c, sizeof p->last);
    p->last_ms = now;
}

int demo_panel_tick(server *srv, demo_panel *p) {
    store_txn *t;
    size_t viewers = 0;
    if (store_begin(srv->st, 0, &t)) return 0;
    store_room_members(t, "/", DEMO_PANEL_ROOM, sizeof DEMO_PANEL_ROOM - 1, 0, count_member, &viewers);
    store_abort(t);
    int64_t now = util_now_ms();
    if (!viewers) { /* nobody watches: write nothing */
        uint64_t c[STATS_NCOUNTERS];
        if (stats_read(c) == 0) panel_remember(p, c, now);
        return 0;
    }
    metrics_snap m;
    cJSON *args = NULL;
    int rc = metrics_collect(srv, &m);
    if (!rc && (rc = store_begin(srv->st, 0, &t)) == 0) {
        args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, panel_json(&m, t, p, now));
        store_abort(t);
        panel_remember(p, m.counters, now);
    }
    metrics_free(&m);
    if (!args) return 0;
    actions_target to = {.nsp = "/", .to = {DEMO_PANEL_ROOM}, .nto = 1, .local = 1, .is_volatile = 1};
    uint64_t seq = 0;
    char err[200] = "";
    rc = store_begin(srv->st, 1, &t);
    if (!rc) {
        rc = actions_emit(srv, t, &to, "demo:stats", args, -1, &seq, NULL, err, sizeof err);
        if (!rc) rc = store_commit(t);
        else store_abort(t);
    }
    cJSON_Delete(args);
    if (rc) {
        log_debug("demo panel: not sent: %s", rc > 0 ? err : store_strerror(rc));
        return 0;
    }
    server_notify(srv, seq);
    return 1;
}

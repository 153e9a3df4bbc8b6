/* front_demo: the demo page's endpoints (see front_demo.h). */
#include "front_demo.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/json.h"
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

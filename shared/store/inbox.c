/* inbox: JSON events for application logic (see inbox.h). */
#include "store/inbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "proto/json.h"

int inbox_append(store_txn *t, cJSON *o, uint64_t *seq) {
    char *txt = json_print(o);
    cJSON_Delete(o);
    if (!txt) return -ENOMEM;
    int rc = store_inbox_append(t, txt, strlen(txt), seq);
    free(txt);
    return rc;
}

cJSON *inbox_record(const char *type, const store_socket *s, const cJSON *extra) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "nsp", s->nsp);
    cJSON_AddStringToObject(o, "socket", s->id);
    cJSON_AddStringToObject(o, "sid", s->sid);
    const cJSON *it;
    if (extra) cJSON_ArrayForEach(it, extra) {
        cJSON *c = cJSON_Duplicate(it, 1);
        if (c) cJSON_AddItemToObject(o, it->string, c);
    }
    return o;
}

int inbox_socket_event(store_txn *t, const char *type, const store_socket *s, const cJSON *extra,
                       uint64_t *seq) {
    cJSON *o = inbox_record(type, s, extra);
    if (!o) return -ENOMEM;
    return inbox_append(t, o, seq);
}

int inbox_disconnect(store_txn *t, const store_socket *s, const char *reason, uint64_t *seq) {
    cJSON *x = cJSON_CreateObject();
    if (!x) return -ENOMEM;
    cJSON_AddStringToObject(x, "reason", reason);
    int rc = inbox_socket_event(t, "disconnect", s, x, seq);
    cJSON_Delete(x);
    return rc;
}

int inbox_message(store_txn *t, const char *sid, const uint8_t *data, size_t len, int binary,
                  uint64_t *seq) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return -ENOMEM;
    cJSON_AddStringToObject(o, "type", "message");
    cJSON_AddStringToObject(o, "sid", sid);
    if (binary) {
        buf b = BUF_INIT;
        if (b64_encode(&b, data, len)) { cJSON_Delete(o); return -ENOMEM; }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "$binary", b.data ? b.data : "");
        cJSON_AddItemToObject(o, "data", m);
        buf_free(&b);
    } else {
        /* text data may hold any bytes, NUL too (proto/json.h) */
        cJSON *s = json_string(data, len);
        if (!s) { cJSON_Delete(o); return -ENOMEM; }
        cJSON_AddItemToObject(o, "data", s);
    }
    return inbox_append(t, o, seq);
}

cJSON *inbox_parse(uint64_t seq, const void *rec, size_t len) {
    cJSON *o = json_parse(rec, len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    /* the store's number, not whatever "seq" the bytes held (cJSON would
     * keep both, and readers find the first) */
    while (cJSON_GetObjectItemCaseSensitive(o, "seq")) cJSON_DeleteItemFromObjectCaseSensitive(o, "seq");
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    return o;
}

/* client: one request to every server of the cluster (see client.h). */
#include "cluster/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "base/redis_url.h"
#include "base/util.h"
#include "cluster/rconn.h"
#include "cluster/wire.h"
#include "proto/json.h"
#include "proto/mpack.h"

#define TIMEOUT_MS 2000 /* connecting, and each command */

struct cluster_client {
    server *srv;
    redisContext *rsub, *rpub;
    char uid[32];
    char nsp[256];
};

/* The bridge's state in the store: its uid and URL, when it is up. */
static int bridge_state(server *srv, char *uid, size_t n, buf *url, char *err, size_t errlen) {
    store_txn *t;
    const void *d;
    size_t len;
    if (store_begin(srv->st, 0, &t)) {
        snprintf(err, errlen, "cannot read the store");
        return -1;
    }
    cJSON *st = store_meta_get(t, "cluster", &d, &len) == 0 ? json_parse(d, len) : NULL;
    if (!srv->cfg.redis_url && store_meta_get(t, "cluster_url", &d, &len) == 0) buf_append(url, d, len);
    store_abort(t);
    if (srv->cfg.redis_url) buf_puts(url, srv->cfg.redis_url);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(st, "state"), *id = cJSON_GetObjectItemCaseSensitive(st, "uid");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(st, "error");
    int rc = 0;
    if (!url->len || !cJSON_IsString(state)) {
        snprintf(err, errlen, "this node is not in a cluster (no redis_url in its config)");
        rc = -1;
    } else if (strcmp(state->valuestring, "up") || !cJSON_IsString(id)) {
        snprintf(err, errlen, "this node is not connected to its cluster (%s)",
                 cJSON_IsString(why) ? why->valuestring : "its bridge is down");
        rc = -1;
    } else {
        snprintf(uid, n, "%s", id->valuestring);
    }
    cJSON_Delete(st);
    return rc;
}

int cluster_open(server *srv, const char *nsp, cluster_client **out, char *err, size_t errlen) {
    cluster_client *c = calloc(1, sizeof *c);
    buf url = BUF_INIT;
    redis_url u;
    if (!c) return -1;
    c->srv = srv;
    snprintf(c->nsp, sizeof c->nsp, "%s", nsp);
    int rc = bridge_state(srv, c->uid, sizeof c->uid, &url, err, errlen);
    if (!rc && redis_url_parse(url.data, &u, err, errlen)) rc = -1;
    if (!rc && (rconn_open(&u, TIMEOUT_MS, &c->rsub, err, errlen) ||
                rconn_open(&u, TIMEOUT_MS, &c->rpub, err, errlen)))
        rc = -1;
    buf_free(&url);
    buf common = BUF_INIT, own = BUF_INIT;
    if (!rc) {
        wire_channel(&common, srv->cfg.redis_prefix, WIRE_CH_RESPONSE, nsp, NULL);
        wire_channel(&own, srv->cfg.redis_prefix, WIRE_CH_RESPONSE, nsp, c->uid);
        redisReply *r = redisCommand(c->rsub, "SUBSCRIBE %b %b", common.data, common.len, own.data, own.len);
        void *second = NULL; /* each channel is confirmed */
        int ok = r && redisGetReply(c->rsub, &second) == REDIS_OK;
        freeReplyObject(r);
        freeReplyObject(second);
        if (!ok) {
            snprintf(err, errlen, "cannot subscribe: %s", c->rsub->errstr);
            rc = -1;
        }
    }
    buf_free(&common);
    buf_free(&own);
    if (rc) {
        cluster_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

void cluster_close(cluster_client *c) {
    if (!c) return;
    if (c->rsub) redisFree(c->rsub);
    if (c->rpub) redisFree(c->rpub);
    free(c);
}

const char *cluster_uid(const cluster_client *c) { return c->uid; }

long cluster_servers(cluster_client *c, cJSON **names) {
    buf ch = BUF_INIT, pat = BUF_INIT;
    wire_channel(&ch, c->srv->cfg.redis_prefix, WIRE_CH_REQUEST, c->nsp, NULL);
    wire_channel(&pat, c->srv->cfg.redis_prefix, WIRE_CH_RESPONSE, c->nsp, "*");
    redisReply *r = redisCommand(c->rpub, "PUBSUB NUMSUB %b", ch.data, ch.len);
    long n = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER
                 ? (long)r->element[1]->integer
                 : -1;
    freeReplyObject(r);
    if (names) { /* every server subscribes PREFIX-response#NSP#<uid># */
        *names = cJSON_CreateArray();
        r = redisCommand(c->rpub, "PUBSUB CHANNELS %b", pat.data, pat.len);
        size_t skip = pat.len - 2; /* up to the '*' */
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len <= skip + 1) continue;
            char id[64];
            snprintf(id, sizeof id, "%.*s", (int)(e->len - skip - 1), e->str + skip);
            cJSON_AddItemToArray(*names, cJSON_CreateString(id));
        }
        freeReplyObject(r);
    }
    buf_free(&ch);
    buf_free(&pat);
    return n;
}

/* The payload of a pub/sub "message" reply, or NULL. */
static const redisReply *payload_of(const redisReply *m) {
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || m->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(m->element[0]->str, "message") || m->element[2]->type != REDIS_REPLY_STRING)
        return NULL;
    return m->element[2];
}

/* Waits for responses with request_id until done says so or the deadline. */
static int collect(cluster_client *c, const char *request_id, int (*done)(void *, const cJSON *),
                   void *arg, int64_t deadline, char *err, size_t errlen) {
    for (;;) {
        int64_t left = deadline - util_now_ms();
        if (left <= 0) return 1;
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        redisSetTimeout(c->rsub, tv);
        void *r = NULL;
        if (redisGetReply(c->rsub, &r) != REDIS_OK) {
            if (util_now_ms() >= deadline) return 1;
            snprintf(err, errlen, "Redis: %s", c->rsub->errstr);
            return -1;
        }
        const redisReply *p = payload_of(r);
        cJSON *resp = p ? wire_decode(p->str, p->len) : NULL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(resp, "requestId");
        int fin = cJSON_IsString(id) && !strcmp(id->valuestring, request_id) && done(arg, resp);
        cJSON_Delete(resp);
        freeReplyObject(r);
        if (fin) return 0;
    }
}

int cluster_ask(cluster_client *c, cJSON *req, int msgpack, int (*done)(void *, const cJSON *),
                void *arg, int timeout_ms, char *err, size_t errlen) {
    char id[UTIL_ID_LEN + 1];
    util_random_id(id);
    id[10] = 0;
    cJSON_DeleteItemFromObject(req, "uid");
    cJSON_DeleteItemFromObject(req, "requestId");
    cJSON_AddStringToObject(req, "uid", c->uid);
    if (done) cJSON_AddStringToObject(req, "requestId", id);
    buf msg = BUF_INIT, ch = BUF_INIT;
    int rc = 0;
    if (msgpack) rc = mpack_encode(&msg, req);
    else {
        char *txt = json_print(req);
        rc = txt ? buf_puts(&msg, txt) : -1;
        free(txt);
    }
    if (!rc) rc = wire_channel(&ch, c->srv->cfg.redis_prefix, WIRE_CH_REQUEST, c->nsp, NULL);
    int64_t deadline = util_now_ms() + timeout_ms;
    redisReply *r = rc ? NULL : redisCommand(c->rpub, "PUBLISH %b %b", ch.data, ch.len, msg.data, msg.len);
    buf_free(&msg);
    buf_free(&ch);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "cannot publish: %s", r ? r->str : c->rpub->errstr);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return done ? collect(c, id, done, arg, deadline, err, errlen) : 0;
}

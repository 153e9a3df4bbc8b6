/* srv_fixture.h: a whole `server` (store + config) in a temporary directory
 * for unit tests of the server layer, and the client's side of a polling
 * session driven in-process:
 *
 *   server srv;
 *   srv_tmp(&srv, "[namespace /custom]\n");   config text (map_size_mb added)
 *   tsess a;
 *   sess_new(&srv, &a, 0);                    a polling session (bare = 0)
 *   FEED(&srv, &a, "0");                      a client message, as polling_post
 *   frames f;
 *   recv_frames(&srv, &a, &f);                what the client would receive
 *   cJSON *in = inbox_since(&srv, &after);    inbox records (array; delete it)
 *   srv_drop(&srv);
 *
 * Include after unit.h and fixture.h. */
#ifndef UNIT_SRV_FIXTURE_H
#define UNIT_SRV_FIXTURE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "proto/eio_parser.h"
#include "server/reader.h"
#include "server/server.h"
#include "server/session.h"
#include "store/inbox.h"

/* Opens srv with a fresh store and a config file holding cfg_text. */
__attribute__((unused)) static void srv_tmp(server *srv, const char *cfg_text) {
    char tmpl[] = "/tmp/sio-unit-srv-XXXXXX";
    char *d = mkdtemp(tmpl);
    ASSERT_TRUE(d != NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sio.conf", d);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("map_size_mb = 64\n", f);
    fputs(cfg_text, f);
    fclose(f);
    char err[512] = "";
    int rc = server_open(srv, d, path, SERVER_CREATE, err, sizeof err);
    if (rc) unit_fail(__FILE__, __LINE__, "server_open: %d %s", rc, err);
}

__attribute__((unused)) static void srv_drop(server *srv) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", srv->dir);
    server_close(srv);
    if (system(cmd)) {
    }
}

/* A client session: its id and its delivery cursor. */
typedef struct tsess {
    char sid[UTIL_ID_LEN + 1];
    uint64_t cursor;
} tsess;

/* Opens a polling session as a handshake would (bare: at engine_path). */
__attribute__((unused)) static void sess_new(server *srv, tsess *s, int bare) {
    static const char *const headers[] = {"host", "example.test", "x-test", "1", NULL};
    http_req req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.query = "EIO=4&transport=polling&k=v";
    req.remote_addr = "192.0.2.7";
    req.url = "/socket.io/?EIO=4&transport=polling&k=v";
    req.headers = headers;
    req.content_length = -1;
    req.bare = bare;
    ASSERT_EQ_INT(session_create(srv, &req, STORE_T_POLLING, s->sid, &s->cursor), 0);
}

/* Feeds one client message (an Engine.IO message packet) exactly as
 * polling_post does: session_packet in a write transaction, then the session
 * is stored, or closed when session_packet says so.  Returns session_packet's
 * result (0 or a SESSION_CLOSE_* reason); a store error fails the test. */
__attribute__((unused)) static int sess_feed(server *srv, const tsess *s, const void *data,
                                             size_t len, int binary) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    store_session ss;
    int rc = store_session_get(t, s->sid, &ss);
    if (rc) {
        store_abort(t);
        unit_fail(__FILE__, __LINE__, "store_session_get: %d", rc);
    }
    eio_packet pk = {EIO_MESSAGE, binary, (const uint8_t *)data, len};
    uint64_t seq = 0;
    rc = session_packet(srv, t, s->sid, &ss, &pk, &seq);
    if (rc < 0) {
        store_abort(t);
        unit_fail(__FILE__, __LINE__, "session_packet: %d", rc);
    }
    int rc2 = rc ? session_close(t, s->sid, &ss, rc) : store_session_put(t, s->sid, &ss);
    if (rc2) {
        store_abort(t);
        unit_fail(__FILE__, __LINE__, "storing the session: %d", rc2);
    }
    ASSERT_EQ_INT(store_commit(t), 0);
    return rc;
}
#define FEED(srv, s, text) sess_feed((srv), (s), (text), strlen(text), 0)

/* The frames a client receives (copies, NUL-terminated, truncated). */
#define FRAMES_MAX 128
#define FRAME_BYTES 512
typedef struct frames {
    size_t n;
    int binary[FRAMES_MAX];
    size_t len[FRAMES_MAX];
    char data[FRAMES_MAX][FRAME_BYTES];
} frames;

__attribute__((unused)) static int frames_cb(void *arg, const logrec_frame *f) {
    frames *fr = arg;
    if (fr->n >= FRAMES_MAX) return 0;
    size_t l = f->len < FRAME_BYTES - 1 ? f->len : FRAME_BYTES - 1;
    memcpy(fr->data[fr->n], f->data, l);
    fr->data[fr->n][l] = 0;
    fr->len[fr->n] = f->len;
    fr->binary[fr->n] = f->binary;
    fr->n++;
    return 0;
}

/* Everything queued for the session after its cursor; advances the cursor. */
__attribute__((unused)) static void recv_frames(server *srv, tsess *s, frames *out) {
    memset(out, 0, sizeof *out);
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    uint64_t upto = 0;
    int rc = reader_collect(t, s->sid, s->cursor, UINT64_MAX, SIZE_MAX, frames_cb, out, &upto);
    store_abort(t);
    ASSERT_EQ_INT(rc, 0);
    s->cursor = upto;
}

/* The inbox records after *after as a JSON array (each with "seq");
 * advances *after.  The caller deletes the array. */
typedef struct inbox_acc {
    cJSON *arr;
    uint64_t last;
} inbox_acc;

__attribute__((unused)) static int inbox_acc_cb(void *arg, uint64_t seq, const void *rec,
                                                size_t len) {
    inbox_acc *a = arg;
    cJSON *o = inbox_parse(seq, rec, len);
    if (!o) o = cJSON_CreateString("(not a JSON object)");
    cJSON_AddItemToArray(a->arr, o);
    a->last = seq;
    return 0;
}

__attribute__((unused)) static cJSON *inbox_since(server *srv, uint64_t *after) {
    inbox_acc a = {cJSON_CreateArray(), *after};
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    int rc = store_inbox_scan(t, *after, UINT64_MAX, inbox_acc_cb, &a);
    store_abort(t);
    ASSERT_EQ_INT(rc, 0);
    *after = a.last;
    return a.arr;
}

/* The inbox head now (records after it are new). */
__attribute__((unused)) static uint64_t inbox_head(server *srv) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    uint64_t head = 0;
    int rc = store_inbox_bounds(t, NULL, &head);
    store_abort(t);
    ASSERT_EQ_INT(rc, 0);
    return head;
}

/* A string member of a JSON object, or NULL. */
__attribute__((unused)) static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A member as compact JSON text in out ("(absent)" when missing). */
__attribute__((unused)) static const char *jtext(const cJSON *o, const char *key, char *out,
                                                 size_t n) {
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(o, key) : o;
    if (!v) {
        snprintf(out, n, "(absent)");
        return out;
    }
    char *s = cJSON_PrintUnformatted(v);
    snprintf(out, n, "%s", s ? s : "(null)");
    free(s);
    return out;
}
#define JTEXT(o, key) jtext((o), (key), (char[1024]){0}, 1024)

/* The id of the session's socket in namespace nsp: 1 and id, or 0. */
typedef struct find_sock {
    const char *nsp;
    char *id;
    int found;
} find_sock;

__attribute__((unused)) static int find_sock_cb(void *arg, const store_socket *so) {
    find_sock *f = arg;
    if (strcmp(so->nsp, f->nsp)) return 0;
    strcpy(f->id, so->id);
    f->found = 1;
    return 1;
}

__attribute__((unused)) static int sock_of(server *srv, const char *sid, const char *nsp,
                                           char id[UTIL_ID_LEN + 1]) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    find_sock f = {nsp, id, 0};
    id[0] = 0;
    int rc = store_session_sockets(t, sid, find_sock_cb, &f);
    store_abort(t);
    ASSERT_TRUE(rc >= 0);
    return f.found;
}

/* How many sockets the session has in the store. */
__attribute__((unused)) static int fx_count_cb(void *arg, const store_socket *so) {
    (void)so;
    (*(int *)arg)++;
    return 0;
}

__attribute__((unused)) static int sock_count(server *srv, const char *sid) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    int n = 0;
    int rc = store_session_sockets(t, sid, fx_count_cb, &n);
    store_abort(t);
    ASSERT_EQ_INT(rc, 0);
    return n;
}

/* The session record now. */
__attribute__((unused)) static store_session sess_get(server *srv, const char *sid) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    store_session ss;
    int rc = store_session_get(t, sid, &ss);
    store_abort(t);
    ASSERT_EQ_INT(rc, 0);
    return ss;
}

/* Connects session s to nsp (CONNECT with no payload) and returns the new
 * socket's id in id; checks the reply frame. */
__attribute__((unused)) static void sess_connect(server *srv, tsess *s, const char *nsp,
                                                 char id[UTIL_ID_LEN + 1]) {
    char msg[200];
    if (!strcmp(nsp, "/")) snprintf(msg, sizeof msg, "0");
    else snprintf(msg, sizeof msg, "0%s,", nsp);
    ASSERT_EQ_INT(FEED(srv, s, msg), 0);
    ASSERT_EQ_INT(sock_of(srv, s->sid, nsp, id), 1);
    frames f;
    recv_frames(srv, s, &f);
    ASSERT_EQ_INT(f.n, 1);
    char want[300];
    if (!strcmp(nsp, "/")) snprintf(want, sizeof want, "0{\"sid\":\"%s\"}", id);
    else snprintf(want, sizeof want, "0%s,{\"sid\":\"%s\"}", nsp, id);
    ASSERT_EQ_STR(f.data[0], want);
}

/* A server with config cfg_text and one session connected to nsp (the
 * socket's id in id). */
__attribute__((unused)) static void srv_connected(server *srv, const char *cfg_text, tsess *s,
                                                  const char *nsp, char id[UTIL_ID_LEN + 1]) {
    srv_tmp(srv, cfg_text);
    sess_new(srv, s, 0);
    sess_connect(srv, s, nsp, id);
}

/* The fields every socket record of the inbox has. */
#define check_rec(r, type, nsp, socket, sid)                                  \
    do {                                                                      \
        ASSERT_EQ_STR(jstr((r), "type"), (type));                             \
        ASSERT_EQ_STR(jstr((r), "nsp"), (nsp));                               \
        ASSERT_EQ_STR(jstr((r), "socket"), (socket));                         \
        ASSERT_EQ_STR(jstr((r), "sid"), (sid));                               \
    } while (0)

#endif

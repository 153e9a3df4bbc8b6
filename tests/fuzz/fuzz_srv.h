/* fuzz_srv.h: a whole `server` (a real LMDB store and config) in a temporary
 * directory, for drivers that feed the server layer as the gateways and the
 * dispatcher do, with sessions and sockets made the way clients make them.
 *
 *   static server srv;
 *   fsrv_open(&srv, "[namespace /chat]\n");   once (LLVMFuzzerInitialize)
 *   char sid[..]; fsrv_session(&srv, sid);    a polling session
 *   fsrv_feed(&srv, sid, "40");               a client message (polling_post's path)
 *   fsrv_socket(&srv, sid, "/", id);          its socket in a namespace
 *   fsrv_apply(&srv, "{\"action\":...}");     a handler's action line
 *
 * The directory is removed as soon as the store is open.  Every setup step
 * CHECKs its result. */
#ifndef FUZZ_SRV_H
#define FUZZ_SRV_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "proto/eio_parser.h"
#include "proto/json.h"
#include "proto/sio_parser.h"
#include "server/actions.h"
#include "server/http.h"
#include "server/server.h"
#include "server/session.h"
#include "store/logrec.h"

static char fsrv_dir[64];

static void fsrv_rm(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fsrv_dir);
    if (fsrv_dir[0] && system(cmd)) {
    }
}

__attribute__((unused)) static void fsrv_open(server *srv, const char *cfg_text) {
    snprintf(fsrv_dir, sizeof fsrv_dir, "/tmp/sio-fuzz-XXXXXX");
    CHECK(mkdtemp(fsrv_dir) != NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sio.conf", fsrv_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("map_size_mb = 64\n", f);
    fputs(cfg_text, f);
    fclose(f);
    char err[512] = "";
    int rc = server_open(srv, fsrv_dir, path, SERVER_CREATE, err, sizeof err);
    if (rc) fprintf(stderr, "server_open: %d %s\n", rc, err);
    CHECK(rc == 0);
    /* The store stays open through its descriptors and map; removing the
     * directory now leaves nothing behind when a crash ends the process
     * (no atexit then).  Nothing reopens it by name (notify.sock is never
     * there: no stated). */
    fsrv_rm();
}

/* A polling session, as a handshake opens it. */
__attribute__((unused)) static void fsrv_session(server *srv, char sid[UTIL_ID_LEN + 1]) {
    static const char *const headers[] = {"host", "example.test", "cookie", "io=x; a=b", NULL};
    http_req req = {.method = "GET",
                    .query = "EIO=4&transport=polling",
                    .remote_addr = "192.0.2.7",
                    .url = "/socket.io/?EIO=4&transport=polling",
                    .headers = headers,
                    .content_length = -1};
    uint64_t cursor = 0;
    CHECK(session_create(srv, &req, STORE_T_POLLING, sid, &cursor) == 0);
}

/* One client message on sid, as polling_post handles it; the result of
 * session_packet (0 or a SESSION_CLOSE_* reason). */
__attribute__((unused)) static int fsrv_feed(server *srv, const char *sid, const char *text) {
    store_txn *t;
    CHECK(store_begin(srv->st, 1, &t) == 0);
    store_session ss;
    CHECK(store_session_get(t, sid, &ss) == 0);
    eio_packet pk = {EIO_MESSAGE, 0, (const uint8_t *)text, strlen(text)};
    uint64_t seq = 0;
    int rc = session_packet(srv, t, sid, &ss, &pk, &seq);
    CHECK(rc >= 0);
    CHECK((rc ? session_close(t, sid, &ss, rc) : store_session_put(t, sid, &ss)) == 0);
    CHECK(store_commit(t) == 0);
    return rc;
}

typedef struct fsrv_find {
    const char *nsp;
    char *id;
} fsrv_find;

static int fsrv_find_cb(void *arg, const store_socket *so) {
    fsrv_find *f = arg;
    if (strcmp(so->nsp, f->nsp)) return 0;
    strcpy(f->id, so->id);
    return 1;
}

/* Connects sid to nsp and gives its socket's id. */
__attribute__((unused)) static void fsrv_socket(server *srv, const char *sid, const char *nsp,
                                                char id[UTIL_ID_LEN + 1]) {
    char msg[200];
    snprintf(msg, sizeof msg, strcmp(nsp, "/") ? "0%s," : "0", nsp);
    CHECK(fsrv_feed(srv, sid, msg) == 0);
    store_txn *t;
    CHECK(store_begin(srv->st, 0, &t) == 0);
    fsrv_find f = {nsp, id};
    id[0] = 0;
    CHECK(store_session_sockets(t, sid, fsrv_find_cb, &f) >= 0);
    store_abort(t);
    CHECK(id[0] != 0);
}

/* Applies one action (JSON text) in its own transaction; must succeed. */
__attribute__((unused)) static void fsrv_apply(server *srv, const char *json) {
    cJSON *a = cJSON_Parse(json);
    CHECK(a != NULL);
    store_txn *t;
    CHECK(store_begin(srv->st, 1, &t) == 0);
    char err[256] = "";
    uint64_t seq = 0;
    int rc = actions_apply_json(srv, t, a, NULL, &seq, err, sizeof err);
    if (rc) fprintf(stderr, "fsrv_apply %s: %d %s\n", json, rc, err);
    CHECK(rc == 0);
    CHECK(store_commit(t) == 0);
    cJSON_Delete(a);
}

/* Closes and deletes every session not in keep (n ids), and trims both
 * logs: what one input did is undone, so that the store stays small and
 * inputs do not depend on each other. */
typedef struct fsrv_sids {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n, cap;
} fsrv_sids;

static int fsrv_sids_cb(void *arg, const char *sid, const store_session *s) {
    (void)s;
    fsrv_sids *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->ids = realloc(l->ids, l->cap * sizeof *l->ids);
        CHECK(l->ids != NULL);
    }
    snprintf(l->ids[l->n++], UTIL_ID_LEN + 1, "%s", sid);
    return 0;
}

__attribute__((unused)) static void fsrv_reset(server *srv, const char *const *keep, size_t nkeep) {
    store_txn *t;
    CHECK(store_begin(srv->st, 1, &t) == 0);
    fsrv_sids l = {0};
    CHECK(store_session_each(t, fsrv_sids_cb, &l) == 0);
    for (size_t i = 0; i < l.n; i++) {
        int kept = 0;
        for (size_t k = 0; k < nkeep; k++) kept |= !strcmp(keep[k], l.ids[i]);
        if (kept) continue;
        store_session ss;
        if (store_session_get(t, l.ids[i], &ss)) continue;
        if (ss.state != STORE_S_CLOSED) CHECK(session_close(t, l.ids[i], &ss, SESSION_CLOSE_SERVER) == 0);
        CHECK(store_session_del(t, l.ids[i]) == 0);
    }
    free(l.ids);
    uint64_t head = 0;
    size_t bytes;
    CHECK(store_log_bounds(t, NULL, &head) == 0);
    if (head) CHECK(store_log_trim(t, head, &bytes) == 0);
    CHECK(store_inbox_bounds(t, NULL, &head) == 0);
    if (head) CHECK(store_inbox_trim(t, head) == 0);
    CHECK(store_commit(t) == 0);
}

/* reader_collect's callback: every text frame a Socket.IO session receives
 * must decode as a Socket.IO packet (binary attachments are not looked at). */
__attribute__((unused)) static int fsrv_sio_frame(void *arg, const logrec_frame *f) {
    (void)arg;
    if (f->binary) return 0;
    sio_packet p;
    if (sio_decode((const char *)f->data, f->len, &p)) {
        fprintf(stderr, "undecodable frame: %.*s\n", (int)f->len, (const char *)f->data);
        CHECK(0);
    }
    sio_packet_clear(&p);
    return 0;
}

#endif

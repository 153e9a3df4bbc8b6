/* Unit tests for connection state recovery (server/socketio.c with
 * server/reader.c and the store's detached sockets): a real `server` in a
 * temporary directory with connection_state_recovery = 1, polling sessions
 * driven in-process as polling_post drives them (srv_fixture.h).
 *
 * Covers: the pid in the CONNECT reply; which broadcasts carry their offset
 * (events without an ack that are not volatile); a session that ends
 * detaches its sockets (record, pid and rooms kept) unless it ended on a
 * protocol violation; a CONNECT with {pid, offset} in a new session gets
 * the missed events of its rooms in order, then the reply with the same id,
 * and later broadcasts once; no offset (no event yet) replays everything
 * since the socket connected; all or nothing when the log was trimmed; a
 * socket still attached elsewhere is taken over; unknown pids and other
 * namespaces get new sockets; auth namespaces with and without
 * recovery_skip_middlewares; a replay longer than one copy batch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/actions.h"
#include "server/rooms.h"
#include "server/socketio.h"
#include "unit.h"
#include "fixture.h"
#include "srv_fixture.h"

#define CFG                                                                   \
    "connection_state_recovery = 1\n"                                         \
    "[namespace /custom]\n"                                                   \
    "[namespace /private]\n"                                                  \
    "auth = true\n"

#define ASSERT_JSON(o, key, want) ASSERT_EQ_STR(JTEXT((o), (key)), (want))

/* CONNECT to nsp with payload (NULL: none); returns the frames received. */
static void connect_with(server *srv, tsess *s, const char *nsp, const char *payload, frames *f) {
    char msg[600];
    snprintf(msg, sizeof msg, "0%s%s%s", strcmp(nsp, "/") ? nsp : "", strcmp(nsp, "/") ? "," : "",
             payload ? payload : "");
    ASSERT_EQ_INT(FEED(srv, s, msg), 0);
    recv_frames(srv, s, f);
}

/* The {"sid","pid"} of a CONNECT reply frame for "/". */
static void reply_ids(const char *frame, char id[UTIL_ID_LEN + 1], char pid[UTIL_ID_LEN + 1]) {
    ASSERT_TRUE(frame[0] == '0');
    cJSON *j = cJSON_Parse(frame + 1);
    ASSERT_TRUE(j != NULL);
    const char *a = jstr(j, "sid"), *b = jstr(j, "pid");
    ASSERT_TRUE(a && strlen(a) == UTIL_ID_LEN);
    snprintf(id, UTIL_ID_LEN + 1, "%s", a);
    if (pid) {
        ASSERT_TRUE(b && strlen(b) == UTIL_ID_LEN);
        snprintf(pid, UTIL_ID_LEN + 1, "%s", b);
    }
    cJSON_Delete(j);
}

/* A session connected to "/": its socket id and pid. */
static void connected(server *srv, tsess *s, char id[UTIL_ID_LEN + 1], char pid[UTIL_ID_LEN + 1]) {
    sess_new(srv, s, 0);
    frames f;
    connect_with(srv, s, "/", NULL, &f);
    ASSERT_EQ_INT(f.n, 1);
    reply_ids(f.data[0], id, pid);
}

/* A server with CFG and one session connected to "/". */
static void start(server *srv, tsess *a, char id[UTIL_ID_LEN + 1], char pid[UTIL_ID_LEN + 1]) {
    srv_tmp(srv, CFG);
    connected(srv, a, id, pid);
}

/* A new session whose CONNECT to "/" carries {pid[, offset]} (offset NULL:
 * none; extra: more members, "" for none): the frames it receives. */
static void reconnect(server *srv, tsess *b, const char *pid, const char *offset, const char *extra,
                      frames *f) {
    sess_new(srv, b, 0);
    char auth[300];
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\"%s%s%s%s}", pid, offset ? ",\"offset\":\"" : "",
             offset ? offset : "", offset ? "\"" : "", extra);
    connect_with(srv, b, "/", auth, f);
}

/* The decimal text of a seq (in a caller's buffer). */
#define SEQ(x) seqbuf(x)
static const char *seqbuf(uint64_t x) {
    static char b[8][24];
    static int i;
    char *p = b[i++ % 8];
    snprintf(p, 24, "%llu", (unsigned long long)x);
    return p;
}

/* Emits `event` with one number argument to room (NULL: everyone) with
 * flags; returns the record's seq. */
static uint64_t emit_n(server *srv, const char *room, const char *event, int n, int ack,
                       int is_volatile) {
    actions_target to;
    memset(&to, 0, sizeof to);
    if (room) to.to[to.nto++] = room;
    to.is_volatile = is_volatile;
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cJSON_CreateNumber(n));
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    uint64_t seq = 0;
    char err[200] = "";
    int rc = actions_emit(srv, t, &to, event, args, ack ? 7 : -1, &seq, NULL, err, sizeof err);
    cJSON_Delete(args);
    if (rc) {
        store_abort(t);
        unit_fail(__FILE__, __LINE__, "actions_emit: %d %s", rc, err);
    }
    ASSERT_EQ_INT(store_commit(t), 0);
    return seq;
}

/* Closes a session as the reaper or a transport does. */
static void close_session(server *srv, tsess *s, int reason) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    store_session ss;
    ASSERT_EQ_INT(store_session_get(t, s->sid, &ss), 0);
    ASSERT_EQ_INT(session_close(t, s->sid, &ss, reason), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
}

static store_socket sock_get(server *srv, const char *id, int *found) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    store_socket so;
    memset(&so, 0, sizeof so);
    *found = store_socket_get(t, id, &so) == 0;
    so.data = NULL;
    so.data_len = 0;
    store_abort(t);
    return so;
}

static int in_room(server *srv, const char *room, const char *id) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    int rc = store_room_has(t, "/", room, strlen(room), id, NULL);
    store_abort(t);
    return rc == 0;
}

static void join(server *srv, const char *id, const char *room) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    store_socket so;
    ASSERT_EQ_INT(store_socket_get(t, id, &so), 0);
    ASSERT_EQ_INT(rooms_join(t, &so, room), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
}

static void trim_upto(server *srv, uint64_t upto) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    ASSERT_EQ_INT(store_log_trim(t, upto, NULL), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
}

TEST(connect_reply_carries_a_pid_only_with_recovery) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    ASSERT_TRUE(strcmp(id, pid) != 0);
    int found;
    store_socket so = sock_get(&srv, id, &found);
    ASSERT_TRUE(found);
    ASSERT_EQ_STR(so.pid, pid);
    srv_drop(&srv);

    srv_tmp(&srv, "[namespace /custom]\n");
    tsess b;
    sess_new(&srv, &b, 0);
    frames f;
    connect_with(&srv, &b, "/", NULL, &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_TRUE(strstr(f.data[0], "\"pid\"") == NULL);
    srv_drop(&srv);
}

TEST(events_carry_their_offset_unless_acked_or_volatile) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    uint64_t s1 = emit_n(&srv, NULL, "n", 1, 0, 0);
    emit_n(&srv, NULL, "n", 2, 1, 0); /* asks for an ack */
    emit_n(&srv, NULL, "n", 3, 0, 1); /* volatile */
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 3);
    char want[100];
    snprintf(want, sizeof want, "2[\"n\",1,\"%llu\"]", (unsigned long long)s1);
    ASSERT_EQ_STR(f.data[0], want);
    ASSERT_EQ_STR(f.data[1], "27[\"n\",2]");
    ASSERT_EQ_STR(f.data[2], "2[\"n\",3]");
    srv_drop(&srv);
}

TEST(a_session_that_ends_detaches_its_sockets_with_their_rooms) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a, b;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1], idb[UTIL_ID_LEN + 1], pidb[UTIL_ID_LEN + 1];
    connected(&srv, &a, id, pid);
    connected(&srv, &b, idb, pidb);
    join(&srv, id, "r");
    join(&srv, idb, "r");
    uint64_t in = inbox_head(&srv);
    close_session(&srv, &a, SESSION_CLOSE_PING_TIMEOUT);
    int found;
    store_socket so = sock_get(&srv, id, &found);
    ASSERT_TRUE(found);
    ASSERT_TRUE(so.detached_ms > 0);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_TRUE(in_room(&srv, "r", id));
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "reason"), "ping timeout");
    cJSON_Delete(recs);
    /* fetchSockets leaves it out; a disconnect reaches it and ends it */
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    actions_target to;
    memset(&to, 0, sizeof to);
    size_t n = 0;
    char err[100];
    ASSERT_EQ_INT(actions_sockets(&srv, t, &to, fx_count_cb, &n, err, sizeof err), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(actions_disconnect(&srv, t, &to, 0, NULL, &n, err, sizeof err), 0);
    ASSERT_EQ_INT(n, 2);
    char got[UTIL_ID_LEN + 1];
    ASSERT_EQ_INT(store_pid_socket(t, pid, got), STORE_NOTFOUND);
    ASSERT_EQ_INT(store_commit(t), 0);
    sock_get(&srv, id, &found);
    ASSERT_TRUE(!found);
    /* a protocol violation deletes at once */
    tsess c;
    char idc[UTIL_ID_LEN + 1], pidc[UTIL_ID_LEN + 1];
    connected(&srv, &c, idc, pidc);
    close_session(&srv, &c, SESSION_CLOSE_PARSE_ERROR);
    sock_get(&srv, idc, &found);
    ASSERT_TRUE(!found);
    srv_drop(&srv);
}

TEST(recovery_replays_what_the_socket_missed_then_goes_on_live) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a, other;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1], ido[UTIL_ID_LEN + 1], pido[UTIL_ID_LEN + 1];
    connected(&srv, &a, id, pid);
    connected(&srv, &other, ido, pido);
    join(&srv, id, "r");
    uint64_t got = emit_n(&srv, NULL, "n", 1, 0, 0); /* the client's last */
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    uint64_t m2 = emit_n(&srv, "r", "n", 2, 0, 0); /* in flight when it broke */
    close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);
    uint64_t m3 = emit_n(&srv, NULL, "n", 3, 0, 0);
    emit_n(&srv, "elsewhere", "n", 4, 0, 0); /* not its room */
    emit_n(&srv, NULL, "n", 5, 0, 1);        /* volatile */
    emit_n(&srv, NULL, "n", 6, 1, 0);        /* an ack request */
    uint64_t m7 = emit_n(&srv, "r", "n", 7, 0, 0);
    uint64_t in = inbox_head(&srv);

    tsess b;
    reconnect(&srv, &b, pid, SEQ(got), ",\"token\":\"t\"", &f);
    ASSERT_EQ_INT(f.n, 4);
    uint64_t want_seq[] = {m2, m3, m7};
    int want_n[] = {2, 3, 7};
    for (int i = 0; i < 3; i++) {
        char want[100];
        snprintf(want, sizeof want, "2[\"n\",%d,\"%llu\"]", want_n[i], (unsigned long long)want_seq[i]);
        UNIT_CTX("replayed %d", i);
        ASSERT_EQ_STR(f.data[i], want);
    }
    UNIT_CTX("%s", "");
    char rid[UTIL_ID_LEN + 1], rpid[UTIL_ID_LEN + 1];
    reply_ids(f.data[3], rid, rpid);
    ASSERT_EQ_STR(rid, id);
    ASSERT_EQ_STR(rpid, pid);
    int found;
    store_socket so = sock_get(&srv, id, &found);
    ASSERT_TRUE(found && so.detached_ms == 0);
    ASSERT_EQ_STR(so.sid, b.sid);
    ASSERT_TRUE(in_room(&srv, "r", id));
    ASSERT_EQ_INT(sess_get(&srv, b.sid).nsockets, 1);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    check_rec(r, "connection", "/", id, b.sid);
    ASSERT_JSON(r, "recovered", "true");
    ASSERT_EQ_STR(JTEXT(cJSON_GetObjectItemCaseSensitive(r, "auth"), "token"), "\"t\"");
    cJSON_Delete(recs);
    /* live again: the next broadcast once, none of the old ones again */
    uint64_t m8 = emit_n(&srv, "r", "n", 8, 0, 0);
    recv_frames(&srv, &b, &f);
    ASSERT_EQ_INT(f.n, 1);
    char want[100];
    snprintf(want, sizeof want, "2[\"n\",8,\"%llu\"]", (unsigned long long)m8);
    ASSERT_EQ_STR(f.data[0], want);
    /* the other client got what was for everyone, once */
    recv_frames(&srv, &other, &f);
    ASSERT_EQ_INT(f.n, 4); /* 1, 3, 5 (volatile), 6 (ack) */
    srv_drop(&srv);
}

TEST(no_offset_means_everything_since_it_connected) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    close_session(&srv, &a, SESSION_CLOSE_PING_TIMEOUT);
    emit_n(&srv, NULL, "n", 1, 0, 0);
    emit_n(&srv, NULL, "n", 2, 0, 0);
    tsess b;
    frames f;
    reconnect(&srv, &b, pid, NULL, "", &f);
    ASSERT_EQ_INT(f.n, 3);
    ASSERT_TRUE(!strncmp(f.data[0], "2[\"n\",1,", 8));
    ASSERT_TRUE(!strncmp(f.data[1], "2[\"n\",2,", 8));
    char rid[UTIL_ID_LEN + 1];
    reply_ids(f.data[2], rid, NULL);
    ASSERT_EQ_STR(rid, id);
    srv_drop(&srv);
}

TEST(all_or_nothing_when_the_log_was_trimmed_past_the_offset) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    uint64_t got = emit_n(&srv, NULL, "n", 1, 0, 0);
    close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);
    uint64_t m2 = emit_n(&srv, NULL, "n", 2, 0, 0);
    emit_n(&srv, NULL, "n", 3, 0, 0);
    trim_upto(&srv, m2); /* m2 is gone: no partial replay */
    tsess b;
    frames f;
    reconnect(&srv, &b, pid, SEQ(got), "", &f);
    ASSERT_EQ_INT(f.n, 1);
    char rid[UTIL_ID_LEN + 1], rpid[UTIL_ID_LEN + 1];
    reply_ids(f.data[0], rid, rpid);
    ASSERT_TRUE(strcmp(rid, id) != 0);
    ASSERT_TRUE(strcmp(rpid, pid) != 0);
    /* nor offsets that cannot be: ahead of the log, not a number */
    const char *bad[] = {"99999", "1x", "", "-1", "123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("offset '%s'", bad[i]);
        tsess c;
        reconnect(&srv, &c, pid, bad[i], "", &f);
        ASSERT_EQ_INT(f.n, 1);
        reply_ids(f.data[0], rid, NULL);
        ASSERT_TRUE(strcmp(rid, id) != 0);
    }
    srv_drop(&srv);
}

TEST(unknown_pids_and_other_namespaces_get_a_new_socket) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);
    tsess b;
    sess_new(&srv, &b, 0);
    frames f;
    char auth[100];
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\"}", pid);
    connect_with(&srv, &b, "/custom", auth, &f); /* its pid is of "/" */
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_TRUE(strstr(f.data[0], id) == NULL);
    connect_with(&srv, &b, "/", "{\"pid\":\"AAAAAAAAAAAAAAAAAAAA\"}", &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_TRUE(strstr(f.data[0], id) == NULL);
    int found;
    store_socket so = sock_get(&srv, id, &found);
    ASSERT_TRUE(found && so.detached_ms > 0); /* still waiting */
    srv_drop(&srv);
}

TEST(a_socket_still_attached_elsewhere_is_taken_over) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    uint64_t got = emit_n(&srv, NULL, "n", 1, 0, 0);
    uint64_t m2 = emit_n(&srv, NULL, "n", 2, 0, 0);
    /* the client lost its polling session's answer and comes back in a new
     * one while the old one still looks open */
    tsess b;
    frames f;
    reconnect(&srv, &b, pid, SEQ(got), "", &f);
    ASSERT_EQ_INT(f.n, 2);
    char want[100];
    snprintf(want, sizeof want, "2[\"n\",2,\"%llu\"]", (unsigned long long)m2);
    ASSERT_EQ_STR(f.data[0], want);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 0);
    ASSERT_EQ_INT(sock_count(&srv, b.sid), 1);
    /* the old session no longer delivers it; closing it leaves it alone */
    emit_n(&srv, NULL, "n", 3, 0, 0);
    frames fa;
    recv_frames(&srv, &a, &fa);
    ASSERT_EQ_INT(fa.n, 0); /* the socket is no longer its own */
    close_session(&srv, &a, SESSION_CLOSE_PING_TIMEOUT);
    int found;
    store_socket so = sock_get(&srv, id, &found);
    ASSERT_TRUE(found && so.detached_ms == 0);
    ASSERT_EQ_STR(so.sid, b.sid);
    recv_frames(&srv, &b, &f);
    ASSERT_EQ_INT(f.n, 1);
    srv_drop(&srv);
}

TEST(auth_namespaces_skip_the_middleware_or_not) {
    for (int skip = 1; skip >= 0; skip--) {
        UNIT_CTX("recovery_skip_middlewares = %d", skip);
        char conf[300];
        snprintf(conf, sizeof conf, "connection_state_recovery = 1\nrecovery_skip_middlewares = %d\n"
                 "[namespace /private]\nauth = true\n", skip);
        server srv;
        srv_tmp(&srv, conf);
        tsess a;
        sess_new(&srv, &a, 0);
        uint64_t in = inbox_head(&srv);
        ASSERT_EQ_INT(FEED(&srv, &a, "0/private,{\"token\":\"x\"}"), 0);
        cJSON *recs = inbox_since(&srv, &in);
        cJSON *r = cJSON_GetArrayItem(recs, 0);
        ASSERT_EQ_STR(jstr(r, "type"), "connect");
        char pending[UTIL_ID_LEN + 1];
        snprintf(pending, sizeof pending, "%s", jstr(r, "socket"));
        cJSON_Delete(recs);
        store_txn *t;
        uint64_t seq;
        ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
        ASSERT_EQ_INT(socketio_accept(&srv, t, a.sid, "/private", pending, NULL, NULL, &seq), 0);
        ASSERT_EQ_INT(store_commit(t), 0);
        frames f;
        recv_frames(&srv, &a, &f);
        ASSERT_EQ_INT(f.n, 1);
        cJSON *j = cJSON_Parse(strchr(f.data[0], ',') + 1);
        char pid[UTIL_ID_LEN + 1];
        snprintf(pid, sizeof pid, "%s", jstr(j, "pid"));
        cJSON_Delete(j);
        close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);

        tsess b;
        sess_new(&srv, &b, 0);
        in = inbox_head(&srv);
        char msg[200];
        snprintf(msg, sizeof msg, "0/private,{\"pid\":\"%s\"}", pid);
        ASSERT_EQ_INT(FEED(&srv, &b, msg), 0);
        recs = inbox_since(&srv, &in);
        r = cJSON_GetArrayItem(recs, 0);
        if (skip) { /* recovered at once: no auth handler */
            ASSERT_EQ_STR(jstr(r, "type"), "connection");
            ASSERT_EQ_STR(jstr(r, "socket"), pending);
            ASSERT_JSON(r, "recovered", "true");
        } else { /* the auth handler runs, then its accept recovers */
            ASSERT_EQ_STR(jstr(r, "type"), "connect");
            ASSERT_EQ_STR(jstr(cJSON_GetObjectItemCaseSensitive(r, "auth"), "pid"), pid);
            char fresh[UTIL_ID_LEN + 1];
            snprintf(fresh, sizeof fresh, "%s", jstr(r, "socket"));
            cJSON *auth = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "auth"), 1);
            ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
            ASSERT_EQ_INT(socketio_accept(&srv, t, b.sid, "/private", fresh, auth, NULL, &seq), 0);
            ASSERT_EQ_INT(store_commit(t), 0);
            cJSON_Delete(auth);
        }
        cJSON_Delete(recs);
        recv_frames(&srv, &b, &f);
        ASSERT_EQ_INT(f.n, 1);
        ASSERT_TRUE(strstr(f.data[0], pending) != NULL); /* the same id */
        srv_drop(&srv);
    }
}

TEST(a_long_replay_is_copied_in_batches_in_order) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);
    /* 100 events of 40 kB: about 4 MB, several batches */
    char *big = malloc(40001);
    memset(big, 'x', 40000);
    big[40000] = 0;
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    for (int i = 0; i < 100; i++) {
        actions_target to;
        memset(&to, 0, sizeof to);
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cJSON_CreateNumber(i));
        cJSON_AddItemToArray(args, cJSON_CreateString(big));
        char err[100];
        ASSERT_EQ_INT(actions_emit(&srv, t, &to, "big", args, -1, NULL, NULL, err, sizeof err), 0);
        cJSON_Delete(args);
    }
    ASSERT_EQ_INT(store_commit(t), 0);
    free(big);
    tsess b;
    frames f;
    reconnect(&srv, &b, pid, NULL, "", &f);
    ASSERT_EQ_INT(f.n, 101);
    for (int i = 0; i < 100; i++) {
        char want[40];
        snprintf(want, sizeof want, "2[\"big\",%d,\"xxx", i);
        UNIT_CTX("event %d", i);
        ASSERT_TRUE(!strncmp(f.data[i], want, strlen(want)));
    }
    UNIT_CTX("%s", "");
    ASSERT_TRUE(f.data[100][0] == '0');
    srv_drop(&srv);
}

/* What a GET's arrival says (polling.c): the client has read the last answer. */
static void acked_now(server *srv, const tsess *s) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 1, &t), 0);
    store_session ss;
    ASSERT_EQ_INT(store_session_get(t, s->sid, &ss), 0);
    ss.acked = s->cursor;
    ASSERT_EQ_INT(store_session_put(t, s->sid, &ss), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
}

TEST(what_reached_the_client_lets_an_old_offset_recover) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1], pid[UTIL_ID_LEN + 1];
    start(&srv, &a, id, pid);
    uint64_t x = emit_n(&srv, NULL, "n", 1, 0, 0); /* the client's last offset, for good */
    frames f;
    recv_frames(&srv, &a, &f);
    for (int i = 0; i < 3; i++) emit_n(&srv, "other", "n", 9, 0, 0);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0);
    acked_now(&srv, &a); /* its next GET */
    store_txn *t;
    uint64_t head;
    ASSERT_EQ_INT(store_begin(srv.st, 0, &t), 0);
    ASSERT_EQ_INT(store_log_bounds(t, NULL, &head), 0);
    store_abort(t);
    trim_upto(&srv, head); /* x is long gone, and nothing it missed */
    close_session(&srv, &a, SESSION_CLOSE_TRANSPORT);
    tsess b;
    reconnect(&srv, &b, pid, SEQ(x), "", &f);
    ASSERT_EQ_INT(f.n, 1);
    char rid[UTIL_ID_LEN + 1];
    reply_ids(f.data[0], rid, NULL);
    ASSERT_EQ_STR(rid, id);
    /* broken again before its new session's client read anything: that
     * session's acked says nothing about the socket, so 3 is replayed */
    uint64_t m3 = emit_n(&srv, NULL, "n", 3, 0, 0);
    close_session(&srv, &b, SESSION_CLOSE_TRANSPORT);
    tsess c;
    reconnect(&srv, &c, pid, SEQ(x), "", &f);
    ASSERT_EQ_INT(f.n, 2);
    char want[100];
    snprintf(want, sizeof want, "2[\"n\",3,\"%llu\"]", (unsigned long long)m3);
    ASSERT_EQ_STR(f.data[0], want);
    /* once the client read it (the next GET), a stale offset replays only
     * what came after */
    acked_now(&srv, &c);
    uint64_t m4 = emit_n(&srv, NULL, "n", 4, 0, 0);
    close_session(&srv, &c, SESSION_CLOSE_PING_TIMEOUT);
    tsess d;
    reconnect(&srv, &d, pid, SEQ(x), "", &f);
    ASSERT_EQ_INT(f.n, 2);
    snprintf(want, sizeof want, "2[\"n\",4,\"%llu\"]", (unsigned long long)m4);
    ASSERT_EQ_STR(f.data[0], want);
    srv_drop(&srv);
}

UNIT_MAIN()

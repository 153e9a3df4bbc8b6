/* Unit tests for server/socketio.c, the Socket.IO layer, driven through
 * server/session.h as a transport drives it: a real `server` (store + config
 * file) in a temporary directory, a polling session from session_create, and
 * client messages fed with session_packet inside a write transaction exactly
 * as polling_post does (tests/unit/srv_fixture.h).  What the client would
 * receive is read with reader_collect from the session's cursor, what
 * application logic receives with store_inbox_scan.
 *
 * Covers: CONNECT (the "/" reply, the socket, its own room, the "connection"
 * record with auth and handshake), unknown / exact / pattern namespaces,
 * CONNECT twice, the per-session namespace limit, EVENT with and without an
 * ack id, client ACKs, binary events and acks reassembled from attachments,
 * the parse errors (text while an attachment is due, an attachment with
 * nothing due, packets for a namespace never joined, CONNECT_ERROR from a
 * client), client DISCONNECT, `auth` namespaces with socketio_accept /
 * socketio_refuse, the on_event hook, session_close and the Node reasons of
 * socketio_disconnect_reason. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/rooms.h"
#include "server/socketio.h"
#include "unit.h"
#include "fixture.h"
#include "srv_fixture.h"

#define CFG                                                                   \
    "[namespace /custom]\n"                                                   \
    "[namespace ~/dyn-[0-9]+]\n"                                              \
    "[namespace /private]\n"                                                  \
    "auth = true\n"

/* The record's member as compact JSON. */
#define ASSERT_JSON(o, key, want) ASSERT_EQ_STR(JTEXT((o), (key)), (want))

static int store_has_room(server *srv, const char *nsp, const char *room, const char *id) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    int rc = store_room_has(t, nsp, room, strlen(room), id, NULL);
    store_abort(t);
    return rc;
}

static int has_partial(server *srv, const char *sid) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv->st, 0, &t), 0);
    const void *p;
    size_t l;
    int rc = store_partial_get(t, sid, &p, &l);
    store_abort(t);
    return rc == 0;
}

TEST(connect_root_answers_sid_and_records_connection) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "0{\"token\":\"abc\"}"), 0);

    char id[UTIL_ID_LEN + 1];
    ASSERT_EQ_INT(sock_of(&srv, a.sid, "/", id), 1);
    ASSERT_TRUE(strcmp(id, a.sid) != 0); /* the socket id is not the Engine.IO sid */
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_EQ_INT(f.binary[0], 0);
    /* stored without the Engine.IO '4': the client gets "40{...}" */
    char want[100];
    snprintf(want, sizeof want, "0{\"sid\":\"%s\"}", id);
    ASSERT_EQ_STR(f.data[0], want);

    /* the socket, in its own room, with the CONNECT payload as auth */
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 0, &t), 0);
    store_socket so;
    ASSERT_EQ_INT(store_socket_get(t, id, &so), 0);
    ASSERT_EQ_STR(so.sid, a.sid);
    ASSERT_EQ_STR(so.nsp, "/");
    ASSERT_MEM(so.data, so.data_len, "{\"auth\":{\"token\":\"abc\"}}", 24);
    uint64_t js = 99;
    ASSERT_EQ_INT(store_room_has(t, "/", id, strlen(id), id, &js), 0);
    ASSERT_EQ_INT(js, so.created_seq);
    store_abort(t);
    store_session ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.nsockets, 1);
    ASSERT_EQ_INT(ss.ever_connected, 1);
    ASSERT_EQ_INT(ss.state, STORE_S_OPEN);

    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    check_rec(r, "connection", "/", id, a.sid);
    ASSERT_JSON(r, "auth", "{\"token\":\"abc\"}");
    ASSERT_JSON(r, "data", "(absent)");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(r, "handshake");
    ASSERT_EQ_STR(jstr(hs, "address"), "192.0.2.7");
    ASSERT_EQ_STR(jstr(hs, "url"), "/socket.io/?EIO=4&transport=polling&k=v");
    ASSERT_JSON(hs, "query", "{\"EIO\":\"4\",\"transport\":\"polling\",\"k\":\"v\"}");
    ASSERT_JSON(hs, "headers", "{\"host\":\"example.test\",\"x-test\":\"1\"}");
    ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(hs, "time")));
    cJSON_Delete(recs);

    /* a CONNECT without payload: auth is {} */
    tsess b;
    sess_new(&srv, &b, 0);
    ASSERT_EQ_INT(FEED(&srv, &b, "0"), 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    ASSERT_JSON(cJSON_GetArrayItem(recs, 0), "auth", "{}");
    cJSON_Delete(recs);
    srv_drop(&srv);
}

TEST(connect_to_unknown_namespace_gets_connect_error) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/nope,"), 0);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/nope2,{\"x\":1}"), 0);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 2);
    ASSERT_EQ_STR(f.data[0], "4/nope,{\"message\":\"Invalid namespace\"}");
    ASSERT_EQ_STR(f.data[1], "4/nope2,{\"message\":\"Invalid namespace\"}");
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    /* the connection stays open, and may still join a namespace */
    store_session ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.state, STORE_S_OPEN);
    ASSERT_EQ_INT(ss.ever_connected, 0);
    char id[UTIL_ID_LEN + 1];
    sess_connect(&srv, &a, "/custom", id);
    srv_drop(&srv);
}

TEST(exact_and_pattern_namespaces) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1];
    srv_connected(&srv, CFG, &a, "/custom", id);
    sess_connect(&srv, &a, "/dyn-42", id);
    sess_connect(&srv, &a, "/dyn-0", id);
    /* the pattern must match the whole name */
    static const char *const bad[] = {"/dyn-x", "/dyn-42x", "/xdyn-1", "/dyn-", "/custom2", "/Custom"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("%s", bad[i]);
        char msg[64], want[128];
        snprintf(msg, sizeof msg, "0%s,", bad[i]);
        snprintf(want, sizeof want, "4%s,{\"message\":\"Invalid namespace\"}", bad[i]);
        ASSERT_EQ_INT(FEED(&srv, &a, msg), 0);
        frames f;
        recv_frames(&srv, &a, &f);
        ASSERT_EQ_INT(f.n, 1);
        ASSERT_EQ_STR(f.data[0], want);
    }
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 3);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 3);
    srv_drop(&srv);
}

TEST(connect_twice_to_a_namespace_is_a_parse_error) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1];
    srv_connected(&srv, CFG, &a, "/custom", id);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/custom,"), SESSION_CLOSE_PARSE_ERROR);
    store_session ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.state, STORE_S_CLOSED);
    ASSERT_EQ_INT(ss.close_reason, SESSION_CLOSE_PARSE_ERROR);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "disconnect");
    ASSERT_EQ_STR(jstr(r, "socket"), id);
    ASSERT_EQ_STR(jstr(r, "nsp"), "/custom");
    ASSERT_EQ_STR(jstr(r, "reason"), "parse error");
    cJSON_Delete(recs);
    srv_drop(&srv);
}

TEST(the_65th_namespace_of_a_session_is_refused) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    char id[UTIL_ID_LEN + 1], first_dyn[UTIL_ID_LEN + 1] = "";
    sess_connect(&srv, &a, "/", id);
    for (int i = 1; i < SOCKETIO_MAX_NSP_PER_SESSION; i++) {
        char nsp[32];
        snprintf(nsp, sizeof nsp, "/dyn-%d", i);
        UNIT_CTX("%s", nsp);
        sess_connect(&srv, &a, nsp, id);
        if (i == 1) strcpy(first_dyn, id);
    }
    UNIT_CTX("65th");
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 64);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 64);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/dyn-64,"), 0);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_EQ_STR(f.data[0], "4/dyn-64,{\"message\":\"Too many namespaces\"}");
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 64);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    /* leaving one makes room for another */
    ASSERT_EQ_INT(FEED(&srv, &a, "1/dyn-1,"), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 63);
    sess_connect(&srv, &a, "/dyn-64", id);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 64);
    /* a message to every socket of the session still reaches all 64 */
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    sio_packet p = {.type = SIO_EVENT, .id = -1};
    strcpy(p.nsp, "/dyn-64");
    p.data = cJSON_Parse("[\"hi\"]");
    bcast to = {"/dyn-64", NULL, 0, NULL, 0, 0};
    uint64_t seq;
    ASSERT_EQ_INT(socketio_emit(&srv, t, &to, &p, &seq), 0);
    sio_packet_clear(&p);
    ASSERT_EQ_INT(store_commit(t), 0);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_EQ_STR(f.data[0], "2/dyn-64,[\"hi\"]");
    srv_drop(&srv);
}

TEST(event_with_and_without_ack_id_goes_to_the_inbox) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1];
    srv_connected(&srv, CFG, &a, "/custom", id);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "2/custom,7[\"hello\",{\"a\":1},[2,\"x\"]]"), 0);
    ASSERT_EQ_INT(FEED(&srv, &a, "2/custom,[\"plain\"]"), 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 2);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    check_rec(r, "event", "/custom", id, a.sid);
    ASSERT_EQ_STR(jstr(r, "event"), "hello");
    ASSERT_JSON(r, "args", "[{\"a\":1},[2,\"x\"]]");
    ASSERT_JSON(r, "ack", "7");
    r = cJSON_GetArrayItem(recs, 1);
    ASSERT_EQ_STR(jstr(r, "event"), "plain");
    ASSERT_JSON(r, "args", "[]");
    ASSERT_JSON(r, "ack", "(absent)");
    cJSON_Delete(recs);
    /* nothing goes back to the client */
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0);
    srv_drop(&srv);
}

TEST(client_ack_with_id_is_recorded_without_id_ignored) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1];
    srv_connected(&srv, CFG, &a, "/", id);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "312[\"ok\",5]"), 0);
    ASSERT_EQ_INT(FEED(&srv, &a, "3[\"nobody asked\"]"), 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    check_rec(r, "ack", "/", id, a.sid);
    ASSERT_JSON(r, "id", "12");
    ASSERT_JSON(r, "args", "[\"ok\",5]");
    cJSON_Delete(recs);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    srv_drop(&srv);
}

TEST(binary_event_and_ack_arrive_with_binary_markers) {
    server srv;
    tsess a;
    char id[UTIL_ID_LEN + 1];
    srv_connected(&srv, CFG, &a, "/custom", id);
    uint64_t in = inbox_head(&srv);

    ASSERT_EQ_INT(FEED(&srv, &a, "51-/custom,[\"up\",{\"_placeholder\":true,\"num\":0},\"t\"]"), 0);
    ASSERT_EQ_INT(has_partial(&srv, a.sid), 1);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0); /* not before its attachment */
    cJSON_Delete(recs);
    const uint8_t bin[] = {1, 2, 3, 0xff};
    ASSERT_EQ_INT(sess_feed(&srv, &a, bin, sizeof bin, 1), 0);
    ASSERT_EQ_INT(has_partial(&srv, a.sid), 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "event");
    ASSERT_EQ_STR(jstr(r, "nsp"), "/custom");
    ASSERT_EQ_STR(jstr(r, "event"), "up");
    ASSERT_JSON(r, "args", "[{\"$binary\":\"AQID/w==\"},\"t\"]");
    ASSERT_JSON(r, "ack", "(absent)");
    cJSON_Delete(recs);

    /* two attachments, numbered out of order, with an ack id */
    ASSERT_EQ_INT(FEED(&srv, &a, "52-/custom,4[\"two\",{\"_placeholder\":true,\"num\":1},"
                                 "{\"_placeholder\":true,\"num\":0}]"), 0);
    ASSERT_EQ_INT(sess_feed(&srv, &a, "A", 1, 1), 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    ASSERT_EQ_INT(sess_feed(&srv, &a, "BB", 2, 1), 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "event"), "two");
    ASSERT_JSON(r, "args", "[{\"$binary\":\"QkI=\"},{\"$binary\":\"QQ==\"}]");
    ASSERT_JSON(r, "ack", "4");
    cJSON_Delete(recs);

    /* a binary ack */
    ASSERT_EQ_INT(FEED(&srv, &a, "61-/custom,9[{\"_placeholder\":true,\"num\":0}]"), 0);
    ASSERT_EQ_INT(sess_feed(&srv, &a, "\x00", 1, 1), 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "ack");
    ASSERT_JSON(r, "id", "9");
    ASSERT_JSON(r, "args", "[{\"$binary\":\"AA==\"}]");
    cJSON_Delete(recs);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    srv_drop(&srv);
}

TEST(text_while_an_attachment_is_due_and_stray_attachments_are_parse_errors) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a, b;
    sess_new(&srv, &a, 0);
    sess_new(&srv, &b, 0);
    char id[UTIL_ID_LEN + 1];
    sess_connect(&srv, &a, "/", id);
    sess_connect(&srv, &b, "/", id);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "51-[\"up\",{\"_placeholder\":true,\"num\":0}]"), 0);
    ASSERT_EQ_INT(FEED(&srv, &a, "2[\"x\"]"), SESSION_CLOSE_PARSE_ERROR);
    ASSERT_EQ_INT(has_partial(&srv, a.sid), 0); /* session_close drops it */
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_CLOSED);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "type"), "disconnect");
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "reason"), "parse error");
    cJSON_Delete(recs);
    /* an attachment nobody announced */
    ASSERT_EQ_INT(sess_feed(&srv, &b, "\x01", 1, 1), SESSION_CLOSE_PARSE_ERROR);
    ASSERT_EQ_INT(sess_get(&srv, b.sid).state, STORE_S_CLOSED);
    srv_drop(&srv);
}

TEST(client_disconnect_removes_the_socket) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    char root[UTIL_ID_LEN + 1], cust[UTIL_ID_LEN + 1];
    sess_connect(&srv, &a, "/", root);
    sess_connect(&srv, &a, "/custom", cust);
    ASSERT_EQ_INT(store_has_room(&srv, "/custom", cust, cust), 0);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "1/custom,"), 0);
    char id[UTIL_ID_LEN + 1];
    ASSERT_EQ_INT(sock_of(&srv, a.sid, "/custom", id), 0);
    ASSERT_EQ_INT(sock_of(&srv, a.sid, "/", id), 1);
    ASSERT_EQ_STR(id, root);
    ASSERT_EQ_INT(store_has_room(&srv, "/custom", cust, cust), STORE_NOTFOUND);
    store_session ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.nsockets, 1);
    ASSERT_EQ_INT(ss.state, STORE_S_OPEN);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    check_rec(r, "disconnect", "/custom", cust, a.sid);
    ASSERT_EQ_STR(jstr(r, "reason"), "client namespace disconnect");
    cJSON_Delete(recs);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0); /* the client is not answered */
    /* and "/" too: the session stays open without sockets */
    ASSERT_EQ_INT(FEED(&srv, &a, "1"), 0);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    srv_drop(&srv);
}

TEST(packets_for_a_namespace_never_joined_are_parse_errors) {
    static const char *const msgs[] = {"2/custom,[\"x\"]", "1/custom,", "3/custom,1[]",
                                       "4{\"message\":\"from a client\"}"};
    server srv;
    srv_tmp(&srv, CFG);
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        UNIT_CTX("%s", msgs[i]);
        tsess a;
        sess_new(&srv, &a, 0);
        char id[UTIL_ID_LEN + 1];
        sess_connect(&srv, &a, "/", id);
        uint64_t in = inbox_head(&srv);
        ASSERT_EQ_INT(FEED(&srv, &a, msgs[i]), SESSION_CLOSE_PARSE_ERROR);
        ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_CLOSED);
        ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
        cJSON *recs = inbox_since(&srv, &in);
        ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
        ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "reason"), "parse error");
        ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "socket"), id);
        cJSON_Delete(recs);
    }
    srv_drop(&srv);
}

TEST(auth_namespace_waits_for_accept) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    uint64_t in = inbox_head(&srv);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/private,{\"token\":\"t\"}"), 0);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "connect");
    ASSERT_EQ_STR(jstr(r, "nsp"), "/private");
    ASSERT_EQ_STR(jstr(r, "sid"), a.sid);
    ASSERT_JSON(r, "auth", "{\"token\":\"t\"}");
    ASSERT_EQ_STR(jstr(cJSON_GetObjectItemCaseSensitive(r, "handshake"), "address"), "192.0.2.7");
    char pending[UTIL_ID_LEN + 1];
    ASSERT_TRUE(jstr(r, "socket") && util_is_id(jstr(r, "socket"), strlen(jstr(r, "socket"))));
    strcpy(pending, jstr(r, "socket"));
    cJSON *auth = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "auth"), 1);
    cJSON_Delete(recs);

    /* the handler accepts with data: the socket gets the provisional id */
    cJSON *data = cJSON_Parse("{\"user\":\"ann\"}");
    store_txn *t;
    uint64_t seq = 0;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(socketio_accept(&srv, t, a.sid, "/private", pending, auth, data, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_TRUE(seq > 0);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    char want[100];
    snprintf(want, sizeof want, "0/private,{\"sid\":\"%s\"}", pending);
    ASSERT_EQ_STR(f.data[0], want);
    char id[UTIL_ID_LEN + 1];
    ASSERT_EQ_INT(sock_of(&srv, a.sid, "/private", id), 1);
    ASSERT_EQ_STR(id, pending);
    store_session ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.nsockets, 1);
    ASSERT_EQ_INT(ss.ever_connected, 1);
    ASSERT_EQ_INT(store_begin(srv.st, 0, &t), 0);
    store_socket so;
    ASSERT_EQ_INT(store_socket_get(t, id, &so), 0);
    const char *wd = "{\"auth\":{\"token\":\"t\"},\"data\":{\"user\":\"ann\"}}";
    ASSERT_MEM(so.data, so.data_len, wd, strlen(wd));
    store_abort(t);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "connection");
    ASSERT_EQ_STR(jstr(r, "socket"), pending);
    ASSERT_JSON(r, "auth", "{\"token\":\"t\"}");
    ASSERT_JSON(r, "data", "{\"user\":\"ann\"}");
    cJSON_Delete(recs);

    /* accepting again does nothing */
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(socketio_accept(&srv, t, a.sid, "/private", NULL, NULL, NULL, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).nsockets, 1);

    /* nor on a closed session */
    tsess c;
    sess_new(&srv, &c, 0);
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(store_session_get(t, c.sid, &ss), 0);
    ASSERT_EQ_INT(session_close(t, c.sid, &ss, SESSION_CLOSE_CLIENT), 0);
    ASSERT_EQ_INT(socketio_accept(&srv, t, c.sid, "/private", NULL, auth, NULL, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(sock_count(&srv, c.sid), 0);
    recv_frames(&srv, &c, &f);
    ASSERT_EQ_INT(f.n, 0);
    cJSON_Delete(auth);
    cJSON_Delete(data);
    srv_drop(&srv);
}

TEST(auth_namespace_refuse_answers_connect_error) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    ASSERT_EQ_INT(FEED(&srv, &a, "0/private,"), 0);
    cJSON *data = cJSON_Parse("{\"code\":7}");
    store_txn *t;
    uint64_t seq = 0;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(socketio_refuse(t, a.sid, "/private", "bad token", data, &seq), 0);
    ASSERT_EQ_INT(socketio_refuse(t, a.sid, "/private", "nope", NULL, &seq), 0);
    ASSERT_EQ_INT(socketio_refuse(t, a.sid, "/", "root \"quoted\"", NULL, &seq), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    cJSON_Delete(data);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 3);
    ASSERT_EQ_STR(f.data[0], "4/private,{\"message\":\"bad token\",\"data\":{\"code\":7}}");
    ASSERT_EQ_STR(f.data[1], "4/private,{\"message\":\"nope\"}");
    ASSERT_EQ_STR(f.data[2], "4{\"message\":\"root \\\"quoted\\\"\"}");
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).state, STORE_S_OPEN);
    srv_drop(&srv);
}

/* An on_event hook that records its calls; when it handles an event it
 * answers the client, as a plugin's sioh_emit would. */
typedef struct hook_rec {
    int ret, calls;
    char type[16], event[64], socket[UTIL_ID_LEN + 1];
    int seq_given;
} hook_rec;

static int hook(void *arg, server *srv, store_txn *t, const char *type, const store_socket *so,
                const cJSON *extra, uint64_t *seq) {
    (void)srv;
    hook_rec *h = arg;
    h->calls++;
    snprintf(h->type, sizeof h->type, "%s", type);
    snprintf(h->socket, sizeof h->socket, "%s", so->id);
    const char *ev = jstr(extra, "event");
    snprintf(h->event, sizeof h->event, "%s", ev ? ev : "");
    h->seq_given = seq != NULL;
    if (h->ret != 1) return h->ret;
    sio_packet p = {.type = SIO_EVENT, .id = -1};
    strcpy(p.nsp, so->nsp);
    p.data = cJSON_Parse("[\"handled\"]");
    int rc = socketio_send(t, so->sid, &p, seq);
    sio_packet_clear(&p);
    return rc ? rc : 1;
}

TEST(on_event_hook_keeps_handled_events_out_of_the_inbox) {
    server srv;
    srv_tmp(&srv, CFG);
    hook_rec h = {0};
    srv.on_event = hook;
    srv.on_event_arg = &h;
    tsess a;
    sess_new(&srv, &a, 0);
    char id[UTIL_ID_LEN + 1];
    sess_connect(&srv, &a, "/", id);
    uint64_t in = inbox_head(&srv);

    h.ret = 1;
    ASSERT_EQ_INT(FEED(&srv, &a, "2[\"a\",1]"), 0);
    ASSERT_EQ_INT(h.calls, 1);
    ASSERT_EQ_STR(h.type, "event");
    ASSERT_EQ_STR(h.event, "a");
    ASSERT_EQ_STR(h.socket, id);
    ASSERT_EQ_INT(h.seq_given, 1);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    frames f;
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);
    ASSERT_EQ_STR(f.data[0], "2[\"handled\"]");
    ASSERT_EQ_INT(FEED(&srv, &a, "35[]"), 0); /* acks go through it too */
    ASSERT_EQ_INT(h.calls, 2);
    ASSERT_EQ_STR(h.type, "ack");
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 1);

    h.ret = 0;
    ASSERT_EQ_INT(FEED(&srv, &a, "2[\"b\",2]"), 0);
    ASSERT_EQ_INT(h.calls, 3);
    ASSERT_EQ_STR(h.event, "b");
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "event"), "b");
    ASSERT_JSON(cJSON_GetArrayItem(recs, 0), "args", "[2]");
    cJSON_Delete(recs);
    recv_frames(&srv, &a, &f);
    ASSERT_EQ_INT(f.n, 0);
    /* CONNECT and DISCONNECT do not go through it */
    ASSERT_EQ_INT(FEED(&srv, &a, "1"), 0);
    ASSERT_EQ_INT(h.calls, 3);
    srv_drop(&srv);
}

TEST(session_close_drops_sockets_with_the_node_reason) {
    server srv;
    srv_tmp(&srv, CFG);
    tsess a;
    sess_new(&srv, &a, 0);
    char root[UTIL_ID_LEN + 1], cust[UTIL_ID_LEN + 1];
    sess_connect(&srv, &a, "/", root);
    sess_connect(&srv, &a, "/custom", cust);
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    store_socket so;
    ASSERT_EQ_INT(store_socket_get(t, cust, &so), 0);
    so.data = NULL;
    ASSERT_EQ_INT(rooms_join(t, &so, "lobby"), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    uint64_t in = inbox_head(&srv);

    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    store_session ss;
    ASSERT_EQ_INT(store_session_get(t, a.sid, &ss), 0);
    ASSERT_EQ_INT(session_close(t, a.sid, &ss, SESSION_CLOSE_PING_TIMEOUT), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ss = sess_get(&srv, a.sid);
    ASSERT_EQ_INT(ss.state, STORE_S_CLOSED);
    ASSERT_EQ_INT(ss.close_reason, SESSION_CLOSE_PING_TIMEOUT);
    ASSERT_EQ_INT(ss.nsockets, 0);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    ASSERT_EQ_INT(store_has_room(&srv, "/custom", "lobby", cust), STORE_NOTFOUND);
    ASSERT_EQ_INT(store_has_room(&srv, "/", root, root), STORE_NOTFOUND);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 2);
    int seen_root = 0, seen_cust = 0;
    for (int i = 0; i < 2; i++) {
        cJSON *r = cJSON_GetArrayItem(recs, i);
        ASSERT_EQ_STR(jstr(r, "type"), "disconnect");
        ASSERT_EQ_STR(jstr(r, "sid"), a.sid);
        ASSERT_EQ_STR(jstr(r, "reason"), "ping timeout");
        if (!strcmp(jstr(r, "socket"), root)) seen_root++;
        if (!strcmp(jstr(r, "socket"), cust)) seen_cust++;
    }
    ASSERT_EQ_INT(seen_root, 1);
    ASSERT_EQ_INT(seen_cust, 1);
    cJSON_Delete(recs);
    /* closing again changes nothing */
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(session_close(t, a.sid, &ss, SESSION_CLOSE_SERVER), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(sess_get(&srv, a.sid).close_reason, SESSION_CLOSE_PING_TIMEOUT);
    recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 0);
    cJSON_Delete(recs);

    /* each close reason, as the sockets' "disconnect" record says it */
    static const struct {
        int reason;
        const char *node;
    } rows[] = {
        {SESSION_CLOSE_CLIENT, "transport close"},
        {SESSION_CLOSE_PING_TIMEOUT, "ping timeout"},
        {SESSION_CLOSE_PARSE_ERROR, "parse error"},
        {SESSION_CLOSE_OVERLAP, "transport error"},
        {SESSION_CLOSE_SERVER, "forced close"},
        {SESSION_CLOSE_CONNECT_TIMEOUT, "transport close"},
        {SESSION_CLOSE_LAGGING, "transport error"},
        {SESSION_CLOSE_TRANSPORT, "transport close"},
        {SESSION_CLOSE_POLL_DROPPED, "transport error"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("reason %d", rows[i].reason);
        ASSERT_EQ_STR(socketio_disconnect_reason(rows[i].reason), rows[i].node);
        tsess b;
        sess_new(&srv, &b, 0);
        char id[UTIL_ID_LEN + 1];
        sess_connect(&srv, &b, "/custom", id);
        in = inbox_head(&srv);
        ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
        ASSERT_EQ_INT(store_session_get(t, b.sid, &ss), 0);
        ASSERT_EQ_INT(session_close(t, b.sid, &ss, rows[i].reason), 0);
        ASSERT_EQ_INT(store_commit(t), 0);
        recs = inbox_since(&srv, &in);
        ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
        ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "reason"), rows[i].node);
        ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "socket"), id);
        cJSON_Delete(recs);
    }
    srv_drop(&srv);
}

TEST(bare_session_messages_go_to_the_inbox) {
    server srv;
    srv_tmp(&srv, "engine_path = /engine.io/\n");
    tsess e;
    sess_new(&srv, &e, 1);
    uint64_t in = inbox_head(&srv);
    /* not Socket.IO: "0" is a message like any other, no CONNECT */
    ASSERT_EQ_INT(FEED(&srv, &e, "0"), 0);
    ASSERT_EQ_INT(FEED(&srv, &e, "hello \"you\""), 0);
    ASSERT_EQ_INT(sess_feed(&srv, &e, "\x01\x02\xff", 3, 1), 0);
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 3);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "message");
    ASSERT_EQ_STR(jstr(r, "sid"), e.sid);
    ASSERT_JSON(r, "data", "\"0\"");
    ASSERT_JSON(r, "nsp", "(absent)");
    ASSERT_JSON(r, "socket", "(absent)");
    ASSERT_JSON(cJSON_GetArrayItem(recs, 1), "data", "\"hello \\\"you\\\"\"");
    ASSERT_JSON(cJSON_GetArrayItem(recs, 2), "data", "{\"$binary\":\"AQL/\"}");
    cJSON_Delete(recs);
    ASSERT_EQ_INT(sock_count(&srv, e.sid), 0);
    frames f;
    recv_frames(&srv, &e, &f);
    ASSERT_EQ_INT(f.n, 0);
    srv_drop(&srv);
}

/* The namespace limit holds for CONNECTs to `auth` namespaces too: they do
 * not count until accepted, so socketio_accept refuses past the limit
 * ("Too many namespaces"), and closing the session removes every socket. */
TEST(auth_connects_keep_the_namespace_limit) {
    server srv;
    srv_tmp(&srv, "[namespace ~/dyn-[0-9]+]\n[namespace ~/adyn-[0-9]+]\nauth = true\n");
    tsess a;
    sess_new(&srv, &a, 0);
    char id[UTIL_ID_LEN + 1];
    for (int i = 0; i < SOCKETIO_MAX_NSP_PER_SESSION - 1; i++) {
        char nsp[32];
        snprintf(nsp, sizeof nsp, "/dyn-%d", i);
        sess_connect(&srv, &a, nsp, id);
    }
    uint64_t in = inbox_head(&srv);
    for (int i = 0; i < 70; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "0/adyn-%d,", i);
        ASSERT_EQ_INT(FEED(&srv, &a, msg), 0);
    }
    cJSON *recs = inbox_since(&srv, &in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 70);
    store_txn *t;
    uint64_t seq = 0;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    const cJSON *r;
    cJSON_ArrayForEach(r, recs) {
        int rc = socketio_accept(&srv, t, a.sid, jstr(r, "nsp"), jstr(r, "socket"), NULL, NULL, &seq);
        if (rc) store_abort(t);
        ASSERT_EQ_INT(rc, 0);
    }
    ASSERT_EQ_INT(store_commit(t), 0);
    cJSON_Delete(recs);
    ASSERT_TRUE(sock_count(&srv, a.sid) <= SOCKETIO_MAX_NSP_PER_SESSION);
    ASSERT_TRUE(sess_get(&srv, a.sid).nsockets <= SOCKETIO_MAX_NSP_PER_SESSION);
    /* closing the session removes every socket */
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    store_session ss;
    ASSERT_EQ_INT(store_session_get(t, a.sid, &ss), 0);
    ASSERT_EQ_INT(session_close(t, a.sid, &ss, SESSION_CLOSE_CLIENT), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    ASSERT_EQ_INT(sock_count(&srv, a.sid), 0);
    srv_drop(&srv);
}

UNIT_MAIN()

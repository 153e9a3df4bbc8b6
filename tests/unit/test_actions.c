/* Unit tests for server/actions.c, the server-side actions of sioctl,
 * handlers and plugins, against a real `server` in a temporary directory
 * with polling sessions whose sockets connected as clients do
 * (tests/unit/srv_fixture.h); what each client receives is read with
 * reader_collect.
 *
 * Covers: actions_emit to a namespace, to rooms, with except rooms, to one
 * socket, as a broadcast that excludes its socket, with an ack id, and the
 * number of sockets targeted; its usage errors (reserved event name, unknown
 * namespace, too long or empty room, args not an array, broadcast without a
 * socket); actions_join / leave with counts; actions_disconnect (the client
 * gets DISCONNECT for its namespace; close=1 closes the session);
 * actions_ack; actions_send on a bare session (text, binary, bad base64);
 * actions_next_ack_id; actions_sockets; actions_apply_json for every JSON
 * form of actions.h and its errors; actions_parse_arg. */
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
    "[namespace /custom]\n"                                                   \
    "[namespace ~/dyn-[0-9]+]\n"                                              \
    "[namespace /private]\n"                                                  \
    "auth = true\n"

/* Three sessions with a socket in "/" each; a also has one in "/custom". */
typedef struct world {
    server srv;
    tsess a, b, c;
    char ia[UTIL_ID_LEN + 1], ib[UTIL_ID_LEN + 1], ic[UTIL_ID_LEN + 1], iac[UTIL_ID_LEN + 1];
    uint64_t in; /* inbox position after the setup */
} world;

static void world_open(world *w) {
    memset(w, 0, sizeof *w);
    srv_tmp(&w->srv, CFG);
    sess_new(&w->srv, &w->a, 0);
    sess_new(&w->srv, &w->b, 0);
    sess_new(&w->srv, &w->c, 0);
    sess_connect(&w->srv, &w->a, "/", w->ia);
    sess_connect(&w->srv, &w->b, "/", w->ib);
    sess_connect(&w->srv, &w->c, "/", w->ic);
    sess_connect(&w->srv, &w->a, "/custom", w->iac);
    w->in = inbox_head(&w->srv);
}

static store_txn *wbegin(world *w) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(w->srv.st, 1, &t), 0);
    return t;
}

static void commit(store_txn *t) { ASSERT_EQ_INT(store_commit(t), 0); }

/* The frames of one session since its last look, joined with '|'. */
static const char *got(world *w, tsess *s, char *out, size_t n) {
    frames f;
    recv_frames(&w->srv, s, &f);
    out[0] = 0;
    for (size_t i = 0; i < f.n; i++) {
        size_t l = strlen(out);
        if (f.binary[i]) {
            snprintf(out + l, n - l, "%s<bin", i ? "|" : "");
            for (size_t k = 0; k < f.len[i] && k < 16; k++) {
                l = strlen(out);
                snprintf(out + l, n - l, " %02x", (unsigned char)f.data[i][k]);
            }
            l = strlen(out);
            snprintf(out + l, n - l, ">");
        } else {
            snprintf(out + l, n - l, "%s%s", i ? "|" : "", f.data[i]);
        }
    }
    return out;
}
#define GOT(w, s) got((w), (s), (char[4096]){0}, 4096)

static int in_room(world *w, const char *nsp, const char *room, const char *id) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(w->srv.st, 0, &t), 0);
    int rc = store_room_has(t, nsp, room, strlen(room), id, NULL);
    store_abort(t);
    return rc == 0;
}

static int sock_exists(world *w, const char *id) {
    store_txn *t;
    ASSERT_EQ_INT(store_begin(w->srv.st, 0, &t), 0);
    store_socket so;
    int rc = store_socket_get(t, id, &so);
    store_abort(t);
    return rc == 0;
}

/* Joins one socket to a room directly. */
static void join(world *w, const char *id, const char *room) {
    store_txn *t = wbegin(w);
    store_socket so;
    ASSERT_EQ_INT(store_socket_get(t, id, &so), 0);
    so.data = NULL;
    ASSERT_EQ_INT(rooms_join(t, &so, room), 0);
    commit(t);
}

/* actions_emit in a transaction of its own; returns its result. */
static int emit(world *w, const actions_target *to, const char *event, const char *args_json,
                long long ack, size_t *count, char *err, size_t errlen) {
    cJSON *args = args_json ? cJSON_Parse(args_json) : NULL;
    store_txn *t = wbegin(w);
    uint64_t seq = 0;
    int rc = actions_emit(&w->srv, t, to, event, args, ack, &seq, count, err, errlen);
    cJSON_Delete(args);
    if (rc) {
        store_abort(t);
        return rc;
    }
    commit(t);
    ASSERT_TRUE(seq > 0);
    return 0;
}

TEST(emit_to_a_namespace_rooms_except_and_self) {
    world w;
    world_open(&w);
    char err[256] = "";
    size_t count = 99;

    actions_target to = {.nsp = "/"};
    ASSERT_EQ_INT(emit(&w, &to, "news", "[1,\"x\"]", -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 3);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2[\"news\",1,\"x\"]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"news\",1,\"x\"]");
    ASSERT_EQ_STR(GOT(&w, &w.c), "2[\"news\",1,\"x\"]");

    to = (actions_target){.nsp = "/custom"};
    ASSERT_EQ_INT(emit(&w, &to, "only-custom", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2/custom,[\"only-custom\"]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "");

    join(&w, w.ia, "r");
    join(&w, w.ib, "r");
    join(&w, w.ib, "rb");
    join(&w, w.ic, "r2");
    to = (actions_target){.nsp = "/", .to = {"r"}, .nto = 1};
    ASSERT_EQ_INT(emit(&w, &to, "room", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2[\"room\"]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"room\"]");
    ASSERT_EQ_STR(GOT(&w, &w.c), "");

    /* a union of rooms, minus the members of an except room */
    to = (actions_target){.nsp = "/", .to = {"r", "r2"}, .nto = 2, .except = {"rb"}, .nexcept = 1};
    ASSERT_EQ_INT(emit(&w, &to, "ex", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2[\"ex\"]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "");
    ASSERT_EQ_STR(GOT(&w, &w.c), "2[\"ex\"]");

    /* socket.emit: the namespace is the socket's */
    to = (actions_target){.self = w.iac};
    ASSERT_EQ_INT(emit(&w, &to, "you", "[{\"k\":true}]", -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2/custom,[\"you\",{\"k\":true}]");

    /* socket.broadcast.emit: everyone else */
    to = (actions_target){.self = w.ia, .broadcast = 1};
    ASSERT_EQ_INT(emit(&w, &to, "others", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"others\"]");
    ASSERT_EQ_STR(GOT(&w, &w.c), "2[\"others\"]");

    /* socket.broadcast.to(room) */
    to = (actions_target){.self = w.ia, .broadcast = 1, .to = {"r"}, .nto = 1};
    ASSERT_EQ_INT(emit(&w, &to, "room-others", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"room-others\"]");

    /* everyone with self: the whole namespace */
    to = (actions_target){.self = w.ia, .everyone = 1};
    ASSERT_EQ_INT(emit(&w, &to, "all", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 3);

    /* a socket id in `to` gives the namespace */
    to = (actions_target){.to = {w.iac}, .nto = 1};
    ASSERT_EQ_INT(emit(&w, &to, "by-id", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 1);
    GOT(&w, &w.b);
    GOT(&w, &w.c);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2[\"all\"]|2/custom,[\"by-id\"]");

    /* with an ack id, and binary */
    to = (actions_target){.self = w.ib};
    ASSERT_EQ_INT(emit(&w, &to, "q", "[{\"$binary\":\"AQI=\"}]", 15, &count, err, sizeof err), 0);
    ASSERT_EQ_STR(GOT(&w, &w.b), "51-15[\"q\",{\"_placeholder\":true,\"num\":0}]|<bin 01 02>");

    /* no count wanted */
    to = (actions_target){.nsp = "/"};
    ASSERT_EQ_INT(emit(&w, &to, "n", NULL, -1, NULL, err, sizeof err), 0);
    srv_drop(&w.srv);
}

TEST(emit_usage_errors) {
    world w;
    world_open(&w);
    char long_room[STORE_ROOM_MAX + 2];
    memset(long_room, 'r', sizeof long_room - 1);
    long_room[sizeof long_room - 1] = 0;
    static const char *const reserved[] = {"connect", "connect_error", "disconnect",
                                           "disconnecting", "newListener", "removeListener"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        UNIT_CTX("%s", reserved[i]);
        char err[256] = "", want[256];
        actions_target to = {.nsp = "/"};
        ASSERT_EQ_INT(emit(&w, &to, reserved[i], NULL, -1, NULL, err, sizeof err), ACTIONS_EUSAGE);
        snprintf(want, sizeof want, "'%s' is a reserved event name", reserved[i]);
        ASSERT_EQ_STR(err, want);
    }
    UNIT_CTX("other errors");
    struct {
        actions_target to;
        const char *event, *args, *err;
    } rows[] = {
        {{.nsp = "/nope"}, "e", NULL, "unknown namespace '/nope'"},
        {{.nsp = "nope"}, "e", NULL, "bad namespace 'nope' (it starts with '/' and has no ',')"},
        {{.nsp = "/private2"}, "e", NULL, "unknown namespace '/private2'"},
        {{.nsp = "/", .to = {long_room}, .nto = 1}, "e", NULL, "room names are 1 to 256 bytes"},
        {{.nsp = "/", .to = {""}, .nto = 1}, "e", NULL, "room names are 1 to 256 bytes"},
        {{.nsp = "/", .except = {long_room}, .nexcept = 1}, "e", NULL, "room names are 1 to 256 bytes"},
        {{.nsp = "/"}, "", NULL, "the event name is empty"},
        {{.nsp = "/"}, NULL, NULL, "the event name is empty"},
        {{.nsp = "/"}, "e", "{\"a\":1}", "args must be an array"},
        {{.nsp = "/", .broadcast = 1}, "e", NULL,
         "--broadcast needs a socket (run inside a handler, or give --socket)"},
        {{.nsp = "/"}, "e", "[{\"$binary\":\"@@@@\"}]",
         "bad binary argument (expected {\"$binary\":\"<base64>\"})"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("row %zu: %s", i, rows[i].err);
        char err[256] = "";
        size_t count = 42;
        ASSERT_EQ_INT(emit(&w, &rows[i].to, rows[i].event, rows[i].args, -1, &count, err, sizeof err),
                      ACTIONS_EUSAGE);
        ASSERT_EQ_STR(err, rows[i].err);
    }
    /* an exact room of STORE_ROOM_MAX bytes is fine */
    long_room[STORE_ROOM_MAX] = 0;
    actions_target to = {.nsp = "/", .to = {long_room}, .nto = 1};
    size_t count = 42;
    char err[256] = "";
    ASSERT_EQ_INT(emit(&w, &to, "e", NULL, -1, &count, err, sizeof err), 0);
    ASSERT_EQ_INT(count, 0);
    /* nothing was queued by the refused emits */
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    srv_drop(&w.srv);
}

TEST(join_and_leave_with_counts) {
    world w;
    world_open(&w);
    char err[256] = "";
    size_t count = 99;
    const char *const g[] = {"g1", "g2"};
    actions_target to = {.nsp = "/"};
    store_txn *t = wbegin(&w);
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, g, 2, 0, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 3);
    ASSERT_EQ_INT(in_room(&w, "/", "g1", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ib), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ic), 1);
    ASSERT_EQ_INT(in_room(&w, "/custom", "g1", w.iac), 0);

    /* leave, for one socket (self) */
    to = (actions_target){.self = w.ia};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, g, 1, 1, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_INT(in_room(&w, "/", "g1", w.ia), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "g1", w.ib), 1);

    /* the members of g1 leave g2: b and c */
    to = (actions_target){.nsp = "/", .to = {"g1"}, .nto = 1};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, g + 1, 1, 1, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ib), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "g2", w.ic), 0);

    /* socketsJoin on /custom with except */
    to = (actions_target){.nsp = "/custom"};
    const char *const cr[] = {"croom"};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, cr, 1, 0, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_INT(in_room(&w, "/custom", "croom", w.iac), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "croom", w.ia), 0);

    /* errors */
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, cr, 0, 0, &count, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "join needs at least one ROOM");
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, cr, 0, 1, &count, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "leave needs at least one ROOM");
    const char *const empty[] = {""};
    ASSERT_EQ_INT(actions_join(&w.srv, t, &to, empty, 1, 0, &count, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "room names are 1 to 256 bytes");
    actions_target bad = {.nsp = "/nope"};
    ASSERT_EQ_INT(actions_join(&w.srv, t, &bad, cr, 1, 0, &count, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "unknown namespace '/nope'");
    store_abort(t);
    srv_drop(&w.srv);
}

TEST(disconnect_removes_the_socket_and_tells_the_client) {
    world w;
    world_open(&w);
    char err[256] = "";
    size_t count = 99;
    uint64_t seq = 0;

    /* a's /custom socket: the client gets "1/custom," */
    actions_target to = {.self = w.iac};
    store_txn *t = wbegin(&w);
    ASSERT_EQ_INT(actions_disconnect(&w.srv, t, &to, 0, &seq, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ASSERT_TRUE(seq > 0);
    ASSERT_EQ_INT(sock_exists(&w, w.iac), 0);
    ASSERT_EQ_INT(sock_exists(&w, w.ia), 1);
    ASSERT_EQ_STR(GOT(&w, &w.a), "1/custom,");
    store_session ss = sess_get(&w.srv, w.a.sid);
    ASSERT_EQ_INT(ss.state, STORE_S_OPEN);
    ASSERT_EQ_INT(ss.nsockets, 1);
    cJSON *recs = inbox_since(&w.srv, &w.in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    cJSON *r = cJSON_GetArrayItem(recs, 0);
    ASSERT_EQ_STR(jstr(r, "type"), "disconnect");
    ASSERT_EQ_STR(jstr(r, "socket"), w.iac);
    ASSERT_EQ_STR(jstr(r, "nsp"), "/custom");
    ASSERT_EQ_STR(jstr(r, "reason"), "server namespace disconnect");
    cJSON_Delete(recs);

    /* b's "/" socket: the client gets "1" */
    to = (actions_target){.self = w.ib};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_disconnect(&w.srv, t, &to, 0, &seq, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_STR(GOT(&w, &w.b), "1");
    ASSERT_EQ_STR(GOT(&w, &w.c), "");
    ASSERT_EQ_INT(sess_get(&w.srv, w.b.sid).state, STORE_S_OPEN);
    recs = inbox_since(&w.srv, &w.in);
    cJSON_Delete(recs);

    /* close = 1: the session closes and its other sockets go with it */
    sess_connect(&w.srv, &w.c, "/custom", w.iac);
    w.in = inbox_head(&w.srv);
    to = (actions_target){.self = w.ic};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_disconnect(&w.srv, t, &to, 1, &seq, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ss = sess_get(&w.srv, w.c.sid);
    ASSERT_EQ_INT(ss.state, STORE_S_CLOSED);
    ASSERT_EQ_INT(ss.close_reason, SESSION_CLOSE_SERVER);
    ASSERT_EQ_INT(sock_count(&w.srv, w.c.sid), 0);
    ASSERT_EQ_STR(GOT(&w, &w.c), "1");
    recs = inbox_since(&w.srv, &w.in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 2);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "socket"), w.ic);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "reason"), "server namespace disconnect");
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 1), "socket"), w.iac);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 1), "reason"), "forced close");
    cJSON_Delete(recs);

    /* the whole namespace: only a is left in "/" */
    to = (actions_target){.nsp = "/"};
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_disconnect(&w.srv, t, &to, 0, &seq, &count, err, sizeof err), 0);
    commit(t);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_STR(GOT(&w, &w.a), "1");
    ASSERT_EQ_INT(sock_exists(&w, w.ia), 0);
    srv_drop(&w.srv);
}

TEST(ack_goes_to_the_socket_session) {
    world w;
    world_open(&w);
    char err[256] = "";
    uint64_t seq = 0;
    cJSON *args = cJSON_Parse("[\"r\",{\"n\":1}]");
    store_txn *t = wbegin(&w);
    ASSERT_EQ_INT(actions_ack(t, w.iac, 9, args, &seq, err, sizeof err), 0);
    ASSERT_EQ_INT(actions_ack(t, w.ib, 0, NULL, &seq, err, sizeof err), 0);
    commit(t);
    cJSON_Delete(args);
    ASSERT_EQ_STR(GOT(&w, &w.a), "3/custom,9[\"r\",{\"n\":1}]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "30[]");
    ASSERT_EQ_STR(GOT(&w, &w.c), "");

    /* binary */
    args = cJSON_Parse("[{\"$binary\":\"/w==\"}]");
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_ack(t, w.ic, 3, args, &seq, err, sizeof err), 0);
    commit(t);
    cJSON_Delete(args);
    ASSERT_EQ_STR(GOT(&w, &w.c), "61-3[{\"_placeholder\":true,\"num\":0}]|<bin ff>");

    t = wbegin(&w);
    ASSERT_EQ_INT(actions_ack(t, "AAAAAAAAAAAAAAAAAAAZ", 1, NULL, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "no socket AAAAAAAAAAAAAAAAAAAZ");
    ASSERT_EQ_INT(actions_ack(t, w.ia, -1, NULL, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "ack needs a socket and an ack id");
    ASSERT_EQ_INT(actions_ack(t, NULL, 1, NULL, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "ack needs a socket and an ack id");
    args = cJSON_Parse("{}");
    ASSERT_EQ_INT(actions_ack(t, w.ia, 1, args, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "args must be an array");
    cJSON_Delete(args);
    args = cJSON_Parse("[{\"$binary\":\"%%%%\"}]");
    ASSERT_EQ_INT(actions_ack(t, w.ia, 1, args, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "bad binary argument");
    cJSON_Delete(args);
    store_abort(t);
    srv_drop(&w.srv);
}

TEST(send_on_a_bare_session) {
    server srv;
    srv_tmp(&srv, "engine_path = /engine.io/\n");
    tsess e;
    sess_new(&srv, &e, 1);
    ASSERT_EQ_INT(sess_get(&srv, e.sid).bare, 1);
    char err[256] = "";
    uint64_t seq = 0;
    cJSON *text = cJSON_CreateString("hello \"there\""), *bin = cJSON_Parse("{\"$binary\":\"AAEC\"}");
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    ASSERT_EQ_INT(actions_send(t, e.sid, text, &seq, err, sizeof err), 0);
    ASSERT_EQ_INT(actions_send(t, e.sid, bin, &seq, err, sizeof err), 0);
    ASSERT_EQ_INT(store_commit(t), 0);
    cJSON_Delete(text);
    cJSON_Delete(bin);
    frames f;
    recv_frames(&srv, &e, &f);
    ASSERT_EQ_INT(f.n, 2);
    ASSERT_EQ_INT(f.binary[0], 0);
    ASSERT_EQ_STR(f.data[0], "hello \"there\"");
    ASSERT_EQ_INT(f.binary[1], 1);
    ASSERT_MEM(f.data[1], f.len[1], "\x00\x01\x02", 3);

    /* errors */
    struct {
        const char *sid, *data, *err;
    } rows[] = {
        {e.sid, "{\"$binary\":\"!!\"}", "bad base64 in $binary"},
        {e.sid, "{\"$binary\":\"AAE\"}", "bad base64 in $binary"},
        {e.sid, "42", "data must be a string or {\"$binary\":\"<base64>\"}"},
        {e.sid, "{\"other\":\"x\"}", "data must be a string or {\"$binary\":\"<base64>\"}"},
        {e.sid, NULL, "data must be a string or {\"$binary\":\"<base64>\"}"},
        {"AAAAAAAAAAAAAAAAAAAZ", "\"x\"", "no session AAAAAAAAAAAAAAAAAAAZ"},
        {NULL, "\"x\"", "no session (none)"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("row %zu", i);
        cJSON *d = rows[i].data ? cJSON_Parse(rows[i].data) : NULL;
        ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
        int rc = actions_send(t, rows[i].sid, d, &seq, err, sizeof err);
        store_abort(t);
        cJSON_Delete(d);
        ASSERT_EQ_INT(rc, ACTIONS_EUSAGE);
        ASSERT_EQ_STR(err, rows[i].err);
    }
    /* a closed session is gone */
    UNIT_CTX("closed");
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    store_session ss;
    ASSERT_EQ_INT(store_session_get(t, e.sid, &ss), 0);
    ASSERT_EQ_INT(session_close(t, e.sid, &ss, SESSION_CLOSE_CLIENT), 0);
    text = cJSON_CreateString("late");
    char want[64];
    snprintf(want, sizeof want, "no session %s", e.sid);
    ASSERT_EQ_INT(actions_send(t, e.sid, text, &seq, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, want);
    cJSON_Delete(text);
    store_abort(t);
    srv_drop(&srv);
}

TEST(next_ack_id_counts_up_and_sockets_lists_targets) {
    world w;
    world_open(&w);
    store_txn *t = wbegin(&w);
    long long id = -5;
    ASSERT_EQ_INT(actions_next_ack_id(t, &id), 0);
    ASSERT_EQ_INT(id, 0);
    ASSERT_EQ_INT(actions_next_ack_id(t, &id), 0);
    ASSERT_EQ_INT(id, 1);
    commit(t);
    t = wbegin(&w);
    ASSERT_EQ_INT(actions_next_ack_id(t, &id), 0);
    ASSERT_EQ_INT(id, 2);
    store_abort(t);

    join(&w, w.ib, "x");
    char err[256] = "";
    int n = 0;
    actions_target to = {.nsp = "/"};
    ASSERT_EQ_INT(store_begin(w.srv.st, 0, &t), 0);
    ASSERT_EQ_INT(actions_sockets(&w.srv, t, &to, fx_count_cb, &n, err, sizeof err), 0);
    ASSERT_EQ_INT(n, 3);
    n = 0;
    to = (actions_target){.nsp = "/", .except = {"x"}, .nexcept = 1};
    ASSERT_EQ_INT(actions_sockets(&w.srv, t, &to, fx_count_cb, &n, err, sizeof err), 0);
    ASSERT_EQ_INT(n, 2);
    n = 0;
    to = (actions_target){.self = w.ia, .broadcast = 1, .except = {"x"}, .nexcept = 1};
    ASSERT_EQ_INT(actions_sockets(&w.srv, t, &to, fx_count_cb, &n, err, sizeof err), 0);
    ASSERT_EQ_INT(n, 1);
    to = (actions_target){.nsp = "/zzz"};
    ASSERT_EQ_INT(actions_sockets(&w.srv, t, &to, fx_count_cb, &n, err, sizeof err), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "unknown namespace '/zzz'");
    store_abort(t);
    srv_drop(&w.srv);
}

/* Applies one JSON action in a transaction of its own. */
static int apply(world *w, const char *json, const char *self, char *err, size_t n) {
    cJSON *a = cJSON_Parse(json);
    ASSERT_TRUE(a != NULL);
    store_txn *t = wbegin(w);
    uint64_t seq = 0;
    int rc = actions_apply_json(&w->srv, t, a, self, &seq, err, n);
    cJSON_Delete(a);
    if (rc) store_abort(t);
    else commit(t);
    return rc;
}
#define APPLY(w, json, self) apply((w), (json), (self), err, sizeof err)

TEST(apply_json_emit_join_leave_disconnect_ack) {
    world w;
    world_open(&w);
    char err[256] = "", j[1024];

    /* emit: to the handler's own socket (self_socket) */
    ASSERT_EQ_INT(APPLY(&w, "{\"action\":\"emit\",\"event\":\"hi\",\"args\":[1]}", w.ib), 0);
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"hi\",1]");
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    /* "socket" wins over self_socket; "ack" */
    snprintf(j, sizeof j, "{\"action\":\"emit\",\"socket\":\"%s\",\"event\":\"q\",\"args\":[],\"ack\":77}", w.iac);
    ASSERT_EQ_INT(APPLY(&w, j, w.ib), 0);
    ASSERT_EQ_STR(GOT(&w, &w.a), "2/custom,77[\"q\"]");
    ASSERT_EQ_STR(GOT(&w, &w.b), "");
    /* "broadcast" */
    snprintf(j, sizeof j, "{\"action\":\"emit\",\"socket\":\"%s\",\"broadcast\":true,\"event\":\"b\"}", w.ia);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    ASSERT_EQ_STR(GOT(&w, &w.b), "2[\"b\"]");
    ASSERT_EQ_STR(GOT(&w, &w.c), "2[\"b\"]");
    /* join, with "rooms" as an array and as one string */
    snprintf(j, sizeof j, "{\"action\":\"join\",\"socket\":\"%s\",\"rooms\":[\"j1\",\"j2\"]}", w.ia);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_INT(APPLY(&w, "{\"action\":\"join\",\"rooms\":\"j1\"}", w.ic), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "j1", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "j2", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "j1", w.ic), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "j1", w.ib), 0);
    /* emit with "nsp", "to" and "except" */
    ASSERT_EQ_INT(APPLY(&w, "{\"action\":\"emit\",\"nsp\":\"/\",\"to\":[\"j1\"],\"except\":[\"j2\"],"
                            "\"event\":\"t\",\"args\":[\"x\"]}", NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &w.a), "");
    ASSERT_EQ_STR(GOT(&w, &w.c), "2[\"t\",\"x\"]");
    /* "to" as one string, with the whole namespace as target of join */
    ASSERT_EQ_INT(APPLY(&w, "{\"action\":\"join\",\"nsp\":\"/\",\"to\":\"j2\",\"rooms\":[\"k\"]}", NULL), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "k", w.ia), 1);
    ASSERT_EQ_INT(in_room(&w, "/", "k", w.ic), 0);
    /* leave */
    snprintf(j, sizeof j, "{\"action\":\"leave\",\"socket\":\"%s\",\"rooms\":[\"j1\",\"k\"]}", w.ia);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "j1", w.ia), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "k", w.ia), 0);
    ASSERT_EQ_INT(in_room(&w, "/", "j2", w.ia), 1);
    /* ack */
    snprintf(j, sizeof j, "{\"action\":\"ack\",\"socket\":\"%s\",\"id\":4,\"args\":[\"done\"]}", w.ic);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &w.c), "34[\"done\"]");
    /* disconnect, then with close */
    ASSERT_EQ_INT(APPLY(&w, "{\"action\":\"disconnect\"}", w.iac), 0);
    ASSERT_EQ_STR(GOT(&w, &w.a), "1/custom,");
    ASSERT_EQ_INT(sock_exists(&w, w.iac), 0);
    ASSERT_EQ_INT(sess_get(&w.srv, w.a.sid).state, STORE_S_OPEN);
    snprintf(j, sizeof j, "{\"action\":\"disconnect\",\"socket\":\"%s\",\"close\":true}", w.ib);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &w.b), "1");
    ASSERT_EQ_INT(sess_get(&w.srv, w.b.sid).state, STORE_S_CLOSED);
    ASSERT_EQ_INT(sess_get(&w.srv, w.b.sid).close_reason, SESSION_CLOSE_SERVER);
    srv_drop(&w.srv);
}

TEST(apply_json_accept_refuse_send_and_errors) {
    world w;
    world_open(&w);
    char err[256] = "", j[1024];

    /* accept / refuse a pending CONNECT to an auth namespace */
    tsess p;
    sess_new(&w.srv, &p, 0);
    ASSERT_EQ_INT(FEED(&w.srv, &p, "0/private,{\"tok\":1}"), 0);
    cJSON *recs = inbox_since(&w.srv, &w.in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    char pending[UTIL_ID_LEN + 1];
    snprintf(pending, sizeof pending, "%s", jstr(cJSON_GetArrayItem(recs, 0), "socket"));
    cJSON_Delete(recs);
    snprintf(j, sizeof j, "{\"action\":\"accept\",\"socket\":\"%s\",\"sid\":\"%s\",\"nsp\":\"/private\","
             "\"auth\":{\"tok\":1},\"data\":{\"role\":\"admin\"}}", pending, p.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    char want[128], id[UTIL_ID_LEN + 1];
    snprintf(want, sizeof want, "0/private,{\"sid\":\"%s\"}", pending);
    ASSERT_EQ_STR(GOT(&w, &p), want);
    ASSERT_EQ_INT(sock_of(&w.srv, p.sid, "/private", id), 1);
    ASSERT_EQ_STR(id, pending);
    recs = inbox_since(&w.srv, &w.in);
    ASSERT_EQ_INT(cJSON_GetArraySize(recs), 1);
    ASSERT_EQ_STR(jstr(cJSON_GetArrayItem(recs, 0), "type"), "connection");
    ASSERT_EQ_STR(JTEXT(cJSON_GetArrayItem(recs, 0), "data"), "{\"role\":\"admin\"}");
    ASSERT_EQ_STR(JTEXT(cJSON_GetArrayItem(recs, 0), "auth"), "{\"tok\":1}");
    cJSON_Delete(recs);

    snprintf(j, sizeof j, "{\"action\":\"refuse\",\"sid\":\"%s\",\"nsp\":\"/dyn-3\",\"message\":\"no\","
             "\"data\":{\"why\":[1]}}", p.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    snprintf(j, sizeof j, "{\"action\":\"refuse\",\"sid\":\"%s\",\"nsp\":\"/dyn-4\"}", p.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &p), "4/dyn-3,{\"message\":\"no\",\"data\":{\"why\":[1]}}|"
                               "4/dyn-4,{\"message\":\"unauthorized\"}");

    /* send on a bare session */
    tsess e;
    sess_new(&w.srv, &e, 1);
    snprintf(j, sizeof j, "{\"action\":\"send\",\"sid\":\"%s\",\"data\":\"plain\"}", e.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    snprintf(j, sizeof j, "{\"action\":\"send\",\"sid\":\"%s\",\"data\":{\"$binary\":\"q80=\"}}", e.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), 0);
    ASSERT_EQ_STR(GOT(&w, &e), "plain|<bin ab cd>");
    snprintf(j, sizeof j, "{\"action\":\"send\",\"sid\":\"%s\",\"data\":{\"$binary\":\"q8=\"}}", e.sid);
    ASSERT_EQ_INT(APPLY(&w, j, NULL), ACTIONS_EUSAGE);
    ASSERT_EQ_STR(err, "bad base64 in $binary");

    /* errors */
    static const struct {
        const char *json, *err;
    } rows[] = {
        {"{\"action\":\"fly\"}", "unknown action 'fly'"},
        {"{\"event\":\"x\"}", "missing \"action\""},
        {"{\"action\":7}", "missing \"action\""},
        {"[1]", "an action is a JSON object"},
        {"\"emit\"", "an action is a JSON object"},
        {"{\"action\":\"emit\",\"nsp\":\"/\",\"event\":\"disconnect\"}", "'disconnect' is a reserved event name"},
        {"{\"action\":\"emit\",\"nsp\":\"/nowhere\",\"event\":\"e\"}", "unknown namespace '/nowhere'"},
        {"{\"action\":\"emit\",\"nsp\":\"/\",\"to\":[1],\"event\":\"e\"}", "\"to\" must be an array of strings"},
        {"{\"action\":\"emit\",\"nsp\":\"/\",\"except\":{},\"event\":\"e\"}", "\"except\" must be an array of strings"},
        {"{\"action\":\"join\",\"nsp\":\"/\"}", "join needs at least one ROOM"},
        {"{\"action\":\"leave\",\"nsp\":\"/\",\"rooms\":[true]}", "\"rooms\" must be an array of strings"},
        {"{\"action\":\"ack\",\"socket\":\"AAAAAAAAAAAAAAAAAAAZ\"}", "ack needs a numeric \"id\""},
        /* found by fuzz_actions: ids no integer holds were cast (undefined behaviour) */
        {"{\"action\":\"ack\",\"socket\":\"AAAAAAAAAAAAAAAAAAAZ\",\"id\":1e300}", "ack needs a numeric \"id\""},
        {"{\"action\":\"ack\",\"serverSide\":true,\"id\":-1e300}", "ack needs a numeric \"id\""},
        {"{\"action\":\"ack\",\"socket\":\"AAAAAAAAAAAAAAAAAAAZ\",\"id\":1.5}", "ack needs a numeric \"id\""},
        {"{\"action\":\"ack\",\"id\":3}", "ack needs a socket and an ack id"},
        {"{\"action\":\"accept\",\"nsp\":\"/private\"}", "accept needs \"sid\" and \"nsp\""},
        {"{\"action\":\"refuse\",\"sid\":\"AAAAAAAAAAAAAAAAAAAZ\"}", "refuse needs \"sid\" and \"nsp\""},
        /* found by fuzz_actions: a namespace the encoder refuses was -EINVAL, which
         * the dispatcher takes for a failed transaction */
        {"{\"action\":\"refuse\",\"sid\":\"AAAAAAAAAAAAAAAAAAAZ\",\"nsp\":\"refuse\"}", "refuse: bad namespace"},
        {"{\"action\":\"accept\",\"sid\":\"AAAAAAAAAAAAAAAAAAAZ\",\"nsp\":\"\"}", "accept: bad namespace"},
        {"{\"action\":\"send\",\"data\":\"x\"}", "no session (none)"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("%s", rows[i].json);
        err[0] = 0;
        ASSERT_EQ_INT(APPLY(&w, rows[i].json, NULL), ACTIONS_EUSAGE);
        ASSERT_EQ_STR(err, rows[i].err);
    }
    srv_drop(&w.srv);
}

TEST(parse_arg_json_or_plain_string) {
    static const struct {
        const char *arg, *json; /* json NULL: an error */
    } rows[] = {
        {"{\"a\":1}", "{\"a\":1}"},
        {"[1,\"x\"]", "[1,\"x\"]"},
        {"42", "42"},
        {"-1.5", "-1.5"},
        {"true", "true"},
        {"null", "null"},
        {"\"quoted\"", "\"quoted\""},
        {"hello", "\"hello\""},
        {"hello world", "\"hello world\""},
        {"12abc", "\"12abc\""},
        {"", "\"\""},
        {"{bad", NULL},
        {"  [1,", NULL},
        {"\"unterminated", NULL},
        {"{\"a\":1} trailing", NULL},
        {"\t{}", "{}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("%s", rows[i].arg);
        char err[256] = "";
        cJSON *j = actions_parse_arg(rows[i].arg, err, sizeof err);
        if (!rows[i].json) {
            ASSERT_TRUE(j == NULL);
            char want[300];
            snprintf(want, sizeof want, "not valid JSON: %s", rows[i].arg);
            ASSERT_EQ_STR(err, want);
            continue;
        }
        ASSERT_TRUE(j != NULL);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        char copy[256];
        snprintf(copy, sizeof copy, "%s", s);
        free(s);
        ASSERT_EQ_STR(copy, rows[i].json);
        ASSERT_EQ_STR(err, "");
    }
}

/* A namespace pattern admits names with a ',' (here "/a,b"), which no
 * client can join (the ',' ends the namespace in a packet): the error names
 * the namespace, not the arguments. */
TEST(emit_to_a_namespace_with_a_comma_names_the_namespace) {
    server srv;
    srv_tmp(&srv, "[namespace ~/a.*]\n");
    store_txn *t;
    ASSERT_EQ_INT(store_begin(srv.st, 1, &t), 0);
    actions_target to = {.nsp = "/a,b"};
    uint64_t seq = 0;
    size_t count = 0;
    char err[256] = "";
    int rc = actions_emit(&srv, t, &to, "e", NULL, -1, &seq, &count, err, sizeof err);
    store_abort(t);
    ASSERT_EQ_INT(rc, ACTIONS_EUSAGE);
    UNIT_CTX("err: %s", err);
    ASSERT_TRUE(strstr(err, "/a,b") != NULL);
    srv_drop(&srv);
}

UNIT_MAIN()

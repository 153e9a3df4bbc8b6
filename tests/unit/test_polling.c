/* Unit tests for the batched paths of server/polling.c, against a real
 * `server` in a temporary directory with polling sessions whose sockets
 * connected as clients do (tests/unit/srv_fixture.h):
 * polling_claim_many (many GETs claimed in one write transaction; those
 * with packets queued answered in it) and polling_step_many (many held
 * GETs looked at and answered together), and polling_answer_lost.
 *
 * Covers: each GET of a batch gets exactly its own session's packets, in
 * log order, and nothing twice; a claim batch mixing a live GET, a GET of
 * a closed session and a second GET of a held session answers each as a
 * GET on its own would be (and the overlap closes only its session); an
 * answer that could not be written closes its session, its packets left
 * after the session's acked cursor (what recovery replays), while the
 * other polls of the batch are unaffected. */
#include <stdio.h>
#include <string.h>

#include "server/actions.h"
#include "server/polling.h"
#include "unit.h"
#include "fixture.h"
#include "srv_fixture.h"

#define N 12

typedef struct world {
    server srv;
    tsess s[N];
    char id[N][UTIL_ID_LEN + 1]; /* each session's socket in "/" */
    polling_req p[N];
    polling_req *ps[N];
    http_resp resp[N];
    int rc[N];
    int64_t due[N];
    uint64_t first_seq[N]; /* the log seq of emit_each's first packet for each */
} world;

static void world_open(world *w) {
    memset(w, 0, sizeof *w);
    srv_tmp(&w->srv, "");
    for (int i = 0; i < N; i++) {
        sess_new(&w->srv, &w->s[i], 0);
        sess_connect(&w->srv, &w->s[i], "/", w->id[i]); /* its CONNECT answer stays queued */
        w->ps[i] = &w->p[i];
    }
}

static void resps_free(world *w) {
    for (int i = 0; i < N; i++) {
        http_resp_free(&w->resp[i]);
        memset(&w->resp[i], 0, sizeof w->resp[i]);
    }
}

/* GETs of the first n sessions (as polling_begin_deferred leaves them),
 * claimed in one batch. */
static void claim(world *w, int n) {
    for (int i = 0; i < n; i++) {
        memset(&w->p[i], 0, sizeof w->p[i]);
        snprintf(w->p[i].sid, sizeof w->p[i].sid, "%s", w->s[i].sid);
    }
    polling_claim_many(&w->srv, w->ps, (size_t)n, w->resp, w->rc, w->due);
}

static store_session session_of(world *w, int i) {
    store_txn *t;
    store_session s;
    ASSERT_EQ_INT(store_begin(w->srv.st, 0, &t), 0);
    ASSERT_EQ_INT(store_session_get(t, w->s[i].sid, &s), 0);
    store_abort(t);
    return s;
}

/* emit "m" [i, k] to session i's socket, for k < per, the sessions
 * interleaved (one transaction each) */
static void emit_each(world *w, int per) {
    for (int k = 0; k < per; k++)
        for (int i = 0; i < N; i++) {
            store_txn *t;
            ASSERT_EQ_INT(store_begin(w->srv.st, 1, &t), 0);
            actions_target to = {.nsp = "/", .to = {w->id[i]}, .nto = 1};
            char args[64];
            snprintf(args, sizeof args, "[%d,%d]", i, k);
            cJSON *a = cJSON_Parse(args);
            uint64_t seq = 0;
            char err[128] = "";
            ASSERT_EQ_INT(actions_emit(&w->srv, t, &to, "m", a, -1, &seq, NULL, err, sizeof err), 0);
            cJSON_Delete(a);
            ASSERT_EQ_INT(store_commit(t), 0);
            if (k == 0) w->first_seq[i] = seq;
        }
}

static const char *body(const http_resp *r, char *out, size_t n) {
    snprintf(out, n, "%.*s", (int)r->body.len, r->body.data ? r->body.data : "");
    return out;
}

TEST(batched_claims_and_steps_give_each_poll_its_own_packets_in_order) {
    world w;
    world_open(&w);
    char got[512], want[512];
    /* one claim batch: each finds its own CONNECT answer queued and is
     * answered at once, in the claim's transaction */
    claim(&w, N);
    for (int i = 0; i < N; i++) {
        UNIT_CTX("session %d", i);
        ASSERT_EQ_INT(w.rc[i], POLLING_DONE);
        ASSERT_EQ_INT(w.resp[i].status, 200);
        snprintf(want, sizeof want, "40{\"sid\":\"%s\"}", w.id[i]);
        ASSERT_EQ_STR(body(&w.resp[i], got, sizeof got), want);
        ASSERT_EQ_INT(w.p[i].held, 0);
        ASSERT_EQ_INT(session_of(&w, i).poll_pid, 0);
    }
    resps_free(&w);
    /* the next batch finds nothing: all held */
    claim(&w, N);
    for (int i = 0; i < N; i++) {
        UNIT_CTX("session %d", i);
        ASSERT_EQ_INT(w.rc[i], POLLING_WAIT);
        ASSERT_EQ_INT(w.p[i].held, 1);
        ASSERT_TRUE(w.p[i].token != 0);
        store_session s = session_of(&w, i);
        ASSERT_EQ_INT(s.poll_token, w.p[i].token);
        ASSERT_EQ_INT(s.acked, s.cursor); /* the CONNECT answer reached the client */
    }
    resps_free(&w);
    /* packets for every session, interleaved in the log; one step batch */
    emit_each(&w, 3);
    polling_step_many(&w.srv, w.ps, N, w.resp, w.rc, w.due);
    for (int i = 0; i < N; i++) {
        UNIT_CTX("session %d", i);
        ASSERT_EQ_INT(w.rc[i], POLLING_DONE);
        snprintf(want, sizeof want, "42[\"m\",%d,0]\x1e" "42[\"m\",%d,1]\x1e" "42[\"m\",%d,2]", i, i, i);
        ASSERT_EQ_STR(body(&w.resp[i], got, sizeof got), want);
        ASSERT_EQ_INT(w.p[i].held, 0);
        ASSERT_EQ_INT(session_of(&w, i).poll_pid, 0);
    }
    resps_free(&w);
    /* nothing twice: the next GETs are held again, and get only what is new */
    claim(&w, N);
    for (int i = 0; i < N; i++) ASSERT_EQ_INT(w.rc[i], POLLING_WAIT);
    emit_each(&w, 1);
    polling_step_many(&w.srv, w.ps, N, w.resp, w.rc, w.due);
    for (int i = 0; i < N; i++) {
        UNIT_CTX("session %d", i);
        ASSERT_EQ_INT(w.rc[i], POLLING_DONE);
        snprintf(want, sizeof want, "42[\"m\",%d,0]", i);
        ASSERT_EQ_STR(body(&w.resp[i], got, sizeof got), want);
    }
    resps_free(&w);
    srv_drop(&w.srv);
}

TEST(a_claim_batch_answers_each_get_as_it_would_alone) {
    world w;
    world_open(&w);
    char got[512];
    claim(&w, N); /* the CONNECT answers */
    resps_free(&w);
    claim(&w, 2); /* sessions 0 and 1 held */
    ASSERT_EQ_INT(w.rc[0], POLLING_WAIT);
    ASSERT_EQ_INT(w.rc[1], POLLING_WAIT);
    resps_free(&w);
    polling_req held1 = w.p[1];
    /* session 2 closed by its client: a POST of '1' */
    polling_req post = {0};
    strcpy(post.sid, w.s[2].sid);
    uint8_t close_pk[] = "1";
    http_resp pr = {0};
    polling_post(&w.srv, &post, close_pk, 1, 0, &pr);
    ASSERT_EQ_INT(pr.status, 200);
    http_resp_free(&pr);
    ASSERT_EQ_INT(session_of(&w, 2).close_reason, SESSION_CLOSE_CLIENT);
    /* a batch: 3 (free), 1 again (held: overlap), 2 (closed) */
    polling_req *ps[3] = {&w.p[3], &w.p[4], &w.p[5]};
    memset(&w.p[3], 0, 3 * sizeof w.p[3]);
    strcpy(w.p[3].sid, w.s[3].sid);
    strcpy(w.p[4].sid, w.s[1].sid);
    strcpy(w.p[5].sid, w.s[2].sid);
    polling_claim_many(&w.srv, ps, 3, &w.resp[3], &w.rc[3], &w.due[3]);
    ASSERT_EQ_INT(w.rc[3], POLLING_WAIT);
    ASSERT_EQ_INT(w.rc[4], POLLING_DONE);
    ASSERT_EQ_INT(w.resp[4].status, 400);
    ASSERT_EQ_INT(session_of(&w, 1).state, STORE_S_CLOSED);
    ASSERT_EQ_INT(session_of(&w, 1).close_reason, SESSION_CLOSE_OVERLAP);
    ASSERT_EQ_INT(w.rc[5], POLLING_DONE);
    ASSERT_EQ_INT(w.resp[5].status, 200); /* the GET its own close overtook: a noop */
    ASSERT_EQ_STR(body(&w.resp[5], got, sizeof got), "6");
    /* the held GET of session 1 learns of the close */
    polling_req *h = &held1;
    http_resp r = {0};
    int rc;
    int64_t due;
    polling_step_many(&w.srv, &h, 1, &r, &rc, &due);
    ASSERT_EQ_INT(rc, POLLING_DONE);
    ASSERT_EQ_STR(body(&r, got, sizeof got), "1");
    http_resp_free(&r);
    /* session 3 and 0 are still fine */
    ASSERT_EQ_INT(session_of(&w, 3).state, STORE_S_OPEN);
    ASSERT_EQ_INT(session_of(&w, 0).state, STORE_S_OPEN);
    resps_free(&w);
    srv_drop(&w.srv);
}

TEST(an_answer_that_could_not_be_written_closes_only_its_session_and_keeps_its_packets_unacked) {
    world w;
    world_open(&w);
    claim(&w, N);
    resps_free(&w);
    claim(&w, N);
    resps_free(&w);
    uint64_t acked_before = session_of(&w, 4).acked;
    emit_each(&w, 2);
    polling_step_many(&w.srv, w.ps, N, w.resp, w.rc, w.due);
    for (int i = 0; i < N; i++) ASSERT_EQ_INT(w.rc[i], POLLING_DONE);
    /* session 4's answer found the web server's connection gone */
    polling_answer_lost(&w.srv, &w.p[4]);
    store_session s4 = session_of(&w, 4);
    ASSERT_EQ_INT(s4.state, STORE_S_CLOSED);
    ASSERT_EQ_INT(s4.close_reason, SESSION_CLOSE_POLL_DROPPED);
    ASSERT_EQ_INT(s4.acked, acked_before);
    ASSERT_TRUE(w.first_seq[4] > s4.acked); /* its packets are after acked: recovery replays them */
    /* the others go on: their next GETs are held, nothing lost or repeated */
    resps_free(&w);
    claim(&w, N);
    for (int i = 0; i < N; i++) {
        UNIT_CTX("session %d", i);
        if (i == 4) {
            ASSERT_EQ_INT(w.rc[i], POLLING_DONE);
            ASSERT_EQ_INT(w.resp[i].status, 400); /* Session ID unknown */
        } else {
            ASSERT_EQ_INT(w.rc[i], POLLING_WAIT);
        }
    }
    resps_free(&w);
    srv_drop(&w.srv);
}

UNIT_MAIN()

/* polling: Engine.IO's HTTP long-polling transport, the same for every
 * gateway (sio-fcgi's threads block, sio-front's event loop does not):
 * the handshake, POST bodies of client packets, and GETs that are held
 * until packets are queued for the session (read from the packet log from
 * the session's cursor, server/reader.h), a ping is due or the session
 * ends.  The rules and error answers are the Node server's: a second GET
 * while one is held gets 400 and closes the session, a POST over
 * max_http_buffer_size gets 413, and so on.
 *
 *   polling_req p;
 *   switch (polling_begin(srv, req, &p, &resp)) {
 *   case POLLING_READ_BODY: read <= max_http_buffer_size bytes; polling_post
 *   case POLLING_WAIT: loop { polling_step; wait for notify or the deadline }
 *   case POLLING_DONE: answer resp
 *   }
 * No store transaction is held between calls. */
#ifndef SIO_POLLING_H
#define SIO_POLLING_H

#include <stdint.h>

#include "base/util.h"
#include "server/http.h"
#include "server/server.h"

/* The state of one polling request between calls. */
typedef struct polling_req {
    char sid[UTIL_ID_LEN + 1];
    uint8_t bare;         /* a GET: at engine_path (a bare Engine.IO session's) */
    uint8_t bad_query;    /* a GET: not transport=polling, or not EIO=4 */
    uint32_t token;       /* identifies this held GET in the session record */
    int held;             /* the session records us as its pending GET */
    uint64_t gen;         /* notify generation seen at the last look */
    uint64_t scanned;     /* log records up to here hold nothing for this session */
    int64_t upgrade_wait; /* a GET during an upgrade: answer by then */
} polling_req;

enum {
    POLLING_DONE = 0,      /* resp is ready */
    POLLING_READ_BODY = 1, /* a POST: read at most max_http_buffer_size bytes, then polling_post */
    POLLING_WAIT = 2,      /* a GET is held: wait (notify or deadline), then polling_step */
    POLLING_CLAIM = 3,     /* polling_begin_deferred: a GET to claim with polling_claim_many */
};

/* Validates a polling request and starts it.  Returns POLLING_DONE with
 * resp filled (handshake, error), POLLING_READ_BODY, or POLLING_WAIT (a GET
 * now held: call polling_step at once, it may have packets ready). */
int polling_begin(server *srv, const http_req *req, polling_req *p, http_resp *resp);
/* As polling_begin, except that a GET of a session is not looked up yet
 * (no store access): POLLING_CLAIM, and polling_claim_many checks and
 * claims it later, together with others. */
int polling_begin_deferred(server *srv, const http_req *req, polling_req *p, http_resp *resp);
/* Claims n GETs (polling_begin_deferred said POLLING_CLAIM) in one write
 * transaction, answering at once those that have packets queued (or a ping
 * due): each gets POLLING_DONE with resps[i] filled, or POLLING_WAIT (held,
 * as after polling_begin: wait for a wake or deadlines[i], then
 * polling_step).  resps[i] keeps the headers polling_begin_deferred put in
 * it.  After a store error each is claimed again on its own. */
void polling_claim_many(server *srv, polling_req *const *ps, size_t n, http_resp *resps, int *rcs,
                        int64_t *deadlines);
/* Handles a POST body (len bytes, writable: it is decoded in place).
 * too_big: the body exceeded the limit (answered 413).  Always fills resp. */
void polling_post(server *srv, polling_req *p, uint8_t *body, size_t len, int too_big,
                  http_resp *resp);
/* Looks at a held GET again.  POLLING_DONE with resp filled, or POLLING_WAIT
 * with *deadline_ms set: wait for notify_sub_wait(gen) or the deadline. */
int polling_step(server *srv, polling_req *p, http_resp *resp, int64_t *deadline_ms);
/* Looks at n held GETs at once, each as polling_step would (rcs[i],
 * resps[i], deadlines[i]), with one read transaction for all their looks
 * and one write transaction for all the answers they find (a wake that
 * makes many polls answerable takes the store's writer lock once, not once
 * per poll).  A request whose session changed between the two, or any
 * store error, is stepped again on its own. */
void polling_step_many(server *srv, polling_req *const *ps, size_t n, http_resp *resps, int *rcs,
                       int64_t *deadlines);
/* The held GET went away without an answer (the server is stopping):
 * releases it; the session lives on. */
void polling_abandon(server *srv, polling_req *p);
/* The client dropped its held GET: releases it and closes the session, as
 * Node does ("transport error"). */
void polling_dropped(server *srv, polling_req *p);
/* The answer polling_step (or _many, or polling_claim_many) gave p could
 * not be written (the web server's connection broke): the session closes
 * as for a dropped GET, so that no later GET of it goes on past packets
 * the client never got (they stay after its acked cursor: connection state
 * recovery replays them). */
void polling_answer_lost(server *srv, polling_req *p);

/* The POST of p (polling_begin said POLLING_READ_BODY) will not be read:
 * the client went away in the middle of its body, or a second POST for the
 * same session came while this one was still arriving.  Node closes the
 * session then ("transport error"); so does this.  The second POST is
 * answered 400 with an empty body (polling_overlap_answer). */
void polling_post_broken(server *srv, polling_req *p);
void polling_overlap_answer(http_resp *resp);

#endif

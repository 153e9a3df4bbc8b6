/* fcgi_park: sio-fcgi's GETs, claimed and held in a few event loops
 * instead of one thread each.
 *
 * A worker thread that accepted a GET of a live session hands over the web
 * server's connection (polling_begin_deferred said POLLING_CLAIM): only
 * its fd, the FastCGI request id and the polling state are kept (libfcgi's
 * request object, its buffers and the parameters are freed by the worker),
 * a few hundred bytes per held poll.  A few loop threads (two per CPU) each
 * wait in epoll on the notify wake-ups, their parked connections and their
 * earliest deadline; each claims the GETs handed to it and steps its polls
 * again when the store changed or a deadline passed, in batches (one store
 * transaction for many polls), and writes the answers as FastCGI records
 * itself (STDOUT, END_REQUEST) without blocking, then closes the
 * connection.  A connection the web server closes (its client went away)
 * or aborts is dropped as Node drops a broken poll (polling_dropped); an
 * answer it cannot take closes the session (polling_answer_lost). */
#ifndef SIO_FCGI_PARK_H
#define SIO_FCGI_PARK_H

#include <stdint.h>

#include "base/buf.h"
#include "server/http.h"
#include "server/polling.h"
#include "server/server.h"

typedef struct fpark fpark;

/* Starts the loop threads; 0 or -errno. */
int fpark_start(server *srv, fpark **out);
/* Takes over fd (a FastCGI connection whose request id is request_id and
 * whose input has been read to its end), p (a GET to claim:
 * polling_begin_deferred said POLLING_CLAIM; the loop claims all the GETs
 * that came in one turn together) and head (the answer's extra headers;
 * emptied).  Any thread. */
void fpark_add(fpark *k, int fd, int request_id, const polling_req *p, buf *head);
/* The CGI-style head ("Status: ...", headers, blank line) and body of resp,
 * appended to out: what a FastCGI answer's STDOUT carries. */
void fpark_format(const http_resp *resp, buf *out);

#endif

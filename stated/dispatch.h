/* dispatch: the handler dispatcher.  It runs inside stated, in a thread of
 * its own, consumes the store's inbox (see inbox.h) in order, and runs the
 * application's handlers as the config declares them per namespace (and in
 * the [engine] section for the bare Engine.IO endpoint):
 *
 *   auth = CMD          a CONNECT to the namespace: exit 0 accepts (a JSON
 *                       object on stdout becomes the socket's data), any
 *                       other exit refuses (stdout {"message","data"} or its
 *                       first line is the message; "unauthorized" if empty);
 *                       timeout or crash refuses with "auth handler failed".
 *   connection = CMD    a socket joined the namespace.
 *   event.NAME = CMD    the client emitted NAME.
 *   any = CMD           an event that has no event.NAME command.
 *   server_event.NAME = CMD  another server of the cluster called
 *                       serverSideEmit(NAME, ...) (no socket; SIO_ACK_ID
 *                       when it waits for an answer: `sioctl ack ARG`).
 *   disconnect = CMD    the socket left.
 *   message = CMD       ([engine]) a message on a bare Engine.IO session.
 *   process = CMD       one long-running process per section: every record
 *                       of the namespace as one JSON line on its stdin;
 *                       every line it writes on stdout is an action (the
 *                       JSON form of server/actions.h), applied in one transaction per
 *                       batch of lines available at once.
 *   timeout = MS        time limit of each command (default 5000); also how
 *                       long a process handler may take to answer a connect.
 *
 * Commands run as `/bin/sh -c CMD` in the directory of the config file, in a
 * process group of their own, with the event on stdin (the record, plus the
 * socket's handshake, auth and data) and the environment PATH (the
 * directory of stated first, so `sioctl` is found), SIO_STATE_DIR,
 * SIO_CONFIG (when stated has a config file), SIO_TYPE, SIO_NSP, SIO_SOCKET,
 * SIO_SID, SIO_EVENT (events), SIO_ACK_ID (when the client wants an ack).
 * Event data never reaches a command line.
 *
 * Ordering: the records of one socket (of one Engine.IO session for
 * [engine] messages) are handled strictly one after the other; different
 * sockets run concurrently, at most max_procs commands at once (more wait).
 * Bounds: pending records per socket (past max_lane the record is dropped and
 * logged), records held in memory (past max_inflight the inbox is simply
 * read later), bytes queued for a process handler's stdin, and 1 MiB per
 * line read from a handler.  A handler that crashes, hangs (its process
 * group is killed at the time limit) or prints garbage is logged and never
 * blocks other sockets.
 *
 * Progress: the dispatcher's inbox cursor is its reader entry in the store
 * (READER_DISPATCHER, server/reader.h); it advances past a record once every handler of the record has
 * finished (for a process handler: once the line is written to its stdin),
 * so a restarted stated resumes where it stopped. */
#ifndef SIO_DISPATCH_H
#define SIO_DISPATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "server/server.h"

typedef struct dispatch_opts {
    unsigned max_procs;      /* commands running at once; 0 = 32 */
    unsigned max_lane;       /* pending records per socket; 0 = config max_handler_queue */
    unsigned max_inflight;   /* records held in memory; 0 = 65536 */
    size_t max_proc_queue;   /* bytes queued for one process's stdin; 0 = 16 MiB */
    long default_timeout_ms; /* when a section has no `timeout`; 0 = 5000 */
} dispatch_opts;

typedef struct dispatch dispatch;

/* Fills o from the environment: SIO_HANDLER_PROCS, SIO_HANDLER_QUEUE
 * (max_lane); unset values stay 0 (the defaults). */
void dispatch_opts_env(dispatch_opts *o);

/* Starts the dispatcher thread on srv (stated's context, whose store and
 * config it shares; srv must outlive dispatch_stop).  It creates its inbox
 * reader before returning, so the inbox is never trimmed under it, and runs
 * its own notify subscriber to wake on new records.  opts may be NULL.
 * 0 or <0 (-errno / store error). */
int dispatch_start(server *srv, const dispatch_opts *opts, dispatch **out);

/* Where commands run and what they find: the PATH they get (the directory
 * of this program, then $PATH) appended to out (0 or -ENOMEM), and the
 * directory of the config file into out (0, or -1 without one). */
int dispatch_path(buf *out);
int dispatch_cwd(const server *srv, char *out, size_t n);

/* Stops the thread: commands still running get up to about 2 s to finish,
 * then their process groups are killed; process handlers get their stdin
 * closed and 1 s to exit.  The cursor is saved.  NULL is safe. */
void dispatch_stop(dispatch *d);

/* The handler output the dispatcher interprets, as pure functions.
 *
 * One line a process handler wrote (len bytes, without the newline; spaces,
 * tabs and a CR around it ignored): a new action object (a JSON object with
 * a string "action"; the caller frees it), or NULL, with *blank set when the
 * line was empty (skipped quietly) and clear when it is not an action
 * (logged). */
cJSON *dispatch_action_line(const char *line, size_t len, int *blank);
/* The answer to a CONNECT that an auth command gives: exit_code 0 accepts
 * (a JSON object on stdout becomes the socket's data), >0 refuses (stdout
 * {"message","data"}, else its first line, else "unauthorized"), <0 (killed,
 * timed out) refuses with "auth handler failed".  out: its stdout (len
 * bytes, may be NULL); whole: 0 when it was cut at the limit (then it is
 * not read as JSON).  A new accept/refuse action. */
cJSON *dispatch_auth_action(const char *sid, const char *nsp, const char *socket,
                            const cJSON *auth, int exit_code, const char *out, size_t len,
                            int whole);

#endif

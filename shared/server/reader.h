/* reader: everything that reads the store's two logs in order, and the one
 * place that knows how.
 *
 *   - Who reads: a reader has a typed identity (reader_id), saved in the
 *     store's readers table with its position, so that stated trims each
 *     log only below what its readers still need.  The packet log is read
 *     by every sio-front process (its one cursor for all its WebSockets) and
 *     by each polling session (the cursor in its session record); the inbox
 *     by stated's handler dispatcher, its Admin UI thread and by `sioctl
 *     listen`.
 *   - What a broadcast record reaches: matching by namespace, rooms and
 *     except rooms at exact positions.  A socket receives a record written
 *     after it connected (or was attached to its current session) while it
 *     was in one of the record's rooms and in none of the except rooms, as
 *     the store's membership intervals (join, leave] say: a record written
 *     before a leave reaches the socket even when it is read after it.
 *   - Recovery: reader_missed gives the records a socket missed since an
 *     offset, whichever session read them.
 *   - Reading for one session (polling, an upgrade's backlog): reader_collect.
 *   - Producer flow control: reader_backlog_wait.
 * A new reader of either log starts here: give it a kind, then use
 * reader_put/reader_collect or store_log_scan with reader_match. */
#ifndef SIO_READER_H
#define SIO_READER_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"
#include "store/logrec.h"
#include "store/store.h"

/* ---- identities and positions ---------------------------------------------- */

typedef enum reader_kind {
    READER_FRONT = 1,        /* the packet log: a sio-front process */
    READER_DISPATCHER = 2,   /* the inbox: stated's handler dispatcher */
    READER_LISTEN = 3,       /* the inbox: a `sioctl listen` process */
    READER_BRIDGE = 4,       /* the packet log: stated's cluster bridge (publishes) */
    READER_BRIDGE_INBOX = 5, /* the inbox: the bridge (acks for other servers) */
    READER_ADMIN = 6,        /* the inbox: stated's Admin UI thread */
} reader_kind;

typedef enum reader_log { READER_LOG_PACKETS = 0, READER_LOG_INBOX = 1 } reader_log;

typedef struct reader_id {
    reader_kind kind;
    int pid; /* the process (0 for stated's dispatcher and bridge: one per store) */
} reader_id;

/* The id of this process as a reader of that kind. */
reader_id reader_self(reader_kind kind);
reader_log reader_log_of(reader_kind kind);
/* 1 while the reader's process exists. */
int reader_alive(const reader_id *id);
/* Its name, for logs (and in the store). */
const char *reader_name(const reader_id *id, char *out, size_t n);

/* Saves / reads / removes the position of a reader (records up to seq are
 * read).  reader_get: 0, or STORE_NOTFOUND when it has none. */
int reader_put(store_txn *t, const reader_id *id, uint64_t seq);
int reader_get(store_txn *t, const reader_id *id, uint64_t *seq);
int reader_del(store_txn *t, const reader_id *id);
/* Calls cb for every reader in the store; a non-zero return stops the walk
 * and is returned.  Entries of unknown names are skipped. */
int reader_each(store_txn *t, int (*cb)(void *arg, const reader_id *id, uint64_t seq), void *arg);
/* The lowest position among the readers of a log (live ones only with
 * live_only); *min is UINT64_MAX and *count (may be NULL) 0 when none. */
int reader_min(store_txn *t, reader_log log, int live_only, uint64_t *min, size_t *count);
/* Up to max readers of `kind` whose process is gone (never this process),
 * into out.  Returns how many, or <0. */
int reader_find_dead(store_txn *t, reader_kind kind, reader_id *out, size_t max);

/* ---- matching --------------------------------------------------------------- */

#define READER_PER_RECORD 2
/* For a broadcast record: 1 when socket s is in its target over one window
 * (lo, hi] of sequence numbers: reader_match(seq) is lo < seq && seq <= hi.
 * lo comes from when the socket was created (attached) and joined the
 * rooms, hi from when it joined an except room.  Readers that see many
 * records with the same target in one transaction compute the window once
 * (logrec_same_target).  0 when never, READER_PER_RECORD when ended
 * memberships make it more than one window (ask reader_match for each
 * record), or <0. */
int reader_window(store_txn *t, const logrec *r, const store_socket *s, uint64_t *lo, uint64_t *hi);
/* 1 when the record (with sequence seq) is for socket s, else 0 (or <0). */
int reader_match(store_txn *t, const logrec *r, uint64_t seq, const store_socket *s);
/* For a broadcast to rooms: cb gets the id of every socket that is or was
 * (in a membership still kept) in one of the record's rooms, maybe more
 * than once, until it returns non-zero (then returned).  reader_match still
 * decides delivery. */
int reader_members(store_txn *t, const logrec *r, int (*cb)(void *arg, const char *id), void *arg);
/* Connection state recovery: calls cb for every broadcast record with
 * after < seq <= until that carries its offset (LOGREC_F_OFFSET) and that
 * reached socket s by its memberships (whatever session it was attached
 * to), in log order.  A non-zero return from cb stops the walk and is
 * returned. */
int reader_missed(store_txn *t, const store_socket *s, uint64_t after, uint64_t until,
                  int (*cb)(void *arg, uint64_t seq, const logrec *r), void *arg);

/* Hands every frame for session sid in records with after < seq <= until to
 * cb, in log order, stopping after about limit bytes (at least one record).
 * *upto gets the last seq looked at: the session's new cursor.  A non-zero
 * return from cb stops the walk and is returned. */
typedef int (*reader_frame_cb)(void *arg, const logrec_frame *f);
int reader_collect(store_txn *t, const char *sid, uint64_t after, uint64_t until, size_t limit,
                   reader_frame_cb cb, void *arg, uint64_t *upto);

/* ---- flow control ---------------------------------------------------------- */

/* Waits while the packet log holds more than max_records that a live front
 * has not read yet, or until deadline_ms (the cluster bridge never slows a
 * producer).  Returns 0, or 1 when it gave
 * up at the deadline (the producer goes on; a reader that stays behind is
 * disconnected from the trimmed log later). */
int reader_backlog_wait(server *s, uint64_t max_records, int64_t deadline_ms);

#endif

/* store: the shared state of every process, in one LMDB environment inside
 * the state directory.  It knows LMDB and the record layouts below, and
 * nothing of the wire protocol: packet bytes are opaque to it.
 *
 * Layout (named databases):
 *   meta        string key -> value: format version, log bounds.
 *   sessions    Engine.IO sid (20 chars) -> store_session (fixed struct).
 *   partials    sid -> a binary Socket.IO packet waiting for attachments.
 *   sockets     socket id (20 chars) -> store_socket header + nsp + data.
 *   sess_socks  sid -> socket id, DUPSORT: the sockets of a session (a
 *               detached socket, kept for connection state recovery, has
 *               none).
 *   pids        private session id (the CONNECT reply's "pid") -> socket id.
 *   detached    socket id -> when it was detached (ms): the sockets waiting
 *               for their client to recover them.
 *   rooms       nsp '\0' room -> socket id + join seq + leave seq (8 bytes
 *               BE each), DUPSORT: membership as intervals (join, leave] of
 *               log seqs; the current one has leave = STORE_SEQ_OPEN.
 *   leaves      leave seq (INTEGERKEY, DUPSORT) -> nsp '\0' room '\0' id +
 *               join seq: the closed intervals, so that they are dropped
 *               once the log no longer holds a record they could decide.
 *   sock_rooms  socket id -> room, DUPSORT: the rooms a socket is in now,
 *               for leaving every room at once and listing them.
 *   log         seq (uint64, INTEGERKEY, appended with MDB_APPEND) -> one
 *               delivery record (see logrec.h): the frames already encoded,
 *               plus who they are for.
 *   readers     reader name -> uint64 seq: how far a long-lived reader (a
 *               WebSocket front, the handler dispatcher) has consumed the
 *               packet log or the inbox (names: server/reader.c).
 *   inbox       seq (uint64, INTEGERKEY) -> one JSON event for application
 *               logic (see inbox.h): connections, events, acks, disconnects.
 *               The handler dispatcher in stated consumes it in order.
 *   handshakes  sid -> JSON {address, headers, query, time, url} of the
 *               request that opened the session (handlers see it).
 *
 * Why a log: a broadcast to a room of 10,000 sockets is ONE append of the
 * encoded frames, whatever the room's size; each reader (a polling request,
 * or a front serving many connections) walks the log from its own cursor and
 * keeps what is addressed to it, checking room membership as of the entry's
 * sequence number (a socket receives an entry only if it was in the room
 * when the entry was written: joined before it, left after it).  Nothing is copied per recipient, and
 * delivery order is the log order for every reader.  stated trims the log
 * below the slowest live cursor, and past max_log_bytes in any case (a
 * reader left behind the trim point is disconnected).
 *
 * Concurrency: LMDB serialises writers machine wide; readers never block.
 * The environment is opened with MDB_NOTLS (a transaction is not tied to a
 * thread slot).  Never hold a transaction while waiting: copy what you need
 * and end it.
 *
 * Durability (the config's `durability`).  stated opens the store, records
 * how in meta "open", and every other process opens it the same way (LMDB
 * forbids mixing MDB_WRITEMAP with plain opens; the map size is stated's
 * too):
 *   fast  MDB_WRITEMAP | MDB_NOSYNC: a commit writes into the shared map, no
 *         system call; stated syncs every second.  A process crash loses
 *         nothing.  A power loss or kernel crash loses up to about a second
 *         of commits, and can leave the file corrupt: without a sync LMDB
 *         gives no write ordering (its docs say so); stated then moves the
 *         file aside at its next start (store/recover.h) and starts empty.
 *         With a writable map, writing into a hole of the sparse file when
 *         the disk is full raises SIGBUS, a crash; so stated reserves the
 *         whole map on disk (fallocate of map_size: about 2 ms for 4 GiB on
 *         ext4, and map_size of disk).  Where it cannot (not enough free
 *         disk, no fallocate, or a copy-on-write filesystem where a
 *         reservation guarantees nothing) it opens without the map instead
 *         (STORE_MODE_FAST_PWRITE: pages are pwrite()n at commit, a third
 *         fewer commits per second; a full disk is ENOSPC from the commit)
 *         and says why (store_mode_note).
 *   safe  neither flag: a commit returns once it is on disk (fdatasync, then
 *         the meta page written O_DSYNC); a power loss loses nothing
 *         committed.  Without the map: fdatasync is cheaper than msync()ing
 *         the whole map at each commit (echo: 1.5k vs 0.57k acks/s),
 *         and a full disk is an error, never a crash.
 * The lock file (the reader table, a shared map in every mode) is reserved
 * too.  README "Durability and faults" has the measured costs.
 *
 * Errors: 0 on success; STORE_NOTFOUND; other negative values are -errno or
 * STORE_EFULL (map full) / STORE_EBROKEN (damaged, or another LMDB version)
 * / STORE_EIO (other LMDB failure); -EPROTO: another format of this store;
 * store_strerror. */
#ifndef SIO_STORE_H
#define SIO_STORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define STORE_NOTFOUND (-30798) /* = MDB_NOTFOUND */
#define STORE_EFULL (-30792)    /* = MDB_MAP_FULL */
#define STORE_EIO (-30700)
#define STORE_EBROKEN (-30701)

#define STORE_ROOM_MAX 256 /* longest room name, bytes */

typedef struct store store;
typedef struct store_txn store_txn;

typedef struct store_opts {
    int create;          /* create the directory and databases (stated) */
    size_t map_size;     /* bytes; 0 = 4 GiB (create only: others use stated's) */
    unsigned maxreaders; /* 0 = 4096 */
    int durability;      /* STORE_FAST or STORE_SAFE (create only: others follow) */
} store_opts;
enum { STORE_FAST = 0, STORE_SAFE = 1 };

/* Opens the environment in dir.  Without opts->create the environment must
 * exist (stated created it): -ENOENT otherwise; it is then opened the way
 * stated opened it.  Once per process. */
int store_open(store **out, const char *dir, const store_opts *opts);
void store_close(store *s);
const char *store_strerror(int rc);
/* An LMDB return code as a store error: the codes that mean a damaged file
 * or another LMDB version become STORE_EBROKEN, MDB_NOTFOUND -ENOENT
 * (what opening a store can meet; store/recover.c too). */
int store_lmdb_rc(int mdb_rc);
/* 1 when a write failed for want of room: the map (STORE_EFULL) or the
 * disk under it (-ENOSPC, -EDQUOT: fast mode without the map, safe mode). */
static inline int store_full(int rc) { return rc == STORE_EFULL || rc == -ENOSPC || rc == -EDQUOT; }
const char *store_dir(const store *s);
/* The format this code writes (meta "format"; store/recover.h checks it). */
const char *store_format(void);
/* Clears reader slots left by crashed processes; returns how many. */
int store_reader_check(store *s);
int store_sync(store *s);
/* Unmaps, in this process only, the store's pages it has touched: they stay
 * in the page cache (shared by every process, dirty ones written back as
 * usual) and come back on the next touch, as a minor fault.  Without it
 * every page a process ever read or wrote (a burst's log records, the
 * sessions of a connection ramp) stays in its resident memory, counted
 * again in each process.  Safe at any time, transactions in progress
 * included.  Returns 0 or -errno. */
int store_release_pages(store *s);

/* How the store is open (see Durability above). */
enum { STORE_MODE_FAST = 0, STORE_MODE_FAST_PWRITE = 1, STORE_MODE_SAFE = 2 };
int store_mode(const store *s);
const char *store_mode_name(int mode);
/* Why fast mode runs without the map (the reservation failed), or NULL. */
const char *store_mode_note(const store *s);
/* The map size in force, bytes (the store's maximum size). */
size_t store_map_size(const store *s);
/* Space left in the map: never used pages plus free pages, in bytes (a read
 * transaction; for stated, which trims the packet log when it runs low). */
int store_space(store *s, uint64_t *free_bytes, uint64_t *map_bytes);

/* A transaction; write=1 for a write transaction (one at a time machine
 * wide).  store_commit and store_abort free the txn. */
int store_begin(store *s, int write, store_txn **out);
int store_commit(store_txn *t);
void store_abort(store_txn *t);

/* ---- meta --------------------------------------------------------------- */
/* Small named values (stated publishes its config text here).  get: *data is
 * borrowed until the txn ends. */
int store_meta_get(store_txn *t, const char *key, const void **data, size_t *len);
int store_meta_put(store_txn *t, const char *key, const void *data, size_t len);

/* ---- sessions ---------------------------------------------------------- */
enum { STORE_T_POLLING = 0, STORE_T_WEBSOCKET = 1 };
enum { STORE_S_OPEN = 0, STORE_S_UPGRADING = 1, STORE_S_CLOSED = 2 };

typedef struct store_session {
    uint32_t version;      /* STORE_SESSION_VERSION */
    uint8_t eio;           /* Engine.IO protocol version (4) */
    uint8_t transport;     /* STORE_T_* */
    uint8_t state;         /* STORE_S_* */
    uint8_t close_reason;  /* SESSION_CLOSE_* (server.h) when closed */
    uint8_t close_sent;    /* the close ('1' or '6') has been handed out */
    uint8_t ever_connected;/* a namespace was joined once (connectTimeout) */
    uint8_t bare;          /* a bare Engine.IO session: messages go to the inbox */
    uint8_t pad[1];
    int64_t created_ms;
    int64_t ping_at_ms;    /* when the next ping is due */
    int64_t ping_sent_ms;  /* the ping_at_ms whose '2' was handed out */
    int64_t closed_ms;
    int64_t upgrade_ms;    /* when the upgrade started */
    uint64_t cursor;       /* last log seq handed to this session */
    uint64_t acked;        /* what was for it up to here reached the client (its next
                              GET; the pong after a WebSocket ping): recovery */
    int32_t poll_pid;      /* process holding the pending GET (0: none) */
    uint32_t poll_token;   /* which request of that process */
    int64_t poll_since_ms;
    int32_t owner_pid;     /* WebSocket front process owning the connection */
    uint32_t nsockets;
    char remote[48];       /* client address */
} store_session;
#define STORE_SESSION_VERSION 2

int store_session_get(store_txn *t, const char *sid, store_session *out);
int store_session_put(store_txn *t, const char *sid, const store_session *s);
int store_session_del(store_txn *t, const char *sid);
/* Calls cb for every session; a non-zero return from cb stops the walk and is
 * returned.  The sid is borrowed for the call. */
int store_session_each(store_txn *t, int (*cb)(void *arg, const char *sid, const store_session *s),
                       void *arg);
int store_session_count(store_txn *t, size_t *out);

/* A packet being assembled from attachments (opaque bytes, owned by server/socketio.c).
 * get: *data is borrowed until the txn ends. */
int store_partial_get(store_txn *t, const char *sid, const void **data, size_t *len);
int store_partial_put(store_txn *t, const char *sid, const void *data, size_t len);
int store_partial_del(store_txn *t, const char *sid);

/* ---- sockets ----------------------------------------------------------- */
typedef struct store_socket {
    char id[UTIL_ID_LEN + 1];
    char sid[UTIL_ID_LEN + 1];  /* its Engine.IO session (the last one, when detached) */
    char pid[UTIL_ID_LEN + 1];  /* private id for recovery; "" when recovery was off */
    char nsp[129];
    uint64_t created_seq;       /* log head when it connected */
    uint64_t attach_seq;        /* log head when it joined its current session (recovery) */
    uint64_t delivered_seq;     /* what was for it up to here reached its client (recovery) */
    int64_t created_ms;
    int64_t detached_ms;        /* when its session ended and it waits for recovery; 0: attached */
    const char *data;           /* JSON text (handshake, auth, data); borrowed */
    size_t data_len;
} store_socket;

/* Creates the socket record, its link to the session (detached_ms must be 0)
 * and its pid entry. */
int store_socket_put(store_txn *t, const store_socket *s);
/* out->data is borrowed until the txn ends. */
int store_socket_get(store_txn *t, const char *id, store_socket *out);
/* Removes the socket, its session link, its pid and detached entries and
 * every room membership. */
int store_socket_del(store_txn *t, const char *id);
/* Detaches a socket from its session (the link goes, the record and rooms
 * stay) as of detached_ms (> 0).  acked is the session's acked: it raises
 * the socket's delivered_seq when it covers the socket's time in that
 * session (acked >= attach_seq). */
int store_socket_detach(store_txn *t, const char *id, int64_t detached_ms, uint64_t acked);
/* Attaches a socket, detached or not, to session sid from log seq
 * attach_seq on (it leaves its previous session). */
int store_socket_attach(store_txn *t, const char *id, const char *sid, uint64_t attach_seq);
/* The socket of a private id: 0 and id, or STORE_NOTFOUND. */
int store_pid_socket(store_txn *t, const char *pid, char id[UTIL_ID_LEN + 1]);
/* Calls cb for every detached socket id with when it was detached. */
int store_detached_each(store_txn *t, int (*cb)(void *arg, const char *id, int64_t detached_ms),
                        void *arg);
/* Sockets of one session / of every session. cb's record is borrowed. */
int store_session_sockets(store_txn *t, const char *sid,
                          int (*cb)(void *arg, const store_socket *s), void *arg);
int store_socket_each(store_txn *t, int (*cb)(void *arg, const store_socket *s), void *arg);

/* ---- rooms ------------------------------------------------------------- */
#define STORE_SEQ_OPEN UINT64_MAX /* the leave seq of a current membership */

/* Adds socket id (of namespace nsp) to room; join_seq is the log head at the
 * time.  Joining twice keeps the first join. */
int store_room_join(store_txn *t, const char *nsp, const char *room, const char *id,
                    uint64_t join_seq);
/* Ends the membership of id in room as of leave_seq (the log head): records
 * up to leave_seq still reach it.  STORE_NOTFOUND when it is not a member. */
int store_room_leave(store_txn *t, const char *nsp, const char *room, const char *id,
                     uint64_t leave_seq);
/* 0 and *join_seq when id is in room now, STORE_NOTFOUND otherwise. */
int store_room_has(store_txn *t, const char *nsp, const char *room, size_t room_len,
                   const char *id, uint64_t *join_seq);
/* Every membership interval (join, leave] of id in room, oldest first (the
 * current one has leave = STORE_SEQ_OPEN); a non-zero return from cb stops. */
int store_room_intervals(store_txn *t, const char *nsp, const char *room, size_t room_len,
                         const char *id, int (*cb)(void *arg, uint64_t join, uint64_t leave),
                         void *arg);
/* Members of one room: the current ones, and with `past` also those whose
 * ended intervals are still kept (cb may then see an id more than once). */
int store_room_members(store_txn *t, const char *nsp, const char *room, size_t room_len, int past,
                       int (*cb)(void *arg, const char *id, uint64_t join_seq), void *arg);
/* Drops the ended intervals with leave seq <= upto; *n (may be NULL) gets
 * how many. */
int store_room_gc(store_txn *t, uint64_t upto, size_t *n);
/* Every room of a namespace with its member count. */
int store_room_each(store_txn *t, const char *nsp,
                    int (*cb)(void *arg, const char *room, size_t room_len, size_t members),
                    void *arg);
/* Rooms of one socket. */
/* How many rooms socket id is in now (its own room included). */
int store_socket_room_count(store_txn *t, const char *id, size_t *n);
int store_socket_rooms(store_txn *t, const char *id,
                       int (*cb)(void *arg, const char *room, size_t room_len), void *arg);

/* ---- log --------------------------------------------------------------- */
/* Appends a record; *seq gets its sequence number (head + 1). */
int store_log_append(store_txn *t, const void *rec, size_t len, uint64_t *seq);
/* The last sequence number written (0 when nothing ever was), and the first
 * still stored (head + 1 when the log is empty). */
int store_log_bounds(store_txn *t, uint64_t *first, uint64_t *head);
/* Calls cb for each record with after < seq <= until, in order, until cb
 * returns non-zero (returned) or the log ends.  Record bytes are borrowed. */
int store_log_scan(store_txn *t, uint64_t after, uint64_t until,
                   int (*cb)(void *arg, uint64_t seq, const void *rec, size_t len), void *arg);
/* Deletes records with seq <= upto.  *bytes gets the bytes freed. */
int store_log_trim(store_txn *t, uint64_t upto, size_t *bytes);
/* Total bytes of records currently in the log. */
int store_log_size(store_txn *t, uint64_t *bytes);

/* ---- inbox --------------------------------------------------------------- */
/* The same operations for the inbox (a second log, of JSON events). */
int store_inbox_append(store_txn *t, const void *rec, size_t len, uint64_t *seq);
/* How many commits through s appended to the inbox (counted once each
 * commit has returned; any thread): a publisher that saw no change since its
 * last wake-up tells the hub so (notify.h, NOTIFY_NO_INBOX). */
uint64_t store_inbox_commits(store *s);
int store_inbox_bounds(store_txn *t, uint64_t *first, uint64_t *head);
int store_inbox_scan(store_txn *t, uint64_t after, uint64_t until,
                     int (*cb)(void *arg, uint64_t seq, const void *rec, size_t len), void *arg);
int store_inbox_trim(store_txn *t, uint64_t upto);

/* ---- handshakes ------------------------------------------------------------ */
int store_handshake_put(store_txn *t, const char *sid, const char *json, size_t len);
/* *json is borrowed until the txn ends. */
int store_handshake_get(store_txn *t, const char *sid, const char **json, size_t *len);

/* ---- readers ----------------------------------------------------------- */
int store_reader_put(store_txn *t, const char *name, uint64_t seq);
/* 0 and *seq, or STORE_NOTFOUND. */
int store_reader_get(store_txn *t, const char *name, uint64_t *seq);
int store_reader_del(store_txn *t, const char *name);
int store_reader_each(store_txn *t, int (*cb)(void *arg, const char *name, uint64_t seq), void *arg);

#endif

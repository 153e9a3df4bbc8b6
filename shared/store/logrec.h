/* logrec: the packet log's record, and the one module that knows its bytes.
 *
 * A packet is encoded ONCE into Engine.IO message frames and appended once,
 * with whom it is for:
 *   - LOGREC_TO_SESSION: one Engine.IO session (CONNECT replies, acks, ...);
 *   - LOGREC_BROADCAST: a namespace, optionally narrowed to a union of rooms
 *     and minus the members of `except` rooms (a socket's own id is a room,
 *     so "to one socket" and "everyone but the sender" are the same thing).
 * Who receives a broadcast is decided by its readers (server/reader.h), as of
 * the record's sequence number.
 *
 * Layout (all integers little endian, packed):
 *   u8 kind, u8 flags (LOGREC_F_*), u16 nsp_len, u16 nrooms, u16 nexcept, u32 nframes,
 *   char target[20], nsp, rooms (u16 len + bytes each), except (same),
 *   frames (u8 binary + u32 len + bytes each).
 * A frame is the data of one Engine.IO message packet (type 4): text without
 * the '4' digit, or raw bytes for a binary attachment.  The store keeps the
 * bytes as they are (store.h); this format is part of the store's format. */
#ifndef SIO_LOGREC_H
#define SIO_LOGREC_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "store/store.h"

enum { LOGREC_TO_SESSION = 1, LOGREC_BROADCAST = 2 };
#define LOGREC_MAX_ROOMS 1024

/* Flags of a broadcast, for the cluster bridge (cluster/bridge.h) and for
 * connection state recovery (server/socketio.h); readers that deliver to
 * clients ignore them. */
enum {
    LOGREC_F_LOCAL = 1,    /* this node only: never published (flags.local) */
    LOGREC_F_REMOTE = 2,   /* received from the cluster: not published again */
    LOGREC_F_OFFSET = 4,   /* an event whose last argument is its own seq, as
                              a string: replayed to a recovering socket */
    LOGREC_F_VOLATILE = 8, /* may be lost (flags.volatile): never replayed */
};

/* One frame: borrowed bytes. */
typedef struct logrec_frame {
    int binary;
    const uint8_t *data;
    size_t len;
} logrec_frame;

/* Who a broadcast is for: the BroadcastOperator's {rooms, except}.  Strings
 * are borrowed; rooms are 1..STORE_ROOM_MAX bytes. */
typedef struct bcast {
    const char *nsp;
    const char *const *rooms; /* union; none = the whole namespace */
    size_t nrooms;
    const char *const *except;
    size_t nexcept;
    unsigned flags; /* LOGREC_F_* */
} bcast;

/* Appends a broadcast record; *seq (may be NULL) gets its sequence number.
 * 0, -EINVAL (a name too long, too many rooms), -E2BIG, -ENOMEM or a store
 * error. */
int logrec_append_broadcast(store_txn *t, const bcast *to, const logrec_frame *frames,
                            size_t nframes, uint64_t *seq);
/* Appends a record for one session. */
int logrec_append_session(store_txn *t, const char *sid, const logrec_frame *frames,
                          size_t nframes, uint64_t *seq);
/* The same with the frames of another record: its frames section (from
 * logrec.frames to logrec.end, copied by the caller) and its nframes. */
int logrec_append_session_frames(store_txn *t, const char *sid, const void *frames, size_t len,
                                 size_t nframes, uint64_t *seq);

/* A parsed record; every pointer borrows the record's bytes. */
typedef struct logrec {
    int kind;
    unsigned flags;               /* LOGREC_F_* */
    char target[UTIL_ID_LEN + 1]; /* LOGREC_TO_SESSION: the sid */
    const char *nsp;              /* not NUL-terminated */
    size_t nsp_len;
    size_t nrooms, nexcept, nframes;
    const uint8_t *rooms;  /* the union's rooms */
    const uint8_t *except; /* the except rooms */
    const uint8_t *frames;
    const uint8_t *end;
} logrec;

/* 0, or -EINVAL when the bytes are not a well-formed record. */
int logrec_parse(const void *data, size_t len, logrec *out);
/* Iterates the frames: *pos starts at 0; 1 with a frame, 0 at the end. */
int logrec_frame_next(const logrec *r, size_t *pos, logrec_frame *out);

/* A room name inside a record (borrowed, not NUL-terminated). */
typedef struct logrec_room {
    const char *name;
    size_t len;
} logrec_room;
/* Iterates the union's rooms (except = 0) or the except rooms (except = 1):
 * *pos starts at 0; 1 with a room, 0 at the end. */
int logrec_room_next(const logrec *r, int except, size_t *pos, logrec_room *out);

/* 1 when two broadcast records have the same target (namespace, rooms,
 * except), so that they reach the same sockets in one transaction. */
int logrec_same_target(const logrec *a, const logrec *b);

#endif

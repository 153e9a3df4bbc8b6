/* adapter: rooms and broadcasting on top of the store, like the Node
 * server's Adapter.  It owns the delivery record written to the store's log:
 * a packet is encoded ONCE into Engine.IO message frames and appended once,
 * with who it is for:
 *   - ADAPTER_TO_SESSION: one Engine.IO session (CONNECT replies, acks, ...);
 *   - ADAPTER_BCAST: a namespace, optionally narrowed to a union of rooms and
 *     minus the members of `except` rooms (a socket's own id is a room, so
 *     "to one socket" and "everyone but the sender" are the same mechanism).
 * Readers decide membership with adapter_match, as of the record's seq.
 *
 * Record layout (all integers little endian, packed):
 *   u8 kind, u8 flags, u16 nsp_len, u16 nrooms, u16 nexcept, u32 nframes,
 *   char target[20], nsp, rooms (u16 len + bytes each), except (same),
 *   frames (u8 binary + u32 len + bytes each).
 * A frame is the data of one Engine.IO message packet (type 4): text without
 * the '4' digit, or raw bytes for a binary attachment. */
#ifndef SIO_ADAPTER_H
#define SIO_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "store/store.h"

enum { ADAPTER_TO_SESSION = 1, ADAPTER_BCAST = 2 };
#define ADAPTER_MAX_ROOMS 1024

typedef struct adapter_frame {
    int binary;
    const uint8_t *data;
    size_t len;
} adapter_frame;

/* Who a broadcast is for: the BroadcastOperator's {rooms, except}. */
typedef struct bcast {
    const char *nsp;
    const char *const *rooms; /* union; none = the whole namespace */
    size_t nrooms;
    const char *const *except;
    size_t nexcept;
} bcast;

/* Appends a broadcast record; *seq (may be NULL) gets its sequence number. */
int adapter_emit(store_txn *t, const bcast *to, const adapter_frame *frames, size_t nframes,
                 uint64_t *seq);
/* Appends a record for one session. */
int adapter_send_session(store_txn *t, const char *sid, const adapter_frame *frames,
                         size_t nframes, uint64_t *seq);

/* A parsed record; every pointer borrows the record bytes. */
typedef struct adapter_rec {
    int kind;
    char target[UTIL_ID_LEN + 1];
    const char *nsp;
    size_t nsp_len;
    size_t nrooms, nexcept, nframes;
    const uint8_t *rooms;   /* nrooms then nexcept (u16 len + bytes) */
    const uint8_t *frames;  /* nframes (u8 binary + u32 len + bytes) */
    const uint8_t *end;
} adapter_rec;

/* 0, or -EINVAL when the bytes are not a well-formed record. */
int adapter_rec_parse(const void *data, size_t len, adapter_rec *out);
/* Iterates the frames: *pos starts at 0; returns 1 with a frame, 0 at the end. */
int adapter_rec_frame(const adapter_rec *r, size_t *pos, adapter_frame *out);

/* 1 when the record (with sequence seq) is for socket s, else 0 (or <0). */
int adapter_match(store_txn *t, const adapter_rec *r, uint64_t seq, const store_socket *s);
/* For a broadcast record: 1 when socket s is in its target at some sequence
 * number, with the window (lo, hi] of those numbers: adapter_match(seq) is
 * lo < seq && seq <= hi.  lo comes from when the socket was created and
 * joined the rooms, hi from when it joined an `except` room.  Readers that
 * see many records with the same target in one transaction compute the
 * window once.  0 when never (or <0). */
int adapter_window(store_txn *t, const adapter_rec *r, const store_socket *s, uint64_t *lo,
                   uint64_t *hi);
/* 1 when two broadcast records have the same target (namespace, rooms,
 * except), so that they reach the same sockets in one transaction. */
int adapter_same_target(const adapter_rec *a, const adapter_rec *b);

/* Calls cb for each socket that a broadcast `to` would reach now (every
 * socket once), like fetchSockets(). */
int adapter_sockets(store_txn *t, const bcast *to, int (*cb)(void *arg, const store_socket *s),
                    void *arg);
/* Room membership for one socket; join uses the current log head as the
 * join sequence.  Room names: 1..STORE_ROOM_MAX bytes. */
int adapter_join(store_txn *t, const store_socket *s, const char *room);
int adapter_leave(store_txn *t, const store_socket *s, const char *room);

#endif

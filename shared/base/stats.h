/* stats: the event counters every process of a stack shares (handshakes,
 * disconnections by reason, packets and bytes in and out per transport,
 * broadcasts, handler failures), for the metrics page, `sioctl status` and
 * the Admin UI.
 *
 * It owns one small file in the state directory, STATS_FILE, mapped shared
 * by every process (stated, sio-front, sio-fcgi workers and their threads,
 * sioctl).  The file holds a base slot and one slot per process, claimed by
 * pid: a process adds only to its own slot, with a relaxed atomic add (no
 * syscall, no lock, no store transaction: stats_add is safe on every hot
 * path and from every thread).  A reader sums the slots.  When a process is
 * gone its slot is folded into the base slot (by whoever opens the file
 * next, or stats_fold_dead), so every counter only grows: across restarts of
 * any process, and while a fold runs (readers retry while a fold is under
 * way, see stats_read).  Claiming and folding take a flock on the file;
 * counting never does.
 *
 * Counters are counted when the event happens in the process, not when its
 * store transaction commits: a transaction that fails afterwards still
 * counts (rare: a full store).  Nothing here needs the store. */
#ifndef SIO_STATS_H
#define SIO_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_FILE "stats.shm"

/* Why a socket (or an Engine.IO session) ended: Node's disconnect reasons. */
enum stats_reason {
    STATS_R_TRANSPORT_CLOSE,
    STATS_R_TRANSPORT_ERROR,
    STATS_R_PING_TIMEOUT,
    STATS_R_PARSE_ERROR,
    STATS_R_FORCED_CLOSE,
    STATS_R_CLIENT_NSP,    /* client namespace disconnect */
    STATS_R_SERVER_NSP,    /* server namespace disconnect */
    STATS_R_SERVER_SHUTDOWN,
    STATS_R_OTHER,
    STATS_NREASONS
};

/* The two transports. */
enum stats_transport { STATS_T_POLLING, STATS_T_WEBSOCKET, STATS_NTRANSPORTS };

/* Every counter; the per-reason and per-transport ones are blocks indexed
 * with the helpers below. */
enum stats_counter {
    STATS_HANDSHAKES,   /* Engine.IO sessions opened (+ transport) */
    STATS_HANDSHAKES_END = STATS_HANDSHAKES + STATS_NTRANSPORTS,
    STATS_CONNECTS = STATS_HANDSHAKES_END, /* Socket.IO sockets connected to a namespace */
    STATS_SESSION_CLOSES, /* Engine.IO sessions closed (+ reason) */
    STATS_SOCKET_DISCONNECTS = STATS_SESSION_CLOSES + STATS_NREASONS, /* sockets (+ reason) */
    STATS_PACKETS_IN = STATS_SOCKET_DISCONNECTS + STATS_NREASONS, /* Engine.IO packets (+ transport) */
    STATS_PACKETS_OUT = STATS_PACKETS_IN + STATS_NTRANSPORTS,
    STATS_BYTES_IN = STATS_PACKETS_OUT + STATS_NTRANSPORTS,
    STATS_BYTES_OUT = STATS_BYTES_IN + STATS_NTRANSPORTS,
    STATS_BROADCASTS = STATS_BYTES_OUT + STATS_NTRANSPORTS, /* broadcasts appended to the packet log */
    STATS_HANDLER_FAILURES, /* handler commands that failed (exit status, signal, timeout) */
    STATS_NCOUNTERS
};

/* The process's slot (a static dummy until stats_open succeeds); use the
 * functions below. */
extern _Atomic uint64_t *stats_mine_;

/* Adds n to counter c of this process: one relaxed atomic add. */
static inline void stats_add(int c, uint64_t n) {
    atomic_fetch_add_explicit(&stats_mine_[c], n, memory_order_relaxed);
}
static inline int stats_tr(int store_transport_is_ws) {
    return store_transport_is_ws ? STATS_T_WEBSOCKET : STATS_T_POLLING;
}

/* Maps STATS_FILE in dir (creating it, mode 0660 under the umask, when
 * missing; replacing one of another layout), folds the slots of dead
 * processes and claims a slot for this process (or, when every slot is
 * taken by a live process, counts into the base slot).  Once per process:
 * later calls return 0 and change nothing.  0 or -errno; on failure counting
 * stays a no-op. */
int stats_open(const char *dir);
/* Folds this process's slot into the base slot and unmaps: for short-lived
 * processes (sioctl), so they leave no slot behind.  Safe without open. */
void stats_close(void);
/* Folds the slots of processes that no longer exist into the base slot.
 * Returns how many were folded, or -errno. */
int stats_fold_dead(void);

/* The sum of every slot, counter by counter, into out[STATS_NCOUNTERS]:
 * consistent with respect to folds (never lower than an earlier read).
 * Needs stats_open.  0 or -errno. */
int stats_read(uint64_t out[STATS_NCOUNTERS]);
/* A process that holds a slot: its pid and program name. */
typedef struct stats_proc {
    int pid;
    char name[16];
} stats_proc;
/* The processes holding a slot now and still alive (up to max into out);
 * how many there are.  Needs stats_open. */
int stats_processes(stats_proc *out, int max);

/* The Node name of a reason ("transport close", ...), and back (a name it
 * does not know is STATS_R_OTHER). */
const char *stats_reason_name(int r);
int stats_reason_of(const char *name);
/* "polling" / "websocket". */
const char *stats_transport_name(int t);

#endif

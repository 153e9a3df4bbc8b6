/* reaper: stated's housekeeping, what no request would do by itself:
 * closing polling sessions that missed their deadlines (ping timeout,
 * connect timeout) and WebSocket sessions whose front is gone, deleting
 * closed sessions once answered, ending upgrades that never finished,
 * deleting detached sockets whose recovery window is over, and trimming
 * both logs below what their readers still need (server/reader.h) and
 * connection state recovery may still replay (what was written within
 * max_disconnection_duration), and past their bounds in any case. */
#ifndef SIO_REAPER_H
#define SIO_REAPER_H

#include <stdint.h>

#include "server/server.h"

/* Expires, closes and deletes sessions, deletes detached sockets past
 * their window, and trims the packet log (below every polling session's
 * cursor and every packet reader, and with connection_state_recovery below
 * what is younger than max_disconnection_duration; past max_log_bytes in
 * any case).  *next_ms gets the earliest deadline seen.  Returns the number
 * of sessions closed or removed, or <0. */
int reaper_run(server *srv, int64_t now, int64_t *next_ms);

/* Deletes the readers of `sioctl listen` processes that are gone, then
 * trims the inbox below the slowest live inbox reader (and past 1,000,000
 * records in any case, with a warning).  Returns the number of readers
 * removed, or <0. */
int reaper_trim_inbox(server *srv);

#endif

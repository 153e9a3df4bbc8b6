/* room: keeping room in the store's map.  map_size_mb is a hard limit:
 * once the map is full every write fails with STORE_EFULL (sioctl says so,
 * clients get 503), and even a delete needs free pages (LMDB copies each
 * page it changes, and reuses the pages a commit frees only two commits
 * later).  Deleting much of the log in one transaction can need more pages
 * than are left: with a 16 MiB map full of 200-byte records, deleting 9,000
 * of them at once fails with MAP_FULL where deleting them one by one works.
 * So room is made in short transactions, twice as long after each success,
 * half as long after a MAP_FULL.
 *
 * The store keeps the last 1/16 of the map (at most 8 MB) for stated:
 * other processes' write transactions are refused inside it, so that the
 * deletes below always find pages.
 *
 * stated looks every second: with less than 1/16 of the map free, or when
 * its own transaction met MAP_FULL, it drops the oldest records of the
 * packet log, whoever still needs them (as past max_log_bytes: readers left
 * behind are disconnected and their clients reconnect), until 1/8 of the
 * map is free.  It warns once when that starts, and once more when the log
 * is empty and room is still short (then sessions, rooms and the inbox fill
 * the map: raise map_size_mb). */
#ifndef SIO_ROOM_H
#define SIO_ROOM_H

#include "server/server.h"

/* Makes room when the store is low on it, or at once with full (a write
 * transaction got STORE_EFULL).  Returns the log records dropped, or <0. */
int room_make(server *srv, int full);

#endif

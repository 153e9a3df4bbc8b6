/* recover: what stated does with a store it cannot use.  Before anything
 * reads it, the store is checked in a child process: it is opened read-only
 * and every record of every table is walked (a damaged file can make LMDB
 * read outside the map or past the end of the file, and that crash must be
 * the child's).  A store that is damaged, truncated, of another LMDB version
 * or of another format of ours is moved into DIR/broken-YYYYmmdd-HHMMSS/
 * (UTC, like the logs) and a fresh, empty one is created: a bad file costs
 * what it held, never a crash loop.  Only stated moves anything (it holds
 * the state directory's lock); the other processes get STORE_EBROKEN or
 * -EPROTO from store_open and say so. */
#ifndef SIO_RECOVER_H
#define SIO_RECOVER_H

#include <stddef.h>

#include "store/store.h"

/* Checks the store in dir: 0 when it is sound (or there is none yet),
 * STORE_EBROKEN or -EPROTO with the reason in why, or another negative
 * value when the check itself could not run (nothing is known then). */
int recover_check(const char *dir, char *why, size_t whylen);

/* Moves data.mdb and lock.mdb of dir into a new dir/broken-YYYYmmdd-HHMMSS
 * (with -2, -3, ... when that exists); moved gets its path. */
int recover_move_aside(const char *dir, char *moved, size_t movedlen);

/* store_open for stated (opts->create): a store that fails the check, or
 * that store_open finds damaged or of another format, is moved aside and a
 * fresh one opened.  moved gets where it went ("" when nothing moved) and
 * why the reason. */
int recover_open(store **out, const char *dir, const store_opts *opts, char *moved,
                 size_t movedlen, char *why, size_t whylen);

#endif

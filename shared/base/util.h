/* util: the few system facts every module needs: wall-clock milliseconds
 * (shared across processes, so deadlines stored in the store mean the same
 * thing in every worker and survive restarts), random unguessable ids,
 * growable arrays and number parsing (paths.h has the default paths). */
#ifndef SIO_UTIL_H
#define SIO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Ids (Engine.IO sid, Socket.IO socket id, private tokens) are 15 bytes from
 * getrandom(2) (120 bits) written as 20 base64url characters. */
#define UTIL_ID_LEN 20

int64_t util_now_ms(void);
/* Fills out[UTIL_ID_LEN + 1] with a fresh random id. 0 or -errno. */
int util_random_id(char out[UTIL_ID_LEN + 1]);
uint32_t util_random_u32(void);
/* 1 when s (len bytes) has the shape of an id: UTIL_ID_LEN base64url chars. */
int util_is_id(const char *s, size_t len);

/* Room for one more element in a growable array: items points to the
 * array pointer (e.g. &v->ids), which holds n elements of elem bytes with
 * room for *cap; when full it doubles (starting at min).  0, or -ENOMEM with
 * the array unchanged. */
int util_grow(void *items, size_t *cap, size_t n, size_t elem, size_t min);
/* 1 when the environment entry kv ("NAME=value") is one a handler or the
 * allow_request command inherits: PATH, HOME, LANG, LC_*, TZ, TMPDIR, USER,
 * LOGNAME, SIO_LOG_LEVEL.  Everything else in the server's environment
 * (secrets, tokens) is dropped; the SIO_* variables of the handler protocol
 * are set by whoever spawns. */
int util_env_kept(const char *kv);
/* 1 when process pid exists (one we may not signal counts), 0 when not or
 * pid <= 0. */
int util_pid_alive(int pid);
/* A pidfd for child pid (readable when it exits; close-on-exec), or -1
 * when the kernel has none. */
int util_pidfd_open(int pid);
/* Starts `/bin/sh -c cmd` with environment envp, in directory cwd (NULL:
 * this one), in a process group of its own, with default signal handling and
 * nothing blocked; fds[0..2] become its stdin, stdout and stderr (-1: the
 * caller's), nothing else is inherited.  0 and *pid, or -errno. */
int util_spawn_sh(const char *cmd, char *const envp[], const char *cwd, const int fds[3], int *pid);
/* The group named name (or given by number); 0, or -ENOENT. */
int util_group_id(const char *name, unsigned *gid);
/* Parses a non-negative decimal integer in [min, max]; 0 or -EINVAL. */
int util_parse_long(const char *s, long min, long max, long *out);
/* 1 when word is one of the space-separated words of list (command line
 * options: util_word_in("--state --config", arg)). */
int util_word_in(const char *list, const char *word);

#endif

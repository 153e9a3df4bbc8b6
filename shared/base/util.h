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
/* Parses a non-negative decimal integer in [min, max]; 0 or -EINVAL. */
int util_parse_long(const char *s, long min, long max, long *out);

#endif

/* buf: a growable byte buffer, the one way the project builds strings and
 * payloads.  A buf owns its data; buf_free() releases it and leaves an empty
 * buf that may be used again.  The data is always NUL-terminated (the NUL is
 * not counted in len) so text can be passed to C string functions.
 *
 * Every append returns 0, or -ENOMEM when the allocation fails or when the
 * buffer would grow past its limit (0 = no limit beyond SIZE_MAX).  After a
 * failed append the buffer keeps its previous content. */
#ifndef SIO_BUF_H
#define SIO_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;    /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit;  /* refuse to grow past this many bytes (0 = unlimited) */
} buf;

#define BUF_INIT {NULL, 0, 0, 0}

int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf *b);  /* len = 0, keeps the allocation */
void buf_free(buf *b);   /* releases the data; safe on an empty buf */
/* Hands the data to the caller (who frees it with free()); b is left empty. */
char *buf_take(buf *b, size_t *len);

#endif

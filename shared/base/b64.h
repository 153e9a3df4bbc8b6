/* b64: standard base64 (RFC 4648, with '=' padding), as Engine.IO uses for
 * binary packets inside polling payloads and as our JSON binary marker uses.
 * Also the unpadded base64url alphabet that ids are written in. */
#ifndef SIO_B64_H
#define SIO_B64_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Appends the base64 of data to out. 0 or -ENOMEM. */
int b64_encode(buf *out, const void *data, size_t len);
/* Decodes len chars of src into dst, which must hold b64_decoded_max(len)
 * bytes; dst may equal src (decoding in place is safe).  Strict: the length
 * must be a multiple of 4, padding only at the end, no whitespace, no other
 * characters.  Returns the decoded length, or -EINVAL. */
long b64_decode(uint8_t *dst, const char *src, size_t len);
#define b64_decoded_max(n) (((n) / 4) * 3)
/* Writes the unpadded base64url form of len bytes into dst (NUL-terminated);
 * dst must hold (len * 4 + 2) / 3 + 1 chars. */
void b64url_encode(char *dst, const void *data, size_t len);

#endif

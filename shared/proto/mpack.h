/* mpack: MessagePack <-> JSON values (cJSON), as the Socket.IO Redis
 * adapter and emitter write them (notepack.io).  Pure functions: bytes in,
 * values out, no I/O.  Encoding and decoding use msgpack-c.
 *
 * Binary data travels as msgpack bin; in JSON values it is the project's
 * marker {"$binary":"<base64>"} (proto/sio_parser.h), both ways.  Other
 * mappings: nil <-> null, bool, integers and floats <-> numbers (integral
 * doubles within 2^53 are written as integers, as JavaScript numbers are),
 * str <-> string (binary-safe, proto/json.h), array <-> array, map <->
 * object (a key that is not a string is named as JavaScript's String()
 * names it); ext types decode to null.
 *
 * Decoding is bounded before anything is allocated: every container's
 * declared size must fit in the bytes that remain, containers nest at most
 * MPACK_MAX_DEPTH deep (msgpack-c's own limit, so that what we encode we
 * can decode), and trailing bytes are an error. */
#ifndef SIO_MPACK_H
#define SIO_MPACK_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/buf.h"

#define MPACK_MAX_DEPTH 32 /* arrays and maps inside one another */

/* One msgpack value filling exactly len bytes, as a new cJSON value (the
 * caller frees it), or NULL when the bytes are not one well-formed value
 * (or on ENOMEM). */
cJSON *mpack_decode(const void *data, size_t len);
/* Appends the msgpack form of v to out.  0, -ENOMEM, or -EINVAL (a bad
 * $binary marker, arrays and objects nested deeper than MPACK_MAX_DEPTH). */
int mpack_encode(buf *out, const cJSON *v);

#endif

/* json: JSON text in and out, for everything in the project that reads or
 * writes it (client packets, handlers' records and action lines, sioctl's
 * arguments and output, the store's inbox, the cluster's requests).
 *
 * Values are cJSON trees.  cJSON strings end at a NUL byte, and cJSON
 * refuses unpaired surrogate escapes, while JSON (and JavaScript) strings
 * hold any sequence of UTF-16 code units.  So inside the project a string
 * is WTF-8 with one more rule, the "modified UTF-8" of Java:
 *   - U+0000 is the two bytes C0 80;
 *   - an unpaired surrogate U+D800..U+DFFF is its three-byte form ED A0 80..
 *     ED BF BF;
 * neither of which valid UTF-8 ever contains, so nothing else can mean
 * them.  json_parse and json_string turn text and raw bytes from outside
 * into that form (bytes that are not UTF-8 become U+FFFD, as a JavaScript
 * peer decoding them would see them); json_write and json_print write it
 * back as \u0000 and \udXXX escapes; json_bytes gives the raw bytes of a
 * string (C0 80 becomes NUL again) for binary-safe outputs such as msgpack. */
#ifndef SIO_JSON_H
#define SIO_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/buf.h"

/* Deepest nesting of arrays and objects read or written: cJSON's limit. */
#define JSON_MAX_DEPTH CJSON_NESTING_LIMIT

/* Exactly one JSON text of len bytes (whitespace around it allowed), with
 * JSON.parse's grammar: a new value the caller frees, or NULL when the text
 * is not JSON (or nests deeper than JSON_MAX_DEPTH, or on ENOMEM). */
cJSON *json_parse(const char *s, size_t len);
/* The same for a NUL-terminated text. */
cJSON *json_parse_str(const char *s);

/* Called by json_write for every array and object before it is written:
 * returns 1 when it wrote v itself (into out), 0 to let json_write go on,
 * <0 to stop with that error. */
typedef int (*json_hook)(void *arg, buf *out, const cJSON *v);

/* Appends v as JavaScript's JSON.stringify writes it (compact, the same
 * numbers and string escapes; NaN and infinities as null).  hook may be
 * NULL.  0, -ENOMEM, or -EINVAL (a string or key missing, nesting deeper
 * than JSON_MAX_DEPTH, or hook's error); on error out keeps its previous
 * content. */
int json_write(buf *out, const cJSON *v, json_hook hook, void *arg);
/* json_write into a new NUL-terminated string the caller frees (NULL on
 * errors). */
char *json_print(const cJSON *v);
/* Appends len bytes of a string in the internal form (a NUL byte counts as
 * U+0000 too) as a JSON string literal, quotes included, escaped as
 * JSON.stringify escapes.  0 or -ENOMEM (out unchanged). */
int json_quote(buf *out, const char *s, size_t len);

/* A new string item holding len raw bytes (NUL and non-UTF-8 bytes
 * translated as above); NULL on ENOMEM. */
cJSON *json_string(const void *bytes, size_t len);
/* The UTF-8 bytes of an item's string s, as an encoder to UTF-8 writes a
 * JavaScript string (Buffer.from): NUL as a 0 byte, an unpaired surrogate
 * as U+FFFD.  Writes them into out (at least strlen(s) bytes; out may be s
 * itself) and returns their count. */
size_t json_bytes(const char *s, char *out);

/* A JSON number that is an integer JavaScript holds exactly (|v| <= 2^53):
 * 1 with it in *out; else 0 and *out unchanged (a cast of 1e300 or NaN to
 * an integer type is undefined behaviour in C). */
int json_integer(const cJSON *v, long long *out);

#endif

/* eio: the Engine.IO v4 codec.  Pure functions: bytes in, values out, no I/O.
 * Owns the packet type digits, the polling payload format (packets joined by
 * the 0x1e record separator, binary packets written as 'b' + base64) and the
 * open-packet JSON.  Knows nothing of sessions or transports.
 *
 * Decoding never allocates: packets point into the caller's buffer. */
#ifndef SIO_EIO_H
#define SIO_EIO_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum eio_type {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
};

#define EIO_SEP '\x1e'

/* One Engine.IO packet.  data/len borrow the input buffer. */
typedef struct eio_packet {
    int type;            /* enum eio_type */
    int binary;          /* 1: a binary message; data holds the raw bytes */
    const uint8_t *data; /* the packet's data after the type digit */
    size_t len;
} eio_packet;

/* Decodes one text packet (a WebSocket text frame, or one record of a polling
 * payload that does not start with 'b'): a type digit 0-6 then the data.
 * Returns 0, or -EINVAL when empty or the first byte is not a type digit. */
int eio_decode_text(const uint8_t *s, size_t len, eio_packet *out);

/* Iterates over a polling payload.  The payload buffer is modified in place
 * (binary records are base64-decoded where they stand), so it must be
 * writable and stay alive while the packets are used.
 *
 *   eio_reader r; eio_reader_init(&r, body, body_len);
 *   eio_packet p; int rc;
 *   while ((rc = eio_reader_next(&r, &p)) == 1) { ... }
 *   if (rc < 0) -> malformed payload (close the session)
 *
 * eio_reader_next returns 1 with a packet, 0 at the end, -EINVAL on a
 * malformed record (empty record, unknown type digit, bad base64).  An empty
 * payload is malformed: the first call returns -EINVAL. */
typedef struct eio_reader {
    uint8_t *buf;
    size_t len;
    size_t pos;
    int started;
} eio_reader;
void eio_reader_init(eio_reader *r, uint8_t *buf, size_t len);
int eio_reader_next(eio_reader *r, eio_packet *out);

/* Appends one packet to a polling payload being built in out: a 0x1e
 * separator first when out is not empty, then the type digit and data, or for
 * a binary message 'b' + base64(data).  0, -ENOMEM, or -EINVAL (type not 0-6,
 * binary but not a message, or text data holding a 0x1e that would split the
 * record); on error out keeps its previous content. */
int eio_payload_add(buf *out, int type, int binary, const void *data, size_t len);

/* Appends the text form of one packet (type digit + data) to out, as sent in a
 * WebSocket text frame. 0, -ENOMEM, or -EINVAL when type is not 0-6. */
int eio_encode_text(buf *out, int type, const void *data, size_t len);

/* Appends the open packet: '0' followed by exactly the five handshake keys
 * {"sid":...,"upgrades":[...],"pingInterval":N,"pingTimeout":N,"maxPayload":N}.
 * upgrades is "websocket" or NULL for []. 0 or -ENOMEM. */
int eio_encode_open(buf *out, const char *sid, const char *upgrade,
                    long ping_interval, long ping_timeout, long max_payload);

#endif

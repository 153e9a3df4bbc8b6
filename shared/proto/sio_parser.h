/* sio: the Socket.IO v5 packet codec.  Pure functions, no I/O.
 *
 * Text form: <type>[<attachments>-][<nsp>,][<ack id>][<json>]
 * Decoding is strict and follows the Node reference parser (socket.io-parser
 * 4.x): every packet it would reject, we reject; each rejection means the
 * caller closes the whole Engine.IO connection.
 *
 * Binary data inside packet data is represented, everywhere in this project
 * (handlers, sioctl, the store), by the JSON marker object
 *     {"$binary":"<standard base64>"}
 * sio_attach() turns placeholders + attachments into markers after decoding;
 * sio_encode() turns markers back into placeholders + attachments. */
#ifndef SIO_SIO_H
#define SIO_SIO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/buf.h"

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

#define SIO_MAX_ATTACHMENTS 10 /* Node's default maxAttachments */
#define SIO_NSP_MAX 128        /* longest namespace name we accept, bytes */
#define SIO_BINARY_KEY "$binary"
/* Largest ack id we accept: the largest integer a JavaScript peer holds
 * exactly (Number.MAX_SAFE_INTEGER). */
#define SIO_ID_MAX 9007199254740991LL
/* The id of an ACK whose id was longer than SIO_ID_MAX: one the server
 * never asked for, so the ack matches nothing (Node ignores it). */
#define SIO_ID_UNASKED (SIO_ID_MAX + 1)

typedef struct sio_packet {
    int type;          /* enum sio_type */
    int attachments;   /* announced count, binary types only, else 0 */
    char nsp[SIO_NSP_MAX + 1]; /* "/" when absent; NUL-terminated */
    long long id;      /* ack id, or -1 when absent (SIO_ID_UNASKED: see there) */
    cJSON *data;       /* owned by the packet; NULL when there is no payload */
} sio_packet;

/* Decodes one Socket.IO packet from the data of an Engine.IO message (len
 * bytes, not NUL-terminated).  out is overwritten, not freed first.
 * On success returns 0 and out owns its data (free with sio_packet_clear).
 * Returns -EINVAL when the packet is malformed (unknown type, attachment
 * count not 1..SIO_MAX_ATTACHMENTS, namespace longer than SIO_NSP_MAX,
 * bad ack id, JSON that does not parse, or a payload that is invalid for the
 * type); out is then cleared.  The exact rules are listed in sio.c. */
int sio_decode(const char *s, size_t len, sio_packet *out);

/* Replaces, depth first, every {"_placeholder":true,"num":i} in p->data by
 * a {"$binary":"<base64 of bins[i]>"} marker and turns BINARY_EVENT/ACK into
 * EVENT/ACK.  As in Node, any object whose "_placeholder" is true counts
 * (other members are dropped).  n must equal p->attachments; each num must
 * be an integer in [0, n).  On a packet of another type, n must be 0 and
 * nothing changes.  Returns 0 or -EINVAL, with p unchanged (-ENOMEM on
 * allocation failure). */
typedef struct sio_bin {
    const uint8_t *data;
    size_t len;
} sio_bin;
int sio_attach(sio_packet *p, const sio_bin *bins, size_t n);

/* Encodes p.  When the data of an EVENT/ACK (or BINARY_*) holds
 * {"$binary":...} markers, the type is written as BINARY_EVENT/BINARY_ACK
 * with the attachment count, each marker is written as a placeholder
 * (numbered depth first), and the decoded bytes are appended to
 * attachments as consecutive chunks: attachment i is bytes
 * [off[i], off[i+1]) of attachments, so off must hold max_attach + 1
 * entries; *nattach is set to the count (at most max_attach; more is
 * -E2BIG, as are markers with attachments or off NULL).  Without markers
 * BINARY_EVENT/ACK are written as EVENT/ACK, and in other types markers are
 * plain data.  The namespace is written only when it is not "/" (or empty),
 * always followed by ','; the ack id when >= 0; the data unless NULL or a
 * JSON null.  JSON is written as JavaScript's JSON.stringify writes it.
 * p->data is not modified.  Appends the text form to out.
 * 0, -ENOMEM, -EINVAL (bad marker, bad type or namespace), -E2BIG; on error
 * out and attachments keep their previous content. */
int sio_encode(buf *out, const sio_packet *p, buf *attachments, size_t *off,
               size_t max_attach, size_t *nattach);

void sio_packet_clear(sio_packet *p);

/* 1 when name is reserved and may not be emitted by a client (connect,
 * connect_error, disconnect, disconnecting, newListener, removeListener). */
int sio_reserved_event(const char *name);

#endif

/* eio: Engine.IO v4 packet and payload codec (see eio.h). */
#include "proto/eio_parser.h"

#include <errno.h>
#include <string.h>

#include "base/b64.h"
#include "proto/json.h"

/* eio_reader.started: where the iteration stands. */
enum { RD_FRESH = 0, RD_RUNNING = 1, RD_DONE = 2, RD_FAILED = 3 };

static int valid_type(int type) { return type >= EIO_OPEN && type <= EIO_NOOP; }

int eio_decode_text(const uint8_t *s, size_t len, eio_packet *out) {
    if (len == 0 || s[0] < '0' || s[0] > '0' + EIO_NOOP) return -EINVAL;
    out->type = s[0] - '0';
    out->binary = 0;
    out->data = s + 1;
    out->len = len - 1;
    return 0;
}

void eio_reader_init(eio_reader *r, uint8_t *b, size_t len) {
    r->buf = b;
    r->len = len;
    r->pos = 0;
    r->started = RD_FRESH;
}

int eio_reader_next(eio_reader *r, eio_packet *out) {
    if (r->started == RD_DONE) return 0;
    if (r->started == RD_FAILED) return -EINVAL;
    r->started = RD_RUNNING;

    /* The record runs from pos to the next separator or the end.  An empty
     * payload is a single empty record, hence malformed. */
    uint8_t *rec = r->buf ? r->buf + r->pos : NULL;
    size_t avail = r->len - r->pos;
    uint8_t *sep = avail ? memchr(rec, EIO_SEP, avail) : NULL;
    size_t n = sep ? (size_t)(sep - rec) : avail;
    if (sep) {
        r->pos += n + 1;
    } else {
        r->pos = r->len;
        r->started = RD_DONE;
    }

    int rc;
    if (n > 0 && rec[0] == 'b') {
        long m = b64_decode(rec + 1, (const char *)rec + 1, n - 1);
        rc = m < 0 ? -EINVAL : 0;
        if (rc == 0) {
            out->type = EIO_MESSAGE;
            out->binary = 1;
            out->data = rec + 1;
            out->len = (size_t)m;
        }
    } else {
        rc = eio_decode_text(rec, n, out);
    }
    if (rc) r->started = RD_FAILED;
    return rc ? rc : 1;
}

int eio_encode_text(buf *out, int type, const void *data, size_t len) {
    if (!valid_type(type)) return -EINVAL;
    size_t start = out->len;
    int rc = buf_putc(out, (char)('0' + type));
    if (rc == 0) rc = buf_append(out, data, len);
    if (rc && out->data) out->data[out->len = start] = 0;
    return rc;
}

int eio_payload_add(buf *out, int type, int binary, const void *data, size_t len) {
    if (!valid_type(type) || (binary && type != EIO_MESSAGE)) return -EINVAL;
    /* A separator inside text data would split the record on the way back. */
    if (!binary && len && memchr(data, EIO_SEP, len)) return -EINVAL;
    size_t start = out->len;
    int rc = start ? buf_putc(out, EIO_SEP) : 0;
    if (rc == 0) {
        if (binary) {
            rc = buf_putc(out, 'b');
            if (rc == 0) rc = b64_encode(out, data, len);
        } else {
            rc = eio_encode_text(out, type, data, len);
        }
    }
    if (rc && out->data) out->data[out->len = start] = 0;
    return rc;
}

int eio_encode_open(buf *out, const char *sid, const char *upgrade,
                    long ping_interval, long ping_timeout, long max_payload) {
    size_t start = out->len;
    int rc = buf_puts(out, "0{\"sid\":");
    if (rc == 0) rc = json_quote(out, sid, strlen(sid));
    if (rc == 0) rc = buf_puts(out, ",\"upgrades\":[");
    if (rc == 0 && upgrade) rc = json_quote(out, upgrade, strlen(upgrade));
    if (rc == 0)
        rc = buf_printf(out, "],\"pingInterval\":%ld,\"pingTimeout\":%ld,\"maxPayload\":%ld}",
                        ping_interval, ping_timeout, max_payload);
    if (rc && out->data) out->data[out->len = start] = 0;
    return rc;
}

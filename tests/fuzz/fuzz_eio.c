/* libFuzzer driver for the Engine.IO codec (shared/eio.c).
 *
 * The input is used twice: as one text packet (eio_decode_text), and as a
 * polling payload read over a writable copy.  For a payload that reads
 * without error, the packets are written back with eio_payload_add and the
 * result must have the input's length, equal it byte for byte when it holds
 * no binary record, and read back as the same packets. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/eio_parser.h"

/* Reads a whole payload (in place) into pk; returns the count, or -1 when
 * the reader reported a malformed record. */
static long read_payload(uint8_t *body, size_t len, eio_packet *pk, size_t max) {
    eio_reader r;
    eio_reader_init(&r, body, len);
    size_t n = 0;
    for (;;) {
        eio_packet p;
        int rc = eio_reader_next(&r, &p);
        if (rc < 0) {
            CHECK(rc == -EINVAL);
            CHECK(eio_reader_next(&r, &p) == -EINVAL); /* errors stick */
            return -1;
        }
        if (rc == 0) {
            CHECK(eio_reader_next(&r, &p) == 0); /* so does the end */
            return (long)n;
        }
        CHECK(rc == 1);
        CHECK(n < max); /* at most one packet per record */
        CHECK(p.type >= EIO_OPEN && p.type <= EIO_NOOP);
        CHECK(!p.binary || p.type == EIO_MESSAGE);
        CHECK(p.data >= body && p.data + p.len <= body + len);
        CHECK(p.binary || !memchr(p.data, EIO_SEP, p.len));
        pk[n++] = p;
    }
}

static void check_text(const uint8_t *data, size_t size) {
    eio_packet p;
    int rc = eio_decode_text(data, size, &p);
    int valid = size > 0 && data[0] >= '0' && data[0] <= '6';
    if (!valid) {
        CHECK(rc == -EINVAL);
        return;
    }
    CHECK(rc == 0);
    CHECK(p.type == data[0] - '0' && !p.binary && p.data == data + 1 && p.len == size - 1);
    buf b = BUF_INIT;
    CHECK(eio_encode_text(&b, p.type, p.data, p.len) == 0);
    CHECK(b.len == size && memcmp(b.data, data, size) == 0);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_text(data, size);

    size_t max = 1;
    for (size_t i = 0; i < size; i++) max += data[i] == EIO_SEP;
    uint8_t *body = malloc(size ? size : 1);
    eio_packet *pk = malloc(max * sizeof *pk);
    CHECK(body && pk);
    if (size) memcpy(body, data, size);
    long n = read_payload(body, size, pk, max);
    if (n < 0) goto out;
    CHECK(n == (long)max); /* every record became a packet */

    buf again = BUF_INIT;
    int has_binary = 0;
    for (long i = 0; i < n; i++) {
        has_binary |= pk[i].binary;
        CHECK(eio_payload_add(&again, pk[i].type, pk[i].binary, pk[i].data, pk[i].len) == 0);
    }
    /* Strict base64 fixes the encoded length; only unused pad bits may differ. */
    CHECK(again.len == size);
    if (!has_binary) CHECK(memcmp(again.data, data, size) == 0);

    eio_packet *pk2 = malloc(max * sizeof *pk2);
    CHECK(pk2);
    CHECK(read_payload((uint8_t *)again.data, again.len, pk2, max) == n);
    for (long i = 0; i < n; i++) {
        CHECK(pk2[i].type == pk[i].type && pk2[i].binary == pk[i].binary);
        CHECK(pk2[i].len == pk[i].len && memcmp(pk2[i].data, pk[i].data, pk[i].len) == 0);
    }
    free(pk2);
    buf_free(&again);
out:
    free(pk);
    free(body);
    return 0;
}

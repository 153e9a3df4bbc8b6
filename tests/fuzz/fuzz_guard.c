/* fuzz_guard: client bytes through sio-front's guard (gateway/front_guard.c),
 * which reads every client socket before libwebsockets does: request heads
 * (431, refused upgrades, rewritten escapes), bodies skipped by
 * Content-Length, and after an Upgrade: websocket head, WebSocket frame
 * headers (1002 / 1009).  The driver is the lws thread: it makes a socket
 * pair, writes the input to the client end in pieces and reads the server
 * end with recv() (the guard's, as lws would) after each piece, with the
 * buffer sizes lws uses.
 *
 * Input: a flags byte (bit 0: permessage-deflate offered; bit 1: the front
 * attaches the connection as a WebSocket before the first piece, as it does
 * once lws established it), then pieces, each a length byte (1 + value
 * bytes follow) and its bytes.  Checked: recv never returns more than it
 * was asked for, nor in total more than the client wrote, and once it said
 * end of stream (0) it keeps saying so; a broken frame is reported once by
 * fguard_flush, with 1002 or 1009.  A real server (fuzz_srv.h) answers the
 * refused upgrades. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front_guard.h"
#include "fuzz_srv.h"

static server srv;
static int deflate_on = -1;
static int flushed, flushed_code;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fsrv_open(&srv, "max_http_buffer_size = 1024\n");
    return 0;
}

static void on_flush(void *owner, int code) {
    CHECK(owner == &srv);
    CHECK(code == 1002 || code == 1009);
    flushed++;
    flushed_code = code;
}

/* Reads what the guard lets through until it would block; returns the
 * bytes, or -1 once it said end of stream. */
static long drain(int fd, size_t cap) {
    static unsigned char b[4096];
    long total = 0;
    for (;;) {
        ssize_t r = recv(fd, b, cap, 0);
        if (r == 0) return -1;
        if (r < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
            return total;
        }
        CHECK((size_t)r <= cap);
        total += r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int deflate = data[0] & 1, attach = (data[0] & 2) != 0;
    if (deflate != deflate_on) {
        fguard_free();
        CHECK(fguard_init(&srv, deflate) == 0);
        deflate_on = deflate;
    }
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int client = sv[0], server_fd = sv[1];
    fguard_open(server_fd);
    if (attach) fguard_attach(server_fd, &srv);
    flushed = 0;
    long written = 0, passed = 0;
    int ended = 0;
    /* lws reads with its service buffer; vary it with the input */
    size_t cap = 64 + (size % 7) * 600;
    size_t i = 1;
    while (i < size) {
        size_t n = (size_t)data[i++] + 1;
        if (n > size - i) n = size - i;
        if (!n) break;
        ssize_t w = write(client, data + i, n);
        i += n;
        if (w > 0) written += w;
        long got = drain(server_fd, cap);
        if (got < 0) {
            ended = 1;
            break;
        }
        passed += got;
        CHECK(passed <= written);
        fguard_flush(on_flush);
        CHECK(flushed <= 1);
    }
    if (ended) CHECK(drain(server_fd, cap) == -1); /* stays ended */
    fguard_flush(on_flush);
    CHECK(flushed <= 1);
    /* what the guard answered itself (431, a refused upgrade) went to the
     * client: read it so that nothing is left over */
    char sink[4096];
    while (read(client, sink, sizeof sink) > 0) {
    }
    fguard_close(server_fd);
    close(client);
    close(server_fd);
    fguard_flush(on_flush); /* a pending close of a gone connection is dropped */
    return 0;
}

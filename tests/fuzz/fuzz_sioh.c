/* fuzz_sioh: what a handler process reads (shared/handlers/sioh.c): the
 * input is written to a pipe that is the driver's stdin, with a newline
 * after it (so no partial line is left for the next input), and read back
 * with sioh_wait / sioh_next until nothing is pending, as a handler loop
 * does.  Every event has a type, args that are an array or NULL and an ack
 * of -1 or more; then the handler answers it with every sioh_* function
 * that applies (ack, emit, broadcast, join, accept and refuse, send of the
 * message's text or bytes), output kept in the host buffer: each call adds
 * exactly one line or none (an error), and every line is one the
 * dispatcher takes as an action (dispatch_action_line); an ack is kept as it
 * is instead (sioh_host_ack: a socket and an array of arguments). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "fuzz.h"
#include "handlers/sioh.h"
#include "proto/json.h"

static int wfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(dup2(p[0], 0) == 0);
    close(p[0]);
    wfd = p[1];
    CHECK(fcntl(wfd, F_SETPIPE_SZ, 1 << 20) > 0); /* a whole input fits */
    sioh_host_begin();
    return 0;
}

static size_t out_lines(void) {
    size_t len;
    const char *o = sioh_host_end(&len);
    size_t n = 0;
    const char *s = o, *end = o + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        CHECK(nl != NULL); /* every line is complete */
        int blank = 1;
        cJSON *a = dispatch_action_line(s, (size_t)(nl - s), &blank);
        if (!a) fprintf(stderr, "not an action line: %.*s\n", (int)(nl - s), s);
        CHECK(a != NULL);
        cJSON_Delete(a);
        n++;
        s = nl + 1;
    }
    const sioh_hosted_ack *k;
    for (size_t i = 0; (k = sioh_host_ack(i)) != NULL; i++, n++) {
        CHECK(k->socket && k->id >= 0 && k->at <= len);
        CHECK(cJSON_IsArray(k->args));
    }
    sioh_host_begin(); /* empties the buffer and the kept acks */
    return n;
}

/* One sioh_* call: one line when it succeeds, none when it fails. */
#define CALL(expr)                              \
    do {                                        \
        int rc_ = (expr);                       \
        CHECK(rc_ <= 0);                        \
        CHECK(out_lines() == (rc_ == 0 ? 1 : 0)); \
    } while (0)

static void answer(const sioh_event *ev) {
    CHECK(ev->json && ev->type);
    CHECK(!ev->args || cJSON_IsArray(ev->args));
    CHECK(ev->ack >= -1);
    if (ev->ack >= 0 && ev->socket) CALL(sioh_ack(ev->socket, ev->ack, ev->args));
    if (ev->ack >= 0) CALL(sioh_server_ack(ev->ack, ev->args));
    if (ev->event && ev->socket) {
        CALL(sioh_emit(ev->socket, ev->event, ev->args));
        CALL(sioh_emit_ack(ev->socket, ev->event, ev->args, 1000000000000LL));
        CALL(sioh_broadcast_to(ev->socket, ev->event, ev->event, ev->args));
        CALL(sioh_join(ev->socket, ev->event));
        CALL(sioh_leave(ev->socket, ev->event));
    }
    if (ev->event) CALL(sioh_emit_to(ev->nsp, ev->reason, ev->event, ev->args));
    if (ev->socket) CALL(sioh_disconnect(ev->socket, ev->ack > 0));
    if (!strcmp(ev->type, "connect") || ev->auth) {
        CALL(sioh_accept(ev, ev->auth));
        CALL(sioh_refuse(ev, ev->reason, ev->data));
    }
    if (ev->sid && ev->data) {
        uint8_t *bin = NULL;
        size_t blen = 0;
        if (sioh_binary_get(ev->data, &bin, &blen) == 0) {
            CALL(sioh_send(ev->sid, bin, blen, 1));
            free(bin);
        } else if (cJSON_IsString(ev->data)) {
            const char *s = ev->data->valuestring;
            CALL(sioh_send(ev->sid, s, strlen(s), 0));
        }
    }
    /* an action object written as is */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(ev->data, "action");
    if (cJSON_IsObject(ev->data) && cJSON_IsString(act)) CALL(sioh_action(ev->data));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    if (size) CHECK(write(wfd, data, size) == (ssize_t)size);
    CHECK(write(wfd, "\n", 1) == 1);
    sioh_event ev = SIOH_EVENT_INIT;
    while (sioh_wait(0) > 0) {
        int rc = sioh_next(&ev);
        if (rc == 0) break;
        CHECK(rc == 1);
        answer(&ev);
    }
    sioh_event_clear(&ev);
    return 0;
}

/* libFuzzer driver for the Redis adapter's messages (shared/cluster/wire.c).
 *
 * The input goes through:
 *  - wire_broadcast_decode: refused with the struct cleared, or accepted
 *    with its documented shape (a uid, a namespace "/..." of at most
 *    SIO_NSP_MAX bytes, data an array starting with the event name, at most
 *    LOGREC_MAX_ROOMS rooms and except rooms of 1..STORE_ROOM_MAX bytes,
 *    flags 0/1); wire_bcast_clear frees it;
 *  - wire_decode: NULL or an object; wire_opts on its "opts" gives either
 *    -EINVAL or arrays of names borrowed from it (freed here);
 *  - wire_request_nsp and wire_broadcast_room, taking the input as a channel
 *    name: what they accept is exactly what wire_channel writes back. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "cluster/wire.h"
#include "proto/sio_parser.h"

static void check_names(const char **names, size_t n) {
    CHECK(n <= LOGREC_MAX_ROOMS);
    CHECK((names == NULL) == (n == 0));
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        CHECK(l >= 1 && l <= STORE_ROOM_MAX);
    }
}

static void check_broadcast(const uint8_t *data, size_t size) {
    wire_bcast b;
    memset(&b, 0x5a, sizeof b);
    int rc = wire_broadcast_decode(data, size, &b);
    if (rc) {
        CHECK(rc == -EINVAL);
        CHECK(b.msg == NULL && b.uid == NULL && b.nsp == NULL && b.data == NULL);
        CHECK(b.rooms == NULL && b.except == NULL && b.nrooms == 0 && b.nexcept == 0);
        CHECK(b.local == 0 && b.volatile_ == 0);
        return;
    }
    CHECK(cJSON_IsArray(b.msg) && cJSON_GetArraySize(b.msg) >= 3);
    CHECK(b.uid != NULL);
    CHECK(b.nsp != NULL && b.nsp[0] == '/' && strlen(b.nsp) <= SIO_NSP_MAX);
    CHECK(cJSON_IsArray(b.data) && cJSON_IsString(cJSON_GetArrayItem(b.data, 0)));
    check_names(b.rooms, b.nrooms);
    check_names(b.except, b.nexcept);
    CHECK(b.local == 0 || b.local == 1);
    CHECK(b.volatile_ == 0 || b.volatile_ == 1);
    wire_bcast_clear(&b);
    CHECK(b.msg == NULL && b.rooms == NULL && b.except == NULL);
}

static void check_request(const uint8_t *data, size_t size) {
    cJSON *j = wire_decode(data, size);
    if (!j) return;
    CHECK(cJSON_IsObject(j));
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "opts");
    const char **rooms = NULL, **except = NULL;
    size_t nr = 0, ne = 0;
    int rc = wire_opts(opts, &rooms, &nr, &except, &ne);
    if (rc) {
        CHECK(rc == -EINVAL);
        CHECK(except == NULL && ne == 0);
        CHECK(rooms == NULL && nr == 0);
    } else {
        check_names(rooms, nr);
        check_names(except, ne);
    }
    free(rooms);
    free(except);
    cJSON_Delete(j);
}

/* The channel wire_channel writes equals the input. */
static void check_same_channel(const uint8_t *data, size_t size, int kind, const char *nsp,
                               const char *last) {
    buf ch = BUF_INIT;
    CHECK(wire_channel(&ch, "socket.io", kind, nsp, last) == 0);
    CHECK(ch.len == size && memcmp(ch.data, data, size) == 0);
    buf_free(&ch);
}

static void check_channels(const uint8_t *data, size_t size) {
    const char *ch = (const char *)data;
    char nsp[SIO_NSP_MAX + 1], room[STORE_ROOM_MAX + 1];
    int rc = wire_request_nsp("socket.io", ch, size, nsp, sizeof nsp);
    if (rc == 0) check_same_channel(data, size, WIRE_CH_REQUEST, nsp, NULL);
    else CHECK(rc == -EINVAL);
    /* the namespaces a channel may name: "/" and the one after the first '#' */
    const char *nsps[2] = {"/", NULL};
    const char *hash = memchr(ch, '#', size);
    if (hash) {
        const char *end = memchr(hash + 1, '#', size - (size_t)(hash + 1 - ch));
        size_t l = end ? (size_t)(end - hash - 1) : 0;
        if (end && l <= SIO_NSP_MAX && !memchr(hash + 1, 0, l)) {
            memcpy(nsp, hash + 1, l);
            nsp[l] = 0;
            nsps[1] = nsp;
        }
    }
    for (int i = 0; i < 2 && nsps[i]; i++) {
        int k = wire_broadcast_room("socket.io", nsps[i], ch, size, room, sizeof room);
        CHECK(k >= 0 && k <= 2);
        if (k == 1) check_same_channel(data, size, WIRE_CH_BROADCAST, nsps[i], NULL);
        if (k == 2 && !memchr(ch, 0, size)) {
            CHECK(room[0] != 0);
            check_same_channel(data, size, WIRE_CH_BROADCAST, nsps[i], room);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_broadcast(data, size);
    check_request(data, size);
    check_channels(data, size);
    return 0;
}

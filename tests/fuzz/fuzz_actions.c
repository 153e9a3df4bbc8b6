/* fuzz_actions: what handlers write back, as stated's dispatcher reads it
 * (stated/dispatch.c, applied by shared/server/actions.c), against a real
 * store with two sessions: A with a socket in "/" (rooms a, b) and one in
 * "/chat", B with a socket in "/" (room b); engine_path is set.
 *
 * The first byte picks what the rest is:
 *   - bit 0 clear: a process handler's stdout.  "$S1", "$S2", "$S3", "$A"
 *     and "$B" are replaced by the sockets' and sessions' ids (so that the
 *     mutator reaches real targets); the lines (split at '\n') go through
 *     dispatch_action_line and, in one write transaction like a batch,
 *     actions_apply_json, which must give 0 or ACTIONS_EUSAGE with a reason.
 *   - bit 0 set: an auth command's stdout, with exit code (byte >> 1) % 4 - 1,
 *     through dispatch_auth_action, which must give an accept or a refuse
 *     with a message, applied the same way.
 * Then every frame session A would receive decodes as a Socket.IO packet
 * (binary frames aside; and unless a "send" was applied: it writes raw
 * Engine.IO messages, Socket.IO session or not, as Node's conn.send does).  The transaction is aborted: the store stays. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dispatch.h"
#include "fuzz_srv.h"
#include "proto/sio_parser.h"
#include "server/reader.h"

static server srv;
static char sid_a[UTIL_ID_LEN + 1], sid_b[UTIL_ID_LEN + 1];
static char s1[UTIL_ID_LEN + 1], s2[UTIL_ID_LEN + 1], s3[UTIL_ID_LEN + 1];
static uint64_t base; /* the log head after setup */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fsrv_open(&srv, "engine_path = /engine.io/\n[namespace /chat]\n[namespace /private]\nauth = true\n");
    fsrv_session(&srv, sid_a);
    fsrv_session(&srv, sid_b);
    fsrv_socket(&srv, sid_a, "/", s1);
    fsrv_socket(&srv, sid_a, "/chat", s2);
    fsrv_socket(&srv, sid_b, "/", s3);
    char a[256];
    snprintf(a, sizeof a, "{\"action\":\"join\",\"socket\":\"%s\",\"rooms\":[\"a\",\"b\"]}", s1);
    fsrv_apply(&srv, a);
    snprintf(a, sizeof a, "{\"action\":\"join\",\"socket\":\"%s\",\"rooms\":[\"b\"]}", s3);
    fsrv_apply(&srv, a);
    store_txn *t;
    CHECK(store_begin(srv.st, 0, &t) == 0);
    CHECK(store_log_bounds(t, NULL, &base) == 0);
    store_abort(t);
    return 0;
}

/* The input with the ids substituted (malloc'ed, NUL-terminated). */
static char *expand(const uint8_t *data, size_t size, size_t *out_len) {
    buf b = BUF_INIT;
    for (size_t i = 0; i < size; i++) {
        const char *id = NULL;
        size_t skip = 0;
        if (data[i] == '$' && i + 1 < size) {
            char c = (char)data[i + 1];
            if (c == 'S' && i + 2 < size && data[i + 2] >= '1' && data[i + 2] <= '3') {
                id = data[i + 2] == '1' ? s1 : data[i + 2] == '2' ? s2 : s3;
                skip = 3;
            } else if (c == 'A' || c == 'B') {
                id = c == 'A' ? sid_a : sid_b;
                skip = 2;
            }
        }
        if (id) {
            CHECK(buf_puts(&b, id) == 0);
            i += skip - 1;
        } else {
            CHECK(buf_putc(&b, (char)data[i]) == 0);
        }
    }
    CHECK(buf_putc(&b, 0) == 0);
    *out_len = b.len - 1;
    return b.data;
}

static int sent; /* a "send" was applied */

static void apply(store_txn *t, cJSON *a) {
    char err[512] = "";
    uint64_t seq = 0;
    int rc = actions_apply_json(&srv, t, a, NULL, &seq, err, sizeof err);
    if (rc != 0 && rc != ACTIONS_EUSAGE) fprintf(stderr, "actions_apply_json: %d %s\n", rc, err);
    CHECK(rc == 0 || rc == ACTIONS_EUSAGE);
    if (rc == ACTIONS_EUSAGE) CHECK(err[0] != 0);
    const cJSON *what = cJSON_GetObjectItemCaseSensitive(a, "action");
    if (rc == 0 && cJSON_IsString(what) && !strcmp(what->valuestring, "send")) sent = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    size_t len;
    char *text = expand(data + 1, size - 1, &len);
    store_txn *t;
    CHECK(store_begin(srv.st, 1, &t) == 0);
    sent = 0;
    if (mode & 1) {
        int code = (mode >> 1) % 4 - 1;
        cJSON *auth = cJSON_Parse("{\"token\":\"x\"}");
        cJSON *a = dispatch_auth_action(sid_a, "/private", s1, auth, code, text, len, !(mode & 0x80));
        CHECK(a != NULL);
        const cJSON *what = cJSON_GetObjectItemCaseSensitive(a, "action");
        CHECK(cJSON_IsString(what));
        if (code == 0) CHECK(!strcmp(what->valuestring, "accept"));
        else CHECK(!strcmp(what->valuestring, "refuse") &&
                   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "message")));
        apply(t, a);
        cJSON_Delete(a);
        cJSON_Delete(auth);
    } else {
        const char *s = text, *end = text + len;
        while (s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *le = nl ? nl : end;
            int blank = 0;
            cJSON *a = dispatch_action_line(s, (size_t)(le - s), &blank);
            CHECK(!(a && blank));
            if (a) {
                CHECK(cJSON_IsObject(a));
                apply(t, a);
                cJSON_Delete(a);
            }
            s = le + 1;
        }
    }
    uint64_t upto = 0;
    if (!sent) CHECK(reader_collect(t, sid_a, base, UINT64_MAX, SIZE_MAX, fsrv_sio_frame, NULL, &upto) == 0);
    store_abort(t);
    free(text);
    return 0;
}

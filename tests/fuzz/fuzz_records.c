/* fuzz_records: stored records read back as any bytes: a damaged or hostile
 * store must not crash its readers.
 *
 * The first byte picks the log (bit 0: 0 the packet log, 1 the inbox); bit 1
 * writes the fixture session's sid over a packet log record's target (bytes
 * 12..31), so that records for one session reach it.  The rest is the record.
 *   - packet log (shared/store/logrec.c): logrec_parse accepts only records
 *     whose rooms, except rooms and frames it walks back exactly (counts as
 *     in the header, every byte inside the record, the frames ending at its
 *     end); then the record is appended to a real store and read back as a
 *     client would receive it: reader_collect for a session with sockets in
 *     "/" (rooms a, b) and "/chat", and reader_missed for connection state
 *     recovery; every frame handed out lies inside the record.
 *   - inbox (shared/store/inbox.c): inbox_parse gives NULL or an object with
 *     "seq"; handed to sioh_event_from_json as plugin hosts do, its fields
 *     are the record's; the stored bytes scan back unchanged.
 * Every write is in a transaction that is aborted: the store stays as set up. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_srv.h"
#include "handlers/sioh.h"
#include "server/reader.h"
#include "store/inbox.h"
#include "store/logrec.h"

static server srv;
static char sid[UTIL_ID_LEN + 1], sock_root[UTIL_ID_LEN + 1], sock_chat[UTIL_ID_LEN + 1];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fsrv_open(&srv, "connection_state_recovery = 1\n[namespace /chat]\n");
    fsrv_session(&srv, sid);
    fsrv_socket(&srv, sid, "/", sock_root);
    fsrv_socket(&srv, sid, "/chat", sock_chat);
    char a[256];
    snprintf(a, sizeof a, "{\"action\":\"join\",\"socket\":\"%s\",\"rooms\":[\"a\",\"b\"]}", sock_root);
    fsrv_apply(&srv, a);
    return 0;
}

/* What a reader handed out of the one record (len bytes) in the store. */
typedef struct seen {
    size_t len, bytes, n;
} seen;

static int frame_cb(void *arg, const logrec_frame *f) {
    seen *s = arg;
    s->bytes += 5 + f->len;
    CHECK(s->bytes <= s->len);
    s->n++;
    return 0;
}

static int missed_cb(void *arg, uint64_t seq, const logrec *r) {
    (void)seq;
    seen *s = arg;
    CHECK(r->kind == LOGREC_BROADCAST && (r->flags & LOGREC_F_OFFSET));
    CHECK((size_t)(r->end - (const uint8_t *)r->nsp) <= s->len);
    s->n++;
    return 0;
}

static void check_logrec(const uint8_t *rec, size_t len) {
    logrec r;
    if (logrec_parse(rec, len, &r)) return;
    CHECK(r.kind == LOGREC_TO_SESSION || r.kind == LOGREC_BROADCAST);
    CHECK((const uint8_t *)r.nsp + r.nsp_len <= r.rooms && r.end == rec + len);
    CHECK(strlen(r.target) <= UTIL_ID_LEN);
    for (int ex = 0; ex < 2; ex++) {
        size_t pos = 0, n = 0;
        logrec_room room;
        const uint8_t *stop = ex ? r.frames : r.except;
        while (logrec_room_next(&r, ex, &pos, &room)) {
            CHECK((const uint8_t *)room.name + room.len <= stop);
            n++;
        }
        CHECK(n == (ex ? r.nexcept : r.nrooms));
    }
    size_t pos = 0, n = 0;
    logrec_frame f;
    while (logrec_frame_next(&r, &pos, &f)) {
        CHECK(f.data + f.len <= r.end);
        n++;
    }
    CHECK(n == r.nframes && r.frames + pos == r.end);
    CHECK(logrec_same_target(&r, &r) == (r.kind == LOGREC_BROADCAST));
}

/* The record in the store, read as the session's client and as a recovery. */
static void read_back(const uint8_t *rec, size_t len) {
    store_txn *t;
    CHECK(store_begin(srv.st, 1, &t) == 0);
    uint64_t head = 0, seq = 0;
    CHECK(store_log_bounds(t, NULL, &head) == 0);
    int rc = store_log_append(t, rec, len, &seq);
    if (rc) { /* refused (empty, too big): nothing else to read */
        store_abort(t);
        return;
    }
    CHECK(seq > head);
    /* the readers get the stored copy: what they hand out lies inside it */
    seen s = {len, 0, 0};
    uint64_t upto = 0;
    CHECK(reader_collect(t, sid, head, UINT64_MAX, SIZE_MAX, frame_cb, &s, &upto) == 0);
    CHECK(upto == seq);
    logrec r;
    if (logrec_parse(rec, len, &r)) CHECK(s.n == 0);
    store_socket so;
    CHECK(store_socket_get(t, sock_root, &so) == 0);
    seen m = {len, 0, 0};
    CHECK(reader_missed(t, &so, head, UINT64_MAX, missed_cb, &m) >= 0);
    CHECK(m.n <= 1);
    store_abort(t);
}

typedef struct scan_one {
    const uint8_t *rec;
    size_t len;
    int seen;
} scan_one;

static int inbox_cb(void *arg, uint64_t seq, const void *rec, size_t len) {
    (void)seq;
    scan_one *s = arg;
    CHECK(len == s->len && !memcmp(rec, s->rec, len));
    s->seen++;
    return 0;
}

static void check_inbox(const uint8_t *rec, size_t len) {
    cJSON *o = inbox_parse(42, rec, len);
    if (o) {
        CHECK(cJSON_IsObject(o));
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
        CHECK(cJSON_IsNumber(seq));
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        sioh_event ev = SIOH_EVENT_INIT;
        sioh_event_from_json(&ev, o); /* takes o */
        CHECK(ev.type != NULL);
        CHECK(cJSON_IsString(type) ? !strcmp(ev.type, type->valuestring) : !*ev.type);
        CHECK(!ev.args || cJSON_IsArray(ev.args));
        CHECK(ev.ack >= -1 || !strcmp(ev.type, "event") || !strcmp(ev.type, "ack") ||
              !strcmp(ev.type, "serverSideEmit"));
        uint8_t *bin = NULL;
        size_t blen = 0;
        if (ev.data && sioh_binary_get(ev.data, &bin, &blen) == 0) free(bin);
        char *txt = json_print(ev.json);
        CHECK(txt != NULL);
        free(txt);
        sioh_event_clear(&ev);
    }
    store_txn *t;
    CHECK(store_begin(srv.st, 1, &t) == 0);
    uint64_t head = 0, seq = 0;
    CHECK(store_inbox_bounds(t, NULL, &head) == 0);
    if (store_inbox_append(t, rec, len, &seq) == 0) {
        scan_one s = {rec, len, 0};
        CHECK(store_inbox_scan(t, head, UINT64_MAX, inbox_cb, &s) == 0);
        CHECK(s.seen == 1);
    }
    store_abort(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    size_t len = size - 1;
    uint8_t *rec = malloc(len ? len : 1); /* exact size: ASan sees overreads */
    CHECK(rec != NULL);
    memcpy(rec, data + 1, len);
    if (mode & 1) {
        check_inbox(rec, len);
    } else {
        if ((mode & 2) && len >= 32) memcpy(rec + 12, sid, UTIL_ID_LEN);
        check_logrec(rec, len);
        read_back(rec, len);
    }
    free(rec);
    return 0;
}

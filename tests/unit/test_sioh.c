/* Unit tests for handlers/sioh.c, the C API of handler processes and
 * plugins, without a dispatcher: the action functions write into the host
 * buffer (sioh_host_begin / sioh_host_end), and every call must add exactly
 * one JSON line, compared here member by member with cJSON_Compare against
 * the expected object; invalid calls add nothing.  sioh_binary /
 * sioh_binary_get round trips.  sioh_next reads records from stdin: fd 0 is
 * replaced by a pipe for that test (and restored), with a garbage line, an
 * empty line, a CRLF line, a record of every type and a last line without a
 * newline (dropped), then end of input. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "handlers/sioh.h"
#include "unit.h"

/* The lines written since sioh_host_begin (host_end called here). */
typedef struct lines {
    size_t n;
    char text[16][1024];
} lines;

static void host_lines(lines *out) {
    size_t len = 0;
    const char *p = sioh_host_end(&len);
    memset(out, 0, sizeof *out);
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(p + off, '\n', len - off);
        if (!nl) unit_fail(__FILE__, __LINE__, "output does not end with a newline: %.*s",
                           (int)(len - off), p + off);
        size_t l = (size_t)(nl - (p + off));
        ASSERT_TRUE(out->n < 16 && l < 1024);
        memcpy(out->text[out->n], p + off, l);
        out->text[out->n][l] = 0;
        out->n++;
        off += l + 1;
    }
}

/* line is a JSON object equal to want (member order aside). */
static void json_eq(const char *file, int line, const char *got, const char *want) {
    cJSON *g = cJSON_Parse(got), *w = cJSON_Parse(want);
    int ok = g && w && cJSON_IsObject(g) && cJSON_Compare(g, w, 1);
    cJSON_Delete(g);
    cJSON_Delete(w);
    if (!w) unit_fail(file, line, "bad expected JSON in the test: %s", want);
    if (!ok) unit_fail(file, line, "line\n    got:  %s\n    want: %s", got, want);
}
#define ASSERT_LINE(got, want) json_eq(__FILE__, __LINE__, (got), (want))

/* Runs one call between begin and end: it must return rc and write exactly
 * the line want (NULL: nothing). */
#define ONE(call, rc_want, want)                                              \
    do {                                                                      \
        sioh_host_begin();                                                    \
        int one_rc_ = (call);                                                 \
        lines one_l_;                                                         \
        host_lines(&one_l_);                                                  \
        const char *one_w_ = (want);                                          \
        ASSERT_EQ_INT(one_rc_, (rc_want));                                    \
        if (one_w_) {                                                         \
            ASSERT_EQ_INT(one_l_.n, 1);                                       \
            ASSERT_LINE(one_l_.text[0], one_w_);                              \
        } else {                                                              \
            ASSERT_EQ_INT(one_l_.n, 0);                                       \
        }                                                                     \
    } while (0)

#define S1 "SSSSSSSSSSSSSSSSSSS1"
#define E1 "EEEEEEEEEEEEEEEEEEE1"

TEST(emit_family_lines) {
    cJSON *args = cJSON_Parse("[1,\"two\",{\"3\":[true,null]}]");
    const char *nul = NULL;
    ONE(sioh_emit(S1, "ev", args), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"ev\",\"args\":[1,\"two\",{\"3\":[true,null]}]}");
    ONE(sioh_emit(S1, "no args", NULL), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"no args\",\"args\":[]}");
    ONE(sioh_emit(S1, "quote\"and\\back\nline", NULL), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"quote\\\"and\\\\back\\nline\",\"args\":[]}");
    ONE(sioh_emit_to("/chat", "room 1", "news", args), 0,
        "{\"action\":\"emit\",\"nsp\":\"/chat\",\"to\":[\"room 1\"],\"event\":\"news\","
        "\"args\":[1,\"two\",{\"3\":[true,null]}]}");
    ONE(sioh_emit_to(NULL, NULL, "all", NULL), 0,
        "{\"action\":\"emit\",\"nsp\":\"/\",\"event\":\"all\",\"args\":[]}");
    ONE(sioh_broadcast_to(S1, "r", "b", NULL), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"to\":[\"r\"],\"broadcast\":true,\"event\":\"b\",\"args\":[]}");
    ONE(sioh_broadcast_to(S1, NULL, "b", NULL), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"broadcast\":true,\"event\":\"b\",\"args\":[]}");
    ONE(sioh_emit_ack(S1, "q", args, 1000000000001LL), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"q\",\"args\":[1,\"two\",{\"3\":[true,null]}],"
        "\"ack\":1000000000001}");
    ONE(sioh_emit_ack(S1, "q", NULL, 0), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"q\",\"args\":[],\"ack\":0}");
    /* invalid calls write nothing */
    cJSON *obj = cJSON_Parse("{\"not\":\"an array\"}");
    ONE(sioh_emit(NULL, "ev", NULL), -EINVAL, nul);
    ONE(sioh_emit(S1, NULL, NULL), -EINVAL, nul);
    ONE(sioh_emit(S1, "ev", obj), -EINVAL, nul);
    ONE(sioh_emit_to("/", NULL, "ev", obj), -EINVAL, nul);
    ONE(sioh_broadcast_to(NULL, "r", "ev", NULL), -EINVAL, nul);
    ONE(sioh_emit_ack(S1, "q", NULL, -1), -EINVAL, nul);
    ONE(sioh_emit_ack(NULL, "q", NULL, 1), -EINVAL, nul);
    cJSON_Delete(obj);
    cJSON_Delete(args);
}

TEST(room_ack_disconnect_lines) {
    const char *nul = NULL;
    ONE(sioh_join(S1, "a room"), 0, "{\"action\":\"join\",\"socket\":\"" S1 "\",\"rooms\":[\"a room\"]}");
    ONE(sioh_leave(S1, "r\"q"), 0, "{\"action\":\"leave\",\"socket\":\"" S1 "\",\"rooms\":[\"r\\\"q\"]}");
    ONE(sioh_join(NULL, "r"), -EINVAL, nul);
    ONE(sioh_leave(S1, NULL), -EINVAL, nul);
    cJSON *args = cJSON_Parse("[\"pong\",2]");
    /* hosted, a valid ack is kept as it is, not written (see below) */
    ONE(sioh_ack(S1, 7, args), 0, nul);
    ONE(sioh_ack(S1, -1, args), -EINVAL, nul);
    ONE(sioh_ack(NULL, 1, args), -EINVAL, nul);
    cJSON_Delete(args);
    ONE(sioh_disconnect(S1, 0), 0, "{\"action\":\"disconnect\",\"socket\":\"" S1 "\"}");
    ONE(sioh_disconnect(S1, 1), 0, "{\"action\":\"disconnect\",\"socket\":\"" S1 "\",\"close\":true}");
    ONE(sioh_disconnect(NULL, 1), -EINVAL, nul);
}

/* Hosted, sioh_ack keeps its answer (a copy of the arguments) with the
 * output offset it came at, so that the host applies everything in the
 * order of the calls; a socket id too long to keep goes as a line. */
TEST(hosted_acks_are_kept_in_order_between_the_lines) {
    cJSON *args = cJSON_Parse("[\"pong\",{\"a\":[1]}]");
    sioh_host_begin();
    ASSERT_EQ_INT(sioh_ack(S1, 7, args), 0);
    ASSERT_EQ_INT(sioh_join(S1, "r"), 0);
    ASSERT_EQ_INT(sioh_ack(S1, 0, NULL), 0);
    char longid[100];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    ASSERT_EQ_INT(sioh_ack(longid, 3, args), 0);
    cJSON_Delete(args); /* the kept ack has its own copy */
    lines l;
    host_lines(&l);
    ASSERT_EQ_INT((int)l.n, 2);
    ASSERT_LINE(l.text[0], "{\"action\":\"join\",\"socket\":\"" S1 "\",\"rooms\":[\"r\"]}");
    ASSERT_TRUE(strstr(l.text[1], "\"id\":3") != NULL);
    const sioh_hosted_ack *a = sioh_host_ack(0), *b = sioh_host_ack(1);
    ASSERT_TRUE(a && b && !sioh_host_ack(2));
    ASSERT_EQ_INT((int)a->at, 0);
    ASSERT_EQ_STR(a->socket, S1);
    ASSERT_EQ_INT((int)a->id, 7);
    cJSON *want = cJSON_Parse("[\"pong\",{\"a\":[1]}]");
    ASSERT_TRUE(cJSON_Compare(a->args, want, 1));
    cJSON_Delete(want);
    ASSERT_EQ_INT((int)b->at, (int)strlen(l.text[0]) + 1); /* after the join's line */
    ASSERT_EQ_INT((int)b->id, 0);
    ASSERT_TRUE(cJSON_IsArray(b->args) && cJSON_GetArraySize(b->args) == 0);
    sioh_host_begin(); /* a new call: nothing kept */
    ASSERT_TRUE(sioh_host_ack(0) == NULL);
    host_lines(&l);
}

TEST(accept_and_refuse_lines) {
    const char *nul = NULL;
    sioh_event ev = SIOH_EVENT_INIT;
    sioh_event_from_json(&ev, cJSON_Parse("{\"type\":\"connect\",\"nsp\":\"/p\",\"socket\":\"" S1 "\","
                                          "\"sid\":\"" E1 "\",\"auth\":{\"token\":\"t\"},\"seq\":12}"));
    ASSERT_EQ_STR(ev.type, "connect");
    ASSERT_EQ_INT(ev.seq, 12);
    cJSON *data = cJSON_Parse("{\"user\":\"ann\"}");
    ONE(sioh_accept(&ev, data), 0,
        "{\"action\":\"accept\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\",\"nsp\":\"/p\","
        "\"auth\":{\"token\":\"t\"},\"data\":{\"user\":\"ann\"}}");
    ONE(sioh_accept(&ev, NULL), 0,
        "{\"action\":\"accept\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\",\"nsp\":\"/p\",\"auth\":{\"token\":\"t\"}}");
    ONE(sioh_refuse(&ev, "bad token", data), 0,
        "{\"action\":\"refuse\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\",\"nsp\":\"/p\",\"message\":\"bad token\","
        "\"data\":{\"user\":\"ann\"}}");
    ONE(sioh_refuse(&ev, NULL, NULL), 0,
        "{\"action\":\"refuse\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\",\"nsp\":\"/p\",\"message\":\"unauthorized\"}");
    sioh_event_clear(&ev);
    /* a record without socket: refuse still works, accept cannot */
    sioh_event_from_json(&ev, cJSON_Parse("{\"type\":\"connect\",\"nsp\":\"/p\",\"sid\":\"" E1 "\"}"));
    ONE(sioh_accept(&ev, NULL), -EINVAL, nul);
    ONE(sioh_refuse(&ev, "m", NULL), 0,
        "{\"action\":\"refuse\",\"sid\":\"" E1 "\",\"nsp\":\"/p\",\"message\":\"m\"}");
    sioh_event_clear(&ev);
    ASSERT_TRUE(ev.json == NULL);
    ASSERT_EQ_INT(ev.ack, -1);
    sioh_event_clear(&ev); /* safe twice */
    ONE(sioh_accept(NULL, NULL), -EINVAL, nul);
    ONE(sioh_refuse(NULL, "m", NULL), -EINVAL, nul);
    cJSON_Delete(data);
}

TEST(send_action_and_write_line) {
    const char *nul = NULL;
    ONE(sioh_send(E1, "hi \"you\"", 8, 0), 0,
        "{\"action\":\"send\",\"sid\":\"" E1 "\",\"data\":\"hi \\\"you\\\"\"}");
    ONE(sioh_send(E1, "", 0, 0), 0, "{\"action\":\"send\",\"sid\":\"" E1 "\",\"data\":\"\"}");
    ONE(sioh_send(E1, "\x00\x01\xff", 3, 1), 0,
        "{\"action\":\"send\",\"sid\":\"" E1 "\",\"data\":{\"$binary\":\"AAH/\"}}");
    ONE(sioh_send(E1, "", 0, 1), 0, "{\"action\":\"send\",\"sid\":\"" E1 "\",\"data\":{\"$binary\":\"\"}}");
    ONE(sioh_send(E1, "a\0b", 3, 0), -EINVAL, nul); /* text cannot hold NUL */
    ONE(sioh_send(NULL, "x", 1, 0), -EINVAL, nul);
    ONE(sioh_send(E1, NULL, 1, 0), -EINVAL, nul);

    cJSON *a = cJSON_Parse("{\"action\":\"join\",\"nsp\":\"/\",\"to\":[\"x\"],\"rooms\":[\"y\"]}");
    ONE(sioh_action(a), 0, "{\"action\":\"join\",\"nsp\":\"/\",\"to\":[\"x\"],\"rooms\":[\"y\"]}");
    cJSON_Delete(a);
    const char *raw = "{\"action\":\"emit\",\"nsp\":\"/\",\"event\":\"raw\"}";
    ONE(sioh_write_line(raw, strlen(raw)), 0, raw);
    /* only len bytes are written */
    ONE(sioh_write_line("{\"a\":1}GARBAGE", 7), 0, "{\"a\":1}");
    ONE(sioh_write_line("{\"a\":\n1}", 8), -EINVAL, nul);
    ONE(sioh_write_line("{}\n", 3), -EINVAL, nul);

    /* several calls: one line each, in order, and nothing lost on an error */
    sioh_host_begin();
    ASSERT_EQ_INT(sioh_join(S1, "1"), 0);
    ASSERT_EQ_INT(sioh_emit(S1, NULL, NULL), -EINVAL);
    ASSERT_EQ_INT(sioh_leave(S1, "2"), 0);
    ASSERT_EQ_INT(sioh_disconnect(S1, 0), 0);
    lines l;
    host_lines(&l);
    ASSERT_EQ_INT(l.n, 3);
    ASSERT_LINE(l.text[0], "{\"action\":\"join\",\"socket\":\"" S1 "\",\"rooms\":[\"1\"]}");
    ASSERT_LINE(l.text[1], "{\"action\":\"leave\",\"socket\":\"" S1 "\",\"rooms\":[\"2\"]}");
    ASSERT_LINE(l.text[2], "{\"action\":\"disconnect\",\"socket\":\"" S1 "\"}");
    /* begin starts afresh */
    sioh_host_begin();
    host_lines(&l);
    ASSERT_EQ_INT(l.n, 0);
}

TEST(binary_marker_round_trip) {
    static const struct {
        const char *bytes;
        size_t len;
        const char *b64;
    } rows[] = {
        {"", 0, ""}, {"f", 1, "Zg=="}, {"fo", 2, "Zm8="}, {"foo", 3, "Zm9v"},
        {"\x00\xff\x10\x80", 4, "AP8QgA=="},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        UNIT_CTX("row %zu", i);
        cJSON *m = sioh_binary(rows[i].bytes, rows[i].len);
        ASSERT_TRUE(m != NULL);
        char *txt = cJSON_PrintUnformatted(m);
        char want[64], copy[64];
        snprintf(want, sizeof want, "{\"$binary\":\"%s\"}", rows[i].b64);
        snprintf(copy, sizeof copy, "%s", txt);
        free(txt);
        uint8_t *out = NULL;
        size_t len = 99;
        int rc = sioh_binary_get(m, &out, &len);
        cJSON_Delete(m);
        ASSERT_EQ_STR(copy, want);
        ASSERT_EQ_INT(rc, 0);
        ASSERT_EQ_INT(len, rows[i].len);
        ASSERT_MEM(out, len, rows[i].bytes, rows[i].len);
        free(out);
    }
    UNIT_CTX("not markers");
    static const char *const bad[] = {"\"AAAA\"", "{\"binary\":\"AAAA\"}", "{\"$binary\":12}",
                                      "{\"$binary\":\"AAA\"}", "{\"$binary\":\"A A=\"}", "[\"AAAA\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_CTX("%s", bad[i]);
        cJSON *m = cJSON_Parse(bad[i]);
        ASSERT_TRUE(m != NULL);
        uint8_t *out = (uint8_t *)"untouched";
        size_t len = 5;
        int rc = sioh_binary_get(m, &out, &len);
        cJSON_Delete(m);
        ASSERT_EQ_INT(rc, -EINVAL);
        ASSERT_EQ_STR((char *)out, "untouched");
    }
    uint8_t *out;
    size_t len;
    ASSERT_EQ_INT(sioh_binary_get(NULL, &out, &len), -EINVAL);
    /* a marker inside args goes out as is */
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, sioh_binary("\x01\x02", 2));
    ONE(sioh_emit(S1, "bin", args), 0,
        "{\"action\":\"emit\",\"socket\":\"" S1 "\",\"event\":\"bin\",\"args\":[{\"$binary\":\"AQI=\"}]}");
    cJSON_Delete(args);
}

/* Writes all of s to fd. */
static void write_all(int fd, const char *s) {
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = write(fd, s + off, len - off);
        ASSERT_TRUE(n > 0);
        off += (size_t)n;
    }
}

/* Found by fuzz_sioh: with only blank or garbage lines pending, sioh_wait
 * said 1 and sioh_next then blocked (a poll loop around sioh_wait hung).
 * Runs before the test that reads stdin to its end (that end is final). */
TEST(wait_counts_records_not_lines) {
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    int saved = dup(0);
    ASSERT_TRUE(saved >= 0);
    ASSERT_EQ_INT(dup2(p[0], 0), 0);
    close(p[0]);
    static const char junk[] = "\n \r\n[1,2]\n";
    ASSERT_EQ_INT((int)write(p[1], junk, sizeof junk - 1), (int)sizeof junk - 1);
    ASSERT_EQ_INT(sioh_wait(0), 0);
    ASSERT_EQ_INT(sioh_wait(20), 0);
    static const char part[] = "{\"type\":\"ev";
    ASSERT_EQ_INT((int)write(p[1], part, sizeof part - 1), (int)sizeof part - 1);
    ASSERT_EQ_INT(sioh_wait(0), 0); /* half a line */
    static const char rest[] = "ent\",\"seq\":5}\n";
    ASSERT_EQ_INT((int)write(p[1], rest, sizeof rest - 1), (int)sizeof rest - 1);
    ASSERT_EQ_INT(sioh_wait(0), 1);
    ASSERT_EQ_INT(sioh_wait(0), 1); /* still there */
    sioh_event ev = SIOH_EVENT_INIT;
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "event");
    ASSERT_EQ_INT(ev.seq, 5);
    sioh_event_clear(&ev);
    ASSERT_EQ_INT(sioh_wait(0), 0);
    ASSERT_EQ_INT(dup2(saved, 0), 0);
    close(saved);
    close(p[1]);
}

/* Found by fuzz_records: a record's "ack" or "seq" out of any integer's
 * range was cast (undefined behaviour); now it reads as none. */
TEST(event_from_json_bounds_numbers) {
    static const char *const recs[] = {
        "{\"type\":\"event\",\"ack\":-1e30,\"seq\":1e300}",
        "{\"type\":\"ack\",\"id\":1e300,\"seq\":-3}",
        "{\"type\":\"serverSideEmit\",\"ack\":2.5,\"seq\":18446744073709551616}",
        /* found by fuzz_sioh: a negative id came through (sioh.h: an id, or -1) */
        "{\"type\":\"ack\",\"id\":-5}", "{\"type\":\"event\",\"ack\":-2}"};
    for (size_t i = 0; i < sizeof recs / sizeof *recs; i++) {
        UNIT_CTX("%s", recs[i]);
        sioh_event ev = SIOH_EVENT_INIT;
        sioh_event_from_json(&ev, cJSON_Parse(recs[i]));
        ASSERT_TRUE(ev.ack == -1);
        ASSERT_TRUE(ev.seq == 0);
        sioh_event_clear(&ev);
    }
    sioh_event ev = SIOH_EVENT_INIT;
    sioh_event_from_json(&ev, cJSON_Parse("{\"type\":\"event\",\"ack\":12,\"seq\":9007199254740992}"));
    ASSERT_TRUE(ev.ack == 12 && ev.seq == 9007199254740992ULL);
    sioh_event_clear(&ev);
}

TEST(next_reads_every_record_type_from_stdin) {
    /* nothing pending in the output buffer, so sioh_next writes nothing */
    sioh_host_begin();
    size_t junk;
    sioh_host_end(&junk);
    ASSERT_EQ_INT(junk, 0);

    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    int saved = dup(0);
    ASSERT_TRUE(saved >= 0);
    ASSERT_EQ_INT(dup2(p[0], 0), 0);
    /* stderr goes to a file, to check what is said about skipped lines */
    FILE *errf = tmpfile();
    ASSERT_TRUE(errf != NULL);
    fflush(stderr);
    int saved_err = dup(2);
    ASSERT_EQ_INT(dup2(fileno(errf), 2), 2);
    close(p[0]);
    write_all(p[1],
              "this is not json\n"
              "\n"
              "[1,2,3]\n"
              "{\"type\":\"connect\",\"nsp\":\"/p\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"auth\":{\"t\":1},\"handshake\":{\"address\":\"1.2.3.4\"},\"seq\":1}\n"
              "{\"type\":\"connection\",\"nsp\":\"/\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"auth\":{},\"data\":{\"u\":2},\"handshake\":{\"url\":\"/x\"},\"seq\":2}\r\n"
              "{\"type\":\"event\",\"nsp\":\"/\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"event\":\"ping\",\"args\":[1,{\"$binary\":\"AQ==\"}],\"ack\":17,\"seq\":3}\n"
              "{\"type\":\"event\",\"nsp\":\"/\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"event\":\"noack\",\"args\":[],\"seq\":4}\n"
              "{\"type\":\"ack\",\"nsp\":\"/c\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"id\":1000000000005,\"args\":[\"r\"],\"seq\":5}\n"
              "{\"type\":\"disconnect\",\"nsp\":\"/\",\"socket\":\"" S1 "\",\"sid\":\"" E1 "\","
              "\"reason\":\"client namespace disconnect\",\"seq\":6}\n"
              "{\"type\":\"message\",\"sid\":\"" E1 "\",\"data\":\"hello\",\"seq\":7}\n"
              "{\"type\":\"message\",\"sid\":\"" E1 "\",\"data\":{\"$binary\":\"AAE=\"},\"seq\":8}\n"
              "{\"type\":\"event\",\"event\":\"no newline: dropped\"}");
    close(p[1]);

    sioh_event ev = SIOH_EVENT_INIT;
    char buf[512];
#define JT(v) (cJSON_PrintPreallocated((cJSON *)(v), buf, sizeof buf, 0) ? buf : "(null)")
    /* connect */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "connect");
    ASSERT_EQ_INT(ev.seq, 1);
    ASSERT_EQ_STR(ev.nsp, "/p");
    ASSERT_EQ_STR(ev.socket, S1);
    ASSERT_EQ_STR(ev.sid, E1);
    ASSERT_EQ_STR(ev.event, NULL);
    ASSERT_TRUE(ev.args == NULL);
    ASSERT_EQ_INT(ev.ack, -1);
    ASSERT_EQ_STR(ev.reason, NULL);
    ASSERT_EQ_STR(JT(ev.auth), "{\"t\":1}");
    ASSERT_TRUE(ev.data == NULL);
    ASSERT_EQ_STR(JT(ev.handshake), "{\"address\":\"1.2.3.4\"}");
    /* connection (CRLF line) */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "connection");
    ASSERT_EQ_INT(ev.seq, 2);
    ASSERT_EQ_STR(ev.nsp, "/");
    ASSERT_EQ_STR(JT(ev.auth), "{}");
    ASSERT_EQ_STR(JT(ev.data), "{\"u\":2}");
    ASSERT_EQ_STR(JT(ev.handshake), "{\"url\":\"/x\"}");
    ASSERT_EQ_INT(ev.ack, -1);
    /* event with an ack */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "event");
    ASSERT_EQ_INT(ev.seq, 3);
    ASSERT_EQ_STR(ev.event, "ping");
    ASSERT_EQ_STR(JT(ev.args), "[1,{\"$binary\":\"AQ==\"}]");
    ASSERT_EQ_INT(ev.ack, 17);
    ASSERT_EQ_STR(ev.socket, S1);
    ASSERT_TRUE(ev.auth == NULL && ev.data == NULL && ev.handshake == NULL);
    uint8_t *bin;
    size_t blen;
    ASSERT_EQ_INT(sioh_binary_get(cJSON_GetArrayItem(ev.args, 1), &bin, &blen), 0);
    ASSERT_MEM(bin, blen, "\x01", 1);
    free(bin);
    /* event without */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.event, "noack");
    ASSERT_EQ_STR(JT(ev.args), "[]");
    ASSERT_EQ_INT(ev.ack, -1);
    /* ack: ev.ack is the id of the server emit */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "ack");
    ASSERT_EQ_STR(ev.nsp, "/c");
    ASSERT_EQ_INT(ev.ack, 1000000000005LL);
    ASSERT_EQ_STR(JT(ev.args), "[\"r\"]");
    ASSERT_EQ_STR(ev.event, NULL);
    /* disconnect */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "disconnect");
    ASSERT_EQ_STR(ev.reason, "client namespace disconnect");
    ASSERT_EQ_INT(ev.seq, 6);
    ASSERT_TRUE(ev.args == NULL);
    /* messages */
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_STR(ev.type, "message");
    ASSERT_EQ_STR(ev.sid, E1);
    ASSERT_EQ_STR(ev.nsp, NULL);
    ASSERT_EQ_STR(ev.socket, NULL);
    ASSERT_EQ_STR(JT(ev.data), "\"hello\"");
    ASSERT_EQ_INT(sioh_next(&ev), 1);
    ASSERT_EQ_INT(ev.seq, 8);
    ASSERT_EQ_STR(JT(ev.data), "{\"$binary\":\"AAE=\"}");
    /* end of input: the last line had no newline */
    ASSERT_EQ_INT(sioh_next(&ev), 0);
    ASSERT_TRUE(ev.json == NULL);
    ASSERT_EQ_INT(sioh_next(&ev), 0);
    ASSERT_EQ_INT(sioh_wait(0), 1); /* at the end: sioh_next would not block */
    sioh_event_clear(&ev);
#undef JT
    ASSERT_EQ_INT(dup2(saved, 0), 0);
    close(saved);
    fflush(stderr);
    ASSERT_EQ_INT(dup2(saved_err, 2), 2);
    close(saved_err);
    char said[512] = "";
    rewind(errf);
    size_t n = fread(said, 1, sizeof said - 1, errf);
    said[n] = 0;
    fclose(errf);
    ASSERT_EQ_STR(said, "sioh: input line is not a JSON object: skipped\n"
                        "sioh: input line is not a JSON object: skipped\n");
}

UNIT_MAIN()

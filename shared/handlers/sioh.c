/* sioh: the C API for handler processes (see sioh.h). */
#include "handlers/sioh.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/util.h"
#include "proto/json.h"

#define IN_LINE_MAX (64u << 20) /* a record line we accept at most */
#define OUT_FLUSH_AT (64u << 10)

static struct {
    char *data;
    size_t off, len, cap;
    int eof, skipping;
    cJSON *ready; /* the next record, parsed by sioh_wait for sioh_next */
} in;

static buf out = BUF_INIT;
static int hosted; /* inside sioh_host_begin/end: keep the output */

/* Hosted: the acks kept as they are (sioh_host_ack), with their sockets. */
#define HOSTED_SOCKET_MAX 64
typedef struct kept_ack {
    sioh_hosted_ack a;
    char socket[HOSTED_SOCKET_MAX + 1];
} kept_ack;
static struct {
    kept_ack *a;
    size_t n, cap;
} kept;

static void kept_clear(void) {
    for (size_t i = 0; i < kept.n; i++) cJSON_Delete((cJSON *)kept.a[i].a.args);
    kept.n = 0;
}

/* 0 when kept, 1 when it must go as a line, <0 on ENOMEM. */
static int keep_ack(const char *socket, long long id, const cJSON *args) {
    size_t sl = strlen(socket);
    if (!hosted || sl > HOSTED_SOCKET_MAX) return 1;
    if (util_grow(&kept.a, &kept.cap, kept.n, sizeof *kept.a, 4)) return -ENOMEM;
    cJSON *copy = args ? cJSON_Duplicate(args, 1) : cJSON_CreateArray();
    if (!copy) return -ENOMEM;
    kept_ack *k = &kept.a[kept.n++];
    memcpy(k->socket, socket, sl + 1);
    k->a = (sioh_hosted_ack){out.len, NULL, id, copy};
    return 0;
}

const sioh_hosted_ack *sioh_host_ack(size_t i) {
    if (i >= kept.n) return NULL;
    kept.a[i].a.socket = kept.a[i].socket; /* the array may have moved since */
    return &kept.a[i].a;
}

/* ---- output ------------------------------------------------------------------ */

int sioh_flush(void) {
    size_t off = 0;
    while (off < out.len) {
        ssize_t n = write(1, out.data + off, out.len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = 1, .events = POLLOUT};
                poll(&p, 1, -1);
                continue;
            }
            int e = errno;
            buf_reset(&out);
            return -e;
        }
        off += (size_t)n;
    }
    buf_reset(&out);
    return 0;
}

static int end_line(buf *b, size_t start) {
    if (buf_putc(b, '\n')) {
        b->len = start;
        return -ENOMEM;
    }
    if (b->len - start > SIOH_LINE_MAX) {
        b->len = start;
        if (b->data) b->data[b->len] = 0;
        return -E2BIG;
    }
    return b->len >= OUT_FLUSH_AT && !hosted ? sioh_flush() : 0;
}

void sioh_host_begin(void) {
    buf_reset(&out);
    kept_clear();
    hosted = 1;
}

const char *sioh_host_end(size_t *len) {
    hosted = 0;
    *len = out.len;
    return out.data ? out.data : "";
}

int sioh_write_line(const char *json, size_t len) {
    size_t start = out.len;
    if (memchr(json, '\n', len)) return -EINVAL;
    if (buf_append(&out, json, len)) return -ENOMEM;
    return end_line(&out, start);
}

int sioh_action(const cJSON *action) {
    char *s = json_print(action);
    if (!s) return -ENOMEM;
    int rc = sioh_write_line(s, strlen(s));
    free(s);
    return rc;
}

/* Appends ,"key":"value" (value escaped). */
static int put_str(buf *b, const char *key, const char *val) {
    int rc = buf_printf(b, ",\"%s\":", key);
    if (!rc) rc = json_quote(b, val, strlen(val));
    return rc;
}

static int put_json(buf *b, const char *key, const cJSON *v) {
    char *s = json_print(v);
    if (!s) return -ENOMEM;
    int rc = buf_printf(b, ",\"%s\":%s", key, s);
    free(s);
    return rc;
}

static int finish(size_t start, int rc) {
    if (!rc) rc = buf_putc(&out, '}');
    if (rc) {
        out.len = start;
        if (out.data) out.data[out.len] = 0;
        return rc;
    }
    return end_line(&out, start);
}

static int begin(const char *action) { return buf_printf(&out, "{\"action\":\"%s\"", action); }

static int emit_line(const char *nsp, const char *socket, const char *room, int broadcast,
                     const char *event, const cJSON *args, long long ack) {
    if (!event || (args && !cJSON_IsArray(args))) return -EINVAL;
    size_t start = out.len;
    int rc = begin("emit");
    if (!rc && nsp) rc = put_str(&out, "nsp", nsp);
    if (!rc && socket) rc = put_str(&out, "socket", socket);
    if (!rc && room) {
        rc = buf_puts(&out, ",\"to\":[");
        if (!rc) rc = json_quote(&out, room, strlen(room));
        if (!rc) rc = buf_putc(&out, ']');
    }
    if (!rc && broadcast) rc = buf_puts(&out, ",\"broadcast\":true");
    if (!rc) rc = put_str(&out, "event", event);
    if (!rc) rc = args ? put_json(&out, "args", args) : buf_puts(&out, ",\"args\":[]");
    if (!rc && ack >= 0) rc = buf_printf(&out, ",\"ack\":%lld", ack);
    return finish(start, rc);
}

int sioh_emit(const char *socket, const char *event, const cJSON *args) {
    if (!socket) return -EINVAL;
    return emit_line(NULL, socket, NULL, 0, event, args, -1);
}

int sioh_emit_ack(const char *socket, const char *event, const cJSON *args, long long ack_id) {
    if (!socket || ack_id < 0) return -EINVAL;
    return emit_line(NULL, socket, NULL, 0, event, args, ack_id);
}

int sioh_emit_to(const char *nsp, const char *room, const char *event, const cJSON *args) {
    return emit_line(nsp ? nsp : "/", NULL, room, 0, event, args, -1);
}

int sioh_broadcast_to(const char *socket, const char *room, const char *event, const cJSON *args) {
    if (!socket) return -EINVAL;
    return emit_line(NULL, socket, room, 1, event, args, -1);
}

static int room_line(const char *action, const char *socket, const char *room) {
    if (!socket || !room) return -EINVAL;
    size_t start = out.len;
    int rc = begin(action);
    if (!rc) rc = put_str(&out, "socket", socket);
    if (!rc) rc = buf_puts(&out, ",\"rooms\":[");
    if (!rc) rc = json_quote(&out, room, strlen(room));
    if (!rc) rc = buf_putc(&out, ']');
    return finish(start, rc);
}

int sioh_join(const char *socket, const char *room) { return room_line("join", socket, room); }
int sioh_leave(const char *socket, const char *room) { return room_line("leave", socket, room); }

int sioh_ack(const char *socket, long long ack_id, const cJSON *args) {
    if (!socket || ack_id < 0 || (args && !cJSON_IsArray(args))) return -EINVAL;
    int k = keep_ack(socket, ack_id, args);
    if (k <= 0) return k;
    size_t start = out.len;
    int rc = begin("ack");
    if (!rc) rc = put_str(&out, "socket", socket);
    if (!rc) rc = buf_printf(&out, ",\"id\":%lld", ack_id);
    if (!rc) rc = args ? put_json(&out, "args", args) : buf_puts(&out, ",\"args\":[]");
    return finish(start, rc);
}

int sioh_server_ack(long long ack_id, const cJSON *args) {
    if (ack_id < 0 || (args && !cJSON_IsArray(args))) return -EINVAL;
    size_t start = out.len;
    int rc = begin("ack");
    if (!rc) rc = buf_printf(&out, ",\"serverSide\":true,\"id\":%lld", ack_id);
    if (!rc) rc = args ? put_json(&out, "args", args) : buf_puts(&out, ",\"args\":[]");
    return finish(start, rc);
}

int sioh_disconnect(const char *socket, int close) {
    if (!socket) return -EINVAL;
    size_t start = out.len;
    int rc = begin("disconnect");
    if (!rc) rc = put_str(&out, "socket", socket);
    if (!rc && close) rc = buf_puts(&out, ",\"close\":true");
    return finish(start, rc);
}

int sioh_accept(const sioh_event *ev, const cJSON *data) {
    if (!ev || !ev->socket || !ev->sid || !ev->nsp) return -EINVAL;
    size_t start = out.len;
    int rc = begin("accept");
    if (!rc) rc = put_str(&out, "socket", ev->socket);
    if (!rc) rc = put_str(&out, "sid", ev->sid);
    if (!rc) rc = put_str(&out, "nsp", ev->nsp);
    if (!rc && ev->auth) rc = put_json(&out, "auth", ev->auth);
    if (!rc && data) rc = put_json(&out, "data", data);
    return finish(start, rc);
}

int sioh_refuse(const sioh_event *ev, const char *message, const cJSON *data) {
    if (!ev || !ev->sid || !ev->nsp) return -EINVAL;
    size_t start = out.len;
    int rc = begin("refuse");
    if (!rc && ev->socket) rc = put_str(&out, "socket", ev->socket);
    if (!rc) rc = put_str(&out, "sid", ev->sid);
    if (!rc) rc = put_str(&out, "nsp", ev->nsp);
    if (!rc) rc = put_str(&out, "message", message ? message : "unauthorized");
    if (!rc && data) rc = put_json(&out, "data", data);
    return finish(start, rc);
}

int sioh_send(const char *sid, const void *data, size_t len, int binary) {
    if (!sid || (!data && len)) return -EINVAL;
    size_t start = out.len;
    int rc = begin("send");
    if (!rc) rc = put_str(&out, "sid", sid);
    if (!rc && binary) {
        rc = buf_puts(&out, ",\"data\":{\"$binary\":\"");
        if (!rc) rc = b64_encode(&out, data, len);
        if (!rc) rc = buf_puts(&out, "\"}");
    } else if (!rc) {
        if (memchr(data, 0, len)) rc = -EINVAL; /* not representable as a C string */
        if (!rc) rc = buf_puts(&out, ",\"data\":");
        if (!rc) rc = json_quote(&out, data ? data : "", len);
    }
    return finish(start, rc);
}

cJSON *sioh_binary(const void *data, size_t len) {
    buf b = BUF_INIT;
    if (b64_encode(&b, data, len)) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "$binary", b.data ? b.data : "")) {
        cJSON_Delete(o);
        o = NULL;
    }
    buf_free(&b);
    return o;
}

int sioh_binary_get(const cJSON *m, uint8_t **outp, size_t *len) {
    const cJSON *v = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "$binary") : NULL;
    if (!cJSON_IsString(v)) return -EINVAL;
    size_t l = strlen(v->valuestring);
    uint8_t *p = malloc(b64_decoded_max(l) + 1);
    if (!p) return -ENOMEM;
    long n = b64_decode(p, v->valuestring, l);
    if (n < 0) {
        free(p);
        return -EINVAL;
    }
    *outp = p;
    *len = (size_t)n;
    return 0;
}

/* ---- input ------------------------------------------------------------------- */

static int input_ready(int timeout_ms) {
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int n;
    do n = poll(&p, 1, timeout_ms); while (n < 0 && errno == EINTR);
    return n > 0;
}

/* Reads more input (blocking). 1 got data, 0 EOF, <0 error. */
static int fill(void) {
    if (in.off > 0 && (in.off == in.len || in.off > in.cap / 2)) {
        memmove(in.data, in.data + in.off, in.len - in.off);
        in.len -= in.off;
        in.off = 0;
    }
    if (in.cap - in.len < 65536) {
        size_t cap = in.cap ? in.cap * 2 : 131072;
        char *n = realloc(in.data, cap);
        if (!n) return -ENOMEM;
        in.data = n;
        in.cap = cap;
    }
    for (;;) {
        ssize_t n = read(0, in.data + in.len, in.cap - in.len);
        if (n > 0) {
            in.len += (size_t)n;
            return 1;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            input_ready(-1);
            continue;
        }
        return -EIO;
    }
}


void sioh_event_clear(sioh_event *ev) {
    cJSON_Delete(ev->json);
    memset(ev, 0, sizeof *ev);
    ev->ack = -1;
}

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void sioh_event_from_json(sioh_event *ev, cJSON *o) {
    ev->json = o;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "seq");
    long long n = 0;
    ev->seq = json_integer(v, &n) && n > 0 ? (uint64_t)n : 0;
    ev->type = str_of(o, "type");
    if (!ev->type) ev->type = "";
    ev->nsp = str_of(o, "nsp");
    ev->socket = str_of(o, "socket");
    ev->sid = str_of(o, "sid");
    ev->reason = str_of(o, "reason");
    ev->auth = cJSON_GetObjectItemCaseSensitive(o, "auth");
    ev->data = cJSON_GetObjectItemCaseSensitive(o, "data");
    ev->handshake = cJSON_GetObjectItemCaseSensitive(o, "handshake");
    ev->ack = -1;
    if (!strcmp(ev->type, "event") || !strcmp(ev->type, "serverSideEmit")) {
        ev->event = str_of(o, "event");
        v = cJSON_GetObjectItemCaseSensitive(o, "ack");
        if (json_integer(v, &n) && n >= 0) ev->ack = n;
    } else if (!strcmp(ev->type, "ack")) {
        v = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (json_integer(v, &n) && n >= 0) ev->ack = n;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "args");
    ev->args = cJSON_IsArray(v) ? v : NULL;
}

/* The next record among the complete lines buffered (lines that are empty
 * or not JSON objects are skipped), or NULL when there is none. */
static cJSON *next_buffered(void) {
    for (;;) {
        char *nl = in.len > in.off ? memchr(in.data + in.off, '\n', in.len - in.off) : NULL;
        if (!nl) return NULL;
        char *line = in.data + in.off;
        size_t len = (size_t)(nl - line);
        in.off += len + 1;
        if (in.skipping) {
            in.skipping = 0;
            continue;
        }
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
        if (!len) continue;
        cJSON *o = json_parse(line, len);
        if (cJSON_IsObject(o)) return o;
        cJSON_Delete(o);
        fprintf(stderr, "sioh: input line is not a JSON object: skipped\n");
    }
}

/* Reads more input (blocking): 1, 0 at the end of input, <0 on error. */
static int read_more(void) {
    if (in.len - in.off > IN_LINE_MAX) {
        fprintf(stderr, "sioh: input line longer than %u bytes: skipped\n", IN_LINE_MAX);
        in.off = in.len;
        in.skipping = 1;
    }
    int rc = fill();
    if (rc == 0) {
        in.eof = 1;
        in.len = in.off; /* a last line without newline is dropped */
    }
    return rc;
}

/* sioh_next would not block once a record is parsed, or at the end of
 * input; blank and garbage lines do not count (sioh_next would skip them
 * and wait for more). */
int sioh_wait(int timeout_ms) {
    int64_t deadline = timeout_ms > 0 ? util_now_ms() + timeout_ms : 0;
    for (;;) {
        if (in.ready || in.eof) return 1;
        if ((in.ready = next_buffered())) return 1;
        if (!input_ready(0)) {
            sioh_flush();
            int wait = timeout_ms;
            if (timeout_ms > 0) {
                int64_t left = deadline - util_now_ms();
                wait = left > 0 ? (int)left : 0;
            }
            if (!input_ready(wait)) return 0;
        }
        if (read_more() < 0) return 1; /* sioh_next reports the error */
    }
}

int sioh_next(sioh_event *ev) {
    sioh_event_clear(ev);
    for (;;) {
        cJSON *o = in.ready ? in.ready : next_buffered();
        in.ready = NULL;
        if (o) {
            sioh_event_from_json(ev, o);
            return 1;
        }
        if (in.eof) return 0;
        /* Nothing complete: flush our answers before we may block. */
        if (out.len && !input_ready(0)) {
            int rc = sioh_flush();
            if (rc) return rc;
        }
        int rc = read_more();
        if (rc < 0) return rc;
        if (rc == 0) sioh_flush();
    }
}

/* sio-example-echo: a process handler written with sioh (shared/handlers/sioh.h).
 *
 *   [namespace /]
 *   process = sio-example-echo
 *   [engine]
 *   process = sio-example-echo
 *
 * What it does (the Socket.IO test suite's server, plus the bench protocol
 * of sioload):
 *   connection               emit "auth" with the CONNECT payload; join room "bench"
 *   "message" (...)          emit "message-back" with the same arguments (binary kept)
 *   "message-with-ack" (...) ack with the same arguments
 *   "echo" (...) + ack       ack with the same arguments
 *   "bench:start" {size,batch,rate,ms[,stamp]}
 *                            (stamp true: each message also carries "t", the
 *                            server's wall clock in microseconds, for latency)
 *                            broadcast "bench:msg" {seq,pad} to room "bench":
 *                            `batch` per turn as fast as possible (rate 0) or
 *                            `rate` per second, for `ms` ms or until
 *                            "bench:stop"; then "bench:done" {sent} to the sender
 *   [engine] message         sent back as is (text or binary)
 *
 * Build: cc -Ishared/handlers -o bin/sio-example-echo scripts/examples/echo.c libsio.a -lcjson */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sioh.h"

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct bench {
    int on, stamp;
    char nsp[130];
    char starter[64];
    long size, batch, rate;
    long long start, end;
    long long sent;
    char *pad;
} bench;

static long num(const cJSON *o, const char *k, long def, long lo, long hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return def;
    double d = v->valuedouble;
    if (d < lo) return lo;
    if (d > hi) return hi;
    return (long)d;
}

static void bench_start(bench *b, const sioh_event *ev) {
    const cJSON *o = ev->args ? cJSON_GetArrayItem(ev->args, 0) : NULL;
    free(b->pad);
    memset(b, 0, sizeof *b);
    b->size = num(o, "size", 16, 0, 1 << 20);
    b->batch = num(o, "batch", 1, 1, 100000);
    b->rate = num(o, "rate", 0, 0, 10000000);
    long ms = num(o, "ms", 5000, 1, 3600000);
    const cJSON *st = o ? cJSON_GetObjectItemCaseSensitive(o, "stamp") : NULL;
    int stamp = cJSON_IsTrue(st) || (cJSON_IsNumber(st) && st->valuedouble != 0);
    b->pad = malloc((size_t)b->size + 1);
    if (!b->pad) return;
    memset(b->pad, 'x', (size_t)b->size);
    b->pad[b->size] = 0;
    snprintf(b->nsp, sizeof b->nsp, "%s", ev->nsp ? ev->nsp : "/");
    snprintf(b->starter, sizeof b->starter, "%s", ev->socket ? ev->socket : "");
    b->start = now_ms();
    b->end = b->start + ms;
    b->stamp = stamp;
    b->on = 1;
}

static void bench_stop(bench *b) {
    if (!b->on) return;
    b->on = 0;
    char line[160];
    snprintf(line, sizeof line, "[{\"sent\":%lld}]", b->sent);
    cJSON *args = cJSON_Parse(line);
    if (b->starter[0]) sioh_emit(b->starter, "bench:done", args);
    cJSON_Delete(args);
    sioh_flush();
    free(b->pad);
    b->pad = NULL;
}

/* One broadcast line, built by hand: this is the hot path. */
static int bench_send_one(bench *b, char **line, size_t *cap) {
    size_t need = (size_t)b->size + strlen(b->nsp) + 200;
    if (*cap < need) {
        char *n = realloc(*line, need);
        if (!n) return -ENOMEM;
        *line = n;
        *cap = need;
    }
    /* nsp names come from the config: no quote or backslash in them. */
    char t[40] = "";
    if (b->stamp) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(t, sizeof t, ",\"t\":%lld", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    }
    int n = snprintf(*line, *cap,
                     "{\"action\":\"emit\",\"nsp\":\"%s\",\"to\":[\"bench\"],\"event\":\"bench:msg\","
                     "\"args\":[{\"seq\":%lld,\"pad\":\"%s\"%s}]}",
                     b->nsp, b->sent, b->pad, t);
    b->sent++;
    return sioh_write_line(*line, (size_t)n);
}

/* Sends what is due now; returns how long we may wait for input (ms). */
static int bench_turn(bench *b) {
    static char *line;
    static size_t cap;
    long long now = now_ms();
    if (now >= b->end) {
        bench_stop(b);
        return -1;
    }
    long long due;
    if (b->rate == 0) {
        due = b->sent + b->batch;
    } else {
        /* catch up with the schedule, but at most 10 ms worth at once (as
         * the Node reference peer does) */
        due = (now - b->start) * b->rate / 1000 + 1;
        long long burst = b->rate / 100 > 1 ? b->rate / 100 : 1;
        if (due - b->sent > burst) due = b->sent + burst;
    }
    while (b->sent < due)
        if (bench_send_one(b, &line, &cap)) return 0;
    if (b->rate == 0) return 0;
    long long next = b->start + (b->sent * 1000) / b->rate;
    long long wait = next - now_ms();
    if (wait < 0) wait = 0;
    if (now + wait > b->end) wait = b->end - now;
    return wait > 0 ? (int)wait : 0;
}

static void on_event(bench *b, const sioh_event *ev) {
    const char *t = ev->type;
    if (!strcmp(t, "connection")) {
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, ev->auth ? cJSON_Duplicate(ev->auth, 1) : cJSON_CreateObject());
        sioh_emit(ev->socket, "auth", args);
        cJSON_Delete(args);
        sioh_join(ev->socket, "bench");
    } else if (!strcmp(t, "connect")) {
        sioh_accept(ev, NULL); /* only seen with a config that asks us (no `auth` command) */
    } else if (!strcmp(t, "message")) {
        const cJSON *d = ev->data;
        uint8_t *bytes;
        size_t len;
        if (cJSON_IsString(d)) {
            sioh_send(ev->sid, d->valuestring, strlen(d->valuestring), 0);
        } else if (sioh_binary_get(d, &bytes, &len) == 0) {
            sioh_send(ev->sid, bytes, len, 1);
            free(bytes);
        }
    } else if (!strcmp(t, "event") && ev->event) {
        const char *e = ev->event;
        if (!strcmp(e, "message")) {
            sioh_emit(ev->socket, "message-back", ev->args);
        } else if (!strcmp(e, "message-with-ack") || !strcmp(e, "echo")) {
            if (ev->ack >= 0) sioh_ack(ev->socket, ev->ack, ev->args);
        } else if (!strcmp(e, "bench:start")) {
            bench_stop(b);
            bench_start(b, ev);
        } else if (!strcmp(e, "bench:stop")) {
            bench_stop(b);
        }
    }
}

int main(void) {
    bench b = {0};
    sioh_event ev = SIOH_EVENT_INIT;
    for (;;) {
        if (b.on) {
            int wait = bench_turn(&b);
            if (b.on && !sioh_wait(wait)) continue;
        }
        int rc = sioh_next(&ev);
        if (rc <= 0) break;
        on_event(&b, &ev);
    }
    bench_stop(&b);
    sioh_event_clear(&ev);
    sioh_flush();
    return 0;
}

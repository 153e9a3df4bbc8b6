/* front_timer: the front's timers (see front.h): a binary min-heap of
 * deadlines, with one libwebsockets timer armed for the earliest. */
#include <stdlib.h>

#include "front.h"
#include "base/log.h"
#include "base/util.h"

static ftimer **g_heap;
static size_t g_n, g_cap;
static lws_sorted_usec_list_t g_sul;
static int64_t g_armed_at = -1;

static void place(size_t i, ftimer *t) {
    g_heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(size_t i) {
    ftimer *t = g_heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (g_heap[p]->at <= t->at) break;
        place(i, g_heap[p]);
        i = p;
    }
    place(i, t);
}

static void sift_down(size_t i) {
    ftimer *t = g_heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = t->at;
        if (l < g_n && g_heap[l]->at < best) m = l, best = g_heap[l]->at;
        if (l + 1 < g_n && g_heap[l + 1]->at < best) m = l + 1;
        if (m == i) break;
        place(i, g_heap[m]);
        i = m;
    }
    place(i, t);
}

static void fire(lws_sorted_usec_list_t *sul);

/* Arms the lws timer for the heap's top, when that changed. */
static void rearm(void) {
    if (g_n == 0) {
        if (g_armed_at >= 0) lws_sul_cancel(&g_sul);
        g_armed_at = -1;
        return;
    }
    int64_t at = g_heap[0]->at;
    if (at == g_armed_at) return;
    int64_t delay = at - util_now_ms();
    if (delay < 0) delay = 0;
    lws_sul_schedule(g_front.ctx, 0, &g_sul, fire, (lws_usec_t)delay * 1000 + 1);
    g_armed_at = at;
}

static void remove_at(size_t i) {
    ftimer *t = g_heap[i];
    t->slot = 0;
    g_n--;
    if (i == g_n) return;
    place(i, g_heap[g_n]);
    if (i > 0 && g_heap[i]->at < g_heap[(i - 1) / 2]->at) sift_up(i);
    else sift_down(i);
}

static void fire(lws_sorted_usec_list_t *sul) {
    (void)sul;
    g_armed_at = -1;
    int64_t now = util_now_ms();
    while (g_n && g_heap[0]->at <= now) {
        ftimer *t = g_heap[0];
        remove_at(0);
        t->cb(t); /* may set or cancel timers, its own too */
    }
    rearm();
}

void ftimer_cancel(ftimer *t) {
    if (!t->slot) return;
    remove_at(t->slot - 1);
    rearm();
}

void ftimer_set(ftimer *t, ftimer_cb cb, int64_t delay_ms) {
    if (delay_ms < 0) delay_ms = 0;
    if (t->slot) remove_at(t->slot - 1);
    if (g_n == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 1024;
        ftimer **h = realloc(g_heap, cap * sizeof *h);
        if (!h) {
            log_error("timers: out of memory");
            return;
        }
        g_heap = h;
        g_cap = cap;
    }
    t->at = util_now_ms() + delay_ms;
    t->cb = cb;
    place(g_n++, t);
    sift_up(g_n - 1);
    rearm();
}

/* front_timer: the front's timers (see front_timer.h): a binary min-heap of
 * deadlines, with one libwebsockets timer armed for the earliest. */
#include "front_timer.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

void ftimers_init(ftimers *h, struct lws_context *ctx) {
    memset(h, 0, sizeof *h);
    h->ctx = ctx;
    h->armed_at = -1;
}

void ftimers_free(ftimers *h) {
    free(h->heap);
    h->heap = NULL;
    h->n = h->cap = 0;
    h->armed_at = -1;
}

static void place(ftimers *h, size_t i, ftimer *t) {
    h->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(ftimers *h, size_t i) {
    ftimer *t = h->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->heap[p]->at <= t->at) break;
        place(h, i, h->heap[p]);
        i = p;
    }
    place(h, i, t);
}

static void sift_down(ftimers *h, size_t i) {
    ftimer *t = h->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = t->at;
        if (l < h->n && h->heap[l]->at < best) m = l, best = h->heap[l]->at;
        if (l + 1 < h->n && h->heap[l + 1]->at < best) m = l + 1;
        if (m == i) break;
        place(h, i, h->heap[m]);
        i = m;
    }
    place(h, i, t);
}

static void fire(lws_sorted_usec_list_t *sul);

/* Arms the lws timer for the heap's top, when that changed. */
static void rearm(ftimers *h) {
    if (h->n == 0) {
        if (h->armed_at >= 0) lws_sul_cancel(&h->sul);
        h->armed_at = -1;
        return;
    }
    int64_t at = h->heap[0]->at;
    if (at == h->armed_at) return;
    int64_t delay = at - util_now_ms();
    if (delay < 0) delay = 0;
    lws_sul_schedule(h->ctx, 0, &h->sul, fire, (lws_usec_t)delay * 1000 + 1);
    h->armed_at = at;
}

static void remove_at(ftimers *h, size_t i) {
    ftimer *t = h->heap[i];
    t->slot = 0;
    h->n--;
    if (i == h->n) return;
    place(h, i, h->heap[h->n]);
    if (i > 0 && h->heap[i]->at < h->heap[(i - 1) / 2]->at) sift_up(h, i);
    else sift_down(h, i);
}

static void fire(lws_sorted_usec_list_t *sul) {
    ftimers *h = lws_container_of(sul, ftimers, sul);
    h->armed_at = -1;
    int64_t now = util_now_ms();
    while (h->n && h->heap[0]->at <= now) {
        ftimer *t = h->heap[0];
        remove_at(h, 0);
        t->cb(t); /* may set or cancel timers, its own too */
    }
    rearm(h);
}

void ftimer_cancel(ftimers *h, ftimer *t) {
    if (!t->slot) return;
    remove_at(h, t->slot - 1);
    rearm(h);
}

void ftimer_set(ftimers *h, ftimer *t, ftimer_cb cb, int64_t delay_ms) {
    if (delay_ms < 0) delay_ms = 0;
    if (t->slot) remove_at(h, t->slot - 1);
    if (util_grow(&h->heap, &h->cap, h->n, sizeof *h->heap, 1024)) {
        log_error("timers: out of memory");
        return;
    }
    t->at = util_now_ms() + delay_ms;
    t->cb = cb;
    place(h, h->n++, t);
    sift_up(h, h->n - 1);
    rearm(h);
}

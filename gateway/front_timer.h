/* front_timer: the front's timers.  One binary heap of deadlines for every
 * connection's heartbeat, connect and upgrade timers and every held poll,
 * with a single libwebsockets timer armed for the earliest: lws 4.1 keeps
 * its own timers in a sorted list (O(n) per insert), which tens of
 * thousands of connections cannot afford.  Loop thread only. */
#ifndef SIO_FRONT_TIMER_H
#define SIO_FRONT_TIMER_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ftimer ftimer;
/* Called when the deadline passes; the timer is no longer armed. */
typedef void (*ftimer_cb)(ftimer *t);
/* Embedded in what it times (use lws_container_of in the callback). */
struct ftimer {
    int64_t at;  /* deadline, util_now_ms() */
    ftimer_cb cb;
    size_t slot; /* heap index + 1; 0 when not armed */
};

typedef struct ftimers {
    struct lws_context *ctx;
    ftimer **heap;
    size_t n, cap;
    lws_sorted_usec_list_t sul;
    int64_t armed_at; /* what the lws timer is armed for, -1: nothing */
} ftimers;

void ftimers_init(ftimers *h, struct lws_context *ctx);
/* Frees the heap; after the lws context is destroyed (it does not touch it). */
void ftimers_free(ftimers *h);
/* Arms (or re-arms) t to call cb in delay_ms. */
void ftimer_set(ftimers *h, ftimer *t, ftimer_cb cb, int64_t delay_ms);
/* Disarms t; nothing when it is not armed. */
void ftimer_cancel(ftimers *h, ftimer *t);

#endif

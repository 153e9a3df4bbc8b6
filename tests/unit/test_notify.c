/* Unit tests for notify.c: a real hub on a Unix socket in a temp directory,
 * real subscriber threads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "notify/notify.h"
#include "unit.h"
#include "base/util.h"

static char *tmpdir(void) {
    static char d[64];
    strcpy(d, "/tmp/sio-unit-notify-XXXXXX");
    ASSERT_TRUE(mkdtemp(d) != NULL);
    return d;
}

/* Waits until sub is connected (its thread connects asynchronously). */
static void wait_connected(notify_sub *s) {
    for (int i = 0; i < 200 && !notify_sub_connected(s); i++) usleep(5000);
    ASSERT_TRUE(notify_sub_connected(s));
}

/* A hub in d, and one subscriber connected to it. */
static void hub_and_sub(const char *d, notify_hub **h, notify_sub **s) {
    ASSERT_EQ_INT(notify_hub_start(d, h), 0);
    ASSERT_EQ_INT(notify_sub_start(d, s), 0);
    wait_connected(*s);
}

/* The same with a second subscriber, p, connected too. */
static void hub_and_two_subs(const char *d, notify_hub **h, notify_sub **s, notify_sub **p) {
    hub_and_sub(d, h, s);
    ASSERT_EQ_INT(notify_sub_start(d, p), 0);
    wait_connected(*p);
}

TEST(a_publish_wakes_every_other_subscriber) {
    char *d = tmpdir();
    notify_hub *h;
    ASSERT_EQ_INT(notify_hub_start(d, &h), 0);
    notify_sub *a, *b;
    ASSERT_EQ_INT(notify_sub_start(d, &a), 0);
    ASSERT_EQ_INT(notify_sub_start(d, &b), 0);
    wait_connected(a);
    wait_connected(b);
    for (int round = 0; round < 3; round++) {
        UNIT_CTX("round %d", round);
        uint64_t g = notify_sub_gen(b);
        notify_sub_publish(a, 42);
        uint64_t g2 = notify_sub_wait(b, g, util_now_ms() + 2000);
        ASSERT_TRUE(g2 != g);
    }
    /* a one-shot sender (sioctl) wakes subscribers too */
    uint64_t g = notify_sub_gen(a);
    ASSERT_EQ_INT(notify_send(d, 7), 0);
    ASSERT_TRUE(notify_sub_wait(a, g, util_now_ms() + 2000) != g);
    notify_sub_stop(a);
    notify_sub_stop(b);
    notify_hub_stop(h);
    rmdir(d);
}

TEST(a_publish_right_after_start_is_not_lost) {
    char *d = tmpdir();
    notify_hub *h;
    notify_sub *b;
    hub_and_sub(d, &h, &b);
    uint64_t g = notify_sub_gen(b);
    notify_sub *a;
    ASSERT_EQ_INT(notify_sub_start(d, &a), 0);
    notify_sub_publish(a, 1); /* a's thread may not be connected yet */
    ASSERT_TRUE(notify_sub_wait(b, g, util_now_ms() + 2000) != g);
    notify_sub_stop(a);
    notify_sub_stop(b);
    notify_hub_stop(h);
    rmdir(d);
}

TEST(without_a_hub_waits_end_at_the_deadline_and_probe_fails) {
    char *d = tmpdir();
    ASSERT_TRUE(notify_probe(d) < 0);
    ASSERT_TRUE(notify_send(d, 1) < 0);
    notify_sub *s;
    ASSERT_EQ_INT(notify_sub_start(d, &s), 0);
    int64_t t0 = util_now_ms();
    uint64_t g = notify_sub_gen(s);
    notify_sub_wait(s, g, t0 + 100);
    ASSERT_TRUE(util_now_ms() - t0 >= 100);
    /* the hub appears: the subscriber connects and wakes its waiters */
    notify_hub *h;
    ASSERT_EQ_INT(notify_hub_start(d, &h), 0);
    ASSERT_TRUE(notify_sub_wait(s, g, util_now_ms() + 3000) != g);
    wait_connected(s);
    notify_sub_stop(s);
    notify_hub_stop(h);
    rmdir(d);
}

/* A raw hub connection (as notify.c makes them): 16-byte messages. */
static int raw_peer(const char *dir) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir, NOTIFY_SOCK);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

TEST(a_lone_sender_is_not_told_its_own_news) {
    char *d = tmpdir();
    notify_hub *h;
    notify_sub *b;
    hub_and_sub(d, &h, &b);
    int r = raw_peer(d);
    uint64_t g = notify_sub_gen(b);
    uint64_t m[2] = {7, 0};
    ASSERT_EQ_INT((int)send(r, m, sizeof m, 0), (int)sizeof m);
    /* b heard of 7: the hub has relayed it (to every peer it relays to) */
    ASSERT_TRUE(notify_sub_wait(b, g, util_now_ms() + 2000) != g);
    notify_sub_publish(b, 99);
    /* what r hears first is b's 99, not an echo of its own 7 */
    struct pollfd p = {.fd = r, .events = POLLIN};
    ASSERT_EQ_INT(poll(&p, 1, 2000), 1);
    ASSERT_EQ_INT((int)recv(r, m, sizeof m, 0), (int)sizeof m);
    ASSERT_EQ_INT((int)m[0], 99);
    close(r);
    notify_sub_stop(b);
    notify_hub_stop(h);
    rmdir(d);
}

/* The hub's wire message (notify.c): seq, flags, and for a subscriber's
 * registration (flags bit 31) its interest. */
typedef struct wire {
    uint64_t seq;
    uint32_t flags, reserved;
} wire;

TEST(an_inbox_subscriber_sleeps_through_commits_that_left_the_inbox_alone) {
    char *d = tmpdir();
    notify_hub *h;
    notify_sub *b, *p;
    hub_and_two_subs(d, &h, &b, &p);
    int r = raw_peer(d); /* reads only the inbox */
    wire reg = {0, 0x80000000u, NOTIFY_SUB_INBOX}, m = {5, 0, 0};
    ASSERT_EQ_INT((int)send(r, &reg, sizeof reg, 0), (int)sizeof reg);
    uint64_t g = notify_sub_gen(b);
    ASSERT_EQ_INT((int)send(r, &m, sizeof m, 0), (int)sizeof m);
    /* b heard of 5, sent after the registration: the hub has read both */
    ASSERT_TRUE(notify_sub_wait(b, g, util_now_ms() + 2000) != g);
    g = notify_sub_gen(b);
    notify_sub_publish_as(p, 11, NOTIFY_NO_INBOX);
    ASSERT_TRUE(notify_sub_wait(b, g, util_now_ms() + 2000) != g); /* b: woken */
    g = notify_sub_gen(b);
    notify_sub_publish(p, 12); /* may have appended to the inbox */
    ASSERT_TRUE(notify_sub_wait(b, g, util_now_ms() + 2000) != g);
    /* r was sent 12 only: 11 was relayed to b before 12 was read */
    struct pollfd pf = {.fd = r, .events = POLLIN};
    ASSERT_EQ_INT(poll(&pf, 1, 2000), 1);
    ASSERT_EQ_INT((int)recv(r, &m, sizeof m, 0), (int)sizeof m);
    ASSERT_EQ_INT((int)m.seq, 12);
    ASSERT_EQ_INT((int)m.flags, 0);
    close(r);
    notify_sub_stop(p);
    notify_sub_stop(b);
    notify_hub_stop(h);
    rmdir(d);
}

TEST(an_own_publish_moves_the_generation_but_not_the_eventfd) {
    char *d = tmpdir();
    notify_hub *h;
    notify_sub *b, *p;
    hub_and_two_subs(d, &h, &b, &p);
    /* p's connect bump (written before it counted as connected) is drained */
    struct pollfd pf = {.fd = notify_sub_eventfd(p), .events = POLLIN};
    ASSERT_EQ_INT(poll(&pf, 1, 2000), 1);
    notify_sub_ack(p);
    uint64_t gb = notify_sub_gen(b), gp = notify_sub_gen(p);
    notify_sub_publish_as(p, 3, NOTIFY_OWN);
    ASSERT_TRUE(notify_sub_gen(p) != gp);        /* its threads see it */
    ASSERT_EQ_INT(poll(&pf, 1, 0), 0);           /* its loop is not woken */
    ASSERT_TRUE(notify_sub_wait(b, gb, util_now_ms() + 2000) != gb); /* the others are */
    notify_sub_publish(p, 4);
    ASSERT_EQ_INT(poll(&pf, 1, 0), 1);           /* a plain publish writes it */
    notify_sub_stop(p);
    notify_sub_stop(b);
    notify_hub_stop(h);
    rmdir(d);
}

UNIT_MAIN()

/* notify: hub, publishing and subscribing (see notify.h). */
#include "notify/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

typedef struct notify_msg {
    uint64_t seq;
    uint32_t flags; /* NOTIFY_NO_INBOX, or MSG_REGISTER */
    uint32_t reserved; /* MSG_REGISTER: the interest (NOTIFY_SUB_*) */
} notify_msg;

/* Not a publication: a subscriber tells the hub what wakes it. */
#define MSG_REGISTER 0x80000000u
#define MSG_SENT_FLAGS NOTIFY_NO_INBOX

static int sock_addr(const char *dir, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if ((size_t)snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, NOTIFY_SOCK) >=
        sizeof a->sun_path)
        return -ENAMETOOLONG;
    return 0;
}

static int connect_hub(const char *dir) {
    struct sockaddr_un a;
    int rc = sock_addr(dir, &a);
    if (rc) return rc;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* ---- hub --------------------------------------------------------------- */

#define HUB_MAX_PEERS 16384

struct notify_hub {
    int lfd, ep, stop_fd;
    pthread_t thread;
    int npeers;
    int *peers; /* fds, unordered */
    unsigned *want; /* each peer's interest (NOTIFY_SUB_*), same index */
    char path[PATH_MAX];
};

static void hub_drop(notify_hub *h, int fd) {
    for (int i = 0; i < h->npeers; i++)
        if (h->peers[i] == fd) {
            h->npeers--;
            h->peers[i] = h->peers[h->npeers];
            h->want[i] = h->want[h->npeers];
            break;
        }
    epoll_ctl(h->ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void hub_register(notify_hub *h, int fd, unsigned want) {
    for (int i = 0; i < h->npeers; i++)
        if (h->peers[i] == fd) h->want[i] = want;
}

static void *hub_main(void *arg) {
    notify_hub *h = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(h->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log_error("notify hub: epoll_wait: %s", strerror(errno));
            break;
        }
        uint64_t top = 0;
        int any = 0, inbox = 0, sender = -1; /* the one peer that sent this turn, -2: several */
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == h->stop_fd) return NULL;
            if (fd == h->lfd) {
                for (;;) {
                    int c = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if (h->npeers >= HUB_MAX_PEERS) {
                        close(c);
                        continue;
                    }
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(h->ep, EPOLL_CTL_ADD, c, &ev);
                    h->want[h->npeers] = NOTIFY_SUB_ALL;
                    h->peers[h->npeers++] = c;
                }
                continue;
            }
            for (;;) {
                notify_msg m;
                ssize_t r = recv(fd, &m, sizeof m, MSG_DONTWAIT);
                if (r == (ssize_t)sizeof m && (m.flags & MSG_REGISTER)) {
                    hub_register(h, fd, m.reserved);
                    continue;
                }
                if (r == (ssize_t)sizeof m) {
                    if (m.seq > top) top = m.seq;
                    if (!(m.flags & NOTIFY_NO_INBOX)) inbox = 1;
                    any = 1;
                    sender = sender == -1 || sender == fd ? fd : -2;
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (r <= 0 || (evs[i].events & (EPOLLHUP | EPOLLERR))) {
                    hub_drop(h, fd);
                    break;
                }
            }
        }
        if (!any) continue;
        /* A lone sender is not told its own news: notify_sub_publish has
         * woken that connection's waiters already (one wake-up less per
         * write, e.g. a front answering its own clients). */
        notify_msg out = {.seq = top, .flags = inbox ? 0 : NOTIFY_NO_INBOX};
        for (int i = 0; i < h->npeers; i++)
            if (h->peers[i] != sender && (inbox || !(h->want[i] & NOTIFY_SUB_INBOX)) &&
                send(h->peers[i], &out, sizeof out, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
                errno != EAGAIN) {
                /* dead peer: epoll will report the hang-up */
            }
    }
    return NULL;
}

int notify_hub_start(const char *dir, notify_hub **out) {
    notify_hub *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    h->peers = calloc(HUB_MAX_PEERS, sizeof *h->peers);
    h->want = calloc(HUB_MAX_PEERS, sizeof *h->want);
    if (!h->peers || !h->want) { free(h->peers); free(h->want); free(h); return -ENOMEM; }
    struct sockaddr_un a;
    int rc = sock_addr(dir, &a);
    if (rc) goto fail;
    snprintf(h->path, sizeof h->path, "%s", a.sun_path);
    unlink(a.sun_path); /* stale socket of an earlier run; the caller holds the lock */
    h->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->lfd < 0) { rc = -errno; goto fail; }
    mode_t old = umask(0117); /* 0660: the state directory's group may connect */
    rc = bind(h->lfd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc || listen(h->lfd, 1024)) { rc = -errno; close(h->lfd); goto fail; }
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = h->lfd};
    epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &ev);
    ev.data.fd = h->stop_fd;
    epoll_ctl(h->ep, EPOLL_CTL_ADD, h->stop_fd, &ev);
    if ((rc = pthread_create(&h->thread, NULL, hub_main, h))) {
        rc = -rc;
        close(h->lfd); close(h->ep); close(h->stop_fd);
        goto fail;
    }
    *out = h;
    return 0;
fail:
    free(h->peers);
    free(h->want);
    free(h);
    return rc;
}

void notify_hub_stop(notify_hub *h) {
    if (!h) return;
    uint64_t one = 1;
    ssize_t w = write(h->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(h->thread, NULL);
    for (int i = 0; i < h->npeers; i++) close(h->peers[i]);
    close(h->lfd);
    close(h->ep);
    close(h->stop_fd);
    unlink(h->path);
    free(h->peers);
    free(h->want);
    free(h);
}

int notify_hub_peers(notify_hub *h) { return h->npeers; }

/* ---- publishing --------------------------------------------------------- */

int notify_send(const char *dir, uint64_t seq) {
    int fd = connect_hub(dir);
    if (fd < 0) return fd;
    notify_msg m = {.seq = seq};
    int rc = send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m ? 0 : -errno;
    close(fd);
    return rc;
}

int notify_probe(const char *dir) {
    int fd = connect_hub(dir);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

/* ---- subscribing -------------------------------------------------------- */

struct notify_sub {
    char dir[PATH_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
    int fd;       /* hub connection, -1 while disconnected */
    int evfd;     /* eventfd for event loops */
    int stop_fd;  /* eventfd that stops the thread */
    int stopping;
    unsigned interest; /* NOTIFY_SUB_*: told to the hub at each connect */
    pthread_t thread;
};

/* A wake-up: the generation for threads, the eventfd for the event loop
 * (unless loop is 0: the loop itself published and delivers its own). */
static void sub_bump(notify_sub *s, int loop) {
    pthread_mutex_lock(&s->mu);
    s->gen++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!loop) return;
    uint64_t one = 1;
    ssize_t w = write(s->evfd, &one, sizeof one);
    (void)w;
}

static void *sub_main(void *arg) {
    notify_sub *s = arg;
    int backoff = 50;
    while (!s->stopping) {
        int fd = connect_hub(s->dir);
        if (fd < 0) {
            /* stated is down: wait for it with a growing back-off, or for stop. */
            struct pollfd p = {.fd = s->stop_fd, .events = POLLIN};
            poll(&p, 1, backoff);
            if (backoff < 1000) backoff *= 2;
            continue;
        }
        backoff = 50;
        if (s->interest != NOTIFY_SUB_ALL) {
            notify_msg reg = {.flags = MSG_REGISTER, .reserved = s->interest};
            if (send(fd, &reg, sizeof reg, MSG_NOSIGNAL) != (ssize_t)sizeof reg) {
                close(fd);
                continue;
            }
        }
        pthread_mutex_lock(&s->mu);
        s->fd = fd;
        pthread_mutex_unlock(&s->mu);
        sub_bump(s, 1); /* anything may have happened while we were away */
        for (;;) {
            struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (p[1].revents) break;
            notify_msg m;
            ssize_t r = recv(fd, &m, sizeof m, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) break; /* hub went away */
            while (recv(fd, &m, sizeof m, MSG_DONTWAIT) > 0) {
            }
            sub_bump(s, 1);
        }
        pthread_mutex_lock(&s->mu);
        s->fd = -1;
        pthread_mutex_unlock(&s->mu);
        close(fd);
    }
    return NULL;
}

int notify_sub_start(const char *dir, notify_sub **out) {
    return notify_sub_start_for(dir, NOTIFY_SUB_ALL, out);
}

int notify_sub_start_for(const char *dir, unsigned interest, notify_sub **out) {
    notify_sub *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->interest = interest;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->fd = -1;
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = pthread_create(&s->thread, NULL, sub_main, s);
    if (rc) {
        close(s->evfd);
        close(s->stop_fd);
        free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

void notify_sub_stop(notify_sub *s) {
    if (!s) return;
    s->stopping = 1;
    uint64_t one = 1;
    ssize_t w = write(s->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(s->thread, NULL);
    close(s->evfd);
    close(s->stop_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void notify_sub_publish_as(notify_sub *s, uint64_t seq, unsigned flags) {
    notify_msg m = {.seq = seq, .flags = flags & MSG_SENT_FLAGS};
    pthread_mutex_lock(&s->mu);
    int fd = s->fd, sent = 0;
    if (fd >= 0) sent = send(fd, &m, sizeof m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof m;
    pthread_mutex_unlock(&s->mu);
    /* Not connected yet (or the socket is full): a one-shot connection, so
     * that a wake-up is never lost. */
    if (!sent) notify_send(s->dir, seq);
    sub_bump(s, !(flags & NOTIFY_OWN));
}

void notify_sub_publish(notify_sub *s, uint64_t seq) { notify_sub_publish_as(s, seq, 0); }

uint64_t notify_sub_gen(notify_sub *s) {
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

uint64_t notify_sub_wait(notify_sub *s, uint64_t seen, int64_t deadline_ms) {
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_mutex_lock(&s->mu);
    while (s->gen == seen && util_now_ms() < deadline_ms)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    uint64_t g = s->gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

int notify_sub_connected(notify_sub *s) {
    pthread_mutex_lock(&s->mu);
    int c = s->fd >= 0;
    pthread_mutex_unlock(&s->mu);
    return c;
}

int notify_sub_eventfd(notify_sub *s) { return s->evfd; }

void notify_sub_ack(notify_sub *s) {
    uint64_t v;
    ssize_t r = read(s->evfd, &v, sizeof v);
    (void)r;
}

/* fcgi_park: sio-fcgi's held polls in a few epoll loops (see fcgi_park.h).
 *
 * Polls are spread over a few loops (two per CPU, 2 to 16).  Each loop
 * thread owns its parked polls; workers only append to a loop's incoming
 * list (under its mu) and kick its in_fd.  Loop 0 reads the notify eventfd
 * and kicks the others' wake_fd.  A loop's turn works in batches: the GETs
 * handed over since its last turn are claimed together (one store write,
 * polling_claim_many), then every waiting poll with something to look at
 * is stepped together (one store read and one write for all the answers,
 * polling_step_many), PARK_BATCH polls at a time: a wake that makes a
 * thousand polls answerable takes the store's writer lock a few times, not
 * a thousand.  A parked
 * poll is either waiting (its fd watched for the web server closing it) or
 * writing its answer (fd watched for room to write). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fcgi_park.h"
#include "notify/notify.h"

/* FastCGI record types and header size (the FastCGI 1.0 specification) */
enum { FCGI_VERSION_1 = 1, FCGI_END_REQUEST = 3, FCGI_STDOUT = 6, FCGI_HEADER_LEN = 8 };
#define FCGI_MAX_CONTENT 65535

typedef struct parked {
    struct parked *prev, *next; /* the loop's list (or the incoming list: next only) */
    int fd;
    int request_id;
    int writing;      /* the answer is being written */
    int64_t deadline; /* wall clock (util_now_ms): step again by then */
    polling_req p;
    buf head;   /* headers for the answer (CORS), kept while it waits */
    buf out;    /* the answer's records (writing) */
    size_t off; /* written so far */
} parked;

/* Polls stepped (or claimed) together in one store transaction, at most:
 * enough to take the writer lock rarely, few enough that the first answers
 * of a wake go out while the loop looks at the rest, and that a read
 * snapshot stays short. */
#define PARK_BATCH 64

typedef struct ploop {
    server *srv;
    struct fpark *park;
    int index;
    int ep;
    int in_fd;   /* eventfd: the incoming list is not empty */
    int wake_fd; /* eventfd: loop 0 saw a notify wake (loop 0: the notify eventfd) */
    pthread_mutex_t mu;
    parked *incoming; /* under mu */
    parked *list;     /* loop thread only */
    int64_t next_due; /* earliest deadline in list, INT64_MAX: none */
    /* a batch (loop thread only): the polls stepped together, and
     * polling_step_many's arrays for them */
    parked *batch[PARK_BATCH];
    polling_req *reqs[PARK_BATCH];
    http_resp resps[PARK_BATCH];
    int rcs[PARK_BATCH];
    int64_t dues[PARK_BATCH];
} ploop;

#define PARK_MAX_LOOPS 16

struct fpark {
    int n;
    atomic_uint next; /* round robin for fpark_add */
    ploop loops[PARK_MAX_LOOPS];
};

/* epoll tags for the two eventfds (parked polls use their own address) */
static char tag_in, tag_wake;

static const char *status_text(int status) {
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

void fpark_format(const http_resp *resp, buf *out) {
    buf_printf(out, "Status: %d %s\r\n", resp->status, status_text(resp->status));
    if (resp->content_type) buf_printf(out, "Content-Type: %s\r\n", resp->content_type);
    buf_printf(out, "Content-Length: %zu\r\n", resp->body.len);
    if (resp->status == 200) buf_puts(out, "Cache-Control: no-store\r\n");
    if (resp->headers.len) buf_append(out, resp->headers.data, resp->headers.len);
    buf_puts(out, "\r\n");
    if (resp->body.len) buf_append(out, resp->body.data, resp->body.len);
}

static void record_head(buf *out, int type, int id, size_t len) {
    uint8_t h[FCGI_HEADER_LEN] = {FCGI_VERSION_1, (uint8_t)type, (uint8_t)(id >> 8), (uint8_t)id,
                                  (uint8_t)(len >> 8), (uint8_t)len, 0, 0};
    buf_append(out, h, sizeof h);
}

/* resp as FastCGI records: STDOUT records, the empty STDOUT that ends the
 * stream, END_REQUEST (application status 0, request complete). */
static void encode(const http_resp *resp, int id, buf *out) {
    buf text = BUF_INIT;
    fpark_format(resp, &text);
    for (size_t off = 0; off < text.len;) {
        size_t n = text.len - off < FCGI_MAX_CONTENT ? text.len - off : FCGI_MAX_CONTENT;
        record_head(out, FCGI_STDOUT, id, n);
        buf_append(out, text.data + off, n);
        off += n;
    }
    buf_free(&text);
    record_head(out, FCGI_STDOUT, id, 0);
    record_head(out, FCGI_END_REQUEST, id, 8);
    static const uint8_t end[8] = {0};
    buf_append(out, end, sizeof end);
}

static void list_add(ploop *k, parked *q) {
    q->prev = NULL;
    q->next = k->list;
    if (k->list) k->list->prev = q;
    k->list = q;
}

static void list_del(ploop *k, parked *q) {
    if (q->prev) q->prev->next = q->next;
    else k->list = q->next;
    if (q->next) q->next->prev = q->prev;
}

static void park_free(ploop *k, parked *q) {
    list_del(k, q);
    close(q->fd); /* also takes it out of the epoll set */
    buf_free(&q->head);
    buf_free(&q->out);
    free(q);
}

/* Writes what it can of the answer; frees q once all of it is written or
 * the connection failed. */
static void flush(ploop *k, parked *q) {
    while (q->off < q->out.len) {
        ssize_t n = send(q->fd, q->out.data + q->off, q->out.len - q->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            q->off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = q};
            if (epoll_ctl(k->ep, EPOLL_CTL_MOD, q->fd, &ev) == 0) return;
            break;
        } else {
            log_info("session %s: the web server's connection failed while answering its poll: %s", q->p.sid,
                     strerror(errno));
            polling_answer_lost(k->srv, &q->p);
            break;
        }
    }
    park_free(k, q);
}

/* The answer polling_step found for q goes out (resp is freed; q may be
 * freed too once it is written). */
static void answer(ploop *k, parked *q, http_resp *resp) {
    encode(resp, q->request_id, &q->out);
    http_resp_free(resp);
    q->writing = 1;
    flush(k, q);
}

/* Looks at the n waiting polls of k's batch again, together (one store
 * read and one write for all of them: polling_step_many), or, with claim,
 * claims the n new ones together (one write: polling_claim_many); those
 * answered go out, the others get their new deadline. */
static void step_batch(ploop *k, size_t n, int claim) {
    for (size_t i = 0; i < n; i++) {
        parked *q = k->batch[i];
        k->reqs[i] = &q->p;
        k->resps[i] = (http_resp){.headers = q->head};
        q->head = (buf)BUF_INIT;
        k->dues[i] = util_now_ms() + 1000; /* polling_step may leave it (very busy) */
    }
    if (claim) polling_claim_many(k->srv, k->reqs, n, k->resps, k->rcs, k->dues);
    else polling_step_many(k->srv, k->reqs, n, k->resps, k->rcs, k->dues);
    for (size_t i = 0; i < n; i++) {
        parked *q = k->batch[i];
        if (k->rcs[i] == POLLING_WAIT) {
            q->deadline = k->dues[i];
            if (q->deadline < k->next_due) k->next_due = q->deadline;
            q->head = k->resps[i].headers;
            k->resps[i].headers = (buf)BUF_INIT;
            http_resp_free(&k->resps[i]);
        } else {
            answer(k, q, &k->resps[i]);
        }
    }
}

/* The web server closed the connection of a waiting poll, or sent on it
 * (nothing but FCGI_ABORT_REQUEST can come after the request's input): its
 * client went away. */
static void peer_event(ploop *k, parked *q) {
    char c;
    ssize_t n = recv(q->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    polling_dropped(k->srv, &q->p); /* no one to answer */
    park_free(k, q);
}

/* The GETs handed over since the last turn join the list and are claimed
 * together at once. */
static void take_incoming(ploop *k) {
    uint64_t v;
    ssize_t r = read(k->in_fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&k->mu);
    parked *q = k->incoming;
    k->incoming = NULL;
    pthread_mutex_unlock(&k->mu);
    size_t n = 0;
    while (q) {
        parked *next = q->next;
        list_add(k, q);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = q};
        if (epoll_ctl(k->ep, EPOLL_CTL_ADD, q->fd, &ev)) {
            log_error("session %s: cannot watch the poll's connection: %s", q->p.sid, strerror(errno));
            polling_abandon(k->srv, &q->p);
            park_free(k, q);
        } else {
            k->batch[n++] = q;
            if (n == PARK_BATCH) {
                step_batch(k, n, 1);
                n = 0;
            }
        }
        q = next;
    }
    if (n) step_batch(k, n, 1);
}

/* Steps every waiting poll that has something to look at (the store changed
 * since its last look, or its deadline passed), PARK_BATCH at a time, and
 * finds the next deadline. */
static void pass(ploop *k, int64_t now) {
    uint64_t gen = notify_sub_gen(k->srv->sub);
    size_t n = 0;
    for (parked *q = k->list, *next; q; q = next) {
        next = q->next; /* (step_batch frees the polls of the batch it answers, never next) */
        if (q->writing || (q->p.gen == gen && q->deadline > now)) continue;
        k->batch[n++] = q;
        if (n == PARK_BATCH) {
            step_batch(k, n, 0);
            n = 0;
        }
    }
    if (n) step_batch(k, n, 0);
    int64_t due = INT64_MAX;
    for (parked *q = k->list; q; q = q->next)
        if (!q->writing && q->deadline < due) due = q->deadline;
    k->next_due = due;
}

static void *loop(void *arg) {
    ploop *k = arg;
    fpark *pk = k->park;
    struct epoll_event evs[128];
    for (;;) {
        int64_t now = util_now_ms();
        int64_t wait = k->next_due == INT64_MAX ? -1 : k->next_due <= now ? 0 : k->next_due - now;
        int timeout = wait > 60000 ? 60000 : (int)wait;
        int n = epoll_wait(k->ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
        int woke = 0;
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &tag_wake) {
                if (k->index == 0) {
                    notify_sub_ack(k->srv->sub);
                    uint64_t one = 1;
                    for (int j = 1; j < pk->n; j++) {
                        ssize_t w = write(pk->loops[j].wake_fd, &one, sizeof one);
                        (void)w;
                    }
                } else {
                    uint64_t v;
                    ssize_t r = read(k->wake_fd, &v, sizeof v);
                    (void)r;
                }
                woke = 1;
            } else if (ptr == &tag_in) {
                take_incoming(k);
            } else {
                parked *q = ptr;
                if (q->writing) flush(k, q);
                else peer_event(k, q);
            }
        }
        now = util_now_ms();
        if (woke || now >= k->next_due) pass(k, now);
    }
    return NULL;
}

static int loop_start(ploop *k) {
    k->next_due = INT64_MAX;
    pthread_mutex_init(&k->mu, NULL);
    k->ep = epoll_create1(EPOLL_CLOEXEC);
    k->in_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    k->wake_fd = k->index == 0 ? notify_sub_eventfd(k->srv->sub) : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event in = {.events = EPOLLIN, .data.ptr = &tag_in};
    struct epoll_event wk = {.events = EPOLLIN, .data.ptr = &tag_wake};
    if (k->ep < 0 || k->in_fd < 0 || k->wake_fd < 0 || epoll_ctl(k->ep, EPOLL_CTL_ADD, k->in_fd, &in) ||
        epoll_ctl(k->ep, EPOLL_CTL_ADD, k->wake_fd, &wk))
        return -errno;
    pthread_t tid;
    int rc = pthread_create(&tid, NULL, loop, k);
    if (rc) return -rc;
    pthread_detach(tid);
    return 0;
}

int fpark_start(server *srv, fpark **out) {
    fpark *pk = calloc(1, sizeof *pk);
    if (!pk) return -ENOMEM;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pk->n = cpus < 1 ? 2 : cpus * 2 > PARK_MAX_LOOPS ? PARK_MAX_LOOPS : (int)cpus * 2;
    for (int i = 0; i < pk->n; i++) {
        ploop *k = &pk->loops[i];
        k->srv = srv;
        k->park = pk;
        k->index = i;
        int rc = loop_start(k);
        if (rc) {
            /* a loop that did not start gets no polls; none at all is fatal */
            if (i == 0) return rc;
            pk->n = i;
            break;
        }
    }
    *out = pk;
    return 0;
}

void fpark_add(fpark *pk, int fd, int request_id, const polling_req *p, buf *head) {
    ploop *k = &pk->loops[atomic_fetch_add(&pk->next, 1) % (unsigned)pk->n];
    parked *q = calloc(1, sizeof *q);
    if (!q) {
        log_error("session %s: out of memory holding its poll", p->sid);
        polling_req copy = *p;
        polling_abandon(k->srv, &copy);
        close(fd);
        buf_free(head);
        return;
    }
    q->fd = fd;
    q->request_id = request_id;
    q->p = *p;
    q->head = *head;
    *head = (buf)BUF_INIT;
    pthread_mutex_lock(&k->mu);
    int kick = k->incoming == NULL; /* else the loop has a kick for the list still to take */
    q->next = k->incoming;
    k->incoming = q;
    pthread_mutex_unlock(&k->mu);
    if (kick) {
        uint64_t one = 1;
        ssize_t r = write(k->in_fd, &one, sizeof one);
        (void)r;
    }
}

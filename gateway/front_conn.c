/* front_conn: messages and send queues (see front_conn.h). */
#include "front_conn.h"

#include <stdlib.h>
#include <string.h>

/* ---- messages ------------------------------------------------------------- */

static fmsg *fmsg_new(int binary, const void *a, size_t alen, const void *b, size_t blen) {
    fmsg *m = malloc(sizeof *m + LWS_PRE + alen + blen + 1);
    if (!m) return NULL;
    m->refs = 1;
    m->binary = (uint8_t)binary;
    m->len = alen + blen;
    m->data = (unsigned char *)(m + 1) + LWS_PRE;
    if (alen) memcpy(m->data, a, alen);
    if (blen) memcpy(m->data + alen, b, blen);
    m->data[m->len] = 0;
    return m;
}

fmsg *fmsg_text(char type, const void *data, size_t len) {
    if (!type) return fmsg_new(0, data, len, NULL, 0);
    return fmsg_new(0, &type, 1, data, len);
}

fmsg *fmsg_binary(const void *data, size_t len) { return fmsg_new(1, data, len, NULL, 0); }

void fmsg_unref(fmsg *m) {
    if (!m || m->refs == UINT32_MAX) return;
    if (--m->refs == 0) free(m);
}

/* ---- the send queue ---------------------------------------------------------- */

/* Keeps c->busy and pool->busy in step with the queue: busy over the flow
 * threshold, not busy again at half of it; tells the pool when it drains. */
static void account(ws_conn *c) {
    fconns *p = c->pool;
    size_t fb = p->max_queue / 2 < CONN_FLOW_BYTES ? p->max_queue / 2 : CONN_FLOW_BYTES;
    size_t fp = p->max_packets / 2 < CONN_FLOW_PACKETS ? p->max_packets / 2 : CONN_FLOW_PACKETS;
    if (!c->busy && (c->qbytes > fb || c->qlen > fp)) {
        c->busy = 1;
        p->busy++;
    } else if (c->busy && c->qbytes <= fb / 2 && c->qlen <= fp / 2) {
        c->busy = 0;
        p->busy--;
        if (p->drained) p->drained(p->drained_arg, c);
    }
}

void conn_pop(ws_conn *c) {
    fmsg *m = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->qbytes -= m->len;
    c->qoff = 0;
    fmsg_unref(m);
    if (!c->qlen) { /* an idle connection keeps no ring */
        free(c->q);
        c->q = NULL;
        c->qcap = c->qhead = 0;
    }
    c->progress_ms = util_now_ms();
    account(c);
}

void conn_clear(ws_conn *c) {
    while (c->qlen) conn_pop(c);
}

int conn_queue(ws_conn *c, fmsg *m) {
    if (c->state == WS_CLOSING) return 0;
    if (c->qlen && (c->qbytes + m->len > c->pool->max_queue || c->qlen >= c->pool->max_packets))
        return -1;
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 8;
        fmsg **q = malloc(cap * sizeof *q);
        if (!q) return -1;
        for (size_t i = 0; i < c->qlen; i++) q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    if (m->refs != UINT32_MAX) m->refs++;
    c->q[(c->qhead + c->qlen) % c->qcap] = m;
    if (c->qlen == 0) c->progress_ms = util_now_ms();
    c->qlen++;
    c->qbytes += m->len;
    account(c);
    if (c->established && c->qlen == 1) {
        fconns *p = c->pool;
        if (!p->direct || p->in_service ||
            util_grow(&p->pending, &p->cappending, p->npending, sizeof *p->pending, 64))
            lws_callback_on_writable(c->wsi);
        else
            p->pending[p->npending++] = c;
    }
    return 0;
}

void conn_forget(ws_conn *c) {
    fconns *p = c->pool;
    for (size_t i = 0; i < p->npending; i++)
        if (p->pending[i] == c) p->pending[i] = NULL;
}

int conn_queue_own(ws_conn *c, fmsg *m) {
    if (!m) return -1;
    int rc = conn_queue(c, m);
    fmsg_unref(m);
    return rc;
}

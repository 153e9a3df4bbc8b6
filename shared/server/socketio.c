/* socketio: the Socket.IO layer (see socketio.h). */
#include "server/socketio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"
#include "proto/json.h"
#include "server/reader.h"
#include "server/rooms.h"
#include "store/inbox.h"

/* ---- encoding once ------------------------------------------------------ */

/* Encodes pkt once into frames (the text packet, then its attachments) and
 * appends one delivery record: a broadcast `to`, or for session `sid`. */
static int encode_append(store_txn *t, const bcast *to, const char *sid, const sio_packet *pkt,
                         uint64_t *seq) {
    buf text = BUF_INIT, bins = BUF_INIT;
    size_t off[SIO_MAX_ATTACHMENTS + 1] = {0}, nattach = 0;
    logrec_frame frames[SIO_MAX_ATTACHMENTS + 1];
    int rc = sio_encode(&text, pkt, &bins, off, SIO_MAX_ATTACHMENTS, &nattach);
    if (!rc) {
        frames[0] = (logrec_frame){0, (const uint8_t *)text.data, text.len};
        for (size_t i = 0; i < nattach; i++)
            frames[1 + i] = (logrec_frame){1, (const uint8_t *)bins.data + off[i], off[i + 1] - off[i]};
        rc = to ? logrec_append_broadcast(t, to, frames, 1 + nattach, seq)
                : logrec_append_session(t, sid, frames, 1 + nattach, seq);
        if (!rc && to) stats_add(STATS_BROADCASTS, 1);
    }
    buf_free(&text);
    buf_free(&bins);
    return rc;
}

/* Node's rule for what connection state recovery stores: events, without an
 * ack, not volatile. */
static int gets_offset(server *srv, const bcast *to, const sio_packet *pkt) {
    return srv->cfg.connection_state_recovery && pkt->id < 0 && !(to->flags & LOGREC_F_VOLATILE) &&
           (pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT) && cJSON_IsArray(pkt->data);
}

int socketio_emit(server *srv, store_txn *t, const bcast *to, const sio_packet *pkt, uint64_t *seq) {
    if (!gets_offset(srv, to, pkt)) return encode_append(t, to, NULL, pkt, seq);
    /* The offset is the seq this append gets (the single writer's head + 1),
     * as a string after the last argument.  The caller's array gains it for
     * the encoding and loses it again. */
    uint64_t head, got = 0;
    int rc = store_log_bounds(t, NULL, &head);
    if (rc) return rc;
    char off[24];
    snprintf(off, sizeof off, "%llu", (unsigned long long)head + 1);
    cJSON *item = cJSON_CreateString(off), *data = (cJSON *)pkt->data;
    if (!item || !cJSON_AddItemToArray(data, item)) {
        cJSON_Delete(item);
        return -ENOMEM;
    }
    bcast b = *to;
    b.flags |= LOGREC_F_OFFSET;
    rc = encode_append(t, &b, NULL, pkt, &got);
    cJSON_Delete(cJSON_DetachItemViaPointer(data, item));
    if (!rc && got != head + 1) rc = STORE_EIO; /* another writer inside our transaction? */
    if (!rc && seq) *seq = got;
    return rc;
}

int socketio_send(store_txn *t, const char *sid, const sio_packet *pkt, uint64_t *seq) {
    return encode_append(t, NULL, sid, pkt, seq);
}

/* ---- sockets ------------------------------------------------------------ */

const char *socketio_disconnect_reason(int r) {
    switch (r) {
    case SESSION_CLOSE_PING_TIMEOUT: return "ping timeout";
    case SESSION_CLOSE_PARSE_ERROR: return "parse error";
    case SESSION_CLOSE_SERVER: return "forced close";
    case SESSION_CLOSE_OVERLAP:
    case SESSION_CLOSE_POLL_DROPPED:
    case SESSION_CLOSE_LAGGING: return "transport error";
    default: return "transport close";
    }
}

/* One socket fewer in a session that is not closed. */
static int session_lost_socket(store_txn *t, const char *sid) {
    store_session ss;
    int rc = store_session_get(t, sid, &ss);
    if (rc == 0 && ss.nsockets > 0 && ss.state != STORE_S_CLOSED) {
        ss.nsockets--;
        rc = store_session_put(t, sid, &ss);
    }
    return rc == STORE_NOTFOUND ? 0 : rc;
}

/* Tells application logic that a socket left, and deletes it; or, with
 * keep for a socket that can be recovered (it has a pid), detaches it:
 * its record and rooms wait for the client (the reaper deletes it after
 * max_disconnection_duration); acked: its session's.  Keeps the session's
 * count. */
static int drop_socket(store_txn *t, const store_socket *s, const char *reason, int keep,
                       uint64_t acked, uint64_t *seq) {
    char id[UTIL_ID_LEN + 1], sid[UTIL_ID_LEN + 1];
    strcpy(id, s->id);
    strcpy(sid, s->sid);
    int detached = s->detached_ms != 0;
    int rc = detached ? 0 : inbox_disconnect(t, s, reason, seq); /* told when it detached */
    if (rc) return rc;
    if (!detached) stats_add(STATS_SOCKET_DISCONNECTS + stats_reason_of(reason), 1);
    if (keep && s->pid[0] && !detached) rc = store_socket_detach(t, id, util_now_ms(), acked);
    else rc = store_socket_del(t, id);
    if (rc && rc != STORE_NOTFOUND) return rc;
    return detached ? 0 : session_lost_socket(t, sid);
}

int socketio_remove(store_txn *t, const store_socket *s, int notify_client, const char *reason,
                    uint64_t *seq) {
    if (notify_client && !s->detached_ms) {
        sio_packet p = {.type = SIO_DISCONNECT, .id = -1};
        strcpy(p.nsp, s->nsp);
        int rc = socketio_send(t, s->sid, &p, seq);
        if (rc) return rc;
    }
    return drop_socket(t, s, reason, 0, 0, seq);
}

typedef struct id_list {
    char (*ids)[UTIL_ID_LEN + 1];
    size_t n;
} id_list;

static int collect_ids(void *arg, const store_socket *s) {
    id_list *l = arg;
    if (l->n >= SOCKETIO_MAX_NSP_PER_SESSION * 2) return 0;
    strcpy(l->ids[l->n++], s->id);
    return 0;
}

/* Node's RECOVERABLE_DISCONNECT_REASONS: every end of a session but a
 * protocol violation. */
static int recoverable(int close_reason) {
    return close_reason != SESSION_CLOSE_PARSE_ERROR && close_reason != SESSION_CLOSE_CONNECT_TIMEOUT;
}

int socketio_session_drop(store_txn *t, const char *sid, int close_reason, uint64_t acked) {
    char ids[SOCKETIO_MAX_NSP_PER_SESSION * 2][UTIL_ID_LEN + 1];
    id_list l = {ids, 0};
    int rc = store_session_sockets(t, sid, collect_ids, &l);
    for (size_t i = 0; !rc && i < l.n; i++) {
        store_socket s;
        if (store_socket_get(t, ids[i], &s)) continue;
        rc = drop_socket(t, &s, socketio_disconnect_reason(close_reason), recoverable(close_reason),
                         acked, NULL);
    }
    return rc;
}

/* ---- CONNECT ------------------------------------------------------------ */

/* The request that opened the session, for handlers; NULL when unknown. */
static cJSON *handshake_of(store_txn *t, const char *sid) {
    const char *j;
    size_t n;
    if (store_handshake_get(t, sid, &j, &n)) return NULL;
    return json_parse(j, n);
}

int socketio_refuse(store_txn *t, const char *sid, const char *nsp, const char *message,
                    const cJSON *data, uint64_t *seq) {
    sio_packet p = {.type = SIO_CONNECT_ERROR, .id = -1};
    snprintf(p.nsp, sizeof p.nsp, "%s", nsp);
    p.data = cJSON_CreateObject();
    if (!p.data) return -ENOMEM;
    cJSON_AddStringToObject(p.data, "message", message);
    if (data) cJSON_AddItemToObject(p.data, "data", cJSON_Duplicate(data, 1));
    int rc = socketio_send(t, sid, &p, seq);
    sio_packet_clear(&p);
    return rc;
}

typedef struct find_nsp {
    const char *nsp;
    store_socket *out;
    int found;
} find_nsp;

static int find_nsp_cb(void *arg, const store_socket *s) {
    find_nsp *f = arg;
    if (strcmp(s->nsp, f->nsp)) return 0;
    *f->out = *s;
    f->out->data = NULL; /* borrowed data would not outlive later writes */
    f->out->data_len = 0;
    f->found = 1;
    return 1;
}

/* The CONNECT reply: {"sid":id} and, with recovery, {"pid":pid}. */
static int connect_reply(store_txn *t, const char *sid, const store_socket *so, uint64_t *seq) {
    sio_packet reply = {.type = SIO_CONNECT, .id = -1};
    strcpy(reply.nsp, so->nsp);
    reply.data = cJSON_CreateObject();
    if (!reply.data) return -ENOMEM;
    cJSON_AddStringToObject(reply.data, "sid", so->id);
    if (so->pid[0]) cJSON_AddStringToObject(reply.data, "pid", so->pid);
    int rc = socketio_send(t, sid, &reply, seq);
    sio_packet_clear(&reply);
    return rc;
}

/* One more socket in the session: its count, and it connected once. */
static int session_gained_socket(store_txn *t, const char *sid) {
    store_session ss;
    int rc = store_session_get(t, sid, &ss);
    if (rc) return rc;
    ss.nsockets++;
    ss.ever_connected = 1;
    stats_add(STATS_CONNECTS, 1);
    return store_session_put(t, sid, &ss);
}

/* The "connection" event for application logic: d = {"auth","data"} of the
 * socket, with the session's handshake added (d is modified). */
static int connection_event(store_txn *t, const char *sid, const store_socket *so, cJSON *d) {
    cJSON *hs = handshake_of(t, sid);
    if (hs) cJSON_AddItemToObject(d, "handshake", hs);
    int rc = inbox_socket_event(t, "connection", so, d, NULL);
    if (log_enabled(LOG_DEBUG)) {
        char esc[200];
        log_debug("socket %s %s %s (session %s)", so->id,
                  cJSON_GetObjectItemCaseSensitive(d, "recovered") ? "recovered in" : "connected to",
                  log_escape(esc, sizeof esc, so->nsp, strlen(so->nsp)), sid);
    }
    return rc;
}

/* ---- connection state recovery ---------------------------------------------
 * A socket that can be recovered (connection_state_recovery was on when it
 * connected: it has a pid) is detached from its session when the session
 * ends for any reason but a protocol violation, and keeps its rooms.  A
 * CONNECT carrying {pid, offset} in its auth within
 * max_disconnection_duration attaches it to the new session: the broadcast
 * events it missed after that offset (socketio_emit gave each its seq as
 * the offset) are queued for the session, in log order, then the CONNECT
 * reply with the same id and pid.  All or nothing: when the log no longer
 * holds every record after the offset, the client gets a new socket.  A
 * socket still attached to another session (its process died and nobody
 * noticed yet, or the client left a polling session behind) is taken over:
 * the pid is the client's secret. */

#define REPLAY_BATCH (1u << 20) /* bytes of missed records copied at a time */

typedef struct missed_batch {
    buf b;         /* per record: u32 nframes, u32 len, its frames section */
    uint64_t last; /* the seq of the last record copied */
} missed_batch;

static int missed_copy(void *arg, uint64_t seq, const logrec *r) {
    missed_batch *m = arg;
    uint32_t hdr[2] = {(uint32_t)r->nframes, (uint32_t)(r->end - r->frames)};
    int rc = buf_append(&m->b, hdr, sizeof hdr);
    if (!rc) rc = buf_append(&m->b, r->frames, hdr[1]);
    if (rc) return rc;
    m->last = seq;
    return m->b.len >= REPLAY_BATCH; /* 1: append these, then go on from last */
}

/* Queues for session sid copies of the records socket so missed in
 * (after, until] (copied out of the log before they are appended to it). */
static int replay_missed(store_txn *t, const store_socket *so, const char *sid, uint64_t after,
                         uint64_t until, uint64_t *seq) {
    missed_batch m = {BUF_INIT, 0};
    int rc, more;
    do {
        buf_reset(&m.b);
        rc = reader_missed(t, so, after, until, missed_copy, &m);
        if (rc < 0) break;
        more = rc == 1;
        rc = 0;
        for (size_t at = 0; !rc && at < m.b.len;) {
            uint32_t hdr[2];
            memcpy(hdr, m.b.data + at, sizeof hdr);
            at += sizeof hdr;
            rc = logrec_append_session_frames(t, sid, m.b.data + at, hdr[1], hdr[0], seq);
            at += hdr[1];
        }
        after = m.last;
    } while (!rc && more);
    buf_free(&m.b);
    return rc;
}

/* The offset a client sends: the decimal seq of the last event it got. */
static int parse_offset(const cJSON *o, uint64_t *out) {
    if (!cJSON_IsString(o)) return -1;
    const char *p = o->valuestring;
    uint64_t v = 0;
    if (!*p || strlen(p) > 19) return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

/* Recovers the socket of auth's {pid, offset} into session sid: 1 when done,
 * 0 when it cannot be (the caller connects a new socket), <0 on errors. */
static int recover(server *srv, store_txn *t, const char *sid, const char *nsp, const cJSON *auth,
                   uint64_t *seq) {
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(auth, "pid");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(auth, "offset");
    char id[UTIL_ID_LEN + 1];
    store_socket so;
    if (!srv->cfg.connection_state_recovery || !cJSON_IsString(pid) ||
        store_pid_socket(t, pid->valuestring, id) || store_socket_get(t, id, &so) ||
        strcmp(so.nsp, nsp) || (!so.detached_ms && !strcmp(so.sid, sid)))
        return 0;
    if (so.detached_ms && util_now_ms() - so.detached_ms > srv->cfg.max_disconnection_duration)
        return 0; /* the reaper deletes it soon */
    /* No offset: the client got no event yet, so everything since it connected. */
    uint64_t after = so.created_seq, first = 0, head = 0;
    if (offset && parse_offset(offset, &after)) return 0;
    int rc = store_log_bounds(t, &first, &head);
    if (rc) return rc;
    if (after > head) return 0;
    /* What reached the client is known up to delivered: nothing for it with
     * an offset lies between the client's offset and there (else the client
     * would have sent a later offset), so an old offset of a quiet client
     * needs nothing of what the log no longer holds. */
    uint64_t delivered = so.delivered_seq;
    store_session prev;
    if (!so.detached_ms && store_session_get(t, so.sid, &prev) == 0 && prev.acked >= so.attach_seq &&
        prev.acked > delivered)
        delivered = prev.acked;
    if (delivered > after && delivered <= head) after = delivered;
    if (after + 1 < first) return 0; /* not all there: no partial replay */
    cJSON *d = cJSON_CreateObject(), *old = json_parse(so.data, so.data_len);
    so.data = NULL; /* borrowed from a record about to move */
    so.data_len = 0;
    if (!d) { cJSON_Delete(old); return -ENOMEM; }
    cJSON_AddItemToObject(d, "auth", auth ? cJSON_Duplicate(auth, 1) : cJSON_CreateObject());
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(old, "data");
    if (data) cJSON_AddItemToObject(d, "data", data);
    cJSON_AddTrueToObject(d, "recovered");
    cJSON_Delete(old);

    rc = replay_missed(t, &so, sid, after, head, seq);
    if (!rc && !so.detached_ms) rc = session_lost_socket(t, so.sid); /* taken over */
    if (!rc) rc = store_log_bounds(t, NULL, &head);
    if (!rc) rc = store_socket_attach(t, so.id, sid, head); /* live delivery from here */
    strcpy(so.sid, sid);
    if (!rc) rc = session_gained_socket(t, sid);
    if (!rc) rc = connect_reply(t, sid, &so, seq);
    if (!rc) rc = connection_event(t, sid, &so, d);
    cJSON_Delete(d);
    return rc ? rc : 1;
}

/* ---- accept --------------------------------------------------------------- */

int socketio_accept(server *srv, store_txn *t, const char *sid, const char *nsp, const char *id,
                    const cJSON *auth, const cJSON *data, uint64_t *seq) {
    store_session ss;
    int rc = store_session_get(t, sid, &ss);
    if (rc == STORE_NOTFOUND || (rc == 0 && ss.state == STORE_S_CLOSED)) return 0;
    if (rc) return rc;
    if (strlen(nsp) > SIO_NSP_MAX) return -EINVAL;
    store_socket so;
    find_nsp f = {nsp, &so, 0};
    rc = store_session_sockets(t, sid, find_nsp_cb, &f);
    if (rc < 0) return rc;
    if (f.found) return 0;
    if (ss.nsockets >= SOCKETIO_MAX_NSP_PER_SESSION) /* CONNECTs that waited for auth */
        return socketio_refuse(t, sid, nsp, "Too many namespaces", NULL, seq);
    if ((rc = recover(srv, t, sid, nsp, auth, seq))) return rc < 0 ? rc : 0;
    memset(&so, 0, sizeof so);
    if (id && util_is_id(id, strlen(id))) strcpy(so.id, id);
    else if ((rc = util_random_id(so.id))) return rc;
    if (srv->cfg.connection_state_recovery && (rc = util_random_id(so.pid))) return rc;
    strcpy(so.sid, sid);
    strcpy(so.nsp, nsp);
    if ((rc = store_log_bounds(t, NULL, &so.created_seq))) return rc;
    so.created_ms = util_now_ms();
    /* The socket's data: {"auth": the CONNECT payload, "data": what auth returned} */
    cJSON *d = cJSON_CreateObject();
    if (!d) return -ENOMEM;
    cJSON_AddItemToObject(d, "auth", auth ? cJSON_Duplicate(auth, 1) : cJSON_CreateObject());
    if (data) cJSON_AddItemToObject(d, "data", cJSON_Duplicate(data, 1));
    char *txt = json_print(d);
    if (!txt) { cJSON_Delete(d); return -ENOMEM; }
    so.data = txt;
    so.data_len = strlen(txt);
    rc = store_socket_put(t, &so);
    free(txt);
    so.data = NULL;
    so.data_len = 0;
    if (!rc) rc = rooms_join(t, &so, so.id);
    if (!rc) rc = session_gained_socket(t, sid);
    if (!rc) rc = connect_reply(t, sid, &so, seq);
    if (!rc) rc = connection_event(t, sid, &so, d);
    cJSON_Delete(d);
    return rc;
}

static int on_connect(server *srv, store_txn *t, const char *sid, store_session *s,
                      sio_packet *pkt, uint64_t *seq) {
    const cfg_nsp *n = cfg_nsp_find(&srv->cfg, pkt->nsp);
    if (!n) return socketio_refuse(t, sid, pkt->nsp, "Invalid namespace", NULL, seq);
    if (s->nsockets >= SOCKETIO_MAX_NSP_PER_SESSION)
        return socketio_refuse(t, sid, pkt->nsp, "Too many namespaces", NULL, seq);
    /* The caller stores s after us: keep it in step with socketio_accept's writes. */
    int rc = store_session_put(t, sid, s);
    if (rc) return rc;
    int skip = srv->cfg.recovery_skip_middlewares;
    /* The admin namespace with a password: stated's admin thread checks the
     * login (stated/admin.h) as an auth handler would, outside any write
     * transaction (bcrypt takes tens of ms). */
    int admin = cfg_is_admin_nsp(&srv->cfg, pkt->nsp);
    int middleware = admin ? !srv->cfg.admin.auth_none : cfg_nsp_get(n, "auth") != NULL;
    if (admin) skip = 0; /* no connection state recovery for the admin namespace */
    if (!middleware) {
        rc = socketio_accept(srv, t, sid, pkt->nsp, NULL, pkt->data, NULL, seq);
    } else if (!skip || !(rc = recover(srv, t, sid, pkt->nsp, pkt->data, seq))) {
        /* Middleware: the dispatcher runs the auth handler, then accepts or
         * refuses with this provisional id (and recovers then, without
         * recovery_skip_middlewares). */
        store_socket pending;
        memset(&pending, 0, sizeof pending);
        if ((rc = util_random_id(pending.id))) return rc;
        strcpy(pending.sid, sid);
        strcpy(pending.nsp, pkt->nsp);
        cJSON *x = cJSON_CreateObject();
        if (!x) return -ENOMEM;
        cJSON_AddItemToObject(x, "auth", pkt->data ? cJSON_Duplicate(pkt->data, 1) : cJSON_CreateObject());
        cJSON *hs = handshake_of(t, sid);
        if (hs) cJSON_AddItemToObject(x, "handshake", hs);
        rc = inbox_socket_event(t, "connect", &pending, x, seq);
        cJSON_Delete(x);
    }
    if (rc > 0) rc = 0; /* recovered */
    if (!rc) rc = store_session_get(t, sid, s);
    return rc;
}

/* ---- packets ------------------------------------------------------------ */

/* One decoded packet of the session: to the namespace's socket. */
static int route_packet(server *srv, store_txn *t, const char *sid, store_session *s,
                        sio_packet *pkt, uint64_t *seq) {
    store_socket so;
    find_nsp f = {pkt->nsp, &so, 0};
    int rc = store_session_sockets(t, sid, find_nsp_cb, &f);
    if (rc < 0) return rc;
    if (pkt->type == SIO_CONNECT) {
        if (f.found) return SESSION_CLOSE_PARSE_ERROR; /* connected twice: Node closes */
        return on_connect(srv, t, sid, s, pkt, seq);
    }
    if (!f.found || pkt->type == SIO_CONNECT_ERROR) return SESSION_CLOSE_PARSE_ERROR;
    if (pkt->type == SIO_DISCONNECT) {
        rc = drop_socket(t, &so, "client namespace disconnect", 0, 0, seq);
        if (!rc) rc = store_session_get(t, sid, s);
        return rc;
    }
    /* EVENT / ACK: for application logic. */
    cJSON *x = cJSON_CreateObject();
    if (!x) return -ENOMEM;
    const char *type = "ack";
    if (pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT) {
        type = "event";
        cJSON *args = cJSON_Duplicate(pkt->data, 1);
        cJSON *name = cJSON_DetachItemFromArray(args, 0);
        cJSON_AddItemToObject(x, "event", name);
        cJSON_AddItemToObject(x, "args", args);
        if (pkt->id >= 0) cJSON_AddNumberToObject(x, "ack", (double)pkt->id);
    } else {
        if (pkt->id < 0 || pkt->id > SIO_ID_MAX) { /* an ack for nothing: ignored, as Node does */
            cJSON_Delete(x);
            return 0;
        }
        cJSON_AddNumberToObject(x, "id", (double)pkt->id);
        cJSON_AddItemToObject(x, "args", cJSON_Duplicate(pkt->data, 1));
    }
    rc = srv->on_event ? srv->on_event(srv->on_event_arg, srv, t, type, &so, x, seq) : 0;
    if (rc == 0) rc = inbox_socket_event(t, type, &so, x, NULL);
    else if (rc == 1) rc = store_session_get(t, sid, s); /* its actions may have changed it */
    cJSON_Delete(x);
    return rc;
}

/* ---- binary reassembly -------------------------------------------------- */
/* A partial packet in the store: u32 expected, u32 count, u32 text_len, text,
 * then per attachment u32 len + bytes. */

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static int finish_binary(server *srv, store_txn *t, const char *sid, store_session *s,
                         const uint8_t *rec, size_t len, uint64_t *seq) {
    uint32_t expected = rd32(rec), count = rd32(rec + 4), tl = rd32(rec + 8);
    const uint8_t *p = rec + 12;
    sio_packet pkt;
    if (sio_decode((const char *)p, tl, &pkt)) return SESSION_CLOSE_PARSE_ERROR;
    p += tl;
    sio_bin bins[SIO_MAX_ATTACHMENTS];
    for (uint32_t i = 0; i < count && i < SIO_MAX_ATTACHMENTS; i++) {
        bins[i].len = rd32(p);
        bins[i].data = p + 4;
        p += 4 + bins[i].len;
    }
    (void)len;
    int rc = expected == count ? sio_attach(&pkt, bins, count) : -EINVAL;
    if (rc) {
        sio_packet_clear(&pkt);
        return SESSION_CLOSE_PARSE_ERROR;
    }
    rc = route_packet(srv, t, sid, s, &pkt, seq);
    sio_packet_clear(&pkt);
    return rc;
}

int socketio_on_message(server *srv, store_txn *t, const char *sid, store_session *s,
                        const uint8_t *data, size_t len, int binary, uint64_t *seq) {
    const void *pv = NULL;
    size_t plen = 0;
    int rc = store_partial_get(t, sid, &pv, &plen);
    int have_partial = rc == 0;
    if (rc && rc != STORE_NOTFOUND) return rc;

    if (binary) {
        if (!have_partial || plen < 12) return SESSION_CLOSE_PARSE_ERROR;
        if (plen + 4 + len > (size_t)srv->cfg.max_http_buffer_size + 64) return SESSION_CLOSE_PARSE_ERROR;
        buf b = BUF_INIT;
        rc = buf_append(&b, pv, plen);
        uint32_t l = (uint32_t)len;
        if (!rc) rc = buf_append(&b, &l, 4);
        if (!rc) rc = buf_append(&b, data, len);
        if (rc) { buf_free(&b); return rc; }
        uint32_t expected = rd32((uint8_t *)b.data), count = rd32((uint8_t *)b.data + 4) + 1;
        memcpy(b.data + 4, &count, 4);
        if (count == expected) {
            rc = store_partial_del(t, sid);
            if (!rc) rc = finish_binary(srv, t, sid, s, (uint8_t *)b.data, b.len, seq);
        } else {
            rc = store_partial_put(t, sid, b.data, b.len);
        }
        buf_free(&b);
        return rc;
    }
    if (have_partial) return SESSION_CLOSE_PARSE_ERROR; /* text while attachments are due */

    sio_packet pkt;
    if (sio_decode((const char *)data, len, &pkt)) return SESSION_CLOSE_PARSE_ERROR;
    if (pkt.attachments > 0) {
        /* Keep the text until its attachments have arrived. */
        uint32_t hdr[3] = {(uint32_t)pkt.attachments, 0, (uint32_t)len};
        sio_packet_clear(&pkt);
        buf b = BUF_INIT;
        rc = buf_append(&b, hdr, sizeof hdr);
        if (!rc) rc = buf_append(&b, data, len);
        if (!rc) rc = store_partial_put(t, sid, b.data, b.len);
        buf_free(&b);
        return rc;
    }
    rc = route_packet(srv, t, sid, s, &pkt, seq);
    sio_packet_clear(&pkt);
    return rc;
}

/* wire: the Redis adapter's messages (see wire.h). */
#include "cluster/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/mpack.h"
#include "proto/sio_parser.h"

/* ---- channels ---------------------------------------------------------------------- */

int wire_channel(buf *out, const char *prefix, int kind, const char *nsp, const char *last) {
    const char *mid = kind == WIRE_CH_REQUEST ? "-request#" : kind == WIRE_CH_RESPONSE ? "-response#" : "#";
    int rc = buf_printf(out, "%s%s%s#", prefix, mid, nsp);
    if (!rc && last) rc = buf_printf(out, "%s#", last);
    return rc;
}

int wire_request_nsp(const char *prefix, const char *ch, size_t len, char *nsp, size_t n) {
    size_t pl = strlen(prefix), ml = strlen("-request#");
    if (len < pl + ml + 2 || memcmp(ch, prefix, pl) || memcmp(ch + pl, "-request#", ml) ||
        ch[len - 1] != '#')
        return -EINVAL;
    size_t l = len - pl - ml - 1;
    if (l + 1 > n || memchr(ch + pl + ml, '\0', l)) return -EINVAL;
    memcpy(nsp, ch + pl + ml, l);
    nsp[l] = 0;
    return 0;
}

int wire_broadcast_room(const char *prefix, const char *nsp, const char *ch, size_t len,
                        char *room, size_t n) {
    size_t pl = strlen(prefix), nl = strlen(nsp);
    if (len < pl + nl + 2 || memcmp(ch, prefix, pl) || ch[pl] != '#' ||
        memcmp(ch + pl + 1, nsp, nl) || ch[pl + 1 + nl] != '#')
        return 0;
    size_t at = pl + nl + 2;
    if (at == len) return 1;
    if (ch[len - 1] != '#' || len - 1 - at + 1 > n || len - 1 == at) return 0;
    memcpy(room, ch + at, len - 1 - at);
    room[len - 1 - at] = 0;
    return 2;
}

/* ---- outbound broadcasts ----------------------------------------------------------------- */

/* The rooms of a record section as a JSON array of strings. */
static cJSON *room_array(const logrec *r, int except) {
    cJSON *a = cJSON_CreateArray();
    logrec_room room;
    size_t pos = 0;
    while (a && logrec_room_next(r, except, &pos, &room)) {
        char name[STORE_ROOM_MAX + 1];
        memcpy(name, room.name, room.len);
        name[room.len] = 0;
        cJSON_AddItemToArray(a, cJSON_CreateString(name));
    }
    return a;
}

/* The event packet of a record's frames (text, then attachments). */
static int record_packet(const logrec *r, sio_packet *pkt) {
    size_t pos = 0;
    logrec_frame text, f;
    if (!logrec_frame_next(r, &pos, &text) || text.binary) return -EINVAL;
    if (sio_decode((const char *)text.data, text.len, pkt)) return -EINVAL;
    sio_bin bins[SIO_MAX_ATTACHMENTS];
    size_t n = 0;
    while (logrec_frame_next(r, &pos, &f) && n < SIO_MAX_ATTACHMENTS)
        bins[n++] = (sio_bin){f.data, f.len};
    if ((pkt->type != SIO_EVENT && pkt->type != SIO_BINARY_EVENT) || sio_attach(pkt, bins, n)) {
        sio_packet_clear(pkt);
        return -EINVAL;
    }
    return 0;
}

int wire_broadcast_encode(buf *out, buf *channel, const char *prefix, const char *uid,
                          const logrec *r) {
    if (r->kind != LOGREC_BROADCAST || r->nsp_len > SIO_NSP_MAX) return -EINVAL;
    sio_packet pkt;
    if (record_packet(r, &pkt)) return -EINVAL;
    /* our recovery offset means nothing to other servers: each adds its own */
    if ((r->flags & LOGREC_F_OFFSET) && cJSON_GetArraySize(pkt.data) > 1)
        cJSON_DeleteItemFromArray(pkt.data, cJSON_GetArraySize(pkt.data) - 1);
    cJSON *msg = cJSON_CreateArray(), *packet = cJSON_CreateObject(), *opts = cJSON_CreateObject();
    cJSON *rooms = room_array(r, 0);
    /* Each item belongs to its container once added (cJSON), or is freed here. */
    if (!msg || !packet || !opts || !rooms) {
        cJSON_Delete(msg), cJSON_Delete(packet), cJSON_Delete(opts), cJSON_Delete(rooms);
        sio_packet_clear(&pkt);
        return -ENOMEM;
    }
    cJSON_AddItemToArray(msg, cJSON_CreateString(uid));
    cJSON_AddItemToArray(msg, packet);
    cJSON_AddItemToArray(msg, opts);
    cJSON_AddNumberToObject(packet, "type", SIO_EVENT); /* Node's encoder finds the binary */
    cJSON_AddItemToObject(packet, "data", pkt.data);
    pkt.data = NULL;
    cJSON_AddStringToObject(packet, "nsp", pkt.nsp);
    cJSON_AddItemToObject(opts, "rooms", rooms);
    cJSON_AddItemToObject(opts, "except", room_array(r, 1));
    cJSON *flags = cJSON_CreateObject();
    if (flags && (r->flags & LOGREC_F_VOLATILE)) cJSON_AddTrueToObject(flags, "volatile");
    cJSON_AddItemToObject(opts, "flags", flags);
    int rc = mpack_encode(out, msg);
    if (!rc) {
        const char *only = cJSON_GetArraySize(rooms) == 1 ? cJSON_GetArrayItem(rooms, 0)->valuestring : NULL;
        rc = wire_channel(channel, prefix, WIRE_CH_BROADCAST, pkt.nsp, only);
    }
    cJSON_Delete(msg);
    sio_packet_clear(&pkt);
    return rc;
}

/* ---- inbound broadcasts ------------------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON array of room names (or absent: none) as a malloc'ed array. */
static int names(const cJSON *a, const char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!a || cJSON_IsNull(a)) return 0;
    if (!cJSON_IsArray(a)) return -EINVAL;
    size_t cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt > LOGREC_MAX_ROOMS) return -EINVAL;
    if (!cnt) return 0;
    *out = calloc(cnt, sizeof **out);
    if (!*out) return -ENOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        /* Node allows numbers as room names too: they travel as numbers */
        if (!cJSON_IsString(it) || !*it->valuestring || strlen(it->valuestring) > STORE_ROOM_MAX) {
            free(*out);
            *out = NULL;
            *n = 0;
            return -EINVAL;
        }
        (*out)[(*n)++] = it->valuestring;
    }
    return 0;
}

int wire_opts(const cJSON *opts, const char ***rooms, size_t *nrooms, const char ***except,
              size_t *nexcept) {
    *rooms = *except = NULL;
    *nrooms = *nexcept = 0;
    if (opts && !cJSON_IsObject(opts)) return -EINVAL;
    int rc = names(cJSON_GetObjectItemCaseSensitive(opts, "rooms"), rooms, nrooms);
    if (!rc && (rc = names(cJSON_GetObjectItemCaseSensitive(opts, "except"), except, nexcept))) {
        free(*rooms);
        *rooms = NULL;
        *nrooms = 0;
    }
    return rc;
}

void wire_bcast_clear(wire_bcast *b) {
    cJSON_Delete(b->msg);
    free(b->rooms);
    free(b->except);
    memset(b, 0, sizeof *b);
}

int wire_broadcast_decode(const void *data, size_t len, wire_bcast *out) {
    memset(out, 0, sizeof *out);
    out->msg = mpack_decode(data, len);
    cJSON *m = out->msg;
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) < 3) goto bad;
    const cJSON *uid = cJSON_GetArrayItem(m, 0), *packet = cJSON_GetArrayItem(m, 1),
                *opts = cJSON_GetArrayItem(m, 2);
    if (!cJSON_IsString(uid) || !cJSON_IsObject(packet)) goto bad;
    out->uid = uid->valuestring;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(packet, "type");
    if (!cJSON_IsNumber(type) || (type->valueint != SIO_EVENT && type->valueint != SIO_BINARY_EVENT))
        goto bad;
    out->nsp = str_of(packet, "nsp");
    if (!out->nsp) out->nsp = "/"; /* as the adapter reads it */
    if (out->nsp[0] != '/' || strlen(out->nsp) > SIO_NSP_MAX) goto bad;
    out->data = cJSON_GetObjectItemCaseSensitive(packet, "data");
    if (!cJSON_IsArray(out->data) || !cJSON_IsString(cJSON_GetArrayItem(out->data, 0))) goto bad;
    if (wire_opts(opts, &out->rooms, &out->nrooms, &out->except, &out->nexcept)) goto bad;
    const cJSON *flags = cJSON_GetObjectItemCaseSensitive(opts, "flags");
    out->local = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(flags, "local"));
    out->volatile_ = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(flags, "volatile"));
    return 0;
bad:
    wire_bcast_clear(out);
    return -EINVAL;
}

/* ---- requests ------------------------------------------------------------------------------ */

cJSON *wire_decode(const void *data, size_t len) {
    const char *s = data;
    if (len && s[0] == '{') { /* one JSON object and nothing after it */
        cJSON *j = json_parse(s, len);
        if (cJSON_IsObject(j)) return j;
        cJSON_Delete(j);
        return NULL;
    }
    cJSON *j = mpack_decode(data, len);
    if (cJSON_IsObject(j)) return j;
    cJSON_Delete(j);
    return NULL;
}

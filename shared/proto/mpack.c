/* mpack: MessagePack <-> cJSON (see mpack.h). */
#include "proto/mpack.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "base/b64.h"
#include "proto/json.h"
#include "proto/sio_parser.h"

/* ---- bounds ----------------------------------------------------------------------
 * Walks one value without allocating: 0 and *end past it, or -EINVAL.  A
 * container's declared count must fit in what remains (every element takes
 * at least one byte), so msgpack-c never allocates more than the input
 * justifies. */

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static int walk(const uint8_t *p, const uint8_t *end, int depth, const uint8_t **out) {
    if (p >= end) return -EINVAL;
    uint8_t c = *p++;
    int container = (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
    if (container && depth >= MPACK_MAX_DEPTH) return -EINVAL;
    size_t rem = (size_t)(end - p), body = 0, items = 0;
    int head = 0; /* bytes of the length field */
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        /* fixint, nil, bool */
    } else if (c >= 0x80 && c <= 0x8f) {
        items = (size_t)(c & 0x0f) * 2;
    } else if (c >= 0x90 && c <= 0x9f) {
        items = c & 0x0f;
    } else if (c >= 0xa0 && c <= 0xbf) {
        body = c & 0x1f;
    } else {
        switch (c) {
        case 0xc4: case 0xd9: head = 1; break;         /* bin8, str8 */
        case 0xc5: case 0xda: head = 2; break;         /* bin16, str16 */
        case 0xc6: case 0xdb: head = 4; break;         /* bin32, str32 */
        case 0xc7: head = 1; body = 1; break;          /* ext8: + type byte */
        case 0xc8: head = 2; body = 1; break;
        case 0xc9: head = 4; body = 1; break;
        case 0xca: body = 4; break;                    /* float32 */
        case 0xcb: body = 8; break;                    /* float64 */
        case 0xcc: case 0xd0: body = 1; break;
        case 0xcd: case 0xd1: body = 2; break;
        case 0xce: case 0xd2: body = 4; break;
        case 0xcf: case 0xd3: body = 8; break;
        case 0xd4: body = 2; break;                    /* fixext: type + data */
        case 0xd5: body = 3; break;
        case 0xd6: body = 5; break;
        case 0xd7: body = 9; break;
        case 0xd8: body = 17; break;
        case 0xdc: case 0xde: head = 2; break;         /* array16, map16 */
        case 0xdd: case 0xdf: head = 4; break;         /* array32, map32 */
        default: return -EINVAL;                       /* 0xc1: never used */
        }
        if (rem < (size_t)head) return -EINVAL;
        uint64_t n = be(p, head);
        p += head;
        rem -= (size_t)head;
        if (c == 0xdc || c == 0xdd) items = n <= rem ? (size_t)n : SIZE_MAX;
        else if (c == 0xde || c == 0xdf) items = n <= rem / 2 ? (size_t)n * 2 : SIZE_MAX;
        else if (n > rem) return -EINVAL;
        else body += (size_t)n;
    }
    if (items == SIZE_MAX || items > rem || body > rem) return -EINVAL;
    p += body;
    for (size_t i = 0; i < items; i++)
        if (walk(p, end, depth + 1, &p)) return -EINVAL;
    *out = p;
    return 0;
}

/* ---- decoding ----------------------------------------------------------------------- */

static cJSON *to_json(const msgpack_object *o);

static cJSON *binary_marker(const char *data, size_t len) {
    buf b = BUF_INIT;
    cJSON *m = NULL;
    if (b64_encode(&b, data, len) == 0 && (m = cJSON_CreateObject()))
        cJSON_AddStringToObject(m, SIO_BINARY_KEY, b.data ? b.data : "");
    buf_free(&b);
    return m;
}

/* A str as a string in the internal form (proto/json.h: NUL and bytes
 * that are not UTF-8 translated). */
static cJSON *string_of(const char *s, size_t len) {
    return json_string(len ? s : "", len); /* an empty str may come with a NULL pointer */
}

/* What JavaScript's String() makes of a decoded value, as an object key
 * (notepack.io gives any key to JS as it is): a string as itself, numbers
 * and literals as JS prints them, an array as its elements joined with ','
 * (null as ""), a map "[object Object]", bytes as their UTF-8 text.  Its
 * length stays within the input's: no escaping, nothing nested repeated. */
static int key_text(buf *out, const msgpack_object *k) {
    cJSON *s = NULL;
    int rc = 0;
    switch (k->type) {
    case MSGPACK_OBJECT_NIL: return buf_puts(out, "null");
    case MSGPACK_OBJECT_BOOLEAN: return buf_puts(out, k->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        double d = k->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)k->via.u64
                   : k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)k->via.i64 : k->via.f64;
        if (d != d) return buf_puts(out, "NaN");
        if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
            return buf_puts(out, d > 0 ? "Infinity" : "-Infinity");
        s = cJSON_CreateNumber(d);
        rc = s ? json_write(out, s, NULL, NULL) : -ENOMEM;
        cJSON_Delete(s);
        return rc;
    }
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        s = string_of(k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : k->via.bin.ptr,
                      k->type == MSGPACK_OBJECT_STR ? k->via.str.size : k->via.bin.size);
        rc = s ? buf_puts(out, s->valuestring) : -ENOMEM;
        cJSON_Delete(s);
        return rc;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; !rc && i < k->via.array.size; i++) {
            const msgpack_object *e = &k->via.array.ptr[i];
            if (i) rc = buf_putc(out, ',');
            if (!rc && e->type != MSGPACK_OBJECT_NIL) rc = key_text(out, e);
        }
        return rc;
    default: return buf_puts(out, "[object Object]");
    }
}

static char *key_of(const msgpack_object *k) {
    buf b = BUF_INIT;
    if (key_text(&b, k) || buf_append(&b, "", 0)) { /* "" for an empty array: still a string */
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

static cJSON *container(const msgpack_object *o) {
    int map = o->type == MSGPACK_OBJECT_MAP;
    cJSON *j = map ? cJSON_CreateObject() : cJSON_CreateArray();
    uint32_t n = map ? o->via.map.size : o->via.array.size;
    for (uint32_t i = 0; j && i < n; i++) {
        const msgpack_object *v = map ? &o->via.map.ptr[i].val : &o->via.array.ptr[i];
        cJSON *item = to_json(v);
        char *key = map ? key_of(&o->via.map.ptr[i].key) : NULL;
        if (!item || (map && !key)) {
            cJSON_Delete(item);
            free(key);
            cJSON_Delete(j);
            return NULL;
        }
        if (map) {
            cJSON_DeleteItemFromObjectCaseSensitive(j, key); /* the last one wins, as in JS */
            cJSON_AddItemToObject(j, key, item);
        } else {
            cJSON_AddItemToArray(j, item);
        }
        free(key);
    }
    return j;
}

static cJSON *to_json(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: return string_of(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return binary_marker(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: return container(o);
    default: return cJSON_CreateNull(); /* ext */
    }
}

cJSON *mpack_decode(const void *data, size_t len) {
    const uint8_t *p = data, *end;
    if (!len || walk(p, p + len, 0, &end) || end != p + len) return NULL;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cJSON *j = NULL;
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        j = to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return j;
}

/* ---- encoding ------------------------------------------------------------------------- */

static int write_cb(void *data, const char *bytes, size_t len) {
    return buf_append(data, bytes, len) ? -1 : 0;
}

static int pack(msgpack_packer *pk, const cJSON *v, int depth);

/* A string's raw bytes (proto/json.h) as a str. */
static int pack_str(msgpack_packer *pk, const char *s) {
    size_t l = strlen(s);
    char stack[256], *raw = l < sizeof stack ? stack : malloc(l + 1);
    if (!raw) return -ENOMEM;
    size_t n = json_bytes(s, raw);
    int rc = msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, raw, n) ? -ENOMEM : 0;
    if (raw != stack) free(raw);
    return rc;
}

/* {"$binary":"..."} alone: written as bin, not as a map. */
static int is_marker(const cJSON *v) {
    return cJSON_IsObject(v) && cJSON_GetArraySize(v) == 1 &&
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, SIO_BINARY_KEY));
}

static int pack_binary(msgpack_packer *pk, const cJSON *b64) {
    size_t l = strlen(b64->valuestring);
    uint8_t *bin = malloc(b64_decoded_max(l) + 1);
    if (!bin) return -ENOMEM;
    long n = b64_decode(bin, b64->valuestring, l);
    int rc = n < 0 ? -EINVAL
                   : msgpack_pack_bin(pk, (size_t)n) || msgpack_pack_bin_body(pk, bin, (size_t)n)
                         ? -ENOMEM
                         : 0;
    free(bin);
    return rc;
}

static int pack_number(msgpack_packer *pk, double d) {
    if (d == floor(d) && fabs(d) <= 9007199254740992.0)
        return d < 0 ? msgpack_pack_int64(pk, (int64_t)d) : msgpack_pack_uint64(pk, (uint64_t)d);
    return msgpack_pack_double(pk, d);
}

static int pack(msgpack_packer *pk, const cJSON *v, int depth) {
    const cJSON *it;
    int rc = 0;
    if (cJSON_IsNull(v)) return msgpack_pack_nil(pk) ? -ENOMEM : 0;
    if (cJSON_IsTrue(v)) return msgpack_pack_true(pk) ? -ENOMEM : 0;
    if (cJSON_IsFalse(v)) return msgpack_pack_false(pk) ? -ENOMEM : 0;
    if (cJSON_IsNumber(v)) return pack_number(pk, v->valuedouble) ? -ENOMEM : 0;
    if (cJSON_IsString(v)) return pack_str(pk, v->valuestring);
    if ((cJSON_IsArray(v) || cJSON_IsObject(v)) && depth >= MPACK_MAX_DEPTH && !is_marker(v))
        return -EINVAL;
    if (cJSON_IsArray(v)) {
        if (msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v))) return -ENOMEM;
        cJSON_ArrayForEach(it, v) if ((rc = pack(pk, it, depth + 1))) return rc;
        return 0;
    }
    if (!cJSON_IsObject(v)) return msgpack_pack_nil(pk) ? -ENOMEM : 0;
    if (is_marker(v)) return pack_binary(pk, cJSON_GetObjectItemCaseSensitive(v, SIO_BINARY_KEY));
    if (msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v))) return -ENOMEM;
    cJSON_ArrayForEach(it, v) {
        if ((rc = pack_str(pk, it->string))) return rc;
        if ((rc = pack(pk, it, depth + 1))) return rc;
    }
    return 0;
}

int mpack_encode(buf *out, const cJSON *v) {
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, write_cb);
    int rc = pack(&pk, v, 0);
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = 0;
    }
    return rc;
}

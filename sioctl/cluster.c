/* sioctl/cluster.c: the commands with --cluster, and emit --server-side:
 * one request of the Redis adapter's protocol to every server of the
 * cluster, this node included (cluster/client.h). */
#include "sioctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cluster/client.h"
#include "cluster/wire.h"
#include "proto/json.h"
#include "proto/sio_parser.h"

/* The namespace of a cluster command (no socket lookup: sockets may be on
 * other servers). */
static const char *nsp_of(server *srv, const opts *o, int *bad) {
    const char *nsp = o->tg.nsp ? o->tg.nsp : "/";
    *bad = nsp[0] != '/' || strlen(nsp) > SIO_NSP_MAX || !cfg_nsp_find(&srv->cfg, nsp);
    if (*bad) die(EXIT_USAGE, "unknown namespace '%s'", nsp);
    return nsp;
}

static int open_cluster(server *srv, const char *nsp, cluster_client **c) {
    char err[512];
    if (cluster_open(srv, nsp, c, err, sizeof err)) return die(EXIT_CLUSTER, "%s", err);
    return 0;
}

/* {rooms, except} of the command's --to / --except (and the acting socket). */
static cJSON *opts_json(const opts *o) {
    cJSON *j = cJSON_CreateObject(), *rooms = cJSON_AddArrayToObject(j, "rooms"),
          *except = cJSON_AddArrayToObject(j, "except");
    for (size_t i = 0; i < o->tg.nto; i++) cJSON_AddItemToArray(rooms, cJSON_CreateString(o->tg.to[i]));
    for (size_t i = 0; i < o->tg.nexcept; i++) cJSON_AddItemToArray(except, cJSON_CreateString(o->tg.except[i]));
    if (o->tg.self && o->tg.broadcast) cJSON_AddItemToArray(except, cJSON_CreateString(o->tg.self));
    else if (o->tg.self && !o->tg.nto && !o->all) cJSON_AddItemToArray(rooms, cJSON_CreateString(o->tg.self));
    return j;
}

/* "3 of 4 servers answered within 5000 ms; no answer from 1 of: a, b" */
static int report_missing(cluster_client *c, long want, long got, const cJSON *answered, long timeout_ms) {
    cJSON *names = NULL;
    cluster_servers(c, &names);
    char list[1024] = "";
    size_t o = 0;
    const cJSON *it, *a;
    cJSON_ArrayForEach(it, names) {
        int said = 0;
        cJSON_ArrayForEach(a, answered) said |= !strcmp(a->valuestring, it->valuestring);
        if (!said) o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s%s", o ? ", " : "", it->valuestring);
    }
    cJSON_Delete(names);
    return die(EXIT_TIMEOUT, "timeout: %ld of %ld server(s) answered within %ld ms%s%s", got, want,
               timeout_ms, o ? "; no answer from one of: " : "", list);
}

/* ---- sockets and rooms ---------------------------------------------------------------- */

typedef struct gather {
    long want, got;
    cJSON *sockets;  /* every server's */
    cJSON *answered; /* the uids of the servers that said theirs */
} gather;

static int gather_cb(void *arg, const cJSON *resp) {
    gather *g = arg;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(resp, "sockets"), *it;
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(resp, "uid");
    if (!cJSON_IsArray(s)) return 0;
    cJSON_ArrayForEach(it, s) cJSON_AddItemToArray(g->sockets, cJSON_Duplicate(it, 1));
    if (cJSON_IsString(uid)) cJSON_AddItemToArray(g->answered, cJSON_CreateString(uid->valuestring));
    return ++g->got >= g->want;
}

/* The rooms of every socket, aggregated: room -> [ids]. */
static cJSON *rooms_of(const cJSON *sockets, int all) {
    cJSON *rooms = cJSON_CreateObject();
    const cJSON *s, *r;
    cJSON_ArrayForEach(s, sockets) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id");
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "rooms")) {
            if (!cJSON_IsString(r) || !cJSON_IsString(id) || (!all && !strcmp(r->valuestring, id->valuestring)))
                continue;
            cJSON *m = cJSON_GetObjectItemCaseSensitive(rooms, r->valuestring);
            if (!m) m = cJSON_AddArrayToObject(rooms, r->valuestring);
            cJSON_AddItemToArray(m, cJSON_CreateString(id->valuestring));
        }
    }
    return rooms;
}

static void print_rooms(const cJSON *rooms, int json) {
    cJSON *out = cJSON_CreateArray();
    const cJSON *r, *m;
    cJSON_ArrayForEach(r, rooms) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "room", r->string);
            cJSON_AddNumberToObject(o, "size", cJSON_GetArraySize(r));
            cJSON_AddItemToObject(o, "members", cJSON_Duplicate(r, 1));
            cJSON_AddItemToArray(out, o);
            continue;
        }
        printf("%s\t%d\t", r->string, cJSON_GetArraySize(r));
        int i = 0;
        cJSON_ArrayForEach(m, r) printf("%s%s", i++ ? "," : "", m->valuestring);
        printf("\n");
    }
    if (json) print_json(out);
    cJSON_Delete(out);
}

static void print_sockets(const cJSON *sockets, const char *nsp, int json) {
    const cJSON *s, *r;
    if (json) {
        cJSON_ArrayForEach(s, sockets) cJSON_AddStringToObject((cJSON *)s, "nsp", nsp);
        print_json(sockets);
        return;
    }
    cJSON_ArrayForEach(s, sockets) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id");
        printf("%s\t%s\t", cJSON_IsString(id) ? id->valuestring : "?", nsp);
        int i = 0;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "rooms"))
            if (cJSON_IsString(r)) printf("%s%s", i++ ? "," : "", r->valuestring);
        printf("\n");
    }
}

/* sockets --cluster (fetchSockets) and rooms --cluster (from the same). */
int cluster_rooms_or_sockets(server *srv, opts *o) {
    int bad;
    const char *nsp = nsp_of(srv, o, &bad);
    if (bad) return EXIT_USAGE;
    cluster_client *c;
    int rc = open_cluster(srv, nsp, &c);
    if (rc) return rc;
    gather g = {cluster_servers(c, NULL), 0, cJSON_CreateArray(), cJSON_CreateArray()};
    cJSON *req = cJSON_CreateObject(), *opt = cJSON_AddObjectToObject(req, "opts");
    cJSON_AddNumberToObject(req, "type", WIRE_REMOTE_FETCH);
    cJSON *rooms = cJSON_AddArrayToObject(opt, "rooms");
    if (o->room) cJSON_AddItemToArray(rooms, cJSON_CreateString(o->room));
    cJSON_AddArrayToObject(opt, "except");
    char err[512];
    rc = g.want <= 0 ? 0 : cluster_ask(c, req, 0, gather_cb, &g, (int)o->timeout_ms, err, sizeof err);
    cJSON_Delete(req);
    if (rc < 0) rc = die(EXIT_CLUSTER, "%s", err);
    else if (rc > 0) rc = report_missing(c, g.want, g.got, g.answered, o->timeout_ms);
    if (rc != EXIT_CLUSTER) { /* what did answer is shown either way */
        if (o->cmd[0] == 's') print_sockets(g.sockets, nsp, o->json);
        else {
            cJSON *r = rooms_of(g.sockets, o->all);
            print_rooms(r, o->json);
            cJSON_Delete(r);
        }
    }
    cJSON_Delete(g.sockets);
    cJSON_Delete(g.answered);
    cluster_close(c);
    return rc;
}

/* ---- join, leave, disconnect ---------------------------------------------------------- */

/* socketsJoin / socketsLeave / disconnectSockets: every server applies them
 * (no answer in the adapter's protocol: the number of servers reached is
 * reported). */
int cluster_write(server *srv, opts *o) {
    int bad, join = !strcmp(o->cmd, "join"), leave = !strcmp(o->cmd, "leave");
    const char *nsp = nsp_of(srv, o, &bad);
    if (bad) return EXIT_USAGE;
    if ((join || leave) && !o->nargs) return die(EXIT_USAGE, "%s needs at least one ROOM", o->cmd);
    if (!join && !leave && o->nargs) return die(EXIT_USAGE, "disconnect takes no positional argument");
    for (int i = 0; i < o->nargs; i++)
        if (!*o->args[i] || strlen(o->args[i]) > STORE_ROOM_MAX)
            return die(EXIT_USAGE, "room names are 1 to %d bytes", STORE_ROOM_MAX);
    cluster_client *c;
    int rc = open_cluster(srv, nsp, &c);
    if (rc) return rc;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddNumberToObject(req, "type", join ? WIRE_REMOTE_JOIN : leave ? WIRE_REMOTE_LEAVE : WIRE_REMOTE_DISCONNECT);
    cJSON_AddItemToObject(req, "opts", opts_json(o));
    if (join || leave) {
        cJSON *rooms = cJSON_AddArrayToObject(req, "rooms");
        for (int i = 0; i < o->nargs; i++) cJSON_AddItemToArray(rooms, cJSON_CreateString(o->args[i]));
    } else {
        cJSON_AddBoolToObject(req, "close", o->close);
    }
    long servers = cluster_servers(c, NULL);
    char err[512];
    rc = cluster_ask(c, req, 0, NULL, NULL, 0, err, sizeof err);
    cJSON_Delete(req);
    cluster_close(c);
    if (rc) return die(EXIT_CLUSTER, "%s", err);
    if (o->json) printf("{\"servers\":%ld}\n", servers);
    else fprintf(stderr, "sioctl: sent to %ld server(s)\n", servers);
    return 0;
}

/* ---- emit --ack --cluster ------------------------------------------------------------- */

typedef struct acks {
    long servers, counted; /* BROADCAST_CLIENT_COUNT answers */
    long clients;          /* their sum */
    cJSON *answers;        /* the first argument of each client's ack */
    cJSON *answered;
} acks;

static int acks_cb(void *arg, const cJSON *resp) {
    acks *a = arg;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(resp, "type");
    if (cJSON_IsNumber(type) && type->valueint == WIRE_BROADCAST_CLIENT_COUNT) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(resp, "clientCount"), *uid = cJSON_GetObjectItemCaseSensitive(resp, "uid");
        a->counted++;
        long long c;
        if (json_integer(n, &c) && c > 0) a->clients += (long)c; /* a remote server's count */
        if (cJSON_IsString(uid)) cJSON_AddItemToArray(a->answered, cJSON_CreateString(uid->valuestring));
    } else if (cJSON_IsNumber(type) && type->valueint == WIRE_BROADCAST_ACK) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(resp, "packet");
        cJSON_AddItemToArray(a->answers, p ? cJSON_Duplicate(p, 1) : cJSON_CreateNull());
    }
    return a->counted >= a->servers && cJSON_GetArraySize(a->answers) >= a->clients;
}

/* io.timeout(ms).emitWithAck() on every server: the BROADCAST request. */
int cluster_emit_ack(server *srv, opts *o) {
    int bad;
    const char *nsp = nsp_of(srv, o, &bad);
    if (bad) return EXIT_USAGE;
    if (o->nargs < 1) return die(EXIT_USAGE, "emit needs an EVENT name");
    if (sio_reserved_event(o->args[0])) return die(EXIT_USAGE, "'%s' is a reserved event name", o->args[0]);
    cJSON *data = args_array(o, 1);
    if (!data) return EXIT_USAGE;
    cJSON_InsertItemInArray(data, 0, cJSON_CreateString(o->args[0]));
    cluster_client *c;
    int rc = open_cluster(srv, nsp, &c);
    if (rc) {
        cJSON_Delete(data);
        return rc;
    }
    cJSON *req = cJSON_CreateObject(), *packet = cJSON_AddObjectToObject(req, "packet");
    cJSON_AddNumberToObject(req, "type", WIRE_BROADCAST);
    cJSON_AddNumberToObject(packet, "type", SIO_EVENT);
    cJSON_AddItemToObject(packet, "data", data);
    cJSON_AddStringToObject(packet, "nsp", nsp);
    cJSON *opt = opts_json(o);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(opt, "flags"), "timeout", (double)o->timeout_ms);
    cJSON_AddItemToObject(req, "opts", opt);
    acks a = {cluster_servers(c, NULL), 0, 0, cJSON_CreateArray(), cJSON_CreateArray()};
    char err[512];
    rc = cluster_ask(c, req, 1, acks_cb, &a, (int)o->timeout_ms, err, sizeof err);
    cJSON_Delete(req);
    const cJSON *it;
    if (o->json) print_json(a.answers);
    else cJSON_ArrayForEach(it, a.answers) print_json(it);
    if (rc < 0) rc = die(EXIT_CLUSTER, "%s", err);
    else if (rc > 0 && a.counted < a.servers) rc = report_missing(c, a.servers, a.counted, a.answered, o->timeout_ms);
    else if (rc > 0)
        rc = die(EXIT_TIMEOUT, "timeout: %d of %ld client(s) acknowledged within %ld ms", cJSON_GetArraySize(a.answers),
                 a.clients, o->timeout_ms);
    cJSON_Delete(a.answers);
    cJSON_Delete(a.answered);
    cluster_close(c);
    return rc;
}

/* ---- emit --server-side ---------------------------------------------------------------- */

typedef struct sse {
    long want;
    cJSON *answers;
} sse;

static int sse_cb(void *arg, const cJSON *resp) {
    sse *s = arg;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(resp, "type");
    if (!cJSON_IsNumber(type) || type->valueint != WIRE_SERVER_SIDE_EMIT) return 0;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(resp, "data");
    cJSON_AddItemToArray(s->answers, d ? cJSON_Duplicate(d, 1) : cJSON_CreateNull());
    return cJSON_GetArraySize(s->answers) >= s->want;
}

/* serverSideEmit: to every other server (this node's bridge ignores its
 * own uid, as the Node adapter does); with --ack, their answers. */
int cluster_emit_server_side(server *srv, opts *o) {
    int bad;
    const char *nsp = nsp_of(srv, o, &bad);
    if (bad) return EXIT_USAGE;
    if (o->nargs < 1) return die(EXIT_USAGE, "emit needs an EVENT name");
    if (o->tg.nto || o->tg.nexcept || o->tg.broadcast || o->all || o->tg.local || o->cluster)
        return die(EXIT_USAGE, "--server-side goes to the other servers: no rooms, --local or --cluster");
    cJSON *data = args_array(o, 1);
    if (!data) return EXIT_USAGE;
    cJSON_InsertItemInArray(data, 0, cJSON_CreateString(o->args[0]));
    cluster_client *c;
    int rc = open_cluster(srv, nsp, &c);
    if (rc) {
        cJSON_Delete(data);
        return rc;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddNumberToObject(req, "type", WIRE_SERVER_SIDE_EMIT);
    cJSON_AddItemToObject(req, "data", data);
    sse s = {cluster_servers(c, NULL) - 1, cJSON_CreateArray()};
    char err[512];
    rc = cluster_ask(c, req, 0, o->want_ack && s.want > 0 ? sse_cb : NULL, &s, (int)o->timeout_ms, err, sizeof err);
    cJSON_Delete(req);
    if (o->want_ack) print_json(s.answers);
    if (rc < 0) rc = die(EXIT_CLUSTER, "%s", err);
    else if (rc > 0)
        rc = die(EXIT_TIMEOUT, "timeout: %d of %ld server(s) answered within %ld ms", cJSON_GetArraySize(s.answers),
                 s.want, o->timeout_ms);
    cJSON_Delete(s.answers);
    cluster_close(c);
    return rc;
}

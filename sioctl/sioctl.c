/* sioctl: the command line.  It acts on the store directly, through the
 * very same library calls the servers and the handler dispatcher use
 * (server/actions.h), and wakes the servers through the notify hub.  No web
 * server is involved.  With --cluster it asks every server of the Redis
 * cluster (cluster/client.h).
 *
 *   sioctl [--state DIR] [--json] COMMAND [options]
 *
 * Each command takes its own options only (an option of another command is
 * a usage error, never a silently different target).  Inside a handler
 * (SIO_SOCKET set by the dispatcher) commands act on the handler's socket by
 * default, like `socket.emit`, `socket.join`, ...  This file parses and
 * dispatches; local.c and cluster.c do the work. */
#include "sioctl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "notify/notify.h"
#include "proto/json.h"

static const char *usage_text =
    "usage: sioctl [--state DIR] [--json] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  emit [--nsp NS] [--to ROOM]... [--except ROOM]... [--broadcast] [--all]\n"
    "       [--local] [--volatile] [--ack [--timeout MS] [--cluster]] EVENT [ARG...]\n"
    "      send EVENT to every socket of NS (default /), or to the union of the\n"
    "      --to rooms, minus the --except rooms; each socket gets it once.\n"
    "      A socket id is a room too.  ARG is JSON (42, true, {\"a\":1}, \"text\")\n"
    "      or else a plain string; binary: {\"$binary\":\"<base64>\"}.\n"
    "      In a cluster every emit reaches every server; --local keeps it on\n"
    "      this node.  --volatile: clients that miss it do not get it when\n"
    "      they recover their connection state.\n"
    "      --ack waits for every targeted client's acknowledgement\n"
    "      (up to --timeout MS, default 5000) and prints the answers; with\n"
    "      --cluster, those of the clients of every server.\n"
    "  emit --server-side [--nsp NS] [--ack [--timeout MS]] EVENT [ARG...]\n"
    "      serverSideEmit: to the other servers of the cluster (their\n"
    "      server_event.EVENT handlers, or io.on(EVENT) on Node servers).\n"
    "  rooms [--nsp NS] [--all] [--cluster [--timeout MS]]\n"
    "      rooms of NS with their members (--all includes each socket's own room).\n"
    "  sockets [--nsp NS] [--room ROOM] [--cluster [--timeout MS]]\n"
    "      sockets with their namespace, rooms and data (fetchSockets).\n"
    "  join [--nsp NS] [--to ROOM]... [--except ROOM]... [--cluster] ROOM...\n"
    "  leave [--nsp NS] [--to ROOM]... [--except ROOM]... [--cluster] ROOM...\n"
    "      make the targeted sockets (all of NS without --to) join / leave rooms.\n"
    "  disconnect [--nsp NS] [--to ROOM]... [--except ROOM]... [--close] [--cluster]\n"
    "      disconnect the targeted sockets (they get a DISCONNECT packet);\n"
    "      --close also closes their Engine.IO connections.\n"
    "  ack [--socket ID --id N] [--server-side] [ARG...]\n"
    "      answer a client event that asked for an acknowledgement (or, with\n"
    "      --server-side, another server's serverSideEmit).\n"
    "  listen [--nsp NS] [--from-start] [EVENT...]\n"
    "      print client events (connections, events, acks, disconnects) as JSON\n"
    "      lines as they arrive; with EVENT names, only those events.\n"
    "  send --sid SID DATA\n"
    "      send DATA (a string, or {\"$binary\":...}) on a bare Engine.IO session.\n"
    "  status [--json]\n"
    "      one screen: the processes, sessions, sockets and rooms, the packet log\n"
    "      and its readers, the store's use, the counters, the config in force,\n"
    "      the cluster (--json: all of it).\n"
    "  metrics\n"
    "      the Prometheus metrics page (what sio-front serves at metrics_path).\n"
    "\n"
    "options: --socket ID acts as that socket (default $SIO_SOCKET inside a\n"
    "handler): without --to, emit/join/leave/disconnect target it; --broadcast\n"
    "excludes it; --all targets the whole namespace.\n"
    "When --nsp is not given, the namespace of the acting socket or of a socket\n"
    "id in --to is used, else /.  --cluster acts on / reports every server of\n"
    "the cluster (redis_url), this one included.\n"
    "env: SIO_STATE_DIR (the stack's state directory), SIO_CONFIG, and in\n"
    "handlers SIO_SOCKET, SIO_ACK_ID.\n"
    "exit: 0 ok, 1 failure, 2 usage error (also: no such socket, unknown namespace,\n"
    "a config file that cannot be read), 3 the stack is not running, 4 a timeout\n"
    "(acks, or servers that did not answer), 5 no cluster or it cannot be reached,\n"
    "6 the store or its disk is full (nothing was written; retry in a moment),\n"
    "7 permission denied (the state directory, the store or notify.sock).\n";

/* ---- shared helpers ----------------------------------------------------------------- */

int die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sioctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* The store in use, for store_failed's message. */
static struct {
    char dir[PATH_MAX];
    size_t map_mb;
} opened;

int store_failed(int rc, const char *what) {
    if (rc == STORE_EFULL)
        return die(EXIT_FULL,
                   "the store is full: no room left in its map (map_size_mb = %zu, in %s); nothing was written. "
                   "stated drops the oldest packet-log records to make room within seconds: retry, or raise map_size_mb",
                   opened.map_mb, opened.dir);
    if (store_full(rc))
        return die(EXIT_FULL, "the disk under the store (%s) is full: %s; nothing was written. Free disk space and retry",
                   opened.dir, store_strerror(rc));
    return die(EXIT_FAIL, "%s: %s", what, store_strerror(rc));
}

int op_failed(int rc, const char *err) {
    if (rc == ACTIONS_EUSAGE) return die(EXIT_USAGE, "%s", err);
    if (rc == ACTIONS_ELIMIT) return die(EXIT_FAIL, "%s", err);
    return store_failed(rc, "failed");
}

cJSON *args_array(const opts *o, int from) {
    cJSON *arr = cJSON_CreateArray();
    char err[512];
    for (int i = from; i < o->nargs; i++) {
        cJSON *a = actions_parse_arg(o->args[i], err, sizeof err);
        if (!a) {
            die(EXIT_USAGE, "argument %d is %s", i - from + 1, err);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, a);
    }
    return arr;
}

void print_json(const cJSON *j) {
    char *s = json_print(j);
    printf("%s\n", s ? s : "null");
    free(s);
}

/* ---- commands and their options ------------------------------------------------------- */

typedef struct command {
    const char *name;
    const char *options; /* the options it takes, separated by spaces */
    int (*run)(server *srv, opts *o);
    int self;            /* acts on $SIO_SOCKET by default inside a handler */
} command;

static int run_emit(server *srv, opts *o) {
    if (o->server_side) return cluster_emit_server_side(srv, o);
    if (o->cluster && o->want_ack) return cluster_emit_ack(srv, o);
    return cmd_emit(srv, o); /* without --ack, an emit reaches the cluster anyway */
}

static int run_query(server *srv, opts *o) {
    if (o->cluster) return cluster_rooms_or_sockets(srv, o);
    return o->cmd[0] == 'r' ? cmd_rooms(srv, o) : cmd_sockets(srv, o);
}

static int run_write(server *srv, opts *o) {
    return o->cluster ? cluster_write(srv, o) : cmd_write(srv, o);
}

static const command commands[] = {
    {"emit", "--nsp --to --in --except --broadcast --all --socket --local --volatile --ack --timeout --cluster --server-side --json",
     run_emit, 1},
    {"rooms", "--nsp --all --cluster --timeout --json", run_query, 0},
    {"sockets", "--nsp --room --cluster --timeout --json", run_query, 0},
    {"join", "--nsp --to --in --except --all --socket --cluster --json", run_write, 1},
    {"leave", "--nsp --to --in --except --all --socket --cluster --json", run_write, 1},
    {"disconnect", "--nsp --to --in --except --all --socket --close --cluster --json", run_write, 1},
    {"ack", "--socket --id --server-side --json", cmd_write, 1},
    {"send", "--sid --json", cmd_write, 0},
    {"listen", "--nsp --from-start --json", cmd_listen, 0},
    {"status", "--json", cmd_status, 0},
    {"metrics", "", cmd_metrics, 0},
};

/* One option with a value (v) into o; 0 or an exit code. */
static int option_value(opts *o, const char *a, const char *v) {
    long x;
    if (!strcmp(a, "--nsp")) o->tg.nsp = v;
    else if (!strcmp(a, "--room")) o->room = v;
    else if (!strcmp(a, "--socket")) o->tg.self = v, o->socket_given = 1;
    else if (!strcmp(a, "--sid")) o->sid = v;
    else if (!strcmp(a, "--id")) {
        if (util_parse_long(v, 0, 2147483647L, &x)) return die(EXIT_USAGE, "bad --id '%s'", v);
        o->ack_id = x;
    } else if (!strcmp(a, "--timeout")) {
        if (util_parse_long(v, 1, 3600000, &o->timeout_ms)) return die(EXIT_USAGE, "bad --timeout '%s' (ms)", v);
    } else if (!strcmp(a, "--to") || !strcmp(a, "--in")) {
        if (o->tg.nto >= ACTIONS_MAX_TARGETS) return die(EXIT_USAGE, "too many --to rooms (max %d)", ACTIONS_MAX_TARGETS);
        o->tg.to[o->tg.nto++] = v;
    } else if (!strcmp(a, "--except")) {
        if (o->tg.nexcept >= ACTIONS_MAX_TARGETS) return die(EXIT_USAGE, "too many --except rooms (max %d)", ACTIONS_MAX_TARGETS);
        o->tg.except[o->tg.nexcept++] = v;
    }
    return 0;
}

/* The command's options; positional arguments are kept in order. */
static int parse_opts(const command *c, int argc, char **argv, opts *o) {
    static const struct { const char *name; size_t off; } flags[] = {
        {"--all", offsetof(opts, all)}, {"--close", offsetof(opts, close)},
        {"--json", offsetof(opts, json)}, {"--broadcast", offsetof(opts, tg.broadcast)},
        {"--ack", offsetof(opts, want_ack)}, {"--from-start", offsetof(opts, from_start)},
        {"--cluster", offsetof(opts, cluster)}, {"--local", offsetof(opts, tg.local)},
        {"--volatile", offsetof(opts, tg.is_volatile)},
        {"--server-side", offsetof(opts, server_side)}};
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    int positional_only = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (positional_only || a[0] != '-' || !strcmp(a, "-")) {
            o->args[o->nargs++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) { positional_only = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return -1;
        if (!util_word_in(c->options, a))
            return die(EXIT_USAGE, "%s: unknown option %s (%s takes%s%s; see sioctl --help)", c->name, a,
                       c->name, *c->options ? ": " : " no options", c->options);
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(flags[k].name, a)) k++;
        if (k < sizeof flags / sizeof flags[0]) {
            *(int *)((char *)o + flags[k].off) = 1;
            continue;
        }
        if (!v) return die(EXIT_USAGE, "%s: option %s needs a value", c->name, a);
        int rc = option_value(o, a, v);
        if (rc) return rc;
        i++;
    }
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

/* The exit code of a store that could not be opened (server_open's rc). */
static int open_failed(int rc) {
    if (rc == -EACCES || rc == -EPERM) return EXIT_PERM;
    if (rc == SERVER_ECONFIG) return EXIT_USAGE;
    if (rc == -ENOENT || rc == -ENOTDIR || rc == STORE_EBROKEN || rc == -EPROTO) return EXIT_DOWN;
    return EXIT_FAIL;
}

/* --socket ID given on the command line must name a socket (of --nsp when
 * given): anything else would silently act on nobody.  0 or an exit code. */
static int check_socket(server *srv, const opts *o) {
    if (!o->socket_given) return 0;
    store_txn *t;
    store_socket s;
    int rc = store_begin(srv->st, 0, &t);
    if (rc) return die(EXIT_FAIL, "cannot read the store in %s: %s", srv->dir, store_strerror(rc));
    rc = util_is_id(o->tg.self, strlen(o->tg.self)) ? store_socket_get(t, o->tg.self, &s) : STORE_NOTFOUND;
    store_abort(t);
    if (rc == STORE_NOTFOUND)
        return die(EXIT_USAGE, "%s: no socket '%s' (--socket; `sioctl sockets` lists them)", o->cmd, o->tg.self);
    if (rc) return die(EXIT_FAIL, "cannot read the store in %s: %s", srv->dir, store_strerror(rc));
    if (o->tg.nsp && strcmp(o->tg.nsp, s.nsp))
        return die(EXIT_USAGE, "%s: socket '%s' is in namespace '%s', not '%s' (--nsp)", o->cmd, o->tg.self,
                   s.nsp, o->tg.nsp);
    return 0;
}

static int run(const command *c, opts *o, const char *dir) {
    server srv;
    char err[1024];
    /* listen and a local emit --ack wait on the notify channel */
    int follow = !strcmp(c->name, "listen") || (!strcmp(c->name, "emit") && o->want_ack && !o->cluster &&
                                                 !o->server_side);
    int rc = server_open(&srv, dir, NULL, follow ? SERVER_SUBSCRIBE : 0, err, sizeof err);
    if (rc) return die(open_failed(rc), "%s", err);
    snprintf(opened.dir, sizeof opened.dir, "%s", srv.dir);
    opened.map_mb = store_map_size(srv.st) >> 20;
    if ((rc = notify_probe(srv.dir)) == -EACCES || rc == -EPERM)
        rc = die(EXIT_PERM, "permission denied on %s/%s: run as the user stated runs as, or give this user access",
                 srv.dir, NOTIFY_SOCK);
    else if (rc)
        rc = die(EXIT_DOWN, "stated is not running for %s (no answer on %s/%s: %s)", srv.dir, srv.dir,
                 NOTIFY_SOCK, strerror(-rc));
    else if (!(rc = check_socket(&srv, o)))
        rc = c->run(&srv, o);
    server_close(&srv);
    return rc;
}

int main(int argc, char **argv) {
    log_init("sioctl");
    const char *dir = NULL;
    int json = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--state") && i + 1 < argc) {
            dir = argv[++i];
            if (!*dir) return die(EXIT_USAGE, "--state: empty directory name");
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage_text, stdout); return 0; }
        else if (!strcmp(argv[i], "--state")) return die(EXIT_USAGE, "option --state needs a directory");
        else return die(EXIT_USAGE, "unknown option %s before the command (sioctl [--state DIR] [--json] COMMAND ...; see sioctl --help)", argv[i]);
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return die(EXIT_USAGE, "no command given");
    }
    const char *name = argv[i++];
    const command *c = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (!strcmp(commands[k].name, name)) c = &commands[k];
    if (!c) return die(EXIT_USAGE, "unknown command '%s' (see sioctl --help)", name);
    opts o;
    memset(&o, 0, sizeof o);
    o.cmd = c->name;
    o.json = json;
    o.ack_id = -1;
    o.timeout_ms = 5000;
    int rc = parse_opts(c, argc - i, argv + i, &o);
    if (rc < 0) { /* --help: print it and do nothing else */
        fputs(usage_text, stdout);
        free(o.args);
        return EXIT_OK;
    }
    if (rc) { free(o.args); return rc; }
    /* Inside a handler the acting socket comes from the environment. */
    const char *self = getenv("SIO_SOCKET");
    if (!o.tg.self && self && *self && c->self) o.tg.self = self;
    rc = run(c, &o, dir);
    free(o.args);
    return rc;
}

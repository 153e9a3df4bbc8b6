/* sioctl: what the command line's files share: the parsed options of one
 * command, the exit codes, and the commands themselves (sioctl.c parses
 * and dispatches; local.c acts on this node's store; cluster.c asks every
 * server of the cluster). */
#ifndef SIO_SIOCTL_H
#define SIO_SIOCTL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/actions.h"
#include "server/server.h"

/* Exit codes. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,     /* bad option, bad JSON, unknown namespace, no such socket */
    EXIT_DOWN = 3,      /* the stack is not running */
    EXIT_TIMEOUT = 4,   /* acks or servers did not all answer in time */
    EXIT_CLUSTER = 5,   /* no cluster, or it cannot be reached */
    EXIT_FULL = 6,      /* the store (map_size_mb) or its disk is full: nothing written */
    EXIT_PERM = 7,      /* permission denied on the state directory, the store or notify.sock */
};

typedef struct opts {
    const char *cmd;
    actions_target tg;
    const char *room;  /* sockets --room */
    const char *sid;   /* send --sid */
    int socket_given;  /* --socket ID on the command line (not $SIO_SOCKET) */
    long long ack_id;  /* ack --id */
    long timeout_ms;
    int all, close, json, want_ack, from_start, cluster, server_side;
    char **args;       /* positional arguments */
    int nargs;
} opts;

/* Prints "sioctl: ..." on stderr and returns code. */
int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A failed action: ACTIONS_EUSAGE -> EXIT_USAGE with err, else a store failure. */
int op_failed(int rc, const char *err);
/* A failed store call (what: "commit failed", ...): EXIT_FULL with what to do
 * when there was no room (store_full), else EXIT_FAIL. */
int store_failed(int rc, const char *what);
/* The positional arguments from `from` on as a JSON array (NULL: printed). */
cJSON *args_array(const opts *o, int from);
void print_json(const cJSON *j);

/* local.c */
int cmd_emit(server *srv, opts *o);
int cmd_rooms(server *srv, opts *o);
int cmd_sockets(server *srv, opts *o);
int cmd_write(server *srv, opts *o); /* join, leave, disconnect, ack, send */
int cmd_listen(server *srv, opts *o);
int cmd_status(server *srv, opts *o);
int cmd_metrics(server *srv, opts *o);

/* cluster.c: the same, for every server of the cluster */
int cluster_emit_ack(server *srv, opts *o);
int cluster_emit_server_side(server *srv, opts *o);
int cluster_rooms_or_sockets(server *srv, opts *o);
int cluster_write(server *srv, opts *o); /* join, leave, disconnect */

#endif

/* metrics: what an operator sees of a running stack, in one snapshot: the
 * clients by transport, sockets and rooms per namespace, the packet log and
 * inbox with each reader's lag, the handler queue, the store's use, the
 * cluster bridge, the processes holding a counters slot, and the shared
 * event counters (base/stats.h).
 *
 * It owns the names and the two renderings of that snapshot: the
 * Prometheus text format (the front's metrics_path, `sioctl metrics`) and
 * the JSON of `sioctl status --json` (also what the demo page's live panel
 * shows).  It reads the store in one read transaction and never writes. */
#ifndef SIO_METRICS_H
#define SIO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/stats.h"
#include "server/http.h"
#include "server/server.h"

typedef struct metrics_nsp {
    char *name;    /* owned */
    size_t sockets, rooms;
} metrics_nsp;

typedef struct metrics_reader {
    char name[64];
    int inbox;     /* 1: reads the inbox, else the packet log */
    uint64_t position, behind;
    int alive;
} metrics_reader;

#define METRICS_MAX_PROCS 64

typedef struct metrics_snap {
    size_t clients[STATS_NTRANSPORTS]; /* open Engine.IO sessions */
    size_t detached;                   /* sockets waiting for recovery */
    metrics_nsp *nsps;
    size_t nnsp, nsp_cap;
    metrics_reader *readers;
    size_t nreaders, reader_cap;
    uint64_t log_first, log_head, log_bytes, inbox_first, inbox_head;
    int has_dispatcher;
    uint64_t handler_queue;  /* inbox records the dispatcher has not read */
    uint64_t map_bytes, free_bytes;
    cJSON *cluster;          /* the bridge's state (owned), NULL without redis_url */
    uint64_t counters[STATS_NCOUNTERS];
    int counters_ok;         /* 0: the counters file could not be used */
    stats_proc procs[METRICS_MAX_PROCS];
    int nprocs;
    int stated_up;           /* stated holds its lock on the state directory */
    int stated_pid;          /* from its counters slot, 0 when unknown */
} metrics_snap;

/* Fills snap from the store and the counters.  0 or a store error; free
 * with metrics_free either way. */
int metrics_collect(server *srv, metrics_snap *snap);
void metrics_free(metrics_snap *snap);

/* The Prometheus text format (0.0.4) of snap, appended to out. */
int metrics_text(const server *srv, const metrics_snap *snap, buf *out);
/* The Content-Type of metrics_text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* 1 when uri (its path; a query is ignored) is cfg.metrics_path. */
int metrics_route(const server *srv, const char *uri);
/* The answer to a request for the metrics page: 200 with metrics_text for
 * GET (and HEAD), 405 for any other method, 500 when the store cannot be
 * read. */
void metrics_answer(server *srv, const char *method, http_resp *resp);

/* The JSON of `sioctl status --json` (owned by the caller). */
cJSON *metrics_json(const server *srv, const metrics_snap *snap);

#endif

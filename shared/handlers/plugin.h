/* plugin: in-process handlers.  A [namespace] may name a shared object
 * (`plugin = FILE.so`) that defines sio_plugin_event() (see sioh.h).  The
 * processes that receive client packets (sio-front, sio-fcgi) load it at
 * start with plugin_load; srv then hands it the namespace's events and acks
 * with plugin_run, inside the transaction of the packet, and applies what
 * it answers (sioh actions, see ops.h) in that same transaction.  Events it
 * declines, and every process that loaded no plugin, use the inbox. */
#ifndef SIO_PLUGIN_H
#define SIO_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/engine.h"

/* Loads the plugin of every namespace of e->cfg.  A relative FILE is taken
 * from the folder of the running program (bin/).  0, or <0 with a sentence
 * for the user in err. */
int plugin_load(engine *e, char *err, size_t errlen);

/* Offers the record {type, the socket's fields, extra...} (see inbox.h) to
 * the plugin of the socket's namespace.  1: handled (its actions are applied
 * in t; *seq: the last log record they appended, if any); 0: no plugin, or
 * it passed; <0: a store error (t is unusable). */
int plugin_run(engine *e, store_txn *t, const char *type, const store_socket *so,
               const cJSON *extra, uint64_t *seq);

#endif

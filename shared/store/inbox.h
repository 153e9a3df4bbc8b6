/* inbox: the events that application logic receives, appended to the store's
 * inbox (see store.h) by whichever process received them from a client, in
 * the order they arrived.  Each record is one compact JSON object:
 *
 *   {"type":"connect", "nsp","socket","sid","auth","handshake"}
 *        a CONNECT to a namespace that has an `auth` handler: the socket
 *        (this id) does not exist until socketio_accept; socketio_refuse refuses it.
 *   {"type":"connection", "nsp","socket","sid","auth","data","handshake"}
 *   {"type":"event", "nsp","socket","sid","event","args":[...], "ack":N?}
 *        "ack" is present when the client wants an answer (its ack id).
 *   {"type":"ack", "nsp","socket","sid","id":N,"args":[...]}
 *        the client answered a server emit that asked for an ack (id N).
 *   {"type":"disconnect", "nsp","socket","sid","reason"}
 *        reasons as the Node server names them: "client namespace
 *        disconnect", "server namespace disconnect", "transport close",
 *        "transport error", "ping timeout", "parse error", "forced close".
 *   {"type":"message", "sid","data"}   (bare Engine.IO endpoint)
 *        data is a string, or {"$binary":"<base64>"}.
 *   {"type":"serverSideEmit", "nsp","event","args":[...], "ack":N?}
 *        another server of the cluster called serverSideEmit (no socket);
 *        "ack" when it waits for an answer (the cluster bridge's id N).
 *   {"type":"serverSideAck", "id":N, "args":[...]}
 *        a handler's answer to that serverSideEmit, for the bridge.
 *
 * handshake = {"address","headers":{name:value},"query":{name:value},
 *              "time":ms,"url"}.  Binary data anywhere in args is a
 * {"$binary":"<base64>"} marker.  Readers add "seq" (the record's number)
 * when they hand a record out. */
#ifndef SIO_INBOX_H
#define SIO_INBOX_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/store.h"

/* The record of a socket's event, built from its parts (the items of extra
 * are copied); the caller owns it.  NULL on ENOMEM. */
cJSON *inbox_record(const char *type, const store_socket *s, const cJSON *extra);
/* Appends that record; takes ownership of nothing.  handshake/auth/data/args
 * may be NULL.  0 or <0. */
int inbox_socket_event(store_txn *t, const char *type, const store_socket *s,
                       const cJSON *extra, uint64_t *seq);
/* Convenience: the same with the socket's own fields only. */
int inbox_disconnect(store_txn *t, const store_socket *s, const char *reason, uint64_t *seq);
int inbox_message(store_txn *t, const char *sid, const uint8_t *data, size_t len, int binary,
                  uint64_t *seq);
/* Appends a record built by the caller; takes ownership of o.  0 or <0. */
int inbox_append(store_txn *t, cJSON *o, uint64_t *seq);
/* Parses a record into a new cJSON object with "seq" added; NULL when the
 * bytes are not a JSON object. */
cJSON *inbox_parse(uint64_t seq, const void *rec, size_t len);

#endif

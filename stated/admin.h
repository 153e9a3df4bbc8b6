/* admin: the server side of the Socket.IO Admin UI (@socket.io/admin-ui
 * 0.5), a thread of stated when the config has an [admin] section.
 *
 * The UI is an ordinary Socket.IO client of the admin namespace (cfg_admin),
 * connected to any front or FastCGI worker; everything it sees and does
 * goes through the store, so one thread per node (store) serves every
 * admin socket, whichever process holds it:
 *   - Login: a CONNECT to the admin namespace with a password reaches the
 *     inbox as a "connect" record (server/socketio.c, as for an auth
 *     handler); this thread checks {sessionId} against the sessions it
 *     saved (meta "admin.sessions") or {username, password} against the
 *     bcrypt hash with crypt_r(3), then accepts (and emits `session(id)` to
 *     the socket after a password login) or refuses with "invalid
 *     credentials", as Node's instrument() does.  auth = none: socketio.c
 *     accepts at once.
 *   - On an admin socket's "connection" record: `config {supportedFeatures}`
 *     and, in development mode, `all_sockets [...]` to that socket.
 *   - Every 2 s: `server_stats` to the namespace (serverId, hostname, pid,
 *     uptime, clientsCount, pollingClientsCount, namespaces: from
 *     metrics_collect, server/metrics.h), with aggregatedEvents: the growth
 *     of the counters every process of the node shares (base/stats.h:
 *     Engine.IO handshakes, closes by reason, packets and bytes in and out)
 *     since the last figures, spread over its seconds.
 *   - Development mode, where each fact comes from:
 *       socket_connected, socket_disconnected, event_received: the inbox
 *         (its "connection", "disconnect", "event" records), read with this
 *         thread's own reader (READER_ADMIN, server/reader.h);
 *       event_sent: the packet log (broadcast records of events), read from
 *         a cursor kept in memory only (it never holds back trimming), the
 *         sockets reached as rooms_sockets says;
 *       room_joined, room_left, socket_updated (transport, data): no log
 *         records them, so the sockets table is compared with the last
 *         snapshot, at most every ADMIN_SCAN_MS while admin sockets exist.
 *   - The UI's `emit`, `join`, `leave` and `_disconnect` (with a room as
 *     filter) are actions_emit / actions_join / actions_disconnect
 *     (server/actions.h), as sioctl's.
 * Emits to the namespace are ordinary broadcasts: with a Redis cluster
 * they reach the admin sockets of every node, and each node reports its own
 * serverId, as Node servers behind the Redis adapter do. */
#ifndef SIO_STATED_ADMIN_H
#define SIO_STATED_ADMIN_H

#include "server/server.h"

#define ADMIN_STATS_MS 2000 /* server_stats, as Node's instrument() */
#define ADMIN_SCAN_MS 250   /* development mode: the sockets table compared at most this often */

typedef struct admin admin;

/* Starts the thread when srv's config has [admin] (else *out is NULL and
 * the thread's inbox position, if any, is removed so it pins nothing).
 * srv must outlive admin_stop.  0 or <0. */
int admin_start(server *srv, admin **out);
/* Stops the thread and saves its inbox position.  NULL is safe. */
void admin_stop(admin *a);

/* 1 when password matches the bcrypt hash (crypt_r), else 0. */
int admin_password_ok(const char *password, const char *hash);

#endif

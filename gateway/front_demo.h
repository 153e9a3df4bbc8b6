/* front_demo: the endpoints of the demo page (www/), served by sio-front
 * beside Socket.IO:
 *   GET  /demo/rooms?nsp=&room=   the member ids of a room, as JSON;
 *   POST /demo/join, /demo/leave  {"nsp","socket","room"}: move a socket.
 * They act on the store directly, as sioctl does.
 *
 * And the page's live panel: every DEMO_PANEL_MS the front emits
 * "demo:stats" (volatile, this node only) to the sockets of namespace "/"
 * in room DEMO_PANEL_ROOM (the page's panel socket joins it): clients by
 * transport, namespaces with their sockets and rooms, and the throughput
 * from the shared counters (server/metrics.h).  Nothing is written while
 * nobody is in the room. */
#ifndef SIO_FRONT_DEMO_H
#define SIO_FRONT_DEMO_H

#include <stddef.h>

#include <stdint.h>

#include "base/stats.h"
#include "server/http.h"
#include "server/server.h"

#define DEMO_BODY_MAX 65536 /* a join/leave body */

enum { DEMO_NONE = 0, DEMO_ROOMS = 1, DEMO_JOIN = 2, DEMO_LEAVE = 3 };

/* Which endpoint a request is (path without the query), or DEMO_NONE. */
int demo_route(const char *path, const char *method);
/* GET /demo/rooms: nsp (NULL or empty: "/") and room from the query. */
void demo_rooms(server *srv, const char *nsp, const char *room, http_resp *resp);
/* POST /demo/join or /demo/leave (leave = 1) with its body; too_big: the
 * body was over DEMO_BODY_MAX. */
void demo_join(server *srv, int leave, const char *body, size_t len, int too_big, http_resp *resp);

#define DEMO_PANEL_ROOM "demo:panel"
#define DEMO_PANEL_MS 1000

/* What the panel remembers between ticks, for the rates. */
typedef struct demo_panel {
    uint64_t last[STATS_NCOUNTERS];
    int64_t last_ms;
} demo_panel;

/* One tick of the panel (the front's loop calls it every DEMO_PANEL_MS).
 * 1 when it emitted (the caller delivers: the hub does not wake the
 * process that published), else 0. */
int demo_panel_tick(server *srv, demo_panel *p);

#endif

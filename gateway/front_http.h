/* front_http: plain HTTP in sio-front: Engine.IO long-polling without
 * blocking the loop (held GETs wait in a list), the client bundle
 * (serveClient) and the demo endpoints.  Called from the lws protocol
 * callback in front.c. */
#ifndef SIO_FRONT_HTTP_H
#define SIO_FRONT_HTTP_H

#include <libwebsockets.h>
#include <stddef.h>

#include "front_timer.h"
#include "server/server.h"

typedef struct fhttp fhttp;

/* client_js: the bundle served at cfg.path + "socket.io.js" (borrowed);
 * demo: answer the demo endpoints (front_demo.h), else they are 404.
 * NULL on ENOMEM. */
fhttp *fhttp_new(server *srv, ftimers *timers, const char *client_js, int demo);
void fhttp_free(fhttp *h);

/* lws callback pieces; each returns what the callback returns. */
int fhttp_request(fhttp *h, struct lws *wsi);
int fhttp_body(struct lws *wsi, const void *in, size_t len);
int fhttp_body_done(struct lws *wsi);
int fhttp_writeable(struct lws *wsi);
void fhttp_closed(struct lws *wsi);

/* Re-steps every held GET (after a notify wake). */
void fhttp_wake(fhttp *h);
/* Stop: held GETs are abandoned (their sessions live on in the store). */
void fhttp_shutdown_all(fhttp *h);

#endif

/* access: who may open a session, and who they are.  The client's address
 * (X-Forwarded-For, believed only from cfg.trusted_proxies), the allowed
 * origins of WebSocket handshakes (cfg.cors_origin), and the allow_request
 * command (Node's allowRequest option), run for every handshake of either
 * transport.  The transports call access_handshake before creating a
 * session; session_create records access_client_addr as the address. */
#ifndef SIO_ACCESS_H
#define SIO_ACCESS_H

#include <stddef.h>

#include "server/http.h"

/* The client's address for req: the peer's (req->remote_addr), or, when the
 * peer is in cfg.trusted_proxies, the X-Forwarded-For entry read from the
 * right past every trusted proxy (as Express's `trust proxy` with a list).
 * Written into out (size n); returns out. */
const char *access_client_addr(const server *s, const http_req *req, char *out, size_t n);

enum { ACCESS_ALLOW = 0, ACCESS_REFUSE = 1 };
/* Decides a handshake (a request without sid, for transport "polling" or
 * "websocket"): a WebSocket whose Origin cfg.cors_origin does not list is
 * refused, then cfg.allow_request runs (when set): exit 0 allows; any other
 * exit, a crash or running past allow_request_timeout refuses.  On refusal
 * message (size n) gets the reason the client is told: the command's first
 * line of output, else "Forbidden".  Refusals are logged. */
int access_handshake(const server *s, const http_req *req, const char *transport, char *message,
                     size_t n);
/* 403 {"code":4,"message":message}: Node's answer to a refused handshake. */
void access_forbidden(http_resp *r, const char *message);

#endif

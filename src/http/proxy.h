/* proxy: the HTTP/1.1 proxy session: one client connection, the request on
 * it, and the upstream connection serving that request. */
#ifndef WEIR_HTTP_PROXY_H
#define WEIR_HTTP_PROXY_H

#include "server/server.h"

/* Starts a session on the accepted connection fd (owned by the session
 * from now on) from listener wl; peer is the client's address. The session
 * is counted with server_conn_open/close. */
void proxy_start(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer);
/* Starts draining: idle clients are closed now, busy ones after their
 * current response (which says Connection: close). */
void proxy_drain(struct wctx *wc);
/* Frees the worker's free lists (at worker exit, no clients left). */
void proxy_worker_cleanup(struct wctx *wc);

#endif

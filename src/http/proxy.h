/* proxy: the HTTP/1.1 proxy session: one client connection, the request on
 * it, and the upstream connection serving that request. */
#ifndef WEIR_HTTP_PROXY_H
#define WEIR_HTTP_PROXY_H

#include "http/server.h"

/* Accepts every pending connection on wl and starts a session for each. */
void proxy_accept(struct wctx *wc, struct wlistener *wl);
/* Starts draining: idle clients are closed now, busy ones after their
 * current response (which says Connection: close). */
void proxy_drain(struct wctx *wc);
/* Frees the worker's free lists (at worker exit, no clients left). */
void proxy_worker_cleanup(struct wctx *wc);
/* Called by the proxy when the last client of a draining worker closed. */
void server_worker_idle(struct wctx *wc);
/* Called by the proxy when a client closed and accepting was paused. */
void server_resume_accept(struct wctx *wc);

#endif

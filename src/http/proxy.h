/* proxy: the HTTP/1.1 proxy session: one client connection, the request on
 * it, and the upstream connection serving that request. */
#ifndef WEIR_HTTP_PROXY_H
#define WEIR_HTTP_PROXY_H

#include "server/server.h"

/* Starts a session on the accepted connection fd (owned by the session
 * from now on) from listener wl; peer is the client's address. The session
 * is counted with server_conn_open/close. */
void proxy_start(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer);
/* Starts a session on fd, one end of an HTTP/2 stream's lane
 * (http2/h2_bridge.c): plain, no accept_proxy, client_ip as the client's
 * address, not counted as a connection nor in the listener's bytes (no
 * wlistener: it may end before the lane). lst and snap (referenced) are
 * the h2 connection's. *handle gets the session (see proxy_lane_end).
 * Returns 0, or -ENOMEM with fd closed. */
int proxy_start_lane(struct wctx *wc, struct snapshot *snap, const struct cfg_listener *lst, int fd,
                     const char *client_ip, void **handle);
/* Ends a lane's session now, as if its client went away (the h2 side
 * closes the lane; the worker must not outlive the sessions it does not
 * count). handle: what proxy_start_lane stored in *handle, which the
 * session sets to NULL when it ends on its own. */
void proxy_lane_end(void *handle);
/* The worker's slot for the HTTP/2 connections' state (NULL before worker_init). */
void **proxy_h2_slot(struct wctx *wc);
/* Starts draining: idle clients are closed now, busy ones after their
 * current response (which says Connection: close). */
void proxy_drain(struct wctx *wc);
/* Creates the worker's HTTP state (wc->proto[CFG_PROTOCOL_HTTP]): its
 * upstream pool and free lists. Returns 0 or -ENOMEM. */
int proxy_worker_init(struct wctx *wc);
/* On the worker, as its loop ends: closes the pooled upstream connections. */
void proxy_worker_stop(struct wctx *wc);
/* Frees the worker's HTTP state (at worker exit, after its thread ended). */
void proxy_worker_cleanup(struct wctx *wc);

#endif

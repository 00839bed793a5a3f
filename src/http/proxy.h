/* proxy: the HTTP/1.1 proxy session: one client connection, the request on
 * it, and the upstream connection serving that request. */
#ifndef WEIR_HTTP_PROXY_H
#define WEIR_HTTP_PROXY_H

#include "core/sio.h"
#include "server/server.h"

/* Starts a session on the accepted connection fd (owned by the session
 * from now on) from listener wl; peer is the client's address. The session
 * is counted with server_conn_open/close. */
void proxy_start(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer);
/* Starts a session over s, an HTTP/2 stream's lane (http2/h2_bridge.c):
 * an in-memory stream without an fd (s->fd -1, s->impl the lane), so the
 * session watches nothing for it: the lane wakes it with proxy_lane_wake
 * when it has bytes for it or took some of its answer. No accept_proxy,
 * client_ip as the client's address, subject (NULL: none) as the verified
 * TLS client certificate's identity (the h2 connection's: it outlives the
 * session, see proxy_lane_forget), not counted as a connection nor in
 * the listener's bytes (no wlistener: it may end before the lane). lst
 * and snap (referenced) are the h2 connection's. *handle gets the session
 * (see proxy_lane_end). Returns 0, or -ENOMEM with s closed. */
int proxy_start_lane(struct wctx *wc, struct snapshot *snap, const struct cfg_listener *lst, const struct sio *s,
                     const char *client_ip, const char *subject, void **handle);
/* The lane of the session handle can be read (EV_READ) or written
 * (EV_WRITE) again: the session runs on this loop turn (ev_feed_event),
 * not from inside the caller. */
void proxy_lane_wake(void *handle, int events);
/* Ends a lane's session now, as if its client went away (the h2 side
 * closes the lane; the worker must not outlive the sessions it does not
 * count). handle: what proxy_start_lane stored in *handle, which the
 * session sets to NULL when it ends on its own. */
void proxy_lane_end(void *handle);
/* After the worker's loop ended (nothing may run on it): cuts the session
 * handle from its lane, which is going away; the worker's cleanup frees
 * the session later without touching the lane. */
void proxy_lane_forget(void *handle);
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

/* resp_proxy: the Redis-protocol listener: client sessions, command
 * dispatch to shards, replies in order, and the commands weir answers
 * itself. See docs/redis.md. */
#ifndef WEIR_RESP_PROXY_H
#define WEIR_RESP_PROXY_H

#include "server/server.h"

/* Makes the worker's Redis state current (routes of the worker's
 * snapshot, health checks running) before sessions are started on a
 * protocol redis listener. Returns 0 or -ENOMEM (logged). */
int resp_prepare(struct wctx *wc, const struct cfg_listener *lst);
/* Starts a session on the accepted connection fd (owned by it from now on);
 * resp_prepare() must have succeeded on this worker. */
void resp_start(struct wctx *wc, struct wlistener *wl, int fd);
/* Starts draining: idle sessions close now, busy ones once their replies
 * are out. */
void resp_drain(struct wctx *wc);
/* Frees everything the module holds on this worker (at worker exit). */
void resp_worker_cleanup(struct wctx *wc);

#endif

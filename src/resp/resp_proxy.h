/* resp_proxy: the Redis-protocol listener: client sessions, command
 * dispatch to shards, replies in order, and the commands weir answers
 * itself. See docs/redis.md. */
#ifndef WEIR_RESP_PROXY_H
#define WEIR_RESP_PROXY_H

#include "http/server.h"

/* Accepts every pending connection on wl (a protocol redis listener). */
void resp_accept(struct wctx *wc, struct wlistener *wl);
/* Starts draining: idle sessions close now, busy ones once their replies
 * are out. */
void resp_drain(struct wctx *wc);
/* Frees everything the module holds on this worker (at worker exit). */
void resp_worker_cleanup(struct wctx *wc);

#endif

/* store_registry: the store clients of one worker thread. Every user of a
 * `stores:` entry on a worker (cluster-wide rate limits, the cache's L2
 * tier, queues kept in Redis) shares one client per store settings, made
 * on first use and kept while the thread runs, so a reload that keeps a
 * store's settings keeps its connections. */
#ifndef WEIR_STORE_STORE_REGISTRY_H
#define WEIR_STORE_STORE_REGISTRY_H

#include "store/store.h"

struct ev_loop;
struct cfg_store;

/* The client of `cfg` on this worker thread's `loop`; *created (may be
 * NULL) says whether this call made it. Returns NULL when out of memory or
 * past 32 different settings on the thread. Only from the thread owning
 * `loop`. */
struct store *store_registry_get(struct ev_loop *loop, const struct cfg_store *cfg,
                                 int *created);

/* Whether this worker thread is ending: its clients are being freed and
 * call back every command not yet answered; such a callback must only let
 * go of its request (the loop no longer runs). */
int store_registry_exiting(void);

#endif

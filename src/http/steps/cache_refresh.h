/* cache_refresh: the background refresh of a stale object served under
 * stale-while-revalidate (RFC 5861 3), for the cache step. */
#ifndef WEIR_HTTP_STEPS_CACHE_REFRESH_H
#define WEIR_HTTP_STEPS_CACHE_REFRESH_H

#include <stdint.h>

struct txn;
struct cache;
struct cache_obj;
struct cache_flight;
struct cfg_cache;

/* Asks the route's cluster for the request of t again, with the stale
 * object's validators, on t's worker, and stores the answer (a 304 merged
 * into the stale object, a storable 200 as is); then ends flight f (which
 * the caller leads and hands over) as stored or not. Takes its own
 * references to the cache, the stale object and t's snapshot: the refresh
 * outlives the request (cc lives in the snapshot it holds). The request head of t is edited (its conditionals
 * replaced): call it only once t is answered from the cache. Returns 0, or
 * negative when it could not start (f is then still the caller's). */
int cache_refresh_start(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                        struct cache_flight *f,
                        struct cache_obj *stale, uint32_t req_flags, int has_auth,
                        uint64_t timeout_ms);

#endif

/* cache_l2: the cache step's shared second tier in a Redis store (a
 * cache's `l2: { store: NAME }`): objects missing from memory are looked
 * up there, objects stored in memory are copied there. */
#ifndef WEIR_HTTP_STEPS_CACHE_L2_H
#define WEIR_HTTP_STEPS_CACHE_L2_H

#include <stddef.h>

#include "cache/store.h"

struct txn;
struct cfg_cache;
struct store_cmd;

/* Called once with the object L2 had for the key (a reference for the
 * callee, already in memory too), or NULL (none, not usable, or the store
 * failed: then weir goes on with memory alone). Not called after
 * cache_l2_cancel, nor when the worker is ending. */
typedef void (*cache_l2_fn)(void *arg, struct cache_obj *o);

/* Asks L2 for the variant of key matching the Vary signature of a request
 * with fields req[0..n_req) (valid until fn is called). Returns the
 * command (for cache_l2_cancel) or NULL when the store refused at once
 * (then fn is never called). */
struct store_cmd *cache_l2_get(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                               struct http_slice key, struct http_slice url,
                               const struct http_header *req, size_t n_req, cache_l2_fn fn,
                               void *arg);
void cache_l2_cancel(struct store_cmd *cmd);
/* Copies o (complete, in memory) to L2 with an expiry covering its
 * freshness and stale use; objects over l2.max_object are not copied.
 * Fire and forget: a failure is counted (weir_cache_l2_errors_total) and
 * logged (at most every 10 s per worker). */
void cache_l2_put(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                  const struct cache_obj *o);
/* Removes key from L2, all its variants (PURGE of a URI). Fire and forget. */
void cache_l2_del(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                  struct http_slice key);

#define CACHE_L2_KEY_MAX 1024 /* bytes of a tag set's key */

/* Writes "weir:cache:NAME:tag:" tag, the key of a tag's set. Returns its
 * length or -ENOSPC when over cap. */
int cache_l2_tag_key(const char *cache_name, const char *tag, size_t len, char *dst, size_t cap);

#endif

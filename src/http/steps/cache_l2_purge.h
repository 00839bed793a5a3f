/* cache_l2_purge: purges reaching a cache's L2 tier (cache_l2.c): by tag,
 * by URL prefix, by URL with all its key variants, or all of it, carried
 * out in the background on one thread's store client. */
#ifndef WEIR_HTTP_STEPS_CACHE_L2_PURGE_H
#define WEIR_HTTP_STEPS_CACHE_L2_PURGE_H

#include <stddef.h>

#include "cache/store.h"

struct ev_loop;
struct cfg_cache;

/* Starts removing from cc's L2 the objects that a purge of `kind` with
 * arg[0..len) names (a URL or prefix as in the key: host/path?query; a
 * tag), using the store client of the thread running loop. c is the
 * memory side (for weir_cache_l2_errors_total{op="del"}); the job holds a
 * reference to it and copies the rest, so cc may go (a reload) meanwhile.
 * Fire and forget: failures are counted and logged. Returns 0, -ENOENT
 * when the cache has no L2, -ENOMEM, or -EAGAIN when the store refused. */
int cache_l2_purge(struct ev_loop *loop, struct cache *c, const struct cfg_cache *cc,
                   enum cache_purge_kind kind, const char *arg, size_t len);

/* A SCAN MATCH pattern in a new string (free it): p[0..n) literally (the
 * glob characters * ? [ ] and \ escaped), then the pattern `tail`. NULL
 * when out of memory. */
char *cache_l2_purge_pattern(const char *p, size_t n, const char *tail);

#endif

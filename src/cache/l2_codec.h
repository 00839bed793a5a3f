/* l2_codec: a stored response as one byte string, for the cache's shared
 * L2 tier in a Redis store (one value per key). */
#ifndef WEIR_CACHE_L2_CODEC_H
#define WEIR_CACHE_L2_CODEC_H

#include <stddef.h>

#include "cache/store.h"

struct cfg_cache;

/* Encodes o (complete) into a new buffer *out (malloc'd, the caller frees)
 * of *len bytes. Returns 0 or -ENOMEM. */
int cache_l2_encode(const struct cache_obj *o, char **out, size_t *len);

/* Decodes p[0..n) into a new object of cache c under key and url (not
 * inserted; one reference for the caller), its freshness read as cc says.
 * Never reads outside p[0..n). Returns NULL when the bytes are not an
 * encoded object, are over the object cap, or memory is short. */
struct cache_obj *cache_l2_decode(struct cache *c, const struct cfg_cache *cc,
                                  struct http_slice key, struct http_slice url, const char *p,
                                  size_t n);

#endif

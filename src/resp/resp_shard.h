/* resp_shard: which shard of a redis cluster a key belongs to.
 *
 *   key --hash tag--> hashed part --hash fn--> h --distribution--> shard
 *
 * The hash functions named crc32, crc32a, fnv*, murmur and md5 give the
 * same 32-bit values as twemproxy's (and libmemcached's), and
 * consistent_hash builds the same ketama continuum (160 points per unit of
 * weight, 4 per MD5 of "NAME-i"), so a pool moved from twemproxy keeps its
 * keys where they are. hash is h mod N; jump is Lamping & Veach's jump
 * consistent hash; range compares the key (or its numeric id) with sorted
 * bounds; directory picks the longest matching prefix.
 *
 * A struct resp_dist is built once from the configuration and then only
 * read, so one can be shared by threads. */
#ifndef WEIR_RESP_SHARD_H
#define WEIR_RESP_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "resp/redis_cfg.h"

struct resp_point {
    uint32_t value;
    uint32_t shard;
};

struct resp_dist {
    const struct cfg_redis_cluster *cfg; /* borrowed: must outlive the dist */
    struct resp_point *ring;       /* consistent_hash continuum, sorted by value */
    size_t n_points;
    uint32_t n_shards;
};

/* The key's hash under fn (twemproxy-compatible functions fit 32 bits). */
uint64_t resp_hash(enum cfg_redis_hash fn, const void *key, size_t len);
/* RFC 1321 MD5 of data into out. */
void resp_md5(const void *data, size_t len, unsigned char out[16]);
/* The part of key that is hashed: what lies between the first tag[0] and
 * the next tag[1] when that is not empty, else the whole key. tag "" = none. */
void resp_hash_tag(const char *tag, const char *key, size_t len, const char **part,
                   size_t *part_len);
/* Jump consistent hash: a bucket 0..n-1 for key (n >= 1). */
uint32_t resp_jump(uint64_t key, uint32_t n);

/* Builds d for cluster cc (borrowed). Shards with live[i] == 0 are left out
 * of the consistent-hash ring (live NULL: all in). Returns 0 or -ENOMEM. */
int resp_dist_init(struct resp_dist *d, const struct cfg_redis_cluster *cc, const uint8_t *live);
void resp_dist_free(struct resp_dist *d);
/* The shard of key, or -ENOENT when the distribution has none for it
 * (range / directory without a default, a key with no id, no live shard). */
int resp_dist_shard(const struct resp_dist *d, const char *key, size_t len);

#endif

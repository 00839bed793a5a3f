/* hash: the one general-purpose hash of weir (XXH3, 64 bits) and a 64-bit
 * integer mix. (The twemproxy-compatible key hashes of the Redis proxy live
 * in resp_shard.c: they must match twemproxy's, truncations included.) */
#ifndef WEIR_CORE_HASH_H
#define WEIR_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t len);
uint64_t hash_bytes_seed(const void *data, size_t len, uint64_t seed);
/* A 64-bit mix (splitmix64 finaliser): spreads a small integer over all bits. */
uint64_t hash_mix64(uint64_t x);

#endif

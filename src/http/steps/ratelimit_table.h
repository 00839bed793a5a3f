/* ratelimit_table: the keys of one limit and their states, shared by every
 * worker thread of the process (exact across threads), sharded by key hash
 * with a mutex per shard. */
#ifndef WEIR_HTTP_STEPS_RATELIMIT_TABLE_H
#define WEIR_HTTP_STEPS_RATELIMIT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "http/steps/ratelimit_algo.h"

#define RL_TABLE_SHARDS 64
/* Longer keys are limited by their first RL_KEY_MAX bytes. */
#define RL_KEY_MAX 512

struct rl_table;
struct metric_series;

/* A new empty table for limit `p` (copied) holding at most max_keys keys
 * (at least one per shard): a shard at its share (max_keys / shards,
 * rounded up) forgets its least recently used key to make room. Returns the
 * table (free with rl_table_free) or NULL when out of memory. */
struct rl_table *rl_table_new(const struct rl_params *p, uint64_t max_keys);
void rl_table_free(struct rl_table *t);

/* Decides one request of `key` (len bytes) at now_ms. Keys idle at now_ms
 * (rl_idle_at) are forgotten on the way. Returns 0, or -ENOMEM when a new
 * key could not be stored (*d is then untouched). Thread-safe. */
int rl_table_decide(struct rl_table *t, const char *key, size_t len, uint64_t now_ms,
                    struct rl_decision *d);
/* Counts the table's keys (a gauge: up and down as keys come and go) and
 * its evictions (a counter) in these series from now on; either may be
 * NULL. The table does not own them. */
void rl_table_set_metrics(struct rl_table *t, struct metric_series *keys,
                          struct metric_series *evictions);
/* Keys held now (for tests). */
size_t rl_table_count(struct rl_table *t);
/* Keys forgotten because a shard was full (not idle), since creation. */
uint64_t rl_table_evictions(struct rl_table *t);

#endif

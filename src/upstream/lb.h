/* lb: load-balancing algorithms over a cluster's endpoints.
 *
 * A struct lb is built once per configuration snapshot and shared by all
 * workers. Whatever an algorithm must keep between picks is split in two:
 * immutable tables (hash ring, Maglev table, weights) shared read-only, and a
 * small mutable cursor per worker (round-robin position, smooth-WRR current
 * weights, PRNG state), indexed by the worker number, so a pick takes no
 * lock. Counts that must be global (requests in flight, latency) are read
 * from the endpoints' atomics.
 *
 * Endpoints with up == 0 are never picked; hashing algorithms then move to
 * the next candidate of the key so only that endpoint's keys move. */
#ifndef WEIR_UPSTREAM_LB_H
#define WEIR_UPSTREAM_LB_H

#include <stddef.h>
#include <stdint.h>

#include "upstream/cluster_cfg.h"
#include "upstream/endpoint.h"

struct lb;

/* Builds the balancer for `n` endpoints (`eps` is borrowed: the endpoints
 * must outlive the lb) and `n_workers` worker cursors. `method` matters only
 * for CFG_BALANCE_CONSISTENT_HASH. Returns NULL on allocation failure. */
struct lb *lb_new(enum cfg_balance algo, enum cfg_hash_method method, struct endpoint **eps,
                  size_t n, unsigned n_workers);
void lb_free(struct lb *lb);

/* Picks an endpoint for one request on worker `worker` (< n_workers).
 * `key_hash` is the request's key (ip_hash, consistent_hash; ignored by the
 * others). `avoid` (may be NULL) is an endpoint to skip when another one is
 * up (a retry goes elsewhere). Returns NULL when no endpoint is up. Does not
 * touch endpoint->active: the caller counts the request it sends. */
struct endpoint *lb_pick(struct lb *lb, unsigned worker, uint64_t key_hash,
                         const struct endpoint *avoid);

/* Returns 1 when lb_pick() uses key_hash (ip_hash, consistent_hash), so the
 * caller can skip computing it otherwise; 0 for the other algorithms. */
int lb_uses_key(const struct lb *lb);

#endif

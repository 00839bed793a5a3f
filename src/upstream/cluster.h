/* cluster: the run-time side of a configured cluster: its endpoints (with
 * their shared counters) and its balancer. Built for one configuration
 * snapshot and freed with it. */
#ifndef WEIR_UPSTREAM_CLUSTER_H
#define WEIR_UPSTREAM_CLUSTER_H

#include <stddef.h>

#include "upstream/cluster_cfg.h"
#include "upstream/endpoint.h"
#include "upstream/lb.h"

struct metric_series;
struct topology;

struct cluster {
    const struct cfg_cluster *cfg; /* borrowed from the snapshot's cfg */
    struct endpoint *endpoints;
    struct endpoint **endpoint_ptrs;
    size_t n_endpoints;
    struct lb *lb;
    _Atomic int active_requests;   /* requests in flight, all workers (retry budget) */
    _Atomic int active_retries;    /* budgeted retries in flight (not connect redispatches) */
    _Atomic unsigned panic_cursor; /* round robin over all endpoints in panic mode */
    struct breaker breaker;        /* circuit_breaker with scope: cluster */
    /* series (upstream_metrics.c), NULL when metrics are off */
    struct metric_series *m_response, *m_connect, *m_retries, *m_pool_reuses, *m_pool_connects;
};

/* Carries run-time state over a reload: endpoints of `set` that were in
 * `old` (same cluster name and address) keep their health, ejection and
 * breaker state; endpoints that are new start their slow start now. */
void cluster_set_inherit(struct cluster *set, size_t n, const struct cluster *old, size_t old_n,
                         uint64_t now_ms);
/* Re-derives every endpoint's availability (ejections and breakers that
 * expired, slow-start ramps). Called periodically from the main thread. */
void cluster_set_tick(struct cluster *set, size_t n, uint64_t now_ms);
/* How many endpoints of cl are ejected now. */
size_t cluster_ejected(const struct cluster *cl, uint64_t now_ms);

/* Builds one struct cluster per cfg->clusters[i], same order, into a new
 * array *out, with the run-time endpoint changes of topo (NULL: none).
 * Returns 0, or -ENOMEM with *out untouched. */
int cluster_set_new(const struct cfg *cfg, const struct topology *topo, unsigned n_workers,
                    struct cluster **out);
void cluster_set_free(struct cluster *set, size_t n);

#endif

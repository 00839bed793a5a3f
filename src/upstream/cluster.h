/* cluster: the run-time side of a configured cluster: its endpoints (with
 * their shared counters) and its balancer. Built for one configuration
 * snapshot and freed with it. */
#ifndef WEIR_UPSTREAM_CLUSTER_H
#define WEIR_UPSTREAM_CLUSTER_H

#include <stddef.h>

#include "core/config.h"
#include "upstream/endpoint.h"
#include "upstream/lb.h"

struct cluster {
    const struct cfg_cluster *cfg; /* borrowed from the snapshot's cfg */
    struct endpoint *endpoints;
    struct endpoint **endpoint_ptrs;
    size_t n_endpoints;
    struct lb *lb;
};

/* Builds one struct cluster per cfg->clusters[i], same order, into a new
 * array *out. Returns 0, or -ENOMEM with *out untouched. */
int cluster_set_new(const struct cfg *cfg, unsigned n_workers, struct cluster **out);
void cluster_set_free(struct cluster *set, size_t n);

#endif

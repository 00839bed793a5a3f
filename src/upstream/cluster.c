/* cluster: see cluster.h. */
#include "upstream/cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"

static int cluster_init(struct cluster *cl, const struct cfg_cluster *cc, unsigned n_workers)
{
    cl->cfg = cc;
    cl->n_endpoints = cc->n_endpoints;
    cl->endpoints = calloc(cc->n_endpoints, sizeof(*cl->endpoints));
    cl->endpoint_ptrs = calloc(cc->n_endpoints, sizeof(*cl->endpoint_ptrs));
    if (!cl->endpoints || !cl->endpoint_ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < cc->n_endpoints; i++) {
        struct endpoint *ep = &cl->endpoints[i];
        const struct cfg_endpoint *ce = &cc->endpoints[i];
        units_format_addr((const struct sockaddr *)&ce->addr, ep->name, sizeof(ep->name));
        memcpy(&ep->addr, &ce->addr, sizeof(ep->addr));
        ep->addrlen = ce->addrlen;
        ep->weight = ce->weight ? ce->weight : 1;
        ep->index = (unsigned)i;
        atomic_init(&ep->active, 0);
        atomic_init(&ep->ewma_us, 0);
        atomic_init(&ep->up, 1);
        cl->endpoint_ptrs[i] = ep;
    }
    cl->lb = lb_new(cc->balance, cc->hash_method, cl->endpoint_ptrs, cc->n_endpoints, n_workers);
    return cl->lb ? 0 : -ENOMEM;
}

static void cluster_destroy(struct cluster *cl)
{
    if (cl->lb)
        lb_free(cl->lb);
    free(cl->endpoints);
    free(cl->endpoint_ptrs);
}

int cluster_set_new(const struct cfg *cfg, unsigned n_workers, struct cluster **out)
{
    struct cluster *set = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        if (cluster_init(&set[i], &cfg->clusters[i], n_workers) != 0) {
            cluster_set_free(set, i + 1);
            return -ENOMEM;
        }
    }
    *out = set;
    return 0;
}

void cluster_set_free(struct cluster *set, size_t n)
{
    if (!set)
        return;
    for (size_t i = 0; i < n; i++)
        cluster_destroy(&set[i]);
    free(set);
}

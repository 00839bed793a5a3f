/* cluster: see cluster.h. */
#include "upstream/cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/units.h"
#include "server/config.h"
#include "upstream/topology.h"
#include "upstream/upstream_metrics.h"

/* Builds cl from cc with the endpoints eps[0..n) (cc's, with the run-time
 * changes applied: topology.h). */
static int cluster_init(struct cluster *cl, const struct cfg_cluster *cc,
                        const struct cfg_endpoint *eps, size_t n, unsigned n_workers)
{
    cl->cfg = cc;
    atomic_init(&cl->active_requests, 0);
    atomic_init(&cl->active_retries, 0);
    atomic_init(&cl->panic_cursor, 0);
    breaker_init(&cl->breaker);
    cl->n_endpoints = n;
    cl->endpoints = calloc(n ? n : 1, sizeof(*cl->endpoints));
    cl->endpoint_ptrs = calloc(n ? n : 1, sizeof(*cl->endpoint_ptrs));
    if (!cl->endpoints || !cl->endpoint_ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct endpoint *ep = &cl->endpoints[i];
        const struct cfg_endpoint *ce = &eps[i];
        units_format_addr((const struct sockaddr *)&ce->addr, ep->name, sizeof(ep->name));
        memcpy(&ep->addr, &ce->addr, sizeof(ep->addr));
        ep->addrlen = ce->addrlen;
        ep->weight = ce->weight ? ce->weight : 1;
        ep->index = (unsigned)i;
        atomic_init(&ep->active, 0);
        atomic_init(&ep->ewma_us, 0);
        atomic_init(&ep->up, ce->drain || ce->down ? 0 : 1);
        ep->cluster = cl;
        ep->drain = ce->drain;
        ep->down = ce->down;
        atomic_init(&ep->healthy, 1);
        atomic_init(&ep->ejected_until_ms, 0);
        atomic_init(&ep->ejections, 0);
        atomic_init(&ep->consecutive_failures, 0);
        atomic_init(&ep->ready_since_ms, 0);
        atomic_init(&ep->share_pct, 100);
        breaker_init(&ep->breaker);
        cl->endpoint_ptrs[i] = ep;
    }
    cl->lb = lb_new(cc->balance, cc->hash_method, cl->endpoint_ptrs, n, n_workers);
    upstream_metrics_attach(cl);
    return cl->lb ? 0 : -ENOMEM;
}

static void cluster_destroy(struct cluster *cl)
{
    upstream_metrics_detach(cl);
    if (cl->lb)
        lb_free(cl->lb);
    free(cl->endpoints);
    free(cl->endpoint_ptrs);
}

int cluster_set_new(const struct cfg *cfg, const struct topology *topo, unsigned n_workers,
                    struct cluster **out)
{
    struct cluster *set = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        struct cfg_endpoint *eps;
        size_t n;
        int rc = topology_endpoints(topo, &cfg->clusters[i], &eps, &n);
        if (rc == 0) {
            rc = cluster_init(&set[i], &cfg->clusters[i], eps, n, n_workers);
            free(eps);
        }
        if (rc != 0) {
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

static const struct endpoint *cluster_find_endpoint(const struct cluster *cl, const struct endpoint *ep)
{
    for (size_t i = 0; i < cl->n_endpoints; i++)
        if (cl->endpoints[i].addrlen == ep->addrlen &&
            memcmp(&cl->endpoints[i].addr, &ep->addr, ep->addrlen) == 0)
            return &cl->endpoints[i];
    return NULL;
}

static void cluster_copy_state(struct endpoint *to, const struct endpoint *from)
{
    atomic_store(&to->healthy, atomic_load(&from->healthy));
    atomic_store(&to->ejected_until_ms, atomic_load(&from->ejected_until_ms));
    atomic_store(&to->ejections, atomic_load(&from->ejections));
    atomic_store(&to->ready_since_ms, atomic_load(&from->ready_since_ms));
    atomic_store(&to->ewma_us, atomic_load(&from->ewma_us));
    atomic_store(&to->breaker.state, atomic_load(&from->breaker.state));
    atomic_store(&to->breaker.opened_at_ms, atomic_load(&from->breaker.opened_at_ms));
}

void cluster_set_inherit(struct cluster *set, size_t n, const struct cluster *old, size_t old_n,
                         uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        const struct cluster *prev = NULL;
        for (size_t j = 0; j < old_n && !prev; j++)
            if (strcmp(old[j].cfg->name, set[i].cfg->name) == 0)
                prev = &old[j];
        for (size_t e = 0; e < set[i].n_endpoints; e++) {
            struct endpoint *ep = &set[i].endpoints[e];
            const struct endpoint *was = prev ? cluster_find_endpoint(prev, ep) : NULL;
            if (was)
                cluster_copy_state(ep, was);
            else if (set[i].cfg->slow_start_ms)
                atomic_store(&ep->ready_since_ms, now_ms ? now_ms : 1);
            endpoint_refresh(ep, now_ms);
        }
        if (prev)
            atomic_store(&set[i].breaker.state, atomic_load(&prev->breaker.state));
    }
}

void cluster_set_tick(struct cluster *set, size_t n, uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < set[i].n_endpoints; e++)
            endpoint_refresh(&set[i].endpoints[e], now_ms);
}

size_t cluster_ejected(const struct cluster *cl, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->n_endpoints; i++)
        if (atomic_load_explicit(&cl->endpoints[i].ejected_until_ms, memory_order_relaxed) > now_ms)
            n++;
    return n;
}

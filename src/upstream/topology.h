/* topology: run-time changes to the clusters' endpoints, made through the
 * admin API (add, remove, weight, drain, maintenance) or by service
 * registration (an endpoint kept while it heartbeats), kept apart from
 * the configuration file and applied over it whenever a snapshot is built.
 *
 *   cfg cluster endpoints ──┐
 *                           ├─> topology_endpoints() ─> the snapshot's cluster
 *   topology (overrides) ───┘
 *
 * The file stays the authority for what it names: a reload drops every
 * change to an endpoint the new file lists in that cluster
 * (topology_reconcile), so editing the file always wins. Main thread only. */
#ifndef WEIR_UPSTREAM_TOPOLOGY_H
#define WEIR_UPSTREAM_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upstream/cluster_cfg.h"

#define TOPOLOGY_MAX_ITEMS 100000
#define TOPOLOGY_MAX_META 4096

/* One change to one address of one cluster. */
struct topology_item {
    char *cluster;
    char *address;                 /* as given: "127.0.0.1:9001" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int added;                     /* not in the file: added by the API or a registration */
    int removed;                   /* taken out (DELETE) */
    int weight;                    /* 0: unchanged */
    int drain;                     /* -1 unchanged, 0 or 1 */
    int down;                      /* -1 unchanged, 0 or 1: maintenance */
    uint64_t ttl_ms;               /* registration: kept while it heartbeats within this */
    uint64_t expires_ms;           /* registration: 0 = never */
    char *meta;                    /* registration: JSON text, or NULL */
    char *dns;                     /* resolved from this endpoint of the file ("name:port"), or NULL */
};

struct topology {
    struct topology_item *items;
    size_t n, cap;
};

/* The item of (cluster, address), or NULL. */
struct topology_item *topology_find(struct topology *t, const char *cluster,
                                    const struct sockaddr_storage *addr, socklen_t addrlen);
/* The item of (cluster, address), made empty (nothing changed) when new.
 * Returns NULL when memory is short or the table is full. */
struct topology_item *topology_get(struct topology *t, const char *cluster, const char *address,
                                   const struct sockaddr_storage *addr, socklen_t addrlen);
/* Forgets one item. */
void topology_drop(struct topology *t, struct topology_item *it);
/* The endpoints cluster cc has with the changes applied, in a new array
 * (*out, n_out; the caller frees it, not the strings, which are
 * borrowed): the file's endpoints in order (minus removed ones, with
 * weight / drain / down applied), then the added ones. t may be NULL.
 * Returns 0 or -ENOMEM. */
int topology_endpoints(const struct topology *t, const struct cfg_cluster *cc,
                       struct cfg_endpoint **out, size_t *n_out);
/* dst (uninitialised) becomes a copy of src with its own strings, to
 * restore src from when what follows a change fails. Returns 0 or
 * -ENOMEM (dst then empty). */
int topology_copy(struct topology *dst, const struct topology *src);
/* After a reload to cfg: drops changes to endpoints the file now names
 * itself and to clusters it no longer has. Returns how many were dropped. */
size_t topology_reconcile(struct topology *t, const struct cfg *cfg);
/* Registrations whose TTL passed at now_ms are dropped, each logged.
 * Returns how many. */
size_t topology_expire(struct topology *t, uint64_t now_ms);
void topology_free(struct topology *t);

#endif

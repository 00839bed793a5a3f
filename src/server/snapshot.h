/* snapshot: one loaded configuration and what is built from it (the
 * clusters with their endpoints, the access log file), immutable and
 * reference counted.
 *
 * The main thread, every worker and every connection hold a reference to
 * the snapshot they use, so a reload never changes anything under a
 * request in flight; the last reference frees it. */
#ifndef WEIR_SERVER_SNAPSHOT_H
#define WEIR_SERVER_SNAPSHOT_H

#include <stdatomic.h>

#include "server/config.h"
#include "upstream/cluster.h"

struct server_protocol;
struct topology;

struct snapshot {
    _Atomic int refs;
    unsigned generation;
    struct cfg *cfg;
    struct cluster *clusters;      /* cfg->n_clusters, same order */
    int access_fd;                 /* -1: access log off */
    const struct server_protocol *protocols; /* CFG_PROTOCOL_COUNT rows */
    void *proto[CFG_PROTOCOL_COUNT]; /* each protocol's shared state (snapshot_init) */
};

/* Takes ownership of cfg on success (one reference, the caller's), with
 * the clusters' endpoints as cfg lists them changed by topo (NULL: none;
 * only read here). Returns NULL (cfg still the caller's) when memory is
 * short or the access log cannot be opened (err says why). */
struct snapshot *snapshot_new(struct cfg *cfg, const struct topology *topo, unsigned n_workers,
                              const struct server_protocol *protocols, char *err, size_t err_size);
/* Main thread: carries over from `old` what still applies (endpoint
 * health, breakers, each protocol's shared state). */
void snapshot_inherit(struct snapshot *s, const struct snapshot *old);
/* Thread-safe. */
void snapshot_ref(struct snapshot *s);
/* Thread-safe; the last reference frees s, its clusters and its cfg. */
void snapshot_unref(struct snapshot *s);

#endif

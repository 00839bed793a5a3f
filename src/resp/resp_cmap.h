/* resp_cmap: the slot map of a Redis Cluster backend (`redis_clusters[].
 * cluster: [seeds]`), fetched on the main thread and published to the
 * workers as an immutable, reference-counted map.
 *
 *   main thread (resp_cmap_fetch)              workers (resp_backend.c routes)
 *   every health_check.interval, or soon      st->cmap_version moved? take the
 *   after a worker saw MOVED (cmap_stale):     new map (one reference, under the
 *   CLUSTER SHARDS (else CLUSTER SLOTS) to a   state's lock, once per change),
 *   seed or a known node --> new map -->        rebuild the shards from its nodes;
 *   st->cmap (under lock), cmap_version++      per command: slot_node[slot]
 *
 * A map is never changed once published, so a worker reads it without any
 * lock; only taking a new one locks, once per map change. */
#ifndef WEIR_RESP_CMAP_H
#define WEIR_RESP_CMAP_H

#include <ev.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rcluster.h"
#include "resp/redis_cfg.h"

#define RESP_CMAP_NONE 0xffffu   /* slot_node of a slot no node serves */

/* One primary of the cluster with its replicas (addresses owned). */
struct resp_cmap_node {
    struct cfg_redis_server primary;
    struct cfg_redis_server *replicas;
    size_t n_replicas;
    uint32_t first_slot;           /* a slot it serves (fan-out commands use it) */
};

struct resp_cmap {
    _Atomic int refs;
    struct resp_cmap_node *nodes;
    size_t n_nodes;
    uint16_t slot_node[RCLUSTER_SLOTS]; /* node index, RESP_CMAP_NONE = not served */
};

void resp_cmap_ref(struct resp_cmap *m);
/* Drops a reference; the last one frees m. NULL is ignored. */
void resp_cmap_unref(struct resp_cmap *m);

struct resp_health_state;

/* The state's current map with a reference the caller drops, or NULL when
 * none was fetched yet. Any thread (takes the state's lock). */
struct resp_cmap *resp_cmap_get(struct resp_health_state *st);
/* Asks the main thread to fetch the map again soon (after a MOVED). Any
 * thread, lock free; the fetcher rate-limits. */
void resp_cmap_stale(struct resp_health_state *st);

struct resp_cmap_fetch;

/* Starts fetching the slot map of st's cluster (st->cfg->n_seeds > 0) on
 * the main thread's loop; takes a reference of st. NULL on ENOMEM. */
struct resp_cmap_fetch *resp_cmap_fetch_new(struct ev_loop *loop, struct resp_health_state *st);
/* Stops fetching and frees f; NULL is ignored. */
void resp_cmap_fetch_free(struct resp_cmap_fetch *f);

#endif

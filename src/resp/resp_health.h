/* resp_health: health checks of the Redis servers of every redis cluster,
 * run once, on the main thread, and their verdicts shared with the workers.
 *
 *   main thread (resp_health)                 workers (resp_backend.c routes)
 *   PING / INFO replication every interval    read slot.up / lag_ok / ewma_us
 *   SENTINEL get-master-addr-by-name  ----->  state.version moved? re-read the
 *     writes slots (atomics), the sentinel    sentinel addresses (under lock),
 *     address (under lock), then version++    re-eject shards (auto_eject)
 *
 * One struct resp_health_state per redis cluster per snapshot, reference
 * counted (the snapshot, the checker and each worker's route hold one). A
 * reload carries the state of servers whose address did not change, and
 * the primary sentinel named for a master of the same name, over to the new
 * snapshot's states. Only the main thread writes a state; workers only read
 * it, so every worker sees the same view of a shard. */
#ifndef WEIR_RESP_HEALTH_H
#define WEIR_RESP_HEALTH_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "resp/redis_cfg.h"
#include "server/config.h"

#define RESP_HEALTH_ADDR_MAX 300

/* The checked state of one server: a shard's primary (the configured one,
 * or the one sentinel named) or one of its replicas. */
struct resp_health_slot {
    _Atomic int up;                /* answers PING (down after health_check.fall failures) */
    _Atomic int lag_ok;            /* replica: link to its primary up, not lagging */
    _Atomic uint64_t ewma_us;      /* PING round trip, 0 = none yet */
    _Atomic uint64_t last_ok_ms;   /* endpoint_now_ms() of the last answered PING, 0 = none */
    /* main thread only: */
    struct sockaddr_storage addr;  /* what is checked */
    socklen_t addrlen;
    uint32_t fails;                /* consecutive failed checks */
};

struct resp_health_shard {
    struct resp_health_slot primary;
    struct resp_health_slot *replicas;
    size_t n_replicas;
    char sentinel_addr[RESP_HEALTH_ADDR_MAX]; /* under the state's lock: "ip:port" sentinel
                                                 named for the master, "" = none yet */
};

struct resp_health_state {
    _Atomic int refs;
    _Atomic uint64_t version;      /* bumped (release) after a primary went up or down or
                                      sentinel named another primary */
    pthread_mutex_t lock;          /* sentinel_addr of the shards */
    const struct cfg_redis_cluster *cfg; /* borrowed from the snapshot that made it */
    struct resp_health_shard *shards;
    size_t n_shards;               /* cfg->n_shards (cfg is not needed to free the state) */
    /* a Redis Cluster backend (cfg->n_seeds > 0): its slot map (resp_cmap.h) */
    struct resp_cmap *cmap;        /* under lock: the current map (one reference), or NULL */
    _Atomic uint64_t cmap_version; /* bumped (release) after cmap changed */
    _Atomic int cmap_stale;        /* a worker saw MOVED: fetch the map again soon */
};

/* Builds one state per cfg->redis_clusters[i] (every server up, no sentinel
 * address) into a new array *out, each with one reference owned by the
 * array. Returns 0, or -ENOMEM with *out untouched. */
int resp_health_states_new(const struct cfg *cfg, struct resp_health_state ***out);
/* Drops the array's reference of each of its n states and frees it. */
void resp_health_states_free(struct resp_health_state **states, size_t n);
/* Copies what `old` learnt into `states` (before they are published): a
 * server at the same address in the cluster of the same name keeps up,
 * lag_ok and round trip; a master of the same name keeps the primary
 * sentinel named. */
void resp_health_states_inherit(struct resp_health_state **states, size_t n,
                                struct resp_health_state *const *old, size_t old_n);

void resp_health_state_ref(struct resp_health_state *st);
void resp_health_state_unref(struct resp_health_state *st);
/* Copies the primary sentinel named for shard i into out ("" = none).
 * Any thread. */
void resp_health_sentinel_addr(struct resp_health_state *st, size_t i, char *out, size_t size);
/* A worker may send to a server checked by `slot` whose last data-connection
 * failure was at failed_ms (0 = none): the slot is up and, after such a
 * failure, a check passed since. */
int resp_health_usable(const struct resp_health_slot *slot, uint64_t failed_ms);

struct resp_health;

/* Starts checking every server of the n states on the main thread's loop
 * (and asking their sentinels); takes a reference of each state. NULL on
 * ENOMEM. */
struct resp_health *resp_health_new(struct ev_loop *loop, struct resp_health_state *const *states,
                                    size_t n);
/* Stops every check (closing its sockets) and frees h; NULL is ignored. */
void resp_health_free(struct resp_health *h);

#endif

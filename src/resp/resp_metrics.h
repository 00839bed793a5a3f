/* resp_metrics: the Redis proxy's metric families (public names, listed in
 * docs/operations.md) and the snapshot state of the redis protocol row.
 *
 *   snap->proto[CFG_PROTOCOL_REDIS] -> struct resp_snap
 *        health[c]          shared shard health of redis cluster c (resp_health.h)
 *        listeners[i]       commands[class] (cells ok/error/backend_error), seconds
 *        clusters[c].errors[shard]         (cells connect/timeout/closed/protocol)
 *
 * A session keeps a pointer to its listener's row (its snapshot reference
 * keeps it alive); a worker's server keeps a pointer to its shard's error
 * series, re-pointed whenever the worker rebuilds its routes. Every update
 * is a metrics_add / metrics_observe_ns on the calling worker's own slot.
 * weir_redis_server_up is read at scrape time from the health states. */
#ifndef WEIR_RESP_METRICS_H
#define WEIR_RESP_METRICS_H

#include <stdint.h>

#include "core/metrics.h"
#include "resp/resp_cmd.h"

struct snapshot;
struct server;
struct resp_health_state;

/* command_class: what a command is, from the command table's flags. */
#define RESP_CLASS_LIST(X)                                                           \
    X(RESP_CLASS_READ, "read")             /* reads one key (RC_READ) */             \
    X(RESP_CLASS_WRITE, "write")           /* writes one key (RC_WRITE) */           \
    X(RESP_CLASS_MULTI_KEY, "multi_key")   /* split per key: MGET, MSET, DEL... */   \
    X(RESP_CLASS_BLOCKING, "blocking")     /* BLPOP, BRPOP, BLMOVE... */             \
    X(RESP_CLASS_PUBSUB, "pubsub")         /* (P|S)SUBSCRIBE, PUBLISH, PUBSUB... */  \
    X(RESP_CLASS_TRANSACTION, "transaction") /* MULTI, EXEC, DISCARD, WATCH... */   \
    X(RESP_CLASS_ADMIN, "admin")           /* answered by weir: PING, INFO... */     \
    X(RESP_CLASS_OTHER, "other")           /* unknown, unsupported, EVAL... */

#define RESP_CLASS_ENUM(e, s) e,
enum resp_class { RESP_CLASS_LIST(RESP_CLASS_ENUM) RESP_CLASS_COUNT };
#undef RESP_CLASS_ENUM

/* result: the cells of weir_redis_commands_total. */
enum resp_result { RESP_RESULT_OK, RESP_RESULT_ERROR, RESP_RESULT_BACKEND_ERROR,
                   RESP_RESULT_COUNT };

/* kind: the cells of weir_redis_backend_errors_total. */
#define RESP_BACKEND_ERROR_LIST(X)                                                   \
    X(RESP_BERR_CONNECT, "connect")   /* connect refused / failed / timed out */     \
    X(RESP_BERR_TIMEOUT, "timeout")   /* response_timeout passed */                  \
    X(RESP_BERR_CLOSED, "closed")     /* reset or closed by the server */            \
    X(RESP_BERR_PROTOCOL, "protocol") /* a reply that is not RESP, or unasked */

#define RESP_BERR_ENUM(e, s) e,
enum resp_backend_error { RESP_BACKEND_ERROR_LIST(RESP_BERR_ENUM) RESP_BERR_COUNT };
#undef RESP_BERR_ENUM

struct resp_listener_metrics {
    struct metric_series *commands[RESP_CLASS_COUNT];
    struct metric_series *seconds;
};

struct resp_cluster_metrics {
    struct metric_series **errors; /* one per shard */
    size_t n_shards;
};

struct resp_snap {
    struct resp_health_state **health;        /* one per cfg->redis_clusters */
    struct resp_listener_metrics *listeners;  /* one per cfg->listeners (redis ones set) */
    struct resp_cluster_metrics *clusters;    /* one per cfg->redis_clusters */
};

/* The redis row's snapshot_init / snapshot_free: health states and series.
 * Returns 0 or -ENOMEM (series that could not be made stay NULL). */
int resp_snap_init(struct snapshot *snap);
void resp_snap_free(struct snapshot *snap);

/* Scrape-time reading of every server's health (weir_redis_server_up):
 * registered by the checks_start of the redis row, for srv's running
 * snapshot. Main thread. */
void resp_metrics_start(struct server *srv);
void resp_metrics_stop(struct server *srv);

/* The row of listener `index` of snap (NULL when it has none). */
const struct resp_listener_metrics *resp_metrics_listener(const struct snapshot *snap,
                                                         size_t index);
/* The error series of shard i of redis cluster c of snap, or NULL. */
struct metric_series *resp_metrics_shard_errors(const struct snapshot *snap, size_t c, size_t i);

/* The command_class of cmd (NULL: an unknown command). */
unsigned resp_metrics_class(const struct resp_cmd *cmd);

#endif

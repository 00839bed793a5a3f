/* resp_metrics: see resp_metrics.h. The families are public names
 * (docs/operations.md lists them): change them only with the docs.
 *
 * weir_redis_server_up has a `server` label besides cluster, shard and
 * role: a shard may have several replicas, and each needs its own sample. */
#include "resp/resp_metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/units.h"
#include "resp/resp_health.h"
#include "server/server.h"
#include "server/snapshot.h"

#define RESP_CLASS_NAME(e, s) s,
static const char *const resp_class_names[] = { RESP_CLASS_LIST(RESP_CLASS_NAME) };
#undef RESP_CLASS_NAME
static const char *const resp_result_names[] = { "ok", "error", "backend_error" };
#define RESP_BERR_NAME(e, s) s,
static const char *const resp_berr_names[] = { RESP_BACKEND_ERROR_LIST(RESP_BERR_NAME) };
#undef RESP_BERR_NAME

static const struct metric_family resp_family_commands = {
    .name = "weir_redis_commands_total",
    .help = "Redis commands answered to clients, by class and result (error: an error reply; "
            "backend_error: weir could not get the shard's reply).",
    .type = METRIC_COUNTER,
    .labels = { "listener", "command_class" },
    .cells_label = "result",
    .cells = resp_result_names,
    .n_cells = RESP_RESULT_COUNT,
};

static const struct metric_family resp_family_seconds = {
    .name = "weir_redis_command_seconds",
    .help = "From a Redis command parsed to its reply written out to the client.",
    .type = METRIC_HISTOGRAM,
    .labels = { "listener" },
};

static const struct metric_family resp_family_errors = {
    .name = "weir_redis_backend_errors_total",
    .help = "Failed connections to a shard's servers, by kind.",
    .type = METRIC_COUNTER,
    .labels = { "cluster", "shard" },
    .cells_label = "kind",
    .cells = resp_berr_names,
    .n_cells = RESP_BERR_COUNT,
};

static const struct metric_family resp_family_up = {
    .name = "weir_redis_server_up",
    .help = "1 when the server answers weir's health checks.",
    .type = METRIC_GAUGE,
    .labels = { "cluster", "shard", "role", "server" },
};

/* ---- command classes ---- */

static uint8_t resp_class_table[RESP_CMD_COUNT];

static unsigned resp_class_compute(const struct resp_cmd *c)
{
    switch (c->id) {
    case RESP_CMD_SUBSCRIBE: case RESP_CMD_UNSUBSCRIBE: case RESP_CMD_PSUBSCRIBE:
    case RESP_CMD_PUNSUBSCRIBE: case RESP_CMD_SSUBSCRIBE: case RESP_CMD_SUNSUBSCRIBE:
    case RESP_CMD_PUBLISH: case RESP_CMD_SPUBLISH: case RESP_CMD_PUBSUB:
        return RESP_CLASS_PUBSUB;
    case RESP_CMD_MULTI: case RESP_CMD_EXEC: case RESP_CMD_DISCARD: case RESP_CMD_WATCH:
    case RESP_CMD_UNWATCH:
        return RESP_CLASS_TRANSACTION;
    default:
        break;
    }
    if (c->flags & RC_UNSUPPORTED)
        return RESP_CLASS_OTHER;
    if (c->flags & RC_BLOCKING)
        return RESP_CLASS_BLOCKING;
    if (c->flags & RC_SPLIT)
        return RESP_CLASS_MULTI_KEY;
    if (c->flags & RC_PROXY)
        return RESP_CLASS_ADMIN;
    if (c->flags & RC_WRITE)
        return RESP_CLASS_WRITE;
    if (c->flags & RC_READ)
        return RESP_CLASS_READ;
    return RESP_CLASS_OTHER;
}

/* Fills the table once, on the main thread, before the first snapshot
 * reaches a worker (workers only read it; later snapshots leave it). */
static void resp_class_init(void)
{
    static int done; /* main thread only */
    if (done)
        return;
    for (size_t i = 0; i < RESP_CMD_COUNT; i++)
        resp_class_table[i] = (uint8_t)resp_class_compute(&resp_cmds[i]);
    done = 1;
}

unsigned resp_metrics_class(const struct resp_cmd *cmd)
{
    return cmd ? resp_class_table[cmd->id] : RESP_CLASS_OTHER;
}

/* ---- series of a snapshot ---- */

static void resp_listener_get(struct resp_listener_metrics *lm, const char *name)
{
    for (unsigned c = 0; c < RESP_CLASS_COUNT; c++) {
        const char *v[] = { name, resp_class_names[c] };
        lm->commands[c] = metrics_series_get(&resp_family_commands, v);
    }
    const char *v[] = { name };
    lm->seconds = metrics_series_get(&resp_family_seconds, v);
}

static void resp_listener_put(struct resp_listener_metrics *lm)
{
    for (unsigned c = 0; c < RESP_CLASS_COUNT; c++)
        metrics_series_put(lm->commands[c]);
    metrics_series_put(lm->seconds);
}

static int resp_cluster_get(struct resp_cluster_metrics *cm, const struct cfg_redis_cluster *cc)
{
    cm->errors = calloc(cc->n_shards ? cc->n_shards : 1, sizeof(*cm->errors));
    if (!cm->errors)
        return -ENOMEM;
    cm->n_shards = cc->n_shards;
    for (size_t i = 0; i < cc->n_shards; i++) {
        const char *v[] = { cc->name, cc->shards[i].name };
        cm->errors[i] = metrics_series_get(&resp_family_errors, v);
    }
    return 0;
}

static void resp_cluster_put(struct resp_cluster_metrics *cm)
{
    for (size_t i = 0; cm->errors && i < cm->n_shards; i++)
        metrics_series_put(cm->errors[i]);
    free(cm->errors);
}

static void resp_snap_metrics_free(struct resp_snap *rs, const struct cfg *cfg)
{
    for (size_t i = 0; rs->listeners && i < cfg->n_listeners; i++)
        resp_listener_put(&rs->listeners[i]);
    for (size_t c = 0; rs->clusters && c < cfg->n_redis_clusters; c++)
        resp_cluster_put(&rs->clusters[c]);
    free(rs->listeners);
    free(rs->clusters);
}

int resp_snap_init(struct snapshot *snap)
{
    const struct cfg *cfg = snap->cfg;
    struct resp_snap *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return -ENOMEM;
    resp_class_init();
    if (resp_health_states_new(cfg, &rs->health) != 0)
        goto fail;
    rs->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*rs->listeners));
    rs->clusters = calloc(cfg->n_redis_clusters ? cfg->n_redis_clusters : 1, sizeof(*rs->clusters));
    if (!rs->listeners || !rs->clusters)
        goto fail_health;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].protocol == CFG_PROTOCOL_REDIS)
            resp_listener_get(&rs->listeners[i], cfg->listeners[i].name);
    for (size_t c = 0; c < cfg->n_redis_clusters; c++)
        if (resp_cluster_get(&rs->clusters[c], &cfg->redis_clusters[c]) != 0)
            goto fail_health;
    snap->proto[CFG_PROTOCOL_REDIS] = rs;
    return 0;
fail_health:
    resp_snap_metrics_free(rs, cfg);
    resp_health_states_free(rs->health, cfg->n_redis_clusters);
fail:
    free(rs);
    return -ENOMEM;
}

void resp_snap_free(struct snapshot *snap)
{
    struct resp_snap *rs = snap->proto[CFG_PROTOCOL_REDIS];
    if (!rs)
        return;
    resp_snap_metrics_free(rs, snap->cfg);
    resp_health_states_free(rs->health, snap->cfg->n_redis_clusters);
    free(rs);
    snap->proto[CFG_PROTOCOL_REDIS] = NULL;
}

const struct resp_listener_metrics *resp_metrics_listener(const struct snapshot *snap,
                                                         size_t index)
{
    const struct resp_snap *rs = snap->proto[CFG_PROTOCOL_REDIS];
    if (!rs || index >= snap->cfg->n_listeners)
        return NULL;
    return &rs->listeners[index];
}

struct metric_series *resp_metrics_shard_errors(const struct snapshot *snap, size_t c, size_t i)
{
    const struct resp_snap *rs = snap->proto[CFG_PROTOCOL_REDIS];
    if (!rs || c >= snap->cfg->n_redis_clusters || i >= rs->clusters[c].n_shards)
        return NULL;
    return rs->clusters[c].errors[i];
}

/* ---- weir_redis_server_up ---- */

static void resp_collect_slot(struct metrics_out *o, const struct cfg_redis_cluster *cc,
                              size_t shard, const char *role, const struct resp_health_slot *slot)
{
    char addr[RESP_HEALTH_ADDR_MAX];
    units_format_addr((const struct sockaddr *)&slot->addr, addr, sizeof(addr));
    const char *v[] = { cc->name, cc->shards[shard].name, role, addr };
    int up = atomic_load_explicit(&slot->up, memory_order_relaxed) != 0;
    metrics_write_sample(o, &resp_family_up, v, up);
}

/* The running snapshot's health, read on the main thread (which writes it). */
static void resp_collect_up(struct metrics_out *o, void *arg)
{
    const struct server *srv = arg;
    const struct snapshot *snap = srv->snap;
    const struct resp_snap *rs = snap ? snap->proto[CFG_PROTOCOL_REDIS] : NULL;
    if (!rs || snap->cfg->n_redis_clusters == 0)
        return;
    metrics_write_family(o, &resp_family_up);
    for (size_t c = 0; c < snap->cfg->n_redis_clusters; c++) {
        const struct resp_health_state *st = rs->health[c];
        for (size_t i = 0; i < st->n_shards; i++) {
            const struct resp_health_shard *sh = &st->shards[i];
            resp_collect_slot(o, st->cfg, i, "primary", &sh->primary);
            for (size_t k = 0; k < sh->n_replicas; k++)
                resp_collect_slot(o, st->cfg, i, "replica", &sh->replicas[k]);
        }
    }
}

void resp_metrics_start(struct server *srv)
{
    metrics_collector_remove(resp_collect_up, srv);
    if (metrics_collector_add(resp_collect_up, srv) != 0)
        log_error("out of memory: weir_redis_server_up is not exposed");
}

void resp_metrics_stop(struct server *srv)
{
    metrics_collector_remove(resp_collect_up, srv);
}

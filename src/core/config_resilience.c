/* config_resilience: the keys that keep a failing backend from costing
 * clients anything: a cluster's health_check, outlier_detection,
 * circuit_breaker, queueing and slow start; a route's retry and timeout; an
 * endpoint's drain. Parsed with the same tables and error format as the core
 * shape (config_parse.h); config.c registers these handlers in its tables.
 *
 * A block that is present is enabled with every key it omits at its default;
 * a block that is absent leaves the feature off. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/units.h"
#include "upstream/cluster_cfg.h"

/* ---- route.retry ------------------------------------------------------------ */

static int cfg_rt_on(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = obj;
    memset(&r->on_status, 0, sizeof(r->on_status));
    return cluster_cfg_parse_failures(ctx, v, "retry.on", &r->on_mask, &r->on_status);
}

static int cfg_rt_methods(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "idempotent", "all" };
    return cfg_parse_enum(ctx, v, "retry methods", names, 2, &((struct cfg_retry *)obj)->all_methods);
}

static const struct cfg_key cfg_backoff_keys[] = {
    CFG_FIELD("base", CFG_KIND_DURATION, struct cfg_retry, backoff_base_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("max", CFG_KIND_DURATION, struct cfg_retry, backoff_max_ms, 1, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(cfg_backoff_map, "retry backoff", cfg_backoff_keys);

static int cfg_rt_backoff(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = obj;
    int rc = cfg_parse_map(ctx, v, &cfg_backoff_map, obj, NULL);
    if (rc == 0 && r->backoff_max_ms < r->backoff_base_ms)
        return cfg_fail(ctx, v, "retry backoff: max must be >= base");
    return rc;
}

static int cfg_rt_budget(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "retry budget", 0, &((struct cfg_retry *)obj)->budget_percent);
}

static const struct cfg_key cfg_rt_keys[] = {
    CFG_FIELD("attempts", CFG_KIND_UINT, struct cfg_retry, attempts, 1, 10),
    CFG_FUNC("on", cfg_rt_on, false),
    CFG_FUNC("methods", cfg_rt_methods, false),
    CFG_FUNC("backoff", cfg_rt_backoff, false),
    CFG_FUNC("budget", cfg_rt_budget, false),
    CFG_FIELD("min_retry_concurrency", CFG_KIND_UINT, struct cfg_retry, min_retry_concurrency, 0, 1000000),
    CFG_FIELD("per_try_timeout", CFG_KIND_DURATION, struct cfg_retry, per_try_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("buffer_body", CFG_KIND_SIZE, struct cfg_retry, buffer_body, 0, 1u << 20),
};
CFG_MAP_DEFINE(cfg_rt_map, "retry", cfg_rt_keys);

int cfg_parse_retry(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = &((struct cfg_route *)obj)->retry;
    r->enabled = 1;
    r->attempts = 3;
    r->on_mask = CFG_FAILURE_BIT(CFG_FAILURE_CONNECT) | CFG_FAILURE_BIT(CFG_FAILURE_RESET) |
                 CFG_FAILURE_BIT(CFG_FAILURE_TIMEOUT);
    for (int st = 502; st <= 504; st++)
        r->on_status.bits[st / 64] |= 1ULL << (st % 64);
    r->backoff_base_ms = 25;
    r->backoff_max_ms = 250;
    r->budget_percent = 20;
    r->min_retry_concurrency = 3;
    r->buffer_body = 64 * 1024;
    return cfg_parse_map(ctx, v, &cfg_rt_map, r, NULL);
}

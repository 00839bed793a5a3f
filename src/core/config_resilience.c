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

#define CFG_FAILURE_NAME(e, s) s,
static const char *const cfg_failure_names[] = { CFG_FAILURE_LIST(CFG_FAILURE_NAME) };
#undef CFG_FAILURE_NAME

/* ---- small value parsers ------------------------------------------------ */

int cfg_parse_bool(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, int *out)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    char q[CFG_QUOTE_SIZE];
    return cfg_fail(ctx, v, "%s: expected true or false, got %s", what, cfg_quote(s, q));
}

/* "20%" or "20": an integer percentage lo..100. */
static int cfg_parse_percent(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, uint32_t lo,
                             uint32_t *out)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    char buf[16];
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '%')
        n--;
    uint64_t val;
    char q[CFG_QUOTE_SIZE];
    if (n == 0 || n >= sizeof(buf))
        return cfg_fail(ctx, v, "%s: expected a percentage like 20%%, got %s", what, cfg_quote(s, q));
    memcpy(buf, s, n);
    buf[n] = 0;
    if (units_parse_uint(buf, 100, &val) != 0 || val < lo)
        return cfg_fail(ctx, v, "%s: expected a percentage %u%%..100%%, got %s", what, lo,
                        cfg_quote(s, q));
    *out = (uint32_t)val;
    return 0;
}

/* One status "503" or a range "200-399" into set. */
static int cfg_parse_status_item(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_status_set *set)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, "status", &s);
    if (rc < 0)
        return rc;
    char lo_s[8], q[CFG_QUOTE_SIZE];
    const char *dash = strchr(s, '-');
    uint64_t lo, hi;
    size_t n = dash ? (size_t)(dash - s) : strlen(s);
    if (n == 0 || n >= sizeof(lo_s))
        goto bad;
    memcpy(lo_s, s, n);
    lo_s[n] = 0;
    if (units_parse_uint(lo_s, 599, &lo) != 0 || lo < 100)
        goto bad;
    hi = lo;
    if (dash && (units_parse_uint(dash + 1, 599, &hi) != 0 || hi < lo))
        goto bad;
    for (uint64_t st = lo; st <= hi; st++)
        set->bits[st / 64] |= 1ULL << (st % 64);
    return 0;
bad:
    return cfg_fail(ctx, v, "expected an HTTP status 100..599 or a range like 200-399, got %s",
                    cfg_quote(s, q));
}

static int cfg_parse_status_set(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_status_set *set)
{
    memset(set, 0, sizeof(*set));
    if (v->type == YAML_SCALAR_NODE)
        return cfg_parse_status_item(ctx, v, set);
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "expect_status");
    if (rc < 0)
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        if ((rc = cfg_visit(ctx, item)) < 0 || (rc = cfg_parse_status_item(ctx, item, set)) < 0)
            return rc;
    }
    return 0;
}

/* A list of failure names, and (when `statuses` is given) status codes. */
static int cfg_parse_failure_list(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                                  uint32_t *mask, struct cfg_status_set *statuses)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, what);
    if (rc < 0)
        return rc;
    *mask = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        const char *s;
        if ((rc = cfg_visit(ctx, item)) < 0 || (rc = cfg_scalar(ctx, item, what, &s)) < 0)
            return rc;
        if (statuses && strspn(s, "0123456789-") == strlen(s)) {
            if ((rc = cfg_parse_status_item(ctx, item, statuses)) < 0)
                return rc;
            continue;
        }
        int f;
        rc = cfg_parse_enum(ctx, item, statuses ? "retry condition" : "failure kind",
                            cfg_failure_names, CFG_FAILURE_COUNT, &f);
        if (rc < 0)
            return rc;
        *mask |= CFG_FAILURE_BIT(f);
    }
    return 0;
}

static int cfg_dup_scalar(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, char **out)
{
    const char *s;
    int rc = cfg_text(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    free(*out);
    *out = NULL;
    return cfg_strdup(ctx, s, out);
}

/* ---- cluster.health_check ------------------------------------------------ */

static int cfg_hc_type(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "http", "tcp" };
    return cfg_parse_enum(ctx, v, "health check type", names, 2, &((struct cfg_health_check *)obj)->tcp);
}

static int cfg_hc_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_scalar(ctx, v, "health check path", &hc->path);
    if (rc == 0 && hc->path[0] != '/')
        return cfg_fail(ctx, v, "health check path must start with '/'");
    for (const char *p = hc->path; rc == 0 && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return cfg_fail(ctx, v, "health check path must not contain spaces or control bytes");
    return rc;
}

static int cfg_hc_method(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_scalar(ctx, v, "health check method", &hc->method);
    if (rc == 0 && !cfg_is_token(hc->method))
        return cfg_fail(ctx, v, "health check method must be a token like GET or HEAD");
    return rc;
}

static int cfg_hc_host(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_scalar(ctx, v, "health check host", &hc->host);
    for (const char *p = hc->host; rc == 0 && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/')
            return cfg_fail(ctx, v, "health check host must be a host name, optionally with :port");
    return rc;
}

static int cfg_hc_status(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_status_set(ctx, v, &((struct cfg_health_check *)obj)->expect_status);
}

static int cfg_hc_body(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_scalar(ctx, v, "expect_body", &((struct cfg_health_check *)obj)->expect_body);
}

static const struct cfg_key cfg_hc_keys[] = {
    CFG_FUNC("type", cfg_hc_type, false),
    CFG_FUNC("path", cfg_hc_path, false),
    CFG_FUNC("method", cfg_hc_method, false),
    CFG_FUNC("host", cfg_hc_host, false),
    CFG_FUNC("expect_status", cfg_hc_status, false),
    CFG_FUNC("expect_body", cfg_hc_body, false),
    CFG_FIELD("interval", CFG_KIND_DURATION, struct cfg_health_check, interval_ms, 10, CFG_MAX_DURATION_MS),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct cfg_health_check, timeout_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("jitter", CFG_KIND_DURATION, struct cfg_health_check, jitter_ms, 0, CFG_MAX_DURATION_MS),
    CFG_FIELD("rise", CFG_KIND_UINT, struct cfg_health_check, rise, 1, 100),
    CFG_FIELD("fall", CFG_KIND_UINT, struct cfg_health_check, fall, 1, 100),
};
CFG_MAP_DEFINE(cfg_hc_map, "health_check", cfg_hc_keys);

int cfg_parse_health_check(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = &((struct cfg_cluster *)obj)->health_check;
    hc->enabled = 1;
    hc->interval_ms = 2000;
    hc->timeout_ms = UINT64_MAX; /* unset: min(1s, interval), as HAProxy's "timeout check" */
    hc->jitter_ms = UINT64_MAX;
    hc->rise = 2;
    hc->fall = 3;
    yaml_node_t *values[CFG_MAP_MAX_KEYS];
    int rc = cfg_parse_map(ctx, v, &cfg_hc_map, hc, values);
    if (rc < 0)
        return rc;
    if (!values[4]) /* expect_status */
        for (int st = 200; st <= 399; st++)
            hc->expect_status.bits[st / 64] |= 1ULL << (st % 64);
    if (hc->jitter_ms == UINT64_MAX)
        hc->jitter_ms = hc->interval_ms / 10;
    if (hc->timeout_ms == UINT64_MAX)
        hc->timeout_ms = hc->interval_ms < 1000 ? hc->interval_ms : 1000;
    if (!hc->path && (rc = cfg_strdup(ctx, "/health", &hc->path)) < 0)
        return rc;
    if (!hc->method && (rc = cfg_strdup(ctx, "GET", &hc->method)) < 0)
        return rc;
    if (hc->timeout_ms > hc->interval_ms)
        return cfg_fail(ctx, v, "health_check timeout (%llu ms) must not exceed its interval (%llu ms)",
                        (unsigned long long)hc->timeout_ms, (unsigned long long)hc->interval_ms);
    return 0;
}

/* ---- cluster.outlier_detection ------------------------------------------- */

static int cfg_od_on(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_failure_list(ctx, v, "outlier_detection.on", &((struct cfg_outlier *)obj)->on_mask,
                                  NULL);
}

static int cfg_od_percent(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "max_ejected_percent", 0,
                             &((struct cfg_outlier *)obj)->max_ejected_percent);
}

static const struct cfg_key cfg_od_keys[] = {
    CFG_FIELD("consecutive_failures", CFG_KIND_UINT, struct cfg_outlier, consecutive_failures, 1, 1000),
    CFG_FUNC("on", cfg_od_on, false),
    CFG_FIELD("base_ejection", CFG_KIND_DURATION, struct cfg_outlier, base_ejection_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("max_ejection", CFG_KIND_DURATION, struct cfg_outlier, max_ejection_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FUNC("max_ejected_percent", cfg_od_percent, false),
};
CFG_MAP_DEFINE(cfg_od_map, "outlier_detection", cfg_od_keys);

int cfg_parse_outlier(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_outlier *od = &((struct cfg_cluster *)obj)->outlier;
    od->enabled = 1;
    od->consecutive_failures = 5;
    od->on_mask = CFG_FAILURE_BIT(CFG_FAILURE_CONNECT) | CFG_FAILURE_BIT(CFG_FAILURE_RESET) |
                  CFG_FAILURE_BIT(CFG_FAILURE_TIMEOUT) | CFG_FAILURE_BIT(CFG_FAILURE_5XX);
    od->base_ejection_ms = 30000;
    od->max_ejection_ms = 300000;
    od->max_ejected_percent = 50;
    int rc = cfg_parse_map(ctx, v, &cfg_od_map, od, NULL);
    if (rc == 0 && od->max_ejection_ms < od->base_ejection_ms)
        return cfg_fail(ctx, v, "outlier_detection: max_ejection must be >= base_ejection");
    return rc;
}

/* ---- cluster.circuit_breaker --------------------------------------------- */

static int cfg_cb_scope(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "endpoint", "cluster" };
    return cfg_parse_enum(ctx, v, "circuit breaker scope", names, 2,
                          &((struct cfg_breaker *)obj)->per_cluster);
}

static int cfg_cb_ratio(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "failure_ratio", 1, &((struct cfg_breaker *)obj)->failure_ratio_pct);
}

static const struct cfg_key cfg_cb_keys[] = {
    CFG_FUNC("scope", cfg_cb_scope, false),
    CFG_FIELD("failures", CFG_KIND_UINT, struct cfg_breaker, failures, 1, 1000000),
    CFG_FUNC("failure_ratio", cfg_cb_ratio, false),
    CFG_FIELD("min_requests", CFG_KIND_UINT, struct cfg_breaker, min_requests, 1, 1000000),
    CFG_FIELD("window", CFG_KIND_DURATION, struct cfg_breaker, window_ms, 100, CFG_MAX_DURATION_MS),
    CFG_FIELD("recovery_timeout", CFG_KIND_DURATION, struct cfg_breaker, recovery_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("half_open_requests", CFG_KIND_UINT, struct cfg_breaker, half_open_requests, 1, 1000),
};
CFG_MAP_DEFINE(cfg_cb_map, "circuit_breaker", cfg_cb_keys);

int cfg_parse_breaker(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_breaker *cb = &((struct cfg_cluster *)obj)->breaker;
    cb->enabled = 1;
    cb->min_requests = 10;
    cb->window_ms = 10000;
    cb->recovery_timeout_ms = 30000;
    cb->half_open_requests = 3;
    int rc = cfg_parse_map(ctx, v, &cfg_cb_map, cb, NULL);
    if (rc == 0 && cb->failures == 0 && cb->failure_ratio_pct == 0)
        cb->failures = 5;
    return rc;
}

/* ---- cluster scalars ------------------------------------------------------ */

int cfg_parse_panic(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "panic", &((struct cfg_cluster *)obj)->panic);
}

int cfg_parse_endpoint_drain(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "drain", &((struct cfg_endpoint *)obj)->drain);
}

/* ---- route.retry ------------------------------------------------------------ */

static int cfg_rt_on(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = obj;
    memset(&r->on_status, 0, sizeof(r->on_status));
    return cfg_parse_failure_list(ctx, v, "retry.on", &r->on_mask, &r->on_status);
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

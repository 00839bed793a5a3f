/* cluster_cfg: parses the `clusters:` section (see cluster_cfg.h).
 *
 *   clusters list -- cluster map -- endpoints list -- address | endpoint map
 *                                |- timeouts / pool maps
 *                                `- health_check / outlier_detection / circuit_breaker maps
 *
 * Built on the loader's toolkit (core/config_parse.h) like every section:
 * each map is a key table, errors stop the load with FILE:LINE:COLUMN.
 * A resilience block that is present is enabled with every key it omits at
 * its default; a block that is absent leaves the feature off. Checks that
 * span several keys (hash_key and hash_method only with a hashing balance,
 * a health check's timeout within its interval) run once the map is parsed.
 * Cluster and endpoint names are unique. Nothing here resolves names or
 * connects. */
#include "upstream/cluster_cfg.h"

#include "tls/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale/autoscale_cfg.h"
#include "core/config_parse.h"
#include "core/dns.h"
#include "core/units.h"
#include "server/config.h"

#define CFG_MAX_CLUSTERS 10000
#define CFG_MAX_ENDPOINTS 10000          /* per cluster */
#define CFG_MAX_POOL_IDLE 100000

/* ---- defaults (docs/configuration.md) ---- */

static const struct cfg_cluster cluster_cfg_defaults = {
    .balance = CFG_BALANCE_ROUND_ROBIN,
    .hash_key = CFG_HASH_KEY_CLIENT_IP,
    .hash_method = CFG_HASH_METHOD_RING,
    .connect_timeout_ms = 2000,
    .response_timeout_ms = 30000,
    .pool_idle_timeout_ms = 60000,
    .pool_max_idle = 32,
    .h2_connections = 4,
    .max_connections = 0,
    .queue_timeout_ms = 1000,
    .resolve = { .interval_ms = 30000, .timeout_ms = 2000, .family = CFG_RESOLVE_IPV4 },
};

static const struct cfg_endpoint cluster_cfg_endpoint_defaults = { .weight = 1 };

/* ---- enum names ---- */

#define CFG_ENUM_NAME(e, s) s,
static const char *const cfg_balance_names[] = { CFG_BALANCE_LIST(CFG_ENUM_NAME) };
static const char *const cfg_hash_key_names[] = { CFG_HASH_KEY_LIST(CFG_ENUM_NAME) };
static const char *const cfg_hash_method_names[] = { CFG_HASH_METHOD_LIST(CFG_ENUM_NAME) };
static const char *const cfg_failure_names[] = { CFG_FAILURE_LIST(CFG_ENUM_NAME) };
static const char *const cfg_up_protocol_names[] = { CFG_UP_PROTOCOL_LIST(CFG_ENUM_NAME) };
#undef CFG_ENUM_NAME

const char *cfg_balance_name(enum cfg_balance b)
{
    return (unsigned)b < CFG_BALANCE_COUNT ? cfg_balance_names[b] : "?";
}

const char *cfg_hash_key_name(enum cfg_hash_key k)
{
    return (unsigned)k < CFG_HASH_KEY_COUNT ? cfg_hash_key_names[k] : "?";
}

const char *cfg_hash_method_name(enum cfg_hash_method m)
{
    return (unsigned)m < CFG_HASH_METHOD_COUNT ? cfg_hash_method_names[m] : "?";
}

/* ---- status sets and failure kinds (also a route's retry.on) ---- */

/* One status "503" or a range "200-399" into set. */
static int cluster_cfg_status_item(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_status_set *set)
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

static int cluster_cfg_status_set(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_status_set *set)
{
    memset(set, 0, sizeof(*set));
    if (v->type == YAML_SCALAR_NODE)
        return cluster_cfg_status_item(ctx, v, set);
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "expect_status");
    if (rc < 0)
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        if ((rc = cfg_visit(ctx, item)) < 0 || (rc = cluster_cfg_status_item(ctx, item, set)) < 0)
            return rc;
    }
    return 0;
}

int cluster_cfg_parse_failure_item(struct cfg_ctx *ctx, yaml_node_t *item, const char *what, uint32_t *mask,
                                   struct cfg_status_set *statuses)
{
    const char *s;
    int rc = cfg_scalar(ctx, item, what, &s);
    if (rc < 0)
        return rc;
    if (statuses && strspn(s, "0123456789-") == strlen(s))
        return cluster_cfg_status_item(ctx, item, statuses);
    int f;
    rc = cfg_parse_enum(ctx, item, statuses ? "retry condition" : "failure kind", cfg_failure_names,
                        CFG_FAILURE_COUNT, &f);
    if (rc < 0)
        return rc;
    *mask |= CFG_FAILURE_BIT(f);
    return 0;
}

/* A list of failure names, and (when `statuses` is given) status codes. */
int cluster_cfg_parse_failures(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                                  uint32_t *mask, struct cfg_status_set *statuses)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, what);
    if (rc < 0)
        return rc;
    *mask = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        if ((rc = cfg_visit(ctx, item)) < 0 ||
            (rc = cluster_cfg_parse_failure_item(ctx, item, what, mask, statuses)) < 0)
            return rc;
    }
    return 0;
}

/* ---- cluster.health_check ------------------------------------------------ */

static int cluster_cfg_hc_type(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "http", "tcp" };
    return cfg_parse_enum(ctx, v, "health check type", names, 2, &((struct cfg_health_check *)obj)->tcp);
}

static int cluster_cfg_hc_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_text(ctx, v, "health check path", &hc->path);
    if (rc == 0 && hc->path[0] != '/')
        return cfg_fail(ctx, v, "health check path must start with '/'");
    for (const char *p = hc->path; rc == 0 && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return cfg_fail(ctx, v, "health check path must not contain spaces or control bytes");
    return rc;
}

static int cluster_cfg_hc_method(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_text(ctx, v, "health check method", &hc->method);
    if (rc == 0 && !cfg_is_token(hc->method))
        return cfg_fail(ctx, v, "health check method must be a token like GET or HEAD");
    return rc;
}

static int cluster_cfg_hc_host(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = obj;
    int rc = cfg_dup_text(ctx, v, "health check host", &hc->host);
    for (const char *p = hc->host; rc == 0 && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/')
            return cfg_fail(ctx, v, "health check host must be a host name, optionally with :port");
    return rc;
}

static int cluster_cfg_hc_status(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cluster_cfg_status_set(ctx, v, &((struct cfg_health_check *)obj)->expect_status);
}

static int cluster_cfg_hc_body(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "expect_body", &((struct cfg_health_check *)obj)->expect_body);
}

static const struct cfg_key cluster_cfg_hc_keys[] = {
    CFG_FUNC("type", cluster_cfg_hc_type, false),
    CFG_FUNC("path", cluster_cfg_hc_path, false),
    CFG_FUNC("method", cluster_cfg_hc_method, false),
    CFG_FUNC("host", cluster_cfg_hc_host, false),
    CFG_FUNC("expect_status", cluster_cfg_hc_status, false),
    CFG_FUNC("expect_body", cluster_cfg_hc_body, false),
    CFG_FIELD("interval", CFG_KIND_DURATION, struct cfg_health_check, interval_ms, 10, CFG_MAX_DURATION_MS),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct cfg_health_check, timeout_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("jitter", CFG_KIND_DURATION, struct cfg_health_check, jitter_ms, 0, CFG_MAX_DURATION_MS),
    CFG_FIELD("rise", CFG_KIND_UINT, struct cfg_health_check, rise, 1, 100),
    CFG_FIELD("fall", CFG_KIND_UINT, struct cfg_health_check, fall, 1, 100),
};
CFG_MAP_DEFINE(cluster_cfg_hc_map, "health_check", cluster_cfg_hc_keys);

static int cluster_cfg_health_check(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_health_check *hc = &((struct cfg_cluster *)obj)->health_check;
    hc->enabled = 1;
    hc->interval_ms = 2000;
    hc->timeout_ms = UINT64_MAX; /* unset: min(1s, interval), as HAProxy's "timeout check" */
    hc->jitter_ms = UINT64_MAX;
    hc->rise = 2;
    hc->fall = 3;
    yaml_node_t *values[CFG_MAP_MAX_KEYS];
    int rc = cfg_parse_map(ctx, v, &cluster_cfg_hc_map, hc, values);
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

static int cluster_cfg_od_on(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cluster_cfg_parse_failures(ctx, v, "outlier_detection.on", &((struct cfg_outlier *)obj)->on_mask,
                                  NULL);
}

static int cluster_cfg_od_percent(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "max_ejected_percent", 0,
                             &((struct cfg_outlier *)obj)->max_ejected_percent);
}

static const struct cfg_key cluster_cfg_od_keys[] = {
    CFG_FIELD("consecutive_failures", CFG_KIND_UINT, struct cfg_outlier, consecutive_failures, 1, 1000),
    CFG_FUNC("on", cluster_cfg_od_on, false),
    CFG_FIELD("base_ejection", CFG_KIND_DURATION, struct cfg_outlier, base_ejection_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("max_ejection", CFG_KIND_DURATION, struct cfg_outlier, max_ejection_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FUNC("max_ejected_percent", cluster_cfg_od_percent, false),
};
CFG_MAP_DEFINE(cluster_cfg_od_map, "outlier_detection", cluster_cfg_od_keys);

static int cluster_cfg_outlier(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_outlier *od = &((struct cfg_cluster *)obj)->outlier;
    od->enabled = 1;
    od->consecutive_failures = 5;
    od->on_mask = CFG_FAILURE_BIT(CFG_FAILURE_CONNECT) | CFG_FAILURE_BIT(CFG_FAILURE_RESET) |
                  CFG_FAILURE_BIT(CFG_FAILURE_TIMEOUT) | CFG_FAILURE_BIT(CFG_FAILURE_5XX);
    od->base_ejection_ms = 30000;
    od->max_ejection_ms = 300000;
    od->max_ejected_percent = 50;
    int rc = cfg_parse_map(ctx, v, &cluster_cfg_od_map, od, NULL);
    if (rc == 0 && od->max_ejection_ms < od->base_ejection_ms)
        return cfg_fail(ctx, v, "outlier_detection: max_ejection must be >= base_ejection");
    return rc;
}

/* ---- cluster.circuit_breaker --------------------------------------------- */

static int cluster_cfg_cb_scope(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "endpoint", "cluster" };
    return cfg_parse_enum(ctx, v, "circuit breaker scope", names, 2,
                          &((struct cfg_breaker *)obj)->per_cluster);
}

static int cluster_cfg_cb_ratio(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "failure_ratio", 1, &((struct cfg_breaker *)obj)->failure_ratio_pct);
}

static const struct cfg_key cluster_cfg_cb_keys[] = {
    CFG_FUNC("scope", cluster_cfg_cb_scope, false),
    CFG_FIELD("failures", CFG_KIND_UINT, struct cfg_breaker, failures, 1, 1000000),
    CFG_FUNC("failure_ratio", cluster_cfg_cb_ratio, false),
    CFG_FIELD("min_requests", CFG_KIND_UINT, struct cfg_breaker, min_requests, 1, 1000000),
    CFG_FIELD("window", CFG_KIND_DURATION, struct cfg_breaker, window_ms, 100, CFG_MAX_DURATION_MS),
    CFG_FIELD("recovery_timeout", CFG_KIND_DURATION, struct cfg_breaker, recovery_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("half_open_requests", CFG_KIND_UINT, struct cfg_breaker, half_open_requests, 1, 1000),
};
CFG_MAP_DEFINE(cluster_cfg_cb_map, "circuit_breaker", cluster_cfg_cb_keys);

static int cluster_cfg_breaker(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_breaker *cb = &((struct cfg_cluster *)obj)->breaker;
    cb->enabled = 1;
    cb->min_requests = 10;
    cb->window_ms = 10000;
    cb->recovery_timeout_ms = 30000;
    cb->half_open_requests = 3;
    int rc = cfg_parse_map(ctx, v, &cluster_cfg_cb_map, cb, NULL);
    if (rc == 0 && cb->failures == 0 && cb->failure_ratio_pct == 0)
        cb->failures = 5;
    return rc;
}

/* ---- cluster scalars ------------------------------------------------------ */

static int cluster_cfg_panic(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "panic", &((struct cfg_cluster *)obj)->panic);
}

static int cluster_cfg_endpoint_drain(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "drain", &((struct cfg_endpoint *)obj)->drain);
}

/* ---- endpoints ---- */

static bool cluster_cfg_is_any_addr(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return memcmp(a6, &in6addr_any, sizeof(*a6)) == 0;
}

/* "NAME:PORT" with a DNS host name: an endpoint to resolve. Returns 1 when
 * s is one (e->host / port / address set), 0 when not, negative on error. */
static int cluster_cfg_endpoint_host(struct cfg_ctx *ctx, yaml_node_t *v, const char *s,
                                     struct cfg_endpoint *e)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (!colon || !dns_name_ok(s, (size_t)(colon - s)) ||
        units_parse_uint(colon + 1, 65535, &port) != 0 || port == 0)
        return 0;
    e->host = strndup(s, (size_t)(colon - s));
    e->address = strdup(s);
    if (!e->host || !e->address)
        return cfg_nomem(ctx);
    e->port = (uint16_t)port;
    return 1;
}

static int cluster_cfg_endpoint_address(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_endpoint *e = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_scalar(ctx, v, "'address'", &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, "localhost") != 0 && strncmp(s, "localhost:", 10) != 0 &&
        (rc = cluster_cfg_endpoint_host(ctx, v, s, e)) != 0)
        return rc < 0 ? rc : 0;
    rc = cfg_parse_address(ctx, v, "'address'", &e->address, &e->addr, &e->addrlen);
    if (rc < 0)
        return rc;
    if (cluster_cfg_is_any_addr(&e->addr))
        return cfg_fail(ctx, v, "endpoint %s is the any-address; give the server's own address",
                        cfg_quote(e->address, q));
    return 0;
}

static const struct cfg_key cluster_cfg_endpoint_keys[] = {
    CFG_FUNC("address", cluster_cfg_endpoint_address, true),
    CFG_FIELD("weight", CFG_KIND_UINT, struct cfg_endpoint, weight, 1, CFG_MAX_WEIGHT),
    CFG_FUNC("drain", cluster_cfg_endpoint_drain, false),
};
CFG_MAP_DEFINE(cluster_cfg_endpoint_map, "endpoint", cluster_cfg_endpoint_keys);

/* An endpoint is "ADDRESS" or {address: ADDRESS, weight: N}. */
static int cluster_cfg_endpoint(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg_cluster *c = obj;
    struct cfg_endpoint *e = &c->endpoints[i];
    char q[CFG_QUOTE_SIZE];
    int rc;

    *e = cluster_cfg_endpoint_defaults;
    e->line = cfg_mark_of(node).line;
    e->col = cfg_mark_of(node).col;
    if (node->type == YAML_SCALAR_NODE)
        rc = cluster_cfg_endpoint_address(ctx, node, e);
    else if (node->type == YAML_MAPPING_NODE)
        rc = cfg_parse_map(ctx, node, &cluster_cfg_endpoint_map, e, NULL);
    else
        rc = cfg_fail(ctx, node, "expected an address or a map with address and weight for "
                                 "endpoint, got a list");
    if (rc < 0)
        return rc;
    if (e->host)
        c->n_hosts++;
    for (size_t j = 0; j < i; j++)
        if (e->host ? c->endpoints[j].host && strcmp(c->endpoints[j].address, e->address) == 0
                    : !c->endpoints[j].host && cfg_same_addr(&c->endpoints[j].addr,
                                                            c->endpoints[j].addrlen, &e->addr,
                                                            e->addrlen))
            return cfg_fail(ctx, node, "duplicate endpoint %s (first at %d:%d; use weight to "
                                       "send it more traffic)", cfg_quote(e->address, q),
                            c->endpoints[j].line, c->endpoints[j].col);
    return 0;
}

static int cluster_cfg_endpoints(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cluster *c = obj;
    void *items;

    static const struct cfg_list list = { "'endpoints'", "endpoint",
                                          sizeof(struct cfg_endpoint), CFG_MAX_ENDPOINTS };
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_endpoints);
    if (rc < 0)
        return rc;
    c->endpoints = items;
    return cfg_list_each(ctx, v, cluster_cfg_endpoint, c);
}

/* ---- resolve ---- */

static int cluster_cfg_resolve_family(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = {
#define CFG_NAME(e, s) s,
        CFG_RESOLVE_FAMILY_LIST(CFG_NAME)
#undef CFG_NAME
    };
    int f;
    int rc = cfg_parse_enum(ctx, v, "'family'", names, CFG_ARRAY_SIZE(names), &f);
    if (rc == 0)
        ((struct cfg_resolve *)obj)->family = (enum cfg_resolve_family)f;
    return rc;
}

static int cluster_cfg_resolve_server(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_resolve *r = obj;
    char *text = NULL;
    int rc = cfg_parse_address(ctx, v, "a DNS server", &text, &r->servers[i], &r->server_lens[i]);
    free(text);
    return rc;
}

static int cluster_cfg_resolve_servers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_resolve *r = obj;
    void *items;
    static const struct cfg_list list = { "'servers'", "DNS server address HOST:PORT", 1,
                                          CFG_MAX_RESOLVE_SERVERS };
    int rc = cfg_list_new(ctx, v, &list, &items, &r->n_servers);
    if (rc < 0)
        return rc;
    free(items); /* a fixed array in the struct */
    return cfg_list_each(ctx, v, cluster_cfg_resolve_server, r);
}

/* srv: the SRV name whose records give the endpoints ("_http._tcp.NAME"). */
static int cluster_cfg_resolve_srv(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_resolve *r = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int rc = cfg_scalar(ctx, v, "'srv'", &s);
    if (rc < 0)
        return rc;
    if (!dns_query_name_ok(s, strlen(s)))
        return cfg_fail(ctx, v, "bad SRV name %s (expected a DNS name such as "
                                "_http._tcp.api.internal)", cfg_quote(s, q));
    free(r->srv);
    if (!(r->srv = strdup(s)))
        return cfg_nomem(ctx);
    return 0;
}

static const struct cfg_key cluster_cfg_resolve_keys[] = {
    CFG_FIELD("interval", CFG_KIND_DURATION, struct cfg_resolve, interval_ms, 100,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct cfg_resolve, timeout_ms, 10, 60000),
    CFG_FUNC("family", cluster_cfg_resolve_family, false),
    CFG_FUNC("servers", cluster_cfg_resolve_servers, false),
    CFG_FUNC("srv", cluster_cfg_resolve_srv, false),
};
CFG_MAP_DEFINE(cluster_cfg_resolve_map, "cluster resolve", cluster_cfg_resolve_keys);

static int cluster_cfg_resolve(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cluster_cfg_resolve_map, &((struct cfg_cluster *)obj)->resolve,
                         NULL);
}

/* ---- clusters ---- */

static int cluster_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cluster *c = obj;
    return cfg_parse_name(ctx, v, &c->name, &c->name_mark);
}

static int cluster_cfg_balance(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int b = 0;
    int rc = cfg_parse_enum(ctx, v, "balance", cfg_balance_names, CFG_BALANCE_COUNT, &b);
    ((struct cfg_cluster *)obj)->balance = (enum cfg_balance)b;
    return rc;
}

static int cluster_cfg_hash_method(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int m = 0;
    int rc = cfg_parse_enum(ctx, v, "hash_method", cfg_hash_method_names, CFG_HASH_METHOD_COUNT,
                            &m);
    ((struct cfg_cluster *)obj)->hash_method = (enum cfg_hash_method)m;
    return rc;
}

/* hash_key: client_ip | path | header:NAME | cookie:NAME */
static int cluster_cfg_hash_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cluster *c = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_scalar(ctx, v, "'hash_key'", &s);
    if (rc < 0)
        return rc;
    const char *colon = strchr(s, ':');
    size_t len = colon != NULL ? (size_t)(colon - s) : strlen(s);
    for (int k = 0; k < CFG_HASH_KEY_COUNT; k++) {
        bool named = k == CFG_HASH_KEY_HEADER || k == CFG_HASH_KEY_COOKIE;
        if (strlen(cfg_hash_key_names[k]) != len || strncmp(s, cfg_hash_key_names[k], len) != 0)
            continue;
        if (named && (colon == NULL || !cfg_is_token(colon + 1)))
            return cfg_fail(ctx, v, "hash_key %s needs a %s name, like %s:%s", cfg_quote(s, q),
                            cfg_hash_key_names[k], cfg_hash_key_names[k],
                            k == CFG_HASH_KEY_HEADER ? "X-User" : "session");
        if (!named && colon != NULL)
            break;
        c->hash_key = (enum cfg_hash_key)k;
        return named ? cfg_strdup(ctx, colon + 1, &c->hash_key_name) : 0;
    }
    return cfg_fail(ctx, v, "unknown hash_key %s (expected one of: client_ip, path, header:NAME, "
                            "cookie:NAME)", cfg_quote(s, q));
}

static const struct cfg_key cluster_cfg_timeout_keys[] = {
    CFG_FIELD("connect", CFG_KIND_DURATION, struct cfg_cluster, connect_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("response", CFG_KIND_DURATION, struct cfg_cluster, response_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(cluster_cfg_timeout_map, "cluster timeouts", cluster_cfg_timeout_keys);

static const struct cfg_key cluster_cfg_pool_keys[] = {
    CFG_FIELD("max_idle", CFG_KIND_UINT, struct cfg_cluster, pool_max_idle, 0, CFG_MAX_POOL_IDLE),
    CFG_FIELD("idle_timeout", CFG_KIND_DURATION, struct cfg_cluster, pool_idle_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(cluster_cfg_pool_map, "pool", cluster_cfg_pool_keys);

static int cluster_cfg_timeouts(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cluster_cfg_timeout_map, obj, NULL);
}

static int cluster_cfg_pool(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cluster_cfg_pool_map, obj, NULL);
}

static int cluster_cfg_autoscale(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cluster *c = obj;
    autoscale_cfg_free(c->autoscale);
    return autoscale_cfg_parse(ctx, v, &c->autoscale);
}

static int cluster_cfg_tls(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cluster *c = obj;
    return tls_cfg_parse_client(ctx, v, &c->tls);
}

static int cluster_cfg_protocol(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int p = 0;
    int rc = cfg_parse_enum(ctx, v, "protocol", cfg_up_protocol_names, CFG_UP_PROTOCOL_COUNT, &p);
    ((struct cfg_cluster *)obj)->protocol = (enum cfg_up_protocol)p;
    return rc;
}

static const struct cfg_key cluster_cfg_keys[] = {
    CFG_FUNC("name", cluster_cfg_name, true),
    CFG_FUNC("balance", cluster_cfg_balance, false),
    CFG_FUNC("hash_key", cluster_cfg_hash_key, false),
    CFG_FUNC("hash_method", cluster_cfg_hash_method, false),
    CFG_FUNC("timeouts", cluster_cfg_timeouts, false),
    CFG_FUNC("pool", cluster_cfg_pool, false),
    CFG_FIELD("max_connections", CFG_KIND_UINT, struct cfg_cluster, max_connections, 0,
              CFG_MAX_CONNECTIONS),
    CFG_FUNC("endpoints", cluster_cfg_endpoints, false), /* required without srv or autoscale */
    CFG_FIELD("max_requests", CFG_KIND_UINT, struct cfg_cluster, max_requests, 0, CFG_MAX_CONNECTIONS),
    CFG_FIELD("max_pending", CFG_KIND_UINT, struct cfg_cluster, max_pending, 0, CFG_MAX_CONNECTIONS),
    CFG_FIELD("queue_timeout", CFG_KIND_DURATION, struct cfg_cluster, queue_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FUNC("panic", cluster_cfg_panic, false),
    CFG_FIELD("slow_start", CFG_KIND_DURATION, struct cfg_cluster, slow_start_ms, 0, CFG_MAX_DURATION_MS),
    CFG_FUNC("health_check", cluster_cfg_health_check, false),
    CFG_FUNC("outlier_detection", cluster_cfg_outlier, false),
    CFG_FUNC("circuit_breaker", cluster_cfg_breaker, false),
    CFG_FUNC("resolve", cluster_cfg_resolve, false),
    CFG_FUNC("autoscale", cluster_cfg_autoscale, false),
    CFG_FUNC("tls", cluster_cfg_tls, false),
    CFG_FUNC("protocol", cluster_cfg_protocol, false),
    CFG_FIELD("h2_connections", CFG_KIND_UINT, struct cfg_cluster, h2_connections, 1, 1000),
};
CFG_MAP_DEFINE(cluster_cfg_map, "cluster", cluster_cfg_keys);

/* hash_key and hash_method only do something for the hashing algorithms; a
 * key that would be ignored is an error rather than a surprise. */
static int cluster_cfg_check_cluster_hash(struct cfg_ctx *ctx, const struct cfg_cluster *c,
                                  yaml_node_t *const *values)
{
    yaml_node_t *key = values[cfg_key_index(&cluster_cfg_map, "hash_key")];
    yaml_node_t *method = values[cfg_key_index(&cluster_cfg_map, "hash_method")];

    if (key != NULL && c->balance != CFG_BALANCE_CONSISTENT_HASH &&
        c->balance != CFG_BALANCE_IP_HASH)
        return cfg_fail(ctx, key, "hash_key is used only with balance consistent_hash or "
                                  "ip_hash (this cluster uses %s)", cfg_balance_name(c->balance));
    if (method != NULL && c->balance != CFG_BALANCE_CONSISTENT_HASH)
        return cfg_fail(ctx, method, "hash_method is used only with balance consistent_hash "
                                     "(this cluster uses %s)", cfg_balance_name(c->balance));
    return 0;
}

static int cluster_cfg_cluster(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_cluster *c = &cfg->clusters[i];
    yaml_node_t *values[CFG_MAP_MAX_KEYS];
    char q[CFG_QUOTE_SIZE];

    *c = cluster_cfg_defaults;
    c->line = cfg_mark_of(node).line;
    c->col = cfg_mark_of(node).col;
    int rc = cfg_parse_map(ctx, node, &cluster_cfg_map, c, values);
    if (rc == 0)
        rc = cluster_cfg_check_cluster_hash(ctx, c, values);
    yaml_node_t *proto = values[cfg_key_index(&cluster_cfg_map, "protocol")];
    if (rc == 0 && c->protocol == CFG_UP_H2 && !c->tls)
        rc = cfg_fail(ctx, proto, "protocol h2 is HTTP/2 over TLS and needs the cluster's 'tls' map "
                                  "(use h2c for HTTP/2 over plain TCP)");
    if (rc == 0 && c->protocol == CFG_UP_H2C && c->tls)
        rc = cfg_fail(ctx, proto, "protocol h2c is HTTP/2 over plain TCP; with 'tls' use protocol h2");

    yaml_node_t *resolve = values[cfg_key_index(&cluster_cfg_map, "resolve")];
    if (rc == 0 && resolve && c->n_hosts == 0 && !c->resolve.srv)
        rc = cfg_fail(ctx, resolve, "'resolve' is used only when an endpoint is a host name "
                                    "(NAME:PORT) or with 'srv'");
    if (rc == 0 && !values[cfg_key_index(&cluster_cfg_map, "endpoints")] && !c->resolve.srv &&
        !c->autoscale)
        rc = cfg_fail(ctx, node, "cluster is missing required key 'endpoints'");
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->clusters[j].name, c->name) == 0)
            return cfg_fail_mark(ctx, c->name_mark, "duplicate cluster name %s (first defined at "
                                 "%d:%d)", cfg_quote(c->name, q), cfg->clusters[j].name_mark.line,
                                 cfg->clusters[j].name_mark.col);
    return 0;
}

int cluster_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root)
{
    struct cfg *cfg = root;
    void *items;

    static const struct cfg_list list = { "'clusters'", "cluster", sizeof(struct cfg_cluster),
                                          CFG_MAX_CLUSTERS };
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_clusters);
    if (rc < 0)
        return rc;
    cfg->clusters = items;
    return cfg_list_each(ctx, v, cluster_cfg_cluster, cfg);
}


/* ---- the section ---- */


static void cluster_cfg_free_one(struct cfg_cluster *c)
{
    tls_client_free(c->tls);
    c->tls = NULL;
    free(c->name);
    free(c->hash_key_name);
    free(c->health_check.path);
    free(c->health_check.method);
    free(c->health_check.host);
    free(c->health_check.expect_body);
    free(c->resolve.srv);
    for (size_t i = 0; i < c->n_endpoints; i++) {
        free(c->endpoints[i].address);
        free(c->endpoints[i].host);
    }
    free(c->endpoints);
    autoscale_cfg_free(c->autoscale);
}

void cluster_cfg_free(void *root)
{
    struct cfg *cfg = root;

    for (size_t i = 0; i < cfg->n_clusters; i++)
        cluster_cfg_free_one(&cfg->clusters[i]);
    free(cfg->clusters);
    cfg->clusters = NULL;
    cfg->n_clusters = 0;
}

/* ratelimit: the `rate_limit` route step.
 *
 *   rate_limit: { algorithm: token_bucket, rate: 100/s, burst: 200, key: client_ip }
 *   rate_limit:                      # several limits: each must allow
 *     - { algorithm: sliding_window_log, rate: 10/s, key: [header:X-Api-Key, route] }
 *     - { algorithm: fixed_window, rate: 1000/h, key: identity, on_missing: allow }
 *
 *   request --key--> limit 0 table --allowed--> limit 1 table --allowed--> next step
 *                        |                          |
 *                        `-- denied ----------------`--> 429 (status), Retry-After,
 *                                                        RateLimit-Policy, RateLimit,
 *                                                        X-RateLimit-Limit/-Remaining/-Reset
 *
 * Each limit owns a table (ratelimit_table.c) shared by all worker threads,
 * so `200/m` over any number of workers lets exactly 200 through. Limits are
 * decided in order and the first refusal stops: a request refused by a later
 * limit has already counted against the earlier ones (as in Envoy and Kong).
 * The limit headers go on every refusal, and on allowed answers when the
 * deciding limit says `response_headers: true`; they describe the limit with
 * the fewest requests left. The counters live with the configuration: a
 * reload starts them afresh. */
#include "http/steps/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/units.h"
#include "http/http_edit.h"
#include "http/steps/ratelimit_algo.h"
#include "http/steps/ratelimit_key.h"
#include "http/steps/ratelimit_store.h"
#include "http/steps/ratelimit_table.h"
#include "http/txn.h"
#include "server/config.h"
#include "store/store_registry.h"
#include <hiredis/hiredis.h>

#define RL_MAX_LIMITS 8
#define RL_MAX_PARTS 4
#define RL_MAX_TRUSTED 64
#define RL_DEFAULT_MAX_KEYS 100000
#define RL_MAX_KEYS 100000000ULL
#define RL_NAME_MAX 32

#define RL_PART_LIST(X) \
    X(RL_PART_CLIENT_IP, "client_ip") \
    X(RL_PART_HEADER, "header:NAME") \
    X(RL_PART_COOKIE, "cookie:NAME") \
    X(RL_PART_IDENTITY, "identity") \
    X(RL_PART_ROUTE, "route")
#define RL_ENUM(e, s) e,
enum rl_part_kind { RL_PART_LIST(RL_ENUM) RL_PART_COUNT };
#undef RL_ENUM

struct rl_part {
    enum rl_part_kind kind;
    char *name;                    /* header or cookie name */
    size_t name_len;
};

struct rl_limit {
    struct rl_params params;
    struct rl_part parts[RL_MAX_PARTS];
    size_t n_parts;
    struct rl_cidr *trusted;       /* trusted_proxies */
    size_t n_trusted;
    int on_missing_allow;
    uint64_t max_keys, status;
    int response_headers;
    char *name;
    struct rl_table *table;        /* local limit; with a store, the on_store_error: local share */
    /* cluster-wide (store: NAME) */
    char *store_name;
    struct cfg_mark store_mark;
    const struct cfg_store *store; /* resolved */
    int on_store_error;            /* enum rl_store_error */
    uint64_t store_timeout_ms, instances;
    /* series, labelled by route and limit (rl_resolve) */
    struct metric_series *m_decisions, *m_store_errors, *m_keys, *m_evictions, *m_store_seconds;
};

static const char *const rl_results[] = { "allowed", "limited" };

static const struct metric_family rl_family_decisions = {
    .name = "weir_ratelimit_decisions_total",
    .help = "Rate limit decisions, by result (every path: local, store, local fallback).",
    .type = METRIC_COUNTER,
    .labels = { "route", "limit" },
    .cells_label = "result",
    .cells = rl_results,
    .n_cells = 2,
};

static const struct metric_family rl_family_store_errors = {
    .name = "weir_ratelimit_store_errors_total",
    .help = "Decisions the store could not make (on_store_error applied).",
    .type = METRIC_COUNTER,
    .labels = { "route", "limit" },
};

static const struct metric_family rl_family_store_seconds = {
    .name = "weir_ratelimit_store_seconds",
    .help = "Round trip of a cluster-wide decision to its store (answers only).",
    .type = METRIC_HISTOGRAM,
    .labels = { "route", "limit" },
};

static const struct metric_family rl_family_keys = {
    .name = "weir_ratelimit_keys",
    .help = "Keys held in the limit's table on this instance.",
    .type = METRIC_GAUGE,
    .labels = { "route", "limit" },
};

static const struct metric_family rl_family_evictions = {
    .name = "weir_ratelimit_evictions_total",
    .help = "Keys forgotten because the table was at max_keys (they start again with a full quota).",
    .type = METRIC_COUNTER,
    .labels = { "route", "limit" },
};

#define RL_STORE_ERROR_LIST(X) \
    X(RL_STORE_ERROR_ALLOW, "allow") \
    X(RL_STORE_ERROR_DENY, "deny") \
    X(RL_STORE_ERROR_LOCAL, "local")
#define RL_ENUM(e, s) e,
enum rl_store_error { RL_STORE_ERROR_LIST(RL_ENUM) RL_STORE_ERROR_COUNT };
#undef RL_ENUM

struct rl_cfg {
    struct rl_limit limits[RL_MAX_LIMITS];
    size_t n;
    char *policy;                  /* the RateLimit-Policy value, all limits */
};

/* Per request: the decision the answer's headers describe, and while a
 * store answers, where to go on. */
struct rl_req {
    uint8_t decided, denied, which;
    uint8_t next;                  /* the limit being decided */
    uint8_t full;                  /* EVAL sent after NOSCRIPT */
    uint64_t remaining, reset_ms, retry_ms;
    uint64_t delay_ms;             /* the longest a leaky_bucket holds the request back */
    struct txn *t;
    const struct rl_cfg *cfg;
    struct store *store;
    struct store_cmd *cmd;
    ev_timer timer;                /* store_timeout */
    uint16_t key_len;
    char *key;                     /* the store key (arena) */
    ev_tstamp sent_at;             /* the store question went out (its round-trip histogram) */
};

static const char rl_body[] = "rate limit exceeded\n";
static const struct http_header rl_deny_fields[] = {
    { { "Content-Type", 12 }, { "text/plain", 10 } },
};

/* ---- configuration ---- */

static int rl_parse_algorithm(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
#define RL_NAME(e, s) s,
    static const char *const names[] = { RL_ALGO_LIST(RL_NAME) };
#undef RL_NAME
    int a;
    int rc = cfg_parse_enum(ctx, v, "algorithm", names, RL_ALGO_COUNT, &a);
    ((struct rl_limit *)obj)->params.algo = (enum rl_algo)a;
    return rc;
}

static int rl_parse_rate(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rl_params *p = &((struct rl_limit *)obj)->params;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_scalar(ctx, v, "'rate'", &s);
    if (rc < 0)
        return rc;
    rc = units_parse_rate(s, RL_MAX_COUNT, &p->count, &p->period_ms);
    if (rc == -ERANGE)
        return cfg_fail(ctx, v, "'rate' %s out of range (1 to %llu per period)", cfg_quote(s, q),
                        (unsigned long long)RL_MAX_COUNT);
    if (rc < 0)
        return cfg_fail(ctx, v, "bad 'rate' %s (expected COUNT/UNIT with UNIT s, m, h or d, "
                                "e.g. 100/s)", cfg_quote(s, q));
    return 0;
}

static int rl_parse_part(struct cfg_ctx *ctx, yaml_node_t *v, struct rl_limit *l)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a rate limit key", &s);
    if (rc < 0)
        return rc;
    if (l->n_parts == RL_MAX_PARTS)
        return cfg_fail(ctx, v, "a rate limit key has at most %d parts", RL_MAX_PARTS);
    struct rl_part *p = &l->parts[l->n_parts];
    const char *name = NULL;
    if (strncmp(s, "header:", 7) == 0) {
        p->kind = RL_PART_HEADER;
        name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0) {
        p->kind = RL_PART_COOKIE;
        name = s + 7;
    } else if (strcmp(s, "client_ip") == 0) {
        p->kind = RL_PART_CLIENT_IP;
    } else if (strcmp(s, "identity") == 0) {
        p->kind = RL_PART_IDENTITY;
    } else if (strcmp(s, "route") == 0) {
        p->kind = RL_PART_ROUTE;
    } else {
        return cfg_fail(ctx, v, "unknown rate limit key %s (expected client_ip, header:NAME, "
                                "cookie:NAME, identity, route, or a list of them)", cfg_quote(s, q));
    }
    if (name != NULL && !cfg_is_token(name))
        return cfg_fail(ctx, v, "bad name in rate limit key %s", cfg_quote(s, q));
    if (name != NULL && (rc = cfg_strdup(ctx, name, &p->name)) < 0)
        return rc;
    p->name_len = name ? strlen(name) : 0;
    l->n_parts++;
    return 0;
}

static int rl_parse_key_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return rl_parse_part(ctx, v, obj);
}

static int rl_parse_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return rl_parse_part(ctx, v, obj);
    if (v->data.sequence.items.top == v->data.sequence.items.start)
        return cfg_fail(ctx, v, "'key' is an empty list");
    return cfg_list_each(ctx, v, rl_parse_key_item, obj);
}

static int rl_parse_trusted_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct rl_limit *l = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a CIDR block", &s);
    if (rc < 0)
        return rc;
    rc = rl_cidr_parse(s, &l->trusted[i]);
    if (rc == -ERANGE)
        return cfg_fail(ctx, v, "bad prefix length in trusted_proxies %s", cfg_quote(s, q));
    if (rc < 0)
        return cfg_fail(ctx, v, "bad address in trusted_proxies %s (expected an IPv4 or IPv6 "
                                "address or CIDR block, e.g. 10.0.0.0/8)", cfg_quote(s, q));
    return 0;
}

static int rl_parse_trusted(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rl_limit *l = obj;
    void *items;
    static const struct cfg_list list = { "'trusted_proxies'", "CIDR block",
                                          sizeof(struct rl_cidr), RL_MAX_TRUSTED };
    int rc = cfg_list_new(ctx, v, &list, &items, &l->n_trusted);
    if (rc < 0)
        return rc;
    l->trusted = items;
    return cfg_list_each(ctx, v, rl_parse_trusted_item, l);
}

static int rl_parse_on_missing(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "limit", "allow" };
    return cfg_parse_enum(ctx, v, "on_missing", names, 2, &((struct rl_limit *)obj)->on_missing_allow);
}

static int rl_parse_response_headers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'response_headers'", &((struct rl_limit *)obj)->response_headers);
}

static int rl_parse_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "'name'", &s);
    if (rc < 0)
        return rc;
    size_t n = strlen(s);
    if (n > RL_NAME_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_-.") != n)
        return cfg_fail(ctx, v, "bad rate limit 'name' %s (1 to %d of letters, digits, '_', '-', "
                                "'.')", cfg_quote(s, q), RL_NAME_MAX);
    return cfg_strdup(ctx, s, &((struct rl_limit *)obj)->name);
}

static int rl_parse_store(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rl_limit *l = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'store'", &s);
    if (rc < 0)
        return rc;
    l->store_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &l->store_name);
}

static int rl_parse_on_store_error(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
#define RL_NAME(e, s) s,
    static const char *const names[] = { RL_STORE_ERROR_LIST(RL_NAME) };
#undef RL_NAME
    return cfg_parse_enum(ctx, v, "on_store_error", names, RL_STORE_ERROR_COUNT,
                          &((struct rl_limit *)obj)->on_store_error);
}

static const struct cfg_key rl_keys[] = {
    CFG_FUNC("algorithm", rl_parse_algorithm, false),
    CFG_FUNC("rate", rl_parse_rate, true),
    CFG_FIELD("burst", CFG_KIND_UINT, struct rl_limit, params.burst, 1, RL_MAX_COUNT),
    CFG_FUNC("key", rl_parse_key, false),
    CFG_FUNC("trusted_proxies", rl_parse_trusted, false),
    CFG_FUNC("on_missing", rl_parse_on_missing, false),
    CFG_FIELD("max_keys", CFG_KIND_UINT, struct rl_limit, max_keys, 1, RL_MAX_KEYS),
    CFG_FIELD("status", CFG_KIND_UINT, struct rl_limit, status, 400, 599),
    CFG_FUNC("response_headers", rl_parse_response_headers, false),
    CFG_FUNC("name", rl_parse_name, false),
    CFG_FUNC("store", rl_parse_store, false),
    CFG_FUNC("on_store_error", rl_parse_on_store_error, false),
    CFG_FIELD("store_timeout", CFG_KIND_DURATION, struct rl_limit, store_timeout_ms, 1, 60000),
    CFG_FIELD("instances", CFG_KIND_UINT, struct rl_limit, instances, 1, 10000),
    CFG_FIELD("delay", CFG_KIND_DURATION, struct rl_limit, params.delay_ms, 1, 60000),
};
CFG_MAP_DEFINE(rl_map, "rate_limit", rl_keys);

static uint64_t rl_share(uint64_t v, uint64_t instances)
{
    return (v + instances - 1) / instances;
}

/* The store keys of a limit, and its table: the limit itself, or with a
 * store and on_store_error: local, this instance's share of it. */
static int rl_finish_store(struct cfg_ctx *ctx, yaml_node_t **vals, struct rl_limit *l)
{
    static const char *const only[] = { "on_store_error", "store_timeout", "instances" };
    struct rl_params local = l->params;
    if (l->store_name == NULL) {
        for (size_t k = 0; k < 3; k++)
            if (vals[cfg_key_index(&rl_map, only[k])])
                return cfg_fail(ctx, vals[cfg_key_index(&rl_map, only[k])],
                                "'%s' applies to a limit with a 'store'", only[k]);
    } else {
        const struct rl_params *p = &l->params;
        if (p->count * p->period_ms > RL_STORE_MAX_UNITS || p->burst * p->period_ms > RL_STORE_MAX_UNITS)
            return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "rate")], "a limit in a store "
                            "counts up to 2^53 request-milliseconds: lower the rate or the burst");
        if (l->store_timeout_ms == 0)
            l->store_timeout_ms = 500;
        if (l->instances == 0)
            l->instances = 1;
        if (vals[cfg_key_index(&rl_map, "instances")] && l->on_store_error != RL_STORE_ERROR_LOCAL)
            return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "instances")],
                            "'instances' applies to on_store_error: local");
        if (l->on_store_error != RL_STORE_ERROR_LOCAL)
            return 0;
        local.count = rl_share(local.count, l->instances);
        local.burst = rl_share(local.burst, l->instances);
    }
    if ((l->table = rl_table_new(&local, l->max_keys)) == NULL)
        return cfg_nomem(ctx);
    return 0;
}

/* Checks the keys of one limit together and makes its table. */
static int rl_finish_limit(struct cfg_ctx *ctx, yaml_node_t **vals, struct rl_limit *l, size_t i,
                           size_t n)
{
    struct rl_params *p = &l->params;
    int bucket = p->algo == RL_TOKEN_BUCKET || p->algo == RL_LEAKY_BUCKET;
    yaml_node_t *burst = vals[cfg_key_index(&rl_map, "burst")];
    if (burst && !bucket)
        return cfg_fail(ctx, burst, "'burst' applies to token_bucket and leaky_bucket only");
    yaml_node_t *delay = vals[cfg_key_index(&rl_map, "delay")];
    if (delay && p->algo != RL_LEAKY_BUCKET)
        return cfg_fail(ctx, delay, "'delay' applies to leaky_bucket only");
    if (p->burst == 0)
        p->burst = p->algo == RL_TOKEN_BUCKET ? p->count : 1;
    if (p->algo == RL_SLIDING_WINDOW_LOG && p->count > RL_MAX_LOG)
        return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "rate")], "sliding_window_log keeps one "
                        "time per request of a window: at most %llu per period",
                        (unsigned long long)RL_MAX_LOG);
    if (l->n_parts == 0) {
        l->parts[0].kind = RL_PART_CLIENT_IP;
        l->n_parts = 1;
    }
    int has_ip = 0;
    for (size_t k = 0; k < l->n_parts; k++)
        has_ip |= l->parts[k].kind == RL_PART_CLIENT_IP;
    if (l->n_trusted && !has_ip)
        return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "trusted_proxies")],
                        "'trusted_proxies' needs client_ip in the limit's 'key'");
    if (l->max_keys == 0)
        l->max_keys = RL_DEFAULT_MAX_KEYS;
    if (l->status == 0)
        l->status = 429;
    int rc = 0;
    if (l->name == NULL) {
        char name[32];
        if (n == 1)
            snprintf(name, sizeof(name), "default");
        else
            snprintf(name, sizeof(name), "limit%zu", i + 1);
        if ((rc = cfg_strdup(ctx, name, &l->name)) < 0)
            return rc;
    }
    return rl_finish_store(ctx, vals, l);
}

/* Builds the RateLimit-Policy value: "NAME";q=QUOTA;w=SECONDS, ... */
static int rl_build_policy(struct cfg_ctx *ctx, struct rl_cfg *c)
{
    char buf[1024];
    size_t used = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct rl_limit *l = &c->limits[i];
        uint64_t q = l->params.algo == RL_TOKEN_BUCKET || l->params.algo == RL_LEAKY_BUCKET
                         ? l->params.burst : l->params.count;
        uint64_t w = (rl_window_ms(&l->params) + 999) / 1000;
        int k = snprintf(buf + used, sizeof(buf) - used, "%s\"%s\";q=%llu;w=%llu", i ? ", " : "",
                         l->name, (unsigned long long)q, (unsigned long long)(w ? w : 1));
        if (k < 0 || (size_t)k >= sizeof(buf) - used)
            return cfg_nomem(ctx);
        used += (size_t)k;
    }
    return cfg_strdup(ctx, buf, &c->policy);
}

static int rl_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct rl_cfg *c = cfg_calloc_fn(1, sizeof(*c));
    if (c == NULL)
        return cfg_nomem(ctx);
    *out = c;
    yaml_node_t *items[RL_MAX_LIMITS];
    size_t n = 0;
    int rc;
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            if (n == RL_MAX_LIMITS)
                return cfg_fail(ctx, v, "'rate_limit' lists at most %d limits", RL_MAX_LIMITS);
            items[n++] = cfg_node(ctx, *it);
        }
        if (n == 0)
            return cfg_fail(ctx, v, "'rate_limit' is an empty list");
    } else {
        items[n++] = v;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *vals[CFG_MAP_MAX_KEYS] = { 0 };
        c->n = i + 1;
        if ((items[i] != v && (rc = cfg_visit(ctx, items[i])) < 0) ||
            (rc = cfg_parse_map(ctx, items[i], &rl_map, &c->limits[i], vals)) < 0 ||
            (rc = rl_finish_limit(ctx, vals, &c->limits[i], i, n)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->limits[j].name, c->limits[i].name) == 0)
                return cfg_fail(ctx, items[i], "two limits of one route are named '%s'",
                                c->limits[i].name);
    }
    return rl_build_policy(ctx, c);
}

/* The name of the route whose step configuration is p. */
static const char *rl_route_of(const struct cfg *cfg, const void *p)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        for (size_t r = 0; r < cfg->listeners[i].n_routes; r++) {
            const struct cfg_route *rt = &cfg->listeners[i].routes[r];
            for (size_t s = 0; s < rt->n_steps; s++)
                if (rt->steps[s].cfg == p)
                    return rt->name;
        }
    return "";
}

static int rl_resolve(struct cfg_ctx *ctx, const struct cfg *cfg, void *p)
{
    struct rl_cfg *c = p;
    char q[CFG_QUOTE_SIZE];
    const char *route = rl_route_of(cfg, p);
    for (size_t i = 0; i < c->n; i++) {
        struct rl_limit *l = &c->limits[i];
        const char *v[] = { route, l->name };
        l->m_decisions = metrics_series_get(&rl_family_decisions, v);
        l->m_store_errors = metrics_series_get(&rl_family_store_errors, v);
        l->m_keys = metrics_series_get(&rl_family_keys, v);
        l->m_evictions = metrics_series_get(&rl_family_evictions, v);
        if (l->store_name)
            l->m_store_seconds = metrics_series_get(&rl_family_store_seconds, v);
        if (l->table)
            rl_table_set_metrics(l->table, l->m_keys, l->m_evictions);
        if (l->store_name == NULL)
            continue;
        if ((l->store = store_cfg_find(cfg, l->store_name)) == NULL)
            return cfg_fail_mark(ctx, l->store_mark, "rate_limit names store %s which is not "
                                 "defined under 'stores'", cfg_quote(l->store_name, q));
    }
    return 0;
}

static void rl_free(void *p)
{
    struct rl_cfg *c = p;
    for (size_t i = 0; i < c->n; i++) {
        struct rl_limit *l = &c->limits[i];
        for (size_t k = 0; k < l->n_parts; k++)
            free(l->parts[k].name);
        free(l->trusted);
        free(l->name);
        free(l->store_name);
        rl_table_free(l->table);
        metrics_series_put(l->m_decisions);
        metrics_series_put(l->m_store_errors);
        metrics_series_put(l->m_keys);
        metrics_series_put(l->m_evictions);
        metrics_series_put(l->m_store_seconds);
    }
    free(c->policy);
    free(c);
}

/* ---- the key of a request ---- */

static struct http_slice rl_part_value(struct txn *t, const struct rl_limit *l,
                                       const struct rl_part *part)
{
    const char *route; /* or the peer's address */
    int k;
    switch (part->kind) {
    case RL_PART_CLIENT_IP:
        route = txn_client_ip(t);
        return rl_key_client_ip(t->req, (struct http_slice){ route, strlen(route) }, l->trusted,
                                l->n_trusted);
    case RL_PART_HEADER:
        k = http_msg_find(t->req, part->name);
        return k < 0 ? (struct http_slice){ NULL, 0 } : t->req->headers[k].value;
    case RL_PART_COOKIE:
        return rl_key_cookie(t->req, part->name, part->name_len);
    case RL_PART_IDENTITY:
        return txn_identity(t);
    default:
        route = txn_route_name(t);
        return (struct http_slice){ route, strlen(route) };
    }
}

/* Writes the request's key for limit l into buf (RL_KEY_MAX bytes, longer
 * keys cut). Returns its length, or -ENOENT when a part is absent. */
static int rl_key(struct txn *t, const struct rl_limit *l, char *buf)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_parts; i++) {
        struct http_slice v = rl_part_value(t, l, &l->parts[i]);
        if (v.len == 0)
            return -ENOENT;
        if (i > 0 && n < RL_KEY_MAX)
            buf[n++] = 0x1f; /* cannot occur in a field value */
        size_t take = v.len < RL_KEY_MAX - n ? v.len : RL_KEY_MAX - n;
        memcpy(buf + n, v.p, take);
        n += take;
    }
    return (int)n;
}

/* ---- per request ---- */

static uint64_t rl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Records decision d of limit i. Returns 1 when it refuses the request
 * (answered with txn_respond), else 0. */
static int rl_apply(struct txn *t, struct rl_req *st, size_t i, const struct rl_decision *d)
{
    const struct rl_limit *l = &st->cfg->limits[i];
    if (d->delay_ms > st->delay_ms)
        st->delay_ms = d->delay_ms;
    if (!st->decided || !d->allowed || d->remaining < st->remaining) {
        st->decided = 1;
        st->denied = (uint8_t)!d->allowed;
        st->which = (uint8_t)i;
        st->remaining = d->remaining;
        st->reset_ms = d->reset_ms;
        st->retry_ms = d->retry_after_ms;
    }
    metrics_add(l->m_decisions, d->allowed ? 0 : 1, 1);
    if (d->allowed)
        return 0;
    txn_respond(t, (int)l->status, rl_deny_fields, 1, rl_body, sizeof(rl_body) - 1);
    return 1;
}

/* Decides limit i locally (its table). Returns 1 when refused, else 0. */
static int rl_local(struct txn *t, struct rl_req *st, size_t i, const char *key, size_t n)
{
    const struct rl_limit *l = &st->cfg->limits[i];
    struct rl_decision d;
    if (rl_table_decide(l->table, key, n, rl_now_ms(), &d) < 0) {
        log_warn("route %s: rate limit %s: out of memory for a new key; letting the request "
                 "through", txn_route_name(t), l->name);
        return 0;
    }
    return rl_apply(t, st, i, &d);
}

static void rl_store_done(void *arg, enum store_result res, struct redisReply *reply);
static void rl_store_timeout(struct ev_loop *loop, ev_timer *w, int revents);

/* The store could not decide limit st->next (why: for the log). Returns 1
 * when the request is refused, else 0. */
static int rl_store_failed(struct txn *t, struct rl_req *st, const char *why)
{
    const struct rl_limit *l = &st->cfg->limits[st->next];
    static const char *const then[] = { "letting the request through", "refusing the request",
                                        "deciding on this instance's share" };
    metrics_add(l->m_store_errors, 0, 1);
    /* once a second per worker at most: a store that is down fails every request */
    static _Thread_local ev_tstamp logged_at;
    static _Thread_local unsigned long quiet;
    ev_tstamp now = ev_now(txn_loop(t));
    if (now - logged_at >= 1.0) {
        log_warn("route %s: rate limit %s: store %s: %s; %s (on_store_error)%s", txn_route_name(t),
                 l->name, l->store->name, why, then[l->on_store_error],
                 quiet ? " (and more since the last message)" : "");
        logged_at = now;
        quiet = 0;
    } else {
        quiet++;
    }
    if (l->on_store_error == RL_STORE_ERROR_ALLOW)
        return 0;
    if (l->on_store_error == RL_STORE_ERROR_LOCAL) {
        /* the store key is "rl:{ROUTE/NAME:KEY}": the local table keys by KEY */
        size_t skip = 4 + strlen(txn_route_name(t)) + 1 + strlen(l->name) + 1;
        return rl_local(t, st, st->next, st->key + skip, st->key_len - skip - 1);
    }
    static const struct http_header fields[] = {
        { { "Content-Type", 12 }, { "text/plain", 10 } },
        { { "Retry-After", 11 }, { "1", 1 } },
    };
    static const char body[] = "rate limit unavailable\n";
    txn_respond(t, 503, fields, 2, body, sizeof(body) - 1);
    return 1;
}

/* Sends limit st->next's question to its store and arms store_timeout.
 * Returns 1 when sent, or 0 when the store refused it at once. */
static int rl_store_send(struct txn *t, struct rl_req *st)
{
    const struct rl_limit *l = &st->cfg->limits[st->next];
    st->cmd = rl_store_decide(st->store, &l->params, st->key, st->key_len, st->full,
                              rl_store_done, st);
    if (st->cmd == NULL)
        return 0;
    st->sent_at = ev_time();
    if (!ev_is_active(&st->timer)) {
        ev_timer_init(&st->timer, rl_store_timeout, (double)l->store_timeout_ms / 1000.0, 0.);
        st->timer.data = st;
        ev_timer_start(txn_loop(t), &st->timer);
    }
    return 1;
}

/* Starts the store question of limit st->next for `key`. Returns STEP_WAIT
 * when asked, STEP_RESPOND when refused (store down: on_store_error), or
 * STEP_NEXT when the request may go on to the next limit. */
static enum step_result rl_store_start(struct txn *t, struct rl_req *st, const char *key, size_t n)
{
    const struct rl_limit *l = &st->cfg->limits[st->next];
    const char *route = txn_route_name(t);
    size_t len = 4 + strlen(route) + 1 + strlen(l->name) + 1 + n + 1;
    st->key = txn_alloc(t, len + 1);
    if (st->key == NULL)
        return STEP_ERROR;
    snprintf(st->key, len + 1, "rl:{%s/%s:", route, l->name);
    memcpy(st->key + len - n - 1, key, n);
    st->key[len - 1] = '}';
    st->key_len = (uint16_t)len;
    st->full = 0;
    st->t = t;
    st->store = rl_store_get(txn_loop(t), l->store);
    if (st->store != NULL && rl_store_send(t, st))
        return STEP_WAIT;
    return rl_store_failed(t, st, "unavailable") ? STEP_RESPOND : STEP_NEXT;
}

static void rl_delay_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct rl_req *st = w->data;
    txn_resume(st->t, STEP_NEXT);
}

/* Every limit allowed the request: NEXT, or WAIT while a leaky_bucket's
 * delay holds it back. */
static enum step_result rl_hold(struct txn *t, struct rl_req *st)
{
    if (st->delay_ms == 0)
        return STEP_NEXT;
    st->t = t;
    ev_timer_init(&st->timer, rl_delay_done, (double)st->delay_ms / 1000.0, 0.);
    st->timer.data = st;
    ev_timer_start(txn_loop(t), &st->timer);
    return STEP_WAIT;
}

/* Decides the limits from st->next on. Returns NEXT (all allow), RESPOND
 * (one refused), WAIT (a store is asked) or ERROR. */
static enum step_result rl_run(struct txn *t, struct rl_req *st)
{
    const struct rl_cfg *c = st->cfg;
    char key[RL_KEY_MAX];
    for (; st->next < c->n; st->next++) {
        const struct rl_limit *l = &c->limits[st->next];
        int n = rl_key(t, l, key);
        if (n < 0 && l->on_missing_allow)
            continue;
        if (n < 0) {
            key[0] = 0x1e; /* the one shared key of requests without one; no value is this */
            n = 1;
        }
        if (l->store != NULL) {
            enum step_result r = rl_store_start(t, st, key, (size_t)n);
            if (r != STEP_NEXT)
                return r;
            continue;
        }
        if (rl_local(t, st, st->next, key, (size_t)n))
            return STEP_RESPOND;
    }
    return rl_hold(t, st);
}

static enum step_result rl_on_request(struct txn *t, const void *cfg, void *state)
{
    struct rl_req *st = state;
    st->cfg = cfg;
    return rl_run(t, st);
}

/* The store's answer (or failure) for limit st->next came: go on. */
static void rl_store_continue(struct rl_req *st, int refused)
{
    struct txn *t = st->t;
    enum step_result r = STEP_RESPOND;
    if (!refused) {
        st->next++;
        r = rl_run(t, st);
        if (r == STEP_WAIT)
            return;
    }
    txn_resume(t, r);
}

static void rl_store_done(void *arg, enum store_result res, struct redisReply *reply)
{
    struct rl_req *st = arg;
    const struct rl_limit *l = &st->cfg->limits[st->next];
    st->cmd = NULL;
    if (store_registry_exiting()) {
        ev_timer_stop(txn_loop(st->t), &st->timer);
        return; /* the worker is ending: the session frees the request */
    }
    if (res == STORE_OK)
        metrics_observe_ns(l->m_store_seconds, (uint64_t)((ev_time() - st->sent_at) * 1e9));
    struct rl_decision d;
    int rc = res == STORE_OK ? rl_store_reply(reply, &l->params, &d) : -EPROTO;
    if (rc == -ENOENT && !st->full) {
        st->full = 1; /* the server lost the script: send it whole once */
        if (rl_store_send(st->t, st))
            return;
    }
    ev_timer_stop(txn_loop(st->t), &st->timer);
    if (rc == 0) {
        rl_store_continue(st, rl_apply(st->t, st, st->next, &d));
        return;
    }
    char why[96];
    if (res != STORE_OK)
        snprintf(why, sizeof(why), "%s", store_result_name(res));
    else if (reply && reply->type == REDIS_REPLY_ERROR)
        snprintf(why, sizeof(why), "error reply: %.80s", reply->str);
    else
        snprintf(why, sizeof(why), "unexpected reply");
    rl_store_continue(st, rl_store_failed(st->t, st, why));
}

static void rl_store_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct rl_req *st = w->data;
    store_cancel(st->cmd);
    st->cmd = NULL;
    rl_store_continue(st, rl_store_failed(st->t, st, "no answer within store_timeout"));
}

static void rl_cancel(struct txn *t, const void *cfg, void *state)
{
    struct rl_req *st = state;
    if (st->cmd) {
        store_cancel(st->cmd);
        st->cmd = NULL;
    }
    struct ev_loop *loop = txn_loop(t);
    if (loop != NULL && ev_is_active(&st->timer)) /* no loop: the worker has ended */
        ev_timer_stop(loop, &st->timer);
}

/* Sets field `name` to the decimal v (arena). Returns 0 or -ENOSPC. */
static int rl_set_num(struct txn *t, struct http_msg *resp, const char *name, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    struct http_slice val = txn_copy(t, num, (size_t)n);
    if (val.p == NULL)
        return -ENOSPC;
    return http_edit_set(resp, (struct http_slice){ name, strlen(name) }, val);
}

static uint64_t rl_seconds_up(uint64_t ms)
{
    return (ms + 999) / 1000;
}

static void rl_on_response_head(struct txn *t, const void *cfg, void *state, struct http_msg *resp)
{
    const struct rl_cfg *c = cfg;
    const struct rl_req *st = state;
    if (!st->decided)
        return;
    const struct rl_limit *l = &c->limits[st->which];
    if (!st->denied && !l->response_headers)
        return;
    uint64_t limit = l->params.algo == RL_TOKEN_BUCKET || l->params.algo == RL_LEAKY_BUCKET
                         ? l->params.burst : l->params.count;
    uint64_t reset_s = rl_seconds_up(st->reset_ms);
    char rl[RL_NAME_MAX + 64];
    int n = snprintf(rl, sizeof(rl), "\"%s\";r=%llu;t=%llu", l->name,
                     (unsigned long long)st->remaining, (unsigned long long)reset_s);
    struct http_slice rlv = txn_copy(t, rl, (size_t)n);
    int rc = rlv.p == NULL ? -ENOSPC : 0;
    if (rc == 0)
        rc = http_edit_set(resp, (struct http_slice){ "RateLimit-Policy", 16 },
                           (struct http_slice){ c->policy, strlen(c->policy) });
    if (rc == 0)
        rc = http_edit_set(resp, (struct http_slice){ "RateLimit", 9 }, rlv);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Limit", limit);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Remaining", st->remaining);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Reset", reset_s);
    if (rc == 0 && st->denied) {
        uint64_t retry = rl_seconds_up(st->retry_ms);
        rc = rl_set_num(t, resp, "Retry-After", retry ? retry : 1);
    }
    if (rc != 0)
        log_warn("route %s: no room for the rate limit fields; some left out", txn_route_name(t));
}

const struct step_type step_rate_limit = {
    .key = "rate_limit",
    .phase = STEP_PHASE_RATE_LIMIT,
    .parse = rl_parse,
    .resolve = rl_resolve,
    .free_cfg = rl_free,
    .state_size = sizeof(struct rl_req),
    .on_request = rl_on_request,
    .on_response_head = rl_on_response_head,
    .cancel = rl_cancel,
};

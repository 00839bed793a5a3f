/* route_cfg: the `routes:` of an HTTP listener (see route_cfg.h).
 *
 *   routes list -- route map -- match map (host, path, path_prefix, method, header)
 *                            |- cluster | respond | redirect   (one target)
 *                            |- retry map -- backoff map
 *                            `- step keys (http/steps/: auth, rewrite, headers, ...)
 *
 * Parsed with the loader's toolkit (core/config_parse.h); the steps and
 * targets parse their own values through their table rows, so a new step
 * adds its row and nothing here. route_cfg_resolve() runs once every
 * section is parsed: it points routes at their clusters and orders and
 * resolves their steps and targets. */
#include "http/route_cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_parse.h"
#include "http/grpc.h"
#include "http/step.h"
#include "http/target.h"
#include "server/config.h"

#define CFG_MAX_ROUTES 10000             /* per listener */
#define CFG_MAX_METHODS 64               /* per route */
#define CFG_MAX_MATCH_HEADERS 64

static void route_cfg_free_route(struct cfg_route *r);

/* ---- route match ---- */

/* match.path and match.path_prefix: an absolute path, no spaces or controls. */
static int route_parse_match_path(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, char **out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_text(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    if (s[0] != '/')
        return cfg_fail(ctx, v, "%s must start with '/', got %s", what, cfg_quote(s, q));
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return cfg_fail(ctx, v, "%s must not contain spaces or control characters, got %s",
                            what, cfg_quote(s, q));
    return cfg_strdup(ctx, s, out);
}

static int route_parse_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return route_parse_match_path(ctx, v, "'path'", &((struct cfg_route *)obj)->path);
}

static int route_parse_path_prefix(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return route_parse_match_path(ctx, v, "'path_prefix'", &((struct cfg_route *)obj)->path_prefix);
}

/* match.host: an exact host name (optionally with :port), stored lower case. */
static int route_parse_host(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_route *r = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_text(ctx, v, "'host'", &s);
    if (rc < 0)
        return rc;
    if (strchr(s, '*') != NULL)
        return cfg_fail(ctx, v, "'host' must be an exact name (wildcards are not supported), "
                                "got %s", cfg_quote(s, q));
    if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") !=
        strlen(s))
        return cfg_fail(ctx, v, "bad host %s: expected a name like api.example.com",
                        cfg_quote(s, q));
    if ((rc = cfg_strdup(ctx, s, &r->host)) < 0)
        return rc;
    for (char *p = r->host; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

/* One method of match.method: a token, stored upper case. */
static int route_parse_method_one(struct cfg_ctx *ctx, yaml_node_t *v, char **out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_text(ctx, v, "'method'", &s);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(s))
        return cfg_fail(ctx, v, "bad method %s (expected an HTTP method like GET, or a list "
                                "like [GET, POST])", cfg_quote(s, q));
    if ((rc = cfg_strdup(ctx, s, out)) < 0)
        return rc;
    for (char *p = *out; *p != '\0'; p++)
        *p = (char)toupper((unsigned char)*p);
    return 0;
}

static int route_parse_method_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return route_parse_method_one(ctx, v, &((struct cfg_route *)obj)->methods[i]);
}

/* match.method: a string or a list of strings. */
static int route_parse_method(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_route *r = obj;
    void *items;

    if (v->type == YAML_SCALAR_NODE) {
        r->methods = cfg_calloc_fn(1, sizeof(*r->methods));
        if (r->methods == NULL)
            return cfg_nomem(ctx);
        r->n_methods = 1;
        return route_parse_method_one(ctx, v, &r->methods[0]);
    }
    static const struct cfg_list list = { "'method'", "method", sizeof(char *), CFG_MAX_METHODS };
    int rc = cfg_list_new(ctx, v, &list, &items, &r->n_methods);
    if (rc < 0)
        return rc;
    r->methods = items;
    return cfg_list_each(ctx, v, route_parse_method_item, r);
}

/* One NAME: VALUE of match.header; a null VALUE means "present". */
static int route_parse_header_pair(struct cfg_ctx *ctx, yaml_node_t *map, size_t i,
                                 struct cfg_header_match *h)
{
    yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
    yaml_node_t *k = cfg_node(ctx, p->key), *v = cfg_node(ctx, p->value);
    char q[CFG_QUOTE_SIZE];
    const char *name, *value;

    int rc = cfg_visit(ctx, v);
    if (rc == 0)
        rc = cfg_text(ctx, k, "a header name", &name);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(name))
        return cfg_fail(ctx, k, "bad header name %s", cfg_quote(name, q));
    for (size_t j = 0; j < i; j++) {
        yaml_node_t *prev = cfg_node(ctx, map->data.mapping.pairs.start[j].key);
        if (strcasecmp((const char *)prev->data.scalar.value, name) == 0)
            return cfg_fail(ctx, k, "duplicate header %s in match (first at %d:%d)",
                            cfg_quote(name, q), cfg_mark_of(prev).line, cfg_mark_of(prev).col);
    }
    if ((rc = cfg_strdup(ctx, name, &h->name)) < 0)
        return rc;
    if (cfg_is_null(v))
        return 0;
    if ((rc = cfg_scalar(ctx, v, "a header value", &value)) < 0)
        return rc;
    for (const char *c = value; *c != '\0'; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return cfg_fail(ctx, v, "header value %s contains a control character",
                            cfg_quote(value, q));
    return cfg_strdup(ctx, value, &h->value);
}

/* match.header: {NAME: VALUE, ...}. */
static int route_parse_header(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_route *r = obj;

    int rc = cfg_expect(ctx, v, YAML_MAPPING_NODE, "'header'");
    if (rc < 0)
        return rc;
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0)
        return cfg_fail(ctx, v, "'header' must not be empty (expected NAME: VALUE pairs)");
    if (n > CFG_MAX_MATCH_HEADERS)
        return cfg_fail(ctx, v, "'header' has %zu headers, at most %d are allowed", n,
                        CFG_MAX_MATCH_HEADERS);
    if ((rc = cfg_charge(ctx, v, n * sizeof(*r->headers))) < 0)
        return rc;
    r->headers = cfg_calloc_fn(n, sizeof(*r->headers));
    if (r->headers == NULL)
        return cfg_nomem(ctx);
    r->n_headers = n;
    for (size_t i = 0; i < n; i++)
        if ((rc = route_parse_header_pair(ctx, v, i, &r->headers[i])) < 0)
            return rc;
    return 0;
}

static const struct cfg_key route_match_keys[] = {
    CFG_FUNC("path", route_parse_path, false),
    CFG_FUNC("path_prefix", route_parse_path_prefix, false),
    CFG_FUNC("host", route_parse_host, false),
    CFG_FUNC("method", route_parse_method, false),
    CFG_FUNC("header", route_parse_header, false),
};
CFG_MAP_DEFINE(route_match_map, "match", route_match_keys);

static int route_parse_match(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    yaml_node_t *values[CFG_MAP_MAX_KEYS];

    int rc = cfg_parse_map(ctx, v, &route_match_map, obj, values);
    if (rc < 0)
        return rc;
    yaml_node_t *path = values[cfg_key_index(&route_match_map, "path")];
    if (path != NULL && values[cfg_key_index(&route_match_map, "path_prefix")] != NULL)
        return cfg_fail(ctx, path, "match has both 'path' and 'path_prefix'; use one of them");
    return 0;
}

/* ---- retry: a block that is present is enabled with every key it omits at
 * its default; absent, a failed attempt is not retried ---- */

/* retry.on: failure kinds and statuses (cluster_cfg.h), and gRPC statuses
 * (grpc-unavailable, ...: http/grpc.h). */
static int route_retry_on(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = obj;
    memset(&r->on_status, 0, sizeof(r->on_status));
    r->on_mask = r->on_grpc = 0;
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "retry.on");
    if (rc < 0)
        return rc;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        if ((rc = cfg_visit(ctx, item)) < 0)
            return rc;
        if (item->type == YAML_SCALAR_NODE && strncmp((const char *)item->data.scalar.value, "grpc-", 5) == 0) {
            const char *s = (const char *)item->data.scalar.value;
            char q[CFG_QUOTE_SIZE];
            uint32_t bit = grpc_retry_on_bit(s);
            if (!bit)
                return cfg_fail(ctx, item, "unknown gRPC retry condition %s (expected one of: %s)", cfg_quote(s, q),
                                grpc_retry_on_names());
            r->on_grpc |= bit;
            continue;
        }
        if ((rc = cluster_cfg_parse_failure_item(ctx, item, "retry.on", &r->on_mask, &r->on_status)) < 0)
            return rc;
    }
    return 0;
}

static int route_retry_methods(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "idempotent", "all" };
    return cfg_parse_enum(ctx, v, "retry methods", names, 2, &((struct cfg_retry *)obj)->all_methods);
}

static const struct cfg_key route_backoff_keys[] = {
    CFG_FIELD("base", CFG_KIND_DURATION, struct cfg_retry, backoff_base_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FIELD("max", CFG_KIND_DURATION, struct cfg_retry, backoff_max_ms, 1, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(route_backoff_map, "retry backoff", route_backoff_keys);

static int route_retry_backoff(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_retry *r = obj;
    int rc = cfg_parse_map(ctx, v, &route_backoff_map, obj, NULL);
    if (rc == 0 && r->backoff_max_ms < r->backoff_base_ms)
        return cfg_fail(ctx, v, "retry backoff: max must be >= base");
    return rc;
}

static int route_retry_budget(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_percent(ctx, v, "retry budget", 0, &((struct cfg_retry *)obj)->budget_percent);
}

static const struct cfg_key route_retry_keys[] = {
    CFG_FIELD("attempts", CFG_KIND_UINT, struct cfg_retry, attempts, 1, 10),
    CFG_FUNC("on", route_retry_on, false),
    CFG_FUNC("methods", route_retry_methods, false),
    CFG_FUNC("backoff", route_retry_backoff, false),
    CFG_FUNC("budget", route_retry_budget, false),
    CFG_FIELD("min_retry_concurrency", CFG_KIND_UINT, struct cfg_retry, min_retry_concurrency, 0, 1000000),
    CFG_FIELD("per_try_timeout", CFG_KIND_DURATION, struct cfg_retry, per_try_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("buffer_body", CFG_KIND_SIZE, struct cfg_retry, buffer_body, 0, 1u << 20),
};
CFG_MAP_DEFINE(route_retry_map, "retry", route_retry_keys);

static int route_parse_retry(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
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
    return cfg_parse_map(ctx, v, &route_retry_map, r, NULL);
}

/* ---- routes ---- */

static int route_parse_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_route *r = obj;
    struct cfg_mark mark;
    return cfg_parse_name(ctx, v, &r->name, &mark);
}

#define ROUTE_MAX_STEPS 16

/* Steps are added by the list of step rows, targets by theirs. */
static int route_parse_step(struct cfg_ctx *ctx, const struct step_type *type, yaml_node_t *k,
                            yaml_node_t *v, struct cfg_route *r)
{
    if (r->steps == NULL && (r->steps = cfg_calloc_fn(ROUTE_MAX_STEPS, sizeof(*r->steps))) == NULL)
        return cfg_nomem(ctx);
    for (size_t i = 0; i < r->n_steps; i++)
        if (r->steps[i].type == type)
            return cfg_fail(ctx, k, "duplicate key '%s' in route (first at %d:%d)", type->key,
                            r->steps[i].mark.line, r->steps[i].mark.col);
    if (r->n_steps == ROUTE_MAX_STEPS)
        return cfg_fail(ctx, k, "too many steps in one route (at most %d)", ROUTE_MAX_STEPS);
    struct route_step *st = &r->steps[r->n_steps];
    st->type = type;
    st->mark = cfg_mark_of(k);
    r->n_steps++; /* counted even on failure: route_cfg_free frees what parse left */
    return type->parse(ctx, v, &st->cfg);
}

static int route_set_target(struct cfg_ctx *ctx, const struct target_type *type, yaml_node_t *k,
                            struct cfg_route *r)
{
    if (r->target != NULL)
        return cfg_fail(ctx, k, "route has two targets, '%s' (at %d:%d) and '%s'; a route sends a "
                                "request to one of cluster, respond, redirect",
                        r->target->key, r->target_mark.line, r->target_mark.col, type->key);
    r->target = type;
    r->target_mark = cfg_mark_of(k);
    return 0;
}

static int route_parse_other(struct cfg_ctx *ctx, const char *key, yaml_node_t *k, yaml_node_t *v,
                             void *obj)
{
    struct cfg_route *r = obj;
    const struct step_type *step = step_find(key);
    if (step != NULL)
        return route_parse_step(ctx, step, k, v, r);
    const struct target_type *target = target_find(key);
    if (target == NULL || target->parse == NULL)
        return -ENOENT;
    int rc = route_set_target(ctx, target, k, r);
    if (rc < 0)
        return rc;
    return target->parse(ctx, v, &r->target_cfg);
}

static int route_parse_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_route *r = obj;
    const char *s;

    int rc = cfg_text(ctx, v, "'cluster'", &s);
    if (rc < 0)
        return rc;
    yaml_node_t *k = v; /* the value's mark stands for the key in messages */
    if ((rc = route_set_target(ctx, target_find("cluster"), k, r)) < 0)
        return rc;
    r->cluster_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &r->cluster_name);
}

static void route_other_names(char *buf, size_t size)
{
    step_names(buf, size);
    size_t used = strlen(buf);
    if (used + 2 < size) {
        memcpy(buf + used, ", ", 3);
        target_names(buf + used + 2, size - used - 2);
    }
}

static const struct cfg_key route_keys[] = {
    CFG_FUNC("name", route_parse_name, false),
    CFG_FUNC("match", route_parse_match, false),
    CFG_FUNC("cluster", route_parse_cluster, false),
    CFG_FUNC("retry", route_parse_retry, false),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct cfg_route, timeout_ms, 1, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE_OTHER(route_map, "route", route_keys, route_parse_other, route_other_names);

static bool route_cfg_matches_all(const struct cfg_route *r)
{
    return r->host == NULL && r->path == NULL && r->path_prefix == NULL && r->n_methods == 0 &&
           r->n_headers == 0;
}

static int route_parse_route(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg_listener *l = obj;
    struct cfg_route *r = &l->routes[i];

    r->line = cfg_mark_of(node).line;
    r->col = cfg_mark_of(node).col;
    yaml_node_t *values[CFG_ARRAY_SIZE(route_keys)];
    int rc = cfg_parse_map(ctx, node, &route_map, r, values);
    if (rc < 0)
        return rc;
    if (r->target == NULL)
        return cfg_fail(ctx, node,
                        "route has no target: add one of cluster, respond, redirect, queue");
    if (r->target->kind != TARGET_CLUSTER) {
        static const char *const cluster_only[] = { "retry", "timeout" };
        for (size_t k = 0; k < CFG_ARRAY_SIZE(cluster_only); k++) {
            yaml_node_t *val = values[cfg_key_index(&route_map, cluster_only[k])];
            if (val != NULL)
                return cfg_fail(ctx, val, "'%s' applies to a route whose target is a cluster, "
                                          "not '%s'", cluster_only[k], r->target->key);
        }
    }
    /* First match wins, so a catch-all route hides every route after it. */
    if (i > 0 && route_cfg_matches_all(&l->routes[i - 1]))
        return cfg_fail(ctx, node, "route is never used: the route at %d:%d before it matches "
                                   "every request (put the default route last)",
                        l->routes[i - 1].line, l->routes[i - 1].col);
    return 0;
}

int route_cfg_parse_routes(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    void *items;

    static const struct cfg_list list = { "'routes'", "route", sizeof(struct cfg_route),
                                          CFG_MAX_ROUTES };
    int rc = cfg_list_new(ctx, v, &list, &items, &l->n_routes);
    if (rc < 0)
        return rc;
    l->routes = items;
    return cfg_list_each(ctx, v, route_parse_route, l);
}

static int route_cfg_cluster_cmp(const void *a, const void *b)
{
    const struct cfg_cluster *ca = *(const struct cfg_cluster *const *)a;
    const struct cfg_cluster *cb = *(const struct cfg_cluster *const *)b;
    return strcmp(ca->name, cb->name);
}

/* Points every route at its cluster, through a sorted index of the clusters
 * so that many routes and many clusters stay cheap. */
static int route_cfg_resolve_clusters(struct cfg_ctx *ctx, struct cfg *cfg)
{
    struct cfg_cluster **index = cfg_calloc_fn(cfg->n_clusters, sizeof(*index));
    char q[CFG_QUOTE_SIZE];
    int rc = 0;

    if (index == NULL && cfg->n_clusters > 0)
        return cfg_nomem(ctx);
    for (size_t i = 0; i < cfg->n_clusters; i++)
        index[i] = &cfg->clusters[i];
    qsort(index, cfg->n_clusters, sizeof(*index), route_cfg_cluster_cmp);
    for (size_t i = 0; rc == 0 && i < cfg->n_listeners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        for (size_t j = 0; rc == 0 && j < l->n_routes; j++) {
            struct cfg_route *r = &l->routes[j];
            if (r->cluster_name == NULL)
                continue;
            struct cfg_cluster key = { .name = r->cluster_name }, *kp = &key, **found;
            found = cfg->n_clusters == 0 ? NULL : bsearch(&kp, index, cfg->n_clusters, sizeof(*index), route_cfg_cluster_cmp);
            if (found != NULL)
                r->cluster = *found;
            else
                rc = cfg_fail_mark(ctx, r->cluster_mark, "route names cluster %s which is not "
                                   "defined", cfg_quote(r->cluster_name, q));
        }
    }
    free(index);
    return rc;
}

/* Steps run in phase order, whatever order the file lists them in; within
 * a phase, in the step table's order (steps.c). */
static int route_step_cmp(const void *a, const void *b)
{
    const struct route_step *sa = a, *sb = b;
    if (sa->type->phase != sb->type->phase)
        return sa->type->phase < sb->type->phase ? -1 : 1;
    size_t ra = step_rank(sa->type), rb = step_rank(sb->type);
    return ra < rb ? -1 : ra > rb;
}

static int route_cfg_resolve_route(struct cfg_ctx *ctx, struct cfg *cfg, struct cfg_listener *l,
                                   size_t index, struct cfg_route *r)
{
    int rc;
    if (r->name == NULL) {
        char name[CFG_MAX_NAME * 2 + 16];
        snprintf(name, sizeof(name), "%s/%zu", l->name ? l->name : "listener", index + 1);
        if ((rc = cfg_strdup(ctx, name, &r->name)) < 0)
            return rc;
    }
    for (size_t k = 0; k < index; k++)
        if (strcmp(l->routes[k].name, r->name) == 0)
            return cfg_fail_mark(ctx, (struct cfg_mark){ r->line, r->col },
                                 "two routes of listener '%s' are named '%s' (the first at %d:%d)",
                                 l->name, r->name, l->routes[k].line, l->routes[k].col);
    if (r->n_steps > 1)
        qsort(r->steps, r->n_steps, sizeof(*r->steps), route_step_cmp);
    size_t off = 0;
    for (size_t k = 0; k < r->n_steps; k++) {
        struct route_step *st = &r->steps[k];
        if (st->type->resolve && (rc = st->type->resolve(ctx, cfg, st->cfg)) < 0)
            return rc;
        st->state_off = off;
        off += (st->type->state_size + 15) & ~(size_t)15;
    }
    if (off > STEP_STATE_MAX)
        return cfg_fail_mark(ctx, (struct cfg_mark){ r->line, r->col },
                             "this route's steps need %zu bytes of state per request, more than "
                             "weir's %d", off, STEP_STATE_MAX);
    r->step_state_bytes = off;
    if (r->target->resolve && (rc = r->target->resolve(ctx, cfg, r->target_cfg)) < 0)
        return rc;
    return 0;
}

int route_cfg_resolve(struct cfg_ctx *ctx, struct cfg *cfg)
{
    int rc = route_cfg_resolve_clusters(ctx, cfg);
    for (size_t i = 0; rc == 0 && i < cfg->n_listeners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        for (size_t j = 0; rc == 0 && j < l->n_routes; j++)
            rc = route_cfg_resolve_route(ctx, cfg, l, j, &l->routes[j]);
    }
    return rc;
}

void route_cfg_free(struct cfg_route *r)
{
    for (size_t i = 0; i < r->n_steps; i++)
        if (r->steps[i].cfg != NULL)
            r->steps[i].type->free_cfg(r->steps[i].cfg);
    free(r->steps);
    if (r->target != NULL && r->target_cfg != NULL)
        r->target->free_cfg(r->target_cfg);
    free(r->name);
    route_cfg_free_route(r);
}

static void route_cfg_free_route(struct cfg_route *r)
{
    free(r->host);
    free(r->path);
    free(r->path_prefix);
    for (size_t i = 0; i < r->n_methods; i++)
        free(r->methods[i]);
    free(r->methods);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->cluster_name);
}


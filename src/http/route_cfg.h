/* route_cfg: the `routes:` of an HTTP listener: match conditions, the target
 * (cluster, respond, redirect), the steps (http/steps/), retry and deadline.
 * Plain data owned by the struct cfg snapshot (server/config.h); parsed in
 * route_cfg.c with the loader's toolkit (core/config_parse.h). The listener
 * table of server/config.c calls route_cfg_parse_routes() for its `routes`
 * key and route_cfg_resolve() once every section is parsed. */
#ifndef WEIR_HTTP_ROUTE_CFG_H
#define WEIR_HTTP_ROUTE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"
#include "upstream/cluster_cfg.h"

struct cfg_header_match {
    char *name;
    char *value;                   /* exact value, or NULL: header present */
};

/* route.retry */
struct cfg_retry {
    int enabled;
    uint32_t attempts;             /* tries in all, first one included (default 3) */
    uint32_t on_mask;              /* CFG_FAILURE_BIT set (5xx = any of 500..599) */
    struct cfg_status_set on_status; /* statuses listed one by one (502, 503, ...) */
    uint32_t on_grpc;              /* GRPC_STATUS_BIT set (http/grpc.h): Trailers-Only answers retried */
    int all_methods;               /* methods: all (default: idempotent only) */
    uint64_t backoff_base_ms;      /* default 25ms; full jitter in [0, min(max, base*2^n)] */
    uint64_t backoff_max_ms;       /* default 250ms */
    uint32_t budget_percent;       /* retries in flight <= this % of the cluster's requests (default 20) */
    uint32_t min_retry_concurrency;/* ... but always allow this many (default 3) */
    uint64_t per_try_timeout_ms;   /* 0 = the cluster's timeouts.response */
    uint64_t buffer_body;          /* bodies up to this size are kept for a retry (default 64k) */
};

struct route_step;
struct target_type;

struct cfg_route {
    char *name;                    /* name, default "<listener>/<index>" (1-based) */
    char *host;                    /* match.host, exact, case-insensitive, or NULL */
    char *path;                    /* match.path, exact, or NULL */
    char *path_prefix;             /* match.path_prefix, or NULL */
    char **methods;                /* match.method: a string or a list; upper case */
    size_t n_methods;
    struct cfg_header_match *headers; /* match.header: {NAME: VALUE, ...} */
    size_t n_headers;
    char *cluster_name;            /* target cluster, else NULL */
    struct cfg_cluster *cluster;   /* resolved: never NULL for a cluster target */
    const struct target_type *target; /* exactly one after cfg_load() (http/target.h) */
    void *target_cfg;              /* the target's own configuration (respond, redirect) */
    struct cfg_mark target_mark;   /* where the target key is written */
    struct route_step *steps;      /* in phase order (http/step.h) */
    size_t n_steps;
    size_t step_state_bytes;       /* per-request state all steps need */
    struct cfg_retry retry;
    uint64_t timeout_ms;           /* overall deadline including retries, 0 = none */
    int line, col;                 /* the route's map */
    struct cfg_mark cluster_mark;  /* its cluster value */
};

struct cfg;

/* Parses a listener's `routes` list into l->routes / l->n_routes of the
 * struct cfg_listener `listener`. Returns 0 or a negative errno with the
 * message in ctx; what was allocated stays for route_cfg_free(). */
int route_cfg_parse_routes(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);

/* Points every route of every listener at its cluster, names unnamed
 * routes, orders and resolves their steps and targets. Returns 0 or a
 * negative errno with the message in ctx. */
int route_cfg_resolve(struct cfg_ctx *ctx, struct cfg *cfg);

/* Frees what route `r` owns (not `r` itself). */
void route_cfg_free(struct cfg_route *r);

#endif

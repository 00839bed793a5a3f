/* autoscale_cfg: a cluster's `autoscale:` block: how to start one instance
 * (a command template, or hook commands), how many (min, max), and the
 * metrics with their targets that decide how many run (autoscale.c runs
 * it, decide.c decides). Plain data owned by the struct cfg snapshot,
 * parsed with the loader's toolkit (core/config_parse.h); hooked into a
 * cluster's keys by upstream/cluster_cfg.c. Every key and default is in
 * docs/configuration.md and docs/autoscale.md. */
#ifndef WEIR_AUTOSCALE_AUTOSCALE_CFG_H
#define WEIR_AUTOSCALE_AUTOSCALE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"

#define AUTOSCALE_MAX_INSTANCES 1000
#define AUTOSCALE_MAX_ARGS 64

/* The metrics a scaler may follow: enum and config names from one list. */
#define AUTOSCALE_METRIC_LIST(X)                                                                   \
    X(AUTOSCALE_METRIC_QUEUE_VISIBLE, "queue_visible")                                             \
    X(AUTOSCALE_METRIC_IN_FLIGHT, "in_flight")                                                     \
    X(AUTOSCALE_METRIC_LATENCY_P95, "latency_p95")                                                 \
    X(AUTOSCALE_METRIC_CPU, "cpu")
#define AUTOSCALE_ENUM_MEMBER(e, s) e,
enum autoscale_metric { AUTOSCALE_METRIC_LIST(AUTOSCALE_ENUM_MEMBER) AUTOSCALE_METRIC_COUNT };
#undef AUTOSCALE_ENUM_MEMBER

/* "queue_visible" ... ; "?" when out of range. */
const char *autoscale_metric_name(enum autoscale_metric m);

/* A command split into arguments once, at load ({port}, {instance},
 * {count}, {address} are replaced in each argument when it runs). */
struct cfg_autoscale_cmd {
    char **argv; /* NULL-terminated, owned */
    size_t argc;
};

struct cfg_autoscale {
    struct cfg_autoscale_cmd command; /* argc 0: hooks instead */
    struct cfg_autoscale_cmd hook_up, hook_down;
    uint16_t port_lo, port_hi; /* ports: LO-HI, for {port} */
    char *host;                /* the instances' address, default 127.0.0.1 */
    uint32_t min, max;         /* default 1, 1; max >= min */
    uint64_t period_ms;        /* default 15s */
    double tolerance;          /* default 0.1 */
    uint64_t up_window_ms;     /* stabilization.up, default 0 */
    uint64_t down_window_ms;   /* stabilization.down, default 300s */
    uint32_t max_step;         /* instances added or removed per period, 0 = no limit */
    int scale_to_zero;         /* default false */
    uint64_t grace_ms;         /* SIGTERM -> SIGKILL, default 30s */
    uint64_t start_timeout_ms; /* started -> ready, default 30s */
    uint64_t drain_timeout_ms; /* drain -> SIGTERM at the latest, default = grace */
    int output_null;           /* output: null (default inherit: weir's stderr) */
    /* metrics: present[m] says the metric is followed */
    int present[AUTOSCALE_METRIC_COUNT];
    double target[AUTOSCALE_METRIC_COUNT]; /* messages, requests, ms, percent */
    char *queue;                           /* queue_visible.queue */
};

/* Parses a cluster's `autoscale` value v into a new struct (*out, freed
 * with autoscale_cfg_free). Returns 0 or a negative errno with the message
 * in ctx; *out is NULL on failure. */
int autoscale_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_autoscale **out);
/* Frees c and what it owns; NULL is ignored. */
void autoscale_cfg_free(struct cfg_autoscale *c);

/* Splits s into arguments like a shell without one: blanks separate,
 * '...' keeps everything literally, "..." keeps blanks and lets \" and \\
 * through, a backslash outside quotes escapes the next character. No
 * variables, globs or redirections. Returns 0 with cmd filled, -EINVAL
 * (unbalanced quote, empty, too many arguments) or -ENOMEM. */
int autoscale_cmd_split(const char *s, struct cfg_autoscale_cmd *cmd);
void autoscale_cmd_free(struct cfg_autoscale_cmd *cmd);

#endif

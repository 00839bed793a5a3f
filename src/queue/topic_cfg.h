/* topic_cfg: the `topics:` section. A topic fans each published message
 * out to its subscriptions: durable queues, and HTTP push deliveries to a
 * cluster (each backed by an outbox queue of its own). Plain data owned by
 * the struct cfg snapshot; topic.c publishes, push.c delivers. Every key
 * and default is in docs/configuration.md#topics and docs/queue.md. */
#ifndef WEIR_QUEUE_TOPIC_CFG_H
#define WEIR_QUEUE_TOPIC_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"
#include "queue/queue_types.h"

#define CFG_MAX_TOPICS 1024
#define TOPIC_MAX_SUBSCRIPTIONS 32
#define TOPIC_MAX_NAME 56         /* its outboxes' names stay within QUEUE_MAX_NAME */
#define TOPIC_FILTER_MAX_ATTRS 10 /* an SQS message has at most 10 attributes */
#define TOPIC_FILTER_MAX_VALUES 100
#define TOPIC_OUTBOX_PREFIX "weir.push."

/* One accepted value of a filter attribute (any of them matches). */
#define TOPIC_COND_LIST(X)                                                                         \
    X(TOPIC_COND_EQUALS, "equals")   /* the String/Number value is exactly `value` */              \
    X(TOPIC_COND_EXISTS, "exists")   /* the attribute is there (exists: true) or not */            \
    X(TOPIC_COND_NUMERIC, "numeric") /* a Number attribute whose value is in range */
#define TOPIC_COND_MEMBER(e, s) e,
enum topic_cond_kind { TOPIC_COND_LIST(TOPIC_COND_MEMBER) TOPIC_COND_COUNT };
#undef TOPIC_COND_MEMBER

struct topic_cond {
    enum topic_cond_kind kind;
    char *value;   /* EQUALS */
    int exists;    /* EXISTS: 1 present, 0 absent */
    double lo, hi; /* NUMERIC bounds (with has_lo / has_hi) */
    int has_lo, has_hi, lo_incl, hi_incl;
};

/* All attributes of a filter must match (AND); each matches when any of
 * its conditions does (OR). */
struct topic_filter_attr {
    char *name;
    struct topic_cond *conds;
    size_t n_conds;
};

struct topic_filter {
    struct topic_filter_attr *attrs; /* NULL: every message matches */
    size_t n_attrs;
};

struct cfg_push {
    char *cluster_name;
    struct cfg_mark cluster_mark;
    char *path;               /* default "/" */
    uint64_t attempts;        /* tries in all, 1..100, default 5 */
    uint64_t backoff_base_ms; /* default 100ms */
    uint64_t backoff_max_ms;  /* default 10s */
    uint64_t timeout_ms;      /* one attempt, default 10s */
    uint64_t concurrency;     /* deliveries in flight, 1..256, default 4 */
    char *dead_letter;        /* a queue of `queues:`, or NULL (dropped, logged) */
    struct cfg_mark dead_letter_mark;
};

struct cfg_subscription {
    char *queue; /* a queue subscription: a queue of `queues:` */
    struct cfg_mark queue_mark;
    struct cfg_push *push; /* a push subscription */
    struct topic_filter filter;
    char outbox[QUEUE_MAX_NAME + 1]; /* push: weir.push.TOPIC.N (resolve) */
};

struct cfg_topic {
    char *name;
    struct cfg_mark name_mark;
    struct cfg_subscription *subs;
    size_t n_subs;
};

struct cfg_ctx;

/* Section row of server/config.c: `topics` into cfg->topics / n_topics of
 * the struct cfg `obj`. Returns 0, or a negative errno with ctx's message. */
int topic_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
/* Checks the subscribed queues, clusters and dead-letter queues exist and
 * names the outboxes; asks for data_dir. */
int topic_cfg_resolve(struct cfg_ctx *ctx, void *root);
void topic_cfg_free(void *root);

struct cfg;
/* The topic called name in cfg, or NULL. */
const struct cfg_topic *topic_cfg_find(const struct cfg *cfg, const char *name);

#endif

/* target: where a route sends a request once its steps let it through.
 * One tagged choice per route, each a row of a table (target.c):
 *
 *   cluster   forward to a cluster (http/proxy.c: balancing, retries)
 *   respond   a fixed status, body and headers (steps/respond.c)
 *   redirect  a redirect to another URL (steps/respond.c)
 *   queue     the request becomes a message of a durable queue, 202
 *             (queue/queue_target.c)
 *   publish   the request becomes a message of a topic, 202
 *             (queue/topic_target.c)
 *
 * A route names exactly one target. */
#ifndef WEIR_HTTP_TARGET_H
#define WEIR_HTTP_TARGET_H

#include <yaml.h>

#include "core/config.h"

struct cfg; /* server/config.h */

struct txn;
struct cfg_ctx;

#define TARGET_LIST(X) \
    X(TARGET_CLUSTER, "cluster") \
    X(TARGET_RESPOND, "respond") \
    X(TARGET_REDIRECT, "redirect") \
    X(TARGET_QUEUE, "queue") \
    X(TARGET_PUBLISH, "publish")
#define TARGET_ENUM_MEMBER(e, s) e,
enum target_kind { TARGET_LIST(TARGET_ENUM_MEMBER) TARGET_COUNT };
#undef TARGET_ENUM_MEMBER

struct target_type {
    const char *key;
    enum target_kind kind;
    int (*parse)(struct cfg_ctx *ctx, yaml_node_t *value, void **out);
    int (*resolve)(struct cfg_ctx *ctx, const struct cfg *cfg, void *target_cfg);
    void (*free_cfg)(void *target_cfg);
    /* Answers the request itself (respond, redirect); NULL for cluster,
     * which the proxy forwards. */
    void (*start)(struct txn *t, const void *target_cfg);
    /* 1: start runs once the whole request body is read (txn_request_body). */
    int needs_body;
};

/* The target named `key`, or NULL. */
const struct target_type *target_find(const char *key);
/* Writes the target keys, comma separated, for messages. */
void target_names(char *buf, size_t size);

#endif

/* queue_cfg: the `data_dir:` key and the `queues:` section (durable queues
 * declared in the configuration). Plain data owned by the struct cfg
 * snapshot; queue.c applies it (qbroker_configure). Every key and default
 * is documented in docs/configuration.md and docs/queue.md. */
#ifndef WEIR_QUEUE_QUEUE_CFG_H
#define WEIR_QUEUE_QUEUE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"
#include "queue/queue_types.h"

#define CFG_MAX_QUEUES 4096

struct cfg_queue {
    char *name;
    struct queue_attrs attrs;         /* from the keys below (whole seconds) */
    uint64_t visibility_timeout_ms;   /* visibility_timeout, default 30s, <= 12h */
    uint64_t delay_ms;                /* delay, default 0, <= 15m */
    uint64_t retention_ms;            /* retention, default 96h, 1m..336h */
    uint64_t max_message_bytes;       /* max_message_size, default 256k, 1k..1m */
    uint64_t receive_wait_ms;         /* receive_wait, default 0, <= 20s */
    uint64_t fsync_every_ms;          /* durability.every, default 10ms */
    int fsync;                        /* durability.fsync, enum queue_fsync, default always */
    char *dead_letter;                /* dead_letter.queue: a queue of this section, or NULL */
    uint64_t max_receives;            /* dead_letter.max_receives 1..1000, default 5 */
    struct cfg_mark dead_letter_mark;
    int content_dedup;                /* content_based_deduplication, FIFO only, default false */
    struct cfg_mark content_dedup_mark;
    char *store;                      /* backend.store: a `stores:` name, or NULL (local) */
    struct cfg_mark store_mark;
    int line, col;
    struct cfg_mark name_mark;
};

struct cfg_ctx;

/* Section rows of server/config.c: `data_dir` (a directory path, kept as
 * written) into cfg->data_dir, `queues` into cfg->queues / n_queues of the
 * struct cfg `obj`. Return 0, or a negative errno with ctx's message. */
int queue_cfg_parse_data_dir(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
int queue_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
/* Fills each queue's attrs and asks for data_dir when queues or an sqs
 * listener exist. */
int queue_cfg_resolve(struct cfg_ctx *ctx, void *root);
void queue_cfg_free_data_dir(void *root);
void queue_cfg_free(void *root);

/* Whether `name` is a valid SQS queue name (1-80 of [A-Za-z0-9_-], a FIFO
 * queue's ending ".fifo" included). */
int queue_cfg_name_ok(const char *name);

#endif

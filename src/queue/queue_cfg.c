/* queue_cfg: parses `data_dir:` and the `queues:` section.
 *
 *   data_dir: PATH
 *   queues list -- queue map -- name (an SQS queue name)
 *                            |- visibility_timeout, delay, retention, receive_wait
 *                            |- max_message_size
 *                            |- durability map (fsync: always | interval | never, every)
 *                            |- dead_letter map (queue: NAME, max_receives: N)
 *                            `- backend map (store: NAME of `stores:`)
 *
 * Built on the loader's toolkit like every section. Durations become whole
 * seconds for the SQS attributes (what SQS itself counts in). Names are
 * unique. resolve asks for data_dir once anything durable is configured.
 * Nothing here touches the disk. */
#include "queue/queue_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "server/config.h"
#include "store/store_cfg.h"

static const struct cfg_queue queue_cfg_defaults = {
    .visibility_timeout_ms = 30000,
    .delay_ms = 0,
    .retention_ms = 345600000,
    .max_message_bytes = 262144,
    .receive_wait_ms = 0,
    .fsync_every_ms = 10,
    .fsync = QUEUE_FSYNC_ALWAYS,
    .max_receives = 5,
};

int queue_cfg_name_ok(const char *name)
{
    size_t len = strlen(name), base = len;
    if (len > 5 && strcmp(name + len - 5, ".fifo") == 0)
        base = len - 5;
    return len >= 1 && len <= QUEUE_MAX_NAME && base >= 1 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == base;
}

int queue_cfg_parse_data_dir(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'data_dir'", &s);
    if (rc < 0)
        return rc;
    if (s[0] == 0)
        return cfg_fail(ctx, v, "'data_dir' must name a directory");
    return cfg_strdup(ctx, s, &cfg->data_dir);
}

static int queue_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_queue *qc = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int rc = cfg_text(ctx, v, "'name'", &s);
    if (rc < 0)
        return rc;
    if (!queue_cfg_name_ok(s))
        return cfg_fail(ctx, v, "bad queue name %s: use 1 to %d letters, digits, '_' or '-' "
                        "(a FIFO queue's name ends in .fifo)", cfg_quote(s, q), QUEUE_MAX_NAME);
    qc->name_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &qc->name);
}

static int queue_cfg_fsync(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_enum(ctx, v, "fsync", queue_fsync_names, QUEUE_FSYNC_COUNT,
                          &((struct cfg_queue *)obj)->fsync);
}

static const struct cfg_key queue_cfg_durability_keys[] = {
    CFG_FUNC("fsync", queue_cfg_fsync, false),
    CFG_FIELD("every", CFG_KIND_DURATION, struct cfg_queue, fsync_every_ms, 1, 10000),
};
CFG_MAP_DEFINE(queue_cfg_durability_map, "queue durability", queue_cfg_durability_keys);

static int queue_cfg_durability(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &queue_cfg_durability_map, obj, NULL);
}

static int queue_cfg_dlq_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_queue *qc = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'queue'", &s);
    if (rc < 0)
        return rc;
    qc->dead_letter_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &qc->dead_letter);
}

static const struct cfg_key queue_cfg_dlq_keys[] = {
    CFG_FUNC("queue", queue_cfg_dlq_name, true),
    CFG_FIELD("max_receives", CFG_KIND_UINT, struct cfg_queue, max_receives, 1, 1000),
};
CFG_MAP_DEFINE(queue_cfg_dlq_map, "queue dead_letter", queue_cfg_dlq_keys);

static int queue_cfg_dead_letter(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &queue_cfg_dlq_map, obj, NULL);
}

static int queue_cfg_content_dedup(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_queue *qc = obj;
    qc->content_dedup_mark = cfg_mark_of(v);
    return cfg_parse_bool(ctx, v, "'content_based_deduplication'", &qc->content_dedup);
}

static int queue_cfg_store(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_queue *qc = obj;
    return cfg_parse_name(ctx, v, &qc->store, &qc->store_mark);
}

static const struct cfg_key queue_cfg_backend_keys[] = {
    CFG_FUNC("store", queue_cfg_store, true),
};
CFG_MAP_DEFINE(queue_cfg_backend_map, "queue backend", queue_cfg_backend_keys);

static int queue_cfg_backend(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &queue_cfg_backend_map, obj, NULL);
}

static const struct cfg_key queue_cfg_keys[] = {
    CFG_FUNC("name", queue_cfg_name, true),
    CFG_FIELD("visibility_timeout", CFG_KIND_DURATION, struct cfg_queue, visibility_timeout_ms,
              0, 43200000),
    CFG_FIELD("delay", CFG_KIND_DURATION, struct cfg_queue, delay_ms, 0, 900000),
    CFG_FIELD("retention", CFG_KIND_DURATION, struct cfg_queue, retention_ms, 60000,
              1209600000),
    CFG_FIELD("max_message_size", CFG_KIND_SIZE, struct cfg_queue, max_message_bytes, 1024,
              1048576),
    CFG_FIELD("receive_wait", CFG_KIND_DURATION, struct cfg_queue, receive_wait_ms, 0, 20000),
    CFG_FUNC("durability", queue_cfg_durability, false),
    CFG_FUNC("dead_letter", queue_cfg_dead_letter, false),
    CFG_FUNC("content_based_deduplication", queue_cfg_content_dedup, false),
    CFG_FUNC("backend", queue_cfg_backend, false),
};
CFG_MAP_DEFINE(queue_cfg_map, "queue", queue_cfg_keys);

static int queue_cfg_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_queue *qc = &cfg->queues[i];
    char q[CFG_QUOTE_SIZE];

    *qc = queue_cfg_defaults;
    qc->line = cfg_mark_of(node).line;
    qc->col = cfg_mark_of(node).col;
    int rc = cfg_parse_map(ctx, node, &queue_cfg_map, qc, NULL);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->queues[j].name, qc->name) == 0)
            return cfg_fail_mark(ctx, qc->name_mark, "duplicate queue name %s (first defined at "
                                 "%d:%d)", cfg_quote(qc->name, q), cfg->queues[j].name_mark.line,
                                 cfg->queues[j].name_mark.col);
    return 0;
}

int queue_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    void *items;
    static const struct cfg_list list = { "'queues'", "queue", sizeof(struct cfg_queue),
                                          CFG_MAX_QUEUES };
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_queues);
    if (rc < 0)
        return rc;
    cfg->queues = items;
    return cfg_list_each(ctx, v, queue_cfg_item, cfg);
}

static void queue_cfg_attrs(struct cfg_queue *qc)
{
    struct queue_attrs *a = &qc->attrs;
    *a = queue_attrs_default;
    a->visibility_timeout_s = (uint32_t)(qc->visibility_timeout_ms / 1000);
    a->delay_s = (uint32_t)(qc->delay_ms / 1000);
    a->retention_s = (uint32_t)(qc->retention_ms / 1000);
    a->max_message_bytes = (uint32_t)qc->max_message_bytes;
    a->receive_wait_s = (uint32_t)(qc->receive_wait_ms / 1000);
    a->fsync = (enum queue_fsync)qc->fsync;
    a->fsync_every_ms = (uint32_t)qc->fsync_every_ms;
    a->fifo = strlen(qc->name) > 5 && strcmp(qc->name + strlen(qc->name) - 5, ".fifo") == 0;
    a->content_dedup = (uint32_t)qc->content_dedup;
    if (qc->dead_letter) {
        a->max_receives = (uint32_t)qc->max_receives;
        snprintf(a->dead_letter, sizeof(a->dead_letter), "%s", qc->dead_letter);
    }
    if (qc->store)
        snprintf(a->store, sizeof(a->store), "%s", qc->store);
}

/* A queue kept in a store names a store of `stores:`, is a standard queue
 * (the Redis mode has no FIFO queues yet), and its dead-letter queue is
 * kept in the same store; a local queue's dead-letter queue is local. */
static int queue_cfg_check_store(struct cfg_ctx *ctx, const struct cfg *cfg,
                                 const struct cfg_queue *qc)
{
    char q[CFG_QUOTE_SIZE];
    if (qc->store && store_cfg_find(cfg, qc->store) == NULL)
        return cfg_fail_mark(ctx, qc->store_mark, "store %s is not defined in 'stores'",
                             cfg_quote(qc->store, q));
    if (qc->store && qc->attrs.fifo)
        return cfg_fail_mark(ctx, qc->store_mark, "a FIFO queue cannot be kept in a store yet");
    for (size_t i = 0; qc->dead_letter && i < cfg->n_queues; i++) {
        const struct cfg_queue *d = &cfg->queues[i];
        if (strcmp(d->name, qc->dead_letter) == 0 &&
            strcmp(d->store ? d->store : "", qc->store ? qc->store : "") != 0)
            return cfg_fail_mark(ctx, qc->dead_letter_mark, "a dead-letter queue is kept where "
                                 "its source is (the same 'backend' store, or both local)");
    }
    return 0;
}

/* The dead-letter queue of qc is another queue of the section, of the
 * same type; content-based deduplication is for FIFO queues. */
static int queue_cfg_check_dlq(struct cfg_ctx *ctx, const struct cfg *cfg,
                               const struct cfg_queue *qc)
{
    char q[CFG_QUOTE_SIZE];
    if (qc->content_dedup && !qc->attrs.fifo)
        return cfg_fail_mark(ctx, qc->content_dedup_mark, "'content_based_deduplication' is for "
                             "FIFO queues (names ending in .fifo)");
    if (qc->dead_letter == NULL)
        return 0;
    if (strcmp(qc->dead_letter, qc->name) == 0)
        return cfg_fail_mark(ctx, qc->dead_letter_mark, "a queue cannot be its own dead-letter "
                             "queue");
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const struct cfg_queue *d = &cfg->queues[i];
        if (strcmp(d->name, qc->dead_letter) != 0)
            continue;
        int d_fifo = strlen(d->name) > 5 && strcmp(d->name + strlen(d->name) - 5, ".fifo") == 0;
        if (d_fifo != (int)qc->attrs.fifo)
            return cfg_fail_mark(ctx, qc->dead_letter_mark, "a dead-letter queue is of its "
                                 "source's type (FIFO or standard)");
        return 0;
    }
    return cfg_fail_mark(ctx, qc->dead_letter_mark, "dead-letter queue %s is not defined in "
                         "'queues'", cfg_quote(qc->dead_letter, q));
}

int queue_cfg_resolve(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;
    int need = cfg->n_queues > 0;

    for (size_t i = 0; i < cfg->n_queues; i++) {
        queue_cfg_attrs(&cfg->queues[i]);
        int rc = queue_cfg_check_dlq(ctx, cfg, &cfg->queues[i]);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < cfg->n_queues; i++) {
        int rc = queue_cfg_check_store(ctx, cfg, &cfg->queues[i]);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++)
        need |= cfg->listeners[i].protocol == CFG_PROTOCOL_SQS;
    if (need && cfg->data_dir == NULL) {
        yaml_node_t *top = yaml_document_get_root_node(ctx->doc);
        return cfg_fail(ctx, top, "configuration is missing required key 'data_dir' (durable "
                        "queues keep their log there)");
    }
    return 0;
}

void queue_cfg_free_data_dir(void *root)
{
    struct cfg *cfg = root;
    free(cfg->data_dir);
    cfg->data_dir = NULL;
}

void queue_cfg_free(void *root)
{
    struct cfg *cfg = root;
    for (size_t i = 0; cfg->queues && i < cfg->n_queues; i++) {
        free(cfg->queues[i].name);
        free(cfg->queues[i].dead_letter);
        free(cfg->queues[i].store);
    }
    free(cfg->queues);
    cfg->queues = NULL;
    cfg->n_queues = 0;
}

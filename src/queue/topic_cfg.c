/* topic_cfg: parses the `topics:` section.
 *
 *   topics list -- topic map -- name (1-56 of A-Za-z0-9_-)
 *                            `- subscriptions list -- subscription map
 *                                  |- queue: NAME                   (one of these two)
 *                                  |- push map: cluster, path, attempts, backoff {base, max},
 *                                  |            timeout, concurrency, dead_letter
 *                                  `- filter map: ATTRIBUTE -> condition(s)
 *
 * A filter condition (a subset of SNS filter policies) is a scalar (the
 * exact string), a map {exists: BOOL} or {numeric: [OP, N (, OP, N)]}, or
 * a list of those (any of them). resolve checks every name against the
 * rest of the configuration and names each push subscription's outbox
 * queue `weir.push.TOPIC.N` (N its position in the list). Nothing here
 * touches the disk. */
#include "queue/topic_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "queue/queue_cfg.h"
#include "server/config.h"

static const struct cfg_push topic_cfg_push_defaults = {
    .attempts = 5,
    .backoff_base_ms = 100,
    .backoff_max_ms = 10000,
    .timeout_ms = 10000,
    .concurrency = 4,
};

/* ---- filters ---- */

/* Parses a number of a numeric condition. */
static int topic_cfg_number(struct cfg_ctx *ctx, yaml_node_t *v, double *out)
{
    const char *s;
    char *end;
    int rc = cfg_scalar(ctx, v, "a number", &s);
    if (rc < 0)
        return rc;
    *out = strtod(s, &end);
    if (end == s || *end != 0 || !isfinite(*out))
        return cfg_fail(ctx, v, "expected a number in 'numeric'");
    return 0;
}

/* numeric: [OP, N] or [OP, N, OP, N] with OP one of = < <= > >=. */
static int topic_cfg_numeric(struct cfg_ctx *ctx, yaml_node_t *v, struct topic_cond *c)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'numeric'");
    if (rc < 0)
        return rc;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n != 2 && n != 4)
        return cfg_fail(ctx, v, "'numeric' takes [OP, N] or [OP, N, OP, N] (OP: = < <= > >=)");
    c->kind = TOPIC_COND_NUMERIC;
    for (size_t i = 0; i < n; i += 2) {
        yaml_node_t *opn = cfg_node(ctx, v->data.sequence.items.start[i]);
        yaml_node_t *num = cfg_node(ctx, v->data.sequence.items.start[i + 1]);
        const char *op;
        double x;
        if ((rc = cfg_scalar(ctx, opn, "an operator", &op)) < 0 ||
            (rc = topic_cfg_number(ctx, num, &x)) < 0)
            return rc;
        if (strcmp(op, "=") == 0 && n == 2) {
            c->has_lo = c->has_hi = c->lo_incl = c->hi_incl = 1;
            c->lo = c->hi = x;
        } else if ((strcmp(op, ">") == 0 || strcmp(op, ">=") == 0) && !c->has_lo) {
            c->has_lo = 1;
            c->lo_incl = op[1] == '=';
            c->lo = x;
        } else if ((strcmp(op, "<") == 0 || strcmp(op, "<=") == 0) && !c->has_hi) {
            c->has_hi = 1;
            c->hi_incl = op[1] == '=';
            c->hi = x;
        } else {
            return cfg_fail(ctx, opn,
                            "bad 'numeric' operator (use = alone, or one of > >= and "
                            "one of < <=)");
        }
    }
    if (c->has_lo && c->has_hi && c->lo > c->hi)
        return cfg_fail(ctx, v, "'numeric' range is empty");
    return 0;
}

/* One condition: a scalar, or {exists: BOOL} / {numeric: [...]}. */
static int topic_cfg_cond(struct cfg_ctx *ctx, yaml_node_t *v, struct topic_cond *c)
{
    const char *s;
    int rc = cfg_visit(ctx, v);
    if (rc < 0)
        return rc;
    if (v->type == YAML_SCALAR_NODE) {
        c->kind = TOPIC_COND_EQUALS;
        if ((rc = cfg_scalar(ctx, v, "a value", &s)) < 0)
            return rc;
        return cfg_strdup(ctx, s, &c->value);
    }
    if (v->type != YAML_MAPPING_NODE ||
        v->data.mapping.pairs.top - v->data.mapping.pairs.start != 1)
        return cfg_fail(ctx, v,
                        "a filter condition is a value, {exists: BOOL} or {numeric: "
                        "[OP, N, ...]}");
    yaml_node_pair_t *p = v->data.mapping.pairs.start;
    yaml_node_t *k = cfg_node(ctx, p->key), *val = cfg_node(ctx, p->value);
    if ((rc = cfg_text(ctx, k, "a condition", &s)) < 0 || (rc = cfg_visit(ctx, val)) < 0)
        return rc;
    if (strcmp(s, "exists") == 0) {
        c->kind = TOPIC_COND_EXISTS;
        return cfg_parse_bool(ctx, val, "'exists'", &c->exists);
    }
    if (strcmp(s, "numeric") == 0)
        return topic_cfg_numeric(ctx, val, c);
    return cfg_fail(ctx, k, "unknown filter condition (expected 'exists' or 'numeric')");
}

/* One ATTRIBUTE: condition(s) of a filter. */
static int topic_cfg_filter_attr(struct cfg_ctx *ctx, yaml_node_t *k, yaml_node_t *v,
                                 struct topic_filter_attr *a)
{
    const char *name;
    int rc = cfg_text(ctx, k, "an attribute name", &name);
    if (rc < 0 || (rc = cfg_strdup(ctx, name, &a->name)) < 0 || (rc = cfg_visit(ctx, v)) < 0)
        return rc;
    int list = v->type == YAML_SEQUENCE_NODE;
    size_t n = list ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
    if (n == 0 || n > TOPIC_FILTER_MAX_VALUES)
        return cfg_fail(ctx, v, "a filter attribute takes 1 to %d values", TOPIC_FILTER_MAX_VALUES);
    if ((a->conds = cfg_calloc_fn(n, sizeof(*a->conds))) == NULL)
        return cfg_nomem(ctx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *c = list ? cfg_node(ctx, v->data.sequence.items.start[i]) : v;
        a->n_conds++;
        if ((rc = topic_cfg_cond(ctx, c, &a->conds[i])) < 0)
            return rc;
    }
    return 0;
}

static int topic_cfg_filter(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct topic_filter *f = &((struct cfg_subscription *)obj)->filter;
    int rc = cfg_expect(ctx, v, YAML_MAPPING_NODE, "'filter'");
    if (rc < 0)
        return rc;
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0 || n > TOPIC_FILTER_MAX_ATTRS)
        return cfg_fail(ctx, v, "'filter' names 1 to %d attributes", TOPIC_FILTER_MAX_ATTRS);
    if ((f->attrs = cfg_calloc_fn(n, sizeof(*f->attrs))) == NULL)
        return cfg_nomem(ctx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
        f->n_attrs++;
        rc = topic_cfg_filter_attr(ctx, cfg_node(ctx, p->key), cfg_node(ctx, p->value),
                                   &f->attrs[i]);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->attrs[j].name, f->attrs[i].name) == 0)
                return cfg_fail(ctx, cfg_node(ctx, p->key), "duplicate filter attribute");
    }
    return 0;
}

static void topic_cfg_filter_free(struct topic_filter *f)
{
    for (size_t i = 0; f->attrs && i < f->n_attrs; i++) {
        for (size_t j = 0; j < f->attrs[i].n_conds; j++)
            free(f->attrs[i].conds[j].value);
        free(f->attrs[i].conds);
        free(f->attrs[i].name);
    }
    free(f->attrs);
    f->attrs = NULL;
    f->n_attrs = 0;
}

/* ---- push ---- */

static int topic_cfg_push_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_push *p = obj;
    return cfg_parse_name(ctx, v, &p->cluster_name, &p->cluster_mark);
}

static int topic_cfg_push_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_push *p = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'path'", &s);
    if (rc < 0)
        return rc;
    if (s[0] != '/')
        return cfg_fail(ctx, v, "'path' must start with '/'");
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cfg_fail(ctx, v, "'path' must not hold spaces or control characters");
    free(p->path);
    p->path = NULL;
    return cfg_strdup(ctx, s, &p->path);
}

static int topic_cfg_push_dlq(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_push *p = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'dead_letter'", &s);
    if (rc < 0)
        return rc;
    p->dead_letter_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &p->dead_letter);
}

static const struct cfg_key topic_cfg_backoff_keys[] = {
    CFG_FIELD("base", CFG_KIND_DURATION, struct cfg_push, backoff_base_ms, 1, 3600000),
    CFG_FIELD("max", CFG_KIND_DURATION, struct cfg_push, backoff_max_ms, 1, 3600000),
};
CFG_MAP_DEFINE(topic_cfg_backoff_map, "push backoff", topic_cfg_backoff_keys);

static int topic_cfg_push_backoff(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &topic_cfg_backoff_map, obj, NULL);
}

static const struct cfg_key topic_cfg_push_keys[] = {
    CFG_FUNC("cluster", topic_cfg_push_cluster, true),
    CFG_FUNC("path", topic_cfg_push_path, false),
    CFG_FIELD("attempts", CFG_KIND_UINT, struct cfg_push, attempts, 1, 100),
    CFG_FUNC("backoff", topic_cfg_push_backoff, false),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct cfg_push, timeout_ms, 1, 300000),
    CFG_FIELD("concurrency", CFG_KIND_UINT, struct cfg_push, concurrency, 1, 256),
    CFG_FUNC("dead_letter", topic_cfg_push_dlq, false),
};
CFG_MAP_DEFINE(topic_cfg_push_map, "push subscription", topic_cfg_push_keys);

static int topic_cfg_push(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_subscription *s = obj;
    if ((s->push = cfg_calloc_fn(1, sizeof(*s->push))) == NULL)
        return cfg_nomem(ctx);
    *s->push = topic_cfg_push_defaults;
    int rc = cfg_parse_map(ctx, v, &topic_cfg_push_map, s->push, NULL);
    if (rc == 0 && s->push->path == NULL)
        rc = cfg_strdup(ctx, "/", &s->push->path);
    if (rc == 0 && s->push->backoff_base_ms > s->push->backoff_max_ms)
        rc = cfg_fail(ctx, v, "push backoff 'base' is larger than 'max'");
    return rc;
}

static void topic_cfg_push_free(struct cfg_push *p)
{
    if (p == NULL)
        return;
    free(p->cluster_name);
    free(p->path);
    free(p->dead_letter);
    free(p);
}

/* ---- subscriptions, topics ---- */

static int topic_cfg_sub_queue(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_subscription *s = obj;
    const char *name;
    int rc = cfg_text(ctx, v, "'queue'", &name);
    if (rc < 0)
        return rc;
    s->queue_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, name, &s->queue);
}

static const struct cfg_key topic_cfg_sub_keys[] = {
    CFG_FUNC("queue", topic_cfg_sub_queue, false),
    CFG_FUNC("push", topic_cfg_push, false),
    CFG_FUNC("filter", topic_cfg_filter, false),
};
CFG_MAP_DEFINE(topic_cfg_sub_map, "subscription", topic_cfg_sub_keys);

static int topic_cfg_sub_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg_topic *t = obj;
    struct cfg_subscription *s = &t->subs[i];
    int rc = cfg_parse_map(ctx, node, &topic_cfg_sub_map, s, NULL);
    if (rc < 0)
        return rc;
    if ((s->queue == NULL) == (s->push == NULL))
        return cfg_fail(ctx, node, "a subscription has either 'queue' or 'push'");
    return 0;
}

static int topic_cfg_subs(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_topic *t = obj;
    void *items;
    static const struct cfg_list list = {"'subscriptions'", "subscription",
                                         sizeof(struct cfg_subscription), TOPIC_MAX_SUBSCRIPTIONS};
    int rc = cfg_list_new(ctx, v, &list, &items, &t->n_subs);
    if (rc < 0)
        return rc;
    t->subs = items;
    return cfg_list_each(ctx, v, topic_cfg_sub_item, t);
}

static int topic_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_topic *t = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int rc = cfg_text(ctx, v, "'name'", &s);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    if (len == 0 || len > TOPIC_MAX_NAME ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
        return cfg_fail(ctx, v, "bad topic name %s: use 1 to %d letters, digits, '_' or '-'",
                        cfg_quote(s, q), TOPIC_MAX_NAME);
    t->name_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &t->name);
}

static const struct cfg_key topic_cfg_keys[] = {
    CFG_FUNC("name", topic_cfg_name, true),
    CFG_FUNC("subscriptions", topic_cfg_subs, true),
};
CFG_MAP_DEFINE(topic_cfg_map, "topic", topic_cfg_keys);

static int topic_cfg_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_topic *t = &cfg->topics[i];
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_parse_map(ctx, node, &topic_cfg_map, t, NULL);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->topics[j].name, t->name) == 0)
            return cfg_fail_mark(ctx, t->name_mark,
                                 "duplicate topic name %s (first defined at "
                                 "%d:%d)",
                                 cfg_quote(t->name, q), cfg->topics[j].name_mark.line,
                                 cfg->topics[j].name_mark.col);
    return 0;
}

int topic_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    void *items;
    static const struct cfg_list list = {"'topics'", "topic", sizeof(struct cfg_topic),
                                         CFG_MAX_TOPICS};
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_topics);
    if (rc < 0)
        return rc;
    cfg->topics = items;
    return cfg_list_each(ctx, v, topic_cfg_item, cfg);
}

/* ---- resolve ---- */

/* Queue `name` is declared in `queues:` and is a standard, local queue. */
static int topic_cfg_check_queue(struct cfg_ctx *ctx, const struct cfg *cfg, const char *name,
                                 struct cfg_mark mark, const char *what)
{
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; i < cfg->n_queues; i++) {
        if (strcmp(cfg->queues[i].name, name) != 0)
            continue;
        if (cfg->queues[i].attrs.fifo)
            return cfg_fail_mark(ctx, mark,
                                 "%s %s is a FIFO queue (a topic has no message group "
                                 "to give)",
                                 what, cfg_quote(name, q));
        if (cfg->queues[i].store)
            return cfg_fail_mark(ctx, mark,
                                 "%s %s is kept in store %s (topics deliver to local "
                                 "queues only)",
                                 what, cfg_quote(name, q), cfg->queues[i].store);
        return 0;
    }
    return cfg_fail_mark(ctx, mark, "%s %s is not defined in 'queues'", what, cfg_quote(name, q));
}

static int topic_cfg_resolve_sub(struct cfg_ctx *ctx, const struct cfg *cfg,
                                 const struct cfg_topic *t, size_t i)
{
    struct cfg_subscription *s = &t->subs[i];
    char q[CFG_QUOTE_SIZE];
    if (s->queue)
        return topic_cfg_check_queue(ctx, cfg, s->queue, s->queue_mark, "subscribed queue");
    snprintf(s->outbox, sizeof(s->outbox), TOPIC_OUTBOX_PREFIX "%s.%zu", t->name, i);
    if (cfg_find_cluster(cfg, s->push->cluster_name) == NULL)
        return cfg_fail_mark(ctx, s->push->cluster_mark,
                             "push subscription names cluster %s "
                             "which is not defined in 'clusters'",
                             cfg_quote(s->push->cluster_name, q));
    if (s->push->dead_letter)
        return topic_cfg_check_queue(ctx, cfg, s->push->dead_letter, s->push->dead_letter_mark,
                                     "push dead-letter queue");
    return 0;
}

int topic_cfg_resolve(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;
    for (size_t i = 0; i < cfg->n_topics; i++)
        for (size_t j = 0; j < cfg->topics[i].n_subs; j++) {
            int rc = topic_cfg_resolve_sub(ctx, cfg, &cfg->topics[i], j);
            if (rc < 0)
                return rc;
        }
    if (cfg->n_topics > 0 && cfg->data_dir == NULL) {
        yaml_node_t *top = yaml_document_get_root_node(ctx->doc);
        return cfg_fail(ctx, top,
                        "configuration is missing required key 'data_dir' (topics "
                        "keep their messages in durable queues)");
    }
    return 0;
}

void topic_cfg_free(void *root)
{
    struct cfg *cfg = root;
    for (size_t i = 0; cfg->topics && i < cfg->n_topics; i++) {
        struct cfg_topic *t = &cfg->topics[i];
        for (size_t j = 0; t->subs && j < t->n_subs; j++) {
            free(t->subs[j].queue);
            topic_cfg_push_free(t->subs[j].push);
            topic_cfg_filter_free(&t->subs[j].filter);
        }
        free(t->subs);
        free(t->name);
    }
    free(cfg->topics);
    cfg->topics = NULL;
    cfg->n_topics = 0;
}

const struct cfg_topic *topic_cfg_find(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_topics; i++)
        if (strcmp(cfg->topics[i].name, name) == 0)
            return &cfg->topics[i];
    return NULL;
}

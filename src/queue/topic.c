/* topic: publishing (topic.h).
 *
 *   publish(m) --filter--> queue A     (each subscribed queue: its own copy)
 *              --filter--> queue B
 *              --filter--> outbox weir.push.T.N --> push.c --> POST to the cluster
 *
 * A publish first finds every queue it goes to and checks the size against
 * each, so a refused publish stores nothing; then it sends to them in the
 * subscriptions' order. Every queue shares the instance's log, so one sync
 * to the highest position reached covers all of them: the caller syncs to
 * sync_pos (the highest position among queues with fsync always) before
 * answering. Subscribers get the body and attributes as published (like
 * SNS's raw message delivery), with their own queue's MessageId.
 *
 * Filters are a subset of SNS filter policies (topic_cfg.h): exact strings,
 * lists of values, exists, numeric ranges. */
#include "queue/topic.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"
#include "server/config.h"

/* ---- filters ---- */

/* The StringValue of attribute a when its DataType starts with `type`. */
static const char *topic_attr_value(const json_t *a, const char *type)
{
    const char *dt = json_string_value(json_object_get(a, "DataType"));
    if (dt == NULL || strncmp(dt, type, strlen(type)) != 0)
        return NULL;
    return json_string_value(json_object_get(a, "StringValue"));
}

static int topic_cond_match(const struct topic_cond *c, const json_t *a)
{
    const char *s;
    char *end;
    double x;
    switch (c->kind) {
    case TOPIC_COND_EXISTS:
        return (a != NULL) == (c->exists != 0);
    case TOPIC_COND_EQUALS:
        s = a ? topic_attr_value(a, "String") : NULL;
        if (s == NULL && a)
            s = topic_attr_value(a, "Number");
        return s != NULL && strcmp(s, c->value) == 0;
    case TOPIC_COND_NUMERIC:
        if ((s = a ? topic_attr_value(a, "Number") : NULL) == NULL)
            return 0;
        x = strtod(s, &end);
        if (end == s || *end != 0 || !isfinite(x))
            return 0;
        if (c->has_lo && (c->lo_incl ? x < c->lo : x <= c->lo))
            return 0;
        return !(c->has_hi && (c->hi_incl ? x > c->hi : x >= c->hi));
    default:
        return 0;
    }
}

int topic_filter_match(const struct topic_filter *f, const json_t *attrs)
{
    for (size_t i = 0; i < f->n_attrs; i++) {
        const struct topic_filter_attr *fa = &f->attrs[i];
        const json_t *a = attrs ? json_object_get(attrs, fa->name) : NULL;
        int any = 0;
        for (size_t j = 0; !any && j < fa->n_conds; j++)
            any = topic_cond_match(&fa->conds[j], a);
        if (!any)
            return 0;
    }
    return 1;
}

/* ---- publishing ---- */

static void topic_new_id(char *id)
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)rand();
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(id, QUEUE_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* The queues m goes to, referenced, into qs (n_subs of them, NULL where
 * the filter says no). Returns 0 or -ENOENT / -EMSGSIZE (none kept). */
static int topic_targets(struct qbroker *b, const struct cfg_topic *t,
                         const struct topic_message *m, struct queue **qs)
{
    int rc = 0;
    for (size_t i = 0; i < t->n_subs; i++) {
        const struct cfg_subscription *s = &t->subs[i];
        qs[i] = NULL;
        if (rc < 0 || !topic_filter_match(&s->filter, m->attrs))
            continue;
        qs[i] = qbroker_find(b, s->queue ? s->queue : s->outbox);
        if (qs[i] == NULL)
            rc = -ENOENT;
        else if (m->body_len + m->attr_bytes > qs[i]->attrs.max_message_bytes)
            rc = -EMSGSIZE;
    }
    if (rc < 0)
        for (size_t i = 0; i < t->n_subs; i++) {
            queue_put(qs[i]);
            qs[i] = NULL;
        }
    return rc;
}

int topic_publish(struct qbroker *b, const struct cfg_topic *t, const struct topic_message *m,
                  struct topic_published *out)
{
    struct queue *qs[TOPIC_MAX_SUBSCRIPTIONS];
    struct queue_send send = {.body = m->body,
                              .body_len = m->body_len,
                              .attrs = m->attrs_text,
                              .attrs_len = m->attrs_text ? strlen(m->attrs_text) : 0,
                              .md5_attrs = m->md5_attrs,
                              .delay_s = -1};
    topic_new_id(out->id);
    out->sync_pos = 0;
    out->n_queued = 0;
    int rc = topic_targets(b, t, m, qs);
    for (size_t i = 0; i < t->n_subs; i++) {
        char id[QUEUE_ID_LEN + 1];
        uint64_t seq, pos;
        if (qs[i] == NULL)
            continue;
        if (rc == 0 && (rc = queue_send(qs[i], &send, id, &seq, &pos)) == 0) {
            out->n_queued++;
            if (qs[i]->attrs.fsync == QUEUE_FSYNC_ALWAYS && pos > out->sync_pos)
                out->sync_pos = pos;
        }
        queue_put(qs[i]);
    }
    return rc;
}

/* ---- outboxes ---- */

int topic_configure(struct qbroker *b, const struct cfg *cfg, char *err, size_t err_size)
{
    struct queue_attrs a = queue_attrs_default;
    a.visibility_timeout_s = 43200; /* push.c holds a message while it tries */
    a.retention_s = 1209600;
    a.max_message_bytes = 1048576;
    for (size_t i = 0; i < cfg->n_topics; i++)
        for (size_t j = 0; j < cfg->topics[i].n_subs; j++) {
            const struct cfg_subscription *s = &cfg->topics[i].subs[j];
            struct queue *q = NULL;
            if (s->push == NULL)
                continue;
            int rc = qbroker_create(b, s->outbox, &a, &q);
            queue_put(q);
            if (rc < 0 && rc != -EEXIST) {
                snprintf(err, err_size, "topic %s: cannot make outbox queue %s: %s",
                         cfg->topics[i].name, s->outbox, strerror(-rc));
                return rc;
            }
        }
    return 0;
}

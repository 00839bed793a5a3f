/* push: delivers the messages of push subscriptions to their clusters.
 *
 *   publish --> outbox queue weir.push.TOPIC.N (durable, in the log)
 *                 |  receive (visibility 12h: held while being tried)
 *                 v
 *   delivery: POST path (subreq: pick, breaker, pooled connection)
 *        2xx --> delete from the outbox (done)
 *        else -> wait uniform [0, min(max, base*2^(n-1))] (full jitter), try again
 *                after `attempts` tries: the dead-letter queue (with the
 *                reason as attribute weir.push.failure), then delete
 *
 * One pusher for the instance, on worker 0's loop (its thread owns every
 * delivery, so nothing here is shared). Each subscription takes at most
 * `concurrency` messages at a time; when its outbox is empty it registers
 * a queue waiter, which a send on any thread (or the broker's sweep, for a
 * message whose visibility ended) wakes through the pusher's ev_async. A
 * one-second tick follows the worker's snapshot: subscriptions added or
 * removed by a reload, settings changed.
 *
 * The outbox is the durable state: a message stays there until it was
 * delivered or dead-lettered, so a crash or restart delivers it again (at
 * least once; X-Weir-Message-Id, the outbox message's id, is the same on
 * every try). Tries made are counted in memory: after a restart a message
 * gets `attempts` new tries. Never: answer a publish before its outbox
 * record is durable (topic.c); delete from the outbox before the
 * dead-letter copy is durable. */
#include "queue/push.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/hash.h"
#include "core/log.h"
#include "http/retry.h"
#include "http/route_cfg.h"
#include "http/subreq.h"
#include "queue/qmd5.h"
#include "queue/queue.h"
#include "queue/sqs.h"
#include "queue/topic_cfg.h"
#include "server/config.h"
#include "server/server.h"
#include "server/snapshot.h"
#include "upstream/cluster.h"
#include "upstream/pool.h"

#define PUSH_HOLD_S 43200 /* visibility while a delivery holds a message */
#define PUSH_TICK_S 1.0
#define PUSH_HEAD_MAX 16384

struct push_sub;

struct push_delivery {
    struct push_sub *ps;
    struct push_delivery *next;
    char id[QUEUE_ID_LEN + 1];
    char receipt[QUEUE_MAX_RECEIPT];
    char *body; /* as stored in the outbox */
    size_t body_len;
    char *post; /* what is POSTed: body, or its base64 undone */
    size_t post_len;
    char *attrs; /* MessageAttributes JSON, or NULL */
    unsigned tries;
    char reason[96]; /* why the last try failed */
    ev_timer backoff;
    struct subreq *sr;
    struct snapshot *snap; /* held while sr runs (its cluster) */
};

struct push_sub {
    struct pusher *p;
    struct push_sub *next;
    char outbox[QUEUE_MAX_NAME + 1];
    char topic[TOPIC_MAX_NAME + 1];
    struct queue *q; /* the outbox (a reference), or NULL */
    struct queue_waiter waiter;
    struct cfg_push cfg; /* copied from the current configuration */
    int configured;      /* in the worker's current configuration */
    unsigned in_flight;
    struct push_delivery *deliveries;
};

struct pusher {
    struct wctx *wc;
    struct ev_loop *loop;
    ev_async async; /* an outbox has messages, or a slot freed */
    ev_timer tick;
    struct pool pool; /* keep-alive connections to the clusters */
    struct push_sub *subs;
    uint64_t rng;
    int stopped;
};

static void push_pump(struct pusher *p);

/* ---- deliveries ---- */

static void push_delivery_free(struct push_delivery *d)
{
    free(d->body);
    if (d->post != d->body)
        free(d->post);
    free(d->attrs);
    free(d);
}

/* Ends d: unlinked, freed, its slot free for the next message. */
static void push_finish(struct push_delivery *d)
{
    struct push_sub *ps = d->ps;
    struct push_delivery **pp = &ps->deliveries;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    ps->in_flight--;
    ev_timer_stop(ps->p->loop, &d->backoff);
    push_delivery_free(d);
    ev_async_send(ps->p->loop, &ps->p->async);
}

/* The body to POST: the stored one, or its base64 undone when the
 * publisher's body could not be stored as is (weir.body-encoding). */
static int push_decode(struct push_delivery *d)
{
    json_t *a = d->attrs ? json_loads(d->attrs, 0, NULL) : NULL;
    const char *enc =
        json_string_value(json_object_get(json_object_get(a, "weir.body-encoding"), "StringValue"));
    int base64 = enc && strcmp(enc, "base64") == 0;
    json_decref(a);
    d->post = d->body;
    d->post_len = d->body_len;
    if (!base64 || d->body_len % 4 != 0)
        return 0;
    unsigned char *out = malloc(d->body_len / 4 * 3 + 1);
    if (out == NULL)
        return -ENOMEM;
    int n = EVP_DecodeBlock(out, (const unsigned char *)d->body, (int)d->body_len);
    if (n < 0) {
        free(out);
        return 0;
    }
    for (size_t i = d->body_len; i > 0 && d->body[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding */
    d->post = (char *)out;
    d->post_len = (size_t)n;
    return 0;
}

/* queue_receive callback (outbox lock held): copies the message. */
static void push_take(void *arg, const struct queue_received *m)
{
    struct push_delivery **out = arg, *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    d->body = malloc(m->body_len + 1);
    d->attrs = m->attrs ? strndup(m->attrs, m->attrs_len) : NULL;
    if (d->body == NULL || (m->attrs && d->attrs == NULL)) {
        free(d->body);
        free(d->attrs);
        free(d);
        return;
    }
    memcpy(d->body, m->body, m->body_len);
    d->body[m->body_len] = 0;
    d->body_len = m->body_len;
    snprintf(d->id, sizeof(d->id), "%s", m->id);
    snprintf(d->receipt, sizeof(d->receipt), "%s", m->receipt);
    *out = d;
}

/* Moves d's message to the dead-letter queue (durably), then deletes it
 * from the outbox; without a dead-letter queue it is dropped. */
static void push_dead_letter(struct push_delivery *d)
{
    struct push_sub *ps = d->ps;
    struct qbroker *b = sqs_snapshot_broker(ps->p->wc->snap);
    struct queue *dq = b && ps->cfg.dead_letter ? qbroker_find(b, ps->cfg.dead_letter) : NULL;
    uint64_t pos;
    int rc = -ENOENT;
    if (dq) {
        json_t *a = d->attrs ? json_loads(d->attrs, 0, NULL) : json_object();
        char tries[16], md5[QMD5_HEX], id[QUEUE_ID_LEN + 1];
        uint64_t seq;
        snprintf(tries, sizeof(tries), "%u", d->tries);
        json_object_set_new(
            a, "weir.push.failure",
            json_pack("{s:s, s:s}", "DataType", "String", "StringValue", d->reason));
        json_object_set_new(a, "weir.push.attempts",
                            json_pack("{s:s, s:s}", "DataType", "Number", "StringValue", tries));
        json_object_set_new(
            a, "weir.topic",
            json_pack("{s:s, s:s}", "DataType", "String", "StringValue", ps->topic));
        char *text = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        rc = text && qmd5_attrs(a, md5) == 0 ? 0 : -ENOMEM;
        struct queue_send m = {.body = d->body,
                               .body_len = d->body_len,
                               .attrs = text,
                               .attrs_len = text ? strlen(text) : 0,
                               .md5_attrs = md5,
                               .delay_s = -1};
        if (rc == 0 && (rc = queue_send(dq, &m, id, &seq, &pos)) == 0)
            rc = queue_durable(dq, pos);
        free(text);
        json_decref(a);
        queue_put(dq);
    }
    if (rc < 0 && ps->cfg.dead_letter) {
        log_warn("topic %s: push message %s failed %u time(s) (%s) and could not go to "
                 "dead-letter queue %s (%s); it is tried again later",
                 ps->topic, d->id, d->tries, d->reason, ps->cfg.dead_letter, strerror(-rc));
        queue_change_visibility(ps->q, d->receipt, (uint32_t)(ps->cfg.backoff_max_ms / 1000 + 1));
        return;
    }
    if (ps->cfg.dead_letter == NULL)
        log_warn("topic %s: push message %s dropped after %u failed tries (%s); give the "
                 "subscription a dead_letter queue to keep such messages",
                 ps->topic, d->id, d->tries, d->reason);
    queue_delete_msg(ps->q, d->receipt, &pos);
}

static void push_try(struct push_delivery *d);

/* A try failed for `reason`: wait and try again, or give up. */
static void push_failed(struct push_delivery *d, const char *reason)
{
    struct push_sub *ps = d->ps;
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
    if (d->tries >= ps->cfg.attempts || ps->p->stopped) {
        if (!ps->p->stopped)
            push_dead_letter(d);
        push_finish(d);
        return;
    }
    struct cfg_retry r = {.backoff_base_ms = ps->cfg.backoff_base_ms,
                          .backoff_max_ms = ps->cfg.backoff_max_ms};
    uint64_t ms = retry_backoff_ms(&r, d->tries, hash_mix64(ps->p->rng++));
    ev_timer_set(&d->backoff, (double)ms / 1000.0, 0.);
    ev_timer_start(ps->p->loop, &d->backoff);
}

static void push_done(void *arg, const struct subreq_result *r)
{
    struct push_delivery *d = arg;
    char reason[64];
    uint64_t pos;
    d->sr = NULL;
    snapshot_unref(d->snap);
    d->snap = NULL;
    if (r->error == SUBREQ_OK && r->head->status >= 200 && r->head->status < 300) {
        queue_delete_msg(d->ps->q, d->receipt, &pos);
        push_finish(d);
        return;
    }
    static const char *const errs[] = {"", "no endpoint up", "connect failed", "timeout",
                                       "invalid answer"};
    if (r->error == SUBREQ_OK)
        snprintf(reason, sizeof(reason), "HTTP %d", r->head->status);
    else
        snprintf(reason, sizeof(reason), "%s", errs[r->error]);
    push_failed(d, reason);
}

/* The request head of a try into buf; returns its length or -1. */
static int push_head(struct push_delivery *d, const char *host, char *buf, size_t size)
{
    const struct push_sub *ps = d->ps;
    int n = snprintf(buf, size,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\nX-Weir-Topic: %s\r\nX-Weir-Message-Id: %s\r\n"
                     "X-Weir-Attempt: %u\r\n%s%s%s\r\n",
                     ps->cfg.path, host, d->post_len, ps->topic, d->id, d->tries,
                     d->attrs ? "X-Weir-Message-Attributes: " : "", d->attrs ? d->attrs : "",
                     d->attrs ? "\r\n" : "");
    return n > 0 && (size_t)n < size ? n : -1;
}

/* One try: POST the message to the subscription's cluster. */
static void push_try(struct push_delivery *d)
{
    struct push_sub *ps = d->ps;
    struct pusher *p = ps->p;
    struct snapshot *snap = p->wc->snap;
    const struct cfg_cluster *cc = snap ? cfg_find_cluster(snap->cfg, ps->cfg.cluster_name) : NULL;
    static _Thread_local char head[PUSH_HEAD_MAX];
    d->tries++;
    if (cc == NULL) {
        push_failed(d, "no such cluster");
        return;
    }
    int n = push_head(d, cc->name, head, sizeof(head));
    if (n < 0) {
        push_failed(d, "request head too large");
        return;
    }
    struct subreq_params sp = {
        .loop = p->loop,
        .pool = &p->pool,
        .bufs = &p->wc->bufs,
        .cluster = &snap->clusters[cc - snap->cfg->clusters],
        .worker_id = p->wc->worker.id,
        .timeout_ms = ps->cfg.timeout_ms,
        .body = d->post,
        .body_len = d->post_len,
    };
    snapshot_ref(snap);
    d->snap = snap;
    if ((d->sr = subreq_start(&sp, head, (size_t)n, push_done, d)) == NULL) {
        snapshot_unref(snap);
        d->snap = NULL;
        push_failed(d, "out of memory");
    }
}

static void push_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct push_delivery *d = w->data;
    /* still ours? (a consumer may have deleted it through SQS) */
    if (queue_change_visibility(d->ps->q, d->receipt, PUSH_HOLD_S) < 0) {
        push_finish(d);
        return;
    }
    push_try(d);
}

/* ---- subscriptions ---- */

static void push_wake(struct queue_waiter *w)
{
    struct push_sub *ps = (struct push_sub *)((char *)w - offsetof(struct push_sub, waiter));
    ev_async_send(ps->p->loop, &ps->p->async);
}

static void push_cfg_clear(struct cfg_push *c)
{
    free(c->cluster_name);
    free(c->path);
    free(c->dead_letter);
    memset(c, 0, sizeof(*c));
}

/* Copies the settings of c into ps (the strings duplicated). */
static int push_cfg_copy(struct push_sub *ps, const struct cfg_push *c)
{
    struct cfg_push n = *c;
    n.cluster_name = strdup(c->cluster_name);
    n.path = strdup(c->path);
    n.dead_letter = c->dead_letter ? strdup(c->dead_letter) : NULL;
    if (n.cluster_name == NULL || n.path == NULL || (c->dead_letter && n.dead_letter == NULL)) {
        push_cfg_clear(&n);
        return -ENOMEM;
    }
    push_cfg_clear(&ps->cfg);
    ps->cfg = n;
    return 0;
}

static void push_sub_release_queue(struct push_sub *ps)
{
    if (ps->q == NULL)
        return;
    queue_unwait(ps->q, &ps->waiter);
    queue_put(ps->q);
    ps->q = NULL;
}

/* The state of outbox `outbox`, made on first use; NULL when memory is short. */
static struct push_sub *push_sub_get(struct pusher *p, const char *outbox, const char *topic)
{
    struct push_sub *ps;
    for (ps = p->subs; ps; ps = ps->next)
        if (strcmp(ps->outbox, outbox) == 0)
            return ps;
    if ((ps = calloc(1, sizeof(*ps))) == NULL)
        return NULL;
    ps->p = p;
    snprintf(ps->outbox, sizeof(ps->outbox), "%s", outbox);
    snprintf(ps->topic, sizeof(ps->topic), "%s", topic);
    ps->waiter.wake = push_wake;
    ps->next = p->subs;
    p->subs = ps;
    return ps;
}

/* Takes messages from ps's outbox up to its concurrency and starts them;
 * when the outbox has none, waits on it. */
static void push_fill(struct push_sub *ps, struct qbroker *b)
{
    if (ps->q == NULL && (ps->q = qbroker_find(b, ps->outbox)) == NULL)
        return;
    while (ps->in_flight < ps->cfg.concurrency) {
        struct push_delivery *d = NULL;
        int n = queue_receive(ps->q, 1, PUSH_HOLD_S, push_take, &d);
        if (n > 0 && d == NULL) {
            log_warn("topic %s: out of memory taking a push message; it is tried again later",
                     ps->topic);
            return;
        }
        if (n == -ENOENT && ps->in_flight == 0) {
            push_sub_release_queue(ps); /* deleted: look it up again (a reload makes it anew) */
            return;
        }
        if (n <= 0) {
            if (n == 0 && queue_wait(ps->q, &ps->waiter) == 1)
                continue; /* came meanwhile */
            return;
        }
        if (push_decode(d) < 0) {
            queue_change_visibility(ps->q, d->receipt, 1);
            push_delivery_free(d);
            return;
        }
        d->ps = ps;
        ev_init(&d->backoff, push_backoff_cb);
        d->backoff.data = d;
        d->next = ps->deliveries;
        ps->deliveries = d;
        ps->in_flight++;
        push_try(d);
    }
}

/* Follows the worker's configuration, then fills every subscription. */
static void push_pump(struct pusher *p)
{
    struct snapshot *snap = p->wc->snap;
    struct qbroker *b = snap ? sqs_snapshot_broker(snap) : NULL;
    if (p->stopped || b == NULL)
        return;
    for (struct push_sub *ps = p->subs; ps; ps = ps->next)
        ps->configured = 0;
    const struct cfg *cfg = snap->cfg;
    for (size_t i = 0; i < cfg->n_topics; i++)
        for (size_t j = 0; j < cfg->topics[i].n_subs; j++) {
            const struct cfg_subscription *s = &cfg->topics[i].subs[j];
            struct push_sub *ps = s->push ? push_sub_get(p, s->outbox, cfg->topics[i].name) : NULL;
            if (ps && push_cfg_copy(ps, s->push) == 0)
                ps->configured = 1;
        }
    for (struct push_sub **pp = &p->subs, *ps; (ps = *pp) != NULL;) {
        if (ps->configured) {
            push_fill(ps, b);
        } else if (ps->in_flight == 0) { /* left the configuration */
            *pp = ps->next;
            push_sub_release_queue(ps);
            push_cfg_clear(&ps->cfg);
            free(ps);
            continue;
        } /* else: left it with messages in flight: they finish, no new ones */
        pp = &ps->next;
    }
}

static void push_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    push_pump(w->data);
}

static void push_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    push_pump(w->data);
}

/* ---- lifetime ---- */

struct pusher *push_start(struct wctx *wc)
{
    struct pusher *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_error("topics: out of memory starting push delivery");
        return NULL;
    }
    p->wc = wc;
    p->loop = wc->worker.loop;
    if (getrandom(&p->rng, sizeof(p->rng), 0) != sizeof(p->rng))
        p->rng = (uint64_t)time(NULL);
    pool_init(&p->pool, p->loop);
    ev_async_init(&p->async, push_async_cb);
    p->async.data = p;
    ev_async_start(p->loop, &p->async);
    ev_timer_init(&p->tick, push_tick_cb, 0., PUSH_TICK_S);
    p->tick.data = p;
    ev_timer_start(p->loop, &p->tick);
    ev_unref(p->loop); /* neither keeps the loop alive */
    ev_unref(p->loop);
    return p;
}

void push_stop(struct pusher *p)
{
    if (p == NULL || p->stopped)
        return;
    p->stopped = 1;
    for (struct push_sub *ps = p->subs; ps; ps = ps->next) {
        while (ps->deliveries) {
            struct push_delivery *d = ps->deliveries;
            if (d->sr)
                subreq_cancel(d->sr);
            if (d->snap)
                snapshot_unref(d->snap);
            d->snap = NULL;
            ps->deliveries = d->next;
            ps->in_flight--;
            ev_timer_stop(p->loop, &d->backoff);
            push_delivery_free(d);
        }
        push_sub_release_queue(ps);
    }
    ev_ref(p->loop);
    ev_ref(p->loop);
    ev_async_stop(p->loop, &p->async);
    ev_timer_stop(p->loop, &p->tick);
    pool_destroy(&p->pool);
}

void push_free(struct pusher *p)
{
    if (p == NULL)
        return;
    while (p->subs) {
        struct push_sub *ps = p->subs;
        p->subs = ps->next;
        push_sub_release_queue(ps);
        push_cfg_clear(&ps->cfg);
        free(ps);
    }
    free(p);
}

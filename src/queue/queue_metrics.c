/* queue_metrics: what the queues expose on /metrics.
 *
 *   weir_queue_sent_total{queue}           messages stored by a send (SendMessage[Batch],
 *                                          the `queue` route target, a topic's fan-out);
 *                                          a FIFO duplicate is not counted
 *   weir_queue_received_total{queue}       messages handed out by a receive
 *   weir_queue_deleted_total{queue}        messages deleted by a consumer (DeleteMessage)
 *   weir_queue_dead_lettered_total{queue}  messages moved to the queue's dead-letter queue
 *   weir_queue_send_seconds{queue}         histogram: from the send request to its record
 *                                          being as durable as the queue asks (the answer)
 *   weir_queue_messages{queue,state}       gauge read at scrape: visible, in_flight, delayed
 *
 * The counters are registry series held by each queue (queue_metrics_init
 * when the queue is made), written from the calling thread's slot; the
 * gauge is a collector that walks the broker's queues at each scrape, so it
 * is exact at that moment and costs nothing between scrapes. */
#include "queue/queue_metrics.h"

#include <errno.h>
#include <time.h>

#include "core/metrics.h"
#include "queue/queue.h"
#include "queue/qbackend.h"

static const struct metric_family qm_family_sent = {
    .name = "weir_queue_sent_total",
    .help = "Messages stored in a queue.",
    .type = METRIC_COUNTER,
    .labels = {"queue"},
};

static const struct metric_family qm_family_received = {
    .name = "weir_queue_received_total",
    .help = "Messages handed out by receives.",
    .type = METRIC_COUNTER,
    .labels = {"queue"},
};

static const struct metric_family qm_family_deleted = {
    .name = "weir_queue_deleted_total",
    .help = "Messages deleted by consumers.",
    .type = METRIC_COUNTER,
    .labels = {"queue"},
};

static const struct metric_family qm_family_dead = {
    .name = "weir_queue_dead_lettered_total",
    .help = "Messages moved to the queue's dead-letter queue.",
    .type = METRIC_COUNTER,
    .labels = {"queue"},
};

static const struct metric_family qm_family_send_seconds = {
    .name = "weir_queue_send_seconds",
    .help = "Time from a send request until its message is durable as the queue asks.",
    .type = METRIC_HISTOGRAM,
    .labels = {"queue"},
};

static const struct metric_family qm_family_messages = {
    .name = "weir_queue_messages",
    .help = "Messages in a queue by state: visible, in_flight, delayed.",
    .type = METRIC_GAUGE,
    .labels = {"queue", "state"},
};

void queue_metrics_init(struct queue_metrics *m, const char *name)
{
    const char *v[] = {name};
    m->sent = metrics_series_get(&qm_family_sent, v);
    m->received = metrics_series_get(&qm_family_received, v);
    m->deleted = metrics_series_get(&qm_family_deleted, v);
    m->dead_lettered = metrics_series_get(&qm_family_dead, v);
    m->send_seconds = metrics_series_get(&qm_family_send_seconds, v);
}

void queue_metrics_fini(struct queue_metrics *m)
{
    metrics_series_put(m->sent);
    metrics_series_put(m->received);
    metrics_series_put(m->deleted);
    metrics_series_put(m->dead_lettered);
    metrics_series_put(m->send_seconds);
    *m = (struct queue_metrics){0};
}

void queue_metrics_sent(struct queue *q, uint64_t n)
{
    metrics_add(q->metrics.sent, 0, n);
}

void queue_metrics_received(struct queue *q, uint64_t n)
{
    metrics_add(q->metrics.received, 0, n);
}

void queue_metrics_deleted(struct queue *q, uint64_t n)
{
    metrics_add(q->metrics.deleted, 0, n);
}

void queue_metrics_dead_lettered(struct queue *q, uint64_t n)
{
    metrics_add(q->metrics.dead_lettered, 0, n);
}

uint64_t queue_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void queue_metrics_send_done(struct queue *q, uint64_t start_ns)
{
    uint64_t now = queue_metrics_now_ns();
    metrics_observe_ns(q->metrics.send_seconds, now > start_ns ? now - start_ns : 0);
}

/* ---- the gauge, at scrape ---- */

static void qm_collect_one(void *arg, struct queue *q)
{
    struct metrics_out *out = arg;
    size_t n[3];
    static const char *const states[3] = {"visible", "in_flight", "delayed"};
    if (qbackend_of(q)->shared)
        return; /* its messages are in the store, not here: no series rather than zeros */
    queue_counts(q, &n[0], &n[1], &n[2]);
    for (int i = 0; i < 3; i++) {
        const char *v[] = {q->name, states[i]};
        metrics_write_sample(out, &qm_family_messages, v, (double)n[i]);
    }
}

static void qm_collect(struct metrics_out *out, void *arg)
{
    metrics_write_family(out, &qm_family_messages);
    qbroker_each(arg, NULL, qm_collect_one, out);
}

int queue_metrics_attach(struct qbroker *b)
{
    return metrics_collector_add(qm_collect, b);
}

void queue_metrics_detach(struct qbroker *b)
{
    metrics_collector_remove(qm_collect, b);
}

long queue_visible_count(struct qbroker *b, const char *name)
{
    struct queue *q = b ? qbroker_find(b, name) : NULL;
    size_t visible, inflight, delayed;
    if (q == NULL)
        return -ENOENT;
    queue_counts(q, &visible, &inflight, &delayed);
    queue_put(q);
    return (long)visible;
}

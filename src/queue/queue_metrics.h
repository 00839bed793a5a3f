/* queue_metrics: the queues' families in the metrics registry
 * (queue_metrics.c for which and how). queue.c counts through the
 * queue_metrics_* calls; the SQS listener and the publish paths observe
 * the time a send took until durable. */
#ifndef WEIR_QUEUE_QUEUE_METRICS_H
#define WEIR_QUEUE_QUEUE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct queue;
struct qbroker;
struct metric_series;

/* One queue's series, labelled {queue=NAME}. */
struct queue_metrics {
    struct metric_series *sent, *received, *deleted, *dead_lettered, *send_seconds;
};

/* Gets the series of queue `name` into m (a queue made again under the
 * same name continues the same counts). Never fails: a series that cannot
 * be made stays NULL and counts nothing. */
void queue_metrics_init(struct queue_metrics *m, const char *name);
/* Drops m's series. */
void queue_metrics_fini(struct queue_metrics *m);

/* Counts n messages of queue q: sent (stored), handed out, deleted by a
 * consumer, moved to the dead-letter queue. */
void queue_metrics_sent(struct queue *q, uint64_t n);
void queue_metrics_received(struct queue *q, uint64_t n);
void queue_metrics_deleted(struct queue *q, uint64_t n);
void queue_metrics_dead_lettered(struct queue *q, uint64_t n);
/* A send to q that began at start_ns (queue_metrics_now_ns) is durable now. */
void queue_metrics_send_done(struct queue *q, uint64_t start_ns);
/* Monotonic clock, nanoseconds. */
uint64_t queue_metrics_now_ns(void);

/* Main thread: registers / removes the scrape-time collector of
 * weir_queue_messages{queue,state} for broker b. Returns 0 or -ENOMEM. */
int queue_metrics_attach(struct qbroker *b);
void queue_metrics_detach(struct qbroker *b);

/* The visible messages of the queue called name (for the autoscaler):
 * >= 0, or -ENOENT when b has no such queue (or b is NULL). Any thread. */
long queue_visible_count(struct qbroker *b, const char *name);

#endif

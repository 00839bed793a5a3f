/* queue: the durable queues of one weir instance and their messages
 * (queue.c for the design). The broker holds every queue and the log; it is
 * shared by all worker threads. Each queue has its own lock; callbacks that
 * see messages run with it held and must not call back into the queue. */
#ifndef WEIR_QUEUE_QUEUE_H
#define WEIR_QUEUE_QUEUE_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/qlog.h"
#include "queue/queue_metrics.h"
#include "queue/queue_types.h"

struct cfg;

#define QUEUE_ID_LEN 36                 /* a MessageId: a UUID */
#define QUEUE_MAX_RECEIPT 64


/* Woken (with the queue's lock held) when messages may be there to take. */
struct queue_waiter {
    struct queue_waiter *prev, *next;
    void (*wake)(struct queue_waiter *w);
    int listed;
};

struct qmsg;

struct queue {
    pthread_mutex_t mu;
    _Atomic int refs;
    struct qbroker *broker;
    uint64_t id;                        /* this incarnation: a queue made again gets a new one */
    char name[QUEUE_MAX_NAME + 1];
    struct queue_attrs attrs;
    uint64_t created_ms, modified_ms;
    int deleted;                        /* DeleteQueue ran: answers QueueDoesNotExist */
    int from_config;                    /* declared in `queues:` */
    /* messages */
    struct qmsg *ready_head, *ready_tail; /* visible, oldest first */
    struct qmsg **heap;                 /* delayed and in flight, by visible time */
    size_t n_heap, cap_heap;
    struct qmsg **table;                /* by seq */
    size_t n_msgs, cap_table;
    size_t n_delayed;                   /* in the heap and never received */
    struct queue_waiter waiters;        /* list head */
    struct qfifo *fifo;                 /* FIFO queues: groups, deduplication ids */
    json_t *tags;                       /* TagQueue: an object of strings (under mu) */
    uint64_t batch_serial;              /* numbers the receives */
    struct queue_metrics metrics;       /* its counters (queue_metrics.c) */
};

struct qbroker {
    pthread_mutex_t mu;                 /* the queue list, ids, the metadata file */
    struct qlog *log;
    char *dir;
    struct queue **queues;
    size_t n_queues, cap_queues;
    uint64_t next_queue_id;
    _Atomic uint64_t next_seq;
    uint64_t id_salt;                   /* makes MessageIds unique across instances */
    pthread_t thread;                   /* interval fsync, sweeps */
    pthread_mutex_t thread_mu;
    pthread_cond_t thread_cond;
    int thread_stop, thread_running;
};

/* A message as a receive hands it out (borrowed: valid in the callback). */
struct queue_received {
    const char *id;
    const char *receipt;
    const char *body;
    size_t body_len;
    const char *attrs;                  /* MessageAttributes JSON or NULL */
    size_t attrs_len;
    const char *md5_body, *md5_attrs;   /* md5_attrs "" when no attributes */
    uint64_t sent_ms, first_receive_ms;
    uint32_t receive_count;
    uint64_t seq;                       /* also the FIFO SequenceNumber */
    const char *group, *dedup;          /* FIFO ids, or NULL */
};

typedef void (*queue_received_fn)(void *arg, const struct queue_received *m);

/* A message to send. */
struct queue_send {
    const char *body;
    size_t body_len;
    const char *attrs;                  /* canonical MessageAttributes JSON, or NULL */
    size_t attrs_len;
    const char *md5_attrs;              /* its MD5 as SQS computes it ("" for none) */
    int64_t delay_s;                    /* -1: the queue's DelaySeconds */
    const char *group;                  /* FIFO MessageGroupId, or NULL */
    const char *dedup;                  /* FIFO deduplication id (explicit or the body's
                                           SHA-256), or NULL */
};

/* Opens data_dir's log and queue list, replays them, starts the
 * background thread. Returns 0 with *out, or a negative errno (err). */
int qbroker_open(const char *data_dir, struct qbroker **out, char *err, size_t err_size);
/* Creates or updates the queues cfg declares (their settings win). Returns
 * 0 or a negative errno (err). */
int qbroker_configure(struct qbroker *b, const struct cfg *cfg, char *err, size_t err_size);
/* Stops the thread, syncs, frees every queue and message. */
void qbroker_close(struct qbroker *b);

/* The queue named name with a reference (queue_put()), or NULL. */
struct queue *qbroker_find(struct qbroker *b, const char *name);
/* Creates queue name with attrs (durably). Returns 0 with *out referenced,
 * -EEXIST with *out referenced when it exists with other attributes (0 when
 * they are the same), or a negative errno. */
int qbroker_create(struct qbroker *b, const char *name, const struct queue_attrs *attrs,
                   struct queue **out);
/* Deletes q (durably); its messages are gone. Returns 0 or negative. */
int qbroker_delete(struct qbroker *b, struct queue *q);
/* Persists q's attributes after they changed. */
int qbroker_save(struct qbroker *b);
/* Calls fn for every queue whose name starts with prefix, by name. */
void qbroker_each(struct qbroker *b, const char *prefix, void (*fn)(void *arg, struct queue *q),
                  void *arg);

void queue_get(struct queue *q);
void queue_put(struct queue *q);

/* Appends and enqueues a message. Returns 0 with id (QUEUE_ID_LEN + 1
 * bytes) and *seq filled and *pos what queue_durable() waits for, or a
 * negative errno (-ENOENT deleted queue, -ENOSPC disk full, -EIO log
 * failed). A FIFO message whose deduplication id was sent in the last five
 * minutes is not stored: the first one's id and seq are returned, *pos 0. */
int queue_send(struct queue *q, const struct queue_send *m, char *id, uint64_t *seq,
               uint64_t *pos);
/* Whether a send or delete at pos may be acknowledged now: syncs under
 * fsync always (0 or negative errno). */
int queue_durable(struct queue *q, uint64_t pos);
/* Takes up to max visible messages, each invisible for visibility_s
 * seconds, calling fn for each. A message received maxReceiveCount times
 * already moves to the dead-letter queue instead (after the lock is
 * dropped). Returns how many were handed out, or -ENOENT. */
int queue_receive(struct queue *q, unsigned max, uint32_t visibility_s, queue_received_fn fn,
                  void *arg);
/* Deletes the message of receipt. Returns 0 (also when it is already
 * gone), -EINVAL for a receipt of no message of q's kind, or negative;
 * *pos set when a record was written (0 otherwise). */
int queue_delete_msg(struct queue *q, const char *receipt, uint64_t *pos);
/* Changes an in-flight message's visibility. Returns 0, -EINVAL (bad
 * receipt), -ESRCH (not in flight with that receipt), or negative. */
int queue_change_visibility(struct queue *q, const char *receipt, uint32_t timeout_s);
/* StartMessageMoveTask: moves every visible message of src to the queue
 * named dest, or (dest NULL) each to the queue it was dead-lettered from;
 * what cannot move stays. Returns 0 with *moved (messages taken), or
 * -ENOENT. */
int queue_redrive(struct queue *src, const char *dest, size_t *moved);
/* Deletes every message (durably). */
int queue_purge(struct queue *q, uint64_t *pos);
/* Counts: visible, in flight, delayed. */
void queue_counts(struct queue *q, size_t *visible, size_t *inflight, size_t *delayed);
/* Registers w to be woken when a message arrives; returns 1 when messages
 * are there already (w not registered), 0 when registered, -ENOENT. */
int queue_wait(struct queue *q, struct queue_waiter *w);
/* Removes w if it is registered. */
void queue_unwait(struct queue *q, struct queue_waiter *w);
/* Wakes up to n registered waiters (messages were stored elsewhere than
 * in q's memory: its Redis store). */
void queue_notify(struct queue *q, size_t n);

/* Wall clock in milliseconds. */
uint64_t queue_now_ms(void);

#endif

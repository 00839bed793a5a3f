/* queue_fifo: what a FIFO queue keeps beside its messages: its message
 * groups (how many messages each has in flight, so a group with one in
 * flight is skipped by receives) and its deduplication ids of the last
 * five minutes. Used by queue.c under the queue's lock; no locking here. */
#ifndef WEIR_QUEUE_QUEUE_FIFO_H
#define WEIR_QUEUE_QUEUE_FIFO_H

#include <stddef.h>
#include <stdint.h>

#define QFIFO_DEDUP_WINDOW_MS (5 * 60 * 1000)
#define QFIFO_ID_LEN 36

struct qgroup {
    char *name;
    unsigned refs;                    /* messages of the queue in this group */
    unsigned inflight;                /* of them received and not visible again */
    uint64_t batch;                   /* the receive that last took from it */
    struct qgroup *next;              /* hash chain */
};

struct qdedup;

struct qfifo {
    struct qgroup **groups;           /* QFIFO_BUCKETS chains */
    struct qdedup **dedup;            /* QFIFO_BUCKETS chains */
    struct qdedup *oldest, *newest;   /* by time, for expiry */
};

/* A new, empty state, or NULL when memory is short. */
struct qfifo *qfifo_new(void);
void qfifo_free(struct qfifo *f);

/* The group `name` with one more reference (made when new), or NULL. */
struct qgroup *qfifo_group_get(struct qfifo *f, const char *name);
/* Drops a reference; the last one frees the group. */
void qfifo_group_put(struct qfifo *f, struct qgroup *g);

/* Whether `key` was sent within the window before now: 1 with the first
 * message's id (QFIFO_ID_LEN + 1 bytes) and seq, else 0. */
int qfifo_dedup_find(struct qfifo *f, const char *key, uint64_t now, char *id, uint64_t *seq);
/* Remembers key for a message sent at at_ms. Returns 0 or -ENOMEM. */
int qfifo_dedup_add(struct qfifo *f, const char *key, const char *id, uint64_t seq,
                    uint64_t at_ms);

#endif

/* topic: publishing to a topic of the `topics:` section (topic.c for the
 * design): the message goes to every subscribed queue whose filter it
 * passes and to the outbox queue of every push subscription (push.c
 * delivers from there). */
#ifndef WEIR_QUEUE_TOPIC_H
#define WEIR_QUEUE_TOPIC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"
#include "queue/topic_cfg.h"

struct cfg;

/* A message to publish (borrowed for the call). */
struct topic_message {
    const char *body;
    size_t body_len;
    json_t *attrs;          /* SQS MessageAttributes object, or NULL */
    const char *attrs_text; /* its canonical JSON, or NULL */
    const char *md5_attrs;  /* its MD5 as SQS computes it ("" for none) */
    size_t attr_bytes;      /* what the attributes count against a size limit */
};

struct topic_published {
    char id[QUEUE_ID_LEN + 1]; /* the publish's MessageId (a new UUID) */
    uint64_t sync_pos;         /* sync the log to here before answering (0: nothing) */
    size_t n_queued;           /* subscriptions the message was stored for */
};

/* Whether a message with SQS MessageAttributes `attrs` (NULL: none) passes
 * filter f: every attribute f names matches one of its conditions. */
int topic_filter_match(const struct topic_filter *f, const json_t *attrs);

/* Stores m for every subscription of t it passes. Returns 0 with *out, or
 * a negative errno: -ENOENT (a subscribed queue or outbox is missing),
 * -EMSGSIZE (larger than a subscribed queue takes: nothing stored),
 * -ENOSPC / -EIO (the log; the queues before the failing one may hold the
 * message: a publish is at-least-once). */
int topic_publish(struct qbroker *b, const struct cfg_topic *t, const struct topic_message *m,
                  struct topic_published *out);

/* Makes the outbox queue of every push subscription of cfg (kept across
 * restarts; an outbox no longer configured stays until DeleteQueue).
 * Returns 0 or a negative errno (err). */
int topic_configure(struct qbroker *b, const struct cfg *cfg, char *err, size_t err_size);

#endif

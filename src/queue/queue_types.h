/* queue_types: a queue's settings, shared by the configuration
 * (queue_cfg.h) and the queues themselves (queue.h) so the configuration
 * does not pull in the broker. */
#ifndef WEIR_QUEUE_QUEUE_TYPES_H
#define WEIR_QUEUE_QUEUE_TYPES_H

#include <stdint.h>

#define QUEUE_MAX_NAME 80
#define QUEUE_MAX_STORE 63              /* a `stores:` name (CFG_MAX_NAME) */

#define QUEUE_FSYNC_LIST(X) \
    X(QUEUE_FSYNC_ALWAYS, "always") \
    X(QUEUE_FSYNC_INTERVAL, "interval") \
    X(QUEUE_FSYNC_NEVER, "never")
#define QUEUE_FSYNC_MEMBER(e, s) e,
enum queue_fsync { QUEUE_FSYNC_LIST(QUEUE_FSYNC_MEMBER) QUEUE_FSYNC_COUNT };
#undef QUEUE_FSYNC_MEMBER

extern const char *const queue_fsync_names[QUEUE_FSYNC_COUNT];

/* A queue's settings (SQS attributes and weir's own). */
struct queue_attrs {
    uint32_t visibility_timeout_s;      /* VisibilityTimeout 0..43200, default 30 */
    uint32_t delay_s;                   /* DelaySeconds 0..900 */
    uint32_t retention_s;               /* MessageRetentionPeriod 60..1209600, default 4 days */
    uint32_t max_message_bytes;         /* MaximumMessageSize 1024..1048576, default 256 KiB */
    uint32_t receive_wait_s;            /* ReceiveMessageWaitTimeSeconds 0..20 */
    enum queue_fsync fsync;             /* durability.fsync, default always */
    uint32_t fsync_every_ms;            /* durability.every (interval), default 10 */
    uint32_t fifo;                      /* FifoQueue (name ends .fifo) */
    uint32_t content_dedup;             /* ContentBasedDeduplication */
    uint32_t max_receives;              /* RedrivePolicy maxReceiveCount, 0: no dead-letter queue */
    char dead_letter[QUEUE_MAX_NAME + 1]; /* RedrivePolicy deadLetterTargetArn's queue, or "" */
    char store[QUEUE_MAX_STORE + 1];    /* backend.store: kept in this Redis store, or "" (local) */
};

extern const struct queue_attrs queue_attrs_default;

#endif

/* qbackend: where a queue's messages live, as one operations table per
 * kind of storage, so the SQS actions (sqs_actions.c) never care:
 *
 *   row      file               messages in
 *   local    qbackend_local.c   this instance's memory and log (queue.c)
 *   redis    qredis.c           a Redis / Redis Cluster store (`backend: {store: NAME}`)
 *
 * Every operation is asynchronous in form: the caller fills a struct qcall,
 * runs the operation, and is called back (call->done) exactly once, maybe
 * before the operation returns (the local row always is), unless it cancels
 * the call first with qcall_cancel(). Inputs are borrowed only until the
 * operation returns: a row copies what it keeps. The caller keeps the call,
 * its queue reference and on_msg's argument alive until done or cancel.
 * Operations run on a worker thread (the one owning call->loop). */
#ifndef WEIR_QUEUE_QBACKEND_H
#define WEIR_QUEUE_QBACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

struct cfg;
struct ev_loop;
struct store;
struct store_cmd;

#define QCALL_MAX 10 /* entries of one batch (SQS's limit) */

/* One entry of a batch call: the result of send / delete / change visibility. */
struct qcall_entry {
    int rc;                    /* 0 or a negative errno (see each operation) */
    char id[QUEUE_ID_LEN + 1]; /* send: the MessageId */
    uint64_t seq;              /* send: the FIFO SequenceNumber */
    uint64_t pos;              /* local: the log position the answer waits for */
    struct qcall *call;        /* the row's own: back to the call */
};

struct qcall;
typedef void (*qcall_done_fn)(struct qcall *call);

struct qcall {
    /* set by the caller */
    struct queue *q;       /* referenced by the caller until done */
    struct ev_loop *loop;  /* the worker's loop (the store client's) */
    const struct cfg *cfg; /* the snapshot's configuration (the store's settings) */
    qcall_done_fn done;
    void *arg;                      /* the caller's */
    size_t n;                       /* entries of a batch */
    const struct queue_send *sends; /* send: n messages */
    const char *const *receipts;    /* delete, change_visibility: n receipts */
    const uint32_t *timeouts;       /* change_visibility: n timeouts (s) */
    unsigned max;                   /* receive: at most this many (1..10) */
    uint32_t vis_s;                 /* receive: visibility timeout (s) */
    queue_received_fn on_msg;       /* receive: per message, before done */
    void *msg_arg;
    /* set by the operation, read in done */
    int rc;           /* receive: messages handed out; else 0; or -errno */
    uint64_t pos;     /* local: the highest log position to wait for */
    size_t counts[3]; /* counts: visible, in flight, delayed */
    struct qcall_entry e[QCALL_MAX];
    /* the row's own */
    size_t pending; /* commands not yet answered */
    struct store *store;
    struct store_cmd *cmds[QCALL_MAX];
    int busy; /* an operation runs: done not yet called */
};

/* An operations table. Each runs call (fields above) and calls call->done.
 * Errors: -ENOENT the queue is gone, -EINVAL a receipt of no message of the
 * queue, -ESRCH (change visibility) the message is not in flight,
 * -EAGAIN (redis) the store is unavailable or did not answer in time:
 * nothing is known to be stored, -EPROTO (redis) an unexpected reply. */
struct qbackend_ops {
    const char *name;
    void (*send)(struct qcall *call);              /* n sends -> e[i].rc, id, seq, pos */
    void (*receive)(struct qcall *call);           /* -> rc (count), on_msg per message */
    void (*delete_msgs)(struct qcall *call);       /* n receipts -> e[i].rc, pos */
    void (*change_visibility)(struct qcall *call); /* n receipts, timeouts -> e[i].rc */
    void (*purge)(struct qcall *call);             /* -> rc, pos */
    void (*counts)(struct qcall *call);            /* -> counts */
    /* Whether a long poll on this queue is woken only by this instance's
     * sends (0: local) or must also be retried every sweep (1: redis). */
    int shared;
};

extern const struct qbackend_ops qbackend_local;
extern const struct qbackend_ops qbackend_redis;

/* The table of q: redis when q's attributes name a store, else local. */
const struct qbackend_ops *qbackend_of(const struct queue *q);

/* Ends a running call without its done being called (commands still out
 * are cancelled). A call that is not running is left alone. */
void qcall_cancel(struct qcall *call);

/* Redis row (qredis.c): cancels call's commands (qcall_cancel's half). */
void qredis_cancel(struct qcall *call);

struct redisReply;
#define QREDIS_ID_MAX 48 /* a stream id "<ms>-<seq>" and its NUL, with room */

/* Redis row: the stream id of a receipt handle "R<ms>-<seq>" (digits
 * only) into id. Returns 0 or -EINVAL. */
int qredis_receipt_parse(const char *receipt, char id[QREDIS_ID_MAX]);

/* Redis row: walks the receive script's reply {{id, fields, count,
 * first_ms}...}, {{id, fields}...}: calls call->on_msg for each message of
 * the first list that is well formed (others are skipped) and, when
 * call->store is set, starts moving those of the second list to the
 * dead-letter queue. Returns the messages handed out, or -EPROTO when the
 * reply is not two lists. */
int qredis_receive_reply(struct qcall *call, const struct redisReply *r);

#endif

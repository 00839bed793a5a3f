/* sqs_internal: what the SQS listener's files share: the connection
 * (sqs.c), the actions (sqs_actions.c), the errors and attributes
 * (sqs_attrs.c). Not for use outside src/queue/. */
#ifndef WEIR_QUEUE_SQS_INTERNAL_H
#define WEIR_QUEUE_SQS_INTERNAL_H

#include <ev.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "http/http_parser.h"
#include "queue/qbackend.h"
#include "queue/qmd5.h"
#include "queue/queue.h"

struct wctx;
struct wlistener;
struct snapshot;
struct cfg_listener;

#define SQS_ACCOUNT "000000000000"
#define SQS_REGION "us-east-1"
#define SQS_MAX_BATCH 10
#define SQS_MAX_WAIT_S 20
#define SQS_DEFAULT_MAX_BODY (8u << 20)

/* The errors SQS answers with: the shape name (`__type`, what the SDKs
 * raise), the query code (x-amzn-query-error, what ClientError's Code
 * says) and the HTTP status. */
#define SQS_ERROR_LIST(X) \
    X(SQS_ERR_NO_QUEUE, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400) \
    X(SQS_ERR_QUEUE_EXISTS, "QueueNameExists", "QueueAlreadyExists", 400) \
    X(SQS_ERR_ATTR_NAME, "InvalidAttributeName", "InvalidAttributeName", 400) \
    X(SQS_ERR_ATTR_VALUE, "InvalidAttributeValue", "InvalidAttributeValue", 400) \
    X(SQS_ERR_PARAM, "InvalidParameterValueException", "InvalidParameterValue", 400) \
    X(SQS_ERR_MISSING, "MissingRequiredParameterException", "MissingParameter", 400) \
    X(SQS_ERR_RECEIPT, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400) \
    X(SQS_ERR_NOT_INFLIGHT, "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", \
      400) \
    X(SQS_ERR_EMPTY_BATCH, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400) \
    X(SQS_ERR_BATCH_TOO_MANY, "TooManyEntriesInBatchRequest", \
      "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400) \
    X(SQS_ERR_BATCH_IDS, "BatchEntryIdsNotDistinct", \
      "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400) \
    X(SQS_ERR_BATCH_ID, "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400) \
    X(SQS_ERR_BATCH_LONG, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", \
      400) \
    X(SQS_ERR_CONTENTS, "InvalidMessageContents", "InvalidMessageContents", 400) \
    X(SQS_ERR_UNSUPPORTED, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", \
      400) \
    X(SQS_ERR_ACTION, "UnknownOperationException", "InvalidAction", 400) \
    X(SQS_ERR_RESOURCE, "ResourceNotFoundException", "ResourceNotFoundException", 400) \
    X(SQS_ERR_SERIAL, "SerializationException", "SerializationException", 400) \
    X(SQS_ERR_TOPIC, "NotFoundException", "NotFound", 404) \
    X(SQS_ERR_SIGNATURE, "SignatureDoesNotMatch", "SignatureDoesNotMatch", 403) \
    X(SQS_ERR_TOKEN, "InvalidClientTokenId", "InvalidClientTokenId", 403) \
    X(SQS_ERR_INCOMPLETE_SIG, "IncompleteSignature", "IncompleteSignature", 400) \
    X(SQS_ERR_NO_AUTH, "MissingAuthenticationToken", "MissingAuthenticationToken", 403) \
    X(SQS_ERR_UNAVAILABLE, "ServiceUnavailable", "ServiceUnavailable", 503) \
    X(SQS_ERR_INTERNAL, "InternalFailure", "InternalFailure", 500)
#define SQS_ERR_MEMBER(e, type, code, status) e,
enum sqs_error { SQS_ERROR_LIST(SQS_ERR_MEMBER) SQS_ERR_COUNT };
#undef SQS_ERR_MEMBER

struct sqs_error_info {
    const char *type, *code;
    int status;
};
extern const struct sqs_error_info sqs_errors[SQS_ERR_COUNT];

enum sqs_state {
    SQS_READING,     /* reading a request (or idle between requests) */
    SQS_WAITING,     /* a ReceiveMessage long poll is parked on a queue */
    SQS_SYNCING,     /* the reply waits for the log's fdatasync */
    SQS_WRITING,     /* the reply is being written */
    SQS_CALLING,     /* the reply waits for the queue's backend (a Redis store) */
};

struct sqs_worker;
struct sqs_recv;

struct sqs_conn {
    struct sqs_worker *sw;
    struct wlistener *wl;
    struct snapshot *snap;            /* one reference: keeps the broker alive */
    const struct cfg_listener *lst;
    int fd;
    ev_io io;
    ev_timer timer;                   /* idle / header timeout, long-poll deadline */
    enum sqs_state state;
    char *in;                         /* received bytes */
    size_t in_len, in_cap;
    size_t req_len;                   /* bytes of the request being answered */
    char *out;                        /* the reply being written */
    size_t out_len, out_off;
    struct http_msg msg;
    char host[256];                   /* Host of the request: queue URLs use it */
    int keep_alive;
    int closing;                      /* close once the reply is written */
    /* the reply waiting for a sync */
    json_t *pending;                  /* the reply body, or NULL for an error */
    uint64_t sync_pos;
    struct sqs_conn *sync_next;
    uint64_t start_ns;                /* the request was dispatched (queue_metrics_now_ns) */
    struct queue *sent_q;             /* a send's queue (one reference): its answer is timed */
    /* a parked long poll */
    struct queue *wait_q;             /* one reference */
    struct queue_waiter waiter;
    json_t *wait_req;                 /* the ReceiveMessage input */
    int woken;                        /* on sw->woken (under sw->mu) */
    struct sqs_conn *woken_next;
    /* the call to the queue's backend (qbackend.h) of the request */
    struct qcall call;                /* call.q referenced while it runs */
    json_t *call_req;                 /* the request's input, referenced */
    json_t *call_out;                 /* the reply being built (a batch's lists) */
    json_t *call_aux;                 /* per entry of the call: what its answer needs */
    struct sqs_recv *recv;            /* ReceiveMessage: the messages taken */
    double recv_wait;                 /* ReceiveMessage: WaitTimeSeconds */
    int recv_final;                   /* ReceiveMessage: answer even with no messages */
    int recv_tries;
    struct sqs_conn *prev, *next;     /* sw->conns */
};

struct sqs_worker {
    struct wctx *wc;
    struct ev_loop *loop;
    ev_async async;                   /* a waiter was woken from another thread */
    ev_prepare prepare;               /* before the loop sleeps: group fdatasync */
    pthread_mutex_t mu;               /* woken */
    struct sqs_conn *woken;
    struct sqs_conn *syncing;         /* replies waiting for the sync */
    struct sqs_conn *conns;
    uint64_t request_seq;
    struct pusher *push;              /* worker 0: topics' push delivery (push.c) */
};

/* The broker of the connection's snapshot (never NULL while it is served). */
struct qbroker *sqs_broker(const struct sqs_conn *c);

/* Replies: each request gets exactly one. sqs_reply takes `body` (may be
 * NULL for {}). sqs_reply_durable replies once everything appended to the
 * log up to pos is durable for q (or at once when q does not sync). */
void sqs_reply(struct sqs_conn *c, json_t *body);
void sqs_reply_error(struct sqs_conn *c, enum sqs_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sqs_reply_durable(struct sqs_conn *c, struct queue *q, uint64_t pos, json_t *body);
/* Replies once the log is synced up to pos (at once when pos is 0). */
void sqs_reply_synced(struct sqs_conn *c, uint64_t pos, json_t *body);
/* sqs_reply_durable for a send to q: its answer is observed in
 * weir_queue_send_seconds. */
void sqs_reply_sent(struct sqs_conn *c, struct queue *q, uint64_t pos, json_t *body);
/* The reply to an operation on a queue that failed with a negative errno. */
void sqs_reply_errno(struct sqs_conn *c, int rc);

/* Parks c on q until a message arrives or deadline; `req` is referenced. */
void sqs_park(struct sqs_conn *c, struct queue *q, json_t *req, double wait_s);

/* Ends a parked long poll (no-op when not parked): unregistered from the
 * queue and the worker's woken list, the queue's reference and the request
 * dropped; the state is left to the caller. */
void sqs_unpark(struct sqs_conn *c);

/* sqs_actions.c: runs action `name` (after "AmazonSQS.") on input `in`. */
void sqs_dispatch(struct sqs_conn *c, const char *name, size_t name_len, json_t *in);
/* sqs_actions.c: a parked ReceiveMessage tries again; `final`: the
 * deadline passed, answer even with no messages. With a backend call
 * running (SQS_CALLING) only notes `final` for its answer. */
void sqs_receive_retry(struct sqs_conn *c, int final);
/* sqs_actions.c: cancels c's backend call if one runs and lets go of what
 * it holds (the connection is closing). */
void sqs_call_end(struct sqs_conn *c);

/* sqs_auth.c: with `sqs_auth:` keys, verifies the request's Signature V4
 * (c->msg, the body). Returns 0 to go on, or -1 with the error answered. */
int sqs_auth_check(struct sqs_conn *c, const char *body, size_t body_len);

/* topic_sqs.c: the Publish action (weir's own: a topic of `topics:`). */
void sqs_act_publish(struct sqs_conn *c, json_t *in);

/* sqs_attrs.c: the queue name a QueueUrl names (its last path segment) into
 * name; returns 0 or -EINVAL. */
int sqs_url_name(const char *url, char *name, size_t size);
/* sqs_attrs.c: builds the queue's URL / ARN. */
void sqs_queue_url(const struct sqs_conn *c, const char *name, char *out, size_t size);
void sqs_queue_arn(const char *name, char *out, size_t size);
/* sqs_attrs.c: applies SQS queue attributes (a JSON object of strings) to
 * *a. Returns -1 with the error answered, 0 otherwise. */
int sqs_attrs_apply(struct sqs_conn *c, json_t *attrs, struct queue_attrs *a, int creating);
/* sqs_attrs.c: the queue's attributes named by `names` (NULL: none) into a
 * new JSON object, or NULL with the error answered. */
json_t *sqs_attrs_get(struct sqs_conn *c, struct queue *q, json_t *names,
                      const size_t counts[3]);
/* sqs_attrs.c: checks MessageAttributes (NULL is none), their size into
 * *bytes and their MD5. Returns -1 with the error answered (or, with
 * `quiet`, the message in err), 0 otherwise. */
int sqs_msg_attrs_check(json_t *attrs, size_t *bytes, char md5[QMD5_HEX], char *err,
                        size_t err_size);
/* sqs_attrs.c: whether body holds only the characters SQS allows. */
int sqs_body_ok(const char *body, size_t len);

#endif

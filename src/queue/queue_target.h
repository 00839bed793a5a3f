/* queue_target: the `queue: NAME` route target (http/target.h). The request
 * (method, target, end-to-end header fields, body) becomes a message of the
 * durable queue NAME; the client gets 202 with the message id once the
 * message is as durable as the queue's fsync setting asks. */
#ifndef WEIR_QUEUE_QUEUE_TARGET_H
#define WEIR_QUEUE_QUEUE_TARGET_H

#include "http/target.h"

struct txn;

extern const struct target_type target_queue;

/* Answers the request with `status` and the JSON body {"key": "value"}
 * (from the transaction's arena): the answers of the queue and publish
 * targets. */
void queue_target_answer(struct txn *t, int status, const char *key, const char *value);

#endif

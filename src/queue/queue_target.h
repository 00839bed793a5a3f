/* queue_target: the `queue: NAME` route target (http/target.h). The request
 * (method, target, end-to-end header fields, body) becomes a message of the
 * durable queue NAME; the client gets 202 with the message id once the
 * message is as durable as the queue's fsync setting asks. */
#ifndef WEIR_QUEUE_QUEUE_TARGET_H
#define WEIR_QUEUE_QUEUE_TARGET_H

#include "http/target.h"

extern const struct target_type target_queue;

#endif

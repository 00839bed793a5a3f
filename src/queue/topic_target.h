/* topic_target: the `publish: TOPIC` route target (http/target.h). The
 * request body becomes a message published to TOPIC of `topics:` (its
 * X-Message-Attribute-NAME fields its attributes); the client gets 202
 * with the MessageId once it is durable in every queue it went to. */
#ifndef WEIR_QUEUE_TOPIC_TARGET_H
#define WEIR_QUEUE_TOPIC_TARGET_H

#include "http/target.h"

extern const struct target_type target_publish;

#endif

/* topic_sqs: `X-Amz-Target: AmazonSQS.Publish` on the SQS listener, weir's
 * own action in the shape of SNS's Publish (SNS itself speaks the query
 * protocol, which weir does not):
 *
 *   in:  {"TopicArn": "arn:aws:sns:REGION:ACCOUNT:NAME"} or {"TopicName": NAME},
 *        "Message": BODY, "MessageAttributes": {...as SendMessage's...}
 *   out: {"MessageId": UUID}, once the message is durable in every queue and
 *        push outbox it went to
 *
 * Errors: an unknown topic is NotFoundException (404, as SNS answers);
 * a body or attributes SQS would refuse are InvalidParameterValue /
 * InvalidMessageContents; too large for a subscribed queue is
 * InvalidParameterValue; the log's failures as for SendMessage. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/sqs_internal.h"
#include "queue/topic.h"
#include "server/config.h"
#include "server/snapshot.h"

/* The topic the input names, or NULL with the error answered. */
static const struct cfg_topic *topic_sqs_topic(struct sqs_conn *c, json_t *in)
{
    const char *arn = json_string_value(json_object_get(in, "TopicArn"));
    const char *name = json_string_value(json_object_get(in, "TopicName"));
    if (arn) {
        const char *colon = strrchr(arn, ':');
        name = colon ? colon + 1 : arn;
    }
    if (name == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter TopicArn.");
        return NULL;
    }
    const struct cfg_topic *t = topic_cfg_find(c->snap->cfg, name);
    if (t == NULL)
        sqs_reply_error(c, SQS_ERR_TOPIC, "Topic does not exist");
    return t;
}

void sqs_act_publish(struct sqs_conn *c, json_t *in)
{
    char md5[QMD5_HEX], err[512];
    struct topic_published out;
    const struct cfg_topic *t = topic_sqs_topic(c, in);
    if (t == NULL)
        return;
    json_t *msg = json_object_get(in, "Message");
    json_t *attrs = json_object_get(in, "MessageAttributes");
    struct topic_message m = {.md5_attrs = md5};
    if (!json_is_string(msg) || json_string_length(msg) == 0) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter Message.");
        return;
    }
    m.body = json_string_value(msg);
    m.body_len = json_string_length(msg);
    if (!sqs_body_ok(m.body, m.body_len)) {
        sqs_reply_error(c, SQS_ERR_CONTENTS, "Invalid binary character in the message body.");
        return;
    }
    if (sqs_msg_attrs_check(attrs, &m.attr_bytes, md5, err, sizeof(err)) < 0) {
        sqs_reply_error(c, SQS_ERR_PARAM, "%s", err);
        return;
    }
    char *text = md5[0] ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    m.attrs = md5[0] ? attrs : NULL;
    m.attrs_text = text;
    int rc = md5[0] && text == NULL ? -ENOMEM : topic_publish(sqs_broker(c), t, &m, &out);
    free(text);
    if (rc == -EMSGSIZE) {
        sqs_reply_error(c, SQS_ERR_PARAM,
                        "The message is larger than a subscribed queue's "
                        "MaximumMessageSize.");
        return;
    }
    if (rc == -ENOENT) {
        sqs_reply_error(c, SQS_ERR_UNAVAILABLE, "weir: a queue of topic %s is missing", t->name);
        return;
    }
    if (rc < 0) {
        sqs_reply_errno(c, rc);
        return;
    }
    sqs_reply_synced(c, out.sync_pos, json_pack("{s:s}", "MessageId", out.id));
}

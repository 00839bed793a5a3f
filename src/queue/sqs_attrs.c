/* sqs_attrs: queue URLs and ARNs, queue attributes (Get/SetQueueAttributes,
 * CreateQueue's Attributes) and message attributes, checked the way SQS
 * checks them.
 *
 * Queue attributes are rows of a table: the settable ones name a field of
 * struct queue_attrs with SQS's range; the read-only ones a getter. Values
 * travel as strings of decimal digits, as in SQS. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "queue/sqs_internal.h"

#define SQS_MAX_MSG_ATTRS 10
#define SQS_MAX_ATTR_NAME 256

/* ---- URLs ---- */

int sqs_url_name(const char *url, char *name, size_t size)
{
    const char *slash = strrchr(url, '/');
    const char *n = slash ? slash + 1 : url;
    size_t len = strlen(n);
    if (len == 0 || len >= size)
        return -EINVAL;
    memcpy(name, n, len + 1);
    return 0;
}

void sqs_queue_url(const struct sqs_conn *c, const char *name, char *out, size_t size)
{
    snprintf(out, size, "http://%s/" SQS_ACCOUNT "/%s", c->host[0] ? c->host : "localhost",
             name);
}

void sqs_queue_arn(const char *name, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:sqs:" SQS_REGION ":" SQS_ACCOUNT ":%s", name);
}

/* ---- queue attributes ---- */

struct sqs_qattr {
    const char *name;
    size_t offset;                     /* into struct queue_attrs; SIZE_MAX: read only */
    uint32_t min, max;
};

#define SQS_QATTR(n, field, lo, hi) { n, offsetof(struct queue_attrs, field), lo, hi }
static const struct sqs_qattr sqs_qattrs[] = {
    SQS_QATTR("VisibilityTimeout", visibility_timeout_s, 0, 43200),
    SQS_QATTR("DelaySeconds", delay_s, 0, 900),
    SQS_QATTR("MessageRetentionPeriod", retention_s, 60, 1209600),
    SQS_QATTR("MaximumMessageSize", max_message_bytes, 1024, 1048576),
    SQS_QATTR("ReceiveMessageWaitTimeSeconds", receive_wait_s, 0, 20),
};
#undef SQS_QATTR

static const char *const sqs_qattr_readonly[] = {
    "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication",
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp",
    "QueueArn",
};

static const struct sqs_qattr *sqs_qattr_find(const char *name)
{
    for (size_t i = 0; i < sizeof(sqs_qattrs) / sizeof(sqs_qattrs[0]); i++)
        if (strcmp(sqs_qattrs[i].name, name) == 0)
            return &sqs_qattrs[i];
    return NULL;
}

/* A decimal attribute value within [min, max]: 0, or -1. */
static int sqs_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    if (s == NULL || !isdigit((unsigned char)s[0]) || strlen(s) > 10)
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* RedrivePolicy: {"deadLetterTargetArn": ARN, "maxReceiveCount": N} as a
 * JSON string ("" removes it); the target must exist. Returns 0, or -1
 * with the error answered. */
static int sqs_redrive_apply(struct sqs_conn *c, json_t *val, struct queue_attrs *a)
{
    const char *text = json_string_value(val);
    if (text && text[0] == 0) {
        a->max_receives = 0;
        a->dead_letter[0] = 0;
        return 0;
    }
    json_t *p = text ? json_loads(text, 0, NULL) : NULL;
    const char *arn = json_string_value(json_object_get(p, "deadLetterTargetArn"));
    json_t *mr = json_object_get(p, "maxReceiveCount");
    uint32_t max = 0;
    int ok = arn != NULL && (json_is_integer(mr) ? (json_integer_value(mr) >= 1 &&
                                                    json_integer_value(mr) <= 1000 &&
                                                    (max = (uint32_t)json_integer_value(mr)))
                                                 : sqs_parse_u32(json_string_value(mr), 1, 1000,
                                                                 &max) == 0);
    const char *colon = arn ? strrchr(arn, ':') : NULL;
    char name[QUEUE_MAX_NAME + 1];
    if (!ok || colon == NULL || strlen(colon + 1) > QUEUE_MAX_NAME) {
        json_decref(p);
        sqs_reply_error(c, SQS_ERR_ATTR_VALUE, "Value for parameter RedrivePolicy is invalid. "
                        "Reason: it needs deadLetterTargetArn and maxReceiveCount (1 to 1000).");
        return -1;
    }
    snprintf(name, sizeof(name), "%s", colon + 1);
    json_decref(p);
    struct queue *dlq = qbroker_find(sqs_broker(c), name);
    if (dlq == NULL) {
        sqs_reply_error(c, SQS_ERR_ATTR_VALUE, "Value for parameter RedrivePolicy is invalid. "
                        "Reason: Dead letter target does not exist.");
        return -1;
    }
    queue_put(dlq);
    a->max_receives = max;
    memcpy(a->dead_letter, name, sizeof(name));
    return 0;
}

/* FifoQueue (at creation only) and ContentBasedDeduplication (FIFO
 * queues only): "true" or "false". Returns 0 or -1 answered. */
static int sqs_fifo_attr_apply(struct sqs_conn *c, const char *key, const char *v,
                               struct queue_attrs *a, int creating)
{
    int fifo_key = strcmp(key, "FifoQueue") == 0;
    if (fifo_key && !creating) {
        sqs_reply_error(c, SQS_ERR_ATTR_NAME, "FifoQueue can only be set when a queue is made.");
        return -1;
    }
    if (v == NULL || (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)) {
        sqs_reply_error(c, SQS_ERR_ATTR_VALUE, "Invalid value for the parameter %s: true or "
                        "false.", key);
        return -1;
    }
    if (fifo_key)
        a->fifo = strcmp(v, "true") == 0;
    else
        a->content_dedup = strcmp(v, "true") == 0;
    return 0;
}

/* A dead-letter queue is of its source's type (FIFO or standard). */
static int sqs_redrive_type_check(struct sqs_conn *c, const struct queue_attrs *a)
{
    if (a->max_receives == 0)
        return 0;
    struct queue *dlq = qbroker_find(sqs_broker(c), a->dead_letter);
    int same = dlq && dlq->attrs.fifo == a->fifo;
    queue_put(dlq);
    if (!same) {
        sqs_reply_error(c, SQS_ERR_ATTR_VALUE, "Value for parameter RedrivePolicy is invalid. "
                        "Reason: Dead-letter queue must be same type of queue as the source.");
        return -1;
    }
    return 0;
}

int sqs_attrs_apply(struct sqs_conn *c, json_t *attrs, struct queue_attrs *a, int creating)
{
    const char *key;
    json_t *val;
    if (attrs == NULL)
        return 0;
    if (!json_is_object(attrs)) {
        sqs_reply_error(c, SQS_ERR_SERIAL, "Attributes must be a map of strings");
        return -1;
    }
    json_object_foreach(attrs, key, val)
    {
        const struct sqs_qattr *qa = sqs_qattr_find(key);
        if (strcmp(key, "FifoQueue") == 0 || strcmp(key, "ContentBasedDeduplication") == 0) {
            if (sqs_fifo_attr_apply(c, key, json_string_value(val), a, creating) < 0)
                return -1;
            continue;
        }
        if (strcmp(key, "RedrivePolicy") == 0) {
            if (sqs_redrive_apply(c, val, a) < 0)
                return -1;
            continue;
        }
        if (qa == NULL) {
            sqs_reply_error(c, SQS_ERR_ATTR_NAME, "Unknown or unsupported Attribute %s.", key);
            return -1;
        }
        if (sqs_parse_u32(json_string_value(val), qa->min, qa->max,
                          (uint32_t *)((char *)a + qa->offset)) < 0) {
            sqs_reply_error(c, SQS_ERR_ATTR_VALUE, "Invalid value for the parameter %s: it must "
                            "be a whole number from %u to %u.", key, qa->min, qa->max);
            return -1;
        }
    }
    if (a->content_dedup && !a->fifo) {
        sqs_reply_error(c, SQS_ERR_ATTR_NAME, "ContentBasedDeduplication is an attribute of FIFO "
                        "queues only.");
        return -1;
    }
    return sqs_redrive_type_check(c, a);
}

static int sqs_set_num(json_t *out, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_object_set_new(out, name, json_string(buf));
}

/* Whether `name` is asked for by the list (All, or the name). */
static int sqs_wants(json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *s = json_string_value(n);
        if (s && (strcmp(s, "All") == 0 || strcmp(s, name) == 0))
            return 1;
    }
    return 0;
}

json_t *sqs_attrs_get(struct sqs_conn *c, struct queue *q, json_t *names,
                      const size_t counts[3])
{
    json_t *out = json_object();
    size_t i;
    json_t *n;
    char arn[256];
    if (out == NULL) {
        sqs_reply_error(c, SQS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    json_array_foreach(names, i, n)
    {
        const char *s = json_string_value(n);
        int known = s && (strcmp(s, "All") == 0 || sqs_qattr_find(s) != NULL);
        for (size_t k = 0; s && !known && k < sizeof(sqs_qattr_readonly) / sizeof(char *); k++)
            known = strcmp(s, sqs_qattr_readonly[k]) == 0;
        if (!known) {
            json_decref(out);
            sqs_reply_error(c, SQS_ERR_ATTR_NAME, "Unknown Attribute %s.", s ? s : "(not a "
                            "string)");
            return NULL;
        }
    }
    size_t visible = counts[0], inflight = counts[1], delayed = counts[2];
    pthread_mutex_lock(&q->mu);
    struct queue_attrs a = q->attrs;
    uint64_t created = q->created_ms / 1000, modified = q->modified_ms / 1000;
    pthread_mutex_unlock(&q->mu);
    for (size_t k = 0; k < sizeof(sqs_qattrs) / sizeof(sqs_qattrs[0]); k++)
        if (sqs_wants(names, sqs_qattrs[k].name))
            sqs_set_num(out, sqs_qattrs[k].name,
                        *(const uint32_t *)((const char *)&a + sqs_qattrs[k].offset));
    if (sqs_wants(names, "ApproximateNumberOfMessages"))
        sqs_set_num(out, "ApproximateNumberOfMessages", visible);
    if (sqs_wants(names, "ApproximateNumberOfMessagesNotVisible"))
        sqs_set_num(out, "ApproximateNumberOfMessagesNotVisible", inflight);
    if (sqs_wants(names, "ApproximateNumberOfMessagesDelayed"))
        sqs_set_num(out, "ApproximateNumberOfMessagesDelayed", delayed);
    if (sqs_wants(names, "CreatedTimestamp"))
        sqs_set_num(out, "CreatedTimestamp", created);
    if (sqs_wants(names, "LastModifiedTimestamp"))
        sqs_set_num(out, "LastModifiedTimestamp", modified);
    if (sqs_wants(names, "RedrivePolicy") && a.max_receives > 0) {
        char text[512];
        sqs_queue_arn(a.dead_letter, arn, sizeof(arn));
        snprintf(text, sizeof(text), "{\"deadLetterTargetArn\":\"%s\",\"maxReceiveCount\":%u}",
                 arn, a.max_receives);
        json_object_set_new(out, "RedrivePolicy", json_string(text));
    }
    if (a.fifo && sqs_wants(names, "FifoQueue"))
        json_object_set_new(out, "FifoQueue", json_string("true"));
    if (a.fifo && sqs_wants(names, "ContentBasedDeduplication"))
        json_object_set_new(out, "ContentBasedDeduplication",
                            json_string(a.content_dedup ? "true" : "false"));
    if (sqs_wants(names, "QueueArn")) {
        sqs_queue_arn(q->name, arn, sizeof(arn));
        json_object_set_new(out, "QueueArn", json_string(arn));
    }
    return out;
}

/* ---- message attributes ---- */

static int sqs_attr_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > SQS_MAX_ATTR_NAME || n[0] == '.' || n[len - 1] == '.' ||
        strstr(n, "..") || strncasecmp(n, "AWS.", 4) == 0 || strncasecmp(n, "Amazon.", 7) == 0)
        return 0;
    return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == len;
}

/* The base type of a DataType ("Number.float" -> "Number"), or NULL. */
static const char *sqs_attr_base(const char *type)
{
    static const char *const bases[] = { "String", "Number", "Binary" };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(bases[i]);
        if (strncmp(type, bases[i], n) == 0 && (type[n] == 0 || (type[n] == '.' && type[n + 1])))
            return bases[i];
    }
    return NULL;
}

static int sqs_number_ok(const char *s)
{
    char *end;
    if (*s == 0 || isspace((unsigned char)*s))
        return 0;
    strtod(s, &end);
    return *end == 0;
}

/* One attribute: 0 with *bytes increased, or -1 with err. */
static int sqs_msg_attr_check(const char *name, json_t *v, size_t *bytes, char *err,
                              size_t err_size)
{
    const char *type = json_string_value(json_object_get(v, "DataType"));
    json_t *sv = json_object_get(v, "StringValue"), *bv = json_object_get(v, "BinaryValue");
    if (!sqs_attr_name_ok(name)) {
        snprintf(err, err_size, "The message attribute name '%s' is invalid.", name);
        return -1;
    }
    const char *base = type ? sqs_attr_base(type) : NULL;
    if (base == NULL) {
        snprintf(err, err_size, "The message attribute '%s' has an invalid message attribute "
                 "type, the set of supported type prefixes is Binary, Number, and String.", name);
        return -1;
    }
    if (json_object_get(v, "StringListValues") || json_object_get(v, "BinaryListValues")) {
        snprintf(err, err_size, "Message attribute list values are not supported.");
        return -1;
    }
    int binary = strcmp(base, "Binary") == 0;
    json_t *val = binary ? bv : sv;
    if (!json_is_string(val) || json_string_length(val) == 0 || (binary ? sv : bv) != NULL) {
        snprintf(err, err_size, "The message attribute '%s' must contain a non-empty message "
                 "attribute value for message attribute type '%s'.", name, base);
        return -1;
    }
    size_t len = json_string_length(val);
    if (binary) {
        unsigned char *raw = malloc(BASE64_DECODED_MAX(len) + 1);
        ssize_t n = raw ? base64_decode(json_string_value(val), len, raw,
                                        BASE64_DECODED_MAX(len) + 1) : -1;
        free(raw);
        if (n <= 0) {
            snprintf(err, err_size, "The message attribute '%s' has an invalid binary value.",
                     name);
            return -1;
        }
        len = (size_t)n;
    } else if (strcmp(base, "Number") == 0 && !sqs_number_ok(json_string_value(val))) {
        snprintf(err, err_size, "Can't cast the value of message (user) attribute '%s' to a "
                 "number.", name);
        return -1;
    } else if (!sqs_body_ok(json_string_value(val), len)) {
        snprintf(err, err_size, "The message attribute '%s' contains invalid characters.", name);
        return -1;
    }
    *bytes += strlen(name) + strlen(type) + len;
    return 0;
}

int sqs_msg_attrs_check(json_t *attrs, size_t *bytes, char md5[QMD5_HEX], char *err,
                        size_t err_size)
{
    const char *key;
    json_t *val;
    *bytes = 0;
    md5[0] = 0;
    if (attrs == NULL || json_object_size(attrs) == 0)
        return 0;
    if (!json_is_object(attrs)) {
        snprintf(err, err_size, "MessageAttributes must be a map");
        return -1;
    }
    if (json_object_size(attrs) > SQS_MAX_MSG_ATTRS) {
        snprintf(err, err_size, "Number of message attributes [%zu] exceeds the allowed maximum "
                 "[%d].", json_object_size(attrs), SQS_MAX_MSG_ATTRS);
        return -1;
    }
    json_object_foreach(attrs, key, val)
    {
        if (!json_is_object(val) || sqs_msg_attr_check(key, val, bytes, err, err_size) < 0) {
            if (!json_is_object(val))
                snprintf(err, err_size, "The message attribute '%s' must be a map.", key);
            return -1;
        }
    }
    if (qmd5_attrs(attrs, md5) < 0) {
        snprintf(err, err_size, "The message attributes could not be digested.");
        return -1;
    }
    return 0;
}

/* Decodes one UTF-8 character at s (len bytes left): its code point, its
 * length in *n; -1 when malformed. */
static long sqs_utf8(const unsigned char *s, size_t len, size_t *n)
{
    long cp;
    size_t need;
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0) {
        cp = s[0] & 0x1f;
        need = 2;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = s[0] & 0x0f;
        need = 3;
    } else if ((s[0] & 0xf8) == 0xf0) {
        cp = s[0] & 0x07;
        need = 4;
    } else {
        return -1;
    }
    if (len < need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *n = need;
    return cp;
}

int sqs_body_ok(const char *body, size_t len)
{
    const unsigned char *s = (const unsigned char *)body;
    size_t i = 0;
    while (i < len) {
        size_t n;
        long cp = sqs_utf8(s + i, len - i, &n);
        /* #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF */
        if (cp < 0 || !(cp == 9 || cp == 10 || cp == 13 || (cp >= 0x20 && cp <= 0xd7ff) ||
                        (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)))
            return 0;
        i += n;
    }
    return 1;
}

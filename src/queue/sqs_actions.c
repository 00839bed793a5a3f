/* sqs_actions: the SQS actions, one function each, rows of sqs_actions[].
 *
 * Each action reads its JSON input, checks it the way SQS does (the SDKs
 * raise the same exceptions as against AWS), calls the queue, and answers
 * exactly once: sqs_reply / sqs_reply_error, sqs_reply_durable for what
 * wrote to the log (the answer waits for the sync under fsync always), or
 * sqs_park for a long poll with nothing to take yet. Nothing is stored
 * when an input is refused: a batch checks every entry's shape before the
 * first send. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_cfg.h"
#include "queue/sqs_internal.h"

#define SQS_MAX_URL 512

/* ---- input helpers ---- */

/* A string member, or NULL. */
static const char *sqs_str(json_t *in, const char *key)
{
    return json_string_value(json_object_get(in, key));
}

/* An integer member in [min, max] into *out (def when absent). Returns 0,
 * or -1 with the error answered. */
static int sqs_int(struct sqs_conn *c, json_t *in, const char *key, int64_t def, int64_t min,
                   int64_t max, int64_t *out)
{
    json_t *v = json_object_get(in, key);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v)) {
        sqs_reply_error(c, SQS_ERR_SERIAL, "%s must be an integer", key);
        return -1;
    }
    *out = json_integer_value(v);
    if (*out < min || *out > max) {
        sqs_reply_error(c, SQS_ERR_PARAM, "Value %" PRId64 " for parameter %s is invalid. "
                        "Reason: must be between %" PRId64 " and %" PRId64 ".", *out, key, min,
                        max);
        return -1;
    }
    return 0;
}

/* The queue QueueUrl names, referenced; NULL with the error answered. */
static struct queue *sqs_queue_of(struct sqs_conn *c, json_t *in)
{
    char name[QUEUE_MAX_NAME + 1];
    const char *url = sqs_str(in, "QueueUrl");
    if (url == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter QueueUrl.");
        return NULL;
    }
    struct queue *q = sqs_url_name(url, name, sizeof(name)) == 0
                          ? qbroker_find(sqs_broker(c), name) : NULL;
    if (q == NULL)
        sqs_reply_error(c, SQS_ERR_NO_QUEUE, "The specified queue does not exist.");
    return q;
}

static int sqs_tags_check(struct sqs_conn *c, json_t *tags, size_t existing);
static int sqs_tags_merge(struct sqs_conn *c, struct queue *q, json_t *tags);

/* ---- queues ---- */

static void sqs_act_create_queue(struct sqs_conn *c, json_t *in)
{
    const char *name = sqs_str(in, "QueueName");
    struct queue_attrs a = queue_attrs_default;
    struct queue *q = NULL;
    char url[SQS_MAX_URL];

    if (name == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter QueueName.");
        return;
    }
    if (!queue_cfg_name_ok(name)) {
        sqs_reply_error(c, SQS_ERR_PARAM, "Can only include alphanumeric characters, hyphens, "
                        "or underscores. 1 to 80 in length");
        return;
    }
    json_t *tags = json_object_get(in, "tags");
    if (sqs_attrs_apply(c, json_object_get(in, "Attributes"), &a, 1) < 0 ||
        (tags && sqs_tags_check(c, tags, 0) < 0))
        return;
    int fifo_name = strlen(name) > 5 && strcmp(name + strlen(name) - 5, ".fifo") == 0;
    if (fifo_name != (int)a.fifo) {
        sqs_reply_error(c, SQS_ERR_PARAM, fifo_name ? "A FIFO queue needs the attribute "
                        "FifoQueue set to true." : "The name of a FIFO queue must end with the "
                        ".fifo suffix.");
        return;
    }
    int rc = qbroker_create(sqs_broker(c), name, &a, &q);
    if (rc == -EEXIST) {
        queue_put(q);
        sqs_reply_error(c, SQS_ERR_QUEUE_EXISTS, "A queue already exists with the same name and "
                        "a different value for attribute(s).");
        return;
    }
    if (rc < 0) {
        sqs_reply_errno(c, rc);
        return;
    }
    rc = tags ? sqs_tags_merge(c, q, tags) : 0;
    queue_put(q);
    if (rc < 0) {
        sqs_reply_errno(c, rc);
        return;
    }
    sqs_queue_url(c, name, url, sizeof(url));
    sqs_reply(c, json_pack("{s:s}", "QueueUrl", url));
}

static void sqs_act_get_queue_url(struct sqs_conn *c, json_t *in)
{
    const char *name = sqs_str(in, "QueueName");
    char url[SQS_MAX_URL];
    if (name == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter QueueName.");
        return;
    }
    struct queue *q = qbroker_find(sqs_broker(c), name);
    if (q == NULL) {
        sqs_reply_error(c, SQS_ERR_NO_QUEUE, "The specified queue does not exist.");
        return;
    }
    queue_put(q);
    sqs_queue_url(c, name, url, sizeof(url));
    sqs_reply(c, json_pack("{s:s}", "QueueUrl", url));
}

struct sqs_list {
    struct sqs_conn *c;
    json_t *urls;
    const char *after;                 /* NextToken: names after this one */
    int64_t max;                       /* 0: no MaxResults */
    const char *last;
    int more;
};

static void sqs_list_one(void *arg, struct queue *q)
{
    struct sqs_list *l = arg;
    char url[SQS_MAX_URL];
    if (l->after && strcmp(q->name, l->after) <= 0)
        return;
    if (l->max && (int64_t)json_array_size(l->urls) >= l->max) {
        l->more = 1;
        return;
    }
    sqs_queue_url(l->c, q->name, url, sizeof(url));
    json_array_append_new(l->urls, json_string(url));
    l->last = NULL;
}

static void sqs_act_list_queues(struct sqs_conn *c, json_t *in)
{
    int64_t max;
    if (sqs_int(c, in, "MaxResults", 0, 1, 1000, &max) < 0)
        return;
    struct sqs_list l = { .c = c, .urls = json_array(), .after = sqs_str(in, "NextToken"),
                          .max = max };
    json_t *out = json_object();
    qbroker_each(sqs_broker(c), sqs_str(in, "QueueNamePrefix"), sqs_list_one, &l);
    if (json_array_size(l.urls) > 0)
        json_object_set(out, "QueueUrls", l.urls);
    if (l.more) {
        char name[QUEUE_MAX_NAME + 1];
        const char *lastu = json_string_value(json_array_get(l.urls, json_array_size(l.urls) - 1));
        if (sqs_url_name(lastu, name, sizeof(name)) == 0)
            json_object_set_new(out, "NextToken", json_string(name));
    }
    json_decref(l.urls);
    sqs_reply(c, out);
}

static void sqs_act_delete_queue(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    int rc = qbroker_delete(sqs_broker(c), q);
    queue_put(q);
    if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply(c, NULL);
}

static void sqs_act_get_queue_attributes(struct sqs_conn *c, json_t *in)
{
    json_t *names = json_object_get(in, "AttributeNames");
    if (names && !json_is_array(names)) {
        sqs_reply_error(c, SQS_ERR_SERIAL, "AttributeNames must be a list");
        return;
    }
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    json_t *attrs = sqs_attrs_get(c, q, names);
    queue_put(q);
    if (attrs == NULL)
        return;
    json_t *out = json_object();
    if (json_object_size(attrs) > 0)
        json_object_set(out, "Attributes", attrs);
    json_decref(attrs);
    sqs_reply(c, out);
}

static void sqs_act_set_queue_attributes(struct sqs_conn *c, json_t *in)
{
    json_t *attrs = json_object_get(in, "Attributes");
    if (attrs == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter "
                        "Attributes.");
        return;
    }
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    struct queue_attrs a = q->attrs;
    pthread_mutex_unlock(&q->mu);
    if (sqs_attrs_apply(c, attrs, &a, 0) == 0) {
        pthread_mutex_lock(&q->mu);
        q->attrs = a;
        q->modified_ms = queue_now_ms();
        pthread_mutex_unlock(&q->mu);
        int rc = qbroker_save(sqs_broker(c));
        if (rc < 0)
            sqs_reply_errno(c, rc);
        else
            sqs_reply(c, NULL);
    }
    queue_put(q);
}

static void sqs_act_purge_queue(struct sqs_conn *c, json_t *in)
{
    uint64_t pos;
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    int rc = queue_purge(q, &pos);
    if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply_durable(c, q, pos, NULL);
    queue_put(q);
}

/* ---- sending ---- */

#define SQS_MAX_FIFO_ID 128
#define SQS_SHA256_HEX 65

/* A MessageGroupId / MessageDeduplicationId: 1-128 of letters, digits and
 * punctuation. */
static int sqs_fifo_id_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > SQS_MAX_FIFO_ID)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    return 1;
}

static void sqs_sha256_hex(const char *data, size_t len, char out[SQS_SHA256_HEX])
{
    unsigned char d[32];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    out[0] = 0;
    if (!EVP_Digest(data, len, d, &n, EVP_sha256(), NULL))
        return;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = 0;
}

/* The FIFO parameters of a message: group and deduplication ids (`sha` is
 * room for a content-based one). Returns 0 or -1 with *e and err. */
static int sqs_fifo_check(struct queue *q, json_t *in, struct queue_send *m,
                          char sha[SQS_SHA256_HEX], enum sqs_error *e, char *err, size_t err_size)
{
    const char *group = sqs_str(in, "MessageGroupId"), *dedup = sqs_str(in,
                                                                        "MessageDeduplicationId");
    if (!q->attrs.fifo) {
        if (dedup) {
            snprintf(err, err_size, "The request include parameter that is not valid for this "
                     "queue type: MessageDeduplicationId");
            return -1;
        }
        return 0; /* MessageGroupId on a standard queue: accepted, not used */
    }
    if (group == NULL) {
        *e = SQS_ERR_MISSING;
        snprintf(err, err_size, "The request must contain the parameter MessageGroupId.");
        return -1;
    }
    if (!sqs_fifo_id_ok(group) || (dedup && !sqs_fifo_id_ok(dedup))) {
        snprintf(err, err_size, "MessageGroupId and MessageDeduplicationId are 1 to 128 "
                 "letters, digits or punctuation.");
        return -1;
    }
    if (m->delay_s >= 0) {
        snprintf(err, err_size, "Value %" PRId64 " for parameter DelaySeconds is invalid. "
                 "Reason: The request include parameter that is not valid for this queue type.",
                 m->delay_s);
        return -1;
    }
    if (dedup == NULL && !q->attrs.content_dedup) {
        snprintf(err, err_size, "The queue should either have ContentBasedDeduplication enabled "
                 "or MessageDeduplicationId provided explicitly");
        return -1;
    }
    if (dedup == NULL)
        sqs_sha256_hex(m->body, m->body_len, sha);
    m->group = group;
    m->dedup = dedup ? dedup : sha;
    return 0;
}

/* Checks one message (a SendMessage input or a batch entry). Returns 0
 * with m filled (m->attrs owned by the caller: free(); m->dedup may point
 * into sha), or -1 with *e and err. */
static int sqs_message_check(struct queue *q, json_t *in, struct queue_send *m,
                             char md5_attrs[QMD5_HEX], char sha[SQS_SHA256_HEX],
                             enum sqs_error *e, char *err, size_t err_size)
{
    json_t *body = json_object_get(in, "MessageBody");
    json_t *attrs = json_object_get(in, "MessageAttributes");
    json_t *delay = json_object_get(in, "DelaySeconds");
    size_t attr_bytes;

    memset(m, 0, sizeof(*m));
    *e = SQS_ERR_PARAM;
    if (!json_is_string(body)) {
        *e = SQS_ERR_MISSING;
        snprintf(err, err_size, "The request must contain the parameter MessageBody.");
        return -1;
    }
    m->body = json_string_value(body);
    m->body_len = json_string_length(body);
    if (m->body_len == 0) {
        *e = SQS_ERR_MISSING;
        snprintf(err, err_size, "The request must contain the parameter MessageBody.");
        return -1;
    }
    if (!sqs_body_ok(m->body, m->body_len)) {
        *e = SQS_ERR_CONTENTS;
        snprintf(err, err_size, "Invalid binary character in the message body: only #x9 | #xA "
                 "| #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF are allowed.");
        return -1;
    }
    if (sqs_msg_attrs_check(attrs, &attr_bytes, md5_attrs, err, err_size) < 0)
        return -1;
    if (m->body_len + attr_bytes > q->attrs.max_message_bytes) {
        snprintf(err, err_size, "One or more parameters are invalid. Reason: Message must be "
                 "shorter than %u bytes.", q->attrs.max_message_bytes);
        return -1;
    }
    m->delay_s = -1;
    if (delay && !json_is_null(delay)) {
        if (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
            json_integer_value(delay) > 900) {
            snprintf(err, err_size, "Value for parameter DelaySeconds is invalid. Reason: must "
                     "be between 0 and 900, if provided.");
            return -1;
        }
        m->delay_s = json_integer_value(delay);
    }
    if (sqs_fifo_check(q, in, m, sha, e, err, err_size) < 0)
        return -1;
    m->md5_attrs = md5_attrs;
    if (md5_attrs[0]) {
        char *text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
        if (text == NULL) {
            *e = SQS_ERR_INTERNAL;
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        m->attrs = text;
        m->attrs_len = strlen(text);
    }
    return 0;
}

/* The success entry of a sent message. */
static json_t *sqs_sent_json(const struct queue *q, const struct queue_send *m, const char *id,
                             uint64_t seq)
{
    char md5[QMD5_HEX], seqs[24];
    qmd5_hex(m->body, m->body_len, md5);
    json_t *o = json_pack("{s:s, s:s}", "MessageId", id, "MD5OfMessageBody", md5);
    if (o && m->md5_attrs && m->md5_attrs[0])
        json_object_set_new(o, "MD5OfMessageAttributes", json_string(m->md5_attrs));
    if (o && q->attrs.fifo) {
        snprintf(seqs, sizeof(seqs), "%020" PRIu64, seq);
        json_object_set_new(o, "SequenceNumber", json_string(seqs));
    }
    return o;
}

static void sqs_act_send_message(struct sqs_conn *c, json_t *in)
{
    struct queue_send m;
    char md5_attrs[QMD5_HEX], err[512], id[QUEUE_ID_LEN + 1], sha[SQS_SHA256_HEX];
    enum sqs_error e;
    uint64_t pos, seq;
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    if (sqs_message_check(q, in, &m, md5_attrs, sha, &e, err, sizeof(err)) < 0) {
        sqs_reply_error(c, e, "%s", err);
        queue_put(q);
        return;
    }
    int rc = queue_send(q, &m, id, &seq, &pos);
    if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply_sent(c, q, pos, sqs_sent_json(q, &m, id, seq));
    free((char *)m.attrs);
    queue_put(q);
}

/* Checks a batch's shape: entries present, at most 10, ids valid and
 * distinct. Returns the entries, or NULL with the error answered. */
static json_t *sqs_batch_entries(struct sqs_conn *c, json_t *in)
{
    json_t *entries = json_object_get(in, "Entries"), *ent;
    size_t i;
    if (entries == NULL || (json_is_array(entries) && json_array_size(entries) == 0)) {
        sqs_reply_error(c, SQS_ERR_EMPTY_BATCH, "There should be at least one "
                        "SendMessageBatchRequestEntry in the request.");
        return NULL;
    }
    if (!json_is_array(entries)) {
        sqs_reply_error(c, SQS_ERR_SERIAL, "Entries must be a list");
        return NULL;
    }
    if (json_array_size(entries) > SQS_MAX_BATCH) {
        sqs_reply_error(c, SQS_ERR_BATCH_TOO_MANY, "Maximum number of entries per request are "
                        "%d. You have sent %zu.", SQS_MAX_BATCH, json_array_size(entries));
        return NULL;
    }
    json_array_foreach(entries, i, ent)
    {
        const char *id = sqs_str(ent, "Id");
        if (id == NULL || strlen(id) == 0 || strlen(id) > 80 ||
            strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(id)) {
            sqs_reply_error(c, SQS_ERR_BATCH_ID, "A batch entry id can only contain "
                            "alphanumeric characters, hyphens and underscores. It can be at "
                            "most 80 letters long.");
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(id, sqs_str(json_array_get(entries, j), "Id")) == 0) {
                sqs_reply_error(c, SQS_ERR_BATCH_IDS, "Id %s repeated.", id);
                return NULL;
            }
    }
    return entries;
}

static json_t *sqs_failed_json(const char *id, enum sqs_error e, const char *msg)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "Id", id, "SenderFault", sqs_errors[e].status < 500,
                     "Code", sqs_errors[e].code, "Message", msg);
}

/* A batch's result object with empty Successful and Failed lists. */
static json_t *sqs_batch_result(void)
{
    return json_pack("{s:[], s:[]}", "Successful", "Failed");
}

static void sqs_act_send_message_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    size_t i, total = 0;
    uint64_t max_pos = 0;
    if (entries == NULL) {
        queue_put(q);
        return;
    }
    json_array_foreach(entries, i, ent)
    {
        json_t *b = json_object_get(ent, "MessageBody");
        total += json_is_string(b) ? json_string_length(b) : 0;
    }
    if (total > q->attrs.max_message_bytes) {
        sqs_reply_error(c, SQS_ERR_BATCH_LONG, "Batch requests cannot be longer than %u bytes. "
                        "You have sent %zu bytes.", q->attrs.max_message_bytes, total);
        queue_put(q);
        return;
    }
    json_t *out = sqs_batch_result();
    json_array_foreach(entries, i, ent)
    {
        struct queue_send m;
        char md5_attrs[QMD5_HEX], err[512], id[QUEUE_ID_LEN + 1], sha[SQS_SHA256_HEX];
        enum sqs_error e;
        uint64_t pos, seq;
        const char *eid = sqs_str(ent, "Id");
        if (sqs_message_check(q, ent, &m, md5_attrs, sha, &e, err, sizeof(err)) < 0) {
            json_array_append_new(json_object_get(out, "Failed"), sqs_failed_json(eid, e, err));
            continue;
        }
        int rc = queue_send(q, &m, id, &seq, &pos);
        if (rc < 0) {
            json_array_append_new(json_object_get(out, "Failed"),
                                  sqs_failed_json(eid, rc == -ENOENT ? SQS_ERR_NO_QUEUE
                                                                     : SQS_ERR_UNAVAILABLE,
                                                  strerror(-rc)));
        } else {
            json_t *s = sqs_sent_json(q, &m, id, seq);
            json_object_set_new(s, "Id", json_string(eid));
            json_array_append_new(json_object_get(out, "Successful"), s);
            if (pos > max_pos)
                max_pos = pos;
        }
        free((char *)m.attrs);
    }
    sqs_reply_sent(c, q, max_pos, out);
    queue_put(q);
}

/* ---- receiving ---- */

struct sqs_recv {
    json_t *messages;
    json_t *sys_names;                 /* AttributeNames + MessageSystemAttributeNames */
    json_t *attr_names;                /* MessageAttributeNames */
};

static int sqs_name_in(json_t *names, const char *name)
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

/* Whether a message attribute is asked for: All, .*, its name, or a
 * "prefix.*" it starts with. */
static int sqs_attr_wanted(json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *s = json_string_value(n);
        size_t len = s ? strlen(s) : 0;
        if (s == NULL)
            continue;
        if (strcmp(s, "All") == 0 || strcmp(s, ".*") == 0 || strcmp(s, name) == 0)
            return 1;
        if (len > 2 && strcmp(s + len - 2, ".*") == 0 && strncmp(name, s, len - 1) == 0)
            return 1;
    }
    return 0;
}

static void sqs_set_u64(json_t *o, const char *k, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    json_object_set_new(o, k, json_string(buf));
}

/* Adds the message attributes asked for, and their digest. */
static void sqs_recv_attrs(struct sqs_recv *r, const struct queue_received *m, json_t *msg)
{
    json_t *all = json_loadb(m->attrs, m->attrs_len, 0, NULL), *pick = json_object(), *v;
    const char *k;
    char md5[QMD5_HEX];
    json_object_foreach(all, k, v)
    {
        if (sqs_attr_wanted(r->attr_names, k))
            json_object_set(pick, k, v);
    }
    if (json_object_size(pick) > 0) {
        if (json_object_size(pick) == json_object_size(all))
            snprintf(md5, sizeof(md5), "%s", m->md5_attrs);
        else if (qmd5_attrs(pick, md5) < 0)
            md5[0] = 0;
        json_object_set(msg, "MessageAttributes", pick);
        if (md5[0])
            json_object_set_new(msg, "MD5OfMessageAttributes", json_string(md5));
    }
    json_decref(pick);
    json_decref(all);
}

static void sqs_recv_one(void *arg, const struct queue_received *m)
{
    struct sqs_recv *r = arg;
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s%}", "MessageId", m->id, "ReceiptHandle",
                            m->receipt, "MD5OfBody", m->md5_body, "Body", m->body, m->body_len);
    if (msg == NULL)
        return;
    json_t *sys = json_object();
    if (sqs_name_in(r->sys_names, "SenderId"))
        json_object_set_new(sys, "SenderId", json_string(SQS_ACCOUNT));
    if (sqs_name_in(r->sys_names, "SentTimestamp"))
        sqs_set_u64(sys, "SentTimestamp", m->sent_ms);
    if (sqs_name_in(r->sys_names, "ApproximateReceiveCount"))
        sqs_set_u64(sys, "ApproximateReceiveCount", m->receive_count);
    if (sqs_name_in(r->sys_names, "ApproximateFirstReceiveTimestamp"))
        sqs_set_u64(sys, "ApproximateFirstReceiveTimestamp", m->first_receive_ms);
    if (m->group && sqs_name_in(r->sys_names, "MessageGroupId"))
        json_object_set_new(sys, "MessageGroupId", json_string(m->group));
    if (m->dedup && sqs_name_in(r->sys_names, "MessageDeduplicationId"))
        json_object_set_new(sys, "MessageDeduplicationId", json_string(m->dedup));
    if (m->group && sqs_name_in(r->sys_names, "SequenceNumber")) {
        char seqs[24];
        snprintf(seqs, sizeof(seqs), "%020" PRIu64, m->seq);
        json_object_set_new(sys, "SequenceNumber", json_string(seqs));
    }
    if (json_object_size(sys) > 0)
        json_object_set(msg, "Attributes", sys);
    json_decref(sys);
    if (m->attrs && r->attr_names)
        sqs_recv_attrs(r, m, msg);
    json_array_append_new(r->messages, msg);
}

/* Takes messages for the ReceiveMessage input `in`. Returns how many were
 * added to *out (a new {"Messages": [...]}), or -ENOENT. */
static int sqs_receive_into(struct queue *q, json_t *in, json_t **out)
{
    int64_t max = json_integer_value(json_object_get(in, "MaxNumberOfMessages"));
    json_t *vis = json_object_get(in, "VisibilityTimeout");
    uint32_t vis_s = json_is_integer(vis) ? (uint32_t)json_integer_value(vis)
                                          : q->attrs.visibility_timeout_s;
    struct sqs_recv r = { .messages = json_array(), .attr_names = json_object_get(in,
                                                                                  "MessageAttributeNames") };
    r.sys_names = json_array();
    json_array_extend(r.sys_names, json_object_get(in, "AttributeNames"));
    json_array_extend(r.sys_names, json_object_get(in, "MessageSystemAttributeNames"));
    int n = queue_receive(q, max > 0 ? (unsigned)max : 1, vis_s, sqs_recv_one, &r);
    json_decref(r.sys_names);
    *out = json_object();
    if (n > 0)
        json_object_set(*out, "Messages", r.messages);
    json_decref(r.messages);
    return n;
}

/* Answers, or parks c when nothing is there and time is left. */
static void sqs_receive_answer(struct sqs_conn *c, struct queue *q, json_t *in, int final,
                               double wait_s)
{
    json_t *out;
    for (int tries = 0; tries < 4; tries++) {
        int n = sqs_receive_into(q, in, &out);
        if (n != 0 || final) {
            sqs_unpark(c);
            c->state = SQS_READING;
            if (n < 0) {
                json_decref(out);
                sqs_reply_errno(c, n);
            } else {
                sqs_reply(c, out);
            }
            return;
        }
        json_decref(out);
        if (c->wait_q == NULL) {
            sqs_park(c, q, in, wait_s);
            return;
        }
        if (queue_wait(q, &c->waiter) == 0)
            return; /* parked again */
    }
    /* messages keep going to others: stay parked, the sweep wakes us */
}

void sqs_receive_retry(struct sqs_conn *c, int final)
{
    sqs_receive_answer(c, c->wait_q, c->wait_req, final, 0);
}

static int sqs_names_ok(struct sqs_conn *c, json_t *in, const char *key)
{
    json_t *v = json_object_get(in, key);
    if (v && !json_is_array(v)) {
        sqs_reply_error(c, SQS_ERR_SERIAL, "%s must be a list", key);
        return 0;
    }
    return 1;
}

static void sqs_act_receive_message(struct sqs_conn *c, json_t *in)
{
    int64_t max, vis, wait;
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    if (sqs_int(c, in, "MaxNumberOfMessages", 1, 1, SQS_MAX_BATCH, &max) == 0 &&
        sqs_int(c, in, "VisibilityTimeout", q->attrs.visibility_timeout_s, 0, 43200, &vis) == 0 &&
        sqs_int(c, in, "WaitTimeSeconds", q->attrs.receive_wait_s, 0, SQS_MAX_WAIT_S, &wait) == 0 &&
        sqs_names_ok(c, in, "AttributeNames") && sqs_names_ok(c, in, "MessageSystemAttributeNames") &&
        sqs_names_ok(c, in, "MessageAttributeNames"))
        sqs_receive_answer(c, q, in, wait == 0 || c->closing, (double)wait);
    queue_put(q);
}

/* ---- deleting, visibility ---- */

static void sqs_act_delete_message(struct sqs_conn *c, json_t *in)
{
    const char *receipt = sqs_str(in, "ReceiptHandle");
    uint64_t pos;
    if (receipt == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter "
                        "ReceiptHandle.");
        return;
    }
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    int rc = queue_delete_msg(q, receipt, &pos);
    if (rc == -EINVAL)
        sqs_reply_error(c, SQS_ERR_RECEIPT, "The input receipt handle \"%s\" is not a valid "
                        "receipt handle.", receipt);
    else if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply_durable(c, q, pos, NULL);
    queue_put(q);
}

static void sqs_act_delete_message_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    size_t i;
    uint64_t max_pos = 0;
    if (entries == NULL) {
        queue_put(q);
        return;
    }
    json_t *out = sqs_batch_result();
    json_array_foreach(entries, i, ent)
    {
        const char *eid = sqs_str(ent, "Id"), *receipt = sqs_str(ent, "ReceiptHandle");
        uint64_t pos = 0;
        int rc = receipt ? queue_delete_msg(q, receipt, &pos) : -EINVAL;
        if (rc == 0) {
            json_array_append_new(json_object_get(out, "Successful"),
                                  json_pack("{s:s}", "Id", eid));
            if (pos > max_pos)
                max_pos = pos;
        } else {
            enum sqs_error e = rc == -EINVAL ? SQS_ERR_RECEIPT : SQS_ERR_UNAVAILABLE;
            json_array_append_new(json_object_get(out, "Failed"),
                                  sqs_failed_json(eid, e, rc == -EINVAL ? "The receipt handle "
                                                  "is not valid." : strerror(-rc)));
        }
    }
    sqs_reply_durable(c, q, max_pos, out);
    queue_put(q);
}

/* One visibility change: 0, or the error with its message. */
static int sqs_visibility_one(struct queue *q, json_t *in, enum sqs_error *e, char *err,
                              size_t err_size)
{
    const char *receipt = sqs_str(in, "ReceiptHandle");
    json_t *t = json_object_get(in, "VisibilityTimeout");
    *e = SQS_ERR_MISSING;
    if (receipt == NULL) {
        snprintf(err, err_size, "The request must contain the parameter ReceiptHandle.");
        return -1;
    }
    if (!json_is_integer(t)) {
        snprintf(err, err_size, "The request must contain the parameter VisibilityTimeout.");
        return -1;
    }
    if (json_integer_value(t) < 0 || json_integer_value(t) > 43200) {
        *e = SQS_ERR_PARAM;
        snprintf(err, err_size, "Value %" PRId64 " for parameter VisibilityTimeout is invalid. "
                 "Reason: must be between 0 and 43200.", (int64_t)json_integer_value(t));
        return -1;
    }
    int rc = queue_change_visibility(q, receipt, (uint32_t)json_integer_value(t));
    *e = rc == -EINVAL ? SQS_ERR_RECEIPT : rc == -ESRCH ? SQS_ERR_NOT_INFLIGHT : SQS_ERR_NO_QUEUE;
    if (rc == -EINVAL)
        snprintf(err, err_size, "The input receipt handle \"%s\" is not a valid receipt handle.",
                 receipt);
    else if (rc == -ESRCH)
        snprintf(err, err_size, "Message does not exist or is not available for visibility "
                 "timeout change.");
    else if (rc < 0)
        snprintf(err, err_size, "The specified queue does not exist.");
    return rc < 0 ? -1 : 0;
}

static void sqs_act_change_visibility(struct sqs_conn *c, json_t *in)
{
    enum sqs_error e;
    char err[512];
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    if (sqs_visibility_one(q, in, &e, err, sizeof(err)) < 0)
        sqs_reply_error(c, e, "%s", err);
    else
        sqs_reply(c, NULL);
    queue_put(q);
}

static void sqs_act_change_visibility_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    size_t i;
    if (entries == NULL) {
        queue_put(q);
        return;
    }
    json_t *out = sqs_batch_result();
    json_array_foreach(entries, i, ent)
    {
        enum sqs_error e;
        char err[512];
        const char *eid = sqs_str(ent, "Id");
        if (sqs_visibility_one(q, ent, &e, err, sizeof(err)) < 0)
            json_array_append_new(json_object_get(out, "Failed"), sqs_failed_json(eid, e, err));
        else
            json_array_append_new(json_object_get(out, "Successful"),
                                  json_pack("{s:s}", "Id", eid));
    }
    sqs_reply(c, out);
    queue_put(q);
}

/* ---- dead letters ---- */

struct sqs_sources {
    struct sqs_conn *c;
    const char *dlq;
    json_t *urls;
};

static void sqs_source_one(void *arg, struct queue *q)
{
    struct sqs_sources *s = arg;
    char url[SQS_MAX_URL];
    pthread_mutex_lock(&q->mu);
    int match = q->attrs.max_receives > 0 && strcmp(q->attrs.dead_letter, s->dlq) == 0;
    pthread_mutex_unlock(&q->mu);
    if (!match)
        return;
    sqs_queue_url(s->c, q->name, url, sizeof(url));
    json_array_append_new(s->urls, json_string(url));
}

static void sqs_act_list_dlq_sources(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    struct sqs_sources s = { c, q->name, json_array() };
    qbroker_each(sqs_broker(c), NULL, sqs_source_one, &s);
    queue_put(q);
    sqs_reply(c, json_pack("{s:o}", "queueUrls", s.urls));
}

/* The queue an ARN names, referenced; NULL with the error answered. */
static struct queue *sqs_queue_of_arn(struct sqs_conn *c, const char *arn, const char *param)
{
    const char *colon = arn ? strrchr(arn, ':') : NULL;
    struct queue *q = colon && strncmp(arn, "arn:", 4) == 0 && strlen(colon + 1) <= QUEUE_MAX_NAME
                          ? qbroker_find(sqs_broker(c), colon + 1) : NULL;
    if (q == NULL)
        sqs_reply_error(c, SQS_ERR_RESOURCE, "The resource that you specified for the %s "
                        "parameter doesn't exist.", param);
    return q;
}

/* Moves every visible message of the dead-letter queue SourceArn back,
 * at once (MaxNumberOfMessagesPerSecond is not honoured): to DestinationArn,
 * or each to the queue it came from. */
static void sqs_act_start_move_task(struct sqs_conn *c, json_t *in)
{
    const char *src_arn = sqs_str(in, "SourceArn"), *dst_arn = sqs_str(in, "DestinationArn");
    char handle[128];
    size_t moved = 0;
    if (src_arn == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter SourceArn.");
        return;
    }
    struct queue *src = sqs_queue_of_arn(c, src_arn, "SourceArn"), *dst = NULL;
    if (src == NULL)
        return;
    if (dst_arn && (dst = sqs_queue_of_arn(c, dst_arn, "DestinationArn")) == NULL) {
        queue_put(src);
        return;
    }
    int rc = queue_redrive(src, dst ? dst->name : NULL, &moved);
    if (rc < 0) {
        sqs_reply_errno(c, rc);
    } else {
        snprintf(handle, sizeof(handle), "weir-move-%s-%zu", src->name, moved);
        sqs_reply(c, json_pack("{s:s}", "TaskHandle", handle));
    }
    queue_put(src);
    queue_put(dst);
}

/* ---- tags ---- */

#define SQS_MAX_TAGS 50

/* Checks a Tags map: at most 50 in all with the queue's, keys 1-128 and
 * values 0-256 characters. Returns 0, or -1 with the error answered. */
static int sqs_tags_check(struct sqs_conn *c, json_t *tags, size_t existing)
{
    const char *k;
    json_t *v;
    if (!json_is_object(tags) || json_object_size(tags) == 0) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter Tags.");
        return -1;
    }
    if (existing + json_object_size(tags) > SQS_MAX_TAGS) {
        sqs_reply_error(c, SQS_ERR_PARAM, "Too many tags: a queue has at most %d.", SQS_MAX_TAGS);
        return -1;
    }
    json_object_foreach(tags, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > 128 || !json_is_string(v) ||
            json_string_length(v) > 256 || !sqs_body_ok(k, strlen(k)) ||
            !sqs_body_ok(json_string_value(v), json_string_length(v))) {
            sqs_reply_error(c, SQS_ERR_PARAM, "Tag keys are 1 to 128 characters, values 0 to "
                            "256.");
            return -1;
        }
    }
    return 0;
}

/* Merges tags into q's and saves the queue list. Returns 0 or negative. */
static int sqs_tags_merge(struct sqs_conn *c, struct queue *q, json_t *tags)
{
    pthread_mutex_lock(&q->mu);
    int rc = json_object_update(q->tags, tags) < 0 ? -ENOMEM : 0;
    pthread_mutex_unlock(&q->mu);
    return rc < 0 ? rc : qbroker_save(sqs_broker(c));
}

static void sqs_act_tag_queue(struct sqs_conn *c, json_t *in)
{
    json_t *tags = json_object_get(in, "Tags");
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    size_t existing = json_object_size(q->tags);
    pthread_mutex_unlock(&q->mu);
    if (sqs_tags_check(c, tags, existing) == 0) {
        int rc = sqs_tags_merge(c, q, tags);
        if (rc < 0)
            sqs_reply_errno(c, rc);
        else
            sqs_reply(c, NULL);
    }
    queue_put(q);
}

static void sqs_act_untag_queue(struct sqs_conn *c, json_t *in)
{
    json_t *keys = json_object_get(in, "TagKeys"), *k;
    size_t i;
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter TagKeys.");
        return;
    }
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    json_array_foreach(keys, i, k)
    {
        if (json_is_string(k))
            json_object_del(q->tags, json_string_value(k));
    }
    pthread_mutex_unlock(&q->mu);
    int rc = qbroker_save(sqs_broker(c));
    if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply(c, NULL);
    queue_put(q);
}

static void sqs_act_list_queue_tags(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    json_t *out = json_object();
    pthread_mutex_lock(&q->mu);
    if (json_object_size(q->tags) > 0)
        json_object_set_new(out, "Tags", json_deep_copy(q->tags));
    pthread_mutex_unlock(&q->mu);
    queue_put(q);
    sqs_reply(c, out);
}

/* ---- the table ---- */

#define SQS_ACTION_LIST(X) \
    X("CreateQueue", sqs_act_create_queue) \
    X("GetQueueUrl", sqs_act_get_queue_url) \
    X("ListQueues", sqs_act_list_queues) \
    X("DeleteQueue", sqs_act_delete_queue) \
    X("GetQueueAttributes", sqs_act_get_queue_attributes) \
    X("SetQueueAttributes", sqs_act_set_queue_attributes) \
    X("PurgeQueue", sqs_act_purge_queue) \
    X("SendMessage", sqs_act_send_message) \
    X("SendMessageBatch", sqs_act_send_message_batch) \
    X("ReceiveMessage", sqs_act_receive_message) \
    X("DeleteMessage", sqs_act_delete_message) \
    X("DeleteMessageBatch", sqs_act_delete_message_batch) \
    X("ChangeMessageVisibility", sqs_act_change_visibility) \
    X("ChangeMessageVisibilityBatch", sqs_act_change_visibility_batch) \
    X("ListDeadLetterSourceQueues", sqs_act_list_dlq_sources) \
    X("StartMessageMoveTask", sqs_act_start_move_task) \
    X("TagQueue", sqs_act_tag_queue) \
    X("UntagQueue", sqs_act_untag_queue) \
    X("ListQueueTags", sqs_act_list_queue_tags) \
    X("Publish", sqs_act_publish)

struct sqs_action {
    const char *name;
    void (*run)(struct sqs_conn *c, json_t *in);
};

#define SQS_ACTION_ROW(n, fn) { n, fn },
static const struct sqs_action sqs_actions[] = { SQS_ACTION_LIST(SQS_ACTION_ROW) };
#undef SQS_ACTION_ROW

void sqs_dispatch(struct sqs_conn *c, const char *name, size_t name_len, json_t *in)
{
    for (size_t i = 0; i < sizeof(sqs_actions) / sizeof(sqs_actions[0]); i++)
        if (strlen(sqs_actions[i].name) == name_len &&
            memcmp(sqs_actions[i].name, name, name_len) == 0) {
            sqs_actions[i].run(c, in);
            return;
        }
    sqs_reply_error(c, SQS_ERR_ACTION, "The action %.*s is not valid for this endpoint (or not "
                    "available in this version of weir).", (int)(name_len > 64 ? 64 : name_len),
                    name);
}

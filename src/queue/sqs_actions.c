/* sqs_actions: the SQS actions, one function each, rows of sqs_actions[].
 *
 * Each action reads its JSON input, checks it the way SQS does (the SDKs
 * raise the same exceptions as against AWS), calls the queue, and answers
 * exactly once: sqs_reply / sqs_reply_error, sqs_reply_durable for what
 * wrote to the log (the answer waits for the sync under fsync always), or
 * sqs_park for a long poll with nothing to take yet. Messages are reached
 * through the queue's backend (qbackend.h: local or Redis) as a call whose
 * done function answers, at once (local) or when the store replies
 * (the connection is SQS_CALLING meanwhile; closing it cancels the call). Nothing is stored
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
#include "server/server.h"

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
static void sqs_recv_free(struct sqs_recv *r);

/* ---- calls to the queue's backend (qbackend.h) ---- */

/* Prepares c's call on q for the request `in` (both referenced until
 * sqs_call_release) with `done` to answer it. Returns the call. */
static struct qcall *sqs_call_prepare(struct sqs_conn *c, struct queue *q, json_t *in,
                                      qcall_done_fn done)
{
    struct qcall *call = &c->call;
    queue_get(q);
    call->q = q;
    call->loop = c->sw->loop;
    call->cfg = c->snap->cfg;
    call->done = done;
    call->arg = c;
    call->n = 0;
    c->call_req = json_incref(in);
    return call;
}

/* Runs op on the prepared call: the answer comes through its done. */
static void sqs_call_run(struct sqs_conn *c, void (*op)(struct qcall *call))
{
    c->state = SQS_CALLING;
    op(&c->call);
}

/* Lets go of what c's call holds (in its done, or when c closes). */
static void sqs_call_release(struct sqs_conn *c)
{
    if (c->call.q)
        queue_put(c->call.q);
    c->call.q = NULL;
    json_decref(c->call_req);
    json_decref(c->call_out);
    json_decref(c->call_aux);
    c->call_req = c->call_out = c->call_aux = NULL;
    sqs_recv_free(c->recv);
    c->recv = NULL;
}

void sqs_call_end(struct sqs_conn *c)
{
    qcall_cancel(&c->call);
    sqs_call_release(c);
}

/* The connection of a call in its done; state back to READING so that it
 * can answer. */
static struct sqs_conn *sqs_call_conn(struct qcall *call)
{
    struct sqs_conn *c = call->arg;
    if (c->state == SQS_CALLING)
        c->state = SQS_READING;
    return c;
}

/* The error of a failed entry of a call. */
static enum sqs_error sqs_entry_error(int rc, const char **msg)
{
    switch (rc) {
    case -EINVAL:
        *msg = "The receipt handle is not valid.";
        return SQS_ERR_RECEIPT;
    case -ESRCH:
        *msg = "Message does not exist or is not available for visibility timeout change.";
        return SQS_ERR_NOT_INFLIGHT;
    case -ENOENT:
        *msg = "The specified queue does not exist.";
        return SQS_ERR_NO_QUEUE;
    case -EAGAIN:
        *msg = "weir: the queue's Redis store is unavailable or did not answer in time";
        return SQS_ERR_UNAVAILABLE;
    default:
        *msg = strerror(-rc);
        return SQS_ERR_UNAVAILABLE;
    }
}

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

static void sqs_got_queue_attributes(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    if (call->rc < 0) {
        sqs_reply_errno(c, call->rc);
        sqs_call_release(c);
        return;
    }
    json_t *attrs = sqs_attrs_get(c, call->q, json_object_get(c->call_req, "AttributeNames"),
                                  call->counts);
    sqs_call_release(c);
    if (attrs == NULL)
        return;
    json_t *out = json_object();
    if (json_object_size(attrs) > 0)
        json_object_set(out, "Attributes", attrs);
    json_decref(attrs);
    sqs_reply(c, out);
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
    sqs_call_prepare(c, q, in, sqs_got_queue_attributes);
    queue_put(q);
    sqs_call_run(c, qbackend_of(q)->counts);
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

static void sqs_purged(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    if (call->rc < 0)
        sqs_reply_errno(c, call->rc);
    else
        sqs_reply_durable(c, call->q, call->pos, NULL);
    sqs_call_release(c);
}

static void sqs_act_purge_queue(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    sqs_call_prepare(c, q, in, sqs_purged);
    queue_put(q);
    sqs_call_run(c, qbackend_of(q)->purge);
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

/* The success entry of a message to send, without its MessageId. */
static json_t *sqs_sent_template(const struct queue_send *m)
{
    char md5[QMD5_HEX];
    qmd5_hex(m->body, m->body_len, md5);
    json_t *o = json_pack("{s:s}", "MD5OfMessageBody", md5);
    if (o && m->md5_attrs && m->md5_attrs[0])
        json_object_set_new(o, "MD5OfMessageAttributes", json_string(m->md5_attrs));
    return o;
}

/* Completes a success entry with what the send returned. */
static void sqs_sent_fill(const struct queue *q, json_t *o, const struct qcall_entry *e)
{
    char seqs[24];
    json_object_set_new(o, "MessageId", json_string(e->id));
    if (q->attrs.fifo) {
        snprintf(seqs, sizeof(seqs), "%020" PRIu64, e->seq);
        json_object_set_new(o, "SequenceNumber", json_string(seqs));
    }
}

static void sqs_sent(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    const struct qcall_entry *e = &call->e[0];
    if (e->rc < 0) {
        sqs_reply_errno(c, e->rc);
    } else {
        json_t *o = json_incref(json_array_get(c->call_aux, 0));
        sqs_sent_fill(call->q, o, e);
        sqs_reply_sent(c, call->q, e->pos, o);
    }
    sqs_call_release(c);
}

static void sqs_act_send_message(struct sqs_conn *c, json_t *in)
{
    struct queue_send m;
    char md5_attrs[QMD5_HEX], err[512], sha[SQS_SHA256_HEX];
    enum sqs_error e;
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    if (sqs_message_check(q, in, &m, md5_attrs, sha, &e, err, sizeof(err)) < 0) {
        sqs_reply_error(c, e, "%s", err);
        queue_put(q);
        return;
    }
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_sent);
    c->call_aux = json_array();
    json_array_append_new(c->call_aux, sqs_sent_template(&m));
    call->sends = &m;
    call->n = 1;
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->send);
    free((char *)m.attrs);
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

static void sqs_sent_batch(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    json_t *out = c->call_out;
    for (size_t i = 0; i < call->n; i++) {
        json_t *o = json_array_get(c->call_aux, i);
        const char *eid = json_string_value(json_object_get(o, "Id")), *msg;
        if (call->e[i].rc < 0) {
            enum sqs_error e = sqs_entry_error(call->e[i].rc, &msg);
            json_array_append_new(json_object_get(out, "Failed"), sqs_failed_json(eid, e, msg));
        } else {
            sqs_sent_fill(call->q, o, &call->e[i]);
            json_array_append(json_object_get(out, "Successful"), o);
        }
    }
    sqs_reply_sent(c, call->q, call->pos, json_incref(out));
    sqs_call_release(c);
}

static void sqs_act_send_message_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    size_t i, total = 0, n = 0;
    struct queue_send ms[QCALL_MAX];
    char md5s[QCALL_MAX][QMD5_HEX], shas[QCALL_MAX][SQS_SHA256_HEX];
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
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_sent_batch);
    c->call_out = sqs_batch_result();
    c->call_aux = json_array();
    json_array_foreach(entries, i, ent)
    {
        char err[512];
        enum sqs_error e;
        const char *eid = sqs_str(ent, "Id");
        if (sqs_message_check(q, ent, &ms[n], md5s[n], shas[n], &e, err, sizeof(err)) < 0) {
            json_array_append_new(json_object_get(c->call_out, "Failed"),
                                  sqs_failed_json(eid, e, err));
            continue;
        }
        json_t *o = sqs_sent_template(&ms[n]);
        json_object_set_new(o, "Id", json_string(eid));
        json_array_append_new(c->call_aux, o);
        n++;
    }
    call->sends = ms;
    call->n = n;
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->send);
    for (i = 0; i < n; i++)
        free((char *)ms[i].attrs);
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

static void sqs_recv_free(struct sqs_recv *r)
{
    if (r == NULL)
        return;
    json_decref(r->messages);
    json_decref(r->sys_names);
    free(r);
}

static void sqs_received(struct qcall *call);

/* Takes messages for the ReceiveMessage input `in` through q's backend;
 * sqs_received answers or parks. */
static void sqs_receive_start(struct sqs_conn *c, struct queue *q, json_t *in)
{
    int64_t max = json_integer_value(json_object_get(in, "MaxNumberOfMessages"));
    json_t *vis = json_object_get(in, "VisibilityTimeout");
    struct sqs_recv *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        sqs_unpark(c);
        c->state = SQS_READING;
        sqs_reply_error(c, SQS_ERR_INTERNAL, "out of memory");
        return;
    }
    r->messages = json_array();
    r->attr_names = json_object_get(in, "MessageAttributeNames");
    r->sys_names = json_array();
    json_array_extend(r->sys_names, json_object_get(in, "AttributeNames"));
    json_array_extend(r->sys_names, json_object_get(in, "MessageSystemAttributeNames"));
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_received);
    c->recv = r;
    call->max = max > 0 ? (unsigned)max : 1;
    call->vis_s = json_is_integer(vis) ? (uint32_t)json_integer_value(vis)
                                       : q->attrs.visibility_timeout_s;
    call->on_msg = sqs_recv_one;
    call->msg_arg = r;
    sqs_call_run(c, qbackend_of(q)->receive);
}

/* Answers, or parks c when nothing came and time is left. */
static void sqs_received(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    struct queue *q = call->q;
    json_t *in = c->call_req;
    int n = call->rc;
    if (n != 0 || c->recv_final) {
        sqs_unpark(c);
        c->state = SQS_READING;
        json_t *out = json_object();
        if (n > 0)
            json_object_set(out, "Messages", c->recv->messages);
        if (n < 0) {
            json_decref(out);
            sqs_reply_errno(c, n);
        } else {
            sqs_reply(c, out);
        }
        sqs_call_release(c);
        return;
    }
    call->q = NULL; /* q and in are ours now */
    c->call_req = NULL;
    sqs_call_release(c);
    if (c->wait_q == NULL) {
        sqs_park(c, q, in, c->recv_wait);
    } else {
        c->state = SQS_WAITING;
        if (queue_wait(q, &c->waiter) != 0 && ++c->recv_tries < 4)
            sqs_receive_start(c, q, in);
        /* else parked again; or messages keep going to others: the sweep wakes us */
    }
    queue_put(q);
    json_decref(in);
}

void sqs_receive_retry(struct sqs_conn *c, int final)
{
    if (c->state == SQS_CALLING) { /* its answer comes and knows to answer at all */
        c->recv_final |= final;
        return;
    }
    if (c->wait_q == NULL)
        return;
    c->recv_final = final || c->closing;
    c->recv_tries = 0;
    sqs_receive_start(c, c->wait_q, c->wait_req);
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
        sqs_names_ok(c, in, "MessageAttributeNames")) {
        c->recv_final = wait == 0 || c->closing;
        c->recv_wait = (double)wait;
        c->recv_tries = 0;
        sqs_receive_start(c, q, in);
    }
    queue_put(q);
}

/* ---- deleting, visibility ---- */

static void sqs_deleted(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    int rc = call->e[0].rc;
    if (rc == -EINVAL)
        sqs_reply_error(c, SQS_ERR_RECEIPT, "The input receipt handle \"%s\" is not a valid "
                        "receipt handle.", sqs_str(c->call_req, "ReceiptHandle"));
    else if (rc < 0)
        sqs_reply_errno(c, rc);
    else
        sqs_reply_durable(c, call->q, call->e[0].pos, NULL);
    sqs_call_release(c);
}

static void sqs_act_delete_message(struct sqs_conn *c, json_t *in)
{
    const char *receipt = sqs_str(in, "ReceiptHandle");
    if (receipt == NULL) {
        sqs_reply_error(c, SQS_ERR_MISSING, "The request must contain the parameter "
                        "ReceiptHandle.");
        return;
    }
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_deleted);
    call->receipts = &receipt;
    call->n = 1;
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->delete_msgs);
}

/* The answer of a batch whose entries' ids are c->call_aux (in the order
 * of the call's entries), after those refused before the call. */
static void sqs_batch_done(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    json_t *out = c->call_out;
    for (size_t i = 0; i < call->n; i++) {
        const char *eid = json_string_value(json_array_get(c->call_aux, i)), *msg;
        if (call->e[i].rc < 0) {
            enum sqs_error e = sqs_entry_error(call->e[i].rc, &msg);
            json_array_append_new(json_object_get(out, "Failed"), sqs_failed_json(eid, e, msg));
        } else {
            json_array_append_new(json_object_get(out, "Successful"),
                                  json_pack("{s:s}", "Id", eid));
        }
    }
    sqs_reply_durable(c, call->q, call->pos, json_incref(out));
    sqs_call_release(c);
}

static void sqs_act_delete_message_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    const char *receipts[QCALL_MAX];
    size_t i;
    if (entries == NULL) {
        queue_put(q);
        return;
    }
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_batch_done);
    c->call_out = sqs_batch_result();
    c->call_aux = json_array();
    json_array_foreach(entries, i, ent)
    {
        receipts[i] = sqs_str(ent, "ReceiptHandle");
        json_array_append_new(c->call_aux, json_string(sqs_str(ent, "Id")));
    }
    call->receipts = receipts;
    call->n = json_array_size(entries);
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->delete_msgs);
}

/* Checks one visibility change's input: 0 with *receipt and *timeout, or
 * -1 with the error and its message. */
static int sqs_visibility_check(json_t *in, const char **receipt, uint32_t *timeout,
                                enum sqs_error *e, char *err, size_t err_size)
{
    json_t *t = json_object_get(in, "VisibilityTimeout");
    *receipt = sqs_str(in, "ReceiptHandle");
    *e = SQS_ERR_MISSING;
    if (*receipt == NULL) {
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
    *timeout = (uint32_t)json_integer_value(t);
    return 0;
}

static void sqs_visibility_changed(struct qcall *call)
{
    struct sqs_conn *c = sqs_call_conn(call);
    int rc = call->e[0].rc;
    const char *msg = "";
    enum sqs_error e = sqs_entry_error(rc, &msg);
    if (rc == -EINVAL)
        sqs_reply_error(c, SQS_ERR_RECEIPT, "The input receipt handle \"%s\" is not a valid "
                        "receipt handle.", sqs_str(c->call_req, "ReceiptHandle"));
    else if (rc < 0)
        sqs_reply_error(c, e, "%s", msg);
    else
        sqs_reply(c, NULL);
    sqs_call_release(c);
}

static void sqs_act_change_visibility(struct sqs_conn *c, json_t *in)
{
    enum sqs_error e;
    char err[512];
    const char *receipt;
    uint32_t timeout;
    struct queue *q = sqs_queue_of(c, in);
    if (q == NULL)
        return;
    if (sqs_visibility_check(in, &receipt, &timeout, &e, err, sizeof(err)) < 0) {
        sqs_reply_error(c, e, "%s", err);
        queue_put(q);
        return;
    }
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_visibility_changed);
    call->receipts = &receipt;
    call->timeouts = &timeout;
    call->n = 1;
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->change_visibility);
}

static void sqs_act_change_visibility_batch(struct sqs_conn *c, json_t *in)
{
    struct queue *q = sqs_queue_of(c, in);
    json_t *entries = q ? sqs_batch_entries(c, in) : NULL, *ent;
    const char *receipts[QCALL_MAX];
    uint32_t timeouts[QCALL_MAX];
    size_t i, n = 0;
    if (entries == NULL) {
        queue_put(q);
        return;
    }
    struct qcall *call = sqs_call_prepare(c, q, in, sqs_batch_done);
    c->call_out = sqs_batch_result();
    c->call_aux = json_array();
    json_array_foreach(entries, i, ent)
    {
        enum sqs_error e;
        char err[512];
        const char *eid = sqs_str(ent, "Id");
        if (sqs_visibility_check(ent, &receipts[n], &timeouts[n], &e, err, sizeof(err)) < 0) {
            json_array_append_new(json_object_get(c->call_out, "Failed"),
                                  sqs_failed_json(eid, e, err));
            continue;
        }
        json_array_append_new(c->call_aux, json_string(eid));
        n++;
    }
    call->receipts = receipts;
    call->timeouts = timeouts;
    call->n = n;
    queue_put(q);
    sqs_call_run(c, qbackend_of(call->q)->change_visibility);
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

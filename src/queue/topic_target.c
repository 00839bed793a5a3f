/* topic_target: the `publish: TOPIC` route target (topic_target.h).
 *
 * The proxy reads the whole body first (needs_body), then start() runs on
 * the worker: the request body is the message body (base64 when it holds
 * characters SQS does not allow, said by the attribute
 * weir.body-encoding), and each request header `X-Message-Attribute-NAME:
 * VALUE` becomes the String attribute NAME (what subscription filters
 * look at; at most 10, as SQS allows). The answer is 202 {"MessageId":
 * "..."} once the message is durable in every subscribed queue and push
 * outbox (under fsync always the worker waits for one fdatasync, as the
 * `queue` target does); 400 for bad attributes, 413 when it is larger than
 * a subscribed queue takes, 503 when the log cannot take it. */
#include "queue/topic_target.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/txn.h"
#include "queue/qmd5.h"
#include "queue/queue_metrics.h"
#include "queue/queue_target.h"
#include "queue/sqs.h"
#include "queue/sqs_internal.h"
#include "queue/topic.h"
#include "server/config.h"
#include "server/server.h"

#define TOPIC_ATTR_HEADER "x-message-attribute-"

struct topic_target_cfg {
    char *name;
    const struct cfg_topic *topic; /* in the same struct cfg (resolve) */
    struct cfg_mark mark;
};

static int topic_target_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct topic_target_cfg *tt = cfg_calloc_fn(1, sizeof(*tt));
    const char *s;
    if (tt == NULL)
        return cfg_nomem(ctx);
    *out = tt;
    int rc = cfg_text(ctx, v, "'publish'", &s);
    if (rc < 0)
        return rc;
    tt->mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &tt->name);
}

static int topic_target_resolve(struct cfg_ctx *ctx, const struct cfg *cfg, void *target_cfg)
{
    struct topic_target_cfg *tt = target_cfg;
    char q[CFG_QUOTE_SIZE];
    if ((tt->topic = topic_cfg_find(cfg, tt->name)) == NULL)
        return cfg_fail_mark(ctx, tt->mark,
                             "route publishes to topic %s which is not defined in "
                             "'topics'",
                             cfg_quote(tt->name, q));
    return 0;
}

static void topic_target_free(void *target_cfg)
{
    struct topic_target_cfg *tt = target_cfg;
    if (tt == NULL)
        return;
    free(tt->name);
    free(tt);
}

static int topic_target_attr(json_t *attrs, const char *name, size_t name_len, const char *value,
                             size_t value_len)
{
    json_t *a = json_pack("{s:s, s:s%}", "DataType", "String", "StringValue", value, value_len);
    char key[256];
    if (a == NULL || name_len >= sizeof(key)) {
        json_decref(a);
        return -EINVAL;
    }
    memcpy(key, name, name_len);
    key[name_len] = 0;
    return json_object_set_new(attrs, key, a) == 0 ? 0 : -ENOMEM;
}

/* The message attributes from X-Message-Attribute-* fields; NULL when
 * memory is short or a name is too long. */
static json_t *topic_target_attrs(const struct http_msg *req)
{
    json_t *attrs = json_object();
    size_t plen = sizeof(TOPIC_ATTR_HEADER) - 1;
    for (size_t i = 0; attrs && i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len <= plen || strncasecmp(h->name.p, TOPIC_ATTR_HEADER, plen) != 0)
            continue;
        if (topic_target_attr(attrs, h->name.p + plen, h->name.len - plen, h->value.p,
                              h->value.len) < 0) {
            json_decref(attrs);
            attrs = NULL;
        }
    }
    return attrs;
}

/* The body as a message body: as is, or its base64 (then *encoded). */
static char *topic_target_body(const char *body, size_t len, size_t *out_len, int *encoded)
{
    *encoded = !sqs_body_ok(body ? body : "", len);
    size_t n = *encoded ? (len + 2) / 3 * 4 : len;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    if (*encoded)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)body, (int)len);
    else if (len)
        memcpy(out, body, len);
    out[n] = 0;
    *out_len = n;
    return out;
}

/* Publishes; returns the HTTP status, with *what (an error) or id filled. */
static int topic_target_publish(struct txn *t, const struct topic_target_cfg *tt, struct qbroker *b,
                                const char **what, char *id)
{
    size_t req_len, body_len = 0;
    int encoded;
    char md5[QMD5_HEX], err[256];
    struct topic_published out;
    const char *req_body = txn_request_body(t, &req_len);
    char *body = topic_target_body(req_body, req_len, &body_len, &encoded);
    json_t *attrs = topic_target_attrs(t->req);
    if (attrs && encoded)
        json_object_set_new(attrs, "weir.body-encoding",
                            json_pack("{s:s, s:s}", "DataType", "String", "StringValue", "base64"));
    struct topic_message m = {.body = body, .body_len = body_len, .md5_attrs = md5};
    int status = 202, rc = body && attrs ? 0 : -ENOMEM;
    if (rc == 0 && sqs_msg_attrs_check(attrs, &m.attr_bytes, md5, err, sizeof(err)) < 0) {
        *what = "bad X-Message-Attribute fields (at most 10, SQS's rules)";
        status = 400;
        goto out;
    }
    char *text = rc == 0 && md5[0] ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    m.attrs = md5[0] ? attrs : NULL;
    m.attrs_text = text;
    if (rc == 0)
        rc = topic_publish(b, tt->topic, &m, &out);
    if (rc == 0 && out.sync_pos)
        rc = qlog_sync(b->log, out.sync_pos);
    free(text);
    if (rc == -EMSGSIZE) {
        *what = "the request is larger than a subscribed queue's MaximumMessageSize";
        status = 413;
    } else if (rc < 0) {
        log_warn("route %s: topic %s did not take the request: %s", txn_route_name(t),
                 tt->topic->name, strerror(-rc));
        *what = rc == -ENOSPC ? "the queue's disk is full" : "the topic cannot take it now";
        status = 503;
    } else {
        memcpy(id, out.id, sizeof(out.id));
    }
out:
    json_decref(attrs);
    free(body);
    return status;
}

static void topic_target_start(struct txn *t, const void *target_cfg)
{
    const struct topic_target_cfg *tt = target_cfg;
    struct qbroker *b = sqs_snapshot_broker(t->wc->snap);
    const char *what = NULL;
    char id[QUEUE_ID_LEN + 1];
    if (b == NULL) {
        queue_target_answer(t, 503, "error", "the topic is not available");
        return;
    }
    int status = topic_target_publish(t, tt, b, &what, id);
    if (status == 202)
        queue_target_answer(t, 202, "MessageId", id);
    else
        queue_target_answer(t, status, "error", what);
}

const struct target_type target_publish = {
    .key = "publish",
    .kind = TARGET_PUBLISH,
    .parse = topic_target_parse,
    .resolve = topic_target_resolve,
    .free_cfg = topic_target_free,
    .start = topic_target_start,
    .needs_body = 1,
};

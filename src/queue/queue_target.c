/* queue_target: the `queue: NAME` route target (queue_target.h).
 *
 * The proxy reads the whole body first (needs_body, proxy.c CS_BODY), then
 * start() runs on the worker: the message body is the request body (base64
 * when it holds characters SQS does not allow, said by the attribute
 * weir.body-encoding), and three String attributes carry the rest:
 * weir.method, weir.target (path and query as sent), weir.headers (a JSON
 * array of [name, value] pairs, hop-by-hop fields left out). The answer is
 * 202 {"MessageId": "..."}; 413 when the message exceeds the queue's
 * MaximumMessageSize; 503 when the queue is gone or the log cannot take it.
 * Under fsync always the worker waits for the fdatasync before answering
 * (the proxy has no asynchronous target yet): it blocks the worker's loop
 * for that time. */
#include "queue/queue_target.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/txn.h"
#include "queue/qmd5.h"
#include "queue/queue.h"
#include "queue/sqs.h"
#include "queue/sqs_internal.h"
#include "server/config.h"
#include "server/server.h"

struct queue_target_cfg {
    char *name;
    struct cfg_mark mark;
};

static int queue_target_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct queue_target_cfg *qt = cfg_calloc_fn(1, sizeof(*qt));
    const char *s;
    if (qt == NULL)
        return cfg_nomem(ctx);
    *out = qt;
    int rc = cfg_text(ctx, v, "'queue'", &s);
    if (rc < 0)
        return rc;
    qt->mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &qt->name);
}

static int queue_target_resolve(struct cfg_ctx *ctx, const struct cfg *cfg, void *target_cfg)
{
    struct queue_target_cfg *qt = target_cfg;
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; i < cfg->n_queues; i++) {
        if (strcmp(cfg->queues[i].name, qt->name) != 0)
            continue;
        if (cfg->queues[i].attrs.fifo || strstr(qt->name, ".fifo"))
            return cfg_fail_mark(ctx, qt->mark, "a 'queue' target cannot send to FIFO queue %s "
                                 "(it has no message group to give)", cfg_quote(qt->name, q));
        if (cfg->queues[i].store)
            return cfg_fail_mark(ctx, qt->mark, "a 'queue' target cannot send to queue %s kept "
                                 "in store %s yet (local queues only)", cfg_quote(qt->name, q),
                                 cfg->queues[i].store);
        return 0;
    }
    return cfg_fail_mark(ctx, qt->mark, "route sends to queue %s which is not defined in "
                         "'queues'", cfg_quote(qt->name, q));
}

static void queue_target_free(void *target_cfg)
{
    struct queue_target_cfg *qt = target_cfg;
    if (qt == NULL)
        return;
    free(qt->name);
    free(qt);
}

void queue_target_answer(struct txn *t, int status, const char *key, const char *value)
{
    static const struct http_header ct = { { "Content-Type", 12 }, { "application/json", 16 } };
    json_t *j = json_pack("{s:s}", key, value);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    size_t n = text ? strlen(text) : 0;
    char *body = text ? txn_alloc(t, n + 1) : NULL;
    if (body)
        memcpy(body, text, n + 1);
    free(text);
    txn_respond(t, status, &ct, 1, body, body ? n : 0);
}

static int queue_target_attr(json_t *attrs, const char *name, json_t *value)
{
    return json_object_set_new(attrs, name, json_pack("{s:s, s:o}", "DataType", "String",
                                                      "StringValue", value));
}

/* The message attributes of the request: method, target, header fields. */
static json_t *queue_target_attrs(const struct http_msg *req)
{
    json_t *attrs = json_object(), *hdrs = json_array();
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->hop[i])
            continue;
        const struct http_header *h = &req->headers[i];
        json_array_append_new(hdrs, json_pack("[s%, s%]", h->name.p, h->name.len, h->value.p,
                                              h->value.len));
    }
    char *text = json_dumps(hdrs, JSON_COMPACT);
    json_decref(hdrs);
    if (attrs == NULL || text == NULL ||
        queue_target_attr(attrs, "weir.method",
                          json_stringn(req->method_str.p, req->method_str.len)) < 0 ||
        queue_target_attr(attrs, "weir.target", json_stringn(req->target.p, req->target.len)) <
            0 ||
        queue_target_attr(attrs, "weir.headers", json_string(text)) < 0) {
        free(text);
        json_decref(attrs);
        return NULL;
    }
    free(text);
    return attrs;
}

/* The message body: the request body, or its base64 (then *encoded = 1).
 * Returns malloc'd bytes (NUL-terminated) or NULL. */
static char *queue_target_body(const char *body, size_t len, size_t *out_len, int *encoded)
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

static void queue_target_start(struct txn *t, const void *target_cfg)
{
    const struct queue_target_cfg *qt = target_cfg;
    struct qbroker *b = sqs_snapshot_broker(t->wc->snap);
    struct queue *q = b ? qbroker_find(b, qt->name) : NULL;
    uint64_t start_ns = queue_metrics_now_ns();
    size_t req_len, body_len = 0, attr_bytes = 0;
    int encoded;
    char md5[QMD5_HEX], id[QUEUE_ID_LEN + 1], err[256];
    uint64_t seq, pos;
    if (q == NULL) {
        queue_target_answer(t, 503, "error", "the queue is not available");
        return;
    }
    const char *req_body = txn_request_body(t, &req_len);
    char *body = queue_target_body(req_body, req_len, &body_len, &encoded);
    json_t *attrs = queue_target_attrs(t->req);
    if (attrs && encoded)
        queue_target_attr(attrs, "weir.body-encoding", json_string("base64"));
    char *attrs_text = attrs ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc = body && attrs_text && sqs_msg_attrs_check(attrs, &attr_bytes, md5, err,
                                                       sizeof(err)) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && body_len + attr_bytes > q->attrs.max_message_bytes) {
        queue_target_answer(t, 413, "error", "the request is larger than the queue's "
                            "MaximumMessageSize");
        goto out;
    }
    struct queue_send m = { .body = body, .body_len = body_len, .attrs = attrs_text,
                            .attrs_len = attrs_text ? strlen(attrs_text) : 0, .md5_attrs = md5,
                            .delay_s = -1 };
    if (rc == 0)
        rc = queue_send(q, &m, id, &seq, &pos);
    if (rc == 0)
        rc = queue_durable(q, pos);
    if (rc < 0) {
        log_warn("route %s: queue %s did not take the request: %s", txn_route_name(t), q->name,
                 strerror(-rc));
        queue_target_answer(t, 503, "error", rc == -ENOSPC ? "the queue's disk is full"
                                                             : "the queue cannot take it now");
        goto out;
    }
    queue_metrics_send_done(q, start_ns);
    queue_target_answer(t, 202, "MessageId", id);
out:
    free(attrs_text);
    json_decref(attrs);
    free(body);
    queue_put(q);
}

const struct target_type target_queue = {
    .key = "queue",
    .kind = TARGET_QUEUE,
    .parse = queue_target_parse,
    .resolve = queue_target_resolve,
    .free_cfg = queue_target_free,
    .start = queue_target_start,
    .needs_body = 1,
};

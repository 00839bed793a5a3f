/* forward_auth: asks an authorisation service about each request, as
 * nginx's auth_request, Traefik's ForwardAuth and Envoy's ext_authz do.
 *
 *   forward_auth: { cluster: auth, path: /verify, copy_headers: [X-User],
 *                   timeout: 1s, on_error: deny }
 *
 *   request head --(GET path, the client's fields, X-Forwarded-*)--> auth
 *     2xx   -> the request goes on, with copy_headers taken from the answer
 *     other -> that answer (status, fields, body) goes to the client
 *     no answer in time / unreachable / invalid -> 504 / 502
 *              (on_error: allow lets the request through instead)
 *
 * The step WAITs while the service answers; the request's head is kept by
 * the transaction meanwhile. A client that goes away cancels the question. */
#include "http/steps/forward_auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/http_write.h"
#include "http/subreq.h"
#include "http/txn.h"
#include "server/config.h"

#define FA_MAX_COPY 32

struct fa_cfg {
    char *cluster_name;
    struct cfg_mark cluster_mark;
    struct cfg_cluster *cluster;   /* resolved */
    char *path;
    struct http_slice *copy;       /* copy_headers */
    size_t n_copy;
    uint64_t timeout_ms;
    int allow_on_error;
};

struct fa_state {
    struct subreq *sr;
    struct txn *t;
    const struct fa_cfg *cfg;
};

/* ---- configuration ---- */

static int fa_parse_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct fa_cfg *fc = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'cluster'", &s);
    if (rc < 0)
        return rc;
    fc->cluster_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &fc->cluster_name);
}

static int fa_parse_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct fa_cfg *fc = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'path'", &s);
    if (rc < 0)
        return rc;
    if (s[0] != '/')
        return cfg_fail(ctx, v, "'path' must start with '/'");
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '#')
            return cfg_fail(ctx, v, "'path' must not contain spaces, '#' or control characters");
    return cfg_strdup(ctx, s, &fc->path);
}

static int fa_parse_copy_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct fa_cfg *fc = obj;
    const char *name;
    char q[CFG_QUOTE_SIZE], *dup;
    int rc = cfg_text(ctx, v, "a header name", &name);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(name) || http_edit_reserved(name, strlen(name)))
        return cfg_fail(ctx, v, "%s cannot be copied into a request", cfg_quote(name, q));
    if ((rc = cfg_strdup(ctx, name, &dup)) < 0)
        return rc;
    fc->copy[i] = (struct http_slice){ dup, strlen(dup) };
    return 0;
}

static int fa_parse_copy(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct fa_cfg *fc = obj;
    void *items;
    static const struct cfg_list list = { "'copy_headers'", "header name",
                                          sizeof(struct http_slice), FA_MAX_COPY };
    int rc = cfg_list_new(ctx, v, &list, &items, &fc->n_copy);
    if (rc < 0)
        return rc;
    fc->copy = items;
    return cfg_list_each(ctx, v, fa_parse_copy_item, fc);
}

static int fa_parse_on_error(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "deny", "allow" };
    return cfg_parse_enum(ctx, v, "'on_error'", names, 2, &((struct fa_cfg *)obj)->allow_on_error);
}

static const struct cfg_key fa_keys[] = {
    CFG_FUNC("cluster", fa_parse_cluster, true),
    CFG_FUNC("path", fa_parse_path, false),
    CFG_FUNC("copy_headers", fa_parse_copy, false),
    CFG_FIELD("timeout", CFG_KIND_DURATION, struct fa_cfg, timeout_ms, 1, CFG_MAX_DURATION_MS),
    CFG_FUNC("on_error", fa_parse_on_error, false),
};
CFG_MAP_DEFINE(fa_map, "forward_auth", fa_keys);

static int fa_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct fa_cfg *fc = cfg_calloc_fn(1, sizeof(*fc));
    if (fc == NULL)
        return cfg_nomem(ctx);
    *out = fc;
    fc->timeout_ms = 1000;
    int rc = cfg_parse_map(ctx, v, &fa_map, fc, NULL);
    if (rc == 0 && fc->path == NULL)
        rc = cfg_strdup(ctx, "/", &fc->path);
    return rc;
}

static int fa_resolve(struct cfg_ctx *ctx, const struct cfg *cfg, void *p)
{
    struct fa_cfg *fc = p;
    char q[CFG_QUOTE_SIZE];
    fc->cluster = cfg_find_cluster(cfg, fc->cluster_name);
    if (fc->cluster == NULL)
        return cfg_fail_mark(ctx, fc->cluster_mark, "forward_auth names cluster %s which is not "
                             "defined", cfg_quote(fc->cluster_name, q));
    return 0;
}

static void fa_free(void *p)
{
    struct fa_cfg *fc = p;
    for (size_t i = 0; i < fc->n_copy; i++)
        free((char *)fc->copy[i].p);
    free(fc->copy);
    free(fc->cluster_name);
    free(fc->path);
    free(fc);
}

/* ---- per request ---- */

/* Fields weir writes itself on the question, or that describe a body the
 * question does not carry. */
static int fa_skip_field(struct http_slice name)
{
    static const char *const names[] = { "host", "x-forwarded-for", "x-forwarded-proto",
                                         "x-forwarded-host", "x-forwarded-method",
                                         "x-forwarded-uri", "expect", "x-request-id" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (http_slice_eq_nocase(name, names[i]))
            return 1;
    return 0;
}

static void fa_field_slice(struct http_out *o, struct http_slice name, struct http_slice v)
{
    http_out_slice(o, name);
    http_out_lit(o, ": ", 2);
    http_out_slice(o, v);
    http_out_lit(o, "\r\n", 2);
}

static void fa_field(struct http_out *o, const char *name, struct http_slice v)
{
    fa_field_slice(o, (struct http_slice){ name, strlen(name) }, v);
}

/* Writes the question's head. Returns its length, or -ENOSPC. */
static int fa_write_head(struct txn *t, const struct fa_cfg *fc, char *dst, size_t cap)
{
    const struct http_msg *m = t->req;
    struct http_out o = { dst, 0, cap, 0 };
    http_out_lit(&o, "GET ", 4);
    http_out_str(&o, fc->path);
    http_out_lit(&o, " HTTP/1.1\r\n", 11);
    fa_field(&o, "Host", m->host);
    for (size_t i = 0; i < m->n_headers; i++)
        if (!m->hop[i] && !fa_skip_field(m->headers[i].name))
            fa_field_slice(&o, m->headers[i].name, m->headers[i].value);
    const char *ip = txn_client_ip(t), *id = txn_request_id(t);
    fa_field(&o, "X-Forwarded-For", (struct http_slice){ ip, strlen(ip) });
    fa_field(&o, "X-Forwarded-Proto", (struct http_slice){ "http", 4 });
    fa_field(&o, "X-Forwarded-Host", m->host);
    fa_field(&o, "X-Forwarded-Method", m->method_str);
    fa_field(&o, "X-Forwarded-Uri", m->target);
    fa_field(&o, "X-Request-Id", (struct http_slice){ id, strlen(id) });
    http_out_lit(&o, "\r\n", 2);
    return o.overflow ? -ENOSPC : (int)o.len;
}

/* The service said yes: copy the named fields into the request. */
static enum step_result fa_allow(struct fa_state *st, const struct http_msg *h)
{
    const struct fa_cfg *fc = st->cfg;
    for (size_t i = 0; i < fc->n_copy; i++) {
        int k = http_msg_find(h, fc->copy[i].p);
        if (k < 0) {
            /* a client must not be able to forge what the service did not say */
            http_edit_remove(st->t->req, fc->copy[i].p, fc->copy[i].len);
            continue;
        }
        struct http_slice v = txn_copy(st->t, h->headers[k].value.p, h->headers[k].value.len);
        if (v.p == NULL || http_edit_set(st->t->req, fc->copy[i], v) != 0)
            return STEP_ERROR;
    }
    return STEP_NEXT;
}

/* The service said no: its answer goes to the client. */
static enum step_result fa_deny(struct fa_state *st, const struct subreq_result *r)
{
    const struct http_msg *h = r->head;
    struct txn *t = st->t;
    struct http_header *fields = (struct http_header *)txn_alloc(t, h->n_headers * sizeof(*fields) + 1);
    struct http_slice body = txn_copy(t, r->body, r->body_len);
    if (fields == NULL || body.p == NULL)
        return STEP_ERROR;
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++) {
        if (h->hop[i])
            continue;
        fields[n].name = txn_copy(t, h->headers[i].name.p, h->headers[i].name.len);
        fields[n].value = txn_copy(t, h->headers[i].value.p, h->headers[i].value.len);
        if (fields[n].name.p == NULL || fields[n].value.p == NULL)
            return STEP_ERROR;
        n++;
    }
    txn_respond(t, h->status, fields, n, body.p, body.len);
    return STEP_RESPOND;
}

static enum step_result fa_failed(struct fa_state *st, enum subreq_error err, const char *ep)
{
    static const char *const what[] = { "ok", "no endpoint is up", "cannot connect",
                                        "no answer in time", "an invalid answer" };
    const struct fa_cfg *fc = st->cfg;
    log_warn("route %s: forward_auth to cluster %s%s%s: %s; %s", txn_route_name(st->t),
             fc->cluster->name, ep ? " endpoint " : "", ep ? ep : "", what[err],
             fc->allow_on_error ? "letting the request through (on_error: allow)"
                                : "refusing the request (on_error: deny)");
    if (fc->allow_on_error)
        return STEP_NEXT;
    int status = err == SUBREQ_TIMEOUT ? 504 : err == SUBREQ_NO_ENDPOINT ? 503 : 502;
    txn_respond(st->t, status, NULL, 0, NULL, 0);
    return STEP_RESPOND;
}

static void fa_done(void *arg, const struct subreq_result *r)
{
    struct fa_state *st = arg;
    st->sr = NULL; /* it frees itself after this call */
    enum step_result res;
    if (r->error != SUBREQ_OK)
        res = fa_failed(st, r->error, r->endpoint);
    else if (r->head->status >= 200 && r->head->status < 300)
        res = fa_allow(st, r->head);
    else
        res = fa_deny(st, r);
    if (res == STEP_ERROR)
        log_warn("route %s: forward_auth answer too large to keep", txn_route_name(st->t));
    txn_resume(st->t, res);
}

static enum step_result fa_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct fa_cfg *fc = cfg;
    struct fa_state *st = state;
    struct buf_pool *bp = txn_buf_pool(t);
    char *head = txn_alloc(t, bp->block_size / 2);
    if (head == NULL)
        return STEP_ERROR;
    int n = fa_write_head(t, fc, head, bp->block_size / 2);
    if (n < 0) {
        log_warn("route %s: request head too large for forward_auth", txn_route_name(t));
        return STEP_ERROR;
    }
    struct subreq_params p = {
        .loop = txn_loop(t),
        .pool = txn_upstream_pool(t),
        .bufs = bp,
        .cluster = txn_cluster(t, fc->cluster),
        .worker_id = txn_worker_id(t),
        .timeout_ms = fc->timeout_ms,
    };
    st->t = t;
    st->cfg = fc;
    st->sr = subreq_start(&p, head, (size_t)n, fa_done, st);
    if (st->sr == NULL)
        return fa_failed(st, SUBREQ_CONNECT, NULL);
    return STEP_WAIT;
}

static void fa_cancel(struct txn *t, const void *cfg, void *state)
{
    struct fa_state *st = state;
    if (st->sr) {
        subreq_cancel(st->sr);
        st->sr = NULL;
    }
}

const struct step_type step_forward_auth = {
    .key = "forward_auth",
    .phase = STEP_PHASE_AUTH,
    .parse = fa_parse,
    .resolve = fa_resolve,
    .free_cfg = fa_free,
    .state_size = sizeof(struct fa_state),
    .on_request = fa_on_request,
    .cancel = fa_cancel,
};

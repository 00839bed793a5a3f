/* respond: answers made by weir from the configuration.
 *
 *   respond:  { status: 503, body: "back soon\n", headers: {Content-Type: text/plain} }
 *   redirect: { to: https://example.com, status: 301, keep_path: true, keep_query: true }
 *
 * A respond body is the configuration's own bytes, streamed to the client
 * (no copy per request). A redirect's Location is built per request in the
 * transaction's arena: `to`, then the request's path when keep_path, then
 * "?query" when keep_query (default: as keep_path). */
#include "http/steps/respond.h"

#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "http/steps/headers.h"
#include "http/txn.h"

#define RESPOND_MAX_BODY (1u << 20)

struct respond_cfg {
    uint32_t status;
    char *body;
    size_t body_len;
    struct http_header *headers;
    size_t n_headers;
};

static int respond_parse_body(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct respond_cfg *rc = obj;
    const char *s;
    int r = cfg_scalar(ctx, v, "'body'", &s);
    if (r < 0)
        return r;
    size_t len = v->data.scalar.length;
    if (len > RESPOND_MAX_BODY)
        return cfg_fail(ctx, v, "'body' is %zu bytes (at most %u)", len, RESPOND_MAX_BODY);
    if ((rc->body = cfg_calloc_fn(1, len + 1)) == NULL)
        return cfg_nomem(ctx);
    memcpy(rc->body, s, len);
    rc->body_len = len;
    return 0;
}

static int respond_parse_headers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct respond_cfg *rc = obj;
    return headers_cfg_parse_fields(ctx, v, "'headers'", &rc->headers, &rc->n_headers);
}

static const struct cfg_key respond_keys[] = {
    CFG_FIELD("status", CFG_KIND_UINT, struct respond_cfg, status, 200, 599),
    CFG_FUNC("body", respond_parse_body, false),
    CFG_FUNC("headers", respond_parse_headers, false),
};
CFG_MAP_DEFINE(respond_map, "respond", respond_keys);

static int respond_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct respond_cfg *rc = cfg_calloc_fn(1, sizeof(*rc));
    if (rc == NULL)
        return cfg_nomem(ctx);
    *out = rc;
    rc->status = 200;
    return cfg_parse_map(ctx, v, &respond_map, rc, NULL);
}

static void respond_free(void *p)
{
    struct respond_cfg *rc = p;
    headers_cfg_free_fields(rc->headers, rc->n_headers);
    free(rc->body);
    free(rc);
}

static void respond_start(struct txn *t, const void *cfg)
{
    const struct respond_cfg *rc = cfg;
    txn_respond(t, (int)rc->status, rc->headers, rc->n_headers, rc->body, rc->body_len);
}

const struct target_type target_respond = {
    .key = "respond",
    .kind = TARGET_RESPOND,
    .parse = respond_parse,
    .free_cfg = respond_free,
    .start = respond_start,
};

/* ---- redirect ---- */

struct redirect_cfg {
    char *to;
    uint32_t status;
    int keep_path;
    int keep_query;                /* -1: as keep_path */
};

static int redirect_parse_to(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct redirect_cfg *rc = obj;
    const char *s;
    int r = cfg_text(ctx, v, "'to'", &s);
    if (r < 0)
        return r;
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cfg_fail(ctx, v, "'to' must be a URL without spaces or control characters");
    if (s[0] != '/' && !strstr(s, "://"))
        return cfg_fail(ctx, v, "'to' must be an absolute URL (https://host/path) or a path "
                                "starting with '/'");
    return cfg_strdup(ctx, s, &rc->to);
}

static int redirect_parse_status(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct redirect_cfg *rc = obj;
    static const char *const names[] = { "301", "302", "303", "307", "308" };
    static const uint32_t codes[] = { 301, 302, 303, 307, 308 };
    int i;
    int r = cfg_parse_enum(ctx, v, "'status'", names, CFG_ARRAY_SIZE(names), &i);
    if (r < 0)
        return r;
    rc->status = codes[i];
    return 0;
}

static int redirect_parse_keep_path(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'keep_path'", &((struct redirect_cfg *)obj)->keep_path);
}

static int redirect_parse_keep_query(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'keep_query'", &((struct redirect_cfg *)obj)->keep_query);
}

static const struct cfg_key redirect_keys[] = {
    CFG_FUNC("to", redirect_parse_to, true),
    CFG_FUNC("status", redirect_parse_status, false),
    CFG_FUNC("keep_path", redirect_parse_keep_path, false),
    CFG_FUNC("keep_query", redirect_parse_keep_query, false),
};
CFG_MAP_DEFINE(redirect_map, "redirect", redirect_keys);

static int redirect_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct redirect_cfg *rc = cfg_calloc_fn(1, sizeof(*rc));
    if (rc == NULL)
        return cfg_nomem(ctx);
    *out = rc;
    rc->status = 302;
    rc->keep_query = -1;
    int r = cfg_parse_map(ctx, v, &redirect_map, rc, NULL);
    if (r == 0 && rc->keep_query == -1)
        rc->keep_query = rc->keep_path;
    return r;
}

static void redirect_free(void *p)
{
    struct redirect_cfg *rc = p;
    free(rc->to);
    free(rc);
}

static void redirect_start(struct txn *t, const void *cfg)
{
    const struct redirect_cfg *rc = cfg;
    const struct http_msg *req = t->req;
    size_t to_len = strlen(rc->to);
    int query = rc->keep_query && req->query.len > 0;
    size_t cap = to_len + (rc->keep_path ? req->path.len : 0) + (query ? req->query.len + 1 : 0);
    struct http_header *h = (struct http_header *)txn_alloc(t, sizeof(*h));
    char *loc = txn_alloc(t, cap ? cap : 1);
    if (h == NULL || loc == NULL) {
        txn_respond(t, 500, NULL, 0, NULL, 0);
        return;
    }
    size_t n = to_len;
    memcpy(loc, rc->to, to_len);
    if (rc->keep_path) {
        size_t skip = n > 0 && loc[n - 1] == '/' && req->path.len > 0 && req->path.p[0] == '/';
        memcpy(loc + n - skip, req->path.p, req->path.len);
        n += req->path.len - skip;
    }
    if (query) {
        loc[n++] = '?';
        memcpy(loc + n, req->query.p, req->query.len);
        n += req->query.len;
    }
    h->name = (struct http_slice){ "Location", 8 };
    h->value = (struct http_slice){ loc, n };
    txn_respond(t, (int)rc->status, h, 1, NULL, 0);
}

const struct target_type target_redirect = {
    .key = "redirect",
    .kind = TARGET_REDIRECT,
    .parse = redirect_parse,
    .free_cfg = redirect_free,
    .start = redirect_start,
};

/* headers: edits the request head before it is forwarded and the response
 * head before it reaches the client.
 *
 *   headers:
 *     request:  { set: {X-Env: prod}, add: {X-Via: weir}, remove: [X-Debug] }
 *     response: { set: {...}, add: {...}, remove: [Server] }
 *
 * Order within one side: remove, then set, then add. A value may name
 * variables, expanded per request into the transaction's arena:
 * ${client_ip}, ${request_id}, ${route}, ${listener}; "$${" writes "${".
 * Values without variables are the configuration's own bytes: nothing is
 * copied. Fields weir frames itself (Content-Length, Transfer-Encoding,
 * Connection, Host, ...) cannot be named: that is a configuration error. */
#include "http/steps/headers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/txn.h"

#define HEADERS_MAX_FIELDS 64

#define HEADERS_VAR_LIST(X) \
    X(HEADERS_VAR_CLIENT_IP, "client_ip") \
    X(HEADERS_VAR_REQUEST_ID, "request_id") \
    X(HEADERS_VAR_ROUTE, "route") \
    X(HEADERS_VAR_LISTENER, "listener")
#define HEADERS_ENUM(e, s) e,
enum headers_var { HEADERS_VAR_LIST(HEADERS_ENUM) HEADERS_VAR_COUNT };
#undef HEADERS_ENUM
#define HEADERS_NAME(e, s) s,
static const char *const headers_var_names[] = { HEADERS_VAR_LIST(HEADERS_NAME) };
#undef HEADERS_NAME

struct headers_field {
    struct http_slice name, value;
    int has_vars;
};

struct headers_side {
    struct headers_field *set, *add;
    size_t n_set, n_add;
    struct http_slice *remove;
    size_t n_remove;
};

struct headers_cfg {
    struct headers_side request, response;
};

/* ---- configuration ---- */

/* Checks the ${...} of a value. Returns 1 when it has variables, 0 when
 * not, or negative with ctx's error set. */
static int headers_check_vars(struct cfg_ctx *ctx, yaml_node_t *v, const char *s)
{
    int has = 0;
    for (const char *p = s; (p = strchr(p, '$')) != NULL; p++) {
        if (p[1] == '$' && p[2] == '{') {
            has = 1;
            p += 2;
            continue;
        }
        if (p[1] != '{')
            continue;
        const char *end = strchr(p, '}');
        size_t k = 0, len = end ? (size_t)(end - p - 2) : 0;
        while (end && k < HEADERS_VAR_COUNT &&
               !(strlen(headers_var_names[k]) == len && memcmp(p + 2, headers_var_names[k], len) == 0))
            k++;
        if (!end || k == HEADERS_VAR_COUNT)
            return cfg_fail(ctx, v, "unknown variable in header value '%s' (expected ${client_ip}, "
                                    "${request_id}, ${route} or ${listener}; $${ writes ${)", s);
        has = 1;
    }
    return has;
}

int headers_cfg_parse_fields(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                             struct http_header **out, size_t *n)
{
    int rc = cfg_expect(ctx, v, YAML_MAPPING_NODE, what);
    if (rc < 0)
        return rc;
    size_t count = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (count > HEADERS_MAX_FIELDS)
        return cfg_fail(ctx, v, "%s has %zu fields (at most %d)", what, count, HEADERS_MAX_FIELDS);
    struct http_header *f = cfg_calloc_fn(count ? count : 1, sizeof(*f));
    if (f == NULL)
        return cfg_nomem(ctx);
    *out = f;
    *n = 0;
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
        yaml_node_t *k = cfg_node(ctx, p->key), *val = cfg_node(ctx, p->value);
        const char *name, *value;
        char *dup;
        if ((rc = cfg_visit(ctx, val)) < 0 || (rc = cfg_text(ctx, k, "a header name", &name)) < 0)
            return rc;
        if (!cfg_is_token(name))
            return cfg_fail(ctx, k, "bad header name %s", cfg_quote(name, q));
        if (http_edit_reserved(name, strlen(name)))
            return cfg_fail(ctx, k, "%s is framed by weir itself and cannot be set here",
                            cfg_quote(name, q));
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(f[j].name.p, name) == 0)
                return cfg_fail(ctx, k, "duplicate header %s in %s", cfg_quote(name, q), what);
        if ((rc = cfg_scalar(ctx, val, "a header value", &value)) < 0)
            return rc;
        for (const char *c = value; *c != '\0'; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return cfg_fail(ctx, val, "header value %s contains a control character",
                                cfg_quote(value, q));
        if ((rc = cfg_strdup(ctx, name, &dup)) < 0)
            return rc;
        f[i].name = (struct http_slice){ dup, strlen(dup) };
        (*n)++;
        if ((rc = cfg_strdup(ctx, value, &dup)) < 0)
            return rc;
        f[i].value = (struct http_slice){ dup, strlen(dup) };
    }
    return 0;
}

void headers_cfg_free_fields(struct http_header *fields, size_t n)
{
    if (fields == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)fields[i].name.p);
        free((char *)fields[i].value.p);
    }
    free(fields);
}

static int headers_parse_values(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                                struct headers_field **out, size_t *n)
{
    struct http_header *fields = NULL;
    size_t count = 0;
    int rc = headers_cfg_parse_fields(ctx, v, what, &fields, &count);
    struct headers_field *hf = rc == 0 ? cfg_calloc_fn(count ? count : 1, sizeof(*hf)) : NULL;
    if (rc == 0 && hf == NULL)
        rc = cfg_nomem(ctx);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        yaml_node_t *val = cfg_node(ctx, v->data.mapping.pairs.start[i].value);
        int has = headers_check_vars(ctx, val, fields[i].value.p);
        if (has < 0)
            rc = has;
        hf[i] = (struct headers_field){ fields[i].name, fields[i].value, has > 0 };
    }
    if (rc < 0) {
        headers_cfg_free_fields(fields, count);
        free(hf);
        return rc;
    }
    free(fields); /* the strings now belong to hf */
    *out = hf;
    *n = count;
    return 0;
}

static int headers_parse_set(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct headers_side *side = obj;
    return headers_parse_values(ctx, v, "'set'", &side->set, &side->n_set);
}

static int headers_parse_add(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct headers_side *side = obj;
    return headers_parse_values(ctx, v, "'add'", &side->add, &side->n_add);
}

static int headers_parse_remove_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct headers_side *side = obj;
    const char *name;
    char q[CFG_QUOTE_SIZE], *dup;
    int rc = cfg_text(ctx, v, "a header name", &name);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(name))
        return cfg_fail(ctx, v, "bad header name %s", cfg_quote(name, q));
    if (http_edit_reserved(name, strlen(name)))
        return cfg_fail(ctx, v, "%s is framed by weir itself and cannot be removed",
                        cfg_quote(name, q));
    if ((rc = cfg_strdup(ctx, name, &dup)) < 0)
        return rc;
    side->remove[i] = (struct http_slice){ dup, strlen(dup) };
    return 0;
}

static int headers_parse_remove(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct headers_side *side = obj;
    void *items;
    static const struct cfg_list list = { "'remove'", "header name", sizeof(struct http_slice),
                                          HEADERS_MAX_FIELDS };
    int rc = cfg_list_new(ctx, v, &list, &items, &side->n_remove);
    if (rc < 0)
        return rc;
    side->remove = items;
    return cfg_list_each(ctx, v, headers_parse_remove_item, side);
}

static const struct cfg_key headers_side_keys[] = {
    CFG_FUNC("set", headers_parse_set, false),
    CFG_FUNC("add", headers_parse_add, false),
    CFG_FUNC("remove", headers_parse_remove, false),
};
CFG_MAP_DEFINE(headers_side_map, "headers request/response", headers_side_keys);

static int headers_parse_request(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &headers_side_map, &((struct headers_cfg *)obj)->request, NULL);
}

static int headers_parse_response(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &headers_side_map, &((struct headers_cfg *)obj)->response, NULL);
}

static const struct cfg_key headers_keys[] = {
    CFG_FUNC("request", headers_parse_request, false),
    CFG_FUNC("response", headers_parse_response, false),
};
CFG_MAP_DEFINE(headers_map, "headers", headers_keys);

static int headers_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct headers_cfg *hc = cfg_calloc_fn(1, sizeof(*hc));
    if (hc == NULL)
        return cfg_nomem(ctx);
    *out = hc;
    return cfg_parse_map(ctx, v, &headers_map, hc, NULL);
}

static void headers_free_side(struct headers_side *s)
{
    for (size_t i = 0; i < s->n_set; i++) {
        free((char *)s->set[i].name.p);
        free((char *)s->set[i].value.p);
    }
    for (size_t i = 0; i < s->n_add; i++) {
        free((char *)s->add[i].name.p);
        free((char *)s->add[i].value.p);
    }
    for (size_t i = 0; i < s->n_remove; i++)
        free((char *)s->remove[i].p);
    free(s->set);
    free(s->add);
    free(s->remove);
}

static void headers_free(void *p)
{
    struct headers_cfg *hc = p;
    headers_free_side(&hc->request);
    headers_free_side(&hc->response);
    free(hc);
}

/* ---- per request ---- */

static const char *headers_var_value(const struct txn *t, size_t k)
{
    switch (k) {
    case HEADERS_VAR_CLIENT_IP:
        return txn_client_ip(t);
    case HEADERS_VAR_REQUEST_ID:
        return txn_request_id(t);
    case HEADERS_VAR_ROUTE:
        return txn_route_name(t);
    default:
        return txn_listener_name(t);
    }
}

/* Expands the variables of f's value into the arena (the value itself
 * when it has none). A slice with p NULL: the arena is full. */
static struct http_slice headers_expand(struct txn *t, const struct headers_field *f)
{
    if (!f->has_vars)
        return f->value;
    char tmp[1024];
    size_t n = 0;
    const char *s = f->value.p;
    while (*s && n < sizeof(tmp)) {
        if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
            s++; /* "$${" -> "${" */
        } else if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s, '}');
            size_t len = (size_t)(end - s - 2), k = 0;
            while (strlen(headers_var_names[k]) != len || memcmp(s + 2, headers_var_names[k], len))
                k++; /* known to be there: checked at load */
            const char *val = headers_var_value(t, k);
            size_t vl = strlen(val);
            if (vl > sizeof(tmp) - n)
                vl = sizeof(tmp) - n;
            memcpy(tmp + n, val, vl);
            n += vl;
            s = end + 1;
            continue;
        }
        tmp[n++] = *s++;
    }
    return txn_copy(t, tmp, n);
}

/* Applies one side's edits to msg. Returns 0 or -ENOSPC (fields or arena full). */
static int headers_apply(struct txn *t, const struct headers_side *side, struct http_msg *msg)
{
    for (size_t i = 0; i < side->n_remove; i++)
        http_edit_remove(msg, side->remove[i].p, side->remove[i].len);
    for (size_t i = 0; i < side->n_set; i++) {
        struct http_slice v = headers_expand(t, &side->set[i]);
        if (v.p == NULL || http_edit_set(msg, side->set[i].name, v) != 0)
            return -ENOSPC;
    }
    for (size_t i = 0; i < side->n_add; i++) {
        struct http_slice v = headers_expand(t, &side->add[i]);
        if (v.p == NULL || http_edit_add(msg, side->add[i].name, v) != 0)
            return -ENOSPC;
    }
    return 0;
}

static enum step_result headers_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct headers_cfg *hc = cfg;
    if (headers_apply(t, &hc->request, t->req) == 0)
        return STEP_NEXT;
    log_warn("route %s: no room for the request fields the headers step adds", txn_route_name(t));
    return STEP_ERROR;
}

static void headers_on_response_head(struct txn *t, const void *cfg, void *state,
                                     struct http_msg *resp)
{
    const struct headers_cfg *hc = cfg;
    if (headers_apply(t, &hc->response, resp) != 0)
        log_warn("route %s: no room for the response fields the headers step adds; some left out",
                 txn_route_name(t));
}

const struct step_type step_headers = {
    .key = "headers",
    .phase = STEP_PHASE_HEADERS,
    .parse = headers_parse,
    .free_cfg = headers_free,
    .on_request = headers_on_request,
    .on_response_head = headers_on_response_head,
};

/* ratelimit: the `rate_limit` route step.
 *
 *   rate_limit: { algorithm: token_bucket, rate: 100/s, burst: 200, key: client_ip }
 *   rate_limit:                      # several limits: each must allow
 *     - { algorithm: sliding_window_log, rate: 10/s, key: [header:X-Api-Key, route] }
 *     - { algorithm: fixed_window, rate: 1000/h, key: identity, on_missing: allow }
 *
 *   request --key--> limit 0 table --allowed--> limit 1 table --allowed--> next step
 *                        |                          |
 *                        `-- denied ----------------`--> 429 (status), Retry-After,
 *                                                        RateLimit-Policy, RateLimit,
 *                                                        X-RateLimit-Limit/-Remaining/-Reset
 *
 * Each limit owns a table (ratelimit_table.c) shared by all worker threads,
 * so `200/m` over any number of workers lets exactly 200 through. Limits are
 * decided in order and the first refusal stops: a request refused by a later
 * limit has already counted against the earlier ones (as in Envoy and Kong).
 * The limit headers go on every refusal, and on allowed answers when the
 * deciding limit says `response_headers: true`; they describe the limit with
 * the fewest requests left. The counters live with the configuration: a
 * reload starts them afresh. */
#include "http/steps/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "core/units.h"
#include "http/http_edit.h"
#include "http/steps/ratelimit_algo.h"
#include "http/steps/ratelimit_key.h"
#include "http/steps/ratelimit_table.h"
#include "http/txn.h"

#define RL_MAX_LIMITS 8
#define RL_MAX_PARTS 4
#define RL_MAX_TRUSTED 64
#define RL_DEFAULT_MAX_KEYS 100000
#define RL_MAX_KEYS 100000000ULL
#define RL_NAME_MAX 32

#define RL_PART_LIST(X) \
    X(RL_PART_CLIENT_IP, "client_ip") \
    X(RL_PART_HEADER, "header:NAME") \
    X(RL_PART_COOKIE, "cookie:NAME") \
    X(RL_PART_IDENTITY, "identity") \
    X(RL_PART_ROUTE, "route")
#define RL_ENUM(e, s) e,
enum rl_part_kind { RL_PART_LIST(RL_ENUM) RL_PART_COUNT };
#undef RL_ENUM

struct rl_part {
    enum rl_part_kind kind;
    char *name;                    /* header or cookie name */
    size_t name_len;
};

struct rl_limit {
    struct rl_params params;
    struct rl_part parts[RL_MAX_PARTS];
    size_t n_parts;
    struct rl_cidr *trusted;       /* trusted_proxies */
    size_t n_trusted;
    int on_missing_allow;
    uint64_t max_keys, status;
    int response_headers;
    char *name;
    struct rl_table *table;
};

struct rl_cfg {
    struct rl_limit limits[RL_MAX_LIMITS];
    size_t n;
    char *policy;                  /* the RateLimit-Policy value, all limits */
};

/* Per request: the decision the answer's headers describe. */
struct rl_req {
    uint8_t decided, denied, which;
    uint64_t remaining, reset_ms, retry_ms;
};

static const char rl_body[] = "rate limit exceeded\n";
static const struct http_header rl_deny_fields[] = {
    { { "Content-Type", 12 }, { "text/plain", 10 } },
};

/* ---- configuration ---- */

static int rl_parse_algorithm(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
#define RL_NAME(e, s) s,
    static const char *const names[] = { RL_ALGO_LIST(RL_NAME) };
#undef RL_NAME
    int a;
    int rc = cfg_parse_enum(ctx, v, "algorithm", names, RL_ALGO_COUNT, &a);
    ((struct rl_limit *)obj)->params.algo = (enum rl_algo)a;
    return rc;
}

static int rl_parse_rate(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rl_params *p = &((struct rl_limit *)obj)->params;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_scalar(ctx, v, "'rate'", &s);
    if (rc < 0)
        return rc;
    rc = units_parse_rate(s, RL_MAX_COUNT, &p->count, &p->period_ms);
    if (rc == -ERANGE)
        return cfg_fail(ctx, v, "'rate' %s out of range (1 to %llu per period)", cfg_quote(s, q),
                        (unsigned long long)RL_MAX_COUNT);
    if (rc < 0)
        return cfg_fail(ctx, v, "bad 'rate' %s (expected COUNT/UNIT with UNIT s, m, h or d, "
                                "e.g. 100/s)", cfg_quote(s, q));
    return 0;
}

static int rl_parse_part(struct cfg_ctx *ctx, yaml_node_t *v, struct rl_limit *l)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a rate limit key", &s);
    if (rc < 0)
        return rc;
    if (l->n_parts == RL_MAX_PARTS)
        return cfg_fail(ctx, v, "a rate limit key has at most %d parts", RL_MAX_PARTS);
    struct rl_part *p = &l->parts[l->n_parts];
    const char *name = NULL;
    if (strncmp(s, "header:", 7) == 0) {
        p->kind = RL_PART_HEADER;
        name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0) {
        p->kind = RL_PART_COOKIE;
        name = s + 7;
    } else if (strcmp(s, "client_ip") == 0) {
        p->kind = RL_PART_CLIENT_IP;
    } else if (strcmp(s, "identity") == 0) {
        p->kind = RL_PART_IDENTITY;
    } else if (strcmp(s, "route") == 0) {
        p->kind = RL_PART_ROUTE;
    } else {
        return cfg_fail(ctx, v, "unknown rate limit key %s (expected client_ip, header:NAME, "
                                "cookie:NAME, identity, route, or a list of them)", cfg_quote(s, q));
    }
    if (name != NULL && !cfg_is_token(name))
        return cfg_fail(ctx, v, "bad name in rate limit key %s", cfg_quote(s, q));
    if (name != NULL && (rc = cfg_strdup(ctx, name, &p->name)) < 0)
        return rc;
    p->name_len = name ? strlen(name) : 0;
    l->n_parts++;
    return 0;
}

static int rl_parse_key_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return rl_parse_part(ctx, v, obj);
}

static int rl_parse_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return rl_parse_part(ctx, v, obj);
    if (v->data.sequence.items.top == v->data.sequence.items.start)
        return cfg_fail(ctx, v, "'key' is an empty list");
    return cfg_list_each(ctx, v, rl_parse_key_item, obj);
}

static int rl_parse_trusted_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct rl_limit *l = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a CIDR block", &s);
    if (rc < 0)
        return rc;
    rc = rl_cidr_parse(s, &l->trusted[i]);
    if (rc == -ERANGE)
        return cfg_fail(ctx, v, "bad prefix length in trusted_proxies %s", cfg_quote(s, q));
    if (rc < 0)
        return cfg_fail(ctx, v, "bad address in trusted_proxies %s (expected an IPv4 or IPv6 "
                                "address or CIDR block, e.g. 10.0.0.0/8)", cfg_quote(s, q));
    return 0;
}

static int rl_parse_trusted(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rl_limit *l = obj;
    void *items;
    static const struct cfg_list list = { "'trusted_proxies'", "CIDR block",
                                          sizeof(struct rl_cidr), RL_MAX_TRUSTED };
    int rc = cfg_list_new(ctx, v, &list, &items, &l->n_trusted);
    if (rc < 0)
        return rc;
    l->trusted = items;
    return cfg_list_each(ctx, v, rl_parse_trusted_item, l);
}

static int rl_parse_on_missing(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = { "limit", "allow" };
    return cfg_parse_enum(ctx, v, "on_missing", names, 2, &((struct rl_limit *)obj)->on_missing_allow);
}

static int rl_parse_response_headers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'response_headers'", &((struct rl_limit *)obj)->response_headers);
}

static int rl_parse_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "'name'", &s);
    if (rc < 0)
        return rc;
    size_t n = strlen(s);
    if (n > RL_NAME_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_-.") != n)
        return cfg_fail(ctx, v, "bad rate limit 'name' %s (1 to %d of letters, digits, '_', '-', "
                                "'.')", cfg_quote(s, q), RL_NAME_MAX);
    return cfg_strdup(ctx, s, &((struct rl_limit *)obj)->name);
}

static const struct cfg_key rl_keys[] = {
    CFG_FUNC("algorithm", rl_parse_algorithm, false),
    CFG_FUNC("rate", rl_parse_rate, true),
    CFG_FIELD("burst", CFG_KIND_UINT, struct rl_limit, params.burst, 1, RL_MAX_COUNT),
    CFG_FUNC("key", rl_parse_key, false),
    CFG_FUNC("trusted_proxies", rl_parse_trusted, false),
    CFG_FUNC("on_missing", rl_parse_on_missing, false),
    CFG_FIELD("max_keys", CFG_KIND_UINT, struct rl_limit, max_keys, 1, RL_MAX_KEYS),
    CFG_FIELD("status", CFG_KIND_UINT, struct rl_limit, status, 400, 599),
    CFG_FUNC("response_headers", rl_parse_response_headers, false),
    CFG_FUNC("name", rl_parse_name, false),
};
CFG_MAP_DEFINE(rl_map, "rate_limit", rl_keys);

/* Checks the keys of one limit together and makes its table. */
static int rl_finish_limit(struct cfg_ctx *ctx, yaml_node_t **vals, struct rl_limit *l, size_t i,
                           size_t n)
{
    struct rl_params *p = &l->params;
    int bucket = p->algo == RL_TOKEN_BUCKET || p->algo == RL_LEAKY_BUCKET;
    yaml_node_t *burst = vals[cfg_key_index(&rl_map, "burst")];
    if (burst && !bucket)
        return cfg_fail(ctx, burst, "'burst' applies to token_bucket and leaky_bucket only");
    if (p->burst == 0)
        p->burst = p->algo == RL_TOKEN_BUCKET ? p->count : 1;
    if (p->algo == RL_SLIDING_WINDOW_LOG && p->count > RL_MAX_LOG)
        return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "rate")], "sliding_window_log keeps one "
                        "time per request of a window: at most %llu per period",
                        (unsigned long long)RL_MAX_LOG);
    if (l->n_parts == 0) {
        l->parts[0].kind = RL_PART_CLIENT_IP;
        l->n_parts = 1;
    }
    int has_ip = 0;
    for (size_t k = 0; k < l->n_parts; k++)
        has_ip |= l->parts[k].kind == RL_PART_CLIENT_IP;
    if (l->n_trusted && !has_ip)
        return cfg_fail(ctx, vals[cfg_key_index(&rl_map, "trusted_proxies")],
                        "'trusted_proxies' needs client_ip in the limit's 'key'");
    if (l->max_keys == 0)
        l->max_keys = RL_DEFAULT_MAX_KEYS;
    if (l->status == 0)
        l->status = 429;
    int rc = 0;
    if (l->name == NULL) {
        char name[32];
        if (n == 1)
            snprintf(name, sizeof(name), "default");
        else
            snprintf(name, sizeof(name), "limit%zu", i + 1);
        if ((rc = cfg_strdup(ctx, name, &l->name)) < 0)
            return rc;
    }
    if ((l->table = rl_table_new(p, l->max_keys)) == NULL)
        return cfg_nomem(ctx);
    return 0;
}

/* Builds the RateLimit-Policy value: "NAME";q=QUOTA;w=SECONDS, ... */
static int rl_build_policy(struct cfg_ctx *ctx, struct rl_cfg *c)
{
    char buf[1024];
    size_t used = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct rl_limit *l = &c->limits[i];
        uint64_t q = l->params.algo == RL_TOKEN_BUCKET || l->params.algo == RL_LEAKY_BUCKET
                         ? l->params.burst : l->params.count;
        uint64_t w = (rl_window_ms(&l->params) + 999) / 1000;
        int k = snprintf(buf + used, sizeof(buf) - used, "%s\"%s\";q=%llu;w=%llu", i ? ", " : "",
                         l->name, (unsigned long long)q, (unsigned long long)(w ? w : 1));
        if (k < 0 || (size_t)k >= sizeof(buf) - used)
            return cfg_nomem(ctx);
        used += (size_t)k;
    }
    return cfg_strdup(ctx, buf, &c->policy);
}

static int rl_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct rl_cfg *c = cfg_calloc_fn(1, sizeof(*c));
    if (c == NULL)
        return cfg_nomem(ctx);
    *out = c;
    yaml_node_t *items[RL_MAX_LIMITS];
    size_t n = 0;
    int rc;
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            if (n == RL_MAX_LIMITS)
                return cfg_fail(ctx, v, "'rate_limit' lists at most %d limits", RL_MAX_LIMITS);
            items[n++] = cfg_node(ctx, *it);
        }
        if (n == 0)
            return cfg_fail(ctx, v, "'rate_limit' is an empty list");
    } else {
        items[n++] = v;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *vals[CFG_MAP_MAX_KEYS] = { 0 };
        c->n = i + 1;
        if ((items[i] != v && (rc = cfg_visit(ctx, items[i])) < 0) ||
            (rc = cfg_parse_map(ctx, items[i], &rl_map, &c->limits[i], vals)) < 0 ||
            (rc = rl_finish_limit(ctx, vals, &c->limits[i], i, n)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->limits[j].name, c->limits[i].name) == 0)
                return cfg_fail(ctx, items[i], "two limits of one route are named '%s'",
                                c->limits[i].name);
    }
    return rl_build_policy(ctx, c);
}

static void rl_free(void *p)
{
    struct rl_cfg *c = p;
    for (size_t i = 0; i < c->n; i++) {
        struct rl_limit *l = &c->limits[i];
        for (size_t k = 0; k < l->n_parts; k++)
            free(l->parts[k].name);
        free(l->trusted);
        free(l->name);
        rl_table_free(l->table);
    }
    free(c->policy);
    free(c);
}

/* ---- the key of a request ---- */

static struct http_slice rl_part_value(struct txn *t, const struct rl_limit *l,
                                       const struct rl_part *part)
{
    const char *route; /* or the peer's address */
    int k;
    switch (part->kind) {
    case RL_PART_CLIENT_IP:
        route = txn_client_ip(t);
        return rl_key_client_ip(t->req, (struct http_slice){ route, strlen(route) }, l->trusted,
                                l->n_trusted);
    case RL_PART_HEADER:
        k = http_msg_find(t->req, part->name);
        return k < 0 ? (struct http_slice){ NULL, 0 } : t->req->headers[k].value;
    case RL_PART_COOKIE:
        return rl_key_cookie(t->req, part->name, part->name_len);
    case RL_PART_IDENTITY:
        return txn_identity(t);
    default:
        route = txn_route_name(t);
        return (struct http_slice){ route, strlen(route) };
    }
}

/* Writes the request's key for limit l into buf (RL_KEY_MAX bytes, longer
 * keys cut). Returns its length, or -ENOENT when a part is absent. */
static int rl_key(struct txn *t, const struct rl_limit *l, char *buf)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_parts; i++) {
        struct http_slice v = rl_part_value(t, l, &l->parts[i]);
        if (v.len == 0)
            return -ENOENT;
        if (i > 0 && n < RL_KEY_MAX)
            buf[n++] = 0x1f; /* cannot occur in a field value */
        size_t take = v.len < RL_KEY_MAX - n ? v.len : RL_KEY_MAX - n;
        memcpy(buf + n, v.p, take);
        n += take;
    }
    return (int)n;
}

/* ---- per request ---- */

static uint64_t rl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static enum step_result rl_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct rl_cfg *c = cfg;
    struct rl_req *st = state;
    char key[RL_KEY_MAX];
    uint64_t now = rl_now_ms();
    for (size_t i = 0; i < c->n; i++) {
        const struct rl_limit *l = &c->limits[i];
        struct rl_decision d;
        int n = rl_key(t, l, key);
        if (n < 0 && l->on_missing_allow)
            continue;
        if (n < 0) {
            key[0] = 0x1e; /* the one shared key of requests without one; no value is this */
            n = 1;
        }
        if (rl_table_decide(l->table, key, (size_t)n, now, &d) < 0) {
            log_warn("route %s: rate limit %s: out of memory for a new key; letting the request "
                     "through", txn_route_name(t), l->name);
            continue;
        }
        if (!st->decided || !d.allowed || d.remaining < st->remaining) {
            *st = (struct rl_req){ 1, (uint8_t)!d.allowed, (uint8_t)i, d.remaining, d.reset_ms,
                                   d.retry_after_ms };
        }
        if (!d.allowed) {
            txn_respond(t, (int)l->status, rl_deny_fields, 1, rl_body, sizeof(rl_body) - 1);
            return STEP_RESPOND;
        }
    }
    return STEP_NEXT;
}

/* Sets field `name` to the decimal v (arena). Returns 0 or -ENOSPC. */
static int rl_set_num(struct txn *t, struct http_msg *resp, const char *name, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    struct http_slice val = txn_copy(t, num, (size_t)n);
    if (val.p == NULL)
        return -ENOSPC;
    return http_edit_set(resp, (struct http_slice){ name, strlen(name) }, val);
}

static uint64_t rl_seconds_up(uint64_t ms)
{
    return (ms + 999) / 1000;
}

static void rl_on_response_head(struct txn *t, const void *cfg, void *state, struct http_msg *resp)
{
    const struct rl_cfg *c = cfg;
    const struct rl_req *st = state;
    if (!st->decided)
        return;
    const struct rl_limit *l = &c->limits[st->which];
    if (!st->denied && !l->response_headers)
        return;
    uint64_t limit = l->params.algo == RL_TOKEN_BUCKET || l->params.algo == RL_LEAKY_BUCKET
                         ? l->params.burst : l->params.count;
    uint64_t reset_s = rl_seconds_up(st->reset_ms);
    char rl[RL_NAME_MAX + 64];
    int n = snprintf(rl, sizeof(rl), "\"%s\";r=%llu;t=%llu", l->name,
                     (unsigned long long)st->remaining, (unsigned long long)reset_s);
    struct http_slice rlv = txn_copy(t, rl, (size_t)n);
    int rc = rlv.p == NULL ? -ENOSPC : 0;
    if (rc == 0)
        rc = http_edit_set(resp, (struct http_slice){ "RateLimit-Policy", 16 },
                           (struct http_slice){ c->policy, strlen(c->policy) });
    if (rc == 0)
        rc = http_edit_set(resp, (struct http_slice){ "RateLimit", 9 }, rlv);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Limit", limit);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Remaining", st->remaining);
    if (rc == 0)
        rc = rl_set_num(t, resp, "X-RateLimit-Reset", reset_s);
    if (rc == 0 && st->denied) {
        uint64_t retry = rl_seconds_up(st->retry_ms);
        rc = rl_set_num(t, resp, "Retry-After", retry ? retry : 1);
    }
    if (rc != 0)
        log_warn("route %s: no room for the rate limit fields; some left out", txn_route_name(t));
}

const struct step_type step_rate_limit = {
    .key = "rate_limit",
    .phase = STEP_PHASE_RATE_LIMIT,
    .parse = rl_parse,
    .free_cfg = rl_free,
    .state_size = sizeof(struct rl_req),
    .on_request = rl_on_request,
    .on_response_head = rl_on_response_head,
};

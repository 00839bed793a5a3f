/* cache_cfg: parses the `caches:` section.
 *
 *   caches list -- cache map -- name, memory, max_object, eviction, version
 *                            |- key map (query: all | sorted | ignore, headers: [...])
 *                            `- purge map (allow: [CIDR, ...])
 *
 * Built on the loader's toolkit (core/config_parse.h). Names are unique;
 * max_object may not exceed memory. Nothing here allocates cache memory:
 * the route step acquires the cache (cache/store.c) when routes resolve. */
#include "cache/cache_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/evict.h"
#include "core/config_parse.h"
#include "server/config.h"

static const struct cfg_cache cache_cfg_defaults = {
    .memory_bytes = 64u << 20,
    .max_object_bytes = 1u << 20,
    .eviction = EVICT_S3FIFO,
    .key_query = CACHE_QUERY_ALL,
    .coalesce_timeout_ms = 5000,
    .l2_max_object_bytes = 256u << 10,
};

static const char *const cache_query_names[] = {
#define CACHE_QUERY_NAME(e, s) s,
    CACHE_QUERY_LIST(CACHE_QUERY_NAME)
#undef CACHE_QUERY_NAME
};

static const char *const cache_eviction_names[] = {
#define EVICT_NAME(e, s, ops) s,
    EVICT_POLICY_LIST(EVICT_NAME)
#undef EVICT_NAME
};

static int cache_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    return cfg_parse_name(ctx, v, &c->name, &c->name_mark);
}

static int cache_cfg_eviction(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_enum(ctx, v, "'eviction'", cache_eviction_names, EVICT_POLICY_COUNT,
                          &((struct cfg_cache *)obj)->eviction);
}

static int cache_cfg_query(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_enum(ctx, v, "key 'query'", cache_query_names, CACHE_QUERY_COUNT,
                          &((struct cfg_cache *)obj)->key_query);
}

static int cache_cfg_header_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_cache *c = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a header name", &s);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(s))
        return cfg_fail(ctx, v, "%s is not a header name", cfg_quote(s, q));
    return cfg_strdup(ctx, s, &c->key_headers[i]);
}

static int cache_cfg_headers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    void *items;
    static const struct cfg_list list = { "key 'headers'", "header name", sizeof(char *),
                                          CFG_MAX_CACHE_KEY_HEADERS };
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_key_headers);
    if (rc < 0)
        return rc;
    c->key_headers = items;
    return cfg_list_each(ctx, v, cache_cfg_header_item, c);
}

static int cache_cfg_targeted_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_cache *c = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a header name", &s);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(s) || strcasecmp(s, "cache-control") == 0)
        return cfg_fail(ctx, v, "%s cannot be a targeted cache field (name one such as "
                                "CDN-Cache-Control or Surrogate-Control)", cfg_quote(s, q));
    return cfg_strdup(ctx, s, &c->targeted[i]);
}

static int cache_cfg_targeted(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    void *items;
    static const struct cfg_list list = { "'targeted'", "header name", sizeof(char *),
                                          CFG_MAX_CACHE_TARGETED };
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_targeted);
    if (rc < 0)
        return rc;
    c->targeted = items;
    return cfg_list_each(ctx, v, cache_cfg_targeted_item, c);
}

/* A list of names (cookies, query parameters): non-empty, no '=', '&', ';' or space. */
static int cache_cfg_name_list(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                               char ***out, size_t *n)
{
    void *items;
    const struct cfg_list list = { what, "name", sizeof(char *), CFG_MAX_CACHE_KEY_NAMES };
    int rc = cfg_list_new(ctx, v, &list, &items, n);
    if (rc < 0)
        return rc;
    *out = items;
    for (size_t i = 0; i < *n; i++) {
        yaml_node_t *item = yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i]);
        const char *s;
        char q[CFG_QUOTE_SIZE];
        if ((rc = cfg_text(ctx, item, "a name", &s)) < 0)
            return rc;
        if (s[0] == 0 || strpbrk(s, "=&; \t"))
            return cfg_fail(ctx, item, "%s is not a cookie or parameter name", cfg_quote(s, q));
        if ((rc = cfg_strdup(ctx, s, &(*out)[i])) < 0)
            return rc;
    }
    return 0;
}

static int cache_cfg_cookies(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    return cache_cfg_name_list(ctx, v, "key 'cookies'", &c->key_cookies, &c->n_key_cookies);
}

static int cache_cfg_params(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    if (c->key_params_ignored)
        return cfg_fail(ctx, v, "key takes 'query_params' or 'query_ignore', not both");
    return cache_cfg_name_list(ctx, v, "key 'query_params'", &c->key_params, &c->n_key_params);
}

static int cache_cfg_params_ignored(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    if (c->key_params)
        return cfg_fail(ctx, v, "key takes 'query_params' or 'query_ignore', not both");
    return cache_cfg_name_list(ctx, v, "key 'query_ignore'", &c->key_params_ignored,
                               &c->n_key_params_ignored);
}

static const struct cfg_key cache_cfg_key_keys[] = {
    CFG_FUNC("query", cache_cfg_query, false),
    CFG_FUNC("headers", cache_cfg_headers, false),
    CFG_FUNC("cookies", cache_cfg_cookies, false),
    CFG_FUNC("query_params", cache_cfg_params, false),
    CFG_FUNC("query_ignore", cache_cfg_params_ignored, false),
};
CFG_MAP_DEFINE(cache_cfg_key_map, "cache key", cache_cfg_key_keys);

static int cache_cfg_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cache_cfg_key_map, obj, NULL);
}

static int cache_cfg_allow_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return cfg_parse_network(ctx, v, &((struct cfg_cache *)obj)->purge_allow[i]);
}

static int cache_cfg_allow(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    void *items;
    static const struct cfg_list list = { "purge 'allow'", "network", sizeof(struct cidr),
                                          CFG_MAX_CACHE_PURGE_ALLOW };
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_purge_allow);
    if (rc < 0)
        return rc;
    c->purge_allow = items;
    return cfg_list_each(ctx, v, cache_cfg_allow_item, c);
}

static const struct cfg_key cache_cfg_purge_keys[] = {
    CFG_FUNC("allow", cache_cfg_allow, true),
};
CFG_MAP_DEFINE(cache_cfg_purge_map, "cache purge", cache_cfg_purge_keys);

static int cache_cfg_purge(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cache_cfg_purge_map, obj, NULL);
}

static int cache_cfg_l2_store(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_cache *c = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "a store name", &s);
    if (rc < 0)
        return rc;
    c->l2_store_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &c->l2_store_name);
}

static const struct cfg_key cache_cfg_l2_keys[] = {
    CFG_FUNC("store", cache_cfg_l2_store, true),
    CFG_FIELD("max_object", CFG_KIND_SIZE, struct cfg_cache, l2_max_object_bytes, 1,
              512u << 20),
};
CFG_MAP_DEFINE(cache_cfg_l2_map, "cache l2", cache_cfg_l2_keys);

static int cache_cfg_l2(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cache_cfg_l2_map, obj, NULL);
}

static const struct cfg_key cache_cfg_keys[] = {
    CFG_FUNC("name", cache_cfg_name, true),
    CFG_FIELD("memory", CFG_KIND_SIZE, struct cfg_cache, memory_bytes, 64u << 10, 1ULL << 40),
    CFG_FIELD("max_object", CFG_KIND_SIZE, struct cfg_cache, max_object_bytes, 1, 1ULL << 32),
    CFG_FUNC("eviction", cache_cfg_eviction, false),
    CFG_FIELD("version", CFG_KIND_UINT, struct cfg_cache, version, 0, 4000000000u),
    CFG_FUNC("key", cache_cfg_key, false),
    CFG_FUNC("purge", cache_cfg_purge, false),
    CFG_FIELD("coalesce_timeout", CFG_KIND_DURATION, struct cfg_cache, coalesce_timeout_ms, 0,
              CFG_MAX_DURATION_MS),
    CFG_FUNC("targeted", cache_cfg_targeted, false),
    CFG_FUNC("l2", cache_cfg_l2, false),
};
CFG_MAP_DEFINE(cache_cfg_map, "cache", cache_cfg_keys);

static int cache_cfg_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_cache *c = &cfg->caches[i];
    yaml_node_t *vals[CFG_MAP_MAX_KEYS];
    char q[CFG_QUOTE_SIZE];

    *c = cache_cfg_defaults;
    int rc = cfg_parse_map(ctx, node, &cache_cfg_map, c, vals);
    if (rc < 0)
        return rc;
    _Static_assert(CFG_ARRAY_SIZE(cache_cfg_keys) == 10, "vals[2] is max_object");
    if (vals[2] == NULL && c->max_object_bytes > c->memory_bytes)
        c->max_object_bytes = c->memory_bytes; /* the default, for a small cache */
    if (c->max_object_bytes > c->memory_bytes)
        return cfg_fail(ctx, vals[2],
                        "'max_object' (%llu bytes) must not exceed 'memory' (%llu bytes)",
                        (unsigned long long)c->max_object_bytes,
                        (unsigned long long)c->memory_bytes);
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->caches[j].name, c->name) == 0)
            return cfg_fail_mark(ctx, c->name_mark, "duplicate cache name %s (first defined at %d:%d)",
                                 cfg_quote(c->name, q), cfg->caches[j].name_mark.line,
                                 cfg->caches[j].name_mark.col);
    return 0;
}

int cache_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    void *items;
    static const struct cfg_list list = { "'caches'", "cache", sizeof(struct cfg_cache),
                                          CFG_MAX_CACHES };
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_caches);
    if (rc < 0)
        return rc;
    cfg->caches = items;
    return cfg_list_each(ctx, v, cache_cfg_item, cfg);
}

static void cache_cfg_free_names(char **names, size_t n)
{
    for (size_t k = 0; names && k < n; k++)
        free(names[k]);
    free(names);
}

void cache_cfg_free(void *root)
{
    struct cfg *cfg = root;
    if (cfg->caches == NULL)
        return;
    for (size_t i = 0; i < cfg->n_caches; i++) {
        struct cfg_cache *c = &cfg->caches[i];
        free(c->name);
        cache_cfg_free_names(c->key_headers, c->n_key_headers);
        cache_cfg_free_names(c->key_cookies, c->n_key_cookies);
        cache_cfg_free_names(c->key_params, c->n_key_params);
        cache_cfg_free_names(c->key_params_ignored, c->n_key_params_ignored);
        for (size_t k = 0; c->targeted && k < c->n_targeted; k++)
            free(c->targeted[k]);
        free(c->targeted);
        free(c->purge_allow);
        free(c->l2_store_name);
    }
    free(cfg->caches);
    cfg->caches = NULL;
    cfg->n_caches = 0;
}

int cache_cfg_resolve(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; i < cfg->n_caches; i++) {
        struct cfg_cache *c = &cfg->caches[i];
        if (c->l2_store_name == NULL)
            continue;
        c->l2_store = store_cfg_find(cfg, c->l2_store_name);
        if (c->l2_store == NULL)
            return cfg_fail_mark(ctx, c->l2_store_mark, "cache l2 names store %s which is not "
                                 "defined under 'stores'", cfg_quote(c->l2_store_name, q));
    }
    return 0;
}

const struct cfg_cache *cache_cfg_find(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_caches; i++)
        if (cfg->caches[i].name && strcmp(cfg->caches[i].name, name) == 0)
            return &cfg->caches[i];
    return NULL;
}

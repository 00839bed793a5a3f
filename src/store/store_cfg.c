/* store_cfg: parses the `stores:` section.
 *
 *   stores list -- store map -- redis: HOST:PORT | cluster: [HOST:PORT, ...]
 *                            |- timeouts map (connect, command)
 *                            |- reconnect map (base, max)
 *                            `- username, password, database, max_pending, max_redirects
 *
 * Built on the loader's toolkit (core/config_parse.h) like every section:
 * each map is a key table, errors stop the load with FILE:LINE:COLUMN.
 * Checks spanning several keys (exactly one of redis / cluster, database
 * with a single Redis only, reconnect.base <= reconnect.max) run once the
 * map is parsed, pointing at the offending value. Store names are unique.
 * Nothing here resolves names or connects. */
#include "store/store_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/units.h"
#include "server/config.h"

static const struct cfg_store store_cfg_defaults = {
    .connect_timeout_ms = 1000,
    .command_timeout_ms = 1000,
    .reconnect_base_ms = 100,
    .reconnect_max_ms = 5000,
    .database = 0,
    .max_pending = 1024,
    .max_redirects = 5,
};

/* ---- servers ---- */

static int store_cfg_server(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                            struct cfg_store_server *s)
{
    return cfg_parse_address(ctx, v, what, &s->address, &s->addr, &s->addrlen);
}

static int store_cfg_redis(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_store *st = obj;

    if (st->servers != NULL)
        return cfg_fail(ctx, v, "a store takes either 'redis' or 'cluster', not both");
    st->servers = cfg_calloc_fn(1, sizeof(*st->servers));
    if (st->servers == NULL)
        return cfg_nomem(ctx);
    st->n_servers = 1;
    return store_cfg_server(ctx, v, "'redis'", &st->servers[0]);
}

static int store_cfg_seed_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_store *st = obj;
    char q[CFG_QUOTE_SIZE];

    int rc = store_cfg_server(ctx, v, "a cluster seed", &st->servers[i]);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(st->servers[j].address, st->servers[i].address) == 0)
            return cfg_fail(ctx, v, "duplicate cluster seed %s",
                            cfg_quote(st->servers[i].address, q));
    return 0;
}

static int store_cfg_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_store *st = obj;
    void *items;

    if (st->servers != NULL)
        return cfg_fail(ctx, v, "a store takes either 'redis' or 'cluster', not both");
    static const struct cfg_list list = {"'cluster'", "seed address HOST:PORT",
                                         sizeof(struct cfg_store_server), CFG_MAX_STORE_SEEDS};
    int rc = cfg_list_new(ctx, v, &list, &items, &st->n_servers);
    if (rc < 0)
        return rc;
    st->servers = items;
    st->cluster = 1;
    return cfg_list_each(ctx, v, store_cfg_seed_item, st);
}

/* ---- small maps and scalars ---- */

static const struct cfg_key store_cfg_timeout_keys[] = {
    CFG_FIELD("connect", CFG_KIND_DURATION, struct cfg_store, connect_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("command", CFG_KIND_DURATION, struct cfg_store, command_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(store_cfg_timeout_map, "store timeouts", store_cfg_timeout_keys);

static const struct cfg_key store_cfg_reconnect_keys[] = {
    CFG_FIELD("base", CFG_KIND_DURATION, struct cfg_store, reconnect_base_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("max", CFG_KIND_DURATION, struct cfg_store, reconnect_max_ms, 1, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(store_cfg_reconnect_map, "store reconnect", store_cfg_reconnect_keys);

static int store_cfg_timeouts(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &store_cfg_timeout_map, obj, NULL);
}

static int store_cfg_reconnect(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &store_cfg_reconnect_map, obj, NULL);
}

static int store_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_store *st = obj;
    return cfg_parse_name(ctx, v, &st->name, &st->name_mark);
}

static int store_cfg_username(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'username'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &((struct cfg_store *)obj)->username);
}

static int store_cfg_password(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'password'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &((struct cfg_store *)obj)->password);
}

static const struct cfg_key store_cfg_keys[] = {
    CFG_FUNC("name", store_cfg_name, true),
    CFG_FUNC("redis", store_cfg_redis, false),
    CFG_FUNC("cluster", store_cfg_cluster, false),
    CFG_FUNC("timeouts", store_cfg_timeouts, false),
    CFG_FUNC("reconnect", store_cfg_reconnect, false),
    CFG_FUNC("username", store_cfg_username, false),
    CFG_FUNC("password", store_cfg_password, false),
    CFG_FIELD("database", CFG_KIND_UINT, struct cfg_store, database, 0, 1000000),
    CFG_FIELD("max_pending", CFG_KIND_UINT, struct cfg_store, max_pending, 0,
              CFG_MAX_STORE_PENDING),
    CFG_FIELD("max_redirects", CFG_KIND_UINT, struct cfg_store, max_redirects, 0,
              CFG_MAX_STORE_REDIRECTS),
};
CFG_MAP_DEFINE(store_cfg_map, "store", store_cfg_keys);

/* ---- a store, the list ---- */

/* Checks that span keys; `vals` holds each key's value node or NULL. */
static int store_cfg_check(struct cfg_ctx *ctx, yaml_node_t *node, const struct cfg_store *st,
                           yaml_node_t *const *vals)
{
    yaml_node_t *database = vals[7], *reconnect = vals[4], *username = vals[5];

    if (st->servers == NULL)
        return cfg_fail(ctx, node,
                        "store is missing 'redis: HOST:PORT' or 'cluster: "
                        "[HOST:PORT, ...]'");
    if (st->cluster && database != NULL && st->database != 0)
        return cfg_fail(ctx, database,
                        "'database' works only with a single Redis (Redis "
                        "Cluster has database 0 only)");
    if (username != NULL && st->password == NULL)
        return cfg_fail(ctx, username, "'username' needs a 'password'");
    if (st->reconnect_base_ms > st->reconnect_max_ms)
        return cfg_fail(ctx, reconnect,
                        "reconnect 'base' (%llums) must not exceed 'max' "
                        "(%llums)",
                        (unsigned long long)st->reconnect_base_ms,
                        (unsigned long long)st->reconnect_max_ms);
    return 0;
}

static int store_cfg_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_store *st = &cfg->stores[i];
    yaml_node_t *vals[CFG_MAP_MAX_KEYS];
    char q[CFG_QUOTE_SIZE];

    _Static_assert(CFG_ARRAY_SIZE(store_cfg_keys) == 10, "store_cfg_check's indexes");
    *st = store_cfg_defaults;
    st->line = cfg_mark_of(node).line;
    st->col = cfg_mark_of(node).col;
    int rc = cfg_parse_map(ctx, node, &store_cfg_map, st, vals);
    if (rc == 0)
        rc = store_cfg_check(ctx, node, st, vals);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->stores[j].name, st->name) == 0)
            return cfg_fail_mark(ctx, st->name_mark,
                                 "duplicate store name %s (first defined "
                                 "at %d:%d)",
                                 cfg_quote(st->name, q), cfg->stores[j].name_mark.line,
                                 cfg->stores[j].name_mark.col);
    return 0;
}

int store_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    void *items;

    static const struct cfg_list list = {"'stores'", "store", sizeof(struct cfg_store),
                                         CFG_MAX_STORES};
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_stores);
    if (rc < 0)
        return rc;
    cfg->stores = items;
    return cfg_list_each(ctx, v, store_cfg_item, cfg);
}

void store_cfg_free(void *root)
{
    struct cfg *cfg = root;

    if (cfg->stores == NULL)
        return;
    for (size_t i = 0; i < cfg->n_stores; i++) {
        struct cfg_store *st = &cfg->stores[i];
        free(st->name);
        free(st->username);
        free(st->password);
        for (size_t s = 0; s < st->n_servers; s++)
            free(st->servers[s].address);
        free(st->servers);
    }
    free(cfg->stores);
    cfg->stores = NULL;
    cfg->n_stores = 0;
}

const struct cfg_store *store_cfg_find(const struct cfg *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->n_stores; i++)
        if (cfg->stores[i].name != NULL && strcmp(cfg->stores[i].name, name) == 0)
            return &cfg->stores[i];
    return NULL;
}

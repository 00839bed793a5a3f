/* redis_cfg: the `redis_clusters` section and the redis listener key (see
 * redis_cfg.h).
 *
 *   redis_clusters list -- cluster map -- shards list -- shard map -- replicas list
 *                                      |- range map ---- map list -- bound map
 *                                      |- directory map - map list -- prefix map
 *                                      `- timeouts / health_check / commands / limits maps
 *
 * Parsed with the loader's toolkit (core/config_parse.h), like every
 * section. Shard references in range and directory entries are a shard
 * name or a 0-based index, resolved once the shards are known (the shards
 * key may come after them), so they are parsed in a second pass over the
 * saved nodes. The listener table (server/config.c) later points every
 * redis listener at its cluster with redis_cfg_find(). */
#include "resp/redis_cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/units.h"
#include "server/config.h"

#define CFG_MAX_REDIS_CLUSTERS 10000
#define CFG_MAX_REDIS_SHARDS 4096
#define CFG_MAX_REDIS_REPLICAS 16
#define CFG_MAX_REDIS_MAP 100000

static const struct cfg_redis_cluster redis_cfg_defaults = {
    .distribution = CFG_REDIS_DIST_KETAMA,
    .hash = CFG_REDIS_HASH_FNV1A_64,
    .hash_tag = "{}",
    .range_by = CFG_REDIS_RANGE_KEY,
    .default_shard = -1,
    .read_from = CFG_REDIS_READ_PRIMARY,
    .connections = 1,
    .max_blocking = 64,
    .connect_timeout_ms = 1000,
    .response_timeout_ms = 5000,
    .health_interval_ms = 1000,
    .max_lag_s = 10,
    .health_fall = 2,
    .max_bulk_bytes = 512u << 20,
    .max_args = 1u << 20,
    .max_depth = 16,
    .sentinel_interval_ms = 1000,
};

#define CFG_ENUM_NAME(e, s) s,
static const char *const redis_cfg_dist_names[] = { CFG_REDIS_DIST_LIST(CFG_ENUM_NAME) };
static const char *const redis_cfg_hash_names[] = { CFG_REDIS_HASH_LIST(CFG_ENUM_NAME) };
static const char *const redis_cfg_read_names[] = { CFG_REDIS_READ_LIST(CFG_ENUM_NAME) };
static const char *const redis_cfg_range_names[] = { CFG_REDIS_RANGE_LIST(CFG_ENUM_NAME) };
#undef CFG_ENUM_NAME

const char *cfg_redis_dist_name(enum cfg_redis_dist d)
{
    return (unsigned)d < CFG_REDIS_DIST_COUNT ? redis_cfg_dist_names[d] : "?";
}

const char *cfg_redis_hash_name(enum cfg_redis_hash h)
{
    return (unsigned)h < CFG_REDIS_HASH_COUNT ? redis_cfg_hash_names[h] : "?";
}

const char *cfg_redis_read_name(enum cfg_redis_read r)
{
    return (unsigned)r < CFG_REDIS_READ_COUNT ? redis_cfg_read_names[r] : "?";
}

/* A cluster being parsed, with the nodes whose parsing waits for the shards. */
struct cfg_redis_parse {
    struct cfg_redis_cluster *rc;
    yaml_node_t *range_map;        /* range.map */
    yaml_node_t *dir_map;          /* directory.map */
    yaml_node_t *dir_default;      /* directory.default */
    yaml_node_t *range;            /* the range / directory keys, for messages */
    yaml_node_t *directory;
    yaml_node_t *auto_eject;       /* for messages */
    yaml_node_t *sentinel_masters; /* sentinel.masters, checked against the shards */
    yaml_node_t *sentinel;
    yaml_node_t *shards;           /* shards: or cluster:, exactly one of them */
    yaml_node_t *cluster;
    yaml_node_t *placement;        /* distribution / hash / hash_tag: not with cluster: */
};

/* ---- servers and shards ---- */

static int redis_cfg_server(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                            struct cfg_redis_server *s)
{
    return cfg_parse_address(ctx, v, what, &s->address, &s->addr, &s->addrlen);
}

static int redis_cfg_primary(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_server(ctx, v, "'primary'", &((struct cfg_redis_shard *)obj)->primary);
}

static int redis_cfg_replica_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return redis_cfg_server(ctx, v, "a replica", &((struct cfg_redis_shard *)obj)->replicas[i]);
}

static int redis_cfg_replicas(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_shard *sh = obj;
    void *items;

    if (v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.top == v->data.sequence.items.start)
        return 0; /* replicas: [] */
    static const struct cfg_list list = { "'replicas'", "replica", sizeof(struct cfg_redis_server),
                                          CFG_MAX_REDIS_REPLICAS };
    int rc = cfg_list_new(ctx, v, &list, &items, &sh->n_replicas);
    if (rc < 0)
        return rc;
    sh->replicas = items;
    return cfg_list_each(ctx, v, redis_cfg_replica_item, sh);
}

static int redis_cfg_shard_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_mark m;
    return cfg_parse_name(ctx, v, &((struct cfg_redis_shard *)obj)->name, &m);
}

static const struct cfg_key redis_cfg_shard_keys[] = {
    CFG_FUNC("primary", redis_cfg_primary, true),
    CFG_FUNC("replicas", redis_cfg_replicas, false),
    CFG_FUNC("name", redis_cfg_shard_name, false),
    CFG_FIELD("weight", CFG_KIND_UINT, struct cfg_redis_shard, weight, 1, 1000),
};
CFG_MAP_DEFINE(redis_cfg_shard_map, "shard", redis_cfg_shard_keys);

static int redis_cfg_shard_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_redis_cluster *rc = obj;
    struct cfg_redis_shard *sh = &rc->shards[i];
    char q[CFG_QUOTE_SIZE];

    sh->weight = 1;
    sh->mark = cfg_mark_of(v);
    int r = cfg_parse_map(ctx, v, &redis_cfg_shard_map, sh, NULL);
    if (r < 0)
        return r;
    if (sh->name == NULL && (r = cfg_strdup(ctx, sh->primary.address, &sh->name)) < 0)
        return r;
    for (size_t j = 0; j < i; j++)
        if (strcmp(rc->shards[j].name, sh->name) == 0)
            return cfg_fail(ctx, v, "duplicate shard name %s (first at %d:%d)",
                            cfg_quote(sh->name, q), rc->shards[j].mark.line,
                            rc->shards[j].mark.col);
    return 0;
}

static int redis_cfg_shards(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = ((struct cfg_redis_parse *)obj)->rc;
    void *items;

    ((struct cfg_redis_parse *)obj)->shards = v;
    static const struct cfg_list list = { "'shards'", "shard", sizeof(struct cfg_redis_shard),
                                          CFG_MAX_REDIS_SHARDS };
    int r = cfg_list_new(ctx, v, &list, &items, &rc->n_shards);
    if (r < 0)
        return r;
    rc->shards = items;
    return cfg_list_each(ctx, v, redis_cfg_shard_item, rc);
}

/* A shard reference: a shard's name or its 0-based index. */
static int redis_cfg_shard_ref(struct cfg_ctx *ctx, const struct cfg_redis_cluster *rc,
                               yaml_node_t *v, size_t *out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;
    uint64_t n;

    int r = cfg_text(ctx, v, "'shard'", &s);
    if (r < 0)
        return r;
    for (size_t i = 0; i < rc->n_shards; i++)
        if (strcmp(rc->shards[i].name, s) == 0) {
            *out = i;
            return 0;
        }
    if (units_parse_uint(s, UINT64_MAX, &n) == 0 && n < rc->n_shards) {
        *out = (size_t)n;
        return 0;
    }
    return cfg_fail(ctx, v, "unknown shard %s (expected a shard name or an index 0..%zu)",
                    cfg_quote(s, q), rc->n_shards - 1);
}

/* ---- range ---- */

struct cfg_redis_item_ctx {
    struct cfg_redis_cluster *rc;
    yaml_node_t *below;
    yaml_node_t *shard;
    yaml_node_t *prefix;
};

static int redis_cfg_keep_below(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_item_ctx *)obj)->below = v;
    return 0;
}

static int redis_cfg_keep_shard(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_item_ctx *)obj)->shard = v;
    return 0;
}

static int redis_cfg_keep_prefix(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_item_ctx *)obj)->prefix = v;
    return 0;
}

static const struct cfg_key redis_cfg_bound_keys[] = {
    CFG_FUNC("below", redis_cfg_keep_below, false),
    CFG_FUNC("shard", redis_cfg_keep_shard, true),
};
CFG_MAP_DEFINE(redis_cfg_bound_map, "range bound", redis_cfg_bound_keys);

static int redis_cfg_bound_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_redis_cluster *rc = obj;
    struct cfg_redis_range *rg = &rc->ranges[i];
    struct cfg_redis_item_ctx it = { .rc = rc };
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int r = cfg_parse_map(ctx, v, &redis_cfg_bound_map, &it, NULL);
    if (r == 0)
        r = redis_cfg_shard_ref(ctx, rc, it.shard, &rg->shard);
    if (r < 0)
        return r;
    if (it.below == NULL) {
        if (i + 1 != rc->n_ranges)
            return cfg_fail(ctx, v, "only the last range bound may leave out 'below'");
        return 0;
    }
    if ((r = cfg_text(ctx, it.below, "'below'", &s)) < 0)
        return r;
    rg->has_below = 1;
    if (rc->range_by == CFG_REDIS_RANGE_ID) {
        if (units_parse_uint(s, UINT64_MAX, &rg->below_id) < 0)
            return cfg_fail(ctx, it.below, "expected a number for 'below' (range by id), got %s",
                            cfg_quote(s, q));
        if (i > 0 && rg->below_id <= rc->ranges[i - 1].below_id)
            return cfg_fail(ctx, it.below, "range bounds must increase");
        return 0;
    }
    if (i > 0 && strcmp(s, rc->ranges[i - 1].below) <= 0)
        return cfg_fail(ctx, it.below, "range bounds must increase (bytewise)");
    return cfg_strdup(ctx, s, &rg->below);
}

static int redis_cfg_range_by(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int b = 0;
    int r = cfg_parse_enum(ctx, v, "range.by", redis_cfg_range_names, CFG_REDIS_RANGE_COUNT, &b);
    ((struct cfg_redis_parse *)obj)->rc->range_by = (enum cfg_redis_range_by)b;
    return r;
}

static int redis_cfg_keep_range_map(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->range_map = v;
    return cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'map'");
}

static const struct cfg_key redis_cfg_range_keys[] = {
    CFG_FUNC("by", redis_cfg_range_by, false),
    CFG_FUNC("map", redis_cfg_keep_range_map, true),
};
CFG_MAP_DEFINE(redis_cfg_range_map, "range", redis_cfg_range_keys);

static int redis_cfg_range(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->range = v;
    return cfg_parse_map(ctx, v, &redis_cfg_range_map, obj, NULL);
}

/* ---- directory ---- */

static const struct cfg_key redis_cfg_prefix_keys[] = {
    CFG_FUNC("prefix", redis_cfg_keep_prefix, true),
    CFG_FUNC("shard", redis_cfg_keep_shard, true),
};
CFG_MAP_DEFINE(redis_cfg_prefix_map, "directory entry", redis_cfg_prefix_keys);

static int redis_cfg_prefix_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_redis_cluster *rc = obj;
    struct cfg_redis_prefix *px = &rc->prefixes[i];
    struct cfg_redis_item_ctx it = { .rc = rc };
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int r = cfg_parse_map(ctx, v, &redis_cfg_prefix_map, &it, NULL);
    if (r == 0)
        r = redis_cfg_shard_ref(ctx, rc, it.shard, &px->shard);
    if (r == 0)
        r = cfg_text(ctx, it.prefix, "'prefix'", &s);
    if (r < 0)
        return r;
    for (size_t j = 0; j < i; j++)
        if (strcmp(rc->prefixes[j].prefix, s) == 0)
            return cfg_fail(ctx, it.prefix, "duplicate prefix %s", cfg_quote(s, q));
    px->prefix_len = strlen(s);
    return cfg_strdup(ctx, s, &px->prefix);
}

static int redis_cfg_keep_dir_map(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->dir_map = v;
    return cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'map'");
}

static int redis_cfg_keep_dir_default(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->dir_default = v;
    return 0;
}

static const struct cfg_key redis_cfg_dir_keys[] = {
    CFG_FUNC("map", redis_cfg_keep_dir_map, true),
    CFG_FUNC("default", redis_cfg_keep_dir_default, false),
};
CFG_MAP_DEFINE(redis_cfg_dir_map, "directory", redis_cfg_dir_keys);

static int redis_cfg_directory(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->directory = v;
    return cfg_parse_map(ctx, v, &redis_cfg_dir_map, obj, NULL);
}

/* ---- small maps ---- */

static const struct cfg_key redis_cfg_timeout_keys[] = {
    CFG_FIELD("connect", CFG_KIND_DURATION, struct cfg_redis_cluster, connect_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("response", CFG_KIND_DURATION, struct cfg_redis_cluster, response_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(redis_cfg_timeout_map, "redis cluster timeouts", redis_cfg_timeout_keys);

static int redis_cfg_max_lag(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    uint64_t ms;

    int r = cfg_scalar(ctx, v, "'max_lag'", &s);
    if (r < 0)
        return r;
    if (units_parse_duration_ms(s, &ms) < 0 || ms % 1000 != 0 || ms == 0 || ms > 3600000)
        return cfg_fail(ctx, v, "expected whole seconds 1s..1h for 'max_lag' (Redis reports "
                                "replication lag in seconds), got %s", cfg_quote(s, q));
    rc->max_lag_s = ms / 1000;
    return 0;
}

static const struct cfg_key redis_cfg_health_keys[] = {
    CFG_FIELD("interval", CFG_KIND_DURATION, struct cfg_redis_cluster, health_interval_ms, 100,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("fall", CFG_KIND_UINT, struct cfg_redis_cluster, health_fall, 1, 100),
    CFG_FUNC("max_lag", redis_cfg_max_lag, false),
};
CFG_MAP_DEFINE(redis_cfg_health_map, "health_check", redis_cfg_health_keys);

static int redis_cfg_bool(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, int *out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int r = cfg_scalar(ctx, v, what, &s);
    if (r < 0)
        return r;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return 0;
    }
    return cfg_fail(ctx, v, "expected true or false for %s, got %s", what, cfg_quote(s, q));
}

static int redis_cfg_cmd_keys(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_bool(ctx, v, "'keys'", &((struct cfg_redis_cluster *)obj)->allow_keys);
}

static int redis_cfg_cmd_flush(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_bool(ctx, v, "'flush'", &((struct cfg_redis_cluster *)obj)->allow_flush);
}

static int redis_cfg_cmd_config_set(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_bool(ctx, v, "'config_set'",
                          &((struct cfg_redis_cluster *)obj)->allow_config_set);
}

static const struct cfg_key redis_cfg_commands_keys[] = {
    CFG_FUNC("keys", redis_cfg_cmd_keys, false),
    CFG_FUNC("flush", redis_cfg_cmd_flush, false),
    CFG_FUNC("config_set", redis_cfg_cmd_config_set, false),
};
CFG_MAP_DEFINE(redis_cfg_commands_map, "commands", redis_cfg_commands_keys);

static const struct cfg_key redis_cfg_limits_keys[] = {
    CFG_FIELD("bulk", CFG_KIND_SIZE, struct cfg_redis_cluster, max_bulk_bytes, 1, 512u << 20),
    CFG_FIELD("args", CFG_KIND_UINT, struct cfg_redis_cluster, max_args, 1, 1u << 24),
    CFG_FIELD("depth", CFG_KIND_UINT, struct cfg_redis_cluster, max_depth, 1, 32),
};
CFG_MAP_DEFINE(redis_cfg_limits_map, "redis cluster limits", redis_cfg_limits_keys);

/* ---- cluster ---- */

static int redis_cfg_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = ((struct cfg_redis_parse *)obj)->rc;
    return cfg_parse_name(ctx, v, &rc->name, &rc->name_mark);
}

static int redis_cfg_dist(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int d = 0;
    ((struct cfg_redis_parse *)obj)->placement = v;
    int r = cfg_parse_enum(ctx, v, "distribution", redis_cfg_dist_names, CFG_REDIS_DIST_COUNT, &d);
    ((struct cfg_redis_parse *)obj)->rc->distribution = (enum cfg_redis_dist)d;
    return r;
}

static int redis_cfg_hash(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int h = 0;
    ((struct cfg_redis_parse *)obj)->placement = v;
    int r = cfg_parse_enum(ctx, v, "hash", redis_cfg_hash_names, CFG_REDIS_HASH_COUNT, &h);
    ((struct cfg_redis_parse *)obj)->rc->hash = (enum cfg_redis_hash)h;
    return r;
}

static int redis_cfg_read_from(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int p = 0;
    int r = cfg_parse_enum(ctx, v, "read_from", redis_cfg_read_names, CFG_REDIS_READ_COUNT, &p);
    ((struct cfg_redis_parse *)obj)->rc->read_from = (enum cfg_redis_read)p;
    return r;
}

static int redis_cfg_hash_tag(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = ((struct cfg_redis_parse *)obj)->rc;
    char q[CFG_QUOTE_SIZE];
    const char *s;

    ((struct cfg_redis_parse *)obj)->placement = v;
    int r = cfg_scalar(ctx, v, "'hash_tag'", &s);
    if (r < 0)
        return r;
    if (strlen(s) != 2 && s[0] != '\0')
        return cfg_fail(ctx, v, "expected two characters like \"{}\" for 'hash_tag' (or \"\" "
                                "for none), got %s", cfg_quote(s, q));
    memcpy(rc->hash_tag, s, strlen(s) + 1);
    return 0;
}

static int redis_cfg_password(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int r = cfg_text(ctx, v, "'password'", &s);
    return r < 0 ? r : cfg_strdup(ctx, s, &((struct cfg_redis_parse *)obj)->rc->password);
}

static int redis_cfg_auto_eject(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_parse *ps = obj;
    ps->auto_eject = v;
    return redis_cfg_bool(ctx, v, "'auto_eject'", &ps->rc->auto_eject);
}

/* ---- cluster: a Redis Cluster's seed nodes ---- */

static int redis_cfg_seed_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return redis_cfg_server(ctx, v, "a cluster seed address",
                            &((struct cfg_redis_cluster *)obj)->seeds[i]);
}

static int redis_cfg_seeds(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_parse *ps = obj;
    struct cfg_redis_cluster *rc = ps->rc;
    void *items;
    static const struct cfg_list list = { "'cluster'", "cluster seed address",
                                          sizeof(struct cfg_redis_server), 64 };
    ps->cluster = v;
    int r = cfg_list_new(ctx, v, &list, &items, &rc->n_seeds);
    if (r < 0)
        return r;
    rc->seeds = items;
    return cfg_list_each(ctx, v, redis_cfg_seed_item, rc);
}

/* cluster: and shards: exclude each other; with cluster: Redis Cluster
 * places the keys, so weir's placement keys have no say. */
static int redis_cfg_cluster_check(struct cfg_ctx *ctx, struct cfg_redis_parse *ps,
                                   yaml_node_t *node)
{
    if (ps->shards && ps->cluster)
        return cfg_fail(ctx, ps->cluster, "'cluster' (a Redis Cluster's seed nodes) and "
                                          "'shards' exclude each other");
    if (!ps->shards && !ps->cluster)
        return cfg_fail(ctx, node, "a redis cluster needs 'shards' (weir places the keys) or "
                                   "'cluster' (seed nodes of a Redis Cluster)");
    if (!ps->cluster)
        return 0;
    yaml_node_t *bad = ps->placement ? ps->placement
                     : ps->range     ? ps->range
                     : ps->directory ? ps->directory
                     : ps->sentinel  ? ps->sentinel
                                     : ps->auto_eject;
    if (bad)
        return cfg_fail(ctx, bad, "with 'cluster' Redis Cluster places the keys (hash slots) "
                                  "and fails over by itself: distribution, hash, hash_tag, "
                                  "range, directory, sentinel and auto_eject do not apply");
    return 0;
}

/* ---- sentinel ---- */

static int redis_cfg_sentinel_address(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return redis_cfg_server(ctx, v, "a sentinel address",
                            &((struct cfg_redis_cluster *)obj)->sentinels[i]);
}

static int redis_cfg_sentinel_addresses(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = ((struct cfg_redis_parse *)obj)->rc;
    void *items;
    static const struct cfg_list list = { "'addresses'", "sentinel address",
                                          sizeof(struct cfg_redis_server), 64 };
    int r = cfg_list_new(ctx, v, &list, &items, &rc->n_sentinels);
    if (r < 0)
        return r;
    rc->sentinels = items;
    return cfg_list_each(ctx, v, redis_cfg_sentinel_address, rc);
}

static int redis_cfg_sentinel_masters(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->sentinel_masters = v;
    return cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'masters'");
}

static int redis_cfg_sentinel_interval(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_redis_cluster *rc = ((struct cfg_redis_parse *)obj)->rc;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    uint64_t ms;
    int r = cfg_scalar(ctx, v, "'interval'", &s);
    if (r < 0)
        return r;
    if (units_parse_duration_ms(s, &ms) < 0 || ms < 100 || ms > 3600000)
        return cfg_fail(ctx, v, "expected a duration 100ms..1h for the sentinel 'interval', got %s",
                        cfg_quote(s, q));
    rc->sentinel_interval_ms = ms;
    return 0;
}

static const struct cfg_key redis_cfg_sentinel_keys[] = {
    CFG_FUNC("masters", redis_cfg_sentinel_masters, true),
    CFG_FUNC("addresses", redis_cfg_sentinel_addresses, true),
    CFG_FUNC("interval", redis_cfg_sentinel_interval, false),
};
CFG_MAP_DEFINE(redis_cfg_sentinel_map, "sentinel", redis_cfg_sentinel_keys);

static int redis_cfg_sentinel(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    ((struct cfg_redis_parse *)obj)->sentinel = v;
    return cfg_parse_map(ctx, v, &redis_cfg_sentinel_map, obj, NULL);
}

static int redis_cfg_master_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_redis_cluster *rc = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int r = cfg_text(ctx, v, "a sentinel master name", &s);
    if (r < 0)
        return r;
    if (strlen(s) > 200 || strpbrk(s, " \r\n\t"))
        return cfg_fail(ctx, v, "expected a sentinel master name (no spaces, at most 200 "
                                "bytes), got %s", cfg_quote(s, q));
    for (size_t j = 0; j < i; j++)
        if (strcmp(rc->sentinel_masters[j], s) == 0)
            return cfg_fail(ctx, v, "duplicate sentinel master name %s", cfg_quote(s, q));
    return cfg_strdup(ctx, s, &rc->sentinel_masters[i]);
}

/* sentinel.masters: one name per shard, in the order of the shards. */
static int redis_cfg_sentinel_check(struct cfg_ctx *ctx, struct cfg_redis_parse *ps)
{
    struct cfg_redis_cluster *rc = ps->rc;
    void *items;
    size_t n;
    if (!ps->sentinel)
        return 0;
    static const struct cfg_list list = { "'masters'", "sentinel master name", sizeof(char *),
                                          CFG_MAX_REDIS_SHARDS };
    int r = cfg_list_new(ctx, ps->sentinel_masters, &list, &items, &n);
    if (r < 0)
        return r;
    if (n != rc->n_shards) {
        free(items);
        return cfg_fail(ctx, ps->sentinel_masters, "sentinel 'masters' names %zu master(s) but "
                        "the cluster has %zu shard(s): one name per shard, in order", n,
                        rc->n_shards);
    }
    rc->sentinel_masters = items;
    return cfg_list_each(ctx, ps->sentinel_masters, redis_cfg_master_item, rc);
}

#define CFG_REDIS_SUBMAP(fn, map) \
    static int fn(struct cfg_ctx *ctx, yaml_node_t *v, void *obj) \
    { \
        return cfg_parse_map(ctx, v, &(map), ((struct cfg_redis_parse *)obj)->rc, NULL); \
    }
CFG_REDIS_SUBMAP(cfg_redis_timeouts, redis_cfg_timeout_map)
CFG_REDIS_SUBMAP(cfg_redis_health, redis_cfg_health_map)
CFG_REDIS_SUBMAP(cfg_redis_commands, redis_cfg_commands_map)
CFG_REDIS_SUBMAP(cfg_redis_limits, redis_cfg_limits_map)

static int redis_cfg_uint32(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, uint64_t lo,
                            uint64_t hi, uint32_t *out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;
    uint64_t n;

    int r = cfg_scalar(ctx, v, what, &s);
    if (r < 0)
        return r;
    if (units_parse_uint(s, hi, &n) < 0 || n < lo)
        return cfg_fail(ctx, v, "%s must be %llu..%llu, got %s", what, (unsigned long long)lo,
                        (unsigned long long)hi, cfg_quote(s, q));
    *out = (uint32_t)n;
    return 0;
}

static int redis_cfg_connections(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_uint32(ctx, v, "'connections'", 1, 64,
                            &((struct cfg_redis_parse *)obj)->rc->connections);
}

static int redis_cfg_blocking(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return redis_cfg_uint32(ctx, v, "'blocking_connections'", 0, 100000,
                            &((struct cfg_redis_parse *)obj)->rc->max_blocking);
}

static const struct cfg_key redis_cfg_cluster_keys[] = {
    CFG_FUNC("name", redis_cfg_name, true),
    CFG_FUNC("distribution", redis_cfg_dist, false),
    CFG_FUNC("hash", redis_cfg_hash, false),
    CFG_FUNC("hash_tag", redis_cfg_hash_tag, false),
    CFG_FUNC("shards", redis_cfg_shards, false),
    CFG_FUNC("cluster", redis_cfg_seeds, false),
    CFG_FUNC("range", redis_cfg_range, false),
    CFG_FUNC("directory", redis_cfg_directory, false),
    CFG_FUNC("read_from", redis_cfg_read_from, false),
    CFG_FUNC("connections", redis_cfg_connections, false),
    CFG_FUNC("blocking_connections", redis_cfg_blocking, false),
    CFG_FUNC("timeouts", cfg_redis_timeouts, false),
    CFG_FUNC("health_check", cfg_redis_health, false),
    CFG_FUNC("commands", cfg_redis_commands, false),
    CFG_FUNC("password", redis_cfg_password, false),
    CFG_FUNC("limits", cfg_redis_limits, false),
    CFG_FUNC("auto_eject", redis_cfg_auto_eject, false),
    CFG_FUNC("sentinel", redis_cfg_sentinel, false),
};
CFG_MAP_DEFINE(redis_cfg_cluster_map, "redis cluster", redis_cfg_cluster_keys);

/* The parts that need the shards: range and directory entries. */
static int redis_cfg_second_pass(struct cfg_ctx *ctx, struct cfg_redis_parse *ps, yaml_node_t *node)
{
    struct cfg_redis_cluster *rc = ps->rc;
    bool is_range = rc->distribution == CFG_REDIS_DIST_RANGE;
    bool is_dir = rc->distribution == CFG_REDIS_DIST_DIRECTORY;
    void *items;
    int r;

    if ((r = redis_cfg_cluster_check(ctx, ps, node)) < 0)
        return r;
    if (rc->auto_eject && rc->distribution != CFG_REDIS_DIST_KETAMA)
        return cfg_fail(ctx, ps->auto_eject, "auto_eject works only with distribution "
                                             "consistent_hash (other distributions would move "
                                             "almost every key when a shard leaves)");
    if ((r = redis_cfg_sentinel_check(ctx, ps)) < 0)
        return r;
    if (ps->range && !is_range)
        return cfg_fail(ctx, ps->range, "'range' is used only with distribution range");
    if (ps->directory && !is_dir)
        return cfg_fail(ctx, ps->directory, "'directory' is used only with distribution "
                                            "directory");
    if (is_range && !ps->range)
        return cfg_fail(ctx, node, "distribution range needs a 'range' map");
    if (is_dir && !ps->directory)
        return cfg_fail(ctx, node, "distribution directory needs a 'directory' map");
    if (is_range) {
        static const struct cfg_list list = { "'map'", "range bound",
                                              sizeof(struct cfg_redis_range), CFG_MAX_REDIS_MAP };
        if ((r = cfg_list_new(ctx, ps->range_map, &list, &items, &rc->n_ranges)) < 0)
            return r;
        rc->ranges = items;
        return cfg_list_each(ctx, ps->range_map, redis_cfg_bound_item, rc);
    }
    if (is_dir) {
        static const struct cfg_list list = { "'map'", "directory entry",
                                              sizeof(struct cfg_redis_prefix), CFG_MAX_REDIS_MAP };
        if ((r = cfg_list_new(ctx, ps->dir_map, &list, &items, &rc->n_prefixes)) < 0)
            return r;
        rc->prefixes = items;
        if ((r = cfg_list_each(ctx, ps->dir_map, redis_cfg_prefix_item, rc)) < 0)
            return r;
        if (ps->dir_default) {
            size_t d;
            if ((r = redis_cfg_shard_ref(ctx, rc, ps->dir_default, &d)) < 0)
                return r;
            rc->default_shard = (int64_t)d;
        }
    }
    return 0;
}

static int redis_cfg_cluster_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_redis_cluster *rc = &cfg->redis_clusters[i];
    struct cfg_redis_parse ps = { .rc = rc };
    char q[CFG_QUOTE_SIZE];

    *rc = redis_cfg_defaults;
    rc->line = cfg_mark_of(node).line;
    rc->col = cfg_mark_of(node).col;
    int r = cfg_parse_map(ctx, node, &redis_cfg_cluster_map, &ps, NULL);
    if (r == 0)
        r = redis_cfg_second_pass(ctx, &ps, node);
    if (r < 0)
        return r;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->redis_clusters[j].name, rc->name) == 0)
            return cfg_fail_mark(ctx, rc->name_mark, "duplicate redis cluster name %s (first "
                                 "defined at %d:%d)", cfg_quote(rc->name, q),
                                 cfg->redis_clusters[j].name_mark.line,
                                 cfg->redis_clusters[j].name_mark.col);
    return 0;
}

int redis_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root)
{
    struct cfg *cfg = root;
    void *items;

    static const struct cfg_list list = { "'redis_clusters'", "redis cluster",
                                          sizeof(struct cfg_redis_cluster), CFG_MAX_REDIS_CLUSTERS };
    int r = cfg_list_new(ctx, v, &list, &items, &cfg->n_redis_clusters);
    if (r < 0)
        return r;
    cfg->redis_clusters = items;
    return cfg_list_each(ctx, v, redis_cfg_cluster_item, cfg);
}

int redis_cfg_parse_listener_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *listener)
{
    struct cfg_listener *l = listener;
    const char *s;

    int r = cfg_text(ctx, v, "'redis_cluster'", &s);
    if (r < 0)
        return r;
    l->redis_cluster_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &l->redis_cluster_name);
}

void redis_cfg_free(void *root)
{
    struct cfg *cfg = root;

    for (size_t i = 0; i < cfg->n_redis_clusters; i++) {
        struct cfg_redis_cluster *rc = &cfg->redis_clusters[i];
        free(rc->name);
        free(rc->password);
        for (size_t s = 0; s < rc->n_shards; s++) {
            struct cfg_redis_shard *sh = &rc->shards[s];
            free(sh->name);
            free(sh->primary.address);
            for (size_t r = 0; r < sh->n_replicas; r++)
                free(sh->replicas[r].address);
            free(sh->replicas);
        }
        free(rc->shards);
        for (size_t r = 0; r < rc->n_ranges; r++)
            free(rc->ranges[r].below);
        free(rc->ranges);
        for (size_t p = 0; p < rc->n_prefixes; p++)
            free(rc->prefixes[p].prefix);
        free(rc->prefixes);
        if (rc->sentinel_masters)
            for (size_t m = 0; m < rc->n_shards; m++)
                free(rc->sentinel_masters[m]);
        free(rc->sentinel_masters);
        for (size_t m = 0; m < rc->n_sentinels; m++)
            free(rc->sentinels[m].address);
        free(rc->sentinels);
        for (size_t m = 0; m < rc->n_seeds; m++)
            free(rc->seeds[m].address);
        free(rc->seeds);
    }
    free(cfg->redis_clusters);
    cfg->redis_clusters = NULL;
    cfg->n_redis_clusters = 0;
}

struct cfg_redis_cluster *redis_cfg_find(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_redis_clusters; i++)
        if (strcmp(cfg->redis_clusters[i].name, name) == 0)
            return &cfg->redis_clusters[i];
    return NULL;
}

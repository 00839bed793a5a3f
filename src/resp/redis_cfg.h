/* redis_cfg: the `redis_clusters:` section: how keys map to shards, which
 * hash, where reads go, the shards with their replicas and sentinels, and the
 * limits a redis listener's clients are held to. Plain data owned by the
 * struct cfg snapshot (server/config.h), parsed in redis_cfg.c with the
 * loader's toolkit (core/config_parse.h). Defaults are documented in
 * docs/configuration.md. */
#ifndef WEIR_RESP_REDIS_CFG_H
#define WEIR_RESP_REDIS_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config.h"

#define CFG_ENUM_MEMBER(e, s) e,
/* redis_clusters: how keys map to shards, which hash, where reads go. */
#define CFG_REDIS_DIST_LIST(X) \
    X(CFG_REDIS_DIST_HASH, "hash") \
    X(CFG_REDIS_DIST_KETAMA, "consistent_hash") \
    X(CFG_REDIS_DIST_JUMP, "jump") \
    X(CFG_REDIS_DIST_RANGE, "range") \
    X(CFG_REDIS_DIST_DIRECTORY, "directory")
enum cfg_redis_dist { CFG_REDIS_DIST_LIST(CFG_ENUM_MEMBER) CFG_REDIS_DIST_COUNT };

/* crc32, crc32a, fnv*, murmur and md5 give twemproxy's values (32 bits). */
#define CFG_REDIS_HASH_LIST(X) \
    X(CFG_REDIS_HASH_CRC32, "crc32") \
    X(CFG_REDIS_HASH_CRC32A, "crc32a") \
    X(CFG_REDIS_HASH_FNV1_64, "fnv1_64") \
    X(CFG_REDIS_HASH_FNV1A_64, "fnv1a_64") \
    X(CFG_REDIS_HASH_FNV1_32, "fnv1_32") \
    X(CFG_REDIS_HASH_FNV1A_32, "fnv1a_32") \
    X(CFG_REDIS_HASH_MURMUR, "murmur") \
    X(CFG_REDIS_HASH_MD5, "md5") \
    X(CFG_REDIS_HASH_XXHASH, "xxhash")
enum cfg_redis_hash { CFG_REDIS_HASH_LIST(CFG_ENUM_MEMBER) CFG_REDIS_HASH_COUNT };

#define CFG_REDIS_READ_LIST(X) \
    X(CFG_REDIS_READ_PRIMARY, "primary") \
    X(CFG_REDIS_READ_PREFER_REPLICA, "prefer_replica") \
    X(CFG_REDIS_READ_ROUND_ROBIN, "round_robin") \
    X(CFG_REDIS_READ_LEAST_LATENCY, "least_latency")
enum cfg_redis_read { CFG_REDIS_READ_LIST(CFG_ENUM_MEMBER) CFG_REDIS_READ_COUNT };

/* range.by: the key's bytes, or the number its last run of digits spells */
#define CFG_REDIS_RANGE_LIST(X) X(CFG_REDIS_RANGE_KEY, "key") X(CFG_REDIS_RANGE_ID, "id")
enum cfg_redis_range_by { CFG_REDIS_RANGE_LIST(CFG_ENUM_MEMBER) CFG_REDIS_RANGE_COUNT };
#undef CFG_ENUM_MEMBER


struct cfg_redis_server {
    char *address;                 /* as written */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct cfg_redis_shard {
    char *name;                    /* name, default "host:port" of the primary (ketama uses it) */
    struct cfg_redis_server primary;
    struct cfg_redis_server *replicas;
    size_t n_replicas;
    uint32_t weight;               /* consistent_hash weight, default 1 */
    struct cfg_mark mark;
};

/* One bound of range: keys (or ids) below `below` go to `shard`; the last
 * entry may have no bound (has_below 0) and takes the rest. */
struct cfg_redis_range {
    char *below;                   /* range.by key: bytes, else NULL */
    uint64_t below_id;             /* range.by id */
    int has_below;
    size_t shard;
};

struct cfg_redis_prefix {
    char *prefix;
    size_t prefix_len;
    size_t shard;
};

struct cfg_redis_cluster {
    char *name;
    enum cfg_redis_dist distribution; /* default consistent_hash */
    enum cfg_redis_hash hash;      /* default fnv1a_64 */
    char hash_tag[3];              /* two characters, "" = none; default "{}" */
    struct cfg_redis_shard *shards;
    size_t n_shards;               /* >= 1 */
    enum cfg_redis_range_by range_by;
    struct cfg_redis_range *ranges; /* distribution range */
    size_t n_ranges;
    struct cfg_redis_prefix *prefixes; /* distribution directory, longest prefix wins */
    size_t n_prefixes;
    int64_t default_shard;         /* directory.default, -1 = none */
    enum cfg_redis_read read_from; /* default primary */
    uint32_t connections;          /* per server per worker, default 1 */
    uint32_t max_blocking;         /* blocking_connections per worker, default 64 */
    uint64_t connect_timeout_ms;   /* timeouts.connect, default 1s */
    uint64_t response_timeout_ms;  /* timeouts.response, default 5s */
    uint64_t health_interval_ms;   /* health_check.interval, default 1s */
    uint64_t max_lag_s;            /* health_check.max_lag (whole seconds), default 10s */
    uint32_t health_fall;          /* health_check.fall, default 2 */
    int allow_keys;                /* commands.keys, default false */
    int allow_flush;               /* commands.flush, default false */
    int allow_config_set;          /* commands.config_set, default false */
    char *password;                /* what clients must AUTH with, or NULL */
    uint64_t max_bulk_bytes;       /* limits.bulk, default 512m */
    uint32_t max_args;             /* limits.args, default 1048576 */
    uint32_t max_depth;            /* limits.depth of replies, default 16 */
    int auto_eject;                /* auto_eject: a shard with its primary down leaves the
                                      ring (consistent_hash only), default false */
    char **sentinel_masters;       /* sentinel.masters: one name per shard, or NULL */
    struct cfg_redis_server *sentinels; /* sentinel.addresses */
    size_t n_sentinels;            /* 0: no sentinel */
    uint64_t sentinel_interval_ms; /* sentinel.interval, default 1s */
    struct cfg_redis_server *seeds; /* cluster: seed nodes of a Redis Cluster, or NULL */
    size_t n_seeds;                /* > 0: a Redis Cluster backend (n_shards is 0: the
                                      shards are the cluster's, from its slot map) */
    int line, col;
    struct cfg_mark name_mark;
};

const char *cfg_redis_dist_name(enum cfg_redis_dist d);
const char *cfg_redis_hash_name(enum cfg_redis_hash h);
const char *cfg_redis_read_name(enum cfg_redis_read r);

struct cfg;

/* Section row of server/config.c: parses the `redis_clusters` list into
 * cfg->redis_clusters / cfg->n_redis_clusters of the struct cfg `root`.
 * Returns 0, or a negative errno with the message in ctx; what was
 * allocated stays in the cfg for redis_cfg_free() on failure too. */
int redis_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root);

/* Section row: frees cfg->redis_clusters of the struct cfg `root` and what
 * they own, and leaves none. */
void redis_cfg_free(void *root);

/* A redis listener's `redis_cluster` key: the name, kept in the struct
 * cfg_listener `listener` until redis_cfg_find() resolves it. */
int redis_cfg_parse_listener_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);

/* Returns the redis cluster named `name` (borrowed from cfg), or NULL. */
struct cfg_redis_cluster *redis_cfg_find(const struct cfg *cfg, const char *name);

#endif

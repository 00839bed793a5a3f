/* config: the YAML configuration, loaded and validated completely into an
 * immutable snapshot before anything uses it.
 *
 * cfg_load() parses the file with libyaml (events composed into a document,
 * so every node keeps its line and column), checks every key, type, value
 * and cross-reference, and either returns a complete struct cfg or fails
 * with one message of the form "FILE:LINE:COLUMN: what was expected".
 * Nothing here opens sockets or starts threads; the snapshot is plain data
 * owned by the caller (cfg_free()).
 *
 * Defaults live in one place (cfg_defaults in config.c) and are documented in
 * docs/configuration.md. */
#ifndef WEIR_CORE_CONFIG_H
#define WEIR_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Balancing algorithms: the config names and the enum come from one list. */
#define CFG_BALANCE_LIST(X) \
    X(CFG_BALANCE_ROUND_ROBIN, "round_robin") \
    X(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, "weighted_round_robin") \
    X(CFG_BALANCE_LEAST_CONNECTIONS, "least_connections") \
    X(CFG_BALANCE_WEIGHTED_LEAST_CONNECTIONS, "weighted_least_connections") \
    X(CFG_BALANCE_IP_HASH, "ip_hash") \
    X(CFG_BALANCE_CONSISTENT_HASH, "consistent_hash") \
    X(CFG_BALANCE_LEAST_RESPONSE_TIME, "least_response_time") \
    X(CFG_BALANCE_RANDOM, "random") \
    X(CFG_BALANCE_POWER_OF_TWO, "power_of_two")

#define CFG_ENUM_MEMBER(e, s) e,
enum cfg_balance { CFG_BALANCE_LIST(CFG_ENUM_MEMBER) CFG_BALANCE_COUNT };

/* consistent_hash key source: `hash_key: client_ip | path | header:NAME | cookie:NAME` */
#define CFG_HASH_KEY_LIST(X) \
    X(CFG_HASH_KEY_CLIENT_IP, "client_ip") \
    X(CFG_HASH_KEY_PATH, "path") \
    X(CFG_HASH_KEY_HEADER, "header") \
    X(CFG_HASH_KEY_COOKIE, "cookie")
enum cfg_hash_key { CFG_HASH_KEY_LIST(CFG_ENUM_MEMBER) CFG_HASH_KEY_COUNT };

/* consistent_hash table: `hash_method: ring | maglev` */
#define CFG_HASH_METHOD_LIST(X) \
    X(CFG_HASH_METHOD_RING, "ring") \
    X(CFG_HASH_METHOD_MAGLEV, "maglev")
enum cfg_hash_method { CFG_HASH_METHOD_LIST(CFG_ENUM_MEMBER) CFG_HASH_METHOD_COUNT };

#define CFG_PROTOCOL_LIST(X) X(CFG_PROTOCOL_HTTP, "http") X(CFG_PROTOCOL_REDIS, "redis")
enum cfg_protocol { CFG_PROTOCOL_LIST(CFG_ENUM_MEMBER) CFG_PROTOCOL_COUNT };

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

/* limits.headers can be at most this; equals HTTP_MAX_HEADERS_HARD (the http
 * module's array size), repeated here because core depends on nothing above it. */
#define CFG_MAX_HEADERS 256

/* Names of enum values as written in the file; "?" when out of range. */
const char *cfg_balance_name(enum cfg_balance b);

/* Kinds of failed attempts, for retry.on and outlier_detection.on. */
#define CFG_FAILURE_LIST(X) \
    X(CFG_FAILURE_CONNECT, "connect_failure") \
    X(CFG_FAILURE_RESET, "reset") \
    X(CFG_FAILURE_TIMEOUT, "timeout") \
    X(CFG_FAILURE_5XX, "5xx")
#define CFG_ENUM_MEMBER2(e, s) e,
enum cfg_failure { CFG_FAILURE_LIST(CFG_ENUM_MEMBER2) CFG_FAILURE_COUNT };
#undef CFG_ENUM_MEMBER2
#define CFG_FAILURE_BIT(f) (1u << (f))

/* A set of HTTP status codes 100..599 (expect_status, retry.on). */
struct cfg_status_set {
    uint64_t bits[10];
};
static inline int cfg_status_in(const struct cfg_status_set *set, int status)
{
    if (status < 0 || status >= 640)
        return 0;
    return (int)((set->bits[status / 64] >> (status % 64)) & 1);
}

/* cluster.health_check: active checks run from the main thread. */
struct cfg_health_check {
    int enabled;
    int tcp;                       /* type: tcp (connect only) instead of http */
    char *path;                    /* default /health */
    char *method;                  /* default GET */
    char *host;                    /* Host header; default: the endpoint address */
    struct cfg_status_set expect_status; /* default 200-399 */
    char *expect_body;             /* substring of the first 4k of the body, or NULL */
    uint64_t interval_ms;          /* default 2s */
    uint64_t timeout_ms;           /* default 1s */
    uint64_t jitter_ms;            /* up to this much added to each interval, default interval/10 */
    uint32_t rise;                 /* default 2 */
    uint32_t fall;                 /* default 3 */
};

/* cluster.outlier_detection: passive ejection from real traffic. */
struct cfg_outlier {
    int enabled;
    uint32_t consecutive_failures; /* default 5 */
    uint32_t on_mask;              /* CFG_FAILURE_BIT set, default connect_failure|reset|timeout|5xx */
    uint64_t base_ejection_ms;     /* default 30s, doubled per consecutive ejection */
    uint64_t max_ejection_ms;      /* default 5m */
    uint32_t max_ejected_percent;  /* default 50 */
};

/* cluster.circuit_breaker: CLOSED -> OPEN -> HALF_OPEN state machine. */
struct cfg_breaker {
    int enabled;
    int per_cluster;               /* scope: cluster (one breaker) | endpoint (default) */
    uint32_t failures;             /* open after this many failures in the window (0 = off) */
    uint32_t failure_ratio_pct;    /* or this share of failures (0 = off) ... */
    uint32_t min_requests;         /* ... once the window holds this many requests (default 10) */
    uint64_t window_ms;            /* default 10s */
    uint64_t recovery_timeout_ms;  /* OPEN for this long, then HALF_OPEN; default 30s */
    uint32_t half_open_requests;   /* probes let through in HALF_OPEN, default 3 */
};

/* route.retry */
struct cfg_retry {
    int enabled;
    uint32_t attempts;             /* tries in all, first one included (default 3) */
    uint32_t on_mask;              /* CFG_FAILURE_BIT set (5xx = any of 500..599) */
    struct cfg_status_set on_status; /* statuses listed one by one (502, 503, ...) */
    int all_methods;               /* methods: all (default: idempotent only) */
    uint64_t backoff_base_ms;      /* default 25ms; full jitter in [0, min(max, base*2^n)] */
    uint64_t backoff_max_ms;       /* default 250ms */
    uint32_t budget_percent;       /* retries in flight <= this % of the cluster's requests (default 20) */
    uint32_t min_retry_concurrency;/* ... but always allow this many (default 3) */
    uint64_t per_try_timeout_ms;   /* 0 = the cluster's timeouts.response */
    uint64_t buffer_body;          /* bodies up to this size are kept for a retry (default 64k) */
};
const char *cfg_hash_key_name(enum cfg_hash_key k);
const char *cfg_hash_method_name(enum cfg_hash_method m);
const char *cfg_protocol_name(enum cfg_protocol p);
const char *cfg_redis_dist_name(enum cfg_redis_dist d);
const char *cfg_redis_hash_name(enum cfg_redis_hash h);
const char *cfg_redis_read_name(enum cfg_redis_read r);

/* Where a value is written in the file (1-based line and column), for messages. */
struct cfg_mark {
    int line, col;
};

struct cfg_endpoint {
    char *address;                 /* as written: "127.0.0.1:9001" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight;               /* 1..1000, default 1 */
    int drain;                     /* drain: true -> no new requests */
    int line, col;                 /* where it is written */
};

struct cfg_cluster {
    char *name;
    enum cfg_balance balance;      /* default round_robin */
    enum cfg_hash_key hash_key;    /* default client_ip */
    char *hash_key_name;           /* header or cookie name, else NULL */
    enum cfg_hash_method hash_method; /* default ring */
    struct cfg_endpoint *endpoints;
    size_t n_endpoints;            /* >= 1 */
    uint64_t connect_timeout_ms;   /* timeouts.connect, default 2s */
    uint64_t response_timeout_ms;  /* timeouts.response: first byte of the answer, default 30s */
    uint64_t pool_idle_timeout_ms; /* pool.idle_timeout, default 60s */
    uint32_t pool_max_idle;        /* pool.max_idle per endpoint per worker, default 32 */
    uint32_t max_connections;      /* requests in flight per endpoint, all workers, 0 = unlimited */
    uint32_t max_requests;         /* same limit, the resilience name; the lower of the two wins */
    uint32_t max_pending;          /* requests waiting for a free endpoint, per worker (0 = 503 at once) */
    uint64_t queue_timeout_ms;     /* how long one may wait (default 1s) */
    int panic;                     /* all endpoints down -> balance over all of them */
    uint64_t slow_start_ms;        /* ramp a new or recovered endpoint's share over this window */
    struct cfg_health_check health_check;
    struct cfg_outlier outlier;
    struct cfg_breaker breaker;
    int line, col;                 /* the cluster's map */
    struct cfg_mark name_mark;     /* its name value */
};

struct cfg_header_match {
    char *name;
    char *value;                   /* exact value, or NULL: header present */
};

struct route_step;
struct target_type;

struct cfg_route {
    char *name;                    /* name, default "<listener>/<index>" (1-based) */
    char *host;                    /* match.host, exact, case-insensitive, or NULL */
    char *path;                    /* match.path, exact, or NULL */
    char *path_prefix;             /* match.path_prefix, or NULL */
    char **methods;                /* match.method: a string or a list; upper case */
    size_t n_methods;
    struct cfg_header_match *headers; /* match.header: {NAME: VALUE, ...} */
    size_t n_headers;
    char *cluster_name;            /* target cluster, else NULL */
    struct cfg_cluster *cluster;   /* resolved: never NULL for a cluster target */
    const struct target_type *target; /* exactly one after cfg_load() (http/target.h) */
    void *target_cfg;              /* the target's own configuration (respond, redirect) */
    struct cfg_mark target_mark;   /* where the target key is written */
    struct route_step *steps;      /* in phase order (http/step.h) */
    size_t n_steps;
    size_t step_state_bytes;       /* per-request state all steps need */
    struct cfg_retry retry;
    uint64_t timeout_ms;           /* overall deadline including retries, 0 = none */
    int line, col;                 /* the route's map */
    struct cfg_mark cluster_mark;  /* its cluster value */
};

/* ---- redis_clusters (parsed in config_redis.c) ---- */

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
    int line, col;
    struct cfg_mark name_mark;
};

struct cfg_listener {
    char *name;
    char *listen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum cfg_protocol protocol;
    char *redis_cluster_name;      /* protocol redis: redis_cluster */
    struct cfg_redis_cluster *redis_cluster; /* resolved by cfg_load() */
    struct cfg_mark redis_cluster_mark;
    struct cfg_route *routes;
    size_t n_routes;               /* >= 1; 0 for protocol redis */
    /* limits: */
    uint32_t max_request_line;     /* limits.request_line, default 8k -> 414 */
    uint32_t max_header_bytes;     /* limits.header_size, default 32k -> 431 */
    uint32_t max_headers;          /* limits.headers, default 100 -> 431 */
    uint64_t max_body_bytes;       /* limits.body, default 0 = unlimited -> 413 */
    uint32_t max_connections;      /* limits.connections per worker, default 10000 */
    /* timeouts: */
    uint64_t header_timeout_ms;    /* timeouts.client_header, default 10s -> 408 */
    uint64_t idle_timeout_ms;      /* timeouts.client_idle keep-alive, default 60s */
    uint64_t body_timeout_ms;      /* timeouts.client_body between reads, default 30s */
    int line, col;                 /* the listener's map */
    struct cfg_mark name_mark;     /* its name value */
    struct cfg_mark listen_mark;   /* its listen value */
};

struct cfg_log {
    int level;                     /* log.level, enum log_level, default info */
    char *error;                   /* log.error: "stderr" (default) or a file path */
    char *access;                  /* log.access: "off" (default), "stdout" or a file path */
};

struct cfg_store;                  /* stores: store/store_cfg.h */

struct cfg {
    char *path;                    /* the file it was loaded from */
    unsigned workers;              /* "auto" = online CPUs */
    uint64_t drain_timeout_ms;     /* drain_timeout, default 30s */
    struct cfg_listener *listeners;
    size_t n_listeners;            /* >= 1 */
    struct cfg_cluster *clusters;
    size_t n_clusters;
    struct cfg_redis_cluster *redis_clusters;
    size_t n_redis_clusters;
    struct cfg_store *stores;      /* parsed by store/store_cfg.c */
    size_t n_stores;
    struct cfg_log log;
};

/* Loads and validates `path`. On success returns 0 and *out owns a new
 * snapshot (free with cfg_free()). On failure returns a negative errno-style
 * code, *out is untouched, and `err` holds "FILE:LINE:COLUMN: message"
 * (or "FILE: message" when the file cannot be read). */
int cfg_load(const char *path, struct cfg **out, char *err, size_t err_size);

/* Same, from a string in memory; `name` stands for the file in messages. */
int cfg_load_string(const char *name, const char *text, size_t len, struct cfg **out, char *err,
                    size_t err_size);

/* Frees a snapshot and everything it owns; NULL is a no-op. */
void cfg_free(struct cfg *cfg);

/* Returns the cluster named `name` (borrowed from cfg), or NULL. */
struct cfg_cluster *cfg_find_cluster(const struct cfg *cfg, const char *name);

/* Every allocation the loader makes goes through this pointer (calloc by
 * default) so tests can inject failures; nothing else should change it. */
extern void *(*cfg_calloc_fn)(size_t n, size_t size);

#endif

/* cluster_cfg: the `clusters:` section: a cluster's endpoints, balancing,
 * timeouts, pool, and the resilience blocks that keep a failing backend from
 * costing clients anything (health_check, outlier_detection,
 * circuit_breaker, queueing, panic, slow start, an endpoint's drain).
 *
 * Plain data owned by the struct cfg snapshot (server/config.h), parsed with
 * the loader's toolkit (core/config_parse.h) in cluster_cfg.c. The failure
 * kinds and status sets are shared with a route's retry (http/route_cfg.h),
 * which sits above this module. Defaults are documented in
 * docs/configuration.md. */
#ifndef WEIR_UPSTREAM_CLUSTER_CFG_H
#define WEIR_UPSTREAM_CLUSTER_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config.h"

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

/* cluster.protocol: what the cluster's endpoints speak. */
#define CFG_UP_PROTOCOL_LIST(X) \
    X(CFG_UP_HTTP1, "http1") X(CFG_UP_H2, "h2") X(CFG_UP_H2C, "h2c")
enum cfg_up_protocol { CFG_UP_PROTOCOL_LIST(CFG_ENUM_MEMBER) CFG_UP_PROTOCOL_COUNT };

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

/* Kinds of failed attempts, for retry.on and outlier_detection.on. */
#define CFG_FAILURE_LIST(X) \
    X(CFG_FAILURE_CONNECT, "connect_failure") \
    X(CFG_FAILURE_RESET, "reset") \
    X(CFG_FAILURE_TIMEOUT, "timeout") \
    X(CFG_FAILURE_5XX, "5xx")
enum cfg_failure { CFG_FAILURE_LIST(CFG_ENUM_MEMBER) CFG_FAILURE_COUNT };
#undef CFG_ENUM_MEMBER
#define CFG_FAILURE_BIT(f) (1u << (f))

/* Names of enum values as written in the file; "?" when out of range. */
const char *cfg_balance_name(enum cfg_balance b);
const char *cfg_hash_key_name(enum cfg_hash_key k);
const char *cfg_hash_method_name(enum cfg_hash_method m);

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

#define CFG_MAX_WEIGHT 1000        /* an endpoint's weight is 1..this */

struct cfg_endpoint {
    char *address;                 /* as written: "127.0.0.1:9001" or "api.internal:8080" */
    char *host;                    /* a name to resolve (upstream/resolver.c), else NULL; then
                                      addr / addrlen are unset (0) and port holds the port */
    uint16_t port;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight;               /* 1..1000, default 1 */
    int drain;                     /* drain: true -> no new requests */
    int down;                      /* run time only (topology.h): maintenance, no requests */
    int line, col;                 /* where it is written */
};

#define CFG_RESOLVE_FAMILY_LIST(X) \
    X(CFG_RESOLVE_IPV4, "ipv4") X(CFG_RESOLVE_IPV6, "ipv6") X(CFG_RESOLVE_ANY, "any")
#define CFG_ENUM_MEMBER(e, s) e,
enum cfg_resolve_family { CFG_RESOLVE_FAMILY_LIST(CFG_ENUM_MEMBER) };
#undef CFG_ENUM_MEMBER
#define CFG_MAX_RESOLVE_SERVERS 4

/* cluster.resolve: how endpoints given as host names are resolved */
struct cfg_resolve {
    uint64_t interval_ms;          /* re-resolve every (default 30s) */
    uint64_t timeout_ms;           /* one query's wait (default 2s) */
    enum cfg_resolve_family family; /* default ipv4 (A records) */
    struct sockaddr_storage servers[CFG_MAX_RESOLVE_SERVERS];
    socklen_t server_lens[CFG_MAX_RESOLVE_SERVERS];
    size_t n_servers;              /* 0: the nameservers of /etc/resolv.conf */
    char *srv;                     /* SRV name giving endpoints, ports and weights, or NULL */
};

struct cfg_autoscale;
struct tls_client;

struct cfg_cluster {
    char *name;
    enum cfg_balance balance;      /* default round_robin */
    enum cfg_hash_key hash_key;    /* default client_ip */
    char *hash_key_name;           /* header or cookie name, else NULL */
    enum cfg_hash_method hash_method; /* default ring */
    struct cfg_endpoint *endpoints;
    size_t n_endpoints;            /* >= 1 (names included); 0 with resolve.srv or autoscale */
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
    struct cfg_resolve resolve;
    struct cfg_autoscale *autoscale; /* autoscale/autoscale_cfg.h, or NULL */
    size_t n_hosts;                /* endpoints given as names */
    struct tls_client *tls;        /* tls: (src/tls/), NULL: plain */
    enum cfg_up_protocol protocol; /* default http1; h2 needs tls, h2c refuses it */
    uint32_t h2_connections;       /* HTTP/2 connections per endpoint per worker, default 4 */
    int line, col;                 /* the cluster's map */
    struct cfg_mark name_mark;     /* its name value */
};

struct cfg;

/* Section row of server/config.c: parses the `clusters` list (the value `v`
 * of the root key) into cfg->clusters / cfg->n_clusters of the struct cfg
 * `root`. Returns 0, or a negative errno with the message in ctx
 * (FILE:LINE:COLUMN). What was allocated stays in the cfg for
 * cluster_cfg_free() on failure too. */
int cluster_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root);

/* Section row: frees cfg->clusters of the struct cfg `root` and what they
 * own, and leaves none. */
void cluster_cfg_free(void *root);

/* Parses a list of failure kinds (and, when `statuses` is not NULL, status
 * codes and ranges) for `what` ("retry.on") into *mask and *statuses. Returns
 * 0 or a negative errno with the message in ctx. Used by a route's retry. */
int cluster_cfg_parse_failures(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                               uint32_t *mask, struct cfg_status_set *statuses);
/* One item of such a list (already visited): adds it to *mask or *statuses.
 * 0 or a negative errno with the message in ctx. */
int cluster_cfg_parse_failure_item(struct cfg_ctx *ctx, yaml_node_t *item, const char *what, uint32_t *mask,
                                   struct cfg_status_set *statuses);

#endif

/* config: the configuration snapshot, loaded and validated completely before
 * anything uses it.
 *
 * cfg_load() reads the file with the core composer (core/config.h), which
 * walks the root map along the section table of server/config.c: the
 * server's own keys (workers, drain_timeout, log, listeners) and one row per
 * module section (clusters: upstream/cluster_cfg.h, redis_clusters:
 * resp/redis_cfg.h, stores: store/store_cfg.h, data_dir and queues:
 * queue/queue_cfg.h). Every key, type, value and
 * cross-reference is checked; the load either returns a complete struct cfg
 * or fails with one message "FILE:LINE:COLUMN: what was expected". Nothing
 * here opens sockets or starts threads; the snapshot is plain data owned by
 * the caller (cfg_free()).
 *
 * Adding a top-level section: the module's own parse / resolve / free (in
 * its `module_cfg.c`), one row in the table of server/config.c, its field
 * here. Defaults are documented in docs/configuration.md. */
#ifndef WEIR_SERVER_CONFIG_H
#define WEIR_SERVER_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admin/admin_cfg.h"
#include "core/config.h"
#include "http2/h2_cfg.h"
#include "http/route_cfg.h"
#include "l4/l4_cfg.h"
#include "queue/queue_cfg.h"
#include "queue/sigv4_cfg.h"
#include "queue/topic_cfg.h"
#include "resp/redis_cfg.h"
#include "store/store_cfg.h"
#include "cache/cache_cfg.h"
#include "upstream/cluster_cfg.h"

#define CFG_ENUM_MEMBER(e, s) e,
#define CFG_PROTOCOL_LIST(X) \
    X(CFG_PROTOCOL_HTTP, "http") X(CFG_PROTOCOL_REDIS, "redis") X(CFG_PROTOCOL_SQS, "sqs") \
    X(CFG_PROTOCOL_TCP, "tcp")
enum cfg_protocol { CFG_PROTOCOL_LIST(CFG_ENUM_MEMBER) CFG_PROTOCOL_COUNT };
#undef CFG_ENUM_MEMBER

const char *cfg_protocol_name(enum cfg_protocol p);

/* limits.headers can be at most this; equals HTTP_MAX_HEADERS_HARD (the http
 * module's array size), repeated here so the snapshot needs no parser header. */
#define CFG_MAX_HEADERS 256

struct tls_server;
struct tls_tickets;

/* One listener. Still one struct for every protocol: the http keys (routes,
 * the request limits and client timeouts) and the redis key (redis_cluster)
 * sit side by side until listener keys are parsed per protocol. */
struct cfg_listener {
    char *name;
    char *listen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum cfg_protocol protocol;
    char *redis_cluster_name;      /* protocol redis: redis_cluster */
    struct cfg_redis_cluster *redis_cluster; /* resolved by cfg_load() */
    struct cfg_mark redis_cluster_mark;
    struct l4_cfg *l4;             /* tcp keys and accept_proxy (l4/l4_cfg.c); NULL: none */
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
    struct tls_server *tls;        /* tls: (src/tls/), NULL: plain */
    struct h2_cfg *http2;          /* http2: (http2/h2_cfg.c), NULL: HTTP/1.1 only */
    char *hsts;                    /* hsts: the Strict-Transport-Security value, or NULL */
    uint32_t redirect_https_port;  /* redirect_https: 0 off, else the https port */
    struct cfg_mark tls_mark;
    int line, col;                 /* the listener's map */
    struct cfg_mark name_mark;     /* its name value */
    struct cfg_mark listen_mark;   /* its listen value */
};

struct cfg_log {
    int level;                     /* log.level, enum log_level, default info */
    char *error;                   /* log.error: "stderr" (default) or a file path */
    char *access;                  /* log.access: "off" (default), "stdout" or a file path */
};

struct cfg {
    _Atomic int refs;              /* snapshots sharing it (a run-time topology change reuses it) */
    char *path;                    /* the file it was loaded from */
    unsigned workers;              /* "auto" = online CPUs */
    uint64_t drain_timeout_ms;     /* drain_timeout, default 30s */
    struct cfg_listener *listeners;
    size_t n_listeners;            /* >= 1 */
    struct cfg_cluster *clusters;  /* upstream/cluster_cfg.c */
    size_t n_clusters;
    struct cfg_redis_cluster *redis_clusters; /* resp/redis_cfg.c */
    size_t n_redis_clusters;
    struct cfg_store *stores;      /* store/store_cfg.c */
    size_t n_stores;
    struct cfg_cache *caches;      /* cache/cache_cfg.c */
    size_t n_caches;
    char *data_dir;                /* queue/queue_cfg.c: the queue log's directory */
    struct cfg_queue *queues;      /* queue/queue_cfg.c */
    size_t n_queues;
    struct cfg_topic *topics;      /* queue/topic_cfg.c */
    size_t n_topics;
    struct cfg_sqs_auth *sqs_auth; /* queue/sigv4_cfg.c, NULL: any credentials pass */
    struct cfg_log log;
    struct cfg_admin *admin;       /* admin/admin_cfg.c; NULL: no admin listener */
    struct tls_tickets *tls;       /* tls: session ticket keys (src/tls/); NULL: the defaults */
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
/* cfg_load returns one reference; cfg_ref adds one (thread-safe),
 * cfg_unref drops one and frees cfg with the last. */
void cfg_ref(struct cfg *cfg);
void cfg_unref(struct cfg *cfg);

/* Returns the cluster named `name` (borrowed from cfg), or NULL. */
struct cfg_cluster *cfg_find_cluster(const struct cfg *cfg, const char *name);

#endif

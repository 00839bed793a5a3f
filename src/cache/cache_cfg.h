/* cache_cfg: the `caches:` section. Each cache is named and used by routes
 * with `cache: NAME`; its memory lives in cache/store.c. Defaults and keys
 * are documented in docs/configuration.md. */
#ifndef WEIR_CACHE_CACHE_CFG_H
#define WEIR_CACHE_CACHE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"
#include "core/cidr.h"

struct cfg;
struct cfg_ctx;

#define CFG_MAX_CACHES 64
#define CFG_MAX_CACHE_KEY_HEADERS 8
#define CFG_MAX_CACHE_KEY_NAMES 32
#define CFG_MAX_CACHE_PURGE_ALLOW 64
#define CFG_MAX_CACHE_TARGETED 4

#define CACHE_QUERY_LIST(X) \
    X(CACHE_QUERY_ALL, "all") \
    X(CACHE_QUERY_SORTED, "sorted") \
    X(CACHE_QUERY_IGNORE, "ignore")
#define CACHE_QUERY_ENUM(e, s) e,
enum cache_query { CACHE_QUERY_LIST(CACHE_QUERY_ENUM) CACHE_QUERY_COUNT };
#undef CACHE_QUERY_ENUM

struct cfg_cache {
    char *name;
    struct cfg_mark name_mark;
    uint64_t memory_bytes;       /* memory: all objects, default 64m */
    uint64_t max_object_bytes;   /* max_object: one object, default 1m */
    int eviction;                /* enum evict_policy, default s3fifo */
    uint32_t version;            /* version: part of every key, default 0 */
    int key_query;               /* key.query: enum cache_query, default all */
    char **key_headers;          /* key.headers: request fields in the key */
    size_t n_key_headers;
    char **key_cookies;          /* key.cookies: request cookies in the key */
    size_t n_key_cookies;
    char **key_params;           /* key.query_params: only these query parameters count */
    size_t n_key_params;
    char **key_params_ignored;   /* key.query_ignore: these query parameters do not count */
    size_t n_key_params_ignored;
    uint64_t coalesce_timeout_ms; /* coalesce_timeout: longest wait on another request's miss,
                                     default 5s; 0: no coalescing */
    char **targeted;             /* targeted: fields read ahead of Cache-Control, in order
                                    (CDN-Cache-Control, RFC 9213; Surrogate-Control) */
    size_t n_targeted;
    char *l2_store_name;         /* l2.store: the shared tier's store, or NULL */
    struct cfg_mark l2_store_mark;
    const struct cfg_store *l2_store; /* resolved */
    uint64_t l2_max_object_bytes; /* l2.max_object: largest object sent to L2, default 256k */
    struct cidr *purge_allow;    /* purge.allow: addresses that may send PURGE; none: off */
    size_t n_purge_allow;
};

/* Section row (server/config.c): parses `caches` into cfg->caches. Returns 0
 * or negative with ctx's error set; on failure what was made stays for
 * cache_cfg_free. */
int cache_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
/* Section row: finds each cache's l2 store. Returns 0 or negative with
 * ctx's error set. */
int cache_cfg_resolve(struct cfg_ctx *ctx, void *root);
/* Section row: frees cfg->caches, leaving none. */
void cache_cfg_free(void *root);
/* The cache named `name` (borrowed from cfg), or NULL. */
const struct cfg_cache *cache_cfg_find(const struct cfg *cfg, const char *name);

#endif

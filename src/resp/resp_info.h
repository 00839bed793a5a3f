/* resp_info: INFO as weir answers it, describing the whole proxy.
 *
 *   INFO [section ...] --resp_info_sections--> mask
 *        mask & RESP_INFO_FROM_SHARDS ? "INFO server memory stats keyspace" to every primary
 *   replies --resp_info_add_shard--> sums (keys, hits, memory...)
 *   mask + every worker's counters (resp_stats) + sums --resp_info_text--> the bulk text
 *
 * Sections and their order are Redis 7's; `INFO`, `INFO default`, `INFO
 * all`, `INFO everything` and any list of section names (any case) select
 * as Redis does; unknown names select nothing. Internal to src/resp/. */
#ifndef WEIR_RESP_INFO_H
#define WEIR_RESP_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "resp/resp_types.h"

/* name, in `INFO` / `INFO default`, in `INFO all` */
#define RESP_INFO_LIST(X) \
    X(RESP_INFO_SERVER, "server", 1, 1) \
    X(RESP_INFO_CLIENTS, "clients", 1, 1) \
    X(RESP_INFO_MEMORY, "memory", 1, 1) \
    X(RESP_INFO_PERSISTENCE, "persistence", 1, 1) \
    X(RESP_INFO_STATS, "stats", 1, 1) \
    X(RESP_INFO_REPLICATION, "replication", 1, 1) \
    X(RESP_INFO_CPU, "cpu", 1, 1) \
    X(RESP_INFO_MODULES, "modules", 1, 1) \
    X(RESP_INFO_COMMANDSTATS, "commandstats", 0, 1) \
    X(RESP_INFO_ERRORSTATS, "errorstats", 1, 1) \
    X(RESP_INFO_LATENCYSTATS, "latencystats", 0, 1) \
    X(RESP_INFO_CLUSTER, "cluster", 1, 1) \
    X(RESP_INFO_KEYSPACE, "keyspace", 1, 1) \
    X(RESP_INFO_WEIR, "weir", 1, 1)

#define RESP_INFO_ENUM(e, name, dflt, all) e,
enum resp_info_section { RESP_INFO_LIST(RESP_INFO_ENUM) RESP_INFO_COUNT };
#undef RESP_INFO_ENUM

/* Sections whose numbers come from the primaries. */
#define RESP_INFO_FROM_SHARDS \
    (1u << RESP_INFO_SERVER | 1u << RESP_INFO_MEMORY | 1u << RESP_INFO_STATS | \
     1u << RESP_INFO_KEYSPACE)

/* What the primaries said, added up. */
struct resp_info_shards {
    uint32_t asked, answered;
    uint64_t keys, expires, ttl_sum;  /* ttl_sum: avg_ttl weighted by expires */
    uint64_t hits, misses, expired, evicted, used_memory, maxmemory;
    char redis_version[32];           /* the first answer's */
};

/* The sections named by the INFO arguments args[0..n) (slices of base). */
uint32_t resp_info_sections(const char *base, const struct resp_arg *args, uint32_t n);
/* Adds one primary's INFO text[0..len) to sh. */
void resp_info_add_shard(struct resp_info_shards *sh, const char *text, size_t len);

/* Everything INFO tells about the proxy itself. */
struct resp_info_local {
    const struct cfg_listener *lst;
    const struct resp_route *route;   /* may be NULL */
    uint64_t now_ms;
};

/* The INFO text of `sections` (malloc'd, *len bytes, no NUL needed by the
 * caller; the caller frees it). NULL when out of memory. */
char *resp_info_text(uint32_t sections, const struct resp_info_local *loc,
                     const struct resp_info_shards *sh, size_t *len);

#endif

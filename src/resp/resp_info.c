/* resp_info: see resp_info.h.
 *
 * The text is built in a growing heap string (a cluster may have many
 * shards); sections are separated by one empty line and the text ends
 * with the last field's CRLF, as Redis's. Counters of the proxy are every
 * worker's added up at the time of the INFO (resp_stats); keys, hits,
 * misses and memory are the primaries' added up; a primary that did not
 * answer is left out and counted in the Weir section. */
#include "resp/resp_info.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "resp/resp_cmap.h"
#include "resp/resp_cmd.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "0.1.0"
#endif
#define RESP_INFO_VERSION "7.0.15" /* presented when no shard said its own */

#define RESP_INFO_NAME(e, name, dflt, all) name,
static const char *const resp_info_names[] = { RESP_INFO_LIST(RESP_INFO_NAME) };
#undef RESP_INFO_NAME
#define RESP_INFO_DFLT(e, name, dflt, all) (dflt ? 1u << e : 0) |
static const uint32_t resp_info_default = RESP_INFO_LIST(RESP_INFO_DFLT) 0;
#undef RESP_INFO_DFLT
#define RESP_INFO_ALL(e, name, dflt, all) (all ? 1u << e : 0) |
static const uint32_t resp_info_all = RESP_INFO_LIST(RESP_INFO_ALL) 0;
#undef RESP_INFO_ALL

uint32_t resp_info_sections(const char *base, const struct resp_arg *args, uint32_t n)
{
    uint32_t mask = 0;
    if (n == 0)
        return resp_info_default;
    for (uint32_t i = 0; i < n; i++) {
        if (resp_arg_is(base, &args[i], "default"))
            mask |= resp_info_default;
        else if (resp_arg_is(base, &args[i], "all") || resp_arg_is(base, &args[i], "everything"))
            mask |= resp_info_all;
        for (int s = 0; s < RESP_INFO_COUNT; s++)
            if (resp_arg_is(base, &args[i], resp_info_names[s]))
                mask |= 1u << s;
    }
    return mask;
}

/* The number after "name:" at the start of a line of text, or 0. */
static uint64_t resp_info_field(const char *text, size_t len, const char *name, char *str,
                                size_t str_size)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < len; i++) {
        if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, name, nl) == 0 &&
            text[i + nl] == ':') {
            const char *v = text + i + nl + 1, *end = text + len;
            if (str) {
                size_t k = 0;
                while (v + k < end && v[k] != '\r' && v[k] != '\n' && k + 1 < str_size) {
                    str[k] = v[k];
                    k++;
                }
                str[k] = 0;
            }
            uint64_t n = 0;
            for (; v < end && *v >= '0' && *v <= '9'; v++)
                n = n * 10 + (uint64_t)(*v - '0');
            return n;
        }
    }
    return 0;
}

/* The number after "key=" in a "db0:keys=1,expires=0,avg_ttl=0" value. */
static uint64_t resp_info_subfield(const char *value, const char *key)
{
    const char *p = strstr(value, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

void resp_info_add_shard(struct resp_info_shards *sh, const char *text, size_t len)
{
    char db0[128], version[32];
    sh->answered++;
    resp_info_field(text, len, "redis_version", version, sizeof(version));
    if (!sh->redis_version[0])
        memcpy(sh->redis_version, version, sizeof(version));
    sh->used_memory += resp_info_field(text, len, "used_memory", NULL, 0);
    sh->maxmemory += resp_info_field(text, len, "maxmemory", NULL, 0);
    sh->hits += resp_info_field(text, len, "keyspace_hits", NULL, 0);
    sh->misses += resp_info_field(text, len, "keyspace_misses", NULL, 0);
    sh->expired += resp_info_field(text, len, "expired_keys", NULL, 0);
    sh->evicted += resp_info_field(text, len, "evicted_keys", NULL, 0);
    db0[0] = 0;
    resp_info_field(text, len, "db0", db0, sizeof(db0));
    uint64_t expires = resp_info_subfield(db0, "expires=");
    sh->keys += resp_info_subfield(db0, "keys=");
    sh->expires += expires;
    sh->ttl_sum += resp_info_subfield(db0, "avg_ttl=") * expires;
}

/* ---- the text ---- */

struct resp_info_buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void resp_info_add(struct resp_info_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void resp_info_add(struct resp_info_buf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* "1.50M" as Redis's bytesToHuman. */
static void resp_info_human(char *out, size_t size, uint64_t n)
{
    static const char units[] = "BKMGTP";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%" PRIu64 "B", n);
    else
        snprintf(out, size, "%.2f%c", v, units[u]);
}

static void resp_info_server(struct resp_info_buf *b, const struct resp_info_local *loc,
                             const struct resp_info_shards *sh, const struct resp_stats_sum *st)
{
    struct utsname u;
    struct timeval tv;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    gettimeofday(&tv, NULL);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&loc->lst->addr;
    resp_info_add(b, "# Server\r\nredis_version:%s\r\nredis_git_sha1:00000000\r\n"
                  "redis_git_dirty:0\r\nredis_mode:standalone\r\nos:%s %s %s\r\n"
                  "arch_bits:%zu\r\nmultiplexing_api:epoll\r\nprocess_id:%d\r\n"
                  "tcp_port:%u\r\nserver_time_usec:%" PRIu64 "\r\nuptime_in_seconds:%" PRIu64
                  "\r\nuptime_in_days:%" PRIu64 "\r\nweir_version:%s\r\n",
                  sh->redis_version[0] ? sh->redis_version : RESP_INFO_VERSION, u.sysname,
                  u.release, u.machine, sizeof(void *) * 8, (int)getpid(),
                  (unsigned)ntohs(sin->sin_port),
                  (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec, st->uptime_s,
                  st->uptime_s / 86400, WEIR_VERSION);
}

static void resp_info_clients(struct resp_info_buf *b, const struct resp_info_local *loc,
                              const struct resp_stats_sum *st)
{
    resp_info_add(b, "# Clients\r\nconnected_clients:%" PRIu64 "\r\ncluster_connections:0\r\n"
                  "maxclients:%u\r\nblocked_clients:%" PRIu64 "\r\ntracking_clients:0\r\n"
                  "clients_in_timeout_table:0\r\n", st->clients, loc->lst->max_connections,
                  st->blocked);
}

static void resp_info_memory(struct resp_info_buf *b, const struct resp_info_shards *sh)
{
    char used[32], max[32];
    resp_info_human(used, sizeof(used), sh->used_memory);
    resp_info_human(max, sizeof(max), sh->maxmemory);
    resp_info_add(b, "# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n"
                  "maxmemory:%" PRIu64 "\r\nmaxmemory_human:%s\r\n", sh->used_memory, used,
                  sh->maxmemory, max);
}

static void resp_info_stats(struct resp_info_buf *b, const struct resp_info_shards *sh,
                            const struct resp_stats_sum *st)
{
    resp_info_add(b, "# Stats\r\ntotal_connections_received:%" PRIu64 "\r\n"
                  "total_commands_processed:%" PRIu64 "\r\ninstantaneous_ops_per_sec:%" PRIu64
                  "\r\nrejected_connections:0\r\nexpired_keys:%" PRIu64 "\r\nevicted_keys:%" PRIu64
                  "\r\nkeyspace_hits:%" PRIu64 "\r\nkeyspace_misses:%" PRIu64 "\r\n"
                  "total_error_replies:%" PRIu64 "\r\n", st->connections, st->commands,
                  st->ops_per_sec, sh->expired, sh->evicted, sh->hits, sh->misses, st->errors);
}

static void resp_info_cpu(struct resp_info_buf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        memset(&ru, 0, sizeof(ru));
    resp_info_add(b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                  (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
                  (long)ru.ru_utime.tv_usec);
}

/* # Weir of a Redis Cluster backend: the primaries of the slot map this
 * worker routes with, their replicas and the commands it sent them. */
static void resp_info_nodes(struct resp_info_buf *b, const struct resp_route *r,
                            const struct resp_info_shards *sh)
{
    resp_info_add(b, "# Weir\r\ncluster:%s\r\ndistribution:redis_cluster\r\nread_from:%s\r\n"
                  "shards:%u\r\nshards_answered:%u\r\n", r->cfg->name,
                  cfg_redis_read_name(r->cfg->read_from), r->n_shards, sh->answered);
    for (uint32_t i = 0; i < r->n_shards; i++) {
        const struct resp_shard_srv *ss = &r->shards[i];
        uint32_t slots = 0;
        for (uint32_t k = 0; k < RCLUSTER_SLOTS; k++)
            slots += r->cmap->slot_node[k] == i;
        resp_info_add(b, "shard%u:primary=%s,slots=%u,commands=%" PRIu64, i, ss->primary->name,
                      slots, ss->primary->commands);
        for (uint32_t k = 0; k < ss->n_replicas; k++)
            resp_info_add(b, ",replica=%s,commands=%" PRIu64, ss->replicas[k]->name,
                          ss->replicas[k]->commands);
        resp_info_add(b, "\r\n");
    }
}

static void resp_info_weir(struct resp_info_buf *b, const struct resp_info_local *loc,
                           const struct resp_info_shards *sh)
{
    const struct resp_route *r = loc->route;
    if (!r)
        return;
    const struct cfg_redis_cluster *cc = r->cfg;
    if (cc->n_seeds > 0) {
        resp_info_nodes(b, r, sh);
        return;
    }
    resp_info_add(b, "# Weir\r\ncluster:%s\r\ndistribution:%s\r\nhash:%s\r\nread_from:%s\r\n"
                  "shards:%zu\r\nshards_answered:%u\r\n", cc->name,
                  cfg_redis_dist_name(cc->distribution), cfg_redis_hash_name(cc->hash),
                  cfg_redis_read_name(cc->read_from), cc->n_shards, sh->answered);
    for (size_t i = 0; i < cc->n_shards; i++) {
        const struct resp_shard_srv *ss = &r->shards[i];
        const struct resp_health_shard *hs = &r->hs->shards[i];
        resp_info_add(b, "shard%zu:name=%s,primary=%s,up=%d,commands=%" PRIu64, i,
                      cc->shards[i].name, ss->primary->name,
                      resp_health_usable(&hs->primary, ss->primary->failed_ms),
                      ss->primary->commands);
        for (uint32_t k = 0; k < ss->n_replicas; k++)
            resp_info_add(b, ",replica=%s,up=%d,in_sync=%d,commands=%" PRIu64,
                          ss->replicas[k]->name,
                          resp_health_usable(&hs->replicas[k], ss->replicas[k]->failed_ms),
                          atomic_load(&hs->replicas[k].lag_ok), ss->replicas[k]->commands);
        resp_info_add(b, "\r\n");
    }
}

static void resp_info_section(struct resp_info_buf *b, int s, const struct resp_info_local *loc,
                              const struct resp_info_shards *sh, const struct resp_stats_sum *st)
{
    switch (s) {
    case RESP_INFO_SERVER:
        resp_info_server(b, loc, sh, st);
        break;
    case RESP_INFO_CLIENTS:
        resp_info_clients(b, loc, st);
        break;
    case RESP_INFO_MEMORY:
        resp_info_memory(b, sh);
        break;
    case RESP_INFO_PERSISTENCE:
        resp_info_add(b, "# Persistence\r\nloading:0\r\nasync_loading:0\r\n");
        break;
    case RESP_INFO_STATS:
        resp_info_stats(b, sh, st);
        break;
    case RESP_INFO_REPLICATION:
        resp_info_add(b, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        break;
    case RESP_INFO_CPU:
        resp_info_cpu(b);
        break;
    case RESP_INFO_CLUSTER:
        resp_info_add(b, "# Cluster\r\ncluster_enabled:0\r\n");
        break;
    case RESP_INFO_KEYSPACE:
        resp_info_add(b, "# Keyspace\r\n");
        if (sh->keys > 0)
            resp_info_add(b, "db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=%" PRIu64 "\r\n",
                          sh->keys, sh->expires, sh->expires ? sh->ttl_sum / sh->expires : 0);
        break;
    case RESP_INFO_WEIR:
        resp_info_weir(b, loc, sh);
        break;
    default: /* modules, commandstats, errorstats, latencystats: the heading only */
        resp_info_add(b, "# %c%s\r\n", resp_info_names[s][0] - 'a' + 'A', resp_info_names[s] + 1);
        break;
    }
}

char *resp_info_text(uint32_t sections, const struct resp_info_local *loc,
                     const struct resp_info_shards *sh, size_t *len)
{
    struct resp_info_buf b = { .p = malloc(4096), .cap = 4096 };
    struct resp_stats_sum st;
    if (!b.p)
        return NULL;
    b.p[0] = 0;
    resp_stats_sum(&st, loc->now_ms);
    int n = 0;
    for (int s = 0; s < RESP_INFO_COUNT; s++) {
        if (!(sections & 1u << s) || (s == RESP_INFO_WEIR && !loc->route))
            continue;
        if (n++ > 0)
            resp_info_add(&b, "\r\n");
        resp_info_section(&b, s, loc, sh, &st);
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

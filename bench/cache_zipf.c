/* cache_zipf: the hit ratio of each eviction policy on a Zipf workload,
 * through the cache's own store (src/cache/store.c), in process.
 *
 *   usage: cache-zipf [KEYS [REQUESTS [CACHE_PERCENT [ALPHA]]]]
 *          defaults 100000 keys, 2000000 requests, a cache holding 10 % of
 *          the working set's bytes, alpha 0.99
 *
 * Each request picks a key by Zipf(alpha) (rank 1 most popular), looks it
 * up, and on a miss stores a 1 KB object for it, as a cache step would. The
 * first fifth of the requests warms the cache and is not counted. The
 * keys' ranks are shuffled over the key space so popularity does not follow
 * insertion order. Same seed for every policy: they see the same stream. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache_cfg.h"
#include "cache/evict.h"
#include "cache/store.h"

#define BODY_BYTES 1024

static uint64_t zipf_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The cumulative distribution of Zipf(alpha) over n ranks. */
static double *zipf_cdf(size_t n, double alpha)
{
    double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
    if (cdf == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        sum += 1.0 / pow((double)(i + 1), alpha);
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / pow((double)(i + 1), alpha) / sum;
        cdf[i] = acc;
    }
    return cdf;
}

static size_t zipf_pick(const double *cdf, size_t n, uint64_t *rng)
{
    double u = (double)(zipf_rng(rng) >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int run_policy(enum evict_policy p, const double *cdf, const uint32_t *perm, size_t keys,
                      size_t requests, uint64_t memory, double *ratio, double *ns_per_req)
{
    static char body[BODY_BYTES];
    struct cfg_cache cc = { .name = (char *)evict_policy_name(p), .memory_bytes = memory,
                            .max_object_bytes = memory, .eviction = (int)p };
    struct cache *c = cache_acquire(&cc);
    if (c == NULL)
        return -1;
    struct http_msg *resp = calloc(1, sizeof(*resp));
    if (resp == NULL)
        return -1;
    http_msg_init(resp);
    resp->status = 200;
    struct cache_resp meta;
    cache_resp_init(&meta, 200);
    uint64_t rng = 0x2545f4914f6cdd1dULL, hits = 0, counted = 0;
    size_t warm = requests / 5;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < requests; i++) {
        char key[32];
        int kn = snprintf(key, sizeof(key), "k%u", perm[zipf_pick(cdf, keys, &rng)]);
        struct cache_obj *o = cache_lookup(c, key, (size_t)kn, NULL, 0);
        if (i >= warm) {
            counted++;
            hits += o != NULL;
        }
        if (o != NULL) {
            cache_obj_put(o);
            continue;
        }
        struct http_slice k = { key, (size_t)kn };
        o = cache_obj_new(c, k, k, (struct http_slice){ "", 0 }, resp->headers, 0, &meta);
        if (o && cache_obj_append(c, o, body, sizeof(body)) == 0) {
            cache_obj_set_times(o, (int64_t)i, (int64_t)i);
            (void)cache_insert(c, o);
        }
        cache_obj_put(o);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *ratio = counted ? (double)hits / (double)counted : 0;
    *ns_per_req = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                  (double)requests;
    free(resp);
    cache_release(c);
    return 0;
}

int main(int argc, char **argv)
{
    size_t keys = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t requests = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
    double percent = argc > 3 ? atof(argv[3]) : 10;
    double alpha = argc > 4 ? atof(argv[4]) : 0.99;
    if (keys < 16 || requests < 10 || percent <= 0 || percent > 100) {
        fprintf(stderr, "usage: %s [KEYS [REQUESTS [CACHE_PERCENT [ALPHA]]]]\n", argv[0]);
        return 2;
    }
    double *cdf = zipf_cdf(keys, alpha);
    uint32_t *perm = malloc(keys * sizeof(*perm));
    if (cdf == NULL || perm == NULL)
        return 1;
    uint64_t rng = 42;
    for (size_t i = 0; i < keys; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = keys - 1; i > 0; i--) {
        size_t j = zipf_rng(&rng) % (i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    /* an object costs its body, its key twice and the object header: about 1.3 KB */
    uint64_t memory = (uint64_t)((double)keys * 1300.0 * percent / 100.0);
    if (memory < 64u << 10)
        memory = 64u << 10;
    printf("cache-zipf: %zu keys, Zipf(%.2f), %zu requests (first fifth warm-up), cache %.0f%% "
           "of the working set (%llu bytes), 1 KB objects\n",
           keys, alpha, requests, percent, (unsigned long long)memory);
    printf("%-8s | %9s | %12s\n", "policy", "hit ratio", "ns/request");
    for (int p = 0; p < EVICT_POLICY_COUNT; p++) {
        double ratio, ns;
        if (run_policy((enum evict_policy)p, cdf, perm, keys, requests, memory, &ratio, &ns) < 0)
            return 1;
        printf("%-8s | %8.2f%% | %12.0f\n", evict_policy_name((enum evict_policy)p), ratio * 100,
               ns);
    }
    free(cdf);
    free(perm);
    return 0;
}

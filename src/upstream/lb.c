/* lb: the balancing algorithms.
 *
 * One struct lb per cluster per configuration snapshot. Everything built by
 * lb_new() is read-only afterwards and shared by all workers; what a pick
 * changes lives in a per-worker slot, each slot starting on its own cache
 * line so two workers never write the same line:
 *
 *   struct lb (read-only)            worker slots (one 64-byte-aligned block)
 *   +----------------------+         +--------------------------------------+
 *   | eps[n], weight[n]    |         | w0: rng, cursor, turn, current[n]|pad |
 *   | cum_weight[n]        |         +--------------------------------------+
 *   | ring_hash/ring_ep[P] |         | w1: rng, cursor, turn, current[n]|pad |
 *   | maglev[65537]        |         +--------------------------------------+
 *   | workers -------------+-------->| ...                                  |
 *   +----------------------+         +--------------------------------------+
 *
 * Algorithms:
 *  - round_robin: a cursor per worker, skipping unusable endpoints.
 *  - weighted_round_robin: smooth WRR (each pick adds every usable weight to
 *    its current value, takes the largest and subtracts the usable total), so
 *    5,1,1 gives a a b a c a a, never a burst of five.
 *  - least_connections / weighted_least_connections / least_response_time:
 *    an O(n) scan for the lowest score; endpoints tied for the lowest take
 *    turns per worker, so equal endpoints share the load. Ratios are compared
 *    by cross-multiplication; inputs are clamped so products fit in 64 bits.
 *  - random / power_of_two: a per-worker splitmix64 generator, weighted
 *    draws by binary search over prefix sums (a plain modulo when weights are
 *    equal); rejection of unusable endpoints, then an exact pass over them.
 *  - ip_hash and consistent_hash/ring: a ketama-like ring of 100 points per
 *    unit of weight (at most LB_RING_MAX_POINTS in all), each point hashed
 *    from the endpoint's name ("127.0.0.1:9001-17"), so the ring depends on
 *    the set of names and not on their order. ip_hash is the same ring: the
 *    caller hashes the client address into key_hash. Adding or removing an
 *    endpoint moves only the keys of the arcs it gains or loses (~1/N).
 *  - consistent_hash/maglev: a Maglev table of 65537 slots filled from each
 *    endpoint's (offset, skip) permutation, endpoints taking turns in name
 *    order, each taking weight/max_weight of a slot per turn. O(1) lookup,
 *    near-minimal disruption.
 *
 * The key is passed through hash_mix64() before lookup, so a weak key hash
 * (say, a raw IPv4 address) still spreads over the whole ring or table.
 *
 * "Usable" means up and not `avoid`. When nothing is usable but `avoid` is up,
 * `avoid` is returned: a retry then goes back to the same endpoint rather than
 * failing. When the hashing algorithms' endpoint for a key is unusable, the
 * key walks on deterministically (ring: the next distinct endpoint clockwise;
 * maglev: a few re-hashed probes, then a scan), so keys of the other
 * endpoints never move.
 *
 * A pick never allocates, never locks and reads the endpoints' atomics
 * relaxed: a stale count only makes one decision slightly less good. */
#include "upstream/lb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

#define LB_CACHE_LINE 64
#define LB_RING_POINTS_PER_WEIGHT 100
#define LB_RING_MAX_POINTS 100000
#define LB_MAGLEV_SIZE 65537 /* prime; the table holds uint16 endpoint indexes */
#define LB_MAGLEV_EMPTY UINT16_MAX
#define LB_MAGLEV_PROBES 8
#define LB_RANDOM_TRIES 4
/* Clamps keeping every cross-multiplied score below 2^63. */
#define LB_WEIGHT_MAX 4096u
#define LB_ACTIVE_MAX (1 << 20)
#define LB_EWMA_MAX_US (1ULL << 31)
#define LB_IDENT_MAX 96

/* One worker's mutable state; starts on its own cache line. */
struct lb_worker {
    uint64_t rng;      /* splitmix64 state */
    size_t cursor;     /* round-robin position, < n */
    uint64_t turn;     /* least-*: which of the endpoints tied for lowest wins */
    int64_t current[]; /* smooth WRR current weights (weighted_round_robin only) */
};

struct lb {
    enum cfg_balance algo;
    enum cfg_hash_method method; /* the one built (maglev falls back to ring if n > 65535) */
    struct endpoint **eps;       /* borrowed */
    size_t n;
    uint32_t *weight;      /* eps[i]->weight clamped to 1..LB_WEIGHT_MAX */
    uint64_t total_weight;
    int equal_weights;
    uint64_t *cum_weight;  /* prefix sums of weight (random, power_of_two, unequal weights) */
    uint64_t *ring_hash;   /* sorted point hashes */
    uint32_t *ring_ep;     /* endpoint of each point */
    size_t ring_len;
    uint16_t *maglev;      /* LB_MAGLEV_SIZE endpoint indexes */
    unsigned char *workers; /* n_workers slots of worker_stride bytes, 64-byte aligned */
    size_t worker_stride;
    unsigned n_workers;
};

/* An endpoint's identity for hashing: its name, plus "#k" for the k-th
 * duplicate of a name, so duplicates get points of their own. */
struct lb_ident {
    const char *name;
    size_t name_len;
    uint32_t ep;
    uint32_t dup;
};

struct lb_ring_point {
    uint64_t hash;
    uint32_t ep;
};

/* ---- small helpers ---------------------------------------------------- */

static inline int lb_up(const struct endpoint *ep)
{
    return atomic_load_explicit(&ep->up, memory_order_relaxed) != 0;
}

static inline int lb_usable(const struct endpoint *ep, const struct endpoint *avoid)
{
    return ep != avoid && lb_up(ep);
}

static inline uint64_t lb_active(const struct endpoint *ep)
{
    int active = atomic_load_explicit(&ep->active, memory_order_relaxed);

    if (active < 0)
        return 0;
    return active > LB_ACTIVE_MAX ? LB_ACTIVE_MAX : (uint64_t)active;
}

static inline uint64_t lb_ewma(const struct endpoint *ep)
{
    uint64_t ewma_us = atomic_load_explicit(&ep->ewma_us, memory_order_relaxed);

    return ewma_us > LB_EWMA_MAX_US ? LB_EWMA_MAX_US : ewma_us;
}

static inline struct lb_worker *lb_worker_at(struct lb *lb, unsigned worker)
{
    if (worker >= lb->n_workers)
        worker = 0;
    return (struct lb_worker *)(lb->workers + (size_t)worker * lb->worker_stride);
}

static inline uint64_t lb_rand(struct lb_worker *w)
{
    return hash_mix64(w->rng++);
}

/* The answer when no endpoint but possibly `avoid` is usable: `avoid` itself
 * if it belongs to this lb and is up, else NULL. Looked up among our own
 * endpoints so an endpoint of another snapshot is never handed out. */
static struct endpoint *lb_fallback(struct lb *lb, const struct endpoint *avoid)
{
    size_t i;

    if (!avoid)
        return NULL;
    i = avoid->index;
    if (i >= lb->n || lb->eps[i] != avoid)
        for (i = 0; i < lb->n && lb->eps[i] != avoid; i++)
            ;
    if (i == lb->n || !lb_up(lb->eps[i]))
        return NULL;
    return lb->eps[i];
}

static int lb_any_usable(const struct lb *lb, const struct endpoint *avoid)
{
    for (size_t i = 0; i < lb->n; i++)
        if (lb_usable(lb->eps[i], avoid))
            return 1;
    return 0;
}

/* ---- round robin ------------------------------------------------------ */

static struct endpoint *lb_pick_round_robin(struct lb *lb, struct lb_worker *w,
                                            const struct endpoint *avoid)
{
    size_t i = w->cursor;

    for (size_t k = 0; k < lb->n; k++) {
        if (lb_usable(lb->eps[i], avoid)) {
            w->cursor = i + 1 == lb->n ? 0 : i + 1;
            return lb->eps[i];
        }
        if (++i == lb->n)
            i = 0;
    }
    return lb_fallback(lb, avoid);
}

/* Smooth weighted round robin over the usable endpoints: unusable ones are
 * left out of both the additions and the total, so their share spreads
 * over the others in proportion. Ties go to the lowest index. */
static struct endpoint *lb_pick_weighted_round_robin(struct lb *lb, struct lb_worker *w,
                                                     const struct endpoint *avoid)
{
    int64_t total = 0;
    size_t best = lb->n;

    for (size_t i = 0; i < lb->n; i++) {
        if (!lb_usable(lb->eps[i], avoid))
            continue;
        w->current[i] += lb->weight[i];
        total += lb->weight[i];
        if (best == lb->n || w->current[i] > w->current[best])
            best = i;
    }
    if (best == lb->n)
        return lb_fallback(lb, avoid);
    w->current[best] -= total;
    return lb->eps[best];
}

/* ---- least-* ---------------------------------------------------------- */

enum lb_least_kind {
    LB_LEAST_CONNECTIONS,          /* active + 1 */
    LB_LEAST_WEIGHTED_CONNECTIONS, /* (active + 1) / weight */
    LB_LEAST_RESPONSE_TIME,        /* ewma * (active + 1) / weight */
};

/* Lowest latency average among the usable endpoints that have one, or 0. */
static uint64_t lb_min_ewma(const struct lb *lb, const struct endpoint *avoid)
{
    uint64_t min_us = 0;

    for (size_t i = 0; i < lb->n; i++) {
        uint64_t ewma_us = lb_ewma(lb->eps[i]);

        if (ewma_us && (!min_us || ewma_us < min_us) && lb_usable(lb->eps[i], avoid))
            min_us = ewma_us;
    }
    return min_us;
}

/* Writes endpoint i's score as the fraction *num / *den (lower is better).
 * For least_response_time an endpoint without a sample counts with
 * `default_ewma` (the lowest average seen, so it gets traffic and soon a
 * sample of its own), and an average of at least 1 us, so that with no
 * samples at all the choice is least weighted connections. */
static inline void lb_least_score(const struct lb *lb, size_t i, enum lb_least_kind kind,
                                  uint64_t default_ewma, uint64_t *num, uint64_t *den)
{
    uint64_t load = lb_active(lb->eps[i]) + 1, ewma_us;

    *den = kind == LB_LEAST_CONNECTIONS ? 1 : lb->weight[i];
    if (kind != LB_LEAST_RESPONSE_TIME) {
        *num = load;
        return;
    }
    ewma_us = lb_ewma(lb->eps[i]);
    if (!ewma_us)
        ewma_us = default_ewma;
    *num = (ewma_us ? ewma_us : 1) * load;
}

/* The usable endpoint of lowest score. Endpoints tied for the lowest take
 * turns: the worker's turn counter selects which of the k tied ones wins, so
 * equal endpoints share the load exactly (a rotating scan start would favour
 * the endpoint just after a busy one). Two passes over the atomics; if they
 * changed in between, the first pass's winner is used. */
static struct endpoint *lb_pick_least(struct lb *lb, struct lb_worker *w,
                                      const struct endpoint *avoid, enum lb_least_kind kind)
{
    uint64_t default_ewma = kind == LB_LEAST_RESPONSE_TIME ? lb_min_ewma(lb, avoid) : 0;
    uint64_t best_num = 0, best_den = 1, num, den, target;
    size_t best = lb->n, ties = 0;

    for (size_t i = 0; i < lb->n; i++) {
        if (!lb_usable(lb->eps[i], avoid))
            continue;
        lb_least_score(lb, i, kind, default_ewma, &num, &den);
        if (best == lb->n || num * best_den < best_num * den) {
            best = i;
            best_num = num;
            best_den = den;
            ties = 1;
        } else if (num * best_den == best_num * den) {
            ties++;
        }
    }
    if (best == lb->n)
        return lb_fallback(lb, avoid);
    if (ties == 1)
        return lb->eps[best];
    target = w->turn++ % ties;
    for (size_t i = best; i < lb->n; i++) {
        if (!lb_usable(lb->eps[i], avoid))
            continue;
        lb_least_score(lb, i, kind, default_ewma, &num, &den);
        if (num * best_den == best_num * den && target-- == 0)
            return lb->eps[i];
    }
    return lb->eps[best];
}

/* ---- random, power of two -------------------------------------------- */

/* Any endpoint, drawn in proportion to weight, usable or not. */
static size_t lb_random_index(struct lb *lb, struct lb_worker *w)
{
    uint64_t r = lb_rand(w);
    size_t lo = 0, hi;

    if (lb->equal_weights)
        return r % lb->n;
    r %= lb->total_weight;
    hi = lb->n - 1;
    while (lo < hi) { /* first i with cum_weight[i] > r */
        size_t mid = lo + (hi - lo) / 2;

        if (lb->cum_weight[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* A usable endpoint other than `exclude` (may be NULL), drawn in proportion
 * to weight; NULL when there is none. A few draws among all endpoints first
 * (cheap, exact while most are usable), then one exact pass over the usable
 * ones, so the result is proportional to weight either way. */
static struct endpoint *lb_random_usable(struct lb *lb, struct lb_worker *w,
                                         const struct endpoint *avoid,
                                         const struct endpoint *exclude)
{
    uint64_t total = 0, r;

    for (int t = 0; t < LB_RANDOM_TRIES; t++) {
        struct endpoint *ep = lb->eps[lb_random_index(lb, w)];

        if (ep != exclude && lb_usable(ep, avoid))
            return ep;
    }
    for (size_t i = 0; i < lb->n; i++)
        if (lb->eps[i] != exclude && lb_usable(lb->eps[i], avoid))
            total += lb->weight[i];
    if (!total)
        return NULL;
    r = lb_rand(w) % total;
    for (size_t i = 0; i < lb->n; i++) {
        if (lb->eps[i] == exclude || !lb_usable(lb->eps[i], avoid))
            continue;
        if (r < lb->weight[i])
            return lb->eps[i];
        r -= lb->weight[i];
    }
    return NULL; /* unreachable unless `up` changed under us */
}

static struct endpoint *lb_pick_random(struct lb *lb, struct lb_worker *w,
                                       const struct endpoint *avoid)
{
    struct endpoint *ep = lb_random_usable(lb, w, avoid, NULL);

    return ep ? ep : lb_fallback(lb, avoid);
}

/* Two distinct usable endpoints drawn by weight; the one with fewer requests
 * in flight wins, then the lower latency average, then the first drawn. */
static struct endpoint *lb_pick_power_of_two(struct lb *lb, struct lb_worker *w,
                                             const struct endpoint *avoid)
{
    struct endpoint *a, *b;
    uint64_t active_a, active_b;

    a = lb_random_usable(lb, w, avoid, NULL);
    if (!a)
        return lb_fallback(lb, avoid);
    b = lb_random_usable(lb, w, avoid, a);
    if (!b)
        return a;
    active_a = lb_active(a);
    active_b = lb_active(b);
    if (active_a != active_b)
        return active_b < active_a ? b : a;
    return lb_ewma(b) < lb_ewma(a) ? b : a;
}

/* ---- ring ------------------------------------------------------------- */

/* Index of the first point at or after `key` clockwise. */
static size_t lb_ring_find(const struct lb *lb, uint64_t key)
{
    size_t lo = 0, hi = lb->ring_len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (lb->ring_hash[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == lb->ring_len ? 0 : lo;
}

static struct endpoint *lb_pick_ring(struct lb *lb, uint64_t key, const struct endpoint *avoid)
{
    size_t i = lb_ring_find(lb, key);
    struct endpoint *ep = lb->eps[lb->ring_ep[i]];

    if (lb_usable(ep, avoid))
        return ep;
    if (!lb_any_usable(lb, avoid))
        return lb_fallback(lb, avoid);
    /* Walk clockwise to the next usable endpoint: the key lands where it
     * would if the unusable endpoints were removed from the ring. */
    for (size_t k = 1; k < lb->ring_len; k++) {
        if (++i == lb->ring_len)
            i = 0;
        ep = lb->eps[lb->ring_ep[i]];
        if (lb_usable(ep, avoid))
            return ep;
    }
    return lb_fallback(lb, avoid); /* `up` changed under us */
}

/* ---- maglev ----------------------------------------------------------- */

static struct endpoint *lb_pick_maglev(struct lb *lb, uint64_t key, const struct endpoint *avoid)
{
    struct endpoint *ep = lb->eps[lb->maglev[key % LB_MAGLEV_SIZE]];
    size_t i;

    if (lb_usable(ep, avoid))
        return ep;
    if (!lb_any_usable(lb, avoid))
        return lb_fallback(lb, avoid);
    /* Re-hashed probes keep the weights for the displaced keys; the scan
     * bounds the work when most endpoints are down. */
    for (uint64_t p = 1; p <= LB_MAGLEV_PROBES; p++) {
        ep = lb->eps[lb->maglev[hash_mix64(key ^ (p * 0x9e3779b97f4a7c15ULL)) % LB_MAGLEV_SIZE]];
        if (lb_usable(ep, avoid))
            return ep;
    }
    i = key % lb->n;
    for (size_t k = 0; k < lb->n; k++, i = i + 1 == lb->n ? 0 : i + 1)
        if (lb_usable(lb->eps[i], avoid))
            return lb->eps[i];
    return lb_fallback(lb, avoid);
}

/* ---- pick ------------------------------------------------------------- */

struct endpoint *lb_pick(struct lb *lb, unsigned worker, uint64_t key_hash,
                         const struct endpoint *avoid)
{
    struct lb_worker *w;

    if (!lb || lb->n == 0)
        return NULL;
    w = lb_worker_at(lb, worker);
    switch (lb->algo) {
    case CFG_BALANCE_ROUND_ROBIN:
        return lb_pick_round_robin(lb, w, avoid);
    case CFG_BALANCE_WEIGHTED_ROUND_ROBIN:
        return lb_pick_weighted_round_robin(lb, w, avoid);
    case CFG_BALANCE_LEAST_CONNECTIONS:
        return lb_pick_least(lb, w, avoid, LB_LEAST_CONNECTIONS);
    case CFG_BALANCE_WEIGHTED_LEAST_CONNECTIONS:
        return lb_pick_least(lb, w, avoid, LB_LEAST_WEIGHTED_CONNECTIONS);
    case CFG_BALANCE_IP_HASH:
        return lb_pick_ring(lb, hash_mix64(key_hash), avoid);
    case CFG_BALANCE_CONSISTENT_HASH:
        if (lb->method == CFG_HASH_METHOD_MAGLEV)
            return lb_pick_maglev(lb, hash_mix64(key_hash), avoid);
        return lb_pick_ring(lb, hash_mix64(key_hash), avoid);
    case CFG_BALANCE_LEAST_RESPONSE_TIME:
        return lb_pick_least(lb, w, avoid, LB_LEAST_RESPONSE_TIME);
    case CFG_BALANCE_RANDOM:
        return lb_pick_random(lb, w, avoid);
    case CFG_BALANCE_POWER_OF_TWO:
        return lb_pick_power_of_two(lb, w, avoid);
    case CFG_BALANCE_COUNT:
        break;
    }
    return lb_pick_round_robin(lb, w, avoid);
}

int lb_uses_key(const struct lb *lb)
{
    return lb && (lb->algo == CFG_BALANCE_IP_HASH || lb->algo == CFG_BALANCE_CONSISTENT_HASH);
}

/* ---- building --------------------------------------------------------- */

static int lb_ident_cmp(const void *a, const void *b)
{
    const struct lb_ident *x = a, *y = b;
    size_t len = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, len);

    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/* Returns the endpoints' identities sorted by name (duplicates numbered in
 * endpoint order), or NULL on allocation failure. The caller frees it. */
static struct lb_ident *lb_idents_new(const struct lb *lb)
{
    struct lb_ident *ids = calloc(lb->n, sizeof(*ids));

    if (!ids)
        return NULL;
    for (size_t i = 0; i < lb->n; i++) {
        ids[i].name = lb->eps[i]->name;
        ids[i].name_len = strnlen(lb->eps[i]->name, sizeof(lb->eps[i]->name));
        ids[i].ep = (uint32_t)i;
    }
    qsort(ids, lb->n, sizeof(*ids), lb_ident_cmp);
    for (size_t i = 1; i < lb->n; i++)
        if (ids[i].name_len == ids[i - 1].name_len &&
            memcmp(ids[i].name, ids[i - 1].name, ids[i].name_len) == 0)
            ids[i].dup = ids[i - 1].dup + 1;
    return ids;
}

/* Writes the identity of `id` followed by `suffix` (if not NULL) into buf;
 * returns its length (< size). */
static size_t lb_ident_format(char *buf, size_t size, const struct lb_ident *id,
                              const char *suffix, unsigned number)
{
    int len;

    if (id->dup)
        len = snprintf(buf, size, "%.*s#%u", (int)id->name_len, id->name, (unsigned)id->dup);
    else
        len = snprintf(buf, size, "%.*s", (int)id->name_len, id->name);
    if (len < 0 || (size_t)len >= size)
        return size - 1;
    if (suffix)
        len += snprintf(buf + len, size - (size_t)len, "%s%u", suffix, number);
    return (size_t)len < size ? (size_t)len : size - 1;
}

static int lb_ring_point_cmp(const void *a, const void *b)
{
    const struct lb_ring_point *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/* Builds ring_hash/ring_ep. Returns 0 or -ENOMEM. */
static int lb_ring_build(struct lb *lb, const struct lb_ident *ids)
{
    uint64_t want = lb->total_weight * LB_RING_POINTS_PER_WEIGHT, total = 0;
    struct lb_ring_point *pts;
    char buf[LB_IDENT_MAX];
    size_t k = 0;

    for (size_t i = 0; i < lb->n; i++) {
        uint64_t p = (uint64_t)lb->weight[i] * LB_RING_POINTS_PER_WEIGHT;

        if (want > LB_RING_MAX_POINTS)
            p = p * LB_RING_MAX_POINTS / want;
        total += p ? p : 1;
    }
    pts = malloc(total * sizeof(*pts));
    lb->ring_hash = malloc(total * sizeof(*lb->ring_hash));
    lb->ring_ep = malloc(total * sizeof(*lb->ring_ep));
    if (!pts || !lb->ring_hash || !lb->ring_ep) {
        free(pts);
        return -ENOMEM;
    }
    for (size_t i = 0; i < lb->n; i++) {
        const struct lb_ident *id = &ids[i];
        uint64_t p = (uint64_t)lb->weight[id->ep] * LB_RING_POINTS_PER_WEIGHT;

        if (want > LB_RING_MAX_POINTS)
            p = p * LB_RING_MAX_POINTS / want;
        if (!p)
            p = 1;
        for (uint64_t j = 0; j < p; j++, k++) {
            size_t len = lb_ident_format(buf, sizeof(buf), id, "-", (unsigned)j);

            pts[k].hash = hash_bytes(buf, len);
            pts[k].ep = id->ep;
        }
    }
    qsort(pts, total, sizeof(*pts), lb_ring_point_cmp);
    for (size_t i = 0; i < total; i++) {
        lb->ring_hash[i] = pts[i].hash;
        lb->ring_ep[i] = pts[i].ep;
    }
    lb->ring_len = total;
    free(pts);
    return 0;
}

/* Fills the Maglev table. Endpoints take turns in name order; per turn each
 * adds its weight to a credit and claims one slot (the next free one of its
 * own permutation offset, offset+skip, offset+2*skip, ... mod M) for every
 * max_weight of credit, so slots end up proportional to weight. Returns 0 or
 * -ENOMEM. */
static int lb_maglev_build(struct lb *lb, const struct lb_ident *ids)
{
    uint64_t *pos = calloc(lb->n, sizeof(*pos));
    uint64_t *skip = calloc(lb->n, sizeof(*skip));
    uint32_t *credit = calloc(lb->n, sizeof(*credit));
    uint32_t max_weight = 0;
    size_t filled = 0;
    char buf[LB_IDENT_MAX];
    int rc = -ENOMEM;

    lb->maglev = malloc(LB_MAGLEV_SIZE * sizeof(*lb->maglev));
    if (!pos || !skip || !credit || !lb->maglev)
        goto out;
    for (size_t k = 0; k < lb->n; k++) {
        size_t len = lb_ident_format(buf, sizeof(buf), &ids[k], NULL, 0);

        pos[k] = hash_bytes_seed(buf, len, 0x6d61676c6576ULL) % LB_MAGLEV_SIZE;
        skip[k] = hash_bytes_seed(buf, len, 0x736b6970ULL) % (LB_MAGLEV_SIZE - 1) + 1;
        if (lb->weight[ids[k].ep] > max_weight)
            max_weight = lb->weight[ids[k].ep];
    }
    memset(lb->maglev, 0xff, LB_MAGLEV_SIZE * sizeof(*lb->maglev));
    while (filled < LB_MAGLEV_SIZE) {
        for (size_t k = 0; k < lb->n && filled < LB_MAGLEV_SIZE; k++) {
            credit[k] += lb->weight[ids[k].ep];
            if (credit[k] < max_weight)
                continue;
            credit[k] -= max_weight;
            /* M is prime and skip in 1..M-1, so the walk visits every slot
             * and finds a free one while any is left. */
            while (lb->maglev[pos[k]] != LB_MAGLEV_EMPTY)
                pos[k] = (pos[k] + skip[k]) % LB_MAGLEV_SIZE;
            lb->maglev[pos[k]] = (uint16_t)ids[k].ep;
            filled++;
        }
    }
    rc = 0;
out:
    free(credit);
    free(skip);
    free(pos);
    return rc;
}

static int lb_tables_build(struct lb *lb)
{
    struct lb_ident *ids;
    int rc = 0;

    if (lb->algo == CFG_BALANCE_RANDOM || lb->algo == CFG_BALANCE_POWER_OF_TWO) {
        lb->cum_weight = malloc(lb->n * sizeof(*lb->cum_weight));
        if (!lb->cum_weight)
            return -ENOMEM;
        for (size_t i = 0; i < lb->n; i++)
            lb->cum_weight[i] = (i ? lb->cum_weight[i - 1] : 0) + lb->weight[i];
    }
    if (lb->algo != CFG_BALANCE_IP_HASH && lb->algo != CFG_BALANCE_CONSISTENT_HASH)
        return 0;
    ids = lb_idents_new(lb);
    if (!ids)
        return -ENOMEM;
    if (lb->method == CFG_HASH_METHOD_MAGLEV)
        rc = lb_maglev_build(lb, ids);
    else
        rc = lb_ring_build(lb, ids);
    free(ids);
    return rc;
}

static int lb_workers_new(struct lb *lb)
{
    size_t stride = sizeof(struct lb_worker);

    if (lb->algo == CFG_BALANCE_WEIGHTED_ROUND_ROBIN)
        stride += lb->n * sizeof(int64_t);
    stride = (stride + LB_CACHE_LINE - 1) / LB_CACHE_LINE * LB_CACHE_LINE;
    lb->worker_stride = stride;
    lb->workers = aligned_alloc(LB_CACHE_LINE, stride * lb->n_workers);
    if (!lb->workers)
        return -ENOMEM;
    memset(lb->workers, 0, stride * lb->n_workers);
    for (unsigned i = 0; i < lb->n_workers; i++) {
        struct lb_worker *w = lb_worker_at(lb, i);

        /* Distinct streams per worker and per lb; workers also start their
         * round-robin cursors apart so they do not all hit eps[0] first. */
        w->rng = hash_mix64(((uint64_t)i << 32) ^ (uint64_t)(uintptr_t)lb ^ lb->n);
        w->cursor = lb->n ? i % lb->n : 0;
        w->turn = i;
    }
    return 0;
}

/* See lb.h. Weights are clamped to 1..4096. consistent_hash with maglev and
 * more than 65535 endpoints builds a ring instead. */
struct lb *lb_new(enum cfg_balance algo, enum cfg_hash_method method, struct endpoint **eps,
                  size_t n, unsigned n_workers)
{
    struct lb *lb = calloc(1, sizeof(*lb));

    if (!lb)
        return NULL;
    lb->algo = algo < CFG_BALANCE_COUNT ? algo : CFG_BALANCE_ROUND_ROBIN;
    lb->method = algo == CFG_BALANCE_CONSISTENT_HASH && method == CFG_HASH_METHOD_MAGLEV &&
                         n < LB_MAGLEV_EMPTY
                     ? CFG_HASH_METHOD_MAGLEV
                     : CFG_HASH_METHOD_RING;
    lb->eps = eps;
    lb->n = n;
    lb->n_workers = n_workers ? n_workers : 1;
    lb->equal_weights = 1;
    lb->weight = calloc(n ? n : 1, sizeof(*lb->weight));
    if (!lb->weight)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        uint32_t weight = eps[i]->weight;

        lb->weight[i] = weight < 1 ? 1 : weight > LB_WEIGHT_MAX ? LB_WEIGHT_MAX : weight;
        lb->total_weight += lb->weight[i];
        if (lb->weight[i] != lb->weight[0])
            lb->equal_weights = 0;
    }
    if (n && lb_tables_build(lb) < 0)
        goto fail;
    if (lb_workers_new(lb) < 0)
        goto fail;
    return lb;
fail:
    lb_free(lb);
    return NULL;
}

void lb_free(struct lb *lb)
{
    if (!lb)
        return;
    free(lb->workers);
    free(lb->maglev);
    free(lb->ring_ep);
    free(lb->ring_hash);
    free(lb->cum_weight);
    free(lb->weight);
    free(lb);
}

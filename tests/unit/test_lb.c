/* Unit tests for src/upstream/lb.c and src/upstream/endpoint.c.
 *
 * Endpoints are plain structs whose atomics (up, active, ewma_us) the tests
 * set by hand; picks are counted by endpoint. Distributions are checked over
 * 100k picks; hashing tests use 100k keys from a splitmix64 sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hash.h"
#include "upstream/endpoint.h"
#include "upstream/lb.h"

#define MAX_EPS 8
#define PICKS 100000
#define KEYS 100000

static struct endpoint eps_store[MAX_EPS];
static struct endpoint *eps[MAX_EPS];

/* Resets eps[0..n) to up, idle, weight `weights[i]` (1 when NULL), named
 * "10.0.0.<i+1>:80". */
static void eps_init(size_t n, const uint32_t *weights)
{
    for (size_t i = 0; i < MAX_EPS; i++) {
        struct endpoint *ep = &eps_store[i];

        memset(ep, 0, sizeof(*ep));
        snprintf(ep->name, sizeof(ep->name), "10.0.0.%zu:80", i + 1);
        ep->weight = weights && i < n ? weights[i] : 1;
        ep->index = (unsigned)i;
        atomic_store(&ep->up, 1);
        atomic_store(&ep->active, 0);
        atomic_store(&ep->ewma_us, 0);
        eps[i] = ep;
    }
}

static size_t ep_pos(const struct endpoint *ep)
{
    assert_non_null(ep);
    return (size_t)(ep - eps_store);
}

/* Picks `picks` times on worker 0 with no key and counts per endpoint. */
static void count_picks(struct lb *lb, size_t picks, size_t *count)
{
    memset(count, 0, MAX_EPS * sizeof(*count));
    for (size_t i = 0; i < picks; i++)
        count[ep_pos(lb_pick(lb, 0, hash_mix64(i), NULL))]++;
}

static void assert_share(size_t got, size_t total, double want, double tolerance)
{
    double share = (double)got / (double)total;

    if (share < want - tolerance || share > want + tolerance)
        fail_msg("share %.4f not within %.4f of %.4f", share, tolerance, want);
}

static const enum cfg_balance all_algos[] = {
    CFG_BALANCE_ROUND_ROBIN, CFG_BALANCE_WEIGHTED_ROUND_ROBIN,
    CFG_BALANCE_LEAST_CONNECTIONS, CFG_BALANCE_WEIGHTED_LEAST_CONNECTIONS,
    CFG_BALANCE_IP_HASH, CFG_BALANCE_CONSISTENT_HASH, CFG_BALANCE_CONSISTENT_HASH,
    CFG_BALANCE_LEAST_RESPONSE_TIME, CFG_BALANCE_RANDOM, CFG_BALANCE_POWER_OF_TWO,
};
/* The second consistent_hash entry is the maglev one. */
static enum cfg_hash_method method_of(size_t algo_pos)
{
    return algo_pos == 6 ? CFG_HASH_METHOD_MAGLEV : CFG_HASH_METHOD_RING;
}
#define N_ALGOS (sizeof(all_algos) / sizeof(all_algos[0]))

static uint64_t key_at(size_t i)
{
    return hash_mix64(0xc0ffee00ULL + i);
}

/* ---- endpoint ---------------------------------------------------------- */

static void test_ewma_first_sample_then_alpha(void **state)
{
    eps_init(1, NULL);
    endpoint_observe_latency(eps[0], 100);
    assert_int_equal(atomic_load(&eps[0]->ewma_us), 100);
    endpoint_observe_latency(eps[0], 900);
    assert_int_equal(atomic_load(&eps[0]->ewma_us), 200); /* 100 + 800/8 */
    endpoint_observe_latency(eps[0], 40);
    assert_int_equal(atomic_load(&eps[0]->ewma_us), 180); /* 200 - 160/8 */
    for (int i = 0; i < 200; i++)
        endpoint_observe_latency(eps[0], 5000);
    assert_in_range(atomic_load(&eps[0]->ewma_us), 4990, 5000);
}

static void test_ewma_zero_sample_is_still_a_sample(void **state)
{
    eps_init(1, NULL);
    endpoint_observe_latency(eps[0], 0);
    assert_int_equal(atomic_load(&eps[0]->ewma_us), 1);
    endpoint_observe_latency(eps[0], UINT64_MAX); /* clamped, no overflow */
    assert_true(atomic_load(&eps[0]->ewma_us) > 1);
}

/* ---- every algorithm --------------------------------------------------- */

static void test_all_single_endpoint(void **state)
{
    eps_init(1, (uint32_t[]){ 7 });
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct lb *lb = lb_new(all_algos[a], method_of(a), eps, 1, 2);

        assert_non_null(lb);
        for (uint64_t k = 0; k < 100; k++)
            assert_ptr_equal(lb_pick(lb, (unsigned)k & 1, k, NULL), eps[0]);
        /* The only endpoint up is returned even when it is `avoid`. */
        assert_ptr_equal(lb_pick(lb, 0, 1, eps[0]), eps[0]);
        atomic_store(&eps[0]->up, 0);
        assert_null(lb_pick(lb, 0, 1, NULL));
        assert_null(lb_pick(lb, 0, 1, eps[0]));
        atomic_store(&eps[0]->up, 1);
        lb_free(lb);
    }
}

static void test_all_never_pick_down_null_when_all_down(void **state)
{
    eps_init(4, (uint32_t[]){ 1, 2, 3, 4 });
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct lb *lb = lb_new(all_algos[a], method_of(a), eps, 4, 1);

        assert_non_null(lb);
        atomic_store(&eps[1]->up, 0);
        atomic_store(&eps[3]->up, 0);
        for (uint64_t k = 0; k < 5000; k++) {
            size_t p = ep_pos(lb_pick(lb, 0, hash_mix64(k), NULL));

            assert_true(p == 0 || p == 2);
        }
        for (size_t i = 0; i < 4; i++)
            atomic_store(&eps[i]->up, 0);
        assert_null(lb_pick(lb, 0, 42, NULL));
        assert_null(lb_pick(lb, 0, 42, eps[2]));
        for (size_t i = 0; i < 4; i++)
            atomic_store(&eps[i]->up, 1);
        lb_free(lb);
    }
}

static void test_all_avoid(void **state)
{
    eps_init(3, NULL);
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct lb *lb = lb_new(all_algos[a], method_of(a), eps, 3, 1);

        assert_non_null(lb);
        for (uint64_t k = 0; k < 3000; k++) {
            struct endpoint *first = lb_pick(lb, 0, hash_mix64(k), NULL);
            struct endpoint *retry = lb_pick(lb, 0, hash_mix64(k), first);

            assert_non_null(retry);
            assert_ptr_not_equal(retry, first);
        }
        /* avoid is the only one up: it is returned. */
        atomic_store(&eps[0]->up, 0);
        atomic_store(&eps[2]->up, 0);
        assert_ptr_equal(lb_pick(lb, 0, 7, eps[1]), eps[1]);
        /* avoid is down: whatever is up. */
        assert_ptr_equal(lb_pick(lb, 0, 7, eps[0]), eps[1]);
        /* avoid is the last one and goes down: nothing. */
        atomic_store(&eps[1]->up, 0);
        assert_null(lb_pick(lb, 0, 7, eps[1]));
        atomic_store(&eps[0]->up, 1);
        atomic_store(&eps[1]->up, 1);
        atomic_store(&eps[2]->up, 1);
        lb_free(lb);
    }
}

static void test_all_no_endpoints(void **state)
{
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct lb *lb = lb_new(all_algos[a], method_of(a), NULL, 0, 4);

        assert_non_null(lb);
        assert_null(lb_pick(lb, 3, 1, NULL));
        lb_free(lb);
    }
    lb_free(NULL);
}

static void test_uses_key(void **state)
{
    eps_init(2, NULL);
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct lb *lb = lb_new(all_algos[a], method_of(a), eps, 2, 1);

        assert_int_equal(lb_uses_key(lb), all_algos[a] == CFG_BALANCE_IP_HASH ||
                                              all_algos[a] == CFG_BALANCE_CONSISTENT_HASH);
        lb_free(lb);
    }
}

/* An lb over a heap copy of eps[from..from+n) of exactly n pointers, so
 * that under ASan a read past the lb's own endpoints is reported (eps[]
 * itself is larger). The caller frees *arr after lb_free(). */
static struct lb *lb_exact(enum cfg_balance algo, enum cfg_hash_method method, size_t from,
                           size_t n, struct endpoint ***arr)
{
    *arr = malloc(n * sizeof(**arr));
    assert_non_null(*arr);
    memcpy(*arr, eps + from, n * sizeof(**arr));
    return lb_new(algo, method, *arr, n, 1);
}

/* With one endpoint up, every algorithm finds it, whatever its place and
 * weight; endpoints outside the lb (eps[5..], up) are never counted. */
static void test_all_only_one_up(void **state)
{
    eps_init(5, (uint32_t[]){ 1, 2, 3, 4, 5 });
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct endpoint **arr;
        struct lb *lb = lb_exact(all_algos[a], method_of(a), 0, 5, &arr);

        for (size_t j = 0; j < 5; j++) {
            for (size_t i = 0; i < 5; i++)
                atomic_store(&eps[i]->up, i == j);
            for (uint64_t k = 0; k < 2000; k++)
                assert_ptr_equal(lb_pick(lb, 0, key_at(k), NULL), eps[j]);
        }
        for (size_t i = 0; i < 5; i++)
            atomic_store(&eps[i]->up, 1);
        lb_free(lb);
        free(arr);
    }
}

/* The fallback finds `avoid` by identity, not by its index: an lb over
 * eps[1], eps[0] (indexes not positions) still returns eps[0] when it is
 * `avoid` and the only one up; an endpoint of another lb whose index is
 * past this lb's end is never returned. */
static void test_all_fallback_by_identity(void **state)
{
    eps_init(3, NULL);
    for (size_t a = 0; a < N_ALGOS; a++) {
        struct endpoint **arr = malloc(2 * sizeof(*arr));
        struct lb *lb;

        assert_non_null(arr);
        arr[0] = eps[1];
        arr[1] = eps[0];
        lb = lb_new(all_algos[a], method_of(a), arr, 2, 1);
        atomic_store(&eps[1]->up, 0);
        for (uint64_t k = 0; k < 50; k++)
            assert_ptr_equal(lb_pick(lb, 0, key_at(k), eps[0]), eps[0]);
        atomic_store(&eps[0]->up, 0);
        assert_null(lb_pick(lb, 0, 1, eps[2])); /* eps[2]: index 2, up, not ours */
        atomic_store(&eps[0]->up, 1);
        atomic_store(&eps[1]->up, 1);
        lb_free(lb);
        free(arr);
    }
}

/* ---- round robin ------------------------------------------------------- */

static void test_rr_even_and_skips_down(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(4, (uint32_t[]){ 1, 5, 1, 1 }); /* weights ignored */
    lb = lb_new(CFG_BALANCE_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 4, 1);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(ep_pos(lb_pick(lb, 0, 0, NULL)), i % 4);
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(count[i], PICKS / 4);
    atomic_store(&eps[2]->up, 0);
    count_picks(lb, 3000, count);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[0], 1000);
    assert_int_equal(count[1], 1000);
    assert_int_equal(count[3], 1000);
    lb_free(lb);
}

static void test_rr_workers_independent(void **state)
{
    struct lb *lb;
    size_t next[4];

    eps_init(3, NULL);
    lb = lb_new(CFG_BALANCE_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 4);
    for (unsigned w = 0; w < 4; w++)
        next[w] = ep_pos(lb_pick(lb, w, 0, NULL));
    /* Each worker keeps cycling from where it was, whatever the others do. */
    for (int round = 0; round < 30; round++)
        for (unsigned w = 0; w < 4; w++) {
            size_t p = ep_pos(lb_pick(lb, w, 0, NULL));

            assert_int_equal(p, (next[w] + 1) % 3);
            next[w] = p;
        }
    lb_free(lb);
}

/* Workers start apart: round robin's first picks on workers 0..3 are
 * eps[0..3], and so are least_connections' among four idle endpoints (the
 * tie turn starts at the worker number). */
static void test_workers_start_apart(void **state)
{
    static const enum cfg_balance algos[] = { CFG_BALANCE_ROUND_ROBIN,
                                              CFG_BALANCE_LEAST_CONNECTIONS };
    eps_init(4, NULL);
    for (size_t a = 0; a < 2; a++) {
        struct lb *lb = lb_new(algos[a], CFG_HASH_METHOD_RING, eps, 4, 4);

        for (unsigned w = 0; w < 4; w++)
            assert_ptr_equal(lb_pick(lb, w, 0, NULL), eps[w]);
        lb_free(lb);
    }
}

/* ---- weighted round robin ---------------------------------------------- */

static void test_wrr_smooth_sequence_5_1_1(void **state)
{
    static const size_t want[] = { 0, 0, 1, 0, 2, 0, 0 }; /* a a b a c a a */
    struct lb *lb;

    eps_init(3, (uint32_t[]){ 5, 1, 1 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 4);
    /* Four workers interleaved: each produces the exact sequence, 3 times. */
    for (size_t i = 0; i < 3 * 7; i++)
        for (unsigned w = 0; w < 4; w++)
            assert_int_equal(ep_pos(lb_pick(lb, w, 0, NULL)), want[i % 7]);
    lb_free(lb);
}

/* Weights are clamped to 1..4096: 0 counts as 1, 5000 as 4096. */
static void test_weight_clamp(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(2, (uint32_t[]){ 0, 1 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 2, 1);
    count_picks(lb, 1000, count);
    assert_int_equal(count[0], 500);
    assert_int_equal(count[1], 500);
    lb_free(lb);

    eps_init(3, (uint32_t[]){ 5000, 4096, 2 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 1);
    count_picks(lb, 4096 + 4096 + 2, count); /* one whole cycle */
    assert_int_equal(count[0], 4096);
    assert_int_equal(count[1], 4096);
    assert_int_equal(count[2], 2);
    lb_free(lb);
}

static void test_wrr_weights_and_down(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 1);
    count_picks(lb, 60000, count);
    assert_int_equal(count[0], 10000);
    assert_int_equal(count[1], 20000);
    assert_int_equal(count[2], 30000);
    atomic_store(&eps[2]->up, 0);
    count_picks(lb, 30000, count);
    assert_int_equal(count[2], 0);
    assert_share(count[0], 30000, 1.0 / 3, 0.001);
    assert_share(count[1], 30000, 2.0 / 3, 0.001);
    lb_free(lb);
}

/* ---- least connections ------------------------------------------------- */

static void test_lc_fewest_and_ties_spread(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(4, NULL);
    lb = lb_new(CFG_BALANCE_LEAST_CONNECTIONS, CFG_HASH_METHOD_RING, eps, 4, 1);
    atomic_store(&eps[0]->active, 5);
    atomic_store(&eps[1]->active, 2);
    atomic_store(&eps[2]->active, 7);
    atomic_store(&eps[3]->active, 3);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[1]);
    /* avoid the best: the next best. */
    assert_ptr_equal(lb_pick(lb, 0, 0, eps[1]), eps[3]);
    /* Two tied at the lowest share exactly, the others get nothing. */
    atomic_store(&eps[1]->active, 3);
    count_picks(lb, 10000, count);
    assert_int_equal(count[1], 5000);
    assert_int_equal(count[3], 5000);
    /* All equal: all share. */
    for (size_t i = 0; i < 4; i++)
        atomic_store(&eps[i]->active, 0);
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(count[i], PICKS / 4);
    lb_free(lb);
}

/* With requests that never finish, the in-flight counts follow the picks:
 * least connections keeps them equal, weighted proportional to weight. */
static void test_lc_closed_loop(void **state)
{
    struct lb *lb;

    /* Uneven start (requests of other workers in flight): least connections
     * fills the idle ones first and never touches the busiest until the
     * others catch up; round robin would give each 200 more. */
    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(CFG_BALANCE_LEAST_CONNECTIONS, CFG_HASH_METHOD_RING, eps, 3, 1);
    atomic_store(&eps[0]->active, 100);
    atomic_store(&eps[2]->active, 40);
    for (int i = 0; i < 60; i++)
        atomic_fetch_add(&lb_pick(lb, 0, 0, NULL)->active, 1);
    assert_int_equal(atomic_load(&eps[0]->active), 100);
    assert_int_equal(atomic_load(&eps[1]->active), 50);
    assert_int_equal(atomic_load(&eps[2]->active), 50);
    for (int i = 0; i < 600; i++)
        atomic_fetch_add(&lb_pick(lb, 0, 0, NULL)->active, 1);
    for (size_t i = 0; i < 3; i++)
        assert_in_range(atomic_load(&eps[i]->active), 266, 267); /* 800 / 3 */
    /* requests finishing on one endpoint send the next ones there */
    atomic_fetch_sub(&eps[1]->active, 10);
    for (int i = 0; i < 9; i++) {
        struct endpoint *ep = lb_pick(lb, 0, 0, NULL);
        assert_ptr_equal(ep, eps[1]);
        atomic_fetch_add(&ep->active, 1);
    }
    lb_free(lb);

    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_LEAST_CONNECTIONS, CFG_HASH_METHOD_RING, eps, 3, 1);
    for (int i = 0; i < 600; i++)
        atomic_fetch_add(&lb_pick(lb, 0, 0, NULL)->active, 1);
    assert_in_range(atomic_load(&eps[0]->active), 99, 101);
    assert_in_range(atomic_load(&eps[1]->active), 199, 201);
    assert_in_range(atomic_load(&eps[2]->active), 299, 301);
    lb_free(lb);
}

static void test_wlc_weights(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(3, (uint32_t[]){ 1, 2, 4 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_LEAST_CONNECTIONS, CFG_HASH_METHOD_RING, eps, 3, 1);
    /* Scores (a+1)/w: 3/1, 5/2, 9/4 -> the third. */
    atomic_store(&eps[0]->active, 2);
    atomic_store(&eps[1]->active, 4);
    atomic_store(&eps[2]->active, 8);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[2]);
    /* 10/4 ties 5/2: they share. */
    atomic_store(&eps[2]->active, 9);
    count_picks(lb, 1000, count);
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 500);
    assert_int_equal(count[2], 500);
    /* Idle: the heaviest. */
    for (size_t i = 0; i < 3; i++)
        atomic_store(&eps[i]->active, 0);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[2]);
    lb_free(lb);
}

/* ---- hashing ----------------------------------------------------------- */

static void hash_distribution(enum cfg_balance algo, enum cfg_hash_method method,
                              double tolerance)
{
    size_t count[MAX_EPS] = { 0 };
    struct lb *lb;

    eps_init(4, NULL);
    lb = lb_new(algo, method, eps, 4, 1);
    for (size_t i = 0; i < KEYS; i++)
        count[ep_pos(lb_pick(lb, 0, key_at(i), NULL))]++;
    for (size_t i = 0; i < 4; i++)
        assert_share(count[i], KEYS, 0.25, tolerance);
    lb_free(lb);

    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(algo, method, eps, 3, 1);
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < KEYS; i++)
        count[ep_pos(lb_pick(lb, 0, key_at(i), NULL))]++;
    for (size_t i = 0; i < 3; i++)
        assert_share(count[i], KEYS, (double)(i + 1) / 6, tolerance);
    lb_free(lb);
}

/* Same key, same endpoint: across picks, workers and endpoint order. */
static void hash_deterministic(enum cfg_balance algo, enum cfg_hash_method method)
{
    struct endpoint *rev[5];
    struct lb *lb, *lb_rev;

    eps_init(5, (uint32_t[]){ 1, 2, 1, 3, 1 });
    for (size_t i = 0; i < 5; i++)
        rev[i] = eps[4 - i];
    lb = lb_new(algo, method, eps, 5, 4);
    lb_rev = lb_new(algo, method, rev, 5, 4);
    for (size_t i = 0; i < 20000; i++) {
        struct endpoint *ep = lb_pick(lb, 0, key_at(i), NULL);

        assert_ptr_equal(lb_pick(lb, (unsigned)i % 4, key_at(i), NULL), ep);
        assert_ptr_equal(lb_pick(lb_rev, (unsigned)(i + 1) % 4, key_at(i), NULL), ep);
    }
    lb_free(lb_rev);
    lb_free(lb);
}

/* Builds lbs over 4 and 5 endpoints (the 5-endpoint array in another order)
 * and returns the share of keys whose endpoint changed; *to_new counts the
 * moved keys that moved to the added endpoint. */
static double hash_churn_add(enum cfg_balance algo, enum cfg_hash_method method,
                             size_t *to_new, size_t *moved)
{
    struct endpoint *five[5];
    struct lb *lb4, *lb5;

    eps_init(5, NULL);
    five[0] = eps[4];
    five[1] = eps[2];
    five[2] = eps[0];
    five[3] = eps[3];
    five[4] = eps[1];
    lb4 = lb_new(algo, method, eps, 4, 1);
    lb5 = lb_new(algo, method, five, 5, 1);
    *to_new = *moved = 0;
    for (size_t i = 0; i < KEYS; i++) {
        struct endpoint *before = lb_pick(lb4, 0, key_at(i), NULL);
        struct endpoint *after = lb_pick(lb5, 0, key_at(i), NULL);

        if (before != after) {
            (*moved)++;
            *to_new += after == eps[4];
        }
    }
    lb_free(lb5);
    lb_free(lb4);
    return (double)*moved / KEYS;
}

/* Removing eps[2] of 5 (a new lb over the 4 others): returns the share of
 * keys that moved; *stray counts moved keys that were not on eps[2]. */
static double hash_churn_remove(enum cfg_balance algo, enum cfg_hash_method method,
                                size_t *stray)
{
    struct endpoint *four[4];
    struct lb *lb5, *lb4;
    size_t moved = 0;

    eps_init(5, NULL);
    four[0] = eps[0];
    four[1] = eps[1];
    four[2] = eps[3];
    four[3] = eps[4];
    lb5 = lb_new(algo, method, eps, 5, 1);
    lb4 = lb_new(algo, method, four, 4, 1);
    *stray = 0;
    for (size_t i = 0; i < KEYS; i++) {
        struct endpoint *before = lb_pick(lb5, 0, key_at(i), NULL);
        struct endpoint *after = lb_pick(lb4, 0, key_at(i), NULL);

        if (before != after) {
            moved++;
            *stray += before != eps[2];
        }
    }
    lb_free(lb4);
    lb_free(lb5);
    return (double)moved / KEYS;
}

/* Marking one endpoint down moves only its keys, spread over the others. */
static void hash_down_moves_only_its_keys(enum cfg_balance algo, enum cfg_hash_method method)
{
    static struct endpoint *before[KEYS];
    size_t count[MAX_EPS] = { 0 };
    struct lb *lb;

    eps_init(5, NULL);
    lb = lb_new(algo, method, eps, 5, 1);
    for (size_t i = 0; i < KEYS; i++)
        before[i] = lb_pick(lb, 0, key_at(i), NULL);
    atomic_store(&eps[1]->up, 0);
    for (size_t i = 0; i < KEYS; i++) {
        struct endpoint *after = lb_pick(lb, 0, key_at(i), NULL);

        assert_ptr_not_equal(after, eps[1]);
        if (before[i] != eps[1])
            assert_ptr_equal(after, before[i]);
        else
            count[ep_pos(after)]++;
        /* A retry of the key goes to one other endpoint, the same each time. */
        assert_ptr_equal(lb_pick(lb, 0, key_at(i), after), lb_pick(lb, 0, key_at(i), after));
    }
    for (size_t i = 0; i < 5; i++)
        if (i != 1)
            assert_true(count[i] > 0); /* displaced keys spread */
    atomic_store(&eps[1]->up, 1);
    for (size_t i = 0; i < KEYS; i++)
        assert_ptr_equal(lb_pick(lb, 0, key_at(i), NULL), before[i]);
    lb_free(lb);
}

/* Ring: with an endpoint down, every key lands where it would on the ring
 * built without that endpoint (the walk goes on clockwise, across the end
 * of the ring too). */
static void ring_down_is_removed_with(enum cfg_balance algo, const uint32_t *weights,
                                      unsigned variant)
{
    struct endpoint *others[4];

    eps_init(5, weights);
    for (size_t i = 0; i < 5; i++) /* other names: other rings */
        snprintf(eps[i]->name, sizeof(eps[i]->name), "10.%u.0.%zu:80", variant, i + 1);
    for (size_t j = 0; j < 5; j++) {
        struct endpoint **arr;
        struct lb *lb = lb_exact(algo, CFG_HASH_METHOD_RING, 0, 5, &arr), *without;

        for (size_t i = 0, o = 0; i < 5; i++)
            if (i != j)
                others[o++] = eps[i];
        without = lb_new(algo, CFG_HASH_METHOD_RING, others, 4, 1);
        atomic_store(&eps[j]->up, 0);
        for (size_t i = 0; i < KEYS / 4; i++)
            assert_ptr_equal(lb_pick(lb, 0, key_at(i), NULL), lb_pick(without, 0, key_at(i), NULL));
        atomic_store(&eps[j]->up, 1);
        lb_free(without);
        lb_free(lb);
        free(arr);
    }
}

static void ring_down_is_removed(enum cfg_balance algo)
{
    static const uint32_t weights[][5] = {
        { 1, 3, 1, 2, 1 }, { 1, 1, 1, 1, 1 }, { 2, 1, 1, 1, 3 }, { 1, 2, 3, 4, 5 },
    };
    for (unsigned w = 0; w < 8; w++)
        ring_down_is_removed_with(algo, weights[w % 4], w);
}

/* Where keys go is a function of the endpoint names alone: every weir
 * process in front of the same backends agrees, and a change of the ring or
 * table construction moves clients' keys on upgrade, so it must be made on
 * purpose. Reference picks of keys 0..39 (endpoint number), taken from this
 * implementation, with all up and with eps[1] down, and a digest of all the
 * picks of KEYS keys. */
#define RING_UP "2011302022220233112221102221321332220132"
#define RING_DOWN "2030302022220233222222302223323332220332"
#define MAGLEV_UP "0220230222202002202222230233220232122112"
#define RING_DIGEST 0xb14b152b2cfee22dULL
#define MAGLEV_DIGEST 0xdee2c5ff6983bc83ULL
#define MAGLEV_DOWN "0220230222202002202222230233220232222332"
static void hash_reference(enum cfg_balance algo, enum cfg_hash_method method, const char *up,
                           const char *one_down, uint64_t want_digest)
{
    char got[64];
    struct endpoint **arr;
    struct lb *lb;

    eps_init(4, (uint32_t[]){ 1, 2, 3, 1 });
    lb = lb_exact(algo, method, 0, 4, &arr);
    for (size_t i = 0; i < 40; i++)
        got[i] = (char)('0' + ep_pos(lb_pick(lb, 0, i, NULL)));
    got[40] = 0;
    assert_string_equal(got, up);
    atomic_store(&eps[1]->up, 0);
    for (size_t i = 0; i < 40; i++)
        got[i] = (char)('0' + ep_pos(lb_pick(lb, 0, i, NULL)));
    assert_string_equal(got, one_down);
    atomic_store(&eps[1]->up, 1);
    /* all of the table or ring: a digest of the picks of KEYS keys */
    uint64_t digest = 0;
    for (size_t i = 0; i < KEYS; i++)
        digest = digest * 31 + ep_pos(lb_pick(lb, 0, i, NULL));
    assert_true(digest == want_digest);
    lb_free(lb);
    free(arr);
}

static void test_ip_hash(void **state)
{
    hash_distribution(CFG_BALANCE_IP_HASH, CFG_HASH_METHOD_RING, 0.05);
    hash_deterministic(CFG_BALANCE_IP_HASH, CFG_HASH_METHOD_RING);
    hash_down_moves_only_its_keys(CFG_BALANCE_IP_HASH, CFG_HASH_METHOD_RING);
    ring_down_is_removed(CFG_BALANCE_IP_HASH);
    hash_reference(CFG_BALANCE_IP_HASH, CFG_HASH_METHOD_RING, RING_UP, RING_DOWN, RING_DIGEST);
}

static void test_ring(void **state)
{
    size_t to_new, moved, stray;
    double churn;

    hash_distribution(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING, 0.05);
    hash_deterministic(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING);
    hash_down_moves_only_its_keys(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING);
    ring_down_is_removed(CFG_BALANCE_CONSISTENT_HASH);
    hash_reference(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING, RING_UP, RING_DOWN, RING_DIGEST);

    churn = hash_churn_add(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING, &to_new, &moved);
    print_message("ring: 4 -> 5 endpoints moves %.4f of keys\n", churn);
    assert_true(churn >= 0.15 && churn <= 0.25);
    assert_int_equal(to_new, moved);

    churn = hash_churn_remove(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_RING, &stray);
    print_message("ring: 5 -> 4 endpoints moves %.4f of keys\n", churn);
    assert_true(churn >= 0.15 && churn <= 0.25);
    assert_int_equal(stray, 0);
}

static void test_maglev(void **state)
{
    size_t to_new, moved, stray;
    double churn;

    hash_distribution(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV, 0.02);
    hash_deterministic(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV);
    hash_down_moves_only_its_keys(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV);
    hash_reference(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV, MAGLEV_UP, MAGLEV_DOWN, MAGLEV_DIGEST);

    churn = hash_churn_add(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV, &to_new, &moved);
    print_message("maglev: 4 -> 5 endpoints moves %.4f of keys (%.4f to the new one)\n", churn,
                  (double)to_new / KEYS);
    assert_true(churn >= 0.15 && churn < 0.30);
    assert_share(to_new, KEYS, 0.2, 0.02);

    churn = hash_churn_remove(CFG_BALANCE_CONSISTENT_HASH, CFG_HASH_METHOD_MAGLEV, &stray);
    print_message("maglev: 5 -> 4 endpoints moves %.4f of keys (%.4f not from the removed one)\n",
                  churn, (double)stray / KEYS);
    assert_true(churn >= 0.15 && churn < 0.30);
    assert_true((double)stray / KEYS < 0.10);
}

/* Names, not positions, place an endpoint: duplicates still get keys. */
static void test_hash_duplicate_names(void **state)
{
    for (int m = 0; m < 2; m++) {
        size_t count[MAX_EPS] = { 0 };
        struct lb *lb;

        eps_init(3, NULL);
        strcpy(eps[2]->name, eps[0]->name);
        lb = lb_new(CFG_BALANCE_CONSISTENT_HASH, m ? CFG_HASH_METHOD_MAGLEV : CFG_HASH_METHOD_RING,
                    eps, 3, 1);
        for (size_t i = 0; i < KEYS; i++)
            count[ep_pos(lb_pick(lb, 0, key_at(i), NULL))]++;
        for (size_t i = 0; i < 3; i++)
            assert_share(count[i], KEYS, 1.0 / 3, 0.07);
        lb_free(lb);
    }
}

/* ---- least response time ----------------------------------------------- */

static void test_lrt(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(3, NULL);
    lb = lb_new(CFG_BALANCE_LEAST_RESPONSE_TIME, CFG_HASH_METHOD_RING, eps, 3, 1);
    atomic_store(&eps[0]->ewma_us, 1000);
    atomic_store(&eps[1]->ewma_us, 100);
    atomic_store(&eps[2]->ewma_us, 500);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[1]);
    assert_ptr_equal(lb_pick(lb, 0, 0, eps[1]), eps[2]);
    /* Load counts: 100 * 11 > 500 * 1. */
    atomic_store(&eps[1]->active, 10);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[2]);
    /* An endpoint without a sample counts as the fastest: ties with eps[1]
     * at 100 * 1 once eps[1] is idle again, and they share. */
    atomic_store(&eps[1]->active, 0);
    atomic_store(&eps[0]->ewma_us, 0);
    count_picks(lb, 1000, count);
    assert_int_equal(count[0], 500);
    assert_int_equal(count[1], 500);
    assert_int_equal(count[2], 0);
    /* The default is the lowest average, eps[0]'s here (the first one), never
     * one of an endpoint outside the lb (eps[3]) */
    atomic_store(&eps[3]->ewma_us, 10);
    atomic_store(&eps[0]->ewma_us, 100);
    atomic_store(&eps[1]->ewma_us, 1000);
    atomic_store(&eps[2]->ewma_us, 0);
    count_picks(lb, 1000, count);
    assert_int_equal(count[0], 500);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], 500);
    /* No samples at all: least connections. */
    for (size_t i = 0; i < 3; i++)
        atomic_store(&eps[i]->ewma_us, 0);
    atomic_store(&eps[0]->active, 1);
    atomic_store(&eps[2]->active, 1);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[1]);
    lb_free(lb);

    /* Weights divide the score: 300 * 1 / 4 < 100 * 1 / 1. */
    eps_init(2, (uint32_t[]){ 1, 4 });
    lb = lb_new(CFG_BALANCE_LEAST_RESPONSE_TIME, CFG_HASH_METHOD_RING, eps, 2, 1);
    atomic_store(&eps[0]->ewma_us, 100);
    atomic_store(&eps[1]->ewma_us, 300);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[1]);
    atomic_store(&eps[1]->ewma_us, 500);
    assert_ptr_equal(lb_pick(lb, 0, 0, NULL), eps[0]);
    lb_free(lb);
}

/* ---- random, power of two ---------------------------------------------- */

static void test_random(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(4, NULL);
    lb = lb_new(CFG_BALANCE_RANDOM, CFG_HASH_METHOD_RING, eps, 4, 1);
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 4; i++)
        assert_share(count[i], PICKS, 0.25, 0.02);
    lb_free(lb);

    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(CFG_BALANCE_RANDOM, CFG_HASH_METHOD_RING, eps, 3, 1);
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 3; i++)
        assert_share(count[i], PICKS, (double)(i + 1) / 6, 0.02);
    /* With one down the others keep their ratio 1:3. */
    atomic_store(&eps[1]->up, 0);
    count_picks(lb, PICKS, count);
    assert_int_equal(count[1], 0);
    assert_share(count[0], PICKS, 0.25, 0.02);
    assert_share(count[2], PICKS, 0.75, 0.02);
    lb_free(lb);
}

/* When the first draws mostly hit endpoints that are down, the exact pass
 * over the usable ones keeps their weights (1:3). */
static void test_random_exact_pass_by_weight(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(5, (uint32_t[]){ 1, 100, 100, 100, 3 });
    lb = lb_new(CFG_BALANCE_RANDOM, CFG_HASH_METHOD_RING, eps, 5, 1);
    for (size_t i = 1; i < 4; i++)
        atomic_store(&eps[i]->up, 0);
    count_picks(lb, PICKS, count);
    assert_share(count[0], PICKS, 0.25, 0.02);
    assert_share(count[4], PICKS, 0.75, 0.02);
    lb_free(lb);
}

static void test_random_workers_differ(void **state)
{
    struct lb *lb;
    size_t same = 0;

    eps_init(4, NULL);
    lb = lb_new(CFG_BALANCE_RANDOM, CFG_HASH_METHOD_RING, eps, 4, 4);
    for (int i = 0; i < 1000; i++) {
        struct endpoint *a = lb_pick(lb, 0, 0, NULL), *b = lb_pick(lb, 1, 0, NULL);

        same += a == b;
    }
    assert_in_range(same, 150, 350); /* independent: ~1/4 agree */
    lb_free(lb);
}

static void test_power_of_two(void **state)
{
    size_t count[MAX_EPS];
    struct lb *lb;

    eps_init(3, NULL);
    lb = lb_new(CFG_BALANCE_POWER_OF_TWO, CFG_HASH_METHOD_RING, eps, 3, 1);
    /* Idle: uniform. */
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 3; i++)
        assert_share(count[i], PICKS, 1.0 / 3, 0.02);
    /* The most loaded is never one of two distinct samples' winner. */
    atomic_store(&eps[0]->active, 10);
    count_picks(lb, PICKS, count);
    assert_int_equal(count[0], 0);
    assert_share(count[1], PICKS, 0.5, 0.02);
    /* Middle load: wins only when sampled with the most loaded (1/3). */
    atomic_store(&eps[1]->active, 5);
    count_picks(lb, PICKS, count);
    assert_int_equal(count[0], 0);
    assert_share(count[1], PICKS, 1.0 / 3, 0.02);
    assert_share(count[2], PICKS, 2.0 / 3, 0.02);
    /* Equal load: the lower latency average wins. */
    atomic_store(&eps[0]->active, 0);
    atomic_store(&eps[1]->active, 0);
    atomic_store(&eps[0]->ewma_us, 900);
    atomic_store(&eps[1]->ewma_us, 100);
    atomic_store(&eps[2]->ewma_us, 500);
    count_picks(lb, PICKS, count);
    assert_int_equal(count[0], 0);
    assert_share(count[1], PICKS, 2.0 / 3, 0.02);
    lb_free(lb);

    /* Weighted sampling: idle picks follow weights. */
    eps_init(3, (uint32_t[]){ 1, 2, 3 });
    lb = lb_new(CFG_BALANCE_POWER_OF_TWO, CFG_HASH_METHOD_RING, eps, 3, 1);
    count_picks(lb, PICKS, count);
    for (size_t i = 0; i < 3; i++)
        assert_share(count[i], PICKS, (double)(i + 1) / 6, 0.02);
    lb_free(lb);
}

/* ---- workers ----------------------------------------------------------- */

/* An out-of-range worker number is clamped, never out of bounds. */
static void test_worker_out_of_range(void **state)
{
    struct lb *lb;

    struct lb *ref;
    size_t count[MAX_EPS] = { 0 };

    /* A worker number past n_workers uses worker 0's state: picks on 0, 2
     * and 99 interleaved are the sequence worker 0 alone would make, and a
     * whole smooth WRR cycle (7 picks) keeps the 5:1:1 weights exactly. */
    eps_init(3, (uint32_t[]){ 5, 1, 1 });
    lb = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 2);
    ref = lb_new(CFG_BALANCE_WEIGHTED_ROUND_ROBIN, CFG_HASH_METHOD_RING, eps, 3, 2);
    static const unsigned workers[] = { 99, 0, 2, 99, 2, 0, 99 };
    for (size_t i = 0; i < 7; i++) {
        struct endpoint *ep = lb_pick(lb, workers[i], 0, NULL);
        assert_ptr_equal(ep, lb_pick(ref, 0, 0, NULL));
        count[ep_pos(ep)]++;
    }
    assert_int_equal(count[0], 5);
    assert_int_equal(count[1], 1);
    assert_int_equal(count[2], 1);
    /* worker 1 kept its own state: it starts its cycle from the beginning */
    assert_ptr_equal(lb_pick(lb, 1, 0, NULL), lb_pick(ref, 1, 0, NULL));
    lb_free(ref);
    lb_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ewma_first_sample_then_alpha),
        cmocka_unit_test(test_ewma_zero_sample_is_still_a_sample),
        cmocka_unit_test(test_all_single_endpoint),
        cmocka_unit_test(test_all_never_pick_down_null_when_all_down),
        cmocka_unit_test(test_all_avoid),
        cmocka_unit_test(test_all_no_endpoints),
        cmocka_unit_test(test_uses_key),
        cmocka_unit_test(test_all_only_one_up),
        cmocka_unit_test(test_all_fallback_by_identity),
        cmocka_unit_test(test_rr_even_and_skips_down),
        cmocka_unit_test(test_rr_workers_independent),
        cmocka_unit_test(test_workers_start_apart),
        cmocka_unit_test(test_weight_clamp),
        cmocka_unit_test(test_wrr_smooth_sequence_5_1_1),
        cmocka_unit_test(test_wrr_weights_and_down),
        cmocka_unit_test(test_lc_fewest_and_ties_spread),
        cmocka_unit_test(test_lc_closed_loop),
        cmocka_unit_test(test_wlc_weights),
        cmocka_unit_test(test_ip_hash),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_maglev),
        cmocka_unit_test(test_hash_duplicate_names),
        cmocka_unit_test(test_lrt),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_exact_pass_by_weight),
        cmocka_unit_test(test_random_workers_differ),
        cmocka_unit_test(test_power_of_two),
        cmocka_unit_test(test_worker_out_of_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the resilience half of src/upstream/endpoint.c: passive
 * outlier ejection (base time, doubling, max_ejection cap, the healthy spell
 * that forgives, max_ejected_percent, `on`), the health verdict, the
 * endpoint breaker's effect on availability and the slow-start share, driven
 * with explicit clock values so every duration is checked exactly.
 *
 * A cluster of four endpoints is built by hand around a cfg_cluster whose
 * outlier section each test fills in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/cluster.h"
#include "upstream/endpoint.h"

#define N_EPS 4

static struct cfg_cluster test_cfg;
static struct endpoint test_eps[N_EPS];
static struct cluster test_cl;

/* A cluster of N_EPS healthy endpoints with outlier detection on:
 * 2 consecutive failures eject for 1 s, doubling up to 5 s, at most 50 %. */
static struct endpoint *cluster_setup(void)
{
    memset(&test_cfg, 0, sizeof(test_cfg));
    test_cfg.name = "c";
    test_cfg.n_endpoints = N_EPS;
    test_cfg.outlier = (struct cfg_outlier){
        .enabled = 1,
        .consecutive_failures = 2,
        .on_mask = CFG_FAILURE_BIT(CFG_FAILURE_CONNECT) | CFG_FAILURE_BIT(CFG_FAILURE_5XX),
        .base_ejection_ms = 1000,
        .max_ejection_ms = 5000,
        .max_ejected_percent = 50,
    };
    memset(&test_cl, 0, sizeof(test_cl));
    test_cl.cfg = &test_cfg;
    test_cl.endpoints = test_eps;
    test_cl.n_endpoints = N_EPS;
    for (size_t i = 0; i < N_EPS; i++) {
        struct endpoint *ep = &test_eps[i];
        memset(ep, 0, sizeof(*ep));
        snprintf(ep->name, sizeof(ep->name), "10.0.0.%zu:80", i + 1);
        ep->weight = 1;
        ep->index = (unsigned)i;
        ep->cluster = &test_cl;
        atomic_store(&ep->healthy, 1);
        atomic_store(&ep->up, 1);
        atomic_store(&ep->share_pct, 100);
        breaker_init(&ep->breaker);
    }
    return &test_eps[0];
}

/* Fails ep `consecutive_failures` times at now_ms (a 5xx each). */
static void fail_out(struct endpoint *ep, uint64_t now_ms)
{
    for (uint32_t i = 0; i < test_cfg.outlier.consecutive_failures; i++)
        endpoint_record(ep, CFG_FAILURE_5XX, 0, now_ms);
}

static int up_at(struct endpoint *ep, uint64_t now_ms)
{
    endpoint_refresh(ep, now_ms);
    return atomic_load(&ep->up);
}

/* Asserts ep is out for exactly [from, from + ms) and back at from + ms.
 * The failure itself must have taken it out (no refresh needed). */
static void assert_ejected_for(struct endpoint *ep, uint64_t from, uint64_t ms)
{
    assert_int_equal(atomic_load(&ep->ejected_until_ms), from + ms);
    assert_int_equal(atomic_load(&ep->up), 0);
    assert_false(up_at(ep, from));
    assert_false(up_at(ep, from + ms - 1));
    assert_true(up_at(ep, from + ms));
}

static void test_one_failure_short_of_the_threshold_ejects_nothing(void **state)
{
    struct endpoint *ep = cluster_setup();
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 100);
    assert_int_equal(atomic_load(&ep->ejected_until_ms), 0);
    assert_true(up_at(ep, 100));
    /* a success in between starts the count again */
    endpoint_record(ep, ENDPOINT_OK, 0, 110);
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 120);
    assert_true(up_at(ep, 120));
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 130);
    assert_ejected_for(ep, 130, 1000);
}

static void test_threshold_counts_each_failure_once(void **state)
{
    struct endpoint *ep = cluster_setup();
    test_cfg.outlier.consecutive_failures = 3;
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 100);
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 100);
    assert_true(up_at(ep, 100));
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 100);
    assert_ejected_for(ep, 100, 1000);
}

static void test_back_from_ejection_counts_failures_from_zero(void **state)
{
    struct endpoint *ep = cluster_setup();
    fail_out(ep, 1000);
    assert_true(up_at(ep, 2000));
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 2000); /* one failure: not yet */
    assert_int_equal(atomic_load(&ep->up), 1);
    assert_int_equal(atomic_load(&ep->ejections), 1);
    endpoint_record(ep, CFG_FAILURE_5XX, 0, 2000);
    assert_ejected_for(ep, 2000, 2000);
}

static void test_ejection_doubles_up_to_max_ejection(void **state)
{
    struct endpoint *ep = cluster_setup();
    static const uint64_t want_ms[] = { 1000, 2000, 4000, 5000, 5000 };
    uint64_t now_ms = 10000;

    for (size_t i = 0; i < sizeof(want_ms) / sizeof(want_ms[0]); i++) {
        fail_out(ep, now_ms);
        assert_int_equal(atomic_load(&ep->ejections), i + 1);
        assert_ejected_for(ep, now_ms, want_ms[i]);
        now_ms += want_ms[i]; /* fails again the moment it is back */
    }
}

static void test_max_ejection_below_base_caps_the_first(void **state)
{
    struct endpoint *ep = cluster_setup();
    test_cfg.outlier.base_ejection_ms = 3000;
    test_cfg.outlier.max_ejection_ms = 2000;
    fail_out(ep, 500);
    assert_ejected_for(ep, 500, 2000);
}

static void test_failures_while_ejected_do_not_extend_it(void **state)
{
    struct endpoint *ep = cluster_setup();
    fail_out(ep, 1000);
    for (int i = 0; i < 10; i++)
        endpoint_record(ep, CFG_FAILURE_5XX, 0, 1500);
    assert_int_equal(atomic_load(&ep->ejections), 1);
    assert_ejected_for(ep, 1000, 1000);
}

static void test_healthy_spell_resets_the_doubling(void **state)
{
    struct endpoint *ep = cluster_setup();
    fail_out(ep, 1000);               /* 1 s, until 2000 */
    fail_out(ep, 2000);               /* 2 s, until 4000 */
    /* successes within max_ejection after it ended forgive nothing */
    endpoint_record(ep, ENDPOINT_OK, 0, 4000 + 5000);
    fail_out(ep, 4000 + 5000);
    assert_ejected_for(ep, 9000, 4000); /* the third: 4 s */
    /* a success more than max_ejection after the end forgives them all */
    endpoint_record(ep, ENDPOINT_OK, 0, 13000 + 5000 + 1);
    assert_int_equal(atomic_load(&ep->ejections), 0);
    fail_out(ep, 20000);
    assert_ejected_for(ep, 20000, 1000);
}

static void test_never_more_than_max_ejected_percent(void **state)
{
    cluster_setup();
    fail_out(&test_eps[0], 1000);
    fail_out(&test_eps[1], 1000);
    fail_out(&test_eps[2], 1000);     /* 3 of 4 would be 75 % > 50 % */
    assert_false(up_at(&test_eps[0], 1000));
    assert_false(up_at(&test_eps[1], 1000));
    assert_true(up_at(&test_eps[2], 1000));
    assert_int_equal(atomic_load(&test_eps[2].ejected_until_ms), 0);
    assert_int_equal(cluster_ejected(&test_cl, 1000), 2);
    /* once one is back, the next may go */
    fail_out(&test_eps[2], 2000);
    assert_int_equal(atomic_load(&test_eps[2].ejected_until_ms), 3000);
}

static void test_only_listed_failures_count(void **state)
{
    struct endpoint *ep = cluster_setup();
    for (int i = 0; i < 10; i++) {
        endpoint_record(ep, CFG_FAILURE_RESET, 0, 1000);
        endpoint_record(ep, CFG_FAILURE_TIMEOUT, 0, 1000);
    }
    assert_int_equal(atomic_load(&ep->ejected_until_ms), 0);
    assert_true(up_at(ep, 1000));
    endpoint_record(ep, CFG_FAILURE_CONNECT, 0, 1000);
    endpoint_record(ep, CFG_FAILURE_CONNECT, 0, 1000);
    assert_ejected_for(ep, 1000, 1000);
}

static void test_disabled_detection_never_ejects(void **state)
{
    struct endpoint *ep = cluster_setup();
    test_cfg.outlier.enabled = 0;
    for (int i = 0; i < 20; i++)
        endpoint_record(ep, CFG_FAILURE_5XX, 0, 1000);
    assert_true(up_at(ep, 1000));
}

static void test_health_verdict_takes_it_out_and_back(void **state)
{
    struct endpoint *ep = cluster_setup();
    endpoint_set_healthy(ep, 0, "test", 1000);
    assert_int_equal(atomic_load(&ep->up), 0);
    assert_false(up_at(ep, 999999));
    endpoint_set_healthy(ep, 1, "test", 2000);
    assert_int_equal(atomic_load(&ep->up), 1);
    /* healthy but ejected: still out */
    fail_out(ep, 3000);
    endpoint_set_healthy(ep, 0, "test", 3001);
    endpoint_set_healthy(ep, 1, "test", 3002);
    assert_int_equal(atomic_load(&ep->up), 0);
    assert_true(up_at(ep, 4000));
}

static void test_open_endpoint_breaker_takes_it_out(void **state)
{
    struct endpoint *ep = cluster_setup();
    test_cfg.outlier.enabled = 0;
    test_cfg.breaker = (struct cfg_breaker){ .enabled = 1, .failures = 3, .min_requests = 10,
                                             .window_ms = 10000, .recovery_timeout_ms = 500,
                                             .half_open_requests = 1 };
    for (int i = 0; i < 3; i++)
        endpoint_record(ep, CFG_FAILURE_5XX, 0, 1000);
    assert_int_equal(atomic_load(&ep->up), 0);
    assert_false(up_at(ep, 1499));
    assert_true(up_at(ep, 1500)); /* half-open: may be picked for a probe */
    assert_true(up_at(&test_eps[1], 1000)); /* its neighbours are not concerned */
    /* scope: cluster leaves every endpoint up: the cluster's breaker decides */
    cluster_setup();
    test_cfg.outlier.enabled = 0;
    test_cfg.breaker = (struct cfg_breaker){ .enabled = 1, .per_cluster = 1, .failures = 3,
                                             .min_requests = 10, .window_ms = 10000,
                                             .recovery_timeout_ms = 500, .half_open_requests = 1 };
    for (int i = 0; i < 3; i++)
        endpoint_record(&test_eps[i], CFG_FAILURE_5XX, 0, 1000);
    assert_int_equal(atomic_load(&test_cl.breaker.state), BREAKER_OPEN);
    assert_int_equal(atomic_load(&test_eps[0].breaker.state), BREAKER_CLOSED);
    assert_true(up_at(&test_eps[0], 1000));
}

static void test_slow_start_share_ramps_after_recovery(void **state)
{
    struct endpoint *ep = cluster_setup();
    test_cfg.slow_start_ms = 1000;
    endpoint_set_healthy(ep, 0, "test", 1000);
    endpoint_set_healthy(ep, 1, "test", 2000);
    assert_int_equal(atomic_load(&ep->share_pct), 1);
    endpoint_refresh(ep, 2500);
    assert_int_equal(atomic_load(&ep->share_pct), 50);
    endpoint_refresh(ep, 2600);
    assert_int_equal(atomic_load(&ep->share_pct), 60);
    endpoint_refresh(ep, 3000);
    assert_int_equal(atomic_load(&ep->share_pct), 100);
    assert_int_equal(atomic_load(&ep->ready_since_ms), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_failure_short_of_the_threshold_ejects_nothing),
        cmocka_unit_test(test_threshold_counts_each_failure_once),
        cmocka_unit_test(test_back_from_ejection_counts_failures_from_zero),
        cmocka_unit_test(test_ejection_doubles_up_to_max_ejection),
        cmocka_unit_test(test_max_ejection_below_base_caps_the_first),
        cmocka_unit_test(test_failures_while_ejected_do_not_extend_it),
        cmocka_unit_test(test_healthy_spell_resets_the_doubling),
        cmocka_unit_test(test_never_more_than_max_ejected_percent),
        cmocka_unit_test(test_only_listed_failures_count),
        cmocka_unit_test(test_disabled_detection_never_ejects),
        cmocka_unit_test(test_health_verdict_takes_it_out_and_back),
        cmocka_unit_test(test_open_endpoint_breaker_takes_it_out),
        cmocka_unit_test(test_slow_start_share_ramps_after_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the health check schedule (src/upstream/health.c): the
 * delay before each check is the interval plus up to `jitter`, taken from
 * an injected random value so no test depends on time or chance; the first
 * round is spread over one interval; jitter defaults to interval / 10. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"
#include "upstream/health.h"

/* Random-looking inputs, including the extremes. */
static const uint64_t some_r[] = {
    0,    1,    2,    299,  300,  301,  599,  600,  601,  1999, 2000, 2001,
    0x9e3779b97f4a7c15ULL, 0xdeadbeefcafebabeULL, UINT64_MAX - 1, UINT64_MAX,
};
#define N_SOME_R (sizeof(some_r) / sizeof(some_r[0]))

static void test_delay_within_interval_plus_jitter(void **state)
{
    struct cfg_health_check c = { .interval_ms = 2000, .jitter_ms = 300 };
    for (size_t i = 0; i < N_SOME_R; i++) {
        uint64_t d = health_delay_ms(&c, 0, some_r[i]);
        assert_in_range(d, 2000, 2300);
    }
    /* both ends are reached */
    assert_int_equal(health_delay_ms(&c, 0, 0), 2000);
    assert_int_equal(health_delay_ms(&c, 0, 300), 2300);
    assert_int_equal(health_delay_ms(&c, 0, 301), 2000);
    assert_int_equal(health_delay_ms(&c, 0, 150), 2150);
}

static void test_zero_jitter_is_exactly_the_interval(void **state)
{
    struct cfg_health_check c = { .interval_ms = 750, .jitter_ms = 0 };
    for (size_t i = 0; i < N_SOME_R; i++)
        assert_int_equal(health_delay_ms(&c, 0, some_r[i]), 750);
}

/* Consecutive random values give every delay in the range once: the
 * jitter spreads checks over the whole range, not onto a few points. */
static void test_jitter_spreads_over_the_range(void **state)
{
    struct cfg_health_check c = { .interval_ms = 1000, .jitter_ms = 9 };
    int seen[10] = { 0 };
    for (uint64_t r = 0; r < 100; r++) {
        uint64_t d = health_delay_ms(&c, 0, r);
        assert_in_range(d, 1000, 1009);
        seen[d - 1000]++;
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 10);
}

/* The first round ignores the jitter and lies in [0, interval]. */
static void test_first_round_spread_over_one_interval(void **state)
{
    struct cfg_health_check c = { .interval_ms = 2000, .jitter_ms = 300 };
    for (size_t i = 0; i < N_SOME_R; i++)
        assert_in_range(health_delay_ms(&c, 1, some_r[i]), 0, 2000);
    assert_int_equal(health_delay_ms(&c, 1, 0), 0);
    assert_int_equal(health_delay_ms(&c, 1, 1234), 1234);
    assert_int_equal(health_delay_ms(&c, 1, 2000), 2000);
    assert_int_equal(health_delay_ms(&c, 1, 2001), 0);
}

static uint64_t jitter_of(const char *health_check)
{
    char text[512], err[512];
    snprintf(text, sizeof(text),
             "listeners:\n  - { name: web, listen: 127.0.0.1:8080, routes: [{ cluster: api }] }\n"
             "clusters:\n  - name: api\n    health_check: %s\n    endpoints: [127.0.0.1:9001]\n",
             health_check);
    struct cfg *cfg = NULL;
    int rc = cfg_load_string("weir.yaml", text, strlen(text), &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed (%d): %s", rc, err);
    uint64_t j = cfg->clusters[0].health_check.jitter_ms;
    cfg_free(cfg);
    return j;
}

/* Unset, jitter is interval / 10; set, it is what was said, 0 included. */
static void test_jitter_default_is_a_tenth_of_the_interval(void **state)
{
    assert_int_equal(jitter_of("{ }"), 200); /* interval 2s */
    assert_int_equal(jitter_of("{ interval: 500ms }"), 50);
    assert_int_equal(jitter_of("{ interval: 15ms }"), 1);
    assert_int_equal(jitter_of("{ interval: 500ms, jitter: 0 }"), 0);
    assert_int_equal(jitter_of("{ interval: 500ms, jitter: 2s }"), 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_within_interval_plus_jitter),
        cmocka_unit_test(test_zero_jitter_is_exactly_the_interval),
        cmocka_unit_test(test_jitter_spreads_over_the_range),
        cmocka_unit_test(test_first_round_spread_over_one_interval),
        cmocka_unit_test(test_jitter_default_is_a_tenth_of_the_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

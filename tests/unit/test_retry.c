/* Unit tests for the retry backoff (src/http/retry.c): full jitter over
 * [0, min(max, base * 2^(attempts-1))], with the random number injected so
 * each bound is pinned exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/retry.h"
#include "http/route_cfg.h"

static void test_first_retry_is_within_base(void **state)
{
    (void)state;
    struct cfg_retry c = { .backoff_base_ms = 25, .backoff_max_ms = 250 };
    assert_int_equal(retry_backoff_ms(&c, 1, 0), 0);
    assert_int_equal(retry_backoff_ms(&c, 1, 25), 25);
    assert_int_equal(retry_backoff_ms(&c, 1, 26), 0);
    assert_int_equal(retry_backoff_ms(&c, 1, 13), 13);
}

static void test_cap_doubles_per_attempt(void **state)
{
    (void)state;
    struct cfg_retry c = { .backoff_base_ms = 25, .backoff_max_ms = 250 };
    /* attempt 2: cap 50; attempt 3: cap 100; attempt 4: cap 200 */
    assert_int_equal(retry_backoff_ms(&c, 2, 50), 50);
    assert_int_equal(retry_backoff_ms(&c, 2, 51), 0);
    assert_int_equal(retry_backoff_ms(&c, 3, 100), 100);
    assert_int_equal(retry_backoff_ms(&c, 3, 101), 0);
    assert_int_equal(retry_backoff_ms(&c, 4, 200), 200);
    assert_int_equal(retry_backoff_ms(&c, 4, 201), 0);
}

static void test_cap_stops_at_max(void **state)
{
    (void)state;
    struct cfg_retry c = { .backoff_base_ms = 25, .backoff_max_ms = 250 };
    /* attempt 5 would be 400: capped at 250, and stays there */
    for (unsigned a = 5; a < 70; a++) {
        assert_int_equal(retry_backoff_ms(&c, a, 250), 250);
        assert_int_equal(retry_backoff_ms(&c, a, 251), 0);
        assert_int_equal(retry_backoff_ms(&c, a, UINT64_MAX), UINT64_MAX % 251);
    }
}

static void test_base_above_max_is_capped(void **state)
{
    (void)state;
    struct cfg_retry c = { .backoff_base_ms = 500, .backoff_max_ms = 100 };
    assert_int_equal(retry_backoff_ms(&c, 1, 100), 100);
    assert_int_equal(retry_backoff_ms(&c, 1, 101), 0);
}

static void test_zero_base_means_no_wait(void **state)
{
    (void)state;
    struct cfg_retry c = { .backoff_base_ms = 0, .backoff_max_ms = 250 };
    assert_int_equal(retry_backoff_ms(&c, 1, 12345), 0);
    assert_int_equal(retry_backoff_ms(&c, 9, 12345), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_retry_is_within_base),
        cmocka_unit_test(test_cap_doubles_per_attempt),
        cmocka_unit_test(test_cap_stops_at_max),
        cmocka_unit_test(test_base_above_max_is_capped),
        cmocka_unit_test(test_zero_base_means_no_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

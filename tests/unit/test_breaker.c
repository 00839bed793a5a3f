/* Unit tests for the circuit breaker state machine (src/upstream/breaker.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "upstream/breaker.h"

static struct cfg_breaker cfg_count(void)
{
    struct cfg_breaker c = { .enabled = 1, .failures = 3, .min_requests = 10, .window_ms = 1000,
                             .recovery_timeout_ms = 500, .half_open_requests = 2 };
    return c;
}

static void test_opens_on_failure_count(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_init(&b);
    assert_int_equal(breaker_admit(&b, &c, 100), BREAKER_PASS);
    assert_int_equal(breaker_record(&b, &c, 100, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 110, 1, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 120, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 130, 0, 0), BREAKER_OPEN);
    assert_true(breaker_is_open(&b, &c, 131));
    assert_int_equal(breaker_admit(&b, &c, 200), BREAKER_DENY);
}

static void test_old_failures_leave_the_window(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_init(&b);
    breaker_record(&b, &c, 100, 0, 0);
    breaker_record(&b, &c, 200, 0, 0);
    /* 2 s later the window (1 s) holds none of them */
    assert_int_equal(breaker_record(&b, &c, 2200, 0, 0), -1);
    assert_int_equal(breaker_admit(&b, &c, 2201), BREAKER_PASS);
}

static void test_opens_on_ratio_after_min_requests(void **state)
{
    struct breaker b;
    struct cfg_breaker c = { .enabled = 1, .failure_ratio_pct = 50, .min_requests = 10,
                             .window_ms = 10000, .recovery_timeout_ms = 500, .half_open_requests = 1 };
    breaker_init(&b);
    for (int i = 0; i < 4; i++)
        assert_int_equal(breaker_record(&b, &c, 100 + i, 0, 0), -1); /* 4 of 4, but < min_requests */
    for (int i = 0; i < 5; i++)
        breaker_record(&b, &c, 200 + i, 1, 0);
    assert_int_equal(breaker_record(&b, &c, 300, 0, 0), BREAKER_OPEN); /* 5 of 10 */
}

static void test_half_open_probes_close_it(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_init(&b);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, &c, 100, 0, 0);
    assert_int_equal(breaker_admit(&b, &c, 599), BREAKER_DENY);
    assert_int_equal(breaker_admit(&b, &c, 601), BREAKER_PROBE);
    assert_int_equal(atomic_load(&b.state), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_admit(&b, &c, 602), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 603), BREAKER_DENY); /* only 2 probes */
    assert_int_equal(breaker_record(&b, &c, 610, 1, 0), -1);    /* not a probe: ignored */
    assert_int_equal(breaker_record(&b, &c, 610, 1, 1), -1);
    assert_int_equal(breaker_record(&b, &c, 620, 1, 1), BREAKER_CLOSED);
    assert_int_equal(breaker_admit(&b, &c, 621), BREAKER_PASS);
    /* the window restarted: two new failures do not reopen it */
    breaker_record(&b, &c, 630, 0, 0);
    assert_int_equal(breaker_record(&b, &c, 640, 0, 0), -1);
}

static void test_failed_probe_reopens(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_init(&b);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, &c, 100, 0, 0);
    assert_int_equal(breaker_admit(&b, &c, 700), BREAKER_PROBE);
    assert_int_equal(breaker_record(&b, &c, 710, 0, 1), BREAKER_OPEN);
    assert_true(breaker_is_open(&b, &c, 1000));
    assert_false(breaker_is_open(&b, &c, 1211));
}

static void test_cancelled_probe_frees_its_slot(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    c.half_open_requests = 1;
    breaker_init(&b);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, &c, 100, 0, 0);
    assert_int_equal(breaker_admit(&b, &c, 700), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 701), BREAKER_DENY);
    breaker_cancel_probe(&b);
    assert_int_equal(breaker_admit(&b, &c, 702), BREAKER_PROBE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_on_failure_count),
        cmocka_unit_test(test_old_failures_leave_the_window),
        cmocka_unit_test(test_opens_on_ratio_after_min_requests),
        cmocka_unit_test(test_half_open_probes_close_it),
        cmocka_unit_test(test_failed_probe_reopens),
        cmocka_unit_test(test_cancelled_probe_frees_its_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

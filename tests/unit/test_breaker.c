/* Unit tests for the circuit breaker state machine (src/upstream/breaker.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/breaker.h"

static struct cfg_breaker cfg_count(void)
{
    struct cfg_breaker c = { .enabled = 1, .failures = 3, .min_requests = 10, .window_ms = 1000,
                             .recovery_timeout_ms = 500, .half_open_requests = 2 };
    return c;
}

/* A breaker in memory that held something else: breaker_init() must set
 * every field, not rely on zeroed memory. */
static void breaker_fresh(struct breaker *b)
{
    memset(b, 0xa5, sizeof(*b));
    breaker_init(b);
}

/* Opens b at `at` with three failures (cfg_count()). */
static void breaker_open_at(struct breaker *b, const struct cfg_breaker *c, uint64_t at)
{
    assert_int_equal(breaker_record(b, c, at, 0, 0), -1);
    assert_int_equal(breaker_record(b, c, at, 0, 0), -1);
    assert_int_equal(breaker_record(b, c, at, 0, 0), BREAKER_OPEN);
}

static void test_opens_on_failure_count(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_fresh(&b);
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
    breaker_fresh(&b);
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
    breaker_fresh(&b);
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
    breaker_fresh(&b);
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
    breaker_fresh(&b);
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
    breaker_fresh(&b);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, &c, 100, 0, 0);
    assert_int_equal(breaker_admit(&b, &c, 700), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 701), BREAKER_DENY);
    breaker_cancel_probe(&b);
    assert_int_equal(breaker_admit(&b, &c, 702), BREAKER_PROBE);
}

static void test_state_names(void **state)
{
    assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half-open");
    assert_string_equal(breaker_state_name(-1), "?");
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN + 1), "?");
}

/* Initialised over garbage, a breaker is closed with an empty window. */
static void test_init_over_garbage(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_fresh(&b);
    assert_int_equal(atomic_load(&b.state), BREAKER_CLOSED);
    assert_false(breaker_is_open(&b, &c, 0));
    assert_false(breaker_is_open(&b, &c, 1000000));
    assert_int_equal(breaker_admit(&b, &c, 950), BREAKER_PASS);
    assert_int_equal(breaker_record(&b, &c, 950, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 960, 0, 0), -1); /* 2 < 3 failures */
}

/* The window is BREAKER_BUCKETS buckets of window/BUCKETS (100 ms here):
 * a failure in the oldest of them still counts, one bucket later it does
 * not. Bucket 0 (900..999 ms) takes part like the others. */
static void test_window_edge(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_fresh(&b);
    assert_int_equal(breaker_record(&b, &c, 50, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 500, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 999, 0, 0), BREAKER_OPEN);

    breaker_fresh(&b);
    assert_int_equal(breaker_record(&b, &c, 50, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 500, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 1000, 0, 0), -1); /* the one at 50 left */
    assert_int_equal(breaker_record(&b, &c, 1000, 0, 0), BREAKER_OPEN);
}

/* Failures older than the window do not count, in whatever bucket they are. */
static void test_old_buckets_do_not_count(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_fresh(&b);
    assert_int_equal(breaker_record(&b, &c, 100, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 200, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 300, 0, 0), BREAKER_OPEN);
    breaker_fresh(&b);
    breaker_record(&b, &c, 100, 0, 0);
    breaker_record(&b, &c, 200, 0, 0);
    breaker_record(&b, &c, 350, 1, 0);
    assert_int_equal(breaker_record(&b, &c, 2050, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 2060, 0, 0), -1);
}

/* A bucket taken again one window later starts empty: old successes do not
 * dilute the failure ratio. */
static void test_reused_bucket_starts_empty(void **state)
{
    struct breaker b;
    struct cfg_breaker c = { .enabled = 1, .failure_ratio_pct = 50, .min_requests = 2,
                             .window_ms = 1000, .recovery_timeout_ms = 500, .half_open_requests = 1 };
    breaker_fresh(&b);
    for (int i = 0; i < 5; i++)
        assert_int_equal(breaker_record(&b, &c, 50, 1, 0), -1); /* bucket of 0..99 */
    assert_int_equal(breaker_record(&b, &c, 1050, 0, 0), -1);   /* same slot, 1000..1099 */
    assert_int_equal(breaker_record(&b, &c, 1060, 0, 0), BREAKER_OPEN); /* 2 of 2 */
}

/* A window under BREAKER_BUCKETS ms has buckets of 1 ms, so it spans 10 ms. */
static void test_tiny_window(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    c.window_ms = 5;
    c.failures = 2;
    breaker_fresh(&b);
    assert_int_equal(breaker_record(&b, &c, 0, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 9, 0, 0), BREAKER_OPEN);
    breaker_fresh(&b);
    assert_int_equal(breaker_record(&b, &c, 0, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 15, 0, 0), -1);
}

/* The failure ratio is exact: 50 of 101 is under 50 %, 51 of 102 is not. */
static void test_ratio_boundary(void **state)
{
    struct breaker b;
    struct cfg_breaker c = { .enabled = 1, .failure_ratio_pct = 50, .min_requests = 10,
                             .window_ms = 100000, .recovery_timeout_ms = 500, .half_open_requests = 1 };
    breaker_fresh(&b);
    for (int i = 0; i < 51; i++)
        assert_int_equal(breaker_record(&b, &c, 100, 1, 0), -1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(breaker_record(&b, &c, 200, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 300, 0, 0), BREAKER_OPEN);
}

/* OPEN lasts exactly recovery_timeout; a failed probe reopens it with a
 * fresh set of probe slots and a fresh count of successful probes; outcomes
 * recorded while it is open change nothing and return -1. */
static void test_reopen_starts_probing_afresh(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count(); /* recovery 500 ms, 2 probes */
    breaker_fresh(&b);
    breaker_open_at(&b, &c, 100);
    assert_true(breaker_is_open(&b, &c, 599));
    assert_false(breaker_is_open(&b, &c, 600));
    assert_int_equal(breaker_admit(&b, &c, 600), BREAKER_PROBE);
    assert_false(breaker_is_open(&b, &c, 600)); /* half-open is not open */
    assert_int_equal(breaker_admit(&b, &c, 601), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 602), BREAKER_DENY);
    assert_int_equal(breaker_record(&b, &c, 610, 1, 1), -1); /* 1 of 2 probes ok */
    assert_int_equal(atomic_load(&b.state), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_record(&b, &c, 620, 0, 1), BREAKER_OPEN);
    assert_int_equal(breaker_record(&b, &c, 630, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 640, 1, 0), -1);
    assert_int_equal(atomic_load(&b.state), BREAKER_OPEN);
    assert_int_equal(breaker_admit(&b, &c, 1119), BREAKER_DENY);
    /* both probe slots are free again, and both probes must succeed again */
    assert_int_equal(breaker_admit(&b, &c, 1120), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 1121), BREAKER_PROBE);
    assert_int_equal(breaker_record(&b, &c, 1130, 1, 1), -1);
    assert_int_equal(atomic_load(&b.state), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_record(&b, &c, 1140, 1, 1), BREAKER_CLOSED);
    assert_false(breaker_is_open(&b, &c, 1150));
}

/* With three probes, two successes are not enough to close it. */
static void test_every_probe_must_succeed(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    c.half_open_requests = 3;
    breaker_fresh(&b);
    breaker_open_at(&b, &c, 100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(breaker_admit(&b, &c, 600), BREAKER_PROBE);
    assert_int_equal(breaker_record(&b, &c, 610, 1, 1), -1);
    assert_int_equal(breaker_record(&b, &c, 620, 1, 1), -1);
    assert_int_equal(atomic_load(&b.state), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_record(&b, &c, 630, 1, 1), BREAKER_CLOSED);
}

/* Closing forgets the failures that opened it, also those in bucket 0. */
static void test_close_clears_every_bucket(void **state)
{
    struct breaker b;
    struct cfg_breaker c = cfg_count();
    breaker_fresh(&b);
    breaker_open_at(&b, &c, 950); /* bucket 0 */
    assert_int_equal(breaker_admit(&b, &c, 1450), BREAKER_PROBE);
    assert_int_equal(breaker_admit(&b, &c, 1450), BREAKER_PROBE);
    assert_int_equal(breaker_record(&b, &c, 1460, 1, 1), -1);
    assert_int_equal(breaker_record(&b, &c, 1470, 1, 1), BREAKER_CLOSED);
    assert_int_equal(breaker_record(&b, &c, 1480, 0, 0), -1);
    assert_int_equal(breaker_record(&b, &c, 1490, 0, 0), -1);
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
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_init_over_garbage),
        cmocka_unit_test(test_window_edge),
        cmocka_unit_test(test_old_buckets_do_not_count),
        cmocka_unit_test(test_reused_bucket_starts_empty),
        cmocka_unit_test(test_tiny_window),
        cmocka_unit_test(test_ratio_boundary),
        cmocka_unit_test(test_reopen_starts_probing_afresh),
        cmocka_unit_test(test_every_probe_must_succeed),
        cmocka_unit_test(test_close_clears_every_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the autoscaler's decision (src/autoscale/decide.c),
 * replaying recorded metric series period by period: the HPA formula,
 * the tolerance band, min/max, max_step, stabilization windows (flapping
 * input must not flap the count), from zero and to zero. The command
 * splitter of autoscale_cfg.c is tested at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoscale/autoscale_cfg.h"
#include "autoscale/decide.h"

#define PERIOD_MS 1000

static struct autoscale_policy policy(uint32_t min, uint32_t max)
{
    struct autoscale_policy p = {.min = min,
                                 .max = max,
                                 .tolerance = 0.1,
                                 .up_window_ms = 0,
                                 .down_window_ms = 5 * PERIOD_MS};
    return p;
}

/* One reading of metric m only. */
static void one(struct autoscale_reading *r, int m, double value, double target)
{
    memset(r, 0, sizeof(*r) * AUTOSCALE_METRIC_COUNT);
    r[m].present = 1;
    r[m].value = value;
    r[m].target = target;
}

/* Replays series[0..n) of queue_visible totals (target 100) from `start`
 * instances, the count following each decision; counts[i] gets the count
 * after period i. Returns how often the count changed direction. */
static int replay(const struct autoscale_policy *p, const double *series, size_t n, uint32_t start,
                  uint32_t *counts)
{
    struct autoscale_history *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    uint32_t cur = start;
    int turns = 0, last_dir = AUTOSCALE_NONE;
    for (size_t i = 0; i < n; i++) {
        one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, series[i], 100);
        cur = autoscale_decide(p, h, cur, r, (i + 1) * PERIOD_MS, &d);
        counts[i] = cur;
        if (d.direction != AUTOSCALE_NONE) {
            if (last_dir != AUTOSCALE_NONE && (int)d.direction != last_dir)
                turns++;
            last_dir = (int)d.direction;
        }
    }
    free(h);
    return turns;
}

static void test_formula_and_largest_metric_wins(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 20);
    struct autoscale_history h = {0};
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    /* 2 instances, 10 in flight each against 4: ceil(2 * 10/4) = 5 */
    one(r, AUTOSCALE_METRIC_IN_FLIGHT, 20, 4);
    /* latency 300 ms against 200: ceil(2 * 1.5) = 3, smaller: in_flight wins */
    r[AUTOSCALE_METRIC_LATENCY_P95] = (struct autoscale_reading){1, 300, 200};
    assert_int_equal(autoscale_decide(&p, &h, 2, r, 1000, &d), 5);
    assert_int_equal(d.metric, AUTOSCALE_METRIC_IN_FLIGHT);
    assert_int_equal(d.direction, AUTOSCALE_UP);
    assert_int_equal(d.reason, AUTOSCALE_REASON_METRIC);
    /* cpu 280 % against 70: ceil(2 * 4) = 8 wins now */
    r[AUTOSCALE_METRIC_CPU] = (struct autoscale_reading){1, 280, 70};
    assert_int_equal(autoscale_decide(&p, &h, 2, r, 2000, &d), 8);
    assert_int_equal(d.metric, AUTOSCALE_METRIC_CPU);
    /* exactly on target: 300 messages, 3 instances, 100 each */
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 300, 100);
    struct autoscale_history h2 = {0};
    assert_int_equal(autoscale_decide(&p, &h2, 3, r, 1000, &d), 3);
    assert_int_equal(d.reason, AUTOSCALE_REASON_STEADY);
}

static void test_tolerance_band(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 20);
    struct autoscale_history h = {0};
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    /* 4 instances at 109 % of target: within 10 %, no change (ceil would say 5) */
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 436, 100);
    assert_int_equal(autoscale_decide(&p, &h, 4, r, 1000, &d), 4);
    assert_int_equal(d.reason, AUTOSCALE_REASON_STEADY);
    /* 111 %: outside, up to ceil(4.44) = 5 */
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 444, 100);
    assert_int_equal(autoscale_decide(&p, &h, 4, r, 2000, &d), 5);
}

static void test_min_max_and_max_step(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(2, 6);
    struct autoscale_history h = {0};
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 5000, 100);
    assert_int_equal(autoscale_decide(&p, &h, 2, r, 1000, &d), 6);
    assert_int_equal(d.reason, AUTOSCALE_REASON_MAX);
    p.max_step = 1;
    memset(&h, 0, sizeof(h));
    assert_int_equal(autoscale_decide(&p, &h, 2, r, 1000, &d), 3);
    assert_int_equal(d.reason, AUTOSCALE_REASON_MAX_STEP);
    /* idle without scale_to_zero: never below min, down a step at a time */
    p.down_window_ms = 0;
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 0, 100);
    assert_int_equal(autoscale_decide(&p, &h, 6, r, 2000, &d), 5);
    assert_int_equal(d.reason, AUTOSCALE_REASON_MAX_STEP);
    p.max_step = 0;
    assert_int_equal(autoscale_decide(&p, &h, 5, r, 3000, &d), 2);
    assert_int_equal(d.reason, AUTOSCALE_REASON_MIN);
}

static void test_backlog_up_then_down_after_window(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 5);
    /* a backlog grows, is drained, stays empty */
    static const double series[] = {0, 250, 800, 1200, 900, 300, 0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t counts[sizeof(series) / sizeof(series[0])];
    int turns = replay(&p, series, sizeof(series) / sizeof(series[0]), 1, counts);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 3);
    assert_int_equal(counts[2], 5); /* 8 wanted, max 5 */
    assert_int_equal(counts[3], 5);
    /* the down window (5 periods) holds 5 while any proposal in it said 5 */
    assert_int_equal(counts[5], 5);
    assert_int_equal(counts[9], 5);  /* the window (inclusive) still sees the 900 */
    assert_int_equal(counts[10], 3); /* now it starts at 300: ceil(3) */
    assert_int_equal(counts[11], 1); /* back to min */
    assert_int_equal(counts[13], 1);
    assert_int_equal(turns, 1); /* up, then down once */
}

static void test_flapping_input_does_not_flap(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 10);
    /* the backlog swings 600 / 50 every period for 40 periods */
    double series[40];
    for (size_t i = 0; i < 40; i++)
        series[i] = i % 2 ? 50 : 600;
    uint32_t counts[40];
    int turns = replay(&p, series, 40, 1, counts);
    assert_int_equal(turns, 0);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(counts[i], 6);
    /* with no down window the same input does flap: the window is what helps */
    p.down_window_ms = 0;
    turns = replay(&p, series, 40, 1, counts);
    assert_true(turns > 10);
}

static void test_up_window_waits_for_sustained_load(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 10);
    p.up_window_ms = 3 * PERIOD_MS;
    /* one spike is ignored; sustained load scales up after the window */
    static const double series[] = {100, 900, 100, 100, 100, 400, 400, 400, 400};
    uint32_t counts[9];
    replay(&p, series, 9, 1, counts);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[5], 1);
    assert_int_equal(counts[7], 1);
    assert_int_equal(counts[8], 4);
}

static void test_from_zero_and_to_zero(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(0, 4);
    p.scale_to_zero = 1;
    p.down_window_ms = 2 * PERIOD_MS;
    struct autoscale_history h = {0};
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 0, 100);
    assert_int_equal(autoscale_decide(&p, &h, 0, r, 1000, &d), 0);
    /* one message with no instance: start one */
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 1, 100);
    assert_int_equal(autoscale_decide(&p, &h, 0, r, 2000, &d), 1);
    assert_int_equal(d.reason, AUTOSCALE_REASON_FROM_ZERO);
    assert_int_equal(d.direction, AUTOSCALE_UP);
    /* idle again: held for the window, then to zero */
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 0, 100);
    assert_int_equal(autoscale_decide(&p, &h, 1, r, 3000, &d), 1);
    assert_int_equal(d.reason, AUTOSCALE_REASON_STABILIZED);
    assert_int_equal(autoscale_decide(&p, &h, 1, r, 4000, &d), 1);
    assert_int_equal(autoscale_decide(&p, &h, 1, r, 5000, &d), 0);
    assert_int_equal(d.reason, AUTOSCALE_REASON_TO_ZERO);
    /* in-flight work keeps at least min (1 when min is 0) up */
    p.down_window_ms = 0;
    one(r, AUTOSCALE_METRIC_IN_FLIGHT, 1, 10);
    assert_int_equal(autoscale_decide(&p, &h, 2, r, 6000, &d), 1);
    /* latency alone with no traffic to sample: no reading, idle, to zero */
    memset(r, 0, sizeof(r));
    r[AUTOSCALE_METRIC_LATENCY_P95].target = 200;
    assert_int_equal(autoscale_decide(&p, &h, 1, r, 7000, &d), 0);
    p.scale_to_zero = 0;
    p.min = 1;
    assert_int_equal(autoscale_decide(&p, &h, 3, r, 8000, &d), 3);
    assert_int_equal(d.reason, AUTOSCALE_REASON_NO_METRICS);
}

static void test_history_stays_bounded(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 10);
    p.down_window_ms = 24ULL * 3600 * 1000;
    struct autoscale_history *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    struct autoscale_reading r[AUTOSCALE_METRIC_COUNT];
    struct autoscale_decision d;
    one(r, AUTOSCALE_METRIC_QUEUE_VISIBLE, 100, 100);
    for (uint64_t i = 0; i < 3 * AUTOSCALE_HISTORY_MAX; i++)
        autoscale_decide(&p, h, 1, r, i, &d);
    assert_int_equal(h->n, AUTOSCALE_HISTORY_MAX);
    free(h);
}

static void split_is(const char *s, int n, const char *const *want)
{
    struct cfg_autoscale_cmd c;
    assert_int_equal(autoscale_cmd_split(s, &c), 0);
    assert_int_equal(c.argc, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(c.argv[i], want[i]);
    assert_null(c.argv[n]);
    autoscale_cmd_free(&c);
}

static void test_command_split(void **state)
{
    (void)state;
    split_is("worker --port {port}", 3, (const char *const[]){"worker", "--port", "{port}"});
    split_is("  a\t 'b c'  \"d \\\"e\\\\\" f\\ g ''", 5,
             (const char *const[]){"a", "b c", "d \"e\\", "f g", ""});
    split_is("x'y'\"z\"", 1, (const char *const[]){"xyz"});
    struct cfg_autoscale_cmd c;
    assert_int_equal(autoscale_cmd_split("", &c), -22);
    assert_int_equal(autoscale_cmd_split("a 'b", &c), -22);
    assert_int_equal(autoscale_cmd_split("a \"b", &c), -22);
    assert_int_equal(autoscale_cmd_split("a \\", &c), -22);
    char many[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(many, "a ");
    assert_int_equal(autoscale_cmd_split(many, &c), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formula_and_largest_metric_wins),
        cmocka_unit_test(test_tolerance_band),
        cmocka_unit_test(test_min_max_and_max_step),
        cmocka_unit_test(test_backlog_up_then_down_after_window),
        cmocka_unit_test(test_flapping_input_does_not_flap),
        cmocka_unit_test(test_up_window_waits_for_sustained_load),
        cmocka_unit_test(test_from_zero_and_to_zero),
        cmocka_unit_test(test_history_stays_bounded),
        cmocka_unit_test(test_command_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

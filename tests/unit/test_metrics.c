/* Unit tests for the metrics registry (src/core/metrics.c): per-slot cells
 * summed at scrape, one series per label set shared by reference,
 * histograms with cumulative buckets, and the exact text of both
 * exposition formats. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static const char *const classes[] = { "2xx", "5xx" };

static const struct metric_family fam_requests = {
    .name = "t_requests_total",
    .help = "Requests.",
    .type = METRIC_COUNTER,
    .labels = { "route" },
    .cells_label = "code",
    .cells = classes,
    .n_cells = 2,
};

static const struct metric_family fam_plain = {
    .name = "t_plain_total",
    .help = "Plain.",
    .type = METRIC_COUNTER,
};

static const struct metric_family fam_latency = {
    .name = "t_latency_seconds",
    .help = "Latency.",
    .type = METRIC_HISTOGRAM,
    .labels = { "cluster" },
};

static const struct metric_family fam_gauge = {
    .name = "t_up",
    .help = "Up.",
    .type = METRIC_GAUGE,
    .labels = { "endpoint" },
};

static int setup(void **state)
{
    (void)state;
    static const double buckets[] = { 0.001, 0.01, 0.1 };
    return metrics_init(3, buckets, 3);
}

static int teardown(void **state)
{
    (void)state;
    metrics_shutdown();
    return 0;
}

static char *scrape(enum metrics_format fmt)
{
    struct metrics_out o;
    assert_int_equal(metrics_scrape(&o, fmt), 0);
    return o.data;
}

static void test_cells_sum_over_slots(void **state)
{
    (void)state;
    const char *v[] = { "api" };
    struct metric_series *s = metrics_series_get(&fam_requests, v);
    assert_non_null(s);
    metrics_set_slot(0);
    metrics_add(s, 0, 1);
    metrics_set_slot(1);
    metrics_add(s, 0, 2);
    metrics_set_slot(2);
    metrics_add(s, 1, 5);
    metrics_set_slot(3);
    metrics_add(s, 0, 100); /* no such slot: ignored */
    metrics_set_slot(0);
    metrics_add(s, 2, 100); /* no such cell: ignored */
    assert_int_equal(metrics_read(s, 0), 3);
    assert_int_equal(metrics_read(s, 1), 5);
    metrics_series_put(s);
}

static void test_same_labels_share_a_series(void **state)
{
    (void)state;
    const char *a[] = { "api" };
    const char *b[] = { "web" };
    struct metric_series *s1 = metrics_series_get(&fam_requests, a);
    struct metric_series *s2 = metrics_series_get(&fam_requests, a);
    struct metric_series *s3 = metrics_series_get(&fam_requests, b);
    assert_ptr_equal(s1, s2);
    assert_ptr_not_equal(s1, s3);
    metrics_set_slot(0);
    metrics_add(s1, 0, 7);
    metrics_series_put(s1);
    /* still referenced: the count goes on (a reload keeps its counters) */
    assert_int_equal(metrics_read(s2, 0), 7);
    metrics_series_put(s2);
    metrics_series_put(s3);
    /* the last reference gone: the series is no longer exposed, and a new
     * one starts from zero */
    char *text = scrape(METRICS_TEXT_004);
    assert_null(strstr(text, "t_requests_total"));
    free(text);
    s1 = metrics_series_get(&fam_requests, a);
    assert_int_equal(metrics_read(s1, 0), 0);
    metrics_series_put(s1);
}

static void test_text_exposition(void **state)
{
    (void)state;
    const char *v[] = { "a\"b\\c\nd" };
    struct metric_series *s = metrics_series_get(&fam_requests, v);
    struct metric_series *p = metrics_series_get(&fam_plain, NULL);
    metrics_set_slot(1);
    metrics_add(s, 1, 3);
    metrics_set_slot(2);
    metrics_add(p, 0, 9);
    char *text = scrape(METRICS_TEXT_004);
    assert_string_equal(text, "# HELP t_requests_total Requests.\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"2xx\"} 0\n"
                              "t_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"5xx\"} 3\n"
                              "# HELP t_plain_total Plain.\n"
                              "# TYPE t_plain_total counter\n"
                              "t_plain_total 9\n");
    free(text);
    text = scrape(METRICS_OPENMETRICS);
    assert_non_null(strstr(text, "# TYPE t_requests counter\n"));
    assert_non_null(strstr(text, "# TYPE t_plain counter\nt_plain_total 9\n"));
    size_t n = strlen(text);
    assert_true(n > 6 && strcmp(text + n - 6, "# EOF\n") == 0);
    free(text);
    metrics_series_put(s);
    metrics_series_put(p);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    const char *v[] = { "c1" };
    struct metric_series *h = metrics_series_get(&fam_latency, v);
    assert_non_null(h);
    metrics_set_slot(0);
    metrics_observe_ns(h, 1000000);   /* exactly 1 ms: le 0.001 */
    metrics_set_slot(1);
    metrics_observe_ns(h, 1000001);   /* just above: le 0.01 */
    metrics_set_slot(2);
    metrics_observe_ns(h, 50000000);  /* 50 ms: le 0.1 */
    metrics_set_slot(0);
    metrics_observe_ns(h, 3000000000ULL); /* 3 s: +Inf only */
    assert_int_equal(metrics_read(h, 0), 4);
    char *text = scrape(METRICS_TEXT_004);
    assert_string_equal(text, "# HELP t_latency_seconds Latency.\n"
                              "# TYPE t_latency_seconds histogram\n"
                              "t_latency_seconds_bucket{cluster=\"c1\",le=\"0.001\"} 1\n"
                              "t_latency_seconds_bucket{cluster=\"c1\",le=\"0.01\"} 2\n"
                              "t_latency_seconds_bucket{cluster=\"c1\",le=\"0.1\"} 3\n"
                              "t_latency_seconds_bucket{cluster=\"c1\",le=\"+Inf\"} 4\n"
                              "t_latency_seconds_sum{cluster=\"c1\"} 3.052000001\n"
                              "t_latency_seconds_count{cluster=\"c1\"} 4\n");
    free(text);
    uint64_t counts[8];
    const double *bounds;
    assert_int_equal(metrics_read_histogram(h, counts, 3, &bounds), 0); /* too small */
    assert_int_equal(metrics_read_histogram(h, counts, 8, &bounds), 4);
    assert_true(bounds[1] == 0.01);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 1);
    metrics_series_put(h);
}

static int collected;

static void collect_up(struct metrics_out *o, void *arg)
{
    (void)arg;
    collected++;
    const char *v[] = { "127.0.0.1:80" };
    metrics_write_family(o, &fam_gauge);
    metrics_write_sample(o, &fam_gauge, v, 1);
}

static void test_collectors_and_gauges(void **state)
{
    (void)state;
    collected = 0;
    assert_int_equal(metrics_collector_add(collect_up, NULL), 0);
    char *text = scrape(METRICS_TEXT_004);
    assert_string_equal(text, "# HELP t_up Up.\n# TYPE t_up gauge\nt_up{endpoint=\"127.0.0.1:80\"} 1\n");
    free(text);
    metrics_collector_remove(collect_up, NULL);
    text = scrape(METRICS_TEXT_004);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(collected, 1);
}

static void test_gauge_series_goes_down(void **state)
{
    (void)state;
    const char *v[] = { "x" };
    struct metric_series *g = metrics_series_get(&fam_gauge, v);
    metrics_set_slot(0);
    metrics_add(g, 0, 2);
    metrics_set_slot(1);
    metrics_sub(g, 0, 3); /* this row goes below zero; the sum stays right */
    metrics_set_slot(2);
    metrics_add(g, 0, 2);
    char *text = scrape(METRICS_TEXT_004);
    assert_string_equal(text, "# HELP t_up Up.\n# TYPE t_up gauge\nt_up{endpoint=\"x\"} 1\n");
    free(text);
    metrics_sub(g, 0, 2);
    text = scrape(METRICS_TEXT_004);
    assert_non_null(strstr(text, "t_up{endpoint=\"x\"} -1\n"));
    free(text);
    metrics_series_put(g);
}

static void test_bad_buckets_refused(void **state)
{
    (void)state;
    metrics_shutdown();
    static const double down[] = { 0.1, 0.01 };
    static const double zero[] = { 0, 1 };
    assert_int_equal(metrics_init(2, down, 2), -EINVAL);
    assert_int_equal(metrics_init(2, zero, 2), -EINVAL);
    assert_int_equal(metrics_init(0, NULL, 0), -EINVAL);
    /* not initialized: a series exists, updates do nothing until init */
    struct metric_series *early = metrics_series_get(&fam_plain, NULL);
    assert_non_null(early);
    metrics_add(early, 0, 5);
    assert_int_equal(metrics_read(early, 0), 0);
    metrics_set_slot(0);
    metrics_add(NULL, 0, 1);
    metrics_set_slot(0);
    metrics_observe_ns(NULL, 1);
    assert_int_equal(metrics_init(2, NULL, 0), 0); /* the defaults */
    metrics_set_slot(1);
    metrics_add(early, 0, 5); /* it got its cells at init */
    assert_int_equal(metrics_read(early, 0), 5);
    metrics_series_put(early);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cells_sum_over_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_labels_share_a_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_exposition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collectors_and_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_series_goes_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_buckets_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* metrics: the process-wide registry of counters and histograms, written
 * per thread without locks and summed when scraped (metrics.c explains
 * the layout).
 *
 * A module declares its families as static const struct metric_family
 * rows, gets a series (one label set) with metrics_series_get when it
 * builds a run-time object (a cluster, an endpoint, a route of a
 * snapshot), keeps the pointer and updates it from its thread's slot on
 * the hot path. A gauge series is moved up and down the same way
 * (metrics_add with a wrapped negative: metrics_sub); a gauge that is a
 * reading of live state (an endpoint is up) is written at scrape time by
 * a collector (metrics_collector_add). */
#ifndef WEIR_CORE_METRICS_H
#define WEIR_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Most labels of one family, buckets of a histogram. */
#define METRICS_MAX_LABELS 6
#define METRICS_MAX_BUCKETS 32

/* One metric family, declared by a module as a static const row. A
 * counter may have several cells, each a value of the family's last
 * label (`cells_label`): weir_http_requests_total's code=2xx...5xx are five
 * cells of one series, so a request adds to one cell and the label set
 * is found once, when the series is made. */
struct metric_family {
    const char *name;              /* full name, with _total for counters */
    const char *help;
    enum metric_type type;
    const char *labels[METRICS_MAX_LABELS]; /* NULL-terminated (before cells_label) */
    const char *cells_label;       /* counters only: the label the cells take, or NULL */
    const char *const *cells;      /* the cell label's values, n_cells of them */
    unsigned n_cells;              /* 0 means 1 (no cells_label) */
    /* OpenMetrics names a counter's family without _total; when that name
     * is another family's (weir_connections_total beside the gauge
     * weir_connections), the counter is typed "unknown" there instead, so
     * both keep their public names. */
    int om_unknown;
};

struct metric_series;

/* Sets the registry up for n_slots writers (the worker threads, then one
 * for the main thread) and the histogram bucket bounds in seconds,
 * ascending (NULL: the defaults, 0.5 ms to 10 s). Once, before any worker
 * starts. Series made before it (by a configuration loaded to learn the
 * worker count) get their cells here; until then, and without it (unit
 * tests, `weir check`), updates do nothing and reads are 0. Returns 0,
 * -EINVAL (bad buckets) or -ENOMEM. */
int metrics_init(unsigned n_slots, const double *buckets, size_t n_buckets);
/* Frees the registry (every series must have been put). */
void metrics_shutdown(void);
/* The calling thread writes slot `slot` from now on (a worker calls it
 * once when it starts, with its index). A thread that never calls it
 * writes the last slot, the main thread's. */
void metrics_set_slot(unsigned slot);

/* The series of family f with these label values (as many as f->labels,
 * copied), made on first use, with one more reference. Thread-safe, not
 * for the hot path. Returns NULL when memory is short (updates to NULL do
 * nothing). */
struct metric_series *metrics_series_get(const struct metric_family *f, const char *const *values);
/* Drops a reference; the last one removes the series from the registry
 * (it stops being exposed). NULL is ignored. */
void metrics_series_put(struct metric_series *s);

/* Hot path: adds n to cell `cell` of s in the calling thread's slot. No
 * lock, no atomic read-modify-write: a slot has one writer. */
void metrics_add(struct metric_series *s, unsigned cell, uint64_t n);
/* A gauge's cell down by n (rows wrap; their sum is right). */
static inline void metrics_sub(struct metric_series *s, unsigned cell, uint64_t n)
{
    metrics_add(s, cell, (uint64_t)0 - n);
}
/* Hot path: one observation of `ns` nanoseconds into histogram s. */
void metrics_observe_ns(struct metric_series *s, uint64_t ns);
/* The sum of cell `cell` over all slots (counters), or the count of a
 * histogram. For tests and the admin API. */
uint64_t metrics_read(const struct metric_series *s, unsigned cell);

/* A histogram's bucket counts summed over slots, not cumulative, into
 * counts[0..n): one per bound, then +Inf; *bounds_s gets the bounds in
 * seconds (n - 1 of them, borrowed from the registry). Returns n, or 0
 * when s is NULL, not a histogram, or max is below n. For readers that
 * want a percentile (the autoscaler's latency_p95). */
size_t metrics_read_histogram(const struct metric_series *s, uint64_t *counts, size_t max,
                              const double **bounds_s);

/* ---- exposition ----------------------------------------------------------- */

enum metrics_format { METRICS_TEXT_004, METRICS_OPENMETRICS };

/* A growing text buffer for a scrape. */
struct metrics_out {
    char *data;
    size_t len, cap;
    int failed;                    /* memory ran out: the text is incomplete */
    enum metrics_format format;
};

/* Writes live gauges (or counters kept elsewhere) at scrape time. */
typedef void (*metrics_collect_fn)(struct metrics_out *out, void *arg);

/* Registers a collector called at each scrape, after the registry's own
 * families. Main thread. Returns 0 or -ENOMEM. */
int metrics_collector_add(metrics_collect_fn fn, void *arg);
void metrics_collector_remove(metrics_collect_fn fn, void *arg);

/* Writes every family of the registry, then runs the collectors. The
 * caller frees out->data. Returns 0 or -ENOMEM. */
int metrics_scrape(struct metrics_out *out, enum metrics_format format);

/* For collectors: the HELP and TYPE lines of f (once per family per
 * scrape), then one sample per call. For a counter family `value` is
 * written as a count; values[] as for metrics_series_get. */
void metrics_write_family(struct metrics_out *out, const struct metric_family *f);
void metrics_write_sample(struct metrics_out *out, const struct metric_family *f,
                          const char *const *values, double value);
/* Ends the exposition (OpenMetrics needs "# EOF"). */
void metrics_write_end(struct metrics_out *out);

#endif

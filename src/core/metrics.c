/* metrics: per-thread counters and fixed-bucket histograms, summed at
 * scrape (see metrics.h for the interface).
 *
 * A series is one label set of one family. Its values live in one block
 * with a row per writer slot (each worker thread, then the main thread),
 * each row padded to whole cache lines so two threads never write the
 * same line:
 *
 *   cells ->  slot 0: [c0 c1 c2 ... | pad to 64 B]
 *             slot 1: [c0 c1 c2 ... | pad to 64 B]
 *             ...
 *
 * A counter's cells are its cells_label values; a histogram's are its
 * buckets (not cumulative), then +Inf, then the sum in nanoseconds. Only
 * the slot's own thread writes a row, with a relaxed load and store (no
 * read-modify-write, no lock); a scrape reads every row with relaxed
 * loads and adds them up, so it sees each cell at some recent value.
 *
 * The registry (families, their series, collectors) takes a mutex; only
 * snapshot builds, reference drops and scrapes go there, never a
 * request. */
#include "core/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_LINE 64

struct metric_series {
    const struct metric_family *f;
    struct metric_family_entry *fe;
    struct metric_series *next;
    unsigned refs;
    unsigned n_cells;              /* per slot, used */
    size_t stride;                 /* per slot, in cells (a multiple of a line) */
    _Atomic uint64_t *cells;
    char *values[METRICS_MAX_LABELS];
};

struct metric_family_entry {
    const struct metric_family *f;
    struct metric_series *series;
    struct metric_family_entry *next;
};

struct metric_collector {
    metrics_collect_fn fn;
    void *arg;
    struct metric_collector *next;
};

static struct {
    pthread_mutex_t mu;
    unsigned n_slots;              /* 0 until metrics_init */
    size_t n_buckets;
    uint64_t bounds_ns[METRICS_MAX_BUCKETS];
    double bounds_s[METRICS_MAX_BUCKETS];
    struct metric_family_entry *families, **families_tail;
    struct metric_collector *collectors;
} reg = { .mu = PTHREAD_MUTEX_INITIALIZER, .families_tail = &reg.families };

static const double metrics_default_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static int metrics_series_cells(struct metric_series *s);

int metrics_init(unsigned n_slots, const double *buckets, size_t n_buckets)
{
    if (!buckets) {
        buckets = metrics_default_buckets;
        n_buckets = sizeof(metrics_default_buckets) / sizeof(metrics_default_buckets[0]);
    }
    if (n_slots == 0 || n_buckets == 0 || n_buckets > METRICS_MAX_BUCKETS)
        return -EINVAL;
    for (size_t i = 0; i < n_buckets; i++) {
        if (!(buckets[i] > 0) || buckets[i] > 1e6 || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return -EINVAL;
    }
    pthread_mutex_lock(&reg.mu);
    reg.n_slots = n_slots;
    reg.n_buckets = n_buckets;
    for (size_t i = 0; i < n_buckets; i++) {
        reg.bounds_s[i] = buckets[i];
        reg.bounds_ns[i] = (uint64_t)llround(buckets[i] * 1e9);
    }
    int rc = 0;
    for (struct metric_family_entry *fe = reg.families; fe; fe = fe->next)
        for (struct metric_series *s = fe->series; s; s = s->next)
            if (!s->cells && metrics_series_cells(s) != 0)
                rc = -ENOMEM;
    pthread_mutex_unlock(&reg.mu);
    return rc;
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&reg.mu);
    while (reg.families) {
        struct metric_family_entry *fe = reg.families;
        reg.families = fe->next;
        free(fe);
    }
    while (reg.collectors) {
        struct metric_collector *c = reg.collectors;
        reg.collectors = c->next;
        free(c);
    }
    reg.families_tail = &reg.families;
    reg.n_slots = 0;
    pthread_mutex_unlock(&reg.mu);
}

/* The calling thread's slot + 1; 0: not set, the main thread's (last). */
static _Thread_local unsigned metrics_slot_plus1;

void metrics_set_slot(unsigned slot)
{
    metrics_slot_plus1 = slot + 1;
}

static inline unsigned metrics_slot(void)
{
    return metrics_slot_plus1 ? metrics_slot_plus1 - 1 : reg.n_slots - 1;
}

static unsigned metrics_n_labels(const struct metric_family *f)
{
    unsigned n = 0;
    while (n < METRICS_MAX_LABELS && f->labels[n])
        n++;
    return n;
}

static unsigned metrics_family_cells(const struct metric_family *f)
{
    if (f->type == METRIC_HISTOGRAM)
        return (unsigned)reg.n_buckets + 2;
    return f->n_cells ? f->n_cells : 1;
}

static struct metric_family_entry *metrics_family_entry(const struct metric_family *f)
{
    for (struct metric_family_entry *fe = reg.families; fe; fe = fe->next) {
        if (fe->f == f)
            return fe;
    }
    struct metric_family_entry *fe = calloc(1, sizeof(*fe));
    if (!fe)
        return NULL;
    fe->f = f;
    *reg.families_tail = fe;
    reg.families_tail = &fe->next;
    return fe;
}

static int metrics_same_values(const struct metric_series *s, unsigned n, const char *const *values)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(s->values[i], values[i]) != 0)
            return 0;
    }
    return 1;
}

static void metrics_series_free(struct metric_series *s)
{
    for (unsigned i = 0; i < METRICS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->cells);
    free(s);
}

/* Gives s its cells (registry initialized). Returns 0 or -ENOMEM. */
static int metrics_series_cells(struct metric_series *s)
{
    unsigned n_cells = metrics_family_cells(s->f);
    size_t per_line = METRICS_LINE / sizeof(uint64_t);
    size_t stride = (n_cells + per_line - 1) / per_line * per_line;
    size_t bytes = stride * reg.n_slots * sizeof(uint64_t);
    s->cells = aligned_alloc(METRICS_LINE, bytes);
    if (!s->cells)
        return -ENOMEM;
    memset(s->cells, 0, bytes);
    s->stride = stride;
    s->n_cells = n_cells; /* last: 0 until here, so updates before it do nothing */
    return 0;
}

static struct metric_series *metrics_series_new(const struct metric_family *f, unsigned n_labels,
                                                const char *const *values)
{
    struct metric_series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->f = f;
    s->refs = 1;
    /* a series made before metrics_init (a configuration loaded before the
     * worker count is known) gets its cells there */
    if (reg.n_slots && metrics_series_cells(s) != 0)
        goto fail;
    for (unsigned i = 0; i < n_labels; i++) {
        if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
            goto fail;
    }
    return s;
fail:
    metrics_series_free(s);
    return NULL;
}

struct metric_series *metrics_series_get(const struct metric_family *f, const char *const *values)
{
    pthread_mutex_lock(&reg.mu);
    struct metric_series *s = NULL;
    struct metric_family_entry *fe = metrics_family_entry(f);
    if (!fe)
        goto out;
    unsigned n = metrics_n_labels(f);
    for (s = fe->series; s; s = s->next) {
        if (metrics_same_values(s, n, values)) {
            s->refs++;
            goto out;
        }
    }
    if ((s = metrics_series_new(f, n, values))) {
        s->fe = fe;
        s->next = fe->series;
        fe->series = s;
    }
out:
    pthread_mutex_unlock(&reg.mu);
    return s;
}

void metrics_series_put(struct metric_series *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&reg.mu);
    if (--s->refs > 0) {
        pthread_mutex_unlock(&reg.mu);
        return;
    }
    struct metric_series **pp = &s->fe->series;
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    pthread_mutex_unlock(&reg.mu);
    metrics_series_free(s);
}

static inline void metrics_cell_add(_Atomic uint64_t *cell, uint64_t n)
{
    atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void metrics_add(struct metric_series *s, unsigned cell, uint64_t n)
{
    unsigned slot = metrics_slot();
    if (!s || slot >= reg.n_slots || cell >= s->n_cells)
        return;
    metrics_cell_add(&s->cells[slot * s->stride + cell], n);
}

void metrics_observe_ns(struct metric_series *s, uint64_t ns)
{
    unsigned slot = metrics_slot();
    if (!s || slot >= reg.n_slots || s->n_cells == 0 || s->f->type != METRIC_HISTOGRAM)
        return;
    size_t b = 0;
    while (b < reg.n_buckets && ns > reg.bounds_ns[b])
        b++;
    _Atomic uint64_t *row = &s->cells[slot * s->stride];
    metrics_cell_add(&row[b], 1);
    metrics_cell_add(&row[reg.n_buckets + 1], ns);
}

/* The sum of cell over every slot. */
static uint64_t metrics_sum(const struct metric_series *s, unsigned cell)
{
    uint64_t sum = 0;
    for (unsigned slot = 0; slot < reg.n_slots; slot++)
        sum += atomic_load_explicit(&s->cells[slot * s->stride + cell], memory_order_relaxed);
    return sum;
}

uint64_t metrics_read(const struct metric_series *s, unsigned cell)
{
    if (!s)
        return 0;
    if (s->n_cells == 0)
        return 0;
    if (s->f->type == METRIC_HISTOGRAM) {
        uint64_t n = 0;
        for (unsigned b = 0; b <= reg.n_buckets; b++)
            n += metrics_sum(s, b);
        return n;
    }
    return cell < s->n_cells ? metrics_sum(s, cell) : 0;
}

size_t metrics_read_histogram(const struct metric_series *s, uint64_t *counts, size_t max,
                              const double **bounds_s)
{
    if (!s || s->n_cells == 0 || s->f->type != METRIC_HISTOGRAM || max < reg.n_buckets + 1)
        return 0;
    for (unsigned b = 0; b <= reg.n_buckets; b++)
        counts[b] = metrics_sum(s, b);
    *bounds_s = reg.bounds_s;
    return reg.n_buckets + 1;
}

/* ---- exposition ----------------------------------------------------------- */

static void out_reserve(struct metrics_out *o, size_t more)
{
    if (o->failed || o->len + more + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more + 1)
        cap *= 2;
    char *d = realloc(o->data, cap);
    if (!d) {
        o->failed = 1;
        return;
    }
    o->data = d;
    o->cap = cap;
}

static void out_write(struct metrics_out *o, const char *p, size_t n)
{
    out_reserve(o, n);
    if (o->failed)
        return;
    memcpy(o->data + o->len, p, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void out_str(struct metrics_out *o, const char *s)
{
    out_write(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void out_printf(struct metrics_out *o,
                                                             const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        out_write(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value, escaped as the exposition formats say: \\, \" and \n. */
static void out_label_value(struct metrics_out *o, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            out_str(o, "\\\\");
        else if (*p == '"')
            out_str(o, "\\\"");
        else if (*p == '\n')
            out_str(o, "\\n");
        else
            out_write(o, p, 1);
    }
}

/* Writes a double the way a parser reads back exactly enough. */
static void out_double(struct metrics_out *o, double v)
{
    if (isnan(v))
        out_str(o, "NaN");
    else if (isinf(v))
        out_str(o, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        out_printf(o, "%.0f", v);
    else
        out_printf(o, "%.15g", v);
}

/* The family's name without a trailing _total, for OpenMetrics TYPE/HELP. */
static void out_family_name(struct metrics_out *o, const struct metric_family *f)
{
    size_t n = strlen(f->name);
    if (o->format == METRICS_OPENMETRICS && f->type == METRIC_COUNTER && !f->om_unknown && n > 6 &&
        strcmp(f->name + n - 6, "_total") == 0)
        n -= 6;
    out_write(o, f->name, n);
}

void metrics_write_family(struct metrics_out *o, const struct metric_family *f)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    out_str(o, "# HELP ");
    out_family_name(o, f);
    out_str(o, " ");
    out_str(o, f->help);
    out_str(o, "\n# TYPE ");
    out_family_name(o, f);
    out_str(o, " ");
    out_str(o, o->format == METRICS_OPENMETRICS && f->om_unknown ? "unknown" : type_names[f->type]);
    out_str(o, "\n");
}

/* name{l1="v1",...,extra_name="extra_value"} */
static void out_series_name(struct metrics_out *o, const struct metric_family *f,
                            const char *suffix, const char *const *values, const char *extra_name,
                            const char *extra_value)
{
    out_str(o, f->name);
    out_str(o, suffix);
    unsigned n = metrics_n_labels(f);
    if (n == 0 && !extra_name)
        return;
    out_str(o, "{");
    for (unsigned i = 0; i < n; i++) {
        out_str(o, i ? "," : "");
        out_str(o, f->labels[i]);
        out_str(o, "=\"");
        out_label_value(o, values[i] ? values[i] : "");
        out_str(o, "\"");
    }
    if (extra_name) {
        out_str(o, n ? "," : "");
        out_str(o, extra_name);
        out_str(o, "=\"");
        out_label_value(o, extra_value);
        out_str(o, "\"");
    }
    out_str(o, "}");
}

void metrics_write_sample(struct metrics_out *o, const struct metric_family *f,
                          const char *const *values, double value)
{
    out_series_name(o, f, "", values, NULL, NULL);
    out_str(o, " ");
    out_double(o, value);
    out_str(o, "\n");
}

static void metrics_write_counter(struct metrics_out *o, const struct metric_series *s)
{
    const struct metric_family *f = s->f;
    const char *const *values = (const char *const *)s->values;
    for (unsigned c = 0; c < s->n_cells; c++) {
        out_series_name(o, f, "", values, f->cells_label, f->cells_label ? f->cells[c] : NULL);
        if (f->type == METRIC_GAUGE) /* rows wrap below zero; the sum does not */
            out_printf(o, " %" PRId64 "\n", (int64_t)metrics_sum(s, c));
        else
            out_printf(o, " %" PRIu64 "\n", metrics_sum(s, c));
    }
}

static void metrics_write_histogram(struct metrics_out *o, const struct metric_series *s)
{
    const struct metric_family *f = s->f;
    const char *const *values = (const char *const *)s->values;
    uint64_t cumulative = 0;
    char le[32];
    for (size_t b = 0; b <= reg.n_buckets; b++) {
        cumulative += metrics_sum(s, (unsigned)b);
        if (b < reg.n_buckets)
            snprintf(le, sizeof(le), "%g", reg.bounds_s[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        out_series_name(o, f, "_bucket", values, "le", le);
        out_printf(o, " %" PRIu64 "\n", cumulative);
    }
    out_series_name(o, f, "_sum", values, NULL, NULL);
    out_str(o, " ");
    out_double(o, (double)metrics_sum(s, (unsigned)reg.n_buckets + 1) / 1e9);
    out_str(o, "\n");
    out_series_name(o, f, "_count", values, NULL, NULL);
    out_printf(o, " %" PRIu64 "\n", cumulative);
}

void metrics_write_end(struct metrics_out *o)
{
    if (o->format == METRICS_OPENMETRICS)
        out_str(o, "# EOF\n");
}

int metrics_scrape(struct metrics_out *o, enum metrics_format format)
{
    memset(o, 0, sizeof(*o));
    o->format = format;
    out_reserve(o, 4096);
    if (o->data)
        o->data[0] = '\0';
    pthread_mutex_lock(&reg.mu);
    for (struct metric_family_entry *fe = reg.families; fe; fe = fe->next) {
        if (!fe->series)
            continue;
        metrics_write_family(o, fe->f);
        for (const struct metric_series *s = fe->series; s; s = s->next) {
            if (s->n_cells == 0)
                continue;
            if (fe->f->type == METRIC_HISTOGRAM)
                metrics_write_histogram(o, s);
            else
                metrics_write_counter(o, s);
        }
    }
    struct metric_collector *cs = reg.collectors;
    pthread_mutex_unlock(&reg.mu);
    /* collectors are added and removed on the main thread, like scrapes */
    for (struct metric_collector *c = cs; c; c = c->next)
        c->fn(o, c->arg);
    metrics_write_end(o);
    if (o->failed) {
        free(o->data);
        o->data = NULL;
        o->len = o->cap = 0;
        return -ENOMEM;
    }
    return 0;
}

int metrics_collector_add(metrics_collect_fn fn, void *arg)
{
    struct metric_collector *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&reg.mu);
    struct metric_collector **pp = &reg.collectors;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    pthread_mutex_unlock(&reg.mu);
    return 0;
}

void metrics_collector_remove(metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&reg.mu);
    for (struct metric_collector **pp = &reg.collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->arg == arg) {
            struct metric_collector *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&reg.mu);
}

/* decide: how many instances a cluster should run, the way Kubernetes'
 * HorizontalPodAutoscaler decides it, as a pure function.
 *
 *   readings ─> per metric: want = ceil(current × value / target)
 *               (inside the tolerance band |value/target − 1| ≤ tol: current)
 *            ─> the largest want wins ─> floor/ceiling: min..max
 *               (0 when scale_to_zero and every reading is idle)
 *            ─> history of proposals ─> stabilization:
 *                  down: the highest proposal of the last `down` window
 *                  up:   the lowest proposal of the last `up` window
 *            ─> max_step ─> desired
 *
 * queue_visible and in_flight are totals over the cluster, so their
 * per-instance value is total / current and want = ceil(total / target):
 * that also works from zero instances (a queue with visible messages
 * starts at least one). latency_p95 and cpu are judged only while
 * instances run. Stabilization is what stops flapping: a scale-down waits
 * until every proposal of the window agrees it may go that low. It never
 * looks at a clock or does I/O: the caller passes now_ms. */
#include "autoscale/decide.h"

#include <math.h>

#define AUTOSCALE_ENUM_NAME(e, s) s,
static const char *const autoscale_reason_names[] = {AUTOSCALE_REASON_LIST(AUTOSCALE_ENUM_NAME)};
static const char *const autoscale_direction_names[] = {
    AUTOSCALE_DIRECTION_LIST(AUTOSCALE_ENUM_NAME)};
#undef AUTOSCALE_ENUM_NAME

const char *autoscale_reason_name(enum autoscale_reason r)
{
    return (unsigned)r < AUTOSCALE_REASON_COUNT ? autoscale_reason_names[r] : "?";
}

const char *autoscale_direction_name(enum autoscale_direction d)
{
    return (unsigned)d < AUTOSCALE_DIRECTION_COUNT ? autoscale_direction_names[d] : "?";
}

/* ceil(x) as a count, bounded by AUTOSCALE_MAX_INSTANCES; a hair below an
 * integer (300/100 in floating point) counts as that integer. */
static uint32_t autoscale_ceil(double x)
{
    if (!(x > 0))
        return 0;
    if (x >= AUTOSCALE_MAX_INSTANCES)
        return AUTOSCALE_MAX_INSTANCES;
    return (uint32_t)ceil(x - 1e-9);
}

static int autoscale_is_total(int m)
{
    return m == AUTOSCALE_METRIC_QUEUE_VISIBLE || m == AUTOSCALE_METRIC_IN_FLIGHT;
}

/* One metric's wish; *ratio gets its per-instance value / target. Returns
 * -1 when it cannot judge (no instance to measure). */
static int64_t autoscale_want(int m, const struct autoscale_reading *r, uint32_t current,
                              double tolerance, double *ratio)
{
    if (autoscale_is_total(m)) {
        *ratio = current ? r->value / current / r->target : r->value / r->target;
        if (current && fabs(*ratio - 1) <= tolerance)
            return current;
        return autoscale_ceil(r->value / r->target);
    }
    if (current == 0)
        return -1;
    *ratio = r->value / r->target;
    if (fabs(*ratio - 1) <= tolerance)
        return current;
    return autoscale_ceil(current * *ratio);
}

/* Keeps the proposals a window may still need (the newest always). */
static void autoscale_history_add(struct autoscale_history *h, uint64_t keep_ms, uint64_t now_ms,
                                  uint32_t count)
{
    size_t drop = 0;
    while (drop < h->n && h->recs[drop].at_ms + keep_ms < now_ms)
        drop++;
    if (h->n - drop == AUTOSCALE_HISTORY_MAX)
        drop++; /* full: the oldest goes, the window is a little shorter */
    for (size_t i = drop; i < h->n; i++)
        h->recs[i - drop] = h->recs[i];
    h->n -= drop;
    h->recs[h->n].at_ms = now_ms;
    h->recs[h->n].count = count;
    h->n++;
}

/* The highest (want_max) or lowest proposal made within window_ms of now. */
static uint32_t autoscale_window(const struct autoscale_history *h, uint64_t window_ms,
                                 uint64_t now_ms, int want_max)
{
    uint32_t v = h->recs[h->n - 1].count;
    for (size_t i = 0; i < h->n; i++) {
        if (h->recs[i].at_ms + window_ms < now_ms)
            continue;
        uint32_t c = h->recs[i].count;
        if (want_max ? c > v : c < v)
            v = c;
    }
    return v;
}

/* The metrics' largest wish into out (metric, ratio, reason); *idle says
 * no reading saw any work. Returns the wish. */
static uint32_t autoscale_metrics_want(const struct autoscale_policy *p, uint32_t current,
                                       const struct autoscale_reading *readings,
                                       struct autoscale_decision *out, int *idle)
{
    int64_t want = -1;
    *idle = 1;
    out->metric = -1;
    out->ratio = 0;
    for (int m = 0; m < AUTOSCALE_METRIC_COUNT; m++) {
        const struct autoscale_reading *r = &readings[m];
        if (!r->present || !(r->target > 0))
            continue;
        if (r->value > 0)
            *idle = 0;
        double ratio = 0;
        int64_t w = autoscale_want(m, r, current, p->tolerance, &ratio);
        if (w > want) {
            want = w;
            out->metric = m;
            out->ratio = ratio;
        }
    }
    if (want < 0) {
        out->reason = AUTOSCALE_REASON_NO_METRICS;
        return p->scale_to_zero && *idle ? 0 : current;
    }
    out->reason = (uint32_t)want == current ? AUTOSCALE_REASON_STEADY : AUTOSCALE_REASON_METRIC;
    return (uint32_t)want;
}

uint32_t autoscale_decide(const struct autoscale_policy *p, struct autoscale_history *h,
                          uint32_t current, const struct autoscale_reading *readings,
                          uint64_t now_ms, struct autoscale_decision *out)
{
    int idle;
    out->current = current;
    uint32_t want = autoscale_metrics_want(p, current, readings, out, &idle);
    uint32_t floor = p->scale_to_zero && idle ? 0 : (p->min ? p->min : 1);
    uint32_t proposed = want;
    if (proposed < floor) {
        proposed = floor;
        out->reason = AUTOSCALE_REASON_MIN;
    }
    if (proposed > p->max) {
        proposed = p->max;
        out->reason = AUTOSCALE_REASON_MAX;
    }
    out->proposed = proposed;
    uint64_t keep = p->up_window_ms > p->down_window_ms ? p->up_window_ms : p->down_window_ms;
    autoscale_history_add(h, keep, now_ms, proposed);

    uint32_t desired = proposed;
    if (proposed < current) {
        uint32_t high = autoscale_window(h, p->down_window_ms, now_ms, 1);
        desired = high < current ? high : current;
    } else if (proposed > current) {
        uint32_t low = autoscale_window(h, p->up_window_ms, now_ms, 0);
        desired = low > current ? low : current;
    }
    if (desired != proposed)
        out->reason = AUTOSCALE_REASON_STABILIZED;
    if (p->max_step && desired > current && desired - current > p->max_step) {
        desired = current + p->max_step;
        out->reason = AUTOSCALE_REASON_MAX_STEP;
    } else if (p->max_step && desired < current && current - desired > p->max_step) {
        desired = current - p->max_step;
        out->reason = AUTOSCALE_REASON_MAX_STEP;
    }
    if (current == 0 && desired > 0)
        out->reason = AUTOSCALE_REASON_FROM_ZERO;
    else if (desired == 0 && current > 0)
        out->reason = AUTOSCALE_REASON_TO_ZERO;
    out->desired = desired;
    out->direction = desired > current   ? AUTOSCALE_UP
                     : desired < current ? AUTOSCALE_DOWN
                                         : AUTOSCALE_NONE;
    return desired;
}

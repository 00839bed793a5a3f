/* decide: the autoscaler's decision, a pure function of the policy, the
 * recommendations of the last periods, the current instance count and
 * this period's metric readings (decide.c explains the rules). No clock,
 * no I/O: the caller passes the time, so unit tests replay recorded
 * series (tests/unit/test_autoscale_decide.c). */
#ifndef WEIR_AUTOSCALE_DECIDE_H
#define WEIR_AUTOSCALE_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "autoscale/autoscale_cfg.h"

#define AUTOSCALE_HISTORY_MAX 1024

/* Why the count is what it is: enum and the metric label from one list. */
#define AUTOSCALE_REASON_LIST(X)                                                                   \
    X(AUTOSCALE_REASON_METRIC, "metric")         /* a metric's ratio (see decision.metric) */      \
    X(AUTOSCALE_REASON_STEADY, "steady")         /* every metric within the tolerance band */      \
    X(AUTOSCALE_REASON_NO_METRICS, "no_metrics") /* nothing to read this period: hold */           \
    X(AUTOSCALE_REASON_STABILIZED, "stabilized") /* a stabilization window held it */              \
    X(AUTOSCALE_REASON_MAX_STEP, "max_step")     /* limited to max_step per period */              \
    X(AUTOSCALE_REASON_MIN, "min")               /* raised to min */                               \
    X(AUTOSCALE_REASON_MAX, "max")               /* capped at max */                               \
    X(AUTOSCALE_REASON_FROM_ZERO, "from_zero")   /* work arrived with no instance */               \
    X(AUTOSCALE_REASON_TO_ZERO, "to_zero")       /* idle and scale_to_zero */
#define AUTOSCALE_ENUM_MEMBER(e, s) e,
enum autoscale_reason { AUTOSCALE_REASON_LIST(AUTOSCALE_ENUM_MEMBER) AUTOSCALE_REASON_COUNT };
#undef AUTOSCALE_ENUM_MEMBER

#define AUTOSCALE_DIRECTION_LIST(X)                                                                \
    X(AUTOSCALE_NONE, "none") X(AUTOSCALE_UP, "up") X(AUTOSCALE_DOWN, "down")
#define AUTOSCALE_ENUM_MEMBER(e, s) e,
enum autoscale_direction {
    AUTOSCALE_DIRECTION_LIST(AUTOSCALE_ENUM_MEMBER) AUTOSCALE_DIRECTION_COUNT
};
#undef AUTOSCALE_ENUM_MEMBER

const char *autoscale_reason_name(enum autoscale_reason r);
const char *autoscale_direction_name(enum autoscale_direction d);

/* The rules a decision follows (from struct cfg_autoscale, with the admin
 * API's min and max). */
struct autoscale_policy {
    uint32_t min, max;
    uint32_t max_step; /* 0: no limit */
    double tolerance;
    uint64_t up_window_ms, down_window_ms;
    int scale_to_zero;
};

/* One metric's reading this period. For queue_visible and in_flight,
 * `value` is the total over the cluster (messages visible, requests in
 * flight); for latency_p95 (ms) and cpu (percent per instance, the
 * average) it is the measure itself. */
struct autoscale_reading {
    int present; /* 0: no reading (no traffic sampled, no instance) */
    double value;
    double target;
};

/* Recommendations of the last periods, oldest first (the caller keeps it
 * zeroed at start, decide updates it). */
struct autoscale_history {
    struct {
        uint64_t at_ms;
        uint32_t count;
    } recs[AUTOSCALE_HISTORY_MAX];
    size_t n;
};

struct autoscale_decision {
    uint32_t current;  /* instances counted by the caller */
    uint32_t proposed; /* the largest wish of the metrics, within min..max */
    uint32_t desired;  /* the decision */
    enum autoscale_direction direction;
    enum autoscale_reason reason;
    int metric;   /* enum autoscale_metric that won, -1 none */
    double ratio; /* its value / target (per instance) */
};

/* Decides how many instances should run at now_ms, given `current`
 * running (ready or starting) and readings[AUTOSCALE_METRIC_COUNT].
 * Records this period's recommendation in h. Fills *out; returns
 * out->desired. */
uint32_t autoscale_decide(const struct autoscale_policy *p, struct autoscale_history *h,
                          uint32_t current, const struct autoscale_reading *readings,
                          uint64_t now_ms, struct autoscale_decision *out);

#endif

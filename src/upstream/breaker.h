/* breaker: a circuit breaker shared by all workers, lock-free.
 *
 *            failures over threshold          recovery_timeout elapsed
 *   CLOSED ---------------------------> OPEN ------------------------> HALF_OPEN
 *     ^                                  ^                                 |
 *     |   half_open_requests probes ok   |       a probe fails             |
 *     +----------------------------------+---------------------------------+
 *
 * CLOSED counts outcomes in a rolling window of BREAKER_BUCKETS buckets
 * (window / BREAKER_BUCKETS each); it opens on a failure count or on a
 * failure ratio once the window holds min_requests. OPEN refuses every
 * request (the proxy answers 503 without calling the backend). HALF_OPEN
 * admits at most half_open_requests probes at a time; they must all succeed
 * to close it. Counting is approximate under races (a bucket may lose an
 * increment while it rotates); state changes are exact (compare-and-swap). */
#ifndef WEIR_UPSTREAM_BREAKER_H
#define WEIR_UPSTREAM_BREAKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "upstream/cluster_cfg.h"

struct metric_series;

#define BREAKER_BUCKETS 10

#define BREAKER_STATE_LIST(X) \
    X(BREAKER_CLOSED, "closed") \
    X(BREAKER_OPEN, "open") \
    X(BREAKER_HALF_OPEN, "half-open")
#define BREAKER_STATE_ENUM(e, s) e,
enum breaker_state { BREAKER_STATE_LIST(BREAKER_STATE_ENUM) };
#undef BREAKER_STATE_ENUM

struct breaker_bucket {
    _Atomic uint64_t epoch;        /* now_ms / bucket width when last used */
    _Atomic uint32_t ok;
    _Atomic uint32_t fail;
};

struct breaker {
    _Atomic int state;
    _Atomic uint64_t opened_at_ms;
    _Atomic uint32_t probes_inflight;
    _Atomic uint32_t probes_ok;
    struct breaker_bucket buckets[BREAKER_BUCKETS];
    struct metric_series *m_transitions; /* cells by the new state (upstream_metrics.c) */
};

enum breaker_admission {
    BREAKER_DENY = 0,
    BREAKER_PASS = 1,              /* closed: an ordinary request */
    BREAKER_PROBE = 2,             /* half-open: a probe; report it with was_probe = 1 */
};

void breaker_init(struct breaker *b);
const char *breaker_state_name(int state);
/* Whether a request may go now. OPEN turns HALF_OPEN here once the
 * recovery timeout has passed. */
enum breaker_admission breaker_admit(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms);
/* Gives back a probe slot that was admitted but not used. */
void breaker_cancel_probe(struct breaker *b);
/* Records an outcome. Returns the new state when this call changed it,
 * else -1 (so the caller can log the transition once). */
int breaker_record(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms, int success,
                   int was_probe);
/* True while requests are refused (OPEN and the recovery time not over). */
int breaker_is_open(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms);

#endif

/* endpoint: one backend address of a cluster, shared by all workers.
 *
 * The fields that must be global for balancing to be right (requests in
 * flight, latency average, whether it may take traffic) are atomics; workers
 * update them without locks. An endpoint belongs to one configuration
 * snapshot and lives as long as that snapshot. */
#ifndef WEIR_UPSTREAM_ENDPOINT_H
#define WEIR_UPSTREAM_ENDPOINT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upstream/cluster_cfg.h"
#include "upstream/breaker.h"

struct cluster;
struct metric_series;

struct endpoint {
    char name[64];                 /* "127.0.0.1:9001", for logs */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight;               /* >= 1 */
    unsigned index;                /* position in its cluster */
    _Atomic int active;            /* requests in flight on this endpoint, all workers */
    _Atomic uint64_t ewma_us;      /* EWMA of response time (us), 0 = no sample yet */
    _Atomic int up;                /* 1 = may be picked: derived by endpoint_refresh() */
    /* resilience state, all workers and the main thread */
    struct cluster *cluster;       /* owner (its cfg holds the thresholds) */
    int drain;                     /* from the config or the admin API: no new requests */
    int down;                      /* admin API maintenance: no requests, not even in panic */
    _Atomic int healthy;           /* the active checks' verdict (1 without checks) */
    _Atomic uint64_t ejected_until_ms; /* outlier ejection, 0 = not ejected */
    _Atomic uint32_t ejections;    /* consecutive ejections: the next one lasts longer */
    _Atomic uint32_t consecutive_failures;
    _Atomic uint64_t ready_since_ms;   /* slow start began (0 = full share) */
    _Atomic uint32_t share_pct;    /* slow start: 1..100 % of its normal share */
    struct breaker breaker;
    /* series (upstream_metrics.c), NULL when metrics are off */
    struct metric_series *m_requests, *m_ejections, *m_checks;
};

/* Outcome of one attempt on an endpoint, as the proxy saw it. */
enum endpoint_outcome {
    ENDPOINT_OK = -1,
    /* else an enum cfg_failure: CFG_FAILURE_CONNECT, _RESET, _TIMEOUT, _5XX */
};

/* Milliseconds on a monotonic clock, the time base of all the state above. */
uint64_t endpoint_now_ms(void);

/* Recomputes ep->up (healthy, not draining, not ejected, breaker not open)
 * and the slow-start share. Safe from any thread. */
void endpoint_refresh(struct endpoint *ep, uint64_t now_ms);

/* Feeds one attempt's outcome (ENDPOINT_OK or a cfg_failure) into outlier
 * detection and the endpoint's circuit breaker. `was_probe` says the attempt
 * was admitted as a half-open probe. Logs ejections and breaker changes. */
void endpoint_record(struct endpoint *ep, int outcome, int was_probe, uint64_t now_ms);

/* The active health check's verdict changed. */
void endpoint_set_healthy(struct endpoint *ep, int healthy, const char *reason, uint64_t now_ms);

/* Records a finished request's latency into the EWMA (alpha = 1/8). */
void endpoint_observe_latency(struct endpoint *ep, uint64_t latency_us);

#endif

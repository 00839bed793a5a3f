/* endpoint: the shared, lock-free state of one backend address.
 *
 * The latency average is an exponentially weighted moving average with
 * alpha = 1/8, kept in whole microseconds in one 64-bit atomic:
 *
 *     ewma' = ewma + (sample - ewma) / 8        (first sample: ewma' = sample)
 *
 * Every worker finishing a request on the endpoint folds its sample in with a
 * compare-and-swap loop, so concurrent updates are never lost and no lock is
 * taken. 0 is reserved for "no sample yet" (least_response_time treats such
 * an endpoint specially), so a stored average is always >= 1. The update must
 * never block and never allocate: it runs on the hot path of every response. */
#include "upstream/endpoint.h"

/* Samples above this are clamped: an hour is already "very slow", and the
 * cap keeps every product the balancer forms from the average within 64 bits. */
#define ENDPOINT_LATENCY_MAX_US (3600ULL * 1000 * 1000)

/* Returns the average after folding `sample_us` into `old_us` (0 = none yet). */
static uint64_t endpoint_ewma_next(uint64_t old_us, uint64_t sample_us)
{
    uint64_t next_us;

    if (old_us == 0)
        next_us = sample_us;
    else if (sample_us >= old_us)
        next_us = old_us + (sample_us - old_us) / 8;
    else
        next_us = old_us - (old_us - sample_us) / 8;
    return next_us ? next_us : 1;
}

/* Folds one finished request's latency (microseconds) into ep->ewma_us.
 * Safe from any thread; `ep` is borrowed. */
void endpoint_observe_latency(struct endpoint *ep, uint64_t latency_us)
{
    uint64_t old_us, next_us;

    if (latency_us > ENDPOINT_LATENCY_MAX_US)
        latency_us = ENDPOINT_LATENCY_MAX_US;
    old_us = atomic_load_explicit(&ep->ewma_us, memory_order_relaxed);
    do {
        next_us = endpoint_ewma_next(old_us, latency_us);
        if (next_us == old_us)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&ep->ewma_us, &old_us, next_us,
                                                    memory_order_relaxed, memory_order_relaxed));
}

/* ---- availability, outlier ejection, breaker --------------------------- */

#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "upstream/cluster.h"

uint64_t endpoint_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t endpoint_share(const struct endpoint *ep, uint64_t now_ms)
{
    uint64_t window = ep->cluster ? ep->cluster->cfg->slow_start_ms : 0;
    uint64_t since = atomic_load_explicit(&ep->ready_since_ms, memory_order_relaxed);
    if (window == 0 || since == 0 || now_ms >= since + window)
        return 100;
    uint64_t pct = (now_ms - since) * 100 / window;
    return pct < 1 ? 1 : (uint32_t)pct;
}

void endpoint_refresh(struct endpoint *ep, uint64_t now_ms)
{
    int up = !ep->drain && !ep->down && atomic_load_explicit(&ep->healthy, memory_order_relaxed);
    if (up && atomic_load_explicit(&ep->ejected_until_ms, memory_order_relaxed) > now_ms)
        up = 0;
    if (up && ep->cluster && ep->cluster->cfg->breaker.enabled && !ep->cluster->cfg->breaker.per_cluster &&
        breaker_is_open(&ep->breaker, &ep->cluster->cfg->breaker, now_ms))
        up = 0;
    atomic_store_explicit(&ep->up, up, memory_order_relaxed);
    uint32_t share = endpoint_share(ep, now_ms);
    atomic_store_explicit(&ep->share_pct, share, memory_order_relaxed);
    if (share == 100 && atomic_load_explicit(&ep->ready_since_ms, memory_order_relaxed))
        atomic_store_explicit(&ep->ready_since_ms, 0, memory_order_relaxed);
}

/* Ejects ep for base * 2^(previous ejections), capped, unless that would
 * eject more than max_ejected_percent of the cluster. */
static void endpoint_eject(struct endpoint *ep, const struct cfg_outlier *od, uint64_t now_ms)
{
    struct cluster *cl = ep->cluster;
    size_t ejected = cluster_ejected(cl, now_ms);
    if ((ejected + 1) * 100 > (size_t)od->max_ejected_percent * cl->n_endpoints) {
        log_warn("cluster %s: endpoint %s failed %u times in a row but is not ejected: %zu of %zu "
                 "endpoints already are (max_ejected_percent %u)", cl->cfg->name, ep->name,
                 od->consecutive_failures, ejected, cl->n_endpoints, od->max_ejected_percent);
        return;
    }
    uint32_t n = atomic_fetch_add(&ep->ejections, 1);
    uint64_t ms = od->base_ejection_ms;
    for (uint32_t i = 0; i < n && ms < od->max_ejection_ms; i++)
        ms *= 2;
    if (ms > od->max_ejection_ms)
        ms = od->max_ejection_ms;
    atomic_store(&ep->ejected_until_ms, now_ms + ms);
    atomic_store(&ep->consecutive_failures, 0);
    metrics_add(ep->m_ejections, 0, 1);
    log_warn("cluster %s: endpoint %s ejected for %llu ms after %u consecutive failures "
             "(ejection #%u)", cl->cfg->name, ep->name, (unsigned long long)ms,
             od->consecutive_failures, n + 1);
}

static void endpoint_outlier_record(struct endpoint *ep, int outcome, uint64_t now_ms)
{
    const struct cfg_outlier *od = &ep->cluster->cfg->outlier;
    if (!od->enabled)
        return;
    if (outcome == ENDPOINT_OK) {
        if (atomic_load_explicit(&ep->consecutive_failures, memory_order_relaxed))
            atomic_store_explicit(&ep->consecutive_failures, 0, memory_order_relaxed);
        /* a long healthy spell forgives earlier ejections */
        uint64_t until = atomic_load_explicit(&ep->ejected_until_ms, memory_order_relaxed);
        if (until && now_ms > until + od->max_ejection_ms) {
            atomic_store(&ep->ejections, 0);
            atomic_store(&ep->ejected_until_ms, 0);
        }
        return;
    }
    if (!(od->on_mask & CFG_FAILURE_BIT(outcome)))
        return;
    if (atomic_load(&ep->ejected_until_ms) > now_ms)
        return;
    if (atomic_fetch_add(&ep->consecutive_failures, 1) + 1 >= od->consecutive_failures)
        endpoint_eject(ep, od, now_ms);
}

static void endpoint_breaker_record(struct breaker *b, const struct cfg_breaker *cfg,
                                    const char *cluster, const char *what, int outcome,
                                    int was_probe, uint64_t now_ms)
{
    int to = breaker_record(b, cfg, now_ms, outcome == ENDPOINT_OK, was_probe);
    if (to < 0)
        return;
    if (to == BREAKER_OPEN)
        log_warn("cluster %s: circuit breaker of %s is now open: requests fail fast with 503 for %llu ms",
                 cluster, what, (unsigned long long)cfg->recovery_timeout_ms);
    else
        log_info("cluster %s: circuit breaker of %s is now %s", cluster, what, breaker_state_name(to));
}

void endpoint_record(struct endpoint *ep, int outcome, int was_probe, uint64_t now_ms)
{
    struct cluster *cl = ep->cluster;
    if (!cl)
        return;
    endpoint_outlier_record(ep, outcome, now_ms);
    const struct cfg_breaker *cb = &cl->cfg->breaker;
    if (cb->enabled) {
        if (cb->per_cluster)
            endpoint_breaker_record(&cl->breaker, cb, cl->cfg->name, "the cluster", outcome, was_probe,
                                    now_ms);
        else
            endpoint_breaker_record(&ep->breaker, cb, cl->cfg->name, ep->name, outcome, was_probe,
                                    now_ms);
    }
    if (outcome != ENDPOINT_OK || was_probe)
        endpoint_refresh(ep, now_ms);
}

void endpoint_set_healthy(struct endpoint *ep, int healthy, const char *reason, uint64_t now_ms)
{
    int was = atomic_exchange(&ep->healthy, healthy);
    if (was == healthy)
        return;
    const char *cluster = ep->cluster ? ep->cluster->cfg->name : "?";
    if (healthy) {
        log_warn("cluster %s: endpoint %s is UP (%s)", cluster, ep->name, reason);
        if (ep->cluster && ep->cluster->cfg->slow_start_ms)
            atomic_store(&ep->ready_since_ms, now_ms ? now_ms : 1);
    } else {
        log_warn("cluster %s: endpoint %s is DOWN (%s)", cluster, ep->name, reason);
    }
    endpoint_refresh(ep, now_ms);
}

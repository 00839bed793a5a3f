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

/* breaker: see breaker.h. */
#include "upstream/breaker.h"

#include "core/metrics.h"

#include <string.h>

#define BREAKER_STATE_NAME(e, s) s,
static const char *const breaker_state_names[] = { BREAKER_STATE_LIST(BREAKER_STATE_NAME) };
#undef BREAKER_STATE_NAME

const char *breaker_state_name(int state)
{
    return state >= 0 && state <= BREAKER_HALF_OPEN ? breaker_state_names[state] : "?";
}

void breaker_init(struct breaker *b)
{
    atomic_init(&b->state, BREAKER_CLOSED);
    atomic_init(&b->opened_at_ms, 0);
    atomic_init(&b->probes_inflight, 0);
    atomic_init(&b->probes_ok, 0);
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        atomic_init(&b->buckets[i].epoch, 0);
        atomic_init(&b->buckets[i].ok, 0);
        atomic_init(&b->buckets[i].fail, 0);
    }
}

static uint64_t breaker_width_ms(const struct cfg_breaker *cfg)
{
    uint64_t w = cfg->window_ms / BREAKER_BUCKETS;
    return w ? w : 1;
}

static void breaker_reset_window(struct breaker *b)
{
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        atomic_store_explicit(&b->buckets[i].ok, 0, memory_order_relaxed);
        atomic_store_explicit(&b->buckets[i].fail, 0, memory_order_relaxed);
        atomic_store_explicit(&b->buckets[i].epoch, 0, memory_order_relaxed);
    }
}

/* The bucket for now, cleared first if it still holds an older period. */
static struct breaker_bucket *breaker_bucket(struct breaker *b, const struct cfg_breaker *cfg,
                                             uint64_t now_ms)
{
    uint64_t epoch = now_ms / breaker_width_ms(cfg) + 1;
    struct breaker_bucket *k = &b->buckets[epoch % BREAKER_BUCKETS];
    uint64_t seen = atomic_load_explicit(&k->epoch, memory_order_relaxed);
    if (seen != epoch &&
        atomic_compare_exchange_strong_explicit(&k->epoch, &seen, epoch, memory_order_relaxed,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&k->ok, 0, memory_order_relaxed);
        atomic_store_explicit(&k->fail, 0, memory_order_relaxed);
    }
    return k;
}

static void breaker_window_sums(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms,
                                uint64_t *ok, uint64_t *fail)
{
    uint64_t epoch = now_ms / breaker_width_ms(cfg) + 1;
    *ok = *fail = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        uint64_t e = atomic_load_explicit(&b->buckets[i].epoch, memory_order_relaxed);
        if (e == 0 || e + BREAKER_BUCKETS <= epoch)
            continue;
        *ok += atomic_load_explicit(&b->buckets[i].ok, memory_order_relaxed);
        *fail += atomic_load_explicit(&b->buckets[i].fail, memory_order_relaxed);
    }
}

static int breaker_move(struct breaker *b, int from, int to, uint64_t now_ms)
{
    if (!atomic_compare_exchange_strong(&b->state, &from, to))
        return -1;
    if (to == BREAKER_OPEN)
        atomic_store(&b->opened_at_ms, now_ms);
    if (to == BREAKER_HALF_OPEN || to == BREAKER_OPEN) {
        atomic_store(&b->probes_inflight, 0);
        atomic_store(&b->probes_ok, 0);
    }
    if (to == BREAKER_CLOSED)
        breaker_reset_window(b);
    metrics_add(b->m_transitions, (unsigned)to, 1);
    return to;
}

int breaker_is_open(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms)
{
    if (atomic_load_explicit(&b->state, memory_order_relaxed) != BREAKER_OPEN)
        return 0;
    return now_ms < atomic_load(&b->opened_at_ms) + cfg->recovery_timeout_ms;
}

enum breaker_admission breaker_admit(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms)
{
    int st = atomic_load_explicit(&b->state, memory_order_relaxed);
    if (st == BREAKER_CLOSED)
        return BREAKER_PASS;
    if (st == BREAKER_OPEN) {
        if (breaker_is_open(b, cfg, now_ms))
            return BREAKER_DENY;
        breaker_move(b, BREAKER_OPEN, BREAKER_HALF_OPEN, now_ms);
    }
    uint32_t n = atomic_load(&b->probes_inflight);
    do {
        if (n >= cfg->half_open_requests)
            return BREAKER_DENY;
    } while (!atomic_compare_exchange_weak(&b->probes_inflight, &n, n + 1));
    return BREAKER_PROBE;
}

void breaker_cancel_probe(struct breaker *b)
{
    if (atomic_load(&b->probes_inflight) > 0)
        atomic_fetch_sub(&b->probes_inflight, 1);
}

static int breaker_should_open(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms)
{
    uint64_t ok, fail;
    breaker_window_sums(b, cfg, now_ms, &ok, &fail);
    if (cfg->failures && fail >= cfg->failures)
        return 1;
    uint64_t total = ok + fail;
    return cfg->failure_ratio_pct && total >= cfg->min_requests &&
           fail * 100 >= (uint64_t)cfg->failure_ratio_pct * total;
}

int breaker_record(struct breaker *b, const struct cfg_breaker *cfg, uint64_t now_ms, int success,
                   int was_probe)
{
    int st = atomic_load(&b->state);
    if (st == BREAKER_HALF_OPEN) {
        if (!was_probe)
            return -1; /* a request admitted before the breaker opened */
        if (!success)
            return breaker_move(b, BREAKER_HALF_OPEN, BREAKER_OPEN, now_ms);
        uint32_t ok = atomic_fetch_add(&b->probes_ok, 1) + 1;
        if (ok >= cfg->half_open_requests)
            return breaker_move(b, BREAKER_HALF_OPEN, BREAKER_CLOSED, now_ms);
        return -1;
    }
    if (st != BREAKER_CLOSED)
        return -1;
    struct breaker_bucket *k = breaker_bucket(b, cfg, now_ms);
    atomic_fetch_add_explicit(success ? &k->ok : &k->fail, 1, memory_order_relaxed);
    if (!success && breaker_should_open(b, cfg, now_ms))
        return breaker_move(b, BREAKER_CLOSED, BREAKER_OPEN, now_ms);
    return -1;
}

/* resp_stats: see resp_stats.h. */
#include "resp/resp_stats.h"

#include <string.h>

static struct resp_stats resp_stats_slots[RESP_STATS_SLOTS];
static _Atomic uint64_t resp_stats_started_ms;

struct resp_stats *resp_stats_slot(unsigned id)
{
    return id < RESP_STATS_SLOTS ? &resp_stats_slots[id] : NULL;
}

void resp_stats_start(uint64_t now_ms)
{
    uint64_t none = 0;
    atomic_compare_exchange_strong(&resp_stats_started_ms, &none, now_ms ? now_ms : 1);
}

void resp_stats_tick(struct resp_stats *st, uint64_t now_ms)
{
    uint32_t last = (atomic_load_explicit(&st->sample_next, memory_order_relaxed) +
                     RESP_STATS_SAMPLES - 1) % RESP_STATS_SAMPLES;
    uint64_t last_ms = atomic_load_explicit(&st->sample_ms[last], memory_order_relaxed);
    if (last_ms != 0 && now_ms - last_ms < 100)
        return;
    uint32_t i = atomic_load_explicit(&st->sample_next, memory_order_relaxed);
    atomic_store_explicit(&st->sample_cmds[i], atomic_load_explicit(&st->commands,
                          memory_order_relaxed), memory_order_relaxed);
    atomic_store_explicit(&st->sample_ms[i], now_ms, memory_order_relaxed);
    atomic_store_explicit(&st->sample_next, (i + 1) % RESP_STATS_SAMPLES, memory_order_relaxed);
}

#define RESP_STATS_WINDOW_MS (100 * RESP_STATS_SAMPLES)

/* Commands per second of one worker: from its oldest sample of the last
 * 1.6 s (or its newest, when it has been idle longer) to now. */
static uint64_t resp_stats_rate(const struct resp_stats *st, uint64_t now_ms)
{
    uint64_t t_old = 0, c_old = 0, t_new = 0, c_new = 0;
    for (int i = 0; i < RESP_STATS_SAMPLES; i++) {
        uint64_t t = atomic_load_explicit(&st->sample_ms[i], memory_order_relaxed);
        uint64_t c = atomic_load_explicit(&st->sample_cmds[i], memory_order_relaxed);
        if (t == 0 || t > now_ms)
            continue;
        if (now_ms - t <= RESP_STATS_WINDOW_MS && (t_old == 0 || t < t_old)) {
            t_old = t;
            c_old = c;
        }
        if (t > t_new) {
            t_new = t;
            c_new = c;
        }
    }
    if (t_old == 0) {
        t_old = t_new;
        c_old = c_new;
    }
    uint64_t c = atomic_load_explicit(&st->commands, memory_order_relaxed);
    if (t_old == 0 || now_ms <= t_old || c < c_old)
        return 0;
    return (c - c_old) * 1000 / (now_ms - t_old);
}

void resp_stats_sum(struct resp_stats_sum *out, uint64_t now_ms)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < RESP_STATS_SLOTS; i++) {
        const struct resp_stats *st = &resp_stats_slots[i];
        out->commands += atomic_load_explicit(&st->commands, memory_order_relaxed);
        out->connections += atomic_load_explicit(&st->connections, memory_order_relaxed);
        out->errors += atomic_load_explicit(&st->errors, memory_order_relaxed);
        out->clients += atomic_load_explicit(&st->clients, memory_order_relaxed);
        out->blocked += atomic_load_explicit(&st->blocked, memory_order_relaxed);
        out->ops_per_sec += resp_stats_rate(st, now_ms);
    }
    uint64_t t0 = atomic_load_explicit(&resp_stats_started_ms, memory_order_relaxed);
    out->uptime_s = t0 && now_ms > t0 ? (now_ms - t0) / 1000 : 0;
}

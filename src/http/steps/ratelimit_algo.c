/* ratelimit_algo: the five algorithms of the rate_limit step, exact integer
 * arithmetic over a state the caller keeps (see ratelimit_algo.h).
 *
 * Rates are `count` per `period_ms` (N per P). The buckets count in units of
 * 1/P of a request, so a bucket refills by exactly N units per millisecond
 * and a request costs P units: no rounding drift, no floating point.
 *
 *   token_bucket            a = tokens (units), capacity burst*P; a request
 *                           takes P; refills N per ms
 *   leaky_bucket            a = water level (units), capacity burst*P; a
 *                           request pours P; leaks N per ms. A request that
 *                           would overflow is refused, or with delay_ms
 *                           poured anyway and held back until the level is
 *                           back under the capacity, if that is soon enough
 *                           (the level then stays below cap + delay_ms*N)
 *   fixed_window            a = window start (now - now % P), c = count
 *   sliding_window_counter  a = window start, b = previous window's count,
 *                           c = this window's; the previous window weighs
 *                           by how much of it still overlaps [now - P, now]
 *   sliding_window_log      the times of the last N allowed requests, a
 *                           ring of N slots (head = next to write, c =
 *                           slots filled): a request is allowed when the
 *                           N-th latest allowed one is at least P old
 *
 * A clock that goes back is held at the latest time seen (last_ms). */
#include "http/steps/ratelimit_algo.h"

#define RL_NAME(e, s) s,
static const char *const rl_algo_names[] = { RL_ALGO_LIST(RL_NAME) };
#undef RL_NAME

const char *rl_algo_name(enum rl_algo a)
{
    return (unsigned)a < RL_ALGO_COUNT ? rl_algo_names[a] : "?";
}

static uint64_t rl_ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

size_t rl_log_len(const struct rl_params *p)
{
    return p->algo == RL_SLIDING_WINDOW_LOG ? (size_t)p->count : 0;
}

uint64_t rl_window_ms(const struct rl_params *p)
{
    if (p->algo == RL_TOKEN_BUCKET || p->algo == RL_LEAKY_BUCKET)
        return rl_ceil_div(p->burst * p->period_ms, p->count); /* empty to full */
    return p->period_ms;
}

/* Tokens after refilling up to now (units). */
static uint64_t rl_refill(const struct rl_params *p, const struct rl_state *s, uint64_t now)
{
    uint64_t cap = p->burst * p->period_ms;
    if (!s->used)
        return cap;
    uint64_t elapsed = now - s->last_ms, missing = cap - s->a;
    if (elapsed >= rl_ceil_div(missing, p->count))
        return cap;
    return s->a + elapsed * p->count;
}

static void rl_token_bucket(const struct rl_params *p, struct rl_state *s, uint64_t now,
                            struct rl_decision *d)
{
    uint64_t cap = p->burst * p->period_ms, tokens = rl_refill(p, s, now);
    d->limit = p->burst;
    d->allowed = tokens >= p->period_ms;
    if (d->allowed)
        tokens -= p->period_ms;
    else
        d->retry_after_ms = rl_ceil_div(p->period_ms - tokens, p->count);
    s->a = tokens;
    s->used = 1;
    d->remaining = tokens / p->period_ms;
    d->reset_ms = rl_ceil_div(cap - tokens, p->count);
}

static void rl_leaky_bucket(const struct rl_params *p, struct rl_state *s, uint64_t now,
                            struct rl_decision *d)
{
    uint64_t cap = p->burst * p->period_ms, leaked = (now - s->last_ms);
    uint64_t level = s->a;
    if (leaked >= rl_ceil_div(level, p->count))
        level = 0;
    else
        level -= leaked * p->count;
    d->limit = p->burst;
    uint64_t over = level + p->period_ms > cap ? level + p->period_ms - cap : 0;
    uint64_t wait = rl_ceil_div(over, p->count);
    d->allowed = wait <= p->delay_ms;
    if (d->allowed) {
        level += p->period_ms;
        d->delay_ms = wait;
    } else {
        d->retry_after_ms = rl_ceil_div(over - p->delay_ms * p->count, p->count);
    }
    s->a = level;
    s->used = 1;
    d->remaining = level >= cap ? 0 : (cap - level) / p->period_ms;
    d->reset_ms = rl_ceil_div(level, p->count);
}

static void rl_fixed_window(const struct rl_params *p, struct rl_state *s, uint64_t now,
                            struct rl_decision *d)
{
    uint64_t start = now - now % p->period_ms;
    if (!s->used || s->a != start) {
        s->a = start;
        s->c = 0;
        s->used = 1;
    }
    d->limit = p->count;
    d->reset_ms = start + p->period_ms - now;
    d->allowed = s->c < p->count;
    if (d->allowed)
        s->c++;
    else
        d->retry_after_ms = d->reset_ms;
    d->remaining = p->count - s->c;
}

/* sliding_window_counter, denied: how long until the weighted count leaves
 * room for one request (elapsed: ms into the current window). */
static uint64_t rl_counter_retry(const struct rl_params *p, const struct rl_state *s,
                                 uint64_t elapsed)
{
    uint64_t P = p->period_ms, room = p->count * P;
    uint64_t need = s->b * (P - elapsed) + s->c * P + P; /* weighted, in 1/P units */
    if (s->b > 0 && need - room <= s->b * (P - elapsed - 1))
        return rl_ceil_div(need - room, s->b); /* the previous window fades enough */
    /* next window: the current one becomes the previous */
    uint64_t next = s->c * P + P;
    uint64_t wait = next > room && s->c > 0 ? rl_ceil_div(next - room, s->c) : 0;
    return P - elapsed + wait;
}

static void rl_sliding_counter(const struct rl_params *p, struct rl_state *s, uint64_t now,
                               struct rl_decision *d)
{
    uint64_t P = p->period_ms, start = now - now % P;
    if (!s->used || s->a != start) {
        s->b = s->used && s->a + P == start ? s->c : 0;
        s->c = 0;
        s->a = start;
        s->used = 1;
    }
    uint64_t elapsed = now - start, room = p->count * P;
    uint64_t weighted = s->b * (P - elapsed) + s->c * P;
    d->limit = p->count;
    d->allowed = weighted + P <= room;
    if (d->allowed) {
        s->c++;
        weighted += P;
    } else {
        d->retry_after_ms = rl_counter_retry(p, s, elapsed);
    }
    d->remaining = weighted >= room ? 0 : (room - weighted) / P;
    d->reset_ms = (s->c ? 2 * P : P) - elapsed;
}

/* sliding_window_log: the i-th oldest recorded time. */
static uint64_t rl_log_at(const struct rl_params *p, const struct rl_state *s, const uint64_t *log,
                          uint64_t i)
{
    return s->c < p->count ? log[i] : log[(s->head + i) % p->count];
}

static void rl_sliding_log(const struct rl_params *p, struct rl_state *s, uint64_t *log,
                           uint64_t now, struct rl_decision *d)
{
    uint64_t N = p->count, P = p->period_ms;
    s->used = 1;
    d->limit = N;
    d->allowed = s->c < N || log[s->head] + P <= now;
    if (d->allowed) {
        log[s->head] = now;
        s->head = (uint32_t)((s->head + 1) % N);
        if (s->c < N)
            s->c++;
    } else {
        d->retry_after_ms = log[s->head] + P - now;
    }
    /* the times are in order: find the first still inside the window */
    uint64_t lo = 0, hi = s->c;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (rl_log_at(p, s, log, mid) + P <= now)
            lo = mid + 1;
        else
            hi = mid;
    }
    d->remaining = N - (s->c - lo);
    d->reset_ms = s->c > lo ? rl_log_at(p, s, log, s->c - 1) + P - now : 0;
}

void rl_decide(const struct rl_params *p, struct rl_state *s, uint64_t *log, uint64_t now_ms,
               struct rl_decision *d)
{
    uint64_t now = now_ms > s->last_ms ? now_ms : s->last_ms;
    *d = (struct rl_decision){ 0 };
    switch (p->algo) {
    case RL_TOKEN_BUCKET:
        rl_token_bucket(p, s, now, d);
        break;
    case RL_LEAKY_BUCKET:
        rl_leaky_bucket(p, s, now, d);
        break;
    case RL_FIXED_WINDOW:
        rl_fixed_window(p, s, now, d);
        break;
    case RL_SLIDING_WINDOW_COUNTER:
        rl_sliding_counter(p, s, now, d);
        break;
    default:
        rl_sliding_log(p, s, log, now, d);
        break;
    }
    s->last_ms = now;
}

uint64_t rl_idle_at(const struct rl_params *p, const struct rl_state *s, const uint64_t *log)
{
    if (!s->used)
        return 0;
    switch (p->algo) {
    case RL_TOKEN_BUCKET:
        return s->last_ms + rl_ceil_div(p->burst * p->period_ms - s->a, p->count);
    case RL_LEAKY_BUCKET:
        return s->last_ms + rl_ceil_div(s->a, p->count);
    case RL_FIXED_WINDOW:
        return s->a + p->period_ms;
    case RL_SLIDING_WINDOW_COUNTER:
        return s->a + 2 * p->period_ms;
    default:
        return s->c ? rl_log_at(p, s, log, s->c - 1) + p->period_ms : 0;
    }
}

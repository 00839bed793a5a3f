/* ratelimit_algo: the rate-limit algorithms as pure functions of a key's
 * state and the time, for the rate_limit step (ratelimit.c) and its tests.
 *
 * Every algorithm is integer arithmetic on milliseconds; nothing here locks,
 * allocates or reads a clock: the caller owns the state (ratelimit_table.c
 * holds it under a shard lock) and passes `now_ms` in. */
#ifndef WEIR_HTTP_STEPS_RATELIMIT_ALGO_H
#define WEIR_HTTP_STEPS_RATELIMIT_ALGO_H

#include <stddef.h>
#include <stdint.h>

#define RL_ALGO_LIST(X) \
    X(RL_TOKEN_BUCKET, "token_bucket") \
    X(RL_LEAKY_BUCKET, "leaky_bucket") \
    X(RL_FIXED_WINDOW, "fixed_window") \
    X(RL_SLIDING_WINDOW_LOG, "sliding_window_log") \
    X(RL_SLIDING_WINDOW_COUNTER, "sliding_window_counter")
#define RL_ENUM_MEMBER(e, s) e,
enum rl_algo { RL_ALGO_LIST(RL_ENUM_MEMBER) RL_ALGO_COUNT };
#undef RL_ENUM_MEMBER

/* Largest `rate` count, and largest sliding_window_log count (its log holds
 * one timestamp per allowed request of a window: 8 bytes each per key). */
#define RL_MAX_COUNT 1000000000ULL
#define RL_MAX_LOG 10000ULL

/* One limit: `count` requests per `period_ms`; `burst` is the bucket size of
 * token_bucket / leaky_bucket (ignored by the window algorithms); `delay_ms`
 * (leaky_bucket only, 0: refuse) how long a request may be held back
 * instead of refused when the bucket is full. */
struct rl_params {
    enum rl_algo algo;
    uint64_t count, period_ms, burst;
    uint64_t delay_ms;
};

/* One key's state. All zero is a key never seen. sliding_window_log also
 * needs `count` timestamps beside it (rl_log_len). */
struct rl_state {
    uint64_t last_ms;   /* latest time seen: a clock going back is held here */
    uint64_t a, b, c;   /* per algorithm: see ratelimit_algo.c */
    uint32_t used;
    uint32_t head;
};

struct rl_decision {
    int allowed;
    uint64_t limit;          /* the quota announced (RateLimit-Policy q) */
    uint64_t remaining;      /* requests left now */
    uint64_t reset_ms;       /* until the quota is whole again (window end, bucket full) */
    uint64_t retry_after_ms; /* denied: until a request would be allowed */
    uint64_t delay_ms;       /* allowed after this long (leaky_bucket with delay) */
};

const char *rl_algo_name(enum rl_algo a);
/* Timestamps the state needs beside it (0 except for sliding_window_log). */
size_t rl_log_len(const struct rl_params *p);
/* The window announced with the quota (RateLimit-Policy w), in ms. */
uint64_t rl_window_ms(const struct rl_params *p);
/* Decides one request at now_ms against state `s` (and `log`, rl_log_len
 * entries, for sliding_window_log), updating them when it is allowed.
 * Writes the decision to *d. */
void rl_decide(const struct rl_params *p, struct rl_state *s, uint64_t *log, uint64_t now_ms,
               struct rl_decision *d);
/* The time from which `s` is as good as a fresh state: the key may then be
 * forgotten without changing any later decision. */
uint64_t rl_idle_at(const struct rl_params *p, const struct rl_state *s, const uint64_t *log);

#endif

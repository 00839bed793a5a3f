/* ratelimit_store: cluster-wide limits in a Redis store (`store: NAME` on a
 * limit): one atomic Lua script per algorithm, run with EVALSHA (EVAL once
 * when Redis answers NOSCRIPT). */
#ifndef WEIR_HTTP_STEPS_RATELIMIT_STORE_H
#define WEIR_HTTP_STEPS_RATELIMIT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "http/steps/ratelimit_algo.h"
#include "store/store.h"

struct ev_loop;
struct redisReply;

/* Largest count * period (and burst * period) a store limit may have: the
 * scripts compute in Lua numbers (doubles), exact up to 2^53. */
#define RL_STORE_MAX_UNITS (1ULL << 53)

/* The store client of `cfg` on this worker thread's `loop`
 * (store_registry_get), with the scripts loaded when this call made it.
 * Only from the worker thread owning `loop`. */
struct store *rl_store_get(struct ev_loop *loop, const struct cfg_store *cfg);

/* Sends the decision of one request for `key` (len bytes, already prefixed
 * and hash-tagged by the caller) under limit p: EVALSHA, or EVAL when
 * `full` (after NOSCRIPT). Returns the command (see store_command) or NULL
 * when refused at once. */
struct store_cmd *rl_store_decide(struct store *s, const struct rl_params *p, const char *key,
                                  size_t len, int full, store_cb cb, void *arg);

/* Reads a script's reply into *d. Returns 0, -ENOENT for NOSCRIPT, or
 * -EPROTO for anything else (an error reply, a wrong shape). */
int rl_store_reply(const struct redisReply *r, const struct rl_params *p, struct rl_decision *d);

/* The SHA-1 of the script of algorithm a, as 40 hex digits (for tests). */
const char *rl_store_sha(enum rl_algo a);
/* SHA-1 of n bytes as 40 hex digits and a NUL (for tests). */
void rl_sha1_hex(const void *data, size_t n, char out[41]);

#endif

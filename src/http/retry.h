/* retry: the pure parts of a route's retry policy, apart from the
 * connection handling in proxy.c so they can be tested with chosen
 * random numbers. */
#ifndef WEIR_HTTP_RETRY_H
#define WEIR_HTTP_RETRY_H

#include <stdint.h>

struct cfg_retry;

/* Full-jitter exponential backoff before attempt `attempts` + 1 (attempts
 * = tries made so far, >= 1): uniform in [0, min(max, base * 2^(attempts-1))],
 * drawn from the random number `r`. */
uint64_t retry_backoff_ms(const struct cfg_retry *c, unsigned attempts, uint64_t r);

#endif

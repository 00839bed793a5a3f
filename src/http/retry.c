/* retry: backoff arithmetic of a route's retry policy (see retry.h). The
 * caller draws the random number, so a test can pin every case. */
#include "http/retry.h"

#include "http/route_cfg.h"

uint64_t retry_backoff_ms(const struct cfg_retry *c, unsigned attempts, uint64_t r)
{
    uint64_t cap = c->backoff_base_ms;
    for (unsigned i = 1; i < attempts && cap < c->backoff_max_ms; i++)
        cap *= 2;
    if (cap > c->backoff_max_ms)
        cap = c->backoff_max_ms;
    return r % (cap + 1);
}

/* health: active HTTP/TCP health checks of a snapshot's clusters, run on
 * the main thread's loop; verdicts go to endpoint_set_healthy(). */
#ifndef WEIR_UPSTREAM_HEALTH_H
#define WEIR_UPSTREAM_HEALTH_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream/cluster.h"

struct health;

/* Starts checking every endpoint of the clusters in `set` that have a
 * health_check. `set` must outlive the returned object. NULL on ENOMEM. */
struct health *health_new(struct ev_loop *loop, struct cluster *set, size_t n_clusters);
/* The wait in ms before an endpoint's next check, from `r`, a random
 * 64-bit value: the interval plus r % (jitter + 1), so within
 * [interval, interval + jitter]; for the first round (`first` set) r
 * spread over [0, interval] instead, so checks do not start together. */
uint64_t health_delay_ms(const struct cfg_health_check *c, int first, uint64_t r);
/* Stops every check (closing sockets in flight) and frees h. */
void health_free(struct health *h);

#endif

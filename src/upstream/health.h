/* health: active HTTP/TCP health checks of a snapshot's clusters, run on
 * the main thread's loop; verdicts go to endpoint_set_healthy(). */
#ifndef WEIR_UPSTREAM_HEALTH_H
#define WEIR_UPSTREAM_HEALTH_H

#include <ev.h>
#include <stddef.h>

#include "upstream/cluster.h"

struct health;

/* Starts checking every endpoint of the clusters in `set` that have a
 * health_check. `set` must outlive the returned object. NULL on ENOMEM. */
struct health *health_new(struct ev_loop *loop, struct cluster *set, size_t n_clusters);
/* Stops every check (closing sockets in flight) and frees h. */
void health_free(struct health *h);

#endif

/* endpoint: one backend address of a cluster, shared by all workers.
 *
 * The fields that must be global for balancing to be right (requests in
 * flight, latency average, whether it may take traffic) are atomics; workers
 * update them without locks. An endpoint belongs to one configuration
 * snapshot and lives as long as that snapshot. */
#ifndef WEIR_UPSTREAM_ENDPOINT_H
#define WEIR_UPSTREAM_ENDPOINT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

struct endpoint {
    char name[64];                 /* "127.0.0.1:9001", for logs */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight;               /* >= 1 */
    unsigned index;                /* position in its cluster */
    _Atomic int active;            /* requests in flight on this endpoint, all workers */
    _Atomic uint64_t ewma_us;      /* EWMA of response time (us), 0 = no sample yet */
    _Atomic int up;                /* 1 = may be picked */
};

/* Records a finished request's latency into the EWMA (alpha = 1/8). */
void endpoint_observe_latency(struct endpoint *ep, uint64_t latency_us);

#endif

/* resolver: DNS discovery of cluster endpoints given as host names
 * (NAME:PORT). Every such endpoint is resolved on the main thread's loop
 * over UDP (core/dns.c), at start and every resolve.interval, and the
 * addresses of each answer become run-time endpoints in the server's
 * topology (upstream/topology.h, tagged with the name). When an answer
 * changes the set, `changed` is called (the server rebuilds its snapshot).
 * No worker ever waits for DNS.
 *
 * A failed round (timeout, SERVFAIL, malformed answer from every server)
 * keeps the addresses of the last good one; NXDOMAIN or an empty answer
 * empties the set (the name says there is nothing there). */
#ifndef WEIR_UPSTREAM_RESOLVER_H
#define WEIR_UPSTREAM_RESOLVER_H

#include <ev.h>

struct cfg;
struct topology;
struct resolver;

/* A resolver writing into topo, calling changed(arg) after a change.
 * Returns NULL when memory is short. */
struct resolver *resolver_new(struct ev_loop *loop, struct topology *topo,
                              void (*changed)(void *arg), void *arg);
/* Follows cfg's names: new ones start resolving now, gone ones stop, kept
 * ones keep their timers. With `wait` (at start, before anything else
 * runs on the loop) it then runs the loop until the new names' first
 * round is over (at most the longest resolve.timeout x 2 per server), so
 * the first snapshot has their addresses; without, their answers call
 * `changed` when they come. Returns how many names there are. */
size_t resolver_sync(struct resolver *r, const struct cfg *cfg, int wait);
void resolver_free(struct resolver *r);

#endif

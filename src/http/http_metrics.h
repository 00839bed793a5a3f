/* http_metrics: the request metrics of HTTP listeners, one series per
 * route of each snapshot (and one per listener for requests answered
 * before a route was chosen: route=""), made by the HTTP protocol row's
 * snapshot_init and dropped by its snapshot_free. */
#ifndef WEIR_HTTP_HTTP_METRICS_H
#define WEIR_HTTP_HTTP_METRICS_H

#include <stdint.h>

struct snapshot;
struct cfg_listener;
struct cfg_route;

int http_metrics_snapshot_init(struct snapshot *snap);
void http_metrics_snapshot_free(struct snapshot *snap);

/* One request answered on listener lst of snap (route NULL: before
 * routing) with `status`, `ns` after the first byte of its head. Worker
 * thread, hot path. */
void http_metrics_request(const struct snapshot *snap, const struct cfg_listener *lst,
                          const struct cfg_route *route, int status, uint64_t ns);

#endif

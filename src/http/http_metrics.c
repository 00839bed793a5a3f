/* http_metrics: see http_metrics.h.
 *
 *   snap->proto[CFG_PROTOCOL_HTTP] -> struct http_snap_metrics
 *        listeners[i].routes[r] = { requests, duration }
 *        listeners[i].none      = the listener's requests without a route
 *
 * Each request is counted once, whoever answered it (the backend, a step,
 * weir's own 4xx/5xx), in the code cell of its status class. The same
 * label set (listener, route, cluster) keeps its series across reloads. */
#include "http/http_metrics.h"

#include <stdlib.h>

#include "core/metrics.h"
#include "server/snapshot.h"
#include "upstream/upstream_metrics.h"

static const char *const http_codes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

static const struct metric_family http_family_requests = {
    .name = "weir_http_requests_total",
    .help = "HTTP requests answered to clients, by status class, whoever answered.",
    .type = METRIC_COUNTER,
    .labels = { "listener", "route", "cluster" },
    .cells_label = "code",
    .cells = http_codes,
    .n_cells = 5,
};

static const struct metric_family http_family_duration = {
    .name = "weir_http_request_duration_seconds",
    .help = "From the first byte of a request head to the last byte of its response.",
    .type = METRIC_HISTOGRAM,
    .labels = { "listener", "route" },
};

struct http_route_metrics {
    struct metric_series *requests, *duration;
};

struct http_listener_metrics {
    struct http_route_metrics *routes; /* n_routes of the listener */
    struct http_route_metrics none;
};

struct http_snap_metrics {
    struct http_listener_metrics *listeners; /* cfg->n_listeners */
    size_t n_listeners;
};

static void http_metrics_get(struct http_route_metrics *m, const char *listener,
                             const char *route, const char *cluster)
{
    const char *rv[] = { listener, route, cluster };
    const char *dv[] = { listener, route };
    m->requests = metrics_series_get(&http_family_requests, rv);
    m->duration = metrics_series_get(&http_family_duration, dv);
}

static void http_metrics_put(struct http_route_metrics *m)
{
    metrics_series_put(m->requests);
    metrics_series_put(m->duration);
}

int http_metrics_snapshot_init(struct snapshot *snap)
{
    const struct cfg *cfg = snap->cfg;
    struct http_snap_metrics *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return -1;
    sm->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*sm->listeners));
    if (!sm->listeners) {
        free(sm);
        return -1;
    }
    sm->n_listeners = cfg->n_listeners;
    snap->proto[CFG_PROTOCOL_HTTP] = sm;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        struct http_listener_metrics *lm = &sm->listeners[i];
        if (l->protocol != CFG_PROTOCOL_HTTP)
            continue;
        http_metrics_get(&lm->none, l->name, "", "");
        lm->routes = calloc(l->n_routes ? l->n_routes : 1, sizeof(*lm->routes));
        for (size_t r = 0; lm->routes && r < l->n_routes; r++) {
            const struct cfg_route *rt = &l->routes[r];
            http_metrics_get(&lm->routes[r], l->name, rt->name,
                             rt->cluster_name ? rt->cluster_name : "");
        }
    }
    return 0;
}

void http_metrics_snapshot_free(struct snapshot *snap)
{
    struct http_snap_metrics *sm = snap->proto[CFG_PROTOCOL_HTTP];
    if (!sm)
        return;
    for (size_t i = 0; i < sm->n_listeners; i++) {
        struct http_listener_metrics *lm = &sm->listeners[i];
        http_metrics_put(&lm->none);
        for (size_t r = 0; lm->routes && r < snap->cfg->listeners[i].n_routes; r++)
            http_metrics_put(&lm->routes[r]);
        free(lm->routes);
    }
    free(sm->listeners);
    free(sm);
    snap->proto[CFG_PROTOCOL_HTTP] = NULL;
}

void http_metrics_request(const struct snapshot *snap, const struct cfg_listener *lst,
                          const struct cfg_route *route, int status, uint64_t ns)
{
    const struct http_snap_metrics *sm = snap->proto[CFG_PROTOCOL_HTTP];
    if (!sm)
        return;
    size_t i = (size_t)(lst - snap->cfg->listeners);
    if (i >= sm->n_listeners)
        return;
    const struct http_listener_metrics *lm = &sm->listeners[i];
    const struct http_route_metrics *m = &lm->none;
    if (route && lm->routes) {
        size_t r = (size_t)(route - lst->routes);
        if (r < lst->n_routes)
            m = &lm->routes[r];
    }
    metrics_add(m->requests, upstream_code_cell(status), 1);
    metrics_observe_ns(m->duration, ns);
}

/* upstream_metrics: see upstream_metrics.h. The families are public names
 * (docs/operations.md lists them): change them only with the docs. */
#include "upstream/upstream_metrics.h"

#include "upstream/cluster.h"
#include "upstream/endpoint.h"

static const char *const upstream_codes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
static const char *const upstream_reasons[] = {
#define UPSTREAM_REASON_NAME(e, s) s,
    CFG_FAILURE_LIST(UPSTREAM_REASON_NAME)
#undef UPSTREAM_REASON_NAME
    [UPSTREAM_RETRY_GRPC] = "grpc",
};
static const char *const upstream_breaker_states[] = { "closed", "open", "half-open" };
static const char *const upstream_check_results[] = { "success", "failure" };

static const struct metric_family upstream_family_requests = {
    .name = "weir_upstream_requests_total",
    .help = "Responses received from an endpoint, by status class.",
    .type = METRIC_COUNTER,
    .labels = { "cluster", "endpoint" },
    .cells_label = "code",
    .cells = upstream_codes,
    .n_cells = 5,
};

static const struct metric_family upstream_family_response = {
    .name = "weir_upstream_response_seconds",
    .help = "Time from sending a request to an endpoint to its response head.",
    .type = METRIC_HISTOGRAM,
    .labels = { "cluster" },
};

static const struct metric_family upstream_family_connect = {
    .name = "weir_upstream_connect_seconds",
    .help = "Time to open a new connection to an endpoint.",
    .type = METRIC_HISTOGRAM,
    .labels = { "cluster" },
};

static const struct metric_family upstream_family_retries = {
    .name = "weir_upstream_retries_total",
    .help = "Attempts made again after a failure, by the failure.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
    .cells_label = "reason",
    .cells = upstream_reasons,
    .n_cells = UPSTREAM_RETRY_GRPC + 1,
};

static const struct metric_family upstream_family_transitions = {
    .name = "weir_breaker_transitions_total",
    .help = "Circuit breaker state changes, by the new state (endpoint \"\": scope cluster).",
    .type = METRIC_COUNTER,
    .labels = { "cluster", "endpoint" },
    .cells_label = "to",
    .cells = upstream_breaker_states,
    .n_cells = 3,
};

static const struct metric_family upstream_family_ejections = {
    .name = "weir_outlier_ejections_total",
    .help = "Endpoints ejected by outlier detection.",
    .type = METRIC_COUNTER,
    .labels = { "cluster", "endpoint" },
};

static const struct metric_family upstream_family_checks = {
    .name = "weir_health_checks_total",
    .help = "Active health checks, by result.",
    .type = METRIC_COUNTER,
    .labels = { "cluster", "endpoint" },
    .cells_label = "result",
    .cells = upstream_check_results,
    .n_cells = 2,
};

static const struct metric_family upstream_family_pool_reuses = {
    .name = "weir_pool_reuses_total",
    .help = "Requests sent on a pooled (kept-alive) upstream connection.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
};

static const struct metric_family upstream_family_pool_connects = {
    .name = "weir_pool_connects_total",
    .help = "New upstream connections opened.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
};

const struct metric_family upstream_family_endpoint_up = {
    .name = "weir_endpoint_up",
    .help = "1 when the endpoint may take requests (healthy, not drained, ejected or open).",
    .type = METRIC_GAUGE,
    .labels = { "cluster", "endpoint" },
};

const struct metric_family upstream_family_in_flight = {
    .name = "weir_endpoint_in_flight",
    .help = "Requests in flight on the endpoint, all workers.",
    .type = METRIC_GAUGE,
    .labels = { "cluster", "endpoint" },
};

const struct metric_family upstream_family_breaker_state = {
    .name = "weir_breaker_state",
    .help = "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    .type = METRIC_GAUGE,
    .labels = { "cluster", "endpoint" },
};

void upstream_metrics_attach(struct cluster *cl)
{
    const char *c[] = { cl->cfg->name };
    cl->m_response = metrics_series_get(&upstream_family_response, c);
    cl->m_connect = metrics_series_get(&upstream_family_connect, c);
    cl->m_retries = metrics_series_get(&upstream_family_retries, c);
    cl->m_pool_reuses = metrics_series_get(&upstream_family_pool_reuses, c);
    cl->m_pool_connects = metrics_series_get(&upstream_family_pool_connects, c);
    const char *whole[] = { cl->cfg->name, "" };
    cl->breaker.m_transitions = metrics_series_get(&upstream_family_transitions, whole);
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        struct endpoint *ep = &cl->endpoints[i];
        const char *e[] = { cl->cfg->name, ep->name };
        ep->m_requests = metrics_series_get(&upstream_family_requests, e);
        ep->m_ejections = metrics_series_get(&upstream_family_ejections, e);
        ep->m_checks = metrics_series_get(&upstream_family_checks, e);
        ep->breaker.m_transitions = metrics_series_get(&upstream_family_transitions, e);
    }
}

void upstream_metrics_detach(struct cluster *cl)
{
    metrics_series_put(cl->m_response);
    metrics_series_put(cl->m_connect);
    metrics_series_put(cl->m_retries);
    metrics_series_put(cl->m_pool_reuses);
    metrics_series_put(cl->m_pool_connects);
    metrics_series_put(cl->breaker.m_transitions);
    cl->m_response = cl->m_connect = cl->m_retries = NULL;
    cl->m_pool_reuses = cl->m_pool_connects = cl->breaker.m_transitions = NULL;
    for (size_t i = 0; cl->endpoints && i < cl->n_endpoints; i++) {
        struct endpoint *ep = &cl->endpoints[i];
        metrics_series_put(ep->m_requests);
        metrics_series_put(ep->m_ejections);
        metrics_series_put(ep->m_checks);
        metrics_series_put(ep->breaker.m_transitions);
        ep->m_requests = ep->m_ejections = ep->m_checks = ep->breaker.m_transitions = NULL;
    }
}

unsigned upstream_code_cell(int status)
{
    if (status >= 100 && status < 500)
        return (unsigned)(status / 100 - 1);
    return UPSTREAM_CODE_5XX;
}

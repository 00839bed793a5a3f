/* tls_metrics: TLS handshake counts, through the registry (core/metrics.h).
 *
 *   weir_tls_handshakes_total{side, listener, result}  success / failure
 *   weir_tls_versions_total{side, listener, version}   TLSv1.2 / TLSv1.3 of the successes
 *   weir_tls_resumptions_total{side, listener}         successes that resumed a session
 *
 * side is "server" (listeners, `listener` naming which) or "client"
 * (connections to upstreams and their health checks; `listener` empty).
 * Every context holds a reference to its series, so the counts carry over
 * a reload that keeps the listener's name. */
#include "tls/tls_internal.h"

static const char *const tls_labels_side[] = { "server", "client" };
static const char *const tls_results[] = { "success", "failure" };
static const char *const tls_versions[] = { "TLSv1.2", "TLSv1.3" };

static const struct metric_family tls_family_handshakes = {
    .name = "weir_tls_handshakes_total",
    .help = "TLS handshakes that ended, by side, listener and result.",
    .type = METRIC_COUNTER,
    .labels = { "side", "listener" },
    .cells_label = "result",
    .cells = tls_results,
    .n_cells = 2,
};

static const struct metric_family tls_family_versions = {
    .name = "weir_tls_versions_total",
    .help = "Successful TLS handshakes by side and negotiated version.",
    .type = METRIC_COUNTER,
    .labels = { "side", "listener" },
    .cells_label = "version",
    .cells = tls_versions,
    .n_cells = 2,
};

static const struct metric_family tls_family_resumptions = {
    .name = "weir_tls_resumptions_total",
    .help = "Successful TLS handshakes that resumed a session (ticket), by side.",
    .type = METRIC_COUNTER,
    .labels = { "side", "listener" },
};

void tls_metrics_get(enum tls_side side, const char *listener, struct metric_series **handshakes,
                     struct metric_series **versions, struct metric_series **resumed)
{
    const char *v[] = { tls_labels_side[side], listener ? listener : "" };
    *handshakes = metrics_series_get(&tls_family_handshakes, v);
    *versions = metrics_series_get(&tls_family_versions, v);
    *resumed = metrics_series_get(&tls_family_resumptions, v);
}

void tls_metrics_put(struct metric_series *handshakes, struct metric_series *versions,
                     struct metric_series *resumed)
{
    metrics_series_put(handshakes);
    metrics_series_put(versions);
    metrics_series_put(resumed);
}

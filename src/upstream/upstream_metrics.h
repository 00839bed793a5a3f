/* upstream_metrics: the metric families of clusters and endpoints, and the
 * series each cluster and endpoint of a snapshot holds (made when the
 * snapshot is built, dropped when it is freed; the same label set keeps
 * its counts across a reload). Updates go through metrics_add /
 * metrics_observe_ns on the fields below; NULL series do nothing. */
#ifndef WEIR_UPSTREAM_UPSTREAM_METRICS_H
#define WEIR_UPSTREAM_UPSTREAM_METRICS_H

#include "core/metrics.h"
#include "upstream/cluster_cfg.h"

struct cluster;

/* Cells of the families with a cell label. */
enum upstream_code_cell { UPSTREAM_CODE_1XX, UPSTREAM_CODE_2XX, UPSTREAM_CODE_3XX,
                          UPSTREAM_CODE_4XX, UPSTREAM_CODE_5XX };
enum upstream_check_cell { UPSTREAM_CHECK_SUCCESS, UPSTREAM_CHECK_FAILURE };
/* weir_upstream_retries_total's reason cells: each cfg_failure kind, then
 * "grpc" (a gRPC status retried, http/grpc.h) */
#define UPSTREAM_RETRY_GRPC CFG_FAILURE_COUNT

extern const struct metric_family upstream_family_endpoint_up;
extern const struct metric_family upstream_family_in_flight;
extern const struct metric_family upstream_family_breaker_state;

/* Gets every series of cl and its endpoints. Main thread. Memory short:
 * the missing series stay NULL (their updates do nothing). */
void upstream_metrics_attach(struct cluster *cl);
void upstream_metrics_detach(struct cluster *cl);

/* The code cell of an HTTP status (1xx..5xx; others count as 5xx). */
unsigned upstream_code_cell(int status);

#endif

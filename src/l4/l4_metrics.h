/* l4_metrics: the tcp listeners' metric families (names public:
 * docs/operations.md) and their series per cluster of a snapshot, made on
 * the main thread when the snapshot is built (the protocol row's
 * snapshot_init) and dropped with it, so a session that holds the snapshot
 * may keep the pointers. NULL series do nothing. */
#ifndef WEIR_L4_L4_METRICS_H
#define WEIR_L4_L4_METRICS_H

#include <stddef.h>

#include "core/metrics.h"

struct snapshot;

/* Cells of weir_tcp_bytes_total's `direction`. */
enum l4_dir_cell { L4_TO_UPSTREAM, L4_TO_CLIENT };

struct l4_cluster_metrics {
    struct metric_series *connections;    /* weir_tcp_connections_total: sessions connected */
    struct metric_series *connect_errors; /* weir_tcp_connect_errors_total: failed connects */
    struct metric_series *bytes;          /* weir_tcp_bytes_total{direction} */
    struct metric_series *spliced;        /* weir_tcp_spliced_bytes_total{direction} */
};

/* snap->proto[CFG_PROTOCOL_TCP]: one entry per cfg cluster, same order. */
struct l4_snap {
    struct l4_cluster_metrics *clusters;
    size_t n;
};

/* Protocol row hooks (main thread). init returns 0 or -ENOMEM. */
int l4_metrics_snapshot_init(struct snapshot *snap);
void l4_metrics_snapshot_free(struct snapshot *snap);

/* The series of cluster index i in snap; never NULL (a static empty set
 * when the snapshot has none). */
const struct l4_cluster_metrics *l4_metrics_of(const struct snapshot *snap, size_t i);

#endif

/* l4_metrics: see l4_metrics.h. Series exist only for clusters a tcp
 * listener names (as default or in an sni rule), so HTTP-only clusters
 * export no tcp lines. */
#include "l4/l4_metrics.h"

#include <errno.h>
#include <stdlib.h>

#include "server/snapshot.h"

static const char *const l4_directions[] = { "to_upstream", "to_client" };

static const struct metric_family l4_family_connections = {
    .name = "weir_tcp_connections_total",
    .help = "TCP sessions connected to an endpoint of the cluster.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
};

static const struct metric_family l4_family_connect_errors = {
    .name = "weir_tcp_connect_errors_total",
    .help = "Connects to an endpoint of the cluster that failed or timed out (each attempt).",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
};

static const struct metric_family l4_family_bytes = {
    .name = "weir_tcp_bytes_total",
    .help = "Bytes forwarded by tcp sessions, by direction.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
    .cells_label = "direction",
    .cells = l4_directions,
    .n_cells = 2,
};

static const struct metric_family l4_family_spliced = {
    .name = "weir_tcp_spliced_bytes_total",
    .help = "Of weir_tcp_bytes_total, the bytes moved by splice() without a copy to user space.",
    .type = METRIC_COUNTER,
    .labels = { "cluster" },
    .cells_label = "direction",
    .cells = l4_directions,
    .n_cells = 2,
};

static const struct l4_cluster_metrics l4_metrics_none;

/* Marks in used[] the clusters tcp listeners of cfg name. */
static void l4_metrics_mark(const struct cfg *cfg, char *used)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->protocol != CFG_PROTOCOL_TCP || !l->l4)
            continue;
        used[l->l4->cluster] = 1;
        for (size_t j = 0; j < l->l4->n_sni; j++)
            used[l->l4->sni[j].cluster] = 1;
    }
}

int l4_metrics_snapshot_init(struct snapshot *snap)
{
    const struct cfg *cfg = snap->cfg;
    struct l4_snap *ls = calloc(1, sizeof(*ls));
    char *used = calloc(cfg->n_clusters + 1, 1);
    if (!ls || !used)
        goto fail;
    ls->clusters = calloc(cfg->n_clusters + 1, sizeof(*ls->clusters));
    if (!ls->clusters)
        goto fail;
    ls->n = cfg->n_clusters;
    l4_metrics_mark(cfg, used);
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        if (!used[i])
            continue;
        const char *v[] = { cfg->clusters[i].name };
        struct l4_cluster_metrics *m = &ls->clusters[i];
        m->connections = metrics_series_get(&l4_family_connections, v);
        m->connect_errors = metrics_series_get(&l4_family_connect_errors, v);
        m->bytes = metrics_series_get(&l4_family_bytes, v);
        m->spliced = metrics_series_get(&l4_family_spliced, v);
    }
    free(used);
    snap->proto[CFG_PROTOCOL_TCP] = ls;
    return 0;
fail:
    free(used);
    free(ls);
    return -ENOMEM;
}

void l4_metrics_snapshot_free(struct snapshot *snap)
{
    struct l4_snap *ls = snap->proto[CFG_PROTOCOL_TCP];
    if (!ls)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        metrics_series_put(ls->clusters[i].connections);
        metrics_series_put(ls->clusters[i].connect_errors);
        metrics_series_put(ls->clusters[i].bytes);
        metrics_series_put(ls->clusters[i].spliced);
    }
    free(ls->clusters);
    free(ls);
    snap->proto[CFG_PROTOCOL_TCP] = NULL;
}

const struct l4_cluster_metrics *l4_metrics_of(const struct snapshot *snap, size_t i)
{
    const struct l4_snap *ls = snap->proto[CFG_PROTOCOL_TCP];
    return ls && i < ls->n ? &ls->clusters[i] : &l4_metrics_none;
}

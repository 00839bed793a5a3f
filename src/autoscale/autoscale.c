/* autoscale: the scalers of the clusters that have an `autoscale:` block,
 * on the main thread's loop.
 *
 *   tick (100 ms) ─┬─ the configuration changed (reload)? follow it
 *                  ├─ each instance: autoscale_instance_step (instance.c)
 *                  ├─ each scaler whose period is due:
 *                  │     read metrics ─> autoscale_decide (decide.c) ─> log, count
 *                  │     ─> start instances / retire the newest ones
 *                  └─ topology changed? one server_rebuild for all of it
 *
 * Metrics read each period: queue_visible from the weir queue named (its
 * visible count; for a queue kept in Redis the store's count, asked for
 * one period ahead), in_flight from the cluster's endpoints (requests in
 * flight, all workers), latency_p95 from the cluster's
 * weir_upstream_response_seconds histogram (what was observed since the
 * last period, interpolated in its bucket), cpu from /proc/PID/stat of the
 * ready instances (the average %).
 *
 * Instances are run-time endpoints of their cluster (upstream/topology.h):
 * added when ready (the cluster's slow_start applies, as to any new
 * endpoint), marked drain to stop new requests, dropped when their
 * requests are done. A request in flight is counted on the endpoint object
 * of the snapshot it started on, so the scaler keeps a reference to every
 * snapshot it has seen while someone else still holds it, and an instance
 * is drained when its address carries no request in any of them and every
 * worker runs the snapshot that drains it. A reload keeps instances
 * (topology_reconcile keeps what the file does not name); a cluster whose
 * block is gone has its instances drained and stopped. */
#include "autoscale/autoscale.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "queue/queue.h"
#include "queue/sqs.h"
#include "server/server.h"
#include "server/snapshot.h"
#include "upstream/endpoint.h"

#define AUTOSCALE_TICK_S 0.1

static struct autoscale *autoscale_the;

#define AUTOSCALE_ENUM_NAME(e, s) s,
static const char *const autoscale_state_names[] = {AUTOSCALE_STATE_LIST(AUTOSCALE_ENUM_NAME)};
#undef AUTOSCALE_ENUM_NAME

const char *autoscale_state_name(enum autoscale_state s)
{
    return (unsigned)s < AUTOSCALE_STATE_COUNT ? autoscale_state_names[s] : "?";
}

/* ---- metrics ---- */

static const struct metric_family autoscale_family_desired = {
    .name = "weir_autoscale_desired",
    .help = "Instances the autoscaler's last decision asked for.",
    .type = METRIC_GAUGE,
    .labels = {"cluster"},
};

static const struct metric_family autoscale_family_current = {
    .name = "weir_autoscale_current",
    .help = "Instances the autoscaler runs (starting, ready or backing off; not those going).",
    .type = METRIC_GAUGE,
    .labels = {"cluster"},
};

static const struct metric_family autoscale_family_decisions = {
    .name = "weir_autoscale_decisions_total",
    .help = "Autoscaler decisions, one per period, by direction and reason.",
    .type = METRIC_COUNTER,
    .labels = {"cluster", "direction", "reason"},
};

static const struct metric_family autoscale_family_restarts = {
    .name = "weir_autoscale_restarts_total",
    .help = "Instances restarted after a crash or a failed start.",
    .type = METRIC_COUNTER,
    .labels = {"cluster"},
};

/* Instances that count toward the decision: not those being taken out. */
static uint32_t autoscale_counted(const struct autoscale_scaler *sc)
{
    uint32_t n = 0;
    for (size_t i = 0; i < sc->n_inst; i++)
        n += sc->inst[i]->state != AUTOSCALE_DRAINING && sc->inst[i]->state != AUTOSCALE_STOPPING;
    return n;
}

static void autoscale_collect(struct metrics_out *out, void *arg)
{
    struct autoscale *as = arg;
    metrics_write_family(out, &autoscale_family_desired);
    for (size_t i = 0; i < as->n_sc; i++) {
        const char *v[] = {as->sc[i]->name};
        const struct autoscale_scaler *sc = as->sc[i];
        metrics_write_sample(out, &autoscale_family_desired, v,
                             sc->have_last ? sc->last.desired : autoscale_counted(sc));
    }
    metrics_write_family(out, &autoscale_family_current);
    for (size_t i = 0; i < as->n_sc; i++) {
        const char *v[] = {as->sc[i]->name};
        metrics_write_sample(out, &autoscale_family_current, v, autoscale_counted(as->sc[i]));
    }
}

void autoscale_count_restart(struct autoscale_scaler *sc)
{
    sc->restarts++;
    metrics_add(sc->m_restarts, 0, 1);
}

static void autoscale_count_decision(struct autoscale_scaler *sc,
                                     const struct autoscale_decision *d)
{
    struct metric_series **s = &sc->m_decisions[d->direction][d->reason];
    if (!*s) {
        const char *v[] = {sc->name, autoscale_direction_name(d->direction),
                           autoscale_reason_name(d->reason)};
        *s = metrics_series_get(&autoscale_family_decisions, v);
    }
    metrics_add(*s, 0, 1);
}

/* ---- the pool: instances as run-time endpoints ---- */

int autoscale_pool_add(struct autoscale_instance *in)
{
    struct autoscale *as = in->sc->as;
    struct topology_item *it =
        topology_get(&as->srv->topo, in->sc->name, in->address, &in->addr, in->addrlen);
    if (!it)
        return -ENOMEM;
    it->added = 1;
    it->removed = 0;
    it->drain = 0;
    in->in_pool = 1;
    as->dirty = 1;
    return 0;
}

void autoscale_pool_drain(struct autoscale_instance *in)
{
    struct autoscale *as = in->sc->as;
    struct topology_item *it = topology_find(&as->srv->topo, in->sc->name, &in->addr, in->addrlen);
    if (it) {
        it->drain = 1;
        as->dirty = 1;
    }
}

void autoscale_pool_remove(struct autoscale_instance *in)
{
    struct autoscale *as = in->sc->as;
    struct topology_item *it = topology_find(&as->srv->topo, in->sc->name, &in->addr, in->addrlen);
    if (it) {
        topology_drop(&as->srv->topo, it);
        as->dirty = 1;
    }
    in->in_pool = 0;
}

/* The cluster named name in snap, or NULL. */
static const struct cluster *autoscale_cluster(const struct snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->cfg->n_clusters; i++)
        if (strcmp(snap->clusters[i].cfg->name, name) == 0)
            return &snap->clusters[i];
    return NULL;
}

int autoscale_pool_in_flight(const struct autoscale_instance *in, int *adopted)
{
    const struct autoscale *as = in->sc->as;
    const struct server *srv = as->srv;
    int busy = 0;
    *adopted = !as->dirty;
    for (unsigned w = 0; w < srv->n_workers; w++)
        if (atomic_load(&srv->workers[w].adopted) < srv->snap->generation)
            *adopted = 0;
    for (size_t s = 0; s < as->n_snaps; s++) {
        const struct cluster *cl = autoscale_cluster(as->snaps[s], in->sc->name);
        for (size_t e = 0; cl && e < cl->n_endpoints; e++)
            if (cfg_same_addr(&cl->endpoints[e].addr, cl->endpoints[e].addrlen, &in->addr,
                              in->addrlen))
                busy += atomic_load(&cl->endpoints[e].active);
    }
    return busy;
}

const struct cfg_health_check *autoscale_health_check(const struct autoscale_scaler *sc)
{
    const struct cfg_cluster *cc = cfg_find_cluster(sc->root, sc->name);
    return cc ? &cc->health_check : NULL;
}

/* Keeps a reference to the running snapshot, and lets go of those only
 * the scaler still holds (no request can be in flight on them). */
static void autoscale_track_snapshots(struct autoscale *as)
{
    struct snapshot *cur = as->srv->snap;
    if (as->n_snaps == 0 || as->snaps[as->n_snaps - 1] != cur) {
        if (as->n_snaps == as->cap_snaps) {
            size_t cap = as->cap_snaps ? as->cap_snaps * 2 : 8;
            struct snapshot **s = realloc(as->snaps, cap * sizeof(*s));
            if (!s)
                return;
            as->snaps = s;
            as->cap_snaps = cap;
        }
        snapshot_ref(cur);
        as->snaps[as->n_snaps++] = cur;
    }
    for (size_t i = 0; i < as->n_snaps;) {
        if (as->snaps[i] != cur && atomic_load(&as->snaps[i]->refs) == 1) {
            snapshot_unref(as->snaps[i]);
            memmove(&as->snaps[i], &as->snaps[i + 1], (as->n_snaps - i - 1) * sizeof(*as->snaps));
            as->n_snaps--;
            continue;
        }
        i++;
    }
}

/* ---- readings ---- */

static void autoscale_queue_counted(struct qcall *call)
{
    struct autoscale_scaler *sc = call->arg;
    if (call->rc == 0) {
        sc->qcount_visible = call->counts[0];
        sc->qcount_have = 1;
    } else if (sc->qcount_have) {
        log_warn("autoscale: cluster %s: queue %s: its store did not answer the count (%s); "
                 "queue_visible is not read until it does",
                 sc->name, call->q->name, strerror(-call->rc));
        sc->qcount_have = 0;
    }
    queue_put(call->q);
    call->q = NULL;
}

/* A queue kept in Redis: its counts are in the store, asked for on this
 * (the main) thread's own client of it, one call at a time. The reading
 * is the last answer (one period old at most); none before the first.
 * Takes over the reference to q. */
static void autoscale_count_shared(struct autoscale_scaler *sc, struct queue *q)
{
    struct qcall *call = &sc->qcount;
    if (call->busy) {
        queue_put(q);
        return;
    }
    call->q = q;
    call->loop = sc->as->loop;
    call->cfg = sc->root;
    call->done = autoscale_queue_counted;
    call->arg = sc;
    qbackend_of(q)->counts(call);
}

/* Ends a count still out (the scaler goes). */
static void autoscale_count_cancel(struct autoscale_scaler *sc)
{
    if (!sc->qcount.busy)
        return;
    qcall_cancel(&sc->qcount);
    queue_put(sc->qcount.q);
    sc->qcount.q = NULL;
}

static void autoscale_read_queue(struct autoscale_scaler *sc, struct autoscale_reading *r)
{
    struct qbroker *b = sqs_snapshot_broker(sc->as->srv->snap);
    struct queue *q = b ? qbroker_find(b, sc->cfg->queue) : NULL;
    if (!q) {
        if (!sc->queue_missing_logged)
            log_warn("autoscale: cluster %s: queue %s does not exist (yet); queue_visible is "
                     "not read until it does",
                     sc->name, sc->cfg->queue);
        sc->queue_missing_logged = 1;
        return;
    }
    sc->queue_missing_logged = 0;
    if (qbackend_of(q)->shared) {
        autoscale_count_shared(sc, q);
        r->present = sc->qcount_have;
        r->value = (double)sc->qcount_visible;
        return;
    }
    size_t visible, inflight, delayed;
    queue_counts(q, &visible, &inflight, &delayed);
    queue_put(q);
    r->present = 1;
    r->value = (double)visible;
}

static void autoscale_read_in_flight(struct autoscale_scaler *sc, const struct cluster *cl,
                                     struct autoscale_reading *r)
{
    int n = 0;
    for (size_t e = 0; cl && e < cl->n_endpoints; e++)
        n += atomic_load(&cl->endpoints[e].active);
    r->present = 1;
    r->value = n > 0 ? n : 0;
}

/* The 95th percentile (ms) of what the response histogram gained since
 * the last period, interpolated linearly in its bucket. */
static void autoscale_read_latency(struct autoscale_scaler *sc, const struct cluster *cl,
                                   struct autoscale_reading *r)
{
    uint64_t now[METRICS_MAX_BUCKETS + 1], delta[METRICS_MAX_BUCKETS + 1], total = 0;
    const double *bounds;
    size_t n =
        cl ? metrics_read_histogram(cl->m_response, now, METRICS_MAX_BUCKETS + 1, &bounds) : 0;
    if (n == 0)
        return;
    for (size_t b = 0; b < n; b++) {
        delta[b] = sc->hist_primed && now[b] >= sc->hist_prev[b] ? now[b] - sc->hist_prev[b] : 0;
        total += delta[b];
        sc->hist_prev[b] = now[b];
    }
    int primed = sc->hist_primed;
    sc->hist_primed = 1;
    if (!primed || total == 0)
        return;
    double rank = ceil(0.95 * (double)total);
    uint64_t below = 0;
    size_t b = 0;
    while (b < n - 1 && (double)(below + delta[b]) < rank)
        below += delta[b++];
    double lo = b ? bounds[b - 1] : 0, hi = b < n - 1 ? bounds[b] : bounds[n - 2] * 2;
    double share = delta[b] ? (rank - (double)below) / (double)delta[b] : 1;
    r->present = 1;
    r->value = (lo + (hi - lo) * share) * 1000.0;
}

static void autoscale_read_cpu(struct autoscale_scaler *sc, uint64_t now_ms,
                               struct autoscale_reading *r)
{
    double sum = 0;
    unsigned n = 0;
    for (size_t i = 0; i < sc->n_inst; i++) {
        struct autoscale_instance *in = sc->inst[i];
        if (in->state != AUTOSCALE_READY)
            continue;
        autoscale_instance_sample_cpu(in, now_ms);
        if (in->cpu_pct >= 0) {
            sum += in->cpu_pct;
            n++;
        }
    }
    if (n) {
        r->present = 1;
        r->value = sum / n;
    }
}

static void autoscale_read(struct autoscale_scaler *sc, uint64_t now_ms)
{
    const struct cfg_autoscale *c = sc->cfg;
    const struct cluster *cl = autoscale_cluster(sc->as->srv->snap, sc->name);
    struct autoscale_reading *r = sc->readings;
    memset(r, 0, sizeof(sc->readings));
    for (int m = 0; m < AUTOSCALE_METRIC_COUNT; m++)
        r[m].target = c->target[m];
    if (c->present[AUTOSCALE_METRIC_QUEUE_VISIBLE])
        autoscale_read_queue(sc, &r[AUTOSCALE_METRIC_QUEUE_VISIBLE]);
    if (c->present[AUTOSCALE_METRIC_IN_FLIGHT])
        autoscale_read_in_flight(sc, cl, &r[AUTOSCALE_METRIC_IN_FLIGHT]);
    if (c->present[AUTOSCALE_METRIC_LATENCY_P95])
        autoscale_read_latency(sc, cl, &r[AUTOSCALE_METRIC_LATENCY_P95]);
    if (c->present[AUTOSCALE_METRIC_CPU])
        autoscale_read_cpu(sc, now_ms, &r[AUTOSCALE_METRIC_CPU]);
}

/* ---- decisions ---- */

uint32_t autoscale_min(const struct autoscale_scaler *sc)
{
    return sc->min_override >= 0 ? (uint32_t)sc->min_override : sc->cfg->min;
}

uint32_t autoscale_max(const struct autoscale_scaler *sc)
{
    return sc->max_override >= 0 ? (uint32_t)sc->max_override : sc->cfg->max;
}

/* Writes the readings as "queue_visible=120/100 in_flight=-" into buf. */
static void autoscale_format_inputs(const struct autoscale_scaler *sc, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = 0;
    for (int m = 0; m < AUTOSCALE_METRIC_COUNT && len < size; m++) {
        const struct autoscale_reading *r = &sc->readings[m];
        if (!sc->cfg->present[m])
            continue;
        const char *unit = m == AUTOSCALE_METRIC_LATENCY_P95 ? "ms"
                           : m == AUTOSCALE_METRIC_CPU       ? "%"
                                                             : "";
        int n = r->present ? snprintf(buf + len, size - len, "%s%s=%.1f%s/%g%s", len ? " " : "",
                                      autoscale_metric_name(m), r->value, unit, r->target, unit)
                           : snprintf(buf + len, size - len, "%s%s=none/%g%s", len ? " " : "",
                                      autoscale_metric_name(m), r->target, unit);
        if (n > 0)
            len += (size_t)n;
    }
}

/* Logs d once: a change, or a hold whose reason or count differs from the
 * last one logged. */
static void autoscale_log_decision(struct autoscale_scaler *sc, const struct autoscale_decision *d)
{
    const struct autoscale_decision *p = &sc->last;
    if (sc->have_last && d->direction == AUTOSCALE_NONE && p->direction == AUTOSCALE_NONE &&
        p->reason == d->reason && p->desired == d->desired && p->metric == d->metric)
        return;
    char inputs[256];
    autoscale_format_inputs(sc, inputs, sizeof(inputs));
    log_info("autoscale: cluster %s: %s %u -> %u (reason %s%s%s; proposed %u, min %u, max %u): %s",
             sc->name,
             d->direction == AUTOSCALE_UP     ? "scale up"
             : d->direction == AUTOSCALE_DOWN ? "scale down"
                                              : "hold",
             d->current, d->desired, autoscale_reason_name(d->reason),
             d->metric >= 0 ? ", metric " : "",
             d->metric >= 0 ? autoscale_metric_name(d->metric) : "", d->proposed, autoscale_min(sc),
             autoscale_max(sc), inputs);
}

/* The lowest instance number no instance of sc has. */
static unsigned autoscale_free_id(const struct autoscale_scaler *sc)
{
    for (unsigned id = 1;; id++) {
        size_t i = 0;
        while (i < sc->n_inst && sc->inst[i]->id != id)
            i++;
        if (i == sc->n_inst)
            return id;
    }
}

static int autoscale_add_instance(struct autoscale_scaler *sc, uint64_t now_ms)
{
    if (sc->n_inst == sc->cap_inst) {
        size_t cap = sc->cap_inst ? sc->cap_inst * 2 : 8;
        struct autoscale_instance **a = realloc(sc->inst, cap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        sc->inst = a;
        sc->cap_inst = cap;
    }
    struct autoscale_instance *in = autoscale_instance_new(sc, autoscale_free_id(sc), now_ms);
    if (!in)
        return -ENOMEM;
    sc->inst[sc->n_inst++] = in;
    autoscale_instance_start(in, now_ms); /* listed first: {count} counts it */
    return 0;
}

/* The instance to retire first: one backing off, then starting, then the
 * newest ready one (the highest number). */
static struct autoscale_instance *autoscale_victim(struct autoscale_scaler *sc)
{
    static const enum autoscale_state order[] = {AUTOSCALE_BACKOFF, AUTOSCALE_STARTING,
                                                 AUTOSCALE_READY};
    for (size_t o = 0; o < 3; o++) {
        struct autoscale_instance *best = NULL;
        for (size_t i = 0; i < sc->n_inst; i++)
            if (sc->inst[i]->state == order[o] && (!best || sc->inst[i]->id > best->id))
                best = sc->inst[i];
        if (best)
            return best;
    }
    return NULL;
}

/* Starts or retires instances until `desired` count. */
static void autoscale_converge(struct autoscale_scaler *sc, uint32_t desired, uint64_t now_ms)
{
    while (autoscale_counted(sc) < desired) {
        if (autoscale_add_instance(sc, now_ms) != 0) {
            log_error("autoscale: cluster %s: out of memory starting an instance", sc->name);
            return;
        }
    }
    while (autoscale_counted(sc) > desired) {
        struct autoscale_instance *in = autoscale_victim(sc);
        if (!in)
            return;
        autoscale_instance_retire(in, now_ms);
    }
}

static void autoscale_decide_now(struct autoscale_scaler *sc, uint64_t now_ms)
{
    const struct cfg_autoscale *c = sc->cfg;
    struct autoscale_policy p = {.min = autoscale_min(sc),
                                 .max = autoscale_max(sc),
                                 .max_step = c->max_step,
                                 .tolerance = c->tolerance,
                                 .up_window_ms = c->up_window_ms,
                                 .down_window_ms = c->down_window_ms,
                                 .scale_to_zero = c->scale_to_zero};
    struct autoscale_decision d;
    autoscale_read(sc, now_ms);
    autoscale_decide(&p, sc->history, autoscale_counted(sc), sc->readings, now_ms, &d);
    autoscale_count_decision(sc, &d);
    autoscale_log_decision(sc, &d);
    sc->last = d;
    sc->have_last = 1;
    sc->last_at_ms = (uint64_t)time(NULL) * 1000;
    autoscale_converge(sc, d.desired, now_ms);
}

int autoscale_set(struct autoscale_scaler *sc, int min, int max, int paused, char *err,
                  size_t err_size)
{
    int lo = min >= 0 ? min : (int)autoscale_min(sc);
    int hi = max >= 0 ? max : (int)autoscale_max(sc);
    if (lo > AUTOSCALE_MAX_INSTANCES || hi > AUTOSCALE_MAX_INSTANCES || hi < 1) {
        snprintf(err, err_size, "min and max are 0..%d (max at least 1)", AUTOSCALE_MAX_INSTANCES);
        return -EINVAL;
    }
    if (lo > hi) {
        snprintf(err, err_size, "min (%d) would be above max (%d)", lo, hi);
        return -EINVAL;
    }
    if (lo == 0 && !sc->cfg->scale_to_zero) {
        snprintf(err, err_size, "min 0 needs scale_to_zero: true in the configuration");
        return -EINVAL;
    }
    if (min >= 0)
        sc->min_override = min;
    if (max >= 0)
        sc->max_override = max;
    if (paused >= 0)
        sc->paused = paused;
    log_info("autoscale: cluster %s: admin API: min %u, max %u%s", sc->name, autoscale_min(sc),
             autoscale_max(sc), sc->paused ? ", paused" : "");
    sc->next_decide_ms = 0; /* decide at the next tick with the new bounds */
    return 0;
}

/* ---- scalers ---- */

static struct autoscale_scaler *autoscale_scaler_new(struct autoscale *as, struct cfg *root,
                                                     const struct cfg_cluster *cc)
{
    struct autoscale_scaler *sc = calloc(1, sizeof(*sc));
    if (!sc || !(sc->history = calloc(1, sizeof(*sc->history)))) {
        free(sc);
        return NULL;
    }
    sc->as = as;
    snprintf(sc->name, sizeof(sc->name), "%s", cc->name);
    cfg_ref(root);
    sc->root = root;
    sc->cfg = cc->autoscale;
    sc->min_override = sc->max_override = -1;
    const char *v[] = {sc->name};
    sc->m_restarts = metrics_series_get(&autoscale_family_restarts, v);
    log_info("autoscale: cluster %s: %u..%u instances, every %llu ms", sc->name, sc->cfg->min,
             sc->cfg->max, (unsigned long long)sc->cfg->period_ms);
    return sc;
}

static void autoscale_scaler_free(struct autoscale_scaler *sc)
{
    autoscale_count_cancel(sc);
    for (size_t i = 0; i < sc->n_inst; i++)
        autoscale_instance_free(sc->inst[i]);
    free(sc->inst);
    for (int d = 0; d < AUTOSCALE_DIRECTION_COUNT; d++)
        for (int r = 0; r < AUTOSCALE_REASON_COUNT; r++)
            metrics_series_put(sc->m_decisions[d][r]);
    metrics_series_put(sc->m_restarts);
    cfg_unref(sc->root);
    free(sc->history);
    free(sc);
}

struct autoscale_scaler *autoscale_find(struct autoscale *as, const char *name)
{
    for (size_t i = 0; as && i < as->n_sc; i++)
        if (strcmp(as->sc[i]->name, name) == 0 && !as->sc[i]->gone)
            return as->sc[i];
    return NULL;
}

static int autoscale_append(struct autoscale *as, struct autoscale_scaler *sc)
{
    struct autoscale_scaler **a = realloc(as->sc, (as->n_sc + 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    as->sc = a;
    as->sc[as->n_sc++] = sc;
    return 0;
}

/* Follows the running configuration: new blocks get a scaler, changed
 * ones take effect (the admin API's overrides are dropped: the file wins),
 * removed ones drain and stop their instances. */
static void autoscale_follow(struct autoscale *as, struct cfg *cfg)
{
    for (size_t i = 0; i < as->n_sc; i++) {
        struct autoscale_scaler *sc = as->sc[i];
        const struct cfg_cluster *cc = cfg_find_cluster(cfg, sc->name);
        if (sc->gone)
            continue;
        if (!cc || !cc->autoscale) {
            log_info("autoscale: cluster %s: no longer autoscaled; its instances drain and stop",
                     sc->name);
            sc->gone = 1;
            for (size_t k = 0; k < sc->n_inst; k++)
                autoscale_instance_retire(sc->inst[k], endpoint_now_ms());
            continue;
        }
        cfg_ref(cfg);
        cfg_unref(sc->root);
        sc->root = cfg;
        sc->cfg = cc->autoscale;
        if (sc->min_override >= 0 || sc->max_override >= 0)
            log_info("autoscale: cluster %s: reload: min/max set through the API give way to "
                     "the file's",
                     sc->name);
        sc->min_override = sc->max_override = -1;
        sc->next_decide_ms = 0;
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const struct cfg_cluster *cc = &cfg->clusters[i];
        if (!cc->autoscale || autoscale_find(as, cc->name))
            continue;
        struct autoscale_scaler *sc = autoscale_scaler_new(as, cfg, cc);
        if (!sc || autoscale_append(as, sc) != 0) {
            log_error("autoscale: cluster %s: out of memory starting its scaler", cc->name);
            if (sc)
                autoscale_scaler_free(sc);
        }
    }
    cfg_ref(cfg);
    if (as->cfg)
        cfg_unref(as->cfg);
    as->cfg = cfg;
}

/* One scaler's turn of the tick. Returns 1 when it is gone and empty. */
static int autoscale_scaler_tick(struct autoscale_scaler *sc, uint64_t now_ms)
{
    for (size_t i = 0; i < sc->n_inst;) {
        if (autoscale_instance_step(sc->inst[i], now_ms)) {
            autoscale_instance_free(sc->inst[i]);
            memmove(&sc->inst[i], &sc->inst[i + 1], (sc->n_inst - i - 1) * sizeof(*sc->inst));
            sc->n_inst--;
            continue;
        }
        i++;
    }
    int loop = 0;
    for (size_t i = 0; i < sc->n_inst; i++)
        loop |= sc->inst[i]->crashes >= AUTOSCALE_CRASH_LOOP;
    sc->crash_loop = loop;
    if (sc->gone)
        return sc->n_inst == 0;
    if (sc->as->stopping || sc->paused || now_ms < sc->next_decide_ms)
        return 0;
    sc->next_decide_ms = now_ms + sc->cfg->period_ms;
    autoscale_decide_now(sc, now_ms);
    return 0;
}

static void autoscale_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct autoscale *as = w->data;
    uint64_t now_ms = endpoint_now_ms();
    if (as->srv->snap->cfg != as->cfg)
        autoscale_follow(as, as->srv->snap->cfg);
    autoscale_track_snapshots(as);
    for (size_t i = 0; i < as->n_sc;) {
        if (autoscale_scaler_tick(as->sc[i], now_ms)) {
            autoscale_scaler_free(as->sc[i]);
            memmove(&as->sc[i], &as->sc[i + 1], (as->n_sc - i - 1) * sizeof(*as->sc));
            as->n_sc--;
            continue;
        }
        i++;
    }
    if (as->dirty) {
        char err[256];
        as->dirty = 0;
        if (server_rebuild(as->srv, err, sizeof(err)) != 0) {
            log_error("autoscale: publishing the instances: %s; trying again", err);
            as->dirty = 1;
        }
        autoscale_track_snapshots(as);
    }
}

struct autoscale *autoscale_new(struct ev_loop *loop, struct server *srv)
{
    struct autoscale *as = calloc(1, sizeof(*as));
    if (!as) {
        log_error("autoscale: out of memory");
        return NULL;
    }
    as->loop = loop;
    as->srv = srv;
    autoscale_follow(as, srv->snap->cfg);
    if (metrics_collector_add(autoscale_collect, as) != 0)
        log_warn("autoscale: out of memory registering its gauges; /metrics lacks them");
    ev_timer_init(&as->tick, autoscale_tick_cb, AUTOSCALE_TICK_S, AUTOSCALE_TICK_S);
    as->tick.data = as;
    ev_timer_start(loop, &as->tick);
    autoscale_the = as;
    return as;
}

struct autoscale *autoscale_current(void)
{
    return autoscale_the;
}

void autoscale_stop(struct autoscale *as)
{
    if (as)
        as->stopping = 1;
}

/* weir exits: SIGTERM (or the down hook) for every instance, then waits
 * (when `wait`) up to the longest grace, SIGKILL for what is left. */
static void autoscale_stop_all(struct autoscale *as, int wait)
{
    uint64_t grace = 0;
    for (size_t i = 0; i < as->n_sc; i++) {
        struct autoscale_scaler *sc = as->sc[i];
        if (sc->cfg->grace_ms > grace)
            grace = sc->cfg->grace_ms;
        for (size_t k = 0; k < sc->n_inst; k++) {
            struct autoscale_instance *in = sc->inst[k];
            if (in->pid > 0) {
                ev_child_stop(as->loop, &in->child);
                if (!(in->pid_is_hook && in->state == AUTOSCALE_STOPPING))
                    autoscale_instance_signal(in, SIGTERM); /* a down hook may finish */
            } else if (wait && sc->cfg->hook_down.argc && in->address[0] &&
                       in->state != AUTOSCALE_STOPPING) {
                autoscale_instance_stop(in, endpoint_now_ms()); /* weir's drain is over */
                if (in->pid > 0)
                    ev_child_stop(as->loop, &in->child);
            }
        }
    }
    uint64_t until = endpoint_now_ms() + grace;
    for (int left = 1; left && wait;) {
        left = 0;
        int late = endpoint_now_ms() >= until;
        for (size_t i = 0; i < as->n_sc; i++)
            for (size_t k = 0; k < as->sc[i]->n_inst; k++) {
                struct autoscale_instance *in = as->sc[i]->inst[k];
                if (in->pid <= 0)
                    continue;
                pid_t r = waitpid(in->pid, NULL, WNOHANG);
                if (r == in->pid || (r < 0 && errno == ECHILD)) {
                    in->pid = 0;
                    continue;
                }
                if (late && !in->killed)
                    autoscale_instance_signal(in, SIGKILL);
                left = 1;
            }
        if (left) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

void autoscale_free(struct autoscale *as, int wait)
{
    if (!as)
        return;
    ev_timer_stop(as->loop, &as->tick);
    metrics_collector_remove(autoscale_collect, as);
    autoscale_stop_all(as, wait);
    size_t n = 0;
    for (size_t i = 0; i < as->n_sc; i++) {
        n += as->sc[i]->n_inst;
        for (size_t k = 0; k < as->sc[i]->n_inst; k++)
            as->sc[i]->inst[k]->pid = 0; /* waited for or signalled: no watcher left */
        autoscale_scaler_free(as->sc[i]);
    }
    if (n)
        log_info("autoscale: %zu instance(s) stopped", n);
    free(as->sc);
    for (size_t i = 0; i < as->n_snaps; i++)
        snapshot_unref(as->snaps[i]);
    free(as->snaps);
    if (as->cfg)
        cfg_unref(as->cfg);
    if (autoscale_the == as)
        autoscale_the = NULL;
    free(as);
}

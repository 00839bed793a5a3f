/* admin_metrics: GET /metrics, and the collectors of what is a reading of
 * live state rather than a count: each endpoint's up / in flight / breaker
 * state from the running snapshot, the last good reload's time, and the
 * standard process_* metrics from /proc. Counters and histograms come from
 * the registry (core/metrics.c), written by the modules themselves. */
#include <dirent.h>
#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin/admin_internal.h"
#include "core/metrics.h"
#include "server/server.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"
#include "upstream/upstream_metrics.h"

static const struct metric_family admin_family_last_reload = {
    .name = "weir_config_last_reload_success_timestamp_seconds",
    .help = "Wall-clock time of the last successful configuration load.",
    .type = METRIC_GAUGE,
};

#define ADMIN_PROCESS_FAMILY(var, n, h, t) \
    static const struct metric_family var = { .name = n, .help = h, .type = t }
ADMIN_PROCESS_FAMILY(admin_family_cpu, "process_cpu_seconds_total",
                     "Total user and system CPU time spent in seconds.", METRIC_COUNTER);
ADMIN_PROCESS_FAMILY(admin_family_rss, "process_resident_memory_bytes",
                     "Resident memory size in bytes.", METRIC_GAUGE);
ADMIN_PROCESS_FAMILY(admin_family_vsz, "process_virtual_memory_bytes",
                     "Virtual memory size in bytes.", METRIC_GAUGE);
ADMIN_PROCESS_FAMILY(admin_family_fds, "process_open_fds", "Number of open file descriptors.",
                     METRIC_GAUGE);
ADMIN_PROCESS_FAMILY(admin_family_max_fds, "process_max_fds",
                     "Maximum number of open file descriptors.", METRIC_GAUGE);
ADMIN_PROCESS_FAMILY(admin_family_start, "process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.", METRIC_GAUGE);

static void admin_collect_endpoints(struct metrics_out *o, void *arg)
{
    const struct admin *a = arg;
    const struct snapshot *snap = a->srv->snap;
    if (!snap)
        return;
    const struct metric_family *fams[] = { &upstream_family_endpoint_up,
                                           &upstream_family_in_flight,
                                           &upstream_family_breaker_state };
    /* exposition order 0 closed, 1 half-open, 2 open; the enum is closed, open, half-open */
    static const int breaker_value[] = { [BREAKER_CLOSED] = 0, [BREAKER_HALF_OPEN] = 1,
                                         [BREAKER_OPEN] = 2 };
    for (size_t f = 0; f < 3; f++) {
        metrics_write_family(o, fams[f]);
        for (size_t i = 0; i < snap->cfg->n_clusters; i++) {
            const struct cluster *cl = &snap->clusters[i];
            for (size_t e = 0; e < cl->n_endpoints; e++) {
                const struct endpoint *ep = &cl->endpoints[e];
                const char *v[] = { cl->cfg->name, ep->name };
                const struct breaker *b = cl->cfg->breaker.per_cluster ? &cl->breaker : &ep->breaker;
                int st = atomic_load(&b->state);
                double val = f == 0 ? atomic_load(&ep->up)
                             : f == 1 ? atomic_load(&ep->active)
                                      : breaker_value[st >= 0 && st <= 2 ? st : 0];
                metrics_write_sample(o, fams[f], v, val);
            }
        }
    }
}

/* Field `n` (1-based) of /proc/self/stat after the command name. */
static int admin_proc_stat(unsigned long long *utime, unsigned long long *stime,
                           unsigned long long *start, unsigned long long *vsize, long long *rss)
{
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields from 3 (state) on */
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu %llu %lld",
                     utime, stime, start, vsize, rss);
    return got == 5 ? 0 : -1;
}

static double admin_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(f);
    return bt;
}

static void admin_collect_process(struct metrics_out *o, void *arg)
{
    const struct admin *a = arg;
    metrics_write_family(o, &admin_family_last_reload);
    metrics_write_sample(o, &admin_family_last_reload, NULL, a->srv->loaded_at);
    unsigned long long ut, st, start, vsize;
    long long rss;
    double tck = (double)sysconf(_SC_CLK_TCK);
    if (admin_proc_stat(&ut, &st, &start, &vsize, &rss) == 0 && tck > 0) {
        metrics_write_family(o, &admin_family_cpu);
        metrics_write_sample(o, &admin_family_cpu, NULL, (double)(ut + st) / tck);
        metrics_write_family(o, &admin_family_rss);
        metrics_write_sample(o, &admin_family_rss, NULL, (double)rss * (double)sysconf(_SC_PAGESIZE));
        metrics_write_family(o, &admin_family_vsz);
        metrics_write_sample(o, &admin_family_vsz, NULL, (double)vsize);
        metrics_write_family(o, &admin_family_start);
        metrics_write_sample(o, &admin_family_start, NULL, admin_boot_time() + (double)start / tck);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        metrics_write_family(o, &admin_family_fds);
        metrics_write_sample(o, &admin_family_fds, NULL, (double)(n > 3 ? n - 3 : 0)); /* ., .., the dir's own fd */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metrics_write_family(o, &admin_family_max_fds);
        metrics_write_sample(o, &admin_family_max_fds, NULL, (double)rl.rlim_cur);
    }
}

int admin_metrics_start(struct admin *a)
{
    if (metrics_collector_add(admin_collect_endpoints, a) != 0)
        return -1;
    if (metrics_collector_add(admin_collect_process, a) != 0) {
        metrics_collector_remove(admin_collect_endpoints, a);
        return -1;
    }
    return 0;
}

void admin_metrics_stop(struct admin *a)
{
    metrics_collector_remove(admin_collect_endpoints, a);
    metrics_collector_remove(admin_collect_process, a);
}

/* Whether the scraper asked for OpenMetrics in Accept. */
static int admin_wants_openmetrics(const struct http_msg *msg)
{
    int h = http_msg_find(msg, "accept");
    if (h < 0)
        return 0;
    struct http_slice v = msg->headers[h].value;
    const char *want = "application/openmetrics-text";
    size_t wl = strlen(want);
    for (size_t i = 0; i + wl <= v.len; i++)
        if (strncasecmp(v.p + i, want, wl) == 0)
            return 1;
    return 0;
}

void admin_metrics_scrape(struct admin_req *r)
{
    if (r->msg->method != HTTP_METHOD_GET && r->msg->method != HTTP_METHOD_HEAD) {
        r->allow = "GET, HEAD";
        admin_reply_error(r, 405, "method not allowed", r->allow);
        return;
    }
    int om = admin_wants_openmetrics(r->msg);
    struct metrics_out o;
    if (metrics_scrape(&o, om ? METRICS_OPENMETRICS : METRICS_TEXT_004) != 0) {
        admin_reply_error(r, 500, "out of memory writing the metrics", NULL);
        return;
    }
    free(r->resp);
    r->resp = o.data;
    r->resp_len = o.len;
    r->status = 200;
    r->content_type = om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                         : "text/plain; version=0.0.4; charset=utf-8";
}

/* health: active health checks, run from the main thread's event loop.
 *
 *   timer(interval + jitter) -> connect -> [TLS] -> type's step (http: request
 *        and reply; tcp: nothing more; grpc: an HTTP/2 Check call)
 *        -> verdict -> rise/fall counters -> endpoint_set_healthy()
 *
 * One probe per endpoint of every cluster that has a health_check, never
 * more than one check in flight per endpoint, each bounded by the check's
 * timeout. Checks never run on the workers: the verdict reaches them
 * through the endpoint's atomics. A cluster with tls: checks over TLS
 * (through the I/O seam, core/sio.h).
 *
 * What a check does once connected is its type's row (health_types[],
 * struct health_type in health_internal.h): http and tcp in
 * health_http.c (and the HTTP check of an h2/h2c cluster: one HTTP/2
 * request, health_h2.c's bytes), grpc in health_grpc.c. This file owns the timer, the
 * connect, the TLS wrap (with the row's ALPN offer), the verdict and the
 * rise/fall counting; a new type is a file and a row, not a branch here. */
#include "upstream/health.h"
#include "upstream/health_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/net.h"
#include "core/sio.h"
#include "tls/tls.h"
#include "upstream/upstream_metrics.h"

struct health {
    struct ev_loop *loop;
    struct health_probe *probes;
    size_t n;
    uint64_t rng;
};

static void health_schedule(struct health_probe *p, int first);

static uint64_t health_rand(struct health *h)
{
    h->rng += 0x9e3779b97f4a7c15ULL;
    return hash_mix64(h->rng);
}

static void health_close(struct health_probe *p)
{
    if (p->type->reset)
        p->type->reset(p);
    ev_io_stop(p->h->loop, &p->io);
    ev_timer_stop(p->h->loop, &p->timer);
    sio_close(&p->sio);
    p->phase = HP_IDLE;
}

void health_verdict(struct health_probe *p, int ok, const char *reason)
{
    const struct cfg_health_check *c = p->cfg;
    uint64_t now = endpoint_now_ms();
    health_close(p);
    metrics_add(p->ep->m_checks, ok ? UPSTREAM_CHECK_SUCCESS : UPSTREAM_CHECK_FAILURE, 1);
    if (ok) {
        p->fail_streak = 0;
        if (++p->ok_streak >= c->rise && !atomic_load(&p->ep->healthy)) {
            char why[96];
            snprintf(why, sizeof(why), "%u consecutive checks passed", p->ok_streak);
            endpoint_set_healthy(p->ep, 1, why, now);
        }
    } else {
        p->ok_streak = 0;
        log_debug("health check of %s failed: %s", p->ep->name, reason);
        if (++p->fail_streak >= c->fall && atomic_load(&p->ep->healthy)) {
            char why[160];
            snprintf(why, sizeof(why), "%u consecutive checks failed, last: %s", p->fail_streak, reason);
            endpoint_set_healthy(p->ep, 0, why, now);
        }
    }
    health_schedule(p, 0);
}

void health_watch(struct health_probe *p, int events)
{
    ev_io_stop(p->h->loop, &p->io);
    ev_io_set(&p->io, p->sio.fd, events);
    ev_io_start(p->h->loop, &p->io);
}

/* The connect finished: wrap it in TLS when the cluster says so. Returns
 * 0, or -1 after a verdict. */
static int health_connected(struct health_probe *p)
{
    int r = net_connect_result(p->sio.fd);
    if (r != 0) {
        health_verdict(p, 0, strerror(-r));
        return -1;
    }
    if (p->tls) {
        int fd = p->sio.fd;
        sio_init_closed(&p->sio); /* tls_connect_sio owns fd from here */
        if (tls_connect_sio(p->tls, fd, (struct sockaddr *)&p->ep->addr, p->ep->addrlen, NULL, &p->sio) < 0 ||
            (p->type->alpn && tls_client_offer_alpn(&p->sio, p->type->alpn, p->type->alpn_len) < 0)) {
            health_verdict(p, 0, "out of memory for TLS");
            return -1;
        }
    }
    return 0;
}

static void health_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct health_probe *p = w->data;
    if (p->phase == HP_CONNECTING) {
        if (health_connected(p) < 0)
            return;
        p->phase = HP_SENDING;
    }
    p->type->step(p);
}

static void health_start_check(struct health_probe *p)
{
    int fd = net_connect((struct sockaddr *)&p->ep->addr, p->ep->addrlen);
    if (fd < 0) {
        health_verdict(p, 0, strerror(-fd));
        return;
    }
    sio_init_plain(&p->sio, fd);
    p->phase = HP_CONNECTING;
    p->sent = p->got = 0;
    ev_io_set(&p->io, p->sio.fd, EV_WRITE);
    ev_io_start(p->h->loop, &p->io);
    ev_timer_set(&p->timer, (double)p->cfg->timeout_ms / 1000.0, 0.);
    ev_timer_start(p->h->loop, &p->timer);
}

static void health_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct health_probe *p = w->data;
    if (p->phase == HP_IDLE) {
        health_start_check(p);
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)p->cfg->timeout_ms);
    health_verdict(p, 0, why);
}

uint64_t health_delay_ms(const struct cfg_health_check *c, int first, uint64_t r)
{
    if (first) /* spread the first round over one interval */
        return r % (c->interval_ms + 1);
    return c->interval_ms + r % (c->jitter_ms + 1);
}

static void health_schedule(struct health_probe *p, int first)
{
    uint64_t ms = health_delay_ms(p->cfg, first, health_rand(p->h));
    ev_timer_set(&p->timer, (double)ms / 1000.0, 0.);
    ev_timer_start(p->h->loop, &p->timer);
}

/* What each health_check.type does: a new type is a row (and its file). */
static const struct health_type *const health_types[CFG_HC_TYPE_COUNT] = {
    [CFG_HC_HTTP] = &health_type_http,
    [CFG_HC_TCP] = &health_type_tcp,
    [CFG_HC_GRPC] = &health_type_grpc,
};

/* The row of a check of cluster cfg: an http check of endpoints that
 * speak HTTP/2 (protocol h2, h2c) is one HTTP/2 request. */
static const struct health_type *health_type_of(const struct cfg_cluster *cfg)
{
    if (cfg->health_check.type == CFG_HC_HTTP && cfg->protocol != CFG_UP_HTTP1)
        return &health_type_http2;
    return health_types[cfg->health_check.type];
}

struct health *health_new(struct ev_loop *loop, struct cluster *set, size_t n_clusters)
{
    size_t total = 0;
    for (size_t i = 0; i < n_clusters; i++)
        if (set[i].cfg->health_check.enabled)
            total += set[i].n_endpoints;
    struct health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->loop = loop;
    h->rng = (uint64_t)(uintptr_t)h ^ endpoint_now_ms();
    h->probes = calloc(total ? total : 1, sizeof(*h->probes));
    if (!h->probes) {
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < n_clusters; i++) {
        if (!set[i].cfg->health_check.enabled)
            continue;
        for (size_t e = 0; e < set[i].n_endpoints; e++) {
            struct health_probe *p = &h->probes[h->n++];
            p->h = h;
            sio_init_closed(&p->sio);
            p->tls = set[i].cfg->tls;
            p->ep = &set[i].endpoints[e];
            p->cfg = &set[i].cfg->health_check;
            /* continue the streak the endpoint is in, so a reload does not
             * reset a pending verdict's direction */
            p->type = health_type_of(set[i].cfg);
            if (p->type->prepare)
                p->type->prepare(p);
            ev_init(&p->timer, health_timer_cb);
            p->timer.data = p;
            ev_init(&p->io, health_io_cb);
            p->io.data = p;
            health_schedule(p, 1);
        }
    }
    return h;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        health_close(&h->probes[i]);
    free(h->probes);
    free(h);
}

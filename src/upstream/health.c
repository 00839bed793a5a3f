/* health: active health checks, run from the main thread's event loop.
 *
 *   timer(interval + jitter) -> connect -> [http: send request -> read reply]
 *        -> verdict -> rise/fall counters -> endpoint_set_healthy()
 *
 * One probe per endpoint of every cluster that has a health_check, never
 * more than one check in flight per endpoint, each bounded by the check's
 * timeout. An HTTP check passes when the status is in expect_status and,
 * if set, expect_body occurs in the first HEALTH_READ_MAX bytes of the
 * reply. Checks never run on the workers: the verdict reaches them through
 * the endpoint's atomics. A cluster with tls: checks over TLS (through
 * the I/O seam, core/sio.h): a tcp check passes once the handshake does,
 * an HTTP check sends its request inside the TLS connection. A cluster
 * with protocol h2/h2c: the HTTP check is one HTTP/2 request
 * (health_h2.c), ALPN h2 over TLS. */
#include "upstream/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/net.h"
#include "core/sio.h"
#include "tls/tls.h"
#include "upstream/health_h2.h"
#include "upstream/upstream_metrics.h"

#define HEALTH_READ_MAX 4096
#define HEALTH_REQ_MAX 512

enum health_phase { HP_IDLE, HP_CONNECTING, HP_SENDING, HP_READING };

struct health_probe {
    ev_timer timer;                /* the next check, then this check's timeout */
    ev_io io;
    struct sio sio;                /* the check's connection, closed (fd -1) between checks */
    struct tls_client *tls;        /* the cluster's TLS context, or NULL */
    int h2;                        /* the endpoints speak HTTP/2 (protocol h2, h2c) */
    enum health_phase phase;
    struct health *h;
    struct endpoint *ep;
    const struct cfg_health_check *cfg;
    uint32_t ok_streak, fail_streak;
    size_t req_len, sent, got;
    char req[HEALTH_REQ_MAX];
    char buf[HEALTH_READ_MAX + 1];
};

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
    ev_io_stop(p->h->loop, &p->io);
    ev_timer_stop(p->h->loop, &p->timer);
    sio_close(&p->sio);
    p->phase = HP_IDLE;
}

static void health_verdict(struct health_probe *p, int ok, const char *reason)
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

/* Content-Length of the head in buf (NUL-terminated), or -1. */
static long health_content_length(const char *head)
{
    for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            return strtol(p + 16, NULL, 10);
    return -1;
}

/* Judges the reply read so far, as soon as it can: the status as soon as
 * the head is in, the body text as soon as it shows up or the announced
 * body (or the connection) ended. Returns 1 once a verdict was given. */
static int health_judge_h2(struct health_probe *p, int eof);

static int health_judge_http(struct health_probe *p, int eof)
{
    if (p->h2)
        return health_judge_h2(p, eof);
    p->buf[p->got] = 0;
    int full = eof || p->got == HEALTH_READ_MAX;
    char *hend = strstr(p->buf, "\r\n\r\n");
    if (!hend) {
        if (full)
            health_verdict(p, 0, "incomplete response head");
        return full;
    }
    int status = 0;
    if (sscanf(p->buf, "HTTP/1.%*1[01] %3d", &status) != 1) {
        health_verdict(p, 0, "not an HTTP/1.x status line");
        return 1;
    }
    if (!cfg_status_in(&p->cfg->expect_status, status)) {
        char why[64];
        snprintf(why, sizeof(why), "status %d", status);
        health_verdict(p, 0, why);
        return 1;
    }
    const char *body = hend + 4;
    if (!p->cfg->expect_body || strstr(body, p->cfg->expect_body)) {
        health_verdict(p, 1, "ok");
        return 1;
    }
    long cl = health_content_length(p->buf);
    if (full || (cl >= 0 && (long)(p->got - (size_t)(body - p->buf)) >= cl)) {
        health_verdict(p, 0, "expected body text not found");
        return 1;
    }
    return 0;
}

static struct health_h2_req health_h2_of(const struct health_probe *p)
{
    const struct cfg_health_check *c = p->cfg;
    return (struct health_h2_req){ c->method, c->path, c->host ? c->host : p->ep->name, p->tls != NULL };
}

/* health_judge_http for HTTP/2 endpoints: the same rules on the answer to
 * stream 1. */
static int health_judge_h2(struct health_probe *p, int eof)
{
    int full = eof || p->got == HEALTH_READ_MAX;
    if (p->tls && !tls_alpn_is_h2(&p->sio)) {
        health_verdict(p, 0, "the server did not choose h2 in ALPN");
        return 1;
    }
    static char body[HEALTH_READ_MAX + 1]; /* the main thread's only */
    struct health_h2_req r = health_h2_of(p);
    int status;
    size_t blen;
    int ended = health_h2_answer(&r, (const uint8_t *)p->buf, p->got, &status, body, HEALTH_READ_MAX, &blen);
    if (ended < 0) {
        health_verdict(p, 0, "HTTP/2 protocol error");
        return 1;
    }
    if (!status) {
        if (full || ended)
            health_verdict(p, 0, ended ? "stream reset before an answer" : "incomplete HTTP/2 answer");
        return full || ended;
    }
    if (!cfg_status_in(&p->cfg->expect_status, status)) {
        char why[64];
        snprintf(why, sizeof(why), "status %d", status);
        health_verdict(p, 0, why);
        return 1;
    }
    body[blen] = 0;
    if (!p->cfg->expect_body || strstr(body, p->cfg->expect_body)) {
        health_verdict(p, 1, "ok");
        return 1;
    }
    if (full || ended) {
        health_verdict(p, 0, "expected body text not found");
        return 1;
    }
    return 0;
}

static void health_watch(struct health_probe *p, int events)
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
            (p->h2 && tls_sio_offer_h2(&p->sio) < 0)) {
            health_verdict(p, 0, "out of memory for TLS");
            return -1;
        }
    }
    return 0;
}

/* Sends the request (the TLS handshake on the way); a tcp check is done
 * once connected (and, with TLS, once the handshake succeeded). */
static void health_send(struct health_probe *p)
{
    if (p->cfg->tcp) {
        int r = tls_handshake(&p->sio);
        if (r == -EAGAIN)
            health_watch(p, p->sio.rd_want);
        else
            health_verdict(p, r == 0, r == 0 ? "connected" : "TLS handshake failed");
        return;
    }
    while (p->sent < p->req_len) {
        ssize_t n = sio_write(&p->sio, p->req + p->sent, p->req_len - p->sent);
        if (n == -EAGAIN) {
            health_watch(p, p->sio.wr_want);
            return;
        }
        if (n <= 0) {
            health_verdict(p, 0, n == -EPROTO ? "TLS handshake failed" : strerror(n ? (int)-n : EPIPE));
            return;
        }
        p->sent += (size_t)n;
    }
    p->phase = HP_READING;
    health_watch(p, EV_READ);
}

static void health_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct health_probe *p = w->data;
    if (p->phase == HP_CONNECTING) {
        if (health_connected(p) < 0)
            return;
        p->phase = HP_SENDING;
    }
    if (p->phase == HP_SENDING) {
        health_send(p);
        return;
    }
    for (;;) { /* a TLS record may hold more than the socket shows */
        ssize_t n = sio_read(&p->sio, p->buf + p->got, HEALTH_READ_MAX - p->got);
        if (n == -EAGAIN) {
            health_watch(p, p->sio.rd_want);
            return;
        }
        if (n < 0) {
            health_verdict(p, 0, strerror((int)-n));
            return;
        }
        p->got += (size_t)n;
        if (health_judge_http(p, n == 0) || n == 0)
            return;
    }
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

static void health_build_request(struct health_probe *p)
{
    const struct cfg_health_check *c = p->cfg;
    if (p->h2) {
        struct health_h2_req r = health_h2_of(p);
        ssize_t n = health_h2_request(&r, p->req, sizeof(p->req));
        p->req_len = n > 0 ? (size_t)n : 0;
        return;
    }
    int n = snprintf(p->req, sizeof(p->req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weir-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     c->method, c->path, c->host ? c->host : p->ep->name);
    p->req_len = n > 0 && (size_t)n < sizeof(p->req) ? (size_t)n : 0;
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
            p->h2 = set[i].cfg->protocol != CFG_UP_HTTP1;
            p->ep = &set[i].endpoints[e];
            p->cfg = &set[i].cfg->health_check;
            /* continue the streak the endpoint is in, so a reload does not
             * reset a pending verdict's direction */
            health_build_request(p);
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

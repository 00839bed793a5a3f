/* protocols: see protocols.h. Adding a protocol is its own files, a value in
 * CFG_PROTOCOL_LIST (server/config.h) and one row here; the small adapters
 * below fit a module's existing functions to the server's hooks. */
#include "protocols.h"

#include <errno.h>

#include "core/log.h"
#include "http/http_metrics.h"
#include "http/proxy.h"
#include "http2/h2_server.h"
#include "l4/l4_accept.h"
#include "l4/l4_metrics.h"
#include "l4/tcp_proxy.h"
#include "queue/sqs.h"
#include "resp/resp_health.h"
#include "resp/resp_metrics.h"
#include "resp/resp_proxy.h"

/* HTTP/2 connections ride on the HTTP protocol: their drain (GOAWAY) and
 * their end come with the HTTP sessions'. */
static void protocols_http_drain(struct wctx *wc)
{
    h2_server_drain(wc);
    proxy_drain(wc);
}

static void protocols_http_worker_free(struct wctx *wc)
{
    h2_server_worker_free(wc);
    proxy_worker_cleanup(wc);
}

static void protocols_redis_start(struct wctx *wc, struct wlistener *wl, int fd,
                                  const struct sockaddr_storage *src,
                                  const struct sockaddr_storage *dst)
{
    (void)src;
    (void)dst;
    resp_start(wc, wl, fd);
}

static void protocols_redis_accept(struct wctx *wc, struct wlistener *wl, int fd,
                                   const struct sockaddr_storage *peer)
{
    l4_accept(wc, wl, fd, peer, protocols_redis_start);
}

/* HTTP behind accept_proxy: the client's address is the header's, so
 * X-Forwarded-For, ip_hash and access rules see the real client. */
static void protocols_http_start(struct wctx *wc, struct wlistener *wl, int fd,
                                 const struct sockaddr_storage *src,
                                 const struct sockaddr_storage *dst)
{
    (void)dst;
    proxy_start(wc, wl, fd, src);
}

static void protocols_http_accept(struct wctx *wc, struct wlistener *wl, int fd,
                                  const struct sockaddr_storage *peer)
{
    l4_accept(wc, wl, fd, peer, protocols_http_start);
}

/* SQS behind accept_proxy: the header is read off before the first request. */
static void protocols_sqs_start(struct wctx *wc, struct wlistener *wl, int fd,
                                const struct sockaddr_storage *src,
                                const struct sockaddr_storage *dst)
{
    (void)dst;
    sqs_accept(wc, wl, fd, src);
}

static void protocols_sqs_accept(struct wctx *wc, struct wlistener *wl, int fd,
                                 const struct sockaddr_storage *peer)
{
    l4_accept(wc, wl, fd, peer, protocols_sqs_start);
}

/* The Redis shards' health (one shared state per redis cluster per
 * snapshot, checked once on the main thread: resp/resp_health.c) and the
 * proxy's metric series (resp/resp_metrics.c), in a struct resp_snap. */
static void protocols_redis_snapshot_inherit(struct snapshot *snap, const struct snapshot *old)
{
    const struct resp_snap *rs = snap->proto[CFG_PROTOCOL_REDIS];
    const struct resp_snap *ro = old->proto[CFG_PROTOCOL_REDIS];
    resp_health_states_inherit(rs->health, snap->cfg->n_redis_clusters, ro->health,
                               old->cfg->n_redis_clusters);
}

static void protocols_redis_checks_stop(struct server *srv)
{
    resp_metrics_stop(srv);
    resp_health_free(srv->proto[CFG_PROTOCOL_REDIS]);
    srv->proto[CFG_PROTOCOL_REDIS] = NULL;
}

static void protocols_redis_checks_start(struct server *srv, struct snapshot *snap)
{
    const struct resp_snap *rs = snap->proto[CFG_PROTOCOL_REDIS];
    protocols_redis_checks_stop(srv);
    resp_metrics_start(srv);
    srv->proto[CFG_PROTOCOL_REDIS] =
        resp_health_new(srv->loop, rs->health, snap->cfg->n_redis_clusters);
    if (!srv->proto[CFG_PROTOCOL_REDIS])
        log_error("out of memory starting the Redis health checks; shards keep their last state");
}

const struct server_protocol protocols[CFG_PROTOCOL_COUNT] = {
    [CFG_PROTOCOL_HTTP] = {
        .name = "http",
        .worker_init = proxy_worker_init,
        .accept = protocols_http_accept,
        .drain = protocols_http_drain,
        .worker_stop = proxy_worker_stop,
        .worker_free = protocols_http_worker_free,
        .snapshot_init = http_metrics_snapshot_init,
        .snapshot_free = http_metrics_snapshot_free,
    },
    [CFG_PROTOCOL_REDIS] = {
        .name = "redis",
        .ready = resp_prepare,
        .accept = protocols_redis_accept,
        .drain = resp_drain,
        .worker_free = resp_worker_cleanup,
        .snapshot_init = resp_snap_init,
        .snapshot_inherit = protocols_redis_snapshot_inherit,
        .snapshot_free = resp_snap_free,
        .checks_start = protocols_redis_checks_start,
        .checks_stop = protocols_redis_checks_stop,
    },
    [CFG_PROTOCOL_SQS] = {
        .name = "sqs",
        .worker_init = sqs_worker_init,
        .accept = protocols_sqs_accept,
        .drain = sqs_drain,
        .worker_stop = sqs_worker_stop,
        .worker_free = sqs_worker_free,
        .snapshot_init = sqs_snapshot_init,
        .snapshot_free = sqs_snapshot_free,
    },
    [CFG_PROTOCOL_TCP] = {
        .name = "tcp",
        .worker_init = tcp_worker_init,
        .accept = tcp_accept,
        .drain = tcp_drain,
        .worker_free = tcp_worker_free,
        .snapshot_init = l4_metrics_snapshot_init,
        .snapshot_free = l4_metrics_snapshot_free,
    },
};

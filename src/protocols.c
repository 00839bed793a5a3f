/* protocols: see protocols.h. Adding a protocol is its own files, a value in
 * CFG_PROTOCOL_LIST (server/config.h) and one row here; the small adapters
 * below fit a module's existing functions to the server's hooks. */
#include "protocols.h"

#include "http/proxy.h"
#include "resp/resp_proxy.h"

static void protocols_redis_accept(struct wctx *wc, struct wlistener *wl, int fd,
                                   const struct sockaddr_storage *peer)
{
    resp_start(wc, wl, fd);
}

const struct server_protocol protocols[CFG_PROTOCOL_COUNT] = {
    [CFG_PROTOCOL_HTTP] = {
        .name = "http",
        .worker_init = proxy_worker_init,
        .accept = proxy_start,
        .drain = proxy_drain,
        .worker_stop = proxy_worker_stop,
        .worker_free = proxy_worker_cleanup,
    },
    [CFG_PROTOCOL_REDIS] = {
        .name = "redis",
        .ready = resp_prepare,
        .accept = protocols_redis_accept,
        .drain = resp_drain,
        .worker_free = resp_worker_cleanup,
    },
};

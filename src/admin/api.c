/* api: the JSON admin API's read handlers and reload (see
 * docs/operations.md for every path and field). Handlers run on the main
 * thread and read the running snapshot; endpoint state is read from the
 * atomics the workers update. */
#include <ev.h>
#include <stdatomic.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_internal.h"
#include "core/log.h"
#include "server/server.h"
#include "upstream/breaker.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"

/* 405 unless the request's method is one of `allow` ("GET" / "POST"). GET
 * allows HEAD as well. Returns 1 when it answered. */
static int api_method(struct admin_req *r, const char *allow)
{
    const char *m = http_method_name(r->msg->method);
    if (strcmp(m, allow) == 0 || (strcmp(allow, "GET") == 0 && r->msg->method == HTTP_METHOD_HEAD))
        return 0;
    r->allow = strcmp(allow, "GET") == 0 ? "GET, HEAD" : allow;
    admin_reply_error(r, 405, "method not allowed", r->allow);
    return 1;
}

void admin_api_status(struct admin_req *r)
{
    if (api_method(r, "GET"))
        return;
    const struct server *srv = r->a->srv;
    double now = ev_time();
    admin_reply_json(r, 200,
                     json_pack("{s:s, s:f, s:i, s:i, s:s, s:f}", "version", r->a->version,
                               "uptime_seconds", now - srv->started_at, "generation",
                               (json_int_t)srv->snap->generation, "workers",
                               (json_int_t)srv->n_workers, "config", r->a->path,
                               "last_reload_success", srv->loaded_at));
}

static json_t *api_endpoint(struct topology *topo, const struct cluster *cl,
                            const struct endpoint *ep, uint64_t now_ms)
{
    const struct breaker *b = cl->cfg->breaker.per_cluster ? &cl->breaker : &ep->breaker;
    uint64_t until = atomic_load(&ep->ejected_until_ms);
    const struct topology_item *it = topology_find(topo, cl->cfg->name, &ep->addr, ep->addrlen);
    json_t *meta = it && it->meta ? json_loads(it->meta, JSON_DECODE_ANY, NULL) : NULL;
    return json_pack("{s:s, s:i, s:b, s:b, s:b, s:b, s:b, s:s, s:i, s:f, s:i, s:i, s:s, s:o?}",
                     "address", ep->name, "weight", (json_int_t)ep->weight, "up",
                     atomic_load(&ep->up) != 0, "healthy", atomic_load(&ep->healthy) != 0,
                     "draining", ep->drain != 0, "down", ep->down != 0, "ejected", until > now_ms,
                     "breaker",
                     cl->cfg->breaker.enabled ? breaker_state_name(atomic_load(&b->state))
                                              : "disabled",
                     "in_flight", (json_int_t)atomic_load(&ep->active), "ewma_latency_ms",
                     (double)atomic_load(&ep->ewma_us) / 1000.0, "ejections",
                     (json_int_t)atomic_load(&ep->ejections), "share_percent",
                     (json_int_t)atomic_load(&ep->share_pct), "source",
                     !it || !it->added ? "config" : it->dns ? "dns" : it->ttl_ms ? "registered" : "api", "meta",
                     meta);
}

static json_t *api_cluster(struct topology *topo, const struct cluster *cl, uint64_t now_ms)
{
    json_t *eps = json_array();
    for (size_t i = 0; eps && i < cl->n_endpoints; i++)
        json_array_append_new(eps, api_endpoint(topo, cl, &cl->endpoints[i], now_ms));
    return json_pack("{s:s, s:s, s:i, s:i, s:o}", "name", cl->cfg->name, "balance",
                     cfg_balance_name(cl->cfg->balance), "in_flight",
                     (json_int_t)atomic_load(&cl->active_requests), "retries_in_flight",
                     (json_int_t)atomic_load(&cl->active_retries), "endpoints", eps);
}

/* GET /api/v1/clusters and /api/v1/clusters/{name} */
void admin_api_clusters(struct admin_req *r)
{
    if (api_method(r, "GET"))
        return;
    const struct snapshot *snap = r->a->srv->snap;
    uint64_t now_ms = endpoint_now_ms();
    if (r->n_seg == 4) { /* /api/v1/clusters/NAME */
        for (size_t i = 0; i < snap->cfg->n_clusters; i++) {
            if (strcmp(snap->clusters[i].cfg->name, r->seg[3]) == 0) {
                admin_reply_json(r, 200, api_cluster(&r->a->srv->topo, &snap->clusters[i], now_ms));
                return;
            }
        }
        admin_reply_error(r, 404, "no such cluster", r->seg[3]);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < snap->cfg->n_clusters; i++)
        json_array_append_new(list, api_cluster(&r->a->srv->topo, &snap->clusters[i], now_ms));
    admin_reply_json(r, 200, json_pack("{s:o}", "clusters", list));
}

void admin_api_listeners(struct admin_req *r)
{
    if (api_method(r, "GET"))
        return;
    const struct cfg *cfg = r->a->srv->snap->cfg;
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        json_t *routes = json_array();
        for (size_t k = 0; routes && k < l->n_routes; k++)
            json_array_append_new(routes, json_pack("{s:s, s:s?}", "name", l->routes[k].name,
                                                    "cluster", l->routes[k].cluster_name));
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:s?}", "name", l->name,
                                              "listen", l->listen, "protocol",
                                              cfg_protocol_name(l->protocol), "routes", routes,
                                              "redis_cluster", l->redis_cluster_name));
    }
    admin_reply_json(r, 200, json_pack("{s:o}", "listeners", list));
}

/* POST /api/v1/reload: the same as SIGHUP, answered with the result. */
void admin_api_reload(struct admin_req *r)
{
    if (api_method(r, "POST"))
        return;
    char err[1024];
    if (server_reload(r->a->srv, r->a->path, err, sizeof(err)) != 0) {
        admin_reply_error(r, 400, "reload rejected; the running configuration stays", err);
        return;
    }
    char aerr[512];
    if (admin_apply(r->a, aerr, sizeof(aerr)) != 0)
        log_error("%s", aerr);
    if (server_wait_adopted(r->a->srv, 1000) != 0)
        log_warn("admin: a worker has not taken the new configuration within 1 s; answering anyway");
    admin_reply_json(r, 200, json_pack("{s:s, s:i}", "result", "reloaded", "generation",
                                       (json_int_t)r->a->srv->snap->generation));
}

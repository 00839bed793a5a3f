/* api_topology: run-time endpoint changes and service registration.
 *
 *   POST   /api/v1/clusters/NAME/endpoints           {"address", "weight"?}   201
 *   PATCH  /api/v1/clusters/NAME/endpoints/ADDRESS   {"weight"?, "drain"?, "down"?}
 *   DELETE /api/v1/clusters/NAME/endpoints/ADDRESS
 *   POST   /api/v1/register                          {"cluster", "address", "ttl", "weight"?, "meta"?}
 *   PUT    /api/v1/register/CLUSTER/ADDRESS          heartbeat
 *
 * Each change is recorded in the server's topology (upstream/topology.h)
 * and published at once as a new snapshot of the running configuration
 * (server_rebuild): every worker sees it on its next request, requests in
 * flight finish on the endpoints they started with. A change that cannot
 * be published is undone, so what the API answered is what runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "core/config_parse.h"
#include "core/log.h"
#include "core/units.h"
#include "server/server.h"
#include "upstream/endpoint.h"

#define API_MAX_WEIGHT 1000

/* The request body as a JSON object, or NULL after answering 400. */
static json_t *api_body(struct admin_req *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        admin_reply_error(r, 400, "the body must be a JSON object", j ? NULL : jerr.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Rejects keys of j not in `allowed` (NULL-terminated). Returns 1 when it
 * answered 400. */
static int api_unknown_keys(struct admin_req *r, json_t *j, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            admin_reply_error(r, 400, "unknown field", key);
            return 1;
        }
    }
    return 0;
}

static const struct cfg_cluster *api_cluster_cfg(struct admin_req *r, const char *name)
{
    const struct cfg_cluster *cc = cfg_find_cluster(r->a->srv->snap->cfg, name);
    if (!cc)
        admin_reply_error(r, 404, "no such cluster", name);
    return cc;
}

/* The endpoint of the running snapshot (cluster, addr), or NULL. */
static const struct endpoint *api_running(const struct admin_req *r, const char *cluster,
                                          const struct sockaddr_storage *addr, socklen_t len)
{
    const struct snapshot *snap = r->a->srv->snap;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++) {
        const struct cluster *cl = &snap->clusters[i];
        if (strcmp(cl->cfg->name, cluster) != 0)
            continue;
        for (size_t e = 0; e < cl->n_endpoints; e++)
            if (cfg_same_addr(&cl->endpoints[e].addr, cl->endpoints[e].addrlen, addr, len))
                return &cl->endpoints[e];
    }
    return NULL;
}

static json_t *api_endpoint_json(const struct endpoint *ep, const struct topology_item *it)
{
    return json_pack("{s:s, s:i, s:b, s:b, s:b, s:b, s:s?, s:I}", "address", ep->name, "weight",
                     (json_int_t)ep->weight, "up", atomic_load(&ep->up) != 0, "draining",
                     ep->drain != 0, "down", ep->down != 0, "added", it && it->added, "meta",
                     it ? it->meta : NULL, "ttl_ms", (json_int_t)(it ? it->ttl_ms : 0));
}

/* Publishes srv->topo; on failure restores `saved` (a copy of the item
 * before the change, or an item to drop when `was_new`) and answers 500.
 * On success answers `status` with the endpoint as it now runs. */
static void api_publish(struct admin_req *r, struct topology_item *it, const struct topology_item *saved,
                        int was_new, int status)
{
    struct server *srv = r->a->srv;
    char err[256];
    char cluster[CFG_MAX_NAME + 1];
    struct sockaddr_storage addr = it->addr;
    socklen_t len = it->addrlen;
    snprintf(cluster, sizeof(cluster), "%s", it->cluster);
    if (server_rebuild(srv, err, sizeof(err)) != 0) {
        if (was_new) {
            topology_drop(&srv->topo, it);
        } else {
            it->weight = saved->weight;
            it->drain = saved->drain;
            it->down = saved->down;
            it->removed = saved->removed;
        }
        admin_reply_error(r, 500, "the change could not be published", err);
        return;
    }
    if (server_wait_adopted(srv, 1000) != 0)
        log_warn("admin: a worker has not taken the new endpoints within 1 s; answering anyway");
    const struct endpoint *ep = api_running(r, cluster, &addr, len);
    const struct topology_item *now = topology_find(&srv->topo, cluster, &addr, len);
    if (!ep) {
        admin_reply_json(r, status, json_pack("{s:s, s:s}", "cluster", cluster, "removed",
                                              now ? now->address : ""));
        return;
    }
    admin_reply_json(r, status, api_endpoint_json(ep, now));
}

/* Parses an address (HOST:PORT, numeric) for `what`. Returns 0, or 1 when
 * it answered 400. */
static int api_address(struct admin_req *r, const char *s, struct sockaddr_storage *addr,
                       socklen_t *len)
{
    if (!s || units_parse_addr(s, addr, len) != 0) {
        admin_reply_error(r, 400, "bad address: expected IPv4:port or [IPv6]:port", s);
        return 1;
    }
    return 0;
}

/* "weight" of j into *w (0 when absent). Returns 1 when it answered 400. */
static int api_weight(struct admin_req *r, json_t *j, int *w)
{
    json_t *v = json_object_get(j, "weight");
    *w = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > API_MAX_WEIGHT) {
        admin_reply_error(r, 400, "weight must be an integer 1..1000", NULL);
        return 1;
    }
    *w = (int)json_integer_value(v);
    return 0;
}

/* POST /api/v1/clusters/NAME/endpoints */
static void api_endpoint_add(struct admin_req *r, const char *cluster)
{
    static const char *const keys[] = { "address", "weight", NULL };
    json_t *j = api_body(r);
    if (!j)
        return;
    struct sockaddr_storage addr;
    socklen_t len;
    int weight;
    if (api_unknown_keys(r, j, keys) ||
        api_address(r, json_string_value(json_object_get(j, "address")), &addr, &len) ||
        api_weight(r, j, &weight))
        goto out;
    if (api_running(r, cluster, &addr, len)) {
        admin_reply_error(r, 409, "the cluster has that endpoint already", NULL);
        goto out;
    }
    struct topology_item *it = topology_find(&r->a->srv->topo, cluster, &addr, len);
    int was_new = it == NULL;
    struct topology_item saved = { 0 };
    if (!it && !(it = topology_get(&r->a->srv->topo, cluster,
                                   json_string_value(json_object_get(j, "address")), &addr, len))) {
        admin_reply_error(r, 503, "too many run-time endpoint changes or out of memory", NULL);
        goto out;
    }
    saved = *it;
    /* a file endpoint taken out with DELETE comes back; else a new one */
    int in_file = !it->added && it->removed;
    it->removed = 0;
    if (!in_file)
        it->added = 1;
    it->weight = weight;
    log_info("admin: cluster %s: endpoint %s added (weight %d)", cluster, it->address,
             weight ? weight : 1);
    api_publish(r, it, &saved, was_new, 201);
out:
    json_decref(j);
}

/* PATCH /api/v1/clusters/NAME/endpoints/ADDRESS */
static void api_endpoint_patch(struct admin_req *r, const char *cluster, const char *address,
                               const struct sockaddr_storage *addr, socklen_t len)
{
    static const char *const keys[] = { "weight", "drain", "down", NULL };
    json_t *j = api_body(r);
    if (!j)
        return;
    int weight;
    json_t *drain = json_object_get(j, "drain"), *down = json_object_get(j, "down");
    if (api_unknown_keys(r, j, keys) || api_weight(r, j, &weight))
        goto out;
    if ((drain && !json_is_boolean(drain)) || (down && !json_is_boolean(down))) {
        admin_reply_error(r, 400, "drain and down are true or false", NULL);
        goto out;
    }
    struct topology_item *it = topology_find(&r->a->srv->topo, cluster, addr, len);
    int was_new = it == NULL;
    if (!it && !(it = topology_get(&r->a->srv->topo, cluster, address, addr, len))) {
        admin_reply_error(r, 503, "too many run-time endpoint changes or out of memory", NULL);
        goto out;
    }
    struct topology_item saved = *it;
    if (weight)
        it->weight = weight;
    if (drain)
        it->drain = json_is_true(drain);
    if (down)
        it->down = json_is_true(down);
    log_info("admin: cluster %s: endpoint %s changed:%s%s%s", cluster, address,
             weight ? " weight" : "", drain ? (json_is_true(drain) ? " drain" : " undrain") : "",
             down ? (json_is_true(down) ? " down" : " up") : "");
    api_publish(r, it, &saved, was_new, 200);
out:
    json_decref(j);
}

/* DELETE /api/v1/clusters/NAME/endpoints/ADDRESS */
static void api_endpoint_delete(struct admin_req *r, const char *cluster, const char *address,
                                const struct sockaddr_storage *addr, socklen_t len)
{
    const struct snapshot *snap = r->a->srv->snap;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++) {
        if (strcmp(snap->clusters[i].cfg->name, cluster) == 0 && snap->clusters[i].n_endpoints <= 1) {
            admin_reply_error(r, 409, "the last endpoint of a cluster cannot be removed", NULL);
            return;
        }
    }
    struct topology_item *it = topology_find(&r->a->srv->topo, cluster, addr, len);
    int was_new = it == NULL;
    if (!it && !(it = topology_get(&r->a->srv->topo, cluster, address, addr, len))) {
        admin_reply_error(r, 503, "too many run-time endpoint changes or out of memory", NULL);
        return;
    }
    struct topology_item saved = *it;
    log_info("admin: cluster %s: endpoint %s removed (requests in flight on it finish)", cluster,
             address);
    if (it->added) {
        /* nothing of it is in the file: forget it whole */
        char *a = strdup(address);
        topology_drop(&r->a->srv->topo, it);
        char err[256];
        if (server_rebuild(r->a->srv, err, sizeof(err)) != 0) {
            admin_reply_error(r, 500, "the change could not be published", err);
            log_error("admin: %s; the endpoint stays removed from the next snapshot", err);
        } else {
            server_wait_adopted(r->a->srv, 1000);
            admin_reply_json(r, 200, json_pack("{s:s, s:s?}", "cluster", cluster, "removed", a));
        }
        free(a);
        return;
    }
    it->removed = 1;
    api_publish(r, it, &saved, was_new, 200);
}

/* /api/v1/clusters/NAME/endpoints[/ADDRESS] */
void admin_api_endpoints(struct admin_req *r)
{
    const char *cluster = r->seg[3];
    if (!api_cluster_cfg(r, cluster))
        return;
    if (r->n_seg == 5) {
        if (r->msg->method != HTTP_METHOD_POST) {
            r->allow = "POST";
            admin_reply_error(r, 405, "method not allowed", r->allow);
            return;
        }
        api_endpoint_add(r, cluster);
        return;
    }
    const char *address = r->seg[5];
    struct sockaddr_storage addr;
    socklen_t len;
    if (api_address(r, address, &addr, &len))
        return;
    if (!api_running(r, cluster, &addr, len)) {
        admin_reply_error(r, 404, "no such endpoint in the cluster", address);
        return;
    }
    if (r->msg->method == HTTP_METHOD_PATCH)
        api_endpoint_patch(r, cluster, address, &addr, len);
    else if (r->msg->method == HTTP_METHOD_DELETE)
        api_endpoint_delete(r, cluster, address, &addr, len);
    else {
        r->allow = "PATCH, DELETE";
        admin_reply_error(r, 405, "method not allowed", r->allow);
    }
}

/* ---- registration ---------------------------------------------------- */

/* Renews the registration it: its TTL starts again now. */
static void api_heartbeat(struct topology_item *it)
{
    it->expires_ms = endpoint_now_ms() + it->ttl_ms;
}

/* POST /api/v1/register and PUT /api/v1/register/CLUSTER/ADDRESS */
void admin_api_register(struct admin_req *r)
{
    if (r->n_seg == 5) {
        if (r->msg->method != HTTP_METHOD_PUT) {
            r->allow = "PUT";
            admin_reply_error(r, 405, "method not allowed", r->allow);
            return;
        }
        struct sockaddr_storage addr;
        socklen_t len;
        if (api_address(r, r->seg[4], &addr, &len))
            return;
        struct topology_item *it = topology_find(&r->a->srv->topo, r->seg[3], &addr, len);
        if (!it || !it->ttl_ms) {
            admin_reply_error(r, 404, "no such registration", r->seg[4]);
            return;
        }
        api_heartbeat(it);
        admin_reply_json(r, 200, json_pack("{s:s, s:s, s:I}", "cluster", it->cluster, "address",
                                           it->address, "ttl_ms", (json_int_t)it->ttl_ms));
        return;
    }
    if (r->msg->method != HTTP_METHOD_POST) {
        r->allow = "POST";
        admin_reply_error(r, 405, "method not allowed", r->allow);
        return;
    }
    static const char *const keys[] = { "cluster", "address", "ttl", "weight", "meta", NULL };
    json_t *j = api_body(r);
    if (!j)
        return;
    const char *cluster = json_string_value(json_object_get(j, "cluster"));
    const char *address = json_string_value(json_object_get(j, "address"));
    const char *ttl = json_string_value(json_object_get(j, "ttl"));
    json_t *meta = json_object_get(j, "meta");
    struct sockaddr_storage addr;
    socklen_t len;
    int weight;
    uint64_t ttl_ms;
    char *meta_text = NULL;
    if (api_unknown_keys(r, j, keys))
        goto out;
    if (!cluster) {
        admin_reply_error(r, 400, "cluster (a string) is required", NULL);
        goto out;
    }
    if (!api_cluster_cfg(r, cluster) || api_address(r, address, &addr, &len) ||
        api_weight(r, j, &weight))
        goto out;
    if (!ttl || units_parse_duration_ms(ttl, &ttl_ms) != 0 || ttl_ms < 1000 || ttl_ms > 86400000) {
        admin_reply_error(r, 400, "ttl is a duration from 1s to 24h, e.g. \"10s\"", ttl);
        goto out;
    }
    if (meta && (!(meta_text = json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY)) ||
                 strlen(meta_text) > TOPOLOGY_MAX_META)) {
        admin_reply_error(r, 400, "meta is at most 4096 bytes of JSON", NULL);
        goto out;
    }
    struct topology_item *it = topology_find(&r->a->srv->topo, cluster, &addr, len);
    if (it && it->ttl_ms) { /* registering again is a heartbeat (and may change weight/meta) */
        it->ttl_ms = ttl_ms;
        api_heartbeat(it);
        free(it->meta);
        it->meta = meta_text;
        meta_text = NULL;
        if (weight && weight != it->weight) {
            struct topology_item saved = *it;
            it->weight = weight;
            api_publish(r, it, &saved, 0, 200);
        } else {
            admin_reply_json(r, 200, json_pack("{s:s, s:s, s:I}", "cluster", cluster, "address",
                                               it->address, "ttl_ms", (json_int_t)ttl_ms));
        }
        goto out;
    }
    if (api_running(r, cluster, &addr, len)) {
        admin_reply_error(r, 409, "the cluster has that endpoint already (not registered)", NULL);
        goto out;
    }
    int was_new = it == NULL;
    if (!it && !(it = topology_get(&r->a->srv->topo, cluster, address, &addr, len))) {
        admin_reply_error(r, 503, "too many run-time endpoint changes or out of memory", NULL);
        goto out;
    }
    struct topology_item saved = *it;
    it->added = 1;
    it->removed = 0;
    it->weight = weight;
    it->ttl_ms = ttl_ms;
    free(it->meta);
    it->meta = meta_text;
    meta_text = NULL;
    api_heartbeat(it);
    log_info("admin: cluster %s: endpoint %s registered (ttl %s)", cluster, address, ttl);
    api_publish(r, it, &saved, was_new, 201);
out:
    free(meta_text);
    json_decref(j);
}

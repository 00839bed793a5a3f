/* resp_backend: see resp_backend.h.
 *
 *   sessions --resp_conn_write/push--> conn.out (chunk chain) --writev--> redis
 *                                      conn.q: msg -> msg -> msg  (waiting, in order)
 *   redis --read--> conn.in --resp_parse (reply mode)--> head msg of conn.q
 *
 * Requests from many sessions are appended to a shared connection's output
 * during one event-loop round and written together at its end
 * (resp_flush_all), so a pipeline leaves in as few writes as possible.
 * Replies come back in the order requests were written, so each complete
 * reply belongs to the msg at the head of the connection's queue.
 *
 * A connection that fails (connect error, reset, EOF, response timeout, a
 * reply that is not RESP) is closed and every msg waiting on it gets an
 * error (it is not retried elsewhere: the command may have run). This
 * worker then skips the server (replica) or fails fast (primary) until a
 * health check passes again (passive check).
 *
 * Health checks and Sentinel queries are not made here: the main thread
 * runs them once for all workers (resp_health.c) and a route reads their
 * verdicts from its cluster's shared resp_health_state: up, lag and round
 * trip per server on every command, and, when the state's version moved,
 * the primaries sentinel named and the shards auto_eject leaves out. */
#include "resp/resp_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "core/units.h"
#include "server/server.h"
#include "resp/resp_cmap.h"
#include "resp/resp_cmd.h"
#include "resp/resp_redirect.h"
#include "resp/resp_metrics.h"
#include "upstream/endpoint.h"

#define RESP_IOV_MAX 64
#define RESP_READ_ROUNDS 16

/* Replies stream through chunks, so sizes are not limited; nesting is
 * (limits.depth of the cluster). */
static const struct resp_limits resp_reply_limits = {
    .max_bulk_bytes = 1ULL << 40,
    .max_array_len = UINT32_MAX,
    .max_depth = RESP_MAX_DEPTH,
    .max_inline_bytes = 1u << 20,
};

static void resp_conn_cb(struct ev_loop *loop, ev_io *w, int revents);
static void resp_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void resp_conn_pump(struct resp_conn *c);

static struct ev_loop *resp_loop(const struct resp_wctx *rw)
{
    return rw->wc->worker.loop;
}

/* A connection to c's server broke this way: weir_redis_backend_errors_total. */
static void resp_conn_error(const struct resp_conn *c, enum resp_backend_error kind)
{
    metrics_add(c->srv->m_errors, kind, 1);
}

/* ---- servers ---- */

static struct resp_server *resp_server_find(struct resp_wctx *rw, const struct cfg_redis_server *cs)
{
    for (struct resp_server *s = rw->servers; s; s = s->next)
        if (s->addrlen == cs->addrlen && memcmp(&s->addr, &cs->addr, cs->addrlen) == 0)
            return s;
    return NULL;
}

static void resp_conn_init(struct resp_conn *c, struct resp_server *srv)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->proto = 2;
    c->srv = srv;
    c->rw = srv->rw;
    ev_init(&c->io, resp_conn_cb);
    c->io.data = c;
    ev_init(&c->timer, resp_conn_timer_cb);
    c->timer.data = c;
    resp_parser_init(&c->parser, RESP_MODE_REPLY, &srv->reply_limits, NULL, 0);
}

/* Finds or makes the server for cs, with at least n_conns connections. */
static struct resp_server *resp_server_get(struct resp_wctx *rw, const struct cfg_redis_server *cs,
                                           const struct cfg_redis_cluster *cc, int replica)
{
    struct resp_server *s = resp_server_find(rw, cs);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return NULL;
        s->rw = rw;
        memcpy(&s->addr, &cs->addr, cs->addrlen);
        s->addrlen = cs->addrlen;
        snprintf(s->name, sizeof(s->name), "%s", cs->address);
        s->next = rw->servers;
        rw->servers = s;
    }
    s->is_replica = replica;
    s->connect_timeout_ms = cc->connect_timeout_ms;
    s->response_timeout_ms = cc->response_timeout_ms;
    s->max_blocking = cc->max_blocking;
    s->reply_limits = resp_reply_limits;
    s->reply_limits.max_depth = cc->max_depth;
    if (s->n_conns < cc->connections) {
        struct resp_conn *nc = calloc(cc->connections, sizeof(*nc));
        if (!nc)
            return NULL;
        /* existing connections may be in use (watchers point at them): keep
         * the old array's connections working by re-pointing is not possible,
         * so only grow an array that is entirely idle */
        int busy = 0;
        for (uint32_t i = 0; i < s->n_conns; i++)
            busy |= s->conns[i].fd >= 0 || s->conns[i].n_q > 0;
        if (busy) {
            free(nc);
            return s;
        }
        free(s->conns);
        s->conns = nc;
        s->n_conns = cc->connections;
        for (uint32_t i = 0; i < s->n_conns; i++)
            resp_conn_init(&s->conns[i], s);
    }
    return s;
}

struct resp_server *resp_server_at(struct resp_wctx *rw, const char *address,
                                   const struct resp_server *like)
{
    struct cfg_redis_server cs = { .address = (char *)address };
    if (units_parse_addr(address, &cs.addr, &cs.addrlen) < 0)
        return NULL;
    struct resp_server *s = resp_server_find(rw, &cs);
    if (s)
        return s;
    if (!(s = calloc(1, sizeof(*s))) || !(s->conns = calloc(like->n_conns, sizeof(*s->conns)))) {
        free(s);
        return NULL;
    }
    s->rw = rw;
    memcpy(&s->addr, &cs.addr, cs.addrlen);
    s->addrlen = cs.addrlen;
    snprintf(s->name, sizeof(s->name), "%s", address);
    s->n_conns = like->n_conns;
    for (uint32_t i = 0; i < s->n_conns; i++)
        resp_conn_init(&s->conns[i], s);
    s->readonly = like->readonly;
    s->connect_timeout_ms = like->connect_timeout_ms;
    s->response_timeout_ms = like->response_timeout_ms;
    s->max_blocking = like->max_blocking;
    s->reply_limits = like->reply_limits;
    s->next = rw->servers;
    rw->servers = s;
    return s;
}

/* ---- routes ---- */


/* Sentinel named another primary for shard i of r: switches to it. */
static int resp_route_switch(struct resp_wctx *rw, struct resp_route *r, uint32_t i,
                             const char *address)
{
    const struct cfg_redis_cluster *cc = r->cfg;
    struct cfg_redis_server cs = { .address = (char *)address };
    struct resp_shard_srv *ss = &r->shards[i];
    if (units_parse_addr(address, &cs.addr, &cs.addrlen) < 0)
        return -EINVAL;
    if (ss->primary->addrlen == cs.addrlen && memcmp(&ss->primary->addr, &cs.addr, cs.addrlen) == 0)
        return 0;
    char *master = strdup(cc->sentinel_masters[i]);
    struct resp_server *np = master ? resp_server_get(rw, &cs, cc, 0) : NULL;
    if (!np) {
        free(master);
        return -ENOMEM;
    }
    log_debug("redis cluster %s: worker %u sends shard '%s' (master '%s') to %s (was %s)",
              cc->name, rw->wc->worker.id, cc->shards[i].name, master, np->name, ss->primary->name);
    free(ss->sentinel_master);
    ss->sentinel_master = master;
    np->m_errors = ss->primary->m_errors;
    ss->primary = np;
    return 1;
}

static void resp_route_shards_free(struct resp_route *r)
{
    if (r->shards)
        for (size_t s = 0; s < r->n_shards; s++) {
            free(r->shards[s].replicas);
            free(r->shards[s].sentinel_master);
        }
    free(r->shards);
    r->shards = NULL;
    r->n_shards = 0;
}

static void resp_routes_free(struct resp_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        resp_cmap_unref(routes[i].cmap);
        resp_dist_free(&routes[i].dist);
        resp_route_shards_free(&routes[i]);
        free(routes[i].live);
        resp_health_state_unref(routes[i].hs);
    }
    free(routes);
}

static int resp_route_build(struct resp_wctx *rw, struct resp_route *r,
                            const struct cfg_redis_cluster *cc, struct resp_health_state *hs,
                            const struct snapshot *snap, size_t ci)
{
    r->cfg = cc;
    r->hs = hs;
    resp_health_state_ref(hs);
    snprintf(r->name, sizeof(r->name), "%s", cc->name);
    if (cc->n_seeds > 0) { /* the shards come with the slot map (resp_route_cmap) */
        r->cmap_version = UINT64_MAX;
        return 0;
    }
    if (resp_dist_init(&r->dist, cc, NULL) < 0)
        return -ENOMEM;
    r->shards = calloc(cc->n_shards, sizeof(*r->shards));
    r->live = malloc(cc->n_shards);
    if (!r->shards || !r->live)
        return -ENOMEM;
    r->n_shards = (uint32_t)cc->n_shards;
    memset(r->live, 1, cc->n_shards);
    for (size_t i = 0; i < cc->n_shards; i++) {
        const struct cfg_redis_shard *sh = &cc->shards[i];
        struct resp_shard_srv *ss = &r->shards[i];
        struct metric_series *errs = resp_metrics_shard_errors(snap, ci, i);
        ss->primary = resp_server_get(rw, &sh->primary, cc, 0);
        if (!ss->primary)
            return -ENOMEM;
        ss->primary->m_errors = errs;
        if (sh->n_replicas == 0)
            continue;
        ss->replicas = calloc(sh->n_replicas, sizeof(*ss->replicas));
        if (!ss->replicas)
            return -ENOMEM;
        ss->n_replicas = (uint32_t)sh->n_replicas;
        for (size_t k = 0; k < sh->n_replicas; k++) {
            if (!(ss->replicas[k] = resp_server_get(rw, &sh->replicas[k], cc, 1)))
                return -ENOMEM;
            ss->replicas[k]->m_errors = errs;
        }
    }
    return 0;
}

static void resp_route_eject(struct resp_wctx *rw, struct resp_route *r);

/* The servers of a slot map node into ss. Returns 0 or -ENOMEM. */
static int resp_route_node(struct resp_wctx *rw, const struct cfg_redis_cluster *cc,
                           struct resp_shard_srv *ss, const struct resp_cmap_node *nd)
{
    int readonly = cc->read_from != CFG_REDIS_READ_PRIMARY;
    if (!(ss->primary = resp_server_get(rw, &nd->primary, cc, 0)))
        return -ENOMEM;
    ss->primary->readonly = (uint8_t)readonly;
    if (nd->n_replicas == 0)
        return 0;
    if (!(ss->replicas = calloc(nd->n_replicas, sizeof(*ss->replicas))))
        return -ENOMEM;
    for (size_t k = 0; k < nd->n_replicas; k++) {
        if (!(ss->replicas[ss->n_replicas] = resp_server_get(rw, &nd->replicas[k], cc, 1)))
            return -ENOMEM;
        ss->replicas[ss->n_replicas++]->readonly = (uint8_t)readonly;
    }
    return 0;
}

/* A Redis Cluster backend: takes the newest slot map the main thread
 * published (a lock only when it changed) and makes its primaries the
 * route's shards. Keeps the old map when out of memory. */
static void resp_route_cmap(struct resp_wctx *rw, struct resp_route *r)
{
    uint64_t v = atomic_load_explicit(&r->hs->cmap_version, memory_order_acquire);
    if (v == r->cmap_version)
        return;
    struct resp_cmap *m = resp_cmap_get(r->hs);
    if (!m) {
        r->cmap_version = v;
        return;
    }
    struct resp_shard_srv *shards = calloc(m->n_nodes, sizeof(*shards));
    int rc = shards ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < m->n_nodes; i++)
        rc = resp_route_node(rw, r->cfg, &shards[i], &m->nodes[i]);
    if (rc < 0) {
        for (size_t i = 0; shards && i < m->n_nodes; i++)
            free(shards[i].replicas);
        free(shards);
        resp_cmap_unref(m);
        return; /* tried again with the next command */
    }
    resp_route_shards_free(r);
    resp_cmap_unref(r->cmap);
    r->cmap = m;
    r->shards = shards;
    r->n_shards = (uint32_t)m->n_nodes;
    r->cmap_version = v;
}

/* Follows what the main thread's checks learnt since r last looked: the
 * primaries sentinel named, and (auto_eject) which shards are in; for a
 * Redis Cluster backend, its slot map. */
static void resp_route_refresh(struct resp_wctx *rw, struct resp_route *r)
{
    if (r->cfg->n_seeds > 0) {
        resp_route_cmap(rw, r);
        return;
    }
    uint64_t v = atomic_load_explicit(&r->hs->version, memory_order_acquire);
    if (v == r->hs_version)
        return;
    r->hs_version = v;
    for (uint32_t i = 0; r->cfg->sentinel_masters && i < r->n_shards; i++) {
        char addr[RESP_HEALTH_ADDR_MAX];
        resp_health_sentinel_addr(r->hs, i, addr, sizeof(addr));
        if (addr[0] && resp_route_switch(rw, r, i, addr) == -ENOMEM)
            r->hs_version = 0; /* try again with the next command */
    }
    resp_route_eject(rw, r);
}

static void resp_routes_refresh(struct resp_wctx *rw)
{
    for (size_t i = 0; i < rw->n_routes; i++)
        resp_route_refresh(rw, &rw->routes[i]);
}

int resp_routes_sync(struct resp_wctx *rw)
{
    struct snapshot *snap = rw->wc->snap;
    if (rw->snap == snap) {
        resp_routes_refresh(rw);
        return 0;
    }
    const struct cfg *cfg = snap->cfg;
    struct resp_route *routes = calloc(cfg->n_redis_clusters ? cfg->n_redis_clusters : 1,
                                       sizeof(*routes));
    if (!routes)
        return -ENOMEM;
    /* the servers' error series are snap's from now on (the old snapshot
     * may go); a server left out of every cluster counts nowhere */
    for (struct resp_server *sv = rw->servers; sv; sv = sv->next)
        sv->m_errors = NULL;
    for (size_t i = 0; i < cfg->n_redis_clusters; i++) {
        if (resp_route_build(rw, &routes[i], &cfg->redis_clusters[i],
                             ((struct resp_snap *)snap->proto[CFG_PROTOCOL_REDIS])->health[i],
                             snap, i) < 0) {
            resp_routes_free(routes, i + 1);
            for (struct resp_server *sv = rw->servers; sv; sv = sv->next)
                sv->m_errors = NULL; /* snap is not held: count nowhere until the next sync */
            log_error("worker %u: out of memory building redis routes; keeping the old ones",
                      rw->wc->worker.id);
            return -ENOMEM;
        }
    }
    resp_routes_free(rw->routes, rw->n_routes);
    rw->routes = routes;
    rw->n_routes = cfg->n_redis_clusters;
    /* the routes point into snap's configuration: hold it while they do */
    snapshot_ref(snap);
    if (rw->snap)
        snapshot_unref(rw->snap);
    rw->snap = snap;
    rw->routes_gen++;
    resp_routes_refresh(rw);
    return 0;
}

struct resp_route *resp_route_get(struct resp_wctx *rw, const char *name)
{
    for (size_t i = 0; i < rw->n_routes; i++)
        if (strcmp(rw->routes[i].cfg->name, name) == 0)
            return &rw->routes[i];
    return NULL;
}

/* The shared verdict on ss's primary (or replica k), with this worker's
 * own failures. */
static int resp_primary_usable(const struct resp_route *r, uint32_t shard)
{
    return resp_health_usable(&r->hs->shards[shard].primary, r->shards[shard].primary->failed_ms);
}

static int resp_replica_usable(const struct resp_route *r, uint32_t shard, uint32_t k)
{
    const struct resp_health_slot *slot = &r->hs->shards[shard].replicas[k];
    return resp_health_usable(slot, r->shards[shard].replicas[k]->failed_ms) &&
           atomic_load_explicit(&slot->lag_ok, memory_order_relaxed);
}

static uint64_t resp_slot_ewma(const struct resp_health_slot *slot)
{
    return atomic_load_explicit(&slot->ewma_us, memory_order_relaxed);
}

int resp_route_shard(const struct resp_route *r, const char *key, size_t len)
{
    if (r->cfg->n_seeds > 0)
        return (int)rcluster_slot(key, len);
    return resp_dist_shard(&r->dist, key, len);
}

uint32_t resp_route_index(const struct resp_route *r, uint32_t shard)
{
    if (r->cfg->n_seeds == 0)
        return shard;
    if (!r->cmap || shard >= RCLUSTER_SLOTS || r->cmap->slot_node[shard] == RESP_CMAP_NONE)
        return UINT32_MAX;
    return r->cmap->slot_node[shard];
}

uint32_t resp_route_fan(const struct resp_route *r, uint32_t i)
{
    return r->cmap ? r->cmap->nodes[i].first_slot : i;
}

/* A Redis Cluster node this worker may read from: no connection to it
 * failed in the last second (the cluster itself says who serves a slot). */
static int resp_node_usable(const struct resp_server *s)
{
    return s->failed_ms == 0 || endpoint_now_ms() - s->failed_ms > 1000;
}

/* A Redis Cluster backend: the primary serving `slot`, or for a read one of
 * its replicas by read_from. NULL when no node serves the slot (yet). */
static struct resp_server *resp_route_slot_server(struct resp_route *r, uint32_t slot, int read)
{
    if (!r->cmap || slot >= RCLUSTER_SLOTS || r->cmap->slot_node[slot] == RESP_CMAP_NONE)
        return NULL;
    struct resp_shard_srv *ss = &r->shards[r->cmap->slot_node[slot]];
    if (!read || ss->n_replicas == 0 || r->cfg->read_from == CFG_REDIS_READ_PRIMARY)
        return ss->primary;
    uint32_t n = ss->n_replicas + (r->cfg->read_from == CFG_REDIS_READ_PREFER_REPLICA ? 0 : 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (ss->rr + i) % n;
        struct resp_server *srv = k < ss->n_replicas ? ss->replicas[k] : ss->primary;
        if (resp_node_usable(srv)) {
            ss->rr = (k + 1) % n;
            return srv;
        }
    }
    return ss->primary;
}

struct resp_server *resp_route_server(struct resp_route *r, uint32_t shard, int read)
{
    if (r->cfg->n_seeds > 0)
        return resp_route_slot_server(r, shard, read);
    struct resp_shard_srv *ss = &r->shards[shard];
    const struct resp_health_shard *hs = &r->hs->shards[shard];
    int primary_up = resp_primary_usable(r, shard);
    struct resp_server *best = NULL;
    uint64_t best_us = 0;

    if (!read || ss->n_replicas == 0 || r->cfg->read_from == CFG_REDIS_READ_PRIMARY)
        return primary_up ? ss->primary : NULL;
    switch (r->cfg->read_from) {
    case CFG_REDIS_READ_PREFER_REPLICA:
        for (uint32_t i = 0; i < ss->n_replicas; i++) {
            uint32_t k = (ss->rr + i) % ss->n_replicas;
            if (resp_replica_usable(r, shard, k)) {
                ss->rr = (k + 1) % ss->n_replicas;
                return ss->replicas[k];
            }
        }
        break;
    case CFG_REDIS_READ_ROUND_ROBIN:
        for (uint32_t i = 0; i <= ss->n_replicas; i++) {
            uint32_t k = (ss->rr + i) % (ss->n_replicas + 1);
            if (k == 0 ? primary_up : resp_replica_usable(r, shard, k - 1)) {
                ss->rr = (k + 1) % (ss->n_replicas + 1);
                return k == 0 ? ss->primary : ss->replicas[k - 1];
            }
        }
        return NULL;
    case CFG_REDIS_READ_LEAST_LATENCY:
        if (primary_up) {
            best = ss->primary;
            best_us = resp_slot_ewma(&hs->primary);
        }
        for (uint32_t i = 0; i < ss->n_replicas; i++) {
            uint64_t us = resp_slot_ewma(&hs->replicas[i]);
            if (resp_replica_usable(r, shard, i) && (!best || us < best_us)) {
                best = ss->replicas[i];
                best_us = us;
            }
        }
        return best;
    default:
        break;
    }
    return primary_up ? ss->primary : NULL;
}

/* ---- connections ---- */

/* m leaves its connection's queue: a blocking command no longer waits. */
static void resp_msg_unqueued(struct resp_wctx *rw, struct resp_msg *m)
{
    if (m->blocking) {
        m->blocking = 0;
        resp_stat_add(&rw->stats->blocked, -1);
        if (m->s)
            resp_session_blocked(m->s, -1);
    }
}

static void resp_conn_watch(struct resp_conn *c)
{
    struct ev_loop *loop = resp_loop(c->rw);
    int ev = 0;
    if (c->state == RESP_CONN_CONNECTING)
        ev = EV_WRITE;
    else if (c->state == RESP_CONN_UP) {
        ev = EV_READ;
        if (c->out_head && !c->writable)
            ev |= EV_WRITE;
    }
    if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == ev)
        return;
    if (ev_is_active(&c->io))
        ev_io_stop(loop, &c->io);
    if (ev && c->fd >= 0) {
        ev_io_set(&c->io, c->fd, ev);
        ev_io_start(loop, &c->io);
    }
}

/* True when a blocking command (which may legitimately wait forever) is
 * among what c waits for: only a dedicated connection carries those. */
static int resp_conn_waits_blocking(const struct resp_conn *c)
{
    if (!c->dedicated)
        return 0;
    for (const struct resp_msg *m = c->q_head; m; m = m->bnext)
        if (m->blocking)
            return 1;
    return 0;
}

/* Arms the timer: connect timeout while connecting, response timeout while
 * replies are awaited (except behind a blocking command: a streamed command
 * or a transaction on a dedicated connection is timed out too), else off. */
static void resp_conn_arm(struct resp_conn *c)
{
    struct ev_loop *loop = resp_loop(c->rw);
    uint64_t ms = 0;
    if (c->state == RESP_CONN_CONNECTING)
        ms = c->srv->connect_timeout_ms;
    else if (c->n_q > 0 && !resp_conn_waits_blocking(c))
        ms = c->srv->response_timeout_ms;
    if (ms == 0) {
        ev_timer_stop(loop, &c->timer);
        return;
    }
    c->timer.repeat = (double)ms / 1000.0;
    ev_timer_again(loop, &c->timer);
}

static int resp_conn_connect(struct resp_conn *c)
{
    struct resp_server *s = c->srv;
    int fd = net_connect((const struct sockaddr *)&s->addr, s->addrlen);
    if (fd < 0) {
        resp_conn_error(c, RESP_BERR_CONNECT);
        return fd;
    }
    c->fd = fd;
    c->state = RESP_CONN_CONNECTING;
    c->readable = c->writable = 0;
    resp_conn_watch(c);
    resp_conn_arm(c);
    if (c->proto == 3) { /* first of all; its reply is dropped (an orphan msg) */
        static const char hello[] = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";
        struct resp_msg *m = resp_msg_get(c->rw);
        if (!m || resp_conn_write(c, hello, sizeof(hello) - 1) < 0) {
            if (m)
                resp_msg_put(c->rw, m);
            resp_conn_fail(c, "out of memory");
            return -ENOMEM;
        }
        resp_conn_push(c, m);
    }
    if (c->srv->readonly) { /* a Redis Cluster replica serves reads only after it */
        static const char ro[] = "*1\r\n$8\r\nREADONLY\r\n";
        struct resp_msg *m = resp_msg_get(c->rw);
        if (!m || resp_conn_write(c, ro, sizeof(ro) - 1) < 0) {
            if (m)
                resp_msg_put(c->rw, m);
            resp_conn_fail(c, "out of memory");
            return -ENOMEM;
        }
        resp_conn_push(c, m);
    }
    return 0;
}

/* auto_eject: the distribution of r leaves out the shards whose primary is
 * down (all in when every one is). Keeps the old one when out of memory. */
static void resp_route_eject(struct resp_wctx *rw, struct resp_route *r)
{
    const struct cfg_redis_cluster *cc = r->cfg;
    uint32_t n_live = 0, changed = 0;
    if (!cc->auto_eject)
        return;
    uint8_t *live = malloc(r->n_shards);
    if (!live)
        return;
    for (uint32_t i = 0; i < r->n_shards; i++) {
        live[i] = (uint8_t)(atomic_load_explicit(&r->hs->shards[i].primary.up, memory_order_relaxed) != 0);
        n_live += live[i];
        changed += live[i] != r->live[i];
    }
    struct resp_dist d;
    if (!changed || resp_dist_init(&d, cc, n_live ? live : NULL) < 0) {
        free(live);
        return;
    }
    for (uint32_t i = 0; i < r->n_shards; i++)
        if (live[i] != r->live[i])
            log_debug("redis cluster %s: worker %u: shard '%s' %s (auto_eject)", cc->name,
                      rw->wc->worker.id, cc->shards[i].name, live[i] ? "back in" : "left out");
    resp_dist_free(&r->dist);
    r->dist = d;
    free(r->live);
    r->live = live;
}

/* A data connection to s failed: this worker skips s (a replica) or fails
 * its commands fast (a primary) until the main thread's next check of s
 * passes. */
static void resp_server_down(struct resp_server *s, const char *why)
{
    uint64_t now = endpoint_now_ms();
    if (s->failed_ms == 0 || now - s->failed_ms > 1000) /* at most once a second */
        log_warn("redis server %s failed (%s): worker %u skips it until a health check passes",
                 s->name, why, s->rw->wc->worker.id);
    s->failed_ms = now ? now : 1;
}

/* Closes c; every msg waiting on it fails. */
void resp_conn_fail(struct resp_conn *c, const char *why)
{
    struct resp_wctx *rw = c->rw;
    struct ev_loop *loop = resp_loop(rw);
    char text[256];

    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = RESP_CONN_IDLE;
    resp_chunks_free(rw, c->out_head);
    c->out_head = c->out_tail = NULL;
    c->out_bytes = 0;
    c->owner_waits = 0;
    buf_release(&rw->wc->bufs, &c->in);
    resp_parser_reset(&c->parser);
    if (c->push) {
        resp_msg_put(rw, c->push);
        c->push = NULL;
    }
    if (c->pubsub && c->owner)
        resp_session_lost(c->owner);
    if (!c->dedicated)
        resp_server_down(c->srv, why);
    snprintf(text, sizeof(text), "weir: connection to redis %s failed (%s)", c->srv->name, why);
    struct resp_msg *m = c->q_head;
    c->q_head = c->q_tail = NULL;
    c->n_q = 0;
    while (m) {
        struct resp_msg *next = m->bnext;
        m->bnext = NULL;
        m->in_backend = 0;
        m->conn = NULL;
        m->backend_err = 1;
        resp_msg_unqueued(rw, m);
        if (c->dedicated || !resp_redirect_lost(rw, m)) /* Redis Cluster: tried again */
            resp_msg_fail(rw, m, text);
        m = next;
    }
    /* sessions are pumped by the callback that got here (never nested) */
}

void resp_conn_cancel(struct resp_conn *c, const char *reply, size_t len)
{
    struct resp_msg *m = c->q_head;
    if (!m || !m->blocking)
        return;
    c->q_head = m->bnext;
    if (!c->q_head)
        c->q_tail = NULL;
    c->n_q--;
    m->bnext = NULL;
    m->in_backend = 0;
    m->conn = NULL;
    resp_msg_unqueued(c->rw, m);
    resp_conn_fail(c, "a blocking command before it was cancelled (CLIENT UNBLOCK)");
    if (!m->s && !m->parent) {
        resp_msg_put(c->rw, m);
        return;
    }
    if (resp_msg_append(c->rw, m, reply, len) < 0)
        resp_msg_fail(c->rw, m, "weir: out of memory");
    else
        resp_msg_complete(c->rw, m, (uint8_t)reply[0], -1);
}

struct resp_conn *resp_server_conn(struct resp_server *srv)
{
    struct resp_conn *c = &srv->conns[srv->rr++ % srv->n_conns];
    if (c->state == RESP_CONN_IDLE && resp_conn_connect(c) < 0) {
        resp_server_down(srv, "connect failed");
        return NULL;
    }
    srv->commands++;
    return c;
}

struct resp_conn *resp_server_conn3(struct resp_server *srv)
{
    struct resp_conn *c = srv->conn3;
    if (!c) {
        if (!(c = malloc(sizeof(*c))))
            return NULL;
        resp_conn_init(c, srv);
        c->proto = 3;
        srv->conn3 = c;
    }
    if (c->state == RESP_CONN_IDLE && resp_conn_connect(c) < 0) {
        resp_server_down(srv, "connect failed");
        return NULL;
    }
    srv->commands++;
    return c;
}

struct resp_conn *resp_conn_dedicated(struct resp_server *srv, struct resp_session *owner,
                                      int proto)
{
    struct resp_wctx *rw = srv->rw;
    if (rw->n_blocking >= srv->max_blocking)
        return NULL;
    struct resp_conn *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    resp_conn_init(c, srv);
    c->dedicated = 1;
    c->owner = owner;
    c->proto = (uint8_t)proto;
    if (resp_conn_connect(c) < 0) {
        free(c);
        return NULL;
    }
    rw->n_blocking++;
    srv->commands++;
    return c;
}

/* Unlinks c from the flush list if it is there. */
static void resp_flush_unlink(struct resp_conn *c)
{
    if (!c->in_flush_list)
        return;
    for (struct resp_conn **pp = &c->rw->flush_list; *pp; pp = &(*pp)->flush_next)
        if (*pp == c) {
            *pp = c->flush_next;
            break;
        }
    c->in_flush_list = 0;
}

static void resp_conn_release(struct resp_conn *c)
{
    struct resp_wctx *rw = c->rw;
    struct ev_loop *loop = resp_loop(rw);
    if (loop) { /* NULL at worker exit: the loop is gone with its watchers */
        ev_io_stop(loop, &c->io);
        ev_timer_stop(loop, &c->timer);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    resp_flush_unlink(c);
    resp_chunks_free(rw, c->out_head);
    c->out_head = c->out_tail = NULL;
    c->out_bytes = 0;
    buf_release(&rw->wc->bufs, &c->in);
    if (c->push) {
        resp_msg_put(rw, c->push);
        c->push = NULL;
    }
    for (struct resp_msg *m = c->q_head; m;) {
        struct resp_msg *next = m->bnext;
        m->in_backend = 0;
        m->conn = NULL;
        m->s = NULL;
        resp_msg_unqueued(rw, m);
        if (!m->parent)
            resp_msg_put(rw, m); /* a fragment is its command's to free */
        m = next;
    }
    c->q_head = c->q_tail = NULL;
    c->n_q = 0;
}

void resp_conn_close_dedicated(struct resp_conn *c)
{
    c->rw->n_blocking--;
    resp_conn_release(c);
    free(c);
}

void resp_conn_retire(struct resp_conn *c)
{
    c->owner = NULL;
    c->owner_waits = 0;
    c->retired = 1;
    c->retired_next = c->rw->retired;
    c->rw->retired = c;
}

void resp_conn_reap(struct resp_wctx *rw)
{
    struct resp_conn **pp = &rw->retired;
    while (*pp) {
        struct resp_conn *c = *pp;
        if (c->n_q > 0 && c->state != RESP_CONN_IDLE) {
            pp = &c->retired_next;
            continue;
        }
        *pp = c->retired_next;
        resp_conn_close_dedicated(c);
    }
}

int resp_conn_write(struct resp_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        struct resp_chunk *t = c->out_tail;
        if (!t || t->len == RESP_CHUNK_DATA) {
            t = resp_chunk_get(c->rw);
            if (!t)
                return -ENOMEM;
            if (c->out_tail)
                c->out_tail->next = t;
            else
                c->out_head = t;
            c->out_tail = t;
        }
        size_t n = RESP_CHUNK_DATA - t->len;
        if (n > len)
            n = len;
        memcpy(t->data + t->len, p, n);
        t->len += (uint32_t)n;
        c->out_bytes += n;
        p += n;
        len -= n;
    }
    if (!c->in_flush_list) {
        c->in_flush_list = 1;
        c->flush_next = c->rw->flush_list;
        c->rw->flush_list = c;
    }
    return 0;
}

void resp_conn_push(struct resp_conn *c, struct resp_msg *m)
{
    m->bnext = NULL;
    m->conn = c;
    m->in_backend = 1;
    m->t_sent = ev_now(resp_loop(c->rw));
    if (c->q_tail)
        c->q_tail->bnext = m;
    else
        c->q_head = m;
    c->q_tail = m;
    if (c->n_q++ == 0)
        resp_conn_arm(c);
}

/* Writes c's output. Returns 0, or -1 after failing c. */
static int resp_conn_send(struct resp_conn *c)
{
    while (c->out_head && c->state == RESP_CONN_UP) {
        struct iovec iov[RESP_IOV_MAX];
        int n = 0;
        for (struct resp_chunk *k = c->out_head; k && n < RESP_IOV_MAX; k = k->next) {
            iov[n].iov_base = k->data + k->pos;
            iov[n].iov_len = k->len - k->pos;
            n++;
        }
        ssize_t w;
        do {
            w = writev(c->fd, iov, n);
        } while (w == -1 && errno == EINTR);
        if (w == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->writable = 0;
                return 0;
            }
            resp_conn_error(c, RESP_BERR_CLOSED);
            resp_conn_fail(c, strerror(errno));
            return -1;
        }
        size_t left = (size_t)w;
        c->out_bytes -= left;
        if (c->dedicated && c->n_q > 0) /* a long stream: the wait starts at its end */
            resp_conn_arm(c);
        while (left > 0 && c->out_head) {
            struct resp_chunk *k = c->out_head;
            size_t avail = k->len - k->pos;
            if (left < avail) {
                k->pos += (uint32_t)left;
                break;
            }
            left -= avail;
            c->out_head = k->next;
            if (!c->out_head)
                c->out_tail = NULL;
            resp_chunk_put(c->rw, k);
        }
    }
    if (c->owner_waits && c->out_bytes < RESP_STREAM_LOW_BYTES) {
        c->owner_waits = 0;
        resp_session_wake(c->owner);
    }
    return 0;
}

void resp_flush_all(struct resp_wctx *rw)
{
    while (rw->flush_list) {
        struct resp_conn *c = rw->flush_list;
        rw->flush_list = c->flush_next;
        c->in_flush_list = 0;
        c->writable = 1;
        if (c->state == RESP_CONN_UP && resp_conn_send(c) < 0)
            continue;
        resp_conn_watch(c);
    }
}

/* ---- replies ---- */

/* Hands the reply bytes data[0..n) to the head msg; `whole` when they are
 * one complete reply that started in this piece. */
static void resp_conn_deliver(struct resp_conn *c, const char *data, size_t n, int whole)
{
    struct resp_wctx *rw = c->rw;
    struct resp_msg *m = c->q_head;
    struct resp_parser *p = &c->parser;

    if (!c->parser.done) {
        if (!m->s)
            return; /* orphan: drop */
        if (resp_msg_append(rw, m, data, n) < 0)
            m->s = NULL; /* out of memory: the client will be closed */
        return;
    }
    c->q_head = m->bnext;
    if (!c->q_head)
        c->q_tail = NULL;
    c->n_q--;
    m->bnext = NULL;
    m->in_backend = 0;
    m->conn = NULL;
    resp_msg_unqueued(rw, m);
    uint8_t type = p->type;
    int64_t value = type == ':' ? p->int_value : p->top_len;
    if (!m->s && !m->parent) {
        resp_msg_put(rw, m);
        return;
    }
    if (type == '-' && whole && m->req && resp_redirect(c, m, data, n))
        return; /* MOVED / ASK: sent again, to the node named */
    if (whole && resp_msg_direct(rw, m, data, n, type, value))
        return;
    if (resp_msg_append(rw, m, data, n) < 0)
        resp_msg_fail(rw, m, "weir: out of memory");
    else
        resp_msg_complete(rw, m, type, value);
}

/* A pubsub connection's message bytes data[0..n): gathered, and handed to
 * the owner when complete. Returns 0 or -ENOMEM. */
static int resp_conn_deliver_push(struct resp_conn *c, const char *data, size_t n)
{
    struct resp_wctx *rw = c->rw;
    if (!c->push && !(c->push = resp_msg_get(rw)))
        return -ENOMEM;
    if (resp_msg_append(rw, c->push, data, n) < 0)
        return -ENOMEM;
    if (!c->parser.done)
        return 0;
    struct resp_msg *m = c->push;
    c->push = NULL;
    m->reply_type = c->parser.type;
    m->value = c->parser.top_len;
    if (c->owner)
        resp_session_pushed(c->owner, m);
    else
        resp_msg_put(rw, m);
    return 0;
}

/* Parses what c->in holds. Returns 0 or -1 after failing c. */
static int resp_conn_process(struct resp_conn *c)
{
    while (buf_len(&c->in) > 0) {
        if (!c->q_head && c->pubsub) { /* not a reply: a message for the owner */
            ssize_t n = resp_parse(&c->parser, buf_rptr(&c->in), buf_len(&c->in));
            if (n < 0 || resp_conn_deliver_push(c, buf_rptr(&c->in), (size_t)n) < 0) {
                if (n < 0)
                    resp_conn_error(c, RESP_BERR_PROTOCOL);
                resp_conn_fail(c, n < 0 ? resp_error_text((enum resp_error)c->parser.err)
                                        : "out of memory");
                return -1;
            }
            buf_consume(&c->in, (size_t)n);
            if (c->parser.done)
                resp_parser_reset(&c->parser);
            continue;
        }
        if (!c->q_head) {
            resp_conn_error(c, RESP_BERR_PROTOCOL);
            resp_conn_fail(c, "reply without a request");
            return -1;
        }
        int fresh = c->parser.off == 0;
        ssize_t n = resp_parse(&c->parser, buf_rptr(&c->in), buf_len(&c->in));
        if (n < 0) {
            resp_conn_error(c, RESP_BERR_PROTOCOL);
            resp_conn_fail(c, resp_error_text((enum resp_error)c->parser.err));
            return -1;
        }
        resp_conn_deliver(c, buf_rptr(&c->in), (size_t)n, fresh);
        buf_consume(&c->in, (size_t)n);
        if (c->parser.done)
            resp_parser_reset(&c->parser);
    }
    buf_release_if_empty(&c->rw->wc->bufs, &c->in);
    return 0;
}

/* Reads and processes replies. Returns 0 or -1 after failing c. */
static int resp_conn_recv(struct resp_conn *c)
{
    struct resp_wctx *rw = c->rw;
    for (int round = 0; round < RESP_READ_ROUNDS && c->readable; round++) {
        if (buf_acquire(&rw->wc->bufs, &c->in) < 0) {
            resp_conn_fail(c, "out of memory");
            return -1;
        }
        size_t space = rw->wc->bufs.block_size - c->in.wpos;
        ssize_t n;
        do {
            n = read(c->fd, buf_wptr(&c->in), space);
        } while (n == -1 && errno == EINTR);
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->readable = 0;
            buf_release_if_empty(&rw->wc->bufs, &c->in);
            return 0;
        }
        if (n <= 0) {
            resp_conn_error(c, RESP_BERR_CLOSED);
            resp_conn_fail(c, n == 0 ? "closed by the server" : strerror(errno));
            return -1;
        }
        if ((size_t)n < space)
            c->readable = 0;
        c->in.wpos += (uint32_t)n;
        if (resp_conn_process(c) < 0)
            return -1;
        if (c->n_q > 0)
            resp_conn_arm(c);
        else
            ev_timer_stop(resp_loop(rw), &c->timer);
    }
    return 0;
}

static void resp_conn_pump(struct resp_conn *c)
{
    if (c->state == RESP_CONN_CONNECTING) {
        if (!c->writable)
            return;
        int err = net_connect_result(c->fd);
        if (err != 0) {
            resp_conn_error(c, RESP_BERR_CONNECT);
            resp_conn_fail(c, strerror(-err));
            return;
        }
        c->state = RESP_CONN_UP;
        resp_conn_arm(c);
    }
    if (c->state != RESP_CONN_UP)
        return;
    if (c->out_head && c->writable && resp_conn_send(c) < 0)
        return;
    if (c->readable && resp_conn_recv(c) < 0)
        return;
    resp_conn_watch(c);
}

static void resp_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct resp_conn *c = w->data;
    struct resp_wctx *rw = c->rw;
    if (revents & EV_READ)
        c->readable = 1;
    if (revents & EV_WRITE)
        c->writable = 1;
    resp_conn_pump(c);
    resp_run_dirty(rw);
    resp_flush_all(rw);
}

static void resp_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_conn *c = w->data;
    struct resp_wctx *rw = c->rw;
    ev_timer_stop(loop, w);
    int connecting = c->state == RESP_CONN_CONNECTING;
    resp_conn_error(c, connecting ? RESP_BERR_CONNECT : RESP_BERR_TIMEOUT);
    resp_conn_fail(c, connecting ? "connect timeout" : "response timeout");
    resp_flush_all(rw);
}

void resp_backend_cleanup(struct resp_wctx *rw)
{
    resp_redirect_cleanup(rw);
    while (rw->retired) {
        struct resp_conn *c = rw->retired;
        rw->retired = c->retired_next;
        resp_conn_close_dedicated(c);
    }
    while (rw->servers) {
        struct resp_server *s = rw->servers;
        rw->servers = s->next;
        for (uint32_t i = 0; i < s->n_conns; i++)
            resp_conn_release(&s->conns[i]);
        free(s->conns);
        if (s->conn3)
            resp_conn_release(s->conn3);
        free(s->conn3);
        free(s);
    }
    resp_routes_free(rw->routes, rw->n_routes);
    rw->routes = NULL;
    rw->n_routes = 0;
    if (rw->snap)
        snapshot_unref(rw->snap);
    rw->snap = NULL;
}

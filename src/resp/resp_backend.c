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
 * error (it is not retried elsewhere: the command may have run). The
 * server is then marked down (passive check), so later commands skip it
 * (replica) or fail fast (primary) until a health check PING succeeds. Health checks PING every server of the current
 * routes each interval and ask replicas for INFO replication to skip a
 * replica whose link to its primary is down or silent for max_lag. */
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
#include "resp/resp_cmd.h"

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
        s->up = 1;
        s->lag_ok = 1;
        s->next = rw->servers;
        rw->servers = s;
    }
    s->is_replica = replica;
    s->connect_timeout_ms = cc->connect_timeout_ms;
    s->response_timeout_ms = cc->response_timeout_ms;
    s->max_lag_s = cc->max_lag_s;
    s->health_fall = cc->health_fall;
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

/* ---- routes ---- */

/* The primaries sentinel named, shared by the workers, so a worker that
 * starts routing later (or after a reload) starts from what another one
 * learnt rather than from the configured address. */
struct resp_sentinel_seen {
    char cluster[64];
    char master[208];
    char address[300];
};

static struct resp_sentinel_seen *resp_seen;
static size_t resp_n_seen;
static pthread_mutex_t resp_seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void resp_seen_put(const char *cluster, const char *master, const char *address)
{
    pthread_mutex_lock(&resp_seen_lock);
    size_t i = 0;
    while (i < resp_n_seen && (strcmp(resp_seen[i].cluster, cluster) != 0 ||
                               strcmp(resp_seen[i].master, master) != 0))
        i++;
    if (i == resp_n_seen) {
        struct resp_sentinel_seen *n = realloc(resp_seen, (i + 1) * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&resp_seen_lock);
            return;
        }
        resp_seen = n;
        resp_n_seen++;
        snprintf(n[i].cluster, sizeof(n[i].cluster), "%s", cluster);
        snprintf(n[i].master, sizeof(n[i].master), "%s", master);
    }
    snprintf(resp_seen[i].address, sizeof(resp_seen[i].address), "%s", address);
    pthread_mutex_unlock(&resp_seen_lock);
}

/* Copies the address sentinel last gave for master into out. Returns 0 or
 * -ENOENT. */
static int resp_seen_get(const char *cluster, const char *master, char *out, size_t size)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&resp_seen_lock);
    for (size_t i = 0; i < resp_n_seen; i++)
        if (strcmp(resp_seen[i].cluster, cluster) == 0 && strcmp(resp_seen[i].master, master) == 0) {
            snprintf(out, size, "%s", resp_seen[i].address);
            rc = 0;
        }
    pthread_mutex_unlock(&resp_seen_lock);
    return rc;
}

static int resp_parse_ipport(const char *text, struct sockaddr_storage *addr, socklen_t *len);

/* Sentinel named another primary for shard i of r: switches to it. */
static int resp_route_switch(struct resp_wctx *rw, struct resp_route *r, uint32_t i,
                             const char *address)
{
    const struct cfg_redis_cluster *cc = r->cfg;
    struct cfg_redis_server cs = { .address = (char *)address };
    struct resp_shard_srv *ss = &r->shards[i];
    if (resp_parse_ipport(address, &cs.addr, &cs.addrlen) < 0)
        return -EINVAL;
    if (ss->primary->addrlen == cs.addrlen && memcmp(&ss->primary->addr, &cs.addr, cs.addrlen) == 0)
        return 0;
    char *master = strdup(cc->sentinel_masters[i]);
    struct resp_server *np = master ? resp_server_get(rw, &cs, cc, 0) : NULL;
    if (!np) {
        free(master);
        return -ENOMEM;
    }
    log_warn("redis cluster %s: shard '%s' (master '%s') has a new primary %s (was %s), from "
             "sentinel (worker %u)", cc->name, cc->shards[i].name, master, np->name,
             ss->primary->name, rw->wc->worker.id);
    free(ss->sentinel_master);
    ss->sentinel_master = master;
    ss->primary = np;
    return 1;
}

static void resp_routes_free(struct resp_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        resp_dist_free(&routes[i].dist);
        if (routes[i].shards)
            for (size_t s = 0; s < routes[i].n_shards; s++) {
                free(routes[i].shards[s].replicas);
                free(routes[i].shards[s].sentinel_master);
            }
        free(routes[i].shards);
        free(routes[i].live);
    }
    free(routes);
}

static int resp_route_build(struct resp_wctx *rw, struct resp_route *r,
                            const struct cfg_redis_cluster *cc)
{
    r->cfg = cc;
    snprintf(r->name, sizeof(r->name), "%s", cc->name);
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
        ss->primary = resp_server_get(rw, &sh->primary, cc, 0);
        if (!ss->primary)
            return -ENOMEM;
        char seen[300];
        if (cc->sentinel_masters &&
            resp_seen_get(cc->name, cc->sentinel_masters[i], seen, sizeof(seen)) == 0 &&
            resp_route_switch(rw, r, (uint32_t)i, seen) == -ENOMEM)
            return -ENOMEM;
        if (sh->n_replicas == 0)
            continue;
        ss->replicas = calloc(sh->n_replicas, sizeof(*ss->replicas));
        if (!ss->replicas)
            return -ENOMEM;
        ss->n_replicas = (uint32_t)sh->n_replicas;
        for (size_t k = 0; k < sh->n_replicas; k++)
            if (!(ss->replicas[k] = resp_server_get(rw, &sh->replicas[k], cc, 1)))
                return -ENOMEM;
    }
    return 0;
}

static void resp_route_eject(struct resp_wctx *rw, struct resp_route *r);

int resp_routes_sync(struct resp_wctx *rw)
{
    struct snapshot *snap = rw->wc->snap;
    if (rw->snap == snap)
        return 0;
    const struct cfg *cfg = snap->cfg;
    struct resp_route *routes = calloc(cfg->n_redis_clusters ? cfg->n_redis_clusters : 1,
                                       sizeof(*routes));
    if (!routes)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_redis_clusters; i++) {
        if (resp_route_build(rw, &routes[i], &cfg->redis_clusters[i]) < 0) {
            resp_routes_free(routes, i + 1);
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
    for (size_t i = 0; i < rw->n_routes; i++)
        resp_route_eject(rw, &rw->routes[i]);
    return 0;
}

struct resp_route *resp_route_get(struct resp_wctx *rw, const char *name)
{
    for (size_t i = 0; i < rw->n_routes; i++)
        if (strcmp(rw->routes[i].cfg->name, name) == 0)
            return &rw->routes[i];
    return NULL;
}

static int resp_replica_usable(const struct resp_server *s)
{
    return s->up && s->lag_ok;
}

struct resp_server *resp_route_server(struct resp_route *r, uint32_t shard, int read)
{
    struct resp_shard_srv *ss = &r->shards[shard];
    struct resp_server *best = NULL;

    if (!read || ss->n_replicas == 0 || r->cfg->read_from == CFG_REDIS_READ_PRIMARY)
        return ss->primary->up ? ss->primary : NULL;
    switch (r->cfg->read_from) {
    case CFG_REDIS_READ_PREFER_REPLICA:
        for (uint32_t i = 0; i < ss->n_replicas; i++) {
            struct resp_server *s = ss->replicas[(ss->rr + i) % ss->n_replicas];
            if (resp_replica_usable(s)) {
                ss->rr = (ss->rr + i + 1) % ss->n_replicas;
                return s;
            }
        }
        break;
    case CFG_REDIS_READ_ROUND_ROBIN:
        for (uint32_t i = 0; i <= ss->n_replicas; i++) {
            uint32_t k = (ss->rr + i) % (ss->n_replicas + 1);
            struct resp_server *s = k == 0 ? ss->primary : ss->replicas[k - 1];
            if (k == 0 ? s->up : resp_replica_usable(s)) {
                ss->rr = (k + 1) % (ss->n_replicas + 1);
                return s;
            }
        }
        return NULL;
    case CFG_REDIS_READ_LEAST_LATENCY:
        if (ss->primary->up)
            best = ss->primary;
        for (uint32_t i = 0; i < ss->n_replicas; i++) {
            struct resp_server *s = ss->replicas[i];
            if (resp_replica_usable(s) && (!best || s->ewma_us < best->ewma_us))
                best = s;
        }
        return best;
    default:
        break;
    }
    return ss->primary->up ? ss->primary : NULL;
}

/* ---- connections ---- */

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
    if (fd < 0)
        return fd;
    c->fd = fd;
    c->state = RESP_CONN_CONNECTING;
    c->readable = c->writable = 0;
    resp_conn_watch(c);
    resp_conn_arm(c);
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
        live[i] = (uint8_t)(r->shards[i].primary->up != 0);
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
            log_warn("redis cluster %s: shard '%s' %s (auto_eject)", cc->name, cc->shards[i].name,
                     live[i] ? "is back in the distribution: its keys return to it" :
                               "left the distribution (its primary is down): its keys go to "
                               "the other shards");
    resp_dist_free(&r->dist);
    r->dist = d;
    free(r->live);
    r->live = live;
}

/* A server went up or down: redistributes the clusters with auto_eject. */
static void resp_server_flipped(struct resp_wctx *rw)
{
    for (size_t i = 0; i < rw->n_routes; i++)
        resp_route_eject(rw, &rw->routes[i]);
}

static void resp_server_down(struct resp_server *s, const char *why)
{
    s->retry_at = ev_now(resp_loop(s->rw)) + 1.0;
    if (!s->up)
        return;
    log_warn("redis server %s is down: %s", s->name, why);
    s->up = 0;
    resp_server_flipped(s->rw);
}

static void resp_health_result(struct resp_server *s, struct resp_msg *m, int ok);

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
    if (!c->dedicated && !c->health)
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
        if (m->kind != RESP_MSG_CLIENT)
            resp_health_result(c->srv, m, 0);
        else
            resp_msg_fail(rw, m, text);
        m = next;
    }
    /* sessions are pumped by the callback that got here (never nested) */
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

struct resp_conn *resp_conn_dedicated(struct resp_server *srv, struct resp_session *owner)
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
    for (struct resp_msg *m = c->q_head; m;) {
        struct resp_msg *next = m->bnext;
        m->in_backend = 0;
        m->conn = NULL;
        m->s = NULL;
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
            resp_conn_fail(c, strerror(errno));
            return -1;
        }
        size_t left = (size_t)w;
        c->out_bytes -= left;
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
        if (m->kind == RESP_MSG_CLIENT && !m->s) {
            return; /* orphan: drop */
        }
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
    uint8_t type = p->type;
    int64_t value = type == ':' ? p->int_value : p->top_len;
    if (m->kind != RESP_MSG_CLIENT) {
        if (resp_msg_append(rw, m, data, n) == 0)
            resp_msg_complete(rw, m, type, value);
        resp_health_result(c->srv, m, type != '-');
        return;
    }
    if (!m->s && !m->parent) {
        resp_msg_put(rw, m);
        return;
    }
    if (whole && resp_msg_direct(rw, m, data, n, type, value))
        return;
    if (resp_msg_append(rw, m, data, n) < 0)
        resp_msg_fail(rw, m, "weir: out of memory");
    else
        resp_msg_complete(rw, m, type, value);
}

/* Parses what c->in holds. Returns 0 or -1 after failing c. */
static int resp_conn_process(struct resp_conn *c)
{
    while (buf_len(&c->in) > 0) {
        if (!c->q_head) {
            resp_conn_fail(c, "reply without a request");
            return -1;
        }
        int fresh = c->parser.off == 0;
        ssize_t n = resp_parse(&c->parser, buf_rptr(&c->in), buf_len(&c->in));
        if (n < 0) {
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
    resp_conn_fail(c, c->state == RESP_CONN_CONNECTING ? "connect timeout" : "response timeout");
    resp_flush_all(rw);
}

/* ---- health checks ---- */

/* Reads "field:value" out of an INFO text (the reply's chunks). */
static int resp_info_field(const struct resp_msg *m, const char *field, char *out, size_t size)
{
    char text[4096];
    size_t len = 0;
    for (const struct resp_chunk *k = m->rhead; k && len < sizeof(text) - 1; k = k->next) {
        size_t n = k->len - k->pos;
        if (n > sizeof(text) - 1 - len)
            n = sizeof(text) - 1 - len;
        memcpy(text + len, k->data + k->pos, n);
        len += n;
    }
    text[len] = 0;
    size_t flen = strlen(field);
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            const char *v = line + flen + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= size)
                n = size - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    }
    return -ENOENT;
}

static void resp_sentinel_result(struct resp_wctx *rw, struct resp_server *sv,
                                 const struct resp_msg *m, int ok);

static void resp_health_result(struct resp_server *s, struct resp_msg *m, int ok)
{
    struct resp_wctx *rw = s->rw;
    if (m->kind == RESP_MSG_SENTINEL) {
        resp_sentinel_result(rw, s, m, ok);
    } else if (m->kind == RESP_MSG_HEALTH_PING) {
        if (ok && m->done) {
            uint64_t us = (uint64_t)((ev_now(resp_loop(rw)) - m->t_sent) * 1e6) + 1;
            s->ewma_us = s->ewma_us ? s->ewma_us - s->ewma_us / 8 + us / 8 : us;
            s->fails = 0;
            if (!s->up) {
                log_info("redis server %s is up", s->name);
                s->up = 1;
                resp_server_flipped(rw);
            }
        } else if (++s->fails >= s->health_fall) {
            resp_server_down(s, "health check failed");
        }
    } else if (m->kind == RESP_MSG_HEALTH_INFO && ok && m->done) {
        char link[32], io[32];
        int lag_ok = resp_info_field(m, "master_link_status", link, sizeof(link)) == 0 &&
                     strcmp(link, "up") == 0;
        if (lag_ok && resp_info_field(m, "master_last_io_seconds_ago", io, sizeof(io)) == 0 &&
            strtoll(io, NULL, 10) > (long long)s->max_lag_s)
            lag_ok = 0;
        if (lag_ok != s->lag_ok)
            log_info("redis replica %s %s", s->name, lag_ok ? "is in sync again" :
                     "is lagging or its link to the primary is down: reads skip it");
        s->lag_ok = lag_ok;
    }
    resp_msg_put(rw, m);
}

/* The server's health-check connection (also a sentinel's query
 * connection), made when missing; NULL when out of memory. */
static struct resp_conn *resp_health_conn(struct resp_server *s)
{
    if (!s->hc) {
        s->hc = malloc(sizeof(*s->hc));
        if (!s->hc)
            return NULL;
        resp_conn_init(s->hc, s);
        s->hc->health = 1;
    }
    return s->hc;
}

static void resp_health_check(struct resp_server *s)
{
    struct resp_wctx *rw = s->rw;
    struct resp_conn *c = resp_health_conn(s);
    if (!c)
        return;
    if (c->n_q > 0) { /* the last check is still unanswered */
        if (++s->fails >= s->health_fall)
            resp_server_down(s, "health check timed out");
        return;
    }
    if (c->state == RESP_CONN_IDLE && resp_conn_connect(c) < 0) {
        if (++s->fails >= s->health_fall)
            resp_server_down(s, "cannot connect");
        return;
    }
    struct resp_msg *m = resp_msg_get(rw);
    if (!m)
        return;
    m->kind = RESP_MSG_HEALTH_PING;
    resp_conn_write(c, "*1\r\n$4\r\nPING\r\n", 14);
    resp_conn_push(c, m);
    if (s->is_replica) {
        struct resp_msg *mi = resp_msg_get(rw);
        if (!mi)
            return;
        mi->kind = RESP_MSG_HEALTH_INFO;
        resp_conn_write(c, "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n", 31);
        resp_conn_push(c, mi);
    }
}

static void resp_health_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_wctx *rw = w->data;
    uint64_t interval = 0;
    resp_routes_sync(rw); /* never the routes of a snapshot that is gone */
    for (size_t i = 0; i < rw->n_routes; i++) {
        const struct cfg_redis_cluster *cc = rw->routes[i].cfg;
        if (interval == 0 || cc->health_interval_ms < interval)
            interval = cc->health_interval_ms;
        for (size_t s = 0; s < cc->n_shards; s++) {
            struct resp_shard_srv *ss = &rw->routes[i].shards[s];
            resp_health_check(ss->primary);
            for (uint32_t k = 0; k < ss->n_replicas; k++)
                resp_health_check(ss->replicas[k]);
        }
    }
    resp_flush_all(rw);
    w->repeat = interval ? (double)interval / 1000.0 : 1.0;
    ev_timer_again(loop, w);
}

/* ---- sentinel ----
 *
 *   every sentinel.interval: sentinel --SENTINEL get-master-addr-by-name NAME (one per shard)-->
 *   reply *2 ip port --differs from the shard's primary--> the shard's primary is switched
 *
 * Each worker asks on its own connection to one of the cluster's sentinels
 * (the health-check connection of a server made for the sentinel's
 * address), all shards pipelined; a sentinel that fails or does not answer
 * within an interval is left for the next one. Switching is only a pointer
 * in the route: commands already sent finish where they went. */

static void resp_sentinel_ask(struct resp_wctx *rw, size_t ri)
{
    struct resp_route *r = &rw->routes[ri];
    const struct cfg_redis_cluster *cc = r->cfg;
    struct resp_server *sv = resp_server_get(rw, &cc->sentinels[r->sentinel_next % cc->n_sentinels],
                                             cc, 0);
    struct resp_conn *c = sv ? resp_health_conn(sv) : NULL;
    if (!c)
        return;
    if (c->n_q > 0) { /* the last round is unanswered */
        resp_conn_fail(c, "sentinel did not answer within the interval");
        return; /* the failure moved sentinel_next on */
    }
    if (c->state == RESP_CONN_IDLE && resp_conn_connect(c) < 0) {
        log_warn("redis cluster %s: cannot connect to sentinel %s", cc->name, sv->name);
        r->sentinel_next++;
        return;
    }
    for (uint32_t k = 0; k < r->n_shards; k++) {
        struct resp_msg *m = resp_msg_get(rw);
        char head[64];
        const char *name = cc->sentinel_masters[k];
        if (!m)
            return;
        m->kind = RESP_MSG_SENTINEL;
        m->route = (uint32_t)ri;
        m->shard = k;
        m->gen = rw->routes_gen;
        int n = snprintf(head, sizeof(head), "*3\r\n$8\r\nSENTINEL\r\n$23\r\n"
                         "get-master-addr-by-name\r\n$%zu\r\n", strlen(name));
        if (resp_conn_write(c, head, (size_t)n) < 0 || resp_conn_write(c, name, strlen(name)) < 0 ||
            resp_conn_write(c, "\r\n", 2) < 0) {
            resp_msg_put(rw, m);
            resp_conn_fail(c, "out of memory");
            return;
        }
        resp_conn_push(c, m);
    }
}

/* Reads "*2 $n ip $n port" from m's reply into "ip:port" (IPv6 in brackets).
 * Returns 0, or -EINVAL for anything else (nil: the sentinel does not know
 * the master). */
static int resp_sentinel_addr(const struct resp_msg *m, char *out, size_t size)
{
    char text[600], *p = text, *end;
    const char *part[2];
    size_t plen[2], len = 0;
    for (const struct resp_chunk *k = m->rhead; k && len < sizeof(text) - 1; k = k->next) {
        size_t n = k->len - k->pos;
        if (n > sizeof(text) - 1 - len)
            n = sizeof(text) - 1 - len;
        memcpy(text + len, k->data + k->pos, n);
        len += n;
    }
    text[len] = 0;
    if (m->reply_type != '*' || strncmp(p, "*2\r\n", 4) != 0)
        return -EINVAL;
    p += 4;
    for (int i = 0; i < 2; i++) {
        if (*p != '$')
            return -EINVAL;
        unsigned long n = strtoul(p + 1, &end, 10);
        if (strncmp(end, "\r\n", 2) != 0 || n == 0 || n > 200 || (size_t)(end + 2 - text) + n > len)
            return -EINVAL;
        part[i] = end + 2;
        plen[i] = n;
        p = end + 2 + n + 2;
        if ((size_t)(p - text) > len)
            return -EINVAL;
    }
    int v6 = memchr(part[0], ':', plen[0]) != NULL;
    int n = snprintf(out, size, "%s%.*s%s:%.*s", v6 ? "[" : "", (int)plen[0], part[0],
                     v6 ? "]" : "", (int)plen[1], part[1]);
    return n > 0 && (size_t)n < size ? 0 : -EINVAL;
}

/* "ip:port" or "[ipv6]:port" into addr. Returns 0 or -EINVAL. */
static int resp_parse_ipport(const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    char *end;
    if (!colon)
        return -EINVAL;
    size_t hlen = (size_t)(colon - text);
    const char *h = text;
    if (hlen >= 2 && text[0] == '[' && colon[-1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -EINVAL;
}

static void resp_sentinel_result(struct resp_wctx *rw, struct resp_server *sv,
                                 const struct resp_msg *m, int ok)
{
    char addr[300];
    if (m->gen != rw->routes_gen || m->route >= rw->n_routes)
        return; /* asked before a reload */
    struct resp_route *r = &rw->routes[m->route];
    const struct cfg_redis_cluster *cc = r->cfg;
    if (m->shard >= r->n_shards)
        return;
    if (!ok || !m->done) {
        if (m->shard == 0)
            r->sentinel_next++;
        return;
    }
    if (resp_sentinel_addr(m, addr, sizeof(addr)) < 0) {
        if (m->reply_type == '-' || m->value < 0)
            log_warn("redis cluster %s: sentinel %s does not know master '%s' (shard '%s')",
                     cc->name, sv->name, cc->sentinel_masters[m->shard], cc->shards[m->shard].name);
        return;
    }
    if (resp_route_switch(rw, r, m->shard, addr) < 0) {
        log_warn("redis cluster %s: sentinel %s gave master '%s' an address weir cannot use: %s",
                 cc->name, sv->name, cc->sentinel_masters[m->shard], addr);
        return;
    }
    resp_seen_put(cc->name, cc->sentinel_masters[m->shard], addr);
    resp_route_eject(rw, r);
}

static void resp_sentinel_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_wctx *rw = w->data;
    uint64_t interval = 0;
    resp_routes_sync(rw);
    for (size_t i = 0; i < rw->n_routes; i++) {
        const struct cfg_redis_cluster *cc = rw->routes[i].cfg;
        if (cc->n_sentinels == 0)
            continue;
        if (interval == 0 || cc->sentinel_interval_ms < interval)
            interval = cc->sentinel_interval_ms;
        resp_sentinel_ask(rw, i);
    }
    resp_flush_all(rw);
    w->repeat = interval ? (double)interval / 1000.0 : 1.0;
    ev_timer_again(loop, w);
}

void resp_health_start(struct resp_wctx *rw)
{
    if (rw->health_started)
        return;
    rw->health_started = 1;
    ev_init(&rw->health, resp_health_cb);
    rw->health.data = rw;
    rw->health.repeat = 0.05; /* the first round soon, then every interval */
    ev_timer_again(resp_loop(rw), &rw->health);
    ev_init(&rw->sentinel, resp_sentinel_cb);
    rw->sentinel.data = rw;
    rw->sentinel.repeat = 0.05;
    ev_timer_again(resp_loop(rw), &rw->sentinel);
}

void resp_backend_cleanup(struct resp_wctx *rw)
{
    if (rw->health_started && resp_loop(rw)) {
        ev_timer_stop(resp_loop(rw), &rw->health);
        ev_timer_stop(resp_loop(rw), &rw->sentinel);
    }
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
        if (s->hc) {
            resp_conn_release(s->hc);
            free(s->hc);
        }
        free(s);
    }
    resp_routes_free(rw->routes, rw->n_routes);
    rw->routes = NULL;
    rw->n_routes = 0;
    if (rw->snap)
        snapshot_unref(rw->snap);
    rw->snap = NULL;
}

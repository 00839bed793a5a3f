/* resp_cmap: see resp_cmap.h.
 *
 *   tick (100 ms) --due (interval) or stale (a worker saw MOVED)?-->
 *     [hiredis connect to a seed / known primary] --CLUSTER SHARDS-->
 *     error (before Redis 7)? --CLUSTER SLOTS--> walk (core/rcluster.c)
 *     --> new map; differs from the current one? publish (lock, swap,
 *     version++), drop the old reference
 *
 * The fetcher keeps one connection to the node that answers and moves on
 * to the next address (seeds first, then the primaries of the current
 * map) when it fails or does not answer in time. The 100 ms tick bounds
 * the refreshes MOVED replies can cause. Main thread only, except
 * resp_cmap_get() / resp_cmap_stale() which workers call. */
#include "resp/resp_cmap.h"

#include <errno.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/units.h"
#include "resp/resp_health.h"

#define RESP_CMAP_TICK 0.1

struct resp_cmap_fetch {
    struct ev_loop *loop;
    struct resp_health_state *st;  /* one reference */
    ev_timer tick;
    redisAsyncContext *ac;         /* NULL: not connected */
    char host[RCLUSTER_HOST_MAX];  /* the node asked */
    int port;
    uint32_t next;                 /* rotation over seeds, then known primaries */
    uint8_t in_flight;
    uint8_t use_slots;             /* CLUSTER SHARDS was refused: CLUSTER SLOTS */
    uint8_t failing;               /* the last attempt failed (logged once) */
    ev_tstamp t_started, t_done;   /* t_done 0: fetch at the next tick */
};

/* ---- maps ---- */

static void resp_cmap_free(struct resp_cmap *m)
{
    for (size_t i = 0; i < m->n_nodes; i++) {
        free(m->nodes[i].primary.address);
        for (size_t k = 0; k < m->nodes[i].n_replicas; k++)
            free(m->nodes[i].replicas[k].address);
        free(m->nodes[i].replicas);
    }
    free(m->nodes);
    free(m);
}

void resp_cmap_ref(struct resp_cmap *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void resp_cmap_unref(struct resp_cmap *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        resp_cmap_free(m);
}

struct resp_cmap *resp_cmap_get(struct resp_health_state *st)
{
    pthread_mutex_lock(&st->lock);
    struct resp_cmap *m = st->cmap;
    if (m)
        resp_cmap_ref(m);
    pthread_mutex_unlock(&st->lock);
    return m;
}

void resp_cmap_stale(struct resp_health_state *st)
{
    atomic_store_explicit(&st->cmap_stale, 1, memory_order_relaxed);
}

/* "host:port", "[v6]:port" into out. */
static void resp_cmap_name(const struct rcluster_node *n, char *out, size_t size)
{
    if (strchr(n->host, ':'))
        snprintf(out, size, "[%s]:%d", n->host, n->port);
    else
        snprintf(out, size, "%s:%d", n->host, n->port);
}

/* Fills cs from a node. Returns 0, -EINVAL (not a numeric address) or -ENOMEM. */
static int resp_cmap_server(struct cfg_redis_server *cs, const struct rcluster_node *n)
{
    char name[RCLUSTER_HOST_MAX + 16];
    resp_cmap_name(n, name, sizeof(name));
    if (units_parse_addr(name, &cs->addr, &cs->addrlen) < 0)
        return -EINVAL;
    return (cs->address = strdup(name)) ? 0 : -ENOMEM;
}

/* The node of m whose primary is nodes[0], added (with its replicas) when
 * new. Returns its index, -EINVAL or -ENOMEM. */
static int resp_cmap_node(struct resp_cmap *m, const struct rcluster_node *nodes, size_t n,
                          unsigned first)
{
    char name[RCLUSTER_HOST_MAX + 16];
    resp_cmap_name(&nodes[0], name, sizeof(name));
    for (size_t i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].primary.address, name) == 0)
            return (int)i;
    if (m->n_nodes >= RESP_CMAP_NONE)
        return -EINVAL;
    struct resp_cmap_node *grown = realloc(m->nodes, (m->n_nodes + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    m->nodes = grown;
    struct resp_cmap_node *nd = &m->nodes[m->n_nodes];
    memset(nd, 0, sizeof(*nd));
    int rc = resp_cmap_server(&nd->primary, &nodes[0]);
    if (rc < 0)
        return rc;
    nd->first_slot = first;
    m->n_nodes++;
    if (n > 1 && !(nd->replicas = calloc(n - 1, sizeof(*nd->replicas))))
        return -ENOMEM;
    for (size_t k = 1; k < n; k++) {
        rc = resp_cmap_server(&nd->replicas[nd->n_replicas], &nodes[k]);
        if (rc == -ENOMEM)
            return rc;
        if (rc == 0)
            nd->n_replicas++;
    }
    return (int)(m->n_nodes - 1);
}

/* rcluster_range_fn: slots first..last are served by nodes[0]. */
static int resp_cmap_range(void *arg, unsigned first, unsigned last,
                           const struct rcluster_node *nodes, size_t n)
{
    struct resp_cmap *m = arg;
    int i = resp_cmap_node(m, nodes, n, first);
    if (i == -EINVAL)
        return 0; /* a node we cannot reach (not a numeric address): its slots stay unserved */
    if (i < 0)
        return i;
    for (unsigned s = first; s <= last; s++)
        m->slot_node[s] = (uint16_t)i;
    return 0;
}

static int resp_cmap_server_eq(const struct cfg_redis_server *a, const struct cfg_redis_server *b)
{
    return strcmp(a->address, b->address) == 0;
}

/* 1 when a and b route every slot to the same servers. */
static int resp_cmap_same(const struct resp_cmap *a, const struct resp_cmap *b)
{
    if (!a || !b || a->n_nodes != b->n_nodes ||
        memcmp(a->slot_node, b->slot_node, sizeof(a->slot_node)) != 0)
        return 0;
    for (size_t i = 0; i < a->n_nodes; i++) {
        const struct resp_cmap_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (!resp_cmap_server_eq(&x->primary, &y->primary) || x->n_replicas != y->n_replicas)
            return 0;
        for (size_t k = 0; k < x->n_replicas; k++)
            if (!resp_cmap_server_eq(&x->replicas[k], &y->replicas[k]))
                return 0;
    }
    return 1;
}

/* Publishes m (takes its reference) unless it says what the current map says. */
static void resp_cmap_publish(struct resp_cmap_fetch *f, struct resp_cmap *m)
{
    struct resp_health_state *st = f->st;
    size_t served = 0;
    pthread_mutex_lock(&st->lock);
    struct resp_cmap *old = st->cmap;
    int same = resp_cmap_same(old, m);
    if (!same)
        st->cmap = m;
    pthread_mutex_unlock(&st->lock);
    if (same) {
        resp_cmap_unref(m);
        return;
    }
    atomic_fetch_add_explicit(&st->cmap_version, 1, memory_order_release);
    resp_cmap_unref(old);
    for (size_t s = 0; s < RCLUSTER_SLOTS; s++)
        served += m->slot_node[s] != RESP_CMAP_NONE;
    log_info("redis cluster %s: slot map from %s:%d: %zu primaries, %zu of %d slots served",
             st->cfg->name, f->host, f->port, m->n_nodes, served, RCLUSTER_SLOTS);
}

/* ---- fetching ---- */

static void resp_cmap_failed(struct resp_cmap_fetch *f, const char *why)
{
    if (!f->failing)
        log_warn("redis cluster %s: no slot map from %s:%d (%s); trying the next node",
                 f->st->cfg->name, f->host, f->port, why);
    f->failing = 1;
    f->in_flight = 0;
    f->t_done = 0;
    f->next++;
}

/* Drops the connection (not from inside a hiredis callback). */
static void resp_cmap_drop(struct resp_cmap_fetch *f)
{
    redisAsyncContext *ac = f->ac;
    f->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* the pending reply callback runs with NULL */
}

static void resp_cmap_reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

static int resp_cmap_send(struct resp_cmap_fetch *f)
{
    const char *cmd = f->use_slots ? "CLUSTER SLOTS" : "CLUSTER SHARDS";
    if (redisAsyncCommand(f->ac, resp_cmap_reply_cb, f, cmd) != REDIS_OK)
        return -EIO;
    f->in_flight = 1;
    f->t_started = ev_now(f->loop);
    return 0;
}

static void resp_cmap_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct resp_cmap_fetch *f = privdata;
    redisReply *r = reply;
    int asked = f->in_flight;
    f->in_flight = 0;
    if (!r) { /* the connection went away (hiredis frees it) */
        f->ac = NULL;
        if (asked) /* else already counted (connect failure, timeout, shutdown) */
            resp_cmap_failed(f, "connection lost");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && !f->use_slots) {
        f->use_slots = 1; /* before Redis 7 */
        if (resp_cmap_send(f) < 0)
            resp_cmap_failed(f, "cannot send CLUSTER SLOTS");
        return;
    }
    struct resp_cmap *m = calloc(1, sizeof(*m));
    if (!m) {
        resp_cmap_failed(f, "out of memory");
        return;
    }
    atomic_init(&m->refs, 1);
    memset(m->slot_node, 0xff, sizeof(m->slot_node));
    int rc = f->use_slots ? rcluster_slots_walk(r, f->host, resp_cmap_range, m)
                          : rcluster_shards_walk(r, f->host, resp_cmap_range, m);
    if (rc < 0 || m->n_nodes == 0) {
        resp_cmap_free(m);
        resp_cmap_failed(f, r->type == REDIS_REPLY_ERROR ? r->str : "no slot served");
        redisAsyncDisconnect(ac);
        return;
    }
    f->failing = 0;
    f->t_done = ev_now(f->loop);
    resp_cmap_publish(f, m);
}

static void resp_cmap_connect_cb(const redisAsyncContext *ac, int status)
{
    struct resp_cmap_fetch *f = ac->data;
    if (status != REDIS_OK) {
        f->ac = NULL; /* hiredis frees it after this returns */
        resp_cmap_failed(f, ac->errstr);
    }
}

static void resp_cmap_disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct resp_cmap_fetch *f = ac->data;
    if (f->ac == ac)
        f->ac = NULL;
}

/* The address to try: seeds first, then the current map's primaries. */
static int resp_cmap_pick(struct resp_cmap_fetch *f)
{
    const struct cfg_redis_cluster *cc = f->st->cfg;
    struct resp_cmap *m = resp_cmap_get(f->st);
    size_t n = cc->n_seeds + (m ? m->n_nodes : 0);
    size_t i = f->next % n;
    const struct cfg_redis_server *cs = i < cc->n_seeds ? &cc->seeds[i]
                                                        : &m->nodes[i - cc->n_seeds].primary;
    char serv[16];
    int rc = getnameinfo((const struct sockaddr *)&cs->addr, cs->addrlen, f->host,
                         sizeof(f->host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
    resp_cmap_unref(m);
    if (rc != 0)
        return -EINVAL;
    f->port = atoi(serv);
    return 0;
}

static void resp_cmap_ask(struct resp_cmap_fetch *f)
{
    if (!f->ac) {
        if (resp_cmap_pick(f) < 0) {
            resp_cmap_failed(f, "bad address");
            return;
        }
        redisAsyncContext *ac = redisAsyncConnect(f->host, f->port);
        if (!ac) {
            resp_cmap_failed(f, "out of memory");
            return;
        }
        if (ac->err) {
            resp_cmap_failed(f, ac->errstr);
            redisAsyncFree(ac);
            return;
        }
        ac->data = f;
        if (redisLibevAttach(f->loop, ac) != REDIS_OK) {
            redisAsyncFree(ac);
            resp_cmap_failed(f, "cannot watch the connection");
            return;
        }
        redisAsyncSetConnectCallback(ac, resp_cmap_connect_cb);
        redisAsyncSetDisconnectCallback(ac, resp_cmap_disconnect_cb);
        f->ac = ac;
        f->use_slots = 0;
    }
    if (resp_cmap_send(f) < 0) {
        resp_cmap_failed(f, "cannot send");
        resp_cmap_drop(f);
    }
}

static void resp_cmap_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_cmap_fetch *f = w->data;
    const struct cfg_redis_cluster *cc = f->st->cfg;
    ev_tstamp now = ev_now(loop);
    if (f->in_flight) {
        double limit = (double)(cc->connect_timeout_ms + cc->response_timeout_ms) / 1000.0;
        if (now - f->t_started > limit) {
            resp_cmap_failed(f, "no answer in time");
            resp_cmap_drop(f);
        }
        return;
    }
    int stale = atomic_exchange_explicit(&f->st->cmap_stale, 0, memory_order_relaxed);
    if (!stale && f->t_done != 0 && now - f->t_done < (double)cc->health_interval_ms / 1000.0)
        return;
    resp_cmap_ask(f);
}

struct resp_cmap_fetch *resp_cmap_fetch_new(struct ev_loop *loop, struct resp_health_state *st)
{
    struct resp_cmap_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->loop = loop;
    f->st = st;
    resp_health_state_ref(st);
    ev_timer_init(&f->tick, resp_cmap_tick_cb, 0.0, RESP_CMAP_TICK);
    f->tick.data = f;
    ev_timer_start(loop, &f->tick);
    return f;
}

void resp_cmap_fetch_free(struct resp_cmap_fetch *f)
{
    if (!f)
        return;
    ev_timer_stop(f->loop, &f->tick);
    f->in_flight = 0;
    resp_cmap_drop(f);
    resp_health_state_unref(f->st);
    free(f);
}

/* server: workers, listening sockets, accept, connection counts, reload
 * and drain, for protocols it knows only as rows of a table.
 *
 *   main thread                          worker i (own libev loop)
 *   cfg_load -> snapshot_new             wlisteners (own SO_REUSEPORT fds)
 *   listen fds (one per worker) -------> listener_cb: protocol->ready, accept
 *   server_reload: publish(snapshot) -->   -> protocol->accept(fd) -> session
 *   server_stop:   stop flag ----------> drain: close listeners, protocol->drain
 *   worker_done <-- n_running-- <------- idle: draining and n_conns == 0
 *
 *   session start --server_conn_open(wl)--> wl->n_conns++, wc->n_conns++
 *   session end  --server_conn_close(wl)--> wl->n_conns--, wc->n_conns--
 *                                           wl at its limit again? resume it
 *                                           wl dropped by a reload, 0 left? free it
 *                                           draining and wc->n_conns == 0? idle
 *
 * Listening sockets are made on the main thread, one per worker per address
 * (SO_REUSEPORT: the kernel spreads connections over the workers), so a
 * reload that adds an address fails before anything is published if the
 * address cannot be bound. A worker adopts a published snapshot by keeping
 * the wlistener of every socket still listed (only its index changes), so
 * connections stay counted against the socket they came from, and closes
 * the sockets no longer listed.
 *
 * limits.connections is per listener per worker: at the limit that
 * listener alone stops accepting (new connections wait in the kernel's
 * backlog) until one of its connections closes.
 *
 * The server decides alone that a worker is idle, exactly once: when it
 * drains and its last connection closed (or it had none when the drain
 * began). Protocols never end a worker's loop themselves. */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/net.h"
#include "upstream/resolver.h"

#define SERVER_BACKLOG 4096
#define SERVER_MIN_BUF (16 * 1024)
#define SERVER_ACCEPT_BATCH 64

/* ---- worker side: idleness and connection counts -------------------------- */

/* Ends the worker's loop: every connection is closed and it drains. Runs
 * once per worker. */
static void server_worker_idle(struct wctx *wc)
{
    wc->idle = 1;
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (wc->srv->protocols[p].worker_stop)
            wc->srv->protocols[p].worker_stop(wc);
    ev_async_stop(wc->worker.loop, &wc->worker.wake);
    ev_break(wc->worker.loop, EVBREAK_ALL);
    atomic_fetch_sub(&wc->srv->n_running, 1);
    ev_async_send(wc->srv->loop, &wc->srv->worker_done);
}

static void server_check_idle(struct wctx *wc)
{
    /* no loop: the worker already ended (connections freed at worker_free) */
    if (wc->draining && !wc->in_drain && !wc->idle && wc->n_conns == 0 && wc->worker.loop)
        server_worker_idle(wc);
}

static const struct metric_family server_family_accepted = {
    .name = "weir_connections_total",
    .help = "Client connections accepted.",
    .type = METRIC_COUNTER,
    .labels = { "listener" },
    .om_unknown = 1, /* beside weir_connections */
};

static const struct metric_family server_family_open = {
    .name = "weir_connections",
    .help = "Client connections open.",
    .type = METRIC_GAUGE,
    .labels = { "listener" },
};

static const struct metric_family server_family_bytes_in = {
    .name = "weir_bytes_received_total",
    .help = "Bytes received from clients.",
    .type = METRIC_COUNTER,
    .labels = { "listener" },
};

static const struct metric_family server_family_bytes_out = {
    .name = "weir_bytes_sent_total",
    .help = "Bytes sent to clients.",
    .type = METRIC_COUNTER,
    .labels = { "listener" },
};

static const char *const server_reload_results[] = { "success", "failure" };

static const struct metric_family server_family_reloads = {
    .name = "weir_config_reloads_total",
    .help = "Configuration reloads (SIGHUP or the admin API), by result.",
    .type = METRIC_COUNTER,
    .cells_label = "result",
    .cells = server_reload_results,
    .n_cells = 2,
};

static void server_wl_free(struct wlistener *wl)
{
    metrics_series_put(wl->m_accepted);
    metrics_series_put(wl->m_open);
    metrics_series_put(wl->m_bytes_in);
    metrics_series_put(wl->m_bytes_out);
    free(wl);
}

void server_conn_open(struct wctx *wc, struct wlistener *wl)
{
    wl->n_conns++;
    wc->n_conns++;
    metrics_add(wl->m_accepted, 0, 1);
    metrics_add(wl->m_open, 0, 1);
}

void server_conn_close(struct wctx *wc, struct wlistener *wl)
{
    wl->n_conns--;
    wc->n_conns--;
    metrics_sub(wl->m_open, 0, 1);
    if (!wl->listed) {
        if (wl->n_conns == 0)
            server_wl_free(wl);
    } else if (wl->paused && !wc->draining && wc->worker.loop) {
        /* the listener callback pauses it again if it is still at its limit
         * (a reload may have lowered it) */
        wl->paused = 0;
        ev_io_start(wc->worker.loop, &wl->io);
    }
    server_check_idle(wc);
}

/* ---- worker side: listeners ---------------------------------------------- */

/* Accepts what is pending on wl (at most a batch, for fairness) and hands
 * each connection to its protocol. At limits.connections the listener
 * pauses until one of its connections closes. */
static void server_listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct wlistener *wl = w->data;
    struct wctx *wc = wl->wc;
    const struct cfg_listener *lst = &wc->snap->cfg->listeners[wl->index];
    const struct server_protocol *proto = &wc->srv->protocols[lst->protocol];
    if (proto->ready && proto->ready(wc, lst) < 0)
        return;
    for (int i = 0; i < SERVER_ACCEPT_BATCH; i++) {
        if (wl->n_conns >= lst->max_connections) {
            log_warn("listener %s: %u connections on this worker (limits.connections); "
                     "not accepting until one closes", lst->name, wl->n_conns);
            ev_io_stop(loop, &wl->io);
            wl->paused = 1;
            return;
        }
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = net_accept(wl->fd, &peer, &plen);
        if (fd < 0) {
            if (fd != -EAGAIN && fd != -EWOULDBLOCK && fd != -ECONNABORTED)
                log_warn("listener %s: accept: %s", lst->name, strerror(-fd));
            return;
        }
        proto->accept(wc, wl, fd, &peer);
    }
}

/* Closes wl's socket and takes it out of the listed set; wl itself goes
 * when its last connection does. */
static void server_unlist(struct wctx *wc, struct wlistener *wl)
{
    if (wc->worker.loop)
        ev_io_stop(wc->worker.loop, &wl->io);
    close(wl->fd);
    wl->listed = 0;
    if (wl->n_conns == 0)
        server_wl_free(wl);
}

static void server_close_listeners(struct wctx *wc)
{
    for (size_t i = 0; i < wc->n_listeners; i++)
        server_unlist(wc, wc->listeners[i]);
    free(wc->listeners);
    wc->listeners = NULL;
    wc->n_listeners = 0;
}

static struct wlistener *server_find_listener(struct wctx *wc, int fd)
{
    for (size_t i = 0; i < wc->n_listeners; i++)
        if (wc->listeners[i]->fd == fd)
            return wc->listeners[i];
    return NULL;
}

/* Replaces the worker's listener set with `fds` (one per listener of the
 * new snapshot's cfg): a socket kept across the reload keeps its wlistener (and
 * its connection count) with a new index, a new one gets a new wlistener,
 * one no longer listed is closed. On allocation failure the old set stays
 * (logged). */
static void server_adopt_listeners(struct wctx *wc, const int *fds, const struct cfg *cfg)
{
    size_t n = cfg->n_listeners;
    struct wlistener **nl = calloc(n ? n : 1, sizeof(*nl));
    if (!nl)
        goto fail;
    for (size_t j = 0; j < n; j++) {
        nl[j] = server_find_listener(wc, fds[j]);
        if (!nl[j] && !(nl[j] = calloc(1, sizeof(*nl[j]))))
            goto fail_new;
    }
    for (size_t i = 0; i < wc->n_listeners; i++) {
        struct wlistener *old = wc->listeners[i];
        ev_io_stop(wc->worker.loop, &old->io);
        old->listed = 0;
    }
    for (size_t j = 0; j < n; j++) {
        struct wlistener *wl = nl[j];
        if (!wl->wc) {
            const char *name[] = { cfg->listeners[j].name };
            wl->m_accepted = metrics_series_get(&server_family_accepted, name);
            wl->m_open = metrics_series_get(&server_family_open, name);
            wl->m_bytes_in = metrics_series_get(&server_family_bytes_in, name);
            wl->m_bytes_out = metrics_series_get(&server_family_bytes_out, name);
            wl->fd = fds[j];
            wl->wc = wc;
            ev_io_init(&wl->io, server_listener_cb, fds[j], EV_READ);
            wl->io.data = wl;
        }
        wl->index = j;
        wl->listed = 1;
        wl->paused = 0;
        if (!wc->draining)
            ev_io_start(wc->worker.loop, &wl->io);
    }
    for (size_t i = 0; i < wc->n_listeners; i++) {
        struct wlistener *old = wc->listeners[i];
        if (!old->listed)
            server_unlist(wc, old);
    }
    free(wc->listeners);
    wc->listeners = nl;
    wc->n_listeners = n;
    return;

fail_new:
    for (size_t j = 0; j < n; j++)
        if (nl[j] && !nl[j]->wc)
            free(nl[j]);
    free(nl);
fail:
    log_error("worker %u: out of memory adopting listeners; keeping the old ones", wc->worker.id);
}

/* Stops accepting and lets every protocol drain; idle at once when no
 * connection is left. */
static void server_worker_drain(struct wctx *wc)
{
    wc->draining = 1;
    server_close_listeners(wc);
    wc->in_drain = 1;
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (wc->srv->protocols[p].drain)
            wc->srv->protocols[p].drain(wc);
    wc->in_drain = 0;
    server_check_idle(wc);
}

static void server_worker_wake(struct worker *w)
{
    struct wctx *wc = w->ctx;
    pthread_mutex_lock(&wc->mu);
    struct pending_pub *list = wc->pending;
    int stop = wc->pending_stop;
    wc->pending = NULL;
    wc->pending_tail = &wc->pending;
    pthread_mutex_unlock(&wc->mu);

    while (list) {
        struct pending_pub *next = list->next;
        server_adopt_listeners(wc, list->fds, list->snap->cfg);
        if (wc->snap)
            snapshot_unref(wc->snap);
        wc->snap = list->snap;
        atomic_store_explicit(&wc->adopted, wc->snap->generation, memory_order_release);
        free(list->fds);
        free(list);
        list = next;
    }
    if (stop && !wc->draining)
        server_worker_drain(wc);
}

static void server_worker_start(struct worker *w)
{
    struct wctx *wc = w->ctx;
    metrics_set_slot(w->id);
    wc->rng = (uint64_t)time(NULL) ^ ((uint64_t)w->id << 32) ^ (uint64_t)(uintptr_t)wc;
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (wc->srv->protocols[p].worker_init && wc->srv->protocols[p].worker_init(wc) != 0)
            log_error("worker %u: out of memory starting protocol %s; its connections will be "
                      "closed at once", w->id, wc->srv->protocols[p].name);
    server_worker_wake(w);
}

/* ---- main thread: sockets --------------------------------------------- */

static struct listen_sock *server_find_sock(struct server *srv, const struct cfg_listener *l)
{
    for (size_t i = 0; i < srv->n_socks; i++)
        if (srv->socks[i].addrlen == l->addrlen && memcmp(&srv->socks[i].addr, &l->addr, l->addrlen) == 0)
            return &srv->socks[i];
    return NULL;
}

static void server_close_sock_fds(struct listen_sock *ls, unsigned n_workers)
{
    for (unsigned w = 0; w < n_workers; w++)
        if (ls->fds[w] >= 0)
            close(ls->fds[w]);
}

/* Opens one socket per worker for listener l of cfg into ls. Returns 0, or
 * a negative errno with err naming the listener by cfg's file, line and
 * column (nothing left open). */
static int server_open_sock(struct server *srv, const struct cfg *cfg, const struct cfg_listener *l,
                            struct listen_sock *ls, char *err, size_t err_size)
{
    memset(ls, 0, sizeof(*ls));
    memcpy(&ls->addr, &l->addr, l->addrlen);
    ls->addrlen = l->addrlen;
    ls->fds = malloc(srv->n_workers * sizeof(int));
    if (!ls->fds) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    for (unsigned w = 0; w < srv->n_workers; w++)
        ls->fds[w] = -1;
    for (unsigned w = 0; w < srv->n_workers; w++) {
        int fd = w == 0 ? net_listen_check((const struct sockaddr *)&l->addr, l->addrlen) : 0;
        if (fd == 0)
            fd = net_listen((const struct sockaddr *)&l->addr, l->addrlen, SERVER_BACKLOG);
        if (fd < 0) {
            snprintf(err, err_size, "%s:%d:%d: listener %s: cannot listen on %s: %s", cfg->path,
                     l->line, l->col, l->name, l->listen, strerror(-fd));
            server_close_sock_fds(ls, srv->n_workers);
            free(ls->fds);
            return fd;
        }
        ls->fds[w] = fd;
    }
    return 0;
}

/* Makes sure every listener of cfg has its sockets; marks the ones in use.
 * On failure the sockets it opened are closed and the table is as before. */
static int server_prepare_socks(struct server *srv, const struct cfg *cfg, char *err, size_t err_size)
{
    size_t before = srv->n_socks;
    struct listen_sock *grown = realloc(srv->socks, (srv->n_socks + cfg->n_listeners) * sizeof(*grown));
    if (!grown) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    srv->socks = grown;
    for (size_t i = 0; i < srv->n_socks; i++)
        srv->socks[i].used = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listen_sock *ls = server_find_sock(srv, &cfg->listeners[i]);
        if (!ls) {
            ls = &srv->socks[srv->n_socks];
            int rc = server_open_sock(srv, cfg, &cfg->listeners[i], ls, err, err_size);
            if (rc != 0) {
                for (size_t j = before; j < srv->n_socks; j++) {
                    server_close_sock_fds(&srv->socks[j], srv->n_workers);
                    free(srv->socks[j].fds);
                }
                srv->n_socks = before;
                return rc;
            }
            srv->n_socks++;
        }
        ls->used = 1;
    }
    return 0;
}

/* Drops table entries the new snapshot does not use (the workers close
 * their fds when they adopt it). */
static void server_forget_unused_socks(struct server *srv)
{
    size_t k = 0;
    for (size_t i = 0; i < srv->n_socks; i++) {
        if (srv->socks[i].used)
            srv->socks[k++] = srv->socks[i];
        else
            free(srv->socks[i].fds);
    }
    srv->n_socks = k;
}

static int server_publish(struct server *srv, struct snapshot *snap)
{
    const struct cfg *cfg = snap->cfg;
    int **per_worker = calloc(srv->n_workers, sizeof(*per_worker));
    if (!per_worker)
        return -ENOMEM;
    for (unsigned w = 0; w < srv->n_workers; w++) {
        per_worker[w] = malloc((cfg->n_listeners ? cfg->n_listeners : 1) * sizeof(int));
        if (!per_worker[w]) {
            for (unsigned k = 0; k < w; k++)
                free(per_worker[k]);
            free(per_worker);
            return -ENOMEM;
        }
        for (size_t i = 0; i < cfg->n_listeners; i++)
            per_worker[w][i] = server_find_sock(srv, &cfg->listeners[i])->fds[w];
    }
    struct pending_pub **pubs = calloc(srv->n_workers, sizeof(*pubs));
    for (unsigned w = 0; pubs && w < srv->n_workers; w++)
        if (!(pubs[w] = calloc(1, sizeof(**pubs)))) {
            for (unsigned k = 0; k < w; k++)
                free(pubs[k]);
            free(pubs);
            pubs = NULL;
        }
    if (!pubs) {
        for (unsigned w = 0; w < srv->n_workers; w++)
            free(per_worker[w]);
        free(per_worker);
        return -ENOMEM;
    }
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        snapshot_ref(snap);
        pubs[w]->snap = snap;
        pubs[w]->fds = per_worker[w];
        pthread_mutex_lock(&wc->mu);
        *wc->pending_tail = pubs[w];
        wc->pending_tail = &pubs[w]->next;
        pthread_mutex_unlock(&wc->mu);
        if (wc->worker.loop)
            worker_wake(&wc->worker);
    }
    free(pubs);
    free(per_worker);
    server_forget_unused_socks(srv);
    if (srv->snap)
        snapshot_unref(srv->snap);
    srv->snap = snap;
    return 0;
}

/* ---- main thread: lifecycle ---------------------------------------------- */

static void server_topology_changed(void *arg);

#define SERVER_TICK_S 0.1

static void server_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;
    uint64_t now = endpoint_now_ms();
    cluster_set_tick(srv->snap->clusters, srv->snap->cfg->n_clusters, now);
    char err[256];
    if (topology_expire(&srv->topo, now) > 0 && server_rebuild(srv, err, sizeof(err)) != 0)
        log_error("removing expired registrations: %s", err);
}

/* Points the health checks at snapshot `snap` (the old ones stop). */
static void server_restart_health(struct server *srv, struct snapshot *snap)
{
    health_free(srv->health);
    srv->health = health_new(srv->loop, snap->clusters, snap->cfg->n_clusters);
    if (!srv->health)
        log_error("out of memory starting health checks; endpoints keep their last state");
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (srv->protocols[p].checks_start)
            srv->protocols[p].checks_start(srv, snap);
}

/* Stops every check: they point into the snapshot being replaced. */
static void server_stop_health(struct server *srv)
{
    health_free(srv->health);
    srv->health = NULL;
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (srv->protocols[p].checks_stop)
            srv->protocols[p].checks_stop(srv);
}

static void server_worker_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct server *srv = w->data;
    if (atomic_load(&srv->n_running) == 0)
        ev_break(loop, EVBREAK_ALL);
}

static size_t server_buf_size(const struct cfg *cfg)
{
    size_t size = SERVER_MIN_BUF;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].max_header_bytes + 1024 > size)
            size = cfg->listeners[i].max_header_bytes + 1024;
    return size;
}

static void server_apply_log(struct server *srv, const struct cfg *cfg)
{
    log_level_current = cfg->log.level;
    const char *path = cfg->log.error ? cfg->log.error : "stderr";
    if (srv->error_log_path && strcmp(srv->error_log_path, path) == 0)
        return;
    int fd = 2;
    if (strcmp(path, "stderr") != 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd == -1) {
            log_error("log.error: cannot open '%s': %s; logging to stderr", path, strerror(errno));
            fd = 2;
        }
    }
    log_set_fd(fd);
    /* the old fd stays open: a worker may be writing to it right now */
    free(srv->error_log_path);
    srv->error_log_path = strdup(path);
}

int server_start(struct server *srv, struct ev_loop *loop, const struct server_protocol *protocols,
                 struct cfg *cfg, char *err, size_t err_size)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->protocols = protocols;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (!protocols[cfg->listeners[i].protocol].accept) {
            snprintf(err, err_size, "%s:%d:%d: listener %s: protocol %s is not built in", cfg->path,
                     cfg->listeners[i].line, cfg->listeners[i].col, cfg->listeners[i].name,
                     cfg_protocol_name(cfg->listeners[i].protocol));
            cfg_free(cfg);
            return -EINVAL;
        }
    srv->n_workers = cfg->workers ? cfg->workers : 1;
    srv->buf_size = server_buf_size(cfg);
    srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
    if (!srv->workers) {
        snprintf(err, err_size, "out of memory");
        cfg_free(cfg);
        return -ENOMEM;
    }
    server_apply_log(srv, cfg);
    int rc = server_prepare_socks(srv, cfg, err, err_size);
    if (rc != 0)
        goto fail_workers;
    srv->resolver = resolver_new(loop, &srv->topo, server_topology_changed, srv);
    if (!srv->resolver) {
        snprintf(err, err_size, "out of memory");
        rc = -ENOMEM;
        goto fail_socks;
    }
    resolver_sync(srv->resolver, cfg, 1);
    struct snapshot *snap = snapshot_new(cfg, &srv->topo, srv->n_workers, srv->protocols, err,
                                         err_size);
    if (!snap) {
        rc = -ENOMEM;
        goto fail_socks;
    }
    cfg = NULL; /* the snapshot owns it now */
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        wc->srv = srv;
        pthread_mutex_init(&wc->mu, NULL);
        wc->pending_tail = &wc->pending;
        buf_pool_init(&wc->bufs, srv->buf_size, 4096);
    }
    rc = server_publish(srv, snap);
    if (rc != 0) {
        snprintf(err, err_size, "out of memory");
        snapshot_unref(snap);
        cfg = NULL;
        goto fail_socks;
    }
    ev_async_init(&srv->worker_done, server_worker_done_cb);
    srv->worker_done.data = srv;
    ev_async_start(loop, &srv->worker_done);
    ev_timer_init(&srv->tick, server_tick_cb, SERVER_TICK_S, SERVER_TICK_S);
    srv->tick.data = srv;
    ev_timer_start(loop, &srv->tick);
    server_restart_health(srv, srv->snap);
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        atomic_fetch_add(&srv->n_running, 1);
        rc = worker_start(&wc->worker, w, server_worker_start, server_worker_wake, wc);
        if (rc != 0) {
            atomic_fetch_sub(&srv->n_running, 1);
            snprintf(err, err_size, "cannot start worker thread %u: %s", w, strerror(-rc));
            server_stop(srv);
            return rc;
        }
    }
    srv->m_reloads = metrics_series_get(&server_family_reloads, NULL);
    srv->started_at = srv->loaded_at = ev_time();
    log_info("weir started: %u worker(s), %zu listener(s), %zu cluster(s)", srv->n_workers,
             srv->snap->cfg->n_listeners, srv->snap->cfg->n_clusters);
    return 0;

fail_socks:
    resolver_free(srv->resolver);
    srv->resolver = NULL;
    for (size_t i = 0; i < srv->n_socks; i++) {
        server_close_sock_fds(&srv->socks[i], srv->n_workers);
        free(srv->socks[i].fds);
    }
    free(srv->socks);
    srv->socks = NULL;
    srv->n_socks = 0;
fail_workers:
    free(srv->workers);
    srv->workers = NULL;
    if (cfg)
        cfg_free(cfg);
    return rc;
}

static int server_reload_(struct server *srv, const char *path, char *err, size_t err_size);

int server_reload(struct server *srv, const char *path, char *err, size_t err_size)
{
    int rc = server_reload_(srv, path, err, err_size);
    metrics_add(srv->m_reloads, rc == 0 ? 0 : 1, 1);
    if (rc == 0)
        srv->loaded_at = ev_time();
    return rc;
}

/* Puts back the run-time changes a failed reload had reconciled away. */
static void server_topology_restore(struct server *srv, struct topology *saved)
{
    topology_free(&srv->topo);
    srv->topo = *saved;
}

static int server_reload_(struct server *srv, const char *path, char *err, size_t err_size)
{
    struct cfg *cfg;
    int rc = cfg_load(path, &cfg, err, err_size);
    if (rc != 0)
        return rc;
    if (cfg->workers != srv->n_workers)
        log_warn("reload: workers changed from %u to %u; this takes effect only after a restart",
                 srv->n_workers, cfg->workers);
    if (server_buf_size(cfg) > srv->buf_size)
        log_warn("reload: limits.header_size above %zu bytes takes effect only after a restart",
                 srv->buf_size - 1024);
    rc = server_prepare_socks(srv, cfg, err, err_size);
    if (rc != 0) {
        cfg_free(cfg);
        return rc;
    }
    /* the run-time changes as they are, put back if the new snapshot
     * cannot be made or published: the old configuration keeps serving
     * with them */
    struct topology saved;
    if (topology_copy(&saved, &srv->topo) != 0) {
        snprintf(err, err_size, "out of memory");
        cfg_free(cfg);
        return -ENOMEM;
    }
    topology_reconcile(&srv->topo, cfg);
    struct snapshot *snap = snapshot_new(cfg, &srv->topo, srv->n_workers, srv->protocols, err,
                                         err_size);
    if (!snap) {
        cfg_free(cfg);
        server_topology_restore(srv, &saved);
        return -ENOMEM;
    }
    server_apply_log(srv, cfg);
    snapshot_inherit(snap, srv->snap);
    server_stop_health(srv);
    rc = server_publish(srv, snap);
    if (rc != 0) {
        snprintf(err, err_size, "out of memory publishing the new configuration");
        snapshot_unref(snap);
        server_topology_restore(srv, &saved);
        server_restart_health(srv, srv->snap);
        return rc;
    }
    topology_free(&saved);
    resolver_sync(srv->resolver, cfg, 0);
    server_restart_health(srv, srv->snap);
    log_info("configuration reloaded from %s (generation %u)", path, snap->generation);
    return 0;
}

/* The resolver's answer changed a cluster's endpoints. */
static void server_topology_changed(void *arg)
{
    struct server *srv = arg;
    char err[256];
    if (server_rebuild(srv, err, sizeof(err)) != 0)
        log_error("DNS: publishing the new endpoints: %s", err);
}

int server_rebuild(struct server *srv, char *err, size_t err_size)
{
    struct cfg *cfg = srv->snap->cfg;
    cfg_ref(cfg);
    struct snapshot *snap = snapshot_new(cfg, &srv->topo, srv->n_workers, srv->protocols, err,
                                         err_size);
    if (!snap) {
        cfg_unref(cfg);
        return -ENOMEM;
    }
    snapshot_inherit(snap, srv->snap);
    server_stop_health(srv);
    int rc = server_publish(srv, snap);
    if (rc != 0) {
        snprintf(err, err_size, "out of memory publishing the new endpoints");
        snapshot_unref(snap);
    }
    server_restart_health(srv, srv->snap);
    return rc;
}

int server_wait_adopted(struct server *srv, unsigned timeout_ms)
{
    unsigned want = srv->snap->generation;
    for (unsigned waited_us = 0; waited_us < timeout_ms * 1000u; waited_us += 100) {
        unsigned w = 0;
        for (; w < srv->n_workers; w++) {
            const struct wctx *wc = &srv->workers[w];
            if (atomic_load_explicit(&wc->adopted, memory_order_acquire) < want)
                break;
        }
        if (w == srv->n_workers)
            return 0;
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return -ETIMEDOUT;
}

void server_stop(struct server *srv)
{
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        pthread_mutex_lock(&wc->mu);
        wc->pending_stop = 1;
        pthread_mutex_unlock(&wc->mu);
        if (wc->worker.loop)
            worker_wake(&wc->worker);
    }
}

void server_free(struct server *srv)
{
    ev_timer_stop(srv->loop, &srv->tick);
    server_stop_health(srv);
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        worker_join(&wc->worker);
        for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
            if (srv->protocols[p].worker_free)
                srv->protocols[p].worker_free(wc);
        server_close_listeners(wc);
        if (wc->snap)
            snapshot_unref(wc->snap);
        while (wc->pending) {
            struct pending_pub *next = wc->pending->next;
            snapshot_unref(wc->pending->snap);
            free(wc->pending->fds);
            free(wc->pending);
            wc->pending = next;
        }
        buf_pool_destroy(&wc->bufs);
        pthread_mutex_destroy(&wc->mu);
    }
    free(srv->workers);
    for (size_t i = 0; i < srv->n_socks; i++)
        free(srv->socks[i].fds);
    free(srv->socks);
    if (srv->snap)
        snapshot_unref(srv->snap);
    free(srv->error_log_path);
    metrics_series_put(srv->m_reloads);
    srv->m_reloads = NULL;
    resolver_free(srv->resolver);
    srv->resolver = NULL;
    topology_free(&srv->topo);
    ev_async_stop(srv->loop, &srv->worker_done);
}

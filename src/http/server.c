/* server: see server.h.
 *
 * Listening sockets are made on the main thread, one per worker per address
 * (SO_REUSEPORT: the kernel spreads connections over the workers), so a
 * reload that adds an address fails before anything is published if the
 * address cannot be bound. A worker closes the sockets of addresses a new
 * snapshot no longer has. */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/proxy.h"
#include "resp/resp_proxy.h"

#define SERVER_BACKLOG 4096
#define SERVER_MIN_BUF (16 * 1024)

/* ---- snapshots ------------------------------------------------------------ */

static unsigned snapshot_generation;

static int snapshot_open_access(const struct cfg *cfg, char *err, size_t err_size)
{
    const char *a = cfg->log.access;
    if (!a || strcmp(a, "off") == 0)
        return -1;
    if (strcmp(a, "stdout") == 0)
        return dup(1);
    int fd = open(a, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, err_size, "%s: log.access: cannot open '%s': %s", cfg->path, a, strerror(errno));
        return -2;
    }
    return fd;
}

struct snapshot *snapshot_new(struct cfg *cfg, unsigned n_workers, char *err, size_t err_size)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->access_fd = snapshot_open_access(cfg, err, err_size);
    if (s->access_fd == -2) {
        free(s);
        return NULL;
    }
    if (cluster_set_new(cfg, n_workers, &s->clusters) != 0 ||
        resp_health_states_new(cfg, &s->redis_health) != 0) {
        cluster_set_free(s->clusters, cfg->n_clusters);
        snprintf(err, err_size, "out of memory building clusters");
        if (s->access_fd >= 0)
            close(s->access_fd);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->generation = ++snapshot_generation;
    return s;
}

void snapshot_ref(struct snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snapshot_unref(struct snapshot *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    cluster_set_free(s->clusters, s->cfg->n_clusters);
    resp_health_states_free(s->redis_health, s->cfg->n_redis_clusters);
    if (s->access_fd >= 0)
        close(s->access_fd);
    cfg_free(s->cfg);
    free(s);
}

/* ---- worker side -------------------------------------------------------- */

/* Accepts what is pending on wl (at most a batch, for fairness) and hands
 * each connection to its protocol's session. At limits.connections the
 * listener pauses: new connections wait in the kernel's backlog. */
static void server_listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct wlistener *wl = w->data;
    struct wctx *wc = wl->wc;
    const struct cfg_listener *lst = &wc->snap->cfg->listeners[wl->index];
    int redis = lst->protocol == CFG_PROTOCOL_REDIS;
    if (redis && resp_prepare(wc, lst) < 0)
        return;
    for (int i = 0; i < 64; i++) {
        if (wc->n_clients >= lst->max_connections) {
            log_warn("listener %s: %u connections on this worker (limits.connections); "
                     "not accepting until one closes", lst->name, wc->n_clients);
            ev_io_stop(loop, &wl->io);
            wc->accept_paused = 1;
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
        if (redis)
            resp_start(wc, wl, fd);
        else
            proxy_start(wc, wl, fd, &peer);
    }
}

static void server_close_listeners(struct wctx *wc)
{
    for (size_t i = 0; i < wc->n_listeners; i++) {
        ev_io_stop(wc->worker.loop, &wc->listeners[i].io);
        close(wc->listeners[i].fd);
    }
    free(wc->listeners);
    wc->listeners = NULL;
    wc->n_listeners = 0;
}

/* Replaces the worker's listener set with `fds` (one per listener of the
 * new snapshot): sockets kept across the reload just get their new index,
 * sockets no longer listed are closed. */
static void server_adopt_listeners(struct wctx *wc, const int *fds, size_t n)
{
    struct wlistener *nl = calloc(n ? n : 1, sizeof(*nl));
    if (!nl) {
        log_error("worker %u: out of memory adopting listeners; keeping the old ones", wc->worker.id);
        return;
    }
    for (size_t i = 0; i < wc->n_listeners; i++) {
        struct wlistener *old = &wc->listeners[i];
        int kept = 0;
        for (size_t j = 0; j < n; j++)
            kept |= fds[j] == old->fd;
        ev_io_stop(wc->worker.loop, &old->io);
        if (!kept)
            close(old->fd);
    }
    free(wc->listeners);
    for (size_t j = 0; j < n; j++) {
        nl[j].fd = fds[j];
        nl[j].index = j;
        nl[j].wc = wc;
        ev_io_init(&nl[j].io, server_listener_cb, fds[j], EV_READ);
        nl[j].io.data = &nl[j];
        if (!wc->draining)
            ev_io_start(wc->worker.loop, &nl[j].io);
    }
    wc->listeners = nl;
    wc->n_listeners = n;
    wc->accept_paused = 0;
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
        server_adopt_listeners(wc, list->fds, list->snap->cfg->n_listeners);
        if (wc->snap)
            snapshot_unref(wc->snap);
        wc->snap = list->snap;
        free(list->fds);
        free(list);
        list = next;
    }
    if (stop && !wc->draining) {
        wc->draining = 1;
        server_close_listeners(wc);
        proxy_drain(wc);
        resp_drain(wc);
    }
}

static void server_worker_start(struct worker *w)
{
    struct wctx *wc = w->ctx;
    wc->rng = (uint64_t)time(NULL) ^ ((uint64_t)w->id << 32) ^ (uint64_t)(uintptr_t)wc;
    pool_init(&wc->upstreams, w->loop);
    server_worker_wake(w);
}

void server_worker_idle(struct wctx *wc)
{
    pool_destroy(&wc->upstreams);
    ev_async_stop(wc->worker.loop, &wc->worker.wake);
    ev_break(wc->worker.loop, EVBREAK_ALL);
    atomic_fetch_sub(&wc->srv->n_running, 1);
    ev_async_send(wc->srv->loop, &wc->srv->worker_done);
}

void server_resume_accept(struct wctx *wc)
{
    if (wc->draining)
        return;
    for (size_t i = 0; i < wc->n_listeners; i++)
        ev_io_start(wc->worker.loop, &wc->listeners[i].io);
    wc->accept_paused = 0;
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

static int server_open_sock(struct server *srv, const struct cfg_listener *l, struct listen_sock *ls,
                            char *err, size_t err_size)
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
        int fd = net_listen((const struct sockaddr *)&l->addr, l->addrlen, SERVER_BACKLOG);
        if (fd < 0) {
            snprintf(err, err_size, "%s:%d:%d: listener %s: cannot listen on %s: %s", srv->snap ? srv->snap->cfg->path : "config",
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
            int rc = server_open_sock(srv, &cfg->listeners[i], ls, err, err_size);
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

#define SERVER_TICK_S 0.1

static void server_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;
    cluster_set_tick(srv->snap->clusters, srv->snap->cfg->n_clusters, endpoint_now_ms());
}

/* Points the health checks at snapshot `snap` (the old ones stop). */
static void server_restart_health(struct server *srv, struct snapshot *snap)
{
    health_free(srv->health);
    resp_health_free(srv->redis_health);
    srv->health = health_new(srv->loop, snap->clusters, snap->cfg->n_clusters);
    srv->redis_health = resp_health_new(srv->loop, snap->redis_health, snap->cfg->n_redis_clusters);
    if (!srv->health || !srv->redis_health)
        log_error("out of memory starting health checks; endpoints keep their last state");
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

int server_start(struct server *srv, struct ev_loop *loop, struct cfg *cfg, char *err, size_t err_size)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
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
    struct snapshot *snap = snapshot_new(cfg, srv->n_workers, err, err_size);
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
    log_info("weir started: %u worker(s), %zu listener(s), %zu cluster(s)", srv->n_workers,
             srv->snap->cfg->n_listeners, srv->snap->cfg->n_clusters);
    return 0;

fail_socks:
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

int server_reload(struct server *srv, const char *path, char *err, size_t err_size)
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
    struct snapshot *snap = snapshot_new(cfg, srv->n_workers, err, err_size);
    if (!snap) {
        cfg_free(cfg);
        return -ENOMEM;
    }
    server_apply_log(srv, cfg);
    cluster_set_inherit(snap->clusters, cfg->n_clusters, srv->snap->clusters,
                        srv->snap->cfg->n_clusters, endpoint_now_ms());
    resp_health_states_inherit(snap->redis_health, cfg->n_redis_clusters, srv->snap->redis_health,
                               srv->snap->cfg->n_redis_clusters);
    health_free(srv->health); /* it points into the snapshot being replaced */
    srv->health = NULL;
    resp_health_free(srv->redis_health);
    srv->redis_health = NULL;
    rc = server_publish(srv, snap);
    if (rc != 0) {
        snprintf(err, err_size, "out of memory publishing the new configuration");
        snapshot_unref(snap);
        server_restart_health(srv, srv->snap);
        return rc;
    }
    server_restart_health(srv, srv->snap);
    log_info("configuration reloaded from %s (generation %u)", path, snap->generation);
    return 0;
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
    health_free(srv->health);
    srv->health = NULL;
    resp_health_free(srv->redis_health);
    srv->redis_health = NULL;
    for (unsigned w = 0; w < srv->n_workers; w++) {
        struct wctx *wc = &srv->workers[w];
        worker_join(&wc->worker);
        proxy_worker_cleanup(wc);
        resp_worker_cleanup(wc);
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
    ev_async_stop(srv->loop, &srv->worker_done);
}

/* server: the running HTTP proxy: configuration snapshots, worker threads,
 * their listening sockets, reload and graceful shutdown.
 *
 *   main thread                          worker i (own libev loop)
 *   cfg_load -> snapshot_new             +-- wlisteners (own SO_REUSEPORT fds)
 *   listen fds (one per worker) -------> +-- clients (proxy sessions)
 *   server_reload: publish(snapshot) --> +-- upstream pool, buffer pool
 *   server_stop:   stop flag ----------> drain, exit loop
 *
 * A snapshot is immutable and reference counted: the main thread, every
 * worker and every connection hold a reference to the one they use, so a
 * reload never changes anything under a request in flight. */
#ifndef WEIR_HTTP_SERVER_H
#define WEIR_HTTP_SERVER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/worker.h"
#include "http/http_parser.h"
#include "resp/resp_health.h"
#include "upstream/cluster.h"
#include "upstream/health.h"
#include "upstream/pool.h"

struct snapshot {
    _Atomic int refs;
    unsigned generation;
    struct cfg *cfg;
    struct cluster *clusters;      /* cfg->n_clusters, same order */
    struct resp_health_state **redis_health; /* cfg->n_redis_clusters, same order */
    int access_fd;                 /* -1: access log off */
};

/* Takes ownership of cfg on success. Returns NULL (cfg still the caller's)
 * when memory is short or the access log cannot be opened (err says why). */
struct snapshot *snapshot_new(struct cfg *cfg, unsigned n_workers, char *err, size_t err_size);
void snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

struct wctx;

struct wlistener {
    ev_io io;
    int fd;
    size_t index;                  /* into the worker snapshot's cfg->listeners */
    struct wctx *wc;
};

struct client;
struct resp_wctx;

/* A configuration published to a worker and not yet adopted by it. */
struct pending_pub {
    struct snapshot *snap;         /* one reference, handed to the worker */
    int *fds;                      /* one per listener of snap */
    struct pending_pub *next;
};

struct wctx {
    struct worker worker;
    struct server *srv;
    struct snapshot *snap;         /* this worker's current snapshot (one reference) */
    struct wlistener *listeners;
    size_t n_listeners;
    struct buf_pool bufs;
    struct pool upstreams;
    struct http_msg msg;           /* scratch: one head is parsed at a time */
    struct client *clients;        /* every open client connection */
    struct client *free_clients;
    unsigned n_clients;
    unsigned n_free_clients;
    unsigned n_queued;             /* requests waiting for a free endpoint (max_pending) */
    int accept_paused;
    int draining;
    uint64_t rng;
    struct resp_wctx *resp;        /* the Redis proxy's worker state (resp_proxy.c), or NULL */
    /* mailbox, written by the main thread under mu */
    pthread_mutex_t mu;
    struct pending_pub *pending;   /* FIFO: adopted in order, so each adoption
                                    * closes what the one after it dropped */
    struct pending_pub **pending_tail;
    int pending_stop;
};

struct listen_sock {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int *fds;                      /* one per worker, owned by the workers once published */
    int used;                      /* mark for the reconciliation at reload */
};

struct server {
    struct ev_loop *loop;          /* the main thread's */
    struct snapshot *snap;
    unsigned n_workers;
    struct wctx *workers;
    struct listen_sock *socks;
    size_t n_socks;
    size_t buf_size;
    ev_async worker_done;
    ev_timer tick;                 /* re-derives endpoint availability (ejections, breakers, slow start) */
    struct health *health;         /* active checks of the current snapshot */
    struct resp_health *redis_health; /* its Redis servers' checks */
    _Atomic unsigned n_running;
    char *error_log_path;
    int error_log_fd;
};

/* Starts workers and listeners for cfg (always takes ownership of cfg).
 * Returns 0, or a negative errno with err filled (nothing left running). */
int server_start(struct server *srv, struct ev_loop *loop, struct cfg *cfg, char *err,
                 size_t err_size);
/* Loads `path` again; on success publishes it to the workers and returns 0.
 * On failure returns negative, err says why, and the old config serves on. */
int server_reload(struct server *srv, const char *path, char *err, size_t err_size);
/* Asks every worker to stop accepting, finish in-flight requests and exit. */
void server_stop(struct server *srv);
/* Joins the workers (they must have finished) and frees everything. */
void server_free(struct server *srv);

#endif

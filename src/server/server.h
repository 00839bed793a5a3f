/* server: the running daemon below every protocol: configuration snapshots,
 * worker threads, their listening sockets, accept, connection counts,
 * reload and graceful shutdown. See server.c for the design.
 *
 * The server names no protocol. Each protocol is a row of a table of
 * struct server_protocol (the registration point lives above the server,
 * src/protocols.c) indexed by enum cfg_protocol and handed to
 * server_start(). A protocol tells the server when one of its sessions
 * starts and ends (server_conn_open / server_conn_close); the server alone
 * counts connections per listener and decides when a draining worker is
 * idle. */
#ifndef WEIR_SERVER_SERVER_H
#define WEIR_SERVER_SERVER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/buf.h"
#include "server/config.h"
#include "core/worker.h"
#include "server/snapshot.h"
#include "upstream/health.h"
#include "upstream/topology.h"

struct wctx;
struct server;
struct metric_series;

/* A listening socket on one worker. The object lives as long as its socket
 * is listed in the worker's snapshot or a connection accepted on it is
 * open, so a session may keep a pointer to it across reloads and is
 * counted against the same socket when it closes. */
struct wlistener {
    ev_io io;
    int fd;
    size_t index;                  /* into wc->snap->cfg->listeners; valid while listed */
    struct wctx *wc;
    unsigned n_conns;              /* open connections accepted here, on this worker */
    unsigned listed : 1;           /* 0: a reload or the drain closed the socket */
    unsigned paused : 1;           /* at limits.connections: not accepting */
    struct metric_series *m_accepted, *m_open; /* weir_connections_total / weir_connections */
    struct metric_series *m_bytes_in, *m_bytes_out; /* weir_bytes_received/sent_total: the
                                                        protocol adds what its clients send/get */
};

/* A protocol's hooks. All run on the worker's thread except worker_free
 * and the main-thread hooks at the end. Only accept is required; a NULL
 * hook does nothing. */
struct server_protocol {
    const char *name;
    /* Once, when the worker starts, before anything is accepted. Returns 0
     * or a negative errno (logged by the hook; the worker runs on). */
    int (*worker_init)(struct wctx *wc);
    /* Before accepting on a listener lst of this protocol: makes the
     * protocol's worker state current (e.g. for a new snapshot). Returns 0,
     * or negative to accept nothing this time (logged by the hook). */
    int (*ready)(struct wctx *wc, const struct cfg_listener *lst);
    /* Starts a session on fd (owned by the protocol from now on: it closes
     * it on failure) accepted on wl from peer. The session calls
     * server_conn_open() when it starts and server_conn_close() when it ends. */
    void (*accept)(struct wctx *wc, struct wlistener *wl, int fd,
                   const struct sockaddr_storage *peer);
    /* The worker is draining: close idle sessions now, let busy ones finish
     * their current request and close. */
    void (*drain)(struct wctx *wc);
    /* Once, when the worker is idle, before its loop ends: release what is
     * registered with the loop. */
    void (*worker_stop)(struct wctx *wc);
    /* On the main thread after the worker's thread ended (its loop is gone):
     * free everything the protocol holds for wc. */
    void (*worker_free)(struct wctx *wc);
    /* Main thread: state the workers share for one snapshot (the Redis
     * shards' health), kept in snap->proto[p]. snapshot_init builds it
     * (returns 0 or -ENOMEM), snapshot_inherit carries what still applies
     * over from the snapshot being replaced, snapshot_free frees it with
     * the snapshot. */
    int (*snapshot_init)(struct snapshot *snap);
    void (*snapshot_inherit)(struct snapshot *snap, const struct snapshot *old);
    void (*snapshot_free)(struct snapshot *snap);
    /* Main thread: (re)starts the protocol's own checks on snap, stopping
     * those of the snapshot before (state in srv->proto[p]); checks_stop
     * stops them for good. */
    void (*checks_start)(struct server *srv, struct snapshot *snap);
    void (*checks_stop)(struct server *srv);
};


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
    struct wlistener **listeners;  /* one per listener of snap, in its order */
    size_t n_listeners;
    unsigned n_conns;              /* open connections of every listener (server_conn_*) */
    struct buf_pool bufs;
    uint64_t rng;
    int draining;                  /* stop asked: no accepting, sessions finish and close */
    int in_drain;                  /* the protocols' drain hooks are running */
    int idle;                      /* server_worker_idle has run */
    void *proto[CFG_PROTOCOL_COUNT]; /* each protocol's own worker state (its worker_init) */
    /* mailbox, written by the main thread under mu */
    pthread_mutex_t mu;
    struct pending_pub *pending;   /* FIFO: adopted in order, so each adoption
                                    * closes what the one after it dropped */
    struct pending_pub **pending_tail;
    int pending_stop;
    _Atomic unsigned adopted;      /* generation of the snapshot the worker runs (server_wait_adopted) */
};

struct listen_sock {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int *fds;                      /* one per worker, owned by the workers once published */
    int used;                      /* mark for the reconciliation at reload */
};

struct server {
    struct ev_loop *loop;          /* the main thread's */
    const struct server_protocol *protocols; /* CFG_PROTOCOL_COUNT rows */
    struct snapshot *snap;
    unsigned n_workers;
    struct wctx *workers;
    struct listen_sock *socks;
    size_t n_socks;
    size_t buf_size;
    ev_async worker_done;
    ev_timer tick;                 /* re-derives endpoint availability (ejections, breakers, slow start) */
    struct health *health;         /* active checks of the current snapshot */
    void *proto[CFG_PROTOCOL_COUNT]; /* each protocol's main-thread state (checks_start) */
    _Atomic unsigned n_running;
    char *error_log_path;
    int error_log_fd;
    struct topology topo;          /* run-time endpoint changes, applied to every snapshot */
    struct resolver *resolver;     /* DNS discovery of endpoints given as names */
    struct metric_series *m_reloads; /* weir_config_reloads_total{result} */
    double loaded_at;              /* wall clock of the last successful load (start or reload) */
    double started_at;             /* wall clock of server_start */
};

/* Starts workers and listeners for cfg (always takes ownership of cfg),
 * with protocols[p] serving the listeners of protocol p (CFG_PROTOCOL_COUNT
 * rows, static: not copied). Returns 0, or a negative errno with err filled
 * (nothing left running). */
int server_start(struct server *srv, struct ev_loop *loop, const struct server_protocol *protocols,
                 struct cfg *cfg, char *err, size_t err_size);
/* Loads `path` again; on success publishes it to the workers and returns 0.
 * On failure returns negative, err says why, and the old config serves on. */
int server_reload(struct server *srv, const char *path, char *err, size_t err_size);
/* Builds and publishes a new snapshot of the running configuration with
 * srv->topo as it is now (after a run-time endpoint change). Returns 0, or
 * negative with err filled (the running snapshot stays). */
int server_rebuild(struct server *srv, char *err, size_t err_size);
/* Waits (blocking the main thread, at most timeout_ms) until every running
 * worker has adopted the current snapshot, so an API answer given after it
 * holds for every request that follows. Returns 0 or -ETIMEDOUT. */
int server_wait_adopted(struct server *srv, unsigned timeout_ms);
/* Asks every worker to stop accepting, finish in-flight requests and exit. */
void server_stop(struct server *srv);
/* Joins the workers (they must have finished) and frees everything. */
void server_free(struct server *srv);

/* Worker thread: a session accepted on wl started. */
void server_conn_open(struct wctx *wc, struct wlistener *wl);
/* Worker thread (or the main thread after the worker ended, at
 * worker_free): the session opened with server_conn_open(wc, wl) ended. May
 * resume accepting on wl, free wl (no longer listed, last connection), or,
 * when the worker drains and this was its last connection, end the
 * worker's loop. */
void server_conn_close(struct wctx *wc, struct wlistener *wl);

#endif

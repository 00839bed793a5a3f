/* resp_types: the objects of the Redis proxy, shared by its files
 * (resp_proxy.c: client sessions and commands; resp_backend.c: servers,
 * backend connections and routing, reading the health the main thread's
 * checks share, resp_health.h). Internal to src/resp/.
 *
 *   session (client) --queue, in order--> msg --> msg --> msg
 *                                          |       `-frags-> msg (one key) ...
 *   conn (backend) --queue, in send order--> msg ...   (many sessions share a conn)
 *
 * A msg is one client command (or one fragment of a split one). It sits in
 * its session's queue until its reply has been written to the client, and
 * in a backend connection's queue from the moment its bytes are queued
 * there until the reply arrives. Replies land in the msg's chunk chain
 * (or, the fast path, straight in the client's output buffer when the msg
 * is first in line). A session that closes leaves its in-flight msgs behind
 * as orphans (s == NULL): their replies are read and dropped, so the
 * shared connection stays in step. */
#ifndef WEIR_RESP_TYPES_H
#define WEIR_RESP_TYPES_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "resp/redis_cfg.h"
#include "resp/resp_health.h"
#include "resp/resp_parser.h"
#include "resp/resp_shard.h"
#include "resp/resp_stats.h"

struct wctx;
struct metric_series;
struct snapshot;
struct resp_session;
struct resp_conn;
struct resp_server;

#define RESP_CHUNK_DATA (4096 - 16)

struct resp_chunk {
    struct resp_chunk *next;
    uint32_t pos;                  /* first byte not yet consumed */
    uint32_t len;                  /* bytes in data */
    char data[RESP_CHUNK_DATA];
};

struct resp_msg {
    struct resp_msg *next;         /* session queue / parent's fragments / free list */
    struct resp_msg *bnext;        /* backend connection queue */
    struct resp_session *s;        /* NULL: orphan */
    struct resp_msg *parent;       /* a fragment's command */
    struct resp_msg *frags, *frags_tail;
    struct resp_conn *conn;        /* the connection it waits on (in_backend) */
    struct resp_chunk *rhead, *rtail; /* reply bytes */
    uint32_t frags_left;           /* fragments without a reply yet */
    uint32_t n_frags;
    int64_t value;                 /* reply: a top-level integer, or an array's length */
    ev_tstamp t_sent;
    uint8_t done;                  /* the whole reply is here */
    uint8_t in_backend;
    uint8_t merge;                 /* enum resp_merge, for a command with fragments */
    uint8_t reply_type;            /* first byte of the reply */
    uint8_t direct;                /* reply bytes went straight to the client's out */
    uint8_t quit;                  /* close the session after this reply */
    uint8_t silent;                /* CLIENT REPLY OFF / SKIP: its reply is dropped */
    uint8_t blocking;              /* a blocking command (counted in stats->blocked while it
                                      waits on its dedicated connection) */
    uint32_t shard;                /* SCAN: the shard asked */
    uint32_t route;                /* SCAN: the cluster's shard count */
    uint32_t sections;             /* INFO: the sections asked (resp_info.h) */
    /* a Redis Cluster backend: the request as sent, to follow MOVED / ASK
     * (resp_redirect.c); NULL when it is not kept */
    char *req;
    uint32_t req_len;
    uint8_t redirects;             /* MOVED / ASK followed and retries so far */
    uint16_t slot;                 /* its hash slot (a retry asks the map again) */
    uint8_t cls;                   /* metrics: 1 + its enum resp_class; 0 = not a command */
    uint8_t backend_err;           /* metrics: failed for want of the shard's reply */
    ev_tstamp t_parsed;            /* metrics: the loop's time when the command was parsed */
};

enum resp_conn_state { RESP_CONN_IDLE, RESP_CONN_CONNECTING, RESP_CONN_UP };

struct resp_conn {
    ev_io io;
    ev_timer timer;
    int fd;
    uint8_t state;                 /* enum resp_conn_state */
    uint8_t readable, writable;
    uint8_t dedicated;             /* a blocking command's own connection */
    uint8_t in_flush_list;
    uint8_t owner_waits;           /* dedicated: the owner paused a stream on out_bytes */
    uint8_t retired;               /* dedicated, given up by its session: closed once idle */
    uint8_t proto;                 /* 2, or 3: HELLO 3 goes first on every connect */
    uint8_t pubsub;                /* dedicated to its owner's subscriptions: all it sends are
                                      pushes for the owner (resp_pubsub.c) */
    struct resp_msg *push;         /* pubsub: the message being read */
    struct resp_conn *retired_next;
    struct resp_server *srv;
    struct resp_wctx *rw;
    struct resp_chunk *out_head, *out_tail; /* request bytes not yet written */
    uint64_t out_bytes;            /* bytes in that chain */
    struct buf in;                 /* reply bytes read, from the worker's buf_pool */
    struct resp_parser parser;
    struct resp_msg *q_head, *q_tail; /* waiting for replies, in send order */
    uint32_t n_q;
    struct resp_conn *flush_next;
    struct resp_session *owner;    /* dedicated: the session using it */
};

/* One Redis server (primary or replica) as seen by one worker. Kept per
 * address, so connections survive a reload that keeps the server. */
struct resp_server {
    struct resp_server *next;
    struct resp_wctx *rw;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[64];                 /* "127.0.0.1:7001" */
    struct resp_conn *conns;       /* n_conns shared connections */
    uint32_t n_conns;
    struct resp_conn *conn3;       /* the shared RESP3 connection (HELLO 3), made when needed */
    uint32_t rr;
    int is_replica;
    uint64_t failed_ms;            /* endpoint_now_ms() of this worker's last failed connection
                                      to it, 0 = none: skipped until a health check passes after */
    uint64_t commands;             /* sent to it (INFO) */
    uint8_t readonly;              /* a Redis Cluster node read from: READONLY on connect */
    struct metric_series *m_errors; /* weir_redis_backend_errors_total of its shard in the
                                       worker's routes (NULL: none), re-pointed with them */
    /* settings of the cluster that last used it, copied: a server outlives
     * the configuration snapshot it was made for */
    uint64_t connect_timeout_ms;
    uint64_t response_timeout_ms;
    uint32_t max_blocking;
    struct resp_limits reply_limits; /* for parsing its replies (limits.depth) */
};

struct resp_shard_srv {
    struct resp_server *primary;   /* the configured one, or the sentinel's choice */
    struct resp_server **replicas;
    uint32_t n_replicas;
    uint32_t rr;
    char *sentinel_master;         /* owned copy of the master's name once sentinel moved
                                      the primary (kept across reloads), else NULL */
};

/* A redis cluster as routed by one worker: built from the worker's snapshot. */
struct resp_route {
    const struct cfg_redis_cluster *cfg;
    char name[64];                 /* cfg->name, readable after the snapshot is gone */
    struct resp_dist dist;
    struct resp_shard_srv *shards;
    uint32_t n_shards;
    uint8_t *live;                 /* auto_eject: shards in dist (1) or ejected (0) */
    struct resp_health_state *hs;  /* the main thread's checks of this cluster (one reference) */
    uint64_t hs_version;           /* hs->version last followed */
    /* a Redis Cluster backend (cfg->n_seeds > 0): shards are its primaries,
     * from the slot map, and the proxy's "shard" of a key is its hash slot */
    struct resp_cmap *cmap;        /* one reference, NULL until the first map */
    uint64_t cmap_version;         /* hs->cmap_version last followed */
};

struct resp_wctx {
    struct wctx *wc;
    struct snapshot *snap;         /* the snapshot routes were built from (one reference) */
    struct resp_route *routes;     /* one per cfg->redis_clusters */
    size_t n_routes;
    struct resp_server *servers;
    struct resp_session *sessions;
    struct resp_session *free_sessions;
    unsigned n_sessions, n_free_sessions;
    struct resp_msg *free_msgs;
    unsigned n_free_msgs;
    struct resp_chunk *free_chunks;
    unsigned n_free_chunks;
    struct resp_conn *flush_list;  /* connections with bytes to write after this round */
    struct resp_conn *retired;     /* dedicated connections waiting for their last replies */
    struct resp_session *dirty;    /* sessions with replies to flush */
    unsigned n_blocking;
    struct resp_arg *args;         /* scratch for the parser, args_cap entries */
    uint32_t args_cap;
    uint64_t routes_gen;           /* bumped when routes are rebuilt */
    struct resp_stats *stats;      /* this worker's counters (INFO), written here only */
    ev_async *clients_async;       /* CLIENT KILL / UNBLOCK from any worker (resp_clients.h) */
    /* Redis Cluster backends: msgs waiting to be sent again (resp_redirect.c),
     * linked by bnext, t_sent their due time */
    struct resp_msg *retry_head, *retry_tail;
    ev_timer retry_timer;          /* active while the list is not empty */
};

/* ---- resp_proxy.c: replies back to sessions ---- */
struct resp_chunk *resp_chunk_get(struct resp_wctx *rw);
void resp_chunk_put(struct resp_wctx *rw, struct resp_chunk *c);
void resp_chunks_free(struct resp_wctx *rw, struct resp_chunk *head);
struct resp_msg *resp_msg_get(struct resp_wctx *rw);
void resp_msg_put(struct resp_wctx *rw, struct resp_msg *m);
/* Appends reply bytes of m (at most one reply, possibly in pieces). */
int resp_msg_append(struct resp_wctx *rw, struct resp_msg *m, const char *data, size_t len);
/* m's reply is complete (type: first byte, value: integer / array length). */
void resp_msg_complete(struct resp_wctx *rw, struct resp_msg *m, uint8_t type, int64_t value);
/* m failed before a reply: it gets "-ERR <text>". */
void resp_msg_fail(struct resp_wctx *rw, struct resp_msg *m, const char *text);
/* The fast path: writes a complete reply straight to the client when m is
 * first in line and it fits. Returns 1 if done so (m is complete then). */
int resp_msg_direct(struct resp_wctx *rw, struct resp_msg *m, const char *data, size_t len,
                    uint8_t type, int64_t value);
/* Asks for s to be pumped after this callback (a stream it paused may go on). */
void resp_session_wake(struct resp_session *s);
/* A pubsub connection of s delivered a complete message m (s owns it now). */
void resp_session_pushed(struct resp_session *s, struct resp_msg *m);
/* A pubsub connection of s failed: s is closed (its subscriptions are gone). */
void resp_session_lost(struct resp_session *s);
/* A blocking command of s starts (1) or stops (-1) waiting (CLIENT LIST, UNBLOCK). */
void resp_session_blocked(struct resp_session *s, int delta);
/* Pumps the sessions that got replies (after a backend read). */
void resp_run_dirty(struct resp_wctx *rw);

#endif

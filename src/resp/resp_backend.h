/* resp_backend: a worker's Redis servers, the connections to them and the
 * routing table built from the configuration and the shared health state.
 *
 * Internal to src/resp/ (resp_proxy.c is its one user). */
#ifndef WEIR_RESP_BACKEND_H
#define WEIR_RESP_BACKEND_H

#include "resp/resp_types.h"

/* Rebuilds the worker's routes when its snapshot changed, and follows
 * what the main thread's health checks changed since the last call
 * (sentinel primaries, auto_eject). Returns 0 or -ENOMEM (the old routes
 * stay). */
int resp_routes_sync(struct resp_wctx *rw);
/* The route of the redis cluster named `name`, or NULL. */
struct resp_route *resp_route_get(struct resp_wctx *rw, const char *name);
/* The shard of a key: for a Redis Cluster backend its hash slot (0..16383),
 * else its shard by the distribution; -ENOENT when there is none. */
int resp_route_shard(const struct resp_route *r, const char *key, size_t len);
/* The index in r->shards of the shard serving `shard`: itself, or for a
 * Redis Cluster backend (shard = slot) its primary's index in the map;
 * UINT32_MAX when no node serves the slot. */
uint32_t resp_route_index(const struct resp_route *r, uint32_t shard);
/* The `shard` to pass for the i-th of r->n_shards when a command goes to
 * every shard: i, or for a Redis Cluster backend a slot its i-th primary
 * serves. */
uint32_t resp_route_fan(const struct resp_route *r, uint32_t i);
/* The server a command on `shard` goes to: the primary, or for a read a
 * replica chosen by read_from. NULL when the primary is down. */
struct resp_server *resp_route_server(struct resp_route *r, uint32_t shard, int read);

/* The server at `address` ("host:port", numeric), made like `like` when
 * this worker has none there yet (a MOVED / ASK to a node not in its map).
 * NULL for a bad address or out of memory. */
struct resp_server *resp_server_at(struct resp_wctx *rw, const char *address,
                                   const struct resp_server *like);
/* A shared connection of srv, connecting it if needed. NULL when it cannot
 * even start connecting. */
struct resp_conn *resp_server_conn(struct resp_server *srv);
/* The shared RESP3 connection of srv (for RESP3 clients: replies pass on
 * as the server sends them), connecting it if needed. NULL as above. */
struct resp_conn *resp_server_conn3(struct resp_server *srv);
/* A new connection of srv for one session's blocking commands (at most
 * max_blocking per worker), speaking `proto` (2 or 3). NULL when over the
 * cap or the connect fails. */
struct resp_conn *resp_conn_dedicated(struct resp_server *srv, struct resp_session *owner,
                                      int proto);
/* A streamed request pauses while its connection holds this many unwritten
 * bytes, and goes on once they are below the low mark. */
#define RESP_STREAM_HIGH_BYTES (256u * 1024)
#define RESP_STREAM_LOW_BYTES (64u * 1024)

/* Closes c at once: every msg waiting on it fails with an error naming why;
 * a shared connection's server is marked down. c stays allocated (idle). */
void resp_conn_fail(struct resp_conn *c, const char *why);
/* CLIENT UNBLOCK: the blocking command waiting at the head of dedicated
 * connection c gets reply[0..len) instead of the server's, and c is closed
 * (what was queued behind it fails). Nothing when none waits there. */
void resp_conn_cancel(struct resp_conn *c, const char *reply, size_t len);
/* Closes a dedicated connection: its waiting msgs become orphans. */
void resp_conn_close_dedicated(struct resp_conn *c);

/* Gives up a dedicated connection whose msgs still wait for replies: they
 * get them, then resp_conn_reap() closes it. */
void resp_conn_retire(struct resp_conn *c);
/* Closes the retired connections that have no reply left to wait for (not
 * from inside a connection's callback). */
void resp_conn_reap(struct resp_wctx *rw);

/* Appends request bytes to c's output (written at the end of the round).
 * Returns 0 or -ENOMEM. */
int resp_conn_write(struct resp_conn *c, const void *data, size_t len);
/* Queues m to receive c's next reply not yet claimed. */
void resp_conn_push(struct resp_conn *c, struct resp_msg *m);
/* Writes what every connection touched this round has queued. */
void resp_flush_all(struct resp_wctx *rw);

/* Frees every server and connection (worker exit). */
void resp_backend_cleanup(struct resp_wctx *rw);

#endif

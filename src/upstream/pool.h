/* pool: a worker's idle upstream connections, kept for reuse.
 *
 *   buckets[hash(addr) % N] -> bucket(addr) -> idle conn <-> idle conn ...
 *                                              (most recent first)
 *
 * Connections are keyed by the backend address, not by an endpoint object,
 * so they survive a configuration reload. While idle, each connection is
 * watched for readability (the backend closing it, or sending junk) and for
 * its idle timeout; either closes it. The pool holds streams (core/sio.h:
 * a plain socket, or a TLS connection whose session stays up): whoever
 * takes one owns it. A stream is keyed by its address and a tag (the TLS
 * client context it was made with, NULL for plain), so a plain and a TLS
 * connection to the same address never stand in for each other.
 * Single-threaded: one pool per worker. */
#ifndef WEIR_UPSTREAM_POOL_H
#define WEIR_UPSTREAM_POOL_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/sio.h"

#define POOL_BUCKETS 64

struct pool_bucket;

struct pool_conn {
    ev_io io;
    ev_timer timer;
    struct sio sio;
    struct pool *pool;
    struct pool_bucket *bucket;
    struct pool_conn *next;
    struct pool_conn *prev;
};

struct pool_bucket {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const void *tag;               /* what else a connection must match (a TLS context) */
    struct pool_conn *head;
    unsigned n_idle;
    struct pool_bucket *next;
};

struct pool {
    struct ev_loop *loop;
    struct pool_bucket *buckets[POOL_BUCKETS];
    struct pool_conn *free_conns;
    size_t n_idle;
};

void pool_init(struct pool *pool, struct ev_loop *loop);
/* Closes every idle connection and frees all memory. */
void pool_destroy(struct pool *pool);
/* Returns an idle connection's fd for addr (the caller owns it), or -1. */
int pool_take(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen);
/* Offers a connection with no request in flight for reuse. Returns 0 if the
 * pool keeps it (the pool owns fd now), or -1 when the bucket already holds
 * max_idle connections or memory is short (the caller still owns fd). */
int pool_put(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, int fd,
             unsigned max_idle, uint64_t idle_timeout_ms);
/* The same for streams with a tag (NULL: a plain socket's): pool_take_sio
 * fills *out and returns 0 (the caller owns the stream), or returns -1;
 * pool_put_sio returns 0 when the pool took *s (then closed in *s), or -1
 * (the caller still owns it). */
int pool_take_sio(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, const void *tag,
                  struct sio *out);
int pool_put_sio(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, const void *tag,
                 struct sio *s, unsigned max_idle, uint64_t idle_timeout_ms);

#endif

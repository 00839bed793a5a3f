/* h2_up: HTTP/2 to upstreams (a cluster's `protocol: h2 | h2c`).
 *
 * The proxy keeps speaking HTTP/1.1: for an h2 cluster its "connection" to
 * an endpoint is one end of a socketpair (a lane, see h2_up.c) whose other
 * end turns each HTTP/1.1 exchange into one HTTP/2 stream on a connection
 * shared by the worker's lanes to that endpoint. Retries, timeouts,
 * breakers, counters and the access log therefore work unchanged. */
#ifndef WEIR_HTTP2_H2_UP_H
#define WEIR_HTTP2_H2_UP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct wctx;
struct tls_client;

/* The worker's state for upstream HTTP/2 (in its http_worker). */
struct h2up_worker;

/* Opens a lane to the HTTP/2 server at addr: returns the proxy's end of a
 * new socketpair (the caller owns it; it is connected and writable at
 * once), or a negative errno. `tls` NULL: h2c (prior knowledge), else TLS
 * with ALPN h2. `max_conns`: HTTP/2 connections to this address the worker
 * may hold at once; an idle one closes after idle_ms; one not connected
 * (TLS handshake included) within connect_ms fails its streams. `*slot` is the worker's state, made
 * on first use. */
int h2up_lane_open(void **slot, struct wctx *wc, const struct sockaddr *addr, socklen_t addrlen,
                   struct tls_client *tls, unsigned max_conns, uint64_t idle_ms,
                   uint64_t connect_ms);

/* What the proxy's pool keys lanes by (never a plain or TLS socket's tag). */
const void *h2up_pool_tag(const struct tls_client *tls);

/* For tests/fuzz/fuzz_h2_up.c: one established client connection carrying
 * a GET and a chunked POST with a trailer (their lanes' proxy ends unread), fed `data` as the
 * server's bytes in three pieces (cut at cut1 and cut2), each followed by
 * the worker's usual processing; then everything is freed. The HTTP/1.1
 * bytes the GET's lane wrote for the proxy go to answer (NUL-terminated,
 * at most answer_cap - 1 bytes) when it is not NULL. 0 or -ENOMEM. */
struct ev_loop;
int h2up_feed_server_bytes(struct ev_loop *loop, const uint8_t *data, size_t size, size_t cut1,
                           size_t cut2, char *answer, size_t answer_cap);

/* Closes every lane and connection and frees the worker's state (*slot NULL). */
void h2up_worker_free(void **slot);

#endif

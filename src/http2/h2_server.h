/* h2_server: HTTP/2 from clients (RFC 9113) with nghttp2, bridged to the
 * HTTP/1.1 proxy session: each stream is carried over a "lane" (an
 * in-memory stream, h2_bridge.c) to an ordinary proxy session (http/proxy.c), so it takes the
 * same routes, steps, clusters, retries, cache and metrics. */
#ifndef WEIR_HTTP2_H2_SERVER_H
#define WEIR_HTTP2_H2_SERVER_H

#include <stddef.h>

#include "core/sio.h"
#include "server/server.h"

struct snapshot;
struct cfg_listener;

/* Whether a new connection speaks HTTP/2: 1 when its TLS handshake chose
 * ALPN h2 or the bytes p[0..n) start with the connection preface, 0 when
 * not, -EAGAIN when the bytes are a prefix of the preface. */
int h2_server_detect(const struct sio *s, const char *p, size_t n);
/* Takes over the connection s (its struct is moved: the caller must not
 * use or close it after) accepted on wl with listener lst of snap
 * (referenced here), from client_ip; p[0..n) are bytes already read. The
 * connection is counted (server_conn_open) while it lasts. Returns 0, or
 * a negative errno with the stream closed. */
int h2_server_adopt(struct wctx *wc, struct wlistener *wl, struct snapshot *snap,
                    const struct cfg_listener *lst, struct sio *s, const char *client_ip,
                    const char *p, size_t n);
/* Graceful GOAWAY on every HTTP/2 connection of the worker: streams
 * started go on, the connection closes when they are done. */
void h2_server_drain(struct wctx *wc);
/* Frees every HTTP/2 connection of the worker (at worker exit). */
void h2_server_worker_free(struct wctx *wc);

#endif

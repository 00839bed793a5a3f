/* tcp_proxy: `protocol: tcp` listeners: each accepted connection is paired
 * with a connection to an endpoint of a cluster (the listener's, or the one
 * an `sni` rule picks from the TLS ClientHello) and bytes are moved both
 * ways unchanged, with splice() where it can. See tcp_proxy.c. */
#ifndef WEIR_L4_TCP_PROXY_H
#define WEIR_L4_TCP_PROXY_H

#include "server/server.h"

/* Protocol row hooks (src/protocols.c); see struct server_protocol. */
int tcp_worker_init(struct wctx *wc);
void tcp_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer);
void tcp_drain(struct wctx *wc);
void tcp_worker_free(struct wctx *wc);

#endif

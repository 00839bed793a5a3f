/* l4_accept: `accept_proxy` on any listener: a connection from a trusted
 * front balancer starts with a PROXY header (v1 or v2) that says who the
 * client is; weir reads exactly that header and starts the listener's
 * protocol with the client's address from it (so X-Forwarded-For, ip_hash
 * and access rules see the real client). Connections from other addresses
 * start at once, unread: their bytes, a PROXY header too, are data. */
#ifndef WEIR_L4_L4_ACCEPT_H
#define WEIR_L4_L4_ACCEPT_H

#include <sys/socket.h>

#include "server/server.h"

/* Where a connection goes once its client is known: `src` the client,
 * `dst` the address it connected to (NULL: the socket's own, for the
 * protocol to ask getsockname when it needs it). Takes fd. */
typedef void (*l4_accept_fn)(struct wctx *wc, struct wlistener *wl, int fd,
                             const struct sockaddr_storage *src, const struct sockaddr_storage *dst);

/* Accept hook front: when wl's listener has accept_proxy and peer lies in
 * one of its networks, waits (timeouts.client_header at most) for the
 * header, then calls next with its addresses (a LOCAL header: peer's);
 * closes fd on a bad header, a timeout or EOF. Otherwise calls next at
 * once with peer. Takes fd in every case. */
void l4_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer,
               l4_accept_fn next);

#endif

/* net: socket set-up helpers. Every function returns a file descriptor or 0
 * on success and a negative errno on failure; none of them logs. */
#ifndef WEIR_CORE_NET_H
#define WEIR_CORE_NET_H

#include <sys/socket.h>

/* A non-blocking listening socket bound to addr with SO_REUSEADDR and
 * SO_REUSEPORT (so each worker can own one), backlog `backlog`. */
int net_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog);
/* Whether addr is free for this process to take: binds a socket without
 * SO_REUSEPORT there and closes it. SO_REUSEPORT would let a second
 * process (weir started twice, the same user) share a port silently and
 * take half its connections; this check makes that -EADDRINUSE. Returns 0
 * or a negative errno. Only for addresses this process does not hold. */
int net_listen_check(const struct sockaddr *addr, socklen_t addrlen);
/* Starts a non-blocking connect with TCP_NODELAY. Returns the fd; the
 * connect may still be in progress (check with net_connect_result). */
int net_connect(const struct sockaddr *addr, socklen_t addrlen);
/* 0 once the connect succeeded, or the negative errno it failed with. */
int net_connect_result(int fd);
/* accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC and TCP_NODELAY on the result. */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

#endif

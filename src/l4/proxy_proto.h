/* proxy_proto: the PROXY protocol (HAProxy's proxy-protocol.txt, versions 1
 * and 2): the header a balancer sends before a connection's own bytes to
 * say who the client is. Parsed when a trusted front balancer sends it
 * (listener `accept_proxy`), built when weir sends it to an upstream
 * (tcp listener `proxy_protocol`). Nothing here allocates or does I/O. */
#ifndef WEIR_L4_PROXY_PROTO_H
#define WEIR_L4_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_PROTO_V1_MAX 107     /* the longest v1 line, CRLF included (spec 2.1) */
#define PROXY_PROTO_V2_MAX 1024    /* weir refuses longer v2 headers (TLVs included) */
#define PROXY_PROTO_BUILD_MAX 108  /* room proxy_proto_build() may need */

struct proxy_proto_hdr {
    int version;                   /* 1 or 2 */
    int local;                     /* 1: no addresses (v1 UNKNOWN, v2 LOCAL or not TCP/IP):
                                      the connection's own addresses stand */
    struct sockaddr_storage src;   /* the client, when !local */
    struct sockaddr_storage dst;   /* the address it connected to, when !local */
};

/* Parses a header at the start of p[0..len). Returns the header's length
 * (> 0, the bytes to consume; the connection's data follows), 0 when the
 * bytes so far are a valid beginning and more are needed, or -EINVAL when
 * they are not a PROXY header (out is then undefined). Never reads past
 * len. */
int proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_proto_hdr *out);

/* Writes a version 1 or 2 header for a connection from src to dst into out
 * (size bytes, PROXY_PROTO_BUILD_MAX is enough). Addresses of different or
 * non-IP families give v1 "UNKNOWN" / a v2 LOCAL header. Returns the
 * length, or -ENOSPC / -EINVAL (bad version). */
int proxy_proto_build(int version, const struct sockaddr *src, const struct sockaddr *dst,
                      uint8_t *out, size_t size);

#endif

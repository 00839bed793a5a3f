/* cidr: IPv4 and IPv6 networks ("10.0.0.0/8", "2001:db8::/32", a bare
 * address meaning one host) and whether an address lies in one. Shared by
 * the steps that decide on the client's address (access, rate_limit's
 * trusted proxies, the cache's PURGE allow list) and accept_proxy. Nothing here allocates. */
#ifndef WEIR_CORE_CIDR_H
#define WEIR_CORE_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A network, or one address (prefix 32 or 128). IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) are kept as IPv4, so a dual-stack listener's
 * peers match IPv4 rules. */
struct cidr {
    uint8_t family;                /* 4 or 6 */
    uint8_t prefix;                /* bits that count: 0..32 or 0..128 */
    uint8_t addr[16];              /* network order; bits after prefix are zero */
};

/* Parses "ADDR/PREFIX" or "ADDR". Returns 0 and fills *out, -EINVAL for bad
 * syntax or a prefix out of range, -EDOM when bits after the prefix are set
 * ("10.0.0.1/8": a typo for a host or for 10.0.0.0/8). *out is untouched on
 * failure. */
int cidr_parse(const char *s, struct cidr *out);
/* Parses one address, as txn_client_ip() writes it. Returns 0 or -EINVAL. */
int cidr_parse_addr(const char *s, struct cidr *out);
/* Whether `addr` (a cidr_parse_addr result) lies in `net`; families must
 * agree. Returns 1 or 0. */
int cidr_contains(const struct cidr *net, const struct cidr *addr);
/* Whether `addr` lies in any of nets[0..n). Returns 1 or 0. */
int cidr_list_contains(const struct cidr *nets, size_t n, const struct cidr *addr);
/* The address of a socket peer as a one-host cidr (IPv4-mapped IPv6 as
 * IPv4). Returns 0, or -EAFNOSUPPORT when it is not an IP address. */
int cidr_from_sockaddr(const struct sockaddr_storage *sa, struct cidr *out);
/* Writes net as "ADDR/PREFIX" into buf (NUL-terminated, 64 bytes suffice). */
void cidr_format(const struct cidr *net, char *buf, unsigned size);

#endif

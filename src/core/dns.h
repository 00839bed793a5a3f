/* dns: DNS messages for weir's own resolver (RFC 1035): a query for one
 * name and type, and the addresses an answer holds. No I/O, no
 * allocation: the resolver (upstream/resolver.c) sends and receives the
 * datagrams on the main loop. */
#ifndef WEIR_CORE_DNS_H
#define WEIR_CORE_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_MAX_NAME 253
#define DNS_MAX_MSG 4096
#define DNS_MAX_ADDRS 64

/* An address from an answer, with the port left 0. */
struct dns_addr {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t ttl;
};

/* One SRV record (RFC 2782) of an answer. */
struct dns_srv {
    uint16_t priority, weight, port;
    uint32_t ttl;
    char target[DNS_MAX_NAME + 1]; /* dotted, no final dot; "" for "." (no service) */
};

/* Whether s is a host name weir resolves: 1..253 bytes of labels of
 * letters, digits and '-' (not at a label's ends), 1..63 each, with at
 * least one letter somewhere (so it is not an address). */
int dns_name_ok(const char *s, size_t len);

/* Writes a standard query (RD set) for `name` and `type` with id into
 * buf. Returns its length, or -1 when the name does not fit or is bad. */
int dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t type);

/* Reads an answer to the query (id, name, type): appends the addresses of
 * its answer records of that type (any owner: CNAME chains are followed by
 * the server) to out[*n] up to max. Returns the RCODE (0 NOERROR, 3
 * NXDOMAIN, ...) or -1 when msg is not a well-formed answer to that query
 * (wrong id or question, truncated, bad compression). */
int dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t type,
                     struct dns_addr *out, size_t *n, size_t max);

/* Whether s is a name weir may ask about: as dns_name_ok, and labels may
 * also start with '_' (service names of SRV: "_http._tcp.api.internal"). */
int dns_query_name_ok(const char *s, size_t len);

/* Reads an answer to the SRV query (id, name): appends its SRV answer
 * records to out[*n] up to max. Returns the RCODE, or -1 as
 * dns_parse_answer. */
int dns_parse_srv(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                  struct dns_srv *out, size_t *n, size_t max);

/* In the same answer (to the query id, name, qtype), the records of type
 * `type` (A or AAAA) whose owner is `owner`, in any section (the
 * additional section of an SRV answer carries its targets' addresses):
 * appended to out[*n] up to max. Returns 0, or -1 when msg is malformed. */
int dns_parse_owned(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                    const char *owner, uint16_t type, struct dns_addr *out, size_t *n, size_t max);

#endif

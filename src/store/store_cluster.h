/* store_cluster: the Redis Cluster rules a store follows, as pure functions:
 * key -> hash slot (CRC16 and hash tags), MOVED/ASK error parsing, and the
 * CLUSTER SLOTS reply walked into ranges. Internal to src/store/. */
#ifndef WEIR_STORE_STORE_CLUSTER_H
#define WEIR_STORE_STORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SLOTS 16384
#define STORE_HOST_MAX 64 /* room for any textual IPv4/IPv6 address */

struct redisReply;

/* CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with. */
uint16_t store_crc16(const char *buf, size_t len);

/* The hash slot (0..16383) of `key`: only the part between the first '{'
 * and the next '}' is hashed when that part is not empty (Redis Cluster
 * specification, "Hash tags"). */
unsigned store_slot(const char *key, size_t len);

struct store_redirect {
    int ask; /* 1: ASK (once), 0: MOVED (the slot moved) */
    unsigned slot;
    char host[STORE_HOST_MAX];
    int port;
};

/* Parses an error reply "MOVED 3999 127.0.0.1:6381" or "ASK 3999 [::1]:6381"
 * (a bracketed IPv6 address is accepted too). An empty host (":6381") is
 * left empty for the caller to fill with the node that answered. Returns 0
 * and fills *out, or -EINVAL when `err` is not a well-formed redirection. */
int store_redirect_parse(const char *err, size_t len, struct store_redirect *out);

/* Called per slot range of a CLUSTER SLOTS reply with its primary. Returns 0
 * to go on or a negative errno to stop the walk with that value. */
typedef int (*store_slots_fn)(void *arg, unsigned first, unsigned last, const char *host, int port);

/* Walks a CLUSTER SLOTS reply: checks every entry's shape (first <= last <
 * 16384, a primary [host, port, ...]) and calls fn per range; an empty host
 * becomes `self_host` (the node asked). Returns the number of ranges (>= 1),
 * -EPROTO for a malformed or empty reply, or fn's error. */
int store_slots_walk(const struct redisReply *r, const char *self_host, store_slots_fn fn,
                     void *arg);

#endif

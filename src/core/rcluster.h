/* rcluster: the Redis Cluster rules weir's Redis clients follow, as pure
 * functions shared by the store client (src/store/store.c) and the Redis
 * proxy's cluster backend (src/resp/resp_cmap.c): key -> hash slot (CRC16
 * and hash tags), MOVED/ASK error parsing, and the CLUSTER SLOTS and
 * CLUSTER SHARDS replies walked into slot ranges with their nodes. */
#ifndef WEIR_CORE_RCLUSTER_H
#define WEIR_CORE_RCLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define RCLUSTER_SLOTS 16384
#define RCLUSTER_HOST_MAX 64 /* room for any textual IPv4/IPv6 address */
#define RCLUSTER_NODES_MAX 9 /* a range's primary and up to 8 replicas */

struct redisReply;

/* CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with. */
uint16_t rcluster_crc16(const char *buf, size_t len);

/* The hash slot (0..16383) of `key`: only the part between the first '{'
 * and the next '}' is hashed when that part is not empty (Redis Cluster
 * specification, "Hash tags"). */
unsigned rcluster_slot(const char *key, size_t len);

struct rcluster_redirect {
    int ask; /* 1: ASK (once), 0: MOVED (the slot moved) */
    unsigned slot;
    char host[RCLUSTER_HOST_MAX];
    int port;
};

/* Parses an error reply "MOVED 3999 127.0.0.1:6381" or "ASK 3999 [::1]:6381"
 * (a bracketed IPv6 address is accepted too). An empty host (":6381") is
 * left empty for the caller to fill with the node that answered. Returns 0
 * and fills *out, or -EINVAL when `err` is not a well-formed redirection. */
int rcluster_redirect_parse(const char *err, size_t len, struct rcluster_redirect *out);

struct rcluster_node {
    char host[RCLUSTER_HOST_MAX];
    int port;
};

/* Called per slot range with its nodes: nodes[0] is the primary, the rest
 * (n - 1, at most RCLUSTER_NODES_MAX - 1) its replicas. Returns 0 to go on
 * or a negative errno to stop the walk with that value. */
typedef int (*rcluster_range_fn)(void *arg, unsigned first, unsigned last,
                                 const struct rcluster_node *nodes, size_t n);

/* Walks a CLUSTER SLOTS reply: checks every entry's shape (first <= last <
 * 16384, a primary [host, port, ...], replicas alike) and calls fn per range;
 * an empty host becomes `self_host` (the node asked). Returns the number of
 * ranges (>= 1), -EPROTO for a malformed or empty reply, or fn's error. */
int rcluster_slots_walk(const struct redisReply *r, const char *self_host, rcluster_range_fn fn,
                        void *arg);

/* Walks a CLUSTER SHARDS reply (Redis 7: per shard "slots" [first, last,
 * ...] and "nodes" [{"ip", "endpoint", "port", "role", "health", ...}]):
 * calls fn per range with the shard's primary first and its replicas whose
 * health is "online"; a shard without slots or without a primary is
 * skipped. A node's address is its endpoint, else its ip, else `self_host`.
 * Returns the number of ranges (>= 1), -EPROTO for a malformed reply or one
 * without any range, or fn's error. */
int rcluster_shards_walk(const struct redisReply *r, const char *self_host, rcluster_range_fn fn,
                         void *arg);

#endif

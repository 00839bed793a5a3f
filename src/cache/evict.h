/* evict: the eviction policies of a cache, behind one small interface.
 *
 *   store shard (store.c) --insert/hit/remove--> policy state (one per shard)
 *                         <-------victim--------
 *
 * A policy sees only the evict_node embedded in each stored object and its
 * own per-shard state; the shard's lock is held around every call, so a
 * policy never locks. `victim` names the object to drop next (it stays
 * linked: the store calls `remove` for it), or NULL when the shard is
 * empty. A policy file is one row of EVICT_POLICY_LIST and its ops. */
#ifndef WEIR_CACHE_EVICT_H
#define WEIR_CACHE_EVICT_H

#include <stddef.h>
#include <stdint.h>

#define EVICT_POLICY_LIST(X) \
    X(EVICT_LRU, "lru", evict_lru) \
    X(EVICT_LFU, "lfu", evict_lfu) \
    X(EVICT_FIFO, "fifo", evict_fifo) \
    X(EVICT_RANDOM, "random", evict_random) \
    X(EVICT_TTL, "ttl", evict_ttl) \
    X(EVICT_S3FIFO, "s3fifo", evict_s3fifo)
#define EVICT_ENUM(e, s, ops) e,
enum evict_policy { EVICT_POLICY_LIST(EVICT_ENUM) EVICT_POLICY_COUNT };
#undef EVICT_ENUM

/* What a policy keeps in each object. */
struct evict_node {
    struct evict_node *prev, *next; /* the policy's list(s) */
    uint64_t hash;                  /* the object's key hash (s3fifo's ghosts) */
    int64_t expires_at;             /* seconds: when it stops being fresh (ttl) */
    uint32_t slot;                  /* index in a policy's array (random, ttl) */
    uint8_t freq, queue;            /* access count (lfu, s3fifo), which list */
};

/* A doubly linked list, newest at head. */
struct evict_list {
    struct evict_node *head, *tail;
    size_t count;
};

void evict_list_push(struct evict_list *l, struct evict_node *n);
void evict_list_unlink(struct evict_list *l, struct evict_node *n);

struct evict_ops {
    const char *name;
    size_t state_size;                 /* bytes of per-shard state, zeroed before init */
    void (*fini)(void *st);            /* frees what the state allocated (optional) */
    /* Takes a new object in. Returns 0 or -ENOMEM (then it is not stored). */
    int (*insert)(void *st, struct evict_node *n);
    void (*hit)(void *st, struct evict_node *n);
    void (*remove)(void *st, struct evict_node *n);
    struct evict_node *(*victim)(void *st);
};

#define EVICT_DECLARE(e, s, ops) extern const struct evict_ops ops;
EVICT_POLICY_LIST(EVICT_DECLARE)
#undef EVICT_DECLARE

/* The ops of a policy. */
const struct evict_ops *evict_ops_of(enum evict_policy p);
/* The policy named `name`, or -ENOENT. */
int evict_policy_find(const char *name);
const char *evict_policy_name(enum evict_policy p);

#endif

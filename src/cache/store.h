/* store: the memory of one configured cache, shared by every worker thread:
 * a table of stored responses sharded by key hash, a lock per shard, an
 * eviction policy per shard (evict.h), a byte cap per shard.
 *
 * A cache is found by name in a process-wide registry (cache_acquire), so a
 * reload keeps its objects and the admin API can purge by name. An object
 * is reference counted: the table holds one reference, and each reader
 * (a hit being sent, a fill in progress) one more; the last put frees it. */
#ifndef WEIR_CACHE_STORE_H
#define WEIR_CACHE_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/evict.h"
#include "cache/freshness.h"
#include "http/http_parser.h"

#define CACHE_SHARDS 16
#define CACHE_VARY_MAX 1024 /* bytes of a request's Vary signature */

struct cfg_cache;

/* A stored response. Read-only once inserted, except refs and ev (policy,
 * under the shard lock). */
struct cache_obj {
    struct evict_node ev;
    struct cache_obj *chain;        /* next in the shard's bucket */
    _Atomic uint32_t refs;
    uint8_t in_table, complete;
    struct cache_resp meta;         /* date set (response time when the origin sent none) */
    int64_t request_time, response_time, lifetime; /* seconds */
    size_t charge;                  /* bytes counted against the cap */
    struct http_slice key;          /* the full cache key */
    struct http_slice url;          /* host + path [? query]: purge by URL and prefix */
    struct http_slice vary;         /* the request's Vary signature */
    struct http_slice tags;         /* Surrogate-Key and Cache-Tag values, space separated */
    struct http_slice etag, last_modified; /* validators, or empty */
    struct http_header *headers;    /* end-to-end fields as the origin sent them, without Age */
    size_t n_headers;
    char *body;
    size_t body_len, body_cap;
};

/* Parameters a cache takes from its configuration (a reload may change them). */
struct cache_params {
    uint64_t memory_bytes, max_object_bytes;
    enum evict_policy eviction;
};

struct cache;

/* The cache named by cc (made, empty, when new or when its eviction policy
 * changed), with a reference for the caller. Its caps become cc's. Returns
 * NULL when out of memory. Thread-safe. */
struct cache *cache_acquire(const struct cfg_cache *cc);
/* Drops a reference from cache_acquire or cache_ref; the last frees the
 * cache and its objects. */
void cache_release(struct cache *c);
/* Takes one more reference (for work that outlives a request). */
void cache_ref(struct cache *c);
/* Bytes an object may hold at most (per-object cap, and a shard's share). */
uint64_t cache_max_object(const struct cache *c);

/* Writes the Vary signature of a request with fields req[0..n_req) for a
 * response whose fields are resp[0..n): for each field name its Vary lists,
 * the request's values of that field with whitespace around commas removed.
 * Returns its length, or -ENOSPC when it needs more than cap bytes. */
int cache_vary_sig(const struct http_header *req, size_t n_req, const struct http_header *resp,
                   size_t n, char *dst, size_t cap);

/* The stored response for key that matches the Vary signature of a
 * request with fields req[0..n_req), with a reference for the caller
 * (cache_obj_put), counted as a hit by the eviction policy; NULL when none.
 * Thread-safe. */
struct cache_obj *cache_lookup(struct cache *c, const char *key, size_t klen,
                               const struct http_header *req, size_t n_req);
void cache_obj_put(struct cache_obj *o);

/* A new object, not yet in the table, holding copies of the key, url, Vary
 * signature and the fields f[0..n) (Age left out: it is recomputed), with
 * one reference for the caller. Returns NULL when out of memory or when
 * the head alone is over the object cap. */
struct cache_obj *cache_obj_new(struct cache *c, struct http_slice key, struct http_slice url,
                                struct http_slice vary, const struct http_header *f, size_t n,
                                const struct cache_resp *meta);
/* The response facts of fields f[0..n) with `status`; Date defaults to
 * now. With cc's targeted fields (RFC 9213), the first of them present and
 * valid stands for Cache-Control. cc may be NULL. */
void cache_meta_of(struct cache_resp *meta, int status, const struct http_header *f, size_t n,
                   int64_t now, const struct cfg_cache *cc);
/* Sets an object's times (seconds): when its request went out and now,
 * its freshness lifetime and the ttl policy's expiry. Before inserting. */
void cache_obj_set_times(struct cache_obj *o, int64_t request_time, int64_t now);
/* Writes into out (room for o->n_headers + n_new entries) o's fields
 * updated by a 304's fields nf[0..n_new) (RFC 9111 3.2): each field the 304
 * carries replaces the stored ones of that name; framing (never among nf)
 * stays. Returns how many were written. Slices point into o and nf. */
size_t cache_merge_fields(const struct cache_obj *o, const struct http_header *nf, size_t n_new,
                          struct http_header *out);

/* Appends body bytes to an object being filled. Returns 0, -EFBIG when
 * the object would pass the cap (its body is then dropped: the caller
 * stops filling) or -ENOMEM. */
int cache_obj_append(struct cache *c, struct cache_obj *o, const char *p, size_t n);
/* Puts a complete object in the table in place of one with the same key
 * and Vary signature, evicting others while the shard is over its cap.
 * The caller keeps its reference. Returns 0 or -ENOMEM / -EFBIG. */
int cache_insert(struct cache *c, struct cache_obj *o);
/* Removes every object stored under key (all Vary variants). Returns how
 * many. */
size_t cache_invalidate(struct cache *c, const char *key, size_t klen);

/* Request coalescing: the first miss for a key leads (goes to the backend),
 * later ones wait on its flight. When the leader's answer is storable it
 * publishes the object it fills on the flight, and the waiters answer from
 * it as it streams in (cache_flight_read); otherwise they look again once
 * the flight ended. */
enum cache_flight_state { CACHE_FLIGHT_PENDING, CACHE_FLIGHT_DONE, CACHE_FLIGHT_FAILED };
struct cache_flight;

/* Joins the flight for key. Returns a flight with a reference for the
 * caller (cache_flight_put); *leader says whether the caller made it (and
 * must end it with cache_flight_end) or waits on another's. NULL when out
 * of memory (the caller goes on alone). Thread-safe. */
struct cache_flight *cache_flight_join(struct cache *c, const char *key, size_t klen, int *leader);
/* The leader's flight ended: stored (DONE: waiters look again) or not
 * (FAILED: waiters go to the backend themselves). It leaves the table, so
 * the next miss leads a new one. A published body that is not whole by now
 * never will be: its readers get -EPIPE. Idempotent. */
void cache_flight_end(struct cache *c, struct cache_flight *f, int stored);
enum cache_flight_state cache_flight_state(const struct cache_flight *f);
void cache_flight_put(struct cache_flight *f);

/* The leader: o (not yet inserted, its body empty) is the object its answer
 * fills; waiters may answer from it from now on. The flight takes a
 * reference. body_len: the length the body will have, or -1 when unknown. */
void cache_flight_publish(struct cache_flight *f, struct cache_obj *o, int64_t body_len);
/* The leader appends to its published object, under the flight's lock (the
 * readers copy under it too: the body may move when it grows). Returns as
 * cache_obj_append; after -EFBIG the readers get -EPIPE. */
int cache_flight_append(struct cache *c, struct cache_flight *f, struct cache_obj *o, const char *p,
                        size_t n);
/* The leader's body is whole: inserts o (cache_insert, under the flight's
 * lock since it may shrink the body) and lets readers reach the end.
 * Returns as cache_insert. */
int cache_flight_complete(struct cache *c, struct cache_flight *f, struct cache_obj *o);
/* A waiter: the published object with a reference for the caller, and the
 * body length (-1: not known yet); NULL when none was published or its body
 * will not be whole. */
struct cache_obj *cache_flight_obj(struct cache_flight *f, int64_t *body_len);
/* Copies up to cap bytes of the published body from offset off into dst.
 * Returns the bytes copied (0: none yet, the leader is still filling),
 * CACHE_FLIGHT_EOF at the end of the whole body, or -EPIPE when the body
 * will not be whole (too large after all, or the leader's answer broke).
 * Never blocks on the leader beyond a copy. */
#define CACHE_FLIGHT_EOF (-1000)
long cache_flight_read(struct cache_flight *f, uint64_t off, char *dst, size_t cap);

#define CACHE_PURGE_KINDS(X) \
    X(CACHE_PURGE_URL, "url") \
    X(CACHE_PURGE_PREFIX, "prefix") \
    X(CACHE_PURGE_TAG, "tag") \
    X(CACHE_PURGE_ALL, "all")
#define CACHE_PURGE_ENUM(e, s) e,
enum cache_purge_kind { CACHE_PURGE_KINDS(CACHE_PURGE_ENUM) CACHE_PURGE_KIND_COUNT };
#undef CACHE_PURGE_ENUM

/* Removes from the cache named `name` the objects whose URL (host + path
 * [? query]) is arg, starts with arg, or that carry tag arg (Surrogate-Key
 * / Cache-Tag), or all. For the admin API. Returns how many were removed,
 * or -ENOENT when no cache has that name. Thread-safe. */
long cache_purge(const char *name, enum cache_purge_kind kind, const char *arg);
long cache_purge_in(struct cache *c, enum cache_purge_kind kind, const char *arg, size_t len);

/* Counts, for tests and metrics. */
/* How a request that passed the cache was answered, for the metrics. */
#define CACHE_RESULT_LIST(X) \
    X(CACHE_RESULT_HIT, "hit") X(CACHE_RESULT_STALE, "stale") \
    X(CACHE_RESULT_REVALIDATED, "revalidated") X(CACHE_RESULT_COALESCED, "coalesced") \
    X(CACHE_RESULT_L2_HIT, "l2_hit") X(CACHE_RESULT_MISS, "miss") X(CACHE_RESULT_PASS, "pass")
#define CACHE_RESULT_ENUM(e, n) e,
enum cache_result { CACHE_RESULT_LIST(CACHE_RESULT_ENUM) CACHE_RESULT_COUNT };
#undef CACHE_RESULT_ENUM
/* Counts one request in weir_cache_requests_total. Any thread. */
void cache_count(struct cache *c, enum cache_result r);

/* The L2 tier's commands, for weir_cache_l2_errors_total{op}. */
#define CACHE_L2_OP_LIST(X) X(CACHE_L2_GET, "get") X(CACHE_L2_SET, "set") X(CACHE_L2_DEL, "del")
#define CACHE_L2_OP_ENUM(e, n) e,
enum cache_l2_op { CACHE_L2_OP_LIST(CACHE_L2_OP_ENUM) CACHE_L2_OP_COUNT };
#undef CACHE_L2_OP_ENUM

/* Counts one failed L2 command (refused, timed out or answered with an
 * error) in weir_cache_l2_errors_total. Any thread. */
void cache_count_l2_error(struct cache *c, enum cache_l2_op op);

struct cache_stats {
    uint64_t objects, bytes, evictions, inserts;
};
void cache_stats_get(struct cache *c, struct cache_stats *out);

#endif

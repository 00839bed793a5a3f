/* cache_l2: see cache_l2.h.
 *
 *   weir:cache:NAME:KEY        a hash: Vary signature -> encoded object
 *                              (l2_codec.c), one field per variant
 *   weir:cache:NAME:tag:T      a set of the KEYs (above) whose objects
 *                              carry tag T (Surrogate-Key / Cache-Tag)
 *   both expire with the longest-lived object they hold (a small script
 *   raises the expiry, never lowers it)
 *
 *   miss in memory --HVALS weir:cache:NAME:KEY--> store (this worker's
 *       client) -> the variant matching the request's Vary signature,
 *       decoded -> inserted in memory -> the step; none, bad, or the store
 *       failing -> the step goes on without it
 *   object stored in memory --HSET + EVAL (expiry), SADD + EVAL per tag--> store
 *       (no answer awaited)
 *   purges by tag and prefix: cache_l2_purge.c
 *
 * The store clients are the worker's shared ones (store/store_registry.c:
 * one client per store settings per worker). A store outage costs a log line every 10 s per worker and the
 * L2 hits; requests are served from memory and the backend as without L2. */
#include "http/steps/cache_l2.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_cfg.h"
#include "cache/l2_codec.h"
#include "core/log.h"
#include "http/txn.h"
#include "store/store.h"
#include "store/store_registry.h"

#define L2_PREFIX "weir:cache:"
#define L2_LOG_EVERY 10.0 /* seconds between outage log lines, per worker */

struct cache_l2_get {
    struct txn *t;
    struct cache *cache;
    const struct cfg_cache *cc;
    struct http_slice key, url;    /* arena */
    const struct http_header *req; /* the request's fields, for Vary (arena) */
    size_t n_req;
    cache_l2_fn fn;
    void *arg;
};

static _Thread_local ev_tstamp l2_logged_at = -1e9;

static void cache_l2_log(struct ev_loop *loop, const struct cfg_cache *cc, const char *what,
                         enum store_result r)
{
    ev_tstamp now = ev_now(loop);
    if (now - l2_logged_at < L2_LOG_EVERY)
        return;
    l2_logged_at = now;
    log_warn("cache %s: L2 store %s %s failed (%s); serving from memory and the backend",
             cc->name, cc->l2_store->name, what, store_result_name(r));
}

/* "weir:cache:NAME:" KEY in the arena. */
static struct http_slice cache_l2_key(struct txn *t, const struct cfg_cache *cc,
                                      struct http_slice key)
{
    size_t n = strlen(L2_PREFIX) + strlen(cc->name) + 1 + key.len;
    char *k = txn_alloc(t, n + 1);
    if (k == NULL)
        return (struct http_slice){ NULL, 0 };
    int h = snprintf(k, n + 1, "%s%s:", L2_PREFIX, cc->name);
    memcpy(k + h, key.p, key.len);
    return (struct http_slice){ k, n };
}

static struct store *cache_l2_store(struct txn *t, const struct cfg_cache *cc)
{
    return cc->l2_store ? store_registry_get(txn_loop(t), cc->l2_store, NULL) : NULL;
}

/* The variant among the hash's values (HVALS) whose Vary signature is the
 * request's, decoded (a reference for the caller), or NULL. */
static struct cache_obj *cache_l2_variant(struct cache_l2_get *g, const struct redisReply *reply)
{
    char sig[CACHE_VARY_MAX];
    for (size_t i = 0; i < reply->elements; i++) {
        const struct redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        struct cache_obj *o = cache_l2_decode(g->cache, g->cc, g->key, g->url, e->str, e->len);
        if (o == NULL)
            continue;
        int n = cache_vary_sig(g->req, g->n_req, o->headers, o->n_headers, sig, sizeof(sig));
        if (n >= 0 && (size_t)n == o->vary.len && memcmp(sig, o->vary.p, (size_t)n) == 0)
            return o;
        cache_obj_put(o);
    }
    return NULL;
}

static void cache_l2_del_key(struct ev_loop *loop, struct cache *c, const struct cfg_cache *cc,
                             struct store *s, struct http_slice rk);

static void cache_l2_got(void *arg, enum store_result r, struct redisReply *reply)
{
    struct cache_l2_get *g = arg;
    if (store_registry_exiting())
        return; /* the worker is ending: its requests are gone */
    struct cache_obj *o = NULL;
    if (r == STORE_OK && reply && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "WRONGTYPE", 9) == 0) {
        /* a value in an older layout (one string per key): a miss, and gone */
        cache_l2_del_key(txn_loop(g->t), g->cache, g->cc, cache_l2_store(g->t, g->cc),
                         cache_l2_key(g->t, g->cc, g->key));
    } else if (r != STORE_OK || reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        cache_count_l2_error(g->cache, CACHE_L2_GET);
        cache_l2_log(txn_loop(g->t), g->cc, "GET", r == STORE_OK ? STORE_ERROR : r);
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        o = cache_l2_variant(g, reply);
    }
    if (o != NULL && cache_insert(g->cache, o) < 0) {
        cache_obj_put(o);
        o = NULL;
    }
    g->fn(g->arg, o);
}

struct store_cmd *cache_l2_get(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                               struct http_slice key, struct http_slice url,
                               const struct http_header *req, size_t n_req, cache_l2_fn fn,
                               void *arg)
{
    struct store *s = cache_l2_store(t, cc);
    struct cache_l2_get *g = (struct cache_l2_get *)txn_alloc(t, sizeof(*g));
    struct http_slice rk = cache_l2_key(t, cc, key);
    if (s == NULL || g == NULL || rk.p == NULL)
        return NULL;
    *g = (struct cache_l2_get){ t, c, cc, key, url, req, n_req, fn, arg };
    const char *argv[] = { "HVALS", rk.p };
    size_t argvlen[] = { 5, rk.len };
    struct store_cmd *cmd = store_command(s, rk.p, rk.len, 2, argv, argvlen, cache_l2_got, g);
    if (cmd == NULL) {
        cache_count_l2_error(c, CACHE_L2_GET);
        cache_l2_log(txn_loop(t), cc, "GET", STORE_UNAVAILABLE);
    }
    return cmd;
}

void cache_l2_cancel(struct store_cmd *cmd)
{
    store_cancel(cmd);
}

/* Writes out to L2 (the commands of one object's SET, or a DEL): fire and
 * forget, only failures matter, counted once per batch against the cache,
 * which the batch holds a reference to (the store calls back every
 * command, also when it is freed). */
struct cache_l2_write {
    struct cache *cache;
    enum cache_l2_op op;
    unsigned refs;                 /* commands out, + 1 while sending */
    int failed;
    struct ev_loop *loop;
    const struct cfg_cache *cc;    /* valid while sending only (for the log) */
};

static struct cache_l2_write *cache_l2_batch(struct ev_loop *loop, struct cache *c,
                                             const struct cfg_cache *cc, enum cache_l2_op op)
{
    struct cache_l2_write *w = malloc(sizeof(*w));
    if (w == NULL) {
        cache_count_l2_error(c, op);
        return NULL;
    }
    *w = (struct cache_l2_write){ c, op, 1, 0, loop, cc };
    cache_ref(c);
    return w;
}

static void cache_l2_batch_put(struct cache_l2_write *w)
{
    if (--w->refs > 0)
        return;
    cache_release(w->cache);
    free(w);
}

static void cache_l2_sent(void *arg, enum store_result r, struct redisReply *reply)
{
    struct cache_l2_write *w = arg;
    if ((r != STORE_OK || (reply && reply->type == REDIS_REPLY_ERROR)) && !w->failed) {
        w->failed = 1;
        cache_count_l2_error(w->cache, w->op);
        log_debug("cache: an L2 write failed (%s)", store_result_name(r));
    }
    cache_l2_batch_put(w);
}

/* Sends argv to s in batch w; counts and logs a refusal (once a batch). */
static void cache_l2_write(struct cache_l2_write *w, struct store *s, struct http_slice rk,
                           int argc, const char **argv, const size_t *argvlen)
{
    if (w == NULL || w->failed)
        return;
    w->refs++;
    if (store_command(s, rk.p, rk.len, argc, argv, argvlen, cache_l2_sent, w) != NULL)
        return;
    w->refs--;
    w->failed = 1;
    cache_count_l2_error(w->cache, w->op);
    cache_l2_log(w->loop, w->cc, w->op == CACHE_L2_SET ? "SET" : "DEL", STORE_UNAVAILABLE);
}

/* Raises a key's expiry to ARGV[1] seconds from now, never lowers it (the
 * key holds other objects too); a key without one gets it. EXPIRE's GT
 * option would need Redis 7, and misses keys without an expiry. */
static const char cache_l2_expire_lua[] =
    "local t = redis.call('TTL', KEYS[1]) "
    "if t ~= -2 and t < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return 0";

/* Makes key rk live at least ttl_s seconds more. */
static void cache_l2_expire(struct cache_l2_write *w, struct store *s, struct http_slice rk,
                            const char *ttl_s, size_t tn)
{
    const char *argv[] = { "EVAL", cache_l2_expire_lua, "1", rk.p, ttl_s };
    size_t argvlen[] = { 4, sizeof(cache_l2_expire_lua) - 1, 1, rk.len, tn };
    cache_l2_write(w, s, rk, 5, argv, argvlen);
}

/* Adds rk to the set of each of o's tags. */
static void cache_l2_tag(struct cache_l2_write *w, const struct cfg_cache *cc, struct store *s,
                         const struct cache_obj *o, struct http_slice rk, const char *ttl_s,
                         size_t tn)
{
    char tk[CACHE_L2_KEY_MAX];
    struct http_slice tags = o->tags;
    for (size_t i = 0; i < tags.len;) {
        while (i < tags.len && tags.p[i] == ' ')
            i++;
        size_t b = i;
        while (i < tags.len && tags.p[i] != ' ')
            i++;
        int h = i > b ? cache_l2_tag_key(cc->name, tags.p + b, i - b, tk, sizeof(tk)) : -1;
        if (h < 0)
            continue;
        struct http_slice k = { tk, (size_t)h };
        const char *argv[] = { "SADD", tk, rk.p };
        size_t argvlen[] = { 4, k.len, rk.len };
        cache_l2_write(w, s, k, 3, argv, argvlen);
        cache_l2_expire(w, s, k, ttl_s, tn);
    }
}

int cache_l2_tag_key(const char *cache_name, const char *tag, size_t len, char *dst, size_t cap)
{
    int h = snprintf(dst, cap, "%s%s:tag:", L2_PREFIX, cache_name);
    if (h < 0 || (size_t)h + len > cap)
        return -ENOSPC;
    memcpy(dst + h, tag, len);
    return h + (int)len;
}

/* Seconds L2 keeps o: its freshness left, its stale-use window, and an
 * hour more when it has a validator (a stale copy still saves a body). */
static int64_t cache_l2_ttl(const struct cache_obj *o)
{
    int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, o->response_time);
    int64_t ttl = o->lifetime - age > 0 ? o->lifetime - age : 0;
    int64_t swr = o->meta.cc.stale_while_revalidate, sie = o->meta.cc.stale_if_error;
    int64_t stale = swr > sie ? swr : sie;
    if (stale > 0)
        ttl += stale;
    if (o->etag.len || o->last_modified.len)
        ttl += 3600;
    return ttl;
}

void cache_l2_put(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                  const struct cache_obj *o)
{
    struct store *s = cache_l2_store(t, cc);
    int64_t ttl = cache_l2_ttl(o);
    if (s == NULL || ttl <= 0 || o->charge > cc->l2_max_object_bytes)
        return;
    struct http_slice rk = cache_l2_key(t, cc, o->key);
    char *val, ttl_s[24];
    size_t len;
    if (rk.p == NULL || cache_l2_encode(o, &val, &len) < 0)
        return;
    int tn = snprintf(ttl_s, sizeof(ttl_s), "%lld", (long long)ttl);
    const char *argv[] = { "HSET", rk.p, o->vary.len ? o->vary.p : "", val };
    size_t argvlen[] = { 4, rk.len, o->vary.len, len };
    struct cache_l2_write *w = cache_l2_batch(txn_loop(t), c, cc, CACHE_L2_SET);
    cache_l2_write(w, s, rk, 4, argv, argvlen);
    free(val);
    cache_l2_expire(w, s, rk, ttl_s, (size_t)tn);
    cache_l2_tag(w, cc, s, o, rk, ttl_s, (size_t)tn);
    if (w)
        cache_l2_batch_put(w);
}

static void cache_l2_del_key(struct ev_loop *loop, struct cache *c, const struct cfg_cache *cc,
                             struct store *s, struct http_slice rk)
{
    if (s == NULL || rk.p == NULL)
        return;
    const char *argv[] = { "DEL", rk.p };
    size_t argvlen[] = { 3, rk.len };
    struct cache_l2_write *w = cache_l2_batch(loop, c, cc, CACHE_L2_DEL);
    cache_l2_write(w, s, rk, 2, argv, argvlen);
    if (w)
        cache_l2_batch_put(w);
}

void cache_l2_del(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                  struct http_slice key)
{
    struct store *s = cache_l2_store(t, cc);
    struct http_slice rk = s ? cache_l2_key(t, cc, key) : (struct http_slice){ NULL, 0 };
    cache_l2_del_key(txn_loop(t), c, cc, s, rk);
}

/* cache_l2: see cache_l2.h.
 *
 *   miss in memory --GET weir:cache:NAME:KEY--> store (this worker's client)
 *       value -> decoded (l2_codec.c) -> inserted in memory -> the step
 *       none, bad, or the store failing -> the step goes on without it
 *   object stored in memory --SET ... PX ttl--> store (no answer awaited)
 *
 * The store clients are the per-worker ones the rate_limit step made
 * (ratelimit_store.c keeps the registry: one client per store settings per
 * worker). A store outage costs a log line every 10 s per worker and the
 * L2 hits; requests are served from memory and the backend as without L2. */
#include "http/steps/cache_l2.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_cfg.h"
#include "cache/l2_codec.h"
#include "core/log.h"
#include "http/steps/ratelimit_store.h"
#include "http/txn.h"
#include "store/store.h"

#define L2_PREFIX "weir:cache:"
#define L2_LOG_EVERY 10.0 /* seconds between outage log lines, per worker */

struct cache_l2_get {
    struct txn *t;
    struct cache *cache;
    const struct cfg_cache *cc;
    struct http_slice key, url;    /* arena */
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
    return cc->l2_store ? rl_store_get(txn_loop(t), cc->l2_store) : NULL;
}

static void cache_l2_got(void *arg, enum store_result r, struct redisReply *reply)
{
    struct cache_l2_get *g = arg;
    if (rl_store_exiting())
        return; /* the worker is ending: its requests are gone */
    struct cache_obj *o = NULL;
    if (r != STORE_OK || reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        cache_count_l2_error(g->cache, CACHE_L2_GET);
        cache_l2_log(txn_loop(g->t), g->cc, "GET", r == STORE_OK ? STORE_ERROR : r);
    } else if (reply->type == REDIS_REPLY_STRING)
        o = cache_l2_decode(g->cache, g->cc, g->key, g->url, reply->str, reply->len);
    if (o != NULL && cache_insert(g->cache, o) < 0) {
        cache_obj_put(o);
        o = NULL;
    }
    g->fn(g->arg, o);
}

struct store_cmd *cache_l2_get(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                               struct http_slice key, struct http_slice url, cache_l2_fn fn,
                               void *arg)
{
    struct store *s = cache_l2_store(t, cc);
    struct cache_l2_get *g = (struct cache_l2_get *)txn_alloc(t, sizeof(*g));
    struct http_slice rk = cache_l2_key(t, cc, key);
    if (s == NULL || g == NULL || rk.p == NULL)
        return NULL;
    *g = (struct cache_l2_get){ t, c, cc, key, url, fn, arg };
    const char *argv[] = { "GET", rk.p };
    size_t argvlen[] = { 3, rk.len };
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

/* A write (SET or DEL) out to L2: fire and forget, only failures matter,
 * counted against the cache, which the write holds a reference to (the
 * store calls back every command, also when it is freed). */
struct cache_l2_write {
    struct cache *cache;
    enum cache_l2_op op;
};

static void cache_l2_sent(void *arg, enum store_result r, struct redisReply *reply)
{
    struct cache_l2_write *w = arg;
    if (r != STORE_OK || (reply && reply->type == REDIS_REPLY_ERROR)) {
        cache_count_l2_error(w->cache, w->op);
        log_debug("cache: an L2 write failed (%s)", store_result_name(r));
    }
    cache_release(w->cache);
    free(w);
}

/* Sends argv to s for the cache c; counts and logs a refusal. */
static void cache_l2_write(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                           struct store *s, enum cache_l2_op op, struct http_slice rk, int argc,
                           const char **argv, const size_t *argvlen)
{
    struct cache_l2_write *w = malloc(sizeof(*w));
    if (w != NULL) {
        *w = (struct cache_l2_write){ c, op };
        cache_ref(c);
        if (store_command(s, rk.p, rk.len, argc, argv, argvlen, cache_l2_sent, w) != NULL)
            return;
        cache_release(c);
        free(w);
    }
    cache_count_l2_error(c, op);
    cache_l2_log(txn_loop(t), cc, op == CACHE_L2_SET ? "SET" : "DEL", STORE_UNAVAILABLE);
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
    const char *argv[] = { "SET", rk.p, val, "EX", ttl_s };
    size_t argvlen[] = { 3, rk.len, len, 2, (size_t)tn };
    cache_l2_write(t, c, cc, s, CACHE_L2_SET, rk, 5, argv, argvlen);
    free(val);
}

void cache_l2_del(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                  struct http_slice key)
{
    struct store *s = cache_l2_store(t, cc);
    struct http_slice rk = s ? cache_l2_key(t, cc, key) : (struct http_slice){ NULL, 0 };
    if (rk.p == NULL)
        return;
    const char *argv[] = { "DEL", rk.p };
    size_t argvlen[] = { 3, rk.len };
    cache_l2_write(t, c, cc, s, CACHE_L2_DEL, rk, 2, argv, argvlen);
}

/* Unit tests for cache/store and the eviction policies: each policy's
 * victim order, the byte cap, Vary variants, replacement, invalidation and
 * purge by URL, prefix and tag, the registry across a reload. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache_cfg.h"
#include "cache/evict.h"
#include "cache/l2_codec.h"
#include "cache/store.h"

/* ---- policies alone ---- */

struct node_set {
    struct evict_node n[16];
    void *st;
    const struct evict_ops *ops;
};

static void set_up(struct node_set *s, enum evict_policy p, int count)
{
    memset(s, 0, sizeof(*s));
    s->ops = evict_ops_of(p);
    s->st = calloc(1, s->ops->state_size);
    assert_non_null(s->st);
    for (int i = 0; i < count; i++) {
        s->n[i].hash = (uint64_t)i + 1;
        s->n[i].expires_at = 100 - i;
        assert_int_equal(s->ops->insert(s->st, &s->n[i]), 0);
    }
}

static void tear_down(struct node_set *s)
{
    if (s->ops->fini)
        s->ops->fini(s->st);
    free(s->st);
}

/* Removes the victim and returns its index. */
static int evict_one(struct node_set *s)
{
    struct evict_node *v = s->ops->victim(s->st);
    if (v == NULL)
        return -1;
    s->ops->remove(s->st, v);
    return (int)(v - s->n);
}

static void test_lru(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_LRU, 3);
    s.ops->hit(s.st, &s.n[0]);
    assert_int_equal(evict_one(&s), 1);
    assert_int_equal(evict_one(&s), 2);
    assert_int_equal(evict_one(&s), 0);
    assert_int_equal(evict_one(&s), -1);
    tear_down(&s);
}

static void test_fifo(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_FIFO, 3);
    s.ops->hit(s.st, &s.n[0]);
    assert_int_equal(evict_one(&s), 0);
    assert_int_equal(evict_one(&s), 1);
    tear_down(&s);
}

static void test_lfu(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_LFU, 3);
    s.ops->hit(s.st, &s.n[0]);
    s.ops->hit(s.st, &s.n[0]);
    s.ops->hit(s.st, &s.n[2]);
    assert_int_equal(evict_one(&s), 1);
    assert_int_equal(evict_one(&s), 2);
    assert_int_equal(evict_one(&s), 0);
    tear_down(&s);
}

static void test_ttl(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_TTL, 8); /* expires_at 100, 99, ... 93 */
    s.ops->remove(s.st, &s.n[5]); /* out of the middle of the heap */
    int expect[] = { 7, 6, 4, 3, 2, 1, 0 };
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(evict_one(&s), expect[i]);
    assert_int_equal(evict_one(&s), -1);
    tear_down(&s);
}

static void test_random(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_RANDOM, 16);
    int seen[16] = { 0 };
    for (int i = 0; i < 16; i++) {
        int v = evict_one(&s);
        assert_true(v >= 0 && v < 16);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
    }
    assert_int_equal(evict_one(&s), -1);
    tear_down(&s);
}

static void test_s3fifo(void **state)
{
    struct node_set s;
    set_up(&s, EVICT_S3FIFO, 10);
    /* 0 was used: it moves to main instead of leaving; the unused go first */
    s.ops->hit(s.st, &s.n[0]);
    assert_int_equal(evict_one(&s), 1);
    assert_int_equal(evict_one(&s), 2);
    for (int i = 3; i < 10; i++)
        assert_int_equal(evict_one(&s), i);
    assert_int_equal(evict_one(&s), 0);
    /* an evicted one-hit object comes back straight into main (ghost) */
    s.n[1].freq = 0;
    assert_int_equal(s.ops->insert(s.st, &s.n[1]), 0);
    assert_int_equal(s.n[1].queue, 2);
    s.n[11].hash = 999;
    assert_int_equal(s.ops->insert(s.st, &s.n[11]), 0);
    assert_int_equal(s.n[11].queue, 1);
    tear_down(&s);
}

/* ---- the store ---- */

static struct http_msg resp;

static struct cfg_cache cfg_of(const char *name, uint64_t memory, int policy)
{
    struct cfg_cache cc;
    memset(&cc, 0, sizeof(cc));
    cc.name = (char *)name;
    cc.memory_bytes = memory;
    cc.max_object_bytes = memory;
    cc.eviction = policy;
    return cc;
}

static struct http_slice sl(const char *s)
{
    return (struct http_slice){ s, strlen(s) };
}

static void resp_set(const char *const *fields, size_t n)
{
    http_msg_init(&resp);
    resp.status = 200;
    for (size_t i = 0; i < n; i++) {
        resp.headers[i].name = sl(fields[2 * i]);
        resp.headers[i].value = sl(fields[2 * i + 1]);
    }
    resp.n_headers = n;
}

/* Stores url with body `body` (and the response fields set by resp_set). */
static int put(struct cache *c, const char *url, const char *body, const char *vary_sig)
{
    struct cache_resp meta;
    cache_resp_init(&meta, 200);
    struct cache_obj *o = cache_obj_new(c, sl(url), sl(url), sl(vary_sig ? vary_sig : ""), resp.headers,
                                        resp.n_headers, &meta);
    if (o == NULL)
        return -EFBIG;
    int rc = cache_obj_append(c, o, body, strlen(body));
    if (rc == 0)
        rc = cache_insert(c, o);
    cache_obj_put(o);
    return rc;
}

static const char *get_body(struct cache *c, const char *url, const struct http_header *req, size_t n,
                            char *out)
{
    struct cache_obj *o = cache_lookup(c, url, strlen(url), req, n);
    if (o == NULL)
        return NULL;
    memcpy(out, o->body, o->body_len);
    out[o->body_len] = 0;
    cache_obj_put(o);
    return out;
}

static void test_store_basic(void **state)
{
    struct cfg_cache cc = cfg_of("t-basic", 1 << 20, EVICT_S3FIFO);
    struct cache *c = cache_acquire(&cc);
    char buf[256];
    resp_set((const char *const[]){ "ETag", "\"1\"", "Age", "5", "Surrogate-Key", "a b" }, 3);
    assert_int_equal(put(c, "h/x", "one", NULL), 0);
    assert_string_equal(get_body(c, "h/x", NULL, 0, buf), "one");
    assert_null(get_body(c, "h/y", NULL, 0, buf));
    struct cache_obj *o = cache_lookup(c, "h/x", 3, NULL, 0);
    assert_int_equal(o->n_headers, 2); /* Age is not kept */
    assert_int_equal(o->etag.len, 3);
    cache_obj_put(o);
    /* replacing the same key */
    assert_int_equal(put(c, "h/x", "two", NULL), 0);
    assert_string_equal(get_body(c, "h/x", NULL, 0, buf), "two");
    struct cache_stats st;
    cache_stats_get(c, &st);
    assert_int_equal(st.objects, 1);
    assert_int_equal(cache_invalidate(c, "h/x", 3), 1);
    assert_null(get_body(c, "h/x", NULL, 0, buf));
    cache_release(c);
}

static void test_store_vary(void **state)
{
    struct cfg_cache cc = cfg_of("t-vary", 1 << 20, EVICT_LRU);
    struct cache *c = cache_acquire(&cc);
    char buf[256], sig[256];
    resp_set((const char *const[]){ "Vary", "Accept-Language, accept-encoding" }, 1);
    struct http_header en[] = { { sl("Accept-Language"), sl("en ,  fr") }, { sl("X"), sl("1") } };
    struct http_header fr[] = { { sl("accept-language"), sl("fr") } };
    int n = cache_vary_sig(en, 2, resp.headers, 1, sig, sizeof(sig));
    assert_string_equal((sig[n] = 0, sig), "accept-language=en,fr\naccept-encoding=\n");
    assert_int_equal(put(c, "h/v", "EN", sig), 0);
    n = cache_vary_sig(fr, 1, resp.headers, 1, sig, sizeof(sig));
    sig[n] = 0;
    assert_int_equal(put(c, "h/v", "FR", sig), 0);
    assert_string_equal(get_body(c, "h/v", en, 2, buf), "EN");
    assert_string_equal(get_body(c, "h/v", fr, 1, buf), "FR");
    assert_null(get_body(c, "h/v", NULL, 0, buf));
    assert_int_equal(cache_vary_sig(en, 2, resp.headers, 1, sig, 10), -ENOSPC);
    assert_int_equal(cache_invalidate(c, "h/v", 3), 2);
    cache_release(c);
}

/* A waiter reads the leader's object as it fills, at its own pace. */
static void test_flight_stream(void **state)
{
    struct cfg_cache cc = cfg_of("t-flight", 1 << 20, EVICT_LRU);
    struct cache *c = cache_acquire(&cc);
    char buf[16];
    int leader, waiter;
    int64_t len = 0;
    struct cache_flight *f = cache_flight_join(c, "h/f", 3, &leader);
    struct cache_flight *w = cache_flight_join(c, "h/f", 3, &waiter);
    assert_true(leader && !waiter && f == w);
    assert_null(cache_flight_obj(w, &len)); /* nothing published yet */
    struct cache_resp meta;
    cache_resp_init(&meta, 200);
    resp_set(NULL, 0);
    struct cache_obj *o = cache_obj_new(c, sl("h/f"), sl("h/f"), sl(""), resp.headers, 0, &meta);
    cache_flight_publish(f, o, 10);
    struct cache_obj *seen = cache_flight_obj(w, &len);
    assert_ptr_equal(seen, o);
    assert_int_equal(len, 10);
    assert_int_equal(cache_flight_read(w, 0, buf, sizeof(buf)), 0); /* none yet */
    assert_int_equal(cache_flight_append(c, f, o, "01234", 5), 0);
    assert_int_equal(cache_flight_read(w, 0, buf, 3), 3);
    assert_memory_equal(buf, "012", 3);
    assert_int_equal(cache_flight_read(w, 3, buf, sizeof(buf)), 2);
    assert_int_equal(cache_flight_read(w, 5, buf, sizeof(buf)), 0);
    assert_int_equal(cache_flight_append(c, f, o, "56789", 5), 0);
    assert_int_equal(cache_flight_complete(c, f, o), 0);
    cache_flight_end(c, f, 1);
    assert_int_equal(cache_flight_read(w, 5, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "56789", 5);
    assert_int_equal(cache_flight_read(w, 10, buf, sizeof(buf)), CACHE_FLIGHT_EOF);
    /* a reader beginning after the end still gets it all */
    assert_int_equal(cache_flight_read(w, 0, buf, sizeof(buf)), 10);
    cache_obj_put(seen);
    cache_obj_put(o);
    cache_flight_put(f);
    cache_flight_put(w);
    cache_release(c);
}

/* The leader's body will not be whole: readers get -EPIPE, later waiters
 * no object (they go on alone). */
static void test_flight_stream_broken(void **state)
{
    struct cfg_cache cc = cfg_of("t-flight-broken", 64 << 10, EVICT_LRU); /* 4k per shard */
    struct cache *c = cache_acquire(&cc);
    char buf[16], big[8192];
    memset(big, 'b', sizeof(big));
    int leader, waiter;
    int64_t len;
    struct cache_flight *f = cache_flight_join(c, "h/b", 3, &leader);
    struct cache_flight *w = cache_flight_join(c, "h/b", 3, &waiter);
    struct cache_resp meta;
    cache_resp_init(&meta, 200);
    resp_set(NULL, 0);
    struct cache_obj *o = cache_obj_new(c, sl("h/b"), sl("h/b"), sl(""), resp.headers, 0, &meta);
    cache_flight_publish(f, o, -1);
    assert_int_equal(cache_flight_append(c, f, o, "ab", 2), 0);
    assert_int_equal(cache_flight_read(w, 0, buf, sizeof(buf)), 2);
    assert_int_equal(cache_flight_append(c, f, o, big, sizeof(big)), -EFBIG);
    assert_int_equal(cache_flight_read(w, 2, buf, sizeof(buf)), -EPIPE);
    assert_null(cache_flight_obj(w, &len));
    cache_flight_end(c, f, 0);
    assert_int_equal(cache_flight_state(w), CACHE_FLIGHT_FAILED);
    cache_obj_put(o);
    cache_flight_put(f);
    /* a leader gone before its body was whole */
    f = cache_flight_join(c, "h/b", 3, &leader);
    o = cache_obj_new(c, sl("h/b"), sl("h/b"), sl(""), resp.headers, 0, &meta);
    cache_flight_publish(f, o, 4);
    assert_int_equal(cache_flight_append(c, f, o, "ab", 2), 0);
    cache_flight_end(c, f, 0);
    assert_int_equal(cache_flight_read(f, 0, buf, sizeof(buf)), -EPIPE);
    cache_obj_put(o);
    cache_flight_put(f);
    cache_flight_put(w);
    cache_release(c);
}

static void test_store_cap(void **state)
{
    /* 16 shards of 4k: a 5000-byte body never fits, small ones are evicted */
    struct cfg_cache cc = cfg_of("t-cap", 64 << 10, EVICT_FIFO);
    struct cache *c = cache_acquire(&cc);
    resp_set(NULL, 0);
    char big[5001];
    memset(big, 'b', 5000);
    big[5000] = 0;
    assert_int_equal(put(c, "h/big", big, NULL), -EFBIG);
    char body[1001], key[32];
    memset(body, 's', 1000);
    body[1000] = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "h/%d", i);
        assert_int_equal(put(c, key, body, NULL), 0);
    }
    struct cache_stats st;
    cache_stats_get(c, &st);
    assert_true(st.bytes <= 64 << 10);
    assert_true(st.evictions > 0);
    assert_int_equal(st.objects + st.evictions, 500);
    cache_release(c);
}

static void test_store_purge(void **state)
{
    struct cfg_cache cc = cfg_of("t-purge", 1 << 20, EVICT_S3FIFO);
    struct cache *c = cache_acquire(&cc);
    char buf[64];
    resp_set((const char *const[]){ "Surrogate-Key", "red  blue" }, 1);
    assert_int_equal(put(c, "h/a/1", "1", NULL), 0);
    resp_set((const char *const[]){ "Cache-Tag", "green,blue" }, 1);
    assert_int_equal(put(c, "h/a/2", "2", NULL), 0);
    resp_set(NULL, 0);
    assert_int_equal(put(c, "h/b/3", "3", NULL), 0);
    assert_int_equal(put(c, "h/a", "4", NULL), 0);
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_TAG, "re"), 0);
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_TAG, "green"), 1);
    assert_null(get_body(c, "h/a/2", NULL, 0, buf));
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_TAG, "blue"), 1);
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_URL, "h/a"), 1);
    assert_int_equal(put(c, "h/a/5", "5", NULL), 0);
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_PREFIX, "h/a/"), 1);
    assert_string_equal(get_body(c, "h/b/3", NULL, 0, buf), "3");
    assert_int_equal(cache_purge("t-purge", CACHE_PURGE_ALL, NULL), 1);
    assert_int_equal(cache_purge("no-such-cache", CACHE_PURGE_ALL, NULL), -ENOENT);
    cache_release(c);
}

static void test_registry_survives_reload(void **state)
{
    struct cfg_cache cc = cfg_of("t-reg", 1 << 20, EVICT_LRU);
    struct cache *old = cache_acquire(&cc);
    char buf[16];
    resp_set(NULL, 0);
    assert_int_equal(put(old, "h/r", "kept", NULL), 0);
    struct cache *same = cache_acquire(&cc); /* the new snapshot, before the old goes */
    assert_ptr_equal(same, old);
    cache_release(old);
    assert_string_equal(get_body(same, "h/r", NULL, 0, buf), "kept");
    cc.eviction = EVICT_LFU; /* another policy: a new, empty cache */
    struct cache *other = cache_acquire(&cc);
    assert_ptr_not_equal(other, same);
    assert_null(get_body(other, "h/r", NULL, 0, buf));
    cache_release(same);
    cache_release(other);
}

static void test_l2_codec(void **state)
{
    struct cfg_cache cc = cfg_of("t-l2", 1 << 20, EVICT_LRU);
    struct cache *c = cache_acquire(&cc);
    resp_set((const char *const[]){ "Cache-Control", "max-age=60", "ETag", "\"e\"" }, 2);
    struct cache_resp meta;
    cache_resp_init(&meta, 200);
    struct cache_obj *o = cache_obj_new(c, sl("k"), sl("u"), sl("accept=x\n"), resp.headers,
                                        resp.n_headers, &meta);
    assert_int_equal(cache_obj_append(c, o, "body!", 5), 0);
    cache_obj_set_times(o, 100, 101);
    char *v;
    size_t n;
    assert_int_equal(cache_l2_encode(o, &v, &n), 0);
    struct cache_obj *d = cache_l2_decode(c, NULL, sl("k"), sl("u"), v, n);
    assert_non_null(d);
    assert_int_equal(d->meta.status, 200);
    assert_int_equal(d->lifetime, 60);
    assert_int_equal(d->request_time, 100);
    assert_int_equal(d->response_time, 101);
    assert_int_equal(d->n_headers, 2);
    assert_int_equal(d->vary.len, 9);
    assert_memory_equal(d->body, "body!", 5);
    assert_int_equal(d->etag.len, 3);
    cache_obj_put(d);
    for (size_t cut = 0; cut < n; cut++) /* every truncation is refused */
        assert_null(cache_l2_decode(c, NULL, sl("k"), sl("u"), v, cut));
    v[0] = 'X';
    assert_null(cache_l2_decode(c, NULL, sl("k"), sl("u"), v, n));
    free(v);
    cache_obj_put(o);
    cache_release(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_lfu),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_s3fifo),
        cmocka_unit_test(test_store_basic),
        cmocka_unit_test(test_store_vary),
        cmocka_unit_test(test_store_cap),
        cmocka_unit_test(test_flight_stream),
        cmocka_unit_test(test_flight_stream_broken),
        cmocka_unit_test(test_store_purge),
        cmocka_unit_test(test_registry_survives_reload),
        cmocka_unit_test(test_l2_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

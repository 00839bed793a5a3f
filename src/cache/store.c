/* store: the shared memory of a cache (see store.h).
 *
 *   registry (process-wide, one mutex): name -> struct cache (refcounted)
 *   struct cache
 *     shard[hash % 16]: mutex | buckets (chains, doubled when full)
 *                      | eviction policy state | bytes, cap = memory / 16
 *   struct cache_obj: one allocation (the object, then its key, URL,
 *     Vary signature, tags, header array and header bytes); the body is a
 *     second allocation that grows while the response streams in
 *
 * The lock of a shard is held for a chain walk and a few pointer moves; no
 * allocation happens under it except the policy's arrays and the bucket
 * array doubling. A body is filled by one transaction before the object
 * is inserted, so hits never see a growing body. A fill counts against
 * the cap only once inserted: concurrent fills may pass it by at most
 * (fills in progress x max_object) for as long as they last.
 *
 * Coalescing: a flight per key being fetched. Its leader publishes the
 * object it fills; the waiters copy the body out as it grows:
 *
 *   leader  --append (flight lock: realloc + memcpy)--> obj->body
 *   waiter  <--read(off) (flight lock: memcpy of what is there)--
 *
 * The flight's lock is taken only by its leader and waiters, and only
 * around one append or one copy, so a slow waiter never holds the leader
 * back: each keeps its own offset, and the body is bounded by max_object
 * (past it the copy stops and readers get -EPIPE). Lock order: a flight's
 * lock, then a shard's (cache_flight_complete), never the reverse. */
#include "cache/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/cache_cfg.h"
#include "core/hash.h"
#include "core/metrics.h"

#define CACHE_BUCKETS_MIN 256

/* What a flight's published body is (under the flight's lock). */
enum cache_stream { CACHE_STREAM_NONE, CACHE_STREAM_OPEN, CACHE_STREAM_WHOLE, CACHE_STREAM_BROKEN };

struct cache_flight {
    struct cache_flight *next;      /* the shard's flights in progress */
    _Atomic uint32_t refs;
    _Atomic int state;              /* enum cache_flight_state */
    uint8_t listed;                 /* in the shard's list (lock held to read) */
    /* the leader's object as it fills: readers copy from it under lock */
    pthread_mutex_t lock;
    uint8_t stream;                 /* enum cache_stream */
    struct cache_obj *obj;          /* a reference, once published */
    int64_t body_expect;            /* the body's length, or -1 when unknown */
    uint64_t hash;
    size_t klen;
    char key[];
};

struct cache_shard {
    pthread_mutex_t lock;
    struct cache_flight *flights;
    struct cache_obj **buckets;
    size_t mask;
    size_t count;
    uint64_t bytes, cap;
    uint64_t evictions, inserts;
    void *policy;                   /* evict_ops state */
} __attribute__((aligned(64)));

struct cache {
    struct cache *next;             /* the registry */
    char *name;
    /* series labelled by the cache's name (and its eviction policy) */
    struct metric_series *m_requests, *m_objects, *m_bytes, *m_evictions, *m_l2_errors;
    unsigned refs;                  /* under the registry lock */
    const struct evict_ops *ops;
    enum evict_policy policy;
    _Atomic uint64_t max_object;
    struct cache_shard shards[CACHE_SHARDS];
};

static pthread_mutex_t cache_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache *cache_registry;

/* ---- objects ---- */

static void cache_obj_free(struct cache_obj *o)
{
    free(o->body);
    free(o);
}

void cache_obj_put(struct cache_obj *o)
{
    if (o && atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
        cache_obj_free(o);
}

static int cache_field_is(struct http_slice name, const char *lit)
{
    size_t n = strlen(lit);
    return name.len == n && strncasecmp(name.p, lit, n) == 0;
}

static int cache_tag_field(struct http_slice name)
{
    return cache_field_is(name, "surrogate-key") || cache_field_is(name, "cache-tag");
}

/* Fields kept with the object: all but Age (recomputed on each answer). */
static int cache_keep_field(const struct http_header *f)
{
    return !cache_field_is(f->name, "age");
}

static char *cache_put_slice(char *at, struct http_slice s, struct http_slice *out)
{
    if (s.len)
        memcpy(at, s.p, s.len);
    out->p = at;
    out->len = s.len;
    return at + s.len;
}

/* Copies the tags (Surrogate-Key, space separated; Cache-Tag, comma
 * separated) as one space separated list. */
static char *cache_put_tags(char *at, const struct http_header *f, size_t nf,
                            struct http_slice *out)
{
    char *start = at;
    for (size_t i = 0; i < nf; i++) {
        if (!cache_tag_field(f[i].name))
            continue;
        struct http_slice v = f[i].value;
        for (size_t k = 0; k < v.len; k++)
            *at++ = v.p[k] == ',' ? ' ' : v.p[k];
        *at++ = ' ';
    }
    out->p = start;
    out->len = (size_t)(at - start);
    return at;
}

struct cache_obj *cache_obj_new(struct cache *c, struct http_slice key, struct http_slice url,
                                struct http_slice vary, const struct http_header *f, size_t nf,
                                const struct cache_resp *meta)
{
    size_t n = 0, bytes = key.len + url.len + vary.len, tags = 0;
    for (size_t i = 0; i < nf; i++) {
        if (!cache_keep_field(&f[i]))
            continue;
        n++;
        bytes += f[i].name.len + f[i].value.len;
        if (cache_tag_field(f[i].name))
            tags += f[i].value.len + 1;
    }
    size_t head = (sizeof(struct cache_obj) + 15) & ~(size_t)15;
    size_t total = head + n * sizeof(struct http_header) + bytes + tags;
    if (total > cache_max_object(c))
        return NULL;
    struct cache_obj *o = calloc(1, total);
    if (o == NULL)
        return NULL;
    atomic_init(&o->refs, 1);
    o->meta = *meta;
    o->headers = (struct http_header *)((char *)o + head);
    char *at = (char *)(o->headers + n);
    at = cache_put_slice(at, key, &o->key);
    at = cache_put_slice(at, url, &o->url);
    at = cache_put_slice(at, vary, &o->vary);
    for (size_t i = 0; i < nf; i++) {
        if (!cache_keep_field(&f[i]))
            continue;
        struct http_header *h = &o->headers[o->n_headers++];
        at = cache_put_slice(at, f[i].name, &h->name);
        at = cache_put_slice(at, f[i].value, &h->value);
        if (cache_field_is(h->name, "etag"))
            o->etag = h->value;
        else if (cache_field_is(h->name, "last-modified"))
            o->last_modified = h->value;
    }
    cache_put_tags(at, f, nf, &o->tags);
    o->charge = total;
    o->ev.hash = hash_bytes(key.p, key.len);
    return o;
}

/* Reads the targeted field `name` (all its lines) into cc. Returns 1 when
 * present and valid. */
static int cache_targeted(const char *name, const struct http_header *f, size_t n,
                          struct cache_cc *cc)
{
    int seen = 0, bad = 0;
    cache_cc_init(cc);
    for (size_t i = 0; i < n; i++) {
        if (!cache_field_is(f[i].name, name))
            continue;
        seen = 1;
        bad |= cache_cc_parse(f[i].value.p, f[i].value.len, cc) < 0;
    }
    return seen && !bad;
}

void cache_meta_of(struct cache_resp *meta, int status, const struct http_header *f, size_t n,
                   int64_t now, const struct cfg_cache *cc)
{
    cache_resp_init(meta, status);
    for (size_t i = 0; i < n; i++)
        cache_resp_field(meta, f[i].name.p, f[i].name.len, f[i].value.p, f[i].value.len);
    if (meta->date == CACHE_ABSENT)
        meta->date = now;
    struct cache_cc t;
    for (size_t k = 0; cc && k < cc->n_targeted; k++) {
        if (cache_targeted(cc->targeted[k], f, n, &t)) {
            meta->cc = t; /* RFC 9213 2.1: Cache-Control is then ignored */
            break;
        }
    }
}

void cache_obj_set_times(struct cache_obj *o, int64_t request_time, int64_t now)
{
    o->request_time = request_time;
    o->response_time = now;
    o->lifetime = cache_freshness_lifetime(&o->meta);
    o->ev.expires_at = now + o->lifetime - cache_current_age(&o->meta, request_time, now, now);
}

size_t cache_merge_fields(const struct cache_obj *o, const struct http_header *nf, size_t n_new,
                          struct http_header *out)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_headers; i++) {
        size_t k = 0;
        while (k < n_new && (nf[k].name.len != o->headers[i].name.len ||
                             strncasecmp(nf[k].name.p, o->headers[i].name.p, nf[k].name.len)))
            k++;
        if (k == n_new)
            out[n++] = o->headers[i];
    }
    for (size_t k = 0; k < n_new; k++)
        out[n++] = nf[k];
    return n;
}

int cache_obj_append(struct cache *c, struct cache_obj *o, const char *p, size_t n)
{
    if (o->body_len + n + o->charge > cache_max_object(c)) {
        free(o->body);
        o->body = NULL;
        o->body_len = o->body_cap = 0;
        return -EFBIG;
    }
    if (o->body_len + n > o->body_cap) {
        size_t cap = o->body_cap ? o->body_cap : 4096;
        while (cap < o->body_len + n)
            cap *= 2;
        char *b = realloc(o->body, cap);
        if (b == NULL)
            return -ENOMEM;
        o->body = b;
        o->body_cap = cap;
    }
    memcpy(o->body + o->body_len, p, n);
    o->body_len += n;
    return 0;
}

/* ---- Vary ---- */

/* Appends the request's values of field `name` (all its lines, joined by
 * commas, without whitespace around them). Returns the new length or -1. */
static int cache_vary_values(const struct http_header *req, size_t n_req, struct http_slice name,
                             char *dst, size_t len, size_t cap)
{
    int first = 1;
    for (size_t i = 0; i < n_req; i++) {
        if (req[i].name.len != name.len || strncasecmp(req[i].name.p, name.p, name.len) != 0)
            continue;
        struct http_slice v = req[i].value;
        if (!first) {
            if (len >= cap)
                return -1;
            dst[len++] = ',';
        }
        first = 0;
        for (size_t k = 0; k < v.len; k++) {
            char ch = v.p[k];
            if (ch == ' ' || ch == '\t') {
                /* keep inner spaces, drop those next to a comma */
                size_t j = k;
                while (j < v.len && (v.p[j] == ' ' || v.p[j] == '\t'))
                    j++;
                if (j == v.len || v.p[j] == ',' || (len > 0 && dst[len - 1] == ','))
                    continue;
            }
            if (len >= cap)
                return -1;
            dst[len++] = ch;
        }
    }
    return (int)len;
}

int cache_vary_sig(const struct http_header *req, size_t n_req, const struct http_header *resp,
                   size_t n, char *dst, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cache_field_is(resp[i].name, "vary"))
            continue;
        struct http_slice v = resp[i].value;
        size_t k = 0;
        while (k < v.len) {
            while (k < v.len && (v.p[k] == ' ' || v.p[k] == '\t' || v.p[k] == ','))
                k++;
            size_t s = k;
            while (k < v.len && v.p[k] != ',' && v.p[k] != ' ' && v.p[k] != '\t')
                k++;
            if (k == s)
                continue;
            struct http_slice name = { v.p + s, k - s };
            if (len + name.len + 2 > cap)
                return -ENOSPC;
            for (size_t j = 0; j < name.len; j++)
                dst[len++] = (char)(name.p[j] | ((name.p[j] >= 'A' && name.p[j] <= 'Z') ? 0x20 : 0));
            dst[len++] = '=';
            int r = cache_vary_values(req, n_req, name, dst, len, cap);
            if (r < 0 || (size_t)r >= cap)
                return -ENOSPC;
            len = (size_t)r;
            dst[len++] = '\n';
        }
    }
    return (int)len;
}

/* ---- shards ---- */

static struct cache_shard *cache_shard_of(struct cache *c, uint64_t hash)
{
    return &c->shards[(hash >> 56) % CACHE_SHARDS];
}

static struct cache_obj **cache_bucket(struct cache_shard *s, uint64_t hash)
{
    return &s->buckets[hash & s->mask];
}

static int cache_obj_key_is(const struct cache_obj *o, uint64_t hash, const char *key, size_t klen)
{
    return o->ev.hash == hash && o->key.len == klen && memcmp(o->key.p, key, klen) == 0;
}

/* Unlinks o from its shard (lock held) and drops the table's reference. */
static void cache_shard_unlink(struct cache *c, struct cache_shard *s, struct cache_obj *o)
{
    struct cache_obj **pp = cache_bucket(s, o->ev.hash);
    while (*pp && *pp != o)
        pp = &(*pp)->chain;
    if (*pp)
        *pp = o->chain;
    c->ops->remove(s->policy, &o->ev);
    s->count--;
    s->bytes -= o->charge;
    metrics_sub(c->m_objects, 0, 1);
    metrics_sub(c->m_bytes, 0, o->charge);
    o->in_table = 0;
    cache_obj_put(o);
}

/* Doubles the bucket array when chains grow long; a failure keeps the old one. */
static void cache_shard_grow(struct cache_shard *s)
{
    if (s->count < 2 * (s->mask + 1))
        return;
    size_t nb = (s->mask + 1) * 2;
    struct cache_obj **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i <= s->mask; i++) {
        struct cache_obj *o = s->buckets[i], *next;
        for (; o; o = next) {
            next = o->chain;
            o->chain = b[o->ev.hash & (nb - 1)];
            b[o->ev.hash & (nb - 1)] = o;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->mask = nb - 1;
}

struct cache_obj *cache_lookup(struct cache *c, const char *key, size_t klen,
                               const struct http_header *req, size_t n_req)
{
    uint64_t h = hash_bytes(key, klen);
    struct cache_shard *s = cache_shard_of(c, h);
    char sig[CACHE_VARY_MAX];
    struct cache_obj *found = NULL;
    pthread_mutex_lock(&s->lock);
    for (struct cache_obj *o = *cache_bucket(s, h); o; o = o->chain) {
        if (!cache_obj_key_is(o, h, key, klen))
            continue;
        int n = cache_vary_sig(req, n_req, o->headers, o->n_headers, sig, sizeof(sig));
        if (n < 0 || (size_t)n != o->vary.len || memcmp(sig, o->vary.p, (size_t)n) != 0)
            continue;
        found = o;
        atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
        c->ops->hit(s->policy, &o->ev);
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

int cache_insert(struct cache *c, struct cache_obj *o)
{
    struct cache_shard *s = cache_shard_of(c, o->ev.hash);
    if (o->body_cap > o->body_len && o->body_len > 0) {
        char *b = realloc(o->body, o->body_len);
        if (b != NULL) {
            o->body = b;
            o->body_cap = o->body_len;
        }
    }
    uint64_t charge = o->charge + o->body_cap;
    if (charge > s->cap)
        return -EFBIG;
    o->charge = (size_t)charge;
    o->complete = 1;
    pthread_mutex_lock(&s->lock);
    /* the same key and Vary signature: the new response replaces the old */
    for (struct cache_obj *x = *cache_bucket(s, o->ev.hash); x; x = x->chain) {
        if (cache_obj_key_is(x, o->ev.hash, o->key.p, o->key.len) && x->vary.len == o->vary.len &&
            memcmp(x->vary.p, o->vary.p, o->vary.len) == 0) {
            cache_shard_unlink(c, s, x);
            break;
        }
    }
    while (s->bytes + charge > s->cap) {
        struct evict_node *v = c->ops->victim(s->policy);
        if (v == NULL)
            break;
        cache_shard_unlink(c, s, (struct cache_obj *)v);
        s->evictions++;
        metrics_add(c->m_evictions, 0, 1);
    }
    if (c->ops->insert(s->policy, &o->ev) != 0) {
        pthread_mutex_unlock(&s->lock);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
    struct cache_obj **b = cache_bucket(s, o->ev.hash);
    o->chain = *b;
    *b = o;
    o->in_table = 1;
    s->count++;
    s->bytes += charge;
    s->inserts++;
    metrics_add(c->m_objects, 0, 1);
    metrics_add(c->m_bytes, 0, charge);
    cache_shard_grow(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

size_t cache_invalidate(struct cache *c, const char *key, size_t klen)
{
    uint64_t h = hash_bytes(key, klen);
    struct cache_shard *s = cache_shard_of(c, h);
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    struct cache_obj *o = *cache_bucket(s, h), *next;
    for (; o; o = next) {
        next = o->chain;
        if (cache_obj_key_is(o, h, key, klen)) {
            cache_shard_unlink(c, s, o);
            n++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- coalescing ---- */

struct cache_flight *cache_flight_join(struct cache *c, const char *key, size_t klen, int *leader)
{
    uint64_t h = hash_bytes(key, klen);
    struct cache_shard *s = cache_shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    struct cache_flight *f = s->flights;
    while (f && (f->hash != h || f->klen != klen || memcmp(f->key, key, klen) != 0))
        f = f->next;
    *leader = f == NULL;
    if (f == NULL && (f = malloc(sizeof(*f) + klen)) != NULL) {
        atomic_init(&f->refs, 1); /* the table's */
        atomic_init(&f->state, CACHE_FLIGHT_PENDING);
        pthread_mutex_init(&f->lock, NULL);
        f->stream = CACHE_STREAM_NONE;
        f->obj = NULL;
        f->body_expect = -1;
        f->hash = h;
        f->klen = klen;
        memcpy(f->key, key, klen);
        f->listed = 1;
        f->next = s->flights;
        s->flights = f;
    }
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return f;
}

void cache_flight_put(struct cache_flight *f)
{
    if (f == NULL || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    cache_obj_put(f->obj);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void cache_flight_publish(struct cache_flight *f, struct cache_obj *o, int64_t body_len)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
    pthread_mutex_lock(&f->lock);
    struct cache_obj *old = f->obj;
    f->obj = o;
    f->body_expect = body_len;
    f->stream = CACHE_STREAM_OPEN;
    pthread_mutex_unlock(&f->lock);
    cache_obj_put(old);
}

int cache_flight_append(struct cache *c, struct cache_flight *f, struct cache_obj *o, const char *p,
                        size_t n)
{
    if (f == NULL || f->obj != o) /* f->obj is set by this same leader only */
        return cache_obj_append(c, o, p, n);
    pthread_mutex_lock(&f->lock);
    int rc = cache_obj_append(c, o, p, n);
    if (rc < 0)
        f->stream = CACHE_STREAM_BROKEN;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int cache_flight_complete(struct cache *c, struct cache_flight *f, struct cache_obj *o)
{
    if (f == NULL || f->obj != o)
        return cache_insert(c, o);
    pthread_mutex_lock(&f->lock);
    int rc = cache_insert(c, o);
    /* stored or not, the body is whole: the readers can finish */
    f->stream = CACHE_STREAM_WHOLE;
    f->body_expect = (int64_t)o->body_len;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

struct cache_obj *cache_flight_obj(struct cache_flight *f, int64_t *body_len)
{
    struct cache_obj *o = NULL;
    pthread_mutex_lock(&f->lock);
    if (f->stream == CACHE_STREAM_OPEN || f->stream == CACHE_STREAM_WHOLE) {
        o = f->obj;
        atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
        *body_len = f->body_expect;
    }
    pthread_mutex_unlock(&f->lock);
    return o;
}

long cache_flight_read(struct cache_flight *f, uint64_t off, char *dst, size_t cap)
{
    long n;
    pthread_mutex_lock(&f->lock);
    const struct cache_obj *o = f->obj;
    if (f->stream == CACHE_STREAM_BROKEN || o == NULL || off > o->body_len) {
        n = -EPIPE;
    } else if (off == o->body_len) {
        n = f->stream == CACHE_STREAM_WHOLE ? CACHE_FLIGHT_EOF : 0;
    } else {
        size_t left = o->body_len - (size_t)off;
        n = (long)(left < cap ? left : cap);
        memcpy(dst, o->body + off, (size_t)n);
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

void cache_flight_end(struct cache *c, struct cache_flight *f, int stored)
{
    struct cache_shard *s = cache_shard_of(c, f->hash);
    int unlisted = 0;
    pthread_mutex_lock(&s->lock);
    if (f->listed) {
        struct cache_flight **pp = &s->flights;
        while (*pp && *pp != f)
            pp = &(*pp)->next;
        if (*pp)
            *pp = f->next;
        f->listed = 0;
        unlisted = 1;
        atomic_store_explicit(&f->state, stored ? CACHE_FLIGHT_DONE : CACHE_FLIGHT_FAILED,
                              memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&f->lock);
    if (f->stream == CACHE_STREAM_OPEN)
        f->stream = CACHE_STREAM_BROKEN; /* ended before its body was whole */
    pthread_mutex_unlock(&f->lock);
    if (unlisted)
        cache_flight_put(f); /* the table's reference */
}

enum cache_flight_state cache_flight_state(const struct cache_flight *f)
{
    return (enum cache_flight_state)atomic_load_explicit(&f->state, memory_order_acquire);
}

/* ---- purge ---- */

static int cache_has_tag(struct http_slice tags, const char *tag, size_t len)
{
    size_t i = 0;
    while (i < tags.len) {
        while (i < tags.len && tags.p[i] == ' ')
            i++;
        size_t s = i;
        while (i < tags.len && tags.p[i] != ' ')
            i++;
        if (i - s == len && len > 0 && memcmp(tags.p + s, tag, len) == 0)
            return 1;
    }
    return 0;
}

static int cache_purge_match(const struct cache_obj *o, enum cache_purge_kind kind,
                             const char *arg, size_t len)
{
    switch (kind) {
    case CACHE_PURGE_URL:
        return o->url.len == len && memcmp(o->url.p, arg, len) == 0;
    case CACHE_PURGE_PREFIX:
        return o->url.len >= len && memcmp(o->url.p, arg, len) == 0;
    case CACHE_PURGE_TAG:
        return cache_has_tag(o->tags, arg, len);
    case CACHE_PURGE_ALL:
        return 1;
    default:
        return 0;
    }
}

long cache_purge_in(struct cache *c, enum cache_purge_kind kind, const char *arg, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b <= s->mask; b++) {
            struct cache_obj *o = s->buckets[b], *next;
            for (; o; o = next) {
                next = o->chain;
                if (cache_purge_match(o, kind, arg, len)) {
                    cache_shard_unlink(c, s, o);
                    n++;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

long cache_purge(const char *name, enum cache_purge_kind kind, const char *arg)
{
    long n = -ENOENT;
    pthread_mutex_lock(&cache_registry_lock);
    for (struct cache *c = cache_registry; c; c = c->next) {
        if (strcmp(c->name, name) != 0)
            continue;
        long k = cache_purge_in(c, kind, arg ? arg : "", arg ? strlen(arg) : 0);
        n = n < 0 ? k : n + k;
    }
    pthread_mutex_unlock(&cache_registry_lock);
    return n;
}

void cache_stats_get(struct cache *c, struct cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        out->objects += s->count;
        out->bytes += s->bytes;
        out->evictions += s->evictions;
        out->inserts += s->inserts;
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---- caches and the registry ---- */

uint64_t cache_max_object(const struct cache *c)
{
    return atomic_load_explicit(&c->max_object, memory_order_relaxed);
}

/* Sets the caps (lock per shard: a reload may run while workers serve). */
static void cache_set_params(struct cache *c, const struct cfg_cache *cc)
{
    uint64_t share = cc->memory_bytes / CACHE_SHARDS;
    uint64_t maxo = cc->max_object_bytes < share ? cc->max_object_bytes : share;
    atomic_store_explicit(&c->max_object, maxo, memory_order_relaxed);
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        c->shards[i].cap = share;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
}

/* ---- metrics ---- */

static const char *const cache_results[] = {
#define CACHE_RESULT_NAME(e, n) n,
    CACHE_RESULT_LIST(CACHE_RESULT_NAME)
#undef CACHE_RESULT_NAME
};

static const struct metric_family cache_family_requests = {
    .name = "weir_cache_requests_total",
    .help = "Requests that passed the cache, by how they were answered.",
    .type = METRIC_COUNTER,
    .labels = { "cache", "policy" },
    .cells_label = "result",
    .cells = cache_results,
    .n_cells = CACHE_RESULT_COUNT,
};

static const struct metric_family cache_family_objects = {
    .name = "weir_cache_objects",
    .help = "Objects stored in memory.",
    .type = METRIC_GAUGE,
    .labels = { "cache", "policy" },
};

static const struct metric_family cache_family_bytes = {
    .name = "weir_cache_bytes",
    .help = "Bytes charged to the stored objects (bodies and fields).",
    .type = METRIC_GAUGE,
    .labels = { "cache", "policy" },
};

static const struct metric_family cache_family_evictions = {
    .name = "weir_cache_evictions_total",
    .help = "Objects evicted to make room, by the cache's eviction policy.",
    .type = METRIC_COUNTER,
    .labels = { "cache", "policy" },
};

static const char *const cache_l2_ops[] = {
#define CACHE_L2_OP_NAME(e, n) n,
    CACHE_L2_OP_LIST(CACHE_L2_OP_NAME)
#undef CACHE_L2_OP_NAME
};

static const struct metric_family cache_family_l2_errors = {
    .name = "weir_cache_l2_errors_total",
    .help = "Commands to the cache's L2 store that failed (the request went on from memory "
            "and the backend).",
    .type = METRIC_COUNTER,
    .labels = { "cache", "policy" },
    .cells_label = "op",
    .cells = cache_l2_ops,
    .n_cells = CACHE_L2_OP_COUNT,
};

static const char *cache_policy_label(enum evict_policy p)
{
    const char *n = evict_policy_name(p);
    return n ? n : "?";
}

void cache_count(struct cache *c, enum cache_result r)
{
    metrics_add(c->m_requests, (unsigned)r, 1);
}

void cache_count_l2_error(struct cache *c, enum cache_l2_op op)
{
    metrics_add(c->m_l2_errors, (unsigned)op, 1);
}

static void cache_free(struct cache *c)
{
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        if (s->buckets) {
            for (size_t b = 0; b <= s->mask; b++) {
                struct cache_obj *o = s->buckets[b], *next;
                for (; o; o = next) {
                    next = o->chain;
                    cache_shard_unlink(c, s, o);
                }
            }
        }
        while (s->flights) {
            struct cache_flight *f = s->flights;
            s->flights = f->next;
            f->listed = 0;
            cache_flight_put(f);
        }
        if (s->policy && c->ops->fini)
            c->ops->fini(s->policy);
        free(s->policy);
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    metrics_series_put(c->m_requests);
    metrics_series_put(c->m_objects);
    metrics_series_put(c->m_bytes);
    metrics_series_put(c->m_evictions);
    metrics_series_put(c->m_l2_errors);
    free(c->name);
    free(c);
}

static struct cache *cache_new(const struct cfg_cache *cc)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->policy = (enum evict_policy)cc->eviction;
    c->ops = evict_ops_of(c->policy);
    c->name = strdup(cc->name);
    int ok = c->name != NULL;
    if (ok) {
        const char *v[] = { c->name, cache_policy_label(c->policy) };
        c->m_requests = metrics_series_get(&cache_family_requests, v);
        c->m_objects = metrics_series_get(&cache_family_objects, v);
        c->m_bytes = metrics_series_get(&cache_family_bytes, v);
        c->m_evictions = metrics_series_get(&cache_family_evictions, v);
        c->m_l2_errors = metrics_series_get(&cache_family_l2_errors, v);
    }
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->buckets = calloc(CACHE_BUCKETS_MIN, sizeof(*s->buckets));
        s->mask = CACHE_BUCKETS_MIN - 1;
        s->policy = calloc(1, c->ops->state_size);
        ok = ok && s->buckets && s->policy;
    }
    if (!ok) {
        cache_free(c);
        return NULL;
    }
    return c;
}

struct cache *cache_acquire(const struct cfg_cache *cc)
{
    pthread_mutex_lock(&cache_registry_lock);
    struct cache *c = cache_registry;
    while (c && (strcmp(c->name, cc->name) != 0 || c->policy != (enum evict_policy)cc->eviction))
        c = c->next;
    if (c == NULL && (c = cache_new(cc)) != NULL) {
        c->next = cache_registry;
        cache_registry = c;
    }
    if (c) {
        c->refs++;
        cache_set_params(c, cc);
    }
    pthread_mutex_unlock(&cache_registry_lock);
    return c;
}

void cache_ref(struct cache *c)
{
    pthread_mutex_lock(&cache_registry_lock);
    c->refs++;
    pthread_mutex_unlock(&cache_registry_lock);
}

void cache_release(struct cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cache_registry_lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&cache_registry_lock);
        return;
    }
    struct cache **pp = &cache_registry;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    pthread_mutex_unlock(&cache_registry_lock);
    cache_free(c);
}

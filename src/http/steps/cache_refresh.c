/* cache_refresh: see cache_refresh.h.
 *
 *   stale hit within stale-while-revalidate, first for its key (it leads
 *   the key's flight, so the refresh happens once)
 *     -> the client is answered from the stale object at once
 *     -> subreq: GET target + the stale object's validators -> the cluster
 *          304         -> the stale object's fields updated, stored again
 *          storable 2xx -> its body streams into a new object (up to
 *                          max_object; a larger one is not read on and the
 *                          stale object stays), stored once whole
 *          other, error -> nothing; the object stays stale
 *     -> the flight ends (waiting misses look again)
 *
 * The refresh holds a reference to the cache, the stale object and the
 * snapshot (whose cluster it asks), so a reload or the request ending
 * meanwhile changes nothing. It runs on the request's worker loop; a
 * refresh still out when weir stops is abandoned. */
#include "http/steps/cache_refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/store.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/http_write.h"
#include "http/subreq.h"
#include "http/txn.h"
#include "server/snapshot.h"

struct cache_refresh {
    struct subreq *sr;
    struct ev_loop *loop;
    struct cache *cache;
    const struct cfg_cache *cc;    /* in snap's configuration */
    struct snapshot *snap;
    struct cache_flight *flight;
    struct cache_obj *stale;
    struct cache_obj *fill;        /* the new answer's object as its body streams in */
    int64_t request_time;
    uint32_t req_flags;
    int has_auth;
};

static void cache_refresh_free(struct cache_refresh *r, int stored)
{
    cache_flight_end(r->cache, r->flight, stored);
    cache_flight_put(r->flight);
    cache_obj_put(r->stale);
    cache_obj_put(r->fill);
    cache_release(r->cache);
    snapshot_unref(r->snap);
    free(r);
}

/* The answer's end-to-end fields, in a new array (free it). */
static struct http_header *cache_refresh_fields(const struct http_msg *m, size_t *n)
{
    struct http_header *f = malloc((m->n_headers + 1) * sizeof(*f));
    *n = 0;
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < m->n_headers; i++)
        if (!m->hop[i])
            f[(*n)++] = m->headers[i];
    return f;
}

/* Stores an object made of fields f[0..n) and body; returns 1 when stored. */
static int cache_refresh_store(struct cache_refresh *r, int status, const struct http_header *f,
                               size_t n, const char *body, size_t body_len, int64_t now)
{
    struct cache_resp meta;
    cache_meta_of(&meta, status, f, n, now, r->cc);
    struct cache_obj *o = cache_obj_new(r->cache, r->stale->key, r->stale->url, r->stale->vary,
                                        f, n, &meta);
    if (o == NULL)
        return 0;
    cache_obj_set_times(o, r->request_time, now);
    int ok = (body_len == 0 || cache_obj_append(r->cache, o, body, body_len) == 0) &&
             cache_insert(r->cache, o) == 0;
    cache_obj_put(o);
    return ok;
}

/* The Vary field values of fields f[0..n), joined. */
static int cache_refresh_same_vary(const struct cache_obj *o, const struct http_header *f, size_t n)
{
    char a[CACHE_VARY_MAX], b[CACHE_VARY_MAX];
    /* the signature over the same (empty) request compares the Vary names */
    int x = cache_vary_sig(NULL, 0, o->headers, o->n_headers, a, sizeof(a));
    int y = cache_vary_sig(NULL, 0, f, n, b, sizeof(b));
    return x >= 0 && x == y && memcmp(a, b, (size_t)x) == 0;
}

/* A new answer (not a 304) with head h: when storable with the stale
 * object's Vary, makes r->fill for its body. Returns 0, or -EINVAL (not
 * storable) / -ENOMEM / -EFBIG. */
static int cache_refresh_begin(struct cache_refresh *r, const struct http_msg *h)
{
    int64_t now = (int64_t)ev_now(r->loop);
    size_t n;
    struct http_header *f = cache_refresh_fields(h, &n);
    if (f == NULL)
        return -ENOMEM;
    struct cache_resp meta;
    struct cache_cc rcc;
    cache_cc_init(&rcc);
    rcc.flags = r->req_flags;
    cache_meta_of(&meta, h->status, f, n, now, r->cc);
    int rc = -EINVAL;
    if (cache_storable(1, &rcc, r->has_auth, &meta) == CACHE_STORE_OK &&
        cache_refresh_same_vary(r->stale, f, n)) {
        r->fill = cache_obj_new(r->cache, r->stale->key, r->stale->url, r->stale->vary, f, n, &meta);
        rc = r->fill ? 0 : -EFBIG;
    }
    if (r->fill)
        cache_obj_set_times(r->fill, r->request_time, now);
    free(f);
    return rc;
}

/* subreq's body sink: the new answer's body, as it arrives, into r->fill.
 * A negative return stops reading it (not storable, or past max_object). */
static int cache_refresh_sink(void *arg, const struct http_msg *head, const char *p, size_t n)
{
    struct cache_refresh *r = arg;
    if (head->status == 304)
        return 0;
    if (r->fill == NULL) {
        int rc = cache_refresh_begin(r, head);
        if (rc < 0)
            return rc;
    }
    return cache_obj_append(r->cache, r->fill, p, n);
}

static int cache_refresh_answer(struct cache_refresh *r, const struct subreq_result *res)
{
    int64_t now = (int64_t)ev_now(r->loop);
    const struct http_msg *h = res->head;
    size_t n_new;
    struct http_header *nf = cache_refresh_fields(h, &n_new);
    int stored = 0;
    if (nf == NULL)
        return 0;
    if (h->status == 304) {
        struct http_header *f = malloc((r->stale->n_headers + n_new + 1) * sizeof(*f));
        if (f) {
            size_t n = cache_merge_fields(r->stale, nf, n_new, f);
            stored = cache_refresh_store(r, r->stale->meta.status, f, n, r->stale->body,
                                         r->stale->body_len, now);
            free(f);
        }
    } else if (r->fill != NULL || cache_refresh_begin(r, h) == 0) {
        stored = cache_insert(r->cache, r->fill) == 0; /* its body streamed in whole */
    }
    free(nf);
    return stored;
}

static void cache_refresh_done(void *arg, const struct subreq_result *res)
{
    struct cache_refresh *r = arg;
    r->sr = NULL;
    int stored = res->error == SUBREQ_OK && cache_refresh_answer(r, res);
    if (res->error != SUBREQ_OK)
        log_info("cache: background refresh of %.*s failed (%d); the object stays stale",
                 (int)r->stale->url.len, r->stale->url.p, (int)res->error);
    cache_refresh_free(r, stored);
}

/* Replaces the request's conditionals by the stale object's validators. */
static int cache_refresh_edit(struct http_msg *req, const struct cache_obj *o)
{
    static const char *const drop[] = { "if-none-match", "if-modified-since", "if-match",
                                        "if-unmodified-since", "if-range", "range" };
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        http_edit_remove(req, drop[i], strlen(drop[i]));
    int rc = 0;
    if (o->etag.len)
        rc = http_edit_add(req, (struct http_slice){ "If-None-Match", 13 }, o->etag);
    if (rc == 0 && o->last_modified.len)
        rc = http_edit_add(req, (struct http_slice){ "If-Modified-Since", 17 }, o->last_modified);
    return rc;
}

int cache_refresh_start(struct txn *t, struct cache *c, const struct cfg_cache *cc,
                        struct cache_flight *f,
                        struct cache_obj *stale, uint32_t req_flags, int has_auth,
                        uint64_t timeout_ms)
{
    if (t->route->cluster == NULL || t->req->method != HTTP_METHOD_GET)
        return -EINVAL;
    struct buf_pool *bp = txn_buf_pool(t);
    char *head = txn_alloc(t, bp->block_size / 2);
    struct cache_refresh *r = calloc(1, sizeof(*r));
    if (head == NULL || r == NULL || cache_refresh_edit(t->req, stale) < 0) {
        free(r);
        return -ENOMEM;
    }
    struct http_fwd_info info = { .client_ip = txn_client_ip(t), .proto = "http",
                                  .request_id = txn_request_id(t), .body_kind = HTTP_BODY_NONE };
    int n = http_write_request_head(head, bp->block_size / 2, t->req, &info);
    if (n < 0) {
        free(r);
        return -ENOSPC;
    }
    struct subreq_params p = {
        .loop = txn_loop(t),
        .pool = txn_upstream_pool(t),
        .bufs = bp,
        .cluster = txn_cluster(t, t->route->cluster),
        .worker_id = txn_worker_id(t),
        .timeout_ms = timeout_ms,
        .body_sink = cache_refresh_sink,
    };
    r->loop = p.loop;
    r->request_time = (int64_t)ev_now(p.loop);
    r->req_flags = req_flags;
    r->has_auth = has_auth;
    r->sr = subreq_start(&p, head, (size_t)n, cache_refresh_done, r);
    if (r->sr == NULL) {
        free(r);
        return -ENOMEM;
    }
    /* from here the refresh owns what it needs; done() releases it */
    r->cache = c;
    r->cc = cc;
    cache_ref(c);
    r->snap = txn_snapshot_ref(t);
    r->flight = f;
    r->stale = stale;
    atomic_fetch_add_explicit(&stale->refs, 1, memory_order_relaxed);
    return 0;
}

/* cache: the `cache: NAME` route step, an RFC 9111 shared cache in front
 * of the route's target. The rules are cache/freshness.c, the memory is
 * cache/store.c; this file joins them to a transaction.
 *
 *   request (GET / HEAD) --key--> memory
 *     fresh (or stale the client accepts) -> answer from the object:
 *         stored fields + Age + Cache-Status, the body streamed from the
 *         object (HEAD: no body; Range: 206; a matching validator: 304)
 *     stale within stale-while-revalidate -> answer it, refresh once in
 *         the background (cache_refresh.c)
 *     stale with a validator -> the target, asked conditionally; a 304
 *         re-stores the object with merged fields and answers from it
 *     none -> join the key's flight: the leader asks L2 (cache_l2.c),
 *         then the target; the others wait: once the leader's answer
 *         proves storable it publishes the object it fills, and each
 *         waiter answers from it as it streams in (its own offset, pulled
 *         by its session, a timer on its own loop polling for more); an
 *         answer that is not storable ends the flight and the waiters go
 *         to the target themselves. A body that will not be whole (past
 *         max_object after all, the leader's backend or client gone) cuts
 *         the waiters' answers short: the connection closes, as for a
 *         backend's truncated body; waiters not yet answering go on alone
 *     the target's answer, if storable, is copied into a new object as it
 *         streams to the client and inserted once whole (a body over
 *         max_object stops the copy; the client still gets everything)
 *     the target fails (5xx, unreachable) -> a stale object answers
 *         instead when stale-if-error allows (on_response_head, on_error)
 *   request (POST, PUT, DELETE, PATCH) -> the target; a 2xx/3xx answer
 *     invalidates the URI and a same-host Location / Content-Location
 *   PURGE from an allowed address -> removes by URI, prefix or tag, from
 *     memory at once and from L2 in the background (cache_l2_purge.c)
 *
 * What a request holds (object references, the fill in progress, a flight,
 * a wait timer, an L2 command) is in the step state and released by
 * cancel when the transaction ends. */
#include "http/steps/cache.h"
#include "http/steps/cache_l2.h"
#include "http/steps/cache_l2_purge.h"
#include "http/steps/cache_refresh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/cache_cfg.h"
#include "cache/store.h"
#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/txn.h"
#include "server/config.h"

#define CACHE_QUERY_PARAMS_MAX 64

struct cache_step_cfg {
    char *name;
    struct cfg_mark mark;
    const struct cfg_cache *cc;    /* resolved */
    struct cache *cache;           /* acquired at resolve, released by free */
};

enum cache_mode { CM_NONE, CM_HIT, CM_FILL, CM_PASS, CM_UNSAFE };

struct cache_state {
    struct cache_obj *hit;         /* the object an answer is sent from */
    struct cache_obj *fill;        /* the object being filled */
    struct cache_obj *stale;       /* a stored object not usable as is: revalidated, or kept
                                      for stale-if-error */
    int64_t req_sie;               /* the request's stale-if-error, or CACHE_ABSENT */
    struct cache_flight *flight;   /* coalescing: the flight this request leads */
    struct cache_wait *wait;       /* coalescing: this request waits on another's (arena) */
    struct store_cmd *l2_cmd;      /* a lookup in the L2 store in progress */
    struct http_slice key, url;    /* arena */
    struct http_header *req_fields; /* arena copy of the request's fields (Vary) */
    struct http_slice host;        /* arena copy of the request's host (Location) */
    size_t n_req_fields;
    uint64_t stream_off;           /* coalesced: body bytes taken from the leader's object */
    int64_t request_time;
    uint32_t req_flags;            /* the request's Cache-Control flags */
    uint8_t mode;                  /* enum cache_mode */
    uint8_t has_auth, is_get;
    uint8_t revalidating;          /* the request carries the stale object's validators */
    uint8_t leads;                 /* st->flight is this request's own (it leads) */
    const char *fwd;               /* Cache-Status fwd= reason */
    struct cache *cache;           /* the step's (for the metrics) */
};

/* ---- configuration ---- */

static int cache_step_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    const char *s;
    int rc = cfg_text(ctx, v, "a cache name", &s);
    if (rc < 0)
        return rc;
    struct cache_step_cfg *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return cfg_nomem(ctx);
    sc->mark = cfg_mark_of(v);
    *out = sc;
    return cfg_strdup(ctx, s, &sc->name);
}

static int cache_step_resolve(struct cfg_ctx *ctx, const struct cfg *cfg, void *p)
{
    struct cache_step_cfg *sc = p;
    char q[CFG_QUOTE_SIZE];
    sc->cc = cache_cfg_find(cfg, sc->name);
    if (sc->cc == NULL)
        return cfg_fail_mark(ctx, sc->mark, "cache %s is not defined under 'caches'",
                             cfg_quote(sc->name, q));
    if ((sc->cache = cache_acquire(sc->cc)) == NULL)
        return cfg_nomem(ctx);
    return 0;
}

static void cache_step_free(void *p)
{
    struct cache_step_cfg *sc = p;
    if (sc == NULL)
        return;
    cache_release(sc->cache);
    free(sc->name);
    free(sc);
}

/* ---- the key ---- */

static int cache_slice_cmp(const void *a, const void *b)
{
    const struct http_slice *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Writes the query as the cache's key.query says. Returns bytes written
 * or -1 when it does not fit. */
static int cache_name_listed(struct http_slice param, char *const *names, size_t n)
{
    const char *eq = memchr(param.p, '=', param.len);
    size_t len = eq ? (size_t)(eq - param.p) : param.len;
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], param.p, len) == 0)
            return 1;
    return 0;
}

/* Whether a query parameter counts in the key (query_params / query_ignore). */
static int cache_param_counts(const struct cfg_cache *cc, struct http_slice param)
{
    if (cc->n_key_params)
        return cache_name_listed(param, cc->key_params, cc->n_key_params);
    return !cache_name_listed(param, cc->key_params_ignored, cc->n_key_params_ignored);
}

static int cache_key_query(const struct cfg_cache *cc, struct http_slice q, char *dst, size_t cap)
{
    if (cc->key_query == CACHE_QUERY_IGNORE || q.len == 0)
        return 0;
    int filtered = cc->n_key_params || cc->n_key_params_ignored;
    if ((cc->key_query == CACHE_QUERY_ALL && !filtered) || q.len + 1 > cap) {
        if (q.len + 1 > cap)
            return -1;
        dst[0] = '?';
        memcpy(dst + 1, q.p, q.len);
        return (int)q.len + 1;
    }
    struct http_slice parts[CACHE_QUERY_PARAMS_MAX];
    size_t n = 0, s = 0;
    for (size_t i = 0; i <= q.len; i++) {
        if (i < q.len && q.p[i] != '&')
            continue;
        struct http_slice part = { q.p + s, i - s };
        if (i > s && n < CACHE_QUERY_PARAMS_MAX && cache_param_counts(cc, part))
            parts[n++] = part;
        else if (i > s && n == CACHE_QUERY_PARAMS_MAX)
            return -1;
        s = i + 1;
    }
    if (cc->key_query == CACHE_QUERY_SORTED)
        qsort(parts, n, sizeof(parts[0]), cache_slice_cmp);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        dst[len++] = i ? '&' : '?';
        memcpy(dst + len, parts[i].p, parts[i].len);
        len += parts[i].len;
    }
    return (int)len;
}

static const struct http_header *cache_find_field(const struct http_msg *m, const char *name)
{
    int i = http_msg_find(m, name);
    return i >= 0 ? &m->headers[i] : NULL;
}

static const struct http_header *cache_find_in(const struct http_header *h, size_t n,
                                               const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == len && strncasecmp(h[i].name.p, name, len) == 0)
            return &h[i];
    return NULL;
}

/* The value of cookie `name` in the request's Cookie fields (RFC 6265
 * 4.2.1: "a=1; b=2"), or an empty slice with p NULL when absent. */
static struct http_slice cache_cookie(const struct http_header *h, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (h[i].name.len != 6 || strncasecmp(h[i].name.p, "cookie", 6) != 0)
            continue;
        const char *p = h[i].value.p, *end = p + h[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            if ((size_t)(e - p) > nl && p[nl] == '=' && memcmp(p, name, nl) == 0)
                return (struct http_slice){ p + nl + 1, (size_t)(e - p) - nl - 1 };
            p = e;
        }
    }
    return (struct http_slice){ NULL, 0 };
}

/* What a key is made of: the request's host and fields, and a target. */
struct cache_key_parts {
    struct http_slice host, path, query;
    const struct http_header *fields;
    size_t n_fields;
};

/* Builds "v<version>|" host path [?query] ["|" name "=" value ...] in the
 * arena. The URL part (host path ?query) is *url. Returns 0 or -ENOMEM. */
static int cache_build_key(struct txn *t, const struct cfg_cache *cc,
                           const struct cache_key_parts *kp, struct http_slice *key,
                           struct http_slice *url)
{
    size_t cap = 64 + kp->host.len + kp->path.len + kp->query.len + 1;
    for (size_t i = 0; i < cc->n_key_headers; i++) {
        const struct http_header *h = cache_find_in(kp->fields, kp->n_fields, cc->key_headers[i]);
        cap += strlen(cc->key_headers[i]) + 2 + (h ? h->value.len : 0);
    }
    for (size_t i = 0; i < cc->n_key_cookies; i++)
        cap += strlen(cc->key_cookies[i]) + 10 +
               cache_cookie(kp->fields, kp->n_fields, cc->key_cookies[i]).len;
    char *k = txn_alloc(t, cap);
    if (k == NULL)
        return -ENOMEM;
    size_t len = (size_t)snprintf(k, cap, "v%u|", cc->version), u = len;
    for (size_t i = 0; i < kp->host.len; i++) { /* hosts are case-insensitive */
        char ch = kp->host.p[i];
        k[len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
    }
    memcpy(k + len, kp->path.p, kp->path.len);
    len += kp->path.len;
    int qn = cache_key_query(cc, kp->query, k + len, cap - len);
    if (qn < 0)
        return -ENOMEM;
    len += (size_t)qn;
    *url = (struct http_slice){ k + u, len - u };
    for (size_t i = 0; i < cc->n_key_headers; i++) {
        const struct http_header *h = cache_find_in(kp->fields, kp->n_fields, cc->key_headers[i]);
        len += (size_t)snprintf(k + len, cap - len, "|%s=", cc->key_headers[i]);
        if (h) {
            memcpy(k + len, h->value.p, h->value.len);
            len += h->value.len;
        }
    }
    for (size_t i = 0; i < cc->n_key_cookies; i++) {
        struct http_slice v = cache_cookie(kp->fields, kp->n_fields, cc->key_cookies[i]);
        /* an absent cookie and an empty one differ */
        len += (size_t)snprintf(k + len, cap - len, "|cookie:%s%s", cc->key_cookies[i],
                                v.p ? "=" : "");
        if (v.len) {
            memcpy(k + len, v.p, v.len);
            len += v.len;
        }
    }
    *key = (struct http_slice){ k, len };
    return 0;
}

/* Copies the request's fields into the arena: at response time the
 * request head is gone, and the Vary signature needs them. */
static int cache_keep_fields(struct txn *t, struct cache_state *st, const struct http_msg *req)
{
    size_t bytes = 0, n = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->hop[i] != HTTP_HOP_REMOVED) {
            bytes += req->headers[i].name.len + req->headers[i].value.len;
            n++;
        }
    struct http_header *h = (struct http_header *)txn_alloc(t, n * sizeof(*h) + bytes + 1);
    if (h == NULL)
        return -ENOMEM;
    char *at = (char *)(h + n);
    size_t k = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->hop[i] == HTTP_HOP_REMOVED)
            continue;
        const struct http_header *f = &req->headers[i];
        memcpy(at, f->name.p, f->name.len);
        h[k].name = (struct http_slice){ at, f->name.len };
        at += f->name.len;
        memcpy(at, f->value.p, f->value.len);
        h[k].value = (struct http_slice){ at, f->value.len };
        at += f->value.len;
        k++;
    }
    st->req_fields = h;
    st->n_req_fields = n;
    st->host = txn_copy(t, req->host.p, req->host.len);
    return st->host.p ? 0 : -ENOMEM;
}

/* ---- answering from an object ---- */

static int64_t cache_now(struct txn *t)
{
    return (int64_t)ev_now(txn_loop(t));
}

/* The stored fields, then Age, Cache-Status and `extra` (may be NULL), in
 * the arena. Returns the count or -ENOMEM. */
static int cache_answer_fields(struct txn *t, const struct cache_obj *o, int64_t age,
                               const char *how, const struct http_header *extra,
                               struct http_header **out)
{
    struct http_header *h = (struct http_header *)txn_alloc(t, (o->n_headers + 3) * sizeof(*h));
    char *age_s = txn_alloc(t, 24), *status_s = txn_alloc(t, 96);
    if (h == NULL || age_s == NULL || status_s == NULL)
        return -ENOMEM;
    memcpy(h, o->headers, o->n_headers * sizeof(*h));
    size_t n = o->n_headers;
    int an = snprintf(age_s, 24, "%lld", (long long)(age > 0 ? age : 0));
    h[n++] = (struct http_header){ { "Age", 3 }, { age_s, (size_t)an } };
    int sn = snprintf(status_s, 96, "weir; %s; ttl=%lld", how, (long long)(o->lifetime - age));
    h[n++] = (struct http_header){ { "Cache-Status", 12 }, { status_s, (size_t)sn } };
    if (extra)
        h[n++] = *extra;
    *out = h;
    return (int)n;
}

/* Whether the client's conditional request is satisfied by the object
 * (RFC 9110 13.2.2: If-None-Match first, else If-Modified-Since). */
static int cache_not_modified(const struct http_msg *req, const struct cache_obj *o)
{
    const struct http_header *inm = cache_find_field(req, "if-none-match");
    if (inm)
        return cache_etag_match(inm->value.p, inm->value.len, o->etag.p, o->etag.len);
    const struct http_header *ims = cache_find_field(req, "if-modified-since");
    int64_t since, lm;
    if (ims == NULL || o->last_modified.len == 0 ||
        cache_date_parse(ims->value.p, ims->value.len, &since) < 0 ||
        cache_date_parse(o->last_modified.p, o->last_modified.len, &lm) < 0)
        return 0;
    return lm <= since;
}

/* Answers from o (a reference the state now holds). req NULL: at response
 * time, when the request's conditionals and Range are no longer known
 * (weir only revalidates requests that had none). `how` starts the
 * Cache-Status entry ("hit"). */
static enum step_result cache_answer_(struct txn *t, struct cache_state *st,
                                      const struct http_msg *req, struct cache_obj *o, int64_t age,
                                      const char *how)
{
    st->hit = o;
    st->mode = CM_HIT;
    struct http_header *h, extra, *xp = NULL;
    int status = o->meta.status;
    const char *body = o->body;
    size_t body_len = o->body_len;
    if (req && status == 200 && cache_not_modified(req, o)) {
        status = 304;
        body_len = 0;
    } else if (req && status == 200 && !cache_find_field(req, "if-range")) {
        const struct http_header *rg = cache_find_field(req, "range");
        uint64_t from = 0, to = 0;
        int r = rg ? cache_range_parse(rg->value.p, rg->value.len, o->body_len, &from, &to) : 0;
        char *cr = r ? txn_alloc(t, 64) : NULL;
        if (r && cr == NULL)
            return STEP_ERROR;
        if (r > 0) {
            int n = snprintf(cr, 64, "bytes %llu-%llu/%zu", (unsigned long long)from,
                             (unsigned long long)to, o->body_len);
            extra = (struct http_header){ { "Content-Range", 13 }, { cr, (size_t)n } };
            status = 206;
            body += from;
            body_len = (size_t)(to - from + 1);
            xp = &extra;
        } else if (r < 0) {
            int n = snprintf(cr, 64, "bytes */%zu", o->body_len);
            extra = (struct http_header){ { "Content-Range", 13 }, { cr, (size_t)n } };
            status = 416;
            body_len = 0;
            xp = &extra;
        }
    }
    int n = cache_answer_fields(t, o, age, how, xp, &h);
    if (n < 0)
        return STEP_ERROR;
    txn_respond(t, status, h, (size_t)n, body_len ? body : NULL, body_len);
    return STEP_RESPOND;
}

/* The metrics' word for an answer from the cache, by its Cache-Status. */
static enum cache_result cache_result_of(const char *how)
{
    if (strstr(how, "stale-if-error") || strstr(how, "stale-while-revalidate"))
        return CACHE_RESULT_STALE;
    if (strstr(how, "fwd-status=304"))
        return CACHE_RESULT_REVALIDATED;
    if (strstr(how, "coalesced"))
        return CACHE_RESULT_COALESCED;
    if (strstr(how, "detail=l2"))
        return CACHE_RESULT_L2_HIT;
    return CACHE_RESULT_HIT;
}

/* Answers from o (see cache_answer_) and counts the answer. */
static enum step_result cache_answer(struct txn *t, struct cache_state *st,
                                     const struct http_msg *req, struct cache_obj *o, int64_t age,
                                     const char *how)
{
    enum step_result r = cache_answer_(t, st, req, o, age, how);
    if (r == STEP_RESPOND)
        cache_count(st->cache, cache_result_of(how));
    return r;
}

/* ---- coalescing ---- */

/* A request waiting for another's miss (in the arena). It polls the
 * flight on its own loop (the leader may be on another worker): every 1 ms
 * at first, doubling up to 16 ms, until the leader publishes its object or
 * the flight ends or coalesce_timeout passes. Answering from the object,
 * the same timer polls for more body whenever the session found none. */
struct cache_wait {
    ev_timer timer;
    struct txn *t;
    const struct cache_step_cfg *sc;
    struct cache_state *st;
    struct cache_cc rcc;
    ev_tstamp give_up_at;
    ev_tstamp poll;                /* streaming: the next wait for more body */
};

#define CACHE_POLL_FIRST 0.001
#define CACHE_POLL_MAX 0.016

static void cache_wait_stop(struct cache_state *st)
{
    if (st->wait == NULL)
        return;
    ev_timer_stop(txn_loop(st->wait->t), &st->wait->timer);
    st->wait = NULL;
}

/* The leader's flight ended (or the wait timed out): answer from what it
 * stored, or go to the backend as a miss. */
static void cache_wait_over(struct cache_wait *w, enum cache_flight_state fs)
{
    struct cache_state *st = w->st;
    struct txn *t = w->t;
    cache_wait_stop(st);
    cache_flight_put(st->flight);
    st->flight = NULL;
    struct cache_obj *o = NULL;
    if (fs == CACHE_FLIGHT_DONE)
        o = cache_lookup(w->sc->cache, st->key.p, st->key.len, st->req_fields, st->n_req_fields);
    if (o != NULL) {
        int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
        enum cache_reuse r = cache_reuse(&w->rcc, &o->meta, o->lifetime, age);
        if ((r == CACHE_REUSE_FRESH || r == CACHE_REUSE_STALE_OK) &&
            cache_answer(t, st, NULL, o, age, "hit; detail=coalesced") == STEP_RESPOND) {
            txn_resume(t, STEP_RESPOND);
            return;
        }
        if (st->hit == o)
            st->hit = NULL;
        cache_obj_put(o);
    }
    st->fwd = fs == CACHE_FLIGHT_PENDING ? "miss; detail=coalesce-timeout" : "miss";
    txn_resume(t, STEP_NEXT);
}

/* The session pulls a coalesced answer's body from the leader's object. */
static long cache_stream_read(void *ctx, char *dst, size_t cap)
{
    struct cache_wait *w = ctx;
    struct cache_state *st = w->st;
    long n = cache_flight_read(st->flight, st->stream_off, dst, cap);
    if (n > 0) {
        st->stream_off += (uint64_t)n;
        w->poll = CACHE_POLL_FIRST;
        return n;
    }
    if (n == CACHE_FLIGHT_EOF)
        return TXN_SOURCE_END;
    if (n < 0)
        return n;
    if (!ev_is_active(&w->timer)) {
        ev_timer_set(&w->timer, w->poll, 0.);
        ev_timer_start(txn_loop(w->t), &w->timer);
        w->poll = w->poll * 2 < CACHE_POLL_MAX ? w->poll * 2 : CACHE_POLL_MAX;
    }
    return 0;
}

static const struct txn_body_source cache_stream_source = { .read = cache_stream_read };

static void cache_stream_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cache_wait *w = timer->data;
    txn_source_ready(w->t); /* may end the transaction: w is not touched after */
}

/* Whether o's Vary signature is that of this request's fields. */
static int cache_vary_matches(const struct cache_state *st, const struct cache_obj *o)
{
    char sig[CACHE_VARY_MAX];
    int n = cache_vary_sig(st->req_fields, st->n_req_fields, o->headers, o->n_headers, sig,
                           sizeof(sig));
    return n >= 0 && (size_t)n == o->vary.len && memcmp(sig, o->vary.p, (size_t)n) == 0;
}

/* The leader published o (a reference for us), whose body will be
 * body_len bytes (-1: unknown): answer from it as it fills, when it suits
 * this request; else go to the backend as a miss. */
static void cache_wait_stream(struct cache_wait *w, struct cache_obj *o, int64_t body_len)
{
    struct cache_state *st = w->st;
    struct txn *t = w->t;
    ev_timer_stop(txn_loop(t), &w->timer);
    int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
    enum cache_reuse r = cache_reuse(&w->rcc, &o->meta, o->lifetime, age);
    struct http_header *h;
    int n = -1;
    if (cache_vary_matches(st, o) && (r == CACHE_REUSE_FRESH || r == CACHE_REUSE_STALE_OK))
        n = cache_answer_fields(t, o, age, "hit; detail=coalesced", NULL, &h);
    if (n < 0) {
        cache_obj_put(o);
        cache_wait_stop(st);
        cache_flight_put(st->flight);
        st->flight = NULL;
        st->fwd = "miss";
        txn_resume(t, STEP_NEXT);
        return;
    }
    st->hit = o;
    st->mode = CM_HIT;
    st->stream_off = 0;
    w->poll = CACHE_POLL_FIRST;
    ev_set_cb(&w->timer, cache_stream_cb);
    txn_respond_source(t, o->meta.status, h, (size_t)n, body_len, &cache_stream_source, w);
    cache_count(st->cache, CACHE_RESULT_COALESCED);
    txn_resume(t, STEP_RESPOND);
}

static void cache_wait_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    struct cache_wait *w = timer->data;
    int64_t body_len;
    struct cache_obj *o = cache_flight_obj(w->st->flight, &body_len);
    if (o != NULL) {
        cache_wait_stream(w, o, body_len);
        return;
    }
    enum cache_flight_state fs = cache_flight_state(w->st->flight);
    if (fs != CACHE_FLIGHT_PENDING || ev_now(loop) >= w->give_up_at) {
        cache_wait_over(w, fs);
        return;
    }
    timer->repeat = timer->repeat * 2 < CACHE_POLL_MAX ? timer->repeat * 2 : CACHE_POLL_MAX;
    ev_timer_again(loop, timer);
}

/* The leader says how its miss ended. */
static void cache_lead_end(const struct cache_step_cfg *sc, struct cache_state *st, int stored)
{
    if (st->flight == NULL || !st->leads)
        return;
    cache_flight_end(sc->cache, st->flight, stored);
    cache_flight_put(st->flight);
    st->flight = NULL;
    st->leads = 0;
}

/* Joins the key's flight: returns NEXT to lead it (or alone), WAIT to wait
 * for the leader. */
static enum step_result cache_coalesce(struct txn *t, const struct cache_step_cfg *sc,
                                       struct cache_state *st, const struct cache_cc *rcc)
{
    int leader;
    if (sc->cc->coalesce_timeout_ms == 0 ||
        (st->flight = cache_flight_join(sc->cache, st->key.p, st->key.len, &leader)) == NULL)
        return STEP_NEXT;
    if (leader) {
        /* the previous flight may have ended between our lookup and now */
        st->leads = 1;
        struct cache_obj *o = cache_lookup(sc->cache, st->key.p, st->key.len, st->req_fields,
                                           st->n_req_fields);
        if (o == NULL)
            return STEP_NEXT;
        int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
        enum cache_reuse r = cache_reuse(rcc, &o->meta, o->lifetime, age);
        if (r != CACHE_REUSE_FRESH && r != CACHE_REUSE_STALE_OK) {
            cache_obj_put(o);
            return STEP_NEXT;
        }
        cache_lead_end(sc, st, 1);
        st->fill = NULL;
        return cache_answer(t, st, NULL, o, age, "hit");
    }
    struct cache_wait *w = (struct cache_wait *)txn_alloc(t, sizeof(*w));
    if (w == NULL) {
        cache_flight_put(st->flight);
        st->flight = NULL;
        return STEP_NEXT;
    }
    w->t = t;
    w->sc = sc;
    w->st = st;
    w->rcc = *rcc;
    w->give_up_at = ev_now(txn_loop(t)) + (double)sc->cc->coalesce_timeout_ms / 1000.0;
    ev_timer_init(&w->timer, cache_wait_cb, CACHE_POLL_FIRST, CACHE_POLL_FIRST);
    w->timer.data = w;
    ev_timer_start(txn_loop(t), &w->timer);
    st->wait = w;
    return STEP_WAIT;
}

/* ---- per request ---- */

static int cache_method_unsafe(enum http_method m)
{
    return m == HTTP_METHOD_POST || m == HTTP_METHOD_PUT || m == HTTP_METHOD_DELETE ||
           m == HTTP_METHOD_PATCH;
}

static void cache_request_cc(const struct http_msg *req, struct cache_cc *cc)
{
    cache_cc_init(cc);
    int any = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->hop[i] == HTTP_HOP_REMOVED)
            continue;
        struct http_slice n = req->headers[i].name;
        if (n.len == 13 && strncasecmp(n.p, "cache-control", 13) == 0) {
            (void)cache_cc_parse(req->headers[i].value.p, req->headers[i].value.len, cc);
            any = 1;
        }
    }
    /* Pragma: no-cache counts only without Cache-Control (RFC 9111 5.4) */
    const struct http_header *pragma = cache_find_field(req, "pragma");
    if (!any && pragma && pragma->value.len >= 8 && strncasecmp(pragma->value.p, "no-cache", 8) == 0)
        cc->flags |= CACHE_CC_FLAG(CACHE_CC_NO_CACHE);
}

static const struct http_header cache_purge_fields[] = {
    { { "Content-Type", 12 }, { "text/plain", 10 } },
};

/* What a PURGE names: the tags of its Surrogate-Key / Cache-Tag fields;
 * else a URL prefix (a path ending in '*'); else its URI. Returns how many
 * objects went. */
static long cache_purge_what(struct txn *t, const struct cache_step_cfg *sc,
                             const struct cache_state *st, const struct http_msg *req)
{
    long n = 0;
    int tagged = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        struct http_slice name = req->headers[i].name, v = req->headers[i].value;
        if (!((name.len == 13 && strncasecmp(name.p, "surrogate-key", 13) == 0) ||
              (name.len == 9 && strncasecmp(name.p, "cache-tag", 9) == 0)))
            continue;
        for (size_t k = 0; k < v.len;) {
            while (k < v.len && (v.p[k] == ' ' || v.p[k] == ',' || v.p[k] == '\t'))
                k++;
            size_t b = k;
            while (k < v.len && v.p[k] != ' ' && v.p[k] != ',' && v.p[k] != '\t')
                k++;
            if (k > b) {
                n += cache_purge_in(sc->cache, CACHE_PURGE_TAG, v.p + b, k - b);
                (void)cache_l2_purge(txn_loop(t), sc->cache, sc->cc, CACHE_PURGE_TAG, v.p + b,
                                     k - b);
                tagged = 1;
            }
        }
    }
    if (tagged)
        return n;
    if (req->query.len == 0 && st->url.len > 0 && st->url.p[st->url.len - 1] == '*') {
        (void)cache_l2_purge(txn_loop(t), sc->cache, sc->cc, CACHE_PURGE_PREFIX, st->url.p,
                             st->url.len - 1);
        return cache_purge_in(sc->cache, CACHE_PURGE_PREFIX, st->url.p, st->url.len - 1);
    }
    /* with key headers, the URI's objects differ in more than the key */
    if (sc->cc->n_key_headers) {
        (void)cache_l2_purge(txn_loop(t), sc->cache, sc->cc, CACHE_PURGE_URL, st->url.p,
                             st->url.len);
        return cache_purge_in(sc->cache, CACHE_PURGE_URL, st->url.p, st->url.len);
    }
    cache_l2_del(t, sc->cache, sc->cc, st->key);
    return (long)cache_invalidate(sc->cache, st->key.p, st->key.len);
}

/* PURGE: from an allowed address, removes the URI's objects. */
static enum step_result cache_purge_request(struct txn *t, const struct cache_step_cfg *sc,
                                            struct cache_state *st)
{
    struct cidr addr;
    if (cidr_parse_addr(txn_client_ip(t), &addr) < 0 ||
        !cidr_list_contains(sc->cc->purge_allow, sc->cc->n_purge_allow, &addr)) {
        txn_respond(t, 405, cache_purge_fields, 1, "PURGE not allowed\n", 18);
        return STEP_RESPOND;
    }
    long n = cache_purge_what(t, sc, st, t->req);
    char *body = txn_alloc(t, 32);
    if (body == NULL)
        return STEP_ERROR;
    int len = snprintf(body, 32, n > 0 ? "purged %ld\n" : "not cached\n", n);
    txn_respond(t, n > 0 ? 200 : 404, cache_purge_fields, 1, body, (size_t)len);
    return STEP_RESPOND;
}

static int cache_client_conditional(const struct http_msg *req)
{
    return cache_find_field(req, "if-none-match") || cache_find_field(req, "if-modified-since") ||
           cache_find_field(req, "if-match") || cache_find_field(req, "if-unmodified-since") ||
           cache_find_field(req, "if-range") || cache_find_field(req, "range");
}

/* Asks the backend whether the stale object o is still good (RFC 9111
 * 4.3.1): its ETag as If-None-Match, its Last-Modified as
 * If-Modified-Since. Only for requests without conditionals or Range of
 * their own (those go on as they are, and a 304 for them is passed on).
 * The values point into o, which the state holds. Returns 0 or -ENOSPC. */
static int cache_add_validators(struct txn *t, struct cache_state *st, const struct cache_obj *o)
{
    if (cache_client_conditional(t->req) || t->req->method != HTTP_METHOD_GET ||
        (o->etag.len == 0 && o->last_modified.len == 0))
        return 0;
    int rc = 0;
    if (o->etag.len)
        rc = http_edit_add(t->req, (struct http_slice){ "If-None-Match", 13 }, o->etag);
    if (rc == 0 && o->last_modified.len)
        rc = http_edit_add(t->req, (struct http_slice){ "If-Modified-Since", 17 }, o->last_modified);
    st->revalidating = rc == 0;
    return rc;
}

/* ---- L2 ---- */

struct cache_l2_wait {
    struct txn *t;
    const struct cache_step_cfg *sc;
    struct cache_state *st;
    struct cache_cc rcc;
};

/* What L2 had for a miss: answer from it, revalidate it, or go on. */
static void cache_l2_done(void *arg, struct cache_obj *o)
{
    struct cache_l2_wait *w = arg;
    struct cache_state *st = w->st;
    struct txn *t = w->t;
    st->l2_cmd = NULL;
    if (o && !cache_vary_matches(st, o)) {
        cache_obj_put(o); /* another variant: kept in memory, not this request's */
        o = NULL;
    }
    if (o == NULL) {
        txn_resume(t, STEP_NEXT);
        return;
    }
    int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
    enum cache_reuse r = cache_reuse(&w->rcc, &o->meta, o->lifetime, age);
    if (r == CACHE_REUSE_FRESH || r == CACHE_REUSE_STALE_OK) {
        cache_lead_end(w->sc, st, 1);
        enum step_result res = cache_answer(t, st, t->req, o, age, "hit; detail=l2");
        if (res != STEP_RESPOND && st->hit == o)
            st->hit = NULL, cache_obj_put(o);
        txn_resume(t, res);
        return;
    }
    st->stale = o;
    st->fwd = "stale";
    txn_resume(t, cache_add_validators(t, st, o) < 0 ? STEP_ERROR : STEP_NEXT);
}

/* A miss in memory: asks the cache's L2 store first, when it has one. */
static enum step_result cache_l2_lookup(struct txn *t, const struct cache_step_cfg *sc,
                                        struct cache_state *st, const struct cache_cc *rcc)
{
    if (sc->cc->l2_store == NULL)
        return STEP_NEXT;
    struct cache_l2_wait *w = (struct cache_l2_wait *)txn_alloc(t, sizeof(*w));
    if (w == NULL)
        return STEP_NEXT;
    *w = (struct cache_l2_wait){ t, sc, st, *rcc };
    st->l2_cmd = cache_l2_get(t, sc->cache, sc->cc, st->key, st->url, st->req_fields,
                              st->n_req_fields, cache_l2_done, w);
    return st->l2_cmd ? STEP_WAIT : STEP_NEXT;
}

/* Stale within stale-while-revalidate (RFC 5861 3): answers from o now and,
 * when no other request is already fetching the key, refreshes it in the
 * background. */
static enum step_result cache_swr(struct txn *t, const struct cache_step_cfg *sc,
                                  struct cache_state *st, struct cache_obj *o, int64_t age)
{
    enum step_result res = cache_answer(t, st, t->req, o, age, "hit; detail=stale-while-revalidate");
    if (res != STEP_RESPOND)
        return res;
    int leader;
    struct cache_flight *f = cache_flight_join(sc->cache, st->key.p, st->key.len, &leader);
    if (f == NULL)
        return res;
    uint64_t timeout_ms = sc->cc->coalesce_timeout_ms ? sc->cc->coalesce_timeout_ms : 5000;
    if (leader && cache_refresh_start(t, sc->cache, sc->cc, f, o, st->req_flags, st->has_auth,
                                      timeout_ms) == 0)
        return res; /* the refresh owns the flight and its reference now */
    if (leader)
        cache_flight_end(sc->cache, f, 0);
    cache_flight_put(f);
    return res;
}

static enum step_result cache_fill_or_wait(struct txn *t, const struct cache_step_cfg *sc,
                                           struct cache_state *st, const struct http_msg *req,
                                           const struct cache_cc *rcc);

/* A GET or HEAD: answer from the cache, or go on to fill it. */
static enum step_result cache_lookup_request(struct txn *t, const struct cache_step_cfg *sc,
                                             struct cache_state *st, const struct http_msg *req,
                                             const struct cache_cc *rcc)
{
    st->fwd = "uri-miss";
    struct cache_obj *o = NULL;
    if (rcc->flags & CACHE_CC_FLAG(CACHE_CC_NO_STORE))
        st->fwd = "bypass";
    else
        o = cache_lookup(sc->cache, st->key.p, st->key.len, req->headers, req->n_headers);
    if (o != NULL) {
        int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
        enum cache_reuse r = cache_reuse(rcc, &o->meta, o->lifetime, age);
        if (r == CACHE_REUSE_FRESH || r == CACHE_REUSE_STALE_OK)
            return cache_answer(t, st, req, o, age, "hit");
        if (r == CACHE_REUSE_SWR)
            return cache_swr(t, sc, st, o, age);
        st->stale = o;
        st->fwd = (rcc->flags & CACHE_CC_FLAG(CACHE_CC_NO_CACHE)) ? "request" : "stale";
        if (cache_add_validators(t, st, o) < 0)
            return STEP_ERROR;
    }
    if (rcc->flags & CACHE_CC_FLAG(CACHE_CC_ONLY_IF_CACHED)) {
        txn_respond(t, 504, NULL, 0, NULL, 0); /* RFC 9111 5.2.1.7 */
        return STEP_RESPOND;
    }
    st->mode = CM_FILL;
    if (cache_keep_fields(t, st, req) < 0) {
        st->mode = CM_PASS;
        return STEP_NEXT;
    }
    enum step_result r = cache_fill_or_wait(t, sc, st, req, rcc);
    int wants_fresh = rcc->flags & (CACHE_CC_FLAG(CACHE_CC_NO_STORE) | CACHE_CC_FLAG(CACHE_CC_NO_CACHE));
    if (r == STEP_NEXT && o == NULL && !wants_fresh && (st->leads || st->flight == NULL))
        r = cache_l2_lookup(t, sc, st, rcc);
    return r;
}

/* Where a miss goes: alone, or waiting on a concurrent one's flight. */
static enum step_result cache_fill_or_wait(struct txn *t, const struct cache_step_cfg *sc,
                                           struct cache_state *st, const struct http_msg *req,
                                           const struct cache_cc *rcc)
{
    /* requests with conditionals or Range, or that want a fresh answer,
     * go on alone: the leader's answer may not be theirs */
    if (cache_client_conditional(req) ||
        (rcc->flags & (CACHE_CC_FLAG(CACHE_CC_NO_CACHE) | CACHE_CC_FLAG(CACHE_CC_NO_STORE))))
        return STEP_NEXT;
    return cache_coalesce(t, sc, st, rcc);
}

/* The step's slot in the transaction holds only a pointer: the state
 * itself is in the arena, so a route can have the cache beside other steps
 * within STEP_STATE_MAX. NULL until on_request ran (or when the arena was
 * full: the request then passes as if uncached). */
static struct cache_state *cache_st(void *slot)
{
    return *(struct cache_state **)slot;
}

static enum step_result cache_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct cache_step_cfg *sc = cfg;
    struct cache_state *st = (struct cache_state *)txn_alloc(t, sizeof(*st));
    if (st == NULL)
        return STEP_NEXT;
    memset(st, 0, sizeof(*st));
    st->cache = sc->cache;
    *(struct cache_state **)state = st;
    const struct http_msg *req = t->req;
    st->request_time = cache_now(t);
    int purge = req->method == HTTP_METHOD_OTHER && req->method_str.len == 5 &&
                memcmp(req->method_str.p, "PURGE", 5) == 0;
    int lookup = req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD;
    if (!lookup && !purge && !cache_method_unsafe(req->method)) {
        st->mode = CM_PASS;
        return STEP_NEXT;
    }
    struct cache_key_parts kp = { req->host, req->path, req->query, req->headers, req->n_headers };
    if (cache_build_key(t, sc->cc, &kp, &st->key, &st->url) < 0) {
        st->mode = CM_PASS;
        return STEP_NEXT;
    }
    if (purge)
        return cache_purge_request(t, sc, st);
    if (!lookup) {
        /* the request may change the resource: keep what Location needs */
        st->mode = cache_keep_fields(t, st, req) == 0 ? CM_UNSAFE : CM_PASS;
        return STEP_NEXT;
    }
    struct cache_cc rcc;
    cache_request_cc(req, &rcc);
    st->req_flags = rcc.flags;
    st->req_sie = rcc.stale_if_error;
    st->is_get = req->method == HTTP_METHOD_GET;
    st->has_auth = cache_find_field(req, "authorization") != NULL;
    return cache_lookup_request(t, sc, st, req, &rcc);
}

/* ---- the response ---- */

static void cache_status_field(struct txn *t, const struct cache_state *st, struct http_msg *resp,
                               const char *fwd, const char *detail, int stored)
{
    /* the backend answered: a miss (uri-miss, miss, vary-miss, stale: RFC 9211 2.2), or a
     * pass (bypass, request: the client's no-cache) */
    int pass = strncmp(fwd, "bypass", 6) == 0 || strncmp(fwd, "request", 7) == 0;
    cache_count(st->cache, pass ? CACHE_RESULT_PASS : CACHE_RESULT_MISS);
    char *v = txn_alloc(t, 96);
    if (v == NULL)
        return;
    int n = snprintf(v, 96, "weir; fwd=%s%s%s%s", fwd, detail ? "; detail=" : "",
                     detail ? detail : "", stored ? "; stored" : "");
    (void)http_edit_add(resp, (struct http_slice){ "Cache-Status", 12 },
                        (struct http_slice){ v, (size_t)n });
}

/* A fake request holding only the kept fields, for the Vary signature. */
static int cache_vary_of(struct txn *t, const struct cache_state *st, const struct http_msg *resp,
                         struct http_slice *out)
{
    char *sig = txn_alloc(t, CACHE_VARY_MAX);
    if (sig == NULL)
        return -ENOMEM;
    int n = cache_vary_sig(st->req_fields, st->n_req_fields, resp->headers, resp->n_headers, sig,
                           CACHE_VARY_MAX);
    if (n < 0)
        return n;
    *out = (struct http_slice){ sig, (size_t)n };
    return 0;
}

/* The response's end-to-end fields (as steps left them), in the arena. */
static struct http_header *cache_resp_fields(struct txn *t, const struct http_msg *resp, size_t *n)
{
    struct http_header *f = (struct http_header *)txn_alloc(t, (resp->n_headers + 1) * sizeof(*f));
    *n = 0;
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!resp->hop[i])
            f[(*n)++] = resp->headers[i];
    return f;
}

/* The length the stored body will have: the backend's, unless a body
 * transform (set by an earlier step) changes it; -1 when not known. */
static int64_t cache_body_expect(const struct txn *t, const struct http_msg *resp)
{
    if (resp->body_kind == HTTP_BODY_NONE)
        return 0;
    if (resp->body_kind == HTTP_BODY_LENGTH && t->xform == NULL)
        return (int64_t)resp->content_length;
    return -1;
}

/* Decides whether the backend's answer is stored and starts the copy. */
static void cache_begin_fill(struct txn *t, const struct cache_step_cfg *sc, struct cache_state *st,
                             struct http_msg *resp)
{
    struct cache_resp meta;
    int64_t now = cache_now(t);
    size_t nf;
    struct http_header *f = cache_resp_fields(t, resp, &nf);
    cache_meta_of(&meta, resp->status, f, nf, now, sc->cc);
    struct cache_cc rcc;
    cache_cc_init(&rcc);
    rcc.flags = st->req_flags;
    enum cache_verdict v = cache_storable(st->is_get, &rcc, st->has_auth, &meta);
    const char *detail = v == CACHE_STORE_OK ? NULL : cache_verdict_name(v);
    struct http_slice vary;
    if (v == CACHE_STORE_OK && f == NULL)
        detail = "no-memory";
    else if (v == CACHE_STORE_OK && resp->body_kind == HTTP_BODY_LENGTH &&
             resp->content_length > cache_max_object(sc->cache))
        detail = "too-large";
    else if (v == CACHE_STORE_OK && cache_vary_of(t, st, resp, &vary) < 0)
        detail = "vary-too-large";
    else if (v == CACHE_STORE_OK &&
             (st->fill = cache_obj_new(sc->cache, st->key, st->url, vary, f, nf, &meta)) == NULL)
        detail = "too-large";
    if (st->fill) {
        cache_obj_set_times(st->fill, st->request_time, now);
        if (st->leads)
            cache_flight_publish(st->flight, st->fill, cache_body_expect(t, resp));
    } else {
        cache_lead_end(sc, st, 0); /* not storable: the waiters go on their own */
    }
    cache_status_field(t, st, resp, st->fwd, detail, st->fill != NULL);
}

/* The backend said 304 to weir's revalidation: the stored object, its
 * fields updated, is stored again and answers. */
static void cache_revalidated(struct txn *t, const struct cache_step_cfg *sc,
                              struct cache_state *st, struct http_msg *resp)
{
    int64_t now = cache_now(t);
    struct cache_obj *o = st->stale, *fresh = NULL;
    size_t n_new, n;
    struct http_header *nf = cache_resp_fields(t, resp, &n_new);
    struct http_header *f =
        nf ? (struct http_header *)txn_alloc(t, (o->n_headers + n_new + 1) * sizeof(*f)) : NULL;
    if (f)
        n = cache_merge_fields(o, nf, n_new, f);
    struct cache_resp meta;
    if (f) {
        cache_meta_of(&meta, o->meta.status, f, n, now, sc->cc);
        fresh = cache_obj_new(sc->cache, o->key, o->url, o->vary, f, n, &meta);
    }
    if (fresh)
        cache_obj_set_times(fresh, st->request_time, now);
    if (fresh && (o->body_len == 0 || cache_obj_append(sc->cache, fresh, o->body, o->body_len) == 0) &&
        cache_insert(sc->cache, fresh) == 0) {
        cache_l2_put(t, sc->cache, sc->cc, fresh);
        cache_obj_put(o);
        o = fresh;
    } else {
        cache_obj_put(fresh); /* not stored again: the validated old object answers */
    }
    st->stale = NULL;
    cache_lead_end(sc, st, o == fresh);
    int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, now);
    if (cache_answer(t, st, NULL, o, age, "fwd=stale; fwd-status=304") != STEP_RESPOND)
        st->hit = NULL, cache_obj_put(o);
}

/* The stale object answers instead of an error, when RFC 5861 4 allows it. */
static int cache_stale_instead(struct txn *t, struct cache_state *st, int status)
{
    struct cache_obj *o = st->stale;
    if (o == NULL)
        return 0;
    struct cache_cc rcc;
    cache_cc_init(&rcc);
    rcc.stale_if_error = st->req_sie;
    int64_t age = cache_current_age(&o->meta, o->request_time, o->response_time, cache_now(t));
    if (!cache_stale_if_error(&rcc, &o->meta, o->lifetime, age))
        return 0;
    char *how = txn_alloc(t, 64);
    if (how == NULL)
        return 0;
    snprintf(how, 64, "fwd=stale; fwd-status=%d; detail=stale-if-error", status);
    st->stale = NULL;
    if (cache_answer(t, st, NULL, o, age, how) != STEP_RESPOND) {
        st->hit = NULL;
        cache_obj_put(o);
        return 0;
    }
    return 1;
}

/* Invalidates the URI of `path` [?query] (RFC 9111 4.4). */
static void cache_invalidate_path(struct txn *t, const struct cache_step_cfg *sc,
                                  const struct cache_state *st, struct http_slice target)
{
    const char *q = memchr(target.p, '?', target.len);
    struct http_slice path = { target.p, q ? (size_t)(q - target.p) : target.len };
    struct http_slice query = { q ? q + 1 : "", q ? target.len - path.len - 1 : 0 };
    struct cache_key_parts kp = { st->host, path, query, st->req_fields, st->n_req_fields };
    struct http_slice key, url;
    if (cache_build_key(t, sc->cc, &kp, &key, &url) == 0)
        cache_invalidate(sc->cache, key.p, key.len);
}

static void cache_after_unsafe(struct txn *t, const struct cache_step_cfg *sc,
                               struct cache_state *st, struct http_msg *resp)
{
    if (resp->status < 200 || resp->status >= 400)
        return;
    cache_invalidate(sc->cache, st->key.p, st->key.len);
    static const char *const names[] = { "location", "content-location" };
    for (size_t k = 0; k < 2; k++) {
        const struct http_header *h = cache_find_field(resp, names[k]);
        /* same origin: a path without a scheme and authority */
        if (h && h->value.len > 0 && h->value.p[0] == '/' && (h->value.len < 2 || h->value.p[1] != '/'))
            cache_invalidate_path(t, sc, st, h->value);
    }
}

static void cache_on_response_head(struct txn *t, const void *cfg, void *state,
                                   struct http_msg *resp)
{
    const struct cache_step_cfg *sc = cfg;
    struct cache_state *st = cache_st(state);
    if (st == NULL)
        return;
    if (st->mode == CM_FILL && st->revalidating && resp->status == 304)
        cache_revalidated(t, sc, st, resp);
    else if (st->mode == CM_FILL && resp->status >= 500 && cache_stale_instead(t, st, resp->status))
        return;
    else if (st->mode == CM_FILL)
        cache_begin_fill(t, sc, st, resp);
    else if (st->mode == CM_UNSAFE)
        cache_after_unsafe(t, sc, st, resp);
}

static void cache_on_body(struct txn *t, const void *cfg, void *state, const char *p, size_t n)
{
    const struct cache_step_cfg *sc = cfg;
    struct cache_state *st = cache_st(state);
    if (st == NULL)
        return;
    if (st->fill &&
        cache_flight_append(sc->cache, st->leads ? st->flight : NULL, st->fill, p, n) < 0) {
        cache_obj_put(st->fill); /* too large after all: passed through, not kept */
        st->fill = NULL;
        cache_lead_end(sc, st, 0);
    }
}

static void cache_on_response_end(struct txn *t, const void *cfg, void *state)
{
    const struct cache_step_cfg *sc = cfg;
    struct cache_state *st = cache_st(state);
    if (st == NULL)
        return;
    if (st->fill == NULL)
        return;
    int rc = cache_flight_complete(sc->cache, st->leads ? st->flight : NULL, st->fill);
    if (rc < 0)
        log_debug("cache %s: an object of %zu bytes was not stored", sc->name, st->fill->body_len);
    else
        cache_l2_put(t, sc->cache, sc->cc, st->fill);
    cache_obj_put(st->fill);
    st->fill = NULL;
    cache_lead_end(sc, st, rc == 0);
}

static void cache_on_error(struct txn *t, const void *cfg, void *state, int status)
{
    struct cache_state *st = cache_st(state);
    if (st == NULL)
        return;
    if (st->mode == CM_FILL)
        (void)cache_stale_instead(t, st, status);
}

static void cache_cancel(struct txn *t, const void *cfg, void *state)
{
    struct cache_state *st = cache_st(state);
    if (st == NULL)
        return;
    cache_l2_cancel(st->l2_cmd);
    st->l2_cmd = NULL;
    cache_wait_stop(st);
    cache_lead_end(cfg, st, 0);
    cache_flight_put(st->flight); /* a waiter's reference */
    st->flight = NULL;
    cache_obj_put(st->hit);
    cache_obj_put(st->fill);
    cache_obj_put(st->stale);
    st->hit = st->fill = st->stale = NULL;
}

const struct step_type step_cache = {
    .key = "cache",
    .phase = STEP_PHASE_CACHE,
    .parse = cache_step_parse,
    .resolve = cache_step_resolve,
    .free_cfg = cache_step_free,
    .state_size = sizeof(struct cache_state *),
    .on_request = cache_on_request,
    .on_response_head = cache_on_response_head,
    .on_body = cache_on_body,
    .on_response_end = cache_on_response_end,
    .on_error = cache_on_error,
    .cancel = cache_cancel,
};

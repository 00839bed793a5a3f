/* txn: see txn.h. The session (proxy.c) owns the transaction's lifetime;
 * this file runs the route's steps and keeps what they need between a
 * WAIT and its txn_resume(). */
#include "http/txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/proxy_internal.h"

char *txn_alloc(struct txn *t, size_t n)
{
    struct buf_pool *bp = txn_buf_pool(t);
    if (buf_acquire(bp, &t->arena) != 0)
        return NULL;
    /* keep every allocation aligned, for structs steps may put here */
    size_t at = (t->arena.wpos + 7u) & ~(size_t)7u;
    if (at > bp->block_size || bp->block_size - at < n)
        return NULL;
    t->arena.wpos = (uint32_t)(at + n);
    return t->arena.data + at;
}

struct http_slice txn_copy(struct txn *t, const char *p, size_t n)
{
    char *dst = txn_alloc(t, n ? n : 1);
    if (dst == NULL)
        return (struct http_slice){ NULL, 0 };
    if (n)
        memcpy(dst, p, n);
    return (struct http_slice){ dst, n };
}

void txn_respond(struct txn *t, int status, const struct http_header *headers, size_t n_headers,
                 const char *body, size_t body_len)
{
    t->answer.status = status;
    t->answer.headers = headers;
    t->answer.n_headers = n_headers;
    t->answer.body = body;
    t->answer.body_len = body_len;
    t->answer.source = NULL;
}

void txn_respond_source(struct txn *t, int status, const struct http_header *headers,
                        size_t n_headers, int64_t body_len, const struct txn_body_source *src,
                        void *ctx)
{
    txn_respond(t, status, headers, n_headers, NULL, 0);
    t->answer.source = src;
    t->answer.source_ctx = ctx;
    t->answer.source_len = body_len;
}

void txn_source_ready(struct txn *t)
{
    if (t->answer.source)
        proxy_txn_source_ready(t);
}

void txn_resume(struct txn *t, enum step_result r)
{
    if (!t->waiting)
        return;
    t->waiting = 0;
    proxy_txn_resumed(t, r);
}

int txn_set_identity(struct txn *t, const char *p, size_t n)
{
    struct http_slice id = txn_copy(t, p, n);
    if (id.p == NULL)
        return -ENOMEM;
    t->identity = id;
    return 0;
}

struct http_slice txn_identity(const struct txn *t)
{
    return t->identity;
}

int txn_set_body_xform(struct txn *t, const struct txn_xform *x, void *ctx)
{
    if (t->xform) {
        x->free(ctx);
        return -EBUSY;
    }
    t->xform = x;
    t->xform_ctx = ctx;
    return 0;
}

void txn_drop_body_xform(struct txn *t)
{
    if (t->xform)
        t->xform->free(t->xform_ctx);
    t->xform = NULL;
    t->xform_ctx = NULL;
}

const char *txn_route_name(const struct txn *t)
{
    return t->route && t->route->name ? t->route->name : "-";
}

void txn_begin(struct txn *t, struct client *session, struct wctx *wc, struct http_msg *req)
{
    t->session = session;
    t->wc = wc;
    t->req = req;
    t->route = NULL;
    t->step_next = 0;
    t->waiting = 0;
    t->started = 0;
    t->identity = (struct http_slice){ NULL, 0 };
    txn_drop_body_xform(t);
    memset(&t->answer, 0, sizeof(t->answer));
}

enum step_result txn_run_steps(struct txn *t)
{
    const struct cfg_route *r = t->route;
    if (!t->started) {
        t->started = 1;
        if (r->step_state_bytes)
            memset(t->state, 0, r->step_state_bytes);
    }
    while (t->step_next < r->n_steps) {
        const struct route_step *st = &r->steps[t->step_next];
        t->step_next++;
        if (!st->type->on_request)
            continue;
        enum step_result res = st->type->on_request(t, st->cfg, t->state + st->state_off);
        if (res == STEP_WAIT)
            t->waiting = 1;
        if (res != STEP_NEXT)
            return res;
    }
    return STEP_NEXT;
}

/* Moves a slice that points into [from, from + len) to the same offset of `to`. */
static void txn_rebase(struct http_slice *s, const char *from, size_t len, const char *to)
{
    if (s->p >= from && s->p < from + len)
        s->p = to + (s->p - from);
}

int txn_keep_head(struct txn *t, const char *start, size_t head_len)
{
    struct txn_head *h = proxy_head_get(t);
    if (h == NULL)
        return -ENOMEM;
    if (buf_acquire(txn_buf_pool(t), &h->bytes) != 0 || head_len > txn_buf_pool(t)->block_size) {
        proxy_head_put(t, h);
        return -ENOMEM;
    }
    memcpy(h->bytes.data, start, head_len);
    h->bytes.wpos = (uint32_t)head_len;
    memcpy(&h->msg, t->req, sizeof(h->msg));
    struct http_msg *m = &h->msg;
    const char *to = h->bytes.data;
    txn_rebase(&m->method_str, start, head_len, to);
    txn_rebase(&m->target, start, head_len, to);
    txn_rebase(&m->path, start, head_len, to);
    txn_rebase(&m->query, start, head_len, to);
    txn_rebase(&m->host, start, head_len, to);
    txn_rebase(&m->reason, start, head_len, to);
    txn_rebase(&m->upgrade_proto, start, head_len, to);
    for (size_t i = 0; i < m->n_headers; i++) {
        txn_rebase(&m->headers[i].name, start, head_len, to);
        txn_rebase(&m->headers[i].value, start, head_len, to);
    }
    t->kept = h;
    t->req = m;
    return 0;
}

void txn_response_head(struct txn *t, struct http_msg *resp)
{
    const struct cfg_route *r = t->route;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct route_step *st = &r->steps[i];
        if (st->type->on_response_head)
            st->type->on_response_head(t, st->cfg, t->state + st->state_off, resp);
    }
}

void txn_body(struct txn *t, const char *p, size_t n)
{
    const struct cfg_route *r = t->route;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct route_step *st = &r->steps[i];
        if (st->type->on_body)
            st->type->on_body(t, st->cfg, t->state + st->state_off, p, n);
    }
}

void txn_response_end(struct txn *t)
{
    const struct cfg_route *r = t->route;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_steps; i++) {
        const struct route_step *st = &r->steps[i];
        if (st->type->on_response_end)
            st->type->on_response_end(t, st->cfg, t->state + st->state_off);
    }
}

int txn_error(struct txn *t, int status)
{
    const struct cfg_route *r = t->route;
    /* an answer already made (and failing now) is not replaced */
    if (r == NULL || !t->started || t->answer.status)
        return 0;
    for (size_t i = 0; i < t->step_next && i < r->n_steps && !t->answer.status; i++) {
        const struct route_step *st = &r->steps[i];
        if (st->type->on_error)
            st->type->on_error(t, st->cfg, t->state + st->state_off, status);
    }
    return t->answer.status != 0;
}

void txn_end(struct txn *t)
{
    const struct cfg_route *r = t->route;
    if (r != NULL && t->started) {
        /* every step that ran may hold something; cancel is a no-op when not */
        for (size_t i = 0; i < t->step_next && i < r->n_steps; i++) {
            const struct route_step *st = &r->steps[i];
            if (st->type->cancel)
                st->type->cancel(t, st->cfg, t->state + st->state_off);
        }
    }
    txn_drop_body_xform(t);
    t->started = 0;
    t->waiting = 0;
    t->step_next = 0;
    t->route = NULL;
    if (t->kept) {
        buf_release(txn_buf_pool(t), &t->kept->bytes);
        proxy_head_put(t, t->kept);
        t->kept = NULL;
    }
    if (t->wc)
        buf_release(txn_buf_pool(t), &t->arena);
    memset(&t->answer, 0, sizeof(t->answer));
    free(t->body);
    t->body = NULL;
    t->body_len = t->body_cap = 0;
}

const char *txn_request_body(const struct txn *t, size_t *len)
{
    *len = t->body_len;
    return t->body;
}

int txn_body_append(struct txn *t, const char *p, size_t n, uint64_t max)
{
    if (n == 0) /* a chunked body's read may decode to nothing; body may still be NULL */
        return 0;
    if (t->body_len + n > max)
        return -EFBIG;
    if (t->body_len + n > t->body_cap) {
        size_t cap = t->body_cap ? t->body_cap : 4096;
        while (cap < t->body_len + n)
            cap *= 2;
        char *b = realloc(t->body, cap);
        if (b == NULL)
            return -ENOMEM;
        t->body = b;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, p, n);
    t->body_len += n;
    return 0;
}

void txn_worker_cleanup(struct txn_head **free_list)
{
    while (*free_list) {
        struct txn_head *next = (*free_list)->next;
        free(*free_list);
        *free_list = next;
    }
}

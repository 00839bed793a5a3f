/* subreq: see subreq.h.
 *
 *   subreq_start -> pick endpoint -> pooled fd or connect
 *       out: the request head --write--> service
 *       in:  <--read-- head, then the body (Content-Length or chunked,
 *            decoded in place; or until close) -- whole in one buffer,
 *            or with a body sink: each decoded run handed over and its
 *            room after the head reused
 *   done(result) once: answer, timeout, failure; then the fd goes back to
 *   the pool (answer complete and keep-alive) or is closed, and the subreq
 *   is freed.
 *
 * A pooled connection the service had closed is retried once on a new
 * connection, as the proxy does. Everything is bounded: one buffer each
 * way, one timer for the whole exchange. */
#include "http/subreq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/net.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"
#include "upstream/lb.h"
#include "upstream/pool.h"

struct subreq {
    struct subreq_params p;
    ev_io io;
    ev_timer timer;
    ev_idle fail_soon;             /* reports a failure found inside subreq_start */
    int fd;
    int connecting;
    int reused;
    int retried;
    int eof;
    struct endpoint *ep;
    struct buf out, in;
    size_t head_len;               /* of the answer, once parsed */
    struct http_chunked chunk;
    size_t body_end;               /* decoded body bytes kept after the head */
    uint64_t body_sunk;            /* with a body sink: bytes handed over */
    size_t scan;                   /* bytes of `in` looked at by the body decoder */
    size_t body_off;               /* bytes of p.body sent */
    enum subreq_error error;
    subreq_done_fn done;
    void *arg;
};

static void subreq_free(struct subreq *s, int reusable)
{
    ev_io_stop(s->p.loop, &s->io);
    ev_timer_stop(s->p.loop, &s->timer);
    ev_idle_stop(s->p.loop, &s->fail_soon);
    if (s->fd >= 0) {
        const struct cfg_cluster *cc = s->p.cluster->cfg;
        if (!reusable || pool_put(s->p.pool, (struct sockaddr *)&s->ep->addr, s->ep->addrlen, s->fd,
                                  cc->pool_max_idle, cc->pool_idle_timeout_ms) != 0)
            close(s->fd);
    }
    if (s->ep)
        atomic_fetch_sub_explicit(&s->ep->active, 1, memory_order_relaxed);
    buf_release(s->p.bufs, &s->out);
    buf_release(s->p.bufs, &s->in);
    free(s);
}

static void subreq_finish(struct subreq *s, enum subreq_error err, const struct http_msg *head)
{
    struct subreq_result r = { .error = err, .endpoint = s->ep ? s->ep->name : NULL };
    if (err == SUBREQ_OK) {
        r.head = head;
        r.body = buf_rptr(&s->in) + s->head_len;
        r.body_len = s->body_end;
    }
    if (s->ep && err != SUBREQ_NO_ENDPOINT)
        endpoint_record(s->ep, err == SUBREQ_OK ? ENDPOINT_OK
                               : err == SUBREQ_TIMEOUT ? CFG_FAILURE_TIMEOUT
                               : err == SUBREQ_CONNECT ? CFG_FAILURE_CONNECT : CFG_FAILURE_RESET,
                        0, endpoint_now_ms());
    int reusable = err == SUBREQ_OK && head->keep_alive && head->body_kind != HTTP_BODY_UNTIL_CLOSE &&
                   !s->eof && buf_len(&s->in) == s->head_len + s->body_end;
    s->done(s->arg, &r);
    subreq_free(s, reusable);
}

/* Opens the connection: pooled when there is one (unless retrying), else new. */
static int subreq_connect(struct subreq *s)
{
    int fd = s->retried ? -1 : pool_take(s->p.pool, (struct sockaddr *)&s->ep->addr, s->ep->addrlen);
    s->reused = fd >= 0;
    s->connecting = 0;
    if (fd < 0) {
        fd = net_connect((struct sockaddr *)&s->ep->addr, s->ep->addrlen);
        if (fd < 0)
            return fd;
        s->connecting = 1;
    }
    s->fd = fd;
    ev_io_stop(s->p.loop, &s->io);
    ev_io_set(&s->io, fd, EV_WRITE);
    ev_io_start(s->p.loop, &s->io);
    return 0;
}

/* A pooled connection closed under us: try once more on a fresh one. */
static int subreq_retry_fresh(struct subreq *s)
{
    if (!s->reused || s->retried || buf_len(&s->in) > 0)
        return 0;
    ev_io_stop(s->p.loop, &s->io);
    close(s->fd);
    s->fd = -1;
    s->retried = 1;
    s->out.rpos = 0;
    s->body_off = 0;
    s->eof = 0;
    return subreq_connect(s) == 0;
}

static int subreq_body(struct subreq *s, const struct http_msg *head);

/* With a body sink: hands over the decoded body kept after the head and
 * makes its room free again (raw bytes not decoded yet, from `scan`, move
 * down). Returns 0, or -1 when the sink refused. */
static int subreq_sink(struct subreq *s, const struct http_msg *head)
{
    char *body = s->in.data + s->in.rpos + s->head_len;
    size_t have = buf_len(&s->in) - s->head_len;
    int rc = 0;
    if (s->body_end)
        rc = s->p.body_sink(s->arg, head, body, s->body_end);
    s->body_sunk += s->body_end;
    size_t rest = s->scan < have ? have - s->scan : 0;
    if (rest)
        memmove(body, body + s->scan, rest);
    s->in.wpos = (uint32_t)(s->in.rpos + s->head_len + rest);
    s->body_end = 0;
    s->scan = 0;
    return rc < 0 ? -1 : 0;
}

/* Decodes a body for a sink (subreq_sink): Content-Length counts what was
 * handed over, not what one buffer holds. Returns as subreq_body. */
static int subreq_body_sunk(struct subreq *s, const struct http_msg *head)
{
    size_t have = buf_len(&s->in) - s->head_len;
    if (head->body_kind == HTTP_BODY_LENGTH) {
        uint64_t left = head->content_length - s->body_sunk;
        s->body_end = have < left ? have : (size_t)left;
        s->scan = s->body_end; /* bytes past the length stay: the fd is then not reused */
        if (subreq_sink(s, head) < 0)
            return -1;
        return s->body_sunk == head->content_length ? 1 : s->eof ? -1 : 0;
    }
    int b = subreq_body(s, head);
    if (head->body_kind != HTTP_BODY_CHUNKED)
        s->scan = have;
    if (subreq_sink(s, head) < 0)
        return -1;
    return b;
}

/* Decodes the body that has arrived. Returns 1 when it is complete, 0 to
 * wait, -1 when it is invalid or too large. */
static int subreq_body(struct subreq *s, const struct http_msg *head)
{
    char *body = buf_rptr(&s->in) + s->head_len;
    size_t have = buf_len(&s->in) - s->head_len;
    switch (head->body_kind) {
    case HTTP_BODY_NONE:
        s->body_end = 0;
        return 1;
    case HTTP_BODY_LENGTH:
        if (head->content_length > s->p.bufs->block_size - s->head_len)
            return -1;
        s->body_end = have < head->content_length ? have : (size_t)head->content_length;
        return have >= head->content_length ? 1 : s->eof ? -1 : 0;
    case HTTP_BODY_CHUNKED:
        while (s->scan < have) {
            size_t used = 0, off = 0, dlen = 0;
            enum http_chunk_result r = http_chunked_next(&s->chunk, body + s->scan, have - s->scan,
                                                         &used, &off, &dlen);
            if (r == HTTP_CHUNK_ERROR)
                return -1;
            if (r == HTTP_CHUNK_DATA) {
                memmove(body + s->body_end, body + s->scan + off, dlen);
                s->body_end += dlen;
            }
            s->scan += used;
            if (r == HTTP_CHUNK_DONE) {
                /* keep `in` as head + decoded body for the reuse check */
                s->in.wpos = (uint32_t)(s->in.rpos + s->head_len + s->body_end);
                return 1;
            }
            if (used == 0)
                break;
        }
        return s->eof ? -1 : 0;
    default:
        s->body_end = have;
        return s->eof ? 1 : 0;
    }
}

/* Reads and parses what came. Returns 1 when finished (done called). */
static int subreq_read(struct subreq *s)
{
    static _Thread_local struct http_msg head;
    if (buf_acquire(s->p.bufs, &s->in) != 0) {
        subreq_finish(s, SUBREQ_INVALID, NULL);
        return 1;
    }
    for (;;) {
        size_t space = s->p.bufs->block_size - s->in.wpos;
        if (space == 0)
            break;
        ssize_t n = read(s->fd, s->in.data + s->in.wpos, space);
        if (n > 0) {
            s->in.wpos += (uint32_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK))
            s->eof = 1;
        if (n == -1 && errno == EINTR)
            continue;
        break;
    }
    if (s->eof && buf_len(&s->in) == 0) {
        if (subreq_retry_fresh(s))
            return 0;
        subreq_finish(s, SUBREQ_CONNECT, NULL);
        return 1;
    }
    struct http_limits lim = { s->p.bufs->block_size, s->p.bufs->block_size, HTTP_MAX_HEADERS_HARD };
    http_msg_init(&head);
    int n;
    do { /* interim 1xx answers are skipped */
        n = http_parse_response(buf_rptr(&s->in), buf_len(&s->in), &head, &lim, HTTP_METHOD_GET);
        if (n > 0 && head.status < 200) {
            buf_consume(&s->in, (size_t)n);
            http_msg_init(&head);
            continue;
        }
        break;
    } while (1);
    if (n == HTTP_PARSE_PARTIAL) {
        if (s->eof || s->in.wpos == s->p.bufs->block_size) {
            subreq_finish(s, SUBREQ_INVALID, NULL);
            return 1;
        }
        return 0;
    }
    if (n == HTTP_PARSE_ERROR) {
        subreq_finish(s, SUBREQ_INVALID, NULL);
        return 1;
    }
    if (s->head_len == 0) {
        s->head_len = (size_t)n;
        if (head.body_kind == HTTP_BODY_CHUNKED)
            http_chunked_init(&s->chunk);
    }
    int b = s->p.body_sink ? subreq_body_sunk(s, &head) : subreq_body(s, &head);
    if (b == 0 && s->in.wpos == s->p.bufs->block_size)
        b = -1;
    if (b == 0)
        return 0;
    subreq_finish(s, b > 0 ? SUBREQ_OK : SUBREQ_INVALID, &head);
    return 1;
}

static void subreq_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct subreq *s = w->data;
    if (s->connecting) {
        if (net_connect_result(s->fd) != 0) {
            subreq_finish(s, SUBREQ_CONNECT, NULL);
            return;
        }
        s->connecting = 0;
    }
    if (buf_len(&s->out) > 0 || s->body_off < s->p.body_len) {
        int head = buf_len(&s->out) > 0;
        const char *p = head ? buf_rptr(&s->out) : s->p.body + s->body_off;
        size_t len = head ? buf_len(&s->out) : s->p.body_len - s->body_off;
        ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);
        if (n == -1 && errno != EAGAIN && errno != EINTR) {
            if (!subreq_retry_fresh(s))
                subreq_finish(s, SUBREQ_CONNECT, NULL);
            return;
        }
        if (n > 0 && head)
            s->out.rpos += (uint32_t)n;
        else if (n > 0)
            s->body_off += (size_t)n;
        if (buf_len(&s->out) > 0 || s->body_off < s->p.body_len)
            return;
        ev_io_stop(loop, &s->io);
        ev_io_set(&s->io, s->fd, EV_READ);
        ev_io_start(loop, &s->io);
        return;
    }
    subreq_read(s);
}

static void subreq_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    subreq_finish(w->data, SUBREQ_TIMEOUT, NULL);
}

static void subreq_fail_soon_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct subreq *s = w->data;
    subreq_finish(s, s->error, NULL);
}

struct subreq *subreq_start(const struct subreq_params *p, const char *head, size_t head_len,
                            subreq_done_fn done, void *arg)
{
    struct subreq *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->p = *p;
    s->fd = -1;
    s->done = done;
    s->arg = arg;
    if (buf_acquire(p->bufs, &s->out) != 0 || buf_append(p->bufs, &s->out, head, head_len) != 0) {
        buf_release(p->bufs, &s->out);
        free(s);
        return NULL;
    }
    ev_io_init(&s->io, subreq_io_cb, 0, EV_WRITE);
    s->io.data = s;
    ev_timer_init(&s->timer, subreq_timer_cb, (double)p->timeout_ms / 1000.0, 0.);
    s->timer.data = s;
    ev_timer_start(p->loop, &s->timer);
    ev_idle_init(&s->fail_soon, subreq_fail_soon_cb);
    s->fail_soon.data = s;
    s->ep = lb_pick(p->cluster->lb, p->worker_id, 0, NULL);
    if (s->ep == NULL) {
        s->error = SUBREQ_NO_ENDPOINT;
        ev_idle_start(p->loop, &s->fail_soon);
        return s;
    }
    atomic_fetch_add_explicit(&s->ep->active, 1, memory_order_relaxed);
    if (subreq_connect(s) != 0) {
        s->error = SUBREQ_CONNECT;
        ev_idle_start(p->loop, &s->fail_soon);
    }
    return s;
}

void subreq_cancel(struct subreq *s)
{
    if (s)
        subreq_free(s, 0);
}

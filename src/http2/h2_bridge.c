/* h2_bridge: the lanes between an HTTP/2 connection and the HTTP/1.1
 * proxy sessions that serve its streams.
 *
 *   HEADERS ─> fields collected ─> "METHOD path HTTP/1.1", Host, fields,
 *              cookies joined,     Content-Length or chunked ─> lane.out ─┐
 *   DATA ────> (chunk framing) ────────────────────────────> lane.out ──┤ in memory
 *                                                                       ▼
 *                                                  proxy session (http/proxy.c)
 *   HEADERS <─ :status + fields (hop-by-hop dropped) <─ head ─┐          │
 *   DATA <──── data provider <── lane.body <── length/chunked ┴─ lane.in <┘
 *
 * Back-pressure: request DATA is given back to the client's window
 * (nghttp2_session_consume) only when lane.out is below H2_LANE_HWM; the
 * lane is read only while lane.in is below it, and lane.in is decoded into
 * lane.body only while that is below it, so a slow client stops the
 * proxy session: its writes to the lane fail with EAGAIN while lane.in is
 * at H2_LANE_HWM, and it is woken once lane.in drains. An answer without a
 * body waiting makes the data provider defer; new bytes resume it.
 *
 * The lane is no socket: the session's struct sio (h2_lane_sio_ops) reads
 * lane.out and appends to lane.in, and each side wakes the other by
 * feeding an event to its watcher (proxy_lane_wake, lane.io), so the other
 * side runs on the same loop turn, never inside the caller. The session
 * reads EAGAIN from an empty lane.out and end of stream once the lane is
 * gone; the lane sees the session's end (peer_eof) after what it wrote.
 *
 * A lane whose exchange ended cleanly (request and answer complete,
 * persistent) is kept idle for the next stream of the same connection; a
 * reset, an incomplete exchange or a non-persistent answer closes it, and
 * the proxy session sees the client go away. Answer trailers: the framing
 * bytes after a chunked answer's last data are kept (lane.tail) and the
 * fields found there go out as an HTTP/2 trailer HEADERS frame. Request
 * trailers (a trailing HEADERS) are kept (lane.trailers, at most
 * HTTP_TRAILERS_MAX) and go in the last-chunk of a chunked request. */
#include "http2/h2_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/http_trailers.h"
#include "http/proxy.h"
#include "tls/tls.h"

int h2_bytes_add(struct h2_bytes *b, const void *d, size_t n)
{
    if (n == 0)
        return 0;
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off > 0) {
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 256;
            while (cap < b->len + n)
                cap *= 2;
            char *p = realloc(b->p, cap);
            if (!p)
                return -ENOMEM;
            b->p = p;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

void h2_bytes_take(struct h2_bytes *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void h2_bytes_free(struct h2_bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static int h2_bytes_str(struct h2_bytes *b, const char *s)
{
    return h2_bytes_add(b, s, strlen(s));
}

/* ---- lane life ---------------------------------------------------------- */

static void h2_lane_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static struct ev_loop *h2_lane_loop(const struct h2_lane *l)
{
    return l->hc->wc->worker.loop;
}

/* Empties b, giving back a large allocation (a lane waits idle with it). */
static void h2_bytes_shrink(struct h2_bytes *b)
{
    if (b->cap > 16384)
        h2_bytes_free(b);
    h2_bytes_clear(b);
}

/* Resets the per-stream state of l for stream sid. */
static void h2_lane_reset(struct h2_lane *l, int32_t sid)
{
    l->sid = sid;
    h2_bytes_clear(&l->out);
    h2_bytes_clear(&l->in);
    h2_bytes_clear(&l->body);
    h2_bytes_clear(&l->tail);
    h2_bytes_clear(&l->method);
    h2_bytes_clear(&l->path);
    h2_bytes_clear(&l->authority);
    h2_bytes_clear(&l->cookie);
    h2_bytes_clear(&l->fields);
    h2_bytes_shrink(&l->trailers);
    l->trailers_over = 0;
    l->resp_left = l->hdr_total = 0;
    l->unconsumed = 0;
    l->stall_since = 0;
    l->resp_kind = HTTP_BODY_NONE;
    l->has_cl = l->req_chunked = l->req_done = l->head_sent = l->resp_done = 0;
    l->deferred = l->is_head = 0;
    l->reusable = 1;
}

/* Wakes the session for what it waited on that the lane now allows. */
static void h2_lane_kick(struct h2_lane *l)
{
    if (!l->session)
        return;
    int ev = 0;
    if (l->sess_rd_wait && h2_bytes_size(&l->out) > 0)
        ev |= EV_READ;
    if (l->sess_wr_wait && h2_bytes_size(&l->in) < H2_LANE_HWM)
        ev |= EV_WRITE;
    if (!ev)
        return;
    if (ev & EV_READ)
        l->sess_rd_wait = 0;
    if (ev & EV_WRITE)
        l->sess_wr_wait = 0;
    proxy_lane_wake(l->session, ev);
}

/* ---- the session's side: a struct sio over the lane's buffers ------------ */

/* Tells the lane (on this loop turn) that its session wrote, read or ended. */
static void h2_lane_notify(struct h2_lane *l, int events)
{
    if (!l->closing)
        ev_feed_event(h2_lane_loop(l), &l->io, events);
}

static ssize_t h2_lane_sio_read(struct sio *s, void *buf, size_t len)
{
    struct h2_lane *l = s->impl;
    if (!l)
        return 0; /* the lane is gone: the client went away */
    size_t n = h2_bytes_size(&l->out);
    if (n == 0) {
        l->sess_rd_wait = 1;
        return -EAGAIN;
    }
    if (n > len)
        n = len;
    memcpy(buf, h2_bytes_data(&l->out), n);
    h2_bytes_take(&l->out, n);
    if (h2_bytes_size(&l->out) == 0)
        l->sess_rd_wait = 1; /* a short read tells the session the stream is drained */
    if (l->unconsumed && h2_bytes_size(&l->out) < H2_LANE_HWM)
        h2_lane_notify(l, EV_WRITE); /* the request's window may open */
    return (ssize_t)n;
}

static ssize_t h2_lane_sio_writev(struct sio *s, const struct iovec *iov, int iovcnt)
{
    struct h2_lane *l = s->impl;
    if (!l || l->peer_eof)
        return -EPIPE;
    size_t room = H2_LANE_HWM > h2_bytes_size(&l->in) ? H2_LANE_HWM - h2_bytes_size(&l->in) : 0;
    size_t done = 0;
    for (int i = 0; i < iovcnt && room > 0; i++) {
        size_t n = iov[i].iov_len < room ? iov[i].iov_len : room;
        if (h2_bytes_add(&l->in, iov[i].iov_base, n))
            return done ? (ssize_t)done : -ENOMEM;
        done += n;
        room -= n;
    }
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (done < want)
        l->sess_wr_wait = 1; /* a short write tells the session the stream is full */
    if (done == 0)
        return want ? -EAGAIN : 0;
    h2_lane_notify(l, EV_READ);
    return (ssize_t)done;
}

static int h2_lane_sio_shutdown(struct sio *s)
{
    struct h2_lane *l = s->impl;
    if (l && !l->peer_eof) {
        l->peer_eof = 1;
        h2_lane_notify(l, EV_READ);
    }
    return 0;
}

static void h2_lane_sio_close(struct sio *s)
{
    struct h2_lane *l = s->impl;
    if (l) {
        l->session = NULL;
        l->sess_rd_wait = l->sess_wr_wait = 0;
        if (!l->peer_eof) {
            l->peer_eof = 1;
            h2_lane_notify(l, EV_READ);
        }
    }
    s->impl = NULL;
}

static const struct sio_ops h2_lane_sio_ops = {
    .read = h2_lane_sio_read,
    .writev = h2_lane_sio_writev,
    .shutdown = h2_lane_sio_shutdown,
    .close = h2_lane_sio_close,
};

void h2_lane_sio_init(struct h2_lane *l, struct sio *s)
{
    *s = (struct sio){ .ops = &h2_lane_sio_ops, .impl = l, .fd = -1, .rd_want = SIO_WANT_READ,
                       .wr_want = SIO_WANT_WRITE };
}

static struct h2_lane *h2_lane_new(struct h2_conn *hc)
{
    struct h2_lane *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->hc = hc;
    ev_init(&l->io, h2_lane_io_cb);
    l->io.data = l;
    l->next = hc->lanes;
    if (hc->lanes)
        hc->lanes->prev = l;
    hc->lanes = l;
    hc->n_lanes++;
    struct sio s;
    h2_lane_sio_init(l, &s);
    if (proxy_start_lane(hc->wc, hc->snap, hc->lst, &s, hc->client_ip, tls_peer_subject(&hc->sio), &l->session) !=
        0) {
        l->session = NULL;
        h2_lane_close(l, 0);
        return NULL;
    }
    return l;
}

struct h2_lane *h2_lane_get(struct h2_conn *hc, int32_t sid)
{
    struct h2_lane *l;
    while ((l = hc->idle_lanes) != NULL) {
        hc->idle_lanes = l->idle_next;
        l->idle = 0;
        if (!l->eof && !l->peer_eof && l->session)
            break; /* else its session's end is on its way to close it */
    }
    if (!l && !(l = h2_lane_new(hc)))
        return NULL;
    h2_lane_reset(l, sid);
    hc->n_active++;
    return l;
}

/* Detaches l from its stream (the stream's data source looks it up). */
static void h2_lane_detach(struct h2_lane *l)
{
    struct h2_conn *hc = l->hc;
    if (l->sid == 0)
        return;
    nghttp2_session_set_stream_user_data(hc->ng, l->sid, NULL);
    l->sid = 0;
    if (--hc->n_active == 0 && h2_lane_loop(l))
        hc->idle_since = ev_now(h2_lane_loop(l));
}

void h2_lane_close(struct h2_lane *l, int rst)
{
    struct h2_conn *hc = l->hc;
    if (l->sid && rst)
        nghttp2_submit_rst_stream(hc->ng, NGHTTP2_FLAG_NONE, l->sid, NGHTTP2_INTERNAL_ERROR);
    if (l->unconsumed)
        nghttp2_session_consume_connection(hc->ng, l->unconsumed);
    h2_lane_detach(l);
    l->closing = 1;
    if (h2_lane_loop(l)) {
        if (l->session)
            proxy_lane_end(l->session); /* now: the worker may stop once hc is gone */
        ev_io_stop(h2_lane_loop(l), &l->io); /* drops an event the session fed */
    } else if (l->session) {
        /* the worker's loop ended: its cleanup frees the session later,
         * which must then not reach this lane */
        proxy_lane_forget(l->session);
    }
    l->session = NULL;
    for (struct h2_lane **p = &hc->idle_lanes; l->idle && *p; p = &(*p)->idle_next) {
        if (*p == l) {
            *p = l->idle_next;
            break;
        }
    }
    if (l->prev)
        l->prev->next = l->next;
    else
        hc->lanes = l->next;
    if (l->next)
        l->next->prev = l->prev;
    hc->n_lanes--;
    h2_bytes_free(&l->out);
    h2_bytes_free(&l->in);
    h2_bytes_free(&l->body);
    h2_bytes_free(&l->tail);
    h2_bytes_free(&l->method);
    h2_bytes_free(&l->path);
    h2_bytes_free(&l->authority);
    h2_bytes_free(&l->cookie);
    h2_bytes_free(&l->fields);
    h2_bytes_free(&l->trailers);
    free(l);
}

void h2_lane_stream_closed(struct h2_lane *l, uint32_t error_code)
{
    struct h2_conn *hc = l->hc;
    int keep = error_code == 0 && l->req_done && l->resp_done && l->reusable && !l->eof &&
               h2_bytes_size(&l->in) == 0 && h2_bytes_size(&l->out) == 0 && h2_bytes_size(&l->body) == 0 &&
               hc->n_lanes <= hc->cfg->max_concurrent_streams && !hc->draining;
    if (!keep) {
        h2_lane_close(l, 0);
        return;
    }
    if (l->unconsumed) {
        nghttp2_session_consume_connection(hc->ng, l->unconsumed);
        l->unconsumed = 0;
    }
    h2_lane_detach(l);
    h2_bytes_shrink(&l->out); /* idle lanes keep small buffers only */
    h2_bytes_shrink(&l->in);
    h2_bytes_shrink(&l->body);
    h2_bytes_shrink(&l->tail);
    l->idle_next = hc->idle_lanes;
    hc->idle_lanes = l;
    l->idle = 1;
}

/* ---- request: HTTP/2 -> HTTP/1.1 ----------------------------------------- */

static int h2_slice_is(const uint8_t *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Fields an HTTP/1.1 hop would misread, or that the head sets itself. */
static int h2_request_field_dropped(const uint8_t *name, size_t n)
{
    static const char *const dropped[] = { "host", "te", "expect", "connection", "keep-alive",
                                           "proxy-connection", "transfer-encoding", "upgrade",
                                           "http2-settings" };
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        if (h2_slice_is(name, n, dropped[i]))
            return 1;
    return 0;
}

static int h2_has_ctl(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == 0)
            return 1;
    return 0;
}

/* Adds "name: value\r\n" to the request head's fields. */
static int h2_lane_field(struct h2_lane *l, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (h2_bytes_add(&l->fields, name, nlen) || h2_bytes_add(&l->fields, ": ", 2) ||
        h2_bytes_add(&l->fields, value, vlen) || h2_bytes_add(&l->fields, "\r\n", 2))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

int h2_lane_header(struct h2_lane *l, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (h2_has_ctl(name, nlen) || h2_has_ctl(value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nlen > 0 && name[0] == ':') {
        struct h2_bytes *to = h2_slice_is(name, nlen, ":method")      ? &l->method
                              : h2_slice_is(name, nlen, ":path")      ? &l->path
                              : h2_slice_is(name, nlen, ":authority") ? &l->authority
                                                                      : NULL;
        if (!to)
            return 0; /* :scheme: the listener says it */
        h2_bytes_clear(to);
        return h2_bytes_add(to, value, vlen) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (h2_slice_is(name, nlen, "host")) {
        if (h2_bytes_size(&l->authority) == 0 && h2_bytes_add(&l->authority, value, vlen) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (h2_slice_is(name, nlen, "cookie")) { /* RFC 9113 8.2.3: joined with "; " */
        if ((h2_bytes_size(&l->cookie) > 0 && h2_bytes_add(&l->cookie, "; ", 2) != 0) ||
            h2_bytes_add(&l->cookie, value, vlen) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (h2_slice_is(name, nlen, "te") && h2_slice_is(value, vlen, "trailers"))
        return h2_lane_field(l, name, nlen, value, vlen); /* gRPC needs it (the only TE h2 allows) */
    if (h2_request_field_dropped(name, nlen))
        return 0;
    if (h2_slice_is(name, nlen, "content-length"))
        l->has_cl = 1;
    return h2_lane_field(l, name, nlen, value, vlen);
}

int h2_lane_trailer(struct h2_lane *l, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (h2_has_ctl(name, nlen) || h2_has_ctl(value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (l->trailers_over || nlen == 0 || name[0] == ':' || http_trailer_forbidden((const char *)name, nlen))
        return 0;
    if (h2_bytes_size(&l->trailers) + nlen + vlen + 4 > HTTP_TRAILERS_MAX) {
        log_info("http2: stream %d of %s: request trailers over %d bytes: the request ends without them",
                 l->sid, l->hc->client_ip, HTTP_TRAILERS_MAX);
        h2_bytes_clear(&l->trailers);
        l->trailers_over = 1;
        return 0;
    }
    if (h2_bytes_add(&l->trailers, name, nlen) || h2_bytes_add(&l->trailers, ": ", 2) ||
        h2_bytes_add(&l->trailers, value, vlen) || h2_bytes_add(&l->trailers, "\r\n", 2))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* Offers what lane.out holds to the session; gives request bytes back to
 * the client's window once the lane has room. 0, or negative when the
 * lane broke. */
static int h2_lane_write(struct h2_lane *l)
{
    if (h2_bytes_size(&l->out) > 0 && !l->session)
        return -EPIPE;
    h2_lane_kick(l);
    if (l->unconsumed && l->sid && h2_bytes_size(&l->out) < H2_LANE_HWM) {
        nghttp2_session_consume(l->hc->ng, l->sid, l->unconsumed);
        l->unconsumed = 0;
    }
    return 0;
}

static int h2_method_has_body(const struct h2_bytes *m)
{
    size_t n = h2_bytes_size(m);
    const char *p = h2_bytes_data(m);
    return !((n == 3 && memcmp(p, "GET", 3) == 0) || (n == 4 && memcmp(p, "HEAD", 4) == 0) ||
             (n == 6 && memcmp(p, "DELETE", 6) == 0) || (n == 7 && memcmp(p, "OPTIONS", 7) == 0));
}

int h2_lane_request_head(struct h2_lane *l, int end_stream)
{
    struct h2_bytes *o = &l->out;
    if (h2_bytes_size(&l->method) == 0 || h2_bytes_size(&l->path) == 0 ||
        (h2_bytes_size(&l->method) == 7 && memcmp(h2_bytes_data(&l->method), "CONNECT", 7) == 0))
        return -EPROTO; /* CONNECT is not carried over lanes */
    l->is_head = h2_bytes_size(&l->method) == 4 && memcmp(h2_bytes_data(&l->method), "HEAD", 4) == 0;
    int rc = h2_bytes_add(o, h2_bytes_data(&l->method), h2_bytes_size(&l->method)) || h2_bytes_str(o, " ") ||
             h2_bytes_add(o, h2_bytes_data(&l->path), h2_bytes_size(&l->path)) ||
             h2_bytes_str(o, " HTTP/1.1\r\nhost: ") ||
             h2_bytes_add(o, h2_bytes_data(&l->authority), h2_bytes_size(&l->authority)) ||
             h2_bytes_str(o, "\r\n") || h2_bytes_add(o, h2_bytes_data(&l->fields), h2_bytes_size(&l->fields));
    if (!rc && h2_bytes_size(&l->cookie) > 0)
        rc = h2_bytes_str(o, "cookie: ") || h2_bytes_add(o, h2_bytes_data(&l->cookie), h2_bytes_size(&l->cookie)) ||
             h2_bytes_str(o, "\r\n");
    if (!rc && end_stream && !l->has_cl && h2_method_has_body(&l->method))
        rc = h2_bytes_str(o, "content-length: 0\r\n");
    if (!rc && !end_stream && !l->has_cl) {
        l->req_chunked = 1;
        rc = h2_bytes_str(o, "transfer-encoding: chunked\r\n");
    }
    if (rc || h2_bytes_str(o, "\r\n"))
        return -ENOMEM;
    l->req_done = end_stream != 0;
    if (h2_lane_write(l) != 0)
        return -EPIPE;
    return 0;
}

int h2_lane_request_data(struct h2_lane *l, const uint8_t *data, size_t len)
{
    l->unconsumed += len;
    if (len == 0)
        return 0;
    if (l->req_chunked) {
        char line[24];
        int n = snprintf(line, sizeof(line), "%zx\r\n", len);
        if (h2_bytes_add(&l->out, line, (size_t)n) || h2_bytes_add(&l->out, data, len) ||
            h2_bytes_add(&l->out, "\r\n", 2))
            return -ENOMEM;
    } else if (h2_bytes_add(&l->out, data, len)) {
        return -ENOMEM;
    }
    if (h2_lane_write(l) != 0)
        return -EPIPE;
    return 0;
}

int h2_lane_request_end(struct h2_lane *l)
{
    if (l->req_done)
        return 0;
    l->req_done = 1;
    /* the trailers a trailing HEADERS carried go in the last-chunk; a
     * request with a Content-Length has no place for them */
    if (l->req_chunked && (h2_bytes_str(&l->out, "0\r\n") ||
                           h2_bytes_add(&l->out, h2_bytes_data(&l->trailers), h2_bytes_size(&l->trailers)) ||
                           h2_bytes_str(&l->out, "\r\n")))
        return -ENOMEM;
    if (h2_lane_write(l) != 0)
        return -EPIPE;
    return 0;
}

/* ---- answer: HTTP/1.1 -> HTTP/2 ------------------------------------------ */

/* RFC 9113 8.2.2: connection-specific fields are not sent in HTTP/2. */
static int h2_answer_field_dropped(const struct http_msg *m, size_t i)
{
    static const char *const dropped[] = { "connection", "keep-alive", "proxy-connection",
                                           "transfer-encoding", "upgrade", "te" };
    struct http_slice name = m->headers[i].name;
    if (m->hop[i] == HTTP_HOP_REMOVED)
        return 1;
    if (http_slice_eq_nocase(name, "content-length"))
        return 0;
    if (m->hop[i])
        return 1;
    for (size_t k = 0; k < sizeof(dropped) / sizeof(dropped[0]); k++)
        if (http_slice_eq_nocase(name, dropped[k]))
            return 1;
    return 0;
}

static _Thread_local struct http_msg h2_resp_msg;
static _Thread_local nghttp2_nv h2_resp_nv[HTTP_MAX_HEADERS_HARD + 1];
static _Thread_local char h2_resp_names[HTTP_DEFAULT_MAX_HEADER_BYTES];

/* Submits the parsed answer head m for l's stream. */
static int h2_lane_submit_head(struct h2_lane *l, const struct http_msg *m)
{
    char status[4];
    size_t nv = 0, used = 0;
    unsigned st = (unsigned)m->status % 1000;
    status[0] = (char)('0' + st / 100);
    status[1] = (char)('0' + st / 10 % 10);
    status[2] = (char)('0' + st % 10);
    status[3] = 0;
    h2_resp_nv[nv++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE };
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http_header *h = &m->headers[i];
        if (h2_answer_field_dropped(m, i) || used + h->name.len > sizeof(h2_resp_names))
            continue;
        char *lower = h2_resp_names + used;
        for (size_t k = 0; k < h->name.len; k++) {
            char c = h->name.p[k];
            lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        used += h->name.len;
        h2_resp_nv[nv++] = (nghttp2_nv){ (uint8_t *)lower, (uint8_t *)h->value.p, h->name.len, h->value.len,
                                         NGHTTP2_NV_FLAG_NONE };
    }
    nghttp2_data_provider prd = { .source.ptr = l, .read_callback = h2_lane_data_cb };
    int rc = nghttp2_submit_response(l->hc->ng, l->sid, h2_resp_nv, nv, l->resp_done ? NULL : &prd);
    l->head_sent = 1;
    return rc == 0 ? 0 : -EPROTO;
}

/* Parses the answer head in lane.in (1xx heads are skipped). Returns 1
 * when submitted, 0 when more bytes are needed, negative on a bad head. */
static int h2_lane_parse_head(struct h2_lane *l)
{
    struct http_msg *m = &h2_resp_msg;
    for (;;) {
        http_msg_init(m);
        int n = http_parse_response(h2_bytes_data(&l->in), h2_bytes_size(&l->in), m, NULL,
                                    l->is_head ? HTTP_METHOD_HEAD : HTTP_METHOD_GET);
        if (n == HTTP_PARSE_PARTIAL)
            return h2_bytes_size(&l->in) >= H2_LANE_HWM ? -E2BIG : 0;
        if (n == HTTP_PARSE_ERROR)
            return -EPROTO;
        if (m->status < 200) {
            h2_bytes_take(&l->in, (size_t)n);
            continue;
        }
        l->resp_kind = (uint8_t)m->body_kind;
        l->reusable = m->keep_alive && m->body_kind != HTTP_BODY_UNTIL_CLOSE;
        l->resp_left = m->body_kind == HTTP_BODY_LENGTH ? m->content_length : 0;
        l->resp_done = m->body_kind == HTTP_BODY_NONE ||
                       (m->body_kind == HTTP_BODY_LENGTH && m->content_length == 0);
        if (m->body_kind == HTTP_BODY_CHUNKED)
            http_chunked_init(&l->chunk);
        int rc = h2_lane_submit_head(l, m); /* nghttp2 copies the fields */
        h2_bytes_take(&l->in, (size_t)n);
        return rc < 0 ? rc : 1;
    }
}

#define H2_TAIL_MAX 16384 /* trailers kept at most (beyond: not forwarded) */

static int h2_trailer_field_dropped(const char *name, size_t n)
{
    static const char *const dropped[] = { "connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                           "upgrade", "te", "content-length", "host", "trailer" };
    if (n == 0 || name[0] == ':' || http_trailer_forbidden(name, n))
        return 1;
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        if (strlen(dropped[i]) == n && memcmp(dropped[i], name, n) == 0)
            return 1;
    return 0;
}

size_t h2_trailer_fields(char *p, size_t n, nghttp2_nv *nv, size_t max)
{
    size_t count = 0, i = 0;
    int seen_last_chunk = 0;
    while (i < n && count < max) {
        char *line = p + i;
        char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + (nl ? 1 : 0);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0) {
            if (seen_last_chunk)
                break; /* the empty line ending the trailers */
            continue; /* the CRLF after the last data */
        }
        if (!seen_last_chunk) {
            seen_last_chunk = 1; /* "0[;ext]" */
            continue;
        }
        char *colon = memchr(line, ':', len);
        if (!colon)
            continue;
        size_t nlen = (size_t)(colon - line);
        for (size_t k = 0; k < nlen; k++)
            line[k] = (char)(line[k] >= 'A' && line[k] <= 'Z' ? line[k] + 32 : line[k]);
        char *v = colon + 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (h2_trailer_field_dropped(line, nlen))
            continue;
        nv[count++] = (nghttp2_nv){ (uint8_t *)line, (uint8_t *)v, nlen, (size_t)(end - v), NGHTTP2_NV_FLAG_NONE };
    }
    return count;
}

/* Moves body bytes from lane.in to lane.body, up to H2_LANE_HWM. */
static int h2_lane_decode_body(struct h2_lane *l)
{
    while (!l->resp_done && h2_bytes_size(&l->in) > 0 && h2_bytes_size(&l->body) < H2_LANE_HWM) {
        const char *p = h2_bytes_data(&l->in);
        size_t n = h2_bytes_size(&l->in);
        if (l->resp_kind == HTTP_BODY_UNTIL_CLOSE || l->resp_kind == HTTP_BODY_LENGTH) {
            if (l->resp_kind == HTTP_BODY_LENGTH && n > l->resp_left)
                n = (size_t)l->resp_left;
            if (h2_bytes_add(&l->body, p, n))
                return -ENOMEM;
            h2_bytes_take(&l->in, n);
            if (l->resp_kind == HTTP_BODY_LENGTH && (l->resp_left -= n) == 0)
                l->resp_done = 1;
            continue;
        }
        size_t used, off, len;
        enum http_chunk_result r = http_chunked_next(&l->chunk, p, n, &used, &off, &len);
        if (r == HTTP_CHUNK_ERROR)
            return -EPROTO;
        if (r == HTTP_CHUNK_DATA && h2_bytes_add(&l->body, p + off, len))
            return -ENOMEM;
        if (r == HTTP_CHUNK_DATA)
            h2_bytes_clear(&l->tail);
        else if (h2_bytes_size(&l->tail) + used <= H2_TAIL_MAX && h2_bytes_add(&l->tail, p, used))
            return -ENOMEM;
        h2_bytes_take(&l->in, used);
        if (r == HTTP_CHUNK_DONE)
            l->resp_done = 1;
    }
    if (l->resp_done && h2_bytes_size(&l->in) > 0)
        l->reusable = 0; /* bytes after the answer: the lane is out of step */
    return 0;
}

int h2_lane_pending(const struct h2_lane *l)
{
    return l->head_sent && (h2_bytes_size(&l->body) > 0 || (!l->resp_done && h2_bytes_size(&l->in) > 0));
}

int h2_lane_process(struct h2_lane *l)
{
    if (!l->head_sent) {
        int rc = h2_lane_parse_head(l);
        if (rc <= 0)
            return rc;
    }
    if (l->eof && !l->resp_done && l->resp_kind == HTTP_BODY_UNTIL_CLOSE && h2_bytes_size(&l->in) == 0)
        l->resp_done = 1;
    int rc = h2_lane_decode_body(l);
    if (rc < 0)
        return rc;
    if (l->deferred && (h2_bytes_size(&l->body) > 0 || l->resp_done)) {
        l->deferred = 0;
        nghttp2_session_resume_data(l->hc->ng, l->sid);
    }
    return 0;
}

ssize_t h2_lane_data_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *src, void *user)
{
    (void)src;
    (void)user;
    struct h2_lane *l = nghttp2_session_get_stream_user_data(ng, sid);
    if (!l)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (h2_bytes_size(&l->body) == 0 && h2_lane_decode_body(l) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = h2_bytes_size(&l->body);
    if (n > length)
        n = length;
    memcpy(buf, h2_bytes_data(&l->body), n);
    h2_bytes_take(&l->body, n);
    if (h2_bytes_size(&l->body) == 0 && l->resp_done) { /* bytes after it: not reused */
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        size_t nt = l->resp_kind == HTTP_BODY_CHUNKED && h2_bytes_size(&l->tail) > 0
                        ? h2_trailer_fields(l->tail.p + l->tail.off, h2_bytes_size(&l->tail), h2_resp_nv,
                                            HTTP_MAX_HEADERS_HARD)
                        : 0;
        if (nt > 0 && nghttp2_submit_trailer(ng, sid, h2_resp_nv, nt) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    } else if (n == 0) {
        l->deferred = 1;
        h2_lane_kick(l);
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > 0 && l->hc->wu_credit < H2_WU_CREDIT_MAX)
        l->hc->wu_credit += 2; /* the client may answer this DATA frame with a stream and a connection update */
    h2_lane_kick(l);
    return (ssize_t)n;
}

/* A lane event: the proxy session wrote or took bytes, or went away. */
static void h2_lane_event(struct h2_lane *l, int revents)
{
    int rc = 0;
    if (revents & EV_WRITE)
        rc = h2_lane_write(l);
    if (l->peer_eof) /* what it wrote is all in lane.in already */
        l->eof = 1;
    if (l->sid == 0) { /* idle: anything but silence ends it */
        if (rc < 0 || l->eof || h2_bytes_size(&l->in) > 0)
            h2_lane_close(l, 0);
        return;
    }
    if (rc == 0)
        rc = h2_lane_process(l);
    if (rc == 0 && l->eof && !l->resp_done)
        rc = -ECONNRESET;
    if (rc < 0) {
        log_debug("http2: stream %d of %s: the proxy session ended the exchange (%s)", l->sid,
                  l->hc->client_ip, strerror(-rc));
        h2_lane_close(l, 1);
        return;
    }
    h2_lane_kick(l);
}

static void h2_lane_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct h2_lane *l = w->data;
    struct h2_conn *hc = l->hc;
    h2_lane_event(l, revents);
    h2_conn_schedule(hc);
}

/* proxy: one client connection and the upstream connection serving its
 * current request, driven as one explicit state machine.
 *
 *   client fd --read--> in --parse head / decode body--> up_out --write--> backend
 *   client fd <-write-- out <--re-serialise / re-frame--  up_in  <--read-- backend
 *
 *   CS_HEAD ----head parsed, routed----> CS_PROXY --response done--> CS_HEAD
 *      |  \--target needs the body--> CS_BODY --body read, target answers--^
 *      |                                     |  \--101 Switching----> CS_TUNNEL
 *      +--error / not keep-alive-------------+------------------------> CS_CLOSING
 *
 * Every event callback only records readiness and calls client_pump(),
 * which moves bytes as far as buffers and readiness allow, then sets the
 * watchers to what the session still waits for. A session is freed in one
 * place (client_free), at the end of client_pump, never from deep inside a
 * step. Buffers are held only while they hold bytes, so an idle keep-alive
 * connection costs the client struct alone.
 *
 * What reaches a backend is always re-serialised (http_write) with framing
 * chosen here: a request body is forwarded with the client's Content-Length
 * or re-chunked after decoding; nothing is relayed byte for byte until a
 * 101 turns the connection into a tunnel. */
#include "http/proxy.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/net.h"
#include "core/sio.h"
#include "core/units.h"
#include "upstream/pool.h"
#include "upstream/upstream_metrics.h"
#include "http/http_write.h"
#include "http/http_parser.h"
#include "http/grpc.h"
#include "http/http_trailers.h"
#include "http/http_edit.h"
#include "http/http_metrics.h"
#include "http/proxy_internal.h"
#include "http/retry.h"
#include "http/router.h"
#include "http/target.h"
#include "http2/h2_server.h"
#include "http2/h2_up.h"
#include "http/txn.h"
#include "tls/tls.h"

enum client_state { CS_HEAD, CS_WAIT, CS_PROXY, CS_TUNNEL, CS_CLOSING, CS_BODY };
enum up_state { US_NONE, US_CONNECTING, US_ACTIVE };
enum resp_state { RS_HEAD, RS_BODY, RS_DONE };
enum timer_phase {
    TP_NONE, TP_IDLE, TP_HEADER, TP_BODY, TP_CONNECT, TP_RESPONSE, TP_LINGER, TP_BACKOFF, TP_QUEUE,
    TP_STEP, TP_SOURCE
};
enum up_failure { UF_CONNECT, UF_RESET, UF_TIMEOUT_CONNECT };

#define PROXY_MAX_ATTEMPTS 3
#define PROXY_LINGER_MS 2000
#define PROXY_QUEUE_POLL_MS 5 /* a queued request looks for a free endpoint this often */
#define PROXY_CHUNK_OVERHEAD 24 /* hex size line + CRLF around a chunk */

struct client {
    ev_io io;
    ev_io up_io;
    ev_timer timer;
    struct sio cio;                /* the client's stream (core/sio.h: plain or TLS) */
    struct sio uio;                /* the upstream's, closed (fd -1) when none */
    struct wctx *wc;
    struct snapshot *snap;
    const struct cfg_listener *lst;
    struct wlistener *wl;          /* accepted there: server_conn_close(); NULL on a lane */
    struct client *prev, *next;
    struct buf in, out, up_in, up_out;
    struct buf xin;                /* decoded body bytes waiting for the transform */
    uint8_t state, up_state, resp_state, timer_phase;
    uint8_t c_readable, c_writable, u_readable, u_writable; /* readiness seen, not yet drained */
    unsigned c_eof : 1, u_eof : 1, closing : 1, keep_alive : 1;
    unsigned req_done : 1, resp_started : 1, reused : 1, up_out_recycled : 1;
    unsigned upgrade : 1, resp_chunked_out : 1;
    unsigned src_on : 1;        /* the answer's body comes from a txn_body_source */
    /* a body transform (txn_set_body_xform) between the decoded body and out */
    unsigned x_on : 1, x_in_done : 1, x_pending : 1, x_dirty : 1;
    unsigned up_reusable : 1, linger : 1;
    unsigned c_registered : 1;  /* the client fd is known to the loop */
    unsigned logged : 1;        /* the access log line of this request is written */
    unsigned up_registered : 1; /* the upstream fd is known to the loop */
    unsigned lane : 1;          /* an HTTP/2 stream's lane (http2/): not a counted connection */
    unsigned h2_checked : 1;    /* the first bytes were looked at for HTTP/2 */
    uint8_t version_minor;
    uint8_t resp_body_kind;
    uint32_t scan_pos, up_scan_pos;
    uint64_t resp_left, bytes_out;
    struct http_chunked chunk, resp_chunk;
    struct http_trailers req_trl, resp_trl; /* trailer sections on their way (http_trailers.h) */
    char client_ip[48];
    const char *static_body;   /* an answer weir makes: body bytes still to send */
    size_t static_left;
    struct txn *txn;           /* the request in progress: from the worker's free list while
                                  bytes of a request are here, NULL on an idle connection */
    char *log_line; /* method and target for the access log, malloc'd only when logging */
    void **lane_owner;  /* a lane's: the h2 side's handle on it, cleared when the session ends */
    const char *lane_subject; /* a lane's: its h2 connection's verified client certificate, or NULL */
};

/* The HTTP proxy's state on one worker (the server keeps it in wc->proto). */
struct http_worker {
    struct pool upstreams;
    struct http_msg msg;           /* scratch: one head is parsed at a time */
    struct client *clients;        /* every open client connection */
    struct client *free_clients;
    unsigned n_free_clients;
    unsigned n_queued;             /* requests waiting for a free endpoint (max_pending) */
    struct txn_head *free_heads;   /* kept request heads (txn.h) */
    unsigned n_free_heads;
    struct txn *free_txns;
    unsigned n_free_txns;
    void *h2;                      /* the HTTP/2 connections' state (http2/h2_server.c) */
    void *h2up;                    /* HTTP/2 to upstreams (http2/h2_up.c) */
};

static inline struct http_worker *proxy_hw(const struct wctx *wc)
{
    return wc->proto[CFG_PROTOCOL_HTTP];
}

static void client_pump(struct client *c);
static uint64_t proxy_now_ms(void);

/* ---- small helpers --------------------------------------------------- */

static struct ev_loop *client_loop(const struct client *c)
{
    return c->wc->worker.loop;
}

/* Bytes that can be appended at the end of b as it is. */
static size_t client_space(const struct client *c, const struct buf *b)
{
    return b->data ? c->wc->bufs.block_size - b->wpos : c->wc->bufs.block_size;
}

/* Bytes a read into b can take (sock_read compacts first when needed). */
static size_t client_room(const struct client *c, const struct buf *b)
{
    return b->data ? c->wc->bufs.block_size - buf_len(b) : c->wc->bufs.block_size;
}

/* Sets what w waits for. `known` says the fd is already registered with
 * the loop (an fd this worker has been watching and never closed since):
 * libev is then told only the new event mask, which spares the epoll_ctl
 * it would otherwise issue (and see fail with EEXIST) for an fd it must
 * assume is new. */
static void io_update(struct ev_loop *loop, ev_io *w, int fd, int events, int known)
{
    if (ev_is_active(w) && w->fd == fd && (w->events & (EV_READ | EV_WRITE)) == events)
        return;
    if (ev_is_active(w))
        ev_io_stop(loop, w);
    if (!events)
        return;
    if (known) {
        w->fd = fd;
        w->events = events; /* without EV__IOFDSET */
    } else {
        ev_io_set(w, fd, events);
    }
    ev_io_start(loop, w);
}

static void timer_set(struct client *c, int phase, uint64_t ms)
{
    c->timer_phase = (uint8_t)phase;
    if (ms == 0) {
        ev_timer_stop(client_loop(c), &c->timer);
        return;
    }
    c->timer.repeat = (double)ms / 1000.0;
    ev_timer_again(client_loop(c), &c->timer);
}

/* Reads into b. Returns bytes read (> 0), 0 on EOF, -EAGAIN when nothing
 * is there, or another negative errno. Clears *readable when drained. */
static ssize_t sock_read(struct client *c, struct sio *s, struct buf *b, uint8_t *readable_flag)
{
    if (buf_acquire(&c->wc->bufs, b) != 0)
        return -ENOMEM;
    if (b->rpos > 0 && c->wc->bufs.block_size - b->wpos < c->wc->bufs.block_size / 4)
        buf_compact(b);
    size_t space = c->wc->bufs.block_size - b->wpos;
    if (space == 0)
        return -ENOBUFS;
    ssize_t n = sio_read(s, b->data + b->wpos, space);
    if (n < 0) {
        buf_release_if_empty(&c->wc->bufs, b);
        if (n == -EAGAIN)
            *readable_flag = 0;
        return n;
    }
    if ((size_t)n < space)
        *readable_flag = 0;
    b->wpos += (uint32_t)n;
    if (n == 0)
        buf_release_if_empty(&c->wc->bufs, b);
    return n;
}

/* Writes what b holds. Returns bytes written (>= 0) or a negative errno;
 * -EAGAIN clears *writable. Does not release b. */
static ssize_t sock_write(struct sio *s, struct buf *b, uint8_t *writable_flag)
{
    size_t len = buf_len(b);
    if (len == 0)
        return 0;
    ssize_t n = sio_write(s, buf_rptr(b), len);
    if (n < 0) {
        if (n == -EAGAIN)
            *writable_flag = 0;
        return n;
    }
    if ((size_t)n < len)
        *writable_flag = 0;
    b->rpos += (uint32_t)n;
    return n;
}

/* Readiness the loop reported on s's fd, as the session's flags: a
 * direction is ready when the event its last attempt waited for came
 * (a TLS read may wait for writability). */
static void proxy_note_ready(const struct sio *s, int revents, uint8_t *readable, uint8_t *writable)
{
    if (revents & s->rd_want)
        *readable = 1;
    if (revents & s->wr_want)
        *writable = 1;
}

/* The pool tag of the request's upstream connections: NULL for plain. */
static const void *proxy_up_tag(const struct client *c)
{
    if (c->txn->cl->cfg->protocol != CFG_UP_HTTP1)
        return h2up_pool_tag(c->txn->cl->cfg->tls);
    return tls_client_tag(c->txn->cl->cfg->tls);
}

/* A new upstream connection for the request: a socket connecting to its
 * endpoint, or for an HTTP/2 cluster a lane to one of the worker's HTTP/2
 * connections (http2/h2_up.h). Returns the fd or a negative errno. */
static int proxy_up_open(struct client *c)
{
    const struct endpoint *ep = c->txn->ep;
    const struct cfg_cluster *cc = c->txn->cl->cfg;
    if (cc->protocol == CFG_UP_HTTP1)
        return net_connect((const struct sockaddr *)&ep->addr, ep->addrlen);
    return h2up_lane_open(&proxy_hw(c->wc)->h2up, c->wc, (const struct sockaddr *)&ep->addr, ep->addrlen,
                          cc->tls, cc->h2_connections, cc->pool_idle_timeout_ms, cc->connect_timeout_ms);
}

/* Makes c->uio the stream over a new upstream connection fd (owned by
 * c->uio afterwards, also on failure). Returns 0 or a negative errno. */
static int proxy_up_wrap(struct client *c, int fd)
{
    const struct endpoint *ep = c->txn->ep;
    if (c->txn->cl->cfg->tls && c->txn->cl->cfg->protocol == CFG_UP_HTTP1)
        return tls_connect_sio(c->txn->cl->cfg->tls, fd, (const struct sockaddr *)&ep->addr, ep->addrlen,
                               NULL, &c->uio);
    sio_init_plain(&c->uio, fd);
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    return hash_mix64(*s);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void endpoint_release(struct client *c)
{
    if (!c->txn)
        return;
    if (c->txn->ep && c->txn->probe) {
        /* a probe that ended without a verdict frees its slot */
        const struct cfg_breaker *cb = &c->txn->ep->cluster->cfg->breaker;
        breaker_cancel_probe(cb->per_cluster ? &c->txn->ep->cluster->breaker : &c->txn->ep->breaker);
        c->txn->probe = 0;
    }
    if (c->txn->ep) {
        atomic_fetch_sub_explicit(&c->txn->ep->active, 1, memory_order_relaxed);
        c->txn->ep = NULL;
    }
}

/* The request is over (answered or abandoned): give back what it held in
 * its cluster's shared counts. Safe to call more than once. */
static void proxy_request_end(struct client *c)
{
    if (!c->txn)
        return;
    if (c->txn->queued) {
        c->txn->queued = 0;
        proxy_hw(c->wc)->n_queued--;
    }
    if (c->txn->cl && c->txn->probe && c->txn->cl->cfg->breaker.per_cluster) {
        breaker_cancel_probe(&c->txn->cl->breaker);
        c->txn->probe = 0;
    }
    if (c->txn->cl && c->txn->counted)
        atomic_fetch_sub_explicit(&c->txn->cl->active_requests, 1, memory_order_relaxed);
    if (c->txn->cl && c->txn->retry_counted)
        atomic_fetch_sub_explicit(&c->txn->cl->active_retries, 1, memory_order_relaxed);
    c->txn->counted = c->txn->retry_counted = 0;
}

/* Drops the upstream connection: back to the pool when it is clean and
 * reusable, else closed. */
static void upstream_detach(struct client *c, int reusable)
{
    struct wctx *wc = c->wc;
    ev_io_stop(client_loop(c), &c->up_io);
    if (sio_is_open(&c->uio) && reusable && c->txn->cl && !wc->draining && buf_len(&c->up_in) == 0 &&
        !c->u_eof)
        (void)pool_put_sio(&proxy_hw(wc)->upstreams, (struct sockaddr *)&c->txn->ep->addr,
                           c->txn->ep->addrlen, proxy_up_tag(c), &c->uio, c->txn->cl->cfg->pool_max_idle,
                           c->txn->cl->cfg->pool_idle_timeout_ms);
    sio_close(&c->uio); /* a no-op when the pool took it */
    c->up_state = US_NONE;
    c->u_eof = 0;
    c->u_readable = c->u_writable = 0;
    buf_release(&wc->bufs, &c->up_in);
    buf_release(&wc->bufs, &c->up_out);
}

#define PROXY_MAX_FREE_TXNS 1024

/* Gives the session a transaction for the request whose bytes arrived.
 * Returns 0 or -ENOMEM. */
static int proxy_txn_attach(struct client *c)
{
    struct http_worker *hw = proxy_hw(c->wc);
    struct txn *t = hw->free_txns;
    if (t) {
        hw->free_txns = t->free_next;
        hw->n_free_txns--;
    } else if (!(t = malloc(sizeof(*t)))) {
        return -ENOMEM;
    }
    memset(t, 0, sizeof(*t));
    t->session = c;
    t->wc = c->wc;
    c->txn = t;
    return 0;
}

/* Ends the session's transaction, if any, and keeps it for the next one. */
static void proxy_txn_detach(struct client *c)
{
    struct txn *t = c->txn;
    if (!t)
        return;
    txn_end(t);
    c->txn = NULL;
    struct http_worker *hw = proxy_hw(c->wc);
    if (hw->n_free_txns >= PROXY_MAX_FREE_TXNS) {
        free(t);
        return;
    }
    t->free_next = hw->free_txns;
    hw->free_txns = t;
    hw->n_free_txns++;
}

static void client_free(struct client *c)
{
    struct wctx *wc = c->wc;
    struct wlistener *wl = c->wl;
    int lane = c->lane;
    if (c->lane_owner)
        *c->lane_owner = NULL;
    upstream_detach(c, 0);
    endpoint_release(c);
    proxy_request_end(c);
    ev_io_stop(client_loop(c), &c->io);
    ev_timer_stop(client_loop(c), &c->timer);
    sio_close(&c->cio);
    buf_release(&wc->bufs, &c->in);
    buf_release(&wc->bufs, &c->out);
    buf_release(&wc->bufs, &c->xin);
    http_trailers_clear(&c->req_trl);
    http_trailers_clear(&c->resp_trl);
    free(c->log_line);
    c->log_line = NULL;
    proxy_txn_detach(c);
    if (c->snap)
        snapshot_unref(c->snap);
    if (c->prev)
        c->prev->next = c->next;
    else
        proxy_hw(wc)->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (proxy_hw(wc)->n_free_clients < 1024) {
        c->next = proxy_hw(wc)->free_clients;
        proxy_hw(wc)->free_clients = c;
        proxy_hw(wc)->n_free_clients++;
    } else {
        free(c);
    }
    if (!lane) /* c may be freed by now */
        server_conn_close(wc, wl);
}

/* Sends what is left in out, then closes. Unread request bytes are drained
 * for a moment after our FIN so the client is not sent a reset that could
 * destroy the response before it reads it (lingering close). */
static void client_close_after_write(struct client *c)
{
    c->state = CS_CLOSING;
    c->keep_alive = 0;
    upstream_detach(c, 0);
    endpoint_release(c);
    timer_set(c, TP_LINGER, PROXY_LINGER_MS);
}

/* ---- access log ---------------------------------------------------------- */

/* Counts the answered request in the metrics and writes its access log
 * line: once per request, whoever answered it. */
static void client_log_access(struct client *c)
{
    if (c->txn->status == 0 || c->logged || !c->snap)
        return;
    c->logged = 1;
    double spent = ev_time() - c->txn->t_start; /* the loop's cached time would say 0 */
    http_metrics_request(c->snap, c->lst, c->txn->route, c->txn->status,
                         spent > 0 ? (uint64_t)(spent * 1e9) : 0);
    int fd = c->snap->access_fd;
    if (fd < 0)
        return;
    char line[1024];
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    ev_tstamp t_now = ev_now(client_loop(c));
    double total_ms = (t_now - c->txn->t_start) * 1000.0;
    double up_ms = c->txn->t_up_first > 0 ? (c->txn->t_up_first - c->txn->t_up_start) * 1000.0 : -1;
    int n = snprintf(line, sizeof(line), "%s - - [%s] \"%s\" %u %" PRIu64 " %.3f %s %.3f %s\n",
                     c->client_ip, when, c->log_line ? c->log_line : "-", c->txn->status, c->bytes_out,
                     total_ms, c->txn->ep || c->txn->failed_ep ? (c->txn->ep ? c->txn->ep : c->txn->failed_ep)->name : "-",
                     up_ms, c->txn->request_id[0] ? c->txn->request_id : "-");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w;
    do {
        w = write(fd, line, (size_t)n);
    } while (w == -1 && errno == EINTR);
}

/* ---- error responses ----------------------------------------------------- */

static void proxy_answer(struct client *c);
static void proxy_source_head(struct http_msg *resp, const struct txn_answer *a);
static void proxy_source_framing(struct client *c, const struct http_msg *resp,
                                 struct http_resp_info *ri);
static void proxy_source_start(struct client *c, const struct http_resp_info *ri);
static int proxy_move_source_body(struct client *c);
static int proxy_xform_framing(struct client *c, struct http_msg *resp, int has_body,
                               struct http_resp_info *ri);
static int proxy_move_static_body(struct client *c);

/* The head of an answer weir makes (proxy_answer, errors): one per worker,
 * not the worker's parse scratch, where the request head may still be. */
static _Thread_local struct http_msg proxy_answer_msg;

/* Writes weir's error answer through the route's response steps, as a
 * backend's answer would go (cors and headers fields, compression): the
 * body lives in the arena. Updates *keep_open. Returns 0, or negative when
 * it could not (no route, arena or room): the caller writes it plain. */
static int proxy_error_through_steps(struct client *c, int status, int *keep_open)
{
    static const struct http_slice ct = { "Content-Type", 12 }, text = { "text/plain", 10 };
    static const struct http_slice ra = { "Retry-After", 11 }, one = { "1", 1 };
    struct txn *t = c->txn;
    if (t->route == NULL)
        return -ENOENT;
    char *body = txn_alloc(t, 64);
    if (body == NULL || buf_acquire(&c->wc->bufs, &c->out) != 0 ||
        client_space(c, &c->out) < 2048)
        return -ENOSPC;
    size_t body_len = (size_t)snprintf(body, 64, "%d %s\n", status, http_status_reason(status));
    struct http_msg *resp = &proxy_answer_msg;
    http_msg_init(resp);
    resp->status = status;
    resp->version_minor = 1;
    resp->headers[resp->n_headers++] = (struct http_header){ ct, text };
    if (status == 503)
        resp->headers[resp->n_headers++] = (struct http_header){ ra, one };
    resp->body_kind = HTTP_BODY_LENGTH;
    resp->content_length = body_len;
    resp->has_content_length = 1;
    /* a transform set for a backend answer that is not sent after all */
    txn_drop_body_xform(t);
    c->x_on = c->x_in_done = c->x_pending = c->x_dirty = 0;
    txn_response_head(t, resp);
    struct http_resp_info ri = { .body_kind = HTTP_BODY_LENGTH, .content_length = body_len,
                                 .keep_alive = *keep_open, .client_version_minor = c->version_minor };
    int has_body = !t->head_request;
    *keep_open = proxy_xform_framing(c, resp, has_body, &ri);
    int w = http_write_response_head(buf_wptr(&c->out), client_space(c, &c->out), resp, &ri);
    if (w < 0) {
        txn_drop_body_xform(t);
        c->x_on = 0;
        return -ENOSPC;
    }
    c->out.wpos += (uint32_t)w;
    c->bytes_out += (uint64_t)w;
    if (!has_body)
        return 0;
    if (!c->x_on) {
        if (buf_append(&c->wc->bufs, &c->out, body, body_len) == 0)
            c->bytes_out += body_len;
        return 0;
    }
    /* transformed: run it to the end now (a few bytes; out has room) */
    c->resp_chunked_out = ri.body_kind == HTTP_BODY_CHUNKED;
    c->static_body = body;
    c->static_left = body_len;
    c->resp_state = RS_BODY;
    while (c->resp_state == RS_BODY && proxy_move_static_body(c))
        ;
    if (c->resp_state != RS_DONE)
        *keep_open = 0; /* cut short: only closing can tell the client */
    c->static_body = NULL;
    c->static_left = 0;
    c->x_on = 0;
    return 0;
}

/* Writes weir's error answer as is: when there is no route (or no room for
 * the steps' version). */
static void proxy_error_plain(struct client *c, int status, int keep_open)
{
    const char *reason = http_status_reason(status);
    char msg[512];
    int body_len = snprintf(msg, sizeof(msg), "%d %s\n", status, reason);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s%s\r\n",
                     status, reason, body_len, status == 503 ? "Retry-After: 1\r\n" : "",
                     keep_open ? "" : "Connection: close\r\n");
    if (buf_acquire(&c->wc->bufs, &c->out) == 0 && !c->txn->head_request) {
        if (buf_append(&c->wc->bufs, &c->out, head, (size_t)n) == 0 &&
            buf_append(&c->wc->bufs, &c->out, msg, (size_t)body_len) == 0)
            c->bytes_out += (uint64_t)(n + body_len);
    } else if (c->out.data) {
        if (buf_append(&c->wc->bufs, &c->out, head, (size_t)n) == 0)
            c->bytes_out += (uint64_t)n;
    }
}

/* Answers the current request with `status` generated by weir. keep_open
 * keeps the connection when the request was fully read; otherwise it is
 * closed after the answer. The answer goes through the route's response
 * steps when there is a route (proxy_error_through_steps). */
static void client_respond_error(struct client *c, int status, int keep_open)
{
    if (c->resp_started) {
        client_close_after_write(c);
        return;
    }
    if (status >= 500 && c->txn && txn_error(c->txn, status)) {
        /* a step answers instead (a cache: a stale object, stale-if-error) */
        upstream_detach(c, 0);
        timer_set(c, TP_NONE, 0);
        proxy_answer(c);
        return;
    }
    if (!c->keep_alive || c->wc->draining)
        keep_open = 0;
    c->txn->status = (uint16_t)status;
    c->resp_started = 1;
    if (proxy_error_through_steps(c, status, &keep_open) != 0)
        proxy_error_plain(c, status, keep_open);
    client_log_access(c);
    proxy_request_end(c);
    if (!keep_open) {
        client_close_after_write(c);
        return;
    }
    /* the request was read whole: the connection goes on */
    upstream_detach(c, 0);
    endpoint_release(c);
    c->resp_state = RS_DONE;
    c->req_done = 1;
}

/* ---- starting a request ------------------------------------------------ */

static uint64_t proxy_cookie_hash(const struct http_msg *msg, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (!http_slice_eq_nocase(msg->headers[i].name, "cookie"))
            continue;
        const char *p = msg->headers[i].value.p;
        const char *end = p + msg->headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (!eq)
                break;
            const char *semi = memchr(eq, ';', (size_t)(end - eq));
            if (!semi)
                semi = end;
            if ((size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0)
                return hash_bytes(eq + 1, (size_t)(semi - eq - 1));
            p = semi;
        }
    }
    return 0;
}

static uint64_t proxy_ip_hash(const struct client *c)
{
    return hash_bytes(c->client_ip, strlen(c->client_ip));
}

static uint64_t proxy_key_hash(const struct client *c, const struct http_msg *msg)
{
    const struct cfg_cluster *cc = c->txn->cl->cfg;
    if (cc->balance == CFG_BALANCE_IP_HASH)
        return proxy_ip_hash(c);
    if (cc->balance != CFG_BALANCE_CONSISTENT_HASH)
        return 0;
    uint64_t h = 0;
    switch (cc->hash_key) {
    case CFG_HASH_KEY_PATH:
        h = hash_bytes(msg->path.p, msg->path.len);
        break;
    case CFG_HASH_KEY_HEADER: {
        int i = http_msg_find(msg, cc->hash_key_name);
        if (i >= 0)
            h = hash_bytes(msg->headers[i].value.p, msg->headers[i].value.len);
        break;
    }
    case CFG_HASH_KEY_COOKIE:
        h = proxy_cookie_hash(msg, cc->hash_key_name);
        break;
    default:
        break;
    }
    return h ? h : proxy_ip_hash(c);
}

static void proxy_new_request_id(struct client *c, const struct http_msg *msg)
{
    int i = http_msg_find(msg, "x-request-id");
    if (i >= 0) {
        size_t n = msg->headers[i].value.len;
        if (n > sizeof(c->txn->request_id) - 1)
            n = sizeof(c->txn->request_id) - 1;
        memcpy(c->txn->request_id, msg->headers[i].value.p, n);
        c->txn->request_id[n] = 0;
        return;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t half[2] = { rng_next(&c->wc->rng), rng_next(&c->wc->rng) };
    for (int k = 0; k < 32; k++)
        c->txn->request_id[k] = hex[(half[k / 16] >> (60 - 4 * (k % 16))) & 15];
    c->txn->request_id[32] = 0;
}

static void proxy_keep_log_line(struct client *c, const struct http_msg *msg)
{
    if (!c->snap || c->snap->access_fd < 0)
        return;
    size_t tlen = msg->target.len > 512 ? 512 : msg->target.len;
    size_t mlen = msg->method_str.len > 32 ? 32 : msg->method_str.len;
    char *line = realloc(c->log_line, mlen + tlen + 16);
    if (!line)
        return;
    c->log_line = line;
    if (c->lane) /* the stream's own protocol, not the lane's HTTP/1.1 */
        snprintf(line, mlen + tlen + 16, "%.*s %.*s HTTP/2.0", (int)mlen, msg->method_str.p, (int)tlen,
                 msg->target.p);
    else
        snprintf(line, mlen + tlen + 16, "%.*s %.*s HTTP/1.%d", (int)mlen, msg->method_str.p,
                 (int)tlen, msg->target.p, msg->version_minor);
}

/* Switches a connection to the worker's newest snapshot between requests. */
static void client_adopt_snapshot(struct client *c)
{
    struct snapshot *cur = c->wc->snap;
    if (c->snap == cur)
        return;
    for (size_t i = 0; i < cur->cfg->n_listeners; i++) {
        if (strcmp(cur->cfg->listeners[i].name, c->lst->name) == 0) {
            snapshot_ref(cur);
            snapshot_unref(c->snap);
            c->snap = cur;
            c->lst = &cur->cfg->listeners[i];
            return;
        }
    }
}

static void upstream_connect(struct client *c);

static int proxy_method_idempotent(enum http_method m)
{
    return m == HTTP_METHOD_GET || m == HTTP_METHOD_HEAD || m == HTTP_METHOD_PUT ||
           m == HTTP_METHOD_DELETE || m == HTTP_METHOD_OPTIONS || m == HTTP_METHOD_TRACE;
}

/* Sets up the request whose head `msg` (head_len bytes at the start of in)
 * was just parsed: routing, limits, the re-serialised head in up_out, and
 * the upstream connection. */
/* Clears what the previous request on this connection left behind and
 * records what the new head says about framing and reuse. */
static void proxy_reset_request(struct client *c, const struct http_msg *msg)
{
    client_adopt_snapshot(c);
    c->txn->t_start = ev_now(client_loop(c));
    c->txn->t_up_start = c->txn->t_up_first = 0;
    c->txn->status = 0;
    c->bytes_out = 0;
    c->resp_started = c->req_done = c->reused = c->up_out_recycled = 0;
    http_trailers_clear(&c->req_trl);
    http_trailers_clear(&c->resp_trl);
    c->txn->attempts = 0;
    c->txn->failed_ep = NULL;
    c->txn->probe = c->txn->retry_counted = c->txn->counted = c->txn->queued = c->logged = 0;
    c->txn->cl = NULL;
    c->txn->route = NULL;
    c->version_minor = (uint8_t)msg->version_minor;
    c->keep_alive = msg->keep_alive && !c->wc->draining;
    c->txn->head_request = msg->method == HTTP_METHOD_HEAD;
    c->txn->idempotent = proxy_method_idempotent(msg->method);
    c->upgrade = msg->upgrade;
    c->txn->body_kind = (uint8_t)msg->body_kind;
    c->txn->body_left = msg->body_kind == HTTP_BODY_LENGTH ? msg->content_length : 0;
    c->txn->body_total = msg->body_kind == HTTP_BODY_LENGTH ? msg->content_length : 0;
    c->resp_state = RS_HEAD;
    c->x_on = c->x_in_done = c->x_pending = c->x_dirty = 0;
    c->up_scan_pos = 0;
    c->state = CS_PROXY;
    proxy_new_request_id(c, msg);
    proxy_keep_log_line(c, msg);
}

/* Routing and the checks that need no step or backend. Returns 0 when
 * the request goes on (the route set), else the status weir answers with. */
static int proxy_route(struct client *c, const struct http_msg *msg)
{
    if (msg->method == HTTP_METHOD_CONNECT)
        return 501;
    c->txn->route = router_match(c->lst, msg);
    if (!c->txn->route)
        return 404;
    if (c->lst->max_body_bytes && msg->body_kind == HTTP_BODY_LENGTH &&
        msg->content_length > c->lst->max_body_bytes)
        return 413;
    return 0;
}

/* The checks of a cluster target: its shared counts, its breaker. Returns
 * 0 when the request goes on to an endpoint, else the status to answer. */
static int proxy_admit(struct client *c, const struct http_msg *msg)
{
    c->txn->cl = &c->snap->clusters[c->txn->route->cluster - c->snap->cfg->clusters];
    c->txn->key_hash = proxy_key_hash(c, msg);
    atomic_fetch_add_explicit(&c->txn->cl->active_requests, 1, memory_order_relaxed);
    c->txn->counted = 1;
    const struct cfg_breaker *cb = &c->txn->cl->cfg->breaker;
    if (!cb->enabled || !cb->per_cluster)
        return 0;
    int before = atomic_load_explicit(&c->txn->cl->breaker.state, memory_order_relaxed);
    enum breaker_admission a = breaker_admit(&c->txn->cl->breaker, cb, proxy_now_ms());
    if (before == BREAKER_OPEN && atomic_load(&c->txn->cl->breaker.state) == BREAKER_HALF_OPEN)
        log_info("cluster %s: circuit breaker of the cluster is now half-open", c->txn->cl->cfg->name);
    if (a == BREAKER_DENY) {
        log_info("cluster %s: circuit breaker open, failing fast", c->txn->cl->cfg->name);
        return 503;
    }
    c->txn->probe = a == BREAKER_PROBE;
    return 0;
}

/* Writes the head for the backend into up_out (re-serialised, framed by
 * weir) and answers 100-continue when the client waits for it. Returns 0
 * or the status to answer. */
static int proxy_forward_head(struct client *c, const struct http_msg *msg, size_t head_len)
{
    struct wctx *wc = c->wc;
    struct http_fwd_info info = {
        .client_ip = c->client_ip,
        .proto = "http",
        .request_id = c->txn->request_id,
        .body_kind = msg->body_kind,
        .content_length = msg->content_length,
    };
    if (msg->body_kind == HTTP_BODY_NONE && http_msg_find(msg, "content-length") >= 0) {
        /* an explicit empty body: some backends want to see its length */
        info.body_kind = HTTP_BODY_LENGTH;
        info.content_length = 0;
    }
    if (buf_acquire(&wc->bufs, &c->up_out) != 0)
        return 503;
    int n = http_write_request_head(c->up_out.data, wc->bufs.block_size, msg, &info);
    if (n < 0)
        return 431;
    c->up_out.rpos = 0;
    c->up_out.wpos = (uint32_t)n;
    if (msg->expect_continue && msg->body_kind != HTTP_BODY_NONE && buf_len(&c->in) == head_len &&
        msg->version_minor == 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_acquire(&wc->bufs, &c->out) == 0)
            (void)buf_append(&wc->bufs, &c->out, cont, sizeof(cont) - 1);
    }
    return 0;
}

static uint64_t proxy_deadline_left(const struct client *c);
static void proxy_dispatch(struct client *c, enum step_result r, size_t head_len);
static void proxy_collect_body(struct client *c, size_t head_len);

/* Sets up the request whose head `msg` (head_len bytes at the start of in)
 * was just parsed: route, steps, then the route's target. */
/* A plain listener with redirect_https: every request is answered with a
 * 301 to the same host and target over HTTPS (Location built in the arena). */
static void proxy_redirect_https(struct client *c, const struct http_msg *msg)
{
    static const struct http_slice loc_name = { "Location", 8 };
    struct http_slice host = msg->host;
    const char *colon = host.len && host.p[host.len - 1] != ']' ? memrchr(host.p, ':', host.len) : NULL;
    if (colon)
        host.len = (size_t)(colon - host.p); /* the plain port goes */
    size_t cap = host.len + msg->target.len + 24;
    char *loc = txn_alloc(c->txn, cap);
    struct http_header *h = (struct http_header *)txn_alloc(c->txn, sizeof(*h));
    if (!loc || !h || host.len == 0) {
        txn_respond(c->txn, host.len ? 503 : 400, NULL, 0, NULL, 0);
        return;
    }
    int n = c->lst->redirect_https_port == 443
                ? snprintf(loc, cap, "https://%.*s%.*s", (int)host.len, host.p, (int)msg->target.len, msg->target.p)
                : snprintf(loc, cap, "https://%.*s:%u%.*s", (int)host.len, host.p, c->lst->redirect_https_port,
                           (int)msg->target.len, msg->target.p);
    h->name = loc_name;
    h->value = (struct http_slice){ loc, (size_t)n };
    txn_respond(c->txn, 301, h, 1, NULL, 0);
}

/* What the listener adds to every answer: Strict-Transport-Security on a
 * TLS listener with hsts (RFC 6797 7.1: only over a secure transport). */
static void proxy_listener_headers(struct client *c, struct http_msg *resp)
{
    static const struct http_slice hsts_name = { "Strict-Transport-Security", 25 };
    if (c->lst->hsts)
        (void)http_edit_set(resp, hsts_name, (struct http_slice){ c->lst->hsts, strlen(c->lst->hsts) });
}

static void proxy_start_request(struct client *c, struct http_msg *msg, size_t head_len)
{
    proxy_reset_request(c, msg);
    txn_begin(c->txn, c, c->wc, msg);
    const char *subject = c->lane ? c->lane_subject : tls_peer_subject(&c->cio);
    if (subject) /* a verified client certificate: the identity until an auth step says otherwise */
        c->txn->identity = (struct http_slice){ subject, strlen(subject) };
    if (c->lst->redirect_https_port) {
        proxy_redirect_https(c, msg);
        proxy_dispatch(c, STEP_RESPOND, head_len);
        return;
    }
    int status = proxy_route(c, msg);
    if (status) {
        buf_consume(&c->in, head_len);
        client_respond_error(c, status, status == 404 && msg->body_kind == HTTP_BODY_NONE);
        return;
    }
    proxy_dispatch(c, txn_run_steps(c->txn), head_len);
}

/* Acts on what the steps said. head_len: bytes of the head still at the
 * start of in (0 once the head was kept for a waiting step). */
static void proxy_dispatch(struct client *c, enum step_result r, size_t head_len)
{
    struct txn *t = c->txn;
    const struct http_msg *msg = t->req;
    int body_pending = msg->body_kind != HTTP_BODY_NONE;
    int status = 0;
    if (r == STEP_WAIT) {
        if (head_len && txn_keep_head(t, buf_rptr(&c->in), head_len) != 0) {
            log_warn("client %s: out of memory keeping a request head", c->client_ip);
            buf_consume(&c->in, head_len);
            client_respond_error(c, 503, 0);
            return;
        }
        buf_consume(&c->in, head_len);
        c->state = CS_WAIT;
        uint64_t left = proxy_deadline_left(c);
        timer_set(c, TP_STEP, left == UINT64_MAX ? 0 : left);
        return;
    }
    if (r == STEP_ERROR) {
        buf_consume(&c->in, head_len);
        client_respond_error(c, 500, !body_pending);
        return;
    }
    if (r == STEP_NEXT && t->route->target->needs_body && body_pending) {
        proxy_collect_body(c, head_len);
        return;
    }
    if (r == STEP_NEXT && t->route->target->start) {
        t->route->target->start(t, t->route->target_cfg);
        r = STEP_RESPOND;
    }
    if (r == STEP_RESPOND) {
        buf_consume(&c->in, head_len);
        proxy_answer(c);
        return;
    }
    status = proxy_admit(c, msg);
    if (status == 0)
        status = proxy_forward_head(c, msg, head_len);
    buf_consume(&c->in, head_len);
    if (status) {
        /* keep the connection when no body is left unread behind the head */
        client_respond_error(c, status, status == 503 && !body_pending);
        return;
    }
    c->state = CS_PROXY;
    if (msg->body_kind == HTTP_BODY_CHUNKED) {
        http_chunked_init(&c->chunk);
        c->chunk.keep_trailers = 1; /* re-chunked to the backend: its trailers go along */
    }
    if (msg->body_kind == HTTP_BODY_NONE)
        c->req_done = 1;
    upstream_connect(c);
}

void proxy_txn_resumed(struct txn *t, enum step_result r)
{
    struct client *c = t->session;
    ev_timer_stop(client_loop(c), &c->timer);
    c->state = CS_PROXY;
    if (r == STEP_NEXT)
        r = txn_run_steps(t);
    proxy_dispatch(c, r, 0);
    client_pump(c);
}

/* After the response steps: when one set a body transform and the answer
 * has a body, the body goes through it, and its length is no longer known:
 * chunked to an HTTP/1.1 client, until close to an HTTP/1.0 one (whose
 * Content-Length, kept for HEAD-like answers, is dropped). Edits ri and
 * returns whether the connection stays open. */
static int proxy_xform_framing(struct client *c, struct http_msg *resp, int has_body,
                               struct http_resp_info *ri)
{
    if (!c->txn->xform || !has_body || ri->pass_transfer_encoding || ri->upgrade)
        return ri->keep_alive;
    c->x_on = 1;
    if (c->version_minor == 1) {
        ri->body_kind = HTTP_BODY_CHUNKED;
        return ri->keep_alive;
    }
    int cl = http_msg_find(resp, "content-length");
    if (cl >= 0)
        resp->hop[cl] = HTTP_HOP_REMOVED;
    ri->body_kind = HTTP_BODY_NONE;
    ri->keep_alive = 0;
    return 0;
}

/* Sends the answer a step or a target made (txn_respond): its head goes
 * through the route's response steps like a backend's would; its body is
 * streamed from where it lives (configuration or the arena). */
static void proxy_answer(struct client *c)
{
    struct txn *t = c->txn;
    const struct txn_answer *a = &t->answer;
    struct wctx *wc = c->wc;
    struct http_msg *resp = &proxy_answer_msg;
    http_msg_init(resp);
    resp->status = a->status ? a->status : 500;
    resp->version_minor = 1;
    for (size_t i = 0; i < a->n_headers && i < HTTP_MAX_HEADERS_HARD; i++) {
        resp->headers[i] = a->headers[i];
        resp->hop[i] = 0;
        resp->n_headers++;
    }
    resp->body_kind = a->body_len ? HTTP_BODY_LENGTH : HTTP_BODY_NONE; /* as a parsed head says */
    resp->content_length = a->body_len;
    resp->has_content_length = 1;
    if (a->source)
        proxy_source_head(resp, a);
    txn_response_head(t, resp);
    proxy_listener_headers(c, resp);
    int keep = c->keep_alive && !wc->draining &&
               (t->req->body_kind == HTTP_BODY_NONE || c->state == CS_BODY);
    /* 204 and 304 carry no body and no length (RFC 9110 8.6) */
    int bodiless = resp->status == 204 || resp->status == 304;
    struct http_resp_info ri = { .body_kind = bodiless ? HTTP_BODY_NONE : HTTP_BODY_LENGTH,
                                 .content_length = a->body_len,
                                 .keep_alive = keep, .client_version_minor = c->version_minor };
    if (a->source && !bodiless)
        proxy_source_framing(c, resp, &ri);
    int has_body = (a->source ? resp->body_kind != HTTP_BODY_NONE : a->body_len > 0) &&
                   !t->head_request;
    keep = proxy_xform_framing(c, resp, has_body, &ri);
    if (buf_acquire(&wc->bufs, &c->out) != 0) {
        c->closing = 1;
        return;
    }
    int w = http_write_response_head(buf_wptr(&c->out), client_space(c, &c->out), resp, &ri);
    if (w < 0) {
        log_warn("route %s: the answer's head does not fit in %zu bytes", txn_route_name(t),
                 client_space(c, &c->out));
        client_respond_error(c, 500, 0);
        return;
    }
    c->out.wpos += (uint32_t)w;
    c->bytes_out += (uint64_t)w;
    c->txn->status = (uint16_t)resp->status;
    c->resp_started = 1;
    c->keep_alive = (unsigned)keep;
    c->state = CS_PROXY;
    c->static_body = c->txn->head_request || bodiless ? NULL : a->body;
    c->static_left = c->txn->head_request || bodiless ? 0 : a->body_len;
    if (a->source && has_body && !bodiless) {
        proxy_source_start(c, &ri);
        return;
    }
    /* the body steps see weir's answer whole, as they see a backend's (a
     * transformed one reaches them as it is sent, through proxy_emit_body) */
    if (!c->x_on) {
        if (c->static_left)
            txn_body(t, a->body, a->body_len);
        txn_response_end(t);
    }
    c->resp_state = c->static_left ? RS_BODY : RS_DONE;
    c->resp_body_kind = HTTP_BODY_LENGTH;
    c->resp_left = 0;
    c->resp_chunked_out = ri.body_kind == HTTP_BODY_CHUNKED;
    /* nothing more of the request is read: with a body pending, keep is 0
     * and the connection closes once the answer is out */
    c->req_done = 1;
    c->up_reusable = 0;
}

static int proxy_xform_body(struct client *c);

/* Copies the next run of a weir-made body into out (or into xin, for the
 * body transform). */
static int proxy_move_static_body(struct client *c)
{
    if (c->src_on)
        return proxy_move_source_body(c);
    if (c->x_on) {
        int progress = 0;
        if (c->static_left && buf_acquire(&c->wc->bufs, &c->xin) == 0) {
            size_t n = client_space(c, &c->xin);
            n = n < c->static_left ? n : c->static_left;
            (void)buf_append(&c->wc->bufs, &c->xin, c->static_body, n);
            c->static_body += n;
            c->static_left -= n;
            progress = n > 0;
        }
        c->x_in_done = c->static_left == 0;
        return proxy_xform_body(c) | progress;
    }
    if (c->static_left == 0 || buf_acquire(&c->wc->bufs, &c->out) != 0)
        return 0;
    if (client_space(c, &c->out) == 0 && c->out.rpos > 0)
        buf_compact(&c->out);
    size_t n = client_space(c, &c->out);
    if (n > c->static_left)
        n = c->static_left;
    if (n == 0)
        return 0;
    (void)buf_append(&c->wc->bufs, &c->out, c->static_body, n);
    c->static_body += n;
    c->static_left -= n;
    c->bytes_out += n;
    if (c->static_left == 0)
        c->resp_state = RS_DONE;
    return 1;
}

/* ---- upstream ------------------------------------------------------------ */

static void upstream_failed(struct client *c, enum up_failure why, int err);

static uint64_t proxy_now_ms(void)
{
    return endpoint_now_ms();
}

/* Milliseconds left before the route's deadline (UINT64_MAX: none). */
static uint64_t proxy_deadline_left(const struct client *c)
{
    if (!c->txn->route || !c->txn->route->timeout_ms)
        return UINT64_MAX;
    double spent = (ev_now(client_loop(c)) - c->txn->t_start) * 1000.0;
    if (spent >= (double)c->txn->route->timeout_ms)
        return 0;
    uint64_t left = c->txn->route->timeout_ms - (uint64_t)spent;
    return left ? left : 1;
}

static uint64_t proxy_clamp_deadline(const struct client *c, uint64_t ms)
{
    uint64_t left = proxy_deadline_left(c);
    return ms < left ? ms : left;
}

static void upstream_arm_timer(struct client *c)
{
    if (c->up_state == US_CONNECTING) {
        timer_set(c, TP_CONNECT, proxy_clamp_deadline(c, c->txn->cl->cfg->connect_timeout_ms));
    } else if (!c->req_done) {
        timer_set(c, TP_BODY, c->lst->body_timeout_ms);
    } else {
        uint64_t per_try = c->txn->route && c->txn->route->retry.per_try_timeout_ms
                               ? c->txn->route->retry.per_try_timeout_ms
                               : c->txn->cl->cfg->response_timeout_ms;
        timer_set(c, TP_RESPONSE, proxy_clamp_deadline(c, per_try));
    }
}

/* Panic mode: every endpoint is down, so balance over all of them (except
 * those draining) rather than fail everything. */
static struct endpoint *proxy_pick_panic(struct cluster *cl)
{
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        unsigned k = atomic_fetch_add_explicit(&cl->panic_cursor, 1, memory_order_relaxed);
        struct endpoint *ep = &cl->endpoints[k % cl->n_endpoints];
        if (!ep->drain && !ep->down)
            return ep;
    }
    return NULL;
}

/* The breaker's word on ep. Returns 0 when ep must not be used. */
static int proxy_breaker_admits(struct client *c, struct endpoint *ep, uint64_t now)
{
    const struct cfg_breaker *cb = &c->txn->cl->cfg->breaker;
    if (!cb->enabled || cb->per_cluster)
        return 1;
    int before = atomic_load_explicit(&ep->breaker.state, memory_order_relaxed);
    enum breaker_admission a = breaker_admit(&ep->breaker, cb, now);
    if (before == BREAKER_OPEN && atomic_load(&ep->breaker.state) == BREAKER_HALF_OPEN)
        log_info("cluster %s: circuit breaker of %s is now half-open: letting %u probe(s) through",
                 c->txn->cl->cfg->name, ep->name, cb->half_open_requests);
    if (a == BREAKER_DENY)
        return 0;
    c->txn->probe = a == BREAKER_PROBE;
    return 1;
}

/* Chooses the endpoint for the next attempt: the balancer's pick, passed
 * over when it is at its request limit, refused by its breaker, or (slow
 * start) when a draw says its share is not yet full. *saturated is set
 * when an endpoint was passed over for its limit. NULL: none can take it. */
static struct endpoint *proxy_pick(struct client *c, int *saturated)
{
    struct cluster *cl = c->txn->cl;
    const struct cfg_cluster *cc = cl->cfg;
    uint64_t now = proxy_now_ms();
    uint32_t limit = cc->max_connections;
    if (cc->max_requests && (!limit || cc->max_requests < limit))
        limit = cc->max_requests;
    const struct endpoint *avoid = c->txn->failed_ep;
    struct endpoint *ramping = NULL;
    *saturated = 0;
    for (size_t tries = 0; tries <= cl->n_endpoints; tries++) {
        struct endpoint *ep = lb_pick(cl->lb, c->wc->worker.id, c->txn->key_hash, avoid);
        if (!ep)
            break;
        avoid = ep;
        if (limit && (uint32_t)atomic_load_explicit(&ep->active, memory_order_relaxed) >= limit) {
            *saturated = 1;
            continue;
        }
        uint32_t share = atomic_load_explicit(&ep->share_pct, memory_order_relaxed);
        if (share < 100 && !lb_uses_key(cl->lb) && rng_next(&c->wc->rng) % 100 >= share) {
            if (!ramping)
                ramping = ep;
            continue;
        }
        if (proxy_breaker_admits(c, ep, now))
            return ep;
    }
    if (ramping && proxy_breaker_admits(c, ramping, now))
        return ramping;
    if (cc->panic && !*saturated) {
        int any_up = 0;
        for (size_t i = 0; i < cl->n_endpoints && !any_up; i++)
            any_up = atomic_load_explicit(&cl->endpoints[i].up, memory_order_relaxed);
        if (!any_up)
            return proxy_pick_panic(cl);
    }
    return NULL;
}

/* No endpoint could take the request: wait in the queue when the cluster
 * allows it and an endpoint was only busy, else answer 503. */
static void proxy_no_endpoint(struct client *c, int saturated)
{
    const struct cfg_cluster *cc = c->txn->cl->cfg;
    ev_tstamp now = ev_now(client_loop(c));
    if (saturated && cc->max_pending) {
        if (!c->txn->queued && proxy_hw(c->wc)->n_queued < cc->max_pending) {
            c->txn->queued = 1;
            proxy_hw(c->wc)->n_queued++;
            c->txn->queued_at = now;
        }
        if (c->txn->queued && (now - c->txn->queued_at) * 1000.0 < (double)cc->queue_timeout_ms &&
            proxy_deadline_left(c) > 0) {
            timer_set(c, TP_QUEUE, PROXY_QUEUE_POLL_MS);
            return;
        }
    }
    if (c->txn->queued) {
        c->txn->queued = 0;
        proxy_hw(c->wc)->n_queued--;
    }
    log_warn("cluster %s: no endpoint can take a request from %s (%s)", cc->name, c->client_ip,
             saturated ? "all at their request limit" : "none available");
    client_respond_error(c, 503, c->req_done);
}

/* Picks an endpoint and gets a connection to it: an idle pooled one when
 * there is one, else a new non-blocking connect. */
static void upstream_connect(struct client *c)
{
    int saturated;
    struct endpoint *ep = proxy_pick(c, &saturated);
    if (!ep) {
        proxy_no_endpoint(c, saturated);
        return;
    }
    if (c->txn->queued) {
        c->txn->queued = 0;
        proxy_hw(c->wc)->n_queued--;
    }
    atomic_fetch_add_explicit(&ep->active, 1, memory_order_relaxed);
    c->txn->ep = ep;
    c->txn->attempts++; /* a budgeted retry took its slot in proxy_budget_allows() */
    c->txn->t_up_start = ev_now(client_loop(c));
    c->txn->t_up_first = 0;
    if (pool_take_sio(&proxy_hw(c->wc)->upstreams, (struct sockaddr *)&ep->addr, ep->addrlen,
                      proxy_up_tag(c), &c->uio) == 0) {
        metrics_add(c->txn->cl->m_pool_reuses, 0, 1);
        /* a pooled HTTP/2 lane cannot have gone stale: a reset on it is a
         * real one, for the usual retry rules */
        c->reused = c->txn->cl->cfg->protocol == CFG_UP_HTTP1;
        c->up_state = US_ACTIVE;
        c->u_writable = 1;
    } else {
        c->reused = 0;
        int fd = proxy_up_open(c);
        if (fd < 0) {
            upstream_failed(c, UF_CONNECT, -fd);
            return;
        }
        int r = proxy_up_wrap(c, fd);
        if (r < 0) {
            upstream_failed(c, UF_CONNECT, -r);
            return;
        }
        metrics_add(c->txn->cl->m_pool_connects, 0, 1);
        c->up_state = US_CONNECTING;
        c->u_writable = 0;
    }
    c->up_registered = 0; /* a new fd (or one the pool watched: c->reused) */
    c->u_readable = 0;
    c->u_eof = 0;
    upstream_arm_timer(c);
}

/* The request can be sent again from the start: it is whole in up_out and
 * no byte of a response has been forwarded. */
static int upstream_replayable(const struct client *c)
{
    if (!c->req_done || c->up_out_recycled || c->resp_started || !c->up_out.data)
        return 0;
    if (c->txn->route && c->txn->route->retry.enabled && c->txn->body_total > c->txn->route->retry.buffer_body)
        return 0;
    return 1;
}

/* Retry budget: retries in flight may add at most budget_percent on top of
 * the cluster's requests in flight (but min_retry_concurrency always). An
 * allowed retry takes its slot here, not when it connects: a retry waiting
 * out its backoff is in flight too, or every request failing in the same
 * moment would pass the check. */
static int proxy_budget_allows(struct client *c, const struct cfg_retry *r)
{
    if (c->txn->retry_counted)
        return 1; /* this request already holds a retry slot */
    int active = atomic_load_explicit(&c->txn->cl->active_requests, memory_order_relaxed);
    int retries = atomic_fetch_add_explicit(&c->txn->cl->active_retries, 1, memory_order_relaxed);
    long allowed = (long)active * r->budget_percent / 100;
    if (allowed < (long)r->min_retry_concurrency)
        allowed = r->min_retry_concurrency;
    if (retries < allowed) {
        c->txn->retry_counted = 1;
        return 1;
    }
    atomic_fetch_sub_explicit(&c->txn->cl->active_retries, 1, memory_order_relaxed);
    log_info("cluster %s: retry budget exhausted (%d retries in flight for %d requests)",
             c->txn->cl->cfg->name, retries, active);
    return 0;
}

/* Whether the failed attempt (a cfg_failure kind, or a response `status`)
 * may be tried again. *immediate is set when no backoff applies. */
static int proxy_may_retry(struct client *c, int kind, int status, int *immediate)
{
    *immediate = 0;
    if (!upstream_replayable(c) || proxy_deadline_left(c) == 0)
        return 0;
    if (kind == CFG_FAILURE_RESET && c->reused && status == 0) {
        /* a pooled connection the backend had closed: always safe */
        *immediate = 1;
        return c->txn->attempts <= PROXY_MAX_ATTEMPTS;
    }
    const struct cfg_retry *r = c->txn->route ? &c->txn->route->retry : NULL;
    if (!r || !r->enabled) {
        /* without a retry policy: only what never reached the backend, and
         * resets of idempotent requests */
        *immediate = 1;
        if (status || kind == UPSTREAM_RETRY_GRPC || c->txn->attempts >= PROXY_MAX_ATTEMPTS)
            return 0;
        return kind == CFG_FAILURE_CONNECT || (kind == CFG_FAILURE_RESET && c->txn->idempotent);
    }
    if (c->txn->attempts >= r->attempts)
        return 0;
    if (kind == UPSTREAM_RETRY_GRPC) /* gRPC is all POST: naming a gRPC condition is the consent */
        return (r->on_grpc & GRPC_STATUS_BIT(status)) && proxy_budget_allows(c, r);
    if (kind != CFG_FAILURE_CONNECT && !c->txn->idempotent && !r->all_methods)
        return 0;
    int wanted = status ? ((r->on_mask & CFG_FAILURE_BIT(CFG_FAILURE_5XX)) && status >= 500) ||
                              cfg_status_in(&r->on_status, status)
                        : (r->on_mask & CFG_FAILURE_BIT(kind)) != 0;
    if (wanted && kind == CFG_FAILURE_CONNECT && !status) {
        /* nothing reached a backend: go to the next endpoint at once, like
         * HAProxy's redispatch, outside the budget (it adds no load) */
        *immediate = 1;
        return 1;
    }
    return wanted && proxy_budget_allows(c, r);
}

/* Drops the failed attempt's connection and starts the next attempt, now
 * or after a backoff; `kind` (a cfg_failure) is why, for the metrics. */
static void proxy_retry(struct client *c, int kind, int immediate)
{
    if (c->txn->cl)
        metrics_add(c->txn->cl->m_retries, (unsigned)kind, 1);
    ev_io_stop(client_loop(c), &c->up_io);
    sio_close(&c->uio);
    c->up_state = US_NONE;
    c->u_eof = 0;
    buf_release(&c->wc->bufs, &c->up_in);
    endpoint_release(c);
    c->up_out.rpos = 0;
    c->up_scan_pos = 0;
    const struct cfg_retry *rp = &c->txn->route->retry;
    uint64_t delay = immediate || !rp->enabled ? 0
                                               : retry_backoff_ms(rp, c->txn->attempts, rng_next(&c->wc->rng));
    delay = proxy_clamp_deadline(c, delay);
    if (delay == 0) {
        upstream_connect(c);
        return;
    }
    timer_set(c, TP_BACKOFF, delay);
}

/* Reports the attempt's outcome to outlier detection and breakers. */
static void proxy_record(struct client *c, int outcome)
{
    if (!c->txn->ep)
        return;
    endpoint_record(c->txn->ep, outcome, c->txn->probe, proxy_now_ms());
    c->txn->probe = 0;
}

static void upstream_failed(struct client *c, enum up_failure why, int err)
{
    struct endpoint *ep = c->txn->ep;
    const char *what = why == UF_CONNECT ? "connect failed"
                       : why == UF_TIMEOUT_CONNECT ? "connect timed out"
                                                   : "connection lost before the response";
    int kind = why == UF_RESET ? CFG_FAILURE_RESET : CFG_FAILURE_CONNECT;
    int stale_reuse = why == UF_RESET && c->reused;
    int immediate;
    int retry = proxy_may_retry(c, kind, 0, &immediate);
    if (!stale_reuse)
        proxy_record(c, kind);
    if (!stale_reuse || !retry)
        log_warn("upstream %s (cluster %s): %s: %s%s", ep ? ep->name : "?",
                 c->txn->cl ? c->txn->cl->cfg->name : "?", what, err ? strerror(err) : "closed",
                 retry ? ", retrying" : "");
    /* a stale pooled connection says nothing about the endpoint: retry on
     * the same one, on a fresh connection */
    c->txn->failed_ep = stale_reuse ? NULL : ep;
    if (retry) {
        proxy_retry(c, kind, immediate);
        return;
    }
    int status = why == UF_TIMEOUT_CONNECT ? 504 : 502;
    client_respond_error(c, status, c->req_done);
}

static void upstream_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    if (c->up_state == US_CONNECTING) {
        int r = net_connect_result(c->uio.fd);
        if (r != 0) {
            upstream_failed(c, UF_CONNECT, -r);
            client_pump(c);
            return;
        }
        c->up_state = US_ACTIVE;
        metrics_observe_ns(c->txn->cl->m_connect,
                           (uint64_t)((ev_now(client_loop(c)) - c->txn->t_up_start) * 1e9));
        upstream_arm_timer(c);
    }
    proxy_note_ready(&c->uio, revents, &c->u_readable, &c->u_writable);
    client_pump(c);
}

/* ---- request body ------------------------------------------------------ */

/* Trailer sections are held whole up to this (half a buffer at most, so
 * the last-chunk carrying them always fits once the peer took the rest). */
static size_t proxy_trailers_max(const struct client *c)
{
    size_t half = c->wc->bufs.block_size / 2;
    return half < HTTP_TRAILERS_MAX ? half : HTTP_TRAILERS_MAX;
}

/* Keeps a span of trailer bytes from `from` (a client IP or an endpoint
 * name, for the log); an oversize or unstorable section is dropped whole. */
static void proxy_keep_trailers(struct client *c, struct http_trailers *t, const char *p, size_t n,
                                const char *from)
{
    unsigned was_over = t->over;
    if (http_trailers_add(t, p, n, proxy_trailers_max(c)) != 0) {
        http_trailers_clear(t);
        t->over = 1;
    }
    if (t->over && !was_over)
        log_info("%s: trailer section over %zu bytes (or out of memory): the message ends without it", from,
                 proxy_trailers_max(c));
}

static int proxy_move_chunked_body(struct client *c)
{
    int progress = 0;
    while (!c->req_done) {
        size_t space = client_space(c, &c->up_out);
        if (http_chunked_done(&c->chunk)) {
            /* the last-chunk and the trailers, once up_out has room for them */
            int n = http_trailers_write(&c->req_trl, buf_wptr(&c->up_out), space);
            if (n < 0)
                break;
            c->up_out.wpos += (uint32_t)n;
            http_trailers_clear(&c->req_trl);
            c->req_done = 1;
            progress = 1;
            break;
        }
        if (buf_len(&c->in) == 0 || space <= PROXY_CHUNK_OVERHEAD)
            break;
        size_t lim = buf_len(&c->in);
        if (lim > space - PROXY_CHUNK_OVERHEAD)
            lim = space - PROXY_CHUNK_OVERHEAD;
        size_t used = 0, off = 0, dlen = 0;
        enum http_chunk_result r = http_chunked_next(&c->chunk, buf_rptr(&c->in), lim, &used, &off, &dlen);
        if (r == HTTP_CHUNK_ERROR) {
            log_info("client %s: bad chunked request body: %s", c->client_ip, c->chunk.error);
            client_respond_error(c, 400, 0);
            return 1;
        }
        if (r == HTTP_CHUNK_DATA) {
            c->txn->body_total += dlen;
            if (c->lst->max_body_bytes && c->txn->body_total > c->lst->max_body_bytes) {
                client_respond_error(c, 413, 0);
                return 1;
            }
            struct http_out o = { buf_wptr(&c->up_out), 0, space, 0 };
            http_out_hex(&o, dlen);
            http_out_lit(&o, "\r\n", 2);
            http_out_lit(&o, buf_rptr(&c->in) + off, dlen);
            http_out_lit(&o, "\r\n", 2);
            c->up_out.wpos += (uint32_t)o.len;
        } else if (r == HTTP_CHUNK_TRAILER) {
            proxy_keep_trailers(c, &c->req_trl, buf_rptr(&c->in) + off, dlen, c->client_ip);
        }
        buf_consume(&c->in, used);
        progress = 1;
        if (r == HTTP_CHUNK_MORE && used == 0)
            break;
    }
    return progress;
}

/* Moves request body bytes from in to up_out, re-framed. Returns 1 when it
 * moved something or finished the body. */
static int proxy_move_request_body(struct client *c)
{
    int chunked = c->txn->body_kind == HTTP_BODY_CHUNKED;
    if (c->req_done || c->up_state == US_NONE ||
        (buf_len(&c->in) == 0 && !(chunked && http_chunked_done(&c->chunk))))
        return 0;
    if (buf_acquire(&c->wc->bufs, &c->up_out) != 0)
        return 0;
    /* keep what was sent while the rest still fits behind it: a request
     * held whole can be sent again (retry) */
    size_t need = buf_len(&c->in) + PROXY_CHUNK_OVERHEAD + (chunked ? http_trailers_bound(&c->req_trl) : 0);
    if (c->up_out.rpos > 0 && c->up_out.rpos == c->up_out.wpos && client_space(c, &c->up_out) < need) {
        c->up_out.rpos = c->up_out.wpos = 0;
        c->up_out_recycled = 1;
    }
    if (chunked)
        return proxy_move_chunked_body(c);
    size_t n = buf_len(&c->in);
    size_t space = client_space(c, &c->up_out);
    if (n > c->txn->body_left)
        n = (size_t)c->txn->body_left;
    if (n > space)
        n = space;
    if (n == 0)
        return 0;
    (void)buf_append(&c->wc->bufs, &c->up_out, buf_rptr(&c->in), n);
    buf_consume(&c->in, n);
    c->txn->body_left -= n;
    if (c->txn->body_left == 0)
        c->req_done = 1;
    return 1;
}

/* ---- response ------------------------------------------------------------ */

/* Relays a 1xx interim response (not 101) to an HTTP/1.1 client. Returns
 * 1 when consumed, 0 to wait for room in out. */
static int proxy_relay_interim(struct client *c, const struct http_msg *msg, size_t head_len)
{
    if (c->version_minor == 1) {
        struct http_resp_info ri = { .body_kind = HTTP_BODY_NONE, .keep_alive = 1,
                                     .client_version_minor = 1 };
        if (buf_acquire(&c->wc->bufs, &c->out) != 0)
            return 0;
        int w = http_write_response_head(buf_wptr(&c->out), client_space(c, &c->out), msg, &ri);
        if (w < 0)
            return 0;
        c->out.wpos += (uint32_t)w;
    }
    buf_consume(&c->up_in, head_len);
    return 1;
}

/* How the response travels on to the client (RFC 9112 6.3, 7): fills ri
 * and returns whether the client connection stays open. Bodies weir can
 * frame are re-framed (chunked for HTTP/1.1 clients); transfer codings it
 * does not decode are passed on. */
static int proxy_response_framing(const struct client *c, const struct http_msg *msg, int upgrade,
                                  struct http_resp_info *ri)
{
    int ka = c->keep_alive && !c->wc->draining;
    *ri = (struct http_resp_info){ .body_kind = msg->body_kind,
                                   .content_length = msg->content_length,
                                   .client_version_minor = c->version_minor,
                                   .upgrade = upgrade };
    int coded = msg->body_kind == HTTP_BODY_UNTIL_CLOSE && http_msg_find(msg, "transfer-encoding") >= 0;
    if (msg->body_kind == HTTP_BODY_CHUNKED && c->version_minor == 1 && msg->te_other_codings) {
        /* gzip, chunked: weir re-chunks but must keep the other codings */
        ri->pass_transfer_encoding = 1;
    } else if (coded) {
        /* a coding weir does not decode, ending at close: pass it on, close too */
        ri->body_kind = HTTP_BODY_NONE;
        ri->pass_transfer_encoding = 1;
        ka = 0;
    } else if (msg->body_kind == HTTP_BODY_CHUNKED || msg->body_kind == HTTP_BODY_UNTIL_CLOSE) {
        if (c->version_minor == 1) {
            ri->body_kind = HTTP_BODY_CHUNKED;
        } else {
            ri->body_kind = HTTP_BODY_NONE;
            ka = 0;
        }
    }
    ri->keep_alive = ka;
    return ka;
}

/* A response step answered instead of the backend (txn_respond in
 * on_response_head: a cache sending its stored object for a 304, or a
 * stale one for a 5xx). The backend's connection is kept only when its
 * answer had no body; then weir's answer goes out as any step's. */
static int proxy_step_replaces(struct client *c, const struct http_msg *msg, size_t head_len)
{
    int reusable = msg->body_kind == HTTP_BODY_NONE && msg->keep_alive;
    buf_consume(&c->up_in, head_len);
    upstream_detach(c, reusable && buf_len(&c->up_in) == 0);
    timer_set(c, TP_NONE, 0);
    proxy_answer(c);
    return 1;
}

/* A gRPC Trailers-Only answer whose grpc-status the route retries: the
 * attempt is made again (nothing of it reached the client yet). Returns 1
 * when it retried. */
static int proxy_grpc_retry(struct client *c, const struct http_msg *msg)
{
    const struct cfg_retry *r = c->txn->route ? &c->txn->route->retry : NULL;
    int immediate, gs;
    if (!r || !r->enabled || !r->on_grpc || (gs = grpc_trailers_only_status(msg)) <= 0 ||
        !proxy_may_retry(c, UPSTREAM_RETRY_GRPC, gs, &immediate))
        return 0;
    log_info("upstream %s (cluster %s): grpc-status %d, retrying", c->txn->ep->name, c->txn->cl->cfg->name, gs);
    c->txn->failed_ep = c->txn->ep;
    proxy_retry(c, UPSTREAM_RETRY_GRPC, immediate);
    return 1;
}

/* The final response head is in proxy_hw(wc)->msg (head_len bytes of up_in): judge
 * the attempt, retry it or forward the head. Returns 1 on progress. */
static int proxy_final_head(struct client *c, struct http_msg *msg, size_t head_len)
{
    struct wctx *wc = c->wc;
    int upgrade = msg->status == 101 && c->upgrade;
    if (buf_acquire(&wc->bufs, &c->out) != 0)
        return 0;
    if (buf_len(&c->out) > 0 && client_space(c, &c->out) < head_len + 1024)
        return 0; /* let out drain first, so the head surely fits below */
    proxy_record(c, msg->status >= 500 ? CFG_FAILURE_5XX : ENDPOINT_OK);
    metrics_add(c->txn->ep->m_requests, upstream_code_cell(msg->status), 1);
    metrics_observe_ns(c->txn->cl->m_response,
                       (uint64_t)((c->txn->t_up_first - c->txn->t_up_start) * 1e9));
    int immediate;
    if (msg->status >= 500 && proxy_may_retry(c, CFG_FAILURE_5XX, msg->status, &immediate)) {
        log_info("upstream %s (cluster %s): status %d, retrying", c->txn->ep->name, c->txn->cl->cfg->name,
                 msg->status);
        c->txn->failed_ep = c->txn->ep;
        proxy_retry(c, CFG_FAILURE_5XX, immediate);
        return 1;
    }
    if (proxy_grpc_retry(c, msg))
        return 1;
    txn_response_head(c->txn, msg);
    if (c->txn->answer.status && !upgrade)
        return proxy_step_replaces(c, msg, head_len);
    proxy_listener_headers(c, msg);
    struct http_resp_info ri;
    int ka = proxy_response_framing(c, msg, upgrade, &ri);
    ka = proxy_xform_framing(c, msg, msg->body_kind != HTTP_BODY_NONE && !upgrade, &ri);
    int w = http_write_response_head(buf_wptr(&c->out), client_space(c, &c->out), msg, &ri);
    if (w < 0) {
        log_warn("upstream %s: response head too large to forward", c->txn->ep->name);
        client_respond_error(c, 502, c->req_done);
        return 1;
    }
    c->out.wpos += (uint32_t)w;
    c->bytes_out += (uint64_t)w;
    c->txn->status = (uint16_t)msg->status;
    c->resp_started = 1;
    c->keep_alive = (unsigned)ka;
    c->up_reusable = msg->keep_alive && msg->body_kind != HTTP_BODY_UNTIL_CLOSE && !upgrade;
    c->resp_body_kind = (uint8_t)msg->body_kind;
    c->resp_chunked_out = ri.body_kind == HTTP_BODY_CHUNKED;
    c->resp_left = msg->content_length;
    endpoint_observe_latency(c->txn->ep, (uint64_t)((c->txn->t_up_first - c->txn->t_up_start) * 1e6));
    buf_consume(&c->up_in, head_len);
    if (c->req_done)
        buf_release(&wc->bufs, &c->up_out);
    if (upgrade) {
        c->state = CS_TUNNEL;
        c->resp_state = RS_DONE;
        c->req_done = 1;
        timer_set(c, TP_IDLE, c->lst->idle_timeout_ms);
        return 1;
    }
    if (msg->body_kind == HTTP_BODY_CHUNKED) {
        http_chunked_init(&c->resp_chunk);
        c->resp_chunk.keep_trailers = c->resp_chunked_out; /* an HTTP/1.0 client gets none */
    }
    c->resp_state = msg->body_kind == HTTP_BODY_NONE ? RS_DONE : RS_BODY;
    if (c->resp_state == RS_DONE)
        txn_response_end(c->txn);
    return 1;
}

/* Parses the response head in up_in as far as it has come. Returns 1 on
 * progress (a head handled, or an error answered), 0 to wait for bytes. */
static int proxy_response_head(struct client *c)
{
    struct wctx *wc = c->wc;
    struct http_msg *msg = &proxy_hw(wc)->msg;
    struct http_limits lim = { wc->bufs.block_size, wc->bufs.block_size, HTTP_MAX_HEADERS_HARD };
    http_msg_init(msg);
    msg->scan_pos = c->up_scan_pos;
    enum http_method m = c->txn->head_request ? HTTP_METHOD_HEAD : HTTP_METHOD_GET;
    int n = http_parse_response(buf_rptr(&c->up_in), buf_len(&c->up_in), msg, &lim, m);
    if (n == HTTP_PARSE_PARTIAL) {
        c->up_scan_pos = (uint32_t)msg->scan_pos;
        if (!c->u_eof && client_room(c, &c->up_in) > 0)
            return 0;
        log_warn("upstream %s: %s", c->txn->ep->name,
                 c->u_eof ? "closed in the middle of a response head" : "response head too large");
        client_respond_error(c, 502, c->req_done);
        return 1;
    }
    if (n == HTTP_PARSE_ERROR) {
        log_warn("upstream %s: invalid response: %s at byte %zu", c->txn->ep->name, msg->error,
                 msg->error_pos);
        client_respond_error(c, 502, c->req_done);
        return 1;
    }
    c->up_scan_pos = 0;
    if (c->txn->t_up_first == 0)
        c->txn->t_up_first = ev_now(client_loop(c));
    if (msg->status < 200 && !(msg->status == 101 && c->upgrade)) {
        if (msg->status == 101) {
            log_warn("upstream %s: switched protocols without being asked to", c->txn->ep->name);
            client_respond_error(c, 502, 0);
            return 1;
        }
        return proxy_relay_interim(c, msg, (size_t)n);
    }
    return proxy_final_head(c, msg, (size_t)n);
}

/* Appends one run of response body to out, chunk-framed when weir sends
 * the client a chunked body. */
static void proxy_emit_body(struct client *c, const char *p, size_t n)
{
    txn_body(c->txn, p, n);
    struct http_out o = { buf_wptr(&c->out), 0, client_space(c, &c->out), 0 };
    if (c->resp_chunked_out) {
        http_out_hex(&o, n);
        http_out_lit(&o, "\r\n", 2);
    }
    http_out_lit(&o, p, n);
    if (c->resp_chunked_out)
        http_out_lit(&o, "\r\n", 2);
    c->out.wpos += (uint32_t)o.len;
    c->bytes_out += o.len;
}

static void proxy_end_body(struct client *c)
{
    if (c->resp_chunked_out && buf_acquire(&c->wc->bufs, &c->out) == 0) {
        /* with the backend's trailers when they fit (they do once the
         * client took the body: proxy_trailers_max), else without */
        int n = http_trailers_write(&c->resp_trl, buf_wptr(&c->out), client_space(c, &c->out));
        if (n < 0) {
            http_trailers_clear(&c->resp_trl);
            n = http_trailers_write(&c->resp_trl, buf_wptr(&c->out), client_space(c, &c->out));
        }
        if (n > 0) {
            c->out.wpos += (uint32_t)n;
            c->bytes_out += (uint64_t)n;
        }
    }
    http_trailers_clear(&c->resp_trl);
    c->resp_state = RS_DONE;
    txn_response_end(c->txn);
}

/* Room for one more framed run of at least `need` bytes in out (compacting
 * it when that helps), or 0 when the client must read first. */
static size_t proxy_out_room(struct client *c, size_t need)
{
    if (buf_acquire(&c->wc->bufs, &c->out) != 0)
        return 0;
    size_t space = client_space(c, &c->out);
    if (space < PROXY_CHUNK_OVERHEAD + need) {
        if (buf_len(&c->out) == 0 || c->out.rpos == 0)
            return 0;
        buf_compact(&c->out);
        space = client_space(c, &c->out);
        if (space < PROXY_CHUNK_OVERHEAD + need)
            return 0;
    }
    return space - (c->resp_chunked_out ? PROXY_CHUNK_OVERHEAD : 0);
}

/* The transform's output for one call, before framing: one worker's
 * scratch, so a compressed response holds no output buffer of its own. */
#define PROXY_XFORM_SCRATCH 16384
static _Thread_local char proxy_xform_out[PROXY_XFORM_SCRATCH];

/* Runs the body transform once over what xin holds: DATA while more input
 * is at hand, FLUSH when the decoder has nothing more for now (so a slow
 * stream reaches the client as it comes), END once the body ended. Output
 * goes to out framed; nothing is made while out is full, so the backend is
 * not read either (xin and up_in stay full). Returns 1 on progress. */
static int proxy_xform_body(struct client *c)
{
    struct txn *t = c->txn;
    size_t in_n = c->xin.data ? buf_len(&c->xin) : 0;
    int starved = c->static_left == 0 && buf_len(&c->up_in) == 0;
    enum txn_xform_mode mode = c->x_in_done ? TXN_XFORM_END : starved ? TXN_XFORM_FLUSH : TXN_XFORM_DATA;
    if (c->resp_state != RS_BODY || (mode == TXN_XFORM_DATA && in_n == 0) ||
        (mode == TXN_XFORM_FLUSH && in_n == 0 && !c->x_dirty && !c->x_pending))
        return 0;
    size_t room = proxy_out_room(c, TXN_XFORM_MIN_ROOM);
    if (room == 0)
        return 0;
    if (room > PROXY_XFORM_SCRATCH)
        room = PROXY_XFORM_SCRATCH;
    size_t used = 0, made = 0;
    int r = t->xform->run(t->xform_ctx, mode, in_n ? buf_rptr(&c->xin) : NULL, in_n, &used,
                          proxy_xform_out, room, &made);
    if (r < 0) {
        log_warn("route %s: the response body transform failed (%s)", txn_route_name(t), strerror(-r));
        client_close_after_write(c);
        return 1;
    }
    if (used) {
        buf_consume(&c->xin, used);
        c->x_dirty = 1;
    }
    if (made)
        proxy_emit_body(c, proxy_xform_out, made);
    c->x_pending = r == 1;
    if (mode != TXN_XFORM_DATA && r == 0 && buf_len(&c->xin) == 0) {
        c->x_dirty = 0;
        if (mode == TXN_XFORM_END) {
            proxy_end_body(c);
            return 1;
        }
    }
    return used > 0 || made > 0;
}

/* Passes one run of decoded body on: to out, or to xin for the transform. */
static void proxy_sink_body(struct client *c, const char *p, size_t n)
{
    if (c->x_on)
        (void)buf_append(&c->wc->bufs, &c->xin, p, n);
    else
        proxy_emit_body(c, p, n);
}

/* The decoded body ended. */
static void proxy_sink_end(struct client *c)
{
    if (c->x_on)
        c->x_in_done = 1;
    else
        proxy_end_body(c);
}

/* How many decoded body bytes the sink takes now (0: wait for the client). */
static size_t proxy_sink_room(struct client *c)
{
    if (!c->x_on)
        return proxy_out_room(c, 1);
    if (buf_acquire(&c->wc->bufs, &c->xin) != 0)
        return 0;
    if (client_space(c, &c->xin) == 0 && c->xin.rpos > 0)
        buf_compact(&c->xin);
    return client_space(c, &c->xin);
}

/* Decodes the backend's body (its framing) into the sink. */
static int proxy_decode_response_body(struct client *c)
{
    if (c->x_in_done)
        return 0;
    size_t room = proxy_sink_room(c);
    if (room == 0)
        return 0;
    size_t avail = buf_len(&c->up_in);
    switch (c->resp_body_kind) {
    case HTTP_BODY_LENGTH: {
        size_t n = avail < room ? avail : room;
        if (n > c->resp_left)
            n = (size_t)c->resp_left;
        if (n == 0)
            break;
        proxy_sink_body(c, buf_rptr(&c->up_in), n);
        buf_consume(&c->up_in, n);
        c->resp_left -= n;
        if (c->resp_left == 0)
            proxy_sink_end(c);
        return 1;
    }
    case HTTP_BODY_CHUNKED: {
        if (http_chunked_done(&c->resp_chunk)) { /* waiting for room for the trailers */
            if (proxy_out_room(c, http_trailers_bound(&c->resp_trl)) == 0)
                return 0;
            proxy_sink_end(c);
            return 1;
        }
        if (avail == 0)
            break;
        size_t used = 0, off = 0, dlen = 0;
        enum http_chunk_result r = http_chunked_next(&c->resp_chunk, buf_rptr(&c->up_in),
                                                     avail < room ? avail : room, &used, &off, &dlen);
        if (r == HTTP_CHUNK_ERROR) {
            log_warn("upstream %s: bad chunked response body: %s", c->txn->ep->name, c->resp_chunk.error);
            client_close_after_write(c);
            return 1;
        }
        if (r == HTTP_CHUNK_DATA)
            proxy_sink_body(c, buf_rptr(&c->up_in) + off, dlen);
        else if (r == HTTP_CHUNK_TRAILER)
            proxy_keep_trailers(c, &c->resp_trl, buf_rptr(&c->up_in) + off, dlen, c->txn->ep->name);
        buf_consume(&c->up_in, used);
        if (r == HTTP_CHUNK_DONE && (c->x_on || proxy_out_room(c, http_trailers_bound(&c->resp_trl)) != 0))
            proxy_sink_end(c);
        return used > 0 || r == HTTP_CHUNK_DONE;
    }
    case HTTP_BODY_UNTIL_CLOSE: {
        size_t n = avail < room ? avail : room;
        if (n > 0) {
            proxy_sink_body(c, buf_rptr(&c->up_in), n);
            buf_consume(&c->up_in, n);
            return 1;
        }
        if (c->u_eof) {
            proxy_sink_end(c);
            return 1;
        }
        return 0;
    }
    default:
        break;
    }
    if (c->u_eof && c->resp_state == RS_BODY) {
        log_warn("upstream %s: closed in the middle of a response body", c->txn->ep->name);
        client_close_after_write(c);
        return 1;
    }
    return 0;
}

/* Moves the backend's body on, through the transform when there is one. */
static int proxy_move_response_body(struct client *c)
{
    int progress = proxy_decode_response_body(c);
    if (c->x_on && c->state == CS_PROXY && !c->closing)
        progress |= proxy_xform_body(c);
    return progress;
}

static int proxy_process_response(struct client *c)
{
    if (c->resp_state == RS_HEAD) {
        if (buf_len(&c->up_in) == 0) {
            if (c->u_eof) {
                upstream_failed(c, UF_RESET, 0);
                return 1;
            }
            return 0;
        }
        return proxy_response_head(c);
    }
    if (c->resp_state == RS_BODY)
        return proxy_move_response_body(c);
    return 0;
}

/* ---- the pump ------------------------------------------------------------- */

static int client_flush(struct client *c)
{
    if (!c->out.data || buf_len(&c->out) == 0 || !c->c_writable)
        return 0;
    ssize_t n = sock_write(&c->cio, &c->out, &c->c_writable);
    if (n == -EAGAIN || n == 0)
        return 0;
    if (n < 0) {
        c->closing = 1;
        return 0;
    }
    if (c->wl) /* NULL on a lane: its h2 connection counts the bytes */
        metrics_add(c->wl->m_bytes_out, 0, (uint64_t)n);
    if (buf_len(&c->out) == 0)
        buf_release(&c->wc->bufs, &c->out);
    if (c->state != CS_CLOSING && c->state != CS_HEAD)
        ev_timer_again(client_loop(c), &c->timer);
    return 1;
}

/* Reads from the client when the state wants bytes and there is room.
 * Returns 1 on progress; sets c_eof or closing. */
static int client_fill(struct client *c)
{
    if (!c->c_readable || c->c_eof || client_room(c, &c->in) == 0)
        return 0;
    ssize_t n = sock_read(c, &c->cio, &c->in, &c->c_readable);
    if (n == -EAGAIN || n == -ENOBUFS)
        return 0;
    if (n == 0) {
        c->c_eof = 1;
        return 1;
    }
    if (n < 0) {
        c->closing = 1;
        return 0;
    }
    if (c->wl)
        metrics_add(c->wl->m_bytes_in, 0, (uint64_t)n);
    if (c->state == CS_PROXY && !c->req_done)
        ev_timer_again(client_loop(c), &c->timer);
    return 1;
}

static int upstream_fill(struct client *c)
{
    if (c->up_state != US_ACTIVE || !c->u_readable || c->u_eof || client_room(c, &c->up_in) == 0)
        return 0;
    ssize_t n = sock_read(c, &c->uio, &c->up_in, &c->u_readable);
    if (n == -EAGAIN || n == -ENOBUFS)
        return 0;
    if (n <= 0) {
        c->u_eof = 1; /* a reset counts as an end: the response step decides */
        return 1;
    }
    if (c->resp_state != RS_HEAD || c->req_done)
        ev_timer_again(client_loop(c), &c->timer);
    return 1;
}

static int upstream_flush(struct client *c)
{
    if (c->up_state != US_ACTIVE || !c->u_writable || !c->up_out.data || buf_len(&c->up_out) == 0)
        return 0;
    ssize_t n = sock_write(&c->uio, &c->up_out, &c->u_writable);
    if (n == -EAGAIN || n == 0)
        return 0;
    if (n < 0) {
        if (c->resp_state == RS_HEAD && !c->resp_started) {
            upstream_failed(c, UF_RESET, -(int)n);
        } else {
            c->u_eof = 1;
        }
        return 1;
    }
    if (c->req_done && buf_len(&c->up_out) == 0 && c->timer_phase == TP_BODY)
        upstream_arm_timer(c); /* per-try timeout, within the route's deadline */
    return 1;
}

static void proxy_finish_request(struct client *c)
{
    client_log_access(c);
    c->static_body = NULL;
    c->static_left = 0;
    c->src_on = 0;
    buf_release(&c->wc->bufs, &c->xin);
    c->x_on = 0;
    int reusable = c->up_reusable && c->resp_state == RS_DONE;
    upstream_detach(c, reusable);
    endpoint_release(c);
    proxy_request_end(c);
    proxy_txn_detach(c);
    c->scan_pos = 0;
    /* what follows on this connection is a new request: weir may answer it */
    c->resp_started = 0;
    c->logged = 0;
    /* a client that half-closed still gets answers to what it sent */
    if (!c->keep_alive || (c->c_eof && buf_len(&c->in) == 0) || c->wc->draining) {
        client_close_after_write(c);
        return;
    }
    c->state = CS_HEAD;
    buf_release_if_empty(&c->wc->bufs, &c->in);
    if (buf_len(&c->in) > 0)
        timer_set(c, TP_HEADER, c->lst->header_timeout_ms);
    else
        timer_set(c, TP_IDLE, c->lst->idle_timeout_ms);
}

/* HTTP/2 on a new connection (ALPN h2, or the h2c preface): the stream
 * and the bytes read go to http2/h2_server.c and this session ends.
 * Returns 1 when handed over, -EAGAIN while the bytes cannot tell yet, 0
 * for HTTP/1.1. */
static int proxy_h2_handover(struct client *c)
{
    int r = h2_server_detect(&c->cio, buf_rptr(&c->in), buf_len(&c->in));
    if (r == -EAGAIN && !c->c_eof)
        return -EAGAIN;
    c->h2_checked = 1;
    if (r <= 0)
        return 0;
    h2_server_adopt(c->wc, c->wl, c->snap, c->lst, &c->cio, c->client_ip, buf_rptr(&c->in), buf_len(&c->in));
    sio_init_closed(&c->cio); /* the h2 connection owns it (or closed it) */
    c->closing = 1;
    return 1;
}

static int proxy_step_head(struct client *c)
{
    int progress = client_fill(c);
    if (c->closing)
        return 0;
    if (buf_len(&c->in) == 0) {
        if (c->c_eof)
            c->closing = 1;
        return progress;
    }
    if (c->lst->http2 && !c->h2_checked) {
        int r = proxy_h2_handover(c);
        if (r != 0)
            return r > 0 ? 0 : progress;
    }
    if (!c->txn && proxy_txn_attach(c) != 0) {
        log_warn("client %s: out of memory for a request; closing", c->client_ip);
        c->closing = 1;
        return 0;
    }
    if (c->timer_phase == TP_IDLE)
        timer_set(c, TP_HEADER, c->lst->header_timeout_ms);
    struct http_msg *msg = &proxy_hw(c->wc)->msg;
    struct http_limits lim = { c->lst->max_request_line, c->lst->max_header_bytes, c->lst->max_headers };
    if (lim.max_header_bytes > c->wc->bufs.block_size)
        lim.max_header_bytes = c->wc->bufs.block_size;
    http_msg_init(msg);
    msg->scan_pos = c->scan_pos;
    int n = http_parse_request(buf_rptr(&c->in), buf_len(&c->in), msg, &lim);
    if (n == HTTP_PARSE_PARTIAL) {
        c->scan_pos = (uint32_t)msg->scan_pos;
        if (c->c_eof) {
            c->closing = 1;
            return 0;
        }
        if (client_space(c, &c->in) == 0) {
            if (c->in.rpos > 0) {
                buf_compact(&c->in);
                c->scan_pos = 0;
                return 1;
            }
            c->keep_alive = 0;
            client_respond_error(c, 431, 0);
            return 1;
        }
        return progress;
    }
    c->scan_pos = 0;
    if (n == HTTP_PARSE_ERROR) {
        log_info("client %s: bad request: %s at byte %zu", c->client_ip, msg->error, msg->error_pos);
        c->keep_alive = 0;
        c->txn->t_start = ev_now(client_loop(c));
        c->txn->request_id[0] = 0;
        free(c->log_line);
        c->log_line = NULL;
        client_respond_error(c, msg->error_status ? msg->error_status : 400, 0);
        return 1;
    }
    proxy_start_request(c, msg, (size_t)n);
    return 1;
}

/* A txn_body_source answer: the body is pulled as the client takes it. */
#define PROXY_SOURCE_SCRATCH 16384
static _Thread_local char proxy_source_scratch[PROXY_SOURCE_SCRATCH];

/* The answer's head as the steps see it: a known length, or chunked. */
static void proxy_source_head(struct http_msg *resp, const struct txn_answer *a)
{
    resp->body_kind = a->source_len >= 0 ? HTTP_BODY_LENGTH : HTTP_BODY_CHUNKED;
    resp->content_length = a->source_len >= 0 ? (uint64_t)a->source_len : 0;
    resp->has_content_length = a->source_len >= 0;
    if (a->source_len == 0)
        resp->body_kind = HTTP_BODY_NONE;
}

/* The framing to the client of a source's body: its length when known,
 * else chunked to HTTP/1.1 and until close to HTTP/1.0. */
static void proxy_source_framing(struct client *c, const struct http_msg *resp,
                                 struct http_resp_info *ri)
{
    if (resp->body_kind != HTTP_BODY_CHUNKED) {
        ri->content_length = resp->content_length;
        return;
    }
    ri->body_kind = c->version_minor == 1 ? HTTP_BODY_CHUNKED : HTTP_BODY_NONE;
    if (c->version_minor != 1)
        ri->keep_alive = 0;
}

/* proxy_answer's end for a source's body: nothing is pulled yet (the body
 * steps see it as it is sent, like a backend's). */
static void proxy_source_start(struct client *c, const struct http_resp_info *ri)
{
    /* no write progress (the client stalled, or the source, whose own
     * producer has its timeouts) for client_idle closes; not the timer a
     * waiting step armed, which writes would otherwise re-arm */
    timer_set(c, TP_SOURCE, c->lst->idle_timeout_ms);
    c->src_on = 1;
    c->resp_state = RS_BODY;
    c->resp_body_kind = HTTP_BODY_LENGTH;
    c->resp_left = 0;
    c->resp_chunked_out = ri->body_kind == HTTP_BODY_CHUNKED;
    c->req_done = 1;
    c->up_reusable = 0;
}

/* Pulls what the answer's source has into the sink while the client
 * takes it. Returns 1 on progress. */
static int proxy_move_source_body(struct client *c)
{
    const struct txn_answer *a = &c->txn->answer;
    int progress = 0;
    while (c->resp_state == RS_BODY && !c->x_in_done) {
        size_t room = proxy_sink_room(c);
        if (room == 0)
            break;
        long n = a->source->read(a->source_ctx, proxy_source_scratch,
                                 room < PROXY_SOURCE_SCRATCH ? room : PROXY_SOURCE_SCRATCH);
        if (n == TXN_SOURCE_END) {
            proxy_sink_end(c);
            progress = 1;
            break;
        }
        if (n < 0) {
            log_info("route %s: the answer's body was cut short (%s)", txn_route_name(c->txn),
                     strerror((int)-n));
            client_close_after_write(c);
            return 1;
        }
        if (n == 0)
            break;
        proxy_sink_body(c, proxy_source_scratch, (size_t)n);
        progress = 1;
    }
    if (c->x_on && c->resp_state == RS_BODY)
        progress |= proxy_xform_body(c);
    return progress;
}

void proxy_txn_source_ready(struct txn *t)
{
    struct client *c = t->session;
    if (c->src_on && c->resp_state == RS_BODY)
        client_pump(c);
}

static int proxy_step_proxy(struct client *c)
{
    int progress = 0;
    progress |= client_fill(c);
    if (c->c_eof && !c->req_done) {
        log_info("client %s: closed before sending the whole request body", c->client_ip);
        c->closing = 1;
        return 0;
    }
    progress |= proxy_move_request_body(c);
    if (c->state != CS_PROXY)
        return 1;
    if (c->static_left || (c->x_on && c->static_body) || c->src_on)
        progress |= proxy_move_static_body(c);
    progress |= upstream_flush(c);
    if (c->state != CS_PROXY)
        return 1;
    progress |= upstream_fill(c);
    /* head and body in one go, so a small response leaves in one write */
    while (c->state == CS_PROXY && proxy_process_response(c))
        progress = 1;
    if (c->state != CS_PROXY)
        return 1;
    if (c->resp_state == RS_DONE && c->req_done) {
        proxy_finish_request(c);
        return 1;
    }
    if (c->resp_state == RS_DONE && !c->req_done) {
        /* the backend answered before the body ended: it cannot be
         * resynchronised, so finish the answer and close */
        c->keep_alive = 0;
        c->req_done = 1;
        c->up_reusable = 0;
        proxy_finish_request(c);
        return 1;
    }
    return progress;
}

/* While a step waits: only notice the client going away (as nginx does,
 * a client that closes its side abandons the request). */
/* ---- a target that takes the whole body (queue) ---- */

#define PROXY_MAX_TARGET_BODY (8u << 20) /* without limits.body */

/* The head is kept (the body moves through in), then CS_BODY reads the
 * body into the transaction. */
static void proxy_collect_body(struct client *c, size_t head_len)
{
    struct txn *t = c->txn;
    if (head_len && txn_keep_head(t, buf_rptr(&c->in), head_len) != 0) {
        log_warn("client %s: out of memory keeping a request head", c->client_ip);
        buf_consume(&c->in, head_len);
        client_respond_error(c, 503, 0);
        return;
    }
    buf_consume(&c->in, head_len);
    if (t->body_kind == HTTP_BODY_CHUNKED)
        http_chunked_init(&c->chunk);
    c->state = CS_BODY;
    timer_set(c, TP_BODY, c->lst->body_timeout_ms);
}

/* Moves body bytes from in into the transaction. Returns 1 on progress,
 * -1 when it answered an error; sets *done at the body's end. */
static int proxy_take_body(struct client *c, int *done)
{
    struct txn *t = c->txn;
    uint64_t max = c->lst->max_body_bytes ? c->lst->max_body_bytes : PROXY_MAX_TARGET_BODY;
    size_t used = buf_len(&c->in), off = 0, dlen = used;
    enum http_chunk_result r = HTTP_CHUNK_DATA;
    if (t->body_kind == HTTP_BODY_CHUNKED) {
        r = http_chunked_next(&c->chunk, buf_rptr(&c->in), buf_len(&c->in), &used, &off, &dlen);
        if (r == HTTP_CHUNK_ERROR) {
            log_info("client %s: bad chunked request body: %s", c->client_ip, c->chunk.error);
            client_respond_error(c, 400, 0);
            return -1;
        }
        if (r != HTTP_CHUNK_DATA)
            dlen = 0;
        *done = r == HTTP_CHUNK_DONE;
    } else {
        if (dlen > t->body_left)
            dlen = used = (size_t)t->body_left;
        t->body_left -= dlen;
        *done = t->body_left == 0;
    }
    int rc = txn_body_append(t, buf_rptr(&c->in) + off, dlen, max);
    if (rc < 0) {
        client_respond_error(c, rc == -EFBIG ? 413 : 503, 0);
        return -1;
    }
    buf_consume(&c->in, used);
    return used > 0 || *done;
}

static int proxy_step_body(struct client *c)
{
    int progress = client_fill(c), done = 0;
    while (!done && (buf_len(&c->in) > 0 || c->txn->body_left == 0)) {
        int r = proxy_take_body(c, &done);
        if (r < 0)
            return 1;
        if (r == 0)
            break;
        progress = 1;
    }
    if (!done) {
        if (c->c_eof)
            c->closing = 1;
        else if (progress)
            timer_set(c, TP_BODY, c->lst->body_timeout_ms);
        return progress;
    }
    ev_timer_stop(client_loop(c), &c->timer);
    c->txn->route->target->start(c->txn, c->txn->route->target_cfg);
    proxy_answer(c);
    return 1;
}

static int proxy_step_wait(struct client *c)
{
    int progress = client_fill(c);
    if (c->c_eof && !c->closing) {
        log_info("client %s: closed while its request waited on route %s", c->client_ip,
                 txn_route_name(c->txn));
        c->closing = 1;
    }
    return progress;
}

/* After a 101: bytes flow both ways untouched until either side closes. */
static int proxy_step_tunnel(struct client *c)
{
    int progress = client_fill(c);
    if (buf_len(&c->in) > 0 && buf_acquire(&c->wc->bufs, &c->up_out) == 0) {
        size_t n = buf_len(&c->in), space = client_space(c, &c->up_out);
        if (c->up_out.rpos == c->up_out.wpos)
            c->up_out.rpos = c->up_out.wpos = 0;
        if (n > space)
            n = space;
        if (n) {
            (void)buf_append(&c->wc->bufs, &c->up_out, buf_rptr(&c->in), n);
            buf_consume(&c->in, n);
            progress = 1;
        }
    }
    progress |= upstream_flush(c);
    progress |= upstream_fill(c);
    if (buf_len(&c->up_in) > 0 && buf_acquire(&c->wc->bufs, &c->out) == 0) {
        size_t n = buf_len(&c->up_in), space = client_space(c, &c->out);
        if (n > space)
            n = space;
        if (n) {
            (void)buf_append(&c->wc->bufs, &c->out, buf_rptr(&c->up_in), n);
            buf_consume(&c->up_in, n);
            c->bytes_out += n;
            progress = 1;
        }
    }
    if (progress)
        ev_timer_again(client_loop(c), &c->timer);
    if ((c->c_eof && buf_len(&c->in) == 0) || (c->u_eof && buf_len(&c->up_in) == 0)) {
        client_log_access(c);
        client_close_after_write(c);
        return 1;
    }
    return progress;
}

/* While closing: send what is left, then half-close and drain for a while. */
static int proxy_step_closing(struct client *c)
{
    if (buf_len(&c->out) > 0)
        return 0;
    if (!c->linger) {
        c->linger = 1;
        (void)sio_shutdown(&c->cio);
    }
    char scratch[4096];
    for (int i = 0; i < 16 && c->c_readable; i++) {
        ssize_t n = sio_read(&c->cio, scratch, sizeof(scratch));
        if (n == 0 || (n < 0 && n != -EAGAIN)) {
            c->closing = 1;
            return 0;
        }
        if (n == -EAGAIN)
            c->c_readable = 0;
    }
    return 0;
}

static void client_update_watchers(struct client *c)
{
    struct ev_loop *loop = client_loop(c);
    int cev = 0, uev = 0;
    int out_pending = c->out.data && buf_len(&c->out) > 0;
    switch (c->state) {
    case CS_HEAD:
        cev = EV_READ;
        break;
    case CS_WAIT:
    case CS_PROXY:
    case CS_TUNNEL:
    case CS_BODY:
        if (!c->c_eof && client_room(c, &c->in) > 0)
            cev = EV_READ;
        break;
    case CS_CLOSING:
        cev = out_pending ? 0 : EV_READ;
        break;
    }
    if (!c->lane) { /* a lane has no fd: it wakes the session itself (proxy_lane_wake) */
        cev = sio_events(&c->cio, cev != 0, out_pending && !c->c_writable);
        io_update(loop, &c->io, c->cio.fd, cev, c->io.fd == c->cio.fd && c->c_registered);
        c->c_registered = 1;
    }

    if (c->up_state == US_CONNECTING) {
        uev = EV_WRITE;
    } else if (c->up_state == US_ACTIVE) {
        uev = sio_events(&c->uio, !c->u_eof && client_room(c, &c->up_in) > 0,
                         c->up_out.data && buf_len(&c->up_out) > 0 && !c->u_writable);
    }
    if (sio_is_open(&c->uio))
        io_update(loop, &c->up_io, c->uio.fd, uev, c->reused || c->up_registered);
    c->up_registered = sio_is_open(&c->uio);
}

static void client_pump(struct client *c)
{
    int round;
    for (round = 0; round < 64 && !c->closing; round++) {
        int progress = 0;
        switch (c->state) {
        case CS_HEAD:
            progress = proxy_step_head(c);
            break;
        case CS_WAIT:
            progress = proxy_step_wait(c);
            break;
        case CS_BODY:
            progress = proxy_step_body(c);
            break;
        case CS_PROXY:
            progress = proxy_step_proxy(c);
            break;
        case CS_TUNNEL:
            progress = proxy_step_tunnel(c);
            break;
        case CS_CLOSING:
            progress = proxy_step_closing(c);
            break;
        }
        progress |= client_flush(c);
        if (!progress)
            break;
    }
    if (round == 64) {
        /* fairness: yield to other sessions; the watchers (level-triggered)
         * bring us back to what is still ready */
        c->c_readable = c->c_writable = c->u_readable = c->u_writable = 0;
        if (c->lane && !c->closing) /* no level-triggered watcher for a lane: come back */
            ev_feed_event(client_loop(c), &c->io, EV_READ | EV_WRITE);
    }
    if (c->closing) {
        client_free(c);
        return;
    }
    client_update_watchers(c);
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    proxy_note_ready(&c->cio, revents, &c->c_readable, &c->c_writable);
    client_pump(c);
}

/* No (complete) answer in time: retry when allowed, else 504. */
static void proxy_response_timeout(struct client *c)
{
    int immediate;
    if (proxy_deadline_left(c) == 0) {
        log_warn("upstream %s (cluster %s): route deadline of %" PRIu64 " ms passed",
                 c->txn->ep ? c->txn->ep->name : "?", c->txn->cl ? c->txn->cl->cfg->name : "?", c->txn->route->timeout_ms);
        proxy_record(c, CFG_FAILURE_TIMEOUT);
        client_respond_error(c, 504, 0);
        return;
    }
    int retry = !c->resp_started && proxy_may_retry(c, CFG_FAILURE_TIMEOUT, 0, &immediate);
    log_warn("upstream %s (cluster %s): no response in time%s", c->txn->ep ? c->txn->ep->name : "?",
             c->txn->cl ? c->txn->cl->cfg->name : "?", retry ? ", retrying" : "");
    proxy_record(c, CFG_FAILURE_TIMEOUT);
    if (retry) {
        c->txn->failed_ep = c->txn->ep;
        proxy_retry(c, CFG_FAILURE_TIMEOUT, immediate);
        return;
    }
    client_respond_error(c, 504, 0);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = w->data;
    ev_timer_stop(loop, w);
    switch (c->timer_phase) {
    case TP_HEADER:
        if (buf_len(&c->in) > 0) {
            log_info("client %s: request head not complete after %" PRIu64 " ms", c->client_ip,
                     c->lst->header_timeout_ms);
            c->txn->t_start = ev_now(loop);
            c->keep_alive = 0;
            client_respond_error(c, 408, 0);
        } else {
            c->closing = 1;
        }
        break;
    case TP_BODY:
        log_info("client %s: request body stalled for %" PRIu64 " ms", c->client_ip,
                 c->lst->body_timeout_ms);
        client_respond_error(c, 408, 0);
        break;
    case TP_CONNECT:
        if (proxy_deadline_left(c) == 0) {
            log_warn("route deadline (%" PRIu64 " ms) passed while connecting", c->txn->route->timeout_ms);
            client_respond_error(c, 504, 0);
            break;
        }
        upstream_failed(c, UF_TIMEOUT_CONNECT, 0);
        break;
    case TP_RESPONSE:
        proxy_response_timeout(c);
        break;
    case TP_BACKOFF:
    case TP_QUEUE:
        upstream_connect(c);
        break;
    case TP_STEP:
        log_warn("route %s: deadline of %" PRIu64 " ms passed while a step waited",
                 txn_route_name(c->txn), c->txn->route ? c->txn->route->timeout_ms : 0);
        txn_end(c->txn);
        client_respond_error(c, 504, 0);
        break;
    case TP_IDLE:
    case TP_LINGER:
    case TP_SOURCE:
    default:
        c->closing = 1;
        break;
    }
    client_pump(c);
}

/* ---- accept / drain ------------------------------------------------------ */

static struct client *client_get(struct wctx *wc)
{
    struct client *c = proxy_hw(wc)->free_clients;
    if (c) {
        proxy_hw(wc)->free_clients = c->next;
        proxy_hw(wc)->n_free_clients--;
    } else {
        c = malloc(sizeof(*c));
        if (!c)
            return NULL;
    }
    memset(c, 0, sizeof(*c));
    return c;
}

static void client_begin(struct client *c, struct snapshot *snap, const struct cfg_listener *lst,
                         struct wlistener *wl, const char *ip);

void proxy_start(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer)
{
    if (!proxy_hw(wc)) { /* worker_init failed */
        close(fd);
        return;
    }
    struct client *c = client_get(wc);
    if (!c) {
        close(fd);
        return;
    }
    c->wc = wc;
    const struct cfg_listener *lst = &wc->snap->cfg->listeners[wl->index];
    if (lst->tls) {
        if (tls_accept_sio(lst->tls, fd, &c->cio) != 0) { /* fd closed */
            c->next = proxy_hw(wc)->free_clients;
            proxy_hw(wc)->free_clients = c;
            proxy_hw(wc)->n_free_clients++;
            return;
        }
    } else {
        sio_init_plain(&c->cio, fd);
    }
    char addr[64];
    units_format_addr((const struct sockaddr *)peer, addr, sizeof(addr));
    /* client_ip is the address without the port */
    char *colon = strrchr(addr, ':');
    if (colon)
        *colon = 0;
    const char *ip = addr[0] == '[' ? addr + 1 : addr;
    size_t iplen = strlen(ip);
    if (iplen && ip[iplen - 1] == ']')
        iplen--;
    if (iplen >= sizeof(c->client_ip))
        iplen = sizeof(c->client_ip) - 1;
    char client_ip[sizeof(c->client_ip)];
    memcpy(client_ip, ip, iplen);
    client_ip[iplen] = 0;
    server_conn_open(wc, wl);
    client_begin(c, wc->snap, lst, wl, client_ip);
}

int proxy_start_lane(struct wctx *wc, struct snapshot *snap, const struct cfg_listener *lst, const struct sio *s,
                     const char *client_ip, const char *subject, void **handle)
{
    struct client *c = proxy_hw(wc) ? client_get(wc) : NULL;
    if (!c) {
        struct sio dead = *s;
        sio_close(&dead);
        return -ENOMEM;
    }
    c->wc = wc;
    c->lane = 1;
    c->h2_checked = 1;
    c->lane_owner = handle;
    c->lane_subject = subject;
    *handle = c;
    c->cio = *s;
    client_begin(c, snap, lst, NULL, client_ip);
    return 0;
}

void proxy_lane_wake(void *handle, int events)
{
    struct client *c = handle;
    ev_feed_event(client_loop(c), &c->io, events);
}

void proxy_lane_end(void *handle)
{
    struct client *c = handle;
    c->lane_owner = NULL;
    c->closing = 1;
    client_pump(c);
}

void proxy_lane_forget(void *handle)
{
    struct client *c = handle;
    c->lane_owner = NULL;
    c->lane_subject = NULL; /* the h2 connection's: it goes too */
    c->cio.impl = NULL; /* sio_close leaves the lane alone */
}

/* The rest of a session's start, over c->cio: counted (or not) by the caller. */
static void client_begin(struct client *c, struct snapshot *snap, const struct cfg_listener *lst,
                         struct wlistener *wl, const char *ip)
{
    struct wctx *wc = c->wc;
    int fd = c->cio.fd;
    sio_init_closed(&c->uio);
    c->snap = snap;
    snapshot_ref(c->snap);
    c->lst = lst;
    c->wl = wl;
    c->keep_alive = 1;
    c->c_writable = 1;
    c->c_readable = 1; /* data often arrives with the handshake: try at once */
    snprintf(c->client_ip, sizeof(c->client_ip), "%s", ip);
    ev_io_init(&c->io, client_io_cb, fd, EV_READ);
    c->io.data = c;
    ev_io_init(&c->up_io, upstream_io_cb, 0, EV_READ);
    c->up_io.data = c;
    ev_init(&c->timer, client_timer_cb);
    c->timer.data = c;
    c->next = proxy_hw(wc)->clients;
    if (proxy_hw(wc)->clients)
        proxy_hw(wc)->clients->prev = c;
    proxy_hw(wc)->clients = c;
    c->state = CS_HEAD;
    timer_set(c, TP_HEADER, c->lst->header_timeout_ms);
    client_pump(c);
}

void proxy_drain(struct wctx *wc)
{
    struct client *c = proxy_hw(wc)->clients;
    while (c) {
        struct client *next = c->next;
        if (c->state == CS_HEAD && buf_len(&c->in) == 0 && (!c->out.data || buf_len(&c->out) == 0)) {
            c->closing = 1;
            client_pump(c);
        } else {
            c->keep_alive = 0;
        }
        c = next;
    }
}

/* ---- what a transaction borrows from its session ------------------------- */

#define PROXY_MAX_FREE_HEADS 256

struct txn_head *proxy_head_get(struct txn *t)
{
    struct wctx *wc = t->wc;
    struct txn_head *h = proxy_hw(wc)->free_heads;
    if (h) {
        proxy_hw(wc)->free_heads = h->next;
        proxy_hw(wc)->n_free_heads--;
    } else if (!(h = malloc(sizeof(*h)))) {
        return NULL;
    }
    memset(&h->bytes, 0, sizeof(h->bytes));
    h->next = NULL;
    return h;
}

void proxy_head_put(struct txn *t, struct txn_head *h)
{
    struct wctx *wc = t->wc;
    if (proxy_hw(wc)->n_free_heads >= PROXY_MAX_FREE_HEADS) {
        free(h);
        return;
    }
    h->next = proxy_hw(wc)->free_heads;
    proxy_hw(wc)->free_heads = h;
    proxy_hw(wc)->n_free_heads++;
}

struct ev_loop *txn_loop(const struct txn *t)
{
    return t->wc->worker.loop;
}

const char *txn_client_ip(const struct txn *t)
{
    return t->session->client_ip;
}

const char *txn_request_id(const struct txn *t)
{
    return t->request_id;
}

const char *txn_listener_name(const struct txn *t)
{
    return t->session->lst->name;
}

struct cluster *txn_cluster(const struct txn *t, const struct cfg_cluster *cc)
{
    const struct snapshot *snap = t->session->snap;
    return &snap->clusters[cc - snap->cfg->clusters];
}

struct snapshot *txn_snapshot_ref(const struct txn *t)
{
    snapshot_ref(t->session->snap);
    return t->session->snap;
}

struct pool *txn_upstream_pool(const struct txn *t)
{
    return &proxy_hw(t->wc)->upstreams;
}

struct buf_pool *txn_buf_pool(const struct txn *t)
{
    return &t->wc->bufs;
}

void **proxy_h2_slot(struct wctx *wc)
{
    return proxy_hw(wc) ? &proxy_hw(wc)->h2 : NULL;
}

unsigned txn_worker_id(const struct txn *t)
{
    return t->wc->worker.id;
}

int proxy_worker_init(struct wctx *wc)
{
    struct http_worker *hw = calloc(1, sizeof(*hw));
    if (!hw)
        return -ENOMEM;
    pool_init(&hw->upstreams, wc->worker.loop);
    wc->proto[CFG_PROTOCOL_HTTP] = hw;
    return 0;
}

void proxy_worker_stop(struct wctx *wc)
{
    if (proxy_hw(wc)) {
        pool_destroy(&proxy_hw(wc)->upstreams); /* idle connections watch the ending loop */
        h2up_worker_free(&proxy_hw(wc)->h2up);
    }
}

void proxy_worker_cleanup(struct wctx *wc)
{
    struct http_worker *hw = proxy_hw(wc);
    if (!hw)
        return;
    /* sessions first: ending them returns transactions and heads to the lists */
    while (hw->clients) {
        hw->clients->closing = 1;
        client_free(hw->clients);
    }
    while (hw->free_clients) {
        struct client *next = hw->free_clients->next;
        free(hw->free_clients);
        hw->free_clients = next;
    }
    while (hw->free_txns) {
        struct txn *next = hw->free_txns->free_next;
        free(hw->free_txns);
        hw->free_txns = next;
    }
    txn_worker_cleanup(&hw->free_heads);
    free(hw);
    wc->proto[CFG_PROTOCOL_HTTP] = NULL;
}

/* h2_up: HTTP/2 to upstreams, one HTTP/1.1 exchange per HTTP/2 stream.
 *
 *   proxy session ──HTTP/1.1──> lane (socketpair) ──HEADERS/DATA──┐
 *        ▲                        │ head parsed, body de-framed    ▼
 *        └──HTTP/1.1 answer───────┘ <──:status, DATA, trailers── conn (nghttp2
 *                                                               client session)
 *   group (per worker, per address and TLS context):
 *        conns[] ── each carries up to SETTINGS_MAX_CONCURRENT_STREAMS lanes
 *        waiting ── lanes whose request waits for a stream slot
 *
 * A lane is the proxy's "connection": the proxy writes a request, reads the
 * answer and, when the exchange ended cleanly, pools the lane like any
 * socket; the lane waits for the next request. The answer is rebuilt as
 * HTTP/1.1: Content-Length passed through, else chunked, and the answer's
 * trailer HEADERS become the chunked trailer section.
 *
 * A stream goes to the first connection of the group with a free slot and
 * no GOAWAY; when all are full a new one is opened while the group holds
 * fewer than max_conns, else the lane waits for a slot (the proxy's
 * response timeout bounds that wait; a connection not set up within the
 * cluster's connect timeout fails the requests waiting for it). A connection that got GOAWAY takes
 * no new streams and closes once its last one ends; idle ones close after
 * idle_ms. A stream refused by the server (REFUSED_STREAM, or above a
 * GOAWAY's last stream id) never reached the application: its request is
 * sent again on another connection while its body is still held (at most
 * H2UP_REPLAY_MAX bytes). Any other loss closes the lane, so the proxy
 * sees a reset and applies its own retry rules (idempotent methods).
 *
 * Back-pressure: a lane's decoded request body waiting for DATA frames and
 * its answer bytes waiting for the proxy are each held below H2UP_HWM: the
 * lane stops reading the proxy's bytes, and received DATA is given back to
 * the server's windows (nghttp2_session_consume) only once the proxy took
 * it. It must never free a lane or connection inside an nghttp2 callback:
 * they are marked dead and reaped after the callback returns. */
#include "http2/h2_up.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/http_parser.h"
#include "http/http_trailers.h"
#include "http/proxy.h"
#include "http2/h2_internal.h"
#include "server/server.h"
#include "tls/tls.h"

#define H2UP_HWM (64u << 10)        /* bytes held per lane direction */
#define H2UP_REPLAY_MAX (64u << 10) /* request body kept for a refused stream's replay */
#define H2UP_MAX_HEAD (64u << 10)   /* answer header or trailer fields per stream */
#define H2UP_MAX_STREAMS 256u       /* streams per connection whatever the server allows */
#define H2UP_MAX_REPLAYS 3          /* a request refused this often is given up */
#define H2UP_STREAM_WINDOW (256u << 10)
#define H2UP_CONN_WINDOW (1u << 20)
#define H2UP_FAIL_HOLD_S 1.0 /* new requests fail at once this long after a failed set-up */

enum h2up_lane_state {
    L_IDLE,    /* no request: waiting for the proxy's next head */
    L_WAITING, /* head complete, waiting for a stream slot */
    L_STREAM,  /* carried by a stream */
    L_DONE,    /* the stream ended; the answer drains to the proxy */
};

struct h2up_group;

struct h2up_conn {
    struct h2up_conn *prev, *next;
    struct h2up_group *g;
    struct sio sio;
    ev_io io;
    ev_timer timer; /* connect deadline, then idle timeout */
    nghttp2_session *ng;
    struct h2_bytes out; /* frames not yet written */
    unsigned n_streams;
    unsigned connecting : 1, handshaking : 1, established : 1, goaway : 1, dead : 1, watching : 1;
    int io_events;
};

struct h2up_lane {
    struct h2up_lane *prev, *next; /* group->lanes */
    struct h2up_lane *wnext;       /* group->waiting */
    struct h2up_group *g;
    struct h2up_conn *conn; /* while L_STREAM */
    int32_t sid;
    int fd;
    ev_io io;
    int io_events;
    enum h2up_lane_state state;
    struct h2_bytes in;   /* request bytes from the proxy, not yet de-framed */
    struct h2_bytes head; /* the request head (re-parsed for each submit) */
    struct h2_bytes body; /* request body not yet sent (or kept for a replay) */
    size_t body_sent;     /* of body: bytes sent while kept for a replay */
    uint64_t body_total;
    struct h2_bytes out;          /* answer bytes for the proxy */
    struct h2_bytes fields;       /* answer fields of the block being received */
    struct h2_bytes req_trailers; /* the request's chunked trailer section ("\r\n0\r\n" + fields) */
    struct http_chunked chunk;
    uint64_t req_left;
    size_t unconsumed; /* DATA bytes not yet given back to the windows */
    int status;
    unsigned replays;
    uint8_t req_kind;
    unsigned req_done : 1, is_head : 1, head_out : 1, chunked : 1, no_body : 1, resp_done : 1;
    unsigned replayable : 1, deferred : 1, dead : 1, waiting : 1, eof : 1, need_parse : 1;
};

struct h2up_group {
    struct h2up_group *next;
    struct h2up_worker *w;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct tls_client *tls;
    unsigned max_conns;
    uint64_t idle_ms;    /* an idle connection closes after this */
    uint64_t connect_ms; /* connect and TLS handshake of one connection */
    ev_tstamp failed_at; /* the last connection set-up failed then (0: it did not) */
    struct h2up_conn *conns;
    unsigned n_conns;
    struct h2up_lane *lanes;
    struct h2up_lane *waiting, *waiting_tail;
    int need_pass; /* a lane has request bytes to de-frame again */
    int dirty;     /* a lane died or must be started again: scan them */
};

struct h2up_worker {
    struct ev_loop *loop;
    struct h2up_group *groups;
    int in_reap;
};

static char h2up_h2c_tag;
static nghttp2_session_callbacks *h2up_cbs;

static void h2up_lane_update(struct h2up_lane *l);
static void h2up_conn_pump(struct h2up_conn *hc);
static void h2up_group_reap(struct h2up_group *g);
static void h2up_lane_start(struct h2up_lane *l);

const void *h2up_pool_tag(const struct tls_client *tls)
{
    /* one past a TLS context's own tag: never the tag of its HTTP/1.1 sockets */
    return tls ? (const char *)tls_client_tag(tls) + 1 : &h2up_h2c_tag;
}

/* ---- lanes: the proxy's side ------------------------------------------- */

static void h2up_lane_kill(struct h2up_lane *l)
{
    if (l->dead)
        return;
    l->dead = 1;
    l->g->dirty = 1;
    if (l->conn && l->sid > 0 && l->conn->ng)
        nghttp2_submit_rst_stream(l->conn->ng, NGHTTP2_FLAG_NONE, l->sid, NGHTTP2_CANCEL);
}

static void h2up_lane_free(struct h2up_lane *l)
{
    struct h2up_group *g = l->g;
    if (l->conn && l->sid > 0 && l->conn->ng)
        nghttp2_session_set_stream_user_data(l->conn->ng, l->sid, NULL);
    if (l->waiting) {
        struct h2up_lane **pp = &g->waiting;
        while (*pp && *pp != l)
            pp = &(*pp)->wnext;
        if (*pp)
            *pp = l->wnext;
        g->waiting_tail = NULL;
        for (struct h2up_lane *w = g->waiting; w; w = w->wnext)
            g->waiting_tail = w;
    }
    if (l->prev)
        l->prev->next = l->next;
    else
        g->lanes = l->next;
    if (l->next)
        l->next->prev = l->prev;
    ev_io_stop(g->w->loop, &l->io);
    close(l->fd);
    h2_bytes_free(&l->in);
    h2_bytes_free(&l->head);
    h2_bytes_free(&l->body);
    h2_bytes_free(&l->out);
    h2_bytes_free(&l->fields);
    h2_bytes_free(&l->req_trailers);
    free(l);
}

/* Writes what l->out holds to the proxy; gives window back as it drains. */
static void h2up_lane_flush(struct h2up_lane *l)
{
    while (!l->dead && h2_bytes_size(&l->out) > 0) {
        ssize_t n = send(l->fd, h2_bytes_data(&l->out), h2_bytes_size(&l->out), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                h2up_lane_kill(l);
            break;
        }
        h2_bytes_take(&l->out, (size_t)n);
    }
    if (l->unconsumed && h2_bytes_size(&l->out) < H2UP_HWM && l->conn && l->sid > 0) {
        nghttp2_session_consume(l->conn->ng, l->sid, l->unconsumed);
        l->unconsumed = 0;
    }
    h2up_lane_update(l); /* EV_WRITE while bytes wait */
}

/* The request head in l->head, parsed into msg. 0 or -EPROTO. */
static int h2up_lane_parse_head(struct h2up_lane *l, struct http_msg *msg)
{
    http_msg_init(msg);
    int r = http_parse_request(h2_bytes_data(&l->head), h2_bytes_size(&l->head), msg, NULL);
    return r > 0 ? 0 : -EPROTO;
}

/* Keeps n bytes of the request's trailer section; one over H2UP_MAX_HEAD
 * is dropped whole (a field cut short would be worse than none). */
static int h2up_lane_keep_trailer(struct h2up_lane *l, const char *p, size_t n)
{
    if (h2_bytes_size(&l->req_trailers) == 0 && h2_bytes_add(&l->req_trailers, "\r\n0\r\n", 5) < 0)
        return -ENOMEM;
    if (h2_bytes_size(&l->req_trailers) + n > H2UP_MAX_HEAD) {
        h2_bytes_clear(&l->req_trailers);
        return h2_bytes_add(&l->req_trailers, "\r\n0\r\n", 5); /* stays empty of fields */
    }
    return h2_bytes_add(&l->req_trailers, p, n);
}

/* Sends the request's trailer fields as a trailing HEADERS frame (inside
 * the data source callback, as nghttp2 allows). Returns 1 when it did. */
static int h2up_lane_send_trailers(struct h2up_lane *l, nghttp2_session *ng)
{
    static __thread nghttp2_nv nv[64];
    static __thread char tail[H2UP_MAX_HEAD + 8];
    size_t n = h2_bytes_size(&l->req_trailers);
    if (n <= 5 || n + 2 > sizeof(tail))
        return 0;
    memcpy(tail, h2_bytes_data(&l->req_trailers), n);
    memcpy(tail + n, "\r\n", 2);
    size_t k = h2_trailer_fields(tail, n + 2, nv, sizeof(nv) / sizeof(nv[0]));
    /* RFC 9110 6.5.1: no framing, routing or control fields as trailers */
    size_t kept = 0;
    for (size_t i = 0; i < k; i++)
        if (!http_trailer_forbidden((const char *)nv[i].name, nv[i].namelen))
            nv[kept++] = nv[i];
    return kept && nghttp2_submit_trailer(ng, l->sid, nv, kept) == 0;
}

/* De-frames request bytes of l->in: the head first, then body bytes into
 * l->body (while that is below the mark). 0 or negative (bad request). */
static int h2up_lane_parse(struct h2up_lane *l)
{
    if (l->state == L_IDLE && h2_bytes_size(&l->in) > 0) {
        struct http_msg msg;
        http_msg_init(&msg);
        int r = http_parse_request(h2_bytes_data(&l->in), h2_bytes_size(&l->in), &msg, NULL);
        if (r == HTTP_PARSE_PARTIAL)
            return 0;
        if (r < 0)
            return -EPROTO;
        h2_bytes_clear(&l->head);
        if (h2_bytes_add(&l->head, h2_bytes_data(&l->in), (size_t)r) < 0)
            return -ENOMEM;
        h2_bytes_take(&l->in, (size_t)r);
        h2_bytes_clear(&l->body);
        l->body_sent = 0;
        l->body_total = 0;
        l->unconsumed = 0;
        l->req_kind = (uint8_t)msg.body_kind;
        l->req_left = msg.body_kind == HTTP_BODY_LENGTH ? msg.content_length : 0;
        l->req_done = msg.body_kind == HTTP_BODY_NONE ||
                      (msg.body_kind == HTTP_BODY_LENGTH && l->req_left == 0);
        l->is_head = msg.method == HTTP_METHOD_HEAD;
        http_chunked_init(&l->chunk);
        l->chunk.keep_trailers = 1;
        h2_bytes_clear(&l->req_trailers);
        l->replayable = 1;
        l->replays = 0;
        l->state = L_WAITING;
        h2up_lane_start(l);
    }
    int got = 0;
    while (l->state != L_IDLE && !l->req_done && h2_bytes_size(&l->in) > 0 &&
           h2_bytes_size(&l->body) - l->body_sent < H2UP_HWM) {
        const char *p = h2_bytes_data(&l->in);
        size_t n = h2_bytes_size(&l->in), off = 0, len = 0, used;
        if (l->req_kind == HTTP_BODY_LENGTH) {
            len = n < l->req_left ? n : (size_t)l->req_left;
            used = len;
            l->req_left -= len;
            l->req_done = l->req_left == 0;
        } else {
            enum http_chunk_result cr = http_chunked_next(&l->chunk, p, n, &used, &off, &len);
            if (cr == HTTP_CHUNK_ERROR)
                return -EPROTO;
            if (cr == HTTP_CHUNK_TRAILER && h2up_lane_keep_trailer(l, p + off, len) < 0)
                return -ENOMEM;
            if (cr != HTTP_CHUNK_DATA)
                len = 0;
            if (cr == HTTP_CHUNK_DONE)
                l->req_done = 1;
        }
        if (len && h2_bytes_add(&l->body, p + off, len) < 0)
            return -ENOMEM;
        l->body_total += len;
        h2_bytes_take(&l->in, used);
        got = 1;
    }
    if (l->replayable && l->body_total > H2UP_REPLAY_MAX) {
        l->replayable = 0; /* too much to hold: what was sent goes */
        h2_bytes_take(&l->body, l->body_sent);
        l->body_sent = 0;
    }
    if ((got || l->req_done) && l->state == L_STREAM && l->deferred) {
        l->deferred = 0;
        nghttp2_session_resume_data(l->conn->ng, l->sid);
    }
    return 0;
}

static void h2up_lane_read(struct h2up_lane *l)
{
    char buf[16384];
    while (!l->dead && h2_bytes_size(&l->in) < H2UP_HWM) {
        ssize_t n = read(l->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            /* the proxy closed its end (done with the lane, or gave up) */
            h2up_lane_kill(l);
            return;
        }
        if (h2_bytes_add(&l->in, buf, (size_t)n) < 0) {
            h2up_lane_kill(l);
            return;
        }
        if (h2up_lane_parse(l) < 0) {
            log_warn("http2 upstream: bad request bytes from the proxy session");
            h2up_lane_kill(l);
            return;
        }
    }
}

static void h2up_lane_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct h2up_lane *l = w->data;
    struct h2up_group *g = l->g;
    struct h2up_conn *hc = l->conn;
    if (revents & EV_WRITE)
        h2up_lane_flush(l);
    if (revents & EV_READ)
        h2up_lane_read(l);
    if (!l->dead && l->state == L_DONE && h2_bytes_size(&l->out) == 0)
        l->state = L_IDLE;
    h2up_lane_update(l);
    if (hc && !hc->dead)
        h2up_conn_pump(hc);
    h2up_group_reap(g);
}

static void h2up_lane_update(struct h2up_lane *l)
{
    if (l->dead)
        return;
    int ev = 0;
    if (h2_bytes_size(&l->in) < H2UP_HWM && h2_bytes_size(&l->body) - l->body_sent < H2UP_HWM)
        ev |= EV_READ;
    if (h2_bytes_size(&l->out) > 0)
        ev |= EV_WRITE;
    if (ev == l->io_events)
        return;
    ev_io_stop(l->g->w->loop, &l->io);
    ev_io_set(&l->io, l->fd, ev);
    l->io_events = ev;
    if (ev)
        ev_io_start(l->g->w->loop, &l->io);
}

/* ---- streams ------------------------------------------------------------ */

static ssize_t h2up_data_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2up_lane *l = src->ptr;
    if (!l || l->dead)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t avail = h2_bytes_size(&l->body) - l->body_sent;
    size_t n = avail < length ? avail : length;
    memcpy(buf, h2_bytes_data(&l->body) + l->body_sent, n);
    if (l->replayable) {
        l->body_sent += n;
    } else {
        h2_bytes_take(&l->body, n);
    }
    if (l->req_done && n == avail) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (h2up_lane_send_trailers(l, ng))
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        return (ssize_t)n;
    }
    if (n == 0) {
        l->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    /* room for more body: what the lane holds is de-framed after this
     * callback (the reap), and the proxy's socket is watched again */
    l->need_parse = 1;
    l->g->need_pass = 1;
    return (ssize_t)n;
}

static int h2up_hop_field(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive",     "proxy-connection", "transfer-encoding", "upgrade", "host",
        "te",         "content-length", "expect",           "http2-settings"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return 1;
    return 0;
}

#define H2UP_NV(n, v, vl)                                                                          \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME})

/* Submits l's request on hc. 0 or negative. */
static int h2up_lane_submit(struct h2up_lane *l, struct h2up_conn *hc)
{
    static __thread struct http_msg msg;
    static __thread nghttp2_nv nv[HTTP_MAX_HEADERS_HARD + 8];
    static __thread char lower[H2UP_MAX_HEAD];
    if (h2up_lane_parse_head(l, &msg) < 0)
        return -EPROTO;
    size_t n = 0, lo = 0;
    nv[n++] = H2UP_NV(":method", msg.method_str.p, msg.method_str.len);
    nv[n++] = H2UP_NV(":scheme", l->g->tls ? "https" : "http", l->g->tls ? 5 : 4);
    nv[n++] = H2UP_NV(":authority", msg.host.p, msg.host.len);
    nv[n++] = H2UP_NV(":path", msg.target.p, msg.target.len);
    if (msg.has_te_trailers)
        nv[n++] = H2UP_NV("te", "trailers", 8);
    char cl[24];
    if (l->req_kind == HTTP_BODY_LENGTH)
        nv[n++] = H2UP_NV(
            "content-length", cl,
            (size_t)snprintf(cl, sizeof(cl), "%llu", (unsigned long long)msg.content_length));
    for (size_t i = 0; i < msg.n_headers; i++) {
        const struct http_header *h = &msg.headers[i];
        if (msg.hop[i] || h2up_hop_field(h->name.p, h->name.len) ||
            lo + h->name.len > sizeof(lower))
            continue;
        for (size_t k = 0; k < h->name.len; k++) {
            char ch = h->name.p[k];
            lower[lo + k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        nv[n++] = (nghttp2_nv){(uint8_t *)lower + lo, (uint8_t *)h->value.p, h->name.len,
                               h->value.len, NGHTTP2_NV_FLAG_NONE};
        lo += h->name.len;
    }
    nghttp2_data_provider prd = {.source.ptr = l, .read_callback = h2up_data_cb};
    int has_body = !(l->req_done && l->body_total == 0 && h2_bytes_size(&l->req_trailers) <= 5);
    int32_t sid = nghttp2_submit_request(hc->ng, NULL, nv, n, has_body ? &prd : NULL, l);
    if (sid < 0)
        return sid;
    l->conn = hc;
    l->sid = sid;
    l->state = L_STREAM;
    l->deferred = 0;
    l->status = 0;
    l->head_out = l->chunked = l->no_body = l->resp_done = 0;
    h2_bytes_clear(&l->fields);
    hc->n_streams++;
    if (hc->established)
        ev_timer_stop(l->g->w->loop, &hc->timer); /* the idle timeout */
    return 0;
}

static unsigned h2up_conn_limit(const struct h2up_conn *hc)
{
    uint32_t m =
        nghttp2_session_get_remote_settings(hc->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return m < H2UP_MAX_STREAMS ? m : H2UP_MAX_STREAMS;
}

static struct h2up_conn *h2up_conn_new(struct h2up_group *g);

/* Puts l's request on a stream now, or queues it for a slot. */
static void h2up_lane_start(struct h2up_lane *l)
{
    struct h2up_group *g = l->g;
    struct h2up_conn *hc;
    for (hc = g->conns; hc; hc = hc->next)
        if (!hc->dead && !hc->goaway && hc->n_streams < h2up_conn_limit(hc))
            break;
    if (!hc && g->n_conns < g->max_conns && !(hc = h2up_conn_new(g))) {
        log_warn("http2 upstream: cannot open a connection: %s", strerror(errno));
        h2up_lane_kill(l); /* the proxy sees a connection reset */
        return;
    }
    if (!hc) {
        if (!l->waiting) {
            l->waiting = 1;
            l->wnext = NULL;
            if (g->waiting_tail)
                g->waiting_tail->wnext = l;
            else
                g->waiting = l;
            g->waiting_tail = l;
        }
        return;
    }
    if (h2up_lane_submit(l, hc) < 0) {
        h2up_lane_kill(l);
        return;
    }
    if (!hc->connecting && !hc->handshaking)
        h2up_conn_pump(hc);
}

/* Gives waiting lanes the slots that freed up. */
static void h2up_group_dequeue(struct h2up_group *g)
{
    while (g->waiting) {
        struct h2up_conn *hc;
        for (hc = g->conns; hc; hc = hc->next)
            if (!hc->dead && !hc->goaway && hc->n_streams < h2up_conn_limit(hc))
                break;
        if (!hc && g->n_conns >= g->max_conns)
            return;
        struct h2up_lane *l = g->waiting;
        g->waiting = l->wnext;
        if (!g->waiting)
            g->waiting_tail = NULL;
        l->waiting = 0;
        if (!l->dead)
            h2up_lane_start(l);
        if (l->waiting)
            return; /* no slot after all (a connection full from the start) */
    }
}

/* ---- nghttp2 callbacks ---------------------------------------------------- */

static struct h2up_lane *h2up_stream_lane(nghttp2_session *ng, int32_t sid)
{
    struct h2up_lane *l = nghttp2_session_get_stream_user_data(ng, sid);
    return l && !l->dead ? l : NULL;
}

static int h2up_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                          size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    struct h2up_lane *l = h2up_stream_lane(ng, f->hd.stream_id);
    if (!l || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        l->status = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            l->status = l->status * 10 + (value[i] - '0');
        return 0;
    }
    if (nlen > 0 && name[0] == ':')
        return 0;
    if (h2up_hop_field((const char *)name, nlen) &&
        !(nlen == 14 && memcmp(name, "content-length", 14) == 0))
        return 0;
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0 && l->head_out)
        return 0;
    if (h2_bytes_size(&l->fields) + nlen + vlen + 4 > H2UP_MAX_HEAD)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h2_bytes_add(&l->fields, name, nlen);
    h2_bytes_add(&l->fields, ": ", 2);
    h2_bytes_add(&l->fields, value, vlen);
    h2_bytes_add(&l->fields, "\r\n", 2);
    return 0;
}

static int h2up_fields_have_cl(const struct h2_bytes *b)
{
    const char *p = h2_bytes_data(b);
    size_t n = h2_bytes_size(b);
    for (size_t i = 0; i + 15 <= n; i++)
        if ((i == 0 || p[i - 1] == '\n') && memcmp(p + i, "content-length:", 15) == 0)
            return 1;
    return 0;
}

/* The answer head is complete: write it for the proxy as HTTP/1.1. An
 * answer whose HEADERS frame ended the stream (`ended`) has no body:
 * Content-Length: 0 rather than an empty chunked body. That keeps a gRPC
 * "Trailers-Only" answer (grpc-status among the head's fields) recognisable
 * as one, for the proxy's gRPC retries and for an HTTP/2 client (the bridge
 * sends it as one HEADERS frame ending the stream, where gRPC clients look
 * for the status). */
static void h2up_lane_head_out(struct h2up_lane *l, int ended)
{
    char line[64];
    int s = l->status;
    int has_cl = h2up_fields_have_cl(&l->fields);
    l->no_body = l->is_head || s == 204 || s == 304;
    l->chunked = !l->no_body && !has_cl && !ended;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", s, http_status_reason(s));
    h2_bytes_add(&l->out, line, (size_t)n);
    h2_bytes_add(&l->out, h2_bytes_data(&l->fields), h2_bytes_size(&l->fields));
    if (l->chunked)
        h2_bytes_add(&l->out, "transfer-encoding: chunked\r\n", 28);
    else if (!l->no_body && !has_cl)
        h2_bytes_add(&l->out, "content-length: 0\r\n", 19);
    h2_bytes_add(&l->out, "\r\n", 2);
    h2_bytes_clear(&l->fields);
    l->head_out = 1;
}

static void h2up_lane_end_answer(struct h2up_lane *l)
{
    if (l->resp_done)
        return;
    if (!l->head_out)
        return;
    if (l->chunked) {
        h2_bytes_add(&l->out, "0\r\n", 3);
        h2_bytes_add(&l->out, h2_bytes_data(&l->fields), h2_bytes_size(&l->fields));
        h2_bytes_add(&l->out, "\r\n", 2);
    }
    h2_bytes_clear(&l->fields);
    l->resp_done = 1;
    h2up_lane_flush(l);
}

static int h2up_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2up_conn *hc = user;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        hc->goaway = 1;
        return 0;
    }
    struct h2up_lane *l = f->hd.stream_id ? h2up_stream_lane(ng, f->hd.stream_id) : NULL;
    if (!l)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (!l->head_out) {
            if (l->status >= 100 && l->status < 200) {
                h2_bytes_clear(&l->fields); /* interim answers are not relayed */
                l->status = 0;
                return 0;
            }
            if (l->status < 200 || l->status > 999)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            h2up_lane_head_out(l, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            h2up_lane_end_answer(l);
        else
            h2up_lane_flush(l);
    } else if (f->hd.type == NGHTTP2_DATA && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2up_lane_end_answer(l);
    }
    return 0;
}

static int h2up_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                              size_t len, void *user)
{
    struct h2up_lane *l = h2up_stream_lane(ng, sid);
    if (!l || !l->head_out || l->no_body) {
        nghttp2_session_consume(ng, sid, len);
        return 0;
    }
    if (l->chunked && len) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        h2_bytes_add(&l->out, size, (size_t)n);
    }
    if (h2_bytes_add(&l->out, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (l->chunked && len)
        h2_bytes_add(&l->out, "\r\n", 2);
    l->unconsumed += len;
    h2up_lane_flush(l);
    h2up_lane_update(l);
    return 0;
}

/* Starts the request of l again from its first byte (a refused stream). */
static int h2up_lane_replay(struct h2up_lane *l)
{
    if (!l->replayable || l->head_out || ++l->replays > H2UP_MAX_REPLAYS)
        return -1;
    l->body_sent = 0;
    l->state = L_WAITING;
    return 0;
}

static int h2up_on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    struct h2up_conn *hc = user;
    struct h2up_lane *l = nghttp2_session_get_stream_user_data(ng, sid);
    if (hc->n_streams)
        hc->n_streams--;
    if (!l)
        return 0;
    l->conn = NULL;
    l->sid = 0;
    if (l->dead)
        return 0;
    if (l->unconsumed)
        l->unconsumed = 0; /* the stream is gone: its bytes count only in the connection window */
    if (error_code == NGHTTP2_REFUSED_STREAM && h2up_lane_replay(l) == 0) {
        /* sent again by the reap after this callback, on a connection
         * without GOAWAY */
        log_debug("http2 upstream: stream %d refused, sending it again", sid);
        l->g->dirty = 1;
        return 0;
    }
    if (!l->resp_done || !l->req_done) {
        /* an answer cut short, or the request could not be sent whole:
         * the proxy sees its connection close */
        h2up_lane_flush(l);
        h2up_lane_kill(l);
        return 0;
    }
    l->state = h2_bytes_size(&l->out) ? L_DONE : L_IDLE;
    return 0;
}

static nghttp2_session_callbacks *h2up_callbacks(void)
{
    nghttp2_session_callbacks *made = __atomic_load_n(&h2up_cbs, __ATOMIC_ACQUIRE);
    if (made)
        return made;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2up_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2up_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2up_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2up_on_stream_close);
    /* workers may race here once: the first copy stays, a later one is
     * dropped before anyone used it */
    nghttp2_session_callbacks *none = NULL;
    if (!__atomic_compare_exchange_n(&h2up_cbs, &none, cbs, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        nghttp2_session_callbacks_del(cbs);
        return none;
    }
    return cbs;
}

/* ---- connections ------------------------------------------------------------ */

static void h2up_conn_kill(struct h2up_conn *hc, const char *why)
{
    if (hc->dead)
        return;
    hc->dead = 1;
    if (why)
        log_warn("http2 upstream (cluster protocol h2/h2c): %s", why);
    if (!hc->established)
        hc->g->failed_at = ev_now(hc->g->w->loop);
    /* its streams are lost: their lanes close, so the proxy sees a reset */
    for (struct h2up_lane *l = hc->g->lanes; l; l = l->next)
        if (l->conn == hc) {
            h2up_lane_flush(l);
            h2up_lane_kill(l);
        }
    if (!hc->established)
        for (struct h2up_lane *l = hc->g->waiting; l; l = l->wnext)
            h2up_lane_kill(l); /* the next connection would most likely fail too */
}

static void h2up_conn_free(struct h2up_conn *hc)
{
    struct h2up_group *g = hc->g;
    for (struct h2up_lane *l = g->lanes; l; l = l->next)
        if (l->conn == hc) {
            l->conn = NULL;
            l->sid = 0;
            h2up_lane_kill(l);
        }
    ev_io_stop(g->w->loop, &hc->io);
    ev_timer_stop(g->w->loop, &hc->timer);
    if (hc->ng)
        nghttp2_session_del(hc->ng);
    sio_close(&hc->sio);
    h2_bytes_free(&hc->out);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        g->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    g->n_conns--;
    free(hc);
}

/* Moves frames out and bytes in as far as the socket allows. */
static void h2up_conn_io(struct h2up_conn *hc, int readable)
{
    if (hc->handshaking) {
        int r = tls_handshake(&hc->sio);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            h2up_conn_kill(hc, "TLS handshake failed");
            return;
        }
        hc->handshaking = 0;
        if (!tls_alpn_is_h2(&hc->sio)) {
            h2up_conn_kill(hc,
                           "the server did not choose h2 in ALPN (does it speak HTTP/2 over TLS?)");
            return;
        }
        readable = 1;
    }
    if (!hc->established) {
        hc->established = 1;
        hc->g->failed_at = 0;
        ev_timer_stop(hc->g->w->loop, &hc->timer); /* the connect deadline */
    }
    while (readable && !hc->dead) {
        char buf[16384];
        ssize_t n = sio_read(&hc->sio, buf, sizeof(buf));
        if (n == -EAGAIN || n == -EINTR)
            break;
        if (n <= 0) {
            h2up_conn_kill(hc, hc->n_streams ? "connection lost with streams in flight" : NULL);
            return;
        }
        ssize_t rv = nghttp2_session_mem_recv(hc->ng, (const uint8_t *)buf, (size_t)n);
        if (rv < 0) {
            h2up_conn_kill(hc, nghttp2_strerror((int)rv));
            return;
        }
    }
    for (;;) {
        while (h2_bytes_size(&hc->out) < H2_OUT_HWM) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(hc->ng, &d);
            if (n < 0) {
                h2up_conn_kill(hc, nghttp2_strerror((int)n));
                return;
            }
            if (n == 0)
                break;
            if (h2_bytes_add(&hc->out, d, (size_t)n) < 0) {
                h2up_conn_kill(hc, "out of memory");
                return;
            }
        }
        if (h2_bytes_size(&hc->out) == 0)
            break;
        ssize_t n = sio_write(&hc->sio, h2_bytes_data(&hc->out), h2_bytes_size(&hc->out));
        if (n == -EAGAIN || n == -EINTR)
            break;
        if (n < 0) {
            h2up_conn_kill(hc, hc->n_streams ? "connection lost with streams in flight" : NULL);
            return;
        }
        h2_bytes_take(&hc->out, (size_t)n);
    }
}

static void h2up_conn_update(struct h2up_conn *hc)
{
    struct ev_loop *loop = hc->g->w->loop;
    if (hc->dead)
        return;
    if (!hc->connecting && !hc->handshaking && hc->goaway && hc->n_streams == 0 &&
        h2_bytes_size(&hc->out) == 0) {
        h2up_conn_kill(hc, NULL);
        return;
    }
    int ev;
    if (hc->connecting)
        ev = EV_WRITE;
    else if (hc->handshaking)
        ev = sio_events(&hc->sio, 1, 0) | sio_events(&hc->sio, 0, 1);
    else
        ev = sio_events(&hc->sio, 1,
                        h2_bytes_size(&hc->out) > 0 || nghttp2_session_want_write(hc->ng));
    if (ev != hc->io_events) {
        ev_io_stop(loop, &hc->io);
        ev_io_set(&hc->io, hc->sio.fd, ev);
        hc->io_events = ev;
        ev_io_start(loop, &hc->io);
    }
    if (hc->established && hc->n_streams == 0 && !ev_is_active(&hc->timer)) {
        ev_timer_set(&hc->timer, (double)hc->g->idle_ms / 1000.0, 0.);
        ev_timer_start(loop, &hc->timer);
    }
}

static void h2up_conn_pump(struct h2up_conn *hc)
{
    if (!hc->connecting && !hc->handshaking)
        h2up_conn_io(hc, 0);
    h2up_conn_update(hc);
}

static void h2up_conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct h2up_conn *hc = w->data;
    struct h2up_group *g = hc->g;
    if (hc->connecting) {
        int r = net_connect_result(hc->sio.fd);
        if (r != 0) {
            h2up_conn_kill(hc, strerror(-r));
            h2up_group_reap(g);
            return;
        }
        hc->connecting = 0;
        if (hc->handshaking) {
            h2up_conn_io(hc, 0);
            h2up_conn_update(hc);
            h2up_group_reap(g);
            return;
        }
    }
    h2up_conn_io(hc, (revents & EV_READ) != 0 || hc->sio.rd_want == SIO_WANT_WRITE);
    h2up_conn_update(hc);
    h2up_group_dequeue(g);
    h2up_group_reap(g);
}

static void h2up_conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct h2up_conn *hc = w->data;
    struct h2up_group *g = hc->g;
    if (!hc->established)
        h2up_conn_kill(hc, "connect timed out");
    else if (hc->n_streams == 0)
        h2up_conn_kill(hc, NULL); /* idle */
    h2up_group_reap(g);
}

/* Makes hc's nghttp2 session (SETTINGS queued) and links hc into g, its
 * socket watched for `events`. 0 or negative (hc's sio is then the caller's). */
static int h2up_conn_setup(struct h2up_group *g, struct h2up_conn *hc, int events)
{
    nghttp2_session_callbacks *cbs = h2up_callbacks();
    nghttp2_option *opt;
    if (!cbs)
        return -ENOMEM;
    hc->g = g;
    if (nghttp2_option_new(&opt) != 0)
        return -ENOMEM;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    int rv = nghttp2_session_client_new2(&hc->ng, cbs, hc, opt);
    nghttp2_option_del(opt);
    if (rv != 0)
        return -ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2UP_MAX_HEAD},
    };
    if (nghttp2_submit_settings(hc->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(hc->ng, NGHTTP2_FLAG_NONE, 0, H2UP_CONN_WINDOW) !=
            0) {
        nghttp2_session_del(hc->ng);
        hc->ng = NULL;
        return -ENOMEM;
    }
    ev_io_init(&hc->io, h2up_conn_io_cb, hc->sio.fd, events);
    hc->io.data = hc;
    hc->io_events = events;
    ev_io_start(g->w->loop, &hc->io);
    ev_timer_init(&hc->timer, h2up_conn_timer_cb, (double)g->connect_ms / 1000.0, 0.);
    hc->timer.data = hc;
    ev_timer_start(g->w->loop, &hc->timer);
    hc->next = g->conns;
    if (g->conns)
        g->conns->prev = hc;
    g->conns = hc;
    g->n_conns++;
    return 0;
}

/* A new connection to g's address (connecting), or NULL. */
static struct h2up_conn *h2up_conn_new(struct h2up_group *g)
{
    struct h2up_conn *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return NULL;
    sio_init_closed(&hc->sio);
    int fd = net_connect((const struct sockaddr *)&g->addr, g->addrlen);
    if (fd < 0)
        goto fail;
    if (g->tls) {
        int r = tls_connect_sio(g->tls, fd, (const struct sockaddr *)&g->addr, g->addrlen, NULL,
                                &hc->sio);
        /* hc->sio owns fd now, also on failure */
        if (r < 0 || tls_sio_offer_h2(&hc->sio) < 0)
            goto fail;
        hc->handshaking = 1;
    } else {
        sio_init_plain(&hc->sio, fd);
    }
    hc->connecting = 1;
    if (h2up_conn_setup(g, hc, EV_WRITE) == 0)
        return hc;
fail:
    sio_close(&hc->sio);
    free(hc);
    return NULL;
}

/* Frees what died in the last callback; idle groups stay (few, per address). */
static void h2up_group_reap(struct h2up_group *g)
{
    if (g->w->in_reap)
        return;
    g->w->in_reap = 1;
    for (int again = 1, rounds = 0; again && rounds < 100000; rounds++) {
        again = 0;
        /* lanes are scanned only when one needs it: a worker may carry
         * thousands of streams, and this runs after every event */
        if (g->need_pass) {
            g->need_pass = 0;
            for (struct h2up_lane *l = g->lanes; l; l = l->next)
                if (l->need_parse && !l->dead) {
                    l->need_parse = 0;
                    if (h2up_lane_parse(l) < 0)
                        h2up_lane_kill(l);
                    h2up_lane_update(l);
                }
        }
        for (struct h2up_conn *hc = g->conns, *next; hc; hc = next) {
            next = hc->next;
            if (hc->dead) {
                h2up_conn_free(hc);
                again = 1;
            }
        }
        int scan = g->dirty;
        g->dirty = 0;
        for (struct h2up_lane *l = scan ? g->lanes : NULL, *next; l; l = next) {
            next = l->next;
            if (l->dead) {
                h2up_lane_free(l);
            } else if (l->state == L_WAITING && !l->waiting && !l->conn) {
                h2up_lane_start(l); /* a refused stream, sent again */
                again = 1;
            }
        }
        h2up_group_dequeue(g);
        for (struct h2up_conn *hc = g->conns; hc; hc = hc->next)
            if (!hc->dead && !hc->connecting && !hc->handshaking)
                h2up_conn_io(hc, 0);
        for (struct h2up_conn *hc = g->conns; hc; hc = hc->next)
            if (hc->dead)
                again = 1;
            else
                h2up_conn_update(hc);
        if (g->need_pass || g->dirty)
            again = 1;
    }
    g->w->in_reap = 0;
}

/* ---- the worker --------------------------------------------------------------- */

static struct h2up_group *h2up_group_get(struct h2up_worker *w, const struct sockaddr *addr,
                                         socklen_t addrlen, struct tls_client *tls)
{
    for (struct h2up_group *g = w->groups; g; g = g->next)
        if (g->addrlen == addrlen && memcmp(&g->addr, addr, addrlen) == 0 &&
            h2up_pool_tag(g->tls) == h2up_pool_tag(tls))
            return g;
    struct h2up_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->w = w;
    memcpy(&g->addr, addr, addrlen);
    g->addrlen = addrlen;
    g->next = w->groups;
    w->groups = g;
    return g;
}

static int h2up_lane_new(struct h2up_group *g, struct h2up_lane **out);

int h2up_lane_open(void **slot, struct wctx *wc, const struct sockaddr *addr, socklen_t addrlen,
                   struct tls_client *tls, unsigned max_conns, uint64_t idle_ms,
                   uint64_t connect_ms)
{
    struct h2up_worker *w = *slot;
    if (!w) {
        if (!(w = calloc(1, sizeof(*w))))
            return -ENOMEM;
        w->loop = wc->worker.loop;
        *slot = w;
    }
    struct h2up_group *g = h2up_group_get(w, addr, addrlen, tls);
    if (!g)
        return -ENOMEM;
    /* right after a failed set-up, with no connection up or on its way,
     * the request fails like a connect: nothing was sent, so the proxy
     * may send it (any method) to another endpoint at once */
    if (g->failed_at && ev_now(w->loop) - g->failed_at < H2UP_FAIL_HOLD_S) {
        int live = 0;
        for (struct h2up_conn *hc = g->conns; hc; hc = hc->next)
            live |= !hc->dead;
        if (!live)
            return -ECONNREFUSED;
    }
    g->tls = tls; /* the live snapshot's context, for new connections */
    g->max_conns = max_conns ? max_conns : 1;
    g->idle_ms = idle_ms ? idle_ms : 60000;
    g->connect_ms = connect_ms ? connect_ms : 2000;
    return h2up_lane_new(g, NULL);
}

/* A new idle lane of g; returns the proxy's end (the caller's) or -errno. */
static int h2up_lane_new(struct h2up_group *g, struct h2up_lane **out)
{
    struct h2up_lane *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
        free(l);
        return -errno;
    }
    l->g = g;
    l->fd = sv[1];
    l->state = L_IDLE;
    ev_io_init(&l->io, h2up_lane_io_cb, l->fd, EV_READ);
    l->io.data = l;
    l->io_events = EV_READ;
    ev_io_start(g->w->loop, &l->io);
    l->next = g->lanes;
    if (g->lanes)
        g->lanes->prev = l;
    g->lanes = l;
    if (out)
        *out = l;
    return sv[0];
}

void h2up_worker_free(void **slot)
{
    struct h2up_worker *w = slot ? *slot : NULL;
    if (!w)
        return;
    w->in_reap = 1;
    while (w->groups) {
        struct h2up_group *g = w->groups;
        while (g->conns) {
            g->conns->dead = 1;
            h2up_conn_free(g->conns);
        }
        g->waiting = g->waiting_tail = NULL;
        while (g->lanes) {
            g->lanes->waiting = 0;
            h2up_lane_free(g->lanes);
        }
        w->groups = g->next;
        free(g);
    }
    free(w);
    *slot = NULL;
}

/* ---- the fuzz seam --------------------------------------------------------------- */

int h2up_feed_server_bytes(struct ev_loop *loop, const uint8_t *data, size_t size, size_t cut1,
                           size_t cut2, char *answer, size_t answer_cap)
{
    void *slot = NULL;
    struct h2up_worker *w = calloc(1, sizeof(*w));
    struct h2up_group *g = calloc(1, sizeof(*g));
    struct h2up_conn *hc = calloc(1, sizeof(*hc));
    int sv[2] = {-1, -1}, proxy_fd[2] = {-1, -1}, rc = -ENOMEM;
    if (!w || !g || !hc) {
        free(w), free(g), free(hc);
        return rc;
    }
    w->loop = loop;
    slot = w;
    g->w = w;
    g->max_conns = 1;
    g->idle_ms = 1000;
    g->connect_ms = 1000;
    w->groups = g;
    /* the connection's socket: a socketpair whose far end nobody reads */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
        free(hc);
        goto out;
    }
    sio_init_plain(&hc->sio, sv[0]);
    hc->established = 1;
    if (h2up_conn_setup(g, hc, EV_READ) < 0) {
        sio_close(&hc->sio);
        free(hc);
        goto out;
    }
    static const char *const reqs[2] = {
        "GET /a HTTP/1.1\r\nHost: fuzz\r\nTE: trailers\r\n\r\n",
        "POST /b HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
    };
    for (int i = 0; i < 2; i++) {
        struct h2up_lane *l;
        proxy_fd[i] = h2up_lane_new(g, &l);
        if (proxy_fd[i] < 0 || write(proxy_fd[i], reqs[i], strlen(reqs[i])) < 0)
            goto out;
        h2up_lane_read(l);
    }
    h2up_group_reap(g);
    size_t cuts[3] = {cut1 < size ? cut1 : size, cut2 < size ? cut2 : size, size};
    if (cuts[1] < cuts[0])
        cuts[1] = cuts[0];
    size_t at = 0;
    for (int i = 0; i < 3 && g->conns && !g->conns->dead; i++) {
        ssize_t rv = nghttp2_session_mem_recv(g->conns->ng, data + at, cuts[i] - at);
        if (rv < 0)
            h2up_conn_kill(g->conns, NULL);
        at = cuts[i];
        h2up_group_reap(g);
    }
    rc = 0;
    if (answer && answer_cap) {
        size_t got = 0;
        for (ssize_t n = 1; n > 0 && got + 1 < answer_cap;) {
            n = read(proxy_fd[0], answer + got, answer_cap - 1 - got);
            got += n > 0 ? (size_t)n : 0;
        }
        answer[got] = '\0';
    }
out:
    for (int i = 0; i < 2; i++)
        if (proxy_fd[i] >= 0)
            close(proxy_fd[i]);
    if (sv[1] >= 0)
        close(sv[1]);
    h2up_worker_free(&slot);
    return rc;
}

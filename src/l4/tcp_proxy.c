/* tcp_proxy: sessions of `protocol: tcp` listeners.
 *
 *   client ──accept──► [accept_proxy: PROXY header read, l4_accept.c]
 *                      [tls listener: the TLS handshake (timeouts.client_header),
 *                       then the sni rules on the name it asked for]
 *                      [plain listener with sni rules: ClientHello gathered
 *                       into `peek`, the cluster chosen by its server name]
 *                      pick an endpoint (lb_pick, breakers, limits) and
 *                      connect [tls cluster: PROXY header in the clear, then
 *                      the TLS handshake]; a failed or timed-out connect or
 *                      handshake is recorded (outlier detection, breaker)
 *                      and the next endpoint is tried: nothing was sent yet
 *                      then forward, each direction on its own:
 *
 *     both plain:  src socket ─splice─► pipe (<= 64 KiB) ─splice─► dst socket
 *     a TLS side:  src stream ─sio_read─► one pool buffer ─sio_write─► dst stream
 *                  (OpenSSL must see the records, so no splice)
 *
 *   d[0]: client → upstream, first sending `pre` (the PROXY header for a
 *   plain upstream and the peeked ClientHello); d[1]: upstream → client.
 *
 * A direction reads its source only when its pipe (or buffer) is empty, so
 * at most one pipe's or buffer's worth is in flight per direction: a slow
 * reader stops the other side's reads (back-pressure through the kernel's
 * windows). EOF from a source (FIN, or a TLS close_notify) is passed on as
 * sio_shutdown on the other stream once everything before it was written
 * (half-close, both ways: a TLS stream sends close_notify, then FIN); the
 * session ends when both directions were shut, on an error, or after
 * timeouts.client_idle without a byte either way. A TLS stream may wait
 * for the other readiness of its socket (sio_events), and decrypted bytes
 * OpenSSL holds are fed back as an event. It must never block, and never
 * read more from a source than it can pass on. */
#include "l4/tcp_proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/net.h"
#include "core/units.h"
#include "l4/l4_accept.h"
#include "l4/l4_metrics.h"
#include "l4/l4_worker.h"
#include "l4/proxy_proto.h"
#include "l4/sni.h"
#include "tls/tls.h"
#include "upstream/breaker.h"
#include "upstream/cluster.h"
#include "upstream/lb.h"
#include "upstream/upstream_metrics.h"

#define TCP_SPLICE_BYTES (64 * 1024) /* one splice() from a socket into a pipe, at most */
#define TCP_PUMP_ROUNDS 16           /* moves per direction per event, then others' turn */
#define TCP_MAX_ATTEMPTS 8           /* connects per session, each on another endpoint */

enum tcp_state {
    TCP_HANDSHAKE,                 /* tls listener: the client's TLS handshake */
    TCP_PEEK,                      /* gathering the ClientHello for the sni rules */
    TCP_CONNECTING,                /* connect in progress to s->ep */
    TCP_UP_HANDSHAKE,              /* tls cluster: PROXY header, then the TLS handshake */
    TCP_FORWARD,                   /* moving bytes */
};

struct tcp_dir {
    struct sio *src, *dst;         /* the session's streams (plain or TLS) */
    int pipe[2];                   /* {-1, -1}: through buf instead */
    size_t in_pipe;                /* bytes in the pipe, not yet written */
    struct buf buf;                /* the read/write path (pool block, held while not empty) */
    const uint8_t *pre;            /* sent before anything read from src */
    size_t pre_len, pre_off;
    size_t pre_own;                /* its first bytes weir made (the PROXY header): not counted */
    unsigned cell;                 /* enum l4_dir_cell */
    unsigned eof : 1;              /* src ended */
    unsigned shut : 1;             /* dst shut down for writing */
    unsigned want_src : 1;         /* waiting for src to be readable */
    unsigned want_dst : 1;         /* waiting for dst to be writable */
};

struct tcp_session {
    struct tcp_session *prev, *next;
    struct wctx *wc;
    struct wlistener *wl;
    struct snapshot *snap;         /* one reference */
    const struct cfg_listener *lst;
    struct cluster *cl;
    const struct l4_cluster_metrics *m;
    struct endpoint *ep;           /* counted in ep->active while set */
    const struct endpoint *failed; /* the last endpoint whose connect failed */
    uint64_t tried;                /* bit i: endpoint i's connect failed (i < 64) */
    int probe;                     /* the attempt is a half-open breaker probe */
    unsigned attempts;
    struct sio cs, us;             /* the client's stream and the upstream's (fd -1: none) */
    ev_io cio, uio;
    ev_timer timer;
    ev_tstamp last_io;             /* last byte moved (idle timeout) */
    ev_tstamp connect_start;
    enum tcp_state state;
    struct sockaddr_storage src, dst; /* the client and the address it reached */
    uint64_t key_hash;             /* ip_hash / consistent_hash: the client's address */
    char client[64];               /* for logs */
    uint8_t *peek;                 /* PROXY_PROTO_BUILD_MAX + SNI_MAX_PEEK, or NULL */
    size_t peek_len;               /* ClientHello bytes at peek + PROXY_PROTO_BUILD_MAX */
    uint8_t pp[PROXY_PROTO_BUILD_MAX];
    uint8_t up_pp[PROXY_PROTO_BUILD_MAX]; /* tls cluster: the PROXY header, sent before TLS */
    size_t up_pp_len, up_pp_off;
    struct tcp_dir d[2];
};

static void tcp_connect(struct tcp_session *s);
static void tcp_pump(struct tcp_session *s, int dirs);

/* ---- pipes ---- */

int l4_pipe_get(struct l4_worker *lw, int p[2])
{
    if (lw->n_pipes) {
        lw->n_pipes--;
        p[0] = lw->pipes[lw->n_pipes][0];
        p[1] = lw->pipes[lw->n_pipes][1];
        return 0;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1) {
        p[0] = p[1] = -1;
        return -errno;
    }
    return 0;
}

void l4_pipe_put(struct l4_worker *lw, int p[2])
{
    if (p[0] < 0)
        return;
    if (lw && lw->n_pipes < L4_PIPES_KEPT) {
        lw->pipes[lw->n_pipes][0] = p[0];
        lw->pipes[lw->n_pipes][1] = p[1];
        lw->n_pipes++;
    } else {
        close(p[0]);
        close(p[1]);
    }
    p[0] = p[1] = -1;
}

/* ---- the session's life ---- */

static struct ev_loop *tcp_loop(const struct tcp_session *s)
{
    return s->wc->worker.loop;
}

/* The one teardown path: closes both sockets, gives back pipes and buffers,
 * the endpoint's count and the snapshot, and frees s. Callers return at
 * once afterwards. */
static void tcp_end(struct tcp_session *s)
{
    struct wctx *wc = s->wc;
    struct l4_worker *lw = l4_worker_of(wc);
    struct wlistener *wl = s->wl;
    if (tcp_loop(s)) {
        ev_io_stop(tcp_loop(s), &s->cio);
        ev_io_stop(tcp_loop(s), &s->uio);
        ev_timer_stop(tcp_loop(s), &s->timer);
    }
    for (int i = 0; i < 2; i++) {
        struct tcp_dir *d = &s->d[i];
        if (d->in_pipe && d->pipe[0] >= 0) { /* bytes left: never reuse it */
            close(d->pipe[0]);
            close(d->pipe[1]);
            d->pipe[0] = d->pipe[1] = -1;
        }
        l4_pipe_put(lw, d->pipe);
        buf_release(&wc->bufs, &d->buf);
    }
    sio_close(&s->cs);
    sio_close(&s->us);
    if (s->ep)
        atomic_fetch_sub_explicit(&s->ep->active, 1, memory_order_relaxed);
    if (s->probe && s->ep)
        breaker_cancel_probe(s->cl->cfg->breaker.per_cluster ? &s->cl->breaker : &s->ep->breaker);
    log_debug("tcp client %s: session ended (%s, endpoint %s)", s->client,
              s->state == TCP_FORWARD ? "forwarded"
              : s->state == TCP_CONNECTING || s->state == TCP_UP_HANDSHAKE ? "connecting"
                                                                            : "before connecting",
              s->ep ? s->ep->name : "-");
    free(s->peek);
    snapshot_unref(s->snap);
    if (s->prev)
        s->prev->next = s->next;
    else if (lw)
        lw->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
    server_conn_close(wc, wl);
}

static void tcp_timer_arm(struct tcp_session *s, uint64_t ms)
{
    ev_timer_stop(tcp_loop(s), &s->timer);
    ev_timer_set(&s->timer, (double)ms / 1000.0, 0);
    ev_timer_start(tcp_loop(s), &s->timer);
}

/* Sets an io watcher's events; stopped when there are none. */
static void tcp_watch(struct tcp_session *s, ev_io *io, int fd, int events)
{
    if (io->fd == fd && (io->events & (EV_READ | EV_WRITE)) == events && ev_is_active(io) == !!events)
        return;
    ev_io_stop(tcp_loop(s), io);
    if (!events)
        return;
    ev_io_set(io, fd, events);
    ev_io_start(tcp_loop(s), io);
}

/* ---- choosing the cluster and the endpoint ---- */

static void tcp_use_cluster(struct tcp_session *s, size_t index)
{
    s->cl = &s->snap->clusters[index];
    s->m = l4_metrics_of(s->snap, index);
}

/* The cluster for a server name: the first sni rule matching it, else the
 * listener's. */
static size_t tcp_sni_cluster(const struct l4_cfg *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_sni; i++)
        if (sni_match(c->sni[i].pattern, name))
            return c->sni[i].cluster;
    return c->cluster;
}

/* The breaker's word on ep (scope endpoint). 0: not now. */
static int tcp_breaker_admits(struct tcp_session *s, struct endpoint *ep, uint64_t now)
{
    const struct cfg_breaker *cb = &s->cl->cfg->breaker;
    if (!cb->enabled || cb->per_cluster)
        return 1;
    enum breaker_admission a = breaker_admit(&ep->breaker, cb, now);
    if (a == BREAKER_DENY)
        return 0;
    s->probe = a == BREAKER_PROBE;
    return 1;
}

/* Like the HTTP proxy's pick: the balancer's choice, passed over when at
 * its connection limit or refused by its breaker; all down and panic on:
 * any endpoint not drained. NULL: none can take the session. */
static struct endpoint *tcp_pick(struct tcp_session *s)
{
    struct cluster *cl = s->cl;
    const struct cfg_cluster *cc = cl->cfg;
    uint64_t now = endpoint_now_ms();
    uint32_t limit = cc->max_connections;
    if (cc->max_requests && (!limit || cc->max_requests < limit))
        limit = cc->max_requests;
    const struct endpoint *avoid = s->failed;
    for (size_t tries = 0; tries <= cl->n_endpoints; tries++) {
        struct endpoint *ep = lb_pick(cl->lb, s->wc->worker.id, s->key_hash, avoid);
        if (!ep)
            break;
        avoid = ep;
        if (ep->index < 64 && (s->tried >> ep->index) & 1)
            continue;
        if (limit && (uint32_t)atomic_load_explicit(&ep->active, memory_order_relaxed) >= limit)
            continue;
        if (tcp_breaker_admits(s, ep, now))
            return ep;
    }
    if (!cc->panic)
        return NULL;
    for (size_t i = 0; i < cl->n_endpoints; i++)
        if (atomic_load_explicit(&cl->endpoints[i].up, memory_order_relaxed))
            return NULL;
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        unsigned k = atomic_fetch_add_explicit(&cl->panic_cursor, 1, memory_order_relaxed);
        struct endpoint *ep = &cl->endpoints[k % cl->n_endpoints];
        if (!ep->drain && !ep->down && !(ep->index < 64 && (s->tried >> ep->index) & 1))
            return ep;
    }
    return NULL;
}

/* The cluster-scope breaker. Returns 0 when it refuses the session. */
static int tcp_cluster_admits(struct tcp_session *s)
{
    const struct cfg_breaker *cb = &s->cl->cfg->breaker;
    if (!cb->enabled || !cb->per_cluster)
        return 1;
    enum breaker_admission a = breaker_admit(&s->cl->breaker, cb, endpoint_now_ms());
    if (a == BREAKER_DENY) {
        log_info("cluster %s: circuit breaker open, closing tcp client %s", s->cl->cfg->name,
                 s->client);
        return 0;
    }
    s->probe = a == BREAKER_PROBE;
    return 1;
}

/* ---- connecting ---- */

/* The attempt on s->ep failed (err: an errno, EPROTO for a refused TLS
 * handshake, 0 for a timeout): record it and try the next endpoint, or
 * give up. Nothing of the client's was sent yet. */
static void tcp_connect_failed(struct tcp_session *s, int err)
{
    const char *what = s->state == TCP_UP_HANDSHAKE ? "TLS handshake" : "connect";
    struct endpoint *ep = s->ep;
    metrics_add(s->m->connect_errors, 0, 1);
    endpoint_record(ep, CFG_FAILURE_CONNECT, s->probe, endpoint_now_ms());
    s->probe = 0;
    atomic_fetch_sub_explicit(&ep->active, 1, memory_order_relaxed);
    s->ep = NULL;
    s->failed = ep;
    if (ep->index < 64)
        s->tried |= 1ull << ep->index;
    ev_io_stop(tcp_loop(s), &s->uio);
    sio_close(&s->us);
    int retry = s->attempts < TCP_MAX_ATTEMPTS && s->attempts < s->cl->n_endpoints;
    log_warn("upstream %s (cluster %s): %s %s: %s%s", ep->name, s->cl->cfg->name, what,
             err ? "failed" : "timed out", err ? strerror(err) : "no answer",
             retry ? ", trying another endpoint" : "");
    if (!retry) {
        tcp_end(s);
        return;
    }
    tcp_connect(s);
}

/* Connects to the next endpoint; ends the session when none can be had. */
static void tcp_connect(struct tcp_session *s)
{
    if (s->attempts == 0 && !tcp_cluster_admits(s)) {
        tcp_end(s);
        return;
    }
    struct endpoint *ep = tcp_pick(s);
    if (!ep) {
        log_warn("cluster %s: no endpoint can take tcp client %s", s->cl->cfg->name, s->client);
        tcp_end(s);
        return;
    }
    atomic_fetch_add_explicit(&ep->active, 1, memory_order_relaxed);
    s->ep = ep;
    s->attempts++;
    s->state = TCP_CONNECTING;
    s->connect_start = ev_now(tcp_loop(s));
    int fd = net_connect((struct sockaddr *)&ep->addr, ep->addrlen);
    if (fd < 0) {
        metrics_add(s->m->connect_errors, 0, 1);
        /* the socket could not even be made: a local problem, tell no breaker */
        atomic_fetch_sub_explicit(&ep->active, 1, memory_order_relaxed);
        s->ep = NULL;
        log_warn("tcp client %s: cannot open a socket to %s: %s", s->client, ep->name,
                 strerror(-fd));
        tcp_end(s);
        return;
    }
    sio_init_plain(&s->us, fd);
    tcp_watch(s, &s->uio, fd, EV_WRITE);
    tcp_timer_arm(s, s->cl->cfg->connect_timeout_ms);
}

/* The listener's PROXY header for the upstream into hdr (size
 * PROXY_PROTO_BUILD_MAX). Returns its length, 0 when there is none. */
static size_t tcp_proxy_header(const struct tcp_session *s, uint8_t *hdr)
{
    const struct l4_cfg *c = s->lst->l4;
    if (!c->proxy_protocol)
        return 0;
    int n = proxy_proto_build(c->proxy_protocol, (const struct sockaddr *)&s->src,
                              (const struct sockaddr *)&s->dst, hdr, PROXY_PROTO_BUILD_MAX);
    return n > 0 ? (size_t)n : 0;
}

/* Points the directions at the streams, with a pipe each when splice can
 * be used (both plain: TLS records must pass through OpenSSL, so a TLS
 * side moves bytes through the pool buffers), and the bytes to send the
 * upstream first (a plain upstream's PROXY header: a TLS one had it
 * before its handshake). */
static void tcp_forward_setup(struct tcp_session *s)
{
    struct l4_worker *lw = l4_worker_of(s->wc);
    s->d[0] = (struct tcp_dir){ .src = &s->cs, .dst = &s->us, .cell = L4_TO_UPSTREAM };
    s->d[1] = (struct tcp_dir){ .src = &s->us, .dst = &s->cs, .cell = L4_TO_CLIENT };
    int plain = !tls_is_tls(&s->cs) && !tls_is_tls(&s->us);
    for (int i = 0; i < 2; i++)
        if (!plain || l4_pipe_get(lw, s->d[i].pipe) < 0)
            s->d[i].pipe[0] = s->d[i].pipe[1] = -1;
    uint8_t *end = s->peek ? s->peek + PROXY_PROTO_BUILD_MAX : s->pp + sizeof(s->pp);
    size_t len = s->peek ? s->peek_len : 0;
    if (!tls_is_tls(&s->us)) {
        uint8_t hdr[PROXY_PROTO_BUILD_MAX];
        size_t n = tcp_proxy_header(s, hdr);
        if (n > 0) {
            memcpy(end - n, hdr, n);
            end -= n;
            len += n;
            s->d[0].pre_own = n;
        }
    }
    s->d[0].pre = end;
    s->d[0].pre_len = len;
}

/* The upstream is ready for the client's bytes (connected, and its TLS
 * handshake done for a tls cluster): forward. */
static void tcp_forwarding(struct tcp_session *s)
{
    endpoint_record(s->ep, ENDPOINT_OK, s->probe, endpoint_now_ms());
    s->probe = 0;
    metrics_add(s->m->connections, 0, 1);
    metrics_observe_ns(s->cl->m_connect,
                       (uint64_t)((ev_now(tcp_loop(s)) - s->connect_start) * 1e9));
    s->state = TCP_FORWARD;
    log_debug("tcp client %s: connected to %s (cluster %s)", s->client, s->ep->name,
              s->cl->cfg->name);
    s->last_io = ev_now(tcp_loop(s));
    tcp_forward_setup(s);
    tcp_timer_arm(s, s->lst->idle_timeout_ms);
    tcp_pump(s, 3);
}

/* TCP_UP_HANDSHAKE: sends the PROXY header in the clear (it is for the
 * TCP peer, before TLS, as HAProxy's send-proxy with ssl does), then steps
 * the TLS handshake with the endpoint. A refused handshake is a failed
 * connect: the breaker hears of it and the next endpoint is tried. */
static void tcp_up_handshake(struct tcp_session *s)
{
    while (s->up_pp_off < s->up_pp_len) {
        ssize_t n = send(s->us.fd, s->up_pp + s->up_pp_off, s->up_pp_len - s->up_pp_off,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            tcp_watch(s, &s->uio, s->us.fd, EV_WRITE);
            return;
        }
        if (n < 0) {
            tcp_connect_failed(s, errno);
            return;
        }
        s->up_pp_off += (size_t)n;
    }
    int rc = tls_handshake(&s->us);
    if (rc == -EAGAIN) {
        tcp_watch(s, &s->uio, s->us.fd, s->us.rd_want);
        return;
    }
    if (rc < 0) {
        tcp_connect_failed(s, EPROTO);
        return;
    }
    tcp_forwarding(s);
}

/* The socket to s->ep is connected: forward at once to a plain cluster;
 * wrap the socket in TLS for a tls cluster, within another connect
 * timeout. */
static void tcp_connected(struct tcp_session *s)
{
    struct tls_client *tls = s->cl->cfg->tls;
    if (!tls) {
        tcp_forwarding(s);
        return;
    }
    int fd = s->us.fd;
    sio_init_closed(&s->us); /* tls_connect_sio owns fd from here, also on failure */
    if (tls_connect_sio(tls, fd, (const struct sockaddr *)&s->ep->addr, s->ep->addrlen, NULL,
                        &s->us) < 0) {
        ev_io_stop(tcp_loop(s), &s->uio);
        tcp_connect_failed(s, ENOMEM);
        return;
    }
    s->state = TCP_UP_HANDSHAKE;
    s->up_pp_len = tcp_proxy_header(s, s->up_pp);
    s->up_pp_off = 0;
    tcp_timer_arm(s, s->cl->cfg->connect_timeout_ms);
    tcp_up_handshake(s);
}

/* ---- forwarding ---- */

/* Counts n bytes of the client's or the upstream's moved in direction d:
 * the cluster's series and the listener's received/sent bytes. */
static void tcp_count(struct tcp_session *s, const struct tcp_dir *d, size_t n)
{
    metrics_add(s->m->bytes, d->cell, n);
    metrics_add(d->cell == L4_TO_UPSTREAM ? s->wl->m_bytes_in : s->wl->m_bytes_out, 0, n);
}

/* Writes what d holds (pre, buf or pipe) to dst. Returns bytes written,
 * -EAGAIN, or another negative errno. */
static ssize_t tcp_dir_flush(struct tcp_session *s, struct tcp_dir *d)
{
    ssize_t n;
    if (d->pre_off < d->pre_len) {
        n = sio_write(d->dst, d->pre + d->pre_off, d->pre_len - d->pre_off);
        if (n > 0) {
            size_t before = d->pre_off;
            d->pre_off += (size_t)n;
            if (d->pre_off > d->pre_own)
                tcp_count(s, d, d->pre_off - (before > d->pre_own ? before : d->pre_own));
        }
        return n;
    }
    if (buf_len(&d->buf)) {
        n = sio_write(d->dst, buf_rptr(&d->buf), buf_len(&d->buf));
        if (n > 0) {
            buf_consume(&d->buf, (size_t)n);
            tcp_count(s, d, (size_t)n);
            buf_release_if_empty(&s->wc->bufs, &d->buf);
        }
        return n;
    }
    n = splice(d->pipe[0], NULL, d->dst->fd, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        d->in_pipe -= (size_t)n;
        tcp_count(s, d, (size_t)n);
        metrics_add(s->m->spliced, d->cell, (uint64_t)n);
    }
    return n < 0 ? -errno : n;
}

/* Reads from src into the pipe (or the buffer when splice cannot be used,
 * falling back for good on EINVAL). Returns bytes read, 0 at EOF, -EAGAIN,
 * or another negative errno. */
static ssize_t tcp_dir_fill(struct tcp_session *s, struct tcp_dir *d)
{
    ssize_t n;
    if (d->pipe[0] >= 0) {
        n = splice(d->src->fd, NULL, d->pipe[1], NULL, TCP_SPLICE_BYTES,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0)
            d->in_pipe = (size_t)n;
        if (n >= 0)
            return n;
        if (errno != EINVAL && errno != ENOSYS)
            return -errno;
        l4_pipe_put(l4_worker_of(s->wc), d->pipe);
    }
    if (buf_acquire(&s->wc->bufs, &d->buf) < 0)
        return -ENOMEM;
    n = sio_read(d->src, buf_wptr(&d->buf), buf_space(&s->wc->bufs, &d->buf));
    if (n > 0)
        d->buf.wpos += (uint32_t)n;
    else
        buf_release_if_empty(&s->wc->bufs, &d->buf);
    return n;
}

static int tcp_dir_pending(const struct tcp_dir *d)
{
    return d->pre_off < d->pre_len || buf_len(&d->buf) || d->in_pipe;
}

/* The source ended and everything it sent is written: passes the EOF on
 * (a FIN; on a TLS stream close_notify first, so a TLS client's
 * close_notify becomes the upstream's FIN and the upstream's FIN the
 * client's close_notify). Returns 0 or a negative errno. */
static int tcp_dir_shut(struct tcp_dir *d)
{
    int rc = d->shut ? 0 : sio_shutdown(d->dst);
    if (rc < 0 && rc != -ENOTCONN)
        return rc;
    d->shut = 1;
    return 0;
}

/* Moves what it can in direction d. Returns 1 when bytes moved, 0 when
 * none, a negative errno when the session must end. Leaves want_src /
 * want_dst saying what to wait for. */
static int tcp_dir_pump(struct tcp_session *s, struct tcp_dir *d)
{
    int moved = 0;
    d->want_src = d->want_dst = 0;
    for (int round = 0; round < TCP_PUMP_ROUNDS; round++) {
        ssize_t n;
        if (tcp_dir_pending(d)) {
            n = tcp_dir_flush(s, d);
            if (n == -EAGAIN) {
                d->want_dst = 1;
                return moved;
            }
            if (n < 0 && n != -EINTR)
                return (int)n;
            moved = 1;
            continue;
        }
        if (d->eof) {
            int rc = tcp_dir_shut(d);
            return rc < 0 ? rc : moved;
        }
        n = tcp_dir_fill(s, d);
        if (n == -EAGAIN) {
            d->want_src = 1;
            return moved;
        }
        if (n < 0 && n != -EINTR)
            return (int)n;
        if (n == 0)
            d->eof = 1;
        moved = 1;
    }
    /* its turn is over: come back when the loop says so (an EOF read in
     * the last round is passed on now: no event would come back for it) */
    if (tcp_dir_pending(d))
        d->want_dst = 1;
    else if (!d->eof)
        d->want_src = 1;
    else {
        int rc = tcp_dir_shut(d);
        if (rc < 0)
            return rc;
    }
    return moved;
}

/* Pumps the directions in mask `dirs` (bit i: d[i]), then sets what the
 * sockets wait for, or ends the session. */
static void tcp_pump(struct tcp_session *s, int dirs)
{
    int moved = 0;
    for (int i = 0; i < 2; i++) {
        if (!(dirs & (1 << i)))
            continue;
        int rc = tcp_dir_pump(s, &s->d[i]);
        if (rc < 0) {
            if (rc != -ECONNRESET && rc != -EPIPE)
                log_info("tcp client %s: %s, closing the session", s->client, strerror(-rc));
            tcp_end(s);
            return;
        }
        moved |= rc;
    }
    if (s->d[0].shut && s->d[1].shut) {
        tcp_end(s);
        return;
    }
    if (moved)
        s->last_io = ev_now(tcp_loop(s));
    /* a TLS stream may wait for the other readiness (sio_events) */
    tcp_watch(s, &s->cio, s->cs.fd, sio_events(&s->cs, s->d[0].want_src, s->d[1].want_dst));
    tcp_watch(s, &s->uio, s->us.fd, sio_events(&s->us, s->d[1].want_src, s->d[0].want_dst));
    /* decrypted bytes OpenSSL holds raise no readiness: come back for them */
    if (s->d[0].want_src && tls_read_pending(&s->cs))
        ev_feed_event(tcp_loop(s), &s->cio, EV_READ);
    if (s->d[1].want_src && tls_read_pending(&s->us))
        ev_feed_event(tcp_loop(s), &s->uio, EV_READ);
}

/* The events of the stream `io` watches, as directions to pump (bit i:
 * d[i]): a plain socket's readiness names one direction; a TLS stream's
 * may serve either (a read waiting for writability), so both are tried. */
static int tcp_dirs_of(const struct sio *io, int revents, int read_dir)
{
    if (tls_is_tls(io))
        return 3;
    return (revents & EV_READ ? 1 << read_dir : 0) | (revents & EV_WRITE ? 1 << (1 - read_dir) : 0);
}

/* ---- events ---- */

/* TCP_PEEK: gathers the ClientHello, then connects to the cluster its
 * server name picks (the default one when it is not TLS, has no name, or
 * does not fit in SNI_MAX_PEEK). */
static void tcp_peek_read(struct tcp_session *s)
{
    uint8_t *at = s->peek + PROXY_PROTO_BUILD_MAX;
    ssize_t n = recv(s->cs.fd, at + s->peek_len, SNI_MAX_PEEK - s->peek_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        tcp_end(s);
        return;
    }
    s->peek_len += (size_t)n;
    char name[SNI_MAX_NAME + 1];
    int rc = sni_parse(at, s->peek_len, name, sizeof(name));
    if (rc == -EAGAIN && s->peek_len < SNI_MAX_PEEK)
        return;
    tcp_use_cluster(s, tcp_sni_cluster(s->lst->l4, rc == 1 ? name : NULL));
    log_debug("tcp client %s: server name %s: cluster %s", s->client, rc == 1 ? name : "(none)",
              s->cl->cfg->name);
    ev_io_stop(tcp_loop(s), &s->cio);
    tcp_connect(s);
}

/* TCP_HANDSHAKE: steps the client's TLS handshake; once done, connects to
 * the cluster the first sni rule matching the server name it asked for
 * names (the listener's without a match or a name). A failed handshake is
 * counted (weir_tls_handshakes_total) and ends the session. */
static void tcp_client_handshake(struct tcp_session *s)
{
    int rc = tls_handshake(&s->cs);
    if (rc == -EAGAIN) {
        tcp_watch(s, &s->cio, s->cs.fd, s->cs.rd_want);
        return;
    }
    if (rc < 0) {
        log_debug("tcp client %s: TLS handshake failed, closing", s->client);
        tcp_end(s);
        return;
    }
    char name[SNI_MAX_NAME + 1];
    int named = tls_server_name(&s->cs, name, sizeof(name));
    tcp_use_cluster(s, tcp_sni_cluster(s->lst->l4, named ? name : NULL));
    log_debug("tcp client %s: TLS %s, server name %s: cluster %s", s->client, tls_version(&s->cs),
              named ? name : "(none)", s->cl->cfg->name);
    ev_io_stop(tcp_loop(s), &s->cio);
    tcp_connect(s);
}

static void tcp_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct tcp_session *s = io->data;
    if (s->state == TCP_HANDSHAKE) {
        tcp_client_handshake(s);
        return;
    }
    if (s->state == TCP_PEEK) {
        tcp_peek_read(s);
        return;
    }
    tcp_pump(s, tcp_dirs_of(&s->cs, revents, 0));
}

static void tcp_upstream_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct tcp_session *s = io->data;
    if (s->state == TCP_CONNECTING) {
        int rc = net_connect_result(s->us.fd);
        if (rc != 0) {
            tcp_connect_failed(s, -rc);
            return;
        }
        tcp_connected(s);
        return;
    }
    if (s->state == TCP_UP_HANDSHAKE) {
        tcp_up_handshake(s);
        return;
    }
    tcp_pump(s, tcp_dirs_of(&s->us, revents, 1));
}

static void tcp_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct tcp_session *s = t->data;
    if (s->state == TCP_HANDSHAKE) {
        log_info("tcp client %s: no TLS handshake within timeouts.client_header; closing",
                 s->client);
        tcp_end(s);
        return;
    }
    if (s->state == TCP_PEEK) {
        log_info("tcp client %s: no TLS ClientHello in time for the sni rules; closing",
                 s->client);
        tcp_end(s);
        return;
    }
    if (s->state == TCP_CONNECTING || s->state == TCP_UP_HANDSHAKE) {
        tcp_connect_failed(s, 0);
        return;
    }
    double idle = (double)s->lst->idle_timeout_ms / 1000.0;
    double quiet = ev_now(loop) - s->last_io;
    if (quiet >= idle) {
        log_info("tcp client %s: idle for %.0f s, closing the session", s->client, quiet);
        tcp_end(s);
        return;
    }
    ev_timer_set(t, idle - quiet, 0);
    ev_timer_start(loop, t);
}

/* ---- protocol hooks ---- */

/* Starts a session on fd for client src (dst: the address it reached, NULL:
 * the socket's own). Takes fd. */
static void tcp_start(struct wctx *wc, struct wlistener *wl, int fd,
                      const struct sockaddr_storage *src, const struct sockaddr_storage *dst)
{
    struct l4_worker *lw = l4_worker_of(wc);
    const struct cfg_listener *lst = &wc->snap->cfg->listeners[wl->index];
    struct tcp_session *s = lw ? calloc(1, sizeof(*s)) : NULL;
    int peek = lst->l4->n_sni && !lst->tls; /* a tls listener reads the name in the handshake */
    if (s && peek && !(s->peek = malloc(PROXY_PROTO_BUILD_MAX + SNI_MAX_PEEK))) {
        free(s);
        s = NULL;
    }
    if (!s) {
        close(fd);
        return;
    }
    s->wc = wc;
    s->wl = wl;
    s->snap = wc->snap;
    snapshot_ref(s->snap);
    s->lst = lst;
    sio_init_closed(&s->us);
    if (lst->tls) {
        if (tls_accept_sio(lst->tls, fd, &s->cs) < 0) { /* fd closed */
            snapshot_unref(s->snap);
            free(s);
            return;
        }
    } else {
        sio_init_plain(&s->cs, fd);
    }
    s->d[0].pipe[0] = s->d[0].pipe[1] = s->d[1].pipe[0] = s->d[1].pipe[1] = -1;
    s->src = *src;
    socklen_t dl = sizeof(s->dst);
    if (dst)
        s->dst = *dst;
    else if (!lst->l4->proxy_protocol || getsockname(fd, (struct sockaddr *)&s->dst, &dl) == -1)
        s->dst.ss_family = AF_UNSPEC; /* only a PROXY header needs it */
    units_format_addr((const struct sockaddr *)src, s->client, sizeof(s->client));
    char *colon = strrchr(s->client, ':'); /* hash the address, not the port */
    s->key_hash = hash_bytes(s->client, colon ? (size_t)(colon - s->client) : strlen(s->client));
    ev_io_init(&s->cio, tcp_client_cb, fd, EV_READ);
    s->cio.data = s;
    ev_io_init(&s->uio, tcp_upstream_cb, -1, EV_READ);
    s->uio.data = s;
    ev_init(&s->timer, tcp_timer_cb);
    s->timer.data = s;
    s->next = lw->sessions;
    if (lw->sessions)
        lw->sessions->prev = s;
    lw->sessions = s;
    server_conn_open(wc, wl);
    if (lst->tls) {
        s->state = TCP_HANDSHAKE;
        tcp_use_cluster(s, lst->l4->cluster); /* until the server name says otherwise */
        ev_io_start(tcp_loop(s), &s->cio);
        tcp_timer_arm(s, lst->header_timeout_ms);
        tcp_client_handshake(s); /* the ClientHello often came with the connection */
        return;
    }
    if (s->peek) {
        s->state = TCP_PEEK;
        tcp_use_cluster(s, lst->l4->cluster); /* until the name says otherwise */
        ev_io_start(tcp_loop(s), &s->cio);
        tcp_timer_arm(s, lst->header_timeout_ms);
        return;
    }
    tcp_use_cluster(s, lst->l4->cluster);
    tcp_connect(s);
}

int tcp_worker_init(struct wctx *wc)
{
    struct l4_worker *lw = calloc(1, sizeof(*lw));
    if (!lw)
        return -ENOMEM;
    wc->proto[CFG_PROTOCOL_TCP] = lw;
    return 0;
}

void tcp_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer)
{
    l4_accept(wc, wl, fd, peer, tcp_start);
}

void tcp_drain(struct wctx *wc)
{
    l4_accept_drain(wc);
    struct l4_worker *lw = l4_worker_of(wc);
    struct tcp_session *s = lw ? lw->sessions : NULL;
    while (s) {
        struct tcp_session *next = s->next;
        if (s->state == TCP_PEEK || s->state == TCP_HANDSHAKE)
            tcp_end(s); /* nothing was forwarded yet; connected sessions run to their end */
        s = next;
    }
}

void tcp_worker_free(struct wctx *wc)
{
    struct l4_worker *lw = l4_worker_of(wc);
    if (!lw)
        return;
    l4_accept_drain(wc);
    while (lw->sessions)
        tcp_end(lw->sessions);
    while (lw->n_pipes) {
        lw->n_pipes--;
        close(lw->pipes[lw->n_pipes][0]);
        close(lw->pipes[lw->n_pipes][1]);
    }
    free(lw);
    wc->proto[CFG_PROTOCOL_TCP] = NULL;
}

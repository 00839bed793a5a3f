/* l4_accept: see l4_accept.h.
 *
 *   accept ─► peer in accept_proxy? ── no ──► next(peer)
 *                   │ yes
 *                   ▼
 *   waiter: peek ─► proxy_proto_parse ─► complete: recv exactly the header,
 *           ▲            │                          next(header's client)
 *           └─ need more: consume what was peeked (every byte of a valid
 *                         prefix belongs to the header), wait for more
 *
 * Reading with MSG_PEEK first and consuming only header bytes leaves the
 * connection's own data in the socket for the protocol, so no buffer is
 * handed over. A waiter counts as a connection of its listener
 * (server_conn_open) until the protocol takes the fd; it must never read a
 * byte past the header. */
#include "l4/l4_accept.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/units.h"
#include "l4/l4_worker.h"
#include "l4/proxy_proto.h"

struct l4_waiter {
    ev_io io;
    ev_timer timer;
    int fd;
    struct wctx *wc;
    struct wlistener *wl;
    l4_accept_fn next;
    struct sockaddr_storage peer;
    struct l4_waiter *prev, *after;
    size_t have;                   /* header bytes consumed so far, in hdr */
    uint8_t hdr[PROXY_PROTO_V2_MAX];
};

static int l4_trusted(const struct l4_cfg *c, const struct sockaddr_storage *peer)
{
    struct cidr a;
    return c && c->n_trusted && cidr_from_sockaddr(peer, &a) == 0 &&
           cidr_list_contains(c->trusted, c->n_trusted, &a);
}

/* Unlinks and frees w; closes its fd unless it was handed on (-1). */
static void l4_waiter_end(struct l4_waiter *w)
{
    struct wctx *wc = w->wc;
    struct l4_worker *lw = l4_worker_of(wc);
    if (wc->worker.loop) {
        ev_io_stop(wc->worker.loop, &w->io);
        ev_timer_stop(wc->worker.loop, &w->timer);
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->prev)
        w->prev->after = w->after;
    else
        lw->waiters = w->after;
    if (w->after)
        w->after->prev = w->prev;
    struct wlistener *wl = w->wl;
    free(w);
    server_conn_close(wc, wl);
}

/* The header is complete (len bytes, parsed into h): consume its rest and
 * hand the connection on. */
static void l4_waiter_done(struct l4_waiter *w, size_t len, const struct proxy_proto_hdr *h)
{
    while (w->have < len) {
        ssize_t n = recv(w->fd, w->hdr + w->have, len - w->have, 0);
        if (n <= 0) { /* it was peeked: only EINTR can interrupt */
            if (n < 0 && errno == EINTR)
                continue;
            l4_waiter_end(w);
            return;
        }
        w->have += (size_t)n;
    }
    int fd = w->fd;
    w->fd = -1;
    const struct sockaddr_storage *src = h->local ? &w->peer : &h->src;
    const struct sockaddr_storage *dst = h->local ? NULL : &h->dst;
    /* the protocol opens its own count before the waiter drops its one */
    w->next(w->wc, w->wl, fd, src, dst);
    l4_waiter_end(w);
}

static void l4_waiter_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct l4_waiter *w = io->data;
    ssize_t n = recv(w->fd, w->hdr + w->have, sizeof(w->hdr) - w->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        l4_waiter_end(w);
        return;
    }
    struct proxy_proto_hdr h;
    int rc = proxy_proto_parse(w->hdr, w->have + (size_t)n, &h);
    if (rc > 0) {
        l4_waiter_done(w, (size_t)rc, &h);
        return;
    }
    char addr[64];
    if (rc < 0) {
        units_format_addr((const struct sockaddr *)&w->peer, addr, sizeof(addr));
        log_info("client %s: bad PROXY header from a trusted address (accept_proxy); closing",
                 addr);
        l4_waiter_end(w);
        return;
    }
    /* a valid beginning: all of it is header, take it out of the socket */
    ssize_t got = recv(w->fd, w->hdr + w->have, (size_t)n, 0);
    if (got > 0)
        w->have += (size_t)got;
}

static void l4_waiter_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct l4_waiter *w = t->data;
    char addr[64];
    units_format_addr((const struct sockaddr *)&w->peer, addr, sizeof(addr));
    log_info("client %s: no whole PROXY header in time (accept_proxy); closing", addr);
    l4_waiter_end(w);
}

void l4_accept(struct wctx *wc, struct wlistener *wl, int fd, const struct sockaddr_storage *peer,
               l4_accept_fn next)
{
    const struct cfg_listener *lst = &wc->snap->cfg->listeners[wl->index];
    if (!l4_trusted(lst->l4, peer)) {
        next(wc, wl, fd, peer, NULL);
        return;
    }
    struct l4_worker *lw = l4_worker_of(wc);
    struct l4_waiter *w = lw ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        close(fd);
        return;
    }
    w->fd = fd;
    w->wc = wc;
    w->wl = wl;
    w->next = next;
    w->peer = *peer;
    w->after = lw->waiters;
    if (lw->waiters)
        lw->waiters->prev = w;
    lw->waiters = w;
    server_conn_open(wc, wl);
    ev_io_init(&w->io, l4_waiter_io_cb, fd, EV_READ);
    w->io.data = w;
    ev_timer_init(&w->timer, l4_waiter_timer_cb, (double)lst->header_timeout_ms / 1000.0, 0);
    w->timer.data = w;
    ev_io_start(wc->worker.loop, &w->io);
    ev_timer_start(wc->worker.loop, &w->timer);
}

void l4_accept_drain(struct wctx *wc)
{
    struct l4_worker *lw = l4_worker_of(wc);
    while (lw && lw->waiters)
        l4_waiter_end(lw->waiters);
}

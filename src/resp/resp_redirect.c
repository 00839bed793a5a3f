/* resp_redirect: see resp_redirect.h. */
#include "resp/resp_redirect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rcluster.h"
#include "resp/resp_backend.h"
#include "resp/resp_cmap.h"
#include "resp/resp_session.h"

int resp_redirect_keep(struct resp_msg *m, const struct resp_conn *c, const struct resp_out_mark *mk,
                       uint32_t slot)
{
    m->slot = (uint16_t)slot;
    uint64_t n = c->out_bytes - mk->bytes, skip = c->out_bytes - n;
    if (n == 0 || n > UINT32_MAX)
        return -EINVAL;
    char *req = malloc(n);
    if (!req)
        return -ENOMEM;
    /* the request is the last n bytes of c's unwritten output: nothing was
     * written to the socket since the mark (that happens at the round's end) */
    uint64_t before = 0, got = 0;
    for (const struct resp_chunk *k = c->out_head; k; k = k->next) {
        uint64_t len = k->len - k->pos;
        const char *p = k->data + k->pos;
        if (before + len <= skip) {
            before += len;
            continue;
        }
        uint64_t from = skip > before ? skip - before : 0;
        memcpy(req + got, p + from, len - from);
        got += len - from;
        before += len;
    }
    free(m->req);
    m->req = req;
    m->req_len = (uint32_t)n;
    return 0;
}

/* The host of srv's "host:port" name with rd's port into out. */
static void resp_redirect_self(const struct resp_server *srv, const struct rcluster_redirect *rd,
                               char *out, size_t size)
{
    const char *colon = strrchr(srv->name, ':');
    int hlen = colon ? (int)(colon - srv->name) : (int)strlen(srv->name);
    snprintf(out, size, "%.*s:%d", hlen, srv->name, rd->port);
}

/* ---- retries ---- */

static struct ev_loop *resp_redirect_loop(const struct resp_wctx *rw)
{
    return rw->wc->worker.loop;
}

/* The session's map is old: the main thread fetches it again soon. */
static void resp_redirect_stale(struct resp_wctx *rw, const struct resp_session *s)
{
    if (s->snap == rw->snap && s->route && s->route->hs)
        resp_cmap_stale(s->route->hs);
}

/* Sends m again to the node the current map names for its slot. */
static void resp_retry_send(struct resp_wctx *rw, struct resp_msg *m)
{
    struct resp_session *s = m->s;
    struct resp_route *r = resp_route_get(rw, s->lst->redis_cluster->name);
    struct resp_server *srv = r ? resp_route_server(r, m->slot, 0) : NULL;
    struct resp_conn *c = srv ? resp_session_srv_conn(s, srv) : NULL;
    if (!c) {
        static const char down[] = "-CLUSTERDOWN Hash slot not served\r\n";
        resp_session_reply(rw, m, down, sizeof(down) - 1);
        return;
    }
    if (resp_conn_write(c, m->req, m->req_len) < 0) {
        resp_msg_fail(rw, m, "weir: out of memory");
        return;
    }
    resp_conn_push(c, m);
}

static void resp_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_wctx *rw = w->data;
    struct resp_msg *m = rw->retry_head;
    ev_tstamp now = ev_now(loop);
    rw->retry_head = rw->retry_tail = NULL;
    resp_routes_sync(rw); /* the newest map */
    while (m) {
        struct resp_msg *next = m->bnext;
        m->bnext = NULL;
        if (m->t_sent > now && m->s) { /* not due yet: back in the list */
            if (rw->retry_tail)
                rw->retry_tail->bnext = m;
            else
                rw->retry_head = m;
            rw->retry_tail = m;
        } else {
            m->in_backend = 0;
            if (m->s)
                resp_retry_send(rw, m);
            else if (!m->parent) /* its client left */
                resp_msg_put(rw, m);
        }
        m = next;
    }
    if (!rw->retry_head)
        ev_timer_stop(loop, w);
    resp_run_dirty(rw);
    resp_flush_all(rw);
}

/* Queues m (on no connection) to be sent again after a delay that grows
 * with its attempts. While there it counts as in flight (in_backend): a
 * session that closes leaves it as an orphan, freed here. */
static void resp_retry_later(struct resp_wctx *rw, struct resp_msg *m)
{
    struct ev_loop *loop = resp_redirect_loop(rw);
    m->redirects++;
    double delay = 0.1 * m->redirects;
    m->t_sent = ev_now(loop) + (delay > 1.0 ? 1.0 : delay);
    m->in_backend = 1;
    m->conn = NULL;
    m->bnext = NULL;
    if (rw->retry_tail)
        rw->retry_tail->bnext = m;
    else
        rw->retry_head = m;
    rw->retry_tail = m;
    if (!ev_is_active(&rw->retry_timer)) {
        ev_timer_init(&rw->retry_timer, resp_retry_cb, 0.05, 0.05);
        rw->retry_timer.data = rw;
        ev_timer_start(loop, &rw->retry_timer);
    }
}

int resp_redirect_lost(struct resp_wctx *rw, struct resp_msg *m)
{
    if (!m->req || !m->s || m->redirects >= RESP_REDIRECT_MAX)
        return 0;
    resp_redirect_stale(rw, m->s); /* the primary may have moved */
    resp_retry_later(rw, m);
    return 1;
}

void resp_redirect_cleanup(struct resp_wctx *rw)
{
    struct ev_loop *loop = resp_redirect_loop(rw);
    if (loop)
        ev_timer_stop(loop, &rw->retry_timer);
    while (rw->retry_head) {
        struct resp_msg *m = rw->retry_head;
        rw->retry_head = m->bnext;
        m->in_backend = 0;
        m->s = NULL;
        if (!m->parent)
            resp_msg_put(rw, m);
    }
    rw->retry_tail = NULL;
}

/* An error that asks to try again later: TRYAGAIN (keys of a multi-key
 * command split by a moving slot), CLUSTERDOWN (a failover under way). */
static int resp_redirect_later(const char *data, size_t n)
{
    return (n > 9 && memcmp(data, "-TRYAGAIN", 9) == 0) ||
           (n > 12 && memcmp(data, "-CLUSTERDOWN", 12) == 0);
}

int resp_redirect(struct resp_conn *c, struct resp_msg *m, const char *data, size_t n)
{
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    struct resp_wctx *rw = c->rw;
    struct resp_session *s = m->s;
    struct rcluster_redirect rd;
    char name[RCLUSTER_HOST_MAX + 16];

    if (!s || m->redirects >= RESP_REDIRECT_MAX || n < 3)
        return 0;
    if (resp_redirect_later(data, n)) {
        if (data[1] == 'C')
            resp_redirect_stale(rw, s);
        resp_retry_later(rw, m);
        return 1;
    }
    if (rcluster_redirect_parse(data + 1, n - 3, &rd) < 0)
        return 0;
    if (!rd.ask)
        resp_redirect_stale(rw, s); /* the slot moved: the map is old */
    if (!rd.host[0])
        resp_redirect_self(c->srv, &rd, name, sizeof(name));
    else if (strchr(rd.host, ':'))
        snprintf(name, sizeof(name), "[%s]:%d", rd.host, rd.port);
    else
        snprintf(name, sizeof(name), "%s:%d", rd.host, rd.port);
    struct resp_server *srv = resp_server_at(rw, name, c->srv);
    struct resp_conn *to = srv ? resp_session_srv_conn(s, srv) : NULL;
    if (!to)
        return 0;
    if (rd.ask) { /* its reply (+OK) is dropped: an orphan msg */
        struct resp_msg *a = resp_msg_get(rw);
        if (!a || resp_conn_write(to, asking, sizeof(asking) - 1) < 0) {
            if (a)
                resp_msg_put(rw, a);
            return 0;
        }
        resp_conn_push(to, a);
    }
    if (resp_conn_write(to, m->req, m->req_len) < 0)
        return 0; /* an ASKING alone does no harm */
    m->redirects++;
    log_debug("redis: %s slot %u from %s to %s", rd.ask ? "ASK" : "MOVED", rd.slot, c->srv->name,
              srv->name);
    resp_conn_push(to, m);
    return 1;
}

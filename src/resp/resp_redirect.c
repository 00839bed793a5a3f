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

int resp_redirect_keep(struct resp_msg *m, const struct resp_conn *c, const struct resp_out_mark *mk)
{
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

int resp_redirect(struct resp_conn *c, struct resp_msg *m, const char *data, size_t n)
{
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    struct resp_wctx *rw = c->rw;
    struct resp_session *s = m->s;
    struct rcluster_redirect rd;
    char name[RCLUSTER_HOST_MAX + 16];

    if (!s || m->redirects >= RESP_REDIRECT_MAX || n < 3 ||
        rcluster_redirect_parse(data + 1, n - 3, &rd) < 0)
        return 0;
    if (!rd.ask && s->snap == rw->snap && s->route && s->route->hs)
        resp_cmap_stale(s->route->hs); /* the slot moved: the map is old */
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

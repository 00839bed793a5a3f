/* admin: the admin listener (see admin.h).
 *
 *   accept -> conn: read until a whole request (head + Content-Length body)
 *          -> check the bearer token -> route table -> handler fills the
 *             answer -> write it -> next request (keep-alive) or close
 *
 * It runs on the main thread's loop, beside reloads and health checks, so
 * a handler may read the server's state directly. It is small and strict:
 * every request is parsed by the same HTTP parser as the proxy's, bodies
 * are length-delimited and capped (admin.limits.body), connections are
 * capped (admin.limits.connections) and closed after ADMIN_IDLE_S without
 * a whole request. */
#include "admin/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin/admin_internal.h"
#include "core/log.h"
#include "core/net.h"
#include "server/server.h"

#define ADMIN_IDLE_S 10.0
#define ADMIN_MAX_HEAD 16384

struct admin_conn {
    struct admin *a;
    int fd;
    ev_io io;
    ev_timer timer;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    int close_after;               /* close once out is written */
    struct admin_conn *next, *prev;
};

struct admin_route {
    const char *path;              /* "/api/v1/clusters"; a "*" segment matches any one */
    void (*fn)(struct admin_req *r);
};

/* Served without the bearer token: the dashboard's static files, which hold
 * no data (a browser cannot send a token when it opens a page). */
static const struct admin_route admin_open_routes[] = {
    { "/", admin_dashboard_page },
    { "/dashboard/*", admin_dashboard_asset },
};

static const struct admin_route admin_routes[] = {
    { "/metrics", admin_metrics_scrape },
    { "/api/v1/status", admin_api_status },
    { "/api/v1/clusters", admin_api_clusters },
    { "/api/v1/clusters/*", admin_api_clusters },
    { "/api/v1/listeners", admin_api_listeners },
    { "/api/v1/clusters/*/endpoints", admin_api_endpoints },
    { "/api/v1/clusters/*/endpoints/*", admin_api_endpoints },
    { "/api/v1/reload", admin_api_reload },
    { "/api/v1/caches/*/purge", admin_api_cache_purge },
    { "/api/v1/register", admin_api_register },
    { "/api/v1/register/*/*", admin_api_register },
    { "/api/v1/autoscale", admin_api_autoscale },
    { "/api/v1/autoscale/*", admin_api_autoscale },
};

static const struct cfg_admin *admin_cfg(const struct admin *a)
{
    return a->srv->snap ? a->srv->snap->cfg->admin : NULL;
}

/* ---- answers ----------------------------------------------------------- */

void admin_reply(struct admin_req *r, int status, const char *content_type, const char *body,
                 size_t len)
{
    free(r->resp);
    r->resp = malloc(len ? len : 1);
    r->resp_len = r->resp ? len : 0;
    if (r->resp)
        memcpy(r->resp, body, len);
    r->status = r->resp || len == 0 ? status : 500;
    r->content_type = content_type;
}

void admin_reply_json(struct admin_req *r, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        admin_reply(r, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(r->resp);
    size_t n = strlen(text);
    r->resp = text;
    r->resp[n] = '\0';
    r->resp_len = n;
    r->status = status;
    r->content_type = "application/json";
}

void admin_reply_error(struct admin_req *r, int status, const char *message, const char *detail)
{
    admin_reply_json(r, status, json_pack("{s:s, s:s?}", "error", message, "detail", detail));
}

/* ---- connections ------------------------------------------------------- */

static void admin_conn_free(struct admin_conn *c)
{
    struct admin *a = c->a;
    ev_io_stop(a->loop, &c->io);
    ev_timer_stop(a->loop, &c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    free(c->in);
    free(c->out);
    free(c);
    if (a->fd >= 0 && !ev_is_active(&a->io))
        ev_io_start(a->loop, &a->io); /* below the cap again */
}

/* Appends the answer of r (or a plain `status` when r is NULL) to out. */
static int admin_conn_queue(struct admin_conn *c, const struct admin_req *r, int status,
                            const char *text)
{
    const char *ctype = r ? r->content_type : "text/plain";
    const char *body = r ? r->resp : text;
    size_t blen = r ? r->resp_len : strlen(text);
    int code = r ? r->status : status;
    char head[1024], length[48] = "", etag[96] = "";
    if (code != 304) /* a 304's Content-Length would have to be the 200's (RFC 9110 8.6) */
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", blen);
    if (r && r->etag)
        snprintf(etag, sizeof(etag), "ETag: %s\r\n", r->etag);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sCache-Control: %s\r\n%s%s%s%s%s"
                     "%s%s\r\n",
                     code, http_status_reason(code), ctype ? ctype : "text/plain", length,
                     r && r->cache_control ? r->cache_control : "no-store", etag,
                     r && r->headers ? r->headers : "", r && r->allow ? "Allow: " : "",
                     r && r->allow ? r->allow : "", r && r->allow ? "\r\n" : "",
                     code == 401 ? "WWW-Authenticate: Bearer realm=\"weir admin\"\r\n" : "",
                     c->close_after ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    int head_only = r && r->msg->method == HTTP_METHOD_HEAD;
    size_t need = c->out_len + (size_t)n + (head_only ? 0 : blen);
    char *o = realloc(c->out, need ? need : 1);
    if (!o)
        return -ENOMEM;
    c->out = o;
    memcpy(c->out + c->out_len, head, (size_t)n);
    c->out_len += (size_t)n;
    if (!head_only && blen) {
        memcpy(c->out + c->out_len, body, blen);
        c->out_len += blen;
    }
    return 0;
}

/* Compares in time that depends only on the lengths. */
static int admin_token_ok(const char *given, size_t n, const char *token)
{
    size_t m = strlen(token);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n && i < m; i++)
        diff |= (unsigned char)(given[i] ^ token[i]);
    return diff == 0;
}

/* 0 when the request may go on, else the status to answer (401/403). */
static int admin_authorize(const struct admin *a, const struct http_msg *msg)
{
    const struct cfg_admin *ac = admin_cfg(a);
    if (!ac || !ac->token)
        return 0;
    int h = http_msg_find(msg, "authorization");
    if (h < 0)
        return 401;
    struct http_slice v = msg->headers[h].value;
    if (v.len < 7 || strncasecmp(v.p, "Bearer ", 7) != 0)
        return 401;
    return admin_token_ok(v.p + 7, v.len - 7, ac->token) ? 0 : 403;
}

/* Splits the path into r->seg; 0, or -1 when it is too long or odd. */
static int admin_split_path(struct admin_req *r)
{
    const struct http_slice *p = &r->msg->path;
    if (p->len == 0 || p->len >= sizeof(r->path) || p->p[0] != '/')
        return -1;
    memcpy(r->path, p->p, p->len);
    r->path[p->len] = '\0';
    char *s = r->path + 1;
    r->n_seg = 0;
    while (*s) {
        if (r->n_seg == sizeof(r->seg) / sizeof(r->seg[0]))
            return -1;
        r->seg[r->n_seg++] = s;
        char *slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = '\0';
        s = slash + 1;
    }
    return 0;
}

/* Whether the route pattern matches the request's segments. */
static int admin_route_match(const char *pattern, const struct admin_req *r)
{
    size_t i = 0;
    const char *p = pattern + 1;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i >= r->n_seg)
            return 0;
        if (!(len == 1 && p[0] == '*') &&
            (strlen(r->seg[i]) != len || memcmp(r->seg[i], p, len) != 0))
            return 0;
        i++;
        p += len + (end ? 1 : 0);
    }
    return i == r->n_seg;
}

/* The row of routes[n] matching r's path, or NULL. */
static const struct admin_route *admin_route_find(const struct admin_route *routes, size_t n,
                                                  const struct admin_req *r)
{
    for (size_t i = 0; i < n; i++)
        if (admin_route_match(routes[i].path, r))
            return &routes[i];
    return NULL;
}

#define ADMIN_ROUTE_FIND(table, r) admin_route_find(table, sizeof(table) / sizeof(table[0]), r)

static void admin_dispatch(struct admin_req *r)
{
    int split = admin_split_path(r);
    const struct admin_route *route = split == 0 ? ADMIN_ROUTE_FIND(admin_open_routes, r) : NULL;
    if (route) {
        route->fn(r);
        return;
    }
    int auth = admin_authorize(r->a, r->msg);
    if (auth) {
        admin_reply_error(r, auth, auth == 401 ? "authorization required" : "bad token",
                          "send Authorization: Bearer <the token of admin.token_file>");
        return;
    }
    route = split == 0 ? ADMIN_ROUTE_FIND(admin_routes, r) : NULL;
    if (route)
        route->fn(r);
    else
        admin_reply_error(r, 404, "no such admin path", NULL);
}

/* Handles the whole requests at the front of in. Returns 0, or -1 when the
 * connection must close (after out is written). */
static int admin_conn_process(struct admin_conn *c)
{
    static struct http_msg msg; /* main thread only */
    const struct cfg_admin *ac = admin_cfg(c->a);
    uint64_t max_body = ac ? ac->max_body_bytes : (1u << 20);
    while (c->in_len > 0 && !c->close_after) {
        struct http_limits lim = { 8192, ADMIN_MAX_HEAD, 100 };
        http_msg_init(&msg);
        int n = http_parse_request(c->in, c->in_len, &msg, &lim);
        if (n == HTTP_PARSE_PARTIAL)
            return 0;
        if (n < 0) {
            c->close_after = 1;
            return admin_conn_queue(c, NULL, msg.error_status ? msg.error_status : 400,
                                    "bad request\n");
        }
        if (msg.body_kind == HTTP_BODY_CHUNKED) {
            c->close_after = 1;
            return admin_conn_queue(c, NULL, 411, "send a Content-Length body\n");
        }
        uint64_t body = msg.body_kind == HTTP_BODY_LENGTH ? msg.content_length : 0;
        if (body > max_body) {
            c->close_after = 1;
            return admin_conn_queue(c, NULL, 413, "body over admin.limits.body\n");
        }
        if (c->in_len < (size_t)n + body)
            return 0;
        struct admin_req r = { .a = c->a, .msg = &msg, .body = c->in + n, .body_len = body };
        if (!msg.keep_alive)
            c->close_after = 1;
        admin_dispatch(&r);
        int rc = admin_conn_queue(c, &r, 0, NULL);
        free(r.resp);
        if (rc < 0)
            return -1;
        size_t used = (size_t)n + body;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    return 0;
}

static void admin_conn_cb(struct ev_loop *loop, ev_io *w, int revents);

static void admin_conn_events(struct admin_conn *c)
{
    int want = c->out_off < c->out_len ? EV_WRITE : (c->close_after ? 0 : EV_READ);
    if (want == 0) {
        admin_conn_free(c);
        return;
    }
    if (c->io.events != want) {
        ev_io_stop(c->a->loop, &c->io);
        ev_io_set(&c->io, c->fd, want);
        ev_io_start(c->a->loop, &c->io);
    }
}

static int admin_conn_read(struct admin_conn *c)
{
    const struct cfg_admin *ac = admin_cfg(c->a);
    size_t cap_max = ADMIN_MAX_HEAD + (ac ? ac->max_body_bytes : (1u << 20));
    if (c->in_len == c->in_cap) {
        if (c->in_cap >= cap_max)
            return -1;
        size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
        if (cap > cap_max)
            cap = cap_max;
        char *in = realloc(c->in, cap);
        if (!in)
            return -1;
        c->in = in;
        c->in_cap = cap;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    c->in_len += (size_t)n;
    ev_timer_again(c->a->loop, &c->timer);
    return admin_conn_process(c);
}

static int admin_conn_write(struct admin_conn *c)
{
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0)
        return -1;
    c->out_off += (size_t)n;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        /* requests that came in while this answer was written */
        if (!c->close_after && c->in_len && admin_conn_process(c) < 0)
            return -1;
    }
    return 0;
}

static void admin_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin_conn *c = w->data;
    int rc = 0;
    if (revents & EV_READ)
        rc = admin_conn_read(c);
    if (rc == 0 && (revents & EV_WRITE))
        rc = admin_conn_write(c);
    if (rc < 0 && c->out_off == c->out_len) {
        admin_conn_free(c);
        return;
    }
    if (rc < 0)
        c->close_after = 1;
    admin_conn_events(c);
}

static void admin_conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    admin_conn_free(w->data);
}

static void admin_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin *a = w->data;
    const struct cfg_admin *ac = admin_cfg(a);
    for (int i = 0; i < 16; i++) {
        if (ac && a->n_conns >= ac->max_connections) {
            ev_io_stop(loop, &a->io); /* resumes when one closes */
            return;
        }
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = net_accept(a->fd, &peer, &plen);
        if (fd < 0)
            return;
        struct admin_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->a = a;
        c->fd = fd;
        ev_io_init(&c->io, admin_conn_cb, fd, EV_READ);
        c->io.data = c;
        ev_init(&c->timer, admin_conn_timeout);
        c->timer.repeat = ADMIN_IDLE_S;
        c->timer.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_again(loop, &c->timer);
        c->next = a->conns;
        if (a->conns)
            a->conns->prev = c;
        a->conns = c;
        a->n_conns++;
    }
}

/* ---- the listener -------------------------------------------------------- */

struct admin *admin_new(struct ev_loop *loop, struct server *srv, const char *path,
                        const char *version)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    a->srv = srv;
    a->path = path;
    a->version = version;
    a->fd = -1;
    if (admin_metrics_start(a) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void admin_close_listener(struct admin *a)
{
    if (a->fd < 0)
        return;
    ev_io_stop(a->loop, &a->io);
    close(a->fd);
    a->fd = -1;
    free(a->bound);
    a->bound = NULL;
}

int admin_apply(struct admin *a, char *err, size_t err_size)
{
    const struct cfg_admin *ac = admin_cfg(a);
    if (!ac) {
        if (a->fd >= 0)
            log_info("admin: no admin section any more; closing %s", a->bound);
        admin_close_listener(a);
        return 0;
    }
    if (a->fd >= 0 && strcmp(a->bound, ac->listen) == 0)
        return 0;
    char *bound = strdup(ac->listen);
    if (!bound) {
        snprintf(err, err_size, "admin: out of memory");
        return -ENOMEM;
    }
    int fd = net_listen_check((const struct sockaddr *)&ac->addr, ac->addrlen);
    if (fd == 0)
        fd = net_listen((const struct sockaddr *)&ac->addr, ac->addrlen, 128);
    if (fd < 0) {
        snprintf(err, err_size, "%s:%d:%d: admin: cannot listen on %s: %s", a->srv->snap->cfg->path,
                 ac->listen_mark.line, ac->listen_mark.col, ac->listen, strerror(-fd));
        free(bound);
        return fd;
    }
    admin_close_listener(a);
    a->fd = fd;
    a->bound = bound;
    ev_io_init(&a->io, admin_accept_cb, fd, EV_READ);
    a->io.data = a;
    ev_io_start(a->loop, &a->io);
    log_info("admin: listening on %s%s", ac->listen, ac->token ? " (token required)" : "");
    return 0;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    while (a->conns)
        admin_conn_free(a->conns);
    admin_close_listener(a);
    admin_metrics_stop(a);
    free(a);
}

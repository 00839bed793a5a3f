/* admin_internal: what the admin connection code (admin.c) hands to the
 * handlers (api.c, admin_metrics.c). */
#ifndef WEIR_ADMIN_ADMIN_INTERNAL_H
#define WEIR_ADMIN_ADMIN_INTERNAL_H

#include <ev.h>
#include <jansson.h>
#include <stddef.h>

#include "http/http_parser.h"

struct server;

struct admin {
    struct ev_loop *loop;
    struct server *srv;
    const char *path;              /* the configuration file */
    const char *version;
    int fd;                        /* the listening socket, -1: none */
    ev_io io;
    char *bound;                   /* the address text fd is bound to */
    struct admin_conn *conns;
    unsigned n_conns;
};

/* One request, parsed whole (head and body), and its answer. */
struct admin_req {
    struct admin *a;
    const struct http_msg *msg;
    const char *body;
    size_t body_len;
    /* path split on '/', without the leading empty segment */
    char path[1024];
    const char *seg[8];
    size_t n_seg;
    /* the answer, filled by one admin_reply* call */
    int status;
    const char *content_type;
    char *resp;                    /* malloc'd, owned by the request */
    size_t resp_len;
    const char *allow;             /* 405: the Allow field */
    const char *cache_control;     /* NULL: no-store */
    const char *etag;              /* NULL: none */
    const char *headers;           /* more header lines, each ending in CRLF, or NULL */
};

/* Answers with a body (copied). */
void admin_reply(struct admin_req *r, int status, const char *content_type, const char *body,
                 size_t len);
/* Answers with JSON (takes the reference to j). */
void admin_reply_json(struct admin_req *r, int status, json_t *j);
/* Answers {"error": message, "detail": detail or null}. */
void admin_reply_error(struct admin_req *r, int status, const char *message, const char *detail);

/* The handlers: one per path, each checks its own methods. */
void admin_api_status(struct admin_req *r);
void admin_api_clusters(struct admin_req *r);
void admin_api_listeners(struct admin_req *r);
void admin_api_reload(struct admin_req *r);
void admin_api_endpoints(struct admin_req *r);
void admin_api_register(struct admin_req *r);
void admin_api_cache_purge(struct admin_req *r);
void admin_api_autoscale(struct admin_req *r); /* api_autoscale.c */
void admin_metrics_scrape(struct admin_req *r);
/* The dashboard (dashboard.c): GET / and GET /dashboard/NAME, no token. */
void admin_dashboard_page(struct admin_req *r);
void admin_dashboard_asset(struct admin_req *r);

/* The scrape-time collectors of live state (endpoints, process). */
int admin_metrics_start(struct admin *a);
void admin_metrics_stop(struct admin *a);

#endif

/* dashboard: GET / on the admin listener, the one-page live dashboard.
 *
 *   GET /                      -> index.html
 *   GET /dashboard/NAME        -> NAME (dashboard.js, dashboard.css)
 *        browser: polls /metrics and /api/v1/clusters every second with
 *                 the bearer token it asked for once (sessionStorage), and
 *                 PATCHes endpoints to drain / enable them
 *
 * The files live in src/admin/dashboard/ and are compiled into the binary
 * by tools/embed-assets.sh, so the page works offline and cannot drift from
 * the weir that serves it. They are static and hold no state, so they are
 * served without the token (a browser cannot send one on navigation); the
 * data the page shows comes from the token-checked paths. Every answer
 * carries a strict Content-Security-Policy (only this origin's scripts,
 * styles and fetches; no inline code; DOM writes through text only) and
 * an ETag, so a reload costs a 304 until weir's binary changes. */
#include <string.h>

#include "admin/admin_internal.h"
#include "admin/dashboard_assets.h"

#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "          \
    "require-trusted-types-for 'script'"

#define DASHBOARD_HEADERS                                                                          \
    "Content-Security-Policy: " DASHBOARD_CSP "\r\n"                                               \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"

/* The embedded asset called name (the whole segment), or NULL. */
static const struct dashboard_asset *dashboard_find(const char *name)
{
    for (size_t i = 0; i < dashboard_n_assets; i++)
        if (strcmp(dashboard_assets[i].name, name) == 0)
            return &dashboard_assets[i];
    return NULL;
}

/* Whether If-None-Match names the asset's ETag (or is "*"). */
static int dashboard_not_modified(const struct admin_req *r, const struct dashboard_asset *as)
{
    int h = http_msg_find(r->msg, "if-none-match");
    if (h < 0)
        return 0;
    struct http_slice v = r->msg->headers[h].value;
    size_t n = strlen(as->etag);
    if (v.len == 1 && v.p[0] == '*')
        return 1;
    for (size_t i = 0; i + n <= v.len; i++)
        if (memcmp(v.p + i, as->etag, n) == 0)
            return 1;
    return 0;
}

/* Answers with the asset called name: 200 (or 304 for a matching
 * If-None-Match) to GET and HEAD, 405 to other methods, 404 when there is
 * no such asset. */
static void dashboard_serve(struct admin_req *r, const char *name)
{
    if (r->msg->method != HTTP_METHOD_GET && r->msg->method != HTTP_METHOD_HEAD) {
        r->allow = "GET, HEAD";
        admin_reply_error(r, 405, "method not allowed", r->allow);
        return;
    }
    const struct dashboard_asset *as = dashboard_find(name);
    if (!as) {
        admin_reply_error(r, 404, "no such dashboard file", name);
        return;
    }
    if (dashboard_not_modified(r, as))
        admin_reply(r, 304, as->content_type, "", 0);
    else
        admin_reply(r, 200, as->content_type, (const char *)as->data, as->len);
    r->cache_control = "no-cache";
    r->etag = as->etag;
    r->headers = DASHBOARD_HEADERS;
}

/* GET / */
void admin_dashboard_page(struct admin_req *r)
{
    dashboard_serve(r, "index.html");
}

/* GET /dashboard/NAME */
void admin_dashboard_asset(struct admin_req *r)
{
    dashboard_serve(r, r->seg[1]);
}

/* router: see router.h. Linear in the number of routes: route tables are
 * short, and each test is a length check before any byte comparison. */
#include "http/router.h"

#include <string.h>
#include <strings.h>

static int router_host_matches(const char *want, struct http_slice host)
{
    size_t len = host.len;
    /* strip ":port", but not inside an IPv6 literal */
    for (size_t i = len; i > 0; i--) {
        char ch = host.p[i - 1];
        if (ch == ':') {
            len = i - 1;
            break;
        }
        if (ch < '0' || ch > '9')
            break;
    }
    return strlen(want) == len && strncasecmp(want, host.p, len) == 0;
}

static int router_method_matches(const struct cfg_route *r, const struct http_msg *msg)
{
    for (size_t i = 0; i < r->n_methods; i++) {
        size_t n = strlen(r->methods[i]);
        if (n == msg->method_str.len && memcmp(r->methods[i], msg->method_str.p, n) == 0)
            return 1;
    }
    return 0;
}

static int router_headers_match(const struct cfg_route *r, const struct http_msg *msg)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        int idx = http_msg_find(msg, r->headers[i].name);
        if (idx < 0)
            return 0;
        const char *v = r->headers[i].value;
        if (v) {
            struct http_slice got = msg->headers[idx].value;
            if (strlen(v) != got.len || memcmp(v, got.p, got.len) != 0)
                return 0;
        }
    }
    return 1;
}

static int router_route_matches(const struct cfg_route *r, const struct http_msg *msg)
{
    if (r->path && (strlen(r->path) != msg->path.len || memcmp(r->path, msg->path.p, msg->path.len)))
        return 0;
    if (r->path_prefix) {
        size_t n = strlen(r->path_prefix);
        if (msg->path.len < n || memcmp(r->path_prefix, msg->path.p, n) != 0)
            return 0;
    }
    if (r->host && !router_host_matches(r->host, msg->host))
        return 0;
    if (r->n_methods && !router_method_matches(r, msg))
        return 0;
    return router_headers_match(r, msg);
}

const struct cfg_route *router_match(const struct cfg_listener *lst, const struct http_msg *msg)
{
    for (size_t i = 0; i < lst->n_routes; i++)
        if (router_route_matches(&lst->routes[i], msg))
            return &lst->routes[i];
    return NULL;
}

/* Unit tests for src/http/router.c.
 *
 * Routes and listeners are built by hand (what cfg_load would produce, minus
 * the clusters, which the router never reads); requests are real heads run
 * through http_parse_request so host, path and headers are the parser's
 * slices. Each test asserts which route (by index) wins, or NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"
#include "http/http_parser.h"
#include "http/router.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct http_msg g_msg;

/* Parses a complete request head into g_msg; fails the test if it does not
 * parse whole. `head` must outlive the use of g_msg. */
static const struct http_msg *req(const char *head)
{
    size_t len = strlen(head);

    http_msg_init(&g_msg);
    int rc = http_parse_request(head, len, &g_msg, NULL);
    if (rc != (int)len)
        fail_msg("parse of \"%s\" returned %d (%s)", head, rc, g_msg.error ? g_msg.error : "");
    return &g_msg;
}

static struct cfg_listener listener(struct cfg_route *routes, size_t n)
{
    struct cfg_listener lst;

    memset(&lst, 0, sizeof(lst));
    lst.name = "test";
    lst.routes = routes;
    lst.n_routes = n;
    return lst;
}

/* Index of the route that matches, or -1 for NULL. */
static int pick(const struct cfg_listener *lst, const char *head)
{
    const struct cfg_route *r = router_match(lst, req(head));
    if (!r)
        return -1;
    assert_true(r >= lst->routes && r < lst->routes + lst->n_routes);
    return (int)(r - lst->routes);
}

static void test_empty_route_matches_everything(void **state)
{
    struct cfg_route routes[1] = { { 0 } };
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "DELETE /x/y?z=1 HTTP/1.1\r\nHost: b.example:81\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /nohost HTTP/1.0\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

static void test_first_match_wins(void **state)
{
    struct cfg_route routes[3] = { { 0 } };
    routes[0].path_prefix = "/api";
    routes[1].path_prefix = "/api/v2";     /* shadowed by route 0 */
    routes[2].path_prefix = "/";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /api/v2/users HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /apix HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /static/a.css HTTP/1.1\r\nHost: a\r\n\r\n"), 2);
}

static void test_default_route_last(void **state)
{
    struct cfg_route routes[3] = { { 0 } };
    routes[0].host = "api.example.com";
    routes[1].path = "/health";
    /* routes[2]: no conditions, the default */
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /x HTTP/1.1\r\nHost: api.example.com\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /health HTTP/1.1\r\nHost: www.example.com\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "GET /x HTTP/1.1\r\nHost: www.example.com\r\n\r\n"), 2);
    assert_int_equal(pick(&lst, "POST /health/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
                     2);
}

static void test_no_match_is_null(void **state)
{
    struct cfg_route routes[2] = { { 0 } };
    routes[0].host = "a.example";
    routes[1].path_prefix = "/b";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /c HTTP/1.1\r\nHost: c.example\r\n\r\n"), -1);
    assert_null(router_match(&lst, req("GET / HTTP/1.1\r\nHost: z\r\n\r\n")));

    struct cfg_listener none = listener(routes, 0);
    assert_null(router_match(&none, req("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")));
}

static void test_path_exact(void **state)
{
    struct cfg_route routes[1] = { { 0 } };
    routes[0].path = "/login";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /login HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    /* the query is not part of the path */
    assert_int_equal(pick(&lst, "GET /login?next=/x HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /login? HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /login/ HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET /logi HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET /loginx HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    /* byte for byte: case matters in paths */
    assert_int_equal(pick(&lst, "GET /Login HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    /* no decoding */
    assert_int_equal(pick(&lst, "GET /log%69n HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    /* absolute-form: its path counts */
    assert_int_equal(pick(&lst, "GET http://a/login?q HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
}

static void test_path_prefix(void **state)
{
    struct cfg_route routes[1] = { { 0 } };
    routes[0].path_prefix = "/static/";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /static/ HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /static/app.js?v=2 HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /static HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET /Static/x HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    /* the prefix is matched against the path, never the query */
    assert_int_equal(pick(&lst, "GET /?/static/ HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET http://a/static/x HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

static void test_path_and_prefix_together(void **state)
{
    struct cfg_route routes[1] = { { 0 } };
    routes[0].path = "/a/b";
    routes[0].path_prefix = "/a";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /a/c HTTP/1.1\r\nHost: h\r\n\r\n"), -1);
}

static void test_host_case_insensitive_and_port(void **state)
{
    struct cfg_route routes[1] = { { 0 } };
    routes[0].host = "Example.COM";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: EXAMPLE.com\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: eXample.Com:80\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nhost:  example.com  \r\n\r\n"), 0);
    /* absolute-form: the authority is the host */
    assert_int_equal(pick(&lst, "GET http://EXAMPLE.COM:81/x HTTP/1.1\r\nHost: other\r\n\r\n"),
                     0);
    assert_int_equal(pick(&lst, "GET http://other/x HTTP/1.1\r\nHost: example.com\r\n\r\n"), -1);

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: example.co\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: example.comx:80\r\n\r\n"), -1);
    /* no Host (1.0) or an empty one never matches a host condition */
    assert_int_equal(pick(&lst, "GET / HTTP/1.0\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost:\r\n\r\n"), -1);
}

static void test_host_ip_literals(void **state)
{
    struct cfg_route routes[2] = { { 0 } };
    routes[0].host = "[::1]";
    routes[1].host = "127.0.0.1";
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n"), -1);
}

static void test_methods(void **state)
{
    char *one[] = { "GET" };
    char *two[] = { "PUT", "DELETE" };
    struct cfg_route routes[2] = { { 0 } };
    routes[0].methods = one;
    routes[0].n_methods = N(one);
    routes[1].methods = two;
    routes[1].n_methods = N(two);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), -1);
    /* methods are case-sensitive (RFC 9110 9.1) */
    assert_int_equal(pick(&lst, "get / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    /* whole-token compare, not a prefix */
    assert_int_equal(pick(&lst, "GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "DEL / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
}

static void test_method_extension(void **state)
{
    char *m[] = { "PURGE" };
    struct cfg_route routes[1] = { { 0 } };
    routes[0].methods = m;
    routes[0].n_methods = N(m);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
}

static void test_header_present(void **state)
{
    struct cfg_header_match h[] = { { "X-Canary", NULL } };
    struct cfg_route routes[2] = { { 0 } };
    routes[0].headers = h;
    routes[0].n_headers = N(h);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Canary: 1\r\n\r\n"), 0);
    /* names are case-insensitive; any value, even empty, counts */
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nx-canary: whatever\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-CANARY:\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Canary-2: 1\r\n\r\n"), 1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Canar: 1\r\n\r\n"), 1);
}

static void test_header_exact_value(void **state)
{
    struct cfg_header_match h[] = { { "X-Env", "staging" } };
    struct cfg_route routes[1] = { { 0 } };
    routes[0].headers = h;
    routes[0].n_headers = N(h);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: staging\r\n\r\n"), 0);
    /* surrounding whitespace is not part of the value */
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nx-env:  staging \t\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: Staging\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: stagin\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Env: staging2\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Env:\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
}

static void test_header_empty_value(void **state)
{
    struct cfg_header_match h[] = { { "X-Flag", "" } };
    struct cfg_route routes[1] = { { 0 } };
    routes[0].headers = h;
    routes[0].n_headers = N(h);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Flag:\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-Flag: 1\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -1);
}

static void test_headers_all_must_hold(void **state)
{
    struct cfg_header_match h[] = { { "X-A", "1" }, { "X-B", NULL } };
    struct cfg_route routes[1] = { { 0 } };
    routes[0].headers = h;
    routes[0].n_headers = N(h);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-B: z\r\nX-A: 1\r\n\r\n"), 0);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-B: z\r\n\r\n"), -1);
    assert_int_equal(pick(&lst, "GET / HTTP/1.1\r\nHost: a\r\nX-A: 2\r\nX-B: z\r\n\r\n"), -1);
}

static void test_all_conditions_together(void **state)
{
    char *m[] = { "POST" };
    struct cfg_header_match h[] = { { "Content-Type", "application/json" } };
    struct cfg_route routes[2] = { { 0 } };
    routes[0].host = "api.example";
    routes[0].path_prefix = "/v1/";
    routes[0].methods = m;
    routes[0].n_methods = N(m);
    routes[0].headers = h;
    routes[0].n_headers = N(h);
    struct cfg_listener lst = listener(routes, N(routes));

    assert_int_equal(pick(&lst, "POST /v1/items HTTP/1.1\r\nHost: API.example:443\r\n"
                                "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
                     0);
    /* each condition failing alone sends it to the default route */
    assert_int_equal(pick(&lst, "POST /v1/items HTTP/1.1\r\nHost: web.example\r\n"
                                "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
                     1);
    assert_int_equal(pick(&lst, "POST /v2/items HTTP/1.1\r\nHost: api.example\r\n"
                                "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
                     1);
    assert_int_equal(pick(&lst, "PUT /v1/items HTTP/1.1\r\nHost: api.example\r\n"
                                "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
                     1);
    assert_int_equal(pick(&lst, "POST /v1/items HTTP/1.1\r\nHost: api.example\r\n"
                                "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n"),
                     1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_route_matches_everything),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_default_route_last),
        cmocka_unit_test(test_no_match_is_null),
        cmocka_unit_test(test_path_exact),
        cmocka_unit_test(test_path_prefix),
        cmocka_unit_test(test_path_and_prefix_together),
        cmocka_unit_test(test_host_case_insensitive_and_port),
        cmocka_unit_test(test_host_ip_literals),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_method_extension),
        cmocka_unit_test(test_header_present),
        cmocka_unit_test(test_header_exact_value),
        cmocka_unit_test(test_header_empty_value),
        cmocka_unit_test(test_headers_all_must_hold),
        cmocka_unit_test(test_all_conditions_together),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

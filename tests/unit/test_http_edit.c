/* Unit tests for src/http/http_edit.c: edits of a parsed head as route steps
 * make them, checked through what http_write then sends. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_edit.h"
#include "http/http_parser.h"
#include "http/http_write.h"

static struct http_msg g_msg;

static void parse(const char *head)
{
    http_msg_init(&g_msg);
    assert_int_equal(http_parse_request(head, strlen(head), &g_msg, NULL), (int)strlen(head));
}

static const char *write_head(void)
{
    static char out[4096];
    struct http_fwd_info info = { .client_ip = "10.0.0.1", .proto = "http", .request_id = "id" };
    int n = http_write_request_head(out, sizeof(out) - 1, &g_msg, &info);
    assert_true(n > 0);
    out[n] = 0;
    return out;
}

static struct http_slice S(const char *s)
{
    return (struct http_slice){ s, strlen(s) };
}

static void test_remove_all_of_a_name(void **state)
{
    parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n");
    assert_int_equal(http_edit_remove(&g_msg, "X-A", 3), 2);
    assert_int_equal(http_msg_find(&g_msg, "x-a"), -1);
    const char *out = write_head();
    assert_null(strstr(out, "X-A") ? strstr(out, "X-A") : strstr(out, "x-a"));
    assert_non_null(strstr(out, "X-B: 3\r\n"));
    assert_int_equal(http_edit_remove(&g_msg, "X-A", 3), 0); /* already gone */
}

static void test_set_replaces_and_add_appends(void **state)
{
    parse("GET / HTTP/1.1\r\nHost: h\r\nX-Env: dev\r\nX-Env: qa\r\nX-Tag: a\r\n\r\n");
    assert_int_equal(http_edit_set(&g_msg, S("X-Env"), S("prod")), 0);
    assert_int_equal(http_edit_add(&g_msg, S("X-Tag"), S("b")), 0);
    const char *out = write_head();
    assert_non_null(strstr(out, "X-Env: prod\r\n"));
    assert_null(strstr(out, "dev"));
    assert_null(strstr(out, "qa"));
    const char *a = strstr(out, "X-Tag: a\r\n"), *b = strstr(out, "X-Tag: b\r\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    int i = http_msg_find(&g_msg, "x-env");
    assert_true(i >= 0);
    assert_int_equal(g_msg.headers[i].value.len, 4);
}

static void test_add_until_full(void **state)
{
    parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    size_t room = HTTP_MAX_HEADERS_HARD - g_msg.n_headers;
    for (size_t i = 0; i < room; i++)
        assert_int_equal(http_edit_add(&g_msg, S("X-N"), S("v")), 0);
    assert_int_equal(http_edit_add(&g_msg, S("X-N"), S("v")), -ENOSPC);
    assert_int_equal(http_edit_set(&g_msg, S("X-Other"), S("v")), -ENOSPC);
}

static void test_framing_fields_untouched(void **state)
{
    parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
    /* framing fields are hop-marked by the parser: remove does not count them */
    assert_int_equal(http_edit_remove(&g_msg, "Content-Length", 14), 0);
    assert_true(http_edit_reserved("content-length", 14));
    assert_true(http_edit_reserved("Transfer-Encoding", 17));
    assert_true(http_edit_reserved("HOST", 4));
    assert_false(http_edit_reserved("X-Host", 6));
    assert_false(http_edit_reserved("Server", 6));
}

static void test_target(void **state)
{
    parse("GET /api/users?id=7 HTTP/1.1\r\nHost: h\r\n\r\n");
    http_edit_target(&g_msg, S("/users?id=7"));
    assert_int_equal(g_msg.path.len, 6);
    assert_memory_equal(g_msg.path.p, "/users", 6);
    assert_int_equal(g_msg.query.len, 4);
    assert_memory_equal(g_msg.query.p, "id=7", 4);
    assert_non_null(strstr(write_head(), "GET /users?id=7 HTTP/1.1\r\n"));
    http_edit_target(&g_msg, S("/plain"));
    assert_int_equal(g_msg.query.len, 0);
    assert_non_null(strstr(write_head(), "GET /plain HTTP/1.1\r\n"));
}

static void test_target_from_absolute_form(void **state)
{
    parse("GET http://h/old?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    http_edit_target(&g_msg, S("/new?q=1"));
    assert_non_null(strstr(write_head(), "GET /new?q=1 HTTP/1.1\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_all_of_a_name),
        cmocka_unit_test(test_set_replaces_and_add_appends),
        cmocka_unit_test(test_add_until_full),
        cmocka_unit_test(test_framing_fields_untouched),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_target_from_absolute_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

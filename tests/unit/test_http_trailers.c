/* Unit tests for src/http/http_trailers.c: the bound, the filter, the
 * last-chunk written byte exact, oversize sections dropped whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_trailers.h"

#define LIT(s) (s), (sizeof(s) - 1)

static int write_all(const struct http_trailers *t, char *out, size_t cap)
{
    return http_trailers_write(t, out, cap);
}

static void test_empty_section(void **state)
{
    (void)state;
    struct http_trailers t = {0};
    char out[16];
    assert_int_equal(http_trailers_bound(&t), 5);
    assert_int_equal(write_all(&t, out, sizeof(out)), 5);
    assert_memory_equal(out, "0\r\n\r\n", 5);
    assert_int_equal(write_all(&t, out, 4), -ENOSPC);
}

static void test_fields_kept_as_received_forbidden_dropped(void **state)
{
    (void)state;
    static const char section[] = "X-Sum: 1\r\nContent-Length: 5\r\nGRPC-Status:0\r\nset-cookie: a\r\n"
                                  "TE: trailers\r\nHost: h\r\nX-Empty:\r\nAuthorization: b\r\n";
    static const char want[] = "0\r\nX-Sum: 1\r\nGRPC-Status:0\r\nX-Empty:\r\n\r\n";
    struct http_trailers t = {0};
    /* in pieces, the way the decoder hands them out */
    assert_int_equal(http_trailers_add(&t, section, 7, HTTP_TRAILERS_MAX), 0);
    assert_int_equal(http_trailers_add(&t, section + 7, sizeof(section) - 1 - 7, HTTP_TRAILERS_MAX), 0);
    assert_int_equal(t.len, sizeof(section) - 1);
    char out[256];
    int n = write_all(&t, out, http_trailers_bound(&t));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, sizeof(want) - 1);
    http_trailers_clear(&t);
    assert_null(t.p);
    assert_int_equal(t.len, 0);
}

static void test_oversize_dropped_whole(void **state)
{
    (void)state;
    struct http_trailers t = {0};
    assert_int_equal(http_trailers_add(&t, LIT("A: 1\r\n"), 10), 0);
    assert_int_equal(http_trailers_add(&t, LIT("B: 2\r\n"), 10), 0); /* 12 > 10 */
    assert_true(t.over);
    assert_int_equal(t.len, 0);
    assert_int_equal(http_trailers_add(&t, LIT("C\r\n"), 10), 0); /* stays dropped */
    assert_int_equal(t.len, 0);
    char out[8];
    assert_int_equal(write_all(&t, out, sizeof(out)), 5);
    assert_memory_equal(out, "0\r\n\r\n", 5);
    http_trailers_clear(&t);
    assert_false(t.over);
    /* exactly the limit is fine */
    assert_int_equal(http_trailers_add(&t, LIT("A: 1\r\nB:2\r\n"), 11), 0);
    assert_false(t.over);
    http_trailers_clear(&t);
}

static void test_forbidden_names(void **state)
{
    (void)state;
    static const char *const no[] = {"content-length", "Transfer-Encoding", "HOST", "authorization",
                                     "Set-Cookie", "cookie", "trailer", "te", "connection", "content-type",
                                     "cache-control", "content-encoding", "proxy-authorization"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_true(http_trailer_forbidden(no[i], strlen(no[i])));
    static const char *const yes[] = {"grpc-status", "grpc-message", "x-checksum", "server-timing", "t",
                                      "content-md5x", "hosts"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_false(http_trailer_forbidden(yes[i], strlen(yes[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_section),
        cmocka_unit_test(test_fields_kept_as_received_forbidden_dropped),
        cmocka_unit_test(test_oversize_dropped_whole),
        cmocka_unit_test(test_forbidden_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

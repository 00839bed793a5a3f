/* Unit tests for http2/h2_bridge.c: the trailer fields of a chunked
 * answer's tail, as they go into an HTTP/2 trailer HEADERS frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http2/h2_internal.h"

static size_t fields(const char *tail, nghttp2_nv *nv, char *buf, size_t size)
{
    size_t n = strlen(tail);
    assert_true(n < size);
    memcpy(buf, tail, n + 1);
    return h2_trailer_fields(buf, n, nv, 8);
}

static void assert_nv(const nghttp2_nv *nv, const char *name, const char *value)
{
    assert_int_equal(nv->namelen, strlen(name));
    assert_memory_equal(nv->name, name, nv->namelen);
    assert_int_equal(nv->valuelen, strlen(value));
    assert_memory_equal(nv->value, value, nv->valuelen);
}

static void test_trailers_found_and_lowercased(void **state)
{
    (void)state;
    nghttp2_nv nv[8];
    char buf[256];
    size_t n = fields("\r\n0\r\nGrpc-Status: 0\r\ngrpc-message:  all good \t\r\n\r\n", nv, buf, sizeof(buf));
    assert_int_equal(n, 2);
    assert_nv(&nv[0], "grpc-status", "0");
    assert_nv(&nv[1], "grpc-message", "all good");
}

static void test_no_trailers(void **state)
{
    (void)state;
    nghttp2_nv nv[8];
    char buf[64];
    assert_int_equal(fields("\r\n0\r\n\r\n", nv, buf, sizeof(buf)), 0);
    assert_int_equal(fields("0;ext=1\r\n\r\n", nv, buf, sizeof(buf)), 0);
    assert_int_equal(fields("", nv, buf, sizeof(buf)), 0);
}

static void test_connection_specific_fields_dropped(void **state)
{
    (void)state;
    nghttp2_nv nv[8];
    char buf[256];
    size_t n = fields("0\r\nConnection: close\r\nTransfer-Encoding: x\r\nContent-Length: 3\r\nX-Sum: 9\r\n\r\n"
                      "After: ignored\r\n", nv, buf, sizeof(buf));
    assert_int_equal(n, 1);
    assert_nv(&nv[0], "x-sum", "9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trailers_found_and_lowercased),
        cmocka_unit_test(test_no_trailers),
        cmocka_unit_test(test_connection_specific_fields_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

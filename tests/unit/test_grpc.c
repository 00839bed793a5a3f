/* Unit tests for src/http/grpc.c: the retry.on names and which answer
 * heads are gRPC Trailers-Only answers (and their grpc-status). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/grpc.h"
#include "http/http_parser.h"

static struct http_msg g_msg;

/* grpc_trailers_only_status of the answer head `head` */
static int status_of(const char *head)
{
    http_msg_init(&g_msg);
    int n = http_parse_response(head, strlen(head), &g_msg, NULL, HTTP_METHOD_POST);
    assert_int_equal(n, (int)strlen(head));
    return grpc_trailers_only_status(&g_msg);
}

static void test_retry_on_names(void **state)
{
    (void)state;
    assert_int_equal(grpc_retry_on_bit("grpc-unavailable"), GRPC_STATUS_BIT(14));
    assert_int_equal(grpc_retry_on_bit("grpc-cancelled"), GRPC_STATUS_BIT(1));
    assert_int_equal(grpc_retry_on_bit("grpc-deadline-exceeded"), GRPC_STATUS_BIT(4));
    assert_int_equal(grpc_retry_on_bit("grpc-resource-exhausted"), GRPC_STATUS_BIT(8));
    assert_int_equal(grpc_retry_on_bit("grpc-internal"), GRPC_STATUS_BIT(13));
    assert_int_equal(grpc_retry_on_bit("grpc-Unavailable"), 0);
    assert_int_equal(grpc_retry_on_bit("grpc-"), 0);
    assert_int_equal(grpc_retry_on_bit("5xx"), 0);
    assert_string_equal(grpc_retry_on_names(), "grpc-cancelled, grpc-deadline-exceeded, grpc-resource-exhausted, "
                                               "grpc-internal, grpc-unavailable");
}

static void test_trailers_only_answers(void **state)
{
    (void)state;
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n"
                               "content-length: 0\r\n\r\n"),
                     14);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\nContent-Type: application/grpc+proto\r\nGrpc-Status: 0\r\n"
                               "Content-Length: 0\r\n\r\n"),
                     0);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpc;x=1\r\ngrpc-status: 16\r\n"
                               "transfer-encoding: chunked\r\n\r\n"),
                     16);
}

static void test_not_trailers_only(void **state)
{
    (void)state;
    /* a body follows: grpc-status belongs in the trailers */
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n"
                               "content-length: 5\r\n\r\n"),
                     -1);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n\r\n"),
                     -1); /* until close */
    /* not gRPC, not 200, no grpc-status, bad values */
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpcx\r\ngrpc-status: 14\r\n"
                               "content-length: 0\r\n\r\n"),
                     -1);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ngrpc-status: 14\r\n"
                               "content-length: 0\r\n\r\n"),
                     -1);
    assert_int_equal(status_of("HTTP/1.1 503 No\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n"
                               "content-length: 0\r\n\r\n"),
                     -1);
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\n\r\n"), -1);
    static const char *const bad[] = { "17", "-1", "1a", "014", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char head[256];
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: %s\r\ncontent-length: 0\r\n\r\n",
                 bad[i]);
        assert_int_equal(status_of(head), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_on_names),
        cmocka_unit_test(test_trailers_only_answers),
        cmocka_unit_test(test_not_trailers_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

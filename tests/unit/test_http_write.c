/* Unit tests for src/http/http_write.c.
 *
 * Each head is parsed with the real parser, re-serialised, and compared with
 * the exact bytes weir must send. Every write is also repeated into heap
 * buffers of exactly the expected size (must succeed) and of every smaller
 * size (must answer -ENOSPC); under ASan a write one byte past the end of
 * any of them faults. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_parser.h"
#include "http/http_write.h"

static struct http_msg g_msg;

static const struct http_fwd_info fwd_default = {
    .client_ip = "10.0.0.9",
    .proto = "http",
    .request_id = "req-1",
    .body_kind = HTTP_BODY_NONE,
    .content_length = 0,
};

static const struct http_resp_info resp_default = {
    .body_kind = HTTP_BODY_NONE,
    .content_length = 0,
    .keep_alive = 1,
    .client_version_minor = 1,
    .upgrade = 0,
};

static void parse_req(const char *head)
{
    size_t len = strlen(head);

    http_msg_init(&g_msg);
    int rc = http_parse_request(head, len, &g_msg, NULL);
    if (rc != (int)len)
        fail_msg("request parse returned %d (%s)", rc, g_msg.error ? g_msg.error : "");
}

static void parse_resp(const char *head, enum http_method req_method)
{
    size_t len = strlen(head);

    http_msg_init(&g_msg);
    int rc = http_parse_response(head, len, &g_msg, NULL, req_method);
    if (rc != (int)len)
        fail_msg("response parse returned %d (%s)", rc, g_msg.error ? g_msg.error : "");
}

/* One of the two writers, so the size checks below serve both. */
static int write_head(int response, char *dst, size_t cap, const void *info)
{
    if (response)
        return http_write_response_head(dst, cap, &g_msg, info);
    return http_write_request_head(dst, cap, &g_msg, info);
}

static void assert_written(int response, const void *info, const char *want)
{
    size_t want_len = strlen(want);
    char big[8192];

    int n = write_head(response, big, sizeof(big), info);
    if (n < 0)
        fail_msg("write returned %d", n);
    if ((size_t)n != want_len || memcmp(big, want, want_len) != 0)
        fail_msg("wrote\n%.*s\nwanted\n%s", n, big, want);

    /* exactly enough room */
    char *exact = malloc(want_len);
    assert_non_null(exact);
    assert_int_equal(write_head(response, exact, want_len, info), (int)want_len);
    assert_memory_equal(exact, want, want_len);
    free(exact);

    /* every shorter buffer: -ENOSPC and never a byte past cap */
    for (size_t cap = 0; cap < want_len; cap++) {
        char *small = malloc(cap ? cap : 1);
        assert_non_null(small);
        assert_int_equal(write_head(response, small, cap, info), -ENOSPC);
        free(small);
    }
}

static void assert_req(const char *head, const struct http_fwd_info *info, const char *want)
{
    parse_req(head);
    assert_written(0, info, want);
}

static void assert_resp(const char *head, enum http_method req_method,
                        const struct http_resp_info *info, const char *want)
{
    parse_resp(head, req_method);
    assert_written(1, info, want);
}

/* The fields weir appends to every forwarded request with the default info. */
#define XFWD(host) "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: " host "\r\n"
#define TAIL11 "Via: 1.1 weir\r\nX-Request-Id: req-1\r\n"

/* ---- requests ---- */

static void test_req_basic(void **state)
{
    assert_req("GET /a/b?c=1&d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n"
               "Accept: */*\r\n\r\n",
               &fwd_default,
               "GET /a/b?c=1&d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n"
               "Accept: */*\r\n" XFWD("example.com") TAIL11 "\r\n");
}

static void test_req_canonical_field_form(void **state)
{
    /* OWS around values is not kept; names keep the client's spelling */
    assert_req("GET / HTTP/1.1\r\nHost:h\r\naccept:\t text/html \t\r\nX-Empty:\r\n\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\naccept: text/html\r\nX-Empty: \r\n" XFWD("h")
                   TAIL11 "\r\n");
}

static void test_req_host_first(void **state)
{
    assert_req("GET / HTTP/1.1\r\nAccept: x\r\nCookie: a=b\r\nhost: Example.COM:8080\r\n"
               "X-Last: 1\r\n\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: x\r\nCookie: a=b\r\n"
               "X-Last: 1\r\n" XFWD("Example.COM:8080") TAIL11 "\r\n");
}

static void test_req_hop_by_hop_dropped(void **state)
{
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, x-secret\r\n"
               "Keep-Alive: timeout=5\r\nX-Secret: s\r\nTE: gzip\r\n"
               "Proxy-Connection: keep-alive\r\nTrailer: X-Sum\r\nX-Keep: k\r\n"
               "Upgrade: h2c\r\n\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: k\r\n" XFWD("h") TAIL11 "\r\n");
}

static void test_req_te_trailers_kept(void **state)
{
    /* only "trailers" of a TE list goes on (gRPC needs it), named in Connection */
    assert_req("POST /svc HTTP/1.1\r\nHost: h\r\nTE: gzip;q=0.5, trailers\r\nConnection: TE\r\n"
               "Content-Length: 0\r\n\r\n",
               &fwd_default,
               "POST /svc HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "Connection: te\r\nTE: trailers\r\n\r\n");
}

static void test_req_te_trailers_with_upgrade(void **state)
{
    assert_req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, TE\r\nUpgrade: websocket\r\n"
               "TE: trailers\r\n\r\n",
               &fwd_default,
               "GET /ws HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11
               "Connection: upgrade, te\r\nUpgrade: websocket\r\nTE: trailers\r\n\r\n");
}

static void test_req_connection_names_many(void **state)
{
    /* two Connection fields, each naming a field; a name not present is harmless */
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nConnection: X-A\r\nX-B: 2\r\n"
               "connection: x-b, X-Absent\r\nX-C: 3\r\n\r\n",
               &fwd_default, "GET / HTTP/1.1\r\nHost: h\r\nX-C: 3\r\n" XFWD("h") TAIL11 "\r\n");
}

static void test_req_content_length_replaced(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 5;
    assert_req("POST /u HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\nContent-Type: a/b\r\n\r\n",
               &info,
               "POST /u HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\n" XFWD("h") TAIL11
               "Content-Length: 5\r\n\r\n");
}

static void test_req_content_length_large(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 18446744073709551615ull;
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n", &info,
               "POST / HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11
               "Content-Length: 18446744073709551615\r\n\r\n");
}

static void test_req_chunked(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.body_kind = HTTP_BODY_CHUNKED;
    assert_req("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &info,
               "POST /u HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11
               "Transfer-Encoding: chunked\r\n\r\n");
}

static void test_req_chunked_reframed_as_length(void **state)
{
    /* the framing written is the one weir chose, not the client's */
    struct http_fwd_info info = fwd_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 12;
    assert_req("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &info,
               "POST /u HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "Content-Length: 12\r\n\r\n");
}

static void test_req_xff_appended(void **state)
{
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n", &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 10.0.0.9\r\n"
               "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n" TAIL11 "\r\n");
}

static void test_req_xff_fields_merged(void **state)
{
    /* several fields form one list (RFC 9110 5.3); an empty one adds nothing */
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nA: 1\r\n"
               "x-forwarded-for: 3.3.3.3\r\nX-Forwarded-For:\r\n\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n"
               "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n"
               "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n" TAIL11 "\r\n");
}

static void test_req_forwarded_proto_host_replaced(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.proto = "https";
    info.client_ip = "2001:db8::1";
    assert_req("GET / HTTP/1.1\r\nHost: real\r\nX-Forwarded-Proto: http\r\n"
               "X-Forwarded-Host: spoofed\r\n\r\n",
               &info,
               "GET / HTTP/1.1\r\nHost: real\r\nX-Forwarded-For: 2001:db8::1\r\n"
               "X-Forwarded-Proto: https\r\nX-Forwarded-Host: real\r\n" TAIL11 "\r\n");
}

static void test_req_via_appended(void **state)
{
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nVia: 1.0 fred, 1.1 p.example\r\nVia: 1.1 other\r\n"
               "\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\n" XFWD("h")
               "Via: 1.0 fred, 1.1 p.example, 1.1 other, 1.1 weir\r\nX-Request-Id: req-1\r\n\r\n");
}

static void test_req_http10(void **state)
{
    /* 1.0 in, 1.1 out; Via names the version received (RFC 9110 7.6.3) */
    assert_req("GET /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &fwd_default,
               "GET /x HTTP/1.1\r\nHost: h\r\n" XFWD("h")
               "Via: 1.0 weir\r\nX-Request-Id: req-1\r\n\r\n");
}

static void test_req_request_id_kept(void **state)
{
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nx-request-id: abc-123\r\nB: 2\r\n\r\n",
               &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\nx-request-id: abc-123\r\nB: 2\r\n" XFWD("h")
               "Via: 1.1 weir\r\n\r\n");
}

static void test_req_request_id_added_or_absent(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.request_id = "0123456789abcdef0123456789abcdef";
    assert_req("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &info,
               "GET / HTTP/1.1\r\nHost: h\r\n" XFWD("h")
               "Via: 1.1 weir\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n\r\n");
    info.request_id = NULL;
    assert_req("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &info,
               "GET / HTTP/1.1\r\nHost: h\r\n" XFWD("h") "Via: 1.1 weir\r\n\r\n");
}

static void test_req_expect_dropped(void **state)
{
    struct http_fwd_info info = fwd_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 3;
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n"
               "X-A: a\r\n\r\n",
               &info,
               "POST / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n" XFWD("h") TAIL11
               "Content-Length: 3\r\n\r\n");
    /* a 1.0 request's Expect is ignored by the parser; still never forwarded */
    assert_req("POST / HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
               &info,
               "POST / HTTP/1.1\r\nHost: h\r\n" XFWD("h")
               "Via: 1.0 weir\r\nX-Request-Id: req-1\r\nContent-Length: 3\r\n\r\n");
}

static void test_req_absolute_form_with_query(void **state)
{
    /* RFC 9112 3.2.2: the authority replaces any Host field */
    assert_req("GET http://Example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
               &fwd_default,
               "GET /p/q?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\n" XFWD("Example.com:8080")
                   TAIL11 "\r\n");
    assert_req("GET https://h?x HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "GET /?x HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
}

/* Fails against the current code: an absolute-form target without '?' is
 * rewritten with a stray "?" ("/p?" and "/?") because the parser leaves
 * msg->query.p non-NULL (pointing at the end of the target) and
 * http_write_request_line tests query.p rather than whether a '?' was sent. */
static void test_req_absolute_form_no_query_bug(void **state)
{
    assert_req("GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "GET /p HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
    assert_req("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "GET / HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
}

static void test_req_origin_and_asterisk_forms_kept(void **state)
{
    assert_req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "OPTIONS * HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
    assert_req("GET /a%20b/?q=%2F&r HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "GET /a%20b/?q=%2F&r HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
    assert_req("PURGE /x? HTTP/1.1\r\nHost: h\r\n\r\n", &fwd_default,
               "PURGE /x? HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
}

/* Fails against the current code: when the client sent no Host (HTTP/1.0)
 * or an empty one, the forwarded HTTP/1.1 request has no Host field at all,
 * which RFC 9112 3.2 forbids (a 1.1 server answers 400). Weir, as the
 * client of the backend, must send "Host:" with an empty value then. */
static void test_req_host_always_sent_bug(void **state)
{
    assert_req("GET /x HTTP/1.0\r\n\r\n", &fwd_default,
               "GET /x HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 10.0.0.9\r\n"
               "X-Forwarded-Proto: http\r\nVia: 1.0 weir\r\nX-Request-Id: req-1\r\n\r\n");
    assert_req("GET /x HTTP/1.1\r\nHost:\r\n\r\n", &fwd_default,
               "GET /x HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 10.0.0.9\r\n"
               "X-Forwarded-Proto: http\r\n" TAIL11 "\r\n");
}

static void test_req_upgrade(void **state)
{
    assert_req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               &fwd_default,
               "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k==\r\n"
               "Sec-WebSocket-Version: 13\r\n" XFWD("h") TAIL11
               "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

static void test_req_upgrade_without_connection_dropped(void **state)
{
    /* Upgrade alone is not an upgrade request (RFC 9110 7.8) */
    assert_req("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", &fwd_default,
               "GET /ws HTTP/1.1\r\nHost: h\r\n" XFWD("h") TAIL11 "\r\n");
}

static void test_req_enospc_small_buffers(void **state)
{
    /* (assert_written checks every cap below the exact size on the heap;
     * this one checks that the bytes after cap stay untouched) */
    parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
    char buf[256];
    for (size_t cap = 0; cap < 128; cap++) {
        memset(buf, 'z', sizeof(buf));
        assert_int_equal(http_write_request_head(buf, cap, &g_msg, &fwd_default), -ENOSPC);
        for (size_t i = cap; i < sizeof(buf); i++)
            assert_int_equal(buf[i], 'z');
    }
}

/* ---- responses ---- */

static void test_resp_basic_length(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 5;
    assert_resp("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                "Server: s\r\n\r\n",
                HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: s\r\n"
                "Content-Length: 5\r\n\r\n");
}

static void test_resp_http10_backend(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 2;
    assert_resp("HTTP/1.0 404 Nope Not Here\r\nContent-Length: 2\r\n\r\n", HTTP_METHOD_GET,
                &info, "HTTP/1.1 404 Nope Not Here\r\nContent-Length: 2\r\n\r\n");
}

static void test_resp_empty_reason(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 0;
    assert_resp("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET, &info,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

static void test_resp_chunked(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_CHUNKED;
    assert_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"
                "X-A: a\r\n\r\n",
                HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nX-A: a\r\nTransfer-Encoding: chunked\r\n\r\n");
}

static void test_resp_hop_by_hop_dropped(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 1;
    info.keep_alive = 0;
    assert_resp("HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nKeep-Alive: timeout=1\r\n"
                "X-Internal: 1\r\nProxy-Authenticate: Basic\r\nUpgrade: h2\r\nTE: x\r\n"
                "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 1\r\n\r\n",
                HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                "Content-Length: 1\r\nConnection: close\r\n\r\n");
}

static void test_resp_head_keeps_content_length(void **state)
{
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"e\"\r\n\r\n",
                HTTP_METHOD_HEAD, &resp_default,
                "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 1234\r\n\r\n");
}

static void test_resp_304_keeps_content_length(void **state)
{
    assert_resp("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n",
                HTTP_METHOD_GET, &resp_default,
                "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n");
}

static void test_resp_204_drops_content_length(void **state)
{
    /* RFC 9110 8.6: no Content-Length in a 204 */
    assert_resp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: a\r\n\r\n",
                HTTP_METHOD_GET, &resp_default, "HTTP/1.1 204 No Content\r\nX-A: a\r\n\r\n");
    assert_resp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_HEAD,
                &resp_default, "HTTP/1.1 204 No Content\r\n\r\n");
}

static void test_resp_zero_length_body(void **state)
{
    /* a 200 with Content-Length: 0 has no body but must still say so */
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET,
                &resp_default, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

static void test_resp_connection_close(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 3;
    info.keep_alive = 0;
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
    info.client_version_minor = 0;
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
}

static void test_resp_keep_alive_for_http10_client(void **state)
{
    struct http_resp_info info = resp_default;
    info.body_kind = HTTP_BODY_LENGTH;
    info.content_length = 3;
    info.client_version_minor = 0;
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", HTTP_METHOD_GET, &info,
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
    /* a 1.1 client keeps the connection by default: nothing to say */
    info.client_version_minor = 1;
    assert_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
                HTTP_METHOD_GET, &info, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
}

static void test_resp_upgrade(void **state)
{
    struct http_resp_info info = resp_default;
    info.upgrade = 1;
    assert_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: a=\r\n\r\n",
                HTTP_METHOD_GET, &info,
                "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a=\r\n"
                "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

static void test_resp_enospc_small_buffers(void **state)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    const size_t len = sizeof(head) - 1; /* written back unchanged */
    parse_resp(head, HTTP_METHOD_GET);
    char buf[64];
    for (size_t cap = 0; cap < len; cap++) {
        memset(buf, 'z', sizeof(buf));
        assert_int_equal(http_write_response_head(buf, cap, &g_msg, &resp_default), -ENOSPC);
        for (size_t i = cap; i < sizeof(buf); i++)
            assert_int_equal(buf[i], 'z');
    }
    assert_int_equal(http_write_response_head(buf, len, &g_msg, &resp_default), (int)len);
    assert_memory_equal(buf, head, len);
    assert_int_equal(buf[len], 'z');
}

/* ---- the output cursor ---- */

static void test_out_numbers(void **state)
{
    char buf[64];
    struct http_out o = { buf, 0, sizeof(buf), 0 };

    http_out_u64(&o, 0);
    http_out_lit(&o, " ", 1);
    http_out_u64(&o, 1234567890);
    http_out_lit(&o, " ", 1);
    http_out_hex(&o, 0);
    http_out_lit(&o, " ", 1);
    http_out_hex(&o, 0xdeadBEEFull);
    http_out_lit(&o, " ", 1);
    http_out_hex(&o, UINT64_MAX);
    assert_false(o.overflow);
    const char *want = "0 1234567890 0 deadbeef ffffffffffffffff";
    assert_int_equal(o.len, strlen(want));
    assert_memory_equal(buf, want, o.len);
}

static void test_out_overflow_sticks(void **state)
{
    char buf[8];
    memset(buf, 'z', sizeof(buf));
    struct http_out o = { buf, 0, 4, 0 };

    http_out_str(&o, "abc");
    assert_false(o.overflow);
    http_out_str(&o, "de");          /* does not fit: dropped whole */
    assert_true(o.overflow);
    assert_int_equal(o.len, 3);
    http_out_str(&o, "f");           /* would fit, but the output is already broken */
    assert_int_equal(o.len, 3);
    assert_memory_equal(buf, "abczzzzz", 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_basic),
        cmocka_unit_test(test_req_canonical_field_form),
        cmocka_unit_test(test_req_host_first),
        cmocka_unit_test(test_req_hop_by_hop_dropped),
        cmocka_unit_test(test_req_te_trailers_kept),
        cmocka_unit_test(test_req_te_trailers_with_upgrade),
        cmocka_unit_test(test_req_connection_names_many),
        cmocka_unit_test(test_req_content_length_replaced),
        cmocka_unit_test(test_req_content_length_large),
        cmocka_unit_test(test_req_chunked),
        cmocka_unit_test(test_req_chunked_reframed_as_length),
        cmocka_unit_test(test_req_xff_appended),
        cmocka_unit_test(test_req_xff_fields_merged),
        cmocka_unit_test(test_req_forwarded_proto_host_replaced),
        cmocka_unit_test(test_req_via_appended),
        cmocka_unit_test(test_req_http10),
        cmocka_unit_test(test_req_request_id_kept),
        cmocka_unit_test(test_req_request_id_added_or_absent),
        cmocka_unit_test(test_req_expect_dropped),
        cmocka_unit_test(test_req_absolute_form_with_query),
        cmocka_unit_test(test_req_absolute_form_no_query_bug),
        cmocka_unit_test(test_req_origin_and_asterisk_forms_kept),
        cmocka_unit_test(test_req_host_always_sent_bug),
        cmocka_unit_test(test_req_upgrade),
        cmocka_unit_test(test_req_upgrade_without_connection_dropped),
        cmocka_unit_test(test_req_enospc_small_buffers),
        cmocka_unit_test(test_resp_basic_length),
        cmocka_unit_test(test_resp_http10_backend),
        cmocka_unit_test(test_resp_empty_reason),
        cmocka_unit_test(test_resp_chunked),
        cmocka_unit_test(test_resp_hop_by_hop_dropped),
        cmocka_unit_test(test_resp_head_keeps_content_length),
        cmocka_unit_test(test_resp_304_keeps_content_length),
        cmocka_unit_test(test_resp_204_drops_content_length),
        cmocka_unit_test(test_resp_zero_length_body),
        cmocka_unit_test(test_resp_connection_close),
        cmocka_unit_test(test_resp_keep_alive_for_http10_client),
        cmocka_unit_test(test_resp_upgrade),
        cmocka_unit_test(test_resp_enospc_small_buffers),
        cmocka_unit_test(test_out_numbers),
        cmocka_unit_test(test_out_overflow_sticks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/http/http_parser.c.
 *
 * Every head is parsed three times: whole; one byte more per call on the
 * same message; and one byte more per call on a re-initialised message
 * with only scan_pos carried over (as the proxy does). Every prefix must
 * answer PARTIAL until the last byte of the head, and all must agree on
 * everything. Chunked bodies are decoded whole, byte
 * by byte and in 3- and 7-byte pieces. Heads also run at the end of a page
 * followed by an inaccessible one, so reading past `len` faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_parser.h"

#define LIT(s) s, sizeof(s) - 1

static char *g_buf;
static struct http_msg g_msg, g_bytes;

static void assert_slice(struct http_slice s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || (n && memcmp(s.p, want, n) != 0)) {
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.len, s.p ? s.p : "", want);
    }
}

static void assert_same_slice(struct http_slice a, struct http_slice b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_ptr_equal(a.p, b.p);
}

static void assert_same_msg(const struct http_msg *a, const struct http_msg *b, int rc)
{
    if (rc == HTTP_PARSE_ERROR) {
        assert_int_equal(a->error_status, b->error_status);
        assert_int_equal(a->error_pos, b->error_pos);
        assert_string_equal(a->error, b->error);
        return;
    }
    if (rc < 0)
        return;
    assert_int_equal(a->method, b->method);
    assert_same_slice(a->method_str, b->method_str);
    assert_same_slice(a->target, b->target);
    assert_same_slice(a->path, b->path);
    assert_same_slice(a->query, b->query);
    assert_same_slice(a->host, b->host);
    assert_int_equal(a->status, b->status);
    assert_same_slice(a->reason, b->reason);
    assert_int_equal(a->version_minor, b->version_minor);
    assert_int_equal(a->n_headers, b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        assert_same_slice(a->headers[i].name, b->headers[i].name);
        assert_same_slice(a->headers[i].value, b->headers[i].value);
        assert_int_equal(a->hop[i], b->hop[i]);
    }
    assert_int_equal(a->body_kind, b->body_kind);
    assert_int_equal(a->content_length, b->content_length);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_int_equal(a->expect_continue, b->expect_continue);
    assert_int_equal(a->upgrade, b->upgrade);
    assert_int_equal(a->has_te_trailers, b->has_te_trailers);
    assert_same_slice(a->upgrade_proto, b->upgrade_proto);
}

static int parse_once(int response, enum http_method rm, const char *buf, size_t len,
                      struct http_msg *m, const struct http_limits *lim)
{
    return response ? http_parse_response(buf, len, m, lim, rm) : http_parse_request(buf, len, m, lim);
}

/* Parses s[0..len) whole into g_msg and byte by byte into g_bytes, checks
 * they agree and returns the result. g_buf holds the bytes until the next
 * call. */
static int parse_both(int response, enum http_method rm, const char *s, size_t len,
                      const struct http_limits *lim)
{
    free(g_buf);
    g_buf = malloc(len ? len : 1);
    assert_non_null(g_buf);
    memcpy(g_buf, s, len);

    http_msg_init(&g_msg);
    int rw = parse_once(response, rm, g_buf, len, &g_msg, lim);
    /* asking again gives the same answer */
    assert_int_equal(parse_once(response, rm, g_buf, len, &g_msg, lim), rw);

    http_msg_init(&g_bytes);
    int rb = HTTP_PARSE_PARTIAL;
    size_t k = 0;
    while (rb == HTTP_PARSE_PARTIAL && k < len)
        rb = parse_once(response, rm, g_buf, ++k, &g_bytes, lim);
    assert_int_equal(rw, rb);
    if (rw > 0)
        assert_int_equal(k, (size_t)rw);
    assert_same_msg(&g_msg, &g_bytes, rw);

    /* byte by byte again, the way the proxy calls: a fresh msg each time
     * with only scan_pos carried over */
    size_t scan_pos = 0;
    rb = HTTP_PARSE_PARTIAL;
    k = 0;
    while (rb == HTTP_PARSE_PARTIAL && k < len) {
        http_msg_init(&g_bytes);
        g_bytes.scan_pos = scan_pos;
        rb = parse_once(response, rm, g_buf, ++k, &g_bytes, lim);
        scan_pos = g_bytes.scan_pos;
    }
    assert_int_equal(rw, rb);
    if (rw > 0)
        assert_int_equal(k, (size_t)rw);
    assert_same_msg(&g_msg, &g_bytes, rw);
    return rw;
}

static int req(const char *s, size_t len)
{
    return parse_both(0, HTTP_METHOD_GET, s, len, NULL);
}

static int resp(enum http_method rm, const char *s, size_t len)
{
    return parse_both(1, rm, s, len, NULL);
}

static int hdr_hop(const char *name)
{
    int i = http_msg_find(&g_msg, name);
    assert_true(i >= 0);
    return g_msg.hop[i];
}

static int teardown(void **state)
{
    (void)state;
    free(g_buf);
    g_buf = NULL;
    return 0;
}

/* ---- valid requests ---- */

static void test_simple_get(void **state)
{
    static const char s[] = "GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\n"
                            "User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
    assert_int_equal(req(LIT(s)), sizeof(s) - 1);
    assert_int_equal(g_msg.method, HTTP_METHOD_GET);
    assert_slice(g_msg.method_str, "GET");
    assert_slice(g_msg.target, "/index.html?a=1&b=2");
    assert_slice(g_msg.path, "/index.html");
    assert_slice(g_msg.query, "a=1&b=2");
    assert_slice(g_msg.host, "example.com");
    assert_int_equal(g_msg.version_minor, 1);
    assert_int_equal(g_msg.n_headers, 3);
    assert_slice(g_msg.headers[1].name, "User-Agent");
    assert_slice(g_msg.headers[1].value, "curl/8.0");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(g_msg.hop[i], 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(g_msg.keep_alive);
    assert_false(g_msg.expect_continue);
    assert_false(g_msg.upgrade);
    assert_false(g_msg.absolute_form);
}

static void test_http10(void **state)
{
    assert_int_equal(req(LIT("GET / HTTP/1.0\r\n\r\n")), 18);
    assert_int_equal(g_msg.version_minor, 0);
    assert_false(g_msg.keep_alive);
    assert_int_equal(g_msg.host.len, 0);
    assert_true(req(LIT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")) > 0);
    assert_true(g_msg.keep_alive);
    assert_true(req(LIT("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")) > 0);
    assert_false(g_msg.keep_alive);
    /* an expectation in a 1.0 request is ignored (RFC 9110 10.1.1) */
    assert_true(req(LIT("GET / HTTP/1.0\r\nExpect: whatever\r\n\r\n")) > 0);
    assert_false(g_msg.expect_continue);
}

static void test_connection_close(void **state)
{
    assert_true(req(LIT("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")) > 0);
    assert_false(g_msg.keep_alive);
    assert_true(hdr_hop("connection"));
    assert_true(req(LIT("GET / HTTP/1.1\r\nHost: h\r\nConnection: ,, CLOSE ,\r\n\r\n")) > 0);
    assert_false(g_msg.keep_alive);
}

static void test_post_content_length(void **state)
{
    static const char s[] = "POST /api HTTP/1.1\r\nHost: h:8080\r\ncontent-LENGTH: 13\r\n\r\n"
                            "{\"a\":\"hello\"}";
    int rc = req(LIT(s));
    assert_int_equal(rc, sizeof(s) - 1 - 13);
    assert_int_equal(g_msg.method, HTTP_METHOD_POST);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_LENGTH);
    assert_int_equal(g_msg.content_length, 13);
    assert_true(g_msg.has_content_length);
    assert_slice(g_msg.host, "h:8080");
    assert_true(hdr_hop("content-length"));
    /* the body is not looked at */
    assert_memory_equal(g_buf + rc, "{\"a\":\"hello\"}", 13);
}

static void test_content_length_zero_and_max(void **state)
{
    assert_true(req(LIT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_int_equal(g_msg.content_length, 0);
    assert_true(g_msg.has_content_length);
    assert_true(req(LIT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0004611686018427387904\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_LENGTH);
    assert_int_equal(g_msg.content_length, (uint64_t)1 << 62);
}

static void test_chunked_request(void **state)
{
    static const char s[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
                            "TE: gzip;q=0.5, trailers\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    int rc = req(LIT(s));
    assert_int_equal(rc, sizeof(s) - 1 - 15);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_CHUNKED);
    assert_true(g_msg.has_te_trailers);
    assert_true(hdr_hop("transfer-encoding"));
    assert_true(hdr_hop("te"));
    assert_true(hdr_hop("trailer"));
    /* several field lines form one list; empty elements are ignored */
    assert_true(req(LIT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n"
                        "Transfer-Encoding: , chunked ,\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_CHUNKED);
}

static void test_absolute_form(void **state)
{
    assert_true(req(LIT("GET http://Example.com:80/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")) > 0);
    assert_true(g_msg.absolute_form);
    assert_slice(g_msg.host, "Example.com:80");
    assert_slice(g_msg.path, "/p/q");
    assert_slice(g_msg.query, "x=1");
    assert_true(req(LIT("GET HTTPS://[::1]:8443?q HTTP/1.1\r\nHost: x\r\n\r\n")) > 0);
    assert_slice(g_msg.host, "[::1]:8443");
    assert_slice(g_msg.path, "/");
    assert_slice(g_msg.query, "q");
    assert_true(req(LIT("GET http://h HTTP/1.0\r\n\r\n")) > 0);
    assert_slice(g_msg.host, "h");
    assert_slice(g_msg.path, "/");
    assert_int_equal(g_msg.query.len, 0);
}

static void test_connect_and_options(void **state)
{
    assert_true(req(LIT("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                        "Proxy-Authorization: Basic eDp5\r\n\r\n")) > 0);
    assert_int_equal(g_msg.method, HTTP_METHOD_CONNECT);
    assert_slice(g_msg.host, "example.com:443");
    assert_int_equal(g_msg.path.len, 0);
    assert_true(hdr_hop("proxy-authorization"));
    assert_true(req(LIT("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n")) > 0);
    assert_true(req(LIT("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")) > 0);
    assert_int_equal(g_msg.method, HTTP_METHOD_OPTIONS);
    assert_slice(g_msg.path, "*");
    assert_true(req(LIT("OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n")) > 0);
}

static void test_methods(void **state)
{
    static const struct {
        const char *line;
        enum http_method m;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_GET},
        {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_HEAD},
        {"POST / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_POST},
        {"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_PUT},
        {"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_DELETE},
        {"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_TRACE},
        {"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_PATCH},
        {"PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_OTHER},
        {"get / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_OTHER}, /* methods are case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(req(cases[i].line, strlen(cases[i].line)) > 0);
        assert_int_equal(g_msg.method, cases[i].m);
    }
    assert_slice(g_msg.method_str, "get");
    assert_string_equal(http_method_name(HTTP_METHOD_DELETE), "DELETE");
    assert_string_equal(http_method_name(HTTP_METHOD_PATCH), "PATCH");
}

static void test_upgrade_and_hop(void **state)
{
    static const char s[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-Custom, host\r\n"
                            "Upgrade: websocket\r\nX-Custom: 1\r\nx-custom: 2\r\nKeep-Alive: 5\r\n"
                            "Proxy-Connection: keep-alive\r\nProxy-Authenticate: x\r\nX-Other: 3\r\n\r\n";
    assert_true(req(LIT(s)) > 0);
    assert_true(g_msg.upgrade);
    assert_slice(g_msg.upgrade_proto, "websocket");
    assert_true(g_msg.keep_alive);
    assert_int_equal(g_msg.n_headers, 9);
    static const unsigned char want_hop[] = {0, 1, 1, 1, 1, 1, 1, 1, 0};
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(g_msg.hop[i], want_hop[i]);
    /* Upgrade without the Connection option is no upgrade */
    assert_true(req(LIT("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n")) > 0);
    assert_false(g_msg.upgrade);
    assert_true(hdr_hop("upgrade"));
}

static void test_connection_options_limit(void **state)
{
    char buf[512];
    size_t n = (size_t)snprintf(buf, sizeof(buf),
                                "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, keep-alive");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ", x%d", i);
    size_t head = n;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nx31: 1\r\n\r\n");
    assert_int_equal(req(buf, n), (int)n);
    assert_true(hdr_hop("x31"));
    n = head + (size_t)snprintf(buf + head, sizeof(buf) - head, ",x32\r\n\r\n");
    assert_int_equal(req(buf, n), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 400);
}

static void test_expect(void **state)
{
    assert_true(req(LIT("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                        "Content-Length: 100\r\n\r\n")) > 0);
    assert_true(g_msg.expect_continue);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_LENGTH);
}

static void test_field_values(void **state)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost:\th\t \r\nX-Empty:\r\nX-Sp:   \r\n"
                            "X-Obs: caf\xc3\xa9 \xff\r\nX-Tab: a\tb\r\n"
                            "Cookie: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=bbbbbbbbbbbbbbbbbbbbbbbbbb; c=d\r\n\r\n";
    assert_true(req(LIT(s)) > 0);
    assert_slice(g_msg.host, "h");
    assert_slice(g_msg.headers[1].value, "");
    assert_slice(g_msg.headers[2].value, "");
    assert_slice(g_msg.headers[3].value, "caf\xc3\xa9 \xff");
    assert_slice(g_msg.headers[4].value, "a\tb");
    assert_slice(g_msg.headers[5].value,
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=bbbbbbbbbbbbbbbbbbbbbbbbbb; c=d");
    assert_int_equal(http_msg_find(&g_msg, "COOKIE"), 5);
    assert_int_equal(http_msg_find(&g_msg, "cookies"), -1);
}

static void test_host_forms(void **state)
{
    static const char *ok[] = {"h", "h:80", "h:", "127.0.0.1:8080", "[::1]", "[::1]:80",
                               "a-b.c_d~e%20!$&'()*+,;=", "xn--bcher-kva.example"};
    char buf[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        assert_int_equal(req(buf, (size_t)n), n);
        assert_slice(g_msg.host, ok[i]);
    }
    /* empty Host is allowed (RFC 9110 7.2: the target had no authority) */
    assert_true(req(LIT("GET / HTTP/1.1\r\nHost:\r\n\r\n")) > 0);
    assert_int_equal(g_msg.host.len, 0);
}

static void test_leading_empty_lines(void **state)
{
    assert_int_equal(req(LIT("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")), 31);
    assert_slice(g_msg.method_str, "GET");
    assert_true(req(LIT("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")) > 0);
    assert_int_equal(req(LIT("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")),
                     HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 400);
}

static void test_pipelined(void **state)
{
    static const char s[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                            "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                            "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    int rc1 = req(LIT(s));
    assert_int_equal(rc1, 28);
    assert_slice(g_msg.target, "/1");
    /* the next request starts right after; its body is left alone */
    static struct http_msg m;
    http_msg_init(&m);
    int rc2 = http_parse_request(s + rc1, sizeof(s) - 1 - (size_t)rc1, &m, NULL);
    assert_int_equal(rc2, 48);
    assert_slice(m.target, "/2");
    assert_int_equal(m.content_length, 3);
    size_t third = (size_t)rc1 + (size_t)rc2 + 3;
    http_msg_init(&m);
    assert_int_equal(http_parse_request(s + third, sizeof(s) - 1 - third, &m, NULL), 28);
    assert_slice(m.target, "/3");
}

static void test_partial_then_done(void **state)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    static struct http_msg m;
    http_msg_init(&m);
    assert_int_equal(http_parse_request(s, 0, &m, NULL), HTTP_PARSE_PARTIAL);
    assert_int_equal(http_parse_request(s, 5, &m, NULL), HTTP_PARSE_PARTIAL);
    assert_int_equal(http_parse_request(s, sizeof(s) - 2, &m, NULL), HTTP_PARSE_PARTIAL);
    assert_int_equal(http_parse_request(s, sizeof(s) - 1, &m, NULL), (int)sizeof(s) - 1);
    assert_int_equal(http_parse_request(s, sizeof(s) - 1, &m, NULL), (int)sizeof(s) - 1);
}

static void test_buffer_moved(void **state)
{
    /* the proxy compacts its buffer and restarts with scan_pos = 0 */
    static const char s[] = "\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
    static char a[128], b[128];
    static struct http_msg m;
    memcpy(a, s, 20);
    http_msg_init(&m);
    assert_int_equal(http_parse_request(a, 20, &m, NULL), HTTP_PARSE_PARTIAL);
    assert_int_equal(m.scan_pos, 20);
    memcpy(b + 7, s, sizeof(s) - 1);
    http_msg_init(&m);
    assert_int_equal(http_parse_request(b + 7, sizeof(s) - 1, &m, NULL), (int)sizeof(s) - 3);
    assert_slice(m.target, "/x");
    assert_ptr_equal(m.target.p, b + 7 + 7);
    assert_int_equal(m.content_length, 2);
}

/* ---- limits ---- */

static void test_limit_headers(void **state)
{
    struct http_limits lim = {8192, 65536, 3};
    static const char three[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    static const char four[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_true(parse_both(0, 0, LIT(three), &lim) > 0);
    assert_int_equal(parse_both(0, 0, LIT(four), &lim), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 431);
    /* the hard cap applies even if the limit asks for more */
    lim.max_headers = 100000;
    char *big = malloc(HTTP_MAX_HEADERS_HARD * 8 + 64);
    size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS_HARD; i++)
        n += (size_t)sprintf(big + n, "X: %d\r\n", i % 10);
    n += (size_t)sprintf(big + n, "\r\n");
    assert_int_equal(parse_both(0, 0, big, n, &lim), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 431);
    free(big);
}

static void test_limit_request_line(void **state)
{
    struct http_limits lim = {20, 65536, 100};
    /* "GET /0123456789 HTTP/1.1" is 24 bytes */
    assert_true(parse_both(0, 0, LIT("GET /01234 HTTP/1.1\r\nHost: h\r\n\r\n"), &lim) > 0);
    assert_true(parse_both(0, 0, LIT("GET /012345 HTTP/1.1\r\nHost: h\r\n\r\n"), &lim) > 0);
    assert_int_equal(parse_both(0, 0, LIT("GET /0123456 HTTP/1.1\r\nHost: h\r\n\r\n"), &lim),
                     HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 414);
    assert_int_equal(g_msg.error_pos, 20);
    /* reported while the line is still open */
    static struct http_msg m;
    static const char open[] = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    http_msg_init(&m);
    assert_int_equal(http_parse_request(open, 20, &m, &lim), HTTP_PARSE_PARTIAL);
    assert_int_equal(http_parse_request(open, 21, &m, &lim), HTTP_PARSE_ERROR);
    assert_int_equal(m.error_status, 414);
    /* a CR at the limit may still be the line end */
    static const char cr[] = "GET /01234 HTTP/1.1\r";
    http_msg_init(&m);
    assert_int_equal(http_parse_request(cr, sizeof(cr) - 1, &m, &lim), HTTP_PARSE_PARTIAL);
}

static void test_limit_header_bytes(void **state)
{
    struct http_limits lim = {8192, 40, 100};
    static const char s40[] = "GET / HTTP/1.1\r\nHost: h\r\nX: 12345678\r\n\r\n";
    assert_int_equal(sizeof(s40) - 1, 40);
    assert_int_equal(parse_both(0, 0, LIT(s40), &lim), 40);
    assert_int_equal(parse_both(0, 0, LIT("GET / HTTP/1.1\r\nHost: h\r\nX: 123456789\r\n\r\n"), &lim),
                     HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 431);
    assert_int_equal(g_msg.error_pos, 40);
    /* leading empty lines do not count */
    assert_int_equal(parse_both(0, 0, LIT("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nX: 12345678\r\n\r\n"),
                                &lim),
                     44);
    /* reported while the head is incomplete */
    static struct http_msg m;
    static const char open[] = "GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    http_msg_init(&m);
    assert_int_equal(http_parse_request(open, 40, &m, &lim), HTTP_PARSE_PARTIAL);
    assert_int_equal(http_parse_request(open, 41, &m, &lim), HTTP_PARSE_ERROR);
    assert_int_equal(m.error_status, 431);
}

/* ---- invalid requests ---- */

struct bad_case {
    const char *s;
    size_t len;
    int status;
};
#define BAD(lit, st) {lit, sizeof(lit) - 1, st}
#define H "Host: h\r\n"

static const struct bad_case bad_requests[] = {
    /* method */
    BAD("G@T / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD(" GET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GE\x01T / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("/ HTTP/1.1\r\n" H "\r\n", 400),
    /* request-target bytes */
    BAD("GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /a\x7f HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /a\0b HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /a b HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /a\tb HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /a#frag HTTP/1.1\r\n" H "\r\n", 400),
    /* spacing */
    BAD("GET  / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET /  HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET / HTTP/1.1 \r\n" H "\r\n", 400),
    BAD("GET /\r\n" H "\r\n", 400),
    BAD("GET / \r\n" H "\r\n", 400),
    BAD("GET\r\n" H "\r\n", 400),
    /* version */
    BAD("GET / HTTP/2.0\r\n" H "\r\n", 505),
    BAD("GET / HTTP/1.2\r\n" H "\r\n", 505),
    BAD("GET / HTTP/0.9\r\n" H "\r\n", 505),
    BAD("GET / HTTP/3.0\r\n" H "\r\n", 505),
    BAD("GET / HTTP/1.1x\r\n" H "\r\n", 400),
    BAD("GET / http/1.1\r\n" H "\r\n", 400),
    BAD("GET / HTTP/1\r\n" H "\r\n", 400),
    BAD("GET / HTTP/11.1\r\n" H "\r\n", 400),
    BAD("GET / HTTP/1.a\r\n" H "\r\n", 400),
    BAD("GET / FOO\r\n" H "\r\n", 400),
    /* target forms */
    BAD("GET example.com:80 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT example.com HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT example.com: HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT http://example.com:80/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT * HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET * HTTP/1.1\r\n" H "\r\n", 400),
    BAD("OPTIONS ** HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET ftp://x/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http:/x/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http:// HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http:///p HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http://user@h/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http://h:x/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET http://h/ HTTP/1.1\r\n\r\n", 400), /* Host still required on 1.1 */
    BAD("GET ? HTTP/1.1\r\n" H "\r\n", 400),
    /* line ends */
    BAD("GET / HTTP/1.1\n" H "\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "\r\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX: a\rb\r\n" H "\r\n", 400),
    BAD("GET /\r HTTP/1.1\r\n" H "\r\n", 400),
    BAD("GET / HTTP/1.1\r\r\n" H "\r\n", 400),
    BAD("\nGET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("\r\n\nGET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("\rGET / HTTP/1.1\r\n" H "\r\n", 400),
    /* field names */
    BAD("GET / HTTP/1.1\r\n" H ": v\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X(y): v\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X\x80: v\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "NoColon\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X y: v\r\n\r\n", 400),
    /* obs-fold */
    BAD("GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n " H "\r\n", 400),
    /* field values */
    BAD("GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: a\x01\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: a\x1f\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: 0123456789abcdef\x7f" "0123456789\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "X: 0123456789abcdef\x0b\r\n\r\n", 400),
    /* Host */
    BAD("GET / HTTP/1.1\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    BAD("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h:x\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h:99999\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h:123456\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n", 400),
    /* Content-Length */
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5,5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5, 6\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5.0\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 4611686018427387905\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\ncontent-length: 6\r\n\r\n", 400),
    /* Transfer-Encoding */
    BAD("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: ,\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;x=1\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked x\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n", 400),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n",
        501),
    BAD("POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity, chunked\r\n\r\n", 501),
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    /* Expect, Connection */
    BAD("PUT / HTTP/1.1\r\n" H "Expect: foo\r\n\r\n", 417),
    BAD("PUT / HTTP/1.1\r\n" H "Expect: 100-continue, foo\r\n\r\n", 417),
    BAD("PUT / HTTP/1.1\r\n" H "Expect: 100-continue\r\nExpect: 200-ok\r\n\r\n", 417),
    BAD("GET / HTTP/1.1\r\n" H "Connection: a b\r\n\r\n", 400),
    BAD("GET / HTTP/1.1\r\n" H "Connection: \"close\"\r\n\r\n", 400),
    /* empty lines */
    BAD("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 400),
};

static void test_bad_requests(void **state)
{
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const struct bad_case *c = &bad_requests[i];
        int rc = req(c->s, c->len);
        if (rc != HTTP_PARSE_ERROR || g_msg.error_status != c->status)
            fail_msg("case %zu \"%.*s\": rc %d status %d (%s), want %d", i, (int)c->len, c->s,
                     rc, g_msg.error_status, g_msg.error ? g_msg.error : "-", c->status);
        assert_non_null(g_msg.error);
        assert_true(g_msg.error_pos <= c->len);
    }
}

static void test_error_positions(void **state)
{
    assert_int_equal(req(LIT("GET /a b HTTP/1.1\r\n" H "\r\n")), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_pos, 7); /* "b HTTP/1.1" is no version */
    assert_int_equal(req(LIT("GET /a\x01 HTTP/1.1\r\n" H "\r\n")), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_pos, 6);
    assert_int_equal(req(LIT("GET / HTTP/1.1\r\n" H "X: a\x01\r\n\r\n")), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_pos, 29);
    assert_int_equal(req(LIT("GET / HTTP/1.1\nHost: h\r\n\r\n")), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_pos, 14);
    assert_int_equal(req(LIT("GET / HTTP/1.1\r\nHost : h\r\n\r\n")), HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_pos, 20);
}

/* ---- responses ---- */

static void test_response_basic(void **state)
{
    static const char s[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(resp(HTTP_METHOD_GET, LIT(s)), sizeof(s) - 1 - 5);
    assert_int_equal(g_msg.status, 200);
    assert_slice(g_msg.reason, "OK");
    assert_int_equal(g_msg.version_minor, 1);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_LENGTH);
    assert_int_equal(g_msg.content_length, 5);
    assert_true(g_msg.keep_alive);
    assert_int_equal(g_msg.hop[0], 0);
    assert_int_equal(g_msg.hop[1], 1);
}

static void test_response_framing(void **state)
{
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_CHUNKED);
    assert_false(g_msg.te_other_codings);
    assert_true(resp(HTTP_METHOD_GET,
                     LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_CHUNKED);
    assert_true(g_msg.te_other_codings);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_UNTIL_CLOSE);
    assert_false(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n<html>")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_UNTIL_CLOSE);
    assert_false(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_HEAD, LIT("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(g_msg.has_content_length);
    assert_int_equal(g_msg.content_length, 1000);
    assert_true(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_HEAD, LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 204 No Content\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")) == 25);
    assert_int_equal(g_msg.status, 100);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(resp(HTTP_METHOD_CONNECT, LIT("HTTP/1.1 200 Connection established\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(resp(HTTP_METHOD_CONNECT, LIT("HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_LENGTH);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) > 0);
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    assert_true(g_msg.keep_alive);
}

static void test_response_versions_and_reason(void **state)
{
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n")) > 0);
    assert_int_equal(g_msg.version_minor, 0);
    assert_false(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                                          "Content-Length: 2\r\n\r\n")) > 0);
    assert_true(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                          "Content-Length: 2\r\n\r\n")) > 0);
    assert_false(g_msg.keep_alive);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")) > 0);
    assert_int_equal(g_msg.status, 404);
    assert_int_equal(g_msg.reason.len, 0);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n")) > 0);
    assert_int_equal(g_msg.reason.len, 0);
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 599 Very \tcustom \xe2\x9c\x93\r\n\r\n")) > 0);
    assert_slice(g_msg.reason, "Very \tcustom \xe2\x9c\x93");
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                                          "Upgrade: websocket\r\n\r\n")) > 0);
    assert_true(g_msg.upgrade);
    assert_slice(g_msg.upgrade_proto, "websocket");
    assert_int_equal(g_msg.body_kind, HTTP_BODY_NONE);
    /* no Host rule for responses, and Expect means nothing there */
    assert_true(resp(HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nHost: a/b\r\nHost: c\r\n"
                                          "Expect: x\r\nContent-Length: 0\r\n\r\n")) > 0);
}

static const struct bad_case bad_responses[] = {
    BAD("HTTP/1.1 099 Weird\r\n\r\n", 502),
    BAD("HTTP/1.1 600 Weird\r\n\r\n", 502),
    BAD("HTTP/1.1 20 OK\r\n\r\n", 502),
    BAD("HTTP/1.1 2000 OK\r\n\r\n", 502),
    BAD("HTTP/1.1 20x OK\r\n\r\n", 502),
    BAD("HTTP/1.1 200OK\r\n\r\n", 502),
    BAD("HTTP/1.1  200 OK\r\n\r\n", 502),
    BAD("HTTP/2.0 200 OK\r\n\r\n", 502),
    BAD("HTTP/1.2 200 OK\r\n\r\n", 502),
    BAD("http/1.1 200 OK\r\n\r\n", 502),
    BAD("HTTP/1.1\r\n\r\n", 502),
    BAD("ICY 200 OK\r\n\r\n", 502),
    BAD("HTTP/1.1 200 O\x01K\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", 502),
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
    BAD("HTTP/1.1 204 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 502),
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q\r\n\r\n", 502),
    BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
};

static void test_bad_responses(void **state)
{
    for (size_t i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++) {
        const struct bad_case *c = &bad_responses[i];
        int rc = resp(HTTP_METHOD_GET, c->s, c->len);
        if (rc != HTTP_PARSE_ERROR || g_msg.error_status != c->status)
            fail_msg("case %zu \"%.*s\": rc %d status %d (%s), want %d", i, (int)c->len, c->s,
                     rc, g_msg.error_status, g_msg.error ? g_msg.error : "-", c->status);
    }
    /* limits answer 502 too */
    struct http_limits lim = {10, 65536, 100};
    assert_int_equal(parse_both(1, HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\n\r\n"), &lim),
                     HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 502);
    lim = (struct http_limits){8192, 30, 100};
    assert_int_equal(parse_both(1, HTTP_METHOD_GET, LIT("HTTP/1.1 200 OK\r\nServer: abcdef\r\n\r\n"),
                                &lim),
                     HTTP_PARSE_ERROR);
    assert_int_equal(g_msg.error_status, 502);
}

/* ---- guard page ---- */

static void test_guard_page(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    char *end = map + page;
    static struct http_msg m;
    static const char *samples[] = {
        "GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nX: abcdefghijklmnopqrstuvwxyz\r\n\r\n",
        "POST http://h/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: x\r\nx: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: abcdefghijklmnopqrstuvwxyz\r\n\r\n",
    };
    for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
        size_t len = strlen(samples[s]);
        int is_resp = samples[s][0] == 'H';
        /* every prefix, ending right at the inaccessible page */
        for (size_t k = 0; k <= len; k++) {
            memcpy(end - k, samples[s], k);
            http_msg_init(&m);
            int rc = parse_once(is_resp, HTTP_METHOD_GET, end - k, k, &m, NULL);
            assert_int_equal(rc, k == len ? (int)len : HTTP_PARSE_PARTIAL);
        }
    }
    /* chunked: every prefix too */
    static const char body[] = "a;x=\"y\"\r\n0123456789\r\n0\r\nT: v\r\n\r\n";
    for (size_t k = 0; k <= sizeof(body) - 1; k++) {
        struct http_chunked c;
        size_t off = 0, consumed, doff, dlen;
        enum http_chunk_result r;
        memcpy(end - k, body, k);
        http_chunked_init(&c);
        while ((r = http_chunked_next(&c, end - k + off, k - off, &consumed, &doff, &dlen)) ==
               HTTP_CHUNK_DATA)
            off += consumed;
        assert_int_equal(r, k == sizeof(body) - 1 ? HTTP_CHUNK_DONE : HTTP_CHUNK_MORE);
    }
    munmap(map, (size_t)page * 2);
}

/* ---- chunked ---- */

struct decoded {
    enum http_chunk_result result;
    size_t end; /* DONE: bytes of the body; ERROR: offset of the bad byte */
    char data[8192];
    size_t data_len;
    char trailers[8192]; /* keep_trailers: the spans handed out, joined */
    size_t trailers_len;
    const char *error;
};

static int g_keep_trailers; /* decode() sets keep_trailers from this */

/* Decodes s[0..len) handed over in pieces of `step` bytes (0: whole). */
static void decode(const char *s, size_t len, size_t step, struct decoded *d)
{
    struct http_chunked c;
    http_chunked_init(&c);
    c.keep_trailers = g_keep_trailers ? 1 : 0;
    memset(d, 0, sizeof(*d));
    size_t from = 0;
    d->result = HTTP_CHUNK_MORE;
    while (from < len || (from == 0 && len == 0)) {
        size_t to = step ? from + step : len;
        if (to > len)
            to = len;
        size_t off = from;
        for (;;) {
            size_t consumed = 0, doff = 0, dlen = 0;
            enum http_chunk_result r =
                http_chunked_next(&c, s + off, to - off, &consumed, &doff, &dlen);
            assert_true(consumed <= to - off);
            if (r == HTTP_CHUNK_DATA) {
                assert_int_equal(doff + dlen, consumed);
                assert_true(d->data_len + dlen <= sizeof(d->data));
                memcpy(d->data + d->data_len, s + off + doff, dlen);
                d->data_len += dlen;
                off += consumed;
                continue;
            }
            if (r == HTTP_CHUNK_TRAILER) {
                assert_true(g_keep_trailers);
                assert_true(dlen > 0);
                assert_int_equal(doff + dlen, consumed);
                assert_true(d->trailers_len + dlen <= sizeof(d->trailers));
                memcpy(d->trailers + d->trailers_len, s + off + doff, dlen);
                d->trailers_len += dlen;
                off += consumed;
                continue;
            }
            d->result = r;
            if (r == HTTP_CHUNK_MORE) {
                assert_int_equal(consumed, to - off);
                break;
            }
            d->end = off + consumed;
            d->error = c.error;
            return;
        }
        from = to;
        if (len == 0)
            break;
    }
}

/* Decodes whole, byte by byte, in 3- and 7-byte pieces, with and without
 * keep_trailers; all must agree (d: the keep_trailers run, whole). */
static void decode_all(const char *s, size_t len, struct decoded *d)
{
    static struct decoded other;
    static const size_t steps[] = {0, 1, 3, 7};
    g_keep_trailers = 1;
    decode(s, len, 0, d);
    for (int keep = 0; keep <= 1; keep++) {
        g_keep_trailers = keep;
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            decode(s, len, steps[i], &other);
            assert_int_equal(other.result, d->result);
            assert_int_equal(other.end, d->end);
            assert_int_equal(other.data_len, d->data_len);
            assert_memory_equal(other.data, d->data, d->data_len);
            if (d->result == HTTP_CHUNK_ERROR)
                assert_string_equal(other.error, d->error);
            if (keep && d->result != HTTP_CHUNK_ERROR) { /* an error drops what came before */
                assert_int_equal(other.trailers_len, d->trailers_len);
                assert_memory_equal(other.trailers, d->trailers, d->trailers_len);
            } else if (!keep) {
                assert_int_equal(other.trailers_len, 0);
            }
        }
    }
    g_keep_trailers = 0;
}

static struct decoded g_dec;

static void test_chunked_simple(void **state)
{
    static const char s[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
    decode_all(LIT(s), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.end, sizeof(s) - 1 - 4);
    assert_int_equal(g_dec.data_len, 11);
    assert_memory_equal(g_dec.data, "hello world", 11);
}

static void test_chunked_hex_sizes(void **state)
{
    char s[600];
    size_t n = 0;
    n += (size_t)sprintf(s + n, "1F\r\n");
    memset(s + n, 'a', 31);
    n += 31;
    n += (size_t)sprintf(s + n, "\r\n0ff\r\n");
    memset(s + n, 'b', 255);
    n += 255;
    n += (size_t)sprintf(s + n, "\r\n0000000000000000\r\n\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.end, n);
    assert_int_equal(g_dec.data_len, 286);
    /* 16 digits up to 2^62 are fine as far as the size line goes */
    decode_all(LIT("4000000000000000\r\nabc"), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_MORE);
    assert_int_equal(g_dec.data_len, 3);
}

static void test_chunked_extensions(void **state)
{
    static const char s[] = "A;name=value;q=\"quoted \\\" str;x\";flag\r\n0123456789\r\n"
                            "3 ; a = b ;c\t=\t\"d\" ; e\r\nxyz\r\n"
                            "1;x=\"\\\\\\\xff\xfe\"\r\n!\r\n"
                            "0;last\r\n\r\n";
    decode_all(LIT(s), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.end, sizeof(s) - 1);
    assert_int_equal(g_dec.data_len, 14);
    assert_memory_equal(g_dec.data, "0123456789xyz!", 14);
}

static void test_chunked_trailers(void **state)
{
    static const char s[] = "4\r\nwiki\r\n0\r\nExpires: never\r\nX-Sum:abc\t \xff\r\nX-Empty:\r\n\r\nrest";
    decode_all(LIT(s), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.end, sizeof(s) - 1 - 4);
    assert_memory_equal(g_dec.data, "wiki", 4);
}

static void test_chunked_trailers_kept(void **state)
{
    /* the field lines with their CRLFs, not the empty line; nothing else */
    static const char s[] = "4\r\nwiki\r\n0;ext=1\r\nGrpc-Status: 0\r\nX-Sum:abc\t \xff\r\nX-Empty:\r\n\r\nrest";
    static const char want[] = "Grpc-Status: 0\r\nX-Sum:abc\t \xff\r\nX-Empty:\r\n";
    decode_all(LIT(s), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.end, sizeof(s) - 1 - 4);
    assert_int_equal(g_dec.trailers_len, sizeof(want) - 1);
    assert_memory_equal(g_dec.trailers, want, sizeof(want) - 1);
    /* none: no span */
    decode_all(LIT("0\r\n\r\n"), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    assert_int_equal(g_dec.trailers_len, 0);
    /* unfinished: what arrived so far */
    decode_all(LIT("0\r\nA: b\r\nC: d"), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_MORE);
    assert_int_equal(g_dec.trailers_len, 10);
    assert_memory_equal(g_dec.trailers, "A: b\r\nC: d", 10);
    /* a bad trailer is still an error, at the same byte */
    decode_all(LIT("0\r\nA: b\r\n c\r\n\r\n"), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_ERROR);
    assert_int_equal(g_dec.end, 9);
    decode_all(LIT("0\r\nA: b\r\nB\r\n\r\n"), &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_ERROR);
}

static void test_chunked_done_stays_done(void **state)
{
    struct http_chunked c;
    size_t consumed, doff, dlen;
    http_chunked_init(&c);
    assert_int_equal(http_chunked_next(&c, LIT("0\r\n\r\n"), &consumed, &doff, &dlen),
                     HTTP_CHUNK_DONE);
    assert_int_equal(consumed, 5);
    assert_int_equal(http_chunked_next(&c, LIT("more"), &consumed, &doff, &dlen), HTTP_CHUNK_DONE);
    assert_int_equal(consumed, 0);
    http_chunked_init(&c);
    assert_int_equal(http_chunked_next(&c, "", 0, &consumed, &doff, &dlen), HTTP_CHUNK_MORE);
    assert_int_equal(consumed, 0);
    assert_int_equal(http_chunked_next(&c, LIT("x"), &consumed, &doff, &dlen), HTTP_CHUNK_ERROR);
    assert_int_equal(consumed, 0);
    assert_int_equal(http_chunked_next(&c, LIT("0\r\n\r\n"), &consumed, &doff, &dlen),
                     HTTP_CHUNK_ERROR);
}

struct bad_chunk {
    const char *s;
    size_t len;
    size_t pos; /* offset of the offending byte */
};
#define BADCH(lit, pos) {lit, sizeof(lit) - 1, pos}

static void test_chunked_errors(void **state)
{
    static const struct bad_chunk cases[] = {
        BADCH("\r\n", 0),                      /* no size */
        BADCH("g\r\n", 0),                     /* not hex */
        BADCH("-1\r\n", 0),
        BADCH(" 5\r\nhello\r\n0\r\n\r\n", 0),
        BADCH("0x5\r\n", 1),
        BADCH("00000000000000001\r\n", 16),    /* 17 digits */
        BADCH("4000000000000001\r\n", 15),     /* > 2^62 */
        BADCH("ffffffffffffffff\r\n", 15),
        BADCH("5\nhello\r\n", 1),              /* bare LF */
        BADCH("5\rhello\r\n", 2),              /* CR without LF */
        BADCH("5 \r\nhello\r\n", 2),           /* BWS only before ';' */
        BADCH("5;\r\nhello\r\n", 2),           /* ext without a name */
        BADCH("5;=x\r\nhello\r\n", 2),
        BADCH("5;a=\r\nhello\r\n", 4),
        BADCH("5;a=b \r\nhello\r\n", 6),
        BADCH("5;a b\r\n", 4),
        BADCH("5;a=\"b\r\n", 6),               /* CR inside a quoted string */
        BADCH("5;a=\"b\x01\"\r\n", 6),
        BADCH("5;a=\"b\"c\r\n", 7),
        BADCH("5;a=b\"c\"\r\n", 5),
        BADCH("5;a@b\r\n", 3),
        BADCH("5\r\nhelloX\r\n", 8),           /* data not followed by CRLF */
        BADCH("5\r\nhello\n0\r\n\r\n", 8),
        BADCH("5\r\nhello\rX", 9),
        BADCH("5\r\nhello\r\n\r\n", 10),        /* missing next size */
        BADCH("0\r\n\n", 3),
        BADCH("0\r\n\rX", 4),
        BADCH("0\r\n X: y\r\n\r\n", 3),        /* obs-fold in trailers */
        BADCH("0\r\nX : y\r\n\r\n", 4),
        BADCH("0\r\nX: y\r\n z\r\n\r\n", 9),
        BADCH("0\r\nX: y\nZ: 1\r\n\r\n", 7),
        BADCH("0\r\nX: y\rZ: 1\r\n\r\n", 8),
        BADCH("0\r\nX: a\0b\r\n\r\n", 7),
        BADCH("0\r\nX: a\x7f\r\n\r\n", 7),
        BADCH("0\r\n:y\r\n\r\n", 3),
        BADCH("0\r\nXy\r\n\r\n", 5),
        BADCH("0\r\nX\x80: y\r\n\r\n", 4),
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        decode_all(cases[i].s, cases[i].len, &g_dec);
        if (g_dec.result != HTTP_CHUNK_ERROR || g_dec.end != cases[i].pos)
            fail_msg("case %zu: result %d at %zu, want error at %zu", i, g_dec.result,
                     g_dec.end, cases[i].pos);
        assert_non_null(g_dec.error);
    }
}

static void test_chunked_line_limit(void **state)
{
    static char s[5000];
    size_t n = (size_t)sprintf(s, "5;x=");
    memset(s + n, 'v', 4090 - n);
    n = 4090;
    n += (size_t)sprintf(s + n, "\r\nhello\r\n0\r\n\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    /* 4096 bytes before CRLF is the most */
    n = (size_t)sprintf(s, "5;x=");
    memset(s + n, 'v', 4096 - n);
    n = 4096;
    n += (size_t)sprintf(s + n, "\r\nhello\r\n0\r\n\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_DONE);
    n = (size_t)sprintf(s, "5;x=");
    memset(s + n, 'v', 4097 - n);
    n = 4097;
    n += (size_t)sprintf(s + n, "\r\nhello\r\n0\r\n\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_ERROR);
    assert_string_equal(g_dec.error, "chunk line too long");
    /* trailer lines too */
    n = (size_t)sprintf(s, "0\r\nX: ");
    memset(s + n, 'v', 4200);
    n += 4200;
    n += (size_t)sprintf(s + n, "\r\n\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_ERROR);
    /* and the number of trailer fields is limited */
    n = (size_t)sprintf(s, "0\r\n");
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(s + n, "X: %d\r\n", i % 10);
    n += (size_t)sprintf(s + n, "\r\n");
    decode_all(s, n, &g_dec);
    assert_int_equal(g_dec.result, HTTP_CHUNK_ERROR);
}

/* ---- helpers ---- */

static void test_helpers(void **state)
{
    struct http_slice s = {"Content-Type", 12};
    assert_true(http_slice_eq_nocase(s, "content-type"));
    assert_true(http_slice_eq_nocase(s, "CONTENT-TYPE"));
    assert_false(http_slice_eq_nocase(s, "content-typ"));
    assert_false(http_slice_eq_nocase(s, "content_type"));
    struct http_slice e = {NULL, 0};
    assert_true(http_slice_eq_nocase(e, ""));
    static const int codes[] = {100, 101, 200, 201, 202, 203, 204, 205, 206, 301, 302, 303, 304,
                                305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
                                410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 426, 429,
                                431, 500, 501, 502, 503, 504, 505};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_string_not_equal(http_status_reason(codes[i]), "Unknown");
    assert_string_equal(http_status_reason(404), "Not Found");
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(799), "Unknown");
    assert_string_equal(http_method_name(HTTP_METHOD_GET), "GET");
    assert_string_equal(http_method_name(HTTP_METHOD_OTHER), "OTHER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_simple_get, teardown),
        cmocka_unit_test_teardown(test_http10, teardown),
        cmocka_unit_test_teardown(test_connection_close, teardown),
        cmocka_unit_test_teardown(test_post_content_length, teardown),
        cmocka_unit_test_teardown(test_content_length_zero_and_max, teardown),
        cmocka_unit_test_teardown(test_chunked_request, teardown),
        cmocka_unit_test_teardown(test_absolute_form, teardown),
        cmocka_unit_test_teardown(test_connect_and_options, teardown),
        cmocka_unit_test_teardown(test_methods, teardown),
        cmocka_unit_test_teardown(test_upgrade_and_hop, teardown),
        cmocka_unit_test_teardown(test_connection_options_limit, teardown),
        cmocka_unit_test_teardown(test_expect, teardown),
        cmocka_unit_test_teardown(test_field_values, teardown),
        cmocka_unit_test_teardown(test_host_forms, teardown),
        cmocka_unit_test_teardown(test_leading_empty_lines, teardown),
        cmocka_unit_test_teardown(test_pipelined, teardown),
        cmocka_unit_test_teardown(test_partial_then_done, teardown),
        cmocka_unit_test_teardown(test_buffer_moved, teardown),
        cmocka_unit_test_teardown(test_limit_headers, teardown),
        cmocka_unit_test_teardown(test_limit_request_line, teardown),
        cmocka_unit_test_teardown(test_limit_header_bytes, teardown),
        cmocka_unit_test_teardown(test_bad_requests, teardown),
        cmocka_unit_test_teardown(test_error_positions, teardown),
        cmocka_unit_test_teardown(test_response_basic, teardown),
        cmocka_unit_test_teardown(test_response_framing, teardown),
        cmocka_unit_test_teardown(test_response_versions_and_reason, teardown),
        cmocka_unit_test_teardown(test_bad_responses, teardown),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_chunked_simple),
        cmocka_unit_test(test_chunked_hex_sizes),
        cmocka_unit_test(test_chunked_extensions),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_chunked_trailers_kept),
        cmocka_unit_test(test_chunked_done_stays_done),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_chunked_line_limit),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

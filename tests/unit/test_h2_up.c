/* Unit tests for http2/h2_up.c: answers of an HTTP/2 server, built here
 * frame by frame, as the HTTP/1.1 bytes a lane hands the proxy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "http2/h2_up.h"

#define F_DATA 0
#define F_HEADERS 1
#define F_RST 3
#define F_SETTINGS 4
#define END_STREAM 1
#define END_HEADERS 4

struct wire {
    uint8_t b[8192];
    size_t n;
};

static void frame(struct wire *w, uint8_t type, uint8_t flags, uint32_t sid, const void *p,
                  size_t len)
{
    uint8_t *o = w->b + w->n;
    o[0] = (uint8_t)(len >> 16), o[1] = (uint8_t)(len >> 8), o[2] = (uint8_t)len;
    o[3] = type, o[4] = flags;
    o[5] = (uint8_t)(sid >> 24), o[6] = (uint8_t)(sid >> 16), o[7] = (uint8_t)(sid >> 8),
    o[8] = (uint8_t)sid;
    memcpy(o + 9, p, len);
    w->n += 9 + len;
}

/* A HEADERS frame of name/value pairs (NULL-terminated list). */
static void headers(struct wire *w, nghttp2_hd_deflater *d, uint8_t flags, uint32_t sid,
                    const char **kv)
{
    nghttp2_nv nv[16];
    size_t n = 0;
    for (; kv[2 * n]; n++)
        nv[n] = (nghttp2_nv){(uint8_t *)kv[2 * n], (uint8_t *)kv[2 * n + 1], strlen(kv[2 * n]),
                             strlen(kv[2 * n + 1]), NGHTTP2_NV_FLAG_NONE};
    uint8_t block[1024];
    ssize_t len = nghttp2_hd_deflate_hd(d, block, sizeof(block), nv, n);
    assert_true(len > 0);
    frame(w, F_HEADERS, flags | END_HEADERS, sid, block, (size_t)len);
}

static struct ev_loop *loop;

static void answer_of(struct wire *w, char *out, size_t cap)
{
    if (!loop)
        loop = ev_loop_new(EVFLAG_AUTO);
    /* fed in three pieces the head is the same (DATA cut in a frame's
     * middle comes out as more, smaller chunks); `out` is the whole feed's */
    char split[4096];
    assert_int_equal(
        h2up_feed_server_bytes(loop, w->b, w->n, w->n / 3, 2 * w->n / 3, split, sizeof(split)), 0);
    assert_int_equal(h2up_feed_server_bytes(loop, w->b, w->n, w->n, w->n, out, cap), 0);
    const char *end = strstr(out, "\r\n\r\n");
    if (end)
        assert_memory_equal(split, out, (size_t)(end - out) + 4);
}

static void test_chunked_answer_with_trailers(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    nghttp2_hd_deflater *d;
    assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
    frame(&w, F_SETTINGS, 0, 0, "", 0);
    headers(&w, d, 0, 1,
            (const char *[]){":status", "200", "content-type", "application/grpc", NULL});
    frame(&w, F_DATA, 0, 1, "abc", 3);
    frame(&w, F_DATA, 0, 1, "de", 2);
    headers(&w, d, END_STREAM, 1,
            (const char *[]){"grpc-status", "0", "grpc-message", "fine", NULL});
    nghttp2_hd_deflate_del(d);
    char out[4096];
    answer_of(&w, out, sizeof(out));
    assert_string_equal(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2\r\nde\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n");
}

static void test_content_length_passes_through(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    nghttp2_hd_deflater *d;
    assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
    frame(&w, F_SETTINGS, 0, 0, "", 0);
    headers(&w, d, 0, 1, (const char *[]){":status", "100", NULL}); /* interim: not relayed */
    headers(&w, d, 0, 1, (const char *[]){":status", "404", "content-length", "4", NULL});
    frame(&w, F_DATA, END_STREAM, 1, "gone", 4);
    nghttp2_hd_deflate_del(d);
    char out[4096];
    answer_of(&w, out, sizeof(out));
    assert_string_equal(out, "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\ngone");
}

static void test_reset_stream_gives_nothing(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    nghttp2_hd_deflater *d;
    assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
    frame(&w, F_SETTINGS, 0, 0, "", 0);
    headers(&w, d, 0, 1, (const char *[]){":status", "200", NULL});
    frame(&w, F_DATA, 0, 1, "par", 3);
    frame(&w, F_RST, 0, 1, "\0\0\0\2", 4); /* INTERNAL_ERROR */
    nghttp2_hd_deflate_del(d);
    char out[4096];
    answer_of(&w, out, sizeof(out));
    /* what came before the reset, then the lane closes: never a last chunk */
    assert_string_equal(out, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\npar\r\n");
}

static void test_trailers_only_answer_has_an_empty_body(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    nghttp2_hd_deflater *d;
    assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
    frame(&w, F_SETTINGS, 0, 0, "", 0);
    headers(&w, d, END_STREAM, 1,
            (const char *[]){":status", "200", "content-type", "application/grpc", "grpc-status", "5",
                             "grpc-message", "no such thing", NULL});
    nghttp2_hd_deflate_del(d);
    char out[4096];
    answer_of(&w, out, sizeof(out));
    /* grpc-status stays in the head: a gRPC Trailers-Only answer */
    assert_string_equal(out, "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 5\r\n"
                             "grpc-message: no such thing\r\ncontent-length: 0\r\n\r\n");
}

static void test_bad_frames_close_the_lane(void **state)
{
    (void)state;
    struct wire w = {.n = 0};
    frame(&w, F_SETTINGS, 0, 0, "", 0);
    frame(&w, F_DATA, 0, 1, "xyz", 3); /* DATA before HEADERS */
    char out[4096];
    answer_of(&w, out, sizeof(out));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_answer_with_trailers),
        cmocka_unit_test(test_content_length_passes_through),
        cmocka_unit_test(test_reset_stream_gives_nothing),
        cmocka_unit_test(test_trailers_only_answer_has_an_empty_body),
        cmocka_unit_test(test_bad_frames_close_the_lane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

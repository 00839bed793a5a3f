/* Unit tests for the gRPC health check (src/upstream/health_grpc.c): the
 * hand-written protobuf (request encoding checked byte for byte, response
 * decoding of good, odd and malformed messages, never past its length),
 * and the HTTP/2 exchange driven against an nghttp2 server session made
 * here, its answers fed whole and byte by byte: SERVING passes; other
 * serving statuses, Trailers-Only NOT_FOUND, HTTP errors, oversized or
 * missing messages, resets and an early end fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "upstream/health_grpc.h"

/* ---- protobuf ---- */

static void test_encode_whole_server_is_an_empty_message(void **state)
{
    uint8_t out[16];
    assert_int_equal(health_grpc_encode_request("", out, sizeof(out)), 5);
    static const uint8_t want[] = {0, 0, 0, 0, 0};
    assert_memory_equal(out, want, 5);
}

static void test_encode_service(void **state)
{
    uint8_t out[64];
    assert_int_equal(health_grpc_encode_request("shop.Cart", out, sizeof(out)), 5 + 2 + 9);
    static const uint8_t want[] = {0,   0,   0,   0,   11,  0x0a, 9,   's',
                                   'h', 'o', 'p', '.', 'C', 'a',  'r', 't'};
    assert_memory_equal(out, want, sizeof(want));
}

static void test_encode_two_byte_length(void **state)
{
    char svc[201];
    memset(svc, 'x', 200);
    svc[200] = 0;
    uint8_t out[HEALTH_GRPC_REQ_MAX];
    assert_int_equal(health_grpc_encode_request(svc, out, sizeof(out)), 5 + 3 + 200);
    assert_int_equal(out[4], 203);
    assert_int_equal(out[5], 0x0a);
    assert_int_equal(out[6], 0x80 | (200 & 0x7f));
    assert_int_equal(out[7], 200 >> 7);
    /* too small a buffer: nothing */
    assert_int_equal(health_grpc_encode_request(svc, out, 100), 0);
}

static void test_decode(void **state)
{
    uint64_t st = 99;
    static const uint8_t serving[] = {0x08, 0x01};
    assert_int_equal(health_grpc_decode_response(serving, sizeof(serving), &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(health_grpc_decode_response(serving, 0, &st), 0); /* empty: UNKNOWN */
    assert_int_equal(st, 0);
    static const uint8_t not_serving[] = {0x08, 0x02};
    assert_int_equal(health_grpc_decode_response(not_serving, 2, &st), 0);
    assert_int_equal(st, 2);
    /* unknown fields of every wire type skipped, the last status wins */
    static const uint8_t mixed[] = {0x08, 0x02, 0x10, 0xff, 0x01, 0x19, 1, 2, 3, 4, 5,    6,   7,
                                    8,    0x22, 0x02, 'h',  'i',  0x2d, 1, 2, 3, 4, 0x08, 0x01};
    assert_int_equal(health_grpc_decode_response(mixed, sizeof(mixed), &st), 0);
    assert_int_equal(st, 1);
    /* a long varint status is read whole (and is not SERVING) */
    static const uint8_t big[] = {0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(health_grpc_decode_response(big, sizeof(big), &st), 0);
    assert_true(st != 1);
}

static void test_decode_malformed(void **state)
{
    uint64_t st;
    static const uint8_t *bad[] = {
        (const uint8_t *)"\x08",         /* value missing */
        (const uint8_t *)"\x08\x80",     /* varint cut */
        (const uint8_t *)"\x0a\x05hi",   /* length past the end */
        (const uint8_t *)"\x19\x01\x02", /* fixed64 cut */
        (const uint8_t *)"\x1d\x01",     /* fixed32 cut */
        (const uint8_t *)"\x0b",         /* start group */
        (const uint8_t *)"\x0e",         /* wire type 6 */
        (const uint8_t *)"\x00\x01",     /* field 0 */
        (const uint8_t *)"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", /* 11-byte varint */
    };
    static const size_t lens[] = {1, 2, 4, 3, 2, 1, 1, 2, 12};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        /* a copy of exactly len bytes, so ASan catches a read past it */
        uint8_t *m = malloc(lens[i]);
        memcpy(m, bad[i], lens[i]);
        assert_int_equal(health_grpc_decode_response(m, lens[i], &st), -1);
        free(m);
    }
}

/* ---- the exchange, against an nghttp2 server session ---- */

enum answer {
    A_SERVING,
    A_NOT_SERVING,
    A_TRAILERS_ONLY_NOT_FOUND,
    A_HTTP_503,
    A_NO_MESSAGE,
    A_BIG_MESSAGE,
    A_RESET,
    A_NO_GRPC_STATUS,
    A_COMPRESSED,
    A_TWO_MESSAGES
};

struct server {
    nghttp2_session *s;
    enum answer answer;
    int32_t stream;
    uint8_t body[2048];
    size_t body_len, body_off;
    char path[64];
    uint8_t req[256];
    size_t req_len;
    int end_stream;
};

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    struct server *v = ud;
    size_t n = v->body_len - v->body_off;
    if (n > len)
        n = len;
    memcpy(buf, v->body + v->body_off, n);
    v->body_off += n;
    if (v->body_off == v->body_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (v->answer != A_NO_GRPC_STATUS) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
            nghttp2_submit_trailer(s, id, tr, 1);
        }
    }
    return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

static void srv_answer(struct server *v, int32_t id)
{
    nghttp2_nv head[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.read_callback = srv_read};
    static const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    static const uint8_t not_serving[] = {0, 0, 0, 0, 2, 0x08, 0x02};
    memcpy(v->body, serving, sizeof(serving));
    v->body_len = sizeof(serving);
    switch (v->answer) {
    case A_SERVING:
    case A_NO_GRPC_STATUS:
        break;
    case A_NOT_SERVING:
        memcpy(v->body, not_serving, sizeof(not_serving));
        break;
    case A_TRAILERS_ONLY_NOT_FOUND: {
        nghttp2_nv only[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                             NV("grpc-status", "5"), NV("grpc-message", "unknown service")};
        nghttp2_submit_response(v->s, id, only, 4, NULL);
        return;
    }
    case A_HTTP_503: {
        nghttp2_nv h[] = {NV(":status", "503")};
        nghttp2_submit_response(v->s, id, h, 1, &dp);
        return;
    }
    case A_NO_MESSAGE:
        v->body_len = 0;
        break;
    case A_BIG_MESSAGE:
        memset(v->body, 0, sizeof(v->body));
        v->body_len = sizeof(v->body);
        break;
    case A_RESET:
        nghttp2_submit_rst_stream(v->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        return;
    case A_COMPRESSED:
        v->body[0] = 1;
        break;
    case A_TWO_MESSAGES:
        memcpy(v->body + 7, serving, sizeof(serving));
        v->body_len = 14;
        break;
    }
    nghttp2_submit_response(v->s, id, head, 2, &dp);
}

static int srv_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                         const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct server *v = ud;
    if (nl == 5 && memcmp(name, ":path", 5) == 0 && vl < sizeof(v->path)) {
        memcpy(v->path, value, vl);
        v->path[vl] = 0;
    }
    return 0;
}

static int srv_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                       void *ud)
{
    struct server *v = ud;
    if (len <= sizeof(v->req) - v->req_len) {
        memcpy(v->req + v->req_len, d, len);
        v->req_len += len;
    }
    return 0;
}

static int srv_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct server *v = ud;
    if (f->hd.stream_id && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        v->end_stream = 1;
        srv_answer(v, f->hd.stream_id);
    }
    return 0;
}

static void server_init(struct server *v, enum answer a)
{
    memset(v, 0, sizeof(*v));
    v->answer = a;
    nghttp2_session_callbacks *cb;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, srv_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_on_frame);
    assert_int_equal(nghttp2_session_server_new(&v->s, cb, v), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(v->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* Runs the exchange until a verdict; the server's bytes fed `chunk` at a
 * time (0: whole). Returns the verdict; *why its reason. */
static enum health_grpc_verdict exchange(struct server *v, const char *service, size_t chunk,
                                         char *why, size_t why_len)
{
    struct health_grpc *g = health_grpc_new(service, "x.test:50051", 0, 1000);
    assert_non_null(g);
    enum health_grpc_verdict r = HEALTH_GRPC_PENDING;
    for (int round = 0; round < 100 && r == HEALTH_GRPC_PENDING; round++) {
        const uint8_t *out;
        size_t n;
        while ((n = health_grpc_output(g, &out)) > 0) {
            assert_int_equal(nghttp2_session_mem_recv(v->s, out, n), (ssize_t)n);
            health_grpc_consumed(g, n);
        }
        const uint8_t *in;
        ssize_t m;
        while (r == HEALTH_GRPC_PENDING && (m = nghttp2_session_mem_send(v->s, &in)) > 0) {
            size_t step = chunk ? chunk : (size_t)m;
            for (size_t off = 0; off < (size_t)m && r == HEALTH_GRPC_PENDING; off += step) {
                uint8_t *copy = malloc(step); /* exact size: ASan sees an overread */
                size_t k = (size_t)m - off < step ? (size_t)m - off : step;
                memcpy(copy, in + off, k);
                r = health_grpc_input(g, copy, k);
                free(copy);
            }
        }
        if (!nghttp2_session_want_write(v->s) && r == HEALTH_GRPC_PENDING && round > 3)
            r = health_grpc_input(g, NULL, 0); /* the server has nothing more: the end */
    }
    const char *reason;
    health_grpc_verdict(g, &reason);
    snprintf(why, why_len, "%s", reason);
    health_grpc_free(g);
    return r;
}

static void run(enum answer a, size_t chunk, enum health_grpc_verdict want, const char *want_why)
{
    struct server v;
    char why[160];
    server_init(&v, a);
    enum health_grpc_verdict r = exchange(&v, "shop.Cart", chunk, why, sizeof(why));
    if (r != want || !strstr(why, want_why))
        fail_msg("answer %d chunk %zu: verdict %d '%s', wanted %d '%s'", a, chunk, r, why, want,
                 want_why);
    if (a == A_SERVING) {
        assert_string_equal(v.path, "/grpc.health.v1.Health/Check");
        static const uint8_t req[] = {0,   0,   0,   0,   11,  0x0a, 9,   's',
                                      'h', 'o', 'p', '.', 'C', 'a',  'r', 't'};
        assert_int_equal(v.req_len, sizeof(req));
        assert_memory_equal(v.req, req, sizeof(req));
        assert_true(v.end_stream);
    }
    nghttp2_session_del(v.s);
}

static void test_exchange(void **state)
{
    static const size_t chunks[] = {0, 1, 7};
    for (size_t i = 0; i < 3; i++) {
        size_t c = chunks[i];
        run(A_SERVING, c, HEALTH_GRPC_PASS, "SERVING");
        run(A_NOT_SERVING, c, HEALTH_GRPC_FAIL, "serving status NOT_SERVING");
        run(A_TRAILERS_ONLY_NOT_FOUND, c, HEALTH_GRPC_FAIL,
            "grpc-status 5 (NOT_FOUND): unknown service");
        run(A_HTTP_503, c, HEALTH_GRPC_FAIL, "HTTP status 503");
        run(A_NO_MESSAGE, c, HEALTH_GRPC_FAIL, "not one gRPC message");
        run(A_BIG_MESSAGE, c, HEALTH_GRPC_FAIL, "response message over 1024 bytes");
        run(A_RESET, c, HEALTH_GRPC_FAIL, "stream closed before the answer");
        run(A_NO_GRPC_STATUS, c, HEALTH_GRPC_FAIL, "no grpc-status");
        run(A_COMPRESSED, c, HEALTH_GRPC_FAIL, "compressed");
        run(A_TWO_MESSAGES, c, HEALTH_GRPC_FAIL, "not one gRPC message");
    }
}

static void test_garbage_and_early_end_fail(void **state)
{
    struct health_grpc *g = health_grpc_new("", "h", 1, 0);
    assert_non_null(g);
    const uint8_t *out;
    assert_true(health_grpc_output(g, &out) >= 24); /* the preface first */
    assert_memory_equal(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    health_grpc_consumed(g, 24);
    health_grpc_input(g, (const uint8_t *)"HTTP/1.1 400 Bad\r\n\r\n", 20);
    /* the session answers with its GOAWAY: the check fails, nothing more to send */
    for (int i = 0; i < 10 && health_grpc_output(g, &out); i++)
        health_grpc_consumed(g, SIZE_MAX);
    assert_int_equal(health_grpc_verdict(g, NULL), HEALTH_GRPC_FAIL);
    health_grpc_free(g);
    g = health_grpc_new("", "h", 0, 0);
    assert_int_equal(health_grpc_input(g, NULL, 0), HEALTH_GRPC_FAIL);
    const char *why;
    health_grpc_verdict(g, &why);
    assert_string_equal(why, "connection closed before the answer");
    health_grpc_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_whole_server_is_an_empty_message),
        cmocka_unit_test(test_encode_service),
        cmocka_unit_test(test_encode_two_byte_length),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_garbage_and_early_end_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

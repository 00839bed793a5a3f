/* fuzz_http_request: libFuzzer harness for http_parse_request().
 *
 * Each input is parsed as a request head several ways: whole, fed in three
 * pieces at split points derived from the input, (for inputs up to 4 KiB)
 * one byte more per call, and the way the proxy calls: a re-initialised msg
 * per call with only scan_pos carried over. All three must give the same result, the same
 * error status and position, and the same message; a success must come
 * exactly when the last byte of the head arrives. While a prefix is parsed
 * the bytes after it are poisoned (under ASan), so a read past `len` is a
 * crash. Limits are derived from the input too, so the 414/431 paths get
 * exercised near their boundaries. */
#include "http/http_parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) __asan_poison_memory_region((p), (n))
#define FUZZ_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ull;
    return h;
}

/* Parses buf[0..k) with the bytes after it poisoned. */
static int fuzz_parse(char *buf, size_t k, size_t size, struct http_msg *m,
                      const struct http_limits *lim)
{
    FUZZ_POISON(buf + k, size - k);
    int rc = http_parse_request(buf, k, m, lim);
    FUZZ_UNPOISON(buf + k, size - k);
    return rc;
}

static void fuzz_check_slice(struct http_slice s, const char *buf, size_t end)
{
    if (s.len == 0)
        return;
    FUZZ_CHECK(s.p >= buf && s.p + s.len <= buf + end);
}

static void fuzz_check_msg(const struct http_msg *m, int rc, const char *buf, size_t len,
                           const struct http_limits *lim)
{
    if (rc == HTTP_PARSE_ERROR) {
        int st = m->error_status;
        FUZZ_CHECK(st == 400 || st == 414 || st == 417 || st == 431 || st == 501 || st == 505);
        FUZZ_CHECK(m->error != NULL);
        FUZZ_CHECK(m->error_pos <= len);
        return;
    }
    if (rc == HTTP_PARSE_PARTIAL)
        return;
    FUZZ_CHECK(rc > 0 && (size_t)rc <= len);
    size_t end = (size_t)rc;
    FUZZ_CHECK(buf[end - 1] == '\n' && buf[end - 2] == '\r');
    FUZZ_CHECK(m->version_minor == 0 || m->version_minor == 1);
    FUZZ_CHECK(m->method_str.len > 0 && m->target.len > 0);
    fuzz_check_slice(m->method_str, buf, end);
    fuzz_check_slice(m->target, buf, end);
    if (!(m->absolute_form && m->path.len == 1 && m->path.p[0] == '/'))
        fuzz_check_slice(m->path, buf, end);
    fuzz_check_slice(m->query, buf, end);
    fuzz_check_slice(m->host, buf, end);
    fuzz_check_slice(m->upgrade_proto, buf, end);
    FUZZ_CHECK(m->n_headers <= lim->max_headers && m->n_headers <= HTTP_MAX_HEADERS_HARD);
    for (size_t i = 0; i < m->n_headers; i++) {
        struct http_slice n = m->headers[i].name, v = m->headers[i].value;
        FUZZ_CHECK(n.len > 0);
        fuzz_check_slice(n, buf, end);
        fuzz_check_slice(v, buf, end);
        FUZZ_CHECK(memchr(n.p, ':', n.len) == NULL);
        for (size_t k = 0; k < v.len; k++)
            FUZZ_CHECK(v.p[k] != '\r' && v.p[k] != '\n' && v.p[k] != '\0');
        if (v.len)
            FUZZ_CHECK(v.p[0] != ' ' && v.p[v.len - 1] != ' ');
        FUZZ_CHECK(m->hop[i] <= 1);
    }
    FUZZ_CHECK(m->body_kind == HTTP_BODY_NONE || m->body_kind == HTTP_BODY_LENGTH ||
               m->body_kind == HTTP_BODY_CHUNKED);
    if (m->body_kind == HTTP_BODY_LENGTH)
        FUZZ_CHECK(m->content_length > 0 && m->content_length <= ((uint64_t)1 << 62));
    if (m->body_kind == HTTP_BODY_CHUNKED)
        FUZZ_CHECK(m->version_minor == 1 && !m->has_content_length);
    if (m->version_minor == 1)
        FUZZ_CHECK(http_msg_find(m, "host") >= 0);
    /* framing fields never reach the upstream as they are */
    for (size_t i = 0; i < m->n_headers; i++) {
        if (http_slice_eq_nocase(m->headers[i].name, "content-length") ||
            http_slice_eq_nocase(m->headers[i].name, "transfer-encoding") ||
            http_slice_eq_nocase(m->headers[i].name, "connection"))
            FUZZ_CHECK(m->hop[i]);
    }
}

static int fuzz_slice_same(struct http_slice a, struct http_slice b)
{
    return a.len == b.len && (a.len == 0 || a.p == b.p);
}

static void fuzz_check_same(const struct http_msg *a, int ra, const struct http_msg *b, int rb)
{
    FUZZ_CHECK(ra == rb);
    if (ra == HTTP_PARSE_ERROR) {
        FUZZ_CHECK(a->error_status == b->error_status);
        FUZZ_CHECK(a->error_pos == b->error_pos);
        FUZZ_CHECK(strcmp(a->error, b->error) == 0);
        return;
    }
    if (ra < 0)
        return;
    FUZZ_CHECK(a->method == b->method && fuzz_slice_same(a->method_str, b->method_str));
    FUZZ_CHECK(fuzz_slice_same(a->target, b->target) && fuzz_slice_same(a->path, b->path));
    FUZZ_CHECK(fuzz_slice_same(a->query, b->query) && fuzz_slice_same(a->host, b->host));
    FUZZ_CHECK(a->version_minor == b->version_minor && a->n_headers == b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        FUZZ_CHECK(fuzz_slice_same(a->headers[i].name, b->headers[i].name));
        FUZZ_CHECK(fuzz_slice_same(a->headers[i].value, b->headers[i].value));
        FUZZ_CHECK(a->hop[i] == b->hop[i]);
    }
    FUZZ_CHECK(a->body_kind == b->body_kind && a->content_length == b->content_length);
    FUZZ_CHECK(a->keep_alive == b->keep_alive && a->expect_continue == b->expect_continue);
    FUZZ_CHECK(a->upgrade == b->upgrade && a->has_te_trailers == b->has_te_trailers);
    FUZZ_CHECK(fuzz_slice_same(a->upgrade_proto, b->upgrade_proto));
    FUZZ_CHECK(a->absolute_form == b->absolute_form);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_msg whole, split;
    uint64_t h = fuzz_hash(data, size);
    struct http_limits lim;
    /* one input in four gets small limits, the rest generous ones */
    lim.max_request_line = (h & 3) ? 8192 : (size_t)32 << ((h >> 2) % 6);
    lim.max_header_bytes = (h & 3) ? 65536 : (size_t)128 << ((h >> 5) % 6);
    lim.max_headers = (h & 3) ? 100 : 1 + (h >> 8) % 40;

    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);

    http_msg_init(&whole);
    int rw = fuzz_parse(buf, size, size, &whole, &lim);
    FUZZ_CHECK(rw == HTTP_PARSE_ERROR || rw == HTTP_PARSE_PARTIAL || rw > 0);
    fuzz_check_msg(&whole, rw, buf, size, &lim);
    /* a finished parse answers the same again */
    FUZZ_CHECK(fuzz_parse(buf, size, size, &whole, &lim) == rw);

    /* three pieces */
    size_t k1 = size ? (size_t)((h >> 12) % (size + 1)) : 0;
    size_t k2 = k1 + (size_t)((h >> 32) % (size - k1 + 1));
    size_t cuts[3] = {k1, k2, size};
    int rs = HTTP_PARSE_PARTIAL;
    http_msg_init(&split);
    for (int c = 0; c < 3 && rs == HTTP_PARSE_PARTIAL; c++)
        rs = fuzz_parse(buf, cuts[c], size, &split, &lim);
    fuzz_check_same(&whole, rw, &split, rs);

    /* byte by byte */
    if (size <= 4096) {
        http_msg_init(&split);
        size_t k = 0;
        rs = HTTP_PARSE_PARTIAL;
        while (rs == HTTP_PARSE_PARTIAL && k < size)
            rs = fuzz_parse(buf, ++k, size, &split, &lim);
        if (size == 0)
            rs = fuzz_parse(buf, 0, size, &split, &lim);
        fuzz_check_same(&whole, rw, &split, rs);
        if (rw > 0)
            FUZZ_CHECK(k == (size_t)rw);
    }

    /* as the proxy calls: a fresh msg per call, only scan_pos carried over,
     * at the same cuts and then at every 7th byte */
    size_t scan_pos = 0;
    rs = HTTP_PARSE_PARTIAL;
    for (int c = 0; c < 3 && rs == HTTP_PARSE_PARTIAL; c++) {
        http_msg_init(&split);
        split.scan_pos = scan_pos;
        rs = fuzz_parse(buf, cuts[c], size, &split, &lim);
        FUZZ_CHECK(rs != HTTP_PARSE_PARTIAL || split.scan_pos == cuts[c]);
        scan_pos = split.scan_pos;
    }
    fuzz_check_same(&whole, rw, &split, rs);
    scan_pos = 0;
    rs = HTTP_PARSE_PARTIAL;
    for (size_t k = 0; rs == HTTP_PARSE_PARTIAL && k < size;) {
        k = k + 7 < size ? k + 7 : size;
        http_msg_init(&split);
        split.scan_pos = scan_pos;
        rs = fuzz_parse(buf, k, size, &split, &lim);
        scan_pos = split.scan_pos;
    }
    fuzz_check_same(&whole, rw, &split, rs);
    free(buf);
    return 0;
}

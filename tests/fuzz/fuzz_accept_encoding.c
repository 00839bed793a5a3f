/* fuzz_accept_encoding: libFuzzer harness for the Accept-Encoding parser
 * the compress step runs on client input (http/steps/accept_encoding.c)
 * and the content type matcher (http/steps/compress.c).
 *
 * The input is copied to an exact-size buffer (fields are parsed from
 * slices: no byte after them may be read). Checks: every weight is unset
 * or within 0..1000; the choice is -1 or a coding of the list it was given
 * whose weight is positive; parsing the same bytes twice (two fields)
 * changes nothing, since a coding keeps its first weight. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/steps/accept_encoding.h"
#include "http/steps/compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_weights(const struct accept_encoding *ae)
{
    for (size_t i = 0; i < AE_CODING_COUNT; i++)
        if (ae->q[i] != AE_Q_UNSET && (ae->q[i] < 0 || ae->q[i] > 1000))
            abort();
    if ((ae->star != AE_Q_UNSET && (ae->star < 0 || ae->star > 1000)) ||
        (ae->identity != AE_Q_UNSET && (ae->identity < 0 || ae->identity > 1000)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *p = malloc(size ? size : 1);
    if (p == NULL)
        abort();
    memcpy(p, data, size);
    struct accept_encoding ae, twice;
    accept_encoding_init(&ae);
    int n = accept_encoding_parse(&ae, p, size);
    if (n < 0)
        abort();
    fuzz_check_weights(&ae);
    twice = ae;
    (void)accept_encoding_parse(&twice, p, size);
    if (memcmp(&twice, &ae, sizeof(ae)) != 0)
        abort();
    static const enum ae_coding prefs[] = { AE_CODING_GZIP, AE_CODING_BR };
    int c = accept_encoding_choose(&ae, prefs, 2);
    if (c != -1 && c != AE_CODING_GZIP && c != AE_CODING_BR)
        abort();
    if (c >= 0) {
        int q = ae.q[c] != AE_Q_UNSET ? ae.q[c] : ae.star;
        if (q <= 0)
            abort();
    }
    (void)compress_type_match("text/*", (struct http_slice){ p, size });
    (void)compress_type_match("application/json", (struct http_slice){ p, size });
    free(p);
    return 0;
}

/* fuzz_cache_control: libFuzzer harness for the cache's readers of
 * fields (cache/freshness.c): cache_cc_parse on Cache-Control values,
 * cache_date_parse on HTTP dates, cache_etag_match on If-None-Match,
 * cache_range_parse on Range, and the decisions built on them.
 *
 * The input is copied to an exact-size buffer (fields are slices: no byte
 * after them may be read). Checks: parsing is the same whole and split at
 * every comma; a parsed date formats back to a date that parses to the same
 * time; lifetimes and ages are never negative; a range lies inside the
 * representation; "*" and the input's own first tag match. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/freshness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_dates(const char *p, size_t n)
{
    int64_t t, t2;
    char buf[32];
    if (cache_date_parse(p, n, &t) != 0)
        return;
    if (t < 0 || t > 253402300799LL) /* years 1970..9999 format back exactly */
        return;
    cache_date_format(t, buf);
    if (cache_date_parse(buf, 29, &t2) != 0 || t2 != t)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *p = malloc(size ? size : 1);
    if (p == NULL)
        abort();
    memcpy(p, data, size);
    struct cache_cc whole, split;
    cache_cc_init(&whole);
    cache_cc_init(&split);
    (void)cache_cc_parse(p, size, &whole);
    /* a message may carry the list over several fields: split at commas
     * outside quotes only when there are no quotes at all */
    if (memchr(p, '"', size) == NULL) {
        size_t start = 0;
        for (size_t i = 0; i <= size; i++)
            if (i == size || p[i] == ',') {
                (void)cache_cc_parse(p + start, i - start, &split);
                start = i + 1;
            }
        uint32_t mask = ~(uint32_t)CACHE_CC_SYNTAX;
        if ((whole.flags & mask) != (split.flags & mask) || whole.max_age != split.max_age ||
            whole.s_maxage != split.s_maxage || whole.max_stale != split.max_stale)
            abort();
    }
    fuzz_dates(p, size);
    struct cache_resp r;
    cache_resp_init(&r, 200);
    cache_resp_field(&r, "Cache-Control", 13, p, size);
    cache_resp_field(&r, "Expires", 7, p, size);
    cache_resp_field(&r, "Last-Modified", 13, p, size);
    cache_resp_field(&r, "Date", 4, "Sun, 06 Nov 1994 08:49:37 GMT", 29);
    int64_t life = cache_freshness_lifetime(&r);
    int64_t age = cache_current_age(&r, 784111777, 784111778, 784111800);
    if (life < 0 || age < 0)
        abort();
    (void)cache_reuse(&whole, &r, life, age);
    uint64_t from = 0, to = 0, len = size * 7 + 1;
    if (cache_range_parse(p, size, len, &from, &to) == 1 && (from > to || to >= len))
        abort();
    (void)cache_etag_match(p, size, "\"v1\"", 4);
    if (!cache_etag_match("*", 1, p, size))
        abort();
    const char *q = size ? memchr(p, '"', size) : NULL;
    const char *q2 = q ? memchr(q + 1, '"', size - (size_t)(q - p) - 1) : NULL;
    if (q2 && !cache_etag_match(q, (size_t)(q2 - q) + 1, q, (size_t)(q2 - q) + 1))
        abort();
    (void)cache_storable(1, &whole, 1, &r);
    free(p);
    return 0;
}

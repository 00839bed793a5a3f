/* Unit tests for cache/freshness: Cache-Control parsing, HTTP dates, what
 * is storable, freshness lifetime, Age arithmetic (RFC 9111 4.2.3) and the
 * reuse decision, all against a clock given as arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache/freshness.h"

#define T0 784111777LL /* Sun, 06 Nov 1994 08:49:37 GMT */

static struct cache_cc cc_of(const char *s)
{
    struct cache_cc cc;
    cache_cc_init(&cc);
    (void)cache_cc_parse(s, strlen(s), &cc);
    return cc;
}

static void field(struct cache_resp *r, const char *name, const char *value)
{
    cache_resp_field(r, name, strlen(name), value, strlen(value));
}

/* A 200 with Date T0 and the given Cache-Control (or none). */
static struct cache_resp resp_cc(int status, const char *cc)
{
    struct cache_resp r;
    cache_resp_init(&r, status);
    field(&r, "Date", "Sun, 06 Nov 1994 08:49:37 GMT");
    if (cc)
        field(&r, "Cache-Control", cc);
    return r;
}

static void test_cc_directives(void **state)
{
    struct cache_cc cc = cc_of("public, max-age=60, s-maxage=\"120\", must-revalidate");
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_PUBLIC));
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_MUST_REVALIDATE));
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 120);
    assert_false(cc.flags & CACHE_CC_INVALID);
    cc = cc_of("NO-STORE,,  Private , no-cache=\"Set-Cookie, X-A\", immutable");
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_NO_STORE));
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_PRIVATE));
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_NO_CACHE));
    assert_true(cc.flags & CACHE_CC_FIELDS);
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_IMMUTABLE));
    cc = cc_of("max-stale, min-fresh=5, only-if-cached, stale-if-error=9, stale-while-revalidate=7");
    assert_int_equal(cc.max_stale, CACHE_DELTA_MAX);
    assert_int_equal(cc.min_fresh, 5);
    assert_int_equal(cc.stale_if_error, 9);
    assert_int_equal(cc.stale_while_revalidate, 7);
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_ONLY_IF_CACHED));
    cc = cc_of("max-stale=30, must-understand, proxy-revalidate, x-ext=\"a,b\", no-transform");
    assert_int_equal(cc.max_stale, 30);
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_MUST_UNDERSTAND));
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_PROXY_REVALIDATE));
    assert_true(cc.flags & CACHE_CC_FLAG(CACHE_CC_NO_TRANSFORM));
}

static void test_cc_invalid(void **state)
{
    struct cache_cc cc = cc_of("max-age=abc");
    assert_true(cc.flags & CACHE_CC_INVALID);
    cc = cc_of("max-age=10, max-age=20");
    assert_true(cc.flags & CACHE_CC_INVALID);
    cc = cc_of("max-age");
    assert_true(cc.flags & CACHE_CC_INVALID);
    cc = cc_of("max-age=99999999999999999999");
    assert_int_equal(cc.max_age, CACHE_DELTA_MAX);
    assert_false(cc.flags & CACHE_CC_INVALID);
    struct cache_cc c2;
    cache_cc_init(&c2);
    assert_int_equal(cache_cc_parse("public, =x, max-age=5", 21, &c2), -EINVAL);
    assert_true(c2.flags & CACHE_CC_SYNTAX);
    assert_true(c2.flags & CACHE_CC_FLAG(CACHE_CC_PUBLIC));
    assert_int_equal(c2.max_age, 5);
    cache_cc_init(&c2);
    assert_int_equal(cache_cc_parse("a b, no-store", 13, &c2), -EINVAL);
    assert_true(c2.flags & CACHE_CC_FLAG(CACHE_CC_NO_STORE));
    /* an unterminated quote ends the field; nothing read past it */
    cache_cc_init(&c2);
    (void)cache_cc_parse("private=\"abc", 12, &c2);
    assert_true(c2.flags & CACHE_CC_FLAG(CACHE_CC_PRIVATE));
    /* the length is honoured: "no-store" after n is not seen */
    cache_cc_init(&c2);
    assert_int_equal(cache_cc_parse("public, no-store", 6, &c2), 0);
    assert_false(c2.flags & CACHE_CC_FLAG(CACHE_CC_NO_STORE));
}

static void test_dates(void **state)
{
    int64_t t;
    assert_int_equal(cache_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(cache_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(cache_date_parse("Sun Nov  6 08:49:37 1994", 24, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(cache_date_parse("0", 1, &t), -EINVAL);
    assert_int_equal(cache_date_parse("Sun, 31 Feb 1994 08:49:37 GMT", 29, &t), -EINVAL);
    assert_int_equal(cache_date_parse("Sun, 06 Nov 1994 24:49:37 GMT", 29, &t), -EINVAL);
    assert_int_equal(cache_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t), -EINVAL);
    char buf[32];
    assert_int_equal(cache_date_format(T0, buf), 29);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    cache_date_format(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    cache_date_format(951782400, buf); /* a leap day */
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_int_equal(cache_date_parse(buf, 29, &t), 0);
    assert_int_equal(t, 951782400);
}

static void test_lifetime_order(void **state)
{
    struct cache_resp r = resp_cc(200, "max-age=60, s-maxage=600");
    field(&r, "Expires", "Sun, 06 Nov 1994 09:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 600); /* s-maxage first */
    r = resp_cc(200, "max-age=60");
    field(&r, "Expires", "Sun, 06 Nov 1994 09:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 60); /* then max-age */
    r = resp_cc(200, NULL);
    field(&r, "Expires", "Sun, 06 Nov 1994 09:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 3600); /* Expires - Date */
    r = resp_cc(200, NULL);
    field(&r, "Expires", "0");
    field(&r, "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 0); /* invalid Expires: stale, no heuristic */
    r = resp_cc(200, NULL);
    field(&r, "Expires", "Sat, 05 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 0); /* in the past */
    r = resp_cc(200, "max-age=5, max-age=6");
    assert_int_equal(cache_freshness_lifetime(&r), 0); /* duplicate: stale */
}

static void test_heuristic(void **state)
{
    struct cache_resp r = resp_cc(200, NULL);
    field(&r, "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT"); /* a day before Date */
    assert_int_equal(cache_freshness_lifetime(&r), 8640);         /* 10 % */
    r = resp_cc(404, NULL);
    field(&r, "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 8640);
    r = resp_cc(302, NULL); /* not heuristically cacheable */
    field(&r, "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 0);
    r = resp_cc(302, "public"); /* public allows it */
    field(&r, "Last-Modified", "Sat, 05 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 8640);
    r = resp_cc(200, NULL); /* Last-Modified after Date */
    field(&r, "Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT");
    assert_int_equal(cache_freshness_lifetime(&r), 0);
}

/* RFC 9111 4.2.3, with every term of the formula non-zero. */
static void test_age(void **state)
{
    struct cache_resp r = resp_cc(200, "max-age=100");
    /* request at T0-3, response at T0+10 (Date T0: apparent age 10), Age: 4
     * (+ delay 13 = 17): corrected initial age 17; 5 s resident */
    field(&r, "Age", "4");
    assert_int_equal(cache_current_age(&r, T0 - 3, T0 + 10, T0 + 15), 17 + 5);
    /* apparent age wins when larger */
    r = resp_cc(200, NULL);
    assert_int_equal(cache_current_age(&r, T0 + 29, T0 + 30, T0 + 30), 30);
    /* Date in the future: apparent age is 0, not negative */
    r = resp_cc(200, NULL);
    assert_int_equal(cache_current_age(&r, T0 - 60, T0 - 60, T0 - 50), 10);
    /* no Date: response time stands in */
    cache_resp_init(&r, 200);
    assert_int_equal(cache_current_age(&r, T0, T0, T0 + 7), 7);
    /* bad Age ignored */
    r = resp_cc(200, NULL);
    field(&r, "Age", "-3");
    assert_int_equal(cache_current_age(&r, T0, T0, T0), 0);
}

static enum cache_verdict storable(const char *req_cc, int auth, const struct cache_resp *r)
{
    struct cache_cc rq = cc_of(req_cc);
    return cache_storable(1, &rq, auth, r);
}

static void test_storable(void **state)
{
    struct cache_resp r = resp_cc(200, "max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_OK);
    struct cache_cc none = cc_of("");
    assert_int_equal(cache_storable(0, &none, 0, &r), CACHE_STORE_METHOD);
    assert_int_equal(storable("no-store", 0, &r), CACHE_STORE_REQ_NO_STORE);
    assert_int_equal(storable("", 1, &r), CACHE_STORE_AUTHORIZATION);
    r = resp_cc(200, "max-age=60, public");
    assert_int_equal(storable("", 1, &r), CACHE_STORE_OK);
    r = resp_cc(200, "s-maxage=60");
    assert_int_equal(storable("", 1, &r), CACHE_STORE_OK);
    r = resp_cc(200, "max-age=60, must-revalidate");
    assert_int_equal(storable("", 1, &r), CACHE_STORE_OK);
    r = resp_cc(200, "no-store, max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_NO_STORE);
    r = resp_cc(200, "no-store, must-understand, max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_OK);
    r = resp_cc(299, "no-store, must-understand, max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_STATUS);
    r = resp_cc(200, "private, max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_PRIVATE);
    r = resp_cc(200, "private=\"X-User\", max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_PRIVATE);
    r = resp_cc(200, "max-age=60");
    field(&r, "Vary", "Accept, *");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_VARY_STAR);
    r = resp_cc(200, "max-age=60");
    field(&r, "Set-Cookie", "a=b");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_SET_COOKIE);
    /* cacheable by default only with explicit freshness or a heuristic status */
    r = resp_cc(302, NULL);
    field(&r, "ETag", "\"x\"");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_STATUS);
    r = resp_cc(302, "max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_OK);
    r = resp_cc(206, "max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_STATUS);
    r = resp_cc(500, "max-age=60");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_STATUS);
    /* no freshness and no validator: useless */
    r = resp_cc(200, NULL);
    assert_int_equal(storable("", 0, &r), CACHE_STORE_NOT_CACHEABLE);
    r = resp_cc(200, "max-age=0, stale-while-revalidate=30"); /* usable stale */
    assert_int_equal(storable("", 0, &r), CACHE_STORE_OK);
    r = resp_cc(200, "max-age=0, stale-while-revalidate=0");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_NOT_CACHEABLE);
    r = resp_cc(200, "no-cache");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_NOT_CACHEABLE);
    field(&r, "ETag", "\"v1\"");
    assert_int_equal(storable("", 0, &r), CACHE_STORE_OK);
    for (int s = 0; s < 600; s++) {
        int expect = s == 200 || s == 203 || s == 204 || s == 206 || s == 300 || s == 301 ||
                     s == 308 || s == 404 || s == 405 || s == 410 || s == 414 || s == 501;
        assert_int_equal(cache_status_heuristic(s), expect);
    }
}

static enum cache_reuse reuse(const char *req_cc, const char *resp, int64_t age)
{
    struct cache_cc rq = cc_of(req_cc);
    struct cache_resp r = resp_cc(200, resp);
    return cache_reuse(&rq, &r, cache_freshness_lifetime(&r), age);
}

static void test_reuse(void **state)
{
    assert_int_equal(reuse("", "max-age=60", 59), CACHE_REUSE_FRESH);
    assert_int_equal(reuse("", "max-age=60", 60), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("no-cache", "max-age=60", 1), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("no-cache", "max-age=60, immutable", 1), CACHE_REUSE_FRESH);
    assert_int_equal(reuse("max-age=10", "max-age=60", 11), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("max-age=10", "max-age=60", 10), CACHE_REUSE_FRESH);
    assert_int_equal(reuse("min-fresh=20", "max-age=60", 41), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("min-fresh=20", "max-age=60", 40), CACHE_REUSE_FRESH);
    assert_int_equal(reuse("max-stale=10", "max-age=60", 70), CACHE_REUSE_STALE_OK);
    assert_int_equal(reuse("max-stale=10", "max-age=60", 71), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("max-stale", "max-age=60", 100000), CACHE_REUSE_STALE_OK);
    assert_int_equal(reuse("max-stale", "max-age=60, must-revalidate", 61), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("max-stale", "max-age=60, proxy-revalidate", 61), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("max-stale", "s-maxage=60", 61), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("", "max-age=60, no-cache", 1), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("", "max-age=60, stale-while-revalidate=30", 90), CACHE_REUSE_SWR);
    assert_int_equal(reuse("", "max-age=60, stale-while-revalidate=30", 91), CACHE_REUSE_REVALIDATE);
    assert_int_equal(reuse("", "max-age=60, must-revalidate, stale-while-revalidate=30", 61),
                     CACHE_REUSE_REVALIDATE);
}

static void test_stale_if_error(void **state)
{
    struct cache_cc rq = cc_of("");
    struct cache_resp r = resp_cc(200, "max-age=60, stale-if-error=30");
    assert_true(cache_stale_if_error(&rq, &r, 60, 90));
    assert_false(cache_stale_if_error(&rq, &r, 60, 91));
    rq = cc_of("stale-if-error=100");
    assert_true(cache_stale_if_error(&rq, &r, 60, 150));
    r = resp_cc(200, "max-age=60, stale-if-error=30, must-revalidate");
    assert_false(cache_stale_if_error(&rq, &r, 60, 61));
    r = resp_cc(200, "max-age=60");
    rq = cc_of("");
    assert_false(cache_stale_if_error(&rq, &r, 60, 61));
}

static int etag(const char *list, const char *tag)
{
    return cache_etag_match(list, strlen(list), tag, strlen(tag));
}

static void test_etag_match(void **state)
{
    assert_true(etag("\"a\"", "\"a\""));
    assert_true(etag("W/\"a\"", "\"a\""));
    assert_true(etag("\"a\"", "W/\"a\""));
    assert_true(etag("\"x\", \"y\" ,W/\"a\"", "\"a\""));
    assert_true(etag("*", "\"a\""));
    assert_true(etag("*", ""));
    assert_true(etag("\"a,b\"", "\"a,b\"")); /* a comma inside a tag */
    assert_false(etag("\"a,b\"", "\"a\""));
    assert_false(etag("\"ab\"", "\"a\""));
    assert_false(etag("", "\"a\""));
    assert_false(etag("\"a", "\"a\""));       /* unterminated */
    assert_false(etag("junk, \"a\"", "\"a\"")); /* a bad member ends the list */
    assert_false(etag("\"\"", ""));
}

static int range(const char *v, uint64_t len, uint64_t *a, uint64_t *b)
{
    return cache_range_parse(v, strlen(v), len, a, b);
}

static void test_range(void **state)
{
    uint64_t a = 0, b = 0;
    assert_int_equal(range("bytes=2-5", 10, &a, &b), 1);
    assert_int_equal(a, 2);
    assert_int_equal(b, 5);
    assert_int_equal(range("bytes=7-", 10, &a, &b), 1);
    assert_int_equal(b, 9);
    assert_int_equal(range("bytes=5-100", 10, &a, &b), 1);
    assert_int_equal(b, 9);
    assert_int_equal(range("bytes=-3", 10, &a, &b), 1);
    assert_int_equal(a, 7);
    assert_int_equal(range("bytes=-30", 10, &a, &b), 1);
    assert_int_equal(a, 0);
    assert_int_equal(range("BYTES=0-0", 10, &a, &b), 1);
    assert_int_equal(range("bytes=10-", 10, &a, &b), -1);
    assert_int_equal(range("bytes=-0", 10, &a, &b), -1);
    assert_int_equal(range("bytes=0-1,3-4", 10, &a, &b), 0);
    assert_int_equal(range("bytes=5-2", 10, &a, &b), 0);
    assert_int_equal(range("bytes=-", 10, &a, &b), 0);
    assert_int_equal(range("items=0-1", 10, &a, &b), 0);
    assert_int_equal(range("bytes=1-2x", 10, &a, &b), 0);
    assert_int_equal(range("bytes=99999999999999999999-", 10, &a, &b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_directives),
        cmocka_unit_test(test_cc_invalid),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_lifetime_order),
        cmocka_unit_test(test_heuristic),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_stale_if_error),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

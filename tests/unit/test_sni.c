/* Unit tests for l4/sni: a ClientHello built here (with and without a
 * server_name, other extensions around it) read whole and byte by byte,
 * malformed lengths refused, and the name patterns of `sni:` rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "l4/sni.h"

struct hello {
    uint8_t b[4096];
    size_t n;
};

static void put(struct hello *h, const void *p, size_t n)
{
    assert_true(h->n + n <= sizeof(h->b));
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void put16(struct hello *h, size_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put(h, x, 2);
}

/* A ClientHello record; name NULL: no server_name extension. */
static struct hello make_hello(const char *name)
{
    struct hello body = { .n = 0 }, ext = { .n = 0 }, rec = { .n = 0 };
    static const uint8_t version[2] = { 3, 3 }, random[32] = { 1 };
    put(&body, version, 2);
    put(&body, random, 32);
    uint8_t sid = 32;
    put(&body, &sid, 1);
    put(&body, random, 32);
    put16(&body, 4);
    static const uint8_t suites[4] = { 0x13, 0x01, 0x13, 0x02 };
    put(&body, suites, 4);
    static const uint8_t comp[2] = { 1, 0 };
    put(&body, comp, 2);
    /* an extension before the name: supported_versions */
    put16(&ext, 43);
    put16(&ext, 3);
    static const uint8_t sv[3] = { 2, 3, 4 };
    put(&ext, sv, 3);
    if (name) {
        size_t nl = strlen(name);
        put16(&ext, 0);
        put16(&ext, nl + 5);
        put16(&ext, nl + 3);
        uint8_t type = 0;
        put(&ext, &type, 1);
        put16(&ext, nl);
        put(&ext, name, nl);
    }
    put16(&body, ext.n);
    put(&body, ext.b, ext.n);
    uint8_t hs[4] = { 1, 0, (uint8_t)(body.n >> 8), (uint8_t)body.n };
    uint8_t rh[5] = { 22, 3, 1, (uint8_t)((body.n + 4) >> 8), (uint8_t)(body.n + 4) };
    put(&rec, rh, 5);
    put(&rec, hs, 4);
    put(&rec, body.b, body.n);
    return rec;
}

/* Every prefix must say -EAGAIN; the whole answers rc with out. */
static int parse_all_ways(const struct hello *h, char *out)
{
    for (size_t i = 0; i < h->n; i++) {
        uint8_t *c = malloc(i ? i : 1);
        assert_non_null(c);
        memcpy(c, h->b, i);
        char name[SNI_MAX_NAME + 1];
        int rc = sni_parse(c, i, name, sizeof(name));
        free(c);
        assert_int_equal(rc, -EAGAIN);
    }
    uint8_t *w = malloc(h->n);
    assert_non_null(w);
    memcpy(w, h->b, h->n);
    int rc = sni_parse(w, h->n, out, SNI_MAX_NAME + 1);
    free(w);
    return rc;
}

static void test_name_found(void **state)
{
    (void)state;
    char name[SNI_MAX_NAME + 1];
    struct hello h = make_hello("Api.Example.COM.");
    assert_int_equal(parse_all_ways(&h, name), 1);
    assert_string_equal(name, "api.example.com");
}

static void test_no_name(void **state)
{
    (void)state;
    char name[SNI_MAX_NAME + 1];
    struct hello h = make_hello(NULL);
    assert_int_equal(parse_all_ways(&h, name), 0);
    h = make_hello("bad name!");
    assert_int_equal(parse_all_ways(&h, name), 0);
}

static void test_refused(void **state)
{
    (void)state;
    char name[SNI_MAX_NAME + 1];
    assert_int_equal(sni_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, sizeof(name)),
                     -EINVAL);
    struct hello h = make_hello("a.example.com");
    h.b[5] = 2; /* a ServerHello */
    assert_int_equal(sni_parse(h.b, h.n, name, sizeof(name)), -EINVAL);
    h = make_hello("a.example.com");
    h.b[9 + 34] = 33; /* session id longer than 32 */
    assert_int_equal(sni_parse(h.b, h.n, name, sizeof(name)), -EINVAL);
    h = make_hello("a.example.com");
    h.b[h.n - 14] = 0xFF; /* the name's length runs past its extension */
    assert_int_equal(sni_parse(h.b, h.n, name, sizeof(name)), 0);
    /* a handshake longer than its record: continues elsewhere, not looked at */
    h = make_hello("a.example.com");
    h.b[7] = (uint8_t)(h.b[7] + 1);
    assert_int_equal(sni_parse(h.b, h.n, name, sizeof(name)), 0);
}

static void test_match(void **state)
{
    (void)state;
    assert_true(sni_match("a.example.com", "a.example.com"));
    assert_true(sni_match("a.example.com", "A.EXAMPLE.com"));
    assert_false(sni_match("a.example.com", "b.example.com"));
    assert_true(sni_match("*.example.com", "x.example.com"));
    assert_true(sni_match("*.example.com", "x.y.example.com"));
    assert_false(sni_match("*.example.com", "example.com"));
    assert_false(sni_match("*.example.com", "xexample.com"));
    assert_false(sni_match("*.example.com", ".example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_found),
        cmocka_unit_test(test_no_name),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

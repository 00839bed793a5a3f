/* Unit tests for DNS messages (src/core/dns.c): names weir resolves, the
 * query it sends, and what it takes from answers — and refuses: another
 * id, another question, truncation, compression loops. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/dns.h"

static size_t put_name(uint8_t *p, const char *name)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (uint8_t)l;
        memcpy(p + o, name, l);
        o += l;
        name += l + (dot ? 1 : 0);
    }
    p[o++] = 0;
    return o;
}

/* An answer with n A records 10.0.0.1.. pointing at the question name. */
static size_t answer(uint8_t *m, uint16_t id, const char *qname, uint16_t type, int n, int rcode)
{
    uint8_t h[12] = { (uint8_t)(id >> 8), (uint8_t)id, 0x81, (uint8_t)(0x80 | rcode), 0, 1, 0,
                      (uint8_t)n, 0, 0, 0, 0 };
    memcpy(m, h, 12);
    size_t o = 12 + put_name(m + 12, qname);
    m[o++] = (uint8_t)(type >> 8);
    m[o++] = (uint8_t)type;
    m[o++] = 0;
    m[o++] = 1;
    for (int i = 0; i < n; i++) {
        uint8_t rr[16] = { 0xc0, 12, (uint8_t)(type >> 8), (uint8_t)type, 0, 1, 0, 0, 0, 60, 0, 4,
                           10, 0, 0, (uint8_t)(i + 1) };
        memcpy(m + o, rr, sizeof(rr));
        o += sizeof(rr);
    }
    return o;
}

static void test_names(void **state)
{
    (void)state;
    assert_true(dns_name_ok("svc.test", 8));
    assert_true(dns_name_ok("a-b.c1", 6));
    assert_false(dns_name_ok("127.0.0.1", 9));   /* no letter: an address */
    assert_false(dns_name_ok("-a.b", 4));
    assert_false(dns_name_ok("a-.b", 4));
    assert_false(dns_name_ok("a..b", 4));
    assert_false(dns_name_ok("a_b", 3));
    assert_false(dns_name_ok("", 0));
    char long_label[70];
    memset(long_label, 'a', 64);
    assert_false(dns_name_ok(long_label, 64));
    assert_true(dns_name_ok(long_label, 63));
}

static void test_query(void **state)
{
    (void)state;
    uint8_t q[512];
    int n = dns_build_query(q, sizeof(q), 0xbeef, "svc.test", DNS_TYPE_AAAA);
    static const uint8_t want[] = { 0xbe, 0xef, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 's', 'v', 'c',
                                    4, 't', 'e', 's', 't', 0, 0, 28, 0, 1 };
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(q, want, sizeof(want));
    assert_int_equal(dns_build_query(q, 20, 1, "svc.test", DNS_TYPE_A), -1); /* no room */
    assert_int_equal(dns_build_query(q, sizeof(q), 1, "bad_name", DNS_TYPE_A), -1);
}

static void test_answer_addresses(void **state)
{
    (void)state;
    uint8_t m[512];
    struct dns_addr out[4];
    size_t n = 0;
    size_t len = answer(m, 7, "svc.test", DNS_TYPE_A, 3, 0);
    assert_int_equal(dns_parse_answer(m, len, 7, "SVC.Test", DNS_TYPE_A, out, &n, 2), 0);
    assert_int_equal(n, 2); /* capped at max */
    char text[32];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&out[1].addr)->sin_addr, text, sizeof(text));
    assert_string_equal(text, "10.0.0.2");
    assert_int_equal(out[0].ttl, 60);
}

static void test_refused_answers(void **state)
{
    (void)state;
    uint8_t m[512];
    struct dns_addr out[4];
    size_t n = 0;
    size_t len = answer(m, 7, "svc.test", DNS_TYPE_A, 1, 0);
    assert_int_equal(dns_parse_answer(m, len, 8, "svc.test", DNS_TYPE_A, out, &n, 4), -1);
    assert_int_equal(dns_parse_answer(m, len, 7, "other.test", DNS_TYPE_A, out, &n, 4), -1);
    assert_int_equal(dns_parse_answer(m, len, 7, "svc.test", DNS_TYPE_AAAA, out, &n, 4), -1);
    assert_int_equal(dns_parse_answer(m, len - 1, 7, "svc.test", DNS_TYPE_A, out, &n, 4), -1);
    assert_int_equal(n, 0);
    m[2] |= 0x02; /* TC */
    assert_int_equal(dns_parse_answer(m, len, 7, "svc.test", DNS_TYPE_A, out, &n, 4), -1);
    /* a question name that points at itself */
    uint8_t loop[] = { 0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
    assert_int_equal(dns_parse_answer(loop, sizeof(loop), 7, "svc.test", DNS_TYPE_A, out, &n, 4), -1);
    /* NXDOMAIN is an answer: the rcode, no addresses */
    len = answer(m, 7, "svc.test", DNS_TYPE_A, 0, 3);
    assert_int_equal(dns_parse_answer(m, len, 7, "svc.test", DNS_TYPE_A, out, &n, 4), 3);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_answer_addresses),
        cmocka_unit_test(test_refused_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

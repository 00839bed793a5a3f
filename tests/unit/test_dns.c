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

/* Appends a record with owner pointer `owner`, type, and rdata. */
static size_t put_rr(uint8_t *m, size_t o, uint16_t owner, uint16_t type, const uint8_t *rd,
                     size_t rdlen)
{
    uint8_t h[12] = { (uint8_t)(0xc0 | owner >> 8), (uint8_t)owner, (uint8_t)(type >> 8),
                      (uint8_t)type, 0, 1, 0, 0, 0, 30, (uint8_t)(rdlen >> 8), (uint8_t)rdlen };
    memcpy(m + o, h, sizeof(h));
    memcpy(m + o + sizeof(h), rd, rdlen);
    return o + sizeof(h) + rdlen;
}

/* An SRV answer for _http._tcp.svc.test: a.svc.test:8080 (priority 10,
 * weight 5, written out) and b.svc.test:9090 (priority 20, weight 0, its
 * name compressed onto the question's "svc.test"), with a.svc.test's A
 * record in the additional section. *a_off: where a.svc.test is written. */
static size_t srv_answer(uint8_t *m, size_t *a_off)
{
    uint8_t h[12] = { 0, 9, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1 };
    memcpy(m, h, 12);
    size_t o = 12 + put_name(m + 12, "_http._tcp.svc.test");
    static const uint8_t qt[] = { 0, 33, 0, 1 };
    memcpy(m + o, qt, 4);
    o += 4;
    uint8_t rd[64] = { 0, 10, 0, 5, 0x1f, 0x90 };
    size_t rl = 6 + put_name(rd + 6, "a.svc.test");
    *a_off = o + 12 + 6;
    o = put_rr(m, o, 12, DNS_TYPE_SRV, rd, rl);
    uint8_t rd2[] = { 0, 20, 0, 0, 0x23, 0x82, 1, 'b', 0xc0, 23 }; /* 23: "svc.test" */
    o = put_rr(m, o, 12, DNS_TYPE_SRV, rd2, sizeof(rd2));
    static const uint8_t a[] = { 10, 0, 0, 9 };
    return put_rr(m, o, (uint16_t)*a_off, DNS_TYPE_A, a, 4);
}

static void test_srv(void **state)
{
    (void)state;
    assert_true(dns_query_name_ok("_http._tcp.svc.test", 19));
    assert_false(dns_name_ok("_http._tcp.svc.test", 19));
    assert_false(dns_query_name_ok("a_b.test", 8)); /* '_' only starts a label */
    uint8_t m[512];
    size_t a_off;
    size_t len = srv_answer(m, &a_off);
    struct dns_srv srv[4];
    size_t n = 0;
    assert_int_equal(dns_parse_srv(m, len, 9, "_http._tcp.svc.test", srv, &n, 4), 0);
    assert_int_equal(n, 2);
    assert_int_equal(srv[0].priority, 10);
    assert_int_equal(srv[0].weight, 5);
    assert_int_equal(srv[0].port, 8080);
    assert_string_equal(srv[0].target, "a.svc.test");
    assert_int_equal(srv[1].priority, 20);
    assert_int_equal(srv[1].port, 9090);
    assert_string_equal(srv[1].target, "b.svc.test");
    struct dns_addr out[4];
    n = 0;
    assert_int_equal(dns_parse_owned(m, len, 9, "_http._tcp.svc.test", DNS_TYPE_SRV, "A.svc.test",
                                     DNS_TYPE_A, out, &n, 4), 0);
    assert_int_equal(n, 1);
    char text[32];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&out[0].addr)->sin_addr, text, sizeof(text));
    assert_string_equal(text, "10.0.0.9");
    n = 0;
    assert_int_equal(dns_parse_owned(m, len, 9, "_http._tcp.svc.test", DNS_TYPE_SRV, "b.svc.test",
                                     DNS_TYPE_A, out, &n, 4), 0);
    assert_int_equal(n, 0);
    /* capped at max */
    n = 0;
    assert_int_equal(dns_parse_srv(m, len, 9, "_http._tcp.svc.test", srv, &n, 1), 0);
    assert_int_equal(n, 1);
    /* a target running past its record's data is refused */
    n = 0;
    m[a_off - 6 - 1] = 8; /* rdlength of the first record: 8 < 6 + 12 */
    assert_int_equal(dns_parse_srv(m, len, 9, "_http._tcp.svc.test", srv, &n, 4), -1);
    /* another question */
    len = srv_answer(m, &a_off);
    assert_int_equal(dns_parse_srv(m, len, 9, "_ftp._tcp.svc.test", srv, &n, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_answer_addresses),
        cmocka_unit_test(test_refused_answers),
        cmocka_unit_test(test_srv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

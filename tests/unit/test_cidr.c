/* Unit tests for core/cidr: parsing networks and addresses, containment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "core/cidr.h"

static struct cidr net(const char *s)
{
    struct cidr c;
    assert_int_equal(cidr_parse(s, &c), 0);
    return c;
}

static int in(const char *network, const char *addr)
{
    struct cidr n = net(network), a;
    assert_int_equal(cidr_parse_addr(addr, &a), 0);
    return cidr_contains(&n, &a);
}

static void test_parse_and_format(void **state)
{
    char buf[64];
    struct cidr c = net("10.0.0.0/8");
    assert_int_equal(c.family, 4);
    assert_int_equal(c.prefix, 8);
    cidr_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.0/8");
    c = net("127.0.0.1");
    assert_int_equal(c.prefix, 32);
    c = net("2001:db8::/32");
    assert_int_equal(c.family, 6);
    assert_int_equal(c.prefix, 32);
    cidr_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, "2001:db8::/32");
    c = net("::1");
    assert_int_equal(c.prefix, 128);
    c = net("0.0.0.0/0");
    assert_int_equal(c.prefix, 0);
    c = net("::/0");
    assert_int_equal(c.family, 6);
    /* an IPv4-mapped network is an IPv4 one */
    c = net("::ffff:10.0.0.0/104");
    assert_int_equal(c.family, 4);
    assert_int_equal(c.prefix, 8);
    cidr_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.0/8");
}

static void test_parse_errors(void **state)
{
    struct cidr c;
    memset(&c, 0x5a, sizeof(c));
    const char *bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
                          "10.0.0.0/08", "10.0.0.0/8/8", "10.0.0.0 /8", "10.0.0/8", "010.0.0.0/8",
                          "10.0.0.0/8x", "2001:db8::/129", "2001:db8::/1234", "::ffff:10.0.0.0/95",
                          "example.com", "1.2.3.4.5", "fe80::1%eth0", "[::1]" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = cidr_parse(bad[i], &c);
        if (rc != -EINVAL)
            fail_msg("'%s': expected -EINVAL, got %d", bad[i], rc);
    }
    assert_int_equal(cidr_parse("10.0.0.1/8", &c), -EDOM);
    assert_int_equal(cidr_parse("2001:db8::1/32", &c), -EDOM);
    assert_int_equal(cidr_parse("192.168.1.128/24", &c), -EDOM);
    assert_int_equal(c.family, 0x5a); /* untouched on failure */
}

static void test_contains_v4(void **state)
{
    assert_true(in("10.0.0.0/8", "10.255.1.2"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_true(in("192.168.1.128/25", "192.168.1.200"));
    assert_false(in("192.168.1.128/25", "192.168.1.127"));
    assert_true(in("127.0.0.1", "127.0.0.1"));
    assert_false(in("127.0.0.1", "127.0.0.2"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_false(in("0.0.0.0/0", "::1")); /* families differ */
}

static void test_contains_v6_and_mapped(void **state)
{
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("::1", "::1"));
    assert_true(in("::/0", "fe80::1"));
    assert_false(in("::/0", "10.0.0.1"));
    assert_true(in("fe80::/10", "febf::1"));
    assert_false(in("fe80::/10", "fec0::1"));
    /* a dual-stack listener's IPv4 peers are seen as ::ffff:a.b.c.d */
    assert_true(in("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(in("::/0", "::ffff:10.1.2.3"));
}

static void test_parse_addr(void **state)
{
    struct cidr a;
    assert_int_equal(cidr_parse_addr("10.0.0.1", &a), 0);
    assert_int_equal(cidr_parse_addr("::1", &a), 0);
    assert_int_equal(cidr_parse_addr("10.0.0.1/32", &a), -EINVAL);
    assert_int_equal(cidr_parse_addr("", &a), -EINVAL);
    assert_int_equal(cidr_parse_addr("localhost", &a), -EINVAL);
}

static void test_list_contains(void **state)
{
    (void)state;
    struct cidr nets[2] = { net("10.0.0.0/8"), net("2001:db8::/32") }, a;
    assert_int_equal(cidr_parse_addr("10.1.2.3", &a), 0);
    assert_int_equal(cidr_list_contains(nets, 2, &a), 1);
    assert_int_equal(cidr_parse_addr("2001:db8::7", &a), 0);
    assert_int_equal(cidr_list_contains(nets, 2, &a), 1);
    assert_int_equal(cidr_list_contains(nets, 1, &a), 0);
    assert_int_equal(cidr_parse_addr("11.0.0.1", &a), 0);
    assert_int_equal(cidr_list_contains(nets, 2, &a), 0);
    assert_int_equal(cidr_list_contains(nets, 0, &a), 0);
}

static void test_from_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    struct cidr c, want;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    in4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.9", &in4->sin_addr);
    assert_int_equal(cidr_from_sockaddr(&ss, &c), 0);
    assert_int_equal(cidr_parse("192.0.2.9/32", &want), 0);
    assert_memory_equal(&c, &want, sizeof(c));
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6->sin6_addr); /* mapped: IPv4 */
    assert_int_equal(cidr_from_sockaddr(&ss, &c), 0);
    assert_memory_equal(&c, &want, sizeof(c));
    inet_pton(AF_INET6, "2001:db8::1", &in6->sin6_addr);
    assert_int_equal(cidr_from_sockaddr(&ss, &c), 0);
    assert_int_equal(cidr_parse("2001:db8::1/128", &want), 0);
    assert_memory_equal(&c, &want, sizeof(c));
    ss.ss_family = AF_UNIX;
    assert_int_equal(cidr_from_sockaddr(&ss, &c), -EAFNOSUPPORT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_contains_v4),
        cmocka_unit_test(test_contains_v6_and_mapped),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_list_contains),
        cmocka_unit_test(test_from_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

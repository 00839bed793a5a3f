/* Unit tests for core/units: durations, sizes, numbers, addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/units.h"

static uint64_t duration(const char *s)
{
    uint64_t v = 12345;
    assert_int_equal(units_parse_duration_ms(s, &v), 0);
    return v;
}

static int duration_rc(const char *s)
{
    uint64_t v = 12345;
    int rc = units_parse_duration_ms(s, &v);
    assert_int_equal(v, 12345); /* untouched on failure */
    return rc;
}

static void test_duration_suffixes(void **state)
{
    assert_int_equal(duration("250ms"), 250);
    assert_int_equal(duration("30s"), 30000);
    assert_int_equal(duration("5m"), 300000);
    assert_int_equal(duration("1h"), 3600000);
    assert_int_equal(duration("0"), 0);
    assert_int_equal(duration("00"), 0);
    assert_int_equal(duration("0s"), 0);
    assert_int_equal(duration("0ms"), 0);
    assert_int_equal(duration("007s"), 7000);
    assert_int_equal(duration("18446744073709551615ms"), UINT64_MAX);
}

static void test_duration_garbage(void **state)
{
    const char *bad[] = { "", "s", "ms", "10", "1", "abc", "10x", "10 s", " 10s", "10s ",
                          "-1s", "+1s", "1.5s", "10S", "10MS", "1h30m", "10sec", "1d",
                          "0x10s", "10mss" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(duration_rc(bad[i]), -EINVAL);
}

static void test_duration_overflow(void **state)
{
    assert_int_equal(duration_rc("18446744073709551616ms"), -ERANGE);
    assert_int_equal(duration_rc("99999999999999999999999s"), -ERANGE);
    assert_int_equal(duration_rc("18446744073709552s"), -ERANGE); /* * 1000 overflows */
    assert_int_equal(duration_rc("5124095576031h"), -ERANGE);
    assert_int_equal(duration("5124095576030h"), 5124095576030ULL * 3600000ULL);
}

static uint64_t size(const char *s)
{
    uint64_t v = 7;
    assert_int_equal(units_parse_size(s, &v), 0);
    return v;
}

static void test_size_suffixes(void **state)
{
    assert_int_equal(size("512"), 512);
    assert_int_equal(size("0"), 0);
    assert_int_equal(size("16k"), 16384);
    assert_int_equal(size("16K"), 16384);
    assert_int_equal(size("8m"), 8u << 20);
    assert_int_equal(size("8M"), 8u << 20);
    assert_int_equal(size("1g"), 1u << 30);
    assert_int_equal(size("1G"), 1u << 30);
    assert_int_equal(size("17179869183g"), 17179869183ULL << 30);
}

static void test_size_bad(void **state)
{
    const char *bad[] = { "", "k", "16kb", "16 k", "1.5m", "-1", "1t", "16kk", "0x10", " 1" };
    uint64_t v = 7;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(units_parse_size(bad[i], &v), -EINVAL);
        assert_int_equal(v, 7);
    }
    assert_int_equal(units_parse_size("17179869184g", &v), -ERANGE);
    assert_int_equal(units_parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(units_parse_size("18014398509481984k", &v), -ERANGE);
    assert_int_equal(v, 7);
}

static void test_uint(void **state)
{
    uint64_t v = 0;
    assert_int_equal(units_parse_uint("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(units_parse_uint("256", 256, &v), 0);
    assert_int_equal(v, 256);
    assert_int_equal(units_parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 3;
    assert_int_equal(units_parse_uint("257", 256, &v), -ERANGE);
    assert_int_equal(units_parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE);
    assert_int_equal(units_parse_uint("", 10, &v), -EINVAL);
    assert_int_equal(units_parse_uint("1k", 10000, &v), -EINVAL);
    assert_int_equal(units_parse_uint("-1", 10, &v), -EINVAL);
    assert_int_equal(units_parse_uint("1 ", 10, &v), -EINVAL);
    assert_int_equal(units_parse_uint("auto", 10, &v), -EINVAL);
    assert_int_equal(v, 3);
}

/* Parses `s` and formats it back; returns the formatted text. */
static const char *addr_roundtrip(const char *s, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(units_parse_addr(s, &ss, &len), 0);
    units_format_addr((struct sockaddr *)&ss, buf, size);
    return buf;
}

static void test_addr_v4(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char buf[64];

    assert_int_equal(units_parse_addr("127.0.0.1:9001", &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 9001);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_string_equal(addr_roundtrip("10.1.2.3:1", buf, sizeof(buf)), "10.1.2.3:1");
    assert_string_equal(addr_roundtrip("0.0.0.0:65535", buf, sizeof(buf)), "0.0.0.0:65535");
    assert_string_equal(addr_roundtrip("*:8080", buf, sizeof(buf)), "0.0.0.0:8080");
    assert_string_equal(addr_roundtrip("localhost:80", buf, sizeof(buf)), "127.0.0.1:80");
    assert_string_equal(addr_roundtrip("LocalHost:80", buf, sizeof(buf)), "127.0.0.1:80");
    assert_string_equal(addr_roundtrip("1.2.3.4:0080", buf, sizeof(buf)), "1.2.3.4:80");
}

static void test_addr_v6(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char buf[64];

    assert_int_equal(units_parse_addr("[::1]:80", &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 80);
    assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback));
    assert_string_equal(addr_roundtrip("[::]:443", buf, sizeof(buf)), "[::]:443");
    assert_string_equal(addr_roundtrip("[2001:DB8::7]:9", buf, sizeof(buf)), "[2001:db8::7]:9");
    assert_string_equal(addr_roundtrip("[::ffff:1.2.3.4]:5", buf, sizeof(buf)),
                        "[::ffff:1.2.3.4]:5");
}

static void test_addr_bad(void **state)
{
    const char *bad[] = { "", ":80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:80x",
                          "127.0.0.1 :80", "example.com:80", "::1:80", "[::1]", "[::1]80",
                          "[::1:80", "[]:80", "[1.2.3.4]:80", "[*]:80", "1.2.3:80",
                          "1.2.3.256:80", "01.2.3.4:80", "127.0.0.1:-1", "127.0.0.1:+80",
                          "[fe80::1%eth0]:80", "*:", "localhost", "[::1]:80:80",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1" };
    struct sockaddr_storage ss;
    socklen_t len = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (units_parse_addr(bad[i], &ss, &len) != -EINVAL)
            fail_msg("accepted or misjudged '%s'", bad[i]);
    }
}

static void test_addr_bad_port(void **state)
{
    const char *bad[] = { "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999", "[::1]:0",
                          "*:70000", "localhost:99999999999999999999999" };
    struct sockaddr_storage ss;
    socklen_t len = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (units_parse_addr(bad[i], &ss, &len) != -ERANGE)
            fail_msg("port of '%s' not -ERANGE", bad[i]);
    }
}

static void test_format_addr_small_buffer(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char buf[8];

    assert_int_equal(units_parse_addr("192.168.100.200:65535", &ss, &len), 0);
    memset(buf, 'x', sizeof(buf));
    units_format_addr((struct sockaddr *)&ss, buf, sizeof(buf));
    assert_string_equal(buf, "192.168");
    units_format_addr((struct sockaddr *)&ss, buf, 0); /* writes nothing */
    assert_string_equal(buf, "192.168");
    ss.ss_family = AF_UNIX;
    units_format_addr((struct sockaddr *)&ss, buf, sizeof(buf));
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

static void test_rate(void **state)
{
    uint64_t n = 7, ms = 7;
    assert_int_equal(units_parse_rate("100/s", 1000000, &n, &ms), 0);
    assert_int_equal(n, 100);
    assert_int_equal(ms, 1000);
    assert_int_equal(units_parse_rate("6000/m", 1000000, &n, &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(units_parse_rate("1000/h", 1000000, &n, &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(units_parse_rate("50000/d", 1000000, &n, &ms), 0);
    assert_int_equal(n, 50000);
    assert_int_equal(ms, 86400000);
    n = ms = 7;
    assert_int_equal(units_parse_rate("0/s", 1000, &n, &ms), -ERANGE);
    assert_int_equal(units_parse_rate("1001/s", 1000, &n, &ms), -ERANGE);
    assert_int_equal(units_parse_rate("99999999999999999999999/s", 1000, &n, &ms), -ERANGE);
    assert_int_equal(units_parse_rate("100", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate("100/", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate("100/w", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate("100/ss", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate("/s", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate(" 1/s", 1000, &n, &ms), -EINVAL);
    assert_int_equal(units_parse_rate("-1/s", 1000, &n, &ms), -EINVAL);
    assert_int_equal(n, 7); /* untouched on failure */
    assert_int_equal(ms, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_suffixes),
        cmocka_unit_test(test_duration_garbage),
        cmocka_unit_test(test_duration_overflow),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_size_bad),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_addr_v4),
        cmocka_unit_test(test_addr_v6),
        cmocka_unit_test(test_addr_bad),
        cmocka_unit_test(test_addr_bad_port),
        cmocka_unit_test(test_format_addr_small_buffer),
        cmocka_unit_test(test_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

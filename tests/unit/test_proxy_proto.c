/* Unit tests for l4/proxy_proto: v1 and v2 headers parsed whole and byte by
 * byte (each prefix must say "need more", never a wrong answer), refused
 * when malformed, and built headers parsing back to their addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "l4/proxy_proto.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

/* Parses p whole (followed by data) and every prefix of it from an exact-
 * size heap copy; returns the whole parse's result. */
static int parse_all_ways(const uint8_t *p, size_t len, struct proxy_proto_hdr *out)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t *c = malloc(i ? i : 1);
        assert_non_null(c);
        memcpy(c, p, i);
        struct proxy_proto_hdr h;
        int rc = proxy_proto_parse(c, i, &h);
        free(c);
        if (rc != 0)
            return rc; /* a prefix already refused it */
    }
    uint8_t *w = malloc(len + 4);
    assert_non_null(w);
    memcpy(w, p, len);
    memcpy(w + len, "DATA", 4);
    int rc = proxy_proto_parse(w, len + 4, out);
    free(w);
    return rc;
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *s = "PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\n";
    struct proxy_proto_hdr h;
    assert_int_equal(parse_all_ways((const uint8_t *)s, strlen(s), &h), (int)strlen(s));
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 0);
    struct sockaddr_storage want = v4("203.0.113.7", 5555);
    assert_memory_equal(&h.src, &want, sizeof(struct sockaddr_in));
    want = v4("198.51.100.1", 443);
    assert_memory_equal(&h.dst, &want, sizeof(struct sockaddr_in));
}

static void test_v1_tcp6_and_unknown(void **state)
{
    (void)state;
    const char *s = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
    struct proxy_proto_hdr h;
    assert_int_equal(parse_all_ways((const uint8_t *)s, strlen(s), &h), (int)strlen(s));
    struct sockaddr_storage want = v6("2001:db8::1", 1);
    assert_memory_equal(&h.src, &want, sizeof(struct sockaddr_in6));
    s = "PROXY UNKNOWN ffff::1 whatever\r\n";
    assert_int_equal(parse_all_ways((const uint8_t *)s, strlen(s), &h), (int)strlen(s));
    assert_int_equal(h.local, 1);
}

static void test_v1_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\n",     /* LF without CR */
        "PROXY TCP4 203.0.113.7  198.51.100.1 5555 443\r\n",  /* two spaces */
        "PROXY TCP4 203.0.113.7 198.51.100.1 5555 65536\r\n", /* port out of range */
        "PROXY TCP4 203.0.113.7 198.51.100.1 05555 443\r\n",  /* leading zero */
        "PROXY TCP4 2001:db8::1 198.51.100.1 5555 443\r\n",   /* family mismatch */
        "PROXY TCP5 203.0.113.7 198.51.100.1 5555 443\r\n",
        "PROXY TCP4 203.0.113.7 198.51.100.1 5555\r\n",
        "PROXY TCP4 203.0.113.7 198.51.100.1 5555 443 x\r\n",
        "PROXZ TCP4",
        "GET / HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy_proto_hdr h;
        assert_int_equal(parse_all_ways((const uint8_t *)bad[i], strlen(bad[i]), &h), -EINVAL);
    }
    /* no CRLF within 107 bytes */
    char longline[200];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY UNKNOWN ", 14);
    struct proxy_proto_hdr h;
    assert_int_equal(proxy_proto_parse((const uint8_t *)longline, sizeof(longline), &h), -EINVAL);
    assert_int_equal(proxy_proto_parse((const uint8_t *)longline, 100, &h), 0);
}

static void test_v2(void **state)
{
    (void)state;
    static const uint8_t hdr[] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                                   0x54, 0x0A, 0x21, 0x11, 0x00, 0x0F,
                                   203, 0, 113, 7, 198, 51, 100, 1, 0x15, 0xB3, 0x01, 0xBB,
                                   0x04, 0x00, 0x00 }; /* and a 3-byte TLV (NOOP) */
    struct proxy_proto_hdr h;
    assert_int_equal(parse_all_ways(hdr, sizeof(hdr), &h), (int)sizeof(hdr));
    assert_int_equal(h.version, 2);
    assert_int_equal(h.local, 0);
    struct sockaddr_storage want = v4("203.0.113.7", 5555);
    assert_memory_equal(&h.src, &want, sizeof(struct sockaddr_in));
    /* LOCAL: no addresses */
    uint8_t local[16];
    memcpy(local, hdr, 16);
    local[12] = 0x20;
    local[13] = 0;
    local[15] = 0;
    assert_int_equal(parse_all_ways(local, 16, &h), 16);
    assert_int_equal(h.local, 1);
    /* refused: version 1 in the v2 byte, command 2, too short for TCP4, too long */
    uint8_t bad[16];
    memcpy(bad, hdr, 16);
    bad[12] = 0x11;
    assert_int_equal(proxy_proto_parse(bad, 16, &h), -EINVAL);
    bad[12] = 0x22;
    assert_int_equal(proxy_proto_parse(bad, 16, &h), -EINVAL);
    memcpy(bad, hdr, 16);
    bad[15] = 4;
    uint8_t shortv4[20];
    memcpy(shortv4, bad, 16);
    memset(shortv4 + 16, 0, 4);
    assert_int_equal(proxy_proto_parse(shortv4, 20, &h), -EINVAL);
    bad[14] = 0xFF;
    assert_int_equal(proxy_proto_parse(bad, 16, &h), -EINVAL);
}

static void test_build_round_trip(void **state)
{
    (void)state;
    struct sockaddr_storage src = v4("192.0.2.1", 40000), dst = v4("192.0.2.2", 8443);
    struct sockaddr_storage s6 = v6("2001:db8::5", 1), d6 = v6("::1", 2);
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    struct proxy_proto_hdr h;
    for (int version = 1; version <= 2; version++) {
        int n = proxy_proto_build(version, (struct sockaddr *)&src, (struct sockaddr *)&dst, out,
                                  sizeof(out));
        assert_true(n > 0);
        assert_int_equal(parse_all_ways(out, (size_t)n, &h), n);
        assert_int_equal(h.version, version);
        assert_memory_equal(&h.src, &src, sizeof(struct sockaddr_in));
        assert_memory_equal(&h.dst, &dst, sizeof(struct sockaddr_in));
        n = proxy_proto_build(version, (struct sockaddr *)&s6, (struct sockaddr *)&d6, out,
                              sizeof(out));
        assert_int_equal(parse_all_ways(out, (size_t)n, &h), n);
        assert_memory_equal(&h.src, &s6, sizeof(struct sockaddr_in6));
        /* mixed families: no addresses */
        n = proxy_proto_build(version, (struct sockaddr *)&src, (struct sockaddr *)&d6, out,
                              sizeof(out));
        assert_int_equal(parse_all_ways(out, (size_t)n, &h), n);
        assert_int_equal(h.local, 1);
    }
    const char *v1 = "PROXY TCP4 192.0.2.1 192.0.2.2 40000 8443\r\n";
    assert_int_equal(proxy_proto_build(1, (struct sockaddr *)&src, (struct sockaddr *)&dst, out,
                                       sizeof(out)), (int)strlen(v1));
    assert_memory_equal(out, v1, strlen(v1));
    assert_int_equal(proxy_proto_build(1, (struct sockaddr *)&src, (struct sockaddr *)&dst, out, 10),
                     -ENOSPC);
    assert_int_equal(proxy_proto_build(3, (struct sockaddr *)&src, (struct sockaddr *)&dst, out,
                                       sizeof(out)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_refused),
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_build_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

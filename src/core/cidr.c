/* cidr: see cidr.h. Text goes through inet_pton, which already refuses
 * what is not an address (leading zeros in IPv4 are refused there too, so
 * "010.0.0.1" cannot be read as octal by one tool and decimal by another).
 * A prefix is decimal without sign or leading zeros. */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const uint8_t cidr_v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int cidr_parse_addr(const char *s, struct cidr *out)
{
    struct cidr c = { 0 };
    if (inet_pton(AF_INET, s, c.addr) == 1) {
        c.family = 4;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, s, c.addr) == 1) {
        c.family = 6;
        c.prefix = 128;
        if (memcmp(c.addr, cidr_v4_mapped, sizeof(cidr_v4_mapped)) == 0) {
            memmove(c.addr, c.addr + 12, 4);
            memset(c.addr + 4, 0, 12);
            c.family = 4;
            c.prefix = 32;
        }
    } else {
        return -EINVAL;
    }
    *out = c;
    return 0;
}

/* Reads a prefix length: 1 to 3 decimal digits, no leading zero. */
static int cidr_parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cidr_parse(const char *s, struct cidr *out)
{
    char text[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(text))
        return -EINVAL;
    memcpy(text, s, alen);
    text[alen] = 0;
    struct cidr c;
    if (cidr_parse_addr(text, &c) != 0)
        return -EINVAL;
    /* a mapped address with a prefix counts its bits as IPv6 */
    int mapped = c.family == 4 && strchr(text, ':') != NULL;
    if (slash) {
        unsigned p;
        if (cidr_parse_prefix(slash + 1, c.family == 4 && !mapped ? 32 : 128, &p) != 0)
            return -EINVAL;
        if (mapped) {
            if (p < 96)
                return -EINVAL; /* would reach beyond the mapped block */
            p -= 96;
        }
        c.prefix = (uint8_t)p;
    }
    unsigned bytes = c.family == 4 ? 4 : 16;
    for (unsigned bit = c.prefix; bit < bytes * 8; bit++)
        if (c.addr[bit / 8] & (0x80u >> (bit % 8)))
            return -EDOM;
    *out = c;
    return 0;
}

int cidr_contains(const struct cidr *net, const struct cidr *addr)
{
    if (net->family != addr->family)
        return 0;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr->addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (addr->addr[full] & mask) == net->addr[full];
}

int cidr_list_contains(const struct cidr *nets, size_t n, const struct cidr *addr)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_contains(&nets[i], addr))
            return 1;
    return 0;
}

int cidr_from_sockaddr(const struct sockaddr_storage *sa, struct cidr *out)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(out, 0, sizeof(*out));
    if (sa->ss_family == AF_INET) {
        out->family = 4;
        out->prefix = 32;
        memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->ss_family != AF_INET6)
        return -EAFNOSUPPORT;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, mapped, 12) == 0) {
        out->family = 4;
        out->prefix = 32;
        memcpy(out->addr, a + 12, 4);
    } else {
        out->family = 6;
        out->prefix = 128;
        memcpy(out->addr, a, 16);
    }
    return 0;
}

void cidr_format(const struct cidr *net, char *buf, unsigned size)
{
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(net->family == 4 ? AF_INET : AF_INET6, net->addr, text, sizeof(text)) == NULL)
        text[0] = 0;
    snprintf(buf, size, "%s/%u", text, net->prefix);
}

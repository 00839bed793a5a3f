/* ratelimit_key: request-head parts of a rate limit key (see ratelimit_key.h).
 *
 *   X-Forwarded-For: 203.0.113.9, 10.0.0.7      peer 10.0.0.2
 *                    ^ client    ^ trusted       ^ trusted
 *   walked right to left (the last field first): the first address that is
 *   not a trusted proxy is the client; one a client could have written
 *   itself (left of it) is never used.
 *
 *   Cookie: a=1; sid=abc; b=2   ->  cookie:sid is "abc"
 *
 * Both read only the slices of the parsed message, within their lengths. */
#include "http/steps/ratelimit_key.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/cidr.h"
#include "core/units.h"

/* Both parse with core/cidr.c; these keep this module's contract: a
 * prefix out of range is -ERANGE, and bits after the prefix are ignored. */
int rl_cidr_parse(const char *s, struct rl_cidr *out)
{
    char text[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    struct cidr c;
    if (n == 0 || n >= sizeof(text))
        return -EINVAL;
    memcpy(text, s, n);
    text[n] = 0;
    if (cidr_parse_addr(text, &c) < 0)
        return -EINVAL;
    int v6_text = memchr(text, ':', n) != NULL;
    uint64_t bits = c.prefix;
    if (slash) {
        if (units_parse_uint(slash + 1, v6_text ? 128 : 32, &bits) < 0)
            return -ERANGE;
        if (c.family == 4 && v6_text) /* an IPv4-mapped block counts IPv6 bits */
            bits = bits < 96 ? 0 : bits - 96;
    }
    c.prefix = (uint8_t)bits;
    for (unsigned bit = c.prefix; bit < (c.family == 4 ? 32u : 128u); bit++)
        c.addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    out->net = c;
    return 0;
}

int rl_cidr_match(const struct rl_cidr *blocks, size_t n_blocks, const char *s, size_t n)
{
    char text[INET6_ADDRSTRLEN];
    struct cidr ip;
    if (n == 0 || n >= sizeof(text))
        return 0;
    memcpy(text, s, n);
    text[n] = 0;
    if (cidr_parse_addr(text, &ip) < 0)
        return 0;
    for (size_t i = 0; i < n_blocks; i++)
        if (cidr_contains(&blocks[i].net, &ip))
            return 1;
    return 0;
}

static int rl_is_space(char c)
{
    return c == ' ' || c == '\t';
}

struct http_slice rl_key_client_ip(const struct http_msg *m, struct http_slice peer,
                                   const struct rl_cidr *trusted, size_t n_trusted)
{
    struct http_slice ip = peer;
    if (n_trusted == 0 || !rl_cidr_match(trusted, n_trusted, peer.p, peer.len))
        return ip;
    for (size_t h = m->n_headers; h-- > 0;) {
        if (m->hop[h] == HTTP_HOP_REMOVED ||
            !http_slice_eq_nocase(m->headers[h].name, "x-forwarded-for"))
            continue;
        const char *s = m->headers[h].value.p, *e = s + m->headers[h].value.len;
        while (e > s) {
            const char *c = e;
            while (c > s && c[-1] != ',')
                c--;
            const char *a = c, *b = e;
            while (a < b && rl_is_space(*a))
                a++;
            while (b > a && rl_is_space(b[-1]))
                b--;
            e = c > s ? c - 1 : s;
            if (a == b)
                continue;
            ip = (struct http_slice){ a, (size_t)(b - a) };
            if (!rl_cidr_match(trusted, n_trusted, a, (size_t)(b - a)))
                return ip;
        }
    }
    return ip;
}

struct http_slice rl_key_cookie(const struct http_msg *m, const char *name, size_t len)
{
    for (size_t h = 0; h < m->n_headers; h++) {
        if (m->hop[h] == HTTP_HOP_REMOVED || !http_slice_eq_nocase(m->headers[h].name, "cookie"))
            continue;
        const char *s = m->headers[h].value.p, *e = s + m->headers[h].value.len;
        while (s < e) {
            const char *semi = memchr(s, ';', (size_t)(e - s));
            const char *end = semi ? semi : e;
            while (s < end && rl_is_space(*s))
                s++;
            if ((size_t)(end - s) > len && s[len] == '=' && memcmp(s, name, len) == 0)
                return (struct http_slice){ s + len + 1, (size_t)(end - s) - len - 1 };
            s = end + 1;
        }
    }
    return (struct http_slice){ NULL, 0 };
}

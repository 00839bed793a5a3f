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

#include "core/units.h"

/* Parses an IPv4 or IPv6 literal (n bytes) into 16 bytes (IPv4 mapped).
 * Returns 0 or -EINVAL. */
static int rl_ip_parse(const char *s, size_t n, unsigned char out[16])
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (inet_pton(AF_INET6, tmp, out) == 1)
        return 0;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    return inet_pton(AF_INET, tmp, out + 12) == 1 ? 0 : -EINVAL;
}

int rl_cidr_parse(const char *s, struct rl_cidr *out)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    int v4 = memchr(s, ':', n) == NULL;
    uint64_t bits = 128;
    if (rl_ip_parse(s, n, out->addr) < 0)
        return -EINVAL;
    if (slash && units_parse_uint(slash + 1, v4 ? 32 : 128, &bits) < 0)
        return -ERANGE;
    out->bits = (unsigned)(slash ? bits + (v4 ? 96 : 0) : 128);
    return 0;
}

static int rl_cidr_has(const struct rl_cidr *c, const unsigned char ip[16])
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, ip, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (ip[full] & mask);
}

int rl_cidr_match(const struct rl_cidr *blocks, size_t n_blocks, const char *s, size_t n)
{
    unsigned char ip[16];
    if (rl_ip_parse(s, n, ip) < 0)
        return 0;
    for (size_t i = 0; i < n_blocks; i++)
        if (rl_cidr_has(&blocks[i], ip))
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

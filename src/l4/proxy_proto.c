/* proxy_proto: see proxy_proto.h.
 *
 *   v1:  "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"   (<= 107 bytes)
 *   v2:  12-byte signature | ver/cmd | family/transport | length (BE16) |
 *        addresses (12 bytes IPv4, 36 IPv6) | TLVs (skipped)
 *
 * The parser is re-run from the start on the bytes gathered so far (the
 * header is at most PROXY_PROTO_V2_MAX bytes), like picohttpparser: it
 * answers "need more" while the prefix is still a possible header. It
 * never reads past what it was given and keeps no state. */
#include "l4/proxy_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t proxy_proto_v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char proxy_proto_v1_sig[] = "PROXY ";

/* 1 when p[0..len) is a prefix of sig[0..n). */
static int proxy_proto_prefix(const uint8_t *p, size_t len, const void *sig, size_t n)
{
    return memcmp(p, sig, len < n ? len : n) == 0;
}

/* Parses a decimal port of 1..5 digits into *port. Returns 0 or -EINVAL. */
static int proxy_proto_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* One address of family af (AF_INET / AF_INET6) and its port into ss. */
static int proxy_proto_v1_addr(int af, const char *ip, const char *port,
                               struct sockaddr_storage *ss)
{
    uint16_t p;
    if (proxy_proto_port(port, &p) < 0)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    if (af == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(p);
        return inet_pton(AF_INET, ip, &sin->sin_addr) == 1 ? 0 : -EINVAL;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(p);
    return inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
}

/* The v1 line: "PROXY " proto " " src " " dst " " sport " " dport "\r\n",
 * single spaces (spec 2.1); "UNKNOWN" may be followed by anything. */
static int proxy_proto_parse_v1(const uint8_t *p, size_t len, struct proxy_proto_hdr *out)
{
    size_t lim = len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX;
    const uint8_t *lf = memchr(p, '\n', lim);
    if (!lf)
        return len >= PROXY_PROTO_V1_MAX ? -EINVAL : 0;
    size_t n = (size_t)(lf - p) + 1;
    if (n < 8 || p[n - 2] != '\r')
        return -EINVAL;
    char line[PROXY_PROTO_V1_MAX + 1];
    memcpy(line, p, n - 2);
    line[n - 2] = 0;
    if (memchr(line, 0, n - 2))
        return -EINVAL;
    out->version = 1;
    out->local = 1;
    char *rest = line + 6;
    if (strncmp(rest, "UNKNOWN", 7) == 0)
        return (int)n;
    char *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = rest;
        char *sp = strchr(rest, ' ');
        if (i < 4) {
            if (!sp)
                return -EINVAL;
            *sp = 0;
            rest = sp + 1;
        } else if (sp) {
            return -EINVAL;
        }
    }
    int af = strcmp(f[0], "TCP4") == 0 ? AF_INET : strcmp(f[0], "TCP6") == 0 ? AF_INET6 : 0;
    if (!af || proxy_proto_v1_addr(af, f[1], f[3], &out->src) < 0 ||
        proxy_proto_v1_addr(af, f[2], f[4], &out->dst) < 0)
        return -EINVAL;
    out->local = 0;
    return (int)n;
}

static int proxy_proto_parse_v2(const uint8_t *p, size_t len, struct proxy_proto_hdr *out)
{
    if (len < 16)
        return 0;
    if ((p[12] >> 4) != 2 || (p[12] & 0x0F) > 1)
        return -EINVAL;
    size_t total = 16 + ((size_t)p[14] << 8 | p[15]);
    if (total > PROXY_PROTO_V2_MAX)
        return -EINVAL;
    if (len < total)
        return 0;
    out->version = 2;
    out->local = 1;
    int fam = p[13] >> 4, transport = p[13] & 0x0F;
    if ((p[12] & 0x0F) == 0 || transport != 1)
        return (int)total; /* LOCAL, or not a stream: keep the connection's addresses */
    const uint8_t *a = p + 16;
    if (fam == 1 && total >= 16 + 12) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
        memset(&out->src, 0, sizeof(out->src));
        memset(&out->dst, 0, sizeof(out->dst));
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        out->local = 0;
    } else if (fam == 2 && total >= 16 + 36) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                            *d = (struct sockaddr_in6 *)&out->dst;
        memset(&out->src, 0, sizeof(out->src));
        memset(&out->dst, 0, sizeof(out->dst));
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        out->local = 0;
    } else if (fam == 1 || fam == 2) {
        return -EINVAL; /* too short for its addresses */
    }
    return (int)total;
}

int proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_proto_hdr *out)
{
    if (len == 0)
        return 0;
    if (p[0] == 'P') {
        if (!proxy_proto_prefix(p, len, proxy_proto_v1_sig, 6))
            return -EINVAL;
        return len < 6 ? 0 : proxy_proto_parse_v1(p, len, out);
    }
    if (!proxy_proto_prefix(p, len, proxy_proto_v2_sig, sizeof(proxy_proto_v2_sig)))
        return -EINVAL;
    return proxy_proto_parse_v2(p, len, out);
}

/* The IP family both addresses share (AF_INET / AF_INET6), else 0. */
static int proxy_proto_family(const struct sockaddr *src, const struct sockaddr *dst)
{
    if (!src || !dst || src->sa_family != dst->sa_family)
        return 0;
    return src->sa_family == AF_INET || src->sa_family == AF_INET6 ? src->sa_family : 0;
}

static int proxy_proto_build_v1(int af, const struct sockaddr *src, const struct sockaddr *dst,
                                uint8_t *out, size_t size)
{
    int n;
    if (!af) {
        n = snprintf((char *)out, size, "PROXY UNKNOWN\r\n");
    } else {
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        unsigned sp, dp;
        if (af == AF_INET) {
            const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
            inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
            inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
            sp = ntohs(a->sin_port);
            dp = ntohs(b->sin_port);
        } else {
            const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
            inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
            inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
            sp = ntohs(a->sin6_port);
            dp = ntohs(b->sin6_port);
        }
        n = snprintf((char *)out, size, "PROXY %s %s %s %u %u\r\n", af == AF_INET ? "TCP4" : "TCP6",
                     s, d, sp, dp);
    }
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

static int proxy_proto_build_v2(int af, const struct sockaddr *src, const struct sockaddr *dst,
                                uint8_t *out, size_t size)
{
    size_t alen = af == AF_INET ? 12 : af == AF_INET6 ? 36 : 0;
    if (size < 16 + alen)
        return -ENOSPC;
    memcpy(out, proxy_proto_v2_sig, 12);
    out[12] = af ? 0x21 : 0x20; /* version 2, PROXY or LOCAL */
    out[13] = af == AF_INET ? 0x11 : af == AF_INET6 ? 0x21 : 0x00;
    out[14] = 0;
    out[15] = (uint8_t)alen;
    uint8_t *a = out + 16;
    if (af == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
        memcpy(a, &s->sin_addr, 4);
        memcpy(a + 4, &d->sin_addr, 4);
        memcpy(a + 8, &s->sin_port, 2);
        memcpy(a + 10, &d->sin_port, 2);
    } else if (af == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
        memcpy(a, &s->sin6_addr, 16);
        memcpy(a + 16, &d->sin6_addr, 16);
        memcpy(a + 32, &s->sin6_port, 2);
        memcpy(a + 34, &d->sin6_port, 2);
    }
    return (int)(16 + alen);
}

int proxy_proto_build(int version, const struct sockaddr *src, const struct sockaddr *dst,
                      uint8_t *out, size_t size)
{
    int af = proxy_proto_family(src, dst);
    if (version == 1)
        return proxy_proto_build_v1(af, src, dst, out, size);
    if (version == 2)
        return proxy_proto_build_v2(af, src, dst, out, size);
    return -EINVAL;
}

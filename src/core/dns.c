/* dns: see dns.h.
 *
 *   header (12 bytes) | question (name, type, class) | answers (name,
 *   type, class, ttl, rdlength, rdata) | authority | additional
 *
 * The parser trusts nothing: every read is checked against the message
 * length, compression pointers must point backwards and are followed at
 * most DNS_MAX_HOPS times, and a message whose id or question does not
 * match ours is refused (it could be a stale or spoofed answer). */
#include "core/dns.h"

#include <ctype.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define DNS_HEADER 12
#define DNS_MAX_HOPS 16
#define DNS_CLASS_IN 1

/* dns_name_ok, with labels that may start with '_' when `service`. */
static int dns_name_check(const char *s, size_t len, int service)
{
    if (len == 0 || len > DNS_MAX_NAME)
        return 0;
    int letter = 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (c == '_' && service && label == 0) {
            label++;
            continue;
        }
        if (!isalnum(c) && c != '-')
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (isalpha(c))
            letter = 1;
        if (++label > 63)
            return 0;
    }
    return letter && label > 0 && s[len - 1] != '-';
}

int dns_name_ok(const char *s, size_t len)
{
    return dns_name_check(s, len, 0);
}

int dns_query_name_ok(const char *s, size_t len)
{
    return dns_name_check(s, len, 1);
}

static void dns_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t dns_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

int dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t type)
{
    size_t len = strlen(name);
    if (!dns_query_name_ok(name, len) || cap < DNS_HEADER + len + 2 + 4)
        return -1;
    memset(buf, 0, DNS_HEADER);
    dns_put16(buf, id);
    buf[2] = 0x01;      /* RD */
    dns_put16(buf + 4, 1); /* QDCOUNT */
    size_t o = DNS_HEADER;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        buf[o++] = (uint8_t)l;
        memcpy(buf + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    buf[o++] = 0;
    dns_put16(buf + o, type);
    dns_put16(buf + o + 2, DNS_CLASS_IN);
    return (int)(o + 4);
}

/* Skips the (possibly compressed) name at *o; returns 0 or -1. */
static int dns_skip_name(const uint8_t *m, size_t len, size_t *o)
{
    size_t i = *o;
    for (int n = 0; n < 128; n++) {
        if (i >= len)
            return -1;
        uint8_t l = m[i];
        if ((l & 0xc0) == 0xc0) {
            if (i + 1 >= len)
                return -1;
            *o = i + 2;
            return 0;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0) {
            *o = i + 1;
            return 0;
        }
        i += 1 + (size_t)l;
    }
    return -1;
}

/* Compares the name at o (following pointers) with the dotted `want`
 * case-insensitively. Returns 1 equal, 0 not, -1 malformed. */
static int dns_name_eq(const uint8_t *m, size_t len, size_t o, const char *want)
{
    size_t w = 0, wl = strlen(want);
    for (int hops = 0; hops <= DNS_MAX_HOPS;) {
        if (o >= len)
            return -1;
        uint8_t l = m[o];
        if ((l & 0xc0) == 0xc0) {
            if (o + 1 >= len)
                return -1;
            size_t to = (size_t)(l & 0x3f) << 8 | m[o + 1];
            if (to >= o)
                return -1; /* pointers go backwards only: no loops */
            o = to;
            hops++;
            continue;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0)
            return w == wl;
        if (o + 1 + l > len)
            return -1;
        if (w > 0) {
            if (w >= wl || want[w] != '.')
                return 0;
            w++;
        }
        if (w + l > wl || strncasecmp((const char *)m + o + 1, want + w, l) != 0)
            return 0;
        w += l;
        o += 1 + (size_t)l;
    }
    return -1;
}

/* Writes the dotted name at o (following pointers) into out (cap bytes,
 * NUL-terminated; "" for the root). Returns 0, or -1 when malformed, too
 * long, or holding a byte that cannot be in a name we ask about. */
static int dns_read_name(const uint8_t *m, size_t len, size_t o, char *out, size_t cap)
{
    size_t w = 0;
    for (int hops = 0; hops <= DNS_MAX_HOPS;) {
        if (o >= len)
            return -1;
        uint8_t l = m[o];
        if ((l & 0xc0) == 0xc0) {
            if (o + 1 >= len)
                return -1;
            size_t to = (size_t)(l & 0x3f) << 8 | m[o + 1];
            if (to >= o)
                return -1;
            o = to;
            hops++;
            continue;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0) {
            out[w] = '\0';
            return 0;
        }
        if (o + 1 + l > len || w + (w > 0) + l + 1 > cap || w + (w > 0) + l > DNS_MAX_NAME)
            return -1;
        if (w > 0)
            out[w++] = '.';
        for (size_t i = 0; i < l; i++) {
            uint8_t c = m[o + 1 + i];
            if (c == '.' || c == '\0')
                return -1;
            out[w++] = (char)c;
        }
        o += 1 + (size_t)l;
    }
    return -1;
}

/* Checks the header and question of an answer to (id, name, qtype); *o is
 * set past the question. Returns the RCODE or -1. */
static int dns_check_head(const uint8_t *m, size_t len, uint16_t id, const char *name,
                          uint16_t qtype, size_t *o)
{
    if (len < DNS_HEADER || dns_get16(m) != id || !(m[2] & 0x80))
        return -1;
    if (m[2] & 0x02)
        return -1; /* TC: truncated; the caller may retry, weir does not do TCP */
    if (dns_get16(m + 4) != 1)
        return -1;
    *o = DNS_HEADER;
    if (dns_name_eq(m, len, *o, name) != 1 || dns_skip_name(m, len, o) < 0 || *o + 4 > len ||
        dns_get16(m + *o) != qtype)
        return -1;
    *o += 4;
    return m[3] & 0x0f;
}

/* One resource record at o: where its owner name starts, its type, class,
 * ttl, and its data at *rdata (rdlen bytes); *o moves past it. */
struct dns_rr {
    size_t owner, rdata;
    uint16_t type, rclass, rdlen;
    uint32_t ttl;
};

static int dns_next_rr(const uint8_t *m, size_t len, size_t *o, struct dns_rr *rr)
{
    rr->owner = *o;
    if (dns_skip_name(m, len, o) < 0 || *o + 10 > len)
        return -1;
    rr->type = dns_get16(m + *o);
    rr->rclass = dns_get16(m + *o + 2);
    rr->ttl = (uint32_t)dns_get16(m + *o + 4) << 16 | dns_get16(m + *o + 6);
    rr->rdlen = dns_get16(m + *o + 8);
    *o += 10;
    if (*o + rr->rdlen > len)
        return -1;
    rr->rdata = *o;
    *o += rr->rdlen;
    return 0;
}

/* Appends the address of an A / AAAA record rr to out[*n] when there is room. */
static void dns_put_addr(const uint8_t *m, const struct dns_rr *rr, struct dns_addr *out,
                         size_t *n, size_t max)
{
    if (rr->rclass != DNS_CLASS_IN || *n >= max)
        return;
    struct dns_addr *a = &out[*n];
    memset(a, 0, sizeof(*a));
    a->ttl = rr->ttl;
    if (rr->type == DNS_TYPE_A && rr->rdlen == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->addr;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, m + rr->rdata, 4);
        a->addrlen = sizeof(*in);
        (*n)++;
    } else if (rr->type == DNS_TYPE_AAAA && rr->rdlen == 16) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->addr;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, m + rr->rdata, 16);
        a->addrlen = sizeof(*in6);
        (*n)++;
    }
}

int dns_parse_answer(const uint8_t *m, size_t len, uint16_t id, const char *name, uint16_t type,
                     struct dns_addr *out, size_t *n, size_t max)
{
    size_t o;
    int rcode = dns_check_head(m, len, id, name, type, &o);
    if (rcode < 0)
        return -1;
    uint16_t an = dns_get16(m + 6);
    for (uint16_t i = 0; i < an; i++) {
        struct dns_rr rr;
        if (dns_next_rr(m, len, &o, &rr) < 0)
            return -1;
        if (rr.type == type)
            dns_put_addr(m, &rr, out, n, max);
    }
    return rcode;
}

int dns_parse_srv(const uint8_t *m, size_t len, uint16_t id, const char *name,
                  struct dns_srv *out, size_t *n, size_t max)
{
    size_t o;
    int rcode = dns_check_head(m, len, id, name, DNS_TYPE_SRV, &o);
    if (rcode < 0)
        return -1;
    uint16_t an = dns_get16(m + 6);
    for (uint16_t i = 0; i < an; i++) {
        struct dns_rr rr;
        if (dns_next_rr(m, len, &o, &rr) < 0)
            return -1;
        if (rr.type != DNS_TYPE_SRV || rr.rclass != DNS_CLASS_IN || *n >= max)
            continue;
        size_t t = rr.rdata + 6, end = rr.rdata + rr.rdlen;
        if (rr.rdlen < 7 || dns_skip_name(m, end, &t) < 0 || t != end)
            return -1; /* the target must fill the record's data exactly */
        struct dns_srv *s = &out[*n];
        if (dns_read_name(m, len, rr.rdata + 6, s->target, sizeof(s->target)) < 0)
            return -1;
        s->priority = dns_get16(m + rr.rdata);
        s->weight = dns_get16(m + rr.rdata + 2);
        s->port = dns_get16(m + rr.rdata + 4);
        s->ttl = rr.ttl;
        (*n)++;
    }
    return rcode;
}

int dns_parse_owned(const uint8_t *m, size_t len, uint16_t id, const char *name, uint16_t qtype,
                    const char *owner, uint16_t type, struct dns_addr *out, size_t *n, size_t max)
{
    size_t o;
    if (dns_check_head(m, len, id, name, qtype, &o) < 0)
        return -1;
    unsigned total = (unsigned)dns_get16(m + 6) + dns_get16(m + 8) + dns_get16(m + 10);
    for (unsigned i = 0; i < total; i++) {
        struct dns_rr rr;
        if (dns_next_rr(m, len, &o, &rr) < 0)
            return -1;
        if (rr.type != type)
            continue;
        int eq = dns_name_eq(m, len, rr.owner, owner);
        if (eq < 0)
            return -1;
        if (eq)
            dns_put_addr(m, &rr, out, n, max);
    }
    return 0;
}


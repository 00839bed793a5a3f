/* units: the value syntaxes of the configuration file (see units.h).
 *
 * Each parser reads a whole NUL-terminated string and either accepts all of
 * it or rejects it: there is no leading whitespace, sign, fraction or
 * trailing text. Numbers are decimal digits accumulated with an explicit
 * overflow check before every multiply and add, so a value that does not fit
 * in 64 bits is -ERANGE rather than a silent wrap.
 *
 *     "30s"              -> digits "30" * unit "s" (1000 ms)
 *     "16k"              -> digits "16" * 1024
 *     "[::1]:80"         -> host "::1" (inet_pton AF_INET6), port "80"
 *
 * Addresses never touch DNS: the only name understood is "localhost"
 * (127.0.0.1) and "*" (0.0.0.0, any IPv4 address). Nothing here allocates. */
#include "core/units.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Reads the leading decimal digits of `s` into *out. Returns the number of
 * digits read (0: none, *out untouched) or -ERANGE when they overflow. */
static int units_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        uint64_t d = (uint64_t)(s[n] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
        n++;
    }
    if (n > 0)
        *out = v;
    return n;
}

/* Multiplies v by mul into *out. Returns 0 or -ERANGE. */
static int units_scale(uint64_t v, uint64_t mul, uint64_t *out)
{
    if (mul != 0 && v > UINT64_MAX / mul)
        return -ERANGE;
    *out = v * mul;
    return 0;
}

int units_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
    uint64_t v = 0;
    int n = units_digits(s, &v);

    if (n < 0)
        return n;
    if (n == 0)
        return -EINVAL;
    if (s[n] == '\0') {
        /* A bare number is ambiguous (seconds? milliseconds?) except zero. */
        if (v != 0)
            return -EINVAL;
        *out_ms = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].suffix) == 0)
            return units_scale(v, units[i].ms, out_ms);
    return -EINVAL;
}

int units_parse_size(const char *s, uint64_t *out_bytes)
{
    uint64_t v = 0, mul;
    int n = units_digits(s, &v);

    if (n < 0)
        return n;
    if (n == 0)
        return -EINVAL;
    switch (tolower((unsigned char)s[n])) {
    case '\0': mul = 1; break;
    case 'k': mul = 1ULL << 10; break;
    case 'm': mul = 1ULL << 20; break;
    case 'g': mul = 1ULL << 30; break;
    default: return -EINVAL;
    }
    if (mul != 1 && s[n + 1] != '\0')
        return -EINVAL;
    return units_scale(v, mul, out_bytes);
}

int units_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    int n = units_digits(s, &v);

    if (n < 0)
        return n;
    if (n == 0 || s[n] != '\0')
        return -EINVAL;
    if (v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int units_parse_rate(const char *s, uint64_t max_count, uint64_t *out_count,
                     uint64_t *out_period_ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = { { "/s", 1000 }, { "/m", 60000 }, { "/h", 3600000 }, { "/d", 86400000 } };
    uint64_t v = 0;
    int n = units_digits(s, &v);

    if (n < 0)
        return n;
    if (n == 0 || s[n] != '/')
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + n, units[i].suffix) != 0)
            continue;
        if (v == 0 || v > max_count)
            return -ERANGE;
        *out_count = v;
        *out_period_ms = units[i].ms;
        return 0;
    }
    return -EINVAL;
}

/* Parses the port after the last ':' of an address. Returns 0, -EINVAL (not
 * digits) or -ERANGE (outside 1..65535). */
static int units_parse_port(const char *s, uint16_t *out)
{
    uint64_t v = 0;
    int rc = units_parse_uint(s, UINT64_MAX, &v);

    if (rc == -ERANGE || (rc == 0 && (v == 0 || v > 65535)))
        return -ERANGE;
    if (rc < 0)
        return rc;
    *out = (uint16_t)v;
    return 0;
}

/* Splits "host:port" / "[host]:port" into host (copied into `host`, at most
 * `size` - 1 bytes) and a pointer to the port text. Returns 0 or -EINVAL. */
static int units_split_addr(const char *s, char *host, size_t size, const char **port, int *v6)
{
    const char *colon, *start = s, *end;

    *v6 = s[0] == '[';
    if (*v6) {
        start = s + 1;
        end = strchr(start, ']');
        if (end == NULL || end[1] != ':')
            return -EINVAL;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        end = colon;
    }
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= size)
        return -EINVAL;
    if (!*v6 && memchr(start, ':', len) != NULL)
        return -EINVAL; /* an IPv6 literal needs brackets */
    memcpy(host, start, len);
    host[len] = '\0';
    *port = colon + 1;
    return 0;
}

int units_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *out_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    uint16_t port = 0;
    int v6 = 0;
    int rc = units_split_addr(s, host, sizeof(host), &port_text, &v6);

    if (rc < 0)
        return rc;
    rc = units_parse_port(port_text, &port);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -EINVAL;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *out_len = sizeof(*sin6);
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    if (strcmp(host, "*") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcasecmp(host, "localhost") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -EINVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *out_len = sizeof(*sin);
    return 0;
}

void units_format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (size == 0)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, size, "(family %d)", (int)sa->sa_family);
    }
}

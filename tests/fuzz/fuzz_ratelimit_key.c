/* fuzz_ratelimit_key: libFuzzer harness for the request-head parts of a rate
 * limit key (ratelimit_key.c): the client address behind trusted proxies
 * from X-Forwarded-For, and a cookie's value.
 *
 * The input's first byte picks the peer address (trusted or not) and the
 * cookie name; the rest is parsed as a request head. Every slice returned
 * must lie inside the input (or be the peer string), a client address must
 * not start or end with blanks nor hold a comma, and a cookie value must not
 * hold ';'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parser.h"
#include "http/steps/ratelimit_key.h"

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_inside(struct http_slice s, const char *buf, size_t size)
{
    return s.p >= buf && s.p + s.len <= buf + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const peers[] = { "10.0.0.2", "192.0.2.1", "::1", "2001:db8::5" };
    static const char *const cookies[] = { "sid", "a", "session_id", "x" };
    static struct rl_cidr trusted[3];
    static int ready;
    if (!ready) {
        FUZZ_CHECK(rl_cidr_parse("10.0.0.0/8", &trusted[0]) == 0);
        FUZZ_CHECK(rl_cidr_parse("::1", &trusted[1]) == 0);
        FUZZ_CHECK(rl_cidr_parse("2001:db8::/32", &trusted[2]) == 0);
        ready = 1;
    }
    if (size < 1)
        return 0;
    const char *peer = peers[data[0] & 3], *cookie = cookies[(data[0] >> 2) & 3];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    struct http_msg m;
    struct http_limits lim = { HTTP_DEFAULT_MAX_REQUEST_LINE, HTTP_DEFAULT_MAX_HEADER_BYTES,
                               HTTP_DEFAULT_MAX_HEADERS };
    http_msg_init(&m);
    if (http_parse_request(buf, len, &m, &lim) <= 0)
        return 0;
    struct http_slice p = { peer, strlen(peer) };
    struct http_slice ip = rl_key_client_ip(&m, p, trusted, 3);
    FUZZ_CHECK(ip.p == peer || fuzz_inside(ip, buf, len));
    FUZZ_CHECK(ip.len > 0);
    FUZZ_CHECK(ip.p[0] != ' ' && ip.p[0] != '\t' && ip.p[ip.len - 1] != ' ');
    FUZZ_CHECK(memchr(ip.p, ',', ip.len) == NULL);
    /* without trusted proxies the peer is the client, whatever the fields say */
    FUZZ_CHECK(rl_key_client_ip(&m, p, trusted, 0).p == peer);
    struct http_slice c = rl_key_cookie(&m, cookie, strlen(cookie));
    if (c.p != NULL) {
        FUZZ_CHECK(fuzz_inside(c, buf, len));
        FUZZ_CHECK(memchr(c.p, ';', c.len) == NULL);
        FUZZ_CHECK(c.p[-1] == '=');
    }
    return 0;
}

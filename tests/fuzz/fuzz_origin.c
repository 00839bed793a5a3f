/* fuzz_origin: libFuzzer harness for the address and origin parsers route
 * steps run on client input: cidr_parse/cidr_parse_addr (core/cidr.c) and
 * cors_origin_parse/cors_origin_match (http/steps/cors.c).
 *
 * The input is copied to an exact-size buffer (origins are parsed from
 * slices: no byte after them may be read) and a NUL-terminated copy (CIDR
 * text). Checks: a parsed origin's slices lie inside the input; an origin
 * matches itself read as a pattern; a parsed network contains its own
 * first address and formats to text that parses back to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "http/steps/cors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_inside(struct http_slice s, const char *p, size_t n)
{
    return s.p >= p && s.p + s.len <= p + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *p = malloc(size ? size : 1), *z = malloc(size + 1);
    if (p == NULL || z == NULL)
        abort();
    memcpy(p, data, size);
    memcpy(z, data, size);
    z[size] = 0;
    struct cors_origin o, pat;
    if (cors_origin_parse(p, size, 0, &o) == 0) {
        if (!fuzz_inside(o.scheme, p, size) || !fuzz_inside(o.host, p, size) || o.wildcard)
            abort();
        if (cors_origin_parse(p, size, 1, &pat) != 0 || !cors_origin_match(&pat, &o))
            abort();
    }
    if (cors_origin_parse(p, size, 1, &pat) == 0 && !fuzz_inside(pat.host, p, size))
        abort();
    struct cidr net, addr, back;
    if (cidr_parse(z, &net) == 0) {
        addr = net;
        addr.prefix = net.family == 4 ? 32 : 128;
        if (!cidr_contains(&net, &addr))
            abort();
        char text[64];
        cidr_format(&net, text, sizeof(text));
        if (cidr_parse(text, &back) != 0 || memcmp(&back, &net, sizeof(net)) != 0)
            abort();
    }
    (void)cidr_parse_addr(z, &addr);
    free(p);
    free(z);
    return 0;
}

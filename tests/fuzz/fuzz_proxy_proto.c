/* fuzz_proxy_proto: libFuzzer harness for the PROXY protocol header parser
 * (l4/proxy_proto.c) that weir runs on the first bytes of connections from
 * a trusted front balancer (accept_proxy).
 *
 * The input is the connection's first bytes, copied to an exact-size
 * buffer. Checks: a complete header is never longer than the input or the
 * version's limit; every shorter prefix of an accepted header answers
 * "need more" (what the reader relies on when it consumes a valid
 * prefix); an accepted header's addresses, built again, parse back the
 * same; and the parser agrees with itself byte by byte. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l4/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t size, struct proxy_proto_hdr *h)
{
    uint8_t *m = malloc(size ? size : 1);
    if (!m)
        abort();
    memcpy(m, data, size);
    int rc = proxy_proto_parse(m, size, h);
    free(m);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * PROXY_PROTO_V2_MAX)
        return 0;
    struct proxy_proto_hdr h;
    int rc = parse_copy(data, size, &h);
    if (rc < 0 && rc != -EINVAL)
        abort();
    if (rc <= 0)
        return 0;
    if ((size_t)rc > size)
        abort();
    if ((h.version == 1 && rc > PROXY_PROTO_V1_MAX) || rc > PROXY_PROTO_V2_MAX)
        abort();
    for (size_t i = 0; i < (size_t)rc; i++) {
        struct proxy_proto_hdr p;
        if (parse_copy(data, i, &p) != 0)
            abort();
    }
    if (h.local)
        return 0;
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    int n = proxy_proto_build(h.version, (struct sockaddr *)&h.src, (struct sockaddr *)&h.dst, out,
                              sizeof(out));
    struct proxy_proto_hdr back;
    if (n <= 0 || parse_copy(out, (size_t)n, &back) != n || back.local ||
        back.src.ss_family != h.src.ss_family)
        abort();
    size_t alen = h.src.ss_family == 2 ? 16 : 28; /* sockaddr_in / sockaddr_in6 */
    if (memcmp(&back.src, &h.src, alen) != 0 || memcmp(&back.dst, &h.dst, alen) != 0)
        abort();
    return 0;
}

/* fuzz_dns: libFuzzer harness for the DNS answer parser (core/dns.c) that
 * weir runs on datagrams from the network.
 *
 * The input is the answer, copied to an exact-size buffer (no byte after it
 * may be read), parsed as an answer to query id 0x1234 for "svc.test", type
 * A and AAAA, and as an SRV answer for "_http._tcp.svc.test" with the
 * addresses of each target it names (resolver.c's use). Checks: never more
 * addresses or records than room was given, each address of the family its
 * type says, every target a NUL-terminated name of at most 253 bytes; and
 * a query weir builds for a name taken from the input parses back as its
 * own question. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > DNS_MAX_MSG)
        return 0;
    uint8_t *m = malloc(size ? size : 1);
    if (!m)
        abort();
    memcpy(m, data, size);
    static const uint16_t types[] = { DNS_TYPE_A, DNS_TYPE_AAAA };
    for (int t = 0; t < 2; t++) {
        struct dns_addr out[4];
        size_t n = 0;
        int rc = dns_parse_answer(m, size, 0x1234, "svc.test", types[t], out, &n, 4);
        if (rc < -1 || rc > 15 || n > 4)
            abort();
        for (size_t i = 0; i < n; i++)
            if (out[i].addr.ss_family != (types[t] == DNS_TYPE_A ? AF_INET : AF_INET6))
                abort();
    }
    struct dns_srv srv[4];
    size_t ns = 0;
    int rc = dns_parse_srv(m, size, 0x1234, "_http._tcp.svc.test", srv, &ns, 4);
    if (rc < -1 || rc > 15 || ns > 4)
        abort();
    for (size_t i = 0; i < ns; i++) {
        if (memchr(srv[i].target, '\0', sizeof(srv[i].target)) == NULL ||
            strlen(srv[i].target) > DNS_MAX_NAME)
            abort();
        for (int t = 0; t < 2; t++) {
            struct dns_addr out[4];
            size_t n = 0;
            int orc = dns_parse_owned(m, size, 0x1234, "_http._tcp.svc.test", DNS_TYPE_SRV,
                                      srv[i].target, types[t], out, &n, 4);
            if (orc < -1 || orc > 0 || n > 4)
                abort();
            for (size_t k = 0; k < n; k++)
                if (out[k].addr.ss_family != (types[t] == DNS_TYPE_A ? AF_INET : AF_INET6))
                    abort();
        }
    }
    /* a name from the input: a query for it has it as its question */
    char name[DNS_MAX_NAME + 1];
    size_t nl = size < DNS_MAX_NAME ? size : DNS_MAX_NAME;
    memcpy(name, data, nl);
    name[nl] = '\0';
    uint8_t q[512];
    if (strlen(name) == nl && dns_query_name_ok(name, nl)) {
        int qlen = dns_build_query(q, sizeof(q), 7, name, DNS_TYPE_A);
        if (qlen < 0)
            abort();
        q[2] |= 0x80; /* as an answer with no records */
        size_t n = 0;
        if (dns_parse_answer(q, (size_t)qlen, 7, name, DNS_TYPE_A, NULL, &n, 0) != 0)
            abort();
    }
    free(m);
    return 0;
}

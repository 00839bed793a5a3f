/* fuzz_tls_keys: libFuzzer harness for the session ticket key file parser
 * (tls/tls_keys.c, tls_keys_parse).
 *
 * The input is copied to an exact-size buffer (nothing after it may be
 * read). Checks: the result is a count within 1..max or an error; on an
 * error the line at fault is within the input's lines (0: no key at all);
 * with room for 2 keys the same text gives the same keys when it has at
 * most 2, else an error; parsing is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *p = malloc(size ? size : 1);
    if (p == NULL)
        abort();
    memcpy(p, data, size);
    struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX], again[TLS_TICKET_KEYS_MAX], few[2];
    unsigned line = 0, line2 = 0, line3 = 0;
    int n = tls_keys_parse(p, size, keys, TLS_TICKET_KEYS_MAX, &line);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += p[i] == '\n';
    if (n == 0 || n > TLS_TICKET_KEYS_MAX || (n < 0 && line > lines))
        abort();
    int m = tls_keys_parse(p, size, again, TLS_TICKET_KEYS_MAX, &line2);
    if (m != n || (n > 0 && memcmp(keys, again, (size_t)n * sizeof(keys[0])) != 0) || (n < 0 && line != line2))
        abort();
    int k = tls_keys_parse(p, size, few, 2, &line3);
    if (k > 2 || (n > 0 && n <= 2 && k != n) || (n > 2 && k >= 0) || (n < 0 && k >= 0))
        abort();
    free(p);
    return 0;
}

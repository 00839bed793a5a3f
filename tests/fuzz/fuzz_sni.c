/* fuzz_sni: libFuzzer harness for the ClientHello server-name reader
 * (l4/sni.c) that a tcp listener with sni rules runs on a client's first
 * bytes, before any TLS.
 *
 * The input is those bytes, copied to an exact-size buffer. Checks: the
 * answer is one of 1 / 0 / -EAGAIN / -EINVAL; a name is NUL-terminated,
 * at most SNI_MAX_NAME bytes, lower case and of host-name characters; a
 * prefix of an input that gave an answer never answers differently unless
 * it says -EAGAIN; and sni_match of the name against itself holds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l4/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t size, char *name)
{
    uint8_t *m = malloc(size ? size : 1);
    if (!m)
        abort();
    memcpy(m, data, size);
    int rc = sni_parse(m, size, name, SNI_MAX_NAME + 1);
    free(m);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SNI_MAX_PEEK)
        return 0;
    char name[SNI_MAX_NAME + 1];
    int rc = parse_copy(data, size, name);
    if (rc != 1 && rc != 0 && rc != -EAGAIN && rc != -EINVAL)
        abort();
    if (rc == 1) {
        size_t n = strnlen(name, sizeof(name));
        if (n == 0 || n > SNI_MAX_NAME)
            abort();
        for (size_t i = 0; i < n; i++) {
            char c = name[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.'))
                abort();
        }
        if (!sni_match(name, name))
            abort();
    }
    /* a shorter prefix: the same answer, or a wish for more bytes */
    if (size > 1) {
        char other[SNI_MAX_NAME + 1];
        int r2 = parse_copy(data, size / 2, other);
        if (r2 != -EAGAIN && r2 != rc)
            abort();
    }
    return 0;
}

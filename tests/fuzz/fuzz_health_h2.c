/* fuzz_health_h2: libFuzzer harness for the HTTP/2 health check's reading
 * of a server's bytes (upstream/health_h2.c): the input is what the server
 * sent, judged whole as the check does after every read. */
#include <stdint.h>
#include <stdlib.h>

#include "upstream/health_h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct health_h2_req r = {"GET", "/health", "127.0.0.1:9", 0};
    char body[4096];
    int status;
    size_t blen;
    int ended = health_h2_answer(&r, data, size, &status, body, sizeof(body), &blen);
    if (ended > 1 || blen > sizeof(body) || (status && (status < 200 || status > 999)))
        abort();
    return 0;
}

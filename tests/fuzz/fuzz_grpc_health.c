/* fuzz_grpc_health: libFuzzer harness for the gRPC health check's answer
 * reading (upstream/health_grpc.c).
 *
 * 1. The input is what a server sends on the check's connection: a client
 *    session asking about a service is made, its request drained, then the
 *    input is fed in three pieces (split at a third and two thirds), the
 *    session's own frames (acks, GOAWAY) drained after each, then the end
 *    of the connection. Whatever the bytes, a verdict comes with a reason,
 *    and SERVING needs the whole answer, so a pass asserts the bounds.
 * 2. The same bytes go to the HealthCheckResponse decoder as a protobuf
 *    message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/health_grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_drain(struct health_grpc *g)
{
    const uint8_t *out;
    size_t n;
    for (int i = 0; i < 64 && (n = health_grpc_output(g, &out)) > 0; i++)
        health_grpc_consumed(g, n);
}

static void fuzz_session(const uint8_t *data, size_t size)
{
    struct health_grpc *g = health_grpc_new("grpc.health.v1.Health", "fuzz.test:50051", 0, 1000);
    if (!g)
        return;
    fuzz_drain(g);
    size_t cuts[] = {0, size / 3, 2 * size / 3, size};
    enum health_grpc_verdict v = HEALTH_GRPC_PENDING;
    for (int i = 0; i < 3 && v == HEALTH_GRPC_PENDING; i++) {
        if (cuts[i + 1] > cuts[i])
            v = health_grpc_input(g, data + cuts[i], cuts[i + 1] - cuts[i]);
        fuzz_drain(g);
        v = health_grpc_verdict(g, NULL);
    }
    if (v == HEALTH_GRPC_PENDING)
        v = health_grpc_input(g, NULL, 0);
    const char *why;
    if (health_grpc_verdict(g, &why) == HEALTH_GRPC_PENDING || !why[0])
        abort(); /* the end of the connection always decides, with a reason */
    if (v == HEALTH_GRPC_PASS && size < 9 + 9 + 9 + 7)
        abort(); /* a pass takes SETTINGS, HEADERS, DATA and a message at least */
    health_grpc_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_session(data, size);
    uint64_t st;
    (void)health_grpc_decode_response(data, size, &st);
    return 0;
}

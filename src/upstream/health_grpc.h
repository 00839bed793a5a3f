/* health_grpc: the gRPC health check (health_check type: grpc), the
 * standard grpc.health.v1.Health/Check over an HTTP/2 client session. The
 * exchange itself is kept apart from any socket so tests and the fuzzer
 * drive it with bytes: health_grpc_output() gives what to send,
 * health_grpc_input() takes what came, health_grpc_verdict() tells. */
#ifndef WEIR_UPSTREAM_HEALTH_GRPC_H
#define WEIR_UPSTREAM_HEALTH_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HEALTH_GRPC_MSG_MAX 1024     /* bytes of the answer's DATA (one small message) */
#define HEALTH_GRPC_HEADERS_MAX 8192 /* bytes of header names and values per check */
#define HEALTH_GRPC_IN_MAX 262144    /* bytes read per check before giving up */
/* the framed request: 5-byte gRPC prefix, tag, 2-byte varint length, service */
#define HEALTH_GRPC_REQ_MAX (5 + 1 + 2 + 200)

/* HealthCheckResponse.ServingStatus (grpc/health/v1/health.proto) */
enum health_grpc_serving {
    HEALTH_GRPC_UNKNOWN = 0,
    HEALTH_GRPC_SERVING = 1,
    HEALTH_GRPC_NOT_SERVING = 2,
    HEALTH_GRPC_SERVICE_UNKNOWN = 3,
};

enum health_grpc_verdict { HEALTH_GRPC_PENDING, HEALTH_GRPC_PASS, HEALTH_GRPC_FAIL };

struct health_grpc;

/* Writes the length-prefixed gRPC message carrying HealthCheckRequest
 * {service} into out. Returns its length, or 0 when it does not fit cap
 * or service is longer than 16383 bytes. */
size_t health_grpc_encode_request(const char *service, uint8_t *out, size_t cap);
/* Decodes a HealthCheckResponse (the protobuf, without the gRPC prefix)
 * from msg[0..len): *status gets its status field (UNKNOWN when absent;
 * the last one when repeated; unknown fields skipped). Returns 0, or -1
 * when the bytes are not a well-formed message. Never reads past len. */
int health_grpc_decode_response(const uint8_t *msg, size_t len, uint64_t *status);

/* A client session that asks about `service` ("" the server) from
 * `authority`; `https` picks the :scheme, `timeout_ms` (0: none) goes
 * to the server as grpc-timeout. Strings are copied. NULL on ENOMEM. */
struct health_grpc *health_grpc_new(const char *service, const char *authority, int https,
                                    uint64_t timeout_ms);
void health_grpc_free(struct health_grpc *g);
/* The bytes waiting to be sent, in *out (borrowed from g, valid until
 * health_grpc_consumed or health_grpc_input): their count, 0 when nothing
 * is waiting or a verdict was given. */
size_t health_grpc_output(struct health_grpc *g, const uint8_t **out);
/* n (at most what health_grpc_output gave) of those bytes were sent. */
void health_grpc_consumed(struct health_grpc *g, size_t n);
/* Feeds received bytes; len 0 means the connection ended. Returns the
 * verdict so far. */
enum health_grpc_verdict health_grpc_input(struct health_grpc *g, const uint8_t *in, size_t len);
/* The verdict so far, and its reason (borrowed from g) when not pending. */
enum health_grpc_verdict health_grpc_verdict(const struct health_grpc *g, const char **reason);

#endif

/* grpc: what weir knows of gRPC over HTTP: the retry conditions a route's
 * `retry.on` may name (Envoy's retry_on names) and the grpc-status of a
 * "Trailers-Only" answer, the only one decided before its body.
 *
 * A gRPC answer carries grpc-status in its trailers after the body, except
 * the Trailers-Only form (an error at once): status 200, content-type
 * application/grpc..., grpc-status in the head, no body. Only that form can
 * be retried: once a body is under way the answer is the client's. */
#ifndef WEIR_HTTP_GRPC_H
#define WEIR_HTTP_GRPC_H

#include <stdint.h>

struct http_msg;

/* retry.on name and the gRPC status code it retries (grpc/doc/statuscodes.md) */
#define GRPC_RETRY_ON_LIST(X) \
    X("grpc-cancelled", 1) \
    X("grpc-deadline-exceeded", 4) \
    X("grpc-resource-exhausted", 8) \
    X("grpc-internal", 13) \
    X("grpc-unavailable", 14)

#define GRPC_STATUS_BIT(code) (1u << (code))
#define GRPC_STATUS_MAX 16 /* codes 0..16 */

/* The GRPC_STATUS_BIT of the retry.on name s, or 0 when s names none. */
uint32_t grpc_retry_on_bit(const char *s);

/* The retry.on names, comma separated (for error messages). */
const char *grpc_retry_on_names(void);

/* The grpc-status (0..GRPC_STATUS_MAX) of the answer head msg when it is a
 * Trailers-Only gRPC answer (see above; "no body": no body, Content-Length
 * 0, or chunked, whose body a Trailers-Only answer leaves empty); -1 when it
 * is not one, or its grpc-status is not a plain number in range. */
int grpc_trailers_only_status(const struct http_msg *msg);

#endif

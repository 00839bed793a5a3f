/* sigv4: verifies AWS Signature Version 4 on a request (the Authorization
 * header form, AWS4-HMAC-SHA256), for the SQS listener's optional
 * `sqs_auth:` keys. Pure: the caller gives the request, the keys and the
 * time; nothing here allocates per request except the canonical request's
 * scratch text. */
#ifndef WEIR_QUEUE_SIGV4_H
#define WEIR_QUEUE_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/http_parser.h"

#define SIGV4_MAX_SIGNED_HEADERS 32

/* The parts of an Authorization header, slices of it. */
struct sigv4_auth {
    struct http_slice access_key, date, region,
        service;                      /* Credential=KEY/DATE/REGION/SERVICE/aws4_request */
    struct http_slice signed_headers; /* "content-type;host;x-amz-date" */
    struct http_slice signature;      /* 64 lowercase hex digits */
};

#define SIGV4_RESULT_LIST(X)                                                                       \
    X(SIGV4_OK, "ok")                                                                              \
    X(SIGV4_MISSING, "no Authorization header")                                                    \
    X(SIGV4_MALFORMED, "malformed Authorization header or X-Amz-Date")                             \
    X(SIGV4_UNKNOWN_KEY, "unknown access key")                                                     \
    X(SIGV4_EXPIRED, "X-Amz-Date is more than the allowed skew away from now")                     \
    X(SIGV4_MISMATCH, "signature does not match")
#define SIGV4_RESULT_MEMBER(e, s) e,
enum sigv4_result { SIGV4_RESULT_LIST(SIGV4_RESULT_MEMBER) SIGV4_RESULT_COUNT };
#undef SIGV4_RESULT_MEMBER

extern const char *const sigv4_result_names[SIGV4_RESULT_COUNT];

/* Parses the value of an Authorization header (len bytes, not
 * NUL-terminated). Returns 0 with *out pointing into s, or -EINVAL. */
int sigv4_parse_authorization(const char *s, size_t len, struct sigv4_auth *out);

/* Finds the secret of access key `key` (len bytes); NULL when unknown. */
typedef const char *(*sigv4_secret_fn)(void *arg, const char *key, size_t len);

/* Verifies request msg with body[0..body_len): the Authorization header,
 * X-Amz-Date within max_skew_s of now, the credential's date that of
 * X-Amz-Date, every signed header present (host among them), and the
 * signature over the canonical request. */
enum sigv4_result sigv4_verify(const struct http_msg *msg, const char *body, size_t body_len,
                               sigv4_secret_fn secret, void *arg, time_t now, uint32_t max_skew_s);

#endif

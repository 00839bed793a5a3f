/* health_h2: the HTTP health check of a cluster whose endpoints speak
 * HTTP/2 (protocol h2 / h2c), as bytes in and a verdict's facts out.
 *
 * A check is one request on a fresh connection: the client preface,
 * SETTINGS and one HEADERS frame (stream 1, END_STREAM), made once when
 * the probe is set up. What the server sends back is parsed from the start
 * each time more arrives (a fresh nghttp2 client session that sent the same
 * request), which keeps no state between reads: the reply is bounded by
 * the check's read buffer (4 KB). */
#ifndef WEIR_UPSTREAM_HEALTH_H2_H
#define WEIR_UPSTREAM_HEALTH_H2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The request of a check (what a check sends, stream 1). */
struct health_h2_req {
    const char *method, *path, *authority;
    int tls; /* :scheme https, else http */
};

/* Writes the check's bytes into out[0..cap); returns their length, or -1
 * (out too small, out of memory). */
ssize_t health_h2_request(const struct health_h2_req *r, char *out, size_t cap);

/* Parses the server's bytes in[0..n) as the answer to r: *status (0 until
 * the answer's HEADERS came), up to body_cap body bytes into body
 * (*body_len). Returns 1 when stream 1 ended (answered, reset or beyond a
 * GOAWAY), 0 when more bytes are needed, -1 on an HTTP/2 protocol error. */
int health_h2_answer(const struct health_h2_req *r, const uint8_t *in, size_t n, int *status,
                     char *body, size_t body_cap, size_t *body_len);

#endif

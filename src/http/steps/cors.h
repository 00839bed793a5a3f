/* cors: the `cors` route step (cross-origin resource sharing: preflights
 * answered by weir, Access-Control-* fields on the answers) and the origin
 * syntax it matches, exposed for tests. */
#ifndef WEIR_HTTP_STEPS_CORS_H
#define WEIR_HTTP_STEPS_CORS_H

#include <stddef.h>
#include <stdint.h>

#include "http/http_parser.h"
#include "http/step.h"

extern const struct step_type step_cors;

/* An origin "scheme://host[:port]", or a pattern whose host's first label
 * is `*`: slices of the parsed text. */
struct cors_origin {
    struct http_slice scheme;
    struct http_slice host;        /* a pattern's: what follows the "*" (".example.com") */
    uint32_t port;                 /* as written, else the scheme's default (http 80, https
                                      443), else 0 */
    int wildcard;
};

/* Parses p[0..n) as an origin (RFC 6454 section 6.1 serialization: no
 * path, no userinfo, no trailing "/"); with `pattern`, the host may start
 * with "*." followed by at least two labels. Returns 0 or -EINVAL. Nothing
 * is copied: out's slices point into p. */
int cors_origin_parse(const char *p, size_t n, int pattern, struct cors_origin *out);
/* Whether origin (not a pattern) is what `allowed` names: scheme and host
 * compared case-insensitively, ports equal; a wildcard stands for exactly
 * one non-empty label. Returns 1 or 0. */
int cors_origin_match(const struct cors_origin *allowed, const struct cors_origin *origin);

#endif

/* compress: the `compress` route step (gzip, br, zstd for the answers of a
 * route, negotiated with Accept-Encoding) and what its tests check. */
#ifndef WEIR_HTTP_STEPS_COMPRESS_H
#define WEIR_HTTP_STEPS_COMPRESS_H

#include "http/http_parser.h"
#include "http/step.h"

extern const struct step_type step_compress;

/* Whether the media type of a Content-Type value (parameters ignored,
 * case-insensitive) matches a pattern: "type/subtype", or "type/" + "*"
 * for any subtype. Returns 1 or 0. */
int compress_type_match(const char *pattern, struct http_slice content_type);

#endif

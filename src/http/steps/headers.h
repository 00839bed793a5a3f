/* headers: the `headers` route step (request and response fields: set,
 * add, remove, with variables) and the field-list parsing respond uses. */
#ifndef WEIR_HTTP_STEPS_HEADERS_H
#define WEIR_HTTP_STEPS_HEADERS_H

#include <yaml.h>

#include "http/http_parser.h"
#include "http/step.h"

extern const struct step_type step_headers;

struct cfg_ctx;

/* Parses {NAME: VALUE, ...} into a new array of fields (*out, freed with
 * headers_cfg_free_fields); names are tokens and not framing fields weir
 * writes itself, values have no control characters. `what` names the map
 * in messages. Returns 0 or negative (ctx's error set). */
int headers_cfg_parse_fields(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                             struct http_header **out, size_t *n);
void headers_cfg_free_fields(struct http_header *fields, size_t n);

#endif

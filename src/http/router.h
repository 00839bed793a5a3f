/* router: picks the route of a request: the listener's routes in order,
 * first match wins; a route without match conditions matches everything. */
#ifndef WEIR_HTTP_ROUTER_H
#define WEIR_HTTP_ROUTER_H

#include "server/config.h"
#include "http/http_parser.h"

/* Returns the first route of `lst` whose conditions all hold for `msg`, or
 * NULL (the caller answers 404). Host compares case-insensitively without
 * the port; paths compare byte for byte on the path before '?'. */
const struct cfg_route *router_match(const struct cfg_listener *lst, const struct http_msg *msg);

#endif

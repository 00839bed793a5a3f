/* respond: the `respond` and `redirect` route targets: weir answers the
 * request itself. */
#ifndef WEIR_HTTP_STEPS_RESPOND_H
#define WEIR_HTTP_STEPS_RESPOND_H

#include "http/target.h"

extern const struct target_type target_respond;
extern const struct target_type target_redirect;

#endif

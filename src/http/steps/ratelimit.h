/* ratelimit: the `rate_limit` route step (local limits, exact across the
 * worker threads of one weir process). */
#ifndef WEIR_HTTP_STEPS_RATELIMIT_H
#define WEIR_HTTP_STEPS_RATELIMIT_H

#include "http/step.h"

extern const struct step_type step_rate_limit;

#endif

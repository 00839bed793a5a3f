/* cache: the `cache: NAME` route step (an RFC 9111 shared cache; the
 * caches themselves are declared under `caches:`, cache/cache_cfg.h). */
#ifndef WEIR_HTTP_STEPS_CACHE_H
#define WEIR_HTTP_STEPS_CACHE_H

#include "http/step.h"

extern const struct step_type step_cache;

#endif

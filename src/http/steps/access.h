/* access: the `access` route step (client address allow and deny lists). */
#ifndef WEIR_HTTP_STEPS_ACCESS_H
#define WEIR_HTTP_STEPS_ACCESS_H

#include "http/step.h"

extern const struct step_type step_access;

#endif

/* forward_auth: the `forward_auth` route step (an external service
 * decides whether a request goes on). */
#ifndef WEIR_HTTP_STEPS_FORWARD_AUTH_H
#define WEIR_HTTP_STEPS_FORWARD_AUTH_H

#include "http/step.h"

extern const struct step_type step_forward_auth;

#endif

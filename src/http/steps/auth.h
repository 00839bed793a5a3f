/* auth: the `auth` route step (API keys, HTTP Basic, JWT bearer tokens). */
#ifndef WEIR_HTTP_STEPS_AUTH_H
#define WEIR_HTTP_STEPS_AUTH_H

#include "http/step.h"

extern const struct step_type step_auth;

#endif

/* route_cfg: parsing an HTTP listener's routes (see route_cfg.c). The
 * functions are declared in core/config_parse.h, which the loader uses. */
#ifndef WEIR_HTTP_ROUTE_CFG_H
#define WEIR_HTTP_ROUTE_CFG_H

#include "core/config.h"

#endif

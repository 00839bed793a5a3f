/* protocols: the protocol table, the one place that registers what serves
 * a listener of each `protocol:` value. It sits above the server (which
 * names no protocol) and is handed to server_start() by main. */
#ifndef WEIR_PROTOCOLS_H
#define WEIR_PROTOCOLS_H

#include "server/server.h"

/* Indexed by enum cfg_protocol; every row has an accept hook. */
extern const struct server_protocol protocols[CFG_PROTOCOL_COUNT];

#endif

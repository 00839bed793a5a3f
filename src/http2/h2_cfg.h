/* h2_cfg: a listener's `http2:` key (HTTP/2 from clients, http2/h2_server.c).
 *
 *   http2: true             -> the defaults below
 *   http2: { max_concurrent_streams: 100, ... }
 *   http2: false / absent   -> off (NULL): HTTP/1.1 only
 *
 * On a TLS listener it makes ALPN offer h2 (before http/1.1); on a plain
 * listener it accepts h2c with prior knowledge (the connection preface). */
#ifndef WEIR_HTTP2_H2_CFG_H
#define WEIR_HTTP2_H2_CFG_H

#include <stdint.h>

#include "core/config_parse.h"

struct h2_cfg {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS, default 100 */
    uint32_t max_header_list;        /* decoded header list bytes per block, default 64k */
    uint32_t window;                 /* SETTINGS_INITIAL_WINDOW_SIZE for request bodies, default 256k */
    uint32_t max_resets;             /* RST_STREAM from a client per second, default 2 x streams */
    uint32_t max_control;            /* SETTINGS, PING or empty DATA frames per second, default 100 */
    uint32_t max_continuations;      /* CONTINUATION frames per header block, default 5 */
    uint64_t window_timeout_ms;      /* data pending on a zero window this long: reset, default 30s */
};

/* Parses `http2` of a listener (obj: struct cfg_listener). */
int h2_cfg_parse_listener(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
void h2_cfg_free(struct h2_cfg *c);

#endif

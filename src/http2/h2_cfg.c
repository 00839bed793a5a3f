/* h2_cfg: see h2_cfg.h. A boolean or a map of limits; false leaves the
 * listener HTTP/1.1 only. */
#include "http2/h2_cfg.h"

#include <stdlib.h>

#include "server/config.h"

static const struct h2_cfg h2_cfg_defaults = {
    .max_concurrent_streams = 100,
    .max_header_list = 64 << 10,
    .window = 256 << 10,
    .max_resets = 0, /* 0: 2 x max_concurrent_streams */
    .max_control = 100,
    .max_continuations = 5, /* Debian's nghttp2 1.52 (CVE-2024-28182 fix) stops at 8 */
    .window_timeout_ms = 30000,
};

static const struct cfg_key h2_cfg_keys[] = {
    CFG_FIELD("max_concurrent_streams", CFG_KIND_UINT, struct h2_cfg, max_concurrent_streams, 1, 10000),
    CFG_FIELD("max_header_list", CFG_KIND_SIZE, struct h2_cfg, max_header_list, 1024, 16u << 20),
    CFG_FIELD("window", CFG_KIND_SIZE, struct h2_cfg, window, 16384, (1u << 31) - 1),
    CFG_FIELD("max_resets", CFG_KIND_UINT, struct h2_cfg, max_resets, 1, 1000000),
    CFG_FIELD("max_control", CFG_KIND_UINT, struct h2_cfg, max_control, 1, 1000000),
    CFG_FIELD("max_continuations", CFG_KIND_UINT, struct h2_cfg, max_continuations, 1, 100000),
    CFG_FIELD("window_timeout", CFG_KIND_DURATION, struct h2_cfg, window_timeout_ms, 1, 86400000),
};
CFG_MAP_DEFINE(h2_cfg_map, "http2", h2_cfg_keys);

int h2_cfg_parse_listener(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    struct h2_cfg c = h2_cfg_defaults;
    int rc;
    h2_cfg_free(l->http2);
    l->http2 = NULL;
    if (v->type == YAML_SCALAR_NODE) {
        int on = 0;
        rc = cfg_parse_bool(ctx, v, "'http2' (true, false or a map)", &on);
        if (rc < 0 || !on)
            return rc;
    } else {
        rc = cfg_parse_map(ctx, v, &h2_cfg_map, &c, NULL);
        if (rc < 0)
            return rc;
    }
    if (c.max_resets == 0)
        c.max_resets = 2 * c.max_concurrent_streams;
    l->http2 = malloc(sizeof(*l->http2));
    if (!l->http2)
        return cfg_nomem(ctx);
    *l->http2 = c;
    return 0;
}

void h2_cfg_free(struct h2_cfg *c)
{
    free(c);
}

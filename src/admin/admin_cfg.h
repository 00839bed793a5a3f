/* admin_cfg: the top-level `admin:` section — where the admin API, the
 * /metrics endpoint and the dashboard listen, the token every call needs,
 * and the histogram buckets of the metrics registry. */
#ifndef WEIR_ADMIN_ADMIN_CFG_H
#define WEIR_ADMIN_ADMIN_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config.h"

#define CFG_ADMIN_MAX_BUCKETS 32
#define CFG_ADMIN_MAX_TOKEN 4096

struct cfg_ctx;

struct cfg_admin {
    char *listen;                  /* listen: HOST:PORT (default 127.0.0.1:9901) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *token_file;              /* token_file: path, or NULL */
    char *token;                   /* its first line, read at load; NULL: no token */
    double buckets[CFG_ADMIN_MAX_BUCKETS]; /* histogram_buckets, seconds, ascending */
    size_t n_buckets;              /* 0: the registry's defaults */
    uint32_t max_connections;      /* limits.connections (default 64) */
    uint64_t max_body_bytes;       /* limits.body (default 1m) */
    struct cfg_mark mark;          /* the section's map */
    struct cfg_mark listen_mark;   /* its listen value (or the map) */
};

/* The section table's row (server/config.c): parses `admin:` into
 * ((struct cfg *)root)->admin. */
int admin_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root);
/* Checks the admin address against the listeners'. */
int admin_cfg_resolve(struct cfg_ctx *ctx, void *root);
void admin_cfg_free(void *root);

#endif

/* store_cfg: the `stores:` section, weir's own connections for shared state
 * (one Redis, or a Redis Cluster given by seed addresses). The types are
 * plain data owned by the struct cfg snapshot; store.c copies what it needs.
 * Defaults and every key are documented in docs/configuration.md. */
#ifndef WEIR_STORE_STORE_CFG_H
#define WEIR_STORE_STORE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config.h"

struct cfg; /* server/config.h */

#define CFG_MAX_STORES 256
#define CFG_MAX_STORE_SEEDS 64
#define CFG_MAX_STORE_PENDING 1000000
#define CFG_MAX_STORE_REDIRECTS 16

struct cfg_store_server {
    char *address; /* as written: "127.0.0.1:6379" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct cfg_store {
    char *name;
    int cluster;                      /* 1: `cluster:` seeds, 0: one `redis:` server */
    struct cfg_store_server *servers; /* redis: one; cluster: the seeds */
    size_t n_servers;                 /* >= 1 */
    uint64_t connect_timeout_ms;      /* timeouts.connect: TCP connect + AUTH/SELECT, default 1s */
    uint64_t command_timeout_ms;      /* timeouts.command: submit to reply, default 1s */
    uint64_t reconnect_base_ms; /* reconnect.base: first delay after a failure, default 100ms */
    uint64_t reconnect_max_ms;  /* reconnect.max: the delay doubles up to this, default 5s */
    char *username;             /* AUTH username password (Redis 6 ACL), or NULL */
    char *password;             /* AUTH password, or NULL */
    uint32_t database;          /* SELECT n, single Redis only, default 0 */
    uint32_t max_pending;       /* commands queued per worker while connecting, default 1024 */
    uint32_t max_redirects;     /* MOVED/ASK followed per command, default 5 */
    int line, col;              /* the store's map */
    struct cfg_mark name_mark;
};

struct cfg_ctx;

/* Section row of server/config.c: parses the `stores` list (the value `v`
 * of the root key) into cfg->stores / cfg->n_stores of the struct cfg `obj`.
 * Returns 0, or a negative errno with the message in ctx (FILE:LINE:COLUMN).
 * On failure what was allocated stays in the cfg for store_cfg_free(). */
int store_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);

/* Section row: frees cfg->stores of the struct cfg `root` and what they own,
 * and leaves none. */
void store_cfg_free(void *root);

/* Returns the store named `name` (borrowed from cfg), or NULL. */
const struct cfg_store *store_cfg_find(const struct cfg *cfg, const char *name);

#endif

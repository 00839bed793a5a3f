/* l4_cfg: the listener keys of the L4 layer: what a `protocol: tcp`
 * listener forwards to (`cluster`, `sni` rules, `proxy_protocol` to the
 * upstream) and `accept_proxy`, which any listener may carry (a PROXY
 * header from a trusted front balancer). Plain data owned by the listener
 * of the struct cfg snapshot (server/config.h); NULL there when the
 * listener has none of these keys. Defaults in docs/configuration.md. */
#ifndef WEIR_L4_L4_CFG_H
#define WEIR_L4_L4_CFG_H

#include <stddef.h>
#include <yaml.h>

#include "core/cidr.h"
#include "core/config.h"

#define L4_MAX_SNI_RULES 1024
#define L4_MAX_TRUSTED 1024

/* One `sni:` rule: a server name ("a.example.com" or "*.example.com") and
 * the cluster its connections go to. */
struct l4_sni_rule {
    char *pattern;                 /* lower case */
    char *cluster_name;
    size_t cluster;                /* index into cfg->clusters, set by resolve */
    struct cfg_mark mark;
};

struct l4_cfg {
    char *cluster_name;            /* tcp: `cluster`, the default */
    size_t cluster;                /* its index into cfg->clusters (resolve) */
    struct cfg_mark cluster_mark;
    struct l4_sni_rule *sni;       /* tcp: `sni`, first match wins */
    size_t n_sni;
    struct cfg_mark sni_mark;
    int proxy_protocol;            /* tcp: `proxy_protocol` v1 | v2 to the upstream; 0 = off */
    struct cfg_mark proxy_protocol_mark;
    struct cidr *trusted;          /* any listener: `accept_proxy` networks */
    size_t n_trusted;
};

struct cfg;
struct cfg_listener;

/* Listener map keys (CFG_FUNC rows of server/config.c); `listener` is the
 * struct cfg_listener being parsed. Return 0 or a negative errno with the
 * message in ctx. */
int l4_cfg_parse_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);
int l4_cfg_parse_sni(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);
int l4_cfg_parse_proxy_protocol(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);
int l4_cfg_parse_accept_proxy(struct cfg_ctx *ctx, yaml_node_t *v, void *listener);

/* Checks listener l's L4 keys against its protocol (tcp needs `cluster`
 * and takes no `routes`; the others take no tcp key) and points them at
 * cfg's clusters. Returns 0 or a negative errno with the message in ctx. */
int l4_cfg_resolve_listener(struct cfg_ctx *ctx, const struct cfg *cfg, struct cfg_listener *l);

/* Frees l->l4 (NULL is fine) and leaves it NULL. */
void l4_cfg_free_listener(struct cfg_listener *l);

#endif

/* l4_cfg: see l4_cfg.h. The keys are parsed into one struct l4_cfg made on
 * the first of them; resolve checks them against the listener's protocol
 * once every key and every cluster is known. */
#include "l4/l4_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "server/config.h"

/* The listener's struct l4_cfg, made on first use. NULL: out of memory
 * (reported in ctx). */
static struct l4_cfg *l4_cfg_of(struct cfg_ctx *ctx, struct cfg_listener *l)
{
    if (!l->l4) {
        l->l4 = calloc(1, sizeof(*l->l4));
        if (!l->l4)
            cfg_nomem(ctx);
    }
    return l->l4;
}

int l4_cfg_parse_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *listener)
{
    struct l4_cfg *c = l4_cfg_of(ctx, listener);
    const char *s;
    if (!c)
        return -ENOMEM;
    int rc = cfg_text(ctx, v, "'cluster'", &s);
    if (rc < 0)
        return rc;
    c->cluster_mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &c->cluster_name);
}

int l4_cfg_parse_proxy_protocol(struct cfg_ctx *ctx, yaml_node_t *v, void *listener)
{
    static const char *const names[] = { "off", "v1", "v2" };
    struct l4_cfg *c = l4_cfg_of(ctx, listener);
    if (!c)
        return -ENOMEM;
    c->proxy_protocol_mark = cfg_mark_of(v);
    return cfg_parse_enum(ctx, v, "proxy_protocol", names, 3, &c->proxy_protocol);
}

/* ---- sni ---- */

/* A name as a rule may hold: a host name, or "*." and one. */
static int l4_sni_pattern_ok(const char *s)
{
    if (s[0] == '*') {
        if (s[1] != '.')
            return 0;
        s += 2;
    }
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int l4_parse_sni_match(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct l4_sni_rule *r = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int rc = cfg_text(ctx, v, "'match'", &s);
    if (rc < 0)
        return rc;
    if (!l4_sni_pattern_ok(s))
        return cfg_fail(ctx, v, "bad server name %s (expected a host name, or *. and a "
                                "domain: *.example.com)", cfg_quote(s, q));
    rc = cfg_strdup(ctx, s, &r->pattern);
    if (rc < 0)
        return rc;
    for (char *p = r->pattern; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

static int l4_parse_sni_cluster(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct l4_sni_rule *r = obj;
    const char *s;
    r->mark = cfg_mark_of(v);
    int rc = cfg_text(ctx, v, "'cluster'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &r->cluster_name);
}

static const struct cfg_key l4_sni_keys[] = {
    CFG_FUNC("match", l4_parse_sni_match, true),
    CFG_FUNC("cluster", l4_parse_sni_cluster, true),
};
CFG_MAP_DEFINE(l4_sni_map, "sni rule", l4_sni_keys);

static int l4_parse_sni_rule(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    return cfg_parse_map(ctx, node, &l4_sni_map, &((struct l4_cfg *)obj)->sni[i], NULL);
}

int l4_cfg_parse_sni(struct cfg_ctx *ctx, yaml_node_t *v, void *listener)
{
    struct l4_cfg *c = l4_cfg_of(ctx, listener);
    static const struct cfg_list list = { "'sni'", "sni rule", sizeof(struct l4_sni_rule),
                                          L4_MAX_SNI_RULES };
    void *items;
    if (!c)
        return -ENOMEM;
    c->sni_mark = cfg_mark_of(v);
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_sni);
    if (rc < 0)
        return rc;
    c->sni = items;
    return cfg_list_each(ctx, v, l4_parse_sni_rule, c);
}

/* ---- accept_proxy ---- */

static int l4_parse_trusted(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return cfg_parse_network(ctx, v, &((struct l4_cfg *)obj)->trusted[i]);
}

int l4_cfg_parse_accept_proxy(struct cfg_ctx *ctx, yaml_node_t *v, void *listener)
{
    struct l4_cfg *c = l4_cfg_of(ctx, listener);
    static const struct cfg_list list = { "'accept_proxy'", "network", sizeof(struct cidr),
                                          L4_MAX_TRUSTED };
    void *items;
    if (!c)
        return -ENOMEM;
    int rc = cfg_list_new(ctx, v, &list, &items, &c->n_trusted);
    if (rc < 0)
        return rc;
    c->trusted = items;
    return cfg_list_each(ctx, v, l4_parse_trusted, c);
}

/* ---- resolve ---- */

static int l4_find_cluster(struct cfg_ctx *ctx, const struct cfg *cfg, const char *name,
                           struct cfg_mark at, size_t *out)
{
    char q[CFG_QUOTE_SIZE];
    const struct cfg_cluster *cc = cfg_find_cluster(cfg, name);
    if (!cc)
        return cfg_fail_mark(ctx, at, "listener names cluster %s which is not defined in "
                                      "'clusters'", cfg_quote(name, q));
    *out = (size_t)(cc - cfg->clusters);
    return 0;
}

/* A listener of another protocol carries a tcp-only key. */
static int l4_cfg_not_tcp(struct cfg_ctx *ctx, const struct cfg_listener *l)
{
    const struct l4_cfg *c = l->l4;
    if (c->cluster_name)
        return cfg_fail_mark(ctx, c->cluster_mark, "'cluster' on a listener is used only with "
                                                    "protocol tcp (http routes name a cluster)");
    if (c->sni)
        return cfg_fail_mark(ctx, c->sni_mark, "'sni' is used only with protocol tcp");
    if (c->proxy_protocol)
        return cfg_fail_mark(ctx, c->proxy_protocol_mark, "'proxy_protocol' is used only with "
                                                          "protocol tcp");
    return 0;
}

int l4_cfg_resolve_listener(struct cfg_ctx *ctx, const struct cfg *cfg, struct cfg_listener *l)
{
    struct cfg_mark at = { l->line, l->col };
    char q[CFG_QUOTE_SIZE];

    if (l->protocol != CFG_PROTOCOL_TCP)
        return l->l4 ? l4_cfg_not_tcp(ctx, l) : 0;
    if (l->n_routes > 0 || l->redis_cluster_name)
        return cfg_fail_mark(ctx, at, "listener %s has protocol tcp: it takes 'cluster' (and "
                                      "'sni'), not 'routes' or 'redis_cluster'",
                             cfg_quote(l->name, q));
    if (!l->l4 || !l->l4->cluster_name)
        return cfg_fail_mark(ctx, at, "listener is missing required key 'cluster' (protocol tcp)");
    struct l4_cfg *c = l->l4;
    int rc = l4_find_cluster(ctx, cfg, c->cluster_name, c->cluster_mark, &c->cluster);
    for (size_t i = 0; rc == 0 && i < c->n_sni; i++)
        rc = l4_find_cluster(ctx, cfg, c->sni[i].cluster_name, c->sni[i].mark, &c->sni[i].cluster);
    return rc;
}

void l4_cfg_free_listener(struct cfg_listener *l)
{
    struct l4_cfg *c = l->l4;
    if (!c)
        return;
    free(c->cluster_name);
    for (size_t i = 0; i < c->n_sni; i++) {
        free(c->sni[i].pattern);
        free(c->sni[i].cluster_name);
    }
    free(c->sni);
    free(c->trusted);
    free(c);
    l->l4 = NULL;
}

/* access: lets a request through or refuses it by the client's address.
 *
 *   access: { allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.1.2.3], status: 403 }
 *
 *   peer address ── in a deny network? ──yes──> refuse (status, default 403)
 *                        │ no
 *                   allow list empty? ──yes──> through
 *                        │ no
 *                   in an allow network? ──yes──> through, else refuse
 *
 * Deny wins over allow, whatever order the file lists them in. The address
 * is the connection's peer: a forwarded-for field says what a client
 * claims, not who connected, and is not read here. Networks are parsed at
 * load (core/cidr.h); a request costs a parse of the peer's text and a
 * scan of the lists, with no allocation. */
#include "http/steps/access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/config_parse.h"
#include "http/txn.h"

#define ACCESS_MAX_NETWORKS 4096

struct access_cfg {
    struct cidr *allow, *deny;
    size_t n_allow, n_deny;
    uint32_t status;
    char *body;                    /* "403 Forbidden\n" */
    size_t body_len;
};

static const struct http_header access_headers[] = {
    { { "Content-Type", 12 }, { "text/plain", 10 } },
};

/* ---- configuration ---- */

static int access_parse_allow_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return cfg_parse_network(ctx, v, &((struct access_cfg *)obj)->allow[i]);
}

static int access_parse_deny_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    return cfg_parse_network(ctx, v, &((struct access_cfg *)obj)->deny[i]);
}

static int access_parse_allow(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct access_cfg *ac = obj;
    static const struct cfg_list list = { "'allow'", "network", sizeof(struct cidr),
                                          ACCESS_MAX_NETWORKS };
    void *items;
    int rc = cfg_list_new(ctx, v, &list, &items, &ac->n_allow);
    if (rc < 0)
        return rc;
    ac->allow = items;
    return cfg_list_each(ctx, v, access_parse_allow_item, ac);
}

static int access_parse_deny(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct access_cfg *ac = obj;
    static const struct cfg_list list = { "'deny'", "network", sizeof(struct cidr),
                                          ACCESS_MAX_NETWORKS };
    void *items;
    int rc = cfg_list_new(ctx, v, &list, &items, &ac->n_deny);
    if (rc < 0)
        return rc;
    ac->deny = items;
    return cfg_list_each(ctx, v, access_parse_deny_item, ac);
}

static const struct cfg_key access_keys[] = {
    CFG_FUNC("allow", access_parse_allow, false),
    CFG_FUNC("deny", access_parse_deny, false),
    CFG_FIELD("status", CFG_KIND_UINT, struct access_cfg, status, 400, 599),
};
CFG_MAP_DEFINE(access_map, "access", access_keys);

static int access_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct access_cfg *ac = cfg_calloc_fn(1, sizeof(*ac));
    if (ac == NULL)
        return cfg_nomem(ctx);
    *out = ac;
    ac->status = 403;
    int rc = cfg_parse_map(ctx, v, &access_map, ac, NULL);
    if (rc < 0)
        return rc;
    if (ac->n_allow == 0 && ac->n_deny == 0)
        return cfg_fail(ctx, v, "access needs a non-empty 'allow' or 'deny' list of networks");
    char body[64];
    int n = snprintf(body, sizeof(body), "%u %s\n", ac->status, http_status_reason((int)ac->status));
    if ((rc = cfg_strdup(ctx, body, &ac->body)) < 0)
        return rc;
    ac->body_len = (size_t)n;
    return 0;
}

static void access_free(void *p)
{
    struct access_cfg *ac = p;
    free(ac->allow);
    free(ac->deny);
    free(ac->body);
    free(ac);
}

/* ---- per request ---- */

static enum step_result access_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct access_cfg *ac = cfg;
    struct cidr addr;
    /* a peer weir cannot read (a unix socket, later) matches no network */
    int known = cidr_parse_addr(txn_client_ip(t), &addr) == 0;
    int pass = known && !cidr_list_contains(ac->deny, ac->n_deny, &addr) &&
               (ac->n_allow == 0 || cidr_list_contains(ac->allow, ac->n_allow, &addr));
    if (!known && ac->n_allow == 0 && ac->n_deny > 0)
        pass = 1; /* only a deny list: what it cannot name goes through */
    if (pass)
        return STEP_NEXT;
    /* not logged: the access log has the status, and a flood must not fill the error log */
    txn_respond(t, (int)ac->status, access_headers, 1, ac->body, ac->body_len);
    return STEP_RESPOND;
}

const struct step_type step_access = {
    .key = "access",
    .phase = STEP_PHASE_ACCESS,
    .parse = access_parse,
    .free_cfg = access_free,
    .on_request = access_on_request,
};

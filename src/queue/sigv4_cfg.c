/* sigv4_cfg: parses `sqs_auth:`.
 *
 *   sqs_auth map -- keys list -- key map (access_key, secret_key)
 *                `- max_skew (duration, default 15m)
 *
 * Access keys are unique. Nothing here verifies anything (sigv4.c). */
#include "queue/sigv4_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "server/config.h"

static int sigv4_cfg_access(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_sqs_key *k = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    int rc = cfg_text(ctx, v, "'access_key'", &s);
    if (rc < 0)
        return rc;
    size_t len = strlen(s);
    if (len == 0 || len > 128 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != len)
        return cfg_fail(ctx, v, "bad access key %s: use 1 to 128 letters or digits",
                        cfg_quote(s, q));
    k->mark = cfg_mark_of(v);
    return cfg_strdup(ctx, s, &k->access_key);
}

static int sigv4_cfg_secret_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_sqs_key *k = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'secret_key'", &s);
    if (rc < 0)
        return rc;
    if (s[0] == 0)
        return cfg_fail(ctx, v, "'secret_key' must not be empty");
    return cfg_strdup(ctx, s, &k->secret_key);
}

static const struct cfg_key sigv4_cfg_key_keys[] = {
    CFG_FUNC("access_key", sigv4_cfg_access, true),
    CFG_FUNC("secret_key", sigv4_cfg_secret_key, true),
};
CFG_MAP_DEFINE(sigv4_cfg_key_map, "sqs_auth key", sigv4_cfg_key_keys);

static int sigv4_cfg_key_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg_sqs_auth *a = obj;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_parse_map(ctx, node, &sigv4_cfg_key_map, &a->keys[i], NULL);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < i; j++)
        if (strcmp(a->keys[j].access_key, a->keys[i].access_key) == 0)
            return cfg_fail_mark(ctx, a->keys[i].mark, "duplicate access key %s",
                                 cfg_quote(a->keys[i].access_key, q));
    return 0;
}

static int sigv4_cfg_keys(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_sqs_auth *a = obj;
    void *items;
    static const struct cfg_list list = {"'keys'", "key", sizeof(struct cfg_sqs_key),
                                         CFG_MAX_SQS_KEYS};
    int rc = cfg_list_new(ctx, v, &list, &items, &a->n_keys);
    if (rc < 0)
        return rc;
    a->keys = items;
    return cfg_list_each(ctx, v, sigv4_cfg_key_item, a);
}

static const struct cfg_key sigv4_cfg_keys_[] = {
    CFG_FUNC("keys", sigv4_cfg_keys, true),
    CFG_FIELD("max_skew", CFG_KIND_DURATION, struct cfg_sqs_auth, max_skew_ms, 1000, 3600000),
};
CFG_MAP_DEFINE(sigv4_cfg_map, "sqs_auth", sigv4_cfg_keys_);

int sigv4_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    if ((cfg->sqs_auth = cfg_calloc_fn(1, sizeof(*cfg->sqs_auth))) == NULL)
        return cfg_nomem(ctx);
    cfg->sqs_auth->max_skew_ms = 15 * 60 * 1000;
    return cfg_parse_map(ctx, v, &sigv4_cfg_map, cfg->sqs_auth, NULL);
}

void sigv4_cfg_free(void *root)
{
    struct cfg *cfg = root;
    struct cfg_sqs_auth *a = cfg->sqs_auth;
    if (a == NULL)
        return;
    for (size_t i = 0; a->keys && i < a->n_keys; i++) {
        free(a->keys[i].access_key);
        if (a->keys[i].secret_key)
            memset(a->keys[i].secret_key, 0, strlen(a->keys[i].secret_key));
        free(a->keys[i].secret_key);
    }
    free(a->keys);
    free(a);
    cfg->sqs_auth = NULL;
}

const char *sigv4_cfg_secret(const struct cfg_sqs_auth *a, const char *key, size_t len)
{
    for (size_t i = 0; i < a->n_keys; i++)
        if (strlen(a->keys[i].access_key) == len && memcmp(a->keys[i].access_key, key, len) == 0)
            return a->keys[i].secret_key;
    return NULL;
}

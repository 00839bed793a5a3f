/* sigv4_cfg: the `sqs_auth:` section: the access keys whose Signature V4
 * the SQS listeners verify (sqs_auth.c, sigv4.c). Without the section any
 * credentials pass. Keys and defaults: docs/configuration.md#sqs_auth. */
#ifndef WEIR_QUEUE_SIGV4_CFG_H
#define WEIR_QUEUE_SIGV4_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/config.h"

#define CFG_MAX_SQS_KEYS 1024

struct cfg_sqs_key {
    char *access_key; /* 1..128 of A-Za-z0-9 */
    char *secret_key;
    struct cfg_mark mark;
};

struct cfg_sqs_auth {
    struct cfg_sqs_key *keys;
    size_t n_keys;
    uint64_t max_skew_ms; /* X-Amz-Date this close to now, default 15m */
};

struct cfg_ctx;

/* Section row of server/config.c: `sqs_auth` into cfg->sqs_auth. */
int sigv4_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *obj);
void sigv4_cfg_free(void *root);

/* The secret of access key key[0..len) in a, or NULL. */
const char *sigv4_cfg_secret(const struct cfg_sqs_auth *a, const char *key, size_t len);

#endif

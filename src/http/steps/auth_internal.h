/* auth_internal: what the `auth` step (auth.c) and its methods
 * (auth_key.c, ...) share. A method is a row: its key under `auth:`, how
 * its map is parsed and freed, the scheme it names in WWW-Authenticate and
 * how it checks a request. */
#ifndef WEIR_HTTP_STEPS_AUTH_INTERNAL_H
#define WEIR_HTTP_STEPS_AUTH_INTERNAL_H

#include <stddef.h>
#include <yaml.h>

#include "core/config_parse.h"
#include "http/http_parser.h"

struct txn;

enum auth_verdict {
    AUTH_OK,        /* *identity is who the client is (memory valid until the txn ends) */
    AUTH_MISSING,   /* no credentials: 401 */
    AUTH_BAD,       /* credentials that do not verify: 401 */
    AUTH_FORBIDDEN, /* valid credentials, not allowed here: 403 */
    AUTH_ERROR,     /* weir could not decide (arena full, out of memory): 500 */
};

struct auth_method {
    const char *key;       /* "api_key" */
    const char *scheme;    /* the WWW-Authenticate scheme: "ApiKey", "Basic", "Bearer" */
    /* Parses the method's map into *out (freed with free_cfg even on
     * failure). Returns 0 or negative with ctx's error set. */
    int (*parse)(struct cfg_ctx *ctx, yaml_node_t *value, void **out);
    void (*free_cfg)(void *cfg);
    /* Extra WWW-Authenticate parameters (after realm), or NULL. */
    const char *(*challenge)(const void *cfg);
    /* Checks the request's credentials. On AUTH_OK sets *identity. */
    enum auth_verdict (*check)(struct txn *t, const void *cfg, struct http_slice *identity);
};

extern const struct auth_method auth_method_api_key;
extern const struct auth_method auth_method_basic;
extern const struct auth_method auth_method_jwt;

/* ---- helpers for the methods (auth.c) ---- */

#define AUTH_MAX_FILE_BYTES (16u << 20)

/* Makes room for one more element in *arr (n used, *cap allocated, of
 * elem bytes each), doubling from 16. Returns 0 or -ENOMEM (*arr kept). */
int auth_grow(void **arr, size_t n, size_t *cap, size_t elem);
/* Whether s[0..n) may be sent as an identity in a header: 1 to 255 visible
 * ASCII bytes or spaces, no leading or trailing space. */
int auth_identity_ok(const char *s, size_t n);
/* Compares a[0..n) and b[0..n) in time that depends on n only. Returns 0
 * when equal. */
int auth_ct_compare(const void *a, const void *b, size_t n);

#endif

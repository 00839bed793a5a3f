/* auth: the `auth` route step. It checks the client's credentials with one
 * method and either lets the request go on, carrying who the client is,
 * or answers for the backend.
 *
 *   auth: { api_key: {...} | basic: {...} | jwt: {...},
 *           identity_header: X-Auth-Identity, realm: weir }
 *
 *   request --> method.check --> OK:        identity -> txn_set_identity
 *                                           (rate_limit `identity` key) and
 *                                           identity_header set on the request
 *                            --> MISSING/BAD: 401 + WWW-Authenticate
 *                            --> FORBIDDEN:   403
 *                            --> ERROR:       500
 *
 * The client's own identity_header fields are always replaced (set removes
 * every copy), so a backend can trust it. The answers are built once, at
 * load, in configuration memory. Checks run on the worker thread, in
 * on_request: nothing here waits. */
#include "http/steps/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http_edit.h"
#include "http/steps/auth_internal.h"
#include "http/txn.h"

#define AUTH_DEFAULT_IDENTITY_HEADER "X-Auth-Identity"
#define AUTH_DEFAULT_REALM "weir"
#define AUTH_MAX_REALM 128

/* One answer weir gives (401 missing, 401 bad, 403). */
struct auth_answer {
    int status;
    struct http_header headers[2]; /* WWW-Authenticate (401 only), Content-Type */
    size_t n_headers;
    char *challenge;
    const char *body;
};

enum auth_answer_kind { AUTH_ANSWER_MISSING, AUTH_ANSWER_BAD, AUTH_ANSWER_FORBIDDEN,
                        AUTH_ANSWER_COUNT };

struct auth_cfg {
    const struct auth_method *method;
    void *method_cfg;
    struct cfg_mark method_mark;
    char *identity_header;
    char *realm;
    struct auth_answer answers[AUTH_ANSWER_COUNT];
};

/* ---- helpers for the methods ---- */

int auth_ct_compare(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d != 0;
}

int auth_identity_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255 || s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int auth_grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * elem);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- configuration ---- */

static int auth_parse_method(struct cfg_ctx *ctx, yaml_node_t *v, struct auth_cfg *ac,
                             const struct auth_method *m)
{
    if (ac->method != NULL)
        return cfg_fail(ctx, v, "auth has two methods, '%s' (at %d:%d) and '%s'; a route checks "
                                "one", ac->method->key, ac->method_mark.line,
                        ac->method_mark.col, m->key);
    ac->method = m;
    ac->method_mark = cfg_mark_of(v);
    return m->parse(ctx, v, &ac->method_cfg);
}

static int auth_parse_api_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return auth_parse_method(ctx, v, obj, &auth_method_api_key);
}

static int auth_parse_basic(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return auth_parse_method(ctx, v, obj, &auth_method_basic);
}

static int auth_parse_jwt(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return auth_parse_method(ctx, v, obj, &auth_method_jwt);
}

static int auth_parse_identity_header(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct auth_cfg *ac = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "'identity_header'", &s);
    if (rc < 0)
        return rc;
    if (!cfg_is_token(s) || http_edit_reserved(s, strlen(s)))
        return cfg_fail(ctx, v, "%s cannot carry the identity", cfg_quote(s, q));
    free(ac->identity_header);
    ac->identity_header = NULL;
    return cfg_strdup(ctx, s, &ac->identity_header);
}

static int auth_parse_realm(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct auth_cfg *ac = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'realm'", &s);
    if (rc < 0)
        return rc;
    if (strlen(s) > AUTH_MAX_REALM)
        return cfg_fail(ctx, v, "'realm' is longer than %d bytes", AUTH_MAX_REALM);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e || *c == '"' || *c == '\\')
            return cfg_fail(ctx, v, "'realm' must be printable ASCII without '\"' or '\\'");
    free(ac->realm);
    ac->realm = NULL;
    return cfg_strdup(ctx, s, &ac->realm);
}

static const struct cfg_key auth_keys[] = {
    CFG_FUNC("api_key", auth_parse_api_key, false),
    CFG_FUNC("basic", auth_parse_basic, false),
    CFG_FUNC("jwt", auth_parse_jwt, false),
    CFG_FUNC("identity_header", auth_parse_identity_header, false),
    CFG_FUNC("realm", auth_parse_realm, false),
};
CFG_MAP_DEFINE(auth_map, "auth", auth_keys);

/* Builds answer k (status, WWW-Authenticate for 401s, body). */
static int auth_build_answer(struct cfg_ctx *ctx, struct auth_cfg *ac, enum auth_answer_kind k)
{
    static const struct http_slice ctype_name = { "Content-Type", 12 };
    static const struct http_slice ctype = { "text/plain", 10 };
    static const struct http_slice www = { "WWW-Authenticate", 16 };
    struct auth_answer *a = &ac->answers[k];
    a->status = k == AUTH_ANSWER_FORBIDDEN ? 403 : 401;
    a->body = k == AUTH_ANSWER_FORBIDDEN ? "forbidden\n" : "unauthorized\n";
    if (k != AUTH_ANSWER_FORBIDDEN) {
        const char *extra = ac->method->challenge ? ac->method->challenge(ac->method_cfg) : NULL;
        const char *err = k == AUTH_ANSWER_BAD && strcmp(ac->method->scheme, "Bearer") == 0
                              ? ", error=\"invalid_token\"" : "";
        char buf[512];
        snprintf(buf, sizeof(buf), "%s realm=\"%s\"%s%s%s", ac->method->scheme, ac->realm,
                 extra ? ", " : "", extra ? extra : "", err);
        int rc = cfg_strdup(ctx, buf, &a->challenge);
        if (rc < 0)
            return rc;
        a->headers[a->n_headers++] = (struct http_header){ www, { a->challenge, strlen(buf) } };
    }
    a->headers[a->n_headers++] = (struct http_header){ ctype_name, ctype };
    return 0;
}

static int auth_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct auth_cfg *ac = cfg_calloc_fn(1, sizeof(*ac));
    if (ac == NULL)
        return cfg_nomem(ctx);
    *out = ac;
    int rc = cfg_parse_map(ctx, v, &auth_map, ac, NULL);
    if (rc < 0)
        return rc;
    if (ac->method == NULL)
        return cfg_fail(ctx, v, "auth needs a method: api_key, basic or jwt");
    if (ac->identity_header == NULL &&
        (rc = cfg_strdup(ctx, AUTH_DEFAULT_IDENTITY_HEADER, &ac->identity_header)) < 0)
        return rc;
    if (ac->realm == NULL && (rc = cfg_strdup(ctx, AUTH_DEFAULT_REALM, &ac->realm)) < 0)
        return rc;
    for (int k = 0; k < AUTH_ANSWER_COUNT && rc == 0; k++)
        rc = auth_build_answer(ctx, ac, (enum auth_answer_kind)k);
    return rc;
}

static void auth_free(void *p)
{
    struct auth_cfg *ac = p;
    if (ac == NULL)
        return;
    if (ac->method != NULL && ac->method_cfg != NULL)
        ac->method->free_cfg(ac->method_cfg);
    for (int k = 0; k < AUTH_ANSWER_COUNT; k++)
        free(ac->answers[k].challenge);
    free(ac->identity_header);
    free(ac->realm);
    free(ac);
}

/* ---- per request ---- */

static enum step_result auth_answer(struct txn *t, const struct auth_cfg *ac,
                                    enum auth_answer_kind k)
{
    const struct auth_answer *a = &ac->answers[k];
    txn_respond(t, a->status, a->headers, a->n_headers, a->body, strlen(a->body));
    return STEP_RESPOND;
}

static enum step_result auth_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct auth_cfg *ac = cfg;
    struct http_slice id = { NULL, 0 };
    switch (ac->method->check(t, ac->method_cfg, &id)) {
    case AUTH_OK:
        break;
    case AUTH_MISSING:
        return auth_answer(t, ac, AUTH_ANSWER_MISSING);
    case AUTH_BAD:
        return auth_answer(t, ac, AUTH_ANSWER_BAD);
    case AUTH_FORBIDDEN:
        return auth_answer(t, ac, AUTH_ANSWER_FORBIDDEN);
    default:
        return STEP_ERROR;
    }
    if (txn_set_identity(t, id.p, id.len) < 0)
        goto full;
    struct http_slice name = { ac->identity_header, strlen(ac->identity_header) };
    if (http_edit_set(t->req, name, txn_identity(t)) < 0)
        goto full;
    return STEP_NEXT;
full:
    log_warn("route %s: no room for the identity the auth step forwards", txn_route_name(t));
    return STEP_ERROR;
}

const struct step_type step_auth = {
    .key = "auth",
    .phase = STEP_PHASE_AUTH,
    .parse = auth_parse,
    .free_cfg = auth_free,
    .on_request = auth_on_request,
};

/* auth_jwt: JWT bearer tokens (RFC 7519, RFC 6750), the `jwt` method of
 * the auth step.
 *
 *   jwt: { secret: ..., key_file: pub.pem, jwks: jwks.json,
 *          algorithms: [RS256], issuer: ..., audience: [...], clock_skew: 30s,
 *          require: { scope: orders:write }, claims_to_headers: { email: X-Email },
 *          identity_claim: sub }
 *
 *   "Authorization: Bearer T" -> jwt_parse (jwt.c) -> alg known and allowed
 *     -> keys: by "kid" when the token names one, else every key;
 *        only keys of the algorithm's own kind (an HMAC secret for HS*, an
 *        RSA key for RS and PS, P-256 for ES256, P-384 for ES384, Ed25519
 *        for EdDSA), so an HS token is never checked against a public key
 *        ("algorithm confusion") and "none" matches nothing
 *     -> signature -> exp, nbf (with clock_skew), iss, aud -> 401 if not
 *     -> require -> 403 if not
 *     -> identity_claim is the identity; claims_to_headers set on the request
 *
 * Keys are loaded with the configuration (files read again on reload) into
 * OpenSSL EVP_PKEYs shared read-only by all workers; verifying with a
 * shared EVP_PKEY from several threads is safe in OpenSSL 3. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/base64.h"
#include "http/http_edit.h"
#include "http/steps/auth_internal.h"
#include "http/steps/jwt.h"
#include "http/txn.h"

#define JWT_MAX_KEYS 256
#define JWT_MAX_CLAIM_RULES 32
#define JWT_MAX_AUDIENCES 32
#define JWT_MIN_RSA_BITS 2048
#define JWT_MIN_SECRET 32
#define JWT_DEFAULT_SKEW_MS 30000

#define JWT_KIND_LIST(X) \
    X(JWT_KIND_HMAC, "HMAC secret") \
    X(JWT_KIND_RSA, "RSA") \
    X(JWT_KIND_P256, "EC P-256") \
    X(JWT_KIND_P384, "EC P-384") \
    X(JWT_KIND_ED25519, "Ed25519")
#define JWT_ENUM(e, s) e,
enum jwt_kind { JWT_KIND_LIST(JWT_ENUM) JWT_KIND_COUNT };
#undef JWT_ENUM

/* name, key kind, digest, RSA-PSS */
#define JWT_ALG_LIST(X) \
    X(JWT_HS256, "HS256", JWT_KIND_HMAC, EVP_sha256, 0) \
    X(JWT_HS384, "HS384", JWT_KIND_HMAC, EVP_sha384, 0) \
    X(JWT_HS512, "HS512", JWT_KIND_HMAC, EVP_sha512, 0) \
    X(JWT_RS256, "RS256", JWT_KIND_RSA, EVP_sha256, 0) \
    X(JWT_RS384, "RS384", JWT_KIND_RSA, EVP_sha384, 0) \
    X(JWT_RS512, "RS512", JWT_KIND_RSA, EVP_sha512, 0) \
    X(JWT_PS256, "PS256", JWT_KIND_RSA, EVP_sha256, 1) \
    X(JWT_PS384, "PS384", JWT_KIND_RSA, EVP_sha384, 1) \
    X(JWT_PS512, "PS512", JWT_KIND_RSA, EVP_sha512, 1) \
    X(JWT_ES256, "ES256", JWT_KIND_P256, EVP_sha256, 0) \
    X(JWT_ES384, "ES384", JWT_KIND_P384, EVP_sha384, 0) \
    X(JWT_EDDSA, "EdDSA", JWT_KIND_ED25519, NULL, 0)
#define JWT_ENUM(e, s, k, md, pss) e,
enum jwt_alg { JWT_ALG_LIST(JWT_ENUM) JWT_ALG_COUNT };
#undef JWT_ENUM

struct jwt_alg_info {
    const char *name;
    enum jwt_kind kind;
    const EVP_MD *(*md)(void);
    int pss;
};
#define JWT_ROW(e, s, k, md, pss) { s, k, md, pss },
static const struct jwt_alg_info jwt_algs[] = { JWT_ALG_LIST(JWT_ROW) };
#undef JWT_ROW

struct jwt_key {
    enum jwt_kind kind;
    char *kid;                 /* NULL: matches tokens without "kid" and any "kid" */
    int alg;                   /* a JWK's "alg", or -1 */
    unsigned char *secret;     /* HMAC */
    size_t secret_len;
    EVP_PKEY *pkey;            /* the others */
};

struct jwt_pair {              /* require: claim -> value; claims_to_headers: claim -> header */
    char *claim, *value;
};

struct jwt_cfg {
    struct jwt_key keys[JWT_MAX_KEYS];
    size_t n_keys;
    unsigned algorithms;       /* bit per enum jwt_alg allowed; 0 until parsed */
    char *issuer;
    char *audiences[JWT_MAX_AUDIENCES];
    size_t n_audiences;
    uint64_t clock_skew_ms;
    struct jwt_pair rules[JWT_MAX_CLAIM_RULES];
    size_t n_rules;
    struct jwt_pair copies[JWT_MAX_CLAIM_RULES];
    size_t n_copies;
    char *identity_claim;
};

static int jwt_alg_find(const char *name)
{
    for (int i = 0; i < JWT_ALG_COUNT; i++)
        if (strcmp(jwt_algs[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- keys ---- */

static struct jwt_key *jwt_key_new(struct cfg_ctx *ctx, const yaml_node_t *v, struct jwt_cfg *jc)
{
    if (jc->n_keys == JWT_MAX_KEYS) {
        cfg_fail(ctx, v, "too many keys (at most %d)", JWT_MAX_KEYS);
        return NULL;
    }
    struct jwt_key *k = &jc->keys[jc->n_keys++];
    k->alg = -1;
    return k;
}

/* The kind of a public key, or -1 when weir does not verify with it. */
static int jwt_pkey_kind(EVP_PKEY *pk, const char **why)
{
    char group[64] = "";
    size_t glen = 0;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pk) < JWT_MIN_RSA_BITS)
            return *why = "RSA keys shorter than 2048 bits are refused", -1;
        return JWT_KIND_RSA;
    case EVP_PKEY_ED25519:
        return JWT_KIND_ED25519;
    case EVP_PKEY_EC:
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen);
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            return JWT_KIND_P256;
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            return JWT_KIND_P384;
        return *why = "EC keys must be on P-256 or P-384", -1;
    default:
        return *why = "not an RSA, EC or Ed25519 public key", -1;
    }
}

static int jwt_parse_secret(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'secret'", &s);
    if (rc < 0)
        return rc;
    if (strlen(s) < JWT_MIN_SECRET)
        return cfg_fail(ctx, v, "'secret' must be at least %d bytes (RFC 7518 3.2)",
                        JWT_MIN_SECRET);
    struct jwt_key *k = jwt_key_new(ctx, v, obj);
    if (k == NULL)
        return -EINVAL;
    k->kind = JWT_KIND_HMAC;
    k->secret_len = strlen(s);
    if ((k->secret = (unsigned char *)strdup(s)) == NULL)
        return cfg_nomem(ctx);
    return 0;
}

static int jwt_parse_key_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *path, *why = NULL;
    char *text;
    size_t len;
    int rc = cfg_text(ctx, v, "'key_file'", &path);
    if (rc < 0 || (rc = cfg_read_near(ctx, v, path, AUTH_MAX_FILE_BYTES, &text, &len)) < 0)
        return rc;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    int count = 0;
    EVP_PKEY *pk;
    while (rc == 0 && bio != NULL && (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL) {
        int kind = jwt_pkey_kind(pk, &why);
        struct jwt_key *k = kind < 0 ? NULL : jwt_key_new(ctx, v, obj);
        if (k == NULL) {
            EVP_PKEY_free(pk);
            rc = kind < 0 ? cfg_fail(ctx, v, "key_file: %s", why) : -EINVAL;
            break;
        }
        k->kind = (enum jwt_kind)kind;
        k->pkey = pk;
        count++;
    }
    BIO_free(bio);
    free(text);
    if (rc == 0 && count == 0)
        rc = cfg_fail(ctx, v, "key_file holds no PEM public key (\"BEGIN PUBLIC KEY\")");
    return rc;
}

/* Decodes base64url member `name` of a JWK into a new buffer. */
static unsigned char *jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    unsigned char *buf = malloc(BASE64_DECODED_MAX(n) + 1);
    ssize_t l = buf ? base64url_decode(s, n, buf, BASE64_DECODED_MAX(n) + 1) : -1;
    if (l <= 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)l;
    return buf;
}

/* Builds a public key from OpenSSL parameters. Returns it or NULL. */
static EVP_PKEY *jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (params == NULL || pc == NULL || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(jwk, "n", &nl), *e = jwk_bytes(jwk, "e", &el);
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        pk = jwk_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pk;
}

static EVP_PKEY *jwk_ec(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t size = crv && strcmp(crv, "P-256") == 0 ? 32 : crv && strcmp(crv, "P-384") == 0 ? 48 : 0;
    size_t xl = 0, yl = 0;
    unsigned char *x = jwk_bytes(jwk, "x", &xl), *y = jwk_bytes(jwk, "y", &yl);
    unsigned char point[1 + 2 * 48];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (size && x && y && xl == size && yl == size && bld) {
        point[0] = 4; /* uncompressed: 04 | x | y (SEC 1 2.3.3) */
        memcpy(point + 1, x, size);
        memcpy(point + 1 + size, y, size);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            size == 32 ? "prime256v1" : "secp384r1", 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             1 + 2 * size) == 1)
            pk = jwk_fromdata("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pk;
}

static EVP_PKEY *jwk_okp(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t xl = 0;
    unsigned char *x = crv && strcmp(crv, "Ed25519") == 0 ? jwk_bytes(jwk, "x", &xl) : NULL;
    EVP_PKEY *pk = x && xl == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl)
                                 : NULL;
    free(x);
    return pk;
}

/* Adds JWK number i of a JWKS. Keys for other uses ("use" other than
 * "sig") are skipped. Returns 0 or negative with ctx's error set. */
static int jwk_add(struct cfg_ctx *ctx, yaml_node_t *v, struct jwt_cfg *jc, json_t *jwk, size_t i)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    const char *alg = json_string_value(json_object_get(jwk, "alg"));
    const char *why = NULL;
    if (use != NULL && strcmp(use, "sig") != 0)
        return 0;
    if (kty == NULL)
        return cfg_fail(ctx, v, "jwks key %zu has no \"kty\"", i);
    int a = alg ? jwt_alg_find(alg) : -1;
    if (alg != NULL && a < 0)
        return cfg_fail(ctx, v, "jwks key %zu: unsupported \"alg\" '%.32s'", i, alg);
    struct jwt_key *k = jwt_key_new(ctx, v, jc);
    if (k == NULL)
        return -EINVAL;
    k->alg = a;
    if (kid != NULL && (k->kid = strdup(kid)) == NULL)
        return cfg_nomem(ctx);
    if (strcmp(kty, "oct") == 0) {
        k->kind = JWT_KIND_HMAC;
        k->secret = jwk_bytes(jwk, "k", &k->secret_len);
        if (k->secret == NULL || k->secret_len < JWT_MIN_SECRET)
            return cfg_fail(ctx, v, "jwks key %zu: \"k\" missing or shorter than %d bytes", i,
                            JWT_MIN_SECRET);
    } else {
        k->pkey = strcmp(kty, "RSA") == 0 ? jwk_rsa(jwk)
                  : strcmp(kty, "EC") == 0 ? jwk_ec(jwk)
                  : strcmp(kty, "OKP") == 0 ? jwk_okp(jwk) : NULL;
        if (k->pkey == NULL)
            return cfg_fail(ctx, v, "jwks key %zu: unsupported or invalid %.16s key", i, kty);
        int kind = jwt_pkey_kind(k->pkey, &why);
        if (kind < 0)
            return cfg_fail(ctx, v, "jwks key %zu: %s", i, why);
        k->kind = (enum jwt_kind)kind;
    }
    if (a >= 0 && jwt_algs[a].kind != k->kind)
        return cfg_fail(ctx, v, "jwks key %zu: \"alg\" %s does not fit its key type", i, alg);
    return 0;
}

static int jwt_parse_jwks(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *path;
    char *text, q[CFG_QUOTE_SIZE];
    size_t len;
    json_error_t jerr;
    int rc = cfg_text(ctx, v, "'jwks'", &path);
    if (rc < 0 || (rc = cfg_read_near(ctx, v, path, AUTH_MAX_FILE_BYTES, &text, &len)) < 0)
        return rc;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    json_t *keys = json_object_get(doc, "keys");
    if (doc == NULL)
        rc = cfg_fail(ctx, v, "%s line %d: %s", cfg_quote(path, q), jerr.line, jerr.text);
    else if (!json_is_array(keys) || json_array_size(keys) == 0)
        rc = cfg_fail(ctx, v, "%s has no \"keys\" array", cfg_quote(path, q));
    for (size_t i = 0; rc == 0 && i < json_array_size(keys); i++) {
        json_t *jwk = json_array_get(keys, i);
        rc = json_is_object(jwk) ? jwk_add(ctx, v, obj, jwk, i)
                                 : cfg_fail(ctx, v, "jwks key %zu is not an object", i);
    }
    json_decref(doc);
    return rc;
}

/* ---- other keys ---- */

static int jwt_parse_alg_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "an algorithm", &s);
    if (rc < 0)
        return rc;
    int a = jwt_alg_find(s);
    if (a < 0)
        return cfg_fail(ctx, v, "unknown algorithm %s (expected HS256, HS384, HS512, RS256, RS384, "
                                "RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA)",
                        cfg_quote(s, q));
    ((struct jwt_cfg *)obj)->algorithms |= 1u << a;
    return 0;
}

static int jwt_parse_algorithms(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'algorithms'");
    return rc < 0 ? rc : cfg_list_each(ctx, v, jwt_parse_alg_item, obj);
}

static int jwt_parse_issuer(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'issuer'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &((struct jwt_cfg *)obj)->issuer);
}

static int jwt_parse_aud_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct jwt_cfg *jc = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "an audience", &s);
    if (rc < 0)
        return rc;
    if (jc->n_audiences == JWT_MAX_AUDIENCES)
        return cfg_fail(ctx, v, "too many audiences (at most %d)", JWT_MAX_AUDIENCES);
    return cfg_strdup(ctx, s, &jc->audiences[jc->n_audiences++]);
}

static int jwt_parse_audience(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    if (v->type == YAML_SCALAR_NODE)
        return jwt_parse_aud_item(ctx, v, obj, 0);
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'audience'");
    return rc < 0 ? rc : cfg_list_each(ctx, v, jwt_parse_aud_item, obj);
}

/* Parses a map of claim -> text into pairs[] (*n counts the pairs made). */
static int jwt_parse_claim_map(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                               struct jwt_pair *pairs, size_t *n)
{
    int rc = cfg_expect(ctx, v, YAML_MAPPING_NODE, what);
    if (rc < 0)
        return rc;
    size_t count = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (count > JWT_MAX_CLAIM_RULES)
        return cfg_fail(ctx, v, "%s has more than %d claims", what, JWT_MAX_CLAIM_RULES);
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
        yaml_node_t *k = cfg_node(ctx, p->key), *val = cfg_node(ctx, p->value);
        const char *ks, *vs;
        if ((rc = cfg_visit(ctx, val)) < 0 || (rc = cfg_text(ctx, k, "a claim name", &ks)) < 0 ||
            (rc = cfg_text(ctx, val, what, &vs)) < 0 || (rc = cfg_strdup(ctx, ks, &pairs[i].claim)) < 0)
            return rc;
        (*n)++;
        if ((rc = cfg_strdup(ctx, vs, &pairs[i].value)) < 0)
            return rc;
    }
    return 0;
}

static int jwt_parse_require(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct jwt_cfg *jc = obj;
    return jwt_parse_claim_map(ctx, v, "'require'", jc->rules, &jc->n_rules);
}

static int jwt_parse_copies(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct jwt_cfg *jc = obj;
    int rc = jwt_parse_claim_map(ctx, v, "'claims_to_headers'", jc->copies, &jc->n_copies);
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; rc == 0 && i < jc->n_copies; i++) {
        const char *h = jc->copies[i].value;
        if (!cfg_is_token(h) || http_edit_reserved(h, strlen(h)))
            rc = cfg_fail(ctx, v, "%s cannot carry a claim", cfg_quote(h, q));
    }
    return rc;
}

static int jwt_parse_identity_claim(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct jwt_cfg *jc = obj;
    const char *s;
    int rc = cfg_text(ctx, v, "'identity_claim'", &s);
    if (rc < 0)
        return rc;
    free(jc->identity_claim);
    jc->identity_claim = NULL;
    return cfg_strdup(ctx, s, &jc->identity_claim);
}

static const struct cfg_key jwt_keys[] = {
    CFG_FUNC("secret", jwt_parse_secret, false),
    CFG_FUNC("key_file", jwt_parse_key_file, false),
    CFG_FUNC("jwks", jwt_parse_jwks, false),
    CFG_FUNC("algorithms", jwt_parse_algorithms, false),
    CFG_FUNC("issuer", jwt_parse_issuer, false),
    CFG_FUNC("audience", jwt_parse_audience, false),
    CFG_FIELD("clock_skew", CFG_KIND_DURATION, struct jwt_cfg, clock_skew_ms, 0,
              24ULL * 3600 * 1000),
    CFG_FUNC("require", jwt_parse_require, false),
    CFG_FUNC("claims_to_headers", jwt_parse_copies, false),
    CFG_FUNC("identity_claim", jwt_parse_identity_claim, false),
};
CFG_MAP_DEFINE(jwt_map, "jwt", jwt_keys);

static int jwt_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct jwt_cfg *jc = cfg_calloc_fn(1, sizeof(*jc));
    if (jc == NULL)
        return cfg_nomem(ctx);
    *out = jc;
    jc->clock_skew_ms = JWT_DEFAULT_SKEW_MS;
    int rc = cfg_parse_map(ctx, v, &jwt_map, jc, NULL);
    if (rc < 0)
        return rc;
    if (jc->n_keys == 0)
        return cfg_fail(ctx, v, "jwt needs keys: 'secret', 'key_file' or 'jwks'");
    unsigned usable = 0;
    for (int a = 0; a < JWT_ALG_COUNT; a++)
        for (size_t i = 0; i < jc->n_keys; i++)
            if (jwt_algs[a].kind == jc->keys[i].kind)
                usable |= 1u << a;
    if (jc->algorithms == 0)
        jc->algorithms = usable;
    else if ((jc->algorithms & usable) == 0)
        return cfg_fail(ctx, v, "no key fits any of 'algorithms'");
    if (jc->identity_claim == NULL)
        return cfg_strdup(ctx, "sub", &jc->identity_claim);
    return 0;
}

static void jwt_cfg_free(void *p)
{
    struct jwt_cfg *jc = p;
    for (size_t i = 0; i < jc->n_keys; i++) {
        free(jc->keys[i].kid);
        OPENSSL_clear_free(jc->keys[i].secret, jc->keys[i].secret_len);
        EVP_PKEY_free(jc->keys[i].pkey);
    }
    for (size_t i = 0; i < jc->n_audiences; i++)
        free(jc->audiences[i]);
    for (size_t i = 0; i < jc->n_rules; i++) {
        free(jc->rules[i].claim);
        free(jc->rules[i].value);
    }
    for (size_t i = 0; i < jc->n_copies; i++) {
        free(jc->copies[i].claim);
        free(jc->copies[i].value);
    }
    free(jc->issuer);
    free(jc->identity_claim);
    free(jc);
}

/* ---- signatures ---- */

static int jwt_verify_hmac(const struct jwt_key *k, const struct jwt_alg_info *a,
                           const struct jwt_token *tok, const char *input)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const EVP_MD *md = a->md();
    if (k->secret_len < (size_t)EVP_MD_get_size(md)) /* RFC 7518 3.2 */
        return 0;
    if (HMAC(md, k->secret, (int)k->secret_len, (const unsigned char *)input, tok->signed_len,
             mac, &len) == NULL)
        return 0;
    return len == tok->sig_len && CRYPTO_memcmp(mac, tok->sig, len) == 0;
}

/* JWS carries ECDSA signatures as R | S (RFC 7518 3.4); OpenSSL wants DER. */
static int jwt_ecdsa_der(const struct jwt_token *tok, size_t half, unsigned char **der)
{
    if (tok->sig_len != 2 * half)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(tok->sig, (int)half, NULL), *s = BN_bin2bn(tok->sig + half, (int)half, NULL);
    int len = -1;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them */
        *der = NULL;
        len = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

static int jwt_verify_pkey(const struct jwt_key *k, const struct jwt_alg_info *a,
                           const struct jwt_token *tok, const char *input)
{
    unsigned char *der = NULL;
    const unsigned char *sig = tok->sig;
    size_t sig_len = tok->sig_len;
    if (k->kind == JWT_KIND_P256 || k->kind == JWT_KIND_P384) {
        int n = jwt_ecdsa_der(tok, k->kind == JWT_KIND_P256 ? 32 : 48, &der);
        if (n <= 0)
            return 0;
        sig = der;
        sig_len = (size_t)n;
    }
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = m != NULL && EVP_DigestVerifyInit(m, &pc, a->md ? a->md() : NULL, NULL, k->pkey) == 1;
    if (ok && a->pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(m, sig, sig_len, (const unsigned char *)input, tok->signed_len) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(der);
    return ok;
}

/* Whether some key fits the token (kid, kind, a JWK's alg) and verifies it. */
static int jwt_verify(const struct jwt_cfg *jc, int alg, const struct jwt_token *tok,
                      const char *input)
{
    const struct jwt_alg_info *a = &jwt_algs[alg];
    for (size_t i = 0; i < jc->n_keys; i++) {
        const struct jwt_key *k = &jc->keys[i];
        if (k->kind != a->kind || (k->alg >= 0 && k->alg != alg))
            continue;
        if (tok->kid != NULL && k->kid != NULL && strcmp(tok->kid, k->kid) != 0)
            continue;
        if (a->kind == JWT_KIND_HMAC ? jwt_verify_hmac(k, a, tok, input)
                                     : jwt_verify_pkey(k, a, tok, input))
            return 1;
    }
    return 0;
}

/* ---- claims ---- */

/* A NumericDate claim (RFC 7519 2): absent -> 1 and *present 0; not a
 * number -> 0. */
static int jwt_numeric_date(json_t *claims, const char *name, double *out, int *present)
{
    json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return 1;
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return isfinite(*out);
}

static int jwt_times_ok(const struct jwt_cfg *jc, json_t *claims, double now)
{
    double exp = 0, nbf = 0, skew = (double)jc->clock_skew_ms / 1000.0;
    int has_exp, has_nbf;
    if (!jwt_numeric_date(claims, "exp", &exp, &has_exp) ||
        !jwt_numeric_date(claims, "nbf", &nbf, &has_nbf))
        return 0;
    if (has_exp && now >= exp + skew) /* RFC 7519 4.1.4: on or after exp: refused */
        return 0;
    return !has_nbf || now + skew >= nbf;
}

static int jwt_audience_ok(const struct jwt_cfg *jc, json_t *claims)
{
    if (jc->n_audiences == 0)
        return 1;
    json_t *aud = json_object_get(claims, "aud");
    for (size_t i = 0; i < jc->n_audiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), jc->audiences[i]) == 0)
            return 1;
        size_t j;
        json_t *e;
        json_array_foreach(aud, j, e)
            if (json_is_string(e) && strcmp(json_string_value(e), jc->audiences[i]) == 0)
                return 1;
    }
    return 0;
}

/* A scalar claim as text (strings as they are, numbers and booleans
 * written out) into buf. Returns buf, or NULL for other JSON types. */
static const char *jwt_claim_text(json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, size, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

/* Whether text s, read as a space-separated list (OAuth's "scope"), holds
 * the word w. */
static int jwt_has_word(const char *s, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, " ");
        if (n == wl && memcmp(p, w, n) == 0)
            return 1;
        p += n;
        p += strspn(p, " ");
    }
    return 0;
}

static int jwt_rule_ok(const struct jwt_pair *r, json_t *claims)
{
    json_t *v = json_object_get(claims, r->claim), *e;
    char buf[64];
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            const char *t = jwt_claim_text(e, buf, sizeof(buf));
            if (t != NULL && strcmp(t, r->value) == 0)
                return 1;
        }
        return 0;
    }
    const char *t = jwt_claim_text(v, buf, sizeof(buf));
    return t != NULL && (strcmp(t, r->value) == 0 || jwt_has_word(t, r->value));
}

/* Sets claims_to_headers on the request (a header whose claim is absent,
 * not a scalar or not sendable is removed). Returns 0 or -ENOSPC. */
static int jwt_copy_claims(struct txn *t, const struct jwt_cfg *jc, json_t *claims)
{
    char buf[64];
    for (size_t i = 0; i < jc->n_copies; i++) {
        const struct jwt_pair *c = &jc->copies[i];
        struct http_slice name = { c->value, strlen(c->value) };
        const char *s = jwt_claim_text(json_object_get(claims, c->claim), buf, sizeof(buf));
        if (s == NULL || !auth_identity_ok(s, strlen(s))) {
            http_edit_remove(t->req, name.p, name.len);
            continue;
        }
        struct http_slice v = txn_copy(t, s, strlen(s));
        if (v.p == NULL || http_edit_set(t->req, name, v) < 0)
            return -ENOSPC;
    }
    return 0;
}

/* ---- per request ---- */

static enum auth_verdict jwt_check_token(struct txn *t, const struct jwt_cfg *jc,
                                         const struct jwt_token *tok, const char *input,
                                         struct http_slice *identity)
{
    int alg = jwt_alg_find(tok->alg);
    if (alg < 0 || !(jc->algorithms & (1u << alg)) || !jwt_verify(jc, alg, tok, input))
        return AUTH_BAD;
    if (!jwt_times_ok(jc, tok->claims, ev_now(txn_loop(t))))
        return AUTH_BAD;
    const char *iss = json_string_value(json_object_get(tok->claims, "iss"));
    if (jc->issuer != NULL && (iss == NULL || strcmp(iss, jc->issuer) != 0))
        return AUTH_BAD;
    if (!jwt_audience_ok(jc, tok->claims))
        return AUTH_BAD;
    char buf[64];
    const char *id = jwt_claim_text(json_object_get(tok->claims, jc->identity_claim), buf,
                                    sizeof(buf));
    if (id == NULL || !auth_identity_ok(id, strlen(id)))
        return AUTH_BAD;
    for (size_t i = 0; i < jc->n_rules; i++)
        if (!jwt_rule_ok(&jc->rules[i], tok->claims))
            return AUTH_FORBIDDEN;
    *identity = txn_copy(t, id, strlen(id));
    if (identity->p == NULL || jwt_copy_claims(t, jc, tok->claims) < 0)
        return AUTH_ERROR;
    return AUTH_OK;
}

static enum auth_verdict jwt_check(struct txn *t, const void *cfg, struct http_slice *identity)
{
    int i = http_msg_find(t->req, "Authorization");
    if (i < 0)
        return AUTH_MISSING;
    struct http_slice v = t->req->headers[i].value;
    if (v.len < 7 || strncasecmp(v.p, "Bearer ", 7) != 0) /* RFC 6750 2.1 */
        return AUTH_MISSING;
    const char *p = v.p + 7, *end = v.p + v.len;
    while (p < end && *p == ' ')
        p++;
    struct jwt_token tok;
    const char *why = NULL;
    if (jwt_parse(p, (size_t)(end - p), &tok, &why) < 0)
        return AUTH_BAD;
    enum auth_verdict r = jwt_check_token(t, cfg, &tok, p, identity);
    jwt_token_free(&tok);
    return r;
}

const struct auth_method auth_method_jwt = {
    .key = "jwt",
    .scheme = "Bearer",
    .parse = jwt_cfg_parse,
    .free_cfg = jwt_cfg_free,
    .check = jwt_check,
};

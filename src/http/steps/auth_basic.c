/* auth_basic: HTTP Basic (RFC 7617), the `basic` method of the auth step,
 * against an htpasswd file.
 *
 *   basic: { file: users.htpasswd }
 *
 * Hashes: bcrypt ($2y$, $2b$, $2a$) and SHA-crypt ($5$ SHA-256, $6$
 * SHA-512), verified with libxcrypt's crypt_r(). Other htpasswd formats
 * (MD5 $apr1$, {SHA}, crypt DES, plain text) are refused at load: they
 * are too weak to guard anything.
 *
 * Cost: bcrypt is deliberately slow (tens of milliseconds at cost 10) and
 * runs on the worker thread, holding up that worker's other connections.
 * So each worker keeps a small cache of credentials it verified:
 *
 *   slot = digest[0..4) mod BASIC_CACHE_SLOTS      (direct-mapped, per thread)
 *   digest = SHA-256(process salt | user | 0 | password | 0 | stored hash)
 *
 * A keep-alive client (or any client repeating the same credentials) pays
 * the hash once per worker. Only digests are kept, never a password; the
 * stored hash is part of the digest, so a reload that changes a user's
 * password (or removes the user: the lookup fails first) invalidates the
 * entry without any flush. A failed verification is never cached. An
 * unknown user is checked against another user's hash all the same, so
 * the answer's timing does not tell which users exist. */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/base64.h"
#include "http/steps/auth_internal.h"
#include "http/txn.h"

#define BASIC_MAX_USERS 1000000
#define BASIC_MAX_CREDENTIALS 1024  /* user:password, decoded */
#define BASIC_CACHE_SLOTS 1024      /* per worker thread */
#define BASIC_DIGEST 32

struct basic_user {
    char *name;
    char *hash;
};

struct basic_cfg {
    struct basic_user *users;      /* sorted by name */
    size_t n_users, cap_users;
};

/* ---- configuration ---- */

static int basic_hash_supported(const char *h)
{
    static const char *const prefixes[] = { "$2y$", "$2b$", "$2a$", "$5$", "$6$" };
    for (size_t i = 0; i < CFG_ARRAY_SIZE(prefixes); i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0) {
            /* libxcrypt calls $5$ "legacy" (not for new hashes): still verified */
            int c = crypt_checksalt(h);
            return c != CRYPT_SALT_INVALID && c != CRYPT_SALT_METHOD_DISABLED;
        }
    return 0;
}

static int basic_add(struct basic_cfg *bc, const char *name, size_t name_len, const char *hash,
                     size_t hash_len, const char **why)
{
    if (!auth_identity_ok(name, name_len))
        return *why = "a user name must be 1 to 255 printable ASCII characters", -EINVAL;
    if (bc->n_users == BASIC_MAX_USERS)
        return *why = "too many users (at most 1000000)", -EINVAL;
    if (auth_grow((void **)&bc->users, bc->n_users, &bc->cap_users, sizeof(*bc->users)) < 0)
        return *why = "out of memory", -ENOMEM;
    struct basic_user *u = &bc->users[bc->n_users];
    if ((u->name = strndup(name, name_len)) == NULL)
        return *why = "out of memory", -ENOMEM;
    if ((u->hash = strndup(hash, hash_len)) == NULL) {
        free(u->name);
        return *why = "out of memory", -ENOMEM;
    }
    bc->n_users++;
    if (!basic_hash_supported(u->hash))
        return *why = "unsupported hash (use bcrypt $2y$/$2b$ or SHA-crypt $5$/$6$)", -EINVAL;
    return 0;
}

static int basic_user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct basic_user *)a)->name, ((const struct basic_user *)b)->name);
}

static int basic_parse_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct basic_cfg *bc = obj;
    const char *path;
    char *text, q[CFG_QUOTE_SIZE];
    size_t len;
    int rc = cfg_text(ctx, v, "'file'", &path);
    if (rc < 0 || (rc = cfg_read_near(ctx, v, path, AUTH_MAX_FILE_BYTES, &text, &len)) < 0)
        return rc;
    unsigned line = 0;
    for (const char *s = text; rc == 0 && s < text + len;) {
        const char *nl = memchr(s, '\n', (size_t)(text + len - s));
        const char *end = nl ? nl : text + len, *next = nl ? nl + 1 : text + len;
        line++;
        if (end > s && end[-1] == '\r')
            end--;
        if (s < end && *s != '#') {
            const char *colon = memchr(s, ':', (size_t)(end - s)), *why = NULL;
            if (colon == NULL)
                rc = cfg_fail(ctx, v, "%s line %u: expected user:hash", cfg_quote(path, q), line);
            else if (basic_add(bc, s, (size_t)(colon - s), colon + 1, (size_t)(end - colon - 1),
                               &why) < 0)
                rc = cfg_fail(ctx, v, "%s line %u: %s", cfg_quote(path, q), line, why);
        }
        s = next;
    }
    free(text);
    if (rc == 0 && bc->n_users == 0)
        rc = cfg_fail(ctx, v, "%s has no users", cfg_quote(path, q));
    if (rc == 0)
        qsort(bc->users, bc->n_users, sizeof(*bc->users), basic_user_cmp);
    for (size_t i = 1; rc == 0 && i < bc->n_users; i++)
        if (strcmp(bc->users[i - 1].name, bc->users[i].name) == 0)
            rc = cfg_fail(ctx, v, "%s lists user %s twice", cfg_quote(path, q), bc->users[i].name);
    return rc;
}

static const struct cfg_key basic_keys[] = {
    CFG_FUNC("file", basic_parse_file, true),
};
CFG_MAP_DEFINE(basic_map, "basic", basic_keys);

static int basic_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct basic_cfg *bc = cfg_calloc_fn(1, sizeof(*bc));
    if (bc == NULL)
        return cfg_nomem(ctx);
    *out = bc;
    return cfg_parse_map(ctx, v, &basic_map, bc, NULL);
}

static void basic_free(void *p)
{
    struct basic_cfg *bc = p;
    for (size_t i = 0; i < bc->n_users; i++) {
        free(bc->users[i].name);
        free(bc->users[i].hash);
    }
    free(bc->users);
    free(bc);
}

static const char *basic_challenge(const void *cfg)
{
    return "charset=\"UTF-8\"";
}

/* ---- the per-worker cache of verified credentials ---- */

static unsigned char basic_salt[16];
static pthread_once_t basic_salt_once = PTHREAD_ONCE_INIT;
static _Thread_local unsigned char basic_cache[BASIC_CACHE_SLOTS][BASIC_DIGEST];
static _Thread_local struct crypt_data basic_crypt;

static void basic_salt_init(void)
{
    if (RAND_bytes(basic_salt, sizeof(basic_salt)) != 1)
        abort(); /* the process cannot make randomness: nothing secure can follow */
}

static int basic_cache_digest(const char *user, size_t ul, const char *pw, size_t pl,
                              const char *hash, unsigned char out[BASIC_DIGEST])
{
    pthread_once(&basic_salt_once, basic_salt_init);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, basic_salt, sizeof(basic_salt)) == 1 &&
             EVP_DigestUpdate(md, user, ul) == 1 && EVP_DigestUpdate(md, "", 1) == 1 &&
             EVP_DigestUpdate(md, pw, pl) == 1 && EVP_DigestUpdate(md, "", 1) == 1 &&
             EVP_DigestUpdate(md, hash, strlen(hash)) == 1 &&
             EVP_DigestFinal_ex(md, out, &len) == 1 && len == BASIC_DIGEST;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -EIO;
}

static unsigned char *basic_cache_slot(const unsigned char d[BASIC_DIGEST])
{
    uint32_t i = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
                 (uint32_t)d[3] << 24;
    return basic_cache[i % BASIC_CACHE_SLOTS];
}

/* ---- per request ---- */

/* Verifies password pw (NUL-terminated) against a stored hash with
 * crypt_r. Returns 1 when it matches, 0 when not. */
static int basic_verify(const char *pw, const char *hash)
{
    memset(&basic_crypt, 0, sizeof(basic_crypt));
    const char *out = crypt_r(pw, hash, &basic_crypt);
    size_t n = strlen(hash);
    return out != NULL && out[0] != '*' && strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
}

/* Finds "Basic <credentials>" in Authorization (the scheme is
 * case-insensitive, RFC 7617 2) and decodes it into buf as "user:password"
 * with a NUL after. Returns the length, -ENOENT (none), -EINVAL (bad). */
static int basic_credentials(const struct http_msg *req, char *buf, size_t size)
{
    int i = http_msg_find(req, "Authorization");
    if (i < 0)
        return -ENOENT;
    struct http_slice v = req->headers[i].value;
    if (v.len < 6 || strncasecmp(v.p, "Basic ", 6) != 0)
        return -ENOENT;
    const char *p = v.p + 6, *end = v.p + v.len;
    while (p < end && *p == ' ')
        p++;
    ssize_t n = base64_decode(p, (size_t)(end - p), (unsigned char *)buf, size - 1);
    if (n <= 0 || memchr(buf, '\0', (size_t)n) != NULL)
        return -EINVAL;
    buf[n] = '\0';
    return (int)n;
}

static enum auth_verdict basic_check(struct txn *t, const void *cfg, struct http_slice *identity)
{
    const struct basic_cfg *bc = cfg;
    char cred[BASIC_MAX_CREDENTIALS + 1];
    int n = basic_credentials(t->req, cred, sizeof(cred));
    if (n == -ENOENT)
        return AUTH_MISSING;
    char *colon = n > 0 ? memchr(cred, ':', (size_t)n) : NULL;
    if (colon == NULL)
        return AUTH_BAD;
    *colon = '\0';
    const char *pw = colon + 1;
    struct basic_user probe = { cred, NULL };
    const struct basic_user *u = bsearch(&probe, bc->users, bc->n_users, sizeof(*bc->users),
                                         basic_user_cmp);
    if (u == NULL) {
        basic_verify(pw, bc->users[0].hash); /* the same work as for a real user */
        return AUTH_BAD;
    }
    unsigned char d[BASIC_DIGEST];
    if (basic_cache_digest(cred, strlen(cred), pw, strlen(pw), u->hash, d) < 0)
        return AUTH_ERROR;
    unsigned char *slot = basic_cache_slot(d);
    if (CRYPTO_memcmp(slot, d, BASIC_DIGEST) != 0) {
        if (!basic_verify(pw, u->hash))
            return AUTH_BAD;
        memcpy(slot, d, BASIC_DIGEST);
    }
    *identity = (struct http_slice){ u->name, strlen(u->name) };
    return AUTH_OK;
}

const struct auth_method auth_method_basic = {
    .key = "basic",
    .scheme = "Basic",
    .parse = basic_parse,
    .free_cfg = basic_free,
    .challenge = basic_challenge,
    .check = basic_check,
};

/* auth_key: API keys, the `api_key` method of the auth step.
 *
 *   api_key: { header: X-Api-Key | query: api_key,
 *              keys: [{ name: alice, key: ... }], file: keys.txt }
 *
 * Each key has a name, which becomes the client's identity. Keys are kept
 * only as SHA-256 digests, sorted, so a request's key is found by a binary
 * search over digests followed by a constant-time comparison: what the
 * timing of the search can tell an attacker is where the digest of a key
 * they sent sits, which says nothing usable about any stored key (finding
 * a key from its digest is a preimage). No key is compared byte by byte
 * with what the client sent.
 *
 * The file holds one "name:key" a line ('#' comments, blank lines); it is
 * read when the configuration is (so a reload reads it again). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "http/steps/auth_internal.h"
#include "http/txn.h"

#define KEY_MAX_KEYS 1000000
#define KEY_MAX_LEN 1024
#define KEY_DIGEST 32
#define KEY_DEFAULT_HEADER "X-Api-Key"

struct key_entry {
    unsigned char digest[KEY_DIGEST];
    char *name;
};

struct key_cfg {
    char *header;   /* where the key is, one of the two */
    char *query;
    char *challenge;
    struct key_entry *keys;
    size_t n_keys, cap_keys;
    int has_keys, has_file;
};

static int key_digest(const char *p, size_t n, unsigned char out[KEY_DIGEST])
{
    unsigned int len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == KEY_DIGEST ? 0 : -EIO;
}

/* ---- configuration ---- */

static int key_valid(const char *k, size_t n)
{
    if (n == 0 || n > KEY_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

/* Adds name -> key. Returns 0, or negative with a reason in *why. */
static int key_add(struct key_cfg *kc, const char *name, size_t name_len, const char *key,
                   size_t key_len, const char **why)
{
    if (!auth_identity_ok(name, name_len))
        return *why = "a key's name must be 1 to 255 printable ASCII characters", -EINVAL;
    if (!key_valid(key, key_len))
        return *why = "a key must be 1 to 1024 visible ASCII characters (no spaces)", -EINVAL;
    if (kc->n_keys == KEY_MAX_KEYS)
        return *why = "too many keys (at most 1000000)", -EINVAL;
    if (auth_grow((void **)&kc->keys, kc->n_keys, &kc->cap_keys, sizeof(*kc->keys)) < 0)
        return *why = "out of memory", -ENOMEM;
    struct key_entry *e = &kc->keys[kc->n_keys];
    if (key_digest(key, key_len, e->digest) < 0)
        return *why = "SHA-256 failed", -EIO;
    if ((e->name = strndup(name, name_len)) == NULL)
        return *why = "out of memory", -ENOMEM;
    kc->n_keys++;
    return 0;
}

static int key_parse_where(struct cfg_ctx *ctx, yaml_node_t *v, struct key_cfg *kc, char **out,
                           const char *what)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    if (kc->header != NULL || kc->query != NULL)
        return cfg_fail(ctx, v, "api_key takes the key from one place: 'header' or 'query'");
    if (!cfg_is_token(s))
        return cfg_fail(ctx, v, "bad %s %s", what, cfg_quote(s, q));
    return cfg_strdup(ctx, s, out);
}

static int key_parse_header(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct key_cfg *kc = obj;
    return key_parse_where(ctx, v, kc, &kc->header, "'header'");
}

static int key_parse_query(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct key_cfg *kc = obj;
    return key_parse_where(ctx, v, kc, &kc->query, "'query'");
}

struct key_item {
    char *name, *key;
};

static int key_item_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'name'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &((struct key_item *)obj)->name);
}

static int key_item_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *s;
    int rc = cfg_text(ctx, v, "'key'", &s);
    return rc < 0 ? rc : cfg_strdup(ctx, s, &((struct key_item *)obj)->key);
}

static const struct cfg_key key_item_keys[] = {
    CFG_FUNC("name", key_item_name, true),
    CFG_FUNC("key", key_item_key, true),
};
CFG_MAP_DEFINE(key_item_map, "api key", key_item_keys);

static int key_parse_keys_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct key_item it = { NULL, NULL };
    const char *why = NULL;
    int rc = cfg_parse_map(ctx, v, &key_item_map, &it, NULL);
    if (rc == 0 && key_add(obj, it.name, strlen(it.name), it.key, strlen(it.key), &why) < 0)
        rc = cfg_fail(ctx, v, "%s", why);
    free(it.name);
    free(it.key);
    return rc;
}

static int key_parse_keys(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'keys'");
    if (rc < 0)
        return rc;
    ((struct key_cfg *)obj)->has_keys = 1;
    return cfg_list_each(ctx, v, key_parse_keys_item, obj);
}

static const char *key_trim(const char *s, const char **end)
{
    while (s < *end && (*s == ' ' || *s == '\t'))
        s++;
    while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        (*end)--;
    return s;
}

static int key_parse_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct key_cfg *kc = obj;
    const char *path;
    char *text, q[CFG_QUOTE_SIZE];
    size_t len;
    int rc = cfg_text(ctx, v, "'file'", &path);
    if (rc < 0 || (rc = cfg_read_near(ctx, v, path, AUTH_MAX_FILE_BYTES, &text, &len)) < 0)
        return rc;
    kc->has_file = 1;
    unsigned line = 0;
    for (const char *s = text; rc == 0 && s < text + len; ) {
        const char *nl = memchr(s, '\n', (size_t)(text + len - s));
        const char *end = nl ? nl : text + len, *next = nl ? nl + 1 : text + len;
        line++;
        s = key_trim(s, &end);
        if (s < end && *s != '#') {
            const char *colon = memchr(s, ':', (size_t)(end - s)), *why = NULL;
            if (colon == NULL) {
                rc = cfg_fail(ctx, v, "%s line %u: expected name:key", cfg_quote(path, q), line);
                break;
            }
            const char *ne = colon, *ks = colon + 1, *ke = end;
            const char *ns = key_trim(s, &ne);
            ks = key_trim(ks, &ke);
            if (key_add(kc, ns, (size_t)(ne - ns), ks, (size_t)(ke - ks), &why) < 0)
                rc = cfg_fail(ctx, v, "%s line %u: %s", cfg_quote(path, q), line, why);
        }
        s = next;
    }
    free(text);
    return rc;
}

static const struct cfg_key key_keys[] = {
    CFG_FUNC("header", key_parse_header, false),
    CFG_FUNC("query", key_parse_query, false),
    CFG_FUNC("keys", key_parse_keys, false),
    CFG_FUNC("file", key_parse_file, false),
};
CFG_MAP_DEFINE(key_map, "api_key", key_keys);

static int key_entry_cmp(const void *a, const void *b)
{
    return memcmp(((const struct key_entry *)a)->digest, ((const struct key_entry *)b)->digest,
                  KEY_DIGEST);
}

static int key_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct key_cfg *kc = cfg_calloc_fn(1, sizeof(*kc));
    if (kc == NULL)
        return cfg_nomem(ctx);
    *out = kc;
    int rc = cfg_parse_map(ctx, v, &key_map, kc, NULL);
    if (rc < 0)
        return rc;
    if (!kc->has_keys && !kc->has_file)
        return cfg_fail(ctx, v, "api_key needs 'keys' or 'file'");
    if (kc->n_keys == 0)
        return cfg_fail(ctx, v, "api_key has no keys (the file is empty)");
    if (kc->header == NULL && kc->query == NULL &&
        (rc = cfg_strdup(ctx, KEY_DEFAULT_HEADER, &kc->header)) < 0)
        return rc;
    qsort(kc->keys, kc->n_keys, sizeof(*kc->keys), key_entry_cmp);
    for (size_t i = 1; i < kc->n_keys; i++)
        if (memcmp(kc->keys[i - 1].digest, kc->keys[i].digest, KEY_DIGEST) == 0)
            return cfg_fail(ctx, v, "the same key is given twice (names '%s' and '%s')",
                            kc->keys[i - 1].name, kc->keys[i].name);
    char buf[160];
    snprintf(buf, sizeof(buf), "%s=\"%s\"", kc->header ? "header" : "query",
             kc->header ? kc->header : kc->query);
    return cfg_strdup(ctx, buf, &kc->challenge);
}

static void key_free(void *p)
{
    struct key_cfg *kc = p;
    for (size_t i = 0; i < kc->n_keys; i++)
        free(kc->keys[i].name);
    free(kc->keys);
    free(kc->header);
    free(kc->query);
    free(kc->challenge);
    free(kc);
}

static const char *key_challenge(const void *cfg)
{
    return ((const struct key_cfg *)cfg)->challenge;
}

/* ---- per request ---- */

static int key_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Finds query parameter `name` and percent-decodes its value into buf.
 * Returns the value's length, -ENOENT when absent, -EINVAL when too long
 * or badly encoded. */
static int key_from_query(struct http_slice q, const char *name, char *buf, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = q.p, *end = q.p + q.len; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t n = 0;
            for (const char *c = p + nl + 1; c < pe; c++) {
                int ch = (unsigned char)*c;
                if (*c == '%') {
                    int hi = c + 2 < pe ? key_hex(c[1]) : -1, lo = hi >= 0 ? key_hex(c[2]) : -1;
                    if (lo < 0)
                        return -EINVAL;
                    ch = hi * 16 + lo;
                    c += 2;
                }
                if (n == size)
                    return -EINVAL;
                buf[n++] = (char)ch;
            }
            return (int)n;
        }
        p = amp ? amp + 1 : end;
    }
    return -ENOENT;
}

static enum auth_verdict key_check(struct txn *t, const void *cfg, struct http_slice *identity)
{
    const struct key_cfg *kc = cfg;
    char qbuf[KEY_MAX_LEN];
    struct http_slice k;
    if (kc->header != NULL) {
        int i = http_msg_find(t->req, kc->header);
        if (i < 0)
            return AUTH_MISSING;
        k = t->req->headers[i].value;
    } else {
        int n = key_from_query(t->req->query, kc->query, qbuf, sizeof(qbuf));
        if (n == -ENOENT)
            return AUTH_MISSING;
        if (n < 0)
            return AUTH_BAD;
        k = (struct http_slice){ qbuf, (size_t)n };
    }
    if (k.len == 0)
        return AUTH_MISSING;
    struct key_entry probe;
    if (key_digest(k.p, k.len, probe.digest) < 0)
        return AUTH_ERROR;
    const struct key_entry *e = bsearch(&probe, kc->keys, kc->n_keys, sizeof(*kc->keys),
                                        key_entry_cmp);
    if (e == NULL || auth_ct_compare(e->digest, probe.digest, KEY_DIGEST) != 0)
        return AUTH_BAD;
    *identity = (struct http_slice){ e->name, strlen(e->name) };
    return AUTH_OK;
}

const struct auth_method auth_method_api_key = {
    .key = "api_key",
    .scheme = "ApiKey",
    .parse = key_parse,
    .free_cfg = key_free,
    .challenge = key_challenge,
    .check = key_check,
};

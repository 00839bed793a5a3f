/* qmd5: see qmd5.h. OpenSSL's EVP MD5; the attribute digest walks the
 * names sorted bytewise (what SQS does for the ASCII names it allows). */
#include "queue/qmd5.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

static void qmd5_to_hex(const unsigned char *d, char out[QMD5_HEX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = 0;
}

int qmd5_hex(const void *data, size_t len, char out[QMD5_HEX])
{
    unsigned char d[16];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, d, &n, EVP_md5(), NULL))
        return -ENOMEM;
    qmd5_to_hex(d, out);
    return 0;
}

static void qmd5_put(EVP_MD_CTX *ctx, const void *p, size_t len)
{
    unsigned char be[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len };
    EVP_DigestUpdate(ctx, be, 4);
    EVP_DigestUpdate(ctx, p, len);
}

static int qmd5_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds one attribute; returns 0 or -EINVAL / -ENOMEM. */
static int qmd5_attr(EVP_MD_CTX *ctx, const char *name, const json_t *a)
{
    const char *type = json_string_value(json_object_get(a, "DataType"));
    const json_t *sv = json_object_get(a, "StringValue");
    const json_t *bv = json_object_get(a, "BinaryValue");
    if (type == NULL || (!json_is_string(sv) && !json_is_string(bv)))
        return -EINVAL;
    qmd5_put(ctx, name, strlen(name));
    qmd5_put(ctx, type, strlen(type));
    if (json_is_string(sv)) {
        EVP_DigestUpdate(ctx, "\1", 1);
        qmd5_put(ctx, json_string_value(sv), json_string_length(sv));
        return 0;
    }
    size_t n = json_string_length(bv);
    unsigned char *raw = malloc(n / 4 * 3 + 3);
    if (raw == NULL)
        return -ENOMEM;
    ssize_t got = base64_decode(json_string_value(bv), n, raw, n / 4 * 3 + 3);
    if (got >= 0) {
        EVP_DigestUpdate(ctx, "\2", 1);
        qmd5_put(ctx, raw, (size_t)got);
    }
    free(raw);
    return got < 0 ? -EINVAL : 0;
}

int qmd5_attrs(const json_t *attrs, char out[QMD5_HEX])
{
    size_t n = json_object_size(attrs), i = 0;
    const char *key;
    json_t *val;
    unsigned char d[16];
    int rc = 0;

    out[0] = 0;
    if (n == 0)
        return 0;
    const char **names = malloc(n * sizeof(*names));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (names == NULL || ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_foreach((json_t *)attrs, key, val) names[i++] = key;
    qsort(names, n, sizeof(*names), qmd5_cmp);
    for (i = 0; i < n && rc == 0; i++)
        rc = qmd5_attr(ctx, names[i], json_object_get(attrs, names[i]));
    if (rc == 0 && !EVP_DigestFinal_ex(ctx, d, NULL))
        rc = -ENOMEM;
    if (rc == 0)
        qmd5_to_hex(d, out);
out:
    EVP_MD_CTX_free(ctx);
    free(names);
    return rc;
}

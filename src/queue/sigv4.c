/* sigv4: AWS Signature Version 4 verification (sigv4.h).
 *
 *   Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260102/us-east-1/sqs/aws4_request,
 *                  SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex>
 *
 *   canonical request = METHOD \n URI \n QUERY \n (name:value \n)* \n SIGNED \n hex(sha256(body))
 *   string to sign    = "AWS4-HMAC-SHA256" \n X-Amz-Date \n DATE/REGION/SERVICE/aws4_request \n
 *                       hex(sha256(canonical request))
 *   key               = HMAC(HMAC(HMAC(HMAC("AWS4" secret, DATE), REGION), SERVICE),
 * "aws4_request") signature         = hex(HMAC(key, string to sign)), compared in constant time
 *
 * As AWS's documentation and botocore build them: the URI's bytes other
 * than unreserved characters and '/' percent-encoded (so a client's %XX is
 * encoded again, as for every service but S3); the query's parameters
 * decoded, encoded again and sorted; header values trimmed with runs of
 * spaces made one, repeated fields joined with ','. The Authorization
 * parser takes the three parts in any order, separated by ',' and spaces,
 * and never reads past the value it was given. */
#include "queue/sigv4.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_MAX_QUERY_PARAMS 64

#define SIGV4_RESULT_NAME(e, s) s,
const char *const sigv4_result_names[SIGV4_RESULT_COUNT] = {SIGV4_RESULT_LIST(SIGV4_RESULT_NAME)};
#undef SIGV4_RESULT_NAME

/* ---- the Authorization header ---- */

/* Whether the n bytes at p are all in `set`. */
static int sigv4_all(const char *p, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == 0 || strchr(set, p[i]) == NULL)
            return 0;
    return 1;
}

static int sigv4_starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* Splits Credential's value KEY/DATE/REGION/SERVICE/aws4_request. */
static int sigv4_parse_credential(struct http_slice v, struct sigv4_auth *out)
{
    struct http_slice part[5];
    const char *p = v.p, *end = v.p + v.len;
    for (int i = 0; i < 5; i++) {
        const char *slash = i < 4 ? memchr(p, '/', (size_t)(end - p)) : end;
        if (slash == NULL || slash == p)
            return -EINVAL;
        part[i] = (struct http_slice){p, (size_t)(slash - p)};
        p = slash + (i < 4);
    }
    if (part[4].len != 12 || memcmp(part[4].p, "aws4_request", 12) != 0 || part[1].len != 8 ||
        !sigv4_all(part[1].p, 8, "0123456789"))
        return -EINVAL;
    out->access_key = part[0];
    out->date = part[1];
    out->region = part[2];
    out->service = part[3];
    return 0;
}

int sigv4_parse_authorization(const char *s, size_t len, struct sigv4_auth *out)
{
    const char *p = s, *end = s + len;
    int seen = 0;
    memset(out, 0, sizeof(*out));
    if (!sigv4_starts(p, end, SIGV4_ALGO " "))
        return -EINVAL;
    p += sizeof(SIGV4_ALGO);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p == end)
            break;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL)
            return -EINVAL;
        const char *ve = eq + 1;
        while (ve < end && *ve != ',' && *ve != ' ')
            ve++;
        struct http_slice v = {eq + 1, (size_t)(ve - eq - 1)};
        size_t klen = (size_t)(eq - p);
        if (klen == 10 && memcmp(p, "Credential", 10) == 0 && !(seen & 1)) {
            if (sigv4_parse_credential(v, out) < 0)
                return -EINVAL;
            seen |= 1;
        } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0 && !(seen & 2) && v.len) {
            out->signed_headers = v;
            seen |= 2;
        } else if (klen == 9 && memcmp(p, "Signature", 9) == 0 && !(seen & 4) && v.len == 64 &&
                   sigv4_all(v.p, 64, "0123456789abcdef")) {
            out->signature = v;
            seen |= 4;
        } else {
            return -EINVAL;
        }
        p = ve;
    }
    return seen == 7 ? 0 : -EINVAL;
}

/* ---- canonical request ---- */

struct sigv4_text {
    char *p;
    size_t len, cap;
    int failed;
};

static void sigv4_put(struct sigv4_text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *q = realloc(t->p, cap);
        if (q == NULL) {
            t->failed = 1;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static int sigv4_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Percent-encodes s (keeping '/' when keep_slash). */
static void sigv4_put_encoded(struct sigv4_text *t, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sigv4_unreserved(c) || (keep_slash && c == '/')) {
            sigv4_put(t, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sigv4_put(t, e, 3);
        }
    }
}

static int sigv4_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX (and '+' kept as is) of s into out (at least n bytes);
 * returns the decoded length. */
static size_t sigv4_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = sigv4_hexval(s[i + 1])) >= 0 &&
            (lo = sigv4_hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

struct sigv4_param {
    char *text; /* "key=value", encoded */
};

static int sigv4_param_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sigv4_param *)a)->text, ((const struct sigv4_param *)b)->text);
}

/* The canonical query string: each name=value decoded, encoded again,
 * sorted. Returns 0 or -EINVAL (too many) / -ENOMEM. */
static int sigv4_put_query(struct sigv4_text *t, struct http_slice q)
{
    struct sigv4_param params[SIGV4_MAX_QUERY_PARAMS];
    size_t n = 0;
    int rc = 0;
    const char *p = q.p, *end = q.p + q.len;
    while (rc == 0 && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *ke = eq ? eq : e;
            char *buf = malloc((size_t)(e - p) + 1);
            struct sigv4_text one = {0};
            if (buf == NULL || n == SIGV4_MAX_QUERY_PARAMS) {
                free(buf);
                rc = buf ? -EINVAL : -ENOMEM;
                break;
            }
            sigv4_put_encoded(&one, buf, sigv4_decode(p, (size_t)(ke - p), buf), 0);
            sigv4_put(&one, "=", 1);
            if (eq)
                sigv4_put_encoded(&one, buf, sigv4_decode(eq + 1, (size_t)(e - eq - 1), buf), 0);
            free(buf);
            if (one.failed) {
                free(one.p);
                rc = -ENOMEM;
                break;
            }
            params[n++].text = one.p;
        }
        p = amp ? amp + 1 : end;
    }
    if (rc == 0)
        qsort(params, n, sizeof(params[0]), sigv4_param_cmp);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            if (i)
                sigv4_put(t, "&", 1);
            sigv4_put(t, params[i].text, strlen(params[i].text));
        }
        free(params[i].text);
    }
    return rc;
}

/* Appends one header's value(s) trimmed, inner runs of spaces made one,
 * repeated fields joined by ','. Returns 0, or -ENOENT when absent. */
static int sigv4_put_header(struct sigv4_text *t, const struct http_msg *msg, const char *name,
                            size_t name_len)
{
    int found = 0;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct http_header *h = &msg->headers[i];
        if (h->name.len != name_len || strncasecmp(h->name.p, name, name_len) != 0)
            continue;
        if (found++)
            sigv4_put(t, ",", 1);
        const char *v = h->value.p, *ve = h->value.p + h->value.len;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (; v < ve; v++) {
            if ((*v == ' ' || *v == '\t') && v + 1 < ve && (v[1] == ' ' || v[1] == '\t'))
                continue;
            sigv4_put(t, *v == '\t' ? " " : v, 1);
        }
    }
    return found ? 0 : -ENOENT;
}

static void sigv4_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = 0;
}

static void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    sigv4_hex(d, 32, out);
}

/* Builds the canonical request into t. Returns 0, -EINVAL (a signed
 * header is missing, host is not signed, a bad list) or -ENOMEM. */
static int sigv4_canonical(struct sigv4_text *t, const struct http_msg *msg,
                           const struct sigv4_auth *a, const char *body, size_t body_len)
{
    char hash[65];
    const char *p = a->signed_headers.p, *end = p + a->signed_headers.len;
    int host = 0, rc = 0;
    size_t n = 0;
    sigv4_put(t, msg->method_str.p, msg->method_str.len);
    sigv4_put(t, "\n", 1);
    sigv4_put_encoded(t, msg->path.p, msg->path.len, 1);
    sigv4_put(t, "\n", 1);
    if ((rc = sigv4_put_query(t, msg->query)) < 0)
        return rc;
    sigv4_put(t, "\n", 1);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        if (e == p || ++n > SIGV4_MAX_SIGNED_HEADERS)
            return -EINVAL;
        for (const char *c = p; c < e; c++)
            if (*c >= 'A' && *c <= 'Z')
                return -EINVAL; /* SignedHeaders are lowercase */
        host |= e - p == 4 && memcmp(p, "host", 4) == 0;
        sigv4_put(t, p, (size_t)(e - p));
        sigv4_put(t, ":", 1);
        if (sigv4_put_header(t, msg, p, (size_t)(e - p)) < 0)
            return -EINVAL;
        sigv4_put(t, "\n", 1);
        p = semi ? semi + 1 : end;
    }
    if (!host)
        return -EINVAL;
    sigv4_put(t, "\n", 1);
    sigv4_put(t, a->signed_headers.p, a->signed_headers.len);
    sigv4_put(t, "\n", 1);
    sigv4_sha256_hex(body ? body : "", body_len, hash);
    sigv4_put(t, hash, 64);
    return t->failed ? -ENOMEM : 0;
}

/* ---- time ---- */

/* Parses YYYYMMDDTHHMMSSZ. Returns 0 with *out, or -EINVAL. */
static int sigv4_parse_date(struct http_slice s, time_t *out)
{
    char buf[17];
    struct tm tm = {0};
    if (s.len != 16 || s.p[8] != 'T' || s.p[15] != 'Z' || !sigv4_all(s.p, 8, "0123456789") ||
        !sigv4_all(s.p + 9, 6, "0123456789"))
        return -EINVAL;
    memcpy(buf, s.p, 16);
    buf[16] = 0;
    if (sscanf(buf, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm);
    return 0;
}

/* ---- verification ---- */

static void sigv4_hmac(const void *key, size_t key_len, const void *data, size_t len,
                       unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

/* The expected signature (hex) of string-to-sign sts. */
static void sigv4_sign(const char *secret, const struct sigv4_auth *a, const char *sts,
                       char out[65])
{
    unsigned char k[32], k2[32];
    size_t slen = strlen(secret);
    char *kk = malloc(slen + 5);
    if (kk == NULL) {
        out[0] = 0;
        return;
    }
    memcpy(kk, "AWS4", 4);
    memcpy(kk + 4, secret, slen);
    sigv4_hmac(kk, slen + 4, a->date.p, a->date.len, k);
    OPENSSL_cleanse(kk, slen + 4);
    free(kk);
    sigv4_hmac(k, 32, a->region.p, a->region.len, k2);
    sigv4_hmac(k2, 32, a->service.p, a->service.len, k);
    sigv4_hmac(k, 32, "aws4_request", 12, k2);
    sigv4_hmac(k2, 32, sts, strlen(sts), k);
    sigv4_hex(k, 32, out);
}

enum sigv4_result sigv4_verify(const struct http_msg *msg, const char *body, size_t body_len,
                               sigv4_secret_fn secret_of, void *arg, time_t now,
                               uint32_t max_skew_s)
{
    struct sigv4_auth a;
    time_t t;
    int ai = http_msg_find(msg, "authorization"), di = http_msg_find(msg, "x-amz-date");
    if (ai < 0)
        return SIGV4_MISSING;
    if (sigv4_parse_authorization(msg->headers[ai].value.p, msg->headers[ai].value.len, &a) < 0 ||
        di < 0 || sigv4_parse_date(msg->headers[di].value, &t) < 0 ||
        memcmp(msg->headers[di].value.p, a.date.p, 8) != 0)
        return SIGV4_MALFORMED;
    const char *secret = secret_of(arg, a.access_key.p, a.access_key.len);
    if (secret == NULL)
        return SIGV4_UNKNOWN_KEY;
    if (t > now + (time_t)max_skew_s || t < now - (time_t)max_skew_s)
        return SIGV4_EXPIRED;
    struct sigv4_text cr = {0}, sts = {0};
    char hash[65], want[65];
    int rc = sigv4_canonical(&cr, msg, &a, body, body_len);
    if (rc < 0) {
        free(cr.p);
        return rc == -ENOMEM ? SIGV4_MISMATCH : SIGV4_MALFORMED;
    }
    sigv4_sha256_hex(cr.p, cr.len, hash);
    free(cr.p);
    sigv4_put(&sts, SIGV4_ALGO "\n", sizeof(SIGV4_ALGO));
    sigv4_put(&sts, msg->headers[di].value.p, 16);
    sigv4_put(&sts, "\n", 1);
    sigv4_put(&sts, a.date.p, (size_t)(a.service.p + a.service.len - a.date.p));
    sigv4_put(&sts, "/aws4_request\n", 14);
    sigv4_put(&sts, hash, 64);
    if (sts.failed) {
        free(sts.p);
        return SIGV4_MISMATCH;
    }
    sigv4_sign(secret, &a, sts.p, want);
    free(sts.p);
    return want[0] && CRYPTO_memcmp(want, a.signature.p, 64) == 0 ? SIGV4_OK : SIGV4_MISMATCH;
}

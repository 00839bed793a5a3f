/* jwt: splits and decodes a compact JWS. Strict, since a token is
 * attacker input and every accepted variation is a place for two parsers
 * (weir's and the issuer's or the backend's) to disagree: exactly three
 * parts, canonical base64url, JSON objects without duplicate members or
 * NUL in strings, no "crit". */
#include "http/steps/jwt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

/* Decodes a base64url JSON object part. Returns the object or NULL. */
static json_t *jwt_decode_object(const char *p, size_t n)
{
    unsigned char *buf = malloc(BASE64_DECODED_MAX(n) + 1);
    if (buf == NULL)
        return NULL;
    ssize_t len = base64url_decode(p, n, buf, BASE64_DECODED_MAX(n) + 1);
    json_t *obj = NULL;
    if (len > 0)
        obj = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

int jwt_parse(const char *s, size_t n, struct jwt_token *tok, const char **why)
{
    memset(tok, 0, sizeof(*tok));
    if (n > JWT_MAX_TOKEN)
        return *why = "token too long", -EINVAL;
    const char *d1 = memchr(s, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(s + n - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(s + n - d2 - 1)) != NULL)
        return *why = "not three dot-separated parts", -EINVAL;
    if (d1 == s || d2 == d1 + 1 || d2 + 1 == s + n)
        return *why = "an empty part", -EINVAL;
    ssize_t sl = base64url_decode(d2 + 1, (size_t)(s + n - d2 - 1), tok->sig, sizeof(tok->sig));
    if (sl <= 0)
        return *why = "bad signature encoding", -EINVAL;
    tok->sig_len = (size_t)sl;
    tok->signed_len = (size_t)(d2 - s);
    if ((tok->header = jwt_decode_object(s, (size_t)(d1 - s))) == NULL)
        return *why = "header is not a base64url JSON object", -EINVAL;
    json_t *alg = json_object_get(tok->header, "alg");
    json_t *kid = json_object_get(tok->header, "kid");
    const char *bad = NULL;
    if (!json_is_string(alg))
        bad = "no \"alg\" string in the header";
    else if (kid != NULL && !json_is_string(kid))
        bad = "\"kid\" is not a string";
    else if (json_object_get(tok->header, "crit") != NULL)
        bad = "\"crit\" extensions are not supported";
    else if ((tok->claims = jwt_decode_object(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
        bad = "claims are not a base64url JSON object";
    if (bad != NULL) {
        jwt_token_free(tok);
        return *why = bad, -EINVAL;
    }
    tok->alg = json_string_value(alg);
    tok->kid = kid ? json_string_value(kid) : NULL;
    return 0;
}

void jwt_token_free(struct jwt_token *tok)
{
    json_decref(tok->header);
    json_decref(tok->claims);
    tok->header = tok->claims = NULL;
    tok->alg = tok->kid = NULL;
}

/* jwt: the JWS compact serialisation of a JSON Web Token (RFC 7515 7.1,
 * RFC 7519): BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(sig).
 * This parses and decodes; checking the signature and claims is the auth
 * step's (auth_jwt.c). */
#ifndef WEIR_HTTP_STEPS_JWT_H
#define WEIR_HTTP_STEPS_JWT_H

#include <jansson.h>
#include <stddef.h>

#define JWT_MAX_TOKEN 8192   /* characters of a whole token */
#define JWT_MAX_SIG 512      /* bytes of a decoded signature (RSA 4096) */

struct jwt_token {
    json_t *header;          /* owned: a JSON object */
    json_t *claims;          /* owned: a JSON object */
    const char *alg;         /* header "alg", inside header */
    const char *kid;         /* header "kid", inside header, or NULL */
    size_t signed_len;       /* the signing input is the token's first signed_len bytes */
    unsigned char sig[JWT_MAX_SIG];
    size_t sig_len;
};

/* Parses token s[0..n) into *tok. The header must be a JSON object with a
 * string "alg", without "crit" (no extension is understood, RFC 7515
 * 4.1.11), the claims a JSON object; neither may repeat a member name; the
 * base64url parts must be canonical and the signature non-empty. Returns 0
 * (free tok with jwt_token_free) or -EINVAL with *why set (a static
 * string); on failure nothing is left to free. Never reads past s + n. */
int jwt_parse(const char *s, size_t n, struct jwt_token *tok, const char **why);
void jwt_token_free(struct jwt_token *tok);

#endif

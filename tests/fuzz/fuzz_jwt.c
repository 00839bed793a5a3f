/* fuzz_jwt: libFuzzer harness for jwt_parse() (src/http/steps/jwt.c).
 *
 * Each input is a token. A parse that succeeds must describe the input:
 * the signing input ends at the second dot, "alg" is a string, both JSON
 * parts are objects and the signature is not empty; a failure must give a
 * reason. Parsing the same bytes twice must give the same answer, and
 * nothing may leak (ASan's leak check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/steps/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct jwt_token tok, again;
    const char *why = NULL, *why2 = NULL;
    int rc = jwt_parse(s, size, &tok, &why);
    int rc2 = jwt_parse(s, size, &again, &why2);
    if (rc != rc2)
        abort();
    if (rc < 0) {
        if (why == NULL || why2 == NULL || strcmp(why, why2) != 0)
            abort();
        return 0;
    }
    if (tok.signed_len >= size || s[tok.signed_len] != '.' || tok.alg == NULL ||
        !json_is_object(tok.header) || !json_is_object(tok.claims) || tok.sig_len == 0 ||
        tok.sig_len != again.sig_len || memcmp(tok.sig, again.sig, tok.sig_len) != 0 ||
        strcmp(tok.alg, again.alg) != 0)
        abort();
    size_t dots = 0;
    for (size_t i = 0; i < size; i++)
        dots += s[i] == '.';
    if (dots != 2)
        abort();
    jwt_token_free(&tok);
    jwt_token_free(&again);
    return 0;
}

/* test_jwt: the compact JWS parser (src/http/steps/jwt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/steps/jwt.h"

/* {"alg":"HS256","kid":"k1"} . {"sub":"ann","n":1} . 4 bytes */
#define GOOD_HEADER "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0"
#define GOOD_CLAIMS "eyJzdWIiOiJhbm4iLCJuIjoxfQ"
#define GOOD GOOD_HEADER "." GOOD_CLAIMS ".AQIDBA"

static int parse(const char *s, struct jwt_token *tok, const char **why)
{
    return jwt_parse(s, strlen(s), tok, why);
}

static void test_good_token(void **state)
{
    struct jwt_token tok;
    const char *why = NULL;
    assert_int_equal(parse(GOOD, &tok, &why), 0);
    assert_string_equal(tok.alg, "HS256");
    assert_string_equal(tok.kid, "k1");
    assert_int_equal(tok.signed_len, strlen(GOOD_HEADER "." GOOD_CLAIMS));
    assert_int_equal(tok.sig_len, 4);
    assert_memory_equal(tok.sig, "\x01\x02\x03\x04", 4);
    assert_string_equal(json_string_value(json_object_get(tok.claims, "sub")), "ann");
    jwt_token_free(&tok);
}

static void test_bad_tokens(void **state)
{
    static const char *const bad[] = {
        "", "a", "a.b", "a.b.c.d", GOOD_HEADER ".." "AQIDBA", "." GOOD_CLAIMS ".AQIDBA",
        GOOD_HEADER "." GOOD_CLAIMS ".",                      /* empty signature */
        GOOD_HEADER "." GOOD_CLAIMS ".AQIDBA=",               /* padding */
        GOOD_HEADER "." GOOD_CLAIMS ".AQIDBB",                /* non-canonical: leftover bits */
        GOOD_HEADER "=." GOOD_CLAIMS ".AQIDBA",
        "eyJhbGciOjF9." GOOD_CLAIMS ".AQIDBA",                /* {"alg":1} */
        "e30." GOOD_CLAIMS ".AQIDBA",                         /* {} */
        "WzFd." GOOD_CLAIMS ".AQIDBA",                        /* [1] */
        "eyJhbGciOiJhIiwiYWxnIjoiYiJ9." GOOD_CLAIMS ".AQIDBA", /* duplicate "alg" */
        "eyJhbGciOiJhIiwiY3JpdCI6WyJ4Il19." GOOD_CLAIMS ".AQIDBA", /* crit */
        "eyJhbGciOiJhIiwia2lkIjoxfQ." GOOD_CLAIMS ".AQIDBA",  /* kid not a string */
        GOOD_HEADER ".InN0ciI.AQIDBA",                        /* claims "str" */
        GOOD_HEADER ".eyJzdWIiOiJhXHUwMDAwYiJ9.AQIDBA",       /* NUL in a string */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jwt_token tok;
        const char *why = NULL;
        if (parse(bad[i], &tok, &why) != -22 || why == NULL)
            fail_msg("accepted or no reason: %s", bad[i]);
        assert_null(tok.header);
        assert_null(tok.claims);
    }
}

static void test_length_and_prefixes(void **state)
{
    /* every proper prefix of a good token is refused, and nothing is read past n */
    const char *s = GOOD;
    for (size_t n = 0; n < strlen(s); n++) {
        struct jwt_token tok;
        const char *why = NULL;
        int rc = jwt_parse(s, n, &tok, &why);
        if (rc == 0)
            jwt_token_free(&tok);
        /* a prefix that ends inside the signature can still be a token (shorter signature) */
        if (n <= strlen(GOOD_HEADER "." GOOD_CLAIMS "."))
            assert_int_equal(rc, -22);
    }
    static char big[JWT_MAX_TOKEN + 2];
    memset(big, 'A', sizeof(big) - 1);
    struct jwt_token tok;
    const char *why = NULL;
    assert_int_equal(jwt_parse(big, sizeof(big) - 1, &tok, &why), -22);
    assert_string_equal(why, "token too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_token),
        cmocka_unit_test(test_bad_tokens),
        cmocka_unit_test(test_length_and_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

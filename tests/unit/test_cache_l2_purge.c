/* cache_l2_purge: the SCAN patterns a prefix purge sends keep the key
 * literal, whatever glob characters a URL holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/steps/cache_l2_purge.h"

static void check(const char *key, const char *tail, const char *want)
{
    char *p = cache_l2_purge_pattern(key, strlen(key), tail);
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);
}

static void test_pattern_escapes_globs(void **state)
{
    (void)state;
    check("weir:cache:e:v0|h/a", "*", "weir:cache:e:v0|h/a*");
    check("weir:cache:e:v0|h/a*b?c[d]e\\f", "*", "weir:cache:e:v0|h/a\\*b\\?c\\[d\\]e\\\\f*");
    check("weir:cache:e:v0|h/x?q=1", "|*", "weir:cache:e:v0|h/x\\?q=1|*");
    check("", "*", "*");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_escapes_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

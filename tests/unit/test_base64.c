/* test_base64: the strict RFC 4648 decoders (core/base64.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"

static ssize_t dec(const char *s, unsigned char *out, size_t size)
{
    return base64_decode(s, strlen(s), out, size);
}

static ssize_t decu(const char *s, unsigned char *out, size_t size)
{
    return base64url_decode(s, strlen(s), out, size);
}

/* RFC 4648 section 10 vectors, with and without padding. */
static void test_rfc_vectors(void **state)
{
    static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy" };
    static const char *const encu[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    const char *plain = "foobar";
    unsigned char out[16];
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(dec(enc[i], out, sizeof(out)), i);
        assert_memory_equal(out, plain, i);
        assert_int_equal(decu(encu[i], out, sizeof(out)), i);
        assert_memory_equal(out, plain, i);
    }
}

static void test_alphabets(void **state)
{
    unsigned char out[8];
    assert_int_equal(dec("+/+/", out, sizeof(out)), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(decu("-_-_", out, sizeof(out)), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(dec("-_-_", out, sizeof(out)), -1);
    assert_int_equal(decu("+/+/", out, sizeof(out)), -1);
}

static void test_rejects(void **state)
{
    unsigned char out[16];
    assert_int_equal(dec("Zg=", out, sizeof(out)), -1);     /* length not a multiple of 4 */
    assert_int_equal(dec("Zg", out, sizeof(out)), -1);      /* padding required */
    assert_int_equal(dec("Z===", out, sizeof(out)), -1);    /* too much padding */
    assert_int_equal(dec("Zh==", out, sizeof(out)), -1);    /* leftover bits set */
    assert_int_equal(dec("Zg==Zg==", out, sizeof(out)), -1); /* padding inside */
    assert_int_equal(dec("Zm9 v", out, sizeof(out)), -1);
    assert_int_equal(decu("Zg==", out, sizeof(out)), -1);   /* no padding in base64url */
    assert_int_equal(decu("Z", out, sizeof(out)), -1);      /* n mod 4 == 1 */
    assert_int_equal(decu("Zh", out, sizeof(out)), -1);
    assert_int_equal(decu("Zm9vYmFy", out, 5), -1);         /* out too small */
    assert_int_equal(decu("Zm9vYmFy", out, 6), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_vectors),
        cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

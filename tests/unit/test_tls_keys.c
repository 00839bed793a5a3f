/* test_tls_keys: the session ticket key file parser (tls/tls_keys.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tls/tls_internal.h"

/* 80 bytes 0x00..0x4f, base64 */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk8="
/* 80 bytes 0xff */
#define KEY_B "//////////////////////////////////////////////////////////////////////////////////////////////////////////8="

static int parse(const char *text, struct tls_ticket_key *keys, unsigned max, unsigned *line)
{
    return tls_keys_parse(text, strlen(text), keys, max, line);
}

static void test_keys_in_order_with_comments_and_blanks(void **state)
{
    struct tls_ticket_key k[TLS_TICKET_KEYS_MAX];
    unsigned line = 99;
    assert_int_equal(parse("# rotated 2026-12-01\n\n  " KEY_A "  \r\n\t" KEY_B, k, TLS_TICKET_KEYS_MAX, &line), 2);
    assert_int_equal(k[0].name[0], 0x00);
    assert_int_equal(k[0].name[15], 0x0f);
    assert_int_equal(k[0].hmac[0], 0x10);
    assert_int_equal(k[0].aes[31], 0x4f);
    assert_int_equal(k[1].aes[31], 0xff);
}

static void test_bad_line_is_reported(void **state)
{
    struct tls_ticket_key k[TLS_TICKET_KEYS_MAX];
    unsigned line = 0;
    assert_true(parse(KEY_A "\n\nnot base64\n" KEY_B "\n", k, TLS_TICKET_KEYS_MAX, &line) < 0);
    assert_int_equal(line, 3);
    /* 48 bytes (the old nginx size) is not a key of this file */
    line = 0;
    assert_true(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n", k,
                      TLS_TICKET_KEYS_MAX, &line) < 0);
    assert_int_equal(line, 1);
}

static void test_no_key_and_too_many(void **state)
{
    struct tls_ticket_key k[2];
    unsigned line = 7;
    assert_true(parse("", k, 2, &line) < 0);
    assert_int_equal(line, 0);
    assert_true(parse("# nothing\n\n", k, 2, &line) < 0);
    assert_int_equal(line, 0);
    assert_true(parse(KEY_A "\n" KEY_B "\n" KEY_A "\n", k, 2, &line) < 0);
    assert_int_equal(line, 3);
    assert_int_equal(parse(KEY_A "\n" KEY_B "\n", k, 2, &line), 2);
}

static void test_reads_nothing_past_the_length(void **state)
{
    struct tls_ticket_key k[TLS_TICKET_KEYS_MAX];
    unsigned line = 0;
    const char *text = KEY_A "\n" KEY_B;
    /* cut inside the second key: that line is invalid */
    assert_true(tls_keys_parse(text, strlen(KEY_A) + 1 + 10, k, TLS_TICKET_KEYS_MAX, &line) < 0);
    assert_int_equal(line, 2);
    assert_int_equal(tls_keys_parse(text, strlen(KEY_A) + 1, k, TLS_TICKET_KEYS_MAX, &line), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_in_order_with_comments_and_blanks),
        cmocka_unit_test(test_bad_line_is_reported),
        cmocka_unit_test(test_no_key_and_too_many),
        cmocka_unit_test(test_reads_nothing_past_the_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

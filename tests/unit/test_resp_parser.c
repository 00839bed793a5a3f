/* Unit tests for src/resp/resp_parser.c.
 *
 * Every case is parsed three ways: whole, one byte per call, and in two
 * pieces at every split point; all must agree on the outcome, the bytes
 * consumed and the arguments found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp/resp_parser.h"

#define LIT(s) s, sizeof(s) - 1

static const struct resp_limits test_lim = {
    .max_bulk_bytes = 1000, .max_array_len = 100, .max_depth = 3, .max_inline_bytes = 64 };

struct outcome {
    int rc;           /* 1 done, 0 partial, -1 error */
    size_t consumed;  /* bytes of the message */
    uint8_t err;
    uint32_t n_args;
    int64_t int_value;
    int64_t top_len;
    uint8_t type;
    char args[8][32];
};

/* Parses text feeding pieces of `step` bytes (0: whole), first piece `first`. */
static struct outcome parse_steps(enum resp_mode mode, const char *text, size_t len, size_t first,
                                  size_t step)
{
    struct resp_arg args[8];
    struct resp_parser p;
    struct outcome o;
    size_t pos = 0;

    memset(&o, 0, sizeof(o));
    resp_parser_init(&p, mode, &test_lim, args, 8);
    while (pos < len) {
        size_t n = pos == 0 && first ? first : step ? step : len - pos;
        if (n > len - pos)
            n = len - pos;
        char *piece = malloc(n ? n : 1); /* exact size: ASan catches a read past it */
        memcpy(piece, text + pos, n);
        ssize_t c = resp_parse(&p, piece, n);
        free(piece);
        if (c < 0) {
            o.rc = -1;
            o.err = p.err;
            return o;
        }
        assert_true((size_t)c <= n);
        pos += (size_t)c;
        if (p.done)
            break;
        assert_int_equal((size_t)c, n);
    }
    o.rc = p.done ? 1 : 0;
    o.consumed = pos;
    o.n_args = p.n_args;
    o.int_value = p.int_value;
    o.top_len = p.top_len;
    o.type = p.type;
    assert_int_equal(p.off, pos);
    for (uint32_t i = 0; p.done && i < p.arg_done && i < 8; i++)
        snprintf(o.args[i], sizeof(o.args[i]), "%.*s", (int)args[i].len, text + args[i].off);
    return o;
}

/* Parses all ways and checks they agree; returns the whole-buffer outcome. */
static struct outcome parse_all(enum resp_mode mode, const char *text, size_t len)
{
    struct outcome whole = parse_steps(mode, text, len, 0, 0);
    struct outcome bytes = parse_steps(mode, text, len, 0, 1);
    assert_int_equal(whole.rc, bytes.rc);
    assert_int_equal(whole.err, bytes.err);
    assert_int_equal(whole.consumed, bytes.consumed);
    assert_memory_equal(whole.args, bytes.args, sizeof(whole.args));
    for (size_t k = 1; k < len; k++) {
        struct outcome two = parse_steps(mode, text, len, k, 0);
        assert_int_equal(whole.rc, two.rc);
        assert_int_equal(whole.consumed, two.consumed);
        assert_int_equal(whole.int_value, two.int_value);
        assert_memory_equal(whole.args, two.args, sizeof(whole.args));
    }
    return whole;
}

static void test_request_multibulk(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.consumed, 31);
    assert_int_equal(o.n_args, 3);
    assert_string_equal(o.args[0], "SET");
    assert_string_equal(o.args[1], "k");
    assert_string_equal(o.args[2], "hello");
}

static void test_request_stops_at_message_end(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.consumed, 14);
}

static void test_request_empty_bulk_and_binary(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("*2\r\n$0\r\n\r\n$4\r\na\r\nb\r\n"));
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.args[0], "");
    assert_string_equal(o.args[1], "a\r\nb");
}

static void test_request_empty_array(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("*0\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.n_args, 0);
    o = parse_all(RESP_MODE_REQUEST, LIT("*-1\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.n_args, 0);
}

static void test_request_inline(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("  set\tab   cd \r\nGET x\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.consumed, 16);
    assert_int_equal(o.n_args, 3);
    assert_int_equal(o.type, 'i');
    assert_string_equal(o.args[0], "set");
    assert_string_equal(o.args[1], "ab");
    assert_string_equal(o.args[2], "cd");
    o = parse_all(RESP_MODE_REQUEST, LIT("\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.n_args, 0);
    o = parse_all(RESP_MODE_REQUEST, LIT("PING\n"));
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.args[0], "PING");
}

/* arg_stop: one call per argument, each returning right after it. */
static void test_request_arg_stop(void **state)
{
    static const char text[] = "*3\r\n$4\r\nMSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n";
    static const size_t ends[] = { 14, 21, 32 }; /* offsets right after each argument */
    struct resp_parser p;
    size_t pos = 0;
    resp_parser_init(&p, RESP_MODE_REQUEST, &test_lim, NULL, 0);
    p.arg_stop = 1;
    for (int i = 0; i < 3; i++) {
        ssize_t c = resp_parse(&p, text + pos, sizeof(text) - 1 - pos);
        assert_true(c > 0);
        pos += (size_t)c;
        assert_int_equal(pos, ends[i]);
        assert_int_equal(p.arg_done, i + 1);
        assert_int_equal(p.done, i == 2);
    }
    assert_int_equal(p.arg_len, 5);
    /* an argument cut short: everything consumed, no argument completed */
    resp_parser_init(&p, RESP_MODE_REQUEST, &test_lim, NULL, 0);
    p.arg_stop = 1;
    assert_int_equal(resp_parse(&p, text, 18), 14);
    assert_int_equal(resp_parse(&p, text + 14, 4), 4);
    assert_int_equal(p.arg_done, 1);
    assert_int_equal(resp_parse(&p, text + 18, 3), 3);
    assert_int_equal(p.arg_done, 2);
    assert_int_equal(p.arg_len, 1);
}

static void test_request_partial(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REQUEST, LIT("*2\r\n$3\r\nGET\r\n$10\r\nabc"));
    assert_int_equal(o.rc, 0);
    o = parse_all(RESP_MODE_REQUEST, LIT("PING"));
    assert_int_equal(o.rc, 0);
}

static void test_request_errors(void **state)
{
    static const struct {
        const char *text;
        enum resp_error err;
    } cases[] = {
        { "*2\r\n:1\r\n", RESP_ERR_EXPECTED_BULK },
        { "*2\r\n$3\r\nGET\r\n*1\r\n", RESP_ERR_EXPECTED_BULK },
        { "*x\r\n", RESP_ERR_MULTIBULK_LEN },
        { "*\r\n", RESP_ERR_MULTIBULK_LEN },
        { "*101\r\n", RESP_ERR_MULTIBULK_LEN },
        { "*-2\r\n", RESP_ERR_MULTIBULK_LEN },
        { "*99999999999999999999999\r\n", RESP_ERR_MULTIBULK_LEN },
        { "*1\r\n$1001\r\n", RESP_ERR_BULK_LEN },
        { "*1\r\n$-1\r\n", RESP_ERR_BULK_LEN },
        { "*1\r\n$1x\r\n", RESP_ERR_BULK_LEN },
        { "*1\r\n$3\r\nGETX\r\n", RESP_ERR_CRLF },
        { "*1\r\n$3\r\nGET\rx", RESP_ERR_CRLF },
        { "*1\rx", RESP_ERR_CRLF },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          RESP_ERR_INLINE_TOO_BIG },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct outcome o = parse_all(RESP_MODE_REQUEST, cases[i].text, strlen(cases[i].text));
        if (o.rc != -1 || o.err != cases[i].err)
            fail_msg("case %zu (%s): rc %d err %d", i, cases[i].text, o.rc, o.err);
    }
}

static void test_reply_types(void **state)
{
    struct outcome o = parse_all(RESP_MODE_REPLY, LIT("+OK\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.type, '+');
    o = parse_all(RESP_MODE_REPLY, LIT("-ERR wrong\r\n+OK\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.consumed, 12);
    assert_int_equal(o.type, '-');
    o = parse_all(RESP_MODE_REPLY, LIT(":-42\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.int_value, -42);
    o = parse_all(RESP_MODE_REPLY, LIT("$-1\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.top_len, -1);
    o = parse_all(RESP_MODE_REPLY, LIT("*-1\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.top_len, -1);
    o = parse_all(RESP_MODE_REPLY, LIT("$5\r\nhe\r\no\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.top_len, 5);
    o = parse_all(RESP_MODE_REPLY, LIT("*3\r\n*1\r\n:1\r\n$1\r\na\r\n*0\r\n:7\r\n"));
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.consumed, 23);
    assert_int_equal(o.top_len, 3);
    o = parse_all(RESP_MODE_REPLY, LIT(":9223372036854775807\r\n"));
    assert_int_equal(o.int_value, INT64_MAX);
    o = parse_all(RESP_MODE_REPLY, LIT(":-9223372036854775808\r\n"));
    assert_int_equal(o.int_value, INT64_MIN);
}

/* RESP3 replies: maps and attributes hold 2N elements, an attribute the
 * element after it too; blobs and the line types. */
static void test_reply_resp3(void **state)
{
    static const char *const whole[] = {
        "%2\r\n$1\r\na\r\n:1\r\n+b\r\n~2\r\n,1.5\r\n#t\r\n",
        "_\r\n", "#f\r\n", ",-inf\r\n", "(3492890328409238509324850943850943825024385\r\n",
        "=15\r\ntxt:Some string\r\n", "!21\r\nSYNTAX invalid syntax\r\n",
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        "|1\r\n+key\r\n:7\r\n*2\r\n:1\r\n_\r\n", "%0\r\n", "*1\r\n%1\r\n_\r\n_\r\n",
    };
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
        struct outcome o = parse_all(RESP_MODE_REPLY, whole[i], strlen(whole[i]));
        assert_int_equal(o.rc, 1);
        assert_int_equal(o.consumed, strlen(whole[i]));
    }
    struct outcome o = parse_all(RESP_MODE_REPLY, LIT("%2\r\n+a\r\n:1\r\n+b\r\n"));
    assert_int_equal(o.rc, 0); /* the second pair's value is missing */
    o = parse_all(RESP_MODE_REPLY, LIT("%-1\r\n"));
    assert_int_equal(o.rc, -1);
    o = parse_all(RESP_MODE_REPLY, LIT("=-1\r\n"));
    assert_int_equal(o.rc, -1);
    /* requests stay RESP2 */
    o = parse_all(RESP_MODE_REQUEST, LIT("*1\r\n%1\r\n"));
    assert_int_equal(o.rc, -1);
}

static void test_reply_errors(void **state)
{
    static const struct {
        const char *text;
        enum resp_error err;
    } cases[] = {
        { "?x\r\n", RESP_ERR_BAD_TYPE },
        { ":9223372036854775808\r\n", RESP_ERR_BAD_NUMBER },
        { ":\r\n", RESP_ERR_BAD_NUMBER },
        { "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", RESP_ERR_TOO_DEEP },
        { "+a\nb\r\n", RESP_ERR_CRLF },
        { "+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
          RESP_ERR_LINE_TOO_LONG },
        { "$-2\r\n", RESP_ERR_BULK_LEN },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct outcome o = parse_all(RESP_MODE_REPLY, cases[i].text, strlen(cases[i].text));
        if (o.rc != -1 || o.err != cases[i].err)
            fail_msg("case %zu (%s): rc %d err %d", i, cases[i].text, o.rc, o.err);
    }
}

static void test_reset_and_args_past_cap(void **state)
{
    struct resp_arg args[2];
    struct resp_parser p;
    const char text[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*1\r\n$1\r\nd\r\n";

    resp_parser_init(&p, RESP_MODE_REQUEST, &test_lim, args, 2);
    ssize_t n = resp_parse(&p, text, sizeof(text) - 1);
    assert_int_equal(n, 25);
    assert_int_equal(p.arg_done, 3);
    assert_int_equal(args[1].off, 15);
    assert_int_equal(resp_parse(&p, text + n, 1), 0); /* done: consumes nothing */
    resp_parser_reset(&p);
    assert_int_equal(resp_parse(&p, text + n, sizeof(text) - 1 - (size_t)n), 11);
    assert_int_equal(p.n_args, 1);
    assert_int_equal(args[0].off, 8);
}

static void test_error_texts(void **state)
{
    assert_string_equal(resp_error_text(RESP_ERR_MULTIBULK_LEN),
                        "Protocol error: invalid multibulk length");
    assert_string_equal(resp_error_text((enum resp_error)200), "Protocol error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_multibulk),
        cmocka_unit_test(test_request_stops_at_message_end),
        cmocka_unit_test(test_request_empty_bulk_and_binary),
        cmocka_unit_test(test_request_empty_array),
        cmocka_unit_test(test_request_inline),
        cmocka_unit_test(test_request_arg_stop),
        cmocka_unit_test(test_request_partial),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_reply_types),
        cmocka_unit_test(test_reply_resp3),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_reset_and_args_past_cap),
        cmocka_unit_test(test_error_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

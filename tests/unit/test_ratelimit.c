/* Unit tests for the rate_limit step's algorithms (ratelimit_algo.c) over a
 * clock the test drives, and its shared table (ratelimit_table.c): expiry,
 * max_keys eviction and exactness under concurrent threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_parser.h"
#include "http/steps/ratelimit_algo.h"
#include "http/steps/ratelimit_key.h"
#include "http/steps/ratelimit_store.h"
#include "http/steps/ratelimit_table.h"

struct rl_fixture {
    struct rl_params p;
    struct rl_state s;
    uint64_t log[64];
    struct rl_decision d;
};

static struct rl_fixture fx(enum rl_algo a, uint64_t count, uint64_t period_ms, uint64_t burst)
{
    struct rl_fixture f;
    memset(&f, 0, sizeof(f));
    f.p = (struct rl_params){ a, count, period_ms, burst, 0 };
    return f;
}

static int at(struct rl_fixture *f, uint64_t now)
{
    rl_decide(&f->p, &f->s, f->log, now, &f->d);
    return f->d.allowed;
}

/* Requests at `now` until one is refused; returns how many were allowed. */
static int burst_at(struct rl_fixture *f, uint64_t now)
{
    int n = 0;
    while (at(f, now) && n < 1000)
        n++;
    return n;
}

static void test_token_bucket(void **state)
{
    struct rl_fixture f = fx(RL_TOKEN_BUCKET, 10, 1000, 5); /* 10/s, burst 5 */
    assert_true(at(&f, 1000));
    assert_int_equal(f.d.limit, 5);
    assert_int_equal(f.d.remaining, 4);
    assert_int_equal(f.d.reset_ms, 100);
    assert_int_equal(burst_at(&f, 1000), 4);
    assert_int_equal(f.d.remaining, 0);
    assert_int_equal(f.d.retry_after_ms, 100);
    assert_false(at(&f, 1099));         /* one token every 100 ms */
    assert_int_equal(f.d.retry_after_ms, 1);
    assert_true(at(&f, 1100));
    assert_false(at(&f, 1100));
    assert_int_equal(burst_at(&f, 1350), 2); /* 250 ms: 2.5 tokens */
    assert_true(at(&f, 1400));               /* the half token counted */
    assert_int_equal(burst_at(&f, 100000), 5); /* never more than burst */
    assert_false(at(&f, 500));          /* a clock going back is held */
}

static void test_token_bucket_default_burst_over_time(void **state)
{
    struct rl_fixture f = fx(RL_TOKEN_BUCKET, 3, 60000, 3); /* 3/m */
    assert_int_equal(burst_at(&f, 0), 3);
    int allowed = 0;
    for (uint64_t t = 0; t < 60000; t += 1000)
        allowed += at(&f, t);
    assert_int_equal(allowed, 2); /* one token per 20 s: at 20 s and 40 s */
}

static void test_leaky_bucket(void **state)
{
    struct rl_fixture f = fx(RL_LEAKY_BUCKET, 10, 1000, 1); /* strictly 1 per 100 ms */
    assert_true(at(&f, 5000));
    assert_false(at(&f, 5000));
    assert_int_equal(f.d.retry_after_ms, 100);
    assert_false(at(&f, 5099));
    assert_true(at(&f, 5100));
    struct rl_fixture g = fx(RL_LEAKY_BUCKET, 10, 1000, 3);
    assert_int_equal(burst_at(&g, 0), 3);
    assert_int_equal(g.d.retry_after_ms, 100);
    assert_true(at(&g, 100));
    assert_int_equal(g.d.remaining, 0);
    assert_int_equal(g.d.reset_ms, 300);
    assert_int_equal(rl_idle_at(&g.p, &g.s, NULL), 400);
}

static void test_leaky_bucket_delay(void **state)
{
    struct rl_fixture f = fx(RL_LEAKY_BUCKET, 1, 1000, 1); /* 1/s, no burst */
    f.p.delay_ms = 1500;
    assert_true(at(&f, 10000));
    assert_int_equal(f.d.delay_ms, 0);
    assert_true(at(&f, 10000));         /* held back one second */
    assert_int_equal(f.d.delay_ms, 1000);
    assert_int_equal(f.d.remaining, 0);
    assert_false(at(&f, 10000));        /* would wait 2 s: more than delay */
    assert_int_equal(f.d.retry_after_ms, 500);
    assert_false(at(&f, 10499));
    assert_true(at(&f, 10500));         /* now 1.5 s */
    assert_int_equal(f.d.delay_ms, 1500);
    assert_true(at(&f, 12500));         /* 2 s leaked: 0.5 s still queued ahead */
    assert_int_equal(f.d.delay_ms, 500);
    assert_int_equal(rl_idle_at(&f.p, &f.s, NULL), 14000);
}

static void test_fixed_window(void **state)
{
    struct rl_fixture f = fx(RL_FIXED_WINDOW, 3, 1000, 0);
    assert_int_equal(burst_at(&f, 1500), 3);
    assert_int_equal(f.d.retry_after_ms, 500);
    assert_int_equal(f.d.reset_ms, 500);
    assert_false(at(&f, 1999));
    assert_int_equal(burst_at(&f, 2000), 3); /* the window boundary resets */
    assert_int_equal(burst_at(&f, 2999), 0);
    assert_int_equal(rl_idle_at(&f.p, &f.s, NULL), 3000);
}

static void test_sliding_window_counter(void **state)
{
    struct rl_fixture f = fx(RL_SLIDING_WINDOW_COUNTER, 10, 1000, 0);
    assert_int_equal(burst_at(&f, 1000), 10);
    /* at 2250 the previous window weighs 75 %: 7.5 of 10 used */
    assert_int_equal(burst_at(&f, 2250), 2);
    assert_false(at(&f, 2250));
    /* weighted 9.5 now: room again when the previous weighs 5 less... 50 ms */
    assert_int_equal(f.d.retry_after_ms, 50);
    assert_false(at(&f, 2299));
    assert_true(at(&f, 2300));
    /* two windows later everything is forgotten */
    assert_int_equal(burst_at(&f, 4000), 10);
    assert_int_equal(rl_idle_at(&f.p, &f.s, NULL), 6000);
}

static void test_sliding_window_log(void **state)
{
    struct rl_fixture f = fx(RL_SLIDING_WINDOW_LOG, 3, 1000, 0);
    assert_true(at(&f, 0));
    assert_true(at(&f, 400));
    assert_true(at(&f, 800));
    assert_int_equal(f.d.remaining, 0);
    assert_false(at(&f, 999));
    assert_int_equal(f.d.retry_after_ms, 1);
    assert_true(at(&f, 1000));          /* the request at 0 left the window */
    assert_false(at(&f, 1399));
    assert_true(at(&f, 1400));
    assert_int_equal(f.d.remaining, 0);
    assert_int_equal(f.d.reset_ms, 1000);
    assert_true(at(&f, 1800));
    assert_int_equal(f.d.remaining, 0);
    at(&f, 2500);                        /* 1800 and 2500 are inside */
    assert_int_equal(f.d.remaining, 1);
    assert_int_equal(rl_idle_at(&f.p, &f.s, f.log), 3500);
}

/* Exact where a fixed window lets twice the limit through at a boundary. */
static void test_sliding_log_is_exact_at_boundary(void **state)
{
    struct rl_fixture log = fx(RL_SLIDING_WINDOW_LOG, 5, 1000, 0);
    struct rl_fixture fixed = fx(RL_FIXED_WINDOW, 5, 1000, 0);
    int a = burst_at(&log, 999) + burst_at(&log, 1000);
    int b = burst_at(&fixed, 999) + burst_at(&fixed, 1000);
    assert_int_equal(a, 5);
    assert_int_equal(b, 10);
}

static void test_table_keys_and_expiry(void **state)
{
    struct rl_params p = { RL_FIXED_WINDOW, 2, 1000, 1, 0 };
    struct rl_table *t = rl_table_new(&p, 1000);
    struct rl_decision d;
    assert_non_null(t);
    assert_int_equal(rl_table_decide(t, "a", 1, 10, &d), 0);
    assert_true(d.allowed);
    assert_int_equal(rl_table_decide(t, "a", 1, 10, &d), 0);
    assert_true(d.allowed);
    assert_int_equal(rl_table_decide(t, "a", 1, 10, &d), 0);
    assert_false(d.allowed);
    assert_int_equal(rl_table_decide(t, "b", 1, 10, &d), 0);
    assert_true(d.allowed);              /* another key, another budget */
    assert_int_equal(rl_table_count(t), 2);
    /* after the window every key is idle: new decisions forget them */
    char k[16];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(k, sizeof(k), "x%d", i);
        rl_table_decide(t, k, (size_t)n, 5000, &d);
    }
    assert_int_equal(rl_table_count(t), 200);
    /* each decision forgets at most two idle keys of its shard */
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < 400; i++) {
            int n = snprintf(k, sizeof(k), "y%d", i);
            rl_table_decide(t, k, (size_t)n, 9000, &d);
        }
    }
    assert_int_equal(rl_table_count(t), 400); /* every x forgotten, nothing evicted */
    assert_int_equal(rl_table_evictions(t), 0);
    rl_table_free(t);
}

static void test_table_max_keys_evicts_lru(void **state)
{
    struct rl_params p = { RL_FIXED_WINDOW, 1, 60000, 1, 0 };
    struct rl_table *t = rl_table_new(&p, 1); /* one key per shard */
    struct rl_decision d;
    char k[16];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(k, sizeof(k), "k%d", i);
        rl_table_decide(t, k, (size_t)n, 10, &d);
        assert_true(d.allowed);
    }
    assert_true(rl_table_count(t) <= RL_TABLE_SHARDS);
    assert_int_equal(rl_table_evictions(t), 1000 - rl_table_count(t));
    rl_table_free(t);
}

static void test_table_long_keys_cut(void **state)
{
    struct rl_params p = { RL_FIXED_WINDOW, 1, 60000, 1, 0 };
    struct rl_table *t = rl_table_new(&p, 100);
    struct rl_decision d;
    char a[RL_KEY_MAX + 10], b[RL_KEY_MAX + 10];
    memset(a, 'a', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[RL_KEY_MAX + 5] = 'b';
    rl_table_decide(t, a, sizeof(a), 1, &d);
    assert_true(d.allowed);
    rl_table_decide(t, b, sizeof(b), 1, &d);
    assert_false(d.allowed);
    rl_table_free(t);
}

struct rl_thread_arg {
    struct rl_table *t;
    int allowed;
};

static void *rl_hammer(void *p)
{
    struct rl_thread_arg *a = p;
    struct rl_decision d;
    for (int i = 0; i < 5000; i++) {
        rl_table_decide(a->t, "shared", 6, 1000, &d);
        a->allowed += d.allowed;
    }
    return NULL;
}

static void test_table_exact_across_threads(void **state)
{
    for (int algo = 0; algo < RL_ALGO_COUNT; algo++) {
        struct rl_params p = { (enum rl_algo)algo, 1000, 60000, 1000, 0 };
        struct rl_table *t = rl_table_new(&p, 100);
        struct rl_thread_arg args[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            args[i] = (struct rl_thread_arg){ t, 0 };
            assert_int_equal(pthread_create(&th[i], NULL, rl_hammer, &args[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            total += args[i].allowed;
        }
        assert_int_equal(total, 1000);
        rl_table_free(t);
    }
}

/* ---- request-head key parts (ratelimit_key.c) ---- */

static struct http_msg g_msg;

static const struct http_msg *parse(const char *head)
{
    struct http_limits lim = { 8192, 65536, 100 };
    http_msg_init(&g_msg);
    assert_true(http_parse_request(head, strlen(head), &g_msg, &lim) > 0);
    return &g_msg;
}

static int slice_is(struct http_slice s, const char *want)
{
    return s.p != NULL && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void test_cidr_parse(void **state)
{
    struct rl_cidr c[3];
    assert_int_equal(rl_cidr_parse("10.0.0.0/8", &c[0]), 0);
    assert_int_equal(c[0].net.family, 4); /* 104 bits of an IPv4-mapped address */
    assert_int_equal(c[0].net.prefix, 8);
    assert_int_equal(rl_cidr_parse("2001:db8::/32", &c[1]), 0);
    assert_int_equal(c[1].net.family, 6);
    assert_int_equal(c[1].net.prefix, 32);
    assert_int_equal(rl_cidr_parse("192.0.2.7", &c[2]), 0);
    assert_int_equal(c[2].net.family, 4); /* one host */
    assert_int_equal(c[2].net.prefix, 32);
    assert_true(rl_cidr_match(c, 3, "10.200.1.1", 10));
    assert_false(rl_cidr_match(c, 3, "11.0.0.1", 8));
    assert_true(rl_cidr_match(c, 3, "2001:db8:ffff::1", 16));
    assert_false(rl_cidr_match(c, 3, "2001:db9::1", 11));
    assert_true(rl_cidr_match(c, 3, "192.0.2.7", 9));
    assert_false(rl_cidr_match(c, 3, "192.0.2.8", 9));
    assert_false(rl_cidr_match(c, 3, "garbage", 7));
    struct rl_cidr odd;
    assert_int_equal(rl_cidr_parse("10.0.0.0/12", &odd), 0);
    assert_true(rl_cidr_match(&odd, 1, "10.15.255.255", 13));
    assert_false(rl_cidr_match(&odd, 1, "10.16.0.0", 9));
    assert_int_equal(rl_cidr_parse("10.0.0.0/33", &odd), -ERANGE);
    assert_int_equal(rl_cidr_parse("::/129", &odd), -ERANGE);
    assert_int_equal(rl_cidr_parse("10.0.0/8", &odd), -EINVAL);
    assert_int_equal(rl_cidr_parse("", &odd), -EINVAL);
}

static void test_client_ip_forwarded(void **state)
{
    struct rl_cidr t[2];
    rl_cidr_parse("10.0.0.0/8", &t[0]);
    rl_cidr_parse("::1", &t[1]);
    struct http_slice peer = { "10.0.0.2", 8 }, outside = { "192.0.2.1", 9 };
    const struct http_msg *m = parse("GET / HTTP/1.1\r\nHost: a\r\n"
                                     "X-Forwarded-For: 203.0.113.9 ,198.51.100.1, 10.0.0.7\r\n\r\n");
    assert_true(slice_is(rl_key_client_ip(m, peer, t, 2), "198.51.100.1"));
    assert_true(slice_is(rl_key_client_ip(m, outside, t, 2), "192.0.2.1")); /* not a proxy */
    assert_true(slice_is(rl_key_client_ip(m, peer, t, 0), "10.0.0.2"));     /* none trusted */
    m = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
              "X-Forwarded-For: 10.1.1.1, ::1\r\n\r\n");
    assert_true(slice_is(rl_key_client_ip(m, peer, t, 2), "1.1.1.1")); /* across fields */
    m = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: ,10.3.3.3 , ,10.4.4.4\r\n\r\n");
    assert_true(slice_is(rl_key_client_ip(m, peer, t, 2), "10.3.3.3")); /* all trusted */
    m = parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(slice_is(rl_key_client_ip(m, peer, t, 2), "10.0.0.2"));
}

static void test_cookie(void **state)
{
    const struct http_msg *m = parse("GET / HTTP/1.1\r\nHost: a\r\nCookie: sidx=1; a=2\r\n"
                                     "Cookie: b=; sid=abc;c=3\r\n\r\n");
    assert_true(slice_is(rl_key_cookie(m, "sid", 3), "abc"));
    assert_true(slice_is(rl_key_cookie(m, "a", 1), "2"));
    assert_true(slice_is(rl_key_cookie(m, "c", 1), "3"));
    assert_true(slice_is(rl_key_cookie(m, "b", 1), ""));
    assert_null(rl_key_cookie(m, "si", 2).p);
    assert_null(rl_key_cookie(m, "d", 1).p);
}

static void test_sha1(void **state)
{
    char hex[41];
    rl_sha1_hex("abc", 3, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    rl_sha1_hex("", 0, hex);
    assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56: 2 blocks */
    rl_sha1_hex(two, strlen(two), hex);
    assert_string_equal(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char big[1000];
    memset(big, 'a', sizeof(big));
    rl_sha1_hex(big, sizeof(big), hex);
    assert_string_equal(hex, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    assert_int_equal(strlen(rl_store_sha(RL_SLIDING_WINDOW_LOG)), 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_token_bucket_default_burst_over_time),
        cmocka_unit_test(test_leaky_bucket),
        cmocka_unit_test(test_leaky_bucket_delay),
        cmocka_unit_test(test_fixed_window),
        cmocka_unit_test(test_sliding_window_counter),
        cmocka_unit_test(test_sliding_window_log),
        cmocka_unit_test(test_sliding_log_is_exact_at_boundary),
        cmocka_unit_test(test_table_keys_and_expiry),
        cmocka_unit_test(test_table_max_keys_evicts_lru),
        cmocka_unit_test(test_table_long_keys_cut),
        cmocka_unit_test(test_table_exact_across_threads),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_client_ip_forwarded),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_sha1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

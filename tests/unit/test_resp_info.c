/* Unit tests for src/resp/resp_info.c and src/resp/resp_stats.c: INFO's
 * section selection, the sums of the primaries' INFO texts, and the
 * per-worker counters added up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp/resp_info.h"
#include "resp/resp_stats.h"

/* Arguments from a space-separated list. */
static uint32_t sections_of(const char *words)
{
    struct resp_arg args[8];
    uint32_t n = 0;
    for (const char *p = words; *p && n < 8;) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            break;
        args[n].off = (uint32_t)(p - words);
        args[n++].len = (uint32_t)len;
        p += len;
    }
    return resp_info_sections(words, args, n);
}

static void test_sections(void **state)
{
    uint32_t dflt = sections_of("");
    assert_int_equal(sections_of("default"), dflt);
    assert_true(dflt & 1u << RESP_INFO_KEYSPACE);
    assert_false(dflt & 1u << RESP_INFO_COMMANDSTATS);
    assert_true(sections_of("all") & 1u << RESP_INFO_COMMANDSTATS);
    assert_int_equal(sections_of("everything"), sections_of("all"));
    assert_int_equal(sections_of("Server KEYSPACE"), 1u << RESP_INFO_SERVER | 1u << RESP_INFO_KEYSPACE);
    assert_int_equal(sections_of("nosuch"), 0);
    assert_int_equal(sections_of("weir"), 1u << RESP_INFO_WEIR);
}

static void test_add_shard(void **state)
{
    static const char a[] = "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:1000\r\n"
                            "used_memory_human:1000B\r\nmaxmemory:0\r\n# Stats\r\nkeyspace_hits:3\r\n"
                            "keyspace_misses:2\r\nexpired_keys:1\r\n# Keyspace\r\n"
                            "db0:keys=10,expires=2,avg_ttl=100\r\n";
    static const char b[] = "redis_version:7.2.0\r\nused_memory:500\r\nkeyspace_hits:1\r\n"
                            "db0:keys=5,expires=2,avg_ttl=300\r\ndb1:keys=7,expires=0,avg_ttl=0\r\n";
    struct resp_info_shards sh;
    memset(&sh, 0, sizeof(sh));
    resp_info_add_shard(&sh, a, sizeof(a) - 1);
    resp_info_add_shard(&sh, b, sizeof(b) - 1);
    assert_int_equal(sh.answered, 2);
    assert_string_equal(sh.redis_version, "7.0.15");
    assert_int_equal(sh.used_memory, 1500);
    assert_int_equal(sh.hits, 4);
    assert_int_equal(sh.misses, 2);
    assert_int_equal(sh.expired, 1);
    assert_int_equal(sh.keys, 15);
    assert_int_equal(sh.expires, 4);
    assert_int_equal(sh.ttl_sum / sh.expires, 200);
}

static void test_stats_sum_and_rate(void **state)
{
    struct resp_stats *w0 = resp_stats_slot(0), *w1 = resp_stats_slot(1);
    struct resp_stats_sum sum;
    assert_null(resp_stats_slot(RESP_STATS_SLOTS));
    resp_stats_start(1000);
    resp_stats_tick(w0, 1000);
    resp_stats_tick(w1, 1000);
    resp_stat_add(&w0->commands, 300);
    resp_stat_add(&w1->commands, 100);
    resp_stat_add(&w0->clients, 2);
    resp_stat_add(&w1->clients, 1);
    resp_stat_add(&w1->clients, -1);
    resp_stats_tick(w0, 1050); /* too soon: no sample */
    resp_stats_sum(&sum, 2000);
    assert_int_equal(sum.commands, 400);
    assert_int_equal(sum.clients, 2);
    assert_int_equal(sum.ops_per_sec, 400); /* 400 commands in the second since the samples */
    assert_int_equal(sum.uptime_s, 1);
    /* long idle: the newest sample counts, the rate falls */
    resp_stats_tick(w0, 2000);
    resp_stats_tick(w1, 2000);
    resp_stats_sum(&sum, 12000);
    assert_int_equal(sum.ops_per_sec, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_add_shard),
        cmocka_unit_test(test_stats_sum_and_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for core/rcluster: CRC16 and hash slots (values from the
 * Redis Cluster specification and redis-cli CLUSTER KEYSLOT), MOVED/ASK
 * parsing, and the CLUSTER SLOTS walk over hand-built replies. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/rcluster.h"

static void test_crc16_and_slots(void **state)
{
    assert_int_equal(rcluster_crc16("123456789", 9), 0x31c3); /* the specification's check value */
    assert_int_equal(rcluster_slot("foo", 3), 12182);
    assert_int_equal(rcluster_slot("bar", 3), 5061);
    assert_int_equal(rcluster_slot("", 0), 0);
    /* hash tags: the first {...} with something inside */
    assert_int_equal(rcluster_slot("{user1000}.following", 20), rcluster_slot("user1000", 8));
    assert_int_equal(rcluster_slot("{user1000}.followers", 20), rcluster_slot("user1000", 8));
    assert_int_equal(rcluster_slot("foo{bar}{zap}", 13), rcluster_slot("bar", 3));
    assert_int_equal(rcluster_slot("foo{{bar}}zap", 13), rcluster_slot("{bar", 4));
    assert_int_equal(rcluster_slot("foo{}{bar}", 10), rcluster_slot("foo{}{bar}", 10) & 16383);
    assert_int_not_equal(rcluster_slot("foo{}{bar}", 10), rcluster_slot("bar", 3));
    assert_int_equal(rcluster_slot("foo{bar", 7), rcluster_crc16("foo{bar", 7) & 16383);
    assert_int_equal(rcluster_slot("a{b}", 3), rcluster_slot("a{b", 3)); /* length, not NUL, bounds */
}

static void test_redirect_parse(void **state)
{
    struct rcluster_redirect r;

    assert_int_equal(rcluster_redirect_parse("MOVED 3999 127.0.0.1:6381", 25, &r), 0);
    assert_int_equal(r.ask, 0);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    assert_int_equal(rcluster_redirect_parse("ASK 16383 [::1]:7000", 20, &r), 0);
    assert_int_equal(r.ask, 1);
    assert_int_equal(r.slot, 16383);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7000);
    assert_int_equal(rcluster_redirect_parse("ASK 0 ::1:7000", 14, &r), 0);
    assert_string_equal(r.host, "::1");
    assert_int_equal(rcluster_redirect_parse("MOVED 1 :7000", 13, &r), 0);
    assert_string_equal(r.host, "");
    static const char *const bad[] = {
        "MOVED 16384 h:1", "MOVED 1 h",  "MOVED x h:1",  "MOVED 1 h:0",
        "MOVED 1 h:70000", "MOVED 1 h:", "MOVED  1 h:1", "MOVED 1",
        "ERR x",           "MOVED",      "ASK 1 h:1x",   "MOVED -1 h:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rcluster_redirect_parse(bad[i], strlen(bad[i]), &r) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
}

/* ---- CLUSTER SLOTS replies built by hand ---- */

static redisReply pool[256];
static redisReply *ptrs[256];
static size_t used, used_ptrs;

static redisReply *r_int(long long v)
{
    redisReply *r = &pool[used++];
    memset(r, 0, sizeof(*r));
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *r_str(const char *s)
{
    redisReply *r = &pool[used++];
    memset(r, 0, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = (char *)s;
    r->len = strlen(s);
    return r;
}

static redisReply *r_arr(size_t n, ...)
{
    redisReply *r = &pool[used++];
    va_list ap;

    memset(r, 0, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = &ptrs[used_ptrs];
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        ptrs[used_ptrs++] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static char seen[256];

static int collect(void *arg, unsigned first, unsigned last, const struct rcluster_node *nodes,
                   size_t n)
{
    size_t o = strlen(seen);
    snprintf(seen + o, sizeof(seen) - o, "%u-%u@%s:%d", first, last, nodes[0].host, nodes[0].port);
    for (size_t i = 1; i < n; i++) {
        o = strlen(seen);
        snprintf(seen + o, sizeof(seen) - o, ",%s:%d", nodes[i].host, nodes[i].port);
    }
    o = strlen(seen);
    snprintf(seen + o, sizeof(seen) - o, ";");
    return *(int *)arg;
}

static void test_slots_walk(void **state)
{
    int go_on = 0, stop = -ECANCELED;

    used = used_ptrs = 0;
    seen[0] = '\0';
    redisReply *ok = r_arr(2,
                           r_arr(4, r_int(0), r_int(8191),
                                 r_arr(3, r_str("10.0.0.1"), r_int(7000), r_str("id1")),
                                 r_arr(2, r_str("10.0.0.9"), r_int(7009))),
                           r_arr(3, r_int(8192), r_int(16383), r_arr(2, r_str(""), r_int(7001))));
    assert_int_equal(rcluster_slots_walk(ok, "self", collect, &go_on), 2);
    assert_string_equal(seen, "0-8191@10.0.0.1:7000,10.0.0.9:7009;8192-16383@self:7001;");
    seen[0] = '\0';
    assert_int_equal(rcluster_slots_walk(ok, "self", collect, &stop), -ECANCELED);
    assert_string_equal(seen, "0-8191@10.0.0.1:7000,10.0.0.9:7009;");

    redisReply *bad[] = {
        r_arr(0),
        r_int(3),
        r_arr(1, r_arr(3, r_int(5), r_int(4), r_arr(2, r_str("h"), r_int(1)))), /* first > last */
        r_arr(1, r_arr(3, r_int(0), r_int(16384), r_arr(2, r_str("h"), r_int(1)))), /* past 16383 */
        r_arr(1, r_arr(3, r_int(0), r_int(1), r_arr(2, r_str("h"), r_int(0)))),     /* port 0 */
        r_arr(1, r_arr(3, r_int(0), r_int(1), r_arr(1, r_str("h")))),               /* no port */
        r_arr(1, r_arr(2, r_int(0), r_int(1))),                                     /* no node */
        r_arr(1, r_arr(3, r_str("0"), r_int(1), r_arr(2, r_str("h"), r_int(1)))),   /* not an int */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rcluster_slots_walk(bad[i], "self", collect, &go_on) != -EPROTO)
            fail_msg("accepted bad reply %zu", i);
    assert_int_equal(rcluster_slots_walk(NULL, "self", collect, &go_on), -EPROTO);
}

/* a CLUSTER SHARDS node: [ip, endpoint, port, role, health] as Redis 7 sends them */
static redisReply *r_node(const char *ip, const char *endpoint, long long port, const char *role,
                          const char *health)
{
    return r_arr(12, r_str("id"), r_str("abc"), r_str("port"), r_int(port), r_str("ip"),
                 r_str(ip), r_str("endpoint"), r_str(endpoint), r_str("role"), r_str(role),
                 r_str("health"), r_str(health));
}

static void test_shards_walk(void **state)
{
    int go_on = 0;

    used = used_ptrs = 0;
    seen[0] = '\0';
    redisReply *ok = r_arr(3,
        r_arr(4, r_str("slots"), r_arr(4, r_int(0), r_int(99), r_int(200), r_int(300)),
              r_str("nodes"), r_arr(3, r_node("10.0.0.2", "10.0.0.2", 7100, "replica", "online"),
                                    r_node("10.0.0.1", "", 7000, "master", "online"),
                                    r_node("10.0.0.3", "?", 7200, "replica", "failed"))),
        r_arr(4, r_str("slots"), r_arr(0), r_str("nodes"),
              r_arr(1, r_node("10.0.0.5", "10.0.0.5", 7005, "master", "online"))),
        r_arr(4, r_str("slots"), r_arr(2, r_int(100), r_int(199)), r_str("nodes"),
              r_arr(1, r_node("", "", 7001, "master", "online"))));
    assert_int_equal(rcluster_shards_walk(ok, "self", collect, &go_on), 3);
    assert_string_equal(seen, "0-99@10.0.0.1:7000,10.0.0.2:7100;200-300@10.0.0.1:7000,10.0.0.2:7100;"
                              "100-199@self:7001;");

    redisReply *bad[] = {
        r_arr(0), /* no range at all */
        r_int(1),
        r_arr(1, r_arr(4, r_str("slots"), r_arr(2, r_int(5), r_int(4)), r_str("nodes"),
                       r_arr(1, r_node("h", "h", 1, "master", "online")))), /* first > last */
        r_arr(1, r_arr(4, r_str("slots"), r_arr(1, r_int(5)), r_str("nodes"),
                       r_arr(1, r_node("h", "h", 1, "master", "online")))), /* odd bounds */
        r_arr(1, r_arr(4, r_str("slots"), r_arr(2, r_int(0), r_int(1)), r_str("nodes"),
                       r_arr(1, r_node("h", "h", 0, "master", "online")))), /* port 0 */
        r_arr(1, r_arr(2, r_str("slots"), r_arr(2, r_int(0), r_int(1)))), /* no nodes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rcluster_shards_walk(bad[i], "self", collect, &go_on) != -EPROTO)
            fail_msg("accepted bad reply %zu", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_and_slots),
        cmocka_unit_test(test_redirect_parse),
        cmocka_unit_test(test_slots_walk),
        cmocka_unit_test(test_shards_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

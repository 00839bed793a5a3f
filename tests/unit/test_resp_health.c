/* Unit tests for the shared state of src/resp/resp_health.c: what a reload
 * carries over (servers at the same address, the primary sentinel named for
 * a master of the same name), what it does not (new addresses, other
 * clusters), and when a worker may use a server. (The probes themselves are
 * checked against real redis-server processes by
 * tests/integration/test_redis_health.py and test_redis_sentinel.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "resp/resp_health.h"

static struct cfg *load(const char *redis_clusters)
{
    char text[2048], err[512];
    struct cfg *cfg = NULL;
    snprintf(text, sizeof(text),
             "listeners:\n  - { name: r, listen: 127.0.0.1:6390, protocol: redis, redis_cluster: c }\n"
             "redis_clusters:\n%s", redis_clusters);
    if (cfg_load_string("w.yaml", text, strlen(text), &cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return cfg;
}

static const char two_shards[] =
    "  - name: c\n"
    "    sentinel: { masters: [m0, m1], addresses: [127.0.0.1:26379] }\n"
    "    shards:\n"
    "      - { primary: 127.0.0.1:7001, replicas: [127.0.0.1:7101] }\n"
    "      - { primary: 127.0.0.1:7002 }\n";

static void test_new_states_start_up(void **state)
{
    struct cfg *cfg = load(two_shards);
    struct resp_health_state **st;
    char addr[RESP_HEALTH_ADDR_MAX];
    assert_int_equal(resp_health_states_new(cfg, &st), 0);
    assert_int_equal(st[0]->n_shards, 2);
    assert_int_equal(st[0]->shards[0].n_replicas, 1);
    assert_int_equal(atomic_load(&st[0]->shards[0].primary.up), 1);
    assert_int_equal(atomic_load(&st[0]->shards[0].replicas[0].lag_ok), 1);
    resp_health_sentinel_addr(st[0], 1, addr, sizeof(addr));
    assert_string_equal(addr, "");
    resp_health_states_free(st, cfg->n_redis_clusters);
    cfg_free(cfg);
}

static void test_reload_keeps_what_did_not_change(void **state)
{
    struct cfg *c1 = load(two_shards);
    struct resp_health_state **old, **cur;
    char addr[RESP_HEALTH_ADDR_MAX];
    assert_int_equal(resp_health_states_new(c1, &old), 0);
    /* what the checks learnt: 7001 down, its replica lagging, 7002 slow,
     * and sentinel moved m1 to 7202 */
    atomic_store(&old[0]->shards[0].primary.up, 0);
    atomic_store(&old[0]->shards[0].replicas[0].lag_ok, 0);
    atomic_store(&old[0]->shards[1].primary.ewma_us, 900);
    snprintf(old[0]->shards[1].sentinel_addr, sizeof(old[0]->shards[1].sentinel_addr),
             "127.0.0.1:7202");

    /* the new map: shard 0's primary moved to 7003 and its old primary
     * 7001 is now a replica; m1 is now the first shard */
    struct cfg *c2 = load("  - name: c\n"
                          "    sentinel: { masters: [m1, m0], addresses: [127.0.0.1:26379] }\n"
                          "    shards:\n"
                          "      - { primary: 127.0.0.1:7002 }\n"
                          "      - { primary: 127.0.0.1:7003, replicas: [127.0.0.1:7001, 127.0.0.1:7101] }\n");
    assert_int_equal(resp_health_states_new(c2, &cur), 0);
    resp_health_states_inherit(cur, 1, old, 1);
    /* m1 keeps its sentinel primary (checked there from now on) */
    resp_health_sentinel_addr(cur[0], 0, addr, sizeof(addr));
    assert_string_equal(addr, "127.0.0.1:7202");
    assert_int_equal(atomic_load(&cur[0]->shards[0].primary.ewma_us), 0); /* 7202 is new */
    /* m0 had none */
    resp_health_sentinel_addr(cur[0], 1, addr, sizeof(addr));
    assert_string_equal(addr, "");
    /* servers are matched by address, whatever their role now */
    assert_int_equal(atomic_load(&cur[0]->shards[1].primary.up), 1);      /* 7003: new */
    assert_int_equal(atomic_load(&cur[0]->shards[1].replicas[0].up), 0);  /* 7001 */
    assert_int_equal(atomic_load(&cur[0]->shards[1].replicas[1].lag_ok), 0); /* 7101 */
    resp_health_states_free(cur, 1);
    resp_health_states_free(old, 1);
    cfg_free(c2);
    cfg_free(c1);
}

static void test_reload_other_cluster_starts_fresh(void **state)
{
    struct cfg *c1 = load(two_shards);
    struct resp_health_state **old, **cur;
    assert_int_equal(resp_health_states_new(c1, &old), 0);
    atomic_store(&old[0]->shards[0].primary.up, 0);
    struct cfg *c2 = load("  - name: d\n    shards:\n      - { primary: 127.0.0.1:7001 }\n"
                          "  - name: c\n    shards:\n      - { primary: 127.0.0.1:7009 }\n");
    assert_int_equal(resp_health_states_new(c2, &cur), 0);
    resp_health_states_inherit(cur, 2, old, 1);
    assert_int_equal(atomic_load(&cur[0]->shards[0].primary.up), 1); /* d: another cluster */
    assert_int_equal(atomic_load(&cur[1]->shards[0].primary.up), 1);
    resp_health_states_free(cur, 2);
    resp_health_states_free(old, 1);
    cfg_free(c2);
    cfg_free(c1);
}

/* A reference taken (by a checker or a worker's route) keeps a state alive
 * after its array is freed. */
static void test_references(void **state)
{
    struct cfg *cfg = load(two_shards);
    struct resp_health_state **st;
    assert_int_equal(resp_health_states_new(cfg, &st), 0);
    struct resp_health_state *kept = st[0];
    resp_health_state_ref(kept);
    resp_health_states_free(st, 1);
    assert_int_equal(atomic_load(&kept->refs), 1);
    assert_int_equal(atomic_load(&kept->shards[1].primary.up), 1);
    resp_health_state_unref(kept);
    resp_health_state_unref(NULL);
    cfg_free(cfg);
}

static void test_usable(void **state)
{
    struct resp_health_slot slot;
    memset(&slot, 0, sizeof(slot));
    atomic_store(&slot.up, 1);
    atomic_store(&slot.last_ok_ms, 0);
    assert_true(resp_health_usable(&slot, 0));
    assert_false(resp_health_usable(&slot, 100)); /* failed, no check passed since */
    atomic_store(&slot.last_ok_ms, 100);
    assert_false(resp_health_usable(&slot, 100));
    atomic_store(&slot.last_ok_ms, 101);
    assert_true(resp_health_usable(&slot, 100));  /* a check passed after the failure */
    atomic_store(&slot.up, 0);
    assert_false(resp_health_usable(&slot, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_states_start_up),
        cmocka_unit_test(test_reload_keeps_what_did_not_change),
        cmocka_unit_test(test_reload_other_cluster_starts_fresh),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_usable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

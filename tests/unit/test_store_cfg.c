/* Unit tests for store/store_cfg: the `stores:` section through the real
 * loader — every key and default, each error with its FILE:LINE:COLUMN,
 * unique names, injected allocation failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"
#include "store/store_cfg.h"

static char err[1024];
static char text[4096];

/* A valid configuration whose `stores:` list is `stores` (YAML, indented 2). */
static const char *with_stores(const char *stores)
{
    snprintf(text, sizeof(text),
             "listeners:\n"
             "  - name: web\n"
             "    listen: 127.0.0.1:8080\n"
             "    routes: [{ cluster: app }]\n"
             "clusters:\n"
             "  - name: app\n"
             "    endpoints: [127.0.0.1:9001]\n"
             "stores:\n%s",
             stores);
    return text;
}

static struct cfg *load_ok(const char *stores)
{
    struct cfg *cfg = NULL;
    const char *t = with_stores(stores);
    int rc = cfg_load_string("weir.yaml", t, strlen(t), &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed (%d): %s", rc, err);
    return cfg;
}

/* Loads, expects -EINVAL and the exact message. Store lines start at line 9. */
static void load_err(const char *stores, const char *want)
{
    struct cfg *cfg = NULL;
    const char *t = with_stores(stores);
    int rc = cfg_load_string("weir.yaml", t, strlen(t), &cfg, err, sizeof(err));
    if (rc == 0)
        fail_msg("loaded, expected: %s", want);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
    assert_string_equal(err, want);
}

static void test_full(void **state)
{
    struct cfg *cfg = load_ok("  - name: shared\n"
                              "    redis: 127.0.0.1:6379\n"
                              "    timeouts: { connect: 250ms, command: 2s }\n"
                              "    reconnect: { base: 50ms, max: 10s }\n"
                              "    username: weir\n"
                              "    password: s3cret\n"
                              "    database: 3\n"
                              "    max_pending: 10\n"
                              "    max_redirects: 2\n"
                              "  - name: big\n"
                              "    cluster: [127.0.0.1:7000, \"[::1]:7001\", localhost:7002]\n");
    assert_int_equal(cfg->n_stores, 2);
    const struct cfg_store *s = store_cfg_find(cfg, "shared");
    assert_ptr_equal(s, &cfg->stores[0]);
    assert_string_equal(s->name, "shared");
    assert_int_equal(s->cluster, 0);
    assert_int_equal(s->n_servers, 1);
    assert_string_equal(s->servers[0].address, "127.0.0.1:6379");
    assert_int_equal(s->servers[0].addr.ss_family, AF_INET);
    assert_int_equal(s->connect_timeout_ms, 250);
    assert_int_equal(s->command_timeout_ms, 2000);
    assert_int_equal(s->reconnect_base_ms, 50);
    assert_int_equal(s->reconnect_max_ms, 10000);
    assert_string_equal(s->username, "weir");
    assert_string_equal(s->password, "s3cret");
    assert_int_equal(s->database, 3);
    assert_int_equal(s->max_pending, 10);
    assert_int_equal(s->max_redirects, 2);
    assert_int_equal(s->line, 9);
    assert_int_equal(s->col, 5);
    const struct cfg_store *b = store_cfg_find(cfg, "big");
    assert_non_null(b);
    assert_int_equal(b->cluster, 1);
    assert_int_equal(b->n_servers, 3);
    assert_string_equal(b->servers[1].address, "[::1]:7001");
    assert_int_equal(b->servers[1].addr.ss_family, AF_INET6);
    assert_null(store_cfg_find(cfg, "nope"));
    assert_null(store_cfg_find(cfg, NULL));
    cfg_free(cfg);
}

static void test_defaults(void **state)
{
    struct cfg *cfg = load_ok("  - { name: s, redis: 127.0.0.1:6379 }\n");
    const struct cfg_store *s = &cfg->stores[0];
    assert_int_equal(s->connect_timeout_ms, 1000);
    assert_int_equal(s->command_timeout_ms, 1000);
    assert_int_equal(s->reconnect_base_ms, 100);
    assert_int_equal(s->reconnect_max_ms, 5000);
    assert_null(s->username);
    assert_null(s->password);
    assert_int_equal(s->database, 0);
    assert_int_equal(s->max_pending, 1024);
    assert_int_equal(s->max_redirects, 5);
    cfg_free(cfg);

    /* no stores: nothing allocated */
    cfg = NULL;
    const char *t = "listeners: [{ name: r, listen: 127.0.0.1:1, routes: [{ cluster: a }] }]\n"
                    "clusters: [{ name: a, endpoints: [127.0.0.1:2] }]\n";
    assert_int_equal(cfg_load_string("w", t, strlen(t), &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->n_stores, 0);
    assert_null(cfg->stores);
    cfg_free(cfg);
}

static void test_errors(void **state)
{
    load_err("  - { name: s }\n",
             "weir.yaml:9:5: store is missing 'redis: HOST:PORT' or 'cluster: [HOST:PORT, ...]'");
    load_err("  - { redis: 127.0.0.1:1 }\n", "weir.yaml:9:5: store is missing required key 'name'");
    load_err("  - { name: s, redis: 127.0.0.1:1, cluster: [127.0.0.1:2] }\n",
             "weir.yaml:9:45: a store takes either 'redis' or 'cluster', not both");
    load_err("  - { name: s, cluster: [127.0.0.1:2], redis: 127.0.0.1:1 }\n",
             "weir.yaml:9:47: a store takes either 'redis' or 'cluster', not both");
    load_err("  - { name: s, cluster: [] }\n",
             "weir.yaml:9:25: 'cluster' must not be empty (expected at least one seed address "
             "HOST:PORT)");
    load_err("  - { name: s, cluster: 127.0.0.1:1 }\n",
             "weir.yaml:9:25: expected a list for 'cluster', got '127.0.0.1:1'");
    load_err("  - { name: s, cluster: [127.0.0.1:1, 127.0.0.1:1] }\n",
             "weir.yaml:9:39: duplicate cluster seed '127.0.0.1:1'");
    load_err("  - { name: s, redis: redis.example:6379 }\n",
             "weir.yaml:9:23: bad address 'redis.example:6379': expected IPv4:port, [IPv6]:port, "
             "*:port or localhost:port (names are not resolved)");
    load_err("  - { name: s, redis: 127.0.0.1:0 }\n",
             "weir.yaml:9:23: bad address '127.0.0.1:0': port must be 1..65535");
    load_err("  - { name: s, cluster: [127.0.0.1:1], database: 2 }\n",
             "weir.yaml:9:50: 'database' works only with a single Redis (Redis Cluster has "
             "database 0 only)");
    load_err("  - { name: s, redis: 127.0.0.1:1, reconnect: { base: 2s, max: 1s } }\n",
             "weir.yaml:9:47: reconnect 'base' (2000ms) must not exceed 'max' (1000ms)");
    load_err("  - { name: s, redis: 127.0.0.1:1, timeouts: { command: 0ms } }\n",
             "weir.yaml:9:57: 'command' must be 1ms..24h, got '0ms'");
    load_err("  - { name: s, redis: 127.0.0.1:1, timeouts: { read: 1s } }\n",
             "weir.yaml:9:48: unknown key 'read' in store timeouts (expected one of: connect, "
             "command)");
    load_err("  - { name: s, redis: 127.0.0.1:1, max_pending: 2000000 }\n",
             "weir.yaml:9:49: 'max_pending' must be 0..1000000, got '2000000'");
    load_err("  - { name: s, redis: 127.0.0.1:1, max_redirects: 17 }\n",
             "weir.yaml:9:51: 'max_redirects' must be 0..16, got '17'");
    load_err("  - { name: s, redis: 127.0.0.1:1, username: u }\n",
             "weir.yaml:9:46: 'username' needs a 'password'");
    load_err("  - { name: s, redis: 127.0.0.1:1, password: \"\" }\n",
             "weir.yaml:9:46: 'password' must not be empty");
    load_err("  - { name: s, redis: 127.0.0.1:1, colour: red }\n",
             "weir.yaml:9:36: unknown key 'colour' in store (expected one of: name, redis, "
             "cluster, timeouts, reconnect, username, password, database, max_pending, "
             "max_redirects)");
    load_err("  - { name: 'a b', redis: 127.0.0.1:1 }\n",
             "weir.yaml:9:13: bad name 'a b': use 1 to 63 letters, digits, '_', '-' or '.'");
    load_err("  - { name: s, redis: 127.0.0.1:1 }\n"
             "  - { name: s, redis: 127.0.0.1:2 }\n",
             "weir.yaml:10:13: duplicate store name 's' (first defined at 9:13)");
    load_err("  {}\n", "weir.yaml:9:3: expected a list for 'stores', got a map");
}

static int fail_after, alloc_calls;

static void *failing_calloc(size_t n, size_t size)
{
    if (fail_after >= 0 && alloc_calls++ >= fail_after)
        return NULL;
    return calloc(n, size);
}

static void test_alloc_failures(void **state)
{
    static const char stores[] = "  - { name: a, redis: 127.0.0.1:1, username: u, password: p }\n"
                                 "  - { name: b, cluster: [127.0.0.1:2, 127.0.0.1:3] }\n";
    void *(*saved)(size_t, size_t) = cfg_calloc_fn;
    const char *t = with_stores(stores);
    struct cfg *cfg = NULL;

    cfg_calloc_fn = failing_calloc;
    fail_after = -1;
    alloc_calls = 0;
    assert_int_equal(cfg_load_string("w", t, strlen(t), &cfg, err, sizeof(err)), 0);
    cfg_free(cfg);
    int total = alloc_calls;
    for (fail_after = 0; fail_after < total; fail_after++) {
        alloc_calls = 0;
        cfg = NULL;
        int rc = cfg_load_string("w", t, strlen(t), &cfg, err, sizeof(err));
        if (rc != -ENOMEM)
            fail_msg("allocation %d: rc %d (%s)", fail_after, rc, err);
        assert_null(cfg);
    }
    cfg_calloc_fn = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cache/cache_cfg: the `caches:` section and `cache: NAME`
 * routes through the real loader: defaults, every key, each error with its
 * FILE:LINE:COLUMN. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache_cfg.h"
#include "cache/evict.h"
#include "server/config.h"

static char err[1024];
static char text[4096];

/* A configuration whose route runs `route` and whose `caches:` list is
 * `caches` (YAML, indented 2, from line 9). */
static const char *with(const char *route, const char *caches)
{
    snprintf(text, sizeof(text),
             "listeners:\n"
             "  - name: web\n"
             "    listen: 127.0.0.1:8080\n"
             "    routes: [{ %scluster: app }]\n"
             "clusters:\n"
             "  - name: app\n"
             "    endpoints: [127.0.0.1:9001]\n"
             "caches:\n%s",
             route, caches);
    return text;
}

static struct cfg *load_ok(const char *route, const char *caches)
{
    struct cfg *cfg = NULL;
    const char *t = with(route, caches);
    if (cfg_load_string("weir.yaml", t, strlen(t), &cfg, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    return cfg;
}

static void load_err(const char *route, const char *caches, const char *want)
{
    struct cfg *cfg = NULL;
    const char *t = with(route, caches);
    int rc = cfg_load_string("weir.yaml", t, strlen(t), &cfg, err, sizeof(err));
    if (rc == 0)
        fail_msg("loaded, expected: %s", want);
    assert_null(cfg);
    assert_string_equal(err, want);
}

static void test_defaults(void **state)
{
    struct cfg *cfg = load_ok("cache: edge, ", "  - name: edge\n");
    const struct cfg_cache *c = cache_cfg_find(cfg, "edge");
    assert_non_null(c);
    assert_int_equal(c->memory_bytes, 64u << 20);
    assert_int_equal(c->max_object_bytes, 1u << 20);
    assert_int_equal(c->eviction, EVICT_S3FIFO);
    assert_int_equal(c->version, 0);
    assert_int_equal(c->key_query, CACHE_QUERY_ALL);
    assert_int_equal(c->coalesce_timeout_ms, 5000);
    assert_int_equal(c->n_purge_allow, 0);
    assert_null(cache_cfg_find(cfg, "other"));
    cfg_free(cfg);
}

static void test_all_keys(void **state)
{
    struct cfg *cfg = load_ok("cache: b, ",
                              "  - name: a\n"
                              "  - name: b\n"
                              "    memory: 2m\n"
                              "    max_object: 100k\n"
                              "    eviction: lfu\n"
                              "    version: 7\n"
                              "    coalesce_timeout: 0s\n"
                              "    targeted: [CDN-Cache-Control]\n"
                              "    key: { query: sorted, headers: [X-T], cookies: [s], query_ignore: [u] }\n"
                              "    purge: { allow: [10.0.0.0/8, 127.0.0.1] }\n");
    const struct cfg_cache *c = cache_cfg_find(cfg, "b");
    assert_int_equal(c->memory_bytes, 2u << 20);
    assert_int_equal(c->max_object_bytes, 100u << 10);
    assert_int_equal(c->eviction, EVICT_LFU);
    assert_int_equal(c->version, 7);
    assert_int_equal(c->coalesce_timeout_ms, 0);
    assert_int_equal(c->n_targeted, 1);
    assert_int_equal(c->key_query, CACHE_QUERY_SORTED);
    assert_string_equal(c->key_headers[0], "X-T");
    assert_string_equal(c->key_cookies[0], "s");
    assert_string_equal(c->key_params_ignored[0], "u");
    assert_int_equal(c->n_purge_allow, 2);
    cfg_free(cfg);
    /* a small cache: the default max_object shrinks to it */
    cfg = load_ok("", "  - { name: s, memory: 256k }\n");
    assert_int_equal(cache_cfg_find(cfg, "s")->max_object_bytes, 256u << 10);
    cfg_free(cfg);
}

/* The cache's slot is a pointer: it fits beside the steps with the most state. */
static void test_beside_other_steps(void **state)
{
    struct cfg *cfg = load_ok("rate_limit: { rate: 10/s, key: client_ip }, cors: { origins: ['*'] }, "
                              "forward_auth: { cluster: app }, cache: e, ",
                              "  - name: e\n");
    cfg_free(cfg);
}

static void test_errors(void **state)
{
    load_err("cache: nope, ", "  - name: edge\n",
             "weir.yaml:4:23: cache 'nope' is not defined under 'caches'");
    load_err("", "  - name: edge\n  - name: edge\n",
             "weir.yaml:10:11: duplicate cache name 'edge' (first defined at 9:11)");
    load_err("", "  - { name: e, memory: 1m, max_object: 2m }\n",
             "weir.yaml:9:40: 'max_object' (2097152 bytes) must not exceed 'memory' (1048576 bytes)");
    load_err("", "  - { name: e, eviction: arc }\n",
             "weir.yaml:9:26: unknown 'eviction' 'arc' (expected one of: lru, lfu, fifo, random, ttl, s3fifo)");
    load_err("", "  - { name: e, key: { query_params: [a], query_ignore: [b] } }\n",
             "weir.yaml:9:56: key takes 'query_params' or 'query_ignore', not both");
    load_err("", "  - { name: e, targeted: [Cache-Control] }\n",
             "weir.yaml:9:27: 'Cache-Control' cannot be a targeted cache field (name one such as "
             "CDN-Cache-Control or Surrogate-Control)");
    load_err("", "  - { name: e, purge: { allow: [10.0.0.1/8] } }\n",
             "weir.yaml:9:33: network '10.0.0.1/8' has bits set after its prefix length (write "
             "the network's first address, or the address alone for one host)");
    load_err("", "  - { name: e, l2: { store: shred } }\n",
             "weir.yaml:9:29: cache l2 names store 'shred' which is not defined under 'stores'");
    load_err("", "  - { name: e, key: { cookies: [\"a=b\"] } }\n",
             "weir.yaml:9:33: 'a=b' is not a cookie or parameter name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_beside_other_steps),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

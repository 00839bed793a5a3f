/* Unit tests for run-time endpoint changes (src/upstream/topology.c): how
 * they apply over a cluster's configured endpoints, how a reload drops the
 * ones the file now names, and registration expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/units.h"
#include "server/config.h"
#include "upstream/topology.h"

static struct cfg_endpoint file_eps[2];
static struct cfg_cluster cc = { .name = "app", .endpoints = file_eps, .n_endpoints = 2 };
static struct cfg file_cfg = { .clusters = &cc, .n_clusters = 1 };

static int setup(void **state)
{
    (void)state;
    memset(file_eps, 0, sizeof(file_eps));
    file_eps[0].address = "127.0.0.1:9001";
    file_eps[1].address = "127.0.0.1:9002";
    for (int i = 0; i < 2; i++) {
        file_eps[i].weight = 1;
        assert_int_equal(units_parse_addr(file_eps[i].address, &file_eps[i].addr, &file_eps[i].addrlen), 0);
    }
    return 0;
}

static struct topology_item *item(struct topology *t, const char *cluster, const char *address)
{
    struct sockaddr_storage a;
    socklen_t len;
    assert_int_equal(units_parse_addr(address, &a, &len), 0);
    struct topology_item *it = topology_get(t, cluster, address, &a, len);
    assert_non_null(it);
    return it;
}

static void test_no_changes_is_the_file(void **state)
{
    (void)state;
    struct cfg_endpoint *eps;
    size_t n;
    assert_int_equal(topology_endpoints(NULL, &cc, &eps, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(eps[0].address, "127.0.0.1:9001");
    assert_string_equal(eps[1].address, "127.0.0.1:9002");
    free(eps);
}

static void test_changes_apply_over_the_file(void **state)
{
    (void)state;
    struct topology t = { 0 };
    struct topology_item *a = item(&t, "app", "127.0.0.1:9001");
    a->removed = 1;
    struct topology_item *b = item(&t, "app", "127.0.0.1:9002");
    b->weight = 7;
    b->drain = 1;
    struct topology_item *c = item(&t, "app", "127.0.0.1:9003");
    c->added = 1;
    c->down = 1;
    struct topology_item *d = item(&t, "other", "127.0.0.1:9004");
    d->added = 1;
    struct cfg_endpoint *eps;
    size_t n;
    assert_int_equal(topology_endpoints(&t, &cc, &eps, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(eps[0].address, "127.0.0.1:9002");
    assert_int_equal(eps[0].weight, 7);
    assert_int_equal(eps[0].drain, 1);
    assert_int_equal(eps[0].down, 0);
    assert_string_equal(eps[1].address, "127.0.0.1:9003");
    assert_int_equal(eps[1].weight, 1);
    assert_int_equal(eps[1].down, 1);
    free(eps);
    /* the same (cluster, address) is one item */
    assert_ptr_equal(item(&t, "app", "127.0.0.1:9002"), b);
    topology_free(&t);
}

static void test_reload_drops_what_the_file_names(void **state)
{
    (void)state;
    struct topology t = { 0 };
    item(&t, "app", "127.0.0.1:9002")->drain = 1;       /* the file names it: dropped */
    item(&t, "app", "127.0.0.1:9009")->added = 1;       /* kept */
    item(&t, "gone", "127.0.0.1:9001")->added = 1;      /* no such cluster: dropped */
    assert_int_equal(topology_reconcile(&t, &file_cfg), 2);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.items[0].address, "127.0.0.1:9009");
    topology_free(&t);
}

static void test_registrations_expire(void **state)
{
    (void)state;
    struct topology t = { 0 };
    struct topology_item *a = item(&t, "app", "127.0.0.1:9101");
    a->added = 1;
    a->ttl_ms = 1000;
    a->expires_ms = 5000;
    struct topology_item *b = item(&t, "app", "127.0.0.1:9102");
    b->added = 1; /* no TTL: never expires */
    struct topology_item *c = item(&t, "app", "127.0.0.1:9103");
    c->added = 1;
    c->ttl_ms = 1000;
    c->expires_ms = 6000;
    assert_int_equal(topology_expire(&t, 4999), 0);
    assert_int_equal(topology_expire(&t, 5000), 1);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.items[0].address, "127.0.0.1:9102");
    assert_string_equal(t.items[1].address, "127.0.0.1:9103");
    assert_int_equal(topology_expire(&t, 1000000), 1);
    assert_int_equal(t.n, 1);
    topology_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_changes_is_the_file, setup),
        cmocka_unit_test_setup(test_changes_apply_over_the_file, setup),
        cmocka_unit_test_setup(test_reload_drops_what_the_file_names, setup),
        cmocka_unit_test_setup(test_registrations_expire, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for topics: the `topics:` section (topic_cfg.c: filters,
 * push settings, defaults, errors with their position) and the filter
 * matching of topic.c on SQS MessageAttributes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "queue/topic.h"
#include "server/config.h"

static char err[1024];

#define BASE                                                                                       \
    "data_dir: /tmp/x\n"                                                                           \
    "listeners:\n"                                                                                 \
    "  - name: web\n"                                                                              \
    "    listen: 127.0.0.1:8080\n"                                                                 \
    "    routes: [{ publish: orders }]\n"                                                          \
    "clusters:\n"                                                                                  \
    "  - name: hooks\n"                                                                            \
    "    endpoints: [127.0.0.1:9000]\n"                                                            \
    "queues:\n"                                                                                    \
    "  - name: all\n"                                                                              \
    "  - name: dlq\n"                                                                              \
    "  - name: f.fifo\n"                                                                          \
    "  - { name: r, backend: { store: s } }\n"                                                   \
    "stores:\n"                                                                                   \
    "  - { name: s, redis: 127.0.0.1:6379 }\n"

static struct cfg *load_ok(const char *text)
{
    struct cfg *cfg = NULL;
    if (cfg_load_string("weir.yaml", text, strlen(text), &cfg, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    return cfg;
}

static const char *load_err(const char *text)
{
    struct cfg *cfg = NULL;
    int rc = cfg_load_string("weir.yaml", text, strlen(text), &cfg, err, sizeof(err));
    if (rc == 0)
        fail_msg("loaded, expected an error:\n%s", text);
    assert_int_equal(rc, -EINVAL);
    return err;
}

static const char full[] = BASE "topics:\n"
                                "  - name: orders\n"
                                "    subscriptions:\n"
                                "      - queue: all\n"
                                "        filter:\n"
                                "          kind: [order, refund, { exists: true }]\n"
                                "          amount: { numeric: ['>', 10, '<=', 20] }\n"
                                "          region: eu\n"
                                "          test: { exists: false }\n"
                                "      - push: { cluster: hooks }\n"
                                "      - push:\n"
                                "          cluster: hooks\n"
                                "          path: /h?x=1\n"
                                "          attempts: 7\n"
                                "          backoff: { base: 1s, max: 2s }\n"
                                "          timeout: 3s\n"
                                "          concurrency: 9\n"
                                "          dead_letter: dlq\n";

static void test_parse(void **state)
{
    (void)state;
    struct cfg *cfg = load_ok(full);
    assert_int_equal(cfg->n_topics, 1);
    const struct cfg_topic *t = topic_cfg_find(cfg, "orders");
    assert_non_null(t);
    assert_null(topic_cfg_find(cfg, "other"));
    assert_int_equal(t->n_subs, 3);
    assert_string_equal(t->subs[0].queue, "all");
    assert_int_equal(t->subs[0].filter.n_attrs, 4);
    assert_int_equal(t->subs[0].filter.attrs[0].n_conds, 3);
    const struct topic_cond *c = &t->subs[0].filter.attrs[1].conds[0];
    assert_int_equal(c->kind, TOPIC_COND_NUMERIC);
    assert_true(c->has_lo && !c->lo_incl && c->lo == 10 && c->has_hi && c->hi_incl && c->hi == 20);
    const struct cfg_push *d = t->subs[1].push; /* defaults */
    assert_string_equal(d->path, "/");
    assert_int_equal(d->attempts, 5);
    assert_int_equal(d->backoff_base_ms, 100);
    assert_int_equal(d->backoff_max_ms, 10000);
    assert_int_equal(d->timeout_ms, 10000);
    assert_int_equal(d->concurrency, 4);
    assert_null(d->dead_letter);
    assert_string_equal(t->subs[1].outbox, "weir.push.orders.1");
    const struct cfg_push *p = t->subs[2].push;
    assert_string_equal(p->path, "/h?x=1");
    assert_int_equal(p->attempts, 7);
    assert_int_equal(p->backoff_base_ms, 1000);
    assert_int_equal(p->backoff_max_ms, 2000);
    assert_int_equal(p->timeout_ms, 3000);
    assert_int_equal(p->concurrency, 9);
    assert_string_equal(p->dead_letter, "dlq");
    assert_string_equal(t->subs[2].outbox, "weir.push.orders.2");
    cfg_free(cfg);
}

struct err_case {
    const char *topics;
    const char *message;
};

static void test_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"  - name: orders\n    subscriptions:\n      - queue: nope\n",
         "weir.yaml:19:16: subscribed queue 'nope' is not defined in 'queues'"},
        {"  - name: orders\n    subscriptions:\n      - queue: f.fifo\n",
         "weir.yaml:19:16: subscribed queue 'f.fifo' is a FIFO queue"},
        {"  - name: orders\n    subscriptions:\n      - queue: r\n",
         "weir.yaml:19:16: subscribed queue 'r' is kept in store s (topics deliver to local queues "
         "only)"},
        {"  - name: orders\n    subscriptions:\n      - push: { cluster: x }\n",
         "weir.yaml:19:26: push subscription names cluster 'x' which is not defined"},
        {"  - name: orders\n    subscriptions:\n      - push: { cluster: hooks, dead_letter: z }\n",
         "weir.yaml:19:46: push dead-letter queue 'z' is not defined in 'queues'"},
        {"  - name: orders\n    subscriptions:\n      - push: { cluster: hooks, path: x }\n",
         "weir.yaml:19:39: 'path' must start with '/'"},
        {"  - name: orders\n    subscriptions:\n      - push: { cluster: hooks, attempts: 0 }\n",
         "weir.yaml:19:43"},
        {"  - name: orders\n    subscriptions:\n"
         "      - push: { cluster: hooks, backoff: { base: 2s, max: 1s } }\n",
         "push backoff 'base' is larger than 'max'"},
        {"  - name: orders\n    subscriptions:\n      - {}\n",
         "a subscription has either 'queue' or 'push'"},
        {"  - name: orders\n    subscriptions:\n      - queue: all\n        filter: {}\n",
         "'filter' names 1 to 10 attributes"},
        {"  - name: orders\n    subscriptions:\n"
         "      - queue: all\n        filter: { a: { numeric: ['=', 1, '<', 2] } }\n",
         "bad 'numeric' operator"},
        {"  - name: orders\n    subscriptions:\n"
         "      - queue: all\n        filter: { a: { numeric: ['>', x] } }\n",
         "expected a number in 'numeric'"},
        {"  - name: orders\n    subscriptions:\n"
         "      - queue: all\n        filter: { a: { numeric: ['>', 5, '<', 1] } }\n",
         "'numeric' range is empty"},
        {"  - name: orders\n    subscriptions:\n"
         "      - queue: all\n        filter: { a: { prefix: x } }\n",
         "unknown filter condition"},
        {"  - name: orders\n    subscriptions:\n      - queue: all\n        filter: { a: [] }\n",
         "a filter attribute takes 1 to 100 values"},
        {"  - name: 'a b'\n    subscriptions:\n      - queue: all\n", "bad topic name 'a b'"},
        {"  - name: orders\n    subscriptions:\n      - queue: all\n"
         "  - name: orders\n    subscriptions:\n      - queue: all\n",
         "duplicate topic name 'orders'"},
    };
    char text[4096];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%stopics:\n%s", BASE, cases[i].topics);
        const char *msg = load_err(text);
        if (strstr(msg, cases[i].message) == NULL)
            fail_msg("case %zu: got %s, want %s", i, msg, cases[i].message);
    }
    /* the publish target names a topic */
    const char *msg = load_err(BASE);
    assert_non_null(strstr(msg, "route publishes to topic 'orders' which is not defined in "
                                "'topics'"));
}

static json_t *attrs(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_match(void **state)
{
    (void)state;
    struct cfg *cfg = load_ok(full);
    const struct topic_filter *f = &topic_cfg_find(cfg, "orders")->subs[0].filter;
    static const struct {
        const char *attrs;
        int match;
    } cases[] = {
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"20\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         1},
        /* kind: exists matches any value */
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"x\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"10.5\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         1},
        /* amount: > 10 is exclusive, <= 20 inclusive */
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"10\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         0},
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"20.01\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         0},
        /* numeric needs a Number */
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"String\", \"StringValue\": \"15\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         0},
        /* test must be absent */
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"15\"},"
         " \"test\": {\"DataType\": \"String\", \"StringValue\": \"1\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"eu\"}}",
         0},
        /* exact strings: case matters; a Binary never equals */
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"15\"},"
         " \"region\": {\"DataType\": \"String\", \"StringValue\": \"EU\"}}",
         0},
        {"{\"kind\": {\"DataType\": \"String\", \"StringValue\": \"order\"},"
         " \"amount\": {\"DataType\": \"Number\", \"StringValue\": \"15\"},"
         " \"region\": {\"DataType\": \"Binary\", \"BinaryValue\": \"ZXU=\"}}",
         0},
        {"{}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *a = attrs(cases[i].attrs);
        if (topic_filter_match(f, a) != cases[i].match)
            fail_msg("case %zu: want %d", i, cases[i].match);
        json_decref(a);
    }
    assert_int_equal(topic_filter_match(f, NULL), 0);
    /* no filter: everything */
    assert_int_equal(topic_filter_match(&topic_cfg_find(cfg, "orders")->subs[1].filter, NULL), 1);
    cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

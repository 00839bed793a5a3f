/* Unit tests for the configuration loader (server/config.c's sections over
 * core/config.c): a full file, defaults, every kind of error with its exact
 * FILE:LINE:COLUMN message, aliases, limits, injected allocation failures. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"
#include "core/log.h"
#include "core/units.h"

static char err[1024];

static struct cfg *load_ok(const char *text)
{
    struct cfg *cfg = NULL;
    int rc = cfg_load_string("weir.yaml", text, strlen(text), &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed (%d): %s", rc, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loads `text`, expects -EINVAL and returns the message. */
static const char *load_err(const char *text)
{
    struct cfg *cfg = (struct cfg *)(uintptr_t)0x1;
    int rc = cfg_load_string("weir.yaml", text, strlen(text), &cfg, err, sizeof(err));
    if (rc == 0)
        fail_msg("loaded, expected an error:\n%s", text);
    assert_int_equal(rc, -EINVAL);
    assert_ptr_equal(cfg, (struct cfg *)(uintptr_t)0x1); /* untouched */
    return err;
}

static const char full_yaml[] =
    "workers: 4\n"
    "drain_timeout: 45s\n"
    "log: { level: debug, error: /var/log/weir/error.log, access: stdout }\n"
    "listeners:\n"
    "  - name: web\n"
    "    listen: 127.0.0.1:8080\n"
    "    protocol: http\n"
    "    limits: { request_line: 4k, header_size: 64k, headers: 50, body: 1g, connections: 500 }\n"
    "    timeouts: { client_header: 5s, client_idle: 2m, client_body: 250ms }\n"
    "    routes:\n"
    "      - match: { path_prefix: /api/, host: API.example.com, method: [GET, post],\n"
    "                 header: { X-Env: canary, X-Debug: ~ } }\n"
    "        cluster: api\n"
    "      - match: { path: /exact, method: DELETE }\n"
    "        cluster: api\n"
    "      - cluster: web\n"
    "  - name: v6\n"
    "    listen: \"[::1]:8081\"\n"
    "    routes: [{ cluster: web }]\n"
    "clusters:\n"
    "  - name: api\n"
    "    balance: least_connections\n"
    "    timeouts: { connect: 1s, response: 1h }\n"
    "    pool: { max_idle: 8, idle_timeout: 90s }\n"
    "    max_connections: 100\n"
    "    endpoints:\n"
    "      - 127.0.0.1:9001\n"
    "      - { address: 127.0.0.1:9002, weight: 2 }\n"
    "  - name: web\n"
    "    balance: consistent_hash\n"
    "    hash_key: header:X-User\n"
    "    hash_method: maglev\n"
    "    endpoints: [\"[::1]:9003\", localhost:9004]\n"
    "  - name: sticky\n"
    "    balance: ip_hash\n"
    "    hash_key: cookie:session\n"
    "    endpoints: [10.0.0.1:80]\n";

static void test_full(void **state)
{
    struct cfg *cfg = load_ok(full_yaml);
    char buf[64];

    assert_string_equal(cfg->path, "weir.yaml");
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->drain_timeout_ms, 45000);
    assert_int_equal(cfg->log.level, LOG_LVL_DEBUG);
    assert_string_equal(cfg->log.error, "/var/log/weir/error.log");
    assert_string_equal(cfg->log.access, "stdout");
    assert_int_equal(cfg->n_listeners, 2);

    const struct cfg_listener *l = &cfg->listeners[0];
    assert_string_equal(l->name, "web");
    assert_string_equal(l->listen, "127.0.0.1:8080");
    assert_int_equal(l->addrlen, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((const struct sockaddr_in *)&l->addr)->sin_port), 8080);
    assert_int_equal(l->protocol, CFG_PROTOCOL_HTTP);
    assert_int_equal(l->max_request_line, 4096);
    assert_int_equal(l->max_header_bytes, 65536);
    assert_int_equal(l->max_headers, 50);
    assert_int_equal(l->max_body_bytes, 1u << 30);
    assert_int_equal(l->max_connections, 500);
    assert_int_equal(l->header_timeout_ms, 5000);
    assert_int_equal(l->idle_timeout_ms, 120000);
    assert_int_equal(l->body_timeout_ms, 250);
    assert_int_equal(l->line, 5);
    assert_int_equal(l->col, 5);
    assert_int_equal(l->name_mark.line, 5);
    assert_int_equal(l->name_mark.col, 11);
    assert_int_equal(l->listen_mark.line, 6);
    assert_int_equal(l->listen_mark.col, 13);
    assert_int_equal(l->n_routes, 3);

    const struct cfg_route *r = &l->routes[0];
    assert_string_equal(r->path_prefix, "/api/");
    assert_null(r->path);
    assert_string_equal(r->host, "api.example.com");
    assert_int_equal(r->n_methods, 2);
    assert_string_equal(r->methods[0], "GET");
    assert_string_equal(r->methods[1], "POST");
    assert_int_equal(r->n_headers, 2);
    assert_string_equal(r->headers[0].name, "X-Env");
    assert_string_equal(r->headers[0].value, "canary");
    assert_string_equal(r->headers[1].name, "X-Debug");
    assert_null(r->headers[1].value);
    assert_string_equal(r->cluster_name, "api");
    assert_ptr_equal(r->cluster, &cfg->clusters[0]);
    assert_int_equal(r->line, 11);
    assert_int_equal(r->col, 9);
    assert_int_equal(r->cluster_mark.line, 13);
    assert_int_equal(r->cluster_mark.col, 18);

    r = &l->routes[1];
    assert_string_equal(r->path, "/exact");
    assert_null(r->path_prefix);
    assert_null(r->host);
    assert_int_equal(r->n_methods, 1);
    assert_string_equal(r->methods[0], "DELETE");
    assert_int_equal(r->n_headers, 0);
    assert_ptr_equal(r->cluster, &cfg->clusters[0]);

    r = &l->routes[2];
    assert_null(r->path);
    assert_null(r->path_prefix);
    assert_null(r->host);
    assert_int_equal(r->n_methods, 0);
    assert_ptr_equal(r->cluster, &cfg->clusters[1]);

    l = &cfg->listeners[1];
    assert_string_equal(l->listen, "[::1]:8081");
    assert_int_equal(l->addr.ss_family, AF_INET6);
    assert_ptr_equal(l->routes[0].cluster, cfg_find_cluster(cfg, "web"));

    assert_int_equal(cfg->n_clusters, 3);
    const struct cfg_cluster *c = &cfg->clusters[0];
    assert_string_equal(c->name, "api");
    assert_int_equal(c->balance, CFG_BALANCE_LEAST_CONNECTIONS);
    assert_int_equal(c->hash_key, CFG_HASH_KEY_CLIENT_IP);
    assert_null(c->hash_key_name);
    assert_int_equal(c->connect_timeout_ms, 1000);
    assert_int_equal(c->response_timeout_ms, 3600000);
    assert_int_equal(c->pool_max_idle, 8);
    assert_int_equal(c->pool_idle_timeout_ms, 90000);
    assert_int_equal(c->max_connections, 100);
    assert_int_equal(c->n_endpoints, 2);
    assert_string_equal(c->endpoints[0].address, "127.0.0.1:9001");
    assert_int_equal(c->endpoints[0].weight, 1);
    assert_string_equal(c->endpoints[1].address, "127.0.0.1:9002");
    assert_int_equal(c->endpoints[1].weight, 2);
    units_format_addr((const struct sockaddr *)&c->endpoints[1].addr, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:9002");
    assert_int_equal(c->name_mark.line, 21);
    assert_int_equal(c->name_mark.col, 11);

    c = &cfg->clusters[1];
    assert_int_equal(c->balance, CFG_BALANCE_CONSISTENT_HASH);
    assert_int_equal(c->hash_key, CFG_HASH_KEY_HEADER);
    assert_string_equal(c->hash_key_name, "X-User");
    assert_int_equal(c->hash_method, CFG_HASH_METHOD_MAGLEV);
    assert_int_equal(c->endpoints[0].addr.ss_family, AF_INET6);
    units_format_addr((const struct sockaddr *)&c->endpoints[1].addr, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1:9004");

    c = &cfg->clusters[2];
    assert_int_equal(c->balance, CFG_BALANCE_IP_HASH);
    assert_int_equal(c->hash_key, CFG_HASH_KEY_COOKIE);
    assert_string_equal(c->hash_key_name, "session");
    cfg_free(cfg);
}

#define MINIMAL \
    "listeners:\n" \
    "  - name: web\n" \
    "    listen: 127.0.0.1:8080\n" \
    "    routes:\n" \
    "      - cluster: api\n" \
    "clusters:\n" \
    "  - name: api\n" \
    "    endpoints: [127.0.0.1:9001]\n"

static void test_defaults(void **state)
{
    struct cfg *cfg = load_ok(MINIMAL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    assert_int_equal(cfg->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(cfg->drain_timeout_ms, 30000);
    assert_int_equal(cfg->log.level, LOG_LVL_INFO);
    assert_string_equal(cfg->log.error, "stderr");
    assert_string_equal(cfg->log.access, "off");

    const struct cfg_listener *l = &cfg->listeners[0];
    assert_int_equal(l->protocol, CFG_PROTOCOL_HTTP);
    assert_int_equal(l->max_request_line, 8192);
    assert_int_equal(l->max_header_bytes, 32768);
    assert_int_equal(l->max_headers, 100);
    assert_int_equal(l->max_body_bytes, 0);
    assert_int_equal(l->max_connections, 10000);
    assert_int_equal(l->header_timeout_ms, 10000);
    assert_int_equal(l->idle_timeout_ms, 60000);
    assert_int_equal(l->body_timeout_ms, 30000);

    const struct cfg_cluster *c = &cfg->clusters[0];
    assert_int_equal(c->balance, CFG_BALANCE_ROUND_ROBIN);
    assert_int_equal(c->hash_key, CFG_HASH_KEY_CLIENT_IP);
    assert_null(c->hash_key_name);
    assert_int_equal(c->hash_method, CFG_HASH_METHOD_RING);
    assert_int_equal(c->connect_timeout_ms, 2000);
    assert_int_equal(c->response_timeout_ms, 30000);
    assert_int_equal(c->pool_idle_timeout_ms, 60000);
    assert_int_equal(c->pool_max_idle, 32);
    assert_int_equal(c->max_connections, 0);
    assert_int_equal(c->endpoints[0].weight, 1);
    assert_ptr_equal(l->routes[0].cluster, c);
    cfg_free(cfg);

    cfg = load_ok("workers: auto\n" MINIMAL);
    assert_int_equal(cfg->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    cfg_free(cfg);
}

/* An unset health_check timeout follows the interval (min(1s, interval),
 * as HAProxy's): a fast interval alone is valid; an explicit timeout above
 * the interval stays an error. */
static void test_health_timeout_default(void **state)
{
    static const char *const cases[][2] = {
        { "{ interval: 200ms }", "200" },
        { "{ interval: 10ms }", "10" },
        { "{ interval: 1s }", "1000" },
        { "{ interval: 5s }", "1000" },
        { "{ }", "1000" },
        { "{ interval: 200ms, timeout: 150ms }", "150" },
        { "{ interval: 5s, timeout: 3s }", "3000" },
    };
    char text[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text),
                 "listeners:\n  - { name: web, listen: 127.0.0.1:8080, routes: [{ cluster: api }] }\n"
                 "clusters:\n  - name: api\n    health_check: %s\n    endpoints: [127.0.0.1:9001]\n",
                 cases[i][0]);
        struct cfg *cfg = load_ok(text);
        assert_int_equal(cfg->clusters[0].health_check.timeout_ms, strtoull(cases[i][1], NULL, 10));
        cfg_free(cfg);
    }
    const char *e = load_err(
        "listeners:\n  - { name: web, listen: 127.0.0.1:8080, routes: [{ cluster: api }] }\n"
        "clusters:\n  - name: api\n    health_check: { interval: 200ms, timeout: 1s }\n"
        "    endpoints: [127.0.0.1:9001]\n");
    assert_string_equal(e, "weir.yaml:5:19: health_check timeout (1000 ms) must not exceed its "
                           "interval (200 ms)");
}

static void test_find_cluster(void **state)
{
    struct cfg *cfg = load_ok(full_yaml);

    assert_ptr_equal(cfg_find_cluster(cfg, "api"), &cfg->clusters[0]);
    assert_ptr_equal(cfg_find_cluster(cfg, "web"), &cfg->clusters[1]);
    assert_ptr_equal(cfg_find_cluster(cfg, "sticky"), &cfg->clusters[2]);
    assert_null(cfg_find_cluster(cfg, "API"));
    assert_null(cfg_find_cluster(cfg, ""));
    assert_null(cfg_find_cluster(cfg, NULL));
    assert_null(cfg_find_cluster(NULL, "api"));
    cfg_free(cfg);
    cfg_free(NULL);
}

static void test_enum_names(void **state)
{
    assert_string_equal(cfg_balance_name(CFG_BALANCE_ROUND_ROBIN), "round_robin");
    assert_string_equal(cfg_balance_name(CFG_BALANCE_POWER_OF_TWO), "power_of_two");
    assert_string_equal(cfg_balance_name(CFG_BALANCE_COUNT), "?");
    assert_string_equal(cfg_hash_key_name(CFG_HASH_KEY_COOKIE), "cookie");
    assert_string_equal(cfg_hash_method_name(CFG_HASH_METHOD_MAGLEV), "maglev");
    assert_string_equal(cfg_protocol_name(CFG_PROTOCOL_HTTP), "http");
}

/* Every balance name in CFG_BALANCE_LIST is accepted. */
static void test_every_balance(void **state)
{
    char text[512];

    for (int b = 0; b < CFG_BALANCE_COUNT; b++) {
        snprintf(text, sizeof(text), MINIMAL "    balance: %s\n", cfg_balance_name(b));
        struct cfg *cfg = load_ok(text);
        assert_int_equal(cfg->clusters[0].balance, b);
        cfg_free(cfg);
    }
}

struct err_case {
    const char *text;
    const char *message;
};

static void run_cases(const struct err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = load_err(cases[i].text);
        if (strcmp(got, cases[i].message) != 0)
            fail_msg("case %zu:\n%s\nexpected: %s\n     got: %s", i, cases[i].text,
                     cases[i].message, got);
    }
}

#define RUN_CASES(c) run_cases((c), sizeof(c) / sizeof((c)[0]))

#define LISTENER_HEAD \
    "listeners:\n" \
    "  - name: web\n" \
    "    listen: 127.0.0.1:8080\n"

/* `backend: { store: NAME }` on a queue: the store exists, the queue is
 * standard, its dead-letter queue is kept in the same place. */
static void test_error_queue_backend(void **state)
{
#define QB_HEAD "data_dir: /tmp/weir-test\nstores:\n  - { name: r, redis: 127.0.0.1:6379 }\n" \
                "listeners:\n  - { name: q, listen: 127.0.0.1:9324, protocol: sqs }\n" \
                "queues:\n"
    static const struct err_case cases[] = {
        { QB_HEAD "  - { name: a, backend: { store: nope } }\n",
          "weir.yaml:7:34: store 'nope' is not defined in 'stores'" },
        { QB_HEAD "  - { name: a.fifo, backend: { store: r } }\n",
          "weir.yaml:7:39: a FIFO queue cannot be kept in a store yet" },
        { QB_HEAD "  - { name: a, backend: { store: r }, dead_letter: { queue: d } }\n"
                  "  - { name: d }\n",
          "weir.yaml:7:61: a dead-letter queue is kept where its source is (the same 'backend' "
          "store, or both local)" },
        { QB_HEAD "  - { name: a, backend: { stor: r } }\n",
          "weir.yaml:7:27: unknown key 'stor' in queue backend (expected one of: store)" },
    };
#undef QB_HEAD
    RUN_CASES(cases);
}

static void test_error_unknown_keys(void **state)
{
    static const struct err_case cases[] = {
        { "listeners:\n  - name: web\n    listn: 127.0.0.1:8080\n",
          "weir.yaml:3:5: unknown key 'listn' in listener (expected one of: name, listen, "
          "protocol, routes, redis_cluster, cluster, sni, proxy_protocol, accept_proxy, limits, "
          "timeouts, tls, hsts, redirect_https, http2)" },
        { "admins: { listen: 127.0.0.1:9901 }\n",
          "weir.yaml:1:1: unknown key 'admins' in configuration (expected one of: workers, "
          "drain_timeout, log, listeners, clusters, redis_clusters, stores, admin, caches, data_dir, queues, tls, topics, sqs_auth)" },
        { "redis_clusters: []\n",
          "weir.yaml:1:17: 'redis_clusters' must not be empty (expected at least one redis "
          "cluster)" },
        { LISTENER_HEAD "    routes:\n      - throttle: { rate: 100/s }\n        cluster: api\n",
          "weir.yaml:5:9: unknown key 'throttle' in route (expected one of: name, match, cluster, retry, timeout, access, cors, auth, forward_auth, headers, compress, rate_limit, rewrite, cache, respond, redirect, queue, publish)" },
        { "clusters:\n  - name: api\n    health_chek: { path: /health }\n",
          "weir.yaml:3:5: unknown key 'health_chek' in cluster (expected one of: name, "
          "balance, hash_key, hash_method, timeouts, pool, max_connections, endpoints, "
          "max_requests, max_pending, queue_timeout, panic, slow_start, health_check, "
          "outlier_detection, circuit_breaker, resolve, autoscale, tls, protocol, h2_connections)" },
        { "clusters:\n  - name: api\n    circuit_breaker: { failure_ratio: 150% }\n",
          "weir.yaml:3:39: failure_ratio: expected a percentage 1%..100%, got '150%'" },
        { "clusters:\n  - name: api\n    health_check: { expect_status: 700 }\n",
          "weir.yaml:3:36: expected an HTTP status 100..599 or a range like 200-399, got '700'" },
        { LISTENER_HEAD "    routes:\n      - cluster: api\n        retry: { on: [reset, grpc-unavailble] }\n",
          "weir.yaml:6:30: unknown gRPC retry condition 'grpc-unavailble' (expected one of: grpc-cancelled, "
          "grpc-deadline-exceeded, grpc-resource-exhausted, grpc-internal, grpc-unavailable)" },
        { LISTENER_HEAD "    routes:\n      - match: { prefix: /a }\n",
          "weir.yaml:5:18: unknown key 'prefix' in match (expected one of: path, path_prefix, "
          "host, method, header)" },
        { LISTENER_HEAD "    limits: { body_size: 1m }\n",
          "weir.yaml:4:15: unknown key 'body_size' in limits (expected one of: request_line, "
          "header_size, headers, body, connections)" },
        { LISTENER_HEAD "    timeouts: { connect: 1s }\n",
          "weir.yaml:4:17: unknown key 'connect' in listener timeouts (expected one of: "
          "client_header, client_idle, client_body)" },
        { "clusters:\n  - timeouts: { client_idle: 1s }\n",
          "weir.yaml:2:17: unknown key 'client_idle' in cluster timeouts (expected one of: "
          "connect, response)" },
        { "clusters:\n  - pool: { size: 1 }\n",
          "weir.yaml:2:13: unknown key 'size' in pool (expected one of: max_idle, "
          "idle_timeout)" },
        { "clusters:\n  - endpoints:\n      - { addr: 127.0.0.1:1 }\n",
          "weir.yaml:3:11: unknown key 'addr' in endpoint (expected one of: address, weight, drain)" },
        { "log: { file: /tmp/x }\n",
          "weir.yaml:1:8: unknown key 'file' in log (expected one of: level, error, access)" },
        { "workers: 2\nworkers: 3\n",
          "weir.yaml:2:1: duplicate key 'workers' in configuration (first at 1:1)" },
        { "? [a]\n: b\n", "weir.yaml:1:3: expected a key name in configuration, got a list" },
        { "<<: { workers: 2 }\n",
          "weir.yaml:1:1: unknown key '<<' in configuration (expected one of: workers, "
          "drain_timeout, log, listeners, clusters, redis_clusters, stores, admin, caches, data_dir, queues, tls, topics, sqs_auth)" },
    };
    RUN_CASES(cases);
}

static void test_error_values(void **state)
{
    static const struct err_case cases[] = {
        { "drain_timeout: abc\n",
          "weir.yaml:1:16: expected a duration like 250ms, 30s, 5m, got 'abc'" },
        { "drain_timeout: 30\n",
          "weir.yaml:1:16: expected a duration like 250ms, 30s, 5m, got '30'" },
        { "drain_timeout: 25h\n", "weir.yaml:1:16: 'drain_timeout' must be 0..24h, got '25h'" },
        { "drain_timeout: 99999999999999999999h\n",
          "weir.yaml:1:16: 'drain_timeout' must be 0..24h, got '99999999999999999999h'" },
        { LISTENER_HEAD "    timeouts: { client_header: 0 }\n",
          "weir.yaml:4:32: 'client_header' must be 1ms..24h, got '0'" },
        { LISTENER_HEAD "    limits: { request_line: 2m }\n",
          "weir.yaml:4:29: 'request_line' must be 16..1m, got '2m'" },
        { LISTENER_HEAD "    limits: { header_size: 10 }\n",
          "weir.yaml:4:28: 'header_size' must be 64..16m, got '10'" },
        { LISTENER_HEAD "    limits: { headers: 257 }\n",
          "weir.yaml:4:24: 'headers' must be 1..256, got '257'" },
        { LISTENER_HEAD "    limits: { headers: 0 }\n",
          "weir.yaml:4:24: 'headers' must be 1..256, got '0'" },
        { LISTENER_HEAD "    limits: { headers: many }\n",
          "weir.yaml:4:24: expected a number for 'headers', got 'many'" },
        { LISTENER_HEAD "    limits: { body: 99999999999g }\n",
          "weir.yaml:4:21: 'body' is too large, got '99999999999g'" },
        { LISTENER_HEAD "    limits: { body: 1t }\n",
          "weir.yaml:4:21: expected a size like 512, 16k, 8m, 1g, got '1t'" },
        { LISTENER_HEAD "    limits: { connections: 0 }\n",
          "weir.yaml:4:28: 'connections' must be 1..1000000, got '0'" },
        { "listeners:\n  - name: web\n    listen: 127.0.0.1:99999\n",
          "weir.yaml:3:13: bad address '127.0.0.1:99999': port must be 1..65535" },
        { "listeners:\n  - name: web\n    listen: example.com:80\n",
          "weir.yaml:3:13: bad address 'example.com:80': expected IPv4:port, [IPv6]:port, "
          "*:port or localhost:port (names are not resolved)" },
        { "listeners:\n  - name: web\n    listen: \"[::1]:0\"\n",
          "weir.yaml:3:13: bad address '[::1]:0': port must be 1..65535" },
        { "listeners:\n  - name: \"a b\"\n",
          "weir.yaml:2:11: bad name 'a b': use 1 to 63 letters, digits, '_', '-' or '.'" },
        { "listeners:\n  - name:\n",
          "weir.yaml:2:10: 'name' must not be empty" },
        { "listeners:\n  - name: \"a\\x01b\"\n",
          "weir.yaml:2:11: bad name 'a\\x01b': use 1 to 63 letters, digits, '_', '-' or '.'" },
        { "listeners:\n  - name: \"a\\0b\"\n", "weir.yaml:2:11: 'name' contains a NUL character" },
        { LISTENER_HEAD "    protocol: memcache\n",
          "weir.yaml:4:15: unknown protocol 'memcache' (expected one of: http, redis, sqs, tcp)" },
        { "workers: 0\n",
          "weir.yaml:1:10: expected 'auto' or a number 1..256 for 'workers', got '0'" },
        { "workers: 257\n",
          "weir.yaml:1:10: expected 'auto' or a number 1..256 for 'workers', got '257'" },
        { "workers: all\n",
          "weir.yaml:1:10: expected 'auto' or a number 1..256 for 'workers', got 'all'" },
        { "log: { level: verbose }\n",
          "weir.yaml:1:15: unknown log level 'verbose' (expected one of: error, warn, info, "
          "debug)" },
        { "log: { access: syslog }\n",
          "weir.yaml:1:16: expected 'off', 'stdout' or a file path (containing '/') for "
          "'access', got 'syslog'" },
        { "log: { error: stdout }\n",
          "weir.yaml:1:15: expected 'stderr' or a file path (containing '/') for 'error', got "
          "'stdout'" },
        { "clusters:\n  - name: api\n    balance: fastest\n",
          "weir.yaml:3:14: unknown balance 'fastest' (expected one of: round_robin, "
          "weighted_round_robin, least_connections, weighted_least_connections, ip_hash, "
          "consistent_hash, least_response_time, random, power_of_two)" },
        { "clusters:\n  - hash_method: jump\n",
          "weir.yaml:2:18: unknown hash_method 'jump' (expected one of: ring, maglev)" },
        { "clusters:\n  - endpoints:\n      - { address: 127.0.0.1:9002, weight: 1001 }\n",
          "weir.yaml:3:44: 'weight' must be 1..1000, got '1001'" },
        { "clusters:\n  - endpoints:\n      - { address: 127.0.0.1:9002, weight: 0 }\n",
          "weir.yaml:3:44: 'weight' must be 1..1000, got '0'" },
        { "clusters:\n  - endpoints: [\"*:80\"]\n",
          "weir.yaml:2:17: endpoint '*:80' is the any-address; give the server's own address" },
        { "clusters:\n  - endpoints: [\"[::]:80\"]\n",
          "weir.yaml:2:17: endpoint '[::]:80' is the any-address; give the server's own "
          "address" },
        { "clusters:\n  - max_connections: -1\n",
          "weir.yaml:2:22: expected a number for 'max_connections', got '-1'" },
        { "clusters:\n  - pool: { max_idle: 100001 }\n",
          "weir.yaml:2:23: 'max_idle' must be 0..100000, got '100001'" },
    };
    RUN_CASES(cases);
}

static void test_error_hash_key(void **state)
{
    static const struct err_case cases[] = {
        { "clusters:\n  - hash_key: \"header:\"\n",
          "weir.yaml:2:15: hash_key 'header:' needs a header name, like header:X-User" },
        { "clusters:\n  - hash_key: header\n",
          "weir.yaml:2:15: hash_key 'header' needs a header name, like header:X-User" },
        { "clusters:\n  - hash_key: \"cookie:\"\n",
          "weir.yaml:2:15: hash_key 'cookie:' needs a cookie name, like cookie:session" },
        { "clusters:\n  - hash_key: \"header:a b\"\n",
          "weir.yaml:2:15: hash_key 'header:a b' needs a header name, like header:X-User" },
        { "clusters:\n  - hash_key: client_ip:x\n",
          "weir.yaml:2:15: unknown hash_key 'client_ip:x' (expected one of: client_ip, path, "
          "header:NAME, cookie:NAME)" },
        { "clusters:\n  - hash_key: url\n",
          "weir.yaml:2:15: unknown hash_key 'url' (expected one of: client_ip, path, "
          "header:NAME, cookie:NAME)" },
        { "clusters:\n  - name: a\n    hash_key: path\n    endpoints: [127.0.0.1:1]\n",
          "weir.yaml:3:15: hash_key is used only with balance consistent_hash or ip_hash "
          "(this cluster uses round_robin)" },
        { "clusters:\n  - name: a\n    hash_method: ring\n    balance: ip_hash\n"
          "    endpoints: [127.0.0.1:1]\n",
          "weir.yaml:3:18: hash_method is used only with balance consistent_hash (this "
          "cluster uses ip_hash)" },
    };
    RUN_CASES(cases);
}

static void test_error_types(void **state)
{
    static const struct err_case cases[] = {
        { "- a\n", "weir.yaml:1:1: expected a map for configuration, got a list" },
        { "just text\n", "weir.yaml:1:1: expected a map for configuration, got 'just text'" },
        { "listeners:\n  name: web\n",
          "weir.yaml:2:3: expected a list for 'listeners', got a map" },
        { "listeners: [a]\n", "weir.yaml:1:13: expected a map for listener, got 'a'" },
        { "listeners:\n  -\n", "weir.yaml:2:4: expected a map for listener, got nothing" },
        { LISTENER_HEAD "    limits: [1]\n",
          "weir.yaml:4:13: expected a map for limits, got a list" },
        { LISTENER_HEAD "    limits:\n",
          "weir.yaml:4:12: expected a map for limits, got nothing" },
        { LISTENER_HEAD "    limits: { headers: [1] }\n",
          "weir.yaml:4:24: expected a single value for 'headers', got a list" },
        { LISTENER_HEAD "    routes: { cluster: a }\n",
          "weir.yaml:4:13: expected a list for 'routes', got a map" },
        { LISTENER_HEAD "    routes:\n      - match: /api\n",
          "weir.yaml:5:16: expected a map for match, got '/api'" },
        { LISTENER_HEAD "    routes:\n      - match: { method: { GET: 1 } }\n",
          "weir.yaml:5:26: expected a list for 'method', got a map" },
        { LISTENER_HEAD "    routes:\n      - match: { method: [[GET]] }\n",
          "weir.yaml:5:27: expected a single value for 'method', got a list" },
        { LISTENER_HEAD "    routes:\n      - match: { header: X-Env }\n",
          "weir.yaml:5:26: expected a map for 'header', got 'X-Env'" },
        { LISTENER_HEAD "    routes:\n      - match: { header: { X-Env: [a] } }\n",
          "weir.yaml:5:35: expected a single value for a header value, got a list" },
        { "clusters:\n  - endpoints: 127.0.0.1:9001\n",
          "weir.yaml:2:16: expected a list for 'endpoints', got '127.0.0.1:9001'" },
        { "clusters:\n  - endpoints: [[127.0.0.1:9001]]\n",
          "weir.yaml:2:17: expected an address or a map with address and weight for "
          "endpoint, got a list" },
        { "clusters:\n  - name: [a]\n",
          "weir.yaml:2:11: expected a single value for 'name', got a list" },
        { "log: stderr\n", "weir.yaml:1:6: expected a map for log, got 'stderr'" },
    };
    RUN_CASES(cases);
}

static void test_error_required_and_empty(void **state)
{
    static const struct err_case cases[] = {
        { "listeners:\n  - name: web\n    routes: [{ cluster: a }]\n",
          "weir.yaml:2:5: listener is missing required key 'listen'" },
        { LISTENER_HEAD, "weir.yaml:2:5: listener is missing required key 'routes'" },
        { "listeners:\n  - listen: 127.0.0.1:1\n    routes: [{ cluster: a }]\n",
          "weir.yaml:2:5: listener is missing required key 'name'" },
        { "clusters:\n  - name: a\n",
          "weir.yaml:2:5: cluster is missing required key 'endpoints'" },
        { "clusters:\n  - endpoints: [127.0.0.1:1]\n",
          "weir.yaml:2:5: cluster is missing required key 'name'" },
        { LISTENER_HEAD "    routes:\n      - match: { path: / }\n",
          "weir.yaml:5:9: route has no target: add one of cluster, respond, redirect, queue" },
        { "clusters:\n  - endpoints:\n      - { weight: 2 }\n",
          "weir.yaml:3:9: endpoint is missing required key 'address'" },
        { MINIMAL "log: {}\n" "workers: 1\n" "drain_timeout: 1s\n" "x: 1\n",
          "weir.yaml:12:1: unknown key 'x' in configuration (expected one of: workers, "
          "drain_timeout, log, listeners, clusters, redis_clusters, stores, admin, caches, data_dir, queues, tls, topics, sqs_auth)" },
        { "clusters:\n  - name: api\n    endpoints: [127.0.0.1:9001]\n",
          "weir.yaml:1:1: configuration is missing required key 'listeners'" },
        { LISTENER_HEAD "    routes: [{ cluster: api }]\n",
          "weir.yaml:1:1: configuration is missing required key 'clusters'" },
        { "listeners: []\n",
          "weir.yaml:1:12: 'listeners' must not be empty (expected at least one listener)" },
        { "clusters: []\n",
          "weir.yaml:1:11: 'clusters' must not be empty (expected at least one cluster)" },
        { LISTENER_HEAD "    routes: []\n",
          "weir.yaml:4:13: 'routes' must not be empty (expected at least one route)" },
        { "clusters:\n  - name: a\n    endpoints: []\n",
          "weir.yaml:3:16: 'endpoints' must not be empty (expected at least one endpoint)" },
        { LISTENER_HEAD "    routes:\n      - match: { method: [] }\n",
          "weir.yaml:5:26: 'method' must not be empty (expected at least one method)" },
        { LISTENER_HEAD "    routes:\n      - match: { header: {} }\n",
          "weir.yaml:5:26: 'header' must not be empty (expected NAME: VALUE pairs)" },
        { LISTENER_HEAD "    routes:\n      - cluster: \"\"\n",
          "weir.yaml:5:18: 'cluster' must not be empty" },
        { "", "weir.yaml:1:1: the configuration is empty (expected a map with listeners and "
              "clusters)" },
        { "# nothing but a comment\n", "weir.yaml:1:1: the configuration is empty (expected a "
                                       "map with listeners and clusters)" },
    };
    RUN_CASES(cases);
}

static void test_error_routes(void **state)
{
    static const struct err_case cases[] = {
        { LISTENER_HEAD "    routes:\n      - cluster: apj\n"
          "clusters:\n  - name: api\n    endpoints: [127.0.0.1:9001]\n",
          "weir.yaml:5:18: route names cluster 'apj' which is not defined" },
        { LISTENER_HEAD "    routes:\n      - cluster: api\n      - match: { path: /a }\n"
          "        cluster: api\n",
          "weir.yaml:6:9: route is never used: the route at 5:9 before it matches every "
          "request (put the default route last)" },
        { LISTENER_HEAD "    routes:\n      - { match: {}, cluster: api }\n      - cluster: b\n",
          "weir.yaml:6:9: route is never used: the route at 5:9 before it matches every "
          "request (put the default route last)" },
        { LISTENER_HEAD "    routes:\n      - match: { path_prefix: /a, path: /a/b }\n",
          "weir.yaml:5:41: match has both 'path' and 'path_prefix'; use one of them" },
        { LISTENER_HEAD "    routes:\n      - match: { path: api }\n",
          "weir.yaml:5:24: 'path' must start with '/', got 'api'" },
        { LISTENER_HEAD "    routes:\n      - match: { path_prefix: \"/a b\" }\n",
          "weir.yaml:5:31: 'path_prefix' must not contain spaces or control characters, got "
          "'/a b'" },
        { LISTENER_HEAD "    routes:\n      - match: { host: \"*.example.com\" }\n",
          "weir.yaml:5:24: 'host' must be an exact name (wildcards are not supported), got "
          "'*.example.com'" },
        { LISTENER_HEAD "    routes:\n      - match: { host: \"a/b\" }\n",
          "weir.yaml:5:24: bad host 'a/b': expected a name like api.example.com" },
        { LISTENER_HEAD "    routes:\n      - match: { method: \"GET, POST\" }\n",
          "weir.yaml:5:26: bad method 'GET, POST' (expected an HTTP method like GET, or a list "
          "like [GET, POST])" },
        { LISTENER_HEAD "    routes:\n      - match: { header: { \"X Env\": a } }\n",
          "weir.yaml:5:28: bad header name 'X Env'" },
        { LISTENER_HEAD "    routes:\n      - match: { header: { X-Env: a, x-env: b } }\n",
          "weir.yaml:5:38: duplicate header 'x-env' in match (first at 5:28)" },
        { LISTENER_HEAD "    routes:\n      - match: { header: { X-Env: \"a\\nb\" } }\n",
          "weir.yaml:5:35: header value 'a\\x0ab' contains a control character" },
    };
    RUN_CASES(cases);
}

static void test_error_duplicates(void **state)
{
    static const struct err_case cases[] = {
        { "clusters:\n  - name: api\n    endpoints: [127.0.0.1:9001]\n"
          "  - name: api\n    endpoints: [127.0.0.1:9002]\n",
          "weir.yaml:4:11: duplicate cluster name 'api' (first defined at 2:11)" },
        { "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes: [{cluster: a}]\n"
          "  - name: web\n    listen: 127.0.0.1:8081\n    routes: [{cluster: a}]\n",
          "weir.yaml:5:11: duplicate listener name 'web' (first defined at 2:11)" },
        { "listeners:\n  - name: a\n    listen: \"*:8080\"\n    routes: [{cluster: a}]\n"
          "  - name: b\n    listen: 0.0.0.0:8080\n    routes: [{cluster: a}]\n",
          "weir.yaml:6:13: duplicate listen address '0.0.0.0:8080' (also used by listener 'a' "
          "at 3:13)" },
        { "listeners:\n  - name: a\n    listen: localhost:80\n    routes: [{cluster: a}]\n"
          "  - name: b\n    listen: 127.0.0.1:80\n    routes: [{cluster: a}]\n",
          "weir.yaml:6:13: duplicate listen address '127.0.0.1:80' (also used by listener 'a' "
          "at 3:13)" },
        { "clusters:\n  - endpoints:\n      - 127.0.0.1:1\n      - { address: localhost:1 }\n",
          "weir.yaml:4:9: duplicate endpoint 'localhost:1' (first at 3:9; use weight to send it "
          "more traffic)" },
    };
    RUN_CASES(cases);
}

static void test_error_yaml_syntax(void **state)
{
    static const struct err_case cases[] = {
        { "listeners: [a\n", "weir.yaml:2:1: YAML syntax error: did not find expected ',' or "
                             "']' (while parsing a flow sequence at 1:12)" },
        { "a:\n\tb: 1\n", "weir.yaml:2:1: YAML syntax error: found character that cannot start "
                          "any token (while scanning for the next token at 2:1)" },
        { "a: b: c\n", "weir.yaml:1:5: YAML syntax error: mapping values are not allowed in "
                       "this context" },
        { "workers: *w\n", "weir.yaml:1:10: undefined alias *w (no anchor &w before it)" },
        { "workers: \x01\n", "weir.yaml:1:10: bad input: control characters are not allowed "
                             "(byte 0x01)" },
        { "workers: \xc3(\n",
          "weir.yaml:1:11: bad input: invalid trailing UTF-8 octet (byte 0x28)" },
        { "workers: \xe6", "weir.yaml:1:10: bad input: incomplete UTF-8 octet sequence" },
        { "workers: 1\n---\nworkers: 2\n",
          "weir.yaml:2:1: expected one YAML document, found a second one" },
        { "workers: 1\n...\n]\n", "weir.yaml:3:1: YAML syntax error: did not find expected "
                                  "<document start>" },
    };
    RUN_CASES(cases);
}

/* A NUL byte inside the text is a YAML error, not a silently shorter file. */
static void test_error_nul_in_input(void **state)
{
    static const char text[] = "workers: 1\0\nx: 2\n";
    struct cfg *cfg = NULL;
    int rc = cfg_load_string("weir.yaml", text, sizeof(text) - 1, &cfg, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, "weir.yaml:1:11: bad input: control characters are not allowed "
                             "(byte 0x00)");
}

static void test_aliases(void **state)
{
    struct cfg *cfg = load_ok(LISTENER_HEAD "    routes: [{ cluster: api }]\n"
                              "clusters:\n"
                              "  - name: api\n"
                              "    endpoints: &eps [127.0.0.1:1, { address: 127.0.0.1:2 }]\n"
                              "  - name: web\n"
                              "    endpoints: *eps\n");
    assert_int_equal(cfg->clusters[1].n_endpoints, 2);
    assert_string_equal(cfg->clusters[1].endpoints[1].address, "127.0.0.1:2");
    cfg_free(cfg);
    /* The same cluster twice through an alias is a duplicate name. */
    assert_string_equal(load_err("clusters:\n  - &c { name: a, endpoints: [127.0.0.1:1] }\n"
                                 "  - *c\n"),
                        "weir.yaml:2:16: duplicate cluster name 'a' (first defined at 2:16)");
    /* A list that contains itself ends in a type error, not a loop. */
    assert_string_equal(load_err("listeners: &l [*l]\n"),
                        "weir.yaml:1:12: expected a map for listener, got a list");
}

/* Appends to a growing heap buffer (test helper; aborts on failure). */
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = *cap * 2 + (size_t)n;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
}

/* Aliases can multiply a small file into a huge tree: 70 listeners x 256
 * routes x 64 methods from 15 kB of text. The walk stops at its bound. */
static void test_alias_node_bound(void **state)
{
    size_t len = 0, cap = 1024;
    char *text = malloc(cap);

    assert_non_null(text);
    text[0] = '\0';
    append(&text, &len, &cap, "listeners:\n  - name: l0\n    listen: 127.0.0.1:1\n"
                              "    routes: &r\n      - match: { method: &m [GET");
    for (int i = 1; i < 64; i++)
        append(&text, &len, &cap, ", GET");
    append(&text, &len, &cap, "] }\n        cluster: a\n");
    for (int i = 1; i < 256; i++)
        append(&text, &len, &cap, "      - { match: { method: *m }, cluster: a }\n");
    for (int i = 1; i < 70; i++)
        append(&text, &len, &cap, "  - { name: l%d, listen: 127.0.0.1:%d, routes: *r }\n", i,
               i + 1);
    const char *msg = load_err(text);
    free(text);
    if (strstr(msg, ": too many values (more than 1048576, counting aliases each time they are "
                    "used)") == NULL)
        fail_msg("%s", msg);
}

/* A long value aliased many times is bounded by bytes, not only by nodes. */
static void test_alias_byte_bound(void **state)
{
    size_t len = 0, cap = 1024;
    char *text = malloc(cap);

    assert_non_null(text);
    text[0] = '\0';
    append(&text, &len, &cap, "listeners:\n  - name: l0\n    listen: 127.0.0.1:1\n"
                              "    routes: [&r { match: { host: ");
    for (int i = 0; i < 60000; i++)
        append(&text, &len, &cap, "a");
    append(&text, &len, &cap, " }, cluster: a }");
    for (int i = 0; i < 1200; i++)
        append(&text, &len, &cap, ", *r");
    append(&text, &len, &cap, "]\n");
    const char *msg = load_err(text);
    free(text);
    if (strstr(msg, ": the configuration is too large (more than 64 MB of values, counting "
                    "aliases each time they are used)") == NULL)
        fail_msg("%s", msg);
}

/* Deep nesting stops early: libyaml's scanner is quadratic in depth. */
static void test_depth_bound(void **state)
{
    size_t n = 200000;
    char *text = malloc(2 * n + 16);

    assert_non_null(text);
    strcpy(text, "listeners: ");
    memset(text + 11, '[', n);
    memset(text + 11 + n, ']', n);
    text[11 + 2 * n] = '\0';
    const char *msg = load_err(text);
    free(text);
    assert_string_equal(msg, "weir.yaml:1:43: nested too deeply (more than 32 levels)");
}

static void test_node_and_anchor_bounds(void **state)
{
    size_t len = 0, cap = 1024;
    char *text = malloc(cap);

    assert_non_null(text);
    text[0] = '\0';
    append(&text, &len, &cap, "x: [");
    for (int i = 0; i < 1100000; i++)
        append(&text, &len, &cap, "1,");
    append(&text, &len, &cap, "]\n");
    const char *msg = load_err(text);
    assert_string_equal(msg, "weir.yaml:1:2097151: too many values (more than 1048576)");

    len = 0;
    text[0] = '\0';
    append(&text, &len, &cap, "x:\n");
    for (int i = 0; i < 257; i++)
        append(&text, &len, &cap, "  - &a%d %d\n", i, i);
    msg = load_err(text);
    free(text);
    assert_string_equal(msg, "weir.yaml:258:5: too many anchors (more than 256)");

    /* A later anchor of the same name replaces the earlier one. */
    struct cfg *cfg = load_ok("workers: &n 3\ndrain_timeout: &n 5s\n" MINIMAL
                              "    timeouts: { connect: *n }\n");
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->clusters[0].connect_timeout_ms, 5000);
    cfg_free(cfg);
}

static void test_list_limits(void **state)
{
    size_t len = 0, cap = 1024;
    char *text = malloc(cap);

    assert_non_null(text);
    text[0] = '\0';
    append(&text, &len, &cap, "clusters:\n  - name: a\n    endpoints: [&e 127.0.0.1:1");
    for (int i = 0; i < 10000; i++)
        append(&text, &len, &cap, ", *e");
    append(&text, &len, &cap, "]\n");
    const char *msg = load_err(text);
    free(text);
    assert_string_equal(msg, "weir.yaml:3:16: 'endpoints' has 10001 items, at most 10000 are "
                             "allowed");
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/weir-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full_yaml, sizeof(full_yaml) - 1), (ssize_t)sizeof(full_yaml) - 1);
    close(fd);

    struct cfg *cfg = NULL;
    assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->n_clusters, 3);
    cfg_free(cfg);
    unlink(path);

    cfg = NULL;
    assert_int_equal(cfg_load("/nonexistent/weir.yaml", &cfg, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "/nonexistent/weir.yaml: cannot open: No such file or directory");
    assert_null(cfg);
    assert_int_equal(cfg_load("/tmp", &cfg, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, "/tmp: cannot read: Is a directory");
}

/* Messages are cut, never overflowed, and a NULL buffer is allowed. */
static void test_error_buffer(void **state)
{
    char small[16];
    struct cfg *cfg = NULL;

    memset(small, 'x', sizeof(small));
    assert_int_equal(cfg_load_string("weir.yaml", "workers: 0\n", 11, &cfg, small, sizeof(small)),
                     -EINVAL);
    assert_string_equal(small, "weir.yaml:1:10:");
    assert_int_equal(cfg_load_string("weir.yaml", "workers: 0\n", 11, &cfg, NULL, 0), -EINVAL);
    assert_int_equal(cfg_load_string("weir.yaml", "workers: 0\n", 11, &cfg, small, 0), -EINVAL);
    assert_int_equal(cfg_load("/nonexistent", &cfg, small, 1), -ENOENT);
    assert_string_equal(small, "");
    assert_null(cfg);
}

/* Long and unprintable values are shortened and escaped in messages. */
static void test_error_quoting(void **state)
{
    char text[512];
    snprintf(text, sizeof(text), "log: { level: %0200d }\n", 7);
    const char *msg = load_err(text);
    assert_true(strlen(msg) < 250);
    assert_non_null(strstr(msg, "...' (expected one of"));
}

static int fail_after = -1; /* calls that succeed before one fails; -1 = never */
static int alloc_calls;

static void *failing_calloc(size_t n, size_t size)
{
    alloc_calls++;
    if (fail_after >= 0 && alloc_calls > fail_after)
        return NULL;
    return calloc(n, size);
}

/* Fails each allocation in turn: every failure is -ENOMEM with a message
 * and, under LeakSanitizer, leaks nothing. */
static void test_alloc_failures(void **state)
{
    void *(*saved)(size_t, size_t) = cfg_calloc_fn;
    struct cfg *cfg = NULL;
    int total;

    cfg_calloc_fn = failing_calloc;
    fail_after = -1;
    alloc_calls = 0;
    assert_int_equal(cfg_load_string("w", full_yaml, strlen(full_yaml), &cfg, err, sizeof(err)), 0);
    cfg_free(cfg);
    total = alloc_calls;
    assert_true(total > 40);
    for (fail_after = 0; fail_after < total; fail_after++) {
        alloc_calls = 0;
        cfg = NULL;
        int rc = cfg_load_string("w", full_yaml, strlen(full_yaml), &cfg, err, sizeof(err));
        if (rc != -ENOMEM)
            fail_msg("allocation %d: rc %d (%s)", fail_after, rc, err);
        assert_string_equal(err, "w: out of memory");
        assert_null(cfg);
    }
    char path[] = "/tmp/weir-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "workers: 1\n", 11), 11);
    close(fd);
    fail_after = 0;
    assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -ENOMEM);
    assert_string_equal(err + strlen(path), ": out of memory");
    unlink(path);
    cfg_calloc_fn = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_health_timeout_default),
        cmocka_unit_test(test_find_cluster),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_every_balance),
        cmocka_unit_test(test_error_unknown_keys),
        cmocka_unit_test(test_error_queue_backend),
        cmocka_unit_test(test_error_values),
        cmocka_unit_test(test_error_hash_key),
        cmocka_unit_test(test_error_types),
        cmocka_unit_test(test_error_required_and_empty),
        cmocka_unit_test(test_error_routes),
        cmocka_unit_test(test_error_duplicates),
        cmocka_unit_test(test_error_yaml_syntax),
        cmocka_unit_test(test_error_nul_in_input),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_alias_node_bound),
        cmocka_unit_test(test_alias_byte_bound),
        cmocka_unit_test(test_list_limits),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_node_and_anchor_bounds),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_error_quoting),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

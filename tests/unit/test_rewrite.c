/* Unit tests for src/http/steps/rewrite.c.
 *
 * Configurations are real YAML run through the step's parser (the config
 * toolkit of core/config.c), so the tests cover parsing, config errors with
 * their FILE:LINE:COLUMN, and rewrite_apply() on every key and edge case.
 * The step's on_request runs on a real transaction arena and the real
 * http_edit_target, on request heads parsed by the real http_parse_request. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/config_parse.h"
#include "http/http_edit.h"
#include "http/http_parser.h"
#include "http/steps/rewrite.h"
#include "http/txn.h"
#include "server/server.h"

/* The transaction's arena is the real one (txn.c): a worker context with
 * a buffer pool is all it needs. */
static struct wctx g_wc;

/* ---- helpers ---- */

static char g_err[512];

/* Parses `yaml` (the value of a route's `rewrite` key) with the step's
 * parser. Returns its result; *out is set on success. */
static int parse(const char *yaml, void **out)
{
    yaml_parser_t parser;
    yaml_document_t doc;

    *out = NULL;
    g_err[0] = '\0';
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    assert_true(yaml_parser_load(&parser, &doc));
    struct cfg_ctx ctx = {
        .name = "test.yaml", .doc = &doc, .err = g_err, .err_size = sizeof(g_err),
        .values_left = CFG_MAX_VALUES, .bytes_left = CFG_MAX_BYTES,
    };
    int rc = step_rewrite.parse(&ctx, yaml_document_get_root_node(&doc), out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static void *cfg_ok(const char *yaml)
{
    void *c;
    int rc = parse(yaml, &c);
    if (rc != 0)
        fail_msg("parse of %s failed: %s", yaml, g_err);
    return c;
}

/* Fails unless `yaml` is refused with a message containing `want`. */
static void cfg_bad(const char *yaml, const char *want)
{
    void *c;
    int rc = parse(yaml, &c);
    if (rc == 0) {
        step_rewrite.free_cfg(c);
        fail_msg("%s was accepted", yaml);
    }
    assert_int_equal(rc, -EINVAL);
    assert_null(c);
    if (strstr(g_err, want) == NULL)
        fail_msg("error for %s is \"%s\", wanted \"%s\"", yaml, g_err, want);
}

static char g_out[512];

/* Rewrites "path[?query]" with cfg; returns rewrite_apply's result and
 * leaves the text (when > 0) NUL-terminated in g_out. */
static int apply(const void *cfg, const char *target)
{
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    const char *query = q ? q + 1 : "";
    memset(g_out, 0, sizeof(g_out));
    int rc = rewrite_apply(cfg, target, plen, query, strlen(query), g_out, sizeof(g_out) - 1);
    if (rc > 0)
        assert_int_equal(strlen(g_out), (size_t)rc);
    return rc;
}

/* Asserts cfg turns `in` into `want` (NULL: left as it is). */
static void check(const void *cfg, const char *in, const char *want)
{
    int rc = apply(cfg, in);
    if (want == NULL) {
        if (rc != 0)
            fail_msg("%s: expected unchanged, got %d \"%s\"", in, rc, g_out);
        return;
    }
    if (rc <= 0)
        fail_msg("%s: expected \"%s\", got %d", in, want, rc);
    if (strcmp(g_out, want) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", in, want, g_out);
}

/* ---- strip_prefix ---- */

static void test_strip_prefix(void **state)
{
    void *c = cfg_ok("{ strip_prefix: /api }");
    check(c, "/api/users?x=1", "/users?x=1");
    check(c, "/api/users", "/users");
    check(c, "/api/a/b/", "/a/b/");
    check(c, "/api", "/");
    check(c, "/api?x=1", "/?x=1");
    check(c, "/api/", "/");
    check(c, "/api//x", "//x");
    check(c, "/apix", NULL);    /* segment boundary */
    check(c, "/apix/y", NULL);
    check(c, "/other/api", NULL);
    check(c, "/", NULL);
    check(c, "/ap", NULL);
    check(c, "/API/x", NULL);   /* paths are case-sensitive */
    check(c, "*", NULL);        /* OPTIONS *: not origin-form */
    step_rewrite.free_cfg(c);
}

static void test_strip_prefix_trailing_slash_and_segments(void **state)
{
    void *c = cfg_ok("{ strip_prefix: /api/ }");
    check(c, "/api/users", "/users");
    check(c, "/api", "/");
    check(c, "/apix", NULL);
    step_rewrite.free_cfg(c);
    c = cfg_ok("{ strip_prefix: /api/v1 }");
    check(c, "/api/v1/x?q", "/x?q");
    check(c, "/api/v2/x", NULL);
    check(c, "/api", NULL);
    step_rewrite.free_cfg(c);
}

/* ---- replace_prefix ---- */

static void test_replace_prefix(void **state)
{
    void *c = cfg_ok("{ replace_prefix: { from: /old/, to: /new/ } }");
    check(c, "/old/x?y=1", "/new/x?y=1");
    check(c, "/old/a/b", "/new/a/b");
    check(c, "/old/", "/new/");
    check(c, "/old", "/new");
    check(c, "/older", NULL);
    check(c, "/x/old/", NULL);
    step_rewrite.free_cfg(c);

    /* slashes in from/to never double or glue segments */
    c = cfg_ok("{ replace_prefix: { from: /old, to: /new/ } }");
    check(c, "/old/x", "/new/x");
    step_rewrite.free_cfg(c);
    c = cfg_ok("{ replace_prefix: { from: /old/, to: /new } }");
    check(c, "/old/x", "/new/x");
    step_rewrite.free_cfg(c);

    /* to: / strips; from: / adds a prefix */
    c = cfg_ok("{ replace_prefix: { from: /old, to: / } }");
    check(c, "/old/x", "/x");
    check(c, "/old", "/");
    step_rewrite.free_cfg(c);
    c = cfg_ok("{ replace_prefix: { from: /, to: /v2 } }");
    check(c, "/x?a", "/v2/x?a");
    check(c, "/", "/v2/");
    step_rewrite.free_cfg(c);
}

/* ---- regex ---- */

static void test_regex_groups(void **state)
{
    void *c = cfg_ok("{ regex: { pattern: '^/users/([0-9]+)$', replace: '/u/$1' } }");
    check(c, "/users/42", "/u/42");
    check(c, "/users/42?full=1", "/u/42?full=1");
    check(c, "/users/abc", NULL);       /* no match: unchanged */
    check(c, "/users/42/x", NULL);
    step_rewrite.free_cfg(c);

    c = cfg_ok("{ regex: { pattern: '^/(\\w+)/(\\w+)$', replace: '/$2/$1/${1}0/$$/$0' } }");
    check(c, "/a/b", "/b/a/a0/$//a/b");
    step_rewrite.free_cfg(c);

    c = cfg_ok("{ regex: { pattern: '^/item/(?<id>[0-9]+)', replace: '/items/${id}' } }");
    check(c, "/item/7/extra", "/items/7/extra");   /* the text after the match is kept */
    step_rewrite.free_cfg(c);

    /* an unset group gives nothing */
    c = cfg_ok("{ regex: { pattern: '^/(x)?y', replace: '/[$1]' } }");
    check(c, "/y/z", "/[]/z");
    check(c, "/xy/z", "/[x]/z");
    step_rewrite.free_cfg(c);

    /* two-digit groups through ${N} */
    c = cfg_ok("{ regex: { pattern: '^/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)', replace: '/${11}$1' } }");
    check(c, "/abcdefghijk", "/ka");
    step_rewrite.free_cfg(c);
}

static void test_regex_first_match_only(void **state)
{
    void *c = cfg_ok("{ regex: { pattern: '/v1/', replace: '/v2/' } }");
    check(c, "/v1/a/v1/b", "/v2/a/v1/b");
    check(c, "/x/v1/y", "/x/v2/y");
    step_rewrite.free_cfg(c);
}

static void test_regex_empty_and_invalid_results(void **state)
{
    /* deleting the whole path gives "/" */
    void *c = cfg_ok("{ regex: { pattern: '^/api', replace: '' } }");
    check(c, "/api", "/");
    check(c, "/api/x", "/x");
    assert_int_equal(apply(c, "/apifoo"), -EINVAL);     /* "foo" is no path */
    step_rewrite.free_cfg(c);

    c = cfg_ok("{ regex: { pattern: '^/(.*)$', replace: '$1' } }");
    assert_int_equal(apply(c, "/abc"), -EINVAL);
    check(c, "//abc", "/abc");
    step_rewrite.free_cfg(c);
}

static void test_regex_match_limit(void **state)
{
    void *c = cfg_ok("{ regex: { pattern: '^/(a|aa)+$', replace: '/x', match_limit: 1000 } }");
    check(c, "/aaaa", "/x");
    assert_int_equal(apply(c, "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"), -E2BIG);
    assert_int_equal(apply(c, "/aaaaaaaaaaaaaaaaaab"), -E2BIG);
    step_rewrite.free_cfg(c);
    /* the default limit lets that one finish (no match), not the pathological one */
    c = cfg_ok("{ regex: { pattern: '^/(a|aa)+$', replace: '/x' } }");
    assert_int_equal(apply(c, "/aaaaaaaaaaaaaaaaaab"), 0);
    assert_int_equal(apply(c, "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"), -E2BIG);
    step_rewrite.free_cfg(c);
}

/* ---- query ---- */

static void test_query_keep_and_drop(void **state)
{
    void *c = cfg_ok("{ strip_prefix: /api, query: drop }");
    check(c, "/api/x?y=1", "/x");
    check(c, "/api/x", "/x");
    check(c, "/other?y=1", "/other");   /* dropped even when the path stays */
    check(c, "/other", NULL);
    step_rewrite.free_cfg(c);

    c = cfg_ok("{ query: drop }");
    check(c, "/a/b?c=d&e", "/a/b");
    check(c, "/a/b", NULL);
    step_rewrite.free_cfg(c);

    c = cfg_ok("{ strip_prefix: /api, query: keep }");
    check(c, "/api/x?a=1&b=%20", "/x?a=1&b=%20");
    step_rewrite.free_cfg(c);
}

static void test_out_of_space(void **state)
{
    void *c = cfg_ok("{ replace_prefix: { from: /a, to: /longer } }");
    char out[9];
    assert_int_equal(rewrite_apply(c, "/a/b", 4, "", 0, out, 8), -ENOSPC);
    assert_int_equal(rewrite_apply(c, "/a/b", 4, "", 0, out, 9), 9);
    assert_memory_equal(out, "/longer/b", 9);
    step_rewrite.free_cfg(c);
}

/* ---- config errors ---- */

static void test_config_errors(void **state)
{
    cfg_bad("{ strip_prefix: /api, regex: { pattern: x, replace: /y } }",
            "test.yaml:1:30: 'rewrite' takes one of strip_prefix, replace_prefix or regex, "
            "not both 'strip_prefix' (at 1:17) and 'regex'");
    cfg_bad("{ replace_prefix: { from: /a, to: /b }, strip_prefix: /c }", "not both");
    cfg_bad("{}", "test.yaml:1:1: 'rewrite' needs one of strip_prefix, replace_prefix, regex");
    cfg_bad("{ query: keep }", "needs one of");
    cfg_bad("{ query: maybe }", "unknown query 'maybe' (expected one of: keep, drop)");
    cfg_bad("{ strip: /a }", "unknown key 'strip' in 'rewrite'");
    cfg_bad("/api", "expected a map for 'rewrite'");
    cfg_bad("{ strip_prefix: / }", "strips nothing");
    cfg_bad("{ strip_prefix: api }", "'strip_prefix' must be a path starting with '/'");
    cfg_bad("{ strip_prefix: '/a b' }", "must be a path");
    cfg_bad("{ strip_prefix: '/a?b' }", "holds a '?'");
    cfg_bad("{ strip_prefix: \"/a\\r\\n\" }", "must be a path");
    cfg_bad("{ strip_prefix: '' }", "must not be empty");
    cfg_bad("{ replace_prefix: { from: /a } }", "'replace_prefix' is missing required key 'to'");
    cfg_bad("{ replace_prefix: { from: /a, to: b } }", "'to' must be a path");
    cfg_bad("{ replace_prefix: /a }", "expected a map for 'replace_prefix'");
    /* regex: PCRE2's message and offset, at the pattern's position */
    cfg_bad("{ regex: { pattern: '^/(x', replace: /y } }",
            "test.yaml:1:21: bad regex '^/(x': missing closing parenthesis at offset 4");
    cfg_bad("{ regex: { replace: /y } }", "'regex' is missing required key 'pattern'");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/$2' } }",
            "test.yaml:1:39: bad replacement '/$2': group 2 at offset 1 does not exist");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/${name}' } }", "no group of that name");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/$x' } }", "write $$ for a '$'");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/$' } }", "'$' must be followed");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/${1' } }", "'$' must be followed");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/a?b' } }", "may not hold '?'");
    cfg_bad("{ regex: { pattern: '^/(x)', replace: '/a b' } }", "may not hold");
    cfg_bad("{ regex: { pattern: '^/x', replace: 'y' } }", "must start with '/'");
    cfg_bad("{ regex: { pattern: '^/x', replace: '/y', match_limit: 0 } }",
            "'match_limit' must be 1..10000000");
    cfg_bad("{ regex: { pattern: '', replace: '/y' } }", "'pattern' must not be empty");
}

static void test_config_accepts(void **state)
{
    /* unanchored patterns may replace with anything a path may hold */
    void *c = cfg_ok("{ regex: { pattern: 'x', replace: 'y' } }");
    check(c, "/axb", "/ayb");
    step_rewrite.free_cfg(c);
    /* anchored, but the replacement starts with a group: checked per request */
    c = cfg_ok("{ regex: { pattern: '^(/[a-z]+)', replace: '$1/z' } }");
    check(c, "/ab/c", "/ab/z/c");
    step_rewrite.free_cfg(c);
}

/* ---- the step itself, with the stand-ins ---- */

static struct http_msg g_msg;

static void req(const char *head)
{
    size_t len = strlen(head);
    http_msg_init(&g_msg);
    int rc = http_parse_request(head, len, &g_msg, NULL);
    if (rc != (int)len)
        fail_msg("parse of \"%s\" returned %d", head, rc);
}

/* Runs the step with an empty arena, or one with only `room` bytes left
 * (room < block size). */
static enum step_result run_room(const void *cfg, struct txn *t, size_t room)
{
    t->wc = &g_wc;
    buf_release(&g_wc.bufs, &t->arena);
    if (room < g_wc.bufs.block_size) {
        assert_int_equal(buf_acquire(&g_wc.bufs, &t->arena), 0);
        t->arena.wpos = (uint32_t)(g_wc.bufs.block_size - room);
    }
    t->req = &g_msg;
    return step_rewrite.on_request(t, cfg, NULL);
}

static enum step_result run(const void *cfg, struct txn *t)
{
    return run_room(cfg, t, SIZE_MAX);
}

#define g_arena_used (t.arena.data ? (size_t)t.arena.wpos : 0)

static void test_on_request(void **state)
{
    static struct txn t;
    void *c = cfg_ok("{ strip_prefix: /api }");

    assert_string_equal(step_rewrite.key, "rewrite");
    assert_int_equal(step_rewrite.phase, STEP_PHASE_REWRITE);

    req("GET /api/users?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(run(c, &t), STEP_NEXT);
    assert_int_equal(g_msg.target.len, strlen("/users?x=1"));
    assert_memory_equal(g_msg.target.p, "/users?x=1", g_msg.target.len);
    assert_ptr_equal(g_msg.target.p, t.arena.data); /* in the transaction's arena */
    assert_int_equal(g_arena_used, g_msg.target.len); /* exactly its length */

    /* absolute-form: the path is rewritten, the target becomes origin-form */
    req("GET http://h.example/api/v?q HTTP/1.1\r\nHost: h.example\r\n\r\n");
    assert_int_equal(run(c, &t), STEP_NEXT);
    assert_memory_equal(g_msg.target.p, "/v?q", 4);

    /* unchanged: nothing allocated, the target is the parser's */
    const char *head = "GET /other HTTP/1.1\r\nHost: a\r\n\r\n";
    req(head);
    assert_int_equal(run(c, &t), STEP_NEXT);
    assert_ptr_equal(g_msg.target.p, head + 4);
    assert_int_equal(g_arena_used, 0);

    /* arena full: 500 */
    req("GET /api/users HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(run_room(c, &t, 3), STEP_ERROR);
    step_rewrite.free_cfg(c);

    /* an invalid result: 500, and the request is left alone */
    c = cfg_ok("{ regex: { pattern: '^/(.*)$', replace: '$1' } }");
    head = "GET /abc HTTP/1.1\r\nHost: a\r\n\r\n";
    req(head);
    assert_int_equal(run(c, &t), STEP_ERROR);
    assert_ptr_equal(g_msg.target.p, head + 4);
    step_rewrite.free_cfg(c);
    buf_release(&g_wc.bufs, &t.arena);
}

/* A worker thread's match data is freed when the thread ends (LeakSanitizer
 * would report it otherwise). */
static void *thread_main(void *cfg)
{
    char out[64];
    intptr_t rc = rewrite_apply(cfg, "/users/1", 8, "", 0, out, sizeof(out));
    return (void *)rc;
}

static void test_match_data_per_thread(void **state)
{
    void *c = cfg_ok("{ regex: { pattern: '^/users/([0-9]+)$', replace: '/u/$1' } }");
    pthread_t th[2];
    void *res;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, c), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_int_equal((intptr_t)res, 4);
    }
    step_rewrite.free_cfg(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strip_prefix),
        cmocka_unit_test(test_strip_prefix_trailing_slash_and_segments),
        cmocka_unit_test(test_replace_prefix),
        cmocka_unit_test(test_regex_groups),
        cmocka_unit_test(test_regex_first_match_only),
        cmocka_unit_test(test_regex_empty_and_invalid_results),
        cmocka_unit_test(test_regex_match_limit),
        cmocka_unit_test(test_query_keep_and_drop),
        cmocka_unit_test(test_out_of_space),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_accepts),
        cmocka_unit_test(test_on_request),
        cmocka_unit_test(test_match_data_per_thread),
    };
    buf_pool_init(&g_wc.bufs, 4096, 4);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rewrite_thread_cleanup();
    buf_pool_destroy(&g_wc.bufs);
    return failed;
}

/* rewrite: the `rewrite` route step. It changes the request's path (and may
 * drop its query) before the route's target sees it.
 *
 * Three ways to rewrite, at most one per route, all on the raw path as the
 * client sent it (no percent-decoding), never on the query:
 *
 *   strip_prefix P          P/rest -> /rest,   P -> /
 *   replace_prefix {F, T}   F/rest -> T/rest,  F -> T
 *   regex {pattern, replace}   the first match of pattern in the path is
 *                              replaced by `replace` ($1, ${12}, ${name}, $$)
 *
 * Prefixes are compared on whole path segments: /api matches /api and
 * /api/x, never /apix. A trailing '/' in a prefix does not matter (/api/
 * is /api), so neither does it produce "//" nor glue segments together.
 *
 * At config load everything that can be checked is: prefixes and literal
 * replacement text hold only bytes a target may hold (no '?', '#', space or
 * control bytes), patterns are compiled (JIT when available), group
 * references exist, and an anchored pattern's replacement starts with '/'.
 *
 * Per request nothing is allocated: the result is planned as a list of
 * slices (pieces of the path, of the configuration, of the query), its
 * exact length is known before one txn_alloc() of the transaction's arena,
 * and the slices are copied once. The regex match data is one per thread,
 * made on the thread's first regex match and freed at thread exit (a
 * pthread key destructor); since PCRE2 10.41 it also keeps the matcher's
 * backtracking frames, so matching reuses them. Every match runs under a
 * match limit, a depth limit and a heap limit, so a pathological pattern
 * fails one request (500, logged) instead of stalling a worker.
 *
 * The result is checked before it is used: it must start with '/', and
 * hold only visible ASCII other than '#' (and '?' only as the query's
 * separator), as the request parser demands of a target. A result that
 * fails is answered with 500 and logged, never forwarded. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "http/steps/rewrite.h"

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/txn.h"

#define REWRITE_KIND_LIST(X) \
    X(REWRITE_NONE, "none") \
    X(REWRITE_STRIP_PREFIX, "strip_prefix") \
    X(REWRITE_REPLACE_PREFIX, "replace_prefix") \
    X(REWRITE_REGEX, "regex")
#define REWRITE_ENUM(e, s) e,
enum rewrite_kind { REWRITE_KIND_LIST(REWRITE_ENUM) REWRITE_KIND_COUNT };
#define REWRITE_QUERY_LIST(X) \
    X(REWRITE_QUERY_KEEP, "keep") \
    X(REWRITE_QUERY_DROP, "drop")
enum rewrite_query { REWRITE_QUERY_LIST(REWRITE_ENUM) REWRITE_QUERY_COUNT };
#undef REWRITE_ENUM
#define REWRITE_NAME(e, s) s,
static const char *const rewrite_kind_names[] = { REWRITE_KIND_LIST(REWRITE_NAME) };
static const char *const rewrite_query_names[] = { REWRITE_QUERY_LIST(REWRITE_NAME) };
#undef REWRITE_NAME

/* One piece of a regex replacement: literal bytes or a capture group. */
struct rewrite_part {
    int group;                     /* >= 0: that group's text; -1: lit[off..off+len) */
    size_t off, len;
};

struct rewrite_cfg {
    enum rewrite_kind kind;
    enum rewrite_query query;
    struct cfg_mark kind_mark;     /* where the kind's key is written */
    /* prefixes, without a trailing '/' ("/" is ""): strip_prefix, replace_prefix */
    char *from;
    size_t from_len;
    char *to;                      /* replace_prefix.to ("" for strip_prefix) */
    size_t to_len;
    /* regex */
    char *pattern;
    char *replace;                 /* as written */
    char *lit;                     /* the replacement's literal bytes, $$ unescaped */
    uint32_t match_limit;
    pcre2_code *code;
    pcre2_match_context *mctx;
    struct rewrite_part parts[REWRITE_MAX_PARTS];
    size_t n_parts;
};

/* A rewritten target as slices, before it is copied: the path pieces
 * first (path_len bytes in all), then "?" and the query when kept. */
struct rewrite_plan {
    struct http_slice piece[REWRITE_MAX_PARTS + 4];
    size_t n, path_len, len;
};

/* ---- checks shared by config and requests ---- */

/* A byte the request parser accepts in a target: visible ASCII except '#'. */
static bool rewrite_target_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '#';
}

/* Checks a new path: starts with '/', only target bytes, no '?'. Returns
 * NULL or why it is not valid. */
static const char *rewrite_check_path(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        return "it does not start with '/'";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '?')
            return "it holds a '?'";
        if (!rewrite_target_byte(c))
            return "it holds a byte a request target may not hold";
    }
    return NULL;
}

/* ---- per-thread match data ---- */

static pthread_once_t rewrite_md_once = PTHREAD_ONCE_INIT;
static pthread_key_t rewrite_md_key;
static int rewrite_md_key_err;

static void rewrite_md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void rewrite_md_key_init(void)
{
    rewrite_md_key_err = pthread_key_create(&rewrite_md_key, rewrite_md_free);
}

/* The calling thread's match data (room for every group a replacement may
 * name), made on first use. Returns NULL when it cannot be made. */
static pcre2_match_data *rewrite_match_data(void)
{
    pthread_once(&rewrite_md_once, rewrite_md_key_init);
    if (rewrite_md_key_err != 0)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(rewrite_md_key);
    if (md != NULL)
        return md;
    md = pcre2_match_data_create(REWRITE_MAX_GROUP + 1, NULL);
    if (md != NULL && pthread_setspecific(rewrite_md_key, md) != 0) {
        pcre2_match_data_free(md);
        md = NULL;
    }
    return md;
}

void rewrite_thread_cleanup(void)
{
    pthread_once(&rewrite_md_once, rewrite_md_key_init);
    if (rewrite_md_key_err != 0)
        return;
    pcre2_match_data *md = pthread_getspecific(rewrite_md_key);
    if (md != NULL) {
        pthread_setspecific(rewrite_md_key, NULL);
        pcre2_match_data_free(md);
    }
}

/* ---- planning and writing a new target ---- */

static void rewrite_plan_add(struct rewrite_plan *plan, const char *p, size_t n)
{
    if (n == 0)
        return;
    plan->piece[plan->n].p = p;
    plan->piece[plan->n].len = n;
    plan->n++;
    plan->len += n;
}

/* Whether `path` starts with the prefix rc->from on a segment boundary;
 * sets *rest to what follows it ("" or "/..."). */
static bool rewrite_prefix_matches(const struct rewrite_cfg *rc, const char *path, size_t len,
                                   size_t *rest)
{
    if (len < rc->from_len || memcmp(path, rc->from, rc->from_len) != 0)
        return false;
    if (len > rc->from_len && path[rc->from_len] != '/')
        return false;
    *rest = rc->from_len;
    return true;
}

/* Plans a regex rewrite of the path. Returns 1, 0 (no match) or a negative
 * errno (see rewrite_apply). */
static int rewrite_plan_regex(const struct rewrite_cfg *rc, const char *path, size_t len,
                              struct rewrite_plan *plan)
{
    pcre2_match_data *md = rewrite_match_data();
    if (md == NULL)
        return -ENOMEM;
    int m = pcre2_match(rc->code, (PCRE2_SPTR)path, len, 0, 0, md, rc->mctx);
    if (m == PCRE2_ERROR_NOMATCH)
        return 0;
    if (m == PCRE2_ERROR_MATCHLIMIT || m == PCRE2_ERROR_DEPTHLIMIT ||
        m == PCRE2_ERROR_HEAPLIMIT || m == PCRE2_ERROR_JIT_STACKLIMIT)
        return -E2BIG;
    if (m == PCRE2_ERROR_NOMEMORY)
        return -ENOMEM;
    if (m < 0)
        return -EIO;
    /* m == 0: more groups than the ovector holds; those named are in it */
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t pairs = pcre2_get_ovector_count(md);
    rewrite_plan_add(plan, path, ov[0]);
    for (size_t i = 0; i < rc->n_parts; i++) {
        const struct rewrite_part *part = &rc->parts[i];
        if (part->group < 0) {
            rewrite_plan_add(plan, rc->lit + part->off, part->len);
            continue;
        }
        size_t g = (size_t)part->group;
        if (g < pairs && ov[2 * g] != PCRE2_UNSET)
            rewrite_plan_add(plan, path + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
    rewrite_plan_add(plan, path + ov[1], len - ov[1]);
    return 1;
}

/* Plans the new target. Returns 1 (plan made), 0 (the target stays) or a
 * negative errno. */
static int rewrite_plan_make(const struct rewrite_cfg *rc, const char *path, size_t len,
                             const char *query, size_t query_len, struct rewrite_plan *plan)
{
    size_t rest;
    int changed = 0;

    plan->n = plan->len = 0;
    if (len == 0 || path[0] != '/')
        return 0; /* "*" (OPTIONS) or authority-form (CONNECT): not ours */
    if ((rc->kind == REWRITE_STRIP_PREFIX || rc->kind == REWRITE_REPLACE_PREFIX) &&
        rewrite_prefix_matches(rc, path, len, &rest)) {
        rewrite_plan_add(plan, rc->to, rc->to_len);
        rewrite_plan_add(plan, path + rest, len - rest);
        changed = 1;
    } else if (rc->kind == REWRITE_REGEX) {
        changed = rewrite_plan_regex(rc, path, len, plan);
        if (changed < 0)
            return changed;
    }
    bool drop = rc->query == REWRITE_QUERY_DROP && query_len > 0;
    if (!changed && !drop)
        return 0;
    if (!changed) {
        plan->n = plan->len = 0;
        rewrite_plan_add(plan, path, len);
    }
    if (plan->len == 0)
        rewrite_plan_add(plan, "/", 1); /* RFC 9110 4.2.3: an empty path is "/" */
    plan->path_len = plan->len;
    if (!drop && query_len > 0) {
        rewrite_plan_add(plan, "?", 1);
        rewrite_plan_add(plan, query, query_len);
    }
    return 1;
}

/* Copies the plan into out (plan->len bytes) and checks the path it makes.
 * Returns plan->len or -EINVAL. */
static int rewrite_plan_write(const struct rewrite_plan *plan, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < plan->n; i++) {
        memcpy(out + o, plan->piece[i].p, plan->piece[i].len);
        o += plan->piece[i].len;
    }
    if (rewrite_check_path(out, plan->path_len) != NULL)
        return -EINVAL;
    return (int)o;
}

int rewrite_apply(const struct rewrite_cfg *rc, const char *path, size_t path_len,
                  const char *query, size_t query_len, char *out, size_t cap)
{
    struct rewrite_plan plan;

    int r = rewrite_plan_make(rc, path, path_len, query, query_len, &plan);
    if (r <= 0)
        return r;
    if (plan.len > cap || plan.len > INT32_MAX)
        return -ENOSPC;
    return rewrite_plan_write(&plan, out);
}

static const char *rewrite_strerror(int err)
{
    switch (err) {
    case -EINVAL: return "the result is not a valid origin-form target";
    case -E2BIG: return "the regex hit its match limit";
    case -ENOMEM: return "out of memory for the regex match data";
    case -ENOSPC: return "the result does not fit the request's arena";
    default: return "the regex match failed";
    }
}

/* Rewrites t->req's target. Returns NEXT (rewritten or left alone) or
 * ERROR (logged; weir answers 500). The new target lives in the
 * transaction's arena. */
static enum step_result rewrite_on_request(struct txn *t, const void *step_cfg, void *state)
{
    const struct rewrite_cfg *rc = step_cfg;
    struct http_msg *req = t->req;
    struct rewrite_plan plan;

    int r = rewrite_plan_make(rc, req->path.p, req->path.len, req->query.p, req->query.len, &plan);
    if (r == 0)
        return STEP_NEXT;
    char *out = r < 0 ? NULL : txn_alloc(t, plan.len);
    if (r > 0 && out == NULL)
        r = -ENOSPC;
    if (r > 0)
        r = rewrite_plan_write(&plan, out);
    if (r < 0) {
        log_warn("route %s: rewrite of path '%.*s' failed: %s; answering 500", txn_route_name(t),
                 (int)(req->path.len > 200 ? 200 : req->path.len), req->path.p,
                 rewrite_strerror(r));
        return STEP_ERROR;
    }
    http_edit_target(req, (struct http_slice){ out, (size_t)r });
    return STEP_NEXT;
}

/* ---- configuration ---- */

/* Sets the rewrite's kind, refusing a second one. */
static int rewrite_set_kind(struct cfg_ctx *ctx, yaml_node_t *v, struct rewrite_cfg *rc,
                            enum rewrite_kind kind)
{
    if (rc->kind != REWRITE_NONE)
        return cfg_fail(ctx, v, "'rewrite' takes one of strip_prefix, replace_prefix or regex, "
                                "not both '%s' (at %d:%d) and '%s'",
                        rewrite_kind_names[rc->kind], rc->kind_mark.line, rc->kind_mark.col,
                        rewrite_kind_names[kind]);
    rc->kind = kind;
    rc->kind_mark = cfg_mark_of(v);
    return 0;
}

/* Parses a prefix ("/api", "/api/") into a copy without its trailing '/'
 * ("/" becomes ""). */
static int rewrite_parse_prefix(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                                char **out, size_t *out_len)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int err = cfg_text(ctx, v, what, &s);
    if (err < 0)
        return err;
    const char *why = rewrite_check_path(s, strlen(s));
    if (why != NULL)
        return cfg_fail(ctx, v, "%s must be a path starting with '/' (no '?', '#', spaces or "
                                "control characters), got %s: %s", what, cfg_quote(s, q), why);
    if ((err = cfg_strdup(ctx, s, out)) < 0)
        return err;
    size_t n = strlen(*out);
    if (n > 0 && (*out)[n - 1] == '/')
        (*out)[--n] = '\0';
    *out_len = n;
    return 0;
}

static int rewrite_parse_strip_prefix(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;

    int err = rewrite_set_kind(ctx, v, rc, REWRITE_STRIP_PREFIX);
    if (err == 0)
        err = rewrite_parse_prefix(ctx, v, "'strip_prefix'", &rc->from, &rc->from_len);
    if (err == 0 && rc->from_len == 0)
        return cfg_fail(ctx, v, "'strip_prefix: /' strips nothing: name at least one path "
                                "segment, like /api");
    if (err == 0)
        err = cfg_strdup(ctx, "", &rc->to);
    return err;
}

static int rewrite_parse_from(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    return rewrite_parse_prefix(ctx, v, "'from'", &rc->from, &rc->from_len);
}

static int rewrite_parse_to(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    return rewrite_parse_prefix(ctx, v, "'to'", &rc->to, &rc->to_len);
}

static const struct cfg_key rewrite_replace_keys[] = {
    CFG_FUNC("from", rewrite_parse_from, true),
    CFG_FUNC("to", rewrite_parse_to, true),
};
CFG_MAP_DEFINE(rewrite_replace_map, "'replace_prefix'", rewrite_replace_keys);

static int rewrite_parse_replace_prefix(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;

    int err = rewrite_set_kind(ctx, v, rc, REWRITE_REPLACE_PREFIX);
    if (err == 0)
        err = cfg_parse_map(ctx, v, &rewrite_replace_map, rc, NULL);
    return err;
}

static int rewrite_parse_pattern(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    const char *s;

    int err = cfg_text(ctx, v, "'pattern'", &s);
    return err < 0 ? err : cfg_strdup(ctx, s, &rc->pattern);
}

/* An empty replacement is allowed: it deletes the match. */
static int rewrite_parse_replace(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    const char *s;

    int err = cfg_scalar(ctx, v, "'replace'", &s);
    return err < 0 ? err : cfg_strdup(ctx, s, &rc->replace);
}

static const struct cfg_key rewrite_regex_keys[] = {
    CFG_FUNC("pattern", rewrite_parse_pattern, true),
    CFG_FUNC("replace", rewrite_parse_replace, true),
    CFG_FIELD("match_limit", CFG_KIND_UINT, struct rewrite_cfg, match_limit, 1,
              REWRITE_MATCH_LIMIT_MAX),
};
CFG_MAP_DEFINE(rewrite_regex_map, "'regex'", rewrite_regex_keys);

/* Compiles rc->pattern, JIT-compiles it when the platform allows (the
 * interpreter is used otherwise) and makes its match context with limits. */
static int rewrite_compile(struct cfg_ctx *ctx, yaml_node_t *v, struct rewrite_cfg *rc)
{
    char q[CFG_QUOTE_SIZE];
    PCRE2_UCHAR msg[256];
    int code;
    PCRE2_SIZE off;

    rc->code = pcre2_compile((PCRE2_SPTR)rc->pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off,
                             NULL);
    if (rc->code == NULL) {
        if (code == PCRE2_ERROR_NOMEMORY)
            return cfg_nomem(ctx);
        pcre2_get_error_message(code, msg, sizeof(msg));
        return cfg_fail(ctx, v, "bad regex %s: %s at offset %zu", cfg_quote(rc->pattern, q),
                        (const char *)msg, (size_t)off);
    }
    (void)pcre2_jit_compile(rc->code, PCRE2_JIT_COMPLETE);
    rc->mctx = pcre2_match_context_create(NULL);
    if (rc->mctx == NULL)
        return cfg_nomem(ctx);
    pcre2_set_match_limit(rc->mctx, rc->match_limit);
    pcre2_set_depth_limit(rc->mctx, rc->match_limit);
    pcre2_set_heap_limit(rc->mctx, REWRITE_HEAP_LIMIT_KIB);
    return 0;
}

/* Reads a group reference after '$' at s[*i]: N, {N} or {name}. Returns the
 * group number (advancing *i past it) or -1 with *why set. */
static int rewrite_parse_group(const struct rewrite_cfg *rc, const char *s, size_t *i,
                               const char **why)
{
    if (isdigit((unsigned char)s[*i]))
        return s[(*i)++] - '0';
    const char *end = s[*i] == '{' ? strchr(s + *i, '}') : NULL;
    if (end == NULL) {
        *why = "'$' must be followed by a digit, {N}, {name} or '$' (write $$ for a '$')";
        return -1;
    }
    char name[64];
    size_t n = (size_t)(end - (s + *i + 1));
    if (n == 0 || n >= sizeof(name)) {
        *why = "empty or too long group name in ${...}";
        return -1;
    }
    memcpy(name, s + *i + 1, n);
    name[n] = '\0';
    *i += n + 2;
    if (strspn(name, "0123456789") == n)
        return n > 6 ? REWRITE_MAX_GROUP + 1 : atoi(name);
    int g = pcre2_substring_number_from_name(rc->code, (PCRE2_SPTR)name);
    if (g < 0)
        *why = "the pattern has no group of that name";
    return g < 0 ? -1 : g;
}

/* Adds literal byte c to the replacement's parts. Returns 0 or -1 (too many parts). */
static int rewrite_add_literal(struct rewrite_cfg *rc, size_t *lit_len, char c)
{
    struct rewrite_part *last = rc->n_parts > 0 ? &rc->parts[rc->n_parts - 1] : NULL;
    if (last == NULL || last->group >= 0) {
        if (rc->n_parts == REWRITE_MAX_PARTS)
            return -1;
        last = &rc->parts[rc->n_parts++];
        *last = (struct rewrite_part){ .group = -1, .off = *lit_len, .len = 0 };
    }
    rc->lit[(*lit_len)++] = c;
    last->len++;
    return 0;
}

/* Splits rc->replace into literal parts and group references, checking
 * every group exists and every literal byte may be in a path. */
static int rewrite_parse_template(struct cfg_ctx *ctx, yaml_node_t *v, struct rewrite_cfg *rc)
{
    char q[CFG_QUOTE_SIZE];
    const char *s = rc->replace, *why = NULL;
    size_t i = 0, lit_len = 0, at = 0;
    uint32_t groups = 0;

    pcre2_pattern_info(rc->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if ((rc->lit = cfg_calloc_fn(1, strlen(s) + 1)) == NULL)
        return cfg_nomem(ctx);
    while (s[i] != '\0' && why == NULL) {
        at = i;
        if (s[i] != '$' || s[i + 1] == '$') {
            char c = s[i];
            i += c == '$' ? 2 : 1;
            if (c == '?' || !rewrite_target_byte((unsigned char)c))
                why = "a replacement may not hold '?', '#', spaces or control characters";
            else if (rewrite_add_literal(rc, &lit_len, c) < 0)
                why = "too many pieces";
            continue;
        }
        i++;
        int g = rewrite_parse_group(rc, s, &i, &why);
        if (g < 0)
            break;
        if ((uint32_t)g > groups || g > REWRITE_MAX_GROUP) {
            return cfg_fail(ctx, v, "bad replacement %s: group %d at offset %zu does not exist "
                                    "(the pattern has %u)", cfg_quote(s, q), g, at, groups);
        }
        if (rc->n_parts == REWRITE_MAX_PARTS)
            why = "too many pieces";
        else
            rc->parts[rc->n_parts++] = (struct rewrite_part){ .group = g };
    }
    if (why != NULL)
        return cfg_fail(ctx, v, "bad replacement %s: %s (at offset %zu)", cfg_quote(s, q), why,
                        at);
    return 0;
}

/* An anchored pattern's match starts the path, so the replacement starts
 * the result: when it starts with a literal, that must be '/'. */
static int rewrite_check_anchored(struct cfg_ctx *ctx, yaml_node_t *v,
                                  const struct rewrite_cfg *rc)
{
    char q[CFG_QUOTE_SIZE];
    uint32_t opts = 0;

    pcre2_pattern_info(rc->code, PCRE2_INFO_ALLOPTIONS, &opts);
    if (!(opts & PCRE2_ANCHORED) || rc->n_parts == 0 || rc->parts[0].group >= 0 ||
        rc->lit[rc->parts[0].off] == '/')
        return 0;
    return cfg_fail(ctx, v, "bad replacement %s: the pattern is anchored at the start of the "
                            "path, so the replacement must start with '/'",
                    cfg_quote(rc->replace, q));
}

static int rewrite_parse_regex(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    yaml_node_t *values[CFG_ARRAY_SIZE(rewrite_regex_keys)];

    int err = rewrite_set_kind(ctx, v, rc, REWRITE_REGEX);
    if (err == 0)
        err = cfg_parse_map(ctx, v, &rewrite_regex_map, rc, values);
    if (err == 0)
        err = rewrite_compile(ctx, values[cfg_key_index(&rewrite_regex_map, "pattern")], rc);
    yaml_node_t *replace = err == 0 ? values[cfg_key_index(&rewrite_regex_map, "replace")] : NULL;
    if (err == 0)
        err = rewrite_parse_template(ctx, replace, rc);
    if (err == 0)
        err = rewrite_check_anchored(ctx, replace, rc);
    return err;
}

static int rewrite_parse_query(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct rewrite_cfg *rc = obj;
    int q = 0;

    int err = cfg_parse_enum(ctx, v, "query", rewrite_query_names, REWRITE_QUERY_COUNT, &q);
    if (err == 0)
        rc->query = (enum rewrite_query)q;
    return err;
}

static const struct cfg_key rewrite_keys[] = {
    CFG_FUNC("strip_prefix", rewrite_parse_strip_prefix, false),
    CFG_FUNC("replace_prefix", rewrite_parse_replace_prefix, false),
    CFG_FUNC("regex", rewrite_parse_regex, false),
    CFG_FUNC("query", rewrite_parse_query, false),
};
CFG_MAP_DEFINE(rewrite_map, "'rewrite'", rewrite_keys);

static void rewrite_free(void *step_cfg)
{
    struct rewrite_cfg *rc = step_cfg;

    if (rc == NULL)
        return;
    pcre2_match_context_free(rc->mctx);
    pcre2_code_free(rc->code);
    free(rc->from);
    free(rc->to);
    free(rc->pattern);
    free(rc->replace);
    free(rc->lit);
    free(rc);
}

/* Parses a route's `rewrite` map into a new struct rewrite_cfg (*out, owned
 * by the route, released with rewrite_free). Returns 0 or a negative errno
 * with ctx's error set; nothing is left allocated on failure. */
static int rewrite_parse(struct cfg_ctx *ctx, yaml_node_t *value, void **out)
{
    struct rewrite_cfg *rc = cfg_calloc_fn(1, sizeof(*rc));
    if (rc == NULL)
        return cfg_nomem(ctx);
    rc->match_limit = REWRITE_MATCH_LIMIT_DEFAULT;
    int err = cfg_parse_map(ctx, value, &rewrite_map, rc, NULL);
    if (err == 0 && rc->kind == REWRITE_NONE && rc->query == REWRITE_QUERY_KEEP)
        err = cfg_fail(ctx, value, "'rewrite' needs one of strip_prefix, replace_prefix, regex "
                                   "(or query: drop)");
    if (err < 0) {
        rewrite_free(rc);
        return err;
    }
    *out = rc;
    return 0;
}

const struct step_type step_rewrite = {
    .key = "rewrite",
    .phase = STEP_PHASE_REWRITE,
    .parse = rewrite_parse,
    .free_cfg = rewrite_free,
    .state_size = 0,
    .on_request = rewrite_on_request,
};

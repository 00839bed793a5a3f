/* config: YAML text -> a caller's configuration, along a table of sections
 * (see config.h); core knows none of them.
 *
 * libyaml's parser turns the text into events, from which cfg_compose()
 * builds a libyaml document (a node tree in which every node keeps its start
 * mark) with bounds on depth and size. The loader then walks that tree along
 * the schema, never generically, so the depth of the walk is fixed by the
 * schema: the root map along the caller's section rows, each section along
 * its own key tables (server/config.c draws the whole tree).
 *
 *     text --> composer --> document --> root map: row.parse for each key present
 *                                    --> row.resolve for each row, in table order
 *                          (failure) --> row.free for each row
 *
 * Every map type is a table of keys (struct cfg_map). A key either names a
 * plain field of the object being filled (duration, size or number, with its
 * offset and bounds) or a handler for anything richer (strings, enums,
 * nested maps, lists). cfg_parse_map() checks the node is a map, rejects
 * unknown and repeated keys, dispatches each value and finally checks that
 * the required keys were present.
 *
 * Errors: the first problem found stops the load with one message
 * "FILE:LINE:COLUMN: ..." (1-based; libyaml marks are 0-based) written into
 * the caller's buffer, and -EINVAL. Allocation failures give -ENOMEM and
 * "FILE: out of memory". A section under construction is always in a state
 * its free can release: arrays are zeroed and their counts set as soon as
 * they are allocated, so every error path is just the rows' free.
 *
 * Aliases (&a / *a) are resolved by libyaml to shared nodes and may even form
 * cycles; since the walk follows the schema, a cycle ends in a type error.
 * To bound the work an alias can multiply, at most CFG_MAX_VALUES nodes are
 * visited. Nothing here resolves names, opens sockets or logs. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "core/cidr.h"
#include "core/config_parse.h"
#include "core/units.h"


void *(*cfg_calloc_fn)(size_t n, size_t size) = calloc;

/* ---- load context and error reporting ---- */


/* Writes "NAME:LINE:COL: message" (line/col 1-based) and returns -EINVAL. */
__attribute__((format(printf, 4, 0))) static int cfg_vfail(struct cfg_ctx *ctx, int line, int col,
                                                           const char *fmt, va_list ap)
{
    if (ctx->err_size == 0)
        return -EINVAL;
    int n = snprintf(ctx->err, ctx->err_size, "%s:%d:%d: ", ctx->name, line, col);
    if (n >= 0 && (size_t)n < ctx->err_size)
        vsnprintf(ctx->err + n, ctx->err_size - (size_t)n, fmt, ap);
    return -EINVAL;
}

/* Reports an error at `node`'s position. Returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int cfg_fail(struct cfg_ctx *ctx,
                                                          const yaml_node_t *node,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cfg_vfail(ctx, (int)node->start_mark.line + 1, (int)node->start_mark.column + 1, fmt,
                       ap);
    va_end(ap);
    return rc;
}

/* Reports an error at a stored mark. Returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int cfg_fail_mark(struct cfg_ctx *ctx,
                                                               struct cfg_mark mark,
                                                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cfg_vfail(ctx, mark.line, mark.col, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reports an error about the whole input ("NAME: message"). Returns `rc`. */
__attribute__((format(printf, 3, 4))) int cfg_fail_file(struct cfg_ctx *ctx, int rc,
                                                               const char *fmt, ...)
{
    if (ctx->err_size == 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(ctx->err, ctx->err_size, "%s: ", ctx->name);
    if (n >= 0 && (size_t)n < ctx->err_size)
        vsnprintf(ctx->err + n, ctx->err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

int cfg_nomem(struct cfg_ctx *ctx)
{
    return cfg_fail_file(ctx, -ENOMEM, "out of memory");
}

struct cfg_mark cfg_mark_of(const yaml_node_t *node)
{
    struct cfg_mark m = { (int)node->start_mark.line + 1, (int)node->start_mark.column + 1 };
    return m;
}

/* Copies user text into `buf` (CFG_QUOTE_SIZE bytes) as 'text', shortened
 * with "..." and with control bytes escaped, so a message stays one short
 * printable line. Returns buf. */
const char *cfg_quote(const char *s, char *buf)
{
    size_t o = 0, limit = CFG_QUOTE_SIZE - 8; /* room for "...'" and NUL */

    buf[o++] = '\'';
    for (; *s != '\0' && o < limit; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, CFG_QUOTE_SIZE - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (*s != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

/* Describes what `node` is, for "expected X, got Y". Returns buf. */
const char *cfg_describe(const yaml_node_t *node, char *buf)
{
    if (node->type == YAML_MAPPING_NODE)
        return "a map";
    if (node->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (node->data.scalar.length == 0 && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return "nothing";
    return cfg_quote((const char *)node->data.scalar.value, buf);
}

/* Fails unless `node` has type `type`; `what` names it ("'limits'", "route"). */
int cfg_expect(struct cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type,
                      const char *what)
{
    char q[CFG_QUOTE_SIZE];

    if (node->type == type)
        return 0;
    const char *want = type == YAML_MAPPING_NODE    ? "a map"
                       : type == YAML_SEQUENCE_NODE ? "a list"
                                                    : "a single value";
    return cfg_fail(ctx, node, "expected %s for %s, got %s", want, what, cfg_describe(node, q));
}

int cfg_too_many(struct cfg_ctx *ctx, const yaml_node_t *node)
{
    return cfg_fail(ctx, node, "too many values (more than %u, counting aliases each time they "
                               "are used)", CFG_MAX_VALUES);
}

/* Counts one visited node against CFG_MAX_VALUES. Returns 0 or -EINVAL. */
int cfg_visit(struct cfg_ctx *ctx, const yaml_node_t *node)
{
    if (ctx->values_left == 0)
        return cfg_too_many(ctx, node);
    ctx->values_left--;
    return 0;
}

/* Counts `bytes` of text or arrays against CFG_MAX_BYTES, so that an alias
 * of a long value used many times cannot exhaust memory. */
int cfg_charge(struct cfg_ctx *ctx, const yaml_node_t *node, size_t bytes)
{
    if (bytes > ctx->bytes_left)
        return cfg_fail(ctx, node, "the configuration is too large (more than %u MB of values, "
                                   "counting aliases each time they are used)",
                        CFG_MAX_BYTES >> 20);
    ctx->bytes_left -= bytes;
    return 0;
}

yaml_node_t *cfg_node(struct cfg_ctx *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

/* Points *out at the text of the scalar `node` (owned by the document).
 * Returns 0, or -EINVAL for another node type or an embedded NUL. */
int cfg_scalar(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                      const char **out)
{
    int rc = cfg_expect(ctx, node, YAML_SCALAR_NODE, what);
    if (rc < 0)
        return rc;
    const char *s = (const char *)node->data.scalar.value;
    if (strlen(s) != node->data.scalar.length)
        return cfg_fail(ctx, node, "%s contains a NUL character", what);
    if ((rc = cfg_charge(ctx, node, node->data.scalar.length + 1)) < 0)
        return rc;
    *out = s;
    return 0;
}

/* Like cfg_scalar() but also rejects an empty value. */
int cfg_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                    const char **out)
{
    int rc = cfg_scalar(ctx, node, what, out);
    if (rc == 0 && **out == '\0')
        return cfg_fail(ctx, node, "%s must not be empty", what);
    return rc;
}

/* A plain ~, null or empty value: YAML's null. */
bool cfg_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < CFG_ARRAY_SIZE(nulls); i++)
        if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

/* Stores a copy of `s` in *out (owned by the object being filled). 0 or -ENOMEM. */
int cfg_strdup(struct cfg_ctx *ctx, const char *s, char **out)
{
    size_t size = strlen(s) + 1;
    char *copy = cfg_calloc_fn(1, size);
    if (copy == NULL)
        return cfg_nomem(ctx);
    memcpy(copy, s, size);
    *out = copy;
    return 0;
}

/* RFC 9110 section 5.6.2: token characters (methods, header and cookie names). */
bool cfg_is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    return true;
}

/* Joins names[0..n) into buf as "a, b, c". Returns buf. */
const char *cfg_join(const char *const *names, size_t n, char *buf, size_t size)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && o < size; i++) {
        int w = snprintf(buf + o, size - o, "%s%s", i > 0 ? ", " : "", names[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    return buf;
}

/* Sets *out to the index of `node`'s text in names[0..n), or fails with
 * "unknown WHAT 'x' (expected one of: ...)". */
int cfg_parse_enum(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                          const char *const *names, size_t n, int *out)
{
    char q[CFG_QUOTE_SIZE], list[512], key[64];
    const char *s;

    snprintf(key, sizeof(key), "'%s'", what);
    int rc = cfg_scalar(ctx, node, key, &s);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return cfg_fail(ctx, node, "unknown %s %s (expected one of: %s)", what, cfg_quote(s, q),
                    cfg_join(names, n, list, sizeof(list)));
}

/* ---- table-driven maps ---- */






/* Writes a bound as the user would write it ("24h", "1m", "256"). */
static void cfg_format_bound(enum cfg_kind kind, uint64_t v, char *buf, size_t size)
{
    static const struct { uint64_t unit; const char *suffix; } durations[] = {
        { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" } };
    static const struct { uint64_t unit; const char *suffix; } sizes[] = {
        { 1ULL << 30, "g" }, { 1ULL << 20, "m" }, { 1ULL << 10, "k" }, { 1, "" } };

    uint64_t unit = 1;
    const char *suffix = "";

    for (size_t i = 0; v != 0 && kind == CFG_KIND_DURATION && i < CFG_ARRAY_SIZE(durations); i++)
        if (v % durations[i].unit == 0) {
            unit = durations[i].unit;
            suffix = durations[i].suffix;
            break;
        }
    for (size_t i = 0; v != 0 && kind == CFG_KIND_SIZE && i < CFG_ARRAY_SIZE(sizes); i++)
        if (v % sizes[i].unit == 0) {
            unit = sizes[i].unit;
            suffix = sizes[i].suffix;
            break;
        }
    snprintf(buf, size, "%llu%s", (unsigned long long)(v / unit), suffix);
}

/* Converts the text of a plain field. Returns 0, -EINVAL (syntax, message
 * written) or -ERANGE (overflow, nothing written). */
static int cfg_convert(struct cfg_ctx *ctx, const struct cfg_key *key, const yaml_node_t *node,
                       const char *s, uint64_t *v)
{
    char q[CFG_QUOTE_SIZE];
    int rc;

    switch (key->kind) {
    case CFG_KIND_DURATION:
        rc = units_parse_duration_ms(s, v);
        if (rc == -EINVAL)
            return cfg_fail(ctx, node, "expected a duration like 250ms, 30s, 5m, got %s",
                            cfg_quote(s, q));
        return rc;
    case CFG_KIND_SIZE:
        rc = units_parse_size(s, v);
        if (rc == -EINVAL)
            return cfg_fail(ctx, node, "expected a size like 512, 16k, 8m, 1g, got %s",
                            cfg_quote(s, q));
        return rc;
    default:
        rc = units_parse_uint(s, UINT64_MAX, v);
        if (rc == -EINVAL)
            return cfg_fail(ctx, node, "expected a number for '%s', got %s", key->name,
                            cfg_quote(s, q));
        return rc;
    }
}

/* Parses a duration / size / number into the field `key` describes. */
static int cfg_parse_field(struct cfg_ctx *ctx, const struct cfg_key *key, yaml_node_t *node,
                           void *obj)
{
    char what[64], q[CFG_QUOTE_SIZE], lo[32], hi[32];
    const char *s;
    uint64_t v = 0;

    snprintf(what, sizeof(what), "'%s'", key->name);
    int rc = cfg_scalar(ctx, node, what, &s);
    if (rc < 0)
        return rc;
    rc = cfg_convert(ctx, key, node, s, &v);
    if (rc == -EINVAL)
        return rc;
    if (rc == -ERANGE && key->max == UINT64_MAX)
        return cfg_fail(ctx, node, "'%s' is too large, got %s", key->name, cfg_quote(s, q));
    if (rc == -ERANGE || v < key->min || v > key->max) {
        cfg_format_bound(key->kind, key->min, lo, sizeof(lo));
        cfg_format_bound(key->kind, key->max, hi, sizeof(hi));
        return cfg_fail(ctx, node, "'%s' must be %s..%s, got %s", key->name, lo, hi,
                        cfg_quote(s, q));
    }
    char *field = (char *)obj + key->offset;
    if (key->width == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(field, &v32, sizeof(v32));
    } else {
        memcpy(field, &v, sizeof(v));
    }
    return 0;
}

static int cfg_unknown_key(struct cfg_ctx *ctx, const yaml_node_t *node, const struct cfg_map *map,
                           const char *name)
{
    const char *names[CFG_MAP_MAX_KEYS];
    char q[CFG_QUOTE_SIZE], list[512];

    for (size_t i = 0; i < map->n_keys; i++)
        names[i] = map->keys[i].name;
    cfg_join(names, map->n_keys, list, sizeof(list));
    if (map->other_names != NULL) {
        size_t used = strlen(list);
        if (used + 2 < sizeof(list)) {
            memcpy(list + used, ", ", 2);
            map->other_names(list + used + 2, sizeof(list) - used - 2);
        }
    }
    return cfg_fail(ctx, node, "unknown key %s in %s (expected one of: %s)", cfg_quote(name, q),
                    map->what, list);
}

/* Parses `node`, the value of `key`, into obj: through the key's handler or
 * into the plain field it describes. Returns 0 or a negative errno. */
int cfg_parse_key(struct cfg_ctx *ctx, const struct cfg_key *key, yaml_node_t *node, void *obj)
{
    return key->kind == CFG_KIND_FUNC ? key->parse(ctx, node, obj)
                                      : cfg_parse_field(ctx, key, node, obj);
}

/* Finds the key `k` (a scalar) in `map`. Returns its index or a negative errno. */
static int cfg_lookup_key(struct cfg_ctx *ctx, const yaml_node_t *k, const struct cfg_map *map,
                          yaml_node_t *const *seen)
{
    char q[CFG_QUOTE_SIZE], d[CFG_QUOTE_SIZE];

    if (k->type != YAML_SCALAR_NODE)
        return cfg_fail(ctx, k, "expected a key name in %s, got %s", map->what,
                        cfg_describe(k, d));
    const char *name = (const char *)k->data.scalar.value;
    if (strlen(name) != k->data.scalar.length)
        return cfg_fail(ctx, k, "a key in %s contains a NUL character", map->what);
    for (size_t i = 0; i < map->n_keys; i++) {
        if (strcmp(name, map->keys[i].name) != 0)
            continue;
        if (seen[i] != NULL) {
            struct cfg_mark first = cfg_mark_of(seen[i]);
            return cfg_fail(ctx, k, "duplicate key %s in %s (first at %d:%d)", cfg_quote(name, q),
                            map->what, first.line, first.col);
        }
        return (int)i;
    }
    return -ENOENT;
}

/* Parses the map `node` into `obj` along `map`'s keys. If `values` is not
 * NULL it receives, per key index, the value node or NULL when absent (for
 * checks that span several keys). Returns 0 or a negative errno. */
int cfg_parse_map(struct cfg_ctx *ctx, yaml_node_t *node, const struct cfg_map *map,
                         void *obj, yaml_node_t **values)
{
    yaml_node_t *seen[CFG_MAP_MAX_KEYS] = { 0 }, *vals[CFG_MAP_MAX_KEYS] = { 0 };

    int rc = cfg_expect(ctx, node, YAML_MAPPING_NODE, map->what);
    if (rc < 0)
        return rc;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = cfg_node(ctx, p->key), *v = cfg_node(ctx, p->value);
        if ((rc = cfg_visit(ctx, v)) < 0)
            return rc;
        int i = cfg_lookup_key(ctx, k, map, seen);
        if (i == -ENOENT && map->other != NULL) {
            const char *name = (const char *)k->data.scalar.value;
            rc = map->other(ctx, name, k, v, obj);
            if (rc == 0)
                continue;
            if (rc != -ENOENT)
                return rc;
        }
        if (i == -ENOENT)
            return cfg_unknown_key(ctx, k, map, (const char *)k->data.scalar.value);
        if (i < 0)
            return i;
        seen[i] = k;
        vals[i] = v;
        if ((rc = cfg_parse_key(ctx, &map->keys[i], v, obj)) < 0)
            return rc;
    }
    for (size_t i = 0; i < map->n_keys; i++)
        if (map->keys[i].required && seen[i] == NULL)
            return cfg_fail(ctx, node, "%s is missing required key '%s'", map->what,
                            map->keys[i].name);
    if (values != NULL)
        memcpy(values, vals, map->n_keys * sizeof(*values));
    return 0;
}

/* Returns the index of key `name` in `map` (it must be there). */
size_t cfg_key_index(const struct cfg_map *map, const char *name)
{
    size_t i = 0;
    while (i < map->n_keys - 1 && strcmp(map->keys[i].name, name) != 0)
        i++;
    return i;
}

/* ---- lists ---- */



/* Checks `node` is a non-empty list and allocates a zeroed array for its
 * items. On success *out (owned by the caller's object) and *n are set. */
int cfg_list_new(struct cfg_ctx *ctx, yaml_node_t *node, const struct cfg_list *list,
                        void **out, size_t *n)
{
    int rc = cfg_expect(ctx, node, YAML_SEQUENCE_NODE, list->what);
    if (rc < 0)
        return rc;
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (count == 0)
        return cfg_fail(ctx, node, "%s must not be empty (expected at least one %s)", list->what,
                        list->item);
    if (count > list->max)
        return cfg_fail(ctx, node, "%s has %zu items, at most %zu are allowed", list->what, count,
                        list->max);
    if (count > ctx->values_left)
        return cfg_too_many(ctx, node);
    if ((rc = cfg_charge(ctx, node, count * list->item_size)) < 0)
        return rc;
    void *items = cfg_calloc_fn(count, list->item_size);
    if (items == NULL)
        return cfg_nomem(ctx);
    *out = items;
    *n = count;
    return 0;
}

/* Calls fn on each item of the list `node`. */
int cfg_list_each(struct cfg_ctx *ctx, yaml_node_t *node, cfg_item_fn fn, void *obj)
{
    size_t i = 0;

    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++, i++) {
        yaml_node_t *item = cfg_node(ctx, *it);
        int rc = cfg_visit(ctx, item);
        if (rc == 0)
            rc = fn(ctx, item, obj, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- shared value parsers ---- */

/* A section entry's name: 1..63 of [A-Za-z0-9_.-], used in logs and metrics. */
int cfg_parse_name(struct cfg_ctx *ctx, const yaml_node_t *node, char **out,
                          struct cfg_mark *mark)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_text(ctx, node, "'name'", &s);
    if (rc < 0)
        return rc;
    size_t len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    if (len != strlen(s) || len > CFG_MAX_NAME)
        return cfg_fail(ctx, node, "bad name %s: use 1 to %d letters, digits, '_', '-' or '.'",
                        cfg_quote(s, q), CFG_MAX_NAME);
    *mark = cfg_mark_of(node);
    return cfg_strdup(ctx, s, out);
}

/* Parses an address into *addr / *len and a copy of its text into *text. */
int cfg_dup_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, char **out)
{
    const char *s;
    int rc = cfg_text(ctx, node, what, &s);
    if (rc < 0)
        return rc;
    free(*out);
    *out = NULL;
    return cfg_strdup(ctx, s, out);
}

int cfg_parse_network(struct cfg_ctx *ctx, const yaml_node_t *node, struct cidr *out)
{
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, node, "a network (CIDR)", &s);
    if (rc < 0)
        return rc;
    rc = cidr_parse(s, out);
    if (rc == -EDOM)
        return cfg_fail(ctx, node, "network %s has bits set after its prefix length (write the "
                                   "network's first address, or the address alone for one host)",
                        cfg_quote(s, q));
    if (rc < 0)
        return cfg_fail(ctx, node, "bad network %s (expected an IPv4 or IPv6 address, optionally "
                                   "with /PREFIX: 10.0.0.0/8, 2001:db8::/32, 127.0.0.1)",
                        cfg_quote(s, q));
    return 0;
}

int cfg_parse_address(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what,
                             char **text, struct sockaddr_storage *addr, socklen_t *len)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_scalar(ctx, node, what, &s);
    if (rc < 0)
        return rc;
    rc = units_parse_addr(s, addr, len);
    if (rc == -ERANGE)
        return cfg_fail(ctx, node, "bad address %s: port must be 1..65535", cfg_quote(s, q));
    if (rc < 0)
        return cfg_fail(ctx, node, "bad address %s: expected IPv4:port, [IPv6]:port, *:port or "
                                   "localhost:port (names are not resolved)", cfg_quote(s, q));
    return cfg_strdup(ctx, s, text);
}

/* The path to open: `path` itself when absolute or when the configuration
 * has no directory, else joined to the configuration file's directory. */
static void cfg_file_path(const struct cfg_ctx *ctx, const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(ctx->name, '/');
    if (path[0] == '/' || slash == NULL) {
        snprintf(buf, size, "%s", path);
        return;
    }
    snprintf(buf, size, "%.*s/%s", (int)(slash - ctx->name), ctx->name, path);
}

int cfg_read_near(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path, size_t max_bytes,
                  char **out, size_t *len)
{
    char full[4096], q[CFG_QUOTE_SIZE];
    cfg_file_path(ctx, path, full, sizeof(full));
    int fd;
    do
        fd = open(full, O_RDONLY | O_CLOEXEC);
    while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return cfg_fail(ctx, node, "cannot open %s: %s", cfg_quote(full, q), strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : cfg_nomem(ctx);
    while (rc == 0) {
        if (n + 1 == cap) {
            char *nb = cap > max_bytes ? NULL : realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = cfg_fail(ctx, node, "%s is too large (at most %u bytes) or memory is short",
                              cfg_quote(full, q), (unsigned)max_bytes);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            rc = cfg_fail(ctx, node, "cannot read %s: %s", cfg_quote(full, q), strerror(errno));
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Two addresses parsed by cfg_parse_address() are the same. */
bool cfg_same_addr(const struct sockaddr_storage *a, socklen_t alen,
                   const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0; /* units_parse_addr zeroes the rest */
}

/* true / yes / on or false / no / off into *out (1 or 0). */
int cfg_parse_bool(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, int *out)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    char q[CFG_QUOTE_SIZE];
    return cfg_fail(ctx, v, "%s: expected true or false, got %s", what, cfg_quote(s, q));
}

/* "20%" or "20": an integer percentage lo..100. */
int cfg_parse_percent(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, uint32_t lo,
                             uint32_t *out)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    char buf[16];
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '%')
        n--;
    uint64_t val;
    char q[CFG_QUOTE_SIZE];
    if (n == 0 || n >= sizeof(buf))
        return cfg_fail(ctx, v, "%s: expected a percentage like 20%%, got %s", what, cfg_quote(s, q));
    memcpy(buf, s, n);
    buf[n] = 0;
    if (units_parse_uint(buf, 100, &val) != 0 || val < lo)
        return cfg_fail(ctx, v, "%s: expected a percentage %u%%..100%%, got %s", what, lo,
                        cfg_quote(s, q));
    *out = (uint32_t)val;
    return 0;
}

/* ---- YAML documents ---- */

/* Turns a libyaml parser error into a message. Returns -EINVAL or -ENOMEM. */
static int cfg_yaml_error(struct cfg_ctx *ctx, const yaml_parser_t *p, const char *text,
                          size_t len)
{
    const char *problem = p->problem != NULL ? p->problem : "malformed YAML";

    if (p->error == YAML_MEMORY_ERROR)
        return cfg_nomem(ctx);
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        size_t off = p->problem_offset < len ? p->problem_offset : len;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++, col++)
            if (text[i] == '\n') {
                line++;
                col = 0;
            }
        if (p->problem_value < 0) /* no single byte to blame, e.g. a cut-off sequence */
            return cfg_fail_mark(ctx, (struct cfg_mark){ line, col }, "bad input: %s", problem);
        return cfg_fail_mark(ctx, (struct cfg_mark){ line, col }, "bad input: %s (byte 0x%02x)",
                             problem, (unsigned)p->problem_value & 0xffu);
    }
    struct cfg_mark at = { (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1 };
    if (p->context == NULL)
        return cfg_fail_mark(ctx, at, "YAML syntax error: %s", problem);
    return cfg_fail_mark(ctx, at, "YAML syntax error: %s (%s at %d:%d)", problem, p->context,
                         (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
}

/* ---- composing the document ----
 *
 * libyaml's own loader (yaml_parser_load) puts no bound on nesting, and its
 * scanner slows down quadratically with depth (200k nested '[' take
 * minutes). So the document is composed here from parser events, which stops
 * reading as soon as CFG_MAX_DEPTH or CFG_MAX_NODES is passed:
 *
 *   parser events --> open collections (node, map key waiting for a value)
 *                 --> yaml_document_t nodes, each with its start mark
 *   anchors: open-addressing table, name -> node index
 */

#define CFG_MAX_DEPTH 32
#define CFG_MAX_NODES (1u << 20)
#define CFG_MAX_ANCHORS 256
#define CFG_ANCHOR_SLOTS 512 /* a power of two, twice CFG_MAX_ANCHORS */

struct cfg_anchor {
    char *name;             /* NULL: a free slot */
    int node;
};

struct cfg_composer {
    yaml_document_t *doc;
    bool started;           /* the document was initialized: delete it on failure */
    int depth;              /* collections open */
    int open[CFG_MAX_DEPTH];/* their node indexes */
    int key[CFG_MAX_DEPTH]; /* for a map, the key waiting for its value, or 0 */
    size_t n_nodes;
    size_t n_anchors;
    struct cfg_anchor anchors[CFG_ANCHOR_SLOTS];
};

static struct cfg_mark cfg_mark_at(yaml_mark_t m)
{
    struct cfg_mark at = { (int)m.line + 1, (int)m.column + 1 };
    return at;
}

/* Returns the slot holding anchor `name`, or the free slot where it goes. */
static size_t cfg_anchor_slot(const struct cfg_composer *c, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    size_t i = (size_t)h & (CFG_ANCHOR_SLOTS - 1);
    while (c->anchors[i].name != NULL && strcmp(c->anchors[i].name, name) != 0)
        i = (i + 1) & (CFG_ANCHOR_SLOTS - 1);
    return i;
}

/* Records that anchor `name` (may be NULL: none) now names node `index`; a
 * later anchor of the same name replaces an earlier one (YAML 1.2: an alias
 * refers to the most recent node with that anchor). */
static int cfg_anchor_set(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev,
                          const yaml_char_t *name, int index)
{
    if (name == NULL)
        return 0;
    size_t i = cfg_anchor_slot(c, (const char *)name);
    if (c->anchors[i].name == NULL) {
        if (c->n_anchors == CFG_MAX_ANCHORS)
            return cfg_fail_mark(ctx, cfg_mark_at(ev->start_mark), "too many anchors (more "
                                 "than %d)", CFG_MAX_ANCHORS);
        size_t size = strlen((const char *)name) + 1;
        char *copy = cfg_calloc_fn(1, size);
        if (copy == NULL)
            return cfg_nomem(ctx);
        memcpy(copy, name, size);
        c->anchors[i].name = copy;
        c->n_anchors++;
    }
    c->anchors[i].node = index;
    return 0;
}

/* Makes node `index` the next item or key or value of the collection open
 * on top; with none open it is the root (the document's first node). */
static int cfg_compose_attach(struct cfg_ctx *ctx, struct cfg_composer *c, int index)
{
    if (c->depth == 0)
        return 0;
    int top = c->open[c->depth - 1], *key = &c->key[c->depth - 1], ok;
    if (yaml_document_get_node(c->doc, top)->type == YAML_SEQUENCE_NODE) {
        ok = yaml_document_append_sequence_item(c->doc, top, index);
    } else if (*key == 0) {
        *key = index;
        return 0;
    } else {
        ok = yaml_document_append_mapping_pair(c->doc, top, *key, index);
        *key = 0;
    }
    return ok ? 0 : cfg_nomem(ctx);
}

/* Counts a node or alias against CFG_MAX_NODES. */
static int cfg_compose_count(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev)
{
    if (++c->n_nodes > CFG_MAX_NODES)
        return cfg_fail_mark(ctx, cfg_mark_at(ev->start_mark), "too many values (more than %u)",
                             CFG_MAX_NODES);
    return 0;
}

/* Finishes a node just added (index 0: adding failed, which for text the
 * parser has already checked can only be a lack of memory). */
static int cfg_compose_node(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev,
                            int index, const yaml_char_t *anchor)
{
    if (index == 0)
        return cfg_nomem(ctx);
    yaml_node_t *node = yaml_document_get_node(c->doc, index);
    node->start_mark = ev->start_mark;
    node->end_mark = ev->end_mark;
    int rc = cfg_anchor_set(ctx, c, ev, anchor, index);
    return rc < 0 ? rc : cfg_compose_attach(ctx, c, index);
}

static int cfg_compose_open(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev)
{
    const yaml_char_t *anchor;
    int index;

    if (c->depth == CFG_MAX_DEPTH)
        return cfg_fail_mark(ctx, cfg_mark_at(ev->start_mark), "nested too deeply (more than "
                             "%d levels)", CFG_MAX_DEPTH);
    int rc = cfg_compose_count(ctx, c, ev);
    if (rc < 0)
        return rc;
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        index = yaml_document_add_sequence(c->doc, ev->data.sequence_start.tag,
                                           ev->data.sequence_start.style);
        anchor = ev->data.sequence_start.anchor;
    } else {
        index = yaml_document_add_mapping(c->doc, ev->data.mapping_start.tag,
                                          ev->data.mapping_start.style);
        anchor = ev->data.mapping_start.anchor;
    }
    if ((rc = cfg_compose_node(ctx, c, ev, index, anchor)) < 0)
        return rc;
    c->open[c->depth] = index;
    c->key[c->depth] = 0;
    c->depth++;
    return 0;
}

static int cfg_compose_alias(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;

    int rc = cfg_compose_count(ctx, c, ev);
    if (rc < 0)
        return rc;
    size_t i = cfg_anchor_slot(c, name);
    if (c->anchors[i].name == NULL)
        return cfg_fail_mark(ctx, cfg_mark_at(ev->start_mark), "undefined alias *%.64s (no "
                             "anchor &%.64s before it)", name, name);
    return cfg_compose_attach(ctx, c, c->anchors[i].node);
}

static int cfg_compose_event(struct cfg_ctx *ctx, struct cfg_composer *c, const yaml_event_t *ev)
{
    int rc;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (c->started)
            return cfg_fail_mark(ctx, cfg_mark_at(ev->start_mark), "expected one YAML "
                                 "document, found a second one");
        if (!yaml_document_initialize(c->doc, NULL, NULL, NULL, 1, 1))
            return cfg_nomem(ctx);
        c->started = true;
        return 0;
    case YAML_SCALAR_EVENT:
        if ((rc = cfg_compose_count(ctx, c, ev)) < 0)
            return rc;
        rc = yaml_document_add_scalar(c->doc, ev->data.scalar.tag, ev->data.scalar.value,
                                      (int)ev->data.scalar.length, ev->data.scalar.style);
        return cfg_compose_node(ctx, c, ev, rc, ev->data.scalar.anchor);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return cfg_compose_open(ctx, c, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        c->depth--;
        return 0;
    case YAML_ALIAS_EVENT:
        return cfg_compose_alias(ctx, c, ev);
    default:
        return 0;
    }
}

/* Reads the whole stream, which must hold exactly one document, into *doc.
 * On success the caller owns *doc (yaml_document_delete()). */
static int cfg_compose(struct cfg_ctx *ctx, yaml_parser_t *p, yaml_document_t *doc,
                       const char *text, size_t len, const char *empty)
{
    struct cfg_composer c;
    bool end = false;
    int rc = 0;

    memset(&c, 0, sizeof(c));
    c.doc = doc;
    while (rc == 0 && !end) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            rc = cfg_yaml_error(ctx, p, text, len);
            break;
        }
        end = ev.type == YAML_STREAM_END_EVENT;
        rc = cfg_compose_event(ctx, &c, &ev);
        yaml_event_delete(&ev);
    }
    for (size_t i = 0; i < CFG_ANCHOR_SLOTS; i++)
        free(c.anchors[i].name);
    if (rc == 0 && !c.started)
        rc = cfg_fail_mark(ctx, (struct cfg_mark){ 1, 1 }, "the configuration is empty "
                           "(expected %s)", empty);
    if (rc < 0 && c.started)
        yaml_document_delete(doc);
    return rc;
}

/* ---- sections: the entry point ---- */

int cfg_load_begin(struct cfg_ctx *ctx, const char *name, size_t len, char *err, size_t err_size)
{
    *ctx = (struct cfg_ctx){
        .name = name != NULL ? name : "<config>",
        .err = err,
        .err_size = err != NULL ? err_size : 0,
        .values_left = CFG_MAX_VALUES,
        .bytes_left = CFG_MAX_BYTES,
    };
    if (ctx->err_size > 0)
        err[0] = '\0';
    if (len > CFG_MAX_FILE_BYTES)
        return cfg_fail_file(ctx, -EFBIG, "too large (%zu bytes, at most %u)", len,
                             CFG_MAX_FILE_BYTES);
    return 0;
}

/* Walks the root map along the schema's rows, then resolves every row in
 * table order; the document is still there, so a resolve may point at nodes. */
static int cfg_walk_sections(struct cfg_ctx *ctx, const struct cfg_schema *schema, void *root)
{
    struct cfg_key keys[CFG_MAP_MAX_KEYS];
    const struct cfg_section *rows = schema->sections;

    if (schema->n_sections > CFG_MAP_MAX_KEYS)
        return cfg_fail_file(ctx, -EINVAL, "more than %d sections", CFG_MAP_MAX_KEYS);
    for (size_t i = 0; i < schema->n_sections; i++)
        keys[i] = (struct cfg_key)CFG_FUNC(rows[i].key, rows[i].parse, rows[i].required);
    struct cfg_map map = { schema->what, keys, schema->n_sections, NULL, NULL };
    int rc = cfg_parse_map(ctx, yaml_document_get_root_node(ctx->doc), &map, root, NULL);
    for (size_t i = 0; rc == 0 && i < schema->n_sections; i++)
        if (rows[i].resolve != NULL)
            rc = rows[i].resolve(ctx, root);
    return rc;
}

int cfg_load_sections(struct cfg_ctx *ctx, const char *text, size_t len,
                      const struct cfg_schema *schema, void *root)
{
    yaml_parser_t parser;
    yaml_document_t doc;

    if (!yaml_parser_initialize(&parser))
        return cfg_nomem(ctx);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = cfg_compose(ctx, &parser, &doc, text, len, schema->empty);
    yaml_parser_delete(&parser);
    if (rc < 0)
        return rc;
    ctx->doc = &doc;
    ctx->root = root;
    rc = cfg_walk_sections(ctx, schema, root);
    yaml_document_delete(&doc);
    ctx->doc = NULL;
    ctx->root = NULL;
    if (rc < 0)
        cfg_free_sections(schema, root);
    return rc;
}

void cfg_free_sections(const struct cfg_schema *schema, void *root)
{
    for (size_t i = schema->n_sections; i-- > 0;)
        if (schema->sections[i].free != NULL)
            schema->sections[i].free(root);
}

/* ---- reading a file ---- */

/* Reads all of `fd` into a new buffer (*out, caller frees). Returns 0,
 * -EFBIG past CFG_MAX_FILE_BYTES, -ENOMEM or -errno of read(2). */
static int cfg_read_all(int fd, char **out, size_t *out_len)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;

    for (;;) {
        if (len == cap) {
            size_t ncap = cap == 0 ? 16384 : cap * 2;
            if (cap > CFG_MAX_FILE_BYTES) {
                free(buf);
                return -EFBIG;
            }
            char *nbuf = cfg_calloc_fn(1, ncap);
            if (nbuf == NULL) {
                free(buf);
                return -ENOMEM;
            }
            if (len > 0)
                memcpy(nbuf, buf, len);
            free(buf);
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int cfg_read_file(const char *path, char **text, size_t *len, char *err, size_t err_size)
{
    struct cfg_ctx ctx = { .name = path, .err = err, .err_size = err != NULL ? err_size : 0 };
    int fd;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1) {
        int e = errno;
        return cfg_fail_file(&ctx, -e, "cannot open: %s", strerror(e));
    }
    int rc = cfg_read_all(fd, text, len);
    close(fd);
    if (rc == -EFBIG)
        return cfg_fail_file(&ctx, rc, "too large (at most %u bytes)", CFG_MAX_FILE_BYTES);
    if (rc == -ENOMEM)
        return cfg_nomem(&ctx);
    if (rc < 0)
        return cfg_fail_file(&ctx, rc, "cannot read: %s", strerror(-rc));
    return 0;
}

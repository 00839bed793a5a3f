/* config_parse: the loader's toolkit, for the files that parse one section
 * of the configuration each (server/config.c, upstream/cluster_cfg.c,
 * http/route_cfg.c and the route steps, resp/redis_cfg.c,
 * store/store_cfg.c): the load context, error reporting with
 * FILE:LINE:COLUMN, table-driven maps and lists, shared value parsers. It
 * names no section: limits of a section live in its own file. */
#ifndef WEIR_CORE_CONFIG_PARSE_H
#define WEIR_CORE_CONFIG_PARSE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config.h"

#define CFG_MAX_FILE_BYTES (16u << 20)
#define CFG_MAX_VALUES (1u << 20)        /* nodes visited, aliases expanded */
#define CFG_MAX_BYTES (64u << 20)        /* text read and arrays made, aliases expanded */
#define CFG_MAX_NAME 63
#define CFG_MAX_DURATION_MS (24ULL * 3600 * 1000)
#define CFG_MAX_CONNECTIONS 1000000       /* any limits.connections */
#define CFG_MAP_MAX_KEYS 24
#define CFG_QUOTE_SIZE 96
#define CFG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct cfg_ctx {
    const char *name;       /* the file name used in messages */
    yaml_document_t *doc;
    void *root;             /* the object being filled (cfg_load_sections) */
    char *err;
    size_t err_size;
    size_t values_left;     /* node visits left (CFG_MAX_VALUES) */
    size_t bytes_left;      /* bytes of values and arrays left (CFG_MAX_BYTES) */
};

enum cfg_kind {
    CFG_KIND_FUNC,      /* a handler parses the value */
    CFG_KIND_DURATION,  /* "250ms", "30s" -> milliseconds */
    CFG_KIND_SIZE,      /* "16k" -> bytes */
    CFG_KIND_UINT,      /* "100" */
};


struct cfg_key {
    const char *name;
    enum cfg_kind kind;
    bool required;
    cfg_parse_fn parse;     /* CFG_KIND_FUNC */
    size_t offset, width;   /* the uint32_t / uint64_t field, other kinds */
    uint64_t min, max;
};

/* Keys a map does not list itself but a module adds (route steps and
 * targets): parses `key` with `value` into obj. Returns 0 when parsed,
 * -ENOENT (no message) when `key` is not one of them, or another negative
 * errno with ctx's error set. */
typedef int (*cfg_other_fn)(struct cfg_ctx *ctx, const char *key, yaml_node_t *key_node,
                            yaml_node_t *value, void *obj);
/* Writes the names of the keys cfg_other_fn accepts, for messages. */
typedef void (*cfg_other_names_fn)(char *buf, size_t size);

struct cfg_map {
    const char *what;       /* "listener", "cluster timeouts": for messages */
    const struct cfg_key *keys;
    size_t n_keys;
    cfg_other_fn other;     /* optional */
    cfg_other_names_fn other_names;
};

#define CFG_FUNC(n, fn, req) \
    { .name = (n), .kind = CFG_KIND_FUNC, .required = (req), .parse = (fn) }
#define CFG_FIELD(n, k, type, field, lo, hi) \
    { .name = (n), .kind = (k), .offset = offsetof(type, field), \
      .width = sizeof(((type *)0)->field), .min = (lo), .max = (hi) }
#define CFG_MAP_DEFINE(var, what_, keys_) \
    _Static_assert(CFG_ARRAY_SIZE(keys_) <= CFG_MAP_MAX_KEYS, #keys_ " has too many keys"); \
    static const struct cfg_map var = { (what_), (keys_), CFG_ARRAY_SIZE(keys_), NULL, NULL }
#define CFG_MAP_DEFINE_OTHER(var, what_, keys_, other_, names_) \
    _Static_assert(CFG_ARRAY_SIZE(keys_) <= CFG_MAP_MAX_KEYS, #keys_ " has too many keys"); \
    static const struct cfg_map var = { (what_), (keys_), CFG_ARRAY_SIZE(keys_), (other_), (names_) }

/* A kind of list: its name for messages, its item and how many it may hold. */
struct cfg_list {
    const char *what;       /* "'listeners'" */
    const char *item;       /* "listener" */
    size_t item_size;
    size_t max;
};

/* Parses item `i` of a list; `obj` is the object owning the list. */
typedef int (*cfg_item_fn)(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i);

__attribute__((format(printf, 3, 4))) int cfg_fail(struct cfg_ctx *ctx, const yaml_node_t *node, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int cfg_fail_mark(struct cfg_ctx *ctx, struct cfg_mark mark, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int cfg_fail_file(struct cfg_ctx *ctx, int rc, const char *fmt, ...);
int cfg_nomem(struct cfg_ctx *ctx);
struct cfg_mark cfg_mark_of(const yaml_node_t *node);
const char *cfg_quote(const char *s, char *buf);
const char *cfg_describe(const yaml_node_t *node, char *buf);
int cfg_expect(struct cfg_ctx *ctx, const yaml_node_t *node, yaml_node_type_t type, const char *what);
int cfg_too_many(struct cfg_ctx *ctx, const yaml_node_t *node);
int cfg_visit(struct cfg_ctx *ctx, const yaml_node_t *node);
int cfg_charge(struct cfg_ctx *ctx, const yaml_node_t *node, size_t bytes);
yaml_node_t *cfg_node(struct cfg_ctx *ctx, int index);
int cfg_scalar(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, const char **out);
int cfg_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, const char **out);
bool cfg_is_null(const yaml_node_t *node);
int cfg_strdup(struct cfg_ctx *ctx, const char *s, char **out);
/* A text value copied into *out, replacing (and freeing) what was there. */
int cfg_dup_text(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, char **out);
bool cfg_is_token(const char *s);
const char *cfg_join(const char *const *names, size_t n, char *buf, size_t size);
int cfg_parse_enum(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, const char *const *names, size_t n, int *out);
/* Index of key `name` in `map` (it must be there). */
size_t cfg_key_index(const struct cfg_map *map, const char *name);
int cfg_parse_key(struct cfg_ctx *ctx, const struct cfg_key *key, yaml_node_t *node, void *obj);
int cfg_parse_map(struct cfg_ctx *ctx, yaml_node_t *node, const struct cfg_map *map, void *obj, yaml_node_t **values);
int cfg_list_new(struct cfg_ctx *ctx, yaml_node_t *node, const struct cfg_list *list, void **out, size_t *n);
int cfg_list_each(struct cfg_ctx *ctx, yaml_node_t *node, cfg_item_fn fn, void *obj);
int cfg_parse_name(struct cfg_ctx *ctx, const yaml_node_t *node, char **out, struct cfg_mark *mark);
int cfg_parse_address(struct cfg_ctx *ctx, const yaml_node_t *node, const char *what, char **text, struct sockaddr_storage *addr, socklen_t *len);
struct cidr;
/* A network ("10.0.0.0/8", "2001:db8::/32") or one address, as core/cidr.c
 * reads it; a network with bits set after its prefix is refused. */
int cfg_parse_network(struct cfg_ctx *ctx, const yaml_node_t *node, struct cidr *out);

/* Reads the file a configuration value names (relative to the directory
 * of the configuration file) into a new NUL-terminated buffer (*out, the
 * caller frees; *len excludes the NUL), at most max_bytes. Returns 0 or
 * negative with ctx's error set at `node`. */
int cfg_read_near(struct cfg_ctx *ctx, const yaml_node_t *node, const char *path, size_t max_bytes,
                  char **out, size_t *len);
bool cfg_same_addr(const struct sockaddr_storage *a, socklen_t alen,
                   const struct sockaddr_storage *b, socklen_t blen);
int cfg_parse_bool(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, int *out);
int cfg_parse_percent(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, uint32_t lo,
                      uint32_t *out);

#endif

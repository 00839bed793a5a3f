/* config: the YAML composer and the entry point of the configuration loader.
 *
 * core knows no section. The caller (server/config.c) hands it the text and
 * a schema: a table of top-level sections, each a row { key, required,
 * parse, resolve, free }. The composer builds a libyaml document in which
 * every node keeps its line and column, with bounds on depth, size and
 * aliases; the root map is walked along the rows (unknown and repeated keys
 * rejected, required ones checked), then every row's resolve runs in table
 * order. The first problem stops the load with one message
 * "FILE:LINE:COLUMN: what was expected" (or "FILE: message"). The toolkit
 * the section parsers use is core/config_parse.h. */
#ifndef WEIR_CORE_CONFIG_H
#define WEIR_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Where a value is written in the file (1-based line and column), for messages. */
struct cfg_mark {
    int line, col;
};

struct cfg_ctx; /* one load: core/config_parse.h */

/* Parses `value` into the object being filled. Returns 0 or negative errno
 * with the message in ctx. */
typedef int (*cfg_parse_fn)(struct cfg_ctx *ctx, yaml_node_t *value, void *obj);

/* A top-level key. parse gets the key's value and the root object; resolve
 * (optional) runs once every present key is parsed, for cross-references and
 * computed defaults; free (optional) releases what parse and resolve put in
 * the root, leaves nothing behind, and copes with a half-built section. */
struct cfg_section {
    const char *key;
    bool required;
    cfg_parse_fn parse;
    int (*resolve)(struct cfg_ctx *ctx, void *root);
    void (*free)(void *root);
};

/* The shape of a configuration: the root map's rows, in the order messages
 * list them (at most CFG_MAP_MAX_KEYS). */
struct cfg_schema {
    const char *what;       /* the root map in messages: "configuration" */
    const char *empty;      /* what an empty file should hold, for its message */
    const struct cfg_section *sections;
    size_t n_sections;
};

/* Starts a load of `len` bytes of text named `name` (NULL: "<config>") into
 * *ctx, clearing `err`. Returns 0, or -EFBIG with the message in `err` when
 * the text is too large. */
int cfg_load_begin(struct cfg_ctx *ctx, const char *name, size_t len, char *err,
                   size_t err_size);

/* Composes `text` and fills `root` along `schema`: every row's parse, then
 * every row's resolve. Returns 0, or a negative errno with the message in
 * ctx's buffer, after freeing through the rows (root itself is the
 * caller's). */
int cfg_load_sections(struct cfg_ctx *ctx, const char *text, size_t len,
                      const struct cfg_schema *schema, void *root);

/* Calls every row's free on `root`, last row first. */
void cfg_free_sections(const struct cfg_schema *schema, void *root);

/* Reads the file `path` into a new buffer: *text (the caller frees it) and
 * *len. Returns 0, or a negative errno with "PATH: message" in `err`. */
int cfg_read_file(const char *path, char **text, size_t *len, char *err, size_t err_size);

/* Every allocation the loader makes goes through this pointer (calloc by
 * default) so tests can inject failures; nothing else should change it. */
extern void *(*cfg_calloc_fn)(size_t n, size_t size);

#endif

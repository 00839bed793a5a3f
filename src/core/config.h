/* config: the YAML composer and the entry point of the configuration loader.
 *
 * core knows no section: the caller (server/config.c) hands it the text and a
 * table of top-level sections, each a row { key, required, parse, resolve,
 * free }. The composer builds a libyaml document in which every node keeps
 * its line and column, with bounds on depth, size and aliases; the root map
 * is walked along the rows (unknown and repeated keys rejected, required ones
 * checked), then every row's resolve runs in table order. The first problem
 * stops the load with one message "FILE:LINE:COLUMN: what was expected".
 * The toolkit section parsers use is in core/config_parse.h. */
#ifndef WEIR_CORE_CONFIG_H
#define WEIR_CORE_CONFIG_H

#include <stddef.h>

/* Where a value is written in the file (1-based line and column), for messages. */
struct cfg_mark {
    int line, col;
};

struct cfg_ctx; /* core/config_parse.h */

/* Every allocation the loader makes goes through this pointer (calloc by
 * default) so tests can inject failures; nothing else should change it. */
extern void *(*cfg_calloc_fn)(size_t n, size_t size);

#endif

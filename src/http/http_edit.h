/* http_edit: changes to a parsed message head made by route steps, before
 * weir re-serialises it (http_write). Nothing is copied here: a removed
 * field is only marked (hop[i] = HTTP_EDIT_REMOVED, which the writer skips),
 * an added one is a new pair of slices at the end of headers[]. The caller
 * keeps the bytes the new slices point to alive (configuration strings or
 * txn_alloc memory). */
#ifndef WEIR_HTTP_EDIT_H
#define WEIR_HTTP_EDIT_H

#include "http/http_parser.h"

#define HTTP_EDIT_REMOVED 2 /* a hop[] mark: removed by a step */

/* Marks every field named `name` (case-insensitive) removed. Returns how
 * many were. Framing and hop-by-hop fields are weir's and are left alone. */
int http_edit_remove(struct http_msg *msg, const char *name, size_t name_len);
/* Appends a field. Returns 0 or -ENOSPC when headers[] is full. */
int http_edit_add(struct http_msg *msg, struct http_slice name, struct http_slice value);
/* Replaces every field named `name` by one with `value`. Returns 0 or -ENOSPC. */
int http_edit_set(struct http_msg *msg, struct http_slice name, struct http_slice value);
/* Points the request at a new target (origin-form: path, optionally "?query");
 * updates target, path and query. */
void http_edit_target(struct http_msg *msg, struct http_slice target);
/* Whether a field name is one weir frames or handles itself (Content-Length,
 * Transfer-Encoding, Connection, Host, ...): steps may not set or remove those. */
int http_edit_reserved(const char *name, size_t len);

#endif

/* rewrite: the `rewrite` route step (path rewriting before the target).
 *
 *   rewrite: { strip_prefix: /api }                          /api/x -> /x
 *   rewrite: { replace_prefix: { from: /old/, to: /new/ } }  /old/x -> /new/x
 *   rewrite: { regex: { pattern: "^/users/([0-9]+)$", replace: "/u/$1" } }
 *   rewrite: { ..., query: drop }                           the query is removed
 *
 * See docs/configuration.md ("rewrite") for the exact rules. */
#ifndef WEIR_HTTP_STEPS_REWRITE_H
#define WEIR_HTTP_STEPS_REWRITE_H

#include <stddef.h>

#include "http/step.h"

/* The step row (key "rewrite", phase STEP_PHASE_REWRITE). */
extern const struct step_type step_rewrite;

/* One route's parsed `rewrite` block (rewrite.c). Made by step_rewrite.parse,
 * released by step_rewrite.free_cfg; read-only afterwards, shared by every
 * worker. */
struct rewrite_cfg;

/* Bounds of a regex match, per request (docs/configuration.md). */
#define REWRITE_MATCH_LIMIT_DEFAULT 100000u
#define REWRITE_MATCH_LIMIT_MAX 10000000u
#define REWRITE_HEAP_LIMIT_KIB 1024u     /* backtracking memory of one match */
#define REWRITE_MAX_GROUP 99             /* highest group a replacement may name */
#define REWRITE_MAX_PARTS 32             /* literal pieces and group references */

/* Rewrites one request target. `path` (path_len bytes) is the request's path
 * (before '?'), `query` (query_len bytes, may be empty) what follows '?'.
 * Writes the new origin-form target ("/path" or "/path?query") into
 * out[0..cap), without a NUL.
 * Returns its length (> 0); 0 when the target stays as it is (nothing
 * matched and the query is kept, or the path is not origin-form) and out is
 * untouched; -ENOSPC when cap is too small; -EINVAL when the result would not
 * be a valid origin-form target (not starting with '/', or a byte a target
 * may not hold); -E2BIG when the regex hit its match limits; -ENOMEM when
 * this thread's match data could not be made (once per thread); -EIO for
 * another PCRE2 failure. */
int rewrite_apply(const struct rewrite_cfg *rc, const char *path, size_t path_len,
                  const char *query, size_t query_len, char *out, size_t cap);

/* Frees the calling thread's regex match data now rather than at thread
 * exit (the main thread, which never exits before the leak check). */
void rewrite_thread_cleanup(void);

#endif

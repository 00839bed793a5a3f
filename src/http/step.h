/* step: the route step seam. A step is one row of a table (steps.c): the
 * route key that names it, the phase it runs in, how its configuration is
 * parsed, resolved and freed, and the hooks a transaction calls.
 *
 *   request head parsed, route chosen
 *     -> on_request of each step, in phase order (fixed by weir):
 *          ACCESS -> AUTH -> RATE_LIMIT -> REWRITE -> HEADERS -> CACHE
 *        NEXT:    the next step
 *        RESPOND: the step answered (txn_respond was called): no target
 *        WAIT:    an answer is coming; the step calls txn_resume() later
 *        ERROR:   weir answers 500 (the step logged why)
 *     -> the route's target (target.h): cluster | respond | redirect
 *     -> on_response_head of each step (any answer: backend or weir's);
 *        one step may hand the body to a transform there
 *        (txn_set_body_xform: the compress step), which decides the
 *        framing once: chunked, or until close for HTTP/1.0
 *     -> on_body: response body bytes as sent (transformed), before framing
 *     -> on_response_end: the body arrived whole
 *     -> on_error: weir is about to answer an error of its own (5xx)
 *   on_response_head and on_error may answer instead with txn_respond().
 *
 * A step keeps per-request state in `state` (state_size bytes, zeroed
 * before on_request, inside the transaction: no allocation per request).
 * `cancel` is called when a transaction ends while the step still holds
 * something (a WAIT in progress, a client that went away): it must release
 * it without calling back. */
#ifndef WEIR_HTTP_STEP_H
#define WEIR_HTTP_STEP_H

#include <stddef.h>
#include <yaml.h>

#include "core/config.h"

struct cfg; /* server/config.h */
#include "http/http_parser.h"

struct txn;
struct cfg_ctx;

#define STEP_PHASE_LIST(X) \
    X(STEP_PHASE_ACCESS, "access") \
    X(STEP_PHASE_AUTH, "auth") \
    X(STEP_PHASE_RATE_LIMIT, "rate_limit") \
    X(STEP_PHASE_REWRITE, "rewrite") \
    X(STEP_PHASE_HEADERS, "headers") \
    X(STEP_PHASE_CACHE, "cache")
#define STEP_ENUM_MEMBER(e, s) e,
enum step_phase { STEP_PHASE_LIST(STEP_ENUM_MEMBER) STEP_PHASE_COUNT };
#undef STEP_ENUM_MEMBER

enum step_result {
    STEP_NEXT,    /* go on with the next step, then the target */
    STEP_RESPOND, /* the step answered with txn_respond() */
    STEP_WAIT,    /* txn_resume() will be called later, exactly once */
    STEP_ERROR,   /* weir answers 500 */
};

/* Most bytes of per-request state all steps of one route may use. */
#define STEP_STATE_MAX 256

struct step_type {
    const char *key;               /* the route key: "headers", "forward_auth" */
    enum step_phase phase;
    /* Parses the route key's value into a new configuration object (*out,
     * owned by the route, freed with free_cfg). Returns 0 or negative
     * (ctx holds "FILE:LINE:COLUMN: reason"). */
    int (*parse)(struct cfg_ctx *ctx, yaml_node_t *value, void **out);
    /* Cross-references once the whole file is parsed (clusters by name).
     * Optional. Returns 0 or negative with ctx's error set. */
    int (*resolve)(struct cfg_ctx *ctx, const struct cfg *cfg, void *step_cfg);
    void (*free_cfg)(void *step_cfg);
    size_t state_size;
    enum step_result (*on_request)(struct txn *t, const void *step_cfg, void *state);
    /* Sees (and may edit, see http_edit.h) the response head before it is
     * written to the client. Optional. */
    void (*on_response_head)(struct txn *t, const void *step_cfg, void *state,
                             struct http_msg *resp);
    /* Sees response body bytes as the client gets them (after a body
     * transform), before chunk framing. Optional. */
    void (*on_body)(struct txn *t, const void *step_cfg, void *state, const char *p, size_t n);
    /* The backend's response body ended as framed (not called when it was
     * cut short: cancel follows then). Optional. */
    void (*on_response_end)(struct txn *t, const void *step_cfg, void *state);
    /* weir is about to answer `status` (>= 500: the backend failed, timed
     * out or answered 5xx after retries). The step may answer instead with
     * txn_respond (a cache's stale object). Optional. */
    void (*on_error)(struct txn *t, const void *step_cfg, void *state, int status);
    /* Releases what the step holds when the transaction ends early. Optional. */
    void (*cancel)(struct txn *t, const void *step_cfg, void *state);
};

/* One step of a route, as configured. */
struct route_step {
    const struct step_type *type;
    void *cfg;
    size_t state_off;              /* into the transaction's step state */
    struct cfg_mark mark;          /* where its key is written */
};

/* The step named `key`, or NULL. */
const struct step_type *step_find(const char *key);
/* The row of `type` in the table: orders the steps of one phase. */
size_t step_rank(const struct step_type *type);
/* Writes the step keys, comma separated, for messages. */
void step_names(char *buf, size_t size);

#endif

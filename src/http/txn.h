/* txn: one HTTP request and its answer, as the session (proxy.c) drives it.
 *
 *   session (one client connection: socket, buffers, timers, the pump)
 *     `-- txn (one request): head, route, step states, forward attempts
 *           head:  parsed in place from the session's read buffer; kept
 *                  (copied into a txn_head from the worker's free list)
 *                  only when a step waits, so the common path copies
 *                  nothing
 *           arena: bytes the steps make (rewritten paths, header values),
 *                  one buffer from the worker's pool, released at the end
 *
 * Steps see the transaction through the functions below only. An HTTP/2
 * stream will own a txn the same way a session does now. */
#ifndef WEIR_HTTP_TXN_H
#define WEIR_HTTP_TXN_H

#include <ev.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/route_cfg.h"
#include "http/http_parser.h"
#include "http/step.h"

struct client;
struct wctx;
struct cluster;
struct endpoint;
struct snapshot;

/* A request head kept while a step waits: the parsed message and its bytes. */
struct txn_head {
    struct http_msg msg;
    struct buf bytes;
    struct txn_head *next;         /* the worker's free list */
};

/* A response body transform (txn_set_body_xform): the compress step's
 * encoders. The session feeds it the body as the backend (or weir) framed
 * it, decoded, and frames what it makes for the client. */
enum txn_xform_mode {
    TXN_XFORM_DATA,  /* more input follows: output whenever convenient */
    TXN_XFORM_FLUSH, /* no more input for now: push out all of it */
    TXN_XFORM_END,   /* the body ended: push out everything and close */
};

#define TXN_XFORM_MIN_ROOM 64 /* out_room is never smaller (zlib needs > 6 for a flush) */

struct txn_xform {
    /* Reads in[0..in_n) (*used: how many it took), writes at most out_room
     * (>= TXN_XFORM_MIN_ROOM) bytes to out (*made). Returns 1 when a FLUSH or END is not complete
     * yet (call again with the same mode once there is room), 0 when it
     * is (or after DATA), negative errno on failure. */
    int (*run)(void *ctx, enum txn_xform_mode mode, const char *in, size_t in_n, size_t *used,
               char *out, size_t out_room, size_t *made);
    /* Frees ctx, when the transaction ends. */
    void (*free)(void *ctx);
};

/* A body weir answers with that is not all there yet (txn_respond_source):
 * the cache's coalesced waiters read the leader's object as it fills. The
 * session pulls it as the client takes it. */
#define TXN_SOURCE_END (-1000)
struct txn_body_source {
    /* Copies up to cap (> 0) bytes of what follows into dst. Returns the
     * bytes copied; 0 when none are there yet (the source then calls
     * txn_source_ready once there may be, from its own watcher on the
     * transaction's loop); TXN_SOURCE_END once the body is whole; or a
     * negative errno when it never will be (the session closes the
     * connection, as for a backend's body cut short). */
    long (*read)(void *ctx, char *dst, size_t cap);
};

/* An answer a step or a target made (txn_respond, txn_respond_source). */
struct txn_answer {
    int status;
    const struct http_header *headers; /* valid until the transaction ends */
    size_t n_headers;
    const char *body;              /* idem */
    size_t body_len;
    const struct txn_body_source *source; /* instead of body, or NULL */
    void *source_ctx;
    int64_t source_len;            /* the source's body length, -1 when unknown */
};

struct txn {
    struct client *session;
    struct txn *free_next;         /* the worker's free list */
    struct wctx *wc;
    const struct cfg_route *route;
    struct http_msg *req;          /* the request head: the worker's parse scratch until kept */
    struct txn_head *kept;
    struct buf arena;
    uint32_t step_next;            /* index into route->steps of the step to run next */
    uint8_t waiting;               /* a step returned WAIT and has not resumed */
    uint8_t started;               /* on_request ran for steps [0, step_next) */
    struct txn_answer answer;      /* set by txn_respond */
    char request_id[36];
    struct http_slice identity;    /* who the auth step says the client is (arena), or empty */
    const struct txn_xform *xform; /* the response body's transform, or NULL */
    void *xform_ctx;
    uint16_t status;               /* answered to the client, 0 until then */
    ev_tstamp t_start;             /* the head's first byte was parsed */
    /* the request's body as the client frames it */
    uint8_t body_kind;             /* enum http_body_kind */
    uint64_t body_left, body_total;
    char *body;                    /* the whole body, for a target that needs it (malloc) */
    size_t body_len, body_cap;
    unsigned idempotent : 1, head_request : 1;
    /* forward attempts (a cluster target, proxy.c) */
    unsigned probe : 1;            /* this attempt is a half-open breaker probe */
    unsigned retry_counted : 1;    /* holds a slot in cl->active_retries */
    unsigned counted : 1;          /* counted in cl->active_requests */
    unsigned queued : 1;           /* waiting for an endpoint under its limit */
    uint8_t attempts;
    struct cluster *cl;
    struct endpoint *ep;
    struct endpoint *failed_ep;
    uint64_t key_hash;
    ev_tstamp queued_at, t_up_start, t_up_first;
    _Alignas(16) unsigned char state[STEP_STATE_MAX];
};

/* ---- for steps ---- */

/* Returns n bytes of memory valid until the transaction ends, or NULL when
 * its arena (one worker buffer) is full. */
char *txn_alloc(struct txn *t, size_t n);
/* Copies p[0..n) into the arena; a slice with p NULL when full. */
struct http_slice txn_copy(struct txn *t, const char *p, size_t n);
/* Records the answer; the step then returns STEP_RESPOND (or, after a
 * WAIT, calls txn_resume(t, STEP_RESPOND)). Headers and body must stay
 * valid until the transaction ends (configuration or txn_alloc memory). */
void txn_respond(struct txn *t, int status, const struct http_header *headers, size_t n_headers,
                 const char *body, size_t body_len);
/* Records an answer whose body comes from src (ctx valid until the
 * transaction ends) as it becomes available: body_len bytes, or -1 when
 * unknown (sent chunked to an HTTP/1.1 client, until close to HTTP/1.0). */
void txn_respond_source(struct txn *t, int status, const struct http_header *headers,
                        size_t n_headers, int64_t body_len, const struct txn_body_source *src,
                        void *ctx);
/* The answer's body source may have more now: the session pulls again. Call
 * from a watcher's callback, never from inside the source's read. */
void txn_source_ready(struct txn *t);
/* Continues a transaction whose step returned WAIT. r is what the step's
 * on_request would have returned. Must not be called from inside that
 * step's on_request. */
void txn_resume(struct txn *t, enum step_result r);

/* The request body a needs_body target gets (NULL when empty); valid until
 * the transaction ends. */
const char *txn_request_body(const struct txn *t, size_t *len);

/* The authenticated identity (an API key's name, a JWT subject): set by an
 * auth step, read by later steps (rate_limit key `identity`). The bytes are
 * copied into the arena. Returns 0 or -ENOMEM. */
int txn_set_identity(struct txn *t, const char *p, size_t n);
/* The identity, or a slice with len 0 when none was set. */
struct http_slice txn_identity(const struct txn *t);

/* For on_response_head: the response body passes through x on its way to
 * the client; ctx is the transaction's from now on (x->free(ctx) when it
 * ends, also if the answer turns out to have no body). The length of the
 * body becomes unknown: the session drops Content-Length and sends the body
 * chunked to an HTTP/1.1 client, until close to an HTTP/1.0 one. The step
 * must not set one for a response whose Transfer-Encoding has codings
 * besides chunked (http_msg.te_other_codings). Returns 0, or -EBUSY when
 * another step already set one (ctx is then freed here). */
int txn_set_body_xform(struct txn *t, const struct txn_xform *x, void *ctx);

struct ev_loop *txn_loop(const struct txn *t);
const char *txn_client_ip(const struct txn *t);
const char *txn_request_id(const struct txn *t);
const char *txn_route_name(const struct txn *t);
const char *txn_listener_name(const struct txn *t);
/* The running state (endpoints, balancer) of a configured cluster. */
struct cluster *txn_cluster(const struct txn *t, const struct cfg_cluster *cc);
/* The configuration snapshot the request runs on, with a reference for
 * the caller (snapshot_unref, server/snapshot.h): for work that outlives
 * the request and uses its clusters (a cache's background refresh). */
struct snapshot *txn_snapshot_ref(const struct txn *t);
/* The worker's upstream connection pool and buffer pool. */
struct pool *txn_upstream_pool(const struct txn *t);
struct buf_pool *txn_buf_pool(const struct txn *t);
unsigned txn_worker_id(const struct txn *t);

/* ---- for the session ---- */

/* Starts a transaction for a request head parsed into req (slices into
 * the session's read buffer). */
void txn_begin(struct txn *t, struct client *session, struct wctx *wc, struct http_msg *req);
/* Runs the route's steps from where it stopped. Returns NEXT when all let
 * the request through, or the result that stopped them. */
enum step_result txn_run_steps(struct txn *t);
/* Copies the head out of the session's read buffer (head_len bytes at
 * `start`), so the buffer can move on while a step waits. Returns 0 or
 * -ENOMEM. */
int txn_keep_head(struct txn *t, const char *start, size_t head_len);
/* Frees the body transform a step set, if any: the answer it was set for
 * is not sent after all (weir answers an error instead). */
void txn_drop_body_xform(struct txn *t);
/* Calls the steps' on_response_head, in order. */
void txn_response_head(struct txn *t, struct http_msg *resp);
/* Appends request body bytes for a needs_body target, up to max in all.
 * Returns 0, -EFBIG past max, or -ENOMEM. */
int txn_body_append(struct txn *t, const char *p, size_t n, uint64_t max);
/* Calls the steps' on_body, in order, with the bytes sent to the client
 * (after a body transform, before chunk framing). */
void txn_body(struct txn *t, const char *p, size_t n);
/* Calls the steps' on_response_end, in order: the backend's body is whole. */
void txn_response_end(struct txn *t);
/* Calls the steps' on_error, in order, until one answers. Returns 1 when
 * one did (t->answer is set), else 0. */
int txn_error(struct txn *t, int status);
/* Ends the transaction: cancels a waiting step, frees the kept head and
 * the arena. Safe to call more than once. */
void txn_end(struct txn *t);
/* Frees the worker's free list of kept heads. */
void txn_worker_cleanup(struct txn_head **free_list);

/* Implemented by the session (proxy.c): a waiting step has resumed. */
void proxy_txn_resumed(struct txn *t, enum step_result r);
/* Implemented by the session (proxy.c): txn_source_ready. */
void proxy_txn_source_ready(struct txn *t);

#endif

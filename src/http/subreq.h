/* subreq: a small asynchronous HTTP/1.1 client on a worker's loop, for
 * steps that ask another service before a request goes on (forward_auth).
 * It picks an endpoint of a cluster, uses the worker's upstream pool,
 * sends one request head and an optional body (push delivery of topics),
 * and reads the whole answer: head and a body within one buffer, or of any
 * length handed to a body sink as it is decoded. */
#ifndef WEIR_HTTP_SUBREQ_H
#define WEIR_HTTP_SUBREQ_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/http_parser.h"

struct cluster;
struct pool;
struct subreq;

enum subreq_error {
    SUBREQ_OK,
    SUBREQ_NO_ENDPOINT,  /* no endpoint of the cluster is up */
    SUBREQ_CONNECT,      /* connect failed or was refused */
    SUBREQ_TIMEOUT,      /* no whole answer within timeout_ms */
    SUBREQ_INVALID,      /* not a valid HTTP/1.1 answer, or too large */
};

struct subreq_result {
    enum subreq_error error;
    const struct http_msg *head;   /* SUBREQ_OK: the answer's head */
    const char *body;              /* SUBREQ_OK: its body (decoded) */
    size_t body_len;
    const char *endpoint;          /* the endpoint asked, or NULL */
};

/* Called exactly once, from the loop (never from inside subreq_start).
 * The result and what it points to are valid during the call only; the
 * subreq is freed right after it returns, so the callee must forget its
 * handle before doing anything that could cancel it. */
typedef void (*subreq_done_fn)(void *arg, const struct subreq_result *r);

struct subreq_params {
    struct ev_loop *loop;
    struct pool *pool;
    struct buf_pool *bufs;
    struct cluster *cluster;
    unsigned worker_id;
    uint64_t timeout_ms;           /* the whole exchange */
    const char *body;              /* sent after the head (its length in the head), or NULL; */
    size_t body_len;               /* borrowed: must outlive the subreq */
    /* Optional: each run of the body, decoded, as it arrives, with the
     * answer's head, instead of keeping it (the result's body is then
     * empty): for bodies larger than one buffer. Called with the arg of
     * subreq_start; returns 0, or negative to abandon the exchange (done
     * then gets SUBREQ_INVALID). */
    int (*body_sink)(void *arg, const struct http_msg *head, const char *p, size_t n);
};

/* Starts sending head[0..head_len) (a whole request head, copied). Returns
 * the handle, or NULL when it cannot start (memory, or the head does not
 * fit one buffer): then `done` is never called. */
struct subreq *subreq_start(const struct subreq_params *p, const char *head, size_t head_len,
                            subreq_done_fn done, void *arg);
/* Abandons a subreq that has not called back: closes its connection and
 * frees it; `done` is never called. */
void subreq_cancel(struct subreq *s);

#endif

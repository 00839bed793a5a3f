/* resp_redirect: a Redis Cluster backend's MOVED and ASK replies followed
 * inside weir, so cluster-unaware clients never see them.
 *
 *   send (resp_proxy.c): mark c's output, write the request, keep a copy in m
 *   reply "-MOVED slot host:port" --> slot map marked stale (main thread
 *       fetches it again, rate-limited) --> m's copy to host:port
 *   reply "-ASK slot host:port"   --> ASKING + m's copy to host:port
 *
 * The msg keeps its place in its session's queue, so replies still reach
 * the client in order. A msg is redirected at most RESP_REDIRECT_MAX times,
 * then the error goes to the client as Redis Cluster gave it. Internal to
 * src/resp/. */
#ifndef WEIR_RESP_REDIRECT_H
#define WEIR_RESP_REDIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "resp/resp_types.h"

#define RESP_REDIRECT_MAX 10

/* Where c's output ended before a request was written. */
struct resp_out_mark {
    uint64_t bytes;                /* c->out_bytes then */
};

static inline void resp_redirect_mark(const struct resp_conn *c, struct resp_out_mark *mk)
{
    mk->bytes = c->out_bytes;
}

/* Keeps in m (m->req) the bytes written to c since mk, to send them again
 * if the node redirects. Returns 0 or -ENOMEM (m keeps nothing: a MOVED
 * then reaches the client). */
int resp_redirect_keep(struct resp_msg *m, const struct resp_conn *c, const struct resp_out_mark *mk,
                       uint32_t slot);

/* Reply data[0..n), an error that is all of m's reply from c: when it is
 * MOVED or ASK and m may go on, sends m's request to the node named (c's
 * reply is then dropped) and returns 1; else 0 (the error goes on to the
 * client). */
int resp_redirect(struct resp_conn *c, struct resp_msg *m, const char *data, size_t n);

/* m's connection was lost before its reply (m is off every queue): when m
 * may be retried, queues it and returns 1; else 0 (it fails). */
int resp_redirect_lost(struct resp_wctx *rw, struct resp_msg *m);

/* Frees what waits in the retry list (worker exit). */
void resp_redirect_cleanup(struct resp_wctx *rw);

#endif

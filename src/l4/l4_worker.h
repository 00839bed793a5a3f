/* l4_worker: the tcp protocol's state on one worker (wc->proto[CFG_PROTOCOL_TCP]),
 * shared by the tcp sessions (tcp_proxy.c) and the PROXY-header wait any
 * listener may put in front of its protocol (l4_accept.c). Internal to
 * src/l4/. */
#ifndef WEIR_L4_L4_WORKER_H
#define WEIR_L4_L4_WORKER_H

#include <stddef.h>

#include "server/server.h"

#define L4_PIPES_KEPT 64           /* empty pipes kept per worker for the next sessions */

struct tcp_session;
struct l4_waiter;

struct l4_worker {
    struct tcp_session *sessions;  /* open tcp sessions, doubly linked */
    struct l4_waiter *waiters;     /* connections waiting for their PROXY header */
    int pipes[L4_PIPES_KEPT][2];   /* empty pipes to reuse (pipe2 + close per session saved) */
    size_t n_pipes;
};

static inline struct l4_worker *l4_worker_of(struct wctx *wc)
{
    return wc->proto[CFG_PROTOCOL_TCP];
}

/* Gets an empty pipe into p (from the kept ones or a new one). Returns 0 or
 * a negative errno (then splice is not used). */
int l4_pipe_get(struct l4_worker *lw, int p[2]);
/* Keeps an empty pipe for later, or closes it. */
void l4_pipe_put(struct l4_worker *lw, int p[2]);

/* The PROXY-header waits of l4_accept.c: drain closes them all (a draining
 * worker takes no new session), free does the same after the loop ended. */
void l4_accept_drain(struct wctx *wc);

#endif

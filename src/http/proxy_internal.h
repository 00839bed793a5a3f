/* proxy_internal: what the session (proxy.c) lends the transaction
 * (txn.c) inside the http module. Not for steps. */
#ifndef WEIR_HTTP_PROXY_INTERNAL_H
#define WEIR_HTTP_PROXY_INTERNAL_H

#include "http/txn.h"

/* A kept-head object from the worker's free list (NULL when memory is
 * short), and its return. */
struct txn_head *proxy_head_get(struct txn *t);
void proxy_head_put(struct txn *t, struct txn_head *h);

#endif

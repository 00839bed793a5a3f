/* evict_array: a growable array of nodes, each knowing its index (slot),
 * for the policies that pick by position (random) or keep a heap (ttl). */
#ifndef WEIR_CACHE_EVICT_ARRAY_H
#define WEIR_CACHE_EVICT_ARRAY_H

#include "cache/evict.h"

struct evict_array {
    struct evict_node **v;
    size_t n, cap;
};

/* Appends n at the end. Returns 0 or -ENOMEM. */
int evict_array_push(struct evict_array *a, struct evict_node *n);
/* Moves the last node into n's slot and shrinks by one. */
void evict_array_take(struct evict_array *a, struct evict_node *n);
void evict_array_swap(struct evict_array *a, size_t i, size_t j);
void evict_array_free(struct evict_array *a);

#endif

/* evict_array: see evict_array.h. */
#include "cache/evict_array.h"

#include <errno.h>
#include <stdlib.h>

int evict_array_push(struct evict_array *a, struct evict_node *n)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct evict_node **v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    n->slot = (uint32_t)a->n;
    a->v[a->n++] = n;
    return 0;
}

void evict_array_swap(struct evict_array *a, size_t i, size_t j)
{
    struct evict_node *t = a->v[i];
    a->v[i] = a->v[j];
    a->v[j] = t;
    a->v[i]->slot = (uint32_t)i;
    a->v[j]->slot = (uint32_t)j;
}

void evict_array_take(struct evict_array *a, struct evict_node *n)
{
    size_t i = n->slot, last = a->n - 1;
    if (i != last)
        evict_array_swap(a, i, last);
    a->n--;
}

void evict_array_free(struct evict_array *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

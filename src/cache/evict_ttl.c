/* evict_ttl: the object whose freshness ends first goes first (stale
 * objects before fresh ones). A binary min-heap on expires_at; each object
 * knows its slot, so removing any object is O(log n). */
#include "cache/evict_array.h"

static int ttl_less(const struct evict_array *a, size_t i, size_t j)
{
    return a->v[i]->expires_at < a->v[j]->expires_at;
}

static void ttl_up(struct evict_array *a, size_t i)
{
    while (i > 0 && ttl_less(a, i, (i - 1) / 2)) {
        evict_array_swap(a, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void ttl_down(struct evict_array *a, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < a->n && ttl_less(a, l, m))
            m = l;
        if (r < a->n && ttl_less(a, r, m))
            m = r;
        if (m == i)
            return;
        evict_array_swap(a, i, m);
        i = m;
    }
}

static int ttl_insert(void *st, struct evict_node *n)
{
    struct evict_array *a = st;
    int rc = evict_array_push(a, n);
    if (rc == 0)
        ttl_up(a, n->slot);
    return rc;
}

static void ttl_hit(void *st, struct evict_node *n)
{
    (void)st;
    (void)n;
}

static void ttl_remove(void *st, struct evict_node *n)
{
    struct evict_array *a = st;
    size_t i = n->slot;
    evict_array_take(a, n);
    if (i < a->n) {
        ttl_down(a, i);
        ttl_up(a, i);
    }
}

static struct evict_node *ttl_victim(void *st)
{
    struct evict_array *a = st;
    return a->n ? a->v[0] : NULL;
}

static void ttl_fini(void *st)
{
    evict_array_free(st);
}

const struct evict_ops evict_ttl = {
    .name = "ttl",
    .state_size = sizeof(struct evict_array),
    .fini = ttl_fini,
    .insert = ttl_insert,
    .hit = ttl_hit,
    .remove = ttl_remove,
    .victim = ttl_victim,
};

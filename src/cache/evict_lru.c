/* evict_lru: least recently used. One list, a hit moves the object to the
 * head, the victim is the tail. */
#include "cache/evict.h"

static int lru_insert(void *st, struct evict_node *n)
{
    evict_list_push(st, n);
    return 0;
}

static void lru_hit(void *st, struct evict_node *n)
{
    evict_list_unlink(st, n);
    evict_list_push(st, n);
}

static void lru_remove(void *st, struct evict_node *n)
{
    evict_list_unlink(st, n);
}

static struct evict_node *lru_victim(void *st)
{
    return ((struct evict_list *)st)->tail;
}

const struct evict_ops evict_lru = {
    .name = "lru",
    .state_size = sizeof(struct evict_list),
    .insert = lru_insert,
    .hit = lru_hit,
    .remove = lru_remove,
    .victim = lru_victim,
};

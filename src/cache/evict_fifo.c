/* evict_fifo: first in, first out. One list in insertion order; hits
 * change nothing; the victim is the oldest object. */
#include "cache/evict.h"

static int fifo_insert(void *st, struct evict_node *n)
{
    evict_list_push(st, n);
    return 0;
}

static void fifo_hit(void *st, struct evict_node *n)
{
    (void)st;
    (void)n;
}

static void fifo_remove(void *st, struct evict_node *n)
{
    evict_list_unlink(st, n);
}

static struct evict_node *fifo_victim(void *st)
{
    return ((struct evict_list *)st)->tail;
}

const struct evict_ops evict_fifo = {
    .name = "fifo",
    .state_size = sizeof(struct evict_list),
    .insert = fifo_insert,
    .hit = fifo_hit,
    .remove = fifo_remove,
    .victim = fifo_victim,
};

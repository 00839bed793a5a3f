/* evict_lfu: least frequently used, in O(1).
 *
 *   bucket[0] <- new objects      ... bucket[LFU_MAX] (15 hits or more)
 *   each bucket a list, most recent at head
 *
 * A hit moves an object one bucket up (counts saturate at LFU_MAX); the
 * victim is the least recent object of the lowest non-empty bucket, so
 * among equally used objects the oldest goes first. */
#include "cache/evict.h"

#define LFU_MAX 15

struct lfu_state {
    struct evict_list bucket[LFU_MAX + 1];
};

static int lfu_insert(void *st, struct evict_node *n)
{
    struct lfu_state *s = st;
    n->freq = 0;
    evict_list_push(&s->bucket[0], n);
    return 0;
}

static void lfu_hit(void *st, struct evict_node *n)
{
    struct lfu_state *s = st;
    evict_list_unlink(&s->bucket[n->freq], n);
    if (n->freq < LFU_MAX)
        n->freq++;
    evict_list_push(&s->bucket[n->freq], n);
}

static void lfu_remove(void *st, struct evict_node *n)
{
    struct lfu_state *s = st;
    evict_list_unlink(&s->bucket[n->freq], n);
}

static struct evict_node *lfu_victim(void *st)
{
    struct lfu_state *s = st;
    for (int f = 0; f <= LFU_MAX; f++)
        if (s->bucket[f].tail)
            return s->bucket[f].tail;
    return NULL;
}

const struct evict_ops evict_lfu = {
    .name = "lfu",
    .state_size = sizeof(struct lfu_state),
    .insert = lfu_insert,
    .hit = lfu_hit,
    .remove = lfu_remove,
    .victim = lfu_victim,
};

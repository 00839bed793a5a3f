/* evict_random: a uniformly random victim. The objects sit in an array
 * (each knows its slot, so removal is a swap with the last); the random
 * numbers come from a xorshift generator per shard, no lock, no syscall. */
#include "cache/evict_array.h"

struct random_state {
    struct evict_array a;
    uint64_t seed;
};

static int random_insert(void *st, struct evict_node *n)
{
    return evict_array_push(&((struct random_state *)st)->a, n);
}

static void random_hit(void *st, struct evict_node *n)
{
    (void)st;
    (void)n;
}

static void random_remove(void *st, struct evict_node *n)
{
    evict_array_take(&((struct random_state *)st)->a, n);
}

static struct evict_node *random_victim(void *st)
{
    struct random_state *s = st;
    if (s->a.n == 0)
        return NULL;
    if (s->seed == 0)
        s->seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)st;
    s->seed ^= s->seed << 13;
    s->seed ^= s->seed >> 7;
    s->seed ^= s->seed << 17;
    return s->a.v[s->seed % s->a.n];
}

static void random_fini(void *st)
{
    evict_array_free(&((struct random_state *)st)->a);
}

const struct evict_ops evict_random = {
    .name = "random",
    .state_size = sizeof(struct random_state),
    .fini = random_fini,
    .insert = random_insert,
    .hit = random_hit,
    .remove = random_remove,
    .victim = random_victim,
};

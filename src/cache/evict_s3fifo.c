/* evict_s3fifo: S3-FIFO (Yang et al., SOSP 2023): three FIFO queues.
 *
 *   new object --(hash in ghost?)--no--> small (about 10 % of objects)
 *                                 \-yes-> main
 *   small tail: used since insert -> main head; else evicted, hash -> ghost
 *   main tail:  used -> count down, back to main head; else evicted
 *   ghost: the hashes of recently evicted one-hit objects (a ring)
 *
 * Most objects are read once and never again; they leave through the
 * small queue quickly without pushing out the objects that are used. A hit
 * only bumps a 2-bit counter: no list moves on the read path. */
#include "cache/evict.h"

#define S3_GHOST 1024 /* remembered hashes per shard */
#define S3_FREQ_MAX 3
enum { S3_SMALL = 1, S3_MAIN = 2 };

struct s3_state {
    struct evict_list small, main;
    uint64_t ghost[S3_GHOST];
    uint32_t ghost_next;
};

static int s3_in_ghost(const struct s3_state *s, uint64_t h)
{
    for (size_t i = 0; i < S3_GHOST; i++)
        if (s->ghost[i] == h && h != 0)
            return 1;
    return 0;
}

static int s3_insert(void *st, struct evict_node *n)
{
    struct s3_state *s = st;
    n->freq = 0;
    n->queue = s3_in_ghost(s, n->hash) ? S3_MAIN : S3_SMALL;
    evict_list_push(n->queue == S3_MAIN ? &s->main : &s->small, n);
    return 0;
}

static void s3_hit(void *st, struct evict_node *n)
{
    (void)st;
    if (n->freq < S3_FREQ_MAX)
        n->freq++;
}

static void s3_remove(void *st, struct evict_node *n)
{
    struct s3_state *s = st;
    evict_list_unlink(n->queue == S3_MAIN ? &s->main : &s->small, n);
}

/* Moves used objects out of the small queue's tail; returns the first
 * unused one (its hash goes to the ghost ring), or NULL when small empties. */
static struct evict_node *s3_from_small(struct s3_state *s)
{
    struct evict_node *n;
    while ((n = s->small.tail) != NULL) {
        if (n->freq == 0) {
            s->ghost[s->ghost_next++ % S3_GHOST] = n->hash;
            return n;
        }
        evict_list_unlink(&s->small, n);
        n->freq = 0;
        n->queue = S3_MAIN;
        evict_list_push(&s->main, n);
    }
    return NULL;
}

/* Gives used objects at the main queue's tail another round. */
static struct evict_node *s3_from_main(struct s3_state *s)
{
    struct evict_node *n;
    /* each pass lowers a counter, so this ends within 4 rounds of the queue */
    while ((n = s->main.tail) != NULL) {
        if (n->freq == 0)
            return n;
        n->freq--;
        evict_list_unlink(&s->main, n);
        evict_list_push(&s->main, n);
    }
    return NULL;
}

static struct evict_node *s3_victim(void *st)
{
    struct s3_state *s = st;
    size_t total = s->small.count + s->main.count;
    struct evict_node *n = NULL;
    if (s->small.count > 0 && (s->small.count * 10 >= total || s->main.count == 0))
        n = s3_from_small(s);
    if (n == NULL)
        n = s3_from_main(s);
    return n;
}

const struct evict_ops evict_s3fifo = {
    .name = "s3fifo",
    .state_size = sizeof(struct s3_state),
    .insert = s3_insert,
    .hit = s3_hit,
    .remove = s3_remove,
    .victim = s3_victim,
};

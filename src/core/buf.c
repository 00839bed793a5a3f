/* buf: see buf.h. Blocks are recycled through a LIFO free list so a hot
 * worker reuses cache-warm memory and never calls malloc in steady state. */
#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buf_pool_init(struct buf_pool *pool, size_t block_size, unsigned max_free)
{
    pool->free_list = NULL;
    pool->block_size = block_size;
    pool->n_free = 0;
    pool->max_free = max_free;
}

void buf_pool_destroy(struct buf_pool *pool)
{
    while (pool->free_list) {
        void *next = *(void **)pool->free_list;
        free(pool->free_list);
        pool->free_list = next;
    }
    pool->n_free = 0;
}

int buf_acquire(struct buf_pool *pool, struct buf *b)
{
    if (b->data)
        return 0;
    if (pool->free_list) {
        b->data = pool->free_list;
        pool->free_list = *(void **)pool->free_list;
        pool->n_free--;
    } else {
        b->data = malloc(pool->block_size);
        if (!b->data)
            return -ENOMEM;
    }
    b->rpos = b->wpos = 0;
    return 0;
}

void buf_release(struct buf_pool *pool, struct buf *b)
{
    if (!b->data)
        return;
    if (pool->n_free < pool->max_free) {
        *(void **)b->data = pool->free_list;
        pool->free_list = b->data;
        pool->n_free++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->rpos = b->wpos = 0;
}

void buf_release_if_empty(struct buf_pool *pool, struct buf *b)
{
    if (b->data && b->rpos == b->wpos)
        buf_release(pool, b);
}

void buf_compact(struct buf *b)
{
    if (b->rpos == 0)
        return;
    size_t n = b->wpos - b->rpos;
    memmove(b->data, b->data + b->rpos, n);
    b->rpos = 0;
    b->wpos = (uint32_t)n;
}

int buf_append(const struct buf_pool *p, struct buf *b, const void *src, size_t len)
{
    if (buf_space(p, b) < len)
        return -ENOSPC;
    memcpy(b->data + b->wpos, src, len);
    b->wpos += (uint32_t)len;
    return 0;
}

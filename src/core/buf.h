/* buf: fixed-size byte buffers from a per-worker free list.
 *
 *   data                 rpos            wpos              cap
 *   |   consumed         |   unread      |   free space     |
 *
 * A connection holds a buffer only while bytes are in it: an idle keep-alive
 * connection gives its buffers back (buf_release), so thousands of idle
 * connections cost no buffer memory. Buffers never grow: a full buffer is
 * back-pressure or, for a message head, a limit. */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

struct buf {
    char *data;                    /* NULL while released */
    uint32_t rpos;
    uint32_t wpos;
};

struct buf_pool {
    void *free_list;               /* singly linked through the first word of each block */
    size_t block_size;             /* capacity of every buffer */
    unsigned n_free;
    unsigned max_free;             /* blocks kept beyond this go back to malloc */
};

void buf_pool_init(struct buf_pool *pool, size_t block_size, unsigned max_free);
void buf_pool_destroy(struct buf_pool *pool);

/* Gives `b` a block if it has none. Returns 0, or -ENOMEM (b unchanged). */
int buf_acquire(struct buf_pool *pool, struct buf *b);
/* Returns b's block to the pool (any unread bytes are dropped). */
void buf_release(struct buf_pool *pool, struct buf *b);
/* Releases b's block only if it holds no unread bytes. */
void buf_release_if_empty(struct buf_pool *pool, struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->wpos - b->rpos; }
static inline char *buf_rptr(const struct buf *b) { return b->data + b->rpos; }
static inline char *buf_wptr(const struct buf *b) { return b->data + b->wpos; }
static inline size_t buf_space(const struct buf_pool *p, const struct buf *b)
{
    return b->data ? p->block_size - b->wpos : 0;
}
static inline void buf_consume(struct buf *b, size_t n)
{
    ASSERT(n <= (size_t)(b->wpos - b->rpos)); /* never past what was read */
    b->rpos += (uint32_t)n;
    if (b->rpos == b->wpos)
        b->rpos = b->wpos = 0;
}
/* Moves unread bytes to the start so the free space is contiguous. */
void buf_compact(struct buf *b);
/* Appends len bytes; returns 0 or -ENOSPC (nothing appended). */
int buf_append(const struct buf_pool *p, struct buf *b, const void *src, size_t len);

#endif

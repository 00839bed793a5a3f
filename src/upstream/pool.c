/* pool: see pool.h. */
#include "upstream/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"

static struct pool_bucket **pool_slot(struct pool *pool, const struct sockaddr *addr,
                                      socklen_t addrlen, const void *tag)
{
    uint64_t h = hash_bytes(addr, addrlen) ^ hash_mix64((uint64_t)(uintptr_t)tag);
    return &pool->buckets[h % POOL_BUCKETS];
}

static struct pool_bucket *pool_bucket_find(struct pool *pool, const struct sockaddr *addr,
                                            socklen_t addrlen, const void *tag, int create)
{
    struct pool_bucket **slot = pool_slot(pool, addr, addrlen, tag);
    for (struct pool_bucket *b = *slot; b; b = b->next)
        if (b->addrlen == addrlen && b->tag == tag && memcmp(&b->addr, addr, addrlen) == 0)
            return b;
    if (!create)
        return NULL;
    struct pool_bucket *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    memcpy(&b->addr, addr, addrlen);
    b->addrlen = addrlen;
    b->tag = tag;
    b->next = *slot;
    *slot = b;
    return b;
}

static void pool_unlink(struct pool_conn *pc)
{
    struct pool_bucket *b = pc->bucket;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        b->head = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    b->n_idle--;
    pc->pool->n_idle--;
    ev_io_stop(pc->pool->loop, &pc->io);
    ev_timer_stop(pc->pool->loop, &pc->timer);
}

static void pool_conn_recycle(struct pool_conn *pc)
{
    pc->next = pc->pool->free_conns;
    pc->pool->free_conns = pc;
}

static void pool_conn_close(struct pool_conn *pc)
{
    pool_unlink(pc);
    sio_close(&pc->sio);
    pool_conn_recycle(pc);
}

/* An idle connection became readable: the backend closed it (or sent bytes
 * nobody asked for, which makes it unusable too). */
static void pool_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    pool_conn_close(w->data);
}

static void pool_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    pool_conn_close(w->data);
}

void pool_init(struct pool *pool, struct ev_loop *loop)
{
    memset(pool, 0, sizeof(*pool));
    pool->loop = loop;
}

void pool_destroy(struct pool *pool)
{
    for (size_t i = 0; i < POOL_BUCKETS; i++) {
        struct pool_bucket *b = pool->buckets[i];
        while (b) {
            while (b->head)
                pool_conn_close(b->head);
            struct pool_bucket *next = b->next;
            free(b);
            b = next;
        }
        pool->buckets[i] = NULL;
    }
    while (pool->free_conns) {
        struct pool_conn *next = pool->free_conns->next;
        free(pool->free_conns);
        pool->free_conns = next;
    }
}

int pool_take_sio(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, const void *tag,
                  struct sio *out)
{
    struct pool_bucket *b = pool_bucket_find(pool, addr, addrlen, tag, 0);
    if (!b || !b->head)
        return -1;
    struct pool_conn *pc = b->head;
    *out = pc->sio;
    pool_unlink(pc);
    pool_conn_recycle(pc);
    return 0;
}

int pool_take(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen)
{
    struct sio s;
    return pool_take_sio(pool, addr, addrlen, NULL, &s) == 0 ? s.fd : -1;
}

int pool_put_sio(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, const void *tag,
                 struct sio *s, unsigned max_idle, uint64_t idle_timeout_ms)
{
    if (max_idle == 0)
        return -1;
    struct pool_bucket *b = pool_bucket_find(pool, addr, addrlen, tag, 1);
    if (!b || b->n_idle >= max_idle)
        return -1;
    struct pool_conn *pc = pool->free_conns;
    if (pc)
        pool->free_conns = pc->next;
    else if (!(pc = malloc(sizeof(*pc))))
        return -1;
    pc->sio = *s;
    sio_init_closed(s);
    pc->pool = pool;
    pc->bucket = b;
    pc->prev = NULL;
    pc->next = b->head;
    if (b->head)
        b->head->prev = pc;
    b->head = pc;
    b->n_idle++;
    pool->n_idle++;
    ev_io_init(&pc->io, pool_io_cb, pc->sio.fd, EV_READ);
    /* the fd comes straight from a session that watched it on this loop:
     * it is registered already, so libev need not re-add it */
    pc->io.events &= ~EV__IOFDSET;
    pc->io.data = pc;
    ev_io_start(pool->loop, &pc->io);
    ev_timer_init(&pc->timer, pool_timer_cb, (double)idle_timeout_ms / 1000.0, 0.);
    pc->timer.data = pc;
    ev_timer_start(pool->loop, &pc->timer);
    return 0;
}

int pool_put(struct pool *pool, const struct sockaddr *addr, socklen_t addrlen, int fd,
             unsigned max_idle, uint64_t idle_timeout_ms)
{
    struct sio s;
    sio_init_plain(&s, fd);
    return pool_put_sio(pool, addr, addrlen, NULL, &s, max_idle, idle_timeout_ms);
}

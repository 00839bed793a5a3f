/* ratelimit_table: one limit's keys, process-wide.
 *
 *   key --hash--> shard (hash % 64): mutex, chained buckets, LRU list
 *                   newest <-> ... <-> oldest   (moved to the front on use)
 *
 * Every worker thread decides through the same table, under the key's
 * shard lock, so a limit is exact however many workers there are. Memory is
 * bounded two ways: each decision first forgets up to two keys from the
 * shard's least recently used end if they are idle (their state is as good
 * as fresh, so forgetting changes no decision); and a shard holding its
 * share of max_keys forgets its least recently used key, idle or not
 * (counted in evictions: such a key starts again with a whole quota).
 *
 * An entry is one allocation: the entry, then the sliding_window_log
 * timestamps (if any), then the key bytes. The lock is held for a hash
 * lookup and a few integer operations; nothing inside it allocates except
 * a key seen for the first time. */
#include "http/steps/ratelimit_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/metrics.h"

struct rl_entry {
    struct rl_entry *chain;        /* next in the bucket */
    struct rl_entry *newer, *older; /* LRU list */
    uint64_t hash;
    uint32_t key_len;
    struct rl_state st;
    uint64_t log[];                /* rl_log_len entries, then the key bytes */
};

struct rl_shard {
    pthread_mutex_t lock;
    struct rl_entry **buckets;
    size_t mask;                   /* buckets - 1 */
    struct rl_entry *newest, *oldest;
    size_t count, cap;
    uint64_t evictions;
    struct metric_series *m_keys, *m_evictions; /* the table's (rl_table_set_metrics) */
} __attribute__((aligned(64)));

struct rl_table {
    struct rl_params params;
    size_t log_len;
    struct metric_series *m_keys, *m_evictions;
    struct rl_shard shards[RL_TABLE_SHARDS];
};

static char *rl_entry_key(struct rl_entry *e, size_t log_len)
{
    return (char *)(e->log + log_len);
}

struct rl_table *rl_table_new(const struct rl_params *p, uint64_t max_keys)
{
    struct rl_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->params = *p;
    t->log_len = rl_log_len(p);
    size_t cap = (size_t)((max_keys + RL_TABLE_SHARDS - 1) / RL_TABLE_SHARDS), nb = 16;
    if (cap == 0)
        cap = 1;
    while (nb < cap && nb < (1u << 20))
        nb <<= 1;
    for (size_t i = 0; i < RL_TABLE_SHARDS; i++) {
        struct rl_shard *s = &t->shards[i];
        s->cap = cap;
        s->mask = nb - 1;
        pthread_mutex_init(&s->lock, NULL);
        if ((s->buckets = calloc(nb, sizeof(*s->buckets))) == NULL) {
            rl_table_free(t);
            return NULL;
        }
    }
    return t;
}

void rl_table_set_metrics(struct rl_table *t, struct metric_series *keys,
                          struct metric_series *evictions)
{
    for (size_t i = 0; i < RL_TABLE_SHARDS; i++) {
        struct rl_shard *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        metrics_add(keys, 0, s->count);
        s->m_keys = keys;
        s->m_evictions = evictions;
        pthread_mutex_unlock(&s->lock);
    }
}

void rl_table_free(struct rl_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < RL_TABLE_SHARDS; i++) {
        struct rl_shard *s = &t->shards[i];
        for (struct rl_entry *e = s->newest, *next; e; e = next) {
            next = e->older;
            free(e);
        }
        metrics_sub(s->m_keys, 0, s->count); /* the gauge forgets this table's keys */
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(t);
}

static void rl_lru_unlink(struct rl_shard *s, struct rl_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void rl_lru_push(struct rl_shard *s, struct rl_entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    s->newest = e;
    if (s->oldest == NULL)
        s->oldest = e;
}

/* Unlinks e from its bucket and the LRU list and frees it. */
static void rl_forget(struct rl_shard *s, struct rl_entry *e)
{
    struct rl_entry **pp = &s->buckets[e->hash & s->mask];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    rl_lru_unlink(s, e);
    s->count--;
    metrics_sub(s->m_keys, 0, 1);
    free(e);
}

static void rl_expire(struct rl_table *t, struct rl_shard *s, uint64_t now)
{
    for (int i = 0; i < 2 && s->oldest; i++) {
        if (rl_idle_at(&t->params, &s->oldest->st, s->oldest->log) > now)
            return;
        rl_forget(s, s->oldest);
    }
}

static struct rl_entry *rl_lookup(struct rl_table *t, struct rl_shard *s, uint64_t h,
                                  const char *key, size_t len)
{
    for (struct rl_entry *e = s->buckets[h & s->mask]; e; e = e->chain)
        if (e->hash == h && e->key_len == len && memcmp(rl_entry_key(e, t->log_len), key, len) == 0)
            return e;
    return NULL;
}

static struct rl_entry *rl_insert(struct rl_table *t, struct rl_shard *s, uint64_t h,
                                  const char *key, size_t len)
{
    struct rl_entry *e = calloc(1, sizeof(*e) + t->log_len * sizeof(uint64_t) + len);
    if (e == NULL)
        return NULL;
    if (s->count >= s->cap) {
        s->evictions++;
        metrics_add(s->m_evictions, 0, 1);
        rl_forget(s, s->oldest);
    }
    e->hash = h;
    e->key_len = (uint32_t)len;
    memcpy(rl_entry_key(e, t->log_len), key, len);
    e->chain = s->buckets[h & s->mask];
    s->buckets[h & s->mask] = e;
    rl_lru_push(s, e);
    s->count++;
    metrics_add(s->m_keys, 0, 1);
    return e;
}

int rl_table_decide(struct rl_table *t, const char *key, size_t len, uint64_t now_ms,
                    struct rl_decision *d)
{
    if (len > RL_KEY_MAX)
        len = RL_KEY_MAX;
    uint64_t h = hash_bytes(key, len);
    struct rl_shard *s = &t->shards[(h >> 32) % RL_TABLE_SHARDS];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    rl_expire(t, s, now_ms);
    struct rl_entry *e = rl_lookup(t, s, h, key, len);
    if (e != NULL) {
        rl_lru_unlink(s, e);
        rl_lru_push(s, e);
    } else if ((e = rl_insert(t, s, h, key, len)) == NULL) {
        rc = -ENOMEM;
    }
    if (e != NULL)
        rl_decide(&t->params, &e->st, e->log, now_ms, d);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t rl_table_count(struct rl_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < RL_TABLE_SHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].count;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

uint64_t rl_table_evictions(struct rl_table *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i < RL_TABLE_SHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].evictions;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

/* queue_fifo: groups and deduplication ids of a FIFO queue (queue_fifo.h).
 *
 * Both are chained hash tables of a fixed number of buckets (FNV-1a of the
 * string). Deduplication entries also sit on a list by time; every lookup
 * and insert first drops the entries older than the five-minute window
 * from its old end, so the table never holds more than five minutes of
 * sends. */
#include "queue/queue_fifo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QFIFO_BUCKETS 4096

struct qdedup {
    char *key;
    char id[QFIFO_ID_LEN + 1];
    uint64_t seq, at_ms;
    struct qdedup *hnext;             /* hash chain */
    struct qdedup *tnext;             /* time list, older to newer */
};

static size_t qfifo_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h % QFIFO_BUCKETS);
}

struct qfifo *qfifo_new(void)
{
    struct qfifo *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->groups = calloc(QFIFO_BUCKETS, sizeof(*f->groups));
    f->dedup = calloc(QFIFO_BUCKETS, sizeof(*f->dedup));
    if (f->groups == NULL || f->dedup == NULL) {
        qfifo_free(f);
        return NULL;
    }
    return f;
}

void qfifo_free(struct qfifo *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; f->groups && i < QFIFO_BUCKETS; i++)
        for (struct qgroup *g = f->groups[i], *next; g; g = next) {
            next = g->next;
            free(g->name);
            free(g);
        }
    for (struct qdedup *d = f->oldest, *next; d; d = next) {
        next = d->tnext;
        free(d->key);
        free(d);
    }
    free(f->groups);
    free(f->dedup);
    free(f);
}

struct qgroup *qfifo_group_get(struct qfifo *f, const char *name)
{
    size_t b = qfifo_hash(name);
    struct qgroup *g = f->groups[b];
    while (g && strcmp(g->name, name) != 0)
        g = g->next;
    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g == NULL || (g->name = strdup(name)) == NULL) {
            free(g);
            return NULL;
        }
        g->next = f->groups[b];
        f->groups[b] = g;
    }
    g->refs++;
    return g;
}

void qfifo_group_put(struct qfifo *f, struct qgroup *g)
{
    if (g == NULL || --g->refs > 0)
        return;
    struct qgroup **pp = &f->groups[qfifo_hash(g->name)];
    while (*pp != g)
        pp = &(*pp)->next;
    *pp = g->next;
    free(g->name);
    free(g);
}

/* Drops the entries that left the window. */
static void qfifo_dedup_expire(struct qfifo *f, uint64_t now)
{
    while (f->oldest && f->oldest->at_ms + QFIFO_DEDUP_WINDOW_MS <= now) {
        struct qdedup *d = f->oldest;
        struct qdedup **pp = &f->dedup[qfifo_hash(d->key)];
        while (*pp != d)
            pp = &(*pp)->hnext;
        *pp = d->hnext;
        f->oldest = d->tnext;
        if (f->oldest == NULL)
            f->newest = NULL;
        free(d->key);
        free(d);
    }
}

int qfifo_dedup_find(struct qfifo *f, const char *key, uint64_t now, char *id, uint64_t *seq)
{
    qfifo_dedup_expire(f, now);
    for (struct qdedup *d = f->dedup[qfifo_hash(key)]; d; d = d->hnext)
        if (strcmp(d->key, key) == 0) {
            memcpy(id, d->id, QFIFO_ID_LEN + 1);
            *seq = d->seq;
            return 1;
        }
    return 0;
}

int qfifo_dedup_add(struct qfifo *f, const char *key, const char *id, uint64_t seq,
                    uint64_t at_ms)
{
    struct qdedup *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->key = strdup(key)) == NULL) {
        free(d);
        return -ENOMEM;
    }
    memcpy(d->id, id, QFIFO_ID_LEN);
    d->seq = seq;
    d->at_ms = at_ms;
    size_t b = qfifo_hash(key);
    d->hnext = f->dedup[b];
    f->dedup[b] = d;
    /* replay may add out of time order only by a little: keep the list by insertion */
    if (f->newest)
        f->newest->tnext = d;
    else
        f->oldest = d;
    f->newest = d;
    return 0;
}

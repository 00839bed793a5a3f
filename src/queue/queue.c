/* queue: the broker (every queue of the instance and the log under
 * data_dir) and each queue's messages.
 *
 *   qbroker --- log (qlog.c): sends, deletes, purges, in order
 *           |-- DIR/queues.json: each queue's id, name, attributes
 *           |   (rewritten whole, fsync'd and renamed, on every change)
 *           `-- queues[] -- queue (own mutex)
 *                             |- ready list: visible messages, oldest first
 *                             |- heap by visible time: delayed and in flight
 *                             |- table by seq: every message, for receipts
 *                             `- waiters: long polls to wake on a send
 *
 * A queue's id names one incarnation: records of a deleted queue are
 * ignored on replay even when a queue of the same name exists again.
 *
 * A send appends its record (under the queue's lock, so the log's order
 * is the queue's order) and then links the message; the caller
 * acknowledges it once queue_durable() says the record is as durable as
 * the queue's fsync setting asks. A receive promotes messages whose time
 * came from the heap to the ready list, drops expired ones, takes up to 10
 * from the ready list into the heap for their visibility timeout. A
 * delete writes a record first, then unlinks; each message holds its log
 * segment until it is gone (qlog_seg_release).
 *
 * The broker's thread runs every tick (100 ms, or the shortest
 * fsync interval): fdatasync for queues with fsync interval, then each
 * queue's promotions and expiries, waking waiters when messages are
 * visible. Receive counts and visibility are memory only: after a restart
 * every message is visible again with a receive count of 0 (at-least-once
 * holds). Never: hand out a message twice while it is in flight; free a
 * message a receive callback still sees (callbacks run under the lock). */
#include "queue/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "queue/qmd5.h"
#include "queue/queue_fifo.h"
#include "server/config.h"

#define QUEUE_TICK_MS 100
#define QUEUE_META "queues.json"
#define QUEUE_NOT_IN_HEAP SIZE_MAX

#define QUEUE_FSYNC_NAME(e, s) s,
const char *const queue_fsync_names[QUEUE_FSYNC_COUNT] = { QUEUE_FSYNC_LIST(QUEUE_FSYNC_NAME) };
#undef QUEUE_FSYNC_NAME

const struct queue_attrs queue_attrs_default = {
    .visibility_timeout_s = 30,
    .delay_s = 0,
    .retention_s = 345600,
    .max_message_bytes = 262144,
    .receive_wait_s = 0,
    .fsync = QUEUE_FSYNC_ALWAYS,
    .fsync_every_ms = 10,
};

struct qmsg {
    uint64_t seq, seg;
    uint64_t sent_ms, visible_ms, first_receive_ms;
    uint32_t receive_count, nonce;
    size_t heap_idx;                 /* QUEUE_NOT_IN_HEAP: on the ready list */
    int delayed;                     /* in the heap, never received yet */
    struct qmsg *prev, *next;        /* ready list */
    struct qmsg *hnext;              /* table chain */
    char id[QUEUE_ID_LEN + 1];
    char md5_body[QMD5_HEX], md5_attrs[QMD5_HEX];
    char *body, *attrs;
    size_t body_len, attrs_len;
    char *origin;                    /* a dead letter: the queue it came from, or NULL */
    char *group, *dedup_id;          /* FIFO: MessageGroupId, deduplication id (or NULL) */
    struct qgroup *grp;              /* FIFO: its group while linked */
    int inflight;                    /* received and not yet visible again */
    int dead_failed;                 /* its move to the dead-letter queue failed: deliver it */
};

uint64_t queue_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- messages: table, heap, ready list (queue lock held) ---- */

static void qmsg_free(struct qmsg *m)
{
    if (m == NULL)
        return;
    free(m->body);
    free(m->attrs);
    free(m->origin);
    free(m->group);
    free(m->dedup_id);
    free(m);
}

static int queue_table_grow(struct queue *q)
{
    size_t cap = q->cap_table ? q->cap_table * 2 : 64;
    struct qmsg **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < q->cap_table; i++) {
        struct qmsg *m = q->table[i], *next;
        for (; m; m = next) {
            next = m->hnext;
            m->hnext = t[m->seq & (cap - 1)];
            t[m->seq & (cap - 1)] = m;
        }
    }
    free(q->table);
    q->table = t;
    q->cap_table = cap;
    return 0;
}

static struct qmsg *queue_table_find(struct queue *q, uint64_t seq)
{
    if (q->cap_table == 0)
        return NULL;
    struct qmsg *m = q->table[seq & (q->cap_table - 1)];
    while (m && m->seq != seq)
        m = m->hnext;
    return m;
}

static void queue_table_remove(struct queue *q, struct qmsg *m)
{
    struct qmsg **pp = &q->table[m->seq & (q->cap_table - 1)];
    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    q->n_msgs--;
}

static void queue_heap_set(struct queue *q, size_t i, struct qmsg *m)
{
    q->heap[i] = m;
    m->heap_idx = i;
}

static void queue_heap_up(struct queue *q, size_t i)
{
    struct qmsg *m = q->heap[i];
    while (i > 0 && q->heap[(i - 1) / 2]->visible_ms > m->visible_ms) {
        queue_heap_set(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    queue_heap_set(q, i, m);
}

static void queue_heap_down(struct queue *q, size_t i)
{
    struct qmsg *m = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n_heap)
            break;
        if (c + 1 < q->n_heap && q->heap[c + 1]->visible_ms < q->heap[c]->visible_ms)
            c++;
        if (q->heap[c]->visible_ms >= m->visible_ms)
            break;
        queue_heap_set(q, i, q->heap[c]);
        i = c;
    }
    queue_heap_set(q, i, m);
}

static int queue_heap_push(struct queue *q, struct qmsg *m)
{
    if (q->n_heap == q->cap_heap) {
        size_t cap = q->cap_heap ? q->cap_heap * 2 : 64;
        struct qmsg **h = realloc(q->heap, cap * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        q->heap = h;
        q->cap_heap = cap;
    }
    queue_heap_set(q, q->n_heap++, m);
    queue_heap_up(q, q->n_heap - 1);
    return 0;
}

static void queue_heap_remove(struct queue *q, struct qmsg *m)
{
    size_t i = m->heap_idx;
    struct qmsg *last = q->heap[--q->n_heap];
    m->heap_idx = QUEUE_NOT_IN_HEAP;
    if (m->delayed) {
        m->delayed = 0;
        q->n_delayed--;
    }
    if (last == m)
        return;
    queue_heap_set(q, i, last);
    queue_heap_up(q, i);
    queue_heap_down(q, last->heap_idx);
}

static void queue_ready_append(struct queue *q, struct qmsg *m)
{
    m->heap_idx = QUEUE_NOT_IN_HEAP;
    m->next = NULL;
    m->prev = q->ready_tail;
    if (q->ready_tail)
        q->ready_tail->next = m;
    else
        q->ready_head = m;
    q->ready_tail = m;
}

/* Puts m on the ready list: at its end, or in a FIFO queue in send order
 * (a message back from flight goes before its group's later ones). */
static void queue_ready_insert(struct queue *q, struct qmsg *m)
{
    struct qmsg *at = q->fifo ? q->ready_head : NULL;
    while (at && at->seq < m->seq)
        at = at->next;
    if (at == NULL) {
        queue_ready_append(q, m);
        return;
    }
    m->heap_idx = QUEUE_NOT_IN_HEAP;
    m->next = at;
    m->prev = at->prev;
    if (at->prev)
        at->prev->next = m;
    else
        q->ready_head = m;
    at->prev = m;
}

static void queue_ready_unlink(struct queue *q, struct qmsg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->ready_head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->ready_tail = m->prev;
    m->prev = m->next = NULL;
}

/* Links a new message: the table, then the heap (not yet visible) or the
 * ready list. Returns 0 or -ENOMEM (m not linked). */
static int queue_link(struct queue *q, struct qmsg *m, uint64_t now)
{
    if ((q->n_msgs + 1) * 4 > q->cap_table * 3 && queue_table_grow(q) < 0)
        return -ENOMEM;
    m->grp = NULL;
    m->inflight = 0;
    if (q->fifo && m->group && (m->grp = qfifo_group_get(q->fifo, m->group)) == NULL)
        return -ENOMEM;
    if (m->visible_ms > now) {
        if (queue_heap_push(q, m) < 0) {
            qfifo_group_put(q->fifo, m->grp);
            m->grp = NULL;
            return -ENOMEM;
        }
        m->delayed = 1;
        q->n_delayed++;
    } else {
        queue_ready_insert(q, m);
    }
    m->hnext = q->table[m->seq & (q->cap_table - 1)];
    q->table[m->seq & (q->cap_table - 1)] = m;
    q->n_msgs++;
    return 0;
}

/* Drops m's hold on its FIFO group. */
static void queue_ungroup(struct queue *q, struct qmsg *m)
{
    if (m->grp == NULL)
        return;
    if (m->inflight)
        m->grp->inflight--;
    m->inflight = 0;
    qfifo_group_put(q->fifo, m->grp);
    m->grp = NULL;
}

/* Unlinks and frees m, releasing its log segment. */
static void queue_unlink(struct queue *q, struct qmsg *m)
{
    queue_ungroup(q, m);
    queue_table_remove(q, m);
    if (m->heap_idx != QUEUE_NOT_IN_HEAP)
        queue_heap_remove(q, m);
    else
        queue_ready_unlink(q, m);
    if (q->broker->log)
        qlog_seg_release(q->broker->log, m->seg);
    qmsg_free(m);
}

static int queue_expired(const struct queue *q, const struct qmsg *m, uint64_t now)
{
    return m->sent_ms + (uint64_t)q->attrs.retention_s * 1000 <= now;
}

/* Moves messages whose time came to the ready list, drops expired ones at
 * its head. Returns whether messages are visible. */
static int queue_promote(struct queue *q, uint64_t now)
{
    while (q->n_heap > 0 && q->heap[0]->visible_ms <= now) {
        struct qmsg *m = q->heap[0];
        queue_heap_remove(q, m);
        if (m->inflight && m->grp)
            m->grp->inflight--;
        m->inflight = 0;
        queue_ready_insert(q, m);
    }
    while (q->ready_head && queue_expired(q, q->ready_head, now))
        queue_unlink(q, q->ready_head);
    return q->ready_head != NULL;
}

/* Whether a receive would find something (lock held): a visible message,
 * in a FIFO queue one whose group has nothing in flight. */
static int queue_receivable(const struct queue *q)
{
    for (const struct qmsg *m = q->ready_head; m; m = m->next)
        if (m->grp == NULL || m->grp->inflight == 0)
            return 1;
    return 0;
}

static void queue_wake(struct queue *q, size_t n)
{
    while (n-- > 0 && q->waiters.next != &q->waiters) {
        struct queue_waiter *w = q->waiters.next;
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->listed = 0;
        w->wake(w);
    }
}

void queue_notify(struct queue *q, size_t n)
{
    pthread_mutex_lock(&q->mu);
    queue_wake(q, n);
    pthread_mutex_unlock(&q->mu);
}

/* ---- queues ---- */

static struct queue *queue_new(struct qbroker *b, uint64_t id, const char *name,
                               const struct queue_attrs *attrs)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    q->refs = 1;
    q->broker = b;
    q->id = id;
    snprintf(q->name, sizeof(q->name), "%s", name);
    q->attrs = *attrs;
    if (attrs->fifo && (q->fifo = qfifo_new()) == NULL) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    q->waiters.next = q->waiters.prev = &q->waiters;
    queue_metrics_init(&q->metrics, name);
    q->created_ms = q->modified_ms = queue_now_ms();
    if ((q->tags = json_object()) == NULL) {
        queue_metrics_fini(&q->metrics);
        qfifo_free(q->fifo);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    return q;
}

/* Drops every message (lock held or the queue private). */
static void queue_clear(struct queue *q)
{
    for (size_t i = 0; i < q->cap_table; i++) {
        struct qmsg *m = q->table[i], *next;
        for (; m; m = next) {
            next = m->hnext;
            queue_ungroup(q, m);
            if (q->broker->log)
                qlog_seg_release(q->broker->log, m->seg);
            qmsg_free(m);
        }
        q->table[i] = NULL;
    }
    q->n_msgs = q->n_heap = q->n_delayed = 0;
    q->ready_head = q->ready_tail = NULL;
}

void queue_get(struct queue *q)
{
    atomic_fetch_add(&q->refs, 1);
}

void queue_put(struct queue *q)
{
    if (q == NULL || atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    queue_clear(q);
    qfifo_free(q->fifo);
    json_decref(q->tags);
    queue_metrics_fini(&q->metrics);
    free(q->table);
    free(q->heap);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void queue_make_id(struct qbroker *b, uint64_t seq, char *id)
{
    uint64_t s = b->id_salt;
    snprintf(id, QUEUE_ID_LEN + 1, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
             "-%012" PRIx64, s >> 32, (s >> 16) & 0xffff, s & 0xffff, (seq >> 48) & 0xffff,
             seq & (uint64_t)0xffffffffffff);
}

static struct qmsg *qmsg_new(const char *body, size_t body_len, const char *attrs,
                             size_t attrs_len)
{
    struct qmsg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->body = malloc(body_len + 1);
    m->attrs = attrs_len ? malloc(attrs_len + 1) : NULL;
    if (m->body == NULL || (attrs_len && m->attrs == NULL) ||
        qmd5_hex(body, body_len, m->md5_body) < 0) {
        qmsg_free(m);
        return NULL;
    }
    memcpy(m->body, body, body_len);
    m->body[body_len] = 0;
    m->body_len = body_len;
    if (attrs_len) {
        memcpy(m->attrs, attrs, attrs_len);
        m->attrs[attrs_len] = 0;
        m->attrs_len = attrs_len;
    }
    return m;
}

/* The new message of s, with copies of its FIFO ids; NULL when memory is
 * short. */
static struct qmsg *queue_msg_of(const struct queue_send *s)
{
    struct qmsg *m = qmsg_new(s->body, s->body_len, s->attrs, s->attrs_len);
    if (m == NULL)
        return NULL;
    snprintf(m->md5_attrs, sizeof(m->md5_attrs), "%s", s->md5_attrs ? s->md5_attrs : "");
    if ((s->group && (m->group = strdup(s->group)) == NULL) ||
        (s->dedup && (m->dedup_id = strdup(s->dedup)) == NULL)) {
        qmsg_free(m);
        return NULL;
    }
    return m;
}

static struct qlog_blob queue_blob(const char *s)
{
    return (struct qlog_blob){ s, s ? (uint32_t)strlen(s) : 0 };
}

int queue_send(struct queue *q, const struct queue_send *s, char *id, uint64_t *seq,
               uint64_t *pos)
{
    struct qbroker *b = q->broker;
    uint64_t now = queue_now_ms();
    struct qmsg *m = queue_msg_of(s);
    if (m == NULL)
        return -ENOMEM;
    m->seq = atomic_fetch_add(&b->next_seq, 1);
    m->sent_ms = now;
    *pos = 0;
    pthread_mutex_lock(&q->mu);
    int rc = q->deleted ? -ENOENT : 0;
    if (rc == 0 && q->fifo && m->dedup_id && qfifo_dedup_find(q->fifo, m->dedup_id, now, id, seq))
        goto out; /* a duplicate: answered as the first, stored once */
    int64_t delay = s->delay_s >= 0 ? s->delay_s : q->attrs.delay_s;
    m->visible_ms = now + (uint64_t)delay * 1000;
    queue_make_id(b, m->seq, m->id);
    struct qlog_record rec = {
        .type = QLOG_SEND, .queue_id = q->id, .seq = m->seq, .sent_ms = now,
        .visible_ms = m->visible_ms, .id = { m->id, QUEUE_ID_LEN },
        .body = { m->body, (uint32_t)m->body_len }, .attrs = { m->attrs, (uint32_t)m->attrs_len },
        .group = queue_blob(m->group), .dedup = queue_blob(m->dedup_id),
    };
    if (rc == 0)
        rc = qlog_append(b->log, &rec, pos, &m->seg);
    if (rc == 0) {
        qlog_seg_hold(b->log, m->seg);
        if ((rc = queue_link(q, m, now)) < 0)
            qlog_seg_release(b->log, m->seg); /* on disk, back after a restart */
    }
    if (rc == 0 && q->fifo && m->dedup_id &&
        qfifo_dedup_add(q->fifo, m->dedup_id, m->id, m->seq, now) < 0)
        log_warn("queues: %s: out of memory remembering a deduplication id", q->name);
    if (rc == 0) {
        memcpy(id, m->id, QUEUE_ID_LEN + 1);
        *seq = m->seq;
        queue_metrics_sent(q, 1);
        if (m->heap_idx == QUEUE_NOT_IN_HEAP)
            queue_wake(q, 1);
        m = NULL;
    }
out:
    pthread_mutex_unlock(&q->mu);
    qmsg_free(m);
    return rc;
}

int queue_durable(struct queue *q, uint64_t pos)
{
    if (q->attrs.fsync != QUEUE_FSYNC_ALWAYS || pos == 0)
        return 0;
    return qlog_sync(q->broker->log, pos);
}

static void queue_receipt(const struct queue *q, const struct qmsg *m, char *out)
{
    snprintf(out, QUEUE_MAX_RECEIPT, "%016" PRIx64 "%016" PRIx64 "%08" PRIx32, q->id, m->seq,
             m->nonce);
}

/* Parses a receipt: 40 hex digits. Returns 0 or -EINVAL. */
static int queue_receipt_parse(const char *s, uint64_t *qid, uint64_t *seq, uint32_t *nonce)
{
    char part[17];
    uint64_t v[3];
    static const int lens[3] = { 16, 16, 8 };
    if (strlen(s) != 40 || strspn(s, "0123456789abcdef") != 40)
        return -EINVAL;
    for (int i = 0, off = 0; i < 3; off += lens[i], i++) {
        memcpy(part, s + off, (size_t)lens[i]);
        part[lens[i]] = 0;
        v[i] = strtoull(part, NULL, 16);
    }
    *qid = v[0];
    *seq = v[1];
    *nonce = (uint32_t)v[2];
    return 0;
}

static void queue_move_list(struct queue *src, struct qmsg *list, const char *dest,
                            const char *origin);

/* Whether m has been received as often as q's redrive policy allows (lock
 * held): the next receive moves it to the dead-letter queue instead. */
static int queue_is_dead(const struct queue *q, const struct qmsg *m)
{
    return q->attrs.max_receives > 0 && q->attrs.dead_letter[0] && !m->dead_failed &&
           m->receive_count >= q->attrs.max_receives;
}

/* Takes m out of the ready list and the table, keeping its segment held,
 * onto *list (lock held). */
static void queue_take(struct queue *q, struct qmsg *m, struct qmsg **list)
{
    queue_ungroup(q, m);
    queue_ready_unlink(q, m);
    queue_table_remove(q, m);
    m->next = *list;
    *list = m;
}

int queue_receive(struct queue *q, unsigned max, uint32_t visibility_s, queue_received_fn fn,
                  void *arg)
{
    uint64_t now = queue_now_ms();
    int n = 0;
    struct qmsg *dead = NULL;
    char dlq[QUEUE_MAX_NAME + 1];
    pthread_mutex_lock(&q->mu);
    if (q->deleted) {
        pthread_mutex_unlock(&q->mu);
        return -ENOENT;
    }
    queue_promote(q, now);
    memcpy(dlq, q->attrs.dead_letter, sizeof(dlq));
    uint64_t batch = ++q->batch_serial;
    struct qmsg *next;
    for (struct qmsg *m = q->ready_head; (unsigned)n < max && m; m = next) {
        next = m->next;
        if (queue_expired(q, m, now)) {
            queue_unlink(q, m);
            continue;
        }
        if (queue_is_dead(q, m)) {
            queue_take(q, m, &dead);
            continue;
        }
        /* FIFO: a group with a message in flight from another receive waits */
        if (m->grp && m->grp->inflight > 0 && m->grp->batch != batch)
            continue;
        queue_ready_unlink(q, m);
        m->visible_ms = now + (uint64_t)visibility_s * 1000;
        if (queue_heap_push(q, m) < 0) {
            queue_ready_insert(q, m);
            break;
        }
        m->receive_count++;
        m->nonce++;
        m->inflight = 1;
        if (m->grp) {
            m->grp->inflight++;
            m->grp->batch = batch;
        }
        if (m->first_receive_ms == 0)
            m->first_receive_ms = now;
        char receipt[QUEUE_MAX_RECEIPT];
        queue_receipt(q, m, receipt);
        struct queue_received r = {
            .id = m->id, .receipt = receipt, .body = m->body, .body_len = m->body_len,
            .attrs = m->attrs, .attrs_len = m->attrs_len, .md5_body = m->md5_body,
            .md5_attrs = m->md5_attrs, .sent_ms = m->sent_ms,
            .first_receive_ms = m->first_receive_ms, .receive_count = m->receive_count,
            .seq = m->seq, .group = m->group, .dedup = m->dedup_id,
        };
        fn(arg, &r);
        n++;
    }
    pthread_mutex_unlock(&q->mu);
    queue_metrics_received(q, (uint64_t)n);
    if (dead)
        queue_move_list(q, dead, dlq, q->name);
    return n;
}

/* ---- moving messages between queues: dead letters, redrive ---- */

/* Appends m, taken out of another queue, to q as a new message of q
 * (visible now, never received, `origin` remembered). Lock of q not held.
 * Returns 0 (m belongs to q), or a negative errno (m untouched). */
static int queue_adopt(struct queue *q, struct qmsg *m, const char *origin)
{
    struct qbroker *b = q->broker;
    uint64_t now = queue_now_ms(), seq = atomic_fetch_add(&b->next_seq, 1), pos, seg;
    char *o = origin && origin[0] ? strdup(origin) : NULL;
    if (origin && origin[0] && o == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&q->mu);
    struct qlog_record rec = {
        .type = QLOG_SEND, .queue_id = q->id, .seq = seq, .sent_ms = m->sent_ms,
        .visible_ms = now, .id = { m->id, QUEUE_ID_LEN },
        .body = { m->body, (uint32_t)m->body_len }, .attrs = { m->attrs, (uint32_t)m->attrs_len },
        .origin = { o, o ? (uint32_t)strlen(o) : 0 },
        .group = queue_blob(m->group), .dedup = queue_blob(m->dedup_id),
    };
    int rc = q->deleted ? -ENOENT : qlog_append(b->log, &rec, &pos, &seg);
    if (rc == 0) {
        struct qmsg old = *m;
        m->seq = seq;
        m->seg = seg;
        m->visible_ms = now;
        m->receive_count = m->nonce = 0;
        m->first_receive_ms = 0;
        m->delayed = 0;
        qlog_seg_hold(b->log, seg);
        if ((rc = queue_link(q, m, now)) < 0) {
            qlog_seg_release(b->log, seg);
            *m = old;
        } else {
            free(m->origin);
            m->origin = o;
            o = NULL;
            queue_wake(q, 1);
        }
    }
    pthread_mutex_unlock(&q->mu);
    free(o);
    return rc;
}

/* Moves each message of list (taken out of src) to the queue named dest,
 * or, when dest is NULL, to the queue it came from; the new copy
 * remembers `origin`. A message that cannot move goes back to src. The
 * copy is written before the deletion from src, so a crash in between
 * leaves it twice, never nowhere. */
static void queue_move_list(struct queue *src, struct qmsg *list, const char *dest,
                            const char *origin)
{
    struct qbroker *b = src->broker;
    struct qmsg *m, *next;
    for (m = list; m; m = next) {
        next = m->next;
        m->next = m->prev = NULL;
        const char *to = dest ? dest : m->origin;
        struct queue *dq = to ? qbroker_find(b, to) : NULL;
        uint64_t old_seq = m->seq, old_seg = m->seg, pos, seg;
        int rc = dq && dq != src ? queue_adopt(dq, m, origin) : -ENOENT;
        queue_put(dq);
        pthread_mutex_lock(&src->mu);
        if (rc == 0) {
            struct qlog_record rec = { .type = QLOG_DELETE, .queue_id = src->id, .seq = old_seq };
            if (qlog_append(b->log, &rec, &pos, &seg) < 0)
                log_warn("queues: %s: moving a message, its deletion could not be written; it "
                         "may come back after a restart", src->name);
            qlog_seg_release(b->log, old_seg);
            if (origin)
                queue_metrics_dead_lettered(src, 1);
        } else {
            /* no such queue (deleted?), or it failed: the message stays and is delivered */
            m->visible_ms = 0;
            m->dead_failed = dest != NULL;
            if (queue_link(src, m, queue_now_ms()) < 0) {
                qlog_seg_release(b->log, m->seg);
                qmsg_free(m);
            }
        }
        pthread_mutex_unlock(&src->mu);
    }
    qlog_sync_all(b->log);
}

int queue_redrive(struct queue *src, const char *dest, size_t *moved)
{
    struct qmsg *list = NULL;
    size_t n = 0;
    pthread_mutex_lock(&src->mu);
    if (src->deleted) {
        pthread_mutex_unlock(&src->mu);
        return -ENOENT;
    }
    queue_promote(src, queue_now_ms());
    while (src->ready_head) {
        queue_take(src, src->ready_head, &list);
        n++;
    }
    pthread_mutex_unlock(&src->mu);
    /* list is newest first: reverse it so the order is kept */
    struct qmsg *rev = NULL;
    while (list) {
        struct qmsg *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    queue_move_list(src, rev, dest, NULL);
    *moved = n;
    return 0;
}

/* The message a receipt of q names, lock held: 0 with *m (NULL when it is
 * gone), or -EINVAL. */
static int queue_by_receipt(struct queue *q, const char *receipt, struct qmsg **m,
                            uint32_t *nonce)
{
    uint64_t qid, seq;
    if (queue_receipt_parse(receipt, &qid, &seq, nonce) < 0 || qid != q->id)
        return -EINVAL;
    *m = queue_table_find(q, seq);
    return 0;
}

int queue_delete_msg(struct queue *q, const char *receipt, uint64_t *pos)
{
    struct qmsg *m;
    uint32_t nonce;
    uint64_t seg;

    *pos = 0;
    pthread_mutex_lock(&q->mu);
    int rc = q->deleted ? -ENOENT : queue_by_receipt(q, receipt, &m, &nonce);
    if (rc == 0 && m != NULL) {
        struct qlog_record rec = { .type = QLOG_DELETE, .queue_id = q->id, .seq = m->seq };
        rc = qlog_append(q->broker->log, &rec, pos, &seg);
        int unlocks = rc == 0 && m->grp && m->inflight && m->grp->inflight == 1;
        if (rc == 0) {
            queue_unlink(q, m);
            queue_metrics_deleted(q, 1);
        }
        if (unlocks && queue_receivable(q))
            queue_wake(q, 1); /* its FIFO group may go on */
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int queue_change_visibility(struct queue *q, const char *receipt, uint32_t timeout_s)
{
    struct qmsg *m;
    uint32_t nonce;
    uint64_t now = queue_now_ms();

    pthread_mutex_lock(&q->mu);
    int rc = q->deleted ? -ENOENT : queue_by_receipt(q, receipt, &m, &nonce);
    if (rc == 0 && (m == NULL || m->heap_idx == QUEUE_NOT_IN_HEAP || m->nonce != nonce ||
                    m->receive_count == 0 || m->visible_ms <= now))
        rc = -ESRCH;
    if (rc == 0) {
        m->visible_ms = now + (uint64_t)timeout_s * 1000;
        queue_heap_up(q, m->heap_idx);
        queue_heap_down(q, m->heap_idx);
        if (timeout_s == 0 && queue_promote(q, now))
            queue_wake(q, 1);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int queue_purge(struct queue *q, uint64_t *pos)
{
    uint64_t seg;
    *pos = 0;
    pthread_mutex_lock(&q->mu);
    struct qlog_record rec = { .type = QLOG_PURGE, .queue_id = q->id,
                               .seq = atomic_load(&q->broker->next_seq) };
    int rc = q->deleted ? -ENOENT : qlog_append(q->broker->log, &rec, pos, &seg);
    if (rc == 0)
        queue_clear(q);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void queue_counts(struct queue *q, size_t *visible, size_t *inflight, size_t *delayed)
{
    pthread_mutex_lock(&q->mu);
    queue_promote(q, queue_now_ms());
    *delayed = q->n_delayed;
    *inflight = q->n_heap - q->n_delayed;
    *visible = q->n_msgs - q->n_heap;
    pthread_mutex_unlock(&q->mu);
}

int queue_wait(struct queue *q, struct queue_waiter *w)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->deleted) {
        rc = -ENOENT;
    } else if (queue_promote(q, queue_now_ms()) && queue_receivable(q)) {
        rc = 1;
    } else if (!w->listed) {
        w->prev = q->waiters.prev;
        w->next = &q->waiters;
        w->prev->next = w;
        q->waiters.prev = w;
        w->listed = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void queue_unwait(struct queue *q, struct queue_waiter *w)
{
    pthread_mutex_lock(&q->mu);
    if (w->listed) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->listed = 0;
    }
    pthread_mutex_unlock(&q->mu);
}

/* ---- the broker: queue list and its file ---- */

static json_t *queue_attrs_json(struct queue *q)
{
    const struct queue_attrs *a = &q->attrs;
    pthread_mutex_lock(&q->mu);
    json_t *tags = json_deep_copy(q->tags);
    pthread_mutex_unlock(&q->mu);
    return json_pack("{s:I, s:s, s:b, s:I, s:I, s:o, s:{s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:b, s:b, "
                     "s:i, s:s, s:s}}",
                     "id", (json_int_t)q->id, "name", q->name, "from_config", q->from_config,
                     "created_ms", (json_int_t)q->created_ms, "modified_ms",
                     (json_int_t)q->modified_ms, "tags", tags ? tags : json_object(), "attributes", "visibility_timeout_s",
                     (int)a->visibility_timeout_s, "delay_s", (int)a->delay_s, "retention_s",
                     (int)a->retention_s, "max_message_bytes", (int)a->max_message_bytes,
                     "receive_wait_s", (int)a->receive_wait_s, "fsync",
                     queue_fsync_names[a->fsync], "fsync_every_ms", (int)a->fsync_every_ms,
                     "fifo", a->fifo, "content_dedup", a->content_dedup, "max_receives",
                     (int)a->max_receives, "dead_letter", a->dead_letter, "store", a->store);
}

/* Writes DIR/queues.json: temporary file, fsync, rename, fsync of the
 * directory. Broker lock held. */
static int qbroker_write_meta(struct qbroker *b)
{
    json_t *list = json_array(), *root = json_pack("{s:I, s:o}", "next_queue_id",
                                                   (json_int_t)b->next_queue_id, "queues", list);
    char tmp[4096], path[4096];
    int rc = root ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < b->n_queues; i++)
        if (json_array_append_new(list, queue_attrs_json(b->queues[i])) < 0)
            rc = -ENOMEM;
    snprintf(tmp, sizeof(tmp), "%s/" QUEUE_META ".tmp", b->dir);
    snprintf(path, sizeof(path), "%s/" QUEUE_META, b->dir);
    char *text = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL)
        return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text), done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0 && !(n == -1 && errno == EINTR))
            break;
        if (n > 0)
            done += (size_t)n;
    }
    free(text);
    if (fd < 0 || done < len || fsync(fd) == -1 || rename(tmp, path) == -1 ||
        fsync(b->log->dir_fd) == -1)
        rc = errno ? -errno : -EIO;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        log_error("queues: cannot write %s: %s", path, strerror(-rc));
    return rc;
}

static int qbroker_add(struct qbroker *b, struct queue *q)
{
    if (b->n_queues == b->cap_queues) {
        size_t cap = b->cap_queues ? b->cap_queues * 2 : 16;
        struct queue **a = realloc(b->queues, cap * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        b->queues = a;
        b->cap_queues = cap;
    }
    b->queues[b->n_queues++] = q;
    return 0;
}

static struct queue *qbroker_find_locked(struct qbroker *b, const char *name)
{
    for (size_t i = 0; i < b->n_queues; i++)
        if (strcmp(b->queues[i]->name, name) == 0)
            return b->queues[i];
    return NULL;
}

static struct queue *qbroker_find_id(struct qbroker *b, uint64_t id)
{
    for (size_t i = 0; i < b->n_queues; i++)
        if (b->queues[i]->id == id)
            return b->queues[i];
    return NULL;
}

struct queue *qbroker_find(struct qbroker *b, const char *name)
{
    pthread_mutex_lock(&b->mu);
    struct queue *q = qbroker_find_locked(b, name);
    if (q)
        queue_get(q);
    pthread_mutex_unlock(&b->mu);
    return q;
}

static int queue_attrs_same(const struct queue_attrs *a, const struct queue_attrs *b)
{
    return a->visibility_timeout_s == b->visibility_timeout_s && a->delay_s == b->delay_s &&
           a->retention_s == b->retention_s && a->max_message_bytes == b->max_message_bytes &&
           a->receive_wait_s == b->receive_wait_s && a->fifo == b->fifo &&
           a->content_dedup == b->content_dedup && a->max_receives == b->max_receives &&
           strcmp(a->dead_letter, b->dead_letter) == 0 && strcmp(a->store, b->store) == 0;
}

int qbroker_create(struct qbroker *b, const char *name, const struct queue_attrs *attrs,
                   struct queue **out)
{
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    struct queue *q = qbroker_find_locked(b, name);
    if (q) {
        queue_get(q);
        *out = q;
        rc = queue_attrs_same(&q->attrs, attrs) ? 0 : -EEXIST;
        goto out;
    }
    if ((q = queue_new(b, b->next_queue_id++, name, attrs)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = qbroker_add(b, q)) < 0) {
        queue_put(q);
        goto out;
    }
    if ((rc = qbroker_write_meta(b)) < 0) {
        b->n_queues--; /* q is the last one */
        queue_put(q);
        goto out;
    }
    queue_get(q);
    *out = q;
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int qbroker_delete(struct qbroker *b, struct queue *q)
{
    pthread_mutex_lock(&b->mu);
    size_t i = 0;
    while (i < b->n_queues && b->queues[i] != q)
        i++;
    if (i == b->n_queues) {
        pthread_mutex_unlock(&b->mu);
        return -ENOENT;
    }
    memmove(b->queues + i, b->queues + i + 1, (b->n_queues - i - 1) * sizeof(*b->queues));
    b->n_queues--;
    int rc = qbroker_write_meta(b);
    if (rc < 0) {
        qbroker_add(b, q); /* still listed on disk: keep it (the slot was just freed) */
        pthread_mutex_unlock(&b->mu);
        return rc;
    }
    pthread_mutex_unlock(&b->mu);
    pthread_mutex_lock(&q->mu);
    q->deleted = 1;
    queue_clear(q);
    queue_wake(q, SIZE_MAX);
    pthread_mutex_unlock(&q->mu);
    queue_put(q); /* the broker's reference */
    return 0;
}

int qbroker_save(struct qbroker *b)
{
    pthread_mutex_lock(&b->mu);
    int rc = qbroker_write_meta(b);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int qbroker_cmp_name(const void *x, const void *y)
{
    return strcmp((*(struct queue *const *)x)->name, (*(struct queue *const *)y)->name);
}

void qbroker_each(struct qbroker *b, const char *prefix, void (*fn)(void *arg, struct queue *q),
                  void *arg)
{
    size_t plen = prefix ? strlen(prefix) : 0, n = 0;
    pthread_mutex_lock(&b->mu);
    struct queue **list = malloc((b->n_queues + 1) * sizeof(*list));
    for (size_t i = 0; list && i < b->n_queues; i++)
        if (strncmp(b->queues[i]->name, prefix ? prefix : "", plen) == 0) {
            queue_get(b->queues[i]);
            list[n++] = b->queues[i];
        }
    pthread_mutex_unlock(&b->mu);
    if (list == NULL)
        return;
    qsort(list, n, sizeof(*list), qbroker_cmp_name);
    for (size_t i = 0; i < n; i++) {
        fn(arg, list[i]);
        queue_put(list[i]);
    }
    free(list);
}

/* ---- opening: the queue file, the log ---- */

static int qbroker_load_queue(struct qbroker *b, json_t *j)
{
    struct queue_attrs a = queue_attrs_default;
    json_int_t id = 0, created = 0, modified = 0;
    const char *name = NULL, *fsync = "always", *dlq = "", *store = "";
    int from_config = 0, vis, delay, ret, max, wait, every, fifo = 0, dedup = 0, max_recv = 0;
    if (json_unpack(j, "{s:I, s:s, s?b, s?I, s?I, s:{s:i, s:i, s:i, s:i, s:i, s?s, s:i, s?b, s?b, "
                    "s?i, s?s, s?s}}",
                    "id", &id, "name", &name, "from_config", &from_config, "created_ms", &created,
                    "modified_ms", &modified, "attributes", "visibility_timeout_s", &vis, "delay_s",
                    &delay, "retention_s", &ret, "max_message_bytes", &max, "receive_wait_s",
                    &wait, "fsync", &fsync, "fsync_every_ms", &every, "fifo", &fifo,
                    "content_dedup", &dedup, "max_receives", &max_recv, "dead_letter", &dlq, "store", &store) < 0)
        return -EINVAL;
    snprintf(a.store, sizeof(a.store), "%s", store);
    a.max_receives = (uint32_t)max_recv;
    snprintf(a.dead_letter, sizeof(a.dead_letter), "%s", dlq);
    a.visibility_timeout_s = (uint32_t)vis;
    a.delay_s = (uint32_t)delay;
    a.retention_s = (uint32_t)ret;
    a.max_message_bytes = (uint32_t)max;
    a.receive_wait_s = (uint32_t)wait;
    a.fsync_every_ms = (uint32_t)every;
    a.fifo = (uint32_t)fifo;
    a.content_dedup = (uint32_t)dedup;
    for (int f = 0; f < QUEUE_FSYNC_COUNT; f++)
        if (strcmp(fsync, queue_fsync_names[f]) == 0)
            a.fsync = (enum queue_fsync)f;
    struct queue *q = queue_new(b, (uint64_t)id, name, &a);
    if (q == NULL)
        return -ENOMEM;
    q->from_config = from_config;
    json_t *tags = json_object_get(j, "tags");
    if (json_is_object(tags))
        json_object_update(q->tags, tags);
    q->created_ms = (uint64_t)created;
    q->modified_ms = (uint64_t)modified;
    if (qbroker_add(b, q) < 0) {
        queue_put(q);
        return -ENOMEM;
    }
    return 0;
}

static int qbroker_load_meta(struct qbroker *b, char *err, size_t err_size)
{
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof(path), "%s/" QUEUE_META, b->dir);
    if (access(path, F_OK) != 0)
        return 0;
    json_t *root = json_load_file(path, 0, &jerr), *list;
    json_int_t next = 1;
    size_t i;
    json_t *item;
    if (root == NULL || json_unpack(root, "{s:I, s:o}", "next_queue_id", &next, "queues",
                                    &list) < 0 || !json_is_array(list)) {
        snprintf(err, err_size, "%s: not a weir queue list (%s)", path, jerr.text);
        json_decref(root);
        return -EINVAL;
    }
    b->next_queue_id = (uint64_t)next;
    json_array_foreach(list, i, item)
    {
        if (qbroker_load_queue(b, item) < 0) {
            snprintf(err, err_size, "%s: queue %zu is not valid", path, i);
            json_decref(root);
            return -EINVAL;
        }
    }
    json_decref(root);
    return 0;
}

/* Replay: one record. */
static void qbroker_replay_one(void *arg, const struct qlog_record *rec, uint64_t seg)
{
    struct qbroker *b = arg;
    struct queue *q = qbroker_find_id(b, rec->queue_id);
    uint64_t now = queue_now_ms();
    if (rec->seq >= b->next_seq)
        b->next_seq = rec->seq + 1;
    if (q == NULL)
        return;
    if (rec->type == QLOG_DELETE) {
        struct qmsg *m = queue_table_find(q, rec->seq);
        if (m)
            queue_unlink(q, m);
        return;
    }
    if (rec->type == QLOG_PURGE) {
        for (size_t i = 0; i < q->cap_table; i++)
            for (struct qmsg *m = q->table[i], *next; m; m = next) {
                next = m->hnext;
                if (m->seq <= rec->seq)
                    queue_unlink(q, m);
            }
        return;
    }
    if (rec->sent_ms + (uint64_t)q->attrs.retention_s * 1000 <= now ||
        rec->id.len != QUEUE_ID_LEN)
        return;
    struct qmsg *m = qmsg_new(rec->body.p, rec->body.len, rec->attrs.p, rec->attrs.len);
    if (m == NULL)
        return; /* counted nowhere: the segment may go; logged by the caller's totals */
    m->seq = rec->seq;
    m->seg = seg;
    m->sent_ms = rec->sent_ms;
    m->visible_ms = rec->visible_ms;
    memcpy(m->id, rec->id.p, QUEUE_ID_LEN);
    if ((rec->origin.len && (m->origin = strndup(rec->origin.p, rec->origin.len)) == NULL) ||
        (rec->group.len && (m->group = strndup(rec->group.p, rec->group.len)) == NULL) ||
        (rec->dedup.len && (m->dedup_id = strndup(rec->dedup.p, rec->dedup.len)) == NULL)) {
        qmsg_free(m);
        return;
    }
    if (q->fifo && m->dedup_id && rec->sent_ms + QFIFO_DEDUP_WINDOW_MS > now)
        qfifo_dedup_add(q->fifo, m->dedup_id, m->id, m->seq, rec->sent_ms);
    if (m->attrs) {
        json_t *j = json_loadb(m->attrs, m->attrs_len, 0, NULL);
        if (j == NULL || qmd5_attrs(j, m->md5_attrs) < 0)
            m->md5_attrs[0] = 0;
        json_decref(j);
    }
    qlog_seg_hold(b->log, seg);
    if (queue_link(q, m, now) < 0) {
        qlog_seg_release(b->log, seg);
        qmsg_free(m);
    }
}

static void *qbroker_thread(void *arg);

int qbroker_open(const char *data_dir, struct qbroker **out, char *err, size_t err_size)
{
    struct qbroker *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->dir = strdup(data_dir)) == NULL) {
        free(b);
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->thread_mu, NULL);
    pthread_cond_init(&b->thread_cond, NULL);
    b->next_queue_id = 1;
    if (getrandom(&b->id_salt, sizeof(b->id_salt), 0) != sizeof(b->id_salt))
        b->id_salt = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b->next_seq = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    int rc = qlog_open(data_dir, 0, &b->log, err, err_size);
    if (rc == 0)
        rc = qbroker_load_meta(b, err, err_size);
    if (rc == 0)
        rc = qlog_replay(b->log, qbroker_replay_one, b, err, err_size);
    if (rc == 0 && (rc = -pthread_create(&b->thread, NULL, qbroker_thread, b)) < 0)
        snprintf(err, err_size, "cannot start the queue thread: %s", strerror(-rc));
    if (rc < 0) {
        qbroker_close(b);
        return rc;
    }
    b->thread_running = 1;
    size_t total = 0;
    for (size_t i = 0; i < b->n_queues; i++)
        total += b->queues[i]->n_msgs;
    log_info("queues: %s: %zu queue(s), %zu message(s) replayed", data_dir, b->n_queues, total);
    *out = b;
    return 0;
}

/* Gives q the settings of its `queues:` entry; returns whether they
 * changed (the queue list must then be saved). */
static int qbroker_apply_cfg(struct queue *q, const struct cfg_queue *cq)
{
    pthread_mutex_lock(&q->mu);
    int changed = !q->from_config || !queue_attrs_same(&q->attrs, &cq->attrs) ||
                  q->attrs.fsync != cq->attrs.fsync ||
                  q->attrs.fsync_every_ms != cq->attrs.fsync_every_ms;
    if (changed) {
        q->attrs = cq->attrs;
        q->from_config = 1;
        q->modified_ms = queue_now_ms();
    }
    pthread_mutex_unlock(&q->mu);
    return changed;
}

int qbroker_configure(struct qbroker *b, const struct cfg *cfg, char *err, size_t err_size)
{
    int changed = 0;
    for (size_t i = 0; i < cfg->n_queues; i++) {
        const struct cfg_queue *cq = &cfg->queues[i];
        struct queue *q = NULL;
        int rc = qbroker_create(b, cq->name, &cq->attrs, &q);
        if (rc < 0 && rc != -EEXIST) {
            snprintf(err, err_size, "queue %s: %s", cq->name, strerror(-rc));
            return rc;
        }
        changed |= qbroker_apply_cfg(q, cq);
        queue_put(q);
    }
    /* unchanged settings are not written again: a full disk does not stop a restart */
    int rc = changed ? qbroker_save(b) : 0;
    if (rc < 0)
        snprintf(err, err_size, "cannot save the queue list in %s: %s", b->dir, strerror(-rc));
    return rc;
}

/* ---- the background thread ---- */

/* The tick: the shortest interval fsync, at most QUEUE_TICK_MS; sets
 * *sync when a queue asks for interval syncs. */
static uint64_t qbroker_tick(struct qbroker *b, int *sync)
{
    uint64_t tick = QUEUE_TICK_MS;
    *sync = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_queues; i++)
        if (b->queues[i]->attrs.fsync == QUEUE_FSYNC_INTERVAL) {
            *sync = 1;
            if (b->queues[i]->attrs.fsync_every_ms < tick)
                tick = b->queues[i]->attrs.fsync_every_ms ? b->queues[i]->attrs.fsync_every_ms : 1;
        }
    pthread_mutex_unlock(&b->mu);
    return tick;
}

static void qbroker_sweep_one(void *arg, struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->attrs.store[0]) /* kept in Redis: long polls look again every tick */
        queue_wake(q, SIZE_MAX);
    if (!q->deleted && queue_promote(q, queue_now_ms()) && queue_receivable(q))
        queue_wake(q, q->n_msgs - q->n_heap);
    pthread_mutex_unlock(&q->mu);
}

static void *qbroker_thread(void *arg)
{
    struct qbroker *b = arg;
    uint64_t last_sweep = 0;
    pthread_mutex_lock(&b->thread_mu);
    while (!b->thread_stop) {
        int sync;
        uint64_t tick = qbroker_tick(b, &sync);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + tick * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&b->thread_cond, &b->thread_mu, &ts);
        if (b->thread_stop)
            break;
        pthread_mutex_unlock(&b->thread_mu);
        if (sync)
            qlog_sync_all(b->log);
        uint64_t now = queue_now_ms();
        if (now - last_sweep >= QUEUE_TICK_MS) {
            last_sweep = now;
            qbroker_each(b, NULL, qbroker_sweep_one, NULL);
        }
        pthread_mutex_lock(&b->thread_mu);
    }
    pthread_mutex_unlock(&b->thread_mu);
    return NULL;
}

void qbroker_close(struct qbroker *b)
{
    if (b == NULL)
        return;
    if (b->thread_running) {
        pthread_mutex_lock(&b->thread_mu);
        b->thread_stop = 1;
        pthread_cond_signal(&b->thread_cond);
        pthread_mutex_unlock(&b->thread_mu);
        pthread_join(b->thread, NULL);
    }
    for (size_t i = 0; i < b->n_queues; i++)
        queue_put(b->queues[i]);
    free(b->queues);
    qlog_close(b->log);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->thread_mu);
    pthread_cond_destroy(&b->thread_cond);
    free(b->dir);
    free(b);
}

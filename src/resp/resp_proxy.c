/* resp_proxy: Redis client sessions on a protocol redis listener.
 *
 *   client --read--> in --resp_parse (request)--> command --route--> conn.out (resp_backend)
 *                                                  |  `--weir answers it: reply now
 *                                                  `--msg appended to the session's queue
 *   client <-write-- out <--replies in queue order-- msg.reply (chunks) <-- conn
 *
 * A session is driven like an HTTP client session (http/proxy.c): event
 * callbacks record readiness and call resp_session_pump(), which reads,
 * dispatches every complete command in the input buffer (a pipeline is
 * split over shards as it comes), moves the replies that are ready, in
 * order, into the output buffer and writes it. Requests queued on backend
 * connections are written once per event-loop round (an ev_prepare
 * watcher), so many clients' commands leave in one write per connection.
 *
 * A command with keys on several shards is either split into one fragment
 * per key (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH; keyspace commands fan
 * out per shard) and the fragments' replies merged, or, for commands whose
 * keys must be together, refused with -CROSSSHARD: never a wrong answer.
 *
 * A session is freed in one place, at the end of its pump. Its in-flight
 * msgs become orphans whose replies are dropped when they arrive. Buffers
 * are held only while they hold bytes. A framing error gets
 * "-ERR Protocol error: ..." and the connection is closed after it, with
 * nothing of the bad command sent to any backend. */
#include "resp/resp_proxy.h"

#include <errno.h>
#include <stdatomic.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "resp/resp_backend.h"
#include "resp/resp_clients.h"
#include "resp/resp_cmd.h"
#include "resp/resp_info.h"
#include "resp/resp_pubsub.h"
#include "resp/resp_redirect.h"
#include "resp/resp_session.h"

#define RESP_MAX_PENDING 1024      /* commands a session may have in flight */
#define RESP_PUMP_ROUNDS 32
#define RESP_FREE_MSGS 4096
#define RESP_FREE_CHUNKS 1024
#define RESP_FREE_SESSIONS 1024
#define RESP_VERSION "7.0.15"      /* the Redis version weir presents (HELLO, INFO) */

static _Atomic uint64_t resp_next_client_id; /* CLIENT ID, unique over all workers */

/* Command times use the worker loop's time (ev_now: read when the loop
 * woke, no clock call): from the wake-up that read the command to the one
 * that wrote its reply. */
static ev_tstamp resp_loop_now(const struct resp_wctx *rw)
{
    return ev_now(rw->wc->worker.loop);
}

/* ---- free lists ---- */

struct resp_chunk *resp_chunk_get(struct resp_wctx *rw)
{
    struct resp_chunk *c = rw->free_chunks;
    if (c) {
        rw->free_chunks = c->next;
        rw->n_free_chunks--;
    } else if (!(c = malloc(sizeof(*c)))) {
        return NULL;
    }
    c->next = NULL;
    c->pos = c->len = 0;
    return c;
}

void resp_chunk_put(struct resp_wctx *rw, struct resp_chunk *c)
{
    if (rw->n_free_chunks >= RESP_FREE_CHUNKS) {
        free(c);
        return;
    }
    c->next = rw->free_chunks;
    rw->free_chunks = c;
    rw->n_free_chunks++;
}

void resp_chunks_free(struct resp_wctx *rw, struct resp_chunk *head)
{
    while (head) {
        struct resp_chunk *next = head->next;
        resp_chunk_put(rw, head);
        head = next;
    }
}

struct resp_msg *resp_msg_get(struct resp_wctx *rw)
{
    struct resp_msg *m = rw->free_msgs;
    if (m) {
        rw->free_msgs = m->next;
        rw->n_free_msgs--;
    } else if (!(m = malloc(sizeof(*m)))) {
        return NULL;
    }
    memset(m, 0, sizeof(*m));
    return m;
}

void resp_msg_put(struct resp_wctx *rw, struct resp_msg *m)
{
    resp_chunks_free(rw, m->rhead);
    free(m->req);
    struct resp_msg *f = m->frags;
    while (f) { /* fragments still waiting on a backend stay there as orphans */
        struct resp_msg *next = f->next;
        f->parent = NULL;
        f->s = NULL;
        if (!f->in_backend)
            resp_msg_put(rw, f);
        f = next;
    }
    if (rw->n_free_msgs >= RESP_FREE_MSGS) {
        free(m);
        return;
    }
    m->next = rw->free_msgs;
    rw->free_msgs = m;
    rw->n_free_msgs++;
}

/* ---- replies ---- */

static void resp_session_mark(struct resp_session *s)
{
    if (!s || s->in_dirty)
        return;
    s->in_dirty = 1;
    s->dirty_next = s->rw->dirty;
    s->rw->dirty = s;
}

void resp_session_wake(struct resp_session *s)
{
    resp_session_mark(s);
}

void resp_session_pushed(struct resp_session *s, struct resp_msg *m)
{
    resp_pubsub_push(s, m);
}

void resp_session_lost(struct resp_session *s)
{
    s->ps.lost = 1;
    s->closing = 1;
    resp_session_mark(s);
}

void resp_session_blocked(struct resp_session *s, int delta)
{
    atomic_fetch_add_explicit(&s->cl.blocked, delta, memory_order_relaxed);
}

/* The shared connection to srv for s's protocol (RESP3 clients have their
 * own, so replies pass on unchanged). */
struct resp_conn *resp_session_srv_conn(const struct resp_session *s, struct resp_server *srv)
{
    return s->proto == 3 ? resp_server_conn3(srv) : resp_server_conn(srv);
}

int resp_msg_append(struct resp_wctx *rw, struct resp_msg *m, const char *data, size_t len)
{
    while (len > 0) {
        struct resp_chunk *t = m->rtail;
        if (!t || t->len == RESP_CHUNK_DATA) {
            if (!(t = resp_chunk_get(rw)))
                return -ENOMEM;
            if (m->rtail)
                m->rtail->next = t;
            else
                m->rhead = t;
            m->rtail = t;
        }
        size_t n = RESP_CHUNK_DATA - t->len;
        if (n > len)
            n = len;
        memcpy(t->data + t->len, data, n);
        t->len += (uint32_t)n;
        data += n;
        len -= n;
    }
    return 0;
}

static int resp_append_fmt(struct resp_wctx *rw, struct resp_msg *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int resp_append_fmt(struct resp_wctx *rw, struct resp_msg *m, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    return resp_msg_append(rw, m, tmp, (size_t)n);
}

/* Appends a bulk string. */
static int resp_append_bulk(struct resp_wctx *rw, struct resp_msg *m, const char *p, size_t n)
{
    if (resp_append_fmt(rw, m, "$%zu\r\n", n) < 0 || resp_msg_append(rw, m, p, n) < 0)
        return -ENOMEM;
    return resp_msg_append(rw, m, "\r\n", 2);
}

/* A null: "$-1" in RESP2, "_" in RESP3 (proto). */
static void resp_append_null(struct resp_wctx *rw, struct resp_msg *m, int proto)
{
    if (proto == 3)
        resp_msg_append(rw, m, "_\r\n", 3);
    else
        resp_msg_append(rw, m, "$-1\r\n", 5);
}

/* A text reply: a bulk string in RESP2, a verbatim "txt" one in RESP3. */
static int resp_append_text(struct resp_wctx *rw, struct resp_msg *m, int proto, const char *p,
                            size_t n)
{
    if (proto != 3)
        return resp_append_bulk(rw, m, p, n);
    if (resp_append_fmt(rw, m, "=%zu\r\ntxt:", n + 4) < 0 || resp_msg_append(rw, m, p, n) < 0)
        return -ENOMEM;
    return resp_msg_append(rw, m, "\r\n", 2);
}

/* Skips n bytes at the start of m's reply. */
static void resp_reply_skip(struct resp_wctx *rw, struct resp_msg *m, size_t n)
{
    while (n > 0 && m->rhead) {
        struct resp_chunk *k = m->rhead;
        size_t avail = k->len - k->pos;
        if (n < avail) {
            k->pos += (uint32_t)n;
            return;
        }
        n -= avail;
        m->rhead = k->next;
        if (!m->rhead)
            m->rtail = NULL;
        resp_chunk_put(rw, k);
    }
}

/* Moves f's reply chunks to the end of m's. */
static void resp_reply_move(struct resp_msg *m, struct resp_msg *f)
{
    if (!f->rhead)
        return;
    if (m->rtail)
        m->rtail->next = f->rhead;
    else
        m->rhead = f->rhead;
    m->rtail = f->rtail;
    f->rhead = f->rtail = NULL;
}

static size_t resp_digits(int64_t v)
{
    char tmp[24];
    return (size_t)snprintf(tmp, sizeof(tmp), "%" PRId64, v);
}

/* SCAN cursors: the shard in the top bits, the shard's own cursor below. */
#define RESP_SCAN_SHARD_SHIFT 52
#define RESP_SCAN_CURSOR_MASK ((UINT64_C(1) << RESP_SCAN_SHARD_SHIFT) - 1)

/* Copies up to size - 1 bytes from the start of m's reply, NUL-terminated. */
static size_t resp_reply_peek(const struct resp_msg *m, char *out, size_t size)
{
    size_t len = 0;
    for (const struct resp_chunk *k = m->rhead; k && len < size - 1; k = k->next) {
        size_t n = k->len - k->pos;
        if (n > size - 1 - len)
            n = size - 1 - len;
        memcpy(out + len, k->data + k->pos, n);
        len += n;
    }
    out[len] = 0;
    return len;
}

/* SCAN: the shard's reply "*2 $n cursor *k keys..." with its cursor made
 * global (m->shard: the shard asked, m->route: the cluster's shard count);
 * at the end of a shard the cursor moves to the start of the next one. */
static void resp_merge_scan(struct resp_wctx *rw, struct resp_msg *m)
{
    struct resp_msg *f = m->frags;
    char head[64], *end;
    if (f->reply_type == '-') {
        resp_reply_move(m, f);
        m->reply_type = '-';
        return;
    }
    resp_reply_peek(f, head, sizeof(head));
    unsigned long long len = 0;
    const char *p = head + 5;
    if (f->reply_type != '*' || f->value != 2 || strncmp(head, "*2\r\n$", 5) != 0 ||
        (len = strtoull(p, &end, 10)) == 0 || len > 20 || strncmp(end, "\r\n", 2) != 0 ||
        (size_t)(end + 2 - head) + len + 2 > sizeof(head) - 1) {
        resp_msg_append(rw, m, "-ERR weir: unexpected reply from a shard\r\n", 42);
        m->reply_type = '-';
        return;
    }
    p = end + 2;
    char num[24];
    memcpy(num, p, len);
    num[len] = 0;
    uint64_t sc = strtoull(num, &end, 10);
    if (*end || sc > RESP_SCAN_CURSOR_MASK) {
        resp_append_fmt(rw, m, "-ERR weir: the SCAN cursor of shard %u does not fit in %d "
                        "bits\r\n", m->shard, RESP_SCAN_SHARD_SHIFT);
        m->reply_type = '-';
        return;
    }
    uint64_t next = (uint64_t)m->shard << RESP_SCAN_SHARD_SHIFT | sc;
    if (sc == 0)
        next = m->shard + 1 < m->route ? (uint64_t)(m->shard + 1) << RESP_SCAN_SHARD_SHIFT : 0;
    snprintf(num, sizeof(num), "%" PRIu64, next);
    resp_append_fmt(rw, m, "*2\r\n$%zu\r\n%s\r\n", strlen(num), num);
    resp_reply_skip(rw, f, (size_t)(p - head) + len + 2);
    resp_reply_move(m, f);
    m->reply_type = '*';
    m->value = 2;
}

/* RANDOMKEY: the key of a random shard that returned one; nil when none
 * did; an error only when no shard answered with a key or nil. */
static void resp_merge_random(struct resp_wctx *rw, struct resp_msg *m)
{
    uint32_t n_keys = 0, n_nil = 0;
    struct resp_msg *f, *err = NULL;
    for (f = m->frags; f; f = f->next) {
        if (f->reply_type == '$' && f->value >= 0)
            n_keys++;
        else if (f->reply_type == '$' || f->reply_type == '_')
            n_nil++;
        else if (!err)
            err = f;
    }
    if (n_keys > 0) {
        uint32_t pick = (uint32_t)random() % n_keys;
        for (f = m->frags; f; f = f->next)
            if (f->reply_type == '$' && f->value >= 0 && pick-- == 0)
                break;
        resp_reply_move(m, f);
        m->reply_type = '$';
        m->value = f->value;
    } else if (n_nil > 0 || !err) {
        int proto = m->s ? m->s->proto : 2;
        resp_append_null(rw, m, proto);
        m->reply_type = proto == 3 ? '_' : '$';
        m->value = -1;
    } else {
        if (err->reply_type == '-')
            resp_reply_move(m, err);
        else
            resp_msg_append(rw, m, "-ERR weir: unexpected reply from a shard\r\n", 42);
        m->reply_type = '-';
    }
}

static void resp_info_reply(struct resp_wctx *rw, struct resp_msg *m,
                            const struct resp_info_shards *sh);

/* Copies m's reply into one heap block (*len bytes); NULL when out of memory. */
static char *resp_reply_copy(const struct resp_msg *m, size_t *len)
{
    size_t n = 0;
    for (const struct resp_chunk *k = m->rhead; k; k = k->next)
        n += k->len - k->pos;
    char *out = malloc(n ? n : 1);
    if (!out)
        return NULL;
    *len = 0;
    for (const struct resp_chunk *k = m->rhead; k; k = k->next) {
        memcpy(out + *len, k->data + k->pos, k->len - k->pos);
        *len += k->len - k->pos;
    }
    return out;
}

/* INFO: each primary's INFO text (a bulk string) added up into weir's. */
static void resp_merge_info(struct resp_wctx *rw, struct resp_msg *m)
{
    struct resp_info_shards sh;
    memset(&sh, 0, sizeof(sh));
    for (struct resp_msg *f = m->frags; f; f = f->next) {
        size_t len;
        char *text;
        sh.asked++;
        if ((f->reply_type != '$' && f->reply_type != '=') || f->value <= 0 ||
            !(text = resp_reply_copy(f, &len)))
            continue;
        const char *body = memchr(text, '\n', len);
        size_t n = (size_t)f->value, skip = f->reply_type == '=' ? 4 : 0; /* "txt:" */
        if (body && n >= skip && (size_t)(++body - text) + n <= len)
            resp_info_add_shard(&sh, body + skip, n - skip);
        free(text);
    }
    resp_info_reply(rw, m, &sh);
}

/* The value weir itself decides for a configuration parameter, or NULL. */
static const char *resp_config_own(const struct resp_session *s, const char *name, size_t len,
                                   char *buf, size_t size)
{
    if (len == 9 && strncasecmp(name, "databases", 9) == 0)
        return "1";
    if (len == 15 && strncasecmp(name, "cluster-enabled", 15) == 0)
        return "no";
    if (len == 10 && strncasecmp(name, "maxclients", 10) == 0) {
        snprintf(buf, size, "%" PRIu64, (uint64_t)s->lst->max_connections * s->snap->cfg->workers);
        return buf;
    }
    return NULL;
}

/* CONFIG GET: the primary's name / value pairs, with weir's own values of
 * the parameters weir decides (databases, cluster-enabled, maxclients). */
static void resp_merge_config(struct resp_wctx *rw, struct resp_msg *m)
{
    struct resp_msg *f = m->frags;
    size_t len;
    char *text;
    int map = f->reply_type == '%'; /* RESP3: N pairs */
    if ((f->reply_type != '*' && !map) || f->value < 0 || !m->s ||
        !(text = resp_reply_copy(f, &len))) {
        resp_reply_move(m, f);
        m->reply_type = f->reply_type;
        m->value = f->value;
        return;
    }
    const char *p = memchr(text, '\n', len), *end = text + len;
    const char *name = NULL;
    size_t name_len = 0;
    resp_append_fmt(rw, m, "%c%" PRId64 "\r\n", map ? '%' : '*', f->value);
    for (int64_t i = 0; p && i < f->value * (map ? 2 : 1); i++) { /* "$L\r\n<data>\r\n" each */
        const char *bulk = p + 1;
        if (bulk >= end || *bulk != '$')
            break;
        size_t n = strtoull(bulk + 1, NULL, 10);
        const char *data = memchr(bulk, '\n', (size_t)(end - bulk));
        if (!data || (size_t)(end - ++data) < n + 2)
            break;
        char own_buf[32];
        const char *own = i % 2 ? resp_config_own(m->s, name, name_len, own_buf, sizeof(own_buf))
                                : NULL;
        if (own)
            resp_append_bulk(rw, m, own, strlen(own));
        else
            resp_append_bulk(rw, m, data, n);
        name = data;
        name_len = n;
        p = data + n + 1;
    }
    free(text);
    m->reply_type = map ? '%' : '*';
    m->value = f->value;
}

/* All fragments of m have replies: builds m's merged reply. */
static void resp_merge(struct resp_wctx *rw, struct resp_msg *m)
{
    int64_t total = 0;
    struct resp_msg *f;

    if (m->merge == RESP_MERGE_SCAN) {
        resp_merge_scan(rw, m);
        return;
    }
    if (m->merge == RESP_MERGE_RANDOM) {
        resp_merge_random(rw, m);
        return;
    }
    if (m->merge == RESP_MERGE_INFO) {
        resp_merge_info(rw, m);
        return;
    }
    if (m->merge == RESP_MERGE_CONFIG) {
        resp_merge_config(rw, m);
        return;
    }
    if (m->merge == RESP_MERGE_FIRST) {
        resp_reply_move(m, m->frags);
        m->reply_type = m->frags->reply_type;
        m->value = m->frags->value;
        return;
    }

    for (f = m->frags; f; f = f->next)
        if (f->reply_type == '-' || (m->merge == RESP_MERGE_ARRAY && (f->reply_type != '*' || f->value < 0)) ||
            (m->merge == RESP_MERGE_SUM && f->reply_type != ':'))
            break;
    if (f) { /* the first failure is the answer */
        if (f->reply_type != '-') {
            resp_msg_append(rw, m, "-ERR weir: unexpected reply from a shard\r\n", 42);
        } else {
            resp_reply_move(m, f);
        }
        m->reply_type = '-';
        return;
    }
    switch (m->merge) {
    case RESP_MERGE_ARRAY:
        for (f = m->frags; f; f = f->next)
            total += f->value;
        resp_append_fmt(rw, m, "*%" PRId64 "\r\n", total);
        for (f = m->frags; f; f = f->next) {
            resp_reply_skip(rw, f, 3 + resp_digits(f->value));
            resp_reply_move(m, f);
        }
        m->reply_type = '*';
        m->value = total;
        break;
    case RESP_MERGE_SUM:
        for (f = m->frags; f; f = f->next)
            total += f->value;
        resp_append_fmt(rw, m, ":%" PRId64 "\r\n", total);
        m->reply_type = ':';
        m->value = total;
        break;
    default:
        resp_msg_append(rw, m, "+OK\r\n", 5);
        m->reply_type = '+';
        break;
    }
}

void resp_msg_complete(struct resp_wctx *rw, struct resp_msg *m, uint8_t type, int64_t value)
{
    m->done = 1;
    m->reply_type = type;
    m->value = value;
    struct resp_msg *p = m->parent;
    if (p) {
        p->backend_err |= m->backend_err;
        if (--p->frags_left > 0)
            return;
        resp_merge(rw, p);
        p->done = 1;
        resp_session_mark(p->s);
        return;
    }
    resp_session_mark(m->s);
}

void resp_msg_fail(struct resp_wctx *rw, struct resp_msg *m, const char *text)
{
    resp_chunks_free(rw, m->rhead);
    m->rhead = m->rtail = NULL;
    if (!m->s && !m->parent) {
        resp_msg_put(rw, m);
        return;
    }
    resp_stat_add(&rw->stats->errors, 1);
    resp_append_fmt(rw, m, "-ERR %s\r\n", text);
    resp_msg_complete(rw, m, '-', 0);
}

int resp_msg_direct(struct resp_wctx *rw, struct resp_msg *m, const char *data, size_t len,
                    uint8_t type, int64_t value)
{
    struct resp_session *s = m->s;
    if (!s || m->parent || s->q_head != m || m->rhead || m->silent)
        return 0;
    if (buf_acquire(&rw->wc->bufs, &s->out) < 0)
        return 0;
    if (s->out.rpos > 0 && buf_space(&rw->wc->bufs, &s->out) < len)
        buf_compact(&s->out);
    if (buf_append(&rw->wc->bufs, &s->out, data, len) < 0) {
        buf_release_if_empty(&rw->wc->bufs, &s->out);
        return 0;
    }
    m->direct = 1;
    m->done = 1;
    m->reply_type = type;
    m->value = value;
    resp_session_mark(s);
    return 1;
}

/* ---- local answers ---- */

/* A local reply. An error for a command inside MULTI aborts the transaction
 * (EXEC answers -EXECABORT), as Redis does for a command it refuses to queue. */
static void resp_reply_raw(struct resp_wctx *rw, struct resp_msg *m, const char *text, size_t len)
{
    if (text[0] == '-' && m->s && m->s->tx_multi)
        m->s->tx_dirty = 1;
    resp_msg_append(rw, m, text, len);
    resp_msg_complete(rw, m, (uint8_t)text[0], 0);
}

void resp_session_reply(struct resp_wctx *rw, struct resp_msg *m, const char *text, size_t len)
{
    resp_reply_raw(rw, m, text, len);
}

#define RESP_REPLY_LIT(rw, m, lit) resp_reply_raw((rw), (m), lit, sizeof(lit) - 1)

static void resp_reply_err(struct resp_wctx *rw, struct resp_msg *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A local error reply; fmt starts with the error code ("ERR ...", "NOAUTH ..."). */
static void resp_reply_err(struct resp_wctx *rw, struct resp_msg *m, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp + 1, sizeof(tmp) - 3, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(tmp) - 4)
        n = (int)sizeof(tmp) - 4;
    tmp[0] = '-';
    memcpy(tmp + 1 + n, "\r\n", 2);
    resp_stat_add(&rw->stats->errors, 1);
    resp_reply_raw(rw, m, tmp, (size_t)n + 3);
}

/* Arguments of the command being dispatched. */
struct resp_req {
    const char *base;
    const struct resp_arg *args;
    uint32_t argc;
    const struct resp_cmd *cmd;
    size_t len;                    /* bytes of the whole command */
    int is_inline;
};

static const char *resp_arg_ptr(const struct resp_req *r, uint32_t i)
{
    return r->base + r->args[i].off;
}

/* Copies argument i, NUL-terminated and cut to size, into buf. */
static const char *resp_arg_str(const struct resp_req *r, uint32_t i, char *buf, size_t size)
{
    size_t n = r->args[i].len < size - 1 ? r->args[i].len : size - 1;
    memcpy(buf, resp_arg_ptr(r, i), n);
    buf[n] = 0;
    return buf;
}

static void resp_reply_unknown(struct resp_wctx *rw, struct resp_msg *m, const struct resp_req *r)
{
    char name[129], args[256];
    size_t o = 0;
    args[0] = 0;
    /* as Redis 7: the arguments quoted, while the text is under 128 bytes */
    for (uint32_t i = 1; i < r->argc && o < 128; i++) {
        int take = (int)(r->args[i].len < 128 - o ? r->args[i].len : 128 - o);
        int n = snprintf(args + o, sizeof(args) - o, "'%.*s' ", take, resp_arg_ptr(r, i));
        if (n < 0 || (size_t)n >= sizeof(args) - o)
            break;
        o += (size_t)n;
    }
    resp_reply_err(rw, m, "ERR unknown command '%s', with args beginning with: %s",
                   resp_arg_str(r, 0, name, sizeof(name)), args);
}

static int64_t resp_arg_int(const struct resp_req *r, uint32_t i, int *ok)
{
    char buf[32];
    char *end;
    if (r->args[i].len == 0 || r->args[i].len >= sizeof(buf)) {
        *ok = 0;
        return 0;
    }
    resp_arg_str(r, i, buf, sizeof(buf));
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    *ok = errno == 0 && *end == 0 && buf[0] != ' ' && buf[0] != '+';
    return v;
}

static void resp_cmd_hello(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_cmd_info(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_cmd_command(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_cmd_config(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static uint32_t resp_first_up_shard(const struct resp_session *s);
static void resp_cmd_pubsub(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_config_forward(struct resp_session *s, struct resp_msg *m,
                                const struct resp_req *r, enum resp_merge merge);
static void resp_cmd_client(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_fanout(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                        enum resp_merge merge);
static void resp_cmd_multi(struct resp_session *s, struct resp_msg *m);
static void resp_cmd_exec(struct resp_session *s, struct resp_msg *m, int discard);
static void resp_cmd_watch(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_cmd_unwatch(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_cmd_scan(struct resp_session *s, struct resp_msg *m, const struct resp_req *r);
static void resp_tx_send(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                         uint32_t shard);

static void resp_cmd_auth(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    const char *pw = s->lst->redis_cluster->password;
    if (r->argc > 3) {
        RESP_REPLY_LIT(rw, m, "-ERR syntax error\r\n");
        return;
    }
    if (!pw) {
        RESP_REPLY_LIT(rw, m, "-ERR AUTH <password> called without any password configured "
                              "for the default user. Are you sure your configuration is "
                              "correct?\r\n");
        return;
    }
    uint32_t pi = r->argc - 1;
    int user_ok = r->argc == 2 || resp_arg_is(r->base, &r->args[1], "default");
    if (user_ok && r->args[pi].len == strlen(pw) && memcmp(resp_arg_ptr(r, pi), pw, strlen(pw)) == 0) {
        s->authed = 1;
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    }
    RESP_REPLY_LIT(rw, m, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
}

/* A command weir answers itself, inside MULTI: PING, ECHO and TIME are
 * queued on the transaction's shard once it has one; commands about the
 * whole keyspace or the connection are refused (aborting the transaction).
 * Returns 1 when handled here. */
static int resp_local_in_tx(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    switch (r->cmd->id) {
    case RESP_CMD_MULTI:
    case RESP_CMD_EXEC:
    case RESP_CMD_DISCARD:
    case RESP_CMD_WATCH:
    case RESP_CMD_UNWATCH:
    case RESP_CMD_QUIT:
        return 0;
    case RESP_CMD_PING:
    case RESP_CMD_ECHO:
    case RESP_CMD_TIME:
        if (s->tx_shard >= 0) {
            resp_tx_send(s, m, r, (uint32_t)s->tx_shard);
            return 1;
        }
        break;
    default:
        break;
    }
    resp_reply_err(s->rw, m, "ERR weir: '%s' inside MULTI is not supported (a transaction holds "
                   "commands on the keys of one shard)", r->cmd->name);
    return 1;
}

/* Commands weir answers itself (RC_PROXY). */
static void resp_local(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    const struct cfg_redis_cluster *cc = s->lst->redis_cluster;
    int ok;

    if (s->tx_multi && resp_local_in_tx(s, m, r))
        return;
    switch (r->cmd->id) {
    case RESP_CMD_MULTI:
        resp_cmd_multi(s, m);
        return;
    case RESP_CMD_EXEC:
    case RESP_CMD_DISCARD:
        resp_cmd_exec(s, m, r->cmd->id == RESP_CMD_DISCARD);
        return;
    case RESP_CMD_WATCH:
        resp_cmd_watch(s, m, r);
        return;
    case RESP_CMD_UNWATCH:
        resp_cmd_unwatch(s, m, r);
        return;
    case RESP_CMD_SCAN:
        resp_cmd_scan(s, m, r);
        return;
    case RESP_CMD_RANDOMKEY:
        resp_fanout(s, m, r, RESP_MERGE_RANDOM);
        return;
    case RESP_CMD_SUBSCRIBE:
    case RESP_CMD_SSUBSCRIBE:
    case RESP_CMD_PSUBSCRIBE:
    case RESP_CMD_UNSUBSCRIBE:
    case RESP_CMD_SUNSUBSCRIBE:
    case RESP_CMD_PUNSUBSCRIBE:
        if (s->route->cfg->n_seeds > 0) { /* subscriptions are kept per shard, not per slot */
            RESP_REPLY_LIT(s->rw, m, "-ERR weir: SUBSCRIBE through a Redis Cluster backend is "
                                     "not supported yet\r\n");
            return;
        }
        resp_pubsub_cmd(s, m, r->cmd, r->base, r->args, r->argc);
        return;
    case RESP_CMD_PUBSUB:
        resp_cmd_pubsub(s, m, r);
        return;
    case RESP_CMD_PING:
        if (s->ps.mode && s->proto == 2) { /* RESP2 while subscribed: ["pong", arg] */
            size_t n = r->argc > 1 ? r->args[1].len : 0;
            resp_append_fmt(rw, m, "*2\r\n$4\r\npong\r\n");
            resp_append_bulk(rw, m, n ? resp_arg_ptr(r, 1) : "", n);
            resp_msg_complete(rw, m, '*', 2);
        } else if (r->argc == 1)
            RESP_REPLY_LIT(rw, m, "+PONG\r\n");
        else if (resp_append_bulk(rw, m, resp_arg_ptr(r, 1), r->args[1].len) == 0)
            resp_msg_complete(rw, m, '$', (int64_t)r->args[1].len);
        return;
    case RESP_CMD_ECHO:
        if (resp_append_bulk(rw, m, resp_arg_ptr(r, 1), r->args[1].len) == 0)
            resp_msg_complete(rw, m, '$', (int64_t)r->args[1].len);
        return;
    case RESP_CMD_QUIT:
        m->quit = 1;
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    case RESP_CMD_SELECT: {
        int64_t db = resp_arg_int(r, 1, &ok);
        if (!ok)
            RESP_REPLY_LIT(rw, m, "-ERR value is not an integer or out of range\r\n");
        else if (db != 0)
            RESP_REPLY_LIT(rw, m, "-ERR DB index is out of range\r\n");
        else
            RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    }
    case RESP_CMD_AUTH:
        resp_cmd_auth(s, m, r);
        return;
    case RESP_CMD_HELLO:
        resp_cmd_hello(s, m, r);
        return;
    case RESP_CMD_CLIENT:
        resp_cmd_client(s, m, r);
        return;
    case RESP_CMD_INFO:
        resp_cmd_info(s, m, r);
        return;
    case RESP_CMD_COMMAND:
        resp_cmd_command(s, m, r);
        return;
    case RESP_CMD_CONFIG:
        resp_cmd_config(s, m, r);
        return;
    case RESP_CMD_TIME: {
        struct timeval tv;
        char a[24], b[24];
        gettimeofday(&tv, NULL);
        int na = snprintf(a, sizeof(a), "%ld", (long)tv.tv_sec);
        int nb = snprintf(b, sizeof(b), "%ld", (long)tv.tv_usec);
        resp_append_fmt(rw, m, "*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", na, a, nb, b);
        resp_msg_complete(rw, m, '*', 2);
        return;
    }
    case RESP_CMD_DBSIZE:
        resp_fanout(s, m, r, RESP_MERGE_SUM);
        return;
    case RESP_CMD_KEYS:
        if (!cc->allow_keys) {
            RESP_REPLY_LIT(rw, m, "-ERR weir: KEYS is disabled (commands.keys: true in the "
                                  "redis cluster enables it; SCAN is the cheap way)\r\n");
            return;
        }
        resp_fanout(s, m, r, RESP_MERGE_ARRAY);
        return;
    case RESP_CMD_FLUSHDB:
    case RESP_CMD_FLUSHALL:
        if (!cc->allow_flush) {
            resp_reply_err(rw, m, "ERR weir: %s is disabled (commands.flush: true in the redis "
                           "cluster enables it)", r->cmd->id == RESP_CMD_FLUSHDB ? "FLUSHDB" :
                           "FLUSHALL");
            return;
        }
        resp_fanout(s, m, r, RESP_MERGE_OK);
        return;
    default: {
        char name[64];
        resp_reply_err(rw, m, "ERR unsupported command '%s'", resp_arg_str(r, 0, name, sizeof(name)));
        return;
    }
    }
}

/* ---- routing ---- */

/* Writes request r (re-framed as multibulk when it came inline) to c. */
static int resp_write_request(struct resp_conn *c, const struct resp_req *r)
{
    if (!r->is_inline)
        return resp_conn_write(c, r->base, r->len);
    char head[32];
    int n = snprintf(head, sizeof(head), "*%u\r\n", r->argc);
    int rc = resp_conn_write(c, head, (size_t)n);
    for (uint32_t i = 0; rc == 0 && i < r->argc; i++) {
        n = snprintf(head, sizeof(head), "$%u\r\n", r->args[i].len);
        rc = resp_conn_write(c, head, (size_t)n);
        if (rc == 0)
            rc = resp_conn_write(c, resp_arg_ptr(r, i), r->args[i].len);
        if (rc == 0)
            rc = resp_conn_write(c, "\r\n", 2);
    }
    return rc;
}

/* Writes "*N\r\n" + argument i as bulk strings, for fragments. */
static int resp_write_args(struct resp_conn *c, const struct resp_req *r, const uint32_t *idx,
                           uint32_t n)
{
    char head[32];
    int len = snprintf(head, sizeof(head), "*%u\r\n", n);
    int rc = resp_conn_write(c, head, (size_t)len);
    for (uint32_t k = 0; rc == 0 && k < n; k++) {
        uint32_t i = idx[k];
        len = snprintf(head, sizeof(head), "$%u\r\n", r->args[i].len);
        rc = resp_conn_write(c, head, (size_t)len);
        if (rc == 0)
            rc = resp_conn_write(c, resp_arg_ptr(r, i), r->args[i].len);
        if (rc == 0)
            rc = resp_conn_write(c, "\r\n", 2);
    }
    return rc;
}

static void resp_fail_down(struct resp_session *s, struct resp_msg *m, uint32_t shard)
{
    if (s->route->cfg->n_seeds > 0) { /* Redis Cluster's own words (no node serves the slot) */
        RESP_REPLY_LIT(s->rw, m, "-CLUSTERDOWN Hash slot not served\r\n");
        return;
    }
    const struct cfg_redis_shard *sh = &s->route->cfg->shards[shard];
    m->backend_err = 1;
    resp_reply_err(s->rw, m, "ERR weir: shard '%s' is unavailable (primary %s is down)", sh->name,
                   s->route->shards[shard].primary->name);
}

/* The session's own connection to srv (blocking commands, streamed
 * commands, WATCH / MULTI), opened when needed. Commands queue behind what
 * runs there, as on one Redis connection. A connection to another server is
 * replaced (retired until its replies are in) unless a blocking command
 * waits there or it holds a WATCH / MULTI: then NULL with *busy set. NULL also over blocking_connections or when the
 * connect fails at once. The session owns the connection (s->bconn). */
static struct resp_conn *resp_session_conn(struct resp_session *s, struct resp_server *srv,
                                           int *busy)
{
    struct resp_conn *c = s->bconn;
    *busy = 0;
    if (c && c->srv == srv && c->state != RESP_CONN_IDLE && c->proto == s->proto)
        return c;
    int waiting = c && c->n_q > 0 && c->state != RESP_CONN_IDLE;
    int blocked = 0;
    for (struct resp_msg *m = waiting ? c->q_head : NULL; m; m = m->bnext)
        blocked |= m->blocking;
    if (c && (s->tx_shard >= 0 || blocked)) {
        *busy = 1;
        return NULL;
    }
    if (c) { /* replies still due there arrive before it closes */
        if (waiting)
            resp_conn_retire(c);
        else
            resp_conn_close_dedicated(c);
        s->bconn = NULL;
    }
    s->bconn = resp_conn_dedicated(srv, s, s->proto);
    return s->bconn;
}

static void resp_reply_noconn(struct resp_session *s, struct resp_msg *m,
                              const struct resp_server *srv, int busy)
{
    if (busy)
        RESP_REPLY_LIT(s->rw, m, "-ERR weir: this connection waits on another shard (a blocking "
                                 "command, WATCH or MULTI); send this after it\r\n");
    else
        resp_reply_err(s->rw, m, "ERR weir: too many blocking commands on this worker "
                       "(blocking_connections: %u)", srv->max_blocking);
}

/* ---- transactions ----
 * MULTI is answered here; the first command with a key pins the
 * transaction to its shard's primary on the session's own connection and
 * MULTI goes there right before it. WATCH pins the same way (MULTI then
 * goes at once). A command for another shard is refused with -CROSSSHARD,
 * which aborts the transaction (EXEC: -EXECABORT), as Redis does with a
 * command it refuses to queue. */

static int resp_tx_alive(const struct resp_session *s)
{
    return s->bconn && s->bconn->state != RESP_CONN_IDLE;
}

static void resp_tx_reset(struct resp_session *s)
{
    s->tx_multi = s->tx_dirty = s->tx_sent = 0;
    s->tx_shard = -1;
    atomic_store_explicit(&s->cl.multi, -1, memory_order_relaxed);
}

/* Sends the one-word command `name` on c; its reply goes to m, or is
 * dropped when m is NULL. Returns 0 or -ENOMEM (m untouched). */
static int resp_tx_write(struct resp_session *s, struct resp_conn *c, struct resp_msg *m,
                         const char *name)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "*1\r\n$%zu\r\n%s\r\n", strlen(name), name);
    struct resp_msg *to = m ? m : resp_msg_get(s->rw); /* s == NULL: reply dropped */
    if (!to)
        return -ENOMEM;
    if (resp_conn_write(c, tmp, (size_t)n) < 0) {
        if (!m)
            resp_msg_put(s->rw, to);
        return -ENOMEM;
    }
    resp_conn_push(c, to);
    return 0;
}

/* The connection of the session's WATCH / transaction, pinning it to
 * `shard` when it has no shard yet, and sending MULTI first when inside
 * MULTI. NULL after replying an error to m. */
static struct resp_conn *resp_tx_conn(struct resp_session *s, struct resp_msg *m, uint32_t shard)
{
    struct resp_wctx *rw = s->rw;
    if (s->tx_shard < 0) {
        struct resp_server *srv = resp_route_server(s->route, shard, 0);
        int busy;
        if (!srv) {
            resp_fail_down(s, m, shard);
            return NULL;
        }
        if (!resp_session_conn(s, srv, &busy)) {
            resp_reply_noconn(s, m, srv, busy);
            return NULL;
        }
        s->tx_shard = (int32_t)shard;
    }
    if (!resp_tx_alive(s)) {
        RESP_REPLY_LIT(rw, m, "-ERR weir: the connection of this WATCH / MULTI to its shard was "
                              "lost; nothing of the transaction runs\r\n");
        return NULL;
    }
    if (s->tx_multi && !s->tx_sent) {
        if (resp_tx_write(s, s->bconn, NULL, "MULTI") < 0) {
            RESP_REPLY_LIT(rw, m, "-ERR weir: out of memory\r\n");
            return NULL;
        }
        s->tx_sent = 1;
    }
    return s->bconn;
}

/* Sends r on the transaction's connection (pinned to `shard`). */
static void resp_tx_send(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                         uint32_t shard)
{
    struct resp_conn *c = resp_tx_conn(s, m, shard);
    if (!c)
        return;
    if (resp_write_request(c, r) < 0) {
        RESP_REPLY_LIT(s->rw, m, "-ERR weir: out of memory\r\n");
        return;
    }
    if (s->tx_multi) /* CLIENT LIST's multi= */
        atomic_fetch_add_explicit(&s->cl.multi, 1, memory_order_relaxed);
    resp_conn_push(c, m);
}

/* A reply that does not abort a transaction (Redis lets MULTI go on after
 * a nested MULTI or a WATCH inside it). */
static void resp_reply_keep_tx(struct resp_wctx *rw, struct resp_msg *m, const char *text)
{
    resp_msg_append(rw, m, text, strlen(text));
    resp_msg_complete(rw, m, (uint8_t)text[0], 0);
}

static void resp_cmd_multi(struct resp_session *s, struct resp_msg *m)
{
    struct resp_wctx *rw = s->rw;
    if (s->tx_multi) {
        resp_reply_keep_tx(rw, m, "-ERR MULTI calls can not be nested\r\n");
        return;
    }
    int pinned = s->tx_shard >= 0;
    s->tx_multi = 1;
    atomic_store_explicit(&s->cl.multi, 0, memory_order_relaxed);
    s->tx_dirty = 0;
    s->tx_sent = 0;
    if (!pinned) {
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    }
    if (!resp_tx_alive(s) || resp_tx_write(s, s->bconn, m, "MULTI") < 0) {
        s->tx_dirty = 1; /* the WATCH is gone: EXEC must not run */
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    }
    s->tx_sent = 1;
}

/* EXEC (discard 0) or DISCARD (1). */
static void resp_cmd_exec(struct resp_session *s, struct resp_msg *m, int discard)
{
    struct resp_wctx *rw = s->rw;
    if (!s->tx_multi) {
        if (discard)
            RESP_REPLY_LIT(rw, m, "-ERR DISCARD without MULTI\r\n");
        else
            RESP_REPLY_LIT(rw, m, "-ERR EXEC without MULTI\r\n");
        return;
    }
    int dirty = s->tx_dirty, alive = resp_tx_alive(s);
    int sent = s->tx_sent && alive, lost = s->tx_shard >= 0 && !alive;
    resp_tx_reset(s); /* EXEC and DISCARD also end every WATCH */
    if (sent && (discard || !dirty)) {
        if (resp_tx_write(s, s->bconn, m, discard ? "DISCARD" : "EXEC") < 0)
            RESP_REPLY_LIT(rw, m, "-ERR weir: out of memory\r\n");
        return;
    }
    if (sent) /* dirty: the shard drops what it queued */
        resp_tx_write(s, s->bconn, NULL, "DISCARD");
    if (discard)
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
    else if (dirty)
        RESP_REPLY_LIT(rw, m, "-EXECABORT Transaction discarded because of previous errors.\r\n");
    else if (lost)
        RESP_REPLY_LIT(rw, m, "-EXECABORT Transaction discarded because the connection to its "
                              "shard was lost.\r\n");
    else
        RESP_REPLY_LIT(rw, m, "*0\r\n");
}

/* Keys of one command (or transaction) on different shards: the error
 * `text` (a "-CROSSSHARD ..." line), or with a Redis Cluster backend, where
 * the shard of a key is its slot, Redis Cluster's own CROSSSLOT error. */
static void resp_reply_cross(struct resp_session *s, struct resp_msg *m, const char *text)
{
    if (s->route->cfg->n_seeds > 0)
        text = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    resp_session_reply(s->rw, m, text, strlen(text));
}

/* The shard of every key of r from argument `first` on; -1 after replying
 * an error to m (a key nowhere, or keys on several shards). */
static int resp_keys_one_shard(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                               uint32_t first)
{
    int shard = -1;
    for (uint32_t i = first; i < r->argc; i++) {
        int sh = resp_route_shard(s->route, resp_arg_ptr(r, i), r->args[i].len);
        if (sh < 0) {
            resp_reply_err(s->rw, m, "ERR weir: no shard for key '%.*s' in the %s distribution",
                           (int)(r->args[i].len > 64 ? 64 : r->args[i].len), resp_arg_ptr(r, i),
                           cfg_redis_dist_name(s->route->cfg->distribution));
            return -1;
        }
        if (shard >= 0 && sh != shard) {
            resp_reply_cross(s, m, "-CROSSSHARD Keys in request don't hash to the same shard "
                                     "(use a hash tag like {user1}:a and {user1}:b to keep keys "
                                     "together)\r\n");
            return -1;
        }
        shard = sh;
    }
    return shard;
}

static void resp_cmd_watch(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    if (s->tx_multi) {
        resp_reply_keep_tx(s->rw, m, "-ERR WATCH inside MULTI is not allowed\r\n");
        return;
    }
    int shard = resp_keys_one_shard(s, m, r, 1);
    if (shard < 0)
        return;
    if (s->tx_shard >= 0 && shard != s->tx_shard) {
        resp_reply_cross(s, m, "-CROSSSHARD Keys in request don't hash to the shard of the keys "
                                 "already watched (WATCH keys of one shard only)\r\n");
        return;
    }
    resp_tx_send(s, m, r, (uint32_t)shard);
}

static void resp_cmd_unwatch(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    if (s->tx_multi) {
        if (s->tx_shard >= 0)
            resp_tx_send(s, m, r, (uint32_t)s->tx_shard);
        else
            RESP_REPLY_LIT(s->rw, m, "-ERR weir: UNWATCH inside MULTI before a command with a "
                                     "key is not supported\r\n");
        return;
    }
    if (s->tx_shard >= 0 && resp_tx_alive(s))
        resp_tx_send(s, m, r, (uint32_t)s->tx_shard);
    else
        RESP_REPLY_LIT(s->rw, m, "+OK\r\n");
    s->tx_shard = -1;
}

/* Sends the whole command to shard `shard`. */
static void resp_send_one(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                          uint32_t shard, int blocking)
{
    struct resp_wctx *rw = s->rw;
    int read = (r->cmd->flags & RC_READ) && !blocking;
    struct resp_server *srv = resp_route_server(s->route, shard, read);
    if (!srv) {
        resp_fail_down(s, m, shard);
        return;
    }
    struct resp_conn *c;
    if (blocking) {
        int busy;
        c = resp_session_conn(s, srv, &busy);
        if (!c) {
            resp_reply_noconn(s, m, srv, busy);
            return;
        }
    } else if (!(c = resp_session_srv_conn(s, srv))) {
        resp_fail_down(s, m, shard);
        return;
    }
    struct resp_out_mark mk;
    resp_redirect_mark(c, &mk);
    if (resp_write_request(c, r) < 0) {
        resp_msg_fail(rw, m, "weir: out of memory");
        return;
    }
    if (!blocking && s->route->cfg->n_seeds > 0) /* to follow MOVED / ASK */
        resp_redirect_keep(m, c, &mk, shard);
    if (blocking) { /* until it leaves c's queue (resp_msg_unqueued) */
        m->blocking = 1;
        resp_stat_add(&rw->stats->blocked, 1);
        resp_session_blocked(s, 1);
    }
    resp_conn_push(c, m);
}

static struct resp_msg *resp_frag_new(struct resp_session *s, struct resp_msg *m)
{
    struct resp_msg *f = resp_msg_get(s->rw);
    if (!f)
        return NULL;
    f->s = s;
    f->parent = m;
    if (m->frags_tail)
        m->frags_tail->next = f;
    else
        m->frags = f;
    m->frags_tail = f;
    m->n_frags++;
    m->frags_left++;
    return f;
}

/* Sends fragment f (arguments idx[0..n)) to shard. */
static void resp_frag_send(struct resp_session *s, struct resp_msg *f, const struct resp_req *r,
                           uint32_t shard, const uint32_t *idx, uint32_t n, int read)
{
    struct resp_server *srv = resp_route_server(s->route, shard, read);
    struct resp_conn *c = srv ? resp_session_srv_conn(s, srv) : NULL;
    if (!c) {
        resp_fail_down(s, f, shard);
        return;
    }
    struct resp_out_mark mk;
    resp_redirect_mark(c, &mk);
    int rc = idx ? resp_write_args(c, r, idx, n) : resp_write_request(c, r);
    if (rc < 0) {
        resp_msg_fail(s->rw, f, "weir: out of memory");
        return;
    }
    if (s->route->cfg->n_seeds > 0) /* to follow MOVED / ASK */
        resp_redirect_keep(f, c, &mk, shard);
    resp_conn_push(c, f);
}

/* MGET, MSET, DEL...: one fragment per key (with its value for MSET). */
static void resp_split(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                       const struct resp_keys *k)
{
    m->merge = r->cmd->merge;
    m->frags_left = 1; /* held until every fragment is sent */
    for (uint32_t i = k->first; i <= k->last; i += k->step) {
        struct resp_msg *f = resp_frag_new(s, m);
        if (!f) {
            m->frags_left--;
            resp_msg_fail(s->rw, m, "weir: out of memory");
            return;
        }
        uint32_t idx[3] = { 0, i, i + 1 };
        int shard = resp_route_shard(s->route, resp_arg_ptr(r, i), r->args[i].len);
        if (shard < 0) {
            resp_reply_err(s->rw, f, "ERR weir: no shard for this key in the %s distribution",
                           cfg_redis_dist_name(s->route->cfg->distribution));
            continue;
        }
        resp_frag_send(s, f, r, (uint32_t)shard, idx, k->step == 2 ? 3 : 2,
                       (r->cmd->flags & RC_READ) != 0);
    }
    if (--m->frags_left == 0) {
        resp_merge(s->rw, m);
        m->done = 1;
        resp_session_mark(s);
    }
}

/* Keyspace commands: the same command to every shard, replies merged. */
static void resp_fanout(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                        enum resp_merge merge)
{
    m->merge = (uint8_t)merge;
    m->frags_left = 1;
    for (uint32_t sh = 0; sh < s->route->n_shards; sh++) {
        struct resp_msg *f = resp_frag_new(s, m);
        if (!f)
            break;
        resp_frag_send(s, f, r, resp_route_fan(s->route, sh), NULL, 0,
                       (r->cmd->flags & RC_READ) != 0);
    }
    if (--m->frags_left == 0) {
        resp_merge(s->rw, m);
        m->done = 1;
        resp_session_mark(s);
    }
}

/* Sends a command whose keys are all on `shard`: inside MULTI (or after a
 * WATCH on that shard, to keep its order) on the transaction's connection. */
static void resp_send_keyed(struct resp_session *s, struct resp_msg *m, const struct resp_req *r,
                            uint32_t shard, int blocking)
{
    if (s->tx_multi) {
        if (s->tx_shard >= 0 && shard != (uint32_t)s->tx_shard) {
            resp_reply_cross(s, m, "-CROSSSHARD Keys in request don't hash to the shard of this "
                                     "transaction (a transaction runs on one shard: use hash "
                                     "tags)\r\n");
            return;
        }
        resp_tx_send(s, m, r, shard);
        return;
    }
    if (s->tx_shard >= 0 && shard == (uint32_t)s->tx_shard && resp_tx_alive(s)) {
        resp_tx_send(s, m, r, shard);
        return;
    }
    resp_send_one(s, m, r, shard, blocking);
}

/* SCAN cursor [MATCH p] [COUNT n] [TYPE t]: the cursor names a shard and
 * that shard's cursor; the options go to the shard as they are. */
static void resp_cmd_scan(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    char num[24], *end;
    const struct resp_arg *a = &r->args[1];
    if (a->len == 0 || a->len > 20 || resp_arg_ptr(r, 1)[0] < '0' || resp_arg_ptr(r, 1)[0] > '9') {
        RESP_REPLY_LIT(rw, m, "-ERR invalid cursor\r\n");
        return;
    }
    resp_arg_str(r, 1, num, sizeof(num));
    errno = 0;
    uint64_t cursor = strtoull(num, &end, 10);
    uint64_t shard = cursor >> RESP_SCAN_SHARD_SHIFT;
    if (errno || *end || shard >= s->route->n_shards) {
        RESP_REPLY_LIT(rw, m, "-ERR invalid cursor\r\n");
        return;
    }
    m->merge = RESP_MERGE_SCAN;
    m->shard = (uint32_t)shard;
    m->route = s->route->n_shards;
    struct resp_msg *f = resp_frag_new(s, m);
    if (!f) {
        m->frags_left = 0;
        RESP_REPLY_LIT(rw, m, "-ERR weir: out of memory\r\n");
        return;
    }
    uint32_t at = resp_route_fan(s->route, (uint32_t)shard);
    struct resp_server *srv = resp_route_server(s->route, at, 1);
    struct resp_conn *c = srv ? resp_session_srv_conn(s, srv) : NULL;
    if (!c) {
        resp_fail_down(s, f, at);
        return;
    }
    snprintf(num, sizeof(num), "%" PRIu64, cursor & RESP_SCAN_CURSOR_MASK);
    char head[64];
    int n = snprintf(head, sizeof(head), "*%u\r\n$4\r\nSCAN\r\n$%zu\r\n%s\r\n", r->argc,
                     strlen(num), num);
    int rc = resp_conn_write(c, head, (size_t)n);
    for (uint32_t i = 2; rc == 0 && i < r->argc; i++) {
        n = snprintf(head, sizeof(head), "$%u\r\n", r->args[i].len);
        rc = resp_conn_write(c, head, (size_t)n);
        if (rc == 0)
            rc = resp_conn_write(c, resp_arg_ptr(r, i), r->args[i].len);
        if (rc == 0)
            rc = resp_conn_write(c, "\r\n", 2);
    }
    if (rc < 0) {
        resp_msg_fail(rw, f, "weir: out of memory");
        return;
    }
    resp_conn_push(c, f);
}

/* A command with keys: checks they can be served, then sends it. */
static void resp_route_cmd(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    struct resp_keys k;
    int rc = resp_cmd_keys(r->cmd, r->argc, r->base, r->args, &k);
    int n_shards = (int)s->route->cfg->n_shards;

    if (rc == -ENOKEY) {
        char name[64];
        resp_reply_err(rw, m, "ERR weir: '%s' without a key cannot be routed to a shard",
                       resp_arg_str(r, 0, name, sizeof(name)));
        return;
    }
    if (rc < 0 || k.n == 0) { /* Redis refuses it: any shard gives Redis's own error */
        resp_send_keyed(s, m, r, s->tx_shard >= 0 ? (uint32_t)s->tx_shard : resp_first_up_shard(s),
                        0);
        return;
    }
    if (k.foreign && n_shards > 1) {
        RESP_REPLY_LIT(rw, m, "-ERR weir: SORT with BY or GET patterns reads keys on other "
                              "shards and is not supported\r\n");
        return;
    }
    int shard = -1, cross = 0;
    for (uint32_t i = k.first, seen = 0; seen < k.n + (k.extra ? 1 : 0); seen++) {
        uint32_t ai = seen < k.n ? i : k.extra;
        int sh = resp_route_shard(s->route, resp_arg_ptr(r, ai), r->args[ai].len);
        if (sh < 0) {
            resp_reply_err(rw, m, "ERR weir: no shard for key '%.*s' in the %s distribution",
                           (int)(r->args[ai].len > 64 ? 64 : r->args[ai].len), resp_arg_ptr(r, ai),
                           cfg_redis_dist_name(s->route->cfg->distribution));
            return;
        }
        if (shard >= 0 && sh != shard)
            cross = 1;
        shard = sh;
        if (seen < k.n)
            i += k.step;
    }
    if (cross && (r->cmd->flags & RC_SPLIT) && !s->tx_multi) {
        resp_split(s, m, r, &k);
        return;
    }
    if (cross) {
        resp_reply_cross(s, m, "-CROSSSHARD Keys in request don't hash to the same shard (use "
                              "a hash tag like {user1}:a and {user1}:b to keep keys together)\r\n");
        return;
    }
    resp_send_keyed(s, m, r, (uint32_t)shard, (r->cmd->flags & RC_BLOCKING) || k.blocking);
}

/* Adopts the worker's newest snapshot between commands. */
static int resp_session_adopt(struct resp_session *s)
{
    struct resp_wctx *rw = s->rw;
    if (resp_routes_sync(rw) < 0 && !rw->routes)
        return -ENOMEM;
    struct snapshot *cur = rw->wc->snap;
    if (s->snap != cur) {
        for (size_t i = 0; i < cur->cfg->n_listeners; i++) {
            const struct cfg_listener *l = &cur->cfg->listeners[i];
            if (l->protocol == CFG_PROTOCOL_REDIS && strcmp(l->name, s->lst->name) == 0) {
                snapshot_ref(cur);
                snapshot_unref(s->snap);
                s->snap = cur;
                s->lst = l;
                s->met = resp_metrics_listener(cur, i);
                break;
            }
        }
    }
    s->route = rw->snap == s->snap ? resp_route_get(rw, s->lst->redis_cluster->name) : NULL;
    return 0;
}

/* Commands a RESP2 client may send while subscribed (as Redis). */
static int resp_pubsub_allowed(const struct resp_cmd *cmd)
{
    switch (cmd->id) {
    case RESP_CMD_SUBSCRIBE:
    case RESP_CMD_SSUBSCRIBE:
    case RESP_CMD_PSUBSCRIBE:
    case RESP_CMD_UNSUBSCRIBE:
    case RESP_CMD_SUNSUBSCRIBE:
    case RESP_CMD_PUNSUBSCRIBE:
    case RESP_CMD_PING:
    case RESP_CMD_QUIT:
    case RESP_CMD_RESET:
        return 1;
    default:
        return 0;
    }
}

/* PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB: channels
 * are on their shards (lists and counts add up), patterns on every shard
 * (the first shard up counts them). */
static void resp_cmd_pubsub(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    const struct resp_arg *sub = &r->args[1];
    if (resp_arg_is(r->base, sub, "channels") || resp_arg_is(r->base, sub, "shardchannels")) {
        if (r->argc > 3) {
            resp_reply_err(s->rw, m, "ERR wrong number of arguments for 'pubsub|%.*s' command",
                           (int)sub->len, resp_arg_ptr(r, 1));
            return;
        }
        resp_fanout(s, m, r, RESP_MERGE_ARRAY);
    } else if (resp_arg_is(r->base, sub, "numsub") || resp_arg_is(r->base, sub, "shardnumsub")) {
        m->merge = RESP_MERGE_ARRAY;
        m->frags_left = 1;
        for (uint32_t i = 2; i < r->argc; i++) {
            struct resp_msg *f = resp_frag_new(s, m);
            if (!f)
                break;
            uint32_t idx[3] = { 0, 1, i };
            int sh = resp_route_shard(s->route, resp_arg_ptr(r, i), r->args[i].len);
            resp_frag_send(s, f, r, sh < 0 ? 0 : (uint32_t)sh, idx, 3, 0);
        }
        if (r->argc == 2) {
            struct resp_msg *f = resp_frag_new(s, m);
            if (f)
                resp_frag_send(s, f, r, resp_first_up_shard(s), NULL, 0, 0);
        }
        if (--m->frags_left == 0) {
            resp_merge(s->rw, m);
            m->done = 1;
            resp_session_mark(s);
        }
    } else {
        resp_config_forward(s, m, r, RESP_MERGE_FIRST); /* NUMPAT, HELP, errors: one shard */
    }
}

/* Handles one complete command. */
static void resp_dispatch(struct resp_session *s, struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    struct resp_msg *m = resp_msg_get(rw);
    if (!m) {
        s->closing = 1;
        return;
    }
    m->s = s;
    if (s->q_tail)
        s->q_tail->next = m;
    else
        s->q_head = m;
    s->q_tail = m;
    s->n_pending++;
    resp_stat_add(&rw->stats->commands, 1);

    r->cmd = resp_cmd_lookup(resp_arg_ptr(r, 0), r->args[0].len);
    const struct resp_cmd *cmd = r->cmd;
    ev_tstamp now = resp_loop_now(rw);
    m->cls = (uint8_t)(1 + resp_metrics_class(cmd));
    m->t_parsed = now;
    m->silent = s->reply_off || s->reply_skip;
    s->reply_skip = 0;
    if (cmd)
        resp_clients_note(&s->cl, cmd,
                          r->argc > 1 && (cmd->flags & RC_PROXY) ? resp_arg_ptr(r, 1) : NULL,
                          r->argc > 1 ? r->args[1].len : 0,
                          (uint64_t)(now * 1000));
    if (!cmd) {
        resp_reply_unknown(rw, m, r);
        return;
    }
    if (s->lst->redis_cluster->password && !s->authed && cmd->id != RESP_CMD_AUTH &&
        cmd->id != RESP_CMD_HELLO && cmd->id != RESP_CMD_QUIT) {
        RESP_REPLY_LIT(rw, m, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (!resp_cmd_arity_ok(cmd, r->argc)) {
        resp_reply_err(rw, m, "ERR wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    if (s->ps.mode && s->proto == 2 && !resp_pubsub_allowed(cmd)) {
        resp_reply_err(rw, m, "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE "
                       "/ PING / QUIT / RESET are allowed in this context", cmd->name);
        return;
    }
    if (cmd->flags & RC_UNSUPPORTED) {
        char name[64];
        resp_reply_err(rw, m, "ERR unsupported command '%s'", resp_arg_str(r, 0, name, sizeof(name)));
        return;
    }
    if (resp_session_adopt(s) < 0 || !s->route) {
        RESP_REPLY_LIT(rw, m, "-ERR weir: the redis cluster of this listener is gone after a "
                              "reload; reconnect\r\n");
        return;
    }
    if (cmd->flags & RC_PROXY) {
        resp_local(s, m, r);
        return;
    }
    resp_route_cmd(s, m, r);
}

/* ---- HELLO, CLIENT, INFO, COMMAND, CONFIG ---- */

static void resp_cmd_hello(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    const struct resp_arg *setname = NULL;
    uint32_t i = 1;
    int ok = 1;
    int64_t v = 0;
    if (r->argc > 1) {
        v = resp_arg_int(r, 1, &ok);
        if (!ok) {
            RESP_REPLY_LIT(rw, m, "-ERR Protocol version is not an integer or out of range\r\n");
            return;
        }
        if (v != 2 && v != 3) {
            RESP_REPLY_LIT(rw, m, "-NOPROTO unsupported protocol version\r\n");
            return;
        }
        i = 2;
    }
    for (; i < r->argc; i++) {
        if (resp_arg_is(r->base, &r->args[i], "auth") && i + 2 < r->argc) {
            const char *pw = s->lst->redis_cluster->password;
            const struct resp_arg *p = &r->args[i + 2];
            if (!pw || p->len != strlen(pw) || memcmp(r->base + p->off, pw, p->len) != 0) {
                RESP_REPLY_LIT(rw, m, "-WRONGPASS invalid username-password pair or user is "
                                      "disabled.\r\n");
                return;
            }
            s->authed = 1;
            i += 2;
        } else if (resp_arg_is(r->base, &r->args[i], "setname") && i + 1 < r->argc) {
            setname = &r->args[++i];
            if (memchr(r->base + setname->off, ' ', setname->len) ||
                memchr(r->base + setname->off, '\n', setname->len)) {
                RESP_REPLY_LIT(rw, m, "-ERR Client names cannot contain spaces, newlines or "
                                      "special characters.\r\n");
                return;
            }
        } else {
            char opt[64];
            resp_reply_err(rw, m, "ERR Syntax error in HELLO option '%s'", resp_arg_str(r, i, opt, sizeof(opt)));
            return;
        }
    }
    if (s->lst->redis_cluster->password && !s->authed) {
        RESP_REPLY_LIT(rw, m, "-NOAUTH HELLO must be called with the client already "
                              "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                              "option can be used to authenticate the client and select the "
                              "RESP protocol version at the same time\r\n");
        return;
    }
    if (setname && resp_clients_set_name(&s->cl, r->base + setname->off, setname->len) < 0) {
        RESP_REPLY_LIT(rw, m, "-ERR weir: out of memory\r\n");
        return;
    }
    if (v)
        s->proto = (uint8_t)v;
    atomic_store_explicit(&s->cl.resp, s->proto, memory_order_relaxed);
    /* a map in RESP3, its pairs flat in RESP2 */
    resp_append_fmt(rw, m, s->proto == 3 ? "%%7\r\n" : "*14\r\n");
    resp_append_fmt(rw, m, "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$%zu\r\n%s\r\n"
                    "$5\r\nproto\r\n:%u\r\n$2\r\nid\r\n:%" PRIu64 "\r\n$4\r\nmode\r\n"
                    "$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
                    strlen(RESP_VERSION), RESP_VERSION, s->proto, s->id);
    resp_msg_complete(rw, m, s->proto == 3 ? '%' : '*', s->proto == 3 ? 7 : 14);
}

/* CLIENT KILL's filters (Redis's order of checks). Returns 0, or -1 after
 * replying an error to m. */
static int resp_client_kill_args(struct resp_session *s, struct resp_msg *m,
                                 const struct resp_req *r, struct resp_clients_filter *f,
                                 char *addr, char *laddr, size_t size)
{
    struct resp_wctx *rw = s->rw;
    char val[256];
    f->skip_id = s->id;
    for (uint32_t i = 2; i < r->argc; i += 2) {
        const struct resp_arg *o = &r->args[i];
        int more = i + 1 < r->argc, ok;
        if (more)
            resp_arg_str(r, i + 1, val, sizeof(val));
        if (more && resp_arg_is(r->base, o, "id")) {
            int64_t id = resp_arg_int(r, i + 1, &ok);
            if (!ok || id < 1) {
                RESP_REPLY_LIT(rw, m, "-ERR client-id should be greater than 0\r\n");
                return -1;
            }
            f->id = (uint64_t)id;
        } else if (more && resp_arg_is(r->base, o, "type")) {
            if (strcasecmp(val, "normal") && strcasecmp(val, "master") &&
                strcasecmp(val, "slave") && strcasecmp(val, "replica") && strcasecmp(val, "pubsub")) {
                resp_reply_err(rw, m, "ERR Unknown client type '%s'", val);
                return -1;
            }
            if (strcasecmp(val, "normal") != 0)
                f->id = UINT64_MAX; /* weir's clients are all normal ones */
        } else if (more && resp_arg_is(r->base, o, "addr")) {
            snprintf(addr, size, "%s", val);
            f->addr = addr;
        } else if (more && resp_arg_is(r->base, o, "laddr")) {
            snprintf(laddr, size, "%s", val);
            f->laddr = laddr;
        } else if (more && resp_arg_is(r->base, o, "user")) {
            if (strcmp(val, "default") != 0) {
                resp_reply_err(rw, m, "ERR No such user '%s'", val);
                return -1;
            }
        } else if (more && resp_arg_is(r->base, o, "skipme")) {
            if (strcasecmp(val, "yes") && strcasecmp(val, "no")) {
                RESP_REPLY_LIT(rw, m, "-ERR syntax error\r\n");
                return -1;
            }
            f->skip_id = strcasecmp(val, "yes") == 0 ? s->id : 0;
        } else {
            RESP_REPLY_LIT(rw, m, "-ERR syntax error\r\n");
            return -1;
        }
    }
    return 0;
}

/* CLIENT KILL addr | CLIENT KILL <filter value>...: clients of every
 * worker; each is closed by its own worker (resp_clients.h), the asker
 * itself after this reply. */
static void resp_client_kill(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    struct resp_clients_filter f;
    char addr[256], laddr[256];
    int self = 0;
    memset(&f, 0, sizeof(f));
    if (r->argc == 3) { /* the old form: an address, and the asker may go too */
        f.addr = resp_arg_str(r, 2, addr, sizeof(addr));
        uint32_t n = resp_clients_kill(&f, &s->cl, &self);
        m->quit = (uint8_t)self;
        if (n == 0)
            RESP_REPLY_LIT(rw, m, "-ERR No such client\r\n");
        else
            RESP_REPLY_LIT(rw, m, "+OK\r\n");
        return;
    }
    if (resp_client_kill_args(s, m, r, &f, addr, laddr, sizeof(addr)) < 0)
        return;
    uint32_t n = f.id == UINT64_MAX ? 0 : resp_clients_kill(&f, &s->cl, &self);
    m->quit = (uint8_t)self;
    resp_append_fmt(rw, m, ":%u\r\n", n);
    resp_msg_complete(rw, m, ':', n);
}

/* CLIENT LIST [TYPE t | ID id...]: one line per client of every worker. */
static void resp_client_list(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    struct resp_clients_filter f;
    uint64_t ids[64];
    char type[64];
    memset(&f, 0, sizeof(f));
    if (r->argc == 4 && resp_arg_is(r->base, &r->args[2], "type")) {
        resp_arg_str(r, 3, type, sizeof(type));
        if (strcasecmp(type, "normal") && strcasecmp(type, "master") && strcasecmp(type, "slave") &&
            strcasecmp(type, "replica") && strcasecmp(type, "pubsub")) {
            resp_reply_err(rw, m, "ERR Unknown client type '%s'", type);
            return;
        }
        if (strcasecmp(type, "normal") != 0) {
            f.ids = ids; /* none of those: weir's clients are all normal ones */
            f.n_ids = 0;
        }
    } else if (r->argc > 3 && resp_arg_is(r->base, &r->args[2], "id")) {
        f.ids = ids;
        for (uint32_t i = 3; i < r->argc; i++) {
            int ok;
            int64_t id = resp_arg_int(r, i, &ok);
            if (!ok) {
                RESP_REPLY_LIT(rw, m, "-ERR Invalid client ID\r\n");
                return;
            }
            if (f.n_ids < sizeof(ids) / sizeof(ids[0]))
                ids[f.n_ids++] = (uint64_t)id;
        }
    } else if (r->argc != 2) {
        RESP_REPLY_LIT(rw, m, "-ERR syntax error\r\n");
        return;
    }
    size_t len = 0;
    char *text = resp_clients_list(&f, (uint64_t)(ev_now(rw->wc->worker.loop) * 1000), &len);
    if (!text) {
        RESP_REPLY_LIT(rw, m, "-ERR weir: out of memory\r\n");
        return;
    }
    resp_append_text(rw, m, s->proto, text, len);
    free(text);
    resp_msg_complete(rw, m, s->proto == 3 ? '=' : '$', (int64_t)len);
}

/* CLIENT UNBLOCK id [TIMEOUT|ERROR]: the blocked client's worker ends its
 * command on its own connection (resp_conn_cancel). */
static void resp_client_unblock(struct resp_session *s, struct resp_msg *m,
                                const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    int how = 1, ok;
    if (r->argc == 4) {
        if (resp_arg_is(r->base, &r->args[3], "error"))
            how = 2;
        else if (!resp_arg_is(r->base, &r->args[3], "timeout")) {
            RESP_REPLY_LIT(rw, m, "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n");
            return;
        }
    }
    int64_t id = resp_arg_int(r, 2, &ok);
    if (!ok) {
        RESP_REPLY_LIT(rw, m, "-ERR value is not an integer or out of range\r\n");
        return;
    }
    if (id > 0 && resp_clients_unblock((uint64_t)id, how))
        RESP_REPLY_LIT(rw, m, ":1\r\n");
    else
        RESP_REPLY_LIT(rw, m, ":0\r\n");
}

/* CLIENT REPLY ON|OFF|SKIP: OFF and SKIP are not answered themselves. */
static void resp_client_reply(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    const struct resp_arg *a = &r->args[2];
    if (resp_arg_is(r->base, a, "on")) {
        s->reply_off = 0;
        m->silent = 0;
    } else if (resp_arg_is(r->base, a, "off")) {
        s->reply_off = 1;
        m->silent = 1;
    } else if (resp_arg_is(r->base, a, "skip")) {
        m->silent = 1;
        s->reply_skip = !s->reply_off;
    } else {
        RESP_REPLY_LIT(s->rw, m, "-ERR syntax error\r\n");
        return;
    }
    RESP_REPLY_LIT(s->rw, m, "+OK\r\n");
}

/* CLIENT subcommands: arity as Redis 7 (0: any from 2 on, <0: at least). */
static const struct {
    const char *name;
    int arity;
} resp_client_subs[] = {
    { "id", 2 },      { "getname", 2 },  { "setname", 3 },  { "info", 2 },
    { "list", -2 },   { "kill", -3 },    { "unblock", -3 }, { "no-evict", 3 },
    { "no-touch", 3 }, { "reply", 3 },   { "setinfo", 4 },
};

/* The canonical name of CLIENT's subcommand r->args[1] after checking its
 * arity, or NULL after replying Redis's error to m. */
static const char *resp_client_sub(struct resp_session *s, struct resp_msg *m,
                                   const struct resp_req *r)
{
    char name[64];
    for (size_t i = 0; i < sizeof(resp_client_subs) / sizeof(resp_client_subs[0]); i++) {
        int a = resp_client_subs[i].arity;
        if (!resp_arg_is(r->base, &r->args[1], resp_client_subs[i].name))
            continue;
        if (a >= 0 ? r->argc != (uint32_t)a : r->argc < (uint32_t)-a) {
            resp_reply_err(s->rw, m, "ERR wrong number of arguments for 'client|%s' command",
                           resp_client_subs[i].name);
            return NULL;
        }
        return resp_client_subs[i].name;
    }
    resp_reply_err(s->rw, m, "ERR unknown subcommand '%s'. Try CLIENT HELP.",
                   resp_arg_str(r, 1, name, sizeof(name)));
    return NULL;
}

/* CLIENT NO-EVICT / NO-TOUCH on|off: accepted (weir evicts no client and
 * the shards see no client of it to touch for). */
static void resp_client_onoff(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    if (resp_arg_is(r->base, &r->args[2], "on") || resp_arg_is(r->base, &r->args[2], "off"))
        RESP_REPLY_LIT(s->rw, m, "+OK\r\n");
    else
        RESP_REPLY_LIT(s->rw, m, "-ERR syntax error\r\n");
}

static void resp_client_setname(struct resp_session *s, struct resp_msg *m,
                                const struct resp_req *r)
{
    const struct resp_arg *a = &r->args[2];
    for (uint32_t i = 0; i < a->len; i++) {
        char c = r->base[a->off + i];
        if (c <= ' ' || c > '~') {
            RESP_REPLY_LIT(s->rw, m, "-ERR Client names cannot contain spaces, newlines or "
                                     "special characters.\r\n");
            return;
        }
    }
    if (resp_clients_set_name(&s->cl, r->base + a->off, a->len) < 0)
        RESP_REPLY_LIT(s->rw, m, "-ERR weir: out of memory\r\n");
    else
        RESP_REPLY_LIT(s->rw, m, "+OK\r\n");
}

static void resp_cmd_client(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    const char *sub = resp_client_sub(s, m, r);
    if (!sub)
        return;
    if (!strcmp(sub, "setname")) {
        resp_client_setname(s, m, r);
    } else if (!strcmp(sub, "getname")) {
        if (!s->cl.name) {
            resp_append_null(rw, m, s->proto);
            resp_msg_complete(rw, m, s->proto == 3 ? '_' : '$', -1);
        }
        else if (resp_append_bulk(rw, m, s->cl.name, strlen(s->cl.name)) == 0)
            resp_msg_complete(rw, m, '$', (int64_t)strlen(s->cl.name));
    } else if (!strcmp(sub, "id")) {
        resp_append_fmt(rw, m, ":%" PRIu64 "\r\n", s->id);
        resp_msg_complete(rw, m, ':', (int64_t)s->id);
    } else if (!strcmp(sub, "info")) {
        char line[1024];
        size_t n = resp_clients_line(&s->cl, (uint64_t)(ev_now(rw->wc->worker.loop) * 1000),
                                     line, sizeof(line));
        resp_append_text(rw, m, s->proto, line, n);
        resp_msg_complete(rw, m, s->proto == 3 ? '=' : '$', (int64_t)n);
    } else if (!strcmp(sub, "list")) {
        resp_client_list(s, m, r);
    } else if (!strcmp(sub, "kill")) {
        resp_client_kill(s, m, r);
    } else if (!strcmp(sub, "unblock")) {
        if (r->argc > 4)
            resp_reply_err(rw, m, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                           "Try CLIENT HELP.", (int)r->args[1].len, resp_arg_ptr(r, 1));
        else
            resp_client_unblock(s, m, r);
    } else if (!strcmp(sub, "reply")) {
        resp_client_reply(s, m, r);
    } else if (!strcmp(sub, "setinfo")) {
        RESP_REPLY_LIT(rw, m, "+OK\r\n");
    } else {
        resp_client_onoff(s, m, r);
    }
}

/* INFO [section ...]: weir as a whole; the primaries are asked for what
 * only they know (resp_info.h), the reply built when they answered. */
static void resp_cmd_info(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    static const char ask[] = "*5\r\n$4\r\nINFO\r\n$6\r\nserver\r\n$6\r\nmemory\r\n"
                              "$5\r\nstats\r\n$8\r\nkeyspace\r\n";
    m->sections = resp_info_sections(r->base, r->args + 1, r->argc - 1);
    if (m->sections & RESP_INFO_FROM_SHARDS) {
        struct resp_req q = { .base = ask, .cmd = r->cmd, .len = sizeof(ask) - 1 };
        resp_fanout(s, m, &q, RESP_MERGE_INFO);
        return;
    }
    struct resp_info_shards sh;
    memset(&sh, 0, sizeof(sh));
    resp_info_reply(s->rw, m, &sh);
}

/* Completes m with the INFO text of m->sections. */
static void resp_info_reply(struct resp_wctx *rw, struct resp_msg *m,
                            const struct resp_info_shards *sh)
{
    struct resp_session *s = m->s;
    size_t len = 0;
    char *text = NULL;
    if (s) {
        struct resp_info_local loc = {
            .lst = s->lst,
            .route = rw->snap == s->snap ? resp_route_get(rw, s->lst->redis_cluster->name) : NULL,
            .now_ms = (uint64_t)(ev_now(rw->wc->worker.loop) * 1000),
        };
        text = resp_info_text(m->sections, &loc, sh, &len);
    }
    if (!text) {
        resp_msg_append(rw, m, "-ERR weir: out of memory\r\n", 26);
        m->reply_type = '-';
        if (!m->frags) /* a merge sets done itself */
            resp_msg_complete(rw, m, '-', 0);
        return;
    }
    resp_append_text(rw, m, s->proto, text, len);
    free(text);
    if (s->proto == 3)
        len += 4;
    if (m->frags) {
        m->reply_type = s->proto == 3 ? '=' : '$';
        m->value = (int64_t)len;
    } else {
        resp_msg_complete(rw, m, s->proto == 3 ? '=' : '$', (int64_t)len);
    }
}

/* One COMMAND INFO entry (Redis 7 shape, without tips / key specs). */
static void resp_command_entry(struct resp_wctx *rw, struct resp_msg *m, const struct resp_cmd *c)
{
    const char *flags[3];
    int nf = 0;
    if (c->flags & RC_WRITE)
        flags[nf++] = "write";
    if (c->flags & RC_READ)
        flags[nf++] = "readonly";
    if (c->flags & RC_BLOCKING)
        flags[nf++] = "blocking";
    int kfirst = c->keys == RESP_KEYS_SPAN ? c->first : 0;
    int klast = c->keys == RESP_KEYS_SPAN ? c->last : 0;
    int kstep = c->keys == RESP_KEYS_SPAN ? c->step : 0;
    resp_append_fmt(rw, m, "*10\r\n$%u\r\n%s\r\n:%d\r\n*%d\r\n", c->name_len, c->name, c->arity, nf);
    for (int i = 0; i < nf; i++)
        resp_append_fmt(rw, m, "+%s\r\n", flags[i]);
    resp_append_fmt(rw, m, ":%d\r\n:%d\r\n:%d\r\n*0\r\n*0\r\n*0\r\n*0\r\n", kfirst, klast, kstep);
}

static int resp_cmd_listed(const struct resp_cmd *c)
{
    return !(c->flags & RC_UNSUPPORTED);
}

static void resp_cmd_command(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    int n = 0;
    for (int i = 0; i < RESP_CMD_COUNT; i++)
        n += resp_cmd_listed(&resp_cmds[i]);
    if (r->argc == 1) {
        resp_append_fmt(rw, m, "*%d\r\n", n);
        for (int i = 0; i < RESP_CMD_COUNT; i++)
            if (resp_cmd_listed(&resp_cmds[i]))
                resp_command_entry(rw, m, &resp_cmds[i]);
        resp_msg_complete(rw, m, '*', n);
        return;
    }
    const struct resp_arg *sub = &r->args[1];
    if (resp_arg_is(r->base, sub, "count") && r->argc == 2) {
        resp_append_fmt(rw, m, ":%d\r\n", n);
        resp_msg_complete(rw, m, ':', n);
    } else if (resp_arg_is(r->base, sub, "info")) {
        resp_append_fmt(rw, m, "*%u\r\n", r->argc - 2);
        for (uint32_t i = 2; i < r->argc; i++) {
            const struct resp_cmd *c = resp_cmd_lookup(resp_arg_ptr(r, i), r->args[i].len);
            if (c && resp_cmd_listed(c))
                resp_command_entry(rw, m, c);
            else if (s->proto == 3)
                resp_msg_append(rw, m, "_\r\n", 3);
            else
                resp_msg_append(rw, m, "*-1\r\n", 5);
        }
        resp_msg_complete(rw, m, '*', r->argc - 2);
    } else if (resp_arg_is(r->base, sub, "docs")) {
        RESP_REPLY_LIT(rw, m, "*0\r\n");
    } else {
        char sub_name[64];
        resp_reply_err(rw, m, "ERR unsupported command 'command|%s'", resp_arg_str(r, 1, sub_name, sizeof(sub_name)));
    }
}

/* The first shard whose primary is usable (shard 0 when none is: its
 * command then fails as for any dead primary). */
static uint32_t resp_first_up_shard(const struct resp_session *s)
{
    for (uint32_t i = 0; i < s->route->n_shards; i++)
        if (resp_route_server(s->route, resp_route_fan(s->route, i), 0))
            return resp_route_fan(s->route, i);
    return 0;
}

/* CONFIG SET: to every primary and replica; +OK, or the first error. */
static void resp_config_set(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    m->merge = RESP_MERGE_OK;
    m->frags_left = 1;
    for (uint32_t i = 0; i < s->route->n_shards; i++) {
        const struct resp_shard_srv *ss = &s->route->shards[i];
        for (uint32_t k = 0; k <= ss->n_replicas; k++) {
            struct resp_server *srv = k == 0 ? ss->primary : ss->replicas[k - 1];
            struct resp_msg *f = resp_frag_new(s, m);
            if (!f)
                break;
            struct resp_conn *c = resp_session_srv_conn(s, srv);
            if (!c)
                resp_reply_err(s->rw, f, "ERR weir: redis %s is unreachable", srv->name);
            else if (resp_write_request(c, r) < 0)
                resp_msg_fail(s->rw, f, "weir: out of memory");
            else
                resp_conn_push(c, f);
        }
    }
    if (--m->frags_left == 0) {
        resp_merge(s->rw, m);
        m->done = 1;
        resp_session_mark(s);
    }
}

/* CONFIG GET / HELP: asked of the first reachable primary (the shards are
 * expected to share their settings); GET's reply gets weir's own values of
 * what weir decides (RESP_MERGE_CONFIG). */
static void resp_config_forward(struct resp_session *s, struct resp_msg *m,
                                const struct resp_req *r, enum resp_merge merge)
{
    m->merge = (uint8_t)merge;
    m->frags_left = 1;
    struct resp_msg *f = resp_frag_new(s, m);
    if (f)
        resp_frag_send(s, f, r, resp_first_up_shard(s), NULL, 0, 0);
    if (--m->frags_left == 0) {
        resp_merge(s->rw, m);
        m->done = 1;
        resp_session_mark(s);
    }
}

static void resp_cmd_config(struct resp_session *s, struct resp_msg *m, const struct resp_req *r)
{
    struct resp_wctx *rw = s->rw;
    const struct resp_arg *sub = &r->args[1];
    char name[64];
    if (resp_arg_is(r->base, sub, "get")) {
        if (r->argc < 3)
            RESP_REPLY_LIT(rw, m, "-ERR wrong number of arguments for 'config|get' command\r\n");
        else
            resp_config_forward(s, m, r, RESP_MERGE_CONFIG);
    } else if (resp_arg_is(r->base, sub, "set") && s->lst->redis_cluster->allow_config_set) {
        if (r->argc < 4 || r->argc % 2)
            RESP_REPLY_LIT(rw, m, "-ERR wrong number of arguments for 'config|set' command\r\n");
        else
            resp_config_set(s, m, r);
    } else if (resp_arg_is(r->base, sub, "help")) {
        if (r->argc != 2)
            RESP_REPLY_LIT(rw, m, "-ERR wrong number of arguments for 'config|help' command\r\n");
        else
            resp_config_forward(s, m, r, RESP_MERGE_FIRST);
    } else if (resp_arg_is(r->base, sub, "resetstat") || resp_arg_is(r->base, sub, "rewrite")) {
        resp_reply_err(rw, m, "ERR unsupported command 'config|%s'",
                       resp_arg_str(r, 1, name, sizeof(name)));
    } else { /* as Redis, also for SET when commands.config_set is off */
        resp_reply_err(rw, m, "ERR unknown subcommand '%s'. Try CONFIG HELP.",
                       resp_arg_str(r, 1, name, sizeof(name)));
    }
}

/* ---- the session ---- */

static struct ev_loop *resp_loop_of(const struct resp_session *s)
{
    return s->rw->wc->worker.loop;
}

/* Reads from the client. Returns 1 on progress. */
static int resp_session_read(struct resp_session *s)
{
    struct buf_pool *pool = &s->rw->wc->bufs;
    if (!s->readable || s->eof || s->quit)
        return 0;
    if (buf_acquire(pool, &s->in) < 0) {
        s->closing = 1;
        return 0;
    }
    if (s->in.rpos > 0 && buf_space(pool, &s->in) < pool->block_size / 4)
        buf_compact(&s->in);
    size_t space = buf_space(pool, &s->in);
    if (space == 0)
        return 0;
    ssize_t n;
    do {
        n = read(s->fd, buf_wptr(&s->in), space);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        buf_release_if_empty(pool, &s->in);
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->readable = 0;
            return 0;
        }
        s->eof = 1;
        return 1;
    }
    if (n == 0) {
        s->eof = 1;
        buf_release_if_empty(pool, &s->in);
        return 1;
    }
    if ((size_t)n < space)
        s->readable = 0;
    s->in.wpos += (uint32_t)n;
    return 1;
}

/* Answers a framing error: "-ERR Protocol error: ..." then close. */
static void resp_session_proto_error(struct resp_session *s, const struct resp_parser *p)
{
    struct resp_wctx *rw = s->rw;
    struct resp_msg *m = resp_msg_get(rw);
    log_info("redis client: %s at byte %" PRIu64 "; closing", resp_error_text((enum resp_error)p->err),
             p->err_pos);
    s->quit = 1;
    buf_release(&rw->wc->bufs, &s->in);
    if (!m) {
        s->closing = 1;
        return;
    }
    m->s = s;
    if (s->q_tail)
        s->q_tail->next = m;
    else
        s->q_head = m;
    s->q_tail = m;
    s->n_pending++;
    m->quit = 1;
    if (p->err == RESP_ERR_EXPECTED_BULK)
        resp_reply_err(rw, m, "ERR Protocol error: expected '$', got '%c'",
                       (char)p->elem >= ' ' && (char)p->elem <= '~' ? (char)p->elem : '?');
    else
        resp_reply_err(rw, m, "ERR %s", resp_error_text((enum resp_error)p->err));
}

/* 1 when every command of s dispatched so far has its reply. */
static int resp_session_settled(const struct resp_session *s)
{
    for (const struct resp_msg *m = s->q_head; m; m = m->next)
        if (!m->done)
            return 0;
    return 1;
}

struct resp_msg *resp_session_enqueue(struct resp_session *s)
{
    struct resp_msg *m = resp_msg_get(s->rw);
    if (!m)
        return NULL;
    m->s = s;
    if (s->q_tail)
        s->q_tail->next = m;
    else
        s->q_head = m;
    s->q_tail = m;
    s->n_pending++;
    return m;
}

/* ---- streamed commands ----
 *
 *   client --read--> in (16 KB) --resp_parse (s->sp, resumed)--> bconn.out --writev--> shard
 *                    ^ stops when bconn holds RESP_STREAM_HIGH_BYTES unwritten;
 *                      resp_conn_send wakes the session below RESP_STREAM_LOW_BYTES
 *
 * A command that does not fit the read buffer is passed on as it arrives,
 * once its name and key are in: a single-key command on the session's own
 * connection to its shard's primary (no other session's bytes can come
 * between its pieces there). Commands before it must have their replies
 * first and those after it wait for its reply, so it never overtakes or is
 * overtaken by its neighbours on the shared connections. If it cannot be
 * sent (no shard, primary down) or its connection fails, the rest of its
 * bytes are read and dropped and the client gets the error.
 *
 * A split command (MSET, MGET, DEL, UNLINK, EXISTS, TOUCH) is taken apart
 * argument by argument (the parser's arg_stop): each key, whole in the
 * buffer, starts its fragment ("*3 MSET key" then the value's bytes as they
 * come, or "*2 DEL key") on the session's own connection to the key's shard
 * (one per shard for the stream, so the fragments of one shard keep their
 * order); the replies merge as for any split command. Back-pressure counts
 * the unwritten bytes of all those connections together, so at most
 * RESP_STREAM_HIGH_BYTES plus one read of a client's command wait in weir.
 * A command that cannot stream at all (its key after a big argument, a key
 * larger than the buffer) is read to its end and dropped, and gets an
 * error: the connection goes on serving. */

/* Closes (abort) or retires (replies still due arrive first) the
 * connections of a split stream. */
static void resp_split_close(struct resp_session *s, int abort)
{
    for (uint32_t i = 0; i < s->n_split_conns; i++) {
        struct resp_conn *c = s->split_conns[i];
        if (!c)
            continue;
        c->owner_waits = 0;
        if (!abort && c->n_q > 0 && c->state != RESP_CONN_IDLE)
            resp_conn_retire(c);
        else
            resp_conn_close_dedicated(c);
    }
    free(s->split_conns);
    s->split_conns = NULL;
    free(s->key_buf);
    s->key_buf = NULL;
    s->key_len = s->key_cap = 0;
    s->n_split_conns = 0;
    s->split_cmd = NULL;
}

/* Ends the stream (its last byte was read, or the client is gone). */
static void resp_stream_end(struct resp_session *s)
{
    struct resp_conn *c = s->stream_conn;
    struct resp_msg *m = s->stream_msg;
    s->streaming = 0;
    s->after_stream = 1;
    s->stream_msg = s->stream_cur = NULL;
    s->stream_conn = NULL;
    if (c)
        c->owner_waits = 0;
    if (!s->split_cmd)
        return;
    resp_split_close(s, 0);
    if (--m->frags_left == 0) { /* the hold taken at the start */
        resp_merge(s->rw, m);
        m->done = 1;
        resp_session_mark(s);
    }
}

/* Ends the stream without a reply: its msg leaves the queue and the
 * shard's connection, which is closed. */
static void resp_stream_drop(struct resp_session *s)
{
    struct resp_msg *m = s->stream_msg, **pp = &s->q_head, *prev = NULL;
    while (*pp != m) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = m->next; /* pub/sub messages may have come in behind it */
    if (s->q_tail == m)
        s->q_tail = prev;
    m->next = NULL;
    s->n_pending--;
    m->s = NULL;
    if (s->split_cmd) { /* its fragments leave with their connections */
        resp_split_close(s, 1);
        s->stream_conn = NULL;
    }
    resp_stream_end(s);
    if (m->in_backend) /* on c: the failure frees it with the other orphans */
        resp_conn_fail(m->conn, "the client sent a malformed command");
    else
        resp_msg_put(s->rw, m);
}

/* Passes data[0..n) of the stream on. */
static void resp_stream_forward(struct resp_session *s, const char *data, size_t n)
{
    struct resp_conn *c = s->stream_conn;
    if (!c)
        return;
    if (c->state == RESP_CONN_IDLE || s->stream_cur->done) {
        /* failed (the msg has the error), or the shard answered early and
         * is closing (a protocol error): drop the rest */
        if (c->state != RESP_CONN_IDLE)
            resp_conn_fail(c, "the shard answered a command before its end");
        s->stream_conn = NULL;
        return;
    }
    if (resp_conn_write(c, data, n) < 0) {
        resp_conn_fail(c, "out of memory");
        s->stream_conn = NULL;
    }
}

/* Starts reading and dropping the rest of a command parser p has read the
 * first n bytes of; m (queued, with its error reply) stands for it. */
static void resp_stream_refuse(struct resp_session *s, struct resp_msg *m,
                               const struct resp_parser *p, size_t n)
{
    s->sp = *p;
    s->sp.args = NULL;
    s->sp.args_cap = 0;
    s->sp.lim = &s->lim;
    s->streaming = 1;
    s->stream_msg = s->stream_cur = m;
    s->stream_conn = NULL;
    buf_consume(&s->in, n);
}

/* A single-key command whose key is in: starts passing it on. */
static void resp_stream_single(struct resp_session *s, struct resp_msg *m,
                               const struct resp_parser *p, size_t n)
{
    struct resp_wctx *rw = s->rw;
    struct resp_req r = { .base = buf_rptr(&s->in), .args = rw->args, .argc = p->n_args };
    struct resp_conn *c = NULL;
    int shard = resp_route_shard(s->route, resp_arg_ptr(&r, 1), r.args[1].len);
    if (shard < 0) {
        resp_reply_err(rw, m, "ERR weir: no shard for key '%.*s' in the %s distribution",
                       (int)(r.args[1].len > 64 ? 64 : r.args[1].len), resp_arg_ptr(&r, 1),
                       cfg_redis_dist_name(s->route->cfg->distribution));
    } else if (s->tx_multi && s->tx_shard >= 0 && shard != s->tx_shard) {
        resp_reply_cross(s, m, "-CROSSSHARD Keys in request don't hash to the shard of this "
                              "transaction (a transaction runs on one shard: use hash tags)\r\n");
    } else if (s->tx_multi || (s->tx_shard == shard && resp_tx_alive(s))) {
        c = resp_tx_conn(s, m, (uint32_t)shard);
    } else {
        struct resp_server *srv = resp_route_server(s->route, (uint32_t)shard, 0);
        int busy = 0;
        if (!srv)
            resp_fail_down(s, m, (uint32_t)shard);
        else if (!(c = resp_session_conn(s, srv, &busy)))
            resp_reply_noconn(s, m, srv, busy);
    }
    resp_stream_refuse(s, m, p, 0);
    s->stream_conn = c;
    if (c)
        resp_conn_push(c, m);
    resp_stream_forward(s, buf_rptr(&s->in), n);
    buf_consume(&s->in, n);
}

/* A split command: starts taking it apart from its first byte (nothing is
 * consumed here). Returns 0, -ENOENT (a Redis Cluster backend without a
 * slot map yet) or -ENOMEM (m untouched). */
static int resp_stream_split(struct resp_session *s, struct resp_msg *m,
                             const struct resp_cmd *cmd, const struct resp_parser *p)
{
    uint32_t n_shards = s->route->n_shards; /* a Redis Cluster's: its primaries */
    if (n_shards == 0) /* no slot map yet */
        return -ENOENT;
    s->split_conns = calloc(n_shards, sizeof(*s->split_conns));
    if (!s->split_conns)
        return -ENOMEM;
    s->n_split_conns = n_shards;
    s->split_cmd = cmd;
    s->split_gen = s->rw->routes_gen;
    m->merge = cmd->merge;
    m->frags_left = 1; /* held until the last key is in */
    resp_parser_init(&s->sp, RESP_MODE_REQUEST, &s->lim, NULL, 0);
    s->sp.arg_stop = 1;
    s->streaming = 1;
    s->stream_msg = m;
    s->stream_cur = NULL;
    s->stream_conn = NULL;
    return 0;
}

/* Starts streaming the command whose first n bytes parser p has read and
 * which fills the whole buffer. Returns 0 when started (a command that
 * cannot stream is refused with an error and its bytes dropped), -EAGAIN to
 * try again once earlier commands have their replies, -E2BIG when not even
 * a reply can be queued (the caller closes). */
static int resp_stream_start(struct resp_session *s, const struct resp_parser *p, size_t n)
{
    struct resp_wctx *rw = s->rw;
    struct resp_req r = { .base = buf_rptr(&s->in), .args = rw->args, .argc = p->n_args };
    const struct resp_cmd *cmd = NULL;
    if (p->type == '*' && p->arg_done >= 1)
        cmd = resp_cmd_lookup(resp_arg_ptr(&r, 0), r.args[0].len);
    int usable = cmd && !(cmd->flags & (RC_PROXY | RC_UNSUPPORTED | RC_BLOCKING)) &&
                 cmd->keys == RESP_KEYS_SPAN && cmd->first == 1 && resp_cmd_arity_ok(cmd, r.argc) &&
                 !(s->lst->redis_cluster->password && !s->authed);
    int single = usable && cmd->last == 1 && p->arg_done >= 2;
    int split = usable && (cmd->flags & RC_SPLIT) && cmd->last == -1 && !s->tx_multi;
    if ((single || split) && !resp_session_settled(s))
        return -EAGAIN;
    if ((single || split) && (resp_session_adopt(s) < 0 || !s->route))
        single = split = 0;
    struct resp_msg *m = resp_session_enqueue(s);
    if (!m)
        return -E2BIG;
    resp_stat_add(&rw->stats->commands, 1);
    m->cls = (uint8_t)(1 + resp_metrics_class(cmd));
    m->t_parsed = resp_loop_now(rw);
    if (single) {
        resp_stream_single(s, m, p, n);
        return 0;
    }
    if (split && resp_stream_split(s, m, cmd, p) == 0)
        return 0;
    if (cmd && !resp_cmd_arity_ok(cmd, r.argc)) /* Redis's first check */
        resp_reply_err(rw, m, "ERR wrong number of arguments for '%s' command", cmd->name);
    else
        resp_reply_err(rw, m, "ERR weir: command larger than %zu bytes (the proxy's buffer) that "
                       "cannot stream (a single-key command whose key comes first can, and so "
                       "can MSET, MGET, DEL, UNLINK, EXISTS and TOUCH with keys that fit it)",
                       rw->wc->bufs.block_size);
    resp_stream_refuse(s, m, p, n);
    return 0;
}

/* The session's own connection to the shard of a split stream's fragment
 * f (made when needed). NULL after replying an error to f. */
static struct resp_conn *resp_split_conn(struct resp_session *s, struct resp_msg *f,
                                         uint32_t shard)
{
    uint32_t i = resp_route_index(s->route, shard); /* a Redis Cluster: the slot's primary */
    if (i >= s->n_split_conns) {
        resp_fail_down(s, f, shard);
        return NULL;
    }
    struct resp_conn *c = s->split_conns[i];
    if (c && c->state != RESP_CONN_IDLE)
        return c;
    if (c) /* failed earlier in this command: a fresh one */
        resp_conn_close_dedicated(c);
    s->split_conns[i] = NULL;
    struct resp_server *srv =
        resp_route_server(s->route, shard, (s->split_cmd->flags & RC_READ) != 0);
    if (!srv) {
        resp_fail_down(s, f, shard);
        return NULL;
    }
    if (!(c = resp_conn_dedicated(srv, s, s->proto))) {
        resp_reply_noconn(s, f, srv, 0);
        return NULL;
    }
    s->split_conns[i] = c;
    return c;
}

/* The key whose argument is raw[0..n) (header included) starts its
 * fragment; with MSET its value follows (s->stream_conn). */
static void resp_split_frag(struct resp_session *s, const char *raw, size_t n)
{
    struct resp_wctx *rw = s->rw;
    const struct resp_cmd *cmd = s->split_cmd;
    struct resp_msg *f = resp_frag_new(s, s->stream_msg);
    s->stream_cur = f;
    s->stream_conn = NULL;
    if (!f) {
        s->closing = 1;
        return;
    }
    const char *key = raw + n - 2 - s->sp.arg_len;
    size_t klen = (size_t)s->sp.arg_len;
    if (rw->routes_gen != s->split_gen &&
        (resp_session_adopt(s) < 0 || !s->route || s->route->n_shards != s->n_split_conns)) {
        RESP_REPLY_LIT(rw, f, "-ERR weir: the shard map changed during this command\r\n");
        return;
    }
    s->split_gen = rw->routes_gen;
    int shard = resp_route_shard(s->route, key, klen);
    if (shard < 0) {
        resp_reply_err(rw, f, "ERR weir: no shard for key '%.*s' in the %s distribution",
                       (int)(klen > 64 ? 64 : klen), key,
                       cfg_redis_dist_name(s->route->cfg->distribution));
        return;
    }
    struct resp_conn *c = resp_split_conn(s, f, (uint32_t)shard);
    if (!c)
        return;
    char head[48];
    int hn = snprintf(head, sizeof(head), "*%d\r\n$%u\r\n%s\r\n", cmd->step == 2 ? 3 : 2,
                      cmd->name_len, cmd->name);
    resp_conn_push(c, f);
    if (resp_conn_write(c, head, (size_t)hn) < 0 || resp_conn_write(c, raw, n) < 0) {
        resp_conn_fail(c, "out of memory");
        return;
    }
    if (cmd->step == 2)
        s->stream_conn = c;
}

/* 1 while the connections of a split stream hold RESP_STREAM_HIGH_BYTES
 * unwritten (each one with bytes then wakes the session as it drains). */
static int resp_split_full(struct resp_session *s)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->n_split_conns; i++)
        if (s->split_conns[i])
            total += s->split_conns[i]->out_bytes;
    if (total < RESP_STREAM_HIGH_BYTES)
        return 0;
    for (uint32_t i = 0; i < s->n_split_conns; i++)
        if (s->split_conns[i] && s->split_conns[i]->out_bytes > 0)
            s->split_conns[i]->owner_waits = 1;
    return 1;
}

/* Appends data[0..n) to the key being gathered (a key is routed whole, and
 * Redis holds it whole too). Returns 0, or -ENOMEM after closing s. */
static int resp_split_gather(struct resp_session *s, const char *data, size_t n)
{
    if (s->key_len + n > s->key_cap) {
        size_t cap = s->key_cap ? s->key_cap : 64 * 1024;
        while (cap < s->key_len + n)
            cap *= 2;
        char *p = realloc(s->key_buf, cap);
        if (!p) {
            s->closing = 1;
            return -ENOMEM;
        }
        s->key_buf = p;
        s->key_cap = cap;
    }
    memcpy(s->key_buf + s->key_len, data, n);
    s->key_len += n;
    return 0;
}

/* One step of a split stream: the command's name or a key, whole in the
 * buffer, or what has come of a value. Returns 1 on progress, 0 to wait
 * for bytes, -1 on a protocol error (in s->sp). */
static int resp_split_step(struct resp_session *s)
{
    struct buf_pool *pool = &s->rw->wc->bufs;
    const char *data = buf_rptr(&s->in);
    size_t len = buf_len(&s->in);
    uint32_t ai = s->sp.arg_done;
    const struct resp_cmd *cmd = s->split_cmd;
    int is_value = ai > 0 && (ai - 1) % (uint32_t)cmd->step != 0;
    if (is_value) {
        ssize_t n = resp_parse(&s->sp, data, len);
        if (n < 0)
            return -1;
        resp_stream_forward(s, data, (size_t)n);
        buf_consume(&s->in, (size_t)n);
        if (s->sp.arg_done > ai)
            s->stream_conn = NULL;
        return 1;
    }
    struct resp_parser t = s->sp; /* a key is taken whole, or not yet */
    ssize_t n = resp_parse(&t, data, len);
    if (n < 0) {
        s->sp = t;
        return -1;
    }
    if (t.arg_done == ai && !s->key_buf) {
        if (buf_space(pool, &s->in) > 0)
            return 0;
        if (s->in.rpos > 0) {
            buf_compact(&s->in);
            return 1;
        }
    }
    if (t.arg_done == ai || s->key_buf) { /* a key larger than the buffer: gathered apart */
        if (resp_split_gather(s, data, (size_t)n) < 0)
            return 0;
        data = s->key_buf;
    }
    s->sp = t;
    buf_consume(&s->in, (size_t)n);
    if (t.arg_done == ai)
        return 1;
    if (ai > 0)
        resp_split_frag(s, data, data == s->key_buf ? s->key_len : (size_t)n);
    free(s->key_buf);
    s->key_buf = NULL;
    s->key_len = s->key_cap = 0;
    return 1;
}

/* Passes on what the buffer holds of the command being streamed. Returns 1
 * on progress. */
static int resp_stream_pump(struct resp_session *s)
{
    int progress = 0;
    while (s->streaming && !s->closing) {
        struct resp_conn *c = s->stream_conn;
        if (s->split_cmd && resp_split_full(s))
            break;
        if (!s->split_cmd && c && c->out_bytes >= RESP_STREAM_HIGH_BYTES) {
            c->owner_waits = 1; /* resp_conn_send wakes us */
            break;
        }
        size_t len = buf_len(&s->in);
        if (len == 0) {
            if (s->eof) { /* the client left mid-command: the shard must not wait for it */
                if (c && c->state != RESP_CONN_IDLE)
                    resp_conn_fail(c, "the client closed the connection mid-command");
                resp_stream_end(s);
                progress = 1;
            }
            break;
        }
        ssize_t n;
        if (s->split_cmd && s->sp.arg_stop) {
            int rc = resp_split_step(s);
            n = rc < 0 ? -1 : 0;
            if (rc == 0)
                break;
        } else {
            n = resp_parse(&s->sp, buf_rptr(&s->in), len);
            if (n >= 0) {
                resp_stream_forward(s, buf_rptr(&s->in), (size_t)n);
                buf_consume(&s->in, (size_t)n);
            }
        }
        progress = 1;
        if (n < 0) { /* the client hears of the protocol error only, as from Redis */
            if (s->stream_conn && s->stream_conn->state != RESP_CONN_IDLE)
                resp_conn_fail(s->stream_conn, "the client sent a malformed command");
            struct resp_parser bad = s->sp;
            resp_stream_drop(s);
            resp_session_proto_error(s, &bad);
            break;
        }
        if (s->sp.done)
            resp_stream_end(s);
    }
    return progress;
}

/* Dispatches the complete commands in `in`. Returns 1 on progress. */
static int resp_session_parse(struct resp_session *s)
{
    struct resp_wctx *rw = s->rw;
    struct buf_pool *pool = &rw->wc->bufs;
    const struct cfg_redis_cluster *cc = s->lst->redis_cluster;
    struct resp_parser p;
    int progress = 0;

    if (!s->streaming) {
        s->lim = (struct resp_limits){ cc->max_bulk_bytes, cc->max_args, 1, 64 * 1024 };
    } else {
        progress = resp_stream_pump(s);
        if (s->streaming || s->quit) {
            buf_release_if_empty(pool, &s->in);
            return progress;
        }
    }
    if (s->after_stream) {
        if (!resp_session_settled(s))
            return progress;
        s->after_stream = 0;
    }
    while (buf_len(&s->in) > 0 && s->n_pending < RESP_MAX_PENDING && !s->quit && !s->closing) {
        resp_parser_init(&p, RESP_MODE_REQUEST, &s->lim, rw->args, rw->args_cap);
        ssize_t n = resp_parse(&p, buf_rptr(&s->in), buf_len(&s->in));
        if (n < 0) {
            resp_session_proto_error(s, &p);
            return 1;
        }
        if (!p.done) {
            if (buf_space(pool, &s->in) == 0) {
                if (s->in.rpos > 0) {
                    buf_compact(&s->in);
                    return 1;
                }
                int rc = resp_stream_start(s, &p, (size_t)n);
                if (rc == -EAGAIN)
                    return progress;
                if (rc < 0)
                    s->closing = 1;
                return 1;
            }
            return progress;
        }
        progress = 1;
        if (p.n_args > rw->args_cap) {
            /* cannot happen: args are at least 6 bytes and the cap covers a full buffer */
            s->closing = 1;
            return 1;
        }
        if (p.n_args > 0) {
            struct resp_req r = { .base = buf_rptr(&s->in), .args = rw->args, .argc = p.n_args,
                                  .len = (size_t)n, .is_inline = p.type == 'i' };
            resp_dispatch(s, &r);
        }
        buf_consume(&s->in, (size_t)n);
    }
    buf_release_if_empty(pool, &s->in);
    return progress;
}

/* A command's reply is out: weir_redis_commands_total and
 * weir_redis_command_seconds. *now is the loop's time, read at the first
 * command counted (0 until then). */
static void resp_session_count(const struct resp_session *s, const struct resp_msg *m,
                               ev_tstamp *now)
{
    if (!m->cls || !s->met)
        return;
    unsigned result = m->backend_err ? RESP_RESULT_BACKEND_ERROR
                      : m->reply_type == '-' || m->reply_type == '!' ? RESP_RESULT_ERROR
                                                                     : RESP_RESULT_OK;
    metrics_add(s->met->commands[m->cls - 1], result, 1);
    if (*now == 0)
        *now = resp_loop_now(s->rw);
    int64_t ns = (int64_t)((*now - m->t_parsed) * 1e9);
    metrics_observe_ns(s->met->seconds, ns > 0 ? (uint64_t)ns : 0);
}

/* Moves ready replies, in order, into `out`. Returns 1 on progress. */
static int resp_session_fill(struct resp_session *s)
{
    struct resp_wctx *rw = s->rw;
    struct buf_pool *pool = &rw->wc->bufs;
    int progress = 0;
    ev_tstamp now = 0;
    struct resp_msg *m;

    while ((m = s->q_head) && m->done && m != s->stream_msg) {
        if (m->silent) { /* CLIENT REPLY OFF / SKIP */
            resp_chunks_free(rw, m->rhead);
            m->rhead = m->rtail = NULL;
        }
        while (!m->direct && m->rhead) {
            if (buf_acquire(pool, &s->out) < 0) {
                s->closing = 1;
                return 0;
            }
            if (s->out.rpos > 0 && buf_space(pool, &s->out) < pool->block_size / 2)
                buf_compact(&s->out);
            size_t space = buf_space(pool, &s->out);
            if (space == 0)
                return progress;
            struct resp_chunk *k = m->rhead;
            size_t n = k->len - k->pos;
            if (n > space)
                n = space;
            buf_append(pool, &s->out, k->data + k->pos, n);
            k->pos += (uint32_t)n;
            progress = 1;
            if (k->pos == k->len) {
                m->rhead = k->next;
                if (!m->rhead)
                    m->rtail = NULL;
                resp_chunk_put(rw, k);
            }
        }
        s->q_head = m->next;
        if (!s->q_head)
            s->q_tail = NULL;
        s->n_pending--;
        if (m->quit)
            s->quit = 1;
        resp_session_count(s, m, &now);
        resp_msg_put(rw, m);
        progress = 1;
    }
    return progress;
}

static int resp_session_write(struct resp_session *s)
{
    struct buf_pool *pool = &s->rw->wc->bufs;
    if (!s->out.data || buf_len(&s->out) == 0 || !s->writable)
        return 0;
    ssize_t n;
    do {
        n = send(s->fd, buf_rptr(&s->out), buf_len(&s->out), MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->writable = 0;
            return 0;
        }
        s->closing = 1;
        return 0;
    }
    if ((size_t)n < buf_len(&s->out))
        s->writable = 0;
    buf_consume(&s->out, (size_t)n);
    buf_release_if_empty(pool, &s->out);
    return 1;
}

static void resp_dirty_unlink(struct resp_session *s)
{
    if (!s->in_dirty)
        return;
    for (struct resp_session **pp = &s->rw->dirty; *pp; pp = &(*pp)->dirty_next)
        if (*pp == s) {
            *pp = s->dirty_next;
            break;
        }
    s->in_dirty = 0;
}

static void resp_session_free(struct resp_session *s)
{
    struct resp_wctx *rw = s->rw;
    struct wctx *wc = rw->wc;
    struct wlistener *wl = s->wl;
    resp_dirty_unlink(s);
    if (wc->worker.loop) /* NULL at worker exit: the loop is gone */
        ev_io_stop(wc->worker.loop, &s->io);
    if (s->fd >= 0)
        close(s->fd);
    /* in-flight msgs stay on their connections as orphans */
    struct resp_msg *m = s->q_head;
    while (m) {
        struct resp_msg *next = m->next;
        m->s = NULL;
        m->next = NULL;
        if (m->in_backend) {
            for (struct resp_msg *f = m->frags; f; f = f->next)
                f->s = NULL;
        } else {
            resp_msg_put(rw, m);
        }
        m = next;
    }
    s->q_head = s->q_tail = NULL;
    if (s->split_conns)
        resp_split_close(s, 1);
    resp_pubsub_free(s);
    if (s->bconn)
        resp_conn_close_dedicated(s->bconn);
    buf_release(&wc->bufs, &s->in);
    buf_release(&wc->bufs, &s->out);
    resp_clients_remove(&s->cl);
    if (s->snap)
        snapshot_unref(s->snap);
    if (s->prev)
        s->prev->next = s->next;
    else
        rw->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    rw->n_sessions--;
    resp_stat_add(&rw->stats->clients, -1);
    if (rw->n_free_sessions < RESP_FREE_SESSIONS) {
        s->next = rw->free_sessions;
        rw->free_sessions = s;
        rw->n_free_sessions++;
    } else {
        free(s);
    }
    server_conn_close(wc, wl);
}

static void resp_session_watch(struct resp_session *s)
{
    int ev = 0;
    int out_pending = s->out.data && buf_len(&s->out) > 0;
    if (!s->eof && !s->quit && s->n_pending < RESP_MAX_PENDING &&
        (!s->in.data || buf_space(&s->rw->wc->bufs, &s->in) > 0 || s->in.rpos > 0))
        ev = EV_READ;
    if (out_pending && !s->writable)
        ev |= EV_WRITE;
    struct ev_loop *loop = resp_loop_of(s);
    if (ev_is_active(&s->io) && (s->io.events & (EV_READ | EV_WRITE)) == ev)
        return;
    if (ev_is_active(&s->io))
        ev_io_stop(loop, &s->io);
    if (ev) {
        ev_io_set(&s->io, s->fd, ev);
        ev_io_start(loop, &s->io);
    }
}

static void resp_session_pump(struct resp_session *s)
{
    int round;
    resp_dirty_unlink(s);
    for (round = 0; round < RESP_PUMP_ROUNDS && !s->closing; round++) {
        int progress = resp_session_read(s);
        progress |= resp_session_parse(s);
        progress |= resp_session_fill(s);
        progress |= resp_session_write(s);
        if (!progress)
            break;
    }
    int out_empty = !s->out.data || buf_len(&s->out) == 0;
    if (out_empty && !s->q_head && (s->quit || (s->eof && buf_len(&s->in) == 0)))
        s->closing = 1;
    if (out_empty && !s->q_head && s->rw->wc->draining && buf_len(&s->in) == 0)
        s->closing = 1;
    if (s->closing) {
        resp_session_free(s);
        return;
    }
    resp_session_watch(s);
    /* fairness: after the round limit let other sessions run and come back
     * on the next loop round (fed after the watcher is set: stopping a
     * watcher drops its pending events) */
    if (round == RESP_PUMP_ROUNDS)
        ev_feed_event(resp_loop_of(s), &s->io, EV_READ | EV_WRITE);
}

void resp_run_dirty(struct resp_wctx *rw)
{
    while (rw->dirty) {
        struct resp_session *s = rw->dirty;
        resp_session_pump(s); /* unlinks s first */
    }
}

static void resp_session_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct resp_session *s = w->data;
    struct resp_wctx *rw = s->rw;
    if (revents & EV_READ)
        s->readable = 1;
    if (revents & EV_WRITE)
        s->writable = 1;
    resp_session_pump(s);
    resp_run_dirty(rw);
}

/* ---- worker ---- */

struct resp_wctx_full {
    struct resp_wctx rw;
    ev_prepare prepare;
    ev_timer kick;                 /* a round without blocking, for sessions still dirty */
    ev_async clients;              /* CLIENT KILL / UNBLOCK of one of our sessions */
};

#define RESP_PREPARE_ROUNDS 8

/* Once per loop round, before blocking: write what sessions queued. A write
 * may wake a session whose stream waited for it (which queues more), so
 * this goes on for a few rounds; sessions still dirty then are run on the
 * next loop round, which must not block. */
static void resp_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct resp_wctx *rw = w->data;
    struct resp_wctx_full *f = (struct resp_wctx_full *)rw;
    resp_stats_tick(rw->stats, (uint64_t)(ev_now(loop) * 1000));
    resp_flush_all(rw);
    for (int i = 0; i < RESP_PREPARE_ROUNDS && rw->dirty; i++) {
        resp_run_dirty(rw);
        resp_flush_all(rw);
    }
    if (rw->dirty && !ev_is_active(&f->kick)) {
        ev_timer_set(&f->kick, 0., 0.);
        ev_timer_start(loop, &f->kick);
    }
    if (rw->retired)
        resp_conn_reap(rw);
}

static void resp_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct resp_wctx *rw = w->data;
    resp_run_dirty(rw);
    resp_flush_all(rw);
}

/* CLIENT KILL / UNBLOCK from any worker: acts on the sessions they marked. */
static void resp_clients_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct resp_wctx *rw = w->data;
    struct resp_session *s = rw->sessions;
    while (s) {
        struct resp_session *next = s->next;
        int how = atomic_exchange(&s->cl.unblock, 0);
        static const char timeout[] = "*-1\r\n", timeout3[] = "_\r\n",
                          error[] = "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
        if (how == 1 && s->bconn)
            resp_conn_cancel(s->bconn, s->proto == 3 ? timeout3 : timeout,
                             s->proto == 3 ? sizeof(timeout3) - 1 : sizeof(timeout) - 1);
        else if (how && s->bconn)
            resp_conn_cancel(s->bconn, error, sizeof(error) - 1);
        if (atomic_exchange(&s->cl.kill, 0)) {
            s->closing = 1;
            resp_session_pump(s); /* frees it */
        }
        s = next;
    }
    resp_run_dirty(rw);
    resp_flush_all(rw);
}

static struct resp_wctx *resp_wctx_get(struct wctx *wc)
{
    if (wc->proto[CFG_PROTOCOL_REDIS])
        return wc->proto[CFG_PROTOCOL_REDIS];
    struct resp_wctx_full *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    struct resp_wctx *rw = &f->rw;
    rw->wc = wc;
    rw->stats = resp_stats_slot(wc->worker.id % RESP_STATS_SLOTS);
    resp_stats_start((uint64_t)(ev_now(wc->worker.loop) * 1000));
    /* an argument takes at least 4 bytes inline ("a \r\n" counts 2) and 6 in
     * multibulk: a full buffer never holds more than this many */
    rw->args_cap = (uint32_t)(wc->bufs.block_size / 2 + 2);
    rw->args = calloc(rw->args_cap, sizeof(*rw->args));
    if (!rw->args) {
        free(f);
        return NULL;
    }
    ev_prepare_init(&f->prepare, resp_prepare_cb);
    f->prepare.data = rw;
    ev_timer_init(&f->kick, resp_kick_cb, 0., 0.);
    f->kick.data = rw;
    ev_async_init(&f->clients, resp_clients_cb);
    f->clients.data = rw;
    ev_async_start(wc->worker.loop, &f->clients);
    ev_unref(wc->worker.loop);
    rw->clients_async = &f->clients;
    ev_prepare_start(wc->worker.loop, &f->prepare);
    ev_unref(wc->worker.loop); /* the prepare watcher alone keeps no loop alive */
    wc->proto[CFG_PROTOCOL_REDIS] = rw;
    return rw;
}

static void resp_session_start(struct resp_wctx *rw, struct wlistener *wl, int fd)
{
    struct wctx *wc = rw->wc;
    struct resp_session *s = rw->free_sessions;
    if (s) {
        rw->free_sessions = s->next;
        rw->n_free_sessions--;
    } else if (!(s = malloc(sizeof(*s)))) {
        close(fd);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->rw = rw;
    s->fd = fd;
    s->snap = wc->snap;
    snapshot_ref(s->snap);
    s->lst = &wc->snap->cfg->listeners[wl->index];
    s->met = resp_metrics_listener(s->snap, wl->index);
    s->wl = wl;
    s->id = atomic_fetch_add_explicit(&resp_next_client_id, 1, memory_order_relaxed) + 1;
    s->tx_shard = -1;
    s->proto = 2;
    s->readable = 1;
    s->writable = 1;
    resp_clients_add(&s->cl, s->id, fd, wc->worker.loop, rw->clients_async,
                     (uint64_t)(ev_now(wc->worker.loop) * 1000));
    ev_io_init(&s->io, resp_session_cb, fd, EV_READ);
    s->io.data = s;
    s->next = rw->sessions;
    if (rw->sessions)
        rw->sessions->prev = s;
    rw->sessions = s;
    rw->n_sessions++;
    resp_stat_add(&rw->stats->clients, 1);
    resp_stat_add(&rw->stats->connections, 1);
    server_conn_open(wc, wl);
    resp_session_pump(s);
}

int resp_prepare(struct wctx *wc, const struct cfg_listener *lst)
{
    struct resp_wctx *rw = resp_wctx_get(wc);
    if (!rw || resp_routes_sync(rw) < 0) {
        log_error("listener %s: out of memory", lst->name);
        return -ENOMEM;
    }
    return 0;
}

void resp_start(struct wctx *wc, struct wlistener *wl, int fd)
{
    resp_session_start(wc->proto[CFG_PROTOCOL_REDIS], wl, fd);
}

void resp_drain(struct wctx *wc)
{
    struct resp_wctx *rw = wc->proto[CFG_PROTOCOL_REDIS];
    if (!rw)
        return;
    struct resp_session *s = rw->sessions;
    while (s) {
        struct resp_session *next = s->next;
        resp_session_pump(s); /* an idle session closes (draining) */
        s = next;
    }
}

void resp_worker_cleanup(struct wctx *wc)
{
    struct resp_wctx *rw = wc->proto[CFG_PROTOCOL_REDIS];
    if (!rw)
        return;
    while (rw->sessions) {
        rw->sessions->closing = 1;
        resp_session_free(rw->sessions);
    }
    while (rw->free_sessions) {
        struct resp_session *next = rw->free_sessions->next;
        free(rw->free_sessions);
        rw->free_sessions = next;
    }
    resp_backend_cleanup(rw);
    while (rw->free_msgs) {
        struct resp_msg *next = rw->free_msgs->next;
        free(rw->free_msgs);
        rw->free_msgs = next;
    }
    while (rw->free_chunks) {
        struct resp_chunk *next = rw->free_chunks->next;
        free(rw->free_chunks);
        rw->free_chunks = next;
    }
    struct resp_wctx_full *f = (struct resp_wctx_full *)rw;
    if (wc->worker.loop) {
        ev_ref(wc->worker.loop);
        ev_prepare_stop(wc->worker.loop, &f->prepare);
        ev_ref(wc->worker.loop);
        ev_async_stop(wc->worker.loop, &f->clients);
        ev_timer_stop(wc->worker.loop, &f->kick);
    }
    free(rw->args);
    free(f);
    wc->proto[CFG_PROTOCOL_REDIS] = NULL;
}

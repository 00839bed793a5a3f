/* qredis: the Redis row of the queue backends (`backend: {store: NAME}`):
 * a queue's messages in a Redis or Redis Cluster store, so several weir
 * instances serve one queue. Every operation is one Lua script, atomic on
 * the server and on its clock (TIME), sent with EVAL through the worker's
 * async store client (store.c): the worker never blocks.
 *
 * Keys of queue NAME, all under the hash tag {weir:q:NAME} (one Cluster
 * slot, so a script may touch them all):
 *
 *   {weir:q:NAME}:s  stream, consumer group "weir": one entry per visible or
 *                    in-flight message, fields i (MessageId) b (body)
 *                    a (MessageAttributes JSON or "") m (their MD5 or "")
 *                    t (SentTimestamp, ms)
 *   {weir:q:NAME}:v  sorted set: stream id -> visible-at (ms) of each
 *                    message handed out (it is in the group's PEL)
 *   {weir:q:NAME}:d  sorted set: delayed messages (their fields as a JSON
 *                    array) -> due time; moved into the stream when due
 *   {weir:q:NAME}:f  hash: stream id -> ApproximateFirstReceiveTimestamp
 *
 *   send     ZADD :d (delayed) or XADD :s
 *   receive  due delayed -> XADD; ids of :v due -> XCLAIM (delivery count
 *            +1, from XPENDING = ApproximateReceiveCount); then new ones
 *            with XREADGROUP ">"; each handed out gets :v = now + timeout.
 *            One received maxReceiveCount times already is not handed out:
 *            it is held (:v = now + 60 s) and returned apart; weir adds it
 *            to the dead-letter queue's stream, then deletes it here.
 *   delete   XACK + XDEL + ZREM :v + HDEL :f (also when already gone)
 *   visibility  ZADD :v now + timeout, only while :v is in the future
 *   purge    DEL of the four keys (the group is made again on next use)
 *
 * The receipt handle is "R" and the stream id. The dead-letter move spans
 * two queues, hence two hash slots on a Cluster: it is two scripts, the
 * copy first; a crash between them leaves the message in both (after the
 * 60 s hold it is moved again), never in neither. A command that fails or
 * times out answers -EAGAIN (ServiceUnavailable): a send is acknowledged
 * only after Redis answered it (durable as Redis's appendfsync makes it).
 * Long polls are woken by this instance's sends and otherwise look again
 * every broker tick (queue.c's sweep, 100 ms): a blocking XREADGROUP would
 * hold one of the store's multiplexed connections. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "queue/qbackend.h"
#include "queue/qmd5.h"
#include "store/store.h"
#include "store/store_cfg.h"
#include "store/store_registry.h"

#define QREDIS_KEY_MAX (QUEUE_MAX_NAME + 32)
#define QREDIS_DEAD_HOLD_MS 60000

/* ---- the scripts ---- */

#define QREDIS_LUA_HEAD                                                                            \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                      \
    "local function ensure(s)\n"                                                                   \
    "  if redis.call('EXISTS', s) == 0 then\n"                                                     \
    "    redis.call('XGROUP', 'CREATE', s, 'weir', '0', 'MKSTREAM') end end\n"

/* KEYS s d; ARGV delay_ms id body attrs md5_attrs */
static const char qredis_lua_send[] = QREDIS_LUA_HEAD
    "local f = {'i', ARGV[2], 'b', ARGV[3], 'a', ARGV[4], 'm', ARGV[5], 't', tostring(now)}\n"
    "local delay = tonumber(ARGV[1])\n"
    "if delay > 0 then\n"
    "  redis.call('ZADD', KEYS[2], now + delay, cjson.encode(f))\n"
    "else\n"
    "  ensure(KEYS[1])\n"
    "  redis.call('XADD', KEYS[1], '*', unpack(f))\n"
    "end\n"
    "return 1\n";

/* KEYS s v d f; ARGV max visibility_ms max_receives hold_ms.
 * Returns {{id, fields, count, first_ms}...}, {{id, fields}...} (dead). */
static const char qredis_lua_receive[] = QREDIS_LUA_HEAD
    "local s, v, d, fr = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local max, vms, maxr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "ensure(s)\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', d, '-inf', now, 'LIMIT', 0, 100)) do\n"
    "  redis.call('XADD', s, '*', unpack(cjson.decode(m)))\n"
    "  redis.call('ZREM', d, m)\n"
    "end\n"
    "local out, dead = {}, {}\n"
    "local function take(id, fields, count)\n"
    "  if maxr > 0 and count > maxr then\n"
    "    redis.call('ZADD', v, now + tonumber(ARGV[4]), id)\n"
    "    dead[#dead + 1] = {id, fields}\n"
    "    return\n"
    "  end\n"
    "  redis.call('ZADD', v, now + vms, id)\n"
    "  redis.call('HSETNX', fr, id, now)\n"
    "  out[#out + 1] = {id, fields, count, tonumber(redis.call('HGET', fr, id))}\n"
    "end\n"
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', v, '-inf', now, 'LIMIT', 0, max)) do\n"
    "  local c = redis.call('XCLAIM', s, 'weir', 'w', 0, id)\n"
    "  if #c == 0 or not c[1] then\n"
    "    redis.call('ZREM', v, id)\n"
    "    redis.call('HDEL', fr, id)\n"
    "  else\n"
    "    local p = redis.call('XPENDING', s, 'weir', id, id, 1)\n"
    "    take(id, c[1][2], tonumber(p[1][4]))\n"
    "  end\n"
    "end\n"
    "local left = max - #out - #dead\n"
    "if left > 0 then\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', 'weir', 'w', 'COUNT', left, 'STREAMS', s, '>')\n"
    "  if r then for _, e in ipairs(r[1][2]) do take(e[1], e[2], 1) end end\n"
    "end\n"
    "return {out, dead}\n";

/* KEYS s v f; ARGV id. Returns 1 (deleted) or 0 (already gone). */
static const char qredis_lua_delete[] = "redis.pcall('XACK', KEYS[1], 'weir', ARGV[1])\n"
                                        "local n = redis.call('XDEL', KEYS[1], ARGV[1])\n"
                                        "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                        "redis.call('HDEL', KEYS[3], ARGV[1])\n"
                                        "return n\n";

/* KEYS v; ARGV id timeout_ms. Returns 1, or 0 when not in flight. */
static const char qredis_lua_visibility[] =
    QREDIS_LUA_HEAD "local sc = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
                    "if not sc or tonumber(sc) <= now then return 0 end\n"
                    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
                    "return 1\n";

/* KEYS s v d f */
static const char qredis_lua_purge[] =
    "return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])\n";

/* KEYS s v d. Returns {visible, in flight, delayed}. */
static const char qredis_lua_counts[] =
    QREDIS_LUA_HEAD "local len, pend = redis.call('XLEN', KEYS[1]), 0\n"
                    "if len > 0 then\n"
                    "  local p = redis.pcall('XPENDING', KEYS[1], 'weir')\n"
                    "  if type(p) == 'table' and p[1] then pend = tonumber(p[1]) end\n"
                    "end\n"
                    "local due = redis.call('ZCOUNT', KEYS[2], '-inf', now)\n"
                    "local later = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')\n"
                    "local vis = len - pend + due\n"
                    "if vis < 0 then vis = 0 end\n"
                    "return {vis, later, redis.call('ZCARD', KEYS[3])}\n";

/* KEYS s (the dead-letter queue's); ARGV the fields. */
static const char qredis_lua_adopt[] =
    QREDIS_LUA_HEAD "ensure(KEYS[1])\n"
                    "redis.call('XADD', KEYS[1], '*', unpack(ARGV))\n"
                    "return 1\n";

/* ---- keys, ids ---- */

/* The key `suffix` of queue `name`: "{weir:q:NAME}:suffix". */
static size_t qredis_key(char *out, const char *name, const char *suffix)
{
    int n = snprintf(out, QREDIS_KEY_MAX, "{weir:q:%s}:%s", name, suffix);
    return n < 0 ? 0 : (size_t)n;
}

/* A random (version 4) UUID as the MessageId: ids must differ across
 * instances sharing the queue. */
static void qredis_make_id(char id[QUEUE_ID_LEN + 1])
{
    static _Thread_local uint64_t x;
    uint64_t r[2];
    while (x == 0)
        if (getrandom(&x, sizeof(x), 0) != sizeof(x))
            x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x;
    for (int i = 0; i < 2; i++) { /* xorshift64* */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r[i] = x * 2685821657736338717ULL;
    }
    snprintf(id, QUEUE_ID_LEN + 1,
             "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64, r[0] >> 32,
             (r[0] >> 16) & 0xffff, r[0] & 0xfff, (uint64_t)0x8000 | ((r[1] >> 48) & 0x3fff),
             r[1] & (uint64_t)0xffffffffffff);
}

int qredis_receipt_parse(const char *receipt, char id[QREDIS_ID_MAX])
{
    size_t len = receipt ? strlen(receipt) : 0;
    if (len < 4 || len >= QREDIS_ID_MAX || receipt[0] != 'R')
        return -EINVAL;
    const char *dash = strchr(receipt + 1, '-');
    if (dash == NULL || dash == receipt + 1 || dash[1] == 0 ||
        strspn(receipt + 1, "0123456789") != (size_t)(dash - receipt - 1) ||
        strspn(dash + 1, "0123456789") != strlen(dash + 1))
        return -EINVAL;
    memcpy(id, receipt + 1, len);
    return 0;
}

/* ---- commands ---- */

/* This worker's client of q's store, or NULL (not configured any more,
 * out of memory). */
static struct store *qredis_store(struct qcall *call)
{
    const struct cfg_store *sc = store_cfg_find(call->cfg, call->q->attrs.store);
    return sc ? store_registry_get(call->loop, sc, NULL) : NULL;
}

/* The errno of a script's answer: 0, -EAGAIN (no answer), -EPROTO. */
static int qredis_result(enum store_result res, const redisReply *r, const char *what)
{
    if (res != STORE_OK || r == NULL)
        return -EAGAIN;
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("queue: redis %s script failed: %s", what, r->str);
        return -EPROTO;
    }
    return 0;
}

/* Runs script with nkeys keys then args (argv[0..argc), lengths) for entry
 * i of call; cb answers it. Returns 0, or -EAGAIN when refused at once. */
static int qredis_eval(struct qcall *call, size_t i, const char *script, int argc,
                       const char **argv, size_t *argvlen, store_cb cb)
{
    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = script;
    argvlen[1] = strlen(script);
    /* argv[2] is the key count, argv[3] the first key: the routing key */
    call->e[i].call = call;
    call->cmds[i] =
        store_command(call->store, argv[3], argvlen[3], argc, argv, argvlen, cb, &call->e[i]);
    return call->cmds[i] ? 0 : -EAGAIN;
}

static struct qcall_entry *qredis_entry_done(void *arg)
{
    struct qcall_entry *e = arg;
    e->call->cmds[e - e->call->e] = NULL;
    return e;
}

/* One command of call answered (or refused): done after the last. */
static void qredis_settle(struct qcall *call)
{
    if (--call->pending > 0)
        return;
    call->busy = 0;
    call->done(call);
}

/* Starts call: the store, pending = n + 1 (the start's own share).
 * Returns 0, or -EAGAIN (done called already with every entry failed). */
static int qredis_begin(struct qcall *call, size_t n)
{
    call->busy = 1;
    call->rc = 0;
    call->pos = 0;
    call->pending = n + 1;
    memset(call->cmds, 0, sizeof(call->cmds));
    for (size_t i = 0; i < QCALL_MAX; i++)
        call->e[i].rc = -EAGAIN;
    call->store = qredis_store(call);
    if (call->store == NULL) {
        call->rc = -EAGAIN;
        call->pending = 1;
        qredis_settle(call);
        return -EAGAIN;
    }
    return 0;
}

/* ---- send ---- */

static void qredis_sent(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    e->rc = qredis_result(res, r, "send");
    if (e->rc == 0)
        queue_notify(e->call->q, 1);
    qredis_settle(e->call);
}

static void qredis_send(struct qcall *call)
{
    char ks[QREDIS_KEY_MAX], kd[QREDIS_KEY_MAX], delay[24];
    if (qredis_begin(call, call->n) < 0)
        return;
    size_t lks = qredis_key(ks, call->q->name, "s"), lkd = qredis_key(kd, call->q->name, "d");
    for (size_t i = 0; i < call->n; i++) {
        const struct queue_send *m = &call->sends[i];
        int64_t d = m->delay_s >= 0 ? m->delay_s : (int64_t)call->q->attrs.delay_s;
        snprintf(delay, sizeof(delay), "%" PRId64, d * 1000);
        qredis_make_id(call->e[i].id);
        call->e[i].seq = 0;
        const char *argv[10] = {NULL,
                                NULL,
                                "2",
                                ks,
                                kd,
                                delay,
                                call->e[i].id,
                                m->body,
                                m->attrs ? m->attrs : "",
                                m->md5_attrs ? m->md5_attrs : ""};
        size_t argvlen[10] = {0,
                              0,
                              1,
                              lks,
                              lkd,
                              strlen(delay),
                              QUEUE_ID_LEN,
                              m->body_len,
                              m->attrs ? m->attrs_len : 0,
                              strlen(argv[9])};
        if (qredis_eval(call, i, qredis_lua_send, 10, argv, argvlen, qredis_sent) < 0)
            call->pending--;
    }
    qredis_settle(call);
}

/* ---- receive ---- */

/* The value of field `name` in a stream entry's [k, v, ...] array. */
static const redisReply *qredis_field(const redisReply *f, const char *name)
{
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1]->type == REDIS_REPLY_STRING ? f->element[i + 1] : NULL;
    return NULL;
}

/* Hands out one {id, fields, count, first_ms} of the receive reply. */
static int qredis_hand_out(struct qcall *call, const redisReply *m)
{
    char receipt[QREDIS_ID_MAX + 2], md5_body[QMD5_HEX];
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 4 ||
        m->element[0]->type != REDIS_REPLY_STRING || m->element[0]->len >= QREDIS_ID_MAX ||
        m->element[2]->type != REDIS_REPLY_INTEGER || m->element[3]->type != REDIS_REPLY_INTEGER ||
        m->element[2]->integer < 0 || m->element[3]->integer < 0)
        return -EPROTO;
    const redisReply *id = qredis_field(m->element[1], "i"), *b = qredis_field(m->element[1], "b");
    const redisReply *a = qredis_field(m->element[1], "a"), *ma = qredis_field(m->element[1], "m");
    const redisReply *t = qredis_field(m->element[1], "t");
    if (id == NULL || b == NULL || t == NULL)
        return -EPROTO;
    snprintf(receipt, sizeof(receipt), "R%s", m->element[0]->str);
    qmd5_hex(b->str, b->len, md5_body);
    struct queue_received r = {
        .id = id->str,
        .receipt = receipt,
        .body = b->str,
        .body_len = b->len,
        .attrs = a && a->len ? a->str : NULL,
        .attrs_len = a ? a->len : 0,
        .md5_body = md5_body,
        .md5_attrs = ma ? ma->str : "",
        .sent_ms = strtoull(t->str, NULL, 10),
        .first_receive_ms = (uint64_t)m->element[3]->integer,
        .receive_count = (uint32_t)m->element[2]->integer,
    };
    call->on_msg(call->msg_arg, &r);
    return 0;
}

struct qredis_move {
    struct store *store;
    char name[QUEUE_MAX_NAME + 1]; /* the source queue */
    char id[QREDIS_ID_MAX];
};

static void qredis_moved_ignore(void *arg, enum store_result res, redisReply *r)
{
    if (qredis_result(res, r, "dead-letter delete") < 0)
        log_warn("queue: %s: a dead-lettered message stays in the source queue until the next "
                 "attempt (store unavailable)",
                 (char *)arg);
    free(arg);
}

/* The copy reached the dead-letter queue: delete the source's. */
static void qredis_moved(void *arg, enum store_result res, redisReply *r)
{
    struct qredis_move *mv = arg;
    char ks[QREDIS_KEY_MAX], kv[QREDIS_KEY_MAX], kf[QREDIS_KEY_MAX];
    if (qredis_result(res, r, "dead-letter copy") < 0 || store_registry_exiting()) {
        free(mv);
        return;
    }
    const char *argv[7] = {"EVAL", qredis_lua_delete, "3", ks, kv, kf, mv->id};
    size_t argvlen[7] = {4,
                         strlen(qredis_lua_delete),
                         1,
                         qredis_key(ks, mv->name, "s"),
                         qredis_key(kv, mv->name, "v"),
                         qredis_key(kf, mv->name, "f"),
                         strlen(mv->id)};
    char *name = strdup(mv->name);
    if (name && store_command(mv->store, ks, argvlen[3], 7, argv, argvlen, qredis_moved_ignore,
                              name) == NULL)
        free(name);
    free(mv);
}

/* Copies one held {id, fields} to the dead-letter queue's stream, then
 * (qredis_moved) deletes it from q. Not tied to the call: it goes on after
 * the receive is answered or its connection closed. */
static void qredis_dead_letter(struct qcall *call, const redisReply *d)
{
    char kd[QREDIS_KEY_MAX];
    const char *argv[3 + 1 + 16];
    size_t argvlen[3 + 1 + 16];
    if (d->type != REDIS_REPLY_ARRAY || d->elements != 2 ||
        d->element[0]->type != REDIS_REPLY_STRING || d->element[1]->type != REDIS_REPLY_ARRAY ||
        d->element[1]->elements > 16 || strlen(d->element[0]->str) >= QREDIS_ID_MAX ||
        call->q->attrs.dead_letter[0] == 0)
        return;
    struct qredis_move *mv = calloc(1, sizeof(*mv));
    if (mv == NULL)
        return;
    mv->store = call->store;
    snprintf(mv->name, sizeof(mv->name), "%s", call->q->name);
    snprintf(mv->id, sizeof(mv->id), "%s", d->element[0]->str);
    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = qredis_lua_adopt;
    argvlen[1] = strlen(qredis_lua_adopt);
    argv[2] = "1";
    argvlen[2] = 1;
    argvlen[3] = qredis_key(kd, call->q->attrs.dead_letter, "s");
    argv[3] = kd;
    size_t n = d->element[1]->elements;
    for (size_t i = 0; i < n; i++) {
        if (d->element[1]->element[i]->type != REDIS_REPLY_STRING) {
            free(mv);
            return;
        }
        argv[4 + i] = d->element[1]->element[i]->str;
        argvlen[4 + i] = d->element[1]->element[i]->len;
    }
    if (store_command(call->store, kd, argvlen[3], (int)(4 + n), argv, argvlen, qredis_moved, mv) ==
        NULL)
        free(mv);
}

int qredis_receive_reply(struct qcall *call, const struct redisReply *r)
{
    int n = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[1]->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    for (size_t i = 0; call->store && i < r->element[1]->elements; i++)
        qredis_dead_letter(call, r->element[1]->element[i]);
    for (size_t i = 0; i < r->element[0]->elements; i++)
        if (qredis_hand_out(call, r->element[0]->element[i]) == 0)
            n++;
    return n;
}

static void qredis_received(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    struct qcall *call = e->call;
    call->rc = qredis_result(res, r, "receive");
    if (call->rc == 0)
        call->rc = qredis_receive_reply(call, r);
    qredis_settle(call);
}

static void qredis_receive(struct qcall *call)
{
    char ks[QREDIS_KEY_MAX], kv[QREDIS_KEY_MAX], kd[QREDIS_KEY_MAX], kf[QREDIS_KEY_MAX];
    char max[16], vis[24], maxr[16], hold[24];
    if (qredis_begin(call, 1) < 0)
        return;
    snprintf(max, sizeof(max), "%u", call->max);
    snprintf(vis, sizeof(vis), "%" PRIu64, (uint64_t)call->vis_s * 1000);
    snprintf(maxr, sizeof(maxr), "%u",
             call->q->attrs.dead_letter[0] ? call->q->attrs.max_receives : 0);
    snprintf(hold, sizeof(hold), "%d", QREDIS_DEAD_HOLD_MS);
    const char *argv[11] = {NULL, NULL, "4", ks, kv, kd, kf, max, vis, maxr, hold};
    size_t argvlen[11] = {0,
                          0,
                          1,
                          qredis_key(ks, call->q->name, "s"),
                          qredis_key(kv, call->q->name, "v"),
                          qredis_key(kd, call->q->name, "d"),
                          qredis_key(kf, call->q->name, "f"),
                          strlen(max),
                          strlen(vis),
                          strlen(maxr),
                          strlen(hold)};
    if (qredis_eval(call, 0, qredis_lua_receive, 11, argv, argvlen, qredis_received) < 0) {
        call->rc = -EAGAIN;
        call->pending--;
    }
    qredis_settle(call);
}

/* ---- delete, visibility ---- */

static void qredis_deleted(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    e->rc = qredis_result(res, r, "delete");
    qredis_settle(e->call);
}

static void qredis_delete(struct qcall *call)
{
    char ks[QREDIS_KEY_MAX], kv[QREDIS_KEY_MAX], kf[QREDIS_KEY_MAX], id[QREDIS_ID_MAX];
    if (qredis_begin(call, call->n) < 0)
        return;
    size_t lks = qredis_key(ks, call->q->name, "s"), lkv = qredis_key(kv, call->q->name, "v"),
           lkf = qredis_key(kf, call->q->name, "f");
    for (size_t i = 0; i < call->n; i++) {
        if (qredis_receipt_parse(call->receipts[i], id) < 0) {
            call->e[i].rc = -EINVAL;
            call->pending--;
            continue;
        }
        const char *argv[7] = {NULL, NULL, "3", ks, kv, kf, id};
        size_t argvlen[7] = {0, 0, 1, lks, lkv, lkf, strlen(id)};
        if (qredis_eval(call, i, qredis_lua_delete, 7, argv, argvlen, qredis_deleted) < 0)
            call->pending--;
    }
    qredis_settle(call);
}

static void qredis_visibility_set(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    e->rc = qredis_result(res, r, "visibility");
    if (e->rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer != 1))
        e->rc = -ESRCH;
    qredis_settle(e->call);
}

static void qredis_change_visibility(struct qcall *call)
{
    char kv[QREDIS_KEY_MAX], id[QREDIS_ID_MAX], ms[24];
    if (qredis_begin(call, call->n) < 0)
        return;
    size_t lkv = qredis_key(kv, call->q->name, "v");
    for (size_t i = 0; i < call->n; i++) {
        if (qredis_receipt_parse(call->receipts[i], id) < 0) {
            call->e[i].rc = -EINVAL;
            call->pending--;
            continue;
        }
        snprintf(ms, sizeof(ms), "%" PRIu64, (uint64_t)call->timeouts[i] * 1000);
        const char *argv[6] = {NULL, NULL, "1", kv, id, ms};
        size_t argvlen[6] = {0, 0, 1, lkv, strlen(id), strlen(ms)};
        if (qredis_eval(call, i, qredis_lua_visibility, 6, argv, argvlen, qredis_visibility_set) <
            0)
            call->pending--;
    }
    qredis_settle(call);
}

/* ---- purge, counts ---- */

static void qredis_purged(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    e->call->rc = qredis_result(res, r, "purge");
    qredis_settle(e->call);
}

static void qredis_purge(struct qcall *call)
{
    char ks[QREDIS_KEY_MAX], kv[QREDIS_KEY_MAX], kd[QREDIS_KEY_MAX], kf[QREDIS_KEY_MAX];
    if (qredis_begin(call, 1) < 0)
        return;
    const char *argv[7] = {NULL, NULL, "4", ks, kv, kd, kf};
    size_t argvlen[7] = {0,
                         0,
                         1,
                         qredis_key(ks, call->q->name, "s"),
                         qredis_key(kv, call->q->name, "v"),
                         qredis_key(kd, call->q->name, "d"),
                         qredis_key(kf, call->q->name, "f")};
    if (qredis_eval(call, 0, qredis_lua_purge, 7, argv, argvlen, qredis_purged) < 0) {
        call->rc = -EAGAIN;
        call->pending--;
    }
    qredis_settle(call);
}

static void qredis_counted(void *arg, enum store_result res, redisReply *r)
{
    struct qcall_entry *e = qredis_entry_done(arg);
    struct qcall *call = e->call;
    call->rc = qredis_result(res, r, "counts");
    if (call->rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 3))
        call->rc = -EPROTO;
    for (size_t i = 0; call->rc == 0 && i < 3; i++)
        call->counts[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer > 0
                              ? (size_t)r->element[i]->integer
                              : 0;
    qredis_settle(call);
}

static void qredis_counts(struct qcall *call)
{
    char ks[QREDIS_KEY_MAX], kv[QREDIS_KEY_MAX], kd[QREDIS_KEY_MAX];
    memset(call->counts, 0, sizeof(call->counts));
    if (qredis_begin(call, 1) < 0)
        return;
    const char *argv[6] = {NULL, NULL, "3", ks, kv, kd};
    size_t argvlen[6] = {0,
                         0,
                         1,
                         qredis_key(ks, call->q->name, "s"),
                         qredis_key(kv, call->q->name, "v"),
                         qredis_key(kd, call->q->name, "d")};
    if (qredis_eval(call, 0, qredis_lua_counts, 6, argv, argvlen, qredis_counted) < 0) {
        call->rc = -EAGAIN;
        call->pending--;
    }
    qredis_settle(call);
}

void qredis_cancel(struct qcall *call)
{
    for (size_t i = 0; i < QCALL_MAX; i++) {
        store_cancel(call->cmds[i]);
        call->cmds[i] = NULL;
    }
    call->pending = 0;
}

const struct qbackend_ops qbackend_redis = {
    .name = "redis",
    .send = qredis_send,
    .receive = qredis_receive,
    .delete_msgs = qredis_delete,
    .change_visibility = qredis_change_visibility,
    .purge = qredis_purge,
    .counts = qredis_counts,
    .shared = 1,
};

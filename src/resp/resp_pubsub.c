/* resp_pubsub: see resp_pubsub.h. */
#include "resp/resp_pubsub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resp/resp_backend.h"
#include "resp/resp_cmd.h"
#include "resp/resp_session.h"

#define RESP_PUBSUB_MAX_QUEUED 65536 /* messages waiting for a slow subscriber: then it is closed */

static struct resp_sub *resp_sub_find(struct resp_pubsub *ps, int kind, const char *name,
                                      size_t len, int create)
{
    for (struct resp_sub *u = ps->subs; u; u = u->next)
        if (u->kind == kind && u->len == len && memcmp(u->name, name, len) == 0)
            return u;
    if (!create)
        return NULL;
    struct resp_sub *u = calloc(1, sizeof(*u) + len + 1);
    if (!u)
        return NULL;
    u->kind = (uint8_t)kind;
    u->len = len;
    memcpy(u->name, name, len);
    u->next = ps->subs;
    ps->subs = u;
    return u;
}

static void resp_sub_drop(struct resp_pubsub *ps, struct resp_sub *u)
{
    for (struct resp_sub **pp = &ps->subs; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            free(u);
            return;
        }
}

/* s's pubsub connection to `shard`'s primary, made when needed. */
static struct resp_conn *resp_pubsub_conn(struct resp_session *s, uint32_t shard)
{
    struct resp_pubsub *ps = &s->ps;
    if (!ps->conns) {
        ps->conns = calloc(s->route->n_shards, sizeof(*ps->conns));
        if (!ps->conns)
            return NULL;
        ps->n_conns = s->route->n_shards;
    }
    if (shard >= ps->n_conns)
        return NULL;
    if (ps->conns[shard])
        return ps->conns[shard];
    struct resp_server *srv = resp_route_server(s->route, shard, 0);
    struct resp_conn *c = srv ? resp_conn_dedicated(srv, s, s->proto) : NULL;
    if (c)
        c->pubsub = 1;
    ps->conns[shard] = c;
    return c;
}

/* Sends "NAME arg" (arg NULL: no argument) on c. */
static int resp_pubsub_send(struct resp_conn *c, const char *name, const char *arg, size_t len)
{
    char head[64];
    int n = arg ? snprintf(head, sizeof(head), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(name), name, len)
                : snprintf(head, sizeof(head), "*1\r\n$%zu\r\n%s\r\n", strlen(name), name);
    if (resp_conn_write(c, head, (size_t)n) < 0)
        return -ENOMEM;
    if (arg && (resp_conn_write(c, arg, len) < 0 || resp_conn_write(c, "\r\n", 2) < 0))
        return -ENOMEM;
    return 0;
}

static uint32_t resp_pubsub_count(const struct resp_pubsub *ps, int kind)
{
    return kind == RESP_SUB_SHARD ? ps->n_shard : ps->n_channels + ps->n_patterns;
}

/* Appends a done msg holding a confirmation "[kind, name or nil, count]". */
static void resp_pubsub_confirm(struct resp_session *s, const char *kind, const char *name,
                                size_t len, uint32_t count)
{
    struct resp_msg *m = resp_session_enqueue(s);
    char head[96];
    if (!m) {
        s->closing = 1;
        return;
    }
    int n = snprintf(head, sizeof(head), "%c3\r\n$%zu\r\n%s\r\n", s->proto == 3 ? '>' : '*',
                     strlen(kind), kind);
    resp_msg_append(s->rw, m, head, (size_t)n);
    if (name) {
        n = snprintf(head, sizeof(head), "$%zu\r\n", len);
        resp_msg_append(s->rw, m, head, (size_t)n);
        resp_msg_append(s->rw, m, name, len);
        resp_msg_append(s->rw, m, "\r\n", 2);
    } else {
        resp_msg_append(s->rw, m, s->proto == 3 ? "_\r\n" : "$-1\r\n", s->proto == 3 ? 3 : 5);
    }
    n = snprintf(head, sizeof(head), ":%u\r\n", count);
    resp_msg_append(s->rw, m, head, (size_t)n);
    resp_msg_complete(s->rw, m, s->proto == 3 ? '>' : '*', 3);
}

/* The command's kind of subscription and whether it subscribes. */
static int resp_pubsub_kind(const struct resp_cmd *cmd, int *subscribe)
{
    *subscribe = cmd->id == RESP_CMD_SUBSCRIBE || cmd->id == RESP_CMD_PSUBSCRIBE ||
                 cmd->id == RESP_CMD_SSUBSCRIBE;
    if (cmd->id == RESP_CMD_PSUBSCRIBE || cmd->id == RESP_CMD_PUNSUBSCRIBE)
        return RESP_SUB_PATTERN;
    if (cmd->id == RESP_CMD_SSUBSCRIBE || cmd->id == RESP_CMD_SUNSUBSCRIBE)
        return RESP_SUB_SHARD;
    return RESP_SUB_CHANNEL;
}

/* One name of a (P|S)(UN)SUBSCRIBE: to its shard, or every shard for a
 * pattern; answered here when no shard has it. Returns 0 or -1 (closing). */
static int resp_pubsub_one(struct resp_session *s, const struct resp_cmd *cmd, int kind, int sub,
                           const char *name, size_t len)
{
    char upper[16];
    size_t i;
    for (i = 0; cmd->name[i] && i < sizeof(upper) - 1; i++)
        upper[i] = (char)(cmd->name[i] - ('a' <= cmd->name[i] && cmd->name[i] <= 'z' ? 32 : 0));
    upper[i] = 0;
    uint32_t from = 0, to = s->route->n_shards;
    if (kind != RESP_SUB_PATTERN) {
        int sh = resp_route_shard(s->route, name, len);
        if (sh < 0)
            sh = 0;
        from = (uint32_t)sh;
        to = from + 1;
    }
    if (!sub && (!s->ps.conns || (kind != RESP_SUB_PATTERN && !s->ps.conns[from]) ||
                 (kind == RESP_SUB_PATTERN && !resp_sub_find(&s->ps, kind, name, len, 0)))) {
        resp_pubsub_confirm(s, cmd->name, name, len, resp_pubsub_count(&s->ps, kind));
        return 0;
    }
    for (uint32_t sh = from; sh < to; sh++) {
        struct resp_conn *c = resp_pubsub_conn(s, sh);
        if (!c || resp_pubsub_send(c, upper, name, len) < 0) {
            s->closing = 1; /* a subscription that cannot be made: as a lost connection */
            return -1;
        }
    }
    return 0;
}

void resp_pubsub_cmd(struct resp_session *s, struct resp_msg *m, const struct resp_cmd *cmd,
                     const char *base, const struct resp_arg *args, uint32_t argc)
{
    int sub, kind = resp_pubsub_kind(cmd, &sub);
    struct resp_pubsub *ps = &s->ps;
    resp_msg_complete(s->rw, m, '*', 0); /* no bytes of its own: the confirmations follow */
    if (sub)
        ps->mode = 1;
    for (uint32_t i = 1; i < argc; i++)
        if (resp_pubsub_one(s, cmd, kind, sub, base + args[i].off, args[i].len) < 0)
            return;
    if (argc > 1 || sub)
        return;
    /* unsubscribe from every one of that kind */
    uint32_t have = kind == RESP_SUB_PATTERN ? ps->n_patterns
                  : kind == RESP_SUB_SHARD ? ps->n_shard : ps->n_channels;
    if (have == 0 || !ps->conns) {
        resp_pubsub_confirm(s, cmd->name, NULL, 0, resp_pubsub_count(ps, kind));
        if (ps->n_channels + ps->n_patterns + ps->n_shard == 0)
            ps->mode = 0;
        return;
    }
    char upper[16];
    size_t k;
    for (k = 0; cmd->name[k] && k < sizeof(upper) - 1; k++)
        upper[k] = (char)(cmd->name[k] - 32);
    upper[k] = 0;
    for (uint32_t sh = 0; sh < ps->n_conns; sh++)
        if (ps->conns[sh] && resp_pubsub_send(ps->conns[sh], upper, NULL, 0) < 0)
            s->closing = 1;
}

/* Copies m's reply (a confirmation: small) into buf; 0 when it does not fit. */
static size_t resp_pubsub_copy(const struct resp_msg *m, char *buf, size_t size)
{
    size_t n = 0;
    for (const struct resp_chunk *k = m->rhead; k; k = k->next) {
        size_t l = k->len - k->pos;
        if (n + l > size)
            return 0;
        memcpy(buf + n, k->data + k->pos, l);
        n += l;
    }
    return n;
}

/* The bulk string (or null) at *p of text ending at end: sets *out / *len
 * (NULL for a null) and moves *p past it. Returns 0 or -1. */
static int resp_pubsub_bulk(const char **p, const char *end, const char **out, size_t *len)
{
    const char *q = *p;
    if (q >= end)
        return -1;
    if (*q == '_' || (end - q >= 4 && memcmp(q, "$-1\r", 4) == 0)) {
        *out = NULL;
        *len = 0;
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        if (!nl)
            return -1;
        *p = nl + 1;
        return 0;
    }
    if (*q != '$')
        return -1;
    size_t n = strtoull(q + 1, NULL, 10);
    const char *data = memchr(q, '\n', (size_t)(end - q));
    if (!data || (size_t)(end - ++data) < n + 2)
        return -1;
    *out = data;
    *len = n;
    *p = data + n + 2;
    return 0;
}

/* A confirmation from a shard: weir's own count; a pattern's once. Returns
 * 1 when it is passed on (as rewritten by resp_pubsub_confirm). */
static int resp_pubsub_confirmation(struct resp_session *s, const char *kind, size_t kind_len,
                                    const char *name, size_t len)
{
    struct resp_pubsub *ps = &s->ps;
    char k[16];
    if (kind_len >= sizeof(k))
        return 0;
    memcpy(k, kind, kind_len);
    k[kind_len] = 0;
    int unsub = strstr(k, "unsub") != NULL;
    int type = k[0] == 'p' ? RESP_SUB_PATTERN
             : strcmp(k, "ssubscribe") == 0 || strcmp(k, "sunsubscribe") == 0 ? RESP_SUB_SHARD
                                                                               : RESP_SUB_CHANNEL;
    if (!name)
        return 0; /* "none left on this shard": weir says so itself when it is true */
    struct resp_sub *u = resp_sub_find(ps, type, name, len, !unsub);
    if (!u && !unsub)
        return 0;
    uint32_t *counter = type == RESP_SUB_PATTERN ? &ps->n_patterns
                      : type == RESP_SUB_SHARD ? &ps->n_shard : &ps->n_channels;
    if (type == RESP_SUB_PATTERN && u) { /* every shard confirms: pass the first of each round */
        uint32_t *seen = unsub ? &u->unsub_seen : &u->sub_seen;
        int first = *seen == 0;
        *seen = (*seen + 1) % (ps->n_conns ? ps->n_conns : 1);
        if (!first)
            return 0;
    }
    if (u && !unsub && !u->active) {
        u->active = 1;
        (*counter)++;
    } else if (u && unsub && u->active) {
        u->active = 0;
        (*counter)--;
    }
    if (u && !u->active && u->sub_seen == 0 && u->unsub_seen == 0)
        resp_sub_drop(ps, u);
    resp_pubsub_confirm(s, k, name, len, resp_pubsub_count(ps, type));
    if (unsub && ps->n_channels + ps->n_patterns + ps->n_shard == 0)
        ps->mode = 0;
    return 1;
}

void resp_pubsub_push(struct resp_session *s, struct resp_msg *m)
{
    char text[1024];
    size_t n = resp_pubsub_copy(m, text, sizeof(text));
    const char *p = text, *end = text + n, *kind = NULL, *name = NULL;
    size_t kind_len = 0, len = 0;
    const char *nl = n ? memchr(text, '\n', n) : NULL;
    int confirmation = 0;
    if (nl) {
        p = nl + 1;
        if (resp_pubsub_bulk(&p, end, &kind, &kind_len) == 0 && kind &&
            !(kind_len >= 7 && memcmp(kind + kind_len - 7, "message", 7) == 0) &&
            resp_pubsub_bulk(&p, end, &name, &len) == 0)
            confirmation = 1;
    }
    if (confirmation) {
        resp_pubsub_confirmation(s, kind, kind_len, name, len);
        resp_msg_put(s->rw, m);
        return;
    }
    if (s->n_pending >= RESP_PUBSUB_MAX_QUEUED) { /* a subscriber that does not read */
        resp_msg_put(s->rw, m);
        s->closing = 1;
        resp_session_wake(s);
        return;
    }
    m->s = s; /* a message: passed on as it came */
    m->done = 1;
    if (s->q_tail)
        s->q_tail->next = m;
    else
        s->q_head = m;
    s->q_tail = m;
    s->n_pending++;
    resp_session_wake(s);
}

void resp_pubsub_free(struct resp_session *s)
{
    struct resp_pubsub *ps = &s->ps;
    for (uint32_t i = 0; i < ps->n_conns; i++)
        if (ps->conns[i])
            resp_conn_close_dedicated(ps->conns[i]);
    free(ps->conns);
    while (ps->subs) {
        struct resp_sub *u = ps->subs;
        ps->subs = u->next;
        free(u);
    }
    memset(ps, 0, sizeof(*ps));
}

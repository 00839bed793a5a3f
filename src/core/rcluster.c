/* rcluster: Redis Cluster's key-to-slot rule, redirection errors and the
 * CLUSTER SLOTS / CLUSTER SHARDS replies, kept apart from the connection
 * code (store.c, resp_cmap.c) so they can be tested without a network.
 *
 *   key --hash tag--> bytes --CRC16 mod 16384--> slot --slot map--> primary
 *
 * Everything here reads only what it is given and never allocates. */
#include "core/rcluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* CRC16 XModem (poly 0x1021, init 0), bitwise; keys are short. */
uint16_t rcluster_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned rcluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return rcluster_crc16(open + 1, (size_t)(close - open - 1)) & (RCLUSTER_SLOTS - 1);
    }
    return rcluster_crc16(key, len) & (RCLUSTER_SLOTS - 1);
}

/* Parses "NNNN" (0..max) from s[0..len). Returns 0 or -EINVAL. */
static int rcluster_parse_num(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (len == 0 || len > 10)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Splits "host:port" / "[v6]:port" at its last colon into out. */
static int rcluster_parse_hostport(const char *s, size_t len, struct rcluster_redirect *out)
{
    const char *colon = NULL;
    unsigned long port;

    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (colon == NULL)
        return -EINVAL;
    size_t hlen = (size_t)(colon - s);
    const char *host = s;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen >= RCLUSTER_HOST_MAX || memchr(host, ' ', hlen) != NULL ||
        rcluster_parse_num(colon + 1, (size_t)(s + len - colon - 1), 65535, &port) < 0 || port == 0)
        return -EINVAL;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}

int rcluster_redirect_parse(const char *err, size_t len, struct rcluster_redirect *out)
{
    size_t word;
    unsigned long slot;

    if (len > 5 && memcmp(err, "MOVED ", 6) == 0) {
        out->ask = 0;
        word = 6;
    } else if (len > 3 && memcmp(err, "ASK ", 4) == 0) {
        out->ask = 1;
        word = 4;
    } else {
        return -EINVAL;
    }
    const char *s = err + word, *end = err + len;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (sp == NULL || rcluster_parse_num(s, (size_t)(sp - s), RCLUSTER_SLOTS - 1, &slot) < 0)
        return -EINVAL;
    out->slot = (unsigned)slot;
    return rcluster_parse_hostport(sp + 1, (size_t)(end - sp - 1), out);
}

/* Copies a node's host (a reply string; "" or "?" means the node asked)
 * into out. Returns 0 or -EPROTO. */
static int rcluster_host(const redisReply *h, const char *self_host, char *out)
{
    if (h->type != REDIS_REPLY_STRING || h->len >= RCLUSTER_HOST_MAX ||
        memchr(h->str, '\0', h->len) != NULL)
        return -EPROTO;
    /* Redis answers "" (or "?") for itself when it does not know its address */
    if (h->len == 0 || (h->len == 1 && h->str[0] == '?'))
        snprintf(out, RCLUSTER_HOST_MAX, "%s", self_host);
    else
        memcpy(out, h->str, h->len + 1);
    return 0;
}

/* A CLUSTER SLOTS node [host, port, id?, ...] into *out. */
static int rcluster_slots_node(const redisReply *node, const char *self_host,
                               struct rcluster_node *out)
{
    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        node->element[1]->type != REDIS_REPLY_INTEGER || node->element[1]->integer < 1 ||
        node->element[1]->integer > 65535)
        return -EPROTO;
    out->port = (int)node->element[1]->integer;
    return rcluster_host(node->element[0], self_host, out->host);
}

/* Checks a CLUSTER SLOTS entry [first, last, primary, replicas...]. */
static int rcluster_slots_entry(const redisReply *e, const char *self_host, rcluster_range_fn fn,
                                void *arg)
{
    struct rcluster_node nodes[RCLUSTER_NODES_MAX];
    size_t n = 0;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
        return -EPROTO;
    const redisReply *lo = e->element[0], *hi = e->element[1];
    if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 ||
        lo->integer > hi->integer || hi->integer >= RCLUSTER_SLOTS)
        return -EPROTO;
    for (size_t i = 2; i < e->elements; i++) {
        if (rcluster_slots_node(e->element[i], self_host, &nodes[n]) < 0)
            return -EPROTO;
        if (n + 1 < RCLUSTER_NODES_MAX)
            n++;
    }
    return fn(arg, (unsigned)lo->integer, (unsigned)hi->integer, nodes, n);
}

int rcluster_slots_walk(const redisReply *r, const char *self_host, rcluster_range_fn fn, void *arg)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return -EPROTO;
    for (size_t i = 0; i < r->elements; i++) {
        int rc = rcluster_slots_entry(r->element[i], self_host, fn, arg);
        if (rc < 0)
            return rc;
    }
    return (int)r->elements;
}

/* The value of `name` in the flat [name, value, ...] array m, or NULL. */
static const redisReply *rcluster_field(const redisReply *m, const char *name)
{
    if (m->type != REDIS_REPLY_ARRAY || m->elements % 2 != 0)
        return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2) {
        const redisReply *k = m->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(name) == k->len &&
            memcmp(k->str, name, k->len) == 0)
            return m->element[i + 1];
    }
    return NULL;
}

static int rcluster_field_is(const redisReply *m, const char *name, const char *value)
{
    const redisReply *v = rcluster_field(m, name);
    return v && v->type == REDIS_REPLY_STRING && strlen(value) == v->len &&
           memcmp(v->str, value, v->len) == 0;
}

/* A CLUSTER SHARDS node map into *out. Returns 0 or -EPROTO. */
static int rcluster_shards_node(const redisReply *m, const char *self_host,
                                struct rcluster_node *out)
{
    const redisReply *port = rcluster_field(m, "port");
    const redisReply *host = rcluster_field(m, "endpoint");
    const redisReply *ip = rcluster_field(m, "ip");

    if (port == NULL || port->type != REDIS_REPLY_INTEGER || port->integer < 1 ||
        port->integer > 65535)
        return -EPROTO;
    out->port = (int)port->integer;
    if (host == NULL || host->type != REDIS_REPLY_STRING || host->len == 0 ||
        (host->len == 1 && host->str[0] == '?'))
        host = ip;
    if (host == NULL) {
        snprintf(out->host, sizeof(out->host), "%s", self_host);
        return 0;
    }
    return rcluster_host(host, self_host, out->host);
}

/* One shard of CLUSTER SHARDS: its nodes (primary first), then fn per
 * range. Returns the number of ranges, or a negative errno. */
static int rcluster_shards_entry(const redisReply *e, const char *self_host, rcluster_range_fn fn,
                                 void *arg)
{
    struct rcluster_node nodes[RCLUSTER_NODES_MAX];
    size_t n = 1;
    int have_primary = 0, ranges = 0;
    const redisReply *slots = rcluster_field(e, "slots"), *list = rcluster_field(e, "nodes");

    if (slots == NULL || list == NULL || slots->type != REDIS_REPLY_ARRAY ||
        list->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0)
        return -EPROTO;
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *m = list->element[i];
        int primary = rcluster_field_is(m, "role", "master") || rcluster_field_is(m, "role", "primary");
        struct rcluster_node *to = primary ? &nodes[0] : &nodes[n];
        if (!primary && (n >= RCLUSTER_NODES_MAX || !rcluster_field_is(m, "health", "online")))
            continue;
        if (rcluster_shards_node(m, self_host, to) < 0)
            return -EPROTO;
        if (primary)
            have_primary = 1;
        else
            n++;
    }
    if (!have_primary)
        return 0;
    for (size_t i = 0; i < slots->elements; i += 2) {
        const redisReply *lo = slots->element[i], *hi = slots->element[i + 1];
        if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER ||
            lo->integer < 0 || lo->integer > hi->integer || hi->integer >= RCLUSTER_SLOTS)
            return -EPROTO;
        int rc = fn(arg, (unsigned)lo->integer, (unsigned)hi->integer, nodes, n);
        if (rc < 0)
            return rc;
        ranges++;
    }
    return ranges;
}

int rcluster_shards_walk(const redisReply *r, const char *self_host, rcluster_range_fn fn,
                         void *arg)
{
    int ranges = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    for (size_t i = 0; i < r->elements; i++) {
        int rc = rcluster_shards_entry(r->element[i], self_host, fn, arg);
        if (rc < 0)
            return rc;
        ranges += rc;
    }
    return ranges > 0 ? ranges : -EPROTO;
}

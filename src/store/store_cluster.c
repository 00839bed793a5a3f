/* store_cluster: Redis Cluster's key-to-slot rule, redirection errors and
 * the CLUSTER SLOTS reply, kept apart from the connection code so they can
 * be tested without a network.
 *
 *   key --hash tag--> bytes --CRC16 mod 16384--> slot --slot map--> primary
 *
 * Everything here reads only what it is given and never allocates. */
#include "store/store_cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* CRC16 XModem (poly 0x1021, init 0), bitwise; keys are short. */
uint16_t store_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned store_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return store_crc16(open + 1, (size_t)(close - open - 1)) & (STORE_SLOTS - 1);
    }
    return store_crc16(key, len) & (STORE_SLOTS - 1);
}

/* Parses "NNNN" (0..max) from s[0..len). Returns 0 or -EINVAL. */
static int store_parse_num(const char *s, size_t len, unsigned long max, unsigned long *out)
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
static int store_parse_hostport(const char *s, size_t len, struct store_redirect *out)
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
    if (hlen >= STORE_HOST_MAX || memchr(host, ' ', hlen) != NULL ||
        store_parse_num(colon + 1, (size_t)(s + len - colon - 1), 65535, &port) < 0 || port == 0)
        return -EINVAL;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}

int store_redirect_parse(const char *err, size_t len, struct store_redirect *out)
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
    if (sp == NULL || store_parse_num(s, (size_t)(sp - s), STORE_SLOTS - 1, &slot) < 0)
        return -EINVAL;
    out->slot = (unsigned)slot;
    return store_parse_hostport(sp + 1, (size_t)(end - sp - 1), out);
}

/* Checks a CLUSTER SLOTS entry [first, last, [host, port, id?, ...], replicas...]. */
static int store_slots_entry(const redisReply *e, const char *self_host, store_slots_fn fn,
                             void *arg)
{
    char host[STORE_HOST_MAX];

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
        return -EPROTO;
    const redisReply *lo = e->element[0], *hi = e->element[1], *node = e->element[2];
    if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER || lo->integer < 0 ||
        lo->integer > hi->integer || hi->integer >= STORE_SLOTS)
        return -EPROTO;
    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        node->element[0]->type != REDIS_REPLY_STRING ||
        node->element[1]->type != REDIS_REPLY_INTEGER || node->element[1]->integer < 1 ||
        node->element[1]->integer > 65535)
        return -EPROTO;
    const redisReply *h = node->element[0];
    if (h->len >= sizeof(host) || memchr(h->str, '\0', h->len) != NULL)
        return -EPROTO;
    /* Redis answers "" (or "?") for itself when it does not know its address */
    if (h->len == 0 || (h->len == 1 && h->str[0] == '?'))
        snprintf(host, sizeof(host), "%s", self_host);
    else
        memcpy(host, h->str, h->len + 1);
    return fn(arg, (unsigned)lo->integer, (unsigned)hi->integer, host,
              (int)node->element[1]->integer);
}

int store_slots_walk(const redisReply *r, const char *self_host, store_slots_fn fn, void *arg)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return -EPROTO;
    for (size_t i = 0; i < r->elements; i++) {
        int rc = store_slots_entry(r->element[i], self_host, fn, arg);
        if (rc < 0)
            return rc;
    }
    return (int)r->elements;
}

/* cache_l2_purge: see cache_l2_purge.h. The keys are cache_l2.c's:
 *
 *   tag T     SMEMBERS weir:cache:NAME:tag:T -> DEL each key -> DEL the set
 *   prefix P  SCAN cursor MATCH weir:cache:NAME:v<version>|P* COUNT 100
 *               -> DEL each key found -> SCAN on until the cursor is 0
 *   url U     DEL weir:cache:NAME:v<version>|U (every Vary variant: one
 *             hash), then as prefix "U|" (the objects keyed by request
 *             headers or cookies too)
 *   all       SCAN over weir:cache:NAME:* (objects and tag sets)
 *
 * A job is one purge: malloc'd, reference counted by the commands it has
 * out (its SCAN or SMEMBERS, and the DELs it sent, which go unanswered by
 * the job's progress), freed when the last one calls back. One SCAN at a
 * time, each over COUNT keys, so a large purge spreads over many loop turns
 * and never holds the worker. Patterns escape glob characters of the key.
 * With a Redis Cluster, SCAN reaches one node only (the store client sends
 * a keyless command to any node): a prefix or all purge there misses the
 * other nodes' keys; tag and exact URL purges reach every node. */
#include "http/steps/cache_l2_purge.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_cfg.h"
#include "core/log.h"
#include "http/steps/cache_l2.h"
#include "store/store.h"
#include "store/store_registry.h"

#define L2_PURGE_SCAN_COUNT "100"

struct l2_purge {
    unsigned refs;                 /* commands out, + 1 while starting */
    struct store *store;
    struct cache *cache;           /* a reference */
    char *name;                    /* the cache's, for logs */
    char *pattern;                 /* SCAN's MATCH pattern, or NULL */
    char *set_key;                 /* a tag purge: the tag's set, or NULL */
    char cursor[32];
    int failed;                    /* a failure was logged */
};

static void l2_purge_put(struct l2_purge *j)
{
    if (--j->refs > 0)
        return;
    cache_release(j->cache);
    free(j->name);
    free(j->pattern);
    free(j->set_key);
    free(j);
}

static int l2_purge_ok(struct l2_purge *j, enum store_result r, const struct redisReply *reply)
{
    if (r == STORE_OK && reply && reply->type != REDIS_REPLY_ERROR)
        return 1;
    cache_count_l2_error(j->cache, CACHE_L2_DEL);
    if (!j->failed)
        log_warn("cache %s: an L2 purge failed (%s); L2 copies may remain until they expire",
                 j->name, r == STORE_OK ? "an error reply" : store_result_name(r));
    j->failed = 1;
    return 0;
}

static void l2_purge_sent(void *arg, enum store_result r, struct redisReply *reply)
{
    struct l2_purge *j = arg;
    (void)l2_purge_ok(j, r, reply);
    l2_purge_put(j);
}

/* Sends argv, a reference for its reply. Returns 0 or -EAGAIN. */
static int l2_purge_send(struct l2_purge *j, const char *key, size_t klen, int argc,
                         const char **argv, const size_t *argvlen, store_cb cb)
{
    j->refs++;
    if (store_command(j->store, key, klen, argc, argv, argvlen, cb, j) != NULL)
        return 0;
    j->refs--;
    (void)l2_purge_ok(j, STORE_UNAVAILABLE, NULL);
    return -EAGAIN;
}

static void l2_purge_del(struct l2_purge *j, const char *key, size_t len)
{
    const char *argv[] = { "DEL", key };
    size_t argvlen[] = { 3, len };
    (void)l2_purge_send(j, key, len, 2, argv, argvlen, l2_purge_sent);
}

/* DELs each string of the array reply a. */
static void l2_purge_del_all(struct l2_purge *j, const struct redisReply *a)
{
    for (size_t i = 0; a && a->type == REDIS_REPLY_ARRAY && i < a->elements; i++)
        if (a->element[i]->type == REDIS_REPLY_STRING)
            l2_purge_del(j, a->element[i]->str, a->element[i]->len);
}

static void l2_purge_members(void *arg, enum store_result r, struct redisReply *reply)
{
    struct l2_purge *j = arg;
    if (l2_purge_ok(j, r, reply) && !store_registry_exiting()) {
        l2_purge_del_all(j, reply);
        l2_purge_del(j, j->set_key, strlen(j->set_key));
    }
    l2_purge_put(j);
}

static int l2_purge_scan(struct l2_purge *j);

static void l2_purge_scanned(void *arg, enum store_result r, struct redisReply *reply)
{
    struct l2_purge *j = arg;
    if (l2_purge_ok(j, r, reply) && !store_registry_exiting() && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[0]->len < sizeof(j->cursor)) {
        l2_purge_del_all(j, reply->element[1]);
        memcpy(j->cursor, reply->element[0]->str, reply->element[0]->len);
        j->cursor[reply->element[0]->len] = 0;
        if (strcmp(j->cursor, "0") != 0)
            (void)l2_purge_scan(j);
    }
    l2_purge_put(j);
}

static int l2_purge_scan(struct l2_purge *j)
{
    const char *argv[] = { "SCAN", j->cursor, "MATCH", j->pattern, "COUNT", L2_PURGE_SCAN_COUNT };
    size_t argvlen[] = { 4, strlen(j->cursor), 5, strlen(j->pattern), 5,
                         strlen(L2_PURGE_SCAN_COUNT) };
    return l2_purge_send(j, NULL, 0, 6, argv, argvlen, l2_purge_scanned);
}

char *cache_l2_purge_pattern(const char *p, size_t n, const char *tail)
{
    char *out = malloc(2 * n + strlen(tail) + 1), *at = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", p[i]))
            *at++ = '\\';
        *at++ = p[i];
    }
    strcpy(at, tail);
    return out;
}

/* "weir:cache:NAME:" [v<version>| arg] in a new string. */
static char *l2_purge_key(const struct cfg_cache *cc, int versioned, const char *arg, size_t len,
                          size_t *out_len)
{
    size_t cap = 64 + strlen(cc->name) + len;
    char *k = malloc(cap);
    if (k == NULL)
        return NULL;
    int h = versioned ? snprintf(k, cap, "weir:cache:%s:v%u|", cc->name, cc->version)
                      : snprintf(k, cap, "weir:cache:%s:", cc->name);
    memcpy(k + h, arg, len);
    k[h + len] = 0;
    *out_len = (size_t)h + len;
    return k;
}

/* Sets up what the job sends first. Returns 0 or -ENOMEM. */
static int l2_purge_plan(struct l2_purge *j, const struct cfg_cache *cc,
                         enum cache_purge_kind kind, const char *arg, size_t len)
{
    size_t klen;
    if (kind == CACHE_PURGE_TAG) {
        char tk[CACHE_L2_KEY_MAX];
        int n = cache_l2_tag_key(cc->name, arg, len, tk, sizeof(tk));
        j->set_key = n < 0 ? NULL : strndup(tk, (size_t)n);
        return j->set_key ? 0 : -ENOMEM;
    }
    char *k = l2_purge_key(cc, kind != CACHE_PURGE_ALL, arg, kind == CACHE_PURGE_ALL ? 0 : len,
                           &klen);
    if (k == NULL)
        return -ENOMEM;
    if (kind == CACHE_PURGE_URL)
        l2_purge_del(j, k, klen);
    j->pattern = cache_l2_purge_pattern(k, klen, kind == CACHE_PURGE_URL ? "|*" : "*");
    free(k);
    return j->pattern ? 0 : -ENOMEM;
}

int cache_l2_purge(struct ev_loop *loop, struct cache *c, const struct cfg_cache *cc,
                   enum cache_purge_kind kind, const char *arg, size_t len)
{
    struct store *s = cc->l2_store ? store_registry_get(loop, cc->l2_store, NULL) : NULL;
    if (s == NULL)
        return cc->l2_store ? -ENOMEM : -ENOENT;
    struct l2_purge *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    j->refs = 1;
    j->store = s;
    j->cache = c;
    cache_ref(c);
    strcpy(j->cursor, "0");
    j->name = strdup(cc->name);
    int rc = j->name ? l2_purge_plan(j, cc, kind, arg, len) : -ENOMEM;
    if (rc == 0 && j->set_key) {
        const char *argv[] = { "SMEMBERS", j->set_key };
        size_t argvlen[] = { 8, strlen(j->set_key) };
        rc = l2_purge_send(j, j->set_key, argvlen[1], 2, argv, argvlen, l2_purge_members);
    } else if (rc == 0) {
        rc = l2_purge_scan(j);
    }
    l2_purge_put(j);
    return rc;
}

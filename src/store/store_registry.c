/* store_registry: see store_registry.h. A thread-specific table (freed by
 * the thread's exit through the pthread key's destructor) of clients keyed
 * by their settings as text: two `stores:` entries, or two reloads, with
 * the same settings share one client. */
#include "store/store_registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/store_cfg.h"

#define STORE_REGISTRY_MAX 32

struct store_registry_slot {
    char *name;
    char *fingerprint;     /* the settings, as text */
    struct store *store;
};

struct store_registry {
    struct ev_loop *loop;
    struct store_registry_slot slots[STORE_REGISTRY_MAX];
    size_t n;
};

static pthread_key_t store_registry_key;
static pthread_once_t store_registry_once = PTHREAD_ONCE_INIT;

static _Thread_local int registry_exiting;

int store_registry_exiting(void)
{
    return registry_exiting;
}

static void store_registry_free(void *p)
{
    struct store_registry *reg = p;
    registry_exiting = 1; /* callbacks from store_free below must not resume requests */
    for (size_t i = 0; i < reg->n; i++) {
        store_free(reg->slots[i].store);
        free(reg->slots[i].name);
        free(reg->slots[i].fingerprint);
    }
    free(reg);
}

static void store_registry_init(void)
{
    pthread_key_create(&store_registry_key, store_registry_free);
}

/* The settings a store client copies, as one string. */
static char *store_registry_fingerprint(const struct cfg_store *c)
{
    char buf[4096];
    size_t used = (size_t)snprintf(buf, sizeof(buf), "%s|%d|%llu|%llu|%llu|%llu|%s|%s|%u|%u|%u",
                                   c->name, c->cluster, (unsigned long long)c->connect_timeout_ms,
                                   (unsigned long long)c->command_timeout_ms,
                                   (unsigned long long)c->reconnect_base_ms,
                                   (unsigned long long)c->reconnect_max_ms,
                                   c->username ? c->username : "", c->password ? c->password : "",
                                   c->database, c->max_pending, c->max_redirects);
    for (size_t i = 0; i < c->n_servers && used < sizeof(buf); i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "|%s", c->servers[i].address);
    return strdup(buf);
}

struct store *store_registry_get(struct ev_loop *loop, const struct cfg_store *cfg,
                                 int *created)
{
    if (created)
        *created = 0;
    pthread_once(&store_registry_once, store_registry_init);
    struct store_registry *reg = pthread_getspecific(store_registry_key);
    if (reg == NULL) {
        if ((reg = calloc(1, sizeof(*reg))) == NULL)
            return NULL;
        reg->loop = loop;
        pthread_setspecific(store_registry_key, reg);
    }
    char *fp = store_registry_fingerprint(cfg);
    if (fp == NULL)
        return NULL;
    for (size_t i = reg->n; i-- > 0;) {
        if (strcmp(reg->slots[i].fingerprint, fp) == 0) {
            free(fp);
            return reg->slots[i].store;
        }
    }
    if (reg->n == STORE_REGISTRY_MAX) {
        log_warn("stores: more than %d store settings on one worker since start; not "
                 "connecting to store %s", STORE_REGISTRY_MAX, cfg->name);
        free(fp);
        return NULL;
    }
    struct store_registry_slot *slot = &reg->slots[reg->n];
    slot->fingerprint = fp;
    slot->name = strdup(cfg->name);
    slot->store = store_new(loop, cfg);
    if (slot->name == NULL || slot->store == NULL) {
        store_free(slot->store);
        free(slot->name);
        free(fp);
        *slot = (struct store_registry_slot){ 0 };
        return NULL;
    }
    reg->n++;
    if (created)
        *created = 1;
    return slot->store;
}

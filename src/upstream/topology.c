/* topology: see topology.h. A flat array: changes are rare (an API call,
 * a registration, a heartbeat) and a snapshot build walks it once per
 * cluster; TOPOLOGY_MAX_ITEMS bounds it. */
#include "upstream/topology.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "server/config.h"

static int topology_same(const struct topology_item *it, const char *cluster,
                         const struct sockaddr_storage *addr, socklen_t addrlen)
{
    return strcmp(it->cluster, cluster) == 0 && cfg_same_addr(&it->addr, it->addrlen, addr, addrlen);
}

struct topology_item *topology_find(struct topology *t, const char *cluster,
                                    const struct sockaddr_storage *addr, socklen_t addrlen)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (topology_same(&t->items[i], cluster, addr, addrlen))
            return &t->items[i];
    return NULL;
}

static const struct topology_item *topology_find_const(const struct topology *t,
                                                       const char *cluster,
                                                       const struct sockaddr_storage *addr,
                                                       socklen_t addrlen)
{
    return topology_find((struct topology *)t, cluster, addr, addrlen);
}

struct topology_item *topology_get(struct topology *t, const char *cluster, const char *address,
                                   const struct sockaddr_storage *addr, socklen_t addrlen)
{
    struct topology_item *it = topology_find(t, cluster, addr, addrlen);
    if (it)
        return it;
    if (t->n == TOPOLOGY_MAX_ITEMS)
        return NULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct topology_item *items = realloc(t->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        t->items = items;
        t->cap = cap;
    }
    it = &t->items[t->n];
    memset(it, 0, sizeof(*it));
    it->cluster = strdup(cluster);
    it->address = strdup(address);
    if (!it->cluster || !it->address) {
        free(it->cluster);
        free(it->address);
        return NULL;
    }
    memcpy(&it->addr, addr, sizeof(it->addr));
    it->addrlen = addrlen;
    it->drain = it->down = -1;
    t->n++;
    return it;
}

static void topology_item_free(struct topology_item *it)
{
    free(it->cluster);
    free(it->address);
    free(it->meta);
    free(it->dns);
}

void topology_drop(struct topology *t, struct topology_item *it)
{
    size_t i = (size_t)(it - t->items);
    topology_item_free(it);
    memmove(&t->items[i], &t->items[i + 1], (t->n - i - 1) * sizeof(*it));
    t->n--;
}

static void topology_apply(struct cfg_endpoint *e, const struct topology_item *it)
{
    if (it->weight > 0)
        e->weight = (uint32_t)it->weight;
    if (it->drain >= 0)
        e->drain = it->drain;
    if (it->down >= 0)
        e->down = it->down;
}

int topology_endpoints(const struct topology *t, const struct cfg_cluster *cc,
                       struct cfg_endpoint **out, size_t *n_out)
{
    size_t cap = cc->n_endpoints + (t ? t->n : 0);
    struct cfg_endpoint *list = calloc(cap ? cap : 1, sizeof(*list));
    if (!list)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < cc->n_endpoints; i++) {
        const struct cfg_endpoint *ce = &cc->endpoints[i];
        if (ce->host)
            continue; /* its addresses are items of the resolver's */
        const struct topology_item *it = topology_find_const(t, cc->name, &ce->addr, ce->addrlen);
        if (it && it->removed)
            continue;
        list[n] = *ce;
        if (it)
            topology_apply(&list[n], it);
        n++;
    }
    for (size_t i = 0; t && i < t->n; i++) {
        const struct topology_item *it = &t->items[i];
        if (!it->added || it->removed || strcmp(it->cluster, cc->name) != 0)
            continue;
        struct cfg_endpoint *e = &list[n++];
        e->address = it->address;
        memcpy(&e->addr, &it->addr, sizeof(e->addr));
        e->addrlen = it->addrlen;
        e->weight = 1;
        topology_apply(e, it);
    }
    *out = list;
    *n_out = n;
    return 0;
}

/* Whether cfg's cluster `name` lists the address itself; *exists says
 * whether the cluster is there at all. An address resolved from a name
 * stays while the file still has that name. */
static int topology_in_file(const struct cfg *cfg, const struct topology_item *it, int *exists)
{
    const struct cfg_cluster *cc = cfg_find_cluster(cfg, it->cluster);
    *exists = cc != NULL;
    int named = cc && cc->resolve.srv && it->dns && strcmp(cc->resolve.srv, it->dns) == 0;
    for (size_t i = 0; cc && i < cc->n_endpoints; i++) {
        const struct cfg_endpoint *ce = &cc->endpoints[i];
        if (ce->host && it->dns && strcmp(ce->address, it->dns) == 0)
            named = 1;
        else if (!ce->host && cfg_same_addr(&ce->addr, ce->addrlen, &it->addr, it->addrlen))
            return 1;
    }
    if (it->dns && !named)
        *exists = 0; /* the name is gone: so is what it resolved to */
    return 0;
}

int topology_copy(struct topology *dst, const struct topology *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return 0;
    dst->items = calloc(src->n, sizeof(*dst->items));
    if (!dst->items)
        return -ENOMEM;
    dst->cap = src->n;
    for (size_t i = 0; i < src->n; i++) {
        const struct topology_item *s = &src->items[i];
        struct topology_item *d = &dst->items[i];
        *d = *s;
        d->cluster = strdup(s->cluster);
        d->address = strdup(s->address);
        d->meta = s->meta ? strdup(s->meta) : NULL;
        d->dns = s->dns ? strdup(s->dns) : NULL;
        dst->n = i + 1;
        if (!d->cluster || !d->address || (s->meta && !d->meta) || (s->dns && !d->dns)) {
            topology_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

size_t topology_reconcile(struct topology *t, const struct cfg *cfg)
{
    size_t dropped = 0;
    for (size_t i = 0; i < t->n;) {
        int exists;
        if (topology_in_file(cfg, &t->items[i], &exists) || !exists) {
            log_info("reload: cluster %s endpoint %s: the file %s; the run-time change is dropped",
                     t->items[i].cluster, t->items[i].address,
                     exists ? "names it" : t->items[i].dns ? "no longer has its name"
                                                          : "no longer has the cluster");
            topology_drop(t, &t->items[i]);
            dropped++;
            continue;
        }
        i++;
    }
    return dropped;
}

size_t topology_expire(struct topology *t, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n;) {
        struct topology_item *it = &t->items[i];
        if (it->expires_ms && it->expires_ms <= now_ms) {
            log_warn("cluster %s: registered endpoint %s missed its heartbeat (ttl %llu ms); "
                     "removed", it->cluster, it->address, (unsigned long long)it->ttl_ms);
            topology_drop(t, it);
            n++;
            continue;
        }
        i++;
    }
    return n;
}

void topology_free(struct topology *t)
{
    for (size_t i = 0; i < t->n; i++)
        topology_item_free(&t->items[i]);
    free(t->items);
    t->items = NULL;
    t->n = t->cap = 0;
}

/* libFuzzer harness for the configuration loader: cfg_load_string() on
 * arbitrary bytes.
 *
 * Whatever the input, the loader must either return a complete snapshot or
 * fail with one "fuzz.yaml:..." message; never crash, leak, read out of
 * bounds or take unbounded time. A loaded snapshot is checked against the
 * invariants config.h promises, so a logic slip shows up as a crash too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale/autoscale_cfg.h"
#include "server/config.h"
#include "http/step.h"
#include "http/target.h"
#include "store/store_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless the stores keep the promises of store_cfg.h. */
static void fuzz_check_stores(const struct cfg *cfg)
{
    if ((cfg->n_stores == 0) != (cfg->stores == NULL))
        abort();
    for (size_t i = 0; i < cfg->n_stores; i++) {
        const struct cfg_store *s = &cfg->stores[i];
        if (s->name == NULL || store_cfg_find(cfg, s->name) != s || s->n_servers < 1 ||
            (!s->cluster && s->n_servers != 1) || (s->cluster && s->database != 0) ||
            s->reconnect_base_ms > s->reconnect_max_ms || s->command_timeout_ms < 1 ||
            (s->username != NULL && s->password == NULL))
            abort();
        for (size_t j = 0; j < s->n_servers; j++)
            if (s->servers[j].address == NULL)
                abort();
    }
}

/* Aborts unless an autoscale block keeps the promises of autoscale_cfg.h. */
static void fuzz_check_autoscale(const struct cfg_autoscale *a)
{
    if (!a)
        return;
    int n = 0;
    for (int m = 0; m < AUTOSCALE_METRIC_COUNT; m++)
        n += a->present[m] && a->target[m] > 0;
    if ((a->command.argc > 0) == (a->hook_up.argc > 0) || a->min > a->max || a->max < 1 ||
        a->max > AUTOSCALE_MAX_INSTANCES || (a->min == 0 && !a->scale_to_zero) || n == 0 ||
        a->host == NULL || !(a->tolerance >= 0 && a->tolerance < 1) ||
        (a->present[AUTOSCALE_METRIC_QUEUE_VISIBLE] && a->queue == NULL) ||
        (a->command.argc && (a->port_lo == 0 || (unsigned)(a->port_hi - a->port_lo) + 1 < a->max)))
        abort();
}

/* Aborts unless `cfg` keeps every promise of config.h. */
static void fuzz_check_cfg(const struct cfg *cfg)
{
    if (cfg->workers < 1 || cfg->workers > 256 || cfg->n_listeners < 1 ||
        cfg->log.error == NULL || cfg->log.access == NULL)
        abort();
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->name == NULL || l->listen == NULL || l->max_headers < 1 ||
            l->max_headers > CFG_MAX_HEADERS)
            abort();
        if (l->protocol == CFG_PROTOCOL_REDIS) {
            /* a redis listener names a redis cluster and has no routes */
            if (l->redis_cluster == NULL || l->n_routes != 0)
                abort();
            continue;
        }
        if (l->n_routes < 1)
            abort();
        for (size_t j = 0; j < l->n_routes; j++) {
            const struct cfg_route *r = &l->routes[j];
            /* exactly one target; a cluster target is resolved */
            if (r->target == NULL || r->name == NULL)
                abort();
            if (r->target->kind == TARGET_CLUSTER &&
                (r->cluster == NULL || r->cluster != cfg_find_cluster(cfg, r->cluster_name)))
                abort();
            if (r->target->kind != TARGET_CLUSTER && (r->cluster != NULL || r->target_cfg == NULL))
                abort();
            /* steps in phase order, their state within bounds */
            for (size_t k = 0; k < r->n_steps; k++)
                if (r->steps[k].cfg == NULL || r->steps[k].state_off + r->steps[k].type->state_size >
                                                   STEP_STATE_MAX ||
                    (k > 0 && r->steps[k - 1].type->phase > r->steps[k].type->phase))
                    abort();
            if (r->path != NULL && r->path_prefix != NULL)
                abort();
        }
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const struct cfg_cluster *c = &cfg->clusters[i];
        if (c->name == NULL || (c->n_endpoints < 1 && !c->autoscale) ||
            (unsigned)c->balance >= CFG_BALANCE_COUNT)
            abort();
        fuzz_check_autoscale(c->autoscale);
        if ((c->hash_key == CFG_HASH_KEY_HEADER || c->hash_key == CFG_HASH_KEY_COOKIE) !=
            (c->hash_key_name != NULL))
            abort();
        for (size_t j = 0; j < c->n_endpoints; j++)
            if (c->endpoints[j].weight < 1 || c->endpoints[j].weight > 1000 ||
                c->endpoints[j].address == NULL)
                abort();
    }
    fuzz_check_stores(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct cfg *cfg = NULL;

    memset(err, 0x55, sizeof(err));
    int rc = cfg_load_string("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err));
    if (rc == 0) {
        if (cfg == NULL)
            abort();
        fuzz_check_cfg(cfg);
        cfg_free(cfg);
        return 0;
    }
    /* One message, NUL-terminated inside the buffer, naming the file. */
    if (cfg != NULL || memchr(err, '\0', sizeof(err)) == NULL ||
        strncmp(err, "fuzz.yaml:", 10) != 0)
        abort();
    return 0;
}

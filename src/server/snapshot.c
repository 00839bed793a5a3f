/* snapshot: see snapshot.h. Built on the main thread only (the generation
 * counter is not shared); referenced and released from any thread. */
#include "server/snapshot.h"

#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned snapshot_generation;

/* Returns the access log fd, -1 when the log is off, -2 on failure (err
 * filled). */
static int snapshot_open_access(const struct cfg *cfg, char *err, size_t err_size)
{
    const char *a = cfg->log.access;
    if (!a || strcmp(a, "off") == 0)
        return -1;
    if (strcmp(a, "stdout") == 0)
        return dup(1);
    int fd = open(a, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, err_size, "%s: log.access: cannot open '%s': %s", cfg->path, a, strerror(errno));
        return -2;
    }
    return fd;
}

/* Frees each protocol's shared state (the hooks accept a NULL one). */
static void snapshot_free_proto(struct snapshot *s)
{
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (s->protocols[p].snapshot_free)
            s->protocols[p].snapshot_free(s);
}

struct snapshot *snapshot_new(struct cfg *cfg, const struct topology *topo, unsigned n_workers,
                              const struct server_protocol *protocols, char *err, size_t err_size)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    s->access_fd = snapshot_open_access(cfg, err, err_size);
    if (s->access_fd == -2)
        goto fail_free;
    if (cluster_set_new(cfg, topo, n_workers, &s->clusters) != 0) {
        snprintf(err, err_size, "out of memory building clusters");
        goto fail_access;
    }
    s->cfg = cfg;
    s->protocols = protocols;
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++) {
        if (protocols[p].snapshot_init && protocols[p].snapshot_init(s) != 0) {
            snprintf(err, err_size, "cannot build the %s state (the log says why)", protocols[p].name);
            goto fail_proto;
        }
    }
    atomic_init(&s->refs, 1);
    s->generation = ++snapshot_generation;
    return s;

fail_proto:
    snapshot_free_proto(s);
    cluster_set_free(s->clusters, cfg->n_clusters);
fail_access:
    if (s->access_fd >= 0)
        close(s->access_fd);
fail_free:
    free(s);
    return NULL;
}

void snapshot_inherit(struct snapshot *s, const struct snapshot *old)
{
    cluster_set_inherit(s->clusters, s->cfg->n_clusters, old->clusters, old->cfg->n_clusters,
                        endpoint_now_ms());
    for (int p = 0; p < CFG_PROTOCOL_COUNT; p++)
        if (s->protocols[p].snapshot_inherit)
            s->protocols[p].snapshot_inherit(s, old);
}

void snapshot_ref(struct snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snapshot_unref(struct snapshot *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    snapshot_free_proto(s);
    cluster_set_free(s->clusters, s->cfg->n_clusters);
    if (s->access_fd >= 0)
        close(s->access_fd);
    cfg_unref(s->cfg);
    free(s);
}

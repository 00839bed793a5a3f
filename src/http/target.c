/* target: the table of route targets (see target.h). */
#include "http/target.h"

#include <stdio.h>
#include <string.h>

#include "http/steps/respond.h"
#include "queue/queue_target.h"
#include "queue/topic_target.h"

/* cluster: parsed by the route itself (route_cfg.c), forwarded by the proxy. */
static const struct target_type target_cluster = {
    .key = "cluster",
    .kind = TARGET_CLUSTER,
};

static const struct target_type *const target_table[] = {
    &target_cluster,
    &target_respond,
    &target_redirect,
    &target_queue,
    &target_publish,
};

const struct target_type *target_find(const char *key)
{
    for (size_t i = 0; i < sizeof(target_table) / sizeof(target_table[0]); i++)
        if (strcmp(target_table[i]->key, key) == 0)
            return target_table[i];
    return NULL;
}

void target_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof(target_table) / sizeof(target_table[0]) && used < size; i++) {
        if (target_table[i]->parse == NULL)
            continue; /* a key of the route itself */
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", target_table[i]->key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

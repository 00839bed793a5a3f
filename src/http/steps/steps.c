/* steps: the table of route steps. A new step is a file in this folder
 * and one row here; its phase, not its place in the configuration file,
 * decides when it runs. Steps of one phase run in this table's order
 * (access before cors: a refused address gets no preflight answer). */
#include <stdio.h>
#include <string.h>

#include "http/step.h"
#include "http/steps/access.h"
#include "http/steps/cache.h"
#include "http/steps/cors.h"
#include "http/steps/auth.h"
#include "http/steps/compress.h"
#include "http/steps/forward_auth.h"
#include "http/steps/headers.h"
#include "http/steps/ratelimit.h"
#include "http/steps/rewrite.h"

static const struct step_type *const step_table[] = {
    &step_access,
    &step_cors,
    &step_auth,
    &step_forward_auth,
    &step_headers,
    &step_compress,
    &step_rate_limit,
    &step_rewrite,
    &step_cache,
};

const struct step_type *step_find(const char *key)
{
    for (size_t i = 0; i < sizeof(step_table) / sizeof(step_table[0]); i++)
        if (strcmp(step_table[i]->key, key) == 0)
            return step_table[i];
    return NULL;
}

size_t step_rank(const struct step_type *type)
{
    size_t i = 0;
    while (i < sizeof(step_table) / sizeof(step_table[0]) && step_table[i] != type)
        i++;
    return i;
}

void step_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof(step_table) / sizeof(step_table[0]) && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", step_table[i]->key);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

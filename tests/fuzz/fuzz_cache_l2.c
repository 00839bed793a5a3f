/* fuzz_cache_l2: libFuzzer harness for the decoder of the cache's L2
 * values (cache/l2_codec.c): bytes read back from Redis, which anything
 * could have written. The input is copied to an exact-size buffer. Checks:
 * a decoded object encodes again into a value that decodes to the same
 * status, fields and body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_cfg.h"
#include "cache/l2_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cache *fuzz_cache(void)
{
    static struct cache *c;
    if (c == NULL) {
        static struct cfg_cache cc = { .name = "fuzz", .memory_bytes = 64u << 20,
                                       .max_object_bytes = 1u << 20 };
        c = cache_acquire(&cc);
    }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    struct cache *c = fuzz_cache();
    char *p = malloc(size ? size : 1);
    if (c == NULL || p == NULL)
        abort();
    memcpy(p, data, size);
    struct http_slice key = { "k", 1 };
    struct cache_obj *o = cache_l2_decode(c, NULL, key, key, p, size);
    if (o != NULL) {
        char *v;
        size_t n;
        if (cache_l2_encode(o, &v, &n) != 0)
            abort();
        struct cache_obj *o2 = cache_l2_decode(c, NULL, key, key, v, n);
        if (o2 == NULL || o2->meta.status != o->meta.status || o2->body_len != o->body_len ||
            o2->n_headers != o->n_headers || (o->body_len && memcmp(o->body, o2->body, o->body_len)))
            abort();
        cache_obj_put(o2);
        free(v);
        cache_obj_put(o);
    }
    free(p);
    return 0;
}

/* l2_codec: see l2_codec.h. The layout, integers little-endian:
 *
 *   "WC1\0" | status u32 | request_time i64 | response_time i64
 *   | vary_len u32, vary | n_fields u32, n x (name_len u32, name,
 *   value_len u32, value) | body_len u64, body
 *
 * The decoder checks every length against what is left before reading, so
 * a value changed in Redis (or by another version) is refused, never
 * trusted. */
#include "cache/l2_codec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define L2_MAGIC "WC1"
#define L2_MAX_FIELDS 256
#define L2_MAX_TIME 253402300799ULL /* 9999-12-31: times past it (or negative) are not ours */

static void l2_put(char **at, const void *p, size_t n)
{
    memcpy(*at, p, n);
    *at += n;
}

static void l2_put_u32(char **at, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    l2_put(at, b, 4);
}

static void l2_put_u64(char **at, uint64_t v)
{
    l2_put_u32(at, (uint32_t)v);
    l2_put_u32(at, (uint32_t)(v >> 32));
}

int cache_l2_encode(const struct cache_obj *o, char **out, size_t *len)
{
    size_t n = 4 + 4 + 8 + 8 + 4 + o->vary.len + 4 + 8 + o->body_len;
    for (size_t i = 0; i < o->n_headers; i++)
        n += 8 + o->headers[i].name.len + o->headers[i].value.len;
    char *b = malloc(n), *at = b;
    if (b == NULL)
        return -ENOMEM;
    l2_put(&at, L2_MAGIC, 4);
    l2_put_u32(&at, (uint32_t)o->meta.status);
    l2_put_u64(&at, (uint64_t)o->request_time);
    l2_put_u64(&at, (uint64_t)o->response_time);
    l2_put_u32(&at, (uint32_t)o->vary.len);
    l2_put(&at, o->vary.p, o->vary.len);
    l2_put_u32(&at, (uint32_t)o->n_headers);
    for (size_t i = 0; i < o->n_headers; i++) {
        l2_put_u32(&at, (uint32_t)o->headers[i].name.len);
        l2_put(&at, o->headers[i].name.p, o->headers[i].name.len);
        l2_put_u32(&at, (uint32_t)o->headers[i].value.len);
        l2_put(&at, o->headers[i].value.p, o->headers[i].value.len);
    }
    l2_put_u64(&at, o->body_len);
    if (o->body_len)
        l2_put(&at, o->body, o->body_len);
    *out = b;
    *len = n;
    return 0;
}

/* A cursor over the value. */
struct l2_in {
    const unsigned char *p;
    size_t left;
};

static int l2_get_u32(struct l2_in *in, uint32_t *v)
{
    if (in->left < 4)
        return -1;
    *v = (uint32_t)in->p[0] | (uint32_t)in->p[1] << 8 | (uint32_t)in->p[2] << 16 |
         (uint32_t)in->p[3] << 24;
    in->p += 4;
    in->left -= 4;
    return 0;
}

static int l2_get_u64(struct l2_in *in, uint64_t *v)
{
    uint32_t lo, hi;
    if (l2_get_u32(in, &lo) < 0 || l2_get_u32(in, &hi) < 0)
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

/* A length-prefixed byte string (u32 length), as a slice into the value. */
static int l2_get_bytes(struct l2_in *in, struct http_slice *s)
{
    uint32_t n;
    if (l2_get_u32(in, &n) < 0 || n > in->left)
        return -1;
    *s = (struct http_slice){ (const char *)in->p, n };
    in->p += n;
    in->left -= n;
    return 0;
}

struct cache_obj *cache_l2_decode(struct cache *c, const struct cfg_cache *cc,
                                  struct http_slice key, struct http_slice url, const char *p,
                                  size_t n)
{
    struct l2_in in = { (const unsigned char *)p, n };
    uint32_t status, n_fields;
    uint64_t rq, rs, body_len;
    struct http_slice vary;
    if (n < 4 || memcmp(p, L2_MAGIC, 4) != 0)
        return NULL;
    in.p += 4;
    in.left -= 4;
    if (l2_get_u32(&in, &status) < 0 || status < 100 || status > 999 ||
        l2_get_u64(&in, &rq) < 0 || l2_get_u64(&in, &rs) < 0 || rq > L2_MAX_TIME ||
        rs > L2_MAX_TIME || l2_get_bytes(&in, &vary) < 0 ||
        l2_get_u32(&in, &n_fields) < 0 || n_fields > L2_MAX_FIELDS)
        return NULL;
    struct http_header *f = malloc((n_fields + 1) * sizeof(*f));
    if (f == NULL)
        return NULL;
    struct cache_obj *o = NULL;
    for (uint32_t i = 0; i < n_fields; i++)
        if (l2_get_bytes(&in, &f[i].name) < 0 || l2_get_bytes(&in, &f[i].value) < 0)
            goto out;
    if (l2_get_u64(&in, &body_len) < 0 || body_len != in.left)
        goto out;
    struct cache_resp meta;
    cache_meta_of(&meta, (int)status, f, n_fields, (int64_t)rs, cc);
    o = cache_obj_new(c, key, url, vary, f, n_fields, &meta);
    if (o == NULL)
        goto out;
    if (body_len && cache_obj_append(c, o, (const char *)in.p, (size_t)body_len) < 0) {
        cache_obj_put(o);
        o = NULL;
        goto out;
    }
    cache_obj_set_times(o, (int64_t)rq, (int64_t)rs);
out:
    free(f);
    return o;
}

/* resp_shard: see resp_shard.h.
 *
 * consistent_hash (ketama), as twemproxy lays it out:
 *
 *   shard s (weight w of total W, n live shards):
 *       points(s) = floor(w / W * 40 * n) * 4          (160 per shard if equal)
 *       for i in 0 .. points(s)/4 - 1:
 *           d = md5("NAME-i");  4 points: little-endian words d[0..3], d[4..7], ...
 *   ring = all points sorted by value
 *   shard(key) = first point with value >= hash32(key), wrapping to the first
 *
 * The twemproxy-compatible hashes reproduce its 32-bit results, including
 * the ones that differ from the textbook function: crc32 is libmemcached's
 * (bits 16..30 of CRC-32), fnv1a_64 runs FNV-1a with the 64-bit constants
 * truncated to 32 bits. Tables are built once (pthread_once). */
#include "resp/resp_shard.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

#define RESP_KETAMA_POINTS 160 /* per shard of average weight */
#define RESP_KETAMA_PER_HASH 4

static uint32_t resp_crc_table[256];
static uint32_t resp_md5_k[64];
static pthread_once_t resp_tables_once = PTHREAD_ONCE_INIT;

static void resp_tables_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        resp_crc_table[i] = c;
    }
    /* RFC 1321 3.4: T[i] = floor(2^32 * abs(sin(i))), i = 1..64 */
    for (int i = 0; i < 64; i++)
        resp_md5_k[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
}

/* ---- hash functions ---- */

static uint32_t resp_crc32_full(const unsigned char *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        c = resp_crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

static inline uint32_t resp_rotl(uint32_t x, int s)
{
    return (x << s) | (x >> (32 - s));
}

static void resp_md5_block(uint32_t st[4], const unsigned char *blk)
{
    static const int shifts[4][4] = { { 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 },
                                      { 6, 10, 15, 21 } };
    uint32_t m[16], a = st[0], b = st[1], c = st[2], d = st[3];

    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)blk[i * 4] | (uint32_t)blk[i * 4 + 1] << 8 |
               (uint32_t)blk[i * 4 + 2] << 16 | (uint32_t)blk[i * 4 + 3] << 24;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g, round = i / 16;
        switch (round) {
        case 0:
            f = (b & c) | (~b & d);
            g = i;
            break;
        case 1:
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
            break;
        }
        uint32_t t = a + f + resp_md5_k[i] + m[g];
        a = d;
        d = c;
        c = b;
        b = b + resp_rotl(t, shifts[round][i % 4]);
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

void resp_md5(const void *data, size_t len, unsigned char out[16])
{
    uint32_t st[4] = { 0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u };
    const unsigned char *p = data;
    unsigned char tail[128];
    size_t full = len & ~(size_t)63, rest = len - full;

    pthread_once(&resp_tables_once, resp_tables_init);
    for (size_t off = 0; off < full; off += 64)
        resp_md5_block(st, p + off);
    /* padding: 0x80, zeros to 56 mod 64, the bit length little-endian */
    memset(tail, 0, sizeof(tail));
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 8 + i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < tail_len; off += 64)
        resp_md5_block(st, tail + off);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            out[i * 4 + k] = (unsigned char)(st[i] >> (8 * k));
}

/* MurmurHash2 as libmemcached seeds it (seed 0xdeadbeef * length). */
static uint32_t resp_murmur(const unsigned char *p, size_t len)
{
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = (0xdeadbeefu * (uint32_t)len) ^ (uint32_t)len;

    for (; len >= 4; p += 4, len -= 4) {
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h = (h * m) ^ k;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

uint64_t resp_hash(enum cfg_redis_hash fn, const void *key, size_t len)
{
    const unsigned char *p = key;
    unsigned char d[16];

    pthread_once(&resp_tables_once, resp_tables_init);
    switch (fn) {
    case CFG_REDIS_HASH_CRC32:
        return (resp_crc32_full(p, len) >> 16) & 0x7fff;
    case CFG_REDIS_HASH_CRC32A:
        return resp_crc32_full(p, len);
    case CFG_REDIS_HASH_FNV1_64: {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++)
            h = (h * 0x100000001b3ULL) ^ p[i];
        return (uint32_t)h;
    }
    case CFG_REDIS_HASH_FNV1A_64: {
        uint32_t h = (uint32_t)0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++)
            h = (h ^ p[i]) * (uint32_t)0x100000001b3ULL;
        return h;
    }
    case CFG_REDIS_HASH_FNV1_32: {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++)
            h = (h * 16777619u) ^ p[i];
        return h;
    }
    case CFG_REDIS_HASH_FNV1A_32: {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++)
            h = (h ^ p[i]) * 16777619u;
        return h;
    }
    case CFG_REDIS_HASH_MURMUR:
        return resp_murmur(p, len);
    case CFG_REDIS_HASH_MD5:
        resp_md5(p, len, d);
        return (uint32_t)d[3] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[1] << 8 | d[0];
    case CFG_REDIS_HASH_XXHASH:
    default:
        return hash_bytes(p, len);
    }
}

void resp_hash_tag(const char *tag, const char *key, size_t len, const char **part,
                   size_t *part_len)
{
    *part = key;
    *part_len = len;
    if (tag[0] == '\0')
        return;
    const char *open = memchr(key, tag[0], len);
    if (!open)
        return;
    const char *start = open + 1, *end = key + len;
    const char *close = memchr(start, tag[1], (size_t)(end - start));
    if (!close || close == start)
        return;
    *part = start;
    *part_len = (size_t)(close - start);
}

uint32_t resp_jump(uint64_t key, uint32_t n)
{
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

/* ---- distributions ---- */

static int resp_point_cmp(const void *a, const void *b)
{
    const struct resp_point *pa = a, *pb = b;
    if (pa->value != pb->value)
        return pa->value < pb->value ? -1 : 1;
    return pa->shard < pb->shard ? -1 : pa->shard > pb->shard;
}

static int resp_ring_build(struct resp_dist *d, const uint8_t *live)
{
    const struct cfg_redis_cluster *cc = d->cfg;
    uint32_t n_live = 0, total_weight = 0;
    size_t cap = 0;

    for (size_t s = 0; s < cc->n_shards; s++)
        if (!live || live[s]) {
            n_live++;
            total_weight += cc->shards[s].weight;
        }
    if (n_live == 0)
        return 0;
    for (size_t s = 0; s < cc->n_shards; s++)
        if (!live || live[s])
            cap += (size_t)((float)cc->shards[s].weight / (float)total_weight *
                            RESP_KETAMA_POINTS / RESP_KETAMA_PER_HASH * (float)n_live + 1) *
                   RESP_KETAMA_PER_HASH;
    d->ring = calloc(cap ? cap : 1, sizeof(*d->ring));
    if (!d->ring)
        return -ENOMEM;
    for (size_t s = 0; s < cc->n_shards; s++) {
        if (live && !live[s])
            continue;
        float pct = (float)cc->shards[s].weight / (float)total_weight;
        uint32_t per = (uint32_t)floorf(pct * RESP_KETAMA_POINTS / RESP_KETAMA_PER_HASH *
                                            (float)n_live + 0.0000000001f);
        for (uint32_t i = 0; i < per && d->n_points + RESP_KETAMA_PER_HASH <= cap; i++) {
            char name[192];
            unsigned char dg[16];
            int n = snprintf(name, sizeof(name), "%s-%u", cc->shards[s].name, i);
            resp_md5(name, (size_t)n, dg);
            for (int x = 0; x < RESP_KETAMA_PER_HASH; x++) {
                const unsigned char *w = dg + x * 4;
                d->ring[d->n_points].value = (uint32_t)w[3] << 24 | (uint32_t)w[2] << 16 |
                                             (uint32_t)w[1] << 8 | w[0];
                d->ring[d->n_points].shard = (uint32_t)s;
                d->n_points++;
            }
        }
    }
    qsort(d->ring, d->n_points, sizeof(*d->ring), resp_point_cmp);
    return 0;
}

int resp_dist_init(struct resp_dist *d, const struct cfg_redis_cluster *cc, const uint8_t *live)
{
    memset(d, 0, sizeof(*d));
    d->cfg = cc;
    d->n_shards = (uint32_t)cc->n_shards;
    if (cc->distribution == CFG_REDIS_DIST_KETAMA)
        return resp_ring_build(d, live);
    return 0;
}

void resp_dist_free(struct resp_dist *d)
{
    free(d->ring);
    d->ring = NULL;
    d->n_points = 0;
}

static int resp_ring_find(const struct resp_dist *d, uint32_t h)
{
    size_t lo = 0, hi = d->n_points;
    if (d->n_points == 0)
        return -ENOENT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->ring[mid].value < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)d->ring[lo == d->n_points ? 0 : lo].shard;
}

/* The number spelt by the last run of digits in key, or -ENOENT. */
static int resp_key_id(const char *key, size_t len, uint64_t *out)
{
    size_t end = len;
    while (end > 0 && (key[end - 1] < '0' || key[end - 1] > '9'))
        end--;
    if (end == 0)
        return -ENOENT;
    size_t start = end;
    while (start > 0 && key[start - 1] >= '0' && key[start - 1] <= '9')
        start--;
    uint64_t v = 0;
    for (size_t i = start; i < end; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -ENOENT;
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    *out = v;
    return 0;
}

static int resp_range_find(const struct cfg_redis_cluster *cc, const char *key, size_t len)
{
    uint64_t id = 0;
    if (cc->range_by == CFG_REDIS_RANGE_ID && resp_key_id(key, len, &id) < 0)
        return -ENOENT;
    /* bounds are few and sorted: a binary search over the first bound above */
    size_t lo = 0, hi = cc->n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct cfg_redis_range *r = &cc->ranges[mid];
        int below;
        if (!r->has_below) {
            below = 1;
        } else if (cc->range_by == CFG_REDIS_RANGE_ID) {
            below = id < r->below_id;
        } else {
            size_t blen = strlen(r->below), n = len < blen ? len : blen;
            int c = memcmp(key, r->below, n);
            below = c < 0 || (c == 0 && len < blen);
        }
        if (below)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < cc->n_ranges ? (int)cc->ranges[lo].shard : -ENOENT;
}

static int resp_directory_find(const struct cfg_redis_cluster *cc, const char *key, size_t len)
{
    size_t best_len = 0;
    int best = (int)cc->default_shard;
    for (size_t i = 0; i < cc->n_prefixes; i++) {
        const struct cfg_redis_prefix *p = &cc->prefixes[i];
        if (p->prefix_len <= len && p->prefix_len > best_len &&
            memcmp(key, p->prefix, p->prefix_len) == 0) {
            best_len = p->prefix_len;
            best = (int)p->shard;
        }
    }
    return best >= 0 ? best : -ENOENT;
}

int resp_dist_shard(const struct resp_dist *d, const char *key, size_t len)
{
    const struct cfg_redis_cluster *cc = d->cfg;
    const char *part;
    size_t plen;

    if (d->n_shards == 1 && cc->distribution != CFG_REDIS_DIST_RANGE &&
        cc->distribution != CFG_REDIS_DIST_DIRECTORY)
        return 0;
    resp_hash_tag(cc->hash_tag, key, len, &part, &plen);
    switch (cc->distribution) {
    case CFG_REDIS_DIST_KETAMA:
        return resp_ring_find(d, (uint32_t)resp_hash(cc->hash, part, plen));
    case CFG_REDIS_DIST_HASH:
        return (int)(resp_hash(cc->hash, part, plen) % d->n_shards);
    case CFG_REDIS_DIST_JUMP:
        return (int)resp_jump(resp_hash(cc->hash, part, plen), d->n_shards);
    case CFG_REDIS_DIST_RANGE:
        return resp_range_find(cc, part, plen);
    case CFG_REDIS_DIST_DIRECTORY:
        return resp_directory_find(cc, part, plen);
    default:
        return -ENOENT;
    }
}

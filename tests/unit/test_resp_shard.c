/* Unit tests for src/resp/resp_shard.c: hash functions against published
 * values, hash tags, jump hash's consistency, the ketama ring's balance and
 * stability, range and directory lookups. (Placement against a real
 * nutcracker is checked by tests/integration/test_redis_ketama.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "resp/resp_shard.h"

static void md5_hex(const char *s, char *out)
{
    unsigned char d[16];
    resp_md5(s, strlen(s), d);
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_md5_rfc1321(void **state)
{
    char hex[33];
    md5_hex("", hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    md5_hex("abc", hex);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    md5_hex("message digest", hex);
    assert_string_equal(hex, "f96b697d7cb7938d525a2f31aaf161d0");
    md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            hex);
    assert_string_equal(hex, "57edf4a22be3c955ac49da2e2107b67a");
    md5_hex("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", hex); /* md5sum */
    assert_string_equal(hex, "76658de2ac7d406f93dfbe8bb6d9f549");
}

static void test_hash_values(void **state)
{
    assert_int_equal(resp_hash(CFG_REDIS_HASH_CRC32A, "123456789", 9), 0xcbf43926u);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_CRC32, "123456789", 9), (0xcbf43926u >> 16) & 0x7fff);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_FNV1A_32, "a", 1), 0xe40c292cu);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_FNV1_32, "a", 1), 0x050c5d7eu);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_FNV1A_32, "", 0), 0x811c9dc5u);
    /* twemproxy's fnv1a_64: 64-bit constants truncated to 32 bits */
    assert_int_equal(resp_hash(CFG_REDIS_HASH_FNV1A_64, "", 0), 0x84222325u);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_FNV1A_64, "a", 1), (0x84222325u ^ 'a') * 0x1b3u);
}

/* MurmurHash2 (Appleby) seeded as libmemcached and twemproxy seed it:
 * seed = 0xdeadbeef * length. The expected values come from an independent
 * implementation of MurmurHash2 that reproduces SMHasher's verification
 * value for it (0x27864C1E), called with that seed. */
static void test_murmur_reference(void **state)
{
    static const struct {
        const char *key;
        uint32_t want;
    } v[] = {
        { "", 0x00000000u },          { "a", 0x4b41757cu },         /* tail of 1 */
        { "foo", 0xc4e0338fu },       /* tail of 3 */
        { "abcd", 0xef6a86afu },      /* one block, no tail */
        { "hello world", 0x5e19153bu }, { "123456789", 0xb7760690u },
        { "user:1000", 0x8e24aec7u },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(resp_hash(CFG_REDIS_HASH_MURMUR, v[i].key, strlen(v[i].key)), v[i].want);
}

/* XXH3_64bits, seed 0: xxHash's own sanity vectors (xxhsum's
 * XSUM_sanityCheck: the test buffer, lengths that reach every code path)
 * and its digests of "", "a" and "abc". */
static void test_xxhash_reference(void **state)
{
    static const struct {
        size_t len;
        uint64_t want;
    } v[] = {
        { 0, 0x2D06800538D394C2ULL },   { 1, 0xC44BDFF4074EECDBULL },
        { 6, 0x27B56A84CD2D7325ULL },   { 12, 0xA713DAF0DFBB77E7ULL },
        { 24, 0xA3FE70BF9D3510EBULL },  { 48, 0x397DA259ECBA1F11ULL },
        { 80, 0xBCDEFBBB2C47C90AULL },  { 195, 0xCD94217EE362EC3AULL },
        { 403, 0xCDEB804D65C6DEA4ULL }, { 512, 0x617E49599013CB6BULL },
        { 2048, 0xDD59E2C3A5F038E0ULL }, { 2367, 0xCB37AEB9E5D361EDULL },
    };
    static unsigned char buf[2367];
    uint64_t gen = 2654435761u; /* PRIME32, times PRIME64 per byte */

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)(gen >> 56);
        gen *= 11400714785074694797ULL;
    }
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_int_equal(resp_hash(CFG_REDIS_HASH_XXHASH, buf, v[i].len), v[i].want);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_XXHASH, "a", 1), 0xE6C632B61E964E1FULL);
    assert_int_equal(resp_hash(CFG_REDIS_HASH_XXHASH, "abc", 3), 0x78AF5F94892F3950ULL);
}

static void test_hash_tag(void **state)
{
    const char *p;
    size_t n;
    resp_hash_tag("{}", "user:{42}:name", 14, &p, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "42", 2);
    resp_hash_tag("{}", "user:{}:name", 12, &p, &n); /* empty tag: whole key */
    assert_int_equal(n, 12);
    resp_hash_tag("{}", "a{b", 3, &p, &n);
    assert_int_equal(n, 3);
    resp_hash_tag("{}", "{a}{b}", 6, &p, &n);
    assert_int_equal(n, 1);
    assert_memory_equal(p, "a", 1);
    resp_hash_tag("", "{a}", 3, &p, &n);
    assert_int_equal(n, 3);
    resp_hash_tag("$$", "x$id$y", 6, &p, &n);
    assert_memory_equal(p, "id", 2);
}

/* Jump consistent hash (Lamping and Veach): the values other
 * implementations publish as their test vectors. */
static void test_jump_reference(void **state)
{
    assert_int_equal(resp_jump(1, 1), 0);
    assert_int_equal(resp_jump(42, 57), 43);
    assert_int_equal(resp_jump(0xDEAD10CCu, 1), 0);
    assert_int_equal(resp_jump(0xDEAD10CCu, 666), 361);
    assert_int_equal(resp_jump(256, 1024), 520);
    assert_int_equal(resp_jump(4, 2), 1);
    assert_int_equal(resp_jump(7, 2), 0);
    assert_int_equal(resp_jump(1, 128), 55);
    assert_int_equal(resp_jump(129, 128), 120);
    assert_int_equal(resp_jump(128, 100000000), 38172097);
    assert_int_equal(resp_jump(UINT64_MAX, 128), 92);
}

static void test_jump_consistency(void **state)
{
    for (uint64_t k = 0; k < 2000; k++) {
        uint64_t key = k * 0x9e3779b97f4a7c15ULL;
        uint32_t prev = resp_jump(key, 1);
        assert_int_equal(prev, 0);
        for (uint32_t n = 2; n <= 20; n++) {
            uint32_t b = resp_jump(key, n);
            assert_true(b < n);
            assert_true(b == prev || b == n - 1); /* keys only move to the new bucket */
            prev = b;
        }
    }
}

static struct cfg_redis_shard test_shards[4];
static char test_names[4][40];

static void setup_cluster(struct cfg_redis_cluster *cc, enum cfg_redis_dist dist, size_t n)
{
    memset(cc, 0, sizeof(*cc));
    memset(test_shards, 0, sizeof(test_shards));
    for (size_t i = 0; i < n; i++) {
        snprintf(test_names[i], sizeof(test_names[i]), "10.0.0.%zu:6379", i + 1);
        test_shards[i].name = test_names[i];
        test_shards[i].weight = 1;
    }
    cc->distribution = dist;
    cc->hash = CFG_REDIS_HASH_MURMUR;
    strcpy(cc->hash_tag, "{}");
    cc->shards = test_shards;
    cc->n_shards = n;
    cc->default_shard = -1;
}

static void test_ketama_balance_and_stability(void **state)
{
    struct cfg_redis_cluster cc;
    struct resp_dist d3, d4;
    unsigned count[4] = { 0 }, moved = 0;
    char key[32];

    setup_cluster(&cc, CFG_REDIS_DIST_KETAMA, 3);
    assert_int_equal(resp_dist_init(&d3, &cc, NULL), 0);
    assert_int_equal(d3.n_points, 480);
    struct cfg_redis_cluster cc4 = cc;
    setup_cluster(&cc4, CFG_REDIS_DIST_KETAMA, 4);
    assert_int_equal(resp_dist_init(&d4, &cc4, NULL), 0);
    for (int i = 0; i < 30000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        int a = resp_dist_shard(&d3, key, (size_t)n), b = resp_dist_shard(&d4, key, (size_t)n);
        assert_true(a >= 0 && a < 3);
        count[a]++;
        if (a != b) {
            assert_int_equal(b, 3); /* a new shard only takes keys */
            moved++;
        }
    }
    for (int s = 0; s < 3; s++)
        assert_true(count[s] > 7000 && count[s] < 13000);
    assert_true(moved > 4000 && moved < 11000);
    /* a shard left out of the ring: its keys spread, the others stay */
    uint8_t live[3] = { 1, 0, 1 };
    struct resp_dist dl;
    assert_int_equal(resp_dist_init(&dl, &cc, live), 0);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        int a = resp_dist_shard(&d3, key, (size_t)n), b = resp_dist_shard(&dl, key, (size_t)n);
        assert_true(b != 1);
        if (a != 1)
            assert_int_equal(a, b);
    }
    /* hash tags keep keys together */
    assert_int_equal(resp_dist_shard(&d3, "{u1}a", 5), resp_dist_shard(&d3, "{u1}bbbb", 8));
    resp_dist_free(&d3);
    resp_dist_free(&d4);
    resp_dist_free(&dl);
}

static void test_hash_mod_and_jump(void **state)
{
    struct cfg_redis_cluster cc;
    struct resp_dist d;
    /* murmur of each key (see test_murmur_reference), then modulo or jump
     * over 3 shards; the expected shards were computed apart from weir */
    static const struct {
        const char *key;
        int mod3, jump3;
    } v[] = {
        { "foo", 2, 0 },       { "hello world", 1, 1 }, { "user:1000", 2, 1 },
        { "123456789", 1, 0 }, { "a", 0, 0 },           { "abcd", 0, 2 },
    };
    char tagged[64];

    setup_cluster(&cc, CFG_REDIS_DIST_HASH, 3);
    assert_int_equal(resp_dist_init(&d, &cc, NULL), 0);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int n = snprintf(tagged, sizeof(tagged), "x{%s}y", v[i].key);
        cc.distribution = CFG_REDIS_DIST_HASH;
        assert_int_equal(resp_dist_shard(&d, v[i].key, strlen(v[i].key)), v[i].mod3);
        assert_int_equal(resp_dist_shard(&d, tagged, (size_t)n), v[i].mod3); /* the tag decides */
        cc.distribution = CFG_REDIS_DIST_JUMP;
        assert_int_equal(resp_dist_shard(&d, v[i].key, strlen(v[i].key)), v[i].jump3);
        assert_int_equal(resp_dist_shard(&d, tagged, (size_t)n), v[i].jump3);
    }
    resp_dist_free(&d);
}

static void test_range(void **state)
{
    struct cfg_redis_cluster cc;
    struct cfg_redis_range r[3] = { { .below = "g", .has_below = 1, .shard = 2 },
                                    { .below = "p", .has_below = 1, .shard = 0 },
                                    { .shard = 1 } };
    struct resp_dist d;
    setup_cluster(&cc, CFG_REDIS_DIST_RANGE, 3);
    cc.ranges = r;
    cc.n_ranges = 3;
    assert_int_equal(resp_dist_init(&d, &cc, NULL), 0);
    assert_int_equal(resp_dist_shard(&d, "apple", 5), 2);
    assert_int_equal(resp_dist_shard(&d, "g", 1), 0);
    assert_int_equal(resp_dist_shard(&d, "", 0), 2);
    assert_int_equal(resp_dist_shard(&d, "orange", 6), 0);
    assert_int_equal(resp_dist_shard(&d, "p", 1), 1);
    assert_int_equal(resp_dist_shard(&d, "zebra", 5), 1);
    assert_int_equal(resp_dist_shard(&d, "zz{apple}", 9), 2);
    cc.n_ranges = 2; /* no catch-all */
    assert_int_equal(resp_dist_shard(&d, "zebra", 5), -ENOENT);
    struct cfg_redis_range ids[2] = { { .below_id = 1000, .has_below = 1, .shard = 0 },
                                      { .below_id = 2000, .has_below = 1, .shard = 1 } };
    cc.range_by = CFG_REDIS_RANGE_ID;
    cc.ranges = ids;
    assert_int_equal(resp_dist_shard(&d, "user:999", 8), 0);
    assert_int_equal(resp_dist_shard(&d, "user:1000:x", 11), 1);
    assert_int_equal(resp_dist_shard(&d, "user:2000", 9), -ENOENT);
    assert_int_equal(resp_dist_shard(&d, "user", 4), -ENOENT);
    resp_dist_free(&d);
}

static void test_directory(void **state)
{
    struct cfg_redis_cluster cc;
    struct cfg_redis_prefix p[3] = { { "user:", 5, 0 }, { "user:vip:", 9, 2 }, { "order:", 6, 1 } };
    struct resp_dist d;
    setup_cluster(&cc, CFG_REDIS_DIST_DIRECTORY, 3);
    cc.prefixes = p;
    cc.n_prefixes = 3;
    assert_int_equal(resp_dist_init(&d, &cc, NULL), 0);
    assert_int_equal(resp_dist_shard(&d, "user:1", 6), 0);
    assert_int_equal(resp_dist_shard(&d, "user:vip:1", 10), 2);
    assert_int_equal(resp_dist_shard(&d, "order:9", 7), 1);
    assert_int_equal(resp_dist_shard(&d, "cart:9", 6), -ENOENT);
    cc.default_shard = 1;
    assert_int_equal(resp_dist_shard(&d, "cart:9", 6), 1);
    resp_dist_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5_rfc1321),
        cmocka_unit_test(test_hash_values),
        cmocka_unit_test(test_murmur_reference),
        cmocka_unit_test(test_xxhash_reference),
        cmocka_unit_test(test_hash_tag),
        cmocka_unit_test(test_jump_reference),
        cmocka_unit_test(test_jump_consistency),
        cmocka_unit_test(test_ketama_balance_and_stability),
        cmocka_unit_test(test_hash_mod_and_jump),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

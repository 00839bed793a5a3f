/* Unit tests for src/core/buf.c.
 *
 * Blocks are recognised by address: a released block that comes back from
 * buf_acquire is the same pointer, so LIFO reuse and max_free are checked by
 * comparing pointers and pool->n_free. An allocation failure is provoked
 * with a block size malloc cannot satisfy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

#define LIT(s) s, sizeof(s) - 1

/* Under ASan a huge malloc aborts unless told to return NULL like libc. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static void assert_bytes(const struct buf *b, const char *want)
{
    size_t n = strlen(want);
    assert_int_equal(buf_len(b), n);
    assert_memory_equal(buf_rptr(b), want, n);
}

static void test_acquire_gives_empty_block(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 64, 4);
    assert_int_equal(buf_space(&pool, &b), 0);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_non_null(b.data);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_space(&pool, &b), 64);
    buf_release(&pool, &b);
    assert_null(b.data);
    assert_int_equal(buf_space(&pool, &b), 0);
    buf_pool_destroy(&pool);
}

static void test_acquire_keeps_existing_block(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 64, 4);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("abc")), 0);
    char *data = b.data;
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_ptr_equal(b.data, data);
    assert_bytes(&b, "abc");
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

static void test_free_list_is_lifo(void **state)
{
    struct buf_pool pool;
    struct buf b[3] = { { 0 } };

    buf_pool_init(&pool, 64, 8);
    for (int i = 0; i < 3; i++)
        assert_int_equal(buf_acquire(&pool, &b[i]), 0);
    char *d0 = b[0].data, *d1 = b[1].data, *d2 = b[2].data;
    buf_release(&pool, &b[0]);
    buf_release(&pool, &b[1]);
    buf_release(&pool, &b[2]);
    assert_int_equal(pool.n_free, 3);

    /* most recently released first */
    struct buf c[3] = { { 0 } };
    assert_int_equal(buf_acquire(&pool, &c[0]), 0);
    assert_ptr_equal(c[0].data, d2);
    assert_int_equal(pool.n_free, 2);
    assert_int_equal(buf_acquire(&pool, &c[1]), 0);
    assert_ptr_equal(c[1].data, d1);
    assert_int_equal(buf_acquire(&pool, &c[2]), 0);
    assert_ptr_equal(c[2].data, d0);
    assert_int_equal(pool.n_free, 0);
    assert_null(pool.free_list);

    for (int i = 0; i < 3; i++)
        buf_release(&pool, &c[i]);
    buf_pool_destroy(&pool);
    assert_int_equal(pool.n_free, 0);
    assert_null(pool.free_list);
}

static void test_reused_block_is_reset(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 64, 1);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("hello world")), 0);
    buf_consume(&b, 3);
    buf_release(&pool, &b);
    assert_null(b.data);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    assert_int_equal(buf_space(&pool, &b), 64);
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

static void test_max_free_honoured(void **state)
{
    struct buf_pool pool;
    struct buf b[4] = { { 0 } };

    buf_pool_init(&pool, 64, 2);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf_acquire(&pool, &b[i]), 0);
    char *d1 = b[1].data;
    for (int i = 0; i < 4; i++) {
        buf_release(&pool, &b[i]);
        assert_null(b[i].data);
        assert_int_equal(pool.n_free, i < 2 ? i + 1 : 2);
    }
    /* the two kept are the first two released; the others went to free() */
    struct buf c = { 0 };
    assert_int_equal(buf_acquire(&pool, &c), 0);
    assert_ptr_equal(c.data, d1);
    buf_release(&pool, &c);
    assert_int_equal(pool.n_free, 2);
    buf_pool_destroy(&pool);
}

static void test_max_free_zero_keeps_nothing(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 64, 0);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    buf_release(&pool, &b);
    assert_int_equal(pool.n_free, 0);
    assert_null(pool.free_list);
    assert_null(b.data);
    buf_pool_destroy(&pool);
}

static void test_release_without_block_is_noop(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 64, 2);
    buf_release(&pool, &b);
    buf_release_if_empty(&pool, &b);
    assert_int_equal(pool.n_free, 0);
    assert_null(b.data);
    buf_pool_destroy(&pool);
}

static void test_acquire_enomem(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, SIZE_MAX / 2, 2);
    assert_int_equal(buf_acquire(&pool, &b), -ENOMEM);
    assert_null(b.data);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    buf_pool_destroy(&pool);
}

static void test_consume_resets_when_empty(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 16, 1);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("abcdef")), 0);
    buf_consume(&b, 2);
    assert_int_equal(b.rpos, 2);
    assert_int_equal(b.wpos, 6);
    assert_bytes(&b, "cdef");
    assert_int_equal(buf_space(&pool, &b), 10);
    buf_consume(&b, 4);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_space(&pool, &b), 16);
    /* consuming nothing of an empty buffer stays at 0 */
    buf_consume(&b, 0);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

static void test_compact(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 16, 1);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("0123456789abcdef")), 0);
    assert_int_equal(buf_space(&pool, &b), 0);
    buf_consume(&b, 10);
    assert_int_equal(buf_space(&pool, &b), 0);
    buf_compact(&b);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 6);
    assert_bytes(&b, "abcdef");
    assert_int_equal(buf_space(&pool, &b), 10);
    assert_int_equal(buf_append(&pool, &b, LIT("ghij")), 0);
    assert_bytes(&b, "abcdefghij");

    /* already at the start: nothing moves */
    char *data = b.data;
    buf_compact(&b);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.rpos, 0);
    assert_bytes(&b, "abcdefghij");

    /* overlapping move (unread part longer than the consumed part) */
    buf_consume(&b, 1);
    buf_compact(&b);
    assert_int_equal(b.rpos, 0);
    assert_bytes(&b, "bcdefghij");
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

static void test_append_enospc(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 8, 1);
    /* no block: no space */
    assert_int_equal(buf_append(&pool, &b, LIT("a")), -ENOSPC);
    assert_null(b.data);

    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("abcde")), 0);
    /* 3 left: 4 does not fit and nothing is appended */
    assert_int_equal(buf_append(&pool, &b, LIT("wxyz")), -ENOSPC);
    assert_bytes(&b, "abcde");
    assert_int_equal(b.wpos, 5);
    /* exactly filling is fine */
    assert_int_equal(buf_append(&pool, &b, LIT("xyz")), 0);
    assert_bytes(&b, "abcdexyz");
    assert_int_equal(buf_space(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("!")), -ENOSPC);
    assert_int_equal(buf_append(&pool, &b, "", 0), 0);
    assert_bytes(&b, "abcdexyz");

    /* consumed bytes are not space until compacted */
    buf_consume(&b, 4);
    assert_int_equal(buf_append(&pool, &b, LIT("!")), -ENOSPC);
    buf_compact(&b);
    assert_int_equal(buf_append(&pool, &b, LIT("!!!!")), 0);
    assert_bytes(&b, "exyz!!!!");
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

static void test_release_if_empty(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 16, 2);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    char *data = b.data;

    /* empty after acquire: released */
    buf_release_if_empty(&pool, &b);
    assert_null(b.data);
    assert_int_equal(pool.n_free, 1);

    /* unread bytes: kept */
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(buf_append(&pool, &b, LIT("xy")), 0);
    buf_release_if_empty(&pool, &b);
    assert_ptr_equal(b.data, data);
    assert_int_equal(pool.n_free, 0);
    assert_bytes(&b, "xy");

    /* partly consumed: kept */
    buf_consume(&b, 1);
    buf_release_if_empty(&pool, &b);
    assert_ptr_equal(b.data, data);
    assert_bytes(&b, "y");

    /* fully consumed: released */
    buf_consume(&b, 1);
    buf_release_if_empty(&pool, &b);
    assert_null(b.data);
    assert_int_equal(pool.n_free, 1);
    buf_pool_destroy(&pool);
}

static void test_destroy_then_reuse_pool(void **state)
{
    struct buf_pool pool;
    struct buf b = { 0 };

    buf_pool_init(&pool, 32, 4);
    assert_int_equal(buf_acquire(&pool, &b), 0);
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
    assert_int_equal(pool.n_free, 0);
    assert_null(pool.free_list);
    /* a destroyed pool is empty but still usable (mallocs afresh) */
    assert_int_equal(buf_acquire(&pool, &b), 0);
    assert_int_equal(buf_append(&pool, &b, LIT("ok")), 0);
    buf_release(&pool, &b);
    buf_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_gives_empty_block),
        cmocka_unit_test(test_acquire_keeps_existing_block),
        cmocka_unit_test(test_free_list_is_lifo),
        cmocka_unit_test(test_reused_block_is_reset),
        cmocka_unit_test(test_max_free_honoured),
        cmocka_unit_test(test_max_free_zero_keeps_nothing),
        cmocka_unit_test(test_release_without_block_is_noop),
        cmocka_unit_test(test_acquire_enomem),
        cmocka_unit_test(test_consume_resets_when_empty),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_append_enospc),
        cmocka_unit_test(test_release_if_empty),
        cmocka_unit_test(test_destroy_then_reuse_pool),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

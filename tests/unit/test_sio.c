/* test_sio: the plain-socket stream of the I/O seam (core/sio.c), over a
 * non-blocking socketpair: bytes, -EAGAIN with the wants, end of stream,
 * a peer gone (-EPIPE, never SIGPIPE), shutdown, close. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sio.h"

struct pair {
    struct sio a;
    int b;
};

static int pair_setup(void **state)
{
    static struct pair p;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    sio_init_plain(&p.a, sv[0]);
    p.b = sv[1];
    *state = &p;
    return 0;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    sio_close(&p->a);
    if (p->b >= 0)
        close(p->b);
    return 0;
}

static void test_read_write_and_eagain(void **state)
{
    struct pair *p = *state;
    char buf[16];
    assert_int_equal(sio_read(&p->a, buf, sizeof(buf)), -EAGAIN);
    assert_int_equal(p->a.rd_want, SIO_WANT_READ);
    assert_int_equal(sio_events(&p->a, 1, 1), SIO_WANT_READ | SIO_WANT_WRITE);
    assert_int_equal(sio_events(&p->a, 0, 1), SIO_WANT_WRITE);
    assert_int_equal(write(p->b, "hello", 5), 5);
    assert_int_equal(sio_read(&p->a, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    struct iovec iov[2] = { { "ab", 2 }, { "cde", 3 } };
    assert_int_equal(sio_writev(&p->a, iov, 2), 5);
    assert_int_equal(read(p->b, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "abcde", 5);
    assert_int_equal(sio_write(&p->a, "x", 1), 1);
}

static void test_write_until_full(void **state)
{
    struct pair *p = *state;
    static char big[1 << 16];
    ssize_t n;
    while ((n = sio_write(&p->a, big, sizeof(big))) > 0)
        ;
    assert_int_equal(n, -EAGAIN);
    assert_int_equal(p->a.wr_want, SIO_WANT_WRITE);
}

static void test_end_of_stream_and_peer_gone(void **state)
{
    struct pair *p = *state;
    char buf[4];
    assert_int_equal(sio_shutdown(&p->a), 0);
    assert_int_equal(read(p->b, buf, sizeof(buf)), 0); /* our FIN */
    close(p->b);
    p->b = -1;
    assert_int_equal(sio_read(&p->a, buf, sizeof(buf)), 0);
    assert_int_equal(sio_write(&p->a, "x", 1), -EPIPE); /* MSG_NOSIGNAL: no SIGPIPE */
}

static void test_close_is_idempotent(void **state)
{
    struct pair *p = *state;
    int fd = p->a.fd;
    sio_close(&p->a);
    assert_false(sio_is_open(&p->a));
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    sio_close(&p->a); /* a no-op */
    struct sio closed;
    sio_init_closed(&closed);
    sio_close(&closed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_and_eagain, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_write_until_full, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_end_of_stream_and_peer_gone, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_close_is_idempotent, pair_setup, pair_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

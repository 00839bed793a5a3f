/* Unit tests for src/upstream/pool.c.
 *
 * Each test gets a fresh libev loop and pool. Idle "upstream connections"
 * are one end of a socketpair(); the test keeps the other end as the
 * backend, closing it or writing to it to make the idle end readable. The
 * pool keys by address only, so the sockaddr_in values below never need to
 * be connected to anything. Whether the pool closed an fd is checked right
 * away with fcntl(F_GETFD), before anything could reuse the number, and
 * where possible from the peer's side too (read() sees EOF). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "upstream/pool.h"

#define MAX_PAIRS 16

struct fixture {
    struct ev_loop *loop;
    struct pool pool;
    int ours[MAX_PAIRS];   /* the end offered to the pool (each test closes what it owns) */
    int peer[MAX_PAIRS];   /* the backend's end; -1 once a test closed it */
    size_t n_pairs;
};

static struct sockaddr_in addr_a, addr_b, addr_a_other_port;
static struct sockaddr_in6 addr_v6;

static void make_addr(struct sockaddr_in *sa, const char *ip, uint16_t port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sa->sin_addr), 1);
}

#define SA(x) ((const struct sockaddr *)&(x)), (socklen_t)sizeof(x)

static int setup(void **state)
{
    static struct fixture f;

    memset(&f, 0, sizeof(f));
    f.loop = ev_loop_new(0);
    if (!f.loop)
        return -1;
    pool_init(&f.pool, f.loop);
    make_addr(&addr_a, "127.0.0.1", 9001);
    make_addr(&addr_b, "127.0.0.2", 9001);
    make_addr(&addr_a_other_port, "127.0.0.1", 9002);
    memset(&addr_v6, 0, sizeof(addr_v6));
    addr_v6.sin6_family = AF_INET6;
    addr_v6.sin6_port = htons(9001);
    addr_v6.sin6_addr = in6addr_loopback;
    *state = &f;
    return 0;
}

static int fd_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

/* Closes the pool (and with it every fd it still holds), the peers still
 * open, and the loop. */
static int teardown(void **state)
{
    struct fixture *f = *state;

    pool_destroy(&f->pool);
    for (size_t i = 0; i < f->n_pairs; i++) {
        if (f->peer[i] >= 0)
            close(f->peer[i]);
    }
    ev_loop_destroy(f->loop);
    return 0;
}

/* A new connected pair; returns our end's index. */
static size_t new_pair(struct fixture *f)
{
    int sv[2];

    assert_true(f->n_pairs < MAX_PAIRS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    f->ours[f->n_pairs] = sv[0];
    f->peer[f->n_pairs] = sv[1];
    return f->n_pairs++;
}

/* The peer of pair i sees EOF: our end was closed. */
static void assert_peer_sees_eof(struct fixture *f, size_t i)
{
    char c;
    ssize_t n;

    do {
        n = read(f->peer[i], &c, 1);
    } while (n == -1 && errno == EINTR);
    assert_int_equal(n, 0);
}

/* The peer of pair i sees nothing yet: our end is still open. */
static void assert_peer_sees_open(struct fixture *f, size_t i)
{
    char c;

    assert_int_equal(read(f->peer[i], &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
}

static void spin(struct fixture *f, int turns)
{
    for (int i = 0; i < turns; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop for `seconds` of wall time (idle watchers keep it alive). */
static void run_for(struct fixture *f, double seconds)
{
    ev_timer guard;

    ev_now_update(f->loop);
    ev_timer_init(&guard, guard_cb, seconds, 0.);
    ev_timer_start(f->loop, &guard);
    ev_run(f->loop, 0);
    ev_timer_stop(f->loop, &guard);
}

static void test_take_from_empty(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    assert_int_equal(f->pool.n_idle, 0);
}

static void test_put_take_lifo(void **state)
{
    struct fixture *f = *state;
    size_t p[3];

    for (int i = 0; i < 3; i++) {
        p[i] = new_pair(f);
        assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[i]], 8, 60000), 0);
    }
    assert_int_equal(f->pool.n_idle, 3);
    /* most recently returned first: the warmest connection */
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[2]]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[1]]);
    assert_int_equal(f->pool.n_idle, 1);
    /* put back: on top again */
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[1]], 8, 60000), 0);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[1]]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[0]]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    assert_int_equal(f->pool.n_idle, 0);
    /* taken fds belong to the caller: open and untouched */
    for (int i = 0; i < 3; i++) {
        assert_true(fd_open(f->ours[p[i]]));
        close(f->ours[p[i]]);
    }
}

static void test_keyed_by_address(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f), b = new_pair(f), c = new_pair(f), d = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_b), f->ours[b], 8, 60000), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_a_other_port), f->ours[c], 8, 60000), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_v6), f->ours[d], 8, 60000), 0);
    assert_int_equal(f->pool.n_idle, 4);

    /* a copy of the address (a different object, equal bytes) finds it */
    struct sockaddr_in copy = addr_b;
    assert_int_equal(pool_take(&f->pool, SA(copy)), f->ours[b]);
    assert_int_equal(pool_take(&f->pool, SA(addr_b)), -1);
    assert_int_equal(pool_take(&f->pool, SA(addr_v6)), f->ours[d]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    assert_int_equal(pool_take(&f->pool, SA(addr_a_other_port)), f->ours[c]);
    assert_int_equal(f->pool.n_idle, 0);
    close(f->ours[a]);
    close(f->ours[b]);
    close(f->ours[c]);
    close(f->ours[d]);
}

static void test_take_unknown_address(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);
    struct sockaddr_in unknown;

    make_addr(&unknown, "10.9.8.7", 80);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    assert_int_equal(pool_take(&f->pool, SA(unknown)), -1);
    assert_int_equal(pool_take(&f->pool, SA(addr_b)), -1);
    /* same bytes but a shorter length is a different key */
    assert_int_equal(pool_take(&f->pool, (const struct sockaddr *)&addr_a,
                               (socklen_t)offsetof(struct sockaddr_in, sin_zero)),
                     -1);
    assert_int_equal(f->pool.n_idle, 1);
    assert_true(fd_open(f->ours[a]));
}

static void test_max_idle_honoured(void **state)
{
    struct fixture *f = *state;
    size_t p[4];

    for (int i = 0; i < 4; i++)
        p[i] = new_pair(f);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[0]], 2, 60000), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[1]], 2, 60000), 0);
    /* full: refused, and the caller still owns the fd */
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[2]], 2, 60000), -1);
    assert_true(fd_open(f->ours[p[2]]));
    assert_int_equal(f->pool.n_idle, 2);
    /* the limit is per address */
    assert_int_equal(pool_put(&f->pool, SA(addr_b), f->ours[p[3]], 2, 60000), 0);
    assert_int_equal(f->pool.n_idle, 3);
    /* taking one makes room again */
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[1]]);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[p[2]], 2, 60000), 0);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[2]]);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[p[0]]);
    close(f->ours[p[0]]);
    close(f->ours[p[1]]);
    close(f->ours[p[2]]);
}

static void test_max_idle_zero_refuses(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 0, 60000), -1);
    assert_int_equal(f->pool.n_idle, 0);
    assert_true(fd_open(f->ours[a]));
    close(f->ours[a]);
}

static void test_idle_conn_survives_quiet_loop(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    spin(f, 5);
    run_for(f, 0.02);
    assert_true(fd_open(f->ours[a]));
    assert_peer_sees_open(f, a);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    close(f->ours[a]);
}

static void test_peer_close_removes(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f), b = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[b], 8, 60000), 0);
    close(f->peer[b]);
    f->peer[b] = -1;
    spin(f, 5);
    assert_int_equal(f->pool.n_idle, 1);
    assert_false(fd_open(f->ours[b]));
    /* the other one is unaffected */
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    close(f->peer[a]);
    f->peer[a] = -1;
    /* a taken connection is no longer watched: the pool must not close it */
    spin(f, 5);
    assert_true(fd_open(f->ours[a]));
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    close(f->ours[a]);
}

static void test_unsolicited_bytes_remove(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    assert_int_equal(write(f->peer[a], "HTTP/1.1 408 x\r\n\r\n", 18), 18);
    spin(f, 5);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    assert_int_equal(f->pool.n_idle, 0);
    assert_false(fd_open(f->ours[a]));
    /* closed with our bytes unread: the peer sees a reset, as with TCP */
    char c;
    assert_int_equal(read(f->peer[a], &c, 1), -1);
    assert_int_equal(errno, ECONNRESET);
}

static void test_idle_timeout_removes(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f), b = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 20), 0);
    assert_int_equal(pool_put(&f->pool, SA(addr_b), f->ours[b], 8, 60000), 0);
    run_for(f, 0.1);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), -1);
    assert_false(fd_open(f->ours[a]));
    assert_peer_sees_eof(f, a);
    /* a long timeout is not touched */
    assert_int_equal(f->pool.n_idle, 1);
    assert_peer_sees_open(f, b);
    assert_int_equal(pool_take(&f->pool, SA(addr_b)), f->ours[b]);
    close(f->ours[b]);
}

static void test_taken_conn_timer_stopped(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);

    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 20), 0);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    run_for(f, 0.06);
    assert_true(fd_open(f->ours[a]));
    assert_peer_sees_open(f, a);
    close(f->ours[a]);
}

static void test_timeout_restarts_on_put(void **state)
{
    struct fixture *f = *state;
    size_t a = new_pair(f);

    /* put, take, put again with a long timeout (reusing the recycled entry):
     * the first short timeout must not fire on the second stay */
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 20), 0);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[a], 8, 60000), 0);
    run_for(f, 0.06);
    assert_int_equal(pool_take(&f->pool, SA(addr_a)), f->ours[a]);
    close(f->ours[a]);
}

static void test_destroy_closes_everything(void **state)
{
    struct fixture *f = *state;
    size_t p[6];
    const struct sockaddr_in *addrs[3] = { &addr_a, &addr_b, &addr_a_other_port };

    for (int i = 0; i < 6; i++) {
        p[i] = new_pair(f);
        assert_int_equal(pool_put(&f->pool, (const struct sockaddr *)addrs[i % 3],
                                  sizeof(struct sockaddr_in), f->ours[p[i]], 8, 60000),
                         0);
    }
    /* one taken and one recycled entry on the free list */
    int taken = pool_take(&f->pool, SA(addr_b));
    assert_int_equal(taken, f->ours[p[4]]);
    assert_int_equal(f->pool.n_idle, 5);

    pool_destroy(&f->pool);
    assert_int_equal(f->pool.n_idle, 0);
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            continue;
        assert_false(fd_open(f->ours[p[i]]));
        assert_peer_sees_eof(f, p[i]);
    }
    /* the taken one was the caller's */
    assert_true(fd_open(taken));
    close(taken);
    for (size_t i = 0; i < POOL_BUCKETS; i++)
        assert_null(f->pool.buckets[i]);
    assert_null(f->pool.free_conns);
    /* nothing of the pool is left on the loop */
    spin(f, 3);
    /* the pool can be used again after destroy (teardown destroys again) */
    size_t q = new_pair(f);
    assert_int_equal(pool_put(&f->pool, SA(addr_a), f->ours[q], 8, 60000), 0);
}

static void test_destroy_empty(void **state)
{
    struct fixture *f = *state;

    pool_destroy(&f->pool);
    pool_destroy(&f->pool);
    assert_int_equal(f->pool.n_idle, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_take_from_empty),
        T(test_put_take_lifo),
        T(test_keyed_by_address),
        T(test_take_unknown_address),
        T(test_max_idle_honoured),
        T(test_max_idle_zero_refuses),
        T(test_idle_conn_survives_quiet_loop),
        T(test_peer_close_removes),
        T(test_unsolicited_bytes_remove),
        T(test_idle_timeout_removes),
        T(test_taken_conn_timer_stopped),
        T(test_timeout_restarts_on_put),
        T(test_destroy_closes_everything),
        T(test_destroy_empty),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* amqp_bench: the RabbitMQ side of bench/queue.sh, with the same load as
 * the weir side: P producer connections publishing persistent 1 KB messages
 * to a durable queue, each publish waited for its publisher confirm (one
 * message in flight per producer, like one SendMessage per request), and C
 * consumer connections with manual acks, prefetch 10, acking every 10th
 * delivery with multiple=true (like DeleteMessageBatch of 10).
 *
 * usage: amqp_bench HOST PORT QUEUE PRODUCERS CONSUMERS SECONDS
 * prints: AMQP sent=N consumed=N p50_us=N p99_us=N errors=N
 * Build: cc -O2 -pthread -o amqp_bench bench/amqp_bench.c -lrabbitmq */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define MAX_LAT 4000000

static const char *host, *queue;
static int port, seconds;
static _Atomic int stop;
static _Atomic uint64_t sent, consumed, errors;
static uint32_t *lat; /* microseconds of every confirmed publish */
static _Atomic size_t n_lat;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static amqp_connection_state_t bench_connect(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (s == NULL || amqp_socket_open(s, host, port) != AMQP_STATUS_OK)
        return NULL;
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest",
                                    "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return NULL;
    amqp_channel_open(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        return NULL;
    return c;
}

static void *producer(void *arg)
{
    amqp_connection_state_t c = bench_connect();
    char body[1024];
    memset(body, 'x', sizeof(body));
    if (c == NULL) {
        errors++;
        return NULL;
    }
    amqp_confirm_select(c, 1);
    amqp_basic_properties_t props = { ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                      .delivery_mode = 2 };
    amqp_bytes_t b = { sizeof(body), body };
    while (!stop) {
        double t0 = now_s();
        if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                               b) != AMQP_STATUS_OK) {
            errors++;
            break;
        }
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD ||
            f.payload.method.id != AMQP_BASIC_ACK_METHOD) {
            errors++;
            break;
        }
        size_t i = n_lat++;
        if (i < MAX_LAT)
            lat[i] = (uint32_t)((now_s() - t0) * 1e6);
        sent++;
    }
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return NULL;
}

static void *consumer(void *arg)
{
    amqp_connection_state_t c = bench_connect();
    if (c == NULL) {
        errors++;
        return NULL;
    }
    amqp_basic_qos(c, 1, 0, 10, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
        errors++;
        return NULL;
    }
    unsigned unacked = 0;
    while (!stop) {
        amqp_envelope_t env;
        struct timeval tv = { 0, 200000 };
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            continue; /* timeout */
        if (++unacked == 10) {
            amqp_basic_ack(c, 1, env.delivery_tag, 1);
            consumed += unacked;
            unacked = 0;
        }
        amqp_destroy_envelope(&env);
    }
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT QUEUE PRODUCERS CONSUMERS SECONDS\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    queue = argv[3];
    int np = atoi(argv[4]), nc = atoi(argv[5]);
    seconds = atoi(argv[6]);
    lat = calloc(MAX_LAT, sizeof(*lat));
    /* the durable queue */
    amqp_connection_state_t c = bench_connect();
    if (c == NULL) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        return 1;
    }
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    amqp_queue_purge(c, 1, amqp_cstring_bytes(queue));
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    pthread_t *t = calloc((size_t)(np + nc), sizeof(*t));
    for (int i = 0; i < nc; i++)
        pthread_create(&t[i], NULL, consumer, NULL);
    for (int i = 0; i < np; i++)
        pthread_create(&t[nc + i], NULL, producer, NULL);
    struct timespec d = { seconds, 0 };
    nanosleep(&d, NULL);
    stop = 1;
    uint64_t s = sent, k = consumed;
    for (int i = 0; i < np + nc; i++)
        pthread_join(t[i], NULL);
    size_t n = n_lat < MAX_LAT ? n_lat : MAX_LAT;
    qsort(lat, n, sizeof(*lat), cmp_u32);
    printf("AMQP sent=%llu consumed=%llu p50_us=%u p99_us=%u errors=%llu\n",
           (unsigned long long)s, (unsigned long long)k, n ? lat[n / 2] : 0,
           n ? lat[n * 99 / 100] : 0, (unsigned long long)errors);
    return 0;
}

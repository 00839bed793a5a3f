/* beanstalk_bench: the beanstalkd side of bench/queue.sh, with the same
 * load as the weir side: P producer connections each `put`ting 1 KB jobs
 * one at a time (waiting for INSERTED, which beanstalkd answers after its
 * binlog write, and after the fsync under -f0), and C consumer connections
 * that `reserve-with-timeout 1` and `delete` each job (the protocol has no
 * batches).
 *
 * usage: beanstalk_bench HOST PORT PRODUCERS CONSUMERS SECONDS
 * prints: BEANSTALK sent=N consumed=N p50_us=N p99_us=N errors=N
 * Build: cc -O2 -pthread -o beanstalk_bench bench/beanstalk_bench.c */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAT 4000000

static const char *host;
static int port;
static _Atomic int stop;
static _Atomic uint64_t sent, consumed, errors;
static uint32_t *lat;
static _Atomic size_t n_lat;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int bs_connect(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one line ending in \r\n into buf (NUL-terminated, without it). */
static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        if (read(fd, buf + n, 1) != 1)
            return -1;
        if (n > 0 && buf[n - 1] == '\r' && buf[n] == '\n') {
            buf[n - 1] = 0;
            return 0;
        }
        n++;
    }
    return -1;
}

static void *producer(void *arg)
{
    int fd = bs_connect();
    char req[2048], line[256];
    int head = snprintf(req, sizeof(req), "put 0 0 60 1024\r\n");
    memset(req + head, 'x', 1024);
    memcpy(req + head + 1024, "\r\n", 2);
    size_t len = (size_t)head + 1026;
    if (fd < 0) {
        errors++;
        return NULL;
    }
    while (!stop) {
        double t0 = now_s();
        if (write_all(fd, req, len) < 0 || read_line(fd, line, sizeof(line)) < 0 ||
            strncmp(line, "INSERTED", 8) != 0) {
            errors++;
            break;
        }
        size_t i = n_lat++;
        if (i < MAX_LAT)
            lat[i] = (uint32_t)((now_s() - t0) * 1e6);
        sent++;
    }
    close(fd);
    return NULL;
}

static void *consumer(void *arg)
{
    int fd = bs_connect();
    char line[256], body[2048];
    if (fd < 0) {
        errors++;
        return NULL;
    }
    while (!stop) {
        unsigned long long id;
        unsigned bytes;
        if (write_all(fd, "reserve-with-timeout 1\r\n", 24) < 0 ||
            read_line(fd, line, sizeof(line)) < 0) {
            errors++;
            break;
        }
        if (strncmp(line, "TIMED_OUT", 9) == 0)
            continue;
        if (sscanf(line, "RESERVED %llu %u", &id, &bytes) != 2 || bytes + 2 > sizeof(body)) {
            errors++;
            break;
        }
        size_t got = 0;
        while (got < bytes + 2) {
            ssize_t r = read(fd, body + got, bytes + 2 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        char del[64];
        int n = snprintf(del, sizeof(del), "delete %llu\r\n", id);
        if (got < bytes + 2 || write_all(fd, del, (size_t)n) < 0 ||
            read_line(fd, line, sizeof(line)) < 0 || strcmp(line, "DELETED") != 0) {
            errors++;
            break;
        }
        consumed++;
    }
    close(fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT PRODUCERS CONSUMERS SECONDS\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int np = atoi(argv[3]), nc = atoi(argv[4]), seconds = atoi(argv[5]);
    lat = calloc(MAX_LAT, sizeof(*lat));
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
    printf("BEANSTALK sent=%llu consumed=%llu p50_us=%u p99_us=%u errors=%llu\n",
           (unsigned long long)s, (unsigned long long)k, n ? lat[n / 2] : 0,
           n ? lat[n * 99 / 100] : 0, (unsigned long long)errors);
    return 0;
}

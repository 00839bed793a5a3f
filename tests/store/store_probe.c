/* store_probe: drives one weir store (src/store/) from stdin, for the
 * integration tests (tests/integration/test_store.py).
 *
 *   store_probe CONFIG STORE_NAME
 *
 * Loads the weir configuration CONFIG, creates the store STORE_NAME on a
 * libev loop (the configuration is freed at once: the store keeps copies)
 * and reads commands from stdin, one per line, arguments separated by
 * single spaces. Each line is submitted as soon as it is read, so lines
 * written together form a pipeline. The key (which picks the cluster slot)
 * is the second argument when there is one. Prefixes:
 *   !CMD ...   keyless: the store picks any node
 *   ~CMD ...   submit, then cancel at once (prints CANCELLED, never a reply)
 * Output, one line per command line, numbered from 1 in input order, in
 * completion order:
 *   #N OK <reply>      +status  -error  :integer  "string"  nil  [a, b]
 *   #N TIMEOUT | #N UNAVAILABLE | #N ERROR [<reply>]
 *   #N UNAVAILABLE refused      (store_command() returned NULL)
 * At the end of stdin it waits for what is outstanding, frees the store
 * (under ASan, leaks show) and exits 0. */
#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "store/store.h"
#include "store/store_cfg.h"

#define PROBE_MAX_LINE 65536
#define PROBE_MAX_ARGS 256
#define PROBE_MAX_DEPTH 8

struct probe {
    struct ev_loop *loop;
    struct store *store;
    ev_io in;
    char buf[PROBE_MAX_LINE];
    size_t len;
    unsigned long seq;
    unsigned long outstanding;
    int eof;
};

static void probe_print_str(const char *s, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (isprint(c))
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('"');
}

static void probe_print_reply(const redisReply *r, int depth)
{
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        printf("+%s", r->str);
        break;
    case REDIS_REPLY_ERROR:
        printf("-%s", r->str);
        break;
    case REDIS_REPLY_INTEGER:
        printf(":%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        printf("nil");
        break;
    case REDIS_REPLY_STRING:
        probe_print_str(r->str, r->len);
        break;
    case REDIS_REPLY_ARRAY:
        if (depth >= PROBE_MAX_DEPTH) {
            printf("[...]");
            break;
        }
        putchar('[');
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0)
                printf(", ");
            probe_print_reply(r->element[i], depth + 1);
        }
        putchar(']');
        break;
    default:
        printf("?type%d", r->type);
    }
}

static struct probe probe;

static void probe_maybe_exit(void)
{
    if (probe.eof && probe.outstanding == 0)
        ev_break(probe.loop, EVBREAK_ALL);
}

static void probe_done(void *arg, enum store_result result, struct redisReply *reply)
{
    unsigned long n = (unsigned long)(uintptr_t)arg;

    printf("#%lu %s", n, store_result_name(result));
    if (reply != NULL) {
        putchar(' ');
        probe_print_reply(reply, 0);
    }
    putchar('\n');
    fflush(stdout);
    probe.outstanding--;
    probe_maybe_exit();
}

static void probe_line(char *line)
{
    const char *argv[PROBE_MAX_ARGS];
    size_t argvlen[PROBE_MAX_ARGS];
    int argc = 0, keyless = 0, cancel = 0;

    if (*line == '\0')
        return;
    if (*line == '!')
        keyless = 1, line++;
    else if (*line == '~')
        cancel = 1, line++;
    for (char *tok = strtok(line, " "); tok != NULL && argc < PROBE_MAX_ARGS;
         tok = strtok(NULL, " ")) {
        argv[argc] = tok;
        argvlen[argc++] = strlen(tok);
    }
    if (argc == 0)
        return;
    unsigned long n = ++probe.seq;
    const char *key = !keyless && argc > 1 ? argv[1] : NULL;
    struct store_cmd *c = store_command(probe.store, key, key ? argvlen[1] : 0, argc, argv, argvlen,
                                        probe_done, (void *)(uintptr_t)n);
    if (c == NULL) {
        printf("#%lu UNAVAILABLE refused\n", n);
    } else if (cancel) {
        store_cancel(c);
        printf("#%lu CANCELLED\n", n);
    } else {
        probe.outstanding++;
    }
    fflush(stdout);
}

static void probe_read_cb(EV_P_ ev_io *w, int revents)
{
    ssize_t n = read(w->fd, probe.buf + probe.len, sizeof(probe.buf) - 1 - probe.len);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ev_io_stop(EV_A_ w);
        probe.eof = 1;
        probe_maybe_exit();
        return;
    }
    probe.len += (size_t)n;
    char *start = probe.buf, *nl;
    while ((nl = memchr(start, '\n', probe.len - (size_t)(start - probe.buf))) != NULL) {
        *nl = '\0';
        if (nl > start && nl[-1] == '\r')
            nl[-1] = '\0';
        probe_line(start);
        start = nl + 1;
    }
    probe.len -= (size_t)(start - probe.buf);
    memmove(probe.buf, start, probe.len);
    if (probe.len == sizeof(probe.buf) - 1) {
        fprintf(stderr, "store_probe: line longer than %d bytes\n", PROBE_MAX_LINE);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    char err[1024];
    struct cfg *cfg = NULL;

    if (argc != 3) {
        fprintf(stderr, "usage: store_probe CONFIG STORE_NAME\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg_load(argv[1], &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const struct cfg_store *sc = store_cfg_find(cfg, argv[2]);
    if (sc == NULL) {
        fprintf(stderr, "store_probe: no store named %s\n", argv[2]);
        cfg_free(cfg);
        return 2;
    }
    probe.loop = EV_DEFAULT;
    probe.store = store_new(probe.loop, sc);
    cfg_free(cfg);
    if (probe.store == NULL) {
        fprintf(stderr, "store_probe: store_new failed\n");
        return 1;
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    ev_io_init(&probe.in, probe_read_cb, 0, EV_READ);
    ev_io_start(probe.loop, &probe.in);
    printf("READY\n");
    fflush(stdout);
    ev_run(probe.loop, 0);
    store_free(probe.store);
    ev_loop_destroy(probe.loop);
    return 0;
}

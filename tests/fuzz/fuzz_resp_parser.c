/* fuzz_resp_parser: libFuzzer harness for resp_parse().
 *
 * The first input byte picks the mode (request / reply) and the limits;
 * the rest is a stream of messages. The stream is parsed message by
 * message four ways: whole, one byte per call, in pieces whose sizes
 * come from the input, and whole with arg_stop (returning after each
 * argument, as a streamed split command is read). All must agree on every message's outcome, length,
 * error and arguments; each piece is an exact-size copy, so a read past
 * what the parser was given is a heap overflow under ASan. */
#include "resp/resp_parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

#define FUZZ_MAX_MSGS 64
#define FUZZ_ARGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_result {
    size_t n_msgs;
    int64_t len[FUZZ_MAX_MSGS]; /* bytes, or -1 - error code */
    uint32_t n_args[FUZZ_MAX_MSGS];
    uint64_t args_hash[FUZZ_MAX_MSGS];
};

static uint64_t fuzz_hash(const char *d, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)d[i]) * 1099511628211ull;
    return h;
}

/* Parses the stream with pieces of `step` bytes (0: the rest; step_seed:
 * sizes derived from the data). */
static void fuzz_run(const char *buf, size_t len, const struct resp_limits *lim,
                     enum resp_mode mode, size_t step, int varied, int stop,
                     struct fuzz_result *r)
{
    struct resp_arg args[FUZZ_ARGS];
    struct resp_parser p;
    size_t pos = 0, msg_start = 0;

    memset(r, 0, sizeof(*r));
    resp_parser_init(&p, mode, lim, args, FUZZ_ARGS);
    p.arg_stop = (uint8_t)stop;
    while (pos < len && r->n_msgs < FUZZ_MAX_MSGS) {
        size_t n = step ? step : len - pos;
        if (varied)
            n = 1 + (uint8_t)buf[pos] % 7;
        if (n > len - pos)
            n = len - pos;
        char *piece = malloc(n);
        memcpy(piece, buf + pos, n);
        uint32_t args_before = p.arg_done;
        ssize_t c = resp_parse(&p, piece, n);
        free(piece);
        if (c < 0) {
            FUZZ_CHECK(p.err != RESP_ERR_NONE && p.err < RESP_ERR_COUNT);
            FUZZ_CHECK(p.err_pos >= p.off && p.err_pos < p.off + n);
            r->len[r->n_msgs++] = -1 - p.err;
            return;
        }
        FUZZ_CHECK((size_t)c <= n);
        FUZZ_CHECK(p.done || (size_t)c == n || (stop && p.arg_done == args_before + 1));
        if (!p.done && (size_t)c < n && args_before < FUZZ_ARGS)
            FUZZ_CHECK(p.arg_len == args[args_before].len);
        pos += (size_t)c;
        FUZZ_CHECK(p.off == pos - msg_start);
        if (!p.done)
            continue;
        uint64_t h = 0;
        for (uint32_t i = 0; i < p.arg_done && i < FUZZ_ARGS; i++) {
            FUZZ_CHECK((uint64_t)args[i].off + args[i].len <= p.off);
            h = fuzz_hash(buf + msg_start + args[i].off, args[i].len, h + 1);
        }
        if (mode == RESP_MODE_REQUEST)
            FUZZ_CHECK(p.arg_done == p.n_args);
        r->n_args[r->n_msgs] = p.n_args;
        r->args_hash[r->n_msgs] = h;
        r->len[r->n_msgs++] = (int64_t)(pos - msg_start);
        msg_start = pos;
        resp_parser_reset(&p);
        p.arg_stop = (uint8_t)stop;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    struct resp_limits lim = {
        .max_bulk_bytes = (sel & 2) ? 16 : 1u << 20,
        .max_array_len = (sel & 4) ? 3 : 1000,
        .max_depth = 1 + (sel >> 4) % 8,
        .max_inline_bytes = (sel & 8) ? 8 : 1024,
    };
    enum resp_mode mode = (sel & 1) ? RESP_MODE_REPLY : RESP_MODE_REQUEST;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    struct fuzz_result a, b, c, d;

    fuzz_run(buf, len, &lim, mode, 0, 0, 0, &a);
    fuzz_run(buf, len, &lim, mode, 1, 0, 0, &b);
    fuzz_run(buf, len, &lim, mode, 0, 1, 0, &c);
    fuzz_run(buf, len, &lim, mode, 0, 0, 1, &d);
    FUZZ_CHECK(a.n_msgs == d.n_msgs && memcmp(a.len, d.len, sizeof(a.len)) == 0);
    FUZZ_CHECK(memcmp(a.args_hash, d.args_hash, sizeof(a.args_hash)) == 0);
    FUZZ_CHECK(a.n_msgs == b.n_msgs && a.n_msgs == c.n_msgs);
    FUZZ_CHECK(memcmp(a.len, b.len, sizeof(a.len)) == 0 && memcmp(a.len, c.len, sizeof(a.len)) == 0);
    FUZZ_CHECK(memcmp(a.n_args, b.n_args, sizeof(a.n_args)) == 0);
    FUZZ_CHECK(memcmp(a.args_hash, b.args_hash, sizeof(a.args_hash)) == 0);
    FUZZ_CHECK(memcmp(a.args_hash, c.args_hash, sizeof(a.args_hash)) == 0);
    return 0;
}

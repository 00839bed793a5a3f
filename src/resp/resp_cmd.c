/* resp_cmd: see resp_cmd.h.
 *
 * Lookup: the names go into an open-addressing table (built once, a power
 * of two at least four times the command count) keyed by a case-folded
 * FNV-1a of the name; a probe compares lengths first, then the bytes
 * case-insensitively. No allocation: the table is static. */
#include "resp/resp_cmd.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define RESP_CMD_ROW(e, name_, arity_, flags_, keys_, first_, last_, step_, merge_) \
    { .name = name_, .name_len = sizeof(name_) - 1, .arity = arity_, .flags = (flags_), \
      .keys = keys_, .first = first_, .last = last_, .step = step_, .merge = merge_, .id = e },
const struct resp_cmd resp_cmds[RESP_CMD_COUNT] = { RESP_CMD_LIST(RESP_CMD_ROW) };
#undef RESP_CMD_ROW

#define RESP_CMD_SLOTS 1024
_Static_assert(RESP_CMD_SLOTS >= 4 * RESP_CMD_COUNT, "command table too small");

static int16_t resp_cmd_slots[RESP_CMD_SLOTS]; /* index + 1, 0 = empty */
static pthread_once_t resp_cmd_once = PTHREAD_ONCE_INIT;

static uint32_t resp_cmd_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h = (h ^ c) * 16777619u;
    }
    return h;
}

static void resp_cmd_build(void)
{
    for (int i = 0; i < RESP_CMD_COUNT; i++) {
        uint32_t h = resp_cmd_hash(resp_cmds[i].name, resp_cmds[i].name_len) & (RESP_CMD_SLOTS - 1);
        while (resp_cmd_slots[h])
            h = (h + 1) & (RESP_CMD_SLOTS - 1);
        resp_cmd_slots[h] = (int16_t)(i + 1);
    }
}

const struct resp_cmd *resp_cmd_lookup(const char *name, size_t len)
{
    pthread_once(&resp_cmd_once, resp_cmd_build);
    if (len == 0 || len > 64)
        return NULL;
    uint32_t h = resp_cmd_hash(name, len) & (RESP_CMD_SLOTS - 1);
    while (resp_cmd_slots[h]) {
        const struct resp_cmd *c = &resp_cmds[resp_cmd_slots[h] - 1];
        if (c->name_len == len && strncasecmp(c->name, name, len) == 0)
            return c;
        h = (h + 1) & (RESP_CMD_SLOTS - 1);
    }
    return NULL;
}

int resp_cmd_arity_ok(const struct resp_cmd *cmd, uint32_t argc)
{
    if (cmd->arity >= 0 ? argc != (uint32_t)cmd->arity : argc < (uint32_t)-cmd->arity)
        return 0;
    /* MSET, MSETNX: key value pairs */
    if (cmd->keys == RESP_KEYS_SPAN && cmd->step > 1 && (argc - (uint32_t)cmd->first) % (uint32_t)cmd->step)
        return 0;
    return 1;
}

int resp_arg_is(const char *base, const struct resp_arg *a, const char *word)
{
    size_t n = strlen(word);
    return a->len == n && strncasecmp(base + a->off, word, n) == 0;
}

/* A non-negative decimal argument, or -1. */
static int64_t resp_arg_count(const char *base, const struct resp_arg *a)
{
    int64_t v = 0;
    if (a->len == 0 || a->len > 9)
        return -1;
    for (uint32_t i = 0; i < a->len; i++) {
        char c = base[a->off + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    return v;
}

/* numkeys at args[at], keys right after it. */
static int resp_keys_numkeys(uint32_t argc, const char *base, const struct resp_arg *args,
                             uint32_t at, int zero_is_keyless, struct resp_keys *out)
{
    if (at >= argc)
        return -EINVAL;
    int64_t n = resp_arg_count(base, &args[at]);
    if (n == 0 && zero_is_keyless)
        return -ENOKEY;
    if (n <= 0 || (uint64_t)n > argc - at - 1)
        return -EINVAL;
    out->n = (uint32_t)n;
    out->first = at + 1;
    out->last = at + (uint32_t)n;
    out->step = 1;
    return 0;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS key... id...; XREADGROUP GROUP g c [...] [NOACK] STREAMS ... */
static int resp_keys_streams(uint32_t argc, const char *base, const struct resp_arg *args,
                             struct resp_keys *out)
{
    uint32_t i = 1;
    while (i < argc) {
        const struct resp_arg *a = &args[i];
        if (resp_arg_is(base, a, "streams"))
            break;
        if (resp_arg_is(base, a, "block"))
            out->blocking = 1;
        if (resp_arg_is(base, a, "count") || resp_arg_is(base, a, "block"))
            i += 2;
        else if (resp_arg_is(base, a, "group"))
            i += 3;
        else if (resp_arg_is(base, a, "noack"))
            i += 1;
        else
            return -EINVAL;
    }
    if (i >= argc)
        return -EINVAL;
    uint32_t rest = argc - i - 1;
    if (rest == 0 || rest % 2)
        return -EINVAL;
    out->n = rest / 2;
    out->first = i + 1;
    out->last = i + rest / 2;
    out->step = 1;
    return 0;
}

/* SORT key [BY p] [LIMIT o c] [GET p]... [ASC|DESC] [ALPHA] [STORE dest];
 * GEORADIUS... [STORE k] [STOREDIST k]. */
static int resp_keys_store(const struct resp_cmd *cmd, uint32_t argc, const char *base,
                           const struct resp_arg *args, struct resp_keys *out)
{
    int sort = cmd->id == RESP_CMD_SORT || cmd->id == RESP_CMD_SORT_RO;
    out->n = 1;
    out->first = out->last = 1;
    out->step = 1;
    for (uint32_t i = 2; i < argc; i++) {
        const struct resp_arg *a = &args[i];
        if (sort && resp_arg_is(base, a, "limit")) {
            i += 2;
        } else if (sort && (resp_arg_is(base, a, "by") || resp_arg_is(base, a, "get"))) {
            if (i + 1 < argc) {
                const struct resp_arg *pat = &args[i + 1];
                int is_get = resp_arg_is(base, a, "get");
                /* GET # is the element itself; a BY pattern without '*' means no sorting */
                if (!(is_get && resp_arg_is(base, pat, "#")) &&
                    memchr(base + pat->off, '*', pat->len) != NULL)
                    out->foreign = 1;
            }
            i += 1;
        } else if ((resp_arg_is(base, a, "store") || (!sort && resp_arg_is(base, a, "storedist"))) &&
                   i + 1 < argc) {
            out->extra = ++i; /* the last one counts, as with Redis */
        }
    }
    return 0;
}

int resp_cmd_keys(const struct resp_cmd *cmd, uint32_t argc, const char *base,
                  const struct resp_arg *args, struct resp_keys *out)
{
    memset(out, 0, sizeof(*out));
    switch (cmd->keys) {
    case RESP_KEYS_NONE:
        return 0;
    case RESP_KEYS_SPAN: {
        if ((uint32_t)cmd->first >= argc)
            return 0;
        int64_t last = cmd->last < 0 ? (int64_t)argc + cmd->last : cmd->last;
        if (last < cmd->first)
            return -EINVAL;
        out->first = (uint32_t)cmd->first;
        out->step = (uint32_t)cmd->step;
        out->n = (uint32_t)((last - cmd->first) / cmd->step + 1);
        out->last = out->first + (out->n - 1) * out->step;
        return 0;
    }
    case RESP_KEYS_NUMKEYS1:
        return resp_keys_numkeys(argc, base, args, 1, 0, out);
    case RESP_KEYS_NUMKEYS2:
        return resp_keys_numkeys(argc, base, args, 2,
                                 cmd->id == RESP_CMD_EVAL || cmd->id == RESP_CMD_EVALSHA ||
                                     cmd->id == RESP_CMD_EVAL_RO || cmd->id == RESP_CMD_EVALSHA_RO,
                                 out);
    case RESP_KEYS_DEST_NUMKEYS: {
        int rc = resp_keys_numkeys(argc, base, args, 2, 0, out);
        out->extra = 1;
        return rc;
    }
    case RESP_KEYS_STREAMS:
        return resp_keys_streams(argc, base, args, out);
    case RESP_KEYS_STORE:
        return resp_keys_store(cmd, argc, base, args, out);
    case RESP_KEYS_SUBCMD:
        if (argc < 3 || resp_arg_is(base, &args[1], "help"))
            return -EINVAL;
        if (cmd->id == RESP_CMD_MEMORY && !resp_arg_is(base, &args[1], "usage"))
            return -ENOKEY;
        out->n = 1;
        out->first = out->last = 2;
        out->step = 1;
        return 0;
    default:
        return -EINVAL;
    }
}

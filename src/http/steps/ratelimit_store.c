/* ratelimit_store: the cluster-wide side of the rate_limit step.
 *
 *   worker thread                              Redis (or the key's Cluster node)
 *   rl_store_decide --EVALSHA sha 1 KEY N P B T--> script: TIME, read the key's
 *                                                  hash / sorted set, decide,
 *                                                  write it back, PEXPIRE
 *   rl_store_reply  <------ {allowed, remaining, reset_ms, retry_ms} ---
 *
 * One round trip per decision: the script is atomic on the server, so every
 * weir instance sharing the store enforces one limit, on the server's clock
 * (TIME). A script unknown to the server (restart, SCRIPT FLUSH) answers
 * NOSCRIPT and the caller sends it once whole with EVAL, which caches it
 * again. A new client loads every script first (SCRIPT LOAD), so the first
 * burst of decisions finds them. The scripts are the same integer arithmetic as ratelimit_algo.c,
 * in Lua numbers (exact below 2^53: the step refuses larger limits).
 *
 * Each worker thread keeps its store clients in a registry (a thread
 * key): one client per distinct store setting, made on first use. Clients
 * of settings a reload dropped stay until the thread ends, when the
 * registry's destructor frees them all (the loop still exists then). */
#include "http/steps/ratelimit_store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_registry.h"

/* ---- the scripts (KEYS[1]; ARGV: N, P, B, a unique member, delay) ----
 * Each returns {allowed, remaining, reset_ms, retry_ms, delay_ms}. */

#define RL_LUA_HEAD \
    "local t = redis.call('TIME')\n" \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
    "local N, P, B, D = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])\n" \
    "local k = KEYS[1]\n" \
    "local ok, retry = 0, 0\n" \
    "local function f(x) return string.format('%.0f', x) end\n"

static const char *const rl_scripts[RL_ALGO_COUNT] = {
    [RL_TOKEN_BUCKET] = RL_LUA_HEAD
    "local cap = B * P\n"
    "local v = redis.call('HMGET', k, 'a', 'l')\n"
    "local tok, last = tonumber(v[1]), tonumber(v[2])\n"
    "if tok == nil or last == nil then tok = cap; last = now end\n"
    "if now < last then now = last end\n"
    "tok = math.min(cap, tok + (now - last) * N)\n"
    "if tok >= P then tok = tok - P; ok = 1 else retry = math.ceil((P - tok) / N) end\n"
    "local reset = math.ceil((cap - tok) / N)\n"
    "redis.call('HSET', k, 'a', f(tok), 'l', f(now))\n"
    "redis.call('PEXPIRE', k, reset + 1000)\n"
    "return {ok, math.floor(tok / P), reset, retry, 0}\n",

    [RL_LEAKY_BUCKET] = RL_LUA_HEAD
    "local cap = B * P\n"
    "local v = redis.call('HMGET', k, 'a', 'l')\n"
    "local lvl, last = tonumber(v[1]) or 0, tonumber(v[2]) or now\n"
    "if now < last then now = last end\n"
    "lvl = math.max(0, lvl - (now - last) * N)\n"
    "local over = math.max(0, lvl + P - cap)\n"
    "local wait = math.ceil(over / N)\n"
    "if wait <= D then lvl = lvl + P; ok = 1 else wait = 0; retry = math.ceil((over - D * N) / N) end\n"
    "local reset = math.ceil(lvl / N)\n"
    "redis.call('HSET', k, 'a', f(lvl), 'l', f(now))\n"
    "redis.call('PEXPIRE', k, reset + 1000)\n"
    "return {ok, math.floor(math.max(0, cap - lvl) / P), reset, retry, wait}\n",

    [RL_FIXED_WINDOW] = RL_LUA_HEAD
    "local start = now - now % P\n"
    "local v = redis.call('HMGET', k, 's', 'c')\n"
    "local c = 0\n"
    "if tonumber(v[1]) == start then c = tonumber(v[2]) or 0 end\n"
    "local reset = start + P - now\n"
    "if c < N then c = c + 1; ok = 1 else retry = reset end\n"
    "redis.call('HSET', k, 's', f(start), 'c', f(c))\n"
    "redis.call('PEXPIRE', k, reset + 1000)\n"
    "return {ok, N - c, reset, retry, 0}\n",

    [RL_SLIDING_WINDOW_LOG] = RL_LUA_HEAD
    "redis.call('ZREMRANGEBYSCORE', k, '-inf', f(now - P))\n"
    "local n = redis.call('ZCARD', k)\n"
    "if n < N then\n"
    "  redis.call('ZADD', k, f(now), ARGV[4]); n = n + 1; ok = 1\n"
    "else\n"
    "  local o = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')\n"
    "  retry = tonumber(o[2]) + P - now\n"
    "end\n"
    "local reset = 0\n"
    "if n > 0 then\n"
    "  local y = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')\n"
    "  reset = tonumber(y[2]) + P - now\n"
    "end\n"
    "redis.call('PEXPIRE', k, P + 1000)\n"
    "return {ok, N - n, reset, retry, 0}\n",

    [RL_SLIDING_WINDOW_COUNTER] = RL_LUA_HEAD
    "local start = now - now % P\n"
    "local v = redis.call('HMGET', k, 's', 'p', 'c')\n"
    "local s0, p, c = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0\n"
    "if s0 ~= start then\n"
    "  if s0 == start - P then p = c else p = 0 end\n"
    "  c = 0\n"
    "end\n"
    "local el, room = now - start, N * P\n"
    "local w = p * (P - el) + c * P\n"
    "if w + P <= room then\n"
    "  c = c + 1; w = w + P; ok = 1\n"
    "else\n"
    "  local need = w + P\n"
    "  if p > 0 and need - room <= p * (P - el - 1) then\n"
    "    retry = math.ceil((need - room) / p)\n"
    "  else\n"
    "    local nx, wt = c * P + P, 0\n"
    "    if nx > room and c > 0 then wt = math.ceil((nx - room) / c) end\n"
    "    retry = P - el + wt\n"
    "  end\n"
    "end\n"
    "local rem = 0\n"
    "if w < room then rem = math.floor((room - w) / P) end\n"
    "local reset = P - el\n"
    "if c > 0 then reset = 2 * P - el end\n"
    "redis.call('HSET', k, 's', f(start), 'p', f(p), 'c', f(c))\n"
    "redis.call('PEXPIRE', k, 2 * P + 1000)\n"
    "return {ok, rem, reset, retry, 0}\n",
};

/* ---- SHA-1 (FIPS 180-4), for EVALSHA ---- */

static uint32_t rl_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void rl_sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rl_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rl_rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rl_rol(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void rl_sha1_hex(const void *data, size_t n, char out[41])
{
    uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
    const unsigned char *p = data;
    unsigned char last[128] = { 0 };
    size_t full = n / 64 * 64, rest = n - full;
    for (size_t i = 0; i < full; i += 64)
        rl_sha1_block(h, p + i);
    memcpy(last, p + full, rest);
    last[rest] = 0x80;
    size_t len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        last[len - 1 - i] = (unsigned char)(bits >> (8 * i));
    rl_sha1_block(h, last);
    if (len == 128)
        rl_sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
}

static char rl_shas[RL_ALGO_COUNT][41];
static pthread_once_t rl_shas_once = PTHREAD_ONCE_INIT;

static void rl_shas_init(void)
{
    for (int a = 0; a < RL_ALGO_COUNT; a++)
        rl_sha1_hex(rl_scripts[a], strlen(rl_scripts[a]), rl_shas[a]);
}

const char *rl_store_sha(enum rl_algo a)
{
    pthread_once(&rl_shas_once, rl_shas_init);
    return rl_shas[a];
}

/* ---- decisions ---- */

/* sliding_window_log members must differ between every request of every
 * instance: this process's nonce, the thread, a counter. */
static uint64_t rl_nonce;
static pthread_once_t rl_nonce_once = PTHREAD_ONCE_INIT;

static void rl_nonce_init(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rl_nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 20);
}

struct store_cmd *rl_store_decide(struct store *s, const struct rl_params *p, const char *key,
                                  size_t len, int full, store_cb cb, void *arg)
{
    static _Thread_local uint64_t seq;
    pthread_once(&rl_nonce_once, rl_nonce_init);
    char n[24], per[24], burst[24], member[64], delay[24];
    const char *argv[9];
    size_t argvlen[9];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)p->count);
    snprintf(per, sizeof(per), "%llu", (unsigned long long)p->period_ms);
    snprintf(burst, sizeof(burst), "%llu", (unsigned long long)p->burst);
    snprintf(delay, sizeof(delay), "%llu", (unsigned long long)p->delay_ms);
    snprintf(member, sizeof(member), "%llx-%llx-%llx", (unsigned long long)rl_nonce,
             (unsigned long long)(uintptr_t)&seq, (unsigned long long)++seq);
    argv[0] = full ? "EVAL" : "EVALSHA";
    argv[1] = full ? rl_scripts[p->algo] : rl_store_sha(p->algo);
    argv[2] = "1";
    argv[3] = key;
    argvlen[3] = len;
    argv[4] = n;
    argv[5] = per;
    argv[6] = burst;
    argv[7] = member;
    argv[8] = delay;
    for (int i = 0; i < 9; i++)
        if (i != 3)
            argvlen[i] = strlen(argv[i]);
    return store_command(s, key, len, 9, argv, argvlen, cb, arg);
}

int rl_store_reply(const struct redisReply *r, const struct rl_params *p, struct rl_decision *d)
{
    if (r == NULL)
        return -EPROTO;
    if (r->type == REDIS_REPLY_ERROR)
        return strncmp(r->str, "NOSCRIPT", 8) == 0 ? -ENOENT : -EPROTO;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        return -EPROTO;
    long long v[5];
    for (int i = 0; i < 5; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer < 0)
            return -EPROTO;
        v[i] = r->element[i]->integer;
    }
    *d = (struct rl_decision){
        .allowed = v[0] != 0,
        .limit = p->algo == RL_TOKEN_BUCKET || p->algo == RL_LEAKY_BUCKET ? p->burst : p->count,
        .remaining = (uint64_t)v[1],
        .reset_ms = (uint64_t)v[2],
        .retry_after_ms = (uint64_t)v[3],
        .delay_ms = (uint64_t)v[4],
    };
    return 0;
}

static void rl_store_ignore(void *arg, enum store_result result, struct redisReply *reply)
{
}

/* Loads the scripts as soon as the client connects, ahead of the first
 * decisions on the same connection, so a burst of first requests does not
 * all meet NOSCRIPT (the fallback still covers a Cluster's other nodes and
 * a server that restarts). */
static void rl_store_preload(struct store *s)
{
    for (int a = 0; a < RL_ALGO_COUNT; a++) {
        const char *argv[3] = { "SCRIPT", "LOAD", rl_scripts[a] };
        size_t argvlen[3] = { 6, 4, strlen(rl_scripts[a]) };
        store_command(s, NULL, 0, 3, argv, argvlen, rl_store_ignore, NULL);
    }
}

struct store *rl_store_get(struct ev_loop *loop, const struct cfg_store *cfg)
{
    int created;
    struct store *s = store_registry_get(loop, cfg, &created);
    if (s && created)
        rl_store_preload(s);
    return s;
}

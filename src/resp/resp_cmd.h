/* resp_cmd: the Redis commands weir knows, from one X-macro table.
 *
 * Each row: enum member, name (lower case, as Redis names it), arity (as
 * Redis: N exactly N arguments counting the name, -N at least N), flags,
 * how to find the keys, and for RESP_KEYS_SPAN the first / last / step of
 * Redis's key specification (last -1: the last argument, -2: the one
 * before). Rows follow Redis 7's COMMAND output, so arity errors match a
 * real server. Commands Redis has but a sharding proxy cannot run
 * correctly carry RC_UNSUPPORTED: the client gets
 * "-ERR unsupported command 'x'" instead of a wrong answer. */
#ifndef WEIR_RESP_CMD_H
#define WEIR_RESP_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "resp/resp_parser.h"

enum resp_cmd_flag {
    RC_READ = 1 << 0,        /* never writes: may go to a replica */
    RC_WRITE = 1 << 1,
    RC_PROXY = 1 << 2,       /* answered (or fanned out) by weir itself */
    RC_SPLIT = 1 << 3,       /* several keys: split per key, replies merged */
    RC_BLOCKING = 1 << 4,    /* may block: runs on a dedicated backend connection */
    RC_UNSUPPORTED = 1 << 5,
};

enum resp_keys_kind {
    RESP_KEYS_NONE,          /* no key */
    RESP_KEYS_SPAN,          /* first..last step (Redis's key spec) */
    RESP_KEYS_NUMKEYS1,      /* CMD numkeys key... (LMPOP, ZUNION, SINTERCARD, ...) */
    RESP_KEYS_NUMKEYS2,      /* CMD x numkeys key... (EVAL, BLMPOP, BZMPOP) */
    RESP_KEYS_DEST_NUMKEYS,  /* CMD dest numkeys key... (ZUNIONSTORE, ...) */
    RESP_KEYS_STREAMS,       /* ... STREAMS key... id... (XREAD, XREADGROUP) */
    RESP_KEYS_STORE,         /* CMD key ... [STORE dest] (SORT, GEORADIUS) */
    RESP_KEYS_SUBCMD,        /* CMD subcommand key ... (OBJECT, MEMORY USAGE, XINFO, XGROUP) */
};

enum resp_merge {
    RESP_MERGE_NONE,
    RESP_MERGE_ARRAY,        /* MGET: one element per key, in the client's order */
    RESP_MERGE_SUM,          /* DEL, UNLINK, EXISTS, TOUCH: the integers added */
    RESP_MERGE_OK,           /* MSET: +OK when every part said +OK */
    RESP_MERGE_SCAN,         /* SCAN: one shard's reply, its cursor made global */
    RESP_MERGE_RANDOM,       /* RANDOMKEY: the key of a random shard that had one */
    RESP_MERGE_INFO,         /* INFO: the primaries' numbers added into weir's own text */
    RESP_MERGE_CONFIG,       /* CONFIG GET: one primary's pairs, weir's own values kept */
    RESP_MERGE_FIRST,        /* the one fragment's reply as it is */
};

#define RESP_CMD_LIST(X) \
    X(RESP_CMD_ACL, "acl", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_APPEND, "append", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ASKING, "asking", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_AUTH, "auth", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_BGREWRITEAOF, "bgrewriteaof", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_BGSAVE, "bgsave", -1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_BITCOUNT, "bitcount", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BITFIELD, "bitfield", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BITFIELD_RO, "bitfield_ro", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BITOP, "bitop", -4, RC_WRITE, RESP_KEYS_SPAN, 2, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BITPOS, "bitpos", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BLMOVE, "blmove", 6, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BLMPOP, "blmpop", -5, RC_WRITE | RC_BLOCKING, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_BLPOP, "blpop", -3, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, -2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BRPOP, "brpop", -3, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, -2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BRPOPLPUSH, "brpoplpush", 4, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BZMPOP, "bzmpop", -5, RC_WRITE | RC_BLOCKING, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_BZPOPMAX, "bzpopmax", -3, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, -2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_BZPOPMIN, "bzpopmin", -3, RC_WRITE | RC_BLOCKING, RESP_KEYS_SPAN, 1, -2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_CLIENT, "client", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_CLUSTER, "cluster", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_COMMAND, "command", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_CONFIG, "config", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_COPY, "copy", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_DBSIZE, "dbsize", 1, RC_PROXY | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_DEBUG, "debug", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_DECR, "decr", 2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_DECRBY, "decrby", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_DEL, "del", -2, RC_SPLIT | RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_SUM) \
    X(RESP_CMD_DISCARD, "discard", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_DUMP, "dump", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ECHO, "echo", 2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EVAL, "eval", -3, 0, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EVAL_RO, "eval_ro", -3, RC_READ, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EVALSHA, "evalsha", -3, 0, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EVALSHA_RO, "evalsha_ro", -3, RC_READ, RESP_KEYS_NUMKEYS2, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EXEC, "exec", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_EXISTS, "exists", -2, RC_SPLIT | RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_SUM) \
    X(RESP_CMD_EXPIRE, "expire", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_EXPIREAT, "expireat", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_EXPIRETIME, "expiretime", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_FAILOVER, "failover", -1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_FCALL, "fcall", -3, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_FCALL_RO, "fcall_ro", -3, RC_UNSUPPORTED | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_FLUSHALL, "flushall", -1, RC_PROXY | RC_WRITE, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_FLUSHDB, "flushdb", -1, RC_PROXY | RC_WRITE, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_FUNCTION, "function", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_GEOADD, "geoadd", -5, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEODIST, "geodist", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEOHASH, "geohash", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEOPOS, "geopos", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEORADIUS, "georadius", -6, RC_WRITE, RESP_KEYS_STORE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEORADIUS_RO, "georadius_ro", -6, RC_UNSUPPORTED | RC_READ, RESP_KEYS_NONE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEORADIUSBYMEMBER, "georadiusbymember", -5, RC_WRITE, RESP_KEYS_STORE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEORADIUSBYMEMBER_RO, "georadiusbymember_ro", -5, RC_UNSUPPORTED | RC_READ, RESP_KEYS_NONE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEOSEARCH, "geosearch", -7, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GEOSEARCHSTORE, "geosearchstore", -8, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GET, "get", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GETBIT, "getbit", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GETDEL, "getdel", 2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GETEX, "getex", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GETRANGE, "getrange", 4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_GETSET, "getset", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HDEL, "hdel", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HELLO, "hello", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_HEXISTS, "hexists", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HGET, "hget", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HGETALL, "hgetall", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HINCRBY, "hincrby", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HINCRBYFLOAT, "hincrbyfloat", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HKEYS, "hkeys", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HLEN, "hlen", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HMGET, "hmget", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HMSET, "hmset", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HRANDFIELD, "hrandfield", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HSCAN, "hscan", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HSET, "hset", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HSETNX, "hsetnx", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HSTRLEN, "hstrlen", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_HVALS, "hvals", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_INCR, "incr", 2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_INCRBY, "incrby", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_INCRBYFLOAT, "incrbyfloat", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_INFO, "info", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_KEYS, "keys", 2, RC_PROXY | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_LASTSAVE, "lastsave", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_LATENCY, "latency", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_LCS, "lcs", -3, RC_READ, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LINDEX, "lindex", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LINSERT, "linsert", 5, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LLEN, "llen", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LMOVE, "lmove", 5, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LMPOP, "lmpop", -4, RC_WRITE, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_LOLWUT, "lolwut", -1, RC_UNSUPPORTED | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_LPOP, "lpop", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LPOS, "lpos", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LPUSH, "lpush", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LPUSHX, "lpushx", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LRANGE, "lrange", 4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LREM, "lrem", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LSET, "lset", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_LTRIM, "ltrim", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_MEMORY, "memory", -2, 0, RESP_KEYS_SUBCMD, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_MGET, "mget", -2, RC_SPLIT | RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_ARRAY) \
    X(RESP_CMD_MIGRATE, "migrate", -6, RC_UNSUPPORTED | RC_WRITE, RESP_KEYS_NONE, 3, 3, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_MODULE, "module", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_MONITOR, "monitor", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_MOVE, "move", 3, RC_UNSUPPORTED | RC_WRITE, RESP_KEYS_NONE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_MSET, "mset", -3, RC_SPLIT | RC_WRITE, RESP_KEYS_SPAN, 1, -1, 2, RESP_MERGE_OK) \
    X(RESP_CMD_MSETNX, "msetnx", -3, RC_WRITE, RESP_KEYS_SPAN, 1, -1, 2, RESP_MERGE_NONE) \
    X(RESP_CMD_MULTI, "multi", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_OBJECT, "object", -2, 0, RESP_KEYS_SUBCMD, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PERSIST, "persist", 2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PEXPIRE, "pexpire", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PEXPIREAT, "pexpireat", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PEXPIRETIME, "pexpiretime", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PFADD, "pfadd", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PFCOUNT, "pfcount", -2, RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PFDEBUG, "pfdebug", 3, RC_UNSUPPORTED | RC_WRITE, RESP_KEYS_NONE, 2, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PFMERGE, "pfmerge", -2, RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PFSELFTEST, "pfselftest", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PING, "ping", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PSETEX, "psetex", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PSUBSCRIBE, "psubscribe", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PSYNC, "psync", -3, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PTTL, "pttl", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PUBLISH, "publish", 3, 0, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_PUBSUB, "pubsub", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_PUNSUBSCRIBE, "punsubscribe", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_QUIT, "quit", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_RANDOMKEY, "randomkey", 1, RC_PROXY | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_READONLY, "readonly", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_READWRITE, "readwrite", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_RENAME, "rename", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_RENAMENX, "renamenx", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_REPLCONF, "replconf", -1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_REPLICAOF, "replicaof", 3, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_RESET, "reset", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_RESTORE, "restore", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_RESTORE_ASKING, "restore-asking", -4, RC_UNSUPPORTED | RC_WRITE, RESP_KEYS_NONE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ROLE, "role", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_RPOP, "rpop", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_RPOPLPUSH, "rpoplpush", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_RPUSH, "rpush", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_RPUSHX, "rpushx", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SADD, "sadd", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SAVE, "save", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SCAN, "scan", -2, RC_PROXY | RC_READ, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SCARD, "scard", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SCRIPT, "script", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SDIFF, "sdiff", -2, RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SDIFFSTORE, "sdiffstore", -3, RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SELECT, "select", 2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SET, "set", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SETBIT, "setbit", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SETEX, "setex", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SETNX, "setnx", 3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SETRANGE, "setrange", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SHUTDOWN, "shutdown", -1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SINTER, "sinter", -2, RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SINTERCARD, "sintercard", -3, RC_READ, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SINTERSTORE, "sinterstore", -3, RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SISMEMBER, "sismember", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SLAVEOF, "slaveof", 3, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SLOWLOG, "slowlog", -2, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SMEMBERS, "smembers", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SMISMEMBER, "smismember", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SMOVE, "smove", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SORT, "sort", -2, RC_WRITE, RESP_KEYS_STORE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SORT_RO, "sort_ro", -2, RC_READ, RESP_KEYS_STORE, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SPOP, "spop", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SPUBLISH, "spublish", 3, 0, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SRANDMEMBER, "srandmember", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SREM, "srem", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SSCAN, "sscan", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SSUBSCRIBE, "ssubscribe", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_STRLEN, "strlen", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SUBSCRIBE, "subscribe", -2, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SUBSTR, "substr", 4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SUNION, "sunion", -2, RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SUNIONSTORE, "sunionstore", -3, RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_SUNSUBSCRIBE, "sunsubscribe", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SWAPDB, "swapdb", 3, RC_UNSUPPORTED | RC_WRITE, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_SYNC, "sync", 1, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_TIME, "time", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_TOUCH, "touch", -2, RC_SPLIT | RC_READ, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_SUM) \
    X(RESP_CMD_TTL, "ttl", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_TYPE, "type", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_UNLINK, "unlink", -2, RC_SPLIT | RC_WRITE, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_SUM) \
    X(RESP_CMD_UNSUBSCRIBE, "unsubscribe", -1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_UNWATCH, "unwatch", 1, RC_PROXY, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_WAIT, "wait", 3, RC_UNSUPPORTED, RESP_KEYS_NONE, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_WATCH, "watch", -2, RC_PROXY, RESP_KEYS_SPAN, 1, -1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XACK, "xack", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XADD, "xadd", -5, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XAUTOCLAIM, "xautoclaim", -6, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XCLAIM, "xclaim", -6, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XDEL, "xdel", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XGROUP, "xgroup", -2, 0, RESP_KEYS_SUBCMD, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_XINFO, "xinfo", -2, 0, RESP_KEYS_SUBCMD, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_XLEN, "xlen", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XPENDING, "xpending", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XRANGE, "xrange", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XREAD, "xread", -4, RC_READ | RC_BLOCKING, RESP_KEYS_STREAMS, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_XREADGROUP, "xreadgroup", -7, RC_WRITE | RC_BLOCKING, RESP_KEYS_STREAMS, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_XREVRANGE, "xrevrange", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XSETID, "xsetid", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_XTRIM, "xtrim", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZADD, "zadd", -4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZCARD, "zcard", 2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZCOUNT, "zcount", 4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZDIFF, "zdiff", -3, RC_READ, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_ZDIFFSTORE, "zdiffstore", -4, RC_WRITE, RESP_KEYS_DEST_NUMKEYS, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZINCRBY, "zincrby", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZINTER, "zinter", -3, RC_READ, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_ZINTERCARD, "zintercard", -3, RC_READ, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_ZINTERSTORE, "zinterstore", -4, RC_WRITE, RESP_KEYS_DEST_NUMKEYS, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZLEXCOUNT, "zlexcount", 4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZMPOP, "zmpop", -4, RC_WRITE, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_ZMSCORE, "zmscore", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZPOPMAX, "zpopmax", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZPOPMIN, "zpopmin", -2, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANDMEMBER, "zrandmember", -2, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANGE, "zrange", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANGEBYLEX, "zrangebylex", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANGEBYSCORE, "zrangebyscore", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANGESTORE, "zrangestore", -5, RC_WRITE, RESP_KEYS_SPAN, 1, 2, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZRANK, "zrank", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREM, "zrem", -3, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREMRANGEBYLEX, "zremrangebylex", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREMRANGEBYRANK, "zremrangebyrank", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREMRANGEBYSCORE, "zremrangebyscore", 4, RC_WRITE, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREVRANGE, "zrevrange", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREVRANGEBYLEX, "zrevrangebylex", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREVRANGEBYSCORE, "zrevrangebyscore", -4, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZREVRANK, "zrevrank", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZSCAN, "zscan", -3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZSCORE, "zscore", 3, RC_READ, RESP_KEYS_SPAN, 1, 1, 1, RESP_MERGE_NONE) \
    X(RESP_CMD_ZUNION, "zunion", -3, RC_READ, RESP_KEYS_NUMKEYS1, 0, 0, 0, RESP_MERGE_NONE) \
    X(RESP_CMD_ZUNIONSTORE, "zunionstore", -4, RC_WRITE, RESP_KEYS_DEST_NUMKEYS, 1, 1, 1, RESP_MERGE_NONE)

#define RESP_CMD_ENUM(e, name, arity, flags, keys, first, last, step, merge) e,
enum resp_cmd_id { RESP_CMD_LIST(RESP_CMD_ENUM) RESP_CMD_COUNT };
#undef RESP_CMD_ENUM

struct resp_cmd {
    const char *name;
    uint8_t name_len;
    int8_t first, last, step;
    int16_t arity;
    uint16_t flags;              /* enum resp_cmd_flag */
    uint8_t keys;                /* enum resp_keys_kind */
    uint8_t merge;               /* enum resp_merge */
    enum resp_cmd_id id;
};

extern const struct resp_cmd resp_cmds[RESP_CMD_COUNT];

/* The command named name[0..len) (any case), or NULL. */
const struct resp_cmd *resp_cmd_lookup(const char *name, size_t len);
/* 1 when argc fits the command's arity. */
int resp_cmd_arity_ok(const struct resp_cmd *cmd, uint32_t argc);

/* Where a command's keys are: indexes of the arguments that are keys. */
struct resp_keys {
    uint32_t n;                  /* keys found */
    uint32_t first, last, step;  /* they are args first, first+step, ..., last */
    uint32_t extra;              /* a further key (a STORE / dest key), 0 = none */
    uint8_t blocking;            /* XREAD / XREADGROUP with BLOCK */
    uint8_t foreign;             /* reads keys named by patterns (SORT BY / GET) */
};

/* Finds the keys of a command with argc arguments at base + args[i].off.
 * Returns 0 (out filled; n may be 0 for a keyless form), -EINVAL when the
 * arguments do not say where the keys are (a bad numkeys, no STREAMS):
 * Redis itself rejects such a command, so the caller may send it to any
 * shard for Redis's own error, or -ENOKEY for a form that has no key but
 * may touch any key (EVAL with numkeys 0), which cannot be routed. */
int resp_cmd_keys(const struct resp_cmd *cmd, uint32_t argc, const char *base,
                  const struct resp_arg *args, struct resp_keys *out);

/* Case-insensitive comparison of an argument with a lower-case word. */
int resp_arg_is(const char *base, const struct resp_arg *a, const char *word);

#endif

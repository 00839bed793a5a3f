"""Differential test: the same random sequence of commands against weir
(3 shards) and against one plain redis-server must give the same replies.
Keys share a few hash tags so multi-key commands mostly stay on one shard;
the ones that cannot (cross-shard RENAME, SMOVE, ...) are compared only in
that weir refuses them with CROSSSHARD and changes nothing, and a CROSSSHARD
must name keys that really live on different shards (found by looking for
each key on the shards themselves)."""
import random

import pytest
import redis

from conftest import free_port, wait_until
from redis_helpers import RedisProc, Shards, redis_config

KEYS = ["{a}:s", "{a}:h", "{a}:l", "{a}:z", "{a}:x", "{b}:s", "{b}:l", "{b}:z", "c1", "c2", "c3",
        "n1", "n2", "{b}:x"]


def gen_op(rng):
    k = rng.choice(KEYS)
    k2 = rng.choice(KEYS)
    v = str(rng.randint(0, 20))
    m = str(rng.randint(0, 5))
    ops = [
        ["SET", k, v], ["GET", k], ["SETNX", k, v], ["GETSET", k, v], ["GETDEL", k],
        ["GETEX", k, "EX", "100"], ["APPEND", k, v], ["STRLEN", k], ["INCR", k],
        ["INCRBY", k, v], ["DECR", k], ["INCRBYFLOAT", k, "1.5"], ["GETRANGE", k, "0", "2"],
        ["SETRANGE", k, "1", v], ["MGET", k, k2, "c3"], ["MSET", k, v, k2, m],
        ["DEL", k, k2], ["EXISTS", k, k2, k], ["UNLINK", k], ["TOUCH", k, k2], ["TYPE", k],
        ["EXPIRE", k, "1000"], ["TTL", k], ["PERSIST", k], ["EXPIRETIME", k],
        ["HSET", k, "f" + m, v], ["HGET", k, "f" + m], ["HDEL", k, "f" + m], ["HLEN", k],
        ["HINCRBY", k, "f" + m, v], ["HGETALL", k], ["HKEYS", k], ["HEXISTS", k, "f1"],
        ["LPUSH", k, v], ["RPUSH", k, v, m], ["LPOP", k], ["RPOP", k, "2"], ["LRANGE", k, "0", "-1"],
        ["LLEN", k], ["LINDEX", k, "0"], ["LREM", k, "0", v], ["LPOS", k, v],
        ["SADD", k, v, m], ["SREM", k, v], ["SCARD", k], ["SISMEMBER", k, v], ["SMEMBERS", k],
        ["SMISMEMBER", k, v, m],
        ["ZADD", k, m, "m" + v], ["ZSCORE", k, "m" + v], ["ZINCRBY", k, "1", "m" + m],
        ["ZRANGE", k, "0", "-1", "WITHSCORES"], ["ZCARD", k], ["ZRANK", k, "m" + v],
        ["ZREM", k, "m" + v], ["ZCOUNT", k, "0", "3"], ["ZPOPMIN", k],
        ["PFADD", k, v], ["PFCOUNT", k], ["SETBIT", k, m, "1"], ["GETBIT", k, m], ["BITCOUNT", k],
        ["RENAME", k, k2], ["SMOVE", k, k2, v], ["SINTER", k, k2], ["SUNIONSTORE", k, k2, k],
        ["LMOVE", k, k2, "LEFT", "RIGHT"], ["COPY", k, k2, "REPLACE"], ["LCS", k, k2],
        ["MSETNX", k, v, k2, m], ["ZUNIONSTORE", k, "2", k, k2], ["OBJECT", "ENCODING", k],
        ["LMPOP", "1", k, "LEFT"], ["XADD", k, "*", "f", v], ["XLEN", k],
        ["NOSUCHCMD", k], ["GET"], ["SET", k], ["PING"], ["ECHO", v],
    ]
    return rng.choice(ops)


def norm(reply):
    if isinstance(reply, Exception):
        return ("error", str(reply))
    if isinstance(reply, list):
        return [norm(r) for r in reply]
    return reply


def run(c, op):
    """Raw replies: no redis-py response callbacks."""
    try:
        c.send_command(*op)
        return norm(c.read_response())
    except redis.ResponseError as e:
        return norm(e)


def placement(w, shards):
    """Which shard (index) each of KEYS lives on, seen at the shards: each key
    is written through weir and looked for on every primary."""
    shard_of = {}

    def spread():
        for k in KEYS:
            if run(w, ["SET", k, "probe"]) != b"OK":
                return False  # its shard is not up in weir yet
            where = [i for i, p in enumerate(shards.primaries) if p.client.exists(k)]
            assert len(where) == 1, (k, where)
            shard_of[k] = where[0]
            assert run(w, ["DEL", k]) == 1
        return len(set(shard_of.values())) > 1
    # the keys do not all share one shard -- once weir has every shard up: on a loaded
    # machine a shard's first connection can fail, and weir skips that shard until its
    # next health check passes (seen once on a fresh root)
    wait_until(spread, timeout=30, what="keys spread over the shards")
    # the tags keep their keys together
    assert len({shard_of[k] for k in KEYS if k.startswith("{a}")}) == 1
    return shard_of


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_single_redis(weir_factory, seed):
    shards = Shards(3)
    single = RedisProc(free_port())
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="distribution: consistent_hash\nhash: murmur"))
        w = redis.Connection(port=port, socket_timeout=10)
        r = redis.Connection(port=single.port, socket_timeout=10)
        shard_of = placement(w, shards)
        rng = random.Random(seed)
        crossed = 0
        for i in range(1500):
            op = gen_op(rng)
            if op[0] == "XADD":  # ids carry the time: compare the length only
                a, b = run(w, op), run(r, op)
                assert type(a) == type(b)
                continue
            before = None
            a = run(w, op)
            if isinstance(a, tuple) and a[1].startswith("CROSSSHARD"):
                # only keys that really live on different shards are refused
                keys = [x for x in op[1:] if x in KEYS]
                assert len({shard_of[k] for k in keys}) > 1, \
                    "op %d %r refused with CROSSSHARD, but its keys are all on shard %s" % (
                        i, op, [shard_of[k] for k in keys])
                crossed += 1
                # weir refused; undo nothing, but keep the reference in step
                continue
            b = run(r, op)
            # a second can pass between asking weir and asking the reference
            if op[0] in ("EXPIRETIME", "TTL") and isinstance(a, int) and a > 0:
                assert abs(a - b) <= 2, op
                continue
            assert a == b, "op %d %r: weir %r, redis %r" % (i, op, a, b)
        assert crossed > 0
        # the final state is the same
        for k in KEYS:
            assert run(w, ["TYPE", k]) == run(r, ["TYPE", k]), k
            if run(r, ["TYPE", k]) != b"stream":
                assert run(w, ["DUMP", k]) == run(r, ["DUMP", k]), k
    finally:
        shards.stop()
        single.stop()


def big_op(rng):
    """Split commands whose values (up to 100 KB) make them larger than weir's
    buffer, mixed with small commands on the same keys."""
    ks = [rng.choice(KEYS) for _ in range(rng.randint(1, 6))]
    val = lambda: bytes([rng.randint(97, 122)]) * rng.choice([0, 10, 20000, 40000, 100000])
    ops = [
        ["MSET"] + [x for k in ks for x in (k, val())], ["MGET"] + ks, ["DEL"] + ks,
        ["EXISTS"] + ks, ["TOUCH"] + ks, ["UNLINK"] + ks, ["GET", ks[0]], ["STRLEN", ks[0]],
        ["APPEND", ks[0], val()], ["MSET", ks[0]] + [val() for _ in range(len(ks))],
    ]
    return rng.choice(ops)


@pytest.mark.parametrize("seed", [1, 2])
def test_big_split_commands_match_single_redis(weir_factory, seed):
    shards = Shards(3)
    single = RedisProc(free_port())
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="distribution: consistent_hash\nhash: murmur"))
        w = redis.Connection(port=port, socket_timeout=10)
        r = redis.Connection(port=single.port, socket_timeout=10)
        rng = random.Random(seed)
        for i in range(300):
            op = big_op(rng)
            a, b = run(w, op), run(r, op)
            assert a == b, "op %d %s: weir %r, redis %r" % (
                i, [x[:20] for x in op], str(a)[:200], str(b)[:200])
        for k in KEYS:
            assert run(w, ["GET", k]) == run(r, ["GET", k]), k
    finally:
        shards.stop()
        single.stop()


# Commands weir checks itself or routes by their arguments: the same replies
# (errors included, in Redis's order of checks) as one Redis.
CHECKED = [
    ["SINTERCARD", "0", "a"], ["SINTERCARD", "x", "a"], ["SINTERCARD", "5", "a"],
    ["SINTERCARD", "-1", "a", "b"], ["SINTERCARD", "1", "{a}:s", "LIMIT", "x"],
    ["ZUNION", "0", "a"], ["ZUNIONSTORE", "d", "0", "a"], ["ZINTERCARD", "0", "a"],
    ["ZUNIONSTORE", "d", "3", "a"], ["EVAL", "return 1", "-1"], ["EVAL", "return 1", "5", "a"],
    ["EVAL", "return 1", "x"], ["LMPOP", "0", "a", "LEFT"], ["LMPOP", "1", "a", "MIDDLE"],
    ["BLMPOP", "0", "0", "a", "LEFT"], ["ZMPOP", "2", "a"], ["XREAD", "STREAMS", "a"],
    ["XREAD", "COUNT", "x", "STREAMS", "a", "0"], ["XREAD", "FOO", "STREAMS", "a", "0"],
    ["SORT", "{a}:l", "STORE", "{a}:x", "STORE", "{a}:z"], ["SCAN", "x"], ["SCAN", "0", "COUNT", "x"],
    ["SELECT", "x"], ["CLIENT", "NO-EVICT", "maybe"], ["CLIENT", "NO-EVICT", "on"],
    ["CLIENT", "KILL", "ID", "0"], ["CLIENT", "KILL", "ID", "x"], ["CLIENT", "KILL", "ID", "999"],
    ["CLIENT", "KILL", "1.2.3.4:5"], ["CLIENT", "KILL", "foo", "bar"], ["CLIENT", "KILL", "a", "b", "c"],
    ["CLIENT", "KILL", "SKIPME", "maybe"], ["CLIENT", "KILL", "USER", "nobody"],
    ["CLIENT", "KILL", "TYPE", "foo"], ["CLIENT", "KILL", "TYPE", "master"],
    ["CLIENT", "KILL", "ID", "1", "TYPE", "normal", "USER", "nobody"], ["CLIENT", "KILL"],
    ["CLIENT", "UNBLOCK", "5", "foo"], ["CLIENT", "UNBLOCK", "abc"], ["CLIENT", "UNBLOCK", "0"],
    ["CLIENT", "UNBLOCK", "1", "timeout", "x"], ["CLIENT", "UNBLOCK"],
    ["CLIENT", "LIST", "TYPE", "foo"], ["CLIENT", "LIST", "ID", "abc"], ["CLIENT", "LIST", "ID", "999"],
    ["CLIENT", "LIST", "TYPE"], ["CLIENT", "LIST", "TYPE", "normal", "x"], ["CLIENT", "LIST", "TYPE", "master"],
    ["CLIENT", "REPLY", "foo"], ["CLIENT", "REPLY", "on", "x"], ["CLIENT", "FOO"], ["CLIENT", "GETNAME", "x"],
    ["CLIENT", "SETNAME", "a b"], ["CLIENT", "SETNAME", "x"], ["CLIENT", "GETNAME"], ["CLIENT", "INFO", "x"],
    ["CLIENT", "ID", "x"], ["CLIENT", "NO-EVICT"], ["CONFIG", "GET"], ["CONFIG", "FOO"],
    ["CONFIG", "GET", "maxmemory-policy"], ["CONFIG", "GET", "*max-*-entries*"],
    ["CONFIG", "GET", "hz", "nosuch"], ["CONFIG", "SET", "a"],
]


def test_checked_commands_match_single_redis(weir_factory):
    shards = Shards(3)
    single = RedisProc(free_port())
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="distribution: consistent_hash\nhash: murmur"))
        w = redis.Connection(port=port, socket_timeout=10)
        r = redis.Connection(port=single.port, socket_timeout=10)
        for op in CHECKED:
            a, b = run(w, op), run(r, op)
            if op[:2] == ["CONFIG", "SET"] and isinstance(a, tuple):
                # commands.config_set is off: weir refuses SET as an unknown subcommand
                assert a == b or a[1].startswith("unknown subcommand 'SET'"), op
                continue
            if op[:2] == ["CONFIG", "GET"] and isinstance(a, list):  # Redis's order is a dict's
                a, b = dict(zip(a[::2], a[1::2])), dict(zip(b[::2], b[1::2]))
            assert a == b, "%r: weir %r, redis %r" % (op, a, b)
    finally:
        shards.stop()
        single.stop()

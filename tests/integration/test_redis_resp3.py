"""RESP3 end to end: HELLO 3 (with AUTH and SETNAME) switches a client to
RESP3, and the replies of a mixed command set (forwarded, split and merged,
answered by weir, blocking, transactions, big replies) are byte for byte
those of one Redis 7 in RESP3; a RESP2 client beside it still gets RESP2."""
import re
import socket

import pytest

from conftest import free_port
from redis_helpers import RedisProc, Shards, redis_config
from test_redis_split_stream import cmd


def skip_reply(buf, pos):
    """Index right after the RESP2/RESP3 reply at buf[pos], None if incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    t, head = buf[pos:pos + 1], buf[pos + 1:end]
    if t in b"+-:_#,(":
        return end + 2
    n = int(head)
    if t in b"$!=":
        if n < 0:
            return end + 2
        return end + 2 + n + 2 if len(buf) >= end + 2 + n + 2 else None
    count = max(n, 0) * (2 if t in b"%|" else 1) + (1 if t == b"|" else 0)
    pos = end + 2
    for _ in range(count):
        pos = skip_reply(buf, pos)
        if pos is None:
            return None
    return pos


class Raw:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def call(self, *args):
        self.s.sendall(cmd(*args))
        while True:
            end = skip_reply(self.buf, 0) if self.buf else None
            if end is not None:
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            b = self.s.recv(1 << 20)
            assert b, self.buf
            self.buf += b

    def close(self):
        self.s.close()


@pytest.fixture(scope="module")
def env():
    shards = Shards(3)
    single = RedisProc(free_port())
    single.client.config_set("requirepass", "pw")
    yield shards, single
    shards.stop()
    single.stop()


COMMANDS = [
    ["SET", "k", "v"], ["GET", "k"], ["GET", "nokey"], ["HSET", "h", "a", "1", "b", "2"],
    ["HGETALL", "h"], ["HGETALL", "nokey"], ["SADD", "s", "x"], ["SMEMBERS", "s"],
    ["SISMEMBER", "s", "x"], ["SMISMEMBER", "s", "x", "y"], ["ZADD", "z", "1.5", "m"],
    ["ZSCORE", "z", "m"], ["ZSCORE", "z", "nope"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
    ["ZPOPMIN", "z"], ["INCRBYFLOAT", "f", "1.5"], ["MSET", "a1", "1", "b2", "2", "c3", "3"],
    ["MGET", "a1", "b2", "nokey", "c3"], ["EXISTS", "a1", "b2", "nokey"], ["DEL", "a1", "c3"],
    ["TYPE", "k"], ["TTL", "k"], ["LPUSH", "l", "a", "b"], ["LRANGE", "l", "0", "-1"],
    ["LPOS", "l", "a"], ["LPOP", "nolist"], ["XADD", "st", "1-1", "f", "v"],
    ["XREAD", "COUNT", "1", "STREAMS", "st", "0"], ["XRANGE", "st", "-", "+"],
    ["BLPOP", "nolist", "0.01"], ["BZPOPMIN", "nozset", "0.01"], ["ECHO", "hi"], ["PING"],
    ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "other"], ["CLIENT", "GETNAME"],
    ["CONFIG", "GET", "maxmemory-policy"], ["COMMAND", "INFO", "nosuchcmd"],
    ["OBJECT", "ENCODING", "k"], ["MULTI"], ["SET", "{t}a", "1"], ["INCR", "{t}a"],
    ["HGETALL", "{t}h"], ["EXEC"], ["SET", "big", "x" * 100000], ["GET", "big"],
    ["HSET", "bigh", "f", "y" * 70000], ["HGETALL", "bigh"], ["NOSUCH"], ["GET"],
]


def test_resp3_replies_match_redis(env, weir_factory):
    shards, single = env
    for p in shards.primaries:
        p.client.flushall()
    port = free_port()
    weir_factory(redis_config(port, shards, extra="password: pw\ndistribution: consistent_hash\n"
                              "hash: murmur"))
    w, r = Raw(port), Raw(single.port)
    try:
        hw = w.call("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me")
        hr = r.call("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me")
        strip_id = lambda b: re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"", b)
        assert strip_id(hw) == strip_id(hr) and hw.startswith(b"%7\r\n")
        for op in COMMANDS:
            a, b = w.call(*op), r.call(*op)
            assert a == b, "%r: weir %r, redis %r" % (op, a[:200], b[:200])
        # text replies are verbatim strings in RESP3
        assert w.call("INFO", "server").startswith(b"=")
        assert w.call("CLIENT", "INFO").startswith(b"=")
        # back to RESP2 on the same connection
        assert w.call("HELLO", "2").startswith(b"*14\r\n")
        r.call("HELLO", "2")
        assert w.call("HGETALL", "h") == r.call("HGETALL", "h") == \
            b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    finally:
        w.close()
        r.close()


def test_resp2_and_resp3_clients_side_by_side(env, weir_factory):
    shards, single = env
    port = free_port()
    weir_factory(redis_config(port, shards, extra="distribution: consistent_hash\nhash: murmur"))
    two, three = Raw(port), Raw(port)
    try:
        assert three.call("HELLO", "3").startswith(b"%7\r\n")
        assert two.call("HSET", "mix", "a", "1") in (b":1\r\n", b":0\r\n")
        for _ in range(3):
            assert three.call("HGETALL", "mix") == b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"
            assert two.call("HGETALL", "mix") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
            assert three.call("GET", "nokey") == b"_\r\n"
            assert two.call("GET", "nokey") == b"$-1\r\n"
    finally:
        two.close()
        three.close()

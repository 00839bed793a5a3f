"""Pub/Sub through weir: channels on the shard their name hashes to, patterns
on every shard, sharded channels (SSUBSCRIBE / SPUBLISH); messages and
confirmations as one Redis sends them (compared with a real redis-server),
RESP2's subscribed context and RESP3 pushes beside ordinary replies."""
import socket

import pytest

from conftest import free_port
from redis_helpers import RedisProc, Shards, redis_config
from test_redis_resp3 import skip_reply
from test_redis_split_stream import cmd


class Raw:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *args):
        self.s.sendall(cmd(*args))

    def read(self, n=1):
        out = []
        while len(out) < n:
            end = skip_reply(self.buf, 0) if self.buf else None
            if end is not None:
                out.append(self.buf[:end])
                self.buf = self.buf[end:]
                continue
            b = self.s.recv(1 << 20)
            assert b, (self.buf, out)
            self.buf += b
        return out

    def call(self, *args):
        self.send(*args)
        return self.read()[0]

    def closed(self):
        try:
            return self.s.recv(100) == b""
        except OSError:
            return True

    def close(self):
        self.s.close()


@pytest.fixture(scope="module")
def env():
    shards = Shards(3)
    single = RedisProc(free_port())
    yield shards, single
    shards.stop()
    single.stop()


@pytest.fixture
def port(env, weir_factory):
    shards, single = env
    p = free_port()
    weir_factory(redis_config(p, shards, extra="distribution: consistent_hash\nhash: murmur"))
    return p


CHANNELS = ["news", "sport", "weather", "music", "tv"]


def parts(reply):
    """[kind, name, count-or-payload] of a 3-element pub/sub array."""
    lines = reply.split(b"\r\n")
    return [lines[2], lines[4], lines[5] if lines[5].startswith(b":") else lines[6]]


def test_channels_patterns_and_context_as_redis(env, port):
    shards, single = env
    ws, rs = Raw(port), Raw(single.port)
    wp, rp = Raw(port), Raw(single.port)
    try:
        for sub in (ws, rs):
            sub.send("SUBSCRIBE", *CHANNELS)
        w, r = ws.read(len(CHANNELS)), rs.read(len(CHANNELS))
        # channels on different shards may confirm in another order; the counts rise as Redis's
        assert sorted(parts(x)[1] for x in w) == sorted(parts(x)[1] for x in r)
        assert [parts(x)[2] for x in w] == [parts(x)[2] for x in r] == \
            [b":%d" % i for i in range(1, 6)]
        # the channels are spread over the shards
        lists = [set(p.client.pubsub_channels()) for p in shards.primaries]
        assert sum(len(l) for l in lists) == 5 and sum(1 for l in lists if l) > 1
        for sub in (ws, rs):
            sub.send("PSUBSCRIBE", "we*")
        assert ws.read() == rs.read()  # once, not once per shard
        for ch in CHANNELS + ["west"]:
            assert wp.call("PUBLISH", ch, "hello " + ch) == rp.call("PUBLISH", ch, "hello " + ch)
            n = 2 if ch.startswith("we") and ch in CHANNELS else 1
            assert ws.read(n) == rs.read(n), ch
        # RESP2 context: only subscriptions and PING
        for args in (["GET", "k"], ["PING"], ["PING", "hi"], ["SUBSCRIBE", "news"]):
            ws.send(*args)
            rs.send(*args)
            assert ws.read() == rs.read(), args
        assert wp.call("PUBSUB", "NUMSUB", "news", "tv", "none") == \
            rp.call("PUBSUB", "NUMSUB", "news", "tv", "none")
        assert wp.call("PUBSUB", "NUMPAT") == rp.call("PUBSUB", "NUMPAT")
        w, r = wp.call("PUBSUB", "CHANNELS"), rp.call("PUBSUB", "CHANNELS")
        assert sorted(w.split(b"\r\n")) == sorted(r.split(b"\r\n"))
        # UNSUBSCRIBE from all, then PUNSUBSCRIBE: counts down to 0, context left
        for sub in (ws, rs):
            sub.send("UNSUBSCRIBE")
        w, r = ws.read(len(CHANNELS)), rs.read(len(CHANNELS))
        assert sorted(parts(x)[1] for x in w) == sorted(parts(x)[1] for x in r)
        assert [parts(x)[2] for x in w] == [parts(x)[2] for x in r]
        for args in (["PUNSUBSCRIBE"], ["UNSUBSCRIBE"], ["GET", "nokey"]):
            ws.send(*args)
            rs.send(*args)
            assert ws.read() == rs.read(), args
    finally:
        for c in (ws, rs, wp, rp):
            c.close()


def test_sharded_channels(env, port):
    shards, single = env
    ws, rs, wp, rp = Raw(port), Raw(single.port), Raw(port), Raw(single.port)
    try:
        for sub in (ws, rs):
            sub.send("SSUBSCRIBE", "orders")
        assert ws.read() == rs.read()
        assert wp.call("SPUBLISH", "orders", "o1") == rp.call("SPUBLISH", "orders", "o1") == b":1\r\n"
        assert ws.read() == rs.read() == [b"*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n"]
        assert wp.call("PUBSUB", "SHARDCHANNELS") == rp.call("PUBSUB", "SHARDCHANNELS")
        for sub in (ws, rs):
            sub.send("SUNSUBSCRIBE", "orders")
        assert ws.read() == rs.read()
    finally:
        for c in (ws, rs, wp, rp):
            c.close()


def test_resp3_pushes_beside_replies(env, port):
    ws, rs, wp = Raw(port), Raw(env[1].port), Raw(port)
    try:
        for c in (ws, rs):
            assert c.call("HELLO", "3").startswith(b"%7")
            c.send("SUBSCRIBE", "r3")
        assert ws.read() == rs.read() == [b">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n"]
        # commands still work while subscribed
        assert ws.call("SET", "k3", "v") == b"+OK\r\n"
        assert ws.call("GET", "k3") == b"$1\r\nv\r\n"
        assert wp.call("PUBLISH", "r3", "x") == b":1\r\n"
        assert ws.read() == [b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$1\r\nx\r\n"]
        assert ws.call("PING") == b"+PONG\r\n"
    finally:
        for c in (ws, rs, wp):
            c.close()


def test_big_messages_and_a_lost_shard(env, weir_factory):
    shards = Shards(2)
    try:
        p = free_port()
        weir_factory(redis_config(p, shards, extra="distribution: hash\nhash: crc32a"))
        sub, pub = Raw(p), Raw(p)
        sub.send("SUBSCRIBE", "a", "b", "c", "d")
        sub.read(4)
        big = b"z" * (3 << 20)
        for ch in ("a", "b", "c", "d"):
            assert pub.call("PUBLISH", ch, big) == b":1\r\n"
            assert sub.read() == [b"*3\r\n$7\r\nmessage\r\n$1\r\n%s\r\n$%d\r\n%s\r\n" % (
                ch.encode(), len(big), big)]
        shards.primaries[0].stop()  # its subscriptions are gone: the client is closed
        assert sub.closed()
        pub.close()
    finally:
        shards.stop()

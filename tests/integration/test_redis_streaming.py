"""Commands larger than weir's read buffer: streamed to their shard as they
arrive (SET of 8 MB values), with back-pressure; pipelines mixing big and
small commands keep their order; what cannot stream is refused (and the
connection serves on). Split commands: test_redis_split_stream.py."""
import socket
import zlib

import pytest
import redis

from conftest import free_port
from redis_helpers import Shards, raw_exchange, redis_config

MB = 1 << 20


@pytest.fixture(scope="module")
def shards2():
    s = Shards(2)
    yield s
    s.stop()


@pytest.fixture
def proxy2(shards2, weir_factory):
    shards2.flush()
    port = free_port()
    weir_factory(redis_config(port, shards2, extra="distribution: hash\nhash: crc32a\n"
                              "limits: { bulk: 32m }"))
    c = redis.Redis(port=port, socket_timeout=20)
    yield port, c
    c.close()


def value(n, seed):
    block = bytes((seed + i) % 251 for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


def test_set_get_8mb_values(shards2, proxy2):
    port, c = proxy2
    for i in range(3):
        k = "big:%d" % i
        v = value(8 * MB + i, i)
        assert c.set(k, v) is True
        assert c.get(k) == v
        shard = zlib.crc32(k.encode()) % 2
        assert shards2.primaries[shard].client.strlen(k) == len(v)
    assert c.append("big:0", b"tail") == 8 * MB + 4
    assert c.getrange("big:0", 8 * MB, -1) == b"tail"


def test_pipeline_mixing_big_and_small_commands_keeps_order(proxy2):
    port, c = proxy2
    big = value(3 * MB, 7)
    p = c.pipeline(transaction=False)
    for i in range(4):
        p.set("k", "small%d" % i)
        p.set("k", big + b"%d" % i)          # overwrites the small value
        p.get("k")
        p.incr("n")
        p.set("s:%d" % i, "x" * 100)
        p.hset("h", "f%d" % i, big[:20000])  # streams too (key first)
        p.get("s:%d" % i)
    out = p.execute()
    for i in range(4):
        r = out[7 * i:7 * i + 7]
        assert r[0] is True and r[1] is True
        assert r[2] == big + b"%d" % i
        assert r[3] == i + 1
        assert r[4] is True and r[5] == 1 and r[6] == b"x" * 100
    assert c.hlen("h") == 4


def test_slow_client_streams_with_backpressure(shards2, proxy2):
    """A 6 MB SET sent in pieces; another client works meanwhile."""
    port, c = proxy2
    v = value(6 * MB, 3)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$%d\r\n" % len(v))
    for off in range(0, len(v), 512 * 1024):
        s.sendall(v[off:off + 512 * 1024])
        assert c.ping() is True
    s.sendall(b"\r\n*2\r\n$3\r\nGET\r\n$4\r\nslow\r\n")
    want = b"+OK\r\n$%d\r\n" % len(v) + v + b"\r\n"
    got = b""
    while len(got) < len(want):
        b = s.recv(1 << 20)
        assert b
        got += b
    s.close()
    assert got == want


def test_what_cannot_stream_is_refused(proxy2):
    port, c = proxy2
    v = b"x" * (100 * 1024)
    # the key comes after the big argument: refused once all of it is read
    # (32 KB header_size + 1 KB buffer), and the connection serves on
    head = b"*4\r\n$4\r\nEVAL\r\n$40000\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head + b"x" * 40000 + b"\r\n$1\r\n1\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n")
    out = b""
    while not out.endswith(b"+PONG\r\n"):
        b = s.recv(4096)
        assert b, out
        out += b
    s.close()
    assert out.startswith(b"-ERR weir: command larger than 33792 bytes"), out[:100]
    # over limits.bulk: a protocol error, nothing sent
    out = raw_exchange(port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (33 * MB), timeout=3)
    assert out == b"-ERR Protocol error: invalid bulk length\r\n"
    assert c.ping() is True


def test_client_gone_mid_stream_leaves_proxy_healthy(shards2, proxy2):
    port, c = proxy2
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\ngone\r\n$%d\r\n" % (4 * MB) + b"y" * MB)
        s.close()
    assert c.set("after", "1") is True
    assert c.get("gone") is None
    # a malformed end of a streamed command: error, closed, the shard not left waiting
    out = raw_exchange(port, b"*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$%d\r\n" % (64 * 1024) +
                       b"z" * (64 * 1024) + b"XX", timeout=3)
    assert out == b"-ERR Protocol error: expected CRLF\r\n"
    assert c.get("bad") is None
    assert c.set("bad", "ok") is True


def test_streamed_command_to_a_hung_shard_times_out(weir_factory):
    """A shard that accepts a streamed command and never answers: the client
    gets an error after timeouts.response instead of waiting forever."""
    import threading
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.2)
    stop = threading.Event()

    def serve(conn):
        conn.settimeout(0.2)
        while not stop.is_set():
            try:
                data = conn.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            if b"PING" in data.upper():  # health checks pass; nothing else is answered
                conn.sendall(b"+PONG\r\n")

    def accept():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        port = free_port()
        shard = "127.0.0.1:%d" % lsock.getsockname()[1]
        weir_factory("workers: 1\nlog: { level: info }\nlisteners:\n  - name: cache\n"
                     "    listen: 127.0.0.1:%d\n    protocol: redis\n    redis_cluster: c\n"
                     "redis_clusters:\n  - name: c\n    timeouts: { response: 500ms }\n"
                     "    limits: { bulk: 8m }\n    shards:\n      - { primary: %s }\n"
                     % (port, shard))
        big = b"v" * (2 * MB)
        cmd = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(big), big)
        reply = raw_exchange(port, cmd, timeout=10.0)
        assert reply.startswith(b"-"), reply[:200]
    finally:
        stop.set()
        t.join(5)
        lsock.close()

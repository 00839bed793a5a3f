"""Redis proxy metrics on /metrics, parsed with the real Prometheus parser
and checked exactly: weir_redis_commands_total by command_class and result
after known traffic spread over several workers (an error reply of the
shard, weir's own error for an unknown command), the command-time
histogram's count over the same commands, and a dead shard: its
weir_redis_server_up goes to 0, its commands count as backend_error and
its broken connection in weir_redis_backend_errors_total."""
import socket

from prometheus_client.parser import text_string_to_metric_families
import requests

from conftest import free_port, wait_port, wait_until
from redis_helpers import Shards, redis_config


def samples(aport):
    r = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=10)
    assert r.status_code == 200, r.text
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(ss, name, **labels):
    return ss.get((name, frozenset(labels.items())))


def commands(ss, cls, result, listener="cache"):
    return value(ss, "weir_redis_commands_total", listener=listener, command_class=cls,
                 result=result)


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Client:
    """A raw RESP connection (no handshake commands of a client library)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-", b":"):
            return line
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise AssertionError("unexpected reply %r" % line)

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self._reply()

    def close(self):
        self.sock.close()


def admin_config(port, aport, shards, **kw):
    return redis_config(port, shards, **kw) + "admin: { listen: 127.0.0.1:%d }\n" % aport


def test_command_counts_exact_over_workers(weir_factory):
    shards = Shards(3)
    try:
        port, aport = free_port(), free_port()
        weir_factory(admin_config(port, aport, shards, workers=3), port=port)
        wait_port(aport)
        n = 12
        clients = [Client(port) for _ in range(n)]
        for i, c in enumerate(clients):
            assert c.call("SET", "k%d" % i, "v") == b"+OK"          # write ok
            assert c.call("SET", "s%d" % i, "abc") == b"+OK"        # write ok
            assert c.call("GET", "k%d" % i) == b"v"                 # read ok
            assert c.call("GET", "missing%d" % i) is None           # read ok
            assert c.call("MGET", "k%d" % i, "s%d" % i, "x") == [b"v", b"abc", None]  # multi_key
            assert c.call("PING") == b"+PONG"                       # admin ok
            assert c.call("INCR", "s%d" % i).startswith(b"-ERR")    # the shard's error: write error
            assert c.call("NOSUCHCMD", "a").startswith(b"-ERR unknown command")  # other error
            # a pipeline of three reads in one write
            c.sock.sendall(resp("GET", "k%d" % i) * 3)
            assert [c._reply() for _ in range(3)] == [b"v"] * 3
        ss = samples(aport)
        assert commands(ss, "write", "ok") == 2 * n
        assert commands(ss, "write", "error") == n
        assert commands(ss, "read", "ok") == 5 * n
        assert commands(ss, "read", "error") == 0
        assert commands(ss, "multi_key", "ok") == n
        assert commands(ss, "admin", "ok") == n
        assert commands(ss, "other", "error") == n
        assert commands(ss, "other", "ok") == 0
        for cls in ("read", "write", "multi_key", "blocking", "pubsub", "transaction", "admin",
                    "other"):
            assert commands(ss, cls, "backend_error") == 0, cls
        total = 11 * n
        assert value(ss, "weir_redis_command_seconds_count", listener="cache") == total
        assert value(ss, "weir_redis_command_seconds_bucket", listener="cache", le="+Inf") == total
        for i, p in enumerate(shards.primaries):
            shard = p.addr
            assert value(ss, "weir_redis_server_up", cluster="c", shard=shard, role="primary",
                         server=p.addr) == 1
            for kind in ("connect", "timeout", "closed", "protocol"):
                assert value(ss, "weir_redis_backend_errors_total", cluster="c", shard=shard,
                             kind=kind) == 0
        for c in clients:
            c.close()
    finally:
        shards.stop()


def test_dead_shard(weir_factory):
    shards = Shards(2)
    try:
        port, aport = free_port(), free_port()
        # keys "a..." on shard 0, the others on shard 1
        extra = ("health_check: { interval: 100ms, fall: 1 }\ndistribution: directory\n"
                 "directory:\n  map:\n    - { prefix: 'a', shard: 0 }\n  default: 1")
        weir_factory(admin_config(port, aport, shards, workers=1, extra=extra), port=port)
        wait_port(aport)
        c = Client(port)
        kept = ["a%d" % i for i in range(3)]
        lost = ["b%d" % i for i in range(5)]
        keys = kept + lost
        for k in keys:
            assert c.call("SET", k, "v") == b"+OK"
        dead = shards.primaries[1]
        assert [shards.holder(k) for k in keys] == [[0]] * len(kept) + [[1]] * len(lost)
        dead.stop()
        wait_until(lambda: value(samples(aport), "weir_redis_server_up", cluster="c",
                                 shard=dead.addr, role="primary", server=dead.addr) == 0,
                   what="the dead shard's server_up 0")
        for k in lost:
            assert c.call("GET", k).startswith(b"-ERR weir: shard")
        for k in kept:
            assert c.call("GET", k) == b"v"
        ss = samples(aport)
        assert value(ss, "weir_redis_server_up", cluster="c", shard=shards.primaries[0].addr,
                     role="primary", server=shards.primaries[0].addr) == 1
        assert commands(ss, "read", "backend_error") == len(lost)
        assert commands(ss, "read", "ok") == len(kept)
        assert commands(ss, "write", "ok") == len(keys)
        # the one shared connection of the one worker to it was closed under it
        assert value(ss, "weir_redis_backend_errors_total", cluster="c", shard=dead.addr,
                     kind="closed") == 1
        assert value(ss, "weir_redis_backend_errors_total", cluster="c",
                     shard=shards.primaries[0].addr, kind="closed") == 0
        c.close()
    finally:
        shards.stop()

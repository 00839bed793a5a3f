"""weir's store client (src/store/) against a real redis-server and a real
3-node Redis Cluster, through build/<mode>/store_probe (tests/store/store_probe.c):
replies, pipelining, timeouts, cancellation, the server going away and
coming back, AUTH/SELECT, max_pending, slot routing, MOVED and ASK.

Every server is started on a free port in its own temporary directory and
killed (directory removed) by the fixture that started it."""
import os
import queue
import re
import subprocess
import threading
import time

import pytest

from conftest import IO_TIMEOUT, SANITIZER_MARKERS, WEIR_BIN, free_port, wait_until
from redis_helpers import Cluster, RedisServer

PROBE_BIN = os.environ.get("WEIR_STORE_PROBE",
                           os.path.join(os.path.dirname(WEIR_BIN), "store_probe"))

BASE_CONFIG = """\
log: { level: info }
listeners: [{ name: web, listen: 127.0.0.1:1, routes: [{ cluster: app }] }]
clusters: [{ name: app, endpoints: [127.0.0.1:2] }]
stores:
"""


class Probe:
    """A store_probe process: write command lines, read numbered result lines."""

    def __init__(self, tmp_path, store_yaml, name="s"):
        self.path = os.path.join(str(tmp_path), "probe-%d.yaml" % free_port())
        with open(self.path, "w") as f:
            f.write(BASE_CONFIG + store_yaml)
        self.errpath = self.path + ".err"
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen([PROBE_BIN, self.path, name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     bufsize=1)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.n = 0
        assert self.line() == "READY"

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout=IO_TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("store_probe said nothing within %.0fs; stderr:\n%s"
                                 % (timeout, self.stderr()))
        assert line is not None, "store_probe exited; stderr:\n" + self.stderr()
        return line

    def send(self, *lines):
        """Writes the lines in one go (a pipeline); returns their numbers."""
        first = self.n + 1
        self.n += len(lines)
        self.proc.stdin.write("".join(l + "\n" for l in lines))
        self.proc.stdin.flush()
        return list(range(first, self.n + 1))

    def result(self, n):
        """The result line of command n, without its number."""
        line = self.line()
        prefix = "#%d " % n
        assert line.startswith(prefix), "expected result of #%d, got %r" % (n, line)
        return line[len(prefix):]

    def results(self, ns):
        """Results of commands ns, in whatever order they complete: {n: result}."""
        out = {}
        for _ in ns:
            m = re.match(r"#(\d+) (.*)", self.line())
            assert m and int(m.group(1)) in ns and int(m.group(1)) not in out, m
            out[int(m.group(1))] = m.group(2)
        return out

    def cmd(self, line):
        [n] = self.send(line)
        return self.result(n)

    def until(self, line, want, what):
        """Repeats `line` until its result starts with `want`; returns that result."""
        seen = []

        def attempt():
            r = self.cmd(line)
            seen.append(r)
            return r if r.startswith(want) else None
        try:
            return wait_until(attempt, interval=0.05, what=what)
        except AssertionError:
            raise AssertionError("%s; last results: %s" % (what, seen[-5:]))

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        """Ends stdin; the probe drains, frees the store and must exit 0 cleanly."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("store_probe did not exit at end of input")
        rest = []
        while True:
            line = self.lines.get(timeout=IO_TIMEOUT)
            if line is None:
                break
            rest.append(line)
        self.err.close()
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            assert marker not in err, err
        assert self.proc.returncode == 0, err
        return rest

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.err.closed:
            self.err.close()


@pytest.fixture
def servers():
    started = []

    def start(**kw):
        s = RedisServer(**kw)
        started.append(s)
        return s
    yield start
    for s in started:
        s.cleanup()


@pytest.fixture
def probes(tmp_path):
    started = []

    def start(store_yaml, name="s"):
        p = Probe(tmp_path, store_yaml, name)
        started.append(p)
        return p
    yield start
    for p in started:
        p.kill()


def single(port, extra=""):
    return "  - { name: s, redis: 127.0.0.1:%d%s }\n" % (port, extra)


# ---- one Redis ---------------------------------------------------------------


def test_replies_of_every_kind(servers, probes):
    r = servers()
    p = probes(single(r.port))
    assert p.cmd("SET k hello") == "OK +OK"
    assert p.cmd("GET k") == 'OK "hello"'
    assert p.cmd("INCR n") == "OK :1"
    assert p.cmd("INCR n") == "OK :2"
    assert p.cmd("GET missing") == "OK nil"
    assert p.cmd("RPUSH l a b") == "OK :2"
    assert p.cmd("LRANGE l 0 -1") == 'OK ["a", "b"]'
    assert p.cmd("INCR k") == "OK -ERR value is not an integer or out of range"
    assert p.cmd("!PING") == "OK +PONG"
    assert r.client().get("k") == b"hello"
    assert p.close() == []


def test_pipeline_keeps_order(servers, probes):
    r = servers()
    p = probes(single(r.port))
    ns = p.send(*["INCR counter"] * 500)
    for i, n in enumerate(ns):
        assert p.result(n) == "OK :%d" % (i + 1)
    assert r.client().get("counter") == b"500"
    p.close()


def test_command_timeout_then_works_again(servers, probes):
    r = servers()
    p = probes(single(r.port, ", timeouts: { command: 300ms }"))
    assert p.cmd("PING") == "OK +PONG"
    assert p.cmd("DEBUG SLEEP 2") == "TIMEOUT"
    # once the server is responsive again, so is the store (same or new connection)
    p.until("PING", "OK +PONG", "PING answered after the slow command")
    assert p.cmd("SET after yes") == "OK +OK"
    assert p.cmd("GET after") == 'OK "yes"'
    p.close()


def test_cancelled_command_is_never_called_back(servers, probes):
    r = servers()
    p = probes(single(r.port))
    assert p.cmd("PING") == "OK +PONG"  # connected from here on
    [n1, n2, n3] = p.send("~DEBUG SLEEP 0.2", "~SET cancelled 1", "GET cancelled")
    assert p.result(n1) == "CANCELLED"
    assert p.result(n2) == "CANCELLED"
    # once connected a cancelled command is already sent: Redis runs it, the
    # reply is dropped
    assert p.result(n3) == 'OK "1"'
    assert p.close() == []


def test_server_stopped_then_restarted(servers, probes):
    r = servers()
    # a long command timeout: a TIMEOUT would mean the failure was not noticed
    p = probes(single(r.port, ", timeouts: { command: 30s }, "
                              "reconnect: { base: 50ms, max: 200ms }"))
    assert p.cmd("SET k v") == "OK +OK"
    [slow] = p.send("DEBUG SLEEP 5")
    time.sleep(0.2)  # not a timing assertion: lets the slow command reach the server
    r.stop()
    assert p.result(slow) == "UNAVAILABLE"
    res = p.cmd("GET k")
    assert res in ("UNAVAILABLE", "UNAVAILABLE refused")
    p.until("GET k", "UNAVAILABLE refused", "commands refused while the server is down")
    r.start()
    p.until("PING", "OK +PONG", "the store reconnected")
    assert p.cmd("SET k2 v2") == "OK +OK"
    assert p.close() == []
    err = p.stderr()
    assert "store s: connection to 127.0.0.1:%d lost" % r.port in err
    assert "store s: connected to 127.0.0.1:%d" % r.port in err


def test_auth_and_database(servers, probes):
    r = servers(extra=["--requirepass", "s3cret"])
    p = probes(single(r.port, ", password: s3cret, database: 3"))
    assert p.cmd("SET k in-db-3") == "OK +OK"
    assert r.client(password="s3cret", db=3).get("k") == b"in-db-3"
    assert r.client(password="s3cret", db=0).get("k") is None
    p.close()


def test_acl_username(servers, probes):
    r = servers()
    r.client().execute_command("ACL", "SETUSER", "app", "on", ">apppass", "~*", "+@all")
    p = probes(single(r.port, ", username: app, password: apppass"))
    assert p.cmd("SET k v") == "OK +OK"
    assert p.cmd("ACL WHOAMI") == 'OK "app"'
    p.close()


def test_wrong_password_is_unavailable_and_logged(servers, probes):
    r = servers(extra=["--requirepass", "s3cret"])
    p = probes(single(r.port, ", password: nope, reconnect: { base: 50ms, max: 100ms }"))
    res = p.cmd("PING")
    assert res in ("UNAVAILABLE", "UNAVAILABLE refused")
    p.close()
    assert "refused the handshake" in p.stderr()


def test_max_pending_while_connecting(probes):
    # a server that accepts but never answers: AUTH keeps the link in its
    # handshake until timeouts.connect, and commands queue meanwhile
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    try:
        p = probes(single(port, ", password: x, max_pending: 2, timeouts: { connect: 500ms }, "
                                "reconnect: { base: 5s, max: 5s }"))
        # a cancelled queued command leaves the queue at once (its place is free)
        # and is never called back
        ns = p.send("SET a 1", "~SET b 2", "SET c 3", "SET d 4")
        assert p.results(ns) == {ns[0]: "UNAVAILABLE", ns[1]: "CANCELLED",
                                 ns[2]: "UNAVAILABLE", ns[3]: "UNAVAILABLE refused"}
        # the reconnect delay is running: refused at once
        assert p.cmd("PING") == "UNAVAILABLE refused"
        p.close()
        assert "cannot connect to 127.0.0.1:%d: handshake timed out" % port in p.stderr()
    finally:
        lsock.close()


def test_free_with_commands_in_flight(servers, probes):
    """At end of input the probe waits for what is in flight, then frees the
    store (ASan checks nothing leaks)."""
    r = servers()
    p = probes(single(r.port, ", timeouts: { command: 10s }"))
    ns = p.send("DEBUG SLEEP 0.3", *["INCR x"] * 50)
    rest = p.close()
    assert [l.split(" ")[0] for l in rest] == ["#%d" % n for n in ns]
    assert rest[-1] == "#%d OK :50" % ns[-1]


# ---- Redis Cluster -------------------------------------------------------------


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()


def test_cluster_keys_spread_over_all_nodes(cluster, probes):
    p = probes(cluster.seeds_yaml(), name="c")
    keys = ["key:%d" % i for i in range(60)]
    ns = p.send(*["SET %s value-%s" % (k, k) for k in keys])
    # a pipeline over three nodes: each node's replies in order, nodes interleaved
    assert p.results(ns) == {n: "OK +OK" for n in ns}
    for k in keys:
        assert p.cmd("GET %s" % k) == 'OK "value-%s"' % k
        assert cluster.owner(cluster.slot(k)).client().get(k) == ("value-%s" % k).encode()
    assert all(n.client().dbsize() > 0 for n in cluster.nodes)
    # hash tags keep keys together: a multi-key command on one slot works
    assert p.cmd("MSET {user1}.a 1 {user1}.b 2") == "OK +OK"
    assert p.cmd("MGET {user1}.a {user1}.b") == 'OK ["1", "2"]'
    assert p.cmd("!PING") == "OK +PONG"
    assert p.close() == []


def test_cluster_slot_migration_ask_then_moved(cluster, probes):
    p = probes(cluster.seeds_yaml(", timeouts: { command: 5s }"), name="c")
    key = "migrating-key"
    slot = cluster.slot(key)
    src = cluster.owner(slot)
    dst = next(n for n in cluster.nodes if n is not src)
    assert p.cmd("SET %s before" % key) == "OK +OK"
    assert p.cmd("GET %s" % key) == 'OK "before"'

    # migration in progress: the key already moved, the slot not yet -> ASK
    dst.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", cluster.ids[src.port])
    src.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", cluster.ids[dst.port])
    src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, key, 0, 5000)
    asks = cluster.errorstat(src, "ASK")
    assert p.cmd("GET %s" % key) == 'OK "before"'
    assert cluster.errorstat(src, "ASK") == asks + 1
    assert dst.client().info("commandstats")["cmdstat_asking"]["calls"] >= 1

    # migration done: every node learns the new owner -> MOVED, then direct
    for n in [dst, src] + [n for n in cluster.nodes if n is not src and n is not dst]:
        n.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", cluster.ids[dst.port])
    moved = cluster.errorstat(src, "MOVED")
    assert p.cmd("SET %s after" % key) == "OK +OK"
    # at least one MOVED (more if a node's gossip lagged while the map was re-read)
    moved_after = cluster.errorstat(src, "MOVED")
    assert moved_after >= moved + 1
    assert dst.client().get(key) == b"after"
    assert p.cmd("GET %s" % key) == 'OK "after"'
    assert cluster.errorstat(src, "MOVED") == moved_after  # the slot map followed: no more MOVED
    assert p.close() == []


def test_cluster_node_down_is_unavailable_others_work(cluster, probes):
    p = probes(cluster.seeds_yaml(", timeouts: { command: 30s }, "
                                  "reconnect: { base: 50ms, max: 200ms }"), name="c")
    keys = ["k%d" % i for i in range(30)]
    for k in keys:
        assert p.cmd("SET %s v" % k) == "OK +OK"
    down = cluster.nodes[0]
    down_keys = [k for k in keys if cluster.owner(cluster.slot(k)) is down]
    up_keys = [k for k in keys if k not in down_keys]
    assert down_keys and up_keys
    down.stop()
    p.until("GET %s" % down_keys[0], "UNAVAILABLE", "keys of the stopped node unavailable")
    for k in up_keys:
        assert p.cmd("GET %s" % k) == 'OK "v"'
    down.start()
    p.until("GET %s" % down_keys[0], "OK", "the node is back")
    p.close()

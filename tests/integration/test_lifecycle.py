"""Command line, config validation, reload (SIGHUP), graceful shutdown (SIGTERM)
and the access log."""
import collections
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (WEIR_BIN, RawClient, cluster_yaml, config, free_port, get, wait_until)


def run(*args, timeout=30):
    return subprocess.run([WEIR_BIN, *args], capture_output=True, text=True, timeout=timeout)


GOOD = """workers: 1
listeners:
  - name: web
    listen: 127.0.0.1:%(port)d
    limits: { headers: 50, body: 8m }
    timeouts: { client_header: 5s, client_idle: 30s }
    routes:
      - match: { path_prefix: /api/, method: [GET, POST] }
        cluster: api
      - cluster: app
clusters:
  - name: app
    endpoints: [127.0.0.1:9001]
  - name: api
    balance: consistent_hash
    hash_key: header:X-User
    timeouts: { connect: 1s, response: 5s }
    endpoints:
      - 127.0.0.1:9002
      - { address: 127.0.0.1:9003, weight: 2 }
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_check_good_config(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD % {"port": free_port()})
    r = run("check", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_demo_config_is_valid():
    """`make run` starts weir on conf/demo.yaml: it must stay valid as keys change."""
    demo = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "demo.yaml")
    r = run("check", "-c", demo)
    assert r.returncode == 0, r.stderr
    assert "configuration is valid (2 listener(s), 2 cluster(s))" in r.stdout


def test_version_and_help():
    r = run("version")
    assert r.returncode == 0 and re.match(r"weir \d+\.\d+", r.stdout)
    r = run("--help")
    assert r.returncode == 0 and "usage" in r.stdout


@pytest.mark.parametrize("args", [["frob"], ["check"], ["check", "-c"], ["-x"]])
def test_bad_command_line(args):
    r = run(*args)
    assert r.returncode == 2
    assert "usage" in r.stderr


def _bad(good, old, new):
    assert old in good
    return good.replace(old, new, 1)


BAD = {
    # name: (config text, 1-based line the error must point at)
    "unknown_key": (_bad(GOOD, "    routes:\n", "    bogus: 1\n    routes:\n"), 7),
    "wrong_type": (_bad(GOOD, "headers: 50", "headers: lots"), 5),
    "bad_listen_address": (_bad(GOOD, "listen: 127.0.0.1:%(port)d", "listen: 127.0.0.1:99999"), 4),
    "bad_endpoint_address": (_bad(GOOD, "127.0.0.1:9002\n", "not-an-address\n"), 19),
    "missing_cluster": (_bad(GOOD, "        cluster: api\n", "        cluster: nope\n"), 9),
    "duplicate_cluster": (_bad(GOOD, "  - name: api\n", "  - name: app\n"), 14),
    "bad_balance": (_bad(GOOD, "balance: consistent_hash", "balance: fastest"), 15),
    "bad_duration": (_bad(GOOD, "client_header: 5s", "client_header: soon"), 6),
    "bad_weight": (_bad(GOOD, "weight: 2", "weight: -2"), 20),
    "yaml_syntax": (_bad(GOOD, "method: [GET, POST] }", "method: [GET, POST }"), 8),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_check_bad_config(tmp_path, name):
    text, line = BAD[name]
    path = write(tmp_path, "bad.yaml", text % {"port": free_port()})
    r = run("check", "-c", path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    m = re.search(re.escape(path) + r":(\d+):(\d+): \S", r.stderr)
    assert m, r.stderr
    if name != "yaml_syntax":  # libyaml may report the line after the error
        assert int(m.group(1)) == line, r.stderr
    else:
        assert int(m.group(1)) in (line, line + 1), r.stderr
    assert int(m.group(2)) >= 1


def test_run_with_bad_config_exits_2(tmp_path):
    text, _ = BAD["missing_cluster"]
    path = write(tmp_path, "bad.yaml", text % {"port": free_port()})
    r = run("-c", path)
    assert r.returncode == 2
    assert path + ":9:" in r.stderr


def test_run_with_port_in_use_exits_1(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        path = write(tmp_path, "busy.yaml", GOOD % {"port": port})
        r = run("-c", path)
        assert r.returncode == 1, r.stderr
        # the listener's map is at line 3, column 5 of the file
        assert "%s:3:5: listener web: cannot listen on 127.0.0.1:%d: " % (path, port) in r.stderr
    finally:
        s.close()


def test_second_weir_on_the_same_ports_exits_1(weir_factory, tmp_path, demo_backend):
    """Each worker's socket has SO_REUSEPORT, which would let a second weir
    (the same user) share the port and take part of its connections."""
    port, aport = free_port(), free_port()
    text = (GOOD % {"port": port}).replace("127.0.0.1:9001", demo_backend("one").addr)
    text += "admin: { listen: 127.0.0.1:%d }\n" % aport
    w = weir_factory(text, port)
    path = write(tmp_path, "twice.yaml", text)
    r = run("-c", path)
    assert r.returncode == 1, r.stderr
    assert "listener web: cannot listen on 127.0.0.1:%d: Address already in use" % port in r.stderr
    # and the admin listener alone
    other = write(tmp_path, "admin.yaml", (GOOD % {"port": free_port()}) +
                  "admin: { listen: 127.0.0.1:%d }\n" % aport)
    r = run("-c", other)
    assert r.returncode == 1, r.stderr
    assert "admin: cannot listen on 127.0.0.1:%d: Address already in use" % aport in r.stderr
    assert w.proc.poll() is None
    for _ in range(20):  # every connection still reaches the first
        assert get(port).status == 200


def test_missing_file(tmp_path):
    r = run("check", "-c", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "nope.yaml" in r.stderr


# ---- reload ---------------------------------------------------------------------


def test_reload_switches_backend(weir_factory, demo_backend):
    a, b = demo_backend("a"), demo_backend("b")
    port = free_port()
    w = weir_factory(config(port, [a.addr]))
    keep = RawClient(w.port)
    keep.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
    assert keep.read_response().header("X-Backend") == "a"
    w.reload(config(port, [b.addr]))
    wait_until(lambda: get(w.port).header("X-Backend") == "b", what="new backend after reload")
    assert {get(w.port).header("X-Backend") for _ in range(10)} == {"b"}
    # a keep-alive connection opened before the reload moves to the new
    # configuration at its next request
    keep.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
    assert keep.read_response().header("X-Backend") == "b"
    keep.close()


def test_reload_adds_route(weir_factory, demo_backend):
    a, b = demo_backend("a"), demo_backend("b")
    port = free_port()
    clusters = [cluster_yaml("app", [a.addr]), cluster_yaml("other", [b.addr])]
    w = weir_factory(config(port, clusters=clusters))
    assert get(w.port, "/x/health").header("X-Backend") == "a"
    w.reload(config(port, clusters=clusters,
                    routes="- match: { path_prefix: /x/ }\n  cluster: other\n- cluster: app"))
    wait_until(lambda: get(w.port, "/x/health").header("X-Backend") == "b", what="route after reload")
    assert get(w.port, "/health").header("X-Backend") == "a"


@pytest.mark.parametrize("broken", [
    "workers: 1\nlisteners: [\n",
    "workers: 1\nlisteners:\n  - name: web\n    listen: 127.0.0.1:1\n    routes:\n      - cluster: nope\n"
    "clusters:\n  - name: app\n    endpoints: [127.0.0.1:1]\n",
])
def test_reload_invalid_config_keeps_serving(weir_factory, demo_backend, broken):
    a = demo_backend("a")
    port = free_port()
    w = weir_factory(config(port, [a.addr]))
    w.reload(broken, expect_ok=False)
    assert "reload rejected" in w.errlog()
    assert re.search(r"\.yaml:\d+:\d+: ", w.errlog())
    for _ in range(5):
        r = get(w.port)
        assert r.status == 200 and r.header("X-Backend") == "a"
    # and a later good reload still works
    b = demo_backend("b")
    w.reload(config(port, [b.addr]))
    wait_until(lambda: get(w.port).header("X-Backend") == "b", what="good reload after a bad one")


def test_reload_to_a_port_in_use_is_rejected(weir_factory, demo_backend):
    a = demo_backend("a")
    port = free_port()
    w = weir_factory(config(port, [a.addr]))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        w.reload(config(s.getsockname()[1], [a.addr]), expect_ok=False)
    finally:
        s.close()
    assert get(w.port).status == 200


def _serves(port):
    try:
        return get(port).status == 200
    except OSError:
        return False


def test_reload_moves_listener(weir_factory, demo_backend):
    a = demo_backend("a")
    port, port2 = free_port(), free_port()
    w = weir_factory(config(port, [a.addr]))
    # served once first, so the worker has taken the listener over: a reload
    # that lands before that can leak the old socket (server_publish replaces
    # a worker's pending fds without closing the ones the new config drops)
    assert _serves(port)
    w.reload(config(port2, [a.addr]))
    wait_until(lambda: _serves(port2), what="new listen address")
    wait_until(lambda: _connect_refused(port), what="old listen address closed")
    # a second listener added by a reload
    two = config(port2, [a.addr]).replace(
        "listeners:\n", "listeners:\n  - name: second\n    listen: 127.0.0.1:%d\n    routes:\n"
        "      - cluster: app\n" % port)
    w.reload(two)
    wait_until(lambda: _serves(port), what="added listener")
    assert _serves(port2)


def test_reload_under_load(weir_factory, demo_backend):
    a, b = demo_backend("a"), demo_backend("b")
    port = free_port()
    cfgs = [config(port, [a.addr], workers=2), config(port, [a.addr, b.addr], workers=2)]
    w = weir_factory(cfgs[0])
    failures, seen = [], []
    stop = threading.Event()

    def load():
        conn = None
        for i in range(300):
            try:
                if conn is None:
                    conn = RawClient(w.port)
                conn.send(b"GET /health HTTP/1.1\r\nHost: weir.test\r\n\r\n")
                r = conn.read_response()
                if r.status != 200:
                    failures.append((i, r.status))
                seen.append(r.header("X-Backend"))
                if r.header("Connection") == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append((i, repr(e)))
                conn = None
        stop.set()

    t = threading.Thread(target=load, daemon=True)
    t.start()
    for i in range(5):
        if stop.is_set():
            break
        w.reload(cfgs[(i + 1) % 2])
        time.sleep(0.05)
    t.join(120)
    assert not t.is_alive()
    assert failures == []
    assert len(seen) == 300
    # each reload is served: the load may have ended before all five reloads,
    # so set the config with both backends, then a alone, then both again
    def served(n):
        return collections.Counter(get(w.port, "/health").header("X-Backend") for _ in range(n))
    w.reload(cfgs[1])
    assert set(served(8)) == {"a", "b"}
    w.reload(cfgs[0])
    assert served(8) == {"a": 8}
    w.reload(cfgs[1])
    assert set(served(8)) == {"a", "b"}


# ---- shutdown ---------------------------------------------------------------------


def _connect_refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def test_graceful_shutdown_finishes_in_flight(weir_factory, recording_backend):
    b = recording_backend(lambda req: {"body": b"finished", "delay": 1.5} if req.target == "/slow"
                          else {"body": b"quick"})
    port = free_port()
    w = weir_factory(config(port, [b.addr], drain="20s"))
    idle = RawClient(w.port)  # an idle keep-alive connection: closed at once
    idle.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
    assert idle.read_response().body == b"quick"
    result = {}

    def slow():
        with RawClient(w.port) as c:
            c.send(b"GET /slow HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            r = c.read_response()
            result["r"] = r
            result["closed"] = c.is_closed()

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    wait_until(lambda: b.count == 2, what="slow request at the backend")
    w.proc.send_signal(signal.SIGTERM)
    w.wait_log("draining")
    assert idle.is_closed()
    idle.close()
    wait_until(lambda: _connect_refused(w.port), what="listener closed after SIGTERM")
    t.join(20)
    assert result["r"].status == 200 and result["r"].body == b"finished"
    assert (result["r"].header("Connection") or "").lower() == "close"
    assert result["closed"]
    assert w.proc.wait(20) == 0  # exits by itself once the request is done


def _idle_keepalive_clients(port, n):
    """n connections that each had a response and now sit idle, kept alive."""
    clients = []
    for i in range(n):
        c = RawClient(port)
        clients.append(c)
        c.send(b"GET /idle%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % i)
        assert c.read_response().status == 200
    return clients


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_with_idle_keepalive_clients_exits_at_once(weir_factory, recording_backend, workers):
    """Idle keep-alive connections hold no request: SIGTERM closes them and
    weir exits without waiting for drain_timeout (60 s here, far beyond the
    wait, so waiting for it fails the test)."""
    b = recording_backend()
    port = free_port()
    w = weir_factory(config(port, [b.addr], drain="60s", workers=workers))
    clients = _idle_keepalive_clients(port, 4)
    try:
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(10) == 0
        for c in clients:
            assert c.is_closed()
    finally:
        for c in clients:
            c.close()
    assert "still in flight" not in w.errlog()


def test_sigterm_waits_for_the_request_in_flight_only(weir_factory, recording_backend):
    """Idle keep-alive clients close at once; the slow request in flight gets
    its whole response (Connection: close), then weir exits by itself, long
    before drain_timeout."""
    b = recording_backend(lambda req: {"body": b"finished" * 1000, "delay": 1.0}
                          if req.target == "/slow" else {"body": b"quick"})
    port = free_port()
    w = weir_factory(config(port, [b.addr], drain="60s"))
    clients = _idle_keepalive_clients(port, 3)
    slow = RawClient(port)
    try:
        slow.send(b"GET /slow HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        wait_until(lambda: b.count == 4, what="slow request at the backend")
        w.proc.send_signal(signal.SIGTERM)
        for c in clients:
            assert c.is_closed()
        r = slow.read_response()
        assert r.status == 200 and r.body == b"finished" * 1000
        assert (r.header("Connection") or "").lower() == "close"
        assert slow.is_closed()
        assert w.proc.wait(10) == 0
    finally:
        slow.close()
        for c in clients:
            c.close()
    assert "still in flight" not in w.errlog()


def test_sigterm_with_idle_redis_clients_exits_at_once(weir_factory):
    from redis_helpers import Shards, redis_config
    import redis
    shards = Shards(1)
    try:
        port = free_port()
        text = redis_config(port, shards).replace("drain_timeout: 5s", "drain_timeout: 60s")
        w = weir_factory(text)
        clients = [redis.Redis(port=port, socket_timeout=10) for _ in range(3)]
        for i, c in enumerate(clients):
            assert c.set("k%d" % i, "v") is True  # each holds an open connection now
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(10) == 0
        for c in clients:
            c.close()
        assert "still in flight" not in w.errlog()
    finally:
        shards.stop()


def test_drain_timeout_forces_exit(weir_factory, recording_backend):
    b = recording_backend("hang")
    port = free_port()
    w = weir_factory(config(port, [b.addr], drain="500ms"))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        wait_until(lambda: b.count == 1, what="request at the backend")
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(20) == 0
        assert c.is_closed()
    assert "drain_timeout" in w.errlog()


def test_second_sigterm_exits_at_once(weir_factory, recording_backend):
    b = recording_backend("hang")
    port = free_port()
    w = weir_factory(config(port, [b.addr], drain="60s"))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        wait_until(lambda: b.count == 1, what="request at the backend")
        w.proc.send_signal(signal.SIGTERM)
        w.wait_log("draining")
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(20) == 0


def test_sigint_stops_cleanly(weir_factory, demo_backend):
    a = demo_backend("a")
    port = free_port()
    w = weir_factory(config(port, [a.addr]))
    assert get(w.port).status == 200
    w.proc.send_signal(signal.SIGINT)
    assert w.proc.wait(20) == 0
    assert "stopped" in w.errlog()


# ---- access log ---------------------------------------------------------------------

ACCESS_RE = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<req>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'(?P<total>[\d.]+) (?P<upstream>\S+) (?P<up_ms>-?[\d.]+) (?P<rid>\S+)$')


def test_access_log_lines(weir_factory, demo_backend):
    a = demo_backend("a")
    port = free_port()
    w = weir_factory(config(port, [a.addr]))
    assert get(w.port, "/health?x=1").status == 200
    assert get(w.port, "/fail?status=503").status == 503
    r = get(w.port, "/", headers="X-Request-Id: my-id-1\r\n")
    assert r.status == 200
    with RawClient(w.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd")
        assert c.read_response().body == b"abcd"
    lines = w.wait_access_lines(4)
    assert len(lines) == 4, lines
    parsed = [ACCESS_RE.match(l) for l in lines]
    assert all(parsed), lines
    reqs = [m.group("req") for m in parsed]
    assert reqs == ["GET /health?x=1 HTTP/1.1", "GET /fail?status=503 HTTP/1.1", "GET / HTTP/1.1",
                    "POST /echo HTTP/1.1"]
    assert [m.group("status") for m in parsed] == ["200", "503", "200", "200"]
    assert {m.group("upstream") for m in parsed} == {a.addr}
    assert {m.group("ip") for m in parsed} == {"127.0.0.1"}
    assert parsed[2].group("rid") == "my-id-1"
    assert re.fullmatch(r"[0-9a-f]{32}", parsed[0].group("rid"))
    assert all(int(m.group("bytes")) > 0 for m in parsed)


def test_access_log_errors_generated_by_weir(weir_factory):
    port = free_port()
    dead = "127.0.0.1:%d" % free_port()
    w = weir_factory(config(port, [dead], routes="- match: { path_prefix: /api/ }\n  cluster: app"))
    assert get(w.port, "/nothing").status == 404
    assert get(w.port, "/api/x").status == 502
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/2.0\r\n\r\n")
        assert c.read_response().status == 505
    lines = w.wait_access_lines(3)
    parsed = [ACCESS_RE.match(l) for l in lines]
    assert all(parsed), lines
    assert [m.group("status") for m in parsed] == ["404", "502", "505"]
    assert parsed[0].group("upstream") == "-"
    assert parsed[1].group("upstream") == dead


def test_access_log_to_file(weir_factory, demo_backend, tmp_path):
    a = demo_backend("a")
    port = free_port()
    path = tmp_path / "access.log"
    text = config(port, [a.addr], access=False).replace("access: off", "access: %s" % path)
    w = weir_factory(text)
    for i in range(3):
        assert get(w.port, "/health").status == 200
    wait_until(lambda: path.exists() and len(path.read_text().splitlines()) == 3, what="3 lines in the file")
    assert all(ACCESS_RE.match(l) for l in path.read_text().splitlines())
    assert w.accesslog() == ""

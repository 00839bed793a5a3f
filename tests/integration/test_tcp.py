"""protocol: tcp listeners: real clients (redis-py, requests, openssl
s_client) through weir to real backends, balancing, a dead endpoint,
splice, PROXY protocol both ways, SNI routing and half-close."""
import os
import signal
import socket
import subprocess
import time

import pytest
import redis
import requests

from conftest import IO_TIMEOUT, SANITIZED, free_port, wait_until, cluster_yaml
from redis_helpers import RedisProc
from tcp_helpers import (backends, client_hello, exchange, metric, parse_proxy_v2,  # noqa: F401
                         proxy_v2, scrape, tcp_config)


def test_tcp_carries_redis_and_http_unchanged(weir_factory, demo_backend, tmp_path):
    rport, hport = free_port(), free_port()
    rd = RedisProc(free_port())
    try:
        demo = demo_backend("web1")
        text = tcp_config(rport, [cluster_yaml("rds", [rd.addr]), cluster_yaml("web", [demo.addr])],
                          cluster="rds",
                          extra_listeners="- { name: tcp2, listen: 127.0.0.1:%d, protocol: tcp, "
                                          "cluster: web }" % hport)
        weir_factory(text, port=rport)
        c = redis.Redis(port=rport, socket_timeout=IO_TIMEOUT)
        big = os.urandom(1 << 20)
        assert c.set("k", big)
        assert c.get("k") == big
        p = c.pipeline(transaction=False)
        for i in range(200):
            p.incr("n")
        assert p.execute()[-1] == 200
        assert rd.client.get("n") == b"200"
        r = requests.get("http://127.0.0.1:%d/echo?x=1" % hport, timeout=IO_TIMEOUT)
        assert r.status_code == 200
        assert r.headers.get("X-Backend") == "web1"
        # weir did not touch the request: no X-Forwarded-For in tcp mode
        assert "x-forwarded-for" not in r.text.lower()
    finally:
        rd.stop()


def test_tcp_round_robin_over_three(weir_factory, backends):
    bs = [backends("b%d" % i) for i in range(3)]
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr for b in bs])]))
    seen = []
    for i in range(9):
        out = exchange(port, b"ping%d" % i)
        assert out.startswith(b"ping%d<EOF:" % i), out
        seen.append(out.split(b":")[1])
    assert sorted(seen) == [b"b0"] * 3 + [b"b1"] * 3 + [b"b2"] * 3


def test_tcp_ip_hash_keeps_a_client_on_one_endpoint(weir_factory, backends):
    bs = [backends("b%d" % i) for i in range(3)]
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr for b in bs], balance="ip_hash")]))
    names = {exchange(port, b"x").split(b":")[1] for _ in range(6)}
    assert len(names) == 1


def test_tcp_least_connections_avoids_the_busy_endpoint(weir_factory, backends):
    bs = [backends("b%d" % i) for i in range(2)]
    port, aport = free_port(), free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr for b in bs],
                                                balance="least_connections")], admin_port=aport))
    # weir_factory's probe connection must have ended: it counts while open
    wait_until(lambda: metric(scrape(aport), "weir_endpoint_in_flight", cluster="app") == 0,
               what="the probe's session to end")
    held = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    try:
        held.sendall(b"hold")
        assert held.recv(4) == b"hold"
        busy = 0 if any(c == b"hold" for c in bs[0].conns) else 1
        for _ in range(4):
            out = exchange(port, b"x")
            assert out.split(b":")[1] == ("b%d" % (1 - busy)).encode(), (busy, bs[0].conns, bs[1].conns)
    finally:
        held.close()


def test_tcp_dead_endpoint_skipped(weir_factory, backends):
    live = [backends("b1"), backends("b2")]
    dead = "127.0.0.1:%d" % free_port()
    port, aport = free_port(), free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [dead] + [b.addr for b in live])],
                                admin_port=aport))
    for i in range(6):
        out = exchange(port, b"hello")
        assert out.startswith(b"hello<EOF:b"), out
    n = sum(b.count() for b in live)
    assert n >= 6  # and weir_factory's probe connection
    m = scrape(aport)
    assert metric(m, "weir_tcp_connect_errors_total", cluster="app") >= 1
    assert metric(m, "weir_tcp_connections_total", cluster="app") == n
    assert "connect failed" in w.errlog()


def closed_by_weir(port, payload):
    """True when weir closes the connection (EOF or reset) without an answer."""
    try:
        return exchange(port, payload) == b""
    except ConnectionResetError:
        return True


def test_tcp_all_dead_closes_the_client(weir_factory):
    port = free_port()
    dead = ["127.0.0.1:%d" % free_port() for _ in range(2)]
    w = weir_factory(tcp_config(port, [cluster_yaml("app", dead)]))
    assert closed_by_weir(port, b"x")
    wait_until(lambda: "no endpoint can take tcp client" in w.errlog() or
               "connect failed" in w.errlog(), what="the failure logged")


def test_tcp_large_transfer_uses_splice(weir_factory, backends):
    b = backends("big")
    port, aport = free_port(), free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr])], admin_port=aport))
    payload = os.urandom(8 << 20)
    out = exchange(port, payload)
    assert out[:len(payload)] == payload
    assert out[len(payload):] == b"<EOF:big:%d>" % len(payload)
    m = scrape(aport)
    up = metric(m, "weir_tcp_bytes_total", cluster="app", direction="to_upstream")
    down = metric(m, "weir_tcp_bytes_total", cluster="app", direction="to_client")
    assert up == len(payload)
    assert down == len(out)
    spliced = metric(m, "weir_tcp_spliced_bytes_total", cluster="app", direction="to_client")
    assert spliced == down  # every byte went through the pipe


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tcp_sends_proxy_header(weir_factory, backends, version):
    b = backends("pp", echo=False)
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr])],
                            listener_extra="proxy_protocol: %s" % version))
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    cport = s.getsockname()[1]
    s.sendall(b"payload")
    s.shutdown(socket.SHUT_WR)
    while s.recv(1024):
        pass
    s.close()
    got = b.received()
    if version == "v1":
        line = b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (cport, port)
        assert got == line + b"payload"
    else:
        src, dst, sport, dport, n = parse_proxy_v2(got)
        assert (src, dst, sport, dport) == ("127.0.0.1", "127.0.0.1", cport, port)
        assert got[n:] == b"payload"


@pytest.mark.parametrize("front", ["v1", "v2"])
def test_tcp_accept_proxy_from_trusted(weir_factory, backends, front):
    b = backends("pp", echo=False)
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr])],
                            listener_extra="proxy_protocol: v1\naccept_proxy: [127.0.0.0/8]"))
    if front == "v1":
        hdr = b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\n"
    else:
        hdr = proxy_v2("203.0.113.7", "198.51.100.1", 5555, 443)
    # the header in pieces: weir must wait for all of it and read no further
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(hdr[:5])
    time.sleep(0.05)
    s.sendall(hdr[5:] + b"data")
    s.shutdown(socket.SHUT_WR)
    while s.recv(1024):
        pass
    s.close()
    assert b.received() == b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\ndata"


def test_tcp_accept_proxy_untrusted_is_data(weir_factory, backends):
    b = backends("pp", echo=False)
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr])],
                            listener_extra="proxy_protocol: v1\naccept_proxy: [10.0.0.0/8]"))
    spoof = b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 443\r\n"
    exchange(port, spoof + b"data")
    got = b.received()
    assert got.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
    assert got.endswith(b"\r\n" + spoof + b"data")


def test_tcp_accept_proxy_bad_header_closes(weir_factory, backends):
    b = backends("pp")
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr])],
                            listener_extra="accept_proxy: [127.0.0.1]"))
    assert closed_by_weir(port, b"GET / HTTP/1.1\r\n\r\n")
    assert b.count() == 0


def test_http_listener_accept_proxy_sets_client_address(weir_factory, recording_backend):
    be = recording_backend()
    hport, uport = free_port(), free_port()
    text = ("workers: 1\nlog: { level: info }\nlisteners:\n"
            "  - { name: web, listen: 127.0.0.1:%d, accept_proxy: [127.0.0.1], "
            "routes: [{ cluster: app }] }\n"
            "  - { name: web2, listen: 127.0.0.1:%d, accept_proxy: [10.0.0.0/8], "
            "routes: [{ cluster: app }] }\n"
            "clusters:\n  - { name: app, endpoints: [%s] }\n") % (hport, uport, be.addr)
    weir_factory(text, port=hport)
    req = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    out = exchange(hport, proxy_v2("203.0.113.9", "127.0.0.1", 4000, 80) + req)
    assert out.startswith(b"HTTP/1.1 200"), out[:100]
    assert be.requests[-1].header("x-forwarded-for") == "203.0.113.9"
    # untrusted peer: the header is not a request line
    out = exchange(uport, b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\n" + req)
    assert out.startswith(b"HTTP/1.1 400"), out[:100]


def sni_config(port, a, b, c):
    return tcp_config(port, [cluster_yaml("a", [a.addr]), cluster_yaml("b", [b.addr]),
                             cluster_yaml("c", [c.addr])], cluster="c",
                      listener_extra="sni:\n  - { match: a.example.com, cluster: a }\n"
                                     "  - { match: '*.example.com', cluster: b }")


def test_tcp_sni_routing(weir_factory, backends):
    a, b, c = backends("a", echo=False), backends("b", echo=False), backends("c", echo=False)
    port, aport = free_port(), free_port()
    weir_factory(sni_config(port, a, b, c).replace("listeners:", "admin: { listen: 127.0.0.1:%d }\n"
                                                                 "listeners:" % aport, 1))
    sent = 0
    for name, want in [("a.example.com", a), ("x.y.example.com", b), ("A.Example.COM", a),
                       ("example.com", c), ("other.test", c), (None, c)]:
        before = want.count()
        hello = client_hello(name)
        out = exchange(port, hello)
        assert out.endswith(b"<EOF:%s:%d>" % (want.name.encode(), len(hello))), (name, out)
        assert want.count() == before + 1
        assert want.received() == hello  # passed through untouched
        sent += len(hello)
    exchange(port, b"not tls at all")
    assert c.received() == b"not tls at all"
    sent += len(b"not tls at all")
    # the peeked bytes count like any others
    m = scrape(aport)
    assert sum(metric(m, "weir_tcp_bytes_total", cluster=n, direction="to_upstream")
               for n in "abc") == sent


def test_tcp_sni_routing_openssl_s_client(weir_factory, backends):
    a, b, c = backends("a", echo=False), backends("b", echo=False), backends("c", echo=False)
    port = free_port()
    weir_factory(sni_config(port, a, b, c))
    for name, want in [("a.example.com", a), ("www.example.com", b), ("nothing.test", c)]:
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                              "-servername", name], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: want.count() == 1 and len(want.received()) > 5,
                       what="the ClientHello at backend " + want.name)
        finally:
            p.kill()
            p.wait()
        got = want.received()
        assert got[0] == 0x16 and got[5] == 0x01  # a handshake record with a ClientHello
        assert name.encode() in got
    assert (a.count(), b.count(), c.count()) == (1, 1, 1)


def test_tcp_half_close_both_ways(weir_factory, backends):
    # client -> upstream: the client's EOF reaches the backend, its answer still comes back
    e = backends("echo")
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])]))
    assert exchange(port, b"abc") == b"abc<EOF:echo:3>"
    # upstream -> client: the backend stops sending first, the client keeps sending
    g = backends("g", greet_and_shut=True)
    port2 = free_port()
    weir_factory(tcp_config(port2, [cluster_yaml("app", [g.addr])]))
    s = socket.create_connection(("127.0.0.1", port2), timeout=IO_TIMEOUT)
    got = b""
    while True:
        d = s.recv(100)
        if not d:
            break
        got += d
    assert got == b"bye:g"
    s.sendall(b"after the backend's EOF")
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100) == b""
    s.close()
    wait_until(lambda: g.received() == b"after the backend's EOF", what="the late bytes")


def test_tcp_idle_timeout_closes(weir_factory, backends):
    e = backends("echo")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])],
                                listener_extra="timeouts: { client_idle: 300ms }"))
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    assert s.recv(100) == b""  # weir closed both sides
    s.close()
    assert "idle for" in w.errlog()


def test_tcp_config_errors(tmp_path):
    from conftest import WEIR_BIN

    def check(text):
        p = tmp_path / "c.yaml"
        p.write_text(text)
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True,
                           timeout=IO_TIMEOUT)
        return r.returncode, r.stdout + r.stderr

    base = "clusters:\n  - { name: app, endpoints: [127.0.0.1:1] }\nlisteners:\n"
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp }\n")
    assert rc != 0 and "missing required key 'cluster'" in out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: nope }\n")
    assert rc != 0 and "cluster \"nope\" which is not defined" in out.replace("'", '"')
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, cluster: app, "
                           "routes: [{ cluster: app }] }\n")
    assert rc != 0 and "used only with protocol tcp" in out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "sni: [{ match: 'a*.x', cluster: app }] }\n")
    assert rc != 0 and "bad server name" in out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "proxy_protocol: v3 }\n")
    assert rc != 0 and "proxy_protocol" in out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "accept_proxy: [10.0.0.1/8] }\n")
    assert rc != 0 and "bits set after its prefix" in out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "proxy_protocol: v2, accept_proxy: [10.0.0.0/8], "
                           "sni: [{ match: '*.x.test', cluster: app }] }\n")
    assert rc == 0, out


def test_tcp_health_check_marks_endpoint_down(weir_factory, backends):
    live = backends("live")
    dead = "127.0.0.1:%d" % free_port()
    port, aport = free_port(), free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [dead, live.addr], extra=(
        "health_check: { type: tcp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }"))],
        admin_port=aport))
    wait_until(lambda: metric(scrape(aport), "weir_endpoint_up", cluster="app", endpoint=dead) == 0
               and metric(scrape(aport), "weir_endpoint_up", cluster="app") == 1,
               what="the dead endpoint marked down")
    errors = metric(scrape(aport), "weir_tcp_connect_errors_total", cluster="app")
    for _ in range(4):
        assert exchange(port, b"x") == b"x<EOF:live:1>"
    # no session even tried the endpoint the checks took out
    assert metric(scrape(aport), "weir_tcp_connect_errors_total", cluster="app") == errors


def test_tcp_reload_keeps_open_sessions(weir_factory, backends):
    old, new = backends("old"), backends("new")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [old.addr])]))
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"before")
    assert s.recv(6) == b"before"
    w.reload(tcp_config(port, [cluster_yaml("app", [new.addr])]))
    # new sessions: the new endpoint (once the worker adopted the reload)
    wait_until(lambda: exchange(port, b"y") == b"y<EOF:new:1>", what="a session to the new endpoint")
    s.sendall(b"after")  # the open one still reaches the old endpoint
    s.shutdown(socket.SHUT_WR)
    rest = b""
    while True:
        d = s.recv(100)
        if not d:
            break
        rest += d
    s.close()
    assert rest == b"after<EOF:old:11>"


def test_tcp_drain_lets_sessions_finish(weir_factory, backends):
    e = backends("e")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])]))
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"one")
    assert s.recv(3) == b"one"
    w.proc.send_signal(signal.SIGTERM)
    w.wait_log("draining")
    s.sendall(b"two")  # still forwarded while draining
    assert s.recv(3) == b"two"
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100) == b"<EOF:e:6>"
    s.close()
    w.proc.wait(IO_TIMEOUT)  # the last session ended: weir exits before drain_timeout
    assert w.proc.returncode == 0


def test_tcp_connect_failures_eject_the_endpoint(weir_factory, backends):
    live = backends("live")
    dead = "127.0.0.1:%d" % free_port()
    port, aport = free_port(), free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [dead, live.addr], extra=(
        "outlier_detection: { consecutive_failures: 1, base_ejection: 1m }"))],
        admin_port=aport))
    for _ in range(4):
        assert exchange(port, b"x") == b"x<EOF:live:1>"
    m = scrape(aport)
    assert metric(m, "weir_outlier_ejections_total", cluster="app", endpoint=dead) == 1
    assert metric(m, "weir_endpoint_up", cluster="app", endpoint=dead) == 0
    errors = metric(m, "weir_tcp_connect_errors_total", cluster="app")
    for _ in range(4):
        assert exchange(port, b"x") == b"x<EOF:live:1>"
    # ejected: no more connects to it
    assert metric(scrape(aport), "weir_tcp_connect_errors_total", cluster="app") == errors


def test_redis_listener_accept_proxy(weir_factory):
    rd = RedisProc(free_port())
    try:
        port = free_port()
        text = ("workers: 1\nlog: { level: info }\nlisteners:\n"
                "  - { name: r, listen: 127.0.0.1:%d, protocol: redis, redis_cluster: c, "
                "accept_proxy: [127.0.0.1] }\n"
                "redis_clusters:\n  - name: c\n    shards:\n      - { primary: %s }\n") % (port, rd.addr)
        weir_factory(text, port=port)
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        s.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 6379\r\n*1\r\n$4\r\nPING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        s.close()
    finally:
        rd.stop()


def test_tcp_back_pressure_bounds_what_is_in_flight(weir_factory):
    # a backend that sends as fast as it may to a client that does not read:
    # weir must stop reading the backend once its pipe is full, so the
    # backend's sends block after socket buffers plus one pipe, not 256 MiB
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    state = {"sent": 0, "blocked": False}
    chunk = bytes(1 << 20)

    def serve():
        s, _ = ls.accept()  # weir_factory's probe: ignore it
        s.close()
        s, _ = ls.accept()
        s.setblocking(False)
        while state["sent"] < (256 << 20):
            try:
                state["sent"] += s.send(chunk)
            except BlockingIOError:
                state["blocked"] = True
                time.sleep(0.05)
            except OSError:
                break
        s.close()

    import threading
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", ["127.0.0.1:%d" % ls.getsockname()[1]])]))
    c = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    wait_until(lambda: state["blocked"], what="the backend's sends to block")
    sent = state["sent"]
    with open("/proc/%d/status" % w.proc.pid) as f:
        rss_kb = int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
    assert sent < (64 << 20), sent
    assert rss_kb < 200 * 1024 or SANITIZED, rss_kb
    # and then everything arrives once the client reads
    got = 0
    while got < sent:
        d = c.recv(1 << 20)
        assert d
        got += len(d)
    c.close()
    ls.close()

"""health_check type: grpc against real gRPC servers (grpcio, Debian's
python3-grpcio): each serves the standard grpc.health.v1.Health/Check (the
protobuf written by hand below: grpcio-health-checking is not packaged)
and a /test.Who/Am method answering its name. Traffic reaches them through
a tcp listener (gRPC passes through unchanged), so a test sees which
endpoint the checks keep in the balance: SERVING -> up and serving;
NOT_SERVING -> down and traffic moves; per-service statuses; an unknown
service (grpc-status NOT_FOUND) -> down; a server gone -> down, back -> up;
the same over TLS with ALPN h2; config errors with file:line:col."""
import os
import subprocess
import sys
from concurrent import futures

import pytest
import requests

from conftest import IO_TIMEOUT, cluster_yaml, free_port, wait_until
from tcp_helpers import metric, scrape, tcp_config

grpc = pytest.importorskip("grpc")

SERVING, NOT_SERVING = 1, 2


def encode_response(status):
    """HealthCheckResponse {status}: field 1, varint."""
    return bytes([0x08, status]) if status else b""


def decode_request(data):
    """HealthCheckRequest {service} -> service (field 1, length-delimited)."""
    i, service = 0, ""
    while i < len(data):
        key = data[i]
        i += 1
        n, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if key == 0x0A:
            service = data[i:i + n].decode()
            i += n
        else:
            raise ValueError("unexpected field")
    return service


class GrpcBackend:
    """A grpcio server on 127.0.0.1:port with a health service whose
    answers `statuses` (service -> status) sets; a service not in it gets
    NOT_FOUND, as the reference implementation does."""

    def __init__(self, name, port=None, tls=None, health=True):
        self.name = name
        self.health = health
        self.port = port or free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.statuses = {"": SERVING}
        self.checks = []  # (service, metadata dict)
        self.tls = tls
        self.server = None
        self.start()

    def _check(self, request, context):
        service = decode_request(request)
        self.checks.append((service, dict(context.invocation_metadata())))
        if service not in self.statuses:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return encode_response(self.statuses[service])

    def _who(self, request, context):
        return self.name.encode()

    def start(self):
        ident = lambda b: b  # noqa: E731
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                self._check, request_deserializer=ident, response_serializer=ident)})
        who = grpc.method_handlers_generic_handler("test.Who", {
            "Am": grpc.unary_unary_rpc_method_handler(
                self._who, request_deserializer=ident, response_serializer=ident)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  handlers=[health, who] if self.health else [who])
        if self.tls:
            cert, key = self.tls
            creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
            bound = self.server.add_secure_port(self.addr, creds)
        else:
            bound = self.server.add_insecure_port(self.addr)
        assert bound == self.port
        self.server.start()

    def stop(self):
        if self.server:
            self.server.stop(grace=None).wait(IO_TIMEOUT)
            self.server = None


@pytest.fixture
def grpc_backend():
    started = []

    def start(name, **kw):
        b = GrpcBackend(name, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def who(port):
    """Which backend answers /test.Who/Am through weir's tcp listener (a
    new channel, so a new connection that weir balances)."""
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        call = ch.unary_unary("/test.Who/Am", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        return call(b"", timeout=IO_TIMEOUT).decode()


def up(aport, addr):
    return metric(scrape(aport), "weir_endpoint_up", cluster="app", endpoint=addr)


def start_weir(weir_factory, backends, hc, tls=""):
    port, aport = free_port(), free_port()
    # a timeout of a whole second: on a loaded machine a shorter check can time out and take
    # a healthy endpoint down for a round (see test_resilience.py)
    extra = "health_check: { type: grpc, interval: 1s, timeout: 1s, rise: 1, fall: 1%s }\n" % hc
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [b.addr for b in backends],
                                                    extra=extra + tls)], admin_port=aport))
    return w, port, aport


def esc(addr):
    return addr.replace(".", r"\.")


def test_serving_is_up_and_not_serving_moves_traffic(weir_factory, grpc_backend):
    a, b = grpc_backend("a"), grpc_backend("b")
    w, port, aport = start_weir(weir_factory, [a, b], "")
    wait_until(lambda: len(a.checks) >= 2 and len(b.checks) >= 2, what="checks of both")
    assert sorted(who(port) for _ in range(4)) == ["a", "a", "b", "b"]
    # what a check sends: the whole server (""), gRPC headers, the deadline
    service, md = a.checks[-1]
    assert service == ""
    assert md.get("user-agent", "").startswith("weir-health-check")
    assert up(aport, a.addr) == 1 and up(aport, b.addr) == 1
    a.statuses[""] = NOT_SERVING
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: serving status NOT_SERVING"
               % esc(a.addr))
    assert up(aport, a.addr) == 0
    eps = requests.get("http://127.0.0.1:%d/api/v1/clusters/app" % aport,
                       timeout=IO_TIMEOUT).json()["endpoints"]
    assert {e["address"]: e["healthy"] for e in eps} == {a.addr: False, b.addr: True}
    assert [who(port) for _ in range(6)] == ["b"] * 6
    a.statuses[""] = SERVING
    w.wait_log(r"endpoint %s is UP" % esc(a.addr))
    assert sorted(who(port) for _ in range(4)) == ["a", "a", "b", "b"]
    s = scrape(aport)
    assert metric(s, "weir_health_checks_total", cluster="app", endpoint=a.addr, result="success") >= 2
    assert metric(s, "weir_health_checks_total", cluster="app", endpoint=a.addr, result="failure") >= 1


def test_per_service_status_and_unknown_service(weir_factory, grpc_backend):
    a, b = grpc_backend("a"), grpc_backend("b")
    a.statuses = {"": SERVING, "shop.Cart": SERVING}
    b.statuses = {"": SERVING, "shop.Cart": NOT_SERVING}
    w, port, aport = start_weir(weir_factory, [a, b], ", service: shop.Cart, authority: cart.internal")
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: serving status NOT_SERVING"
               % esc(b.addr))
    wait_until(lambda: len(a.checks) >= 1, what="a check of a")
    assert all(s == "shop.Cart" for s, _ in a.checks)
    assert [who(port) for _ in range(4)] == ["a"] * 4
    # the service disappears from a: NOT_FOUND takes a down too (then all are down)
    del a.statuses["shop.Cart"]
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: grpc-status 5 \(NOT_FOUND\)"
               r": unknown service" % esc(a.addr))
    b.statuses["shop.Cart"] = SERVING
    w.wait_log(r"endpoint %s is UP" % esc(b.addr))
    assert [who(port) for _ in range(4)] == ["b"] * 4


def test_server_without_health_service_is_down(weir_factory, grpc_backend):
    a, bare = grpc_backend("a"), grpc_backend("bare", health=False)
    w, port, aport = start_weir(weir_factory, [a, bare], "")
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: grpc-status 12 "
               r"\(UNIMPLEMENTED\)" % esc(bare.addr))
    assert [who(port) for _ in range(4)] == ["a"] * 4


def test_server_gone_is_down_and_back_is_up(weir_factory, grpc_backend):
    a, b = grpc_backend("a"), grpc_backend("b")
    w, port, aport = start_weir(weir_factory, [a, b], "")
    wait_until(lambda: len(a.checks) >= 1, what="a check of a")
    a.stop()
    w.wait_log(r"endpoint %s is DOWN" % esc(a.addr))
    assert [who(port) for _ in range(4)] == ["b"] * 4
    a.start()
    w.wait_log(r"endpoint %s is UP" % esc(a.addr))
    assert sorted(who(port) for _ in range(4)) == ["a", "a", "b", "b"]


def test_silent_server_times_out_without_holding_the_others(weir_factory, grpc_backend):
    """A server that accepts and never answers fails by the check's timeout,
    while the other endpoint's checks go on passing."""
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(16)
    try:
        a = grpc_backend("a")

        class Addr:
            addr = "127.0.0.1:%d" % silent.getsockname()[1]

        w, port, aport = start_weir(weir_factory, [a, Addr], "")
        w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: no answer within 1000 ms"
                   % esc(Addr.addr))
        n = len(a.checks)
        wait_until(lambda: len(a.checks) >= n + 2, what="checks of a going on")
        assert "%s is DOWN" % a.addr not in w.errlog()
    finally:
        silent.close()


class H2Recorder:
    """A raw HTTP/2 server (python3-h2) that records each check's request
    headers and body and answers SERVING, to see what goes on the wire."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.requests = []  # (headers dict, body bytes)
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(IO_TIMEOUT)
            try:
                self._serve(c)
            except Exception:
                pass
            finally:
                c.close()

    def _serve(self, c):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        heads, body = {}, b""
        for _ in range(100):
            data = c.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    heads = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(len(ev.data), ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.requests.append((heads, body))
                    conn.send_headers(ev.stream_id, [(":status", "200"),
                                                     ("content-type", "application/grpc")])
                    conn.send_data(ev.stream_id, b"\0\0\0\0\x02\x08\x01")
                    conn.send_headers(ev.stream_id, [("grpc-status", "0")], end_stream=True)
            c.sendall(conn.data_to_send())

    def stop(self):
        self.stopped = True
        self.sock.close()


def test_request_on_the_wire(weir_factory):
    pytest.importorskip("h2")
    r = H2Recorder()
    try:
        w, port, aport = start_weir(weir_factory, [r], ", service: shop.Cart, authority: cart.internal:50051")
        wait_until(lambda: len(r.requests) >= 2, what="checks reaching the h2 server")
        heads, body = r.requests[-1]
        assert heads[":method"] == "POST" and heads[":scheme"] == "http"
        assert heads[":path"] == "/grpc.health.v1.Health/Check"
        assert heads[":authority"] == "cart.internal:50051"
        assert heads["content-type"] == "application/grpc" and heads["te"] == "trailers"
        assert heads["grpc-timeout"] == "1000m"
        assert body == b"\0\0\0\0\x0b\x0a\x09shop.Cart"
        assert "is DOWN" not in w.errlog()
        # default authority: the endpoint address; the whole server: an empty message
        w2, _, _ = start_weir(weir_factory, [r], "")
        n = len(r.requests)
        wait_until(lambda: any(h[":authority"] == r.addr and b == b"\0" * 5
                               for h, b in r.requests[n:]), what="a default check")
    finally:
        r.stop()


def test_http_server_is_not_a_grpc_server(weir_factory, demo_backend, grpc_backend):
    """An HTTP/1.1 server fails the check (no HTTP/2 answer)."""
    demo = demo_backend("web")
    a = grpc_backend("a")

    class Addr:
        addr = demo.addr

    w, port, aport = start_weir(weir_factory, [a, Addr], "")
    w.wait_log(r"endpoint %s is DOWN" % esc(demo.addr))
    assert [who(port) for _ in range(3)] == ["a"] * 3


def test_grpc_check_over_tls(weir_factory, grpc_backend, tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_tls import Pki
    pki = Pki(str(tmp_path))
    cert, key = pki.issue("grpc", "backend.test", sans=["backend.test"])
    a = grpc_backend("a", tls=(cert, key))
    good = "tls: { ca: %s, sni: backend.test }\n" % pki.ca
    w, port, aport = start_weir(weir_factory, [a], "", tls=good)
    wait_until(lambda: len(a.checks) >= 2, what="checks over TLS")
    assert "is DOWN" not in w.errlog()
    a.statuses[""] = NOT_SERVING
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: serving status NOT_SERVING"
               % esc(a.addr))
    a.statuses[""] = SERVING
    w.wait_log(r"endpoint %s is UP" % esc(a.addr))
    # a CA the server's certificate does not chain to: down, no check arrives
    bad = "tls: { ca: %s, sni: backend.test }\n" % pki.rogue
    b = grpc_backend("b", tls=(cert, key))
    w2, _, _ = start_weir(weir_factory, [b], "", tls=bad)
    w2.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: TLS handshake failed"
                % esc(b.addr))
    assert b.checks == []
    # a TLS server that does not choose h2 (HTTP/1.1 only): down, without a request
    import socket
    import ssl
    import threading
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", free_port()))
    lsock.listen(16)
    got = []

    def serve():
        for _ in range(50):
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.settimeout(2)
                    got.append(t.selected_alpn_protocol())
                    t.recv(1)
            except (OSError, ssl.SSLError):
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        class Addr:
            addr = "127.0.0.1:%d" % lsock.getsockname()[1]

        w3, _, _ = start_weir(weir_factory, [Addr], "", tls=good)
        w3.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: the server did not "
                    r"choose h2 in ALPN" % esc(Addr.addr))
        assert got and all(p is None for p in got)
    finally:
        lsock.close()


@pytest.mark.parametrize("hc,msg", [
    ("type: http, service: x", "health check key 'service' does not apply to type http"),
    ("type: tcp, authority: x", "health check key 'authority' does not apply to type tcp"),
    ("type: grpc, path: /x", "health check key 'path' does not apply to type grpc"),
    ("type: grpc, expect_status: 200", "health check key 'expect_status' does not apply to type grpc"),
    ("type: grpc, service: 'a b'", "must not contain spaces"),
    ("type: grpc, authority: ''", "authority must not be empty"),
    ("type: grpc, service: %s" % ("x" * 201), "longer than 200 bytes"),
    ("type: gprc", "health check type"),
])
def test_config_errors(tmp_path, hc, msg):
    text = tcp_config(1, [cluster_yaml("app", ["127.0.0.1:2"], extra="health_check: { %s }" % hc)])
    path = tmp_path / "weir.yaml"
    path.write_text(text)
    r = subprocess.run([os.environ["WEIR_BIN"], "check", "-c", str(path)], capture_output=True,
                       text=True, timeout=IO_TIMEOUT)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and msg in out, out
    line = text.splitlines().index(next(l for l in text.splitlines() if "health_check" in l)) + 1
    assert ("weir.yaml:%d:" % line) in out, out

"""HTTP/2 to upstreams: a cluster with `protocol: h2c` (prior knowledge) or
`protocol: h2` (TLS, ALPN h2) in front of a python3-h2 server
(h2_backend.py), with HTTP/1.1 clients on weir's side."""
import os
import re
import subprocess
import threading

import pytest

from conftest import WEIR_BIN, RawClient, config, free_port, get, request, wait_port, wait_until
from h2_backend import H2Backend


@pytest.fixture
def h2_backend():
    started = []

    def start(**kw):
        port = free_port()
        b = H2Backend(port, **kw)
        started.append(b)
        wait_port(port)
        return b

    yield start
    for b in started:
        b.stop()


def h2_weir(weir_factory, b, protocol="h2c", extra=""):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % b.port],
                            cluster_extra="protocol: %s\n%s" % (protocol, extra)))
    return w, port


def post(port, path, body, host="weir.test"):
    return request(port, ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                          "Connection: close\r\n\r\n" % (path, host, len(body))).encode() + body)


def test_get_and_post_over_h2c(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    r = get(port, "/hello?x=1", host="api.test")
    assert r.status == 200 and r.body == b"hello /hello\n"
    req = b.requests[-1]["headers"]
    assert req[":method"] == "GET" and req[":path"] == "/hello?x=1"
    assert req[":authority"] == "api.test" and req[":scheme"] == "http"
    # hop-by-hop fields never reach an HTTP/2 server (RFC 9113 8.2.2)
    names = [k for k, _ in b.requests[-1]["list"]]
    assert b"connection" not in names and b"host" not in names
    body = os.urandom(100000)
    r = post(port, "/echo", body)
    assert r.status == 200 and r.body == body
    assert b.requests[-1]["body"] == body
    assert b.connections == 1  # the second request reused the pooled connection


def test_chunked_request_body(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    r = request(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert r.status == 200 and r.body == b"hello world"
    assert b.requests[-1]["body"] == b"hello world"


def raw_exchange(port, data):
    """Sends data, returns every byte until weir closes."""
    got = b""
    with RawClient(port) as c:
        c.send(data)
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
    return got


def test_answer_trailers_reach_an_http1_client(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    got = raw_exchange(port, b"GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in got.lower()
    assert got.endswith(b"\r\n2\r\nok\r\n0\r\nx-checksum: abc123\r\ngrpc-status: 0\r\n\r\n"), got
    assert b.requests[-1]["headers"].get("te") == "trailers"


def test_request_trailers_reach_the_backend(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    r = request(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n"
                      b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Req-Sum: 42\r\n"
                      b"Content-Length: 9\r\n\r\n")
    assert r.status == 200 and r.body == b"abc"
    # a field that must not be a trailer (RFC 9110 6.5.1) is left out
    assert b.requests[-1]["trailers"] == [("x-req-sum", "42")]
    r = request(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      b"Connection: close\r\n\r\n0\r\nx-only: t\r\n\r\n")
    assert r.status == 200 and r.body == b""
    assert b.requests[-1]["trailers"] == [("x-only", "t")]


def test_large_answer_is_chunked(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    n = 4 << 20
    r = get(port, "/big?n=%d" % n)
    assert r.status == 200
    assert r.header("transfer-encoding") == "chunked"
    assert len(r.body) == n and r.body == bytes(i % 251 for i in range(n))


def test_concurrent_requests_share_one_connection(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    n = 20
    results = [None] * n

    def one(i):
        results[i] = get(port, "/slow?ms=300&i=%d" % i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.status == 200 for r in results)
    assert b.connections == 1
    # the streams were in flight together: distinct stream ids on one connection
    assert len({r["stream"] for r in b.requests}) == n


def test_max_concurrent_streams_opens_another_connection(weir_factory, h2_backend):
    b = h2_backend(max_streams=2)
    w, port = h2_weir(weir_factory, b, extra="h2_connections: 3\n")
    get(port, "/warm")  # the first connection learns SETTINGS_MAX_CONCURRENT_STREAMS = 2
    n = 6
    results = [None] * n

    def one(i):
        results[i] = get(port, "/slow?ms=400&i=%d" % i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.status == 200 for r in results)
    assert 2 <= b.connections <= 3


def test_goaway_loses_no_request(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    n = 12
    results = [None] * n

    def one(i):
        path = "/goaway" if i == 3 else "/slow?ms=50&i=%d" % i
        results[i] = get(port, path)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None and r.status == 200 for r in results), results
    for i in range(n):
        if i != 3:
            assert results[i].body == b"hello /slow\n"
    assert b.connections >= 2  # new streams went to a new connection


def test_refused_stream_is_sent_again(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    # a POST is never retried by the proxy: only the stream-level replay saves it
    r = post(port, "/refuse_once?k=a", b"payload")
    assert r.status == 200 and r.body == b"payload"
    got = [q for q in b.requests if q["headers"][":path"] == "/refuse_once?k=a"]
    assert len(got) == 2 and all(q["body"] == b"payload" for q in got)
    big = os.urandom(200000)  # too big to hold for a replay: the refusal reaches the client
    r = post(port, "/refuse_once?k=b", big)
    assert r.status == 502


def test_backend_dies_mid_stream(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    with RawClient(port) as c:
        c.send(b"GET /die HTTP/1.1\r\nHost: a\r\n\r\n")
        head = b""
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    break
                head += d
        except OSError:
            pass
    # the answer had started: the client sees it cut short (no final chunk)
    assert head.startswith(b"HTTP/1.1 200")
    assert not head.endswith(b"0\r\n\r\n")
    # the next request gets a new connection and works
    r = get(port, "/after")
    assert r.status == 200 and r.body == b"hello /after\n"


def test_backend_down_gives_502(weir_factory):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % free_port()], cluster_extra="protocol: h2c\n"))
    r = get(port, "/x")
    assert r.status == 502
    # the retry of the GET found the set-up failure fresh: a connect failure
    w.wait_log("connect failed: Connection refused")


def test_post_lost_with_connection_is_not_retried(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    with RawClient(port) as c:
        c.send(b"POST /die HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\ndata")
        got = b""
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
    assert got.startswith(b"HTTP/1.1 200") and not got.endswith(b"0\r\n\r\n")
    # a non-idempotent request reached the backend once only
    assert sum(1 for q in b.requests if q["headers"][":path"] == "/die") == 1


def make_cert(d):
    key, crt = os.path.join(d, "b.key"), os.path.join(d, "b.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=backend.test",
                        "-addext", "subjectAltName=DNS:backend.test"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return crt, key


def test_h2_over_tls(weir_factory, h2_backend, tmp_path):
    crt, key = make_cert(str(tmp_path))
    b = h2_backend(tls_cert=crt, tls_key=key)
    w, port = h2_weir(weir_factory, b, protocol="h2",
                      extra="tls: { ca: %s, sni: backend.test }\n" % crt)
    r = get(port, "/over-tls")
    assert r.status == 200 and r.body == b"hello /over-tls\n"
    assert b.requests[-1]["headers"][":scheme"] == "https"
    body = os.urandom(70000)
    r = post(port, "/echo", body)
    assert r.status == 200 and r.body == body
    assert b.connections == 1


def test_tls_server_without_h2_alpn_fails_clearly(weir_factory, tmp_path):
    import ssl
    import socket
    crt, key = make_cert(str(tmp_path))
    bport = free_port()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", bport))
    ls.listen(8)
    stop = []

    def serve():
        ls.settimeout(0.2)
        while not stop:
            try:
                s, _ = ls.accept()
            except OSError:
                continue
            try:
                s.settimeout(2)
                t = ctx.wrap_socket(s, server_side=True)
                t.recv(1000)
                t.close()
            except OSError:
                s.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        port = free_port()
        w = weir_factory(config(port, ["127.0.0.1:%d" % bport],
                                cluster_extra="protocol: h2\ntls: { ca: %s, sni: backend.test }\n" % crt))
        r = get(port, "/x")
        assert r.status == 502
        w.wait_log("did not choose h2 in ALPN")
    finally:
        stop.append(1)
        th.join(5)
        ls.close()


def check(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_config_errors(tmp_path):
    r = check(tmp_path, config(free_port(), ["127.0.0.1:9"], cluster_extra="protocol: h2\n"))
    assert r.returncode != 0
    assert "c.yaml:12:15: protocol h2 is HTTP/2 over TLS and needs the cluster's 'tls' map" in r.stderr, r.stderr
    r = check(tmp_path, config(free_port(), ["127.0.0.1:9"], cluster_extra="protocol: h3\n"))
    assert r.returncode != 0 and "c.yaml:12:15:" in r.stderr and "http1" in r.stderr, r.stderr
    r = check(tmp_path, config(free_port(), ["127.0.0.1:9"], cluster_extra="h2_connections: 0\n"))
    assert r.returncode != 0 and "c.yaml:12:" in r.stderr, r.stderr
    r = check(tmp_path, config(free_port(), ["127.0.0.1:9"],
                               cluster_extra="protocol: h2c\nhealth_check: { path: /h }\n"))
    assert r.returncode == 0, r.stderr


HC = "health_check: { path: /health, interval: 200ms, timeout: 200ms, rise: 1, fall: 1, %s }\n"


def test_http_health_check_over_h2c(weir_factory, h2_backend):
    b = h2_backend()
    port = free_port()
    text = lambda hc: config(port, ["127.0.0.1:%d" % b.port], cluster_extra="protocol: h2c\n" + HC % hc)
    w = weir_factory(text("expect_status: 204"))
    w.wait_log(re.escape("is DOWN (1 consecutive checks failed, last: status 200)"))
    assert b.requests[-1]["headers"][":path"] == "/health"
    assert b.requests[-1]["headers"][":method"] == "GET"
    w.reload(text('expect_status: 200, expect_body: "hello /health"'))
    w.wait_log(re.escape("is UP (1 consecutive checks passed)"))
    assert get(port, "/x").status == 200


def test_http_health_check_over_h2_tls(weir_factory, h2_backend, tmp_path):
    crt, key = make_cert(str(tmp_path))
    b = h2_backend(tls_cert=crt, tls_key=key)
    port = free_port()
    extra = "protocol: h2\ntls: { ca: %s, sni: backend.test }\n" % crt
    w = weir_factory(config(port, ["127.0.0.1:%d" % b.port], cluster_extra=extra + HC % "expect_body: nope"))
    w.wait_log(re.escape("is DOWN (1 consecutive checks failed, last: expected body text not found)"))
    assert b.requests[-1]["headers"][":scheme"] == "https"


# ---- gRPC end to end: grpcio client -> weir (http2 listener) -> h2c -> grpcio server ----
@pytest.fixture
def grpc_weir(weir_factory):
    import grpc_backend
    bport = free_port()
    server = grpc_backend.start(bport)
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % bport], cluster_extra="protocol: h2c\n",
                            listener_extra="http2: true\n"))
    yield w, port
    server.stop(0)


def test_grpc_unary(grpc_weir):
    import grpc
    w, port = grpc_weir
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        r, call = ch.unary_unary("/test.Echo/Unary").with_call(b"hi", timeout=10)
        assert r == b"echo:hi"
        assert ("x-trailer", "t1") in tuple(call.trailing_metadata())


def test_grpc_server_streaming(grpc_weir):
    import grpc
    w, port = grpc_weir
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        got = list(ch.unary_stream("/test.Echo/Stream")(b"5", timeout=10))
        assert got == [b"msg-%d" % i for i in range(5)]


def test_grpc_error_status(grpc_weir):
    import grpc
    w, port = grpc_weir
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/test.Echo/Fail")(b"x", timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == "no such thing"


def test_response_timeout_resets_the_stream_only(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b, extra="timeouts: { response: 300ms }\n")
    assert get(port, "/warm").status == 200
    r = get(port, "/slow?ms=600")
    assert r.status == 504
    # the connection outlives the abandoned stream (the backend answers
    # the next one once its sleep is over)
    wait_until(lambda: get(port, "/after").status == 200, what="an answer after the timeout")
    assert b.connections == 1


def test_connect_timeout_applies(weir_factory):
    import socket
    # a listener that never accepts, with its backlog full: connects hang
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(ls.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        port = free_port()
        w = weir_factory(config(port, ["127.0.0.1:%d" % ls.getsockname()[1]],
                                cluster_extra="protocol: h2c\ntimeouts: { connect: 300ms, response: 5s }\n"))
        r = get(port, "/x")
        assert r.status in (502, 504)
        w.wait_log("connect timed out")
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_access_log_and_reload(weir_factory, h2_backend):
    b = h2_backend()
    w, port = h2_weir(weir_factory, b)
    assert get(port, "/one").status == 200
    lines = w.wait_access_lines(1)
    assert '"GET /one HTTP/1.1" 200' in lines[-1] and "127.0.0.1:%d" % b.port in lines[-1]
    w.reload(config(port, ["127.0.0.1:%d" % b.port], cluster_extra="protocol: h2c\nh2_connections: 2\n"))
    assert get(port, "/two").status == 200
    assert b.connections == 1  # the connection is the worker's, kept over the reload


def concurrent_gets(port, paths):
    results = [None] * len(paths)

    def one(i):
        results[i] = get(port, paths[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_streams_wait_for_a_slot_when_connections_are_full(weir_factory, h2_backend):
    b = h2_backend(max_streams=1)
    w, port = h2_weir(weir_factory, b, extra="h2_connections: 1\n")
    get(port, "/warm")  # SETTINGS_MAX_CONCURRENT_STREAMS = 1 is known from here
    results = concurrent_gets(port, ["/slow?ms=200&i=%d" % i for i in range(4)])
    assert all(r is not None and r.status == 200 for r in results)
    assert b.connections == 1  # one connection, one stream at a time, the others waited


def test_two_workers(weir_factory, h2_backend):
    b = h2_backend()
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % b.port], cluster_extra="protocol: h2c\n", workers=2))
    results = concurrent_gets(port, ["/w%d" % i for i in range(16)])
    assert all(r is not None and r.status == 200 and r.body == b"hello /w%d\n" % i for i, r in enumerate(results))
    assert 1 <= b.connections <= 2  # a connection per worker at most


def test_grpc_unavailable_trailers_only_is_retried(weir_factory, h2_backend):
    bad, good = h2_backend(grpc_status=14), h2_backend()
    port = free_port()
    routes = "- cluster: app\n  retry: { attempts: 2, on: [grpc-unavailable] }\n"
    w = weir_factory(config(port, ["127.0.0.1:%d" % bad.port, "127.0.0.1:%d" % good.port],
                            cluster_extra="protocol: h2c\n", routes=routes))
    for _ in range(4):
        got = raw_exchange(port, b"POST /grpc HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\n"
                                 b"TE: trailers\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\0\0\0\0\0")
        assert got.startswith(b"HTTP/1.1 200") and b"grpc-status: 14" not in got.lower(), got
        assert got.endswith(b"0\r\ngrpc-status: 0\r\n\r\n"), got
    assert len(bad.requests) >= 1 and len(good.requests) == 4

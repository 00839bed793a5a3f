"""limits.*: request line, header block, header count and body size."""
import pytest

from conftest import RawClient, Closed, cluster_yaml, free_port

LIMITS = """limits: { request_line: 1k, header_size: 4k, headers: 10, body: 1k }
timeouts: { client_header: 30s }"""


@pytest.fixture
def pair(proxy):
    return proxy(listener_extra=LIMITS)


def send_expect(w, data, status):
    with RawClient(w.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == status, r
        if status >= 400:
            assert c.is_closed()
        return r


def test_request_line_limit(pair):
    w, b = pair
    send_expect(w, b"GET /" + b"a" * 900 + b" HTTP/1.1\r\nHost: weir.test\r\n\r\n", 200)
    send_expect(w, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: weir.test\r\n\r\n", 414)
    assert b.count == 1


def test_request_line_limit_before_line_ends(pair):
    """414 as soon as the bytes prove the line is too long, without waiting for
    the rest (client_header is 30s: a wait would time the read out)."""
    w, b = pair
    with RawClient(w.port, timeout=10) as c:
        c.send(b"GET /" + b"a" * 3000)
        r = c.read_response()
        assert r.status == 414
    assert b.count == 0


def test_header_block_limit(pair):
    w, b = pair
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-Big: " + b"v" * 3000 + b"\r\n\r\n", 200)
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n", 431)
    many_small = b"".join(b"X-%d: " % i + b"v" * 900 + b"\r\n" for i in range(6))
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + many_small + b"\r\n", 431)
    assert b.count == 1


def test_header_block_limit_before_head_ends(pair):
    w, b = pair
    with RawClient(w.port, timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-Big: " + b"v" * 6000)
        r = c.read_response()
        assert r.status == 431
    assert b.count == 0


def test_header_count_limit(pair):
    w, b = pair
    few = b"".join(b"X-%d: v\r\n" % i for i in range(8))
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + few + b"\r\n", 200)
    many = b"".join(b"X-%d: v\r\n" % i for i in range(20))
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + many + b"\r\n", 431)
    assert b.count == 1


def test_default_header_count_limit(proxy):
    """limits.headers defaults to 100."""
    w, b = proxy()
    many = b"".join(b"X-%d: v\r\n" % i for i in range(150))
    send_expect(w, b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + many + b"\r\n", 431)
    assert b.count == 0


def test_content_length_over_body_limit(pair):
    w, b = pair
    send_expect(w, b"POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 1024\r\n\r\n" + b"a" * 1024, 200)
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 2000\r\n\r\n" + b"a" * 100)
        r = c.read_response()
        assert r.status == 413
        assert c.is_closed()
    assert b.count == 1
    assert b.connections == 1


def test_chunked_body_over_limit(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"258\r\n" + b"a" * 600 + b"\r\n258\r\n" + b"b" * 600 + b"\r\n0\r\n\r\n")
        try:
            r = c.read_response()
            assert r.status == 413
            assert c.is_closed()
        except Closed:
            pass  # closing without an answer also stops the upload
    assert b.count == 0  # never a complete request
    assert b"b" * 600 not in b.raw_received()


def test_chunked_body_under_limit(pair):
    w, b = pair
    r = send_expect(w, b"POST / HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"200\r\n" + b"a" * 512 + b"\r\n200\r\n" + b"b" * 512 + b"\r\n0\r\n\r\n", 200)
    assert r.body == b"ok"
    (req,) = b.wait_requests(1)
    assert req.body == b"a" * 512 + b"b" * 512


def test_connection_limit_per_worker(proxy):
    """limits.connections: past it weir stops accepting until a connection
    closes; the waiting client is then served."""
    w, b = proxy(listener_extra="limits: { connections: 2 }")
    c1, c2 = RawClient(w.port), RawClient(w.port)
    try:
        for c in (c1, c2):
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            assert c.read_response().status == 200
        with RawClient(w.port) as c3:
            c3.send(b"GET /third HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            assert not c3.is_closed(timeout=0.5) and c3.buf == b""  # not served yet
            c1.close()
            r = c3.read_response()
            assert r.status == 200
    finally:
        c1.close()
        c2.close()
    assert [r.target for r in b.requests] == ["/", "/", "/third"]


def two_listeners(ports, backend, order=(0, 1)):
    """One worker, listeners a and b (limits.connections 1 each) in `order`."""
    text = "workers: 1\ndrain_timeout: 5s\nlog: { level: info, access: off }\nlisteners:\n"
    for i in order:
        text += ("  - name: %s\n    listen: 127.0.0.1:%d\n    limits: { connections: 1 }\n"
                 "    routes: [ { cluster: app } ]\n" % ("ab"[i], ports[i]))
    return text + "clusters:\n" + "".join("  " + l + "\n" for l in
                                          cluster_yaml("app", [backend.addr]).splitlines())


def ask(port, target):
    """A new connection that has sent GET target."""
    c = RawClient(port)
    c.send(b"GET %s HTTP/1.1\r\nHost: weir.test\r\n\r\n" % target.encode())
    return c


def test_connection_limit_is_per_listener(weir_factory, recording_backend):
    """limits.connections of a listener counts that listener's connections
    only: listener a at its limit does not make b refuse, and a connection
    of b does not count against a."""
    b = recording_backend()
    ports = (free_port(), free_port())
    weir_factory(two_listeners(ports, b), port=ports[0])
    cb = ask(ports[1], "/b1")
    ca = ask(ports[0], "/a1")
    try:
        assert cb.read_response().status == 200
        assert ca.read_response().status == 200  # b's connection is not a's
        with ask(ports[0], "/a2") as ca2:  # a is at its limit now
            assert not ca2.is_closed(timeout=0.5) and ca2.buf == b""
            cb.close()
            with ask(ports[1], "/b2") as cb2:  # b is not held back by a
                assert cb2.read_response().status == 200
            ca.close()
            assert ca2.read_response().status == 200
    finally:
        ca.close()
        cb.close()
    targets = [r.target for r in b.requests]
    # /a1 and /b1 race each other; /b2 must get through while /a2 waits
    assert sorted(targets[:2]) == ["/a1", "/b1"] and targets[2:] == ["/b2", "/a2"]


def test_connection_limit_follows_its_socket_across_reload(weir_factory, recording_backend):
    """A reload that reorders the listeners keeps each connection counted
    against the socket it came from: a stays at its limit while its old
    connection is open, and accepts again once it closes."""
    b = recording_backend()
    ports = (free_port(), free_port())
    w = weir_factory(two_listeners(ports, b), port=ports[0])
    ca = ask(ports[0], "/a1")
    try:
        assert ca.read_response().status == 200
        w.reload(two_listeners(ports, b, order=(1, 0)))
        with ask(ports[1], "/b1") as cb:
            assert cb.read_response().status == 200
        with ask(ports[0], "/a2") as ca2:
            assert not ca2.is_closed(timeout=0.5) and ca2.buf == b""
            ca.close()
            assert ca2.read_response().status == 200
    finally:
        ca.close()
    assert [r.target for r in b.requests] == ["/a1", "/b1", "/a2"]


def test_expect_continue_over_body_limit_gets_413_not_100(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"PUT /big HTTP/1.1\r\nHost: weir.test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 413
        assert c.is_closed()
    assert b.count == 0

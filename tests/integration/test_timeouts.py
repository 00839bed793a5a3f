"""timeouts.*: client header/idle/body timeouts and upstream connect/response
timeouts. Only outcomes are asserted, never durations."""
import socket
import threading

import pytest

from conftest import RawClient, config, free_port, wait_until

CLIENT_TIMEOUTS = "timeouts: { client_header: 1s, client_idle: 1s, client_body: 1s }"


@pytest.fixture
def pair(proxy):
    return proxy(listener_extra=CLIENT_TIMEOUTS)


def test_partial_head_gets_408(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"GET /stalled HTTP/1.1\r\nHost: wei")
        r = c.read_response()
        assert r.status == 408
        assert c.is_closed()
    assert b.count == 0


def test_silent_connection_closed_without_answer(pair):
    w, b = pair
    with RawClient(w.port) as c:
        assert c.is_closed()
        assert c.buf == b""


def test_idle_keep_alive_connection_closed(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200
        assert c.is_closed()  # closed quietly after client_idle, no 408
        assert c.buf == b""


def test_partial_second_request_gets_408(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\nGET /two HTTP/1.1\r\n")
        assert c.read_response().status == 200
        r = c.read_response()
        assert r.status == 408
        assert c.is_closed()
    assert b.count == 1


def test_stalled_request_body_gets_408(pair):
    w, b = pair
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        r = c.read_response()
        assert r.status == 408
        assert c.is_closed()
    assert b.count == 0  # never a complete request


def test_upstream_response_timeout_504(weir_factory, demo_backend):
    d = demo_backend("slow")
    port = free_port()
    w = weir_factory(config(port, [d.addr], cluster_extra="timeouts: { response: 500ms }"))
    with RawClient(w.port) as c:
        c.send(b"GET /slow?ms=3000 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 504
    with RawClient(w.port) as c:
        c.send(b"GET /slow?ms=10 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200


def test_upstream_response_timeout_not_retried(proxy, recording_backend):
    """A request that timed out was seen by the backend: it is not sent again."""
    w, b = proxy("hang", cluster_extra="timeouts: { response: 300ms }")
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 504
    assert b.count == 1


def test_upstream_response_timeout_on_pooled_connection_not_retried(proxy):
    """Nor when the timed-out request went over a reused pooled connection
    (only a pooled connection found closed is sent again)."""
    w, b = proxy(lambda req: "hang" if req.target == "/hang" else {"body": b"ok"},
                 cluster_extra="timeouts: { response: 300ms }")
    with RawClient(w.port) as c:
        c.send(b"GET /first HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET /hang HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 504
    assert [r.target for r in b.requests] == ["/first", "/hang"]
    assert b.connections == 1  # the second request did reuse the pooled connection


def _blackhole():
    """A listening socket whose accept queue is full: the kernel drops further
    SYNs, so a connect to it neither succeeds nor fails."""
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(l.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    # check: a new connect does not complete
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(l.getsockname())
        ok = False
    except (socket.timeout, OSError):
        ok = True
    probe.close()
    return l, fillers, ok


def test_upstream_connect_timeout_504(weir_factory):
    l, fillers, ok = _blackhole()
    try:
        if not ok:
            pytest.skip("cannot make a local blackhole on this kernel")
        port = free_port()
        w = weir_factory(config(port, ["127.0.0.1:%d" % l.getsockname()[1]],
                                cluster_extra="timeouts: { connect: 200ms }"))
        with RawClient(w.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            assert c.read_response().status == 504
    finally:
        for s in fillers:
            s.close()
        l.close()


def test_connect_refused_502(weir_factory):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % free_port()]))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 502
        # the request was read whole: the client connection may go on
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
        assert c.read_response().status == 502


def test_slow_but_steady_response_not_cut(proxy):
    """The response timeout is about silence from the backend: a body that
    keeps coming for longer than the timeout in total is not cut."""
    script = [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"]
    for piece in (b"ab", b"cd", b"ef"):
        script += [0.4, piece]
    w, b = proxy(script, cluster_extra="timeouts: { response: 1s }")
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"abcdef"

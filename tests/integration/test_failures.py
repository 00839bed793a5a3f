"""Backends that are down, die, misbehave or answer garbage."""
import threading

import pytest

from conftest import Closed, RawClient, config, free_port, get, request, wait_until


def test_all_endpoints_down_502(weir_factory):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()]))
    for _ in range(3):
        r = get(w.port)
        assert r.status == 502
        assert r.body == b"502 Bad Gateway\n"


def test_one_of_two_endpoints_down(weir_factory, recording_backend):
    b = recording_backend()
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % free_port(), b.addr]))
    statuses = [get(w.port, "/r%d" % i).status for i in range(20)]
    assert statuses == [200] * 20
    assert b.count == 20


def test_one_of_two_endpoints_down_post_on_connect_failure(weir_factory, recording_backend):
    """A connect failure means the request never left: even a POST is retried."""
    b = recording_backend()
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % free_port(), b.addr]))
    for i in range(6):
        r = request(w.port, b"POST /p HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 3\r\n\r\nabc")
        assert r.status == 200
    assert [r.body for r in b.requests] == [b"abc"] * 6


def test_backend_closes_mid_body(proxy):
    w, b = proxy("close_mid_body")
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        with pytest.raises(Closed) as e:
            c.read_response()
        # the client saw the 10 bytes that came, then the connection ended
        assert e.value.partial == b"x" * 10
    assert b.count == 1


def test_backend_closes_mid_chunked_body(proxy):
    w, b = proxy([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 0.05, "close"])
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        with pytest.raises(Closed):
            c.read_response()


def test_backend_closes_pooled_connection_between_requests(proxy):
    """The backend closes after every answer without saying so: each next
    request finds a dead pooled connection and weir retries on a fresh one."""
    w, b = proxy({"body": b"fine", "close": True})
    with RawClient(w.port) as c:
        for i in range(5):
            c.send(b"GET /%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % i)
            r = c.read_response()
            assert r.status == 200 and r.body == b"fine"
    for i in range(5):
        assert get(w.port, "/n%d" % i).status == 200
    assert b.count == 10
    assert b.connections == 10


def test_backend_closes_pooled_connection_post(proxy):
    """Same for POST: a request sent on a reused pooled connection that turns
    out to be closed is safe to send again."""
    w, b = proxy({"body": b"fine", "close": True})
    for i in range(4):
        r = request(w.port, b"POST /p HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 2\r\n\r\nhi")
        assert r.status == 200
    assert [r.body for r in b.requests] == [b"hi"] * 4


INVALID_RESPONSES = {
    "garbage": b"this is not http\r\n\r\n",
    "bad_status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "http2_status": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "bad_cl": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "nul_in_value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "head_then_close": [b"HTTP/1.1 200 OK\r\nContent-Le", 0.05, "close"],
    "too_many_fields": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(300))
                       + b"Content-Length: 2\r\n\r\nok",
    "head_too_large": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
}


@pytest.mark.parametrize("name", sorted(INVALID_RESPONSES))
def test_invalid_response_502(proxy, name):
    w, b = proxy(INVALID_RESPONSES[name])
    r = get(w.port)
    assert r.status == 502


def test_backend_closes_without_answer_get_retried(weir_factory, recording_backend):
    """An idempotent request whose fresh connection is closed before any answer
    is retried on the other endpoint."""
    bad = recording_backend("close")
    good = recording_backend({"body": b"good"})
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr]))
    for i in range(6):
        r = get(w.port, "/g%d" % i)
        assert r.status == 200 and r.body == b"good"
    assert good.count == 6
    assert bad.count >= 1


def test_retries_without_policy_stop_at_three_attempts(weir_factory, recording_backend):
    """Without a retry policy a GET whose connections are closed before any
    answer is tried at most three times in all, then answered 502."""
    bad = [recording_backend("close") for _ in range(4)]
    port = free_port()
    w = weir_factory(config(port, [b.addr for b in bad]))
    assert get(w.port, "/x").status == 502
    assert sum(b.count for b in bad) == 3


def test_post_reset_on_fresh_connection_not_retried(weir_factory, recording_backend):
    """A POST whose fresh connection dies before the answer may have been acted
    on: weir answers 502 and does not send it to another endpoint."""
    bad = recording_backend("reset")
    good = recording_backend({"body": b"good"})
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr]))
    statuses = []
    for i in range(4):
        r = request(w.port, b"POST /p%d HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 3\r\n\r\nabc" % i)
        statuses.append(r.status)
    # round robin: two went to each endpoint; the bad one's two were not retried
    assert sorted(statuses) == [200, 200, 502, 502]
    assert good.count == 2
    assert bad.count == 2


def test_backend_503_passed_through_not_retried(proxy):
    """Without a retry policy, an HTTP error answer is the answer."""
    w, b = proxy({"status": 503, "reason": "Service Unavailable", "body": b"busy"})
    r = get(w.port)
    assert r.status == 503 and r.body == b"busy"
    assert b.count == 1


def test_max_connections_503(weir_factory, recording_backend):
    release = threading.Event()

    def respond(req):
        if req.target == "/hold":
            release.wait(10)
        return {"body": b"done"}

    b = recording_backend(respond)
    port = free_port()
    w = weir_factory(config(port, [b.addr], cluster_extra="max_connections: 1"))
    held = {}

    def hold():
        held["r"] = get(w.port, "/hold")

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    try:
        wait_until(lambda: b.count == 1, what="held request at the backend")
        r = get(w.port, "/other")
        assert r.status == 503
        assert r.header("Retry-After") == "1"
    finally:
        release.set()
        t.join(10)
    assert held["r"].status == 200 and held["r"].body == b"done"
    assert get(w.port, "/later").status == 200
    assert [r.target for r in b.requests] == ["/hold", "/later"]


def test_backend_answers_before_body_complete(weir_factory, recording_backend):
    """A backend may answer (e.g. 413) before reading the whole upload: the
    client gets that answer and the connection is closed (it cannot resync)."""
    b = recording_backend({"status": 413, "reason": "Payload Too Large", "body": b"too big"},
                          answer_before_body=True)
    port = free_port()
    w = weir_factory(config(port, [b.addr]))
    with RawClient(w.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
        r = c.read_response()
        assert r.status == 413 and r.body == b"too big"
        try:
            c.send(b"a" * 1000)
        except OSError:
            pass
        assert c.is_closed()


# ---- upstream connections that must not be reused ------------------------------


def test_client_aborts_mid_body(proxy):
    """A client that leaves halfway through its body: the backend never gets a
    complete request, and the half-written upstream connection is not reused."""
    w, b = proxy(lambda req: {"body": req.target.encode()})
    with RawClient(w.port) as c:
        c.send(b"POST /partial HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        wait_until(lambda: len(b.raw_received()) > 0, what="head at the backend")
    wait_until(lambda: b.errors, what="backend to see its connection end")
    r = get(w.port, "/next")
    assert r.status == 200 and r.body == b"/next"
    assert [r.target for r in b.requests] == ["/next"]
    assert b.connections == 2


def test_client_gone_before_response(proxy):
    """The client closes while its answer is on the way: the next client gets
    its own answer, never the abandoned one."""
    w, b = proxy(lambda req: {"body": req.target.encode(), "delay": 0.3 if req.target == "/slow" else 0})
    c = RawClient(w.port)
    c.send(b"GET /slow HTTP/1.1\r\nHost: weir.test\r\n\r\n")
    wait_until(lambda: b.count == 1, what="slow request at the backend")
    c.close()
    for i in range(3):
        r = get(w.port, "/fast%d" % i)
        assert r.status == 200 and r.body == b"/fast%d" % i


def test_backend_connection_close_not_pooled(proxy):
    w, b = proxy({"body": b"bye", "headers": [("Connection", "close")], "close": True})
    with RawClient(w.port) as c:
        for _ in range(3):
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"bye"
            assert not r.has("Connection") or r.header("Connection").lower() != "close"
    assert b.connections == 3


def test_extra_bytes_after_response_not_reused(proxy):
    """Bytes after a complete response (here a whole unsolicited response)
    make the connection unusable: they never reach another request."""
    w, b = proxy(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
    for _ in range(4):
        r = get(w.port)
        assert r.status == 200 and r.body == b"ok"
    assert b.count == 4


def test_late_unsolicited_bytes_on_idle_connection(proxy):
    """Unsolicited bytes that arrive while the connection idles in the pool
    get it dropped; the next request uses a fresh connection."""
    w, b = proxy([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0.05,
                  b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"])
    r = get(w.port)
    assert r.status == 200 and r.body == b"ok"
    wait_until(lambda: b.connections == 1 and b.count == 1, what="first exchange")
    import time
    time.sleep(0.5)  # let the unsolicited bytes reach weir's idle pool
    r = get(w.port)
    assert r.status == 200 and r.body == b"ok"
    assert b.connections == 2


def test_bad_chunked_response_body(proxy):
    """Broken chunk framing from the backend: the client's connection ends
    (the status line was already sent), the upstream connection is not reused."""
    w, b = proxy(lambda req: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"
                 if req.target == "/bad" else {"body": b"good"})
    with RawClient(w.port) as c:
        c.send(b"GET /bad HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        with pytest.raises(Closed):
            c.read_response()
    r = get(w.port, "/next")
    assert r.status == 200 and r.body == b"good"
    assert b.connections == 2


def test_response_transfer_coding_other_than_chunked(proxy):
    """A backend answering with Transfer-Encoding: gzip, chunked: the client
    must not get the gzip bytes as if they were the plain body. Either the
    coding is kept (HTTP/1.1 client) or weir refuses the response (502)."""
    import gzip
    gz = gzip.compress(b"hello world")
    w, b = proxy(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(gz), gz))
    r = get(w.port)
    if r.status != 502:
        assert r.status == 200
        assert "gzip" in (r.header("Transfer-Encoding") or ""), r

"""HTTP trailers end to end: a chunked backend's trailer fields reach a
chunked HTTP/1.1 client (byte exact) and an HTTP/2 client (a trailer
HEADERS frame); a client's request trailers (chunked HTTP/1.1, or an h2
trailing HEADERS) reach the backend; fields that must not be trailers are
dropped, an oversize section is dropped whole, HTTP/1.0 clients get none;
TE: trailers reaches the backend."""
import socket

import h2.config
import h2.connection
import h2.events

from conftest import IO_TIMEOUT, RawClient, config, free_port
from test_http2 import metric

# Forbidden as trailers (RFC 9110 6.5.1): weir drops them.
FORBIDDEN = (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nAuthorization: x\r\n"
             b"Set-Cookie: a=b\r\nContent-Type: text/evil\r\nTrailer: X\r\nConnection: close\r\n")


def chunked_answer(trailers, body=b"hello"):
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\n" + trailers + b"\r\n")


def body_bytes(raw):
    """What follows the response head in raw."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw
    return rest


def dechunk(raw):
    """(data, trailer section bytes) of a whole chunked body, as framed by weir."""
    data, i = b"", 0
    while True:
        eol = raw.index(b"\r\n", i)
        size = int(raw[i:eol].split(b";")[0], 16)
        i = eol + 2
        if size == 0:
            assert raw.endswith(b"\r\n\r\n") or raw[i:] == b"\r\n", raw[i:i + 100]
            return data, raw[i:-2]
        data += raw[i:i + size]
        assert raw[i + size:i + size + 2] == b"\r\n"
        i += size + 2


def start_proxy(weir_factory, recording_backend, respond, listener_extra=""):
    b = recording_backend(respond)
    port = free_port()
    w = weir_factory(config(port, [b.addr], listener_extra=listener_extra))
    return w, b


# ---- responses, HTTP/1.x -------------------------------------------------------


def test_response_trailers_reach_chunked_client_byte_exact(weir_factory, recording_backend):
    trailers = b"X-Checksum: abc123\r\ngrpc-status:0\r\n" + FORBIDDEN + b"grpc-message: all good \r\n"
    w, b = start_proxy(weir_factory, recording_backend, chunked_answer(trailers))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = c.read_all()
    assert body_bytes(raw) == (b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\ngrpc-status:0\r\n"
                               b"grpc-message: all good \r\n\r\n")


def test_response_trailers_on_a_kept_connection(weir_factory, recording_backend):
    """Each answer of a persistent connection gets its own trailers, and
    an answer without any gets none (nothing left over from the last)."""
    answers = [chunked_answer(b"X-N: 1\r\n"), chunked_answer(b""), chunked_answer(b"X-N: 3\r\n")]
    w, b = start_proxy(weir_factory, recording_backend, lambda req: answers[b.count - 1])
    with RawClient(w.port) as c:
        for want in (b"0\r\nX-N: 1\r\n\r\n", b"0\r\n\r\n", b"0\r\nX-N: 3\r\n\r\n"):
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            for _ in range(1000):  # bounded: each turn reads bytes or ends
                if c.buf.endswith(b"5\r\nhello\r\n" + want) or not c._more():
                    break
            assert body_bytes(c.buf) == b"5\r\nhello\r\n" + want
            c.buf = b""


def test_response_trailers_dropped_for_http10_client(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, chunked_answer(b"X-Checksum: abc\r\n"))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        raw = c.read_all()
    assert body_bytes(raw) == b"hello"


def test_response_trailers_oversize_dropped_whole(weir_factory, recording_backend):
    """Over 16 KiB of trailers: the answer ends without any; the connection stays usable."""
    big = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 2000) for i in range(9))  # ~18 KiB
    answers = [chunked_answer(big + b"X-Last: 1\r\n"), chunked_answer(b"X-Small: 1\r\n")]
    w, b = start_proxy(weir_factory, recording_backend, lambda req: answers[b.count - 1])
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        c.read_response()
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        second = c.read_all()
    assert body_bytes(second) == b"5\r\nhello\r\n0\r\nX-Small: 1\r\n\r\n"
    w.wait_log("trailer section over 16384 bytes")
    # the first answer, byte exact: no trailer line at all
    w2, b2 = start_proxy(weir_factory, recording_backend, chunked_answer(big))
    with RawClient(w2.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert body_bytes(c.read_all()) == b"5\r\nhello\r\n0\r\n\r\n"


def test_response_trailers_just_under_the_limit_pass(weir_factory, recording_backend):
    trailers = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1990) for i in range(8))
    assert len(trailers) <= 16384
    body = b"x" * (1 << 20)  # many buffers of body before the section
    w, b = start_proxy(weir_factory, recording_backend, chunked_answer(trailers, body=body))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data, section = dechunk(body_bytes(c.read_all()))
    assert data == body and section == trailers


def test_response_trailers_through_compress(weir_factory, recording_backend):
    """A compressed (re-framed) answer keeps its trailers."""
    import gzip
    body = b"text " * 2000
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\nX-Checksum: abc\r\n\r\n")
    b = recording_backend(answer)
    port = free_port()
    w = weir_factory(config(port, [b.addr], routes="- cluster: app\n  compress: { algorithms: [gzip] }\n"))
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        raw = c.read_all()
    assert b"content-encoding: gzip" in raw.partition(b"\r\n\r\n")[0].lower()
    data, section = dechunk(body_bytes(raw))
    assert gzip.decompress(data) == body and section == b"X-Checksum: abc\r\n"


# ---- requests, HTTP/1.1 ----------------------------------------------------------


def test_request_trailers_reach_backend(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, {})
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\nwiki\r\n0\r\nX-Sum: 42\r\n" + FORBIDDEN + b"X-Other:  v \r\n\r\n")
        assert c.read_response().status == 200
    (req,) = b.wait_requests(1)
    assert req.body == b"wiki"
    assert req.raw.endswith(b"\r\n\r\n4\r\nwiki\r\n0\r\nX-Sum: 42\r\nX-Other:  v \r\n\r\n"), req.raw


def test_request_without_trailers_unchanged(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, {})
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n")
        assert c.read_response().status == 200
    (req,) = b.wait_requests(1)
    assert req.raw.endswith(b"\r\n\r\n4\r\nwiki\r\n0\r\n\r\n"), req.raw


def test_request_trailers_oversize_dropped(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, {})
    big = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 2000) for i in range(9))
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n"
               + big + b"\r\n")
        assert c.read_response().status == 200
    (req,) = b.wait_requests(1)
    assert req.raw.endswith(b"\r\n\r\n4\r\nwiki\r\n0\r\n\r\n"), req.raw[-200:]


def test_request_trailers_after_a_large_body(weir_factory, recording_backend):
    """A body of many buffers (ending with a large chunk), then a section
    just under the limit: it arrives whole after the body."""
    w, b = start_proxy(weir_factory, recording_backend, {})
    trailers = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1990) for i in range(8))
    body = b"".join(b"%x\r\n%s\r\n" % (4000, bytes([65 + i % 26]) * 4000) for i in range(44))
    body += b"%x\r\n%s\r\n" % (24000, b"z" * 24000)
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n"
               + trailers + b"\r\n")
        assert c.read_response().status == 200
    (req,) = b.wait_requests(1)
    assert len(req.body) == 200000 and req.body.endswith(b"z" * 24000)
    assert req.raw.endswith(b"0\r\n" + trailers + b"\r\n"), req.raw[-300:]


def test_request_trailers_sent_again_on_retry(weir_factory, recording_backend):
    bad = recording_backend({"status": 503})
    good = recording_backend({})
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr], routes="""
- cluster: app
  retry: { attempts: 2, on: [503], methods: all, backoff: { base: 1ms, max: 1ms } }
"""))
    for _ in range(4):
        with RawClient(w.port) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\nwiki\r\n0\r\nX-Sum: 42\r\n\r\n")
            assert c.read_response().status == 200
    assert bad.count >= 1 and good.count == 4
    for req in bad.requests + good.requests:
        assert req.raw.endswith(b"4\r\nwiki\r\n0\r\nX-Sum: 42\r\n\r\n"), req.raw


def test_te_trailers_reaches_backend(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, {})
    with RawClient(w.port) as c:
        c.send(b"POST /svc HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: TE\r\nContent-Length: 0\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTE: gzip\r\nConnection: TE\r\n\r\n")
        assert c.read_response().status == 200
    first, second = b.wait_requests(2)
    assert first.header_all("TE") == ["trailers"]
    assert "te" in first.header("Connection").lower()
    assert not second.has("TE")


# ---- HTTP/2 clients -------------------------------------------------------------


class H2:
    """A python3-h2 client connection (h2c prior knowledge)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.c.initiate_connection()
        self.sock.sendall(self.c.data_to_send())

    def exchange(self, method, path, headers=(), body=b"", trailers=None):
        """One stream; returns dict(status, headers, body, trailers)."""
        sid = self.c.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "t")] + list(headers)
        self.c.send_headers(sid, hdrs, end_stream=not body and not trailers)
        if body:
            self.c.send_data(sid, body, end_stream=not trailers)
        if trailers:
            self.c.send_headers(sid, trailers, end_stream=True)
        self.sock.sendall(self.c.data_to_send())
        r = {"status": None, "headers": {}, "body": b"", "trailers": None}
        for _ in range(10000):  # bounded: each turn reads at least a byte or raises
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("weir closed the connection")
            for ev in self.c.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    r["status"] = int(dict(ev.headers)[":status"])
                    r["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    r["trailers"] = list(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.sock.sendall(self.c.data_to_send())
                    return r
                elif isinstance(ev, h2.events.StreamReset):
                    raise ConnectionError("stream reset %s" % ev.error_code)
            self.sock.sendall(self.c.data_to_send())
        raise AssertionError("no end of stream")

    def close(self):
        self.sock.close()


def test_h2_client_gets_trailer_headers_frame(weir_factory, recording_backend):
    trailers = b"X-Checksum: abc123\r\ngrpc-status: 0\r\n" + FORBIDDEN
    w, b = start_proxy(weir_factory, recording_backend, chunked_answer(trailers), listener_extra="http2: true")
    c = H2(w.port)
    try:
        r = c.exchange("GET", "/")
        assert r["status"] == 200 and r["body"] == b"hello"
        assert r["trailers"] == [("x-checksum", "abc123"), ("grpc-status", "0")]
        # and none when the backend sends none
        b.respond = chunked_answer(b"")
        r = c.exchange("GET", "/")
        assert r["body"] == b"hello" and r["trailers"] is None
    finally:
        c.close()


def test_h2_request_trailers_and_te_reach_backend(weir_factory, recording_backend):
    w, b = start_proxy(weir_factory, recording_backend, {}, listener_extra="http2: true")
    c = H2(w.port)
    try:
        r = c.exchange("POST", "/svc", headers=[("te", "trailers"), ("content-type", "application/grpc")],
                       body=b"wiki", trailers=[("x-sum", "42"), ("authorization", "no"), ("x-other", "v")])
        assert r["status"] == 200
    finally:
        c.close()
    (req,) = b.wait_requests(1)
    assert req.body == b"wiki"
    assert req.header_all("TE") == ["trailers"]
    assert req.raw.endswith(b"0\r\nx-sum: 42\r\nx-other: v\r\n\r\n"), req.raw


# ---- retries on grpc-status --------------------------------------------------------

GRPC_CT = ("content-type", "application/grpc")


def trailers_only(code):
    """A gRPC Trailers-Only answer: grpc-status in the head, no body."""
    return {"status": 200, "headers": [GRPC_CT, ("grpc-status", str(code))], "body": b""}


def grpc_ok_with_trailers():
    body = b"\x00\x00\x00\x00\x02hi"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n")


def grpc_call(port):
    """One unary gRPC-ish call over HTTP/1.1: (status, head fields dict, raw body)."""
    msg = b"\x00\x00\x00\x00\x03abc"
    with RawClient(port) as c:
        c.send(b"POST /pkg.Svc/Get HTTP/1.1\r\nHost: t\r\ncontent-type: application/grpc\r\nTE: trailers\r\n"
               b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(msg) + msg)
        raw = c.read_all()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        n, _, v = line.partition(b":")
        fields[n.decode().lower()] = v.strip().decode()
    return int(lines[0].split(b" ")[1]), fields, body


def grpc_weir(weir_factory, backends, retry):
    port = free_port()
    routes = "- cluster: app\n" + ("  retry: %s\n" % retry if retry else "")
    return weir_factory(config(port, [b.addr for b in backends], routes=routes))


def test_grpc_unavailable_retried_on_the_other_endpoint(weir_factory, recording_backend):
    bad = recording_backend(trailers_only(14))
    good = recording_backend(grpc_ok_with_trailers())
    w = grpc_weir(weir_factory, [bad, good],
                  "{ attempts: 2, on: [grpc-unavailable], backoff: { base: 1ms, max: 1ms } }")
    for _ in range(6):  # round robin: some first attempts go to `bad`
        status, fields, body = grpc_call(w.port)
        assert status == 200 and "grpc-status" not in fields, fields
        assert body.endswith(b"0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"), body
    assert bad.count >= 1
    # the retried request reached `good` whole, TE: trailers included
    assert all(r.body == b"\x00\x00\x00\x00\x03abc" and r.header("TE") == "trailers" for r in good.requests)
    w.wait_log(r"grpc-status 14, retrying")


def test_grpc_status_not_listed_is_not_retried(weir_factory, recording_backend):
    bad = recording_backend(trailers_only(14))
    good = recording_backend(grpc_ok_with_trailers())
    for retry in (None, "{ attempts: 2, on: [grpc-internal, 5xx], backoff: { base: 1ms, max: 1ms } }"):
        w = grpc_weir(weir_factory, [bad, good], retry)
        got = [grpc_call(w.port)[1].get("grpc-status") for _ in range(4)]
        assert got.count("14") == 2 and got.count(None) == 2, got  # round robin, nothing retried
    assert bad.count == 4 and good.count == 4


def test_grpc_retries_stop_at_the_limit(weir_factory, recording_backend):
    a = recording_backend(trailers_only(8))
    b = recording_backend(trailers_only(8))
    port, aport = free_port(), free_port()
    w = weir_factory(config(port, [a.addr, b.addr], top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport,
                            routes="""
- cluster: app
  retry: { attempts: 3, on: [grpc-resource-exhausted], backoff: { base: 1ms, max: 1ms } }
"""), port=port)
    status, fields, body = grpc_call(w.port)
    assert status == 200 and fields.get("grpc-status") == "8"  # the last attempt's answer
    assert a.count + b.count == 3
    assert metric(aport, "weir_upstream_retries_total", cluster="app", reason="grpc") == 2


def test_grpc_status_in_real_trailers_is_not_retried(weir_factory, recording_backend):
    """After a body the answer is the client's: grpc-status 14 in trailers goes through."""
    body = b"\x00\x00\x00\x00\x02hi"
    late = (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\ngrpc-status: 14\r\n\r\n")
    a = recording_backend(late)
    b = recording_backend(late)
    w = grpc_weir(weir_factory, [a, b], "{ attempts: 3, on: [grpc-unavailable], backoff: { base: 1ms, max: 1ms } }")
    status, fields, raw = grpc_call(w.port)
    assert raw.endswith(b"0\r\ngrpc-status: 14\r\n\r\n")
    assert a.count + b.count == 1


def test_grpc_retry_over_h2(weir_factory, recording_backend):
    bad = recording_backend(trailers_only(14))
    good = recording_backend(grpc_ok_with_trailers())
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr], listener_extra="http2: true", routes="""
- cluster: app
  retry: { attempts: 2, on: [grpc-unavailable], backoff: { base: 1ms, max: 1ms } }
"""))
    c = H2(w.port)
    try:
        for _ in range(4):
            r = c.exchange("POST", "/pkg.Svc/Get", headers=[GRPC_CT, ("te", "trailers")],
                           body=b"\x00\x00\x00\x00\x03abc")
            assert r["status"] == 200 and "grpc-status" not in r["headers"]
            assert r["trailers"] == [("grpc-status", "0"), ("grpc-message", "ok")]
    finally:
        c.close()
    assert bad.count >= 1

"""HTTP/1.1 proxying: methods, bodies, keep-alive, pipelining, header handling,
response framing and upgrades, checked at the client and at the backend."""
import hashlib
import re
import socket
import threading

from conftest import RawClient, config, free_port, get, request, wait_until


def test_get_reaches_backend_unchanged(proxy):
    w, b = proxy({"body": b"hello", "headers": [("X-From", "backend")]})
    r = get(w.port, "/a/b?x=1&y=%20z", headers="Accept: text/plain\r\nX-Custom: v1\r\n")
    assert r.status == 200
    assert r.body == b"hello"
    assert r.header("X-From") == "backend"
    (req,) = b.wait_requests(1)
    assert req.request_line == "GET /a/b?x=1&y=%20z HTTP/1.1"
    assert req.header("Host") == "weir.test"
    assert req.header("Accept") == "text/plain"
    assert req.header("X-Custom") == "v1"
    assert req.body == b""
    assert not req.has("Content-Length") and not req.has("Transfer-Encoding")


def test_absolute_form_target_becomes_origin_form(proxy):
    w, b = proxy()
    r = request(w.port, b"GET http://weir.test/p?q=1 HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.request_line == "GET /p?q=1 HTTP/1.1"
    assert req.header("Host") == "weir.test"


def test_absolute_form_without_query(proxy):
    w, b = proxy()
    r = request(w.port, b"GET http://weir.test/p HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.request_line == "GET /p HTTP/1.1"


def test_http10_without_host_gets_host_field(proxy):
    """The backend always gets HTTP/1.1, which requires a Host field."""
    w, b = proxy()
    r = request(w.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.request_line == "GET /old HTTP/1.1"
    assert req.header_all("Host") == [""]


def test_post_empty_body_keeps_content_length_zero(proxy):
    w, b = proxy()
    r = request(w.port, b"POST /empty HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.header_all("Content-Length") == ["0"]
    assert req.body == b""


def test_head_has_no_body_and_connection_stays_usable(proxy):
    w, b = proxy({"body": b"0123456789"})
    with RawClient(w.port) as c:
        c.send(b"HEAD /h HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response(head_request=True)
        assert r.status == 200
        assert r.header("Content-Length") == "10"
        c.send(b"GET /g HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"0123456789"
    reqs = b.wait_requests(2)
    assert [r.method for r in reqs] == ["HEAD", "GET"]


def test_head_with_chunked_response_head(proxy):
    """A HEAD answer announcing chunked carries no body: nothing is waited
    for and the connection goes on."""
    w, b = proxy(lambda req: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" if req.method == "HEAD"
                 else {"body": b"get"})
    with RawClient(w.port) as c:
        c.send(b"HEAD / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response(head_request=True)
        assert r.status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"get"


def test_post_content_length(proxy):
    w, b = proxy({"status": 201, "reason": "Created", "body": b"made"})
    body = bytes(range(256)) * 40
    r = request(w.port, b"POST /items HTTP/1.1\r\nHost: weir.test\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert r.status == 201 and r.body == b"made"
    (req,) = b.wait_requests(1)
    assert req.method == "POST"
    assert req.body == body
    assert req.header_all("Content-Length") == [str(len(body))]
    assert not req.has("Transfer-Encoding")


def test_chunked_request_body(proxy):
    w, b = proxy()
    chunks = [b"hello ", b"chunked " * 100, b"w", b"orld" * 3000]
    wire = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"
    r = request(w.port, b"POST /up HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n" + wire)
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.body == b"".join(chunks)
    has_cl, has_te = req.has("Content-Length"), req.has("Transfer-Encoding")
    assert has_cl != has_te, req.headers
    if has_te:
        assert req.header_all("Transfer-Encoding") == ["chunked"]
    else:
        assert req.header("Content-Length") == str(len(req.body))


def test_chunked_request_body_sent_byte_by_byte_pieces(proxy):
    w, b = proxy()
    wire = b"5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n"
    with RawClient(w.port) as c:
        c.send(b"POST /slowly HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(wire), 3):
            c.send(wire[i:i + 3])
        r = c.read_response()
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.body == b"abcdefgh"


def _stream_response(sock, buf, sink):
    """Reads one response head from sock (buf: bytes already read), then feeds the
    body to sink(bytes) as it arrives. Returns (status, headers dict, body length)."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(1 << 16)
        assert d, "closed before the response head"
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        n, _, v = l.partition(":")
        headers[n.strip().lower()] = v.strip()
    total = 0
    if "content-length" in headers:
        need = int(headers["content-length"])
        if rest:
            sink(rest[:need])
            total += len(rest[:need])
        while total < need:
            d = sock.recv(1 << 20)
            assert d, "closed after %d of %d body bytes" % (total, need)
            d = d[:need - total]
            sink(d)
            total += len(d)
    else:
        assert headers.get("transfer-encoding") == "chunked", headers
        data = rest
        while True:
            while b"\r\n" not in data:
                d = sock.recv(1 << 20)
                assert d, "closed inside a chunked body"
                data += d
            line, data = data.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            while len(data) < size + 2:
                d = sock.recv(1 << 20)
                assert d, "closed inside a chunk"
                data += d
            sink(data[:size])
            total += size
            data = data[size + 2:]
    return status, headers, total


def test_large_upload_echo_64mb(weir_factory, demo_backend):
    d = demo_backend("echo")
    port = free_port()
    w = weir_factory(config(port, [d.addr]))
    size = 64 * 1024 * 1024
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, not uniform
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    sock = socket.create_connection(("127.0.0.1", w.port), timeout=60)
    sock.settimeout(60)
    errors = []

    def sender():
        try:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: weir.test\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(block)):
                sock.sendall(block)
                sent_hash.update(block)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        status, headers, total = _stream_response(sock, b"", got_hash.update)
    finally:
        t.join(60)
        sock.close()
    assert not errors
    assert status == 200
    assert total == size
    assert got_hash.digest() == sent_hash.digest()


def test_large_download_50mb(weir_factory, demo_backend):
    d = demo_backend("bytes")
    port = free_port()
    w = weir_factory(config(port, [d.addr]))
    n = 50_000_000
    counts = {"x": 0, "other": 0}

    def sink(data):
        x = data.count(b"x")
        counts["x"] += x
        counts["other"] += len(data) - x

    sock = socket.create_connection(("127.0.0.1", w.port), timeout=60)
    sock.settimeout(60)
    try:
        sock.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % n)
        status, headers, total = _stream_response(sock, b"", sink)
        # the connection is still usable afterwards
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
        status2, _, _ = _stream_response(sock, b"", lambda d: None)
    finally:
        sock.close()
    assert status == 200 and total == n
    assert counts == {"x": n, "other": 0}
    assert status2 == 200


def test_keep_alive_reuses_upstream_connection(proxy):
    w, b = proxy(lambda req: {"body": req.target.encode()})
    with RawClient(w.port) as c:
        for i in range(6):
            c.send(b"GET /k%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % i)
            r = c.read_response()
            assert r.status == 200 and r.body == b"/k%d" % i
            assert r.header("Connection") != "close"
    reqs = b.wait_requests(6)
    assert [r.target for r in reqs] == ["/k%d" % i for i in range(6)]
    assert b.connections < 6
    assert b.connections == 1  # workers: 1, sequential requests: one pooled connection


def test_pooled_connection_shared_across_client_connections(proxy):
    w, b = proxy()
    for _ in range(4):
        assert get(w.port).status == 200
    b.wait_requests(4)
    assert b.connections == 1


def test_pipelining_answers_in_order(proxy):
    w, b = proxy(lambda req: {"body": ("body of " + req.target).encode()})
    with RawClient(w.port) as c:
        c.send(b"GET /one HTTP/1.1\r\nHost: weir.test\r\n\r\n"
               b"POST /two HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /three HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
        bodies = [c.read_response().body for _ in range(3)]
        assert c.is_closed()
    assert bodies == [b"body of /one", b"body of /two", b"body of /three"]
    reqs = b.wait_requests(3)
    assert [r.target for r in reqs] == ["/one", "/two", "/three"]
    assert reqs[1].body == b"abc"


def test_http10_client_closes_by_default(proxy):
    w, b = proxy({"body": b"ten"})
    with RawClient(w.port) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ten"
        assert c.is_closed()
    (req,) = b.wait_requests(1)
    assert req.header("Via") == "1.0 weir"


def test_http10_keep_alive(proxy):
    w, b = proxy({"body": b"ten"})
    with RawClient(w.port) as c:
        c.send(b"GET /a HTTP/1.0\r\nHost: weir.test\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ten"
        assert (r.header("Connection") or "").lower() == "keep-alive"
        c.send(b"GET /b HTTP/1.0\r\nHost: weir.test\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"ten"
        assert c.is_closed()


def test_expect_100_continue(proxy):
    w, b = proxy({"body": b"got it"})
    with RawClient(w.port) as c:
        c.send(b"PUT /file HTTP/1.1\r\nHost: weir.test\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        interim = c.read_response(skip_1xx=False)
        assert interim.status == 100
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200 and r.body == b"got it"
    (req,) = b.wait_requests(1)
    assert req.body == b"hello world"


def test_expect_100_continue_chunked(proxy):
    w, b = proxy()
    with RawClient(w.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: weir.test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert c.read_response(skip_1xx=False).status == 100
        c.send(b"4\r\nwiki\r\n0\r\n\r\n")
        assert c.read_response().status == 200
    (req,) = b.wait_requests(1)
    assert req.body == b"wiki"


def test_unknown_expectation_417(proxy):
    w, b = proxy()
    with RawClient(w.port) as c:
        c.send(b"PUT /file HTTP/1.1\r\nHost: weir.test\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx")
        r = c.read_response()
    assert r.status == 417
    assert b.count == 0


def test_hop_by_hop_request_headers_not_forwarded(proxy):
    w, b = proxy()
    r = request(w.port, b"GET / HTTP/1.1\r\nHost: weir.test\r\nConnection: Foo, keep-alive\r\nFoo: secret\r\n"
                b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n"
                b"Upgrade-Insecure-Requests: 1\r\nX-Keep: yes\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    for name in ("Foo", "Keep-Alive", "Proxy-Connection"):
        assert not req.has(name), (name, req.headers)
    assert req.header_all("TE") == ["trailers"]  # kept: gRPC needs it (test_trailers.py)
    assert req.header("X-Keep") == "yes"
    assert req.header("Upgrade-Insecure-Requests") == "1"
    assert "foo" not in (req.header("Connection") or "").lower()


def test_hop_by_hop_response_headers_not_forwarded(proxy):
    w, b = proxy({"headers": [("Connection", "Bar"), ("Bar", "x"), ("Keep-Alive", "timeout=5"),
                              ("X-End", "1")]})
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
        assert not r.has("Bar") and not r.has("Keep-Alive")
        assert r.header("X-End") == "1"
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200


def test_forwarding_headers_added(proxy):
    w, b = proxy()
    assert get(w.port, "/", host="shop.example:8443").status == 200
    (req,) = b.wait_requests(1)
    assert req.header_all("X-Forwarded-For") == ["127.0.0.1"]
    assert req.header("X-Forwarded-Proto") == "http"
    assert req.header("X-Forwarded-Host") == "shop.example:8443"
    assert req.header("Via") == "1.1 weir"
    rid = req.header_all("X-Request-Id")
    assert len(rid) == 1 and re.fullmatch(r"[0-9a-f]{32}", rid[0]), rid


def test_forwarding_headers_appended(proxy):
    w, b = proxy()
    assert get(w.port, "/", headers="X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
                                    "Via: 1.0 edge\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
                                    "X-Request-Id: abc-123\r\n").status == 200
    (req,) = b.wait_requests(1)
    assert req.header_all("X-Forwarded-For") == ["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"]
    assert req.header_all("Via") == ["1.0 edge, 1.1 weir"]
    assert req.header_all("X-Forwarded-Proto") == ["http"]
    assert req.header_all("X-Forwarded-Host") == ["weir.test"]
    assert req.header_all("X-Request-Id") == ["abc-123"]


def test_request_ids_differ(proxy):
    w, b = proxy()
    for _ in range(5):
        get(w.port)
    ids = [r.header("X-Request-Id") for r in b.wait_requests(5)]
    assert len(set(ids)) == 5


def test_204_and_304_have_no_body(proxy):
    answers = {"/204": {"status": 204, "reason": "No Content", "body": b""},
               "/304": {"status": 304, "reason": "Not Modified", "body": b"",
                        "headers": [("ETag", '"v1"'), ("Content-Length", "10")]}}
    w, b = proxy(lambda req: answers.get(req.target, {"body": b"after"}))
    with RawClient(w.port) as c:
        c.send(b"DELETE /204 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 204
        assert not r.has("Transfer-Encoding")
        assert r.header("Content-Length") in (None, "0")
        c.send(b"GET /304 HTTP/1.1\r\nHost: weir.test\r\nIf-None-Match: \"v1\"\r\n\r\n")
        r = c.read_response()
        assert r.status == 304 and r.header("ETag") == '"v1"'
        assert not r.has("Transfer-Encoding")
        # no stray body bytes: the next answer on the connection parses
        c.send(b"GET /next HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"after"


def test_chunked_response_relayed(proxy):
    body = b"".join(b"line %d\n" % i for i in range(2000))
    w, b = proxy({"body": body, "chunked": True, "chunk_size": 333})
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == body
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().body == body


def test_chunked_response_to_http10_client(proxy):
    body = b"abc" * 1000
    w, b = proxy({"body": body, "chunked": True})
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.0\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert not r.has("Transfer-Encoding")
        assert r.body == body
        assert c.is_closed()


def test_close_delimited_response_becomes_chunked(proxy):
    body = b"no length here " * 500
    w, b = proxy({"body": body, "no_length": True})
    with RawClient(w.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.body == body
        # the client connection survives the upstream close
        c.send(b"GET /b HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == body
    assert b.connections == 2


def test_http10_backend(proxy):
    """An HTTP/1.0 backend that ends its body by closing: the HTTP/1.1 client
    gets it chunked and keeps its connection."""
    w, b = proxy([b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nold backend", "close"])
    with RawClient(w.port) as c:
        for _ in range(2):
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"old backend" and r.header("X-A") == "1"
    assert b.connections == 2


def test_upgrade_tunnel(proxy):
    w, b = proxy("upgrade")
    with RawClient(w.port) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: weir.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 101
        assert (r.header("Upgrade") or "").lower() == "websocket"
        for msg in (b"ping", b"\x00\x01\x02binary\xff", b"z" * 100000):
            c.send(msg)
            got = b""
            while len(got) < len(msg):
                assert c._more(), "tunnel closed"
                got, c.buf = got + c.buf, b""
            assert got == msg
    (req,) = b.wait_requests(1)
    assert (req.header("Upgrade") or "").lower() == "websocket"
    assert "upgrade" in (req.header("Connection") or "").lower()
    assert req.header("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ=="


def test_interim_103_relayed(proxy):
    w, b = proxy(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    with RawClient(w.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 103 and r.header("Link") == "</s.css>; rel=preload"
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"


def test_unrouted_request_404(weir_factory, recording_backend):
    b = recording_backend()
    port = free_port()
    w = weir_factory(config(port, [b.addr], routes="- match: { path_prefix: /api/ }\n  cluster: app"))
    assert get(w.port, "/api/x").status == 200
    r = get(w.port, "/other")
    assert r.status == 404
    assert b.count == 1


def test_concurrent_clients(weir_factory, demo_backend):
    """Many clients at once over two workers: every answer is the right one."""
    demos = [demo_backend("c%d" % i) for i in range(3)]
    port = free_port()
    w = weir_factory(config(port, [d.addr for d in demos], workers=2, access=False))
    errors = []

    def client(n):
        try:
            with RawClient(w.port) as c:
                for i in range(25):
                    body = b"%d-%d-" % (n, i) * (1 + (i * 37) % 300)
                    if i % 3 == 0:
                        c.send(b"POST /echo HTTP/1.1\r\nHost: weir.test\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                        r = c.read_response()
                        if r.status != 200 or r.body != body:
                            errors.append((n, i, r.status, len(r.body)))
                    elif i % 3 == 1:
                        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
                        c.send(b"POST /echo HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
                        r = c.read_response()
                        if r.status != 200 or r.body != body:
                            errors.append((n, i, r.status, len(r.body)))
                    else:
                        c.send(b"GET /bytes?n=%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % (i * 1000))
                        r = c.read_response()
                        if r.status != 200 or r.body != b"x" * (i * 1000):
                            errors.append((n, i, r.status, len(r.body)))
        except Exception as e:  # noqa: BLE001
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_head_sent_byte_by_byte(proxy):
    w, b = proxy(lambda req: {"body": req.target.encode()})
    with RawClient(w.port) as c:
        for ch in b"GET /bytewise HTTP/1.1\r\nHost: weir.test\r\nX-A: b\r\n\r\n":
            c.send(bytes([ch]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"/bytewise"


def test_many_pipelined_requests(proxy):
    """More pipelined requests than fit in one read buffer: all answered, in order."""
    w, b = proxy(lambda req: {"body": req.target.encode()})
    n = 1000
    with RawClient(w.port) as c:
        c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % i for i in range(n)))
        bodies = [c.read_response().body for _ in range(n)]
    assert bodies == [b"/p%d" % i for i in range(n)]


def test_client_half_close_still_answered(proxy):
    """A client that shuts down its sending side after a complete request
    (printf ... | nc -N) still gets the answer."""
    w, b = proxy(lambda req: {"body": req.target.encode()})
    with RawClient(w.port) as c:
        c.send(b"GET /half HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        assert r.status == 200 and r.body == b"/half"
        assert c.is_closed()


def test_client_half_close_after_pipelined_requests(proxy):
    """Every complete request received before the client's FIN is answered
    (the first answer is slow so the FIN is surely seen while it is pending)."""
    w, b = proxy(lambda req: {"body": req.target.encode(), "delay": 0.3 if req.target == "/h1" else 0})
    with RawClient(w.port) as c:
        c.send(b"GET /h1 HTTP/1.1\r\nHost: weir.test\r\n\r\nGET /h2 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_response().body == b"/h1"
        assert c.read_response().body == b"/h2"
        assert c.is_closed()


def test_pool_max_idle_zero(proxy):
    w, b = proxy(cluster_extra="pool: { max_idle: 0 }")
    with RawClient(w.port) as c:
        for _ in range(4):
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            assert c.read_response().status == 200
    assert b.count == 4
    assert b.connections == 4


def test_pool_idle_timeout_closes_upstream(proxy):
    w, b = proxy(cluster_extra="pool: { idle_timeout: 200ms }")
    assert get(w.port).status == 200
    # weir closes the idle pooled connection: the backend sees it end
    wait_until(lambda: b.closed_connections() == 1, what="pooled connection closed by weir")
    assert get(w.port).status == 200
    assert b.connections == 2


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_slow_reader_download_is_not_buffered(weir_factory, demo_backend):
    """A client that stops reading a huge download: weir holds a few buffers,
    not the body (back-pressure to the backend)."""
    d = demo_backend("big")
    port = free_port()
    w = weir_factory(config(port, [d.addr]))
    assert get(w.port, "/bytes?n=1000000").status == 200  # warm up buffers and pools
    rss0 = _rss_kb(w.proc.pid)
    sock = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /bytes?n=500000000 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        import time
        time.sleep(1.0)  # let anything that would pile up pile up
        grown_mb = (_rss_kb(w.proc.pid) - rss0) / 1024
        assert grown_mb < 32, "weir grew by %.0f MB for one stalled download" % grown_mb
    finally:
        sock.close()
    assert get(w.port, "/health").status == 200

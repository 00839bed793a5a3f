"""The `compress` route step: gzip, br and zstd chosen from Accept-Encoding
(q-values, identity, `*`, weir's order for ties), every answer weir must not
compress, Vary and ETag, and the streaming body transform: large, chunked and
slow backend bodies decoded here with Python's zlib/brotli/zstandard and
compared with the backend's exact bytes, keep-alive and pipelining after a
compressed answer, HTTP/1.0 clients (until close)."""
import gzip
import json
import os
import socket
import subprocess
import threading
import zlib

import brotli
import pytest
import zstandard

from conftest import IO_TIMEOUT, WEIR_BIN, config, free_port, request

ROUTE = "- compress: {}\n  cluster: app\n"
JSON = json.dumps([{"id": i, "name": "item %d" % i, "tags": ["a", "b", "c"]} for i in range(400)]).encode()
JSON_HEADERS = [("Content-Type", "application/json")]


def decode(coding, body):
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return brotli.decompress(body)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    assert coding is None, coding
    return body


def get(w, ae=None, method="GET", extra="", path="/a", version="1.1", close=True):
    h = "Accept-Encoding: %s\r\n" % ae if ae is not None else ""
    conn = "Connection: close\r\n" if close else ""
    return request(w.port, ("%s %s HTTP/%s\r\nHost: x\r\n%s%s%s\r\n"
                            % (method, path, version, h, extra, conn)).encode(),
                   head_request=method == "HEAD")


def coding(r):
    return r.header("Content-Encoding")


@pytest.mark.parametrize("ae,want", [
    ("gzip", "gzip"),
    ("br", "br"),
    ("zstd", "zstd"),
    ("gzip, deflate, br, zstd", "br"),           # a tie: weir's order (br, zstd, gzip)
    ("gzip;q=1.0, br;q=0.5", "gzip"),           # the client's weights first
    ("br;q=0, gzip", "gzip"),                    # q=0 refuses
    ("*", "br"),
    ("*;q=0.5, zstd;q=0.8", "zstd"),
    ("gzip;q=0.4, identity;q=0.9", None),        # identity weighed higher
    ("*;q=0", None),
    ("deflate, compress", None),                 # nothing weir makes
    ("", None),
    (None, None),
    ("GZIP", "gzip"),
    ("x-gzip", "gzip"),
    ("gzip;q=2, br;q=0.3", "br"),                # a bad qvalue drops that element only
])
def test_negotiation(proxy, ae, want):
    w, b = proxy(respond={"headers": JSON_HEADERS, "body": JSON}, routes=ROUTE)
    r = get(w, ae)
    assert r.status == 200
    assert coding(r) == want
    assert decode(want, r.body) == JSON
    assert r.header_all("Vary") == ["Accept-Encoding"]  # compressible: always
    if want:
        assert r.header("Transfer-Encoding") == "chunked" and not r.has("Content-Length")
        assert len(r.body) < len(JSON)
    else:
        assert r.header("Content-Length") == str(len(JSON))


def test_algorithm_order_and_levels(proxy):
    routes = ("- compress: { algorithms: [gzip, zstd], level: { gzip: 1, zstd: 6 } }\n"
              "  cluster: app\n")
    w, b = proxy(respond={"headers": JSON_HEADERS, "body": JSON}, routes=routes)
    r = get(w, "br, zstd, gzip")
    assert coding(r) == "gzip"  # br is not in the route's list
    assert gzip.decompress(r.body) == JSON
    assert get(w, "br").header("Content-Encoding") is None
    r = get(w, "zstd")
    assert coding(r) == "zstd" and decode("zstd", r.body) == JSON


@pytest.mark.parametrize("name,respond,extra,method", [
    ("head", {}, "", "HEAD"),
    ("204", {"status": 204, "body": b""}, "", "GET"),
    ("304", {"status": 304, "body": b""}, "", "GET"),
    ("206", {"status": 206, "headers": [("Content-Range", "bytes 0-9/100")]}, "", "GET"),
    ("range request", {}, "Range: bytes=0-\r\n", "GET"),
    ("already encoded", {"headers": [("Content-Encoding", "gzip")]}, "", "GET"),
    ("no-transform", {"headers": [("Cache-Control", "public, no-transform")]}, "", "GET"),
    ("type not listed", {"headers": [("Content-Type", "image/png")]}, "", "GET"),
    ("no type", {"headers": [("X-Other", "1")]}, "", "GET"),
    ("too short", {"body": b'{"a": 1}'}, "", "GET"),
])
def test_never_compressed(proxy, name, respond, extra, method):
    spec = {"headers": JSON_HEADERS, "body": JSON}
    spec.update(respond)
    if name != "no type" and not any(n == "Content-Type" for n, _ in spec["headers"]):
        spec["headers"] = spec["headers"] + JSON_HEADERS
    w, b = proxy(respond=spec, routes=ROUTE)
    r = get(w, "gzip, br, zstd", method=method, extra=extra)
    assert r.status == spec.get("status", 200)
    assert coding(r) == (spec["headers"][0][1] if name == "already encoded" else None)
    if method != "HEAD" and r.status not in (204, 304):
        assert r.body == spec["body"]
    # Vary only when the answer could have been compressed for someone
    assert bool(r.header_all("Vary")) == (name == "too short")


def test_upgrade_is_not_compressed(proxy, raw_client):
    w, b = proxy(respond="upgrade", routes=ROUTE)
    c = raw_client(w.port)
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\n\r\n")
    r = c.read_response(skip_1xx=False)
    assert r.status == 101 and coding(r) is None
    c.send(b"ping")
    got = b""
    while len(got) < 4:
        c._more()
        got, c.buf = got + c.buf, b""
    assert got == b"ping"


def test_vary_merged_and_etag_weakened(proxy):
    w, b = proxy(respond={"headers": JSON_HEADERS + [("Vary", "Origin"), ("ETag", '"v1"')],
                          "body": JSON}, routes=ROUTE)
    r = get(w, "gzip")
    assert r.header_all("Vary") == ["Origin", "Accept-Encoding"]
    assert r.header("ETag") == 'W/"v1"'
    plain = get(w, None)
    assert plain.header("ETag") == '"v1"'  # the plain variant keeps the strong one
    w2, _ = proxy(respond={"headers": JSON_HEADERS + [("Vary", "accept-encoding"),
                                                      ("ETag", 'W/"w"')], "body": JSON},
                  routes=ROUTE)
    r = get(w2, "gzip")
    assert r.header_all("Vary") == ["accept-encoding"] and r.header("ETag") == 'W/"w"'


def test_custom_content_types_and_min_size(proxy):
    routes = ("- compress: { content_types: [image/png, text/*], min_size: 10 }\n"
              "  cluster: app\n")
    w, b = proxy(respond=lambda req: {"headers": [("Content-Type", req.target[1:].replace("_", "/"))],
                                      "body": b"z" * 50}, routes=routes)
    assert coding(get(w, "gzip", path="/image_png")) == "gzip"
    assert coding(get(w, "gzip", path="/text_csv;charset=utf-8")) == "gzip"
    assert coding(get(w, "gzip", path="/application_json")) is None


@pytest.mark.parametrize("ae", ["gzip", "br", "zstd"])
def test_large_body_round_trips(proxy, ae):
    body = b"".join(b"line %08d of a large and rather repetitive body\n" % i for i in range(120000))
    body += os.urandom(300000)  # some incompressible bytes too
    assert len(body) > 6_000_000
    w, b = proxy(respond={"headers": [("Content-Type", "text/plain")], "body": body}, routes=ROUTE)
    r = get(w, ae)
    assert coding(r) == ae
    assert decode(ae, r.body) == body


@pytest.mark.parametrize("ae", ["gzip", "br", "zstd"])
def test_chunked_backend_round_trips(proxy, ae):
    body = JSON * 20
    w, b = proxy(respond={"headers": JSON_HEADERS, "body": body, "chunked": True,
                          "chunk_size": 1000}, routes=ROUTE)
    r = get(w, ae)
    assert coding(r) == ae and decode(ae, r.body) == body


def test_body_until_close_round_trips(proxy):
    w, b = proxy(respond={"headers": JSON_HEADERS, "body": JSON, "no_length": True}, routes=ROUTE)
    r = get(w, "gzip")
    assert coding(r) == "gzip" and gzip.decompress(r.body) == JSON


def test_http10_client_gets_body_until_close(proxy, raw_client):
    w, b = proxy(respond={"headers": JSON_HEADERS, "body": JSON}, routes=ROUTE)
    c = raw_client(w.port)
    c.send(b"GET /a HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n")
    r = c.read_response()
    assert coding(r) == "gzip"
    assert not r.has("Content-Length") and not r.has("Transfer-Encoding")
    assert r.header("Connection") == "close"
    assert gzip.decompress(r.body) == JSON


class SlowBackend:
    """Answers one request with a chunked body in two parts: the second only
    once `release` is set."""

    def __init__(self):
        self.release = threading.Event()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        s, _ = self.lsock.accept()
        s.settimeout(IO_TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
        self.release.wait(IO_TIMEOUT)
        s.sendall(b"7\r\nsecond\n\r\n0\r\n\r\n")
        s.close()

    def stop(self):
        self.release.set()
        self.lsock.close()
        self.thread.join(IO_TIMEOUT)


@pytest.mark.parametrize("ae", ["gzip", "br", "zstd"])
def test_slow_stream_reaches_client_as_it_comes(weir_factory, raw_client, ae):
    """The first part is decodable before the backend sends the rest."""
    sb = SlowBackend()
    try:
        port = free_port()
        w = weir_factory(config(port, [sb.addr], routes=ROUTE))
        c = raw_client(w.port)
        c.send(("GET /events HTTP/1.1\r\nHost: x\r\nAccept-Encoding: %s\r\n\r\n" % ae).encode())
        while b"\r\n\r\n" not in c.buf:
            c._more()
        head, _, rest = c.buf.partition(b"\r\n\r\n")
        assert b"Content-Encoding: " + ae.encode() in head
        c.buf = rest
        dec = {"gzip": zlib.decompressobj(16 + zlib.MAX_WBITS), "br": brotli.Decompressor(),
               "zstd": zstandard.ZstdDecompressor().decompressobj()}[ae]
        feed = dec.process if ae == "br" else dec.decompress

        def chunk():
            size = int(c._line(), 16)
            data = c._exact(size) if size else b""
            assert c._exact(2) == b"\r\n"
            return size, data

        got = b""
        while got != b"first\n":  # the backend has not sent the rest yet
            size, data = chunk()
            assert size > 0
            got += feed(data)
        sb.release.set()
        while True:
            size, data = chunk()
            if size == 0:
                break
            got += feed(data)
        assert got == b"first\nsecond\n"
    finally:
        sb.stop()


def test_keep_alive_and_pipelining_after_compressed(proxy, raw_client):
    w, b = proxy(respond=lambda req: {"headers": JSON_HEADERS, "body": JSON + req.target.encode()},
                 routes=ROUTE)
    c = raw_client(w.port)
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\nAccept-Encoding: %s\r\n\r\n" % (i, ae)
                    for i, ae in enumerate([b"gzip", b"br", b"identity", b"zstd", b"gzip"]))
    c.send(reqs)
    for i, ae in enumerate(["gzip", "br", None, "zstd", "gzip"]):
        r = c.read_response()
        assert r.status == 200 and coding(r) == ae
        assert decode(ae, r.body) == JSON + b"/p%d" % i
    assert b.connections == 1


def test_weir_answer_compressed(weir_factory):
    port = free_port()
    body = "x" * 2000
    routes = ("- compress: {}\n  respond: { status: 200, body: \"%s\", headers: { Content-Type: text/plain } }\n"
              % body)
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    r = get(w, "gzip")
    assert r.status == 200 and coding(r) == "gzip" and gzip.decompress(r.body) == body.encode()
    r = get(w, "br", method="HEAD")
    assert coding(r) is None and r.header("Content-Length") == "2000"


def test_empty_weir_answer_not_compressed(weir_factory):
    port = free_port()
    routes = "- compress: { min_size: 0 }\n  respond: { status: 200, headers: { Content-Type: text/plain } }\n"
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    r = get(w, "gzip")
    assert r.status == 200 and coding(r) is None and r.body == b""
    assert r.header("Content-Length") == "0"


def test_slow_client_bounded_buffering(weir_factory):
    """A client that does not read: weir stops reading the backend (whose
    send blocks) instead of holding the compressed body."""
    body = os.urandom(32 << 20)  # incompressible: compressed is as large
    done = threading.Event()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        s, _ = lsock.accept()
        s.settimeout(IO_TIMEOUT)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            done.set()
        finally:
            s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:%d" % lsock.getsockname()[1]], routes=ROUTE))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.connect(("127.0.0.1", w.port))
    try:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        # a conservative check: were weir to buffer, the backend would be done at once
        assert not done.wait(1.0)
        rss = int(open("/proc/%d/statm" % w.proc.pid).read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert rss < 24 << 20, rss  # far below the 32 MiB body
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        s.settimeout(IO_TIMEOUT)
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.read(1)
        assert b"Content-Encoding: gzip" in head
        got = []
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                break
            got.append(dec.decompress(f.read(size)))
            assert f.read(2) == b"\r\n"
        assert b"".join(got) == body
    finally:
        s.close()
        t.join(IO_TIMEOUT)
        lsock.close()


@pytest.mark.parametrize("routes,msg", [
    ("- compress: { algorithms: [gzip, lzma] }\n  cluster: app", "lzma"),
    ("- compress: { algorithms: [gzip, gzip] }\n  cluster: app", "listed twice"),
    ("- compress: { algorithms: [] }\n  cluster: app", "'algorithms'"),
    ("- compress: { level: { gzip: 10 } }\n  cluster: app", "gzip level must be 1 to 9"),
    ("- compress: { level: { br: 7 } }\n  cluster: app", "br level must be 0 to 6"),
    ("- compress: { content_types: [json] }\n  cluster: app", "bad content type"),
    ("- compress: { min_size: -1 }\n  cluster: app", "expected a size"),
    ("- compress: { window: 10 }\n  cluster: app", "window"),
])
def test_config_errors(tmp_path, routes, msg):
    path = tmp_path / "c.yaml"
    path.write_text(config(free_port(), ["127.0.0.1:1"], routes=routes))
    p = subprocess.run([WEIR_BIN, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr and "c.yaml:" in p.stderr, p.stderr


def test_weir_error_answers_go_through_the_steps(weir_factory):
    """A 502/503 weir makes (nothing listens behind the cluster) gets the
    route's response steps: headers' fields, compression when min_size
    allows, keep-alive after it."""
    port = free_port()
    routes = ("- compress: { min_size: 0, content_types: [text/plain] }\n"
              "  headers: { response: { set: { X-Frame-Options: DENY } } }\n"
              "  cluster: app\n")
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    r = get(w, "gzip")
    assert r.status in (502, 503)
    assert r.header("X-Frame-Options") == "DENY"
    assert coding(r) == "gzip" and r.header_all("Vary") == ["Accept-Encoding"]
    assert gzip.decompress(r.body) == b"%d %s\n" % (r.status, r.reason.encode())
    r = get(w, None)
    assert coding(r) is None and r.body == b"%d %s\n" % (r.status, r.reason.encode())
    r = get(w, "br", method="HEAD")
    assert coding(r) is None and r.header("X-Frame-Options") == "DENY"


def test_compressed_error_answer_keeps_the_connection(weir_factory, raw_client):
    port = free_port()
    routes = "- compress: { min_size: 0, content_types: [text/plain] }\n  cluster: app\n"
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    c = raw_client(w.port)
    c.send(b"GET /1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
           b"GET /2 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: zstd\r\n\r\n")
    for ae in ("gzip", "zstd"):
        r = c.read_response()
        assert r.status in (502, 503) and coding(r) == ae
        assert decode(ae, r.body) == b"%d %s\n" % (r.status, r.reason.encode())
        assert r.header("Connection") is None

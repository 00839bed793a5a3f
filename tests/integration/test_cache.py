"""cache: the RFC 9111 edge cache step. A backend that counts what it serves
shows what reached it: hits never do, Vary variants are stored apart, objects
too large pass through, unsafe methods invalidate, purge removes."""
import re
import socket
import struct
import threading
import time

import pytest

from conftest import RawClient, cluster_yaml, config, free_port, request, wait_until


def cache_config(port, backend, *, cache_extra="", route_extra="", workers=1, listener_extra=""):
    routes = """
- cache: edge
  cluster: app
  %s
""" % route_extra
    if "memory:" not in cache_extra:
        cache_extra = "memory: 1m\n" + cache_extra
    top = "caches:\n  - name: edge\n%s" % "".join(
        "    %s\n" % line for line in cache_extra.strip("\n").splitlines() if line)
    return config(port, routes=routes, clusters=[cluster_yaml("app", [backend.addr])],
                  top_extra=top, workers=workers, listener_extra=listener_extra)


@pytest.fixture
def edge(weir_factory, recording_backend):
    def make(respond=None, **kw):
        app = recording_backend(respond if respond is not None else {})
        port = free_port()
        w = weir_factory(cache_config(port, app, **kw))
        return w, app, port
    return make


def get(port, path="/obj", headers="", method="GET"):
    data = ("%s %s HTTP/1.1\r\nHost: weir.test\r\n%sConnection: close\r\n\r\n"
            % (method, path, headers)).encode()
    return request(port, data, head_request=method == "HEAD")


def fresh(body=b"hello", extra=(), status=200, **kw):
    d = {"status": status, "headers": [("Cache-Control", "max-age=600")] + list(extra),
         "body": body}
    d.update(kw)
    return d


def test_hit_never_reaches_backend(edge):
    w, app, port = edge(fresh(b"x" * 1024, [("ETag", '"v1"')]))
    r1 = get(port)
    assert r1.status == 200 and r1.body == b"x" * 1024
    assert "fwd=uri-miss" in r1.header("Cache-Status") and "stored" in r1.header("Cache-Status")
    for _ in range(5):
        r = get(port)
        assert r.status == 200 and r.body == b"x" * 1024
        assert r.header("Cache-Status").startswith("weir; hit")
        assert r.header("Age") is not None and int(r.header("Age")) >= 0
        assert r.header("ETag") == '"v1"'
        assert r.header("Content-Length") == "1024"
    assert app.count == 1


def test_head_from_stored_get(edge):
    w, app, port = edge(fresh(b"abcdef"))
    assert get(port).body == b"abcdef"
    r = get(port, method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "6" and r.body == b""
    assert r.header("Cache-Status").startswith("weir; hit")
    assert app.count == 1


def test_head_miss_is_not_stored(edge):
    w, app, port = edge(fresh(b"abcdef"))
    r = get(port, method="HEAD")
    assert r.status == 200 and "detail=method" in r.header("Cache-Status")
    assert get(port).body == b"abcdef"
    assert app.count == 2


@pytest.mark.parametrize("cc,detail", [
    ("no-store, max-age=600", "no-store"),
    ("private, max-age=600", "private"),
    (None, "no-freshness-or-validator"),
])
def test_not_stored(edge, cc, detail):
    headers = [("Cache-Control", cc)] if cc else []
    w, app, port = edge({"status": 200, "headers": headers, "body": b"p"})
    r = get(port)
    assert "detail=" + detail in r.header("Cache-Status")
    get(port)
    assert app.count == 2


def test_chunked_response_is_stored(edge):
    w, app, port = edge(fresh(b"0123456789" * 30, chunked=True))
    assert get(port).body == b"0123456789" * 30
    r = get(port)
    assert r.body == b"0123456789" * 30 and r.header("Content-Length") == "300"
    assert app.count == 1


def test_vary_variants_stored_apart(edge):
    def by_lang(req):
        lang = req.header("Accept-Language") or "none"
        return fresh(("lang=" + lang).encode(), [("Vary", "Accept-Language")])
    w, app, port = edge(by_lang)
    assert get(port, headers="Accept-Language: en\r\n").body == b"lang=en"
    assert get(port, headers="Accept-Language: fr\r\n").body == b"lang=fr"
    assert app.count == 2
    assert get(port, headers="Accept-Language: en\r\n").body == b"lang=en"
    assert get(port, headers="Accept-Language: fr\r\n").body == b"lang=fr"
    assert app.count == 2
    assert get(port).body == b"lang=none"
    assert app.count == 3


def test_vary_star_never_matches(edge):
    w, app, port = edge(fresh(b"v", [("Vary", "*")]))
    get(port)
    r = get(port)
    assert "detail=vary-star" in r.header("Cache-Status")
    assert app.count == 2


def test_request_directives(edge):
    w, app, port = edge(fresh(b"d"))
    get(port)
    assert app.count == 1
    r = get(port, headers="Cache-Control: no-cache\r\n")
    assert "fwd=request" in r.header("Cache-Status")
    assert app.count == 2
    r = get(port, headers="Cache-Control: no-store\r\n")
    assert "fwd=bypass" in r.header("Cache-Status")
    assert app.count == 3
    r = get(port, headers="Cache-Control: max-age=100000\r\n")
    assert r.header("Cache-Status").startswith("weir; hit")
    assert app.count == 3


def test_only_if_cached(edge):
    w, app, port = edge(fresh(b"o"))
    r = get(port, "/other", headers="Cache-Control: only-if-cached\r\n")
    assert r.status == 504
    assert app.count == 0
    get(port)
    r = get(port, headers="Cache-Control: only-if-cached\r\n")
    assert r.status == 200 and r.body == b"o"
    assert app.count == 1


def test_authorization_needs_permission(edge):
    def decide(req):
        if req.target.startswith("/public"):
            return {"status": 200, "headers": [("Cache-Control", "public, max-age=600")], "body": b"pub"}
        return fresh(b"auth")
    w, app, port = edge(decide)
    r = get(port, "/auth", headers="Authorization: Bearer x\r\n")
    assert "detail=authorization" in r.header("Cache-Status")
    get(port, "/public", headers="Authorization: Bearer x\r\n")
    r = get(port, "/public", headers="Authorization: Bearer x\r\n")
    assert r.header("Cache-Status").startswith("weir; hit")
    assert app.count == 2


def test_conditional_client_request(edge):
    w, app, port = edge(fresh(b"body", [("ETag", '"abc"'),
                                        ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]))
    get(port)
    r = get(port, headers='If-None-Match: "zzz", W/"abc"\r\n')
    assert r.status == 304 and r.body == b"" and not r.has("Content-Length")
    assert r.header("ETag") == '"abc"'
    r = get(port, headers='If-None-Match: "zzz"\r\n')
    assert r.status == 200 and r.body == b"body"
    r = get(port, headers="If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
    assert r.status == 304
    r = get(port, headers="If-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n")
    assert r.status == 200
    assert app.count == 1


def test_range_from_stored_object(edge):
    w, app, port = edge(fresh(b"0123456789"))
    get(port)
    r = get(port, headers="Range: bytes=2-5\r\n")
    assert r.status == 206 and r.body == b"2345"
    assert r.header("Content-Range") == "bytes 2-5/10"
    r = get(port, headers="Range: bytes=-3\r\n")
    assert r.status == 206 and r.body == b"789"
    r = get(port, headers="Range: bytes=7-\r\n")
    assert r.body == b"789"
    r = get(port, headers="Range: bytes=20-30\r\n")
    assert r.status == 416 and r.header("Content-Range") == "bytes */10"
    r = get(port, headers="Range: bytes=0-1,4-5\r\n")
    assert r.status == 200 and r.body == b"0123456789"
    assert app.count == 1


def test_too_large_passes_through(edge):
    big = bytes(range(256)) * 1024  # 256k: over max_object
    w, app, port = edge(fresh(big), cache_extra="max_object: 64k")
    r = get(port)
    assert r.body == big and "detail=too-large" in r.header("Cache-Status")
    assert get(port).body == big
    assert app.count == 2


def test_too_large_chunked_passes_through(edge):
    big = b"z" * (200 * 1024)
    w, app, port = edge(fresh(big, chunked=True, chunk_size=4096), cache_extra="max_object: 64k")
    r = get(port)
    assert r.body == big and "stored" in r.header("Cache-Status")  # not known until it grows
    r = get(port)
    assert r.body == big
    assert app.count == 2


def test_unsafe_method_invalidates(edge):
    def decide(req):
        if req.method == "POST":
            return {"status": 201, "headers": [("Location", "/other")], "body": b"made"}
        return fresh(("v%d" % app_count[0]).encode())
    app_count = [0]
    w, app, port = edge(decide)
    get(port)
    get(port, "/other")
    assert app.count == 2
    r = request(port, b"POST /obj HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 1\r\n"
                      b"Connection: close\r\n\r\nx")
    assert r.status == 201
    get(port)
    get(port, "/other")
    assert app.count == 5


def test_query_and_key(edge):
    w, app, port = edge(fresh(b"q"), cache_extra="key: { query: sorted }")
    get(port, "/obj?a=1&b=2")
    r = get(port, "/obj?b=2&a=1")
    assert r.header("Cache-Status").startswith("weir; hit")
    get(port, "/obj?a=1")
    assert app.count == 2
    get(port, "/OBJ?a=1&b=2")
    assert app.count == 3


def test_purge_method(edge):
    w, app, port = edge(fresh(b"p"), cache_extra="purge: { allow: [127.0.0.1] }")
    get(port)
    r = get(port, method="PURGE")
    assert r.status == 200
    r = get(port, method="PURGE")
    assert r.status == 404
    get(port)
    assert app.count == 2


def test_purge_method_refused_without_allow(edge):
    w, app, port = edge(fresh(b"p"))
    get(port)
    r = get(port, method="PURGE")
    assert r.status == 405
    assert get(port).header("Cache-Status").startswith("weir; hit")
    assert app.count == 1


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo", "random", "ttl", "s3fifo"])
def test_eviction_keeps_the_cap(edge, policy):
    body = b"e" * 2000
    w, app, port = edge(fresh(body), cache_extra="memory: 256k\neviction: %s" % policy)
    for i in range(300):
        assert get(port, "/k%d" % i).body == body
    assert app.count == 300
    # 256k over 16 shards is 16k a shard: at most 7 objects of 2000+ bytes each
    hits = sum(1 for i in reversed(range(300))  # newest first: a scan defeats lru
               if get(port, "/k%d" % i).header("Cache-Status").startswith("weir; hit"))
    assert 0 < hits <= 16 * 7
    assert app.count == 300 + (300 - hits)


def test_client_gone_mid_stream(edge):
    body = b"m" * (300 * 1024)
    w, app, port = edge(fresh(body, chunked=True, chunk_size=1024))
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /obj HTTP/1.1\r\nHost: weir.test\r\n\r\n")
    s.recv(100)
    s.close()
    r = get(port)
    assert r.body == body
    r = get(port)
    assert r.body == body


def test_unknown_cache_is_a_config_error(tmp_path):
    import subprocess, os
    port = free_port()
    text = config(port, routes="- cache: nope\n  cluster: app", endpoints=["127.0.0.1:1"])
    p = tmp_path / "w.yaml"
    p.write_text(text)
    out = subprocess.run([os.environ["WEIR_BIN"], "check", "-c", str(p)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "cache 'nope' is not defined" in out.stderr + out.stdout


# ---- revalidation and stale answers ------------------------------------------------


def test_revalidation_304_merges_and_refreshes(edge):
    def decide(req):
        if req.header("If-None-Match") == '"v1"':
            return {"status": 304, "headers": [("Cache-Control", "max-age=600"), ("ETag", '"v1"'),
                                               ("X-New", "yes")], "body": b""}
        return {"status": 200, "headers": [("Cache-Control", "max-age=0"), ("ETag", '"v1"'),
                                           ("X-Old", "kept"), ("X-New", "no")], "body": b"stored body"}
    w, app, port = edge(decide)
    assert get(port).body == b"stored body"
    r = get(port)  # stale at once: weir asks with the validator
    assert app.count == 2
    assert app.requests[1].header("If-None-Match") == '"v1"'
    assert r.status == 200 and r.body == b"stored body"
    assert r.header("X-New") == "yes" and r.header("X-Old") == "kept"
    assert "fwd-status=304" in r.header("Cache-Status")
    assert r.header("Content-Length") == "11"
    r = get(port)  # fresh now, for 600 s
    assert r.header("Cache-Status").startswith("weir; hit") and r.header("X-New") == "yes"
    assert app.count == 2


def test_revalidation_200_replaces(edge):
    n = [0]

    def decide(req):
        n[0] += 1
        return {"status": 200, "headers": [("Cache-Control", "max-age=0"), ("ETag", '"v%d"' % n[0])],
                "body": b"version %d" % n[0]}
    w, app, port = edge(decide)
    assert get(port).body == b"version 1"
    assert get(port).body == b"version 2"
    assert app.requests[1].header("If-None-Match") == '"v1"'
    get(port)
    assert app.requests[2].header("If-None-Match") == '"v2"'


def test_client_conditional_not_replaced(edge):
    w, app, port = edge({"status": 200, "headers": [("Cache-Control", "max-age=0"), ("ETag", '"v1"')],
                         "body": b"b"})
    get(port)
    get(port, headers='If-None-Match: "mine"\r\n')
    assert app.requests[1].header("If-None-Match") == '"mine"'


def test_stale_if_error_on_500(edge):
    state = {"fail": False}

    def decide(req):
        if state["fail"]:
            return {"status": 500, "body": b"broken"}
        return {"status": 200, "headers": [("Cache-Control", "max-age=0, stale-if-error=600"),
                                           ("ETag", '"s"')], "body": b"good"}
    w, app, port = edge(decide)
    assert get(port).body == b"good"
    state["fail"] = True
    r = get(port)
    assert r.status == 200 and r.body == b"good"
    assert "detail=stale-if-error" in r.header("Cache-Status")
    assert "fwd-status=500" in r.header("Cache-Status")
    # the connection to the backend keeps working afterwards
    state["fail"] = False
    assert get(port).body == b"good"


def test_stale_if_error_on_dead_backend(edge):
    w, app, port = edge({"status": 200, "headers": [("Cache-Control", "max-age=0, stale-if-error=600"),
                                                    ("ETag", '"s"')], "body": b"good"})
    assert get(port).body == b"good"
    app.stop()
    r = get(port)
    assert r.status == 200 and r.body == b"good"
    assert "detail=stale-if-error" in r.header("Cache-Status")


def test_no_stale_if_error_without_directive(edge):
    state = {"fail": False}

    def decide(req):
        if state["fail"]:
            return {"status": 500, "body": b"broken"}
        return {"status": 200, "headers": [("Cache-Control", "max-age=0"), ("ETag", '"s"')],
                "body": b"good"}
    w, app, port = edge(decide)
    get(port)
    state["fail"] = True
    r = get(port)
    assert r.status == 500 and r.body == b"broken"
    r = get(port, headers="Cache-Control: stale-if-error=60\r\n")  # the request may allow it
    assert r.status == 200 and r.body == b"good"


# ---- coalescing ---------------------------------------------------------------------


def _parallel_gets(port, n, path="/obj", headers=""):
    results = [None] * n
    errors = []

    def one(i):
        try:
            results[i] = get(port, path, headers=headers)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    return results


def test_concurrent_misses_make_one_backend_request(edge):
    # the backend takes its time, so every client arrives while the first waits
    w, app, port = edge(fresh(b"c" * 1000, delay=0.5), workers=2)
    results = _parallel_gets(port, 200)
    assert all(r.status == 200 and r.body == b"c" * 1000 for r in results)
    assert app.count == 1
    assert sum(1 for r in results if "coalesced" in r.header("Cache-Status")) >= 1


def test_uncacheable_answer_releases_waiters(edge):
    w, app, port = edge({"status": 200, "headers": [("Cache-Control", "private")], "body": b"mine",
                         "delay": 0.3})
    results = _parallel_gets(port, 20)
    assert all(r.status == 200 and r.body == b"mine" for r in results)
    assert app.count == 20  # each went on its own once the first proved private


def test_coalesce_waiters_time_out(edge):
    w, app, port = edge(fresh(b"slow", delay=2), cache_extra="coalesce_timeout: 100ms")
    results = _parallel_gets(port, 5)
    assert all(r.status == 200 and r.body == b"slow" for r in results)
    assert app.count == 5
    assert sum(1 for r in results if "coalesce-timeout" in r.header("Cache-Status")) == 4


def test_coalescing_off(edge):
    w, app, port = edge(fresh(b"x", delay=0.3), cache_extra="coalesce_timeout: 0s")
    _parallel_gets(port, 5)
    assert app.count == 5


class HalfBackend:
    """A backend that counts requests and sends each answer's head and the
    first half of its body at once, the rest only once release() is called."""

    def __init__(self, body, chunked=False, extra=b""):
        self.body, self.chunked, self.extra = body, chunked, extra
        self.count = 0
        self.go = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _part(self, data):
        return b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data

    def _serve(self, c):
        try:
            c.settimeout(30)
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(4096)
                if not d:
                    return
                req += d
            self.count += 1
            framing = b"Transfer-Encoding: chunked" if self.chunked else \
                b"Content-Length: %d" % len(self.body)
            half = len(self.body) // 2
            c.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\n" + self.extra +
                      framing + b"\r\n\r\n" + self._part(self.body[:half]))
            self.go.wait(30)
            c.sendall(self._part(self.body[half:]) + (b"0\r\n\r\n" if self.chunked else b""))
        except OSError:
            pass

    def release(self):
        self.go.set()

    def stop(self):
        self.go.set()
        self.sock.close()
        for c in self.conns:
            c.close()


class BodyReader:
    """A raw client reading one response's body as it arrives (either framing)."""

    def __init__(self, port, version=b"1.1"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(b"GET /obj HTTP/%s\r\nHost: weir.test\r\n\r\n" % version)
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            d = self.s.recv(65536)
            if not d:
                raise AssertionError("closed before the head: %r" % self.raw)
            self.raw += d
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        self.chunked = "transfer-encoding: chunked" in self.head.lower()
        self.body = b""

    def _decode(self):
        if not self.chunked:
            self.body, self.raw = self.body + self.raw, b""
            return
        while b"\r\n" in self.raw:
            line, rest = self.raw.split(b"\r\n", 1)
            size = int(line, 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def read_until(self, n):
        """Reads until n body bytes are here; returns the body, shorter if the connection ended."""
        self._decode()
        while len(self.body) < n:
            d = self.s.recv(65536)
            if not d:
                break
            self.raw += d
            self._decode()
        return self.body

    def close(self, abort=False):
        """abort: a reset, as a client gone away (a plain close is a half-close
        weir keeps answering)."""
        if abort:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()


@pytest.fixture
def half_backend():
    made = []

    def make(*a, **kw):
        b = HalfBackend(*a, **kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.mark.parametrize("chunked", [False, True])
def test_coalesced_waiters_get_the_answer_as_it_streams(weir_factory, half_backend, chunked):
    body = bytes(range(256)) * 400  # 100 KiB
    half = len(body) // 2
    app = half_backend(body, chunked=chunked)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m", workers=2))
    leader = BodyReader(port)
    waiters = [BodyReader(port) for _ in range(19)]
    # every client has the head and the first half while the backend still holds the rest
    for c in [leader] + waiters:
        assert c.read_until(half)[:half] == body[:half]
    assert all("coalesced" in w.head for w in waiters)
    app.release()
    for c in [leader] + waiters:
        assert c.read_until(len(body)) == body
        c.close()
    assert app.count == 1
    r = get(port)
    assert r.body == body and r.header("Cache-Status").startswith("weir; hit")
    assert app.count == 1


def test_coalesced_http10_waiter_of_a_chunked_body_reads_until_close(weir_factory, half_backend):
    body = b"t" * (100 * 1024)
    app = half_backend(body, chunked=True)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m", workers=2))
    leader = BodyReader(port)
    waiter = BodyReader(port, version=b"1.0")
    assert "coalesced" in waiter.head and not waiter.chunked
    assert "content-length" not in waiter.head.lower()
    assert waiter.read_until(len(body) // 2) == body[:len(body) // 2]
    app.release()
    assert leader.read_until(len(body)) == body
    assert waiter.read_until(len(body) + 1) == body  # then the connection closed
    leader.close()
    waiter.close()
    assert app.count == 1


def test_coalesced_leader_gone_cuts_the_streaming_waiters_short(weir_factory, half_backend):
    # the leader's backend connection goes with its client: the body will not
    # be whole, and a waiter already sending it can only be closed
    body = b"g" * (100 * 1024)
    app = half_backend(body)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m", workers=2))
    leader = BodyReader(port)
    waiter = BodyReader(port)
    assert waiter.read_until(len(body) // 2) == body[:len(body) // 2]
    leader.close(abort=True)
    got = waiter.read_until(len(body))
    assert len(got) < len(body) and got == body[:len(got)]
    waiter.close()
    app.release()
    assert get(port).body == body  # nothing half-stored: a new request fetches it whole
    assert app.count == 2


def test_coalesced_waiter_outlasts_a_pause_longer_than_the_client_timeouts(weir_factory,
                                                                         half_backend):
    # the waiter's session waits on the source, not on its client: the timer
    # its step wait left (client_header, re-armed by writes) must not cut it
    body = b"p" * (100 * 1024)
    app = half_backend(body)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m", workers=2,
                              listener_extra="timeouts: { client_header: 200ms }"))
    leader = BodyReader(port)
    waiter = BodyReader(port)
    assert waiter.read_until(len(body) // 2) == body[:len(body) // 2]
    time.sleep(1.0)  # the backend pauses: five client_header timeouts
    app.release()
    assert waiter.read_until(len(body)) == body
    assert leader.read_until(len(body)) == body
    leader.close()
    waiter.close()


def test_coalesced_waiter_gone_mid_stream_leaves_the_others(weir_factory, half_backend):
    body = b"w" * (200 * 1024)
    app = half_backend(body)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m", workers=2))
    clients = [BodyReader(port) for _ in range(8)]
    for c in clients:
        c.read_until(len(body) // 2)
    for c in clients[3:6]:
        c.close(abort=True)  # waiters (the first client leads) leave mid-stream
    app.release()
    for c in clients[:3] + clients[6:]:
        assert c.read_until(len(body)) == body
        c.close()
    assert get(port).header("Cache-Status").startswith("weir; hit")
    assert app.count == 1


def test_coalesced_waiters_cut_short_when_the_body_passes_max_object(weir_factory, half_backend):
    # chunked: the size is found out only as it streams; waiters that already
    # answered cannot be given the rest, their connections close
    body = b"L" * (300 * 1024)
    app = half_backend(body, chunked=True)
    port = free_port()
    weir_factory(cache_config(port, app, cache_extra="memory: 32m\nmax_object: 200k",
                              workers=2))
    leader = BodyReader(port)
    waiter = BodyReader(port)
    assert waiter.read_until(len(body) // 2) == body[:len(body) // 2]
    app.release()
    assert leader.read_until(len(body)) == body
    got = waiter.read_until(len(body))
    assert len(got) < len(body)
    leader.close()
    waiter.close()
    assert app.count == 1


# ---- stale-while-revalidate ------------------------------------------------------------


def test_stale_while_revalidate_refreshes_once(edge):
    def decide(req):
        if req.header("If-None-Match") == '"w1"':
            return {"status": 304, "headers": [("Cache-Control", "max-age=600"), ("ETag", '"w1"'),
                                               ("X-Refreshed", "yes")], "delay": 0.5}
        return {"status": 200, "headers": [("Cache-Control", "max-age=0, stale-while-revalidate=600"),
                                           ("ETag", '"w1"')], "body": b"swr body"}
    w, app, port = edge(decide, workers=2)
    assert get(port).body == b"swr body"
    # stale now: every request is answered at once from the stale object
    results = _parallel_gets(port, 20)
    assert all(r.status == 200 and r.body == b"swr body" for r in results)
    assert all("stale-while-revalidate" in r.header("Cache-Status") for r in results)
    wait_until(lambda: app.count >= 2, what="the background refresh")
    wait_until(lambda: get(port).header("X-Refreshed") == "yes", what="the refreshed object")
    r = get(port)
    assert r.header("Cache-Status").startswith("weir; hit;") and r.header("X-Refreshed") == "yes"
    assert app.count == 2  # one refresh for all the stale answers
    assert app.requests[1].header("If-None-Match") == '"w1"'


def test_stale_while_revalidate_refresh_with_new_body(edge):
    n = [0]

    def decide(req):
        n[0] += 1
        return {"status": 200, "headers": [("Cache-Control", "max-age=0, stale-while-revalidate=600")],
                "body": b"v%d" % n[0]}
    w, app, port = edge(decide)
    assert get(port).body == b"v1"  # stored: SWR makes it reusable though stale at once
    assert get(port).body == b"v1"  # stale answer; refresh fetches v2
    wait_until(lambda: app.count >= 2, what="the background refresh")
    wait_until(lambda: get(port).body == b"v2", what="the refreshed object")


@pytest.mark.parametrize("chunked", [False, True])
def test_stale_while_revalidate_refresh_larger_than_a_buffer(edge, chunked):
    # 200 KB: far more than the one buffer (16 KiB) a background request reads whole
    n = [0]

    def decide(req):
        n[0] += 1
        body = (b"%d" % n[0]) * (200 * 1024)
        cc = "max-age=1, stale-while-revalidate=600" if n[0] == 1 else "max-age=600"
        return {"status": 200, "headers": [("Cache-Control", cc)], "body": body, "chunked": chunked,
                "chunk_size": 7000}
    w, app, port = edge(decide, cache_extra="memory: 32m")
    assert get(port).body == b"1" * (200 * 1024)
    # stale after a second: answered stale at once, one refresh fetches v2
    r = wait_until(lambda: (lambda r: r if "stale-while-revalidate" in r.header("Cache-Status")
                            else None)(get(port)), what="a stale answer")
    assert r.body == b"1" * (200 * 1024)
    wait_until(lambda: get(port).body == b"2" * (200 * 1024), what="the refreshed object")
    r = get(port)
    assert r.body == b"2" * (200 * 1024) and r.header("Cache-Status").startswith("weir; hit; ttl=")
    assert app.count == 2


def test_purge_by_tag_and_prefix(edge):
    def decide(req):
        tags = {"/a/1": "red blue", "/a/2": "green", "/b/3": "blue", "/b/4": ""}
        extra = [("Surrogate-Key", tags[req.target])] if tags.get(req.target) else []
        return fresh(req.target.encode(), extra)
    w, app, port = edge(decide, cache_extra="purge: { allow: [127.0.0.0/8] }")
    paths = ["/a/1", "/a/2", "/b/3", "/b/4"]

    def cached():
        return {p for p in paths if get(p_port, p, headers="Cache-Control: only-if-cached\r\n").status == 200}
    p_port = port
    for p in paths:
        get(port, p)
    assert cached() == set(paths)
    r = get(port, "/", method="PURGE", headers="Surrogate-Key: blue\r\n")
    assert r.status == 200 and r.body == b"purged 2\n"
    assert cached() == {"/a/2", "/b/4"}
    r = get(port, "/", method="PURGE", headers="Cache-Tag: nothing\r\n")
    assert r.status == 404
    for p in paths:
        get(port, p)
    r = get(port, "/a/*", method="PURGE")
    assert r.status == 200 and r.body == b"purged 2\n"
    assert cached() == {"/b/3", "/b/4"}


def test_reload_keeps_objects_and_version_invalidates(edge):
    w, app, port = edge(fresh(b"kept"))
    get(port)
    w.reload(cache_config(port, app))
    assert get(port).header("Cache-Status").startswith("weir; hit")
    assert app.count == 1
    w.reload(cache_config(port, app, cache_extra="version: 2"))
    assert "fwd=uri-miss" in get(port).header("Cache-Status")
    assert app.count == 2


@pytest.mark.parametrize("targeted", [True, False])
def test_cdn_cache_control_when_configured(edge, targeted):
    spec = {"status": 200, "headers": [("Cache-Control", "no-store"),
                                       ("CDN-Cache-Control", "max-age=600")], "body": b"cdn"}
    extra = "targeted: [CDN-Cache-Control, Surrogate-Control]" if targeted else ""
    w, app, port = edge(spec, cache_extra=extra)
    get(port)
    r = get(port)
    assert r.header("Cache-Control") == "no-store"  # passed on untouched
    if targeted:
        assert r.header("Cache-Status").startswith("weir; hit")
        assert app.count == 1
    else:
        assert "detail=no-store" in r.header("Cache-Status")
        assert app.count == 2


def test_surrogate_control_second_in_list(edge):
    spec = {"status": 200, "headers": [("Cache-Control", "max-age=600"),
                                       ("Surrogate-Control", "no-store")], "body": b"s"}
    w, app, port = edge(spec, cache_extra="targeted: [CDN-Cache-Control, Surrogate-Control]")
    get(port)
    get(port)
    assert app.count == 2


def test_key_query_params_and_cookies(edge):
    w, app, port = edge(fresh(b"k"), cache_extra="key: { query_ignore: [utm_source, utm_medium], "
                                                  "cookies: [lang] }")
    get(port, "/p?id=1&utm_source=x")
    assert get(port, "/p?id=1&utm_source=y&utm_medium=z").header("Cache-Status").startswith("weir; hit")
    assert get(port, "/p?id=1").header("Cache-Status").startswith("weir; hit")
    assert app.count == 1
    get(port, "/p?id=2")
    assert app.count == 2
    get(port, "/c", headers="Cookie: a=1; lang=en\r\n")
    assert get(port, "/c", headers="Cookie: lang=en; b=2\r\n").header("Cache-Status").startswith("weir; hit")
    get(port, "/c", headers="Cookie: lang=fr\r\n")
    get(port, "/c")
    assert app.count == 5


def test_key_query_params_allow_list(edge):
    w, app, port = edge(fresh(b"k"), cache_extra="key: { query: sorted, query_params: [b, a] }")
    get(port, "/p?a=1&b=2&session=9")
    assert get(port, "/p?b=2&a=1").header("Cache-Status").startswith("weir; hit")
    assert app.count == 1


# ---- L2: a Redis store shared by weir instances ------------------------------------------


def l2_config(port, backend, redis_addr, extra=""):
    text = cache_config(port, backend, cache_extra="l2: { store: shared }\n" + extra)
    return text + "stores:\n  - { name: shared, redis: %s, timeouts: { command: 500ms } }\n" % redis_addr


def test_l2_shared_by_two_instances(weir_factory, recording_backend):
    from redis_helpers import RedisProc
    r = RedisProc(free_port())
    try:
        app = recording_backend(fresh(b"shared body", [("ETag", '"s1"')]))
        pa, pb = free_port(), free_port()
        weir_factory(l2_config(pa, app, r.addr))
        weir_factory(l2_config(pb, app, r.addr, "purge: { allow: [127.0.0.1] }"))
        assert get(pa).body == b"shared body"
        wait_until(lambda: len(r.client.keys("weir:cache:edge:*")) == 1, what="the L2 copy")
        rb = get(pb)
        assert rb.status == 200 and rb.body == b"shared body"
        # the object's age is whole seconds: a second boundary may pass between A and B
        assert rb.header("Cache-Status") in ("weir; hit; detail=l2; ttl=600",
                                             "weir; hit; detail=l2; ttl=599")
        assert rb.header("ETag") == '"s1"'
        assert app.count == 1
        # in B's memory now
        assert get(pb).header("Cache-Status").startswith("weir; hit; ttl=")
        # kept for its freshness plus an hour (it has a validator)
        ttl = r.client.ttl(r.client.keys("weir:cache:edge:*")[0])
        assert 600 < ttl <= 600 + 3600
        # a PURGE of the URI removes the L2 copy too
        assert get(pb, method="PURGE").status == 200
        wait_until(lambda: not r.client.keys("weir:cache:edge:*"), what="the L2 copy gone")
    finally:
        r.stop()


def test_l2_outage_degrades_to_memory(weir_factory, recording_backend):
    app = recording_backend(fresh(b"still here"))
    port = free_port()
    dead = "127.0.0.1:%d" % free_port()
    w = weir_factory(l2_config(port, app, dead))
    assert get(port).body == b"still here"
    r = get(port)
    assert r.body == b"still here" and r.header("Cache-Status").startswith("weir; hit")
    get(port, "/other")
    assert app.count == 2
    w.wait_log("L2 store shared")


def test_l2_keeps_every_vary_variant(weir_factory, recording_backend):
    from redis_helpers import RedisProc
    r = RedisProc(free_port())
    try:
        def by_lang(req):
            lang = req.header("Accept-Language") or "none"
            d = fresh(("lang=" + lang).encode(), [("Vary", "Accept-Language")])
            if lang == "fr":  # shorter-lived: must not shorten the key's expiry
                d["headers"] = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]
            return d
        app = recording_backend(by_lang)
        pa, pb = free_port(), free_port()
        weir_factory(l2_config(pa, app, r.addr))
        weir_factory(l2_config(pb, app, r.addr))
        for lang in ("en", "fr"):
            assert get(pa, headers="Accept-Language: %s\r\n" % lang).body == b"lang=" + lang.encode()
        key = wait_until(lambda: r.client.keys("weir:cache:edge:v*"), what="the L2 copy")[0]
        wait_until(lambda: r.client.hlen(key) == 2, what="two variants in L2")
        assert 500 < r.client.ttl(key) <= 600
        assert app.count == 2
        for lang in ("fr", "en"):
            rb = get(pb, headers="Accept-Language: %s\r\n" % lang)
            assert rb.body == b"lang=" + lang.encode()
            assert "detail=l2" in rb.header("Cache-Status")
        assert app.count == 2
        # a variant L2 does not have goes to the backend
        assert get(pb, headers="Accept-Language: de\r\n").body == b"lang=de"
        assert app.count == 3
    finally:
        r.stop()


def _tagged(req):
    tags = {"/a/1": "red", "/a/2": "green", "/b/3": "red", "/b/4": "blue"}
    return fresh(req.target.encode(), [("Surrogate-Key", tags.get(req.target, ""))])


def _l2_paths(r):
    keys = r.client.keys("weir:cache:edge:v*")
    return sorted(k.decode().split("weir.test", 1)[1] for k in keys)


def test_l2_purge_by_tag_and_prefix_with_the_purge_method(weir_factory, recording_backend):
    from redis_helpers import RedisProc
    r = RedisProc(free_port())
    try:
        app = recording_backend(_tagged)
        pa, pb = free_port(), free_port()
        weir_factory(l2_config(pa, app, r.addr))
        weir_factory(l2_config(pb, app, r.addr, "purge: { allow: [127.0.0.1] }"))
        paths = ["/a/1", "/a/2", "/b/3", "/b/4"]
        for p in paths:
            assert get(pa, p).status == 200
        wait_until(lambda: _l2_paths(r) == paths, what="four L2 copies")
        assert len(r.client.smembers("weir:cache:edge:tag:red")) == 2
        assert 500 < r.client.ttl("weir:cache:edge:tag:red") <= 600
        # B never had them in memory: only L2 can be purged there
        assert get(pb, "/", headers="Surrogate-Key: red\r\n", method="PURGE").status == 404
        wait_until(lambda: _l2_paths(r) == ["/a/2", "/b/4"], what="the red objects gone from L2")
        assert not r.client.exists("weir:cache:edge:tag:red")
        get(pb, "/a*", method="PURGE")
        wait_until(lambda: _l2_paths(r) == ["/b/4"], what="the /a prefix gone from L2")
        assert app.count == 4
        assert "detail=l2" in get(pb, "/b/4").header("Cache-Status")
        assert get(pb, "/a/2").header("Cache-Status").startswith("weir; fwd=uri-miss")
        assert app.count == 5
    finally:
        r.stop()


def test_l2_purge_through_the_admin_api(weir_factory, recording_backend):
    import requests
    from redis_helpers import RedisProc
    r = RedisProc(free_port())
    try:
        app = recording_backend(_tagged)
        pa, pb, aport = free_port(), free_port(), free_port()
        weir_factory(l2_config(pa, app, r.addr))
        weir_factory(l2_config(pb, app, r.addr) + "admin: { listen: 127.0.0.1:%d }\n" % aport)
        paths = ["/a/1", "/a/2", "/b/3", "/b/4"]
        for p in paths:
            get(pa, p)
        wait_until(lambda: _l2_paths(r) == paths, what="four L2 copies")
        url = "http://127.0.0.1:%d/api/v1/caches/edge/purge" % aport
        res = requests.post(url, json={"tag": "red"}, timeout=10).json()
        assert res == {"cache": "edge", "purged": 0, "l2": "purging"}
        wait_until(lambda: _l2_paths(r) == ["/a/2", "/b/4"], what="the red objects gone from L2")
        requests.post(url, json={"prefix": "weir.test/b/"}, timeout=10)
        wait_until(lambda: _l2_paths(r) == ["/a/2"], what="the /b/ prefix gone from L2")
        requests.post(url, json={"url": "weir.test/a/2"}, timeout=10)
        wait_until(lambda: _l2_paths(r) == [], what="the URL gone from L2")
        get(pa, "/c/5")  # (A's memory still has the others: purges act on B's)
        wait_until(lambda: _l2_paths(r) == ["/c/5"], what="a new L2 copy")
        requests.post(url, json={"all": True}, timeout=10)
        wait_until(lambda: not r.client.keys("weir:cache:edge:*"), what="L2 empty")
    finally:
        r.stop()

"""HTTP/2 from clients (listener `http2`): python3-h2 and raw frames, curl
--http2 / --http2-prior-knowledge and h2load, through TLS (ALPN h2) and h2c
prior knowledge, to HTTP/1.1 backends (the recording backend shows what
reached them); route steps over HTTP/2; flow control both ways; each attack
crafted frame by frame gets GOAWAY and a count while a legitimate client on
another connection keeps every request succeeding."""
import os
import re
import socket
import ssl
import struct
import subprocess
import threading

import h2.config
import h2.connection
import h2.events
import hpack
import pytest
import requests

from conftest import IO_TIMEOUT, cluster_yaml, config, free_port, wait_port, wait_until
from tls_helpers import Pki

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4
ENHANCE_YOUR_CALM = 0xB


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(str(tmp_path_factory.mktemp("pki")))
    p.issue("srv", "srv", ["a.test"])
    p.issue("client", "alice", client=True)
    return p


def tls_yaml(pki):
    return "tls:\n  certificates:\n    - { cert: %s, key: %s }\n" % (pki.path("srv.pem"), pki.path("srv.key"))


def start(weir_factory, endpoints, http2="http2: true", tls=None, routes=None, clusters=None):
    port, aport = free_port(), free_port()
    extra = http2 + "\n" + (tls or "")
    w = weir_factory(config(port, endpoints, listener_extra=extra, routes=routes, clusters=clusters,
                            top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    w.aport = aport
    return w


def metric(aport, name, **labels):
    wait_port(aport, what="the admin listener")
    text = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=IO_TIMEOUT).text
    total = 0.0
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- a python3-h2 client ---------------------------------------------------------


class H2Client:
    """One HTTP/2 connection (h2c prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, port, ca=None, settings=None, cert=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.scheme = "http"
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
            if cert:
                ctx.load_cert_chain(*cert)
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="a.test")
            assert sock.selected_alpn_protocol() == "h2"
            self.scheme = "https"
        self.sock = sock
        self.sent = 0  # bytes given to the socket (TLS: before encryption)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.c.initiate_connection()
        if settings:
            self.c.update_settings(settings)
        self.flush()

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.sock.sendall(data)
            self.sent += len(data)

    def close(self):
        self.sock.close()

    def exchange(self, reqs):
        """reqs: (method, path, headers, body) tuples, sent at once on their
        own streams. Returns one dict per request: status, headers, body, reset."""
        pending, results, order = {}, {}, []
        for method, path, headers, body in reqs:
            sid = self.c.get_next_available_stream_id()
            hdrs = [(":method", method), (":scheme", self.scheme), (":path", path),
                    (":authority", "a.test")] + list(headers)
            self.c.send_headers(sid, hdrs, end_stream=not body)
            results[sid] = {"status": None, "headers": {}, "body": bytearray(), "reset": None, "done": False}
            order.append(sid)
            if body:
                pending[sid] = memoryview(body)
        self.flush()
        while not all(r["done"] for r in results.values()):
            for sid, data in list(pending.items()):
                if results[sid]["done"]:
                    del pending[sid]
                    continue
                while data:
                    n = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size, len(data))
                    if n <= 0:
                        break
                    self.c.send_data(sid, data[:n].tobytes())
                    data = data[n:]
                if data:
                    pending[sid] = data
                else:
                    self.c.end_stream(sid)
                    del pending[sid]
            self.flush()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("weir closed the connection")
            for ev in self.c.receive_data(chunk):
                r = results.get(getattr(ev, "stream_id", None))
                if isinstance(ev, h2.events.ResponseReceived):
                    r["status"] = int(dict(ev.headers)[":status"])
                    r["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    r["done"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    r["reset"] = ev.error_code
                    r["done"] = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise ConnectionError("GOAWAY %s" % ev.error_code)
            self.flush()
        return [results[s] for s in order]

    def get(self, path="/", headers=()):
        return self.exchange([("GET", path, headers, b"")])[0]


# ---- raw frames ----------------------------------------------------------------


def frame(ftype, flags=0, sid=0, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def request_block(enc, path="/", extra=()):
    return enc.encode([(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "a.test")]
                      + list(extra))


class RawConn:
    def __init__(self, port, settings=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.sendall(PREFACE + frame(SETTINGS, payload=settings))
        self.buf = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # weir may have cut us off already: what it sent is still readable

    def frames(self):
        """Yields (type, flags, sid, payload) until the connection closes."""
        while True:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                     self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                yield f
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return
            if not chunk:
                return
            self.buf += chunk

    def goaway_code(self):
        for ftype, _, _, payload in self.frames():
            if ftype == GOAWAY:
                return int.from_bytes(payload[4:8], "big")
        return None

    def close(self):
        self.sock.close()


# ---- requests through the bridge ------------------------------------------------


def test_h2c_get_and_post_reach_the_http11_backend(weir_factory, recording_backend):
    b = recording_backend({"status": 201, "headers": [("X-Up", "yes"), ("Connection", "keep-alive")],
                           "body": b"made"})
    w = start(weir_factory, [b.addr])
    cl = H2Client(w.port)
    r = cl.exchange([("GET", "/a?x=1", [("cookie", "a=1"), ("cookie", "b=2"), ("x-h", "v")], b""),
                     ("POST", "/b", [("content-length", "5")], b"hello"),
                     ("PUT", "/c", [], b"chunky body")])
    cl.close()
    assert [x["status"] for x in r] == [201, 201, 201]
    assert r[0]["body"] == b"made" and r[0]["headers"]["x-up"] == "yes"
    assert "connection" not in r[0]["headers"]  # connection-specific fields are not sent in HTTP/2
    reqs = {q.target: q for q in b.wait_requests(3)}
    g, p, u = reqs["/a?x=1"], reqs["/b"], reqs["/c"]
    assert g.method == "GET" and g.header("Host") == "a.test" and g.header("Cookie") == "a=1; b=2"
    assert g.header("X-H") == "v" and g.version == "HTTP/1.1" and g.body == b""
    assert p.method == "POST" and p.body == b"hello" and p.header("Content-Length") == "5"
    assert not p.has("Transfer-Encoding")
    assert u.body == b"chunky body" and u.header("Transfer-Encoding") == "chunked"
    assert g.header("X-Forwarded-For") == "127.0.0.1"
    assert metric(w.aport, "weir_http2_streams_total", listener="web") == 3
    # each stream is an ordinary request: counted and logged as such
    assert metric(w.aport, "weir_http_requests_total", listener="web") == 3


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_lanes_are_reused_across_streams(weir_factory, recording_backend):
    b = recording_backend({"body": b"ok"})
    w = start(weir_factory, [b.addr])
    cl = H2Client(w.port)
    assert cl.get("/")["status"] == 200
    first = open_fds(w.proc.pid)
    for _ in range(19):
        assert cl.get("/")["status"] == 200
    # one lane (one session, one upstream connection) carried them all;
    # lanes are in memory: no descriptor per stream either (fewer is fine:
    # the start-up probe's connection may still have been open at `first`)
    assert open_fds(w.proc.pid) <= first
    cl.close()
    assert b.count == 20 and b.connections == 1


def test_access_log_names_http2(weir_factory, recording_backend):
    b = recording_backend({"body": b"ok"})
    w = start(weir_factory, [b.addr])
    cl = H2Client(w.port)
    assert [x["status"] for x in cl.exchange([("GET", "/x?y=1", [], b""), ("POST", "/p", [], b"abc")])] == [200, 200]
    cl.close()
    lines = w.wait_access_lines(2)
    assert any('"GET /x?y=1 HTTP/2.0" 200' in l for l in lines), lines
    assert any('"POST /p HTTP/2.0" 200' in l for l in lines), lines
    assert not any("HTTP/1.1" in l for l in lines), lines


class CountingSock:
    """A socket that counts the bytes read from it."""

    def __init__(self, sock):
        self.sock, self.received = sock, 0

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        data = self.sock.recv(n)
        self.received += len(data)
        return data

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("use_tls", [False, True])
def test_bytes_counted_as_http2(weir_factory, recording_backend, pki, use_tls):
    b = recording_backend({"body": b"x" * 3000})
    w = start(weir_factory, [b.addr], tls=tls_yaml(pki) if use_tls else None)
    cl = H2Client(w.port, ca=pki.ca if use_tls else None)
    cl.sock = CountingSock(cl.sock)
    for i in range(5):
        r = cl.exchange([("GET", "/%d" % i, [], b""), ("POST", "/p%d" % i, [], b"y" * 100)])
        assert [x["status"] for x in r] == [200, 200] and all(len(x["body"]) == 3000 for x in r)
    # a PING answered: everything weir sent before it is read too
    cl.c.ping(b"12345678")
    cl.flush()
    acked = False
    for _ in range(100):
        for ev in cl.c.receive_data(cl.sock.recv(65536)):
            acked |= isinstance(ev, h2.events.PingAckReceived)
        if acked:
            break
    assert acked
    # the HTTP/2 bytes of the connection (TLS: the plaintext, as for
    # HTTP/1.1), the preface included, not the lanes' HTTP/1.1 ones
    wait_until(lambda: metric(w.aport, "weir_bytes_received_total", listener="web") == cl.sent,
               what="weir_bytes_received_total to be %d" % cl.sent)
    assert metric(w.aport, "weir_bytes_sent_total", listener="web") == cl.sock.received
    cl.close()


def test_curl_prior_knowledge_and_tls_alpn(weir_factory, recording_backend, pki):
    b = recording_backend({"body": b"tls-body"})
    w = start(weir_factory, [b.addr], tls=tls_yaml(pki))
    base = ["curl", "-sS", "--max-time", "10", "--cacert", pki.ca, "--resolve", "a.test:%d:127.0.0.1" % w.port,
            "-w", "\n%{http_version}"]
    url = "https://a.test:%d/x" % w.port
    r = subprocess.run(base + ["--http2", url], capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.stdout == "tls-body\n2", r.stderr
    # a client without h2 gets HTTP/1.1 from the same listener
    r = subprocess.run(base + ["--http1.1", url], capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.stdout == "tls-body\n1.1", r.stderr
    cl = H2Client(w.port, ca=pki.ca)
    assert cl.get("/y")["body"] == b"tls-body"
    cl.close()
    # h2c needs the listener option; plain HTTP/1.1 stays on the same port
    w2 = start(weir_factory, [b.addr])
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                        "http://127.0.0.1:%d/z" % w2.port], capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.stdout == "tls-body\n2", r.stderr
    r = requests.get("http://127.0.0.1:%d/z" % w2.port, timeout=IO_TIMEOUT)
    assert r.text == "tls-body"


def test_client_certificate_is_the_identity_of_streams(weir_factory, recording_backend, pki):
    b = recording_backend({"body": b"ok"})
    routes = ("- cluster: app\n  rate_limit:\n    - { algorithm: fixed_window, rate: 2/m, "
              "key: identity, on_missing: allow }\n")
    w = start(weir_factory, [b.addr], routes=routes,
              tls=tls_yaml(pki) + "  client_ca: %s\n  client_verify: optional\n" % pki.ca)
    alice = H2Client(w.port, ca=pki.ca, cert=(pki.path("client.pem"), pki.path("client.key")))
    assert [alice.get("/")["status"] for _ in range(3)] == [200, 200, 429]
    alice.close()
    # a new connection with the same certificate: the same identity
    alice = H2Client(w.port, ca=pki.ca, cert=(pki.path("client.pem"), pki.path("client.key")))
    assert alice.get("/")["status"] == 429
    alice.close()
    # without a certificate there is no identity: on_missing (allow) lets it through
    anon = H2Client(w.port, ca=pki.ca)
    assert [anon.get("/")["status"] for _ in range(3)] == [200, 200, 200]
    anon.close()


def test_without_the_option_no_h2(weir_factory, recording_backend, pki):
    b = recording_backend({"body": b"x"})
    w = start(weir_factory, [b.addr], http2="", tls=tls_yaml(pki))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", pki.ca, "--resolve",
                        "a.test:%d:127.0.0.1" % w.port, "--http2", "-w", "\n%{http_version}",
                        "https://a.test:%d/" % w.port], capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.stdout == "x\n1.1", r.stderr
    w2 = start(weir_factory, [b.addr], http2="")
    raw = RawConn(w2.port)
    data = b"".join(iter(lambda: raw.sock.recv(4096), b""))
    raw.close()
    assert data.startswith(b"HTTP/1.1 505")  # the preface is an HTTP/1.1 request for HTTP/2.0


def test_many_streams_spread_over_backends(weir_factory, demo_backend):
    d1, d2 = demo_backend("one"), demo_backend("two")
    w = start(weir_factory, [d1.addr, d2.addr])
    cl = H2Client(w.port)
    r = cl.exchange([("GET", "/", [], b"") for i in range(40)])
    cl.close()
    assert all(x["status"] == 200 for x in r), [(x["status"], x["reset"], bytes(x["body"][:100])) for x in r]
    backends = [x["headers"].get("x-backend") for x in r]
    assert backends.count("one") == 20 and backends.count("two") == 20, backends
    out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "50", "http://127.0.0.1:%d/" % w.port],
                         capture_output=True, text=True, timeout=60).stdout
    assert "2000 succeeded, 0 failed, 0 errored" in out, out


def test_route_steps_apply_to_streams(weir_factory, recording_backend):
    b = recording_backend({"body": b"ok"})
    routes = ("- match: { path_prefix: /deny }\n  access: { deny: [127.0.0.0/8] }\n  cluster: app\n"
              "- headers: { request: { set: { X-Env: prod } }, response: { set: { X-Out: h2 } } }\n"
              "  cluster: app\n")
    w = start(weir_factory, [b.addr], routes=routes)
    cl = H2Client(w.port)
    r = cl.exchange([("GET", "/deny/x", [], b""), ("GET", "/ok", [], b"")])
    cl.close()
    assert r[0]["status"] == 403
    assert r[1]["status"] == 200 and r[1]["headers"]["x-out"] == "h2"
    (req,) = b.wait_requests(1)
    assert req.target == "/ok" and req.header("X-Env") == "prod"


def test_large_bodies_both_ways(weir_factory, recording_backend):
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB
    b = recording_backend(lambda req: {"body": big if req.target == "/down" else b"got %d" % len(req.body)})
    w = start(weir_factory, [b.addr])
    cl = H2Client(w.port)
    r = cl.exchange([("GET", "/down", [], b""), ("POST", "/up", [], big)])
    cl.close()
    assert r[0]["status"] == 200 and bytes(r[0]["body"]) == big
    assert r[1]["body"] == b"got %d" % len(big)
    up = [q for q in b.wait_requests(2) if q.target == "/up"][0]
    assert up.body == big


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the 127.0.0.1 TCP socket local_port -> remote_port."""
    with open("/proc/net/tcp") as f:
        for line in list(f)[1:]:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == local_port and int(parts[2].split(":")[1], 16) == remote_port:
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    raise AssertionError("no socket %d -> %d" % (local_port, remote_port))


class FloodBackend(threading.Thread):
    """Answers one request with a huge body, sending until the kernel takes
    no more; counts what it sent."""

    def __init__(self, size):
        super().__init__(daemon=True)
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.size, self.sent, self.peer_port, self.stop_ev = size, 0, None, threading.Event()

    def run(self):
        conn, peer = self.lsock.accept()
        self.peer_port = peer[1]
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size)
        conn.setblocking(False)
        chunk = b"z" * 65536
        while not self.stop_ev.is_set() and self.sent < self.size:
            try:
                self.sent += conn.send(chunk[:self.size - self.sent])
            except BlockingIOError:
                self.stop_ev.wait(0.005)
        self.stop_ev.wait()
        conn.close()


def test_slow_client_stops_the_backend(weir_factory):
    # the client reads nothing past its first window: the lane (64 KiB each
    # way) fills, the session stops reading the upstream, and the rest waits
    # in the kernel's socket buffers, not in weir
    b = FloodBackend(64 << 20)
    b.start()
    w = start(weir_factory, ["127.0.0.1:%d" % b.port])
    cl = H2Client(w.port)
    cl.c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/big"), (":authority", "a.test")],
                      end_stream=True)
    cl.flush()
    got = 0

    def stalled(state={"last": -1, "same": 0}):
        nonlocal got
        cl.sock.settimeout(0.05)
        try:
            for ev in cl.c.receive_data(cl.sock.recv(65536)):
                if isinstance(ev, h2.events.DataReceived):
                    got += len(ev.data)  # not acknowledged: the window stays shut
        except socket.timeout:
            pass
        state["same"] = state["same"] + 1 if b.sent == state["last"] else 0
        state["last"] = b.sent
        return b.peer_port and state["same"] >= 20

    wait_until(stalled, what="the backend to stall")
    tx, _ = tcp_queues(b.port, b.peer_port)
    _, rx = tcp_queues(b.peer_port, b.port)
    held = b.sent - tx - rx - got
    b.stop_ev.set()
    cl.close()
    assert got <= 65535 and b.sent < b.size
    assert held < (1 << 20), "weir holds %d bytes of the answer" % held


def test_backend_closing_mid_answer_resets_the_stream(weir_factory, recording_backend):
    b = recording_backend("close_mid_body")
    w = start(weir_factory, [b.addr])
    cl = H2Client(w.port)
    r = cl.get("/")
    assert r["reset"] == 2  # INTERNAL_ERROR
    b.respond = {"body": b"fine"}
    assert cl.get("/")["body"] == b"fine"  # the connection goes on
    cl.close()


def test_drain_sends_goaway_and_finishes_streams(weir_factory, recording_backend):
    b = recording_backend({"body": b"slow", "delay": 0.5})
    w = start(weir_factory, [b.addr])
    raw = RawConn(w.port)
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(hpack.Encoder())))
    b.wait_requests(1)
    w.proc.send_signal(15)
    seen = []
    for ftype, flags, sid, payload in raw.frames():
        if ftype == GOAWAY:
            seen.append(("goaway", int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:8], "big")))
        elif ftype == DATA and sid == 1:
            seen.append(("data", payload, flags & END_STREAM))
    raw.close()
    # a graceful GOAWAY naming stream 1, then stream 1's answer, then the close
    assert seen[0] == ("goaway", 1, 0), seen
    assert ("data", b"slow", END_STREAM) in seen, seen
    assert w.stop() == 0


# ---- attacks -----------------------------------------------------------------------


class Legit(threading.Thread):
    """A well-behaved client on its own connection, requesting until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failed, self.stop_ev = port, 0, [], threading.Event()

    def run(self):
        try:
            cl = H2Client(self.port)
            while not self.stop_ev.is_set():
                r = cl.get("/legit")
                if r["status"] == 200:
                    self.ok += 1
                else:
                    self.failed.append(r)
            cl.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failed.append(repr(e))

    def finish(self):
        wait_until(lambda: self.ok > 0, what="the legitimate client's first answer")
        self.stop_ev.set()
        self.join(IO_TIMEOUT)
        assert not self.failed and self.ok > 0, self.failed


def rapid_reset(raw):
    enc = hpack.Encoder()
    for i in range(400):
        sid = 1 + 2 * i
        raw.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc)) +
                 frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))


def continuation_flood(raw):
    enc = hpack.Encoder()
    raw.send(frame(HEADERS, 0, 1, request_block(enc)))
    for _ in range(200):
        raw.send(frame(CONTINUATION, 0, 1, enc.encode([("x-a", "b")])))


def hpack_bomb(raw):
    enc = hpack.Encoder()
    # one 4000-byte field in the dynamic table, then referenced by index: a
    # few bytes on the wire, over 64 KiB decoded
    block = request_block(enc, extra=[("x-bomb", "a" * 4000)] * 40)
    assert len(block) < 4300
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))


def settings_flood(raw):
    raw.send(frame(SETTINGS) * 300)


def ping_flood(raw):
    raw.send(frame(PING, payload=b"12345678") * 300)


def empty_data_flood(raw):
    enc = hpack.Encoder()
    block = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "a")])
    raw.send(frame(HEADERS, END_HEADERS, 1, block) + frame(DATA, 0, 1) * 300)


def window_update_flood(raw):
    raw.send(frame(8, 0, 0, struct.pack(">I", 1)) * 1100)  # WINDOW_UPDATE, nothing of ours to answer


@pytest.mark.parametrize("attack,kind", [
    (rapid_reset, "rapid_reset"),
    (continuation_flood, "continuation_flood"),
    (hpack_bomb, "header_list"),
    (settings_flood, "settings_flood"),
    (ping_flood, "ping_flood"),
    (empty_data_flood, "empty_frames"),
    (window_update_flood, "control_flood"),
])
def test_attack_gets_goaway_and_is_counted(weir_factory, recording_backend, attack, kind):
    b = recording_backend({"body": b"ok", "delay": 0.01})
    w = start(weir_factory, [b.addr])
    legit = Legit(w.port)
    legit.start()
    raw = RawConn(w.port)
    attack(raw)
    assert raw.goaway_code() == ENHANCE_YOUR_CALM
    raw.close()
    legit.finish()
    assert metric(w.aport, "weir_http2_attacks_total", listener="web", kind=kind) == 1
    assert "http2: client 127.0.0.1 on listener web: %s" % kind in w.errlog()


def test_zero_window_stall_resets_the_stream(weir_factory, recording_backend):
    b = recording_backend({"body": b"z" * 100000})
    w = start(weir_factory, [b.addr], http2="http2: { window_timeout: 200ms }")
    legit = Legit(w.port)
    legit.start()
    raw = RawConn(w.port, settings=struct.pack(">HI", 4, 0))  # INITIAL_WINDOW_SIZE 0
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(hpack.Encoder(), "/big")))
    code = None
    for ftype, _, sid, payload in raw.frames():
        if ftype == RST_STREAM and sid == 1:
            code = int.from_bytes(payload, "big")
            break
    raw.close()
    assert code == ENHANCE_YOUR_CALM
    legit.finish()
    assert metric(w.aport, "weir_http2_attacks_total", listener="web", kind="zero_window") == 1


def test_window_updates_for_our_data_are_no_flood(weir_factory, recording_backend):
    # a client giving back the window of each DATA frame it read sends two
    # WINDOW_UPDATEs per frame: far over 10 x max_control per second on a
    # fast download, and no attack
    big = b"d" * (4 << 20)
    b = recording_backend({"body": big})
    w = start(weir_factory, [b.addr], http2="http2: { max_control: 5 }")
    cl = H2Client(w.port)
    for _ in range(2):
        r = cl.get("/big")
        assert r["status"] == 200 and len(r["body"]) == len(big)
    cl.close()
    assert metric(w.aport, "weir_http2_attacks_total", listener="web", kind="control_flood") == 0


def test_streams_over_the_limit_are_refused(weir_factory, recording_backend):
    b = recording_backend("hang")
    w = start(weir_factory, [b.addr], http2="http2: { max_concurrent_streams: 2 }")
    raw = RawConn(w.port)
    enc = hpack.Encoder()
    # before the client acknowledges the SETTINGS, nghttp2 lets a third stream open: weir refuses it
    raw.send(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc)) for sid in (1, 3, 5)))
    code = None
    for ftype, _, sid, payload in raw.frames():
        if ftype == RST_STREAM and sid == 5:
            code = int.from_bytes(payload, "big")
            break
    raw.close()
    assert code in (7, 1)  # REFUSED_STREAM (or nghttp2's own PROTOCOL_ERROR)


def test_config_errors_point_at_the_value(tmp_path):
    port = free_port()
    cases = [
        ("http2: maybe\n", "'http2' (true, false or a map)"),
        ("http2: { max_concurrent_streams: 0 }\n", "max_concurrent_streams"),
        ("http2: { window: 1k }\n", "window"),
        ("http2: { streams: 10 }\n", "streams"),
    ]
    for i, (listener, want) in enumerate(cases):
        f = tmp_path / ("c%d.yaml" % i)
        f.write_text(config(port, ["127.0.0.1:1"], listener_extra=listener))
        r = subprocess.run([os.environ["WEIR_BIN"], "check", "-c", str(f)], capture_output=True, text=True,
                           timeout=IO_TIMEOUT)
        assert r.returncode == 2, (listener, r.stdout, r.stderr)
        assert want in r.stderr + r.stdout, (want, r.stderr)
        assert re.search(r"c%d\.yaml:\d+:\d+: " % i, r.stderr + r.stdout)
    f = tmp_path / "redis.yaml"
    f.write_text("listeners:\n  - { name: r, listen: 127.0.0.1:%d, protocol: redis, redis_cluster: c, http2: true }\n"
                 "redis_clusters:\n  - { name: c, servers: [127.0.0.1:1] }\n" % port)
    r = subprocess.run([os.environ["WEIR_BIN"], "check", "-c", str(f)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 2 and "http2 is for http listeners" in r.stderr + r.stdout, r.stderr + r.stdout
    f = tmp_path / "ok.yaml"
    f.write_text(config(port, ["127.0.0.1:1"], listener_extra="http2: { max_concurrent_streams: 10, window_timeout: 5s }"))
    r = subprocess.run([os.environ["WEIR_BIN"], "check", "-c", str(f)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr


def test_client_reset_closes_the_lane(weir_factory, recording_backend):
    b = recording_backend("hang")
    w = start(weir_factory, [b.addr])

    def in_flight():
        api = "http://127.0.0.1:%d/api/v1/clusters/app" % w.aport
        return requests.get(api, timeout=IO_TIMEOUT).json()["endpoints"][0]["in_flight"]

    raw = RawConn(w.port)
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(hpack.Encoder())))
    b.wait_requests(1)
    assert in_flight() == 1
    raw.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))  # CANCEL
    # the proxy session sees its client go away and drops the upstream request
    wait_until(lambda: in_flight() == 0, what="the request to end")
    raw.close()


def test_idle_connection_gets_goaway(weir_factory, recording_backend):
    b = recording_backend({"body": b"ok"})
    port, aport = free_port(), free_port()
    w = weir_factory(config(port, [b.addr], listener_extra="http2: true\ntimeouts: { client_idle: 300ms }",
                            top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    cl = H2Client(w.port)
    assert cl.get("/")["status"] == 200
    raw = RawConn(w.port)
    assert raw.goaway_code() == 0  # NO_ERROR, then the close
    raw.close()
    cl.close()

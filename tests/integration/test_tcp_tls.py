"""TLS on protocol: tcp listeners (termination) and to tls clusters in tcp
mode: Python ssl clients and openssl s_client through weir to a real
redis-server, an HTTP backend and echo backends; SNI routing after the
handshake; client certificates; close_notify <-> FIN; a large transfer both
ways; garbage and silence instead of a ClientHello; drain and reload with an
open TLS session; a TLS upstream (with a PROXY header before its handshake)."""
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import threading

import pytest
import redis

from conftest import IO_TIMEOUT, cluster_yaml, free_port, wait_until
from redis_helpers import RedisProc
from tcp_helpers import backends, metric, parse_proxy_v2, scrape, tcp_config  # noqa: F401
from tls_helpers import Pki

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
    reason="needs the openssl command")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(str(tmp_path_factory.mktemp("pki")))
    p.issue("default", "default-cert", ["default.test"])
    p.issue("a", "a-cert", ["a.test"])
    p.issue("wild", "wild-cert", ["*.w.test"])
    p.issue("next", "next-cert", ["default.test"])
    p.issue("client", "alice", client=True)
    p.issue("backend", "backend-cert", ["backend.test"])
    return p


def tls_map(pki, default="default", extra=""):
    return ("tls:\n  certificates:\n"
            "    - { cert: %s, key: %s }\n" % (pki.path(default + ".pem"), pki.path(default + ".key")) +
            "    - { cert: %s, key: %s }\n" % (pki.path("a.pem"), pki.path("a.key")) +
            "    - { cert: %s, key: %s }\n" % (pki.path("wild.pem"), pki.path("wild.key")) + extra)


def client_ctx(pki, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    if cert:
        ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
    return ctx


class TlsClient:
    """A TLS client over a blocking socket through memory BIOs, so it can
    send close_notify alone (a TLS half-close) and keep reading, and tell a
    close_notify from a bare FIN."""

    def __init__(self, port, ctx, name):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=name)
        self.got_close_notify = False
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            self.inc.write_eof()
            return False
        self.inc.write(d)
        return True

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def recv_until_end(self):
        """Everything until the peer's close_notify or FIN."""
        out = bytearray()
        while True:
            try:
                d = self.obj.read(65536)
                if not d:  # close_notify when ours was not sent yet
                    self.got_close_notify = True
                    return bytes(out)
                out.extend(d)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                self.got_close_notify = True
                return bytes(out)
            except ssl.SSLEOFError:
                return bytes(out)
            if not self._fill():
                try:
                    out.extend(self.obj.read(65536))
                except ssl.SSLZeroReturnError:
                    self.got_close_notify = True
                except ssl.SSLError:
                    pass
                return bytes(out)

    def recv_exact(self, n):
        out = bytearray()
        while len(out) < n:
            try:
                d = self.obj.read(n - len(out))
                assert d, "close_notify after %d of %d bytes" % (len(out), n)
                out.extend(d)
                continue
            except ssl.SSLWantReadError:
                pass
            assert self._fill(), "closed after %d of %d bytes" % (len(out), n)
        return bytes(out)

    def close(self):
        self.sock.close()


def tls_exchange(port, ctx, name, payload):
    """Sends payload then close_notify; returns (what came back, whether it
    ended with close_notify)."""
    c = TlsClient(port, ctx, name)
    try:
        c.send(payload)
        c.close_notify()
        return c.recv_until_end(), c.got_close_notify
    finally:
        c.close()


def test_tcp_tls_redis_and_http_unchanged(weir_factory, demo_backend, pki):
    rport, hport, aport = free_port(), free_port(), free_port()
    rd = RedisProc(free_port())
    try:
        demo = demo_backend("web1")
        text = tcp_config(rport, [cluster_yaml("rds", [rd.addr]), cluster_yaml("web", [demo.addr])],
                          cluster="rds", listener_extra=tls_map(pki), admin_port=aport,
                          extra_listeners=("- name: tcp2\n  listen: 127.0.0.1:%d\n  protocol: tcp\n"
                                           "  cluster: web\n" % hport) +
                          "\n".join("  " + l for l in tls_map(pki).splitlines()))
        weir_factory(text, port=rport)
        c = redis.Redis(port=rport, socket_timeout=IO_TIMEOUT, ssl=True, ssl_ca_certs=pki.ca,
                        ssl_cert_reqs="required", ssl_check_hostname=False)
        assert c.ping()
        big = os.urandom(1 << 20)
        assert c.set("k", big)
        assert c.get("k") == big
        assert rd.client.get("k") == big  # the server got the plaintext
        # openssl s_client speaks RESP by hand
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % rport, "-quiet",
                            "-servername", "default.test", "-CAfile", pki.ca, "-verify_return_error"],
                           input=b"PING\r\nQUIT\r\n", capture_output=True, timeout=IO_TIMEOUT)
        # redis closes after QUIT: its FIN reaches s_client as close_notify and ends it
        assert r.stdout == b"+PONG\r\n+OK\r\n", (r.stdout, r.stderr)
        ctx = client_ctx(pki)
        with socket.create_connection(("127.0.0.1", hport), timeout=IO_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                assert s.selected_alpn_protocol() is None
                s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                body = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    body += d
        assert body.startswith(b"HTTP/1.1 200"), body[:100]
        assert b"X-Backend: web1" in body
        m = scrape(aport)
        assert metric(m, "weir_tls_handshakes_total", side="server", listener="tcp",
                      result="success") == 2  # redis-py (one pooled connection), s_client
        assert metric(m, "weir_tls_handshakes_total", side="server", listener="tcp2",
                      result="success") == 1
        assert metric(m, "weir_tls_versions_total", side="server", listener="tcp",
                      version="TLSv1.3") == 2
        assert metric(m, "weir_tcp_bytes_total", cluster="rds", direction="to_upstream") > 1 << 20
        assert metric(m, "weir_tcp_spliced_bytes_total", cluster="rds") == 0
    finally:
        rd.stop()


def test_tcp_tls_sni_routes_after_handshake(weir_factory, backends, pki):
    a, w, d = backends("a"), backends("w"), backends("d")
    port = free_port()
    sni = "sni:\n  - { match: a.test, cluster: ca }\n  - { match: '*.w.test', cluster: cw }\n"
    weir_factory(tcp_config(port, [cluster_yaml("ca", [a.addr]), cluster_yaml("cw", [w.addr]),
                                   cluster_yaml("cd", [d.addr])], cluster="cd",
                            listener_extra=tls_map(pki) + sni))
    ctx = client_ctx(pki)
    ctx.check_hostname = False
    for name, want in (("a.test", b"a"), ("x.w.test", b"w"), ("unknown.test", b"d"),
                       ("default.test", b"d")):
        out, notified = tls_exchange(port, ctx, name, b"hello")
        assert out == b"hello<EOF:%s:5>" % want, (name, out)
        # the upstream's FIN came back as close_notify
        assert notified, name
    # the client's close_notify reached the backend as a FIN: it answered <EOF:...>
    assert a.received() == b"hello"


def test_tcp_tls_client_certificate_required(weir_factory, backends, pki):
    e = backends("e")
    port, aport = free_port(), free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])], admin_port=aport,
                            listener_extra=tls_map(pki, extra="  client_ca: %s\n  client_verify: "
                                                   "required\n" % pki.ca)))
    out, _ = tls_exchange(port, client_ctx(pki, cert="client"), "default.test", b"ok")
    assert out == b"ok<EOF:e:2>"
    with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
        c = TlsClient(port, client_ctx(pki), "default.test")
        c.send(b"x")
        assert c.recv_until_end() != b""  # TLS 1.3: the refusal comes after the client's Finished
    assert e.count() == 1  # the refused client never reached the cluster
    wait_until(lambda: metric(scrape(aport), "weir_tls_handshakes_total", side="server",
                              result="failure") >= 1, what="the failure counted")


class TlsEcho:
    """An echo server terminating TLS (Python ssl); reads a PROXY v2 header
    in the clear first when proxy=True. Records what it got per connection."""

    def __init__(self, pki, proxy=False):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.path("backend.pem"), pki.path("backend.key"))
        self.proxy = proxy
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.got, self.headers, self.errors = [], [], []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(IO_TIMEOUT)
        try:
            if self.proxy:
                hdr = s.recv(16)
                while len(hdr) < 16:
                    hdr += s.recv(16 - len(hdr))
                n = 16 + int.from_bytes(hdr[14:16], "big")
                while len(hdr) < n:
                    hdr += s.recv(n - len(hdr))
                self.headers.append(parse_proxy_v2(hdr))
            t = self.ctx.wrap_socket(s, server_side=True)
            data = b""
            while True:
                d = t.recv(65536)
                if not d:
                    break
                data += d
                t.sendall(d)
            self.got.append(data)
            t.sendall(b"<tls-end:%d>" % len(data))
            t.close()
        except (OSError, ssl.SSLError) as e:
            self.errors.append(e)
            s.close()

    def stop(self):
        self.sock.close()


def test_tcp_to_tls_cluster(weir_factory, pki):
    be = TlsEcho(pki, proxy=True)
    try:
        port, aport = free_port(), free_port()
        weir_factory(tcp_config(port, [cluster_yaml("up", ["127.0.0.1:%d" % be.port],
                                                    extra="tls: { ca: %s, sni: backend.test }"
                                                    % pki.ca)],
                                cluster="up", admin_port=aport, listener_extra="proxy_protocol: v2\n"))
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        s.sendall(b"plain in")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        assert out == b"plain in<tls-end:8>", (out, be.errors)
        assert be.got == [b"plain in"]
        assert be.headers[0][0] == "127.0.0.1"
        assert metric(scrape(aport), "weir_tls_handshakes_total", side="client",
                      result="success") == 1
    finally:
        be.stop()


def test_tcp_tls_cluster_refusing_handshake_is_a_connect_failure(weir_factory, pki):
    be = TlsEcho(pki)
    try:
        port, aport = free_port(), free_port()
        weir_factory(tcp_config(port, [cluster_yaml("up", ["127.0.0.1:%d" % be.port],
                                                    extra="tls: { ca: %s, sni: wrong.test }"
                                                    % pki.ca)],
                                cluster="up", admin_port=aport))
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        s.sendall(b"x")
        try:
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass  # closed with "x" unread
        s.close()
        m = scrape(aport)
        assert metric(m, "weir_tcp_connect_errors_total", cluster="up") == 1
        assert metric(m, "weir_tls_handshakes_total", side="client", result="failure") == 1
    finally:
        be.stop()


class BulkBackend:
    """Per connection: reads exactly `n` bytes (hashing them) while sending
    `n` bytes of its own, then closes."""

    def __init__(self, n):
        self.n = n
        self.sent = os.urandom(n)
        self.got_hash = None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        s, _ = self.sock.accept()
        s.settimeout(IO_TIMEOUT * 3)
        sender = threading.Thread(target=s.sendall, args=(self.sent,), daemon=True)
        sender.start()
        h, left = hashlib.sha256(), self.n
        while left:
            d = s.recv(min(left, 1 << 20))
            if not d:
                break
            h.update(d)
            left -= len(d)
        self.got_hash = h.hexdigest()
        sender.join(IO_TIMEOUT * 3)
        s.close()


def test_tcp_tls_large_transfer_both_ways(weir_factory, pki):
    n = 20 << 20
    be = BulkBackend(n)
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [be.addr])], listener_extra=tls_map(pki)))
    payload = os.urandom(n)
    c = TlsClient(port, client_ctx(pki), "default.test")
    try:
        # all of ours first, none of theirs read yet: weir holds back the
        # backend's bytes (bounded) while ours keep flowing
        for i in range(0, n, 1 << 20):
            c.send(payload[i:i + (1 << 20)])
        got = c.recv_exact(n)
    finally:
        c.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(be.sent).digest()
    wait_until(lambda: be.got_hash is not None, what="the backend read everything")
    assert be.got_hash == hashlib.sha256(payload).hexdigest()


def test_tcp_tls_garbage_and_silence_are_closed(weir_factory, backends, pki):
    e = backends("e")
    port, aport = free_port(), free_port()
    text = tcp_config(port, [cluster_yaml("app", [e.addr])], admin_port=aport,
                      listener_extra=tls_map(pki) + "timeouts: { client_header: 1s }\n")
    w = weir_factory(text)
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        rest = s.recv(100)  # a TLS alert at most, then the end
        assert rest == b"" or rest[:1] == b"\x15"
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    wait_until(lambda: metric(scrape(aport), "weir_tls_handshakes_total", side="server",
                              result="failure") == 1, what="the garbage counted")
    quiet = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    assert quiet.recv(10) == b""  # closed by weir: the handshake timeout
    quiet.close()
    w.wait_log("no TLS handshake within timeouts.client_header")
    assert e.count() == 0


def test_tcp_tls_drain_lets_session_finish(weir_factory, backends, pki):
    e = backends("e")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])], listener_extra=tls_map(pki)))
    c = TlsClient(port, client_ctx(pki), "default.test")
    c.send(b"one")
    assert c.recv_exact(3) == b"one"
    w.proc.send_signal(signal.SIGTERM)
    w.wait_log("draining")
    c.send(b"two")
    assert c.recv_exact(3) == b"two"
    c.close_notify()
    assert c.recv_until_end() == b"<EOF:e:6>"
    c.close()
    w.proc.wait(IO_TIMEOUT)
    assert w.proc.returncode == 0


def test_tcp_tls_reload_new_certificate_keeps_session(weir_factory, backends, pki):
    e = backends("e")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])], listener_extra=tls_map(pki)))
    c = TlsClient(port, client_ctx(pki), "default.test")
    c.send(b"before")
    assert c.recv_exact(6) == b"before"
    w.reload(tcp_config(port, [cluster_yaml("app", [e.addr])],
                        listener_extra=tls_map(pki, default="next")))

    def served_cn():
        ctx = client_ctx(pki)
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="default.test") as s:
                return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
    wait_until(lambda: served_cn() == "next-cert", what="the new certificate served")
    c.send(b"after")
    c.close_notify()
    assert c.recv_until_end() == b"after<EOF:e:11>"
    c.close()


def test_tcp_tls_config(tmp_path, pki):
    from conftest import WEIR_BIN

    def check(text):
        p = tmp_path / "c.yaml"
        p.write_text(text)
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True,
                           timeout=IO_TIMEOUT)
        return r.returncode, r.stdout + r.stderr

    cert = "{ certificates: [{ cert: %s, key: %s }] }" % (pki.path("a.pem"), pki.path("a.key"))
    base = ("clusters:\n  - { name: app, endpoints: [127.0.0.1:1] }\n"
            "redis_clusters:\n  - { name: r, shards: [{ primary: 127.0.0.1:1 }] }\nlisteners:\n")
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "tls: %s, sni: [{ match: a.test, cluster: app }] }\n" % cert)
    assert rc == 0, out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: redis, "
                           "redis_cluster: r, tls: %s }\n" % cert)
    assert rc != 0 and "tls is for http and tcp listeners" in out and ":6:" in out, out
    rc, out = check(base + "  - { name: t, listen: 127.0.0.1:1, protocol: tcp, cluster: app, "
                           "tls: { certificates: [{ cert: /nonexistent.pem, key: %s }] } }\n"
                    % pki.path("a.key"))
    assert rc != 0 and ":6:" in out, out


def test_tcp_tls_idle_timeout_closes_with_close_notify(weir_factory, backends, pki):
    e = backends("e")
    port = free_port()
    w = weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])],
                                listener_extra=tls_map(pki) + "timeouts: { client_idle: 1s }\n"))
    c = TlsClient(port, client_ctx(pki), "default.test")
    c.send(b"hi")
    assert c.recv_exact(2) == b"hi"
    assert c.recv_until_end() == b""  # weir ends the quiet session
    assert c.got_close_notify
    c.close()
    w.wait_log("idle for")
    wait_until(e.idle, what="the upstream connection closed too")


def test_tcp_tls_sessions_open_the_breaker(weir_factory, pki):
    be = TlsEcho(pki)
    try:
        port, aport = free_port(), free_port()
        weir_factory(tcp_config(port, [cluster_yaml("up", ["127.0.0.1:%d" % be.port], extra=(
            "tls: { ca: %s, sni: wrong.test }\n"
            "circuit_breaker: { failures: 2, window: 1m, recovery_timeout: 1m }" % pki.ca))],
            cluster="up", admin_port=aport))
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            try:
                assert s.recv(10) == b""
            except ConnectionResetError:
                pass
            s.close()
        # two refused handshakes opened it: the later sessions never connected
        m = scrape(aport)
        assert metric(m, "weir_tls_handshakes_total", side="client", result="failure") == 2
        assert metric(m, "weir_breaker_transitions_total", cluster="up", to="open") == 1
    finally:
        be.stop()


def test_tcp_tls_listener_sends_proxy_header_to_plain_upstream(weir_factory, backends, pki):
    e = backends("e")
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [e.addr])],
                            listener_extra=tls_map(pki) + "proxy_protocol: v2\n"))
    c = TlsClient(port, client_ctx(pki), "default.test")
    c.send(b"data")
    c.close_notify()
    out = c.recv_until_end()
    c.close()
    got = e.received()
    src, dst, sport, dport, n = parse_proxy_v2(got)
    assert (src, dst, dport) == ("127.0.0.1", "127.0.0.1", port)
    assert got[n:] == b"data"  # the plaintext after the header
    assert out == got + b"<EOF:e:%d>" % len(got)  # the echo, header included


def test_tcp_tls_upstream_fin_first_then_client_keeps_sending(weir_factory, backends, pki):
    g = backends("g", greet_and_shut=True)
    port = free_port()
    weir_factory(tcp_config(port, [cluster_yaml("app", [g.addr])], listener_extra=tls_map(pki)))
    c = TlsClient(port, client_ctx(pki), "default.test")
    # the backend's FIN arrives as close_notify; the client's side stays open
    assert c.recv_until_end() == b"bye:g"
    assert c.got_close_notify
    c.send(b"more")
    c.close_notify()
    wait_until(lambda: g.idle() and g.count() == 1, what="the backend's connection ended")
    c.close()
    assert g.received() == b"more"

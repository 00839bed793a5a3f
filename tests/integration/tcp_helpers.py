"""Small TCP peers for the tcp-mode tests: an echo backend that records
what each connection sent, a TLS ClientHello made by Python's ssl module
(no network), and the tcp listener's YAML."""
import errno
import socket
import ssl
import struct
import threading

import pytest
import requests

from conftest import IO_TIMEOUT, free_port, indent


class TcpBackend:
    """Echoes what it reads; after the client's EOF it sends
    b"<EOF:NAME:N>" (N bytes received) and closes. greet_and_shut: sends
    b"bye:NAME" and shuts its sending side at once, then reads until EOF.
    conns: the bytes each connection sent, in order of accept."""

    def __init__(self, name, greet_and_shut=False, echo=True):
        self.name = name
        self.greet_and_shut = greet_and_shut
        self.echo = echo
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.conns = []
        self.closed = 0
        self.lock = threading.Lock()
        self.stopped = False
        self.threads = []
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                rec = bytearray()
                self.conns.append(rec)
            t = threading.Thread(target=self._serve, args=(s, rec), daemon=True)
            t.start()

    def _serve(self, s, rec):
        s.settimeout(IO_TIMEOUT)
        try:
            if self.greet_and_shut:
                s.sendall(b"bye:" + self.name.encode())
                s.shutdown(socket.SHUT_WR)
            while True:
                data = s.recv(65536)
                if not data:
                    break
                with self.lock:
                    rec.extend(data)
                if self.echo and not self.greet_and_shut:
                    s.sendall(data)
            if not self.greet_and_shut:
                s.sendall(b"<EOF:%s:%d>" % (self.name.encode(), len(rec)))
        except OSError:
            pass
        finally:
            s.close()
            with self.lock:
                self.closed += 1

    def received(self, i=-1):
        with self.lock:
            return bytes(self.conns[i])

    def idle(self):
        """Every connection so far was closed."""
        with self.lock:
            return self.closed == len(self.conns)

    def count(self):
        with self.lock:
            return len(self.conns)

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass


def exchange(port, payload, timeout=IO_TIMEOUT, source=None):
    """Connects, sends payload, shuts the sending side, reads until EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=source)
    try:
        s.sendall(payload)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            # weir may already have closed (and reset, since it left the
            # payload unread): what recv says next is the answer.
            if e.errno != errno.ENOTCONN:
                raise
        out = bytearray()
        while True:
            d = s.recv(65536)
            if not d:
                return bytes(out)
            out.extend(d)
    finally:
        s.close()


def client_hello(server_name):
    """The first flight of a TLS client asking for server_name (None: no SNI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def parse_proxy_v2(data):
    """(src_ip, dst_ip, src_port, dst_port, header_len) of a v2 TCP4 header."""
    assert data[:12] == b"\r\n\r\n\x00\r\nQUIT\n", data[:16]
    assert data[12] == 0x21 and data[13] == 0x11, data[:16]
    (length,) = struct.unpack("!H", data[14:16])
    src, dst = socket.inet_ntoa(data[16:20]), socket.inet_ntoa(data[20:24])
    sport, dport = struct.unpack("!HH", data[24:28])
    return src, dst, sport, dport, 16 + length


def proxy_v2(src, dst, sport, dport):
    """A v2 PROXY header for a TCP4 connection."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def tcp_config(port, clusters, *, cluster="app", listener_extra="", admin_port=None,
               extra_listeners="", workers=1):
    """A config with one tcp listener on port over `clusters` (YAML list items)."""
    text = "workers: %d\ndrain_timeout: 5s\nlog: { level: info }\n" % workers
    if admin_port:
        text += "admin: { listen: 127.0.0.1:%d }\n" % admin_port
    text += "listeners:\n  - name: tcp\n    listen: 127.0.0.1:%d\n    protocol: tcp\n" % port
    text += "    cluster: %s\n" % cluster
    if listener_extra:
        text += indent(listener_extra.strip("\n"), 4) + "\n"
    if extra_listeners:
        text += indent(extra_listeners.strip("\n"), 2) + "\n"
    text += "clusters:\n" + "".join(indent(c.strip("\n"), 2) + "\n" for c in clusters)
    return text


def metric(text, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all('%s="%s"' % (k, v) in head for k, v in labels.items()):
            total += float(value)
    return total


def new_port():
    return free_port()


@pytest.fixture
def backends():
    """backends(name, **kw) starts a TcpBackend; every one stops after the
    test. A test module takes it with `from tcp_helpers import backends`."""
    started = []

    def start(name, **kw):
        b = TcpBackend(name, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def scrape(aport):
    """The admin listener's /metrics text."""
    return requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=IO_TIMEOUT).text

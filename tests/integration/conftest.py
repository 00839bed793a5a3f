"""Fixtures for weir's integration tests: real weir and weir-demo processes on
127.0.0.1, a raw-socket recording backend and a raw-socket client.

Everything a test starts is stopped by a finalizer. Ports come from
free_port() (a per-worker range below the ephemeral ports). No test asserts
on timing; timeouts below only keep a broken build from hanging the suite.
"""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WEIR_BIN = os.environ.get("WEIR_BIN", os.path.join(ROOT, "build", "release", "weir"))
WEIR_DEMO_BIN = os.environ.get("WEIR_DEMO_BIN", os.path.join(ROOT, "build", "release", "weir-demo"))

def _sanitized(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


# True when WEIR_BIN is an AddressSanitizer/UBSan build (for sanitizer-only xfails)
SANITIZED = _sanitized(WEIR_BIN)

IO_TIMEOUT = 10.0  # generous: only there so a bug turns into a failure, not a hang
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


# ---- small helpers ----------------------------------------------------------


# Ports for the processes a test starts come from 10000-19999, below the
# kernel's ephemeral range (32768-60999 here): a port taken from bind(0) is in
# that range, and another test's outgoing connection could take it as its
# local port before weir binds it (seen once on a fresh root: "Address already
# in use"). Each xdist worker has its own slice, so two test files running at
# once never pick the same port; port + 10000 stays free for a Redis Cluster
# node's bus port.
_PORT_BASE, _PORT_SLICE = 10000, 2500
_worker = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "gw0")) or 0) % 4
_port_next = [(os.getpid() * 7919) % _PORT_SLICE]


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A TCP port on 127.0.0.1 that nothing uses right now, outside the
    ephemeral range, with port + 10000 free too."""
    for _ in range(_PORT_SLICE):
        port = _PORT_BASE + _worker * _PORT_SLICE + _port_next[0] % _PORT_SLICE
        _port_next[0] += 1
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise AssertionError("no free port left in this worker's slice")


def wait_port(port, proc=None, timeout=IO_TIMEOUT, what="process"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %d" % (what, proc.returncode, port))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("%s did not listen on %d within %.0fs" % (what, port, timeout))


def wait_until(pred, timeout=IO_TIMEOUT, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line.strip() else line for line in text.splitlines())


def config(port, endpoints=None, *, balance="round_robin", cluster_extra="", listener_extra="",
           routes=None, clusters=None, workers=1, access=True, top_extra="", drain="5s"):
    """A weir YAML config: one listener on 127.0.0.1:port, routes (default: all to
    cluster 'app') and clusters (default: one 'app' over `endpoints`).

    endpoints: list of "host:port" strings or (address, weight) tuples.
    cluster_extra / listener_extra: YAML lines added to the cluster / listener map.
    """
    if clusters is None:
        clusters = [cluster_yaml("app", endpoints, balance=balance, extra=cluster_extra)]
    if routes is None:
        routes = "- cluster: app"
    text = "workers: %d\ndrain_timeout: %s\n" % (workers, drain)
    text += "log: { level: info, access: %s }\n" % ("stdout" if access else "off")
    text += top_extra
    text += "listeners:\n  - name: web\n    listen: 127.0.0.1:%d\n" % port
    if listener_extra:
        text += indent(listener_extra.strip("\n"), 4) + "\n"
    text += "    routes:\n" + indent(routes.strip("\n"), 6) + "\n"
    text += "clusters:\n" + "".join(indent(c.strip("\n"), 2) + "\n" for c in clusters)
    return text


def cluster_yaml(name, endpoints, *, balance="round_robin", extra=""):
    text = "- name: %s\n  balance: %s\n" % (name, balance)
    if extra:
        text += indent(extra.strip("\n"), 2) + "\n"
    text += "  endpoints:\n"
    for ep in endpoints:
        if isinstance(ep, tuple):
            text += "    - { address: %s, weight: %d }\n" % ep
        else:
            text += "    - %s\n" % ep
    return text


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---- weir ----------------------------------------------------------------------


class Weir:
    """One weir process running a config written to tmp_path."""

    def __init__(self, tmp_path, yaml_text, port, name="weir"):
        self.dir = tmp_path
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.config_path = os.path.join(str(tmp_path), name + ".yaml")
        self.out_path = os.path.join(str(tmp_path), name + ".out")  # stdout: access log
        self.err_path = os.path.join(str(tmp_path), name + ".err")  # stderr: error log
        self.proc = None
        self.returncode = None
        with open(self.config_path, "w") as f:
            f.write(yaml_text)

    def start(self):
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        self.proc = subprocess.Popen([WEIR_BIN, "-c", self.config_path], stdout=self._out,
                                     stderr=self._err, stdin=subprocess.DEVNULL, env=env)
        try:
            wait_port(self.port, self.proc, what="weir")
            # weir installs its signal handlers after it listens: wait until
            # SIGHUP/SIGTERM are caught, or a reload right away would kill it
            wait_until(self._handles_signals, what="weir's signal handlers")
        except (RuntimeError, AssertionError) as e:
            raise RuntimeError("%s\n--- stderr:\n%s" % (e, self.errlog()))
        return self

    def _handles_signals(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        mask = int(line.split()[1], 16)
                        want = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGTERM - 1))
                        return mask & want == want
        except OSError:
            pass
        return False

    # logs
    def errlog(self):
        return read_text(self.err_path)

    def accesslog(self):
        return read_text(self.out_path)

    def access_lines(self):
        return [l for l in self.accesslog().splitlines() if l.strip()]

    def wait_log(self, pattern, count=1, timeout=IO_TIMEOUT):
        rx = re.compile(pattern)
        return wait_until(lambda: len(rx.findall(self.errlog())) >= count, timeout,
                          what="log line matching %r" % pattern)

    def wait_access_lines(self, n, timeout=IO_TIMEOUT):
        return wait_until(lambda: len(self.access_lines()) >= n and self.access_lines(), timeout,
                          what="%d access log lines" % n)

    # control
    def reload(self, yaml_text, expect_ok=True):
        """Rewrites the config, sends SIGHUP and waits for weir to say it
        reloaded (or rejected) the file."""
        log = self.errlog()
        ok_before = log.count("configuration reloaded")
        bad_before = log.count("reload rejected")
        with open(self.config_path, "w") as f:
            f.write(yaml_text)
        self.proc.send_signal(signal.SIGHUP)

        def done():
            l = self.errlog()
            return l.count("configuration reloaded") > ok_before or l.count("reload rejected") > bad_before

        wait_until(done, what="reload to be logged")
        log = self.errlog()
        ok = log.count("configuration reloaded") > ok_before
        assert ok == expect_ok, "reload %s, log:\n%s" % ("accepted" if ok else "rejected", log)
        return ok

    def stop(self, timeout=30):
        """SIGTERM, wait, return the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("weir did not exit within %ds of SIGTERM" % timeout)
        finally:
            self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f and not f.closed:
                f.close()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()

    def crash_report(self):
        """A description of a crash/sanitizer report, or None."""
        problems = []
        rc = self.proc.returncode if self.proc else None
        if rc is not None and rc < 0 and rc != -signal.SIGKILL:
            problems.append("weir died from signal %d" % -rc)
        log = self.errlog() + self.accesslog()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                problems.append("weir log contains %r" % marker)
        if problems:
            return "; ".join(problems) + "\n--- weir stderr:\n" + self.errlog()[-20000:]
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def weir_factory(tmp_path, request):
    """start_weir(yaml_text, port) -> a running Weir; stopped (SIGTERM) at teardown,
    and the test fails if weir crashed or a sanitizer reported anything."""
    started = []

    def start(yaml_text, port=None, name=None):
        if port is None:
            m = re.search(r"listen: 127\.0\.0\.1:(\d+)", yaml_text)
            port = int(m.group(1))
        w = Weir(tmp_path, yaml_text, port, name or "weir%d" % len(started))
        started.append(w)
        return w.start()

    yield start
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for w in started:  # shown under "Captured stdout teardown"
            print("--- %s stderr (tail):\n%s" % (w.config_path, w.errlog()[-5000:]))
    reports = []
    for w in started:
        if w.proc is None:
            continue
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
            try:
                w.proc.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
                reports.append("weir did not exit within 30s of SIGTERM at teardown")
        w._close_files()
        r = w.crash_report()
        if r:
            reports.append(r)
    if reports:
        pytest.fail("\n".join(reports), pytrace=False)


# ---- weir-demo -----------------------------------------------------------------


class Demo:
    def __init__(self, name, port, proc, log_path):
        self.name = name
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        self.proc = proc
        self.log_path = log_path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def demo_backend(tmp_path):
    """demo_backend(name) -> a running weir-demo on a free port (X-Backend: name)."""
    started = []

    def start(name="demo"):
        port = free_port()
        log_path = os.path.join(str(tmp_path), "demo-%s.log" % name)
        logf = open(log_path, "ab")
        proc = subprocess.Popen([WEIR_DEMO_BIN, "-l", "127.0.0.1:%d" % port, "-n", name],
                                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        d = Demo(name, port, proc, log_path)
        started.append(d)
        wait_port(port, proc, what="weir-demo")
        return d

    yield start
    for d in started:
        d.stop()


# ---- recording backend ----------------------------------------------------------


class Request:
    """One request as a backend received it."""

    def __init__(self, conn_id, head, body, raw):
        self.conn_id = conn_id
        self.head = head          # bytes, up to and including the blank line
        self.body = body          # bytes, decoded (chunked framing removed)
        self.raw = raw            # bytes, exactly as received (head + framed body)
        lines = head.split(b"\r\n")
        self.request_line = lines[0].decode("latin-1")
        parts = self.request_line.split(" ")
        self.method = parts[0]
        self.target = parts[1] if len(parts) > 1 else ""
        self.version = parts[2] if len(parts) > 2 else ""
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(b":")
            self.headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))

    def header(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def has(self, name):
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def __repr__(self):
        return "<Request %s conn=%d body=%d>" % (self.request_line, self.conn_id, len(self.body))


class BadFraming(Exception):
    pass


class _Conn:
    """Buffered reads from one accepted socket."""

    def __init__(self, sock, stop):
        self.sock = sock
        self.buf = b""
        self.stop = stop
        self.raw_all = b""
        self.ended = False

    def _more(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
            self.raw_all += data
            return True
        return False

    def read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit or not self._more():
                return None

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._more():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class RecordingBackend:
    """A raw-socket HTTP/1.1 server in threads that records every request.

    Behaviour for each request is chosen by `respond` (settable any time):
      - a dict: {status, headers (list of pairs), body (bytes), chunked (bool),
                 delay (s), close (bool: close after answering, without saying so)}
      - "hang": read the request, never answer (until the backend stops)
      - "close": close without answering
      - "reset": reset the connection (SO_LINGER 0) without answering
      - "close_mid_body": announce Content-Length 1000, send 10 bytes, close
      - "upgrade": answer 101 and then echo raw bytes until the peer closes
      - bytes: sent exactly as the answer
      - a list: a script of bytes to send, numbers (seconds to sleep) and "close"
      - a callable(req) returning any of the above
    answer_before_body: answer right after the head, then close (body unread).
    Also records every byte received on every connection (raw_received()), so a
    smuggled request is seen even when it would not parse.
    """

    def __init__(self, respond=None, record_body=True, answer_before_body=False):
        self.respond = respond if respond is not None else {}
        self.answer_before_body = answer_before_body
        self.record_body = record_body
        self.requests = []
        self.connections = 0
        self._conns = {}
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        self._threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)

    # -- inspection
    @property
    def count(self):
        with self._lock:
            return len(self.requests)

    def closed_connections(self):
        """Connections the peer (weir) has closed or that ended."""
        with self._lock:
            return sum(1 for c in self._conns.values() if c.ended)

    def raw_received(self):
        with self._lock:
            return b"".join(c.raw_all for c in self._conns.values())

    def wait_requests(self, n, timeout=IO_TIMEOUT):
        wait_until(lambda: self.count >= n, timeout, what="%d requests at the backend" % n)
        return self.requests[:n]

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    # -- server
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(0.2)
            with self._lock:
                self.connections += 1
                cid = self.connections
                self._socks.append(s)
            t = threading.Thread(target=self._serve, args=(s, cid), daemon=True)
            t.start()
            self._threads.append(t)

    def _read_request(self, conn):
        start_raw = len(conn.raw_all) - len(conn.buf)
        head = conn.read_until(b"\r\n\r\n")
        if head is None:
            return None
        req = Request(0, head, b"", b"")
        if self.answer_before_body:
            req.raw = head
            return req
        te = (req.header("Transfer-Encoding") or "").lower()
        cl = req.header("Content-Length")
        body = b""
        if "chunked" in te:
            while True:
                line = conn.read_until(b"\r\n", 8192)
                if line is None:
                    raise BadFraming("eof in chunk size")
                size_s = line[:-2].split(b";")[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise BadFraming("bad chunk size %r" % line)
                if size == 0:
                    while True:  # trailers
                        t = conn.read_until(b"\r\n", 8192)
                        if t is None:
                            raise BadFraming("eof in trailers")
                        if t == b"\r\n":
                            break
                    break
                data = conn.read_exact(size + 2)
                if data is None or data[-2:] != b"\r\n":
                    raise BadFraming("bad chunk data")
                if self.record_body:
                    body += data[:-2]
        elif cl is not None:
            try:
                n = int(cl)
            except ValueError:
                raise BadFraming("bad Content-Length %r" % cl)
            data = conn.read_exact(n)
            if data is None:
                raise BadFraming("eof in body")
            if self.record_body:
                body = data
        end_raw = len(conn.raw_all) - len(conn.buf)
        raw = conn.raw_all[start_raw:end_raw] if self.record_body else head
        req.body = body
        req.raw = raw
        return req

    def _serve(self, s, cid):
        conn = _Conn(s, self._stop)
        with self._lock:
            self._conns[cid] = conn
        try:
            while not self._stop.is_set():
                try:
                    req = self._read_request(conn)
                except BadFraming as e:
                    with self._lock:
                        self.errors.append(str(e))
                    break
                if req is None:
                    break
                req.conn_id = cid
                with self._lock:
                    self.requests.append(req)
                action = self.respond
                if callable(action):
                    action = action(req)
                if not self._answer(s, conn, req, action) or self.answer_before_body:
                    break
        except OSError:
            pass
        finally:
            conn.ended = True
            try:
                s.close()
            except OSError:
                pass

    def _answer(self, s, conn, req, action):
        """Sends the answer; returns False when the connection must end."""
        if isinstance(action, (bytes, bytearray)):
            s.sendall(action)
            return True
        if isinstance(action, list):  # a script: bytes to send, numbers to sleep, "close"
            for step in action:
                if step == "close":
                    return False
                if isinstance(step, (int, float)):
                    time.sleep(step)
                else:
                    s.sendall(step)
            return True
        if action == "hang":
            self._stop.wait()
            return False
        if action == "close":
            return False
        if action == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return False
        if action == "close_mid_body":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            time.sleep(0.1)
            return False
        if action == "upgrade":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
                      + (req.header("Upgrade") or "websocket").encode() + b"\r\n\r\n")
            if conn.buf:
                s.sendall(conn.buf)
                conn.buf = b""
            while not self._stop.is_set():
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return False
                s.sendall(data)
            return False
        spec = dict(action or {})
        if spec.get("delay"):
            time.sleep(spec["delay"])
        status = spec.get("status", 200)
        body = spec.get("body", b"ok")
        headers = list(spec.get("headers", []))
        reason = spec.get("reason", "OK")
        out = b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())
        for n, v in headers:
            out += b"%s: %s\r\n" % (n.encode(), v.encode())
        no_body = status in (204, 304) or req.method == "HEAD"
        if spec.get("chunked"):
            out += b"Transfer-Encoding: chunked\r\n\r\n"
            if not no_body:
                step = spec.get("chunk_size", 7)
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    out += b"%x\r\n%s\r\n" % (len(part), part)
                out += b"0\r\n\r\n"
        elif spec.get("no_length"):
            out += b"\r\n" + (b"" if no_body else body)
            s.sendall(out)
            return False
        else:
            if status not in (204, 304) and not any(n.lower() == "content-length" for n, _ in headers):
                out += b"Content-Length: %d\r\n" % len(body)
            out += b"\r\n"
            if not no_body:
                out += body
        s.sendall(out)
        return not spec.get("close")


@pytest.fixture
def recording_backend():
    """recording_backend(respond=...) -> a running RecordingBackend, stopped at teardown."""
    started = []

    def start(respond=None, **kw):
        b = RecordingBackend(respond, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


# ---- raw client --------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw = raw

    def header(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def has(self, name):
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def __repr__(self):
        return "<Response %d %r body=%d>" % (self.status, self.headers, len(self.body))


class Closed(Exception):
    """The connection ended before a whole response arrived."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class RawClient:
    """A socket to weir: send raw bytes, read and parse responses."""

    def __init__(self, port, timeout=IO_TIMEOUT, source=None):
        """source: a local address to connect from (e.g. "127.0.0.2"), or None."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)
        return self

    def _more(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._more():
                raise Closed("connection closed before a full line", self.buf)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._more():
                raise Closed("connection closed %d bytes into a %d-byte body" % (len(self.buf), n), self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False, skip_1xx=True):
        """Reads one response (1xx interim answers are skipped unless skip_1xx
        is False). Raises Closed when the peer closes before it is complete."""
        while True:
            start = self.buf
            line = self._line()
            m = re.match(rb"^HTTP/1\.(\d) (\d{3}) ?(.*)$", line)
            if not m:
                raise AssertionError("bad status line %r" % line)
            version = "HTTP/1." + m.group(1).decode()
            status = int(m.group(2))
            reason = m.group(3).decode("latin-1")
            headers = []
            while True:
                h = self._line()
                if not h:
                    break
                name, _, value = h.partition(b":")
                headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            resp = Response(version, status, reason, headers, b"", b"")
            if 100 <= status < 200:
                if skip_1xx and status != 101:
                    continue
                return resp
            if head_request or status in (204, 304):
                return resp
            te = (resp.header("Transfer-Encoding") or "").lower()
            cl = resp.header("Content-Length")
            if "chunked" in te:
                body = b""
                while True:
                    size = int(self._line().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self._line():
                            pass
                        break
                    body += self._exact(size)
                    if self._exact(2) != b"\r\n":
                        raise AssertionError("bad chunk framing from weir")
                resp.body = body
            elif cl is not None:
                resp.body = self._exact(int(cl))
            else:
                while self._more():
                    pass
                resp.body, self.buf = self.buf, b""
            return resp

    def read_all(self):
        """Everything until the peer closes."""
        while self._more():
            pass
        out, self.buf = self.buf, b""
        return out

    def is_closed(self, timeout=IO_TIMEOUT):
        """True when the peer closes (EOF or reset) within timeout with nothing
        more to read; False if data arrives or the timeout passes."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def request(port, data, head_request=False, timeout=IO_TIMEOUT):
    """Sends `data` on a new connection and returns the first response."""
    with RawClient(port, timeout) as c:
        c.send(data)
        return c.read_response(head_request=head_request)


def get(port, path="/", headers="", host="weir.test"):
    return request(port, ("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
                          % (path, host, headers)).encode())


@pytest.fixture
def raw_client():
    """raw_client(port) -> RawClient, closed at teardown."""
    opened = []

    def open_(port, timeout=IO_TIMEOUT):
        c = RawClient(port, timeout)
        opened.append(c)
        return c

    yield open_
    for c in opened:
        c.close()


@pytest.fixture
def proxy(weir_factory, recording_backend):
    """A weir in front of one RecordingBackend: returns (weir, backend)."""

    def make(respond=None, cluster_extra="", listener_extra="", **kw):
        b = recording_backend(respond)
        port = free_port()
        w = weir_factory(config(port, [b.addr], cluster_extra=cluster_extra,
                                listener_extra=listener_extra, **kw))
        return w, b

    return make

#!/usr/bin/python3
"""Opens N keep-alive connections to HOST:PORT, sends one GET on each, reads
the whole response, then holds every connection open and idle.

usage: idle_conns.py HOST PORT N READY_FILE [HOLD_SECONDS]

When all connections are open (or have failed), writes one line to READY_FILE:
    open=<n> failed=<n> seconds=<ramp time>
then holds them until SIGTERM/SIGINT or HOLD_SECONDS (default 120) pass,
writes "alive=<n>" (connections the server had not closed) to READY_FILE.end,
and exits 0. At most RAMP connections are connecting or waiting for their answer
at once, so a proxy's listen backlog is not flooded. Standard library only.
"""
import errno
import os
import selectors
import signal
import socket
import sys
import time

RAMP = 256
STEP_TIMEOUT = 10.0  # seconds for one connection to connect and be answered


class Conn:
    __slots__ = ("sock", "fd", "state", "buf", "started")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.state = "connecting"
        self.buf = b""
        self.started = time.monotonic()


def response_complete(buf):
    """True once buf holds a whole response with a Content-Length body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"0")
    return len(buf) >= end + 4 + length


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, total, ready_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    request = b"GET / HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n\r\n" % (
        host.encode(), port)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    sel = selectors.DefaultSelector()
    held, failed, pending = [], 0, {}
    started = 0
    t0 = time.monotonic()

    def fail(c):
        nonlocal failed
        failed += 1
        sel.unregister(c.sock)
        del pending[c.fd]
        c.sock.close()

    while (started < total or pending) and not stop:
        while started < total and len(pending) < RAMP:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                failed += 1
                s.close()
                continue
            c = Conn(s)
            pending[c.fd] = c
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            try:
                if c.state == "connecting":
                    if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        fail(c)
                        continue
                    c.sock.send(request)  # small: fits the empty send buffer
                    c.state = "reading"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                data = c.sock.recv(65536)
                if not data:
                    fail(c)
                    continue
                c.buf += data
                if response_complete(c.buf):
                    if not c.buf.startswith(b"HTTP/1.1 2"):
                        fail(c)
                        continue
                    sel.unregister(c.sock)
                    del pending[c.fd]
                    c.buf = b""
                    held.append(c.sock)
            except OSError:
                fail(c)
        now = time.monotonic()
        for c in [c for c in pending.values() if now - c.started > STEP_TIMEOUT]:
            fail(c)

    ramp = time.monotonic() - t0
    with open(ready_file + ".tmp", "w") as f:
        f.write("open=%d failed=%d seconds=%.2f\n" % (len(held), failed, ramp))
    os.rename(ready_file + ".tmp", ready_file)

    deadline = time.monotonic() + hold
    while not stop and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = 0
    for s in held:  # still open on the far side? (EAGAIN = open and idle)
        try:
            if s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK):
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.close()
    with open(ready_file + ".end", "w") as f:
        f.write("alive=%d\n" % alive)
    return 0


if __name__ == "__main__":
    sys.exit(main())

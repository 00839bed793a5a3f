"""Peers for bench/tcp.sh.

  tcp_peer.py source PORT BYTES   a server: on each connection sends BYTES
                                   zero bytes, then closes
  tcp_peer.py fetch PORT BYTES     connects, reads until EOF; fails unless
                                   BYTES arrived; prints "BYTES SECONDS"
"""
import socket
import sys
import threading
import time

CHUNK = 1 << 20


def source(port, total):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    block = memoryview(bytes(CHUNK))

    def serve(s):
        try:
            left = total
            while left > 0:
                n = s.send(block[:min(CHUNK, left)])
                left -= n
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
        except OSError:
            pass
        finally:
            s.close()

    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


def fetch(port, total):
    buf = bytearray(CHUNK)
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    t0 = time.monotonic()
    got = 0
    while True:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    dt = time.monotonic() - t0
    s.close()
    if got != total:
        sys.exit("fetch: got %d bytes of %d" % (got, total))
    print("%d %.6f" % (got, dt))


if __name__ == "__main__":
    mode, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    (source if mode == "source" else fetch)(port, total)

"""Peers for bench/tcp.sh.

  tcp_peer.py source PORT BYTES   a server: on each connection sends BYTES
                                   zero bytes, then closes
  tcp_peer.py fetch PORT BYTES     connects, reads until EOF; fails unless
                                   BYTES arrived; prints "BYTES SECONDS"
  tcp_peer.py tlsfetch PORT BYTES  the same over TLS (no certificate check;
                                   for bench/tcp_tls.sh)
"""
import socket
import ssl
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


def fetch(port, total, tls=False):
    buf = bytearray(CHUNK)
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="bench.test")
    t0 = time.monotonic()
    got = 0
    while True:
        try:
            n = s.recv_into(buf)
        except ssl.SSLEOFError:  # a FIN without close_notify still ends the stream
            break
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
    if mode == "source":
        source(port, total)
    else:
        fetch(port, total, tls=mode == "tlsfetch")

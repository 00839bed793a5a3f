"""A tiny HTTP instance for the autoscaler's tests and bench:
`autoscale_worker.py PORT NAME [CAPACITY]`. GET or POST /slow?ms=N answers
after N ms (at most CAPACITY requests at a time, the others wait: a
saturated instance gets slower), /burn?ms=N after N ms of busy CPU;
anything else at once.
SIGTERM ends it at once (the default action): a request still in flight
then fails, so a test sees whether weir drained the instance first."""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlparse(self.path)
        ms = int(parse_qs(url.query).get("ms", ["100"])[0])
        if url.path == "/slow":
            with SLOTS:
                time.sleep(ms / 1000.0)
        elif url.path == "/burn":
            end = time.monotonic() + ms / 1000.0
            while time.monotonic() < end:
                pass
        body = ("hello from %s\n" % NAME).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", NAME)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    NAME = sys.argv[2] if len(sys.argv) > 2 else "worker"
    SLOTS = threading.BoundedSemaphore(int(sys.argv[3]) if len(sys.argv) > 3 else 10000)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

"""A small HTTP/2 server for tests (python3-h2 over plain sockets): h2c with
prior knowledge, or TLS with ALPN h2. One thread per connection; it counts
connections and records each request (headers, body).

Paths:
  /big?n=BYTES   answer BYTES bytes (no content-length: weir re-frames it chunked)
  /echo          answer the request body (with content-length)
  /trailers      answer "ok" with trailer fields x-checksum and grpc-status
  /goaway        answer, then GOAWAY (last stream = this one)
  /refuse_once?k=K  the first request with key K is refused (RST_STREAM
                 REFUSED_STREAM), later ones are answered like /echo
  /grpc          a gRPC answer: grpc_status 0: one message and trailers,
                 else Trailers-Only with that grpc-status
  /die           headers and 5 bytes of body, then the socket is closed
  /slow?ms=N     answer after N ms
  anything else  200 "hello <path>"
"""
import socket
import ssl
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.errors
import h2.exceptions
import h2.settings


class H2Backend:
    def __init__(self, port, tls_cert=None, tls_key=None, max_streams=100, grpc_status=0):
        self.port = port
        self.requests = []
        self.connections = 0  # connections that sent bytes
        self.refused = set()  # /refuse_once keys already refused
        self.grpc_status = grpc_status  # what /grpc answers
        self.lock = threading.Lock()
        self.stopping = False
        self.max_streams = max_streams
        self.ctx = None
        if tls_cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls_cert, tls_key)
            self.ctx.set_alpn_protocols(["h2"])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.conns = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        for s in list(self.conns):
            try:
                s.close()
            except OSError:
                pass

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.ctx:
                try:
                    s.settimeout(5)
                    s = self.ctx.wrap_socket(s, server_side=True)
                except (ssl.SSLError, OSError):
                    s.close()
                    continue
            self.conns.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        s.settimeout(0.05)
        streams = {}   # sid -> {"headers":..., "body": bytearray}
        sending = {}   # sid -> [bytes left, trailers or None]
        after_goaway = False
        counted = False  # a connection counts once it spoke (not a port probe)
        try:
            s.sendall(conn.data_to_send())
            while not self.stopping:
                try:
                    data = s.recv(65536)
                    if not data:
                        break
                except socket.timeout:
                    data = None
                except (ssl.SSLWantReadError,):
                    data = None
                except OSError:
                    break
                if data and not counted:
                    counted = True
                    with self.lock:
                        self.connections += 1
                try:
                    events = conn.receive_data(data) if data else []
                except h2.exceptions.ProtocolError:
                    break
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": dict(ev.headers), "body": bytearray(),
                                                 "list": ev.headers}
                    elif isinstance(ev, h2.events.TrailersReceived):
                        streams[ev.stream_id]["trailers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        try:
                            what = self._handle(conn, s, ev.stream_id, streams, sending)
                        except h2.exceptions.StreamClosedError:
                            what = None  # weir reset it while we slept (a timeout)
                        if what == "goaway":
                            after_goaway = True
                            break
                        if what == "die":
                            s.sendall(conn.data_to_send())
                            s.shutdown(socket.SHUT_RDWR)
                            s.close()
                            return
                    elif isinstance(ev, h2.events.StreamReset):
                        sending.pop(ev.stream_id, None)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        after_goaway = True
                self._pump(conn, sending)
                out = conn.data_to_send()
                if out:
                    s.sendall(out)
                if after_goaway and not sending:
                    break
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _pump(self, conn, sending):
        for sid in list(sending):
            try:
                self._pump_one(conn, sending, sid)
            except h2.exceptions.StreamClosedError:
                del sending[sid]  # weir reset it (a timeout, a client gone)

    def _pump_one(self, conn, sending, sid):
        left, trailers = sending[sid]
        while left:
            win = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(left))
            if win <= 0:
                break
            conn.send_data(sid, left[:win])
            left = left[win:]
        sending[sid][0] = left
        if not left:
            if trailers:
                conn.send_headers(sid, trailers, end_stream=True)
            else:
                conn.end_stream(sid)
            del sending[sid]

    def _handle(self, conn, s, sid, streams, sending):
        st = streams.pop(sid)
        hdrs = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for k, v in st["headers"].items()}
        with self.lock:
            self.requests.append({"headers": hdrs, "body": bytes(st["body"]), "stream": sid,
                                  "list": st["list"], "trailers": st.get("trailers")})
        url = urllib.parse.urlsplit(hdrs.get(":path", "/"))
        q = urllib.parse.parse_qs(url.query)
        path = url.path
        if path == "/big":
            n = int(q.get("n", ["4194304"])[0])
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/octet-stream")])
            sending[sid] = [bytes(i % 251 for i in range(n)), None]
            return None
        if path == "/echo" or (path == "/refuse_once" and q.get("k", [""])[0] in self.refused):
            body = bytes(st["body"])
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body))),
                                    ("x-method", hdrs.get(":method", ""))])
            sending[sid] = [body, None]
            if not body:
                conn.end_stream(sid)
                del sending[sid]
            return None
        if path == "/grpc":
            if self.grpc_status:  # a gRPC error: Trailers-Only (one HEADERS frame)
                conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                                        ("grpc-status", str(self.grpc_status))], end_stream=True)
                return None
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
            sending[sid] = [b"\0\0\0\0\2ok", [("grpc-status", "0")]]
            return None
        if path == "/trailers":
            conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            sending[sid] = [b"ok", [("x-checksum", "abc123"), ("grpc-status", "0")]]
            return None
        if path == "/refuse_once":
            key = q.get("k", [""])[0]
            if key not in self.refused:
                self.refused.add(key)
                conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                return None
            path = "/echo"
        if path == "/die":
            conn.send_headers(sid, [(":status", "200")])
            conn.send_data(sid, b"part-")
            return "die"
        if path == "/slow":
            time.sleep(int(q.get("ms", ["100"])[0]) / 1000.0)
        body = ("hello %s\n" % path).encode()
        conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body))),
                                ("x-stream", str(sid))])
        sending[sid] = [body, None]
        if path == "/goaway":
            self._pump(conn, sending)
            conn.close_connection(last_stream_id=sid)
            return "goaway"
        return None



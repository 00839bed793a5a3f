"""forward_auth: an auth service decides; 2xx lets the request through with
copied fields, anything else goes back to the client; timeouts, failures and
clients that leave while their request waits."""
import socket
import struct
import time

import pytest

from conftest import RawClient, cluster_yaml, config, free_port, request


def auth_decider(req):
    if req.header("Authorization") == "Bearer good":
        return {"status": 200, "headers": [("X-User", "alice"), ("X-Role", "admin")], "body": b""}
    if req.header("Authorization") == "Bearer slow":
        return {"status": 200, "headers": [("X-User", "slow")], "delay": 3}
    return {"status": 401, "headers": [("WWW-Authenticate", 'Bearer realm="api"')],
            "body": b"no entry\n"}


@pytest.fixture
def gate(weir_factory, recording_backend):
    def make(extra="", auth_addr=None, route_extra=""):
        app = recording_backend()
        auth = recording_backend(auth_decider)
        port = free_port()
        routes = """
- forward_auth: { cluster: auth, path: /verify, copy_headers: [X-User], timeout: 500ms %s }
  headers: { request: { set: { X-Gate: passed } } }
  cluster: app
  %s
""" % (extra, route_extra)
        clusters = [cluster_yaml("app", [app.addr]), cluster_yaml("auth", [auth_addr or auth.addr])]
        w = weir_factory(config(port, routes=routes, clusters=clusters))
        return w, app, auth
    return make


def send(w, headers="", method="GET", path="/data?x=1", body=b""):
    data = ("%s %s HTTP/1.1\r\nHost: api.test\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (method, path, headers, len(body))).encode() + body
    return request(w.port, data)


def test_allowed_with_copied_headers(gate):
    w, app, auth = gate()
    r = send(w, "Authorization: Bearer good\r\nX-User: mallory\r\n")
    assert r.status == 200 and r.body == b"ok"
    assert app.count == 1 and auth.count == 1
    q = auth.requests[0]
    assert q.method == "GET" and q.target == "/verify"
    assert q.header("Authorization") == "Bearer good"
    assert q.header("X-Forwarded-Method") == "GET"
    assert q.header("X-Forwarded-Uri") == "/data?x=1"
    assert q.header("X-Forwarded-Host") == "api.test"
    assert q.body == b""
    fwd = app.requests[0]
    assert fwd.header_all("X-User") == ["alice"]   # the service's value, not the client's
    assert not fwd.has("X-Role")                    # only copy_headers are copied
    assert fwd.header("X-Gate") == "passed"         # later steps still run
    assert fwd.target == "/data?x=1"


def test_denied_answer_goes_to_client(gate):
    w, app, auth = gate()
    r = send(w, "Authorization: Bearer bad\r\n")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Bearer realm="api"'
    assert r.body == b"no entry\n"
    assert app.count == 0


def test_post_body_reaches_backend_after_auth(gate):
    w, app, auth = gate()
    r = send(w, "Authorization: Bearer good\r\n", method="POST", body=b"payload-123")
    assert r.status == 200
    assert app.requests[0].body == b"payload-123"
    assert auth.requests[0].body == b""             # the question carries no body


def test_missing_header_removed_when_service_omits_it(weir_factory, recording_backend):
    app = recording_backend()
    auth = recording_backend({"status": 204})
    port = free_port()
    routes = "- forward_auth: { cluster: auth, copy_headers: [X-User] }\n  cluster: app"
    w = weir_factory(config(port, routes=routes, clusters=[cluster_yaml("app", [app.addr]),
                                                           cluster_yaml("auth", [auth.addr])]))
    r = send(w, "X-User: forged\r\n")
    assert r.status == 200
    assert not app.requests[0].has("X-User")
    assert auth.requests[0].target == "/"


def test_timeout_504_and_allow_on_error(gate):
    w, app, auth = gate()
    r = send(w, "Authorization: Bearer slow\r\n")
    assert r.status == 504
    assert app.count == 0
    w.wait_log("forward_auth to cluster auth.*no answer in time")
    w2, app2, _ = gate(extra=", on_error: allow")
    r = send(w2, "Authorization: Bearer slow\r\n")
    assert r.status == 200 and app2.count == 1


def test_unreachable_auth_502(gate):
    w, app, auth = gate(auth_addr="127.0.0.1:%d" % free_port())
    r = send(w, "Authorization: Bearer good\r\n")
    assert r.status == 502
    assert app.count == 0


def test_keep_alive_many_requests_reuse_auth_connection(gate):
    w, app, auth = gate()
    with RawClient(w.port) as c:
        for i in range(20):
            c.send(b"GET /k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\r\n")
            assert c.read_response().status == 200
    assert app.count == 20 and auth.count == 20
    assert auth.connections < 20  # the auth service's connections are pooled


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_leaves_while_waiting(gate, how):
    w, app, auth = gate()
    s = socket.create_connection(("127.0.0.1", w.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow\r\n\r\n")
    auth.wait_requests(1)
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    if how == "fin":
        w.wait_log("closed while its request waited")
    time.sleep(0.2)
    # weir is fine and serves the next one; the backend never saw the abandoned request
    r = send(w, "Authorization: Bearer good\r\n")
    assert r.status == 200
    assert app.count == 1


def test_route_deadline_while_waiting(gate):
    w, app, auth = gate(extra=", on_error: allow", route_extra="timeout: 200ms")
    r = send(w, "Authorization: Bearer slow\r\n")
    assert r.status == 504
    assert app.count == 0
    w.wait_log("deadline of 200 ms passed while a step waited")


def test_unknown_auth_cluster_is_config_error(tmp_path):
    import os, subprocess
    from conftest import WEIR_BIN
    path = os.path.join(str(tmp_path), "c.yaml")
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:9"],
                       routes="- forward_auth: { cluster: nope }\n  cluster: app"))
    p = subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True)
    assert p.returncode == 2 and "forward_auth names cluster 'nope'" in p.stderr

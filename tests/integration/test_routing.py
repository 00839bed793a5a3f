"""Route matching: host, path, path_prefix, method, header; first match wins."""
import pytest

from conftest import RawClient, cluster_yaml, config, free_port, get, request

ROUTES = """
- match: { path: /exact }
  cluster: c_exact
- match: { host: API.example.com, path_prefix: /v1/ }
  cluster: c_api
- match: { path_prefix: /v1/, method: [POST, PUT] }
  cluster: c_write
- match: { header: { X-Canary: "yes" } }
  cluster: c_canary
- match: { header: { X-Debug: null } }
  cluster: c_debug
- match: { path_prefix: /only/ }
  cluster: c_only
"""


@pytest.fixture
def routed(weir_factory, demo_backend):
    names = ["c_exact", "c_api", "c_write", "c_canary", "c_debug", "c_only", "c_default"]
    demos = {n: demo_backend(n) for n in names}
    port = free_port()
    routes = ROUTES + "- cluster: c_default\n"
    w = weir_factory(config(port, routes=routes, clusters=[cluster_yaml(n, [demos[n].addr]) for n in names]))
    return w


def who(w, method="GET", path="/", host="weir.test", headers=""):
    r = request(w.port, ("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n"
                         % (method, path, host, headers)).encode())
    return r.header("X-Backend")


def test_routes(routed):
    w = routed
    assert who(w, path="/exact") == "c_exact"
    assert who(w, path="/exact?q=1") == "c_exact"        # the query is not part of the path
    assert who(w, path="/exact/more") == "c_default"     # path is exact
    assert who(w, path="/v1/users", host="api.example.com") == "c_api"   # host: case-insensitive
    assert who(w, path="/v1/users", host="api.example.com:8080") == "c_api"  # port ignored
    assert who(w, path="/v1/users", host="www.example.com") == "c_default"
    assert who(w, "POST", "/v1/users") == "c_write"
    assert who(w, "PUT", "/v1/users") == "c_write"
    assert who(w, "DELETE", "/v1/users") == "c_default"
    assert who(w, path="/x", headers="X-Canary: yes\r\n") == "c_canary"
    assert who(w, path="/x", headers="X-Canary: no\r\n") == "c_default"
    assert who(w, path="/x", headers="x-debug: anything\r\n") == "c_debug"  # present, any value
    assert who(w, path="/x") == "c_default"
    # first match wins
    assert who(w, "POST", "/v1/a", host="api.example.com") == "c_api"
    assert who(w, path="/exact", headers="X-Canary: yes\r\n") == "c_exact"


def test_absolute_form_routes_by_its_authority(routed):
    r = request(routed.port, b"GET http://api.example.com/v1/x HTTP/1.1\r\nHost: api.example.com\r\n"
                b"Connection: close\r\n\r\n")
    assert r.header("X-Backend") == "c_api"


def test_route_per_request_on_one_connection(routed):
    with RawClient(routed.port) as c:
        seen = []
        for path in ("/exact", "/only/x", "/", "/exact"):
            c.send(("GET %s HTTP/1.1\r\nHost: weir.test\r\n\r\n" % path).encode())
            seen.append(c.read_response().header("X-Backend"))
    assert seen == ["c_exact", "c_only", "c_default", "c_exact"]


def test_no_default_route_404(weir_factory, recording_backend):
    b = recording_backend()
    port = free_port()
    w = weir_factory(config(port, [b.addr], routes="- match: { method: GET }\n  cluster: app"))
    assert get(w.port).status == 200
    with RawClient(w.port) as c:
        c.send(b"DELETE / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 404
        # a 404 for a request without a body keeps the connection
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200
    assert b.count == 2

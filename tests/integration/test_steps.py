"""Route steps and targets: headers (request/response, variables), respond,
redirect, and the configuration errors they bring."""
import os
import subprocess

import pytest

from conftest import RawClient, WEIR_BIN, config, free_port, request


def run(w, data, head_request=False):
    return request(w.port, data, head_request=head_request)


def test_headers_request_set_add_remove_and_variables(proxy):
    routes = """
- name: api
  headers:
    request:
      set: { X-Env: prod, X-Client: "${client_ip}", X-Route: "r=${route} l=${listener}" }
      add: { X-Tag: weir, X-Literal: "$${client_ip}" }
      remove: [X-Debug]
  cluster: app
"""
    w, b = proxy(routes=routes)
    r = run(w, b"GET /a HTTP/1.1\r\nHost: x\r\nX-Env: dev\r\nX-Env: test\r\nX-Debug: 1\r\n"
               b"X-Tag: client\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    req = b.requests[-1]
    assert req.header_all("X-Env") == ["prod"]          # set replaces every value
    assert req.header("X-Client") == "127.0.0.1"
    assert req.header("X-Route") == "r=api l=web"
    assert req.header_all("X-Tag") == ["client", "weir"]  # add keeps what was there
    assert req.header("X-Literal") == "${client_ip}"
    assert not req.has("X-Debug")


def test_headers_request_id_variable_matches_forwarded_id(proxy):
    routes = """
- headers: { request: { set: { X-Trace: "id-${request_id}" } } }
  cluster: app
"""
    w, b = proxy(routes=routes)
    run(w, b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc123\r\nConnection: close\r\n\r\n")
    assert b.requests[-1].header("X-Trace") == "id-abc123"


def test_headers_response_set_and_remove(proxy):
    routes = """
- headers: { response: { set: { X-Frame-Options: DENY }, remove: [Server, X-Powered-By] } }
  cluster: app
"""
    w, b = proxy(respond={"headers": [("Server", "apache"), ("X-Powered-By", "php"),
                                      ("X-Frame-Options", "ALLOW"), ("X-Keep", "1")]},
                 routes=routes)
    r = run(w, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == b"ok"
    assert not r.has("Server") and not r.has("X-Powered-By")
    assert r.header_all("X-Frame-Options") == ["DENY"]
    assert r.header("X-Keep") == "1"


def test_headers_on_other_route_untouched(proxy):
    routes = """
- match: { path_prefix: /h/ }
  headers: { request: { set: { X-Env: prod } } }
  cluster: app
- cluster: app
"""
    w, b = proxy(routes=routes)
    run(w, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not b.requests[-1].has("X-Env")


def test_respond_target(weir_factory):
    port = free_port()
    routes = """
- match: { path: /maintenance }
  respond: { status: 503, body: "back soon\\n", headers: { Retry-After: "120", Content-Type: text/plain } }
  headers: { response: { set: { X-Served-By: weir } } }
- respond: { status: 204 }
"""
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    with RawClient(port) as c:
        c.send(b"GET /maintenance HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 503 and r.body == b"back soon\n"
        assert r.header("Retry-After") == "120" and r.header("Content-Type") == "text/plain"
        assert r.header("X-Served-By") == "weir"     # response steps apply to weir's answers
        assert r.header("Content-Length") == "10"
        # keep-alive goes on after an answer weir made
        c.send(b"HEAD /maintenance HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(head_request=True)
        assert r.status == 503 and r.body == b"" and r.header("Content-Length") == "10"
        c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 204


def test_respond_with_request_body_closes(weir_factory):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:1"], routes="- respond: { status: 200, body: hi }"))
    with RawClient(port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hi"
        assert r.header("Connection") == "close"
        assert c.is_closed()


def test_respond_large_body_streams_whole(weir_factory, tmp_path):
    port = free_port()
    body = "".join("line %06d of a large maintenance page\n" % i for i in range(4000))  # ~150 KB
    routes = "- respond: { status: 200, body: %s }" % ('"' + body.replace("\n", "\\n") + '"')
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=routes))
    r = run(w, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.body == body.encode()


@pytest.mark.parametrize("spec,target,location,status", [
    ("{ to: https://example.com/ }", "/a/b?x=1", "https://example.com/", 302),
    ("{ to: https://example.com, keep_path: true, status: 301 }", "/a/b?x=1",
     "https://example.com/a/b?x=1", 301),
    ("{ to: https://example.com/, keep_path: true, keep_query: false, status: 308 }", "/a/b?x=1",
     "https://example.com/a/b", 308),
    ("{ to: /new, keep_query: true, status: 307 }", "/old?q=2", "/new?q=2", 307),
])
def test_redirect(weir_factory, spec, target, location, status):
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:1"], routes="- redirect: %s" % spec))
    r = run(w, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.status == status
    assert r.header("Location") == location
    assert r.header("Content-Length") == "0"


def check(tmp_path, routes):
    path = os.path.join(str(tmp_path), "bad.yaml")
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:9"], routes=routes))
    p = subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True)
    return p.returncode, p.stderr


@pytest.mark.parametrize("routes,message", [
    ("- match: { path: / }", ":8:9: route has no target"),
    ("- cluster: app\n  respond: { status: 200 }", "route has two targets"),
    ("- respond: { status: 200 }\n  retry: { attempts: 2 }", "'retry' applies to a route whose target is a cluster"),
    ("- headers: { request: { set: { Content-Length: 5 } } }\n  cluster: app", "is framed by weir itself"),
    ("- headers: { request: { set: { X-A: \"${nope}\" } } }\n  cluster: app", "unknown variable"),
    ("- redirect: { to: example.com }", "'to' must be an absolute URL"),
    ("- redirect: { to: /x, status: 200 }", "'status'"),
    ("- queue: jobs", "route sends to queue 'jobs' which is not defined in 'queues'"),
    ("- name: a\n  match: { path: /a }\n  cluster: app\n- name: a\n  cluster: app", "are named 'a'"),
])
def test_config_errors(tmp_path, routes, message):
    rc, err = check(tmp_path, routes)
    assert rc == 2
    assert message in err
    assert "bad.yaml:" in err


def test_route_deadline_applies_when_body_arrives_after_connect(proxy):
    """timeout: 500ms must answer 504 near 0.5 s even when the body comes after
    the upstream connect (it used to re-arm the cluster's 3 s response timeout)."""
    routes = """
- cluster: app
  timeout: 500ms
"""
    w, b = proxy(respond="hang", routes=routes, cluster_extra="timeouts: { response: 30s }")
    with RawClient(w.port, timeout=20) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        b.wait_requests(0)
        import time
        time.sleep(0.2)  # let weir connect upstream before the body arrives
        c.send(b"body")
        r = c.read_response()
        assert r.status == 504
    assert "route deadline" in w.errlog()

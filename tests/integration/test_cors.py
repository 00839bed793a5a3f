"""The `cors` route step: preflights answered by weir, Access-Control-* and
Vary fields on actual answers (the backend's and weir's own), origin
patterns, and configuration errors (Fetch standard, CORS protocol)."""
import os
import subprocess

import pytest

from conftest import WEIR_BIN, config, free_port, request

CORS = """
- cors:
    origins: [https://app.example.com, "https://*.example.org", "http://localhost:3000"]
    methods: [PUT, DELETE]
    headers: [Content-Type, X-Token]
    expose_headers: [X-Request-Id, X-Total]
    credentials: true
    max_age: 10m
  cluster: app
"""


def preflight(w, origin, method="PUT", headers=None, path="/a"):
    extra = "Access-Control-Request-Headers: %s\r\n" % headers if headers is not None else ""
    return request(w.port, ("OPTIONS %s HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n"
                            "Access-Control-Request-Method: %s\r\n%sConnection: close\r\n\r\n"
                            % (path, origin, method, extra)).encode())


def actual(w, origin=None, method="GET"):
    o = "Origin: %s\r\n" % origin if origin is not None else ""
    return request(w.port, ("%s /a HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                            % (method, o)).encode())


def acl(r):
    """The response's Access-Control-* fields, in order."""
    return [(n, v) for n, v in r.headers if n.lower().startswith("access-control-")]


def test_preflight_answered_by_weir(proxy):
    w, b = proxy(routes=CORS)
    r = preflight(w, "https://app.example.com", "PUT", "content-type, x-token")
    assert r.status == 204 and r.body == b""
    assert acl(r) == [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "PUT, DELETE"),
        ("Access-Control-Allow-Headers", "Content-Type, X-Token"),
        ("Access-Control-Max-Age", "600"),
    ]
    assert r.header_all("Vary") == [
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
    assert b.count == 0  # the backend never sees a preflight


def test_preflight_safelisted_method_needs_no_listing(proxy):
    w, b = proxy(routes=CORS)
    assert preflight(w, "https://app.example.com", "POST", "X-Token").status == 204
    assert preflight(w, "https://app.example.com", "GET").status == 204
    assert b.count == 0


@pytest.mark.parametrize("origin,method,headers", [
    ("https://evil.example.com", "PUT", None),         # origin not listed
    ("http://app.example.com", "PUT", None),           # scheme differs
    ("https://app.example.com:8443", "PUT", None),     # port differs
    ("null", "PUT", None),
    ("https://app.example.com", "PATCH", None),        # method not listed
    ("https://app.example.com", "put", None),          # methods are case-sensitive
    ("https://app.example.com", "PUT", "x-token, x-other"),  # one header not listed
])
def test_preflight_refused(proxy, origin, method, headers):
    w, b = proxy(routes=CORS)
    r = preflight(w, origin, method, headers)
    assert r.status == 403 and r.body == b"403 Forbidden\n"
    assert acl(r) == []
    assert r.header("Vary") == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    assert b.count == 0


def test_actual_request_gets_fields(proxy):
    w, b = proxy(respond={"headers": [("X-Total", "3")]}, routes=CORS)
    r = actual(w, "https://app.example.com")
    assert r.status == 200 and r.body == b"ok"
    assert acl(r) == [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Request-Id, X-Total"),
    ]
    assert r.header_all("Vary") == ["Origin"]
    assert b.requests[-1].header("Origin") == "https://app.example.com"  # forwarded as is


def test_origin_matching_case_insensitive_and_default_port(proxy):
    w, b = proxy(routes=CORS)
    assert actual(w, "HTTPS://App.Example.COM").header(
        "Access-Control-Allow-Origin") == "HTTPS://App.Example.COM"  # echoed as sent
    assert actual(w, "https://app.example.com:443").has("Access-Control-Allow-Origin")
    assert actual(w, "http://localhost:3000").has("Access-Control-Allow-Origin")
    assert not actual(w, "http://localhost").has("Access-Control-Allow-Origin")
    assert not actual(w, "https://app.example.com/").has("Access-Control-Allow-Origin")


def test_wildcard_is_one_label(proxy):
    w, b = proxy(routes=CORS)
    assert actual(w, "https://a.example.org").header("Access-Control-Allow-Origin") == \
        "https://a.example.org"
    assert actual(w, "https://A-1.EXAMPLE.org").has("Access-Control-Allow-Origin")
    assert not actual(w, "https://a.b.example.org").has("Access-Control-Allow-Origin")
    assert not actual(w, "https://example.org").has("Access-Control-Allow-Origin")
    assert not actual(w, "https://.example.org").has("Access-Control-Allow-Origin")
    assert not actual(w, "https://evilexample.org").has("Access-Control-Allow-Origin")
    assert not actual(w, "http://a.example.org").has("Access-Control-Allow-Origin")


def test_disallowed_origin_strips_backend_fields_and_varies(proxy):
    w, b = proxy(respond={"headers": [("Access-Control-Allow-Origin", "*"),
                                      ("Access-Control-Allow-Credentials", "true"),
                                      ("Vary", "Accept-Encoding")]}, routes=CORS)
    r = actual(w, "https://evil.example.com")
    assert r.status == 200 and acl(r) == []
    assert r.header_all("Vary") == ["Accept-Encoding", "Origin"]
    r = actual(w, None)  # no Origin: not a CORS request, still varies on it
    assert acl(r) == [] and r.header_all("Vary") == ["Accept-Encoding", "Origin"]
    assert b.count == 2


def test_backend_fields_replaced_not_doubled(proxy):
    w, b = proxy(respond={"headers": [("Access-Control-Allow-Origin", "*"),
                                      ("Vary", "origin")]}, routes=CORS)
    r = actual(w, "https://app.example.com")
    assert r.header_all("Access-Control-Allow-Origin") == ["https://app.example.com"]
    assert r.header_all("Vary") == ["origin"]  # already varies on Origin


def test_options_without_request_method_is_forwarded(proxy):
    w, b = proxy(routes=CORS)
    r = request(w.port, b"OPTIONS /a HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
                        b"Connection: close\r\n\r\n")
    assert r.status == 200 and b.count == 1
    assert r.header("Access-Control-Allow-Origin") == "https://app.example.com"


def test_any_origin_without_credentials_is_star(proxy):
    w, b = proxy(routes="- cors: { origins: [\"*\"], methods: [PUT] }\n  cluster: app")
    r = actual(w, "https://x.test")
    assert acl(r) == [("Access-Control-Allow-Origin", "*")]
    assert not r.has("Vary")  # the same answer for every origin
    r = preflight(w, "https://y.test", "PUT")
    assert r.status == 204
    assert acl(r) == [("Access-Control-Allow-Origin", "*"),
                      ("Access-Control-Allow-Methods", "PUT")]
    assert not r.has("Vary")


def test_any_origin_with_credentials_echoes(proxy):
    w, b = proxy(routes="- cors: { origins: [\"*\"], credentials: true }\n  cluster: app")
    r = actual(w, "https://x.test")
    assert acl(r) == [("Access-Control-Allow-Origin", "https://x.test"),
                      ("Access-Control-Allow-Credentials", "true")]
    assert r.header_all("Vary") == ["Origin"]
    r = preflight(w, "https://x.test", "DELETE")  # not listed, not safelisted
    assert r.status == 403


def test_fields_on_answers_weir_makes(proxy):
    routes = """
- respond: { status: 503, body: "down\\n" }
  cors: { origins: [https://app.example.com] }
"""
    w, b = proxy(routes=routes)
    r = actual(w, "https://app.example.com")
    assert r.status == 503 and r.body == b"down\n"
    assert acl(r) == [("Access-Control-Allow-Origin", "https://app.example.com")]
    assert r.header_all("Vary") == ["Origin"]


def test_access_refusal_comes_before_preflight(proxy):
    routes = """
- cors: { origins: [https://app.example.com], methods: [PUT] }
  access: { deny: [127.0.0.0/8] }
  cluster: app
"""
    w, b = proxy(routes=routes)
    r = preflight(w, "https://app.example.com", "PUT")
    assert r.status == 403 and r.body == b"403 Forbidden\n"
    assert not r.has("Access-Control-Allow-Methods")


def check(tmp_path, routes):
    path = os.path.join(str(tmp_path), "c.yaml")
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:9"], routes=routes))
    return subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True)


@pytest.mark.parametrize("value,message", [
    ("{ methods: [PUT] }", "origins"),
    ("{ origins: [app.example.com] }", "bad origin 'app.example.com'"),
    ("{ origins: [https://app.example.com/] }", "bad origin 'https://app.example.com/'"),
    ("{ origins: [\"https://*.com\"] }", "bad origin 'https://*.com'"),
    ("{ origins: [\"https://a.*.example.com\"] }", "bad origin"),
    ("{ origins: [\"https://app.example.com:70000\"] }", "bad origin"),
    ("{ origins: [null] }", "origin 'null'"),
    ("{ origins: [\"*\", https://a.example.com] }", "list it alone"),
    ("{ origins: [https://a.example.com], methods: [\"P UT\"] }", "bad name 'P UT' in 'methods'"),
    ("{ origins: [https://a.example.com], headers: [\"*\"] }", "bad name '*' in 'headers'"),
    ("{ origins: [https://a.example.com], credentials: maybe }", "expected true or false"),
    ("{ origins: [https://a.example.com], max_age: forever }", "expected a duration"),
])
def test_config_errors_name_the_place(tmp_path, value, message):
    p = check(tmp_path, "- cors: %s\n  cluster: app" % value)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert "c.yaml:" in p.stderr


def test_weir_error_answers_carry_cors_fields(weir_factory):
    """weir's own errors (the cluster is down: nothing listens) go through the
    route's response steps like a backend's answer."""
    port = free_port()
    w = weir_factory(config(port, ["127.0.0.1:1"], routes=CORS))
    r = actual(w, "https://app.example.com")
    assert r.status in (502, 503), r
    assert acl(r) == [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Request-Id, X-Total"),
    ]
    assert r.header_all("Vary") == ["Origin"]
    assert r.body == b"%d %s\n" % (r.status, r.reason.encode())
    r = actual(w, "https://evil.example.net")
    assert r.status in (502, 503) and acl(r) == []

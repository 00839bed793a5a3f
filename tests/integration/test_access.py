"""The `access` route step: allow and deny lists of client networks, by the
connection's peer address (the tests connect from 127.0.0.x sources)."""
import os
import subprocess

import pytest

from conftest import RawClient, WEIR_BIN, config, free_port

REQ = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def from_(w, source, data=REQ):
    with RawClient(w.port, source=source) as c:
        c.send(data)
        return c.read_response()


def check(tmp_path, routes):
    path = os.path.join(str(tmp_path), "c.yaml")
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:9"], routes=routes))
    return subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True)


def test_allow_only_refuses_the_rest(proxy):
    w, b = proxy(routes="- access: { allow: [127.0.0.2, 127.0.1.0/24] }\n  cluster: app")
    assert from_(w, "127.0.0.2").status == 200
    assert from_(w, "127.0.1.77").status == 200
    r = from_(w, "127.0.0.3")
    assert r.status == 403
    assert r.header("Content-Type") == "text/plain"
    assert r.body == b"403 Forbidden\n"
    assert b.count == 2  # the refused request never reached the backend


def test_deny_only_lets_the_rest_through(proxy):
    w, b = proxy(routes="- access: { deny: [127.0.0.3, 127.0.2.0/23] }\n  cluster: app")
    assert from_(w, "127.0.0.2").status == 200
    assert from_(w, "127.0.0.3").status == 403
    assert from_(w, "127.0.3.1").status == 403
    assert from_(w, "127.0.4.1").status == 200
    assert b.count == 2


def test_deny_wins_over_allow_in_any_order(proxy):
    routes = """
- access: { deny: [127.0.0.3], allow: [127.0.0.0/8] }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert from_(w, "127.0.0.2").status == 200
    assert from_(w, "127.0.0.3").status == 403
    routes = """
- access: { allow: [127.0.0.0/8], deny: [127.0.0.3] }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert from_(w, "127.0.0.2").status == 200
    assert from_(w, "127.0.0.3").status == 403


def test_configured_status_and_keep_alive(proxy):
    w, b = proxy(routes="- access: { allow: [127.0.0.2], status: 404 }\n  cluster: app")
    with RawClient(w.port, source="127.0.0.3") as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 404 and r.body == b"404 Not Found\n"
        c.send(REQ)  # the connection goes on after a refusal
        assert c.read_response().status == 404
    assert b.count == 0


def test_ipv6_rules_do_not_match_ipv4_peers(proxy):
    w, b = proxy(routes="- access: { allow: [\"::/0\"] }\n  cluster: app")
    assert from_(w, "127.0.0.2").status == 403
    w, b = proxy(routes="- access: { deny: [\"::/0\"] }\n  cluster: app")
    assert from_(w, "127.0.0.2").status == 200


def test_only_its_route_is_limited(proxy):
    routes = """
- match: { path_prefix: /admin }
  access: { allow: [127.0.0.2] }
  cluster: app
- cluster: app
"""
    w, b = proxy(routes=routes)
    assert from_(w, "127.0.0.3", b"GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 403
    assert from_(w, "127.0.0.3").status == 200


def test_access_runs_before_the_target_and_other_steps(proxy):
    """Listed after a respond target and a headers step, access still runs first,
    and its answer goes through the response steps like any other."""
    routes = """
- respond: { status: 200, body: "hi\\n" }
  headers: { response: { set: { X-Served-By: weir } } }
  access: { deny: [127.0.0.3] }
"""
    w, b = proxy(routes=routes)
    r = from_(w, "127.0.0.3")
    assert r.status == 403 and r.header("X-Served-By") == "weir"
    r = from_(w, "127.0.0.2")
    assert r.status == 200 and r.body == b"hi\n"


@pytest.mark.parametrize("value,message", [
    ("{ allow: [10.0.0.1/8] }",
     "network '10.0.0.1/8' has bits set after its prefix length"),
    ("{ allow: [10.0.0.0/33] }", "bad network '10.0.0.0/33'"),
    ("{ deny: [\"2001:db8::/129\"] }", "bad network '2001:db8::/129'"),
    ("{ deny: [example.com] }", "bad network 'example.com'"),
    ("{ allow: [] }", "'allow' must not be empty"),
    ("{ }", "access needs a non-empty 'allow' or 'deny' list"),
    ("{ allow: [10.0.0.0/8], status: 200 }", "status"),
    ("{ allow: [10.0.0.0/8], alow: [1.2.3.4] }", "alow"),
])
def test_config_errors_name_the_place(tmp_path, value, message):
    p = check(tmp_path, "- access: %s\n  cluster: app" % value)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert "c.yaml:" in p.stderr  # file:line:column


def test_ipv6_networks_load(tmp_path):
    p = check(tmp_path, "- access: { allow: [\"2001:db8::/32\", \"::1\", \"::ffff:10.0.0.0/104\"] }\n"
                        "  cluster: app")
    assert p.returncode == 0, p.stderr

"""The `rewrite` route step: strip_prefix, replace_prefix, regex (PCRE2) and
query: drop, checked by the exact request line the backend received; invalid
results and regex match limits answered 500 and never forwarded; config
errors with FILE:LINE:COLUMN from `weir check`."""
import re
import subprocess

import pytest

from conftest import WEIR_BIN, RawClient, config, free_port, request

ROUTES = r"""
- match: { path_prefix: /strip }
  rewrite: { strip_prefix: /strip }
  cluster: app
- match: { path_prefix: /old }
  rewrite: { replace_prefix: { from: /old/, to: /new/ } }
  cluster: app
- match: { path_prefix: /users/ }
  rewrite: { regex: { pattern: "^/users/([0-9]+)$", replace: "/u/$1" } }
  cluster: app
- match: { path_prefix: /item/ }
  rewrite: { regex: { pattern: '^/item/(?<id>\w+)', replace: '/items/${id}/$$' } }
  cluster: app
- match: { path_prefix: /nq/ }
  rewrite: { strip_prefix: /nq, query: drop }
  cluster: app
- match: { path_prefix: /bad/ }
  rewrite: { regex: { pattern: "^/bad/(.*)$", replace: "$1" } }
  cluster: app
- match: { path_prefix: /slow/ }
  rewrite: { regex: { pattern: "^/slow/(a|aa)+$", replace: "/x", match_limit: 1000 } }
  cluster: app
- cluster: app
"""


@pytest.fixture
def rw(proxy):
    return proxy(routes=ROUTES)


def forwarded(w, b, target, method="GET", body=b""):
    """Sends one request; returns the request line the backend received."""
    before = b.count
    head = "%s %s HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n" % (method, target)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    r = request(w.port, head.encode() + b"\r\n" + body)
    assert r.status == 200, (target, r.status, r.body)
    reqs = b.wait_requests(before + 1)
    return reqs[before].request_line


@pytest.mark.parametrize("sent, received", [
    ("/strip/users?x=1", "/users?x=1"),
    ("/strip/a/b/", "/a/b/"),
    ("/strip", "/"),
    ("/strip?x=1", "/?x=1"),
    ("/strip/", "/"),
    ("/stripped/x", "/stripped/x"),      # whole segments only: left alone
    ("/old/a?b=c", "/new/a?b=c"),
    ("/old", "/new"),
    ("/old/", "/new/"),
    ("/older/a", "/older/a"),
    ("/users/42", "/u/42"),
    ("/users/42?full=1&x=%20", "/u/42?full=1&x=%20"),
    ("/users/abc", "/users/abc"),       # no match: unchanged
    ("/users/42/more", "/users/42/more"),
    ("/item/7/rest", "/items/7/$/rest"),  # named group, $$, the text after the match kept
    ("/nq/a?secret=1", "/a"),
    ("/nq/a", "/a"),
    ("/plain?q=1", "/plain?q=1"),       # a route without rewrite
])
def test_rewrite_request_line(rw, sent, received):
    w, b = rw
    assert forwarded(w, b, sent) == "GET %s HTTP/1.1" % received


def test_rewrite_keeps_host_headers_and_body(rw):
    w, b = rw
    line = forwarded(w, b, "/old/upload", method="POST", body=b"payload")
    assert line == "POST /new/upload HTTP/1.1"
    req = b.requests[-1]
    assert req.header("Host") == "weir.test"
    assert req.body == b"payload"


def test_rewrite_absolute_form(rw):
    w, b = rw
    r = request(w.port, b"GET http://weir.test/strip/p?q=1 HTTP/1.1\r\nHost: weir.test\r\n"
                b"Connection: close\r\n\r\n")
    assert r.status == 200
    (req,) = b.wait_requests(1)
    assert req.request_line == "GET /p?q=1 HTTP/1.1"
    assert req.header("Host") == "weir.test"


def test_rewrite_keep_alive_and_pipelined(rw):
    """Each request of a connection gets its own rewrite (the arena is per
    transaction), pipelined ones too."""
    w, b = rw
    with RawClient(w.port) as c:
        c.send(b"GET /strip/one HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET /users/7 HTTP/1.1\r\nHost: weir.test\r\n\r\n"
               b"GET /old/x?y HTTP/1.1\r\nHost: weir.test\r\n\r\n"
               b"GET /nq/z?drop=me HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
        for _ in range(3):
            assert c.read_response().status == 200
    reqs = b.wait_requests(4)
    assert [r.request_line for r in reqs] == [
        "GET /one HTTP/1.1", "GET /u/7 HTTP/1.1", "GET /new/x?y HTTP/1.1", "GET /z HTTP/1.1"]


def test_invalid_result_is_500_and_not_forwarded(rw):
    w, b = rw
    r = request(w.port, b"GET /bad/abc HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
    assert r.status == 500
    w.wait_log(r"rewrite of path '/bad/abc' failed: the result is not a valid origin-form target")
    # a rewrite of that route that does give a path is forwarded
    assert forwarded(w, b, "/bad//ok") == "GET /ok HTTP/1.1"
    assert b.count == 1


def test_match_limit_is_500_and_the_worker_keeps_serving(rw):
    w, b = rw
    r = request(w.port, ("GET /slow/%sb HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n"
                         % ("a" * 40)).encode())
    assert r.status == 500
    w.wait_log(r"rewrite of path '/slow/a+b' failed: the regex hit its match limit")
    assert b.count == 0
    assert forwarded(w, b, "/slow/aaa") == "GET /x HTTP/1.1"


# ---- configuration errors ----


def check_config(tmp_path, routes):
    text = config(free_port(), ["127.0.0.1:1"], routes=routes)
    path = tmp_path / "rw.yaml"
    path.write_text(text)
    r = subprocess.run([WEIR_BIN, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=30)
    return text, str(path), r


def position(text, needle):
    """1-based line and column of the first `needle` in text."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n, line.index(needle) + 1
    raise AssertionError("%r not in config" % needle)


@pytest.mark.parametrize("rewrite, at, message", [
    ("{ strip_prefix: /a, regex: { pattern: x, replace: /y } }", "{ pattern",
     "'rewrite' takes one of strip_prefix, replace_prefix or regex, not both 'strip_prefix'"),
    ("{ regex: { pattern: '^/(x', replace: /y } }", "'^/(x'",
     "bad regex '^/(x': missing closing parenthesis at offset 4"),
    ("{ regex: { pattern: '^/(x)', replace: '/$2' } }", "'/$2'",
     "bad replacement '/$2': group 2 at offset 1 does not exist (the pattern has 1)"),
    ("{ regex: { pattern: '^/x', replace: 'y' } }", "'y'", "bad replacement 'y': the pattern is anchored"),
    ("{ strip_prefix: / }", "/ }", "'strip_prefix: /' strips nothing"),
    ("{ strip_prefix: 'a b' }", "'a b'", "'strip_prefix' must be a path starting with '/'"),
    ("{ replace_prefix: { from: /a } }", "{ from", "'replace_prefix' is missing required key 'to'"),
    ("{ query: sometimes }", "sometimes", "unknown query 'sometimes' (expected one of: keep, drop)"),
])
def test_config_errors(tmp_path, rewrite, at, message):
    routes = "- rewrite: %s\n  cluster: app\n" % rewrite
    text, path, r = check_config(tmp_path, routes)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line, col = position(text, at)
    assert "%s:%d:%d: %s" % (path, line, col, message) in r.stderr, r.stderr


def test_config_accepts_every_kind(tmp_path):
    _, _, r = check_config(tmp_path, ROUTES)
    assert r.returncode == 0, r.stderr


def test_reload_with_bad_rewrite_keeps_old_config(rw):
    w, b = rw
    bad = config(w.port, [b.addr], routes=ROUTES.replace('"/u/$1"', '"/u/$9"'))
    w.reload(bad, expect_ok=False)
    assert "group 9" in w.errlog()
    assert forwarded(w, b, "/users/5") == "GET /u/5 HTTP/1.1"

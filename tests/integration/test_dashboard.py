"""The admin dashboard (GET / on the admin listener): its headers and files
over plain HTTP, then the page itself in Debian's chromium driven by
playwright-core (tests/browser/drive.js): after known traffic it must show the
counts, the 5xx share, the percentiles Prometheus' histogram_quantile gives
for the same buckets and every endpoint's state; its drain button must stop
an endpoint's traffic and its enable button bring it back. Screenshots are
kept in the test's tmp_path (their paths are printed)."""
import json
import os
import selectors
import shutil
import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import IO_TIMEOUT, ROOT, config, free_port, get, wait_port, wait_until

TOKEN = "dashboard-admin-token-0123456789"
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CSP_MUST = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
            "frame-ancestors 'none'", "require-trusted-types-for 'script'"]

ROUTES = """
- name: a
  match: { path_prefix: /a }
  cluster: app
- name: b
  match: { path_prefix: /b }
  cluster: app
"""


def answer(req):
    """The backends: 500 for /b/fail..., else 200."""
    return {"status": 500, "body": b"boom"} if req.target.startswith("/b/fail") else {"body": b"ok"}


@pytest.fixture
def dashboard(weir_factory, recording_backend, tmp_path):
    """weir with two endpoints (two recording backends) behind routes a and b,
    two workers, an admin listener with a token. Returns (weir, b1, b2, aport)."""
    b1, b2 = recording_backend(answer), recording_backend(answer)
    tf = tmp_path / "admin.token"
    tf.write_text(TOKEN + "\n")
    port, aport = free_port(), free_port()
    admin = "admin: { listen: 127.0.0.1:%d, token_file: %s }\n" % (aport, tf)
    w = weir_factory(config(port, [b1.addr, b2.addr], workers=2, routes=ROUTES, top_extra=admin),
                     port=port)
    wait_port(aport)
    return w, b1, b2, aport


def admin_get(aport, path, **kw):
    return requests.get("http://127.0.0.1:%d%s" % (aport, path), timeout=IO_TIMEOUT, **kw)


# ---- plain HTTP: the files and their headers ----------------------------------------


def test_page_and_files_are_served_without_token_with_strict_headers(dashboard):
    w, b1, b2, aport = dashboard
    r = admin_get(aport, "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = r.headers["Content-Security-Policy"]
    for d in CSP_MUST:
        assert d in csp, d
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert '<script src="dashboard/dashboard.js"' in r.text and "<style" not in r.text
    for name, ctype in (("dashboard.js", "text/javascript; charset=utf-8"),
                        ("dashboard.css", "text/css; charset=utf-8")):
        a = admin_get(aport, "/dashboard/" + name)
        assert a.status_code == 200 and a.headers["Content-Type"] == ctype
        assert a.headers["Content-Security-Policy"] == csp
        # the file in the binary is the one in the tree
        with open(os.path.join(ROOT, "src", "admin", "dashboard", name), "rb") as f:
            assert a.content == f.read()
    # the data still needs the token
    assert admin_get(aport, "/metrics").status_code == 401
    assert admin_get(aport, "/api/v1/clusters").status_code == 401
    assert admin_get(aport, "/api/v1/clusters",
                     headers={"Authorization": "Bearer " + TOKEN}).status_code == 200


def test_etag_revalidation_and_bad_requests(dashboard):
    w, b1, b2, aport = dashboard
    r = admin_get(aport, "/")
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    nm = admin_get(aport, "/", headers={"If-None-Match": etag})
    assert nm.status_code == 304 and nm.content == b"" and nm.headers["ETag"] == etag
    assert "Content-Length" not in nm.headers
    assert admin_get(aport, "/", headers={"If-None-Match": '"other"'}).status_code == 200
    css_etag = admin_get(aport, "/dashboard/dashboard.css").headers["ETag"]
    assert css_etag != etag
    assert admin_get(aport, "/dashboard/nope.js").status_code == 404
    assert admin_get(aport, "/dashboard/").status_code == 401  # not a file: the API's paths, token first
    p = requests.post("http://127.0.0.1:%d/" % aport, timeout=IO_TIMEOUT)
    assert p.status_code == 405 and p.headers["Allow"] == "GET, HEAD"
    h = requests.head("http://127.0.0.1:%d/dashboard/dashboard.js" % aport, timeout=IO_TIMEOUT)
    assert h.status_code == 200 and h.content == b""


# ---- the page in chromium -------------------------------------------------------------


class Browser:
    """tests/browser/drive.js in a subprocess: call({"cmd": ...}) -> its answer."""

    def __init__(self, tmp_path):
        self.err_path = str(tmp_path / "browser.err")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "drive.js")],
                                     cwd=BROWSER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err,
                                     env=dict(os.environ, CHROMIUM=CHROMIUM))
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""

    def call(self, cmd, timeout=60):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise AssertionError("no answer from the browser to %r" % cmd)
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError("the browser driver exited: %s" % self.stderr())
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        a = json.loads(line)
        assert a["ok"], a["error"]
        return a

    def state(self):
        return self.call({"cmd": "state"})

    def wait_state(self, pred, what):
        """The first state for which pred(state) holds (the page polls every second)."""
        last = {}

        def check():
            last["s"] = self.state()
            return pred(last["s"])
        try:
            wait_until(check, timeout=20, interval=0.2, what=what)
        except AssertionError:
            raise AssertionError("%s; last page state: %s" % (what, json.dumps(last.get("s"), indent=1)))
        return last["s"]

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._sel.close()
        self.proc.stdout.close()
        self._err.close()


@pytest.fixture
def browser(tmp_path):
    if not shutil.which("node") or not os.path.exists(CHROMIUM):
        pytest.skip("needs node and chromium (scripts/deps.sh test)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        pytest.skip("needs playwright-core: make browser-deps")
    b = Browser(tmp_path)
    yield b
    b.close()


def histogram_quantile(q, buckets):
    """Prometheus' histogram_quantile over [(upper bound, cumulative count)]."""
    b = sorted(buckets)
    for i in range(1, len(b)):
        b[i] = (b[i][0], max(b[i][1], b[i - 1][1]))
    total = b[-1][1]
    if total == 0:
        return None
    rank = q * total
    i = next(k for k, (_, c) in enumerate(b) if c >= rank)
    if i == len(b) - 1:
        return b[-2][0]
    start, count = 0.0, b[i][1]
    if i > 0:
        start, count, rank = b[i - 1][0], count - b[i - 1][1], rank - b[i - 1][1]
    return start + (b[i][0] - start) * (rank / count)


def route_buckets(aport):
    """{route: [(le, count)]} of weir_http_request_duration_seconds."""
    text = admin_get(aport, "/metrics", headers={"Authorization": "Bearer " + TOKEN}).text
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != "weir_http_request_duration_seconds":
            continue
        for s in fam.samples:
            if s.name.endswith("_bucket"):
                out.setdefault(s.labels["route"], []).append((float(s.labels["le"]), s.value))
    return out


def seconds_of(text):
    """The page's '1.8 ms' / '0.25 s' as seconds, and half a unit of its last digit."""
    num, unit = text.split(" ")
    scale = 0.001 if unit == "ms" else 1.0
    decimals = len(num.partition(".")[2])
    return float(num) * scale, 0.5 * 10 ** -decimals * scale


def row(rows, key):
    found = [r for r in rows if r["key"] == key]
    assert len(found) == 1, (key, rows)
    return found[0]


def test_page_shows_traffic_and_drains_an_endpoint(dashboard, browser, tmp_path):
    w, b1, b2, aport = dashboard
    for i in range(30):
        assert get(w.port, "/a/%d" % i).status == 200
    for i in range(10):
        r = get(w.port, "/b/fail%d" % i if i < 4 else "/b/%d" % i)
        assert r.status == (500 if i < 4 else 200)
    key1, key2 = "app\u0000" + b1.addr, "app\u0000" + b2.addr
    url = "http://127.0.0.1:%d/" % aport

    # the token: asked for on the first 401, a wrong one is refused, then kept for the session
    browser.call({"cmd": "open", "url": url})
    browser.wait_state(lambda s: s["login_visible"], "the token form")
    browser.call({"cmd": "login", "token": "wrong-token"})
    browser.wait_state(lambda s: s["login_visible"] and "refused" in s["login_error"],
                       "the wrong token refused")
    browser.call({"cmd": "login", "token": TOKEN})
    s = browser.wait_state(lambda s: not s["login_visible"] and s["polls"] >= 3
                           and len(s["endpoints"]) == 2, "three polls with the token")
    browser.call({"cmd": "reload"})
    s = browser.wait_state(lambda s: s["polls"] >= 2, "two polls after reloading")
    assert not s["login_visible"], "sessionStorage keeps the token over a reload"

    # counts and the 5xx share, per route and per cluster
    a, b = row(s["routes"], "web\u0000a"), row(s["routes"], "web\u0000b")
    assert (a["requests"], a["err5"], a["share"]) == ("30", "0", "0.0 %")
    assert (b["requests"], b["err5"], b["share"]) == ("10", "4", "40.0 %")
    app = row(s["clusters"], "app")
    assert (app["requests"], app["err5"], app["share"]) == ("40", "4", "10.0 %")
    assert float(a["rate"]) >= 0 and float(app["rate"]) >= 0  # a number once two scrapes are in
    # percentiles: what histogram_quantile gives for the same buckets
    buckets = route_buckets(aport)
    for name, r in (("a", a), ("b", b)):
        for q, col in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            want = histogram_quantile(q, buckets[name])
            got, tol = seconds_of(r[col])
            assert abs(got - want) <= tol + 1e-12, (name, col, r[col], want)
    # the endpoints as the API and the backends see them
    e1, e2 = row(s["endpoints"], key1), row(s["endpoints"], key2)
    for e, backend in ((e1, b1), (e2, b2)):
        assert (e["address"], e["up"], e["healthy"], e["draining"], e["ejected"]) == \
            (backend.addr, "yes", "yes", "no", "no")
        assert e["breaker"] in ("closed", "disabled") and e["in_flight"] == "0"
        assert e["requests"] == str(backend.count) and e["button"] == "Drain"
    assert b1.count + b2.count == 40 and b1.count > 0 and b2.count > 0
    # a live chart panel per route and per cluster, each with its three charts drawn
    assert sorted(p["title"] for p in s["route_panels"]) == ["web / a", "web / b"]
    assert [p["title"] for p in s["cluster_panels"]] == ["app"]
    for p in s["route_panels"] + s["cluster_panels"]:
        assert [c["title"] for c in p["charts"]] == ["requests/s", "5xx share", "latency"]
        assert p["charts"][0]["paths"][0].startswith("M"), p
    shot = str(tmp_path / "dashboard-before-drain.png")
    browser.call({"cmd": "screenshot", "path": shot})
    print("screenshot:", shot)

    # drain the first endpoint from the page: it gets nothing more
    browser.call({"cmd": "click", "key": key1})
    s = browser.wait_state(lambda s: row(s["endpoints"], key1)["draining"] == "yes"
                           and row(s["endpoints"], key1)["button"] == "Enable", "endpoint 1 draining")
    api = admin_get(aport, "/api/v1/clusters/app", headers={"Authorization": "Bearer " + TOKEN}).json()
    assert [e["draining"] for e in api["endpoints"]] == [True, False]
    n1, n2 = b1.count, b2.count
    for i in range(20):
        assert get(w.port, "/a/drained%d" % i).status == 200
    assert b1.count == n1 and b2.count == n2 + 20
    s = browser.wait_state(lambda s: row(s["routes"], "web\u0000a")["requests"] == "50"
                           and row(s["endpoints"], key2)["requests"] == str(n2 + 20),
                           "the page counting the requests after the drain")
    assert row(s["endpoints"], key1)["requests"] == str(n1)
    shot = str(tmp_path / "dashboard-drained.png")
    browser.call({"cmd": "screenshot", "path": shot})
    print("screenshot:", shot)

    # enable it again: it takes requests again
    browser.call({"cmd": "click", "key": key1})
    browser.wait_state(lambda s: row(s["endpoints"], key1)["draining"] == "no"
                       and row(s["endpoints"], key1)["button"] == "Drain", "endpoint 1 enabled")
    for i in range(10):
        assert get(w.port, "/a/back%d" % i).status == 200
    assert b1.count > n1
    s = browser.state()
    # no CSP violation, no script error; only the 401 and 403 that asked for the token
    errors = [e for e in s["errors"] if "status of 401" not in e and "status of 403" not in e]
    assert errors == [], s["errors"]

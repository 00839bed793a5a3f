"""The admin listener: /metrics parsed with the real Prometheus parser and
checked exactly after known traffic (backend answers, weir's own 4xx/5xx,
requests spread over every worker), the JSON admin API with good and bad
input, the bearer token, and reloads through the API."""
import json
import os
import socket
import subprocess

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import WEIR_BIN, config, free_port, get, request, wait_port, wait_until

TOKEN = "s3cret-admin-token-0123456789"


def admin_yaml(aport, extra=""):
    return "admin: { listen: 127.0.0.1:%d%s }\n" % (aport, extra)


def scrape(aport, headers=None):
    r = requests.get("http://127.0.0.1:%d/metrics" % aport, headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text
    return r


def samples(aport):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for fam in text_string_to_metric_families(scrape(aport).text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(ss, name, **labels):
    return ss.get((name, frozenset(labels.items())))


def family_types(aport):
    return {f.name: f.type for f in text_string_to_metric_families(scrape(aport).text)}


ROUTES = """
- name: api
  match: { path_prefix: /api }
  cluster: app
- name: hello
  match: { path: /hello }
  respond: { status: 200, body: "hi" }
- name: rest
  cluster: app
"""


@pytest.fixture
def admin_proxy(weir_factory, recording_backend):
    def make(respond=None, workers=2, admin_extra="", cluster_extra="", routes=ROUTES,
             listener_extra="", top=""):
        b = recording_backend(respond)
        port, aport = free_port(), free_port()
        w = weir_factory(config(port, [b.addr], workers=workers, routes=routes,
                                cluster_extra=cluster_extra, listener_extra=listener_extra,
                                top_extra=admin_yaml(aport, admin_extra) + top), port=port)
        wait_port(aport)
        return w, b, aport
    return make


def test_request_counts_are_exact_over_all_workers(admin_proxy):
    w, b, aport = admin_proxy(workers=2,
                              listener_extra="limits: { body: 10 }")
    for i in range(40):  # one connection each: the kernel spreads them over both workers
        assert get(w.port, "/api/x%d" % i).status == 200
    for i in range(7):
        assert get(w.port, "/hello").status == 200
    for i in range(3):  # weir's own 413 (over limits.body) on the api route
        r = request(w.port, b"POST /api/big HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                             b"Connection: close\r\n\r\n01234567890")
        assert r.status == 413
    r = request(w.port, b"GET /bad path HTTP/1.1\r\nHost: x\r\n\r\n")  # 400 before routing
    assert r.status == 400
    assert b.count == 40
    ss = samples(aport)
    v = lambda **kw: value(ss, "weir_http_requests_total", listener="web", **kw)
    assert v(route="api", cluster="app", code="2xx") == 40
    assert v(route="api", cluster="app", code="4xx") == 3
    assert v(route="api", cluster="app", code="5xx") == 0
    assert v(route="hello", cluster="", code="2xx") == 7
    assert v(route="", cluster="", code="4xx") == 1
    assert v(route="rest", cluster="app", code="2xx") == 0
    h = lambda s, **kw: value(ss, "weir_http_request_duration_seconds" + s, listener="web", **kw)
    assert h("_count", route="api") == 43
    assert h("_bucket", route="api", le="+Inf") == 43
    assert h("_count", route="hello") == 7
    assert h("_sum", route="api") > 0
    # cumulative buckets never go down
    bounds = sorted(float(dict(k[1])["le"]) for k in ss
                    if k[0] == "weir_http_request_duration_seconds_bucket"
                    and dict(k[1]).get("route") == "api")
    counts = [h("_bucket", route="api", le=("+Inf" if x == float("inf") else "%g" % x))
              for x in bounds]
    assert counts == sorted(counts) and counts[-1] == 43
    assert value(ss, "weir_upstream_requests_total", cluster="app", endpoint=b.addr, code="2xx") == 40
    assert value(ss, "weir_upstream_response_seconds_count", cluster="app") == 40
    conns = value(ss, "weir_connections_total", listener="web")
    assert conns == 40 + 7 + 3 + 1 + 1  # and the fixture's wait for the port
    assert value(ss, "weir_pool_connects_total", cluster="app") + \
        value(ss, "weir_pool_reuses_total", cluster="app") == 40
    assert value(ss, "weir_upstream_connect_seconds_count", cluster="app") == \
        value(ss, "weir_pool_connects_total", cluster="app")
    assert value(ss, "weir_endpoint_up", cluster="app", endpoint=b.addr) == 1
    assert value(ss, "weir_endpoint_in_flight", cluster="app", endpoint=b.addr) == 0
    assert value(ss, "weir_breaker_state", cluster="app", endpoint=b.addr) == 0
    assert value(ss, "process_resident_memory_bytes") > 0
    assert value(ss, "process_open_fds") > 0


def test_backend_5xx_and_retries_counted(admin_proxy, recording_backend):
    # a dead endpoint beside a live one: connects fail over (a retry each)
    dead = free_port()
    w, b, aport = admin_proxy(respond={"status": 503}, workers=1,
                              routes="- cluster: app\n  retry: { attempts: 2, on: [503] , backoff: { base: 1ms, max: 1ms } }")
    for i in range(5):
        assert get(w.port, "/x").status == 503
    ss = samples(aport)
    assert value(ss, "weir_upstream_requests_total", cluster="app", endpoint=b.addr, code="5xx") == 10
    assert value(ss, "weir_upstream_retries_total", cluster="app", reason="5xx") == 5
    assert value(ss, "weir_upstream_retries_total", cluster="app", reason="timeout") == 0
    assert value(ss, "weir_http_requests_total", listener="web", route="web/1", cluster="app",
                 code="5xx") == 5


def test_connections_gauge_follows_open_connections(admin_proxy):
    w, b, aport = admin_proxy(workers=2)
    socks = [socket.create_connection(("127.0.0.1", w.port)) for _ in range(5)]
    try:
        for s in socks:  # a request each, so weir has surely accepted them
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(1024).startswith(b"HTTP/1.1 200")
        assert value(samples(aport), "weir_connections", listener="web") == 5
    finally:
        for s in socks:
            s.close()
    from conftest import wait_until
    wait_until(lambda: value(samples(aport), "weir_connections", listener="web") == 0,
               what="connections gauge back to 0")


def test_types_and_openmetrics(admin_proxy):
    w, b, aport = admin_proxy()
    get(w.port, "/hello")
    types = family_types(aport)
    assert types["weir_http_requests"] == "counter"
    assert types["weir_http_request_duration_seconds"] == "histogram"
    assert types["weir_endpoint_up"] == "gauge"
    assert types["weir_config_reloads"] == "counter"
    assert types["process_cpu_seconds"] == "counter"
    r = scrape(aport, {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    assert "# TYPE weir_http_requests counter\n" in r.text
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
    names = {f.name for f in om(r.text)}
    assert "weir_http_requests" in names and "weir_http_request_duration_seconds" in names
    assert "weir_connections" in names and "weir_connections_total" in names
    plain = scrape(aport)
    assert plain.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in plain.text


def test_counters_survive_a_reload(admin_proxy):
    w, b, aport = admin_proxy(workers=1)
    for _ in range(4):
        get(w.port, "/hello")
    text = w.config_text if hasattr(w, "config_text") else open(w.config_path).read()
    w.reload(text.replace('body: "hi"', 'body: "hello"'))
    assert get(w.port, "/hello").body == b"hello"
    ss = samples(aport)
    assert value(ss, "weir_http_requests_total", listener="web", route="hello", cluster="",
                 code="2xx") == 5
    assert value(ss, "weir_config_reloads_total", result="success") == 1
    assert value(ss, "weir_config_reloads_total", result="failure") == 0


def test_status_clusters_listeners(admin_proxy):
    w, b, aport = admin_proxy(workers=2)
    base = "http://127.0.0.1:%d/api/v1" % aport
    st = requests.get(base + "/status", timeout=10)
    assert st.status_code == 200 and st.headers["Content-Type"] == "application/json"
    st = st.json()
    assert st["workers"] == 2 and st["generation"] >= 1 and st["uptime_seconds"] >= 0
    assert st["version"]
    cl = requests.get(base + "/clusters", timeout=10).json()["clusters"]
    assert [c["name"] for c in cl] == ["app"]
    ep = cl[0]["endpoints"][0]
    assert ep["address"] == b.addr and ep["up"] is True and ep["healthy"] is True
    assert ep["draining"] is False and ep["ejected"] is False and ep["in_flight"] == 0
    one = requests.get(base + "/clusters/app", timeout=10)
    assert one.status_code == 200 and one.json()["name"] == "app"
    missing = requests.get(base + "/clusters/nope", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"error": "no such cluster", "detail": "nope"}
    ls = requests.get(base + "/listeners", timeout=10).json()["listeners"]
    assert ls[0]["name"] == "web" and ls[0]["listen"] == "127.0.0.1:%d" % w.port
    assert [r["name"] for r in ls[0]["routes"]] == ["api", "hello", "rest"]
    assert ls[0]["routes"][1]["cluster"] is None


def test_errors_are_json_with_fitting_status(admin_proxy):
    w, b, aport = admin_proxy()
    base = "http://127.0.0.1:%d" % aport
    r = requests.post(base + "/api/v1/status", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    assert r.json()["error"] == "method not allowed"
    r = requests.get(base + "/api/v1/reload", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = requests.get(base + "/api/v2/whatever", timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "no such admin path"
    r = requests.delete(base + "/metrics", timeout=10)
    assert r.status_code == 405
    r = request(aport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert r.status == 411
    r = request(aport, b"POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
    assert r.status == 413
    r = request(aport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
    assert r.status == 400


def test_keep_alive_and_pipelining(admin_proxy):
    w, b, aport = admin_proxy()
    s = socket.create_connection(("127.0.0.1", aport))
    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /api/v1/clusters/app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    s.settimeout(10)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b'"name":"app"' in data


def test_token_required_when_configured(admin_proxy, tmp_path):
    tf = tmp_path / "admin.token"
    tf.write_text(TOKEN + "\n")
    w, b, aport = admin_proxy(admin_extra=", token_file: %s" % tf)
    url = "http://127.0.0.1:%d/api/v1/status" % aport
    r = requests.get(url, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": "Basic " + TOKEN}, timeout=10).status_code == 401
    ok = requests.get(url, headers={"Authorization": "Bearer " + TOKEN}, timeout=10)
    assert ok.status_code == 200
    m = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=10)
    assert m.status_code == 401  # every call, metrics included


def test_reload_through_the_api(admin_proxy):
    w, b, aport = admin_proxy(workers=1)
    url = "http://127.0.0.1:%d/api/v1/reload" % aport
    text = open(w.config_path).read()
    with open(w.config_path, "w") as f:
        f.write(text.replace('body: "hi"', 'body: "v2"'))
    r = requests.post(url, timeout=10)
    assert r.status_code == 200 and r.json()["result"] == "reloaded"
    assert get(w.port, "/hello").body == b"v2"
    with open(w.config_path, "w") as f:
        f.write(text.replace('body: "hi"', 'body: "v3"').replace("routes:", "routes: 5\n    x:"))
    r = requests.post(url, timeout=10)
    assert r.status_code == 400
    err = r.json()
    assert err["error"].startswith("reload rejected")
    assert err["detail"].startswith(w.config_path + ":")  # FILE:LINE:COLUMN
    assert get(w.port, "/hello").body == b"v2"  # the old configuration serves on
    ss = samples(aport)
    assert value(ss, "weir_config_reloads_total", result="success") == 1
    assert value(ss, "weir_config_reloads_total", result="failure") == 1


def check(tmp_path, text):
    p = tmp_path / "w.yaml"
    p.write_text(text)
    return subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)


def test_config_errors(tmp_path):
    port = free_port()
    base = config(port, ["127.0.0.1:1"])
    r = check(tmp_path, base + "admin: { listen: 0.0.0.0:9901 }\n")
    assert r.returncode == 2
    assert "w.yaml:" in r.stderr and "needs a 'token_file'" in r.stderr
    r = check(tmp_path, base + "admin: { listen: 127.0.0.1:%d }\n" % port)
    assert r.returncode == 2 and "is also listener web's" in r.stderr
    r = check(tmp_path, base + "admin: { histogram_buckets: [0.1, 0.01] }\n")
    assert r.returncode == 2 and "increasing order" in r.stderr
    r = check(tmp_path, base + "admin: { token_file: missing.token }\n")
    assert r.returncode == 2 and "cannot open" in r.stderr
    (tmp_path / "short.token").write_text("abc\n")
    r = check(tmp_path, base + "admin: { token_file: short.token }\n")
    assert r.returncode == 2 and "at least 16" in r.stderr
    (tmp_path / "good.token").write_text(TOKEN)
    r = check(tmp_path, base + "admin: { listen: 0.0.0.0:%d, token_file: good.token }\n" % free_port())
    assert r.returncode == 0, r.stderr


def test_custom_histogram_buckets(admin_proxy):
    w, b, aport = admin_proxy(admin_extra=", histogram_buckets: [0.001, 0.5, 30]")
    get(w.port, "/hello")
    ss = samples(aport)
    les = sorted(dict(k[1])["le"] for k in ss if k[0] == "weir_http_request_duration_seconds_bucket"
                 and dict(k[1])["route"] == "hello")
    assert les == sorted(["0.001", "0.5", "30", "+Inf"])


# ---- run-time endpoint changes and registration ------------------------------

def api(aport, method, path, body=None, token=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    return requests.request(method, "http://127.0.0.1:%d/api/v1%s" % (aport, path),
                            json=body, headers=h, timeout=10)


def endpoints(aport, cluster="app"):
    return {e["address"]: e for e in api(aport, "GET", "/clusters/" + cluster).json()["endpoints"]}


def test_add_patch_delete_endpoints(admin_proxy, recording_backend):
    w, b1, aport = admin_proxy(workers=2)
    b2 = recording_backend()
    r = api(aport, "POST", "/clusters/app/endpoints", {"address": b2.addr, "weight": 2})
    assert r.status_code == 201, r.text
    assert r.json()["address"] == b2.addr and r.json()["weight"] == 2
    assert endpoints(aport)[b2.addr]["source"] == "api"
    for i in range(30):
        assert get(w.port, "/api/%d" % i).status == 200
    assert b1.count > 0 and b2.count > 0 and b1.count + b2.count == 30
    # drain b1: it gets nothing new
    r = api(aport, "PATCH", "/clusters/app/endpoints/" + b1.addr, {"drain": True})
    assert r.status_code == 200 and r.json()["draining"] is True and r.json()["up"] is False
    before = b1.count
    for i in range(20):
        assert get(w.port, "/api/d%d" % i).status == 200
    assert b1.count == before
    # enable again, then maintenance (down)
    assert api(aport, "PATCH", "/clusters/app/endpoints/" + b1.addr, {"drain": False}).json()["up"] is True
    r = api(aport, "PATCH", "/clusters/app/endpoints/" + b2.addr, {"down": True, "weight": 5})
    assert r.json()["down"] is True and r.json()["weight"] == 5
    before2 = b2.count
    for i in range(10):
        assert get(w.port, "/api/m%d" % i).status == 200
    assert b2.count == before2
    # remove b2 (added at run time): gone from the cluster
    r = api(aport, "DELETE", "/clusters/app/endpoints/" + b2.addr)
    assert r.status_code == 200 and r.json()["removed"] == b2.addr
    assert list(endpoints(aport)) == [b1.addr]
    # the last endpoint stays
    r = api(aport, "DELETE", "/clusters/app/endpoints/" + b1.addr)
    assert r.status_code == 409


def test_endpoint_api_bad_input(admin_proxy):
    w, b, aport = admin_proxy()
    cases = [
        ("POST", "/clusters/app/endpoints", {"address": "nonsense"}, 400),
        ("POST", "/clusters/app/endpoints", {"address": "127.0.0.1:99999"}, 400),
        ("POST", "/clusters/app/endpoints", {"address": "127.0.0.1:5", "weight": 0}, 400),
        ("POST", "/clusters/app/endpoints", {"address": "127.0.0.1:5", "weight": "2"}, 400),
        ("POST", "/clusters/app/endpoints", {"address": "127.0.0.1:5", "color": 1}, 400),
        ("POST", "/clusters/app/endpoints", {"address": b.addr}, 409),
        ("POST", "/clusters/nope/endpoints", {"address": "127.0.0.1:5"}, 404),
        ("PATCH", "/clusters/app/endpoints/127.0.0.1:5", {"drain": True}, 404),
        ("PATCH", "/clusters/app/endpoints/" + b.addr, {"drain": "yes"}, 400),
        ("PATCH", "/clusters/app/endpoints/" + b.addr, {"weight": 1001}, 400),
        ("GET", "/clusters/app/endpoints/" + b.addr, None, 405),
        ("PUT", "/clusters/app/endpoints", None, 405),
    ]
    for method, path, body, status in cases:
        r = api(aport, method, path, body)
        assert r.status_code == status, (method, path, body, r.status_code, r.text)
        assert "error" in r.json()
    r = requests.post("http://127.0.0.1:%d/api/v1/clusters/app/endpoints" % aport, data=b"{bad",
                      timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "the body must be a JSON object"
    # nothing changed
    assert list(endpoints(aport)) == [b.addr]


def test_runtime_changes_under_load_lose_nothing(admin_proxy, recording_backend):
    import threading
    w, b1, aport = admin_proxy(workers=2)
    b2 = recording_backend()
    failures, done = [], threading.Event()
    count = [0]

    def load():
        while not done.is_set() and count[0] < 3000:
            try:
                r = get(w.port, "/api/x")
                if r.status != 200:
                    failures.append(r.status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))
            count[0] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            assert api(aport, "POST", "/clusters/app/endpoints", {"address": b2.addr}).status_code == 201
            assert api(aport, "PATCH", "/clusters/app/endpoints/" + b1.addr, {"drain": True}).status_code == 200
            assert api(aport, "PATCH", "/clusters/app/endpoints/" + b1.addr, {"drain": False}).status_code == 200
            assert api(aport, "DELETE", "/clusters/app/endpoints/" + b2.addr).status_code == 200
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert count[0] > 0 and failures == []
    assert b2.count > 0  # it did take traffic while it was in


def test_changes_survive_reload_unless_the_file_names_the_endpoint(admin_proxy, recording_backend):
    w, b1, aport = admin_proxy(workers=1)
    b2 = recording_backend()
    assert api(aport, "POST", "/clusters/app/endpoints", {"address": b2.addr, "weight": 3}).status_code == 201
    text = open(w.config_path).read()
    w.reload(text)
    eps = endpoints(aport)
    assert eps[b2.addr]["source"] == "api" and eps[b2.addr]["weight"] == 3
    # the file now names b2 itself (weight 1): the file wins
    w.reload(text.replace("      - %s\n" % b1.addr, "      - %s\n      - %s\n" % (b1.addr, b2.addr)))
    eps = endpoints(aport)
    assert eps[b2.addr]["source"] == "config" and eps[b2.addr]["weight"] == 1
    w.wait_log("the file names it")


def test_a_reload_that_fails_late_keeps_the_run_time_changes(admin_proxy, recording_backend):
    """A file that parses but cannot be served (its access log cannot be
    opened) is rejected after the run-time changes were reconciled with it:
    they must come back with the old configuration."""
    w, b1, aport = admin_proxy(workers=1)
    b2 = recording_backend()
    assert api(aport, "POST", "/clusters/app/endpoints", {"address": b2.addr, "weight": 3}).status_code == 201
    text = open(w.config_path).read()
    bad = text.replace("      - %s\n" % b1.addr, "      - %s\n      - %s\n" % (b1.addr, b2.addr))
    bad = bad.replace("access: stdout", "access: /nonexistent-dir/access.log")
    assert bad.count("/nonexistent-dir/") == 1 and b2.addr in bad
    w.reload(bad, expect_ok=False)
    eps = endpoints(aport)
    assert eps[b2.addr]["source"] == "api" and eps[b2.addr]["weight"] == 3
    # a later rebuild (another run-time change) still has b2 from the API
    assert api(aport, "PATCH", "/clusters/app/endpoints/" + b1.addr, {"weight": 2}).status_code == 200
    eps = endpoints(aport)
    assert eps[b2.addr]["source"] == "api" and eps[b2.addr]["weight"] == 3
    for i in range(10):
        assert get(w.port, "/api/%d" % i).status == 200
    assert b2.count > 0


def test_registration_expires_without_heartbeat(admin_proxy, recording_backend):
    from conftest import wait_until
    import time
    w, b1, aport = admin_proxy(workers=1)
    b2, b3 = recording_backend(), recording_backend()
    r = api(aport, "POST", "/register", {"cluster": "app", "address": b2.addr, "ttl": "1s",
                                         "meta": {"zone": "a"}})
    assert r.status_code == 201, r.text
    r = api(aport, "POST", "/register", {"cluster": "app", "address": b3.addr, "ttl": "1s"})
    assert r.status_code == 201
    eps = endpoints(aport)
    assert eps[b2.addr]["source"] == "registered" and eps[b2.addr]["meta"] == {"zone": "a"}
    # b3 heartbeats for 2.5 s (2.5 TTLs); b2 does not
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        assert api(aport, "PUT", "/register/app/" + b3.addr).status_code == 200
        time.sleep(0.25)
    wait_until(lambda: b2.addr not in endpoints(aport), what="b2 removed after its TTL")
    assert b3.addr in endpoints(aport)
    w.wait_log("registered endpoint %s missed its heartbeat" % b2.addr)
    assert api(aport, "PUT", "/register/app/" + b2.addr).status_code == 404
    before = b2.count
    for i in range(10):
        assert get(w.port, "/api/%d" % i).status == 200
    assert b2.count == before  # no request reaches the expired one after removal
    assert b3.count > 0
    # bad registrations
    for body, status in [({"cluster": "app", "address": b3.addr}, 400),
                         ({"cluster": "app", "address": "127.0.0.1:7", "ttl": "100ms"}, 400),
                         ({"cluster": "nope", "address": "127.0.0.1:7", "ttl": "5s"}, 404),
                         ({"cluster": "app", "address": b1.addr, "ttl": "5s"}, 409),
                         ({"address": "127.0.0.1:7", "ttl": "5s"}, 400)]:
        r = api(aport, "POST", "/register", body)
        assert r.status_code == status, (body, r.text)


def test_bytes_counted_exactly(admin_proxy):
    w, b, aport = admin_proxy(respond={"status": 200, "body": b"x" * 1000}, workers=2)
    sent = received = 0
    for i in range(12):
        req = ("GET /api/%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % i).encode()
        r = request(w.port, req)
        assert r.status == 200 and len(r.body) == 1000
        sent += len(req)
        head = "HTTP/1.1 %d %s\r\n" % (r.status, r.reason)
        head += "".join("%s: %s\r\n" % hv for hv in r.headers) + "\r\n"
        received += len(head.encode()) + len(r.body)
    ss = samples(aport)
    assert value(ss, "weir_bytes_received_total", listener="web") == sent
    assert value(ss, "weir_bytes_sent_total", listener="web") == received


def test_rate_limit_metrics(admin_proxy):
    routes = """
- name: limited
  match: { path_prefix: /l }
  rate_limit: { name: perkey, algorithm: fixed_window, rate: 5/m, key: "header:X-K", max_keys: 64 }
  cluster: app
- name: rest
  cluster: app
"""
    w, b, aport = admin_proxy(routes=routes, workers=2)
    for i in range(8):
        assert get(w.port, "/l", headers="X-K: one\r\n").status == (200 if i < 5 else 429)
    ss = samples(aport)
    d = lambda res: value(ss, "weir_ratelimit_decisions_total", route="limited", limit="perkey",
                          result=res)
    assert d("allowed") == 5 and d("limited") == 3
    assert value(ss, "weir_ratelimit_keys", route="limited", limit="perkey") == 1
    assert value(ss, "weir_ratelimit_evictions_total", route="limited", limit="perkey") == 0
    # 200 more keys over 64 shards of one key each: each new key either stays or evicts one
    for i in range(200):
        assert get(w.port, "/l", headers="X-K: k%d\r\n" % i).status == 200
    ss = samples(aport)
    keys = value(ss, "weir_ratelimit_keys", route="limited", limit="perkey")
    ev = value(ss, "weir_ratelimit_evictions_total", route="limited", limit="perkey")
    assert keys <= 64 and keys + ev == 201
    assert value(ss, "weir_ratelimit_decisions_total", route="limited", limit="perkey",
                 result="allowed") == 205


def test_cache_metrics(admin_proxy):
    routes = "- name: cached\n  cache: edge\n  cluster: app\n"
    top = "caches:\n  - name: edge\n    memory: 1m\n    eviction: lru\n"
    w, b, aport = admin_proxy(routes=routes, top=top, workers=2,
                              respond={"status": 200, "headers": [("Cache-Control", "max-age=60")],
                                       "body": b"y" * 500})
    for _ in range(4):
        assert get(w.port, "/obj").status == 200
    assert b.count == 1
    r = request(w.port, b"POST /obj HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n")  # unsafe: invalidates, goes through
    assert r.status == 200
    ss = samples(aport)
    c = lambda res: value(ss, "weir_cache_requests_total", cache="edge", policy="lru", result=res)
    assert c("miss") == 1 and c("hit") == 3
    assert value(ss, "weir_cache_objects", cache="edge", policy="lru") == 0  # invalidated by POST
    assert value(ss, "weir_cache_bytes", cache="edge", policy="lru") == 0
    assert get(w.port, "/obj").status == 200
    ss = samples(aport)
    assert value(ss, "weir_cache_objects", cache="edge", policy="lru") == 1
    assert value(ss, "weir_cache_bytes", cache="edge", policy="lru") > 500
    assert value(ss, "weir_cache_requests_total", cache="edge", policy="lru", result="miss") == 2


def test_cache_l2_errors_metric(admin_proxy):
    """A dead L2 store: every L2 GET (a memory miss) and SET (a store) fails
    and is counted; requests are answered from memory and the backend."""
    routes = "- name: cached\n  cache: edge\n  cluster: app\n"
    top = ("caches:\n  - name: edge\n    memory: 1m\n    l2: { store: shared }\n"
           "stores:\n  - { name: shared, redis: 127.0.0.1:%d, timeouts: { command: 200ms } }\n"
           % free_port())
    w, b, aport = admin_proxy(routes=routes, top=top, workers=2,
                              respond={"status": 200, "headers": [("Cache-Control", "max-age=60")],
                                       "body": b"z" * 100})
    for path in ["/a", "/a", "/b"]:
        assert get(w.port, path).status == 200
    assert b.count == 2
    e = lambda ss, op: value(ss, "weir_cache_l2_errors_total", cache="edge", policy="s3fifo", op=op)
    wait_until(lambda: e(samples(aport), "set") == 2, what="two failed L2 SETs")
    ss = samples(aport)
    assert e(ss, "get") == 2 and e(ss, "del") == 0
    assert value(ss, "weir_cache_requests_total", cache="edge", policy="s3fifo", result="hit") == 1


def test_cache_purge_through_the_api(admin_proxy):
    routes = "- name: cached\n  cache: edge\n  cluster: app\n"
    top = "caches:\n  - name: edge\n    memory: 1m\n"

    def respond(req):
        tag = "red" if req.target.startswith("/red") else "blue"
        return {"status": 200, "headers": [("Cache-Control", "max-age=600"), ("Surrogate-Key", tag)],
                "body": req.target.encode()}
    w, b, aport = admin_proxy(routes=routes, top=top, respond=respond)
    for p in ["/red1", "/red2", "/blue1", "/blue2"]:
        assert get(w.port, p).status == 200
    assert b.count == 4
    url = "http://127.0.0.1:%d/api/v1/caches/edge/purge" % aport
    r = requests.post(url, json={"url": "weir.test/blue1"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"cache": "edge", "purged": 1, "l2": "none"}
    r = requests.post(url, json={"tag": "red"}, timeout=10)
    assert r.json()["purged"] == 2
    for p in ["/red1", "/red2", "/blue1", "/blue2"]:
        assert get(w.port, p).status == 200
    assert b.count == 4 + 3  # blue2 was still cached
    assert requests.post(url, json={"all": True}, timeout=10).json()["purged"] == 4
    assert requests.post(url.replace("/edge/", "/nope/"), json={"all": True},
                         timeout=10).status_code == 404
    for body in [{"url": ""}, {"all": False}, {"url": "a", "tag": "b"}, {"colour": "x"}, []]:
        assert requests.post(url, json=body, timeout=10).status_code == 400, body
    assert requests.get(url, timeout=10).status_code == 405

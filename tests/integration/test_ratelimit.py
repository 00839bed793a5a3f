"""rate_limit: local limits exact across worker threads (counted 200s, 429s
and what reached the backend), the keys (header, cookie, client_ip behind
trusted proxies, identity, lists), on_missing, several limits, the limit
headers on refusals and, when asked, on allowed answers; configuration
errors."""
import os
import subprocess
import threading

import pytest

import requests
from conftest import WEIR_BIN, RawClient, config, free_port, request, wait_port, wait_until
from redis_helpers import RedisProc


def send(w, headers=""):
    return request(w.port, ("GET /x HTTP/1.1\r\nHost: rl.test\r\n%sConnection: close\r\n\r\n"
                            % headers).encode())


def statuses(w, n, headers=""):
    return [send(w, headers).status for _ in range(n)]


@pytest.mark.parametrize("algo,extra", [
    ("token_bucket", ", burst: 100"),
    ("leaky_bucket", ", burst: 100"),
    ("fixed_window", ""),
    ("sliding_window_log", ""),
    ("sliding_window_counter", ""),
])
def test_burst_over_four_workers_lets_exactly_the_limit_through(proxy, algo, extra):
    # 100 a day: nothing refills or rolls over while the test runs
    routes = "- rate_limit: { algorithm: %s, rate: 100/d, key: route%s }\n  cluster: app" % (
        algo, extra)
    w, b = proxy(routes=routes, workers=4)
    results = []
    lock = threading.Lock()

    def client():
        mine = [send(w).status for _ in range(30)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 300
    assert results.count(200) == 100
    assert results.count(429) == 200
    assert b.count == 100


def test_refusal_headers(proxy):
    routes = """
- rate_limit: { algorithm: sliding_window_log, rate: 2/h, key: header:X-Api-Key }
  cluster: app
"""
    w, b = proxy(routes=routes)
    ok = send(w, "X-Api-Key: k1\r\n")
    assert ok.status == 200
    assert not ok.has("RateLimit") and not ok.has("X-RateLimit-Limit")   # off by default
    assert send(w, "X-Api-Key: k1\r\n").status == 200
    r = send(w, "X-Api-Key: k1\r\n")
    assert r.status == 429
    assert r.body == b"rate limit exceeded\n"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("RateLimit-Policy") == '"default";q=2;w=3600'
    assert r.header("Retry-After") in ("3599", "3600")
    assert r.header("RateLimit") in ('"default";r=0;t=3599', '"default";r=0;t=3600')
    assert r.header("X-RateLimit-Limit") == "2"
    assert r.header("X-RateLimit-Remaining") == "0"
    assert r.header("X-RateLimit-Reset") in ("3599", "3600")
    assert b.count == 2
    assert send(w, "X-Api-Key: k2\r\n").status == 200    # another key, another budget


def test_response_headers_and_status(proxy):
    routes = """
- rate_limit: { rate: 3/d, burst: 3, key: route, response_headers: true, status: 503, name: api }
  cluster: app
"""
    w, b = proxy(routes=routes)
    r = send(w)
    assert r.status == 200
    assert r.header("RateLimit-Policy") == '"api";q=3;w=86400'
    assert r.header("X-RateLimit-Limit") == "3"
    assert r.header("X-RateLimit-Remaining") == "2"
    assert r.header("RateLimit").startswith('"api";r=2;t=')
    assert not r.has("Retry-After")
    assert send(w).header("X-RateLimit-Remaining") == "1"
    assert send(w).header("X-RateLimit-Remaining") == "0"
    r = send(w)
    assert r.status == 503
    assert r.has("Retry-After")


@pytest.mark.parametrize("on_missing,expected", [("limit", [200, 200, 429, 429]),
                                                 ("allow", [200, 200, 200, 200])])
def test_missing_key(proxy, on_missing, expected):
    routes = """
- rate_limit: { algorithm: fixed_window, rate: 2/d, key: cookie:sid, on_missing: %s }
  cluster: app
""" % on_missing
    w, b = proxy(routes=routes)
    assert statuses(w, 4) == expected
    # a cookie among others is found; each value has its own budget
    assert statuses(w, 3, "Cookie: a=1; sid=abc; b=2\r\n") == [200, 200, 429]
    assert statuses(w, 1, "Cookie: sid=xyz\r\n") == [200]
    assert statuses(w, 1, "Cookie: sidx=abc\r\n") == expected[3:]   # not the cookie 'sid'


def test_identity_missing_without_auth(proxy):
    routes = """
- rate_limit: { rate: 1/d, key: identity, on_missing: allow }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert statuses(w, 3) == [200, 200, 200]


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies(proxy):
    routes = """
- match: { path: /x }
  rate_limit: { rate: 1/d, key: client_ip, trusted_proxies: [127.0.0.0/8, "::1"] }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert statuses(w, 2, "X-Forwarded-For: 1.2.3.4\r\n") == [200, 429]
    assert statuses(w, 1, "X-Forwarded-For: 5.6.7.8\r\n") == [200]
    # the rightmost address that is not a trusted proxy is the client's
    assert statuses(w, 1, "X-Forwarded-For: 9.9.9.9, 1.2.3.4, 127.0.0.7\r\n") == [429]
    assert statuses(w, 1, "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 4.4.4.4\r\n") == [200]
    # all trusted: the leftmost
    assert statuses(w, 2, "X-Forwarded-For: 127.0.0.9, 127.0.0.8\r\n") == [200, 429]


def test_client_ip_ignores_forwarded_for_without_trusted_proxies(proxy):
    routes = "- rate_limit: { rate: 1/d, key: client_ip }\n  cluster: app"
    w, b = proxy(routes=routes)
    assert statuses(w, 1, "X-Forwarded-For: 1.2.3.4\r\n") == [200]
    assert statuses(w, 1, "X-Forwarded-For: 5.6.7.8\r\n") == [429]


def test_key_list_and_several_limits(proxy):
    routes = """
- rate_limit:
    - { algorithm: sliding_window_counter, rate: 2/d, key: [header:X-A, header:X-B], name: pair }
    - { algorithm: fixed_window, rate: 3/d, key: route, name: all }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert statuses(w, 3, "X-A: 1\r\nX-B: 1\r\n") == [200, 200, 429]
    assert statuses(w, 1, "X-A: 1\r\nX-B: 2\r\n") == [200]
    r = send(w, "X-A: 2\r\nX-B: 2\r\n")                 # 'all' is spent
    assert r.status == 429
    assert r.header("RateLimit-Policy") == '"pair";q=2;w=86400, "all";q=3;w=86400'
    assert r.header("RateLimit").startswith('"all";r=0;')
    assert r.header("X-RateLimit-Limit") == "3"
    assert b.count == 3


def concurrent(w, n):
    out = []
    lock = threading.Lock()

    def one():
        r = send(w).status
        with lock:
            out.append(r)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(out)


def test_leaky_bucket_delay_holds_back_instead_of_refusing(proxy):
    # 1/s without burst: the second request of a burst waits 1 s (within the
    # 1.5 s delay) and goes through; the third would wait 2 s and is refused
    # (as long as the three arrive within half a second of each other)
    routes = """
- rate_limit: { algorithm: leaky_bucket, rate: 1/s, key: route, delay: 1500ms }
  cluster: app
"""
    w, b = proxy(routes=routes)
    assert concurrent(w, 3) == [200, 200, 429]
    assert b.count == 2


def test_leaky_bucket_delayed_request_is_answered_after_a_later_refusal(weir_factory,
                                                                       recording_backend):
    """10/m: one request each 6 s. A goes through, B is held back 6 s, C
    (sent after B) would wait 12 s, more than the 8 s delay, as long as it
    arrives within 4 s of A (margin for a loaded machine): C's refusal comes
    back while B is still held."""
    import select
    routes = """
- rate_limit: { algorithm: leaky_bucket, rate: 10/m, key: route, delay: 8s }
  cluster: app
"""
    b = recording_backend()
    port, aport = free_port(), free_port()
    w = weir_factory(config(port, [b.addr], routes=routes,
                            top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port)
    wait_port(aport)

    def allowed():
        text = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=10).text
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith("weir_ratelimit_decisions_total{") and 'result="allowed"' in l)
    assert send(w).status == 200
    with RawClient(w.port) as held:
        held.send(b"GET /b HTTP/1.1\r\nHost: rl.test\r\nConnection: close\r\n\r\n")
        # B decided (held back) before C is sent: with two workers C could
        # otherwise be decided first and take B's place
        wait_until(lambda: allowed() == 2, what="B's decision")
        assert send(w).status == 429                   # C, sent after B
        assert select.select([held.sock], [], [], 0)[0] == []   # B not answered yet
        assert held.read_response().status == 200
    assert [r.target for r in b.requests] == ["/x", "/b"]


def check(tmp_path, routes):
    path = os.path.join(str(tmp_path), "bad.yaml")
    with open(path, "w") as f:
        f.write(config(free_port(), ["127.0.0.1:9"], routes=routes))
    p = subprocess.run([WEIR_BIN, "check", "-c", path], capture_output=True, text=True)
    return p.returncode, p.stderr


@pytest.mark.parametrize("spec,message", [
    ("{ algorithm: fixed_window }", "'rate'"),
    ("{ rate: 100 }", "bad 'rate'"),
    ("{ rate: 0/s }", "out of range"),
    ("{ rate: 10/w }", "bad 'rate'"),
    ("{ algorithm: fixed_window, rate: 1/s, burst: 5 }", "'burst' applies to token_bucket"),
    ("{ algorithm: sliding_window_log, rate: 20000/s }", "at most 10000"),
    ("{ algorithm: gcra, rate: 1/s }", "unknown algorithm"),
    ("{ algorithm: token_bucket, rate: 1/s, delay: 1s }", "'delay' applies to leaky_bucket only"),
    ("{ algorithm: leaky_bucket, rate: 1/s, delay: 2m }", "'delay'"),
    ("{ rate: 1/s, key: ip }", "unknown rate limit key"),
    ("{ rate: 1/s, key: 'header:' }", "bad name"),
    ("{ rate: 1/s, key: [] }", "empty list"),
    ("{ rate: 1/s, key: route, trusted_proxies: [10.0.0.0/8] }", "needs client_ip"),
    ("{ rate: 1/s, trusted_proxies: [10.0.0.0/33] }", "bad prefix length"),
    ("{ rate: 1/s, trusted_proxies: [10.0.0] }", "bad address"),
    ("{ rate: 1/s, status: 200 }", "'status'"),
    ("{ rate: 1/s, on_missing: deny }", "unknown on_missing"),
    ("{ rate: 1/s, store: shared }", "names store 'shared' which is not defined"),
    ("{ rate: 1/s, on_store_error: allow }", "applies to a limit with a 'store'"),
    ("{ rate: 1/s, store_timeout: 1s }", "applies to a limit with a 'store'"),
    ("[]", "empty list"),
    ("[{ rate: 1/s }, { rate: 2/s, name: limit1 }]", "named 'limit1'"),
])
def test_config_errors(tmp_path, spec, message):
    rc, err = check(tmp_path, "- rate_limit: %s\n  cluster: app" % spec)
    assert rc == 2, err
    assert message in err
    assert "bad.yaml:" in err


# ---- cluster-wide: `store: NAME` ----

@pytest.fixture
def redis_server():
    r = RedisProc(free_port())
    yield r
    r.stop()


def store_weir(weir_factory, backend, redis, limit, workers=1):
    port = free_port()
    stores = "stores:\n  - name: shared\n    redis: %s\n    reconnect: { base: 50ms, max: 200ms }\n" % (
        redis.addr)
    routes = "- name: api\n  rate_limit: %s\n  cluster: app" % limit
    return weir_factory(config(port, [backend.addr], routes=routes, top_extra=stores,
                               workers=workers))


@pytest.mark.parametrize("algo,extra", [
    ("token_bucket", ", burst: 20"),
    ("leaky_bucket", ", burst: 20"),
    ("fixed_window", ""),
    ("sliding_window_log", ""),
    ("sliding_window_counter", ""),
])
def test_store_two_instances_enforce_one_limit(weir_factory, recording_backend, redis_server,
                                               algo, extra):
    b = recording_backend()
    limit = "{ algorithm: %s, rate: 20/d, key: header:X-Api-Key, store: shared%s }" % (algo, extra)
    w1 = store_weir(weir_factory, b, redis_server, limit, workers=2)
    w2 = store_weir(weir_factory, b, redis_server, limit, workers=2)
    got = []
    for i in range(30):
        for w in (w1, w2):
            got.append(request(w.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\r\n"
                                       b"Connection: close\r\n\r\n").status)
    assert got.count(200) == 20
    assert got.count(429) == 40
    assert b.count == 20
    # one round trip per decision: every decision is one EVALSHA; each
    # worker's client loaded the scripts first, so none was sent whole
    assert redis_server.commandstats("evalsha") == 60
    assert redis_server.commandstats("eval") == 0
    keys = redis_server.client.keys("*")
    assert keys == [b"rl:{api/default:k}"]       # hash-tagged


def test_store_leaky_bucket_delay(weir_factory, recording_backend, redis_server):
    b = recording_backend()
    w = store_weir(weir_factory, b, redis_server, "{ algorithm: leaky_bucket, rate: 1/s, "
                   "key: route, delay: 1500ms, store: shared }", workers=2)
    assert concurrent(w, 3) == [200, 200, 429]
    assert b.count == 2


def test_store_script_reloaded_after_flush(weir_factory, recording_backend, redis_server):
    b = recording_backend()
    w = store_weir(weir_factory, b, redis_server, "{ rate: 5/d, key: route, store: shared }")
    assert statuses(w, 2) == [200, 200]
    redis_server.client.script_flush()
    assert statuses(w, 4) == [200, 200, 200, 429]
    assert redis_server.commandstats("eval") == 1   # sent whole once, then EVALSHA again


@pytest.mark.parametrize("mode,expected", [
    ("allow", [200, 200, 200, 200, 200]),
    ("deny", [503, 503, 503, 503, 503]),
    ("local", [200, 200, 200, 429, 429]),     # this instance's share: 6/2 = 3, counted afresh
])
def test_store_killed_mid_test(weir_factory, recording_backend, redis_server, mode, expected):
    b = recording_backend()
    extra = ", instances: 2" if mode == "local" else ""
    limit = "{ algorithm: fixed_window, rate: 6/d, key: route, store: shared, " \
            "on_store_error: %s, store_timeout: 300ms%s }" % (mode, extra)
    w = store_weir(weir_factory, b, redis_server, limit)
    assert statuses(w, 2) == [200, 200]
    redis_server.stop()
    got = [send(w) for _ in range(5)]             # none stuck: each is answered
    assert [r.status for r in got] == expected
    if mode == "deny":
        assert got[0].header("Retry-After") == "1"
    assert b.count == 2 + expected.count(200)


def test_store_unresponsive_times_out(weir_factory, recording_backend, redis_server):
    """A Redis that accepts but does not answer (SIGSTOP): store_timeout decides."""
    import signal
    b = recording_backend()
    limit = "{ rate: 6/d, key: route, store: shared, on_store_error: deny, store_timeout: 200ms }"
    w = store_weir(weir_factory, b, redis_server, limit)
    assert statuses(w, 1) == [200]
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        assert statuses(w, 2) == [503, 503]
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)


def test_store_redis_cluster(weir_factory, recording_backend):
    """Two instances over a real 3-node Redis Cluster: each key's limit is one
    limit, whichever node owns the key's slot."""
    from redis_helpers import Cluster
    cluster = Cluster()
    try:
        b = recording_backend()
        stores = "stores:\n" + cluster.seeds_yaml()
        routes = ("- name: api\n  rate_limit: { algorithm: sliding_window_log, rate: 3/d, "
                  "key: header:X-Api-Key, store: c }\n  cluster: app")
        ws = [weir_factory(config(free_port(), [b.addr], routes=routes, top_extra=stores))
              for _ in range(2)]
        keys = ["key-%d" % i for i in range(8)]
        got = {}
        for k in keys:
            got[k] = [request(ws[i % 2].port, ("GET / HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\n"
                                               "Connection: close\r\n\r\n" % k).encode()).status
                      for i in range(5)]
        assert got == {k: [200, 200, 200, 429, 429] for k in keys}
        owners = {cluster.owner(cluster.slot("rl:{api/default:%s}" % k)).port for k in keys}
        assert len(owners) >= 2                       # the keys live on several nodes
        total = sum(len(n.client().keys("rl:*")) for n in cluster.nodes)
        assert total == len(keys)
    finally:
        cluster.stop()


def test_store_metrics(weir_factory, recording_backend, redis_server):
    """A cluster-wide limit counts its decisions and the store's round trips;
    a store that stops answering counts errors."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families
    b = recording_backend()
    port, aport = free_port(), free_port()
    stores = "stores:\n  - name: shared\n    redis: %s\n    reconnect: { base: 50ms, max: 200ms }\n" % (
        redis_server.addr)
    routes = ("- name: api\n  rate_limit: { algorithm: fixed_window, rate: 5/d, key: route, "
              "store: shared, on_store_error: allow, store_timeout: 200ms }\n  cluster: app")
    w = weir_factory(config(port, [b.addr], routes=routes,
                            top_extra=stores + "admin: { listen: 127.0.0.1:%d }\n" % aport),
                     port=port)
    wait_port(aport)
    got = [send(w).status for _ in range(8)]
    assert got.count(200) == 5 and got.count(429) == 3

    def sample(name, **labels):
        text = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=10).text
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None
    assert sample("weir_ratelimit_decisions_total", route="api", limit="default",
                  result="allowed") == 5
    assert sample("weir_ratelimit_decisions_total", route="api", limit="default",
                  result="limited") == 3
    assert sample("weir_ratelimit_store_seconds_count", route="api", limit="default") == 8
    assert sample("weir_ratelimit_store_errors_total", route="api", limit="default") == 0
    redis_server.stop()
    assert send(w).status == 200  # allow
    assert sample("weir_ratelimit_store_errors_total", route="api", limit="default") == 1
    assert sample("weir_ratelimit_store_seconds_count", route="api", limit="default") == 8

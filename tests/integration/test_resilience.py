"""Resilience: active health checks, outlier ejection, circuit breakers,
retries (conditions, methods, backoff, budget, per-try timeout, deadline),
request limits, panic mode, drain and slow start. Real weir, real backends."""
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import (WEIR_DEMO_BIN, RawClient, cluster_yaml, config, free_port, wait_port,
                      wait_until)


def get(url, **kw):
    kw.setdefault("timeout", 15)
    return requests.get(url, **kw)


def start_demo_on(port, name, tmp_path):
    log = open(os.path.join(str(tmp_path), "demo-%s-%d.log" % (name, port)), "ab")
    proc = subprocess.Popen([WEIR_DEMO_BIN, "-l", "127.0.0.1:%d" % port, "-n", name],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    wait_port(port, proc, what="weir-demo")
    return proc


def stop_proc(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_killed_backend_costs_no_request_and_is_marked_down_then_up(weir_factory, tmp_path):
    ports = [free_port() for _ in range(3)]
    procs = [start_demo_on(p, "b%d" % i, tmp_path) for i, p in enumerate(ports)]
    try:
        port = free_port()
        w = weir_factory(config(port, ["127.0.0.1:%d" % p for p in ports], workers=2, cluster_extra="""
health_check: { path: /health, interval: 200ms, timeout: 100ms, rise: 2, fall: 2 }
"""))
        failures = []
        seen = set()
        stop = threading.Event()

        def load():
            s = requests.Session()
            while not stop.is_set():
                try:
                    r = s.get(w.url + "/", timeout=10)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    seen.add(r.headers.get("X-Backend"))
                except requests.RequestException as e:
                    failures.append(repr(e))

        t = threading.Thread(target=load)
        t.start()
        try:
            wait_until(lambda: len(seen) == 3, what="all backends serving")
            stop_proc(procs[1])
            w.wait_log(r"endpoint 127\.0\.0\.1:%d is DOWN \(2 consecutive checks failed" % ports[1])
            seen.clear()
            wait_until(lambda: len(seen) >= 2, what="traffic after the failure")
            assert "b1" not in seen
            procs[1] = start_demo_on(ports[1], "b1", tmp_path)
            w.wait_log(r"endpoint 127\.0\.0\.1:%d is UP \(2 consecutive checks passed" % ports[1])
            seen.clear()
            wait_until(lambda: "b1" in seen, what="the restarted backend back in rotation")
        finally:
            stop.set()
            t.join(30)
        assert failures == []
    finally:
        for p in procs:
            stop_proc(p)


def test_http_check_expect_status_and_body(weir_factory, recording_backend):
    good = recording_backend({"status": 200, "body": b"ready: yes"})
    bad = recording_backend({"status": 200, "body": b"ready: no"})
    port = free_port()
    w = weir_factory(config(port, [good.addr, bad.addr], cluster_extra="""
health_check: { path: /ready, interval: 100ms, timeout: 100ms, rise: 1, fall: 1, expect_status: 200-299, expect_body: "ready: yes", host: health.local }
"""))
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed, last: expected body text not found"
               % bad.addr.replace(".", r"\."))
    wait_until(lambda: any(r.target == "/ready" and r.header("Host") == "health.local"
                           for r in list(good.requests)), what="a check of the good endpoint")
    before = bad.count
    for _ in range(6):
        assert get(w.url + "/x").status_code == 200
    assert len([r for r in bad.requests[before:] if r.target == "/x"]) == 0


class Checked:
    """A recording backend that answers traffic with 200 and its health
    path with 200 or 503 as `sick` says."""

    def __init__(self, recording_backend, name):
        self.name = name
        self.sick = False
        self.backend = recording_backend(self._respond)
        self.addr = self.backend.addr

    def _respond(self, req):
        if req.target == "/health":
            return {"status": 503 if self.sick else 200}
        return {"status": 200, "body": self.name.encode(), "headers": [("X-Backend", self.name)]}

    def traffic(self):
        return sum(1 for r in list(self.backend.requests) if r.target != "/health")


def test_down_endpoint_gets_no_requests_until_up(weir_factory, recording_backend):
    """Health checks decide where traffic goes: a backend that still answers
    requests but fails its checks gets none of them while DOWN, and its
    share again once UP (counted at the backends, not read from the log)."""
    a = Checked(recording_backend, "a")
    b = Checked(recording_backend, "b")
    port = free_port()
    w = weir_factory(config(port, [a.addr, b.addr], cluster_extra="""
health_check: { path: /health, interval: 1s, timeout: 1s, rise: 1, fall: 1, jitter: 0ms }
"""))
    # (a timeout of a whole second: on a loaded machine a 250 ms check can time out and
    # take a healthy endpoint DOWN for a round)
    assert sorted(get(w.url + "/").headers["X-Backend"] for _ in range(4)) == ["a", "a", "b", "b"]
    a.sick = True
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed" % a.addr.replace(".", r"\."))
    before_a, before_b = a.traffic(), b.traffic()
    for _ in range(10):
        r = get(w.url + "/")
        assert r.status_code == 200 and r.headers["X-Backend"] == "b"
    assert (a.traffic() - before_a, b.traffic() - before_b) == (0, 10)
    a.sick = False
    w.wait_log(r"endpoint %s is UP \(1 consecutive checks passed" % a.addr.replace(".", r"\."))
    before_a, before_b = a.traffic(), b.traffic()
    for _ in range(20):
        assert get(w.url + "/").status_code == 200
    assert (a.traffic() - before_a, b.traffic() - before_b) == (10, 10)


def test_tcp_check_only_connects(weir_factory, recording_backend):
    """type: tcp passes on a connect alone: an endpoint whose HTTP health path
    fails stays UP and serves, no HTTP check request reaches it, and an
    address where nothing listens is DOWN."""
    a = Checked(recording_backend, "a")
    a.sick = True
    dead = "127.0.0.1:%d" % free_port()
    port = free_port()
    w = weir_factory(config(port, [a.addr, dead], cluster_extra="""
health_check: { type: tcp, path: /health, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }
"""))
    w.wait_log(r"endpoint %s is DOWN \(1 consecutive checks failed" % dead.replace(".", r"\."))
    wait_until(lambda: a.backend.connections >= 3, what="tcp checks of the live endpoint")
    for _ in range(6):
        r = get(w.url + "/")
        assert r.status_code == 200 and r.headers["X-Backend"] == "a"
    assert a.backend.requests and all(r.target == "/" for r in a.backend.requests)
    assert "is DOWN" not in w.errlog().replace("%s is DOWN" % dead, "")
    # the same endpoints under an http check: a is DOWN
    port2 = free_port()
    w2 = weir_factory(config(port2, [a.addr, dead], cluster_extra="""
health_check: { path: /health, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }
"""), name="http")
    w2.wait_log(r"endpoint %s is DOWN" % a.addr.replace(".", r"\."))


def test_all_unhealthy_gives_503_with_retry_after_or_panic(weir_factory, recording_backend):
    b = recording_backend({"status": 500})
    port = free_port()
    hc = "health_check: { interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }\n"
    w = weir_factory(config(port, [b.addr], cluster_extra=hc))
    w.wait_log(r"is DOWN")
    r = get(w.url + "/")
    assert r.status_code == 503 and r.headers.get("Retry-After")
    port2 = free_port()
    w2 = weir_factory(config(port2, [b.addr], cluster_extra=hc + "panic: true\n"), name="panic")
    w2.wait_log(r"is DOWN")
    n = len([x for x in b.requests if x.target == "/p"])
    assert get(w2.url + "/p").status_code == 500  # panic: balanced over the down endpoints anyway
    assert len([x for x in b.requests if x.target == "/p"]) == n + 1


def test_breaker_opens_fails_fast_then_half_open_probes_close_it(weir_factory, recording_backend):
    b = recording_backend({"status": 500})
    port = free_port()
    w = weir_factory(config(port, [b.addr], cluster_extra="""
circuit_breaker: { failures: 3, window: 10s, recovery_timeout: 1s, half_open_requests: 2 }
"""))
    for _ in range(3):
        assert get(w.url + "/").status_code == 500
    w.wait_log(r"circuit breaker of %s is now open" % b.addr.replace(".", r"\."))
    reached = b.count
    for _ in range(5):
        assert get(w.url + "/").status_code == 503  # fail fast
    assert b.count == reached  # nothing reached the backend while open
    b.respond = {"status": 200, "body": b"fine"}
    wait_until(lambda: get(w.url + "/").status_code == 200, timeout=10, interval=0.1,
               what="half-open probe")
    w.wait_log(r"is now half-open")
    assert get(w.url + "/").status_code == 200
    w.wait_log(r"circuit breaker of %s is now closed" % b.addr.replace(".", r"\."))
    for _ in range(5):
        assert get(w.url + "/").status_code == 200


def test_breaker_failed_probe_reopens(weir_factory, recording_backend):
    b = recording_backend({"status": 503})
    port = free_port()
    w = weir_factory(config(port, [b.addr], cluster_extra="""
circuit_breaker: { failures: 2, recovery_timeout: 300ms, half_open_requests: 1 }
"""))
    for _ in range(2):
        get(w.url + "/")
    w.wait_log(r"is now open")
    # after the recovery timeout one probe goes through, fails, and reopens it
    wait_until(lambda: get(w.url + "/").status_code == 503 and w.errlog().count("is now open") >= 2,
               timeout=10, interval=0.1, what="a failed probe reopening the breaker")
    assert "is now half-open" in w.errlog()


def test_breaker_scope_cluster_counts_all_endpoints_together(weir_factory, recording_backend):
    """scope: cluster: failures on different endpoints add up in one breaker,
    and once it is open no endpoint gets a request. Per endpoint (the
    default) the same 2 + 1 failures open nothing."""
    a = recording_backend({"status": 500})
    b = recording_backend({"status": 500})
    breaker = "circuit_breaker: { failures: 3, window: 60s, recovery_timeout: 300ms, half_open_requests: 1%s }\n"
    port = free_port()
    w = weir_factory(config(port, [a.addr, b.addr], cluster_extra=breaker % ", scope: cluster"))
    assert [get(w.url + "/").status_code for _ in range(3)] == [500] * 3
    assert (a.count, b.count) == (2, 1)  # round robin: the failures are spread
    w.wait_log(r"circuit breaker of the cluster is now open")
    assert [get(w.url + "/").status_code for _ in range(6)] == [503] * 6
    assert (a.count, b.count) == (2, 1)
    # one probe after the recovery timeout closes it again
    a.respond = b.respond = {"status": 200}
    wait_until(lambda: get(w.url + "/").status_code == 200, interval=0.1, what="the half-open probe")
    w.wait_log(r"circuit breaker of the cluster is now closed")
    assert [get(w.url + "/").status_code for _ in range(4)] == [200] * 4

    a.respond = b.respond = {"status": 500}
    port2 = free_port()
    w2 = weir_factory(config(port2, [a.addr, b.addr], cluster_extra=breaker % ""), name="per-endpoint")
    before = a.count + b.count
    assert [get(w2.url + "/").status_code for _ in range(3)] == [500] * 3
    assert [get(w2.url + "/").status_code for _ in range(2)] == [500] * 2  # 3rd failure of each
    assert a.count + b.count == before + 5
    w2.wait_log(r"circuit breaker of 127\.0\.0\.1:\d+ is now open")
    assert "of the cluster" not in w2.errlog()


def test_breaker_failure_ratio_waits_for_min_requests(weir_factory, recording_backend):
    """failure_ratio 50% with min_requests 6: five failures out of five do
    not open it (too few requests), the sixth does; and with successes in
    the window it opens exactly when half of the requests failed."""
    b = recording_backend(lambda req: {"status": 500 if req.target == "/bad" else 200})
    breaker = "circuit_breaker: { failure_ratio: 50%, min_requests: 6, window: 60s, recovery_timeout: 60s }\n"
    port = free_port()
    w = weir_factory(config(port, [b.addr], cluster_extra=breaker))
    assert [get(w.url + "/bad").status_code for _ in range(5)] == [500] * 5
    assert "is now open" not in w.errlog()
    assert get(w.url + "/bad").status_code == 500  # 6 of 6
    w.wait_log(r"circuit breaker of %s is now open" % b.addr.replace(".", r"\."))
    assert get(w.url + "/good").status_code == 503
    assert b.count == 6

    port2 = free_port()
    w2 = weir_factory(config(port2, [b.addr], cluster_extra=breaker), name="ratio")
    assert [get(w2.url + "/good").status_code for _ in range(4)] == [200] * 4
    assert [get(w2.url + "/bad").status_code for _ in range(3)] == [500] * 3  # 3 of 7: closed
    assert get(w2.url + "/good").status_code == 200
    assert get(w2.url + "/bad").status_code == 500  # 4 of 9: closed
    assert "is now open" not in w2.errlog()
    assert get(w2.url + "/bad").status_code == 500  # 5 of 10: open
    w2.wait_log(r"is now open")
    assert get(w2.url + "/good").status_code == 503
    assert b.count == 6 + 10


def test_outlier_ejection_stops_traffic_to_a_failing_endpoint(weir_factory, recording_backend):
    bad = recording_backend({"status": 502})
    good = recording_backend({"status": 200})
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr], cluster_extra="""
outlier_detection: { consecutive_failures: 2, base_ejection: 30s, max_ejected_percent: 50 }
"""))
    for _ in range(8):
        get(w.url + "/")
    w.wait_log(r"endpoint %s ejected for 30000 ms after 2 consecutive failures" % bad.addr.replace(".", r"\."))
    n = bad.count
    for _ in range(10):
        assert get(w.url + "/").status_code == 200
    assert bad.count == n


def test_outlier_never_ejects_more_than_max_percent(weir_factory, recording_backend):
    a = recording_backend({"status": 500})
    b = recording_backend({"status": 500})
    port = free_port()
    w = weir_factory(config(port, [a.addr, b.addr], cluster_extra="""
outlier_detection: { consecutive_failures: 1, max_ejected_percent: 50 }
"""))
    for _ in range(10):
        get(w.url + "/")
    w.wait_log(r"ejected for")
    w.wait_log(r"is not ejected: 1 of 2 endpoints already are")
    assert w.errlog().count("ejected for") == 1


def test_retry_on_5xx_goes_to_another_endpoint(weir_factory, recording_backend):
    bad = recording_backend({"status": 503})
    good = recording_backend({"status": 200, "body": b"good"})
    port = free_port()
    w = weir_factory(config(port, [bad.addr, good.addr], routes="""
- cluster: app
  retry: { attempts: 2, on: [503], backoff: { base: 1ms, max: 5ms } }
"""))
    for _ in range(10):
        r = get(w.url + "/")
        assert r.status_code == 200 and r.text == "good"
    assert bad.count >= 1  # round robin sent some first attempts there


def test_body_larger_than_buffer_body_is_not_retried(weir_factory, recording_backend):
    a = recording_backend({"status": 503})
    b = recording_backend({"status": 503})
    port = free_port()
    w = weir_factory(config(port, [a.addr, b.addr], routes="""
- cluster: app
  retry: { attempts: 2, on: [503], methods: all, buffer_body: 1k, backoff: { base: 1ms, max: 1ms } }
"""))
    small, large = b"s" * 1024, b"L" * 1025
    r = requests.post(w.url + "/small", data=small, timeout=10)
    assert r.status_code == 503
    posts = [x for x in a.requests + b.requests if x.target == "/small"]
    assert len(posts) == 2 and all(x.body == small for x in posts)  # kept, so tried twice
    r = requests.post(w.url + "/large", data=large, timeout=10)
    assert r.status_code == 503
    posts = [x for x in a.requests + b.requests if x.target == "/large"]
    assert len(posts) == 1 and posts[0].body == large  # streamed, so never retried


def test_hanging_backend_per_try_timeout_then_success_within_deadline(weir_factory, recording_backend):
    hang = recording_backend("hang")
    good = recording_backend({"status": 200, "body": b"ok"})
    port = free_port()
    w = weir_factory(config(port, [hang.addr, good.addr], routes="""
- cluster: app
  retry: { attempts: 3, on: [timeout], per_try_timeout: 300ms }
  timeout: 5s
"""))
    for _ in range(4):
        r = get(w.url + "/")
        assert r.status_code == 200
    assert hang.count >= 1
    w.wait_log(r"no response in time, retrying")


def test_route_deadline_gives_504(weir_factory, recording_backend):
    hang = recording_backend("hang")
    port = free_port()
    w = weir_factory(config(port, [hang.addr], routes="""
- cluster: app
  retry: { attempts: 5, on: [timeout], per_try_timeout: 200ms, backoff: { base: 1ms, max: 1ms } }
  timeout: 700ms
"""))
    assert get(w.url + "/").status_code == 504
    assert 1 <= hang.count <= 4


def test_post_not_retried_unless_configured(weir_factory, recording_backend):
    a = recording_backend({"status": 503})
    b = recording_backend({"status": 503})
    port = free_port()
    w = weir_factory(config(port, [a.addr, b.addr], routes="""
- match: { path_prefix: /all }
  cluster: app
  retry: { attempts: 2, on: [503], methods: all, backoff: { base: 1ms, max: 1ms } }
- cluster: app
  retry: { attempts: 2, on: [503], backoff: { base: 1ms, max: 1ms } }
"""))
    r = requests.post(w.url + "/x", data=b"payload", timeout=10)
    assert r.status_code == 503
    assert a.count + b.count == 1  # not retried: POST is not idempotent
    r = requests.post(w.url + "/all", data=b"payload", timeout=10)
    assert r.status_code == 503
    assert a.count + b.count == 3
    posts = [x for x in a.requests + b.requests if x.target == "/all"]
    assert len(posts) == 2 and all(x.body == b"payload" for x in posts)


class Gated:
    """A backend answering 503 to everything, in waves of two gated phases:
    the first `n` requests of a wave wait for `first`, every later one (a
    retry) for `later`."""

    def __init__(self, recording_backend, n):
        self.n = n
        self._lock = threading.Lock()
        self.backend = recording_backend(self._respond)
        self.new_wave()

    def new_wave(self):
        with self._lock:
            self.first = threading.Event()
            self.later = threading.Event()
            self._seen = 0
            self.base = self.backend.count

    def count(self):
        """Requests the backend received in this wave."""
        return self.backend.count - self.base

    def _respond(self, req):
        with self._lock:
            i = self._seen
            self._seen += 1
            gate = self.first if i < self.n else self.later
        gate.wait(30)
        return {"status": 503}


@pytest.mark.parametrize("budget, min_conc, slots", [
    ("0%", 1, 1),    # only the minimum: one request retries at a time
    ("0%", 3, 3),
    ("50%", 0, 4),   # 8 requests in flight: 50% of them may retry
    ("25%", 1, 2),
])
def test_retry_budget_exact(weir_factory, recording_backend, budget, min_conc, slots):
    """8 requests fail together; exactly `slots` of them may retry (all 4 more
    times each), the others answer 503 at once without a retry. Twice: the
    slots of the first wave are all given back."""
    n, attempts = 8, 5
    g = Gated(recording_backend, n)
    port = free_port()
    # a long backoff: a retry waiting for its timer holds its place in the budget
    w = weir_factory(config(port, [g.backend.addr], routes="""
- cluster: app
  retry: { attempts: %d, on: [503], budget: %s, min_retry_concurrency: %d, backoff: { base: 200ms, max: 200ms } }
""" % (attempts, budget, min_conc)))
    for wave in range(2):
        g.new_wave()
        results = []

        def one():
            results.append(get(w.url + "/").status_code)

        ts = [threading.Thread(target=one) for _ in range(n)]
        for t in ts:
            t.start()
        try:
            wait_until(lambda: g.count() >= n, what="all %d requests at the backend" % n)
            g.first.set()                    # all fail at once
            # each request either answered 503 or sent its first retry (held)
            wait_until(lambda: len(results) + g.count() - n >= n, what="every request decided")
            assert (wave, g.count() - n) == (wave, slots)
            assert results == [503] * (n - slots)
        finally:
            g.first.set()
            g.later.set()
            for t in ts:
                t.join(30)
        assert results == [503] * n
        assert g.count() == n + slots * (attempts - 1)
    w.wait_log(r"retry budget exhausted")


def test_connect_redispatch_takes_no_budget_slot(weir_factory, recording_backend):
    """A retry after a failed connect is outside the budget: while request A,
    redispatched from a dead endpoint, waits at a backend, request B's 503 may
    still use the one retry the budget allows (min_retry_concurrency 1)."""
    release = threading.Event()
    lock = threading.Lock()
    b_seen = []

    def respond(req):
        if req.target == "/a":
            release.wait(30)
            return {"status": 200, "body": b"a"}
        with lock:
            b_seen.append(req.target)
            first = len(b_seen) == 1
        return {"status": 503} if first else {"status": 200, "body": b"b"}

    dead = "127.0.0.1:%d" % free_port()  # nothing listens: connect refused
    g1 = recording_backend(respond)
    g2 = recording_backend(respond)
    port = free_port()
    # one worker, round robin from the first endpoint: A goes to `dead`, is
    # redispatched to g1 and held there; B starts at g2.
    w = weir_factory(config(port, [dead, g1.addr, g2.addr], routes="""
- cluster: app
  retry: { attempts: 3, on: [connect_failure, 503], budget: 0%, min_retry_concurrency: 1, backoff: { base: 1ms, max: 1ms } }
"""))
    result = {}

    def request_a():
        result["a"] = get(w.url + "/a")

    ta = threading.Thread(target=request_a)
    ta.start()
    try:
        wait_until(lambda: g1.count == 1, what="A redispatched to g1")
        w.wait_log(r"connect failed: .*, retrying")
        r = get(w.url + "/b")
        assert (r.status_code, r.text) == (200, "b")
        assert g2.requests[0].target == "/b"  # B's first attempt, answered 503
        assert "retry budget exhausted" not in w.errlog()
    finally:
        release.set()
        ta.join(30)
    assert result["a"].status_code == 200


def test_max_requests_rejects_or_queues(weir_factory, recording_backend):
    # long enough that the three requests overlap even on a loaded machine
    slow = recording_backend({"status": 200, "delay": 3})
    port = free_port()
    w = weir_factory(config(port, [slow.addr], cluster_extra="max_requests: 1\n"))
    results = []

    def one():
        results.append(get(w.url + "/").status_code)

    ts = [threading.Thread(target=one) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(results) == [200, 503, 503]
    slow.respond = {"status": 200, "delay": 0.5}
    port2 = free_port()
    w2 = weir_factory(config(port2, [slow.addr], cluster_extra="""
max_requests: 1
max_pending: 10
queue_timeout: 20s
"""), name="queued")
    results.clear()
    ts = [threading.Thread(target=lambda: results.append(get(w2.url + "/").status_code))
          for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results == [200, 200, 200]


def test_drain_in_flight_finish_new_go_elsewhere(weir_factory, demo_backend):
    a = demo_backend("a")
    b = demo_backend("b")
    port = free_port()
    base = config(port, [a.addr, b.addr])
    w = weir_factory(base)
    out = {}

    def slow():
        s = requests.Session()
        for _ in range(4):  # find a slow request that lands on a
            r = s.get(w.url + "/slow?ms=1500", timeout=10)
            if r.headers.get("X-Backend") == "a":
                out["r"] = r
                return
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)  # let the slow request start
    drained = base.replace("    - %s\n" % a.addr, "    - { address: %s, drain: true }\n" % a.addr)
    assert drained != base
    w.reload(drained)
    for _ in range(10):
        assert get(w.url + "/").headers["X-Backend"] == "b"
    t.join(30)
    assert out["r"].status_code == 200


def test_slow_start_share_grows_over_the_window(weir_factory, demo_backend):
    a = demo_backend("a")
    b = demo_backend("b")
    port = free_port()
    w = weir_factory(config(port, [a.addr], cluster_extra="slow_start: 8s\n"))
    assert get(w.url + "/").headers["X-Backend"] == "a"
    w.reload(config(port, [a.addr, b.addr], cluster_extra="slow_start: 8s\n"))
    s = requests.Session()
    early = [s.get(w.url + "/", timeout=10).headers["X-Backend"] for _ in range(100)]
    time.sleep(8.2)  # let the window pass (a wait for the feature, not a timing assertion)
    late = [s.get(w.url + "/", timeout=10).headers["X-Backend"] for _ in range(100)]
    assert early.count("b") < late.count("b")
    assert 40 <= late.count("b") <= 60  # round robin again once the ramp is over


def test_retry_on_listed_status_only(weir_factory, recording_backend):
    """retry.on lists 503: a 502 is the answer (not retried), a 503 is retried."""
    b = recording_backend({"status": 502})
    port = free_port()
    w = weir_factory(config(port, [b.addr], routes="""
- cluster: app
  retry: { attempts: 3, on: [503], backoff: { base: 1ms, max: 1ms } }
"""))
    assert get(w.url + "/a").status_code == 502
    assert b.count == 1
    b.respond = {"status": 503}
    assert get(w.url + "/b").status_code == 503
    assert b.count == 1 + 3


def test_retry_on_5xx_includes_500(weir_factory, recording_backend):
    """retry.on: [5xx] covers every status from 500 up: 500 itself is retried."""
    b = recording_backend({"status": 500})
    port = free_port()
    w = weir_factory(config(port, [b.addr], routes="""
- cluster: app
  retry: { attempts: 2, on: [5xx], backoff: { base: 1ms, max: 1ms } }
"""))
    assert get(w.url + "/a").status_code == 500
    assert b.count == 2
    b.respond = {"status": 499}
    assert get(w.url + "/b").status_code == 499
    assert b.count == 3


def test_post_on_reused_connection_closed_unanswered_is_sent_again(weir_factory,
                                                                  recording_backend):
    """A pooled connection that the backend closes when the next request
    arrives (its keep-alive ran out at that moment) is a stale connection,
    not a failure of the request: weir sends it again on a fresh connection,
    a POST too, without a retry policy."""
    seen = {}

    def respond(req):
        n = seen.get(req.conn_id, 0)
        seen[req.conn_id] = n + 1
        return {"body": b"ok"} if n == 0 else "close"

    b = recording_backend(respond)
    port = free_port()
    w = weir_factory(config(port, [b.addr]))
    with RawClient(w.port) as c:
        for i in range(3):
            c.send(b"POST /p%d HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 2\r\n\r\nhi" % i)
            r = c.read_response()
            assert r.status == 200 and r.body == b"ok"
    # each POST after the first met a stale pooled connection, then a fresh one
    assert [r.target for r in b.requests] == ["/p0", "/p1", "/p1", "/p2", "/p2"]

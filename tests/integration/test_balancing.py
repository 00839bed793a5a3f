"""Balancing algorithms, observed through which backend answered."""
import collections
import itertools
import threading

import pytest

from conftest import RawClient, config, free_port, get, wait_until


def start(weir_factory, demo_backend, balance, weights=None, cluster_extra="", n=3):
    demos = [demo_backend("b%d" % i) for i in range(n)]
    eps = [(d.addr, weights[i]) if weights else d.addr for i, d in enumerate(demos)]
    port = free_port()
    w = weir_factory(config(port, eps, balance=balance, cluster_extra=cluster_extra, access=False))
    return w, demos


def hits(w, n, path="/", headers_for=None):
    """n GETs on one keep-alive connection; returns Counter of X-Backend."""
    c = collections.Counter()
    with RawClient(w.port) as conn:
        for i in range(n):
            extra = headers_for(i) if headers_for else ""
            conn.send(("GET %s HTTP/1.1\r\nHost: weir.test\r\n%s\r\n" % (path, extra)).encode())
            r = conn.read_response()
            assert r.status == 200, r
            c[r.header("X-Backend")] += 1
    return c


def backend_for(w, headers="", path="/"):
    r = get(w.port, path, headers=headers)
    assert r.status in (200, 404), r  # weir-demo: 404 for paths it does not know
    assert r.header("X-Backend"), r
    return r.header("X-Backend")


def test_round_robin_exactly_even(weir_factory, demo_backend):
    w, demos = start(weir_factory, demo_backend, "round_robin")
    c = hits(w, 300)
    assert c == {"b0": 100, "b1": 100, "b2": 100}


def test_round_robin_across_connections(weir_factory, demo_backend):
    w, demos = start(weir_factory, demo_backend, "round_robin")
    c = collections.Counter(backend_for(w) for _ in range(30))
    assert c == {"b0": 10, "b1": 10, "b2": 10}


def test_weighted_round_robin(weir_factory, demo_backend):
    w, demos = start(weir_factory, demo_backend, "weighted_round_robin", weights=[1, 2, 3])
    c = hits(w, 600)
    for name, share in (("b0", 1 / 6), ("b1", 2 / 6), ("b2", 3 / 6)):
        assert abs(c[name] / 600 - share) <= 0.05, c
    # smooth WRR: never the same backend many times in a row
    seq = []
    with RawClient(w.port) as conn:
        for _ in range(12):
            conn.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            seq.append(conn.read_response().header("X-Backend"))
    runs = max(len(list(g)) for _, g in itertools.groupby(seq))
    assert runs <= 2, seq


class Holding:
    """Recording backends that answer /hold only when released."""

    def __init__(self, recording_backend, n=3, delays=None):
        self.release = threading.Event()
        self.backends = []
        for i in range(n):
            self.backends.append(recording_backend(self._responder("r%d" % i, (delays or {}).get(i, 0))))

    def _responder(self, name, delay):
        def respond(req):
            if req.target == "/hold":
                self.release.wait(20)
            return {"body": name.encode(), "headers": [("X-Backend", name)], "delay": delay}
        return respond

    def holds(self):
        return [sum(1 for r in b.requests if r.target == "/hold") for b in self.backends]


def _hold_requests(w, n):
    results = []

    def one():
        results.append(get(w.port, "/hold").status)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    return threads, results


@pytest.mark.parametrize("balance", ["least_connections", "weighted_least_connections"])
def test_least_connections_avoids_busy(weir_factory, recording_backend, balance):
    h = Holding(recording_backend)
    port = free_port()
    w = weir_factory(config(port, [b.addr for b in h.backends], balance=balance, access=False))
    threads, results = _hold_requests(w, 2)
    try:
        for t in threads:
            t.start()
            # one at a time, so the second sees the first in flight
            wait_until(lambda: sum(h.holds()) == threads.index(t) + 1, what="held request")
        holds = h.holds()
        assert sorted(holds) == [0, 1, 1], holds
        idle = holds.index(0)
        c = hits(w, 30)
        assert c == {"r%d" % idle: 30}, (c, holds)
    finally:
        h.release.set()
        for t in threads:
            t.join(20)
    assert results == [200, 200]
    # all idle again: traffic spreads over all three
    c = hits(w, 30)
    assert len(c) == 3, c


def backend_from(w, source):
    """X-Backend of one GET on a new connection from the loopback address `source`."""
    with RawClient(w.port, source=source) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\n\r\n")
        r = conn.read_response()
    assert r.status == 200, r
    return r.header("X-Backend")


def test_ip_hash_sticks(weir_factory, demo_backend):
    w, demos = start(weir_factory, demo_backend, "ip_hash")
    names = {backend_for(w) for _ in range(30)}
    assert len(names) == 1
    assert len(hits(w, 30)) == 1


def test_ip_hash_each_client_address_sticks_and_addresses_spread(weir_factory, demo_backend):
    """Clients from 24 loopback addresses: each keeps its backend over new
    connections, and the addresses spread over all three backends (a hash of
    anything but the client address would put them all on one)."""
    w, demos = start(weir_factory, demo_backend, "ip_hash")
    sources = ["127.0.0.%d" % i for i in range(2, 26)]
    first = {s: backend_from(w, s) for s in sources}
    for _ in range(3):
        for s in sources:
            assert backend_from(w, s) == first[s], s
    spread = collections.Counter(first.values())
    assert set(spread) == {"b0", "b1", "b2"}, spread


@pytest.mark.parametrize("method", ["ring", "maglev"])
@pytest.mark.parametrize("key", ["header", "cookie", "path"])
def test_consistent_hash(weir_factory, demo_backend, key, method):
    hash_key = {"header": "header:X-User", "cookie": "cookie:session", "path": "path"}[key]
    w, demos = start(weir_factory, demo_backend, "consistent_hash",
                     cluster_extra="hash_key: %s\nhash_method: %s" % (hash_key, method))

    def ask(user):
        if key == "header":
            return backend_for(w, headers="X-User: user-%d\r\n" % user)
        if key == "cookie":
            return backend_for(w, headers="Cookie: theme=dark; session=s%d; x=1\r\n" % user)
        return backend_for(w, path="/users/%d" % user)

    first = {u: ask(u) for u in range(200)}
    spread = collections.Counter(first.values())
    assert set(spread) == {"b0", "b1", "b2"}, spread
    assert min(spread.values()) >= 20, spread  # 200 keys: each backend gets a fair part
    for u in range(0, 200, 7):
        assert ask(u) == first[u]
    # when a backend dies, only its keys move; the others stay put
    dead = "b2"
    demos[2].stop()
    for u in range(0, 200, 3):
        now = ask(u)
        assert now != dead
        if first[u] != dead:
            assert now == first[u], (u, first[u], now)


def test_consistent_hash_other_cookie_names_ignored(weir_factory, demo_backend):
    w, demos = start(weir_factory, demo_backend, "consistent_hash", cluster_extra="hash_key: cookie:session")
    b = backend_for(w, headers="Cookie: session=abc\r\n")
    for other in range(20):
        assert backend_for(w, headers="Cookie: other=%d; session=abc; z=%d\r\n" % (other, other)) == b


@pytest.mark.parametrize("balance", ["random", "power_of_two"])
def test_random_spreads(weir_factory, demo_backend, balance):
    w, demos = start(weir_factory, demo_backend, balance)
    c = hits(w, 300)
    # every backend is drawn; power_of_two then breaks ties between idle
    # backends by response time, so its shares need not be even
    assert set(c) == {"b0", "b1", "b2"}, c
    if balance == "random":
        assert min(c.values()) >= 30, c


def test_least_response_time_prefers_fast(weir_factory, recording_backend):
    h = Holding(recording_backend, delays={0: 0.15})
    port = free_port()
    w = weir_factory(config(port, [b.addr for b in h.backends], balance="least_response_time", access=False))
    c = hits(w, 60)
    # the slow one may be tried (no average yet), then is left alone
    assert c["r0"] <= 3, c
    assert c["r1"] + c["r2"] >= 57, c
    h.release.set()


def test_power_of_two_avoids_busy(weir_factory, recording_backend):
    """With one backend busy, power of two choices (two distinct candidates)
    always has an idle one to prefer: the busy one gets nothing."""
    h = Holding(recording_backend)
    port = free_port()
    w = weir_factory(config(port, [b.addr for b in h.backends], balance="power_of_two", access=False))
    threads, results = _hold_requests(w, 1)
    try:
        threads[0].start()
        wait_until(lambda: sum(h.holds()) == 1, what="held request")
        busy = h.holds().index(1)
        c = hits(w, 20)
        assert c["r%d" % busy] == 0, c
    finally:
        h.release.set()
        threads[0].join(20)

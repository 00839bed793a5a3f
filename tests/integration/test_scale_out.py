"""Scale-out of weir itself (docs/scale-out.md): three weir instances with the
same configuration (each on its own ports) and a real 3-node Redis Cluster on
loopback, sharing one cluster-wide rate limit, the cache's L2 tier and a queue
kept in Redis; one instance gets `kill -9` while producers and consumers run
through all three."""
import json
import os
import subprocess

import pytest

from conftest import free_port, request, wait_until
from redis_helpers import Cluster
from test_queue import BOTO_PYTHON

HERE = os.path.dirname(os.path.abspath(__file__))
SQS_CLIENT = os.path.join(HERE, "sqs_redis_client.py")
LIMIT = 50


def instance_config(http_port, sqs_port, data_dir, cluster, app, origin):
    """One instance's YAML: the same for all three but for ports and data_dir."""
    seeds = ", ".join("127.0.0.1:%d" % n.port for n in cluster.nodes)
    return """\
workers: 2
drain_timeout: 5s
log: { level: info, access: off }
data_dir: %(data)s
stores:
  - { name: shared, cluster: [%(seeds)s], timeouts: { command: 2s } }
caches:
  - name: edge
    memory: 1m
    l2: { store: shared }
listeners:
  - name: web
    listen: 127.0.0.1:%(http)d
    routes:
      - name: limited
        match: { path_prefix: /limited }
        rate_limit: { algorithm: sliding_window_log, rate: %(limit)d/h, key: route, store: shared, on_store_error: deny }
        cluster: app
      - name: cached
        match: { path_prefix: /cached }
        cache: edge
        cluster: origin
  - name: sqs
    listen: 127.0.0.1:%(sqs)d
    protocol: sqs
clusters:
  - { name: app, endpoints: [%(app)s] }
  - { name: origin, endpoints: [%(origin)s] }
queues:
  - name: jobs
    backend: { store: shared }
""" % {"data": data_dir, "seeds": seeds, "http": http_port, "sqs": sqs_port,
       "limit": LIMIT, "app": app.addr, "origin": origin.addr}


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture
def fleet(weir_factory, recording_backend, tmp_path, cluster):
    """Three weir instances over one Redis Cluster: (weirs, sqs ports, app, origin)."""
    app = recording_backend()
    origin = recording_backend({"status": 200, "headers": [("Cache-Control", "max-age=600")],
                                "body": b"cached once"})
    weirs, sqs_ports = [], []
    for i in range(3):
        http, sqs = free_port(), free_port()
        weirs.append(weir_factory(instance_config(http, sqs, str(tmp_path / ("data%d" % i)),
                                                  cluster, app, origin),
                                  port=http, name="weir%d" % i))
        sqs_ports.append(sqs)
    return weirs, sqs_ports, app, origin


def get(port, path):
    return request(port, ("GET %s HTTP/1.1\r\nHost: scale.test\r\nConnection: close\r\n\r\n"
                          % path).encode())


def round_robin(weirs, n, path="/limited"):
    return [get(weirs[i % len(weirs)].port, path).status for i in range(n)]


def keys(cluster, pattern):
    return [k for n in cluster.nodes for k in n.client().keys(pattern)]


def test_cluster_wide_limit_exact_across_three(fleet, cluster):
    weirs, _, app, _ = fleet
    got = round_robin(weirs, 80)
    assert got.count(200) == LIMIT and got.count(429) == 80 - LIMIT, got
    assert app.count == LIMIT
    assert len(keys(cluster, "rl:*")) == 1     # one limit, one key, whichever node owns it


def test_cache_l2_shared_by_three(fleet, cluster):
    weirs, _, _, origin = fleet
    a, b, c = weirs
    r = get(a.port, "/cached/obj")
    assert r.status == 200 and r.body == b"cached once"
    assert "fwd=uri-miss" in r.header("Cache-Status")
    wait_until(lambda: len(keys(cluster, "weir:cache:edge:*")) == 1, what="the L2 copy")
    for w in (b, c):
        r = get(w.port, "/cached/obj")
        assert r.status == 200 and r.body == b"cached once"
        assert r.header("Cache-Status").startswith("weir; hit; detail=l2"), r.header("Cache-Status")
    assert origin.count == 1


def sqs_run(port, scenario, *args):
    cmd = [BOTO_PYTHON, SQS_CLIENT, "http://127.0.0.1:%d" % port, scenario] + [str(a) for a in args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def sqs_clients():
    """start(port, scenario, *args) -> a running boto3 client; killed at
    teardown if still running (a failed test leaves none behind)."""
    started = []

    def start(port, scenario, *args):
        p = sqs_run(port, scenario, *args)
        started.append(p)
        return p
    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def sqs_result(p, timeout=600):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, "client failed:\n%s\n%s" % (out, err)
    return json.loads(out.strip().splitlines()[-1])


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.mark.skipif(BOTO_PYTHON is None, reason="no python3 with boto3 on PATH")
def test_queue_through_three_with_one_killed(fleet, cluster, tmp_path, sqs_clients):
    """Producers and consumers through all three instances; the third gets
    kill -9 mid-run. At-least-once: every acknowledged send is received and
    its deletion done; a message is received again only when a receive of it
    through the killed instance had no acknowledged delete; the rate limit
    counted the killed instance's requests and lets no extra one through."""
    weirs, sqs_ports, app, _ = fleet
    n = 200
    before = round_robin(weirs, 30)                # within the limit: all allowed
    assert before == [200] * 30
    stop = str(tmp_path / "stop")
    progress = [str(tmp_path / ("acked%d" % i)) for i in range(3)]
    producers = [sqs_clients(p, "produce", "jobs", n, "w%d" % i, progress[i])
                 for i, p in enumerate(sqs_ports)]
    took = [str(tmp_path / ("took%d" % i)) for i in range(3)]
    consumers = [sqs_clients(p, "consume_until", "jobs", 2, 10, stop, took[i])
                 for i, p in enumerate(sqs_ports)]
    victim = weirs[2]
    wait_until(lambda: len(lines(progress[2])) >= n // 3 and lines(took[2]), timeout=300,
               what="a third of the victim's sends acknowledged, and a receive through it")
    victim.kill()                                   # SIGKILL
    assert victim.proc.returncode == -9
    produced = [sqs_result(p) for p in producers]
    # the consumers go on until the queue is empty: what the killed instance
    # had handed out unacknowledged is visible again after its 10 s timeout
    empty = {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
             "ApproximateNumberOfMessagesDelayed": 0}
    wait_until(lambda: sqs_result(sqs_run(sqs_ports[0], "count", "jobs")) == empty,
               timeout=120, interval=0.5, what="the queue empty")
    open(stop, "w").close()
    consumed = [sqs_result(p) for p in consumers]

    attempted = {b for r in produced for b in r["attempted"]}
    acked = {b for r in produced for b in r["acked"]}
    assert not produced[0]["error"] and not produced[1]["error"], produced[:2]
    assert len(acked) >= 2 * n + n // 3
    assert not consumed[0]["errors"] and not consumed[1]["errors"], consumed[:2]
    receives = [(b, ok, i) for i, r in enumerate(consumed) for b, ok in r["receives"]]
    received = {b for b, _, _ in receives}
    assert acked <= received, "lost: %s" % sorted(acked - received)[:20]  # no loss
    assert received <= attempted                    # nothing invented
    # a delete not acknowledged happens only through the killed instance
    lost_deletes = [(b, i) for b, ok, i in receives if not ok]
    assert all(i == 2 for _, i in lost_deletes), lost_deletes
    # redelivered only after a receive through the killed instance whose delete
    # was not acknowledged (at-least-once); every other message exactly once
    counts = {}
    for b, _, _ in receives:
        counts[b] = counts.get(b, 0) + 1
    duplicates = {b for b, k in counts.items() if k > 1}
    assert duplicates <= {b for b, _ in lost_deletes}, duplicates
    print("scale-out queue: %d attempted, %d acknowledged, %d received, %d received twice, "
          "%d deletes unacknowledged (killed instance)"
          % (len(attempted), len(acked), len(received), len(duplicates), len(lost_deletes)))
    # nothing left in the queue, and it is one stream in one slot
    stream = keys(cluster, "{weir:q:jobs}:s")
    assert len(stream) == 1
    owner = cluster.owner(cluster.slot("{weir:q:jobs}:s"))
    assert owner.client().xlen("{weir:q:jobs}:s") == 0
    assert sqs_result(sqs_run(sqs_ports[1], "count", "jobs")) == empty
    # the limit: 30 counted before the kill (10 by the killed instance), only
    # the rest of LIMIT allowed through the two left
    after = round_robin(weirs[:2], 40)
    assert after.count(200) == LIMIT - 30 and after.count(429) == 40 - (LIMIT - 30), after
    assert app.count == LIMIT

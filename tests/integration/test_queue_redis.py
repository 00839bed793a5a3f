"""Queues kept in Redis (`backend: { store: NAME }`, src/queue/qredis.c):
boto3 through sqs_redis_client.py (the first python3 on PATH, as
test_queue.py does) against weir instances sharing a real redis-server, or
a 3-node Redis Cluster."""
import json
import os
import subprocess

import pytest

from conftest import free_port, wait_until
from test_queue import BOTO_PYTHON
from redis_helpers import Cluster, RedisServer

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "sqs_redis_client.py")
pytestmark = pytest.mark.skipif(BOTO_PYTHON is None, reason="no python3 with boto3 on PATH")

QUEUES = (
    "  - name: jobs\n"
    "    backend: { store: shared }\n"
    "  - name: vis\n"
    "    backend: { store: shared }\n"
    "  - name: poison\n"
    "    backend: { store: shared }\n"
    "    dead_letter: { queue: poison-dlq, max_receives: 2 }\n"
    "  - name: poison-dlq\n"
    "    backend: { store: shared }\n"
)


def config(port, data_dir, store):
    return (
        "workers: 2\n"
        "data_dir: %s\n"
        "stores:\n  - { name: shared, %s, timeouts: { command: 2s } }\n"
        "listeners:\n"
        "  - name: sqs\n"
        "    listen: 127.0.0.1:%d\n"
        "    protocol: sqs\n"
        "queues:\n%s" % (data_dir, store, port, QUEUES))


def run(w, scenario, *args, timeout=300, wait=True):
    cmd = [BOTO_PYTHON, CLIENT, "http://127.0.0.1:%d" % w.port, scenario] + [str(a) for a in args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.w, p.scenario = w, scenario
    return finish(p, timeout) if wait else p


def finish(p, timeout=300):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, "scenario %s failed:\n%s\n%s\n--- weir:\n%s" % (
        p.scenario, out, err, p.w.errlog()[-3000:])
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def redis_server():
    s = RedisServer()
    yield s
    s.cleanup()


def start_weirs(weir_factory, tmp_path, store, n):
    return [weir_factory(config(free_port(), str(tmp_path / ("data%d" % i)), store),
                         name="weir%d" % i) for i in range(n)]


def test_send_receive_delete(weir_factory, tmp_path, redis_server):
    w, = start_weirs(weir_factory, tmp_path, "redis: 127.0.0.1:%d" % redis_server.port, 1)
    run(w, "basic", "jobs")
    # the messages were in Redis, under the queue's hash tag
    assert redis_server.client().exists("{weir:q:jobs}:s")


def test_visibility_timeout_redelivery_and_receive_count(weir_factory, tmp_path, redis_server):
    w, = start_weirs(weir_factory, tmp_path, "redis: 127.0.0.1:%d" % redis_server.port, 1)
    run(w, "visibility", "vis")


def test_dead_letter_after_max_receives(weir_factory, tmp_path, redis_server):
    w, = start_weirs(weir_factory, tmp_path, "redis: 127.0.0.1:%d" % redis_server.port, 1)
    run(w, "dead_letter", "poison", "poison-dlq", 2)
    r = redis_server.client()
    assert r.xlen("{weir:q:poison}:s") == 0 and r.xlen("{weir:q:poison-dlq}:s") == 0


def consume_on_two(ws, n):
    """Sends n messages (half through each instance), then consumes them
    through both at once; checks every one completed exactly once."""
    sends = [run(w, "send", "jobs", n // 2, "m%d" % i, wait=False) for i, w in enumerate(ws)]
    sent = [finish(p) for p in sends]
    ids = sent[0]["ids"] + sent[1]["ids"]
    assert len(set(ids)) == n
    consumers = [run(w, "consume", "jobs", 4, wait=False) for w in ws]
    outs = [finish(p) for p in consumers]
    bodies = outs[0]["bodies"] + outs[1]["bodies"]
    assert not outs[0]["errors"] and not outs[1]["errors"], outs
    assert len(bodies) == n, "%d received for %d sent" % (len(bodies), n)
    assert sorted(bodies) == sorted(["m%d-%d" % (i, k) for i in range(2) for k in range(n // 2)])
    assert outs[0]["deleted"] + outs[1]["deleted"] == n
    counts = run(ws[0], "count", "jobs")
    assert counts == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
                      "ApproximateNumberOfMessagesDelayed": 0}, counts


def test_two_instances_complete_every_message_once(weir_factory, tmp_path, redis_server):
    ws = start_weirs(weir_factory, tmp_path, "redis: 127.0.0.1:%d" % redis_server.port, 2)
    consume_on_two(ws, 600)
    assert redis_server.client().xlen("{weir:q:jobs}:s") == 0


def test_store_down_is_service_unavailable(weir_factory, tmp_path, redis_server):
    w, = start_weirs(weir_factory, tmp_path, "redis: 127.0.0.1:%d" % redis_server.port, 1)
    run(w, "send", "jobs", 1, "before")
    redis_server.stop()
    run(w, "unavailable", "jobs")
    redis_server.start()  # empty (the test's Redis keeps nothing): only what is sent now counts
    cmd = [BOTO_PYTHON, CLIENT, "http://127.0.0.1:%d" % w.port, "send", "jobs", "1", "after"]
    wait_until(lambda: subprocess.run(cmd, capture_output=True).returncode == 0, timeout=60,
               interval=0.5, what="sends working again")
    # each worker has its own connection and reconnects on its own backoff:
    # the count may land on one that has not yet
    count = [BOTO_PYTHON, CLIENT, "http://127.0.0.1:%d" % w.port, "count", "jobs"]
    answers = []

    def counted():
        p = subprocess.run(count, capture_output=True, text=True)
        if p.returncode == 0:
            answers.append(json.loads(p.stdout.strip().splitlines()[-1]))
        return len(answers) >= 3  # on both workers, most likely
    wait_until(counted, timeout=60, interval=0.2, what="counts working again")
    assert all(a["ApproximateNumberOfMessages"] == 1 for a in answers), answers


# ---- a 3-node Redis Cluster ----------------------------------------------------------


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()


def test_cluster_two_instances_and_dead_letters(weir_factory, tmp_path, cluster):
    seeds = "cluster: [%s]" % ", ".join("127.0.0.1:%d" % n.port for n in cluster.nodes)
    # the dead letters cross hash slots (two scripts, see qredis.c)
    assert cluster.slot("{weir:q:poison}:s") != cluster.slot("{weir:q:poison-dlq}:s")
    ws = start_weirs(weir_factory, tmp_path, seeds, 2)
    run(ws[0], "basic", "jobs")
    run(ws[1], "dead_letter", "poison", "poison-dlq", 2)
    consume_on_two(ws, 200)

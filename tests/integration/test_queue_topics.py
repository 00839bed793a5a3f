"""Topics: publish once (the `publish` route target or the SQS listener's
Publish action), fan out to subscribed queues through filters, and push
subscriptions that POST each message to a cluster with retries and a
dead-letter queue. Consumers read with boto3 (see test_queue.py)."""
import json
import threading
import types

import pytest
import requests

from conftest import IO_TIMEOUT, RecordingBackend, free_port, wait_port, wait_until
from test_queue import BOTO_PYTHON, pytestmark, run  # noqa: F401

FANOUT_TOPICS = (
    "topics:\n"
    "  - name: orders\n"
    "    subscriptions:\n"
    "      - queue: all\n"
    "      - queue: big\n"
    "        filter:\n"
    "          amount: { numeric: ['>=', 100] }\n"
    "          kind: [order, refund]\n"
    "      - queue: eu\n"
    "        filter: { region: eu, vip: { exists: false } }\n"
)


def topic_config(data, http_port, sqs_port, queues, topics, clusters=None, admin_port=None):
    return (
        "%s"
        "workers: 2\n"
        "data_dir: %s\n"
        "listeners:\n"
        "  - name: web\n"
        "    listen: 127.0.0.1:%d\n"
        "    routes:\n"
        "      - match: { path_prefix: /publish }\n"
        "        publish: orders\n"
        "      - respond: { status: 200, body: ok }\n"
        "  - name: sqs\n"
        "    listen: 127.0.0.1:%d\n"
        "    protocol: sqs\n"
        "clusters:\n%s"
        "queues:\n%s%s" % ("admin: { listen: 127.0.0.1:%d }\n" % admin_port if admin_port else "",
                           data, http_port, sqs_port,
                           clusters or "  - name: unused\n    endpoints: [127.0.0.1:9]\n",
                           "".join("  - name: %s\n" % q for q in queues), topics))


def sqs_publish(port, body, attrs=None, topic="orders"):
    """AmazonSQS.Publish on the SQS listener; returns (status, JSON)."""
    req = {"TopicName": topic, "Message": body}
    if attrs:
        req["MessageAttributes"] = attrs
    r = requests.post("http://127.0.0.1:%d/" % port, data=json.dumps(req), timeout=IO_TIMEOUT,
                      headers={"X-Amz-Target": "AmazonSQS.Publish",
                               "Content-Type": "application/x-amz-json-1.0"})
    return r.status_code, r.json()


def http_publish(port, body, headers=None):
    r = requests.post("http://127.0.0.1:%d/publish" % port, data=body, headers=headers or {},
                      timeout=IO_TIMEOUT)
    return r.status_code, r.json()


def num(v):
    return {"DataType": "Number", "StringValue": str(v)}


def s(v):
    return {"DataType": "String", "StringValue": v}


def test_fan_out_with_filters(weir_factory, tmp_path):
    http_port, sqs_port = free_port(), free_port()
    w = weir_factory(topic_config(str(tmp_path / "data"), http_port, sqs_port,
                                  ["all", "big", "eu"], FANOUT_TOPICS), port=http_port)
    sq = types.SimpleNamespace(port=sqs_port, errlog=w.errlog)
    ids = []
    for body, attrs in [("m1", {"amount": num(150), "kind": s("order")}),
                        ("m2", {"amount": num(50), "kind": s("order")}),
                        ("m3", {"amount": num(500), "kind": s("other")}),
                        ("m6", {"region": s("us")}),
                        ("m7", {"amount": s("150"), "kind": s("order")})]:  # a String: not numeric
        st, out = sqs_publish(sqs_port, body, attrs)
        assert st == 200 and len(out["MessageId"]) == 36, out
        ids.append(out["MessageId"])
    st, out = http_publish(http_port, b"m4", {"X-Message-Attribute-region": "eu"})
    assert st == 202 and len(out["MessageId"]) == 36, out
    st, out = http_publish(http_port, b"m5", {"X-Message-Attribute-region": "eu",
                                              "X-Message-Attribute-vip": "yes"})
    assert st == 202, out
    ids.append(out["MessageId"])
    assert len(set(ids)) == len(ids)
    assert sorted(run(sq, "drain", "all")["bodies"]) == ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    assert run(sq, "drain", "big")["bodies"] == ["m1"]
    assert run(sq, "drain", "eu")["bodies"] == ["m4"]
    # errors: an unknown topic is SNS's NotFound; a missing message
    st, out = sqs_publish(sqs_port, "x", topic="nope")
    assert st == 404 and out["__type"].endswith("NotFoundException"), out
    st, out = sqs_publish(sqs_port, "")
    assert st == 400, out
    st, out = sqs_publish(sqs_port, "x", {"bad name!": s("v")})
    assert st == 400, out
    assert run(sq, "drain", "all")["bodies"] == []


def test_topic_config_errors(tmp_path):
    import subprocess
    from conftest import WEIR_BIN
    cases = [
        ("      - queue: missing\n", "subscribed queue 'missing' is not defined in 'queues'"),
        ("      - push: { cluster: nope }\n", "cluster 'nope' which is not defined"),
        ("      - queue: all\n        filter: { a: { numeric: ['>', 5, '>', 6] } }\n",
         "bad 'numeric' operator"),
        ("      - queue: all\n        push: { cluster: unused }\n", "either 'queue' or 'push'"),
    ]
    for sub, msg in cases:
        p = tmp_path / "c.yaml"
        p.write_text(topic_config(str(tmp_path / "d"), free_port(), free_port(), ["all"],
                                  "topics:\n  - name: orders\n    subscriptions:\n" + sub))
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and msg in r.stderr + r.stdout, (sub, r.stderr + r.stdout)


def push_topics(attempts, dead_letter="failed", base="10ms", max_="50ms", concurrency=4):
    return (
        "topics:\n"
        "  - name: orders\n"
        "    subscriptions:\n"
        "      - push:\n"
        "          cluster: hooks\n"
        "          path: /hook\n"
        "          attempts: %d\n"
        "          backoff: { base: %s, max: %s }\n"
        "          timeout: 5s\n"
        "          concurrency: %d\n"
        "%s" % (attempts, base, max_, concurrency,
                "          dead_letter: %s\n" % dead_letter if dead_letter else ""))


OUTBOX = "weir.push.orders.0"


def outbox_count(aport):
    r = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=IO_TIMEOUT)
    n = 0
    for line in r.text.splitlines():
        if line.startswith('weir_queue_messages{queue="%s"' % OUTBOX):
            n += float(line.rsplit(" ", 1)[1])
    return n


class Push:
    """weir with a push subscription to a recording backend, and an admin
    listener to watch the outbox."""

    def __init__(self, weir_factory, tmp_path, backend, attempts, **kw):
        self.http_port, self.sqs_port, self.aport = free_port(), free_port(), free_port()
        self.cfg = topic_config(
            str(tmp_path / "data"), self.http_port, self.sqs_port, ["failed"],
            push_topics(attempts, **kw),
            clusters="  - name: hooks\n    endpoints: [%s]\n" % backend.addr,
            admin_port=self.aport)
        self.factory = weir_factory
        self.start()

    def start(self):
        self.w = self.factory(self.cfg, port=self.http_port)
        wait_port(self.aport, self.w.proc, what="weir's admin listener")
        self.sq = types.SimpleNamespace(port=self.sqs_port, errlog=self.w.errlog)

    def wait_outbox_empty(self):
        wait_until(lambda: outbox_count(self.aport) == 0, what="the push outbox to empty")


def scripted(statuses):
    """A backend answer: the statuses in order, then the last one for ever."""
    lock = threading.Lock()
    seen = []

    def respond(req):
        with lock:
            seen.append(req)
            st = statuses[min(len(seen), len(statuses)) - 1]
        return {"status": st, "body": b"x"}
    return respond


def test_push_retries_until_delivered_once(weir_factory, tmp_path):
    b = RecordingBackend(scripted([503, 500, 502, 200]))
    try:
        p = Push(weir_factory, tmp_path, b, attempts=5)
        raw = bytes(range(256))  # binary: stored as base64, POSTed as the bytes
        st, out = http_publish(p.http_port, raw, {"X-Message-Attribute-kind": "order"})
        assert st == 202, out
        b.wait_requests(4)
        p.wait_outbox_empty()
        assert b.count == 4
        ids = {r.header("X-Weir-Message-Id") for r in b.requests}
        assert len(ids) == 1 and len(ids.pop()) == 36
        assert [r.header("X-Weir-Attempt") for r in b.requests] == ["1", "2", "3", "4"]
        for r in b.requests:
            assert r.method == "POST" and r.target == "/hook" and r.body == raw, r
            assert r.header("X-Weir-Topic") == "orders"
            attrs = json.loads(r.header("X-Weir-Message-Attributes"))
            assert attrs["kind"]["StringValue"] == "order", attrs
        assert run(p.sq, "drain", "failed")["bodies"] == []
    finally:
        b.stop()


def test_push_that_always_fails_goes_to_the_dead_letter_queue(weir_factory, tmp_path):
    b = RecordingBackend(scripted([500]))
    try:
        p = Push(weir_factory, tmp_path, b, attempts=3)
        st, out = sqs_publish(p.sqs_port, "poison", {"kind": s("order")})
        assert st == 200, out
        got = run(p.sq, "receive_attrs", "failed")
        assert got["body"] == "poison", got
        assert got["attrs"]["weir.push.failure"] == "HTTP 500", got
        assert got["attrs"]["weir.push.attempts"] == "3", got
        assert got["attrs"]["weir.topic"] == "orders" and got["attrs"]["kind"] == "order", got
        p.wait_outbox_empty()
        assert b.count == 3
    finally:
        b.stop()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_pending_pushes_survive_a_restart(weir_factory, tmp_path, how):
    """Pushes still failing when weir stops (gracefully, or killed at once)
    are delivered by the next weir on the same data_dir."""
    b = RecordingBackend(scripted([503]))
    try:
        p = Push(weir_factory, tmp_path, b, attempts=100, base="50ms", max_="100ms")
        for body in ("p1", "p2"):
            st, out = sqs_publish(p.sqs_port, body)
            assert st == 200, out
        wait_until(lambda: {r.body for r in b.requests} == {b"p1", b"p2"},
                   what="both messages tried")
        if how == "sigterm":
            assert p.w.stop() == 0
        else:
            p.w.kill()
        b.respond = {"status": 204}
        before = b.count
        p.start()
        p.wait_outbox_empty()
        delivered = b.requests[before:]
        assert {r.body for r in delivered} == {b"p1", b"p2"}, delivered
    finally:
        b.stop()


def test_push_concurrency_is_bounded(weir_factory, tmp_path):
    """concurrency: 2 -- never more than two POSTs of the subscription at
    once, however many messages wait."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    release = threading.Event()

    def respond(req):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        release.wait(IO_TIMEOUT)
        with lock:
            state["now"] -= 1
        return {"status": 200}

    b = RecordingBackend(respond)
    try:
        p = Push(weir_factory, tmp_path, b, attempts=3, concurrency=2)
        for i in range(6):
            st, out = sqs_publish(p.sqs_port, "c%d" % i)
            assert st == 200, out
        wait_until(lambda: state["max"] >= 2, what="two deliveries started")
        release.set()
        p.wait_outbox_empty()
        assert state["max"] == 2, state
        assert sorted(r.body for r in b.requests) == [b"c%d" % i for i in range(6)]
    finally:
        release.set()
        b.stop()

"""Topics: publish once (the `publish` route target or the SQS listener's
Publish action), fan out to subscribed queues through filters, and push
subscriptions that POST each message to a cluster with retries and a
dead-letter queue. Consumers read with boto3 (see test_queue.py)."""
import json
import types

import requests

from conftest import IO_TIMEOUT, free_port
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


def topic_config(data, http_port, sqs_port, queues, topics, clusters=None):
    return (
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
        "queues:\n%s%s" % (data, http_port, sqs_port,
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

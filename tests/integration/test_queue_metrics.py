"""Queue metrics on /metrics: the counters and the per-state gauge, exact
after a known sequence of SQS calls (boto3, see test_queue.py), parsed with
prometheus_client's parser."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import IO_TIMEOUT, free_port
from test_queue import BOTO_PYTHON, pytestmark, run, sqs_config  # noqa: F401

QUEUES = (
    "  - name: jobs\n"
    "  - name: later\n"
    "    delay: 15m\n"
    "  - name: dead\n"
    "  - name: src\n"
    "    dead_letter: { queue: dead, max_receives: 1 }\n"
)


def scrape(aport):
    r = requests.get("http://127.0.0.1:%d/metrics" % aport, timeout=IO_TIMEOUT)
    assert r.status_code == 200, r.text
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))))


def test_queue_counters_and_gauges_exact(weir_factory, tmp_path):
    port, aport = free_port(), free_port()
    w = weir_factory(sqs_config(port, str(tmp_path / "data"), QUEUES,
                                "admin: { listen: 127.0.0.1:%d }\n" % aport))
    run(w, "send", "jobs", 5, "a")                 # 5 sent
    run(w, "send_batch", "jobs", 3, "b")           # 3 more in one batch
    run(w, "receive_delete", "jobs", 2)            # 2 received and deleted
    run(w, "receive_keep", "jobs", 3, 300)         # 3 received, left in flight
    run(w, "send", "later", 4, "d")                # the queue's 15m delay applies
    run(w, "dead_letter_one", "src", "poison")     # src: sent 1, received 1, moved 1
    m = scrape(aport)
    assert value(m, "weir_queue_sent_total", queue="jobs") == 8
    assert value(m, "weir_queue_received_total", queue="jobs") == 5
    assert value(m, "weir_queue_deleted_total", queue="jobs") == 2
    assert value(m, "weir_queue_dead_lettered_total", queue="jobs") == 0
    assert value(m, "weir_queue_messages", queue="jobs", state="visible") == 3
    assert value(m, "weir_queue_messages", queue="jobs", state="in_flight") == 3
    assert value(m, "weir_queue_messages", queue="jobs", state="delayed") == 0
    assert value(m, "weir_queue_messages", queue="later", state="delayed") == 4
    assert value(m, "weir_queue_messages", queue="later", state="visible") == 0
    assert value(m, "weir_queue_sent_total", queue="src") == 1
    assert value(m, "weir_queue_received_total", queue="src") == 1
    assert value(m, "weir_queue_dead_lettered_total", queue="src") == 1
    assert value(m, "weir_queue_messages", queue="dead", state="visible") == 1
    assert value(m, "weir_queue_messages", queue="src", state="visible") == 0
    # one observation per SendMessage and per batch, until durable
    assert value(m, "weir_queue_send_seconds_count", queue="jobs") == 6
    assert value(m, "weir_queue_send_seconds_count", queue="later") == 4
    assert value(m, "weir_queue_send_seconds_bucket", queue="jobs", le="+Inf") == 6

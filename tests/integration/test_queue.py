"""Durable queues through the SQS JSON protocol, driven by boto3.

boto3 lives only in the image's own python3 (the first on PATH), so each
scenario runs as sqs_client.py under that interpreter; its assertions are
the SDK's view (exceptions, error codes, digests). The tests here start
and stop weir, kill it with SIGKILL, and look at its log and data_dir.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import IO_TIMEOUT, RawClient, free_port, wait_until, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "sqs_client.py")


def _boto_python():
    """The first python3 on PATH that can import boto3, or None."""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "python3")
        if os.access(p, os.X_OK) and os.path.realpath(p) != os.path.realpath("/usr/bin/python3"):
            if subprocess.run([p, "-c", "import boto3"], capture_output=True).returncode == 0:
                return p
    return None


BOTO_PYTHON = _boto_python()
pytestmark = pytest.mark.skipif(BOTO_PYTHON is None, reason="no python3 with boto3 on PATH")


def sqs_config(port, data_dir, queues="", extra=""):
    return (
        "workers: 2\n"
        "data_dir: %s\n"
        "listeners:\n"
        "  - name: sqs\n"
        "    listen: 127.0.0.1:%d\n"
        "    protocol: sqs\n"
        "%s%s" % (data_dir, port, ("queues:\n" + queues) if queues else "", extra)
    )


def run(w, scenario, *args, timeout=120):
    """Runs a scenario of sqs_client.py against weir w; returns its JSON."""
    p = subprocess.run([BOTO_PYTHON, CLIENT, "http://127.0.0.1:%d" % w.port, scenario]
                       + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "scenario %s failed:\n%s\n%s\n--- weir:\n%s" % (
        scenario, p.stdout, p.stderr, w.errlog()[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture
def sqs(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    return weir_factory(sqs_config(port, data, "  - name: jobs\n")), data


def test_queue_management(sqs):
    w, _ = sqs
    run(w, "queues")


def test_messages_attributes_digests_batches(sqs):
    w, _ = sqs
    run(w, "messages")


def test_bad_input_raises_sdk_exceptions_and_stores_nothing(sqs):
    w, _ = sqs
    run(w, "bad_input")


def test_visibility_delay_purge(sqs):
    w, _ = sqs
    run(w, "visibility")


def test_dead_letter_queue_and_redrive(sqs):
    w, _ = sqs
    run(w, "dead_letters")


def test_dead_letter_from_config_survives_restart(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: work\n    dead_letter: { queue: work-dlq, max_receives: 3 }\n"
                     "  - name: work-dlq\n")
    w = weir_factory(cfg)
    run(w, "dead_letter_one", "work", "bad job")
    w.stop()
    w = weir_factory(cfg)
    assert run(w, "drain", "work")["bodies"] == []
    assert run(w, "drain", "work-dlq")["bodies"] == ["bad job"]


def test_fifo_queues(sqs):
    w, _ = sqs
    run(w, "fifo")


def test_fifo_order_and_deduplication_survive_restart(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs.fifo\n")
    w = weir_factory(cfg)
    first = run(w, "fifo_send", "jobs.fifo", "g", 5, "x")["ids"]
    w.stop()
    w = weir_factory(cfg)
    # the same deduplication ids again: not stored twice, same ids
    assert run(w, "fifo_send", "jobs.fifo", "g", 5, "x")["ids"] == first
    assert run(w, "drain", "jobs.fifo")["bodies"] == ["x-%d" % i for i in range(5)]


def test_long_poll_woken_by_a_send(sqs):
    w, _ = sqs
    out = run(w, "long_poll")
    # the empty poll lasted its second; the woken one returned the message
    assert out["empty_wait"] >= 0.9, out


def test_wrong_protocol_requests(sqs):
    """Requests that are not SQS JSON calls get AWS-style errors."""
    import http.client
    w, _ = sqs
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=IO_TIMEOUT)
    conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "AmazonSQS.NoSuchAction",
                                                   "Content-Type": "application/x-amz-json-1.0"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["__type"].endswith("#UnknownOperationException"), body
    assert r.getheader("x-amzn-query-error") == "InvalidAction;Sender"
    conn.request("POST", "/", body=b"not json", headers={"X-Amz-Target": "AmazonSQS.ListQueues"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["__type"].endswith("#SerializationException"), body
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    assert r.status == 405
    conn.close()


def test_messages_and_api_queues_survive_a_restart(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs\n")
    w = weir_factory(cfg)
    run(w, "send", "jobs", 20, "a")
    deleted = run(w, "receive_delete", "jobs", 5)["bodies"]
    assert len(deleted) == 5
    w.stop()
    w = weir_factory(cfg)
    w.wait_log(r"1 queue\(s\), 15 message\(s\) replayed")
    bodies = run(w, "drain", "jobs")["bodies"]
    assert sorted(bodies) == sorted(set("a-%d" % i for i in range(20)) - set(deleted))


def test_kill_during_acknowledged_sends_loses_nothing(weir_factory, tmp_path):
    """fsync: always; SIGKILL while a client sends; after the restart every
    acknowledged send is there, and no deleted message comes back."""
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs\n    durability: { fsync: always }\n")
    w = weir_factory(cfg)
    run(w, "send", "jobs", 10, "early")
    deleted = run(w, "receive_delete", "jobs", 4)["bodies"]
    acked_path = str(tmp_path / "acked.txt")
    sender = subprocess.Popen([BOTO_PYTHON, CLIENT, "http://127.0.0.1:%d" % port,
                               "send_until_killed", "jobs", acked_path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def acked():
        try:
            with open(acked_path) as f:
                return [l.strip() for l in f if l.strip()]
        except OSError:
            return []

    wait_until(lambda: len(acked()) >= 200, timeout=60, what="200 acknowledged sends")
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait()
    sender.wait(IO_TIMEOUT * 3)
    before = acked()
    w = weir_factory(cfg)
    bodies = run(w, "drain", "jobs")["bodies"]
    got = set(bodies)
    missing = [b for b in before if b not in got]
    assert not missing, "acknowledged but lost: %s" % missing[:10]
    assert len(bodies) == len(got), "a message came back twice"
    assert not got & set(deleted), "deleted messages came back: %s" % (got & set(deleted))
    early = {"early-%d" % i for i in range(10)} - set(deleted)
    assert early <= got


def test_torn_tail_is_cut_and_logged(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs\n")
    w = weir_factory(cfg)
    run(w, "send", "jobs", 3, "t")
    w.stop()
    segs = sorted(f for f in os.listdir(data) if f.endswith(".wlog"))
    last = os.path.join(data, segs[-1])
    size = os.path.getsize(last)
    with open(last, "ab") as f:
        f.write(b"WQL1\x40\x00\x00\x00garbage-half-a-record")
    w = weir_factory(cfg)
    w.wait_log(r"cut off a torn tail of \d+ bytes")
    assert os.path.getsize(last) == size
    assert sorted(run(w, "drain", "jobs")["bodies"]) == ["t-0", "t-1", "t-2"]


def test_flipped_byte_loses_only_that_record(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs\n")
    w = weir_factory(cfg)
    run(w, "send", "jobs", 3, "f")
    w.stop()
    seg = os.path.join(data, sorted(f for f in os.listdir(data) if f.endswith(".wlog"))[-1])
    with open(seg, "r+b") as f:
        data_bytes = f.read()
        at = data_bytes.index(b"f-1")
        f.seek(at)
        f.write(b"F")
    w = weir_factory(cfg)
    w.wait_log(r"skipped \d+ corrupt bytes")
    assert sorted(run(w, "drain", "jobs")["bodies"]) == ["f-0", "f-2"]


def test_segments_are_removed_once_empty(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data, "  - name: jobs\n")
    w = weir_factory(cfg)
    run(w, "send", "jobs", 5, "s")
    run(w, "drain", "jobs")
    w.stop()
    first = sorted(f for f in os.listdir(data) if f.endswith(".wlog"))
    w = weir_factory(cfg)
    run(w, "queues")  # some traffic on another queue
    w.stop()
    # everything in the old segment was deleted: gone once a newer one is active
    now = sorted(f for f in os.listdir(data) if f.endswith(".wlog"))
    assert first[0] not in now, (first, now)


def test_route_target_enqueues_the_request(weir_factory, tmp_path):
    """`queue: jobs` on an http route: 202 with the message id once stored;
    the message carries the request; a consumer gets it through SQS."""
    import base64
    import http.client
    http_port, sqs_port = free_port(), free_port()
    data = str(tmp_path / "data")
    cfg = (
        "data_dir: %s\n"
        "listeners:\n"
        "  - name: web\n"
        "    listen: 127.0.0.1:%d\n"
        "    routes:\n"
        "      - match: { path_prefix: /jobs }\n"
        "        queue: jobs\n"
        "      - respond: { status: 200, body: ok }\n"
        "  - name: sqs\n"
        "    listen: 127.0.0.1:%d\n"
        "    protocol: sqs\n"
        "clusters:\n"
        "  - name: unused\n"
        "    endpoints: [127.0.0.1:9]\n"
        "queues:\n"
        "  - name: jobs\n"
        "    max_message_size: 2k\n" % (data, http_port, sqs_port))
    w = weir_factory(cfg, port=http_port)
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=IO_TIMEOUT)
    ids = []
    conn.request("POST", "/jobs/resize?size=10", body=b'{"image": 7}',
                 headers={"Content-Type": "application/json", "X-Trace": "abc"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 202 and r.getheader("Content-Type") == "application/json", body
    ids.append(body["MessageId"])
    # keep-alive: the next request on the same connection, chunked and binary
    conn.putrequest("PUT", "/jobs/bin")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    raw = bytes(range(0, 256))
    conn.send(b"80\r\n" + raw[:128] + b"\r\n80\r\n" + raw[128:] + b"\r\n0\r\n\r\n")
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 202, body
    ids.append(body["MessageId"])
    conn.request("DELETE", "/jobs/1")  # no body at all
    r = conn.getresponse()
    ids.append(json.loads(r.read())["MessageId"])
    assert r.status == 202
    conn.request("POST", "/jobs/big", body=b"x" * 3000)
    r = conn.getresponse()
    r.read()
    assert r.status == 413
    conn.close()
    w.port = sqs_port
    msgs = run(w, "receive_all", "jobs")["messages"]
    assert [m["id"] for m in msgs] == ids, msgs
    first, second, third = msgs
    assert first["body"] == '{"image": 7}'
    assert first["attrs"]["weir.method"] == "POST"
    assert first["attrs"]["weir.target"] == "/jobs/resize?size=10"
    headers = json.loads(first["attrs"]["weir.headers"])
    assert ["X-Trace", "abc"] in headers and ["Content-Type", "application/json"] in headers
    assert "weir.body-encoding" not in first["attrs"]
    assert second["attrs"]["weir.body-encoding"] == "base64"
    assert base64.b64decode(second["body"]) == raw
    assert not any(h[0].lower() == "transfer-encoding"
                   for h in json.loads(second["attrs"]["weir.headers"]))
    assert third["attrs"]["weir.method"] == "DELETE" and third["body"] == ""


def test_route_target_chunked_body_in_pieces(weir_factory, tmp_path):
    """A chunked body whose first read decodes to no data (the chunk-size
    line alone): the queue target's body starts empty (it was a memcpy to
    NULL, UBSan's report in the sanitizer build)."""
    import time
    http_port = free_port()
    cfg = ("data_dir: %s\n"
           "listeners:\n"
           "  - name: web\n"
           "    listen: 127.0.0.1:%d\n"
           "    routes:\n"
           "      - queue: jobs\n"
           "clusters:\n"
           "  - name: unused\n"
           "    endpoints: [127.0.0.1:9]\n"
           "queues:\n"
           "  - name: jobs\n" % (str(tmp_path / "data"), http_port))
    weir_factory(cfg, port=http_port)
    with RawClient(http_port) as c:
        # pauses only so that each piece is read on its own
        for piece in (b"PUT /x HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: chunked\r\n\r\n",
                      b"5\r\n", b"hello\r\n", b"0\r\n\r\n"):
            c.send(piece)
            time.sleep(0.2)
        r = c.read_response()
        assert r.status == 202, r.body


def test_tags_persist(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    cfg = sqs_config(port, data)
    w = weir_factory(cfg)
    run(w, "tags")
    w.stop()
    w = weir_factory(cfg)
    assert run(w, "list_tags", "tagged") == {"team": "b", "cost": "7"}


def test_reload_adds_queues_and_applies_settings(weir_factory, tmp_path):
    port = free_port()
    data = str(tmp_path / "data")
    w = weir_factory(sqs_config(port, data, "  - name: jobs\n"))
    run(w, "send", "jobs", 3, "r")
    w.reload(sqs_config(port, data, "  - name: jobs\n    visibility_timeout: 45s\n"
                                     "  - name: more\n"))
    assert run(w, "attrs", "jobs")["VisibilityTimeout"] == "45"
    assert run(w, "attrs", "more")["ApproximateNumberOfMessages"] == "0"
    # the messages stayed
    assert sorted(run(w, "drain", "jobs")["bodies"]) == ["r-0", "r-1", "r-2"]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs (needs root and mount), unmounted afterwards."""
    path = tmp_path / "small"
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % p.stderr.strip())
    yield str(path)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_refuses_sends_and_keeps_the_log(weir_factory, small_disk):
    port = free_port()
    data = os.path.join(small_disk, "data")
    cfg = sqs_config(port, data, "  - name: jobs\n")
    w = weir_factory(cfg)
    out = run(w, "fill", "jobs")
    assert out["code"] == "ServiceUnavailable" and out["status"] == 503, out
    assert "disk" in out["message"] and "full" in out["message"], out
    assert out["acked"] > 10, out
    w.stop()
    # the log is whole: every acknowledged message is there after a restart
    w = weir_factory(cfg)
    w.wait_log(r"%d message\(s\) replayed" % out["acked"])
    bodies = run(w, "drain", "jobs", "0")["bodies"]
    assert sorted(b[:6] for b in bodies) == ["%06d" % i for i in range(out["acked"])]


def test_config_needs_data_dir(tmp_path):
    from conftest import WEIR_BIN
    port = free_port()
    path = tmp_path / "w.yaml"
    path.write_text("listeners:\n  - name: sqs\n    listen: 127.0.0.1:%d\n    protocol: sqs\n"
                    % port)
    p = subprocess.run([WEIR_BIN, "check", "-c", str(path)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "missing required key 'data_dir'" in p.stderr, p.stderr
    path.write_text("data_dir: %s\nlisteners:\n  - name: sqs\n    listen: 127.0.0.1:%d\n"
                    "    protocol: sqs\n    routes: [{ cluster: x }]\n" % (tmp_path, port))
    p = subprocess.run([WEIR_BIN, "check", "-c", str(path)], capture_output=True, text=True)
    assert p.returncode == 2 and "protocol sqs" in p.stderr, p.stderr
    path.write_text("data_dir: %s\nlisteners:\n  - name: sqs\n    listen: 127.0.0.1:%d\n"
                    "    protocol: sqs\nqueues:\n  - name: a\n    dead_letter: { queue: b }\n"
                    % (tmp_path, port))
    p = subprocess.run([WEIR_BIN, "check", "-c", str(path)], capture_output=True, text=True)
    assert p.returncode == 2 and "dead-letter queue 'b' is not defined" in p.stderr, p.stderr


def test_data_dir_in_use_refuses_to_start(weir_factory, tmp_path):
    from conftest import WEIR_BIN
    port = free_port()
    data = str(tmp_path / "data")
    weir_factory(sqs_config(port, data, "  - name: jobs\n"))
    other = tmp_path / "other.yaml"
    other.write_text(sqs_config(free_port(), data))
    p = subprocess.run([WEIR_BIN, "-c", str(other)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert p.returncode != 0
    assert "in use by another process" in p.stderr, p.stderr


def test_accept_proxy_on_the_sqs_listener(weir_factory, tmp_path):
    """accept_proxy works on an sqs listener too: a trusted front's PROXY
    header is read off and the SQS call behind it answered; without the
    header the trusted peer's connection is closed."""
    port = free_port()
    cfg = sqs_config(port, str(tmp_path / "data"), "  - name: jobs\n")
    weir_factory(cfg.replace("    protocol: sqs\n", "    protocol: sqs\n    accept_proxy: [127.0.0.1]\n"))
    body = b'{"QueueName": "jobs"}'
    call = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.GetQueueUrl\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def exchange(data):
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except ConnectionResetError:  # closed with our bytes unread
            pass
        s.close()
        return out
    out = exchange(b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 9324\r\n" + call)
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert b"/000000000000/jobs" in out
    assert exchange(call) == b""  # a trusted peer must send the header: POST is not one

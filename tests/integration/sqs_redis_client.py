"""boto3 scenarios for queues kept in Redis (`backend: { store: NAME }`),
for test_queue_redis.py. Same rules as sqs_client.py (whose helpers it
uses): run with the python3 that has boto3,
    python3 sqs_redis_client.py ENDPOINT SCENARIO [ARGS...]
each scenario asserts what SQS would answer and prints one JSON line.
"""
import json
import sys
import threading

from sqs_client import client, expect_error, md5, md5_attrs


def url_of(c, queue):
    return c.get_queue_url(QueueName=queue)["QueueUrl"]


def sc_basic(c, queue):
    """Send (one, a batch), receive with attributes and digests, counts,
    delete (one, a batch with a bad receipt), errors, delays, purge."""
    url = url_of(c, queue)
    attrs = {"colour": {"DataType": "String", "StringValue": "blue"}}
    r = c.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attrs)
    assert r["MD5OfMessageBody"] == md5("hello") and r["MD5OfMessageAttributes"] == md5_attrs(attrs)
    b = c.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "e%d" % i, "MessageBody": "body-%d" % i} for i in range(3)]
        + [{"Id": "bad", "MessageBody": ""}])
    assert sorted(s["Id"] for s in b["Successful"]) == ["e0", "e1", "e2"], b
    assert [f["Id"] for f in b["Failed"]] == ["bad"], b
    ids = {r["MessageId"]} | {s["MessageId"] for s in b["Successful"]}
    assert len(ids) == 4
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "4", a
    got = []
    while len(got) < 4:
        ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5,
                               AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
        got += ms
    assert {m["MessageId"] for m in got} == ids
    for m in got:
        assert m["MD5OfBody"] == md5(m["Body"])
        assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
        if m["Body"] == "hello":
            assert m["MessageAttributes"] == attrs and m["MD5OfMessageAttributes"] == md5_attrs(attrs)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and \
        a["ApproximateNumberOfMessagesNotVisible"] == "4", a
    c.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    d = c.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "m%d" % i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got[1:])]
        + [{"Id": "junk", "ReceiptHandle": "not-a-receipt"}])
    assert len(d["Successful"]) == 3 and d["Failed"][0]["Code"] == "ReceiptHandleIsInvalid", d
    expect_error(c.delete_message, "ReceiptHandleIsInvalid", QueueUrl=url, ReceiptHandle="x")
    expect_error(c.change_message_visibility, "AWS.SimpleQueueService.MessageNotInflight",
                 QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=5)
    # a delayed message is counted as delayed, then a long poll gets it
    c.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessagesDelayed"] == "1", a
    m = c.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"][0]
    assert m["Body"] == "later"
    c.send_message(QueueUrl=url, MessageBody="gone")
    c.purge_queue(QueueUrl=url)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and \
        a["ApproximateNumberOfMessagesNotVisible"] == "0", a
    assert "Messages" not in c.receive_message(QueueUrl=url)
    return {}


def sc_visibility(c, queue):
    """Not deleted: back after the visibility timeout with the receive
    count up; ChangeMessageVisibility to 0 hands it out at once."""
    url = url_of(c, queue)
    c.send_message(QueueUrl=url, MessageBody="again")
    m1 = c.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"][0]
    assert m1["Attributes"]["ApproximateReceiveCount"] == "1", m1
    m2 = c.receive_message(QueueUrl=url, WaitTimeSeconds=10, VisibilityTimeout=600,
                           AttributeNames=["All"])["Messages"][0]
    assert m2["MessageId"] == m1["MessageId"]
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2", m2
    assert m2["Attributes"]["ApproximateFirstReceiveTimestamp"] == \
        m1["Attributes"]["ApproximateFirstReceiveTimestamp"]
    assert "Messages" not in c.receive_message(QueueUrl=url)  # in flight for 600 s
    c.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"],
                                VisibilityTimeout=0)
    m3 = c.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert m3["MessageId"] == m1["MessageId"]
    assert m3["Attributes"]["ApproximateReceiveCount"] == "3", m3
    c.delete_message(QueueUrl=url, ReceiptHandle=m3["ReceiptHandle"])
    return {}


def sc_dead_letter(c, queue, dlq, max_receives):
    """Received max_receives times: the next receive moves it to the
    dead-letter queue (same MessageId and body) instead."""
    url, dead = url_of(c, queue), url_of(c, dlq)
    sent = c.send_message(QueueUrl=url, MessageBody="poison")["MessageId"]
    for i in range(int(max_receives)):
        m = c.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=5,
                              AttributeNames=["All"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(i + 1), m
    assert "Messages" not in c.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    m = c.receive_message(QueueUrl=dead, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"][0]
    assert m["Body"] == "poison" and m["MessageId"] == sent, m
    assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
    c.delete_message(QueueUrl=dead, ReceiptHandle=m["ReceiptHandle"])
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and \
        a["ApproximateNumberOfMessagesNotVisible"] == "0", a
    return {}


def sc_send(c, queue, n, prefix):
    """Sends n messages PREFIX-i in batches of 10; prints their ids."""
    url, ids = url_of(c, queue), []
    for start in range(0, int(n), 10):
        r = c.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "e%d" % i, "MessageBody": "%s-%d" % (prefix, i)}
            for i in range(start, min(start + 10, int(n)))])
        assert not r.get("Failed"), r
        ids += [s["MessageId"] for s in r["Successful"]]
    return {"ids": ids}


def sc_consume(c, queue, threads):
    """Consumers on `threads` threads: receive 10, delete them in a batch,
    until three empty long polls in a row; prints the bodies received and
    how many deletions succeeded."""
    url, lock = url_of(c, queue), threading.Lock()
    out = {"bodies": [], "deleted": 0, "errors": []}

    def run():
        cl, idle = client(sys.argv[1]), 0
        while idle < 3:
            try:
                ms = cl.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        VisibilityTimeout=300).get("Messages", [])
                if not ms:
                    idle += 1
                    continue
                idle = 0
                d = cl.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ms)])
                with lock:
                    out["bodies"] += [m["Body"] for m in ms]
                    out["deleted"] += len(d["Successful"])
                    out["errors"] += d.get("Failed", [])
            except Exception as e:  # reported, the test fails on it
                with lock:
                    out["errors"].append(repr(e))
                return
    ts = [threading.Thread(target=run) for _ in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    return out


def sc_unavailable(c, queue):
    """The store is down: sends, receives and deletes fail with
    ServiceUnavailable (nothing acknowledged)."""
    url = url_of(c, queue)
    expect_error(c.send_message, "ServiceUnavailable", QueueUrl=url, MessageBody="lost?")
    expect_error(c.receive_message, "ServiceUnavailable", QueueUrl=url)
    r = c.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert r["Failed"][0]["Code"] == "ServiceUnavailable" and not r.get("Successful"), r
    return {}


def sc_count(c, queue):
    a = c.get_queue_attributes(QueueUrl=url_of(c, queue), AttributeNames=["All"])["Attributes"]
    return {k: int(a[k]) for k in a if k.startswith("ApproximateNumber")}


def sc_produce(c, queue, n, prefix, progress):
    """Sends PREFIX-0 .. PREFIX-(n-1) one at a time, each body appended to
    the file `progress` once acknowledged; stops at the first failure (its
    weir was killed): prints the bodies attempted and acknowledged."""
    url, out = url_of(c, queue), {"attempted": [], "acked": [], "error": None}
    with open(progress, "a") as f:
        for i in range(int(n)):
            body = "%s-%d" % (prefix, i)
            out["attempted"].append(body)
            try:
                r = c.send_message(QueueUrl=url, MessageBody=body)
            except Exception as e:  # not acknowledged: may or may not be stored
                out["error"] = repr(e)
                break
            assert r["MD5OfMessageBody"] == md5(body), r
            out["acked"].append(body)
            f.write(body + "\n")
            f.flush()
    return out


def sc_consume_until(c, queue, threads, visibility, stop_file, progress):
    """Consumers on `threads` threads: receive up to 10 (VisibilityTimeout
    `visibility`), delete each one, append its body to the file `progress`;
    once `stop_file` exists, end after three empty or failed polls in a row
    (or after 10 minutes whatever happens, should the test be gone). Prints
    every receive as [body, delete acknowledged] and the errors (expected
    only when weir is killed)."""
    import os
    import time
    url, lock = url_of(c, queue), threading.Lock()
    out = {"receives": [], "errors": []}
    f = open(progress, "a")

    def run():
        cl, idle, deadline = client(sys.argv[1]), 0, time.monotonic() + 600
        while not (idle >= 3 and os.path.exists(stop_file)) and time.monotonic() < deadline:
            try:
                ms = cl.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        VisibilityTimeout=int(visibility)).get("Messages", [])
            except Exception as e:
                with lock:
                    out["errors"].append(repr(e))
                idle += 1
                time.sleep(0.2)
                continue
            idle = 0 if ms else idle + 1
            for m in ms:
                try:
                    cl.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    ok = True
                except Exception as e:
                    ok = False
                    with lock:
                        out["errors"].append(repr(e))
                with lock:
                    out["receives"].append([m["Body"], ok])
                    f.write(m["Body"] + "\n")
                    f.flush()
    ts = [threading.Thread(target=run) for _ in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    f.close()
    return out


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}

if __name__ == "__main__":
    endpoint, scenario = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[scenario](client(endpoint), *sys.argv[3:])))

"""boto3 scenarios against weir's SQS listener, for test_queue.py.

Run with the python3 that has boto3 (the first python3 on PATH, not
/usr/bin/python3):  python3 sqs_client.py ENDPOINT SCENARIO [ARGS...]
Each scenario asserts what SQS would answer and prints one JSON line with
what the test needs; any failure is an exception (exit status 1).

The MD5 digests are checked against an implementation written here from
the SQS documentation, independent of weir's.
"""
import base64
import hashlib
import json
import struct
import sys
import threading
import time

import boto3
import botocore.config
from botocore.exceptions import ClientError


def client(endpoint):
    cfg = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=cfg)


def md5_attrs(attrs):
    """MD5OfMessageAttributes as the SQS documentation defines it."""
    m = hashlib.md5()

    def put(b):
        m.update(struct.pack("!I", len(b)))
        m.update(b)

    for name in sorted(attrs):
        a = attrs[name]
        put(name.encode())
        put(a["DataType"].encode())
        if "StringValue" in a:
            m.update(b"\x01")
            put(a["StringValue"].encode())
        else:
            m.update(b"\x02")
            put(a["BinaryValue"])
    return m.hexdigest()


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def expect_error(fn, code, exc=None, **kw):
    """Calls fn(**kw), which must fail with error `code` (and raise the
    modeled exception class `exc` when given)."""
    try:
        fn(**kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, "expected %s, got %s: %s" % (code, got, e.response["Error"])
        if exc is not None:
            assert isinstance(e, exc), "expected %s, got %r" % (exc, type(e))
        return e
    raise AssertionError("expected error %s, the call succeeded" % code)


# ---- scenarios ------------------------------------------------------------------


def sc_queues(c):
    """CreateQueue, GetQueueUrl, ListQueues, attributes, DeleteQueue."""
    url = c.create_queue(QueueName="q-one", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    assert url.endswith("/000000000000/q-one"), url
    # the same again is fine; different attributes are not
    assert c.create_queue(QueueName="q-one", Attributes={"VisibilityTimeout": "5"})["QueueUrl"] == url
    expect_error(c.create_queue, "QueueAlreadyExists", c.exceptions.QueueNameExists,
                 QueueName="q-one", Attributes={"VisibilityTimeout": "7"})
    c.create_queue(QueueName="q-two")
    c.create_queue(QueueName="other")
    assert c.get_queue_url(QueueName="q-one")["QueueUrl"] == url
    urls = c.list_queues(QueueNamePrefix="q-")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["q-one", "q-two"], urls
    page = c.list_queues(MaxResults=1)
    assert len(page["QueueUrls"]) == 1 and "NextToken" in page, page
    rest = c.list_queues(MaxResults=10, NextToken=page["NextToken"])
    assert len(rest["QueueUrls"]) >= 2, rest
    assert "QueueUrls" not in c.list_queues(QueueNamePrefix="zzz")
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["VisibilityTimeout"] == "5" and a["ApproximateNumberOfMessages"] == "0", a
    assert a["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:q-one", a
    c.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3",
                                                     "MessageRetentionPeriod": "120"})
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds",
                                                             "MessageRetentionPeriod"])
    assert a["Attributes"] == {"DelaySeconds": "3", "MessageRetentionPeriod": "120"}, a
    # bad input: the SDK's own exceptions, nothing changed
    expect_error(c.set_queue_attributes, "InvalidAttributeName", c.exceptions.InvalidAttributeName,
                 QueueUrl=url, Attributes={"NoSuchThing": "1"})
    expect_error(c.set_queue_attributes, "InvalidAttributeValue",
                 c.exceptions.InvalidAttributeValue, QueueUrl=url,
                 Attributes={"VisibilityTimeout": "99999"})
    expect_error(c.get_queue_attributes, "InvalidAttributeName", c.exceptions.InvalidAttributeName,
                 QueueUrl=url, AttributeNames=["Bogus"])
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert a == {"VisibilityTimeout": "5"}, a
    expect_error(c.create_queue, "InvalidParameterValue", QueueName="bad name!")
    expect_error(c.create_queue, "InvalidParameterValue", QueueName="x" * 81)
    expect_error(c.get_queue_url, "AWS.SimpleQueueService.NonExistentQueue",
                 c.exceptions.QueueDoesNotExist, QueueName="missing")
    c.delete_queue(QueueUrl=c.get_queue_url(QueueName="q-two")["QueueUrl"])
    expect_error(c.get_queue_url, "AWS.SimpleQueueService.NonExistentQueue",
                 c.exceptions.QueueDoesNotExist, QueueName="q-two")
    expect_error(c.send_message, "AWS.SimpleQueueService.NonExistentQueue",
                 c.exceptions.QueueDoesNotExist, QueueUrl=url.replace("q-one", "q-two"),
                 MessageBody="x")
    return {}


def sc_messages(c):
    """Send with attributes, receive with digests checked, delete."""
    url = c.create_queue(QueueName="msgs", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    attrs = {
        "s": {"DataType": "String", "StringValue": "h\u00e9llo"},
        "n": {"DataType": "Number", "StringValue": "42.5"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe"},
        "custom": {"DataType": "String.json", "StringValue": "{}"},
    }
    body = "caf\u00e9 \U0001f600 body"
    r = c.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    assert r["MD5OfMessageBody"] == md5(body), r
    assert r["MD5OfMessageAttributes"] == md5_attrs(attrs), r
    got = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                            AttributeNames=["All"])["Messages"]
    assert len(got) == 1, got
    m = got[0]
    assert m["Body"] == body and m["MessageId"] == r["MessageId"], m
    assert m["MD5OfBody"] == md5(body), m
    assert m["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\x01\xfe", m
    assert m["MD5OfMessageAttributes"] == md5_attrs(attrs), m
    assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
    assert int(m["Attributes"]["SentTimestamp"]) > 0, m
    # nothing else is visible while it is in flight
    assert "Messages" not in c.receive_message(QueueUrl=url)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessagesNotVisible"] == "1", a
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # deleting again with the same handle is not an error (as in SQS)
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # a filtered receive digests what it returns
    c.send_message(QueueUrl=url, MessageBody="two", MessageAttributes=attrs)
    m = c.receive_message(QueueUrl=url, MessageAttributeNames=["s", "n"])["Messages"][0]
    assert set(m["MessageAttributes"]) == {"s", "n"}, m
    assert m["MD5OfMessageAttributes"] == md5_attrs({k: attrs[k] for k in ("s", "n")}), m
    assert "Attributes" not in m, m
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # batches
    entries = [{"Id": "e%d" % i, "MessageBody": "batch %d" % i} for i in range(10)]
    r = c.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(r["Successful"]) == 10 and not r.get("Failed"), r
    for s in r["Successful"]:
        assert s["MD5OfMessageBody"] == md5("batch %s" % s["Id"][1:]), s
    seen = {}
    while len(seen) < 10:
        ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert ms, "messages missing: %d of 10" % len(seen)
        assert len(ms) <= 10
        for m in ms:
            seen[m["Body"]] = m["ReceiptHandle"]
    assert sorted(seen) == sorted("batch %d" % i for i in range(10))
    d = c.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "d%d" % i, "ReceiptHandle": h} for i, h in enumerate(seen.values())])
    assert len(d["Successful"]) == 10, d
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0", a
    assert a["ApproximateNumberOfMessagesNotVisible"] == "0", a
    return {}


def sc_bad_input(c):
    """Bad input raises the SDK's exceptions and stores nothing."""
    url = c.create_queue(QueueName="strict", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x" * 1025)
    expect_error(c.send_message, "InvalidMessageContents", c.exceptions.InvalidMessageContents,
                 QueueUrl=url, MessageBody="bad \x01 char")
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 MessageAttributes={"AWS.reserved": {"DataType": "String", "StringValue": "v"}})
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 MessageAttributes={"n": {"DataType": "Nope", "StringValue": "1"}})
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 DelaySeconds=901)
    expect_error(c.send_message_batch, "AWS.SimpleQueueService.EmptyBatchRequest",
                 c.exceptions.EmptyBatchRequest, QueueUrl=url, Entries=[])
    expect_error(c.send_message_batch, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                 c.exceptions.TooManyEntriesInBatchRequest, QueueUrl=url,
                 Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    expect_error(c.send_message_batch, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                 c.exceptions.BatchEntryIdsNotDistinct, QueueUrl=url,
                 Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    expect_error(c.send_message_batch, "AWS.SimpleQueueService.InvalidBatchEntryId",
                 c.exceptions.InvalidBatchEntryId, QueueUrl=url,
                 Entries=[{"Id": "no spaces", "MessageBody": "x"}])
    expect_error(c.send_message_batch, "AWS.SimpleQueueService.BatchRequestTooLong",
                 c.exceptions.BatchRequestTooLong, QueueUrl=url,
                 Entries=[{"Id": str(i), "MessageBody": "x" * 600} for i in range(2)])
    # one bad entry of a batch fails alone
    r = c.send_message_batch(QueueUrl=url, Entries=[{"Id": "good", "MessageBody": "ok"},
                                                    {"Id": "bad", "MessageBody": "\x02"}])
    assert [s["Id"] for s in r["Successful"]] == ["good"], r
    assert r["Failed"][0]["Id"] == "bad" and r["Failed"][0]["SenderFault"], r
    expect_error(c.receive_message, "InvalidParameterValue", QueueUrl=url, MaxNumberOfMessages=11)
    expect_error(c.receive_message, "InvalidParameterValue", QueueUrl=url, WaitTimeSeconds=21)
    expect_error(c.delete_message, "ReceiptHandleIsInvalid", c.exceptions.ReceiptHandleIsInvalid,
                 QueueUrl=url, ReceiptHandle="not-a-receipt")
    expect_error(c.change_message_visibility, "ReceiptHandleIsInvalid",
                 c.exceptions.ReceiptHandleIsInvalid, QueueUrl=url, ReceiptHandle="zz",
                 VisibilityTimeout=5)
    # only the good batch entry was stored
    ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in ms] == ["ok"], ms
    # a receipt of a message no longer in flight
    c.change_message_visibility(QueueUrl=url, ReceiptHandle=ms[0]["ReceiptHandle"],
                                VisibilityTimeout=0)
    expect_error(c.change_message_visibility, "AWS.SimpleQueueService.MessageNotInflight",
                 c.exceptions.MessageNotInflight, QueueUrl=url,
                 ReceiptHandle=ms[0]["ReceiptHandle"], VisibilityTimeout=5)
    return {}


def sc_visibility(c):
    """Redelivery after the visibility timeout, ChangeMessageVisibility,
    DelaySeconds, PurgeQueue."""
    url = c.create_queue(QueueName="vis", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    c.send_message(QueueUrl=url, MessageBody="again")
    m1 = c.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    # not acknowledged: back after a second; a long poll picks it up
    m2 = c.receive_message(QueueUrl=url, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"][0]
    assert m2["MessageId"] == m1["MessageId"]
    assert m2["ReceiptHandle"] != m1["ReceiptHandle"]
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2", m2
    assert m2["Attributes"]["ApproximateFirstReceiveTimestamp"] == \
        m1["Attributes"]["ApproximateFirstReceiveTimestamp"]
    # made visible at once
    c.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"],
                                VisibilityTimeout=0)
    m3 = c.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"][0]
    assert m3["MessageId"] == m1["MessageId"]
    r = c.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": m3["ReceiptHandle"], "VisibilityTimeout": 600},
        {"Id": "b", "ReceiptHandle": "bogus", "VisibilityTimeout": 5}])
    assert [s["Id"] for s in r["Successful"]] == ["a"], r
    assert r["Failed"][0]["Code"] == "ReceiptHandleIsInvalid", r
    # a delayed message is counted as delayed, then arrives
    c.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessagesDelayed"] == "1", a
    got = c.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"][0]
    assert got["Body"] == "later"
    c.purge_queue(QueueUrl=url)
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessages"] == "0" and \
        a["ApproximateNumberOfMessagesNotVisible"] == "0", a
    return {}


def sc_long_poll(c):
    """A long poll returns the message a send from another connection
    made, without waiting for its timeout; an empty one returns empty."""
    url = c.create_queue(QueueName="lp")["QueueUrl"]
    t0 = time.time()
    assert "Messages" not in c.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    empty_wait = time.time() - t0
    result = {}

    def consume():
        r = client(sys.argv[1]).receive_message(QueueUrl=url, WaitTimeSeconds=20)
        result["msgs"] = r.get("Messages", [])
        result["at"] = time.time()

    consumers = [threading.Thread(target=consume) for _ in range(1)]
    for t in consumers:
        t.start()
    time.sleep(0.5)  # let the receive park (not a timing assertion)
    sent = time.time()
    c.send_message(QueueUrl=url, MessageBody="wake up")
    for t in consumers:
        t.join(30)
    assert [m["Body"] for m in result["msgs"]] == ["wake up"], result
    return {"empty_wait": empty_wait, "woken_after": result["at"] - sent}


def sc_dead_letters(c):
    """RedrivePolicy moves a message received too often to the dead-letter
    queue; ListDeadLetterSourceQueues; StartMessageMoveTask moves it back."""
    dead = c.create_queue(QueueName="dead")["QueueUrl"]
    arn = c.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"})
    src = c.create_queue(QueueName="src", Attributes={"VisibilityTimeout": "0",
                                                       "RedrivePolicy": policy})["QueueUrl"]
    got = json.loads(c.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])
                     ["Attributes"]["RedrivePolicy"])
    assert got == {"deadLetterTargetArn": arn, "maxReceiveCount": 2}, got
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    sent = c.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes=attrs)
    for i in (1, 2):
        m = c.receive_message(QueueUrl=src, AttributeNames=["All"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(i), m
    # the third receive finds it received twice already: it moves instead
    assert "Messages" not in c.receive_message(QueueUrl=src)
    m = c.receive_message(QueueUrl=dead, MessageAttributeNames=["All"])["Messages"][0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == "poison", m
    assert m["MD5OfMessageAttributes"] == md5_attrs(attrs), m
    c.change_message_visibility(QueueUrl=dead, ReceiptHandle=m["ReceiptHandle"],
                                VisibilityTimeout=0)
    srcs = c.list_dead_letter_source_queues(QueueUrl=dead)["queueUrls"]
    assert srcs == [src], srcs
    expect_error(c.set_queue_attributes, "InvalidAttributeValue",
                 c.exceptions.InvalidAttributeValue, QueueUrl=src, Attributes={
                     "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn + "-missing",
                                                  "maxReceiveCount": 2})})
    expect_error(c.start_message_move_task, "ResourceNotFoundException",
                 c.exceptions.ResourceNotFoundException, SourceArn=arn + "-missing")
    # back where it came from
    c.start_message_move_task(SourceArn=arn)
    assert "Messages" not in c.receive_message(QueueUrl=dead)
    m = c.receive_message(QueueUrl=src, AttributeNames=["All"])["Messages"][0]
    assert m["MessageId"] == sent["MessageId"], m
    assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
    # removing the policy: no more moves
    c.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
    for _ in range(4):
        assert c.receive_message(QueueUrl=src)["Messages"][0]["MessageId"] == sent["MessageId"]
    # a dead-letter queue deleted later: the message is delivered, not lost or stuck
    c.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": policy})
    c.delete_queue(QueueUrl=dead)
    # (the receive that finds the move impossible may come back empty)
    got = [m["MessageId"] for _ in range(4)
           for m in c.receive_message(QueueUrl=src).get("Messages", [])]
    assert len(got) >= 3 and set(got) == {sent["MessageId"]}, got
    return {}


def sc_dead_letter_one(c, queue, body):
    """Sends body to queue and receives it until it is dead-lettered."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    c.send_message(QueueUrl=url, MessageBody=body)
    for _ in range(20):
        if "Messages" not in c.receive_message(QueueUrl=url, VisibilityTimeout=0):
            return {}
    raise AssertionError("never dead-lettered")


def sc_fifo(c):
    """FIFO queues: group order, one in-flight batch per group,
    deduplication, SequenceNumber, the parameters FIFO needs."""
    expect_error(c.create_queue, "InvalidParameterValue", QueueName="nofifo.fifo")
    expect_error(c.create_queue, "InvalidParameterValue", QueueName="plain",
                 Attributes={"FifoQueue": "true"})
    expect_error(c.create_queue, "InvalidAttributeName", c.exceptions.InvalidAttributeName,
                 QueueName="std", Attributes={"ContentBasedDeduplication": "true"})
    url = c.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    a = c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["FifoQueue"] == "true" and a["ContentBasedDeduplication"] == "false", a
    expect_error(c.send_message, "MissingParameter", QueueUrl=url, MessageBody="x",
                 MessageDeduplicationId="d")
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 MessageGroupId="g")
    expect_error(c.send_message, "InvalidParameterValue", QueueUrl=url, MessageBody="x",
                 MessageGroupId="g", MessageDeduplicationId="d", DelaySeconds=1)
    seqs = []
    ids = {}
    for group, body in [("g1", "a1"), ("g2", "b1"), ("g1", "a2"), ("g2", "b2"), ("g1", "a3")]:
        r = c.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group,
                           MessageDeduplicationId="dd-" + body)
        seqs.append(int(r["SequenceNumber"]))
        ids[body] = r["MessageId"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5, seqs
    # a duplicate within five minutes: the first one's id, stored once
    r = c.send_message(QueueUrl=url, MessageBody="a1 again", MessageGroupId="g1",
                       MessageDeduplicationId="dd-a1")
    assert r["MessageId"] == ids["a1"] and int(r["SequenceNumber"]) == seqs[0], r

    def recv(n=1, vis=None):
        kw = {"VisibilityTimeout": vis} if vis is not None else {}
        return c.receive_message(QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"],
                                 **kw).get("Messages", [])

    m_a1 = recv()[0]
    assert m_a1["Body"] == "a1", m_a1
    at = m_a1["Attributes"]
    assert at["MessageGroupId"] == "g1" and at["MessageDeduplicationId"] == "dd-a1", at
    assert int(at["SequenceNumber"]) == seqs[0], at
    # g1 is in flight: the next receive serves g2 only
    m_b1 = recv(vis=1)[0]
    assert m_b1["Body"] == "b1", m_b1
    assert recv(10) == []  # both groups have a message in flight
    c.delete_message(QueueUrl=url, ReceiptHandle=m_a1["ReceiptHandle"])
    got = recv(10)
    assert [m["Body"] for m in got] == ["a2", "a3"], [m["Body"] for m in got]
    # b1 was not deleted: after its visibility timeout it comes back before b2
    m = c.receive_message(QueueUrl=url, WaitTimeSeconds=10, MaxNumberOfMessages=10)["Messages"]
    assert [x["Body"] for x in m][:1] == ["b1"], m
    # content-based deduplication
    url2 = c.create_queue(QueueName="cbd.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    r1 = c.send_message(QueueUrl=url2, MessageBody="same", MessageGroupId="g")
    r2 = c.send_message(QueueUrl=url2, MessageBody="same", MessageGroupId="g")
    r3 = c.send_message(QueueUrl=url2, MessageBody="other", MessageGroupId="g")
    assert r1["MessageId"] == r2["MessageId"] != r3["MessageId"]
    got = c.receive_message(QueueUrl=url2, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["same", "other"], got
    return {}


def sc_fifo_send(c, queue, group, n, prefix):
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    ids = [c.send_message(QueueUrl=url, MessageBody="%s-%d" % (prefix, i), MessageGroupId=group,
                          MessageDeduplicationId="%s-%d" % (prefix, i))["MessageId"]
           for i in range(int(n))]
    return {"ids": ids}


def sc_receive_all(c, queue):
    """Receives and deletes everything; prints bodies, attributes and ids."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    out = []
    while True:
        ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                               MessageAttributeNames=["All"]).get("Messages", [])
        if not ms:
            return {"messages": out}
        for m in ms:
            attrs = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            assert m["MD5OfMessageAttributes"] == md5_attrs(m["MessageAttributes"]), m
            out.append({"id": m["MessageId"], "body": m["Body"], "attrs": attrs})
            c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def sc_attrs(c, queue):
    """Prints the queue's attributes (QueueDoesNotExist propagates)."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    return c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def sc_fill(c, queue):
    """Sends 4 KB messages until weir refuses one; prints how many were
    acknowledged and the error."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    n = 0
    while n < 100000:
        try:
            c.send_message(QueueUrl=url, MessageBody="%06d" % n + "x" * 4090)
        except ClientError as e:
            return {"acked": n, "code": e.response["Error"]["Code"],
                    "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                    "message": e.response["Error"]["Message"]}
        n += 1
    raise AssertionError("the disk never filled")


def sc_tags(c):
    url = c.create_queue(QueueName="tagged", tags={"team": "a", "env": "prod"})["QueueUrl"]
    assert c.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "prod"}
    c.tag_queue(QueueUrl=url, Tags={"team": "b", "cost": "7"})
    c.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert c.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "b", "cost": "7"}
    expect_error(c.tag_queue, "InvalidParameterValue", QueueUrl=url,
                 Tags={"k%d" % i: "v" for i in range(49)})
    expect_error(c.tag_queue, "InvalidParameterValue", QueueUrl=url, Tags={"x" * 129: "v"})
    assert c.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "b", "cost": "7"}
    return {}


def sc_list_tags(c, queue):
    return c.list_queue_tags(QueueUrl=c.get_queue_url(QueueName=queue)["QueueUrl"]).get("Tags", {})


def sc_send(c, queue, n, prefix):
    """Sends n messages; prints their ids."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    ids = []
    for i in range(int(n)):
        ids.append(c.send_message(QueueUrl=url, MessageBody="%s-%d" % (prefix, i))["MessageId"])
    return {"ids": ids}


def sc_send_until_killed(c, queue, path):
    """Sends until weir stops answering; after each acknowledged send,
    appends the body to `path` (flushed), so the test knows what was
    acknowledged when it killed weir."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    i = 0
    with open(path, "a") as f:
        while True:
            body = "m-%d" % i
            try:
                c.send_message(QueueUrl=url, MessageBody=body)
            except Exception:
                return {"sent": i}
            f.write(body + "\n")
            f.flush()
            i += 1


def sc_drain(c, queue, delete="1"):
    """Receives (and deletes) everything there is; prints the bodies."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies = []
    while True:
        ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                               VisibilityTimeout=300).get("Messages", [])
        if not ms:
            return {"bodies": bodies}
        bodies += [m["Body"] for m in ms]
        if delete == "1":
            c.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ms)])


def sc_receive_delete(c, queue, n):
    """Receives and deletes up to n messages; prints the deleted bodies."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=int(n)).get("Messages", [])
    for m in ms:
        c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return {"bodies": [m["Body"] for m in ms]}


def sc_receive_keep(c, queue, n, visibility):
    """Receives up to n messages (one call) and leaves them in flight."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    ms = c.receive_message(QueueUrl=url, MaxNumberOfMessages=int(n),
                           VisibilityTimeout=int(visibility)).get("Messages", [])
    return {"bodies": [m["Body"] for m in ms]}


def sc_send_batch(c, queue, n, prefix):
    """Sends n (<= 10) messages in one SendMessageBatch."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    r = c.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "%s-%d" % (prefix, i)} for i in range(int(n))])
    assert len(r.get("Successful", [])) == int(n), r
    return {}


def sc_receive_attrs(c, queue):
    """Long-polls for one message; prints its body and attribute values."""
    url = c.get_queue_url(QueueName=queue)["QueueUrl"]
    ms = c.receive_message(QueueUrl=url, WaitTimeSeconds=20,
                           MessageAttributeNames=["All"]).get("Messages", [])
    assert len(ms) == 1, ms
    m = ms[0]
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return {"body": m["Body"], "attrs": {k: v.get("StringValue")
                                         for k, v in m.get("MessageAttributes", {}).items()}}


def sc_auth(c, access_key, secret_key):
    """With sqs_auth keys: the right secret works (a create, a send with a
    body, a receive); a wrong secret is SignatureDoesNotMatch, an unknown
    key InvalidClientTokenId, both 403, and nothing is stored."""
    def make(key, secret):
        cfg = botocore.config.Config(retries={"max_attempts": 1})
        return boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)
    good = make(access_key, secret_key)
    url = good.create_queue(QueueName="signed")["QueueUrl"]
    good.send_message(QueueUrl=url, MessageBody="signed body \u00e9 & = %2F")
    codes = {}
    for name, cl in (("wrong_secret", make(access_key, secret_key + "x")),
                     ("unknown_key", make("AKIDUNKNOWN", secret_key))):
        try:
            cl.send_message(QueueUrl=url, MessageBody="forged")
            raise AssertionError("%s: accepted" % name)
        except ClientError as e:
            codes[name] = [e.response["Error"]["Code"],
                           e.response["ResponseMetadata"]["HTTPStatusCode"]]
    ms = good.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return {"codes": codes, "bodies": [m["Body"] for m in ms.get("Messages", [])]}


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}

if __name__ == "__main__":
    endpoint, scenario = sys.argv[1], sys.argv[2]
    out = SCENARIOS[scenario](client(endpoint), *sys.argv[3:])
    print(json.dumps(out))

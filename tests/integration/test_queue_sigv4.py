"""Signature V4 verification on the SQS listener (`sqs_auth:`), driven by
boto3 with right and wrong secrets (see test_queue.py for the client)."""
import json

import requests

from conftest import IO_TIMEOUT, free_port
from test_queue import BOTO_PYTHON, pytestmark, run, sqs_config  # noqa: F401

KEY, SECRET = "AKIDWEIRTEST", "s3cr3t/with+chars="


def test_signatures_verified(weir_factory, tmp_path):
    port = free_port()
    w = weir_factory(sqs_config(port, str(tmp_path / "data"), extra=(
        "sqs_auth:\n"
        "  keys:\n"
        "    - { access_key: %s, secret_key: '%s' }\n"
        "    - { access_key: OTHER, secret_key: other }\n" % (KEY, SECRET))))
    out = run(w, "auth", KEY, SECRET)
    assert out["codes"] == {"wrong_secret": ["SignatureDoesNotMatch", 403],
                            "unknown_key": ["InvalidClientTokenId", 403]}, out
    assert out["bodies"] == ["signed body \u00e9 & = %2F"], out
    # no Authorization at all; a mangled one
    body = json.dumps({"QueueName": "signed"})
    hdrs = {"X-Amz-Target": "AmazonSQS.GetQueueUrl",
            "Content-Type": "application/x-amz-json-1.0"}
    r = requests.post(w.url + "/", data=body, headers=hdrs, timeout=IO_TIMEOUT)
    assert r.status_code == 403 and r.json()["__type"].endswith("MissingAuthenticationToken"), r.text
    hdrs["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/2026" % KEY
    hdrs["X-Amz-Date"] = "20260101T000000Z"
    r = requests.post(w.url + "/", data=body, headers=hdrs, timeout=IO_TIMEOUT)
    assert r.status_code == 400 and r.json()["__type"].endswith("IncompleteSignature"), r.text
    # a correct signature made 20 minutes ago is refused as expired
    hdrs["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/sqs/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=%s" % (KEY, "0" * 64))
    r = requests.post(w.url + "/", data=body, headers=hdrs, timeout=IO_TIMEOUT)
    assert r.status_code == 403 and r.json()["__type"].endswith("SignatureDoesNotMatch"), r.text
    assert "expired" in r.json()["message"], r.text


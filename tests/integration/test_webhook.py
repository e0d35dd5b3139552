"""The webhook source end to end: triggerd as a process, real HTTP functions on
loopback, requests from a real HTTP client."""
import base64
import hashlib
import hmac
import json
import os
import time

from conftest import SHARED, http_request, wait_for


def config(fn_url, source_extra="", trigger_extra="", function_extra="", invocation="sync",
           fmt="binary"):
    return f"""
log = {{ level = "info"; }};
sources = ( {{ name = "in"; kind = "webhook"; path = "/hooks/in"; {source_extra} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; format = "{fmt}"; {function_extra} }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "{invocation}";
               backoff = {{ base = "50ms"; cap = "200ms"; }}; {trigger_extra} }} );
"""


def test_sync_webhook_returns_the_functions_answer(triggerd, function_server):
    fn = function_server(lambda req: (201, {"Content-Type": "application/json"},
                                      b'{"made": "' + req["headers"]["ce-id"].encode() + b'"}'))
    t = triggerd(config(fn.url))
    status, headers, body = http_request("POST", t.webhook + "/hooks/in", '{"order": 7}',
                                         {"Content-Type": "application/json"})
    assert status == 201
    assert headers["Content-Type"].startswith("application/json")
    made = json.loads(body)["made"]
    req = fn.requests[0]
    assert req["headers"]["ce-id"] == made
    assert req["headers"]["ce-type"] == "triggerd.webhook.request"
    assert req["headers"]["ce-subject"] == "/hooks/in"
    assert req["headers"]["ce-httpmethod"] == "POST"
    assert req["headers"]["ce-specversion"] == "1.0"
    assert req["body"] == b'{"order": 7}'


def test_sync_function_error_is_502(triggerd, function_server):
    fn = function_server(lambda req: (500, {"Content-Type": "application/json"}, b'{"oops": 1}'))
    t = triggerd(config(fn.url))
    status, _, body = http_request("POST", t.webhook + "/hooks/in", "{}")
    assert status == 502
    assert json.loads(body)


def test_async_webhook_is_202_then_delivered_in_each_format(triggerd, function_server):
    for fmt in ("binary", "structured", "data"):
        fn = function_server()
        t = triggerd(config(fn.url, invocation="async", fmt=fmt), name=f"async-{fmt}")
        status, _, body = http_request("POST", t.webhook + "/hooks/in", '{"n": 1}',
                                       {"Content-Type": "application/json"})
        assert status == 202
        answer = json.loads(body)
        assert answer["accepted"] == 1 and len(answer["ids"]) == 1
        fn.wait_count(1)
        req = fn.requests[0]
        if fmt == "binary":
            assert req["headers"]["ce-id"] == answer["ids"][0]
            assert req["body"] == b'{"n": 1}'
        elif fmt == "structured":
            assert req["headers"]["content-type"].startswith("application/cloudevents+json")
            ev = json.loads(req["body"])
            assert ev["id"] == answer["ids"][0] and ev["data"] == {"n": 1}
        else:
            assert "ce-id" not in req["headers"]
            assert req["body"] == b'{"n": 1}'
        t.stop()


def test_no_match_is_202_with_nothing_accepted(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, trigger_extra='pattern = "{\\"data\\": {\\"kind\\": [\\"order\\"]}}";'))
    status, _, body = http_request("POST", t.webhook + "/hooks/in", '{"kind": "refund"}',
                                   {"Content-Type": "application/json"})
    assert status == 202 and json.loads(body)["accepted"] == 0
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", '{"kind": "order"}',
                                {"Content-Type": "application/json"})
    assert status == 200
    assert fn.count() == 1


def test_bearer_and_hmac_failures_are_401(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, source_extra='auth = "bearer"; token = "s3cret";'))
    status, _, body = http_request("POST", t.webhook + "/hooks/in", "{}")
    assert status == 401 and "error" in json.loads(body)
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "{}",
                                {"Authorization": "Bearer wrong"})
    assert status == 401
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "{}",
                                {"Authorization": "Bearer s3cret"})
    assert status == 200
    assert fn.count() == 1

    g = triggerd(config(fn.url, source_extra='preset = "github"; hmac = { secret = "k3y"; };'),
                 name="github")
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    status, _, _ = http_request("POST", g.webhook + "/hooks/in", body,
                                {"X-Hub-Signature-256": good})
    assert status == 200
    bad = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    status, _, reason = http_request("POST", g.webhook + "/hooks/in", body,
                                     {"X-Hub-Signature-256": bad})
    assert status == 401 and "signature" in json.loads(reason)["error"]
    status, _, _ = http_request("POST", g.webhook + "/hooks/in", body)
    assert status == 401
    assert fn.count() == 2


def test_s3_and_minio_notifications_become_one_event_per_record(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, source_extra='format = "s3";', invocation="async"))
    with open(os.path.join(SHARED, "samples", "events", "s3-put.json"), "rb") as f:
        aws = f.read()
    status, _, body = http_request("POST", t.webhook + "/hooks/in", aws,
                                   {"Content-Type": "application/json"})
    assert status == 202 and json.loads(body)["accepted"] == 1
    with open(os.path.join(SHARED, "samples", "events", "minio-style.jsonl")) as f:
        minio = json.loads(f.readline())
    status, _, body = http_request("POST", t.webhook + "/hooks/in", minio["body"].encode(),
                                   {"Content-Type": "application/json"})
    assert status == 202 and json.loads(body)["accepted"] == 1
    fn.wait_count(2)
    by_type = {r["headers"]["ce-type"]: r["headers"] for r in fn.requests}
    put = by_type["com.amazonaws.s3.ObjectCreated:Put"]
    # Keys arrive URL-encoded (+ for space); the subject is the decoded key. Header
    # values are percent-encoded in CloudEvents binary mode.
    from urllib.parse import unquote
    subjects = sorted(unquote(r["headers"]["ce-subject"]) for r in fn.requests)
    assert subjects == ["dir/my summer(2024)+ä.txt", "dir/my summer(2024).jpg"]
    assert put["ce-s3bucket"] == "bkt"


def test_malformed_s3_body_is_400_with_the_reason(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, source_extra='format = "s3";'))
    status, _, body = http_request("POST", t.webhook + "/hooks/in", '{"Records": [{"s3": {}}]}',
                                   {"Content-Type": "application/json"})
    assert status == 400
    assert "Records[0]" in json.loads(body)["error"]
    assert fn.count() == 0


def test_body_over_the_limit_is_413(triggerd, function_server):
    fn = function_server()
    t = triggerd('http = { max_body = "1KB"; };\n' + config(fn.url))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "x" * 4096)
    assert status == 413
    assert fn.count() == 0
    status, _, _ = http_request("GET", t.webhook + "/hooks/in")
    assert status == 405


def test_metrics_count_webhook_responses_and_invocations(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url))
    for _ in range(3):
        http_request("POST", t.webhook + "/hooks/in", "{}")
    _, _, text = http_request("GET", t.admin + "/metrics")
    text = text.decode()
    assert 'triggerd_webhook_responses_total{source="in",code="200"} 3' in text
    assert 'triggerd_invocations_total{function="fn",outcome="ok"} 3' in text
    assert 'triggerd_requests_total{function="fn"} 3' in text
    assert 'triggerd_events_received_total{source="in"} 3' in text
    status, _, body = http_request("GET", t.admin + "/v1/functions")
    assert status == 200 and json.loads(body)[0]["requests"] == 3
    assert "REPORT RequestId:" in t.log() and "Billed Duration:" in t.log()

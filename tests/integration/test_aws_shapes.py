"""AWS event shapes end to end (router/aws_event.c, connectors/webhook.c): triggerd as a
process, real HTTP functions on loopback.

1. A webhook source in format raw adds what the function-URL request event needs to its
   CloudEvents (httpheaders, httpquery, httpsourceip): seen by an http function.
2. The header a source authenticates with (Authorization for bearer, the signature header
   for HMAC) reaches no function in clear text; without auth it passes unchanged.
3. A CloudEvent posted to a webhook in format cloudevents is delivered as it came.
4. Through the lambda kind (an Invoke API served by a recording HTTP server on loopback,
   standing in for AWS): a webhook request arrives as a function-URL request event, an
   S3 notification as {"Records": [...]}, and the function-URL response object becomes
   the webhook's HTTP answer (status, headers, cookies, base64 body; a malformed one is
   502).
5. Through the process kind (a Python handler that echoes its event): an S3 notification
   arrives as {"Records": [...]} and the echoed answer is the webhook's JSON body; a cron
   tick arrives as an EventBridge Scheduled Event, metered with its cold start.
"""
import base64
import hashlib
import hmac
import json
import os

from conftest import SHARED, http_request, wait_for


def http_config(fn_url, source_extra="", fmt="structured"):
    return f"""
log = {{ level = "info"; }};
sources = ( {{ name = "in"; kind = "webhook"; path = "/hooks/in"; {source_extra} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; format = "{fmt}"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync"; }} );
"""


def lambda_config(endpoint, source_extra=""):
    return f"""
log = {{ level = "info"; }};
sources = ( {{ name = "in"; kind = "webhook"; path = "/hooks/in"; {source_extra} }} );
functions = ( {{ name = "fn"; kind = "lambda"; function_name = "hello"; region = "us-east-1";
                 endpoint = "{endpoint.rstrip('/')}"; access_key_id = "AKIDTEST";
                 secret_access_key = "secret"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync"; }} );
"""


def received_event(fn):
    """The CloudEvent the http function got in structured mode."""
    fn.wait_count(1)
    return json.loads(fn.requests[-1]["body"])


def test_raw_webhook_events_carry_headers_query_and_source_ip(triggerd, function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in?a=1&b=x%20y&a=2", '{"n": 1}',
                                {"Content-Type": "application/json", "X-Custom": "v1",
                                 "User-Agent": "aws-shapes-test", "Cookie": "s=1; t=2"})
    assert status == 200
    ev = received_event(fn)
    assert ev["type"] == "triggerd.webhook.request"
    assert ev["httpmethod"] == "POST"
    assert ev["httpquery"] == "a=1&b=x%20y&a=2"
    assert ev["httpsourceip"] == "127.0.0.1"
    headers = json.loads(ev["httpheaders"])
    assert headers["x-custom"] == "v1"
    assert headers["user-agent"] == "aws-shapes-test"
    assert headers["content-type"] == "application/json"
    assert headers["cookie"] == "s=1; t=2"
    assert headers["host"].startswith("127.0.0.1:")
    assert all(name == name.lower() for name in headers)
    assert ev["data"] == {"n": 1}


def test_no_query_means_no_httpquery_and_binary_mode_carries_the_extensions(triggerd,
                                                                             function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url, fmt="binary"))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "hello",
                                {"Content-Type": "text/plain", "X-Custom": "v1"})
    assert status == 200
    fn.wait_count(1)
    got = fn.requests[0]["headers"]
    assert "ce-httpquery" not in got
    assert got["ce-httpsourceip"] == "127.0.0.1"
    # Binary mode percent-encodes '"' and spaces in extension values.
    from urllib.parse import unquote
    assert json.loads(unquote(got["ce-httpheaders"]))["x-custom"] == "v1"
    assert fn.requests[0]["body"] == b"hello"


def test_bearer_token_is_redacted(triggerd, function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url, 'auth = "bearer"; token = "s3cret-token";'))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "{}",
                                {"Authorization": "Bearer s3cret-token"})
    assert status == 200
    ev = received_event(fn)
    assert json.loads(ev["httpheaders"])["authorization"] == "[redacted]"
    assert b"s3cret-token" not in fn.requests[0]["body"]
    assert all("s3cret-token" not in v for v in fn.requests[0]["headers"].values())


def test_hmac_signature_is_redacted(triggerd, function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url, 'preset = "github"; hmac = { secret = "k3y"; };'))
    body = b'{"ref": "refs/heads/main"}'
    sig = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", body,
                                {"X-Hub-Signature-256": sig, "Authorization": "token abc"})
    assert status == 200
    ev = received_event(fn)
    headers = json.loads(ev["httpheaders"])
    assert headers["x-hub-signature-256"] == "[redacted]"
    assert sig.encode() not in fn.requests[0]["body"]
    # Not what this source authenticates with: passed on.
    assert headers["authorization"] == "token abc"


def test_without_auth_authorization_passes_unchanged(triggerd, function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in", "{}",
                                {"Authorization": "Bearer for-the-function"})
    assert status == 200
    assert json.loads(received_event(fn)["httpheaders"])["authorization"] == \
        "Bearer for-the-function"


def test_cloudevents_webhook_events_are_delivered_as_they_came(triggerd, function_server):
    fn = function_server()
    t = triggerd(http_config(fn.url, 'format = "cloudevents";'))
    status, _, _ = http_request("POST", t.webhook + "/hooks/in?q=1", '{"x": 1}',
                                {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "me",
                                 "ce-type": "my.type", "Content-Type": "application/json"})
    assert status == 200
    ev = received_event(fn)
    assert ev["id"] == "e-1" and ev["type"] == "my.type"
    for ext in ("httpheaders", "httpquery", "httpsourceip", "httpmethod"):
        assert ext not in ev


# ---- through the lambda kind ---------------------------------------------------------


def lambda_server(function_server, answer):
    """An Invoke API on loopback: records the payloads, answers with answer(payload)."""
    def respond(req):
        payload = json.loads(req["body"])
        return 200, {"Content-Type": "application/json"}, json.dumps(answer(payload)).encode()
    return function_server(respond)


def test_function_url_request_event_and_response_through_lambda(triggerd, function_server):
    fn = lambda_server(function_server, lambda ev: {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Made-By": "lambda"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": "made " + ev["rawPath"],
    })
    t = triggerd(lambda_config(fn.url))
    status, headers, body = http_request(
        "POST", t.webhook + "/hooks/in?x=1&x=2&y=%C3%A9", '{"order": 7}',
        {"Content-Type": "application/json", "Cookie": "c=3; d=4", "User-Agent": "ua/1"})
    assert status == 201, body
    assert body == b"made /hooks/in"
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Made-By"] == "lambda"
    fn.wait_count(1)
    req = fn.requests[0]
    assert req["path"] == "/2015-03-31/functions/hello/invocations"
    ev = json.loads(req["body"])
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/hooks/in"
    assert ev["rawQueryString"] == "x=1&x=2&y=%C3%A9"
    assert ev["queryStringParameters"] == {"x": "1,2", "y": "é"}
    assert ev["cookies"] == ["c=3", "d=4"]
    assert "cookie" not in ev["headers"]
    assert ev["headers"]["user-agent"] == "ua/1"
    assert ev["body"] == '{"order": 7}' and ev["isBase64Encoded"] is False
    rc = ev["requestContext"]
    assert rc["http"]["method"] == "POST" and rc["http"]["sourceIp"] == "127.0.0.1"
    assert rc["http"]["userAgent"] == "ua/1" and rc["http"]["protocol"] == "HTTP/1.1"
    assert rc["domainName"].startswith("127.0.0.1:")
    assert rc["accountId"] == "anonymous" and rc["stage"] == "$default"
    assert isinstance(rc["timeEpoch"], int) and rc["requestId"]


def test_set_cookie_headers_and_base64_body(triggerd, function_server):
    fn = lambda_server(function_server, lambda ev: {
        "statusCode": 200, "cookies": ["a=1", "b=2"], "isBase64Encoded": True,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(b"\x00\x01\xff").decode(),
    })
    t = triggerd(lambda_config(fn.url))
    # urllib folds repeated headers in dict(); read them raw.
    import urllib.request
    req = urllib.request.Request(t.webhook + "/hooks/in", data=b"\x00\x02", method="POST",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.read() == b"\x00\x01\xff"
    ev = json.loads(fn.requests[0]["body"])
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == b"\x00\x02"


def test_plain_json_result_is_200_and_malformed_response_is_502(triggerd, function_server):
    answers = [{"hello": "world"}, {"statusCode": "two hundred"}]
    fn = lambda_server(function_server, lambda ev: answers[len(fn.requests) - 1])
    t = triggerd(lambda_config(fn.url))
    status, headers, body = http_request("POST", t.webhook + "/hooks/in", "{}")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"hello": "world"}
    status, _, body = http_request("POST", t.webhook + "/hooks/in", "{}")
    assert status == 502
    assert "statusCode" in body.decode()


def test_s3_notification_arrives_as_records(triggerd, function_server):
    fn = lambda_server(function_server, lambda ev: {"ok": True})
    t = triggerd(lambda_config(fn.url, 'format = "s3";'))
    with open(os.path.join(SHARED, "samples", "events", "s3-put.json"), "rb") as f:
        sample = f.read()
    status, _, body = http_request("POST", t.webhook + "/hooks/in", sample,
                                   {"Content-Type": "application/json"})
    assert status == 200, body
    fn.wait_count(1)
    assert json.loads(fn.requests[0]["body"]) == json.loads(sample)


# ---- the process kind: a Python handler gets the AWS shapes ----

ECHO_HANDLER = '''import json, os


def lambda_handler(event, context):
    with open(os.environ["SEEN"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    return event
'''


def process_config(code, seen, source):
    return f"""
log = {{ level = "info"; }};
sources = ( {source} );
functions = ( {{ name = "echo"; kind = "process"; runtime = "python3"; code = "{code}";
                 environment = {{ SEEN = "{seen}"; }}; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "echo";
                invocation = "{'async' if 'cron' in source else 'sync'}"; }} );
"""


def echo_function(tmp_path):
    code = tmp_path / "echo"
    code.mkdir()
    (code / "lambda_function.py").write_text(ECHO_HANDLER)
    return code, tmp_path / "seen.jsonl"


def test_process_function_gets_s3_records_and_answers_the_webhook(triggerd, tmp_path):
    code, seen = echo_function(tmp_path)
    t = triggerd(process_config(code, seen, '{ name = "in"; kind = "webhook"; path = "/hooks/in"; '
                                            'format = "s3"; }'))
    with open(os.path.join(SHARED, "samples", "events", "s3-put.json"), "rb") as f:
        body = f.read()
    record = json.loads(body)["Records"][0]
    status, headers, answer = http_request("POST", t.webhook + "/hooks/in", body,
                                           {"Content-Type": "application/json"})
    assert status == 200, answer
    # the handler returned its event: a JSON answer without statusCode is the body, as a
    # Lambda function URL answers it
    assert json.loads(answer) == {"Records": [record]}
    assert json.loads(seen.read_text().splitlines()[0]) == {"Records": [record]}


def test_process_function_gets_a_cron_tick_as_a_scheduled_event(triggerd, tmp_path):
    code, seen = echo_function(tmp_path)
    t = triggerd(process_config(code, seen, '{ name = "in"; kind = "cron"; '
                                            'schedule = "* * * * * *"; }'))
    wait_for(lambda: seen.exists() and seen.read_text().strip(), 10,
             what="a cron tick reaching the handler")
    event = json.loads(seen.read_text().splitlines()[0])
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["version"] == "0" and event["id"] and event["time"].endswith("Z")
    assert event["resources"] and event["resources"][0].startswith("arn:aws:events:")
    assert event["detail"] == {}
    # metered as Lambda bills it, with the cold start counted
    status, _, body = http_request("GET", t.admin + "/v1/usage")
    usage = next(f for f in json.loads(body) if f["name"] == "echo")
    assert usage["requests"] >= 1 and usage["cold_starts"] == 1 and usage["billed_ms"] >= 1


def test_lambda_kind_passes_the_client_context_on(triggerd, function_server):
    fn = function_server()
    t = triggerd(lambda_config(fn.url))
    cc = base64.b64encode(b'{"custom":{"k":"v"}}').decode()
    status, _, body = http_request("POST", t.admin + "/2015-03-31/functions/fn/invocations",
                                   "{}", {"X-Amz-Client-Context": cc})
    assert status == 200, body
    fn.wait_count(1)
    headers = {k.lower(): v for k, v in fn.requests[0]["headers"].items()}
    assert headers["x-amz-client-context"] == cc

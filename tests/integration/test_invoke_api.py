"""The Lambda Invoke API on the admin listener (router/invoke_api.c): triggerd as a
process, real HTTP functions on loopback, the log kind, urllib as a raw client and
Debian's awscli v2 (/usr/bin/aws) as a real one."""
import base64
import json
import os
import shutil
import threading
import time
import urllib.parse

import pytest

from conftest import http_request, run, wait_for

INVOKE = "/2015-03-31/functions/{}/invocations"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def config(hello_url, failing_url="http://127.0.0.1:9/", slow_url="http://127.0.0.1:9/",
           extra=""):
    return f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = (
  {{ name = "hello"; kind = "http"; url = "{hello_url}"; timeout = "5s"; }},
  {{ name = "failing"; kind = "http"; url = "{failing_url}"; timeout = "5s"; }},
  {{ name = "slow"; kind = "http"; url = "{slow_url}"; timeout = "10s"; concurrency = 1; }},
  {{ name = "logger"; kind = "log"; }}
);
triggers = ( {{ name = "t"; sources = ["in"]; function = "logger"; }} );
{extra}
"""


def invoke(t, name, body='{"x": 1}', headers=None, query="", method="POST"):
    url = t.admin + INVOKE.format(name) + query
    return http_request(method, url, body, headers or {})


def aws_error(status, headers, body):
    doc = json.loads(body)
    return status, headers.get("x-amzn-ErrorType"), doc.get("Type"), doc.get("Message")


@pytest.fixture
def hello(function_server):
    return function_server()


# ---- RequestResponse ----

def test_sync_returns_the_function_result(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, "hello", '{"x": 1}')
    assert status == 200
    assert json.loads(body) == {"echo": '{"x": 1}'}
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    request_id = headers["x-amzn-RequestId"]
    assert len(request_id) == 36
    assert "X-Amz-Function-Error" not in headers
    # The function got the payload bytes as given, as a CloudEvent in binary mode.
    req = hello.requests[0]
    assert req["body"] == b'{"x": 1}'
    h = req["headers"]
    assert h["ce-id"] == request_id
    assert h["ce-source"] == "triggerd/invoke-api"
    assert h["ce-type"] == "triggerd.invoke"
    assert h["ce-subject"] == "hello"
    assert h["content-type"] == "application/json"


def test_explicit_request_response_and_empty_payload(triggerd, hello):
    t = triggerd(config(hello.url))
    status, _, body = invoke(t, "hello", None, {"X-Amz-Invocation-Type": "RequestResponse"})
    assert status == 200
    assert hello.requests[0]["body"] == b"{}"  # an empty payload is the JSON {}
    assert json.loads(body) == {"echo": "{}"}


def test_sync_log_kind(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, "logger", '{"k": [1, 2]}')
    assert status == 200
    ev = json.loads(body)
    assert ev["data"] == {"k": [1, 2]}
    assert ev["id"] == headers["x-amzn-RequestId"]
    assert ev["type"] == "triggerd.invoke"


def test_function_error_is_200_with_function_error_header(triggerd, function_server, hello):
    failing = function_server(lambda req: (500, {"Content-Type": "application/json"},
                                           b'{"errorType": "ValueError", "errorMessage": "boom"}'))
    t = triggerd(config(hello.url, failing.url))
    status, headers, body = invoke(t, "failing")
    assert status == 200
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    assert json.loads(body) == {"errorType": "ValueError", "errorMessage": "boom"}


def test_unreachable_function_error_document(triggerd, hello):
    t = triggerd(config(hello.url))  # failing points at a closed port
    status, headers, body = invoke(t, "failing")
    assert status == 200
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    doc = json.loads(body)
    assert doc["errorType"]
    assert "127.0.0.1:9" in doc["errorMessage"]


def test_log_tail(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, _ = invoke(t, "hello", "{}", {"X-Amz-Log-Type": "Tail"})
    assert status == 200
    rid = headers["x-amzn-RequestId"]
    log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1] == f"END RequestId: {rid}"
    assert lines[2].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "Billed Duration: " in lines[2] and "Memory Size: 128 MB" in lines[2]
    # Without Tail there is no log.
    _, headers, _ = invoke(t, "hello", "{}")
    assert "X-Amz-Log-Result" not in headers


def test_log_tail_of_a_failure_names_the_error(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, _ = invoke(t, "failing", "{}", {"X-Amz-Log-Type": "Tail"})
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    log = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert "\tError: " in log.splitlines()[2]


# ---- Event and DryRun ----

def test_event_is_202_and_reaches_the_function_later(triggerd, function_server):
    gate = threading.Event()

    def respond(req):
        gate.wait(10)
        return 200, {}, b"ok"

    fn = function_server(respond)
    t = triggerd(config(fn.url))
    status, headers, body = invoke(t, "hello", '{"async": true}',
                                   {"X-Amz-Invocation-Type": "Event"})
    assert status == 202
    assert body == b""
    rid = headers["x-amzn-RequestId"]
    fn.wait_count(1)  # answered before the function finished
    gate.set()
    assert fn.requests[0]["body"] == b'{"async": true}'
    assert fn.requests[0]["headers"]["ce-id"] == rid


def test_event_is_retried_after_a_failure(triggerd, function_server):
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        return (503, {}, b"down") if calls["n"] == 1 else (200, {}, b"ok")

    fn = function_server(respond)
    t = triggerd(config(fn.url))
    status, _, _ = invoke(t, "hello", "{}", {"X-Amz-Invocation-Type": "Event"})
    assert status == 202
    fn.wait_count(2, timeout=30)
    assert fn.requests[0]["headers"]["ce-id"] == fn.requests[1]["headers"]["ce-id"]


def test_dry_run(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, "hello", "{}", {"X-Amz-Invocation-Type": "DryRun"})
    assert status == 204 and body == b""
    assert hello.count() == 0
    status, headers, body = invoke(t, "nope", "{}", {"X-Amz-Invocation-Type": "DryRun"})
    assert aws_error(status, headers, body)[:3] == (404, "ResourceNotFoundException", "User")


# ---- names ----

@pytest.mark.parametrize("name", [
    "hello",
    "hello:$LATEST",
    "123456789012:function:hello",
    ARN.format("hello"),
    ARN.format("hello") + ":$LATEST",
    urllib.parse.quote(ARN.format("hello"), safe=""),  # arn%3Aaws%3Alambda%3A...
    urllib.parse.quote("hello:$LATEST", safe=""),
])
def test_names_and_arns(triggerd, hello, name):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, name)
    assert status == 200, body
    assert json.loads(body) == {"echo": '{"x": 1}'}


def test_qualifier_parameter(triggerd, hello):
    t = triggerd(config(hello.url))
    assert invoke(t, "hello", query="?Qualifier=%24LATEST")[0] == 200
    status, headers, body = invoke(t, "hello", query="?Qualifier=v2")
    assert aws_error(status, headers, body)[:2] == (404, "ResourceNotFoundException")
    status, headers, body = invoke(t, "hello:$LATEST", query="?Qualifier=v2")
    assert aws_error(status, headers, body)[:2] == (400, "ValidationException")


def test_unknown_function_is_404(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, "nope")
    status, etype, typ, message = aws_error(status, headers, body)
    assert (status, etype, typ) == (404, "ResourceNotFoundException", "User")
    assert "nope" in message
    status, headers, body = invoke(t, urllib.parse.quote(ARN.format("nope"), safe=""))
    assert aws_error(status, headers, body)[:2] == (404, "ResourceNotFoundException")
    status, headers, body = invoke(t, "hello:v1")  # no versions or aliases
    assert aws_error(status, headers, body)[:2] == (404, "ResourceNotFoundException")


@pytest.mark.parametrize("name, where", [
    ("arn:aws:s3:us-east-1:123456789012:function:hello", "lambda"),
    ("arn:aws:lambda:us-east-1:12345:function:hello", "account"),
    ("12345678901x:function:hello", "account"),
    ("hello%20world", "function name"),
    ("a:b:c:d:e", "neither"),
    ("x" * 65, "function name"),
])
def test_malformed_names_are_400(triggerd, hello, name, where):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, name)
    status, etype, typ, message = aws_error(status, headers, body)
    assert (status, etype, typ) == (400, "ValidationException", "User")
    assert where in message
    assert hello.count() == 0


def test_other_paths_and_methods(triggerd, hello):
    t = triggerd(config(hello.url))
    status, headers, body = http_request("GET", t.admin + "/2015-03-31/functions/hello")
    assert aws_error(status, headers, body)[:2] == (404, "UnknownOperationException")
    status, headers, body = invoke(t, "hello", None, method="GET")
    assert status == 405 and headers["Allow"] == "POST"
    assert headers["x-amzn-ErrorType"]


# ---- limits and bad input ----

def test_payload_over_6_mb_is_413(triggerd, hello):
    t = triggerd(config(hello.url))
    big = b'"' + b"a" * (6 * 1024 * 1024 - 1) + b'"'  # 6 MB + 1 byte of valid JSON
    status, headers, body = invoke(t, "hello", big)
    assert aws_error(status, headers, body)[:3] == (413, "RequestTooLargeException", "User")
    assert hello.count() == 0
    just = b'"' + b"a" * (6 * 1024 * 1024 - 2) + b'"'  # exactly 6 MB
    status, _, _ = invoke(t, "hello", just)
    assert status == 200
    assert len(hello.requests[0]["body"]) == 6 * 1024 * 1024


@pytest.mark.parametrize("payload", ['{"x": ', "not json", '{"a": 1,}', "\xff"])
def test_bad_json_is_400(triggerd, hello, payload):
    t = triggerd(config(hello.url))
    status, headers, body = invoke(t, "hello", payload.encode("latin-1"))
    status, etype, typ, message = aws_error(status, headers, body)
    assert (status, etype, typ) == (400, "InvalidRequestContentException", "User")
    assert "Could not parse request body into json" in message and "column" in message
    assert hello.count() == 0


def test_bad_header_values_are_400(triggerd, hello):
    t = triggerd(config(hello.url))
    for h in ({"X-Amz-Invocation-Type": "Sometimes"}, {"X-Amz-Log-Type": "All"}):
        status, headers, body = invoke(t, "hello", "{}", h)
        assert aws_error(status, headers, body)[:2] == (400, "ValidationException")
    assert hello.count() == 0


def test_concurrency_exhausted_is_429(triggerd, function_server, hello):
    gate = threading.Event()

    def respond(req):
        gate.wait(10)
        return 200, {}, b'"slow"'

    slow = function_server(respond)
    t = triggerd(config(hello.url, slow_url=slow.url))
    first = {}
    thread = threading.Thread(target=lambda: first.setdefault("r", invoke(t, "slow")))
    thread.start()
    try:
        slow.wait_count(1)
        status, headers, body = invoke(t, "slow")
        status, etype, typ, _ = aws_error(status, headers, body)
        assert (status, etype, typ) == (429, "TooManyRequestsException", "User")
        assert headers["Retry-After"] == "1"
    finally:
        gate.set()
        thread.join(15)
    assert first["r"][0] == 200 and first["r"][2] == b'"slow"'
    assert invoke(t, "slow")[0] == 200  # free again


def test_bearer_token(triggerd, hello):
    t = triggerd(config(hello.url, extra='admin = { token = "s3cret"; };'), start=False)
    auth = {"Authorization": "Bearer s3cret"}

    def up(path):
        assert t.proc.poll() is None, t.log()
        try:
            return http_request("GET", t.admin + path, headers=auth, timeout=1)[0] == 200
        except OSError:
            return False

    t.healthy = lambda: up("/healthz")  # the fixture's checks send no token
    t.ready = lambda: up("/readyz")
    t.start()
    status, headers, body = invoke(t, "hello")
    assert status == 401 and headers["x-amzn-ErrorType"]
    assert invoke(t, "hello", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = invoke(t, "hello", headers={"Authorization": "Bearer s3cret"})
    assert status == 200
    assert hello.count() == 1


# ---- awscli v2 ----

AWS = "/usr/bin/aws"


def aws(t, tmp_path, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_PAGER="",
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    out = tmp_path / "out.json"
    r = run([AWS, "lambda", "invoke", "--endpoint-url", t.admin, *args,
             "--cli-binary-format", "raw-in-base64-out", str(out)], env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), out.read_bytes() if out.exists() else b""


needs_aws = pytest.mark.skipif(not shutil.which(AWS), reason="awscli v2 is not installed")


@needs_aws
def test_awscli_sync(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    meta, out = aws(t, tmp_path, "--function-name", "hello", "--payload", '{"x":1}')
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert json.loads(out) == {"echo": '{"x":1}'}
    meta, out = aws(t, tmp_path, "--function-name", ARN.format("hello"), "--payload", "{}")
    assert meta["StatusCode"] == 200 and json.loads(out) == {"echo": "{}"}


@needs_aws
def test_awscli_function_error(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    meta, out = aws(t, tmp_path, "--function-name", "failing", "--payload", "{}")
    assert meta["StatusCode"] == 200 and meta["FunctionError"] == "Unhandled"
    assert json.loads(out)["errorMessage"]


@needs_aws
def test_awscli_event(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    meta, _ = aws(t, tmp_path, "--function-name", "hello", "--invocation-type", "Event",
                  "--payload", '{"e":2}')
    assert meta["StatusCode"] == 202
    hello.wait_count(1)
    assert hello.requests[0]["body"] == b'{"e":2}'


@needs_aws
def test_awscli_log_tail(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    meta, _ = aws(t, tmp_path, "--function-name", "hello", "--log-type", "Tail",
                  "--payload", "{}")
    log = base64.b64decode(meta["LogResult"]).decode()
    assert log.startswith("START RequestId: ") and "REPORT RequestId: " in log


@needs_aws
def test_awscli_unknown_function(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret",
               AWS_DEFAULT_REGION="us-east-1", HOME=str(tmp_path), AWS_PAGER="")
    r = run([AWS, "lambda", "invoke", "--endpoint-url", t.admin, "--function-name", "nope",
             str(tmp_path / "o.json")], env=env)
    assert r.returncode != 0
    assert "ResourceNotFoundException" in r.stderr and "nope" in r.stderr


# ---- triggerctl invoke / usage (cli/invoke_command.c, cli/usage_command.c) ----

def triggerctl_has(command):
    r = run([os.path.join(os.environ.get("TRIGGERD_BUILD", "build"), "triggerctl"), "--help"])
    return f"triggerctl {command} " in r.stdout


def triggerctl(*args):
    from conftest import binary
    return run([binary("triggerctl"), *args])


@pytest.mark.skipif(not triggerctl_has("invoke"), reason="triggerctl has no invoke row yet")
def test_triggerctl_invoke(triggerd, hello, tmp_path):
    t = triggerd(config(hello.url))
    r = triggerctl("invoke", "hello", '{"c": 3}', "--admin", t.admin)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"echo": '{"c": 3}'}
    payload = tmp_path / "p.json"
    payload.write_text('{"f": 1}')
    r = triggerctl("invoke", "hello", f"@{payload}", "--admin", t.admin, "--event")
    assert r.returncode == 0 and r.stdout.startswith("queued ")
    hello.wait_count(2)
    r = triggerctl("invoke", "failing", "--admin", t.admin)
    assert r.returncode == 1 and "failed" in r.stderr
    r = triggerctl("invoke", "nope", "--admin", t.admin)
    assert r.returncode == 2 and "Function not found: nope" in r.stderr
    r = triggerctl("invoke", "hello", '{"x": ', "--admin", t.admin)
    assert r.returncode == 2 and "line 1, column" in r.stderr


@pytest.mark.skipif(not triggerctl_has("usage"), reason="triggerctl has no usage row yet")
def test_triggerctl_usage(triggerd, hello):
    t = triggerd(config(hello.url))
    assert invoke(t, "hello")[0] == 200
    r = triggerctl("usage", "--admin", t.admin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["FUNCTION", "REQUESTS", "ERRORS", "THROTTLES", "BILLED_MS",
                                "GB_SECONDS", "COLD_STARTS", "P50_MS", "P99_MS"]
    row = next(line.split() for line in lines if line.startswith("hello "))
    assert row[1] == "1" and row[2] == "0" and int(row[4]) >= 1
    r = triggerctl("usage", "--admin", t.webhook)
    assert r.returncode == 2 and "HTTP 404" in r.stderr

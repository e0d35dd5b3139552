"""The lambda function kind (functions/lambda.c) and SigV4 verification on the Invoke API
(router/sigv4.c, router/invoke_api.c), all with real processes on loopback:

- triggerd B has admin.credentials and real functions (http to a function server, log);
  triggerd A has lambda functions whose endpoint is B's admin listener: every call is a
  real signed round trip (libcurl's CURLOPT_AWS_SIGV4 for plain names, triggerd's own
  signer for ARNs, whose path AWS signs encoded twice).
- A lambda function pointed at a recording HTTP server that answers as Lambda would
  checks the request (path, headers, signature shape) and the response mapping (202,
  429, 5xx, 4xx, X-Amz-Function-Error).
- Debian's awscli v2 (/usr/bin/aws) signs against B: right and wrong secret, unknown
  key, an ARN (signed with %253A); urllib sends unsigned, stale and tampered requests.
"""
import datetime
import hashlib
import hmac
import json
import os
import shutil
import time
import urllib.parse

import pytest

from conftest import http_request, run, wait_for

KEY, SECRET = "AKIDTEST", "secret"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
INVOKE = "/2015-03-31/functions/{}/invocations"
JSON = {"Content-Type": "application/json"}


def b_config(hello_url, extra=""):
    return f"""
admin = {{ credentials = {{ {KEY} = "{SECRET}"; OTHERKEY = "other"; }}; }};
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = (
  {{ name = "hello"; kind = "http"; url = "{hello_url}"; timeout = "5s"; }},
  {{ name = "failing"; kind = "http"; url = "http://127.0.0.1:9/"; timeout = "5s"; }},
  {{ name = "logger"; kind = "log"; }}
);
triggers = ( {{ name = "t"; sources = ["in"]; function = "logger"; }} );
{extra}
"""


def a_config(endpoint, function_name="hello", invocation="sync", fn_extra="",
             credentials=f'access_key_id = "{KEY}"; secret_access_key = "{SECRET}";',
             trigger_extra=""):
    return f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "remote"; kind = "lambda"; function_name = "{function_name}";
                 endpoint = "{endpoint}"; region = "us-east-1"; timeout = "5s";
                 {credentials} {fn_extra} }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "remote"; invocation = "{invocation}";
               retries = 2; backoff = {{ base = "100ms"; cap = "500ms"; }}; {trigger_extra} }} );
"""


def post(t, body='{"order": 42}'):
    return http_request("POST", t.webhook + "/in", body, JSON)


@pytest.fixture
def b(triggerd, function_server):
    hello = function_server()
    t = triggerd(b_config(hello.url), name="b")
    t.hello = hello
    return t


# ---- a real signed round trip between two triggerd ----

def test_sync_round_trip_returns_the_remote_result(triggerd, b):
    a = triggerd(a_config(b.admin), name="a")
    status, _, body = post(a)
    assert status == 200, body
    # B's function answered with an echo of what it got: A's event, as A sent it.
    echo = json.loads(json.loads(body)["echo"])
    assert '"order": 42' in json.dumps(echo) or "42" in json.dumps(echo)
    assert b.hello.count() == 1
    assert "refused" not in b.log()


@pytest.mark.parametrize("name", [ARN.format("hello"), "123456789012:function:hello",
                                  "hello:$LATEST"])
def test_arn_and_qualified_names_are_signed_as_aws_does(triggerd, b, name):
    # A name with ':' travels as %3A: AWS (and B) verify the path encoded twice, which
    # libcurl 7.88 does not do, so A signs these requests itself.
    a = triggerd(a_config(b.admin, function_name=name), name="a")
    status, _, body = post(a)
    assert status == 200, (body, a.log(), b.log())
    assert b.hello.count() == 1


def test_qualifier_option(triggerd, b):
    a = triggerd(a_config(b.admin, fn_extra='qualifier = "$LATEST";'), name="a")
    assert post(a)[0] == 200
    assert b.hello.count() == 1
    # B has no alias "prod": ResourceNotFoundException, named in A's error.
    a2 = triggerd(a_config(b.admin, fn_extra='qualifier = "prod";'), name="a2")
    status, _, body = post(a2)
    assert status >= 400
    wait_for(lambda: "ResourceNotFoundException" in a2.log(), 5, what="the error in A's log")
    assert b.hello.count() == 1


def test_wrong_secret_fails_with_invalid_signature(triggerd, b):
    a = triggerd(a_config(b.admin, credentials=f'access_key_id = "{KEY}"; '
                                               'secret_access_key = "wrong";'), name="a")
    status, _, body = post(a)
    assert status >= 400
    assert b"InvalidSignatureException" in body or "InvalidSignatureException" in a.log()
    wait_for(lambda: "HTTP 403 InvalidSignatureException" in a.log(), 5,
             what="A's error naming B's 403")
    assert b.hello.count() == 0


def test_wrong_secret_on_an_arn_fails_too(triggerd, b):
    a = triggerd(a_config(b.admin, function_name=ARN.format("hello"),
                          credentials=f'access_key_id = "{KEY}"; secret_access_key = "x";'),
                 name="a")
    assert post(a)[0] >= 400
    wait_for(lambda: "HTTP 403 InvalidSignatureException" in a.log(), 5, what="A's error")
    assert b.hello.count() == 0


def test_unknown_key_is_unrecognized_client(triggerd, b):
    a = triggerd(a_config(b.admin, credentials='access_key_id = "NOPE"; '
                                               'secret_access_key = "secret";'), name="a")
    assert post(a)[0] >= 400
    wait_for(lambda: "UnrecognizedClientException" in a.log(), 5, what="A's error")


def test_credentials_from_the_environment(triggerd, b):
    env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    a = triggerd(a_config(b.admin, credentials=""), env=env, name="a")
    assert post(a)[0] == 200
    assert b.hello.count() == 1


def test_no_credentials_is_a_clear_error_at_start(triggerd, b):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}
    a = triggerd(a_config(b.admin, credentials=""), env=env, name="a", start=False)
    try:
        a.start()
    except AssertionError:
        pass
    wait_for(lambda: a.proc.poll() is not None or "no AWS credentials" in a.log(), 10,
             what="the credentials error")
    assert "no AWS credentials" in a.log()
    assert "AWS_ACCESS_KEY_ID" in a.log()


def test_function_error_from_b_is_mapped(triggerd, b):
    # B's "failing" cannot be reached: B answers 200 with X-Amz-Function-Error.
    a = triggerd(a_config(b.admin, function_name="failing"), name="a")
    status, _, body = post(a)
    assert status >= 400
    wait_for(lambda: "function error (Unhandled)" in a.log(), 5, what="A's error")


def test_handoff_sends_event_and_b_owns_the_retries(triggerd, b):
    a = triggerd(a_config(b.admin, invocation="async", fn_extra="handoff = true;"), name="a")
    status, _, _ = post(a)
    assert status == 202
    b.hello.wait_count(1)
    time.sleep(0.5)
    assert b.hello.count() == 1


def test_async_without_handoff_is_request_response(triggerd, b):
    a = triggerd(a_config(b.admin, invocation="async"), name="a")
    assert post(a)[0] == 202
    b.hello.wait_count(1)


# ---- against a recording endpoint that answers as Lambda would ----

def fake_lambda(function_server, answers):
    """A function server whose n-th request gets answers[min(n, len - 1)]."""
    def respond(req):
        with_count = len(fake.requests) - 1
        return answers[min(with_count, len(answers) - 1)]
    fake = function_server(respond)
    return fake


def test_request_shape(triggerd, function_server):
    fake = fake_lambda(function_server, [(200, JSON, b'{"ok": true}')])
    a = triggerd(a_config(fake.url.rstrip("/"), fn_extra='qualifier = "v1";',
                          credentials='access_key_id = "AK"; secret_access_key = "S"; '
                                      'session_token = "TOKEN";'), name="a")
    status, _, body = post(a)
    assert status == 200 and json.loads(body) == {"ok": True}
    req = fake.requests[0]
    assert req["path"] == "/2015-03-31/functions/hello/invocations?Qualifier=v1"
    h = req["headers"]
    assert h["x-amz-invocation-type"] == "RequestResponse"
    assert h["x-amz-security-token"] == "TOKEN"
    assert h["content-type"] == "application/json"
    assert h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
    assert "/us-east-1/lambda/aws4_request" in h["authorization"]
    assert "x-amz-security-token" in h["authorization"]
    assert len(h["x-amz-date"]) == 16
    json.loads(req["body"])  # the event, as JSON


def test_handoff_event_is_202(triggerd, function_server):
    fake = fake_lambda(function_server, [(202, {}, b"")])
    a = triggerd(a_config(fake.url.rstrip("/"), invocation="async",
                          fn_extra="handoff = true;"), name="a")
    assert post(a)[0] == 202
    fake.wait_count(1)
    time.sleep(0.4)
    assert fake.count() == 1  # 202 is success: no retry
    assert fake.requests[0]["headers"]["x-amz-invocation-type"] == "Event"


def test_arn_path_is_encoded_once_on_the_wire(triggerd, function_server):
    fake = fake_lambda(function_server, [(200, JSON, b"{}")])
    a = triggerd(a_config(fake.url.rstrip("/"), function_name=ARN.format("f")), name="a")
    assert post(a)[0] == 200
    req = fake.requests[0]
    assert req["path"] == INVOKE.format(urllib.parse.quote(ARN.format("f"), safe=""))
    assert req["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")


def test_function_error_async_is_retried(triggerd, function_server):
    err = (200, dict(JSON, **{"X-Amz-Function-Error": "Unhandled"}),
           b'{"errorType": "ValueError", "errorMessage": "bad order"}')
    fake = fake_lambda(function_server, [err, err, (200, JSON, b"{}")])
    a = triggerd(a_config(fake.url.rstrip("/"), invocation="async"), name="a")
    assert post(a)[0] == 202
    fake.wait_count(3)
    wait_for(lambda: "ValueError: bad order" in a.log(), 5, what="the error in A's log")


def test_function_error_sync_is_an_error(triggerd, function_server):
    err = (200, dict(JSON, **{"X-Amz-Function-Error": "Unhandled"}),
           b'{"errorType": "ValueError", "errorMessage": "bad order"}')
    fake = fake_lambda(function_server, [err])
    a = triggerd(a_config(fake.url.rstrip("/")), name="a")
    status, _, body = post(a)
    assert status >= 400
    assert fake.count() == 1


@pytest.mark.parametrize("answer,retried", [
    ((429, dict(JSON, **{"x-amzn-ErrorType": "TooManyRequestsException", "Retry-After": "0"}),
      b'{"Type": "User", "Message": "Rate Exceeded."}'), True),
    ((500, dict(JSON, **{"x-amzn-ErrorType": "ServiceException"}),
      b'{"Type": "Service", "Message": "oops"}'), True),
    ((400, dict(JSON, **{"x-amzn-ErrorType": "InvalidRequestContentException"}),
      b'{"Type": "User", "Message": "Could not parse request body into json"}'), False),
])
def test_status_mapping_async(triggerd, function_server, answer, retried):
    fake = fake_lambda(function_server, [answer, (200, JSON, b"{}")])
    a = triggerd(a_config(fake.url.rstrip("/"), invocation="async"), name="a")
    assert post(a)[0] == 202
    fake.wait_count(1)
    etype = answer[1]["x-amzn-ErrorType"]
    wait_for(lambda: etype in a.log(), 5, what=f"{etype} in A's log")
    if retried:
        fake.wait_count(2)
    else:
        time.sleep(0.6)
        assert fake.count() == 1


def test_connection_refused_is_retried(triggerd):
    a = triggerd(a_config("http://127.0.0.1:9", invocation="async"), name="a")
    assert post(a)[0] == 202
    wait_for(lambda: a.log().count("connection refused") >= 2, 10, what="two attempts")


# ---- awscli and raw requests against B's verifier ----

AWS = "/usr/bin/aws"
needs_aws = pytest.mark.skipif(not shutil.which(AWS), reason="awscli v2 is not installed")


def aws(t, tmp_path, key, secret, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
               AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_PAGER="",
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    out = tmp_path / "out.json"
    return run([AWS, "lambda", "invoke", "--region", "us-east-1", "--endpoint-url", t.admin,
                *args, "--cli-binary-format", "raw-in-base64-out", str(out)], env=env), out


@needs_aws
def test_awscli_right_secret(b, tmp_path):
    r, out = aws(b, tmp_path, KEY, SECRET, "--function-name", "hello", "--payload", '{"x":1}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["StatusCode"] == 200
    assert json.loads(out.read_bytes()) == {"echo": '{"x":1}'}
    # The second key works as well.
    r, _ = aws(b, tmp_path, "OTHERKEY", "other", "--function-name", "logger")
    assert r.returncode == 0, r.stderr


@needs_aws
def test_awscli_arn_is_signed_with_double_encoding(b, tmp_path):
    r, _ = aws(b, tmp_path, KEY, SECRET, "--function-name", ARN.format("hello"),
               "--qualifier", "$LATEST", "--payload", "{}")
    assert r.returncode == 0, r.stderr
    assert b.hello.count() == 1


@needs_aws
def test_awscli_wrong_secret_is_403(b, tmp_path):
    r, _ = aws(b, tmp_path, KEY, "wrong", "--function-name", "hello", "--payload", "{}")
    assert r.returncode != 0
    assert "InvalidSignatureException" in r.stderr
    assert "The request signature we calculated does not match" in r.stderr
    r, _ = aws(b, tmp_path, "AKIDUNKNOWN", SECRET, "--function-name", "hello")
    assert r.returncode != 0 and "UnrecognizedClientException" in r.stderr
    assert b.hello.count() == 0


@needs_aws
def test_awscli_event_and_dry_run_signed(b, tmp_path):
    r, _ = aws(b, tmp_path, KEY, SECRET, "--function-name", "hello",
               "--invocation-type", "Event", "--payload", "{}")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["StatusCode"] == 202
    r, _ = aws(b, tmp_path, KEY, SECRET, "--function-name", "hello",
               "--invocation-type", "DryRun")
    assert r.returncode == 0 and json.loads(r.stdout)["StatusCode"] == 204


def sign(method, url, body, key=KEY, secret=SECRET, when=None, extra=None):
    """An independent SigV4 signer (hashlib, hmac) for requests urllib sends."""
    u = urllib.parse.urlsplit(url)
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": u.netloc, "x-amz-date": amz, **(extra or {})}
    names = sorted(headers)
    canonical = "\n".join([method, urllib.parse.quote(u.path, safe="/~"), u.query,
                           "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names),
                           hashlib.sha256(body.encode()).hexdigest()])
    scope = f"{amz[:8]}/us-east-1/lambda/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz[:8], "us-east-1", "lambda", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    out = {"X-Amz-Date": amz, **(extra or {}),
           "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={sig}"}
    return out


def aws_error(status, headers, body):
    doc = json.loads(body)
    return status, headers.get("x-amzn-ErrorType"), doc.get("Message")


def test_unsigned_is_403_missing_token(b):
    url = b.admin + INVOKE.format("hello")
    status, etype, msg = aws_error(*http_request("POST", url, "{}"))
    assert (status, etype) == (403, "MissingAuthenticationTokenException")
    assert msg.startswith("Missing Authentication Token")
    status, etype, _ = aws_error(*http_request("POST", url, "{}",
                                               {"Authorization": "Bearer x"}))
    assert (status, etype) == (403, "MissingAuthenticationTokenException")
    assert b.hello.count() == 0


def test_independent_signer_is_accepted(b):
    url = b.admin + INVOKE.format(urllib.parse.quote(ARN.format("hello"), safe=""))
    url += "?Qualifier=%24LATEST"
    h = sign("POST", url, '{"a":1}', extra={"x-amz-invocation-type": "RequestResponse"})
    status, _, body = http_request("POST", url, '{"a":1}', h)
    assert status == 200, body
    assert b.hello.count() == 1


def test_stale_and_future_requests_are_refused(b):
    url = b.admin + INVOKE.format("hello")
    now = datetime.datetime.now(datetime.timezone.utc)
    old = sign("POST", url, "{}", when=now - datetime.timedelta(minutes=6))
    status, etype, msg = aws_error(*http_request("POST", url, "{}", old))
    assert (status, etype) == (403, "InvalidSignatureException")
    assert msg.startswith("Signature expired: ") and "- 5 min.)" in msg
    new = sign("POST", url, "{}", when=now + datetime.timedelta(minutes=6))
    status, etype, msg = aws_error(*http_request("POST", url, "{}", new))
    assert (status, etype) == (403, "InvalidSignatureException")
    assert msg.startswith("Signature not yet current: ")
    assert b.hello.count() == 0


def test_tampered_body_and_malformed_header(b):
    url = b.admin + INVOKE.format("hello")
    h = sign("POST", url, '{"a":1}')
    status, etype, _ = aws_error(*http_request("POST", url, '{"a":2}', h))
    assert (status, etype) == (403, "InvalidSignatureException")
    h["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDTEST/2024/us-east-1/lambda"
    status, etype, msg = aws_error(*http_request("POST", url, "{}", h))
    assert (status, etype) == (400, "IncompleteSignatureException")
    assert "Credential" in msg
    assert b.hello.count() == 0


def test_bearer_token_still_works_beside_credentials(triggerd, function_server):
    hello = function_server()
    t = triggerd(b_config(hello.url).replace("admin = {", 'admin = { token = "tok";'),
                 name="b", start=False)
    auth = {"Authorization": "Bearer tok"}

    def up(path):
        try:
            return http_request("GET", t.admin + path, headers=auth, timeout=1)[0] == 200
        except OSError:
            return False
    t.healthy = lambda: up("/healthz")
    t.ready = lambda: up("/readyz")
    t.start()
    url = t.admin + INVOKE.format("hello")
    assert http_request("POST", url, "{}", auth)[0] == 200
    assert http_request("POST", url, "{}", sign("POST", url, "{}"))[0] == 200
    assert http_request("POST", url, "{}", {"Authorization": "Bearer no"})[0] == 403

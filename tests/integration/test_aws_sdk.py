"""The AWS SDK for JavaScript v3 (@aws-sdk/client-lambda, pinned in
tests/integration/node/package-lock.json) against triggerd's Lambda Invoke API:
RequestResponse, Event, DryRun, LogType Tail, a function error, an unknown function,
with and without admin.credentials (then the SDK's SigV4 signature is verified: right
and wrong secret).

The SDK is installed with `npm ci` outside the tracked files, once per lock file
(conftest.npm_install). The tests skip, saying why, only when the npm registry cannot be
reached; any other install failure fails them.
"""
import json
import os
import shutil

import pytest

from conftest import npm_install, run

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SRC = os.path.join(HERE, "node")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH",
               "ECONNRESET", "network request", "getaddrinfo")


def install_sdk():
    """The folder with node_modules and invoke.js (conftest.npm_install)."""
    dest = npm_install(NODE_SRC, "aws-sdk", "@aws-sdk%2fclient-lambda")
    shutil.copy(os.path.join(NODE_SRC, "invoke.js"), dest)
    return dest


@pytest.fixture(scope="module")
def sdk():
    return install_sdk()


def sdk_invoke(sdk_dir, t, **options):
    r = run(["node", os.path.join(sdk_dir, "invoke.js"), t.admin, json.dumps(options)],
            cwd=sdk_dir, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def config(hello_url, credentials=False):
    creds = 'admin = { credentials = { AKIDTEST = "secret"; }; };' if credentials else ""
    return f"""
{creds}
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = (
  {{ name = "hello"; kind = "http"; url = "{hello_url}"; timeout = "5s"; }},
  {{ name = "failing"; kind = "http"; url = "http://127.0.0.1:9/"; timeout = "5s"; }}
);
triggers = ( {{ name = "t"; sources = ["in"]; function = "hello"; }} );
"""


@pytest.fixture(params=[False, True], ids=["open", "signed"])
def server(request, triggerd, function_server):
    hello = function_server()
    t = triggerd(config(hello.url, credentials=request.param))
    t.hello = hello
    return t


def test_request_response(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="hello", Payload='{"x": 1}')
    assert r["ok"], r
    assert r["StatusCode"] == 200 and r["FunctionError"] is None
    assert r["ExecutedVersion"] == "$LATEST"
    assert json.loads(r["Payload"]) == {"echo": '{"x": 1}'}
    assert server.hello.requests[0]["body"] == b'{"x": 1}'


def test_arn_with_qualifier(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName=ARN.format("hello"), Qualifier="$LATEST",
                   Payload="{}")
    assert r["ok"], r
    assert r["StatusCode"] == 200


def test_event(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="hello", InvocationType="Event",
                   Payload='{"e": 1}')
    assert r["ok"], r
    assert r["StatusCode"] == 202
    server.hello.wait_count(1)


def test_dry_run(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="hello", InvocationType="DryRun")
    assert r["ok"], r
    assert r["StatusCode"] == 204
    assert server.hello.count() == 0


def test_log_tail(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="hello", LogType="Tail", Payload="{}")
    assert r["ok"], r
    assert r["LogResult"].startswith("START RequestId: ")
    assert "REPORT RequestId: " in r["LogResult"]


def test_function_error(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="failing", Payload="{}")
    assert r["ok"], r
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    doc = json.loads(r["Payload"])
    assert doc["errorType"] and doc["errorMessage"]


def test_unknown_function(sdk, server):
    r = sdk_invoke(sdk, server, FunctionName="nope", Payload="{}")
    assert not r["ok"]
    assert r["name"] == "ResourceNotFoundException"
    assert r["httpStatusCode"] == 404
    assert "nope" in r["message"]


def test_wrong_secret_is_refused_when_signed(sdk, triggerd, function_server):
    hello = function_server()
    t = triggerd(config(hello.url, credentials=True))
    r = sdk_invoke(sdk, t, FunctionName="hello", Payload="{}", secretAccessKey="wrong")
    assert not r["ok"]
    assert r["name"] == "InvalidSignatureException" and r["httpStatusCode"] == 403
    r = sdk_invoke(sdk, t, FunctionName="hello", Payload="{}", accessKeyId="AKIDOTHER")
    assert not r["ok"]
    assert r["name"] == "UnrecognizedClientException" and r["httpStatusCode"] == 403
    assert hello.count() == 0

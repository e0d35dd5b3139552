"""The shipped runtimes of the process kind (functions/runtimes/python3, nodejs) and
`runtime = "provided"` with AWS's own Node.js runtime interface client (npm
aws-lambda-ric): triggerd as a real process, invoked through the Lambda Invoke API on
its admin listener and through a sync webhook. The handlers are in
tests/integration/functions/runtime_*/ and examples/functions/.

The aws-lambda-ric test installs the package from the npm registry once per
package-lock.json (conftest.npm_install: outside the tracked files; the native build
takes minutes) and skips only when the registry cannot be reached."""
import base64
import json
import os
import shutil

import pytest

from conftest import ROOT, http_request, npm_install, run, wait_for

INVOKE = "/2015-03-31/functions/{}/invocations"
HERE = os.path.dirname(os.path.abspath(__file__))
FUNCS = os.path.join(HERE, "functions")
EXAMPLES = os.path.join(ROOT, "examples", "functions")
RUNTIMES = os.path.join(ROOT, "functions", "runtimes")
ENV = {"TRIGGERD_RUNTIME_DIR": RUNTIMES}


def process_fn(name, runtime, code, handler, extra=""):
    return (f'{{ name = "{name}"; kind = "process"; runtime = "{runtime}"; code = "{code}"; '
            f'handler = "{handler}"; timeout = "10s"; {extra} }}')


def config(*functions):
    """A configuration with the functions and a sync webhook /hook to the first one."""
    listed = ",\n  ".join(functions)
    first = functions[0].split('"')[1]
    return f"""
sources = ( {{ name = "hook"; kind = "webhook"; path = "/hook"; format = "raw"; }} );
functions = (
  {listed}
);
triggers = ( {{ name = "t"; sources = ["hook"]; function = "{first}"; invocation = "sync"; }} );
"""


def invoke(t, name, payload=None, headers=None):
    body = json.dumps(payload if payload is not None else {})
    status, h, out = http_request("POST", t.admin + INVOKE.format(name), body, headers or {},
                                  timeout=30)
    return status, h, out


def ok(t, name, payload=None):
    status, headers, body = invoke(t, name, payload)
    assert status == 200, body
    assert "X-Amz-Function-Error" not in headers, body
    return json.loads(body)


def function_error(t, name, payload=None):
    status, headers, body = invoke(t, name, payload)
    assert status == 200, body
    assert headers.get("X-Amz-Function-Error") == "Unhandled", (headers, body)
    return json.loads(body)


# ---- Python ----

PY = os.path.join(FUNCS, "runtime_python")


def py(name, handler, extra=""):
    return process_fn(name, "python3", PY, "handlers." + handler, extra)


def test_python_context_fields_and_warm_reuse(triggerd):
    t = triggerd(config(py("pyctx", "context_fields", 'memory_mb = 256;')), env=ENV)
    first = ok(t, "pyctx", {"order": 1, "items": ["a", "b"]})
    second = ok(t, "pyctx", {"order": 2})
    assert first["event"] == {"order": 1, "items": ["a", "b"]}
    assert second["event"] == {"order": 2}
    for doc in (first, second):
        assert doc["function_name"] == "pyctx"
        assert doc["function_version"] == "$LATEST"
        assert doc["invoked_function_arn"].startswith("arn:aws:lambda:")
        assert doc["invoked_function_arn"].endswith(":function:pyctx")
        assert doc["memory_limit_in_mb"] == "256"  # a string, as on Lambda
        assert len(doc["aws_request_id"]) == 36
        assert doc["log_group_name"] == "/aws/lambda/pyctx"
        assert doc["log_stream_name"]
        assert 0 < doc["remaining"] <= 10000
        assert doc["trace_id"].startswith("Root=1-")
        assert doc["task_root"] == PY and doc["cwd"] == PY
        assert doc["tz"] == ":UTC"
        assert doc["region"]
        assert doc["identity_id"] is None and doc["client_custom"] is None
    assert first["aws_request_id"] != second["aws_request_id"]
    assert first["pid"] == second["pid"]  # one warm process served both
    # the Invoke API's request id is the one the handler sees, as on AWS Lambda
    status, headers, body = invoke(t, "pyctx", {"order": 3})
    assert status == 200 and headers["x-amzn-RequestId"] == json.loads(body)["aws_request_id"]


def test_python_remaining_time_decreases(triggerd):
    t = triggerd(config(py("pyrem", "remaining")), env=ENV)
    doc = ok(t, "pyrem", {"sleep_ms": 300})
    assert 9000 < doc["before"] <= 10000
    assert 250 <= doc["before"] - doc["after"] < 2000


def test_python_exception_shape(triggerd):
    t = triggerd(config(py("pyfail", "fail")), env=ENV)
    err = function_error(t, "pyfail", {"order": 42})
    assert err["errorType"] == "OrderError"
    assert err["errorMessage"] == "order 42 is not valid"
    trace = err["stackTrace"]
    assert isinstance(trace, list) and len(trace) == 2, trace
    assert all(isinstance(line, str) for line in trace)
    assert 'handlers.py", line' in trace[0] and "in fail" in trace[0]
    assert "in check_order" in trace[1] and "raise OrderError" in trace[1]
    assert not any("triggerd_runtime" in line for line in trace)
    # The process survives a handler exception.
    assert function_error(t, "pyfail", {"order": 43})["errorMessage"] == "order 43 is not valid"


def test_python_result_that_is_not_json(triggerd):
    t = triggerd(config(py("pyset", "not_serializable"), py("pynone", "noop")), env=ENV)
    err = function_error(t, "pyset")
    assert err["errorType"] == "Runtime.MarshalError"
    assert "set is not JSON serializable" in err["errorMessage"]
    assert ok(t, "pynone") is None


def test_python_print_lines_reach_the_log(triggerd):
    t = triggerd(config(py("pylog", "log_lines")), env=ENV)
    status, headers, body = invoke(t, "pylog", {}, {"X-Amz-Log-Type": "Tail"})
    assert status == 200 and json.loads(body) == "logged"
    tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
    assert "line one" in tail and "line two" in tail
    assert tail.index("line one") < tail.index("line two")
    wait_for(lambda: "line two" in t.log(), 5, what="the handler's print in triggerd's log")


@pytest.mark.parametrize("code, error_type, words", [
    ("runtime_python_import_error", "Runtime.ImportModuleError",
     ["Unable to import module 'lambda_function'", "triggerd_no_such_module"]),
    ("runtime_python_no_handler", "Runtime.HandlerNotFound",
     ["Handler 'lambda_handler' missing on module 'lambda_function'"]),
])
def test_python_init_errors(triggerd, code, error_type, words):
    fn = process_fn("pyinit", "python3", os.path.join(FUNCS, code),
                    "lambda_function.lambda_handler")
    t = triggerd(config(fn), env=ENV)
    for _ in range(2):  # every invocation retries the start, and fails the same way
        err = function_error(t, "pyinit")
        assert err["errorType"] == error_type, err
        for w in words:
            assert w in err["errorMessage"], err


# ---- Node.js ----

NODE = os.path.join(FUNCS, "runtime_node")


def node(name, handler, code=NODE, extra=""):
    return process_fn(name, "nodejs", code, handler, extra)


def test_node_async_handler_context_fields(triggerd):
    t = triggerd(config(node("nodectx", "index.contextFields", extra="memory_mb = 512;")),
                 env=ENV)
    first = ok(t, "nodectx", {"order": 1})
    second = ok(t, "nodectx", {"order": 2})
    assert (first["event"], second["event"]) == ({"order": 1}, {"order": 2})
    for doc in (first, second):
        assert doc["functionName"] == "nodectx"
        assert doc["functionVersion"] == "$LATEST"
        assert doc["invokedFunctionArn"].endswith(":function:nodectx")
        assert doc["memoryLimitInMB"] == "512"
        assert len(doc["awsRequestId"]) == 36
        assert doc["logGroupName"] == "/aws/lambda/nodectx"
        assert doc["logStreamName"]
        assert 0 < doc["remaining"] <= 10000
        assert doc["callbackWaitsForEmptyEventLoop"] is True
        assert doc["traceId"].startswith("Root=1-")
        assert doc["taskRoot"] == NODE and doc["cwd"] == NODE
        assert doc["identityId"] is None and doc["clientCustom"] is None
    assert first["awsRequestId"] != second["awsRequestId"]
    assert first["pid"] == second["pid"]


def test_node_remaining_time_decreases(triggerd):
    t = triggerd(config(node("noderem", "index.remaining")), env=ENV)
    doc = ok(t, "noderem", {"sleep_ms": 300})
    assert 9000 < doc["before"] <= 10000
    assert 250 <= doc["before"] - doc["after"] < 2000


def test_node_handler_styles(triggerd):
    esm_js = os.path.join(FUNCS, "runtime_node_esm")
    t = triggerd(config(
        node("cb", "callback.callback"),
        node("waits", "callback.waits"),
        node("nowait", "callback.noWait"),
        node("succeed", "callback.succeed"),
        node("nothing", "callback.nothing"),
        node("nested", "index.nested.deeper.handler"),
        node("esmjs", "app.handler", code=esm_js),
    ), env=ENV)
    assert ok(t, "cb", {"k": 1}) == {"style": "callback", "got": {"k": 1}}
    # callback() with callbackWaitsForEmptyEventLoop: the answer waits for the timer...
    assert ok(t, "waits") == {"timerRanBeforeCallback": False}
    wait_for(lambda: "timer after callback ran" in t.log(), 5, what="the timer's log line")
    # ...and without it the answer does not wait for a 2 s timer.
    assert ok(t, "nowait")["answeredAfterMs"] < 1000
    assert ok(t, "succeed") == {"via": "succeed"}
    assert ok(t, "nothing") is None
    assert ok(t, "nested") == "nested export"
    assert ok(t, "esmjs", {"x": 1}) == {"module": "esm-js", "file": "app.js", "event": {"x": 1}}


@pytest.mark.parametrize("handler, error_type, message, frame", [
    ("index.fail", "OrderError", "order 7 is not valid", "at checkOrder"),
    ("index.failSync", "OrderError", "order 7 is not valid", "at checkOrder"),
    ("callback.callbackError", "TypeError", "callback error", "callback.js:"),
    ("callback.failCtx", "Error", "failed via context.fail", "callback.js:"),
])
def test_node_exception_shape(triggerd, handler, error_type, message, frame):
    t = triggerd(config(node("nodefail", handler)), env=ENV)
    err = function_error(t, "nodefail")
    assert err["errorType"] == error_type
    assert err["errorMessage"] == message
    trace = err["stackTrace"]
    assert trace == err["trace"]  # AWS's Node.js runtime names it trace
    assert trace[0] == f"{error_type}: {message}"
    assert any(frame in line for line in trace[1:]), trace
    assert not any("runtimes/nodejs/bootstrap" in line for line in trace)


def test_node_errors_that_are_not_error_objects(triggerd):
    t = triggerd(config(node("rej", "index.rejectString"), node("big", "index.notSerializable")),
                 env=ENV)
    err = function_error(t, "rej")
    assert (err["errorType"], err["errorMessage"], err["stackTrace"]) == ("string", "plain string", [])
    err = function_error(t, "big")
    assert err["errorType"] == "Runtime.MarshalError"
    assert "BigInt" in err["errorMessage"]


def test_node_uncaught_exception_fails_the_invocation_and_restarts(triggerd):
    t = triggerd(config(node("uncaught", "callback.uncaught")), env=ENV)
    for _ in range(2):  # the process ends after each; the next invocation starts a new one
        err = function_error(t, "uncaught")
        assert err["errorType"] == "RangeError"
        assert err["errorMessage"] == "thrown from a timer"


@pytest.mark.parametrize("code, handler, error_type, words", [
    ("runtime_node_import_error", "index.handler", "Runtime.ImportModuleError",
     ["Cannot find module 'triggerd-no-such-package'"]),
    ("runtime_node", "index.missing", "Runtime.HandlerNotFound",
     ["index.missing is undefined or not exported"]),
    ("runtime_node", "nosuchfile.handler", "Runtime.ImportModuleError",
     ["Cannot find module 'nosuchfile'"]),
])
def test_node_init_errors(triggerd, code, handler, error_type, words):
    t = triggerd(config(node("nodeinit", handler, code=os.path.join(FUNCS, code))), env=ENV)
    err = function_error(t, "nodeinit")
    assert err["errorType"] == error_type, err
    for w in words:
        assert w in err["errorMessage"], err


# ---- the examples ----

def test_hello_example_invoke_and_webhook(triggerd):
    hello = process_fn("hello", "python3", os.path.join(EXAMPLES, "hello"),
                       "lambda_function.lambda_handler")
    t = triggerd(config(hello), env=ENV)
    doc = ok(t, "hello", {"x": 1})
    assert doc["message"] == "Hello from triggerd"
    assert doc["event"] == {"x": 1}
    assert doc["function"] == "hello"
    # The sync webhook: a function URL request event in, a function URL response out.
    status, headers, body = http_request("POST", t.webhook + "/hook?name=ada",
                                         '{"hello": "world"}',
                                         {"Content-Type": "application/json"}, timeout=30)
    assert status == 200, body
    assert headers.get("Content-Type", headers.get("content-type")) == "application/json"
    doc = json.loads(body)
    assert doc["message"] == "Hello from triggerd"
    assert doc["event"]["method"] == "POST"
    assert doc["event"]["path"] == "/hook"
    assert doc["event"]["query"] == {"name": "ada"}
    assert doc["event"]["body"] == {"hello": "world"}
    # The cron-style EventBridge event or any other payload is echoed as it came.
    doc = ok(t, "hello", {"version": "0", "detail-type": "Scheduled Event", "detail": {}})
    assert doc["event"]["detail-type"] == "Scheduled Event"


def test_hello_node_example(triggerd):
    fn = process_fn("hellonode", "nodejs", os.path.join(EXAMPLES, "hello-node"), "index.handler")
    t = triggerd(config(fn), env=ENV)
    doc = ok(t, "hellonode", {"x": 1})
    assert doc["message"] == "Hello from triggerd (Node.js)"
    assert doc["event"] == {"x": 1}
    status, _, body = http_request("POST", t.webhook + "/hook", "plain text",
                                   {"Content-Type": "text/plain"}, timeout=30)
    assert status == 200, body
    assert json.loads(body)["event"]["body"] == "plain text"
    # A form body arrives base64-encoded (isBase64Encoded); the example decodes it.
    status, _, body = http_request("POST", t.webhook + "/hook", "a=1&b=2",
                                   {"Content-Type": "application/x-www-form-urlencoded"},
                                   timeout=30)
    assert status == 200, body
    assert json.loads(body)["event"]["body"] == "a=1&b=2"


# ---- provided: AWS's runtime interface client ----

RIC_EXAMPLE = os.path.join(EXAMPLES, "ric-node")


@pytest.fixture(scope="session")
def ric_modules():
    """node_modules of examples/functions/ric-node (conftest.npm_install)."""
    return os.path.join(npm_install(RIC_EXAMPLE, "ric-node", "aws-lambda-ric"), "node_modules")


def test_provided_runtime_with_aws_lambda_ric(triggerd, ric_modules, tmp_path):
    code = tmp_path / "ric-node"
    shutil.copytree(RIC_EXAMPLE, code, ignore=shutil.ignore_patterns("node_modules"))
    os.symlink(ric_modules, code / "node_modules")
    t = triggerd(config(process_fn("ric", "provided", str(code), "index.handler"),
                        process_fn("ricfail", "provided", str(code), "index.fail")), env=ENV)
    first = ok(t, "ric", {"x": 1})
    assert first["message"] == "Hello from aws-lambda-ric under triggerd"
    assert first["functionName"] == "ric"
    assert first["event"] == {"x": 1}
    assert 0 < first["remainingMs"] <= 10000
    second = ok(t, "ric", {"x": 2})
    assert second["event"] == {"x": 2} and second["requestId"] != first["requestId"]
    err = function_error(t, "ricfail")
    assert err["errorType"] == "TypeError"
    assert err["errorMessage"] == "thrown under aws-lambda-ric"


def test_client_context_reaches_the_handler(triggerd):
    t = triggerd(config(py("pycc", "context_fields")), env=ENV)
    cc = base64.b64encode(json.dumps({"custom": {"tenant": "acme"}, "env": {"os": "x"}})
                          .encode()).decode()
    status, _, body = invoke(t, "pycc", {"x": 1}, {"X-Amz-Client-Context": cc})
    assert status == 200, body
    assert json.loads(body)["client_custom"] == {"tenant": "acme"}
    # not base64 of a JSON object: refused as AWS does
    for bad in ("%%%", base64.b64encode(b"[1]").decode(), "x" * 4000):
        status, headers, body = invoke(t, "pycc", {}, {"X-Amz-Client-Context": bad})
        assert status == 400, body
        assert headers["x-amzn-ErrorType"].startswith("InvalidRequestContentException")

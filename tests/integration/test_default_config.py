"""The embedded default configuration (what `make run` starts) does what the README
says: the demo webhook answers with the greeting of the Python handler `hello` (a process
function behind the Lambda Runtime API), the cron tick reaches the same handler, and the
README's `aws lambda invoke` line calls it. Also: JSON-lines logging for machines."""
import json
import os
import subprocess

from conftest import ROOT, http_request, wait_for

AWS = "/usr/bin/aws"


def usage_of(t, name):
    status, _, body = http_request("GET", t.admin + "/v1/usage")
    assert status == 200
    return next(f for f in json.loads(body) if f["name"] == name)


def test_make_run_configuration_answers_the_readme_curl(triggerd, tmp_path):
    with open(f"{ROOT}/config/triggerd.cfg") as f:
        text = f.read()
    # the file names the example's code relative to itself
    text = text.replace('"../examples/functions/hello"', f'"{ROOT}/examples/functions/hello"')
    t = triggerd(text)
    status, headers, body = http_request("POST", t.webhook + "/hooks/demo",
                                         '{"hello": "world"}',
                                         {"Content-Type": "application/json"})
    assert status == 200, body
    assert headers.get("Content-Type", headers.get("content-type", "")).startswith(
        "application/json")
    answer = json.loads(body)
    assert answer["message"] == "Hello from triggerd"
    assert answer["function"] == "hello"
    assert answer["event"]["method"] == "POST"
    assert answer["event"]["path"] == "/hooks/demo"
    assert answer["event"]["body"] == {"hello": "world"}
    # the cron source ticks every 10 s into the same function, asynchronously
    wait_for(lambda: usage_of(t, "hello")["requests"] >= 2, 15,
             what="a cron tick invoking hello")
    status, _, _ = http_request("GET", t.admin + "/readyz")
    assert status == 200
    # the README's aws lambda invoke line
    if os.path.exists(AWS):
        out = tmp_path / "out.json"
        env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
        r = subprocess.run([AWS, "lambda", "invoke", "--endpoint-url", t.admin,
                            "--function-name", "hello", "--payload", '{"x":1}',
                            "--cli-binary-format", "raw-in-base64-out", str(out)],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["StatusCode"] == 200
        result = json.loads(out.read_text())
        assert result["message"] == "Hello from triggerd" and result["event"] == {"x": 1}


def test_json_log_format_writes_one_json_object_a_line(triggerd, function_server):
    fn = function_server()
    t = triggerd(f"""
log = {{ level = "info"; format = "json"; }};
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync"; }} );
""")
    http_request("POST", t.webhook + "/in", "{}")
    wait_for(lambda: "REPORT" in t.log(), 5, what="a REPORT line")
    lines = [line for line in t.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "msg"} <= set(r) for r in records)
    report = [r for r in records if r["msg"].startswith("REPORT RequestId:")]
    assert report and report[0]["scope"] == "http:fn"
    assert "Billed Duration: " in report[0]["msg"]

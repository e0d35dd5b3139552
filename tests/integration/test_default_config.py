"""The embedded default configuration (what `make run` starts) does what the README
says: the demo webhook answers with the event triggerd made, and the cron tick is
logged. Also: JSON-lines logging for machines."""
import json

from conftest import ROOT, http_request, wait_for


def test_make_run_configuration_answers_the_readme_curl(triggerd):
    with open(f"{ROOT}/config/triggerd.cfg") as f:
        text = f.read()
    t = triggerd(text)
    status, headers, body = http_request("POST", t.webhook + "/hooks/demo",
                                         '{"hello": "world"}',
                                         {"Content-Type": "application/json"})
    assert status == 200
    event = json.loads(body)
    assert event["specversion"] == "1.0"
    assert event["type"] == "triggerd.webhook.request"
    assert event["subject"] == "/hooks/demo"
    assert event["data"] == {"hello": "world"}
    # the cron source ticks every 10 s into the same function, asynchronously
    wait_for(lambda: "triggerd.cron.tick" in t.log(), 15, what="a cron tick in the log")
    status, _, _ = http_request("GET", t.admin + "/readyz")
    assert status == 200


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

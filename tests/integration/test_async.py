"""Async invocation: retries with backoff, dead letters, the durable queue across
kill -9, and SIGHUP reloads."""
import json
import signal
import threading
import time

from conftest import http_request, wait_for


def async_config(fn_url, dlq, retries=2, concurrency=64, extra=""):
    return f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; timeout = "2s";
                concurrency = {concurrency}; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "async";
               retries = {retries}; backoff = {{ base = "100ms"; cap = "1s"; }};
               on_failure = "file:{dlq}"; {extra} }} );
"""


def test_failing_function_is_retried_then_dead_lettered(triggerd, function_server, tmp_path):
    fn = function_server(lambda req: (503, {"Content-Type": "text/plain"}, b"down"))
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(async_config(fn.url, dlq, retries=2))
    status, _, body = http_request("POST", t.webhook + "/in", '{"job": 1}',
                                   {"Content-Type": "application/json"})
    assert status == 202
    event_id = json.loads(body)["ids"][0]
    wait_for(lambda: dlq.exists() and dlq.read_text().strip(), 15, what="a dead letter")
    assert fn.count() == 3  # the first attempt and two retries
    times = [r["time"] for r in fn.requests]
    assert times[1] - times[0] >= 0.0 and times[2] - times[1] >= 0.0
    record = json.loads(dlq.read_text().strip().split("\n")[0])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["function"] == "fn"
    assert record["requestContext"]["trigger"] == "t"
    assert record["requestPayload"]["id"] == event_id
    assert record["requestPayload"]["data"] == {"job": 1}
    assert "503" in record["error"]
    _, _, metrics = http_request("GET", t.admin + "/metrics")
    assert 'triggerd_retries_total{function="fn"} 2' in metrics.decode()
    assert 'triggerd_dead_lettered_total{function="fn"} 1' in metrics.decode()


def test_client_error_is_not_retried(triggerd, function_server, tmp_path):
    fn = function_server(lambda req: (400, {}, b"bad"))
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(async_config(fn.url, dlq, retries=2))
    http_request("POST", t.webhook + "/in", "{}")
    wait_for(lambda: dlq.exists() and dlq.read_text().strip(), 10, what="a dead letter")
    record = json.loads(dlq.read_text())
    assert record["requestContext"]["condition"] == "PermanentError"
    assert fn.count() == 1


def test_recovers_from_a_flaky_function(triggerd, function_server, tmp_path):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return (500, {}, b"") if calls["n"] == 1 else (200, {}, b"ok")

    fn = function_server(flaky)
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(async_config(fn.url, dlq))
    http_request("POST", t.webhook + "/in", "{}")
    fn.wait_count(2)
    time.sleep(0.3)
    assert fn.count() == 2
    assert not dlq.exists() or dlq.read_text() == ""


def test_kill_9_with_1000_queued_events_loses_none(triggerd, function_server, tmp_path):
    gate = threading.Event()
    seen = set()
    lock = threading.Lock()

    def slow(req):
        gate.wait(30)
        with lock:
            seen.add(req["headers"]["ce-id"])
        return 200, {}, b"ok"

    fn = function_server(slow)
    dlq = tmp_path / "dead.jsonl"
    cfg = async_config(fn.url, dlq, concurrency=4)
    t = triggerd(cfg, name="first")
    accepted = []
    for i in range(1000):
        status, _, body = http_request("POST", t.webhook + "/in", json.dumps({"i": i}),
                                       {"Content-Type": "application/json"})
        assert status == 202
        accepted.extend(json.loads(body)["ids"])
    assert len(set(accepted)) == 1000
    t.kill9()
    gate.set()  # the function works again; a second triggerd on the same state dir
    t2 = triggerd(cfg, name="first", start=False)
    t2.state_dir = t.state_dir
    t2.webhook_port, t2.admin_port = t.webhook_port, t.admin_port
    t2.start()
    wait_for(lambda: set(accepted) <= seen, 60, what="every accepted event delivered")
    assert set(accepted) <= seen


def test_sighup_reloads_a_valid_file_and_refuses_an_invalid_one(triggerd, function_server,
                                                                tmp_path):
    fn = function_server()
    t = triggerd(f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync";
               pattern = "{{\\"data\\": {{\\"v\\": [1]}}}}"; }} );
""")
    status, _, _ = http_request("POST", t.webhook + "/in", '{"v": 2}',
                                {"Content-Type": "application/json"})
    assert status == 202  # no match
    t.config.write_text(t.config.read_text().replace("[1]", "[2]"))
    t.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in t.log(), 10, what="the reload")
    status, _, _ = http_request("POST", t.webhook + "/in", '{"v": 2}',
                                {"Content-Type": "application/json"})
    assert status == 200
    t.config.write_text(t.config.read_text().replace('kind = "http"', 'kind = "nope"'))
    t.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in t.log(), 10, what="the refusal")
    assert "nope" in t.log()
    status, _, _ = http_request("POST", t.webhook + "/in", '{"v": 2}',
                                {"Content-Type": "application/json"})
    assert status == 200  # the running configuration stays
    assert t.stop() == 0


def test_sigterm_drains_and_exits_0(triggerd, function_server):
    fn = function_server(lambda req: (time.sleep(0.5), (200, {}, b"late"))[1])
    t = triggerd(f"""
shutdown_grace = "5s";
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync"; }} );
""")
    result = {}
    th = threading.Thread(target=lambda: result.update(
        r=http_request("POST", t.webhook + "/in", "{}")))
    th.start()
    fn.wait_count(1)
    t.signal(signal.SIGTERM)
    th.join(10)
    assert result["r"][0] == 200 and result["r"][2] == b"late"
    assert t.proc.wait(10) == 0


def test_full_queue_answers_503_with_retry_after_and_loses_nothing(triggerd, function_server,
                                                                   tmp_path):
    gate = threading.Event()
    fn = function_server(lambda req: (gate.wait(30), (200, {}, b"ok"))[1])
    t = triggerd(f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; concurrency = 1;
                queue_max = 5; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "async"; }} );
""")
    answers = [http_request("POST", t.webhook + "/in", "{}") for _ in range(12)]
    accepted = [json.loads(b)["ids"][0] for s, _, b in answers if s == 202]
    refused = [(s, h) for s, h, _ in answers if s != 202]
    assert len(accepted) == 5
    assert refused and all(s == 503 and int(h["Retry-After"]) >= 1 for s, h in refused)
    gate.set()
    fn.wait_count(5)
    assert sorted(r["headers"]["ce-id"] for r in fn.requests) == sorted(accepted)


def test_sync_over_the_concurrency_limit_is_503(triggerd, function_server):
    gate = threading.Event()
    fn = function_server(lambda req: (gate.wait(30), (200, {}, b"ok"))[1])
    t = triggerd(f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; concurrency = 2; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "sync"; }} );
""")
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        http_request("POST", t.webhook + "/in", "{}")[0])) for _ in range(2)]
    for th in threads:
        th.start()
    fn.wait_count(2)
    status, headers, _ = http_request("POST", t.webhook + "/in", "{}")
    assert status == 503 and "Retry-After" in headers
    gate.set()
    for th in threads:
        th.join(10)
    assert results == [200, 200]

"""The http and log function kinds end to end: triggerd as a process, a webhook source in
front, real HTTP functions on loopback. What each format looks like to the function,
extra headers, outcomes (2xx, 4xx, 5xx, 408, 429 with Retry-After, timeouts, refused
connections) for sync and async triggers, connection reuse, and the log kind."""
import http.server
import json
import socket
import threading
import time

from conftest import free_port, http_request, wait_for


def config(fn_url, fmt="binary", invocation="sync", function_extra="", trigger_extra="",
           kind="http"):
    url = f'url = "{fn_url}"; format = "{fmt}";' if kind == "http" else ""
    return f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {{ name = "fn"; kind = "{kind}"; {url} {function_extra} }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "{invocation}";
               backoff = {{ base = "50ms"; cap = "200ms"; }}; {trigger_extra} }} );
"""


def post(t, body='{"order": 7}', headers=None):
    return http_request("POST", t.webhook + "/in", body,
                        headers if headers is not None else {"Content-Type": "application/json"})


def dead_letters(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- formats as the function receives them ----

def test_binary_mode_sends_ce_headers_and_the_payload(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url))
    status, _, _ = post(t, '{"order": 7}')
    assert status == 200
    req = fn.requests[0]
    h = req["headers"]
    assert req["method"] == "POST" and req["path"] == "/"
    assert h["ce-specversion"] == "1.0"
    assert h["ce-type"] == "triggerd.webhook.request"
    assert h["ce-source"]
    assert h["ce-id"]
    assert h["ce-subject"] == "/in"
    assert h["ce-httpmethod"] == "POST"
    assert h["content-type"] == "application/json"
    assert "expect" not in h
    assert req["body"] == b'{"order": 7}'


def test_binary_mode_without_a_body_sends_no_content_type(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url))
    status, _, _ = post(t, None, headers={})
    assert status == 200
    req = fn.requests[0]
    assert req["body"] == b""
    assert "content-type" not in req["headers"]
    assert req["headers"]["content-length"] == "0"


def test_structured_mode_sends_the_event_json(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, fmt="structured"))
    status, _, _ = post(t, '{"order": 7}')
    assert status == 200
    req = fn.requests[0]
    assert req["headers"]["content-type"] == "application/cloudevents+json"
    assert not [k for k in req["headers"] if k.startswith("ce-")]
    ev = json.loads(req["body"])
    assert ev["specversion"] == "1.0"
    assert ev["type"] == "triggerd.webhook.request"
    assert ev["subject"] == "/in"
    assert ev["datacontenttype"] == "application/json"
    assert ev["data"] == {"order": 7}


def test_data_mode_sends_only_the_payload(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, fmt="data"))
    status, _, _ = post(t, "a,b\n1,2\n", {"Content-Type": "text/csv"})
    assert status == 200
    req = fn.requests[0]
    assert not [k for k in req["headers"] if k.startswith("ce-")]
    assert req["headers"]["content-type"] == "text/csv"
    assert req["body"] == b"a,b\n1,2\n"


def test_extra_headers_are_sent_and_may_replace_the_kinds(triggerd, function_server):
    fn = function_server()
    t = triggerd(config(fn.url, function_extra="""
        headers = { Authorization = "Bearer ${FN_TOKEN}"; X-Team = "payments";
                    ce-source = "/replaced"; };"""), env={"FN_TOKEN": "t0ken"})
    status, _, _ = post(t)
    assert status == 200
    h = fn.requests[0]["headers"]
    assert h["authorization"] == "Bearer t0ken"
    assert h["x-team"] == "payments"
    assert h["ce-source"] == "/replaced"
    assert "t0ken" not in t.log()


# ---- sync results ----

def test_sync_answer_is_the_functions_status_type_and_body(triggerd, function_server):
    fn = function_server(lambda req: (201, {"Content-Type": "text/plain; charset=utf-8"},
                                      b"made " + req["headers"]["ce-id"].encode()))
    t = triggerd(config(fn.url))
    status, headers, body = post(t)
    assert status == 201
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"made " + fn.requests[0]["headers"]["ce-id"].encode()


def test_sync_timeout_answers_502_with_the_reason(triggerd, function_server):
    fn = function_server(lambda req: (time.sleep(1.5), (200, {}, b"late"))[1])
    t = triggerd(config(fn.url, function_extra='timeout = "300ms";'))
    started = time.monotonic()
    status, _, body = post(t)
    assert time.monotonic() - started < 1.4
    assert status == 502
    assert body and b"timed out after 0.30 s" in body
    assert "timed out after 0.30 s" in t.log()


def test_sync_refused_connection_answers_502(triggerd):
    port = free_port()
    t = triggerd(config(f"http://127.0.0.1:{port}/"))
    status, _, body = post(t)
    assert status == 502
    assert f"connection refused: http://127.0.0.1:{port}/".encode() in body


def test_sync_client_error_body_is_passed_on(triggerd, function_server):
    fn = function_server(lambda req: (422, {"Content-Type": "application/json"},
                                      b'{"field": "amount"}'))
    t = triggerd(config(fn.url))
    status, _, body = post(t)
    assert status == 502
    assert b"amount" in body
    assert fn.count() == 1


# ---- async outcomes: what is retried ----

def test_server_errors_and_408_are_retried_other_4xx_are_not(triggerd, function_server, tmp_path):
    for code, retried in ((500, True), (503, True), (408, True), (404, False), (409, False)):
        fn = function_server(lambda req, code=code: (code, {}, b""))
        dlq = tmp_path / f"dead-{code}.jsonl"
        t = triggerd(config(fn.url, invocation="async",
                            trigger_extra=f'retries = 1; on_failure = "file:{dlq}";'),
                     name=f"status-{code}")
        status, _, _ = post(t)
        assert status == 202
        wait_for(lambda: dead_letters(dlq), 15, what=f"the dead letter of HTTP {code}")
        record = dead_letters(dlq)[0]
        assert fn.count() == (2 if retried else 1), f"HTTP {code}"
        assert record["requestContext"]["condition"] == (
            "RetriesExhausted" if retried else "PermanentError")
        assert f"HTTP {code} from {fn.url}" in record["error"]
        assert record["responseContext"]["statusCode"] == code
        t.stop()


def test_a_slow_function_is_retried_after_its_timeout(triggerd, function_server, tmp_path):
    fn = function_server(lambda req: (time.sleep(1.0), (200, {}, b"late"))[1])
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(config(fn.url, invocation="async", function_extra='timeout = "200ms";',
                        trigger_extra=f'retries = 1; on_failure = "file:{dlq}";'))
    post(t)
    wait_for(lambda: dead_letters(dlq), 15, what="the dead letter")
    record = dead_letters(dlq)[0]
    assert fn.count() == 2
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["error"] == "timed out after 0.20 s"
    assert record["responsePayload"]["errorType"] == "TimeoutError"


def test_refused_connections_are_retried(triggerd, tmp_path):
    port = free_port()
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(config(f"http://127.0.0.1:{port}/", invocation="async",
                        trigger_extra=f'retries = 2; on_failure = "file:{dlq}";'))
    post(t)
    wait_for(lambda: dead_letters(dlq), 15, what="the dead letter")
    record = dead_letters(dlq)[0]
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["error"] == f"connection refused: http://127.0.0.1:{port}/"


def test_a_function_that_comes_back_gets_the_event(triggerd, tmp_path):
    """Connection refused first; then a server appears on the same port."""
    port = free_port()
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(config(f"http://127.0.0.1:{port}/", invocation="async",
                        trigger_extra=f'retries = 10; on_failure = "file:{dlq}";'))
    post(t, '{"late": true}')
    wait_for(lambda: "connection refused" in t.log(), 10, what="a refused attempt")
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: got, 15, what="the delivery")
        assert got[0] == b'{"late": true}'
        assert not dead_letters(dlq)
    finally:
        server.shutdown()
        server.server_close()


def test_429_is_throttled_and_retry_after_is_honoured(triggerd, function_server, tmp_path):
    def answer(req):
        n = len(fn.requests)
        if n == 1:
            return 429, {"Retry-After": "2"}, b"slow down"
        if n == 2:
            when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
            return 503, {"Retry-After": when}, b"still busy"
        return 200, {}, b"ok"

    fn = function_server(answer)
    dlq = tmp_path / "dead.jsonl"
    t = triggerd(config(fn.url, invocation="async",
                        trigger_extra=f'retries = 2; on_failure = "file:{dlq}";'))
    post(t)
    fn.wait_count(3, timeout=20)
    times = [r["time"] for r in fn.requests]
    assert times[1] - times[0] >= 1.9, times   # Retry-After: 2 (delta-seconds)
    assert times[2] - times[1] >= 0.9, times   # an HTTP-date about 2 s ahead (whole seconds)
    time.sleep(0.3)
    assert fn.count() == 3
    assert not dead_letters(dlq)


# ---- connections ----

class CountingServer:
    """An HTTP/1.1 function that counts the TCP connections it is called on."""

    def __init__(self):
        self.peers = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.peers.append(self.client_address)
                out = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                self.wfile.write(out)  # one write: no Nagle wait between head and body

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_calls_reuse_kept_alive_connections(triggerd):
    server = CountingServer()
    try:
        t = triggerd(config(server.url))
        for _ in range(30):
            status, _, body = post(t)
            assert (status, body) == (200, b"ok")
        assert len(server.peers) == 30
        assert len(set(server.peers)) == 1, set(server.peers)
    finally:
        server.stop()


def test_concurrent_calls_up_to_the_limit(triggerd, function_server):
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(req):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.3)
        with lock:
            active["now"] -= 1
        return 200, {}, b"ok"

    fn = function_server(slow)
    t = triggerd(config(fn.url, invocation="async", function_extra="concurrency = 4;"))
    for i in range(12):
        assert post(t, json.dumps({"i": i}))[0] == 202
    fn.wait_count(12, timeout=20)
    assert 1 < active["max"] <= 4, active


# ---- the log kind ----

def test_log_function_answers_with_the_event_and_logs_it(triggerd):
    t = triggerd(config(None, kind="log"))
    status, headers, body = post(t, '{\n  "hello": "world"\n}')
    assert status == 200
    assert headers["Content-Type"] == "application/cloudevents+json"
    ev = json.loads(body)
    assert ev["type"] == "triggerd.webhook.request"
    assert ev["subject"] == "/in"
    assert ev["data"] == {"hello": "world"}
    line = wait_for(lambda: [l for l in t.log().splitlines()
                             if f"[log:fn] event {ev['id']}: " in l], 5, what="the log line")[0]
    assert '"data":{"hello":"world"}' in line
    assert t.stop() == 0


def test_log_function_async(triggerd):
    t = triggerd(config(None, kind="log", invocation="async"))
    status, _, body = post(t, '{"n": 1}')
    assert status == 202
    event_id = json.loads(body)["ids"][0]
    wait_for(lambda: f"[log:fn] event {event_id}: " in t.log(), 10, what="the log line")

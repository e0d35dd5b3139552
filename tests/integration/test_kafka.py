"""The Kafka source end to end: triggerd as a process, real HTTP functions on loopback,
and a Kafka cluster that is librdkafka's MOCK cluster (tests/tools/mock_kafka, see
kafka_server.py): no Kafka broker package exists here, so every broker in these tests is
that mock, reached over TCP on loopback exactly as a real broker would be.

Scenarios: delivery with each ordering (a slow key holds back only what the ordering
says), batching by size and by window, regex topics and headers, a slow record holding
the committed offset back, poison records retried then dead-lettered to a Kafka topic
(whole, and bisected out of a batch), kafka:// destinations keeping key and headers,
backpressure from a full function queue, broker, topic and option errors with /readyz,
and the example configuration. The fault scenarios (kill -9, two instances) are in
test_kafka_faults.py.
"""
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import binary, free_port, http_request
from kafka_server import kafka_config, mock_kafka, wait_until  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

class Recorder:
    """An HTTP function that records the Kafka coordinates of what it receives."""

    def __init__(self, function_server, answer=None, delay=None):
        self.calls = []
        self.lock = threading.Lock()
        self.answer = answer
        self.delay = delay

        def respond(req):
            h = req["headers"]
            call = {"id": h.get("ce-id"), "type": h.get("ce-type"),
                    "partition": int(h.get("ce-kafkapartition", "-1")),
                    "offset": int(h.get("ce-kafkaoffset", "-1")),
                    "key": h.get("ce-subject"), "headers": h, "body": req["body"],
                    "start": time.monotonic()}
            if self.delay:
                time.sleep(self.delay(call))
            status, out = self.answer(call) if self.answer else (200, b'{"ok": 1}')
            call["end"] = time.monotonic()
            call["status"] = status
            with self.lock:
                self.calls.append(call)
            return status, {"Content-Type": "application/json"}, out

        self.server = function_server(respond)
        self.url = self.server.url

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def ids(self):
        return {c["id"] for c in self.snapshot()}

    def wait_ids(self, ids, timeout=30):
        wait_until(lambda: set(ids) <= self.ids(), timeout,
                   f"{len(ids)} records at the function")


def records(n, topic_partition=None, key=lambda i: f"k{i}", value=lambda i: {"i": i}):
    out = []
    for i in range(n):
        r = {"key": key(i), "value": json.dumps(value(i))}
        if topic_partition is not None:
            r["partition"] = topic_partition
        out.append(r)
    return out


@pytest.mark.parametrize("ordering", ["partition", "key", "none"])
def test_delivery_with_each_ordering(triggerd, function_server, mock_kafka, ordering):
    """One partition; key "slow" takes 1 s at the function. partition: everything in
    offset order; key: other keys pass the slow one, the slow key stays in order; none:
    even the two slow records run together."""
    kafka = mock_kafka({"orders": 1})
    fn = Recorder(function_server, delay=lambda c: 1.0 if c["key"] == "slow" else 0.0)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, group=f"g-{ordering}",
                              source=f'ordering = "{ordering}";'))
    keys = ["slow", "a", "b", "c", "slow", "a"]
    kafka.produce("orders", [{"partition": 0, "key": k, "value": json.dumps({"n": i})}
                             for i, k in enumerate(keys)])
    fn.wait_ids({f"orders-0-{i}" for i in range(6)}, 20)
    calls = {c["offset"]: c for c in fn.snapshot()}
    assert len(fn.snapshot()) == 6, "each record exactly once when nothing fails"
    for i, k in enumerate(keys):
        assert calls[i]["key"] == k
        assert calls[i]["type"] == "triggerd.kafka.record"
        assert json.loads(calls[i]["body"]) == {"n": i}
    if ordering == "partition":
        starts = [calls[i]["start"] for i in range(6)]
        assert starts == sorted(starts)
        for i in range(5):
            assert calls[i + 1]["start"] >= calls[i]["end"] - 0.01, f"{i + 1} overlapped {i}"
    elif ordering == "key":
        assert calls[1]["start"] < calls[0]["end"] - 0.5, "key a waited for key slow"
        assert calls[4]["start"] >= calls[0]["end"] - 0.01, "slow@4 passed slow@0"
        assert calls[5]["start"] >= calls[1]["end"] - 0.01, "a@5 passed a@1"
    else:
        assert calls[4]["start"] < calls[0]["end"] - 0.5, "none ran the slow ones in turn"
    wait_until(lambda: kafka.all_committed(f"g-{ordering}", "orders"), 10,
               "offsets committed to the log end")
    assert t.stop() == 0


def test_batching_by_size_and_by_window(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 1})
    fn = Recorder(function_server)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url,
                              source='batch_size = 5; batch_window = "1s";'))
    produced = time.monotonic()
    kafka.produce("orders", records(12, 0))
    wait_until(lambda: sum(len(json.loads(c["body"])) for c in fn.snapshot()) >= 12, 15,
               "12 records in batches")
    calls = sorted(fn.snapshot(), key=lambda c: c["start"])
    sizes = [len(json.loads(c["body"])) for c in calls]
    assert sizes == [5, 5, 2], sizes
    for c in calls:
        assert c["type"] == "triggerd.kafka.batch"
        assert c["headers"]["content-type"] == "application/json"
    first, last = calls[0], calls[-1]
    assert first["id"] == "orders-0-0..4"
    assert first["headers"]["ce-kafkacount"] == "5"
    assert first["headers"]["ce-kafkalastoffset"] == "4"
    events = json.loads(first["body"])
    assert [e["id"] for e in events] == [f"orders-0-{i}" for i in range(5)]
    assert [e["data"] for e in events] == [{"i": i} for i in range(5)]
    assert [e["subject"] for e in events] == [f"k{i}" for i in range(5)]
    # Full batches go at once; the last two wait for the window.
    assert first["start"] - produced < 5
    assert last["start"] - calls[1]["start"] >= 0.8, "the short batch did not wait"
    wait_until(lambda: kafka.committed("g", "orders")[0] == (12, 12), 10, "commit")

    # Window only: a big batch size, three records: one batch after the window.
    fn2 = Recorder(function_server)
    t2 = triggerd(kafka_config(kafka.bootstrap, fn2.url, group="g2",
                               source='batch_size = 100; batch_window = "500ms";'),
                  name="window")
    kafka.produce("orders", records(3, 0))
    wait_until(lambda: sum(len(json.loads(c["body"])) for c in fn2.snapshot()) >= 15, 15,
               "the second group reads all 15")
    sizes = [len(json.loads(c["body"])) for c in fn2.snapshot()]
    assert sum(sizes) == 15 and max(sizes) <= 100
    assert t.stop() == 0 and t2.stop() == 0


def test_regex_topics_and_headers(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"events-a": 1, "events-b": 2, "other": 1})
    fn = Recorder(function_server)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, topics='"^events-.*"'))
    hdrs = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tenant", "acme"), ("X-Not-An-Extension", "kept in kafkaheaders"),
            ("content-type", "application/json")]
    kafka.produce("events-a", [{"key": "ka", "value": '{"t": "a"}', "headers": hdrs}])
    kafka.produce("events-b", [{"key": "kb", "value": '{"t": "b"}', "partition": 1}])
    kafka.produce("other", [{"key": "ko", "value": '{"t": "other"}'}])
    fn.wait_ids({"events-a-0-0", "events-b-1-0"}, 20)
    time.sleep(0.5)
    calls = {c["id"]: c for c in fn.snapshot()}
    assert set(calls) == {"events-a-0-0", "events-b-1-0"}, "the other topic is not read"
    h = calls["events-a-0-0"]["headers"]
    assert h["ce-kafkatopic"] == "events-a"
    assert h["ce-subject"] == "ka"
    assert h["ce-traceparent"] == hdrs[0][1]
    assert h["ce-tenant"] == "acme"
    assert h["content-type"] == "application/json"
    assert "ce-x-not-an-extension" not in h
    # Every header, in order, base64 values: kafkaheaders (percent-encoded in ce- form).
    from urllib.parse import unquote
    import base64
    kh = json.loads(unquote(h["ce-kafkaheaders"]))
    assert [list(x.keys())[0] for x in kh] == [n for n, _ in hdrs]
    assert base64.b64decode(kh[2]["X-Not-An-Extension"]) == b"kept in kafkaheaders"
    assert calls["events-b-1-0"]["headers"].get("ce-kafkaheaders") is None
    assert t.stop() == 0


def test_slow_record_is_not_committed_past(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 1})
    gate = threading.Event()
    fn = Recorder(function_server,
                  delay=lambda c: (gate.wait(30), 0)[1] if c["offset"] == 2 else 0)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, source='ordering = "none";'))
    kafka.produce("orders", records(10, 0))
    fn.wait_ids({f"orders-0-{i}" for i in range(10) if i != 2}, 20)
    time.sleep(1.0)  # ten commit intervals
    assert kafka.committed("g", "orders")[0] == (2, 10), "committed past the slow record"
    gate.set()
    wait_until(lambda: kafka.committed("g", "orders")[0] == (10, 10), 10,
               "the commit after the slow record finished")
    assert t.stop() == 0


def poison_answer(call):
    body = json.loads(call["body"])
    items = body if isinstance(body, list) else [{"data": body}]
    bad = any(isinstance(e.get("data"), dict) and e["data"].get("poison") for e in items)
    return (500, b'{"error": "poison"}') if bad else (200, b'{"ok": 1}')


def test_poison_record_is_retried_then_dead_lettered(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 1, "dlq": 1})
    fn = Recorder(function_server, answer=poison_answer)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url,
                              source='retries = 2; on_failure = "kafka://in/dlq";'))
    recs = [{"partition": 0, "key": f"k{i}", "headers": [("trace", f"t{i}")],
             "value": json.dumps({"i": i, "poison": i == 2})} for i in range(6)]
    kafka.produce("orders", recs)
    fn.wait_ids({f"orders-0-{i}" for i in range(6)}, 20)
    dead = kafka.consume("dlq", 1)[0]
    calls = fn.snapshot()
    poison = [c for c in calls if c["offset"] == 2]
    assert len(poison) == 3, "the first attempt and two retries"
    assert all(c["status"] == 500 for c in poison)
    after = [c for c in calls if c["offset"] == 3]
    assert after[0]["start"] >= poison[-1]["end"] - 0.01, "the partition waited for it"
    # The dead letter keeps the record's key and headers and says why.
    assert dead["key"] == b"k2"
    assert ("trace", b"t2") in dead["headers"]
    letter = json.loads(dead["value"])
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert letter["requestContext"]["approximateInvokeCount"] == 3
    assert letter["responseContext"]["statusCode"] == 500
    assert letter["requestPayload"]["id"] == "orders-0-2"
    assert letter["requestPayload"]["data"] == {"i": 2, "poison": True}
    assert letter["KafkaBatchInfo"]["offset"] == 2
    wait_until(lambda: kafka.committed("g", "orders")[0] == (6, 6), 10, "commit past it")
    assert "dead-lettered to kafka://in/dlq" in t.log()
    assert t.stop() == 0


def test_bisect_dead_letters_only_the_bad_record(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 1, "dlq": 1})
    fn = Recorder(function_server, answer=poison_answer)
    t = triggerd(kafka_config(
        kafka.bootstrap, fn.url,
        source='batch_size = 8; batch_window = "1s"; bisect_on_error = true; retries = 1; '
               'on_failure = "kafka://in/dlq";'))
    kafka.produce("orders", [{"partition": 0, "key": f"k{i}",
                              "value": json.dumps({"i": i, "poison": i == 5})}
                             for i in range(8)])
    wait_until(lambda: kafka.committed("g", "orders")[0] == (8, 8), 30, "all 8 committed")
    dead = kafka.consume("dlq", 1, timeout=3)
    assert len(dead) == 1 and dead[0]["key"] == b"k5"
    time.sleep(0.3)
    assert len(kafka.consume("dlq", 1, timeout=2)) == 1, "only one dead letter"
    ok = set()
    for c in fn.snapshot():
        if c["status"] == 200:
            ok |= {e["data"]["i"] for e in json.loads(c["body"])}
    assert ok == {0, 1, 2, 3, 4, 6, 7}
    sizes = [len(json.loads(c["body"])) for c in sorted(fn.snapshot(), key=lambda c: c["start"])]
    assert sizes[0] == 8 and 1 in sizes, f"the batch was split down to one record: {sizes}"
    letter = json.loads(dead[0]["value"])
    assert letter["requestPayload"]["id"] == "orders-0-5"
    assert t.stop() == 0


def test_records_older_than_max_record_age_are_dead_lettered(triggerd, function_server,
                                                            mock_kafka, tmp_path):
    kafka = mock_kafka({"orders": 1})
    fn = Recorder(function_server)
    dlq = tmp_path / "old.jsonl"
    t = triggerd(kafka_config(kafka.bootstrap, fn.url,
                              source=f'max_record_age = "1h"; on_failure = "file:{dlq}";'))
    now_ms = int(time.time() * 1000)
    kafka.produce("orders", [
        {"partition": 0, "key": "old", "value": '{"age": "2h"}', "timestamp": now_ms - 7200000},
        {"partition": 0, "key": "new", "value": '{"age": "0"}', "timestamp": now_ms},
    ])
    fn.wait_ids({"orders-0-1"}, 20)
    wait_until(lambda: dlq.exists() and dlq.read_text().strip(), 10, "the dead letter")
    assert "orders-0-0" not in fn.ids(), "the old record was invoked"
    letter = json.loads(dlq.read_text().strip())
    assert letter["requestContext"]["condition"] == "RecordAgeExceeded"
    assert letter["requestContext"]["approximateInvokeCount"] == 0
    assert letter["requestPayload"]["subject"] == "old"
    wait_until(lambda: kafka.committed("g", "orders")[0] == (2, 2), 10, "commit past both")
    assert t.stop() == 0


def test_kafka_destination_keeps_key_and_headers(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 1, "results": 1})
    fn = Recorder(function_server, answer=lambda c: (200, b'{"done": true}'))
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, invocation="async",
                              trigger='on_success = "kafka://in/results";'))
    kafka.produce("orders", [{"partition": 0, "key": b"\x00bin", "value": '{"n": 1}',
                              "headers": [("trace", "abc"), ("empty", None)]}])
    out = kafka.consume("results", 1, timeout=20)[0]
    assert out["key"] == b"\x00bin"
    assert out["headers"] == [("trace", b"abc"), ("empty", None)]
    record = json.loads(out["value"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == {"done": True}
    assert record["requestPayload"]["id"] == "orders-0-0"
    assert t.stop() == 0


def test_full_queue_pauses_then_everything_arrives(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"orders": 4})
    fn = Recorder(function_server, delay=lambda c: 0.02)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, invocation="async",
                              function="queue_max = 2; concurrency = 1;"))
    kafka.fill("orders", 40, partitions=4)
    wait_until(lambda: len(fn.ids()) == 40, 60, "all 40 records")
    _, _, metrics = http_request("GET", t.admin + "/metrics")
    busy = [line for line in metrics.decode().split("\n")
            if line.startswith('triggerd_source_busy_total{source="in"}')]
    assert busy and int(busy[0].split()[-1]) > 0, "the queue never refused anything"
    wait_until(lambda: kafka.all_committed("g", "orders"), 15, "commit to the log end")
    assert t.stop() == 0


def test_pauses_while_reading_lose_nothing(triggerd, function_server, mock_kafka):
    """librdkafka 2.0.2 skips records when a partition is paused while
    rd_kafka_consume_batch_queue reads (fixed in 2.1.0): the source pauses on the
    consumer thread, between reads. A function at concurrency 1 makes the partitions
    pause and resume hundreds of times while batches of records are read; every record
    must still arrive (the broker is the mock). The race needs a loaded machine to show
    (bench/kafka/README.md): on an idle one this passed with the old code too, so it
    guards the pause path at volume rather than reproducing the loss."""
    kafka = mock_kafka({"orders": 8})
    fn = Recorder(function_server)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, function="concurrency = 1;",
                              source='batch_size = 10; ordering = "none"; '
                                     'batches_in_flight = 10;', log="debug"))
    kafka.fill("orders", 24000, partitions=8)

    def delivered():
        return {(e["kafkapartition"], e["kafkaoffset"])
                for c in fn.snapshot() for e in json.loads(c["body"])}
    try:
        wait_until(lambda: len(delivered()) == 24000, 120, "all 24000 records")
    finally:
        got = delivered()
        missing = sorted({(p, o) for p in range(8) for o in range(3000)} - got)
        pauses = t.log().count(" paused orders-")
        print(f"{len(got)} records, {pauses} pauses, missing {missing[:10]}...")
    assert pauses > 0, "nothing was paused: the test did not test anything"
    wait_until(lambda: kafka.all_committed("g", "orders"), 15, "commit to the log end")
    assert t.stop() == 0


def readyz(t):
    status, _, body = http_request("GET", t.admin + "/readyz")
    return status, body.decode()


def test_unreachable_brokers_are_reported(triggerd, function_server):
    fn = Recorder(function_server)
    port = free_port()
    t = triggerd(kafka_config(f"127.0.0.1:{port}", fn.url), wait_ready=False)
    wait_until(lambda: "cannot reach the brokers" in readyz(t)[1], 15, "the reason")
    status, body = readyz(t)
    assert status == 503
    assert f"127.0.0.1:{port}" in body
    assert t.stop() == 0


def test_unknown_topic_is_reported_until_it_exists(triggerd, function_server, mock_kafka):
    # The mock answers "unknown topic" for ghost until the test creates it (it could
    # otherwise create the topic as soon as a client asks about it).
    kafka = mock_kafka({"orders": 1}, missing=["ghost"])
    fn = Recorder(function_server)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url, topics='"ghost"'), wait_ready=False)
    wait_until(lambda: 'topic \\"ghost\\" does not exist' in readyz(t)[1], 15, "the reason")
    time.sleep(2.5)  # a probe later it still says so
    status, body = readyz(t)
    assert status == 503 and 'topic \\"ghost\\" does not exist' in body, body
    kafka.create("ghost")
    kafka.produce("ghost", [{"key": "k", "value": '{"boo": 1}'}])
    wait_until(lambda: readyz(t)[0] == 200, 30, "ready once the topic exists")
    wait_until(lambda: any(i.startswith("ghost-") for i in fn.ids()), 30, "the record")
    assert t.stop() == 0


@pytest.mark.parametrize("props", [
    ['message.max.bytes=1000000'],          # fetch.max.bytes goes up with it
    ['fetch.max.bytes=100000'],             # message.max.bytes goes down with it
    ['fetch.max.bytes=2000000', 'message.max.bytes=1000000'],
])
def test_fetch_size_options_override_the_defaults(triggerd, function_server, mock_kafka,
                                                   props):
    """triggerd's small fetch.max.bytes and message.max.bytes defaults must not make
    librdkafka refuse a user's setting of one of them ("fetch.max.bytes must be >=
    message.max.bytes"). The broker is the mock."""
    kafka = mock_kafka({"orders": 1})
    fn = Recorder(function_server)
    extra = "".join(f'"{p}", ' for p in props)
    t = triggerd(kafka_config(kafka.bootstrap, fn.url).replace("rdkafka = [",
                                                               "rdkafka = [" + extra))
    kafka.produce("orders", records(3, 0))
    fn.wait_ids({f"orders-0-{i}" for i in range(3)}, 20)
    assert "refused" not in t.log()
    assert t.stop() == 0


@pytest.mark.parametrize("prop,words,secret", [
    ("no.such.property=1", ["no.such.property", "No such configuration property"], None),
    ("session.timeout.ms=hunter2", ["session.timeout.ms"], "hunter2"),
    ("group.id=x", ["set group.id with option 'group'"], None),
    ("enable.auto.commit=false", ["managed by triggerd"], None),
    ("novalue", ["expected \\\"name=value\\\"", "expected \"name=value\""], None),
])
def test_bad_rdkafka_option_is_refused(tmp_path, prop, words, secret):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(f"""
sources = ( {{ name = "in"; kind = "kafka"; brokers = ["127.0.0.1:9"]; topics = ["t"];
              rdkafka = ["{prop}"]; }} );
functions = ( {{ name = "fn"; kind = "log"; }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; }} );
""")
    res = subprocess.run([binary("triggerd"), "-c", str(cfg), "--state-dir", str(tmp_path / "s"),
                          "--admin-listen", f"127.0.0.1:{free_port()}",
                          "--webhook-listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    out = res.stderr
    assert "bad.cfg:" in out and "rdkafka" in out
    assert any(w in out for w in words), out
    if secret:
        assert secret not in out


def test_property_refused_when_the_client_is_made(tmp_path):
    """librdkafka accepts these properties one by one but cannot make a client of them:
    the source cannot start, and says why."""
    cfg = tmp_path / "tls.cfg"
    cfg.write_text("""
sources = ( { name = "in"; kind = "kafka"; brokers = ["127.0.0.1:9"]; topics = ["t"];
              rdkafka = ["security.protocol=ssl", "ssl.ca.location=/nonexistent/ca.pem"]; } );
functions = ( { name = "fn"; kind = "log"; } );
triggers = ( { name = "t"; sources = ["in"]; function = "fn"; } );
""")
    res = subprocess.run([binary("triggerd"), "-c", str(cfg), "--state-dir", str(tmp_path / "s"),
                          "--admin-listen", f"127.0.0.1:{free_port()}",
                          "--webhook-listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1, res.stderr
    assert "[kafka:in] cannot create the consumer" in res.stderr
    assert "ssl.ca.location" in res.stderr


def test_on_failure_must_use_this_sources_cluster(tmp_path, function_server):
    cfg = tmp_path / "other.cfg"
    cfg.write_text("""
sources = ( { name = "in"; kind = "kafka"; brokers = ["127.0.0.1:9"]; topics = ["t"];
              on_failure = "kafka://elsewhere/dlq"; } );
functions = ( { name = "fn"; kind = "log"; } );
triggers = ( { name = "t"; sources = ["in"]; function = "fn"; } );
""")
    res = subprocess.run([binary("triggerd"), "-c", str(cfg), "--state-dir", str(tmp_path / "s"),
                          "--admin-listen", f"127.0.0.1:{free_port()}",
                          "--webhook-listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1, res.stderr
    assert "kafka://in/TOPIC" in res.stderr
    cfg.write_text(cfg.read_text().replace("kafka://elsewhere/dlq", "file:relative.jsonl"))
    res = subprocess.run([binary("triggerctl"), "validate", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode != 0 and "must be absolute" in res.stdout + res.stderr


def test_example_configuration_runs(triggerd, function_server, mock_kafka):
    kafka = mock_kafka({"events": 2})
    fn = Recorder(function_server)
    text = open(os.path.join(ROOT, "config", "examples", "kafka.cfg")).read()
    t = triggerd(text, env={"KAFKA_BROKERS": kafka.bootstrap, "FUNCTION_URL": fn.url})
    # start = "latest": produce until the consumer has its start positions.
    for attempt in range(10):
        kafka.produce("events", [{"key": f"try{attempt}", "value": '{"hello": "kafka"}'}])
        try:
            wait_until(lambda: fn.snapshot(), 1.5, "a record")
            break
        except AssertionError:
            continue
    call = fn.snapshot()[0]
    assert call["type"] == "triggerd.kafka.record"
    assert call["headers"]["ce-source"] == "triggerd/kafka/events"
    assert json.loads(call["body"]) == {"hello": "kafka"}
    assert t.stop() == 0

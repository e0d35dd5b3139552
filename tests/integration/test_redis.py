"""The redis source end to end: a real redis-server on a free loopback port
(tests/integration/redis_server.py), triggerd as a process, real HTTP functions.

Numbered scenarios:
  1 delivery, field mapping, event attributes, several streams, XPENDING empty
  2 sync triggers keep the order of each stream, a failed entry first
  3 async triggers read ahead; a full function queue pauses reading
  4 batches (size and window) and partial batch failures
  5 no loss: 10,000 entries while triggerd is killed with SIGKILL twice
  6 two instances share a group; the survivor takes over a killed one's entries
  7 poison entry: dead-lettered after max_deliveries, the stream flows on
  8 an entry that ended its consumer too often is dead-lettered when found
  9 Redis restarts mid-stream: triggerd reconnects by itself
 10 wrong password and unreachable server: clear errors, /readyz says why
 11 redis:// destination for on_failure and on_success
 12 the shipped example configuration runs as it is
 13 SIGTERM drains and acknowledges; SIGHUP with new options keeps the stream flowing
"""
import json
import os
import signal
import threading
import time

import pytest

from conftest import ROOT, binary, free_port, http_request, run, wait_for
from redis_server import RedisServer


@pytest.fixture
def redis(tmp_path):
    servers = []

    def make(**kw):
        s = RedisServer(str(tmp_path / f"redis{len(servers)}"), **kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def config(url, fn_url, streams=("jobs",), invocation="sync", source_extra="",
           trigger_extra="", function_extra="", fmt="binary", log="info"):
    names = ", ".join(f'"{s}"' for s in streams)
    return f"""
log = {{ level = "{log}"; }};
sources = ( {{ name = "src"; kind = "redis"; url = "{url}"; streams = [{names}];
              start = "0"; {source_extra} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; format = "{fmt}";
                timeout = "5s"; {function_extra} }} );
triggers = ( {{ name = "t"; sources = ["src"]; function = "fn"; invocation = "{invocation}";
               backoff = {{ base = "50ms"; cap = "200ms"; }}; {trigger_extra} }} );
"""


def readyz(t):
    status, _, body = http_request("GET", t.admin + "/readyz")
    return status, json.loads(body)


def wait_acked(r, stream, group="triggerd", timeout=20):
    wait_for(lambda: r.pending_count(stream, group) == 0, timeout,
             what=f"every entry of {stream} acknowledged")


# 1 -------------------------------------------------------------------------------------

def test_delivery_field_mapping_and_attributes(triggerd, function_server, redis):
    server = redis()
    fn = function_server()
    t = triggerd(config(server.url, fn.url, streams=("jobs", "mail")))
    r = server.client()
    id1 = r.xadd("jobs", "data", '{"order": 7}')
    id2 = r.xadd("mail", "to", "ann", "cc", "bob", "cc", "cy")
    id3 = r.xadd("jobs", "payload", "just text")
    id4 = r.xadd("jobs", "data", b"\x00\xff\x01")
    fn.wait_count(4)
    by_id = {req["headers"]["ce-id"]: req for req in fn.requests}
    a = by_id[f"jobs/{id1}"]
    assert a["headers"]["ce-type"] == "triggerd.redis.entry"
    assert a["headers"]["ce-source"] == "triggerd/redis/src"
    assert a["headers"]["ce-subject"] == "jobs"
    assert a["headers"]["ce-redisstream"] == "jobs"
    assert a["headers"]["ce-redisid"] == id1
    assert a["headers"]["ce-redisdeliveries"] == "1"
    assert a["headers"]["content-type"] == "application/json"
    assert a["body"] == b'{"order": 7}'  # a single data field is the payload itself
    ms = int(id1.split("-")[0])
    assert a["headers"]["ce-time"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)))
    b = by_id[f"mail/{id2}"]
    assert json.loads(b["body"]) == {"to": "ann", "cc": ["bob", "cy"]}
    assert b["headers"]["ce-subject"] == "mail"
    c = by_id[f"jobs/{id3}"]
    assert c["body"] == b"just text"
    assert c["headers"]["content-type"].startswith("text/plain")
    d = by_id[f"jobs/{id4}"]
    assert d["body"] == b"\x00\xff\x01"
    assert d["headers"]["content-type"] == "application/octet-stream"
    wait_acked(r, "jobs")
    wait_acked(r, "mail")
    assert t.stop() == 0


# 2 -------------------------------------------------------------------------------------

def test_sync_triggers_keep_stream_order(triggerd, function_server, redis):
    server = redis()
    lock = threading.Lock()
    in_flight = {}
    overlap = []
    seen = {"a": [], "b": []}
    fails = {"n": 0}

    def respond(req):
        stream = req["headers"]["ce-redisstream"]
        n = int(json.loads(req["body"])["n"])
        with lock:
            in_flight[stream] = in_flight.get(stream, 0) + 1
            if in_flight[stream] > 1:
                overlap.append(stream)
            seen[stream].append(n)
        time.sleep(0.01)
        status = 200
        with lock:
            if stream == "a" and n == 3 and fails["n"] < 2:
                fails["n"] += 1
                status = 500
            in_flight[stream] -= 1
        return status, {}, b"ok"

    fn = function_server(respond)
    r = server.client()
    for n in range(20):
        r.xadd("a", "n", str(n))
        r.xadd("b", "n", str(n))
    t = triggerd(config(server.url, fn.url, streams=("a", "b"),
                        source_extra='backoff = { base = "20ms"; cap = "50ms"; };'))
    fn.wait_count(42)
    wait_acked(r, "a")
    wait_acked(r, "b")
    assert not overlap, "two entries of one stream were in flight at once"
    assert seen["b"] == list(range(20))
    # Entry 3 of stream a failed twice: it was delivered again before anything after it.
    assert seen["a"] == [0, 1, 2, 3, 3, 3] + list(range(4, 20))
    # The streams ran side by side: neither waited for the other to finish.
    assert "in order: a sync trigger reads them" in t.log()
    assert t.stop() == 0


# 3 -------------------------------------------------------------------------------------

def test_async_reads_ahead_and_a_full_queue_pauses_reading(triggerd, function_server, redis):
    server = redis()
    gate = threading.Event()
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    got = set()

    def respond(req):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        gate.wait(60)
        with lock:
            state["now"] -= 1
            got.add(req["headers"]["ce-id"])
        return 200, {}, b"ok"

    fn = function_server(respond)
    t = triggerd(config(server.url, fn.url, invocation="async", source_extra="count = 10;",
                        function_extra="concurrency = 8; queue_max = 50;"))
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(500)])
    # The function holds 8, its queue 50: triggerd stops reading well before 500.
    wait_for(lambda: fn.count() >= 8, 10, what="8 calls in flight")
    time.sleep(1.5)
    read = r.group_info("jobs", "triggerd")["entries-read"]
    assert read < 200, f"{read} entries read while the function queue was full"
    assert state["max"] == 8  # read ahead: many entries of one stream in flight
    assert "function queue full" in t.log()
    gate.set()
    wait_for(lambda: len(got) == 500, 60, what="all 500 entries")
    assert got == {f"jobs/{i}" for i in ids}
    wait_acked(r, "jobs")
    assert t.stop() == 0


# 4 -------------------------------------------------------------------------------------

def test_batches_by_size_and_window(triggerd, function_server, redis):
    server = redis()
    fn = function_server(lambda req: (200, {}, b"{}"))
    t = triggerd(config(server.url, fn.url,
                        source_extra='batch_size = 10; batch_window = "300ms";'))
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(25)])
    fn.wait_count(3)
    time.sleep(0.5)
    assert fn.count() == 3
    batches = [json.loads(req["body"]) for req in fn.requests]
    assert [len(b) for b in batches] == [10, 10, 5]
    flat = [e["redisid"] for b in batches for e in b]
    assert flat == ids
    first = fn.requests[0]["headers"]
    assert first["ce-type"] == "triggerd.redis.batch"
    assert first["ce-rediscount"] == "10"
    assert first["ce-redisid"] == ids[0] and first["ce-redislastid"] == ids[9]
    assert batches[0][0]["data"] == {"n": "0"}
    wait_acked(r, "jobs")
    assert t.stop() == 0


def test_partial_batch_failure_retries_only_the_failed_entries(triggerd, function_server,
                                                               redis):
    server = redis()
    calls = []

    def respond(req):
        batch = json.loads(req["body"])
        calls.append([e["redisid"] for e in batch])
        if len(calls) == 1:
            failed = [{"itemIdentifier": batch[1]["redisid"]},
                      {"itemIdentifier": batch[3]["id"]}]  # by entry id or event id
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"batchItemFailures": failed}).encode()
        return 200, {}, b'{"batchItemFailures": []}'

    fn = function_server(respond)
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(5)])
    t = triggerd(config(server.url, fn.url, source_extra="batch_size = 5; count = 5;"))
    fn.wait_count(2)
    wait_acked(r, "jobs")
    time.sleep(0.3)
    assert calls == [ids, [ids[1], ids[3]]]
    second = json.loads(fn.requests[1]["body"])
    assert [e["redisdeliveries"] for e in second] == [2, 2]
    assert t.stop() == 0


# 5 -------------------------------------------------------------------------------------

def test_no_loss_with_two_sigkills(triggerd, function_server, redis):
    server = redis()
    lock = threading.Lock()
    seen = {}

    def respond(req):
        with lock:
            key = req["headers"]["ce-id"]
            seen[key] = seen.get(key, 0) + 1
        return 200, {}, b"ok"

    fn = function_server(respond)
    cfg = config(server.url, fn.url, invocation="async", log="warn",
                 source_extra='consumer = "worker-1"; count = 200;',
                 function_extra="concurrency = 32;")
    t = triggerd(cfg)
    r = server.client()
    ids = []
    total = 10_000
    ids += r.xadd_many("jobs", [("n", str(i)) for i in range(4000)])
    wait_for(lambda: len(seen) >= 1000, 60, what="1000 entries delivered")
    t.kill9()
    ids += r.xadd_many("jobs", [("n", str(i)) for i in range(4000, 7000)])
    t.start()
    wait_for(lambda: len(seen) >= 5000, 60, what="5000 entries delivered")
    t.kill9()
    ids += r.xadd_many("jobs", [("n", str(i)) for i in range(7000, total)])
    t.start()
    want = {f"jobs/{i}" for i in ids}
    wait_for(lambda: want <= set(seen), 120, interval=0.2, what="every entry delivered")
    wait_acked(r, "jobs", timeout=60)
    duplicates = sum(n - 1 for n in seen.values())
    print(f"no-loss: {total} entries, {len(seen)} distinct delivered, {duplicates} duplicates")
    assert len(ids) == total and want == set(seen)
    assert r.command("XLEN", "jobs:dlq") == 0
    assert t.stop() == 0


# 6 -------------------------------------------------------------------------------------

def test_two_instances_share_a_group_and_take_over(triggerd, function_server, redis):
    server = redis()
    gate_a = threading.Event()
    got = {"a": set(), "b": set()}
    lock = threading.Lock()

    def respond_for(name, gate):
        def respond(req):
            if gate is not None:
                gate.wait(60)
            with lock:
                got[name].add(req["headers"]["ce-id"])
            time.sleep(0.005)
            return 200, {}, b"ok"
        return respond

    fn_a = function_server(respond_for("a", gate_a))
    fn_b = function_server(respond_for("b", None))
    extra = 'count = 10; claim_idle = "2s"; forget_consumers_after = "2s";'
    a = triggerd(config(server.url, fn_a.url, source_extra=extra), name="a")
    b = triggerd(config(server.url, fn_b.url, source_extra=extra), name="b")
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(200)])
    # a holds its first entry in its (stuck) function and its next ones in memory.
    wait_for(lambda: fn_a.count() >= 1, 10, what="instance a busy")
    wait_for(lambda: len(got["b"]) >= 50, 30, what="instance b working")
    held = r.pending_count("jobs", "triggerd")
    assert held > 0
    a.kill9()
    gate_a.set()  # the call a had made may now finish, but a never acknowledges it
    want = {f"jobs/{i}" for i in ids}
    wait_for(lambda: want <= got["b"], 30, what="every entry, a's taken over by b")
    assert len(got["b"]) == 200
    assert "took over" in b.log()
    wait_acked(r, "jobs")
    # a's consumer, emptied and idle, is deleted; b's stays.
    def consumers():
        return [dict(zip(c[::2], c[1::2]))[b"name"] for c in r.command("XINFO", "CONSUMERS", "jobs", "triggerd")]
    wait_for(lambda: len(consumers()) == 1, 10, what="a's consumer deleted")
    assert "deleted consumer" in b.log()
    assert b.stop() == 0


def test_two_live_instances_both_get_entries(triggerd, function_server, redis):
    server = redis()
    counts = {"a": 0, "b": 0}
    lock = threading.Lock()

    def respond_for(name):
        def respond(req):
            time.sleep(0.01)
            with lock:
                counts[name] += 1
            return 200, {}, b"ok"
        return respond

    fn_a = function_server(respond_for("a"))
    fn_b = function_server(respond_for("b"))
    a = triggerd(config(server.url, fn_a.url, source_extra="count = 5;"), name="a")
    b = triggerd(config(server.url, fn_b.url, source_extra="count = 5;"), name="b")
    r = server.client()
    r.xadd_many("jobs", [("n", str(i)) for i in range(200)])
    wait_for(lambda: counts["a"] + counts["b"] >= 200, 30, what="200 calls")
    wait_acked(r, "jobs")
    assert counts["a"] > 20 and counts["b"] > 20, counts
    assert counts["a"] + counts["b"] == 200
    assert a.stop() == 0 and b.stop() == 0


# 7 -------------------------------------------------------------------------------------

def test_poison_entry_goes_to_the_dead_letter_stream(triggerd, function_server, redis):
    server = redis()

    def respond(req):
        if b"poison" in req["body"]:
            return 500, {"Content-Type": "application/json"}, b'{"error": "cannot digest"}'
        return 200, {}, b"ok"

    fn = function_server(respond)
    r = server.client()
    r.xadd("jobs", "kind", "good", "n", "1")
    bad = r.xadd("jobs", "kind", "poison", "n", "2")
    r.xadd("jobs", "kind", "good", "n", "3")
    t = triggerd(config(server.url, fn.url, source_extra="max_deliveries = 3;"))
    wait_for(lambda: r.command("XLEN", "jobs:dlq") == 1, 20, what="a dead letter")
    wait_acked(r, "jobs")
    bodies = [json.loads(req["body"]) for req in fn.requests]
    assert [b["n"] for b in bodies] == ["1", "2", "2", "2", "3"]
    assert [req["headers"]["ce-redisdeliveries"] for req in fn.requests if b"poison" in req["body"]] == ["1", "2", "3"]
    (dlq_id, fields), = r.xrange("jobs:dlq")
    assert fields["triggerd-stream"] == b"jobs"
    assert fields["triggerd-id"] == bad.encode()
    assert fields["triggerd-deliveries"] == b"3"
    assert b"500" in fields["triggerd-error"]
    assert fields["triggerd-response"] == b'{"error": "cannot digest"}'
    assert fields["kind"] == b"poison" and fields["n"] == b"2"  # the entry itself
    assert "goes to jobs:dlq after 3 deliveries" in t.log()
    assert t.stop() == 0


# 8 -------------------------------------------------------------------------------------

def test_entry_found_with_too_many_deliveries_is_dead_lettered(triggerd, function_server, redis):
    server = redis()
    fn = function_server()
    r = server.client()
    r.command("XGROUP", "CREATE", "jobs", "triggerd", "0", "MKSTREAM")
    crash = r.xadd("jobs", "n", "crash")
    r.command("XREADGROUP", "GROUP", "triggerd", "worker", "STREAMS", "jobs", ">")
    for _ in range(2):  # each read of own pending entries counts a delivery
        r.command("XREADGROUP", "GROUP", "triggerd", "worker", "STREAMS", "jobs", "0")
    r.xadd("jobs", "n", "fine")
    t = triggerd(config(server.url, fn.url,
                        source_extra='consumer = "worker"; max_deliveries = 3;'))
    fn.wait_count(1)
    wait_acked(r, "jobs")
    assert [json.loads(q["body"])["n"] for q in fn.requests] == ["fine"]
    (_, fields), = r.xrange("jobs:dlq")
    assert fields["triggerd-id"] == crash.encode()
    assert fields["triggerd-deliveries"] == b"4"
    assert b"no outcome" in fields["triggerd-error"]
    assert t.stop() == 0


# 9 -------------------------------------------------------------------------------------

def test_redis_restart_mid_stream(triggerd, function_server, redis):
    server = redis()
    seen = set()
    lock = threading.Lock()

    def respond(req):
        with lock:
            seen.add(req["headers"]["ce-id"])
        return 200, {}, b"ok"

    fn = function_server(respond)
    t = triggerd(config(server.url, fn.url,
                        source_extra='reconnect = { min = "100ms"; max = "500ms"; };'))
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(100)])
    wait_for(lambda: len(seen) >= 100, 20, what="the first 100")
    r.close()
    server.stop()
    wait_for(lambda: readyz(t)[0] == 503, 10, what="/readyz to see the loss")
    status, body = readyz(t)
    assert body["reasons"][0]["source"] == "src"
    assert "127.0.0.1" in body["reasons"][0]["reason"]
    server.start()
    wait_for(lambda: readyz(t)[0] == 200, 10, what="triggerd to reconnect")
    r = server.client()
    ids += r.xadd_many("jobs", [("n", str(i)) for i in range(100, 200)])
    want = {f"jobs/{i}" for i in ids}
    wait_for(lambda: want <= seen, 20, what="every entry after the restart")
    wait_acked(r, "jobs")
    assert t.stop() == 0


# 10 ------------------------------------------------------------------------------------

def test_wrong_password_and_unreachable_server_are_reported(triggerd, function_server, redis):
    server = redis(password="right-horse")
    fn = function_server()
    wrong = f"redis://:wrong@127.0.0.1:{server.port}/0"
    t = triggerd(config(wrong, fn.url), name="wrong", wait_ready=False)
    wait_for(lambda: "authentication failed" in t.log(), 10, what="the auth error")
    status, body = readyz(t)
    assert status == 503
    reason = body["reasons"][0]["reason"]
    assert "authentication failed" in reason and "WRONGPASS" in reason, reason
    assert "wrong" not in reason.replace("WRONGPASS", "")  # no password in messages
    assert t.stop() == 0

    none = f"redis://127.0.0.1:{server.port}/0"
    t = triggerd(config(none, fn.url), name="nopass", wait_ready=False)
    wait_for(lambda: "NOAUTH" in t.log(), 10, what="the NOAUTH error")
    assert t.stop() == 0

    dead = f"redis://127.0.0.1:{free_port()}/0"
    t = triggerd(config(dead, fn.url), name="dead", wait_ready=False)
    wait_for(lambda: "cannot connect" in t.log(), 10, what="the connect error")
    status, body = readyz(t)
    assert status == 503
    assert "cannot connect to 127.0.0.1:" in body["reasons"][0]["reason"]
    assert "refused" in body["reasons"][0]["reason"]
    assert t.stop() == 0

    right = f"redis://:right-horse@127.0.0.1:{server.port}/0"
    t = triggerd(config(right, fn.url), name="right")
    assert readyz(t)[0] == 200
    assert t.stop() == 0


def test_bad_options_are_configuration_errors(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("""
sources = ( { name = "s"; kind = "redis"; url = "rediss://h:1"; streams = ["a", "a"];
              batch_window = "1s"; dead_letter_stream = "{stream}"; } );
functions = ( { name = "f"; kind = "log"; } );
triggers = ( { name = "t"; sources = ["s"]; function = "f"; } );
""")
    r = run([binary("triggerctl"), "validate", str(cfg)])
    assert r.returncode == 2
    assert "option 'url': at byte 0: rediss:// (TLS) is not supported" in r.stderr
    assert "\"a\" is listed twice" in r.stderr
    assert "option 'batch_window' needs option 'batch_size' above 1" in r.stderr
    assert "option 'dead_letter_stream'" in r.stderr
    assert f"{cfg}:2" in r.stderr


# 11 ------------------------------------------------------------------------------------

def test_redis_destinations(triggerd, function_server, redis):
    server = redis()
    fn = function_server(lambda req: (400, {}, b"no") if b"bad" in req["body"] else (200, {}, b'{"done": true}'))
    t = triggerd(config(server.url, fn.url, invocation="async",
                        trigger_extra='retries = 0; on_failure = "redis://src/failed"; '
                                      'on_success = "redis://src/results";'))
    r = server.client()
    good = r.xadd("jobs", "job", "good")
    bad = r.xadd("jobs", "job", "bad")
    wait_for(lambda: r.command("XLEN", "failed") == 1 and r.command("XLEN", "results") == 1,
             20, what="a record in each destination stream")
    (_, failed), = r.xrange("failed")
    record = json.loads(failed["data"])
    assert record["requestContext"]["condition"] == "PermanentError"
    assert record["requestPayload"]["id"] == f"jobs/{bad}"
    (_, ok), = r.xrange("results")
    record = json.loads(ok["data"])
    assert record["requestPayload"]["id"] == f"jobs/{good}"
    assert record["responsePayload"] == {"done": True}
    wait_acked(r, "jobs")
    assert t.stop() == 0


# 12 ------------------------------------------------------------------------------------

def test_example_configuration_runs_as_it_is(triggerd, function_server, redis):
    server = redis()
    fn = function_server()
    example = open(os.path.join(ROOT, "config", "examples", "redis.cfg")).read()
    env = {"REDIS_URL": server.url, "FUNCTION_URL": fn.url}
    check = run([binary("triggerctl"), "validate",
                 os.path.join(ROOT, "config", "examples", "redis.cfg")],
                env=dict(os.environ, **env))
    assert check.returncode == 0, check.stderr
    t = triggerd(example, env=env)
    r = server.client()
    entry = r.xadd("events", "data", '{"hello": "world"}')
    fn.wait_count(1)
    req = fn.requests[0]
    assert req["headers"]["ce-id"] == f"events/{entry}"
    assert req["body"] == b'{"hello": "world"}'
    wait_acked(r, "events")
    assert t.stop() == 0


# 13 ------------------------------------------------------------------------------------

def test_sigterm_drains_and_acknowledges(triggerd, function_server, redis):
    server = redis()
    fn = function_server(lambda req: (time.sleep(0.5), (200, {}, b"late"))[1])
    t = triggerd(config(server.url, fn.url) + 'shutdown_grace = "5s";\n')
    r = server.client()
    r.xadd("jobs", "n", "1")
    fn.wait_count(1)
    assert r.pending_count("jobs", "triggerd") == 1  # in flight, not acknowledged yet
    t.signal(signal.SIGTERM)
    assert t.proc.wait(10) == 0
    # The entry settled during the drain and its XACK went out before the exit.
    assert r.pending_count("jobs", "triggerd") == 0


def test_sighup_with_changed_options_keeps_the_stream_flowing(triggerd, function_server, redis):
    server = redis()
    seen = set()
    lock = threading.Lock()

    def respond(req):
        with lock:
            seen.add(req["headers"]["ce-id"])
        return 200, {}, b"ok"

    fn = function_server(respond)
    t = triggerd(config(server.url, fn.url, source_extra="count = 50;"))
    r = server.client()
    ids = r.xadd_many("jobs", [("n", str(i)) for i in range(100)])
    wait_for(lambda: len(seen) >= 100, 20, what="the first 100")
    t.config.write_text(t.config.read_text().replace("count = 50;", "count = 20;"))
    t.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in t.log(), 10, what="the reload")
    ids += r.xadd_many("jobs", [("n", str(i)) for i in range(100, 200)])
    want = {f"jobs/{i}" for i in ids}
    wait_for(lambda: want <= seen, 20, what="every entry after the reload")
    wait_acked(r, "jobs")
    assert t.stop() == 0

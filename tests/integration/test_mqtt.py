"""The MQTT source against a real mosquitto broker started on a free loopback port:
QoS 0/1/2 delivery over MQTT 5 and 3.1.1, retained messages, trigger topic filters,
MQTT 5 properties, request/response, the mqtt destination, no loss across kill -9,
shared subscriptions, broker restarts, and bad input with clear errors and /readyz."""
import json
import os
import signal
import threading
import time

import pytest

from conftest import binary, free_port, http_request, run, wait_for
from mqtt_server import (CONTENT_TYPE, CORRELATION_DATA, RESPONSE_TOPIC, USER_PROPERTY,
                         Mosquitto, MqttClient, client)


@pytest.fixture
def broker(tmp_path):
    brokers = []

    def make(**kw):
        b = Mosquitto(str(tmp_path / f"broker{len(brokers)}"), **kw)
        brokers.append(b)
        return b.start()

    yield make
    for b in brokers:
        b.stop()


def fast(fn):
    """The shared function server writes headers and body separately; without
    TCP_NODELAY each answer waits for a delayed ACK (40 ms)."""
    fn.httpd.RequestHandlerClass.disable_nagle_algorithm = True
    return fn


def config(broker_url, fn_url, topics='["t/#"]', qos=1, protocol="5", invocation="async",
           source_extra="", trigger_extra="", triggers=None, top=""):
    triggers = triggers or f"""{{ name = "all"; sources = ["s"]; function = "fn";
                invocation = "{invocation}"; {trigger_extra} }}"""
    return f"""
{top}
sources = ( {{ name = "s"; kind = "mqtt"; uri = "{broker_url}"; topics = {topics};
              qos = {qos}; protocol = "{protocol}";
              reconnect = {{ min = "200ms"; max = "1s"; }}; {source_extra} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; timeout = "5s"; }} );
triggers = ( {triggers} );
"""


def ce(req, name):
    return req["headers"].get("ce-" + name)


def readyz(t):
    status, _, body = http_request("GET", t.admin + "/readyz")
    return status, body.decode()


def integrated():
    """True when the router filters triggers by their MQTT `topic` option and checks it
    (the router/config.c and router/router.c change that issue 5 asks the lead for)."""
    cfg = ('sources = ( { name = "s"; kind = "mqtt"; uri = "tcp://127.0.0.1:1"; '
           'topics = ["a"]; } );\nfunctions = ( { name = "f"; kind = "log"; } );\n'
           'triggers = ( { name = "t"; sources = ["s"]; function = "f"; topic = ["a/#/b"]; } );\n')
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"td-mqtt-probe-{os.getpid()}.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    try:
        return run([binary("triggerctl"), "validate", path]).returncode != 0
    finally:
        os.unlink(path)


needs_router = pytest.mark.skipif(
    not integrated(), reason="the router does not apply trigger option 'topic' yet "
    "(router/config.c and router/router.c must call td_mqtt_filter_validate and "
    "td_mqtt_topic_match, see connectors/mqtt_topic.h)")


def has_topic_match():
    return "topic-match" in run([binary("triggerctl"), "--help"]).stdout


# ---- 1. delivery -------------------------------------------------------------------


@pytest.mark.parametrize("invocation", ["sync", "async"])
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_01_qos_0_1_2_delivery(broker, triggerd, function_server, protocol, invocation):
    """sync: each QoS 1/2 message waits for its settle; async: it goes through the
    source's spool (acknowledged once written there)."""
    b = broker()
    fn = fast(function_server())
    t = triggerd(config(b.url, fn.url, qos=2, protocol=protocol, invocation=invocation))
    pub = client(b, client_id="pub", version=5 if protocol == "5" else 4)
    for qos in (0, 1, 2):
        pub.publish(f"t/dev{qos}/temp", json.dumps({"qos": qos, "celsius": 20 + qos}), qos=qos)
    fn.wait_count(3)
    seen = {}
    for r in fn.requests:
        assert ce(r, "type") == "triggerd.mqtt.message"
        assert ce(r, "source") == "triggerd/mqtt/s"
        assert ce(r, "subject") == ce(r, "mqtttopic")
        assert ce(r, "mqttretain") == "false"
        assert ce(r, "id") and ce(r, "time")
        body = json.loads(r["body"])
        seen[ce(r, "mqtttopic")] = (int(ce(r, "mqttqos")), body["qos"])
    assert seen == {"t/dev0/temp": (0, 0), "t/dev1/temp": (1, 1), "t/dev2/temp": (2, 2)}
    assert readyz(t)[0] == 200
    pub.disconnect()


def test_02_retained_message_reaches_a_new_subscription(broker, triggerd, function_server):
    b = broker()
    pub = client(b, client_id="pub")
    pub.publish("t/config", '{"mode": "eco"}', qos=1, retain=True)
    fn = fast(function_server())
    triggerd(config(b.url, fn.url, invocation="sync"))
    fn.wait_count(1)
    r = fn.requests[0]
    assert ce(r, "mqttretain") == "true"
    assert json.loads(r["body"]) == {"mode": "eco"}
    pub.publish("t/config", b"", qos=1, retain=True)  # clears it
    pub.disconnect()


def test_03_non_json_and_binary_payloads_become_events(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server())
    triggerd(config(b.url, fn.url, invocation="sync"))
    pub = client(b, client_id="pub")
    pub.publish("t/text", "21.5 C, not JSON", qos=1)
    pub.publish("t/bin", bytes([0, 1, 2, 0xFF, 0xFE]), qos=1)
    pub.publish("t/empty", b"", qos=1)
    fn.wait_count(3)
    by_topic = {ce(r, "mqtttopic"): r for r in fn.requests}
    assert by_topic["t/text"]["body"] == b"21.5 C, not JSON"
    assert by_topic["t/bin"]["body"] == bytes([0, 1, 2, 0xFF, 0xFE])
    assert by_topic["t/bin"]["headers"]["content-type"] == "application/octet-stream"
    assert by_topic["t/empty"]["body"] == b""
    pub.disconnect()


def test_04_mqtt5_content_type_and_user_properties(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server())
    triggerd(config(b.url, fn.url, invocation="sync"))
    pub = client(b, client_id="pub")
    props = [(CONTENT_TYPE, "text/csv"), (USER_PROPERTY, ("site", "plant-7")),
             (USER_PROPERTY, ("Bad-Name", "x")), (USER_PROPERTY, ("id", "spoof")),
             (USER_PROPERTY, ("mqttqos", "9"))]
    pub.publish("t/csv", "a,b\n1,2\n", qos=1, props=props)
    fn.wait_count(1)
    r = fn.requests[0]
    assert r["headers"]["content-type"] == "text/csv"
    assert ce(r, "site") == "plant-7"
    assert ce(r, "bad-name") is None
    assert ce(r, "id") != "spoof"
    assert ce(r, "mqttqos") == "1"
    assert r["body"] == b"a,b\n1,2\n"
    pub.disconnect()


# ---- 2. trigger topic filters ----------------------------------------------------------


@needs_router
def test_05_trigger_topic_filters_route_by_topic(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server())
    triggers = """
      { name = "temps"; sources = ["s"]; function = "fn"; invocation = "sync";
        topic = ["plant/+/temperature"]; },
      { name = "alerts"; sources = ["s"]; function = "fn"; invocation = "sync";
        topic = ["plant/alerts/#"];
        pattern = { data = { level = ["high"]; }; }; }
    """
    t = triggerd(config(b.url, fn.url, topics='["plant/#", "$SYS/x"]', triggers=triggers))
    pub = client(b, client_id="pub")
    pub.publish("plant/a/temperature", '{"c": 1}', qos=1)  # temps
    pub.publish("plant/a/humidity", '{"h": 1}', qos=1)  # none
    pub.publish("plant/alerts", '{"level": "high"}', qos=1)  # alerts ('#' takes the parent)
    pub.publish("plant/alerts/x/y", '{"level": "low"}', qos=1)  # topic yes, pattern no
    pub.publish("plant/b/temperature", '{"c": 2}', qos=1)  # temps
    fn.wait_count(3)
    time.sleep(0.5)
    assert sorted(ce(r, "mqtttopic") for r in fn.requests) == [
        "plant/a/temperature", "plant/alerts", "plant/b/temperature"]
    _, _, body = http_request("GET", t.admin + "/v1/triggers")
    assert b"temps" in body
    pub.disconnect()


@needs_router
def test_06_invalid_trigger_topic_filter_is_a_configuration_error(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(config("tcp://127.0.0.1:1883", "http://127.0.0.1:9/",
                          trigger_extra='topic = ["ok/+", "bad/#/x"];'))
    res = run([binary("triggerctl"), "validate", str(cfg)])
    assert res.returncode != 0
    assert "option 'topic'" in res.stderr + res.stdout
    assert "'#' at byte 4" in res.stderr + res.stdout


def test_07_invalid_source_topic_filter_is_a_configuration_error(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(config("tcp://127.0.0.1:1883", "http://127.0.0.1:9/",
                          topics='["a/b+", "$share/g/x"]'))
    res = run([binary("triggerctl"), "validate", str(cfg)])
    out = res.stderr + res.stdout
    assert res.returncode != 0
    assert "bad.cfg:" in out
    assert "\"a/b+\"" in out and "'+' at byte 3 must be a whole level" in out
    assert "without $share/ and set shared_group" in out


@pytest.mark.skipif(not has_topic_match(), reason="triggerctl has no topic-match row yet "
                    "(cli/triggerctl.c must list td_cli_topic_match from cli/mqtt_commands.c)")
def test_08_triggerctl_topic_match():
    cases = [
        ("plant/+/temperature", "plant/7/temperature", 0, "match"),
        ("plant/#", "plant", 0, "match"),
        ("+/x", "$SYS/x", 1, "no match"),
        ("#", "$SYS/broker/load", 1, "no match"),
        ("a/+", "a/b/c", 1, "no match"),
        ("a/#/b", "a/x/b", 2, "'#' at byte 2"),
        ("a+", "a", 2, "'+' at byte 1"),
        ("a/+", "a/#", 2, "wildcard"),
    ]
    for flt, topic, code, text in cases:
        res = run([binary("triggerctl"), "topic-match", flt, topic])
        assert res.returncode == code, (flt, topic, res.stdout, res.stderr)
        assert text in res.stdout + res.stderr
    assert run([binary("triggerctl"), "topic-match", "a"]).returncode == 2


# ---- 3. request / response and the mqtt destination ------------------------------------


def test_09_request_response_with_mqtt5_response_topic(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server(lambda req: (200, {"Content-Type": "application/json"},
                                           json.dumps({"answer": json.loads(req["body"])["x"] * 2}).encode())))
    triggerd(config(b.url, fn.url, invocation="sync", topics='["req/#"]'))
    requester = client(b, client_id="requester")
    requester.subscribe("resp/me", qos=1)
    requester.publish("req/double", '{"x": 21}', qos=1,
                      props=[(RESPONSE_TOPIC, "resp/me"), (CORRELATION_DATA, b"\x00corr-1")])
    m = requester.get(10)
    assert m.topic == "resp/me"
    assert json.loads(m.payload) == {"answer": 42}
    assert m.prop(CORRELATION_DATA) == b"\x00corr-1"
    assert m.prop(CONTENT_TYPE) == "application/json"
    assert ("triggerd-status", "ok") in m.user_properties()
    requester.disconnect()


def test_10_reply_topic_template_on_mqtt311(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server(lambda req: (200, {"Content-Type": "text/plain"}, b"pong")))
    triggerd(config(b.url, fn.url, invocation="sync", protocol="3.1.1", topics='["ping/#"]',
                    source_extra='reply_topic = "replies/{topic}";'))
    c = client(b, client_id="dev", version=4)
    c.subscribe("replies/#", qos=1)
    c.publish("ping/dev-9", "ping", qos=1)
    m = c.get(10)
    assert m.topic == "replies/ping/dev-9" and m.payload == b"pong"
    c.disconnect()


def test_11_mqtt_destination_publishes_results_and_dead_letters(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server(lambda req: (500, {}, b"boom") if b"fail" in req["body"]
                              else (200, {"Content-Type": "application/json"}, b'{"ok":true}')))
    trig = """{ name = "work"; sources = ["s"]; function = "fn"; invocation = "async";
               retries = 0; on_success = "mqtt://s/results/done?qos=1";
               on_failure = "mqtt://s/results/dead?qos=2&retain=false"; }"""
    triggerd(config(b.url, fn.url, topics='["jobs/#"]', triggers=trig))
    c = client(b, client_id="watcher")
    c.subscribe("results/#", qos=2)
    c.publish("jobs/1", '{"job": "fine"}', qos=1)
    c.publish("jobs/2", '{"job": "fail"}', qos=1)
    got = {m.topic: json.loads(m.payload) for m in (c.get(15), c.get(15))}
    assert got["results/done"]["responsePayload"] == {"ok": True}
    assert got["results/done"]["requestPayload"]["data"] == {"job": "fine"}
    assert got["results/dead"]["requestContext"]["condition"] == "RetriesExhausted"
    assert got["results/dead"]["requestPayload"]["subject"] == "jobs/2"
    c.disconnect()


# ---- 4. no loss ----------------------------------------------------------------------


class Counter:
    """Counts the message numbers a function receives (and the duplicates)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def respond(self, req):
        n = json.loads(req["body"])["n"]
        with self.lock:
            self.seen[n] = self.seen.get(n, 0) + 1
        return 200, {}, b"ok"

    def distinct(self):
        with self.lock:
            return len(self.seen)

    def duplicates(self):
        with self.lock:
            return sum(c - 1 for c in self.seen.values())


def test_12_no_loss_with_10000_qos1_messages_and_two_kill_9(broker, triggerd, function_server):
    total = 10000
    b = broker()
    counter = Counter()
    fn = fast(function_server(counter.respond))
    t = triggerd(config(b.url, fn.url, topics='["load/#"]',
                        source_extra='client_id = "triggerd-noloss";'))
    pub = client(b, client_id="loader")
    sender = threading.Thread(target=pub.publish_many,
                              args=([("load/x", json.dumps({"n": i})) for i in range(total)],),
                              kwargs={"qos": 1, "timeout": 300})
    sender.start()
    for stop_at in (total // 5, total // 2):
        wait_for(lambda: counter.distinct() >= stop_at, 120, what=f"{stop_at} messages")
        t.kill9()
        t.start()
    sender.join(300)
    wait_for(lambda: counter.distinct() == total, 180, interval=0.2,
             what=f"all {total} messages (have {counter.distinct()})")
    print(f"no-loss: {total} messages, {counter.duplicates()} duplicates after two kill -9")
    assert min(counter.seen) == 0 and max(counter.seen) == total - 1
    pub.disconnect()


def test_13_graceful_stop_keeps_messages_for_the_next_start(broker, triggerd, function_server):
    total = 3000
    b = broker()
    counter = Counter()
    fn = fast(function_server(counter.respond))
    t = triggerd(config(b.url, fn.url, topics='["load/#"]', invocation="sync",
                        source_extra='client_id = "triggerd-term";'))
    pub = client(b, client_id="loader")
    sender = threading.Thread(target=pub.publish_many,
                              args=([("load/x", json.dumps({"n": i})) for i in range(total)],),
                              kwargs={"qos": 1, "timeout": 300})
    sender.start()
    wait_for(lambda: counter.distinct() >= total // 3, 60, what="a third of the messages")
    assert t.stop() == 0
    t.start()
    sender.join(300)
    wait_for(lambda: counter.distinct() == total, 120, interval=0.2,
             what=f"all {total} messages (have {counter.distinct()})")
    print(f"graceful: {total} messages, {counter.duplicates()} duplicates after SIGTERM")
    pub.disconnect()


def test_14_shared_group_splits_the_load_between_two_instances(broker, triggerd, function_server):
    total = 2000
    b = broker()
    counter = Counter()
    fn = fast(function_server(counter.respond))
    per_instance = {}

    def respond(req):
        key = req["headers"].get("x-instance")
        per_instance[key] = per_instance.get(key, 0) + 1
        return counter.respond(req)

    fn.respond = respond
    for name in ("a", "b"):
        cfg = config(b.url, fn.url, topics='["load/#"]', invocation="sync",
                     source_extra=f'client_id = "triggerd-{name}"; shared_group = "workers";')
        cfg = cfg.replace('timeout = "5s";', f'timeout = "5s"; headers = {{ X-Instance = "{name}"; }};')
        triggerd(cfg, name=name)
    pub = client(b, client_id="loader")
    pub.publish_many([("load/x", json.dumps({"n": i})) for i in range(total)], qos=1)
    wait_for(lambda: counter.distinct() == total, 60, interval=0.1,
             what=f"all {total} messages (have {counter.distinct()})")
    assert per_instance.get("a", 0) > 0 and per_instance.get("b", 0) > 0, per_instance
    assert per_instance["a"] + per_instance["b"] >= total
    pub.disconnect()


def test_15_broker_restart_reconnects_and_loses_nothing_after(broker, triggerd, function_server):
    b = broker()
    counter = Counter()
    fn = fast(function_server(counter.respond))
    t = triggerd(config(b.url, fn.url, topics='["load/#"]', invocation="sync",
                        source_extra='client_id = "triggerd-restart";'))
    pub = client(b, client_id="loader", clean=False, session_expiry=600)
    pub.publish_many([("load/x", json.dumps({"n": i})) for i in range(500)], qos=1)
    wait_for(lambda: counter.distinct() == 500, 30, what="the first 500")
    pub.close()
    b.restart()
    wait_for(lambda: readyz(t)[0] == 503, 10, what="/readyz to say the broker is gone")
    assert "connection" in readyz(t)[1] or "connect" in readyz(t)[1]
    pub = client(b, client_id="loader2")
    pub.publish_many([("load/x", json.dumps({"n": i})) for i in range(500, 1500)], qos=1)
    wait_for(lambda: counter.distinct() == 1500, 60, interval=0.1,
             what=f"all messages after the restart (have {counter.distinct()})")
    wait_for(lambda: readyz(t)[0] == 200, 10, what="/readyz to recover")
    pub.disconnect()


class BusyFunction:
    """A function that answers 500 until `failing` is cleared, so that its queue
    (queue_max 5 in busy_config) stays full and the router turns spooled messages away;
    afterwards it counts what it takes."""

    def __init__(self, function_server):
        self.counter = Counter()
        self.failing = True
        self.fn = fast(function_server(self.respond))

    def respond(self, req):
        if self.failing:
            return 500, {}, b"not now"
        return self.counter.respond(req)


def busy_config(b, busy, **kw):
    """The configuration for BusyFunction, and the same with the function's queue kept
    full (queue_max 5)."""
    cfg = config(b.url, busy.fn.url, trigger_extra='retries = 10; backoff = { base = "2s"; };',
                 **kw)
    return cfg, cfg.replace('timeout = "5s";', 'timeout = "5s"; queue_max = 5;')


def hold_in_the_spool(b, t, topic, total, client_id):
    """Publishes total QoS 1 messages and waits until the router turned spooled ones
    away; returns the publisher."""
    pub = client(b, client_id=client_id)
    pub.publish_many([(topic, json.dumps({"n": i})) for i in range(total)], qos=1)
    wait_for(lambda: "held: the router did not take it" in t.log(), 30,
             what="the router to turn messages away")
    time.sleep(1)  # every message is spooled within milliseconds of its arrival
    return pub


def test_21_spooled_messages_survive_kill_9_while_the_router_is_busy(broker, triggerd,
                                                                    function_server):
    """A QoS 1 message whose triggers are all async is acknowledged once it is in the
    source's spool. While the function's queue is full the router turns it away and it
    waits there; after a kill -9, a start with a clean session (the broker keeps nothing
    for triggerd) still delivers every message: only the spool had them."""
    total = 60
    b = broker()
    busy = BusyFunction(function_server)
    normal, full = busy_config(b, busy, topics='["spool/#"]',
                               source_extra='client_id = "triggerd-spool"; clean_start = true;')
    t = triggerd(full)
    pub = hold_in_the_spool(b, t, "spool/x", total, "spooler")
    t.kill9()
    busy.failing = False
    t.config.write_text(normal)
    t.start()
    wait_for(lambda: busy.counter.distinct() == total, 60, interval=0.2,
             what=f"all {total} messages (have {busy.counter.distinct()})")
    assert "spooled messages submitted again" in t.log()
    pub.disconnect()


@pytest.mark.parametrize("durability", ["memory", "os"])
def test_22_a_reload_keeps_the_spooled_messages_the_router_turned_away(
        broker, triggerd, function_server, durability):
    """A reload that changes the source retires the running instance while spooled
    messages are held (the function's queue is full) and starts a new one on the same
    spool: the new instance submits them, also when the spool is in memory."""
    total = 40
    b = broker()
    busy = BusyFunction(function_server)
    _, full = busy_config(b, busy, topics='["m/#"]',
                          top=f'queue = {{ durability = "{durability}"; }};',
                          source_extra='client_id = "triggerd-reload"; keepalive = "%ds";')
    t = triggerd(full % 30)
    pub = hold_in_the_spool(b, t, "m/x", total, "mpub")
    t.config.write_text(full % 31)  # the source's options change: a new instance
    t.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in t.log(), 10, what="the reload")
    busy.failing = False
    wait_for(lambda: busy.counter.distinct() == total, 60, interval=0.2,
             what=f"all {total} messages (have {busy.counter.distinct()})")
    pub.disconnect()


# ---- 5. bad input --------------------------------------------------------------------


def test_16_oversized_payload_is_dropped_with_a_clear_error(broker, triggerd, function_server):
    b = broker()
    fn = fast(function_server())
    t = triggerd(config(b.url, fn.url, invocation="sync", source_extra='max_payload = "1KB";'))
    pub = client(b, client_id="pub")
    pub.publish("t/big", b"x" * 5000, qos=1)
    pub.publish("t/small", b'{"ok": 1}', qos=1)
    fn.wait_count(1)
    time.sleep(0.3)
    assert [ce(r, "mqtttopic") for r in fn.requests] == ["t/small"]
    wait_for(lambda: "payload of 5000 bytes is over max_payload (1024 bytes)" in t.log(), 5,
             what="the oversized-payload error")
    assert "\"t/big\"" in t.log()
    pub.disconnect()


def test_17_wrong_password_is_reported_by_readyz(broker, triggerd, function_server):
    b = broker(users={"dev": "right"})
    fn = fast(function_server())
    t = triggerd(config(b.url, fn.url, source_extra='username = "dev"; password = "wrong";'),
                 wait_ready=False)
    wait_for(lambda: "user name or password" in readyz(t)[1] or "authorized" in readyz(t)[1],
             10, what="/readyz to name the refusal")
    status, body = readyz(t)
    assert status == 503
    assert '"source":"s"' in body.replace(" ", "")
    assert "refused the connection" in body
    assert "refused the connection" in t.log()


def test_18_unreachable_broker_is_reported_and_retried(triggerd, function_server):
    from conftest import free_port
    port = free_port()
    fn = fast(function_server())
    t = triggerd(config(f"tcp://127.0.0.1:{port}", fn.url), wait_ready=False)
    wait_for(lambda: "cannot connect to tcp://127.0.0.1:%d" % port in readyz(t)[1], 10,
             what="/readyz to name the unreachable broker")
    assert readyz(t)[0] == 503
    assert "reconnecting in" in readyz(t)[1]
    # A broker that appears later on that port is found without a restart.
    b = Mosquitto(os.path.join(str(t.dir), "late-broker"), port=port).start()
    try:
        wait_for(lambda: readyz(t)[0] == 200, 15, what="the late broker to be found")
    finally:
        b.stop()


def test_19_failover_list_takes_the_next_uri(broker, triggerd, function_server):
    from conftest import free_port
    b = broker()
    fn = fast(function_server())
    dead = f"tcp://127.0.0.1:{free_port()}"
    t = triggerd(config(b.url, fn.url, invocation="sync").replace(
        f'uri = "{b.url}"', f'uri = ["{dead}", "{b.url}"]'))
    pub = client(b, client_id="pub")
    pub.publish("t/x", '{"via": "second"}', qos=1)
    fn.wait_count(1)
    assert f"connected to {b.url}" in t.log()
    pub.disconnect()


def make_certificates(folder):
    """A CA and a server certificate for 127.0.0.1, and a second, unrelated CA."""
    def ssl(*args):
        run(["openssl", *args], cwd=folder, check=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=triggerd test CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
        "other.pem", "-days", "2", "-subj", "/CN=another CA")


def test_20_tls_with_verification(broker, triggerd, function_server, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(str(certs))
    # The TLS listener is for triggerd; the test publishes through a plain second
    # listener, because Python's ssl sockets are not safe to read in one thread while
    # another writes (the client's reader thread would race the CONNECT).
    plain_port = free_port()
    b = broker(extra=f"cafile {certs}/ca.pem\ncertfile {certs}/server.pem\n"
                     f"keyfile {certs}/server.key\nlistener {plain_port} 127.0.0.1")
    url = f"ssl://127.0.0.1:{b.port}"
    fn = fast(function_server())
    good = triggerd(config(url, fn.url, invocation="sync",
                           source_extra=f'client_id = "tls-good"; tls = {{ ca_file = "{certs}/ca.pem"; }};'),
                    name="good")
    bad = triggerd(config(url, fn.url, invocation="sync",
                          source_extra=f'client_id = "tls-bad"; tls = {{ ca_file = "{certs}/other.pem"; }};'),
                   name="bad", wait_ready=False)
    c = MqttClient(plain_port, client_id="pub")
    c.connect()
    c.publish("t/secure", '{"tls": true}', qos=1)
    fn.wait_count(1)
    assert json.loads(fn.requests[0]["body"]) == {"tls": True}
    wait_for(lambda: "certificate verify failed" in readyz(bad)[1], 15,
             what="/readyz of the instance with the wrong CA")
    assert readyz(bad)[0] == 503 and readyz(good)[0] == 200
    c.disconnect()

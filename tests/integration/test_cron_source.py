"""The cron source end to end: triggerd as a real process, real HTTP functions, a real
redis-server for the lease. Schedules with a seconds field keep the runs short.

Numbered scenarios:
  1. attributes, payload and timing of each tick (structured and binary mode, jitter);
  2. catch-up across a restart: none, last, all (and the last-fired mark file);
  3. start/end window;
  4. a failing sync function: logged, the tick counts as fired, never fired again;
  5. busy (concurrency limit): the same tick again, in order, nothing lost;
  6. the lease: two instances with one configuration fire each tick once;
  7. the lease server down: not ready, nothing fired; back up: ready and firing;
  8. `triggerctl validate` names file, line and option for bad schedules and options.
"""
import collections
import datetime
import json
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import binary, free_port, http_request, run, wait_for


def instant(text):
    """RFC 3339 UTC -> Unix seconds (int)."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp())


def rfc3339(secs):
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    """An HTTP function's answer that records each CloudEvent (structured mode) with the
    wall-clock time it arrived."""

    def __init__(self, status=200, delay=0.0):
        self.lock = threading.Lock()
        self.events = []
        self.status = status
        self.delay = delay

    def __call__(self, req):
        now = time.time()
        ev = json.loads(req["body"])
        with self.lock:
            self.events.append((now, ev))
        if self.delay:
            time.sleep(self.delay)
        return self.status, {"Content-Type": "application/json"}, b'{"ok": true}'

    def ticks(self, source=None):
        with self.lock:
            return [instant(ev["time"]) for _, ev in self.events
                    if source is None or ev["subject"] == source]

    def ids(self):
        with self.lock:
            return [ev["id"] for _, ev in self.events]

    def count(self):
        with self.lock:
            return len(self.events)


def config(fn_url, source_opts, name="tick", invocation="async", log_level="info",
           fn_opts=""):
    return f"""
log = {{ level = "{log_level}"; }};
sources = ( {{ name = "{name}"; kind = "cron"; {source_opts} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; format = "structured";
                {fn_opts} }} );
triggers = ( {{ name = "t"; sources = ["{name}"]; function = "fn";
               invocation = "{invocation}"; }} );
"""


def contiguous(ticks):
    """True when the sorted ticks are consecutive seconds."""
    s = sorted(ticks)
    return all(b - a == 1 for a, b in zip(s, s[1:]))


# ---- 1. attributes, payload, timing ------------------------------------------------

def test_1_tick_attributes_payload_and_timing(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    started = time.time()
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; '
                                'payload = { job = "beat"; n = [1, 2]; };'))
    fn.wait_count(4, timeout=15)
    t.stop()
    events = [ev for _, ev in rec.events]
    for arrived, ev in rec.events:
        when = instant(ev["time"])
        assert ev["specversion"] == "1.0"
        assert ev["type"] == "triggerd.cron.tick"
        assert ev["source"] == "triggerd/cron/tick"
        assert ev["subject"] == "tick"
        assert ev["time"] == rfc3339(when)  # the scheduled instant, on the second, UTC
        assert ev["id"] == "tick:" + ev["time"]
        assert ev["schedule"] == "* * * * * *"
        assert ev["datacontenttype"] == "application/json"
        assert ev["data"] == {"job": "beat", "n": [1, 2]}
        # fired at its instant (not before), promptly
        assert when <= arrived < when + 1.5, (when, arrived)
        # a first start without a mark fires nothing from before it
        assert when > started - 1
    ticks = [instant(ev["time"]) for ev in events]
    assert len(set(ticks)) == len(ticks) and contiguous(ticks)


def test_1_binary_mode_headers_and_no_payload(triggerd, function_server):
    fn = function_server()
    t = triggerd(f"""
sources = ( {{ name = "beat"; kind = "cron"; schedule = "*/1  *  * * * *"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; format = "binary"; }} );
triggers = ( {{ name = "t"; sources = ["beat"]; function = "fn"; }} );
""")
    fn.wait_count(2, timeout=15)
    t.stop()
    for req in fn.requests:
        h = req["headers"]
        assert h["ce-type"] == "triggerd.cron.tick"
        assert h["ce-subject"] == "beat"
        assert h["ce-source"] == "triggerd/cron/beat"
        assert h["ce-schedule"] == "*/1%20*%20*%20*%20*%20*"  # spaces squeezed, %-encoded
        assert h["ce-id"] == "beat:" + h["ce-time"]
        assert req["body"] == b""


def test_1_jitter_delays_but_keeps_the_scheduled_time(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; jitter = "700ms";'))
    fn.wait_count(6, timeout=20)
    t.stop()
    delays = []
    for arrived, ev in rec.events:
        when = instant(ev["time"])
        assert ev["time"].endswith(":%02dZ" % (when % 60))
        delays.append(arrived - when)
    assert all(0 <= d < 0.7 + 1.0 for d in delays), delays
    ticks = rec.ticks()
    assert len(set(ticks)) == len(ticks) and contiguous(ticks)


# ---- 2. catch-up across a restart --------------------------------------------------

def read_mark(t, name="tick"):
    path = t.state_dir / "cron" / f"{name}.mark"
    text = path.read_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", text), text
    return instant(text.strip())


@pytest.mark.parametrize("policy", ["none", "last", "all"])
def test_2_catchup_across_a_restart(triggerd, function_server, policy):
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, f'schedule = "* * * * * *"; catchup = "{policy}";',
                        invocation="sync"))
    fn.wait_count(2, timeout=15)
    t.stop()
    before = rec.ticks()
    mark = read_mark(t)
    # The mark is the last tick that settled: every tick the function got.
    assert mark == max(before), (mark, before)
    time.sleep(4.2)  # at least 4 ticks are missed
    begin = time.time()
    t.start()
    wait_for(lambda: any(x > begin + 1 for x in rec.ticks()), 15, what="ticks after restart")
    t.stop()
    ticks = rec.ticks()
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    after = sorted(x for x in ticks if x > mark)
    log = t.log()
    if policy == "none":
        # Nothing between the mark and the restart.
        assert not [x for x in after if x <= int(begin)], after
        assert "catch-up" not in log
    else:
        m = re.search(r"catch-up: (\d+) missed ticks after (\S+) up to (\S+); firing (\d+) "
                      r"\(catchup = " + policy + r"\)", log)
        assert m, log
        found, frm, upto, firing = int(m[1]), instant(m[2]), instant(m[3]), int(m[4])
        assert frm == mark
        assert upto >= int(begin)
        assert found == upto - mark >= 4
        missed = [x for x in after if x <= upto]
        if policy == "last":
            assert firing == 1 and missed == [upto]
        else:
            assert firing == found and missed == list(range(mark + 1, upto + 1))
        # then the schedule goes on without a gap
        assert contiguous([x for x in after if x >= upto])
    assert read_mark(t) == max(ticks)


def test_2_catchup_all_is_bounded_by_catchup_max_age(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; catchup = "all"; '
                                'catchup_max_age = "2s";'), start=False)
    # A mark from an hour ago: only the ticks of the last 2 s are fired again.
    (t.state_dir / "cron").mkdir(parents=True)
    old = int(time.time()) - 3600
    (t.state_dir / "cron" / "tick.mark").write_text(rfc3339(old) + "\n")
    t.start()
    fn.wait_count(4, timeout=15)
    t.stop()
    m = re.search(r"catch-up: (\d+) missed ticks after (\S+) up to (\S+) \(ticks older than "
                  r"catchup_max_age 2s are not counted\); firing (\d+)", t.log())
    assert m, t.log()
    assert instant(m[2]) == old
    assert int(m[1]) == int(m[4]) == 3  # now - 2 .. now
    ticks = rec.ticks()
    assert min(ticks) == instant(m[3]) - 2
    assert len(ticks) == len(set(ticks)) and contiguous(ticks)


def test_2_damaged_mark_is_reported_and_replaced(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; catchup = "all";'), start=False)
    (t.state_dir / "cron").mkdir(parents=True)
    (t.state_dir / "cron" / "tick.mark").write_bytes(b"\x00garbage")
    begin = time.time()
    t.start()
    fn.wait_count(2, timeout=15)
    t.stop()
    assert "tick.mark: unexpected byte 0x00 at position 1 of the mark; starting without a " \
           "mark" in t.log()
    assert min(rec.ticks()) > int(begin) - 1  # nothing caught up
    assert read_mark(t) == max(rec.ticks())


# ---- 3. start / end ----------------------------------------------------------------

def test_3_start_and_end_bound_the_ticks(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    start = int(time.time()) + 3
    end = start + 2
    t = triggerd(config(fn.url, f'schedule = "* * * * * *"; start = "{rfc3339(start)}"; '
                                f'end = "{rfc3339(end)}";'))
    fn.wait_count(3, timeout=15)
    time.sleep(2.2)
    assert rec.ticks() == [start, start + 1, start + 2]  # end is inclusive
    # After the end the source is idle and ready.
    status, _, body = http_request("GET", t.admin + "/readyz")
    assert status == 200, body
    assert "no tick left to fire" in t.log()
    t.stop()


def test_3_end_in_the_past_fires_nothing_and_stays_ready(triggerd, function_server):
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; end = "2020-01-01T00:00:00Z";'))
    time.sleep(2.5)
    assert rec.count() == 0
    assert http_request("GET", t.admin + "/readyz")[0] == 200
    t.stop()


# ---- 4. a failing sync function ----------------------------------------------------

def test_4_failed_sync_tick_is_logged_and_counts_as_fired(triggerd, function_server):
    rec = Recorder(status=500)
    fn = function_server(rec)
    t = triggerd(config(fn.url, 'schedule = "* * * * * *"; catchup = "all";',
                        invocation="sync"))
    fn.wait_count(3, timeout=15)
    t.stop()
    ticks = rec.ticks()
    assert len(ticks) == len(set(ticks)), "cron fired a failed tick again"
    assert contiguous(ticks)
    assert "a function failed" in t.log()
    assert "the tick counts as fired" in t.log()
    assert read_mark(t) == max(ticks)


# ---- 5. busy -----------------------------------------------------------------------

def test_5_busy_ticks_fire_again_in_order_and_none_is_lost(triggerd, function_server):
    # Two schedules share a sync function with concurrency 1 that takes 0.6 s: one
    # schedule's tick often finds the other's in flight and is refused (busy).
    rec = Recorder(delay=0.6)
    fn = function_server(rec)
    t = triggerd(f"""
log = {{ level = "debug"; }};
sources = ( {{ name = "a"; kind = "cron"; schedule = "* * * * * *"; }},
            {{ name = "b"; kind = "cron"; schedule = "* * * * * *"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; format = "structured";
                concurrency = 1; timeout = "5s"; }} );
triggers = ( {{ name = "t"; sources = ["a", "b"]; function = "fn"; invocation = "sync"; }} );
""")
    wait_for(lambda: "not taken (function concurrency limit reached)" in t.log(), 20,
             what="a busy tick")
    fn.wait_count(8, timeout=20)
    t.stop()
    for name in ("a", "b"):
        ticks = rec.ticks(name)
        assert ticks == sorted(ticks), f"{name}: out of order"
        assert len(ticks) == len(set(ticks)), f"{name}: a tick twice"
        assert contiguous(ticks), f"{name}: a tick lost: {ticks}"


# ---- 6, 7. the lease ---------------------------------------------------------------

class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING") == "PONG", 10, what="redis-server")
        return self

    def cli(self, *args):
        r = run(["redis-cli", "-p", str(self.port), *args], timeout=10)
        return r.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture
def redis_server():
    servers = []

    def make(port=None, start=True):
        s = RedisServer(port)
        servers.append(s)
        return s.start() if start else s

    yield make
    for s in servers:
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(5)


def test_6_lease_two_instances_fire_each_tick_once(triggerd, function_server, redis_server):
    redis = redis_server()
    rec = Recorder()
    fn = function_server(rec)
    cfg = config(fn.url, f'schedule = "* * * * * *"; lease = "redis://127.0.0.1:{redis.port}";',
                 log_level="debug")
    a = triggerd(cfg, name="a")
    b = triggerd(cfg, name="b")
    both = time.time()
    wait_for(lambda: len([x for x in rec.ticks() if x > both + 1]) >= 5, 20,
             what="5 ticks with both instances up")
    stopping = time.time()
    a.stop()
    b.stop()
    counts = collections.Counter(rec.ids())
    assert all(n == 1 for n in counts.values()), [i for i, n in counts.items() if n > 1]
    window = sorted(x for x in rec.ticks() if both + 1 < x < stopping - 1)
    assert window == list(range(window[0], window[-1] + 1)), window  # none lost
    # Both competed: each tick was taken by one and left by the other.
    logs = a.log() + b.log()
    assert "another instance holds its lease" in logs
    fired_a = len(re.findall(r"\[cron:tick\] tick \S+ fired", a.log()))
    fired_b = len(re.findall(r"\[cron:tick\] tick \S+ fired", b.log()))
    assert fired_a + fired_b == len(counts)
    # One key per fired tick, holding the instance that fired it, with a lifetime.
    keys = redis.cli("--scan", "--pattern", "triggerd:cron:tick:*").split()
    assert len(keys) >= len(counts)
    key = "triggerd:cron:tick:" + rec.events[-1][1]["time"]
    assert key in keys
    assert redis.cli("GET", key).endswith(str(a.state_dir)) or \
        redis.cli("GET", key).endswith(str(b.state_dir))
    ttl = int(redis.cli("PTTL", key))
    assert 3600_000 < ttl <= 3660_000


def test_7_lease_server_down_then_up(triggerd, function_server, redis_server):
    redis = redis_server(start=False)
    rec = Recorder()
    fn = function_server(rec)
    t = triggerd(config(fn.url, f'schedule = "* * * * * *"; '
                                f'lease = "redis://127.0.0.1:{redis.port}";'),
                 wait_ready=False)

    def not_ready():
        status, _, body = http_request("GET", t.admin + "/readyz")
        return status == 503 and b"lease server 127.0.0.1" in body and body

    body = wait_for(not_ready, 10, what="not ready")
    assert b'"source":"tick"' in body
    time.sleep(1.5)
    assert rec.count() == 0
    assert "not fired: lease server 127.0.0.1:%d: cannot connect" % redis.port in t.log()
    redis.start()
    wait_for(t.ready, 10, what="ready again")
    fn.wait_count(2, timeout=10)
    t.stop()
    ticks = rec.ticks()
    assert len(ticks) == len(set(ticks))


# ---- 8. validate -------------------------------------------------------------------

@pytest.mark.parametrize("opts,message", [
    ('schedule = "61 * * * *";', "option 'schedule': minute: 61 is out of range (0-59)"),
    ('schedule = "cron(0 12 * * * *)";', "option 'schedule': "),
    ('schedule = "* * * * *"; timezone = "Mars/Base";',
     "option 'timezone': unknown zone \"Mars/Base\""),
    ('schedule = "* * * * *"; start = "2025-01-01";', "option 'start': invalid RFC 3339 time"),
    ('schedule = "* * * * *"; start = "2025-01-02T00:00:00Z"; end = "2025-01-01T00:00:00Z";',
     "option 'end' must be after option 'start'"),
    ('schedule = "* * * * *"; lease = "rediss://h:6379";', "option 'lease': rediss:// (TLS)"),
    ('schedule = "* * * * *"; lease = "redis://h:99999";',
     "option 'lease': port \"99999\" at position 11 is not a number 1-65535"),
    ('schedule = "* * * * *"; catchup = "some";', "catchup"),
])
def test_8_validate_names_file_line_and_option(tmp_path, opts, message):
    path = tmp_path / "bad.cfg"
    path.write_text(f"""functions = ( {{ name = "fn"; kind = "log"; }} );
sources = (
  {{ name = "tick"; kind = "cron";
    {opts} }}
);
triggers = ( {{ name = "t"; sources = ["tick"]; function = "fn"; }} );
""")
    r = run([binary("triggerctl"), "validate", str(path)])
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr, r.stderr
    assert re.search(re.escape(str(path)) + r":[34]: ", r.stderr), r.stderr
    assert 'sources[0] "tick"' in r.stderr, r.stderr


def test_8_validate_accepts_every_kind_of_expression(tmp_path):
    path = tmp_path / "good.cfg"
    path.write_text("""functions = ( { name = "fn"; kind = "log"; } );
sources = (
  { name = "a"; kind = "cron"; schedule = "*/5 * * * *"; timezone = "Europe/Paris"; },
  { name = "b"; kind = "cron"; schedule = "30 0 12 * * MON-FRI"; catchup = "all"; },
  { name = "c"; kind = "cron"; schedule = "cron(0 12 L * ? *)"; lease = "redis://:pw@127.0.0.1:6379/2"; },
  { name = "d"; kind = "cron"; schedule = "rate(5 minutes)"; start = "2025-01-01T00:00:00Z"; },
  { name = "e"; kind = "cron"; schedule = "at(2030-01-01T00:00:00)"; end = "2031-01-01T00:00:00Z"; },
  { name = "f"; kind = "cron"; schedule = "@hourly"; jitter = "30s"; payload = { x = 1; }; }
);
triggers = ( { name = "t"; sources = ["a", "b", "c", "d", "e", "f"]; function = "fn"; } );
""")
    r = run([binary("triggerctl"), "validate", str(path)])
    assert r.returncode == 0, r.stderr
    assert "6 sources" in r.stdout


# ---- 9. reload ---------------------------------------------------------------------

def test_9_sighup_replaces_a_changed_schedule_and_keeps_an_unchanged_one(triggerd,
                                                                         function_server):
    rec = Recorder()
    fn = function_server(rec)

    def cfg(version):
        return f"""
sources = ( {{ name = "changing"; kind = "cron"; schedule = "* * * * * *";
              payload = {{ v = {version}; }}; }},
            {{ name = "steady"; kind = "cron"; schedule = "* * * * * *"; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; format = "structured"; }} );
triggers = ( {{ name = "t"; sources = ["changing", "steady"]; function = "fn"; }} );
"""

    t = triggerd(cfg(1))
    wait_for(lambda: len(rec.ticks("changing")) >= 2, 15, what="2 ticks")
    t.config.write_text(cfg(2))
    t.signal(signal.SIGHUP)
    wait_for(lambda: sum(1 for _, ev in rec.events if ev.get("data") == {"v": 2}) >= 3, 15,
             what="3 ticks of the new configuration")
    t.stop()
    changing = [ev for _, ev in rec.events if ev["subject"] == "changing"]
    versions = [ev["data"]["v"] for ev in changing]
    first_new = versions.index(2)
    assert all(v == 2 for v in versions[first_new:]), versions  # the old one stopped
    ticks = [instant(ev["time"]) for ev in changing]
    assert len(ticks) == len(set(ticks)) and ticks == sorted(ticks)
    # The unchanged source kept running through the reload: no tick lost.
    steady = rec.ticks("steady")
    assert len(steady) == len(set(steady)) and contiguous(steady)
    assert "reloaded" in t.log()

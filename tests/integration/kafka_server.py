"""The Kafka broker of the integration tests, and small clients for it.

No Kafka broker package exists on this system, so the tests use librdkafka's built-in
MOCK cluster, run as a process of its own by tests/tools/mock_kafka (built by make): it
listens on loopback ports chosen at run time and speaks the Kafka protocol over TCP, so
triggerd connects to it exactly as to a real broker. It is a mock, not Apache Kafka: it
keeps partitions in memory, joining a group takes about 3 s, and it implements what
librdkafka's clients use. The same tool produces records, reads topics and reports a
group's committed offsets. Every process started here is stopped by its PID.

kafka_config() makes the triggerd configuration the Kafka tests share: one kafka source
"in", one http function "fn", one trigger "t", with settings that suit the mock.
"""
import base64
import json
import os
import select
import signal
import subprocess
import time

import pytest

from conftest import binary


def _b64(value):
    return None if value is None else base64.b64decode(value)


class MockKafka:
    """A mock Kafka cluster (librdkafka's rdkafka_mock) in a child process."""

    def __init__(self, topics=None, brokers=1, missing=()):
        self.tool = binary("tools/mock_kafka")
        args = [self.tool, "--brokers", str(brokers)]
        for name, partitions in (topics or {}).items():
            args += ["--topic", f"{name}:{partitions}"]
        for name in missing:
            args += ["--missing", name]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("bootstrap="):
            self.stop()
            raise AssertionError(f"mock_kafka did not start: {line!r} "
                                 f"{self.proc.stderr.read().decode(errors='replace')}")
        self.bootstrap = line.strip().split("=", 1)[1]

    def create(self, topic):
        """Ends the "unknown topic" answers of a --missing topic (4 partitions)."""
        self.proc.stdin.write(f"create {topic}\n".encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        assert line.strip() == f"ok {topic}", line

    def _run(self, args, stdin=None, timeout=120):
        return subprocess.run([self.tool] + args + ["--bootstrap", self.bootstrap],
                              input=stdin, capture_output=True, timeout=timeout)

    def produce(self, topic, records):
        """records: dicts with optional partition, key, value (str, bytes or None),
        headers (list of (name, value)) and timestamp (ms); bytes travel as base64."""
        lines = []
        for r in records:
            out = {}
            for field in ("partition", "timestamp"):
                if field in r:
                    out[field] = r[field]
            for field in ("key", "value"):
                if field not in r:
                    continue
                v = r[field]
                if isinstance(v, bytes):
                    out[field + "_b64"] = base64.b64encode(v).decode()
                else:
                    out[field] = v
            if "headers" in r:
                out["headers"] = [[n, v] for n, v in r["headers"]]
            lines.append(json.dumps(out))
        res = self._run(["produce", "--topic", topic], stdin=("\n".join(lines) + "\n").encode())
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        return len(records)

    def fill(self, topic, count, partitions=None, size=100):
        args = ["fill", "--topic", topic, "--count", str(count), "--size", str(size)]
        if partitions:
            args += ["--partitions", str(partitions)]
        res = self._run(args)
        assert res.returncode == 0, res.stderr.decode(errors="replace")

    def committed(self, group, topic):
        """{partition: (committed offset or -1, high watermark)}"""
        res = self._run(["committed", "--group", group, "--topic", topic])
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        out = {}
        for line in res.stdout.decode().split("\n"):
            if line.strip():
                p, c, h = (int(x) for x in line.split())
                out[p] = (c, h)
        return out

    def all_committed(self, group, topic):
        return all(c == h for c, h in self.committed(group, topic).values())

    def consume(self, topic, count, timeout=10):
        """The first count records of topic (from the beginning), as dicts with
        partition, offset, key, value (bytes or None) and headers [(name, bytes)]."""
        res = self._run(["consume", "--topic", topic, "--count", str(count),
                         "--timeout", str(timeout)], timeout=timeout + 30)
        records = []
        for line in res.stdout.decode().split("\n"):
            if not line.strip():
                continue
            r = json.loads(line)
            r["key"] = _b64(r["key"])
            r["value"] = _b64(r["value"])
            r["headers"] = [(n, _b64(v)) for n, v in r["headers"]]
            records.append(r)
        assert len(records) >= count, (f"{len(records)} of {count} records in {topic}: "
                                       f"{res.stderr.decode(errors='replace')}")
        return records

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


# Quick settings for the mock cluster: short fetch waits, frequent commits, a short
# session so that a dead member leaves the group soon.
FAST = ('"fetch.wait.max.ms=20", "auto.commit.interval.ms=100", '
        '"session.timeout.ms=6000", "heartbeat.interval.ms=300"')


def kafka_config(bootstrap, fn_url, topics='"orders"', group="g", source="",
                 trigger="", function="concurrency = 64;", invocation="sync", log="info"):
    return f"""
log = {{ level = "{log}"; }};
sources = ( {{ name = "in"; kind = "kafka"; brokers = ["{bootstrap}"]; topics = [{topics}];
              group = "{group}"; start = "earliest"; rdkafka = [{FAST}];
              backoff = {{ base = "50ms"; cap = "200ms"; }}; {source} }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn_url}"; timeout = "10s";
                {function} }} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "fn"; invocation = "{invocation}";
               {trigger} }} );
"""


@pytest.fixture
def mock_kafka():
    """Makes mock clusters: mock_kafka({"orders": 3}) -> MockKafka; stopped at the end."""
    clusters = []

    def make(topics=None, brokers=1, missing=()):
        c = MockKafka(topics, brokers, missing)
        clusters.append(c)
        return c

    yield make
    for c in clusters:
        c.stop()


def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

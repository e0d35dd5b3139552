"""Faults of the Kafka source: kill -9 in the middle of 10,000 records (twice), and two
instances in one consumer group, one of which stops. The cluster is librdkafka's MOCK
cluster (tests/tools/mock_kafka, see kafka_server.py), since no Kafka broker package
exists here; triggerd reaches it over TCP on loopback as it would a real broker.

What is checked: every record reaches the function at least once; every duplicate is a
record that had reached the function but was not yet committed when triggerd died (so
duplicates are bounded by what was in flight); the committed offsets end at the log end;
partitions are split between the instances and taken over without loss.
"""
import threading
import time

from kafka_server import kafka_config, mock_kafka, wait_until  # noqa: F401 (fixture)


class Counter:
    """An HTTP function that counts deliveries per event id."""

    def __init__(self, function_server, delay=0):
        self.seen = {}
        self.lock = threading.Lock()

        def respond(req):
            if delay:
                time.sleep(delay)
            h = req["headers"]
            key = (int(h["ce-kafkapartition"]), int(h["ce-kafkaoffset"]))
            with self.lock:
                self.seen[key] = self.seen.get(key, 0) + 1
            return 200, {"Content-Type": "application/json"}, b"{}"

        self.server = function_server(respond)
        self.url = self.server.url

    def distinct(self):
        with self.lock:
            return len(self.seen)

    def copy(self):
        with self.lock:
            return dict(self.seen)


def uncommitted(seen, committed):
    """Records the function had seen whose offsets were not committed."""
    return {k for k in seen if k[1] >= committed[k[0]][0]}


def test_no_loss_with_kill_9_twice(triggerd, function_server, mock_kafka):
    total, parts = 10000, 6
    kafka = mock_kafka({"load": parts})
    kafka.fill("load", total, partitions=parts, size=64)
    fn = Counter(function_server)
    cfg = kafka_config(kafka.bootstrap, fn.url, topics='"load"', group="noloss",
                       log="warn")
    in_flight = set()
    for run, stop_at in enumerate((total * 3 // 10, total * 6 // 10)):
        t = triggerd(cfg, name=f"run{run}")
        wait_until(lambda: fn.distinct() >= stop_at, 120, f"{stop_at} records")
        t.kill9()
        time.sleep(0.3)
        in_flight |= uncommitted(fn.copy(), kafka.committed("noloss", "load"))
    t = triggerd(cfg, name="last")
    wait_until(lambda: fn.distinct() >= total, 180, "every record")
    wait_until(lambda: kafka.all_committed("noloss", "load"), 30,
               "committed offsets at the log end")
    assert t.stop() == 0
    seen = fn.copy()
    expected = {(i % parts, i // parts) for i in range(total)}
    assert set(seen) == expected, "records lost"
    duplicates = {k for k, n in seen.items() if n > 1}
    extra = sum(n - 1 for n in seen.values())
    assert duplicates <= in_flight, "a duplicate that had been committed"
    assert extra <= 2 * len(in_flight), f"{extra} duplicates for {len(in_flight)} in flight"
    print(f"kill -9 twice: {total} records, {extra} duplicates, "
          f"{len(in_flight)} uncommitted at the kills")


def test_two_instances_split_partitions_and_take_over(triggerd, function_server, mock_kafka):
    """a reads alone; b joins while a is busy (a finishes or gives up its in-flight work
    before it lets partitions go); then they split the partitions; then b stops in the
    middle of a backlog and a takes everything over. Nothing is lost at any step."""
    kafka = mock_kafka({"shared": 4})
    fa, fb = Counter(function_server, delay=0.01), Counter(function_server, delay=0.01)
    a = triggerd(kafka_config(kafka.bootstrap, fa.url, topics='"shared"', group="pair"),
                 name="a")
    kafka.fill("shared", 400, partitions=4)  # offsets 0..99 per partition
    wait_until(lambda: fa.distinct() >= 40, 30, "a at work")
    b = triggerd(kafka_config(kafka.bootstrap, fb.url, topics='"shared"', group="pair"),
                 name="b")
    wait_until(lambda: "assigned 2 partitions" in a.log() and
               "assigned 2 partitions" in b.log(), 30, "two partitions each")
    wait_until(lambda: len(set(fa.copy()) | set(fb.copy())) >= 400, 60, "the first 400")
    wait_until(lambda: kafka.all_committed("pair", "shared"), 15, "the first commit")
    # Split: the next records go to one instance per partition.
    kafka.fill("shared", 200, partitions=4)  # offsets 100..149
    wait_until(lambda: len(set(fa.copy()) | set(fb.copy())) >= 600, 60, "the next 200")
    pa = {p for p, o in fa.copy() if 100 <= o < 150}
    pb = {p for p, o in fb.copy() if 100 <= o < 150}
    assert pa and pb and not pa & pb and pa | pb == {0, 1, 2, 3}, (pa, pb)
    # b stops with a backlog in front of it; a takes its partitions over.
    kafka.fill("shared", 400, partitions=4)  # offsets 150..249
    wait_until(lambda: len([k for k in fb.copy() if k[1] >= 150]) >= 20, 30, "b at work")
    assert b.stop() == 0
    wait_until(lambda: len(set(fa.copy()) | set(fb.copy())) >= 1000, 60, "all 1000")
    assert {p for p, o in fa.copy() if o >= 200} == {0, 1, 2, 3}, "a took every partition"
    seen = set(fa.copy()) | set(fb.copy())
    assert seen == {(p, o) for p in range(4) for o in range(250)}
    wait_until(lambda: kafka.all_committed("pair", "shared"), 15, "committed to the end")
    assert a.stop() == 0

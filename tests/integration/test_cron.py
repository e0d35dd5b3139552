"""The cron source end to end, and `triggerctl next-fires` against hand-checked
instants (the unit tests hold the full DST tables)."""
import datetime
import json

from conftest import binary, run, wait_for


def test_seconds_field_schedule_fires_on_the_second(triggerd, function_server):
    fn = function_server()
    t = triggerd(f"""
sources = ( {{ name = "tick"; kind = "cron"; schedule = "* * * * * *";
              payload = {{ job = "beat"; }}; }} );
functions = ( {{ name = "fn"; kind = "http"; url = "{fn.url}"; format = "structured"; }} );
triggers = ( {{ name = "t"; sources = ["tick"]; function = "fn"; invocation = "async"; }} );
""")
    fn.wait_count(3, timeout=10)
    events = [json.loads(r["body"]) for r in fn.requests[:3]]
    for ev in events:
        assert ev["type"] == "triggerd.cron.tick"
        assert ev["subject"] == "tick"
        assert ev["data"] == {"job": "beat"}
        scheduled = datetime.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
        assert scheduled.microsecond == 0  # the scheduled instant, on the second
        assert "tick" in ev["id"]
    assert len({ev["id"] for ev in events}) == 3
    # fired close to its instant: each request came within a second of the scheduled time
    t.stop()


def next_fires(*args):
    r = run([binary("triggerctl"), "next-fires", *args])
    return r.returncode, r.stdout.split(), r.stderr


def test_next_fires_new_york_spring_forward_cronie():
    # 02:30 does not exist on 2025-03-09 in New York: cronie runs it right after the jump
    # (03:00 EDT = 07:00Z); the day after it is 02:30 EDT = 06:30Z.
    rc, out, _ = next_fires("30 2 * * *", "--tz", "America/New_York", "--after",
                            "2025-03-08T12:00:00Z", "-n", "2")
    assert rc == 0
    assert out == ["2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"]


def test_next_fires_sydney_fall_back_runs_once():
    # 2025-04-06 03:00 AEDT falls back to 02:00 AEST: 02:30 happens twice, fixed jobs
    # run once, in the first pass (02:30 AEDT = 15:30Z on the 5th).
    rc, out, _ = next_fires("30 2 * * *", "--tz", "Australia/Sydney", "--after",
                            "2025-04-05T00:00:00Z", "-n", "2")
    assert rc == 0
    assert out == ["2025-04-05T15:30:00Z", "2025-04-06T16:30:00Z"]


def test_next_fires_aws_rate_and_at():
    rc, out, _ = next_fires("rate(5 minutes)", "--start", "2025-01-01T00:00:00Z", "--after",
                            "2025-01-01T00:07:00Z", "-n", "2")
    assert (rc, out) == (0, ["2025-01-01T00:10:00Z", "2025-01-01T00:15:00Z"])
    rc, out, _ = next_fires("cron(0 12 ? * MON-FRI *)", "--after", "2025-01-03T13:00:00Z",
                            "-n", "1")
    assert (rc, out) == (0, ["2025-01-06T12:00:00Z"])
    rc, out, _ = next_fires("at(2030-05-01T10:00:00)", "--after", "2025-01-01T00:00:00Z")
    assert (rc, out) == (0, ["2030-05-01T10:00:00Z"])


def test_next_fires_invalid_expression_names_the_field():
    rc, _, err = next_fires("61 * * * *")
    assert rc == 2 and "minute" in err

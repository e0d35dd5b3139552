"""triggerctl as a user runs it: test-pattern, match (against the shared benchmark's
agreed counts), validate and describe."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED, binary, run

TRIGGERCTL = binary("triggerctl")


def ctl(*args, **kw):
    return run([TRIGGERCTL, *args], **kw)


def test_test_pattern_match_and_no_match():
    r = ctl("test-pattern", '{"detail": {"state": ["running"]}}',
            '{"detail": {"state": "running"}}')
    assert (r.returncode, r.stdout) == (0, "match\n")
    r = ctl("test-pattern", '{"detail": {"state": ["running"]}}',
            '{"detail": {"state": "stopped"}}')
    assert (r.returncode, r.stdout) == (1, "no match\n")


def test_test_pattern_reads_files(tmp_path):
    (tmp_path / "p.json").write_text('{"size": [{"numeric": [">", 10, "<=", 20]}]}')
    (tmp_path / "e.json").write_text('{"size": 20}')
    r = ctl("test-pattern", f"@{tmp_path}/p.json", f"@{tmp_path}/e.json")
    assert (r.returncode, r.stdout) == (0, "match\n")


def test_test_pattern_errors_exit_2():
    r = ctl("test-pattern", '{"size": [{"numeric": ["=>", 1]}]}', '{"size": 1}')
    assert r.returncode == 2
    assert "size" in r.stderr and "numeric" in r.stderr
    r = ctl("test-pattern", '{"a": ["x"]}', '{"a": ')
    assert r.returncode == 2 and "invalid event" in r.stderr
    r = ctl("test-pattern", '{"a": ["x"]}', "@/nonexistent/event.json")
    assert r.returncode == 2 and "/nonexistent/event.json" in r.stderr


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def expected_counts():
    rows = {}
    with open(os.path.join(SHARED, "bench", "expected_matches.tsv")) as f:
        for line in f:
            if line.startswith("#") or line.startswith("mix"):
                continue
            mix, k, matches, matched, digest = line.split()
            rows[(mix, int(k))] = (int(matches), int(matched), digest)
    return rows


@pytest.fixture(scope="module")
def citylots(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    events = d / "events.jsonl"
    subprocess.run([sys.executable, os.path.join(SHARED, "bench", "gen_citylots.py"), "-n",
                    "100000", "--seed", "1", "-o", str(events)], check=True)
    return d


@pytest.mark.parametrize("mix", ["portable", "full"])
def test_match_agrees_with_the_reference_counts(citylots, mix):
    k = 1000
    rules = citylots / f"rules_{mix}.tsv"
    if not rules.exists():
        subprocess.run([sys.executable, os.path.join(SHARED, "bench", "gen_rules.py"), "-k",
                        "10000", "--mix", mix, "-o", str(rules)], check=True)
    first_k = citylots / f"rules_{mix}_{k}.tsv"
    with open(rules) as src, open(first_k, "w") as dst:
        for i, line in enumerate(src):
            if i == k:
                break
            dst.write(line)
    r = ctl("match", str(first_k), str(citylots / "events.jsonl"), timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")[:-1]
    assert len(lines) == 100000
    matches = matched = digest = 0
    for i, line in enumerate(lines):
        names = line.split("\t") if line else []
        assert names == sorted(names)
        matches += len(names)
        matched += bool(names)
        for n in names:
            digest = (digest + fnv1a64(n.encode()) * (i + 1)) & 0xFFFFFFFFFFFFFFFF
    assert (matches, matched, f"{digest:016x}") == expected_counts()[(mix, k)]


def test_match_reports_a_bad_rule_with_its_line(tmp_path):
    rules = tmp_path / "rules.tsv"
    rules.write_text('good\t{"a": ["x"]}\nbad\t{"a": "x"}\n')
    events = tmp_path / "events.jsonl"
    events.write_text('{"a": "x"}\n')
    r = ctl("match", str(rules), str(events))
    assert r.returncode == 2
    assert f"{rules}:2" in r.stderr and "bad" in r.stderr


def test_validate_the_shipped_configurations():
    r = ctl("validate", os.path.join(ROOT, "config", "triggerd.cfg"))
    assert r.returncode == 0, r.stderr
    assert "source" in r.stdout and "trigger" in r.stdout
    assert len(r.stdout.strip().split("\n")) == 1


def test_validate_reports_every_error_with_file_and_line(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(
        'sources = ( { name = "in"; kind = "webhook"; path = "/in"; colour = "red"; } );\n'
        'functions = ( { name = "f"; kind = "http"; url = "http://127.0.0.1:1/"; timeout = "zz"; } );\n'
        'triggers = ( { name = "t"; sources = ["nope"]; function = "f";\n'
        '               pattern = "{\\"a\\": \\"x\\"}"; } );\n')
    r = ctl("validate", str(cfg))
    assert r.returncode == 2
    err = r.stderr
    assert f"{cfg}:1" in err and "colour" in err
    assert f"{cfg}:2" in err and "timeout" in err
    assert "nope" in err
    assert "pattern" in err


def test_describe_prints_the_option_table():
    r = ctl("describe", "webhook")
    assert r.returncode == 0
    for option in ("path", "format", "auth", "hmac"):
        assert option in r.stdout
    r = ctl("describe", "http")
    assert r.returncode == 0 and "url" in r.stdout and "timeout" in r.stdout
    r = ctl("describe", "no-such-kind")
    assert r.returncode == 2 and "no-such-kind" in r.stderr


def test_every_shipped_example_validates():
    import re
    configs = [os.path.join(ROOT, "config", "compose.cfg")]
    examples = os.path.join(ROOT, "config", "examples")
    configs += [os.path.join(examples, f) for f in sorted(os.listdir(examples))]
    for path in configs:
        with open(path) as f:
            needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", f.read()))
        # each variable without a default gets a value of the right shape
        env = dict(os.environ, **{name: "placeholder" for name in needed})
        env.update({k: v for k, v in {
            "MQTT_URL": "tcp://127.0.0.1:1883", "REDIS_URL": "redis://127.0.0.1:6379",
            "KAFKA_BROKERS": "127.0.0.1:9092", "FUNCTION_URL": "http://127.0.0.1:8080/",
        }.items() if k in needed})
        r = ctl("validate", path, env=env)
        assert r.returncode == 0, f"{path}: {r.stderr}"


def test_docker_compose_file_is_valid():
    import shutil
    tool = shutil.which("docker-compose")
    if not tool:
        pytest.skip("docker-compose is not installed (no Docker engine runs here)")
    r = run([tool, "-f", os.path.join(ROOT, "docker-compose.yml"), "config", "-q"], cwd=ROOT)
    assert r.returncode == 0, r.stderr

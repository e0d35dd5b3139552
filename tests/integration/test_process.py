"""The process function kind behind the Lambda Runtime API (functions/process.c,
functions/runtime_api.c): triggerd as a real process running real runtime processes.

Most tests use `runtime = "provided"` with the test runtimes in functions/: pyboot (a
standard-library Python runtime loop whose handler the event steers) and shboot (a
shell + curl bootstrap as in AWS's custom runtime tutorial). The shipped python3 and
nodejs bootstraps are exercised at the end when they are present. Invocations go
through the Lambda Invoke API on the admin listener."""
import base64
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT, built_with_asan, http_request, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PYBOOT = os.path.join(HERE, "functions", "pyboot")
SHBOOT = os.path.join(HERE, "functions", "shboot")
RUNTIMES = os.path.join(ROOT, "functions", "runtimes")
INVOKE = "/2015-03-31/functions/{}/invocations"


def function(name, code=PYBOOT, runtime="provided", **opts):
    extra = "".join(f' {k} = {v if isinstance(v, (int, dict)) else json.dumps(v)};'
                    for k, v in opts.items() if k != "environment")
    env = opts.get("environment")
    if env:
        extra += " environment = { " + " ".join(f'{k} = "{v}";' for k, v in env.items()) + " };"
    return (f'{{ name = "{name}"; kind = "process"; runtime = "{runtime}"; '
            f'code = "{code}";{extra} }}')


def config(*functions):
    return f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = (
  {",".join(functions)}
);
triggers = ( {{ name = "t"; sources = ["in"]; function = "{functions[0].split('"')[1]}"; }} );
"""


def invoke(t, name, event, headers=None, timeout=30):
    body = json.dumps(event) if not isinstance(event, (str, bytes)) else event
    status, h, out = http_request("POST", t.admin + INVOKE.format(name), body, headers or {},
                                  timeout=timeout)
    assert status == 200, (status, out)
    return h, json.loads(out) if out else None


def children(pid):
    """PIDs of the live processes whose parent is pid (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def triggerd(triggerd):
    """conftest's triggerd, stopped with SIGTERM at the end of each test: it must exit
    with 0, leave no runtime process behind, and (under ASan) report nothing."""
    started = []

    def make(*args, **kw):
        t = triggerd(*args, **kw)
        started.append(t)
        return t

    yield make
    for t in started:
        if not t.proc or t.proc.poll() is not None:
            continue
        kids = children(t.proc.pid)
        assert t.stop() == 0, t.log()
        wait_for(lambda: not any(alive(k) for k in kids), 5, what="runtime processes to end")
        assert "Sanitizer" not in t.log() and "runtime error" not in t.log(), t.log()


# ---- warm reuse, scale up and down ----

def test_one_warm_process_serves_100_sequential_invocations(triggerd):
    t = triggerd(config(function("warm")))
    pids = set()
    for i in range(100):
        h, out = invoke(t, "warm", {"do": "pid"})
        assert "X-Amz-Function-Error" not in h
        pids.add(out["pid"])
    assert len(pids) == 1
    assert out["ppid"] == t.proc.pid
    assert children(t.proc.pid) == [out["pid"]]
    # Only the first invocation was a cold start.
    assert t.log().count("Init Duration") == 1


def test_scale_up_to_concurrency_then_down_to_zero(triggerd):
    t = triggerd(config(function("wide", concurrency=3, idle_timeout="1s", timeout="20s")))
    seen_max = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            seen_max[0] = max(seen_max[0], len(children(t.proc.pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda _: http_request("POST", t.admin + INVOKE.format("wide"),
                                       json.dumps({"do": "sleep", "seconds": 0.5}), timeout=30),
                range(9)))
    finally:
        stop.set()
        sampler.join()
    ok = [json.loads(b) for s, h, b in results if s == 200 and "X-Amz-Function-Error" not in h]
    throttled = [s for s, h, b in results if s == 429]
    assert len(ok) + len(throttled) == 9 and len(ok) >= 3
    assert len({o["pid"] for o in ok}) == 3  # scaled up to the limit, never past it
    assert seen_max[0] == 3
    # Scale to zero after idle_timeout (SIGTERM, then SIGKILL 500 ms later).
    wait_for(lambda: children(t.proc.pid) == [], 10, what="no runtime process left")
    h, out = invoke(t, "wide", {"do": "pid"})  # and a cold start again
    assert out["pid"] not in {o["pid"] for o in ok}


def test_idle_timeout_zero_keeps_one_warm(triggerd):
    t = triggerd(config(function("keep", concurrency=2, idle_timeout="0s")))
    _, first = invoke(t, "keep", {"do": "pid"})
    time.sleep(1.5)
    _, again = invoke(t, "keep", {"do": "pid"})
    assert again["pid"] == first["pid"]


# ---- failures ----

def test_timeout_kills_the_process_and_a_new_one_takes_over(triggerd):
    t = triggerd(config(function("slow", timeout="1s")))
    _, before = invoke(t, "slow", {"do": "pid"})
    started = time.monotonic()
    h, err = invoke(t, "slow", {"do": "sleep", "seconds": 10})
    assert time.monotonic() - started < 5
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": "Task timed out after 1.00 seconds",
                   "errorType": "Sandbox.Timedout"}
    wait_for(lambda: not alive(before["pid"]), 5, what="the timed-out process to be gone")
    _, after = invoke(t, "slow", {"do": "pid"})
    assert after["pid"] != before["pid"]
    assert re.search(r"REPORT RequestId: \S+\tDuration: (9\d\d|1\d\d\d)\.\d\d ms\tBilled "
                     r"Duration: (9\d\d|1\d\d\d) ms\tMemory Size: 128 MB.*Sandbox.Timedout", t.log())


@pytest.mark.parametrize("event,message", [
    ({"do": "exit", "code": 3}, "Runtime exited with error: exit status 3"),
    ({"do": "kill"}, "Runtime exited with error: signal: killed"),
])
def test_a_crash_names_exit_status_or_signal(triggerd, event, message):
    t = triggerd(config(function("crash")))
    h, err = invoke(t, "crash", event)
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": message, "errorType": "Runtime.ExitError"}
    _, ok = invoke(t, "crash", {"do": "pid"})
    assert "pid" in ok


def test_handler_error_is_passed_through(triggerd):
    t = triggerd(config(function("err")))
    h, err = invoke(t, "err", {"do": "error", "message": "bad input", "type": "ValueError"})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": "bad input", "errorType": "ValueError"}
    assert "Error: ValueError: bad input" in t.log()


def test_init_error_then_recovery(triggerd, tmp_path):
    flag = tmp_path / "fail-init"
    flag.write_text("x")
    t = triggerd(config(function("init", environment={"INIT_FAIL_FILE": str(flag)})))
    h, err = invoke(t, "init", {"do": "pid"})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": "init failed on purpose", "errorType": "Test.InitFailed"}
    assert not flag.exists()
    _, ok = invoke(t, "init", {"do": "pid"})  # the next invocation starts a new process
    assert "pid" in ok


def test_exit_before_the_first_next_is_an_init_failure(triggerd):
    t = triggerd(config(function("initexit", environment={"INIT_EXIT": "4"})))
    h, err = invoke(t, "initexit", {"do": "pid"})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": "Runtime exited with error: exit status 4",
                   "errorType": "Runtime.ExitError"}


def test_init_timeout(triggerd, tmp_path):
    code = tmp_path / "hang"
    code.mkdir()
    (code / "bootstrap").write_text("#!/bin/sh\nexec sleep 60\n")
    (code / "bootstrap").chmod(0o755)
    t = triggerd(config(function("hang", code=str(code), init_timeout="1s", timeout="5s")))
    h, err = invoke(t, "hang", {})
    assert err["errorType"] == "Runtime.InitError"
    assert "within 1.00 s" in err["errorMessage"]
    wait_for(lambda: children(t.proc.pid) == [], 5, what="the hung process to be killed")


def test_a_runtime_that_stops_asking_for_work_is_replaced(triggerd, tmp_path):
    # It answers once, then never calls /next again: after init_timeout it is killed
    # and the next invocation gets a new process instead of waiting for ever.
    code = tmp_path / "once"
    code.mkdir()
    (code / "bootstrap").write_text(
        "#!/usr/bin/env python3\n"
        "import os, time, urllib.request\n"
        "api = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + "
        "'/2018-06-01/runtime/invocation/'\n"
        "with urllib.request.urlopen(api + 'next') as r:\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']\n"
        "body = ('{\"pid\": %d}' % os.getpid()).encode()\n"
        "urllib.request.urlopen(urllib.request.Request(api + rid + '/response', body))\n"
        "time.sleep(3600)\n")
    (code / "bootstrap").chmod(0o755)
    t = triggerd(config(function("once", code=str(code), init_timeout="1s", timeout="6s",
                                 concurrency=1)))
    _, first = invoke(t, "once", {})
    h, second = invoke(t, "once", {})
    assert "X-Amz-Function-Error" not in h, second
    assert second["pid"] != first["pid"]
    wait_for(lambda: not alive(first["pid"]), 5, what="the stuck runtime to be killed")
    assert re.search(rf"runtime process {first['pid']} did not ask for the next invocation "
                     r"within 1\.00 s: killed", t.log())


def test_memory_limit_exceeded(triggerd):
    t = triggerd(config(function("mem", memory_mb=128, timeout="10s")))
    h, err = invoke(t, "mem", {"do": "alloc", "mb": 300, "hold": 2})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err == {"errorMessage": "Runtime exited with error: signal: killed",
                   "errorType": "Runtime.OutOfMemory"}
    _, ok = invoke(t, "mem", {"do": "alloc", "mb": 30})
    assert ok == {"allocated": 30}
    m = re.findall(r"Max Memory Used: (\d+) MB", t.log())
    assert m and 30 <= int(m[-1]) <= 128


def test_oversized_response_is_413_and_a_function_error(triggerd):
    t = triggerd(config(function("big", timeout="10s")))
    h, err = invoke(t, "big", {"do": "big", "bytes": 7 << 20})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291456" in err["errorMessage"]
    # The runtime saw the 413 (it logs that after the invocation ended).
    wait_for(lambda: re.search(r"response answered 413 .*RequestEntityTooLarge", t.log()), 5,
             what="the runtime's 413")
    _, ok = invoke(t, "big", {"do": "big", "bytes": 10})
    assert ok == {"data": "x" * 10}


def test_runtime_inherits_no_descriptor_of_triggerd(triggerd):
    # Only stdin, stdout and stderr cross exec: none of triggerd's sockets, pipes,
    # eventfds or epoll.
    t = triggerd(config(function("fds")))
    _, out = invoke(t, "fds", {"do": "pid"})

    def targets(pid):
        found = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                found[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        return found

    ours = set(targets(t.proc.pid).values())
    theirs = targets(out["pid"])
    leaked = {fd: what for fd, what in theirs.items()
              if fd > 2 and (what in ours or what.startswith("anon_inode:"))}
    assert not leaked, (leaked, theirs)


# ---- the Runtime API ----

def test_request_id_isolation(triggerd):
    t = triggerd(config(function("a"), function("b", timeout="10s")))
    h, _ = invoke(t, "a", {"do": "pid"})
    stale = h["x-amzn-RequestId"]
    # A stale id of the same function: 410; an unknown one: 400.
    _, out = invoke(t, "a", {"do": "post", "id": str(uuid.uuid4())})
    assert out["status"] == 400 and out["body"]["errorType"] == "InvalidRequestID"
    # Another function's invocation in flight: its id is unknown to a's process (400),
    # and b's invocation is not disturbed.
    holder = {}

    def run_b():
        holder["b"] = invoke(t, "b", {"do": "sleep", "seconds": 1.5})

    th = threading.Thread(target=run_b)
    th.start()
    b_id = wait_for(lambda: re.findall(r"\[process:b\] START RequestId: (\S+)", t.log()), 5,
                    what="b to start")[0]
    _, out = invoke(t, "a", {"do": "post", "id": b_id})
    assert out["status"] == 400 and out["body"]["errorType"] == "InvalidRequestID"
    th.join()
    assert "slept" in holder["b"][1]
    # The ids a finished are stale now: 410.
    a_ids = re.findall(r"\[process:a\] END RequestId: (\S+)", t.log())
    _, out = invoke(t, "a", {"do": "post", "id": a_ids[0]})
    assert out["status"] == 410, out


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/2018-06-01/runtime/nothing", 404),
    ("GET", "/2018-07-01/runtime/invocation/next", 404),
    ("POST", "/2018-06-01/runtime/invocation/next", 405),
    ("GET", "/2018-06-01/runtime/invocation/abc/response", 405),
    ("POST", "/2018-06-01/runtime/invocation/a%20b/response", 400),
    ("POST", "/2018-06-01/runtime/init/error", 403),  # only before the first /next
])
def test_runtime_api_status_codes(triggerd, method, path, status):
    t = triggerd(config(function("raw")))
    _, out = invoke(t, "raw", {"do": "raw", "method": method, "path": path, "body": "{}"})
    assert out["status"] == status, out
    doc = json.loads(out["body"])
    assert set(doc) == {"errorMessage", "errorType"}


def test_next_headers_and_environment(triggerd):
    t = triggerd(config(function("envf", memory_mb=256, handler="app.main",
                                 environment={"GREETING": "hi there"})))
    _, env = invoke(t, "envf", {"do": "env"})
    port = int(env["AWS_LAMBDA_RUNTIME_API"].split(":")[1])
    assert env["AWS_LAMBDA_RUNTIME_API"] == f"127.0.0.1:{port}"
    assert env["_HANDLER"] == "app.main"
    assert env["LAMBDA_TASK_ROOT"] == PYBOOT and env["cwd"] == PYBOOT
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "envf"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/envf"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}",
                        env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_REGION"] == os.environ.get("AWS_REGION", "us-east-1")
    assert env["TZ"] == ":UTC" and env["LANG"] == "C.UTF-8"
    assert env["GREETING"] == "hi there"
    assert env["LAMBDA_RUNTIME_DIR"] == PYBOOT  # the bootstrap's folder
    assert "TRIGGERD_BUILD" not in env  # nothing of triggerd's own environment leaks
    _, h = invoke(t, "envf", {"do": "headers"})
    now_ms = time.time() * 1000
    assert 0 < int(h["Lambda-Runtime-Deadline-Ms"]) - now_ms <= 3100
    assert h["Lambda-Runtime-Invoked-Function-Arn"] == \
        f"arn:aws:lambda:{env['AWS_REGION']}:000000000000:function:envf"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0",
                        h["Lambda-Runtime-Trace-Id"])
    assert len(h["Lambda-Runtime-Aws-Request-Id"]) == 36
    assert "Lambda-Runtime-Client-Context" not in h


# ---- logs ----

def test_start_end_report_and_tail(triggerd):
    t = triggerd(config(function("logs")))
    h, out = invoke(t, "logs", {"do": "print", "lines": ["first line", "second line"]},
                    {"X-Amz-Log-Type": "Tail"})
    assert out == {"printed": 2}
    rid = h["x-amzn-RequestId"]
    tail = base64.b64decode(h["X-Amz-Log-Result"]).decode()
    lines = tail.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[1:4] == ["first line", "second line", "to stderr"]
    assert lines[4] == f"END RequestId: {rid}"
    assert lines[5].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "Init Duration: " in lines[5]
    log = t.log()
    # triggerd's own log: START, the lines tagged with function and request id, END, REPORT.
    ids = re.findall(r"\[process:logs\] START RequestId: (\S+) Version: \$LATEST", log)
    assert len(ids) == 1
    inv = ids[0]
    assert f"[process:logs] {inv}\tfirst line" in log
    assert f"[process:logs] {inv}\tto stderr" in log
    assert f"[process:logs] END RequestId: {inv}" in log
    assert re.search(rf"\[process:logs\] REPORT RequestId: {inv}\tDuration: \d+\.\d\d ms\t"
                     r"Billed Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\t"
                     r"Init Duration: \d+\.\d\d ms", log)


def test_tail_is_the_end_of_a_long_log(triggerd):
    # More output than the 256 KB kept per invocation: Tail still shows the last lines.
    t = triggerd(config(function("longlog")))
    lines = [f"{i:04d} " + "x" * 1000 for i in range(400)] + ["the very last line"]
    h, out = invoke(t, "longlog", {"do": "print", "lines": lines}, {"X-Amz-Log-Type": "Tail"})
    assert out == {"printed": 401}
    tail = base64.b64decode(h["X-Amz-Log-Result"]).decode().splitlines()
    assert tail[-5:-2] == [lines[-2], "the very last line", "to stderr"], tail[-6:]
    assert tail[-2] == f"END RequestId: {h['x-amzn-RequestId']}"


def test_a_flood_of_output_does_not_grow_triggerd(triggerd):
    # A process that writes faster than triggerd cuts and logs lines waits on its full
    # pipe: what triggerd holds unread stays bounded (1 MB), whatever the process writes.
    # (Under ASan freed memory sits in quarantine, so only the outcome is checked there.)
    t = triggerd(config(function("flood", timeout="120s")))
    _, out = invoke(t, "flood", {"do": "flood", "mb": 48, "line": 4000}, timeout=150)
    assert out == {"flooded": 48}
    with open(f"/proc/{t.proc.pid}/status") as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    if not built_with_asan():
        assert hwm < 40 * 1024, f"triggerd peaked at {hwm} kB while the function wrote 48 MB"


# ---- bootstraps ----

def test_provided_shell_bootstrap(triggerd):
    t = triggerd(config(function("shell", code=SHBOOT, handler="function.handler")))
    for i in range(3):
        _, out = invoke(t, "shell", {"n": i})
        assert out == {"shell": {"n": i}, "handler": "function.handler"}
    assert "shell handler got {\"n\": 2}" in t.log()


def test_async_event_is_retried_on_function_error(triggerd, tmp_path):
    dead = tmp_path / "dead.jsonl"
    cfg = f"""
sources = ( {{ name = "in"; kind = "webhook"; path = "/in"; }} );
functions = ( {function("flaky")} );
triggers = ( {{ name = "t"; sources = ["in"]; function = "flaky"; invocation = "async";
               retries = 1; backoff = {{ base = "100ms"; }}; on_failure = "file:{dead}"; }} );
"""
    t = triggerd(cfg)
    status, _, _ = http_request("POST", t.webhook + "/in", json.dumps({"do": "exit", "code": 9}))
    assert status == 202
    wait_for(lambda: dead.exists() and dead.read_text().strip(), 20, what="the dead letter")
    assert len(re.findall(r"\[process:flaky\] START RequestId", t.log())) == 2  # 1 + 1 retry
    assert "exit status 9" in dead.read_text()


def test_missing_bootstrap_is_a_clear_error(triggerd, tmp_path):
    code = tmp_path / "empty"
    code.mkdir()
    t = triggerd(config(function("nobody", code=str(code))), start=False)
    with pytest.raises(AssertionError, match="triggerd exited"):
        t.start(wait_ready=False)
    assert f"[process:nobody] {code}/bootstrap: no such file" in t.log()


@pytest.mark.skipif(not os.access(os.path.join(RUNTIMES, "python3", "bootstrap"), os.X_OK),
                    reason="the python3 bootstrap is not there yet")
def test_python3_runtime_hello(triggerd):
    t = triggerd(config(function("hello", code=os.path.join(ROOT, "examples", "functions",
                                                            "hello"), runtime="python3")))
    h, out = invoke(t, "hello", {"x": 1}, {"X-Amz-Log-Type": "Tail"})
    assert "X-Amz-Function-Error" not in h, out
    assert out["function"] == "hello" and out["event"] == {"x": 1}
    _, again = invoke(t, "hello", {"x": 2})
    assert again["event"] == {"x": 2}


@pytest.mark.skipif(not os.access(os.path.join(RUNTIMES, "python3", "bootstrap"), os.X_OK),
                    reason="the python3 bootstrap is not there yet")
def test_python3_runtime_memory_limit(triggerd):
    # python3 processes run under RLIMIT_AS = memory_mb: the allocation fails in the
    # handler (MemoryError) or the watchdog kills the process (Runtime.OutOfMemory).
    t = triggerd(config(function("pyalloc", code=os.path.join(HERE, "functions", "pyalloc"),
                                 runtime="python3", memory_mb=128, timeout="10s")))
    h, err = invoke(t, "pyalloc", {"mb": 300})
    assert h["X-Amz-Function-Error"] == "Unhandled"
    assert err["errorType"] in ("MemoryError", "Runtime.OutOfMemory"), err
    _, ok = invoke(t, "pyalloc", {"mb": 20})
    assert ok["allocated"] == 20 and ok["memory_limit_in_mb"] == 128


@pytest.mark.skipif(not os.access(os.path.join(RUNTIMES, "nodejs", "bootstrap"), os.X_OK),
                    reason="the nodejs bootstrap is not there yet")
def test_nodejs_runtime_hello(triggerd):
    code = os.path.join(ROOT, "examples", "functions", "hello-node")
    t = triggerd(config(function("hellonode", code=code, runtime="nodejs",
                                 handler="index.handler", memory_mb=256)))
    h, out = invoke(t, "hellonode", {"x": 1})
    assert "X-Amz-Function-Error" not in h, out
    _, again = invoke(t, "hellonode", {"x": 2})
    assert again

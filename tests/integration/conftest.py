"""Shared fixtures for triggerd's integration tests.

Everything here is real: the built binaries (TRIGGERD_BUILD, default build/), HTTP
functions served by this process on loopback, and servers such as mosquitto and
redis-server started on free loopback ports. Every process a fixture starts is
stopped by its PID when the test ends.
"""
import hashlib
import http
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import urllib.error

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TRIGGERD_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("TD_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def binary(name):
    return os.path.join(BUILD, name)


def built_with_asan():
    """True for an ASan build (make asan), whose memory figures mean nothing."""
    with open(binary("triggerd"), "rb") as f:
        return b"libasan.so" in f.read()


_handed_out = set()


def free_port():
    """A free loopback port, never one this process handed out before (the kernel may
    give a just-closed port again, and two listeners of one test would then collide)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# npm packages the tests need (the AWS SDK for JavaScript, AWS's runtime interface client)
# are installed once per package-lock.json into a cache outside the tracked files, shared
# by the normal and the ASan suite: aws-lambda-ric compiles native code for minutes.
NPM_CACHE = os.environ.get("TRIGGERD_NPM_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "triggerd-tests"))


def npm_registry_reachable(package):
    """(True, registry) or (False, why)."""
    registry = subprocess.run(["npm", "config", "get", "registry"], capture_output=True,
                              text=True, timeout=60).stdout.strip() or "https://registry.npmjs.org/"
    try:
        with urllib.request.urlopen(registry.rstrip("/") + "/" + package, timeout=15) as r:
            return r.status == 200, registry
    except OSError as e:
        return False, f"{registry}: {e}"


def npm_install(src, name, probe):
    """The folder holding node_modules for src/package{,-lock}.json, installed with `npm ci`
    once per lock file under NPM_CACHE/NAME-HASH. pytest.skip with the reason only when the
    npm registry is unreachable (probe: a package name to ask it for); any other failure
    fails the test."""
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.fail("node and npm are needed (scripts/deps.txt)")
    with open(os.path.join(src, "package-lock.json"), "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    target = os.path.join(NPM_CACHE, f"{name}-{key}")
    if os.path.exists(os.path.join(target, ".installed")):
        return target
    reachable, why = npm_registry_reachable(probe)
    if not reachable:
        pytest.skip(f"the npm registry is unreachable ({why}): cannot install {probe}")
    staging = f"{target}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(src, f), staging)
    r = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error",
             "--cache", os.path.join(NPM_CACHE, "_cacache")], cwd=staging, timeout=1800)
    assert r.returncode == 0, f"npm ci failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    open(os.path.join(staging, ".installed"), "w").close()
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    return target


def run(args, **kw):
    """Runs a command to completion and returns the CompletedProcess (text mode)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(args, **kw)


def http_request(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers, body bytes) and never raises for an HTTP status."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class FunctionServer:
    """A real HTTP function on loopback that records what it receives.

    `respond(request)` decides the answer: return (status, headers, body). The default
    answers 200 with a JSON echo. Requests are kept in `requests` (dicts with method,
    path, headers, body)."""

    def __init__(self, respond=None):
        self.requests = []
        self.lock = threading.Lock()
        self.respond = respond or (lambda req: (200, {"Content-Type": "application/json"},
                                                json.dumps({"echo": req["body"].decode(errors="replace")}).encode()))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                req = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                       "time": time.monotonic()}
                with server.lock:
                    server.requests.append(req)
                status, headers, out = server.respond(req)
                # One write for the whole answer: a separate write for the body would wait
                # for the client's delayed ACK (Nagle) on a kept-alive connection.
                head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else 'Status'}"]
                head += [f"{k}: {v}" for k, v in headers.items()]
                head.append(f"Content-Length: {len(out)}")
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + out)
                self.wfile.flush()

            do_PUT = do_POST

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait_count(self, n, timeout=10.0):
        return wait_for(lambda: self.count() >= n, timeout, what=f"{n} function calls")

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def function_server():
    servers = []

    def make(respond=None):
        s = FunctionServer(respond)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


class Triggerd:
    """triggerd as a real process with a test configuration."""

    def __init__(self, tmp_path, config_text, env=None, name="triggerd"):
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "triggerd.cfg"
        self.config.write_text(config_text)
        self.state_dir = self.dir / "state"
        self.webhook_port = free_port()
        self.admin_port = free_port()
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = self.dir / "triggerd.log"
        self.log_file = None

    @property
    def webhook(self):
        return f"http://127.0.0.1:{self.webhook_port}"

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait_ready=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary("triggerd"), "-c", str(self.config), "--state-dir", str(self.state_dir),
             "--webhook-listen", f"127.0.0.1:{self.webhook_port}",
             "--admin-listen", f"127.0.0.1:{self.admin_port}"],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env)
        wait_for(self.healthy, 15, what="triggerd /healthz")
        if wait_ready:
            wait_for(self.ready, 15, what="triggerd /readyz")
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"triggerd exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return http_request("GET", self.admin + "/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def ready(self):
        try:
            return http_request("GET", self.admin + "/readyz", timeout=1)[0] == 200
        except OSError:
            return False

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log_file.close()

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("triggerd did not stop on SIGTERM:\n" + self.log())
        if self.log_file and not self.log_file.closed:
            self.log_file.close()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def triggerd(tmp_path):
    started = []

    def make(config_text, env=None, name=None, start=True, wait_ready=True):
        t = Triggerd(tmp_path, config_text, env, name or f"triggerd{len(started)}")
        started.append(t)
        if start:
            t.start(wait_ready)
        return t

    yield make
    for t in started:
        if t.proc and t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait(5)
        if t.log_file and not t.log_file.closed:
            t.log_file.close()

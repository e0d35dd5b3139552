"""A real redis-server for the integration tests, and a small RESP client.

RedisServer starts Debian's redis-server on a free loopback port in a folder of the
test, with the append-only file on (fsync always) so that a restart keeps the streams,
and stops it by its PID. Redis speaks RESP2 over one socket; it pipelines commands.
No client library is needed: the protocol is a few lines (redis.io/docs/reference/
protocol-spec).
"""
import os
import signal
import socket
import subprocess
import time

from conftest import free_port, wait_for


class RedisError(Exception):
    pass


class Redis:
    """One connection. command() returns bytes, int, None, a list, or raises
    RedisError for an error reply."""

    def __init__(self, port, password=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password:
            self.command("AUTH", password)

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError(f"bad reply {line!r}")

    def command(self, *args):
        self.sock.sendall(self.encode(args))
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, commands):
        """Sends every command, then reads every reply (errors are returned)."""
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self._reply() for _ in commands]

    # Conveniences for streams.
    def xadd(self, stream, *fields):
        return self.command("XADD", stream, "*", *fields).decode()

    def xadd_many(self, stream, field_lists, chunk=1000):
        ids = []
        for i in range(0, len(field_lists), chunk):
            replies = self.pipeline([("XADD", stream, "*", *f) for f in field_lists[i:i + chunk]])
            for r in replies:
                if isinstance(r, RedisError):
                    raise r
                ids.append(r.decode())
        return ids

    def pending_count(self, stream, group):
        r = self.command("XPENDING", stream, group)
        return r[0]

    def xrange(self, stream):
        """[(id, {field: value})] with str ids and bytes fields."""
        out = []
        for entry_id, flat in self.command("XRANGE", stream, "-", "+"):
            fields = {}
            for k in range(0, len(flat), 2):
                fields.setdefault(flat[k].decode(), flat[k + 1])
            out.append((entry_id.decode(), fields))
        return out

    def group_info(self, stream, group):
        for g in self.command("XINFO", "GROUPS", stream):
            info = {g[k].decode(): g[k + 1] for k in range(0, len(g), 2)}
            if info["name"] == group.encode():
                return info
        return None


class RedisServer:
    def __init__(self, folder, password=None, port=None):
        self.dir = folder
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--logfile", self.log_path, "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self.up, 10, what=f"redis-server on port {self.port}")
        return self

    def up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n"
                                 + open(self.log_path, errors="replace").read())
        try:
            c = self.client()
            ok = c.command("PING") == b"PONG"
            c.close()
            return ok
        except (OSError, RedisError):
            return False

    def client(self):
        return Redis(self.port, self.password)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_seconds=0.0):
        self.stop()
        time.sleep(down_seconds)
        return self.start()

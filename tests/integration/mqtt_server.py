"""A real mosquitto broker for the MQTT tests, and a small MQTT 3.1.1 / 5.0 client.

The broker runs on a free loopback port with a configuration written for the test:
`max_queued_messages 0` (mosquitto's default of 1000 silently drops bursts to a slow
subscriber), `set_tcp_nodelay true`, persistence in the test's folder (so a restart keeps
sessions and queued messages), and optionally a password file. It is stopped by its PID.

The client is written here rather than taken from a package, so that the tests need
nothing beyond the Debian packages the project already lists: it speaks CONNECT,
SUBSCRIBE, PUBLISH at QoS 0, 1 and 2 (both directions, with the acknowledgements), MQTT 5
properties (content type, response topic, correlation data, user properties, session
expiry) and DISCONNECT, and can pipeline many QoS 1 publishes with a window.
"""
import os
import queue
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

from conftest import free_port, wait_for

# ---- the broker ----------------------------------------------------------------------


class Mosquitto:
    def __init__(self, folder, port=None, users=None, extra=""):
        self.dir = folder
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.users = users or {}
        self.extra = extra
        self.proc = None
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        self.url = f"tcp://127.0.0.1:{self.port}"

    def _write_config(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        lines = [
            f"listener {self.port} 127.0.0.1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "user root",
        ]
        if self.users:
            pwfile = os.path.join(self.dir, "passwords")
            open(pwfile, "w").close()
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", pwfile, user, password],
                               check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if self.extra:
            lines.append(self.extra)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start(self):
        conf = self._write_config()
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def accepting():
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n"
                                     + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(accepting, 10, what="mosquitto to accept connections")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# ---- the client ----------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

# MQTT 5 properties by type.
P_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
P_TWO = {0x13, 0x21, 0x22, 0x23}
P_FOUR = {0x02, 0x11, 0x18, 0x27}
P_VARINT = {0x0B}
P_STRING = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
P_BINARY = {0x09, 0x16}
P_PAIR = {0x26}
CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA, USER_PROPERTY = 0x03, 0x08, 0x09, 0x26
SESSION_EXPIRY, RECEIVE_MAXIMUM = 0x11, 0x21


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def encode_props(props):
    """props: list of (id, value); a user property's value is (name, value)."""
    out = bytearray()
    for pid, value in props or []:
        out += varint(pid)
        if pid in P_BYTE:
            out += bytes([value])
        elif pid in P_TWO:
            out += struct.pack("!H", value)
        elif pid in P_FOUR:
            out += struct.pack("!I", value)
        elif pid in P_VARINT:
            out += varint(value)
        elif pid in P_PAIR:
            out += mqtt_str(value[0]) + mqtt_str(value[1])
        else:
            out += mqtt_str(value)
    return varint(len(out)) + bytes(out)


def decode_props(buf, pos):
    n, pos = read_varint(buf, pos)
    end = pos + n
    props = []
    while pos < end:
        pid, pos = read_varint(buf, pos)
        if pid in P_BYTE:
            props.append((pid, buf[pos]))
            pos += 1
        elif pid in P_TWO:
            props.append((pid, struct.unpack_from("!H", buf, pos)[0]))
            pos += 2
        elif pid in P_FOUR:
            props.append((pid, struct.unpack_from("!I", buf, pos)[0]))
            pos += 4
        elif pid in P_VARINT:
            v, pos = read_varint(buf, pos)
            props.append((pid, v))
        elif pid in P_PAIR:
            k, pos = read_bin(buf, pos)
            v, pos = read_bin(buf, pos)
            props.append((pid, (k.decode(), v.decode())))
        elif pid in P_BINARY:
            v, pos = read_bin(buf, pos)
            props.append((pid, v))
        else:
            v, pos = read_bin(buf, pos)
            props.append((pid, v.decode()))
    return props, end


def read_varint(buf, pos):
    value, mult = 0, 1
    while True:
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, pos


def read_bin(buf, pos):
    n = struct.unpack_from("!H", buf, pos)[0]
    return bytes(buf[pos + 2:pos + 2 + n]), pos + 2 + n


class Message:
    def __init__(self, topic, payload, qos, retain, props):
        self.topic, self.payload, self.qos, self.retain, self.props = topic, payload, qos, retain, props

    def prop(self, pid):
        for k, v in self.props:
            if k == pid:
                return v
        return None

    def user_properties(self):
        return [v for k, v in self.props if k == USER_PROPERTY]


class MqttError(Exception):
    pass


class MqttClient:
    """A blocking MQTT client with a reader thread. Received messages go to `messages`."""

    def __init__(self, port, client_id="", version=5, clean=True, username=None, password=None,
                 session_expiry=0, host="127.0.0.1", tls_ca=None):
        self.port, self.host, self.client_id, self.version = port, host, client_id, version
        self.tls_ca = tls_ca
        self.clean, self.username, self.password = clean, username, password
        self.session_expiry = session_expiry
        self.messages = queue.Queue()
        self.sock = None
        self.send_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.next_id = 0
        self.waiting = {}  # packet id -> threading.Event (publish acks, suback)
        self.results = {}
        self.inbound_qos2 = set()
        self.connack = None
        self.connack_event = threading.Event()
        self.closed = threading.Event()
        self.reader = None
        self.window = threading.Semaphore(1000)

    # -- connection --

    def connect(self, timeout=10):
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.host)
        self.sock.settimeout(None)
        flags = 0x02 if self.clean else 0
        payload = mqtt_str(self.client_id)
        if self.username is not None:
            flags |= 0x80
        if self.password is not None:
            flags |= 0x40
        level = 5 if self.version == 5 else 4
        var = mqtt_str("MQTT") + bytes([level, flags]) + struct.pack("!H", 0)
        if self.version == 5:
            props = [(RECEIVE_MAXIMUM, 1000)]
            if self.session_expiry:
                props.append((SESSION_EXPIRY, self.session_expiry))
            var += encode_props(props)
        if self.username is not None:
            payload += mqtt_str(self.username)
        if self.password is not None:
            payload += mqtt_str(self.password)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()
        self._send(CONNECT << 4, var + payload)
        if not self.connack_event.wait(timeout):
            raise MqttError("no CONNACK")
        session_present, code = self.connack
        if code != 0:
            raise MqttError(f"connection refused: reason {code:#x}")
        return session_present

    def disconnect(self):
        try:
            if self.version == 5:
                self._send(DISCONNECT << 4, bytes([0]) + encode_props([]))
            else:
                self._send(DISCONNECT << 4, b"")
        except OSError:
            pass
        self.close()

    def close(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self.closed.wait(5)

    # -- operations --

    def subscribe(self, topic_filter, qos=1, timeout=10):
        pid, ev = self._new_wait()
        body = struct.pack("!H", pid)
        if self.version == 5:
            body += encode_props([])
        body += mqtt_str(topic_filter) + bytes([qos])
        self._send((SUBSCRIBE << 4) | 0x02, body)
        if not ev.wait(timeout):
            raise MqttError("no SUBACK")
        codes = self.results.pop(pid)
        if codes[0] >= 0x80:
            raise MqttError(f"subscription refused: {codes[0]:#x}")
        return codes[0]

    def publish(self, topic, payload, qos=0, retain=False, props=None, wait=True, timeout=30):
        if isinstance(payload, str):
            payload = payload.encode()
        body = mqtt_str(topic)
        ev = None
        pid = 0
        if qos:
            self.window.acquire()
            pid, ev = self._new_wait()
            body += struct.pack("!H", pid)
        if self.version == 5:
            body += encode_props(props)
        self._send((PUBLISH << 4) | (qos << 1) | (1 if retain else 0), body + payload)
        if qos and wait and not ev.wait(timeout):
            raise MqttError(f"publish {pid} not acknowledged")
        return ev

    def publish_many(self, items, qos=1, timeout=120):
        """Publishes (topic, payload) pairs pipelined (up to 1000 unacknowledged)."""
        events = [self.publish(t, p, qos=qos, wait=False) for t, p in items]
        deadline = time.monotonic() + timeout
        for ev in events:
            if ev is not None and not ev.wait(max(0.0, deadline - time.monotonic())):
                raise MqttError("publishes not acknowledged in time")

    def get(self, timeout=10):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MQTT message within {timeout} s") from None

    def drain(self, seconds):
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                return out

    # -- internals --

    def _new_wait(self):
        with self.state_lock:
            while True:
                self.next_id = self.next_id % 65535 + 1
                if self.next_id not in self.waiting:
                    break
            ev = threading.Event()
            self.waiting[self.next_id] = ev
            return self.next_id, ev

    def _finish(self, pid, result=None):
        with self.state_lock:
            ev = self.waiting.pop(pid, None)
        if ev is not None:
            if result is not None:
                self.results[pid] = result
            else:
                self.window.release()
            ev.set()

    def _send(self, first, body):
        data = bytes([first]) + varint(len(body)) + body
        with self.send_lock:
            self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return bytes(buf)

    def _read_loop(self):
        try:
            while True:
                first = self._recv_exact(1)[0]
                length, mult = 0, 1
                while True:
                    b = self._recv_exact(1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._recv_exact(length) if length else b""
                self._handle(first >> 4, first & 0x0F, body)
        except (OSError, struct.error, IndexError):
            pass
        finally:
            self.closed.set()
            self.connack_event.set()

    def _ack_id(self, body):
        return struct.unpack_from("!H", body, 0)[0]

    def _handle(self, ptype, flags, body):
        if ptype == CONNACK:
            self.connack = (body[0] & 1, body[1])
            self.connack_event.set()
        elif ptype == SUBACK:
            pid = self._ack_id(body)
            pos = 2
            if self.version == 5:
                _, pos = decode_props(body, pos)
            self._finish(pid, list(body[pos:]))
        elif ptype == PUBACK or ptype == PUBCOMP:
            self._finish(self._ack_id(body))
        elif ptype == PUBREC:
            pid = self._ack_id(body)
            self._send((PUBREL << 4) | 0x02, struct.pack("!H", pid))
        elif ptype == PUBREL:
            pid = self._ack_id(body)
            self.inbound_qos2.discard(pid)
            self._send(PUBCOMP << 4, struct.pack("!H", pid))
        elif ptype == PUBLISH:
            qos = (flags >> 1) & 3
            topic, pos = read_bin(body, 0)
            pid = 0
            if qos:
                pid = struct.unpack_from("!H", body, pos)[0]
                pos += 2
            props = []
            if self.version == 5:
                props, pos = decode_props(body, pos)
            msg = Message(topic.decode(errors="replace"), body[pos:], qos, bool(flags & 1), props)
            if qos == 2 and pid in self.inbound_qos2:
                pass  # a repeat of a message not yet released
            else:
                if qos == 2:
                    self.inbound_qos2.add(pid)
                self.messages.put(msg)
            if qos == 1:
                self._send(PUBACK << 4, struct.pack("!H", pid))
            elif qos == 2:
                self._send(PUBREC << 4, struct.pack("!H", pid))


def client(broker, **kw):
    c = MqttClient(broker.port, **kw)
    c.connect()
    return c

"""triggerd's Python runtime for the AWS Lambda Runtime API (standard library only).

triggerd starts `bootstrap` (next to this file) with AWS_LAMBDA_RUNTIME_API=host:port,
_HANDLER=module.function and the code folder as working directory. This module imports
the handler (an import error is posted to /runtime/init/error and the process exits 1),
then loops: GET /invocation/next (a long poll without timeout), call
handler(event, context), POST the JSON result to /invocation/{id}/response, or the error
shape {"errorMessage", "errorType", "requestId", "stackTrace"} to /invocation/{id}/error.
The names of errors and the `context` object follow AWS's own Python runtime
(awslambdaric), so that handlers written for Lambda run unchanged.

Speed is the point of the design: a cold start is paid on every scale-up and a warm
invocation on every event. So the HTTP client is a few lines over one kept-alive
socket (http.client alone imports the email package and takes longer to import than
all of this module), each request goes out in one write with TCP_NODELAY, and `json` is
imported while the first /next request is already in flight.

Output: print() goes out line by line (stdout is line-buffered), so triggerd can tag
every line with the request id. If the handler uses the `logging` package, records go
to stdout in AWS's format ([LEVEL] time request-id message).
"""
import os
import socket
import sys
import time

json = None  # imported lazily, see RuntimeClient.next_invocation

API_PREFIX = "/2018-06-01/runtime"
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
_THIS_FILE = os.path.abspath(__file__)


class RuntimeApiError(Exception):
    """The Runtime API answered in a way this runtime cannot go on with."""


class Fault(Exception):
    """An error with an AWS runtime error type (Runtime.ImportModuleError, ...)."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


class RuntimeClient:
    """HTTP/1.1 over one kept-alive TCP connection to the Runtime API."""

    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"AWS_LAMBDA_RUNTIME_API is not HOST:PORT: {address!r}")
        host = host.strip("[]")
        # getaddrinfo() encodes a str host with the idna codec, whose import alone costs
        # a cold start several milliseconds; an ASCII host can go as bytes.
        self.addr = (host.encode("ascii") if host.isascii() else host, int(port))
        self.host = address
        self.sock = None
        self.rfile = None

    def close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rfile = None

    def _connect(self):
        sock = socket.create_connection(self.addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.rfile = sock.makefile("rb", buffering=65536)

    def send(self, method, path, body=b"", headers=""):
        """Sends one request (a reused connection that turns out closed is reopened
        once). Returns whether the connection was a fresh one."""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        data = head + body if body else head
        fresh = self.sock is None
        if fresh:
            self._connect()
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()
            if fresh:
                raise
            self._connect()
            self.sock.sendall(data)
            fresh = True
        return fresh

    def receive(self):
        """Reads one response: (status, headers with lower-case names, body bytes)."""
        rfile = self.rfile
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if not line:
            raise ConnectionResetError("the Runtime API closed the connection")
        parts = line.split(None, 2)
        if (len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3
                or not parts[1].isdigit()):
            raise RuntimeApiError(f"bad status line from the Runtime API: {line[:80]!r}")
        status = int(parts[1])
        headers = {}
        while True:
            line = rfile.readline(MAX_HEADER_LINE + 1)
            if not line or len(line) > MAX_HEADER_LINE:
                raise RuntimeApiError("truncated or oversized header block from the Runtime API")
            if line == b"\r\n" or line == b"\n":
                break
            if len(headers) >= MAX_HEADERS:
                raise RuntimeApiError("more than 100 header lines from the Runtime API")
            name, sep, value = line.partition(b":")
            if not sep:
                raise RuntimeApiError(f"bad header line from the Runtime API: {line[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise RuntimeApiError(f"bad Content-Length from the Runtime API: {length[:40]!r}")
            body = rfile.read(int(length))
            if len(body) != int(length):
                raise ConnectionResetError("the Runtime API closed the connection mid-body")
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = rfile.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close" or parts[0] == b"HTTP/1.0":
            self.close()
        return status, headers, body

    def _read_chunked(self):
        out = []
        while True:
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            size = line.split(b";", 1)[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                raise RuntimeApiError(f"bad chunk size from the Runtime API: {line[:40]!r}") from None
            if n == 0:
                while self.rfile.readline(MAX_HEADER_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(out)
            chunk = self.rfile.read(n + 2)
            if len(chunk) != n + 2:
                raise ConnectionResetError("the Runtime API closed the connection mid-chunk")
            out.append(chunk[:n])

    def request(self, method, path, body=b"", headers=""):
        fresh = self.send(method, path, body, headers)
        try:
            return self.receive()
        except ConnectionResetError:
            # A kept-alive connection the server had closed: ask once more on a new one.
            self.close()
            if fresh:
                raise
            self.send(method, path, body, headers)
            return self.receive()

    def next_invocation(self):
        global json
        path = API_PREFIX + "/invocation/next"
        fresh = self.send("GET", path)
        if json is None:
            import json as json_module  # while the long poll is in flight
            json = json_module
        try:
            answer = self.receive()
        except ConnectionResetError:
            self.close()
            if fresh:
                raise
            self.send("GET", path)
            answer = self.receive()
        status, headers, body = answer
        if status != 200:
            raise RuntimeApiError(f"GET {path} answered {status}: {body[:200]!r}")
        return headers, body

    def post_result(self, request_id, body):
        return self.request("POST", f"{API_PREFIX}/invocation/{request_id}/response", body,
                            "Content-Type: application/json\r\n")

    def post_error(self, request_id, body):
        return self.request("POST", f"{API_PREFIX}/invocation/{request_id}/error", body,
                            "Content-Type: application/json\r\n"
                            "Lambda-Runtime-Function-Error-Type: Unhandled\r\n")

    def post_init_error(self, body):
        return self.request("POST", f"{API_PREFIX}/init/error", body,
                            "Content-Type: application/json\r\n"
                            "Lambda-Runtime-Function-Error-Type: Unhandled\r\n")


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self, doc=None):
        doc = doc if isinstance(doc, dict) else {}
        self.cognito_identity_id = doc.get("cognitoIdentityId")
        self.cognito_identity_pool_id = doc.get("cognitoIdentityPoolId")


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name"]

    def __init__(self, doc):
        for name in self.__slots__:
            setattr(self, name, doc.get(name))


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __init__(self, doc):
        self.custom = doc.get("custom")
        self.env = doc.get("env")
        client = doc.get("client")
        self.client = Client(client) if isinstance(client, dict) else None


class LambdaContext:
    """The `context` argument of a handler, as AWS's Python runtime builds it."""

    def __init__(self, request_id, headers, static):
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        (self.function_name, self.function_version, self.memory_limit_in_mb,
         self.log_group_name, self.log_stream_name) = static
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        self._deadline_ms = int(deadline) if deadline.isdigit() else 0
        self.identity = CognitoIdentity(json_header(headers, "lambda-runtime-cognito-identity"))
        client_context = json_header(headers, "lambda-runtime-client-context")
        self.client_context = (ClientContext(client_context)
                               if isinstance(client_context, dict) else None)

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))
        sys.stdout.flush()

    def __repr__(self):
        return (f"LambdaContext([aws_request_id={self.aws_request_id},"
                f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
                f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
                f"function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn}])")


def json_header(headers, name):
    """A header holding JSON (client context, Cognito identity), or None."""
    value = headers.get(name)
    if not value:
        return None
    try:
        return json.loads(value.encode("latin-1"))
    except ValueError:
        sys.stderr.write(f"[WARNING] ignoring header {name}: not JSON\n")
        return None


def load_handler(spec):
    """Imports module.function the way AWS's Python runtime does; raises Fault."""
    modname, dot, fname = spec.rpartition(".")
    if not dot or not modname or not fname:
        raise Fault("Runtime.MalformedHandlerName",
                    f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict",
                    f"Cannot use built-in module {modname} as a handler module")
    import importlib
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError",
                    f"Unable to import module '{modname}': {e}") from None
    except SyntaxError as e:
        raise Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}",
                    [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']) from None
    except Exception as e:  # the module raised while it was imported
        raise Fault(type(e).__name__, str(e), stack_of(e)) from None
    handler = getattr(module, fname, None)
    if handler is None:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'")
    if not callable(handler):
        raise Fault("Runtime.HandlerNotFound",
                    f"Handler '{fname}' on module '{modname}' is not callable")
    return handler


def stack_of(exc):
    """The traceback of exc as AWS formats stackTrace, without this module's frames."""
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename == _THIS_FILE:
        frames.pop(0)
    return traceback.format_list(frames)


def error_document(error_type, message, stack, request_id=""):
    doc = {"errorMessage": message, "errorType": error_type, "requestId": request_id,
           "stackTrace": stack}
    try:
        return json.dumps(doc).encode()
    except (TypeError, ValueError):
        return json.dumps({"errorMessage": repr(message), "errorType": str(error_type),
                           "requestId": request_id, "stackTrace": []}).encode()


def log_error(error_type, message, stack):
    text = f"[ERROR] {error_type}: {message}"
    if stack:
        text += "\nTraceback (most recent call last):\n" + "".join(stack).rstrip("\n")
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def json_default(obj):
    """Decimal (from boto3's DynamoDB reads) becomes a number, as on Lambda."""
    if type(obj).__name__ == "Decimal" and type(obj).__module__ in ("decimal", "_decimal"):
        return float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class RequestIdFilter:
    """Adds aws_request_id to every log record (for AWS's log format)."""

    request_id = ""

    def filter(self, record):
        record.aws_request_id = RequestIdFilter.request_id
        return True


def install_logging():
    """AWS's log line format for the handler's `logging`, when the handler uses it and
    has not set up handlers of its own."""
    logging = sys.modules["logging"]
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)


def main():
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except AttributeError:
        pass
    api = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    try:
        client = RuntimeClient(api)
    except ValueError as e:
        sys.stderr.write(f"triggerd python3 runtime: {e}\n")
        return 1
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if task_root not in sys.path:
        sys.path.insert(0, task_root)

    global json
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Fault as f:
        if json is None:
            import json as json_module
            json = json_module
        log_error(f.error_type, f.message, f.stack_trace)
        try:
            client.post_init_error(error_document(f.error_type, f.message, f.stack_trace))
        except (OSError, RuntimeApiError) as e:
            sys.stderr.write(f"triggerd python3 runtime: posting the init error failed: {e}\n")
        return 1
    logging_installed = False
    static = (os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
              os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
              os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
              os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
              os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"))
    environ = os.environ

    try:
        while True:
            headers, body = client.next_invocation()
            request_id = headers.get("lambda-runtime-aws-request-id", "")
            if not request_id:
                raise RuntimeApiError("an invocation without Lambda-Runtime-Aws-Request-Id")
            trace_id = headers.get("lambda-runtime-trace-id")
            if trace_id:
                environ["_X_AMZN_TRACE_ID"] = trace_id
            elif "_X_AMZN_TRACE_ID" in environ:
                del environ["_X_AMZN_TRACE_ID"]
            if not logging_installed and "logging" in sys.modules:
                install_logging()
                logging_installed = True
            RequestIdFilter.request_id = request_id

            error = None
            try:
                try:
                    event = json.loads(body)
                except ValueError as e:
                    raise Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}") from None
                result = handler(event, LambdaContext(request_id, headers, static))
                try:
                    out = json.dumps(result, default=json_default, allow_nan=False).encode()
                except (TypeError, ValueError, RecursionError) as e:
                    raise Fault("Runtime.MarshalError", f"Unable to marshal response: {e}") from None
            except Fault as f:
                error = (f.error_type, f.message, f.stack_trace)
            except Exception as e:
                error = (type(e).__name__, str(e), stack_of(e))
            if error is None:
                status, _, answer = client.post_result(request_id, out)
            else:
                log_error(*error)
                status, _, answer = client.post_error(request_id, error_document(*error, request_id))
            if status != 202:
                sys.stderr.write(f"triggerd python3 runtime: the Runtime API answered {status} "
                                 f"for request {request_id}: {answer[:200]!r}\n")
    except (OSError, RuntimeApiError) as e:
        sys.stderr.write(f"triggerd python3 runtime: {e}\n")
        return 1

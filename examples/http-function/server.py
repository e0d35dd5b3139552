"""An HTTP function for triggerd: prints every event it receives and answers with a
small JSON result. Standard library only.

    python3 examples/http-function/server.py --port 8080

triggerd calls it in CloudEvents binary mode by default: the ce-* headers carry the
attributes (ce-id, ce-type, ce-source, ...) and the body is the event's payload."""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Function(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        attributes = {k[3:]: v for k, v in self.headers.items() if k.lower().startswith("ce-")}
        print(json.dumps({"attributes": attributes, "payload": body.decode(errors="replace")}),
              flush=True)
        answer = json.dumps({"handled": attributes.get("id"), "type": attributes.get("type")})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Function).serve_forever()


if __name__ == "__main__":
    main()

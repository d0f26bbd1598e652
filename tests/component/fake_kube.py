"""A small HTTPS server that answers like the Kubernetes API server on demand, for faults a real
one will not produce when asked: 500s, 429 with Retry-After, 403, 401 until the token changes.
Used in addition to the real kube-apiserver tests, never instead of them."""
import json
import os
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_cert(d):
    """A throw-away CA-less self-signed certificate for 127.0.0.1."""
    key, crt = os.path.join(d, "fake.key"), os.path.join(d, "fake.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return key, crt


class FakeKube:
    """script: a list of (status, headers, body) answered in order for PATCH/POST requests (body
    bytes are sent as text/plain);
    when it runs out, every request gets 200 with the request body echoed."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path)
        self.key, self.crt = make_cert(self.dir)
        self.requests = []          # (time, method, path, token, body)
        self.script = []
        self.require_token = None   # answer 401 unless the bearer token equals this
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                with fake.lock:
                    fake.requests.append((time.monotonic(), self.command, self.path, token, body))
                    if fake.require_token is not None and token != fake.require_token:
                        status, headers, reply = 401, {}, {"kind": "Status", "message": "Unauthorized", "code": 401}
                    elif self.command == "GET":
                        status, headers, reply = 200, {}, {"kind": "Pod", "metadata": {"name": "x", "uid": "u-1", "labels": {}}}
                    elif fake.script:
                        status, headers, reply = fake.script.pop(0)
                    else:
                        status, headers, reply = 200, {}, json.loads(body or "{}")
                # bytes: a body that is not JSON (the API server's "404 page not found").
                raw = isinstance(reply, bytes)
                data = reply if raw else json.dumps(reply).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.crt, self.key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def writes(self):
        with self.lock:
            return [r for r in self.requests if r[1] in ("PATCH", "POST")]

    def kubeconfig(self, token_file, namespace="games"):
        path = os.path.join(self.dir, "kubeconfig")
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:{self.port}
    certificate-authority: {self.crt}
users:
- name: sidecar
  user:
    tokenFile: {token_file}
contexts:
- name: fake
  context: {{cluster: fake, user: sidecar, namespace: {namespace}}}
""")
        return path

    def close(self):
        self.server.shutdown()
        self.server.server_close()

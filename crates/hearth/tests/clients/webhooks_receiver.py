"""Hearth's webhooks checked by an independent implementation of the Standard Webhooks
specification (the `standardwebhooks` package): a receiver on loopback verifies every
delivery's signature with the secret Hearth gave, fails the first attempt to see the retry,
verifies under the old and the new secret during a rotation, and answers 410 on another
endpoint to see it disabled. Usage: webhooks_receiver.py http://127.0.0.1:PORT
"""

import http.server
import json
import sys
import threading
import time
import urllib.request

from standardwebhooks import Webhook, WebhookVerificationError

hearth = sys.argv[1]
secrets = {}  # path -> list of secrets that must each verify
received = []  # (path, verified, body)
raw = []  # (path, body bytes, headers)
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {key: value for key, value in self.headers.items()}
        verified = True
        for secret in secrets.get(self.path, []):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError as error:
                print(f"verification failed on {self.path}: {error}", file=sys.stderr)
                verified = False
        with lock:
            received.append((self.path, verified, json.loads(body)))
            raw.append((self.path, body, headers))
            seen = sum(1 for path, _, _ in received if path == self.path)
        if self.path == "/gone":
            status = 410
        elif self.path == "/flaky" and seen == 1:
            status = 500
        else:
            status = 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"no")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(hearth + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def wait_for(what, check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; received: {received}")


flaky = call("POST", "/v1/webhooks", {"url": base + "/flaky", "topics": ["orders.*"]})
assert flaky["secret"].startswith("whsec_"), flaky
secrets["/flaky"] = [flaky["secret"]]
gone = call("POST", "/v1/webhooks", {"url": base + "/gone", "topics": "orders.>"})
secrets["/gone"] = [gone["secret"]]

published = call("POST", "/v1/events/orders.created", {"order": 7})

flaky_hits = lambda: [r for r in received if r[0] == "/flaky"]
wait_for("the retry after a 500", lambda: len(flaky_hits()) >= 2)
assert all(verified for _, verified, _ in received), received
assert flaky_hits()[1][2]["type"] == "orders.created"
assert flaky_hits()[1][2]["data"] == {"order": 7}

log = wait_for(
    "the delivery log",
    lambda: (lambda log: log if log["data"] and log["data"][0]["status"] == "succeeded" else None)(
        call("GET", f"/v1/webhooks/{flaky['id']}/deliveries")
    ),
)
statuses = [attempt["status_code"] for attempt in log["data"][0]["attempts"]]
assert statuses == [500, 200], log
assert log["data"][0]["event_id"] == published["id"], log

endpoint = wait_for(
    "410 to disable the endpoint",
    lambda: (lambda e: e if not e["enabled"] else None)(call("GET", f"/v1/webhooks/{gone['id']}")),
)
assert "410" in endpoint["disabled_reason"], endpoint

# A rotation: deliveries verify under the new secret and, during the grace period, the old.
old = flaky["secret"]
rotated = call("POST", f"/v1/webhooks/{flaky['id']}/rotate_secret")
assert rotated["secret"] != old and rotated["secret"].startswith("whsec_"), rotated
secrets["/flaky"] = [old, rotated["secret"]]
call("POST", "/v1/events/orders.paid", {"order": 7})
wait_for("the delivery after the rotation", lambda: len(flaky_hits()) >= 3)
assert all(verified for _, verified, _ in received), received

# The same delivery with one byte changed does not verify: the checks above have teeth.
_, body, headers = [r for r in raw if r[0] == "/flaky"][-1]
Webhook(rotated["secret"]).verify(body, headers)
try:
    Webhook(rotated["secret"]).verify(body.replace(b"7", b"8"), headers)
    raise AssertionError("a changed body verified")
except WebhookVerificationError:
    pass
print(f"ok: {len(received)} deliveries verified")

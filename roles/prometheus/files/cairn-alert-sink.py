#!/usr/bin/python3
"""cairn alert sink: a minimal receiver for Alertmanager's webhook notifications.

Installed by cairn's prometheus role when `alert_webhook_sink: true` (the lab), so alerts can be observed
end to end: Alertmanager POSTs each notification here with `Authorization: Bearer <token>`; the sink checks
the token (constant-time), and appends one JSON line per notification to $STATE_DIRECTORY/alerts.jsonl:
{"received": <unix time>, "status": "firing"|"resolved", "alerts": [{alertname, instance, status, ...}],
"payload": <the notification as Alertmanager sent it>}.
A wrong or missing token gets 401 and is not recorded. GET /healthz answers 200 "ok".

Runs under systemd with DynamicUser=, StateDirectory= and LoadCredential=token:... (the token never sits
in the unit, the command line or the environment). Python's standard library only.
"""
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
# Past this size the log starts over (the previous one is kept as alerts.jsonl.1).
MAX_LOG = 16 * 1024 * 1024


def read_token() -> bytes:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        sys.exit("cairn-alert-sink: no $CREDENTIALS_DIRECTORY (run it from its systemd unit, with LoadCredential=token:...)")
    with open(os.path.join(directory, "token"), "rb") as handle:
        token = handle.read().strip()
    if not token:
        sys.exit("cairn-alert-sink: the token credential is empty")
    return token


TOKEN = b""
LOG_PATH = os.path.join(os.environ.get("STATE_DIRECTORY", "/var/lib/cairn-alert-sink"), "alerts.jsonl")


def append(record: dict) -> None:
    try:
        if os.path.getsize(LOG_PATH) > MAX_LOG:
            os.replace(LOG_PATH, LOG_PATH + ".1")
    except FileNotFoundError:
        pass
    with open(LOG_PATH, "a", encoding="utf-8") as log:
        log.write(json.dumps(record, separators=(",", ":")) + "\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "cairn-alert-sink/1"

    def answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            self.answer(200, "ok")
        else:
            self.answer(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        given = self.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, b"Bearer " + TOKEN):
            self.answer(401, "unauthorized")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.answer(413, "body too large or without Content-Length")
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.answer(400, "not JSON")
            return
        alerts = payload.get("alerts", []) if isinstance(payload, dict) else []
        append(
            {
                "received": time.time(),
                "path": self.path,
                "status": payload.get("status") if isinstance(payload, dict) else None,
                "receiver": payload.get("receiver") if isinstance(payload, dict) else None,
                "alerts": [
                    {
                        "alertname": a.get("labels", {}).get("alertname"),
                        "instance": a.get("labels", {}).get("instance"),
                        "severity": a.get("labels", {}).get("severity"),
                        "status": a.get("status"),
                        "startsAt": a.get("startsAt"),
                        "endsAt": a.get("endsAt"),
                        "labels": a.get("labels", {}),
                    }
                    for a in alerts
                    if isinstance(a, dict)
                ],
                "payload": payload,
            }
        )
        self.answer(200, "recorded")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        # One journal line per request, without the token (the Authorization header is never logged).
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main() -> None:
    global TOKEN
    if len(sys.argv) != 3:
        sys.exit("usage: cairn-alert-sink ADDRESS PORT")
    TOKEN = read_token()
    server = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    # The bound port (port 0 picks a free one), for the journal and for tests.
    sys.stderr.write("cairn-alert-sink listening on %s:%d, recording to %s\n" % (server.server_address[0], server.server_address[1], LOG_PATH))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A stand-in for Slack or PagerDuty in the compose demo: prints what Alertmanager sends.

Alertmanager's webhook receivers POST a JSON document per notification (a group of alerts).
This server prints one JSON line per alert in it (receiver, status, alert name, severity,
model, feature, summary), so ``docker compose logs -f alert-receiver`` shows the alerts the
shipped rules raise, routed by rules/alertmanager.yml, with nothing to sign up for.
Standard library only: it runs in the exporter image.

    python webhook_receiver.py --listen 127.0.0.1:5001
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


def summarize(receiver: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat record per alert of an Alertmanager webhook payload (version 4)."""
    out = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        annotations = alert.get("annotations", {})
        out.append(
            {
                "receiver": payload.get("receiver", receiver),
                "status": alert.get("status", payload.get("status")),
                "alertname": labels.get("alertname"),
                "severity": labels.get("severity"),
                "model": labels.get("model"),
                "feature": labels.get("feature"),
                "summary": annotations.get("summary"),
                "startsAt": alert.get("startsAt"),
            }
        )
    return out


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self.send_error(400, "expected a JSON body of at most 1 MiB")
            return
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        if not isinstance(payload, dict):
            self.send_error(400, "expected a JSON object")
            return
        for record in summarize(self.path.strip("/"), payload):
            print(json.dumps(record, sort_keys=True), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log: the alerts are the output."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5001", metavar="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        parser.error(f"--listen: expected HOST:PORT, got {args.listen!r}")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), _Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"listening": f"{host}:{server.server_port}"}), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

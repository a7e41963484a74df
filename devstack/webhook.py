"""A webhook receiver for Alertmanager: records every notification with the receiver it was addressed to.

The overlay points each Alertmanager receiver at `<url>/<receiver name>`, so a notification's path names the receiver
whose route matched; Alertmanager's payload also carries `receiver`, and both must agree.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from devstack.process import LOOPBACK


@dataclass(frozen=True)
class Notification:
    """One POST from Alertmanager (webhook payload version 4)."""

    path_receiver: str
    received_at: float
    payload: dict[str, Any]

    @property
    def receiver(self) -> str:
        return str(self.payload.get("receiver", ""))

    @property
    def status(self) -> str:
        """`firing` or `resolved` (the group's status)."""
        return str(self.payload.get("status", ""))

    @property
    def alerts(self) -> list[dict[str, Any]]:
        alerts = self.payload.get("alerts", [])
        return alerts if isinstance(alerts, list) else []

    def alert_names(self, status: str | None = None) -> set[str]:
        """Names of the alerts in this notification, optionally only those with `status`."""
        return {
            str(alert.get("labels", {}).get("alertname", ""))
            for alert in self.alerts
            if status is None or alert.get("status") == status
        }

    def describe(self) -> str:
        stamp = datetime.fromtimestamp(self.received_at, UTC).isoformat(timespec="milliseconds")
        names = ", ".join(sorted(self.alert_names())) or "-"
        return f"{stamp} receiver={self.path_receiver} status={self.status} alerts={names}"


class WebhookReceiver:
    """An HTTP server on loopback, in a daemon thread, that keeps every JSON POST it gets."""

    def __init__(
        self, port: int = 0, host: str = LOOPBACK, on_notification: Callable[[Notification], None] | None = None
    ):
        self._lock = threading.Condition()
        self._notifications: list[Notification] = []
        self._on_notification = on_notification
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def wait_for(self, predicate: Callable[[Notification], bool], timeout_s: float) -> Notification | None:
        """The first notification (received so far or within `timeout_s`) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for notification in self._notifications:
                    if predicate(notification):
                        return notification
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def _record(self, notification: Notification) -> None:
        with self._lock:
            self._notifications.append(notification)
            self._lock.notify_all()
        if self._on_notification is not None:
            self._on_notification(notification)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received_at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                if not isinstance(payload, dict):
                    self.send_error(400, "body is not a JSON object")
                    return
                path_receiver = unquote(self.path.strip("/").split("?", 1)[0])
                receiver._record(Notification(path_receiver, received_at, payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the stack prints notifications itself."""

        return Handler

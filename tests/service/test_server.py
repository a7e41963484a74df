"""The service on a real uvicorn (port 0): a client that goes away is not a server error, and slow, idle or too many
connections are cut by the limits of service/server.py."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from featurestore.conventions import LOAD_TEST_PATH, METRICS_PATH
from featurestore.metrics import HTTP_REQUESTS, LABEL_ROUTE, LABEL_STATUS_CLASS
from service.app import create_app
from service.server import RequestDeadline, server_config
from service.startup import bind
from tests.service.conftest import API, service_settings, store_settings

DEADLINE_S = 15.0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout_s:g} s"
        time.sleep(0.05)


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[str]:
    """The service's app under uvicorn with server_config, in a thread; yields its base URL."""
    service = service_settings(**settings)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    # log_config=None: uvicorn's loggers propagate to the root logger, where caplog sees them.
    config = server_config(create_app(service, store_settings(tmp_path / "cache")), service, port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=DEADLINE_S)


def closed_by_server(conn: socket.socket, trickle: bytes = b"", within_s: float = DEADLINE_S) -> bool:
    """Send `trickle` a byte at a time (every 50 ms) until the server closes the connection; True when it did within
    `within_s`, False when that passed first."""
    conn.settimeout(0.05)
    deadline = time.monotonic() + within_s
    position = 0
    while time.monotonic() < deadline:
        try:
            if position < len(trickle):
                conn.sendall(trickle[position : position + 1])
                position += 1
            if conn.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def http_requests(base: str, route: str) -> dict[str, float]:
    """featurestore_http_requests_total of `route` by status class, from the service's own /metrics."""
    text = httpx.get(f"{base}{METRICS_PATH}", timeout=DEADLINE_S).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == HTTP_REQUESTS.name and sample.labels.get(LABEL_ROUTE) == route:
                status = sample.labels[LABEL_STATUS_CLASS]
                counts[status] = counts.get(status, 0.0) + sample.value
    return counts


@pytest.mark.parametrize("how", ["the client closes", "the body stops coming"])
def test_a_client_gone_mid_body_is_a_499_logged_at_info_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(tmp_path, request_timeout_s=1.0) as base:
        with connect(base) as conn:
            head = f"POST {LOAD_TEST_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            conn.sendall(f"{head}Content-Length: 200\r\n\r\n".encode() + b'{"workers": 1, ')
            if how == "the client closes":
                conn.close()
            else:
                assert closed_by_server(conn)
        wait_for(lambda: http_requests(base, LOAD_TEST_PATH).get("4xx", 0) >= 1, "the request to be recorded")
        assert "5xx" not in http_requests(base, LOAD_TEST_PATH)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert "Traceback" not in caplog.text
    assert "client went away during POST" in caplog.text


def test_slow_headers_and_connections_that_send_nothing_are_cut(tmp_path: Path) -> None:
    with serving(tmp_path, request_timeout_s=0.5) as base:
        with connect(base) as idle:
            assert closed_by_server(idle), "a connection that sent nothing was kept"
        request = f"GET {API}/health/live HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 400}\r\n\r\n".encode()
        with connect(base) as slow:
            assert closed_by_server(slow, request), "a request head trickled a byte at a time was kept"
        assert httpx.get(f"{base}{API}/health/live", timeout=DEADLINE_S).status_code == 200  # a prompt one is served


def test_an_idle_kept_alive_connection_is_closed(tmp_path: Path) -> None:
    with serving(tmp_path, keep_alive_timeout_s=1, request_timeout_s=60) as base, connect(base) as conn:
        conn.sendall(f"GET {API}/health/live HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(conn, within_s=4.0)  # under uvicorn's default of 5 s: the setting took


def test_requests_beyond_the_connection_limit_get_503_and_oversized_headers_400(tmp_path: Path) -> None:
    with serving(tmp_path, max_connections=2, max_header_bytes=1024, request_timeout_s=60) as base:
        live = f"{base}{API}/health/live"
        with connect(base), connect(base):
            assert httpx.get(live, timeout=DEADLINE_S).status_code == 503
        wait_for(lambda: httpx.get(live, timeout=DEADLINE_S).status_code == 200, "a place under the limit")
        with connect(base) as conn:  # h11 bounds a head while it arrives: a whole head in one read is parsed
            conn.sendall(f"GET {API}/health/live HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 2048}".encode())
            assert conn.recv(65536).startswith(b"HTTP/1.1 400")


def test_the_uvicorn_hooks_request_deadline_extends_are_there() -> None:
    """RequestDeadline reads uvicorn's internals: this says which one moved, where the tests above only time out."""
    for hook in ("connection_made", "data_received", "handle_events", "connection_lost"):
        assert hook in vars(RequestDeadline) and callable(getattr(H11Protocol, hook, None)), hook
    assert {"response_complete", "more_body"} <= set(RequestResponseCycle.__init__.__code__.co_names)
